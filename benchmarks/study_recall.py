"""Long memory: which cells learn the recall task as the lag grows (README, "Gated cells and long memory").

    python benchmarks/study_recall.py [--out runs/recall-sweep] [--lags 5,10,20,40] [--seeds 0,1] [--iters 3000]

Runs (or resumes: finished runs in --out are reused) the sweep

    fastrnn sweep --task recall --seeds 0,1 --set lag=5,10,20,40 --set cell=rnn,gru,lstm \
                  --set iters=3000 --set log_every=250 --out runs/recall-sweep

with the recall task's other defaults, then writes docs/recall-sweep.csv (one row per
run: lag, cell, seed, final accuracy, first iteration at accuracy 1.0) and
docs/recall-sweep.png (final accuracy against lag, one line per cell, mean over seeds
with every seed's point).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fastrnn  # noqa: E402


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recall-sweep")
    parser.add_argument("--lags", type=ints, default=[5, 10, 20, 40])
    parser.add_argument("--seeds", type=ints, default=[0, 1])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    result = fastrnn.sweep(task="recall", seeds=args.seeds, grid={"lag": args.lags, "cell": ["rnn", "gru", "lstm"]},
                           out=args.out, workers=args.workers, iters=args.iters, log_every=250)
    frame = result.summary
    keep = [c for c in ("lag", "cell", "seed", "final_accuracy", "first_perfect_iteration", "train_seconds") if c in frame]
    table = frame[keep].sort_values(["lag", "cell", "seed"]).reset_index(drop=True)
    docs = ROOT / "docs"
    table.to_csv(docs / "recall-sweep.csv", index=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for cell, group in table.groupby("cell", sort=False):
        mean = group.groupby("lag")["final_accuracy"].mean()
        line = ax.plot(mean.index, mean.values, marker="o", label=cell)[0]
        ax.scatter(group["lag"], group["final_accuracy"], color=line.get_color(), alpha=0.35, s=12)
    ax.axhline(0.25, color="grey", lw=0.8, ls="--", label="chance (1/4)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(args.lags, [str(v) for v in args.lags])
    ax.set_xlabel("lag (steps between the stored symbol and the query)")
    ax.set_ylabel("final accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"recall task, {args.iters} iterations of Adam, batch 32, hidden 32")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "recall-sweep.png", dpi=110)
    print(table.to_string(index=False))
    print(f"written: {docs / 'recall-sweep.csv'}, {docs / 'recall-sweep.png'}")


if __name__ == "__main__":
    main()
