"""Sweeps: many seeds and settings at once, on every CPU this process may use or on a Dask cluster.

``fastrnn.sweep(task="binary", seeds=range(100), grid={"lr": [0.05, 0.1]}, out="runs/lr")``
expands the grid over every seed, trains each combination with :func:`fastrnn.train`
and writes, into ``out``, each run's metrics CSV and settings JSON (named after its
settings) plus one ``summary.csv`` with a row per run.

Where the runs execute does not change their numbers. Every run is a pure function
of its settings, and a worker runs it with one BLAS thread and one numba thread.
The results come back to the caller, which alone writes files: the CSV first, then
the JSON, each atomically (and ``summary.csv`` too). A run whose JSON says it
finished is skipped when the same sweep runs again (resume), but only if every
setting the JSON records equals the one asked for; a folder holding runs made with
other settings, or run files that are malformed, truncated or not fastrnn's, is
refused before anything runs, in one line naming the folder or the file
(``overwrite=True``, ``--overwrite``, redoes those runs instead).
"""

import collections
import hashlib
import itertools
import multiprocessing
import numbers
import os
import re
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _checks, _files, settings
from .exceptions import FastRNNError, InvalidArgument, InvalidType, NumericalError
from .metrics import COLUMNS, json_path_for, write_json
from .tasks import LOWER_IS_BETTER, has_goal, headline

#: Every setting a sweep can set with ``--set NAME=...`` (fastrnn.settings; seeds come from ``--seeds``).
SWEEPABLE = tuple(name for name in settings.names() if name != "seed")

#: The most runs one sweep may ask for; more is refused before anything is built.
MAX_RUNS = 1_000_000

#: Environment of local worker processes: one thread each, so N workers use N cores.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: The result columns of summary.csv after the tasks' headline metrics (final_<name>, fastrnn.tasks.headline);
#: first_perfect_iteration only where a task of the sweep is solved at accuracy 1.0 (fastrnn.tasks.has_goal).
SUMMARY_RESULTS = ["first_perfect_iteration", "train_seconds", "status", "diverged"]


# --------------------------------------------------------------------- the grid


def parse_seeds(text):
    """'0-99', '3', '0,5,7' or '0-9,20-29' -> a sorted list of distinct seeds.

    The count is checked before the list is built: more than MAX_RUNS seeds is refused.
    """
    ranges = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise InvalidArgument(f"--seeds {text!r}: write seeds as 0-99, 3 or 0,5,7 (non-negative integers)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise InvalidArgument(f"--seeds {text!r}: the range {part} runs backwards; write it as {hi}-{lo}")
        ranges.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > MAX_RUNS:
        raise InvalidArgument(f"--seeds {text}: that is {count} runs per setting; a sweep runs at most {MAX_RUNS}, "
                              f"so split it into several sweeps")
    seeds = set()
    for lo, hi in ranges:
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def _check_distinct(name, values, shown=None):
    """Refuse a value given twice (0.1 and 0.10, 1 and 1.0): two runs would be one."""
    shown = list(values) if shown is None else shown
    for j in range(len(values)):
        for i in range(j):
            if settings.same_value(values[i], values[j]):
                raise InvalidArgument(f"--set {name}: the value {shown[i]} is given twice ({shown[i]} and {shown[j]}); "
                                      f"give each value once")


def parse_set(text):
    """'lr=0.05,0.1' -> ('lr', [0.05, 0.1])."""
    name, sep, values = str(text).partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise InvalidArgument(f"--set {text!r}: write NAME=V1,V2,... (for example lr=0.05,0.1)")
    if name == "seed":
        raise InvalidArgument("--set seed=...: give seeds with --seeds (for example --seeds 0-99)")
    if name not in SWEEPABLE:
        raise InvalidArgument(f"--set {text!r}: {name!r} is not a train option; choose from {', '.join(sorted(SWEEPABLE))}")
    texts = [v.strip() for v in values.split(",")]
    parsed = [settings.parse(name, v) for v in texts]
    _check_distinct(name, parsed, texts)
    return name, parsed


def _slug(value):
    """A value as it appears in a run's name: its repr with only -, +, . and _ besides letters and digits."""
    text = value if isinstance(value, str) else repr(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text)


def _count(seeds, grid):
    n = len(seeds)
    for values in grid.values():
        n *= len(values)
    return n


def expand(task="binary", seeds=(0,), grid=None, **fixed):
    """Every combination of the grid's values, for every seed, as run specs.

    Each spec is ``{"name": ..., "settings": {...}}``; the name is built from the
    task, the swept values and the seed, e.g. ``binary-lr0.05-hidden8-seed3``.
    Every combination is checked before anything runs: a bad value stops the sweep
    before its first run, with a message that names the setting. So is a value
    given twice (two combinations that would be the same run), a seed given twice,
    and a sweep of more than MAX_RUNS runs. Different runs always get different
    names (a short hash is added where two values would write alike).
    """
    from .training import resolve_settings

    grid = dict(grid or {})
    for name in list(grid) + list(fixed):
        if name not in SWEEPABLE:
            if name == "seed":
                raise InvalidArgument("seed cannot be fixed or swept as a setting; give seeds=[...]")
            raise InvalidArgument(f"{name!r} is not a train option; choose from {', '.join(sorted(SWEEPABLE))}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidArgument(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
        _check_distinct(name, list(values))
    if not hasattr(seeds, "__len__"):
        seeds = list(itertools.islice(seeds, MAX_RUNS + 1))
    if _count(seeds, grid) > MAX_RUNS:
        raise InvalidArgument(f"the sweep asks for {_count(seeds, grid)} runs ({len(seeds)} seeds times "
                              f"{_count([0], grid)} combinations); a sweep runs at most {MAX_RUNS}, so split it")
    seeds = [_checks.check_int("seed", s, minimum=0) for s in seeds]
    if not seeds:
        raise InvalidArgument("seeds is empty; give at least one seed")
    if len(set(seeds)) < len(seeds):
        twice = next(s for i, s in enumerate(seeds) if s in seeds[:i])
        raise InvalidArgument(f"seeds: {twice} is given twice; give each seed once")
    if "task" in fixed:
        task = fixed.pop("task")
    names = list(grid)
    combos, seen = [], {}
    for combo in itertools.product(*(grid[n] for n in names)):
        run = dict(fixed, task=task)
        run.update(zip(names, combo))
        where = ", ".join(f"{n}={v}" for n, v in zip(names, combo)) or "the fixed settings"
        try:
            _, resolved = resolve_settings(**dict(run, seed=seeds[0]))
        except FastRNNError as exc:
            raise type(exc)(f"sweep setting {where}: {exc}") from None
        key = repr(sorted(resolved.items()))
        if key in seen:
            raise InvalidArgument(f"sweep settings {seen[key]} and {where} are the same run (a default given as a value?); "
                                  f"give each value once")
        seen[key] = where
        # a value given as the default (None) is named by the value it resolves to: "initdefault", not "initNone"
        label = "-".join(f"{n}{_slug(resolved.get(n, v) if v is None else v)}" for n, v in zip(names, combo))
        combos.append((run, label))
    uses = collections.Counter(label for _, label in combos)
    specs = []
    for run, label in combos:
        if uses[label] > 1:  # two values that write alike: tell them apart by a hash of the settings
            label += "-h" + hashlib.sha1(repr(sorted(run.items())).encode()).hexdigest()[:8]
        for seed in seeds:
            name = "-".join(p for p in (str(run["task"]), label, f"seed{seed}") if p)
            specs.append({"name": name, "settings": dict(run, seed=seed)})
    return specs


# ----------------------------------------------------------------- one run


def run_one(spec):
    """Train one run of a sweep; return its rows and settings (runs in a worker).

    BLAS is held to one thread so that the numbers are the same wherever the run
    executes (a multi-threaded BLAS may sum in another order).
    """
    from threadpoolctl import threadpool_limits

    from .training import train

    given = spec["settings"]
    error = None
    with threadpool_limits(1):
        try:
            result = train(**given, csv=None, progress=False)
        except NumericalError as exc:
            result, error = exc.result, str(exc)
        except FastRNNError as exc:  # should not happen: expand() checked the settings
            return {"name": spec["name"], "settings": given, "rows": [], "meta": dict(given, status="failed", error=str(exc), result={})}
    return _outcome(spec, result, error)


def _outcome(spec, result, error=None):
    meta = dict(result.settings, status=result.status, result=result.summary())
    if error:
        meta["error"] = error
    return {"name": spec["name"], "settings": spec["settings"], "rows": result.rows, "meta": meta}


#: Models trained together in one parallel kernel call (a Ctrl-C loses at most these): four lane
#: groups of the lanes kernel (fastrnn._small.LANES), so that two or four threads share the work.
GROUP_SIZE = 128


def run_group(specs):
    """Train runs that differ only in seed together (:func:`fastrnn.training.train_many`)."""
    from .training import train_many

    results = train_many([dict(s["settings"]) for s in specs])
    for spec, result in zip(specs, results):
        message = None
        if result.status == "diverged":
            message = f"the loss became NaN or infinite at iteration {result.iterations + 1}; training stopped there"
        yield _outcome(spec, result, message)


def _groups(todo, vectorize):
    """Split the runs into groups for train_many and singles for the pool."""
    from .training import can_train_together

    if not vectorize:
        return [], todo
    by_shape = {}
    for spec in todo:
        key = repr(sorted((k, v) for k, v in spec["settings"].items() if k != "seed"))
        by_shape.setdefault(key, []).append(spec)
    groups, singles = [], []
    for specs in by_shape.values():
        if len(specs) > 1 and can_train_together(specs[0]["settings"]):
            groups += [specs[i : i + GROUP_SIZE] for i in range(0, len(specs), GROUP_SIZE)]
        else:
            singles += specs
    return groups, singles


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def _csv_text(columns, rows):
    """csv.DictWriter's text of the rows (header, then "\r\n"-ended lines), built with one join;
    None where a value is not a plain int or float or a row's keys differ from the columns
    (DictWriter writes those). The csv module writes an int with str and a float with repr,
    unquoted: so does this, byte for byte."""
    if not all(_PLAIN_NAME.fullmatch(c) for c in columns):
        return None
    keys = tuple(columns)
    lines = [",".join(columns)]
    for row in rows:
        if tuple(row) != keys:  # in the columns' order (keys views compare as sets)
            return None
        values = list(row.values())
        if not all(type(v) is float or type(v) is int for v in values):
            return None
        lines.append(",".join(map(repr, values)))
    lines.append("")
    return "\r\n".join(lines)


def _write_run(out, outcome):
    """The run's CSV, then its JSON (which marks it finished), each written atomically."""
    import csv as csv_module

    csv_path = out / f"{outcome['name']}.csv"
    columns = list(outcome["rows"][0]) if outcome["rows"] else list(COLUMNS)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    try:
        text = _csv_text(columns, outcome["rows"])
        with open(tmp, "w", newline="") as fh:
            if text is not None:
                fh.write(text)
            else:
                writer = csv_module.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(outcome["rows"])
        _files.replace(tmp, csv_path, "the run's CSV")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_json(json_path_for(csv_path), outcome["meta"])


#: A run whose JSON says one of these is finished; "running" and "interrupted" are redone.
FINISHED = ("completed", "diverged", "failed")
UNFINISHED = ("running", "interrupted")

#: The result fields a summary reads from a run's JSON, with the types they may have.
RESULT_FIELDS = {"final_accuracy": numbers.Real, "first_perfect_iteration": numbers.Integral,
                 "train_seconds": numbers.Real, "iterations_done": numbers.Integral}


class _BadRunFile(Exception):
    """A run's file exists but is not what a finished sweep run writes (the message says why)."""

    def __init__(self, path, why):
        super().__init__(f"{path} {why}")
        self.path = path


def _read_meta(path):
    """A run's JSON as a dict, or None if the run is not finished; _BadRunFile if the file is malformed."""
    import json

    if not path.exists():
        return None
    if not path.is_file():
        raise _BadRunFile(path, "is not a file")
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _BadRunFile(path, f"is not valid JSON ({type(exc).__name__})") from None
    except OSError as exc:
        raise _BadRunFile(path, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict):
        raise _BadRunFile(path, f"holds a JSON {type(meta).__name__}, not a run's settings object")
    status = meta.get("status")
    if status in UNFINISHED:
        return None
    if status not in FINISHED:
        raise _BadRunFile(path, f"has no run status fastrnn writes (status {_short(status)})")
    result = meta.get("result", {})
    if not isinstance(result, dict):
        raise _BadRunFile(path, "has a result that is not an object")
    for key, kind in RESULT_FIELDS.items():
        value = result.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise _BadRunFile(path, f"has result.{key} = {_short(value)}, not a number")
    for key, value in result.items():  # every headline metric's final value
        if str(key).startswith("final_") and value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise _BadRunFile(path, f"has result.{key} = {_short(value)}, not a number")
    return meta


def _check_rows(path, meta):
    """The metrics CSV of a finished run: readable, docs/math.md's columns, rows up to the iterations recorded."""
    import csv as csv_module
    import io

    try:
        with open(path, newline="") as fh:
            text = fh.read()
        rows = list(csv_module.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv_module.Error) as exc:
        raise _BadRunFile(path, f"is not a readable metrics CSV ({type(exc).__name__})") from None
    header = rows[0] if rows else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise _BadRunFile(path, f"is not a fastrnn metrics CSV (it lacks the column {missing[0]})")
    if text and not text.endswith("\n"):
        raise _BadRunFile(path, "ends inside a row: its last line has no line ending (truncated?)")
    if any(len(r) != len(header) for r in rows[1:]):
        raise _BadRunFile(path, "has rows of the wrong length (truncated?)")
    done = (meta.get("result") or {}).get("iterations_done")
    last = rows[-1][header.index("iteration")] if len(rows) > 1 else "0"
    if done is not None and last != str(done):
        raise _BadRunFile(path, f"ends at iteration {_short(last)} but its JSON says {done} were done (truncated?)")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _differences(meta, requested):
    """[(setting, recorded, requested)] for every setting of the run that its JSON records otherwise.

    A setting missing from the JSON (a run made before the setting existed) counts
    as its fixed default, if it has one.
    """
    out = []
    for setting in settings.every():
        if setting.name not in requested:
            continue
        want = requested[setting.name]
        if setting.name in meta:
            have = meta[setting.name]
        elif setting.default != settings.PER_TASK and settings.same_value(setting.default, want):
            continue
        else:
            out.append((setting.name, "(not recorded)", want))
            continue
        if not settings.same_value(have, want):
            out.append((setting.name, have, want))
    return out


def _existing(out, specs, overwrite):
    """Which runs are finished with the requested settings: (todo specs, {name: meta} of the rest).

    Refuses, before anything runs, a folder whose finished runs were made with
    other settings, or whose run files are malformed, truncated or foreign, in one
    line naming the folder or the file; with ``overwrite`` those runs are redone.
    """
    from .training import resolve_settings

    todo, done, differ, bad = [], {}, {}, []
    for path in [out / "summary.csv"] + [out / f"{spec['name']}.{ext}" for spec in specs for ext in ("csv", "json")]:
        # with --overwrite too: only regular files are replaced
        _files.check_replaceable(path, f"sweep folder {out}:", "move it away or choose another --out")
    for spec in specs:
        json_path, csv_path = out / f"{spec['name']}.json", out / f"{spec['name']}.csv"
        try:
            meta = _read_meta(json_path)
            if meta is not None and not csv_path.is_file():
                meta = None  # the JSON comes last: a run without its CSV is redone
            if meta is not None:
                _check_rows(csv_path, meta)
        except _BadRunFile as exc:
            bad.append(str(exc))
            todo.append(spec)
            continue
        if meta is None:
            todo.append(spec)
            continue
        _, requested = resolve_settings(**spec["settings"])
        found = _differences(meta, requested)
        if found:
            for name, have, want in found:
                differ.setdefault(name, (have, want, []))[2].append(spec["name"])
            todo.append(spec)
            continue
        done[spec["name"]] = meta
    if bad and not overwrite:
        more = f" (and {len(bad) - 1} more run files like it)" if len(bad) > 1 else ""
        raise InvalidArgument(f"sweep folder {out}: {bad[0]}{more}; move it away, choose another --out, "
                              f"or pass --overwrite to redo the run")
    if differ and not overwrite:
        runs = len({n for _, _, names in differ.values() for n in names})
        what = "; ".join(f"{name} {_short(have)} there, {_short(want)} asked" for name, (have, want, _) in differ.items())
        raise InvalidArgument(f"sweep folder {out} already holds {runs} finished run(s) of this sweep made with other "
                              f"settings ({what}); choose another --out, or pass --overwrite to redo them")
    return todo, done


# ---------------------------------------------------------------- one sweep per folder

#: The lock file a running sweep keeps in its folder: who holds it, as JSON.
LOCK_NAME = "sweep.lock"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process: alive
        return True
    return True


class _SweepLock:
    """``out/sweep.lock``, created with O_EXCL: one sweep at a time writes into a folder.

    The file names its holder (pid, host, start time). A second sweep is refused in one
    line naming it; a lock left by a process that no longer runs on this host is taken
    over; one from another host (whose processes cannot be checked from here) is
    refused unless ``force``. Released when the sweep ends, however it ends.
    """

    def __init__(self, out, force=False):
        import json
        import socket

        self.path = Path(out) / LOCK_NAME
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "argv": sys.argv[:8]}
        self._json = json
        for _ in range(3):
            if self._create():
                return
            holder = self._holder()
            why = self._refusal(holder, force)
            if why is not None:
                raise InvalidArgument(f"--out {out} is in use: {why}")
            self._take_over(holder)
        raise InvalidArgument(f"--out {out}: could not take its lock file {self.path} (another sweep keeps taking it)")

    def _take_over(self, holder):
        """Move the stale lock aside (a rename: of two sweeps taking it over, one gets it); a lock
        that turns out to be another's fresh one is put back (a link: only into an empty place)."""
        grave = self.path.with_name(f"{LOCK_NAME}.{self.me['pid']}.{time.monotonic_ns()}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return
        try:
            if holder and self._read(grave) != holder:
                try:
                    os.link(grave, self.path)
                except OSError:
                    pass
        finally:
            grave.unlink(missing_ok=True)

    def _create(self):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise InvalidArgument(f"--out {self.path.parent}: cannot create its lock file {self.path} "
                                  f"({exc.strerror or exc})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(self._json.dumps(self.me) + "\n")
        return True

    def _holder(self):
        return self._read(self.path)

    def _read(self, path):
        """The holder a lock file names ({} if it is gone, None if unreadable)."""
        try:
            data = self._json.loads(Path(path).read_text())
            if isinstance(data, dict) and isinstance(data.get("pid"), int) and isinstance(data.get("host"), str):
                return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, UnicodeDecodeError):
            pass
        return None

    def _refusal(self, holder, force):
        """Why the lock cannot be taken (a sentence), or None."""
        if holder == {}:  # gone meanwhile: try again
            return None
        if holder is None:
            if force:
                return None
            return (f"its lock file {self.path} cannot be read (a sweep starting this instant, or a damaged "
                    f"file); if no sweep writes there, delete it or pass --force")
        who = f"pid {holder['pid']} on host {holder['host']} since {holder.get('started', 'an unknown time')}"
        if holder["host"] == self.me["host"]:
            if _pid_alive(holder["pid"]):
                return f"another sweep is writing there ({who}); wait for it to finish or stop it, or choose another --out"
            return None  # its process is gone: take it over
        if force:
            return None
        return (f"a sweep on another host holds it ({who}; {self.path}); if that sweep is gone, pass --force to "
                f"take the folder over")

    def release(self):
        """Remove the lock file if it is still this sweep's."""
        if self._holder() == self.me:
            try:
                self.path.unlink()
            except OSError:
                pass


def _clear_partial(out, specs):
    """Delete the temporary files a killed sweep left for these runs (a run's CSV or JSON is
    written to NAME.csv.tmp / NAME.json.tmp, then renamed); under the lock, none is in use."""
    for spec in specs:
        for suffix in (".csv.tmp", ".json.tmp"):
            (out / f"{spec['name']}{suffix}").unlink(missing_ok=True)
    (out / "summary.csv.tmp").unlink(missing_ok=True)


# ---------------------------------------------------------------- executing


@dataclass
class SweepResult:
    """What :func:`sweep` returns: the summary (one row per run), what ran and where.

    Examples
    --------
    >>> import fastrnn
    >>> result = fastrnn.sweep(task="binary", seeds=[0, 1], grid={"iters": [500]}, out="runs/demo", workers=1)
    >>> list(result.summary["seed"])
    [0, 1]
    """

    summary: object
    out: Path
    ran: int
    skipped: int
    seconds: float
    interrupted: bool = False


@contextmanager
def _environment(values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_workers():
    """Worker processes a local sweep starts unless told: one per CPU this process may keep busy
    (:func:`fastrnn.cpus.available`: the affinity mask, or the control group's CPU quota if smaller),
    not ``os.cpu_count()``, and no more than other work leaves free (the thread policy,
    :func:`fastrnn.cpus.policy`). Each worker runs one thread, so more workers than that only take
    turns on the same CPUs, and every run's ``train_seconds`` grows by the ratio."""
    from . import cpus

    return cpus.threads("processes", cpus.available()).n


#: How often a worker looks whether its parent still runs (seconds).
PARENT_CHECK_SECONDS = 0.5


def _worker_start(parent):
    """A pool worker's initializer: Ctrl-C is the parent's to handle, and the worker never outlives the parent.

    SIGTERM and SIGHUP (the pool's terminate, or a signal to the process group) end the
    worker at once and quietly: the parent keeps the rows and says what was done, so the
    run in hand must not take these signals over (as ``train`` does where they have their
    default handler) and print its own stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_at_once)
    _die_with_parent()
    _watch_parent(parent)


def _exit_at_once(signum, frame):
    os._exit(128 + signum)


def _die_with_parent():
    """On Linux, have the kernel kill this process when the thread that started it ends (the parent
    killed, SIGKILL included): ``prctl(PR_SET_PDEATHSIG, SIGKILL)``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass


def _watch_parent(parent):
    """End this process as soon as ``parent`` is no longer its parent (``os.getppid``), checked by a daemon
    thread every PARENT_CHECK_SECONDS, while the worker trains too (the kernels release the GIL).

    PR_SET_PDEATHSIG is tied to the thread that started the worker, and a pool starts
    replacement workers from a thread of its own: this covers what it does not.
    """
    import threading

    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="fastrnn-parent-watch", daemon=True).start()


def _precompile(specs):
    """Compile (or load) the kernels once, before any worker starts.

    numba's on-disk cache can race when several processes compile the same function
    at once (numba issues #4807, #10128); after this, workers only load it.
    """
    from .training import train

    seen = set()
    for spec in specs:
        s = spec["settings"]
        key = (s.get("dtype", "float64"), bool(s.get("log_spectrum")))
        if key not in seen:
            seen.add(key)
            given = {k: v for k, v in s.items() if k not in ("iters", "log_every")}
            try:
                train(**given, iters=1, log_every=1)
            except NumericalError:
                pass


def _execute(todo, workers, scheduler, vectorize):
    """Yield the outcome of every run, in the order they finish."""
    if scheduler is not None:
        yield from _execute_dask(todo, scheduler)
        return
    groups, todo = _groups(todo, vectorize and workers > 1)
    for group in groups:
        yield from run_group(group)
    if not todo:
        return
    if workers == 1:
        for spec in todo:
            yield run_one(spec)
    else:
        _precompile(todo)
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads
        with _environment(WORKER_ENV):
            pool = ctx.Pool(workers, initializer=_worker_start, initargs=(os.getpid(),))
        try:
            yield from pool.imap_unordered(run_one, todo, chunksize=1)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


#: Times a run lost with its Dask worker is submitted again (beyond the scheduler's own retries).
DASK_RETRIES = 3


def _execute_dask(todo, scheduler):
    """Yield the outcome of every run from the Dask scheduler, in the order they finish.

    A worker writes no file: it returns the run's rows and settings, and this process
    writes them (:func:`_write_run`). A worker killed in the middle of a run so leaves
    nothing behind; the scheduler gives its runs to another worker, and a run it gives up
    on (``KilledWorker``, after its ``allowed-failures``) is submitted again here, up to
    DASK_RETRIES times, with a line on stderr."""
    try:
        from distributed import Client, KilledWorker, as_completed
    except ImportError:
        raise InvalidArgument("--scheduler needs Dask's distributed package: pip install 'fastrnn[cluster]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InvalidArgument(f"--scheduler {scheduler}: no Dask scheduler answered there ({exc})") from None
    futures = client.map(run_one, todo, pure=False)
    specs = {f.key: spec for f, spec in zip(futures, todo)}
    retries = collections.Counter()
    try:
        pending = as_completed(futures)
        for future in pending:
            try:
                outcome = future.result()
            except KilledWorker:
                spec = specs[future.key]
                retries[spec["name"]] += 1
                if retries[spec["name"]] > DASK_RETRIES:
                    raise
                print(f"fastrnn: run {spec['name']} was lost with its Dask worker; it runs again "
                      f"(try {retries[spec['name']] + 1})", file=sys.stderr, flush=True)
                again = client.submit(run_one, spec, pure=False)
                specs[again.key] = spec
                futures.append(again)
                pending.add(again)
                continue
            yield outcome
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()


def sweep(task="binary", seeds=(0,), grid=None, out="runs/sweep", workers=None, scheduler=None, progress=False,
          vectorize=True, overwrite=False, force=False, **fixed):
    """Train every combination of ``grid`` for every seed and write the results to ``out``.

    Parameters
    ----------
    task : str
    seeds : iterable of int
    grid : dict of str to list
        Settings to sweep, e.g. ``{"lr": [0.05, 0.1], "hidden": [8, 16]}``; any
        option of :func:`fastrnn.train` (see ``SWEEPABLE``).
    out : path
        Folder for the runs' CSV/JSON files and ``summary.csv``.
    workers : int or None
        Local worker processes (default: :func:`default_workers`, one per CPU this process may
        use that other work leaves free); 1 runs in this process.
    scheduler : str or None
        Address of a Dask distributed scheduler (``tcp://host:port``); the runs go
        there instead of to local workers.
    progress : bool
        A tqdm bar over runs, with the best and worst final accuracy so far.
    vectorize : bool
        Train local runs that differ only in seed together, many models per kernel
        call (:func:`fastrnn.training.train_many`; float64 plain-SGD runs of the
        headline's kind in the lanes of vectors, :func:`fastrnn._small.train_lanes_sgd`), where their products
        are small enough to stay out of BLAS; the numbers are the same as separate
        runs. Other runs go to the process pool.
    overwrite : bool
        Redo the runs in ``out`` whose files cannot be reused. Without it such a
        folder is refused before anything runs: a finished run is reused only when
        every setting its JSON records equals the one asked for, and a malformed,
        truncated or foreign run file (JSON or CSV) stops the sweep with one line
        naming it. A run whose JSON is missing or says "running"/"interrupted" is
        unfinished and is always redone.
    force : bool
        Take over the folder's lock file (``sweep.lock``) even when a sweep on another
        host holds it. Without it a folder another sweep is writing into is refused, in
        one line naming that sweep (pid, host, start time); a lock whose process is gone
        from this host is taken over in any case.
    **fixed
        Settings shared by every run (``iters=5000``, say).

    Returns
    -------
    SweepResult
        ``summary`` is a DataFrame with a row per run. After Ctrl-C (or SIGTERM or
        SIGHUP, taken over in the main thread where their default handler is in
        place; ``exc.signum`` says which), the KeyboardInterrupt carries
        ``.result``: every finished run is kept, the workers are stopped, and the
        same call again runs only the rest. Workers never outlive the sweep's
        process, however it ends (:func:`_worker_start`).

    Examples
    --------
    >>> import fastrnn
    >>> result = fastrnn.sweep(task="binary", seeds=range(2), grid={"lr": [0.1, 0.3], "iters": [500]}, out="runs/demo", workers=1)
    >>> len(result.summary), sorted(result.summary["lr"].unique().tolist())
    (4, [0.1, 0.3])
    """
    specs = expand(task, seeds, grid, **fixed)
    if workers is not None and scheduler is not None:
        raise InvalidArgument(f"--workers {workers} sets local worker processes, but --scheduler {scheduler} sends the "
                              f"runs to a Dask cluster, whose workers run them; give one of the two")
    workers = default_workers() if workers is None else _checks.check_int("workers", workers, minimum=1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"--out {out} is a file; give a folder for the sweep's runs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"cannot create --out {out}: {exc.strerror or exc}") from None
    if not isinstance(overwrite, (bool, np.bool_)):
        raise InvalidType(f"overwrite must be True or False, got {overwrite!r}")
    if not isinstance(force, (bool, np.bool_)):
        raise InvalidType(f"force must be True or False, got {force!r}")
    lock = _SweepLock(out, force)
    try:
        _clear_partial(out, specs)
        return _sweep_locked(out, specs, workers, scheduler, progress, vectorize, overwrite)
    finally:
        lock.release()


def _sweep_locked(out, specs, workers, scheduler, progress, vectorize, overwrite):
    import pandas as pd

    todo, metas = _existing(out, specs, overwrite)
    skipped = len(specs) - len(todo)
    start = time.perf_counter()
    bar = None
    if progress:
        from . import _progress

        bar = _progress.bar(len(specs), initial=skipped, unit="run")
    finals = []  # the first headline metric of each run that ran, for the progress bar
    ran = 0
    interrupted = False
    from . import _signals

    try:
        with _signals.stop_handlers():
            for outcome in _execute(todo, min(workers, max(len(todo), 1)), scheduler, vectorize):
                _write_run(out, outcome)
                metas[outcome["name"]] = outcome["meta"]
                ran += 1
                first = headline(outcome["settings"]["task"])[0]
                final = (outcome["meta"].get("result") or {}).get(f"final_{first}")
                if final is not None:
                    finals.append((first, final))
                if bar is not None:
                    bar.update(1)
                    if finals:
                        bar.set_postfix(_best_worst(finals), refresh=False)
    except KeyboardInterrupt as exc:
        interrupted = True
        exc.result = _finish(out, specs, metas, ran, skipped, start, True, bar, pd)
        raise
    return _finish(out, specs, metas, ran, skipped, start, interrupted, bar, pd)


def _best_worst(finals):
    """The progress bar's best and worst final value of the first headline metric ((metric, value) pairs)."""
    metric = finals[-1][0]
    values = [v for m, v in finals if m == metric]
    best, worst = (min, max) if metric in LOWER_IS_BETTER else (max, min)
    return {f"best_{metric}": f"{best(values):.3f}", f"worst_{metric}": f"{worst(values):.3f}"}


def _finish(out, specs, metas, ran, skipped, start, interrupted, bar, pd):
    if bar is not None:
        bar.close()
    summary = summarize(out, specs, pd, metas)
    path = out / "summary.csv"
    tmp = path.with_name(path.name + ".tmp")  # the same folder, so that the replace is atomic
    try:
        summary.to_csv(tmp, index=False)
        _files.replace(tmp, path, "the sweep's summary")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return SweepResult(summary=summary, out=out, ran=ran, skipped=skipped, seconds=time.perf_counter() - start, interrupted=interrupted)


def summarize(out, specs, pd=None, metas=None):
    """One row per finished run of ``specs``: name, settings, seed and results.

    ``metas`` maps run names to their JSON contents where the caller has them;
    the others are read from ``out`` (InvalidArgument naming a malformed file).
    """
    if pd is None:
        import pandas as pd
    if metas is None:
        metas = {}
        for spec in specs:
            try:
                meta = _read_meta(Path(out) / f"{spec['name']}.json")
            except _BadRunFile as exc:
                raise InvalidArgument(f"sweep folder {out}: {exc}") from None
            if meta is not None:
                metas[spec["name"]] = meta
    swept = [k for k in SWEEPABLE if len({repr(s["settings"].get(k)) for s in specs}) > 1]
    tasks = list(dict.fromkeys(str(s["settings"]["task"]) for s in specs))
    metrics = list(dict.fromkeys(m for t in tasks for m in headline(t)))
    results = [f"final_{m}" for m in metrics] + [c for c in SUMMARY_RESULTS
                                                 if c != "first_perfect_iteration" or any(map(has_goal, tasks))]
    rows = []
    for spec in specs:
        meta = metas.get(spec["name"])
        if meta is None:
            continue
        result = meta.get("result") or {}
        row = {"run": spec["name"], "task": spec["settings"]["task"]}
        row.update({k: spec["settings"].get(k) for k in swept if k != "task"})
        row["seed"] = spec["settings"]["seed"]
        mine = headline(row["task"])
        last = None
        for m in metrics:
            if m not in mine:
                row[f"final_{m}"] = None  # another task's metric
            elif f"final_{m}" in result:
                row[f"final_{m}"] = result[f"final_{m}"]
            else:  # a run recorded before its JSON named the headline: the last row of its CSV
                last = _last_row(Path(out) / f"{spec['name']}.csv") if last is None else last
                row[f"final_{m}"] = _number(last.get(m))
        row.update(
            first_perfect_iteration=result.get("first_perfect_iteration"),
            train_seconds=result.get("train_seconds"),
            status=meta.get("status"),
            diverged=meta.get("status") == "diverged",
        )
        rows.append(row)
    columns = ["run", "task"] + [k for k in swept if k != "task"] + ["seed"] + results
    return pd.DataFrame(rows, columns=columns)


def _last_row(path):
    """The last row of a run's CSV as a dict ({} if it has none or cannot be read)."""
    import csv as csv_module

    try:
        with open(path, newline="") as fh:
            last = {}
            for last in csv_module.DictReader(fh):
                pass
            return last
    except (OSError, UnicodeDecodeError, csv_module.Error):
        return {}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
