"""The Mimic task (Marschall, Cho & Savin 2020): imitate a fixed random teacher network.

The inputs are independent fair coins, one per input unit at every step (``teacher_inputs``
units, 2 by default). The targets are the outputs of a fixed "teacher" RNN fed the same
stream, as vanilla-rtrl's Mimic task makes them: the teacher starts from h = 0 when the
stream starts, and at every step

    h_t = tanh(W h_{t-1} + U x_t + b),    y_t = softmax(V h_t + c)

(the leak alpha = 1, which is a plain Elman cell). The teacher's output function
applied to its logits is the target, here a probability vector over ``teacher_outputs``
classes, learned with softmax cross-entropy against the soft target y_t.

The teacher is drawn from ``teacher_seed`` (the same teacher for every run seed, so that
runs compare on one problem), the way vanilla-rtrl builds its networks: ``teacher_hidden``
units (32), U ~ N(0, 1/n_in), V ~ N(0, 1/n_h), W orthogonal (the Q of the QR decomposition
of a standard normal matrix, its columns' signs fixed by diag(R)), both biases zero.

A student with at least the teacher's hidden units can match it exactly, so the best
loss per step is the mean entropy of the targets; predicting the average target at every
step is the "nothing learned" line. :meth:`MimicTask.reference_lines` estimates both on a
fixed stream of the teacher.

>>> task = MimicTask()
>>> X, Y = task.stream(np.random.default_rng(0), 5)
>>> X.shape, Y.shape, bool(np.allclose(Y.sum(axis=2), 1.0))
((1, 5, 2), (1, 5, 2), True)
"""

import functools

import numpy as np

from ..exceptions import InvalidArgument
from ..settings import Setting
from ._stream import DEFAULTS, STREAM_WINDOW, TEST_STEPS, StreamTask, cross_entropy

TEACHER_HIDDEN = Setting("teacher_hidden", "int", "mimic: hidden units of the fixed random teacher RNN.", 32, minimum=1,
                         maximum=512, tasks=("mimic",), together=True)
TEACHER_INPUTS = Setting("teacher_inputs", "int", "mimic: input units (each a fair coin at every step).", 2, minimum=1,
                         maximum=512, tasks=("mimic",), together=True)
TEACHER_OUTPUTS = Setting("teacher_outputs", "int", "mimic: classes of the teacher's softmax output (the soft targets).", 2,
                          minimum=2, maximum=512, tasks=("mimic",), together=True)
TEACHER_SEED = Setting("teacher_seed", "int", "mimic: draws the teacher's weights (the same teacher for every --seed).", 0,
                       minimum=0, tasks=("mimic",))

#: Steps of the fixed stream on which the reference lines are estimated, and its seed.
REFERENCE_STEPS = 20000
REFERENCE_SEED = 20200601


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def draw_teacher(n_in, n_h, n_out, seed):
    """The teacher's weights (U (n_h, n_in), W (n_h, n_h), b (n_h), V (n_out, n_h), c (n_out)) from ``seed``."""
    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, np.sqrt(1.0 / n_in), (n_h, n_in))
    q, r = np.linalg.qr(rng.normal(0.0, 1.0, (n_h, n_h)))
    W = q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]
    V = rng.normal(0.0, np.sqrt(1.0 / n_h), (n_out, n_h))
    return U, W, np.zeros(n_h), V, np.zeros(n_out)


class MimicTask(StreamTask):
    """The Mimic task (see the module): soft targets from a fixed random teacher RNN on a coin-flip stream."""

    name = "mimic"
    head = "softmax"
    defaults = DEFAULTS
    PARAMS = (TEACHER_HIDDEN, TEACHER_INPUTS, TEACHER_OUTPUTS, TEACHER_SEED, STREAM_WINDOW, TEST_STEPS)
    description = "imitates a fixed random teacher RNN on a stream of coin flips"

    def __init__(self, teacher_hidden=32, teacher_inputs=2, teacher_outputs=2, teacher_seed=0, stream_window=10,
                 test_steps=10000):
        self.teacher_hidden = TEACHER_HIDDEN.check(teacher_hidden)
        self.teacher_inputs = TEACHER_INPUTS.check(teacher_inputs)
        self.teacher_outputs = TEACHER_OUTPUTS.check(teacher_outputs)
        self.teacher_seed = TEACHER_SEED.check(teacher_seed)
        self.stream_window = STREAM_WINDOW.check(stream_window)
        self.test_steps = TEST_STEPS.check(test_steps)
        self.n_in, self.n_out = self.teacher_inputs, self.teacher_outputs
        self.T = self.positions = self.stream_window
        self.teacher = draw_teacher(self.n_in, self.teacher_hidden, self.n_out, self.teacher_seed)

    def reference_lines(self):
        """Estimated loss per step of two predictors on a fixed stream of ``REFERENCE_STEPS`` steps:
        ``nothing_learned`` (the mean target at every step) and ``optimal`` (the teacher itself: the mean
        entropy of the targets)."""
        return dict(_reference(self.teacher_inputs, self.teacher_hidden, self.teacher_outputs, self.teacher_seed))

    def results_line(self, loss):
        r = self.reference_lines()
        return f"{loss:.4f} per step (nothing learned {r['nothing_learned']:.4f}, optimal {r['optimal']:.4f}, estimated)"

    # ----------------------------------------------------------------- the stream
    def _start(self, batch):
        return np.zeros((batch, self.teacher_hidden))  # the teacher's state, h = 0 before the stream

    def _draw(self, rng, steps, batch, memory):
        U, W, b, V, c = self.teacher
        X = (rng.random((steps, batch, self.n_in)) < 0.5).astype(np.float64)  # one row of draws per step
        Y = np.empty((steps, batch, self.n_out))
        h = memory
        for t in range(steps):  # step by step, the same products whatever the chunk: chunks change no number
            h = np.tanh(h @ W.T + X[t] @ U.T + b)
            Y[t] = softmax(h @ V.T + c)
        return X, Y, h.copy()

    def _memory_to_json(self, memory):
        return memory.tolist()  # floats: JSON keeps them exactly (shortest repr)

    def _memory_from_json(self, value, batch):
        try:
            memory = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            memory = None
        if memory is None or memory.shape != (batch, self.teacher_hidden) or not np.isfinite(memory).all():
            raise InvalidArgument(f"the saved stream does not fit this run (the teacher's state must be ({batch}, "
                                  f"{self.teacher_hidden}) finite numbers); resume with the same --teacher-hidden and --batch")
        return memory


@functools.lru_cache(maxsize=8)
def _reference(n_in, n_h, n_out, seed):
    task = MimicTask(n_h, n_in, n_out, seed)
    _, Y = task.stream(np.random.default_rng(REFERENCE_SEED), REFERENCE_STEPS)
    Y = Y[0]
    return (("nothing_learned", cross_entropy(Y, np.broadcast_to(Y.mean(axis=0), Y.shape))),
            ("optimal", cross_entropy(Y, Y)))
