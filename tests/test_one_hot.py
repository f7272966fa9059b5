"""One-hot (and two-hot) inputs: the kernels gather columns of U_0 and scatter dU_0 instead of
multiplying by the inputs (fastrnn._kernels.load_data / one_hot), for every cell, against the
plain-numpy twins of tests/reference.py; and the data check that decides it.
"""

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_TWIN, model_from_params
from fastrnn import _kernels, config, engine, optim
from test_cells import as_four, gated_model, random_state, ref_loss_and_grads

TWIN = dict(rtol=RTOL_TWIN, atol=ATOL_TWIN)
# T*B*I*G*H >= config.BLAS_MIN_WORK, so that the layer-0 products would go to BLAS: the one-hot path
B, T, I, H, O = 5, 6, 9, 16, 4


def test_the_shape_takes_the_one_hot_path():
    assert B * T * I * H >= config.BLAS_MIN_WORK


def one_hot_data(rng, B, T, I, O, zero_rows=True):
    X = np.eye(I)[rng.integers(0, I, (B, T))]
    if zero_rows:
        X[0, 2] = 0.0  # a step without input (padding): a row of zeros is one-hot's "none"
        X[-1, -1] = 0.0
    Y = np.eye(O)[rng.integers(0, O, (B, T))]
    mask = (rng.random((B, T)) < 0.7).astype(float)
    mask[:, -1] = 1.0
    return X, Y, mask


def two_hot_data(rng, B, T, I, O):
    """The digits task's pair encoding: two one-hot halves per row (some rows with one or no 1)."""
    half = I // 2
    X = np.concatenate([np.eye(half)[rng.integers(0, half, (B, T))], np.eye(I - half)[rng.integers(0, I - half, (B, T))]],
                       axis=2)
    X[0, 1, :half] = 0.0
    X[1, 2] = 0.0
    Y = np.eye(O)[rng.integers(0, O, (B, T))]
    return X, Y, None


def summary(X):
    """load_data's summary of X: per time-major row the positions of its ones (-1: none), then the flag."""
    Bx, Tx, Ix = X.shape
    Ox, H_ = 2, _kernels.MAX_HOT
    xt = np.empty(Tx * Bx * Ix + H_ * Tx * Bx + 1)
    _kernels.load_data(X, np.zeros((Bx, Tx, Ox)), np.zeros((0, 0)), 0, Bx, xt, np.empty(Tx * Bx * Ox), np.empty(Tx * Bx))
    return xt[Tx * Bx * Ix : -1].reshape(Tx * Bx, H_), xt[-1]


def assert_vanilla_matches_the_twin(params, X, Y, mask, K):
    """A tanh/softmax model's loss and gradients (the serial kernel) equal the plain-numpy
    twin's on this batch; returns the model."""
    ref_loss, ref_grads = ref.loss_and_grads(params, X, Y, mask, "tanh", "softmax", bptt_truncate=K)
    model = model_from_params(params, "tanh", "softmax")
    loss, grads = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K, parallel=False)
    assert loss == pytest.approx(ref_loss, rel=RTOL_TWIN)
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], err_msg=k, **TWIN)
    return model


def test_load_data_notes_one_and_two_hot_rows_and_only_those(rng):
    X, _, _ = one_hot_data(rng, B, T, I, O)
    pos, flag = summary(X)
    want = np.where(X.any(axis=2), X.argmax(axis=2), -1).T.reshape(-1)  # time-major rows
    np.testing.assert_array_equal(pos[:, 0], want)
    np.testing.assert_array_equal(pos[:, 1], -1)
    assert flag == 1.0
    for bad in (0.5, 2.0, -1.0):
        Z = X.copy()
        Z[1, 3, Z[1, 3].argmax()] = bad
        assert summary(Z)[1] == 0.0, bad
    Z = X.copy()
    Z[2, 1] = 0.0
    Z[2, 1, :2] = 1.0  # two ones in a row: still few-hot
    pos, flag = summary(Z)
    assert flag == 1.0
    np.testing.assert_array_equal(pos[1 * B + 2], [0, 1])
    Z[2, 1, :3] = 1.0  # three: not
    assert summary(Z)[1] == 0.0
    assert summary(rng.standard_normal((B, T, I)))[1] == 0.0


def test_text_shaped_one_hot_matches_the_twin(rng):
    """Fewer rows than input columns (text: 25 steps of one stream, a 70-letter alphabet): the
    kernel gathers the columns of U_0 in place rather than transposing it first."""
    B1, T1, I1, H1, O1 = 1, 6, 40, 20, 5
    assert T1 * B1 < I1 and T1 * B1 * I1 * H1 >= config.BLAS_MIN_WORK
    params = ref.init_params(I1, H1, O1, 1, rng)
    X, Y, _ = one_hot_data(rng, B1, T1, I1, O1)
    assert_vanilla_matches_the_twin(params, X, Y, None, None)


@pytest.mark.parametrize("K", [None, 2])
def test_vanilla_two_hot_matches_the_twin(rng, K):
    params = ref.init_params(I, H, O, 1, rng)
    X, Y, mask = two_hot_data(rng, B, T, I, O)
    assert summary(X)[1] == 1.0 and (X.sum(axis=2) == 2).any()
    assert_vanilla_matches_the_twin(params, X, Y, mask, K)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("K", [None, 1])
def test_vanilla_one_hot_matches_the_twin(rng, layers, K):
    params = ref.init_params(I, H, O, layers, rng)
    X, Y, mask = one_hot_data(rng, B, T, I, O)
    assert summary(X)[1] == 1.0
    model = assert_vanilla_matches_the_twin(params, X, Y, mask, K)
    yhat_ref = ref.forward(params, X, "tanh", "softmax")[0]
    np.testing.assert_allclose(model.forward(X)[0], yhat_ref, **TWIN)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("K", [None, 2])
def test_gated_one_hot_matches_the_twin(rng, cell, K):
    layers = 2
    p = ref.init_gated_params(cell, I, H, O, layers, rng)
    model = gated_model(cell, p, "softmax")
    X, Y, mask = one_hot_data(rng, B, T, I, O)
    user, state = random_state(rng, cell, layers, B, H)
    loss_ref, grads_ref, final_ref = ref_loss_and_grads(cell, p, X, Y, mask, "softmax", K, state)
    loss, grads, final = model.loss_and_grads(X, Y, mask, bptt_truncate=K, h0=user, return_state=True)
    assert loss == pytest.approx(loss_ref, rel=RTOL_TWIN, abs=ATOL_TWIN)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **TWIN)
    np.testing.assert_allclose(as_four(cell, final), final_ref, **TWIN)


def test_one_hot_training_equals_the_hand_loops(rng):
    """train_chunk on one-hot data (gather/scatter) against the same chunk with blas=False (every
    product a hand loop, no one-hot path): the same run, to rounding."""
    X, Y, _ = one_hot_data(rng, 4 * B, T, I, O)
    runs = []
    for blas in (True, False):
        model = fastrnn.RNN(I, H, O, seed=3)
        P = model.n_params
        n = 4
        losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, np.int64)
        done = engine.train_chunk(model, -1, X, Y, np.zeros((0, 0)), B, optim.ADAGRAD, 0.05, optim.hyper_array(),
                                  np.zeros((2, P)), 0, 0.0, 5.0, engine.new_state(model, B), np.array([1, 0, 0, 0]),
                                  np.empty(engine.chunk_scratch_size(model, T, B)), losses, norms, errors, blas=blas)
        assert done == n
        runs.append((losses, model.theta.copy()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-10, atol=1e-14)
