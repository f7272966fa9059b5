"""Metrics files: one CSV of rows per run and a JSON of its settings beside it.

The CSV is written as training goes, header first and flushed after every row
(Keras' CSVLogger habit), so a run that is stopped keeps every finished row.
pandas reads it back with no options; :func:`read_run` returns both files.
"""

import csv
import datetime
import json
import os
from pathlib import Path

from .exceptions import InvalidArgument

#: SPEC.md's columns, in order.
COLUMNS = ["iteration", "samples", "loss", "error", "accuracy", "digit_accuracy", "grad_norm", "learning_rate", "elapsed_s"]


def json_path_for(csv_path):
    """The settings file that belongs to a metrics CSV: same stem, ``.json``."""
    return Path(csv_path).with_suffix(".json")


def default_csv_path(task, directory="runs"):
    """``runs/<task>-<timestamp>.csv``, with a counter if that name is taken."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(directory) / f"{task}-{stamp}"
    path = base.with_suffix(".csv")
    n = 1
    while path.exists() or json_path_for(path).exists():
        path = Path(f"{base}-{n}.csv")
        n += 1
    return path


def check_new_file(path, what, overwrite, option):
    """Refuse to replace an existing file unless ``overwrite``; check the folder can be made."""
    path = Path(path)
    if path.is_dir():
        raise InvalidArgument(f"{option} {path} is a folder; give a file path")
    if path.exists() and not overwrite:
        raise InvalidArgument(f"{what} {path} already exists; choose another path or pass --overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"cannot create the folder for {option} {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise InvalidArgument(f"cannot write {option} {path}: the folder {path.parent} is not writable")
    return path


class MetricsWriter:
    """Writes the metrics CSV row by row, flushing each, and the JSON beside it."""

    def __init__(self, csv_path, settings, overwrite=False, columns=COLUMNS):
        self.csv_path = check_new_file(csv_path, "metrics file", overwrite, "--csv")
        self.json_path = check_new_file(json_path_for(self.csv_path), "settings file", overwrite, "--csv")
        try:
            self._fh = open(self.csv_path, "w" if overwrite else "x", newline="")
        except OSError as exc:
            raise InvalidArgument(f"cannot write --csv {self.csv_path}: {exc.strerror or exc}") from None
        self.columns = list(columns)
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns)
        self._writer.writeheader()
        self._fh.flush()
        self.meta = dict(settings)
        self.write_json(status="running")

    def write(self, row):
        self._writer.writerow({k: row[k] for k in self.columns})
        self._fh.flush()

    def write_json(self, **extra):
        self.meta.update(extra)
        write_json(self.json_path, self.meta)

    def close(self):
        if not self._fh.closed:
            self._fh.close()


def write_json(path, data):
    """Write JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def read_run(csv_path):
    """A run's metrics as a pandas DataFrame and its settings as a dict ({} if no JSON).

    Raises InvalidArgument, naming the file, when the CSV is missing, unreadable or
    lacks SPEC.md's columns, or the JSON beside it is not valid JSON.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidArgument(f"run file {csv_path} does not exist")
    try:
        frame = pd.read_csv(csv_path)
    except Exception as exc:
        raise InvalidArgument(f"{csv_path} is not a readable metrics CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: it lacks the columns {', '.join(missing)}")
    meta_path = json_path_for(csv_path)
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise InvalidArgument(f"{meta_path} is not valid JSON ({exc})") from None
    return frame, meta
