"""The adding problem: remember two marked values across a long sequence and output their sum.

Every step has two inputs, a value and a marker. Exactly two steps are marked;
the target, at the last step only (mask 1 there), is built from the two marked
values, and the loss is squared error at that step. Three forms (``adding_form``):

``unit`` (Le, Jaitly & Hinton 2015; Arjovsky, Shah & Bengio 2016)
    ``length`` = T steps; values U[0, 1); markers 1 at one step drawn uniformly from
    the first half (steps 0..T//2-1) and one from the second (T//2..T-1), else 0;
    target X1 + X2. Always predicting 1 gives MSE 1/6 (the variance of the sum).
``signed``
    The same with values U[-1, 1): target X1 + X2, always predicting 0 gives MSE 2/3.
    (The form of the pure-numpy LSTM of benchmarks/bench_long_range.py.)
``hochreiter`` (Hochreiter & Schmidhuber 1997, experiment 4)
    Lengths drawn uniformly from T..T + T//10 (padded with zeros to T + T//10, the
    mask on each sequence's own last step); values U[-1, 1); markers -1 at the first
    and last steps; X1 marked among steps 0..9, X2 among the first T/2 - 1 steps
    (0..T//2-2) not already marked; a marked first step has its value set to 0;
    target 0.5 + (X1 + X2)/4, scored correct when |error| < 0.04. A constant 0.5
    gives MSE just under 1/24 (:attr:`AddingProblem.baseline` has the exact value).

Every row of a run scores the model on a fixed held-out batch: ``test_mse`` (mean
squared error, without the loss's 1/2) and ``test_correct`` (the fraction with
|error| < 0.04, the 1997 criterion), beside :attr:`AddingProblem.baseline`, what
the best constant prediction scores.

>>> task = AddingProblem(length=6)
>>> batch = task.sample(np.random.default_rng(0), 2)
>>> batch.X.shape, batch.Y.shape, batch.mask[0].tolist()
((2, 6, 2), (2, 6, 1), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0])

Each sequence comes from one row of ``rng.random`` draws (its values, then the
positions), so n1 samples then n2 are the same numbers as n1 + n2 at once.
"""

import numpy as np

from ..exceptions import InvalidArgument
from ..settings import Setting
from ._base import Batch, Task, uniform_ints

FORMS = ("unit", "signed", "hochreiter")

LENGTH = Setting("length", "int", "adding: steps per sequence T (the hochreiter form: the shortest length).", 100,
                 minimum=2, maximum=100000, tasks=("adding",), together=True)
ADDING_FORM = Setting("adding_form", "choice", "adding: unit (values U[0,1], Le et al. 2015), signed (values U[-1,1]) "
                      "or hochreiter (Hochreiter & Schmidhuber 1997, experiment 4).", "unit", choices=FORMS,
                      tasks=("adding",), together=True)

#: One configuration for the long-range tasks (docs/long-range.md): Adam at 1e-3, norm clipped at 1.
DEFAULTS = dict(iters=2000, batch=32, hidden=32, activation="tanh", optimizer="adam", lr=0.001, clip=1.0,
                init_scale="fan_in")

#: |error| below this counts as correct (Hochreiter & Schmidhuber 1997).
TOLERANCE = 0.04


class AddingProblem(Task):
    """The adding problem (see the module); input 2 (value, marker), output 1, linear head, one scored step."""

    name = "adding"
    n_in = 2
    n_out = 1
    head = "linear"
    defaults = DEFAULTS
    PARAMS = (LENGTH, ADDING_FORM)
    description = "adds the two marked values of a sequence"
    scores_held_out = True
    score_columns = ("test_mse", "test_correct")
    headline = score_columns  # the held-out scores sum a run up
    goal = False

    def __init__(self, length=100, adding_form="unit"):
        self.length = LENGTH.check(length)
        self.adding_form = ADDING_FORM.check(adding_form)
        if self.adding_form == "hochreiter" and self.length < 20:
            raise InvalidArgument(f"length={self.length} is too short for adding_form='hochreiter' (X1 among the first 10 "
                                  f"steps, X2 among the first T/2 - 1): give length 20 or more")
        T = self.length
        self.T = T + T // 10 if self.adding_form == "hochreiter" else T
        self.positions = 1

    @property
    def baseline(self):
        """What the best constant prediction scores: {"test_mse": ..., "test_correct": ...}, exactly."""
        if self.adding_form == "unit":  # constant 1: the variance of two U[0, 1) values; |S - 1| < a, S triangular
            return {"test_mse": 1 / 6, "test_correct": 2 * TOLERANCE - TOLERANCE**2}
        if self.adding_form == "signed":  # constant 0
            a = TOLERANCE / 2
            return {"test_mse": 2 / 3, "test_correct": 2 * a - a**2}
        # constant 0.5; X_i is 0 when it sits on the first step, else U[-1, 1) (variance 1/3)
        cand = self.length // 2 - 1
        p1_zero = 1 / 10
        p2_zero = sum((1 / 10) / ((cand - 1) if p1 < cand else cand) for p1 in range(1, 10))
        mse = ((1 - p1_zero) + (1 - p2_zero)) / 3 / 16
        a = 4 * TOLERANCE  # |X1 + X2| < 0.16
        correct = (1 - p1_zero - p2_zero) * (a - a**2 / 4) + (p1_zero + p2_zero) * a
        return {"test_mse": mse, "test_correct": correct}

    @property
    def baseline_note(self):
        return {"unit": "predicting 1", "signed": "predicting 0", "hochreiter": "predicting 0.5"}[self.adding_form]

    def sample(self, rng, n):
        T, Tm = self.length, self.T
        u = rng.random((n, Tm + 3))  # one row per sequence: the values, then the draws of the positions and length
        rows = np.arange(n)
        X = np.zeros((n, Tm, 2))
        Y = np.zeros((n, Tm, 1))
        mask = np.zeros((n, Tm))
        if self.adding_form != "hochreiter":
            X[:, :, 0] = u[:, :T] if self.adding_form == "unit" else 2.0 * u[:, :T] - 1.0
            half = T // 2
            p1 = uniform_ints(u[:, T], half)
            p2 = half + uniform_ints(u[:, T + 1], T - half)
            X[rows, p1, 1] = 1.0
            X[rows, p2, 1] = 1.0
            Y[:, T - 1, 0] = X[rows, p1, 0] + X[rows, p2, 0]
            mask[:, T - 1] = 1.0
            return Batch(X, Y, mask)
        lengths = T + uniform_ints(u[:, Tm + 2], T // 10 + 1)
        inside = np.arange(Tm)[None, :] < lengths[:, None]
        X[:, :, 0] = np.where(inside, 2.0 * u[:, :Tm] - 1.0, 0.0)
        last = lengths - 1
        cand = T // 2 - 1
        p1 = uniform_ints(u[:, Tm], 10)
        k = np.where(p1 < cand, uniform_ints(u[:, Tm + 1], cand - 1), uniform_ints(u[:, Tm + 1], cand))
        p2 = np.where((p1 < cand) & (k >= p1), k + 1, k)
        X[:, 0, 1] = -1.0
        X[rows, last, 1] = -1.0
        X[rows, p1, 1] = 1.0
        X[rows, p2, 1] = 1.0
        X[:, 0, 0] = np.where(X[:, 0, 1] == 1.0, 0.0, X[:, 0, 0])  # a marked first step counts 0
        Y[rows, last, 0] = 0.5 + (X[rows, p1, 0] + X[rows, p2, 0]) / 4.0
        mask[rows, last] = 1.0
        return Batch(X, Y, mask)

    def score(self, yhat, batch):
        """test_mse and test_correct of predictions ``yhat`` (n, T, 1) on ``batch``."""
        rows = np.arange(batch.mask.shape[0])
        last = batch.mask.argmax(axis=1)
        err = yhat[rows, last, 0] - batch.Y[rows, last, 0]
        return {"test_mse": float(np.mean(err**2)), "test_correct": float(np.mean(np.abs(err) < TOLERANCE))}

    def baseline_scores(self, batch):
        """The scores of the best constant prediction on ``batch`` (its expectation: :attr:`baseline`)."""
        constant = {"unit": 1.0, "signed": 0.0, "hochreiter": 0.5}[self.adding_form]
        return self.score(np.full(batch.Y.shape, constant), batch)

    def scores_line(self, row):
        b = self.baseline
        return (f"test MSE {row['test_mse']:.4f} (baseline {b['test_mse']:.4f}, {self.baseline_note}), "
                f"{row['test_correct']:.3f} within {TOLERANCE} (baseline {b['test_correct']:.3f})")
