"""The open engine: carried state in the chunk kernel, the cell seam, one way in, divergence accounting."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import NumericalError, metrics


def test_a_diverging_chunk_keeps_a_row_for_the_iterations_applied_before_it(tmp_path):
    """Iteration 1 of a 5-iteration chunk is applied, iteration 2 diverges."""
    path = tmp_path / "run.csv"
    with pytest.raises(NumericalError, match=r"NaN or infinite at iteration 2;") as info:
        fastrnn.train(task="digits", digits=3, iters=2000, optimizer="sgd", activation="relu", lr=1e300, clip=0,
                      log_every=5, csv=path)
    result = info.value.result
    assert result.status == "diverged" and result.iterations == 1
    frame = pd.read_csv(path)
    assert frame["iteration"].tolist() == [1] and frame["samples"].tolist() == [32]
    assert np.all(np.isfinite(frame["loss"]))
    assert json.loads(metrics.json_path_for(path).read_text())["result"]["iterations_done"] == 1


# ---------------------------------------------------------------- carried state

import reference as ref  # noqa: E402
from conftest import RTOL_TWIN, make_data  # noqa: E402
from fastrnn import engine, optim  # noqa: E402


def stream_windows(X, Y, mask, K):
    """Cut B streams (B, T_total, .) into windows of K steps, as the chunk kernel reads them:
    iteration w uses rows w*B .. w*B+B-1, row w*B+i being stream i's steps w*K .. w*K+K-1."""
    B, T_total = X.shape[0], X.shape[1]
    n = T_total // K

    def cut(A):
        return np.ascontiguousarray(np.concatenate([A[:, w * K : (w + 1) * K] for w in range(n)]))

    return cut(X), cut(Y), None if mask is None else cut(mask)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("kind,truncate,masked", [("sgd", None, False), ("adagrad", 2, True), ("rmsprop", None, True)])
def test_stateful_windows_equal_a_python_loop_of_loss_and_grads(rng, kind, truncate, masked):
    """train_chunk with hstate/resets equals loss_and_grads(h0=..., return_state=True) + Optimizer.step,
    window after window, with resets at the start and in the middle."""
    B, n, K, I, H, O, L = 3, 6, 5, 2, 4, 3, 2
    X, Y, mask = make_data(rng, B, n * K, I, O, "softmax", masked)
    if masked:
        mask[:, -1] = 0.0
    Xw, Yw, Mw = stream_windows(X, Y, mask, K)
    resets = np.array([1, 0, 0, 1, 0, 0], dtype=np.int64)
    model = fastrnn.RNN(I, H, O, layers=L, seed=3, init_scale=0.8)
    loop = model.copy()
    opt = fastrnn.Optimizer(kind, lr=0.05, clip_norm=2.0)
    ref_losses, ref_norms = [], []
    h = None
    for w in range(n):
        if resets[w]:
            h = np.zeros((L, B, H))
        rows = slice(w * B, (w + 1) * B)
        loss, grads, h = loop.loss_and_grads(Xw[rows], Yw[rows], mask=None if Mw is None else Mw[rows],
                                             bptt_truncate=truncate, h0=h, return_state=True)
        ref_losses.append(loss)
        ref_norms.append(opt.step(loop, grads))
    hstate = engine.new_state(model, B)
    hstate[:] = 7.0  # garbage the first reset must clear
    buf = np.empty(engine.chunk_scratch_size(model, K, B))
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
    done = engine.train_chunk(model, -1 if truncate is None else truncate, Xw, Yw, np.zeros((0, 0)) if Mw is None else Mw,
                              B, optim.OPTIMIZERS[kind], 0.05, opt.hyper, np.zeros((2, model.n_params)), 0, 2.0, 0.0,
                              hstate, resets, buf, losses, norms, errors)
    assert done == n
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL_TWIN)
    np.testing.assert_allclose(norms, ref_norms, rtol=RTOL_TWIN)
    np.testing.assert_allclose(model.theta, loop.theta, rtol=RTOL_TWIN, atol=1e-13)
    np.testing.assert_allclose(hstate.reshape(L, B, H), h, rtol=RTOL_TWIN, atol=1e-13)


@pytest.mark.usefixtures("kernel_choice")
def test_carried_state_matches_the_reference_over_two_windows(rng):
    """The first windows' losses against the plain-numpy reference, state carried by its own forward."""
    B, K, I, H, O = 2, 4, 3, 5, 2
    X, Y, _ = make_data(rng, B, 2 * K, I, O, "sigmoid")
    params = ref.init_params(I, H, O, 1, rng)
    from conftest import model_from_params

    model = model_from_params(params, "tanh", "sigmoid")
    Xw, Yw, _ = stream_windows(X, Y, None, K)
    hstate = engine.new_state(model, B)
    buf = np.empty(engine.chunk_scratch_size(model, K, B))
    losses, norms, errors = np.empty(2), np.empty(2), np.empty(2 * B, dtype=np.int64)
    lr = 0.1
    engine.train_chunk(model, -1, Xw, Yw, np.zeros((0, 0)), B, optim.SGD, lr, optim.hyper_array(), np.zeros((2, model.n_params)),
                       0, 0.0, 0.0, hstate, np.array([1, 0], dtype=np.int64), buf, losses, norms, errors)
    loss0, grads = ref.loss_and_grads(params, X[:, :K], Y[:, :K], None, "tanh", "sigmoid")
    _, states = ref.forward(params, X[:, :K], "tanh", "sigmoid")
    h1 = states[:, :, -1]
    stepped = {k: v - lr * grads[k] for k, v in params.items()}
    loss1, grads1 = ref.loss_and_grads(stepped, X[:, K:], Y[:, K:], None, "tanh", "sigmoid", h0=h1)
    _, states1 = ref.forward(stepped, X[:, K:], "tanh", "sigmoid", h0=h1)
    np.testing.assert_allclose(losses, [loss0, loss1], rtol=RTOL_TWIN)
    np.testing.assert_allclose(hstate.reshape(1, B, H), states1[:, :, -1], rtol=RTOL_TWIN)
    final = {k: v - lr * grads1[k] for k, v in stepped.items()}
    for name, v in final.items():
        np.testing.assert_allclose(model.params[name], v, rtol=RTOL_TWIN, atol=1e-13, err_msg=name)


def test_resets_everywhere_equal_no_resets(rng):
    B, n, T = 2, 4, 6
    X, Y, _ = make_data(rng, n * B, T, 3, 2, "softmax")
    outs = []
    for resets in (None, np.ones(n, dtype=np.int64)):
        model = fastrnn.RNN(3, 4, 2, seed=1)
        losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
        engine.train_chunk(model, -1, X, Y, np.zeros((0, 0)), B, optim.ADAM, 0.01, optim.hyper_array(),
                           np.zeros((2, model.n_params)), 0, 0.0, 0.0, engine.new_state(model, B), resets,
                           np.empty(engine.chunk_scratch_size(model, T, B)), losses, norms, errors)
        outs.append((losses, model.theta))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


@pytest.mark.usefixtures("kernel_choice")
def test_many_models_carry_their_own_state(rng):
    """train_chunks_many with per-model hstates and resets equals train_chunk model by model."""
    B, n, K, I, H, O = 2, 4, 3, 2, 3, 2
    resets = np.array([[1, 0, 0, 0], [1, 0, 1, 0]], dtype=np.int64)
    models = [fastrnn.RNN(I, H, O, seed=s) for s in (0, 1)]
    data = [stream_windows(*make_data(rng, B, n * K, I, O, "softmax")[:2], None, K)[:2] for _ in models]
    singles = []
    for m, model in enumerate(models):
        one = model.copy()
        hstate = engine.new_state(one, B)
        losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
        engine.train_chunk(one, -1, data[m][0], data[m][1], np.zeros((0, 0)), B, optim.MOMENTUM, 0.1,
                           optim.hyper_array(), np.zeros((2, one.n_params)), 0, 0.0, 0.0, hstate, resets[m],
                           np.empty(engine.chunk_scratch_size(one, K, B)), losses, norms, errors, False)
        singles.append((one.theta, hstate, losses))
    thetas = np.stack([m.theta for m in models])
    hstates = np.full((2, engine.state_size(models[0], B)), 3.0)
    losses, norms, errors = np.empty((2, n)), np.empty((2, n)), np.empty((2, n * B), dtype=np.int64)
    done = np.zeros(2, dtype=np.int64)
    engine.train_chunks_many(thetas, np.stack([m.dims for m in models]), np.array([-1, -1]), np.stack([d[0] for d in data]),
                             np.stack([d[1] for d in data]), np.zeros((0, 0, 0)), B, np.array([optim.MOMENTUM] * 2),
                             np.array([0.1, 0.1]), np.stack([optim.hyper_array()] * 2), np.zeros((2, 2, models[0].n_params)),
                             np.zeros(2, dtype=np.int64), np.zeros(2), hstates, resets,
                             np.empty((2, engine.chunk_scratch_size(models[0], K, B))), np.full(2, n), losses, norms,
                             errors, done)
    assert done.tolist() == [n, n]
    for m, (theta, hstate, ls) in enumerate(singles):
        np.testing.assert_array_equal(thetas[m], theta)
        np.testing.assert_array_equal(hstates[m], hstate)
        np.testing.assert_array_equal(losses[m], ls)


# ---------------------------------------------------------------- cell seam and public names


@pytest.mark.parametrize("layers", [1, 3])
def test_layout_tiles_theta_in_the_documented_order(layers):
    model = fastrnn.RNN(3, 4, 2, layers=layers)
    expected = []
    for l in range(layers):
        expected += [(f"U{l}", (4, 3 if l == 0 else 4)), (f"W{l}", (4, 4)), (f"b{l}", (4,))]
    expected += [("V", (2, 4)), ("c", (2,))]
    assert [(name, shape) for name, shape, _ in model.layout] == expected
    end = 0
    for name, shape, off in model.layout:
        assert off == end, name
        end += int(np.prod(shape))
    assert end == model.n_params == model.theta.shape[0]
    assert model.dims.tolist()[:4] == [3, 4, 2, layers] and model.dims.dtype == np.int64


def test_the_cell_is_an_argument_saved_with_the_model(tmp_path):
    model = fastrnn.RNN(2, 3, 2, cell="rnn")
    assert model.config()["cell"] == "rnn"
    loaded = fastrnn.RNN.load(model.save(tmp_path / "m.npz"))
    assert loaded.cell == "rnn" and loaded.config() == model.config()
    with pytest.raises(fastrnn.InvalidArgument, match="cell must be one of"):
        fastrnn.RNN(2, 3, 2, cell="gru-not-yet")


def test_flatten_grads_is_the_layout_of_theta(rng):
    model = fastrnn.RNN(3, 4, 2, layers=2)
    X, Y, _ = make_data(rng, 2, 5, 3, 2, "softmax")
    _, grads = model.loss_and_grads(X, Y)
    flat = model.flatten_grads(grads)
    for name, shape, off in model.layout:
        np.testing.assert_array_equal(flat[off : off + int(np.prod(shape))].reshape(shape), grads[name])
