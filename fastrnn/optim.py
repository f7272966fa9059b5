"""Optimizer updates and gradient clipping, as kernels on the flat parameter vector.

``apply_update`` is what the training loop calls once an iteration (inside its own
kernel); :class:`Optimizer` is the checked Python face of the same code for users
who write their own loop around :meth:`fastrnn.RNN.loss_and_grads`.
"""

import math

import numpy as np
from numba import njit

from . import _checks, _generate, optimizers
from .config import JIT

#: name -> code, and the hyperparameters' order and defaults: the registry's (fastrnn.optimizers).
OPTIMIZERS = optimizers.OPTIMIZERS
HYPER_DEFAULTS = optimizers.HYPER_DEFAULTS
SGD, MOMENTUM, ADAM, ADAGRAD, RMSPROP, ADAMW = (OPTIMIZERS[n] for n in ("sgd", "momentum", "adam", "adagrad", "rmsprop",
                                                                         "adamw"))
#: code -> name (the name a kernel specialised for one optimizer carries: ``train_chunk_lean_adam_...``).
NAME_OF = {code: name for name, code in OPTIMIZERS.items()}


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


def _cases():
    """One branch of :func:`apply_update` per registered optimizer: its update with its own settings."""
    for m in optimizers.MODULES:
        reads = "".join(f", hyper[{optimizers.HYPER_INDEX[h.name]}]" for h in m.SETTINGS)
        fn = f"_update_{m.NAME}"
        yield m.CODE, f"{fn}(theta, grad, state, step, lr{reads})", {fn: m.update}


#: One optimizer step in place: ``apply_update(kind, theta, grad, state, step, lr, hyper)``.
#:
#: kind: a code of :data:`OPTIMIZERS` (another raises ValueError). state: (2, P) buffers
#: (velocity; Adam's m and v; Adagrad's and RMSprop's mean square in row 0). step: 1 for
#: the first update (Adam's bias correction). hyper: float64 array of every registered
#: optimizer's settings (:func:`hyper_array`); each update reads its own. The updates are
#: those of the optimizer modules (fastrnn/optimizers/), one branch each.
apply_update = _generate.by_code(
    "apply_update", "theta, grad, state, step, lr, hyper", "kind", list(_cases()), globals(),
    "apply_update: unknown optimizer code (fastrnn.optim.OPTIMIZERS lists the codes)",
    doc="One optimizer step in place (fastrnn.optim.apply_update; generated from fastrnn.optimizers).")


def _single(code):
    """:func:`apply_update` with the one branch of optimizer ``code`` (same arguments; another code raises)."""
    case = next(c for c in _cases() if c[0] == code)
    name = NAME_OF[code]
    return _generate.by_code(
        f"apply_update_{name}", "theta, grad, state, step, lr, hyper", "kind", [case], globals(),
        f"apply_update_{name}: called with another optimizer's code",
        doc=f"apply_update for {name} alone (generated from fastrnn.optimizers).")


#: code -> :func:`apply_update` for that optimizer alone: what a kernel specialised for one
#: optimizer calls (:func:`fastrnn._small.lean_kernel`), so that it compiles only that update.
UPDATE_OF = {code: _single(code) for code in OPTIMIZERS.values()}


class Optimizer:
    """Any registered optimizer (sgd, momentum, adam, adagrad, rmsprop, adamw) over a :class:`fastrnn.RNN`'s parameters.

    ``settings`` are the optimizers' hyperparameters by name (:data:`HYPER_DEFAULTS`:
    ``momentum``, ``beta1``, ``beta2``, ``eps``, ``decay``, ``weight_decay``); each
    optimizer reads its own. ``eps`` is added to Adam's denominator outside the square
    root and to Adagrad's and RMSprop's inside it (as min-char-rnn and char-rnn write
    them); ``decay`` is RMSprop's averaging constant (char-rnn's 0.95);
    ``weight_decay`` is AdamW's (PyTorch's default 0.01).

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

    def __init__(self, kind="sgd", lr=0.1, clip_norm=None, clip_value=None, **settings):
        self.kind = _checks.check_choice("kind", kind, tuple(OPTIMIZERS))
        self.lr = _checks.check_float("lr", lr, positive=True)
        self.hyper = hyper_array(**{name: check_hyper(name, value) for name, value in settings.items()})
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


def check_hyper(name, value):
    """``value`` of the hyperparameter ``name`` checked against its declaration (bounds)."""
    if name not in optimizers.HYPER:
        raise _checks.InvalidArgument(f"unknown optimizer setting {name!r}; known: {', '.join(HYPER_DEFAULTS)}")
    h = optimizers.HYPER[name]
    value = _checks.check_float(name, value, minimum=h.minimum, positive=h.positive)
    if h.below is not None and value >= h.below:
        raise _checks.InvalidArgument(f"{name} must be below {h.below}, got {value}")
    return value


def hyper_from(settings):
    """The ``hyper`` array of a run's settings dict (its optimizer options; the rest default)."""
    return hyper_array(**{h.name: settings[h.name] for h in optimizers.OPTIONS if settings.get(h.name) is not None})


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
key_dispatchers(UPDATE_OF)
