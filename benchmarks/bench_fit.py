"""fastrnn.fit against the Python loop of loss_and_grads + Optimizer.step on the same batches.

Usage:
    python benchmarks/bench_fit.py              # both shapes
    python benchmarks/bench_fit.py --quick      # fewer iterations per timed call

Shapes (one layer, tanh, float64, full BPTT, plain SGD lr 0.1, no clipping):
- binary: B=1, T=8, I=2, H=16, O=1 (sigmoid head), the binary-addition task's shape;
- digits: B=32, T=10, I=20, H=100, O=10 (softmax head), the digit task's shape.

For each shape the data are N = B * n random sequences, so that one epoch with
``shuffle=False`` is n iterations of B sequences in order. Before any time counts,
``fit`` and the Python loop train the same model from the same weights over the same
batches and their parameters are compared (rtol 1e-10). Then both are timed round-robin
after a warm-up round: the median over 5 rounds of one whole n-iteration run (for fit: the
call, its checks and rows included; ``log_every`` 100), reported per iteration. The
first fit call in a fresh process with an empty numba cache (compile) is measured
separately, in a subprocess.

Writes benchmarks/results/fit.csv (and fit_first_call.csv), every row with the machine,
versions, threads and date, and puts a table into the README between its
`<!-- fit:start -->` and `<!-- fit:end -->` marks (unless --no-readme).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import RESULTS, ROOT, describe, environment, read_csv, update_readme, write_csv

import fastrnn

# (name, B, T, I, H, O, head, iterations per timed run, quick)
SHAPES = [
    ("binary", 1, 8, 2, 16, 1, "sigmoid", 2000, 500),
    ("digits", 32, 10, 20, 100, 10, "softmax", 200, 50),
]
LR = 0.1
REPEATS = 5


def make_data(B, T, I, O, head, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n * B, T, I))
    if head == "softmax":
        Y = np.eye(O)[rng.integers(0, O, (n * B, T))]
    else:
        Y = rng.integers(0, 2, (n * B, T, O)).astype(float)
    return X, Y


def run_fit(model, X, Y, B):
    return fastrnn.fit(model, X, Y, epochs=1, batch=B, optimizer="sgd", lr=LR, clip=None, shuffle=False)


def run_loop(model, X, Y, B):
    """What a user writes without fit: one loss_and_grads and one Optimizer.step per batch."""
    opt = fastrnn.Optimizer("sgd", lr=LR)
    for lo in range(0, X.shape[0], B):
        _, grads = model.loss_and_grads(X[lo : lo + B], Y[lo : lo + B])
        opt.step(model, grads)


def bench_shape(name, B, T, I, H, O, head, n):
    X, Y = make_data(B, T, I, O, head, n)
    model = fastrnn.RNN(I, H, O, activation="tanh", head=head, seed=0)
    theta0 = model.theta.copy()
    run_fit(model, X, Y, B)
    after_fit = model.theta.copy()
    model.theta[:] = theta0
    run_loop(model, X, Y, B)
    np.testing.assert_allclose(after_fit, model.theta, rtol=1e-10, atol=0, err_msg=f"{name}: fit and the loop differ")

    # Round-robin: each round times every contender once, so a slow spell of the shared
    # machine falls on both alike (as benchmarks/run.py's headline does).
    fns = {"python_loop": run_loop, "fit": run_fit}
    per = {k: [] for k in fns}
    for _ in range(REPEATS + 1):  # the first round is the warm-up
        for k, fn in fns.items():
            model.theta[:] = theta0
            t0 = time.perf_counter()
            fn(model, X, Y, B)
            per[k].append(time.perf_counter() - t0)
    times = {k: (float(np.median(v[1:])), min(v[1:]), max(v[1:])) for k, v in per.items()}
    rows = []
    for contender, (med, lo, hi) in times.items():
        rows.append(dict(shape=name, B=B, T=T, I=I, H=H, O=O, contender=contender, iterations=n,
                         median_us=med / n * 1e6, min_us=lo / n * 1e6, max_us=hi / n * 1e6,
                         speedup_of_fit=times[contender][0] / times["fit"][0]))
    return rows


FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
import fastrnn
t1 = time.perf_counter()
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((4, 8, 2)), rng.integers(0, 2, (4, 8, 1)).astype(float)
model = fastrnn.RNN(2, 16, 1, head="sigmoid")
t2 = time.perf_counter()
r = fastrnn.fit(model, X, Y, epochs=1, batch=1, optimizer="sgd", lr=0.1, shuffle=False)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2, r.compile_seconds)
"""


def first_call():
    """Import, first fit call and fit's own compile_seconds in fresh processes: empty numba cache, then warm."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for state in ("cold (empty cache: compile)", "warm (cache written by the cold run)"):
            res = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True)
            imp, first, compile_s = (float(v) for v in res.stdout.split())
            out.append(dict(start=state, import_s=imp, first_fit_s=first, compile_s=compile_s))
    return out


def markdown(rows, first):
    lines = [describe(rows[0]) + " Time per training iteration (float64, tanh, full BPTT, SGD), median of 5 timed "
             "runs after a warm-up round; both contenders were first checked to give the same parameters (rtol 1e-10).", "",
             "| shape | B | T | I | H | O | iterations per run | Python loop | fit | loop / fit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by = {}
    for r in rows:
        by.setdefault(r["shape"], {})[r["contender"]] = r
    for shape, c in by.items():
        f, p = c["fit"], c["python_loop"]
        lines.append(f"| {shape} | {f['B']} | {f['T']} | {f['I']} | {f['H']} | {f['O']} | {f['iterations']} | "
                     f"{_us(p['median_us'])} | {_us(f['median_us'])} | {p['speedup_of_fit']:.1f}x |")
    if first:
        lines += ["", "First `fit` call in a fresh process (binary shape, compile or cache load included): "
                  + "; ".join(f"{r['start']}: import {r['import_s']:.2f} s, first call {r['first_fit_s']:.2f} s "
                              f"(of which compile or load {r['compile_s']:.2f} s)" for r in first) + "."]
    return "\n".join(lines) + "\n"


def _us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.1f} us"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations per timed run")
    parser.add_argument("--no-first-call", action="store_true", help="skip the fresh-process measurements")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the table from results/fit*.csv")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    path, first_path = RESULTS / "fit.csv", RESULTS / "fit_first_call.csv"
    if not args.from_csv:
        rows = []
        for name, B, T, I, H, O, head, n, quick in SHAPES:
            rows.extend(bench_shape(name, B, T, I, H, O, head, quick if args.quick else n))
        env = environment()
        write_csv(path, rows, env)
        first = first_call() if not args.no_first_call else []
        if first:
            write_csv(first_path, first, env)
        elif first_path.exists():
            first_path.unlink()  # an old file would be rendered beside this run's numbers
    rows = read_csv(path)
    first = read_csv(first_path) if first_path.exists() else []
    for r in rows:
        print(f"{r['shape']:<8} {r['contender']:<12} {r['median_us']:>10.1f} us  ({r['min_us']:.1f}-{r['max_us']:.1f})  "
              f"{r['speedup_of_fit']:.1f}x fit")
    print(f"(in {path.relative_to(ROOT)})")
    for r in first:
        print(f"{r['start']:<40} import {r['import_s']:.2f} s, first fit {r['first_fit_s']:.2f} s, compile {r['compile_s']:.2f} s")
    block = markdown(rows, first)
    if not args.no_readme and update_readme(block, "fit"):
        print("README.md updated between its fit marks")


if __name__ == "__main__":
    main()
