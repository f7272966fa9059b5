"""What the stream tasks share (add, mimic): an endless input stream with targets at every step.

A stream task has ``online = True`` and draws its data step by step: the targets at
step t depend on the inputs up to t (add: the inputs t1 and t2 steps ago; mimic: a
teacher network's state), so the data are one long stream per batch row, never
independent sequences. It provides:

``stream(rng, steps, batch) -> (X, Y)``
    The first ``steps`` steps of ``batch`` independent fresh streams: X (batch, steps,
    n_in), Y (batch, steps, n_out), float64.
``streamer(rng, batch) -> Stream``
    The same streams continued piece by piece: ``next(n)`` hands out the next n steps,
    and ``next(n1)`` then ``next(n2)`` are exactly ``next(n1 + n2)`` (the draws are made
    step by step, each step one row of ``rng.random``), so how a run is cut into chunks
    changes nothing. ``state()``/``restore()`` carry the generator and what the stream
    remembers (add: the last t2 inputs; mimic: the teacher's hidden state) through a
    checkpoint, exactly.
``source(rng, batch, dtype)``
    For the training that works on windows (the ``bptt`` rule, :func:`fastrnn.train`
    without an online rule): iteration i trains on window i of ``stream_window`` steps
    of each stream, the hidden state carried from window to window and reset to zeros
    only before the first (Williams & Peng's BPTT(K, K), as the text task trains).

A task module implements ``_start(batch)`` (the stream's memory before step 0),
``_draw(rng, steps, batch, memory) -> (X, Y, memory)`` (X, Y step-major: (steps,
batch, ...)), and ``_memory_to_json``/``_memory_from_json``.
"""

import numpy as np

from .. import _checks
from ..exceptions import InvalidArgument, InvalidType
from ..settings import Setting
from ._base import Batch, Task

STREAM_WINDOW = Setting("stream_window", "int", "add, mimic: steps per training window when the stream is trained with "
                        "backpropagation through time (no online rule): BPTT(K, K), the hidden state carried from "
                        "window to window.", 10, minimum=1, maximum=100000, tasks=("add", "mimic"), together=True)

TEST_STEPS = Setting("test_steps", "int", "add, mimic: steps of the test phase after training: fresh streams (their own "
                     "seed), no updates, the hidden state carried over from training; its loss per step goes to the "
                     "run's result as test_loss; 0 = none.", 10000, minimum=0, maximum=10_000_000, tasks=("add", "mimic"))

#: The second word of the test streams' seed: default_rng([seed, TEST_STREAM]) (training reads [seed, 1]).
TEST_STREAM = 5

#: Defaults of the stream tasks: vanilla-rtrl's reference run (n_h 32, tanh, plain SGD at lr 0.03, batch 1).
DEFAULTS = dict(iters=30000, batch=1, hidden=32, activation="tanh", optimizer="sgd", lr=0.03, clip=None,
                init_scale="fan_in")


class StreamTask(Task):
    """A task whose data are streams (see the module)."""

    online = True
    carries_state = True
    goal = False
    #: the test phase's loss first (in the run's result, summary.csv and reports), then the training rows'
    headline = ("test_loss", "loss_per_step")

    def stream(self, rng, steps, batch=1):
        """The first ``steps`` steps of ``batch`` fresh streams: X (batch, steps, n_in), Y (batch, steps, n_out)."""
        return self.streamer(rng, batch).next(steps)

    def streamer(self, rng, batch=1):
        """The streams of ``batch`` rows drawn from ``rng``, continued piece by piece (:class:`Stream`)."""
        return Stream(self, rng, batch)

    def sample(self, rng, n):
        """n windows of T steps, each the start of a fresh stream (probes; training walks the streams)."""
        X, Y = self.stream(rng, self.T, n)
        return Batch(X, Y, None)

    def source(self, rng, batch, dtype):
        """Windows of ``stream_window`` steps of ``batch`` streams, the state carried (see the module)."""
        return StreamSource(self.streamer(rng, batch), self.T, dtype)

    def metrics(self, model):
        return StreamMetrics(self, model, self.T)

    def scores_line(self, row):
        """The summary of a training row: its loss per step among the task's reference lines."""
        if row.get("test_loss") is not None:
            return (f"test loss {self.results_line(row['test_loss'])} over {row['test_steps']} steps; training "
                    f"loss {row['loss_per_step']:.4f} per step over the last row")
        return f"training loss {self.results_line(row['loss_per_step'])} over the last row"


class Stream:
    """``batch`` streams of a task, continued piece by piece from one generator (see the module)."""

    def __init__(self, task, rng, batch):
        self.task, self.rng = task, rng
        self.batch = _checks.check_int("batch", batch, minimum=1)
        self.memory = task._start(self.batch)
        self.steps = 0

    def next(self, steps):
        """The next ``steps`` steps: X (batch, steps, n_in), Y (batch, steps, n_out), float64."""
        steps = _checks.check_int("steps", steps, minimum=0)
        X, Y, self.memory = self.task._draw(self.rng, steps, self.batch, self.memory)
        self.steps += steps
        return np.ascontiguousarray(X.transpose(1, 0, 2)), np.ascontiguousarray(Y.transpose(1, 0, 2))

    def state(self):
        """JSON-able: the generator's state, the stream's memory and the steps handed out."""
        return dict(kind="stream", task=self.task.name, batch=self.batch, steps=int(self.steps),
                    rng=self.rng.bit_generator.state, memory=self.task._memory_to_json(self.memory))

    def restore(self, state):
        """Continue from ``state`` (from :meth:`state`, possibly through JSON)."""
        if not hasattr(state, "get"):
            raise InvalidType(f"state must be a dict as Stream.state() returns, got {type(state).__name__}")
        for key, mine in (("task", self.task.name), ("batch", self.batch)):
            if state.get(key) != mine:
                raise InvalidArgument(f"the saved stream does not fit this run: {key} was {state.get(key)!r}, now "
                                      f"{mine!r}; resume with the same --task and --batch")
        memory = self.task._memory_from_json(state.get("memory"), self.batch)
        try:
            self.rng.bit_generator.state = state["rng"]
            steps = int(state["steps"])
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument("the saved stream position is corrupt (its generator or step count cannot be read); "
                                  "the run cannot be resumed from it") from None
        self.memory, self.steps = memory, steps


class StreamSource:
    """A stream as the training loop's source: iteration i is window i (``T`` steps of each stream).

    ``next(n)`` gives X (n*B, T, n_in), Y (n*B, T, n_out), an empty mask and resets
    (1 before the very first window only: the state is carried along the stream).
    """

    kind = "stream"

    def __init__(self, stream, T, dtype):
        self.stream, self.T, self.dtype = stream, T, np.dtype(dtype)
        self.iteration = 0

    def next(self, n):
        B, T = self.stream.batch, self.T
        X, Y = self.stream.next(n * T)  # (B, n*T, .)
        dt = self.dtype

        def windows(A):
            return np.ascontiguousarray(A.reshape(B, n, T, A.shape[2]).transpose(1, 0, 2, 3).reshape(n * B, T, A.shape[2]),
                                        dtype=dt)

        resets = np.zeros(n, dtype=np.int64)
        if n and self.iteration == 0:
            resets[0] = 1
        self.iteration += n
        return windows(X), windows(Y), np.zeros((0, 0), dtype=dt), resets

    def state(self):
        return dict(kind=self.kind, window=self.T, iteration=int(self.iteration), stream=self.stream.state())

    def restore(self, state):
        if not hasattr(state, "get") or state.get("kind") != self.kind:
            raise InvalidArgument("the saved data position is not a stream's; resume with the same --task")
        if state.get("window") != self.T:
            raise InvalidArgument(f"the saved stream was cut into windows of {state.get('window')} steps, now {self.T}; "
                                  f"resume with --stream-window {state.get('window')}")
        self.stream.restore(state["stream"])
        self.iteration = int(state["iteration"])


class StreamMetrics:
    """A stream run's own column and end-of-run scores.

    ``loss_per_step``: a row's mean loss per step (the loss column of a run on windows
    sums a window's steps). :meth:`final`: the task's reference lines (``ref_<name>``)
    and, for a completed run, the test phase: ``test_steps`` steps of fresh streams
    (``default_rng([seed, TEST_STREAM])``, as many as the run trains), the weights
    fixed, starting from the hidden state training left (:meth:`attach` gives the run);
    ``test_loss`` is its mean loss per step. The run's own state is not touched, so a
    run saved after its test phase resumes as if there had been none.
    """

    def __init__(self, task, model, T):
        self.task, self.model, self.T = task, model, T
        self.run = None
        self.columns = ["loss_per_step"]

    def attach(self, run):
        self.run = run

    def update(self, losses, errors):
        return {"loss_per_step": float(np.sum(losses)) / (len(losses) * self.T)}

    def final(self, score=True):
        out = {f"ref_{name}": value for name, value in self.task.reference_lines().items()}
        steps = self.task.test_steps
        if score and steps and self.run is not None:
            out.update(test_steps=steps, test_loss=self.test_loss(steps))
        return out

    def test_loss(self, steps):
        """The mean loss per step of the test phase (see the class)."""
        run = self.run
        X, Y = self.task.stream(np.random.default_rng([run.s["seed"], TEST_STREAM]), steps, run.B)
        yhat, _ = self.model.forward(X, h0=carried_state(run))
        return cross_entropy(Y.reshape(-1, Y.shape[2]), yhat.reshape(-1, yhat.shape[2]))

    def state(self):
        return None

    def restore(self, state):
        pass


def carried_state(run):
    """The hidden state a run carries, as :meth:`fastrnn.RNN.forward`'s ``h0`` (a copy)."""
    if hasattr(run, "carried_state"):
        return run.carried_state()
    m = run.model
    state = np.array(run.hstate, dtype=np.float64).reshape(m.layers, m.n_states, run.B, m.n_hidden)
    return state[:, 0] if m.n_states == 1 else (state[:, 0], state[:, 1])


def cross_entropy(p, q):
    """Mean over rows of -sum_k p_k ln q_k (0 ln 0 = 0): the soft-target cross-entropy of predictions q."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, q, 1.0)), 0.0)
    return float(-terms.sum(axis=-1).mean())
