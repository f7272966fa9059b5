"""Where the lean kernel stops being the faster: one vanilla layer, lean kernel against the general driver.

``fastrnn.dispatch`` sends one vanilla layer to the lean kernel (separate arrays, every
product in its own loops) up to a batch x widest layer of ``LEAN_MAX_BATCH_WIDTH`` and
``LEAN_MAX_HIDDEN`` units; beyond, to the general
driver, which hands its time-batched products to BLAS. This script measures both sides
of that bound: ``fastrnn.train(task="binary", hidden=H, batch=B, lr=0.01)`` at T=8 for a
grid of H and B, once with the lean kernel (the two bounds raised for the process, so that
every cell of the grid takes it) and once with ``FASTRNN_KERNEL=general``, interleaved,
after a warm-up round, medians of the rounds; time an iteration is the run's training
seconds over its iterations. Both runs are checked to end at the same parameters (rtol
1e-8) before their times count.

Writes ``lean_size.csv`` and ``lean_size.md`` into ``benchmarks/results`` (or ``--out``).
``--quick``: a smoke-sized grid (for the tests; its numbers mean nothing).
"""

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import size_arguments, train_binary, write_results  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import dispatch  # noqa: E402

GRID = [(H, B) for H in (16, 32, 48, 64) for B in (1, 4, 8, 16, 32) if H * B <= 1024]
QUICK = [(32, 1), (16, 4)]
#: Multiply-adds of the grid's runs: enough for a few milliseconds of training each.
WORK = 20000 * 1 * 16 * 16


def run(H, B, iters, general):
    return train_binary(general, iters, hidden=H, batch=B)


def main():
    args = size_arguments(__doc__)
    grid = QUICK if args.quick else GRID
    rounds = 1 if args.quick else args.rounds
    bound, hidden = dispatch.LEAN_MAX_BATCH_WIDTH, dispatch.LEAN_MAX_HIDDEN
    dispatch.LEAN_MAX_BATCH_WIDTH, dispatch.LEAN_MAX_HIDDEN = 1 << 40, 1 << 20  # every grid cell on the lean kernel
    try:
        times = {(H, B): ([], []) for H, B in grid}
        for r in range(rounds + 1):  # round 0: compile or load, and check
            for H, B in grid:
                iters = 200 if args.quick else max(200, WORK // (B * H * H))
                lean, general = run(H, B, iters, False), run(H, B, iters, True)
                if r == 0:
                    assert lean.kernel.name == "small-lean" and general.kernel.name == "general", (lean.kernel, general.kernel)
                    np.testing.assert_allclose(lean.model.theta, general.model.theta, rtol=1e-8, atol=1e-12)
                    continue
                times[(H, B)][0].append(lean.train_seconds / lean.iterations * 1e6)
                times[(H, B)][1].append(general.train_seconds / general.iterations * 1e6)
    finally:
        dispatch.LEAN_MAX_BATCH_WIDTH, dispatch.LEAN_MAX_HIDDEN = bound, hidden
    rows = []
    for (H, B), (lean_us, general_us) in times.items():
        work = B * H * max(2, H, 1)  # multiply-adds of a step's recurrent product
        model = fastrnn.RNN(2, H, 1, head="sigmoid")
        chosen = dispatch.for_model(model, 8, B).name
        lean_m, general_m = statistics.median(lean_us), statistics.median(general_us)
        rows.append(dict(H=H, B=B, T=8, step_work=work, lean_us=lean_m, general_us=general_m,
                         general_x_lean=general_m / lean_m, chosen=chosen, rounds=rounds))
    lines = [f"One vanilla layer at the binary task's shape (T=8, I=2, O=1), us an iteration, medians of {rounds} "
             "interleaved rounds: the lean kernel against the general driver, and the kernel fastrnn chooses "
             f"(lean up to a batch x widest layer of {bound} and {hidden} units).", "",
             "| H | batch | step work | lean us | general us | general / lean | chosen |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['H']} | {row['B']} | {row['step_work']} | {row['lean_us']:.1f} | {row['general_us']:.1f} | "
                     f"{row['general_x_lean']:.2f} | {row['chosen']} |")
    write_results(args.out, "lean_size", rows, lines)


if __name__ == "__main__":
    main()
