"""How many CPUs this process may really use, and so how many threads a kernel should start.

``os.cpu_count()`` counts the machine's cores. A process may be allowed fewer: pinned
to some of them (``taskset``, ``numactl``, a batch scheduler's CPU set: the affinity
mask), or given a CPU-time quota by its control group (``docker --cpus=1.5``,
Kubernetes limits, systemd's ``CPUQuota=``), which lets it run on every core but only
for so much time per period. Threads beyond either limit do not run at the same time:
two threads that wait for each other, as the text kernel's do, then lose far more
than they gain.

:func:`available` is the smaller of the two limits (the quota rounded down, at least
1); :func:`policy` is the one rule every multi-threaded part of fastrnn follows (BLAS
inside the kernels' products, the text kernel's two threads, numba's parallel kernels, a
sweep's worker processes): as many threads as asked for, but no more than
:func:`available`, no more than ``NUMBA_NUM_THREADS`` allows, in a task of a Dask worker
no more than a task's share of the CPUs (the CPUs divided by the task slots of the
workers on this host), and no more than the CPUs that other processes leave free
(:class:`LoadMeter`). ``FASTRNN_THREADS`` overrides it (:data:`FORCE`).

Why the other work counts: OpenBLAS's threads spin while they wait for each other, and
so do the text kernel's. With one busy neighbour on a 2-core machine, a second thread
gets a CPU only part of the time and its partner spins waiting for it, so two threads
run several times slower than one; on one thread a run keeps nearly its quiet speed.
benchmarks/bench_envelope.py measures ``fit`` and the text model quiet and beside a
busy process, under this policy and with the thread counts forced.
"""

import contextlib
import functools
import math
import os
import sys
import time
from dataclasses import dataclass

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
    """Threads a numba kernel that would use ``wanted`` should start (:func:`threads`):
    at most :func:`available`, at most numba's thread count (``NUMBA_NUM_THREADS``;
    sweeps' worker processes set 1), in a Dask worker at most its share of the CPUs,
    and no more than other work leaves free; at least 1."""
    return threads("numba", wanted).n


# ---------------------------------------------------------------- the thread policy
#
# One function, :func:`policy`, decides how many threads each multi-threaded part of
# fastrnn starts: BLAS inside the general kernel's products ("blas"), the text kernel's
# two threads ("text"), numba's parallel kernels ("numba") and a sweep's worker
# processes ("processes"). :func:`threads` gathers its inputs (the CPUs allowed, the
# other work on them, the environment) and asks it.

#: The environment variable that overrides the policy: ``auto`` (the default: the CPUs
#: allowed that other work leaves free), ``cpus`` (the CPUs allowed, whatever else runs)
#: or a whole number (exactly that many threads, for every part).
FORCE = "FASTRNN_THREADS"

#: The parts :func:`policy` decides for.
PURPOSES = ("blas", "text", "numba", "processes")

#: OpenBLAS runs a matrix product of at most this many multiply-adds on one thread whatever
#: its thread count (``SMP_THRESHOLD_MIN`` 65536 times ``GEMM_MULTITHREAD_THRESHOLD`` 4 in
#: its interface/gemm.c): a run whose largest product is smaller gains nothing from BLAS
#: threads, and gets one.
BLAS_THREADED_WORK = 262144

#: Seconds of history the load estimate needs: /proc/stat counts in ticks of 10 ms, so
#: over 0.1 s two CPUs give 20 ticks (a resolution of a tenth of a CPU).
LOAD_WINDOW = 0.1


@dataclass(frozen=True)
class Threads:
    """A decision of :func:`policy`: ``n`` threads, and ``why`` in a few words."""

    n: int
    why: str


def forced_setting(env=None):
    """``FASTRNN_THREADS`` read: "auto", "cpus" or a whole number of at least 1. A value
    that is none of these raises :class:`fastrnn.exceptions.InvalidArgument`."""
    text = (os.environ if env is None else env).get(FORCE, "").strip().lower()
    if text in ("", "auto"):
        return "auto"
    if text == "cpus":
        return "cpus"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        from .exceptions import InvalidArgument

        raise InvalidArgument(f"{FORCE}={text!r} is not a thread setting: use auto (the default: the CPUs other work "
                              "leaves free), cpus (every CPU this process may use) or a whole number of at least 1")
    return n


def policy(purpose, wanted, *, cpus, busy=None, forced="auto", numba=None, slots=1, work=None):
    """How many threads ``purpose`` should start, and why (a :class:`Threads`).

    Parameters
    ----------
    purpose : {"blas", "text", "numba", "processes"}
        What the threads are for.
    wanted : int
        The most the part can use (BLAS: its thread count before this run, which a
        user's own ``OPENBLAS_NUM_THREADS`` or threadpoolctl limit sets; the text
        kernel: 2).
    cpus : int
        CPUs this process may use (:func:`available`: the affinity mask, the CPU quota).
    busy : float or None
        CPUs' worth of other processes' work on those CPUs (:meth:`LoadMeter.other_work`);
        None: not known.
    forced : "auto", "cpus" or int
        :data:`FORCE` as :func:`forced_setting` reads it. A number is taken as it is.
    numba : int or None
        numba's thread count (``NUMBA_NUM_THREADS``), a cap for the parts numba runs.
    slots : int
        Task slots of the Dask workers on this host (1 outside a Dask task): a task's
        share of the CPUs is ``cpus // slots``.
    work : int or None
        BLAS only: the multiply-adds of the run's largest product (below
        :data:`BLAS_THREADED_WORK`: one thread); None: not known.

    Threads that wait for each other (the text kernel's) or spin while they wait
    (OpenBLAS's) lose far more than they gain when they outnumber the free CPUs: a
    second thread is started only where a CPU is free for it, free meaning not taken
    by other work (``busy`` rounded to whole CPUs).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r} is not one of {PURPOSES}")
    wanted = max(1, int(wanted))
    if isinstance(forced, int) and not isinstance(forced, bool):
        return Threads(forced, f"{FORCE}={forced}")
    if purpose == "blas" and work is not None and work <= BLAS_THREADED_WORK:
        return Threads(1, f"products of at most {work} multiply-adds run on one BLAS thread")
    n, why = min(wanted, cpus), f"{cpus} CPU{'s' if cpus != 1 else ''} allowed"
    if wanted < cpus:
        why = f"{wanted} wanted, {why}"
    if purpose in ("text", "numba") and numba is not None and numba < n:
        n, why = numba, f"NUMBA_NUM_THREADS={numba}"
    if slots > 1 and max(1, cpus // slots) < n:
        n, why = max(1, cpus // slots), f"a task's share of {cpus} CPUs among {slots} Dask task slots"
    if forced == "cpus" or busy is None:
        return Threads(max(1, n), why + (f" ({FORCE}=cpus)" if forced == "cpus" else ""))
    free = max(1, cpus - int(math.floor(busy + 0.5)))
    if free < n:
        return Threads(free, f"{why}, other work keeps {busy:.1f} CPUs busy")
    return Threads(max(1, n), f"{why}, other work keeps {busy:.1f} CPUs busy")


def _ticks(text, allowed):
    """(busy, total) clock ticks of the CPUs ``allowed`` (a set of numbers, or None: all)
    in the text of /proc/stat."""
    busy = total = 0
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        try:
            number = int(name[3:])
        except ValueError:
            continue
        if allowed is not None and number not in allowed:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        values += [0] * (8 - len(values))
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
    return busy, total


class LoadMeter:
    """The other work on this process's CPUs, in CPUs' worth: the CPUs' busy time over a
    window (/proc/stat, the CPUs of the affinity mask), less this process's own CPU time
    (``time.process_time``, every thread), over the window's wall time.

    :meth:`other_work` answers from the window since the last look once it is
    LOAD_WINDOW long, from the last answer while it is shorter, and, with no answer
    yet, from the processes running at this instant (/proc/loadavg, less this one).
    Reading takes about 50 us; a look before the window is full costs a clock read."""

    def __init__(self, stat="/proc/stat", loadavg="/proc/loadavg", clock=None, own=None):
        self.stat, self.loadavg = stat, loadavg
        self.clock = clock or time.monotonic
        self.own = own or time.process_time
        self.last = None  # (wall, busy ticks, own CPU seconds)
        self.estimate = None

    def _snapshot(self):
        text = _read(self.stat)
        if not text:
            return None
        try:
            allowed = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            allowed = None
        busy, total = _ticks(text, allowed)
        if total == 0:
            return None
        return self.clock(), busy, self.own()

    def _instant(self):
        """Processes running now, less this one (the 4th field of /proc/loadavg, "running/all")."""
        text = _read(self.loadavg)
        try:
            running = int(text.split()[3].split("/")[0])
        except (AttributeError, IndexError, ValueError):
            return None
        return float(max(0, running - 1))

    def look(self):
        """Open a window if none is open, close it if it is long enough (:meth:`other_work`,
        its answer unused): a caller that decides later calls this first."""
        self.other_work()

    def other_work(self):
        """CPUs' worth of other processes' work on this process's CPUs (None: unknown here)."""
        now = self.clock()
        if self.last is not None and now - self.last[0] < LOAD_WINDOW and self.estimate is not None:
            return self.estimate
        snap = self._snapshot()
        if snap is None:
            return self.estimate
        if self.last is not None and snap[0] - self.last[0] >= LOAD_WINDOW:
            wall = snap[0] - self.last[0]
            busy_seconds = (snap[1] - self.last[1]) / _TICKS_PER_SECOND
            self.estimate = max(0.0, (busy_seconds - (snap[2] - self.last[2])) / wall)
            self.last = snap
            return self.estimate
        if self.last is None:
            self.last = snap
        if self.estimate is None:
            return self._instant()
        return self.estimate


try:
    _TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _TICKS_PER_SECOND = 100

#: The process's meter (:func:`threads` reads it).
METER = LoadMeter()


def numba_threads():
    """numba's thread count (``NUMBA_NUM_THREADS``), or None where numba cannot say."""
    try:
        from numba import config

        return int(config.NUMBA_NUM_THREADS)
    except (ImportError, AttributeError, ValueError):
        return None


#: Seconds an answer of :func:`available` is reused by :func:`threads` (reading the
#: control group's files takes 50-150 us; a text run decides at every chunk).
AVAILABLE_SECONDS = 1.0
_AVAILABLE = [None, -math.inf, 0]  # the functions asked, when, the answer


def _available_now():
    now = time.monotonic()
    asked = (available, affinity, quota)  # another function (a test's stand-in) is asked at once
    if _AVAILABLE[0] != asked or now - _AVAILABLE[1] > AVAILABLE_SECONDS:
        _AVAILABLE[:] = [asked, now, available()]
    return _AVAILABLE[2]


def threads(purpose, wanted, work=None):
    """:func:`policy`'s decision for ``purpose`` in this process now: the CPUs
    :func:`available`, the other work on them (:data:`METER`, only when
    ``FASTRNN_THREADS`` is auto), numba's thread count and a Dask task's share."""
    forced = forced_setting()
    cpus = _available_now()
    busy = METER.other_work() if forced == "auto" and cpus > 1 and wanted > 1 else None
    return policy(purpose, wanted, cpus=cpus, busy=busy, forced=forced, numba=numba_threads(), slots=_dask_slots(),
                  work=work)


# ---------------------------------------------------------------- BLAS's threads

_CONTROLLER = {}


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded (numba's products call SciPy's)."""
    from threadpoolctl import ThreadpoolController

    key = "scipy.linalg.cython_blas" in sys.modules
    if key not in _CONTROLLER:
        _CONTROLLER[key] = ThreadpoolController().select(user_api="blas")
    return _CONTROLLER[key]


def blas_threads_now():
    """The thread count of the loaded BLAS libraries (the smallest), or None without one."""
    try:
        counts = [lib.num_threads for lib in _blas_libraries().lib_controllers]
    except Exception:  # threadpoolctl missing or unable to read a library
        return None
    return min(counts) if counts else None


@contextlib.contextmanager
def blas_limited(n):
    """Hold the loaded BLAS libraries to ``n`` threads inside the block; the counts they had
    come back after it (a user's own code around fastrnn's call keeps its setting)."""
    try:
        libraries = _blas_libraries()
        before = [lib.num_threads for lib in libraries.lib_controllers]
    except Exception:
        yield
        return
    try:
        for lib in libraries.lib_controllers:
            lib.set_num_threads(n)
        yield
    finally:
        for lib, count in zip(libraries.lib_controllers, before):
            lib.set_num_threads(count)


# ---------------------------------------------------------------- numba's threads


@contextlib.contextmanager
def numba_limited():
    """numba's parallel regions started from this thread inside the block use the count
    :func:`threads` gives for "numba" (never more than ``NUMBA_NUM_THREADS``); the block
    gets that count, and the count from before comes back after it."""
    from numba import get_num_threads, set_num_threads

    before = get_num_threads()
    n = max(1, min(threads("numba", before).n, numba_threads() or before))
    if n == before:
        yield n
        return
    set_num_threads(n)
    try:
        yield n
    finally:
        set_num_threads(before)
