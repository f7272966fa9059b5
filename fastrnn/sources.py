"""Sources: where the training loop reads its data from.

The loop asks a source for the next ``n`` iterations of data at a time and hands
them to the chunk kernel. A source has three methods:

``next(n) -> (X, Y, M, resets)``
    X (n*B, T, n_in), Y (n*B, T, n_out) and M (n*B, T), C-contiguous in the
    run's dtype; iteration ``it`` trains on rows ``it*B .. (it+1)*B - 1``. An
    empty M (shape (0, 0)) means every step has a target. ``resets`` (int64) says
    per iteration whether the recurrent state starts from zeros (1) or carries on
    from the previous iteration (0); an empty array means every iteration starts
    from zeros (independent sequences, as in the addition tasks).
``state() -> object``
    Everything needed to continue the stream exactly (JSON-serialisable).
``restore(state)``
    Continue from a state returned by ``state()``.

:class:`SampledSource` is the source of the tasks that sample (binary, digits):
fresh sequences from the run's generator. Arrays (fit), windows of long streams
and text give other sources with the same three methods.
"""

import numpy as np


class SampledSource:
    """Fresh samples of a task, ``batch`` sequences per iteration, drawn from ``rng`` in order.

    ``next(n1)`` then ``next(n2)`` gives the same numbers as ``next(n1 + n2)``
    (the tasks draw pair by pair), so how the run is cut into chunks does not
    change its data.
    """

    def __init__(self, task, rng, batch, dtype):
        self.task, self.rng, self.batch, self.dtype = task, rng, batch, np.dtype(dtype)
        self._resets = np.zeros(0, dtype=np.int64)

    def next(self, n):
        X, Y, mask = self.task.sample(self.rng, n * self.batch)
        dt = self.dtype
        M = np.zeros((0, 0), dtype=dt) if mask is None else np.ascontiguousarray(mask, dtype=dt)
        return np.ascontiguousarray(X, dtype=dt), np.ascontiguousarray(Y, dtype=dt), M, self._resets

    def next_into(self, n, X, Y):
        """``next(n)``'s X and Y written into the given arrays (a stacked slot of a sweep), for a task
        without a mask; the same draws, the same numbers."""
        into = getattr(self.task, "sample_into", None)
        if into is not None and into(self.rng, n * self.batch, X, Y):
            return
        Xn, Yn, M, _ = self.next(n)
        if M.shape[0]:
            raise ValueError("next_into: this task has a mask; use next()")
        X[...] = Xn
        Y[...] = Yn

    def state(self):
        return self.rng.bit_generator.state

    def restore(self, state):
        self.rng.bit_generator.state = state
