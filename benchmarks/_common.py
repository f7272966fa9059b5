"""Timing helpers shared by the benchmark scripts: warm-up, repeats, medians, spread."""

import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the plain-numpy twin, tests/reference.py


def time_call(fn, repeats=7, min_seconds=0.05):
    """Median, min and max seconds per call of ``fn()`` over ``repeats`` timed batches.

    One warm-up call first; each batch runs ``fn`` enough times to last about
    ``min_seconds`` so that timer resolution does not matter.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_seconds / once))
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n)
    return float(np.median(per_call)), float(np.min(per_call)), float(np.max(per_call))


def machine():
    import numba

    return dict(
        python=platform.python_version(),
        numpy=np.__version__,
        numba=numba.__version__,
        cpu=_cpu_name(),
        cores=os.cpu_count(),
        numba_threads=numba.get_num_threads(),
    )


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def update_readme(block, mark):
    """Put ``block`` into the README between ``<!-- mark:start -->`` and ``<!-- mark:end -->``."""
    path = ROOT / "README.md"
    text = path.read_text()
    start, end = f"<!-- {mark}:start -->", f"<!-- {mark}:end -->"
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + "\n" + block + end + tail)
    return True


def write_csv(path, rows):
    """Write dict rows (keys of the first row as columns) to a CSV file; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def fastrnn_after_sgd(p0, X, Y, activation, head, n, lr=0.1):
    """fastrnn's parameters after n plain-SGD iterations at batch 1 from p0 on X, Y.

    The reference trajectory every benchmark contender must reproduce before its
    time counts (and that tests/test_benchmark_baselines.py checks the numpy ones on).
    """
    import fastrnn
    from fastrnn import engine

    model = fastrnn.RNN(X.shape[2], p0["W0"].shape[0], Y.shape[2], activation=activation, head=head)
    for k, v in p0.items():
        model.params[k][...] = v
    P = model.n_params
    buf = np.empty(engine.chunk_scratch_size(model, X.shape[1], 1))
    engine.train_chunk(model, -1, X, Y, np.zeros((0, 0)), 1, 0, lr, np.zeros(5), np.zeros((2, P)), 0, 0.0, 0.0,
                       engine.new_state(model, 1), None, buf, np.empty(n), np.empty(n), np.empty(n, dtype=np.int64))
    return {k: v.copy() for k, v in model.params.items()}
