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

SGD, MOMENTUM, ADAM, ADAGRAD, RMSPROP = 0, 1, 2, 3, 4
OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM, "adagrad": ADAGRAD, "rmsprop": RMSPROP}

#: The hyperparameters every optimizer kernel reads, in the order of the ``hyper``
#: array, with their defaults (char-rnn's RMSprop decay 0.95).
HYPER_DEFAULTS = dict(momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.95)


def hyper_array(**values):
    """The float64 ``hyper`` array of :func:`apply_update`, defaults filled in."""
    unknown = set(values) - set(HYPER_DEFAULTS)
    if unknown:
        raise _checks.InvalidArgument(f"unknown optimizer settings {sorted(unknown)}; known: {list(HYPER_DEFAULTS)}")
    return np.array([float(values.get(k, d)) for k, d in HYPER_DEFAULTS.items()])


@njit(**JIT)
def global_norm(grad):
    """The L2 norm of ``grad`` without overflow or underflow on finite entries.

    The plain sum of squares is used when it is finite and normal (the common case,
    one pass); otherwise the entries are scaled by the largest |entry| first, so
    that finite gradients above about 1e154 no longer read as infinite. A NaN or
    infinite entry gives a NaN or infinite norm.
    """
    # four partial sums: one running sum is a chain of dependent adds (4 cycles
    # each), which made the norm a fifth of a binary-addition iteration
    n = grad.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        s0 += grad[i] * grad[i]
        s1 += grad[i + 1] * grad[i + 1]
        s2 += grad[i + 2] * grad[i + 2]
        s3 += grad[i + 3] * grad[i + 3]
    for i in range(n4, n):
        s0 += grad[i] * grad[i]
    sq = (s0 + s1) + (s2 + s3)
    if sq != sq:  # a NaN entry
        return sq
    if sq < math.inf and sq > 1e-290:
        return math.sqrt(sq)
    amax = 0.0
    for i in range(grad.shape[0]):
        a = abs(grad[i])
        amax = a if a > amax else amax
    if amax == 0.0 or amax == math.inf:
        return amax
    sq = 0.0
    for i in range(grad.shape[0]):
        v = grad[i] / amax
        sq += v * v
    return amax * math.sqrt(sq)


@njit(**JIT)
def clip_grads(grad, clip_norm, clip_value):
    """Clip in place and return the global L2 norm from before clipping.

    ``clip_value > 0`` clips every entry to [-clip_value, clip_value] first;
    ``clip_norm > 0`` then rescales so that the global norm is at most clip_norm.
    """
    norm = global_norm(grad)
    if clip_value > 0.0:
        for i in range(grad.shape[0]):
            v = grad[i]
            grad[i] = clip_value if v > clip_value else (-clip_value if v < -clip_value else v)
    if clip_norm > 0.0:
        clipped = global_norm(grad)
        if clipped > clip_norm:
            scale = clip_norm / clipped
            for i in range(grad.shape[0]):
                grad[i] *= scale
    return norm


@njit(**JIT)
def apply_update(kind, theta, grad, state, step, lr, hyper):
    """One optimizer step in place.

    kind: SGD, MOMENTUM, ADAM, ADAGRAD or RMSPROP. state: (2, P) buffers
    (velocity; Adam's m and v; Adagrad's and RMSprop's mean square in row 0).
    step: 1 for the first update (Adam's bias correction). hyper: float64 array
    [momentum, beta1, beta2, eps, decay] (:func:`hyper_array`).

    SGD: theta -= lr g. Momentum (PyTorch's form): v = mu v + g; theta -= lr v.
    Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
          theta -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
    Adagrad (min-char-rnn): mem += g^2; theta -= lr g / sqrt(mem + eps).
    RMSprop (char-rnn): ms = a ms + (1-a) g^2; theta -= lr g / sqrt(ms + eps), a = decay.
    For Adagrad and RMSprop eps sits inside the square root, as those programs write it.
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
    elif kind == ADAGRAD:
        eps = hyper[3]
        mem = state[0]
        for i in range(n):
            gi = grad[i]
            mem[i] += gi * gi
            theta[i] -= lr * gi / math.sqrt(mem[i] + eps)
    elif kind == RMSPROP:
        eps, a = hyper[3], hyper[4]
        ms = state[0]
        for i in range(n):
            gi = grad[i]
            ms[i] = a * ms[i] + (1.0 - a) * gi * gi
            theta[i] -= lr * gi / math.sqrt(ms[i] + eps)
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
    """SGD, SGD with momentum, Adam, Adagrad or RMSprop over a :class:`fastrnn.RNN`'s parameters.

    ``eps`` is added to Adam's denominator outside the square root and to
    Adagrad's and RMSprop's inside it (as min-char-rnn and char-rnn write them);
    ``decay`` is RMSprop's averaging constant (char-rnn's 0.95).

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> model = fastrnn.RNN(n_in=2, n_hidden=8, n_out=3, seed=0)
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 2))
    >>> Y = np.eye(3)[np.random.default_rng(1).integers(0, 3, (4, 5))]
    >>> opt = fastrnn.Optimizer("adam", lr=1e-2, clip_norm=1.0)
    >>> before = model.loss(X, Y)
    >>> for _ in range(20):
    ...     loss, grads = model.loss_and_grads(X, Y)
    ...     grad_norm = opt.step(model, grads)          # updates model.params in place
    >>> bool(model.loss(X, Y) < before)
    True
    """

    def __init__(self, kind="sgd", lr=0.1, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, clip_norm=None, clip_value=None,
                 decay=0.95):
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
        decay = _checks.check_float("decay", decay, minimum=0.0)
        if decay >= 1.0:
            raise _checks.InvalidArgument(f"decay must be below 1, got {decay}")
        self.hyper = hyper_array(momentum=momentum, beta1=beta1, beta2=beta2, eps=eps, decay=decay)
        self.clip_norm = 0.0 if clip_norm is None else _checks.check_float("clip_norm", clip_norm, positive=True)
        self.clip_value = 0.0 if clip_value is None else _checks.check_float("clip_value", clip_value, positive=True)
        self.steps = 0
        self._state = None

    def step(self, model, grads):
        """Clip ``grads`` (a dict like ``model.params``), update the model; return the pre-clip norm."""
        flat = model.flatten_grads(grads)
        if self._state is None or self._state.shape[1] != flat.shape[0] or self._state.dtype != flat.dtype:
            self._state = np.zeros((2, flat.shape[0]), dtype=flat.dtype)
        norm = clip_grads(flat, self.clip_norm, self.clip_value)
        self.steps += 1
        apply_update(OPTIMIZERS[self.kind], model.theta, flat, self._state, self.steps, self.lr, self.hyper)
        return norm


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
