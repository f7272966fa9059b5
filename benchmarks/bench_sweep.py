"""Runs per second of a sweep: sequential, the process pool, and the vectorised kernel.

Usage:
    python benchmarks/bench_sweep.py [--runs 24] [--iters 20000]

Every configuration trains the same binary-addition runs (seeds 0..runs-1) into a
fresh temporary folder; compile time is paid once before timing. The runs' numbers
are identical in all three (tests/test_sweep.py checks this); only the wall time
differs. Writes benchmarks/results/bench_sweep.csv.
"""

import argparse
import os
import tempfile
import time

from _common import RESULTS, machine, write_csv

import fastrnn


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--iters", type=int, default=20000)
    args = parser.parse_args()
    fastrnn.train(iters=1)  # compile (or load) once
    configs = [("sequential", dict(workers=1)), ("pool, 2 workers", dict(workers=2, vectorize=False)),
               ("vectorised kernel, 2 threads", dict(workers=2, vectorize=True))]
    rows = []
    for label, kwargs in configs:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = fastrnn.sweep(task="binary", seeds=range(args.runs), out=out, iters=args.iters, **kwargs)
            wall = time.perf_counter() - t0
        perfect = int((result.summary["final_accuracy"] == 1.0).sum())
        rows.append(dict(config=label, runs=args.runs, iters=args.iters, wall_s=round(wall, 2),
                         runs_per_s=round(args.runs / wall, 2), reached_1=perfect))
        print(rows[-1], flush=True)
    write_csv(RESULTS / "bench_sweep.csv", rows)
    print(f"\n{machine()}, {os.cpu_count()} cores")
    print("| configuration | runs | wall s | runs/s | reached 1.0 |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['runs']} | {r['wall_s']} | {r['runs_per_s']} | {r['reached_1']}/{r['runs']} |")


if __name__ == "__main__":
    main()
