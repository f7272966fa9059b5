"""The two course tasks as data generators (SPEC.md): binary and digit addition.

Each task draws its operands from a ``numpy.random.Generator`` (reproducible and
independent of numba's own generator) and encodes them least significant position
first, so that the carry flows forward in time, the direction the RNN reads.

>>> task = BinaryAddition(bits=8)
>>> batch = task.sample(np.random.default_rng(0), 2)
>>> batch.X.shape, batch.Y.shape          # (samples, time, features)
((2, 8, 2), (2, 8, 1))

One binary sample, a = 45 = 0b00101101 and b = 73 = 0b01001001, LSB first:

    t     0 1 2 3 4 5 6 7
    x_t0  1 0 1 1 0 1 0 0      bits of a
    x_t1  1 0 0 1 0 0 1 0      bits of b
    y_t   0 1 1 0 1 1 1 0      bits of c = 118
"""

from dataclasses import dataclass

import numpy as np

from . import _checks
from .exceptions import InvalidArgument

TASK_NAMES = ("binary", "digits")
ENCODINGS = ("pair", "interleave")


@dataclass
class Batch:
    """Encoded samples: X (n, T, n_in), Y (n, T, n_out), mask (n, T) or None, and the operands."""

    X: np.ndarray
    Y: np.ndarray
    mask: object
    a: np.ndarray
    b: np.ndarray

    @property
    def c(self):
        return self.a + self.b


class BinaryAddition:
    """a + b with a, b < 2**(bits-1), so that c fits ``bits`` bits; input 2, output 1, sigmoid head."""

    name = "binary"
    n_in = 2
    n_out = 1
    head = "sigmoid"
    unit = "bit"

    def __init__(self, bits=8):
        self.bits = _checks.check_int("bits", bits, minimum=2)
        if self.bits > 62:
            raise InvalidArgument(f"bits must be at most 62 (operands are int64), got {self.bits}")
        self.T = self.bits
        self.positions = self.bits
        self.limit = 2 ** (self.bits - 1)

    def settings(self):
        return {"task": self.name, "bits": self.bits}

    def sample(self, rng, n):
        return self.encode(*_operands(rng, n, self.limit))

    def encode(self, a, b):
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        shifts = np.arange(self.bits, dtype=np.int64)
        X = np.empty((a.shape[0], self.bits, 2))
        X[:, :, 0] = (a[:, None] >> shifts) & 1
        X[:, :, 1] = (b[:, None] >> shifts) & 1
        Y = (((a + b)[:, None] >> shifts) & 1).astype(np.float64)[:, :, None]
        return Batch(X, Y, None, a, b)

    def predicted_positions(self, yhat, mask=None):
        """The predicted bits (n, bits), LSB first."""
        return (yhat[:, :, 0] > 0.5).astype(np.int64)

    def true_positions(self, batch):
        return batch.Y[:, :, 0].astype(np.int64)

    def decode(self, positions):
        return (positions << np.arange(positions.shape[1], dtype=np.int64)).sum(axis=1)

    def check_operand(self, name, value):
        if value < 0 or value >= self.limit:
            raise InvalidArgument(
                f"{name} = {value} does not fit: with --bits {self.bits} the operands must lie in 0..{self.limit - 1}; "
                f"pass a larger --bits"
            )

    def format_positions(self, positions):
        """Bits as a human reads them, most significant first."""
        return "".join(str(int(v)) for v in positions[::-1])


class DigitAddition:
    """Decimal addition of ``digits``-digit numbers (SPEC.md), softmax head over 10 digits.

    a, b < 10**(digits-1), so that c = a + b fits ``digits`` digits: the final carry
    lands on the last digit and no extra output step is needed (SPEC.md's choice).

    Encodings: ``pair`` (default) reads both digits of a position in one step,
    x_t = onehot(a_t) ++ onehot(b_t) (input 20, T = digits); ``interleave`` is the
    material's one digit per step, a_1, b_1, a_2, b_2, ... (input 10, T = 2 digits),
    with the target on each b step and the mask 0 on each a step.
    """

    name = "digits"
    n_out = 10
    head = "softmax"
    unit = "digit"

    def __init__(self, digits=10, encoding="pair"):
        self.digits = _checks.check_int("digits", digits, minimum=2)
        if self.digits > 18:
            raise InvalidArgument(f"digits must be at most 18 (operands are int64), got {self.digits}")
        self.encoding = _checks.check_choice("encoding", encoding, ENCODINGS)
        self.n_in = 20 if self.encoding == "pair" else 10
        self.T = self.digits if self.encoding == "pair" else 2 * self.digits
        self.positions = self.digits
        self.limit = 10 ** (self.digits - 1)

    def settings(self):
        return {"task": self.name, "digits": self.digits, "encoding": self.encoding}

    def sample(self, rng, n):
        return self.encode(*_operands(rng, n, self.limit))

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


def _operands(rng, n, limit):
    """n pairs (a, b), each uniform in 0..limit-1, drawn pair by pair.

    Drawing the pairs together makes the stream independent of how it is cut into
    chunks: n1 samples and then n2 are the same numbers as n1 + n2 at once, so
    ``log_every`` (the chunk size of training) does not change what a run learns.
    """
    ab = rng.integers(0, limit, (n, 2), dtype=np.int64)
    return ab[:, 0], ab[:, 1]


def make_task(name, bits=None, digits=None, encoding=None):
    """The task called ``name`` at the given width (None: the SPEC.md default)."""
    name = _checks.check_choice("task", name, TASK_NAMES)
    if name == "binary":
        if digits is not None or encoding is not None:
            raise InvalidArgument("digits and encoding belong to the digits task; the binary task takes bits")
        return BinaryAddition(8 if bits is None else bits)
    if bits is not None:
        raise InvalidArgument("bits belongs to the binary task; the digits task takes digits and encoding")
    return DigitAddition(10 if digits is None else digits, "pair" if encoding is None else encoding)


def task_from_metadata(meta, bits=None, digits=None):
    """The task a saved model was trained on, optionally at another width."""
    if not isinstance(meta, dict) or meta.get("task") not in TASK_NAMES:
        raise InvalidArgument("the model carries no task; only models saved by `fastrnn train --save` can add numbers")
    if meta["task"] == "binary":
        if digits is not None:
            raise InvalidArgument("this model adds binary numbers: use --bits, not --digits")
        return BinaryAddition(meta.get("bits", 8) if bits is None else bits)
    if bits is not None:
        raise InvalidArgument("this model adds decimal numbers: use --digits, not --bits")
    return DigitAddition(meta.get("digits", 10) if digits is None else digits, meta.get("encoding", "pair"))
