"""The small-model kernel for every cell and depth (fastrnn._small_cells): the reference's numbers, and
the general driver's to rounding."""

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_FLOAT32, RTOL_TWIN, make_data, model_from_params
from fastrnn import _small_cells, _train_kernel, dispatch, engine, optim

TWIN = dict(rtol=RTOL_TWIN, atol=ATOL_TWIN)

#: (cell, layers, activation) of every kind of model the kernel takes: gated cells at one and two layers,
#: stacked vanilla layers with two activations.
MODELS = [("gru", 1, "tanh"), ("gru", 2, "tanh"), ("lstm", 1, "tanh"), ("lstm", 2, "tanh"), ("rnn", 2, "tanh"),
          ("rnn", 3, "relu")]


def _model(cell, layers, act, I, H, O, head, dtype="float64", seed=4):
    return fastrnn.RNN(I, H, O, layers=layers, cell=cell, activation=act, head=head, seed=seed, init_scale=1.1,
                       dtype=dtype)


def _chunk(kernel, model, X, Y, M, B, code, resets, n, clip=0.0, clip_value=0.0, lr=0.05):
    """n iterations of ``kernel`` ("cells" or "general") on ``model`` in place, from a carried state of 0.25."""
    hstate = np.full(engine.state_size(model, B), 0.25, dtype=model.dtype)
    losses, norms, errors = np.empty(n, model.dtype), np.empty(n, model.dtype), np.empty(n * B, dtype=np.int64)
    state = np.zeros((2, model.n_params), model.dtype)
    T = X.shape[1]
    args = (model.theta, model.dims)
    rest = (B, code, lr, optim.hyper_array(), state, 0, clip, clip_value, hstate, resets)
    if kernel == "cells":
        buf = np.empty(_small_cells.scratch_size(T, B, model.dims, model.n_params), model.dtype)
        done = _small_cells.train_chunk(*args, X, Y, M, *rest, buf, losses, norms, errors, engine.cellset(model.dims))
    else:
        buf = np.empty(int(_train_kernel.chunk_scratch_size(T, B, model.dims, model.n_params)), model.dtype)
        done = _train_kernel.train_chunk_any(*args, -1, X, Y, M, *rest, buf, losses, norms, errors, True,
                                             engine.cellset(model.dims))
    return done, losses, norms, errors, hstate


@pytest.mark.parametrize("cell,layers,act", MODELS)
@pytest.mark.parametrize("head,masked,B", [("softmax", False, 1), ("sigmoid", True, 3), ("linear", True, 2)])
def test_the_cells_kernel_equals_the_general_driver(rng, cell, layers, act, head, masked, B):
    """Every loss, norm, error count, carried state and parameter of five iterations (resets in the middle,
    clipping by norm and value) equal to the general driver's at the twins' tolerance."""
    n, T, I, H, O = 5, 6, 3, 5, 4
    X, Y, mask = make_data(rng, n * B, T, I, O, head, masked)
    M = np.zeros((0, 0)) if mask is None else mask
    resets = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    model = _model(cell, layers, act, I, H, O, head)
    general = model.copy()
    got = _chunk("cells", model, X, Y, M, B, optim.SGD, resets, n, clip=0.9, clip_value=0.3)
    want = _chunk("general", general, X, Y, M, B, optim.SGD, resets, n, clip=0.9, clip_value=0.3)
    assert got[0] == want[0] == n
    np.testing.assert_array_equal(got[3], want[3])
    for a, b in zip(got[1:3] + got[4:], want[1:3] + want[4:]):
        np.testing.assert_allclose(a, b, **TWIN)
    np.testing.assert_allclose(model.theta, general.theta, **TWIN)


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
def test_every_optimizer_runs_on_the_cells_kernel(rng, kind):
    """Each registered optimizer's update, on two vanilla layers (the kernel compiled for vanilla cells only:
    a few seconds each, the update the same code for every cell): the general driver's parameters after
    three iterations (to 1e-8: the adaptive optimizers divide by the square root of sums of squares, which
    carries last-bit differences further than a plain step)."""
    n, T, I, H, O, B = 3, 5, 2, 4, 2, 2
    X, Y, _ = make_data(rng, n * B, T, I, O, "softmax")
    model = _model("rnn", 2, "tanh", I, H, O, "softmax")
    general = model.copy()
    code = optim.OPTIMIZERS[kind]
    got = _chunk("cells", model, X, Y, np.zeros((0, 0)), B, code, np.zeros(0, np.int64), n, lr=0.01)
    want = _chunk("general", general, X, Y, np.zeros((0, 0)), B, code, np.zeros(0, np.int64), n, lr=0.01)
    assert got[0] == want[0] == n
    np.testing.assert_allclose(got[1], want[1], **TWIN)
    np.testing.assert_allclose(model.theta, general.theta, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("head,masked", [("softmax", False), ("sigmoid", True), ("linear", True)])
def test_stacked_vanilla_layers_on_the_cells_kernel_match_the_reference(rng, act, head, masked):
    """Three vanilla layers, one SGD iteration: the loss and every parameter after the step against
    tests/reference.py's BPTT (rtol 1e-10)."""
    B, T, I, H, O, lr = 2, 5, 2, 4, 3, 0.1
    X, Y, mask = make_data(rng, B, T, I, O, head, masked)
    params = ref.init_params(I, H, O, 3, rng, scale=0.8)
    model = model_from_params(params, act, head)
    assert dispatch.for_model(model, T, B).name == "small-cells"
    losses, norms, errors = np.empty(1), np.empty(1), np.empty(B, dtype=np.int64)
    done = engine.train_chunk(model, -1, X, Y, np.zeros((0, 0)) if mask is None else mask, B, optim.SGD, lr,
                              optim.hyper_array(), np.zeros((2, model.n_params)), 0, 0.0, 0.0,
                              engine.new_state(model, B), None, np.empty(engine.chunk_scratch_size(model, T, B)), losses,
                              norms, errors)
    assert done == 1
    loss, grads = ref.loss_and_grads(params, X, Y, mask, act, head)
    assert losses[0] == pytest.approx(loss, rel=RTOL_TWIN)
    for name, v in params.items():
        np.testing.assert_allclose(model.params[name], v - lr * grads[name], err_msg=name, **TWIN)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_float32_on_the_cells_kernel_follows_float64(rng, cell):
    n, T, I, H, O, B = 4, 5, 2, 4, 2, 1
    X, Y, _ = make_data(rng, n * B, T, I, O, "sigmoid")
    wide = _model(cell, 2, "tanh", I, H, O, "sigmoid")
    narrow = _model(cell, 2, "tanh", I, H, O, "sigmoid", dtype="float32")
    narrow.theta[:] = wide.theta
    got = _chunk("cells", narrow, X.astype(np.float32), Y.astype(np.float32), np.zeros((0, 0), np.float32), B,
                 optim.SGD, np.zeros(0, np.int64), n)
    want = _chunk("cells", wide, X, Y, np.zeros((0, 0)), B, optim.SGD, np.zeros(0, np.int64), n)
    assert got[0] == want[0] == n
    np.testing.assert_allclose(got[1], want[1], rtol=RTOL_FLOAT32)
    np.testing.assert_allclose(narrow.theta, wide.theta, rtol=RTOL_FLOAT32, atol=1e-5)


def test_a_diverging_iteration_is_not_applied_on_the_cells_kernel(rng):
    """As on the general driver: the chunk stops before the iteration whose loss is not finite, and the
    parameters are those of the iterations before it."""
    n, B, T = 3, 1, 4
    X, Y, _ = make_data(rng, n * B, T, 2, 2, "linear")
    X[2, 1, 0] = np.inf
    model = _model("lstm", 1, "tanh", 2, 3, 2, "linear")
    general = model.copy()
    got = _chunk("cells", model, X, Y, np.zeros((0, 0)), B, optim.SGD, np.zeros(0, np.int64), n)
    want = _chunk("general", general, X, Y, np.zeros((0, 0)), B, optim.SGD, np.zeros(0, np.int64), n)
    assert got[0] == want[0] == 2
    np.testing.assert_allclose(model.theta, general.theta, **TWIN)


@pytest.mark.parametrize("settings", [dict(cell="gru", hidden=6), dict(layers=2, hidden=4)])
def test_small_gated_and_stacked_runs_trained_together_equal_their_run_alone(settings):
    """A sweep trains models whose products all stay in the hand loops together (the general driver, one model
    a thread); each run alone takes the cells kernel. Within the hand loops both compute every sum in the
    same order: the same parameters, bit for bit."""
    runs = [dict(task="binary", iters=300, log_every=100, seed=s, **settings) for s in (0, 1)]
    assert all(fastrnn.training.can_train_together(r) for r in runs)
    together = fastrnn.training.train_many(runs)
    alone = [fastrnn.train(**r) for r in runs]
    for a, b in zip(together, alone):
        assert (a.kernel.name, b.kernel.name) == ("many-general", "small-cells")
        np.testing.assert_array_equal(a.model.theta, b.model.theta)


def _choose(model, T, B, **settings):
    return dispatch.for_model(model, T, B, **settings).name


def test_the_cells_kernel_is_chosen_for_small_gated_and_stacked_models_with_full_bptt(monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)
    for cell, layers in (("gru", 1), ("lstm", 1), ("rnn", 2), ("lstm", 3)):
        model = fastrnn.RNN(2, 16, 1, cell=cell, layers=layers, head="sigmoid")
        assert _choose(model, 8, 1) == "small-cells"
        assert _choose(model, 8, 1, K=7) == "small-cells"  # K >= T - 1 is full BPTT
        assert _choose(model, 8, 1, K=3) == "general"  # truncated: the general driver
        assert _choose(model, 8, dispatch.CELLS_MAX_BATCH + 1) == "general"
        assert _choose(model, 8, 1, chars=True, fused_text=False) == "general"
    assert _choose(fastrnn.RNN(2, 16, 1, head="sigmoid"), 8, 1) == "small-lean"  # one vanilla layer: the lean kernel
    assert _choose(fastrnn.RNN(2, 32, 1, cell="lstm"), 8, 1) == "small-cells"  # 4 x 32 = 128 gate units
    assert _choose(fastrnn.RNN(2, 33, 1, cell="lstm"), 8, 1) == "general"
    assert _choose(fastrnn.RNN(129, 8, 1, cell="gru"), 8, 1) == "general"  # inputs past the bound
    monkeypatch.setenv(dispatch.ENV, "general")
    assert _choose(fastrnn.RNN(2, 16, 1, cell="gru"), 8, 1) == "general"


def test_a_gru_run_records_the_cells_kernel_and_forcing_the_general_one_gives_its_numbers(tmp_path, monkeypatch):
    """fastrnn.train on the binary task with a GRU: the result and the JSON name the kernel; forced to the
    general driver the same run gives the same losses and parameters to rounding."""
    monkeypatch.delenv(dispatch.ENV, raising=False)
    settings = dict(task="binary", iters=300, seed=2, cell="gru", log_every=100)
    fast = fastrnn.train(**settings, csv=tmp_path / "fast.csv")
    assert fast.kernel.name == "small-cells" and "any cell and depth" in fast.kernel.reason
    assert fastrnn.read_run(tmp_path / "fast.csv")[1]["result"]["kernel"] == "small-cells"
    monkeypatch.setenv(dispatch.ENV, "general")
    general = fastrnn.train(**settings, csv=tmp_path / "general.csv")
    assert general.kernel.name == "general"
    assert fast.iterations == general.iterations == 300
    for column in ("loss", "grad_norm"):
        np.testing.assert_allclose(fast.history[column], general.history[column], rtol=1e-9)
    np.testing.assert_allclose(fast.model.theta, general.model.theta, rtol=1e-8, atol=1e-12)


def test_the_compile_note_asks_after_the_cells_kernel_of_the_runs_optimizer_and_head(tmp_path, monkeypatch):
    """The note looks for the kernel made for the run's optimizer and head, and gives a gated cell's compile
    time (the kernel then compiles every cell's steps) or a vanilla stack's."""
    import io
    from types import SimpleNamespace

    monkeypatch.delenv(dispatch.ENV, raising=False)
    fake = SimpleNamespace(signatures=[], _cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(tmp_path / "k.nbi"))))
    asked = []
    monkeypatch.setattr(_small_cells, "cells_kernel", lambda *key: asked.append(key) or fake)
    out = io.StringIO()
    gru = fastrnn.RNN(2, 16, 1, cell="gru", head="softmax")
    assert engine.compile_note(gru, 8, 1, out, options=(optim.ADAM, -1, 0.0, 0.0)) is not None
    assert "compiling the gated small-model training kernels once, about 12 s" in out.getvalue()
    assert asked == [(optim.ADAM, 0)]
    out = io.StringIO()
    assert engine.compile_note(fastrnn.RNN(2, 16, 1, layers=2), 8, 1, out, options=(optim.SGD, -1, 0.0, 0.0))
    assert "compiling the small-model training kernels once, about 4 s" in out.getvalue()
    (tmp_path / "k.nbi").write_text("")
    assert engine.compile_note(gru, 8, 1, io.StringIO(), options=(optim.SGD, -1, 0.0, 0.0)) is None


def test_a_buffer_sized_without_the_truncation_serves_either_kernel():
    """``engine.chunk_scratch_size(model, T, B)`` is not told the truncation, which decides between this kernel
    (full BPTT) and the general driver (truncated): its size covers both, also where the output layer
    outweighs this kernel's own arrays (a GRU of 2 units into 128 outputs)."""
    for model in (fastrnn.RNN(1, 2, 128, cell="gru"), fastrnn.RNN(2, 16, 1, cell="lstm", layers=2)):
        assert dispatch.for_model(model, 8, 1).name == "small-cells"
        assert dispatch.for_model(model, 8, 1, K=2).name == "general"
        size = engine.chunk_scratch_size(model, 8, 1)
        assert size >= int(_train_kernel.chunk_scratch_size(8, 1, model.dims, model.n_params))
