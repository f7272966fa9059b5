"""Metrics files: one CSV of rows per run and a JSON of its settings beside it.

The CSV is written as training goes, header first and flushed after every row
(Keras' CSVLogger habit), so a run that is stopped keeps every finished row.
pandas reads it back with no options; :func:`read_run` returns both files.
"""

import contextlib
import csv
import datetime
import errno
import io
import json
import os
import time
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
    """Writes the metrics CSV row by row, each row one ``write`` to the file, and the JSON beside it.

    A row is never left half-written: the writer keeps the offset of the last
    complete line, and when a write fails (a full disk, a read-only or deleted
    folder) it cuts the file back to that offset before the error goes on.
    ``rows`` counts the complete rows in the file.
    """

    def __init__(self, csv_path, settings, overwrite=False, columns=COLUMNS, append_rows=None, cut=False):
        """``append_rows``: continue a resumed run's CSV, which must hold these rows (its columns the same), or
        the first of them (a row that could not be written: the others are written first); with ``cut`` it may
        hold more (rows written after a checkpoint): they are cut off, and ``cut`` says how many."""
        self.csv_path = check_new_file(csv_path, "metrics file", overwrite, "--csv")
        self.json_path = check_new_file(json_path_for(self.csv_path), "settings file", overwrite, "--csv")
        self.columns = list(columns)
        self.cut, keep, missing = 0, None, []
        if append_rows is not None:
            keep, self.cut, missing = _check_rows_to_append(self.csv_path, self.columns, append_rows, cut)
        flags = os.O_WRONLY | os.O_CREAT | (0 if append_rows is not None else os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd = os.open(self.csv_path, flags | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as exc:
            raise InvalidArgument(f"cannot write --csv {self.csv_path}: {exc.strerror or exc}") from None
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf)  # csv.DictWriter's format: minimal quoting, "\r\n" line ends
        self._good, self.rows, self._next_check, self._gone = 0, 0, 0.0, False
        try:
            if append_rows is not None:
                os.ftruncate(self._fd, keep)  # the rows after the saved state's (none without cut) go
                os.lseek(self._fd, keep, os.SEEK_SET)
                self._good, self.rows = keep, len(append_rows) - len(missing)
                for row in missing:
                    self.write(row)
            else:
                self._put(self.columns)
            self.meta = dict(settings)
            self.write_json(status="running")
        except OSError:
            os.close(self._fd)
            self._fd = None
            if append_rows is None:  # nothing of the run is in it: no stray file
                with contextlib.suppress(OSError):
                    os.remove(self.csv_path)
            raise

    def _put(self, values):
        """Write one line; on failure cut the file back to its last complete line, then raise."""
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        self._csv.writerow(values)
        data = memoryview(buf.getvalue().encode())
        size = len(data)
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._good)
                os.lseek(self._fd, self._good, os.SEEK_SET)
            if exc.filename is None:
                exc.filename = str(self.csv_path)
            raise
        self._good += size

    def write(self, row):
        """Append a row; OSError (naming the CSV) if it cannot be written or the file was deleted."""
        self._put([row[k] for k in self.columns])
        self.rows += 1
        now = time.monotonic()
        if now >= self._next_check:  # a file deleted under the run takes writes without a word: look, once a second
            self._next_check = now + 1.0
            if self.deleted():
                raise FileNotFoundError(errno.ENOENT, "the file was deleted during the run", str(self.csv_path))

    def deleted(self):
        """Whether the CSV was deleted (or its folder) while open (after :meth:`close`: when it was closed)."""
        if self._fd is None:
            return self._gone
        try:
            return os.fstat(self._fd).st_nlink == 0
        except OSError:
            return True

    def write_json(self, **extra):
        """Rewrite the JSON with ``extra`` added; an OSError names the JSON (not its temporary file)."""
        self.meta.update(extra)
        try:
            write_json(self.json_path, self.meta)
        except OSError as exc:
            exc.filename = str(self.json_path)
            raise

    def close(self):
        if self._fd is not None:
            self._gone = self.deleted()
            os.close(self._fd)
            self._fd = None


def _check_rows_to_append(path, columns, rows, cut=False):
    """Refuse to append to a run's CSV that does not end where the saved state does; return (offset to keep,
    rows cut, rows missing).

    With ``cut`` the CSV may hold further lines after the state's rows (written after a
    checkpoint, the last one perhaps incomplete): they are counted and cut off. A CSV
    that holds the first of the state's rows, whole (the next one could not be
    written), is continued with the missing ones.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the run's CSV {path} to append to it: {exc.strerror or exc}; "
                              f"give a new --csv") from None
    lines = data.splitlines(keepends=True)
    complete = [line for line in lines if line.endswith(b"\n")]
    table = list(csv.reader(line.decode("utf-8", "replace") for line in complete))
    want = [str(r["iteration"]) for r in rows]
    got = [line[0] if line else "" for line in table[1 : len(rows) + 1]]
    extra = len(lines) - 1 - len(rows)
    missing = []
    if extra < 0 and len(complete) == len(lines) and got == want[: len(got)]:
        missing, want, extra = rows[len(got):], want[: len(got)], 0
    if (not table or table[0] != list(columns) or got != want or extra < 0 or (extra and not cut)
            or len(complete) < len(lines) and not cut):
        have = len(table) - 1 if table else 0
        last = table[-1][0] if have > 0 and table[-1] else "none"
        raise InvalidArgument(
            f"the run's CSV {path} does not end where the saved state does ({have} rows, last "
            f"iteration {last}; the state has {len(rows)} rows up to iteration {rows[-1]['iteration'] if rows else 0}); "
            f"give a new --csv, which gets the earlier rows first"
        )
    return sum(len(line) for line in lines[: len(rows) - len(missing) + 1]), extra, missing


def write_json(path, data):
    """Write JSON atomically (a temporary file, then a rename; none is left behind when that fails).

    On a full disk, where even the small temporary file finds no room, a file that
    exists is rewritten in place if the blocks it holds take the new text (so that
    a run's JSON can still say how the run ended).
    """
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            if _rewrite_in_place(path, text.encode()):
                return
        raise


def _rewrite_in_place(path, data):
    """Overwrite ``path`` with ``data`` without new blocks; False where it holds too few (or cannot be opened)."""
    try:
        if os.stat(path).st_blocks * 512 < len(data):
            return False
        fd = os.open(path, os.O_WRONLY)
    except (OSError, AttributeError):
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return True


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
            meta = json.loads(meta_path.read_text())
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
