"""Exact resume: everything a training run needs to continue, in its model file.

``fastrnn train --save m.npz`` writes, beside the model (``theta``, ``meta``, which
:meth:`fastrnn.RNN.load` reads as before), npz keys that ``RNN.load`` ignores:

``train_state``
    JSON: the format tag, the run's settings, the update count, the data source's
    state (:meth:`state` of the source: the random generator of the sampling tasks,
    the text walk's pointer), the metrics trackers' state (the accuracy window's
    streak and first perfect iteration, the text's smoothed loss), the rows so far,
    the training seconds so far and the run's CSV.
``train_opt_state``, ``train_hstate``, ``train_recent``
    The optimizer state (2, P), the carried recurrent state (flat), the accuracy
    window's last errors.
``train_online.*``
    A run with an online rule: its :class:`fastrnn.online.OnlineState` (the rule's
    arrays, the streams' hidden states and random generators, the optimizer's buffers).

A run resumed from such a file (``train(resume=PATH, iters=N)``) continues as if
it had never stopped: the weights and every row (elapsed time aside) equal those
of one uninterrupted run of N iterations, when the first run stopped at a
multiple of ``log_every`` (a stop elsewhere gives an extra row there).

Anything with a source (``state()``/``restore()``) and the arrays above can use
:func:`save` and :func:`load`. A fit on arrays (``fastrnn.fit(..., save=PATH)``,
``fastrnn train --data``) saves the same keys (``train_recent`` aside): its
``train_state`` holds ``"task": "data"`` in the settings and, as its source, the
epoch, the iteration within it, the shuffle generator's state at the epoch's start
and a CRC-32 of the arrays (a resume on other arrays is refused); the first
perfect iteration is its tracker. ``fit(None, X, Y, resume=PATH, epochs=N)``
continues it (:func:`fastrnn.fit`).

Checkpoints (``checkpoint_every=N``, ``fastrnn train --checkpoint-every N``; and/or
``checkpoint_seconds``) are such files too, written while the run goes, durably
(a temporary file in the same folder, fsync, rename, fsync of the folder), to
``<save stem>.ckpt.npz`` or, without ``save``, ``<csv stem>.ckpt.npz``. Their
``train_state`` adds ``checkpoint``: the iteration it was taken at and the run's
``save`` path. Every file of a run with checkpoints records them
(``checkpoints``: every, seconds), so that a resume goes on taking them. A
resume from a checkpoint cuts the rows its CSV got after it (the CSV is written
first, the checkpoint after the row).
"""

import json
import os
import time
from pathlib import Path

import numpy as np

from . import _checks
from . import settings as _settings
from .exceptions import InvalidArgument, ModelFileError

FORMAT = "fastrnn-train-state"
VERSION = 1
ARRAYS = ("opt_state", "hstate", "recent")


def save(path, model, state, arrays, durable=False):
    """Write ``model`` to ``path`` with the training ``state`` (JSON-able dict) and ``arrays``
    (``durable``: synced to disk, :meth:`fastrnn.RNN.save`)."""
    doc = dict(format=FORMAT, version=VERSION, **state)
    extra = {"train_state": np.array(json.dumps(doc))}
    extra.update({f"train_{k}": np.asarray(v) for k, v in arrays.items()})
    return model.save(path, extra=extra, durable=durable)


def load(path):
    """(model, state dict, arrays dict) from a file written by :func:`save`.

    Raises ModelFileError (one line, naming the file) for a file that is not a
    model, or a model saved without training state.
    """
    from .model import META_LIMIT, RNN, check_stored_size, stored_header

    model = RNN.load(path)  # refuses what is not a model at all
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "train_state" not in data.files:
                raise ModelFileError(
                    f"model file {path!r} holds no training state (it was saved by RNN.save, or by a run without "
                    f"--save); it cannot be resumed: start a new run from its weights with --init-from {path}"
                )
            check_stored_size(path, data, "train_state", META_LIMIT, "its training state")
            # the run's arrays, and an online run's state (fastrnn._online_run: train_online.*)
            keys = ARRAYS + tuple(f[len("train_"):] for f in data.files if f.startswith("train_online."))
            sizes = {k: stored_header(data, f"train_{k}") for k in keys if f"train_{k}" in data.files}
            _check_array_sizes(path, model, sizes)
            state = json.loads(str(data["train_state"][()]))
            arrays = {k: np.array(data[f"train_{k}"]) for k in sizes}
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"model file {path!r} has a corrupt training state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        raise ModelFileError(f"model file {path!r} has a training state this fastrnn cannot read (format "
                             f"{state.get('format') if isinstance(state, dict) else '?'}, version "
                             f"{state.get('version') if isinstance(state, dict) else '?'}; this one reads {VERSION})")
    if not isinstance(state.get("settings"), dict) or not isinstance(state.get("done"), int):
        raise ModelFileError(f"model file {path!r} has a corrupt training state (no settings or update count)")
    return model, state, arrays


def _check_array_sizes(path, model, sizes):
    """Refuse, from the headers alone, saved arrays that cannot belong to ``model``'s run.

    The optimizer state is (2, P); the carried state and the accuracy window are
    bounded by what the machine could hold (their exact sizes depend on the run's
    settings and are compared when the run is restored).
    """
    opt = sizes.get("opt_state")
    if opt is not None and opt[0] != (2, model.n_params):
        raise ModelFileError(f"model file {path!r} has a corrupt training state: its optimizer state has shape {opt[0]}, "
                             f"(2, {model.n_params}) expected for its {model.n_params:,} parameters; nothing was loaded")
    for key, (shape, dtype) in sizes.items():
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes > _checks.memory_limit():
            raise ModelFileError(f"model file {path!r} has a corrupt training state: train_{key} would take "
                                 f"{_checks.format_bytes(nbytes)} once read, more than this machine's memory; nothing was loaded")


def same_setting(setting, a, b):
    """Whether a and b are the same value of ``setting`` (paths compared absolute)."""
    if setting.kind == "path" and a is not None and b is not None:
        return os.path.abspath(a) == os.path.abspath(b)
    return _settings.same_value(a, b)


#: What an ``adjust`` of :func:`refuse_changes` returns for a given setting that is not to be compared.
SKIP = object()


def refuse_changes(path, old, given, goal, recorded_default, adjust=None, hint="", label=None):
    """The one check of a resume's given settings against the run saved in ``path``.

    ``old`` is the saved run's recorded settings and ``given`` the settings given with the
    resume (name -> value; None: not given; ``goal``, the resume's new total, ``iters`` or
    ``epochs``, is not compared). A setting the run did not record (saved before the setting existed) has
    ``recorded_default(name)``. ``adjust(setting, checked)`` may return the value as the run
    would have taken it, or :data:`SKIP` for one not to compare. A difference is refused in one
    line naming the setting (its flag; ``label(setting)``: another name, a library argument's)
    and both values (``hint``: what else to do, after "leave it out"). An unknown name raises,
    naming the choices.
    """
    for name, value in given.items():
        if value is None or name == goal:
            continue
        setting = _settings.get(name)
        checked = setting.check(value)
        if adjust is not None:
            checked = adjust(setting, checked)
            if checked is SKIP:
                continue
        recorded = old[name] if name in old else recorded_default(name)
        if not same_setting(setting, checked, recorded):
            named = setting.flag if label is None else label(setting)
            raise InvalidArgument(f"{named} {checked} differs from the saved run's {recorded} in {path}; a resume "
                                  f"continues that run with its own settings (leave {named} out{hint})")


def resume_settings(path, saved, task, given):
    """The settings of a resumed run: the saved run's, with ``iters`` from ``given``.

    ``given`` (keyword settings, None = not given) must agree with the saved run's;
    a difference is refused in one line naming the setting and both values.
    """
    old = saved["settings"]
    if _settings.on_arrays(old):
        raise InvalidArgument(f"{path} holds a fit on arrays, not a task run; resume it with fastrnn train --data FILE.npz "
                              f"--resume {path} --epochs N (library: fastrnn.fit(None, X, Y, resume=PATH, epochs=N))")
    table = _settings.by_name()
    arrays_only = {setting.name for setting in _settings.DATA}  # a task run records its head, not as a setting
    merged = {k: old[k] for k in table if k in old and k not in arrays_only}
    # values an older run recorded though they had no effect (now refused when given): their defaults
    from .optimizers import OPTIONS, users

    for option in OPTIONS:  # an optimizer's own settings (momentum, weight_decay) where another optimizer ran
        if merged.get("optimizer") not in users(option.name):
            merged.pop(option.name, None)
    if merged.get("init_from") is not None:
        merged.pop("init_scale", None)
        merged.pop("forget_bias", None)
    if task is not None and task != old.get("task"):
        raise InvalidArgument(f"--task {task} differs from the saved run's task {old.get('task')} in {path}; "
                              f"a resume continues that run (leave --task out)")
    full = None

    def recorded_default(name):  # a run saved before the setting existed: it had the default
        nonlocal full
        if full is None:
            full = _settings.resolve(merged)[1]
        return full.get(name)

    def moved(setting, checked):
        if setting.kind == "path" and setting.tasks is not None and old.get(setting.name) is not None:
            # a task's data file (the text) given at another path: a file moved since; its content is checked
            # when the run is restored (the text's vocabulary and checksum), so the new path is taken
            merged[setting.name] = checked
            return SKIP
        return checked

    refuse_changes(path, old, given, "iters", recorded_default, moved, f", or start a new run with --init-from {path}")
    for setting in _settings.every():
        recorded = merged.get(setting.name)
        if (setting.kind == "path" and setting.tasks is not None and isinstance(recorded, str)
                and given.get(setting.name) is None and not os.path.exists(recorded)):
            raise InvalidArgument(f"resuming {path}: the run's {setting.name} file {recorded} does not exist any more; "
                                  f"if it moved, give it with {setting.flag} FILE (its content must be the same)")
    iters = given.get("iters")
    if iters is None:
        raise InvalidArgument(f"resuming {path} needs --iters N, the total number of iterations to reach "
                              f"(it has {saved['done']})")
    merged["iters"] = iters
    if _settings.get("iters").check(iters) <= saved["done"]:
        raise InvalidArgument(f"--iters {iters}: the saved run in {path} already has {saved['done']} iterations; "
                              f"give a larger total")
    return merged


# ------------------------------------------------------------------- checkpoints


def is_checkpoint(state):
    """Whether a loaded training state is a checkpoint's (rather than a ``save`` at the run's end)."""
    return isinstance(state.get("checkpoint"), dict)


def saved_model_path(state):
    """The run's ``save`` path a checkpoint records (None: the run had none)."""
    mark = state.get("checkpoint")
    return mark.get("save") if isinstance(mark, dict) else None


def path_for(save=None, csv=None):
    """Where a run's checkpoints go: ``<save stem>.ckpt.npz``, else ``<csv stem>.ckpt.npz``."""
    base = Path(save if save is not None else csv)
    return base.with_name(base.name[: -len(base.suffix)] + ".ckpt.npz" if base.suffix else base.name + ".ckpt.npz")


class Checkpointer:
    """Takes a run's checkpoints: at the row that reaches each multiple of ``every`` iterations,
    and at the first row ``seconds`` after the last one (either may be None)."""

    def __init__(self, path, every, seconds, save, done):
        self.path = Path(path)
        self.every, self.seconds = every, seconds
        self.save = None if save is None else os.path.abspath(save)
        self.mark = done  # the iteration of the last checkpoint, or where the run started
        self.at = None  # the iteration of the last checkpoint of this run in the file
        self.clock = time.monotonic()

    def settings(self):
        return dict(every=self.every, seconds=self.seconds)

    def due(self, done):
        if self.every is not None and done // self.every > self.mark // self.every:
            return True
        return self.seconds is not None and time.monotonic() - self.clock >= self.seconds

    def state(self, run, train_seconds):
        """The run's (state, arrays) with the checkpoint settings recorded."""
        state, arrays = run.checkpoint_state(train_seconds)
        state["checkpoints"] = self.settings()
        return state, arrays

    def write(self, run, train_seconds):
        """Write the checkpoint (durably); OSError names the checkpoint file."""
        state, arrays = self.state(run, train_seconds)
        state["checkpoint"] = dict(iteration=int(run.done), save=self.save)
        try:
            save(self.path, run.model, state, arrays, durable=True)
        except OSError as exc:
            exc.filename = str(self.path)
            raise
        self.mark = self.at = run.done
        self.clock = time.monotonic()


def plan(every, seconds, log_every, save, csv, overwrite, resume=None, saved=None):
    """The :class:`Checkpointer` of a run (None without checkpoints), every argument checked.

    ``every`` and ``seconds`` None on a resume: the saved run's. ``every`` must be a
    multiple of ``log_every`` (a checkpoint is taken at a row's end). The file
    goes beside ``save``, else beside ``csv``; an existing one is refused unless
    ``overwrite``, or a resume continues the run it belongs to.
    """
    from . import _checks, _files
    from .metrics import check_distinct_files, check_new_file, json_path_for

    state = saved[1] if saved is not None else {}
    if every is None and seconds is None:
        kept = state.get("checkpoints") if isinstance(state.get("checkpoints"), dict) else {}
        every, seconds = kept.get("every"), kept.get("seconds")
        inherited = True
    else:
        inherited = False
    if every is None and seconds is None:
        return None
    option = "--checkpoint-every" if every is not None else "--checkpoint-seconds"
    if every is not None:
        every = _checks.check_int("checkpoint_every", every, minimum=1)
        if every % log_every:
            lower = max(every // log_every, 1) * log_every
            raise InvalidArgument(f"checkpoint_every {every} is not a multiple of log_every {log_every}: a checkpoint "
                                  f"is taken at the end of a row; give {lower} or {lower + log_every}"
                                  + (" (the saved run's, which this resume would take)" if inherited else ""))
    if seconds is not None:
        seconds = _checks.check_float("checkpoint_seconds", seconds, positive=True)
    if save is None and csv is None:
        raise InvalidArgument(f"checkpoint_every/checkpoint_seconds ({option}) need a file to write beside: give save "
                              f"(--save MODEL.npz: MODEL.ckpt.npz) or csv (--csv RUN.csv: RUN.ckpt.npz)")
    path = path_for(save, csv)
    check_distinct_files(**{"--csv": csv, "the settings JSON": None if csv is None else json_path_for(csv),
                            "--save": save, "the checkpoint": path})
    mine = resume is not None and (os.path.abspath(path) == os.path.abspath(resume) or _is_checkpoint_file(path))
    path = check_new_file(path, "checkpoint file", overwrite or mine, option)
    _files.remove_stale(path)
    ckpt = Checkpointer(path, every, seconds, save, int(state.get("done", 0)))
    if resume is not None and is_checkpoint(state) and os.path.abspath(path) == os.path.abspath(resume):
        ckpt.at = ckpt.mark  # the file holds the checkpoint resumed from
    return ckpt


def _is_checkpoint_file(path):
    """Whether ``path`` holds a checkpoint (a resume may replace it: it is the run's own)."""
    if not os.path.isfile(path):
        return False
    try:
        return is_checkpoint(load(path)[1])
    except Exception:  # not a checkpoint at all: refused as any existing file
        return False
