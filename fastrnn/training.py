"""The training loop: ``fastrnn.train(task="binary", iters=20000, seed=0)``.

Python owns the chunks (``log_every`` iterations each), the data, the progress bar
and the CSV rows; one kernel call (:func:`fastrnn.engine.train_chunk`) runs
every iteration of a chunk. Numba's compile (or cache load) happens before the
clock starts, so ``train_seconds`` is training time alone.
"""

import contextlib
import functools
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import _checks, _rule_settings, _signals, checkpoint, engine, inits, optim, params
from . import cpus as _cpus
from . import settings as _settings
from .exceptions import InvalidArgument, NumericalError, OutputError
from .metrics import COLUMNS, MetricsWriter, check_new_file, check_output_files
from .model import RNN
from .tasks import TASKS

#: Accuracy is over the last this many training samples (docs/math.md, section 8).
ACCURACY_WINDOW = 1000

#: Per-task defaults (each task module's DEFAULTS), for callers that look them up here.
TASK_DEFAULTS = {name: cls.defaults for name, cls in TASKS.items()}


class _LazyFrame:
    """A dataclass field whose DataFrame is built from ``rows`` and ``columns`` on first read,
    so that a command that never reads it never imports pandas (0.4 s of start-up)."""

    def __set_name__(self, owner, name):
        self.key = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.key)  # no default: the field stays a required argument
        value = obj.__dict__.get(self.key)
        if value is None:
            import pandas as pd

            value = obj.__dict__[self.key] = pd.DataFrame(obj.rows, columns=obj.columns or None)
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.key] = value


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : fastrnn.RNN
        The trained model (its ``metadata`` names the task, for predict and eval).
    history : pandas.DataFrame
        The metrics rows (metrics.COLUMNS), as written to the CSV.
    train_seconds : float
        Wall time of the training loop, compile and start-up excluded.
    first_perfect_iteration : int or None
        The iteration at which accuracy over the last 1000 samples first reached 1.0.
    status : str
        "completed", "interrupted" (Ctrl-C, SIGTERM, SIGHUP), "diverged" (NaN or infinite loss) or
        "failed" (a file could not be written).
    settings : dict
        Every setting of the run, defaults filled in, as in the JSON file.
    notes : list of str
        What the run repaired on its way, one line each (a resumed run's CSV that had
        lost its end and was rewritten from the saved rows).
    final_scores : dict
        What the task scores once, at the end (also under "result" in the JSON): a text
        run with held-out text has ``val_bpc_all`` (all of it; completed runs only),
        ``val_chars_all`` and ``val_chars_row`` (the characters each row's ``val_bpc`` scores).
    threads : int or None
        The threads the text kernel trained on (:func:`fastrnn.cpus.policy`; the last chunk's);
        None for the other kernels. Recorded in the JSON under "result".
    thread_use : dict or None
        The threads each part of the run used and why (:func:`fastrnn.cpus.policy`):
        ``blas`` (``n``: BLAS's threads in the general kernel's products, None where the
        kernel makes no BLAS call), ``numba`` (``n``: the threads of numba's pool the kernel
        used, ``pool``: its size) and, for the text kernel, ``text`` (``chunks``: how many
        chunks ran on each thread count, ``why``: the last decision's reason). Recorded in
        the JSON under "result".
    kernel : fastrnn.dispatch.KernelChoice or None
        The kernel the run trained with and why (:func:`fastrnn.dispatch.choose_kernel`),
        recorded in the JSON under "result" as ``kernel`` and ``kernel_reason``.

    Examples
    --------
    >>> import fastrnn
    >>> result = fastrnn.train(task="binary", iters=3000, seed=0)
    >>> result.status, result.final_accuracy, result.first_perfect_iteration
    ('completed', 1.0, 2991)
    >>> list(result.history.columns[:5]), len(result.history)
    (['iteration', 'samples', 'loss', 'error', 'accuracy'], 30)
    """

    model: RNN
    history: object = _LazyFrame()  # None: built from rows and columns when first read
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
    columns: list = field(default_factory=list, repr=False)
    checkpoint_path: object = None
    rows_cut: int = 0
    notes: list = field(default_factory=list)
    #: scores computed once at the end of the run (text: the whole held-out text's ``val_bpc_all``)
    final_scores: dict = field(default_factory=dict)
    threads: object = None  # the threads the text kernel trained on (None: another kernel)
    kernel: object = None  # the dispatch.KernelChoice the run trained with
    thread_use: object = None  # every part's threads and why (fastrnn.cpus.policy), as in the JSON

    def summary(self):
        """The run's outcome as saved in its JSON file under "result".

        ``headline`` names the task's headline metrics (:attr:`fastrnn.tasks.Task.headline`)
        that the run's rows have, and ``final_<name>`` holds each one's value in the
        last row (None before the first row).
        """
        from .tasks import headline

        names = [m for m in headline(self.settings.get("task"))
                 if m in (self.columns or (self.rows[-1] if self.rows else ())) or m in self.final_scores]
        # the last row's value; a metric scored once at the end (a stream's test_loss) from the final scores
        last = {**self.final_scores, **(self.rows[-1] if self.rows else {})}
        out = dict(
            status=self.status,
            iterations_done=self.iterations,
            headline=names,
            **{f"final_{m}": last.get(m) for m in names},
            first_perfect_iteration=self.first_perfect_iteration,
            train_seconds=self.train_seconds,
            compile_seconds=self.compile_seconds,
            model_path=None if self.save_path is None else str(self.save_path),
            **self.final_scores,
        )
        if self.threads is not None:
            out["threads"] = self.threads
        if self.thread_use:
            out["thread_use"] = self.thread_use
        if self.kernel is not None:
            out.update(self.kernel.record())
        return out

    @property
    def final_accuracy(self):
        return float(self.rows[-1]["accuracy"]) if self.rows else float("nan")


def versions():
    """The versions a run records in its JSON (looked up once per process)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions():
    # the modules' own __version__, not importlib.metadata (0.08 s to import)
    import numba

    from . import __version__

    from ._startup import scipy_version  # read without importing SciPy (start-up)

    return {"python": platform.python_version(), "fastrnn": __version__, "numpy": np.__version__,
            "numba": numba.__version__, "scipy": scipy_version()}


def resolve_settings(**given):
    """Check every setting and fill in the task's defaults; return (task object, settings dict).

    ``given`` maps setting names (:func:`fastrnn.settings.names`) to values; None
    or a missing name means the default. The dict holds every setting that applies
    to the task, plus the task's ``head``.
    """
    task_obj, s = _settings.resolve(given)
    s["head"] = task_obj.head
    return task_obj, s


def train(task=None, *, csv=None, save=None, overwrite=False, progress=False, resume=None, checkpoint_every=None,
          checkpoint_seconds=None, _note=None, **settings):
    """Train an RNN on a task (binary or digit addition, a text's characters) and return a :class:`TrainResult`.

    Every setting left out (or None) takes its default, the task's where the
    task chooses it (``fastrnn train --help`` lists them). The data come from
    ``numpy.random.default_rng([seed, 1])`` and the initial weights from
    ``default_rng(seed)``: the same seed and settings give the same numbers.

    Parameters
    ----------
    task : str
        A name in :data:`fastrnn.tasks.TASKS` ("binary", "digits", "text"); None: "binary",
        or the saved run's task when resuming.
    csv : path or None
        Write the metrics rows here (and the settings to the .json beside it).
        The library writes no file unless given a path.
    save : path or None
        Save the trained model here (.npz), also after Ctrl-C.
    overwrite : bool
        Allow replacing existing ``csv``/``save`` files; without it they are refused.
    progress : bool
        Show a progress bar (``tqdm.auto``: a widget in Jupyter, text on stderr elsewhere).
    resume : path or None
        Continue the run saved (with ``save``) in this file, or its checkpoint, up to
        ``iters`` iterations in total, exactly as if it had not stopped (:mod:`fastrnn.checkpoint`).
        Settings given must agree with the saved run's. ``csv`` naming the saved
        run's CSV appends to it (from a checkpoint, the rows written after it are
        cut off first: ``rows_cut`` of the result); another path gets the earlier rows first.
    checkpoint_every : int or None
        Every this many iterations (a multiple of ``log_every``) write a checkpoint,
        from which ``resume`` continues exactly after the process is killed at any
        moment: ``<save stem>.ckpt.npz``, or ``<csv stem>.ckpt.npz`` without ``save``
        (one of them is needed). It is written durably (a temporary file, fsync,
        rename, fsync of the folder), again when the run ends, and kept. None on a
        resume: the saved run's.
    checkpoint_seconds : float or None
        Also (or only) write the checkpoint at the first row this many seconds after the last.
    **settings
        The training settings of :mod:`fastrnn.settings`:

{settings}

    Raises
    ------
    NumericalError
        The loss or gradient became NaN or infinite; ``exc.result`` holds the run
        up to the last finished row, and the CSV keeps those rows.
    KeyboardInterrupt
        After a Ctrl-C, SIGTERM or SIGHUP (``exc.signum``; the library takes those
        over only in the main thread where their default handler is in place),
        with ``exc.result`` attached; the CSV keeps every finished row, and the
        model and the checkpoint are saved.
    OutputError
        A file of the run could not be written (a full disk, a read-only or deleted
        folder): training stops, the CSV keeps its complete rows (none cut in half),
        no temporary file is left, and the message says what was kept.

    Notes
    -----
    ``log_spectrum=True`` adds to every row the spectral radius of each layer's W
    (``spectral_radius`` for W0, ``spectral_radius_W1``, ...) and mean |G_p| of W0
    for every path length p (``path_grad_0`` ...), measured on a fixed probe batch
    of 32 samples (:func:`fastrnn.analysis.path_gradients`). This analysis time
    counts in ``elapsed_s`` and ``train_seconds``.

    Examples
    --------
    >>> import fastrnn
    >>> result = fastrnn.train(task="binary", iters=3000, seed=0)
    >>> result.final_accuracy, result.first_perfect_iteration, result.model.n_hidden
    (1.0, 2991, 16)
    >>> result = fastrnn.train(task="binary", iters=3000, seed=0, csv="run.csv", save="m.npz")
    >>> result.history.equals(fastrnn.read_run("run.csv")[0])
    True
    """
    saved = None
    if resume is not None:
        saved = checkpoint.load(resume)
        settings = checkpoint.resume_settings(resume, saved[1], task, settings)
        task = settings.pop("task")
    task_obj, s = resolve_settings(task=task, **settings)
    check_output_files(csv, save)
    check_training_memory(task_obj, s)
    save = check_save(save, overwrite, resume, saved)
    ckpt = checkpoint.plan(checkpoint_every, checkpoint_seconds, s["log_every"], save, csv, overwrite, resume, saved)
    if _rule_settings.is_online(s):  # an online rule on a stream task (fastrnn._online_run)
        from ._online_run import OnlineRun

        run = OnlineRun(task_obj, s, fresh=saved is None)
        if saved is not None:
            run.restore(resume, *saved)
        writer = open_writer(csv, run, overwrite, resume, saved, ckpt, _note)
        return drive(run, run.warmup, run.advance, writer, save, progress, s["iters"], s["task"], ckpt)
    run = _Run(task_obj, s, fresh=saved is None)
    if saved is not None:
        run.restore(resume, *saved)
    model, B, chunk = run.model, run.B, s["log_every"]
    losses, norms, errors = np.empty(chunk), np.empty(chunk), np.empty(chunk * B, dtype=np.int64)
    writer = open_writer(csv, run, overwrite, resume, saved, ckpt, _note)
    hstate = run.hstate

    buf = None

    def general_call(X, Y, M, resets, n):
        # resets: see fastrnn.sources (empty for the sampling tasks: every sequence from zeros)
        done = 0
        for a, b, lr in run.lr_pieces(n):  # one piece unless the step schedule changes the rate inside the chunk
            got = engine.train_chunk(model, run.K, X[a * B : b * B], Y[a * B : b * B],
                                     M[a * B : b * B] if M.shape[0] else M, B, run.kind, lr, run.hyper, run.state,
                                     run.done + a, run.clip_norm, run.clip_value, hstate,
                                     resets[a:b] if resets.shape[0] else resets, buf, losses[a:b], norms[a:b],
                                     errors[a * B : b * B], kernel=run.kernel)
            done = a + got
            if got < b - a:
                break
        return done

    def general_warmup():
        # on a terminal, when the kernel is neither compiled nor cached
        nonlocal buf, fetch, call
        buf = params.aligned_empty(run.scratch_size(), model.dtype)
        fetch, call = run.source.next, general_call
        engine.compile_note(model, run.T, B, kernel=run.kernel)
        call(*run.warmup_batch(), 0)
        if hasattr(run.extra, "warmup"):  # the held-out scores' forward kernel, before the clock too
            run.extra.warmup()

    fetch, call, warmup = run.source.next, general_call, general_warmup
    if run.kernel.name == "text":
        # min-char-rnn's training: the windows as character indices, into the fused kernel
        info = {}

        def chars_call(inputs, targets, resets, n):
            done = 0
            pieces = run.lr_pieces(n)  # one piece unless the step schedule changes the rate inside the chunk
            # a stopped call leaves the state as it was before it (fastrnn._charrnn.Stopped): where a chunk is
            # several calls, the chunk's start is kept so that a stop in a later one leaves that state too
            before = (model.theta.copy(), run.state.copy(), hstate.copy()) if len(pieces) > 1 else None
            try:
                for a, b, lr in pieces:
                    got = engine.train_chunk_chars(model, inputs[a:b], targets[a:b], resets[a:b], run.kind, lr,
                                                   run.hyper, run.state, run.clip_value, hstate, losses[a:b], norms[a:b],
                                                   errors[a:b], info=info)
                    done = a + got
                    if got < b - a:
                        break
            except KeyboardInterrupt:
                if before is not None:
                    model.theta[...], run.state[...], hstate[...] = before
                raise
            finally:
                run.threads = info.get("threads", run.threads)
                _count_text_threads(run, info)
            return done

        def chars_warmup():
            # on a terminal, when the kernel is neither compiled nor cached
            engine.compile_note(model, run.T, B, kernel=run.kernel)
            if not engine.chars_ready():  # a numba that cannot build it: the general kernel (one line said so)
                run.kernel = run.choose_kernel(fused_text=False).instead("the fused text kernel could not be compiled")
                general_warmup()

        fetch, call, warmup = run.source.next_ids, chars_call, chars_warmup

    def advance(clock):
        n = run.next_chunk()
        done = call(*fetch(n), n)
        return run.record(n, done, losses, norms, errors, run.seconds_before + clock()), done

    return drive(run, warmup, advance, writer, save, progress, s["iters"], s["task"], ckpt)


train.__doc__ = train.__doc__.replace("{settings}", _settings.doc(indent=8))


def drive(run, warmup, advance, writer, save, progress, total, desc, ckpt=None):
    """The loop :func:`train` and :func:`fastrnn.fit` share: compile, chunks, rows, checkpoints, files, signals, divergence.

    ``warmup()`` makes the zero-iteration kernel call (compile or cache load, before
    the clock starts); ``advance(clock) -> (row or None, iterations done)`` trains
    the run's next chunk and records its row (``clock()``: seconds since the start).
    ``run`` is a :class:`_Run` or has its attributes (``remaining()``, ``status``,
    ``error``, ``rows``, ``columns``, ``model``, ``s``, ``done``, ``tracker``,
    ``snapshot()``/``rewind(state)`` of the data position, ``resumable``,
    ``seconds_before``). Rows go to ``writer`` as they come, then the checkpoint
    (``ckpt``, a :class:`fastrnn.checkpoint.Checkpointer`) when one is due; the end
    goes through :func:`_finish`, a file that cannot be written through :func:`_write_failed`.
    """
    bar, start, compile_seconds, pending = None, None, 0.0, None
    stop = _DeferredInterrupt()
    try:
        # Compile (or load from numba's cache) before the clock starts: zero iterations.
        # A Ctrl-C here (the compile takes seconds on a fresh machine) ends the run
        # as "interrupted" like one during training. From then on Ctrl-C (SIGINT), SIGTERM
        # and SIGHUP take effect between chunks, so that the saved state is that of a finished row.
        t0 = time.perf_counter()
        _cpus.METER.look()  # the load's window opens: the thread decisions after the warm-up read it
        warmup()
        compile_seconds = time.perf_counter() - t0
        limited = _thread_plan(run)
        stop.install()
        if progress:
            from . import _progress
            from .tasks import headline

            # beside the loss, the task's first other headline metric (text: bpc; the rest: accuracy)
            shown = next((m for m in headline(run.s.get("task")) if m != "loss" and m in run.columns), "accuracy")

            bar = _progress.bar(total, initial=run.done, unit="it", desc=desc)
        start = time.perf_counter()
        while run.remaining():
            pending = run.snapshot()  # rewound to if the chunk does not finish (Ctrl-C)
            try:
                with limited():
                    row, done = advance(lambda: time.perf_counter() - start)
            except KeyboardInterrupt:
                stop.check()  # a text chunk stopped by the handler: the signal's own exception
                raise
            pending = None
            if row is not None:
                if writer is not None:
                    try:
                        writer.write(row)
                    except OSError as exc:
                        raise _Unwritten("row", writer.csv_path, exc) from None
                if bar is not None:
                    bar.update(done)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", **{shown: f"{row[shown]:.3f}"}, refresh=False)
            if run.status == "diverged":
                raise NumericalError(run.error)
            if ckpt is not None and ckpt.due(run.done):
                try:
                    ckpt.write(run, run.seconds_before + time.perf_counter() - start)
                except OSError as exc:
                    raise _Unwritten("checkpoint", ckpt.path, exc) from None
            stop.check()
    except (KeyboardInterrupt, NumericalError) as exc:
        stop.uninstall()
        if isinstance(exc, KeyboardInterrupt):
            run.status = "interrupted"
            if pending is not None:
                run.rewind(pending)
            run.resumable = run.resumable and stop.presses < 2  # a second Ctrl-C may have cut a chunk: save the weights only
        train_seconds = 0.0 if start is None else time.perf_counter() - start
        exc.result = _finish(run, train_seconds, compile_seconds, writer, save, bar, ckpt)
        raise
    except _Unwritten as failure:  # a full disk, a read-only or deleted folder: stop, keep what is whole, say what
        stop.uninstall()
        train_seconds = 0.0 if start is None else time.perf_counter() - start
        raise _write_failed(run, failure, train_seconds, compile_seconds, writer, save, bar, ckpt) from failure.error
    except BaseException as exc:  # anything else: the JSON must not keep saying "running"
        stop.uninstall()
        if bar is not None:
            bar.close()
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.write_json(status="failed", error=f"{type(exc).__name__}: {exc}")
            writer.close()
        raise
    stop.uninstall()
    return _finish(run, time.perf_counter() - start, compile_seconds, writer, save, bar, ckpt)


def _count_text_threads(run, info):
    """Add a text kernel call's threads (``info`` of :func:`fastrnn.engine.train_chunk_chars`) to
    ``run.thread_use["text"]``: the calls on each thread count, and the last decision's reason."""
    if "threads" not in info:
        return
    use = getattr(run, "thread_use", None)
    if use is None:
        use = run.thread_use = {}
    text = use.setdefault("text", dict(n=None, why=None, chunks={}))
    n = int(info["threads"])
    text["chunks"][str(n)] = text["chunks"].get(str(n), 0) + 1
    text["n"] = max(text["n"] or 0, n)
    text["why"] = info.get("why")


def divergence_error(s, at, unit="iteration", rule=None, flags=True):
    """The one line a diverged run records: where the loss became NaN or infinite, the settings ``s``
    that matter and what to try (spelled as the command's options with ``flags``, else as arguments)."""
    if flags:
        advice = "try --clip 1.0 or a smaller --lr" if s["clip"] is None else "try a smaller --lr or --clip"
    else:
        advice = "try clip=1.0 or a smaller lr" if s["clip"] is None else "try a smaller lr or clip"
    rule = f"rule {rule}, " if rule else ""
    return (f"the loss became NaN or infinite at {unit} {at}; training stopped there ({rule}lr {s['lr']}, "
            f"optimizer {s['optimizer']}, clip {s['clip'] or 'off'}): {advice}")


#: Why a text run with held-out text holds BLAS to one thread: its rows score the held-out text (a forward
#: pass and the logits, BLAS products) between the text kernel's chunks, and BLAS threads left spinning after a
#: product took the cores from the kernel's own two threads (the training ran 4x slower beside them).
HELD_OUT_BLAS = ("one thread for the held-out scoring between the text kernel's chunks: BLAS threads left spinning "
                 "after it would take the cores the kernel's own threads need")
#: Why a resumed run's BLAS threads are those of the run it resumes.
RESUMED_BLAS = "as in the run this one resumes (a BLAS product's sums depend on its threads)"


def blas_threads_of(run):
    """The BLAS threads a run's chunks were held to (None where BLAS was left as it was), for its checkpoint."""
    n = ((getattr(run, "thread_use", None) or {}).get("blas") or {}).get("n")
    return n if isinstance(n, int) else None


def _thread_plan(run):
    """Decide the run's BLAS threads once (:func:`fastrnn.cpus.policy`), record every part's
    threads and why in ``run.thread_use`` (the JSON's ``thread_use``), and return the context
    that holds BLAS to that count around each chunk (the user's own count comes back after it).

    Once per run, not per chunk: a multi-threaded BLAS may sum in another order than one
    thread, so a run keeps one count and its numbers do not change with the load midway.
    The text kernel's threads are decided at each chunk (its numbers are the same on one
    thread or two); ``run.thread_use["text"]`` counts the chunks of each."""
    cpus = _cpus
    kernel = getattr(getattr(run, "kernel", None), "name", None)
    use = getattr(run, "thread_use", None) or {}
    run.thread_use = use
    numba = cpus.numba_threads()
    if kernel == "text":
        use["numba"] = dict(n=None, why="the text kernel starts threads of its own (text)", pool=numba)
    else:
        use["numba"] = dict(n=1, why=f"the {kernel} kernel runs on the calling thread" if kernel else "a serial kernel",
                            pool=numba)
    rule_settings = getattr(run, "rule_settings", None)
    before = getattr(run, "blas_before", None)
    resumed = isinstance(before, int) and before >= 1  # a resumed run keeps its first leg's count: the same numbers
    if kernel is None and rule_settings is not None:  # an online rule: fastrnn.online.run holds BLAS to run.blas_n
        from .online import blas_threads

        use["blas"] = (dict(n=before, why=RESUMED_BLAS) if resumed
                       else blas_threads(run.model, run.rule, rule_settings)[0])
        run.blas_n = use["blas"]["n"]
        return contextlib.nullcontext
    if kernel == "text" and getattr(getattr(run, "extra", None), "val_ids", None) is not None:
        use["blas"] = dict(n=1, why=HELD_OUT_BLAS)
        return functools.partial(cpus.blas_limited, 1)
    if kernel != "general":
        use["blas"] = dict(n=None, why=f"the {kernel} kernel makes no BLAS call" if kernel else
                           "left as it is: this run's driver is not one of the training kernels")
        return contextlib.nullcontext
    plan = getattr(run, "plan", None)
    T, B = (plan.steps(), plan.B) if plan is not None else (run.T, run.B)
    wanted = cpus.blas_threads_now()
    if wanted is None:
        use["blas"] = dict(n=None, why="no BLAS library that threadpoolctl can set is loaded")
        return contextlib.nullcontext
    if resumed:
        decision = cpus.Threads(before, RESUMED_BLAS)
    else:
        decision = cpus.threads("blas", wanted, work=engine.blas_work(run.model, T, B))
    use["blas"] = dict(n=decision.n, why=decision.why)
    if decision.n == wanted:
        return contextlib.nullcontext
    return functools.partial(cpus.blas_limited, decision.n)


class _Unwritten(Exception):
    """A file of a run could not be written: ``what`` ("row", "checkpoint", "model", "settings"), its path, the OSError."""

    def __init__(self, what, path, error):
        super().__init__(what, path, error)
        self.what, self.path, self.error = what, path, error


def _failure_line(run, failure, writer, ckpt, save_path, stopped, unsaved=None):
    """One line: what could not be written where and why, and what the run kept (rows, checkpoint, model)."""
    path, exc = failure.path, failure.error
    why = exc.strerror or str(exc)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        why += " (its folder was deleted)"
    what = {"row": "a row could not be written to", "checkpoint": "the checkpoint could not be written to",
            "model": "the model could not be saved to", "settings": "the run's settings could not be written to"}
    parts = [f"{what[failure.what]} {path}: {why}"]
    if stopped:
        parts.append(f"training stopped after {run.done} iterations")
    if writer is not None:
        parts.append(f"the CSV {writer.csv_path} was deleted" if writer.deleted() else
                     f"{writer.rows} rows kept in {writer.csv_path}")
    if ckpt is not None:
        parts.append(f"the last checkpoint is at iteration {ckpt.at} ({ckpt.path})" if ckpt.at is not None else
                     "no checkpoint was written")
    if save_path is not None:
        parts.append(f"model saved to {save_path}")
    if unsaved is not None:
        parts.append(f"no model saved to {unsaved[0]} ({unsaved[1].strerror or unsaved[1]})")
    again = ckpt.path if ckpt is not None and ckpt.at is not None else save_path
    if again is not None and stopped:
        parts.append(f"once the cause is fixed, continue with: fastrnn train --resume {again} {_settings.resume_goal(run.s)}")
    return "; ".join(parts)


def _write_failed(run, failure, train_seconds, compile_seconds, writer, save, bar, ckpt):
    """The end of a run whose file could not be written mid-run: the model saved if it can be, the JSON
    marked "failed" if it can be, and an OutputError naming the file and what was kept."""
    if bar is not None:
        bar.close()
    run.status = "failed"
    save_path, unsaved = None, None
    if save is not None and failure.what != "model":
        try:  # the weights are worth keeping if their folder still takes them
            save_path = _save_model(run, save, run.seconds_before + train_seconds, ckpt)
        except OSError as exc:
            unsaved = (save, exc)
    line = _failure_line(run, failure, writer, ckpt, save_path, True, unsaved)
    result = _result(run, train_seconds, compile_seconds, writer, save_path, ckpt)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.write_json(status="failed", error=line, result=result.summary())
        writer.close()
    error = OutputError(line)
    error.result = result
    return error


def _save_model(run, save, train_seconds, ckpt):
    if not run.resumable:
        return run.model.save(save)
    state, arrays = ckpt.state(run, train_seconds) if ckpt is not None else run.checkpoint_state(train_seconds)
    return checkpoint.save(save, run.model, state, arrays)


def check_save(save, overwrite, resume, saved):
    """The checked ``save`` path: a new file, or (on a resume) the file resumed from or the one its checkpoint names."""
    if save is None:
        return None
    if saved is not None and (_same_path(save, resume) or (checkpoint.saved_model_path(saved[1]) is not None
                                                           and _same_path(save, checkpoint.saved_model_path(saved[1])))):
        return save  # a resume moves its own files on
    return check_new_file(save, "model file", overwrite, "--save")


def open_writer(csv, run, overwrite, resume, saved, ckpt=None, note=None):
    """The metrics writer of a run (None without ``csv``); for a resume, appending to the run's CSV or copying its rows.

    From a checkpoint the CSV may hold rows written after it: they are cut off, and
    ``note`` (a callable taking one line) is told how many.
    """
    writer = None
    if csv is not None:
        append = saved is not None and saved[1].get("csv") is not None and _same_path(csv, saved[1]["csv"])
        cut = append and checkpoint.is_checkpoint(saved[1])
        try:
            writer = MetricsWriter(csv, run.s, overwrite or append, run.columns, append_rows=run.rows if append else None,
                                   cut=cut)
            if not append:
                for row in run.rows:  # a resume into a new CSV: the earlier rows first
                    writer.write(row)
            extra = {} if ckpt is None else {"checkpoint": os.path.abspath(ckpt.path)}
            if saved is not None:
                extra.update(resumed_from=os.path.abspath(resume))
                if cut:
                    extra.update(rows_cut=writer.cut)
            if extra:
                writer.write_json(status="running", **extra)
        except OSError as exc:
            if writer is not None:
                writer.close()
            where = exc.filename or csv
            raise OutputError(f"cannot write {where}: {exc.strerror or exc}; nothing was trained") from exc
        run.rows_cut = writer.cut
        if writer.cut and note is not None:
            note(f"Resuming the checkpoint at iteration {run.done}: cut {writer.cut} row(s) written after it from "
                 f"{writer.csv_path}.")
    run.csv = None if writer is None else os.path.abspath(writer.csv_path)
    return writer


def _same_path(a, b):
    return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))


class _DeferredInterrupt:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP during training take effect between chunks (in the main thread).

    A kernel call cannot be interrupted anyway (Python runs a handler only after it
    returns); deferring the raise until the chunk's row is recorded keeps the
    weights, the optimizer state and the data position in step, so the saved state
    resumes exactly. A second signal stops at once (the run is then saved without
    its training state, as the chunk may have been cut). A handler is taken over
    only where the default one is in place (:func:`fastrnn._signals.replaceable`).
    """

    def __init__(self):
        self.flag = False
        self.presses = 0
        self.signum = int(signal.SIGINT)
        self.old = {}

    def install(self):
        for signum in _signals.STOP_SIGNALS:
            if _signals.replaceable(signum):
                self.old[signum] = signal.signal(signum, self._handler)

    def _handler(self, signum, frame):
        self.presses += 1
        self.signum = signum
        if self.presses > 1:
            raise _signals.Interrupted(signum)
        self.flag = True
        stop_text_kernel()

    _handler._fastrnn_stops = True  # a text chunk in flight may stop at once (fastrnn._charrnn._stops)

    def check(self):
        if self.flag:
            self.flag = False
            raise _signals.Interrupted(self.signum)

    def uninstall(self):
        for signum, handler in self.old.items():
            signal.signal(signum, handler)
        self.old = {}


def stop_text_kernel():
    """Stop a text chunk in flight at its next iteration (its call then raises, the state
    unchanged: see :class:`fastrnn._charrnn.Stopped`), so that a signal ends a long chunk
    at once instead of after it. Safe in a signal handler; nothing if none runs."""
    charrnn = sys.modules.get(__name__.rpartition(".")[0] + "._charrnn")
    if charrnn is not None:
        charrnn.stop_all()


def build_model(n_in, n_out, head, s, task=None, fresh=True):
    """The model a run's checked settings ``s`` describe: the one place a run builds its model.

    ``n_in``, ``n_out`` and ``head`` come from the task (``task``: its metadata and its own draw of
    the weights, then ``s["init"]`` over that draw) or from the user's arrays; a fresh run (not a
    resume) then copies the weights of ``s["init_from"]`` where one is given.
    """
    model = RNN(n_in, s["hidden"], n_out, layers=s["layers"], activation=s["activation"], head=head, dtype=s["dtype"],
                seed=s["seed"], init_scale=None if s["init_scale"] == "fan_in" else s["init_scale"], cell=s["cell"],
                forget_bias=s["forget_bias"], init=s["init"])
    if task is not None:
        model.metadata = dict(task.model_metadata())
        task.init_weights(model, s)
        if s["init"] != "default":  # over a task's own draw (text), the same numbers as the model's
            inits.apply(model, s["init"], s["seed"])
    if fresh and s["init_from"] is not None:
        init_from(model, s["init_from"])
    return model


def init_from(model, path):
    """Copy a saved model's weights into ``model``; refuse, in one line naming both shapes, ones that do not fit."""
    src = RNN.load(path)
    mine = {k: v.shape for k, v in model.params.items()}
    theirs = {k: v.shape for k, v in src.params.items()}
    if mine != theirs:
        def shapes(d):
            return ", ".join(f"{k} {tuple(v)}" for k, v in d.items())
        raise InvalidArgument(
            f"--init-from {path}: its weights ({shapes(theirs)}; n_in {src.n_in}, hidden {src.n_hidden}, n_out {src.n_out}, "
            f"{src.layers} layer(s)) do not fit this run's model ({shapes(mine)}; n_in {model.n_in}, hidden "
            f"{model.n_hidden}, n_out {model.n_out}, {model.layers} layer(s)); use a model of the same task, "
            f"vocabulary, --hidden and --layers"
        )
    model.theta[:] = _checks.cast_within_range(f"--init-from {path}: its weights", src.theta, model.dtype)
    return model


def check_training_memory(task_obj, s):
    """Refuse a run whose arrays cannot fit in this machine's memory, before allocating any.

    Counted (a lower bound): the parameters five times over (the model, two optimizer
    state vectors, the kernel's transposed copy and gradient), one chunk of data
    (``log_every * batch`` sequences of inputs, targets and mask, in the model's dtype
    and as drawn in float64) and the hidden states and their gradients of one batch.
    """
    itemsize = np.dtype(s["dtype"]).itemsize
    I, O, T, H, L, B = task_obj.n_in, task_obj.n_out, task_obj.T, s["hidden"], s["layers"], s["batch"]
    weights = _checks.model_bytes(I, H, O, L, itemsize, s["cell"])
    data = s["log_every"] * B * T * (I + O + 1) * (itemsize + 8)
    states = 2 * L * B * T * H * itemsize
    _checks.check_memory(
        f"training with hidden={H}, layers={L}, batch={B}, log_every={s['log_every']} ({task_obj.name}, {T} steps)",
        5 * weights + data + states, "choose a smaller hidden, layers, batch or log_every",
    )


def can_train_together(settings):
    """Whether runs with these settings (seed aside) may share one :func:`train_many` call.

    The parallel kernel's threads must not call BLAS (see fastrnn._linalg), so only
    models whose every product stays below ``config.BLAS_MIN_WORK`` qualify: then
    the arithmetic is the same as in a run of its own, number for number.
    """
    from .dispatch import hand_products

    task_obj, s = resolve_settings(**settings)
    from .cells import module

    widest = max(task_obj.n_in, s["hidden"], task_obj.n_out) * module(s["cell"]).G  # a gated cell's products are G*H wide
    # the parallel kernel applies no per-entry clipping (clip_value), carries no state and keeps one rate; a task's
    # held-out scores need each model's weights after every chunk: such runs train one by one
    if getattr(task_obj, "scores_held_out", False) or s["lr_step"] is not None:
        return False
    return not getattr(task_obj, "carries_state", False) and s["init_from"] is None and not s["log_spectrum"] and s["clip_value"] is None and hand_products(task_obj.T, s["batch"], s["hidden"], widest)


#: Sequences of data per run and kernel call in :func:`train_many` (whole chunks, at least one).
BLOCK_SEQUENCES = 2000


def train_many(settings_list):
    """Train several runs that differ only in their seed, in one parallel kernel call per block of chunks.

    Each element of ``settings_list`` is a dict of :func:`train` keyword arguments
    (no files, no progress bar). Model m trains in its own prange iteration with
    its own data stream, optimizer state and scratch, so each result equals
    ``train(**settings_list[m])`` number for number (``can_train_together`` must
    hold). A diverging run is returned with status "diverged", not raised.
    ``train_seconds`` of each run is the group's wall time divided by its size.

    Returns a list of :class:`TrainResult`.

    Examples
    --------
    >>> import fastrnn
    >>> from fastrnn.training import train_many
    >>> results = train_many([dict(task="binary", iters=3000, seed=s) for s in (0, 1)])
    >>> [r.status for r in results]
    ['completed', 'completed']
    >>> results[0].history.drop(columns="elapsed_s").equals(
    ...     fastrnn.train(task="binary", iters=3000, seed=0).history.drop(columns="elapsed_s"))
    True
    """
    runs = []
    for settings in settings_list:
        task_obj, s = resolve_settings(**settings)
        if s["log_spectrum"]:
            raise InvalidArgument("train_many does not log spectra; train runs with log_spectrum=True one by one")
        if s["clip_value"] is not None:
            raise InvalidArgument("train_many does not clip per entry; train runs with clip_value one by one")
        if s["lr_step"] is not None:
            raise InvalidArgument("train_many keeps one learning rate; train runs with lr_step one by one")
        if getattr(task_obj, "scores_held_out", False):
            raise InvalidArgument(f"train_many does not score held-out data; train {task_obj.name} runs one by one")
        runs.append(_Run(task_obj, s))
    first = runs[0]
    same = [setting.name for setting in _settings.every() if setting.together]
    for r in runs[1:]:
        if any(r.s.get(k) != first.s.get(k) for k in same):
            raise InvalidArgument(f"train_many needs runs of one shape; {', '.join(same)} must agree")
    n_models, B, chunk, dt = len(runs), first.B, first.s["log_every"], first.model.dtype
    P = first.model.n_params
    thetas = np.stack([r.model.theta for r in runs])
    dims = np.stack([r.model.dims for r in runs])
    hstates = np.zeros((n_models, engine.state_size(first.model, B)), dtype=dt)
    states = params.aligned_zeros((n_models, 2, P), dt)
    Ks = np.array([r.K for r in runs], dtype=np.int64)
    kinds = np.array([r.kind for r in runs], dtype=np.int64)
    lrs = np.array([r.s["lr"] for r in runs])
    hypers = np.stack([r.hyper for r in runs])
    clips = np.array([r.clip_norm for r in runs])
    kernel = engine.run_kernel(first.model, first.T, B, many=(dims, kinds, Ks, clips))
    bufs = params.aligned_empty((n_models, engine.chunk_scratch_size(first.model, first.T, B, kernel)), dt)
    losses, norms = np.empty((n_models, chunk)), np.empty((n_models, chunk))
    errors = np.empty((n_models, chunk * B), dtype=np.int64)
    n_iters = np.zeros(n_models, dtype=np.int64)
    done = np.zeros(n_models, dtype=np.int64)
    step0 = np.zeros(n_models, dtype=np.int64)

    def call(X, Y, M, losses, norms, errors):
        engine.train_chunks_many(thetas, dims, Ks, X, Y, M, B, kinds, lrs, hypers, states, step0, clips, hstates, None,
                                 bufs, n_iters, losses, norms, errors, done)

    def stacked(batches):
        X = np.stack([b[0] for b in batches])
        Y = np.stack([b[1] for b in batches])
        M = np.stack([b[2] for b in batches]) if batches[0][2].shape[0] else np.zeros((0, 0, 0), dtype=dt)
        return X, Y, M

    for r in runs:
        r.kernel = kernel
    t0 = time.perf_counter()
    engine.compile_note(first.model, first.T, B, many=True, kernel=kernel)
    call(*stacked([r.warmup_batch()[:3] for r in runs]), losses, norms, errors)  # n_iters are 0: compile or load only
    compile_seconds = time.perf_counter() - t0
    # Several chunks per kernel call (a block), each run's data for the block drawn at once (its
    # source gives the same numbers as chunk by chunk): the kernel is cut-agnostic, so the rows,
    # recorded chunk by chunk from the block's slices, are the same numbers; elapsed_s of a
    # chunk inside a block is the block's wall time shared in proportion to its iterations.
    # The kernel runs in a thread of its own (it releases the GIL) while this one records the
    # block before and draws the block after: a run that stops in a block has drawn one block
    # of data too many, which nothing reads.
    from concurrent.futures import ThreadPoolExecutor

    per_block = max(1, BLOCK_SEQUENCES // (chunk * B))
    iters = first.s["iters"]

    def plan(position):
        total = iters - position
        sizes = [min(chunk, total - c * chunk) for c in range(per_block) if total > c * chunk]
        return sizes, sum(sizes)

    X0, Y0, M0 = first.warmup_batch()[:3]
    into = M0.shape[0] == 0 and all(hasattr(r.source, "next_into") for r in runs)
    spare = []  # the arrays of the block before last: the kernel is done with them

    def draw(nb, alive):
        if not into:
            return stacked([r.source.next(nb)[:3] if alive[m] else r.blank_batch(nb) for m, r in enumerate(runs)])
        # each run's data written straight into its slot of the stacked arrays (no np.stack copy)
        X = Y = None
        if spare and spare[0][0].shape[1] == nb * B:
            X, Y = spare.pop(0)
        if X is None:
            X = np.empty((n_models, nb * B) + X0.shape[1:], dtype=X0.dtype)
            Y = np.empty((n_models, nb * B) + Y0.shape[1:], dtype=Y0.dtype)
        for m, r in enumerate(runs):
            if alive[m]:
                r.source.next_into(nb, X[m], Y[m])
            else:
                X[m] = 0
                Y[m] = 0
        return X, Y, np.zeros((0, 0, 0), dtype=dt)

    def record(block):
        sizes, nb, (blk_losses, blk_norms, blk_errors), got, active, before, now = block
        whole = np.flatnonzero(active & (got == nb))
        keys = {m: runs[m].block_key(sizes, nb) for m in whole}
        key = next((key for key in keys.values() if key is not None), None)
        together = [m for m in whole if key is not None and keys[m] == key]
        if together:
            _record_blocks([runs[m] for m in together], sizes, nb, blk_losses[together], blk_norms[together],
                           blk_errors[together], before, now)
        together = set(together)
        for m in np.flatnonzero(active):
            if m in together:
                continue
            r, lo = runs[m], 0
            for n in sizes:
                elapsed = before + (now - before) * (lo + n) / nb
                r.record(n, min(max(int(got[m]) - lo, 0), n), blk_losses[m, lo : lo + n], blk_norms[m, lo : lo + n],
                         blk_errors[m, lo * B : (lo + n) * B], elapsed)
                lo += n
                if not r.remaining():
                    break

    alive = np.array([r.remaining() for r in runs])
    start = time.perf_counter()
    before, position, previous = 0.0, 0, None
    sizes, nb = plan(position)
    data = draw(nb, alive)
    with ThreadPoolExecutor(1, thread_name_prefix="fastrnn-train-many") as kernel_thread:
        while nb and alive.any():
            n_iters[:] = np.where(alive, nb, 0)
            step0[:] = position
            arrays = (np.empty((n_models, nb)), np.empty((n_models, nb)), np.empty((n_models, nb * B), dtype=np.int64))
            future = kernel_thread.submit(call, *data, *arrays)
            if previous is not None:
                record(previous)
            position += nb
            next_sizes, next_nb = plan(position)
            next_data = draw(next_nb, alive) if next_nb else None
            future.result()
            if into:
                spare[:] = [data[:2]]
            now = time.perf_counter() - start
            previous = (sizes, nb, arrays, done.copy(), alive.copy(), before, now)
            alive = alive & (done == nb)
            before, sizes, nb, data = now, next_sizes, next_nb, next_data
    if previous is not None:
        record(previous)
    wall = time.perf_counter() - start
    results = []
    for m, r in enumerate(runs):
        r.model.theta[:] = thetas[m]
        results.append(_finish(r, wall / n_models, compile_seconds, None, None, None))
    return results


class _Run:
    """One training run: settings, model, data stream, optimizer state, metrics so far."""

    def __init__(self, task_obj, s, fresh=True):
        self.task, self.s = task_obj, s
        s["versions"] = versions()
        self.model = build_model(task_obj.n_in, task_obj.n_out, task_obj.head, s, task=task_obj, fresh=fresh)
        self.B, self.T = s["batch"], task_obj.T
        self.K = -1 if s["bptt_truncate"] is None else s["bptt_truncate"]
        self.kind = optim.OPTIMIZERS[s["optimizer"]]
        self.hyper = optim.hyper_from(s)
        self.state = params.aligned_zeros((2, self.model.n_params), self.model.dtype)
        self.clip_norm = 0.0 if s["clip"] is None else s["clip"]
        self.clip_value = 0.0 if s["clip_value"] is None else s["clip_value"]
        self.source = task_obj.source(np.random.default_rng([s["seed"], 1]), self.B, self.model.dtype)
        self.columns = list(COLUMNS)
        self.extra = task_obj.metrics(self.model)  # the task's own columns (text: bpc, ...)
        if self.extra is not None:
            self.columns += self.extra.columns
        self.hstate = engine.new_state(self.model, self.B)
        if hasattr(self.extra, "attach"):  # metrics that read the run at its end (a stream's test phase)
            self.extra.attach(self)
        self.kernel = self.choose_kernel()  # the kernel the run trains with (recorded in the JSON)
        self.seconds_before = 0.0  # training seconds of the run before a resume
        self.resumable = True  # False: save the weights without the training state
        self.threads = None  # the text kernel's threads (recorded in the JSON)
        self.csv = None
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

    def checkpoint_state(self, train_seconds):
        """What :mod:`fastrnn.checkpoint` saves: (JSON-able state, arrays)."""
        settings = {k: v for k, v in self.s.items() if k != "versions"}
        state = dict(settings=settings, done=int(self.done), source=self.source.state(),
                     tracker=self.tracker.state(), extra=None if self.extra is None else self.extra.state(),
                     rows=self.rows, columns=self.columns, train_seconds=float(train_seconds), csv=self.csv,
                     blas_threads=blas_threads_of(self))
        arrays = dict(opt_state=self.state, hstate=self.hstate, recent=self.tracker.recent)
        return state, arrays

    def restore(self, path, model, state, arrays):
        """Continue the run saved in ``path`` (``checkpoint.load``'s model, state, arrays)."""
        changed = self.task.changed_since(model.metadata)
        if changed is not None:
            raise InvalidArgument(f"cannot resume {path}: {changed}")
        if model.theta.shape != self.model.theta.shape or any(arrays.get(k) is None for k in checkpoint.ARRAYS):
            raise InvalidArgument(f"the training state in {path} does not fit its settings; it cannot be resumed")
        if arrays["opt_state"].shape != self.state.shape or arrays["hstate"].shape != self.hstate.shape:
            raise InvalidArgument(f"the training state in {path} does not fit its settings; it cannot be resumed")
        self.model.theta[:] = model.theta
        self.state[...] = arrays["opt_state"]
        self.hstate[...] = arrays["hstate"]
        self.done = state["done"]
        try:
            self.source.restore(state["source"])
        except InvalidArgument as exc:
            raise InvalidArgument(f"cannot resume {path}: {exc}") from None
        self.tracker.restore(state["tracker"], arrays["recent"])
        if self.extra is not None:
            self.extra.restore(state["extra"])
        self.rows = [dict(r) for r in state.get("rows", [])]
        self.seconds_before = float(state.get("train_seconds", 0.0))
        self.blas_before = state.get("blas_threads")  # the first leg's BLAS threads: the same sums

    def choose_kernel(self, fused_text=True):
        """:func:`fastrnn.dispatch.choose_kernel`'s answer for this run (character streams where the
        task's source gives them; ``fused_text=False``: the fused text kernel cannot be built)."""
        return engine.run_kernel(self.model, self.T, self.B, (self.kind, self.K, self.clip_norm, self.clip_value),
                                 chars=hasattr(self.source, "next_ids"), fused_text=fused_text)

    def scratch_size(self):
        return engine.chunk_scratch_size(self.model, self.T, self.B, self.kernel)

    def remaining(self):
        return self.status == "completed" and self.done < self.s["iters"]

    def snapshot(self):
        """The data position before a chunk (:func:`drive` rewinds to it when a Ctrl-C cuts the chunk)."""
        return self.source.state()

    def rewind(self, state):
        self.source.restore(state)

    def next_chunk(self):
        return min(self.s["log_every"], self.s["iters"] - self.done)

    def lr_at(self, iteration):
        """The learning rate of update ``iteration`` (0-based): ``lr * lr_gamma ** (iteration // lr_step)``."""
        s = self.s
        return s["lr"] if s["lr_step"] is None else s["lr"] * s["lr_gamma"] ** (iteration // s["lr_step"])

    def lr_pieces(self, n):
        """The next n iterations as ``[(start, stop, lr)]``, cut where the step schedule changes the rate, so that
        every update gets its own iteration's rate whatever ``log_every`` is (n = 0: one empty piece)."""
        step = self.s["lr_step"]
        if step is None or n == 0:
            return [(0, n, self.lr_at(self.done))]
        pieces, a = [], 0
        while a < n:
            i = self.done + a
            b = min(n, (i // step + 1) * step - self.done)
            pieces.append((a, b, self.lr_at(i)))
            a = b
        return pieces

    def warmup_batch(self):
        """Data (X, Y, M, resets) for the zero-iteration compile call, from a throwaway stream."""
        return self.task.source(np.random.default_rng(0), self.B, self.model.dtype).next(1)

    def blank_batch(self, n):
        X, Y, M, _ = self.warmup_batch()
        return (np.zeros((n * self.B,) + X.shape[1:], X.dtype), np.zeros((n * self.B,) + Y.shape[1:], Y.dtype),
                M if M.shape[0] == 0 else np.zeros((n * self.B,) + M.shape[1:], M.dtype))

    def block_key(self, sizes, nb):
        """What runs recorded together by :func:`_record_blocks` share; None where this run cannot be
        (a task with its own columns, spectra, unequal chunks, a block past its end)."""
        n = sizes[0]
        if (self.extra is not None or self.probe is not None or n * len(sizes) != nb or sizes[-1] != n
                or self.done + nb > self.s["iters"] or self.status != "completed"):
            return None
        return (self.done, self.B, self.tracker.recent.shape[0], self.tracker.positions)

    def record(self, n, done, losses, norms, errors, elapsed):
        """Account for a chunk of n iterations of which ``done`` finished; return its row.

        When the loss or gradient became non-finite (``done < n``) the run is
        "diverged" and ``error`` says where; the ``done`` iterations applied before
        the bad one still get their row, and None is returned only when there are none.
        """
        s, B = self.s, self.B
        if done < n:
            self.status = "diverged"
            self.error = divergence_error(s, self.done + done + 1)
            if done == 0:
                return None
            n = done
        self.done += n
        self.tracker.add(errors[: n * B], self.done - n, B)
        # sums over counts: the same numbers as .mean() (the same pairwise sums; integer sums exact),
        # without np.mean's Python-level wrapper, four times a row
        row = _row(self.done, B, float(losses[:n].sum()) / n, int(errors[: n * B].sum()) / (n * B),
                   self.tracker.accuracy(), self.tracker.position_accuracy(), float(norms[:n].sum()) / n,
                   self.lr_at(self.done - 1), elapsed)
        if self.extra is not None:
            row.update(self.extra.update(losses[:n], errors[: n * B]))
        if self.probe is not None:
            row.update(_spectral_columns(self.model, self.probe))
        self.rows.append(row)
        return row


def _row(done, B, loss, error, accuracy, digit_accuracy, grad_norm, lr, elapsed):
    """A training run's metrics row after ``done`` iterations (every task's columns, in order)."""
    return dict(iteration=done, samples=done * B, loss=loss, error=error, accuracy=accuracy,
                digit_accuracy=digit_accuracy, grad_norm=grad_norm, learning_rate=lr, elapsed_s=elapsed)


def _record_blocks(runs, sizes, nb, losses, norms, errors, before, now):
    """Record a block of equal chunks that every one of ``runs`` finished (one ``block_key``).

    ``losses``, ``norms`` (len(runs), >= nb) and ``errors`` (len(runs), >= nb*B) hold
    the runs' block in their rows. The rows are :meth:`_Run.record`'s, number for
    number: each chunk's sums are sums over the last axis of the block reshaped
    (numpy sums a contiguous row as it sums a slice, pairwise), the accuracies come
    from running counts over the last ACCURACY_WINDOW samples, and each tracker
    takes the block at once (its streak is cut-agnostic).
    """
    M, n, k = len(runs), sizes[0], len(sizes)
    done0, B, L0, positions = runs[0].block_key(sizes, nb)
    nB = n * B
    loss_sums = np.ascontiguousarray(losses[:, :nb]).reshape(M, k, n).sum(axis=2).tolist()
    norm_sums = np.ascontiguousarray(norms[:, :nb]).reshape(M, k, n).sum(axis=2).tolist()
    errs = np.ascontiguousarray(errors[:, : nb * B])
    err_sums = errs.reshape(M, k, nB).sum(axis=2).tolist()
    seen = np.concatenate([np.stack([r.tracker.recent for r in runs]).reshape(M, L0), errs], axis=1)
    ends = np.arange(1, k + 1) * nB + L0
    starts = np.maximum(ends - ACCURACY_WINDOW, 0)
    head = np.zeros((M, 1), dtype=np.int64)
    zeros = np.concatenate([head, np.cumsum(seen == 0, axis=1)], axis=1)
    total = np.concatenate([head, np.cumsum(seen, axis=1)], axis=1)
    lens = ends - starts
    right = (zeros[:, ends] - zeros[:, starts]).tolist()
    wrong = total[:, ends] - total[:, starts]
    position_acc = (1.0 - wrong / (lens * positions)).tolist()
    lens = lens.tolist()
    window = seen[:, -ACCURACY_WINDOW:]
    elapsed = [before + (now - before) * ((c + 1) * n) / nb for c in range(k)]
    for i, r in enumerate(runs):
        tracker = r.tracker
        if tracker.first_perfect_iteration is None:
            tracker.add(errs[i], done0, B)
        tracker.recent = window[i].copy()  # what add leaves: the last ACCURACY_WINDOW samples
        lr, rows, loss_i, norm_i, err_i, right_i, pos_i = r.s["lr"], r.rows, loss_sums[i], norm_sums[i], err_sums[i], right[i], position_acc[i]
        for c in range(k):
            done = done0 + (c + 1) * n
            rows.append(_row(done, B, loss_i[c] / n, err_i[c] / nB, right_i[c] / lens[c], pos_i[c], norm_i[c] / n, lr,
                             elapsed[c]))
        r.done = done0 + nb


def _final_scores(run):
    """The task's end-of-run scores (:meth:`final` of its metrics: text, the whole held-out text),
    scored for a completed run that has rows only, and not when Ctrl-C stops the scoring (the run
    is kept)."""
    extra = getattr(run, "extra", None)
    if extra is None or not hasattr(extra, "final"):
        return {}
    if run.status == "completed" and run.rows:
        try:
            return extra.final()
        except KeyboardInterrupt:
            pass
    return extra.final(score=False)


def _finish(run, train_seconds, compile_seconds, writer, save, bar, ckpt=None):
    """The end of a run (completed, interrupted, diverged): the task's final scores, the last checkpoint,
    the model, the JSON.

    A file that cannot be written is reported as an OutputError (the JSON, if it can
    be written, records the run and the error) after the others are written.
    """
    if bar is not None:
        bar.close()
    final_scores = _final_scores(run)
    save_path, failure = None, None
    if run.status != "diverged":
        seconds = run.seconds_before + train_seconds
        if ckpt is not None and run.resumable and ckpt.at != run.done:
            try:
                ckpt.write(run, seconds)
            except OSError as exc:
                failure = _Unwritten("checkpoint", ckpt.path, exc)
        if save is not None:
            try:
                save_path = _save_model(run, save, seconds, ckpt)
            except OSError as exc:
                failure = failure or _Unwritten("model", save, exc)
    result = _result(run, train_seconds, compile_seconds, writer, save_path, ckpt, final_scores)
    if writer is not None:
        extra = {} if failure is None else {"error": _failure_line(run, failure, writer, ckpt, save_path, False)}
        try:
            writer.write_json(status=run.status, result=result.summary(), **extra)
        except OSError as exc:
            failure = failure or _Unwritten("settings", writer.json_path, exc)
        writer.close()
    if failure is not None:
        error = OutputError(_failure_line(run, failure, writer, ckpt, save_path, False))
        error.result = result
        raise error from failure.error
    return result


def _result(run, train_seconds, compile_seconds, writer, save_path, ckpt, final_scores=None):
    return TrainResult(
        model=run.model, history=None, train_seconds=train_seconds,
        first_perfect_iteration=run.tracker.first_perfect_iteration, status=run.status, settings=run.s,
        iterations=run.done, compile_seconds=compile_seconds, csv_path=None if writer is None else writer.csv_path,
        json_path=None if writer is None else writer.json_path, save_path=save_path, rows=run.rows,
        columns=run.columns, checkpoint_path=None if ckpt is None else ckpt.path,
        rows_cut=getattr(run, "rows_cut", 0), notes=[writer.repaired] if writer is not None and writer.repaired else [],
        final_scores=final_scores or {}, threads=getattr(run, "threads", None), kernel=getattr(run, "kernel", None),
        thread_use=getattr(run, "thread_use", None),
    )


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

    def state(self):
        return dict(streak=int(self.streak), first_perfect_iteration=self.first_perfect_iteration)

    def restore(self, state, recent):
        self.streak = int(state["streak"])
        self.first_perfect_iteration = state["first_perfect_iteration"]
        self.recent = np.asarray(recent, dtype=np.int64)

    def accuracy(self):
        return int(np.count_nonzero(self.recent == 0)) / self.recent.shape[0]

    def position_accuracy(self):
        return float(1.0 - self.recent.sum() / (self.recent.shape[0] * self.positions))
