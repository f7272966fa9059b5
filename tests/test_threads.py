"""The thread policy (fastrnn.cpus.policy): its decisions for given CPUs and loads, the load
meter on given /proc files, the FASTRNN_THREADS override, and what a run records and does."""

import contextlib
import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastrnn
from fastrnn import cpus, engine, training
from fastrnn.exceptions import InvalidArgument


BIG = 10 * cpus.BLAS_THREADED_WORK  # a product BLAS would split over its threads


# ---------------------------------------------------------------- the decisions


@pytest.mark.parametrize("purpose", ["blas", "text", "numba", "processes"])
def test_a_busy_neighbour_on_two_cpus_leaves_one_thread(purpose):
    decision = cpus.policy(purpose, 2, cpus=2, busy=1.0, work=BIG)
    assert decision.n == 1 and "other work" in decision.why


@pytest.mark.parametrize("purpose", ["blas", "text", "numba", "processes"])
def test_idle_cpus_give_every_thread_wanted(purpose):
    assert cpus.policy(purpose, 2, cpus=2, busy=0.2, work=BIG).n == 2
    assert cpus.policy(purpose, 8, cpus=4, busy=0.0, work=BIG).n == 4  # no more than the CPUs allowed
    assert cpus.policy(purpose, 2, cpus=4, busy=1.0, work=BIG).n == 2  # two of four are taken, two are free


def test_the_free_cpus_are_the_allowed_ones_less_the_busy_ones_rounded():
    assert [cpus.policy("blas", 8, cpus=8, busy=b, work=BIG).n for b in (0.4, 0.6, 2.5, 6.6, 7.9, 12.0)] == [8, 7, 5, 1, 1, 1]


def test_an_unknown_load_counts_only_the_cpus_allowed():
    assert cpus.policy("text", 2, cpus=2, busy=None).n == 2
    assert cpus.policy("text", 2, cpus=1, busy=None).n == 1


def test_products_below_blas_threading_size_get_one_blas_thread():
    decision = cpus.policy("blas", 2, cpus=2, busy=0.0, work=cpus.BLAS_THREADED_WORK)
    assert decision.n == 1 and "one BLAS thread" in decision.why
    assert cpus.policy("blas", 2, cpus=2, busy=0.0, work=cpus.BLAS_THREADED_WORK + 1).n == 2


def test_numba_threads_and_a_dask_share_cap_the_numba_parts():
    assert cpus.policy("text", 2, cpus=4, busy=0.0, numba=1).n == 1
    assert "NUMBA_NUM_THREADS=1" in cpus.policy("text", 2, cpus=4, busy=0.0, numba=1).why
    assert cpus.policy("blas", 2, cpus=4, busy=0.0, numba=1, work=BIG).n == 2  # BLAS has threads of its own
    assert cpus.policy("numba", 4, cpus=4, busy=0.0, slots=4).n == 1
    assert cpus.policy("numba", 4, cpus=8, busy=0.0, slots=2).n == 4


def test_a_forced_count_is_taken_as_it_is():
    for busy in (None, 0.0, 3.0):
        decision = cpus.policy("text", 2, cpus=1, busy=busy, forced=3)
        assert decision == cpus.Threads(3, "FASTRNN_THREADS=3")
    assert cpus.policy("blas", 2, cpus=2, busy=0.0, forced=2, work=10).n == 2


def test_forcing_cpus_ignores_the_other_work():
    decision = cpus.policy("text", 2, cpus=2, busy=1.7, forced="cpus")
    assert decision.n == 2 and "FASTRNN_THREADS=cpus" in decision.why


@pytest.mark.parametrize("value, expected", [("", "auto"), ("auto", "auto"), (" CPUS ", "cpus"), ("1", 1), ("16", 16)])
def test_the_override_is_read_from_the_environment(value, expected):
    assert cpus.forced_setting({cpus.FORCE: value}) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_override_is_refused_with_what_to_write(value):
    with pytest.raises(InvalidArgument, match="FASTRNN_THREADS=.*auto.*cpus.*whole number"):
        cpus.forced_setting({cpus.FORCE: value})


def test_the_command_refuses_a_bad_override_in_one_line(monkeypatch):
    monkeypatch.setenv("FASTRNN_THREADS", "many")
    from fastrnn import _startup

    problem = _startup.environment_problem()
    assert problem is not None and problem.startswith("FASTRNN_THREADS='many'")


# ---------------------------------------------------------------- the load meter


def _stat(tmp_path, rows):
    """A /proc/stat with the given (user, system, idle) ticks of cpu0, cpu1."""
    text = "cpu  0 0 0 0 0 0 0 0 0 0\n" + "".join(f"cpu{k} {u} 0 {s} {i} 0 0 0 0 0 0\n" for k, (u, s, i) in enumerate(rows))
    path = tmp_path / "stat"
    path.write_text(text + "intr 1 2 3\n")
    return path


def test_the_meter_counts_busy_ticks_less_its_own_time(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    now, own = [100.0], [5.0]
    meter = cpus.LoadMeter(stat=str(tmp_path / "stat"), loadavg=str(tmp_path / "loadavg"), clock=lambda: now[0],
                           own=lambda: own[0])
    (tmp_path / "loadavg").write_text("0.50 0.40 0.30 3/120 999\n")
    _stat(tmp_path, [(1000, 0, 1000), (1000, 0, 1000)])
    assert meter.other_work() == 2.0  # no window yet: the processes running now (3), less this one
    # one second later: cpu0 busy all along (this process), cpu1 busy 60 of 100 ticks (another one)
    now[0], own[0] = 101.0, 6.0
    _stat(tmp_path, [(1100, 0, 1000), (1050, 10, 1040)])
    assert meter.other_work() == pytest.approx(0.6)
    # a look before the next window is full answers from the last one without reading
    now[0] = 101.05
    (tmp_path / "stat").unlink()
    assert meter.other_work() == pytest.approx(0.6)
    # the next second: only this process, on cpu0
    now[0], own[0] = 102.0, 7.0
    _stat(tmp_path, [(1200, 0, 1000), (1050, 10, 1140)])
    assert meter.other_work() == pytest.approx(0.0)


def test_the_meter_reads_only_the_cpus_of_the_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {1}, raising=False)
    now = [0.0]
    meter = cpus.LoadMeter(stat=str(tmp_path / "stat"), loadavg=str(tmp_path / "none"), clock=lambda: now[0],
                           own=lambda: 0.0)
    _stat(tmp_path, [(0, 0, 100), (0, 0, 100)])
    assert meter.other_work() is None  # no window, no /proc/loadavg
    now[0] = 0.5
    _stat(tmp_path, [(50, 0, 100), (10, 0, 140)])  # cpu0 (not ours) busy, cpu1 busy 10 of 50 ticks
    assert meter.other_work() == pytest.approx(0.2)


def test_the_meter_without_proc_files_knows_nothing(tmp_path):
    meter = cpus.LoadMeter(stat=str(tmp_path / "none"), loadavg=str(tmp_path / "none"))
    assert meter.other_work() is None
    assert cpus.policy("text", 2, cpus=2, busy=meter.other_work()).n == 2


# ---------------------------------------------------------------- what runs do and record


class _Load:
    """A stand-in for cpus.METER that reports a fixed amount of other work."""

    def __init__(self, busy):
        self.busy = busy

    def other_work(self):
        return self.busy

    def look(self):
        pass


def _digits_like(n=32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 8, 8)), np.eye(10)[rng.integers(0, 10, (n, 8))]


def _fit_seeing_blas(monkeypatch, tmp_path, name):
    """fit at B=32, T=8, H=64 (general kernel, BLAS-threaded products), BLAS at two threads
    before it; returns (the JSON's thread_use, BLAS's thread counts seen inside the chunks)."""
    seen = []
    train_chunk = engine.train_chunk

    def watching(*args, **kwargs):
        if args[-1].shape[0]:  # a training call (not the zero-iteration warm-up)
            seen.append(cpus.blas_threads_now())
        return train_chunk(*args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", watching)
    X, Y = _digits_like()
    with threadpool_limits(2, user_api="blas"):
        result = fastrnn.fit(fastrnn.RNN(8, 64, 10), X, Y, epochs=2, csv=tmp_path / f"{name}.csv")
        after = cpus.blas_threads_now()
    assert after == 2  # the count from before the run is back
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert data["result"]["thread_use"] == result.thread_use
    assert result.kernel.name == "general"
    return data["result"]["thread_use"], seen


def test_fit_beside_busy_cpus_holds_blas_to_one_thread_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "METER", _Load(1.0))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    use, seen = _fit_seeing_blas(monkeypatch, tmp_path, "busy")
    assert use["blas"]["n"] == 1 and "other work keeps 1.0 CPUs busy" in use["blas"]["why"]
    assert seen and set(seen) == {1}
    assert use["numba"]["n"] == 1 and "general kernel" in use["numba"]["why"]


def test_fit_on_idle_cpus_keeps_blas_threads(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "METER", _Load(0.0))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    use, seen = _fit_seeing_blas(monkeypatch, tmp_path, "idle")
    assert use["blas"]["n"] == 2 and set(seen) == {2}


def test_a_forced_blas_count_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_THREADS", "1")
    monkeypatch.setattr(cpus, "METER", _Load(0.0))
    use, seen = _fit_seeing_blas(monkeypatch, tmp_path, "forced")
    assert use["blas"] == {"n": 1, "why": "FASTRNN_THREADS=1"} and set(seen) == {1}


def test_a_kernel_without_blas_records_none(tmp_path):
    result = fastrnn.train(task="binary", iters=200, seed=0, csv=tmp_path / "b.csv")
    use = json.loads((tmp_path / "b.json").read_text())["result"]["thread_use"]
    assert use["blas"]["n"] is None and result.kernel.name in use["blas"]["why"]


@pytest.mark.parametrize("busy, forced, threads", [(1.2, "auto", 1), (0.1, "auto", 2), (1.2, "2", 2), (1.2, "cpus", 2)])
def test_the_text_kernel_threads_follow_the_policy(monkeypatch, tmp_path, busy, forced, threads):
    monkeypatch.setenv("FASTRNN_THREADS", forced)
    monkeypatch.setattr(cpus, "METER", _Load(busy))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    monkeypatch.setattr(cpus, "numba_threads", lambda: 2)
    result = fastrnn.train(task="text", hidden=16, iters=300, log_every=100, seed=1, csv=tmp_path / "t.csv")
    use = json.loads((tmp_path / "t.json").read_text())["result"]
    assert use["threads"] == threads
    assert use["thread_use"]["text"]["chunks"] == {str(threads): 3}
    assert use["thread_use"]["text"]["n"] == threads and use["thread_use"]["text"]["why"]
    assert ("other work" in use["thread_use"]["text"]["why"]) == (forced == "auto")
    assert use["thread_use"]["blas"]["n"] is None
    assert result.threads == threads


def test_a_text_run_that_scores_held_out_text_holds_blas_to_one_thread_around_its_chunks(monkeypatch, tmp_path):
    """The rows' held-out scoring is BLAS work between the text kernel's chunks: it runs on one BLAS thread (none
    left spinning on the cores the kernel's threads need), recorded with its reason; the numbers are those of a
    run that leaves BLAS alone."""
    seen = []
    real = cpus.blas_limited

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(cpus, "blas_limited", spy)
    result = fastrnn.train(task="text", hidden=16, iters=300, log_every=100, seed=1, val_fraction=0.2,
                           csv=tmp_path / "t.csv")
    use = json.loads((tmp_path / "t.json").read_text())["result"]["thread_use"]
    assert use["blas"]["n"] == 1 and "held-out scoring" in use["blas"]["why"]
    assert seen and set(seen) == {1}
    monkeypatch.setattr(training, "_thread_plan", lambda run: contextlib.nullcontext)
    alone = fastrnn.train(task="text", hidden=16, iters=300, log_every=100, seed=1, val_fraction=0.2, csv=None)
    assert result.history["val_bpc"].tolist() == alone.history["val_bpc"].tolist()
    np.testing.assert_array_equal(result.model.theta, alone.model.theta)


def test_the_text_kernel_gives_the_same_numbers_whatever_the_policy_says(monkeypatch):
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    monkeypatch.setattr(cpus, "numba_threads", lambda: 2)
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    runs = {}
    for busy in (1.5, 0.0):
        monkeypatch.setattr(cpus, "METER", _Load(busy))
        runs[busy] = fastrnn.train(task="text", hidden=16, iters=300, log_every=100, seed=3)
    assert (runs[1.5].threads, runs[0.0].threads) == (1, 2)
    assert np.array_equal(runs[1.5].model.theta, runs[0.0].model.theta)


def test_a_sweep_starts_as_many_workers_as_the_policy_gives(monkeypatch, tmp_path, capsys):
    from fastrnn import sweeps

    counts = []
    monkeypatch.setattr(sweeps, "_sweep_locked", lambda out, specs, workers, *a: counts.append(workers))
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "METER", _Load(1.0))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    monkeypatch.setattr(sweeps.os, "cpu_count", lambda: 2)
    sweeps.sweep(task="binary", seeds=(0,), out=tmp_path / "a", iters=100)
    monkeypatch.setattr(cpus, "METER", _Load(0.0))
    sweeps.sweep(task="binary", seeds=(0,), out=tmp_path / "b", iters=100)
    assert counts == [1, 2]


@pytest.mark.parametrize("busy", [1.0, 0.0])
def test_many_models_run_on_the_numba_threads_the_policy_gives(monkeypatch, busy):
    import numba

    from fastrnn import training

    seen = []
    inner = engine._train_many

    def watching(*args):
        seen.append((numba.get_num_threads(), args[-1]))
        return inner(*args)

    monkeypatch.setattr(engine, "_train_many", watching)
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "METER", _Load(busy))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    before = numba.get_num_threads()
    results = training.train_many([dict(task="binary", iters=200, seed=s) for s in range(3)])
    assert numba.get_num_threads() == before  # the count comes back
    want = 1 if busy else min(2, numba.config.NUMBA_NUM_THREADS)
    assert seen and set(seen) == {(want, want)}
    alone = fastrnn.train(task="binary", iters=200, seed=2)
    assert np.array_equal(results[2].model.theta, alone.model.theta)


def test_a_users_own_blas_limit_is_kept(monkeypatch, tmp_path):
    """BLAS held to one thread by the caller (threadpoolctl, OPENBLAS_NUM_THREADS): fastrnn uses no more."""
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "METER", _Load(0.0))
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    X, Y = _digits_like()
    with threadpool_limits(1, user_api="blas"):
        result = fastrnn.fit(fastrnn.RNN(8, 64, 10), X, Y, epochs=1)
        assert cpus.blas_threads_now() == 1
    assert result.thread_use["blas"]["n"] == 1 and "1 wanted" in result.thread_use["blas"]["why"]


def test_a_resumed_fit_keeps_the_blas_threads_of_the_run_it_resumes(monkeypatch, tmp_path):
    """The load may differ when a run is resumed; a BLAS product's sums depend on its thread count,
    so the second leg keeps the first leg's count and ends with the weights of one uninterrupted run."""
    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    X, Y = _digits_like()
    with threadpool_limits(2, user_api="blas"):
        monkeypatch.setattr(cpus, "METER", _Load(1.0))  # busy: the first leg gets one BLAS thread
        fastrnn.fit(fastrnn.RNN(8, 64, 10, seed=1), X, Y, epochs=1, csv=tmp_path / "a.csv", save=tmp_path / "a.npz")
        whole = fastrnn.fit(fastrnn.RNN(8, 64, 10, seed=1), X, Y, epochs=2, csv=tmp_path / "w.csv")
        monkeypatch.setattr(cpus, "METER", _Load(0.0))  # idle now: a fresh decision would give two
        resumed = fastrnn.fit(fastrnn.RNN(8, 64, 10, seed=1), X, Y, epochs=2, resume=tmp_path / "a.npz",
                              csv=tmp_path / "a.csv")
        fresh = fastrnn.fit(fastrnn.RNN(8, 64, 10, seed=1), X, Y, epochs=1, csv=tmp_path / "f.csv")
    use = json.loads((tmp_path / "a.json").read_text())["result"]["thread_use"]
    assert use["blas"]["n"] == 1 and "resumes" in use["blas"]["why"]
    assert fresh.thread_use["blas"]["n"] == 2  # the policy itself would have chosen two
    np.testing.assert_array_equal(resumed.model.theta, whole.model.theta)


def test_an_online_run_holds_blas_to_one_count_decided_once_and_kept_on_resume(monkeypatch, tmp_path):
    """RTRL's W M product (H=32) is BLAS-threaded: the run decides its count once (a chunk's numbers must
    not depend on the load at that moment) and a resume keeps the first leg's count."""
    from fastrnn import online

    monkeypatch.setenv("FASTRNN_THREADS", "auto")
    monkeypatch.setattr(cpus, "available", lambda *a: 2)
    given = []
    run = online.run

    def watching(*args, **kwargs):
        given.append(kwargs.get("blas_threads"))
        return run(*args, **kwargs)

    monkeypatch.setattr(online, "run", watching)
    common = dict(task="add", rule="rtrl", hidden=32, iters=40, log_every=10, test_steps=0)
    with threadpool_limits(2, user_api="blas"):
        monkeypatch.setattr(cpus, "METER", _Load(1.0))  # busy: one BLAS thread
        fastrnn.train(**common, csv=tmp_path / "a.csv", save=tmp_path / "a.npz", checkpoint_every=10)
        first = json.loads((tmp_path / "a.json").read_text())["result"]["thread_use"]["blas"]
        monkeypatch.setattr(cpus, "METER", _Load(0.0))  # idle now: a fresh decision would give two
        fastrnn.train(**dict(common, iters=80), resume=tmp_path / "a.npz", csv=tmp_path / "a.csv")
    second = json.loads((tmp_path / "a.json").read_text())["result"]["thread_use"]["blas"]
    assert first["n"] == 1 and second["n"] == 1 and "resumes" in second["why"]
    trained = [n for n in given if n is not None]
    assert trained and set(trained) == {1}  # every training chunk ran on the run's one decision
