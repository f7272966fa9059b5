"""Exceptions raised at fastrnn's public boundary.

Every error fastrnn raises on purpose derives from :class:`FastRNNError`, so the
command line catches one type and prints its message as one line. Bad arguments
raise :class:`InvalidArgument` (a ``ValueError``) or :class:`InvalidType` (a
``TypeError``), so plain ``except ValueError`` keeps working for library users.
"""


class FastRNNError(Exception):
    """Base of every error fastrnn raises on purpose."""


class InvalidArgument(FastRNNError, ValueError):
    """An argument has the wrong value or shape; the message names it and the fix."""


class InvalidType(FastRNNError, TypeError):
    """An argument has the wrong type or dtype; the message names it and the fix."""


class ModelFileError(FastRNNError, ValueError):
    """A model file is missing, unreadable or not a fastrnn model."""


class NumericalError(FastRNNError, FloatingPointError):
    """The loss became NaN or infinite during training."""


class OutputError(FastRNNError, OSError):
    """A run's file could not be written (a full disk, a read-only or deleted folder, no permission).

    Training stops there; the message names the file, the error and what was kept
    (the rows in the CSV, the last checkpoint, the model).
    """
