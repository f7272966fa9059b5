"""Runs per second of a sweep: sequential, the process pool, and the vectorised kernel.

Usage:
    python benchmarks/bench_sweep.py [--runs 24] [--iters 20000] [--repeats 3]
    python benchmarks/bench_sweep.py --examples     # run the README's sweep/report examples instead of the timing
    python benchmarks/bench_sweep.py --from-csv     # measure nothing: rebuild the README blocks from the results files

Every configuration trains the same binary-addition runs (seeds 0..runs-1) into a
fresh temporary folder; compile time is paid once before timing. Before any time
counts, every seed is trained once more on its own with `fastrnn.train`, and each
configuration's runs must give the same metrics rows (iteration, loss, accuracy),
number for number: the configurations differ in wall time only. The configurations
take turns, --repeats rounds; the table gives medians of the wall times and of the
runs' own `train_seconds`, beside the median `train_seconds` of the same runs
trained alone. Two rows pin the process to one CPU (as `taskset -c 0` would): one
starts `os.cpu_count()` workers anyway, one lets the sweep choose
(`fastrnn.sweeps.default_workers`: the CPUs the process may use); workers taking
turns on one CPU show as `train_seconds` above the runs' alone. Writes
benchmarks/results/bench_sweep.csv (with the machine, versions, threads and date)
and puts the table between the `<!-- sweep:start -->` and `<!-- sweep:end -->`
marks of every page that has them (README.md, docs/*.md; unless --no-readme).

With --examples it runs the README's example commands instead (`fastrnn sweep` and
`fastrnn report`) in a temporary folder, keeps their output in
benchmarks/results/sweep_examples.csv and writes the transcript between the
README's `<!-- sweep-examples:start -->` and `<!-- sweep-examples:end -->` marks.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import numpy as np

from _common import RESULTS, describe, environment, read_csv, update_readme, write_csv

import fastrnn
from fastrnn.sweeps import default_workers

CSV = RESULTS / "bench_sweep.csv"
EXAMPLES_CSV = RESULTS / "sweep_examples.csv"
EXAMPLES = [
    "fastrnn sweep --task binary --seeds 0-99 --out runs/bin100",
    "fastrnn report runs/bin100",
    "fastrnn sweep --task binary --seeds 0-9 --set lr=0.05,0.1,0.3 --set hidden=8,16 --out runs/lrh",
    "fastrnn report runs/lrh --format markdown",
]


def alone(runs, iters, folder):
    """Each seed's metrics rows from a `fastrnn.train` run of its own, and the runs' `train_seconds`."""
    import pandas as pd

    out, seconds = {}, []
    for seed in range(runs):
        path = os.path.join(folder, f"alone-{seed}.csv")
        seconds.append(fastrnn.train(task="binary", iters=iters, seed=seed, csv=path).train_seconds)
        out[seed] = pd.read_csv(path)
    return out, seconds


def same_as_alone(result, want, label):
    import pandas as pd

    for _, run in result.summary.iterrows():
        got = pd.read_csv(result.out / f"{run['run']}.csv")
        for col in ("iteration", "loss", "accuracy"):
            np.testing.assert_array_equal(got[col].to_numpy(), want[run["seed"]][col].to_numpy(),
                                          err_msg=f"{label}, seed {run['seed']}: {col} differs from fastrnn.train")


@contextmanager
def pinned(cpus):
    """This process (and the workers it starts) allowed on ``cpus`` CPUs only, as `taskset` would."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:cpus])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


#: (label, sweep arguments, CPUs the process is pinned to or None). The "os.cpu_count() workers" row
#: starts as many workers as the machine has cores, whatever the process may use (the former default),
#: for comparison with the default (fastrnn.sweeps.default_workers) on the same pinned process.
CONFIGS = [("sequential", dict(workers=1), None),
           ("pool, 2 workers", dict(workers=2, vectorize=False), None),
           ("vectorised kernel, 2 threads", dict(workers=2, vectorize=True), None),
           ("pool, os.cpu_count() workers, pinned to 1 CPU", dict(workers=os.cpu_count(), vectorize=False), 1),
           ("pool, default workers, pinned to 1 CPU", dict(vectorize=False), 1)]


def measure(runs, iters, repeats=3):
    """Each configuration ``repeats`` times in turn (round-robin); medians of the wall times and of the
    runs' `train_seconds`, against the median `train_seconds` of the same runs trained alone."""
    fastrnn.train(iters=1)  # compile (or load) once
    configs = [c for c in CONFIGS if c[2] is None or hasattr(os, "sched_setaffinity")]
    walls = {label: [] for label, _, _ in configs}
    per_run = {label: [] for label, _, _ in configs}
    workers, perfect = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        want, alone_seconds = alone(runs, iters, tmp)
        for _ in range(repeats):
            for label, kwargs, cpus in configs:
                with tempfile.TemporaryDirectory() as out, pinned(cpus):
                    workers[label] = kwargs.get("workers") or default_workers()
                    t0 = time.perf_counter()
                    result = fastrnn.sweep(task="binary", seeds=range(runs), out=out, iters=iters, **kwargs)
                    walls[label].append(time.perf_counter() - t0)
                    same_as_alone(result, want, label)
                per_run[label].append(float(result.summary["train_seconds"].median()))
                perfect[label] = int((result.summary["final_accuracy"] == 1.0).sum())
        rows = []
        for label, _, cpus in configs:
            wall = float(np.median(walls[label]))
            rows.append(dict(config=label, cpus=cpus or os.cpu_count(), workers=workers[label], runs=runs, iters=iters,
                             repeats=repeats, wall_s=round(wall, 2), runs_per_s=round(runs / wall, 2),
                             train_s_median=round(float(np.median(per_run[label])), 4),
                             alone_train_s_median=round(float(np.median(alone_seconds)), 4),
                             reached_1=perfect[label], same_as_train=True))
            print(rows[-1], flush=True)
    return rows


def markdown(rows):
    checked = all(str(r.get("same_as_train")) == "True" for r in rows)
    r0 = rows[0]
    lines = [describe(r0) + f" {r0['runs']} binary runs of {r0['iters']} iterations (seeds 0-{r0['runs'] - 1}), every "
             f"configuration {r0.get('repeats', 1)} times in turn, medians; "
             + ("each configuration's runs gave the same metrics rows as `fastrnn.train` runs of their own." if checked
                else "these runs were not checked against `fastrnn.train`.")
             + " `train_seconds` a run: the median of the runs' own figures (a vectorised group's wall time divided by"
               " its size); alone: the same runs trained one by one with `fastrnn.train` in this process.", "",
             "| configuration | CPUs allowed | workers | runs | wall s | runs/s | train_seconds a run | alone | reached 1.0 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r.get('cpus', '-')} | {r.get('workers', '-')} | {r['runs']} | {r['wall_s']} | "
                     f"{r['runs_per_s']} | {r.get('train_s_median', '-')} | {r.get('alone_train_s_median', '-')} | "
                     f"{r['reached_1']}/{r['runs']} |")
    return "\n".join(lines) + "\n"


def examples():
    """Run the README's example commands in a fresh folder; rows of (command, output) with the folder spelled runs/."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for command in EXAMPLES:
            argv = [sys.executable, "-m"] + command.replace("runs/", os.path.join(tmp, "runs") + "/").split()
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            rows.append(dict(example=command, output=out.replace(os.path.join(tmp, "runs") + "/", "runs/").rstrip("\n")))
            print(f"$ {command}\n{rows[-1]['output']}", flush=True)
    return rows


def examples_markdown(rows):
    """The transcript: commands and plain output indented as code, a markdown report as a table."""
    lines = []
    for r in rows:
        lines.append(f"    $ {r['example']}")
        if "--format markdown" in r["example"]:
            lines += ["", str(r["output"])]
        else:
            lines += [f"    {line}" for line in str(r["output"]).splitlines()]
            if r["example"].startswith("fastrnn report"):
                lines.append("")
    lines += ["", "(" + describe(rows[0]) + ")"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--iters", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every configuration, in turn")
    parser.add_argument("--from-csv", action="store_true", help=f"measure nothing: rebuild the table from {CSV.name}")
    parser.add_argument("--examples", action="store_true", help="run the README's sweep and report examples instead of the timing")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    args = parser.parse_args()
    if args.examples and not args.from_csv:
        write_csv(EXAMPLES_CSV, examples(), environment())
    elif not args.from_csv:
        write_csv(CSV, measure(args.runs, args.iters, args.repeats), environment())
    block = markdown(read_csv(CSV))
    print("\n" + block)
    if not args.no_readme:
        for page in update_readme(block, "sweep"):
            print(f"{page} updated between its sweep marks")
    if EXAMPLES_CSV.exists():
        with open(EXAMPLES_CSV, newline="") as fh:  # read as text: the outputs are not numbers
            import csv

            block = examples_markdown(list(csv.DictReader(fh)))
        if not args.no_readme:
            for page in update_readme(block, "sweep-examples"):
                print(f"{page} updated between its sweep-examples marks")


if __name__ == "__main__":
    main()
