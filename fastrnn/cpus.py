"""How many CPUs this process may really use, and so how many threads a kernel should start.

``os.cpu_count()`` counts the machine's cores. A process may be allowed fewer: pinned
to some of them (``taskset``, ``numactl``, a batch scheduler's CPU set: the affinity
mask), or given a CPU-time quota by its control group (``docker --cpus=1.5``,
Kubernetes limits, systemd's ``CPUQuota=``), which lets it run on every core but only
for so much time per period. Threads beyond either limit do not run at the same time:
two threads that wait for each other, as the text kernel's do, then lose far more
than they gain.

:func:`available` is the smaller of the two limits (the quota rounded down, at least
1); :func:`kernel_threads` is the policy every multi-threaded part of fastrnn asks:
as many threads as asked for, but no more than :func:`available`, no more than
``NUMBA_NUM_THREADS`` allows, and, in a task of a Dask worker, no more than a task's
share of the CPUs (the CPUs divided by the task slots of the workers on this host).
"""

import functools
import math
import os
import sys

#: Where the control-group file systems are mounted (v2: one tree; v1: one per controller).
CGROUP_ROOT = "/sys/fs/cgroup"


def affinity():
    """CPUs in this process's affinity mask (``os.cpu_count()`` where the OS has no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path):
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_groups(proc_file):
    """{controller: path} of this process's control groups ("" for the v2 unified tree)."""
    text = _read(proc_file)
    groups = {}
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            groups[controller] = parts[2]
    return groups


def _levels(base, path):
    """The folders of ``path`` under ``base`` from the deepest up to ``base`` itself
    (a quota anywhere on the way up limits this process)."""
    parts = [p for p in path.split("/") if p]
    for k in range(len(parts), -1, -1):
        yield os.path.join(base, *parts[:k])


def quota(root=CGROUP_ROOT, proc_file="/proc/self/cgroup"):
    """CPUs the control groups' quota allows (a float, e.g. 1.5), or None without a quota.

    cgroup v2: ``cpu.max`` ("max 100000" or "150000 100000": quota and period in us);
    v1: ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``. Every level from the
    process's own group up to the root is read (inside a container the root is the
    container's group); the smallest quota wins."""
    groups = _own_groups(proc_file)
    found = []
    if "" in groups:  # v2
        for folder in _levels(root, groups[""]):
            text = _read(os.path.join(folder, "cpu.max"))
            if text:
                q, _, period = text.partition(" ")
                if q != "max":
                    try:
                        found.append(int(q) / int(period or 100000))
                    except (ValueError, ZeroDivisionError):
                        pass
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        path = groups.get("cpu")
        if path is None:
            break
        base = os.path.join(root, controller)
        if not os.path.isdir(base):
            continue
        for folder in _levels(base, path):
            q, period = _read(os.path.join(folder, "cpu.cfs_quota_us")), _read(os.path.join(folder, "cpu.cfs_period_us"))
            try:
                q, period = int(q), int(period)
            except (TypeError, ValueError):
                continue
            if q > 0 and period > 0:
                found.append(q / period)
        break
    return min(found) if found else None


def available(root=CGROUP_ROOT, proc_file="/proc/self/cgroup"):
    """CPUs this process can keep busy at once: the affinity mask's size, or the control
    group's quota rounded down if that is smaller; at least 1."""
    n = affinity()
    q = quota(root, proc_file)
    if q is not None:
        n = min(n, math.floor(q))
    return max(1, n)


def _dask_slots():
    """Task slots on this host of the Dask cluster this code runs a task of (1 outside one):
    the threads of every worker on this machine, as the scheduler lists them (this worker's
    own where that cannot be asked)."""
    if "distributed" not in sys.modules:  # never imported: not in a worker
        return 1
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 1
    return _host_slots(worker.address)


@functools.lru_cache(maxsize=4)
def _host_slots(address):
    from distributed import get_worker

    worker = get_worker()
    state = getattr(worker, "state", worker)
    own = max(1, int(getattr(state, "nthreads", None) or getattr(worker, "nthreads", 1) or 1))
    try:
        from distributed import get_client

        info = get_client().scheduler_info()
        host = info["workers"][address]["host"]
        total = sum(int(w.get("nthreads", 1)) for w in info["workers"].values() if w.get("host") == host)
        return max(own, total)
    except Exception:  # no answer from the scheduler: this worker's own slots
        return own


def kernel_threads(wanted):
    """Threads a kernel that would use ``wanted`` should start: at most :func:`available`,
    at most numba's thread count (``NUMBA_NUM_THREADS``; sweeps' worker processes set 1),
    and in a Dask worker at most its share of the CPUs; at least 1."""
    n = min(int(wanted), available())
    try:
        from numba import config

        n = min(n, int(config.NUMBA_NUM_THREADS))
    except (ImportError, AttributeError, ValueError):
        pass
    slots = _dask_slots()
    if slots > 1:
        n = min(n, max(1, available() // slots))
    return max(1, n)
