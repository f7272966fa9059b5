"""This checkout's training speed against another fastrnn source tree, in one process, interleaved.

Usage:
    python benchmarks/bench_compare_trees.py OTHER_TREE [--reps 5] [--iters 20000] [--out results/compare_trees.csv]

OTHER_TREE is a directory holding a ``fastrnn`` package (an older commit, e.g. made with
``git archive <commit> fastrnn | tar -x -C /tmp/old``). Its package is copied once to
``<tempdir>/fastrnn-compare/<hash>/fastrnn_other`` (every import inside the package is
relative, so it imports under that name beside this checkout's ``fastrnn``), so that
both run in the same process, on the same numba, one after the other.

Each setting is trained once per tree first (compile or cache load, not timed), then
``--reps`` rounds: in each round every setting runs on both trees, the order of the two
alternating from round to round. The figure is :attr:`fastrnn.TrainResult.train_seconds`
(the training loop, compile and start-up excluded); the table gives the median per tree
and the ratio this/other (below 1: this checkout is faster). On a shared machine the
medians of several rounds are the figure to read, not any single run.
"""

import argparse
import csv
import hashlib
import importlib
import os
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = {
    "default (binary, sgd)": dict(task="binary", seed=0),
    "adam lr 0.01": dict(task="binary", seed=0, optimizer="adam", lr=0.01),
    "momentum": dict(task="binary", seed=0, optimizer="momentum"),
    "tanh": dict(task="binary", seed=0, activation="tanh"),
}


def _other_package(tree):
    source = os.path.join(os.path.abspath(tree), "fastrnn")
    if not os.path.isfile(os.path.join(source, "__init__.py")):
        sys.exit(f"{tree} holds no fastrnn package (no {source}/__init__.py)")
    key = hashlib.sha256(source.encode()).hexdigest()[:12]
    base = os.path.join(tempfile.gettempdir(), "fastrnn-compare", key)
    dest = os.path.join(base, "fastrnn_other")
    if not os.path.isdir(dest):
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, base)
    return importlib.import_module("fastrnn_other")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20000)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "compare_trees.csv"))
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import fastrnn

    other = _other_package(args.other)
    trees = {"this": fastrnn, "other": other}
    times = {(name, tree): [] for name in SETTINGS for tree in trees}
    for name, s in SETTINGS.items():  # compile or load each kernel before timing
        for pkg in trees.values():
            pkg.train(iters=200, log_every=100, **s)
    for rep in range(args.reps):
        order = list(trees) if rep % 2 == 0 else list(trees)[::-1]
        for name, s in SETTINGS.items():
            for tree in order:
                times[(name, tree)].append(trees[tree].train(iters=args.iters, **s).train_seconds)
    rows = []
    print(f"{'setting':<24} {'this s':>9} {'other s':>9} {'this/other':>10}")
    for name in SETTINGS:
        a, b = statistics.median(times[(name, "this")]), statistics.median(times[(name, "other")])
        rows.append(dict(setting=name, iters=args.iters, this_median_s=a, other_median_s=b, ratio=a / b,
                         this_all=" ".join(f"{t:.4f}" for t in times[(name, "this")]),
                         other_all=" ".join(f"{t:.4f}" for t in times[(name, "other")])))
        print(f"{name:<24} {a:>9.4f} {b:>9.4f} {a / b:>10.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
