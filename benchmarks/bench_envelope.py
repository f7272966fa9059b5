"""The speed envelope: every setting at the binary shape against the default path, and the
busy-neighbour rows.

Part 1, the envelope. At the binary-addition shape (batch 1, T=8, I=2, H=16, O=1),
``fastrnn.train(task="binary", iters=N, seed=0, **settings)`` for each optimizer of
:data:`fastrnn.optim.OPTIMIZERS`, clipping off / by norm / by value, full BPTT and
``bptt_truncate=4``, each activation of :data:`fastrnn.cells.rnn.ACTIVATIONS`, the same
shape trained by ``fastrnn.fit`` on arrays with a softmax head (O=2), and the larger
models (``hidden=32``, ``layers=2``, GRU, LSTM). The registries are read when the script
runs, so an optimizer or activation added to them gets its row. Learning rates at which
the setting does not diverge: 0.01 for Adam-like optimizers, RMSprop, momentum and relu.

Each row's time is the training seconds the result reports over the iterations it
trained (compile and set-up excluded), checked against the wall clock of the call; all
settings run in one process, interleaved (every setting once per round), after one
warm-up round that compiles or loads every kernel; the table gives medians over the
rounds. Columns: the time an iteration, x the default path's, the bound (1.25x the
default for the settings of the envelope; hidden=32 <= 4x, layers=2 <= 2.7x, GRU <= 3x,
LSTM <= 4x), whether the row is within it, and x a plain single-purpose numba loop
written for that setting where there is one (``benchmarks/numba_loop.py`` for the
default SGD settings, ``benchmarks/numba_loop_adam.py`` for Adam), timed on the same
data and iteration count in the same rounds.

Part 2, a busy neighbour. A ``while True: pass`` process, started by this script and not
pinned to a CPU (the OS places it), runs during the "busy" measurements and not during
the "quiet" ones (interleaved, medians):

- ``fit`` at B=32, T=8, I=8, H=64, O=10 with Adam on random arrays, in this process,
  under the default thread policy (``FASTRNN_THREADS=auto``) and with
  ``FASTRNN_THREADS=cpus`` (BLAS threads by the CPUs allowed, ignoring the other work,
  as before the policy); bound: busy <= 1.5x quiet, under the default policy;
- ``python -m fastrnn train --task text --iters N`` as a subprocess (its JSON's
  training seconds), default policy, and forced to two threads (``FASTRNN_THREADS=2``)
  and one; bound: busy under the default policy <= 1.7x the quiet two-thread time.

Writes ``benchmarks/results/envelope.csv`` (every measurement's median, one row each)
and ``envelope.md`` (both tables). ``--quick`` runs a smoke-sized version (for the
tests; its numbers mean nothing). A shared machine's other work shows in every number:
the load average at each measurement is recorded beside it.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, RESULTS, describe, environment  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import optim  # noqa: E402
from fastrnn.cells import rnn as _rnn_cell  # noqa: E402

#: Learning rates where the registry's default of the binary task (0.1) diverges or is
#: not what the setting is used with; everything else takes the task's default.
LR = {"adam": 0.01, "adamw": 0.01, "rmsprop": 0.01, "momentum": 0.01}
ACTIVATION_LR = {"relu": 0.01}

#: The bound of a row relative to the default path (x its time).
ENVELOPE_BOUND = 1.25
LARGER = {"hidden=32": 4.0, "layers=2": 2.7, "cell=gru": 3.0, "cell=lstm": 4.0}

FIT_SHAPE = dict(B=32, T=8, I=8, H=64, O=10)
FIT_BOUND = 1.5
TEXT_BOUND = 1.7
NEIGHBOUR = "while True: pass"

COLUMNS = ["section", "setting", "us_per_iter", "x_default", "bound", "within", "loop", "loop_us_per_iter", "x_loop",
           "iterations", "loop_iterations", "T", "I", "H", "O", "batch", "kernel", "status", "train_s", "wall_s",
           "quiet", "busy", "busy_x_quiet", "threads_quiet", "threads_busy", "load_quiet", "load_busy", "runs",
           "auto_us", "cpus_us", "auto_x_cpus", "threads_auto", "threads_cpus", "decide_us", "limit_us"]


# ---------------------------------------------------------------- the settings


def envelope_settings():
    """[(name, train settings or "fit", bound, loop name or None, bound's reference)] from the registries."""
    rows = [("defaults (sgd)", {}, None, "sgd", "default")]
    for name in optim.OPTIMIZERS:
        if name != "sgd":
            settings = dict(optimizer=name, **({"lr": LR[name]} if name in LR else {}))
            rows.append((f"optimizer={name}", settings, ENVELOPE_BOUND, "adam" if name == "adam" else None, "default"))
    rows.append(("clip=1.0 (by norm)", dict(clip=1.0), ENVELOPE_BOUND, None, "default"))
    rows.append(("clip_value=1.0 (by value)", dict(clip_value=1.0), ENVELOPE_BOUND, None, "default"))
    rows.append(("bptt_truncate=4", dict(bptt_truncate=4), ENVELOPE_BOUND, None, "default"))
    for name in _rnn_cell.ACTIVATIONS:
        settings = dict(activation=name, **({"lr": ACTIVATION_LR[name]} if name in ACTIVATION_LR else {}))
        rows.append((f"activation={name}", settings, ENVELOPE_BOUND, None, "default"))
    rows.append(("fit, softmax head (O=2)", "fit", ENVELOPE_BOUND, None, "default"))
    rows.append(("hidden=32", dict(hidden=32), LARGER["hidden=32"], None, "default"))
    rows.append(("layers=2", dict(layers=2), LARGER["layers=2"], None, "default"))
    rows.append(("cell=gru", dict(cell="gru"), LARGER["cell=gru"], None, "default"))
    rows.append(("cell=lstm", dict(cell="lstm"), LARGER["cell=lstm"], None, "default"))
    return rows


def binary_data(n, seed=0):
    """n sequences of the binary task (X (n, 8, 2), Y (n, 8, 1)), drawn as the task draws them."""
    from fastrnn.training import resolve_settings

    task, _ = resolve_settings(task="binary")
    batch = task.sample(np.random.default_rng([seed, 1]), n)
    return np.ascontiguousarray(batch.X, dtype=np.float64), np.ascontiguousarray(batch.Y, dtype=np.float64)


class _Train:
    """One envelope row: ``fastrnn.train(task="binary", ...)`` or ``fit`` on the task's arrays."""

    def __init__(self, name, settings, iters, data):
        self.name, self.settings, self.iters, self.data = name, settings, iters, data

    def __call__(self, iters=None):
        iters = iters or self.iters
        t0 = time.perf_counter()
        if self.settings == "fit":
            X, Y = self.data
            Y2 = np.concatenate([1.0 - Y, Y], axis=2)  # the bit as two classes
            model = fastrnn.RNN(2, 16, 2, activation="sigmoid", head="softmax", seed=0)
            result = fastrnn.fit(model, X[:iters], Y2[:iters], epochs=1, batch=1, optimizer="sgd", lr=0.1, clip=None,
                                 shuffle=False, log_every=100)
            shape = dict(T=X.shape[1], I=2, H=16, O=2, batch=1)
        else:
            result = fastrnn.train(task="binary", iters=iters, seed=0, **self.settings)
            s = result.settings
            shape = dict(T=s["bits"], I=2, H=s["hidden"], O=1, batch=s["batch"])
        wall = time.perf_counter() - t0
        return dict(train_s=result.train_seconds, wall_s=wall, iterations=result.iterations, status=result.status,
                    kernel=getattr(result.kernel, "name", ""), **shape)


class _Loop:
    """A single-purpose numba loop on the binary task's arrays."""

    def __init__(self, name, iters, data):
        self.name, self.iters, self.data = name, iters, data
        if name == "adam":
            import numba_loop_adam as module

            self.lr = 0.01
        else:
            import numba_loop as module

            self.lr = 0.1
        self.module = module

    def __call__(self, iters=None):
        iters = iters or self.iters
        X, Y = self.data
        params = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=0).params
        trainer = self.module.Trainer(params, "sigmoid", "sigmoid", self.lr)
        t0 = time.perf_counter()
        trainer.train(X, Y, iters)
        wall = time.perf_counter() - t0
        return dict(train_s=wall, wall_s=wall, iterations=iters, T=X.shape[1], I=X.shape[2], H=16, O=Y.shape[2],
                    batch=1)


def _load():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def measure_envelope(iters, rounds):
    """The envelope rows (dicts of COLUMNS), medians over ``rounds`` interleaved rounds."""
    data = binary_data(iters)
    rows = envelope_settings()
    contenders = [_Train(name, settings, iters, data) for name, settings, *_ in rows]
    loops = {kind: _Loop(kind, iters, data) for kind in sorted({r[3] for r in rows if r[3]})}
    everything = contenders + list(loops.values())
    for c in everything:  # compile or load every kernel
        c(min(iters, 200))
    runs = {c.name: [] for c in contenders}
    runs.update({f"loop:{k}": [] for k in loops})
    loads = []
    for _ in range(rounds):
        for c in contenders:
            runs[c.name].append(c())
        for k, loop in loops.items():
            runs[f"loop:{k}"].append(loop())
        loads.append(_load())

    def per_iter(key):
        got = runs[key]
        for r in got:  # the training seconds must fit inside the call's wall clock
            if not 0.0 < r["train_s"] <= r["wall_s"] + 1e-9:
                raise RuntimeError(f"{key}: training seconds {r['train_s']} outside the call's wall time {r['wall_s']}")
        return statistics.median(r["train_s"] / max(r["iterations"], 1) for r in got) * 1e6

    default = per_iter(rows[0][0])
    out = []
    for name, _, bound, loop, _ in rows:
        us = per_iter(name)
        last = runs[name][-1]
        within = "reference" if bound is None else "yes" if us / default <= bound + 1e-12 else "no"
        row = dict(section="envelope", setting=name, us_per_iter=us, x_default=us / default, bound=bound,
                   within=within, iterations=last["iterations"],
                   kernel=last["kernel"], status=last["status"], train_s=statistics.median(r["train_s"] for r in runs[name]),
                   wall_s=statistics.median(r["wall_s"] for r in runs[name]), runs=len(runs[name]),
                   load_quiet=statistics.median(loads), **{k: last[k] for k in ("T", "I", "H", "O", "batch")})
        if loop:
            loop_us = per_iter(f"loop:{loop}")
            row.update(loop=loops[loop].module.Trainer.name, loop_us_per_iter=loop_us, x_loop=us / loop_us,
                       loop_iterations=runs[f"loop:{loop}"][-1]["iterations"])
        out.append(row)
    return out


# ---------------------------------------------------------------- the neighbour


class Neighbour:
    """A ``while True: pass`` process (not pinned) while inside the block."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        time.sleep(0.5)  # running, and in the load the thread policy reads
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        time.sleep(0.3)


def _fit_data(N):
    s = FIT_SHAPE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, s["T"], s["I"]))
    Y = np.eye(s["O"])[rng.integers(0, s["O"], (N, s["T"]))]
    return X, Y


def _fit_once(X, Y, epochs, policy):
    os.environ["FASTRNN_THREADS"] = policy
    s = FIT_SHAPE
    model = fastrnn.RNN(s["I"], s["H"], s["O"], seed=0)
    result = fastrnn.fit(model, X, Y, epochs=epochs, batch=s["B"], optimizer="adam", lr=0.01, shuffle=False,
                         log_every=10)
    return result.train_seconds / result.iterations * 1e6, (result.thread_use or {}).get("blas", {}).get("n")


def _text_once(iters, policy, folder):
    env = dict(os.environ, FASTRNN_THREADS=policy, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    csv_path = Path(folder) / "text.csv"
    cmd = [sys.executable, "-m", "fastrnn", "train", "--task", "text", "--iters", str(iters), "--csv", str(csv_path),
           "--overwrite"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    result = json.loads(csv_path.with_suffix(".json").read_text())["result"]
    return result["train_seconds"] / result["iterations_done"] * 1e6, result.get("threads")


def measure_neighbour(rounds, fit_n, fit_epochs, text_iters, warm=True):
    """The busy-neighbour rows: fit and the text model, quiet and beside the neighbour."""
    X, Y = _fit_data(fit_n)
    before = os.environ.get("FASTRNN_THREADS")
    cases = [("fit B=32 T=8 I=8 H=64 O=10 (adam)", "auto"), ("fit B=32 T=8 I=8 H=64 O=10 (adam)", "cpus"),
             ("text model, batch 1 (command)", "auto"), ("text model, batch 1 (command)", "2"),
             ("text model, batch 1 (command)", "1")]
    got = {(c, p, w): [] for c, p in cases for w in ("quiet", "busy")}
    threads = {}
    loads = {"quiet": [], "busy": []}
    with tempfile.TemporaryDirectory() as folder:
        _fit_once(X[:64], Y[:64], 1, "auto")  # compile or load
        if warm:  # the text kernel compiled or loaded once before the measured runs
            _text_once(min(text_iters, 200), "1", folder)
        try:
            for _ in range(rounds):
                for when in ("quiet", "busy"):
                    ctx = Neighbour() if when == "busy" else _Nothing()
                    with ctx:
                        loads[when].append(_load())
                        for case, policy in cases:
                            if case.startswith("fit"):
                                us, n = _fit_once(X, Y, fit_epochs, policy)
                            else:
                                us, n = _text_once(text_iters, policy, folder)
                            got[(case, policy, when)].append(us)
                            threads.setdefault((case, policy, when), []).append(n)
        finally:
            if before is None:
                os.environ.pop("FASTRNN_THREADS", None)
            else:
                os.environ["FASTRNN_THREADS"] = before
    out = []
    for case, policy in cases:
        quiet = statistics.median(got[(case, policy, "quiet")])
        busy = statistics.median(got[(case, policy, "busy")])
        row = dict(section="neighbour", setting=f"{case}, FASTRNN_THREADS={policy}", quiet=quiet, busy=busy,
                   busy_x_quiet=busy / quiet, threads_quiet=_counts(threads[(case, policy, "quiet")]),
                   threads_busy=_counts(threads[(case, policy, "busy")]), load_quiet=statistics.median(loads["quiet"]),
                   load_busy=statistics.median(loads["busy"]), runs=len(got[(case, policy, "busy")]),
                   iterations=(fit_n // FIT_SHAPE["B"]) * fit_epochs if case.startswith("fit") else text_iters)
        if policy == "auto":
            if case.startswith("fit"):
                row.update(bound=FIT_BOUND, within="yes" if busy / quiet <= FIT_BOUND else "no")
            else:
                two = statistics.median(got[(case, "2", "quiet")])
                row.update(bound=TEXT_BOUND, x_default=busy / two, within="yes" if busy / two <= TEXT_BOUND else "no")
        out.append(row)
    return out


def measure_policy_cost(rounds, iters, looks=2000):
    """What the thread policy costs at the digit-addition shape (B=32, T=10, I=20, H=100, O=10):
    ``fastrnn.train(task="digits")`` under the default policy against ``FASTRNN_THREADS=cpus``
    (the CPUs allowed, no load check, no limit around the chunks), interleaved, medians; and
    the decision's own time (a load reading and the policy) and a BLAS limit's set-and-restore."""
    from fastrnn import cpus

    before = os.environ.get("FASTRNN_THREADS")
    got = {"auto": [], "cpus": []}
    threads = {"auto": [], "cpus": []}
    loads = []
    try:
        for policy in got:  # compile or load
            os.environ["FASTRNN_THREADS"] = policy
            fastrnn.train(task="digits", iters=100, seed=0)
        for _ in range(rounds):
            loads.append(_load())
            for policy in got:
                os.environ["FASTRNN_THREADS"] = policy
                r = fastrnn.train(task="digits", iters=iters, seed=0)
                got[policy].append(r.train_seconds / r.iterations * 1e6)
                threads[policy].append((r.thread_use or {}).get("blas", {}).get("n"))
        os.environ["FASTRNN_THREADS"] = "auto"
        n = looks
        t0 = time.perf_counter()
        for _ in range(n):
            cpus.METER.last = None  # a reading of /proc each time, as a run's first decision
            cpus.threads("blas", 2, work=10**7)
        decide = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        for _ in range(n):
            with cpus.blas_limited(1):
                pass
        limit = (time.perf_counter() - t0) / n * 1e6
    finally:
        if before is None:
            os.environ.pop("FASTRNN_THREADS", None)
        else:
            os.environ["FASTRNN_THREADS"] = before
    auto, plain = statistics.median(got["auto"]), statistics.median(got["cpus"])
    return [dict(section="policy", setting="digits B=32 T=10 I=20 H=100 O=10 (adam), FASTRNN_THREADS=auto vs cpus",
                 auto_us=auto, cpus_us=plain, auto_x_cpus=auto / plain, threads_cpus=_counts(threads["cpus"]),
                 threads_auto=_counts(threads["auto"]), load_quiet=statistics.median(loads), runs=len(got["auto"]),
                 iterations=iters, bound=1.10, within="yes" if auto / plain <= 1.10 else "no",
                 decide_us=decide, limit_us=limit)]


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _counts(values):
    """"1" or "1,2" (the thread counts seen, most common first)."""
    seen = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    return ",".join(str(k) for k, _ in sorted(seen.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- output


def _fmt(value, digits=2):
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(envelope, neighbour, policy, env):
    lines = [f"Binary shape (batch 1, T=8, I=2, H=16, O=1), {envelope[0]['iterations']} iterations a run, medians of "
             f"{envelope[0]['runs']} interleaved rounds in one process (load average {envelope[0]['load_quiet']:.1f}).", "",
             "| setting | kernel | us an iteration | x the default path | bound | within | x a single-purpose loop |",
             "|---|---|---|---|---|---|---|"]
    for r in envelope:
        loop = f"{r['x_loop']:.2f} ({r['loop']}, {r['loop_us_per_iter']:.2f} us)" if r.get("loop") else "-"
        status = "" if r["status"] == "completed" else f" ({r['status']})"
        bound = "-" if r["bound"] is None else f"<= {r['bound']:g}"
        lines.append(f"| {r['setting']}{status} | {r['kernel']} | {r['us_per_iter']:.2f} | {r['x_default']:.2f} | "
                     f"{bound} | {r['within']} | {loop} |")
    if neighbour:
        lines += ["", "Beside a busy neighbour (`while True: pass`, started by the benchmark, not pinned): us an "
                  "iteration, medians; threads: BLAS's for fit, the text kernel's for the text model.", "",
                  "| run | quiet | busy | busy / quiet | threads quiet | threads busy | bound | within |",
                  "|---|---|---|---|---|---|---|---|"]
    for r in neighbour:
        bound = "-"
        if r.get("bound"):
            bound = (f"busy <= {r['bound']:g}x quiet" if r["setting"].startswith("fit") else
                     f"busy <= {r['bound']:g}x quiet two-thread (now {r['x_default']:.2f}x)")
        lines.append(f"| {r['setting']} | {r['quiet']:.1f} | {r['busy']:.1f} | {r['busy_x_quiet']:.2f} | "
                     f"{r['threads_quiet']} | {r['threads_busy']} | {bound} | {r.get('within', '-')} |")
    if neighbour:
        lines += ["", f"Load average (1 min) at the measurements: quiet {neighbour[0]['load_quiet']:.1f}, "
                      f"busy {neighbour[0]['load_busy']:.1f}."]
    for r in policy:
        lines += ["", "The policy's cost at the digit-addition shape: `fastrnn.train(task=\"digits\")`, us an iteration, "
                      "default policy against `FASTRNN_THREADS=cpus` (no load check, no limit), interleaved, medians "
                      f"(load average {r['load_quiet']:.1f}).", "",
                  "| run | cpus | auto | auto / cpus | BLAS threads cpus | BLAS threads auto | bound | within |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {r['setting'].split(',')[0]} | {r['cpus_us']:.1f} | {r['auto_us']:.1f} | {r['auto_x_cpus']:.3f} | "
                  f"{r['threads_cpus']} | {r['threads_auto']} | <= {r['bound']:g} on a quiet machine | {r['within']} |",
                  "", f"A decision with a fresh load reading takes {r['decide_us']:.1f} us (once a run for BLAS, at most "
                      f"every 0.1 s for the text kernel); holding BLAS to a count around a chunk and restoring it, "
                      f"{r['limit_us']:.1f} us."]
    lines += ["", describe(env)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke size (for the tests; the numbers mean nothing)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for envelope.csv and envelope.md")
    ap.add_argument("--no-neighbour", action="store_true", help="the envelope only")
    args = ap.parse_args(argv)
    if args.quick:
        iters, rounds, nb_rounds, fit_n, fit_epochs, text_iters, digits_iters = 300, 1, 1, 96, 1, 100, 100
    else:
        iters, rounds, nb_rounds, fit_n, fit_epochs, text_iters, digits_iters = 20000, 5, 3, 1600, 2, 2000, 600
    env = environment()
    envelope = measure_envelope(iters, rounds)
    neighbour = [] if args.no_neighbour else measure_neighbour(nb_rounds, fit_n, fit_epochs, text_iters,
                                                                       warm=not args.quick)
    policy = measure_policy_cost(min(rounds, 3), digits_iters, 50 if args.quick else 2000)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "envelope.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS + list(env))
        writer.writeheader()
        for row in envelope + neighbour + policy:
            writer.writerow({**{k: row.get(k, "") for k in COLUMNS}, **env})
    os.replace(tmp, path)
    text = markdown(envelope, neighbour, policy, env)
    (args.out / "envelope.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
