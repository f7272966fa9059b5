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

from . import _rule_settings
from .training import _Run, _row, _spectral_columns

#: The key prefix of the online state's arrays in a checkpoint (``train_`` + this + ...).
PREFIX = "online."


class OnlineRun(_Run):
    """One online training run (see the module); drives like :class:`fastrnn.training._Run`."""

    def __init__(self, task_obj, s, fresh=True):
        super().__init__(task_obj, s, fresh)
        self.kernel = None  # the online driver of the rule, recorded as the settings' rule
        self.source = task_obj.streamer(np.random.default_rng([s["seed"], 1]), self.B)
        self.rule = s["rule"]
        self.rule_settings = _rule_settings.rule_settings(s)
        self.optimizer_settings = {"momentum": s["momentum"]} if s["optimizer"] == "momentum" else None
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
                   clip_value=s["clip_value"], **self.rule_settings)

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
        for a, b, lr in self.lr_pieces(n):
            res = self._call(X[:, a:b], Y[:, a:b], lr)
            losses[:, a:b] = res.losses
            self.online = res.state
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
            bad = self.done + done + 1
            self.status = "diverged"
            advice = "try --clip 1.0 or a smaller --lr" if s["clip"] is None else "try a smaller --lr or --clip"
            self.error = (f"the loss became NaN or infinite at step {bad}; training stopped there (rule {self.rule}, "
                          f"lr {s['lr']}, optimizer {s['optimizer']}, clip {s['clip'] or 'off'}): {advice}")
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
