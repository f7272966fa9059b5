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
        #: one line saying how a resumed run's CSV that lost its end was repaired (None: nothing to repair)
        self.repaired = None
        if append_rows is not None:
            keep, self.cut, missing, self.repaired = _check_rows_to_append(self.csv_path, self.columns, append_rows, cut)
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
                os.ftruncate(self._fd, keep)  # the lines after the saved state's rows (or a torn end) go
                os.lseek(self._fd, keep, os.SEEK_SET)
                self._good, self.rows = keep, len(append_rows) - len(missing)
                if keep == 0:  # not even the header was whole
                    self._put(self.columns)
                for row in missing:
                    self.write(row)
            else:
                self._put(self.columns)
            self.meta = dict(settings)
            if self.repaired is not None:
                self.meta["csv_repaired"] = self.repaired
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


def _rows_text(columns, rows):
    """The text MetricsWriter writes for these rows: the header, then one "\r\n"-ended line per row."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in columns})
    return buffer.getvalue()


def _check_rows_to_append(path, columns, rows, cut=False):
    """Check a resumed run's CSV against the saved state's rows, byte for byte, before appending to it.

    Returns ``(offset to keep, lines cut, rows missing, repair note)``:

    - the CSV is exactly the text of the state's rows (:func:`_rows_text`): kept whole;
    - with ``cut`` (a checkpoint), it may hold further lines after them (rows written
      after the checkpoint, the last one perhaps incomplete): they are cut off and counted;
    - it is a beginning of that text (it lost its end: a row cut short, a line ending,
      whole rows, or a row that could not be written): it is cut back to its last whole
      line and the missing rows, which the state holds, are written again; the note says so;
    - it is that text with other line endings (re-saved by an editor): it is rewritten
      from the saved rows; the note says so.

    Any other content is refused in one line, the file left as it is, so that no row
    is ever appended to a torn or foreign line.
    """
    want = _rows_text(columns, rows).encode()
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the run's CSV {path} to append to it: {exc.strerror or exc}; "
                              f"give a new --csv") from None
    if data == want:
        return len(want), 0, [], None
    if cut and data.startswith(want):
        return len(want), len(data[len(want):].splitlines()), [], None
    if want.startswith(data):
        keep = data.rfind(b"\r\n") + 2 if b"\r\n" in data else 0  # the end of the last whole line (0: not even the header)
        whole = max(data[:keep].count(b"\r\n") - 1, 0)  # whole rows the file still holds
        note = None
        if keep < len(data) or whole < len(rows):
            note = (f"the run's CSV {path} ended inside its rows ({len(data)} of {len(want)} bytes, {whole} whole rows "
                    f"of {len(rows)}); it was rewritten from the {len(rows)} rows of the saved state")
        return keep, 0, rows[whole:], note
    last = rows[-1]["iteration"] if rows else 0
    unix = want.replace(b"\r\n", b"\n")
    if data.replace(b"\r\n", b"\n").rstrip(b"\n") == unix.rstrip(b"\n"):
        _replace_text(path, want.decode())
        return len(want), 0, [], (f"the run's CSV {path} held its {len(rows)} rows with other line endings; it was "
                                  f"rewritten from the rows of the saved state")
    have = data.replace(b"\r\n", b"\n").split(b"\n")
    lines = unix.split(b"\n")
    first = next((i for i in range(len(lines)) if i >= len(have) or have[i] != lines[i]), len(lines) - 1)
    where = "its header" if first == 0 else f"line {first + 1}" if first < len(lines) - 1 else "what follows the last row"
    raise InvalidArgument(
        f"the run's CSV {path} does not end where the saved state does ({len(rows)} rows up to iteration {last}): "
        f"{where} differs from the saved rows; give a new --csv, which gets the earlier rows first"
    )


def _replace_text(path, text):
    """Replace the file at ``path`` by ``text`` whole (a temporary file beside it, then a rename)."""
    _files.replace_file(path, lambda fh: fh.write(text.encode()), what="--csv")


def write_json(path, data):
    """Write JSON atomically (a temporary file, then a rename; none is left behind when that fails).

    On a full disk, where even the small temporary file finds no room, a file that
    exists is rewritten in place if the blocks it holds take the new text (so that
    a run's JSON can still say how the run ended).
    """
    path = Path(path)
    _files.check_replaceable(path, "the settings file")
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        _files.replace(tmp, path, "the settings file")
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
    _files.replace_file(path, lambda fh: frame.to_csv(fh, index=False), what="the CSV")
    return path


#: Columns a run may leave unmeasured, empty (NaN) in every row: the online rules' driver measures no accuracy or
#: gradient norm (fastrnn._online_run). A NaN among numbers still marks a corrupt row.
UNMEASURED = ("error", "accuracy", "digit_accuracy", "grad_norm")


def read_run(csv_path):
    """A run's metrics as a pandas DataFrame and its settings as a dict ({} if no JSON).

    A run stopped before its first row (its CSV holds the header alone, or nothing)
    gives an empty frame with float columns; :func:`has_rows` tells.

    Raises InvalidArgument, naming the file, when the CSV is missing, unreadable,
    truncated in a row, lacks the metrics columns (:data:`COLUMNS`) or has a column that is
    not all finite numbers (every column of a row is one: the tasks' and fits' own too), or
    the JSON beside it is not a JSON object with the run's ``task`` and ``status``.

    Examples
    --------
    >>> import fastrnn
    >>> _ = fastrnn.train(task="binary", iters=500, seed=0, csv="run.csv")
    >>> rows, meta = fastrnn.read_run("run.csv")
    >>> len(rows), meta["task"], meta["status"]
    (5, 'binary', 'completed')
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidArgument(f"run file {csv_path} does not exist")
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    if raw and not raw.endswith(b"\n"):  # rows are written whole, each with its line ending
        row = raw.count(b"\n")  # the header is line 1, row r is line r + 1
        what = f"row {row}" if row else "its header"
        raise InvalidArgument(f"{csv_path} is truncated: {what} has no line ending, so it may be cut short; remove "
                              f"that line or train the run again")
    try:
        if not raw:  # stopped between creating the file and writing its header
            frame = pd.DataFrame({c: [] for c in COLUMNS})
        else:
            frame = pd.read_csv(io.BytesIO(raw))  # the bytes checked above, not a second read of the file
    except Exception as exc:
        raise InvalidArgument(f"{csv_path} is not a readable metrics CSV ({type(exc).__name__}: {_short(exc)})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: it lacks the columns {', '.join(missing)}")
    # every column of a metrics row is a number: the tasks' own (text: bpc, ...), a fit's (epoch, val_loss, ...), spectra
    numeric = COLUMNS + [c for c in frame.columns if c not in COLUMNS]
    if len(frame) == 0:  # a run stopped before its first row (while compiling): the header alone, no numbers to check
        frame = frame.astype({column: np.float64 for column in numeric})
    for column in numeric:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise InvalidArgument(f"{csv_path} is not a fastrnn metrics CSV: its column {column} holds text, not numbers")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if column in UNMEASURED and values.isna().all():  # not measured by this run (an online rule's): no number to check
            continue
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
