"""fastrnn.RNN (the JIT kernels) against the plain-numpy twin, and its invariants."""

import itertools

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_FLOAT32, RTOL_PARALLEL, RTOL_TWIN, make_data, model_from_params
from fastrnn import engine, params


def assert_grads_close(comp, ref_grads, rtol=RTOL_TWIN, atol=ATOL_TWIN):
    assert set(comp) == set(ref_grads)
    for k in ref_grads:
        np.testing.assert_allclose(comp[k], ref_grads[k], rtol=rtol, atol=atol, err_msg=k)


# (B, T, I, H, O): B=1, T=1, H=1 corners; the binary-addition shape; a shape big
# enough that the products go to BLAS (m*k*n >= config.BLAS_MIN_WORK).
SHAPES = [(1, 1, 1, 1, 1), (1, 8, 2, 16, 1), (3, 5, 3, 4, 2), (2, 1, 2, 3, 4), (9, 6, 5, 24, 3)]
CASES = list(itertools.product(["tanh", "sigmoid", "relu"], ["softmax", "sigmoid", "linear"], [1, 2], [False, True], [None, 0, 2]))
CASES += list(itertools.product(["softsign"], ["softmax", "linear"], [1, 2], [True], [None, 2]))


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}O{}".format(*s))
@pytest.mark.parametrize("activation,head,layers,masked,K", CASES)
def test_loss_and_grads_match_reference(rng, shape, activation, head, layers, masked, K):
    B, T, I, H, O = shape
    params = ref.init_params(I, H, O, layers, rng)
    X, Y, mask = make_data(rng, B, T, I, O, head, masked)
    ref_loss, ref_grads = ref.loss_and_grads(params, X, Y, mask, activation, head, bptt_truncate=K)
    model = model_from_params(params, activation, head)
    comp_loss, comp_grads = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K, parallel=False)
    assert comp_loss == pytest.approx(ref_loss, rel=RTOL_TWIN)
    assert_grads_close(comp_grads, ref_grads)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("layers", [1, 3])
def test_forward_matches_reference(rng, activation, head, layers):
    B, T, I, H, O = 4, 7, 3, 6, 5
    params = ref.init_params(I, H, O, layers, rng)
    X, _, _ = make_data(rng, B, T, I, O, head)
    h0 = rng.standard_normal((layers, B, H))
    ref_yhat, ref_hs = ref.forward(params, X, activation, head, h0=h0)
    yhat, hs = model_from_params(params, activation, head).forward(X, h0=h0)
    assert yhat.shape == (B, T, O) and hs.shape == (layers, B, T, H)
    np.testing.assert_allclose(yhat, ref_yhat, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(hs, ref_hs, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@pytest.mark.parametrize("K", [None, 1])
def test_initial_state_reaches_the_gradients(rng, K):
    B, T, I, H, O, L = 3, 5, 2, 4, 3, 2
    params = ref.init_params(I, H, O, L, rng)
    X, Y, mask = make_data(rng, B, T, I, O, "softmax", masked=True)
    h0 = rng.standard_normal((L, B, H))
    ref_loss, ref_grads = ref.loss_and_grads(params, X, Y, mask, "tanh", "softmax", bptt_truncate=K, h0=h0)
    loss, grads = model_from_params(params, "tanh", "softmax").loss_and_grads(X, Y, mask=mask, bptt_truncate=K, h0=h0)
    assert loss == pytest.approx(ref_loss, rel=RTOL_TWIN)
    assert_grads_close(grads, ref_grads)


# ----------------------------------------------------------------- invariants


@pytest.mark.parametrize("layers", [1, 2])
def test_truncation_at_least_T_minus_1_equals_full_bptt(rng, layers):
    T = 7
    model = fastrnn.RNN(3, 8, 4, layers=layers, seed=1)
    X, Y, mask = make_data(rng, 5, T, 3, 4, "softmax", masked=True)
    loss, full = model.loss_and_grads(X, Y, mask=mask)
    for K in (T - 1, T + 5):
        loss_k, trunc = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K)
        assert loss_k == loss
        assert_grads_close(trunc, full, rtol=1e-13, atol=0)
    _, cut = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=1)
    assert np.max(np.abs(cut["W0"] - full["W0"])) > 1e-8


def test_batch_is_the_mean_of_single_sequences(rng):
    B = 6
    model = fastrnn.RNN(4, 10, 3, layers=2, activation="sigmoid", head="sigmoid", seed=3)
    X, Y, mask = make_data(rng, B, 9, 4, 3, "sigmoid", masked=True)
    loss, grads = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=3)
    singles = [model.loss_and_grads(X[i : i + 1], Y[i : i + 1], mask=mask[i : i + 1], bptt_truncate=3) for i in range(B)]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-13)
    mean_grads = {k: np.mean([s[1][k] for s in singles], axis=0) for k in grads}
    assert_grads_close(grads, mean_grads, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("layers", [1, 2])
def test_chunked_forward_with_carried_state_equals_one_call(rng, layers):
    model = fastrnn.RNN(2, 12, 3, layers=layers, seed=4)
    X = rng.standard_normal((3, 20, 2))
    yhat, hs = model.forward(X)
    y1, hs1 = model.forward(X[:, :8])
    y2, hs2 = model.forward(X[:, 8:], h0=hs1[:, :, -1])
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), yhat, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.concatenate([hs1, hs2], axis=2), hs, rtol=1e-14, atol=1e-15)


def test_loss_and_grads_returns_the_state_that_forward_ends_in(rng):
    model = fastrnn.RNN(2, 5, 2, layers=2, head="linear", seed=5)
    X, Y, _ = make_data(rng, 4, 6, 2, 2, "linear")
    h0 = rng.standard_normal((2, 4, 5))
    _, _, h_final = model.loss_and_grads(X, Y, h0=h0, return_state=True)
    _, hs = model.forward(X, h0=h0)
    np.testing.assert_allclose(h_final, hs[:, :, -1], rtol=1e-14)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("K", [None, 2])
@pytest.mark.parametrize("B", [2, 17, 64])
def test_serial_and_parallel_paths_agree(rng, B, K):
    model = fastrnn.RNN(5, 32, 4, layers=2, seed=6)
    X, Y, mask = make_data(rng, B, 8, 5, 4, "softmax", masked=True)
    loss_s, g_s, h_s = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K, parallel=False, return_state=True)
    loss_p, g_p, h_p = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K, parallel=True, return_state=True)
    assert loss_p == pytest.approx(loss_s, rel=RTOL_PARALLEL)
    assert_grads_close(g_p, g_s, rtol=RTOL_PARALLEL, atol=1e-15)
    # the parallel threads use hand loops and the serial path BLAS: same sums, other order
    np.testing.assert_allclose(h_p, h_s, rtol=RTOL_PARALLEL, atol=1e-15)


def test_parallel_kernel_with_uneven_thread_split(rng):
    """More slices than threads and slices of unequal size still sum to the serial result."""
    model = fastrnn.RNN(3, 6, 2, seed=7)
    X, Y, mask = make_data(rng, 10, 5, 3, 2, "softmax", masked=True)
    h0 = np.zeros((1, 10, 6))
    args = (model, X, Y, mask, h0, -1)
    buf_s = np.full(engine.scratch_size(model, 5, 10, 1), np.nan)
    buf_p = np.full(engine.scratch_size(model, 5, 10, 3), np.nan)
    loss_s, g_s, hf_s = engine.loss_and_grads(*args, buf_s, 1)
    loss_p, g_p, hf_p = engine.loss_and_grads(*args, buf_p, 3)
    assert loss_p == pytest.approx(loss_s, rel=RTOL_PARALLEL)
    np.testing.assert_allclose(g_p, g_s, rtol=RTOL_PARALLEL, atol=1e-15)
    np.testing.assert_allclose(hf_p, hf_s, rtol=RTOL_PARALLEL, atol=1e-15)


def test_float32_is_close_to_float64(rng):
    m64 = fastrnn.RNN(3, 16, 4, layers=2, seed=8)
    m32 = fastrnn.RNN(3, 16, 4, layers=2, seed=8, dtype="float32")
    assert m32.theta.dtype == np.float32
    np.testing.assert_allclose(m32.theta, m64.theta, rtol=1e-7)
    X, Y, mask = make_data(rng, 4, 10, 3, 4, "softmax", masked=True)
    l64, g64 = m64.loss_and_grads(X, Y, mask=mask)
    l32, g32 = m32.loss_and_grads(X, Y, mask=mask)
    assert l32 == pytest.approx(l64, rel=RTOL_FLOAT32)
    for k in g64:
        assert g32[k].dtype == np.float32
        scale = np.max(np.abs(g64[k]))
        np.testing.assert_allclose(g32[k], g64[k], rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * scale, err_msg=k)
    y64, _ = m64.forward(X)
    y32, _ = m32.forward(X)
    np.testing.assert_allclose(y32, y64, rtol=RTOL_FLOAT32, atol=1e-6)


def test_same_seed_same_model_different_seed_different_model():
    a = fastrnn.RNN(2, 8, 1, seed=11)
    b = fastrnn.RNN(2, 8, 1, seed=11)
    c = fastrnn.RNN(2, 8, 1, seed=12)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)


def test_params_are_live_views_with_the_documented_shapes():
    model = fastrnn.RNN(3, 5, 2, layers=2)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"U0": (5, 3), "W0": (5, 5), "b0": (5,), "U1": (5, 5), "W1": (5, 5), "b1": (5,), "V": (2, 5), "c": (2,)}
    model.params["W1"][...] = 0.25
    assert np.count_nonzero(model.theta == 0.25) == 25
    with pytest.raises(TypeError, match="write into it"):
        model.params["W1"] = np.zeros((5, 5))


def test_init_scale_bounds_the_weights():
    model = fastrnn.RNN(2, 16, 1, init_scale=0.5, seed=2)
    for k, v in model.params.items():
        assert np.all(np.abs(v) <= 0.5)
        if k.startswith("b") or k == "c":
            assert np.all(v == 0)
    default = fastrnn.RNN(2, 16, 1, seed=2)
    assert np.max(np.abs(default.params["W0"])) <= 1 / np.sqrt(16)


def test_save_and_load_round_trip(tmp_path, rng):
    model = fastrnn.RNN(3, 7, 2, layers=2, activation="relu", head="sigmoid", dtype="float32", seed=9)
    path = model.save(tmp_path / "m.npz")
    loaded = fastrnn.RNN.load(path)
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.theta, model.theta)
    X = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(loaded.forward(X)[0], model.forward(X)[0])


@pytest.mark.parametrize("shape, dtype", [(1, np.float64), (37, np.float64), ((3, 5), np.float32), ((2, 7, 3), np.int64), (0, np.float64)])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    """The kernels' arrays start on a 64-byte line (numpy promises 16): the shape, dtype and
    contiguity asked for, zeros where asked, and writable memory of their own."""
    for _ in range(8):  # several allocations: numpy's own would land on 16-byte steps
        a = params.aligned_empty(shape, dtype)
        z = params.aligned_zeros(shape, dtype)
        for x in (a, z):
            assert x.shape == (shape if isinstance(shape, tuple) else (shape,))
            assert x.dtype == np.dtype(dtype) and x.flags.c_contiguous and x.flags.writeable
            assert x.ctypes.data % 64 == 0 or x.size == 0
        assert not z.any()
        a[...] = 1
        assert not z.any()


def test_a_new_model_starts_its_weights_on_a_cache_line():
    model = fastrnn.RNN(3, 10, 2, seed=4)
    assert model.theta.ctypes.data % 64 == 0
    again = fastrnn.RNN(3, 10, 2, seed=4)
    assert np.array_equal(model.theta, again.theta)
