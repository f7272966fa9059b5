"""The training loop: ``fastrnn.train(task="binary", iters=20000, seed=0)``.

Python owns the chunks (``log_every`` iterations each), the data, the progress bar
and the CSV rows; one kernel call (:func:`fastrnn.engine.train_chunk`) runs
every iteration of a chunk. Numba's compile (or cache load) happens before the
clock starts, so ``train_seconds`` is training time alone.
"""

import functools
import importlib.metadata
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import _checks, engine, optim
from .exceptions import InvalidArgument, NumericalError
from .metrics import COLUMNS, MetricsWriter, check_new_file
from .model import RNN
from .tasks import make_task

#: Accuracy is over the last this many training samples (SPEC.md).
ACCURACY_WINDOW = 1000

#: Per-task defaults, chosen by measurement over seeds (README, "How the defaults
#: were chosen"; benchmarks/study_defaults.py reproduces the table).
TASK_DEFAULTS = {
    "binary": dict(iters=20000, batch=1, hidden=16, activation="sigmoid", optimizer="sgd", lr=0.1, clip=None, init_scale=1.0),
    "digits": dict(iters=2000, batch=32, hidden=100, activation="tanh", optimizer="adam", lr=0.005, clip=1.0, init_scale="fan_in"),
}


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : fastrnn.RNN
        The trained model (its ``metadata`` names the task, for predict and eval).
    history : pandas.DataFrame
        The metrics rows (SPEC.md columns), as written to the CSV.
    train_seconds : float
        Wall time of the training loop, compile and start-up excluded.
    first_perfect_iteration : int or None
        The iteration at which accuracy over the last 1000 samples first reached 1.0.
    status : str
        "completed", "interrupted" (Ctrl-C) or "diverged" (NaN or infinite loss).
    settings : dict
        Every setting of the run, defaults filled in, as in the JSON file.
    """

    model: RNN
    history: object
    train_seconds: float
    first_perfect_iteration: object
    status: str
    settings: dict
    iterations: int = 0
    compile_seconds: float = 0.0
    csv_path: object = None
    json_path: object = None
    save_path: object = None
    rows: list = field(default_factory=list, repr=False)

    def summary(self):
        """The run's outcome as saved in its JSON file under "result"."""
        return dict(
            status=self.status,
            iterations_done=self.iterations,
            final_accuracy=self.rows[-1]["accuracy"] if self.rows else None,
            first_perfect_iteration=self.first_perfect_iteration,
            train_seconds=self.train_seconds,
            compile_seconds=self.compile_seconds,
            model_path=None if self.save_path is None else str(self.save_path),
        )

    @property
    def final_accuracy(self):
        return float(self.history["accuracy"].iloc[-1]) if len(self.history) else float("nan")


def versions():
    """The versions a run records in its JSON (looked up once per process)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions():
    out = {"python": platform.python_version()}
    for name in ("fastrnn", "numpy", "numba", "scipy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def resolve_settings(task="binary", iters=None, batch=None, hidden=None, layers=1, activation=None, lr=None,
                     optimizer=None, clip=None, bptt_truncate=None, dtype="float64", seed=0, log_every=100,
                     bits=None, digits=None, encoding=None, init_scale=None, momentum=0.9, log_spectrum=False):
    """Check every setting and fill in the task's defaults; return (task object, settings dict)."""
    task_obj = make_task(task, bits=bits, digits=digits, encoding=encoding)
    d = TASK_DEFAULTS[task_obj.name]
    s = dict(task_obj.settings())
    s["iters"] = _checks.check_int("iters", d["iters"] if iters is None else iters, minimum=1)
    s["batch"] = _checks.check_int("batch", d["batch"] if batch is None else batch, minimum=1)
    s["hidden"] = _checks.check_int("hidden", d["hidden"] if hidden is None else hidden, minimum=1)
    s["layers"] = _checks.check_int("layers", layers, minimum=1)
    s["activation"] = _checks.check_choice("activation", d["activation"] if activation is None else activation, ("tanh", "sigmoid", "relu"))
    s["optimizer"] = _checks.check_choice("optimizer", d["optimizer"] if optimizer is None else optimizer, tuple(optim.OPTIMIZERS))
    s["lr"] = _checks.check_float("lr", d["lr"] if lr is None else lr, positive=True)
    clip = d["clip"] if clip is None else _checks.check_float("clip", clip, minimum=0.0)
    s["clip"] = None if not clip else clip  # 0 turns a task's default clipping off
    s["bptt_truncate"] = _checks.check_optional_int("bptt_truncate", bptt_truncate, minimum=0)
    s["dtype"] = _checks.check_choice("dtype", dtype, ("float64", "float32"))
    s["seed"] = _checks.check_int("seed", seed, minimum=0)
    s["log_every"] = _checks.check_int("log_every", log_every, minimum=1)
    init_scale = d["init_scale"] if init_scale is None else init_scale
    if init_scale != "fan_in":
        init_scale = _checks.check_float("init_scale", init_scale, positive=True)
    s["init_scale"] = init_scale
    s["momentum"] = _checks.check_float("momentum", momentum, minimum=0.0)
    if s["momentum"] >= 1.0:
        raise InvalidArgument(f"momentum must be below 1, got {s['momentum']}")
    if not isinstance(log_spectrum, (bool, np.bool_)):
        raise _checks.InvalidType(f"log_spectrum must be True or False, got {log_spectrum!r}")
    s["log_spectrum"] = bool(log_spectrum)
    s["head"] = task_obj.head
    return task_obj, s


def train(task="binary", iters=None, batch=None, hidden=None, layers=1, activation=None, lr=None, optimizer=None,
          clip=None, bptt_truncate=None, dtype="float64", seed=0, log_every=100, csv=None, save=None,
          overwrite=False, progress=False, bits=None, digits=None, encoding=None, init_scale=None, momentum=0.9,
          log_spectrum=False):
    """Train an RNN on binary or digit addition and return a :class:`TrainResult`.

    Every argument left as None takes the task's default (``TASK_DEFAULTS``). The
    data come from ``numpy.random.default_rng([seed, 1])`` and the initial weights
    from ``default_rng(seed)``: the same seed and settings give the same numbers.

    Parameters
    ----------
    task : {"binary", "digits"}
    iters, batch, hidden, layers : int
    activation : {"tanh", "sigmoid", "relu"}
    lr : float
    optimizer : {"sgd", "momentum", "adam"}
    clip : float or None
        Rescale each gradient to at most this global L2 norm; 0 turns clipping off,
        None takes the task's default.
    bptt_truncate : int or None
        The loss at step t reaches only steps t-K..t.
    dtype : {"float64", "float32"}
    seed : int
    log_every : int
        Iterations per metrics row (and per kernel call).
    csv : path or None
        Write the metrics rows here (and the settings to the .json beside it).
        The library writes no file unless given a path.
    save : path or None
        Save the trained model here (.npz), also after Ctrl-C.
    overwrite : bool
        Allow replacing existing ``csv``/``save`` files; without it they are refused.
    progress : bool
        Show a tqdm progress bar on stderr.
    bits, digits, encoding : task width and encoding (binary: bits; digits: digits, encoding).
    init_scale : float, "fan_in" or None
        Initial weights uniform in [-init_scale, init_scale]; "fan_in" means
        1/sqrt(fan_in) per matrix; None, the task's default.
    momentum : float
        Momentum of the "momentum" optimizer.
    log_spectrum : bool
        Add to every row the spectral radius of each layer's W (``spectral_radius``
        for W0, ``spectral_radius_W1``, ...) and mean |G_p| of W0 for every path
        length p (``path_grad_0`` ...), measured on a fixed probe batch of 32 samples
        (:func:`fastrnn.analysis.path_gradients`). This analysis time counts in
        ``elapsed_s`` and ``train_seconds``.

    Raises
    ------
    NumericalError
        The loss or gradient became NaN or infinite; ``exc.result`` holds the run
        up to the last finished row, and the CSV keeps those rows.
    KeyboardInterrupt
        After a Ctrl-C, with ``exc.result`` attached; the CSV keeps every finished
        row and the model is saved if ``save`` was given.
    """
    task_obj, s = resolve_settings(task, iters, batch, hidden, layers, activation, lr, optimizer, clip, bptt_truncate,
                                   dtype, seed, log_every, bits, digits, encoding, init_scale, momentum, log_spectrum)
    if save is not None:
        save = check_new_file(save, "model file", overwrite, "--save")
    run = _Run(task_obj, s)
    writer = MetricsWriter(csv, s, overwrite, run.columns) if csv is not None else None
    model, B, chunk = run.model, run.B, s["log_every"]
    buf = np.empty(run.scratch_size(), dtype=model.dtype)
    losses, norms, errors = np.empty(chunk), np.empty(chunk), np.empty(chunk * B, dtype=np.int64)
    hstate = engine.new_state(model, B)

    def call(X, Y, M, n):
        return engine.train_chunk(model, run.K, X, Y, M, B, run.kind, s["lr"], run.hyper, run.state, run.done,
                                  run.clip_norm, 0.0, hstate, None, buf, losses[:n], norms[:n], errors[: n * B])

    # Compile (or load from numba's cache) before the clock starts: zero iterations.
    t0 = time.perf_counter()
    call(*run.warmup_batch(), 0)
    compile_seconds = time.perf_counter() - t0

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=s["iters"], unit="it", file=sys.stderr, dynamic_ncols=True, desc=s["task"], leave=False)
    start = time.perf_counter()
    try:
        while run.remaining():
            n = run.next_chunk()
            done = call(*run.next_batch(n), n)
            row = run.record(n, done, losses, norms, errors, time.perf_counter() - start)
            if row is not None:
                if writer is not None:
                    writer.write(row)
                if bar is not None:
                    bar.update(done)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", acc=f"{row['accuracy']:.3f}", refresh=False)
            if run.status == "diverged":
                raise NumericalError(run.error)
    except (KeyboardInterrupt, NumericalError) as exc:
        if isinstance(exc, KeyboardInterrupt):
            run.status = "interrupted"
        exc.result = _finish(run, time.perf_counter() - start, compile_seconds, writer, save, bar)
        raise
    return _finish(run, time.perf_counter() - start, compile_seconds, writer, save, bar)


def can_train_together(settings):
    """Whether runs with these settings (seed aside) may share one :func:`train_many` call.

    The parallel kernel's threads must not call BLAS (see fastrnn._linalg), so only
    models whose every product stays below ``config.BLAS_MIN_WORK`` qualify: then
    the arithmetic is the same as in a run of its own, number for number.
    """
    from .config import BLAS_MIN_WORK

    task_obj, s = resolve_settings(**settings)
    widest = max(task_obj.n_in, s["hidden"], task_obj.n_out)
    return not s["log_spectrum"] and task_obj.T * s["batch"] * s["hidden"] * widest < BLAS_MIN_WORK


def train_many(settings_list):
    """Train several runs that differ only in their seed, in one parallel kernel call per chunk.

    Each element of ``settings_list`` is a dict of :func:`train` keyword arguments
    (no files, no progress bar). Model m trains in its own prange iteration with
    its own data stream, optimizer state and scratch, so each result equals
    ``train(**settings_list[m])`` number for number (``can_train_together`` must
    hold). A diverging run is returned with status "diverged", not raised.
    ``train_seconds`` of each run is the group's wall time divided by its size.

    Returns a list of :class:`TrainResult`.
    """
    runs = []
    for settings in settings_list:
        task_obj, s = resolve_settings(**settings)
        if s["log_spectrum"]:
            raise InvalidArgument("train_many does not log spectra; train runs with log_spectrum=True one by one")
        runs.append(_Run(task_obj, s))
    first = runs[0]
    same = ("task", "bits", "digits", "encoding", "iters", "batch", "hidden", "layers", "dtype", "log_every")
    for r in runs[1:]:
        if any(r.s.get(k) != first.s.get(k) for k in same):
            raise InvalidArgument(f"train_many needs runs of one shape; {', '.join(same)} must agree")
    n_models, B, chunk, dt = len(runs), first.B, first.s["log_every"], first.model.dtype
    P = first.model.n_params
    thetas = np.stack([r.model.theta for r in runs])
    dims = np.stack([r.model.dims for r in runs])
    hstates = np.zeros((n_models, engine.state_size(first.model, B)), dtype=dt)
    states = np.zeros((n_models, 2, P), dtype=dt)
    bufs = np.empty((n_models, first.scratch_size()), dtype=dt)
    Ks = np.array([r.K for r in runs], dtype=np.int64)
    kinds = np.array([r.kind for r in runs], dtype=np.int64)
    lrs = np.array([r.s["lr"] for r in runs])
    hypers = np.stack([r.hyper for r in runs])
    clips = np.array([r.clip_norm for r in runs])
    losses, norms = np.empty((n_models, chunk)), np.empty((n_models, chunk))
    errors = np.empty((n_models, chunk * B), dtype=np.int64)
    n_iters = np.zeros(n_models, dtype=np.int64)
    done = np.zeros(n_models, dtype=np.int64)
    step0 = np.zeros(n_models, dtype=np.int64)

    def call(X, Y, M):
        engine.train_chunks_many(thetas, dims, Ks, X, Y, M, B, kinds, lrs, hypers, states, step0, clips, hstates, None,
                                 bufs, n_iters, losses, norms, errors, done)

    def stacked(batches):
        X = np.stack([b[0] for b in batches])
        Y = np.stack([b[1] for b in batches])
        M = np.stack([b[2] for b in batches]) if batches[0][2].shape[0] else np.zeros((0, 0, 0), dtype=dt)
        return X, Y, M

    t0 = time.perf_counter()
    call(*stacked([r.warmup_batch() for r in runs]))  # n_iters are 0: compile or load only
    compile_seconds = time.perf_counter() - t0
    start = time.perf_counter()
    while any(r.remaining() for r in runs):
        n = max(r.next_chunk() if r.remaining() else 0 for r in runs)
        batches = [r.next_batch(n) if r.remaining() else r.blank_batch(n) for r in runs]
        for m, r in enumerate(runs):
            n_iters[m] = n if r.remaining() else 0
            step0[m] = r.done
        call(*stacked(batches))
        elapsed = time.perf_counter() - start
        for m, r in enumerate(runs):
            if n_iters[m]:
                r.record(n, done[m], losses[m], norms[m], errors[m], elapsed)
    wall = time.perf_counter() - start
    results = []
    for m, r in enumerate(runs):
        r.model.theta[:] = thetas[m]
        results.append(_finish(r, wall / n_models, compile_seconds, None, None, None))
    return results


class _Run:
    """One training run: settings, model, data stream, optimizer state, metrics so far."""

    def __init__(self, task_obj, s):
        self.task, self.s = task_obj, s
        s["versions"] = versions()
        self.model = RNN(task_obj.n_in, s["hidden"], task_obj.n_out, layers=s["layers"], activation=s["activation"],
                         head=task_obj.head, dtype=s["dtype"], seed=s["seed"],
                         init_scale=None if s["init_scale"] == "fan_in" else s["init_scale"])
        self.model.metadata = dict(task_obj.settings())
        self.B, self.T = s["batch"], task_obj.T
        self.K = -1 if s["bptt_truncate"] is None else s["bptt_truncate"]
        self.kind = optim.OPTIMIZERS[s["optimizer"]]
        self.hyper = optim.hyper_array(momentum=s["momentum"])
        self.state = np.zeros((2, self.model.n_params), dtype=self.model.dtype)
        self.clip_norm = 0.0 if s["clip"] is None else s["clip"]
        self.data_rng = np.random.default_rng([s["seed"], 1])
        self.columns = list(COLUMNS)
        self.probe = None
        if s["log_spectrum"]:
            self.probe = task_obj.sample(np.random.default_rng([s["seed"], 2]), 32)
            self.columns += ["spectral_radius"] + [f"spectral_radius_W{l}" for l in range(1, s["layers"])]
            self.columns += [f"path_grad_{p}" for p in range(task_obj.T)]
        self.tracker = _AccuracyTracker(task_obj.positions)
        self.rows = []
        self.status = "completed"
        self.error = None
        self.done = 0

    def scratch_size(self):
        return engine.chunk_scratch_size(self.model, self.T, self.B)

    def remaining(self):
        return self.status == "completed" and self.done < self.s["iters"]

    def next_chunk(self):
        return min(self.s["log_every"], self.s["iters"] - self.done)

    def _arrays(self, data):
        dt = self.model.dtype
        M = np.zeros((0, 0), dtype=dt) if data.mask is None else np.ascontiguousarray(data.mask, dtype=dt)
        return np.ascontiguousarray(data.X, dtype=dt), np.ascontiguousarray(data.Y, dtype=dt), M

    def next_batch(self, n):
        """The data of the next n iterations, from this run's own stream."""
        return self._arrays(self.task.sample(self.data_rng, n * self.B))

    def warmup_batch(self):
        """Data for the zero-iteration compile call (from a throwaway stream)."""
        return self._arrays(self.task.sample(np.random.default_rng(0), self.B))

    def blank_batch(self, n):
        X, Y, M = self.warmup_batch()
        return (np.zeros((n * self.B,) + X.shape[1:], X.dtype), np.zeros((n * self.B,) + Y.shape[1:], Y.dtype),
                M if M.shape[0] == 0 else np.zeros((n * self.B,) + M.shape[1:], M.dtype))

    def record(self, n, done, losses, norms, errors, elapsed):
        """Account for a chunk of n iterations of which ``done`` finished; return its row.

        When the loss or gradient became non-finite (``done < n``) the run is
        "diverged" and ``error`` says where; the ``done`` iterations applied before
        the bad one still get their row, and None is returned only when there are none.
        """
        s, B = self.s, self.B
        if done < n:
            bad = self.done + done + 1
            self.status = "diverged"
            advice = "try --clip 1.0 or a smaller --lr" if s["clip"] is None else "try a smaller --lr or --clip"
            self.error = (f"the loss became NaN or infinite at iteration {bad}; training stopped there "
                          f"(lr {s['lr']}, optimizer {s['optimizer']}, clip {s['clip'] or 'off'}): {advice}")
            if done == 0:
                return None
            n = done
        self.done += n
        self.tracker.add(errors[: n * B], self.done - n, B)
        row = dict(
            iteration=self.done,
            samples=self.done * B,
            loss=float(losses[:n].mean()),
            error=float(errors[: n * B].mean()),
            accuracy=self.tracker.accuracy(),
            digit_accuracy=self.tracker.position_accuracy(),
            grad_norm=float(norms[:n].mean()),
            learning_rate=s["lr"],
            elapsed_s=elapsed,
        )
        if self.probe is not None:
            row.update(_spectral_columns(self.model, self.probe))
        self.rows.append(row)
        return row


def _finish(run, train_seconds, compile_seconds, writer, save, bar):
    import pandas as pd

    if bar is not None:
        bar.close()
    history = pd.DataFrame(run.rows, columns=run.columns)
    save_path = None
    if save is not None and run.status != "diverged":
        save_path = run.model.save(save)
    result = TrainResult(
        model=run.model, history=history, train_seconds=train_seconds,
        first_perfect_iteration=run.tracker.first_perfect_iteration, status=run.status, settings=run.s,
        iterations=run.done, compile_seconds=compile_seconds, csv_path=None if writer is None else writer.csv_path,
        json_path=None if writer is None else writer.json_path, save_path=save_path, rows=run.rows,
    )
    if writer is not None:
        writer.write_json(status=run.status, result=result.summary())
        writer.close()
    return result


def _spectral_columns(model, probe):
    from . import analysis

    out = {}
    for l, spec in enumerate(analysis.model_spectra(model)):
        out["spectral_radius" if l == 0 else f"spectral_radius_W{l}"] = spec.spectral_radius
    G = analysis.path_gradients(model, probe.X, probe.Y, probe.mask)
    for p, v in enumerate(analysis.path_profile(G, "W0")):
        out[f"path_grad_{p}"] = float(v)
    return out


class _AccuracyTracker:
    """Accuracy over the last 1000 samples and the iteration at which it first hit 1.0."""

    def __init__(self, positions):
        self.positions = positions
        self.recent = np.zeros(0, dtype=np.int64)
        self.streak = 0  # samples right in a row, up to the last one seen
        self.first_perfect_iteration = None

    def add(self, errors, iteration0, batch):
        correct = errors == 0
        if self.first_perfect_iteration is None:
            # Where does a run of ACCURACY_WINDOW correct samples first complete?
            fails = np.flatnonzero(~correct)
            edges = np.concatenate([[-1 - self.streak], fails, [correct.shape[0]]])
            gaps = np.diff(edges) - 1
            long = np.flatnonzero(gaps >= ACCURACY_WINDOW)
            if long.size:
                sample = edges[long[0]] + ACCURACY_WINDOW  # index within this chunk
                self.first_perfect_iteration = int(iteration0 + sample // batch + 1)
            self.streak = correct.shape[0] - 1 - fails[-1] if fails.size else self.streak + correct.shape[0]
        self.recent = np.concatenate([self.recent, errors])[-ACCURACY_WINDOW:]

    def accuracy(self):
        return float(np.mean(self.recent == 0))

    def position_accuracy(self):
        return float(1.0 - self.recent.sum() / (self.recent.shape[0] * self.positions))
