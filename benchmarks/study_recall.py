"""Long memory: which cells learn the recall task as the lag grows (docs/gradients.md, "Gated cells and long memory").

    python benchmarks/study_recall.py [--out runs/recall-sweep] [--lags 5,10,20,40,80] [--seeds 0,1,2] [--iters 2000]

Runs (or resumes: finished runs in --out are reused) two sweeps, the vanilla cell and
the GRU, then the LSTM with three initial forget-gate biases (``forget_bias`` is
refused for the other cells, so it cannot share their grid):

    fastrnn sweep --task recall --seeds 0,1,2 --set lag=5,10,20,40,80 --set cell=rnn,gru \\
                  --set iters=2000 --set log_every=250 --out runs/recall-sweep/rnn-gru
    fastrnn sweep --task recall --seeds 0,1,2 --set lag=5,10,20,40,80 --set cell=lstm --set forget_bias=0,1,3 \\
                  --set iters=2000 --set log_every=250 --out runs/recall-sweep/lstm

with the recall task's other defaults (Adam, lr 0.01, gradient norm clipped at 1, batch
32, 32 hidden units), then writes docs/recall-sweep.csv (one row per run: lag, cell,
forget_bias, seed, final accuracy over the last 1000 training sequences, first
iteration at accuracy 1.0, training seconds) and docs/recall-sweep.png (final accuracy
against lag, one line per cell and forget bias, the mean over seeds with every
seed's point). About 9 minutes on a loaded 2-core machine (OPENBLAS_NUM_THREADS=1).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fastrnn  # noqa: E402

COLUMNS = ["lag", "cell", "forget_bias", "seed", "final_accuracy", "first_perfect_iteration", "train_seconds"]


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def label(cell, forget_bias):
    return cell if cell != "lstm" else f"lstm, forget bias {forget_bias:g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recall-sweep")
    parser.add_argument("--lags", type=ints, default=[5, 10, 20, 40, 80])
    parser.add_argument("--seeds", type=ints, default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--forget-biases", type=floats, default=[0.0, 1.0, 3.0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where recall-sweep.csv/png go")
    args = parser.parse_args()

    import pandas as pd

    common = dict(task="recall", seeds=args.seeds, workers=args.workers, iters=args.iters, log_every=250)
    plain = fastrnn.sweep(grid={"lag": args.lags, "cell": ["rnn", "gru"]}, out=f"{args.out}/rnn-gru", **common).summary
    plain["forget_bias"] = 0.0
    lstm = fastrnn.sweep(grid={"lag": args.lags, "forget_bias": args.forget_biases}, out=f"{args.out}/lstm", cell="lstm",
                         **common).summary
    lstm["cell"] = "lstm"
    # a sweep's summary has a column for each setting that varies among its runs: one lag, or one forget
    # bias, varies in none, so the column is added here with its one value
    for frame_, name, values in ((plain, "lag", args.lags), (lstm, "lag", args.lags), (lstm, "forget_bias", args.forget_biases)):
        if name not in frame_.columns and len(values) == 1:
            frame_[name] = values[0]
    frame = pd.concat([plain, lstm], ignore_index=True)
    table = frame[COLUMNS].sort_values(["lag", "cell", "forget_bias", "seed"]).reset_index(drop=True)
    docs = Path(args.docs)
    table.to_csv(docs / "recall-sweep.csv", index=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    lines = [("rnn", 0.0), ("gru", 0.0)] + [("lstm", fb) for fb in args.forget_biases]
    styles = {"rnn": "-", "gru": "-", "lstm": "--"}
    for k, (cell, fb) in enumerate(lines):
        group = table[(table["cell"] == cell) & (table["forget_bias"] == fb)]
        mean = group.groupby("lag")["final_accuracy"].mean()
        # offset the seeds' points a little sideways so that equal values do not hide each other
        line = ax.plot(mean.index, mean.values, marker="o", ls=styles[cell], label=label(cell, fb))[0]
        ax.scatter(group["lag"] * 2 ** (0.04 * (k - 2)), group["final_accuracy"], color=line.get_color(), alpha=0.4, s=14)
    ax.axhline(0.25, color="grey", lw=0.8, ls=":", label="chance (1/4)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(args.lags, [str(v) for v in args.lags])
    ax.set_xlabel("lag (steps between the stored symbol and the query)")
    ax.set_ylabel(f"final accuracy (mean of {len(args.seeds)} seeds; dots: each seed)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"recall task: {args.iters} iterations of Adam (lr 0.01, clip 1), batch 32, hidden 32", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(docs / "recall-sweep.png", dpi=110)
    print(table.to_string(index=False))
    print(f"written: {docs / 'recall-sweep.csv'}, {docs / 'recall-sweep.png'}")


if __name__ == "__main__":
    main()
