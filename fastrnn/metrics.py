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

import numpy as np

from .exceptions import InvalidArgument

#: The metrics columns (docs/math.md, section 8, defines accuracy), in order.
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
    """Refuse to replace an existing file unless ``overwrite``; check the folder can be made.

    A path that names a folder (an existing one, or one written with a trailing
    separator, ``runs/``) is refused: ``Path`` would drop the separator and write a
    file of that name.
    """
    given = os.fspath(path)
    path = Path(path)
    if path.is_dir() or given.endswith(tuple(s for s in (os.sep, os.altsep) if s)):
        raise InvalidArgument(f"{option} {given} names a folder; give the path of a file (in it, say)")
    if path.exists() and not overwrite:
        raise InvalidArgument(f"{what} {path} already exists; choose another path or pass --overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"cannot create the folder for {option} {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise InvalidArgument(f"cannot write {option} {path}: the folder {path.parent} is not writable")
    return path


def _same_file_key(path):
    try:
        return os.path.normcase(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name
        return os.path.normcase(os.path.abspath(path))


def check_output_files(csv=None, save=None):
    """Refuse a run whose output files overlap, before anything is written.

    A run writes up to three files: the metrics CSV, the settings JSON beside it
    (same stem, ``.json``) and the model (``save``). No two may be one file, or one
    write destroys the other (``--csv run.json`` would replace its own rows with the
    JSON). Paths are compared resolved: relative or absolute, ``./x`` or ``x``,
    symbolic links followed.
    """
    if csv is not None and _same_file_key(csv) == _same_file_key(json_path_for(csv)):
        raise InvalidArgument(
            f"--csv {csv} is the path of the settings JSON that goes beside the metrics CSV; give the CSV a name ending in .csv"
        )
    files = [("--csv", csv), (f"the settings JSON {json_path_for(csv)} beside --csv" if csv is not None else None,
                              None if csv is None else json_path_for(csv))]
    if save is not None:
        for option, path in files:
            if path is not None and _same_file_key(path) == _same_file_key(save):
                raise InvalidArgument(f"--save {save} is the same file as {option}{' ' + str(path) if option == '--csv' else ''}; "
                                      f"give the model another path")


def check_distinct_files(**paths):
    """Refuse two of the given output files being one file (``{option: path}``; None is skipped)."""
    seen = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = _same_file_key(path)
        if key in seen:
            raise InvalidArgument(f"{seen[key][0]} {seen[key][1]} and {option} {path} are the same file; give them different paths")
        seen[key] = (option, path)


class MetricsWriter:
    """Writes the metrics CSV row by row, flushing each, and the JSON beside it."""

    def __init__(self, csv_path, settings, overwrite=False, columns=COLUMNS, append_rows=None):
        """``append_rows``: continue a resumed run's CSV, which must hold exactly these rows (its columns the same)."""
        self.csv_path = check_new_file(csv_path, "metrics file", overwrite, "--csv")
        self.json_path = check_new_file(json_path_for(self.csv_path), "settings file", overwrite, "--csv")
        self.columns = list(columns)
        if append_rows is not None:
            _check_rows_to_append(self.csv_path, self.columns, append_rows)
        try:
            self._fh = open(self.csv_path, "a" if append_rows is not None else "w" if overwrite else "x", newline="")
        except OSError as exc:
            raise InvalidArgument(f"cannot write --csv {self.csv_path}: {exc.strerror or exc}") from None
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns)
        if append_rows is None:
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


def _check_rows_to_append(path, columns, rows):
    """Refuse to append to a run's CSV that does not end where the saved state does."""
    try:
        with open(path, newline="") as fh:
            table = list(csv.reader(fh))
    except OSError as exc:
        raise InvalidArgument(f"cannot read the run's CSV {path} to append to it: {exc.strerror or exc}; "
                              f"give a new --csv") from None
    last = rows[-1]["iteration"] if rows else 0
    got = table[-1][0] if len(table) > 1 and table[-1] else "none"
    if not table or table[0] != list(columns) or len(table) - 1 != len(rows) or (rows and got != str(last)):
        raise InvalidArgument(
            f"the run's CSV {path} does not end where the saved state does ({len(table) - 1 if table else 0} rows, last "
            f"iteration {got}; the state has {len(rows)} rows up to iteration {last}); give a new --csv, which gets "
            f"the earlier rows first"
        )


def write_json(path, data):
    """Write JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def write_csv(path, frame):
    """Write a DataFrame as CSV atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_run(csv_path):
    """A run's metrics as a pandas DataFrame and its settings as a dict ({} if no JSON).

    Raises InvalidArgument, naming the file, when the CSV is missing, unreadable,
    truncated in a row or lacks the metrics columns (:data:`COLUMNS`, all numbers), or
    the JSON beside it is not a JSON object with the run's ``task`` and ``status``.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidArgument(f"run file {csv_path} does not exist")
    try:
        frame = pd.read_csv(csv_path)
    except Exception as exc:
        raise InvalidArgument(f"{csv_path} is not a readable metrics CSV ({type(exc).__name__}: {_short(exc)})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: it lacks the columns {', '.join(missing)}")
    text_columns = ("loss_per_char", "bpc", "smooth_loss", "char_accuracy", "val_bpc")  # fastrnn.text's
    numeric = COLUMNS + [c for c in frame.columns if str(c).startswith(("spectral_radius", "path_grad_")) or c in text_columns]
    for column in numeric:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: its column {column} holds text, not numbers")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise InvalidArgument(f"{csv_path} is truncated or corrupt: row {row} has no finite number in column {column}")
    meta_path = json_path_for(csv_path)
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))  # an editor may have added a byte-order mark
        except (ValueError, RecursionError) as exc:
            raise InvalidArgument(f"{meta_path} is not valid JSON ({_short(exc)})") from None
        except OSError as exc:
            raise InvalidArgument(f"cannot read {meta_path}: {exc.strerror or exc}") from None
        if not isinstance(meta, dict):
            raise InvalidArgument(f"{meta_path} is not a fastrnn run file: it holds a JSON {type(meta).__name__}, not an object")
        lacking = [k for k in ("task", "status") if k not in meta]
        if lacking:
            raise InvalidArgument(f"{meta_path} is not a fastrnn run file: it lacks the fields {', '.join(lacking)}")
        if not isinstance(meta["status"], str) or not isinstance(meta.get("result", {}), (dict, type(None))):
            raise InvalidArgument(f"{meta_path} is corrupt: its status is not text or its result not an object")
    return frame, meta


def _short(value, limit=200):
    """str(value) on one line, cut to ``limit`` characters (file contents can be anything)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
