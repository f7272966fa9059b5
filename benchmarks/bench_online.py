"""Online learning rules: microseconds a training step, fastrnn against vanilla-rtrl, one thread.

    VANILLA_RTRL=/path/to/vanilla-rtrl python benchmarks/bench_online.py [--sizes 32,64,128] [--repeats 5]
    python benchmarks/bench_online.py --smoke --out /tmp/speed      # seconds: n_h 8, for the tests

vanilla-rtrl is not installed with fastrnn: clone github.com/omarschall/vanilla-rtrl anywhere
(it needs numpy and scipy) and point $VANILLA_RTRL at the clone.

Each rule trains a vanilla tanh RNN (2 inputs, 2 softmax outputs, n_h hidden units) online at
batch 1 with SGD at lr 0.03 on the Add task's stream (t1 = 5, t2 = 9), one update a step (BPTT
every k1 steps). The contenders, in one process, on the same data from the same start:

``fastrnn``       ``fastrnn.online.run``: the compiled driver (compile time measured apart,
                  on its first call)
``vanilla-rtrl``  omarschall/vanilla-rtrl's own ``Simulation.run`` with its learning algorithm
                  and SGD, imported from the checkout named by $VANILLA_RTRL (skipped, with a
                  line saying so, where it is absent)
``port``          benchmarks/vanilla_rtrl_port.py: the same numpy operations without the
                  Simulation around them; the reference where vanilla-rtrl is absent, and for
                  SnAp-1, which vanilla-rtrl does not have (the port writes it in its style)

Before any time counts, each contender is checked to compute the same update: from the same
start on the same stream, its weights after CHECK_STEPS steps must equal the reference's within
a stated tolerance (the port against vanilla-rtrl; fastrnn against the port). UORO and KF-RTRL
draw noise: the port starts from fastrnn's initial factors and replays fastrnn's generator
(splitmix64) for the signs, so their check is exact too. vanilla-rtrl has no rule that is
Williams & Peng's BPTT(k1, k2) update for update: its E-BPTT(10) updates the output weights at
every step (BPTT(10, 10) updates every weight once a window), and its F-BPTT(10) delays each
gradient by 9 steps and backpropagates each error as it arrives (BPTT(1, 10) sends each step's
error 9 steps back at once). fastrnn's BPTT is checked against the port's Williams & Peng twin;
E-BPTT and F-BPTT are checked against their ports and timed as the library's nearest rules.

Timing: one BLAS thread (threadpoolctl) and one numba thread; a warm-up run of every contender,
then REPEATS rounds in which every contender runs once in turn (interleaved), each from the same
start over a stream long enough to last about --budget seconds; the median us/step over rounds
is reported with the min and max, and the median of the process's CPU time per step beside it. The machine's dgemm speed is measured in the same process (numpy's BLAS,
one thread: the RTRL product's own shape H x H times H x H(H+I+1), and a 512^3 product as the
peak), and RTRL's GFLOP/s (2 H^2 P flops a step for W M, P = H(H+I+1)) is reported against it.

Writes benchmarks/results/online_speed.csv (one row per size, rule and contender, with the
environment columns) and online_speed.md (the tables), or both under --out, and puts the tables
in docs/online.md between its speed markers (--docs; not with --smoke unless asked).
"""

import argparse
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # one thread for every BLAS and OpenMP pool, also those loaded later (SciPy's)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
import vanilla_rtrl_port as port  # noqa: E402

#: the rules, in table order: name -> (fastrnn's rule and settings, vanilla-rtrl's rule and settings or
#: None, the port's twin of fastrnn's rule). UORO and KF-RTRL run with eps = 0 (vanilla-rtrl's form).
RULES = {
    "RTRL": (("rtrl", {}), ("rtrl", {}), ("rtrl", {})),
    "UORO": (("uoro", dict(eps=0.0)), ("uoro", {}), ("uoro", {})),
    "KF-RTRL": (("kf-rtrl", dict(eps=0.0)), ("kf-rtrl", {}), ("kf-rtrl", {})),
    "SnAp-1": (("snap1", {}), None, ("snap1", {})),
    "RFLO": (("rflo", {}), ("rflo", {}), ("rflo", {})),
    "BPTT(10,10)": (("bptt", dict(k1=10, k2=10)), ("ebptt", dict(T=10)), ("wpbptt", dict(k1=10, k2=10))),
    "BPTT(1,10)": (("bptt", dict(k1=1, k2=10)), ("fbptt", dict(T=10)), ("wpbptt", dict(k1=1, k2=10))),
}
#: speed targets at n_h = 32: fastrnn's step at least this many times faster than vanilla-rtrl's
TARGETS = {"RTRL": 3.0, "UORO": 30.0, "KF-RTRL": 30.0, "SnAp-1": 30.0, "RFLO": 30.0, "BPTT(10,10)": 30.0,
           "BPTT(1,10)": 30.0}
LR = 0.03
T1, T2 = 5, 9
N_IN = N_OUT = 2
CHECK_STEPS = 40
#: largest |difference| of any weight after CHECK_STEPS steps for "the same update" (float64)
TOL_PORT = 1e-12  # the port against vanilla-rtrl: the same numpy operations in the same order
TOL_FASTRNN = 1e-9  # fastrnn against the port: the same math, other operation order (rounding only)


def add_stream(steps, seed, t1=T1, t2=T2):
    """The Add task's stream: x_t ~ Bernoulli(0.5) as (x, 1 - x), soft targets (y, 1 - y) with
    y_t = 0.5 + 0.5 x_{t-t1} - 0.25 x_{t-t2}. The inputs before the first step are drawn too, so
    every step's target depends on inputs the network may or may not have seen (no wrap-around)."""
    rng = np.random.default_rng([seed, 7])
    x = rng.integers(0, 2, steps + t2).astype(float)
    y = 0.5 + 0.5 * x[t2 - t1:t2 - t1 + steps] - 0.25 * x[:steps]
    x = x[t2:]
    return np.stack([x, 1 - x], 1), np.stack([y, 1 - y], 1)


# --- fastrnn -------------------------------------------------------------------------------------

def fastrnn_model(params):
    """A fastrnn model holding the port-ordered ``params`` (W_rec, W_in, b_rec, W_out, b_out)."""
    import fastrnn

    W_rec, W_in, b_rec, W_out, b_out = params
    model = fastrnn.RNN(W_in.shape[1], W_in.shape[0], W_out.shape[0], activation="tanh", head="softmax")
    for name, value in zip(("W0", "U0", "b0", "V", "c"), params):
        model.params[name][...] = value
    return model


def fastrnn_weights(model):
    return [model.params[k].copy() for k in ("W0", "U0", "b0", "V", "c")]


def fastrnn_start(params, rule, settings, seed):
    """A fresh stream's state for ``rule`` (its random starts drawn from ``seed``)."""
    from fastrnn import online

    return online.OnlineState.new(fastrnn_model(params), rule, settings, 1, seed=seed)


def fastrnn_run(params, rule, settings, state0, X, Y, lr):
    """fastrnn's online training from ``params`` and the rule state ``state0``; the final weights (port order)."""
    from fastrnn import online

    model = fastrnn_model(params)
    online.run(model, X[None], Y[None], rule=rule, lr=lr, state=state0, **settings)
    return fastrnn_weights(model)


def port_twin_of_fastrnn(params, twin, state0, X, Y, lr):
    """The port's twin trained from the start fastrnn's run had: its noise factors and generator (UORO,
    KF-RTRL, reordered from fastrnn's layout), its feedback matrix (RFLO)."""
    net = port.Net(params[1], params[0], params[3], params[2], params[4])
    name, kw = twin
    kw = dict(kw)
    rng = None
    I, H = net.n_in, net.n_h
    if name == "uoro":
        Bf = state0.arrays["b"][0]  # theta's layout: U (H, I), W (H, H), b (H)
        B = np.concatenate([Bf[H * I:H * (I + H)].reshape(H, H), Bf[:H * I].reshape(H, I), Bf[H * (I + H):, None]], 1)
        kw.update(A=state0.arrays["a"][0], B=B)
        rng = SplitMixSigns(state0.rng[0])
    elif name == "kf-rtrl":
        Af = state0.arrays["a"][0]  # ahat's order [x; h; 1]; the port's is [h; x; 1]
        kw.update(A=np.concatenate([Af[I:I + H], Af[:I], Af[I + H:]]), B=state0.arrays["b"][0])
        rng = SplitMixSigns(state0.rng[0])
    elif name == "rflo":
        kw.update(alpha=1.0, W_FB=state0.arrays["feedback"])
    twin_rule = port.make_rule(name, net, rng, **kw)
    port.train(net, twin_rule, X, Y, lr)
    return net.params


class SplitMixSigns:
    """fastrnn's stream generator (splitmix64) replayed in Python, handing the port the +-1 signs a
    fastrnn run draws, in its order: ``choice([-1, 1], n)`` takes ceil(n / 64) words, bit q of a
    word giving sign 1 - 2 bit."""

    MASK = (1 << 64) - 1

    def __init__(self, state):
        self.state = int(state)

    def word(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def choice(self, values, n):
        out = np.empty(n)
        for e in range(0, n, 64):
            bits = self.word()
            for q in range(min(64, n - e)):
                out[e + q] = 1.0 - 2.0 * ((bits >> q) & 1)
        return out


# --- measuring -----------------------------------------------------------------------------------

def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def steps_for(fn_of_steps, probe, budget):
    """Steps that make one timed run last about ``budget`` seconds (from a run of ``probe`` steps)."""
    t = timed(lambda: fn_of_steps(probe))
    return int(max(probe, min(200_000, budget / max(t / probe, 1e-8))))


def dgemm_gflops(m, k, n, budget=0.2):
    A = np.random.default_rng(0).standard_normal((m, k))
    B = np.random.default_rng(1).standard_normal((k, n))
    C = np.empty((m, n))
    np.dot(A, B, out=C)
    reps = max(1, int(budget / max(timed(lambda: np.dot(A, B, out=C)), 1e-7)))
    per = []
    for _ in range(5):
        t = timed(lambda: [np.dot(A, B, out=C) for _ in range(reps)])
        per.append(t / reps)
    return 2.0 * m * k * n / float(np.median(per)) / 1e9


def bench_size(n_h, args, VR, why_not, log):
    """Rows for one hidden size: check, then time, every rule's contenders."""
    rows = []
    params = port.initial(N_IN, n_h, N_OUT, seed=1)
    Xc, Yc = add_stream(CHECK_STEPS, seed=2)
    Xlong, Ylong = add_stream(args.max_steps, seed=3)
    for label in args.rules:
        ours, theirs, twin = RULES[label]
        entries = {}

        # fastrnn: first call (compile or cache load) timed apart, then checked against the port's twin
        state0 = fastrnn_start(params, ours[0], ours[1], seed=1)
        t0 = time.perf_counter()
        weights = fastrnn_run(params, ours[0], ours[1], state0, Xc, Yc, LR)
        first_call = time.perf_counter() - t0
        expected = port_twin_of_fastrnn(params, twin, state0, Xc, Yc, LR)
        d = max_diff(weights, expected)
        ok = d <= TOL_FASTRNN
        log(f"n_h={n_h} {label}: fastrnn vs port ({twin[0]}) after {CHECK_STEPS} steps: max |dw| = {d:.2e} "
            f"(tolerance {TOL_FASTRNN:g}) {'ok' if ok else 'DIFFERENT: not timed'}")
        check = dict(check_against="port " + twin[0], check_max_abs_diff=d, check_tolerance=TOL_FASTRNN)
        if ok:
            entries["fastrnn"] = (lambda X, Y, o=ours, s0=state0: fastrnn_run(params, o[0], o[1], s0, X, Y, LR), check,
                                  first_call)
        else:
            rows.append(dict(n_h=n_h, rule=label, contender="fastrnn", status="update differs", **check))

        # vanilla-rtrl's own code, checked against the port
        if theirs is not None and VR is not None:
            settings = port.rule_settings(theirs[0], N_IN, n_h, N_OUT, seed=1, **theirs[1])
            their_w, _ = port.vanilla_rtrl_train(VR, params, theirs[0], settings, Xc, Yc, LR, seed=1)
            net = port.Net(params[1], params[0], params[3], params[2], params[4])
            mine = port.make_rule(theirs[0], net, port.port_rng(1, n_h), **settings)
            port.train(net, mine, Xc, Yc, LR)
            d = max_diff(their_w, net.params)
            ok = d <= TOL_PORT
            log(f"n_h={n_h} {label}: vanilla-rtrl {theirs[0]} vs port after {CHECK_STEPS} steps: max |dw| = {d:.2e} "
                f"(tolerance {TOL_PORT:g}) {'ok' if ok else 'DIFFERENT: not timed'}")
            check = dict(check_against="port " + theirs[0], check_max_abs_diff=d, check_tolerance=TOL_PORT)
            if ok:
                entries["vanilla-rtrl"] = (
                    lambda X, Y, t=theirs, s=settings: port.vanilla_rtrl_train(VR, params, t[0], s, X, Y, LR, seed=1,
                                                                              monitor=False), check, None)
            else:
                rows.append(dict(n_h=n_h, rule=label, contender="vanilla-rtrl", status="update differs", **check))
        elif theirs is None:
            log(f"n_h={n_h} {label}: vanilla-rtrl has no such rule; the port's {twin[0]} is the reference")
        else:
            log(f"n_h={n_h} {label}: vanilla-rtrl skipped: {why_not}")

        # the port: vanilla-rtrl's rule where it has one (checked above), else the twin fastrnn was checked on
        pname, pkw = theirs if theirs is not None else twin
        psettings = port.rule_settings(pname, N_IN, n_h, N_OUT, seed=1, **pkw)

        def port_run(X, Y, pname=pname, psettings=psettings):
            net = port.Net(params[1], params[0], params[3], params[2], params[4])
            port.train(net, port.make_rule(pname, net, port.port_rng(1, n_h), **psettings), X, Y, LR)
            return net.params

        entries["port"] = (port_run, dict(check_against="vanilla-rtrl" if theirs is not None and VR is not None
                                          else "written from vanilla-rtrl's code"), None)

        rows.extend(time_contenders(n_h, label, entries, Xlong, Ylong, args, log))
    return rows


def time_contenders(n_h, label, entries, Xlong, Ylong, args, log):
    """Interleaved repeats: every contender runs once a round, on its own step count."""
    steps = {}
    for name, (fn, _, _) in entries.items():
        fn(Xlong[:args.probe], Ylong[:args.probe])  # warm-up
        n = steps_for(lambda k: fn(Xlong[:k], Ylong[:k]), args.probe, args.budget)
        steps[name] = min(n, len(Xlong))
    per_step = {name: [] for name in entries}
    cpu_per_step = {name: [] for name in entries}
    for _ in range(args.repeats):
        for name, (fn, _, _) in entries.items():
            n = steps[name]
            c0 = time.process_time()
            per_step[name].append(timed(lambda: fn(Xlong[:n], Ylong[:n])) / n)
            cpu_per_step[name].append((time.process_time() - c0) / n)
    rows = []
    for name, (fn, check, first_call) in entries.items():
        us = np.array(per_step[name]) * 1e6
        row = dict(n_h=n_h, rule=label, contender=name, status="timed", us_per_step=float(np.median(us)),
                   us_min=float(us.min()), us_max=float(us.max()),
                   cpu_us_per_step=float(np.median(cpu_per_step[name])) * 1e6, steps=steps[name],
                   repeats=args.repeats, first_call_s=first_call if first_call is not None else "", **check)
        rows.append(row)
        log(f"n_h={n_h} {label}: {name} {row['us_per_step']:.2f} us/step (min {row['us_min']:.2f}, "
            f"max {row['us_max']:.2f}; {steps[name]} steps x {args.repeats})")
    return rows


def add_ratios(rows, peaks):
    """Ratios to the reference (vanilla-rtrl, else the port), targets at n_h = 32, RTRL's GFLOP/s."""
    by = {(r["n_h"], r["rule"], r["contender"]): r for r in rows if r.get("status") == "timed"}
    for r in rows:
        if r.get("status") != "timed" or r["contender"] != "fastrnn":
            continue
        ref = by.get((r["n_h"], r["rule"], "vanilla-rtrl")) or by.get((r["n_h"], r["rule"], "port"))
        if ref is not None:
            r["reference"] = ref["contender"]
            r["speedup"] = ref["us_per_step"] / r["us_per_step"]
            r["speedup_cpu"] = ref["cpu_us_per_step"] / r["cpu_us_per_step"]
            has_vanilla = RULES[r["rule"]][1] is not None
            if r["n_h"] == 32 and r["rule"] in TARGETS and (ref["contender"] == "vanilla-rtrl" or not has_vanilla):
                r["target"] = TARGETS[r["rule"]]
                r["meets_target"] = bool(r["speedup"] >= TARGETS[r["rule"]])
        if r["rule"] == "RTRL":
            H = r["n_h"]
            flops = 2.0 * H * H * H * (H + N_IN + 1)
            r["rtrl_gflops"] = flops / (r["us_per_step"] * 1e-6) / 1e9
            r["dgemm_same_shape_gflops"] = peaks[H]
            r["dgemm_peak_gflops"] = peaks["peak"]
            r["fraction_of_peak"] = r["rtrl_gflops"] / peaks["peak"]
    return rows


def markdown(rows, env, sizes, why_not):
    lines = [_common.describe(env) + f" Load average (1 min) {env['load_start']} at the start, {env['load_end']} at "
             f"the end, on {env['cores']} cores.", "",
             "Microseconds a training step (batch 1, SGD, float64, one thread): medians of interleaved repeats after "
             "a warm-up, wall-clock time (the process's CPU time beside it, which a busy machine inflates less). "
             "Speed-up = the reference's time / fastrnn's, the reference being vanilla-rtrl's own code where it has "
             "the rule, else its numpy port. Every timed contender was first checked to compute the same update "
             f"(weights after {CHECK_STEPS} steps: fastrnn equal to the port's within {TOL_FASTRNN:g}, the port equal "
             f"to vanilla-rtrl's within {TOL_PORT:g}).", ""]
    if why_not:
        lines += [f"vanilla-rtrl was not run: {why_not}; the port stands in for it.", ""]
    by = {(r["n_h"], r["rule"], r["contender"]): r for r in rows}

    def us(key, field="us_per_step"):
        r = by.get(key)
        if r is None:
            return "-"
        if r.get("status") != "timed":
            return r.get("status", "-")
        v = r[field]
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"

    labels = list(dict.fromkeys(r["rule"] for r in rows))
    for n in sizes:
        lines += [f"n_h = {n}:", "",
                  "| rule | fastrnn us | vanilla-rtrl us | port us | fastrnn CPU us | reference CPU us | speed-up | "
                  "speed-up (CPU time) |" + (" target |" if n == 32 else ""),
                  "|---|---|---|---|---|---|---|---|" + ("---|" if n == 32 else "")]
        for label in labels:
            f = by.get((n, label, "fastrnn"), {})
            ref = f.get("reference")
            sp = f"{f['speedup']:.1f}x" if "speedup" in f else "-"
            spc = f"{f['speedup_cpu']:.1f}x" if "speedup_cpu" in f else "-"
            row = (f"| {label} | {us((n, label, 'fastrnn'))} | {us((n, label, 'vanilla-rtrl'))} | "
                   f"{us((n, label, 'port'))} | {us((n, label, 'fastrnn'), 'cpu_us_per_step')} | "
                   f"{us((n, label, ref), 'cpu_us_per_step') if ref else '-'} | {sp} | {spc} |")
            if n == 32:
                against = "" if ref == "vanilla-rtrl" else " (against the port: vanilla-rtrl has no such rule)"
                row += (f" {TARGETS[label]:g}x: {'met' if f['meets_target'] else 'not met'}{against} |"
                        if "meets_target" in f else f" {TARGETS.get(label, 0):g}x (vanilla-rtrl not run) |")
            lines.append(row)
        lines.append("")
    rt = [r for r in rows if r.get("rule") == "RTRL" and r.get("contender") == "fastrnn" and "rtrl_gflops" in r]
    if rt:
        lines += ["RTRL's J M product (2 H^2 P flops a step, P = H(H+I+1)) against numpy's dgemm on one thread "
                  "(fastrnn's own vector kernel up to 64 units, BLAS beyond; a fraction above 1: faster than "
                  "numpy's dgemm of 512 x 512 matrices with the BLAS kernels recorded above):", "",
                  "| n_h | fastrnn RTRL GFLOP/s | dgemm of the same shape GFLOP/s | dgemm 512^3 (peak) GFLOP/s | fraction of peak |",
                  "|---|---|---|---|---|"]
        for r in rt:
            lines.append(f"| {r['n_h']} | {r['rtrl_gflops']:.2f} | {r['dgemm_same_shape_gflops']:.2f} | "
                         f"{r['dgemm_peak_gflops']:.2f} | {r['fraction_of_peak']:.2f} |")
        lines.append("")
    comp = [r for r in rows if r.get("contender") == "fastrnn" and r.get("first_call_s") not in ("", None)]
    if comp:
        lines += ["fastrnn's first call of each rule (compile or cache load, 40 steps), seconds: "
                  + ", ".join(f"n_h={r['n_h']} {r['rule']} {r['first_call_s']:.2f}" for r in comp) + ".", ""]
    lines += ["vanilla-rtrl has no Williams & Peng BPTT(k1, k2) update for update: its E-BPTT(10) (the BPTT(10,10) "
              "row) updates the output weights every step, its F-BPTT(10) (the BPTT(1,10) row) delays each gradient "
              "9 steps; they are timed as its nearest rules, and fastrnn's BPTT was checked against the port's "
              "Williams & Peng twin. SnAp-1 has no vanilla-rtrl version; its reference is the port's."]
    return "\n".join(lines) + "\n"


SPEED_BEGIN, SPEED_END = "<!-- speed:begin -->", "<!-- speed:end -->"


def write_section(page, section):
    """Put ``section`` between the page's speed markers (added at the end if it has none)."""
    text = page.read_text() if page.exists() else ""
    if SPEED_BEGIN not in text or SPEED_END not in text:
        text += f"\n{SPEED_BEGIN}\n{SPEED_END}\n"
    before, rest = text.split(SPEED_BEGIN, 1)
    after = rest.split(SPEED_END, 1)[1]
    page.write_text(before + SPEED_BEGIN + "\n" + section + SPEED_END + after)


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=ints, default=[32, 64, 128])
    parser.add_argument("--rules", nargs="+", default=list(RULES), help="some of: " + " ".join(RULES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.2, help="seconds one timed run lasts (about)")
    parser.add_argument("--probe", type=int, default=20, help="steps of the warm-up and the probe run")
    parser.add_argument("--max-steps", type=int, default=20000)
    parser.add_argument("--out", default=str(_common.RESULTS), help="folder of online_speed.csv and online_speed.md")
    parser.add_argument("--docs", default=None, help="the folder whose online.md gets the table between its speed "
                        "markers [docs/, none with --smoke]")
    parser.add_argument("--smoke", action="store_true", help="seconds: n_h 8, 2 repeats, short runs (for tests)")
    args = parser.parse_args(argv)
    unknown = [r for r in args.rules if r not in RULES]
    if unknown:
        parser.error(f"--rules: unknown {unknown}; choose from {', '.join(RULES)}")
    if args.smoke:
        args.sizes, args.repeats, args.budget, args.probe, args.max_steps = [8], 2, 0.005, 12, 400

    from threadpoolctl import threadpool_limits

    import numba

    VR, why_not = port.import_vanilla_rtrl()
    from fastrnn import online  # noqa: F401  (loaded before the limits are set, as everything timed)

    threadpool_limits(1)
    numba.set_num_threads(1)

    def log(msg):
        print(msg, flush=True)

    if VR is None:
        log(f"vanilla-rtrl: skipped ({why_not}); its numpy port is the reference")
    load_start = os.getloadavg()[0]
    peaks = {"peak": dgemm_gflops(512, 512, 512, budget=0.02 if args.smoke else 0.2)}
    for H in args.sizes:
        peaks[H] = dgemm_gflops(H, H, H * (H + N_IN + 1), budget=0.02 if args.smoke else 0.2)
        log(f"dgemm {H}x{H} by {H}x{H * (H + N_IN + 1)}: {peaks[H]:.2f} GFLOP/s; 512^3: {peaks['peak']:.2f} GFLOP/s")
    rows = []
    for H in args.sizes:
        rows.extend(bench_size(H, args, VR, why_not, log))
    rows = add_ratios(rows, peaks)
    env = dict(_common.environment(), load_start=round(load_start, 2), load_end=round(os.getloadavg()[0], 2))
    out = Path(args.out)
    _common.write_csv(out / "online_speed.csv", rows, env)
    table = markdown(rows, env, args.sizes, why_not)
    (out / "online_speed.md").write_text(table)
    log(f"wrote {out / 'online_speed.csv'} and {out / 'online_speed.md'}")
    docs = args.docs if args.docs is not None else (None if args.smoke else str(ROOT / "docs"))
    if docs:
        page = Path(docs) / "online.md"
        write_section(page, table)
        log(f"wrote the speed section of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
