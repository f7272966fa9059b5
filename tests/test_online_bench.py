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
