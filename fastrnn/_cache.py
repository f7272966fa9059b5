"""numba's on-disk cache for fastrnn's kernels, keyed on every kernel source and the version.

numba checks a cached function against its own source file only. A kernel that
calls (and inlines) a function of another module keeps its cached machine code when
only that other module changes, and a ``pip install --upgrade`` over an old
``__pycache__`` leaves numba's files in place: both would run old code without a word.
Here each of fastrnn's kernels gets its own cache object (:class:`KeyedCache`), whose
freshness stamp is numba's (the function's own file) together with :func:`source_key`,
the package version and a hash of every module a kernel's code can come from
(:data:`KERNEL_SOURCES`). After any edit or upgrade the stamp differs, numba finds its
index stale and compiles again, writing over the old entries.

In the ``fastrnn`` command's own process (:data:`QUICK_LOADS`, set by
:func:`fastrnn._startup.prepare`), a kernel's cache load skips numba's registry refresh
(:meth:`KeyedCache.quick_load`).

A damaged cache file (a truncated index or data file, garbage: a power cut or a full
disk while numba wrote it) makes numba's own loader raise. :class:`KeyedCache` catches
that, deletes that function's index and data files, says so once on stderr, and lets
numba compile the function again.

Nothing of numba's is changed for other packages: each kernel module ends with
:func:`key_dispatchers`, which gives that module's dispatchers this cache (the shared
``JIT`` options leave numba's own cache off, so a module that forgot it would compile
every time, never run stale code; tests/test_survival.py checks that every
kernel has it).
"""

import glob
import hashlib
import os
import sys

#: The modules (paths inside the package) whose code a kernel can compile in: the ones
#: defining kernels and every fastrnn module they import (their constants are frozen
#: into the machine code), the registry packages' modules added below. tests/test_survival.py checks this list.
KERNEL_SOURCES = (
    "_charrnn.py", "_checks.py", "_generate.py", "_kernels.py", "_linalg.py", "_mathfn.py", "_simd.py", "_small.py",
    "_small_cells.py",
    "_train_kernel.py",
    "cells/__init__.py", "cells/gru.py", "cells/lstm.py", "cells/rnn.py",
    "config.py", "exceptions.py", "optim.py", "params.py",
    # the online learning rules (fastrnn.rules) and their shared driver pieces
    "_online.py", "rules/bptt.py", "rules/kf_rtrl.py", "rules/rflo.py", "rules/rtrl.py", "rules/snap1.py", "rules/uoro.py",
)


def _registry_files(*packages):
    """Every module of the registry packages (one module per optimizer or activation, so a new one is
    covered without a line here); () where the package is not a folder (a zipped install: the version keys)."""
    root = os.path.dirname(os.path.abspath(__file__))
    found = []
    for package in packages:
        try:
            found += sorted(f"{package}/{name}" for name in os.listdir(os.path.join(root, package)) if name.endswith(".py"))
        except OSError:
            pass
    return tuple(found)


KERNEL_SOURCES += _registry_files("activations", "optimizers")

_KEY = None
_SAID = False

#: Whether fastrnn's kernels load from numba's cache without the registry refresh first
#: (:meth:`KeyedCache.quick_load`): set in the ``fastrnn`` command's process only.
QUICK_LOADS = False


def source_key():
    """The package version and a SHA-256 of :data:`KERNEL_SOURCES` (computed once per process)."""
    global _KEY
    if _KEY is None:
        from . import __version__

        h = hashlib.sha256(__version__.encode())
        root = os.path.dirname(os.path.abspath(__file__))
        for name in KERNEL_SOURCES:
            h.update(b"\0" + name.encode() + b"\0")
            try:
                with open(os.path.join(root, name), "rb") as fh:
                    h.update(fh.read())
            except OSError:  # a zipped or frozen install: the version alone
                h.update(b"?")
        _KEY = f"{__version__}-{h.hexdigest()[:32]}"
    return _KEY


def _classes():
    """KeyedCache and its parts, built on first use (numba's caching module is imported then)."""
    from numba.core import caching
    from numba.core.runtime import rtsys

    class _Keyed:
        """A locator whose freshness stamp also holds :func:`source_key`."""

        def get_source_stamp(self):
            return super().get_source_stamp(), source_key()

    # numba's own locators in numba's order (user-provided folder, in-tree __pycache__, user-wide,
    # zip), whatever this numba version names them; IPython's (notebook cells) cannot hold fastrnn's code
    locators = [type("Keyed" + base.__name__.lstrip("_"), (_Keyed, base), {})
                for base in caching.CompileResultCacheImpl._locator_classes if "IPython" not in base.__name__]

    class KeyedImpl(caching.CompileResultCacheImpl):
        _locator_classes = locators

    class KeyedCache(caching.FunctionCache):
        """numba's per-function cache, stamped with :func:`source_key`; a damaged file is deleted
        (one line on stderr) and the function compiled again instead of raising."""

        _impl_class = KeyedImpl

        def load_overload(self, sig, target_context):
            try:
                if QUICK_LOADS:
                    cres = self.quick_load(sig, target_context)
                    if cres is not None:
                        return cres
                return super().load_overload(sig, target_context)
            except Exception as exc:
                self.clear_damaged(exc)
                return None  # numba compiles it

        def quick_load(self, sig, target_context):
            """numba's load without the registry refresh before it, or None (then numba's own load).

            Before a cache load numba "refreshes" its typing and target contexts: it imports
            the implementation of every Python and NumPy feature it can compile and scans
            the installed packages for extensions (about 0.1 s of a warm command). None of it
            is read when a cached function is rebuilt: that is machine code linked against
            numba's runtime (started here, as the refresh would) and its C helpers
            (registered when the target context is made). Any failure, or a miss, returns
            None and numba's own path runs: the refresh, then the load (or a compile).
            """
            try:
                rtsys.initialize(target_context)
                with self._guard_against_spurious_io_errors():
                    return self._load_overload(sig, target_context)
            except Exception:
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as exc:  # the index it reads first is damaged: clear it, save again
                self.clear_damaged(exc)
                try:
                    super().save_overload(sig, data)
                except Exception:
                    pass  # the compiled function still runs; the next process compiles it again

        def holds_entries(self):
            """Whether the index holds compiled code for these sources (False when it is missing,
            stale or unreadable)."""
            try:
                return bool(self._cache_file._load_index())
            except Exception:
                return False

        def files(self):
            """This function's index and data files in the cache folder."""
            index = self._cache_file._index_path
            base = index[: -len(".nbi")]
            return [index] + glob.glob(glob.escape(base) + ".*.nbc")

        def clear_damaged(self, exc):
            global _SAID
            removed = []
            for path in self.files():
                try:
                    os.remove(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    pass
            if not _SAID:
                _SAID = True
                where = os.path.dirname(self._cache_file._index_path)
                detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
                print(f"fastrnn: a damaged numba cache file in {where} ({detail}) was deleted with its function's "
                      f"other cache files; those kernels are compiled again", file=sys.stderr, flush=True)
            return removed

    return KeyedCache


_KEYED_CACHE = None


def keyed_cache_class():
    global _KEYED_CACHE
    if _KEYED_CACHE is None:
        _KEYED_CACHE = _classes()
    return _KEYED_CACHE


def key_dispatchers(namespace):
    """Give every fastrnn dispatcher in a module's ``namespace`` (its ``globals()``) a
    :class:`KeyedCache` (once each); called at the end of each kernel module."""
    from numba.core.dispatcher import Dispatcher

    package = __name__.rpartition(".")[0] + "."
    cls = keyed_cache_class()
    for obj in list(namespace.values()):
        if isinstance(obj, Dispatcher) and not isinstance(obj._cache, cls):
            module = getattr(obj.py_func, "__module__", "") or ""
            if module.startswith(package):
                try:
                    obj._cache = cls(obj.py_func)
                except RuntimeError:  # no folder to cache in (numba's own message when compiling): no cache
                    pass
