"""Where the small-model kernel for every cell and depth stops being the faster: GRU, LSTM and two
vanilla layers, that kernel against the general driver.

``fastrnn.dispatch`` sends one model's training with full BPTT to ``small-cells``
(:mod:`fastrnn._small_cells`: the general driver's BPTT in the lean kernel's layout) when it is a
gated cell or stacked layers with at most ``CELLS_MAX_WIDTH`` gate units a layer (G x H) and at
most ``CELLS_MAX_BATCH`` sequences a batch; beyond, to the general driver, which hands its
time-batched products to BLAS. This script measures both sides of those bounds:
``fastrnn.train(task="binary", cell=..., layers=..., hidden=H, batch=B, lr=0.01)`` at T=8 for a
grid of models, H and B, once on ``small-cells`` (the bounds raised for the process, so that every
cell of the grid takes it) and once with ``FASTRNN_KERNEL=general``, interleaved, after a warm-up
round, medians of the rounds; time an iteration is the run's training seconds over its
iterations. Both runs are checked to end at the same parameters (rtol 1e-8) before their times
count.

Writes ``cells_size.csv`` and ``cells_size.md`` into ``benchmarks/results`` (or ``--out``).
``--quick``: a smoke-sized grid (for the tests; its numbers mean nothing).
"""

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import size_arguments, train_binary, write_results  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import cells, dispatch  # noqa: E402

#: The models: name -> fastrnn.train settings.
MODELS = {"gru": dict(cell="gru"), "lstm": dict(cell="lstm"), "rnn x2": dict(layers=2)}
GRID = [(m, H, B) for m in MODELS for H in (16, 32, 64) for B in (1, 4, 16)]
QUICK = [("gru", 8, 1), ("rnn x2", 8, 2)]
#: Multiply-adds of the grid's runs: enough for a few milliseconds of training each.
WORK = 20000 * 1 * 16 * 48


def run(model, H, B, iters, general):
    return train_binary(general, iters, hidden=H, batch=B, **MODELS[model])


def gate_units(model, H):
    return cells.module(MODELS[model].get("cell", "rnn")).G * H


def main():
    args = size_arguments(__doc__)
    grid = QUICK if args.quick else GRID
    rounds = 1 if args.quick else args.rounds
    width, batch = dispatch.CELLS_MAX_WIDTH, dispatch.CELLS_MAX_BATCH
    dispatch.CELLS_MAX_WIDTH, dispatch.CELLS_MAX_BATCH = 1 << 20, 1 << 20  # every grid cell on small-cells
    try:
        times = {key: ([], []) for key in grid}
        for r in range(rounds + 1):  # round 0: compile or load, and check
            for m, H, B in grid:
                iters = 200 if args.quick else max(200, WORK // (B * H * gate_units(m, H)))
                fast, general = run(m, H, B, iters, False), run(m, H, B, iters, True)
                if r == 0:
                    assert fast.kernel.name == "small-cells" and general.kernel.name == "general", (fast.kernel,
                                                                                                  general.kernel)
                    np.testing.assert_allclose(fast.model.theta, general.model.theta, rtol=1e-8, atol=1e-12)
                    continue
                times[(m, H, B)][0].append(fast.train_seconds / fast.iterations * 1e6)
                times[(m, H, B)][1].append(general.train_seconds / general.iterations * 1e6)
    finally:
        dispatch.CELLS_MAX_WIDTH, dispatch.CELLS_MAX_BATCH = width, batch
    rows = []
    for (m, H, B), (fast_us, general_us) in times.items():
        settings = MODELS[m]
        model = fastrnn.RNN(2, H, 1, head="sigmoid", cell=settings.get("cell", "rnn"), layers=settings.get("layers", 1))
        chosen = dispatch.for_model(model, 8, B).name
        fast_m, general_m = statistics.median(fast_us), statistics.median(general_us)
        rows.append(dict(model=m, H=H, B=B, T=8, gate_units=gate_units(m, H), cells_us=fast_m, general_us=general_m,
                         general_x_cells=general_m / fast_m, chosen=chosen, rounds=rounds))
    lines = [f"A GRU, an LSTM and two vanilla layers at the binary task's shape (T=8, I=2, O=1), us an iteration, "
             f"medians of {rounds} interleaved rounds: the small-model kernel for every cell and depth (small-cells) "
             "against the general driver, and the kernel fastrnn chooses (small-cells up to "
             f"{width} gate units a layer and batch {batch}).", "",
             "| model | H | batch | gate units | small-cells us | general us | general / small-cells | chosen |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['H']} | {row['B']} | {row['gate_units']} | {row['cells_us']:.1f} | "
                     f"{row['general_us']:.1f} | {row['general_x_cells']:.2f} | {row['chosen']} |")
    write_results(args.out, "cells_size", rows, lines)


if __name__ == "__main__":
    main()
