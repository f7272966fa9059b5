"""Online learning rules on streams: RTRL, UORO, KF-RTRL, SnAp-1, RFLO and BPTT(k1, k2).

:func:`run` trains a vanilla model (``cell="rnn"``, one layer, float64) online: one
update a step (BPTT(k1, k2): one every k1 steps) on B independent streams whose hidden
state is carried from step to step and from call to call. The rules themselves are
in :mod:`fastrnn.rules` (one module each, named in :data:`fastrnn.rules.RULES`).

The math (Marschall, Cho & Savin 2020's notation; theta_rec = (U, W, b)):

    a_t = U x_t + W h_{t-1} + b,  h_t = f(a_t),  D_t = diag(f'(a_t)),  ahat_t = [x_t; h_{t-1}; 1]
    M_t = dh_t/dtheta_rec (the influence matrix; RTRL carries it exactly)
    c_t = dL_t/dh_t = V^T dL_t/dz_t,  the rule's gradient of theta_rec ~ c_t M_t

Each step, in this order (vanilla-rtrl's): the forward step with the current weights;
the loss; the rule's state updated with the current weights; the gradient; the update.
V and c get their immediate gradient dL_t/dz_t h_t^T (BPTT(k1, k2): that of the same
k1 losses as the other parameters).
"""

import contextlib
import functools
from dataclasses import dataclass

import numpy as np

from . import _checks, engine, optim, rules
from .exceptions import InvalidArgument

__all__ = ["OnlineResult", "OnlineState", "check_rule_settings", "run"]

#: The ``fit``/``train`` options an online rule refuses, and why.
REFUSED = {
    "bptt_truncate": "an online rule does its own truncation (use rule 'bptt' with k1 and k2 for truncated BPTT)",
    "shuffle": "an online rule trains each stream in order, step after step",
}

_FORMAT = "fastrnn-online-state"


def check_rule_settings(rule, settings=None, **options):
    """Check a rule's name and settings at the boundary; return ``(name, settings)`` with defaults filled in.

    Parameters
    ----------
    rule : str
        A name in :data:`fastrnn.rules.RULES`: "rtrl", "uoro", "kf-rtrl", "snap1", "rflo", "bptt".
    settings : dict or None
        The rule's own settings (see each rule module's ``SETTINGS``): "bptt" takes
        ``k1``, ``k2``; "uoro" and "kf-rtrl" ``eps``; "rflo" ``alpha``, ``feedback``,
        ``feedback_scale``. An unknown name raises.
    **options
        Options of the caller (``fit``, ``train``) that an online rule cannot honour:
        ``bptt_truncate`` not None, or ``shuffle`` true, raise :class:`InvalidArgument`
        with the reason (:data:`REFUSED`); other options are not looked at.

    Raises
    ------
    InvalidArgument
        One line naming the argument, the value and what to do.
    """
    mod = rules.module(rule)
    settings = {} if settings is None else dict(settings)
    unknown = sorted(set(settings) - set(mod.SETTINGS))
    if unknown:
        known = ", ".join(mod.SETTINGS) if mod.SETTINGS else "none"
        raise InvalidArgument(f"rule {rule!r} has no setting {unknown[0]!r}; its settings: {known}")
    if options.get("bptt_truncate") is not None:
        raise InvalidArgument(f"bptt_truncate={options['bptt_truncate']!r} cannot be combined with rule={rule!r}: "
                              f"{REFUSED['bptt_truncate']}; leave bptt_truncate unset")
    if options.get("shuffle"):
        raise InvalidArgument(f"shuffle cannot be combined with rule={rule!r}: {REFUSED['shuffle']}; leave shuffle off")
    return rule, mod.check_settings(settings)


@dataclass(eq=False)
class OnlineState:
    """Everything an online run carries from one call of :func:`run` to the next.

    Attributes
    ----------
    rule : str
    settings : dict
        The rule's settings (defaults filled in).
    optimizer : str
    h : ndarray (B, n_hidden)
        The hidden state of each stream after the last step.
    arrays : dict of str to ndarray
        The rule's state (influence matrix, traces, factors, stored history), float64;
        names and shapes from the rule module's ``state_shapes``.
    rng : ndarray (B,) of uint64
        Each stream's random generator (UORO's and KF-RTRL's signs and draws).
    counters : ndarray (2,) of int64
        Steps seen, optimizer steps taken.
    opt_state : ndarray (2, n_params)
        The optimizer's buffers (momentum, Adam's moments; zeros for SGD).
    """

    rule: str
    settings: dict
    optimizer: str
    h: np.ndarray
    arrays: dict
    rng: np.ndarray
    counters: np.ndarray
    opt_state: np.ndarray

    @property
    def steps(self):
        """Steps seen so far (training and test)."""
        return int(self.counters[0])

    @classmethod
    def new(cls, model, rule, settings, B, seed=0, optimizer="sgd"):
        """The state of B fresh streams: h = 0 and the rule's initial state, drawn from ``seed``."""
        name, settings = check_rule_settings(rule, settings)
        mod = rules.module(name)
        _check_model(model)
        seed = _checks.check_int("seed", seed, minimum=0)
        B = _checks.check_int("B", B, minimum=1)
        I, H, O = model.n_in, model.n_hidden, model.n_out
        shapes = mod.state_shapes(B, H, I, O, settings)
        # the rule's state and a driver's scratch of the same size (RTRL: B*H*H*(I+H+1) numbers)
        _checks.check_memory(f"rule {name!r} on {B} streams of a model with n_hidden={H}",
                             2 * 8 * sum(int(np.prod(shape, dtype=object)) for shape in shapes.values()),
                             "use fewer streams, a smaller n_hidden, or a cheaper rule")
        arrays = {k: np.zeros(shape) for k, shape in shapes.items()}
        rng = np.array([np.random.SeedSequence([seed, 0x4F4E4C, b]).generate_state(1, np.uint64)[0] for b in range(B)],
                       dtype=np.uint64)
        mod.init_state(arrays, rng, model.dims, settings, seed)
        return cls(name, settings, optimizer, np.zeros((B, H)), arrays, rng, np.zeros(2, np.int64),
                   np.zeros((2, model.n_params)))

    def copy(self):
        """An independent copy."""
        return OnlineState(self.rule, dict(self.settings), self.optimizer, self.h.copy(),
                           {k: v.copy() for k, v in self.arrays.items()}, self.rng.copy(), self.counters.copy(),
                           self.opt_state.copy())

    def to_arrays(self):
        """The state as a flat dict of numpy arrays (no objects), for ``np.savez`` and checkpoints.

        Keys start with ``online.``; :meth:`from_arrays` reads them back.
        """
        out = {
            "online.format": np.array(_FORMAT),
            "online.rule": np.array(self.rule),
            "online.optimizer": np.array(self.optimizer),
            "online.settings_names": np.array(list(self.settings), dtype=str) if self.settings else np.zeros(0, dtype="<U1"),
            "online.settings_values": np.array([repr(v) for v in self.settings.values()], dtype=str)
            if self.settings else np.zeros(0, dtype="<U1"),
            "online.h": self.h,
            "online.rng": self.rng,
            "online.counters": self.counters,
            "online.opt_state": self.opt_state,
        }
        for k, v in self.arrays.items():
            out["online.state." + k] = v
        return out

    @classmethod
    def from_arrays(cls, arrays):
        """The state :meth:`to_arrays` wrote (a dict, or an ``np.load`` of an ``.npz``); checked."""
        try:
            if str(arrays["online.format"][()]) != _FORMAT:
                raise KeyError("online.format")
            rule = str(arrays["online.rule"][()])
            optimizer = str(arrays["online.optimizer"][()])
            names = [str(n) for n in np.asarray(arrays["online.settings_names"]).tolist()]
            values = [_literal(str(v)) for v in np.asarray(arrays["online.settings_values"]).tolist()]
            h = np.array(arrays["online.h"], dtype=np.float64)
            rng = np.array(arrays["online.rng"], dtype=np.uint64)
            counters = np.array(arrays["online.counters"], dtype=np.int64)
            opt_state = np.array(arrays["online.opt_state"], dtype=np.float64)
            state = {k[len("online.state."):]: np.array(arrays[k], dtype=np.float64) for k in arrays
                     if k.startswith("online.state.")}
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise InvalidArgument(f"these arrays hold no online state ({exc}); pass what OnlineState.to_arrays() wrote") from None
        name, settings = check_rule_settings(rule, dict(zip(names, values)))
        optim_kind = _checks.check_choice("optimizer", optimizer, tuple(optim.OPTIMIZERS))
        if h.ndim != 2 or rng.shape != (h.shape[0],) or counters.shape != (2,) or opt_state.ndim != 2 or opt_state.shape[0] != 2:
            raise InvalidArgument("the saved online state's arrays have inconsistent shapes; it is damaged or from another version")
        if set(state) != set(rules.module(name).STATE):
            raise InvalidArgument(f"the saved online state of rule {name!r} holds {sorted(state)}, "
                                  f"not {sorted(rules.module(name).STATE)}; it is damaged or from another version")
        return cls(name, settings, optim_kind, h, state, rng, counters, opt_state)


def _literal(text):
    """A setting value written by :meth:`OnlineState.to_arrays` (repr of an int, float or str)."""
    import ast

    return ast.literal_eval(text)


@dataclass(eq=False)
class OnlineResult:
    """What :func:`run` returns.

    Attributes
    ----------
    losses : ndarray (B, N)
        The loss of each stream at each step, computed before that step's update.
    state : OnlineState
        The state after the last step; pass it as ``state=`` to continue the streams.
    grad_sum : ndarray (n_params,) or None
        With ``accumulate=True``: the sum over the steps of the gradients the rule
        produced (each the mean over the streams, before clipping), in the layout of
        ``model.theta``. With ``lr=0`` this is the rule's gradient of the summed loss
        with the weights held fixed (RTRL's equals full BPTT's).
    blas_threads : dict
        The BLAS threads the rule's products ran on, and why (:func:`blas_threads`).
    """

    losses: np.ndarray
    state: OnlineState
    grad_sum: np.ndarray = None
    #: The BLAS threads the call ran with and why (``{"n": ..., "why": ...}``; fastrnn.cpus.policy).
    blas_threads: dict = None

    @property
    def loss(self):
        """The mean loss over every stream and step."""
        return float(self.losses.mean())


def _check_model(model):
    from .model import RNN

    if not isinstance(model, RNN):
        raise _checks.InvalidType(f"model must be a fastrnn.RNN, got {type(model).__name__}")
    if model.cell != "rnn" or model.layers != 1:
        raise InvalidArgument(f"the online rules train the vanilla cell with one layer; got cell={model.cell!r}, "
                              f"layers={model.layers}: build the model with cell='rnn', layers=1")
    if model.dtype != np.float64:
        raise InvalidArgument(f"the online rules run in float64; got a {model.dtype.name} model: build it with dtype='float64'")


def run(model, X, Y, *, rule, lr=0.03, state=None, train=True, seed=0, resets=None, optimizer="sgd", optimizer_settings=None,
        clip_norm=None, clip_value=None, accumulate=False, blas_threads=None, **rule_settings):
    """Run B streams through ``model`` step by step, learning online with ``rule``.

    For each step t of every stream, in this order: the forward step with the current
    weights, the loss, the rule's state updated with the current weights, the rule's
    gradient, the update. The gradient of a step is the mean over the B streams and
    there is one update a step for all of them (BPTT(k1, k2): one every k1 steps).
    Each stream has its own hidden state and its own rule state. ``model.theta`` is
    updated in place.

    Parameters
    ----------
    model : fastrnn.RNN
        A vanilla model (``cell="rnn"``), one layer, float64; any activation and head
        (softmax cross-entropy with soft targets, sigmoid, linear).
    X : array (B, N, n_in)
        N steps of B streams.
    Y : array (B, N, n_out)
        The targets of every step (probabilities for softmax: soft targets allowed).
    rule : str
        "rtrl", "uoro", "kf-rtrl", "snap1", "rflo" or "bptt" (:data:`fastrnn.rules.RULES`).
    lr : float
        The learning rate (0 is allowed: the weights stay, the rule's state moves on).
    state : OnlineState or None
        The state a previous call returned, to continue its streams; None starts B
        fresh streams (h = 0, the rule's initial state drawn from ``seed``). Two calls
        with the state carried compute exactly what one call over the concatenated
        stream does. ``state`` itself is left as it was: the result holds the new one.
    train : bool
        False is a test phase: no rule state, no updates; the hidden state is carried.
    seed : int
        Seeds a fresh state's random parts (UORO's and KF-RTRL's signs and initial
        factors, RFLO's feedback matrix); ignored when ``state`` is given.
    resets : array (B, N) of 0/1, or None
        1 where a stream starts again: its hidden state is set to zero before that
        step (and the rule forgets what it carried for that stream). None: never.
    optimizer : str
        "sgd" (online SGD, the default) or another of :data:`fastrnn.optim.OPTIMIZERS`,
        with ``optimizer_settings`` (momentum, beta1, beta2, eps, decay, weight_decay).
    clip_norm, clip_value : float or None
        Clip each step's gradient (as :func:`fastrnn.optim.clip_grads`).
    accumulate : bool
        Also return the sum of every step's gradient (``OnlineResult.grad_sum``).
    blas_threads : int or None
        Hold BLAS to this many threads (a training run decides once, so that its numbers
        do not change with the load midway); None: fastrnn's thread policy decides at
        this call (:func:`blas_threads`).
    **rule_settings
        The rule's settings: ``k1``, ``k2`` (bptt, defaults 10 and 10); ``eps`` (uoro,
        kf-rtrl, default 1e-7); ``alpha`` (default 1), ``feedback`` ("random" or
        "symmetric": V itself) and ``feedback_scale`` (default 1: the random feedback
        matrix has N(0, feedback_scale^2 / n_hidden) entries) for rflo.

    Returns
    -------
    OnlineResult
        ``losses`` (B, N), the ``state`` to continue from, and ``grad_sum``. A loss that
        becomes NaN or infinite is returned as it is (the run does not stop there); the
        caller decides what to keep.

    Raises
    ------
    InvalidArgument, InvalidType
        A bad argument, named in one line; the model and ``state`` are untouched then.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> from fastrnn import online
    >>> model = fastrnn.RNN(2, 32, 2, head="softmax", seed=0)
    >>> x = np.random.default_rng(0).integers(0, 2, (1, 1000)).astype(float)
    >>> X = np.stack([x, 1 - x], axis=-1)                  # (1 stream, 1000 steps, 2)
    >>> y = 0.5 + 0.5 * np.roll(x, 5, axis=1)              # a soft target that needs memory
    >>> Y = np.stack([y, 1 - y], axis=-1)
    >>> res = online.run(model, X[:, :500], Y[:, :500], rule="rtrl", lr=0.03)
    >>> res = online.run(model, X[:, 500:], Y[:, 500:], rule="rtrl", lr=0.03, state=res.state)
    >>> test = online.run(model, X, Y, rule="rtrl", state=res.state, train=False)
    >>> res.losses.shape
    (1, 500)
    """
    _check_model(model)
    name, settings = check_rule_settings(rule, rule_settings)
    mod = rules.module(name)
    lr = _checks.check_float("lr", lr, minimum=0.0)
    if not isinstance(train, (bool, np.bool_)):
        raise _checks.InvalidType(f"train must be True or False, got {train!r}")
    if not isinstance(accumulate, (bool, np.bool_)):
        raise _checks.InvalidType(f"accumulate must be True or False, got {accumulate!r}")
    optimizer = _checks.check_choice("optimizer", optimizer, tuple(optim.OPTIMIZERS))
    hyper = optim.hyper_array(**(optimizer_settings or {}))
    clip_norm = 0.0 if clip_norm is None else _checks.check_float("clip_norm", clip_norm, positive=True)
    clip_value = 0.0 if clip_value is None else _checks.check_float("clip_value", clip_value, positive=True)
    X, Y, _, _ = engine.prepare(model, X, Y)
    B, N = X.shape[0], X.shape[1]
    if resets is None:
        R = np.zeros((0, 0), np.int8)
    else:
        R = _checks.as_float_array("resets", resets, np.float64, 2, (B, N), "(streams, steps)")
        if not np.all((R == 0) | (R == 1)):
            raise InvalidArgument("resets must hold only 0 and 1 (1: the stream starts again from h = 0 at that step)")
        R = R.astype(np.int8)
    if state is None:
        state = OnlineState.new(model, name, settings, B, seed=seed, optimizer=optimizer)
    else:
        _check_state(state, model, name, settings, optimizer, B)
        state = state.copy()
    P = model.n_params
    losses = np.empty((B, N))
    grad = np.zeros(P)
    grad_sum = np.zeros(P)
    ctl = np.array([lr, clip_norm, clip_value, 1.0 if accumulate else 0.0, float(optim.OPTIMIZERS[optimizer])])
    h = state.h.reshape(-1)
    arrays = [state.arrays[k].reshape(-1) for k in mod.STATE]
    if blas_threads is not None:
        blas_threads = _checks.check_int("blas_threads", blas_threads, minimum=1)
    threads, limit = _blas_limit(model, name, settings, blas_threads)
    with limit():
        mod.run(model.theta, model.dims, X, Y, R, h, state.rng, ctl, hyper, state.counters, state.opt_state,
                mod.settings_array(settings), losses, grad, grad_sum, bool(train), *arrays)
    return OnlineResult(losses, state, grad_sum if accumulate else None, threads)


def _blas_limit(model, rule, settings, n):
    if n is None:
        return blas_threads(model, rule, settings)
    from . import cpus

    return dict(n=n, why="given by the caller"), functools.partial(cpus.blas_limited, n)


def blas_threads(model, rule, settings):
    """The BLAS threads a rule's products get (:func:`fastrnn.cpus.threads`, from the rule's largest
    product: its module's ``blas_work``, else an (H, H) matrix times a vector) and the context that
    holds BLAS to them; returns ``({"n": ..., "why": ...}, context)``. Threads that wait for each
    other lose far more than they gain on a busy machine: RTRL's (32, 32) @ (32, 1120) product
    runs on one thread, the policy's threshold."""
    from . import cpus

    mod = rules.module(rule)
    H, I, O = model.n_hidden, model.n_in, model.n_out
    work = mod.blas_work(H, I, O, settings) if hasattr(mod, "blas_work") else H * H
    wanted = cpus.blas_threads_now()
    if wanted is None:
        return dict(n=None, why="no BLAS library that threadpoolctl can set is loaded"), contextlib.nullcontext
    decision = cpus.threads("blas", wanted, work=work)
    info = dict(n=decision.n, why=decision.why)
    if decision.n == wanted:
        return info, contextlib.nullcontext
    return info, functools.partial(cpus.blas_limited, decision.n)


def _check_state(state, model, name, settings, optimizer, B):
    if not isinstance(state, OnlineState):
        raise _checks.InvalidType(f"state must be an OnlineState (as run returns it), got {type(state).__name__}")
    if state.rule != name:
        raise InvalidArgument(f"state belongs to rule {state.rule!r}, not {name!r}: pass the same rule, or state=None")
    if state.settings != settings:
        raise InvalidArgument(f"state was made with the settings {state.settings}, not {settings}: pass the same settings, "
                              f"or state=None")
    if state.optimizer != optimizer:
        raise InvalidArgument(f"state was made with optimizer {state.optimizer!r}, not {optimizer!r}: pass the same optimizer, "
                              f"or state=None")
    if state.h.shape != (B, model.n_hidden) or state.opt_state.shape != (2, model.n_params):
        raise InvalidArgument(f"state holds {state.h.shape[0]} streams of a model with n_hidden={state.h.shape[1]}; "
                              f"X has {B} streams and the model n_hidden={model.n_hidden}: pass matching data, or state=None")
    shapes = rules.module(name).state_shapes(B, model.n_hidden, model.n_in, model.n_out, settings)
    for k, shape in shapes.items():
        if state.arrays.get(k) is None or state.arrays[k].shape != tuple(shape):
            raise InvalidArgument(f"state's array {k!r} does not fit this model and data; pass state=None to start afresh")
