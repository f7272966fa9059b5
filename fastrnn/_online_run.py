"""A task run that learns online: :func:`fastrnn.train` with an online ``rule`` (see :mod:`fastrnn._rule_settings`).

The run walks the task's streams (``batch`` of them, from ``default_rng([seed, 1])``,
the data a run on windows reads too), ``log_every`` steps a chunk, through
:func:`fastrnn.online.run`: one update a step (BPTT(k1, k2): one every k1 steps), the
hidden state and the rule's state carried from chunk to chunk. ``iters`` counts steps.
A metrics row per chunk: ``loss`` and ``loss_per_step`` are the mean loss per step over
the chunk and the streams; ``error``, ``accuracy``, ``digit_accuracy`` and
``grad_norm`` are not measured by the online driver and stay empty (NaN).

Its state (the rule's arrays, the streams' hidden states, UORO's and KF-RTRL's random
generators, the optimizer's buffers: :meth:`fastrnn.online.OnlineState.to_arrays`) is
saved with ``save`` and in checkpoints under ``train_online.*`` keys, and the data
stream's position in the training state, so that a resumed run continues exactly.
At the end of a completed run the task's test phase runs on a copy of the carried
state (:class:`fastrnn.tasks._stream.StreamMetrics`).
"""

import numpy as np

from . import _rule_settings, optimizers
from . import settings as _settings
from .training import _Run, _row, _spectral_columns, divergence_error

#: The key prefix of the online state's arrays in a checkpoint (``train_`` + this + ...).
PREFIX = "online."


def check_rule_memory(rule, settings, B, I, H, O, what):
    """Refuse, in one line, a rule state that cannot fit in memory (before anything is allocated): the state's
    arrays (:func:`fastrnn.rules` modules' ``state_shapes``) three times over (the run's, the copy each driver call
    works on, the chunk's start kept for a divergence)."""
    from . import _checks, rules

    shapes = rules.module(rule).state_shapes(B, H, I, O, settings)
    entries = sum(int(np.prod(shape, dtype=object)) for shape in shapes.values())
    _checks.check_memory(f"{what} (rule {rule}, hidden={H}, {B} stream{'s' if B != 1 else ''})", 3 * 8 * entries,
                         "choose a smaller hidden or batch, or a rule with a smaller state (RTRL's grows as hidden^3 "
                         "a stream)")


def own_optimizer_settings(s):
    """The chosen optimizer's own training settings in ``s`` (momentum, weight_decay), as the optimizer
    registry declares them; None for an optimizer without any."""
    own = {h.name for h in optimizers.module(s["optimizer"]).SETTINGS if h.option}
    return {name: s[name] for name in own if s.get(name) is not None} or None

class OnlineRun(_Run):
    """One online training run (see the module); drives like :class:`fastrnn.training._Run`."""

    def __init__(self, task_obj, s, fresh=True):
        check_rule_memory(s["rule"], _rule_settings.rule_settings(s), s["batch"], task_obj.n_in, s["hidden"],
                          task_obj.n_out, "training online")
        super().__init__(task_obj, s, fresh)
        self.kernel = None  # the online driver of the rule, recorded as the settings' rule
        self.source = task_obj.streamer(np.random.default_rng([s["seed"], 1]), self.B)
        self.rule = s["rule"]
        self.rule_settings = _rule_settings.rule_settings(s)
        self.optimizer_settings = own_optimizer_settings(s)
        self.online = None  # the OnlineState, made at the first chunk (or restored)
        self.tracker.recent = np.zeros(0, dtype=np.int64)
        nan = float("nan")
        self._unmeasured = dict(error=nan, accuracy=nan, digit_accuracy=nan, grad_norm=nan)

    # ------------------------------------------------------------------ state
    def new_state(self):
        from .online import OnlineState

        return OnlineState.new(self.model, self.rule, self.rule_settings, self.B, seed=self.s["seed"],
                               optimizer=self.s["optimizer"])

    def carried_state(self):
        """The streams' hidden states as ``forward``'s h0 (1, B, H), a copy."""
        h = self.online.h if self.online is not None else np.zeros((self.B, self.model.n_hidden))
        return h[None].copy()

    def checkpoint_state(self, train_seconds):
        state, arrays = super().checkpoint_state(train_seconds)
        online = self.online if self.online is not None else self.new_state()
        arrays["opt_state"] = online.opt_state
        arrays["hstate"] = online.h.reshape(-1)
        arrays.update({PREFIX + k[len("online."):]: v for k, v in online.to_arrays().items()})
        return state, arrays

    def restore(self, path, model, state, arrays):
        from .exceptions import InvalidArgument
        from .online import OnlineState

        saved = {"online." + k[len(PREFIX):]: v for k, v in arrays.items() if k.startswith(PREFIX)}
        if not saved:
            raise InvalidArgument(f"the training state in {path} holds no online state; it cannot be resumed")
        super().restore(path, model, state, arrays)
        try:
            online = OnlineState.from_arrays(saved)
        except InvalidArgument as exc:
            raise InvalidArgument(f"cannot resume {path}: {exc}") from None
        if online.rule != self.rule or online.settings != self.rule_settings or online.h.shape != (self.B, self.model.n_hidden):
            raise InvalidArgument(f"the online state in {path} (rule {online.rule!r}, {online.settings}, {online.h.shape[0]} "
                                  f"streams) does not fit its settings; it cannot be resumed")
        self.online = online
        self.tracker.recent = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ training
    def _call(self, X, Y, lr, train=True):
        from .online import run

        s = self.s
        return run(self.model, X, Y, rule=self.rule, lr=lr, state=self.online, train=train, seed=s["seed"],
                   optimizer=s["optimizer"], optimizer_settings=self.optimizer_settings, clip_norm=s["clip"],
                   clip_value=s["clip_value"], blas_threads=getattr(self, "blas_n", None), **self.rule_settings)

    def warmup(self):
        """Compile (or load) the rule's driver on one step of a throwaway model copy, before the clock."""
        from .online import run

        model = self.model.copy()
        X, Y = self.task.stream(np.random.default_rng(0), 1, self.B)
        s = self.s
        run(model, X, Y, rule=self.rule, lr=0.0, seed=s["seed"], optimizer=s["optimizer"],
            optimizer_settings=self.optimizer_settings, clip_norm=s["clip"], clip_value=s["clip_value"],
            **self.rule_settings)
        if hasattr(self.extra, "warmup"):
            self.extra.warmup()

    def advance(self, clock):
        """Train the next chunk of steps and record its row: (row or None, steps done)."""
        n = self.next_chunk()
        X, Y = self.source.next(n)
        if self.online is None:
            self.online = self.new_state()
        start_theta, start_state = self.model.theta.copy(), self.online.copy()
        losses = np.empty((self.B, n))
        try:
            for a, b, lr in self.lr_pieces(n):  # one piece unless a step decay changes the rate inside the chunk
                res = self._call(X[:, a:b], Y[:, a:b], lr)
                losses[:, a:b] = res.losses
                self.online = res.state
        except KeyboardInterrupt:  # a chunk cut between two pieces: its start again (drive rewinds the data)
            self.model.theta[...] = start_theta
            self.online = start_state
            raise
        finite = np.isfinite(losses).all(axis=0)
        done = n if finite.all() else int(np.argmin(finite))
        if done < n:  # keep the weights and state of before the bad step, as the BPTT kernels do
            self.model.theta[...] = start_theta
            self.online = start_state
            for a, b, lr in self.lr_pieces(done):
                if b > a:
                    self.online = self._call(X[:, a:b], Y[:, a:b], lr).state
        return self.record_steps(n, done, losses, clock()), done

    def record_steps(self, n, done, losses, elapsed):
        """The row of a chunk of n steps of which ``done`` finished (see :meth:`fastrnn.training._Run.record`)."""
        s = self.s
        if done < n:
            self.status = "diverged"
            self.error = divergence_error(s, self.done + done + 1, "step", rule=self.rule)
            if done == 0:
                return None
            n = done
        self.done += n
        loss = float(losses[:, :n].mean())
        u = self._unmeasured
        row = _row(self.done, self.B, loss, u["error"], u["accuracy"], u["digit_accuracy"], u["grad_norm"],
                   self.lr_at(self.done - 1), elapsed)
        row["loss_per_step"] = loss
        if self.probe is not None:
            row.update(_spectral_columns(self.model, self.probe))
        self.rows.append(row)
        return row


# ---------------------------------------------------------------------- fit on arrays


def fit_online(model, X, Y, mask, *, rule, rule_settings, epochs, batch, optimizer, lr, optimizer_options, clip, clip_value,
               bptt_truncate, window, shuffle, seed, validation, log_every, csv, save, overwrite, progress, resume,
               checkpoint_every, checkpoint_seconds, record=None):
    """:func:`fastrnn.fit` with an online rule (see its docstring): every row of X is a stream, all trained
    together one step at a time, ``epochs`` passes each from h = 0; a metrics row every ``log_every`` steps and at
    the end of every epoch."""
    from . import online
    from .exceptions import InvalidArgument
    from .fitting import _check_setting
    from .metrics import check_output_files
    from .training import check_save, drive, open_writer

    if rule is None:
        rule = _rule_settings.DEFAULT_RULE
    rule, checked = online.check_rule_settings(rule, rule_settings, bptt_truncate=bptt_truncate, shuffle=shuffle)
    online._check_model(model)
    for name, value, why in (
            ("window", window, "an online rule steps through every stream of X from its start; leave window out"),
            ("mask", None if mask is None else "(an array)", "an online rule learns from every step: give streams whose "
             "every step has a target, or train with rule=None"),
            ("validation", None if validation is None else "(arrays)", "score held-out streams afterwards with "
             "model.forward"),
            ("resume", resume, "a fit with an online rule saves its weights only; train it again"),
            ("checkpoint_every", checkpoint_every, "a fit with an online rule takes no checkpoints"),
            ("checkpoint_seconds", checkpoint_seconds, "a fit with an online rule takes no checkpoints")):
        if value is not None:
            shown = value if isinstance(value, str) and value.startswith("(") else f"={value!r}"
            raise InvalidArgument(f"{name}{' ' if shown.startswith('(') else ''}{shown} cannot be combined with "
                                  f"rule={rule!r}: {why}")
    s = {name: _check_setting(name, value) for name, value in
         (("epochs", epochs), ("optimizer", optimizer), ("lr", lr), *optimizer_options.items(), ("clip", clip),
          ("clip_value", clip_value), ("seed", seed), ("log_every", log_every))}
    _settings.check_optimizer_options(s)
    from . import engine

    X, Y, _, _ = engine.prepare(model, X, Y)
    N = X.shape[0]
    if batch is not None and _check_setting("batch", batch) != N:
        raise InvalidArgument(f"batch must be left out (or be {N}) with rule={rule!r}: every step trains all {N} streams "
                              f"of X together, got {batch}")
    for name, value in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(value, bool):
            raise InvalidArgument(f"{name} must be True or False, got {value!r}")
    check_output_files(csv, save)
    save = check_save(save, overwrite, None, None)
    check_rule_memory(rule, checked, N, model.n_in, model.n_hidden, model.n_out, "fitting online")
    run = _FitOnlineRun(model, X, Y, rule, checked, s, record)
    writer = open_writer(csv, run, overwrite, None, None)
    return drive(run, run.warmup, run.advance, writer, save, progress, run.total, "fit", None)


def _default_of(name):
    from .settings import get

    return get(name).default


class _FitOnlineRun:
    """What :func:`fastrnn.training.drive` needs of a fit with an online rule (see :func:`fit_online`)."""

    def __init__(self, model, X, Y, rule, rule_settings, s, record):
        from .fitting import FIT_COLUMNS
        from .metrics import COLUMNS
        from .training import versions

        self.model, self.X, self.Y = model, X, Y
        self.N, self.T = X.shape[0], X.shape[1]
        self.rule, self.rule_settings = rule, rule_settings
        self.total = s["epochs"] * self.T
        self.s = dict(task=_settings.ARRAYS, data="arrays", shapes={"X": list(X.shape), "Y": list(Y.shape)}, n_in=model.n_in,
                      n_out=model.n_out, hidden=model.n_hidden, layers=model.layers, activation=model.activation,
                      head=model.head, dtype=model.dtype.name, **s, batch=self.N, shuffle=False, window=None,
                      bptt_truncate=None, iters=self.total, rule=rule, **rule_settings, **(record or {}),
                      versions=versions())
        self.optimizer_settings = own_optimizer_settings(s)
        self.columns = list(COLUMNS) + FIT_COLUMNS
        self.rows, self.status, self.error, self.done = [], "completed", None, 0
        self.online = None
        self.resumable, self.seconds_before, self.csv = False, 0.0, None  # saved: the weights alone
        self.tracker = type("NoAccuracy", (), {"first_perfect_iteration": None})()
        self.kernel = None

    def remaining(self):
        return self.status == "completed" and self.done < self.total

    def snapshot(self):
        return self.done, self.model.theta.copy(), None if self.online is None else self.online.copy(), len(self.rows)

    def rewind(self, state):
        self.done, theta, self.online, n = state
        self.model.theta[...] = theta
        del self.rows[n:]

    def _call(self, X, Y, resets, model=None, lr=None):
        from .online import run

        s = self.s
        return run(self.model if model is None else model, X, Y, rule=self.rule, lr=s["lr"] if lr is None else lr,
                   state=None if model is not None else self.online, seed=s["seed"], resets=resets,
                   optimizer=s["optimizer"], optimizer_settings=self.optimizer_settings, clip_norm=s["clip"],
                   clip_value=s["clip_value"], blas_threads=getattr(self, "blas_n", None), **self.rule_settings)

    def warmup(self):
        self._call(self.X[:, :1], self.Y[:, :1], None, model=self.model.copy(), lr=0.0)

    def advance(self, clock):
        t0 = self.done % self.T
        n = min(self.s["log_every"], self.T - t0, self.total - self.done)  # rows also at every epoch's end
        X, Y = self.X[:, t0 : t0 + n], self.Y[:, t0 : t0 + n]
        resets = np.zeros((self.N, n))
        if t0 == 0:
            resets[:, 0] = 1.0  # every epoch starts every stream from h = 0, the rule's memory cleared
        start = self.snapshot()
        res = self._call(X, Y, resets)
        losses = res.losses
        finite = np.isfinite(losses).all(axis=0)
        done = n if finite.all() else int(np.argmin(finite))
        if done < n:
            self.rewind(start)
            self.online = self._call(X[:, :done], Y[:, :done], resets[:, :done]).state if done else self.online
            self.status = "diverged"
            self.error = (f"the loss became NaN or infinite at step {self.done + done + 1}; training stopped there "
                          f"(rule {self.rule}, lr {self.s['lr']}): try a smaller lr or clip")
            if done == 0:
                return None, 0
        else:
            self.online = res.state
        from .training import _row

        self.done += done
        loss = float(losses[:, :done].mean())
        nan = float("nan")
        row = _row(self.done, self.N, loss, nan, nan, nan, nan, self.s["lr"], clock())
        row["epoch"] = -(-self.done // self.T)
        self.rows.append(row)
        return row, done
