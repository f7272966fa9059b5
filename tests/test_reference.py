"""The plain-numpy twin against central finite differences (float64, full BPTT).

Everything else is tested against the twin, so the twin itself is tested against
the definition of a derivative first.
"""

import numpy as np
import pytest

import reference as ref
from conftest import GRADCHECK_TOL, make_data


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("layers", [1, 2])
def test_reference_full_bptt_matches_finite_differences(rng, activation, head, layers):
    B, T, I, H, O = 2, 5, 3, 4, 3
    params = ref.init_params(I, H, O, layers, rng)
    X, Y, mask = make_data(rng, B, T, I, O, head, masked=True)
    h0 = rng.standard_normal((layers, B, H)) * 0.5

    def loss_fn(p):
        return ref.loss_and_grads(p, X, Y, mask, activation, head, h0=h0)[0]

    _, analytic = ref.loss_and_grads(params, X, Y, mask, activation, head, h0=h0)
    numeric = ref.numerical_grads(loss_fn, params)
    for k in params:
        assert ref.relative_error(analytic[k], numeric[k]) < GRADCHECK_TOL, k


@pytest.mark.parametrize("layers", [1, 3])
def test_reference_truncation_with_K_at_least_T_minus_1_is_full_bptt(rng, layers):
    T = 6
    params = ref.init_params(2, 5, 2, layers, rng)
    X, Y, mask = make_data(rng, 3, T, 2, 2, "softmax", masked=True)
    loss_full, g_full = ref.loss_and_grads(params, X, Y, mask, "tanh", "softmax")
    for K in (T - 1, T, 3 * T):
        loss_k, g_k = ref.loss_and_grads(params, X, Y, mask, "tanh", "softmax", bptt_truncate=K)
        assert loss_k == pytest.approx(loss_full, rel=1e-14)
        for k in params:
            np.testing.assert_allclose(g_k[k], g_full[k], rtol=1e-12, atol=1e-14)


def test_reference_truncation_differs_from_full_bptt(rng):
    """Truncation must actually cut something when K < T - 1 (else the tests above prove nothing)."""
    params = ref.init_params(2, 5, 2, 1, rng, scale=1.0)
    X, Y, _ = make_data(rng, 2, 6, 2, 2, "softmax")
    _, g_full = ref.loss_and_grads(params, X, Y, None, "tanh", "softmax")
    _, g_trunc = ref.loss_and_grads(params, X, Y, None, "tanh", "softmax", bptt_truncate=1)
    assert np.max(np.abs(g_full["W0"] - g_trunc["W0"])) > 1e-6
    # the output layer does not depend on truncation
    np.testing.assert_allclose(g_full["V"], g_trunc["V"], rtol=1e-14)
