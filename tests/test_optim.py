"""Optimizer and clipping kernels against the numpy twins in reference.py."""

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import make_data
from fastrnn import optim


@pytest.mark.parametrize("clip_norm,clip_value", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.01), (0.3, 0.02), (1e9, 0.0)])
def test_clipping_matches_reference(rng, clip_norm, clip_value):
    g = rng.standard_normal(50) * 0.1
    expected, expected_norm = ref.clip(g, clip_norm, clip_value)
    comp = g.copy()
    norm = optim.clip_grads(comp, clip_norm, clip_value)
    assert norm == pytest.approx(expected_norm, rel=1e-14)
    np.testing.assert_allclose(comp, expected, rtol=1e-14)
    if clip_norm:
        assert np.linalg.norm(comp) <= clip_norm * (1 + 1e-12)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_optimizer_steps_match_reference(rng, kind):
    model = fastrnn.RNN(3, 5, 2, seed=1)
    theta_ref = model.theta.copy()
    vel = np.zeros_like(theta_ref)
    m, v = np.zeros_like(theta_ref), np.zeros_like(theta_ref)
    opt = fastrnn.Optimizer(kind, lr=0.05, momentum=0.8, clip_norm=2.0)
    X, Y, _ = make_data(rng, 4, 6, 3, 2, "softmax")
    for t in range(1, 6):
        _, grads = model.loss_and_grads(X, Y)
        flat = np.concatenate([grads[k].ravel() for k in model.param_names])
        g, _ = ref.clip(flat, clip_norm=2.0)
        if kind == "sgd":
            theta_ref = ref.sgd(theta_ref, g, 0.05)
        elif kind == "momentum":
            theta_ref, vel = ref.momentum(theta_ref, g, vel, 0.05, 0.8)
        else:
            theta_ref, m, v = ref.adam(theta_ref, g, m, v, t, 0.05)
        opt.step(model, grads)
        np.testing.assert_allclose(model.theta, theta_ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind,lr", [("sgd", 0.5), ("momentum", 0.1), ("adam", 0.05)])
def test_optimizers_reduce_the_loss(rng, kind, lr):
    model = fastrnn.RNN(3, 8, 2, seed=2)
    X, Y, _ = make_data(rng, 8, 6, 3, 2, "softmax")
    opt = fastrnn.Optimizer(kind, lr=lr)
    first = model.loss(X, Y)
    for _ in range(100):
        _, grads = model.loss_and_grads(X, Y)
        opt.step(model, grads)
    assert model.loss(X, Y) < 0.8 * first


@pytest.mark.parametrize("kind,kwargs", [("adagrad", {}), ("adagrad", dict(eps=1e-3)), ("rmsprop", {}),
                                         ("rmsprop", dict(decay=0.5, eps=1e-4))])
def test_adagrad_and_rmsprop_match_reference(rng, kind, kwargs):
    model = fastrnn.RNN(3, 5, 2, seed=1)
    theta_ref = model.theta.copy()
    mem = np.zeros_like(theta_ref)
    opt = fastrnn.Optimizer(kind, lr=0.05, clip_value=0.5, **kwargs)
    X, Y, _ = make_data(rng, 4, 6, 3, 2, "softmax")
    for _ in range(6):
        _, grads = model.loss_and_grads(X, Y)
        flat = np.concatenate([grads[k].ravel() for k in model.param_names])
        g, _ = ref.clip(flat, clip_value=0.5)
        if kind == "adagrad":
            theta_ref, mem = ref.adagrad(theta_ref, g, mem, 0.05, **kwargs)
        else:
            theta_ref, mem = ref.rmsprop(theta_ref, g, mem, 0.05, **kwargs)
        opt.step(model, grads)
        np.testing.assert_allclose(model.theta, theta_ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs,pattern", [(dict(decay=1.0), "decay must be below 1"), (dict(decay=-0.1), "decay must be at least 0")])
def test_bad_decay(kwargs, pattern):
    with pytest.raises(fastrnn.InvalidArgument, match=pattern):
        fastrnn.Optimizer("rmsprop", **kwargs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_global_norm_of_huge_finite_gradients_does_not_overflow(dtype):
    big = 1e160 if dtype == "float64" else 1e30
    g = np.array([3.0, -4.0, 0.0, 12.0], dtype=dtype) * big  # norm 13 * big, its square overflows
    comp = g.copy()
    norm = optim.clip_grads(comp, 1.0, 0.0)
    assert np.isfinite(norm) and norm == pytest.approx(13.0 * big, rel=1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(comp, np.array([3.0, -4.0, 0.0, 12.0]) / 13.0, rtol=1e-6 if dtype == "float32" else 1e-14)
    assert np.isnan(optim.clip_grads(np.array([1.0, np.nan, 1e200]), 1.0, 0.0))
    assert optim.clip_grads(np.array([1.0, -np.inf]), 1.0, 0.0) == np.inf
    assert optim.clip_grads(np.zeros(3), 1.0, 0.0) == 0.0
    tiny = np.array([3e-170, 4e-170])  # the square underflows
    assert optim.clip_grads(tiny.copy(), 1.0, 0.0) == pytest.approx(5e-170, rel=1e-14)
