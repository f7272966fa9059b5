"""SGD with momentum, PyTorch's form: v = mu v + g; theta -= lr v."""

from numba import njit

from ..config import JIT
from ._base import Hyper

NAME = "momentum"
CODE = 1
STATE = 1
SETTINGS = (Hyper("momentum", 0.9, "Momentum of the momentum optimizer.", minimum=0.0, below=1.0, option=True),)


@njit(**JIT)
def update(theta, grad, state, step, lr, momentum):
    """v = momentum v + g (v in state[0]); theta -= lr v."""
    vel = state[0]
    for i in range(theta.shape[0]):
        vel[i] = momentum * vel[i] + grad[i]
        theta[i] -= lr * vel[i]


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
