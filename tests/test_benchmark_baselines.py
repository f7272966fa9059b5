"""The benchmarks' baselines compute what fastrnn computes, or their times would mean nothing."""

import sys
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from conftest import make_data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import numpy_batched  # noqa: E402
import numba_loop  # noqa: E402
import numpy_loop  # noqa: E402
from _common import fastrnn_after_sgd  # noqa: E402


@pytest.mark.parametrize("activation,head", [("sigmoid", "sigmoid"), ("tanh", "softmax"), ("relu", "sigmoid")])
def test_numpy_baselines_follow_fastrnns_sgd_trajectory(rng, activation, head):
    I, O = (2, 1) if head == "sigmoid" else (3, 4)
    X, Y, _ = make_data(rng, 40, 6, I, O, head)
    p0 = ref.init_params(I, 7, O, 1, rng)
    want = fastrnn_after_sgd(p0, X, Y, activation, head, 40, 0.1)
    trainers = [numpy_loop.Trainer(p0, activation, head, 0.1), numpy_batched.Trainer(p0, activation, head, 0.1)]
    if (activation, head) == ("sigmoid", "sigmoid"):
        trainers.append(numba_loop.Trainer(p0, activation, head, 0.1))
    try:
        import torch_rnn

        trainers.append(torch_rnn.CellLoop(p0, activation, head, 0.1))
    except ImportError:
        pass
    for trainer in trainers:
        trainer.train(X, Y, 40)
        for k in want:
            np.testing.assert_allclose(trainer.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=f"{trainer.name} {k}")


@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
def test_numpy_batched_gradients_match_the_twin(rng, head):
    X, Y, mask = make_data(rng, 5, 7, 3, 4, head, masked=True)
    p = ref.init_params(3, 6, 4, 1, rng)
    for activation in ("tanh", "sigmoid", "relu"):
        loss, grads = numpy_batched.loss_and_grads(p, X, Y, mask, activation, head)
        ref_loss, ref_grads = ref.loss_and_grads(p, X, Y, mask, activation, head)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for k in ref_grads:
            np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-13)


def test_numba_loop_follows_fastrnn_on_the_headline_shape(rng):
    """The headline's single-purpose loop at its own shape (T=8, I=2, H=16, O=1), errors included."""
    X = rng.integers(0, 2, (60, 8, 2)).astype(float)
    Y = rng.integers(0, 2, (60, 8, 1)).astype(float)
    p0 = ref.init_params(2, 16, 1, 1, rng, scale=1.0)
    want = fastrnn_after_sgd(p0, X, Y, "sigmoid", "sigmoid", 60, 0.1)
    loop, plain = numba_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1), numpy_loop.Trainer(p0, "sigmoid", "sigmoid", 0.1)
    np.testing.assert_array_equal(loop.train(X, Y, 60), plain.train(X, Y, 60))
    for k in want:
        np.testing.assert_allclose(loop.params()[k], want[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_numba_loop_refuses_other_units(rng):
    p0 = ref.init_params(2, 4, 1, 1, rng)
    with pytest.raises(ValueError, match="sigmoid"):
        numba_loop.Trainer(p0, "tanh", "sigmoid", 0.1)
