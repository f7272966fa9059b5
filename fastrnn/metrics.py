"""Metrics files: one CSV of rows per run and a JSON of its settings beside it.

The CSV is written as training goes, header first and flushed after every row
(Keras' CSVLogger habit), so a run that is stopped keeps every finished row.
pandas reads it back with no options; :func:`read_run` returns both files.
"""

import csv
import datetime
import io
import json
import os
from pathlib import Path

import numpy as np

from . import _files
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
    kind = _files.not_regular(path)
    if kind is not None:  # a device, a named pipe, a socket: never written into nor replaced
        raise InvalidArgument(f"{what} {path} is {kind}, not a regular file; fastrnn writes and replaces only regular "
                              f"files: give {option} the path of a file")
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
        #: one line saying how a resumed run's CSV that lost its end was rewritten (None: nothing to repair)
        self.repaired = None
        if append_rows is not None:
            self.repaired = _check_rows_to_append(self.csv_path, self.columns, append_rows)
        try:
            self._fh = open(self.csv_path, "a" if append_rows is not None else "w" if overwrite else "x", newline="")
        except OSError as exc:
            raise InvalidArgument(f"cannot write --csv {self.csv_path}: {exc.strerror or exc}") from None
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns)
        if append_rows is None:
            self._writer.writeheader()
        self._fh.flush()
        self.meta = dict(settings)
        if self.repaired is not None:
            self.meta["csv_repaired"] = self.repaired
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


def _rows_text(columns, rows):
    """The text MetricsWriter writes for these rows: the header, then one "\r\n"-ended line per row."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in columns})
    return buffer.getvalue()


def _check_rows_to_append(path, columns, rows):
    """Make sure a resumed run's CSV ends, byte for byte, where the saved state does, before appending to it.

    The saved state holds every row the run wrote, so the CSV must be exactly their
    text (:func:`_rows_text`). A CSV that is a beginning of that text lost its end
    (a row cut short, a line ending or whole rows missing): it is rewritten from the
    saved rows, which hold all it held, and the repair is returned as one line (None
    when the file was whole). Any other content is refused in one line, the file left
    as it is, so that no row is ever appended to a torn or foreign line.
    """
    expected = _rows_text(columns, rows)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(len(expected.encode()) + 1)
    except OSError as exc:
        raise InvalidArgument(f"cannot read the run's CSV {path} to append to it: {exc.strerror or exc}; "
                              f"give a new --csv") from None
    want = expected.encode()
    if raw == want:
        return None
    last = rows[-1]["iteration"] if rows else 0
    if want.startswith(raw):
        kept = raw.count(b"\r\n") - 1  # whole rows the file still held
        _replace_text(path, expected)
        return (f"the run's CSV {path} ended inside its rows ({len(raw)} of {len(want)} bytes, {max(kept, 0)} whole rows "
                f"of {len(rows)}); it was rewritten from the {len(rows)} rows of the saved state")
    have = raw.split(b"\r\n")
    lines = want.split(b"\r\n")
    first = next(i for i in range(len(lines)) if i >= len(have) or have[i] != lines[i])
    where = "its header" if first == 0 else f"line {first + 1}" if first < len(lines) - 1 else "the end"
    raise InvalidArgument(
        f"the run's CSV {path} does not end where the saved state does ({len(rows)} rows up to iteration {last}): "
        f"{where} differs from the saved rows; give a new --csv, which gets the earlier rows first"
    )


def _replace_text(path, text):
    """Replace the file at ``path`` by ``text`` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
        _files.replace(tmp, path, "--csv")
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, data):
    """Write JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    _files.check_replaceable(path, "the settings file")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        _files.replace(tmp, path, "the settings file")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_csv(path, frame):
    """Write a DataFrame as CSV atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    _files.check_replaceable(path, "the CSV")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        _files.replace(tmp, path, "the CSV")
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_run(csv_path):
    """A run's metrics as a pandas DataFrame and its settings as a dict ({} if no JSON).

    A run stopped before its first row (its CSV holds the header alone, or nothing)
    gives an empty frame with float columns; :func:`has_rows` tells.

    Raises InvalidArgument, naming the file, when the CSV is missing, unreadable,
    truncated in a row or lacks the metrics columns (:data:`COLUMNS`, all numbers), or
    the JSON beside it is not a JSON object with the run's ``task`` and ``status``.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidArgument(f"run file {csv_path} does not exist")
    try:
        with open(csv_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    raise InvalidArgument(f"{csv_path} is truncated: its last line has no line ending, so its last "
                                          f"row may be cut short; remove that line or train the run again")
    except OSError as exc:
        raise InvalidArgument(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    try:
        if csv_path.stat().st_size == 0:  # stopped between creating the file and writing its header
            frame = pd.DataFrame({c: [] for c in COLUMNS})
        else:
            frame = pd.read_csv(csv_path)
    except Exception as exc:
        raise InvalidArgument(f"{csv_path} is not a readable metrics CSV ({type(exc).__name__}: {_short(exc)})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: it lacks the columns {', '.join(missing)}")
    text_columns = ("loss_per_char", "bpc", "smooth_loss", "char_accuracy", "val_bpc")  # fastrnn.text's
    numeric = COLUMNS + [c for c in frame.columns if str(c).startswith(("spectral_radius", "path_grad_")) or c in text_columns]
    if len(frame) == 0:  # a run stopped before its first row (while compiling): the header alone, no numbers to check
        frame = frame.astype({column: np.float64 for column in numeric})
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


def has_rows(frame):
    """Whether a run's metrics (:func:`read_run`'s frame) hold any row; a run stopped while
    compiling or loading the kernels has none."""
    return len(frame) > 0


def no_rows_note(paths_and_metas):
    """The runs that have no rows, listed with their status: ``[(path, meta), ...]`` ->
    'a.csv (status interrupted), b.csv (status running)'."""
    shown = ", ".join(f"{path} (status {meta.get('status', 'unknown') if meta else 'unknown: no settings file'})"
                      for path, meta in paths_and_metas[:10])
    return shown + (f" and {len(paths_and_metas) - 10} more" if len(paths_and_metas) > 10 else "")


#: How the commands introduce :func:`no_rows_note`'s list.
NO_ROWS = "interrupted with no rows (stopped, or still compiling, before its first row was logged)"


def _short(value, limit=200):
    """str(value) on one line, cut to ``limit`` characters (file contents can be anything)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
