"""Copy memory (Arjovsky, Shah & Bengio 2016): reproduce ten symbols after a lag of blanks.

Ten classes, one-hot in and out: the symbols 0..7, the blank 8 and the delimiter 9.
A sequence of ``lag`` = T has T + 20 steps: ten symbols drawn uniformly from the 8,
then T - 1 blanks, the delimiter, and ten more blanks, during which the model must
output the ten symbols in order. The target is the blank at every step but the last
ten, which hold the symbols; softmax cross-entropy counts at every step.

A memoryless model that predicts the blank until the delimiter and then a uniform
guess over the 8 symbols has cross-entropy 10 ln 8 / (T + 20) per step: the baseline
(:attr:`CopyMemory.baseline`). Every row of a run scores the model on a fixed
held-out batch: ``test_ce_per_step`` (the mean cross-entropy over all T + 20 steps)
and ``test_recall_accuracy`` (the share of the ten recalled symbols right; 1/8 by guessing).

>>> task = CopyMemory(lag=3)
>>> batch = task.sample(np.random.default_rng(0), 1)
>>> batch.X.shape, batch.X[0].argmax(axis=1)[10:].tolist()
((1, 23, 10), [8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8])
"""

import numpy as np

from ._base import Batch, Task, uniform_ints
from .adding import DEFAULTS
from .recall import LAG

#: symbols to copy, the blank, the delimiter
SYMBOLS, BLANK, DELIMITER = 8, 8, 9
#: symbols in a sequence (and steps to recall them in)
COPIED = 10


class CopyMemory(Task):
    """Copy memory (see the module): T + 20 steps, 10 classes in and out, softmax at every step."""

    name = "copy"
    n_in = 10
    n_out = 10
    head = "softmax"
    defaults = DEFAULTS
    PARAMS = (LAG,)
    description = "copies ten symbols after a lag"
    scores_held_out = True
    score_columns = ("test_ce_per_step", "test_recall_accuracy")
    headline = score_columns  # the held-out scores sum a run up
    goal = False

    def __init__(self, lag=10):
        self.lag = LAG.check(lag)
        self.T = self.lag + 2 * COPIED
        self.positions = self.T

    @property
    def baseline(self):
        """The memoryless strategy's scores: cross-entropy 10 ln 8 / (T + 20) per step, 1/8 of the symbols right."""
        return {"test_ce_per_step": float(COPIED * np.log(SYMBOLS) / self.T), "test_recall_accuracy": 1 / SYMBOLS}

    baseline_note = "memoryless"

    def sample(self, rng, n):
        T = self.T
        symbols = uniform_ints(rng.random((n, COPIED)), SYMBOLS)  # one row of draws per sequence
        inputs = np.full((n, T), BLANK, dtype=np.int64)
        inputs[:, :COPIED] = symbols
        inputs[:, T - COPIED - 1] = DELIMITER
        targets = np.full((n, T), BLANK, dtype=np.int64)
        targets[:, T - COPIED :] = symbols
        eye = np.eye(self.n_in)
        return Batch(eye[inputs], eye[targets], None)

    def score(self, yhat, batch):
        """test_ce_per_step and test_recall_accuracy of probabilities ``yhat`` (n, T + 20, 10) on ``batch``."""
        p = np.sum(yhat * batch.Y, axis=2)
        ce = -np.log(np.maximum(p, np.finfo(np.float64).tiny))
        recall = yhat[:, -COPIED:].argmax(axis=2) == batch.Y[:, -COPIED:].argmax(axis=2)
        return {"test_ce_per_step": float(ce.mean()), "test_recall_accuracy": float(recall.mean())}

    def baseline_scores(self, batch):
        """The memoryless strategy's scores on ``batch``: the blank until the delimiter, then a uniform guess over
        the 8 symbols (the cross-entropy is exactly the baseline on every batch; the symbols right count
        the first symbol, argmax's pick among equals)."""
        guess = np.zeros(batch.Y.shape)
        guess[:, : self.T - COPIED, BLANK] = 1.0
        guess[:, self.T - COPIED :, :SYMBOLS] = 1.0 / SYMBOLS
        return self.score(guess, batch)

    def scores_line(self, row):
        b = self.baseline
        return (f"test cross-entropy {row['test_ce_per_step']:.4f} per step (baseline {b['test_ce_per_step']:.4f}, "
                f"memoryless), recalled symbols {row['test_recall_accuracy']:.3f} right (baseline 1/8)")
