"""Online learning rules on the Add task, at Marschall, Cho & Savin's configuration: test loss and learning curves.

    python benchmarks/study_online.py [--seeds 0,1,2,3,4] [--workers 2] [--docs docs]
    python benchmarks/study_online.py --smoke --docs /tmp/online   # seconds: short runs, for the tests

The configuration (Marschall et al. 2020's reference run, as vanilla-rtrl runs it): the Add
task with t1 = 5, t2 = 9 (inputs (x, 1 - x), soft targets (y, 1 - y), softmax cross-entropy); a
vanilla tanh RNN with 32 hidden units; U and V drawn from N(0, 1/fan_in), W orthogonal (Q of the
QR decomposition of a standard normal matrix, signs of diag(R)), biases 0; online SGD at lr 0.03,
batch 1. Each run trains ``--train`` steps (30,000) on one stream, then runs ``--test`` steps
(10,000) with no updates on a separate stream, the hidden state carried over; its test loss is
the mean loss per step over the test steps.

The rules: RTRL, UORO, KF-RTRL, SnAp-1, RFLO, BPTT(10, 10) and BPTT(1, 10), ``--seeds`` each.
The seed draws the weights, the training and test streams and the rule's own randomness (UORO's
and KF-RTRL's noise, RFLO's feedback matrix). Then, outside the comparison's clock: a small
learning-rate grid (``--grid-lrs``) for every rule whose runs at lr 0.03 fail (a median test
loss above the nothing-learned line, or a run that diverged; UORO and KF-RTRL are known to need
smaller steps), and RFLO with its error fed back through V^T instead of a random matrix. With
``--vanilla-rtrl``, the rules vanilla-rtrl has (its E-BPTT and F-BPTT for the two BPTT rows) run
again in its own code (from $VANILLA_RTRL), from the same weights on the same streams, at lr 0.03
and at the best grid lr of each rule that failed.

Runs go to a process pool (``--workers``, one run a task, one thread each). Writes, under
``--docs``: online.csv (one row per run: rule, seed, lr, test loss, the train loss of the last
1,000 steps, seconds, whether it diverged), online-curves.csv (the mean training loss of every
``--bin`` steps of every run), online.png (the median learning curve of each rule at lr 0.03 and
of the best grid lr, with the three reference lines), and the study section of online.md (between
its markers): the table of test losses, median and range over seeds.
"""

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: the rules of the study, in table order: label -> (fastrnn's rule, its settings)
RULES = {
    "RTRL": ("rtrl", {}),
    "UORO": ("uoro", {}),
    "KF-RTRL": ("kf-rtrl", {}),
    "SnAp-1": ("snap1", {}),
    "RFLO": ("rflo", {}),
    "BPTT(10,10)": ("bptt", dict(k1=10, k2=10)),
    "BPTT(1,10)": ("bptt", dict(k1=1, k2=10)),
}
#: run after the main comparison (not part of its clock): RFLO with the error fed back through V^T
VARIANTS = {"RFLO, feedback V^T": ("rflo", dict(feedback="symmetric"))}
#: vanilla-rtrl's own rules for the same runs (--vanilla-rtrl): label -> (the port's name, its settings)
VANILLA = {"RTRL": ("rtrl", {}), "UORO": ("uoro", {}), "KF-RTRL": ("kf-rtrl", {}), "RFLO": ("rflo", {}),
           "BPTT(10,10)": ("ebptt", dict(T=10)), "BPTT(1,10)": ("fbptt", dict(T=10))}
#: the reference lines of the Add task (t1 = 5, t2 = 9), expected loss per step
LINES = {"nothing learned": 0.6616, "only t1": 0.5192, "optimal": 0.4544}
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"
HIDDEN = 32
LR = 0.03


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def study_model(seed, n_hidden=HIDDEN):
    """The study's network: U, V ~ N(0, 1/fan_in), W orthogonal, biases 0 (drawn from ``seed``)."""
    import fastrnn
    from fastrnn.inits import orthogonal_matrix

    model = fastrnn.RNN(2, n_hidden, 2, activation="tanh", head="softmax", seed=seed)
    rng = np.random.default_rng([seed, 11])
    model.params["U0"][...] = rng.normal(0.0, math.sqrt(1.0 / 2), (n_hidden, 2))
    model.params["W0"][...] = orthogonal_matrix(rng, n_hidden)
    model.params["V"][...] = rng.normal(0.0, math.sqrt(1.0 / n_hidden), (2, n_hidden))
    model.params["b0"][...] = 0.0
    model.params["c"][...] = 0.0
    return model


def streams(seed, train_steps, test_steps):
    """The training stream and the separate test stream of one run: fastrnn's add task, drawn from the
    generators ``fastrnn train --task add --seed S`` draws them from ([S, 1] and [S, TEST_STREAM])."""
    from fastrnn.tasks import make_task
    from fastrnn.tasks._stream import TEST_STREAM

    task = make_task("add")
    Xtr, Ytr = task.stream(np.random.default_rng([seed, 1]), train_steps, 1)
    Xte, Yte = task.stream(np.random.default_rng([seed, TEST_STREAM]), test_steps, 1)
    return Xtr, Ytr, Xte, Yte


def run_one(job):
    """One run (in a worker): train, then test with the state carried; the row and the binned curve."""
    from threadpoolctl import threadpool_limits

    import numba

    threadpool_limits(1)
    numba.set_num_threads(1)

    label, lr, seed, train_steps, test_steps, bin_size, implementation = job
    model = study_model(seed)
    Xtr, Ytr, Xte, Yte = streams(seed, train_steps, test_steps)
    t0 = time.perf_counter()
    if implementation == "fastrnn":
        from fastrnn import online

        rule, settings = {**RULES, **VARIANTS}[label]
        train = online.run(model, Xtr, Ytr, rule=rule, lr=lr, seed=seed, **settings)
        test = online.run(model, Xte, Yte, rule=rule, lr=lr, state=train.state, train=False, seed=seed, **settings)
        losses, test_losses = train.losses, test.losses
    else:
        losses, test_losses = vanilla_rtrl_run(model, label, lr, seed, Xtr[0], Ytr[0], Xte[0], Yte[0])
    seconds = time.perf_counter() - t0
    losses = np.asarray(losses, dtype=np.float64).ravel()
    test_loss = float(np.mean(np.asarray(test_losses, dtype=np.float64)))
    diverged = not (np.all(np.isfinite(losses)) and math.isfinite(test_loss))
    n_bins = len(losses) // bin_size
    curve = losses[: n_bins * bin_size].reshape(n_bins, bin_size).mean(axis=1)
    row = dict(rule=label, implementation=implementation, seed=seed, lr=lr, test_loss=test_loss,
               train_loss_last_1000=float(np.mean(losses[-1000:])), train_steps=train_steps, test_steps=test_steps,
               diverged=diverged, seconds=seconds)
    return row, [dict(rule=label, implementation=implementation, seed=seed, lr=lr, step=(i + 1) * bin_size,
                      loss=round(float(v), 6)) for i, v in enumerate(curve)]


def vanilla_rtrl_run(model, label, lr, seed, Xtr, Ytr, Xte, Yte):
    """The same run in vanilla-rtrl's own code (from $VANILLA_RTRL): its Simulation trains from the model's
    weights on the same stream (its noise from np.random.seed(seed), RFLO's W_FB the feedback matrix of
    fastrnn's run); the test steps run its forward step with the state carried. Per-step losses of both."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import vanilla_rtrl_port as port

    VR, why = port.import_vanilla_rtrl()
    if VR is None:
        raise RuntimeError(f"vanilla-rtrl: {why}")
    p = model.params
    params = [p["W0"].copy(), p["U0"].copy(), p["b0"].copy(), p["V"].copy(), p["c"].copy()]
    name, kw = VANILLA[label]
    settings = port.rule_settings(name, 2, model.n_hidden, 2, seed, **kw)
    if name in ("uoro", "kf-rtrl"):  # vanilla-rtrl's own draw of the starting factors
        settings = dict(A=None, B=None)
    if name == "rflo":  # the feedback matrix fastrnn's run of this seed uses
        from fastrnn import online

        settings["W_FB"] = online.OnlineState.new(model, "rflo", {}, 1, seed=seed).arrays["feedback"]
    np.random.seed(seed)  # before the objects are built: UORO and KF-RTRL draw their factors then
    with np.errstate(all="ignore"):  # a diverging run is reported as diverged, not as warnings
        final, losses, state = port.vanilla_rtrl_train(VR, params, name, settings, Xtr, Ytr, lr, return_state=True)
        net = port.Net(final[1], final[0], final[3], final[2], final[4])
        net.a = state
        return losses, port.evaluate(net, Xte, Yte)


def run_jobs(jobs, workers):
    """Every job in a pool of ``workers`` spawned processes (one thread each); rows and curves in job order."""
    import multiprocessing

    if workers <= 1:
        out = [run_one(j) for j in jobs]
    else:
        env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}
        os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                # the slowest rules first, so that the two workers finish together
                order = sorted(range(len(jobs)), key=lambda i: (jobs[i][6] == "fastrnn", jobs[i][0] != "RTRL"))
                done = dict(zip(order, pool.map(run_one, [jobs[i] for i in order])))
            out = [done[i] for i in range(len(jobs))]
        finally:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    rows = [r for r, _ in out]
    curves = [c for _, cs in out for c in cs]
    return rows, curves


def failing(rows, label):
    """Whether a rule's runs at lr 0.03 fail: median test loss above the nothing-learned line, or a divergence."""
    mine = [r for r in rows if r["rule"] == label and r["lr"] == LR and r.get("implementation", "fastrnn") == "fastrnn"]
    losses = [r["test_loss"] for r in mine]
    return any(r["diverged"] for r in mine) or not (np.median(losses) <= LINES["nothing learned"])


def best_lrs(rows, labels):
    """Each rule's grid lr (not 0.03) with the lowest median test loss of fastrnn's runs."""
    best = {}
    for label in labels:
        medians = {}
        for r in rows:
            if r["rule"] == label and r["lr"] != LR and r["implementation"] == "fastrnn":
                medians.setdefault(r["lr"], []).append(r["test_loss"] if math.isfinite(r["test_loss"]) else math.inf)
        if medians:
            best[label] = min(medians, key=lambda lr: np.median(medians[lr]))
    return best


def summary(frame):
    """Per rule and lr: median, min and max test loss over seeds, and how many seeds reach each line."""
    out = []
    for (label, impl, lr), g in frame.groupby(["rule", "implementation", "lr"], sort=False):
        t = g["test_loss"]
        finite = t[np.isfinite(t)]
        out.append(dict(rule=label, implementation=impl, lr=lr, seeds=len(g), diverged=int(g["diverged"].sum()),
                        median=float(np.median(t)) if len(finite) == len(t) else float("nan"),
                        low=float(finite.min()) if len(finite) else float("nan"),
                        high=float(finite.max()) if len(finite) else float("nan"),
                        below_t1=int((finite < LINES["only t1"]).sum()),
                        near_optimum=int((finite < LINES["optimal"] + 0.01).sum())))
    return out


def table(frame):
    lines = ["| rule | implementation | lr | test loss: median [min, max] | seeds below the t1 line (0.5192) | seeds within 0.01 of the "
             "optimum (0.4544) | diverged |", "|---|---|---|---|---|---|---|"]
    for s in summary(frame):
        med = "diverged" if math.isnan(s["median"]) else f"{s['median']:.4f}"
        rng = "" if math.isnan(s["low"]) else f" [{s['low']:.4f}, {s['high']:.4f}]"
        lines.append(f"| {s['rule']} | {s['implementation']} | {s['lr']:g} | {med}{rng} | {s['below_t1']}/{s['seeds']} | "
                     f"{s['near_optimum']}/{s['seeds']} | {s['diverged']} |")
    return "\n".join(lines)


def plot(frame, curves, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    frame = frame[frame["implementation"] == "fastrnn"]
    curves = curves[curves["implementation"] == "fastrnn"]
    best = {}
    for s in summary(frame):
        if not math.isnan(s["median"]) and (s["rule"] not in best or s["median"] < best[s["rule"]][1]):
            best[s["rule"]] = (s["lr"], s["median"])
    for ax, which in zip(axes, ("lr", "best")):
        for label in [*RULES, *VARIANTS]:
            lr = LR if which == "lr" else best.get(label, (LR, 0))[0]
            part = curves[(curves["rule"] == label) & (curves["lr"] == lr)]
            if part.empty:
                continue
            med = part.groupby("step")["loss"].median()
            ax.plot(med.index, med.values, label=f"{label} (lr {lr:g})", lw=1.2)
        for (name, value), ls in zip(LINES.items(), (":", "--", "-.")):
            ax.axhline(value, color="black", ls=ls, lw=0.9, label=f"{name} ({value})")
        ax.set_xlabel("training step")
        ax.set_ylim(0.40, 0.80)
        ax.grid(alpha=0.3)
        ax.set_title("lr 0.03" if which == "lr" else "each rule at its best lr of the grid", fontsize=10)
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    axes[0].set_ylabel(f"training loss (mean of {args.bin} steps; median over seeds)")
    fig.suptitle(f"Add task (t1 5, t2 9), n_h {HIDDEN}, online SGD at batch 1: {args.train} training steps, "
                 f"{len(args.seeds)} seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe_machine(workers):
    """One sentence: where and with what the study ran (benchmarks/_common.py's environment)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _common

    env = _common.environment()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"Ran {env['date'][:10]} on {env['cpu']} ({env['cores']} cores, load average {load:.1f} at the end), Python "
            f"{env['python']}, numpy {env['numpy']}, numba {env['numba']}; each worker process one BLAS thread and "
            f"one numba thread.")


def write_section(page, section):
    text = page.read_text() if page.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    page.write_text(before + BEGIN + "\n" + section + "\n" + END + after)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=ints, default=[0, 1, 2, 3, 4])
    parser.add_argument("--train", type=int, default=30000, help="training steps of a run")
    parser.add_argument("--test", type=int, default=10000, help="test steps of a run (no updates, state carried)")
    parser.add_argument("--bin", type=int, default=500, help="steps a point of the learning curves averages")
    parser.add_argument("--grid-lrs", type=floats, default=[0.01, 0.003, 0.001],
                        help="the learning rates tried for the rules that fail at 0.03")
    parser.add_argument("--no-grid", action="store_true", help="run lr 0.03 only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vanilla-rtrl", action="store_true", help="also run the rules vanilla-rtrl has in its own "
                        "code (from $VANILLA_RTRL), from the same weights on the same streams")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="folder of online.csv, online-curves.csv, "
                        "online.png and online.md")
    parser.add_argument("--smoke", action="store_true", help="seconds: 2 seeds, 1,200 + 400 steps, one grid lr")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.train, args.test, args.bin, args.grid_lrs = [0, 1], 1200, 400, 200, [0.003]
    if args.vanilla_rtrl:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import vanilla_rtrl_port as port

        if port.import_vanilla_rtrl()[0] is None:
            parser.error(f"--vanilla-rtrl: {port.import_vanilla_rtrl()[1]}; clone github.com/omarschall/vanilla-rtrl "
                         f"and set ${port.ENV} to it, or leave --vanilla-rtrl out")
    if args.train < max(args.bin, 1000):
        parser.error(f"--train must be at least 1000 and at least --bin ({args.bin}); got {args.train}")

    import pandas as pd

    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(label, LR, seed, args.train, args.test, args.bin, "fastrnn") for label in RULES for seed in args.seeds]
    rows, curves = run_jobs(jobs, args.workers)
    main_wall = time.perf_counter() - t0
    print(f"{len(jobs)} runs at lr {LR} in {main_wall:.1f} s on {args.workers} workers", flush=True)
    grid_rules = [] if args.no_grid else [label for label in RULES if failing(rows, label)]
    t1 = time.perf_counter()
    jobs = [(label, lr, seed, args.train, args.test, args.bin, "fastrnn") for label in grid_rules
            for lr in args.grid_lrs for seed in args.seeds]
    jobs += [(label, LR, seed, args.train, args.test, args.bin, "fastrnn") for label in VARIANTS for seed in args.seeds]
    more, more_curves = run_jobs(jobs, args.workers)
    rows += more
    curves += more_curves
    extra_wall = time.perf_counter() - t1
    print(f"lr grid {args.grid_lrs} for {', '.join(grid_rules) or 'no rule'} and {', '.join(VARIANTS)}: "
          f"{len(jobs)} runs in {extra_wall:.1f} s", flush=True)
    vanilla_wall = None
    if args.vanilla_rtrl:
        t2 = time.perf_counter()
        jobs = [(label, LR, seed, args.train, args.test, args.bin, "vanilla-rtrl") for label in VANILLA
                for seed in args.seeds]
        best = best_lrs(rows, grid_rules)  # the grid's best lr of each failing rule, not the whole grid
        jobs += [(label, best[label], seed, args.train, args.test, args.bin, "vanilla-rtrl") for label in best
                 if label in VANILLA for seed in args.seeds]
        more, more_curves = run_jobs(jobs, args.workers)
        rows += more
        curves += more_curves
        vanilla_wall = time.perf_counter() - t2
        print(f"vanilla-rtrl: {len(jobs)} runs in {vanilla_wall:.1f} s", flush=True)
    frame = pd.DataFrame(rows)
    curves = pd.DataFrame(curves)
    frame.to_csv(docs / "online.csv", index=False)
    curves.to_csv(docs / "online-curves.csv", index=False)
    plot(frame, curves, docs / "online.png", args)
    command = "python benchmarks/study_online.py" + (" --smoke" if args.smoke else "") + (
        " --vanilla-rtrl" if args.vanilla_rtrl else "")
    section = (f"_Written by `{command}`: {len(frame)} runs of {args.train:,} training and {args.test:,} test steps, "
               f"seeds {','.join(map(str, args.seeds))}. The {len(RULES) * len(args.seeds)} fastrnn runs at lr {LR} "
               f"took {main_wall:.0f} s of wall time on {args.workers} worker processes (start-up included); the lr "
               f"grid ({', '.join(grid_rules) or 'no rule'} at lr {', '.join(f'{v:g}' for v in args.grid_lrs)}) and "
               f"the {', '.join(VARIANTS)} runs took {extra_wall:.0f} s more"
               + (f"; the same runs in vanilla-rtrl's own code {vanilla_wall:.0f} s" if vanilla_wall is not None else "")
               + "._ " + describe_machine(args.workers) + "\n\n" + table(frame))
    write_section(docs / "online.md", section)
    print(table(frame))
    print(f"written: {docs / 'online.csv'}, {docs / 'online-curves.csv'}, {docs / 'online.png'}, "
          f"{docs / 'online.md'} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
