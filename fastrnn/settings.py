"""Every training setting, defined once.

Each :class:`Setting` holds a setting's name, kind, check, default and help text.
Everything else is derived from this list, so a setting added here appears
everywhere at once:

- the options of ``fastrnn train`` (fastrnn.cli), their help showing the defaults;
- the checks of :func:`fastrnn.train` (:func:`resolve`);
- the names and the value parser of ``fastrnn sweep --set NAME=V1,V2`` (:func:`parse`);
- the columns of ``fastrnn report`` and the settings in each run's JSON file.

Defaults that depend on the task (``iters``, ``lr``, ...) are marked
:data:`PER_TASK` and come from the task's module (``fastrnn/tasks/binary.py``
``DEFAULTS``, the task class's ``defaults``). A task's own parameters (``bits``; ``digits``, ``encoding``)
are Settings too, declared in the task's module (``PARAMS``) and listed here after
``task``. None given for a setting always means "its default".
"""

import functools
import numbers
import os
from dataclasses import dataclass

import numpy as np

from . import _checks, _rule_settings
from .exceptions import InvalidArgument, InvalidType

#: The default of a setting whose default the task chooses (its module's DEFAULTS).
PER_TASK = "per task"

#: The ``task`` that a run on the user's own arrays records in its settings and its model's metadata
#: (``fastrnn.fit``, ``fastrnn train --data``): the one run kind that is not a task of the registry.
ARRAYS = "data"


def on_arrays(record):
    """Whether a run's recorded settings (or a saved model's metadata) are those of a fit on arrays."""
    return record.get("task") == ARRAYS


def resume_goal(record):
    """What continuing this run must give on the command line: ``--epochs N`` for a fit on arrays, else
    ``--iters N`` (N the run's own total)."""
    return f"--epochs {record['epochs']}" if on_arrays(record) else f"--iters {record['iters']}"


#: The step decay's factor when ``lr_step`` is given without ``lr_gamma`` (PyTorch's StepLR's).
LR_GAMMA = 0.1

#: Kinds of setting: what values they take, how the command line and a sweep write them.
KINDS = ("int", "float", "choice", "flag", "scale", "path")


@dataclass(frozen=True)
class Setting:
    """One training setting.

    Attributes
    ----------
    name : str
        The keyword of :func:`fastrnn.train`, the JSON key; the option is ``--name``
        with ``_`` written ``-``.
    kind : {"int", "float", "choice", "flag", "scale", "path"}
        "flag" is True/False; "scale" is a positive number or "fan_in"; "path" a file path (kept as text).
    help : str
        One sentence for ``--help`` (the default is appended from ``default``).
    default : object
        The value when the setting is not given, or :data:`PER_TASK`.
    minimum, maximum : number or None
        Bounds, both allowed.
    positive : bool
        A float strictly above zero.
    below : float or None
        A float strictly below this.
    choices : tuple or callable
        The allowed words of a "choice" (a callable is asked at use, so that the
        list can come from a registry such as ``fastrnn.optim.OPTIMIZERS``).
    zero_is_off : bool
        0 turns the setting off (stored as None).
    off : str or None
        What None means when it is a value ("off", "full BPTT"); None if it is not.
    tasks : tuple or None
        The tasks that use it (None: every task).
    why : str
        Said after a bound in the error message (``maximum`` of bits: "operands are int64").
    together : bool
        Runs trained together in one kernel call (:func:`fastrnn.training.train_many`)
        must agree on it (it sets array shapes or the chunking).
    """

    name: str
    kind: str
    help: str
    default: object = None
    minimum: object = None
    maximum: object = None
    positive: bool = False
    below: object = None
    choices: object = ()
    zero_is_off: bool = False
    off: object = None
    tasks: object = None
    why: str = ""
    together: bool = False

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def choice_list(self):
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def applies_to(self, task_name):
        return self.tasks is None or task_name in self.tasks

    def default_for(self, task):
        """The default value for a task object (or its class).

        A task may also override a setting that is not :data:`PER_TASK` by naming it
        in its ``defaults`` (the text task's ``clip_value`` 5, min-char-rnn's).
        """
        return task.defaults[self.name] if self.default == PER_TASK else task.defaults.get(self.name, self.default)

    def check(self, value):
        """``value`` checked and normalised (0 -> None where zero is off); raises InvalidArgument/InvalidType."""
        name = self.name
        if value is None and self.off is not None:
            return None
        why = f" ({self.why})" if self.why else ""
        if self.kind == "int":
            value = _checks.check_int(name, value, minimum=self.minimum)
            if self.maximum is not None and value > self.maximum:
                raise InvalidArgument(f"{name} must be at most {self.maximum}{why}, got {value}")
        elif self.kind == "float":
            value = _checks.check_float(name, value, minimum=self.minimum, positive=self.positive)
            if self.below is not None and value >= self.below:
                raise InvalidArgument(f"{name} must be below {self.below}, got {value}")
        elif self.kind == "choice":
            value = _checks.check_choice(name, value, self.choice_list())
        elif self.kind == "flag":
            if not isinstance(value, (bool, np.bool_)):
                raise InvalidType(f"{name} must be True or False, got {value!r}")
            value = bool(value)
        elif self.kind == "scale":
            if value != "fan_in":
                value = _checks.check_float(name, value, positive=True)
        elif self.kind == "path":
            try:
                value = os.fspath(value)
            except TypeError:
                raise InvalidType(f"{name} must be a file path, got {type(value).__name__}") from None
            if not isinstance(value, str) or not value:
                raise InvalidArgument(f"{name} must be a non-empty file path, got {value!r}")
        if self.zero_is_off and value == 0:
            return None
        return value

    def parse(self, text):
        """A value written as text (``fastrnn sweep --set``); "default" (or "none") is None."""
        text = str(text).strip()
        if text.lower() in ("none", "default") and self.name != "task":
            return None
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)  # NaN and infinity are refused by check, naming the setting
            if self.kind == "flag":
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return text.lower() in ("true", "1", "yes")
            if self.kind == "scale":
                return text if text == "fan_in" else float(text)
            return text
        except ValueError:
            need = {"int": "an integer", "float": "a number", "flag": "true or false",
                    "scale": "a number or fan_in"}.get(self.kind, "a word")
            raise InvalidArgument(f"--set {self.name}={text!r}: {self.name} needs {need}") from None

    def default_text(self, tasks):
        """The default as ``--help`` shows it: "[binary 20000, digits 2000]", "[1]", "[off]"."""
        def show(v):
            if v is None:
                return self.off or "off"
            if self.kind == "flag":
                return "on" if v else "off"
            return str(v)

        if self.default == PER_TASK:
            shown = "[" + ", ".join(f"{t.name} {show(t.defaults[self.name])}" for t in tasks if self.applies_to(t.name)) + "]"
            return shown + (f" (--data: {show(DATA_DEFAULTS[self.name])})" if self.name in DATA_DEFAULTS else "")
        others = "".join(f"; {t.name} {show(t.defaults[self.name])}" for t in tasks if self.name in t.defaults)
        return f"[{show(self.default)}{others}]"


def _optimizers():
    from .optimizers import OPTIMIZERS

    return tuple(OPTIMIZERS)


def _optimizer_options():
    """The optimizers' own settings that are training settings (``momentum``, ``weight_decay``), from
    their declarations in the optimizer registry (fastrnn.optimizers)."""
    from .optimizers import OPTIONS

    return tuple(Setting(h.name, "float", h.help, h.default, minimum=h.minimum, below=h.below, positive=h.positive)
                 for h in OPTIONS)


def _activations():
    from .activations import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _cells():
    from .cells import CELLS

    return tuple(CELLS)


def _inits():
    from .inits import INITS

    return tuple(INITS)


def _tasks():
    from .tasks import TASKS

    return tuple(TASKS)


#: The task setting; the tasks' own parameters follow it (see :func:`every`).
TASK = Setting("task", "choice", "What to learn.", default="binary", choices=_tasks, together=True)

#: The training settings every task takes, in the order the JSON and the report list them.
TRAINING = (
    Setting("iters", "int", "Training iterations.", PER_TASK, minimum=1, together=True),
    Setting("batch", "int", "Sequences per iteration.", PER_TASK, minimum=1, together=True),
    Setting("hidden", "int", "Hidden units per layer.", PER_TASK, minimum=1, together=True),
    Setting("layers", "int", "Stacked recurrent layers.", 1, minimum=1, together=True),
    Setting("cell", "choice", "Recurrent cell: rnn (vanilla), or PyTorch's gru or lstm.", "rnn", choices=_cells,
            together=True),
    Setting("activation", "choice", "Hidden activation (the vanilla cell; gated cells use tanh).", PER_TASK,
            choices=_activations),
    Setting("optimizer", "choice", "Update rule.", PER_TASK, choices=_optimizers),
    Setting("lr", "float", "Learning rate.", PER_TASK, positive=True),
    *_optimizer_options(),
    Setting("lr_step", "int", "Step decay: multiply the learning rate by --lr-gamma every N iterations; 0 = off.", None,
            minimum=0, zero_is_off=True, off="constant"),
    Setting("lr_gamma", "float", "Step decay: the factor applied every --lr-step iterations.", None, positive=True,
            off="0.1 with --lr-step"),
    Setting("clip", "float", "Rescale each gradient to at most this global norm; 0 = off.", PER_TASK, minimum=0.0,
            zero_is_off=True, off="off"),
    Setting("clip_value", "float", "Clip every gradient entry to [-V, V] (before --clip); 0 = off.", None, minimum=0.0,
            zero_is_off=True, off="off"),
    Setting("bptt_truncate", "int", "The loss at step t reaches only steps t-K..t.", None, minimum=0, off="full BPTT"),
    Setting("dtype", "choice", "Floating-point type of the model and data.", "float64", choices=("float64", "float32"),
            together=True),
    Setting("init_scale", "scale", "Initial weights uniform in [-s, s] (text: normal with std s, biases 0), or fan_in "
            "(1/sqrt(fan-in) per matrix).", PER_TASK),
    Setting("init", "choice", "Recurrent weights: default (as --init-scale draws them), orthogonal (every W, every "
            "gate block, a random orthogonal matrix), identity (the IRNN: W = I, biases 0, U and V N(0, 0.001^2); "
            "vanilla cell, meant for --activation relu) or normal-orthogonal (W orthogonal, U and V N(0, 1/fan-in), "
            "biases 0: the online-learning comparisons' initialisation).", "default", choices=_inits),
    Setting("forget_bias", "float", "LSTM only: the forget gate's biases start at this value (1 is the usual advice, "
            "Jozefowicz et al. 2015; 0 = PyTorch's initialisation).", 0.0),
    Setting("init_from", "path", "Start from the weights of this saved model (.npz) instead of drawing them.", None,
            off="drawn"),
    Setting("seed", "int", "Seeds the weights and the data.", 0, minimum=0),
    Setting("log_every", "int", "Iterations per metrics row (and per kernel call).", 100, minimum=1, together=True),
    Setting("log_spectrum", "flag", "Add W's spectral radius and mean |G_p| per path length to every row.", False),
)

#: The settings of training on arrays only (``fastrnn.fit``, ``fastrnn train --data``); a task run refuses them.
DATA = (
    Setting("epochs", "int", "--data: passes over the training arrays.", 10, minimum=1, tasks=(ARRAYS,)),
    Setting("window", "int", "--data: train windows of K steps of long streams, carrying the state (BPTT(K, K)).", None,
            minimum=1, off="whole sequences", tasks=(ARRAYS,)),
    Setting("shuffle", "flag", "--data: a new order of the sequences every epoch (not with --window).", True,
            tasks=(ARRAYS,)),
    Setting("head", "choice", "--data: output head; left out, inferred from the steps the mask keeps: one-hot Y rows -> "
            "softmax, Y in {0, 1} -> sigmoid, else linear (targets that fit two heads are refused: pass --head).", None, choices=("softmax", "sigmoid", "linear"), off="inferred", tasks=(ARRAYS,)),
)

_RESERVED = frozenset({"task"} | {s.name for s in TRAINING + DATA})

#: Defaults of the PER_TASK settings when training on arrays (``--data``; ``--help`` shows them as "(--data: V)").
DATA_DEFAULTS = dict(batch=32, hidden=32, activation="tanh", optimizer="adam", lr=0.01, clip=1.0, init_scale="fan_in")


@functools.lru_cache(maxsize=1)
def every():
    """Every setting: task, each task's parameters (first use wins a shared name), the training settings."""
    from .tasks import TASKS

    return (TASK,) + task_params(TASKS) + TRAINING + _rule_settings.settings() + DATA


def task_params(tasks):
    """Every task's own parameters (:attr:`Task.PARAMS`), each name once, in registry order.

    Tasks may share a parameter (recall's and copy's ``lag``) only by declaring the same
    Setting: one name, one help text, one set of bounds. Two different declarations of
    one name raise ImportError naming both tasks (the second would otherwise take the
    first one's help and bounds without a word)."""
    out, seen = [], {}
    for name, cls in tasks.items():
        for p in cls.PARAMS:
            if p.name in _RESERVED:
                raise ImportError(f"task {name!r} declares the setting {p.name!r}, which is a training setting: "
                                  "rename it")
            if p.name in seen:
                first, owner = seen[p.name]
                if first != p:
                    raise ImportError(f"the tasks {owner!r} and {name!r} both declare the setting {p.name!r}, "
                                      f"differently ({first} against {p}): share one Setting, or rename one")
                continue
            seen[p.name] = (p, name)
            out.append(p)
    return tuple(out)


def names():
    """Every setting's name, in order."""
    return [s.name for s in every()]


def by_name():
    return {s.name: s for s in every()}


def get(name):
    """The Setting called ``name``; InvalidArgument naming the choices if there is none."""
    table = by_name()
    if name not in table:
        raise InvalidArgument(f"{name!r} is not a training setting; choose from {', '.join(sorted(table))}")
    return table[name]


def parse(name, text):
    """The value of setting ``name`` written as text (sweep ``--set``)."""
    return get(name).parse(text)


def resolve(given):
    """Check every given setting and fill in the defaults: (task object, settings dict).

    ``given`` maps setting names to values (None: the default). The dict holds
    every setting that applies to the task, in the order of :func:`every`.
    """
    from .tasks import make_task

    given = dict(given)
    for name in given:
        if not isinstance(name, str) or name not in by_name():
            get(str(name))  # raises, naming the choices
    for setting in DATA:
        if given.pop(setting.name, None) is not None:
            raise InvalidArgument(f"{setting.name} applies only to training on arrays (fastrnn.fit, fastrnn train --data); "
                                  f"leave it out for a task")
    params = {s.name: given.pop(s.name) for s in every()[1:] if s.tasks is not None and s.name in given}
    task_obj = make_task(TASK.default if given.get("task") is None else given["task"], **params)
    s = dict(task_obj.settings())
    for setting in TRAINING:
        value = given.get(setting.name)
        s[setting.name] = setting.check(setting.default_for(task_obj) if value is None else value)
    if s["cell"] != "rnn":  # the gated cells' activations are fixed
        if given.get("activation") not in (None, "tanh"):
            raise InvalidArgument(f"activation={given['activation']!r} applies to cell='rnn' only; the {s['cell']} cell's"
                                  " activations are fixed: leave activation unset")
        if s["log_spectrum"]:
            raise InvalidArgument(f"log_spectrum needs the vanilla cell's square W; a {s['cell']} model stacks gate"
                                  " matrices: train with cell='rnn' or without log_spectrum")
        s["activation"] = "tanh"
    check_optimizer_options(s)
    for name in ("init_scale", "forget_bias"):  # both shape the drawn weights, which init_from replaces
        if s["init_from"] is not None and s[name] != get(name).default_for(task_obj):
            raise InvalidArgument(f"{name}={s[name]!r} sets drawn weights, but init_from={s['init_from']!r} replaces "
                                  f"them with a saved model's: leave {name} unset, or init_from")
    if s["init"] == "identity" and s["cell"] != "rnn":
        raise InvalidArgument(f"init='identity' applies to cell='rnn' only (the IRNN); the {s['cell']} cell's W stacks its"
                              " gates: use init='orthogonal' or 'default', or cell='rnn'")
    if s["init"] == "identity" and given.get("init_scale") is not None:
        raise InvalidArgument(f"init_scale={given['init_scale']!r} does not apply with init='identity', which draws U and V"
                              " from N(0, 0.001^2) and sets W = I: leave init_scale unset or choose another init")
    _rule_settings.resolve(task_obj, s, {**given, **params})  # rule and the rules' own settings (fastrnn._rule_settings)
    if s["lr_step"] is None and s["lr_gamma"] is not None:
        raise InvalidArgument(f"lr_gamma={s['lr_gamma']!r} needs lr_step (every how many iterations to apply it): "
                              "give lr_step too, or leave lr_gamma unset")
    if s["lr_step"] is not None and s["lr_gamma"] is None:
        s["lr_gamma"] = LR_GAMMA
    if s["cell"] != "lstm" and s["forget_bias"] != 0.0:
        raise InvalidArgument(f"forget_bias={s['forget_bias']!r} applies to cell='lstm' only; the {s['cell']} cell has no"
                              " forget gate: leave forget_bias unset or use cell='lstm'")
    return task_obj, s


def check_optimizer_options(s):
    """Refuse an optimizer's own setting (``momentum``, ``weight_decay``) given a value other than its
    default for an optimizer that does not read it (it would be ignored)."""
    from .optimizers import OPTIONS, users

    for h in OPTIONS:
        if s.get(h.name) is not None and s["optimizer"] not in users(h.name) and s[h.name] != h.default:
            who = " or ".join(f"optimizer={u!r}" for u in users(h.name))
            raise InvalidArgument(f"{h.name}={s[h.name]!r} applies to {who} only; {s['optimizer']} would ignore it: "
                                  f"leave {h.name} unset or use {who}")


def same_value(a, b):
    """Whether two values of a setting are the same (1 == 1.0, but True is not 1)."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return type(a) is type(b) and a == b
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return a == b
    return type(a) is type(b) and a == b


def doc(indent=0):
    """The settings as numpydoc parameter entries (for :func:`fastrnn.train`'s docstring)."""
    from .tasks import TASKS

    kinds = {"int": "int", "float": "float", "flag": "bool", "scale": 'float or "fan_in"'}
    pad = " " * indent
    lines = []
    for s in every():
        if s.name == "task" or s in DATA:
            continue
        kind = kinds.get(s.kind) or "{" + ", ".join(repr(c) for c in s.choice_list()) + "}"
        if s.off is not None:
            kind += " or None"
        lines.append(f"{pad}{s.name} : {kind}")
        lines.append(f"{pad}    {s.help} {s.default_text(TASKS.values())}")
    return "\n".join(lines)
