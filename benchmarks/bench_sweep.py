"""Runs per second of a sweep: sequential, the process pool, and the vectorised kernel.

Usage:
    python benchmarks/bench_sweep.py [--runs 24] [--iters 20000]
    python benchmarks/bench_sweep.py --examples     # run the README's sweep/report examples instead of the timing
    python benchmarks/bench_sweep.py --from-csv     # measure nothing: rebuild the README blocks from the results files

Every configuration trains the same binary-addition runs (seeds 0..runs-1) into a
fresh temporary folder; compile time is paid once before timing. Before any time
counts, every seed is trained once more on its own with `fastrnn.train`, and each
configuration's runs must give the same metrics rows (iteration, loss, accuracy),
number for number: the configurations differ in wall time only. Writes
benchmarks/results/bench_sweep.csv (with the machine, versions, threads and date)
and puts the table into the README between its `<!-- sweep:start -->` and
`<!-- sweep:end -->` marks (unless --no-readme).

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

import numpy as np

from _common import RESULTS, describe, environment, read_csv, update_readme, write_csv

import fastrnn

CSV = RESULTS / "bench_sweep.csv"
EXAMPLES_CSV = RESULTS / "sweep_examples.csv"
EXAMPLES = [
    "fastrnn sweep --task binary --seeds 0-99 --out runs/bin100",
    "fastrnn report runs/bin100",
    "fastrnn sweep --task binary --seeds 0-9 --set lr=0.05,0.1,0.3 --set hidden=8,16 --out runs/lrh",
    "fastrnn report runs/lrh --format markdown",
]


def alone(runs, iters, folder):
    """Each seed's metrics rows from a `fastrnn.train` run of its own."""
    import pandas as pd

    out = {}
    for seed in range(runs):
        path = os.path.join(folder, f"alone-{seed}.csv")
        fastrnn.train(task="binary", iters=iters, seed=seed, csv=path)
        out[seed] = pd.read_csv(path)
    return out


def same_as_alone(result, want, label):
    import pandas as pd

    for _, run in result.summary.iterrows():
        got = pd.read_csv(result.out / f"{run['run']}.csv")
        for col in ("iteration", "loss", "accuracy"):
            np.testing.assert_array_equal(got[col].to_numpy(), want[run["seed"]][col].to_numpy(),
                                          err_msg=f"{label}, seed {run['seed']}: {col} differs from fastrnn.train")


def measure(runs, iters):
    fastrnn.train(iters=1)  # compile (or load) once
    configs = [("sequential", dict(workers=1)), ("pool, 2 workers", dict(workers=2, vectorize=False)),
               ("vectorised kernel, 2 threads", dict(workers=2, vectorize=True))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        want = alone(runs, iters, tmp)
        for label, kwargs in configs:
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                result = fastrnn.sweep(task="binary", seeds=range(runs), out=out, iters=iters, **kwargs)
                wall = time.perf_counter() - t0
                same_as_alone(result, want, label)
            perfect = int((result.summary["final_accuracy"] == 1.0).sum())
            rows.append(dict(config=label, runs=runs, iters=iters, wall_s=round(wall, 2),
                             runs_per_s=round(runs / wall, 2), reached_1=perfect, same_as_train=True))
            print(rows[-1], flush=True)
    return rows


def markdown(rows):
    checked = all(str(r.get("same_as_train")) == "True" for r in rows)
    lines = [describe(rows[0]) + f" {rows[0]['runs']} binary runs of {rows[0]['iters']} iterations (seeds 0-{rows[0]['runs'] - 1}); "
             + ("each configuration's runs gave the same metrics rows as `fastrnn.train` runs of their own." if checked
                else "these runs were not checked against `fastrnn.train`."), "",
             "| configuration | runs | wall s | runs/s | reached 1.0 |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['runs']} | {r['wall_s']} | {r['runs_per_s']} | {r['reached_1']}/{r['runs']} |")
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
    parser.add_argument("--from-csv", action="store_true", help=f"measure nothing: rebuild the table from {CSV.name}")
    parser.add_argument("--examples", action="store_true", help="run the README's sweep and report examples instead of the timing")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    args = parser.parse_args()
    if args.examples and not args.from_csv:
        write_csv(EXAMPLES_CSV, examples(), environment())
    elif not args.from_csv:
        write_csv(CSV, measure(args.runs, args.iters), environment())
    block = markdown(read_csv(CSV))
    print("\n" + block)
    if not args.no_readme and update_readme(block, "sweep"):
        print("README.md updated between its sweep marks")
    if EXAMPLES_CSV.exists():
        with open(EXAMPLES_CSV, newline="") as fh:  # read as text: the outputs are not numbers
            import csv

            block = examples_markdown(list(csv.DictReader(fh)))
        if not args.no_readme and update_readme(block, "sweep-examples"):
            print("README.md updated between its sweep-examples marks")


if __name__ == "__main__":
    main()
