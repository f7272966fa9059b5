"""Start-up: what a warm command imports and loads, checked by what it leaves in sys.modules.

No timings here: the behaviour that makes a command start fast (modules left
unimported, numba's registries left unloaded, cached kernels loaded the quick way)
and that it computes the same numbers as before.
"""

import os
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import pytest

import fastrnn
from fastrnn import _startup

ROOT = pathlib.Path(__file__).parents[1]

#: Imported by numba's registry refresh (numba.core.cpu's load_additional_registries) and nothing else here.
REFRESH_ONLY = ("numba.np.polynomial.polynomial_core", "numba.typed.typeddict", "numba.cpython.setobj")


def _run(code, cwd):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.splitlines()


def test_a_warm_binary_command_loads_its_kernels_without_numbas_registries(tmp_path):
    """The second (warm) process loads the cached kernel without the refresh, and trains to the same numbers."""
    code = ("import sys; from fastrnn.cli import main\n"
            "try:\n    main(['train', '--task', 'binary', '--iters', '300', '--log-every', '100', '--no-csv', '-q'])\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {REFRESH_ONLY + ('numba.np.linalg', 'scipy.linalg', 'pandas', 'tqdm')!r} if m in sys.modules))")
    first = _run(code, tmp_path)  # compiles or loads: the cache is warm afterwards
    second = _run(code, tmp_path)
    assert second[-1] == "[]"
    summary = [line.split("; training")[0] for line in (first[0], second[0])]
    assert summary[0] == summary[1] and "after 300 iterations" in summary[0]


def test_quickly_loaded_kernels_compute_what_numbas_own_load_computes(tmp_path):
    code = ("import numpy as np, fastrnn\n"
            "r = fastrnn.train(task='binary', iters=300, log_every=100)\n"
            "m = fastrnn.RNN(2, 16, 1, head='sigmoid', seed=3); X = np.random.default_rng(0).random((1, 8, 2))\n"
            "loss, g = m.loss_and_grads(X, np.ones((1, 8, 1)))\n"
            "print(repr(r.model.theta.tolist()), repr(loss), repr(g['W0'].tolist()))")
    _run(code, tmp_path)  # warm the cache
    quick = _run(code, tmp_path)
    own = _run("from numba.core.registry import cpu_target; cpu_target.target_context.refresh()\n" + code, tmp_path)
    assert quick == own


def _fake_cache(module, load):
    return SimpleNamespace(_py_func=SimpleNamespace(__module__=module), _load_overload=load,
                           _guard_against_spurious_io_errors=lambda: __import__("contextlib").nullcontext())


def test_a_failing_quick_load_falls_back_to_numbas_own(monkeypatch):
    """Anything the quick load lacks (an error while rebuilding) sends it down numba's own path: refresh, then load."""
    from numba.core import caching
    from numba.core.runtime import rtsys

    assert getattr(caching.Cache.load_overload, "_fastrnn_quick", False), "importing fastrnn installs the quick load"
    calls = []

    def load(sig, ctx):
        calls.append("load")
        if "refresh" not in calls:
            raise RuntimeError("a symbol the registries would have provided")
        return "loaded"

    monkeypatch.setattr(rtsys, "initialize", lambda context: calls.append("init"))
    fake = _fake_cache("fastrnn._kernels", load)
    ctx = SimpleNamespace(refresh=lambda: calls.append("refresh"))
    assert caching.Cache.load_overload(fake, "sig", ctx) == "loaded"
    assert calls == ["init", "load", "refresh", "load"]


def test_other_packages_kernels_take_numbas_own_path(monkeypatch):
    from numba.core import caching
    from numba.core.runtime import rtsys

    calls = []
    monkeypatch.setattr(rtsys, "initialize", lambda context: calls.append("init"))
    fake = _fake_cache("someone_else.kernels", lambda sig, ctx: calls.append("load") or "loaded")
    ctx = SimpleNamespace(refresh=lambda: calls.append("refresh"))
    assert caching.Cache.load_overload(fake, "sig", ctx) == "loaded"
    assert calls == ["refresh", "load"]


@pytest.mark.parametrize("first", ["import numba.np.arraymath", "from numba.core.registry import cpu_target; cpu_target.target_context.refresh()"])
def test_numbas_numpy_support_still_finds_blas_later_without_importing_it_first(tmp_path, first):
    """The BLAS check is deferred whoever imports numba's NumPy support; typing np.dot still gets numba's real check."""
    code = ("import sys, fastrnn\n"
            f"{first}\n"
            "print('scipy.linalg' in sys.modules)\n"
            "import numba, numpy as np\n"
            "f = numba.njit(lambda a, b: np.dot(a, b))\n"
            "print(f(np.ones((2, 2)), np.ones((2, 2))).sum(), 'scipy.linalg' in sys.modules)")
    assert _run(code, tmp_path) == ["False", "8.0 True"]


def test_install_is_idempotent():
    from numba.core import caching

    before = (caching.Cache.load_overload, list(sys.meta_path))
    _startup.install()
    assert (caching.Cache.load_overload, list(sys.meta_path)) == before
    assert fastrnn.__version__


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("shape", [(2, 16, 1, 1), (20, 100, 10, 1), (3, 5, 4, 3)])
def test_sizes_computed_in_python_are_the_kernels(cell, shape):
    """params.layout and engine.state_size use no compiled code (nothing to load when a model is made);
    their numbers are the compiled layer_offset / param_count / state_size's."""
    from fastrnn import _kernels, engine

    I, H, O, L = shape
    model = fastrnn.RNN(I, H, O, layers=L, cell=cell)
    offsets = {name: off for name, _, off in model.layout}
    for l in range(L):
        assert offsets[f"U{l}"] == _kernels.layer_offset(model.dims, l)
    assert offsets["V"] == _kernels.layer_offset(model.dims, L)
    assert model.n_params == _kernels.param_count(model.dims)
    for B in (1, 7):
        assert engine.state_size(model, B) == _kernels.state_size(model.dims, B)


def test_making_a_model_loads_no_compiled_code(tmp_path):
    code = ("import fastrnn, numba\n"
            "from fastrnn import _kernels, cells, params\n"
            "m = fastrnn.RNN(3, 8, 2, layers=2, cell='lstm'); fastrnn.engine.new_state(m, 4)\n"
            "print([f.__name__ for f in (_kernels.layer_offset, _kernels.param_count, _kernels.state_size, cells.states,"
            " cells.gates) if f.signatures])")
    assert _run(code, tmp_path) == ["[]"]


def test_the_command_line_entry_freezes_the_gc_on_the_way_out_and_keeps_its_exit_status(tmp_path):
    """main() without argv (the process ends) freezes the GC (no final walk over numba's objects);
    with argv (called from Python, as the tests do) it leaves the GC alone."""
    code = ("import atexit, gc, sys; from fastrnn.cli import main\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    print('argv', e.code, gc.get_freeze_count())\n"
            "sys.argv = ['fastrnn', 'train', '--iters', '0']\n"
            "main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--iters" in out.stderr, out.stderr
    assert out.stdout.splitlines()[-2:] == ["argv 0 0", "frozen True"]


def test_importing_fastrnn_imports_neither_scipy_nor_yaml_and_both_still_import(tmp_path):
    code = ("import sys, fastrnn, numba\n"
            "print('scipy' in sys.modules, 'yaml' in sys.modules)\n"
            "import scipy, yaml\n"
            "from fastrnn.training import versions\n"
            "print(versions()['scipy'] == scipy.__version__, numba.core.config._HAVE_YAML)")
    assert _run(code, tmp_path) == ["False False", "True False"]


def test_a_numba_config_file_in_the_folder_is_still_read(tmp_path):
    (tmp_path / ".numba_config.yaml").write_text("debug_cache: 1\n")
    code = "import sys, fastrnn, numba; print(numba.core.config.DEBUG_CACHE, 'yaml' in sys.modules)"
    assert _run(code, tmp_path) == ["1 True"]


def test_the_scipy_version_is_read_without_importing_it(tmp_path):
    code = ("import sys, fastrnn\nfrom fastrnn._startup import scipy_version\nv = scipy_version()\n"
            "print('scipy' in sys.modules)\nimport scipy\nprint(v == scipy.__version__ == scipy_version())")
    assert _run(code, tmp_path) == ["False", "True"]


def test_the_sweep_help_lists_what_a_sweep_can_set_and_the_cli_does_not_import_sweeps(tmp_path):
    from fastrnn import cli, sweeps

    assert cli._sweepable_help().endswith(f"Settings: {', '.join(sweeps.SWEEPABLE)}.")
    code = "import sys, fastrnn.cli; print('fastrnn.sweeps' in sys.modules, 'multiprocessing' in sys.modules)"
    assert _run(code, tmp_path) == ["False False"]


def test_a_parallel_kernel_loads_the_quick_way_and_computes_the_serial_numbers(tmp_path):
    """numba's parallel (parfor) kernels need their thread pool: the quick load still starts it (or falls back)."""
    code = ("import sys, numpy as np, fastrnn\n"
            "m = fastrnn.RNN(3, 8, 2, seed=1); rng = np.random.default_rng(0)\n"
            "X = rng.standard_normal((6, 5, 3)); Y = np.eye(2)[rng.integers(0, 2, (6, 5))]\n"
            "a = m.loss_and_grads(X, Y, parallel=True); b = m.loss_and_grads(X, Y, parallel=False)\n"
            "print(np.isclose(a[0], b[0], rtol=1e-12, atol=0),"
            " all(np.allclose(a[1][k], b[1][k], rtol=1e-10, atol=1e-14) for k in a[1]))")
    _run(code, tmp_path)  # compile or load once
    assert _run(code, tmp_path) == ["True True"]


def test_a_warm_command_neither_imports_importlib_metadata_nor_scans_extensions_and_others_still_do(tmp_path):
    """fastrnn's kernels skip numba's extension scan; importlib.metadata is loaded lazily, on first use.
    The first function of another package still initialises the extensions, and the module works."""
    code = ("import sys; from fastrnn.cli import main\n"
            "try:\n    main(['train', '--task', 'binary', '--iters', '300', '--log-every', '100', '--no-csv', '-q'])\n"
            "except SystemExit:\n    pass\n"
            "from numba.core import entrypoints\n"
            "print('email' in sys.modules, entrypoints._already_initialized)\n"
            "import numba\n"
            "print(numba.njit(lambda x: x + 1)(1), entrypoints._already_initialized)\n"
            "import importlib.metadata\n"
            "print(importlib.metadata.version('numpy') == __import__('numpy').__version__, 'email' in sys.modules)")
    _run(code, tmp_path)  # compiles or loads: the cache is warm afterwards
    assert _run(code, tmp_path)[-3:] == ["False False", "2 True", "True True"]


def test_the_extension_scan_hook_is_installed_once_and_kept_for_other_packages():
    from numba.core.dispatcher import Dispatcher

    hook = Dispatcher._compilation_chain_init_hook
    _startup.install()
    assert Dispatcher._compilation_chain_init_hook is hook and hook._fastrnn_quick
    calls = []
    monkey = SimpleNamespace(py_func=SimpleNamespace(__module__="someone_else.kernels"))
    import numba.core.entrypoints as ep

    real = ep.init_all
    try:
        ep.init_all = lambda: calls.append("scan")
        hook(monkey)
        hook(SimpleNamespace(py_func=SimpleNamespace(__module__="fastrnn._small")))
    finally:
        ep.init_all = real
    assert calls == ["scan"]


def test_the_exact_ndarray_typeof_gives_numbas_types_and_leaves_subclasses_to_numba():
    """Arrays of every layout, several dtypes, read-only and 0-d: the same numba type as numba's own rule;
    a masked array and an unsupported dtype still get numba's own errors."""
    import numpy as np
    from numba.core import errors
    from numba.core.typing.typeof import Purpose, _TypeofContext, typeof_impl

    ours = typeof_impl.dispatch(np.ndarray)
    assert ours._fastrnn_quick
    real = ours.__wrapped__
    c = _TypeofContext(Purpose.argument)
    base = np.arange(24.0).reshape(2, 3, 4)
    readonly = np.ones(5)
    readonly.flags.writeable = False
    arrays = [base, base[:, ::2], np.asfortranarray(base), base.transpose(1, 0, 2), np.zeros(0), np.float64(1.0) * np.ones(()),
              base.astype(np.float32), np.arange(5), np.zeros((3, 3), np.int8), np.zeros(4, np.complex128),
              np.zeros(3, bool), readonly, np.ones((1, 1))[:, :1]]
    arrays += [np.array(["x"], dtype=object), np.array(["ab"]), np.zeros(2, "M8[ns]"), np.zeros(2, ">f8"),
               np.zeros(2, [("a", "f8"), ("b", "i4")]), np.zeros(2, [("a", object)]), np.zeros(2, np.float16)]

    def outcome(fn, a):
        try:
            return fn(a, c)
        except Exception as exc:  # the same refusal, message and all
            return type(exc), str(exc)

    for a in arrays:
        assert outcome(ours, a) == outcome(real, a), a
    with pytest.raises(errors.NumbaTypeError):
        ours(np.ma.masked_array([1.0, 2.0]), c)


def test_a_warm_command_does_not_import_numpy_ma(tmp_path):
    code = ("import sys; from fastrnn.cli import main\n"
            "try:\n    main(['train', '--task', 'binary', '--iters', '300', '--log-every', '100', '--no-csv', '-q'])\n"
            "except SystemExit:\n    pass\n"
            "print('numpy.ma' in sys.modules)")
    _run(code, tmp_path)
    assert _run(code, tmp_path)[-1] == "False"


@pytest.mark.parametrize("argv, command", [
    (["python", "-m", "fastrnn", "train"], True), (["/venv/bin/python", "/venv/bin/fastrnn", "train"], True),
    (["python", "-mfastrnn"], True), (["python", "-m", "pytest", "-q"], False), (["python", "-c", "import fastrnn"], False),
    (["python", "script.py", "-m", "fastrnn"], True), (["python"], False)])
def test_the_fastrnn_command_is_recognised_from_the_interpreters_arguments(monkeypatch, argv, command):
    monkeypatch.setattr(sys, "orig_argv", argv, raising=False)
    assert _startup.is_command() is command


def test_the_command_pauses_collection_during_its_imports_and_a_library_import_does_not(tmp_path, monkeypatch):
    import gc

    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "fastrnn", "train"], raising=False)
    assert gc.isenabled()
    try:
        _startup.pause_gc()
        assert not gc.isenabled()
    finally:
        _startup.resume_gc()
    assert gc.isenabled()
    _startup.resume_gc()  # once only
    assert gc.isenabled()
    code = ("import gc, sys, runpy\n"
            "import fastrnn\n"
            "print('library', gc.isenabled())\n"
            "from fastrnn import cli, _startup\n"
            "_startup._GC_PAUSED = True; gc.disable()  # as in a command's imports\n"
            "sys.argv = ['fastrnn', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    print('command', gc.isenabled(), gc.get_freeze_count() > 0)\n")
    lines = _run(code, tmp_path)
    assert lines[0] == "library True" and lines[-1] == "command True True"
    out = subprocess.run([sys.executable, "-m", "fastrnn", "train", "--task", "binary", "--iters", "100", "--no-csv"],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and "after 100 iterations" in out.stdout, out.stderr


def test_fastrnn_plain_numba_turns_every_shortcut_off_and_computes_the_same_numbers(tmp_path):
    """The escape hatch: with FASTRNN_PLAIN_NUMBA=1 numba runs as it ships (scipy imported by numba,
    the refresh done before a cache load) and the training numbers are those of the quick path."""
    code = ("import sys, numpy as np, fastrnn\n"
            "r = fastrnn.train(task='binary', iters=300, log_every=100)\n"
            "print(repr(r.model.theta.tolist()))\n"
            f"print(sorted(m for m in {REFRESH_ONLY + ('scipy',)!r} if m in sys.modules))")
    quick = _run(code, tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "FASTRNN_PLAIN_NUMBA": "1"})
    assert out.returncode == 0, out.stderr
    plain = out.stdout.splitlines()
    assert quick[-1] == "[]"
    assert plain[0] == quick[0]
    assert "scipy" in plain[-1] and any(m in plain[-1] for m in REFRESH_ONLY)
