"""Decimal addition (docs/math.md): ``digits``-digit numbers, least significant digit first, softmax over 10 digits.

a, b < 10**(digits-1), so that c = a + b fits ``digits`` digits: the final carry
lands on the last digit and no extra output step is needed (docs/math.md's choice).

Encodings: ``pair`` (default) reads both digits of a position in one step,
x_t = onehot(a_t) ++ onehot(b_t) (input 20, T = digits); ``interleave`` is the
one digit per step (the classic exercise's form), a_1, b_1, a_2, b_2, ... (input 10, T = 2 digits),
with the target on each b step and the mask 0 on each a step.
"""

import numpy as np

from ..exceptions import InvalidArgument
from ..settings import Setting
from ._base import Batch, Task, operands

ENCODINGS = ("pair", "interleave")

DIGITS = Setting("digits", "int", "digits: digits per number.", 10, minimum=2, maximum=18, tasks=("digits",),
                 why="operands are int64", together=True)
ENCODING = Setting("encoding", "choice", "digits: both digits per step, or one.", "pair", choices=ENCODINGS,
                   tasks=("digits",), together=True)

#: Chosen by measurement over seeds (README, "How the defaults were chosen";
#: benchmarks/study_defaults.py reproduces the table).
DEFAULTS = dict(iters=2000, batch=32, hidden=100, activation="tanh", optimizer="adam", lr=0.005, clip=1.0, init_scale="fan_in")


class DigitAddition(Task):
    """Decimal addition of ``digits``-digit numbers, softmax head over 10 digits (see the module)."""

    name = "digits"
    n_out = 10
    head = "softmax"
    unit = "digit"
    defaults = DEFAULTS
    PARAMS = (DIGITS, ENCODING)
    decodes = True
    description = "adds decimal numbers"

    def __init__(self, digits=10, encoding="pair"):
        self.digits = DIGITS.check(digits)
        self.encoding = ENCODING.check(encoding)
        self.n_in = 20 if self.encoding == "pair" else 10
        self.T = self.digits if self.encoding == "pair" else 2 * self.digits
        self.positions = self.digits
        self.limit = 10 ** (self.digits - 1)

    def sample(self, rng, n):
        return self.encode(*operands(rng, n, self.limit))

    def _digits_of(self, v):
        return (v[:, None] // (10 ** np.arange(self.digits, dtype=np.int64))) % 10

    def encode(self, a, b):
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        n, D = a.shape[0], self.digits
        da, db, dc = self._digits_of(a), self._digits_of(b), self._digits_of(a + b)
        eye = np.eye(10)
        if self.encoding == "pair":
            X = np.concatenate([eye[da], eye[db]], axis=2)
            Y = eye[dc]
            mask = None
        else:
            X = np.empty((n, 2 * D, 10))
            X[:, 0::2] = eye[da]
            X[:, 1::2] = eye[db]
            Y = np.zeros((n, 2 * D, 10))
            Y[:, 1::2] = eye[dc]
            mask = np.zeros((n, 2 * D))
            mask[:, 1::2] = 1.0
        return Batch(np.ascontiguousarray(X), np.ascontiguousarray(Y), mask, a, b)

    def _answer_steps(self, arr):
        return arr if self.encoding == "pair" else arr[:, 1::2]

    def predicted_positions(self, yhat, mask=None):
        """The predicted digits (n, digits), least significant first."""
        return self._answer_steps(yhat).argmax(axis=2)

    def true_positions(self, batch):
        return self._answer_steps(batch.Y).argmax(axis=2)

    def decode(self, positions):
        return (positions * 10 ** np.arange(positions.shape[1], dtype=np.int64)).sum(axis=1)

    def check_operand(self, name, value):
        if value < 0 or value >= self.limit:
            raise InvalidArgument(
                f"{name} = {value} does not fit: with --digits {self.digits} the operands must lie in "
                f"0..{self.limit - 1} (so that the sum fits {self.digits} digits); pass a larger --digits"
            )

    def format_positions(self, positions):
        return "".join(str(int(v)) for v in positions[::-1])
