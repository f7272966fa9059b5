"""fastrnn against the ways people would otherwise train small RNNs.

Usage:
    python benchmarks/run.py --quick     # under 5 minutes: fewer iterations for the slow contenders, a small grid
    python benchmarks/run.py             # the full run

Workloads (each written to benchmarks/results/<workload>.csv):
- headline: binary addition, 20000 SGD iterations at batch 1 (the binary task's defaults), on the
  default kernel choice and on the general kernel (FASTRNN_KERNEL=general);
- digits: digit addition at batch 32 (Adam, clipping), time until accuracy first reaches 0.99;
- throughput: one forward + backward over a grid of hidden size, length and batch;
- loss_and_grads: one `loss_and_grads` call at the binary and the digit shape;
- startup: `fastrnn train` of every task (and `--data`) in a fresh process, with an empty numba cache (cold) and cached (warm);
- sweep: `fastrnn.sweep` over 1000 binary seeds (--quick: 32 seeds, scaled to 1000);
- floor: how close the headline run is to this machine's peak for the same loop shapes.

Every workload checks that its contenders do the same work before any time counts:
in the headline and digits workloads each contender's parameters after 50 training
iterations from the same weights and data must equal fastrnn's (rtol 1e-9; in the
digits workload PyTorch gets rtol 1e-6, atol 1e-7, because its clip_grad_norm_ divides
by norm + 1e-6, which moves its parameters by about 5e-9 in 50 iterations); in the
throughput grid and loss_and_grads every contender's gradients must equal fastrnn's
(or the plain-numpy twin's) at each shape; in the sweep, runs picked across the
seed range must equal separate `fastrnn.train` runs row for row. Each timed
`fastrnn.train` call of the headline counts only if its weights after all 20000
iterations equal the single-purpose numba loop's from the same weights and data
(rtol 1e-9) and its metrics rows equal the first checked call's. The numpy
contenders run at 1 and at 2 BLAS threads (threadpoolctl, set before the clock
starts): numpy's OpenBLAS uses every core by default, which on a busy machine
can cost more than it gains. Times are medians
of 5 repeats after a warm-up, with the min-max spread, and ratios are taken against
fastrnn in the same run. In the headline and digits workloads the repeats go
round-robin (each round times every contender once), so a slow spell of the shared
machine falls on all contenders alike. PyTorch and JAX are optional
(`pip install '.[bench]'`); a contender that is not installed is skipped with a
line saying so.

Every results file records the machine (platform, CPU, cores), the versions, the
thread counts read at run time and the date. `--from-csv` renders the tables, the
notes on scaled times from those files alone into
benchmarks/results/summary.md and every page (README.md, docs/*.md) that has the
marks: the tables between `<!-- bench:start -->` and `<!-- bench:end -->`, the
sentence on the first and a later run between `<!-- intro:start -->` and
`<!-- intro:end -->`.
"""

import argparse
import contextlib
import importlib
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import RESULTS, ROOT, describe, environment, fastrnn_after_sgd, read_csv, time_call, update_readme, write_csv

import fastrnn
import numba_loop
from fastrnn import dispatch
import numpy_batched
import numpy_loop

REPEATS = 5
ITERS = 20000  # the headline's iterations
SWEEP_SEEDS = 1000  # the sweep: fastrnn sweep --task binary --seeds 0-999
WORKLOADS = ("headline", "digits", "throughput", "loss_and_grads", "startup", "sweep", "floor")


def optional(name):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # not installed, or broken
        print(f"skipping the {name.split('_')[0]} contenders: {exc}", flush=True)
        return None


torch_rnn = jax_rnn = None  # loaded by main() when it measures: rendering from the files needs neither


# --------------------------------------------------------------------- helpers


def validate(trainer_factory, p0, X, Y, activation, head, name):
    """The contender's parameters after 50 SGD iterations at batch 1 equal fastrnn's."""
    same_params(trainer_factory, fastrnn_after_sgd(p0, X, Y, activation, head, 50), X, Y, name)


def same_params(trainer_factory, want, X, Y, name, n=50, rtol=1e-9, atol=1e-12):
    trainer = trainer_factory()
    trainer.train(X, Y, n)
    got = trainer.params()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=f"{name}: {k} after {n} iterations")


def same_grads(got, want, name):
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=f"{name}: gradient of {k}")


def stream(task, seed, iters, batch):
    """The data fastrnn.train draws for this seed: default_rng([seed, 1]) (however it is chunked)."""
    data = task.sample(np.random.default_rng([seed, 1]), iters * batch)
    return data.X, data.Y


#: BLAS threads the numpy contenders are shown at: numpy's products run on OpenBLAS, whose default
#: is every core; on a shared machine one thread is often faster (threadpoolctl sets the count).
BLAS_THREADS = (1, 2)


def blas_threads(n):
    """A context with numpy's BLAS held to ``n`` threads (None: as it is)."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n, user_api="blas")


def blas_label(n):
    return f"{n} BLAS thread{'s' if n != 1 else ''}"


def spread(times):
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


# -------------------------------------------------------------------- headline


def check_run(result, validated, reference, name):
    """A timed ``fastrnn.train`` result counts only if it trained the validated trajectory.

    Its final weights must equal ``validated`` (rtol 1e-9) and its metrics rows
    (iteration, loss, accuracy) those of the first result checked, which ``reference``
    (a dict) keeps; it must also have learned. Raises AssertionError otherwise.
    """
    for k, v in validated.items():
        np.testing.assert_allclose(result.model.params[k], v, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: {k} after {result.iterations} iterations differs from the validated trajectory")
    rows = result.history[["iteration", "loss", "accuracy"]].to_numpy()
    want = reference.setdefault("rows", rows)
    np.testing.assert_allclose(rows, want, rtol=1e-9, atol=0, err_msg=f"{name}: metrics rows differ from the reference run's")
    assert result.final_accuracy == 1.0, f"{name} did not learn"


def headline(quick):
    """Binary addition, 20000 SGD iterations at batch 1, sigmoid units, lr 0.1 (the binary task's defaults)."""
    iters, seed = ITERS, 0
    task = fastrnn.BinaryAddition(8)
    X, Y = stream(task, seed, iters, 1)
    init = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=seed, init_scale=1.0)
    p0 = {k: v.copy() for k, v in init.params.items()}

    # The validated trajectory: the single-purpose numba loop (its first 50 iterations checked against
    # fastrnn's kernel below, and against the plain numpy loop by the tests) trained over all 20000
    # iterations from p0 on the data fastrnn.train draws for this seed. A fastrnn.train call counts only if
    # its final weights equal the loop's, and its metrics rows (losses, accuracies) equal those of the
    # first such call checked (the reference run): a timed call that trained anything else would be refused.
    loop = numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1)
    validate(lambda: numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), p0, X, Y, "sigmoid", "sigmoid", "numba single-purpose loop")
    loop.train(X, Y, iters)
    validated = loop.params()
    reference = {}

    def checked(result, name):
        check_run(result, validated, reference, name)

    kernels = {}  # the kernel each library contender trained with, from its result (as the run's JSON records it)

    def library(name, force_general):
        def once():
            saved = os.environ.get(dispatch.ENV)
            if force_general:
                os.environ[dispatch.ENV] = "general"
            try:
                t0 = time.perf_counter()
                result = fastrnn.train(task="binary", iters=iters, seed=seed)
                seconds = time.perf_counter() - t0
            finally:
                if saved is None:
                    os.environ.pop(dispatch.ENV, None)
                else:
                    os.environ[dispatch.ENV] = saved
            checked(result, name)  # before its time counts
            kernels[name] = result.kernel.name
            return seconds, result.final_accuracy, result.train_seconds
        return once

    default_name, general_name = "fastrnn (library call, default kernel choice)", "fastrnn (library call, FASTRNN_KERNEL=general)"
    fastrnn_lib = library(default_name, False)
    fastrnn_general = library(general_name, True)

    cmd = [sys.executable, "-m", "fastrnn", "train", "--task", "binary", "--iters", str(iters), "--no-csv", "-q"]

    def fastrnn_cli():
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t0, np.nan, np.nan

    used = {}  # threads a trainer reported while it trained, read at run time

    def trainer_run(name, factory, n, blas=None):
        def once():
            trainer = factory()
            with blas_threads(blas):  # entered before the clock starts
                t0 = time.perf_counter()
                errors = trainer.train(X[:n], Y[:n], n)
                seconds = (time.perf_counter() - t0) * iters / n
            if getattr(trainer, "threads_used", None) is not None:
                used[name] = trainer.threads_used
            return seconds, float(np.mean(errors[-1000:] == 0)) if n >= 5000 else np.nan, seconds
        return once

    slow = 2000 if quick else iters
    contenders = [(default_name, fastrnn_lib, iters, 1), (general_name, fastrnn_general, iters, 1),
                  ("fastrnn train (whole command)", fastrnn_cli, iters, 1)]
    trainers = [(f"numpy per-sample loop, {blas_label(b)}", lambda: numpy_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), slow, b, p0, "sigmoid")
                for b in BLAS_THREADS]
    trainers += [(f"numpy batched, batch 1, {blas_label(b)}", lambda: numpy_batched.Trainer(p0, "sigmoid", "sigmoid", 0.1), slow, b, p0, "sigmoid")
                 for b in BLAS_THREADS]
    trainers += [("numba single-purpose loop", lambda: numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), iters, 1, p0, "sigmoid")]
    if torch_rnn:
        # one intra-op thread, as PyTorch users run batch-1 models: more threads only add synchronisation
        trainers.append(("PyTorch cell loop, batch 1", lambda: torch_rnn.CellLoop(p0, "sigmoid", "sigmoid", 0.1, threads=1), 300 if quick else 2000, None, p0, "sigmoid"))
        # nn.RNN has no sigmoid units: the same loop with tanh units, checked the same way
        tanh0 = fastrnn.RNN(2, 16, 1, activation="tanh", head="sigmoid", seed=seed, init_scale=0.5)
        pt = {k: v.copy() for k, v in tanh0.params.items()}
        trainers.append(("PyTorch nn.RNN (tanh), batch 1", lambda: torch_rnn.NNRNN(pt, "tanh", "sigmoid", 0.1, threads=1), 300 if quick else 2000, None, pt, "tanh"))
    if jax_rnn:
        trainers.append(("JAX jit step (lax.scan), batch 1", lambda: jax_rnn.StepJit(p0, "sigmoid", "sigmoid", 0.1), 300 if quick else 2000, 1, p0, "sigmoid"))
        trainers.append(("JAX jit loop (lax.scan over iterations, int8 data), batch 1", lambda: jax_rnn.JitLoop(p0, "sigmoid", "sigmoid", 0.1), iters, 1, p0, "sigmoid"))
    for name, factory, n, threads, params, activation in trainers:
        validate(factory, params, X, Y, activation, "sigmoid", name)
        factory().train(X[:n], Y[:n], n if n == iters else min(n, 50))  # warm-up (compiles for the timed shape)
        contenders.append((name, trainer_run(name, factory, n, blas=threads if name.startswith("numpy") else None), n, threads))
    fastrnn_lib()  # warm-up (compile or load), and the reference run: checked against the validated trajectory
    fastrnn_general()
    fastrnn_cli()
    # Round-robin: each round times every contender once, so that the drift of a
    # shared machine falls on all of them alike instead of on whoever runs first.
    times = {name: [] for name, *_ in contenders}
    training = {name: [] for name, *_ in contenders}
    finals = {}
    for _ in range(REPEATS):
        for name, once, _, _ in contenders:
            seconds, final, train_s = once()
            times[name].append(seconds)
            training[name].append(train_s)
            finals[name] = final
    rows = []
    for name, _, n, threads in contenders:
        rows.append(dict(contender=name, kernel=kernels.get(name, ""), iterations=iters, iterations_timed=n, final_accuracy=finals[name],
                         threads=used.get(name, threads), checked="validated trajectory" if name in kernels else "",
                         **dict(zip(("median_s", "min_s", "max_s"), spread(times[name]))),
                         train_s=float(np.median(training[name]))))
        print(f"  headline {name}: {rows[-1]['median_s']:.3f} s for {iters} iterations (timed on {n})", flush=True)
    base = rows[0]["median_s"]
    for r in rows:
        r["x_fastrnn"] = r["median_s"] / base
    return rows


# ----------------------------------------------------------------------- digits


def digits(quick):
    """Digit addition at the task's defaults (batch 32, Adam, clipping): seconds until accuracy first reaches 0.99."""
    from fastrnn.training import TASK_DEFAULTS

    d = TASK_DEFAULTS["digits"]
    seed, B, target, max_iters, chunk, lr = 0, d["batch"], 0.99, 3000, 100, d["lr"]
    task = fastrnn.DigitAddition(10)
    X, Y = stream(task, seed, max_iters, B)
    init = fastrnn.RNN(20, 100, 10, activation="tanh", head="softmax", seed=seed)
    p0 = {k: v.copy() for k, v in init.params.items()}
    repeats = 3 if quick else REPEATS

    def fastrnn_once():
        result = fastrnn.train(task="digits", iters=max_iters, seed=seed)
        hit = result.history.index[result.history["accuracy"] >= target]
        at = int(result.history.loc[hit[0], "iteration"])
        return float(result.history.loc[hit[0], "elapsed_s"]), result.train_seconds / max_iters, at

    def trainer_once(factory, blas=None):
        def once():
            trainer = factory()
            errors = np.zeros(0, dtype=np.int64)
            done = 0
            with blas_threads(blas):  # entered before the clock starts
                t0 = time.perf_counter()
                while done < max_iters:
                    sl = slice(done * B, (done + chunk) * B)
                    errors = np.concatenate([errors, trainer.train(X[sl], Y[sl], chunk)])[-1000:]
                    done += chunk
                    if np.mean(errors == 0) >= target:
                        break
                elapsed = time.perf_counter() - t0
            return elapsed, elapsed / done, done if np.mean(errors == 0) >= target else None
        return once

    kwargs = dict(optimizer=d["optimizer"], clip=d["clip"], batch=B)
    factories = [(f"numpy batched, {blas_label(b)}", lambda: numpy_batched.Trainer(p0, "tanh", "softmax", lr, **kwargs), b)
                 for b in BLAS_THREADS]
    if torch_rnn:
        factories.append(("PyTorch nn.RNN", lambda: torch_rnn.NNRNN(p0, "tanh", "softmax", lr, **kwargs), None))
        factories.append(("PyTorch cell loop", lambda: torch_rnn.CellLoop(p0, "tanh", "softmax", lr, **kwargs), None))
    if jax_rnn:
        factories.append(("JAX jit loop (lax.scan over iterations, int8 data)", lambda: jax_rnn.JitLoop(p0, "tanh", "softmax", lr, **kwargs), None))
    contenders = [("fastrnn", fastrnn_once)]
    # The same work: fastrnn.train's model after 50 iterations (its own initial weights, which
    # must be p0, and its own data stream) is what every contender must reach from p0 on X, Y.
    want = fastrnn.train(task="digits", iters=50, seed=seed).model.params
    for name, factory, blas in factories:
        # torch.nn.utils.clip_grad_norm_ scales by clip / (norm + 1e-6), not clip / norm: after 50
        # iterations that moves PyTorch's parameters by about 5e-9; a wrong step would move them by about lr.
        tol = dict(rtol=1e-6, atol=1e-7) if name.startswith("PyTorch") else {}
        same_params(factory, want, X, Y, name, **tol)
        factory().train(X[: chunk * B], Y[: chunk * B], chunk)  # warm-up (JAX compiles for the chunk's shape)
        contenders.append((name, trainer_once(factory, blas)))
    # Round-robin repeats, as in the headline workload.
    results = {name: [] for name, _ in contenders}
    for _ in range(repeats):
        for name, once in contenders:
            results[name].append(once())
    rows = []
    for name, _ in contenders:
        seconds = [r[0] for r in results[name]]
        rows.append(dict(contender=name, target=target, batch=B, reached_at=results[name][-1][2], per_iteration_ms=float(np.median([r[1] for r in results[name]])) * 1e3,
                         **dict(zip(("median_s", "min_s", "max_s"), spread(seconds)))))
        print(f"  digits {name}: {rows[-1]['median_s']:.2f} s, accuracy 0.99 at iteration {rows[-1]['reached_at']}", flush=True)
    base = rows[0]
    for r in rows:
        r["x_fastrnn"] = r["median_s"] / base["median_s"]
        r["x_fastrnn_per_iteration"] = r["per_iteration_ms"] / base["per_iteration_ms"]
    return rows


# ------------------------------------------------------------------- throughput


def flops(B, T, I, H, O):
    return 2 * T * B * (2 * H * I + 3 * H * H + 3 * O * H)


def throughput(quick):
    """Sequences per second and GFLOP/s of one forward + backward (loss_and_grads)."""
    I, O = 10, 10
    hidden = [16, 64, 256] if quick else [16, 32, 64, 128, 256, 512]
    lengths = [32] if quick else [8, 64, 256]
    batches = [1, 32] if quick else [1, 32, 256]
    rows = []
    for T in lengths:
        for B in batches:
            for H in hidden:
                rng = np.random.default_rng(0)
                model = fastrnn.RNN(I, H, O, activation="tanh", head="softmax", seed=0)
                p = {k: v.copy() for k, v in model.params.items()}
                X = rng.standard_normal((B, T, I))
                Y = np.eye(O)[rng.integers(0, O, (B, T))]
                calls = {"fastrnn": lambda: model.loss_and_grads(X, Y)}
                blas = {}  # numpy's BLAS threads per contender (timed inside threadpool_limits)
                for b in BLAS_THREADS:
                    calls[f"numpy batched, {blas_label(b)}"] = lambda: numpy_batched.loss_and_grads(p, X, Y, None, "tanh", "softmax")
                    blas[f"numpy batched, {blas_label(b)}"] = b
                # The same work: every contender's gradients at this shape equal fastrnn's.
                want = {k: v.copy() for k, v in model.loss_and_grads(X, Y)[1].items()}
                same_grads(numpy_batched.loss_and_grads(p, X, Y, None, "tanh", "softmax")[1], want, f"numpy batched at T={T} B={B} H={H}")
                if torch_rnn:
                    step, grads = torch_rnn.loss_and_grads_fn(p, "tanh", "softmax")
                    Xt, Yt = torch_rnn.torch.from_numpy(X), torch_rnn.torch.from_numpy(Y)
                    calls["PyTorch nn.RNN"] = lambda step=step, Xt=Xt, Yt=Yt: step(Xt, Yt)
                    step(Xt, Yt)
                    same_grads(grads(), want, f"PyTorch nn.RNN at T={T} B={B} H={H}")
                if jax_rnn:
                    call = jax_rnn.loss_and_grads_fn(p, "tanh", "softmax")
                    Xj, Yj = jax_rnn.jnp.asarray(X), jax_rnn.jnp.asarray(Y)
                    calls["JAX jit(grad)"] = lambda call=call, Xj=Xj, Yj=Yj: call(Xj, Yj)
                    same_grads({k: np.asarray(v) for k, v in call(Xj, Yj).items()}, want, f"JAX jit(grad) at T={T} B={B} H={H}")
                results = {}
                for name, fn in calls.items():
                    with blas_threads(blas.get(name)):
                        med, lo, hi = time_call(fn, repeats=REPEATS, min_seconds=0.02 if quick else 0.05)
                    results[name] = med
                    rows.append(dict(contender=name, blas_threads=blas.get(name, ""), B=B, T=T, H=H, median_us=med * 1e6, min_us=lo * 1e6, max_us=hi * 1e6,
                                     sequences_per_s=B / med, gflops=flops(B, T, I, H, O) / med / 1e9))
                for r in rows[-len(calls):]:
                    r["x_fastrnn"] = r["median_us"] / (results["fastrnn"] * 1e6)
                print(f"  throughput T={T} B={B} H={H}: " + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in results.items()), flush=True)
    return rows


def plot_throughput(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = sorted({r["T"] for r in rows})[len({r["T"] for r in rows}) // 2]
    batches = sorted({r["B"] for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(5.6 * len(batches), 4))
    fig.subplots_adjust(wspace=0.3)
    for ax, B in zip(np.atleast_1d(axes), batches):
        for name in dict.fromkeys(r["contender"] for r in rows):
            sel = sorted((r for r in rows if r["contender"] == name and r["B"] == B and r["T"] == T), key=lambda r: r["H"])
            ax.loglog([r["H"] for r in sel], [r["sequences_per_s"] for r in sel], marker="o", label=name)
        hs = sorted({r["H"] for r in rows})
        ax.set_xticks(hs)
        ax.set_xticklabels([str(h) for h in hs])
        ax.minorticks_off()
        ax.set_title(f"forward + backward, T={T}, batch {B}")
        ax.set_xlabel("hidden size H")
        ax.set_ylabel("sequences per second")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------------- startup


#: The start-up table's runs: the headline, then a short first run of every other built-in task and of
#: ``--data`` (1,400 sequences of 8 steps of 8 inputs, 10 classes: the shape of scikit-learn's 8x8 digits
#: read row by row, drawn at random here), each a fresh process.
STARTUP_RUNS = (
    ("binary", ["--task", "binary", "--iters", "20000"]),
    ("digits", ["--task", "digits", "--iters", "200"]),
    ("text", ["--task", "text", "--iters", "200"]),
    ("recall", ["--task", "recall", "--iters", "200"]),
    ("data", ["--data", "{data}", "--epochs", "1"]),
)


def startup():
    """Each of STARTUP_RUNS in fresh processes: once on an empty numba cache of its own (cold), then cached (warm)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        data = os.path.join(tmp, "rows.npz")
        labels = rng.integers(0, 10, 1400)
        np.savez(data, X=rng.normal(size=(1400, 8, 8)), Y=np.repeat(np.eye(10)[labels][:, None, :], 8, 1))
        for task, args in STARTUP_RUNS:
            cmd = [sys.executable, "-m", "fastrnn", "train", *[a.format(data=data) for a in args], "--no-csv", "-q"]
            env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, f"cache-{task}"))
            for start, repeats in (("cold (empty numba cache)", 1), ("warm (cached)", REPEATS)):
                times, compile_s, train_s = [], [], []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tmp).stdout
                    times.append(time.perf_counter() - t0)
                    compile_s.append(float(out.split("start-up and compile ")[1].split(" s")[0]) if "start-up and compile " in out else np.nan)
                    train_s.append(float(out.split("; training ")[1].split(" s")[0]) if "; training " in out else np.nan)
                rows.append(dict(task=task, start=start, repeats=repeats, run="fastrnn train " + " ".join(args).format(data="rows.npz"),
                                 **dict(zip(("median_s", "min_s", "max_s"), spread(times))),
                                 compile_or_load_s=float(np.median(compile_s)), train_s=float(np.median(train_s))))
                print(f"  {task} {start}: {rows[-1]['median_s']:.2f} s", flush=True)
    return rows


# ---------------------------------------------------------------- loss_and_grads


def loss_and_grads():
    """One `loss_and_grads` call at the binary and the digit shape against the numpy forms (bench_kernels.py)."""
    import bench_kernels

    rows = []
    for case in bench_kernels.GRID:
        if case[0] in bench_kernels.QUICK:  # each contender is checked against the twin (rtol 1e-10) first
            rows.extend(bench_kernels.bench_shape(*case))
            by = {r["contender"]: r for r in rows if r["shape"] == case[0]}
            print(f"  loss_and_grads {case[0]}: fastrnn {by['fastrnn']['median_us']:.1f} us, numpy batched "
                  + ", ".join(f"{by[f'numpy_batched_{b}t']['median_us']:.1f} us ({blas_label(b)})" for b in bench_kernels.BLAS_THREADS),
                  flush=True)
    return rows


# ------------------------------------------------------------------------ sweep


def sweep(quick):
    """`fastrnn.sweep` over binary seeds, 20000 iterations each, on every core.

    A few runs across the seed range are trained again on their own with
    `fastrnn.train` first and must give the same metrics rows, number for number.
    """
    n = 32 if quick else SWEEP_SEEDS
    with tempfile.TemporaryDirectory() as tmp:
        fastrnn.sweep(task="binary", seeds=range(2), out=os.path.join(tmp, "warm-up"), iters=200)  # compile or load once
        t0 = time.perf_counter()
        result = fastrnn.sweep(task="binary", seeds=range(n), out=os.path.join(tmp, "runs"), iters=ITERS)
        wall = time.perf_counter() - t0
        summary = result.summary.set_index("seed")
        checked = sorted({0, n // 2, n - 1})
        for seed in checked:
            alone = os.path.join(tmp, f"alone-{seed}.csv")
            fastrnn.train(task="binary", iters=ITERS, seed=seed, csv=alone)
            import pandas as pd

            got = pd.read_csv(os.path.join(tmp, "runs", summary.loc[seed, "run"] + ".csv"))
            want = pd.read_csv(alone)
            for col in ("iteration", "loss", "accuracy"):
                np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=f"sweep seed {seed}: {col}")
    reached = int((summary["final_accuracy"] == 1.0).sum())
    print(f"  sweep: {n} seeds in {wall:.1f} s, {reached} reached 1.0 (checked against train(): seeds {checked})", flush=True)
    return [dict(seeds=n, iters=ITERS, workers=os.cpu_count(), wall_s=wall, scaled_to=SWEEP_SEEDS,
                 scaled_s=wall * SWEEP_SEEDS / n, reached_1=reached, checked_seeds=" ".join(map(str, checked)))]


# ------------------------------------------------------------------------ floor


def floor(headline_rows):
    """Achieved against peak for the headline loop's shapes.

    One binary iteration does 2 T (2 H I + 3 H^2 + 3 O H) flops in its products plus
    2 P in the SGD update (T=8, I=2, H=16, O=1). The peak is the best this machine
    does on the same shapes: a numba loop of T dependent 16x16 matrix-vector products
    (the recurrence, which cannot run faster than one product after another) timed
    alone, in GFLOP/s.
    """
    from numba import njit

    @njit(cache=False, error_model="numpy")
    def chain(W, h, reps):
        H = h.shape[0]
        out = np.empty(H)
        for _ in range(reps):
            for t in range(8):
                for j in range(H):
                    out[j] = 0.0
                for p in range(H):
                    hp = h[p]
                    for j in range(H):
                        out[j] += W[p, j] * hp
                for j in range(H):
                    h[j] = out[j] * 0.5
        return h

    W = np.random.default_rng(0).standard_normal((16, 16)) * 0.1
    h = np.ones(16)
    chain(W, h, 10)
    reps = 200000
    t0 = time.perf_counter()
    chain(W, h, reps)
    peak = 2 * 16 * 16 * 8 * reps / (time.perf_counter() - t0) / 1e9
    T, I, H, O = 8, 2, 16, 1
    P = H * I + H * H + H + O * H + O
    per_iteration = 2 * T * (2 * H * I + 3 * H * H + 3 * O * H) + 2 * P
    seconds = headline_rows[0]["median_s"] / 20000
    achieved = per_iteration / seconds / 1e9
    return [dict(flops_per_iteration=per_iteration, seconds_per_iteration=seconds, achieved_gflops=achieved,
                 peak_gflops_same_shapes=peak, achieved_over_peak=achieved / peak)]


# ----------------------------------------------------------------------- output


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def by_contender(rows, name):
    return next((r for r in rows if str(r.get("contender", "")).startswith(name)), None)


def provenance(results, name, base):
    """A note when a workload's file was measured by another command or on another day than the headline's."""
    rows = results.get(name) or []
    if not rows or not base:
        return []
    r = rows[0]
    if (r.get("command"), str(r.get("date"))[:10], r.get("cpu")) == (base.get("command"), str(base.get("date"))[:10], base.get("cpu")):
        return []
    return ["", "(This table: " + describe(r) + ")"]


def markdown(results):
    """The README block and summary.md, from the results rows alone."""
    head = results["headline"]
    base = head[0]
    lines = [describe(base) + " Medians of 5 repeats, min-max in brackets.", ""]
    lines += ["**Binary addition, 20000 SGD iterations at batch 1** (the headline):", "",
              "| contender | kernel | seconds for 20000 iterations | x fastrnn | iterations timed | threads |", "|---|---|---|---|---|---|"]
    for r in head:
        lines.append(f"| {r['contender']} | {fmt(r.get('kernel'))} | {fmt(r['median_s'])} [{fmt(r['min_s'])}-{fmt(r['max_s'])}] | "
                     f"{fmt(r['x_fastrnn'])} | {r['iterations_timed']} | {r['threads']} |")
    if any(r.get("checked") == "validated trajectory" for r in head):
        lines += ["", "Each timed `fastrnn.train` call was checked before its time counted: its weights after 20000 iterations "
                      "equal (rtol 1e-9) those of the single-purpose numba loop trained from the same weights on the same data "
                      "(the validated trajectory: the loop's first 50 iterations equal fastrnn's kernel's), and its metrics "
                      "rows equal the first checked call's. The default kernel choice is the one `fastrnn.train` makes "
                      "(`kernel` in the run's JSON); `FASTRNN_KERNEL=general` forces the general driver that serves every "
                      "setting (fastrnn/dispatch.py)."]
    scaled = {}
    for r in head:
        if r["iterations_timed"] < r.get("iterations", ITERS):
            scaled.setdefault(r["iterations_timed"], []).append(r["contender"])
    if scaled:
        lines += ["", "Scaled times: " + "; ".join(f"{' and '.join(repr(str(c)) for c in names)} ran {n} iterations, and their seconds "
                                                   f"are multiplied by {ITERS}/{n} = {ITERS / n:.4g}" for n, names in scaled.items()) + "."]
    lib = by_contender(head, "fastrnn (library call")
    if lib is not None:
        lines += ["", f"fastrnn's library call includes drawing the data and building the history; of its {fmt(lib['median_s'])} s, "
                      f"training took {fmt(lib['train_s'])} s (median of `train_seconds`), {fmt(lib['train_s'] / ITERS * 1e6)} us an iteration."]
    lines += provenance(results, "headline", base)
    lines += ["", "**Digit addition at the task's defaults (batch 32, Adam, clip 1.0), seconds until accuracy first reaches 0.99**"
              " (checked every 100 iterations; every contender's parameters after 50 iterations equal fastrnn's first):", "",
              "| contender | seconds | x fastrnn | reached at iteration | ms per iteration | x fastrnn per iteration |", "|---|---|---|---|---|---|"]
    for r in results["digits"]:
        lines.append(f"| {r['contender']} | {fmt(r['median_s'])} [{fmt(r['min_s'])}-{fmt(r['max_s'])}] | {fmt(r['x_fastrnn'])} | "
                     f"{fmt(r['reached_at'])} | {fmt(r['per_iteration_ms'])} | {fmt(r['x_fastrnn_per_iteration'])} |")
    lines += provenance(results, "digits", base)
    lines += ["", "**One forward + backward** (I=10, O=10, tanh, softmax; sequences per second and x fastrnn; "
              "every contender's gradients equal fastrnn's at each shape first):", "",
              "| T | B | H | " + " | ".join(dict.fromkeys(r["contender"] for r in results["throughput"])) + " |"]
    names = list(dict.fromkeys(r["contender"] for r in results["throughput"]))
    lines.append("|---|---|---|" + "---|" * len(names))
    shapes = list(dict.fromkeys((r["T"], r["B"], r["H"]) for r in results["throughput"]))
    for T, B, H in shapes:
        cells = []
        for name in names:
            r = next(r for r in results["throughput"] if (r["T"], r["B"], r["H"], r["contender"]) == (T, B, H, name))
            cells.append(f"{r['sequences_per_s']:.3g}/s ({r['x_fastrnn']:.2g}x)")
        lines.append(f"| {T} | {B} | {H} | " + " | ".join(cells) + " |")
    lines += provenance(results, "throughput", base)
    lines += ["", "![throughput against hidden size](benchmarks/results/throughput.png)"]
    if results.get("loss_and_grads"):
        lines += ["", "**One `loss_and_grads` call** (float64, tanh, full BPTT; each contender checked against the plain-numpy twin "
                  "first; numpy batched at 1 and 2 BLAS threads):", "",
                  "| shape | B | T | I | H | O | numpy batched, 1 BLAS thread | numpy batched, 2 BLAS threads | fastrnn | "
                  "batched / fastrnn, 1 thread | 2 threads |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for shape in dict.fromkeys(r["shape"] for r in results["loss_and_grads"]):
            c = {r["contender"]: r for r in results["loss_and_grads"] if r["shape"] == shape}
            f = c["fastrnn"]
            b1, b2 = c.get("numpy_batched_1t", c.get("numpy_batched")), c.get("numpy_batched_2t", c.get("numpy_batched"))
            lines.append(f"| {shape} | {f['B']} | {f['T']} | {f['I']} | {f['H']} | {f['O']} | {fmt(b1['median_us'])} us | "
                         f"{fmt(b2['median_us'])} us | {fmt(f['median_us'])} us | {fmt(b1['median_us'] / f['median_us'])}x | "
                         f"{fmt(b2['median_us'] / f['median_us'])}x |")
        lines += provenance(results, "loss_and_grads", base)
    lines += ["", "**Start-up**: the first run of each task in a fresh process with an empty numba cache of its own "
              "(cold, once), then later runs (warm, cached; medians); wall seconds, of which start-up and compile or "
              "cache load as the command reports it, and the warm run's training seconds (its work, not start-up):", "",
              "| run | cold: wall s | of which compile | warm: wall s [min-max] | of which load | of which training |",
              "|---|---|---|---|---|---|"]
    for task, pair in startup_by_task(results["startup"]).items():
        cold, warm = pair.get("cold"), pair.get("warm")
        command = (cold or warm).get("run") or "fastrnn train --task binary --iters 20000"
        trained = warm.get("train_s") if warm else None
        trained = "-" if trained is None or not np.isfinite(float(trained)) else fmt(trained)
        lines.append(f"| `{command}` | {fmt(cold['median_s']) if cold else '-'} | {fmt(cold['compile_or_load_s']) if cold else '-'} | "
                     + (f"{fmt(warm['median_s'])} [{fmt(warm['min_s'])}-{fmt(warm['max_s'])}] | {fmt(warm['compile_or_load_s'])} | "
                        f"{trained} |" if warm else "- | - | - |"))
    lines += provenance(results, "startup", base)
    if results.get("sweep"):
        sw = results["sweep"][0]
        lines += ["", f"**Sweep**: `fastrnn.sweep(task=\"binary\", seeds=range({sw['seeds']}), iters={sw['iters']})` on {sw['workers']} cores "
                      f"took {fmt(sw['wall_s'])} s; {sw['reached_1']}/{sw['seeds']} runs reached accuracy 1.0. Seeds {sw['checked_seeds']} "
                      "were trained again alone with `fastrnn.train` and gave the same metrics rows."]
        if sw["seeds"] != sw["scaled_to"]:
            lines.append(f"Scaled: {sw['scaled_to']} seeds would take {fmt(sw['wall_s'])} x {sw['scaled_to']}/{sw['seeds']} = {fmt(sw['scaled_s'])} s.")
        lines += provenance(results, "sweep", base)
    f = results["floor"][0]
    lines += ["", f"**Floor**: one headline iteration does {f['flops_per_iteration']} flops in {f['seconds_per_iteration'] * 1e6:.1f} us, "
              f"{f['achieved_gflops']:.2f} GFLOP/s; chained 16x16 matrix-vector products (the recurrence's shape) peak at "
              f"{f['peak_gflops_same_shapes']:.2f} GFLOP/s on this machine, so the headline run reaches "
              f"{100 * f['achieved_over_peak']:.0f}% of that peak."]
    return "\n".join(lines) + "\n"


def startup_by_task(rows):
    """{task: {"cold": row, "warm": row}} of the start-up rows (rows from before the task column: the headline's)."""
    out = {}
    for r in rows:
        task = r.get("task")
        task = "binary" if task is None or (isinstance(task, float) and np.isnan(task)) or task == "" else task
        out.setdefault(task, {})[r["start"].split(" ")[0]] = r
    return out


def intro(results):
    """The sentence at the top of the README: first run, a later run, training time."""
    lib = by_contender(results["headline"], "fastrnn (library call")
    start = startup_by_task(results.get("startup") or []).get("binary", {})
    base = results["headline"][0]
    parts = []
    if "cold" in start:
        parts.append(f"the first run on an empty numba cache took {fmt(start['cold']['median_s'])} s")
    if "warm" in start:
        parts.append(f"a later run of `fastrnn train --task binary --iters 20000` took {fmt(start['warm']['median_s'])} s in all")
    text = (f"In the last benchmark run (`{base.get('command')}`, {str(base.get('date'))[:10]}, {base.get('cpu')}, "
            f"{base.get('cores')} cores) " + ", ".join(parts) + ".")
    if lib is not None:  # the library call's own figure, not a share of the command's
        text += (f" Called from Python in a process that has loaded its kernels, `fastrnn.train(task=\"binary\", iters=20000)` "
                 f"trains in {fmt(lib['train_s'])} s (`train_seconds`, median).")
    return text + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations for the slow contenders, a small grid, 32 sweep seeds (< 5 minutes)")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the tables and plot from results/*.csv")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads to measure (the rest are read from results/*.csv)")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    if not args.from_csv:
        global torch_rnn, jax_rnn
        torch_rnn, jax_rnn = optional("torch_rnn"), optional("jax_rnn")
    results = {}
    run = {} if args.from_csv else {
        "headline": lambda: headline(args.quick), "digits": lambda: digits(args.quick), "throughput": lambda: throughput(args.quick),
        "loss_and_grads": loss_and_grads, "startup": startup, "sweep": lambda: sweep(args.quick), "floor": lambda: floor(results["headline"])}
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        parser.error(f"--only {','.join(unknown)}: unknown workload; choose from {', '.join(WORKLOADS)}")
    for name in WORKLOADS:
        if name in run and name in only:
            print(f"{name} ...", flush=True)
            path = write_csv(RESULTS / f"{name}.csv", run[name](), environment())
            results[name] = read_csv(path)  # render what the file holds, exactly as --from-csv would
            print(f"  wrote {path.relative_to(ROOT)}", flush=True)
        elif (RESULTS / f"{name}.csv").exists():
            results[name] = read_csv(RESULTS / f"{name}.csv")
    missing = [name for name in ("headline", "digits", "throughput", "startup", "floor") if name not in results]
    if missing:
        sys.exit(f"no results for {', '.join(missing)} in {RESULTS}: run without --from-csv (or with --only {','.join(missing)}) first")
    plot_throughput(results["throughput"], RESULTS / "throughput.png")
    block = markdown(results)
    (RESULTS / "summary.md").write_text(block)
    print("\n" + block)
    if not args.no_readme:
        for mark, text in (("bench", block), ("intro", intro(results))):
            for page in update_readme(text, mark):
                print(f"{page} updated between its {mark} marks")
    if (RESULTS / "text.csv").exists():  # the text task's table: measured by bench_text.py, rendered here too
        import bench_text

        bench_text.main(["--from-csv"] + (["--no-readme"] if args.no_readme else []))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
