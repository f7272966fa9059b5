"""Binary addition (docs/math.md): a + b, bit by bit, least significant bit first.

The carry flows forward in time, the direction the RNN reads.

>>> task = BinaryAddition(bits=8)
>>> batch = task.sample(np.random.default_rng(0), 2)
>>> batch.X.shape, batch.Y.shape          # (samples, time, features)
((2, 8, 2), (2, 8, 1))

One sample, a = 45 = 0b00101101 and b = 73 = 0b01001001, LSB first:

    t     0 1 2 3 4 5 6 7
    x_t0  1 0 1 1 0 1 0 0      bits of a
    x_t1  1 0 0 1 0 0 1 0      bits of b
    y_t   0 1 1 0 1 1 1 0      bits of c = 118
"""

import functools

import numpy as np

from ..exceptions import InvalidArgument
from ..settings import Setting
from ._base import Batch, Task, operands

BITS = Setting("bits", "int", "binary: bits per number.", 8, minimum=2, maximum=62, tasks=("binary",),
               why="operands are int64", together=True)

#: Chosen by measurement over seeds (README, "How the defaults were chosen";
#: benchmarks/study_defaults.py reproduces the table).
DEFAULTS = dict(iters=20000, batch=1, hidden=16, activation="sigmoid", optimizer="sgd", lr=0.1, clip=None, init_scale=1.0)


@functools.lru_cache(maxsize=None)
def _pairs_table(bits):
    limit = 2 ** (bits - 1)
    values = np.arange(limit, dtype=np.int64)
    own = ((values[:, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.float64)  # as _bits_table
    table = np.empty((limit, limit, bits, 2))
    table[:, :, :, 0] = own[:, None, :]
    table[:, :, :, 1] = own[None, :, :]
    table = table.reshape(limit * limit, bits, 2)
    table.flags.writeable = False
    return table


class BinaryAddition(Task):
    """a + b with a, b < 2**(bits-1), so that c fits ``bits`` bits; input 2, output 1, sigmoid head."""

    name = "binary"
    n_in = 2
    n_out = 1
    head = "sigmoid"
    unit = "bit"
    defaults = DEFAULTS
    PARAMS = (BITS,)
    decodes = True
    description = "adds binary numbers"

    def __init__(self, bits=8):
        self.bits = BITS.check(bits)
        self.T = self.bits
        self.positions = self.bits
        self.limit = 2 ** (self.bits - 1)

    def sample(self, rng, n):
        a, b = operands(rng, n, self.limit)
        table = self._bits_table()
        if table is None:
            return self.encode(a, b)
        # encode's numbers, read from a table of every value's bits (training draws 100 pairs a
        # chunk: 40 -> 30 us of a chunk's Python at 8 bits)
        X = np.empty((a.shape[0], self.bits, 2))
        X[:, :, 0] = table[a]
        X[:, :, 1] = table[b]
        return Batch(X, table[a + b][:, :, None], None, a, b)

    def sample_into(self, rng, n, X, Y):
        """``sample(rng, n)``'s X and Y written into X (n, bits, 2) and Y (n, bits, 1), C-contiguous float64
        (the same draws, the same numbers); False (nothing drawn) where there is no table for it.

        X comes in one gather from a table of every pair's bits (2 MB at 8 bits), so that a
        sweep's data are written straight into its stacked arrays."""
        pairs = self._pairs_table()
        if pairs is None or X.dtype != np.float64 or Y.dtype != np.float64:
            return False
        a, b = operands(rng, n, self.limit)
        np.take(pairs, a * self.limit + b, axis=0, out=X, mode="clip")  # indices in range: clip only avoids a buffer
        np.take(self._bits_table(), a + b, axis=0, out=Y.reshape(n, self.bits), mode="clip")
        return True

    def _pairs_table(self):
        """(limit**2, bits, 2) float64: row a*limit + b holds encode(a, b)'s X (None above 8 bits: too large).
        One table per bits in the process (a sweep builds a task per run), read-only."""
        return _pairs_table(self.bits) if self.bits <= 8 else None

    def _bits_table(self):
        """(2**bits, bits) float64: row v holds v's bits, LSB first (None above 12 bits: too large)."""
        table = self.__dict__.get("_table")
        if table is None and self.bits <= 12:
            values = np.arange(2**self.bits, dtype=np.int64)
            table = ((values[:, None] >> np.arange(self.bits, dtype=np.int64)) & 1).astype(np.float64)
            self._table = table
        return table

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
