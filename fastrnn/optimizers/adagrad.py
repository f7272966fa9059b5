"""Adagrad, min-char-rnn's form: mem += g^2; theta -= lr g / sqrt(mem + eps) (eps inside the root)."""

import math

from numba import njit

from ..config import JIT
from ._base import Hyper

NAME = "adagrad"
CODE = 3
STATE = 1
SETTINGS = (Hyper("eps", 1e-8, "Added to the denominator.", positive=True),)


@njit(**JIT)
def update(theta, grad, state, step, lr, eps):
    """mem += g^2 (mem in state[0]); theta -= lr g / sqrt(mem + eps)."""
    mem = state[0]
    for i in range(theta.shape[0]):
        gi = grad[i]
        mem[i] += gi * gi
        theta[i] -= lr * gi / math.sqrt(mem[i] + eps)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
