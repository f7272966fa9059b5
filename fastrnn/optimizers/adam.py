"""Adam (Kingma & Ba 2015), eps outside the square root as PyTorch writes it.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    theta -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
"""

import math

from numba import njit

from ..config import JIT
from ._base import Hyper

NAME = "adam"
CODE = 2
STATE = 2
SETTINGS = (
    Hyper("beta1", 0.9, "Adam's decay of the first moment.", minimum=0.0, below=1.0),
    Hyper("beta2", 0.999, "Adam's decay of the second moment.", minimum=0.0, below=1.0),
    Hyper("eps", 1e-8, "Added to the denominator.", positive=True),
)


@njit(**JIT)
def corrections(step, beta1, beta2):
    """The bias corrections 1 / (1 - b1^t) and 1 / (1 - b2^t) of update ``step`` (1 first)."""
    return 1.0 / (1.0 - beta1**step), 1.0 / (1.0 - beta2**step)


@njit(inline="always", **JIT)
def element(i, theta, grad, m, v, lr, c1, c2, beta1, beta2, eps):
    """Adam's step of entry i (m, v: the moments; c1, c2: :func:`corrections`)."""
    gi = grad[i]
    m[i] = beta1 * m[i] + (1.0 - beta1) * gi
    v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi
    theta[i] -= lr * (m[i] * c1) / (math.sqrt(v[i] * c2) + eps)


@njit(**JIT)
def update(theta, grad, state, step, lr, beta1, beta2, eps):
    """One Adam step of every entry (m in state[0], v in state[1])."""
    c1, c2 = corrections(step, beta1, beta2)
    m = state[0]
    v = state[1]
    for i in range(theta.shape[0]):
        element(i, theta, grad, m, v, lr, c1, c2, beta1, beta2, eps)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
