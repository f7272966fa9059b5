"""Validation at the public boundary.

Each check names the argument, says what it got and what it needs, and raises
:class:`~fastrnn.exceptions.InvalidArgument` (a ``ValueError``) or
:class:`~fastrnn.exceptions.InvalidType` (a ``TypeError``). Kernels never check:
everything that reaches them has passed through here.
"""

import math
import numbers
import os

import numpy as np
from numba import njit

from .config import JIT
from .exceptions import InvalidArgument, InvalidType


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(name, value, minimum=None):
    """Return ``value`` as an int, refusing bools, floats and numbers below ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name} must be an integer, got {_describe(value)} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value}")
    return value


def check_float(name, value, minimum=None, positive=False):
    """Return ``value`` as a finite float (``positive``: strictly above 0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{name} must be a real number, got {_describe(value)} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise InvalidArgument(f"{name} must be positive, got {value}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise InvalidArgument(f"{name} must be one of {options}, got {_describe(value)}")
    return value


def check_optional_int(name, value, minimum=None):
    return None if value is None else check_int(name, value, minimum)


# ------------------------------------------------------------- memory requests

#: Used where the platform does not report its physical memory (128 GiB).
FALLBACK_MEMORY = 128 * 2**30


def memory_limit():
    """Bytes of physical memory on this machine: the most any one request may ask for.

    A request above it cannot succeed (it would fail in numpy with a MemoryError,
    or swap the machine to a halt), so it is refused before anything is allocated.
    """
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY
    return pages * size if pages > 0 and size > 0 else FALLBACK_MEMORY


def format_bytes(n):
    """1536 -> '1.5 KiB'."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024


def check_memory(what, nbytes, fix):
    """Refuse a request of ``nbytes`` (an int, exact or a lower bound) above :func:`memory_limit`.

    ``what`` names the request ("a model with n_hidden=10000000"), ``fix`` says what to change.
    """
    limit = memory_limit()
    if nbytes > limit:
        raise InvalidArgument(
            f"{what} would need at least {format_bytes(nbytes)} of memory, more than this machine's "
            f"{format_bytes(limit)}; {fix}"
        )


def model_bytes(n_in, n_hidden, n_out, layers, itemsize, cell="rnn"):
    """Bytes of one parameter vector of a stacked RNN of ``cell`` (exact, in Python integers: no overflow).

    Counted with the kernels' own layout formula (:func:`fastrnn._kernels.count_formula`),
    with the cell's G*H-wide gate matrices and its extra vectors (the GRU's bn).
    """
    from . import cells
    from ._kernels import count_formula

    mod = cells.module(cell)
    return count_formula(n_in, n_hidden, n_out, layers, mod.G, mod.EXTRA) * itemsize


def as_float_array(name, value, dtype, ndim, shape=None, what="", check_finite=True):
    """Convert ``value`` to a C-contiguous ``dtype`` array after checking it.

    ``shape`` is a tuple whose ``None`` entries are free; ``what`` names the axes
    in error messages, e.g. ``"(batch, time, n_in)"``.
    """
    if value is None:
        raise InvalidType(f"{name} must be an array of shape {what}, got None")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InvalidArgument(f"{name} could not be read as an array of shape {what}: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InvalidType(
            f"{name} has dtype {arr.dtype}; it needs real numbers (use .astype(np.{np.dtype(dtype).name}))"
        )
    if arr.ndim != ndim:
        raise InvalidArgument(f"{name} is {arr.ndim}-dimensional with shape {arr.shape}; it must be {ndim}-dimensional {what}")
    if arr.size == 0:
        raise InvalidArgument(f"{name} is empty (shape {arr.shape}); every axis of {what} needs at least one element")
    if shape is not None:
        for axis, (got, need) in enumerate(zip(arr.shape, shape)):
            if need is not None and got != need:
                raise InvalidArgument(
                    f"{name} has shape {arr.shape} but axis {axis} of {what} must be {need}"
                )
    arr = cast_within_range(name, arr, dtype)
    if check_finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidArgument(f"{name} contains NaN or infinite values (first at index {tuple(int(i) for i in bad)}); clean the data first")
    return arr


def cast_within_range(name, arr, dtype):
    """``arr`` as a C-contiguous ``dtype`` array; finite values beyond that dtype's range
    (1e39 into float32) are refused, naming the first, instead of becoming infinite
    with numpy's overflow warning."""
    dtype = np.dtype(dtype)
    narrowing = arr.dtype.kind == "f" and dtype.kind == "f" and arr.dtype.itemsize > dtype.itemsize
    if not narrowing:
        return np.ascontiguousarray(arr, dtype=dtype)
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(out).all():
        beyond = np.isinf(out) & np.isfinite(arr)
        if beyond.any():
            first = tuple(int(i) for i in np.argwhere(beyond)[0])
            raise InvalidArgument(
                f"{name} holds {arr[first]:.4g} (first at index {first}), beyond the range of {dtype.name} "
                f"(magnitudes up to {np.finfo(dtype).max:.4g}); use dtype float64, or rescale the values"
            )
    return out


# ------------------------------------------------------------- fast data scan

#: Codes returned by :func:`scan_data`; the wrapper turns them into messages.
DATA_OK, X_NOT_FINITE, Y_NOT_FINITE, MASK_NOT_01, H0_NOT_FINITE, Y_OUT_OF_RANGE, Y_NOT_ONE_HOT = range(7)


@njit(**JIT)
def scan_data(X, Y, M, h0, needs_probabilities, needs_one_hot):
    """One pass over the data: 0 if it is fit for the kernels, else what is wrong.

    Checking with numpy takes a ufunc call per condition (about 1.4 us each for
    ``np.isfinite(X).all()`` on a small X); one compiled pass costs about 0.3 us in
    all, which matters when a training step itself takes a few microseconds.
    Messages are built by the caller, only when something is wrong.
    """
    B, T = X.shape[0], X.shape[1]
    for v in X.ravel():
        if not np.isfinite(v):
            return X_NOT_FINITE
    for v in h0.ravel():
        if not np.isfinite(v):
            return H0_NOT_FINITE
    for i in range(B):
        for t in range(T):
            m = M[i, t] if M.shape[0] > 0 else 1.0
            if m != 0.0 and m != 1.0:
                return MASK_NOT_01
            s = 0.0
            for k in range(Y.shape[2]):
                y = Y[i, t, k]
                if not np.isfinite(y):
                    return Y_NOT_FINITE
                if m != 0.0 and needs_probabilities and (y < 0.0 or y > 1.0):
                    return Y_OUT_OF_RANGE
                s += y
            if m != 0.0 and needs_one_hot and abs(s - 1.0) > 1e-6:
                return Y_NOT_ONE_HOT
    return DATA_OK


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
