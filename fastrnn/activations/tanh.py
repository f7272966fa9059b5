"""tanh: f(a) = tanh(a), f'(a) = 1 - h^2."""

from numba import njit

from .._mathfn import tanh
from ..config import JIT

NAME = "tanh"
CODE = 0
#: torch.nn.RNN's ``nonlinearity`` of the same function (None: PyTorch's RNN has none).
TORCH = "tanh"


@njit(**JIT)
def f(a):
    """tanh(a) (fastrnn._mathfn's, which vectorises)."""
    return tanh(a)


@njit(**JIT)
def df(h):
    """f'(a) written from h = f(a)."""
    return 1.0 - h * h


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
