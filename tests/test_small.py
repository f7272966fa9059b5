"""The small-model path (fastrnn._small): the general kernel's numbers, and the reference's."""

import numpy as np
import pytest

import fastrnn
import reference as ref
from conftest import ATOL_TWIN, RTOL_TWIN, make_data, model_from_params
from fastrnn import _small, _train_kernel, dispatch, engine, optim

CASES = [(act, head, masked, K, B) for act in ("tanh", "sigmoid", "relu", "softsign") for head in ("softmax", "sigmoid", "linear")
         for masked, K, B in ((False, None, 1), (True, 1, 3), (True, None, 2), (False, 2, 1))]


def _lean_fits(dims, T, B, opt, K, clip_norm, clip_value):
    """Whether the many-model SGD lean kernel can serve a model (fastrnn.dispatch's two predicates of ``many-small-sgd``)."""
    return dispatch.small_fits(dims, T, B) and dispatch.sgd_fits(dims, T, opt, K, clip_norm, clip_value)


def _chunk(fn, model, K, X, Y, M, B, kind, resets, n, extra=(), clip=1.5, clip_value=0.0):
    hstate = np.full(engine.state_size(model, B), 0.25)
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
    state = np.zeros((2, model.n_params))
    T = X.shape[1]
    buf = np.empty(max(_train_kernel.chunk_scratch_size(T, B, model.dims, model.n_params),  # the general kernel's
                       engine.chunk_scratch_size(model, T, B)))
    done = fn(model.theta, model.dims, K, X, Y, M, B, kind, 0.05, optim.hyper_array(), state, 0, clip, clip_value, hstate,
              resets, buf, losses, norms, errors, *extra)
    return done, losses, norms, errors, hstate


#: The small-model kernels with train_chunk's arguments: the one that branches on every setting, and the
#: lean kernel specialised for each call's optimizer, head and truncation (what a training run calls).
SMALL_KERNELS = {"small": _small.train_chunk, "lean": _small.LeanCall()}


@pytest.mark.parametrize("act,head,masked,K,B", CASES)
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("kernel", sorted(SMALL_KERNELS))
def test_small_train_chunk_gives_the_general_kernels_numbers_exactly(rng, act, head, masked, K, B, kind, kernel):
    """Same arithmetic in the same order: every loss, norm, error count, state and parameter equal bit for bit,
    with carried state, resets in the middle, clipping and truncation."""
    n, T, I, H, O = 5, 6, 3, 5, 4
    X, Y, mask = make_data(rng, n * B, T, I, O, head, masked)
    M = np.zeros((0, 0)) if mask is None else mask
    resets = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    Kc = -1 if K is None else K
    model = fastrnn.RNN(I, H, O, activation=act, head=head, seed=4, init_scale=1.2)
    assert dispatch.small_fits(model.dims, T, B)
    general = model.copy()
    got = _chunk(SMALL_KERNELS[kernel], model, Kc, X, Y, M, B, optim.OPTIMIZERS[kind], resets, n)
    want = _chunk(_train_kernel.train_chunk_any, general, Kc, X, Y, M, B, optim.OPTIMIZERS[kind], resets, n, (True, None))
    assert got[0] == want[0] == n
    for a, b in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.theta, general.theta)


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
@pytest.mark.parametrize("clip,clip_value", [(0.0, 0.0), (0.7, 0.0), (0.0, 0.05), (0.7, 0.05)])
def test_the_lean_kernel_gives_the_general_kernels_numbers_for_every_optimizer_and_clipping(rng, kind, clip, clip_value):
    """Every registered optimizer, clipping off, by norm, by value and both, on the lean kernel: bit for bit
    the general kernel's losses, norms, error counts, state and parameters (truncated BPTT, resets)."""
    n, T, I, H, O, B = 5, 6, 3, 5, 2, 2
    X, Y, mask = make_data(rng, n * B, T, I, O, "sigmoid", True)
    resets = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    model = fastrnn.RNN(I, H, O, activation="tanh", head="sigmoid", seed=4, init_scale=1.2)
    general = model.copy()
    code = optim.OPTIMIZERS[kind]
    got = _chunk(_small.LeanCall(), model, 2, X, Y, mask, B, code, resets, n, clip=clip, clip_value=clip_value)
    want = _chunk(_train_kernel.train_chunk_any, general, 2, X, Y, mask, B, code, resets, n, (True, None), clip=clip,
                  clip_value=clip_value)
    assert got[0] == want[0] == n
    for a, b in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.theta, general.theta)


def test_an_unknown_optimizer_code_has_no_lean_kernel():
    with pytest.raises(KeyError):
        _small.lean_kernel(max(optim.OPTIMIZERS.values()) + 1, 1, False)


def _assert_two_windows_are_the_references(model, params, X, Y, mask, act, head, K, lr, losses, hstate):
    """Two SGD iterations of ``model`` on the two halves of a stream (its state carried from the first into
    the second) against tests/reference.py: the losses, the final state and the parameters (rtol 1e-10).
    Returns the reference's gradient of the first window."""
    B, T, H = X.shape[0], X.shape[1] // 2, model.n_hidden
    m0 = None if mask is None else mask[:, :T]
    m1 = None if mask is None else mask[:, T:]
    loss0, g0 = ref.loss_and_grads(params, X[:, :T], Y[:, :T], m0, act, head, bptt_truncate=K)
    _, s0 = ref.forward(params, X[:, :T], act, head)
    p1 = {k: v - lr * g0[k] for k, v in params.items()}
    loss1, g1 = ref.loss_and_grads(p1, X[:, T:], Y[:, T:], m1, act, head, bptt_truncate=K, h0=s0[:, :, -1])
    _, s1 = ref.forward(p1, X[:, T:], act, head, h0=s0[:, :, -1])
    np.testing.assert_allclose(losses, [loss0, loss1], rtol=RTOL_TWIN)
    np.testing.assert_allclose(hstate.reshape(1, B, H), s1[:, :, -1], rtol=RTOL_TWIN, atol=ATOL_TWIN)
    for name, v in p1.items():
        np.testing.assert_allclose(model.params[name], v - lr * g1[name], rtol=RTOL_TWIN, atol=ATOL_TWIN, err_msg=name)
    return g0


@pytest.mark.parametrize("act,head,masked,K,B", CASES)
@pytest.mark.parametrize("kernel", sorted(SMALL_KERNELS))
def test_small_train_chunk_matches_the_reference_over_carried_windows(rng, act, head, masked, K, B, kernel):
    """Two SGD iterations on a stream (state carried from the first window into the second) against
    tests/reference.py: losses, final state and parameters at rtol 1e-10."""
    T, I, H, O, lr = 5, 2, 6, 3, 0.1
    X, Y, mask = make_data(rng, B, 2 * T, I, O, head, masked)
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    model = model_from_params(params, act, head)
    cut = lambda A: np.ascontiguousarray(np.concatenate([A[:, :T], A[:, T:]]))  # noqa: E731
    Xw, Yw = cut(X), cut(Y)
    Mw = np.zeros((0, 0)) if mask is None else cut(mask)
    hstate = np.full(engine.state_size(model, B), 9.0)  # the reset must clear it
    losses, norms, errors = np.empty(2), np.empty(2), np.empty(2 * B, dtype=np.int64)
    done = SMALL_KERNELS[kernel](model.theta, model.dims, -1 if K is None else K, Xw, Yw, Mw, B, optim.SGD, lr,
                              optim.hyper_array(), np.zeros((2, model.n_params)), 0, 0.0, 0.0, hstate,
                              np.array([1, 0], dtype=np.int64), np.empty(engine.chunk_scratch_size(model, T, B)), losses,
                              norms, errors)
    assert done == 2
    _assert_two_windows_are_the_references(model, params, X, Y, mask, act, head, K, lr, losses, hstate)


#: A shape past the general driver's hand loops (T*B*H*H = 9216 multiply-adds: BLAS there) that the lean
#: kernel still takes for one model's training (batch x widest layer 48, below dispatch.LEAN_MAX_BATCH_WIDTH).
WIDE = dict(T=8, B=2, I=3, H=24, O=2)


@pytest.mark.parametrize("K", [None, 2])
def test_the_lean_kernel_past_the_hand_loops_matches_the_reference(rng, K):
    """Where the general driver's products go to BLAS the lean kernel still trains one model: two SGD
    iterations on a stream against tests/reference.py at rtol 1e-10 (full and truncated BPTT)."""
    T, B, I, H, O = (WIDE[k] for k in "TBIHO")
    lr = 0.1
    X, Y, mask = make_data(rng, B, 2 * T, I, O, "softmax", True)
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    model = model_from_params(params, "tanh", "softmax")
    assert not dispatch.small_fits(model.dims, T, B) and dispatch.lean_fits(model.dims, T, B)
    choice = dispatch.for_model(model, T, B)
    assert choice.name == "small-lean" and "to rounding" in choice.reason
    cut = lambda A: np.ascontiguousarray(np.concatenate([A[:, :T], A[:, T:]]))  # noqa: E731
    hstate = np.full(engine.state_size(model, B), 9.0)
    losses, norms, errors = np.empty(2), np.empty(2), np.empty(2 * B, dtype=np.int64)
    done = _small.LeanCall()(model.theta, model.dims, -1 if K is None else K, cut(X), cut(Y), cut(mask), B, optim.SGD, lr,
                             optim.hyper_array(), np.zeros((2, model.n_params)), 0, 0.0, 0.0, hstate,
                             np.array([1, 0], dtype=np.int64), np.empty(engine.chunk_scratch_size(model, T, B)), losses,
                             norms, errors)
    assert done == 2
    _assert_two_windows_are_the_references(model, params, X, Y, mask, "tanh", "softmax", K, lr, losses, hstate)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_the_lean_kernel_past_the_hand_loops_equals_the_general_driver_to_rounding(rng, kind):
    """The same run on the general driver, whose products there go to BLAS: the same sums in another order,
    so every loss, norm and parameter equal to rounding (the twins' tolerance: Adam's step divides by the
    gradient's size and carries the last bits further), the error counts exactly."""
    T, B, I, H, O = (WIDE[k] for k in "TBIHO")
    n = 5
    X, Y, mask = make_data(rng, n * B, T, I, O, "sigmoid", True)
    resets = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    model = fastrnn.RNN(I, H, O, activation="tanh", head="sigmoid", seed=4, init_scale=1.2)
    general = model.copy()
    code = optim.OPTIMIZERS[kind]
    got = _chunk(_small.LeanCall(), model, 3, X, Y, mask, B, code, resets, n)
    want = _chunk(_train_kernel.train_chunk_any, general, 3, X, Y, mask, B, code, resets, n, (True, None))
    assert got[0] == want[0] == n
    np.testing.assert_array_equal(got[3], want[3])
    for a, b in zip(got[1:3] + got[4:], want[1:3] + want[4:]):
        np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(model.theta, general.theta, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@pytest.mark.parametrize("settings", [dict(), dict(optimizer="adam", lr=0.01)], ids=["sgd", "adam"])
def test_runs_past_the_hand_loops_trained_together_each_equal_their_run_alone(settings):
    """32 hidden units at the binary shape: one run alone takes the lean kernel, and so do such runs trained
    together (train_many): each model's weights and rows bit for bit its run's alone."""
    from fastrnn.training import train_many

    base = dict(task="binary", hidden=32, iters=120, log_every=40, **settings)
    together = train_many([dict(base, seed=s) for s in (0, 1)])
    assert together[0].kernel.name == ("many-small-sgd" if not settings else "many-small")
    for s, got in zip((0, 1), together):
        alone = fastrnn.train(seed=s, **base)
        assert alone.kernel.name == "small-lean"
        np.testing.assert_array_equal(got.model.theta, alone.model.theta)
        np.testing.assert_array_equal(got.history["loss"].to_numpy(), alone.history["loss"].to_numpy())


def test_shapes_that_need_blas_or_more_layers_take_the_general_path():
    assert dispatch.small_fits(fastrnn.RNN(2, 16, 1).dims, 8, 1)
    assert not dispatch.small_fits(fastrnn.RNN(2, 16, 1, layers=2).dims, 8, 1)
    assert not dispatch.small_fits(fastrnn.RNN(20, 100, 10).dims, 10, 32)


def test_a_diverging_iteration_is_not_applied(rng):
    """Like the general kernel: the chunk stops before applying a non-finite loss."""
    n, B, T = 3, 1, 4
    X, Y, _ = make_data(rng, n * B, T, 2, 2, "linear")
    X[2, 1, 0] = np.inf
    model = fastrnn.RNN(2, 3, 2, head="linear", seed=1)
    general = model.copy()
    got = _chunk(_small.train_chunk, model, -1, X, Y, np.zeros((0, 0)), B, optim.SGD, np.zeros(0, np.int64), n)
    want = _chunk(_train_kernel.train_chunk_any, general, -1, X, Y, np.zeros((0, 0)), B, optim.SGD, np.zeros(0, np.int64),
                  n, (True, None))
    assert got[0] == want[0] == 2
    np.testing.assert_array_equal(model.theta, general.theta)
    np.testing.assert_array_equal(got[1][:2], want[1][:2])


def _assert_loss_and_grads_are_the_references(rng, model, params, X, Y, mask, act, head, K):
    """model.loss_and_grads from a random h0 against tests/reference.py: loss, final state and every gradient."""
    h0 = rng.standard_normal((1, X.shape[0], model.n_hidden)) * 0.5
    loss, grads, h_final = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K, h0=h0, return_state=True)
    want_loss, want = ref.loss_and_grads(params, X, Y, mask, act, head, bptt_truncate=K, h0=h0)
    _, states = ref.forward(params, X, act, head, h0=h0)
    np.testing.assert_allclose(loss, want_loss, rtol=RTOL_TWIN)
    np.testing.assert_allclose(h_final, states[:, :, -1], rtol=RTOL_TWIN, atol=ATOL_TWIN)
    for name, g in want.items():
        np.testing.assert_allclose(grads[name], g, rtol=RTOL_TWIN, atol=ATOL_TWIN, err_msg=name)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("act,head,masked,K,B", CASES[::2])
def test_loss_and_grads_on_the_small_path_matches_the_reference(rng, act, head, masked, K, B):
    T, I, H, O = 6, 3, 5, 4
    X, Y, mask = make_data(rng, B, T, I, O, head, masked)
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    model = model_from_params(params, act, head)
    assert dispatch.small_fits(model.dims, T, B)
    _assert_loss_and_grads_are_the_references(rng, model, params, X, Y, mask, act, head, K)


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("K", [None, 3])
def test_loss_and_grads_past_the_hand_loops_matches_the_reference(rng, K, kernel_choice):
    """At a shape past the general driver's hand loops, loss_and_grads takes the small-model kernel (unless
    forced to the general one) and matches tests/reference.py."""
    T, B, I, H, O = (WIDE[k] for k in "TBIHO")
    X, Y, mask = make_data(rng, B, T, I, O, "softmax", True)
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    model = model_from_params(params, "tanh", "softmax")
    choice = dispatch.for_model(model, T, B, "grads")
    assert choice.name == ("small" if kernel_choice == "auto" else "general")
    _assert_loss_and_grads_are_the_references(rng, model, params, X, Y, mask, "tanh", "softmax", K)


@pytest.mark.usefixtures("kernel_choice")
def test_train_many_on_the_small_path_equals_separate_runs():
    """The sweep's parallel kernel takes the small path model by model: same numbers as train()."""
    settings = [dict(task="binary", iters=300, log_every=100, seed=s, progress=False) for s in (0, 1, 2)]
    together = fastrnn.training.train_many([{k: v for k, v in s.items() if k != "progress"} for s in settings])
    for s, got in zip(settings, together):
        alone = fastrnn.train(**s)
        np.testing.assert_array_equal(got.model.theta, alone.model.theta)
        np.testing.assert_array_equal(got.history["loss"].to_numpy(), alone.history["loss"].to_numpy())


def test_the_version_constant_is_pyprojects():
    import pathlib
    import tomllib

    project = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert fastrnn.__version__ == project["version"]


def test_training_imports_no_pandas_until_asked(tmp_path):
    """Start-up: a small binary run loads no pandas; history still reads as a frame. (SciPy's BLAS is
    numba's to load in a library process: its registry refresh before a cache load imports it.)"""
    import subprocess
    import sys

    code = ("import sys, fastrnn; r = fastrnn.train(task='binary', iters=200, log_every=100, progress=False); "
            "print(sorted(m for m in ('pandas',) if m in sys.modules)); "
            "print(type(r.history).__name__, r.history.shape, r.final_accuracy == r.history['accuracy'].iloc[-1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.stdout.splitlines() == ["[]", "DataFrame (2, 9) True"]


def test_a_first_compile_is_announced_once(tmp_path, monkeypatch):
    """A run whose kernel is neither compiled nor cached says so on stderr, naming it; else nothing."""
    import io
    from types import SimpleNamespace

    model = fastrnn.RNN(2, 16, 1)
    fake = SimpleNamespace(signatures=[], _cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(tmp_path / "k.nbi"))))
    monkeypatch.setattr(_small, "lean_kernel", lambda opt, head, truncated: fake)
    out = io.StringIO()
    line = engine.compile_note(model, 8, 1, out)
    assert line is not None and "compiling the small-model training kernels once, about" in out.getvalue()
    (tmp_path / "k.nbi").write_text("")  # cached now
    assert engine.compile_note(model, 8, 1, io.StringIO()) is None
    fake.signatures.append("compiled")
    (tmp_path / "k.nbi").unlink()
    assert engine.compile_note(model, 8, 1, io.StringIO()) is None


def test_the_train_command_imports_neither_pandas_nor_scipys_linalg(tmp_path):
    """Start-up: `fastrnn train` prints its summary from the rows, never building the DataFrame, and
    (its cache loads skipping numba's registry refresh) loads no SciPy BLAS for a small model."""
    import os
    import pathlib
    import subprocess
    import sys

    args = [sys.executable, "-X", "importtime", "-m", "fastrnn", "train", "--task", "binary", "--iters", "200", "--no-csv"]
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])}
    env.pop("FASTRNN_PLAIN_NUMBA", None)
    subprocess.run(args, capture_output=True, cwd=tmp_path, check=True, env=env)  # compile or load once
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, check=True, env=env)
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "after 200 iterations" in out.stdout and "numba" in imported, out.stdout + out.stderr
    assert sorted(m for m in ("pandas", "scipy.linalg") if m in imported) == []


# ------------------------------------------------------------------ the lean (headline) kernel

LEAN_CASES = [(act, masked, K, B, H) for act in ("tanh", "sigmoid", "relu", "softsign")
              for masked, K, B, H in ((False, None, 1, 16), (True, None, 3, 5), (False, 5, 2, 7), (True, 9, 1, 3))]


def _lean(model, X, Y, M, B, resets, n, lr=0.05):
    hstate = np.full(engine.state_size(model, B), 0.25)
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
    buf = np.empty(engine.chunk_scratch_size(model, X.shape[1], B))
    done = _small.train_chunk_sgd(model.theta, model.dims, X, Y, M, B, lr, hstate, resets, buf, losses, norms, errors)
    return done, losses, norms, errors, hstate


@pytest.mark.parametrize("act,masked,K,B,H", LEAN_CASES)
def test_the_lean_kernel_gives_the_general_kernels_numbers_exactly(rng, act, masked, K, B, H):
    """train_chunk_sgd (SGD, no clipping, full BPTT, sigmoid head) against the general kernel and the full
    small kernel, bit for bit: losses, norms, error counts, carried state and parameters, with resets."""
    n, T, I, O = 5, 6, 3, 2
    X, Y, mask = make_data(rng, n * B, T, I, O, "sigmoid", masked)
    M = np.zeros((0, 0)) if mask is None else mask
    resets = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    Kc = -1 if K is None else K
    model = fastrnn.RNN(I, H, O, activation=act, head="sigmoid", seed=4, init_scale=1.2)
    assert _lean_fits(model.dims, T, B, optim.SGD, Kc, 0.0, 0.0)
    general, small = model.copy(), model.copy()
    got = _lean(model, X, Y, M, B, resets, n)
    want = _chunk(_train_kernel.train_chunk_any, general, Kc, X, Y, M, B, optim.SGD, resets, n, (True, None), clip=0.0)
    also = _chunk(_small.train_chunk, small, Kc, X, Y, M, B, optim.SGD, resets, n, clip=0.0)
    assert got[0] == want[0] == also[0] == n
    for a, b, c in zip(got[1:], want[1:], also[1:]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(model.theta, general.theta)
    np.testing.assert_array_equal(model.theta, small.theta)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("masked,B", [(False, 1), (True, 2)])
def test_the_lean_kernel_matches_the_reference_over_carried_windows(rng, act, masked, B):
    """Two SGD iterations on a stream (state carried into the second window) against tests/reference.py."""
    T, I, H, O, lr = 5, 2, 6, 3, 0.1
    X, Y, mask = make_data(rng, B, 2 * T, I, O, "sigmoid", masked)
    params = ref.init_params(I, H, O, 1, rng, scale=0.8)
    model = model_from_params(params, act, "sigmoid")
    cut = lambda A: np.ascontiguousarray(np.concatenate([A[:, :T], A[:, T:]]))  # noqa: E731
    Mw = np.zeros((0, 0)) if mask is None else cut(mask)
    hstate = np.full(engine.state_size(model, B), 9.0)  # the reset must clear it
    losses, norms, errors = np.empty(2), np.empty(2), np.empty(2 * B, dtype=np.int64)
    done = _small.train_chunk_sgd(model.theta, model.dims, cut(X), cut(Y), Mw, B, lr, hstate, np.array([1, 0]),
                                  np.empty(engine.chunk_scratch_size(model, T, B)), losses, norms, errors)
    assert done == 2
    g0 = _assert_two_windows_are_the_references(model, params, X, Y, mask, act, "sigmoid", None, lr, losses, hstate)
    np.testing.assert_allclose(norms[0], np.sqrt(sum(np.sum(g * g) for g in g0.values())), rtol=RTOL_TWIN)


def test_the_lean_kernel_stops_before_a_diverging_iteration(rng):
    n, B, T = 3, 1, 4
    X, Y, _ = make_data(rng, n * B, T, 2, 1, "sigmoid")
    X[2, 1, 0] = np.inf
    model = fastrnn.RNN(2, 3, 1, head="sigmoid", seed=1)
    general = model.copy()
    got = _lean(model, X, Y, np.zeros((0, 0)), B, np.zeros(0, np.int64), n)
    want = _chunk(_train_kernel.train_chunk_any, general, -1, X, Y, np.zeros((0, 0)), B, optim.SGD,
                  np.zeros(0, np.int64), n, (True, None), clip=0.0)
    assert got[0] == want[0] == 2
    np.testing.assert_array_equal(model.theta, general.theta)
    np.testing.assert_array_equal(got[1][:2], want[1][:2])


def test_only_plain_sgd_with_a_sigmoid_head_and_full_bptt_takes_the_many_model_sgd_kernel():
    dims = fastrnn.RNN(2, 16, 1, head="sigmoid").dims
    assert _lean_fits(dims, 8, 1, optim.SGD, -1, 0.0, 0.0)
    assert _lean_fits(dims, 8, 1, optim.SGD, 7, 0.0, 0.0)  # K >= T - 1 is full BPTT
    assert not _lean_fits(dims, 8, 1, optim.SGD, 6, 0.0, 0.0)
    assert not _lean_fits(dims, 8, 1, optim.ADAM, -1, 0.0, 0.0)
    assert not _lean_fits(dims, 8, 1, optim.SGD, -1, 1.0, 0.0)
    assert not _lean_fits(dims, 8, 1, optim.SGD, -1, 0.0, 1.0)
    assert not _lean_fits(fastrnn.RNN(2, 16, 2, head="softmax").dims, 8, 1, optim.SGD, -1, 0.0, 0.0)
    assert not _lean_fits(fastrnn.RNN(2, 16, 1, head="sigmoid", layers=2).dims, 8, 1, optim.SGD, -1, 0.0, 0.0)


def test_the_compile_note_asks_after_the_lean_kernel_of_the_runs_settings(tmp_path, monkeypatch):
    """The note looks for the lean kernel of the run's optimizer, head and truncation (each is compiled and
    cached on its own), and names the small-model kernels and their time."""
    import io
    from types import SimpleNamespace

    model = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid")
    fake = SimpleNamespace(signatures=[], _cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(tmp_path / "k.nbi"))))
    asked = []
    monkeypatch.setattr(_small, "lean_kernel", lambda *key: asked.append(key) or fake)
    out = io.StringIO()
    line = engine.compile_note(model, 8, 1, out, options=(optim.ADAM, 4, 1.0, 0.0))
    assert line is not None and "compiling the small-model training kernels once, about 4 s" in out.getvalue()
    assert asked == [(optim.ADAM, 1, True)]
    (tmp_path / "k.nbi").write_text("")
    assert engine.compile_note(model, 8, 1, io.StringIO(), options=(optim.SGD, 7, 0.0, 0.0)) is None
    assert asked[-1] == (optim.SGD, 1, False)  # K >= T - 1 is full BPTT


@pytest.mark.usefixtures("kernel_choice")
def test_train_many_on_the_lean_kernel_equals_separate_runs_with_other_rates():
    """Sweeps over the headline's settings run the lean kernel in parallel: each run's numbers are its own."""
    settings = [dict(task="binary", iters=300, log_every=100, seed=s, lr=lr) for s, lr in ((0, 0.1), (1, 0.3), (2, 0.05))]
    together = fastrnn.training.train_many(settings)
    for s, got in zip(settings, together):
        alone = fastrnn.train(**s, progress=False)
        np.testing.assert_array_equal(got.model.theta, alone.model.theta)
        np.testing.assert_array_equal(got.history["loss"].to_numpy(), alone.history["loss"].to_numpy())
        np.testing.assert_array_equal(got.history["grad_norm"].to_numpy(), alone.history["grad_norm"].to_numpy())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_training_loops_lean_call_equals_train_chunk_sgd_bit_for_bit(dtype):
    """The training loop calls the lean kernel with views made in Python (LeanCall); the numbers are
    train_chunk_sgd's (which carves the same views inside numba), exactly, chunk after chunk, and a
    new scratch array or model is picked up."""
    rng = np.random.default_rng(5)
    for B, act in ((1, "sigmoid"), (3, "tanh")):
        m1 = fastrnn.RNN(2, 16, 1, activation=act, head="sigmoid", dtype=dtype, seed=3)
        m2 = fastrnn.RNN(2, 16, 1, activation=act, head="sigmoid", dtype=dtype, seed=3)
        n, T = 7, 8
        lean = _small.LeanCall()

        def call(theta, dims, X, Y, M, B, lr, h, resets, buf, losses, norms, errors):
            return lean(theta, dims, -1, X, Y, M, B, optim.SGD, lr, optim.hyper_array(), np.zeros((2, theta.shape[0]), dtype),
                        0, 0.0, 0.0, h, resets, buf, losses, norms, errors)

        size = engine.chunk_scratch_size(m1, T, B)
        h1, h2 = np.zeros(B * 16, dtype), np.zeros(B * 16, dtype)
        for chunk in range(3):
            X = rng.integers(0, 2, (n * B, T, 2)).astype(dtype)
            Y = rng.integers(0, 2, (n * B, T, 1)).astype(dtype)
            M = np.zeros((0, 0), dtype)
            resets = np.array([1] + [0] * (n - 1), np.int64)
            outs = []
            for model, h, fn in ((m1, h1, _small.train_chunk_sgd), (m2, h2, call)):
                buf = np.empty(size, dtype)
                losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, np.int64)
                done = fn(model.theta, model.dims, X, Y, M, B, 0.1, h, resets, buf, losses, norms, errors)
                outs.append((done, losses, norms, errors))
            assert outs[0][0] == outs[1][0] == n
            for a, b in zip(outs[0][1:], outs[1][1:]):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(m1.theta, m2.theta)
            np.testing.assert_array_equal(h1, h2)


# ------------------------------------------------------------------ many models in lanes (sweeps)


def _lanes_case(rng, act, B, nm, masked, carried, H=16, T=6, n=7, bad=(), threads=2):
    """train_chunks_many_lanes against train_chunk_sgd run model by model: every number equal."""
    I, O = 2, 1
    models = [fastrnn.RNN(I, H, O, activation=act, head="sigmoid", seed=m, init_scale=1.2) for m in range(nm)]
    thetas, dims = np.stack([m.theta for m in models]), np.stack([m.dims for m in models])
    X = rng.integers(0, 2, (nm, n * B, T, I)).astype(float)
    Y = rng.integers(0, 2, (nm, n * B, T, O)).astype(float)
    M = (rng.random((nm, n * B, T)) > 0.3).astype(float) if masked else np.zeros((0, 0, 0))
    R = (rng.random((nm, n)) > 0.5).astype(np.int64) if carried else np.zeros((0, 0), np.int64)
    lrs = np.linspace(0.01, 0.1, nm)
    lrs[list(bad)] = 1e300
    n_iters = np.array([n if m % 3 else n - 3 for m in range(nm)], np.int64)
    n_iters[-1] = 0  # a model that sits this call out
    h0 = rng.random((nm, B * H)) if carried else np.zeros((nm, B * H))
    out = []
    for lanes in (False, True):
        th, hs = thetas.copy(), h0.copy()
        L, G = np.full((nm, n), -1.0), np.full((nm, n), -1.0)
        E, D = np.full((nm, n * B), -7, np.int64), np.zeros(nm, np.int64)
        if lanes:
            _small.train_chunks_many_lanes(th, dims, X, Y, M, B, lrs, hs, R, n_iters, L, G, E, D, threads)
        else:
            for m in range(nm):
                k = n_iters[m]
                D[m] = _small.train_chunk_sgd(th[m], dims[m], X[m], Y[m], M[m] if masked else np.zeros((0, 0)), B, lrs[m],
                                              hs[m], R[m] if carried else np.zeros(0, np.int64),
                                              np.empty(engine.chunk_scratch_size(models[m], T, B)), L[m, :k], G[m, :k],
                                              E[m, : k * B])
        out.append((th, hs, L, G, E, D))
    (th0, hs0, L0, G0, E0, D0), (th1, hs1, L1, G1, E1, D1) = out
    np.testing.assert_array_equal(D1, D0)
    np.testing.assert_array_equal(th1, th0)
    for m in range(nm):
        d = D0[m]
        np.testing.assert_array_equal(L1[m, :d], L0[m, :d])
        np.testing.assert_array_equal(G1[m, :d], G0[m, :d])
        np.testing.assert_array_equal(E1[m, : d * B], E0[m, : d * B])
        if d == n_iters[m]:
            np.testing.assert_array_equal(hs1[m], hs0[m])
    return D0, n_iters


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "softsign"])
@pytest.mark.parametrize("B,nm,masked,carried", [(1, 5, False, False), (2, 19, True, True), (3, 3, True, False)])
def test_the_lanes_kernel_gives_the_lean_kernels_numbers_exactly(rng, act, B, nm, masked, carried):
    """Models in the lanes of a vector (several lane groups, a short last one, a model with no iterations,
    masks, carried state with resets): every number of every model that of train_chunk_sgd on its own."""
    done, n_iters = _lanes_case(rng, act, B, nm, masked, carried)
    if act != "relu":  # relu units with carried random states may blow up (and stop alike in both kernels)
        np.testing.assert_array_equal(done, n_iters)


def test_a_diverging_lane_stops_alone(rng):
    """A model whose loss turns non-finite stops there (its last good iteration applied), its neighbours go on."""
    done, n_iters = _lanes_case(rng, "relu", 1, 6, False, True, bad=(1, 4), threads=1)
    assert done[1] < n_iters[1] and done[4] < n_iters[4]
    assert all(done[m] == n_iters[m] for m in (0, 2, 3, 5))


def test_the_lanes_kernel_matches_the_reference(rng):
    """Two SGD iterations of three models in lanes against tests/reference.py (rtol 1e-10)."""
    T, I, H, O, lr, nm = 5, 2, 6, 1, 0.1, 3
    params = [ref.init_params(I, H, O, 1, rng, scale=0.8) for _ in range(nm)]
    models = [model_from_params(p, "tanh", "sigmoid") for p in params]
    data = [make_data(rng, 2, T, I, O, "sigmoid", False)[:2] for _ in range(nm)]
    thetas, dims = np.stack([m.theta for m in models]), np.stack([m.dims for m in models])
    X, Y = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    L, G = np.empty((nm, 2)), np.empty((nm, 2))
    E, D = np.empty((nm, 2), np.int64), np.zeros(nm, np.int64)
    _small.train_chunks_many_lanes(thetas, dims, X, Y, np.zeros((0, 0, 0)), 1, np.full(nm, lr), np.zeros((nm, H)),
                                   np.zeros((0, 0), np.int64), np.full(nm, 2, np.int64), L, G, E, D, 1)
    assert list(D) == [2] * nm
    for m in range(nm):
        p, (Xm, Ym) = params[m], data[m]
        loss0, g0 = ref.loss_and_grads(p, Xm[:1], Ym[:1], None, "tanh", "sigmoid")
        p1 = {k: v - lr * g0[k] for k, v in p.items()}
        loss1, g1 = ref.loss_and_grads(p1, Xm[1:], Ym[1:], None, "tanh", "sigmoid")
        np.testing.assert_allclose(L[m], [loss0, loss1], rtol=RTOL_TWIN)
        got = fastrnn.RNN(I, H, O, activation="tanh", head="sigmoid")
        got.theta[:] = thetas[m]
        for name, v in p1.items():
            np.testing.assert_allclose(got.params[name], v - lr * g1[name], rtol=RTOL_TWIN, atol=ATOL_TWIN, err_msg=name)


def test_sweeps_take_the_lanes_kernel_in_float64_only():
    dims = np.stack([fastrnn.RNN(2, 16, 1, head="sigmoid", seed=s).dims for s in range(3)])
    assert dispatch.lanes_fit(dims, np.float64)
    assert not dispatch.lanes_fit(dims, np.float32)
    other = np.stack([dims[0], fastrnn.RNN(2, 8, 1, head="sigmoid").dims])
    assert not dispatch.lanes_fit(other, np.float64)


def test_a_first_compile_of_the_lanes_kernel_is_announced_for_train_many(tmp_path, monkeypatch):
    """A sweep of float64 headline runs compiles the lanes kernel: the note names it; float32 sweeps pass silently."""
    import io
    from types import SimpleNamespace

    model = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid")
    fake = SimpleNamespace(signatures=[], _cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(tmp_path / "k.nbi"))))
    monkeypatch.setattr(_small, "train_lanes_sgd", fake)
    out = io.StringIO()
    assert engine.compile_note(model, 8, 1, out, options=(optim.SGD, -1, 0.0, 0.0), many=True) is not None
    assert "compiling the many-model SGD training kernels once" in out.getvalue()
    single = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", dtype="float32")
    assert engine.compile_note(single, 8, 1, io.StringIO(), options=(optim.SGD, -1, 0.0, 0.0), many=True) is None
    assert engine.compile_note(model, 8, 1, io.StringIO(), options=(optim.ADAM, -1, 0.0, 0.0), many=True) is None


@pytest.mark.parametrize("kind,act,head,cell", [("adam", "tanh", "softmax", "rnn"), ("sgd", "relu", "sigmoid", "rnn"),
                                                ("rmsprop", "softsign", "linear", "rnn"), ("momentum", "tanh", "softmax", "gru")])
def test_the_general_kernel_compiled_for_a_runs_settings_gives_the_any_setting_kernels_numbers_exactly(rng, kind, act,
                                                                                                     head, cell):
    """general_kernel(opt, head, act) (what a training run calls: the other optimizers, heads and activations not
    compiled) and train_chunk_any (every setting read at run time, what many-model groups call) are one source:
    bit for bit the same on a model beyond the small kernels (two layers, products large enough for BLAS), with a
    mask, truncation, clipping and resets."""
    n, T, I, H, O, B = 3, 6, 3, 24, 4, 8
    X, Y, mask = make_data(rng, n * B, T, I, O, head, True)
    resets = np.array([1, 0, 1], dtype=np.int64)
    model = fastrnn.RNN(I, H, O, layers=2, activation=act, head=head, cell=cell, seed=3, init_scale=1.1)
    assert not dispatch.small_fits(model.dims, T, B)
    other = model.copy()
    code = optim.OPTIMIZERS[kind]
    cellset = engine.cellset(model.dims)
    got = _chunk(_train_kernel.train_chunk_general, model, 2, X, Y, mask, B, code, resets, n, (True, cellset), clip=0.9)
    want = _chunk(_train_kernel.train_chunk_any, other, 2, X, Y, mask, B, code, resets, n, (True, cellset), clip=0.9)
    assert got[0] == want[0] == n
    for a, b in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.theta, other.theta)
    assert _train_kernel.general_kernel(code, model.dims[5], model.dims[4]).signatures  # the specialised one ran
