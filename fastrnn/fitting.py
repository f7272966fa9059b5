"""Train a model on your own arrays: ``fastrnn.fit(model, X, Y, epochs=10)``.

The same chunk kernel as :func:`fastrnn.train` (:func:`fastrnn.engine.train_chunk`)
and the same loop (:func:`fastrnn.training.drive`: files, rows, Ctrl-C, divergence);
only the data differ. Two ways to cut the arrays into iterations:

- whole sequences (``window=None``): X (N, T, I) holds N independent sequences, each
  starting from a zero state. An epoch is ``ceil(N / batch)`` iterations; with
  ``shuffle=False`` iteration j trains rows ``j*batch .. (j+1)*batch - 1`` in order,
  with ``shuffle=True`` the rows of a permutation drawn per epoch from
  ``numpy.random.default_rng([seed, 1])``. When ``batch`` does not divide N the last
  iteration of an epoch trains the ``N % batch`` rows left over as a smaller batch
  (PyTorch's ``drop_last=False``); its loss is a mean over those rows.
- windows (``window=K``): X (B, T_total, I) holds B long streams, all trained in every
  iteration. Iteration w trains steps ``w*K .. (w+1)*K - 1`` of every stream, starting
  from the state the previous window ended in, and its gradient stops at the window's
  start (truncated BPTT with k1 = k2 = K). The state is zeros at the start of every
  epoch. When K does not divide T_total the last ``T_total % K`` steps are trained as a
  shorter final window. ``bptt_truncate`` (k) then limits the reach inside a window
  further: the loss at step t reaches back to ``max(window start, t - k)``.

``save=PATH`` writes the training state with the weights, and
``fit(None, X, Y, resume=PATH, epochs=N)`` continues it exactly (:mod:`fastrnn.checkpoint`).

See docs/math.md, section "Your own arrays: fit".
"""

import inspect
import os
import zlib

import numpy as np

from . import _checks, _files, checkpoint, engine, optim, optimizers, params
from . import settings as _settings
from .exceptions import InvalidArgument, InvalidType
from .metrics import COLUMNS, check_output_files
from .model import RNN
from .training import blas_threads_of, build_model, check_save, divergence_error, drive, open_writer, versions

#: The columns fit adds to metrics.COLUMNS (val_* only with ``validation``).
FIT_COLUMNS = ["epoch"]
VAL_COLUMNS = ["val_loss", "val_accuracy"]


def fit(model, X, Y, mask=None, *, epochs=10, batch=None, optimizer="adam", lr=0.01, clip=1.0,
        clip_value=None, bptt_truncate=None, window=None, shuffle=None, seed=0, validation=None, log_every=100,
        csv=None, save=None, overwrite=False, progress=False, resume=None, checkpoint_every=None, checkpoint_seconds=None,
        rule=None, _record=None, _note=None, **options):
    # _record: extra JSON fields from fit_file (the file, the model's settings); _note: where the line about
    # rows cut on a resume goes (the command's stderr); not for users
    """Train ``model`` in place on arrays X (N, T, n_in), Y (N, T, n_out), mask (N, T); return a TrainResult.

    Parameters
    ----------
    model : fastrnn.RNN or None
        Its sizes, head, activation and dtype are the model's; it is trained in place.
        None with ``resume``: the model saved in that file.
    X, Y, mask : arrays
        Inputs, targets (one-hot for softmax, in [0, 1] for sigmoid) and an optional
        0/1 mask of the steps that have a target (None: every step).
    epochs : int
        Passes over the data.
    batch : int or None
        Sequences per iteration; None is min(32, N). A last partial batch is trained
        as a smaller batch. With ``window`` every iteration trains all N streams, so
        batch must be None or N.
    optimizer, lr, clip, clip_value, bptt_truncate, log_every
        As in :func:`fastrnn.train` (``clip`` and ``clip_value``: None or 0 is off).
        The defaults are those of ``fastrnn train --data``
        (:data:`fastrnn.settings.DATA_DEFAULTS`).
    **options
        The optimizers' own settings, by name, as in :func:`fastrnn.train`: every
        ``option`` an optimizer module declares (:data:`fastrnn.optimizers.OPTIONS`:
        ``momentum`` 0.9 for momentum, ``weight_decay`` 0.01 for adamw). One that the
        chosen optimizer does not read must be left at its default. Also the online
        rule's own settings (``k1``, ``k2``; ``eps``; ``alpha``, ``feedback``,
        ``feedback_scale``: see :func:`fastrnn.online.run`). A name that is neither
        raises TypeError.
    seed : int
        Seeds the order of the sequences (``shuffle``); the weights are the model's.
    window : int or None
        K: X holds long streams, trained K steps at a time with the state carried
        (see the module docstring).
    shuffle : bool or None
        Draw a new order of the sequences every epoch; None (the default) is True
        for whole sequences. It has no meaning with ``window`` (every iteration
        trains every stream, in time order): there it must be None or False, and is
        recorded as False.
    validation : tuple or None
        ``(X_val, Y_val)`` or ``(X_val, Y_val, mask_val)``: every row also gets
        ``val_loss`` and ``val_accuracy`` on these (whole sequences from a zero state;
        with ``window``, val_loss is per K steps: the total loss over ``X_val.shape[0]
        * T_val / K`` windows).
    csv, save, overwrite, progress
        As in :func:`fastrnn.train`: the metrics CSV with the settings JSON beside it
        (``"task": "data"``, ``"data": "arrays"`` and the arrays' ``shapes``), the
        model file, replacing files only with ``overwrite``, a tqdm bar. ``save``
        writes, beside the weights, everything a resume needs (:mod:`fastrnn.checkpoint`):
        the optimizer state, the update count, the epoch and the iteration within it,
        the shuffle generator's state at the epoch's start, the carried window state,
        the rows so far and a checksum of the arrays.
    resume : path or None
        Continue the fit saved (with ``save``) in this file up to ``epochs`` epochs in
        total, exactly as if it had not stopped: the weights and every row (``elapsed_s``
        aside) equal those of one uninterrupted run, after a Ctrl-C too. Give the same
        X, Y, mask and validation (other arrays are refused: their checksum differs)
        and ``model=None`` (the saved model is loaded) or a model of the same
        architecture (its weights are replaced by the saved ones). The settings are
        the saved run's: an argument left at its default is ignored, any other value
        must equal the saved one. ``csv`` naming the saved run's CSV appends to it;
        another path gets the earlier rows first. ``save`` may name ``resume`` itself.
        ``resume`` may name a checkpoint: the CSV's rows written after it are cut off.
    checkpoint_every, checkpoint_seconds
        As in :func:`fastrnn.train`: a checkpoint at the first row at or past every
        multiple of ``checkpoint_every`` iterations (a multiple of ``log_every``),
        and/or ``checkpoint_seconds`` after the last, to ``<save stem>.ckpt.npz`` (or
        ``<csv stem>.ckpt.npz``), from which ``resume`` continues exactly.

    rule : str or None
        None (or "bptt" with no k1/k2): backpropagation through time, as above. An
        online rule of :data:`fastrnn.rules.RULES` ("rtrl", "uoro", "kf-rtrl", "snap1",
        "rflo", or "bptt" with ``k1``/``k2``: Williams & Peng's BPTT(k1, k2)) trains
        the arrays as streams with :func:`fastrnn.online.run`: every row of X is a
        stream, all N trained together (``batch`` must be None or N), in time order
        one update a step (BPTT(k1, k2): every k1 steps), each epoch a pass from the
        streams' start with h = 0 and the rule's memory cleared. ``iterations`` and
        ``log_every`` then count steps (an epoch is T of them; a row also ends every
        epoch); ``loss`` is the mean loss per step, and ``error``, ``accuracy`` and
        ``grad_norm`` are not measured (NaN). Such a fit refuses ``shuffle=True`` (a
        stream is learned in order), ``window`` (it steps through whole streams),
        ``bptt_truncate`` (the rule truncates), ``mask``, ``validation``, ``resume`` and
        checkpoints, and needs a vanilla one-layer float64 model; ``save`` writes the
        weights alone.

    Returns
    -------
    TrainResult
        ``history`` has a row every ``log_every`` iterations and at the end of every
        epoch, with metrics.COLUMNS plus ``epoch`` (and ``val_loss``,
        ``val_accuracy``). ``loss`` is the mean of the row's iteration losses (each a
        sum over the masked steps, a mean over the batch); ``accuracy`` (and the
        same number in ``digit_accuracy``, the per-position accuracy) is the fraction
        of the row's target steps (mask 1) the head gets right (1.0 for a row
        without any, possible with ``window`` when the targets are sparse): softmax, arg max
        equals the target's; sigmoid, every output on the target's side of 0.5;
        linear, every output within 0.5 of its target. ``error`` is the mean number
        of wrong steps per sequence (per stream and window with ``window``).
        ``first_perfect_iteration`` is the iteration of the first row with accuracy 1.

    Raises
    ------
    InvalidArgument, InvalidType
        A bad argument, named; NumericalError and KeyboardInterrupt as :func:`fastrnn.train`.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 10, 2))
    >>> Y = np.eye(2)[(X[:, :, 0] > X[:, :, 1]).astype(int)]          # which input is larger, at every step
    >>> model = fastrnn.RNN(2, 16, 2, seed=0)
    >>> result = fastrnn.fit(model, X, Y, epochs=5, batch=16, lr=0.05)
    >>> print(result.history[["epoch", "iteration"]].tail(2).to_string(index=False))
     epoch  iteration
         4         16
         5         20
    >>> bool(result.history["accuracy"].iloc[-1] > 0.9)
    True
    """
    from ._rule_settings import owners

    rule_settings = {k: v for k, v in options.items() if k in owners() and k not in _OPTION_DEFAULTS}
    unknown = sorted(set(options) - set(_OPTION_DEFAULTS) - set(rule_settings))
    if unknown:
        raise InvalidType(f"fit() got an unexpected keyword argument {unknown[0]!r}; the optimizers' own settings are "
                          f"{', '.join(_OPTION_DEFAULTS)}; the online rules' {', '.join(owners())}")
    optimizer_options = {name: options.get(name, default) for name, default in _OPTION_DEFAULTS.items()}
    if (rule is not None and rule != "bptt") or rule_settings:  # an online rule (fastrnn._online_run)
        from ._online_run import fit_online

        return fit_online(model, X, Y, mask, rule=rule, rule_settings=rule_settings, epochs=epochs, batch=batch,
                          optimizer=optimizer, lr=lr, optimizer_options=optimizer_options, clip=clip,
                          clip_value=clip_value, bptt_truncate=bptt_truncate, window=window, shuffle=shuffle, seed=seed,
                          validation=validation, log_every=log_every, csv=csv, save=save, overwrite=overwrite,
                          progress=progress, resume=resume, checkpoint_every=checkpoint_every,
                          checkpoint_seconds=checkpoint_seconds, record=_record)
    given = dict(epochs=epochs, batch=batch, optimizer=optimizer, lr=lr, clip=clip, clip_value=clip_value,
                 bptt_truncate=bptt_truncate, window=window, shuffle=shuffle, seed=seed, log_every=log_every,
                 **optimizer_options)
    for name, value in (("csv", csv), ("save", save), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise InvalidType(f"{name} must be a file path (str or pathlib.Path) or None, got {type(value).__name__}")
    saved = None
    if resume is not None:
        saved = checkpoint.load(resume)
        model, given = _resumed(resume, saved, model, given)
    plan = _Plan.build(model, X, Y, mask, **given)
    if saved is not None and plan.total <= saved[1]["done"]:
        raise InvalidArgument(f"epochs {plan.s['epochs']}: the run saved in {resume} already has {saved[1]['done']} "
                              f"iterations ({saved[1]['done'] / plan.per_epoch:g} epochs); give a larger total")
    val = _validation(model, validation, plan)
    for name, value in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidType(f"{name} must be True or False, got {value!r}")
    check_output_files(csv, save)
    _checks.check_memory(
        f"fitting {model!r} on {plan.N} sequences of {plan.T} steps (batch {plan.B}, window {plan.window})",
        fit_bytes(model.n_in, model.n_out, model.n_hidden, model.layers, model.cell, model.dtype, plan.N, plan.T,
                  plan.B, plan.window, None if val is None else val[0].shape[:2]),
        "choose a smaller hidden size, fewer layers, a smaller batch or window, or fewer or shorter sequences")
    save = check_save(save, overwrite, resume, saved)
    ckpt = checkpoint.plan(checkpoint_every, checkpoint_seconds, plan.s["log_every"], save, csv, overwrite, resume, saved)
    run = _FitRun(model, plan, val, _record)
    if saved is not None:
        run.restore(resume, *saved)
    writer = open_writer(csv, run, overwrite, resume, saved, ckpt, _note)
    return drive(run, run.warmup, run.advance, writer, save, bool(progress), plan.total, "fit", ckpt)


def _resumed(path, saved, model, given):
    """The model and settings of a resumed fit: the saved run's; ``given`` may differ only in epochs and defaults."""
    loaded, state, _ = saved
    old = state["settings"]
    if not _settings.on_arrays(old):
        raise InvalidArgument(f"resume: {path} holds a run of the {old.get('task')} task, not a fit on arrays; resume it "
                              f"with fastrnn.train(resume=...) or fastrnn train --resume {path} --iters N")
    if model is None:
        model = loaded
    elif not isinstance(model, RNN):
        raise InvalidType(f"model must be a fastrnn.RNN (or None with resume: the saved one), got {type(model).__name__}")
    else:
        mine, theirs = ({k: v for k, v in m.config().items() if k not in ("seed", "init_scale", "init")} for m in (model, loaded))
        if mine != theirs:
            raise InvalidArgument(f"model {model!r} differs from the model saved in {path} ({loaded!r}); pass model=None "
                                  f"to continue the saved one")

    def adjust(setting, checked):
        if setting.name == "batch" and old.get("shapes", {}).get("X"):
            return min(checked, old["shapes"]["X"][0])  # as the plan takes it
        if setting.name == "shuffle" and old.get("window") is not None:  # recorded as False with a window
            return False
        return checked

    # fit's signature cannot tell a default from a value given: only values other than its defaults are compared
    changed = {name: value for name, value in given.items() if not _settings.same_value(value, _DEFAULTS[name])}
    checkpoint.refuse_changes(path, old, changed, "epochs", lambda name: _saved_setting(old, name), adjust,
                              f", or start a new run from its weights with fit(fastrnn.RNN.load({str(path)!r}), ...)",
                              label=lambda setting: setting.name)
    return model, {name: value if name == "epochs" else _saved_setting(old, name) for name, value in given.items()}


def _saved_setting(old, name):
    """A saved fit's setting; one saved before the setting existed has its default (fit's; shuffle's as
    recorded: on for whole sequences, off with a window)."""
    if name in old:
        return old[name]
    return _check_shuffle(None, old.get("window")) if name == "shuffle" else _DEFAULTS[name]


#: The optimizers' own settings fit takes as keywords, with their defaults (fastrnn.optimizers.OPTIONS).
_OPTION_DEFAULTS = {h.name: h.default for h in optimizers.OPTIONS}

#: fit's defaults: with ``resume`` an argument left at its default takes the saved run's value.
_DEFAULTS = {name: p.default for name, p in inspect.signature(fit).parameters.items()
             if p.default is not inspect.Parameter.empty} | _OPTION_DEFAULTS


def _check_setting(name, value):
    return _settings.get(name).check(value)


def _check_shuffle(shuffle, window):
    """shuffle as recorded: None -> True for whole sequences; with a window False, and True is refused."""
    if shuffle is None:
        return window is None
    shuffle = _check_setting("shuffle", shuffle)
    if shuffle and window is not None:
        raise InvalidArgument(f"shuffle=True has no meaning with window={window} (every iteration trains every stream, "
                              f"in time order); leave shuffle out, or train whole sequences (window=None)")
    return shuffle


class _Plan:
    """The checked arrays and settings of a fit, and how its epochs are cut into kernel calls."""

    @classmethod
    def build(cls, model, X, Y, mask, **given):
        if not isinstance(model, RNN):
            raise InvalidType(f"model must be a fastrnn.RNN, got {type(model).__name__}")
        self = cls()
        self.model = model
        s = {}
        for name in ("epochs", "optimizer", "lr", "clip", "clip_value", "bptt_truncate", "window", "seed", "log_every",
                     *_OPTION_DEFAULTS):
            s[name] = _check_setting(name, given[name])
        _settings.check_optimizer_options(s)
        s["shuffle"] = _check_shuffle(given["shuffle"], s["window"])
        self.X, self.Y, self.M, _ = engine.prepare(model, X, Y, mask)
        _require_targets(self.M, "mask", "nothing to learn")
        N, T = self.X.shape[0], self.X.shape[1]
        self.N, self.T = N, T
        if s["window"] is None:
            B = min(32, N) if given["batch"] is None else min(_check_setting("batch", given["batch"]), N)
        else:
            if given["batch"] is not None and _check_setting("batch", given["batch"]) != N:
                raise InvalidArgument(f"batch must be left out (or be {N}) with window: every iteration trains all {N} "
                                      f"streams of X, got {given['batch']}")
            B = N
            s["shuffle"] = False
        s["batch"] = B
        self.B, self.s = B, s
        self.window = s["window"]
        if self.window is None:
            self.per_epoch = -(-N // B)
        else:
            self.per_epoch = -(-T // self.window)
        self.total = s["epochs"] * self.per_epoch
        self.shapes = {"X": list(np.shape(X)), "Y": list(np.shape(Y))}
        if mask is not None:
            self.shapes["mask"] = list(np.shape(mask))
        self.rng = np.random.default_rng([s["seed"], 1])
        return self

    def steps(self):
        """The longest sequence one kernel call sees (for the scratch)."""
        return self.T if self.window is None else min(self.window, self.T)

    def epoch_pieces(self):
        """An epoch as kernel calls: (first iteration, X, Y, M, resets, batch, iterations) each."""
        X, Y, M, B = self.X, self.Y, self.M, self.B
        if self.window is None:
            if self.s["shuffle"]:
                order = self.rng.permutation(self.N)
                X, Y = X[order], Y[order]
                M = M[order] if M.shape[0] else M
            full = self.N // B
            out = []
            if full:
                out.append((0, X[: full * B], Y[: full * B], M[: full * B] if M.shape[0] else M, None, B, full))
            if self.N % B:
                lo = full * B
                out.append((full, X[lo:], Y[lo:], M[lo:] if M.shape[0] else M, None, self.N - lo, 1))
            return out
        if not hasattr(self, "_windows"):
            self._windows = self._cut_windows()
        return self._windows

    def _cut_windows(self):
        """Windows of the streams laid out for the kernel: window w is rows w*B .. (w+1)*B - 1."""
        X, Y, M, B, K, T = self.X, self.Y, self.M, self.B, self.window, self.T
        full = T // K
        out = []

        def cut(A, t0, t1, n):  # (B, T, ...) steps t0..t1 as n windows of (t1 - t0) / n steps, window-major
            part = A[:, t0:t1]
            k = (t1 - t0) // n
            return np.ascontiguousarray(part.reshape((B, n, k) + A.shape[2:]).swapaxes(0, 1)).reshape((n * B, k) + A.shape[2:])

        if full:
            resets = np.zeros(full, dtype=np.int64)
            resets[0] = 1
            out.append((0, cut(X, 0, full * K, full), cut(Y, 0, full * K, full),
                        cut(M, 0, full * K, full) if M.shape[0] else M, resets, B, 1 * full))
        if T % K:
            resets = np.array([0 if full else 1], dtype=np.int64)
            out.append((full, cut(X, full * K, T, 1), cut(Y, full * K, T, 1), cut(M, full * K, T, 1) if M.shape[0] else M,
                        resets, B, 1))
        return out


def fit_bytes(n_in, n_out, hidden, layers, cell, dtype, N, T, batch, window, val_shape=None):
    """Bytes a fit allocates at least besides its data arrays (exact Python integers: no overflow).

    Counted: the parameters eight times over (the model, the two optimizer state
    vectors, the copies of all three a Ctrl-C rewinds to, the kernel's transposed
    copy and gradient), the hidden states and their gradients of one kernel call
    (``batch`` sequences of T steps, or all N streams of one ``window``), and for
    validation its states, gradients and outputs over all (N_val, T_val) steps at once.
    """
    itemsize = np.dtype(dtype).itemsize
    weights = 8 * _checks.model_bytes(n_in, hidden, n_out, layers, itemsize, cell)
    B, steps = (N, min(window, T)) if window is not None else (min(batch or 32, N), T)
    states = 2 * layers * B * steps * hidden * itemsize
    val = 0 if val_shape is None else val_shape[0] * val_shape[1] * (3 * layers * hidden + n_out) * itemsize
    return weights + states + val


def _validation(model, validation, plan):
    if validation is None:
        return None
    if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
        raise InvalidType("validation must be (X_val, Y_val) or (X_val, Y_val, mask_val), got "
                          f"{type(validation).__name__}{'' if not isinstance(validation, (tuple, list)) else ' of ' + str(len(validation))}")
    try:
        Xv, Yv, Mv, _ = engine.prepare(model, *validation)
    except (InvalidArgument, InvalidType) as exc:
        raise type(exc)(f"validation: {exc} (X_val, Y_val, mask_val take the places of X, Y, mask)") from None
    _require_targets(Mv, "validation: mask_val", "nothing to score (its loss would read 0 and its accuracy 1)")
    return Xv, Yv, Mv


def _require_targets(M, name, what):
    """Refuse a mask (prepared: empty for every step) that marks no step as having a target."""
    if M.shape[0] and not M.any():
        raise InvalidArgument(f"{name} is all zeros: no step has a target, so there is {what}; mark the steps with "
                              f"targets with 1")


def step_errors(model, yhat, Y, M):
    """Wrong target steps per sequence and target steps per sequence, by the head's rule (as the kernel counts)."""
    if model.head == "softmax":
        wrong = yhat.argmax(axis=2) != Y.argmax(axis=2)
    elif model.head == "sigmoid":
        wrong = ((yhat > 0.5) != (Y > 0.5)).any(axis=2)
    else:
        wrong = (np.abs(yhat - Y) >= 0.5).any(axis=2)
    if M.shape[0]:
        return (wrong & (M != 0)).sum(axis=1), M.sum(axis=1)
    return wrong.sum(axis=1), np.full(Y.shape[0], Y.shape[1])


class _FitRun:
    """What :func:`fastrnn.training.drive` needs of a run, for arrays (see :class:`fastrnn.training._Run`)."""

    def __init__(self, model, plan, val, record):
        self.model, self.plan, self.val = model, plan, val
        s = plan.s
        self.s = dict(task=_settings.ARRAYS, data="arrays", shapes=plan.shapes, n_in=model.n_in, n_out=model.n_out,
                      hidden=model.n_hidden, layers=model.layers, activation=model.activation, head=model.head,
                      dtype=model.dtype.name, **s, iters=plan.total, **(record or {}), versions=versions())
        if val is not None:
            self.s["shapes"]["X_val"] = list(val[0].shape)
        self.K = -1 if s["bptt_truncate"] is None else s["bptt_truncate"]
        self.kind = optim.OPTIMIZERS[s["optimizer"]]
        self.hyper = optim.hyper_from(s)
        self.opt_state = params.aligned_zeros((2, model.n_params), model.dtype)
        self.clip_norm = 0.0 if s["clip"] is None else s["clip"]
        self.clip_value = 0.0 if s["clip_value"] is None else s["clip_value"]
        B, chunk = plan.B, s["log_every"]
        # the kernel of the fit's full batches (dispatch.choose_kernel; recorded in the JSON)
        self.kernel = engine.run_kernel(model, plan.steps(), B, (self.kind, self.K, self.clip_norm, self.clip_value))
        self.buf = params.aligned_empty(engine.chunk_scratch_size(model, plan.steps(), B, self.kernel), model.dtype)
        self.hstate = engine.new_state(model, B)
        n = min(chunk, plan.per_epoch)
        self.losses, self.norms = np.empty(n), np.empty(n)
        self.errors = np.empty(n * B, dtype=np.int64)
        self.columns = list(COLUMNS) + FIT_COLUMNS + (VAL_COLUMNS if val is not None else [])
        if val is not None:
            self.vbuf = np.empty(engine.scratch_size(model, val[0].shape[1], val[0].shape[0]), dtype=model.dtype)
        self.tracker = _FirstPerfect()
        self.rows, self.status, self.error, self.done = [], "completed", None, 0
        self.epoch, self.pieces, self.at = 0, [], 0  # the epoch's kernel calls, and the iteration within the epoch
        self.epoch_rng = None  # the shuffle generator's state before this epoch's permutation was drawn
        self.resumable, self.seconds_before, self.csv = True, 0.0, None
        self._kept = None  # snapshot's copies of the weights, optimizer state and carried state
        self._checksum = None

    def remaining(self):
        return self.status == "completed" and self.done < self.plan.total

    def snapshot(self):
        """Everything a chunk changes, before it: :func:`drive` rewinds to it when a Ctrl-C cuts the chunk.

        A chunk may be several kernel calls (an epoch's full batches, then its partial
        one), so the weights, the optimizer state and the carried state are copied too
        (into buffers kept for the run; small next to the chunk's work).
        """
        arrays = (self.model.theta, self.opt_state, self.hstate)
        if self._kept is None:
            self._kept = tuple(a.copy() for a in arrays)
        else:
            for keep, a in zip(self._kept, arrays):
                np.copyto(keep, a)
        return dict(done=self.done, epoch=self.epoch, at=self.at, pieces=self.pieces, epoch_rng=self.epoch_rng,
                    rng=self.plan.rng.bit_generator.state, rows=len(self.rows), first=self.tracker.first_perfect_iteration)

    def rewind(self, state):
        for keep, a in zip(self._kept, (self.model.theta, self.opt_state, self.hstate)):
            np.copyto(a, keep)
        self.done, self.epoch, self.at, self.pieces = state["done"], state["epoch"], state["at"], state["pieces"]
        self.epoch_rng, self.plan.rng.bit_generator.state = state["epoch_rng"], state["rng"]
        del self.rows[state["rows"]:]
        self.tracker.first_perfect_iteration = state["first"]  # (drive has set the status: "interrupted")

    def checksum(self):
        """CRC-32 of the arrays trained on (X, Y, mask and the validation arrays, with their shapes)."""
        if self._checksum is None:
            crc = 0
            for a in (self.plan.X, self.plan.Y, self.plan.M) + (self.val or ()):
                crc = zlib.crc32(repr(a.shape).encode(), crc)
                crc = zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8), crc)
            self._checksum = crc & 0xFFFFFFFF
        return self._checksum

    def checkpoint_state(self, train_seconds):
        """What :mod:`fastrnn.checkpoint` saves: (JSON-able state, arrays), at a row's end."""
        settings = {k: v for k, v in self.s.items() if k != "versions"}
        # mid-epoch the permutation is drawn again from the generator's state at the epoch's start
        rng = self.plan.rng.bit_generator.state if self.at == 0 else self.epoch_rng
        source = dict(kind="arrays", epoch=self.epoch, at=self.at, rng=rng, checksum=self.checksum())
        state = dict(settings=settings, done=int(self.done), source=source,
                     tracker=dict(first_perfect_iteration=self.tracker.first_perfect_iteration), rows=self.rows,
                     columns=self.columns, train_seconds=float(train_seconds), csv=self.csv,
                     blas_threads=blas_threads_of(self))
        return state, dict(opt_state=self.opt_state, hstate=self.hstate)

    def restore(self, path, model, state, arrays):
        """Continue the fit saved in ``path`` (``checkpoint.load``'s model, state, arrays)."""
        source = state.get("source")
        saved_sum = source.get("checksum") if isinstance(source, dict) else None
        if saved_sum != self.checksum():
            raise InvalidArgument(f"the arrays (X, Y, mask, validation) differ from those the run in {path} was trained "
                                  f"on (checksum {self.checksum():08x}, saved {_hex(saved_sum)}); a resume continues on "
                                  f"the same arrays")
        unfit = InvalidArgument(f"the training state in {path} does not fit its settings and arrays; it cannot be "
                                f"resumed")
        if (source.get("kind") != "arrays" or arrays.get("opt_state") is None or arrays.get("hstate") is None
                or arrays["opt_state"].shape != self.opt_state.shape or arrays["hstate"].shape != self.hstate.shape
                or state.get("columns") != self.columns or not isinstance(state.get("tracker"), dict)
                or not isinstance(state.get("rows", []), list)):
            raise unfit
        epoch, at, done = source.get("epoch"), source.get("at"), state["done"]
        if not (isinstance(epoch, int) and isinstance(at, int) and 0 <= at < self.plan.per_epoch
                and done == (epoch - (at > 0)) * self.plan.per_epoch + at):
            raise unfit
        try:
            self.plan.rng.bit_generator.state = source["rng"]
        except (KeyError, TypeError, ValueError):
            raise unfit from None
        self.model.theta[:] = model.theta
        self.opt_state[...] = arrays["opt_state"]
        self.hstate[...] = arrays["hstate"]
        self.done, self.epoch, self.at = done, epoch, at
        if self.at:
            self.epoch_rng = source["rng"]
            self.pieces = self.plan.epoch_pieces()  # the epoch's permutation, drawn again
        self.tracker.first_perfect_iteration = state["tracker"].get("first_perfect_iteration")
        self.rows = [dict(r) for r in state.get("rows", [])]
        self.seconds_before = float(state.get("train_seconds", 0.0))
        self.blas_before = state.get("blas_threads")  # the first leg's BLAS threads: the same sums
        for key, value in state["settings"].items():  # what the first leg recorded beyond the settings (data_file)
            self.s.setdefault(key, value)

    def _call(self, X, Y, M, resets, batch, n, out):
        losses, norms, errors = out
        return engine.train_chunk(self.model, self.K, X, Y, M, batch, self.kind, self.s["lr"], self.hyper,
                                  self.opt_state, self.done, self.clip_norm, self.clip_value, self.hstate, resets,
                                  self.buf, losses[:n], norms[:n], errors[: n * batch], kernel=self.kernel)

    def warmup(self):
        engine.compile_note(self.model, self.plan.steps(), self.plan.B, kernel=self.kernel)
        # zero iterations at the full batch: the kernel the full batches take (self.kernel) is compiled or loaded now
        _, X, Y, M, resets, batch, _ = self.plan.epoch_pieces()[0] if self.plan.window else (None, self.plan.X, self.plan.Y, self.plan.M, None, self.plan.B, 1)
        self._call(X[:batch], Y[:batch], M[:batch] if M.shape[0] else M, resets, batch, 0,
                   (self.losses, self.norms, self.errors))

    def advance(self, clock):
        """Train up to log_every iterations, never past the epoch's end; return (row or None, done)."""
        plan = self.plan
        if self.at == 0:
            self.epoch += 1
            self.epoch_rng = plan.rng.bit_generator.state
            self.pieces = plan.epoch_pieces()
        want = min(self.s["log_every"], plan.per_epoch - self.at)
        n_done, loss_sum, norm_sum, wrong, targets, seqs = 0, 0.0, 0.0, 0, 0, 0
        while n_done < want:
            first, X, Y, M, resets, batch, count = next(p for p in self.pieces if p[0] <= self.at < p[0] + p[6])
            j = self.at - first
            n = min(count - j, want - n_done)
            rows = slice(j * batch, (j + n) * batch)
            Mi = M[rows] if M.shape[0] else M
            done = self._call(X[rows], Y[rows], Mi, None if resets is None else resets[j : j + n], batch, n,
                              (self.losses, self.norms, self.errors))
            if done:
                loss_sum += float(self.losses[:done].sum())
                norm_sum += float(self.norms[:done].sum())
                wrong += int(self.errors[: done * batch].sum())
                targets += int(Mi[: done * batch].sum()) if M.shape[0] else done * batch * X.shape[1]
                seqs += done * batch
            n_done += done
            self.done += done
            self.at += done
            if done < n:
                self.status = "diverged"
                self.error = divergence_error(self.s, self.done + 1, flags=False)
                if self.done == 0:  # no update has been made: the numbers themselves overflow
                    self.error = self._overflow_at_start()
                break
        if self.at == plan.per_epoch:
            self.at = 0
        if n_done == 0:
            return None, 0
        accuracy = 1.0 - wrong / targets if targets else 1.0  # no target step in the row: none wrong
        row = dict(iteration=self.done, samples=self._samples(), loss=loss_sum / n_done, error=wrong / seqs,
                   accuracy=accuracy, digit_accuracy=accuracy, grad_norm=norm_sum / n_done,
                   learning_rate=self.s["lr"], elapsed_s=self.seconds_before + clock(), epoch=self.epoch)
        if self.val is not None:
            row.update(self._validate())
        if targets and accuracy == 1.0 and self.tracker.first_perfect_iteration is None:
            self.tracker.first_perfect_iteration = self.done
        self.rows.append(row)
        return row, n_done

    def _overflow_at_start(self):
        """The message for a loss or gradient that is not finite at the first iteration, before any update."""
        plan, model = self.plan, self.model
        with np.errstate(over="ignore"):
            big = [float(np.max(np.abs(a))) if a.size else 0.0 for a in (plan.X, plan.Y, model.theta)]
        return (f"the loss or its gradient is NaN or infinite at iteration 1, before any update, so neither lr nor clip "
                f"can help: the numbers overflow {model.dtype.name} arithmetic (largest |X| {big[0]:.3g}, largest |Y| "
                f"{big[1]:.3g}, largest initial weight {big[2]:.3g}); rescale X and Y to moderate values (unit variance, "
                f"say){' or use float64' if model.dtype == np.float32 else ''}")

    def _samples(self):
        """Sequences (streams x windows) trained so far."""
        plan = self.plan
        epochs, at = divmod(self.done, plan.per_epoch)
        if plan.window is None:
            return epochs * plan.N + min(at * plan.B, plan.N)
        return self.done * plan.B

    def _validate(self):
        Xv, Yv, Mv = self.val
        h0 = engine.prepare(self.model, Xv[:1])[3]
        loss, _, _ = engine.loss_and_grads(self.model, Xv, Yv, Mv, h0, -1, self.vbuf)
        if self.plan.window is not None:
            loss = loss * self.plan.window / Xv.shape[1]
        yhat, _ = engine.forward(self.model, Xv, h0)
        wrong, targets = step_errors(self.model, yhat, Yv, Mv)
        total = targets.sum()
        return dict(val_loss=float(loss), val_accuracy=float(1.0 - wrong.sum() / total) if total else 1.0)


def _hex(value):
    return f"{value:08x}" if isinstance(value, int) else "none"


class _FirstPerfect:
    first_perfect_iteration = None


#: The arrays ``fastrnn train --data FILE.npz`` reads: name -> (rank, what its axes are).
DATA_KEYS = {
    "X": (3, "(sequences, steps, inputs)"),
    "Y": (3, "(sequences, steps, outputs)"),
    "mask": (2, "(sequences, steps)"),
    "X_val": (3, "(sequences, steps, inputs)"),
    "Y_val": (3, "(sequences, steps, outputs)"),
    "mask_val": (2, "(sequences, steps)"),
}

_SAVE_HINT = "save one with numpy.savez(FILE, X=X, Y=Y[, mask=mask, X_val=..., Y_val=..., mask_val=...])"


def load_arrays(path):
    """The arrays of a .npz file for ``fastrnn train --data`` as a dict of float64 arrays.

    Raises InvalidArgument with one line naming the file, the key and the fix:
    a missing file or a folder, a file numpy cannot read as .npz, an unknown key,
    X or Y missing, X_val without Y_val (or the reverse), object or non-numeric
    arrays, a wrong rank, N or T that differ between arrays, inputs or outputs
    that differ between training and validation, empty arrays, NaN or infinity,
    a mask of other values than 0 and 1.
    """
    from pathlib import Path

    where = f"--data {path}"
    p = Path(path)
    if p.is_dir():
        raise InvalidArgument(f"{where} is a folder; give a .npz file ({_SAVE_HINT})")
    kind = _files.not_regular(p)
    if kind is not None:
        raise InvalidArgument(f"{where} is {kind}, not a regular file; give a .npz file ({_SAVE_HINT})")
    if not p.is_file():
        raise InvalidArgument(f"{where}: no such file; {_SAVE_HINT}")
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as exc:  # numpy raises many kinds for foreign bytes
        raise InvalidArgument(f"{where} is not a .npz file numpy can read ({type(exc).__name__}); {_SAVE_HINT}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise InvalidArgument(f"{where} holds one array (.npy), not named arrays; {_SAVE_HINT}")
    with npz:
        headers = npz_headers(p)
        _checks.check_memory(f"{where} ({_shapes_text(headers)})",
                             sum(_count(shape) * (dtype.itemsize + 8) for shape, dtype in headers.values()),
                             "give a smaller file (fewer or shorter sequences)")
        unknown = [k for k in npz.files if k not in DATA_KEYS]
        if unknown:
            raise InvalidArgument(f"{where} holds an array named {unknown[0]!r} that fastrnn does not read; name the arrays "
                                  f"{', '.join(DATA_KEYS)}")
        for key in ("X", "Y"):
            if key not in npz.files:
                raise InvalidArgument(f"{where} lacks the array {key}; {_SAVE_HINT}")
        if ("X_val" in npz.files) != ("Y_val" in npz.files) or ("mask_val" in npz.files and "X_val" not in npz.files):
            raise InvalidArgument(f"{where}: X_val and Y_val go together (and mask_val needs them); give both or neither")
        out = {}
        for key in npz.files:
            try:
                a = npz[key]
            except ValueError:  # an object array: numpy refuses to unpickle it
                raise InvalidArgument(f"{where}: {key} holds Python objects; save it as a numeric array "
                                      f"(np.asarray({key}, dtype=float))") from None
            except Exception as exc:  # a damaged member: zlib, zipfile, header parsing errors of any kind
                raise InvalidArgument(f"{where}: the array {key} cannot be read ({type(exc).__name__}); save the file "
                                      f"again") from None
            if not isinstance(a, np.ndarray):  # a zip member not written by numpy
                raise InvalidArgument(f"{where}: {key} is not a numpy array; {_SAVE_HINT}")
            if a.dtype.kind not in "biuf":
                raise InvalidArgument(f"{where}: {key} holds {a.dtype} values; save it as a numeric array "
                                      f"(np.asarray({key}, dtype=float))")
            rank, axes = DATA_KEYS[key]
            if a.ndim != rank:
                hint = "; one sequence: add an axis with a[None]" if a.ndim == rank - 1 else ""
                raise InvalidArgument(f"{where}: {key} has shape {a.shape} but must be {rank}-D {axes}{hint}")
            if a.size == 0:
                raise InvalidArgument(f"{where}: {key} is empty (shape {a.shape}); give at least one sequence of one step")
            a = a.astype(np.float64)
            if not np.isfinite(a).all():
                first = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
                raise InvalidArgument(f"{where}: {key} holds NaN or infinite values (first at index {first}); clean it first")
            out[key] = a
    for x, y, m in (("X", "Y", "mask"), ("X_val", "Y_val", "mask_val")):
        if x not in out:
            continue
        for other in (y, m):
            if other in out and out[other].shape[:2] != out[x].shape[:2]:
                raise InvalidArgument(f"{where}: {other} has {out[other].shape[0]} sequences of {out[other].shape[1]} steps "
                                      f"but {x} has {out[x].shape[0]} of {out[x].shape[1]}; they must agree")
        if m in out and not np.isin(out[m], (0.0, 1.0)).all():
            raise InvalidArgument(f"{where}: {m} must hold only 0 (no target) and 1 (target)")
    if "X_val" in out:
        for v, t, axis in (("X_val", "X", "inputs"), ("Y_val", "Y", "outputs")):
            if out[v].shape[2] != out[t].shape[2]:
                raise InvalidArgument(f"{where}: {v} has {out[v].shape[2]} {axis} per step but {t} has {out[t].shape[2]}; "
                                      f"they must agree")
    return out


def npz_headers(path):
    """The shape and dtype of every array of a .npz file, read from the members' .npy headers.

    Nothing else is read or decompressed, so a small compressed file whose arrays
    would take gigabytes can be refused before numpy allocates them. Members whose
    header cannot be read are left out (loading them reports the damage).
    """
    import zipfile

    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                try:
                    with zf.open(info) as fh:
                        version = np.lib.format.read_magic(fh)
                        read = {(1, 0): np.lib.format.read_array_header_1_0,
                                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                        if read is None:
                            continue
                        shape, _, dtype = read(fh)
                except Exception:  # a damaged member or header: loading it says so
                    continue
                if isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape):
                    out[key] = (shape, np.dtype(dtype))
    except Exception:  # not a zip file: np.load has said what it is
        return {}
    return out


def _count(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _shapes_text(headers):
    return ", ".join(f"{k} {tuple(shape)} {dtype}" for k, (shape, dtype) in headers.items())


def _check_file_memory(path, headers, value):
    """Refuse a --data run whose file and buffers cannot fit in memory, from the arrays' headers, before loading."""
    X, Y = headers.get("X"), headers.get("Y")
    if X is None or Y is None or len(X[0]) != 3 or len(Y[0]) != 3:
        return  # loading names what is missing or malformed
    (N, T, I), O = X[0], Y[0][2]
    itemsize = np.dtype(value["dtype"]).itemsize
    train = sum(_count(headers[k][0]) for k in ("X", "Y", "mask") if k in headers)
    every = sum(_count(shape) for shape, _ in headers.values())
    # read as float64, then copied once into the model's dtype, and once more for shuffled orders or windows
    data = every * 8 + (every * itemsize if itemsize != 8 else 0)
    data += train * itemsize if value["window"] is not None or value["shuffle"] is not False else 0
    val = headers["X_val"][0][:2] if "X_val" in headers and len(headers["X_val"][0]) == 3 else None
    need = data + fit_bytes(I, O, value["hidden"], value["layers"], value["cell"], value["dtype"], N, T, value["batch"],
                            value["window"], val)
    _checks.check_memory(
        f"--data {path} ({_shapes_text(headers)}) with --hidden {value['hidden']}, --layers {value['layers']}, "
        f"--batch {value['batch'] or min(32, N) if value['window'] is None else N}"
        + ("" if value["window"] is None else f", --window {value['window']}"),
        need, "choose a smaller --hidden, --layers, --batch or --window, or give less data")


def infer_head(Y, mask=None):
    """The head for targets Y: one-hot rows -> softmax, values in {0, 1} -> sigmoid, else linear.

    Only the steps the mask keeps (mask 1) count: padding steps marked 0 are never
    read. A single output is never one-hot. Targets that two heads read equally
    well are refused (InvalidArgument, naming ``--head``) rather than guessed:
    rows that are one-hot except some all-zero ones (softmax with unmasked padding,
    or sigmoid labels where some steps have none), and rows in [0, 1] that sum to 1
    without being one-hot (distributions for softmax, or values for linear).
    """
    Y = np.asarray(Y)
    rows = Y.reshape(-1, Y.shape[-1]) if mask is None else Y[np.asarray(mask) != 0]
    binary = bool(np.isin(rows, (0.0, 1.0)).all())
    sums = rows.sum(axis=1)
    one_hot = sums == 1.0
    if binary and Y.shape[-1] > 1 and rows.shape[0] and one_hot.all():
        return "softmax"
    if binary and Y.shape[-1] > 1 and one_hot.any() and (sums <= 1.0).all():
        zero = int((sums == 0.0).sum())
        raise InvalidArgument(
            f"the head cannot be inferred from Y: its rows are one-hot except {zero} all-zero row{'s' * (zero != 1)} "
            f"(of {rows.shape[0]} with a target), which fits softmax with unmasked padding and sigmoid alike; pass "
            f"--head softmax (and mark the padding steps 0 in mask) or --head sigmoid"
        )
    if binary:
        return "sigmoid"
    if (Y.shape[-1] > 1 and rows.shape[0] and (rows >= 0.0).all() and (rows <= 1.0).all()
            and np.allclose(sums, 1.0, rtol=0.0, atol=1e-9)):
        raise InvalidArgument(
            "the head cannot be inferred from Y: its rows lie in [0, 1] and sum to 1 without being one-hot, which fits "
            "softmax (target distributions) and linear (values) alike; pass --head softmax or --head linear"
        )
    return "linear"


def fit_file(path, *, csv=None, save=None, overwrite=False, progress=False, resume=None, checkpoint_every=None,
             checkpoint_seconds=None, _note=None, **given):
    """``fastrnn train --data FILE.npz``: build a model from the settings and :func:`fit` the file's arrays.

    ``given`` maps setting names to values (None: the default, :data:`fastrnn.settings.DATA_DEFAULTS`
    where a task would choose it). The model: inputs and outputs from X and Y, the
    head from ``head`` or :func:`infer_head`. Settings that belong to the tasks
    (``iters``, the tasks' parameters, ``log_spectrum``) are refused.

    ``resume``: continue the fit saved in that model file to ``epochs`` epochs in
    total (``--resume MODEL.npz --epochs N``); the settings given must equal the
    saved run's, and the file's arrays the saved run's (their checksum).
    """
    for name, value in given.items():
        if value in (None, False):
            continue
        if name == "iters":
            raise InvalidArgument("--iters does not apply to --data; give --epochs (passes over the arrays)")
        setting = _settings.get(name)
        if setting in _settings.DATA or setting in _settings.TRAINING and name not in ("log_spectrum", "lr_step", "lr_gamma"):
            continue
        if name == "rule" or name in _rule_owners():  # the rule and its settings: fit's rule, **rule_settings
            continue
        raise InvalidArgument(f"{setting.flag} does not apply to --data (it belongs to the tasks); leave it out")
    if given.get("shuffle") and given.get("window") is not None:
        raise _shuffle_with_window(given["window"])
    if resume is not None:
        return _resume_file(path, resume, given, dict(csv=csv, save=save, overwrite=overwrite, progress=progress,
                                                      checkpoint_every=checkpoint_every,
                                                      checkpoint_seconds=checkpoint_seconds, _note=_note))
    value = {}
    for setting in _settings.TRAINING + _settings.DATA:
        v = given.get(setting.name)
        if v is None and setting.name not in ("batch", "shuffle"):  # None: min(32, N) (every stream with --window),
            # and shuffle's per layout (see fit)
            v = _settings.DATA_DEFAULTS.get(setting.name) if setting.default == _settings.PER_TASK else setting.default
        value[setting.name] = v
    for name in ("hidden", "layers", "activation", "dtype", "init_scale", "seed", "cell", "forget_bias"):
        value[name] = _check_setting(name, value[name])
    for name in ("batch", "window"):
        if value[name] is not None:
            value[name] = _check_setting(name, value[name])
    if os.path.isfile(path):
        _check_file_memory(path, npz_headers(path), value)
    arrays = load_arrays(path)
    X, Y, M = arrays["X"], arrays["Y"], arrays.get("mask")
    inferred = value["head"] is None
    if inferred:
        try:
            value["head"] = infer_head(Y, M)
        except InvalidArgument as exc:
            raise InvalidArgument(f"--data {path}: {exc}") from None
    head = value["head"] = _check_setting("head", value["head"])
    for name in ("hidden", "layers", "activation", "dtype", "init_scale", "seed", "cell", "forget_bias", "init"):
        value[name] = _check_setting(name, value[name])
    if value["init_from"] is not None:
        value["init_from"] = _check_setting("init_from", value["init_from"])
    model = build_model(X.shape[2], Y.shape[2], head, value)
    model.metadata = {"task": _settings.ARRAYS, "data_file": os.path.abspath(path)}
    validation = _file_validation(arrays)
    kwargs = {k: value[k] for k in ("epochs", "batch", "optimizer", "lr", "clip", "clip_value", "bptt_truncate",
                                    "window", "seed", "log_every", "shuffle", *_OPTION_DEFAULTS)}
    online = {k: given[k] for k in _rule_owners() if given.get(k) is not None}
    if given.get("rule") is not None:
        online["rule"] = _check_setting("rule", given["rule"])
    try:
        return fit(model, X, Y, M, validation=validation, csv=csv, save=save, overwrite=overwrite, progress=progress,
                   checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds, _note=_note,
                   _record=dict(data_file=os.path.abspath(path), init_scale=value["init_scale"], init_from=value["init_from"],
                                forget_bias=value["forget_bias"], head_inferred=inferred, init=value["init"]), **kwargs,
                   **online)
    except (InvalidArgument, InvalidType) as exc:
        if str(exc).startswith(("X", "Y", "mask", "validation")):
            hint = _inferred(Y, M) if "head" in str(exc) and given.get("head") else None
            raise type(exc)(f"--data {path}: {exc}" + (f" (or leave out --head: it is inferred as {hint})" if hint else "")) from None
        raise


def _rule_owners():
    from ._rule_settings import owners

    return owners()


def resumed_data_file(resume, state):
    """The --data file a saved fit was trained on, for ``fastrnn train --resume MODEL`` without --data.

    Runs record it absolute. A relative record (older runs) is taken relative to the
    current folder, else to the model file's folder; where neither holds it, the
    message says to give --data.
    """
    recorded = state["settings"].get("data_file")
    if recorded is None:
        raise InvalidArgument(f"--resume {resume}: the run was fitted on arrays given to fastrnn.fit; save them with "
                              f"numpy.savez(FILE, X=X, Y=Y, ...) and give --data FILE")
    if os.path.isabs(recorded):
        candidates = [recorded]
    else:
        candidates = [recorded, os.path.join(os.path.dirname(os.fspath(resume)), recorded)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    where = "" if os.path.isabs(recorded) else " (a path relative to the folder the run was started in; not found here nor beside the model)"
    raise InvalidArgument(f"--resume {resume}: the run's data file {recorded}{where} does not exist; give the file it was "
                          f"trained on with --data FILE")


def _shuffle_with_window(window):
    return InvalidArgument(f"--shuffle has no meaning with --window {window} (every iteration trains every stream, in "
                           f"time order); leave --shuffle out, or train whole sequences without --window")


def _file_default(name, model):
    """The value of a setting a fit's file does not record: the model's own (its cell), else the default."""
    config = model.config()
    if name in ("cell", "forget_bias", "layers", "activation", "head", "dtype"):
        return config[name]
    if name in _DEFAULTS:
        return _DEFAULTS[name]
    setting = _settings.get(name)
    return _settings.DATA_DEFAULTS.get(name) if setting.default == _settings.PER_TASK else setting.default


def _inferred(Y, M):
    """The head inferred from Y, or None where the targets are ambiguous."""
    try:
        return infer_head(Y, M)
    except InvalidArgument:
        return None


def _file_validation(arrays):
    if "X_val" not in arrays:
        return None
    return (arrays["X_val"], arrays["Y_val"]) + (("mask_val" in arrays) * (arrays.get("mask_val"),))


def _resume_file(path, resume, given, files):
    """``fastrnn train --data FILE --resume MODEL --epochs N``: the saved run's settings, checked against those given."""
    saved_model, state, _ = checkpoint.load(resume)
    old = state["settings"]
    if not _settings.on_arrays(old):
        raise InvalidArgument(f"--resume {resume} holds a run of the {old.get('task')} task, not a fit on arrays; leave "
                              f"out --data to resume it")
    if given.get("epochs") is None:
        done = state["done"]
        per_epoch = old["iters"] / old["epochs"] if old.get("epochs") else float("nan")
        raise InvalidArgument(f"resuming {resume} needs --epochs N, the total number of epochs to reach (it has {done} "
                              f"iterations, {done / per_epoch:g} epochs)")

    def adjust(setting, checked):
        if setting.kind == "flag" and checked is False and not setting.default:
            return checkpoint.SKIP  # a switch left off: not given
        if setting.name == "batch" and old.get("shapes", {}).get("X"):
            return min(checked, old["shapes"]["X"][0])  # as the plan takes it
        if setting.name == "shuffle" and old.get("window") is not None:  # recorded as False with a window
            if checked:
                raise _shuffle_with_window(old["window"])
            return checkpoint.SKIP
        return checked

    checkpoint.refuse_changes(resume, old, given, "epochs", lambda name: _file_default(name, saved_model), adjust)
    arrays = load_arrays(path)
    try:
        return fit(None, arrays["X"], arrays["Y"], arrays.get("mask"), validation=_file_validation(arrays),
                   epochs=given["epochs"], resume=resume, _record=dict(data_file=os.path.abspath(path)), **files)
    except (InvalidArgument, InvalidType) as exc:
        if str(exc).startswith("the arrays"):
            raise type(exc)(f"--data {path}: {exc}") from None
        raise
