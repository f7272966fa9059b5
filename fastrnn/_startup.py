"""Start-up: what ``import fastrnn`` does before any kernel loads, and the command's shortcuts.

In every process, library or command, ``import fastrnn`` (:func:`install`) checks the
environment's numba variables (:func:`check_environment`, :func:`numba_parse_warnings`,
:func:`check_threading_layer`: a bad one is refused in one line) and imports numba as
it ships. Nothing of numba's or of the standard library's is replaced: a program that
imports fastrnn next to its own numba code gets numba's own typing, dispatchers and
cache loader, and the standard library's ``importlib.metadata``.

The ``fastrnn`` command's own process (:func:`is_command`: ``python -m fastrnn``, the
installed script, a checkout's ``python cli.py``) takes two shortcuts on top
(:data:`SHORTCUTS`), each because it measures as worth it on a warm
``fastrnn train --task binary --iters 20000`` (0.33-0.36 s with both, 0.70 s with
neither, on a 2-core machine; ``benchmarks/bench_startup_shortcuts.py`` times each):

- ``gc``: no garbage collection while the command imports, and the collector frozen
  around the command (:func:`pause_gc`, :func:`resume_gc`, :func:`fastrnn.cli.main`):
  0.06-0.10 s of the warm command.
- ``cache``: fastrnn's own cached kernels load without numba's registry refresh
  (:meth:`fastrnn._cache.KeyedCache.quick_load`, on when ``fastrnn._cache.QUICK_LOADS``
  is): 0.14-0.18 s, since numba's NumPy support and SciPy's BLAS then stay unimported
  in a command that only loads cached kernels.

``FASTRNN_PLAIN_NUMBA=1`` turns both off in the command too (a comma-separated list of
names turns off those only).
"""

import os
import sys


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
    their creation triggers walk them over and over. The command's entry
    (:func:`fastrnn.cli.main`) freezes what the imports made, then turns collection
    back on (:func:`resume_gc`), and freezes again on the way out (no final walk):
    together 0.06-0.10 s of a warm command. A library import changes nothing.
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


#: The command's start-up shortcuts, by name (see the module's notes).
SHORTCUTS = ("gc", "cache")


def shortcuts(environ=None):
    """The shortcuts this process takes: none outside the ``fastrnn`` command (:func:`is_command`).

    In the command, every name of :data:`SHORTCUTS`, less those ``FASTRNN_PLAIN_NUMBA``
    (in ``environ``, default ``os.environ``) turns off: "", "0" or unset none, a
    comma-separated list of names those, any other value ("1") all of them.
    """
    if not is_command():
        return ()
    env = os.environ if environ is None else environ
    value = env.get("FASTRNN_PLAIN_NUMBA", "0").strip()
    if value in ("", "0"):
        return SHORTCUTS
    off = {name.strip() for name in value.split(",")}
    if not off <= set(SHORTCUTS):
        return ()
    return tuple(name for name in SHORTCUTS if name not in off)


def prepare():
    """Called by ``fastrnn/__init__.py`` before any kernel module is imported.

    Every process: the environment's numba variables are checked (:func:`check_environment`),
    ``import numba`` runs under :func:`numba_parse_warnings`, and a threading layer that
    cannot load is refused (:func:`check_threading_layer`). The ``fastrnn`` command's process
    also takes its :func:`shortcuts`. Running it again changes nothing."""
    check_environment()
    taken = shortcuts()
    if "gc" in taken:
        pause_gc()
    with numba_parse_warnings():
        import numba  # noqa: F401
    check_threading_layer()
    from . import _cache

    _cache.QUICK_LOADS = "cache" in taken


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
    from . import cpus  # the standard library only
    from .exceptions import InvalidArgument

    try:
        cpus.forced_setting(env)  # FASTRNN_THREADS: auto, cpus or a whole number
    except InvalidArgument as exc:
        return str(exc)
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
