"""The rectifier: f(a) = max(a, 0), f'(a) = [h > 0]."""

from numba import njit

from ..config import JIT

NAME = "relu"
CODE = 2
TORCH = "relu"


@njit(**JIT)
def f(a):
    """a if a > 0 else 0 (NaN gives 0, as a select does)."""
    return a if a > 0.0 else 0.0


@njit(**JIT)
def df(h):
    """f'(a) written from h = f(a): 1 where h > 0, else 0."""
    return 1.0 if h > 0.0 else 0.0


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
