"""The logistic sigmoid: f(a) = 1 / (1 + exp(-a)), f'(a) = h (1 - h)."""

from numba import njit

from .._mathfn import sigmoid
from ..config import JIT

NAME = "sigmoid"
CODE = 1
TORCH = None


@njit(**JIT)
def f(a):
    """1 / (1 + exp(-a)) (fastrnn._mathfn's, which vectorises and does not overflow)."""
    return sigmoid(a)


@njit(**JIT)
def df(h):
    """f'(a) written from h = f(a)."""
    return h * (1.0 - h)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
