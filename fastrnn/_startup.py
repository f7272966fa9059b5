"""Start-up: what a warm command pays before its first kernel runs, kept to what it uses.

Two costs of numba's that a command using only cached kernels need not pay:

1. **SciPy's BLAS.** The first numba function a process compiles or loads from
   the cache makes numba import its NumPy support, and that checks once for BLAS
   with ``import scipy.linalg.cython_blas``: all of ``scipy.linalg`` (85 modules)
   and OpenBLAS's own start, about 0.2 s of CPU, although only the general
   kernel's larger products use BLAS (``np.dot``) and the small-model path none.
   :func:`defer_blas` lets that one check pass without the import. Nothing else
   changes: typing ``np.dot`` still calls numba's real check (the first call of
   the stand-in puts it back), which imports SciPy's BLAS in a process that
   compiles a BLAS product, and numba's runtime fetches the BLAS functions from
   ``scipy.linalg.cython_blas`` when one first runs (a cached kernel).
   :func:`install` arranges for :func:`defer_blas` to run just before numba's
   NumPy support (``numba.np.arraymath``) is imported, so that a process that
   never imports it (one that only loads cached kernels) does not import
   ``numba.np.linalg`` either (0.04 s).

2. **The compiler's registries.** Before it loads anything from its cache, numba
   "refreshes" its typing and target contexts: it imports the implementation of
   every Python and NumPy feature it can compile (``numba.cpython.*``,
   ``numba.np.*``, typed containers, ...), registers each, and scans the installed
   packages' entry points for extensions: about 0.11 s, the largest part of a
   warm command after ``import numba`` itself. None of that is read when a cached
   function is rebuilt: that is machine code linked against numba's runtime
   (NRT, which is initialised) and its C helpers (registered when the target
   context is created). :func:`install` makes the cache loads of fastrnn's own
   kernels skip the refresh; a compile still does it (numba's compiler refreshes
   on its own), and any failure of the quick load falls back to numba's own path,
   so the worst case is the time it costs today. Other packages' numba functions
   are not touched.

Three smaller ones: numba's scan for extensions before a kernel's first call
(:func:`skip_extension_scan`) with the ``importlib.metadata`` it imports only for
that (:func:`lazy_metadata`), and the ``numpy.ma`` import of its rule for typing an
array (:func:`exact_ndarray_typeof`): about 0.03-0.04 s together.

Each of these reaches into numba's internals and falls back to numba's own path
when they are not what it expects. ``FASTRNN_PLAIN_NUMBA=1`` in the environment
turns every one of them off (:func:`install` then does nothing): the way to tell
whether a problem with another numba version comes from here.
"""

import os
import sys

#: Cache loads of functions defined in these modules skip numba's registry refresh.
_PACKAGE = __name__.rpartition(".")[0] + "."


def defer_blas():
    """Before numba's NumPy support loads: make its import-time BLAS check free (once)."""
    if "numba.np.arraymath" in sys.modules:  # already loaded: nothing to save
        return
    try:
        from numba.np import linalg
    except ImportError:
        return
    real = linalg.ensure_blas
    if getattr(real, "_fastrnn_deferred", False):
        return

    def check_later():
        linalg.ensure_blas = real  # every later caller (np.dot's typing) gets numba's own check

    check_later._fastrnn_deferred = True
    linalg.ensure_blas = check_later


class _BeforeArraymath:  # a meta path finder (importlib.abc's base class is not needed, nor its import)
    """Runs :func:`defer_blas` when ``numba.np.arraymath`` is first looked for, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name == "numba.np.arraymath":
            _remove_finder(self)
            defer_blas()
        return None  # the ordinary finders import it


def _remove_finder(finder):
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


def quick_cache_loads():
    """Make numba's cache loads of this package's kernels skip the registry refresh (once per process)."""
    try:
        from numba.core import caching
        from numba.core.runtime import rtsys
    except ImportError:  # a numba without these internals: its own path, nothing else changes
        return
    real = getattr(caching.Cache, "load_overload", None)
    if real is None or getattr(real, "_fastrnn_quick", False):
        return

    def load_overload(self, sig, target_context):
        module = getattr(getattr(self, "_py_func", None), "__module__", None) or ""
        if module.startswith(_PACKAGE):
            try:
                rtsys.initialize(target_context)  # the runtime the machine code calls (what refresh would start)
                with self._guard_against_spurious_io_errors():
                    cres = self._load_overload(sig, target_context)
                if cres is not None:
                    return cres
            except Exception:  # anything the registries would have provided: numba's own path below
                pass
        return real(self, sig, target_context)

    load_overload._fastrnn_quick = True
    load_overload.__wrapped__ = real
    caching.Cache.load_overload = load_overload
    skip_extension_scan()


def skip_extension_scan():
    """The first call of each of this package's kernels does not make numba scan for extensions.

    Before it first looks for a compiled version of any function, numba initialises
    the installed numba extensions (``numba.core.entrypoints.init_all``: every
    distribution's entry points read through ``importlib.metadata``, about 25 ms
    with that import). fastrnn's kernels take only NumPy arrays, numbers and tuples
    of them and call only numba's own NumPy and math support, so no extension can
    change how they are typed or compiled; the scan is left to the first function
    of any other package that numba dispatches (it still happens once, then).
    """
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return
    real = getattr(Dispatcher, "_compilation_chain_init_hook", None)
    if real is None or getattr(real, "_fastrnn_quick", False):
        return

    def hook(self):
        module = getattr(getattr(self, "py_func", None), "__module__", None) or ""
        if not module.startswith(_PACKAGE):
            real(self)

    hook._fastrnn_quick = True
    hook.__wrapped__ = real
    Dispatcher._compilation_chain_init_hook = hook


def exact_ndarray_typeof():
    """numba's type of an exact ``numpy.ndarray`` without importing ``numpy.ma``.

    The first call of each kernel types its arguments in Python, and numba's rule for
    arrays first asks whether the array is a ``numpy.ma.MaskedArray``: that attribute
    of NumPy imports ``numpy.ma`` (about 10 ms of a warm command). An array whose type
    is exactly ``numpy.ndarray`` is no masked array, so for those the same type is
    built here from the same parts (numba's ``from_dtype`` and ``map_layout``, read-only
    flag); subclasses, and any dtype numba refuses, go to numba's own rule and its
    messages. tests/test_startup.py compares both on arrays of every layout and dtype.
    """
    try:
        import numpy as np
        from numba.core import errors, types
        from numba.core.typing import typeof as typeof_module
        from numba.np import numpy_support
    except ImportError:
        return
    registry = typeof_module.typeof_impl
    real = registry.dispatch(np.ndarray)
    if getattr(real, "_fastrnn_quick", False):
        return

    def typeof_ndarray(val, c):
        if type(val) is not np.ndarray:
            return real(val, c)
        try:
            dtype = numpy_support.from_dtype(val.dtype)
        except errors.NumbaNotImplementedError:
            return real(val, c)
        return types.Array(dtype, val.ndim, numpy_support.map_layout(val), readonly=not val.flags.writeable)

    typeof_ndarray._fastrnn_quick = True
    typeof_ndarray.__wrapped__ = real
    registry.register(np.ndarray)(typeof_ndarray)


def import_numba():
    """``import numba`` without two imports it makes only to look at them, when nothing needs them.

    numba's ``__init__`` imports SciPy (the package alone: 15 ms, ``subprocess`` and
    ``sysconfig`` among it) only to refuse SciPy < 1.0, and its config imports PyYAML
    (10-20 ms, most of it compiling the reader's regular expressions) only to read a
    ``.numba_config.yaml`` in the current folder. Neither is imported here when
    absent from ``sys.modules``: SciPy stays importable as usual (its version is
    recorded by :func:`scipy_version`; SciPy's BLAS loads when a kernel needs it), and
    PyYAML is kept out only when there is no such file, so numba reads every config
    it would have read. Nothing happens if numba is already imported.
    """
    if "numba" in sys.modules:
        return
    blocked = [name for name in ("scipy", "yaml") if name not in sys.modules]
    if os.path.exists(".numba_config.yaml") and "yaml" in blocked:
        blocked.remove("yaml")
    for name in blocked:
        sys.modules[name] = None  # "import name" raises ImportError, which numba handles
    lazy_metadata()
    try:
        import numba  # noqa: F401
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def lazy_metadata():
    """Make ``importlib.metadata`` load on its first use instead of at ``import numba``.

    numba imports it at start-up (``numba.core.entrypoints``, for the extensions'
    entry points it scans when it refreshes its registries, which the quick cache
    loads skip) and with it ``email``, ``zipfile``, ``csv`` and more: about 20 ms of
    a warm command that never reads it. The module is the real one, loaded by the
    standard library's :class:`importlib.util.LazyLoader` on the first attribute
    anyone reads (numba's scan when it compiles, tqdm's version lookup, ...). Nothing
    happens if it is already imported or cannot be found.
    """
    name = "importlib.metadata"
    if name in sys.modules:
        return
    import importlib
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # lazy: only arranges the load
    importlib.metadata = module  # "from importlib import metadata" reads the attribute


def scipy_version():
    """SciPy's version without importing it (its ``version.py``), or "not installed"."""
    module = sys.modules.get("scipy")
    if module is not None:
        return module.__version__
    import importlib.util

    try:
        spec = importlib.util.find_spec("scipy")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "not installed"
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("version = "):
                    return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    try:  # an unusual layout: ask the package itself
        import scipy
    except ImportError:
        return "not installed"
    return scipy.__version__


def is_command():
    """Whether this process is the ``fastrnn`` command: ``python -m fastrnn ...``, the installed script,
    or a checkout's ``python cli.py ...``."""
    argv = list(getattr(sys, "orig_argv", ()))
    if len(argv) < 2:
        return False
    if os.path.splitext(os.path.basename(argv[1]))[0] == "fastrnn":
        return True
    if os.path.basename(argv[1]) == "cli.py" and os.path.isfile(os.path.join(os.path.dirname(argv[1]), "fastrnn", "__init__.py")):
        return True  # a checkout's wrapper: python cli.py train ...
    return any(a == "-m" and b == "fastrnn" for a, b in zip(argv[1:], argv[2:])) or "-mfastrnn" in argv[1:]


def pause_gc():
    """In the ``fastrnn`` command only: no garbage collection while the imports run.

    ``import numba`` and NumPy make about 90000 objects, and the collections that
    their creation triggers walk them over and over (about 0.03 s of a warm command).
    The command's entry (:func:`fastrnn.cli.main`) freezes what the imports made,
    then turns collection back on (:func:`resume_gc`). A library import changes nothing.
    """
    global _GC_PAUSED
    import gc

    if is_command() and gc.isenabled():
        gc.disable()
        _GC_PAUSED = True


def resume_gc():
    """Collection back on if :func:`pause_gc` turned it off (after ``gc.freeze()``)."""
    global _GC_PAUSED
    if _GC_PAUSED:
        import gc

        _GC_PAUSED = False
        gc.enable()


_GC_PAUSED = False


def install():
    """The savings above; called by ``fastrnn/__init__.py`` before any kernel module is imported.

    The environment's numba variables are checked first (:func:`check_environment`), and
    ``import numba`` runs under :func:`numba_parse_warnings`, in either mode. Nothing else
    when ``FASTRNN_PLAIN_NUMBA`` is set to anything but "" or "0"."""
    check_environment()
    if os.environ.get("FASTRNN_PLAIN_NUMBA", "0") not in ("", "0"):
        with numba_parse_warnings():
            import numba  # noqa: F401
        check_threading_layer()
        return
    pause_gc()
    with numba_parse_warnings():
        import_numba()
    check_threading_layer()
    if "numba.np.arraymath" not in sys.modules and not any(isinstance(f, _BeforeArraymath) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeArraymath())
    quick_cache_loads()
    exact_ndarray_typeof()


# ------------------------------------------------------------------ the environment

#: numba's threading layers (NUMBA_THREADING_LAYER_PRIORITY orders all three) and, for each
#: value NUMBA_THREADING_LAYER takes, the layers that can serve it on Linux (numba's
#: ``numba.np.ufunc.parallel._launch_threads``; "default" takes the first that loads, and
#: workqueue always does).
THREADING_LAYERS = ("tbb", "omp", "workqueue")
LAYER_CHOICES = {"default": THREADING_LAYERS, "safe": ("tbb",), "threadsafe": ("tbb", "omp"),
                 "forksafe": ("tbb", "workqueue") if sys.platform.startswith("linux") else THREADING_LAYERS,
                 "tbb": ("tbb",), "omp": ("omp",), "workqueue": ("workqueue",)}


def _cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def refuse(message):
    """An environment fastrnn cannot run in: in the ``fastrnn`` command, ``Error: message`` on stderr and
    exit status 2 (every command, ``--help`` and ``--version`` too: this runs at import); in a library
    import, :class:`fastrnn.exceptions.InvalidArgument` with the message."""
    if is_command():
        sys.stderr.write(f"Error: {message}\n")
        sys.stderr.flush()
        raise SystemExit(2)
    from .exceptions import InvalidArgument

    raise InvalidArgument(message)


def environment_problem(environ=None):
    """The one-line reason a numba variable of ``environ`` (default ``os.environ``) cannot work, or None.

    Read before numba is imported, from the text alone: ``NUMBA_NUM_THREADS`` must be a whole
    number of at least 1 (numba raises a ValueError from deep inside ``import numba`` for 0 or
    below, and for text warns and takes every core), ``NUMBA_DISABLE_JIT`` off (fastrnn's
    kernels are called as compiled functions), ``NUMBA_THREADING_LAYER`` one of the
    values numba knows, ``NUMBA_THREADING_LAYER_PRIORITY`` an ordering of its three layers
    (numba refuses both only when it first starts its threads, mid-run).
    """
    env = os.environ if environ is None else environ
    value = env.get("NUMBA_NUM_THREADS")
    if value is not None:
        try:
            threads = int(value.strip())
        except ValueError:
            threads = None
        if threads is None or threads < 1:
            return (f"NUMBA_NUM_THREADS={value!r} is not a number of threads: numba needs a whole number of at least 1; "
                    f"set it to 1..{_cores()} (this machine's cores) or unset it")
    value = env.get("NUMBA_DISABLE_JIT")
    try:
        disabled = value is not None and int(value.strip()) != 0
    except ValueError:
        disabled = False  # numba cannot parse it either: numba_parse_warnings says so
    if disabled:
        return (f"NUMBA_DISABLE_JIT={value!r} turns numba's compiler off, and fastrnn's kernels run only compiled "
                f"(as plain Python they would fail, or take hours); unset it or set it to 0")
    value = env.get("NUMBA_THREADING_LAYER")
    if value is not None and value.strip().lower() not in LAYER_CHOICES:
        return (f"NUMBA_THREADING_LAYER={value!r} is not a threading layer numba knows; use one of "
                f"{', '.join(LAYER_CHOICES)}, or unset it")
    value = env.get("NUMBA_THREADING_LAYER_PRIORITY")
    if value is not None and sorted(value.split()) != sorted(THREADING_LAYERS):
        return (f"NUMBA_THREADING_LAYER_PRIORITY={value!r} must name numba's three threading layers once each, "
                f"in the order to try them (e.g. 'tbb omp workqueue'), or be unset")
    return None


def check_environment(environ=None):
    """:func:`refuse` the environment :func:`environment_problem` finds a problem in."""
    problem = environment_problem(environ)
    if problem is not None:
        refuse(problem)


class numba_parse_warnings:
    """Around ``import numba``: a ``NUMBA_*`` value numba cannot parse is refused in one line.

    numba reads its variables when it is imported; one it cannot parse (``NUMBA_OPT=7``,
    ``NUMBA_BOUNDSCHECK=yes``) it reports as a RuntimeWarning carrying a traceback, and
    then runs with the default instead of what was asked. Here that warning becomes
    :func:`refuse` naming the variable, its value and numba's reason; every other warning
    of the import is passed on unchanged.
    """

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, kind, value, tb):
        import re
        import warnings

        self._catch.__exit__(kind, value, tb)
        if kind is not None:
            return False
        for w in self._caught:
            match = re.match(r"Environment variable '(\w+)' is defined but its associated value '(.*?)' could not be "
                             r"parsed", str(w.message), re.S)
            if match is not None:
                reason = [line for line in str(w.message).splitlines() if line.strip()][-1].strip()
                refuse(f"{match.group(1)}={match.group(2)!r} cannot be read by numba ({reason}); correct it or unset it")
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        return False


def check_threading_layer():
    """After ``import numba``: refuse a NUMBA_THREADING_LAYER whose layer cannot be loaded here.

    numba finds out only when a parallel kernel first starts its threads (a sweep's
    vectorised runs, ``loss_and_grads(parallel=True)``), with a multi-line ValueError;
    here the layer's module is imported instead (loading its library), only when the
    variable names a layer or a purpose other than "default".
    """
    value = os.environ.get("NUMBA_THREADING_LAYER", "default").strip().lower()
    if value == "default" or value not in LAYER_CHOICES:
        return
    import importlib

    for layer in LAYER_CHOICES[value]:
        try:
            importlib.import_module(f"numba.np.ufunc.{layer}pool" if layer != "workqueue" else "numba.np.ufunc.workqueue")
        except ImportError:
            continue
        return
    need = {"tbb": "Intel TBB (pip install tbb)", "omp": "an OpenMP runtime"}
    missing = " or ".join(need.get(layer, layer) for layer in LAYER_CHOICES[value])
    refuse(f"NUMBA_THREADING_LAYER={os.environ['NUMBA_THREADING_LAYER']!r}: numba cannot load that threading layer here "
           f"(it needs {missing}); install it, choose workqueue, or unset the variable")
