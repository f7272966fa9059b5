"""Long-range memory: the adding problem, copy memory and temporal order, five models, against the published baselines.

    python benchmarks/study_long_range.py [--out runs/long-range] [--iters 1500] [--seeds 0,1,2] [--workers 2]

One configuration for every model and task: hidden 32, batch 32, Adam at lr 1e-3,
gradient norm clipped at 1, full BPTT, ``--iters`` iterations (the tasks' defaults but
for the iterations). The models:

    tanh RNN, uniform init     --cell rnn --activation tanh                      (fan-in uniform W)
    tanh RNN, orthogonal init  --cell rnn --activation tanh --init orthogonal
    IRNN                       --cell rnn --activation relu --init identity
    GRU                        --cell gru
    LSTM, forget bias 1        --cell lstm --forget-bias 1

Each (task, model) is one sweep (``fastrnn.sweep``, ``--workers`` processes) over the
lengths (adding: --length 50,100,200; copy: --lag 10,20,50; order: its fixed 100-110
steps) and the seeds; finished runs in --out are reused. Then it writes
docs/long-range.csv (one row per run: the last row's held-out scores, the task's
baseline, training seconds), docs/long-range.png, and the results section of
docs/long-range.md (between its study markers): the mean and range over seeds
beside the published baselines.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fastrnn  # noqa: E402
import numpy as np  # noqa: E402
from fastrnn.tasks import make_task  # noqa: E402
from fastrnn.tasks._base import HELD_OUT, HELD_OUT_SEED  # noqa: E402

MODELS = {
    "tanh RNN": dict(cell="rnn", activation="tanh"),
    "tanh RNN, orthogonal": dict(cell="rnn", activation="tanh", init="orthogonal"),
    "IRNN": dict(cell="rnn", activation="relu", init="identity"),
    "GRU": dict(cell="gru"),
    "LSTM, forget bias 1": dict(cell="lstm", forget_bias=1.0),
}
#: task -> (its length parameter, the lengths), and the score the table leads with
TASKS = {
    "adding": ("length", [50, 100, 200]),
    "copy": ("lag", [10, 20, 50]),
    "order": (None, [None]),
}
HEADLINE = {"adding": ("test_mse", "test_correct"), "copy": ("test_ce_per_step", "test_recall_accuracy"),
            "order": ("test_ce", "test_accuracy")}
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def run_sweeps(args):
    """Every (task, model) sweep; returns (one row per run, how many runs trained in this call)."""
    rows, ran = [], 0
    for task, (param, lengths) in TASKS.items():
        for label, model in MODELS.items():
            slug = label.lower().replace(", ", "-").replace(" ", "-")
            grid = {param: lengths} if param else None
            t0 = time.perf_counter()
            result = fastrnn.sweep(task=task, seeds=args.seeds, grid=grid, out=Path(args.out) / task / slug,
                                   workers=args.workers, iters=args.iters, log_every=args.log_every, **model)
            print(f"{task:7s} {label:22s} {len(result.summary)} runs ({result.ran} ran) in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            ran += result.ran
            for name in result.summary["run"]:
                history, _ = fastrnn.read_run(Path(args.out) / task / slug / f"{name}.csv")
                meta = json.loads((Path(args.out) / task / slug / f"{name}.json").read_text())
                s = meta.get("settings", meta)
                length = s.get(param) if param else None
                own = make_task(task, **({param: length} if param else {}))
                last = history.iloc[-1]
                first, second = HEADLINE[task]
                # the baseline strategy's scores on the same fixed held-out batch the runs are scored on
                held = own.baseline_scores(own.sample(np.random.default_rng(HELD_OUT_SEED), HELD_OUT))
                rows.append(dict(task=task, model=label, length=length if param else own.T, seed=s["seed"],
                                 iterations=int(last["iteration"]), score=float(last[first]), score_name=first,
                                 baseline=own.baseline[first], heldout_baseline=held[first],
                                 second=float(last[second]), second_name=second, second_baseline=own.baseline[second],
                                 second_heldout_baseline=held[second], train_seconds=meta["result"]["train_seconds"],
                                 status=meta["status"]))
    return rows, ran


def plot(frame, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    for ax, task in zip(axes, TASKS):
        part = frame[frame["task"] == task]
        for k, label in enumerate(MODELS):
            group = part[part["model"] == label]
            mean = group.groupby("length")["score"].mean()
            x = list(range(len(mean))) if task != "order" else [k]
            line = ax.plot([v + 0.04 * (k - 2) for v in x], mean.values, marker="o", label=label,
                           ls="-" if task != "order" else "")[0]
            for j, (length, sub) in enumerate(group.groupby("length")):
                xj = (j if task != "order" else k) + 0.04 * (k - 2)
                ax.scatter([xj] * len(sub), sub["score"], color=line.get_color(), alpha=0.35, s=12)
        base = part.groupby("length")["baseline"].first()
        if task == "order":
            ax.axhline(base.iloc[0], color="grey", ls=":", lw=1, label="chance (ln 4)")
            ax.set_xticks(range(len(MODELS)), [m.replace(", ", "\n") for m in MODELS], fontsize=7)
            ax.set_title("temporal order (100-110 steps): test cross-entropy", fontsize=9)
        else:
            ax.plot(range(len(base)), base.values, color="grey", ls=":", lw=1, marker="_", label="baseline")
            ax.set_xticks(range(len(base)), [str(v) for v in base.index])
            ax.set_xlabel("T" if task == "adding" else "lag T")
            ax.set_title("adding problem: test MSE (baseline 1/6)" if task == "adding"
                         else "copy memory: test cross-entropy per step (baseline 10 ln 8/(T+20))", fontsize=9)
        ax.set_yscale("log" if task == "adding" else "linear")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{args.iters} iterations of Adam (lr 1e-3, clip 1), batch 32, hidden 32; mean of "
                 f"{len(args.seeds)} seeds (dots: each seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(frame):
    """The markdown table: per task, length and model, the mean [min, max] over seeds beside the baseline."""
    lines = ["| task | T | model | held-out score: mean [min, max] | baseline: expected (on the held-out batch) | "
             "second score: mean [min, max] | baseline: expected (held-out) |",
             "|---|---|---|---|---|---|---|"]
    names = {"test_mse": "MSE", "test_correct": "within 0.04", "test_ce_per_step": "CE/step",
             "test_recall_accuracy": "symbols right", "test_ce": "CE", "test_accuracy": "accuracy"}
    for (task, length, model), group in frame.groupby(["task", "length", "model"], sort=False):
        s, t = group["score"], group["second"]
        lines.append(f"| {task} | {length} | {model} | {names[group['score_name'].iloc[0]]} {s.mean():.4f} "
                     f"[{s.min():.4f}, {s.max():.4f}] | {group['baseline'].iloc[0]:.4f} "
                     f"({group['heldout_baseline'].iloc[0]:.4f}) | "
                     f"{names[group['second_name'].iloc[0]]} {t.mean():.3f} [{t.min():.3f}, {t.max():.3f}] | "
                     f"{group['second_baseline'].iloc[0]:.3f} ({group['second_heldout_baseline'].iloc[0]:.3f}) |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/long-range")
    parser.add_argument("--iters", type=int, default=1500)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--seeds", type=ints, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where long-range.csv/png/md go")
    args = parser.parse_args()

    import pandas as pd

    t0 = time.perf_counter()
    rows, ran = run_sweeps(args)
    frame = pd.DataFrame(rows)
    wall = time.perf_counter() - t0
    order = {m: k for k, m in enumerate(MODELS)}
    frame = frame.sort_values(["task", "length", "model", "seed"], key=lambda c: c.map(order) if c.name == "model" else c)
    frame["task"] = pd.Categorical(frame["task"], list(TASKS))
    frame = frame.sort_values(["task", "length"], kind="stable").reset_index(drop=True)
    docs = Path(args.docs)
    frame.to_csv(docs / "long-range.csv", index=False)
    plot(frame, docs / "long-range.png", args)
    page = docs / "long-range.md"
    text = page.read_text() if page.exists() else f"{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    section = (f"{BEGIN}\n_Written by `python benchmarks/study_long_range.py --iters {args.iters} --seeds "
               f"{','.join(map(str, args.seeds))} --workers {args.workers}`: {len(frame)} runs, "
               f"{frame['train_seconds'].sum() / 60:.1f} minutes of training in all (the runs' own clocks"
               + (f"; this call trained {ran} of them in {wall / 60:.1f} minutes of wall time" if ran else
                  "; every run reused from an earlier call of the script")
               + ")._\n\n"
               f"{table(frame)}\n{END}")
    page.write_text(before + section + after)
    print(table(frame))
    print(f"written: {docs / 'long-range.csv'}, {docs / 'long-range.png'}, {page} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
