"""Start-up: ``import fastrnn`` leaves numba as it ships; the ``fastrnn`` command takes its shortcuts.

No timings here (benchmarks/bench_startup_shortcuts.py times them): the behaviour that
makes a command start fast (modules left unimported, numba's registries left unloaded,
cached kernels loaded the quick way), that it computes the same numbers as numba's own
path, and that a library import changes nothing of numba's or the standard library's.
"""

import os
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import pytest

import fastrnn
from fastrnn import _cache, _startup

ROOT = pathlib.Path(__file__).parents[1]

#: Imported by numba's registry refresh (numba.core.cpu's load_additional_registries) and nothing else here.
REFRESH_ONLY = ("numba.np.polynomial.polynomial_core", "numba.typed.typedobjectutils", "numba.cpython.setobj")

#: The first line of a script that runs as the fastrnn command's process would (its shortcuts on).
AS_COMMAND = "import sys; sys.orig_argv = [sys.executable, '-m', 'fastrnn']\n"

def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "FASTRNN_PLAIN_NUMBA"}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _run(code, cwd, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=_env(**env))
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.splitlines()


def _command(args, cwd, **env):
    """Run ``python -X importtime -m fastrnn ARGS``: (its stdout, the names of the modules it imported)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "fastrnn", *map(str, args)], capture_output=True,
                         text=True, cwd=cwd, env=_env(**env))
    assert out.returncode == 0, out.stdout + out.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    return out.stdout, imported - {"package"}


TRAIN = ["train", "--task", "binary", "--iters", "300", "--log-every", "100", "--no-csv", "-q"]

#: numba's objects that fastrnn once replaced, read in a process: (name, expression).
NUMBAS_OWN = (("typeof of an ndarray", "typeof.typeof_impl.dispatch(np.ndarray)"),
              ("the dispatchers' compilation hook", "dispatcher.Dispatcher._compilation_chain_init_hook"),
              ("the dispatchers' extension scan", "entrypoints.init_all"),
              ("the cache loader", "caching.Cache.load_overload"),
              ("the cache's load", "caching.Cache._load_overload"),
              ("the BLAS check", "linalg.ensure_blas"))


def test_importing_and_using_fastrnn_leaves_numba_and_importlib_metadata_as_they_ship(tmp_path):
    """numba's typing, dispatcher hooks and cache loader stay numba's own objects through an import of
    fastrnn, a training run and loss_and_grads (kernels compiled or loaded); importlib.metadata is the
    standard library's, loaded as usual; a user's numba function, np.dot included, works next to them."""
    names = ", ".join(name for name, _ in NUMBAS_OWN)
    code = ("import importlib, sys, gc, numpy as np, numba\n"
            "from numba.core import caching, dispatcher, entrypoints\nfrom numba.core.typing import typeof\n"
            "from numba.np import linalg\n"
            f"def own():\n    return [{', '.join(expr for _, expr in NUMBAS_OWN)}]\n"
            "before = own(); path = list(sys.meta_path)\n"
            "import fastrnn\n"
            "r = fastrnn.train(task='binary', iters=200, log_every=100)\n"
            "m = fastrnn.RNN(3, 8, 2, seed=1); X = np.ones((2, 4, 3)); m.loss_and_grads(X, np.eye(2)[np.zeros((2, 4), int)])\n"
            "after = own()\n"
            "print([a is b for a, b in zip(before, after)], sys.meta_path == path)\n"
            "print([f.__module__.split('.')[0] for f in after])\n"
            "import importlib.metadata as md, types\n"
            "print(type(md) is types.ModuleType, type(md.__spec__.loader).__name__, md.version('numpy') == np.__version__)\n"
            "f = numba.njit(lambda a, b: np.dot(a, b))\n"
            "print(f(np.ones((2, 3)), np.ones((3, 2))).sum(), gc.isenabled(), gc.get_freeze_count(), fastrnn._cache.QUICK_LOADS)\n")
    lines = _run(code, tmp_path)
    assert lines[0] == f"{[True] * len(NUMBAS_OWN)} True", names
    assert lines[1] == str(["numba"] * len(NUMBAS_OWN))
    assert lines[2] == "True SourceFileLoader True"
    assert lines[3] == "12.0 True 0 False"


def test_importing_fastrnn_first_still_gives_numbas_own_objects(tmp_path):
    """The other order: fastrnn imported before anything of numba's; each object is defined in numba
    (none wraps another), numba's registry refresh runs before a cache load, as numba ships."""
    code = ("import sys, types, numpy as np, fastrnn\n"
            "print(type(sys.modules['importlib.metadata']) is types.ModuleType)  # not a lazy module's stand-in\n"
            "import importlib.metadata as md\n"
            "from numba.core import caching, dispatcher, entrypoints\nfrom numba.core.typing import typeof\n"
            "fastrnn.train(task='binary', iters=200, log_every=100)\n"
            "from numba.np import linalg\n"
            f"objs = [{', '.join(expr for _, expr in NUMBAS_OWN)}]\n"
            "print(all(f.__module__.startswith('numba.') and not hasattr(f, '__wrapped__') for f in objs))\n"
            "print(type(md.__spec__.loader).__name__, md.version('numpy') == np.__version__)\n"
            f"print(sorted(m for m in {REFRESH_ONLY!r} if m in sys.modules) == sorted({REFRESH_ONLY!r}))")
    _run(code, tmp_path)  # compile or load once
    assert _run(code, tmp_path) == ["True", "True", "SourceFileLoader True", "True"]


def test_a_warm_binary_command_loads_its_kernels_without_numbas_registries(tmp_path):
    """The second (warm) command loads the cached kernel without the refresh (nor numba's NumPy support,
    SciPy's BLAS, pandas or tqdm), and trains to the same numbers as the first."""
    args = ["train", "--task", "binary", "--iters", "300", "--log-every", "100", "--no-csv"]
    first, _ = _command(args + ["--save", "first.npz"], tmp_path)  # compiles or loads: the cache is warm afterwards
    second, imported = _command(args + ["--save", "second.npz"], tmp_path)
    assert "numba" in imported and "fastrnn._small" in imported  # what -X importtime reports is read right
    unwanted = REFRESH_ONLY + ("numba.np.arraymath", "numba.np.linalg", "scipy.linalg", "pandas", "tqdm")
    assert sorted(m for m in unwanted if m in imported) == []
    summary = [line.split("; training")[0] for line in (first.splitlines()[-1], second.splitlines()[-1])]
    assert summary[0] == summary[1] and "after 300 iterations" in summary[0]
    import numpy as np

    a, b = fastrnn.RNN.load(tmp_path / "first.npz"), fastrnn.RNN.load(tmp_path / "second.npz")
    assert np.array_equal(a.theta, b.theta)


def test_quickly_loaded_kernels_compute_what_numbas_own_load_computes(tmp_path):
    """In the command's process (quick loads on) and with numba's own load (the refresh first): the same
    weights after a training run, and the same loss and gradients of a sigmoid-head model."""
    code = ("import numpy as np, fastrnn\n"
            "r = fastrnn.train(task='binary', iters=300, log_every=100)\n"
            "m = fastrnn.RNN(2, 16, 1, head='sigmoid', seed=3); X = np.random.default_rng(0).random((1, 8, 2))\n"
            "loss, g = m.loss_and_grads(X, np.ones((1, 8, 1)))\n"
            "print(repr(r.model.theta.tolist()), repr(loss), repr(g['W0'].tolist()))\n"
            f"import sys; print(fastrnn._cache.QUICK_LOADS, sorted(m for m in {REFRESH_ONLY!r} if m in sys.modules))")
    _run(AS_COMMAND + code, tmp_path)  # warm the cache
    quick = _run(AS_COMMAND + code, tmp_path)
    own = _run(code, tmp_path)
    assert quick[0] == own[0]
    assert quick[1] == "True []" and own[1] == f"False {sorted(REFRESH_ONLY)}"


def _keyed(load):
    """A KeyedCache of one of fastrnn's kernels whose file load is ``load``."""
    from fastrnn import _small

    cache = _cache.keyed_cache_class()(_small.train_chunk.py_func)
    cache._load_overload = load
    return cache


def test_a_failing_quick_load_falls_back_to_numbas_own(monkeypatch):
    """Anything the quick load lacks (an error while rebuilding) sends it down numba's own path: refresh, then load."""
    from numba.core.runtime import rtsys

    calls = []

    def load(sig, ctx):
        calls.append("load")
        if "refresh" not in calls:
            raise RuntimeError("a symbol the registries would have provided")
        return "loaded"

    monkeypatch.setattr(rtsys, "initialize", lambda context: calls.append("init"))
    monkeypatch.setattr(_cache, "QUICK_LOADS", True)
    ctx = SimpleNamespace(refresh=lambda: calls.append("refresh"))
    assert _keyed(load).load_overload("sig", ctx) == "loaded"
    assert calls == ["init", "load", "refresh", "load"]


@pytest.mark.parametrize("quick, expected", [(True, ["init", "load"]), (False, ["refresh", "load"])])
def test_the_library_loads_its_kernels_the_way_numba_does_and_the_command_the_quick_way(monkeypatch, quick, expected):
    from numba.core.runtime import rtsys

    calls = []
    monkeypatch.setattr(rtsys, "initialize", lambda context: calls.append("init"))
    monkeypatch.setattr(_cache, "QUICK_LOADS", quick)
    ctx = SimpleNamespace(refresh=lambda: calls.append("refresh"))
    assert _keyed(lambda sig, c: calls.append("load") or "loaded").load_overload("sig", ctx) == "loaded"
    assert calls == expected


def test_install_is_idempotent():
    from numba.core import caching

    before = (caching.Cache.load_overload, list(sys.meta_path), _cache.QUICK_LOADS)
    _startup.prepare()
    assert (caching.Cache.load_overload, list(sys.meta_path), _cache.QUICK_LOADS) == before
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
    """In the command's process, main() without argv (the process ends) freezes the GC (no final walk
    over numba's objects); with argv (called from Python, as the tests do) it leaves the GC alone; in a
    library process main() freezes nothing either way."""
    code = ("import atexit, gc, sys; from fastrnn.cli import main\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    print('argv', e.code, gc.get_freeze_count())\n"
            "sys.argv = ['fastrnn', 'train', '--iters', '0']\n"
            "main()")
    for first, frozen in ((AS_COMMAND, "True"), ("", "False")):
        out = subprocess.run([sys.executable, "-c", first + code], capture_output=True, text=True, cwd=tmp_path, env=_env())
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--iters" in out.stderr, out.stderr
        assert out.stdout.splitlines()[-2:] == ["argv 0 0", f"frozen {frozen}"]


def test_the_scipy_version_is_recorded(tmp_path):
    code = ("import fastrnn, scipy\nfrom fastrnn.training import versions\nfrom fastrnn._startup import scipy_version\n"
            "print(versions()['scipy'] == scipy_version() == scipy.__version__)")
    assert _run(code, tmp_path) == ["True"]


def test_the_sweep_help_lists_what_a_sweep_can_set_and_the_cli_does_not_import_sweeps(tmp_path):
    from fastrnn import cli, sweeps

    assert cli._sweepable_help().endswith(f"Settings: {', '.join(sweeps.SWEEPABLE)}.")
    code = "import sys, fastrnn.cli; print('fastrnn.sweeps' in sys.modules, 'multiprocessing' in sys.modules)"
    assert _run(code, tmp_path) == ["False False"]


def test_a_parallel_kernel_loads_the_quick_way_and_computes_the_serial_numbers(tmp_path):
    """numba's parallel (parfor) kernels need their thread pool: the quick load still starts it (or falls back)."""
    code = (AS_COMMAND + "import sys, numpy as np, fastrnn\n"
            "m = fastrnn.RNN(3, 8, 2, seed=1); rng = np.random.default_rng(0)\n"
            "X = rng.standard_normal((6, 5, 3)); Y = np.eye(2)[rng.integers(0, 2, (6, 5))]\n"
            "a = m.loss_and_grads(X, Y, parallel=True); b = m.loss_and_grads(X, Y, parallel=False)\n"
            "print(np.isclose(a[0], b[0], rtol=1e-12, atol=0),"
            " all(np.allclose(a[1][k], b[1][k], rtol=1e-10, atol=1e-14) for k in a[1]), fastrnn._cache.QUICK_LOADS)")
    _run(code, tmp_path)  # compile or load once
    assert _run(code, tmp_path) == ["True True True"]


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
    probe = ("import fastrnn, gc\n"
             "from fastrnn import _startup\n"
             "print(gc.isenabled(), _startup._GC_PAUSED, _startup.shortcuts())\n")
    assert _run(probe, tmp_path) == ["True False ()"]
    assert _run(AS_COMMAND + probe, tmp_path) == ["False True ('gc', 'cache')"]
    code = ("import gc, sys\n" + AS_COMMAND + "from fastrnn import cli\n"
            "sys.argv = ['fastrnn', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    print('command', gc.isenabled(), gc.get_freeze_count() > 0)\n")
    assert _run(code, tmp_path)[-1] == "command True True"
    out = subprocess.run([sys.executable, "-m", "fastrnn", "train", "--task", "binary", "--iters", "100", "--no-csv"],
                         capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert out.returncode == 0 and "after 100 iterations" in out.stdout, out.stderr


@pytest.mark.parametrize("value, taken", [("", ("gc", "cache")), ("0", ("gc", "cache")), ("1", ()), ("yes", ()),
                                          ("cache", ("gc",)), ("gc", ("cache",)), ("gc, cache", ()), ("gc,bogus", ())])
def test_fastrnn_plain_numba_names_the_shortcuts_the_command_leaves_out(monkeypatch, value, taken):
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "fastrnn", "train"], raising=False)
    assert _startup.shortcuts({"FASTRNN_PLAIN_NUMBA": value}) == taken
    monkeypatch.setattr(sys, "orig_argv", ["python", "-c", "import fastrnn"], raising=False)
    assert _startup.shortcuts({"FASTRNN_PLAIN_NUMBA": "0"}) == ()


def test_fastrnn_plain_numba_turns_every_shortcut_off_in_the_command_and_computes_the_same_numbers(tmp_path):
    """The escape hatch: with FASTRNN_PLAIN_NUMBA=1 the command runs numba as it ships (the refresh
    done before a cache load) and trains to the numbers of the quick path."""
    _command(TRAIN, tmp_path)  # compile or load once
    _, quick = _command(TRAIN + ["--save", "quick.npz"], tmp_path)
    _, plain = _command(TRAIN + ["--save", "plain.npz"], tmp_path, FASTRNN_PLAIN_NUMBA="1")
    assert [m for m in REFRESH_ONLY if m in quick] == []
    assert [m for m in REFRESH_ONLY if m in plain] == list(REFRESH_ONLY)
    import numpy as np

    assert np.array_equal(fastrnn.RNN.load(tmp_path / "quick.npz").theta, fastrnn.RNN.load(tmp_path / "plain.npz").theta)


#: One short run of each built-in task and of ``--data`` (the digits read row by row stand-in: B 32, softmax).
FIRST_RUNS = {
    "binary": ["train", "--task", "binary", "--iters", "40"],
    "digits": ["train", "--task", "digits", "--iters", "4"],
    "text": ["train", "--task", "text", "--iters", "40"],
    "recall": ["train", "--task", "recall", "--iters", "4"],
    "data": ["train", "--data", "{data}", "--epochs", "1"],
}

#: Runs each task's command in this process (as a library import, numba's own cache loading) and prints, per
#: task, every fastrnn kernel numba compiled (a cache miss) while it ran: numba's "numba:compile" event fires
#: for a compile only, never for a load from the cache.
COUNT_COMPILES = """
import json, sys
from numba.core import event
runs = json.loads(sys.argv[1])
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        if d.py_func.__module__.startswith("fastrnn"):
            compiled.append(d.py_func.__module__ + "." + d.py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
from fastrnn import cli
for name, args in runs.items():
    del compiled[:]
    try:
        cli.main(args + ["--no-csv", "-q"])
        status = 0
    except SystemExit as exc:
        status = exc.code
    print("COMPILED", name, status, json.dumps(sorted(set(compiled))))
"""


def test_a_second_process_loads_every_kernel_of_each_task_from_the_cache_without_compiling(tmp_path):
    """The first process runs each task (compiling what the cache lacks); a second process, the same runs, must load
    every kernel it uses from numba's on-disk cache: a factory's closure or a literal argument in a cache key that
    changed from process to process would show up here as a compile."""
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rows.npz", X=rng.normal(size=(64, 8, 8)), Y=np.eye(10)[rng.integers(0, 10, 64)][:, None, :]
             .repeat(8, 1))
    runs = {name: [a.format(data=tmp_path / "rows.npz") for a in args] for name, args in FIRST_RUNS.items()}
    out1 = subprocess.run([sys.executable, "-c", COUNT_COMPILES, json.dumps(runs)], capture_output=True, text=True,
                          cwd=tmp_path, env=_env())
    assert out1.returncode == 0, out1.stdout + out1.stderr
    assert [line.split(" ")[1:3] for line in out1.stdout.splitlines() if line.startswith("COMPILED ")] == \
        [[name, "0"] for name in runs], out1.stdout
    out2 = subprocess.run([sys.executable, "-c", COUNT_COMPILES, json.dumps(runs)], capture_output=True, text=True,
                          cwd=tmp_path, env=_env())
    assert out2.returncode == 0, out2.stdout + out2.stderr
    second = {line.split(" ", 3)[1]: json.loads(line.split(" ", 3)[3]) for line in out2.stdout.splitlines()
              if line.startswith("COMPILED ") and line.split(" ")[2] == "0"}
    assert list(second) == list(runs)
    assert second == {name: [] for name in runs}, second
