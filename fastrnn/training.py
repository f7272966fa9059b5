"""The training loop: ``fastrnn.train(task="binary", iters=20000, seed=0)``.

Python owns the chunks (``log_every`` iterations each), the data, the progress bar
and the CSV rows; one kernel call (:func:`fastrnn._train_kernel.train_chunk`) runs
every iteration of a chunk. Numba's compile (or cache load) happens before the
clock starts, so ``train_seconds`` is training time alone.
"""

import importlib.metadata
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import _checks, _train_kernel, optim
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
    "digits": dict(iters=2000, batch=32, hidden=100, activation="tanh", optimizer="adam", lr=0.01, clip=1.0, init_scale="fan_in"),
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
    out = {"python": platform.python_version()}
    for name in ("fastrnn", "numpy", "numba", "scipy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def resolve_settings(task="binary", iters=None, batch=None, hidden=None, layers=1, activation=None, lr=None,
                     optimizer=None, clip=None, bptt_truncate=None, dtype="float64", seed=0, log_every=100,
                     bits=None, digits=None, encoding=None, init_scale=None, momentum=0.9):
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
    import pandas as pd

    task_obj, s = resolve_settings(task, iters, batch, hidden, layers, activation, lr, optimizer, clip, bptt_truncate,
                                   dtype, seed, log_every, bits, digits, encoding, init_scale, momentum)
    if save is not None:
        save = check_new_file(save, "model file", overwrite, "--save")
    s["versions"] = versions()

    model = RNN(task_obj.n_in, s["hidden"], task_obj.n_out, layers=s["layers"], activation=s["activation"],
                head=task_obj.head, dtype=s["dtype"], seed=s["seed"],
                init_scale=None if s["init_scale"] == "fan_in" else s["init_scale"])
    model.metadata = dict(task_obj.settings())
    s["log_spectrum"] = bool(log_spectrum)
    columns = list(COLUMNS)
    if log_spectrum:
        probe_batch = task_obj.sample(np.random.default_rng([s["seed"], 2]), 32)
        columns += ["spectral_radius"] + [f"spectral_radius_W{l}" for l in range(1, s["layers"])]
        columns += [f"path_grad_{p}" for p in range(task_obj.T)]
    writer = MetricsWriter(csv, s, overwrite, columns) if csv is not None else None

    B, T, P = s["batch"], task_obj.T, model.n_params
    K = -1 if s["bptt_truncate"] is None else s["bptt_truncate"]
    kind = optim.OPTIMIZERS[s["optimizer"]]
    hyper = np.array([s["momentum"], 0.9, 0.999, 1e-8])
    state = np.zeros((2, P), dtype=model.dtype)
    clip_norm = 0.0 if s["clip"] is None else s["clip"]
    buf = np.empty(_train_kernel.chunk_scratch_size(T, B, model._dims, P), dtype=model.dtype)
    data_rng = np.random.default_rng([s["seed"], 1])
    chunk = s["log_every"]
    losses = np.empty(chunk)
    norms = np.empty(chunk)
    errors = np.empty(chunk * B, dtype=np.int64)

    def run_chunk(X, Y, M, n, step0):
        return _train_kernel.train_chunk(model.theta, model._dims, K, X, Y, M, B, kind, s["lr"], hyper, state, step0,
                                         clip_norm, 0.0, buf, losses[:n], norms[:n], errors[: n * B])

    # Compile (or load from numba's cache) before the clock starts: zero iterations.
    t0 = time.perf_counter()
    empty_mask = np.zeros((0, 0), dtype=model.dtype)
    probe = task_obj.sample(np.random.default_rng(0), B)
    run_chunk(probe.X.astype(model.dtype), probe.Y.astype(model.dtype),
              empty_mask if probe.mask is None else probe.mask.astype(model.dtype), 0, 0)
    compile_seconds = time.perf_counter() - t0

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=s["iters"], unit="it", file=sys.stderr, dynamic_ncols=True, desc=s["task"], leave=False)
    tracker = _AccuracyTracker(task_obj.positions)
    rows = []
    status = "completed"
    done_total = 0
    start = time.perf_counter()
    try:
        while done_total < s["iters"]:
            n = min(chunk, s["iters"] - done_total)
            data = task_obj.sample(data_rng, n * B)
            X = np.ascontiguousarray(data.X, dtype=model.dtype)
            Y = np.ascontiguousarray(data.Y, dtype=model.dtype)
            M = empty_mask if data.mask is None else np.ascontiguousarray(data.mask, dtype=model.dtype)
            done = run_chunk(X, Y, M, n, done_total)
            if done < n:
                bad = done_total + done + 1
                status = "diverged"
                advice = "try --clip 1.0 or a smaller --lr" if s["clip"] is None else "try a smaller --lr or --clip"
                raise NumericalError(
                    f"the loss became NaN or infinite at iteration {bad}; training stopped there "
                    f"(lr {s['lr']}, optimizer {s['optimizer']}, clip {s['clip'] or 'off'}): {advice}"
                )
            done_total += n
            tracker.add(errors[: n * B], done_total - n, B)
            row = dict(
                iteration=done_total,
                samples=done_total * B,
                loss=float(losses[:n].mean()),
                error=float(errors[: n * B].mean()),
                accuracy=tracker.accuracy(),
                digit_accuracy=tracker.position_accuracy(),
                grad_norm=float(norms[:n].mean()),
                learning_rate=s["lr"],
                elapsed_s=time.perf_counter() - start,
            )
            if log_spectrum:
                row.update(_spectral_columns(model, probe_batch))
            rows.append(row)
            if writer is not None:
                writer.write(row)
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{row['loss']:.4f}", acc=f"{row['accuracy']:.3f}", refresh=False)
    except (KeyboardInterrupt, NumericalError) as exc:
        if isinstance(exc, KeyboardInterrupt):
            status = "interrupted"
        exc.result = _finish(model, rows, start, compile_seconds, tracker, status, s, writer, save, done_total, pd, bar)
        raise
    return _finish(model, rows, start, compile_seconds, tracker, status, s, writer, save, done_total, pd, bar)


def _finish(model, rows, start, compile_seconds, tracker, status, s, writer, save, done, pd, bar):
    train_seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    history = pd.DataFrame(rows, columns=list(rows[0]) if rows else COLUMNS)
    save_path = None
    if save is not None and status != "diverged":
        save_path = model.save(save)
    result = TrainResult(
        model=model, history=history, train_seconds=train_seconds,
        first_perfect_iteration=tracker.first_perfect_iteration, status=status, settings=s, iterations=done,
        compile_seconds=compile_seconds, csv_path=None if writer is None else writer.csv_path,
        json_path=None if writer is None else writer.json_path, save_path=save_path, rows=rows,
    )
    if writer is not None:
        writer.write_json(status=status, result=result.summary())
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
