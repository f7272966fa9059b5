"""softsign: f(a) = a / (1 + |a|), f'(a) = 1 / (1 + |a|)^2 = (1 - |h|)^2.

Like tanh it is odd, bounded by +-1 and has slope 1 at 0, but it approaches its
bounds polynomially (1 - |h| = 1 / (1 + |a|)), not exponentially, so its
derivative vanishes more slowly for large |a|.
"""

from numba import njit

from ..config import JIT

NAME = "softsign"
CODE = 3
TORCH = None


@njit(**JIT)
def f(a):
    """a / (1 + |a|)."""
    return a / (1.0 + abs(a))


@njit(**JIT)
def df(h):
    """f'(a) written from h = f(a): (1 - |h|)^2."""
    u = 1.0 - abs(h)
    return u * u


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
