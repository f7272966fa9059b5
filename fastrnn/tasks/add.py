"""The Add task (Pitis 2016, as Marschall, Cho & Savin 2020 use it): a stream of coin flips.

At every step t the input is a fair coin x(t) in {0, 1}, given as the two inputs
(x, 1 - x), and the target is a probability that depends on two past inputs:

    y(t) = 0.5 + 0.5 x(t - t1) - 0.25 x(t - t2)        (t1 = 5, t2 = 9 by default)

given as the two-class soft target (y, 1 - y) under softmax cross-entropy
(-y ln p - (1 - y) ln(1 - p) at every step). The stream never wraps around: before
the stream starts every input counts as 0, so the target of step t < t2 reads
x(t - t2) = 0 (and for t < t1 also x(t - t1) = 0). Those first t2 steps are the
only ones that differ from the stationary stream; the test phase of an online run
starts a fresh stream, whose first t2 steps do the same.

Three reference lines (expected loss per step on the stationary stream; each includes
the targets' own entropy), from the distribution in :func:`reference_lines`:

- 0.6616: nothing learned (predicting the mean target, 0.625, at every step);
- 0.5192: only the t1 dependency (predicting E[y | x(t - t1)]);
- 0.4544: optimal (predicting y itself).

Not to be confused with the ``adding`` task (the adding problem of Hochreiter &
Schmidhuber 1997 and Le et al. 2015: independent sequences, two marked values, one
regression target at the end).

>>> task = AddTask()
>>> X, Y = task.stream(np.random.default_rng(0), 12)
>>> X.shape, Y.shape
((1, 12, 2), (1, 12, 2))
"""

import numpy as np

from ..exceptions import InvalidArgument
from ..settings import Setting
from ._stream import DEFAULTS, STREAM_WINDOW, TEST_STEPS, StreamTask, cross_entropy

T1 = Setting("t1", "int", "add: the target depends on the input t1 steps ago (weight +0.5).", 5, minimum=1,
             maximum=100000, tasks=("add",), together=True)
T2 = Setting("t2", "int", "add: ... and on the input t2 steps ago (weight -0.25); t2 > t1.", 9, minimum=2,
             maximum=100000, tasks=("add",), together=True)

#: The reference lines of the default task (t1 = 5, t2 = 9), as published (Marschall et al. 2020).
PUBLISHED = {"nothing_learned": 0.6616, "only_t1": 0.5192, "optimal": 0.4544}


def target_probability(x1, x2):
    """y = 0.5 + 0.5 x(t - t1) - 0.25 x(t - t2), for past inputs x1 = x(t - t1), x2 = x(t - t2)."""
    return 0.5 + 0.5 * np.asarray(x1, dtype=np.float64) - 0.25 * np.asarray(x2, dtype=np.float64)


def reference_lines():
    """The expected loss per step of three predictors on the stationary stream (any t1 < t2).

    x(t - t1) and x(t - t2) are independent fair coins, so the target takes the four
    values y(x1, x2) with probability 1/4 each; the loss of predicting q is the
    cross-entropy -y ln q - (1 - y) ln(1 - q), averaged over the four:

    - ``nothing_learned``: q = E[y] = 0.625 whatever the past;
    - ``only_t1``: q = E[y | x1] = 0.5 + 0.5 x1 - 0.125;
    - ``optimal``: q = y (the loss is then the mean entropy of the targets).
    """
    x1, x2 = np.meshgrid([0.0, 1.0], [0.0, 1.0], indexing="ij")  # x1 varies along axis 0
    y = target_probability(x1, x2)

    def loss(q):
        q = np.broadcast_to(q, y.shape)
        return cross_entropy(np.stack([y, 1 - y], -1).reshape(-1, 2), np.stack([q, 1 - q], -1).reshape(-1, 2))

    return {"nothing_learned": loss(y.mean()), "only_t1": loss(y.mean(axis=1, keepdims=True)), "optimal": loss(y)}


class AddTask(StreamTask):
    """The Add task (see the module): a stream with inputs (x, 1 - x) and soft targets (y, 1 - y)."""

    name = "add"
    n_in = 2
    n_out = 2
    head = "softmax"
    defaults = DEFAULTS
    PARAMS = (T1, T2, STREAM_WINDOW, TEST_STEPS)
    description = "predicts coin flips that depend on the flips t1 and t2 steps back (a stream)"

    def __init__(self, t1=5, t2=9, stream_window=10, test_steps=10000):
        self.t1, self.t2 = T1.check(t1), T2.check(t2)
        if self.t2 <= self.t1:
            raise InvalidArgument(f"t2 must be larger than t1 (t1={self.t1}), got t2={self.t2}: the target reads the "
                                  f"input t1 steps back and the one t2 > t1 steps back")
        self.stream_window = STREAM_WINDOW.check(stream_window)
        self.test_steps = TEST_STEPS.check(test_steps)
        self.T = self.positions = self.stream_window

    def reference_lines(self):
        """:func:`reference_lines`: {"nothing_learned", "only_t1", "optimal"} expected loss per step."""
        return reference_lines()

    def results_line(self, loss):
        """One line placing a loss per step among the reference lines."""
        r = self.reference_lines()
        return (f"{loss:.4f} per step (nothing learned {r['nothing_learned']:.4f}, only t1 {r['only_t1']:.4f}, "
                f"optimal {r['optimal']:.4f})")

    # ----------------------------------------------------------------- the stream
    def _start(self, batch):
        return np.zeros((self.t2, batch))  # the last t2 inputs, oldest first: zeros before the stream starts

    def _draw(self, rng, steps, batch, memory):
        x = (rng.random((steps, batch)) < 0.5).astype(np.float64)  # one row of draws per step
        past = np.concatenate([memory, x])  # past[t2 + t] is x(t)
        t = np.arange(steps)
        y = target_probability(past[self.t2 + t - self.t1], past[t])
        X = np.stack([x, 1.0 - x], axis=2)
        Y = np.stack([y, 1.0 - y], axis=2)
        return X, Y, past[len(past) - self.t2 :].copy()

    def _memory_to_json(self, memory):
        return memory.astype(np.int64).tolist()

    def _memory_from_json(self, value, batch):
        memory = np.asarray(value, dtype=np.float64)
        if memory.shape != (self.t2, batch) or not np.isin(memory, (0.0, 1.0)).all():
            raise InvalidArgument(f"the saved stream does not fit this run (its last inputs have shape {memory.shape}, "
                                  f"t2={self.t2} and batch={batch} need ({self.t2}, {batch})); resume with the same "
                                  f"--t2 and --batch")
        return memory
