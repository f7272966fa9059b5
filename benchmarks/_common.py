"""Timing helpers shared by the benchmark scripts: warm-up, repeats, medians, spread."""

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
