"""What each start-up shortcut of the ``fastrnn`` command saves on a warm command.

Usage:
    python benchmarks/bench_startup_shortcuts.py              # 15 rounds
    python benchmarks/bench_startup_shortcuts.py --rounds 5   # quicker, noisier

The command is ``python -m fastrnn train --task binary --iters 20000 --no-csv -q`` with a
warm numba cache (one untimed run of each variant first). The variants are the command
with every shortcut (``fastrnn._startup.SHORTCUTS``), with none (``FASTRNN_PLAIN_NUMBA=1``),
and with every shortcut but one (``FASTRNN_PLAIN_NUMBA=<name>``). Each round runs every
variant once, in an order rotated from round to round, so that a busy spell of the
machine falls on all of them alike. A shortcut's saving is the median over rounds of
(all but it) - (all) within the same round; its spread is the 25th-75th percentile of
those differences. The load average before and after is recorded: on a shared
machine the figures are only as good as it was quiet.

Writes benchmarks/results/startup_shortcuts.csv (one row per variant, every row with the
machine, versions and date).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import RESULTS, ROOT, environment, write_csv

from fastrnn import _startup

COMMAND = ["-m", "fastrnn", "train", "--task", "binary", "--iters", "20000", "--no-csv", "-q"]


def off(taken):
    """FASTRNN_PLAIN_NUMBA's value for a command that takes the shortcuts ``taken`` only."""
    rest = [name for name in _startup.SHORTCUTS if name not in taken]
    return ",".join(rest) if rest else "0"


def variants(sets=None):
    """(name, FASTRNN_PLAIN_NUMBA) of every variant: all, none and all but one; or the given sets
    of shortcuts (``gc+cache``) with all and none."""
    out = [("all", "0"), ("none", "1")]
    if sets:
        out += [(s, off(s.split("+"))) for s in sets]
    else:
        out += [(f"all but {name}", name) for name in _startup.SHORTCUTS]
    return out


def run_once(plain, cwd):
    """Wall and CPU (user + system) seconds of one command."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTRNN_PLAIN_NUMBA": plain}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *COMMAND], env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sets", nargs="*", help="sets of shortcuts to time instead of all but one, e.g. gc+cache")
    args = parser.parse_args()
    todo = variants(args.sets)
    times = {name: [] for name, _ in todo}
    cpu = {name: [] for name, _ in todo}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as cwd:
        for _, plain in todo:  # warm: the cache is loaded, the files are in the page cache
            run_once(plain, cwd)
        for r in range(args.rounds):
            order = todo[r % len(todo):] + todo[: r % len(todo)]
            for name, plain in order:
                wall, used = run_once(plain, cwd)
                times[name].append(wall)
                cpu[name].append(used)
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}/{args.rounds}: all {times['all'][-1]:.3f} s, none {times['none'][-1]:.3f} s, "
                  f"load {load[-1]:.2f}", flush=True)
    rows = []
    for name, plain in todo:
        row = dict(variant=name, FASTRNN_PLAIN_NUMBA=plain, rounds=args.rounds)
        for what, table in (("wall", times), ("cpu", cpu)):
            t = np.array(table[name])
            diff = t - np.array(table["all"])
            row.update({f"{what}_median_s": float(np.median(t)), f"{what}_p25_s": float(np.percentile(t, 25)),
                        f"{what}_p75_s": float(np.percentile(t, 75)), f"{what}_minus_all_median_s": float(np.median(diff)),
                        f"{what}_minus_all_p25_s": float(np.percentile(diff, 25)),
                        f"{what}_minus_all_p75_s": float(np.percentile(diff, 75))})
        rows.append(dict(row, load_min=float(min(load)), load_max=float(max(load))))
    path = write_csv(RESULTS / "startup_shortcuts.csv", rows, environment())
    width = max(len(name) for name, _ in todo)
    print(f"{'variant':<{width}} {'wall s':>7} {'- all, ms (p25..p75)':>26} {'cpu s':>7} {'- all, ms (p25..p75)':>26}")
    for row in rows:
        cells = [f"{row['variant']:<{width}}"]
        for what in ("wall", "cpu"):
            cells.append(f"{row[f'{what}_median_s']:7.3f} {1000 * row[f'{what}_minus_all_median_s']:8.1f} "
                         f"({1000 * row[f'{what}_minus_all_p25_s']:6.1f} .. {1000 * row[f'{what}_minus_all_p75_s']:6.1f})")
        print(" ".join(cells))
    print(f"load average {min(load):.2f}-{max(load):.2f}; {path}")


if __name__ == "__main__":
    main()
