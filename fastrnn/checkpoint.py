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
"""

import json
import os

import numpy as np

from . import settings as _settings
from .exceptions import InvalidArgument, ModelFileError

FORMAT = "fastrnn-train-state"
VERSION = 1
ARRAYS = ("opt_state", "hstate", "recent")


def save(path, model, state, arrays):
    """Write ``model`` to ``path`` with the training ``state`` (JSON-able dict) and ``arrays``."""
    doc = dict(format=FORMAT, version=VERSION, **state)
    extra = {"train_state": np.array(json.dumps(doc))}
    extra.update({f"train_{k}": np.asarray(v) for k, v in arrays.items()})
    return model.save(path, extra=extra)


def load(path):
    """(model, state dict, arrays dict) from a file written by :func:`save`.

    Raises ModelFileError (one line, naming the file) for a file that is not a
    model, or a model saved without training state.
    """
    from .model import RNN

    model = RNN.load(path)  # refuses what is not a model at all
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "train_state" not in data.files:
                raise ModelFileError(
                    f"model file {path!r} holds no training state (it was saved by RNN.save, or by a run without "
                    f"--save); it cannot be resumed: start a new run from its weights with --init-from {path}"
                )
            state = json.loads(str(data["train_state"][()]))
            arrays = {k: np.array(data[f"train_{k}"]) for k in ARRAYS if f"train_{k}" in data.files}
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


def same_setting(setting, a, b):
    """Whether a and b are the same value of ``setting`` (paths compared absolute)."""
    if setting.kind == "path" and a is not None and b is not None:
        return os.path.abspath(a) == os.path.abspath(b)
    return _settings.same_value(a, b)


def resume_settings(path, saved, task, given):
    """The settings of a resumed run: the saved run's, with ``iters`` from ``given``.

    ``given`` (keyword settings, None = not given) must agree with the saved run's;
    a difference is refused in one line naming the setting and both values.
    """
    old = saved["settings"]
    if old.get("task") == "data":
        raise InvalidArgument(f"{path} holds a fit on arrays, not a task run; resume it with fastrnn train --data FILE.npz "
                              f"--resume {path} --epochs N (library: fastrnn.fit(None, X, Y, resume=PATH, epochs=N))")
    table = _settings.by_name()
    arrays_only = {setting.name for setting in _settings.DATA}  # a task run records its head, not as a setting
    merged = {k: old[k] for k in table if k in old and k not in arrays_only}
    # values an older run recorded though they had no effect (now refused when given): their defaults
    if merged.get("optimizer") != "momentum":
        merged.pop("momentum", None)
    if merged.get("init_from") is not None:
        merged.pop("init_scale", None)
        merged.pop("forget_bias", None)
    if task is not None and task != old.get("task"):
        raise InvalidArgument(f"--task {task} differs from the saved run's task {old.get('task')} in {path}; "
                              f"a resume continues that run (leave --task out)")
    for name, value in given.items():
        if value is None or name == "iters":
            continue
        setting = table.get(name)
        if setting is None:
            _settings.get(name)  # raises, naming the choices
        checked = setting.check(value)
        if setting.kind == "path" and setting.tasks is not None and old.get(name) is not None:
            # a task's data file (the text) given at another path: a file moved since; its content is checked
            # when the run is restored (the text's vocabulary and checksum), so the new path is taken
            merged[name] = checked
            continue
        if not same_setting(setting, checked, old.get(name)):
            raise InvalidArgument(
                f"{setting.flag} {checked} differs from the saved run's {old.get(name)} in {path}; a resume continues "
                f"that run with its own settings (leave {setting.flag} out, or start a new run with --init-from {path})"
            )
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
