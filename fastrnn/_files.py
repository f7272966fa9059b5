"""Replacing files: only regular files are ever replaced.

Every file fastrnn writes whole (a model, a settings JSON, a plot, a CSV table) is
written under a temporary name beside it and renamed over the target
(``os.replace``). A rename does not write into the target: it puts a new regular
file where the target was, so a device node (``/dev/null``), a named pipe or a
socket at that path would be replaced by a file. :func:`replace` refuses any
existing target that is not a regular file (a symbolic link counts as what it
points to), in one line naming it.
"""

import os
import stat

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
