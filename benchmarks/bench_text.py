"""The text task's speed: fastrnn against min-char-rnn's plain numpy loop and a batched numpy form.

Usage:
    python benchmarks/bench_text.py [--iters 3000] [--repeats 9] [--no-readme] [--from-csv]

On the text that ships with fastrnn (fastrnn/data/bptt.txt), H = 100, L = 25,
Adagrad, entries clipped to [-5, 5]. Every contender is timed by the wall clock around
its training call (fastrnn: the whole ``fastrnn.train`` call, its kernels compiled or
loaded before), after a warm-up; the contenders take turns, ``--repeats`` rounds, and
the table gives the median speed of the rounds and the median of the rounds' ratios
(this machine's speed drifts by tens of percent over seconds, and a ratio taken within
one round is steadier than one of two medians).

* iterations per second at batch 1: fastrnn's training path (``fastrnn.train(task="text")``,
  the fused min-char-rnn kernel of fastrnn/_charrnn.py, on two threads, and on one as with
  ``NUMBA_NUM_THREADS=1``) against a numpy loop written the min-char-rnn way
  (tests/reference_text.py: one window at a time, a Python loop over the 25 steps, dicts of
  arrays). Before anything is timed both run 100 iterations from the same weights at lr 0.01
  and must agree to rtol 1e-9 in every loss and the weights (as tests/test_text.py checks
  over 400).
* characters per second at batch 32 (32 streams of the text, char-rnn's layout; fastrnn's
  general kernel with BLAS products) against two numpy forms: the batched one a numpy
  expert writes (benchmarks/numpy_text_batched.py: all streams at once, one (32, H) product
  a step; at 1 and at 2 BLAS threads, threadpoolctl), and min-char-rnn's loop over the 32
  streams one at a time. The batched form is first checked against fastrnn the same way
  (40 iterations at batch 32, every loss and the weights to rtol 1e-9).
* the first-run compile time of the text path: a fresh process with an empty
  ``NUMBA_CACHE_DIR`` runs ``fastrnn train --task text --iters 1``.

Writes benchmarks/results/text.csv and the table between the `text-bench` marks of
README.md and of any docs/*.md page that has them. Run it with
``OPENBLAS_NUM_THREADS=1`` on a shared machine: BLAS threads competing with other jobs
slow every product of fastrnn's batch-32 run many times over.
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
import numpy_text_batched  # noqa: E402
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


def check_batched(t, p0, start, iters=40, batch=32):
    """The batched numpy form against fastrnn at batch 32 from the same weights at lr 0.01: every loss
    and the weights to rtol 1e-9."""
    mine = fastrnn.train(task="text", iters=iters, batch=batch, lr=0.01, init_from=start, log_every=1)
    theirs = numpy_text_batched.Trainer(t.ids, p0, L, batch, 0.01)
    np.testing.assert_allclose(theirs.train(iters), mine.history["loss"].to_numpy(), rtol=1e-9, atol=0)
    got = theirs.params()
    for a, b in (("U0", "Wxh"), ("W0", "Whh"), ("b0", "bh"), ("V", "Why"), ("c", "by")):
        np.testing.assert_allclose(mine.model.params[a], got[b], rtol=1e-9, atol=1e-14)


def time_fastrnn(start, iters, batch, threads=None):
    """Wall seconds of a ``fastrnn.train`` call of ``iters`` iterations (its kernels compiled or loaded
    before); ``threads=1`` keeps the batch-1 kernel on one thread (what ``NUMBA_NUM_THREADS=1`` does)."""
    with mock.patch.object(fastrnn.engine, "chars_threads", return_value=threads) if threads else nullcontext():
        t0 = time.perf_counter()
        fastrnn.train(task="text", iters=iters, batch=batch, init_from=start, log_every=min(iters, 1000))
        return time.perf_counter() - t0


def time_numpy(t, p0, iters, batch):
    """Wall seconds of min-char-rnn's loop (one stream at a time) for ``iters`` iterations."""
    t0 = time.perf_counter()
    ref.train(list(t.ids), p0, L, iters, 0.1, batch=batch, clip=5.0)
    return time.perf_counter() - t0


def time_numpy_batched(t, p0, iters, batch, blas):
    """Wall seconds of the batched numpy form for ``iters`` iterations, numpy's BLAS held to ``blas`` threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(blas, user_api="blas"):  # entered before the clock starts
        t0 = time.perf_counter()
        numpy_text_batched.Trainer(t.ids, p0, L, batch, 0.1).train(iters)
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
        check_batched(t, p0, start)
        for threads in (None, 1):
            time_fastrnn(start, 20, 1, threads)  # compile (or load) both drivers before timing
        time_fastrnn(start, 2, 32)
        numpy_iters = max(50, iters // 10)
        speeds = rounds({"two": (iters, lambda: time_fastrnn(start, iters, 1)),
                         "one": (iters, lambda: time_fastrnn(start, iters, 1, threads=1)),
                         "numpy": (numpy_iters, lambda: time_numpy(t, p0, numpy_iters, 1))}, repeats)
        threads = fastrnn.engine.chars_threads()
        loop = "min-char-rnn's numpy loop"
        rows.append(dict(measure=f"iterations per second, batch 1, {threads} threads", contender=loop,
                         fastrnn=np.median(speeds["two"]), contender_speed=np.median(speeds["numpy"]), speedup=ratio(speeds, "two", "numpy"),
                         fastrnn_iters=iters, contender_iters=numpy_iters))
        rows.append(dict(measure="iterations per second, batch 1, 1 thread", contender=loop,
                         fastrnn=np.median(speeds["one"]), contender_speed=np.median(speeds["numpy"]), speedup=ratio(speeds, "one", "numpy"),
                         fastrnn_iters=iters, contender_iters=numpy_iters))
        B = 32
        b_iters = max(20, iters // 10)
        nbb = max(10, b_iters // 4)  # the batched numpy form
        nb = max(5, b_iters // 20)  # the loop over the streams
        time_numpy_batched(t, p0, 2, B, 1)  # warm-up
        contenders = {"fast": (b_iters * B * L, lambda: time_fastrnn(start, b_iters, B)),
                      "loop": (nb * B * L, lambda: time_numpy(t, p0, nb, B))}
        for blas in (1, 2):
            contenders[f"batched{blas}"] = (nbb * B * L, lambda blas=blas: time_numpy_batched(t, p0, nbb, B, blas))
        speeds = rounds(contenders, repeats)
        for key, label, n in (("batched1", "numpy batched, one (32, H) product a step, 1 BLAS thread", nbb),
                              ("batched2", "numpy batched, one (32, H) product a step, 2 BLAS threads", nbb),
                              ("loop", "min-char-rnn's numpy loop over the 32 streams", nb)):
            rows.append(dict(measure="characters per second, batch 32", contender=label, fastrnn=np.median(speeds["fast"]),
                             contender_speed=np.median(speeds[key]), speedup=ratio(speeds, "fast", key), fastrnn_iters=b_iters,
                             contender_iters=n))
    kernel, whole = compile_time()
    rows.append(dict(measure="first run, empty numba cache: compile s (whole run s in the contender_speed column)", contender="",
                     fastrnn=kernel, contender_speed=whole, speedup="", fastrnn_iters=1, contender_iters=0))
    for row in rows:
        row["repeats"] = repeats
    return rows


def markdown(rows, command):
    """The table, from the rows as the results file holds them (they carry the machine and threads)."""
    m = {**machine(), **{k: v for k, v in rows[0].items() if k in ("cpu", "cores", "numpy", "numba") and v}}
    threads = rows[0].get("thread_env") or f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    blas = rows[0].get("blas") or "not recorded"
    day = str(rows[0].get("date") or datetime.date.today())[:10]
    first = next(r for r in rows if r["measure"].startswith("first run"))
    timed = [r for r in rows if not r["measure"].startswith("first run")]
    other = lambda r: r.get("contender_speed", r.get("numpy_loop"))  # noqa: E731 (results files before the batched contender)
    lines = [
        f"Measured {day} with `{command}` on {m['cpu']}, {m['cores']} cores; numpy {m['numpy']}, "
        f"numba {m['numba']}; thread variables: {threads}; BLAS: {blas}. Every contender is timed by the wall clock "
        f"around its training call, after a warm-up; the contenders take turns, {rows[0].get('repeats') or '?'} rounds; "
        f"speeds are medians of the rounds and speed-ups medians of the rounds' ratios. Every contender was first checked "
        f"to give fastrnn's losses and weights.",
        "",
        "| min-char-rnn on fastrnn/data/bptt.txt (H 100, L 25, Adagrad) | contender | fastrnn | contender's | fastrnn's speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for r in timed:
        name = r.get("contender") or "min-char-rnn's numpy loop"
        lines.append(f"| {r['measure']} | {name} | {float(r['fastrnn']):,.0f} | "
                     f"{float(other(r)):,.0f} | {_ratio(float(r['speedup']))} |")
    lines += [
        "",
        f"First run of the text path in a fresh process with an empty numba cache: {float(first['fastrnn']):.1f} s "
        f"compiling the kernels, {float(other(first)):.1f} s for the whole run (import included); later runs load "
        f"the cache.",
        "",
    ]
    return "\n".join(lines)


def _ratio(v):
    """A speed-up as the table shows it: one decimal from 1 up, two significant digits below (0.034x)."""
    return f"{v:.1f}x" if v >= 1 else f"{v:.2g}x"


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
    block = markdown(rows, rows[0].get("command") or f"python benchmarks/bench_text.py --iters {iters}")
    print(block)
    if not args.no_readme:
        for path in update_readme(block, "text-bench"):
            print(f"{path} updated between its text-bench marks")


if __name__ == "__main__":
    main()
