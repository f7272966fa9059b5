"""What every task shares: the Task interface, the Batch it samples, the operand draw."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """Encoded samples: X (n, T, n_in), Y (n, T, n_out), mask (n, T) or None, and (addition) the operands.

    ``X, Y, mask = task.sample(rng, n)`` unpacks the first three.
    """

    X: np.ndarray
    Y: np.ndarray
    mask: object
    a: object = None
    b: object = None

    @property
    def c(self):
        return self.a + self.b

    def __iter__(self):
        return iter((self.X, self.Y, self.mask))


class Task:
    """The interface of a task (one module in fastrnn/tasks/, one line in the registry).

    Class attributes
    ----------------
    name : str
        The registry key, ``--task NAME``.
    head : {"softmax", "sigmoid", "linear"}
        The output head a model of this task needs.
    defaults : dict
        The task's training defaults, for every setting marked ``PER_TASK`` in
        :mod:`fastrnn.settings` (iters, batch, hidden, activation, optimizer, lr,
        clip, init_scale).
    PARAMS : tuple of fastrnn.settings.Setting
        The task's own parameters (``bits``; ``digits``, ``encoding``): keywords of
        the constructor, options of ``fastrnn train``, settable by a sweep.
    decodes : bool
        Whether the task turns outputs back into answers (``predict``/``eval``);
        then it also has ``encode``, ``decode``, ``predicted_positions``,
        ``true_positions``, ``check_operand``, ``format_positions``, ``unit``, ``limit``.
    description : str
        What a model of the task does, for messages ("adds binary numbers").
    headline : tuple of str
        The metrics that sum up a run, most important first: columns of its rows.
        The last row's values go to the run's JSON (``result.final_<name>``), a
        sweep's ``summary.csv`` and its summary line, and ``fastrnn report``.
    goal : bool
        Whether the task is solved at accuracy 1.0 (over the last 1000 samples): a
        sweep counts the runs that reached it, and ``first_perfect_iteration``
        says when. False for a task scored by its headline alone (text).

    Instance attributes: ``n_in``, ``n_out``, ``T`` (steps per sequence) and
    ``positions`` (scored steps per sequence, for the per-position accuracy).

    Methods: ``settings()`` (its name and parameters, as recorded in a run's JSON
    and a model's metadata), ``sample(rng, n)`` (a :class:`Batch` of n fresh
    sequences from a ``numpy.random.Generator``), and ``source(rng, batch, dtype)``
    (the training loop's data, :class:`fastrnn.sources.SampledSource`).
    """

    name = ""
    head = "linear"
    defaults = {}
    PARAMS = ()
    decodes = False
    description = ""
    headline = ("accuracy",)
    goal = True

    def settings(self):
        return {"task": self.name, **{p.name: getattr(self, p.name) for p in self.PARAMS}}

    def sample(self, rng, n):
        raise NotImplementedError

    def model_metadata(self):
        """What a trained model of this task keeps in ``model.metadata`` (the text task adds its vocabulary)."""
        return self.settings()

    def changed_since(self, metadata):
        """Why a run saved with ``metadata`` (its model's) cannot resume on this task's data, or None.

        Called before the saved training state is compared with the new run's, so
        that data that changed since (the text task's file) are named as such.
        """
        return None

    def init_weights(self, model, s):
        """Draw the initial weights in place if the task has its own rule (text: N(0, s^2)); default: the model's."""

    def metrics(self, model):
        """An object adding task columns to the rows (``columns``, ``update(losses, errors) -> dict``,
        ``state()``, ``restore()``), or None."""
        return None

    def source(self, rng, batch, dtype):
        """The training data: fresh samples from ``rng``, ``batch`` sequences per iteration."""
        from ..sources import SampledSource

        return SampledSource(self, rng, batch, dtype)


def operands(rng, n, limit):
    """n pairs (a, b), each uniform in 0..limit-1, drawn pair by pair.

    Drawing the pairs together makes the stream independent of how it is cut into
    chunks: n1 samples and then n2 are the same numbers as n1 + n2 at once, so
    ``log_every`` (the chunk size of training) does not change what a run learns.
    """
    ab = rng.integers(0, limit, (n, 2), dtype=np.int64)
    return ab[:, 0], ab[:, 1]
