"""Sweeps: many seeds and settings at once, on every core or on a Dask cluster.

``fastrnn.sweep(task="binary", seeds=range(100), grid={"lr": [0.05, 0.1]}, out="runs/lr")``
expands the grid over every seed, trains each combination with :func:`fastrnn.train`
and writes, into ``out``, each run's metrics CSV and settings JSON (named after its
settings) plus one ``summary.csv`` with a row per run.

Where the runs execute does not change their numbers. Every run is a pure function
of its settings, and a worker runs it with one BLAS thread and one numba thread.
The results come back to the caller, which alone writes files: the CSV first, then
the JSON, each atomically. A run whose JSON exists is finished, so running the same
sweep again skips it (resume).
"""

import itertools
import multiprocessing
import os
import re
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


from . import _checks
from .exceptions import FastRNNError, InvalidArgument, NumericalError
from .metrics import COLUMNS, json_path_for, write_json

#: Every option of ``fastrnn train`` a sweep can set, with its parser.
SWEEPABLE = {
    "task": str, "iters": int, "batch": int, "hidden": int, "layers": int, "activation": str, "lr": float,
    "optimizer": str, "clip": float, "bptt_truncate": int, "dtype": str, "log_every": int, "bits": int,
    "digits": int, "encoding": str, "init_scale": "init_scale", "momentum": float, "log_spectrum": "bool",
}

#: Environment of local worker processes: one thread each, so N workers use N cores.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

SUMMARY_RESULTS = ["final_accuracy", "first_perfect_iteration", "train_seconds", "status", "diverged"]


# --------------------------------------------------------------------- the grid


def parse_seeds(text):
    """'0-99', '3', '0,5,7' or '0-9,20-29' -> a sorted list of distinct seeds."""
    seeds = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise InvalidArgument(f"--seeds {text!r}: write seeds as 0-99, 3 or 0,5,7 (non-negative integers)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise InvalidArgument(f"--seeds {text!r}: the range {part} runs backwards; write it as {hi}-{lo}")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def _parse_value(name, text):
    kind = SWEEPABLE[name]
    text = text.strip()
    if text.lower() in ("none", "default") and name in ("bptt_truncate", "clip", "init_scale", "bits", "digits", "encoding"):
        return None
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind == "init_scale":
            return text if text == "fan_in" else float(text)
        return kind(text)
    except ValueError:
        need = {int: "an integer", float: "a number", "bool": "true or false", "init_scale": "a number or fan_in"}.get(kind, "a word")
        raise InvalidArgument(f"--set {name}={text!r}: {name} needs {need}") from None


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
    return name, [_parse_value(name, v) for v in values.split(",")]


def _slug(value):
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value))


def expand(task="binary", seeds=(0,), grid=None, **fixed):
    """Every combination of the grid's values, for every seed, as run specs.

    Each spec is ``{"name": ..., "settings": {...}}``; the name is built from the
    task, the swept values and the seed, e.g. ``binary-lr0.05-hidden8-seed3``.
    Every combination is checked before anything runs: a bad value stops the sweep
    before its first run, with a message that names the setting.
    """
    from .training import resolve_settings

    grid = dict(grid or {})
    for name in list(grid) + list(fixed):
        if name not in SWEEPABLE:
            raise InvalidArgument(f"{name!r} is not a train option; choose from {', '.join(sorted(SWEEPABLE))}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidArgument(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    seeds = [_checks.check_int("seed", s, minimum=0) for s in seeds]
    if not seeds:
        raise InvalidArgument("seeds is empty; give at least one seed")
    if "task" in fixed:
        task = fixed.pop("task")
    names = list(grid)
    specs = []
    for combo in itertools.product(*(grid[n] for n in names)):
        settings = dict(fixed, task=task)
        settings.update(zip(names, combo))
        label = "-".join(f"{n}{_slug(v)}" for n, v in zip(names, combo))
        for seed in seeds:
            run = dict(settings, seed=seed)
            try:
                resolve_settings(**run)
            except FastRNNError as exc:
                where = ", ".join(f"{n}={v}" for n, v in zip(names, combo)) or "the fixed settings"
                raise type(exc)(f"sweep setting {where}: {exc}") from None
            name = "-".join(p for p in (str(run["task"]), label, f"seed{seed}") if p)
            specs.append({"name": name, "settings": run})
    return specs


# ----------------------------------------------------------------- one run


def run_one(spec):
    """Train one run of a sweep; return its rows and settings (runs in a worker).

    BLAS is held to one thread so that the numbers are the same wherever the run
    executes (a multi-threaded BLAS may sum in another order).
    """
    from threadpoolctl import threadpool_limits

    from .training import train

    settings = spec["settings"]
    error = None
    with threadpool_limits(1):
        try:
            result = train(**settings, csv=None, progress=False)
        except NumericalError as exc:
            result, error = exc.result, str(exc)
        except FastRNNError as exc:  # should not happen: expand() checked the settings
            return {"name": spec["name"], "settings": settings, "rows": [], "meta": dict(settings, status="failed", error=str(exc), result={})}
    return _outcome(spec, result, error)


def _outcome(spec, result, error=None):
    meta = dict(result.settings, status=result.status, result=result.summary())
    if error:
        meta["error"] = error
    return {"name": spec["name"], "settings": spec["settings"], "rows": result.rows, "meta": meta}


#: Models trained together in one parallel kernel call (a Ctrl-C loses at most these).
GROUP_SIZE = 16


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


def _write_run(out, outcome):
    """The run's CSV, then its JSON (which marks it finished), each written atomically."""
    import csv as csv_module

    csv_path = out / f"{outcome['name']}.csv"
    columns = list(outcome["rows"][0]) if outcome["rows"] else list(COLUMNS)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv_module.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(outcome["rows"])
    os.replace(tmp, csv_path)
    write_json(json_path_for(csv_path), outcome["meta"])


def _finished(out, name):
    """A finished run's settings and result (its JSON, written last), or None if it is not complete."""
    import json

    path = out / f"{name}.json"
    if not path.is_file() or not (out / f"{name}.csv").is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except ValueError:
        return None
    return meta if meta.get("status") in ("completed", "diverged", "failed") else None


# ---------------------------------------------------------------- executing


@dataclass
class SweepResult:
    """What :func:`sweep` returns: the summary (one row per run), what ran and where."""

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


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


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
            settings = {k: v for k, v in s.items() if k not in ("iters", "log_every")}
            try:
                train(**settings, iters=1, log_every=1)
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
            pool = ctx.Pool(workers, initializer=_ignore_sigint)
        try:
            yield from pool.imap_unordered(run_one, todo, chunksize=1)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


def _execute_dask(todo, scheduler):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InvalidArgument("--scheduler needs Dask's distributed package: pip install 'fastrnn[cluster]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InvalidArgument(f"--scheduler {scheduler}: no Dask scheduler answered there ({exc})") from None
    futures = client.map(run_one, todo, pure=False)
    try:
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()


def sweep(task="binary", seeds=(0,), grid=None, out="runs/sweep", workers=None, scheduler=None, progress=False,
          vectorize=True, **fixed):
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
        Local worker processes (default: every core); 1 runs in this process.
    scheduler : str or None
        Address of a Dask distributed scheduler (``tcp://host:port``); the runs go
        there instead of to local workers.
    progress : bool
        A tqdm bar over runs, with the best and worst final accuracy so far.
    vectorize : bool
        Train local runs that differ only in seed together, one model per thread of
        one kernel call (:func:`fastrnn.training.train_many`), where their products
        are small enough to stay out of BLAS; the numbers are the same as separate
        runs. Other runs go to the process pool.
    **fixed
        Settings shared by every run (``iters=5000``, say).

    Returns
    -------
    SweepResult
        ``summary`` is a DataFrame with a row per run. After Ctrl-C, the
        KeyboardInterrupt carries ``.result``: every finished run is kept, and the
        same call again runs only the rest.
    """
    import pandas as pd

    specs = expand(task, seeds, grid, **fixed)
    workers = os.cpu_count() if workers is None else _checks.check_int("workers", workers, minimum=1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"--out {out} is a file; give a folder for the sweep's runs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"cannot create --out {out}: {exc.strerror or exc}") from None
    todo = [s for s in specs if _finished(out, s["name"]) is None]
    skipped = len(specs) - len(todo)
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), initial=skipped, unit="run", file=sys.stderr, dynamic_ncols=True, leave=False)
    accuracies = []
    ran = 0
    interrupted = False
    try:
        for outcome in _execute(todo, min(workers, max(len(todo), 1)), scheduler, vectorize):
            _write_run(out, outcome)
            ran += 1
            final = (outcome["meta"].get("result") or {}).get("final_accuracy")
            if final is not None:
                accuracies.append(final)
            if bar is not None:
                bar.update(1)
                if accuracies:
                    bar.set_postfix(best=f"{max(accuracies):.3f}", worst=f"{min(accuracies):.3f}", refresh=False)
    except KeyboardInterrupt as exc:
        interrupted = True
        exc.result = _finish(out, specs, ran, skipped, start, True, bar, pd)
        raise
    return _finish(out, specs, ran, skipped, start, interrupted, bar, pd)


def _finish(out, specs, ran, skipped, start, interrupted, bar, pd):
    if bar is not None:
        bar.close()
    summary = summarize(out, specs, pd)
    summary.to_csv(out / "summary.csv", index=False)
    return SweepResult(summary=summary, out=out, ran=ran, skipped=skipped, seconds=time.perf_counter() - start, interrupted=interrupted)


def summarize(out, specs, pd=None):
    """One row per finished run of ``specs``: name, settings, seed and results."""
    if pd is None:
        import pandas as pd
    swept = [k for k in SWEEPABLE if len({repr(s["settings"].get(k)) for s in specs}) > 1]
    rows = []
    for spec in specs:
        meta = _finished(out, spec["name"])
        if meta is None:
            continue
        result = meta.get("result") or {}
        row = {"run": spec["name"], "task": spec["settings"]["task"]}
        row.update({k: spec["settings"].get(k) for k in swept if k != "task"})
        row["seed"] = spec["settings"]["seed"]
        row.update(
            final_accuracy=result.get("final_accuracy"),
            first_perfect_iteration=result.get("first_perfect_iteration"),
            train_seconds=result.get("train_seconds"),
            status=meta.get("status"),
            diverged=meta.get("status") == "diverged",
        )
        rows.append(row)
    columns = ["run", "task"] + [k for k in swept if k != "task"] + ["seed"] + SUMMARY_RESULTS
    return pd.DataFrame(rows, columns=columns)
