"""The tasks: one module each, and the registry that names them.

A task is a class implementing :class:`fastrnn.tasks._base.Task` (its sizes, head,
training defaults, own parameters and ``sample(rng, n)``; optionally decoding for
``predict``/``eval``). To add one, write ``fastrnn/tasks/<name>.py`` and add its
class to :data:`TASKS` below: ``fastrnn train --task <name>``, the sweep and the
report then know it, its parameters become options, its defaults show in ``--help``.

Each task draws its data from a ``numpy.random.Generator`` (reproducible and
independent of numba's own generator).
"""

from .. import _checks
from ..exceptions import InvalidArgument
from ..settings import ARRAYS, task_params
from ._base import Batch, Task, operands
from .add import AddTask
from .adding import AddingProblem
from .binary import BinaryAddition
from .copy_memory import CopyMemory
from .digits import ENCODINGS, DigitAddition
from .mimic import MimicTask
from .order import TemporalOrder
from .recall import Recall
from .text import TextTask

#: name -> task class. One line per task.
TASKS = {
    "binary": BinaryAddition,
    "digits": DigitAddition,
    "text": TextTask,
    "recall": Recall,
    "adding": AddingProblem,
    "copy": CopyMemory,
    "order": TemporalOrder,
    "add": AddTask,
    "mimic": MimicTask,
}

task_params(TASKS)  # two tasks declaring one parameter name differently: ImportError, here

#: The registered names (kept for callers of the old module).
TASK_NAMES = tuple(TASKS)

__all__ = ["AddTask", "AddingProblem", "Batch", "BinaryAddition", "CopyMemory", "DATA_HEADLINE", "DigitAddition", "ENCODINGS", "LOWER_IS_BETTER", "MimicTask",
           "TASKS", "Task", "TemporalOrder", "TextTask", "has_goal", "headline", "make_task", "operands", "require_decoding",
           "task_from_metadata"]

#: The headline metrics of a fit on arrays (``"task": "data"``: fastrnn.fit, ``fastrnn train --data``).
DATA_HEADLINE = ("loss", "accuracy", "val_loss", "val_accuracy")

#: Headline metrics where lower is better (for the others higher is).
LOWER_IS_BETTER = frozenset({"loss", "val_loss", "bpc", "val_bpc", "test_mse", "test_ce_per_step", "test_ce",
                             "loss_per_step", "test_loss"})


def headline(task):
    """The headline metrics (:attr:`Task.headline`) of a run of ``task``: a registry name, or
    ``settings.ARRAYS`` for a fit."""
    if task == ARRAYS:
        return DATA_HEADLINE
    cls = TASKS.get(task) if isinstance(task, str) else None
    return cls.headline if cls is not None else Task.headline


def has_goal(task):
    """Whether a run of ``task`` (a name, or "data") is solved at accuracy 1.0 (:attr:`Task.goal`)."""
    cls = TASKS.get(task) if isinstance(task, str) else None
    return cls.goal if cls is not None else True


def _owner_message(name, param):
    """'bits belongs to the binary task; the digits task takes digits and encoding'."""
    owners = [cls for cls in TASKS.values() if any(p.name == param for p in cls.PARAMS)]
    mine = [p.name for p in TASKS[name].PARAMS]
    takes = f"takes {_and(mine)}" if mine else "takes no parameters"
    if len(owners) > 1:  # a parameter several tasks share ('lag belongs to the recall and copy tasks')
        return f"{param} belongs to the {_and([cls.name for cls in owners])} tasks; the {name} task {takes}"
    owner = owners[0]
    theirs = [p.name for p in owner.PARAMS]
    verb = "belongs" if len(theirs) == 1 else "belong"
    return f"{_and(theirs)} {verb} to the {owner.name} task; the {name} task {takes}"


def _and(words):
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def make_task(name, **params):
    """The task called ``name``; ``params`` are its own parameters (None: the default).

    >>> make_task("digits", digits=4).T
    4
    """
    name = _checks.check_choice("task", name, tuple(TASKS))
    cls = TASKS[name]
    own = {p.name for p in cls.PARAMS}
    for param, value in params.items():
        if value is None or param in own:
            continue
        if any(param in {p.name for p in other.PARAMS} for other in TASKS.values()):
            raise InvalidArgument(_owner_message(name, param))
        raise InvalidArgument(f"{param!r} is not a parameter of the {name} task; it takes {', '.join(sorted(own)) or 'none'}")
    return cls(**{k: v for k, v in params.items() if v is not None})


def task_from_metadata(meta, **widths):
    """The task a saved model was trained on, optionally with other parameters (``bits=16``).

    ``widths`` left as None keep the value the model was trained with.
    """
    if not isinstance(meta, dict) or meta.get("task") not in TASKS:
        raise InvalidArgument("the model carries no task; only models saved by `fastrnn train --save` can add numbers")
    cls = TASKS[meta["task"]]
    own = {p.name: p for p in cls.PARAMS}
    wrong = [k for k, v in widths.items() if v is not None and k not in own]
    if wrong:
        offered = [p.flag for p in cls.PARAMS if p.name in widths] or [p.flag for p in cls.PARAMS]
        mine = ", ".join(offered) or "no width option"
        raise InvalidArgument(f"this model {cls.description or 'has the task ' + cls.name}: use {mine}, not "
                              f"{', '.join('--' + k.replace('_', '-') for k in wrong)}")
    params = {k: meta.get(k, p.default) for k, p in own.items()}
    params.update({k: v for k, v in widths.items() if v is not None})
    return cls(**params)


def require_decoding(task, command):
    """Refuse a task that cannot turn outputs into answers, for ``predict``/``eval``."""
    if not getattr(task, "decodes", False):
        able = ", ".join(n for n, cls in TASKS.items() if cls.decodes)
        raise InvalidArgument(f"the {task.name} task has no decoding, so `fastrnn {command}` cannot read its outputs "
                              f"(tasks that decode: {able})")
    return task
