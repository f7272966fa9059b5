"""What a run survives: the text kernel's threads (stopping, stalls, the CPUs it may use),
one sweep per folder and a lost Dask worker, and numba's on-disk cache (stale or damaged).

Subprocesses run the package under test (PYTHONPATH); the cache cases run a copy of it
in tmp_path, so that editing or damaging it touches nothing else.
"""

import ast
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import _charrnn, cpus, engine, optim, sweeps, text
from fastrnn.exceptions import InvalidArgument

PACKAGE = Path(fastrnn.__file__).parent
ROOT = PACKAGE.parent
H, L = 100, 25


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(extra)
    return e


# ---------------------------------------------------------------- the text kernel's threads


@pytest.fixture(scope="module")
def example():
    t = text.read_text(text.example_path())
    model = fastrnn.RNN(t.n_vocab, H, t.n_vocab, activation="tanh", head="softmax", seed=3)
    return t, model.theta.copy()


def chars_run(t, theta, iters, threads, info=None, model_out=None):
    """``iters`` iterations in one call of engine.train_chunk_chars; everything it changed."""
    model = fastrnn.RNN(t.n_vocab, H, t.n_vocab, activation="tanh", head="softmax")
    model.theta[:] = theta
    source = text.TextSource(t.ids, t.n_vocab, seq_length=L)
    state = np.zeros((2, model.n_params))
    hstate = engine.new_state(model, 1)
    losses, norms, errors = np.full(iters, np.nan), np.full(iters, np.nan), np.full(iters, -1, dtype=np.int64)
    inputs, targets, resets = source.next_ids(iters)
    out = dict(theta=model.theta, state=state, hstate=hstate, losses=losses, norms=norms, errors=errors)
    if model_out is not None:
        model_out.update(out)
    out["done"] = engine.train_chunk_chars(model, inputs, targets, resets, optim.ADAGRAD, 0.1, optim.hyper_array(),
                                           state, 5.0, hstate, losses, norms, errors, threads, info)
    return out


def when_running(delay, action):
    """Call ``action`` ``delay`` seconds after a text kernel call is in flight (on a helper thread)."""
    def wait():
        while not _charrnn._RUNNING:
            time.sleep(0.001)
        time.sleep(delay)
        action()

    threading.Thread(target=wait, daemon=True).start()


def test_the_second_thread_really_runs_its_half_of_every_iteration(example):
    """Role B (output layer, dV, dW's groups, the updates of V and c) counts the iterations it
    finished in the sync array; a two-thread call reports that count and two threads, and gives
    the one-thread numbers bit for bit."""
    t, theta = example
    info = {}
    two = chars_run(t, theta, 40, threads=2, info=info)
    assert info == {"threads": 2, "ran_b": 40}
    one_info = {}
    one = chars_run(t, theta, 40, threads=1, info=one_info)
    assert one_info == {"threads": 1, "ran_b": 0}
    for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
        assert np.array_equal(one[key], two[key]), key


@pytest.fixture(params=["inline", "delegated"])
def mode(request, monkeypatch):
    """Both ways a call runs: its last role on the calling thread with a watchdog thread
    beside it, or every role on threads of their own while the caller waits in Python
    (taken where another library holds the signal wake-up descriptor)."""
    monkeypatch.setattr(_charrnn, "INLINE", request.param == "inline")
    return request.param


def test_both_ways_of_running_give_the_same_numbers_bit_for_bit(example, mode):
    t, theta = example
    for threads in (1, 2):
        info = {}
        got = chars_run(t, theta, 30, threads=threads, info=info)
        plain = chars_run(t, theta, 30, threads=1) if threads == 2 else got
        assert info["threads"] == threads
        for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
            assert np.array_equal(plain[key], got[key]), key


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stop_request_ends_a_long_call_and_leaves_the_state_as_before(example, threads, mode):
    """stop_all() (what the Ctrl-C handler calls) 0.2 s into a call of 200,000 iterations
    (half a minute of work): it raises Stopped, with the weights, optimizer state and carried
    state exactly as before the call (the driver resumes from its last row)."""
    t, theta = example
    before = {}
    info = {}
    when_running(0.2, _charrnn.stop_all)
    with pytest.raises(_charrnn.Stopped) as caught:
        chars_run(t, theta, 200_000, threads=threads, info=info, model_out=before)
    assert 0 <= caught.value.iteration < 200_000
    assert np.array_equal(before["theta"], theta)
    assert not before["state"].any() and not before["hstate"].any()
    assert not _charrnn._RUNNING


def test_a_kernel_thread_that_never_runs_its_part_costs_a_rerun_on_one_thread(example, monkeypatch, capfd, mode):
    """Role B's thread returns at once (as if it never got to run): role A waits, the watchdog
    sees no progress for STALL_SECONDS, stops it, says so in one line, and the call is done
    on one thread with the same numbers; later calls stay on one thread."""
    t, theta = example
    one = chars_run(t, theta, 30, threads=1)
    real = _charrnn._work

    def lazy_b(role, args, out):
        if role != _charrnn.B:
            real(role, args, out)

    monkeypatch.setattr(_charrnn, "_work", lazy_b)
    monkeypatch.setattr(_charrnn, "STALL_SECONDS", 0.3)
    monkeypatch.setattr(_charrnn, "_ONE_THREAD", False)
    info = {}
    stalled = chars_run(t, theta, 30, threads=2, info=info)
    assert info["threads"] == 1
    for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
        assert np.array_equal(one[key], stalled[key]), key
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "made no progress for 0.3 s" in err and "one thread" in err
    info = {}
    chars_run(t, theta, 30, threads=2, info=info)
    assert info["threads"] == 1


def test_an_error_in_one_kernel_thread_stops_the_other_and_reaches_the_caller(example, monkeypatch, mode):
    """Role B's thread raises: role A, waiting for it, is told to stop, and the call raises
    that error with the state as before it (no hang, nothing half-applied)."""
    t, theta = example
    real = _charrnn._work

    def failing_b(role, args, out):
        if role == _charrnn.B:
            out[role] = RuntimeError("role B failed")
        else:
            real(role, args, out)

    monkeypatch.setattr(_charrnn, "_work", failing_b)
    before = {}
    with pytest.raises(RuntimeError, match="role B failed"):
        chars_run(t, theta, 50, threads=2, model_out=before)
    assert np.array_equal(before["theta"], theta) and not before["state"].any() and not before["hstate"].any()
    assert not _charrnn._RUNNING


def test_ctrl_c_in_the_library_stops_the_chunk_and_a_resume_equals_the_uninterrupted_run(tmp_path, monkeypatch, mode):
    """SIGINT arrives while the second text chunk of fastrnn.train runs (20,000 iterations):
    the chunk stops at once, the run is saved at its last row (20,000), and the resume to
    40,000 gives the rows and weights of a run never interrupted."""
    settings = dict(task="text", hidden=16, log_every=20000, seed=4)
    stopped = []
    real = engine.train_chunk_chars
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second chunk: Ctrl-C once it is in flight
            when_running(0.0, lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            return real(*args, **kwargs)
        except _charrnn.Stopped as exc:
            stopped.append(exc)
            raise

    monkeypatch.setattr(engine, "train_chunk_chars", interrupting)
    save = tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as caught:
        fastrnn.train(iters=60000, csv=tmp_path / "r.csv", save=save, **settings)
    assert len(stopped) == 1 and stopped[0].iteration < 20000
    assert caught.value.result.iterations == 20000 and caught.value.result.status == "interrupted"
    monkeypatch.setattr(engine, "train_chunk_chars", real)
    resumed = fastrnn.train(resume=save, iters=40000, csv=tmp_path / "r.csv")
    straight = fastrnn.train(iters=40000, **settings)
    assert resumed.threads == straight.threads
    assert np.array_equal(resumed.model.theta, straight.model.theta)
    assert len(resumed.rows) == len(straight.rows) == 2
    for a, b in zip(resumed.rows, straight.rows):
        assert {k: v for k, v in a.items() if k != "elapsed_s"} == {k: v for k, v in b.items() if k != "elapsed_s"}


def test_only_handlers_that_end_a_run_stop_the_kernel_early(monkeypatch):
    """Python's default Ctrl-C handler and fastrnn's own (marked) stop a chunk in flight; a
    handler of someone else's (which may not end the run) runs after the chunk, as before."""
    from fastrnn.training import _DeferredInterrupt

    assert _charrnn._stops(signal.SIGINT) == (signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    monkeypatch.setattr(signal, "getsignal", lambda s: _DeferredInterrupt()._handler)
    assert _charrnn._stops(signal.SIGINT) and _charrnn._stops(signal.SIGTERM)
    monkeypatch.setattr(signal, "getsignal", lambda s: (lambda signum, frame: None))
    assert not _charrnn._stops(signal.SIGINT) and not _charrnn._stops(signal.SIGTERM)
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.default_int_handler)
    assert not _charrnn._stops(signal.SIGUSR1)


def _train_cmd(tmp_path, name, iters, log_every, *extra):
    return [sys.executable, "-m", "fastrnn", "train", "--task", "text", "--iters", str(iters), "--log-every",
            str(log_every), "--csv", str(tmp_path / f"{name}.csv"), *extra]


@pytest.mark.parametrize("signum, said", [(signal.SIGINT, "Interrupted"), (signal.SIGTERM, "Stopped by SIGTERM"),
                                           (signal.SIGHUP, "Stopped by SIGHUP")])
def test_a_signal_during_a_long_text_chunk_ends_the_command_at_once(tmp_path, signum, said):
    """`fastrnn train --task text` with chunks of 300,000 iterations (a minute of work each):
    the signal, once training has started, ends the command with 128 + the signal, the JSON
    marks the run interrupted at iteration 0 (the chunk's work discarded) and the model is
    saved. (A signal that lands while the kernels still load is tried again, later.)"""
    for wait in (3.0, 8.0, 20.0):
        folder = tmp_path / f"after{wait:g}"
        folder.mkdir()
        cmd = _train_cmd(folder, "r", 600_000, 300_000, "--save", str(folder / "m.npz"))
        proc = subprocess.Popen(cmd, cwd=folder, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            meta = folder / "r.json"
            deadline = time.monotonic() + 120
            while not meta.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(wait)  # past the kernels' load: inside the first chunk
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)  # the chunk alone would take a minute or more
        finally:
            proc.kill()
        data = json.loads(meta.read_text())
        if data["result"]["train_seconds"] > 0:  # it was training, not loading, when the signal came
            break
    assert proc.returncode == 128 + signum, err
    assert f"{said} after 0 iterations" in err and err.count("\n") == 1
    assert data["status"] == "interrupted" and data["result"]["iterations_done"] == 0
    assert data["result"]["threads"] == (2 if cpus.available() >= 2 else 1)
    assert (folder / "m.npz").exists()


def _rows_without_time(path):
    lines = path.read_text().splitlines()
    col = lines[0].split(",").index("elapsed_s")
    return [",".join(v for k, v in enumerate(line.split(",")) if k != col) for line in lines]


def test_a_run_pinned_to_one_cpu_trains_on_one_thread_with_the_same_numbers(tmp_path):
    """`taskset -c 0`: the affinity mask allows one CPU, so the text kernel runs on one thread
    (the JSON says so) and every row equals the unpinned run's (two threads where two CPUs are)."""
    pinned = subprocess.run(["taskset", "-c", "0"] + _train_cmd(tmp_path, "pinned", 600, 200), cwd=tmp_path, env=env(),
                            capture_output=True, text=True)
    assert pinned.returncode == 0, pinned.stderr
    free = subprocess.run(_train_cmd(tmp_path, "free", 600, 200), cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert free.returncode == 0, free.stderr
    assert _rows_without_time(tmp_path / "pinned.csv") == _rows_without_time(tmp_path / "free.csv")
    assert json.loads((tmp_path / "pinned.json").read_text())["result"]["threads"] == 1
    expected = 2 if cpus.available() >= 2 else 1
    assert json.loads((tmp_path / "free.json").read_text())["result"]["threads"] == expected


def test_the_text_kernel_falls_back_to_the_general_kernel_with_a_note(monkeypatch, capfd):
    """When the fused kernel cannot be compiled, one line says so and the run trains with the
    general kernel: the same numbers within rounding, no thread count recorded."""
    fused = fastrnn.train(task="text", hidden=16, iters=200, log_every=100, seed=2)

    def broken(*args, **kwargs):
        raise RuntimeError("LLVM ERROR: cannot select")

    monkeypatch.setattr(_charrnn, "train_chunk", broken)
    general = fastrnn.train(task="text", hidden=16, iters=200, log_every=100, seed=2)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "could not be compiled" in err and "general kernel" in err
    assert fused.threads in (1, 2) and general.threads is None
    np.testing.assert_allclose(general.model.theta, fused.model.theta, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- how many CPUs


def _cgroup(tmp_path, lines, files):
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text("".join(f"{line}\n" for line in lines))
    for rel, content in files.items():
        p = tmp_path / "fs" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return str(tmp_path / "fs"), str(proc)


def test_the_cgroup_v2_quota_limits_the_cpus(tmp_path, monkeypatch):
    root, proc = _cgroup(tmp_path, ["0::/job/step"], {"cpu.max": "max 100000\n", "job/cpu.max": "150000 100000\n",
                                                      "job/step/cpu.max": "max 100000\n"})
    assert cpus.quota(root, proc) == 1.5
    monkeypatch.setattr(cpus, "affinity", lambda: 8)
    assert cpus.available(root, proc) == 1  # rounded down
    root, proc = _cgroup(tmp_path / "b", ["0::/"], {"cpu.max": "max 100000\n"})
    assert cpus.quota(root, proc) is None and cpus.available(root, proc) == 8


def test_the_cgroup_v1_quota_limits_the_cpus(tmp_path, monkeypatch):
    root, proc = _cgroup(tmp_path, ["4:cpu,cpuacct:/docker/abc", "0::/"],
                         {"cpu,cpuacct/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cpus.quota(root, proc) == 2.5  # the container's own group is the mount's root
    monkeypatch.setattr(cpus, "affinity", lambda: 4)
    assert cpus.available(root, proc) == 2
    root, proc = _cgroup(tmp_path / "b", ["2:cpu:/"], {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpus.quota(root, proc) is None


def test_fewer_than_two_cpus_mean_one_text_thread(monkeypatch):
    monkeypatch.setattr(cpus, "available", lambda *a: 1)
    assert cpus.kernel_threads(2) == 1 and engine.chars_threads() == 1
    monkeypatch.setattr(cpus, "available", lambda *a: 3)
    from numba import config

    assert cpus.kernel_threads(2) == min(2, config.NUMBA_NUM_THREADS)


# ---------------------------------------------------------------- sweeps: one per folder, a lost worker


def test_a_second_sweep_into_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / sweeps.LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                        "started": "2026-01-02 03:04:05 UTC"}))
        with pytest.raises(InvalidArgument) as caught:
            sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
        message = str(caught.value)
        assert "\n" not in message and f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "2026-01-02 03:04:05 UTC" in message
        assert sorted(p.name for p in out.iterdir()) == [sweeps.LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone now: its lock is taken over, the sweep runs and releases the folder
    result = sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
    assert result.ran == 1 and not (out / sweeps.LOCK_NAME).exists()


def test_the_cli_refuses_a_folder_locked_from_another_host_unless_forced(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / sweeps.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "earlier"}))
    cmd = [sys.executable, "-m", "fastrnn", "sweep", "--out", str(out), "--seeds", "0", "--set", "iters=10",
           "--set", "log_every=5", "--workers", "1", "-q"]
    refused = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "elsewhere.example" in refused.stderr and "--force" in refused.stderr
    forced = subprocess.run(cmd + ["--force"], cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    assert not (out / sweeps.LOCK_NAME).exists() and len(list(out.glob("*seed0.json"))) == 1


def test_only_one_of_two_sweeps_started_together_gets_the_folder(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    locks, errors = [], []
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        try:
            locks.append(sweeps._SweepLock(out))
        except InvalidArgument as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(locks) == 1 and len(errors) == 7  # same pid and host: alive, so refused
    locks[0].release()
    assert not (out / sweeps.LOCK_NAME).exists()


def _files_without_times(out):
    """Every run file of a sweep folder, with the columns and fields that hold times removed."""
    got = {}
    for path in sorted(out.glob("*-seed*.*")):
        if path.suffix == ".csv":
            got[path.name] = _rows_without_time(path)
        elif path.suffix == ".json":
            meta = json.loads(path.read_text())
            for key in ("train_seconds", "compile_seconds", "threads"):
                meta["result"].pop(key, None)
            got[path.name] = meta
    return got


def test_a_dask_worker_killed_mid_sweep_costs_nothing(tmp_path):
    """A LocalCluster on loopback with two one-thread workers; one is killed (SIGKILL) while it
    trains a run. The sweep completes, and every run's files equal those of a sweep with no
    failure (times aside). The workers' kernels use one thread each there (their share of
    the CPUs), which a run's JSON records."""
    distributed = pytest.importorskip("distributed")
    settings = dict(task="text", hidden=24, iters=40000, log_every=20000)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        # two one-thread workers on this host: a task's share of 2 CPUs is 1
        assert client.submit(cpus.kernel_threads, 2, pure=False).result() == 1
        victims = []

        def kill_one():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    time.sleep(1.0)  # into the run
                    if not client.processing().get(busy[0]):
                        continue
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    victims.append(pid)
                    os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        result = sweeps.sweep(seeds=[0, 1, 2], out=tmp_path / "dask", scheduler=cluster.scheduler_address, **settings)
        killer.join()
    assert victims, "no worker was busy to kill"
    assert result.ran == 3 and list(result.summary["status"]) == ["completed"] * 3
    plain = sweeps.sweep(seeds=[0, 1, 2], out=tmp_path / "plain", workers=1, **settings)
    assert plain.ran == 3
    dask_files, plain_files = _files_without_times(tmp_path / "dask"), _files_without_times(tmp_path / "plain")
    assert sorted(dask_files) == sorted(plain_files) and len(dask_files) == 6
    assert dask_files == plain_files
    for path in (tmp_path / "dask").glob("*.json"):
        if path.name != "summary.json":
            assert json.loads(path.read_text())["result"]["threads"] == 1
    assert not list((tmp_path / "dask").glob("*.tmp")) and not (tmp_path / "dask" / sweeps.LOCK_NAME).exists()


def test_a_killed_sweeps_temporary_files_are_cleared_and_its_runs_redone(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "binary-seed0.csv.tmp").write_text("iteration,lo")
    (out / "binary-seed0.json.tmp").write_text("{")
    (out / "summary.csv.tmp").write_text("run")
    result = sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
    assert result.ran == 1
    assert not list(out.glob("*.tmp"))


# ---------------------------------------------------------------- numba's cache


def _kernel_modules():
    """Modules of the package that define kernels, and every package module they import (parsed)."""
    files = {p.relative_to(PACKAGE).as_posix(): p for p in PACKAGE.rglob("*.py")}
    defines = {name for name, p in files.items() if re.search(r"@njit|njit\(\*\*|@intrinsic", p.read_text())}

    def imports(name):
        tree = ast.parse(files[name].read_text())
        here = Path(name).parent
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = here
                for _ in range(node.level - 1):
                    base = base.parent
                parts = [*base.parts, *(node.module.split(".") if node.module else [])]
                targets = [parts] if node.module else [parts + [a.name] for a in node.names]
                for t in targets:
                    for cand in ("/".join(t) + ".py", "/".join(t + ["__init__"]) + ".py"):
                        if cand in files and cand != "__init__.py":
                            found.add(cand)
        return found

    closure, todo = set(), list(defines)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo += imports(name)
    return defines, closure - {"_cache.py"}


def test_the_cache_key_covers_every_kernel_module_and_what_they_import():
    from fastrnn import _cache

    defines, closure = _kernel_modules()
    assert {"_charrnn.py", "_small.py", "_mathfn.py", "cells/rnn.py"} <= defines
    assert set(_cache.KERNEL_SOURCES) == closure


def test_every_kernel_has_the_keyed_cache():
    import importlib

    from numba.core.dispatcher import Dispatcher

    from fastrnn import _cache

    defines, _ = _kernel_modules()
    cls = _cache.keyed_cache_class()
    seen = 0
    for name in defines:
        module = importlib.import_module("fastrnn." + name[:-3].replace("/", ".").removesuffix(".__init__"))
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__.startswith("fastrnn."):
                assert isinstance(obj._cache, cls), f"{module.__name__}.{obj.py_func.__name__}"
                seen += 1
    assert seen > 50


PROBE = """
import sys, numpy as np
from fastrnn.cells import rnn
xu = np.linspace(-1.0, 1.0, 5); hw = np.zeros(5); hs = np.zeros(5)
rnn.forward_step(0, 5, xu, 0, hw, hs, 0)
stats = rnn.forward_step.stats
print(repr(hs.tolist()), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.fixture
def copy(tmp_path):
    """A copy of the package (without its caches) in tmp_path, and a runner of PROBE in it."""
    dest = tmp_path / "pkg" / "fastrnn"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__"))

    def probe(command=False, **extra):
        """PROBE in a library process, or (command=True) as in the fastrnn command's, whose cache loads are quick."""
        e = dict(os.environ, PYTHONPATH=str(tmp_path / "pkg"), **extra)
        code = ("import sys; sys.orig_argv = [sys.executable, '-m', 'fastrnn']\n" if command else "") + PROBE
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=e, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        values, hits, misses = done.stdout.rsplit(" ", 2)
        return eval(values), int(hits), int(misses), done.stderr

    return dest, probe


def test_an_edited_callee_in_another_module_is_compiled_again_never_served_stale(copy):
    """cells.rnn.forward_step inlines _mathfn.tanh. Edit tanh only: the next process compiles
    forward_step again and computes the new tanh (numba's own check, on rnn.py alone, would
    load the old machine code)."""
    dest, probe = copy
    first, hits, misses = probe()[:3]
    assert np.allclose(first, np.tanh(np.linspace(-1.0, 1.0, 5)), rtol=1e-14) and (hits, misses) == (0, 1)
    assert probe()[1:3] == (1, 0)  # a second process loads it
    source = dest / "_mathfn.py"
    code = source.read_text()
    old = "    t = expm1(-2.0 * abs(x))\n    v = -t / (2.0 + t)\n    return -v if x < 0 else v\n"
    assert old in code
    source.write_text(code.replace(old, "    return 0.25 + 0.0 * x\n"))
    edited, hits, misses = probe()[:3]
    assert edited == [0.25] * 5 and (hits, misses) == (0, 1)


def test_a_new_version_compiles_again(copy):
    dest, probe = copy
    probe()
    init = dest / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.', 1))
    assert probe()[1:3] == (0, 1)
    assert probe()[1:3] == (1, 0)


def _damage(files, how):
    for path in files:
        data = path.read_bytes()
        if how == "truncated":
            path.write_bytes(data[: 20 if path.suffix == ".nbi" else 100])
        else:
            path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8)))


@pytest.mark.parametrize("which, how, command", [("index", "truncated", True), ("data", "truncated", True),
                                                 ("both", "garbage", True), ("index", "empty", True),
                                                 ("index", "truncated", False), ("data", "truncated", False)])
def test_a_damaged_cache_file_costs_a_recompile_and_one_line(copy, which, how, command):
    """The cache files of forward_step truncated (index to 20 bytes, data to 100), or filled
    with garbage, or emptied: the next process prints one line, deletes them, compiles and
    computes the right numbers; the one after loads the fresh cache silently. In the fastrnn
    command's process (the quick cache loads) and in a library process (numba's own load)."""
    dest, probe = copy
    good = probe(command)[0]
    cache = dest / "cells" / "__pycache__"
    index = list(cache.glob("rnn.forward_step-*.nbi"))
    data = list(cache.glob("rnn.forward_step-*.nbc"))
    assert len(index) == 1 and len(data) == 1
    targets = {"index": index, "data": data, "both": index + data}[which]
    if how == "empty":
        for path in targets:
            path.write_bytes(b"")
    else:
        _damage(targets, how)
    values, hits, misses, err = probe(command)
    assert values == good and misses == 1
    if how == "garbage" and err == "":
        pass  # random bytes that read as another numba version's index: numba itself compiles again
    else:
        assert err.count("\n") == 1 and "damaged numba cache file" in err and str(cache) in err
    values, hits, misses, err = probe(command)
    assert values == good and (hits, misses) == (1, 0) and err == ""
