"""Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a): classify the order of two far-apart symbols.

Eight symbols, one-hot: E, B, a, b, c, d, X, Y. A sequence of 100 to 110 steps
(drawn uniformly) starts with E and ends with the trigger B; the steps between show
distractors drawn from {a, b, c, d}, except two relevant symbols drawn from {X, Y},
at t1 in [10, 20] and t2 in [50, 60] (0-based steps). At the trigger the model
names the class of the pair, XX, XY, YX or YY (softmax over 4). Sequences are
padded with zeros to 110 steps; the mask is 1 on each sequence's last step only.

Chance is ln 4 = 1.386 cross-entropy and 25% accuracy (:attr:`TemporalOrder.baseline`).
Every row of a run scores the model on a fixed held-out batch: ``test_ce`` and
``test_accuracy``.
"""

import numpy as np

from ._base import Batch, Task, uniform_ints
from .adding import DEFAULTS

#: the input symbols, in the order of the one-hot features
ALPHABET = ("E", "B", "a", "b", "c", "d", "X", "Y")
E, B, DISTRACTOR0, X_SYMBOL = 0, 1, 2, 6
#: the classes, in the order of the outputs
CLASSES = ("XX", "XY", "YX", "YY")
SHORTEST, LONGEST = 100, 110
T1, T2 = (10, 20), (50, 60)


class TemporalOrder(Task):
    """Temporal order 6a (see the module): 8 symbols in, 4 classes out, one scored step, variable lengths."""

    name = "order"
    n_in = len(ALPHABET)
    n_out = len(CLASSES)
    head = "softmax"
    defaults = DEFAULTS
    PARAMS = ()
    description = "names the order of two far-apart symbols"
    scores_held_out = True
    score_columns = ("test_ce", "test_accuracy")
    headline = score_columns  # the held-out scores sum a run up
    goal = False
    baseline = {"test_ce": float(np.log(4)), "test_accuracy": 0.25}
    baseline_note = "chance"

    def __init__(self):
        self.T = LONGEST
        self.positions = 1

    def sample(self, rng, n):
        T = self.T
        u = rng.random((n, T + 5))  # one row per sequence: distractors, length, t1, t2, the two symbols
        rows = np.arange(n)
        lengths = SHORTEST + uniform_ints(u[:, T], LONGEST - SHORTEST + 1)
        t1 = T1[0] + uniform_ints(u[:, T + 1], T1[1] - T1[0] + 1)
        t2 = T2[0] + uniform_ints(u[:, T + 2], T2[1] - T2[0] + 1)
        first = uniform_ints(u[:, T + 3], 2)  # 0: X, 1: Y
        second = uniform_ints(u[:, T + 4], 2)
        symbols = DISTRACTOR0 + uniform_ints(u[:, :T], 4)
        symbols[:, 0] = E
        symbols[rows, lengths - 1] = B
        symbols[rows, t1] = X_SYMBOL + first
        symbols[rows, t2] = X_SYMBOL + second
        inside = np.arange(T)[None, :] < lengths[:, None]
        X = np.eye(self.n_in)[symbols] * inside[:, :, None]
        Y = np.zeros((n, T, self.n_out))
        Y[rows, lengths - 1, 2 * first + second] = 1.0
        mask = np.zeros((n, T))
        mask[rows, lengths - 1] = 1.0
        return Batch(X, Y, mask)

    def score(self, yhat, batch):
        """test_ce and test_accuracy of probabilities ``yhat`` (n, 110, 4) on ``batch``."""
        rows = np.arange(batch.mask.shape[0])
        last = batch.mask.argmax(axis=1)
        p, y = yhat[rows, last], batch.Y[rows, last]
        ce = -np.log(np.maximum(np.sum(p * y, axis=1), np.finfo(np.float64).tiny))
        return {"test_ce": float(ce.mean()), "test_accuracy": float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))}

    def baseline_scores(self, batch):
        """The scores of always answering XX with probabilities 1/4 each (chance) on ``batch``."""
        return self.score(np.full(batch.Y.shape, 0.25), batch)

    def scores_line(self, row):
        return (f"test cross-entropy {row['test_ce']:.4f} (chance ln 4 = 1.3863), test accuracy "
                f"{row['test_accuracy']:.3f} (chance 0.25)")
