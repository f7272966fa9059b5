"""The gated cells (GRU, LSTM) on the engine: the kernels against the plain-numpy twins of
tests/reference.py (themselves checked against central differences and torch autograd in
test_reference_gated.py), against PyTorch through RNN.from_torch, the path-length identity for
every cell, training with carried (h, c), and every refusal.
"""

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_FLOAT32, RTOL_TWIN, RTOL_TORCH_GRAD, TOL_TORCH_FORWARD, make_data
from fastrnn import dispatch, engine, optim
from fastrnn.exceptions import InvalidArgument, InvalidType

GATED = ["gru", "lstm"]
TWIN = dict(rtol=RTOL_TWIN, atol=ATOL_TWIN)


def gated_model(cell, p, head, dtype="float64"):
    G = ref.GATES[cell]
    GH, I = p["U0"].shape
    H, O, L = GH // G, p["V"].shape[0], ref.layer_count(p)
    model = fastrnn.RNN(I, H, O, layers=L, head=head, dtype=dtype, cell=cell)
    for k, v in p.items():
        model.params[k][...] = v
    return model


def random_state(rng, cell, L, B, H):
    """The state users pass (h0, or (h0, c0) for the LSTM) and the twin's (L, S, B, H)."""
    S = 2 if cell == "lstm" else 1
    state = rng.standard_normal((L, S, B, H)) * 0.5
    user = state[:, 0] if S == 1 else (state[:, 0], state[:, 1])
    return user, state


def ref_loss_and_grads(cell, p, X, Y, mask, head, K, state):
    """The twin's loss, grads and final state (L, S, B, H)."""
    if cell == "gru":
        loss, grads, hT = ref.gru_loss_and_grads(p, X, Y, mask, head, K, None if state is None else state[:, 0])
        return loss, grads, hT[:, None]
    h0, c0 = (None, None) if state is None else (state[:, 0], state[:, 1])
    loss, grads, (hT, cT) = ref.lstm_loss_and_grads(p, X, Y, mask, head, K, h0, c0)
    return loss, grads, np.stack([hT, cT], axis=1)


def as_four(cell, final):
    return np.stack(final, axis=1) if cell == "lstm" else final[:, None]


SHAPES = [  # B, T, I, H, O
    (1, 1, 1, 1, 2),
    (1, 6, 2, 1, 2),
    (3, 1, 2, 3, 2),
    (4, 7, 3, 5, 3),
]


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("K", [None, 0, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_equals_the_twin(rng, cell, layers, head, masked, K, shape):
    B, T, I, H, O = shape
    p = ref.init_gated_params(cell, I, H, O, layers, rng)
    model = gated_model(cell, p, head)
    X, Y, mask = make_data(rng, B, T, I, O, head, masked)
    user, state = random_state(rng, cell, layers, B, H)
    loss_ref, grads_ref, final_ref = ref_loss_and_grads(cell, p, X, Y, mask, head, K, state)
    loss, grads, final = model.loss_and_grads(X, Y, mask, bptt_truncate=K, h0=user, return_state=True)
    assert loss == pytest.approx(loss_ref, rel=RTOL_TWIN, abs=ATOL_TWIN)
    assert set(grads) == set(grads_ref)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **TWIN)
    np.testing.assert_allclose(as_four(cell, final), final_ref, **TWIN)
    yhat_ref, top_ref, _ = ref.gated_forward(cell, p, X, head, state)
    yhat, hs = model.forward(X, h0=user)
    np.testing.assert_allclose(yhat, yhat_ref, **TWIN)
    np.testing.assert_allclose(hs[-1], top_ref, **TWIN)
    assert hs.shape == (layers, B, T, H)


@pytest.mark.parametrize("cell", GATED)
def test_zero_initial_state_is_the_default(rng, cell):
    p = ref.init_gated_params(cell, 2, 3, 2, 2, rng)
    model = gated_model(cell, p, "softmax")
    X, Y, _ = make_data(rng, 2, 4, 2, 2, "softmax")
    loss_ref, grads_ref, final_ref = ref_loss_and_grads(cell, p, X, Y, None, "softmax", None, None)
    loss, grads, final = model.loss_and_grads(X, Y, return_state=True)
    assert loss == pytest.approx(loss_ref, rel=RTOL_TWIN)
    np.testing.assert_allclose(as_four(cell, final), final_ref, **TWIN)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **TWIN)


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("K", [None, 1])
def test_parallel_kernel_equals_serial(rng, cell, K):
    p = ref.init_gated_params(cell, 2, 4, 3, 2, rng)
    model = gated_model(cell, p, "softmax")
    X, Y, mask = make_data(rng, 5, 6, 2, 3, "softmax", masked=True)
    user, _ = random_state(rng, cell, 2, 5, 4)
    a = model.loss_and_grads(X, Y, mask, bptt_truncate=K, h0=user, return_state=True, parallel=False)
    b = model.loss_and_grads(X, Y, mask, bptt_truncate=K, h0=user, return_state=True, parallel=True)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    for name in a[1]:
        np.testing.assert_allclose(b[1][name], a[1][name], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(as_four(cell, b[2]), as_four(cell, a[2]), rtol=0, atol=0)


@pytest.mark.parametrize("cell", GATED)
def test_float32_follows_float64(rng, cell):
    p = ref.init_gated_params(cell, 2, 4, 3, 1, rng)
    m64, m32 = gated_model(cell, p, "softmax"), gated_model(cell, p, "softmax", "float32")
    X, Y, _ = make_data(rng, 3, 5, 2, 3, "softmax")
    l64, g64 = m64.loss_and_grads(X, Y)
    l32, g32 = m32.loss_and_grads(X.astype(np.float32), Y.astype(np.float32))
    assert l32 == pytest.approx(l64, rel=RTOL_FLOAT32)
    for name in g64:
        assert g32[name].dtype == np.float32
        np.testing.assert_allclose(g32[name], g64[name], rtol=RTOL_FLOAT32, atol=1e-5)


def test_parameters_are_named_and_shaped_like_pytorch():
    I, H, O, L = 3, 5, 2, 2
    shapes = {name: shape for name, shape, _ in fastrnn.RNN(I, H, O, layers=L, cell="gru").layout}
    assert shapes == {"U0": (15, 3), "W0": (15, 5), "b0": (15,), "bn0": (5,), "U1": (15, 5), "W1": (15, 5),
                      "b1": (15,), "bn1": (5,), "V": (2, 5), "c": (2,)}
    shapes = {name: shape for name, shape, _ in fastrnn.RNN(I, H, O, layers=L, cell="lstm").layout}
    assert shapes == {"U0": (20, 3), "W0": (20, 5), "b0": (20,), "U1": (20, 5), "W1": (20, 5), "b1": (20,),
                      "V": (2, 5), "c": (2,)}
    assert fastrnn.RNN(I, H, O, cell="lstm").n_states == 2
    assert fastrnn.RNN(I, H, O, cell="gru").n_states == fastrnn.RNN(I, H, O).n_states == 1


@pytest.mark.parametrize("cell", GATED)
def test_default_init_is_pytorchs_scale_and_init_scale_overrides_it(cell):
    H = 16
    model = fastrnn.RNN(40, H, 3, layers=2, cell=cell, seed=3)
    bound = 1.0 / np.sqrt(H)
    for name, value in model.params.items():
        if value.ndim == 2:
            assert np.abs(value).max() <= bound
            assert np.abs(value).max() > 0.8 * bound  # uniform over the whole range, not 1/sqrt(40) for U0
        else:
            assert not value.any(), name  # biases (and bn) start at zero
    scaled = fastrnn.RNN(40, H, 3, cell=cell, init_scale=0.01)
    assert np.abs(scaled.params["W0"]).max() <= 0.01
    assert fastrnn.RNN(40, H, 3, cell=cell, seed=3).params["U0"].tolist() == model.params["U0"].tolist()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 3])
def test_model_bytes_counts_the_gate_matrices_and_extras(cell, layers):
    from fastrnn import _checks

    for dtype, itemsize in (("float64", 8), ("float32", 4)):
        model = fastrnn.RNN(5, 7, 3, layers=layers, cell=cell, dtype=dtype)
        assert _checks.model_bytes(5, 7, 3, layers, itemsize, cell) == model.theta.nbytes
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    H = 10**9  # exact in Python integers, far past int64's products
    first = G * H * (5 + H + 1) + (H if cell == "gru" else 0)
    assert _checks.model_bytes(5, H, 3, 1, 8, cell) == 8 * (first + 3 * H + 3)


def test_the_memory_check_counts_a_gated_models_gates():
    from fastrnn import _checks

    import math

    limit = _checks.memory_limit()
    H = math.isqrt(limit // 16)  # parameters about 8 H^2 bytes for the vanilla cell, 32 H^2 for the LSTM
    assert _checks.model_bytes(2, H, 2, 1, 8, "rnn") <= limit < _checks.model_bytes(2, H, 2, 1, 8, "lstm")
    with pytest.raises(InvalidArgument, match="would need at least"):  # refused before anything is allocated
        fastrnn.RNN(2, H, 2, cell="lstm")


def test_forget_bias_sets_only_the_lstm_f_block_at_init():
    H = 5
    plain = fastrnn.RNN(3, H, 2, layers=2, cell="lstm", seed=4)
    model = fastrnn.RNN(3, H, 2, layers=2, cell="lstm", seed=4, forget_bias=1.0)
    for l in range(2):
        b = model.params[f"b{l}"]
        assert b[H : 2 * H].tolist() == [1.0] * H  # gates i, f, g, o: f only
        assert not b[:H].any() and not b[2 * H :].any()
    for name in model.param_names:
        if not name.startswith("b"):
            assert model.params[name].tolist() == plain.params[name].tolist(), name  # the same draws
    assert model.config()["forget_bias"] == 1.0 and model.copy().params["b1"].tolist() == model.params["b1"].tolist()
    assert plain.config()["forget_bias"] == 0.0 and not plain.params["b0"].any()  # PyTorch's zeros by default


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_forget_bias_is_refused_without_a_forget_gate(cell):
    with pytest.raises(InvalidArgument, match="forget_bias"):
        fastrnn.RNN(3, 4, 2, cell=cell, forget_bias=1.0)
    with pytest.raises(InvalidArgument, match="forget_bias=1.0 applies to cell='lstm' only"):
        fastrnn.train(task="recall", iters=1, cell=cell, forget_bias=1.0)
    with pytest.raises(InvalidType, match="forget_bias"):
        fastrnn.RNN(3, 4, 2, cell="lstm", forget_bias="1")


def test_forget_bias_reaches_the_trained_model(tmp_path):
    result = fastrnn.train(task="recall", lag=3, iters=1, log_every=1, cell="lstm", forget_bias=2.0, hidden=4, lr=1e-12,
                           csv=tmp_path / "r.csv")
    assert result.model.forget_bias == 2.0
    assert np.allclose(result.model.params["b0"][4:8], 2.0, atol=1e-6)  # one step of lr 1e-12 from 2


# ----------------------------------------------------------------- training


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("K", [-1, 1])
@pytest.mark.parametrize("layers", [1, 2])
def test_train_chunk_carries_h_and_c_across_windows(rng, cell, K, layers):
    """Two SGD iterations over consecutive windows of one stream (resets [1, 0]): the second
    window starts from the first one's final (h, c), and each update is the twin's gradient.
    Full BPTT runs on the small-model kernel for every cell (fastrnn._small_cells), truncated
    BPTT on the general driver."""
    B, T, I, H, O, lr = 2, 4, 2, 3, 2, 0.1
    p = ref.init_gated_params(cell, I, H, O, layers, rng)
    model = gated_model(cell, p, "softmax")
    assert dispatch.for_model(model, T, B, K=K).name == ("small-cells" if K < 0 else "general")
    X, Y, _ = make_data(rng, 2 * B, T, I, O, "softmax")
    hstate = engine.new_state(model, B)
    assert hstate.shape == (layers * model.n_states * B * H,)
    losses, norms, errors = np.empty(2), np.empty(2), np.empty(2 * B, dtype=np.int64)
    buf = np.empty(engine.chunk_scratch_size(model, T, B))
    done = engine.train_chunk(model, K, X, Y, np.zeros((0, 0)), B, optim.SGD, lr, optim.hyper_array(),
                              np.zeros((2, model.n_params)), 0, 0.0, 0.0, hstate, np.array([1, 0]), buf, losses, norms,
                              errors)
    assert done == 2
    trunc = None if K < 0 else K
    theta = {k: v.copy() for k, v in p.items()}
    state = None
    for it in range(2):
        rows = slice(it * B, (it + 1) * B)
        loss, grads, state = ref_loss_and_grads(cell, theta, X[rows], Y[rows], None, "softmax", trunc, state)
        assert losses[it] == pytest.approx(loss, rel=RTOL_TWIN)
        for k in theta:
            theta[k] = theta[k] - lr * grads[k]
    for k in theta:
        np.testing.assert_allclose(model.params[k], theta[k], err_msg=k, **TWIN)
    np.testing.assert_allclose(hstate.reshape(layers, model.n_states, B, H), state, **TWIN)


@pytest.mark.parametrize("cell", GATED)
def test_fastrnn_train_runs_every_cell(tmp_path, cell):
    result = fastrnn.train(task="binary", iters=300, log_every=100, csv=tmp_path / "r.csv", cell=cell, seed=1)
    assert result.model.cell == cell
    assert len(result.history) == 3 and np.isfinite(result.history["loss"]).all()


# ----------------------------------------------------------------- path lengths


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_path_length_parts_sum_to_the_truncated_gradients(rng, cell, layers):
    B, T, I, H, O = 2, 5, 2, 3, 2
    model = fastrnn.RNN(I, H, O, layers=layers, cell=cell, seed=4, init_scale=0.8)
    X, Y, mask = make_data(rng, B, T, I, O, "softmax", masked=True)
    G = fastrnn.path_gradients(model, X, Y, mask)
    full = model.loss_and_grads(X, Y, mask)[1]
    for name in G:
        assert G[name].shape == (T,) + full[name].shape
        np.testing.assert_allclose(G[name].sum(axis=0), full[name], rtol=1e-9, atol=1e-13)
        for K in range(T):
            trunc = model.loss_and_grads(X, Y, mask, bptt_truncate=K)[1]
            np.testing.assert_allclose(G[name][: K + 1].sum(axis=0), trunc[name], rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("cell", GATED)
def test_gated_path_parts_equal_the_twins_direct_ones(rng, cell):
    B, T, I, H, O = 2, 5, 2, 3, 2
    p = ref.init_gated_params(cell, I, H, O, 2, rng)
    model = gated_model(cell, p, "softmax")
    X, Y, mask = make_data(rng, B, T, I, O, "softmax", masked=True)
    G = fastrnn.path_gradients(model, X, Y, mask, max_length=3)
    direct = ref.gated_path_gradients(cell, p, X, Y, mask, "softmax", 4)
    for name in G:
        for q in range(4):
            np.testing.assert_allclose(G[name][q], direct[q][name], rtol=1e-9, atol=1e-13, err_msg=f"{name} p={q}")


@pytest.mark.parametrize("cell", GATED)
def test_jacobian_norms_refuse_gated_cells(rng, cell):
    model = fastrnn.RNN(2, 3, 2, cell=cell)
    with pytest.raises(InvalidArgument, match="cell='rnn'"):
        fastrnn.jacobian_norms(model, rng.standard_normal((1, 3, 2)))


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize("bad", ["GRU", "lstm2", "", "elman"])
def test_unknown_cell_names_are_refused(bad):
    with pytest.raises(InvalidArgument, match="cell"):
        fastrnn.RNN(2, 3, 2, cell=bad)


def test_cell_must_be_a_string():
    with pytest.raises((InvalidArgument, InvalidType), match="cell"):
        fastrnn.RNN(2, 3, 2, cell=1)


@pytest.mark.parametrize("cell", GATED)
def test_gated_cells_take_no_activation(cell):
    with pytest.raises(InvalidArgument, match="activation='relu' applies to the vanilla cell only"):
        fastrnn.RNN(2, 3, 2, cell=cell, activation="relu")


def test_lstm_state_must_be_a_pair(rng):
    model = fastrnn.RNN(2, 3, 2, cell="lstm")
    X, Y, _ = make_data(rng, 2, 3, 2, 2, "softmax")
    with pytest.raises(InvalidArgument, match=r"pair \(h0, c0\)"):
        model.loss_and_grads(X, Y, h0=np.zeros((1, 2, 3)))
    with pytest.raises(InvalidArgument, match="c0"):
        model.loss_and_grads(X, Y, h0=(np.zeros((1, 2, 3)), np.zeros((1, 5, 3))))
    with pytest.raises(InvalidArgument, match="h0 contains NaN"):
        model.forward(X, h0=(np.zeros((1, 2, 3)), np.full((1, 2, 3), np.nan)))


def test_saved_gated_models_load_with_their_cell(tmp_path, rng):
    model = fastrnn.RNN(2, 3, 2, layers=2, cell="gru", seed=2)
    model.params["bn1"][:] = rng.standard_normal(3)
    loaded = fastrnn.RNN.load(model.save(tmp_path / "m.npz"))
    assert loaded.cell == "gru" and loaded.theta.tolist() == model.theta.tolist()


# ----------------------------------------------------------------- PyTorch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _module(torch, kind, I, H, layers, batch_first, seed=0, **kwargs):
    torch.manual_seed(seed)
    common = dict(num_layers=layers, batch_first=batch_first, dtype=torch.float64, **kwargs)
    if kind.startswith("rnn"):
        return torch.nn.RNN(I, H, nonlinearity=kind.split("-")[1], **common)
    return {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](I, H, **common)


def _torch_state(torch, module, user):
    if isinstance(module, torch.nn.LSTM):
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in user)
    return torch.from_numpy(np.ascontiguousarray(user))


@pytest.mark.parametrize("kind", ["rnn-tanh", "rnn-relu", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
def test_from_torch_equals_torch_forward_and_autograd(torch, rng, kind, layers, batch_first, head):
    from torch_helpers import head_output, torch_loss

    B, T, I, H, O = 3, 6, 3, 4, 2
    module = _module(torch, kind, I, H, layers, batch_first)
    linear = torch.nn.Linear(H, O, dtype=torch.float64)
    model = fastrnn.RNN.from_torch(module, linear, output=head)
    cell = kind.split("-")[0]
    assert (model.cell, model.n_in, model.n_hidden, model.n_out, model.layers) == (cell, I, H, O, layers)
    X, Y, mask = make_data(rng, B, T, I, O, head, masked=True)
    user, _ = random_state(rng, "lstm" if cell == "lstm" else "gru", layers, B, H)
    x = torch.from_numpy(X if batch_first else X.transpose(1, 0, 2).copy())
    out, final = module(x, _torch_state(torch, module, user))
    if not batch_first:
        out = out.transpose(0, 1)
    z = linear(out)
    yhat, hs = model.forward(X, h0=user)
    np.testing.assert_allclose(yhat, head_output(z, head).detach().numpy(), rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)
    np.testing.assert_allclose(hs[-1], out.detach().numpy(), rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)
    loss_t = torch_loss(z, torch.from_numpy(Y), torch.from_numpy(mask), head)
    loss_t.backward()
    loss, grads, mine = model.loss_and_grads(X, Y, mask, h0=user, return_state=True)
    assert loss == pytest.approx(loss_t.item(), rel=TOL_TORCH_FORWARD)
    theirs = final if isinstance(final, tuple) else (final,)
    mine = mine if isinstance(mine, tuple) else (mine,)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)
    close = dict(rtol=RTOL_TORCH_GRAD, atol=1e-14)
    np.testing.assert_allclose(grads["V"], linear.weight.grad.numpy(), **close)
    np.testing.assert_allclose(grads["c"], linear.bias.grad.numpy(), **close)
    for l in range(layers):
        np.testing.assert_allclose(grads[f"U{l}"], getattr(module, f"weight_ih_l{l}").grad.numpy(), **close)
        np.testing.assert_allclose(grads[f"W{l}"], getattr(module, f"weight_hh_l{l}").grad.numpy(), **close)
        np.testing.assert_allclose(grads[f"b{l}"], getattr(module, f"bias_ih_l{l}").grad.numpy(), **close)
        hh = getattr(module, f"bias_hh_l{l}").grad.numpy()
        if cell == "gru":
            np.testing.assert_allclose(grads[f"b{l}"][: 2 * H], hh[: 2 * H], **close)
            np.testing.assert_allclose(grads[f"bn{l}"], hh[2 * H :], **close)
        else:
            np.testing.assert_allclose(grads[f"b{l}"], hh, **close)


@pytest.mark.parametrize("kind", ["rnn-tanh", "gru", "lstm"])
def test_from_torch_without_a_head_returns_the_modules_output(torch, rng, kind):
    module = _module(torch, kind, 2, 3, 2, True)
    model = fastrnn.RNN.from_torch(module)
    assert model.head == "linear" and model.n_out == 3
    X = rng.standard_normal((2, 4, 2))
    out = module(torch.from_numpy(X))[0].detach().numpy()
    np.testing.assert_allclose(model.forward(X)[0], out, rtol=TOL_TORCH_FORWARD, atol=TOL_TORCH_FORWARD)


@pytest.mark.parametrize("kind", ["rnn-tanh", "rnn-relu", "gru", "lstm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_to_torch_round_trip(torch, rng, kind, dtype):
    cell = kind.split("-")[0]
    activation = kind.split("-")[1] if cell == "rnn" else "tanh"
    model = fastrnn.RNN(3, 4, 2, layers=2, cell=cell, activation=activation, head="linear", dtype=dtype, seed=5)
    model.theta[:] = rng.uniform(-0.5, 0.5, model.n_params)  # biases and bn non-zero too
    module, linear = model.to_torch()
    assert module.weight_hh_l0.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    back = fastrnn.RNN.from_torch(module, linear, output="linear")
    assert back.config() == {**model.config(), "seed": 0}
    np.testing.assert_array_equal(back.theta, model.theta)
    X = rng.standard_normal((2, 5, 3)).astype(dtype)
    z = linear(module(torch.from_numpy(X.transpose(1, 0, 2).copy()))[0]).detach().numpy().transpose(1, 0, 2)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(model.forward(X)[0], z, rtol=tol, atol=tol)
    assert model.to_torch(batch_first=True)[0].batch_first is True


def test_to_torch_refuses_the_sigmoid_activation(torch):
    with pytest.raises(InvalidArgument, match="activation"):
        fastrnn.RNN(2, 3, 2, activation="sigmoid").to_torch()


@pytest.mark.parametrize(
    "kind, kwargs, match",
    [
        ("lstm", dict(bidirectional=True), "module.bidirectional"),
        ("gru", dict(bidirectional=True), "module.bidirectional"),
        ("lstm", dict(proj_size=2), "module.proj_size"),
        ("gru", dict(dropout=0.5), "module.dropout"),
    ],
)
def test_from_torch_refuses_what_it_cannot_compute(torch, kind, kwargs, match):
    module = _module(torch, kind, 2, 3, 2, False, **kwargs)
    with pytest.raises(InvalidArgument, match=match):
        fastrnn.RNN.from_torch(module)


def test_from_torch_refuses_mismatched_heads_and_modules(torch):
    gru = _module(torch, "gru", 2, 3, 1, False)
    with pytest.raises(InvalidArgument, match="head.in_features"):
        fastrnn.RNN.from_torch(gru, torch.nn.Linear(4, 2, dtype=torch.float64))
    with pytest.raises(InvalidType, match="head.weight"):
        fastrnn.RNN.from_torch(gru, torch.nn.Linear(3, 2))
    with pytest.raises(InvalidType, match="head must be a torch.nn.Linear"):
        fastrnn.RNN.from_torch(gru, torch.nn.GRU(3, 2))
    with pytest.raises(InvalidType, match="nn.GRUCell"):
        fastrnn.RNN.from_torch(torch.nn.GRUCell(2, 3))
    with pytest.raises(InvalidArgument, match="output"):
        fastrnn.RNN.from_torch(gru, output="tanh")


# ----------------------------------------------------------------- the recall task


@pytest.mark.parametrize("lag", [1, 2, 7])
def test_recall_targets_the_symbol_seen_lag_steps_earlier(lag):
    from fastrnn.tasks import make_task
    from fastrnn.tasks.recall import QUERY, STORE, SYMBOLS

    task = make_task("recall", lag=lag)
    X, Y, mask = task.sample(np.random.default_rng(0), 50)
    assert X.shape == (50, lag + 1, SYMBOLS + 2) and Y.shape == (50, lag + 1, SYMBOLS)
    assert (mask[:, :-1] == 0).all() and (mask[:, -1] == 1).all()
    np.testing.assert_array_equal(Y[:, -1], X[:, 0, :SYMBOLS])  # the target is step 0's symbol
    assert (X[:, 0, STORE] == 1).all() and (X[:, 1:, STORE] == 0).all()
    assert (X[:, -1, QUERY] == 1).all() and (X[:, :-1, QUERY] == 0).all()
    assert (X[:, :-1, :SYMBOLS].sum(axis=2) == 1).all()  # a symbol at every step before the query
    again = task.sample(np.random.default_rng(0), 20)
    np.testing.assert_array_equal(again.X, X[:20])  # the draw does not depend on how it is cut


def test_recall_bad_lag_is_refused():
    from fastrnn.tasks import make_task

    with pytest.raises(InvalidArgument, match="lag"):
        make_task("recall", lag=0)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_forward_in_chunks_carries_the_whole_state(rng, cell):
    model = fastrnn.RNN(2, 3, 2, layers=2, cell=cell, seed=1)
    X = rng.standard_normal((2, 9, 2))
    yhat, hs, final = model.forward(X, return_state=True)
    y1, _, state = model.forward(X[:, :4], return_state=True)
    y2, hs2, final2 = model.forward(X[:, 4:], h0=state, return_state=True)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), yhat, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(as_four(cell, final2), as_four(cell, final), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(as_four(cell, final)[:, 0], hs[:, :, -1], rtol=0, atol=0)
    _, _, from_grads = model.loss_and_grads(X, np.zeros((2, 9, 2)) + [1.0, 0.0], return_state=True)
    np.testing.assert_allclose(as_four(cell, from_grads), as_four(cell, final), rtol=0, atol=0)


@pytest.mark.parametrize("cell", GATED)
def test_text_task_trains_and_evaluates_gated_cells(tmp_path, cell):
    from fastrnn import text

    result = fastrnn.train(task="text", iters=60, log_every=20, csv=tmp_path / "t.csv", cell=cell, hidden=8,
                           seq_length=10)
    assert result.model.cell == cell and np.isfinite(result.history["loss"]).all()
    ids = np.arange(30) % result.model.n_in
    scores = text.evaluate(result.model, ids, chunk=7)
    assert np.isfinite(scores["bpc"]) and scores["n_chars"] == 29
    whole = text.evaluate(result.model, ids)  # one chunk: the same numbers when h (and c) cross the chunk boundaries
    assert scores["loss_per_char"] == pytest.approx(whole["loss_per_char"], rel=1e-12)
