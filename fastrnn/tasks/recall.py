"""Delayed recall: remember a symbol across ``lag`` steps of distractors (a long-memory task).

Every step shows one of ``SYMBOLS`` symbols, one-hot. Step 0's is the one to
remember, marked by a "store" flag; steps 1..lag-1 show random distractors from
the same alphabet (so a model cannot just ignore their input lines: it has to
hold what it stored while new symbols keep arriving); the last step, t = lag,
shows a query marker, and the target there is the symbol seen ``lag`` steps earlier. Only that
step has a target (mask 1), so the whole learning signal has to travel back
``lag`` recurrences. With the task's defaults the vanilla cell stops at lag 40,
where an LSTM whose forget gate starts open (``forget_bias=3``) keeps going; the
gated cells with PyTorch's zero biases stop earlier, and nothing learns lag 80 in
2000 iterations (README, "Gated cells and long memory"; benchmarks/study_recall.py).

>>> task = Recall(lag=3)
>>> batch = task.sample(np.random.default_rng(0), 2)
>>> batch.X.shape, batch.Y.shape, batch.mask.tolist()
((2, 4, 6), (2, 4, 4), [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])

Inputs are 6 features: the 4 symbols (one-hot, steps 0..lag-1), the store flag
(step 0) and the query marker (step lag); chance accuracy is 1/4.
"""

import numpy as np

from ..settings import Setting
from ._base import Batch, Task

LAG = Setting("lag", "int", "recall: steps between the symbol and the query (the memory needed); copy: the lag T "
              "(T - 1 blanks between the symbols and the delimiter).", 10, minimum=1, maximum=100000,
              tasks=("recall", "copy"), together=True)

#: symbols (to recall, and as distractors)
SYMBOLS = 4
#: input features after the symbols: the store flag, the query marker
STORE, QUERY = SYMBOLS, SYMBOLS + 1

DEFAULTS = dict(iters=2000, batch=32, hidden=32, activation="tanh", optimizer="adam", lr=0.01, clip=1.0,
                init_scale="fan_in")


class Recall(Task):
    """The symbol at step 0 is the target at step ``lag``; softmax head, one scored step."""

    name = "recall"
    n_in = SYMBOLS + 2
    n_out = SYMBOLS
    head = "softmax"
    defaults = DEFAULTS
    PARAMS = (LAG,)
    description = "recalls a symbol seen lag steps earlier"

    def __init__(self, lag=10):
        self.lag = LAG.check(lag)
        self.T = self.lag + 1
        self.positions = 1

    def sample(self, rng, n):
        # one draw per sequence, in sequence order: n1 samples then n2 equal n1 + n2 at once
        draws = rng.integers(0, 2**62, n, dtype=np.int64)
        T = self.T
        X = np.zeros((n, T, self.n_in))
        Y = np.zeros((n, T, self.n_out))
        mask = np.zeros((n, T))
        for i in range(n):
            seq = np.random.default_rng(int(draws[i]))
            key = int(seq.integers(0, SYMBOLS))
            X[i, 0, key] = 1.0
            X[i, 0, STORE] = 1.0
            if T > 2:
                X[i, np.arange(1, T - 1), seq.integers(0, SYMBOLS, T - 2)] = 1.0
            X[i, T - 1, QUERY] = 1.0
            Y[i, T - 1, key] = 1.0
        mask[:, T - 1] = 1.0
        return Batch(X, Y, mask)
