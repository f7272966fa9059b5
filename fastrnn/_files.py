"""Files written whole or not at all, and only over regular files.

Every file fastrnn writes whole (a model, a checkpoint, a settings JSON, a plot, a
CSV table) is written under a temporary name beside it and renamed over the
target (``os.replace``). The temporary file is named ``.<name>.<pid>.<random>.tmp``,
so that a later run can tell the leftovers of a killed process
(:func:`remove_stale`) from those of a live one.

A rename does not write into the target: it puts a new regular file where the
target was, so a device node (``/dev/null``), a named pipe or a socket at that path
would be replaced by a file. :func:`replace` and :func:`replace_file` refuse any
existing target that is not a regular file (a symbolic link counts as what it
points to), in one line naming it.

``FASTRNN_CHECKPOINT_PAUSE=K:STAGE`` in the environment makes the K-th durable
write of the process (a checkpoint) stop at STAGE, one of ``written`` (the
temporary file is complete but not synced), ``synced`` (synced, not yet renamed)
and ``renamed`` (in place, its folder not yet synced): it prints
``fastrnn: paused at STAGE writing PATH`` on stderr and waits for a signal. The
test suite kills the process there, so that a kill during a checkpoint write is
tried every time rather than by luck.
"""

import contextlib
import errno
import os
import stat
import sys
import time
import uuid

from .exceptions import InvalidArgument

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def not_regular(path):
    """What ``path`` is when it exists and is not a regular file ("a folder", "a named pipe (FIFO)", ...), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, a dangling link, a NUL in the name: nothing to replace here
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def check_replaceable(path, what, fix="give the path of a file"):
    """Refuse ``path`` if it exists and is not a regular file; ``what`` names it ("--save", "model file"),
    ``fix`` says what to do."""
    kind = not_regular(path)
    if kind is not None:
        raise InvalidArgument(f"{what} {os.fspath(path)} is {kind}, not a regular file; fastrnn writes and replaces only "
                              f"regular files: {fix}")


def replace(tmp, path, what):
    """``os.replace(tmp, path)`` where ``path`` is absent or a regular file (:func:`check_replaceable`)."""
    check_replaceable(path, what)
    os.replace(tmp, path)


STAGES = ("written", "synced", "renamed")

_durable_writes = 0


def _pause_at(stage, path):
    spec = os.environ.get("FASTRNN_CHECKPOINT_PAUSE")
    if not spec:
        return
    count, _, where = spec.partition(":")
    if where == stage and count.isdigit() and int(count) == _durable_writes:
        print(f"fastrnn: paused at {stage} writing {path}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def temporary_name(path):
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def replace_file(path, fill, durable=False, what="the file"):
    """Write ``path`` with ``fill(binary file)`` under a temporary name in its folder, then rename it into place.

    ``path`` holds the old file or the whole new one, never a part; the temporary
    file is removed when anything fails. ``durable``: fsync the file before the
    rename and the folder after it, so that this holds after a power cut too.
    """
    global _durable_writes
    path = os.fspath(path)
    check_replaceable(path, what)
    tmp = temporary_name(path)
    if durable:
        _durable_writes += 1
    try:
        with open(tmp, "xb") as fh:
            fill(fh)
            if durable:
                fh.flush()
                _pause_at("written", tmp)
                os.fsync(fh.fileno())
                _pause_at("synced", tmp)
        replace(tmp, path, what)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        _pause_at("renamed", path)
        sync_folder(os.path.dirname(path))
    return path


def sync_folder(folder):
    """fsync a folder (its entries: a rename into it); a system that cannot is passed over."""
    fd = os.open(folder or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def remove_stale(path):
    """Remove the temporary files of ``path`` left by processes that no longer run; return how many."""
    folder, name = os.path.split(os.fspath(path))
    prefix = f".{name}."
    removed = 0
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return 0
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, entry))
            removed += 1
    return removed


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True
