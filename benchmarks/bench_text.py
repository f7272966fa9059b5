"""The text task's speed: fastrnn against min-char-rnn's plain numpy loop (issue 11).

Usage:
    python benchmarks/bench_text.py [--iters 3000] [--repeats 9] [--no-readme] [--from-csv]

On the text that ships with fastrnn (fastrnn/data/bptt.txt), H = 100, L = 25,
Adagrad, entries clipped to [-5, 5]:

* iterations per second at batch 1: fastrnn's training path (``fastrnn.train(task="text")``,
  the fused min-char-rnn kernel of fastrnn/_charrnn.py, on two threads, and on one as with
  ``NUMBA_NUM_THREADS=1``) against a numpy loop written the min-char-rnn way
  (tests/reference_text.py: one window at a time, a Python loop over the 25 steps, dicts of
  arrays). Before anything is timed both run 100 iterations from the same weights at lr 0.01
  and must agree to rtol 1e-9 in every loss and the weights (as tests/test_text.py checks
  over 400). The contenders take turns, ``--repeats`` rounds of each, and the speed-up is
  the median of the rounds' ratios: this machine's speed drifts by tens of percent over
  seconds, and a ratio taken within one round is steadier than one of two medians.
* characters per second at batch 32 (32 streams of the text, char-rnn's layout; the
  general kernel with BLAS products), in rounds the same way.
* the first-run compile time of the text path: a fresh process with an empty
  ``NUMBA_CACHE_DIR`` runs ``fastrnn train --task text --iters 1``.

Writes benchmarks/results/text.csv and the README table between its text-bench marks.
Run it with ``OPENBLAS_NUM_THREADS=1`` on a shared machine: BLAS threads competing
with other jobs slow every product of the batch-32 run many times over.
"""

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from unittest import mock

import numpy as np
from _common import RESULTS, ROOT, machine, update_readme, write_csv

sys.path.insert(0, str(ROOT / "tests"))  # min-char-rnn's numpy loop, tests/reference_text.py

import fastrnn  # noqa: E402
import reference_text as ref  # noqa: E402
from fastrnn import text  # noqa: E402

H, L = 100, 25


def reference_start(t, seed=11):
    return ref.init_weights(t.n_vocab, H, np.random.default_rng(seed))


def save_start(p0, folder):
    V = p0["Wxh"].shape[1]
    model = fastrnn.RNN(V, H, V, activation="tanh", head="softmax")
    for mine, theirs in (("U0", "Wxh"), ("W0", "Whh"), ("b0", "bh"), ("V", "Why"), ("c", "by")):
        model.params[mine][...] = p0[theirs]
    return model.save(os.path.join(folder, "start.npz"))


def check_equal(t, p0, start, iters=100, batch=1):
    """Both sides from the same weights at lr 0.01: every loss and the weights to rtol 1e-9."""
    ref_losses, ref_p = ref.train(list(t.ids), p0, L, iters, 0.01, batch=batch, clip=5.0)
    mine = fastrnn.train(task="text", iters=iters, batch=batch, lr=0.01, init_from=start, log_every=1)
    np.testing.assert_allclose(mine.history["loss"].to_numpy(), ref_losses, rtol=1e-9, atol=0)
    for a, b in (("U0", "Wxh"), ("W0", "Whh"), ("b0", "bh"), ("V", "Why"), ("c", "by")):
        np.testing.assert_allclose(mine.model.params[a], ref_p[b], rtol=1e-9, atol=1e-14)


def time_fastrnn(start, iters, batch, threads=None):
    """Training seconds (compile excluded) of ``iters`` iterations; ``threads=1`` keeps the
    batch-1 kernel on one thread (what ``NUMBA_NUM_THREADS=1`` does)."""
    with mock.patch.object(fastrnn.engine, "chars_threads", return_value=threads) if threads else nullcontext():
        return fastrnn.train(task="text", iters=iters, batch=batch, init_from=start, log_every=min(iters, 1000)).train_seconds


def time_numpy(t, p0, iters, batch):
    t0 = time.perf_counter()
    ref.train(list(t.ids), p0, L, iters, 0.1, batch=batch, clip=5.0)
    return time.perf_counter() - t0


def rounds(contenders, repeats):
    """Run the contenders (name -> (work units, function)) in turn, ``repeats`` rounds;
    return name -> list of units per second, one per round."""
    speeds = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (units, fn) in contenders.items():
            speeds[name].append(units / fn())
    return speeds


def ratio(speeds, a, b):
    return float(np.median(np.array(speeds[a]) / np.array(speeds[b])))


def compile_time():
    """(kernel compile seconds, whole first run seconds) in a fresh process with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        code = ("import time, json; t0 = time.perf_counter(); import fastrnn; "
                "r = fastrnn.train(task='text', iters=1, log_every=1); "
                "print(json.dumps([r.compile_seconds, time.perf_counter() - t0]))")
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def measure(iters, repeats):
    t = text.read_text(text.example_path())
    p0 = reference_start(t)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        start = save_start(p0, folder)
        check_equal(t, p0, start, batch=1)
        check_equal(t, p0, start, iters=20, batch=4)
        for threads in (None, 1):
            time_fastrnn(start, 20, 1, threads)  # compile (or load) both drivers before timing
        time_fastrnn(start, 2, 32)
        numpy_iters = max(50, iters // 10)
        speeds = rounds({"two": (iters, lambda: time_fastrnn(start, iters, 1)),
                         "one": (iters, lambda: time_fastrnn(start, iters, 1, threads=1)),
                         "numpy": (numpy_iters, lambda: time_numpy(t, p0, numpy_iters, 1))}, repeats)
        threads = fastrnn.engine.chars_threads()
        rows.append(dict(measure=f"iterations per second, batch 1, {threads} threads", fastrnn=np.median(speeds["two"]),
                         numpy_loop=np.median(speeds["numpy"]), speedup=ratio(speeds, "two", "numpy"),
                         fastrnn_iters=iters, numpy_loop_iters=numpy_iters))
        rows.append(dict(measure="iterations per second, batch 1, 1 thread", fastrnn=np.median(speeds["one"]),
                         numpy_loop=np.median(speeds["numpy"]), speedup=ratio(speeds, "one", "numpy"),
                         fastrnn_iters=iters, numpy_loop_iters=numpy_iters))
        b_iters = max(20, iters // 10)
        nb = max(5, b_iters // 20)
        speeds = rounds({"fast": (b_iters * 32 * L, lambda: time_fastrnn(start, b_iters, 32)),
                         "numpy": (nb * 32 * L, lambda: time_numpy(t, p0, nb, 32))}, repeats)
        rows.append(dict(measure="characters per second, batch 32", fastrnn=np.median(speeds["fast"]),
                         numpy_loop=np.median(speeds["numpy"]), speedup=ratio(speeds, "fast", "numpy"),
                         fastrnn_iters=b_iters, numpy_loop_iters=nb))
    kernel, whole = compile_time()
    rows.append(dict(measure="first run, empty numba cache: compile s (whole run s in numpy_loop column)", fastrnn=kernel,
                     numpy_loop=whole, speedup="", fastrnn_iters=1, numpy_loop_iters=0))
    for row in rows:
        row["repeats"] = repeats
    return rows


def markdown(rows, command):
    """The README block, from the rows as the results file holds them (they carry the machine and threads)."""
    m = {**machine(), **{k: v for k, v in rows[0].items() if k in ("cpu", "cores", "numpy", "numba") and v}}
    threads = rows[0].get("thread_env") or f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    day = str(rows[0].get("date") or datetime.date.today())[:10]
    first = next(r for r in rows if r["measure"].startswith("first run"))
    ch = next(r for r in rows if r["measure"].startswith("characters per second"))
    batch1 = [r for r in rows if r["measure"].startswith("iterations per second")]
    lines = [
        f"Measured {day} with `{command}` on {m['cpu']}, {m['cores']} cores; numpy {m['numpy']}, "
        f"numba {m['numba']}, threads: {threads}. The contenders take turns, {rows[0].get('repeats') or '?'} rounds; "
        f"speeds are medians of the rounds and speed-ups medians of the rounds' ratios. Both sides were first checked "
        f"to give the same losses and weights.",
        "",
        "| min-char-rnn on fastrnn/data/bptt.txt (H 100, L 25, Adagrad) | fastrnn | numpy loop | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for r in batch1 + [ch]:
        lines.append(f"| {r['measure']} | {float(r['fastrnn']):,.0f} | {float(r['numpy_loop']):,.0f} | "
                     f"{float(r['speedup']):.1f}x |")
    lines += [
        "",
        f"First run of the text path in a fresh process with an empty numba cache: {float(first['fastrnn']):.1f} s "
        f"compiling the kernels, {float(first['numpy_loop']):.1f} s for the whole run (import included); later runs load "
        f"the cache.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=3000, help="fastrnn's timed iterations at batch 1")
    parser.add_argument("--repeats", type=int, default=9, help="rounds of each contender, in turn")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the table from results/text.csv")
    args = parser.parse_args(argv)
    path = RESULTS / "text.csv"
    if not args.from_csv:
        write_csv(path, measure(args.iters, args.repeats))
    with open(path, newline="") as fh:  # render what the file holds, exactly as --from-csv would
        rows = list(csv.DictReader(fh))
    iters = rows[0].get("fastrnn_iters") or args.iters
    block = markdown(rows, f"python benchmarks/bench_text.py --iters {iters}")
    print(block)
    if not args.no_readme and update_readme(block, "text-bench"):
        print("README.md updated between its text-bench marks")


if __name__ == "__main__":
    main()
