"""AdamW (Loshchilov & Hutter 2019), PyTorch's ``torch.optim.AdamW``: weight decay decoupled from the gradient.

    theta *= 1 - lr wd          (the decay, before the Adam step and apart from it)
    then Adam's step (:mod:`fastrnn.optimizers.adam`) with the same lr, betas and eps.

With ``weight_decay=0`` it is Adam, number for number.
"""

from numba import njit

from ..config import JIT
from . import adam
from ._base import Hyper

NAME = "adamw"
CODE = 5
STATE = 2
SETTINGS = adam.SETTINGS + (
    Hyper("weight_decay", 0.01, "AdamW's decoupled weight decay: every step first multiplies the weights by "
          "1 - lr * weight_decay.", minimum=0.0, option=True),
)


@njit(**JIT)
def update(theta, grad, state, step, lr, beta1, beta2, eps, weight_decay):
    """theta *= 1 - lr weight_decay, then Adam's step (m in state[0], v in state[1])."""
    c1, c2 = adam.corrections(step, beta1, beta2)
    keep = 1.0 - lr * weight_decay
    m = state[0]
    v = state[1]
    for i in range(theta.shape[0]):
        theta[i] *= keep
        adam.element(i, theta, grad, m, v, lr, c1, c2, beta1, beta2, eps)


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
