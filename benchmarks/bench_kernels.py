"""fastrnn's loss_and_grads against the plain-numpy twin and the batched numpy form.

Usage:
    python benchmarks/bench_kernels.py            # the full grid
    python benchmarks/bench_kernels.py --quick    # the two task shapes only
    python benchmarks/bench_kernels.py --from-csv # measure nothing: rebuild the table from the results files

For each shape (B, T, I, H, O) every contender computes the loss and all gradients
(one layer, tanh, full BPTT) from the same parameters and data. Each contender is
first validated against tests/reference.py (rtol 1e-10), then timed after a warm-up:
the median per call over 7 repeats, with the min-max spread. Ratios are taken
against fastrnn in the same process. Achieved GFLOP/s counts the multiply-adds of
the products only: 2 T B (2 H I + 3 H^2 + 3 O H).

The first call in a fresh process is measured separately, in a subprocess: once with
an empty numba cache (compile) and once with the cache that run wrote (load).

Writes benchmarks/results/bench_kernels.csv (and bench_kernels_first_call.csv), each
row with the machine, versions, threads and date, and .md, prints the table, and puts it
into the README between its `<!-- kernels:start -->` and `<!-- kernels:end -->` marks
(unless --no-readme).
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile

import numpy as np

from _common import RESULTS, ROOT, describe, environment, read_csv, time_call, update_readme, write_csv

import fastrnn
import numpy_batched
import reference

# (name, B, T, I, H, O, head)
GRID = [
    ("binary", 1, 8, 2, 16, 1, "sigmoid"),
    ("digits", 32, 10, 20, 100, 10, "softmax"),
    ("digits-b1", 1, 10, 20, 100, 10, "softmax"),
    ("long", 4, 100, 10, 64, 10, "softmax"),
    ("wide", 64, 20, 32, 256, 32, "softmax"),
]
QUICK = {"binary", "digits"}


def flops(B, T, I, H, O):
    return 2 * T * B * (2 * H * I + 3 * H * H + 3 * O * H)


def make_case(B, T, I, H, O, head, seed=0):
    rng = np.random.default_rng(seed)
    p = reference.init_params(I, H, O, 1, rng, scale=1.0 / np.sqrt(H))  # the well-conditioned default scale
    X = rng.standard_normal((B, T, I))
    if head == "softmax":
        Y = np.eye(O)[rng.integers(0, O, (B, T))]
    else:
        Y = rng.integers(0, 2, (B, T, O)).astype(float)
    model = fastrnn.RNN(I, H, O, activation="tanh", head=head)
    for k, v in p.items():
        model.params[k][...] = v
    return p, X, Y, model


def validate(name, got, want):
    loss, grads = got
    ref_loss, ref_grads = want
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss), f"{name}: loss {loss} != {ref_loss}"
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-12, err_msg=f"{name} {k}")


#: numpy's BLAS threads the numpy contenders are timed at (threadpoolctl): one, and OpenBLAS's default
#: of every core on a 2-core machine; contenders are named ``numpy_batched_1t``, ``numpy_batched_2t``, ...
BLAS_THREADS = (1, 2)


def blas_threads(n):
    """A context with numpy's BLAS held to ``n`` threads (None: as it is)."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n, user_api="blas")


def bench_shape(name, B, T, I, H, O, head):
    p, X, Y, model = make_case(B, T, I, H, O, head)
    want = reference.loss_and_grads(p, X, Y, None, "tanh", head)
    contenders = []
    for b in BLAS_THREADS:
        contenders.append((f"numpy_twin_{b}t", lambda: reference.loss_and_grads(p, X, Y, None, "tanh", head), b))
        contenders.append((f"numpy_batched_{b}t", lambda: numpy_batched.loss_and_grads(p, X, Y, None, "tanh", head), b))
    contenders += [("fastrnn_serial", lambda: model.loss_and_grads(X, Y, parallel=False), None),
                   ("fastrnn", lambda: model.loss_and_grads(X, Y), None)]
    rows = []
    times = {}
    for contender, fn, blas in contenders:
        validate(contender, fn(), want)
        repeats = 3 if contender.startswith("numpy_twin") and B * T > 500 else 7
        with blas_threads(blas):  # entered before time_call's clock starts
            med, lo, hi = time_call(fn, repeats=repeats)
        times[contender] = med
        rows.append(
            dict(shape=name, B=B, T=T, I=I, H=H, O=O, contender=contender, blas_threads=blas or "", median_us=med * 1e6,
                 min_us=lo * 1e6, max_us=hi * 1e6, gflops=flops(B, T, I, H, O) / med / 1e9)
        )
    for row in rows:
        row["fastrnn_speedup"] = times[row["contender"]] / times["fastrnn"]
    return rows


FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np, fastrnn
t1 = time.perf_counter()
m = fastrnn.RNN(2, 16, 1, head="sigmoid")
X = np.zeros((1, 8, 2)); Y = np.zeros((1, 8, 1))
m.loss_and_grads(X, Y)
t2 = time.perf_counter()
m.loss_and_grads(X, Y)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def first_call():
    """Import and first-call seconds in fresh processes: empty cache, then cached."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for state in ("cold (empty cache: compile)", "warm (cache written by the cold run)"):
            res = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True)
            imp, first, second = (float(v) for v in res.stdout.split())
            out.append(dict(start=state, import_s=imp, first_call_s=first, second_call_us=second * 1e6))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the two task shapes")
    parser.add_argument("--no-first-call", action="store_true", help="skip the fresh-process measurements")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the table from results/bench_kernels*.csv")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    path, first_path = RESULTS / "bench_kernels.csv", RESULTS / "bench_kernels_first_call.csv"
    if not args.from_csv:
        rows = []
        for case in GRID:
            if args.quick and case[0] not in QUICK:
                continue
            rows.extend(bench_shape(*case))
        env = environment()
        write_csv(path, rows, env)
        first = first_call() if not args.no_first_call else []
        if first:
            write_csv(first_path, first, env)
        elif first_path.exists():
            first_path.unlink()  # an old file would be rendered beside this run's numbers
    rows = read_csv(path)
    first = read_csv(first_path) if first_path.exists() else []
    print(f"{'shape':<10} {'B':>3} {'T':>4} {'I':>3} {'H':>4} {'O':>3}  {'contender':<15} {'median us':>11} {'min-max us':>19} {'GFLOP/s':>8} {'x fastrnn':>10}")
    for r in rows:
        spread = f"{r['min_us']:.1f}-{r['max_us']:.1f}"
        print(f"{r['shape']:<10} {r['B']:>3} {r['T']:>4} {r['I']:>3} {r['H']:>4} {r['O']:>3}  {r['contender']:<15} {r['median_us']:>11.1f} {spread:>19} {r['gflops']:>8.2f} {r['fastrnn_speedup']:>10.1f}")
    print(f"(x fastrnn: how many times longer than fastrnn a call takes; in {path.relative_to(ROOT)})")
    if first:
        print("\n# first call in a fresh process (binary shape)")
        for r in first:
            print(f"{r['start']:<40} import {r['import_s']:.2f} s, first call {r['first_call_s']:.2f} s, second call {r['second_call_us']:.1f} us")
    block = markdown(rows, first)
    (RESULTS / "bench_kernels.md").write_text(block)
    if not args.no_readme and update_readme(block, "kernels"):
        print("README.md updated between its kernels marks")


def markdown(rows, first):
    by = {}
    for r in rows:
        by.setdefault(r["shape"], {})[r["contender"]] = r
    two = any(str(r["contender"]).endswith("_2t") for r in rows)
    lines = [describe(rows[0]) + " One `loss_and_grads` call (float64, tanh, full BPTT), medians of 7 repeats after a warm-up; "
             + ("the numpy contenders at 1 and 2 BLAS threads (threadpoolctl), fastrnn as it runs by default." if two else
                "every contender at the BLAS threads named above (this file has one thread count for numpy, shown in both columns)."),
             "",
             "| shape | B | T | I | H | O | numpy twin, 1 / 2 BLAS threads | numpy batched, 1 / 2 BLAS threads | fastrnn | "
             "fastrnn GFLOP/s | batched / fastrnn, 1 / 2 BLAS threads |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for shape, c in by.items():
        f = c["fastrnn"]
        t1, t2, b1, b2 = (c.get(k) for k in ("numpy_twin_1t", "numpy_twin_2t", "numpy_batched_1t", "numpy_batched_2t"))
        if b1 is None:  # a results file from before the numpy contenders had two thread counts
            t1 = t2 = c["numpy_twin"]
            b1 = b2 = c["numpy_batched"]
        lines.append(f"| {shape} | {f['B']} | {f['T']} | {f['I']} | {f['H']} | {f['O']} | {_us(t1['median_us'])} / {_us(t2['median_us'])} | "
                     f"{_us(b1['median_us'])} / {_us(b2['median_us'])} | {_us(f['median_us'])} | {f['gflops']:.2f} | "
                     f"{b1['median_us'] / f['median_us']:.1f}x / {b2['median_us'] / f['median_us']:.1f}x |")
    if first:
        lines += ["", "First `loss_and_grads` call in a fresh process (binary shape): "
                  + "; ".join(f"{r['start']}: import {r['import_s']:.2f} s, first call {r['first_call_s']:.2f} s" for r in first) + "."]
    return "\n".join(lines) + "\n"


def _us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.1f} us"


if __name__ == "__main__":
    main()
