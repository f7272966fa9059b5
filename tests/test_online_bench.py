"""The online-learning benchmark's numpy port of vanilla-rtrl, checked against the math, and its scripts.

benchmarks/vanilla_rtrl_port.py transcribes vanilla-rtrl's step; the benchmark times it (or
vanilla-rtrl itself) against fastrnn's rules. Here the port is checked against the plain BPTT
twin of tests/reference.py (RTRL summed over a stream with no updates is full BPTT; E-BPTT's
window is BPTT over the window; SnAp-1 is RTRL masked), against vanilla-rtrl's own code where
$VANILLA_RTRL points at a checkout, and against fastrnn's rules (the same weights after a few
online steps); the two scripts run at their --smoke size.
"""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import vanilla_rtrl_port as port  # noqa: E402

H, I, O = 5, 2, 2


def stream(rng, T):
    x = rng.integers(0, 2, T).astype(float)
    p = rng.uniform(0.1, 0.9, T)
    return np.stack([x, 1 - x], 1), np.stack([p, 1 - p], 1)


def start(rng):
    """Port-ordered weights (W_rec, W_in, b_rec, W_out, b_out), biases non-zero."""
    return [rng.normal(0, 0.6, (H, H)), rng.normal(0, 0.6, (H, I)), rng.normal(0, 0.2, H),
            rng.normal(0, 0.6, (O, H)), rng.normal(0, 0.2, O)]


def as_reference(params):
    W_rec, W_in, b_rec, W_out, b_out = params
    return dict(U0=W_in, W0=W_rec, b0=b_rec, V=W_out, c=b_out)


def summed_port_grads(params, rule_name, X, Y, **settings):
    """The port's gradients summed over the stream with the weights held (no updates)."""
    net = port.Net(params[1], params[0], params[3], params[2], params[4])
    rule = port.make_rule(rule_name, net, np.random.RandomState(0), **settings)
    total = [np.zeros_like(p) for p in net.params]
    for t in range(len(X)):
        net.forward(X[t], Y[t])
        rule.update(net)
        for k, g in enumerate(rule.grads(net)):
            total[k] += g
    return dict(zip(("W0", "U0", "b0", "V", "c"), total))


def test_port_rtrl_summed_over_a_stream_is_full_bptt(rng):
    params = start(rng)
    X, Y = stream(rng, 12)
    got = summed_port_grads(params, "rtrl", X, Y)
    _, want = reference.loss_and_grads(as_reference(params), X[None], Y[None], None, "tanh", "softmax")
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_port_efficient_bptt_of_one_window_is_bptt_over_the_window(rng):
    params = start(rng)
    X, Y = stream(rng, 7)
    got = summed_port_grads(params, "ebptt", X, Y, T=7)
    _, want = reference.loss_and_grads(as_reference(params), X[None], Y[None], None, "tanh", "softmax")
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_port_williams_peng_bptt_matches_truncated_bptt_when_updating_every_step(rng):
    # BPTT(1, k2) with the weights held: each step's loss goes back k2 - 1 recurrences
    params = start(rng)
    X, Y = stream(rng, 10)
    got = summed_port_grads(params, "wpbptt", X, Y, k1=1, k2=4)
    _, want = reference.loss_and_grads(as_reference(params), X[None], Y[None], None, "tanh", "softmax",
                                       bptt_truncate=3)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_port_snap1_is_rtrl_with_the_influence_masked_each_step(rng):
    params = start(rng)
    X, Y = stream(rng, 9)
    net = port.Net(params[1], params[0], params[3], params[2], params[4])
    snap = port.SnAp1(net)
    rtrl = port.RTRL(net)
    m = net.m
    # column k of RTRL's influence is parameter (i = k % H, j = k // H) of [W_rec W_in b_rec]
    mask = np.zeros((H, H * m))
    for k in range(H * m):
        mask[k % H, k] = 1.0
    for t in range(len(X)):
        net.forward(X[t], Y[t])
        snap.update(net)
        rtrl.update(net)
        rtrl.dadw *= mask
        np.testing.assert_allclose(snap.M, rtrl.dadw.sum(axis=0).reshape((H, m), order="F"), rtol=1e-12, atol=1e-14)
        rtrl.feedback(net)
        snap.feedback(net)
        np.testing.assert_allclose(snap.rec_grads(net), rtrl.rec_grads(net), rtol=1e-12, atol=1e-14)


def test_port_training_moves_the_weights_and_replays_its_noise(rng):
    # the comparisons below would pass vacuously if nothing trained or the noise were ignored
    params = start(rng)
    X, Y = stream(rng, 30)
    finals = []
    for seed in (3, 3, 4):
        net = port.Net(params[1], params[0], params[3], params[2], params[4])
        rule = port.make_rule("uoro", net, np.random.RandomState(seed), **port.rule_settings("uoro", I, H, O, 0))
        port.train(net, rule, X, Y, 0.05)
        finals.append(net.params)
    assert max(np.abs(a - b).max() for a, b in zip(finals[0], params)) > 1e-3
    assert all(np.array_equal(a, b) for a, b in zip(finals[0], finals[1]))
    assert max(np.abs(a - b).max() for a, b in zip(finals[0], finals[2])) > 1e-6


@pytest.mark.skipif(port.vanilla_rtrl_path() is None, reason="needs $VANILLA_RTRL: a checkout of omarschall/vanilla-rtrl")
@pytest.mark.parametrize("rule", ["rtrl", "uoro", "kf-rtrl", "rflo", "ebptt", "fbptt"])
def test_port_equals_vanilla_rtrl(rule, rng):
    VR, why = port.import_vanilla_rtrl()
    assert VR is not None, why
    X, Y = stream(rng, 40)
    dw, dl = port.check_against_vanilla_rtrl(VR, rule, X, Y, 0.05, seed=2, n_h=6)
    assert dw <= 1e-12 and dl <= 1e-12


# --- fastrnn's rules against the port: the same weights after a few online steps ---------------------

import bench_online  # noqa: E402

#: (fastrnn's rule, its settings, the port's twin and its settings)
TWINS = {
    "rtrl": ("rtrl", {}, ("rtrl", {})),
    "uoro": ("uoro", dict(eps=0.0), ("uoro", {})),
    "kf-rtrl": ("kf-rtrl", dict(eps=0.0), ("kf-rtrl", {})),
    "snap1": ("snap1", {}, ("snap1", {})),
    "rflo": ("rflo", {}, ("rflo", {})),
    "bptt-4-4": ("bptt", dict(k1=4, k2=4), ("wpbptt", dict(k1=4, k2=4))),
    "bptt-2-5": ("bptt", dict(k1=2, k2=5), ("wpbptt", dict(k1=2, k2=5))),
    "bptt-1-4": ("bptt", dict(k1=1, k2=4), ("wpbptt", dict(k1=1, k2=4))),
}


@pytest.mark.parametrize("case", list(TWINS))
def test_fastrnn_rule_trains_to_the_same_weights_as_the_numpy_port(case, rng):
    rule, settings, twin = TWINS[case]
    params = start(rng)
    X, Y = stream(rng, 25)
    state0 = bench_online.fastrnn_start(params, rule, settings, seed=3)
    got = bench_online.fastrnn_run(params, rule, settings, state0, X, Y, 0.05)
    want = bench_online.port_twin_of_fastrnn(params, twin, state0, X, Y, 0.05)
    assert max(np.abs(a - b).max() for a, b in zip(want, params)) > 1e-3  # training moved the weights
    for name, a, b in zip(("W", "U", "b", "V", "c"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_port_follows_fastrnns_noise_only_when_replaying_its_generator(rng):
    # with other signs the UORO weights differ: the check above could fail
    params = start(rng)
    X, Y = stream(rng, 25)
    state0 = bench_online.fastrnn_start(params, "uoro", dict(eps=0.0), seed=3)
    got = bench_online.fastrnn_run(params, "uoro", dict(eps=0.0), state0, X, Y, 0.05)
    other = state0.copy()
    other.rng[0] += np.uint64(1)
    want = bench_online.port_twin_of_fastrnn(params, ("uoro", {}), other, X, Y, 0.05)
    assert max(np.abs(a - b).max() for a, b in zip(got, want)) > 1e-6


# --- the scripts at their smoke size ----------------------------------------------------------------

def run_script(tmp_path, *args):
    env = {k: v for k, v in __import__("os").environ.items() if k != port.ENV}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_bench_online_smoke_checks_then_times_every_rule(tmp_path):
    (tmp_path / "online.md").write_text("# page\n<!-- speed:begin -->\nold\n<!-- speed:end -->\nafter\n")
    out = run_script(tmp_path, str(ROOT / "benchmarks" / "bench_online.py"), "--smoke", "--out", str(tmp_path / "r"),
                     "--docs", str(tmp_path))
    assert "vanilla-rtrl: skipped ($VANILLA_RTRL is not set" in out
    rows = read_rows(tmp_path / "r" / "online_speed.csv")
    assert {(r["rule"], r["contender"]) for r in rows} == {(rule, c) for rule in bench_online.RULES
                                                          for c in ("fastrnn", "port")}
    for r in rows:
        assert r["status"] == "timed" and float(r["us_per_step"]) > 0 and int(r["steps"]) >= 12
        assert float(r["us_min"]) <= float(r["us_per_step"]) <= float(r["us_max"])
        if r["contender"] == "fastrnn":
            assert float(r["check_max_abs_diff"]) <= float(r["check_tolerance"]) == bench_online.TOL_FASTRNN
            assert r["reference"] == "port" and float(r["speedup"]) > 0 and float(r["first_call_s"]) > 0
        assert r["numba_threads"] == "1" and r["date"] and r["cpu"]
    rtrl = [r for r in rows if r["rule"] == "RTRL" and r["contender"] == "fastrnn"][0]
    assert 0 < float(rtrl["rtrl_gflops"]) and 0 < float(rtrl["dgemm_peak_gflops"])
    table = (tmp_path / "r" / "online_speed.md").read_text()
    for rule in bench_online.RULES:
        assert f"| {rule} |" in table
    assert "GFLOP/s" in table and "vanilla-rtrl was not run" in table and "n_h = 8:" in table
    assert all(float(r["cpu_us_per_step"]) > 0 for r in rows)
    page = (tmp_path / "online.md").read_text()
    assert page.startswith("# page\n<!-- speed:begin -->\n") and page.endswith("<!-- speed:end -->\nafter\n")
    assert table in page and "old" not in page


def test_study_online_smoke_writes_the_table_curves_and_plot(tmp_path):
    import study_online

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "online.md").write_text("# page\n\nbefore\n\n<!-- study:begin -->\nold\n<!-- study:end -->\n\nafter\n")
    out = run_script(tmp_path, str(ROOT / "benchmarks" / "study_online.py"), "--smoke", "--docs", str(docs))
    runs = read_rows(docs / "online.csv")
    main = [r for r in runs if float(r["lr"]) == study_online.LR and r["rule"] in study_online.RULES]
    assert {r["implementation"] for r in runs} == {"fastrnn"}
    assert sorted((r["rule"], int(r["seed"])) for r in runs if r["rule"] in study_online.VARIANTS) == sorted(
        (rule, s) for rule in study_online.VARIANTS for s in (0, 1))
    assert sorted((r["rule"], int(r["seed"])) for r in main) == sorted((rule, s) for rule in study_online.RULES
                                                                      for s in (0, 1))
    for r in runs:
        assert int(r["train_steps"]) == 1200 and int(r["test_steps"]) == 400
        assert r["diverged"] == "True" or 0.3 < float(r["test_loss"]) < 2.0
    grid = [r for r in runs if float(r["lr"]) != study_online.LR]
    assert "| RFLO, feedback V^T | fastrnn | 0.03 |" in (docs / "online.md").read_text()
    assert {float(r["lr"]) for r in grid} <= {0.003}
    assert {r["rule"] for r in grid} == {rule for rule in study_online.RULES
                                         if study_online.failing([dict(r, lr=float(r["lr"]), test_loss=float(r["test_loss"]),
                                                                       diverged=r["diverged"] == "True") for r in main], rule)}
    curves = read_rows(docs / "online-curves.csv")
    assert len(curves) == len(runs) * (1200 // 200)
    assert (docs / "online.png").stat().st_size > 10_000
    page = (docs / "online.md").read_text()
    assert page.startswith("# page\n\nbefore\n") and page.endswith("after\n") and "old" not in page
    for rule in study_online.RULES:
        assert f"| {rule} | fastrnn | 0.03 |" in page
    assert "| RTRL | fastrnn | 0.03 |" in out
