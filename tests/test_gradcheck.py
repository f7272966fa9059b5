"""fastrnn.gradcheck: passes on correct gradients, fails on wrong ones."""

import numpy as np
import pytest

import fastrnn
from conftest import GRADCHECK_TOL, make_data


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
def test_kernel_gradients_pass_the_finite_difference_check(rng, activation, head):
    model = fastrnn.RNN(3, 5, 3, layers=2, activation=activation, head=head, seed=3, init_scale=0.8)
    X, Y, mask = make_data(rng, 3, 6, 3, 3, head, masked=True)
    report = model_report = fastrnn.gradcheck(model, X, Y, mask=mask)
    assert report.passed, str(model_report)
    assert set(report.errors) == set(model.param_names)
    assert report.max_error < GRADCHECK_TOL


def test_float32_model_is_checked_in_float64(rng):
    model = fastrnn.RNN(2, 4, 2, dtype="float32", seed=1)
    X, Y, _ = make_data(rng, 2, 5, 2, 2, "softmax")
    theta = model.theta.copy()
    report = fastrnn.gradcheck(model, X, Y)
    assert report.passed
    np.testing.assert_array_equal(model.theta, theta)


class _WrongGradients(fastrnn.RNN):
    """Gradients 1% too large in W0 only: a bug the check must catch."""

    def loss_and_grads(self, *args, **kwargs):
        loss, grads = super().loss_and_grads(*args, **kwargs)
        grads["W0"] *= 1.01
        return loss, grads


def test_wrong_gradients_fail_the_check(rng):
    model = _WrongGradients(2, 4, 2, seed=0)
    X, Y, _ = make_data(rng, 2, 5, 2, 2, "softmax")
    report = fastrnn.gradcheck(model, X, Y)
    assert not report.passed
    failed = [name for name, _, _, ok in report.rows() if not ok]
    assert failed == ["W0"]
    assert "FAIL" in str(report)


def test_gradcheck_refuses_a_non_model(rng):
    with pytest.raises(TypeError, match="model must be a fastrnn.RNN"):
        fastrnn.gradcheck("model", np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
