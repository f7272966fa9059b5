"""How the task defaults (DEFAULTS in fastrnn/tasks/binary.py and fastrnn/tasks/digits.py) were chosen.

Usage:
    python benchmarks/study_defaults.py binary [--seeds 10]
    python benchmarks/study_defaults.py digits [--seeds 3]

Trains every candidate setting on several seeds and reports, per setting: how many
seeds reached the target accuracy (binary: 1.0 over the last 1000 samples; digits:
0.99), the median iteration at which they first did, the mean final accuracy, and
the runs that diverged. Writes benchmarks/results/defaults_<task>.csv.
"""

import argparse

import numpy as np

from _common import RESULTS, write_csv

import fastrnn
from fastrnn import NumericalError

CANDIDATES = {
    "binary": [
        dict(activation="sigmoid", init_scale=1.0, optimizer="sgd", lr=0.1),
        dict(activation="sigmoid", init_scale="fan_in", optimizer="sgd", lr=0.1),
        dict(activation="tanh", init_scale=1.0, optimizer="sgd", lr=0.1),
        dict(activation="tanh", init_scale=0.5, optimizer="sgd", lr=0.1),
        dict(activation="tanh", init_scale="fan_in", optimizer="sgd", lr=0.1),
        dict(activation="relu", init_scale=0.5, optimizer="sgd", lr=0.1),
        dict(activation="tanh", init_scale="fan_in", optimizer="adam", lr=0.01),
    ],
    "digits": [
        dict(optimizer="sgd", lr=0.05, batch=32, clip=None),
        dict(optimizer="sgd", lr=0.05, batch=32, clip=1.0),
        dict(optimizer="adam", lr=0.001, batch=32, clip=1.0),
        dict(optimizer="adam", lr=0.003, batch=32, clip=1.0),
        dict(optimizer="adam", lr=0.005, batch=32, clip=1.0),
        dict(optimizer="adam", lr=0.01, batch=32, clip=1.0),
    ],
}
TARGET = {"binary": 1.0, "digits": 0.99}
ITERS = {"binary": 20000, "digits": 3000}


def first_at(history, target):
    hit = history.index[history["accuracy"] >= target]
    return int(history.loc[hit[0], "iteration"]) if len(hit) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(CANDIDATES))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    args = parser.parse_args()
    seeds = range(args.seeds or (10 if args.task == "binary" else 5))
    iters = args.iters or ITERS[args.task]
    target = TARGET[args.task]
    rows = []
    for cand in CANDIDATES[args.task]:
        hits, finals, diverged, seconds = [], [], 0, []
        for seed in seeds:
            try:
                r = fastrnn.train(task=args.task, iters=iters, seed=seed, clip=cand.get("clip"), **{k: v for k, v in cand.items() if k != "clip"})
            except NumericalError as exc:
                diverged += 1
                r = exc.result
            hits.append(first_at(r.history, target) if len(r.history) else None)
            finals.append(r.final_accuracy if len(r.history) else 0.0)
            seconds.append(r.train_seconds)
        reached = [h for h in hits if h is not None]
        row = dict(
            setting=" ".join(f"{k}={v}" for k, v in cand.items()),
            seeds=len(hits),
            reached=len(reached),
            median_iteration=int(np.median(reached)) if reached else None,
            worst_iteration=max(reached) if reached else None,
            mean_final_accuracy=round(float(np.mean(finals)), 4),
            min_final_accuracy=round(float(np.min(finals)), 4),
            diverged=diverged,
            median_train_s=round(float(np.median(seconds)), 3),
        )
        rows.append(row)
        print(row, flush=True)
    write_csv(RESULTS / f"defaults_{args.task}.csv", rows)
    print(f"\n| setting | seeds reaching {target} | median iteration | worst | mean final accuracy | lowest final accuracy | diverged |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['reached']}/{r['seeds']} | {r['median_iteration']} | {r['worst_iteration']} | "
              f"{r['mean_final_accuracy']} | {r['min_final_accuracy']} | {r['diverged']} |")


if __name__ == "__main__":
    main()
