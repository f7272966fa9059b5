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

    #: Whether every metrics row scores the model on a fixed held-out batch (:class:`HeldOutScores`:
    #: the task's ``score(yhat, batch)`` and its ``score_columns``).
    scores_held_out = False

    def metrics(self, model):
        """An object adding task columns to the rows (``columns``, ``update(losses, errors) -> dict``,
        ``state()``, ``restore()``), or None: the held-out scores of a task that ``scores_held_out``."""
        return HeldOutScores(model, self) if self.scores_held_out else None

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


#: Sequences in the held-out batch a scoring task (``scores_held_out``) scores every metrics row on.
HELD_OUT = 256
#: Seed of that batch: one fixed batch for every run, seed and setting, so that runs compare on the same data.
HELD_OUT_SEED = 19970815


class HeldOutScores:
    """The task's own columns of a run's rows: ``task.score(yhat, batch)`` on a fixed held-out batch.

    The batch (``HELD_OUT`` sequences from ``default_rng(HELD_OUT_SEED)``) is drawn once;
    every row runs the model forward on it with the weights after the row's chunk.
    Nothing to carry over a resume: the batch is drawn again, the scores depend on the weights only.
    """

    def __init__(self, model, task, n=HELD_OUT):
        self.model, self.task = model, task
        self.batch = task.sample(np.random.default_rng(HELD_OUT_SEED), n)
        self.columns = list(task.score_columns)

    def warmup(self):
        """Compile (or load) the forward kernel on one sequence, so that the first row does not pay for it."""
        self.model.forward(self.batch.X[:1])

    def update(self, losses, errors):
        yhat, _ = self.model.forward(self.batch.X)
        return self.task.score(yhat, self.batch)

    def state(self):
        return None

    def restore(self, state):
        pass


def uniform_ints(u, k):
    """Integers uniform in 0..k-1 from uniform draws u in [0, 1): floor(u * k) (k a power of two: exactly uniform;
    otherwise off by at most k * 2**-53 from uniform)."""
    return np.minimum((u * k).astype(np.int64), k - 1)
