"""A local sweep starts one single-threaded worker per CPU the process may use, never more."""

import multiprocessing

import pytest

import fastrnn
from fastrnn import cpus, sweeps


@pytest.mark.parametrize("mask,quota,want", [(2, None, 2), (1, None, 1), (8, 1.5, 1), (8, 3.0, 3), (4, 0.5, 1)])
def test_default_workers_is_the_cpus_this_process_may_use(monkeypatch, mask, quota, want):
    """The affinity mask (taskset) or the control group's CPU quota (docker --cpus), whichever is smaller."""
    monkeypatch.setattr(cpus, "affinity", lambda: mask)
    monkeypatch.setattr(cpus, "quota", lambda *a, **k: quota)
    monkeypatch.setattr("os.cpu_count", lambda: 16)  # the machine's cores do not count
    assert sweeps.default_workers() == want


def _spy_execute(monkeypatch):
    seen = []
    real = sweeps._execute

    def spy(todo, workers, scheduler, vectorize):
        seen.append(workers)
        return real(todo, workers, scheduler, vectorize)

    monkeypatch.setattr(sweeps, "_execute", spy)
    return seen


def test_a_sweep_pinned_to_one_cpu_starts_no_worker_processes(monkeypatch, tmp_path):
    """Two workers taking turns on one CPU would double every run's train_seconds; one CPU runs in this process."""
    monkeypatch.setattr(cpus, "available", lambda *a, **k: 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    seen = _spy_execute(monkeypatch)

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started on one CPU")

    monkeypatch.setattr(multiprocessing, "get_context", no_pool)
    result = fastrnn.sweep(task="binary", seeds=range(3), out=tmp_path / "runs", iters=20, log_every=10, vectorize=False)
    assert seen == [1]
    assert len(result.summary) == 3 and (result.summary["status"] == "completed").all()


def test_workers_given_are_taken_as_given(monkeypatch, tmp_path):
    monkeypatch.setattr(cpus, "available", lambda *a, **k: 4)
    seen = _spy_execute(monkeypatch)
    fastrnn.sweep(task="binary", seeds=range(2), out=tmp_path / "runs", iters=20, log_every=10, workers=1)
    assert seen == [1]
