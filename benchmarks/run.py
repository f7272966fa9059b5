"""fastrnn against the ways people would otherwise train small RNNs.

Usage:
    python benchmarks/run.py --quick     # under 5 minutes: fewer iterations for the slow contenders, a small grid
    python benchmarks/run.py             # the full run

Workloads (each written to benchmarks/results/<workload>.csv):
- headline: binary addition, 20000 SGD iterations at batch 1 (the lab);
- digits: digit addition at batch 32 (Adam, clipping), time until accuracy first reaches 0.99;
- throughput: one forward + backward over a grid of hidden size, length and batch;
- startup: `fastrnn train` in a fresh process, with an empty numba cache (cold) and cached (warm);
- floor: how close the headline run is to this machine's peak for the same loop shapes.

Every contender starts from the same weights and reads the same data. Before any
time counts, each one's parameters after 50 training iterations are compared with
fastrnn's (rtol 1e-9), so all of them compute the same thing. Times are medians of
5 repeats after a warm-up, with the min-max spread, and ratios are taken against
fastrnn in the same run. In the headline workload the repeats go round-robin (each
round times every contender once), so a slow spell of the shared machine falls on
all contenders alike. PyTorch and JAX are optional (`pip install '.[bench]'`); a
contender that is not installed is skipped with a line saying so.

Writes benchmarks/results/summary.md and throughput.png, and puts the same tables
into the README between its `<!-- bench:start -->` and `<!-- bench:end -->` marks.
"""

import argparse
import csv
import datetime
import importlib
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import RESULTS, ROOT, fastrnn_after_sgd, machine, time_call, update_readme, write_csv

import fastrnn
import numpy_batched
import numpy_loop

REPEATS = 5


def optional(name):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # not installed, or broken
        print(f"skipping the {name.split('_')[0]} contenders: {exc}", flush=True)
        return None


torch_rnn = optional("torch_rnn")
jax_rnn = optional("jax_rnn")


# --------------------------------------------------------------------- helpers


def validate(trainer_factory, p0, X, Y, activation, head, name):
    want = fastrnn_after_sgd(p0, X, Y, activation, head, 50)
    trainer = trainer_factory()
    trainer.train(X, Y, 50)
    got = trainer.params()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=f"{name}: {k} after 50 iterations")


def stream(task, seed, iters, batch):
    """The data fastrnn.train draws for this seed: default_rng([seed, 1]) (however it is chunked)."""
    data = task.sample(np.random.default_rng([seed, 1]), iters * batch)
    return data.X, data.Y


def spread(times):
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


# -------------------------------------------------------------------- headline


def headline(quick):
    """Binary addition, 20000 SGD iterations at batch 1, sigmoid units, lr 0.1 (the lab)."""
    iters, seed = 20000, 0
    task = fastrnn.BinaryAddition(8)
    X, Y = stream(task, seed, iters, 1)
    init = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=seed, init_scale=1.0)
    p0 = {k: v.copy() for k, v in init.params.items()}

    # Every contender as (name, run-once -> (seconds for 20000 iterations, final accuracy), iterations timed, threads).
    def fastrnn_lib():
        t0 = time.perf_counter()
        result = fastrnn.train(task="binary", iters=iters, seed=seed)
        assert result.final_accuracy == 1.0, "fastrnn did not learn"
        return time.perf_counter() - t0, result.final_accuracy

    cmd = [sys.executable, "-m", "fastrnn", "train", "--task", "binary", "--iters", str(iters), "--no-csv", "-q"]

    def fastrnn_cli():
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t0, np.nan

    def trainer_run(factory, n):
        def once():
            trainer = factory()
            t0 = time.perf_counter()
            errors = trainer.train(X[:n], Y[:n], n)
            return (time.perf_counter() - t0) * iters / n, float(np.mean(errors[-1000:] == 0)) if n >= 5000 else np.nan
        return once

    contenders = [("fastrnn (library call)", fastrnn_lib, iters, 1), ("fastrnn train (whole command)", fastrnn_cli, iters, 1)]
    trainers = [("numpy per-sample loop", lambda: numpy_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), 2000 if quick else iters, 1, p0, "sigmoid"),
                ("numpy batched, batch 1", lambda: numpy_batched.Trainer(p0, "sigmoid", "sigmoid", 0.1), 2000 if quick else iters, 1, p0, "sigmoid")]
    if torch_rnn:
        trainers.append(("PyTorch cell loop, batch 1", lambda: torch_rnn.CellLoop(p0, "sigmoid", "sigmoid", 0.1), 300 if quick else 2000, torch_rnn.threads(), p0, "sigmoid"))
        # nn.RNN has no sigmoid units: the same loop with tanh units, checked the same way
        tanh0 = fastrnn.RNN(2, 16, 1, activation="tanh", head="sigmoid", seed=seed, init_scale=0.5)
        pt = {k: v.copy() for k, v in tanh0.params.items()}
        trainers.append(("PyTorch nn.RNN (tanh), batch 1", lambda: torch_rnn.NNRNN(pt, "tanh", "sigmoid", 0.1), 300 if quick else 2000, torch_rnn.threads(), pt, "tanh"))
    if jax_rnn:
        trainers.append(("JAX jit step (lax.scan), batch 1", lambda: jax_rnn.StepJit(p0, "sigmoid", "sigmoid", 0.1), 300 if quick else 2000, 1, p0, "sigmoid"))
        trainers.append(("JAX jit loop (lax.fori_loop), batch 1", lambda: jax_rnn.ForiLoop(p0, "sigmoid", "sigmoid", 0.1), iters, 1, p0, "sigmoid"))
    for name, factory, n, threads, params, activation in trainers:
        validate(factory, params, X, Y, activation, "sigmoid", name)
        factory().train(X[:n], Y[:n], n if "fori" in name else min(n, 50))  # warm-up (JAX compiles for this shape)
        contenders.append((name, trainer_run(factory, n), n, threads))
    fastrnn_lib()  # warm-up: compile or load
    fastrnn_cli()
    # Round-robin: each round times every contender once, so that the drift of a
    # shared machine falls on all of them alike instead of on whoever runs first.
    times = {name: [] for name, *_ in contenders}
    finals = {}
    for _ in range(REPEATS):
        for name, once, _, _ in contenders:
            seconds, final = once()
            times[name].append(seconds)
            finals[name] = final
    rows = []
    for name, _, n, threads in contenders:
        rows.append(dict(contender=name, iterations_timed=n, final_accuracy=finals[name], threads=threads,
                         **dict(zip(("median_s", "min_s", "max_s"), spread(times[name])))))
        print(f"  headline {name}: {rows[-1]['median_s']:.2f} s for {iters} iterations (timed on {n})", flush=True)
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

    def trainer_once(factory):
        def once():
            trainer = factory()
            errors = np.zeros(0, dtype=np.int64)
            done = 0
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
    factories = [("numpy batched", lambda: numpy_batched.Trainer(p0, "tanh", "softmax", lr, **kwargs))]
    if torch_rnn:
        factories.append(("PyTorch nn.RNN", lambda: torch_rnn.NNRNN(p0, "tanh", "softmax", lr, **kwargs)))
        factories.append(("PyTorch cell loop", lambda: torch_rnn.CellLoop(p0, "tanh", "softmax", lr, **kwargs)))
    if jax_rnn:
        factories.append(("JAX jit loop (lax.fori_loop)", lambda: jax_rnn.ForiLoop(p0, "tanh", "softmax", lr, **kwargs)))
    contenders = [("fastrnn", fastrnn_once)]
    fastrnn.train(task="digits", iters=10, seed=seed)  # warm-up
    for name, factory in factories:
        factory().train(X[: chunk * B], Y[: chunk * B], chunk)  # warm-up (JAX compiles for the chunk's shape)
        contenders.append((name, trainer_once(factory)))
    # Round-robin repeats, as in the headline workload.
    results = {name: [] for name, _ in contenders}
    for _ in range(repeats):
        for name, once in contenders:
            results[name].append(once())
    rows = []
    for name, _ in contenders:
        seconds = [r[0] for r in results[name]]
        rows.append(dict(contender=name, reached_at=results[name][-1][2], per_iteration_ms=float(np.median([r[1] for r in results[name]])) * 1e3,
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
                calls = {"fastrnn": lambda: model.loss_and_grads(X, Y),
                         "numpy batched": lambda: numpy_batched.loss_and_grads(p, X, Y, None, "tanh", "softmax")}
                if torch_rnn:
                    step, _ = torch_rnn.loss_and_grads_fn(p, "tanh", "softmax")
                    Xt, Yt = torch_rnn.torch.from_numpy(X), torch_rnn.torch.from_numpy(Y)
                    calls["PyTorch nn.RNN"] = lambda step=step, Xt=Xt, Yt=Yt: step(Xt, Yt)
                if jax_rnn:
                    call = jax_rnn.loss_and_grads_fn(p, "tanh", "softmax")
                    Xj, Yj = jax_rnn.jnp.asarray(X), jax_rnn.jnp.asarray(Y)
                    calls["JAX jit(grad)"] = lambda call=call, Xj=Xj, Yj=Yj: call(Xj, Yj)
                results = {}
                for name, fn in calls.items():
                    med, lo, hi = time_call(fn, repeats=REPEATS, min_seconds=0.02 if quick else 0.05)
                    results[name] = med
                    rows.append(dict(contender=name, B=B, T=T, H=H, median_us=med * 1e6, min_us=lo * 1e6, max_us=hi * 1e6,
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


def startup():
    """`fastrnn train --task binary --iters 20000` in fresh processes: empty numba cache, then cached."""
    cmd = [sys.executable, "-m", "fastrnn", "train", "--task", "binary", "--iters", "20000", "--no-csv", "-q"]
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for start, repeats in (("cold (empty numba cache)", 1), ("warm (cached)", REPEATS)):
            times, compile_s = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                times.append(time.perf_counter() - t0)
                compile_s.append(float(out.split("start-up and compile ")[1].split(" s")[0]))
            rows.append(dict(start=start, repeats=repeats, **dict(zip(("median_s", "min_s", "max_s"), spread(times))),
                             compile_or_load_s=float(np.median(compile_s))))
    return rows


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


def read_csv(name):
    """Rows of results/<name>.csv with numbers as numbers (empty cells as NaN)."""
    rows = []
    with open(RESULTS / f"{name}.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out = {}
            for k, v in row.items():
                try:
                    out[k] = int(v)
                except ValueError:
                    try:
                        out[k] = float(v) if v != "" else float("nan")
                    except ValueError:
                        out[k] = v
            rows.append(out)
    return rows


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def markdown(results, quick, command):
    info = machine()
    lines = [f"Measured {datetime.date.today().isoformat()} with `{command}` on {info['cpu']}, {info['cores']} cores; "
             f"Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}"
             + (f", PyTorch {torch_rnn.torch.__version__} ({torch_rnn.threads()} threads)" if torch_rnn else ", no PyTorch")
             + (f", JAX {jax_rnn.jax.__version__}" if jax_rnn else ", no JAX") + ". Medians of 5 repeats, min-max in brackets."
             + (" Quick run: the slow contenders were timed on fewer iterations and scaled to 20000." if quick else ""), ""]
    lines += ["**Binary addition, 20000 SGD iterations at batch 1** (the headline):", "",
              "| contender | seconds for 20000 iterations | x fastrnn | iterations timed | threads |", "|---|---|---|---|---|"]
    for r in results["headline"]:
        lines.append(f"| {r['contender']} | {fmt(r['median_s'])} [{fmt(r['min_s'])}-{fmt(r['max_s'])}] | {fmt(r['x_fastrnn'])} | {r['iterations_timed']} | {r['threads']} |")
    lines += ["", "**Digit addition at the task's defaults (batch 32, Adam, clip 1.0), seconds until accuracy first reaches 0.99**:", "",
              "| contender | seconds | x fastrnn | reached at iteration | ms per iteration | x fastrnn per iteration |", "|---|---|---|---|---|---|"]
    for r in results["digits"]:
        lines.append(f"| {r['contender']} | {fmt(r['median_s'])} [{fmt(r['min_s'])}-{fmt(r['max_s'])}] | {fmt(r['x_fastrnn'])} | "
                     f"{fmt(r['reached_at'])} | {fmt(r['per_iteration_ms'])} | {fmt(r['x_fastrnn_per_iteration'])} |")
    lines += ["", "**One forward + backward** (I=10, O=10, tanh, softmax; sequences per second and x fastrnn):", "",
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
    lines += ["", "![throughput against hidden size](benchmarks/results/throughput.png)", "",
              "**Start-up** of `fastrnn train --task binary --iters 20000` in a fresh process:", "",
              "| start | wall seconds | of which compile or cache load |", "|---|---|---|"]
    for r in results["startup"]:
        lines.append(f"| {r['start']} | {fmt(r['median_s'])} [{fmt(r['min_s'])}-{fmt(r['max_s'])}] | {fmt(r['compile_or_load_s'])} |")
    f = results["floor"][0]
    lines += ["", f"**Floor**: one headline iteration does {f['flops_per_iteration']} flops in {f['seconds_per_iteration'] * 1e6:.1f} us, "
              f"{f['achieved_gflops']:.2f} GFLOP/s; chained 16x16 matrix-vector products (the recurrence's shape) peak at "
              f"{f['peak_gflops_same_shapes']:.2f} GFLOP/s on this machine, so the headline run reaches "
              f"{100 * f['achieved_over_peak']:.0f}% of that peak."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations for the slow contenders and a small grid (< 5 minutes)")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the table and plot from results/*.csv")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    results = {}
    if args.from_csv:
        for name in ("headline", "digits", "throughput", "startup", "floor"):
            results[name] = read_csv(name)
        args.quick = max(r["iterations_timed"] for r in results["headline"]) < 20000 or len(results["throughput"]) < 30
    else:
        for name, fn in (("headline", lambda: headline(args.quick)), ("digits", lambda: digits(args.quick)),
                         ("throughput", lambda: throughput(args.quick)), ("startup", startup)):
            print(f"{name} ...", flush=True)
            results[name] = fn()
            print(f"  wrote {write_csv(RESULTS / f'{name}.csv', results[name]).relative_to(ROOT)}", flush=True)
        results["floor"] = floor(results["headline"])
        write_csv(RESULTS / "floor.csv", results["floor"])
    plot_throughput(results["throughput"], RESULTS / "throughput.png")
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    block = markdown(results, args.quick, command)
    (RESULTS / "summary.md").write_text(block)
    print("\n" + block)
    if not args.no_readme and update_readme(block, "bench"):
        print("README.md updated between its bench marks")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
