"""``fastrnn report``: every run in a folder, read back with pandas and grouped by setting."""

from pathlib import Path

import numpy as np
import pandas as pd

from . import settings
from .exceptions import InvalidArgument
from .metrics import json_path_for, read_run

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


def collect(folder):
    """One row per run: its settings, final accuracy, the task's held-out scores (``test_*`` columns), first-perfect
    iteration, time, status."""
    rows = []
    for path in run_csvs(folder):
        frame, meta = read_run(path)
        if not meta:
            raise InvalidArgument(f"{path} has no settings file {json_path_for(path).name} beside it; a report groups runs by their settings")
        result = meta.get("result") or {}
        status = meta.get("status", "unknown")
        row = {k: meta.get(k) for k in SETTINGS}
        row.update(
            run=str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path),
            final_accuracy=float(frame["accuracy"].iloc[-1]) if len(frame) else np.nan,
            first_perfect_iteration=result.get("first_perfect_iteration"),
            train_seconds=result.get("train_seconds"),
            status=status,
            diverged=status == "diverged",
        )
        # a task's own held-out scores (the long-range tasks' test_mse, ...): their last values
        row.update({c: float(frame[c].iloc[-1]) for c in frame.columns if c.startswith("test_") and len(frame)})
        rows.append(row)
    return pd.DataFrame(rows)


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
    scores = {f"{c}_mean": (c, "mean") for c in runs.columns if c.startswith("test_")}
    out = grouped.agg(
        runs=("run", "count"),
        final_accuracy_mean=("final_accuracy", "mean"),
        final_accuracy_min=("final_accuracy", "min"),
        **scores,
        first_perfect_median=("first_perfect_iteration", lambda s: pd.to_numeric(s, errors="coerce").median()),
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
