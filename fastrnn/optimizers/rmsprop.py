"""RMSprop, char-rnn's form: ms = a ms + (1 - a) g^2; theta -= lr g / sqrt(ms + eps), a = decay (0.95)."""

import math

from numba import njit

from ..config import JIT
from ._base import Hyper

NAME = "rmsprop"
CODE = 4
STATE = 1
SETTINGS = (
    Hyper("eps", 1e-8, "Added to the denominator.", positive=True),
    Hyper("decay", 0.95, "RMSprop's averaging constant (char-rnn's 0.95).", minimum=0.0, below=1.0),
)


@njit(**JIT)
def update(theta, grad, state, step, lr, eps, decay):
    """ms = decay ms + (1 - decay) g^2 (ms in state[0]); theta -= lr g / sqrt(ms + eps)."""
    ms = state[0]
    for i in range(theta.shape[0]):
        gi = grad[i]
        ms[i] = decay * ms[i] + (1.0 - decay) * gi * gi
        theta[i] -= lr * gi / math.sqrt(ms[i] + eps)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
