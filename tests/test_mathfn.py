"""The vectorisable exp/tanh/sigmoid against numpy's libm versions."""

import numpy as np
import pytest

from fastrnn import _mathfn


def ulp_error(comp, ref):
    return np.max(np.abs(comp - ref) / np.spacing(np.maximum(np.abs(ref), np.finfo(float).tiny)))


@pytest.fixture
def points(rng):
    return np.concatenate(
        [
            rng.standard_normal(20000) * 4,
            rng.uniform(-40, 40, 5000),
            rng.uniform(-1e-6, 1e-6, 2000),
            [0.0, -0.0, 1e-300, -1e-300, 0.34657, -0.34657, 19.0, -19.0, 22.0, 350.0, -350.0, 700.0, -700.0],
        ]
    )


def test_tanh_within_a_few_ulp(points):
    out = np.empty_like(points)
    _mathfn.tanh_array(points, out)
    assert ulp_error(out, np.tanh(points)) <= 4


def test_sigmoid_within_a_few_ulp(points):
    out = np.empty_like(points)
    _mathfn.sigmoid_array(points, out)
    ref = 1.0 / (1.0 + np.exp(-points))
    assert ulp_error(out, ref) <= 4


def test_expm1_within_a_few_ulp(rng):
    y = np.concatenate([rng.uniform(-700, 700, 20000), rng.uniform(-1e-5, 1e-5, 2000), [0.0, -745.0 + 40, 708.0]])
    out = np.empty_like(y)
    _mathfn.expm1_array(y, out)
    assert ulp_error(out, np.expm1(y)) <= 4


def test_saturation_and_nan():
    x = np.array([np.inf, -np.inf, 1e308, -1e308, np.nan])
    t, s = np.empty_like(x), np.empty_like(x)
    _mathfn.tanh_array(x, t)
    _mathfn.sigmoid_array(x, s)
    np.testing.assert_array_equal(t[:4], [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_allclose(s[:4], [1.0, 0.0, 1.0, 0.0], atol=1e-300)
    assert np.isnan(t[4]) and np.isnan(s[4]), "NaN must not be hidden by the clamps"
