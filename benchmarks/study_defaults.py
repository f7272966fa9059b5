"""How the task defaults (DEFAULTS in fastrnn/tasks/binary.py and fastrnn/tasks/digits.py) were chosen.

Usage:
    python benchmarks/study_defaults.py binary [--seeds 10]
    python benchmarks/study_defaults.py digits [--seeds 3]
    python benchmarks/study_defaults.py digits --from-csv    # measure nothing: rebuild the table from the results file

Trains every candidate setting on several seeds and reports, per setting: how many
seeds reached the target accuracy (binary: 1.0 over the last 1000 samples; digits:
0.99), the median iteration at which they first did, the mean final accuracy, and
the runs that diverged. Writes benchmarks/results/defaults_<task>.csv and puts the
table into the README between its `<!-- defaults-<task>:start -->` and
`<!-- defaults-<task>:end -->` marks (unless --no-readme).
"""

import argparse

import numpy as np

from _common import RESULTS, describe, read_csv, update_readme, write_csv

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


def study(task, seeds, iters):
    target = TARGET[task]
    rows = []
    for cand in CANDIDATES[task]:
        hits, finals, diverged, seconds = [], [], 0, []
        for seed in seeds:
            try:
                r = fastrnn.train(task=task, iters=iters, seed=seed, clip=cand.get("clip"), **{k: v for k, v in cand.items() if k != "clip"})
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
            iters=iters,
        )
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(rows, task):
    def cell(v):
        return "-" if isinstance(v, float) and np.isnan(v) else (str(int(v)) if isinstance(v, float) and v == int(v) and abs(v) > 1 else str(v))

    lines = []
    if "date" in rows[0]:
        lines += [describe(rows[0]) + (f" {rows[0]['iters']} iterations a run." if "iters" in rows[0] else ""), ""]
    lines += [f"| setting | seeds reaching {TARGET[task]} | median iteration | worst | mean final accuracy | lowest final accuracy | diverged |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['reached']}/{r['seeds']} | {cell(r['median_iteration'])} | {cell(r['worst_iteration'])} | "
                     f"{cell(r['mean_final_accuracy'])} | {cell(r['min_final_accuracy'])} | {r['diverged']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(CANDIDATES))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--from-csv", action="store_true", help="measure nothing: rebuild the table from results/defaults_<task>.csv")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    args = parser.parse_args()
    path = RESULTS / f"defaults_{args.task}.csv"
    if not args.from_csv:
        seeds = range(args.seeds or (10 if args.task == "binary" else 5))
        write_csv(path, study(args.task, seeds, args.iters or ITERS[args.task]))
    block = markdown(read_csv(path), args.task)
    print("\n" + block)
    if not args.no_readme and update_readme(block, f"defaults-{args.task}"):
        print(f"README.md updated between its defaults-{args.task} marks")


if __name__ == "__main__":
    main()
