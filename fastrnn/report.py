"""``fastrnn report``: every run in a folder, read back with pandas and grouped by setting."""

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import settings
from .exceptions import InvalidArgument
from .metrics import json_path_for, read_run
from .tasks import LOWER_IS_BETTER, has_goal, headline

#: Settings a report can group by (the JSON keys of a run): every setting of fastrnn.settings.
SETTINGS = settings.names()


def run_csvs(folder):
    """The metrics CSVs in a folder (a sweep's summary.csv is not a run)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidArgument(f"{folder} is not a folder; give the folder that holds the runs' CSV files")
    paths = sorted(p for p in folder.rglob("*.csv") if p.name != "summary.csv")
    if not paths:
        raise InvalidArgument(f"{folder} holds no run CSV files; train with --csv {folder}/NAME.csv or sweep with --out {folder}")
    return paths


def is_sweep_summary(path):
    """Whether a CSV is a sweep's summary.csv (one row per run, first column ``run``), not a run's metrics."""
    path = Path(path)
    if path.name != "summary.csv" or not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.split(",")[0].strip() == "run"


def plot_inputs(paths):
    """The run CSVs ``fastrnn plot PATH...`` draws, and the sweep summaries it skipped.

    A folder stands for the run CSVs in it (:func:`run_csvs`: one without any is
    refused); a sweep's summary.csv given by name (``D/*.csv``) is skipped, and
    refused when it is all there is. Each file is listed once.
    """
    runs, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            runs += run_csvs(path)
        elif is_sweep_summary(path):
            skipped.append(path)
        else:
            runs.append(path)
    if not runs and skipped:
        raise InvalidArgument(f"{skipped[0]} is a sweep's summary (a row per run), not a run's metrics; give the runs' "
                              f"CSV files or their folder ({skipped[0].parent})")
    unique = {}
    for path in runs:
        unique.setdefault(os.path.abspath(path), path)
    return list(unique.values()), skipped


def collect(folder):
    """One row per run: its settings, the last row's headline metrics (``final_<name>``, the task's own:
    :attr:`fastrnn.tasks.Task.headline`), first-perfect iteration, time, status and its number of
    metrics rows (``rows``: 0 for a run stopped before its first row).

    A run has a value only for its own task's headline metrics (a text run has
    ``final_bpc``, not ``final_accuracy``), NaN for the others.
    """
    rows = []
    for path in run_csvs(folder):
        frame, meta = read_run(path)
        if not meta:
            raise InvalidArgument(f"{path} has no settings file {json_path_for(path).name} beside it; a report groups runs by their settings")
        result = meta.get("result") or {}
        status = meta.get("status", "unknown")
        row = {k: meta.get(k) for k in SETTINGS}
        row["run"] = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        for m in headline(meta.get("task")):
            if m in frame.columns:
                row[f"final_{m}"] = float(frame[m].iloc[-1]) if len(frame) else np.nan
            elif isinstance(result.get(f"final_{m}"), (int, float)):  # scored once at the end (a stream's test_loss)
                row[f"final_{m}"] = float(result[f"final_{m}"])
        row.update(
            first_perfect_iteration=result.get("first_perfect_iteration"),
            train_seconds=result.get("train_seconds"),
            status=status,
            diverged=status == "diverged",
            rows=len(frame),
        )
        # a task's own held-out scores (the long-range tasks' test_mse, ...): their last values
        row.update({c: float(frame[c].iloc[-1]) for c in frame.columns if c.startswith("test_") and len(frame)})
        rows.append(row)
    runs = pd.DataFrame(rows)
    finals = [c for c in runs.columns if c.startswith("final_")]
    rest = [c for c in runs.columns if c not in finals and c not in SETTINGS and c != "run"]
    return runs[[*SETTINGS, "run", *finals, *rest]]  # the metrics in the order the runs name them


def split_empty(runs):
    """``(runs with rows, runs without)``: a run stopped before its first row has nothing to summarize."""
    empty = runs["rows"] == 0 if len(runs) else np.zeros(0, dtype=bool)
    return runs[~empty].reset_index(drop=True), runs[empty].reset_index(drop=True)


def summarize(runs, by=None):
    """Group runs by the ``by`` settings (default: every setting that varies, seed aside)."""
    if by is None:
        by = [k for k in SETTINGS if k != "seed" and runs[k].astype(str).nunique() > 1] or ["task"]
    unknown = [k for k in by if k not in SETTINGS]
    if unknown:
        raise InvalidArgument(f"--by {','.join(unknown)} is not a run setting; choose from {', '.join(SETTINGS)}")
    keyed = runs.copy()
    for k in by:
        keyed[k] = keyed[k].astype(str)
    grouped = keyed.groupby(by, sort=True, dropna=False)
    scores = {}
    for column in [c for c in runs.columns if c.startswith("final_")]:  # each headline metric: mean and worst
        worst = "max" if column[len("final_"):] in LOWER_IS_BETTER else "min"
        scores[f"{column}_mean"] = (column, "mean")
        scores[f"{column}_{worst}"] = (column, worst)
    goal = {}
    if "task" not in runs or any(has_goal(t) for t in runs["task"]):  # runs that can reach accuracy 1.0
        goal["first_perfect_median"] = ("first_perfect_iteration", lambda s: pd.to_numeric(s, errors="coerce").median())
    out = grouped.agg(
        runs=("run", "count"),
        **scores,
        **goal,
        train_seconds_median=("train_seconds", lambda s: pd.to_numeric(s, errors="coerce").median()),
        diverged=("diverged", "sum"),
    ).reset_index()
    # the keys were grouped as text (None and numbers mix); order them as numbers where they all are
    out = out.sort_values(by, key=_as_numbers_if_possible, kind="stable")
    return out.reset_index(drop=True)


def _as_numbers_if_possible(column):
    numbers = pd.to_numeric(column, errors="coerce")
    return numbers if numbers.notna().all() else column


def to_markdown(frame):
    """A GitHub markdown table (no extra dependency)."""
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)
