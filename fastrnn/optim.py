"""Optimizer updates and gradient clipping, as kernels on the flat parameter vector.

``apply_update`` is what the training loop calls once an iteration (inside its own
kernel); :class:`Optimizer` is the checked Python face of the same code for users
who write their own loop around :meth:`fastrnn.RNN.loss_and_grads`.
"""

import math

import numpy as np
from numba import njit

from . import _checks
from .config import JIT

SGD, MOMENTUM, ADAM = 0, 1, 2
OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM}


@njit(**JIT)
def clip_grads(grad, clip_norm, clip_value):
    """Clip in place and return the global L2 norm from before clipping.

    ``clip_value > 0`` clips every entry to [-clip_value, clip_value] first;
    ``clip_norm > 0`` then rescales so that the global norm is at most clip_norm.
    """
    sq = 0.0
    for i in range(grad.shape[0]):
        sq += grad[i] * grad[i]
    norm = math.sqrt(sq)
    if clip_value > 0.0:
        for i in range(grad.shape[0]):
            v = grad[i]
            grad[i] = clip_value if v > clip_value else (-clip_value if v < -clip_value else v)
    if clip_norm > 0.0:
        sq = 0.0
        for i in range(grad.shape[0]):
            sq += grad[i] * grad[i]
        clipped = math.sqrt(sq)
        if clipped > clip_norm:
            scale = clip_norm / clipped
            for i in range(grad.shape[0]):
                grad[i] *= scale
    return norm


@njit(**JIT)
def apply_update(kind, theta, grad, state, step, lr, hyper):
    """One optimizer step in place.

    kind: SGD, MOMENTUM or ADAM. state: (2, P) buffers (velocity; Adam's m and v).
    step: 1 for the first update (Adam's bias correction). hyper: float64 array
    [momentum, beta1, beta2, eps].

    SGD: theta -= lr g. Momentum (PyTorch's form): v = mu v + g; theta -= lr v.
    Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
          theta -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
    """
    n = theta.shape[0]
    if kind == SGD:
        for i in range(n):
            theta[i] -= lr * grad[i]
    elif kind == MOMENTUM:
        mu = hyper[0]
        vel = state[0]
        for i in range(n):
            vel[i] = mu * vel[i] + grad[i]
            theta[i] -= lr * vel[i]
    else:
        b1, b2, eps = hyper[1], hyper[2], hyper[3]
        m = state[0]
        v = state[1]
        c1 = 1.0 / (1.0 - b1**step)
        c2 = 1.0 / (1.0 - b2**step)
        for i in range(n):
            gi = grad[i]
            m[i] = b1 * m[i] + (1.0 - b1) * gi
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi
            theta[i] -= lr * (m[i] * c1) / (math.sqrt(v[i] * c2) + eps)


class Optimizer:
    """SGD, SGD with momentum or Adam over a :class:`fastrnn.RNN`'s parameters.

    >>> opt = fastrnn.Optimizer("adam", lr=1e-3, clip_norm=1.0)
    >>> loss, grads = model.loss_and_grads(X, Y)
    >>> grad_norm = opt.step(model, grads)      # updates model.params in place
    """

    def __init__(self, kind="sgd", lr=0.1, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, clip_norm=None, clip_value=None):
        self.kind = _checks.check_choice("kind", kind, tuple(OPTIMIZERS))
        self.lr = _checks.check_float("lr", lr, positive=True)
        momentum = _checks.check_float("momentum", momentum, minimum=0.0)
        beta1 = _checks.check_float("beta1", beta1, minimum=0.0)
        beta2 = _checks.check_float("beta2", beta2, minimum=0.0)
        if beta1 >= 1.0 or beta2 >= 1.0 or momentum >= 1.0:
            raise _checks.InvalidArgument(
                f"momentum, beta1 and beta2 must be below 1, got {momentum}, {beta1}, {beta2}"
            )
        eps = _checks.check_float("eps", eps, positive=True)
        self.hyper = np.array([momentum, beta1, beta2, eps])
        self.clip_norm = 0.0 if clip_norm is None else _checks.check_float("clip_norm", clip_norm, positive=True)
        self.clip_value = 0.0 if clip_value is None else _checks.check_float("clip_value", clip_value, positive=True)
        self.steps = 0
        self._state = None

    def step(self, model, grads):
        """Clip ``grads`` (a dict like ``model.params``), update the model; return the pre-clip norm."""
        flat = model._flatten_grads(grads)
        if self._state is None or self._state.shape[1] != flat.shape[0] or self._state.dtype != flat.dtype:
            self._state = np.zeros((2, flat.shape[0]), dtype=flat.dtype)
        norm = clip_grads(flat, self.clip_norm, self.clip_value)
        self.steps += 1
        apply_update(OPTIMIZERS[self.kind], model.theta, flat, self._state, self.steps, self.lr, self.hyper)
        return norm
