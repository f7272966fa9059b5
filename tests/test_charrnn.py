"""The fused min-char-rnn kernel (fastrnn/_charrnn.py) that text runs at batch 1 train with.

It is checked three ways: against the plain-numpy min-char-rnn of tests/reference_text.py
(Adagrad and RMSprop, with and without clipping), against the general training kernel
(which computes the same iteration with BLAS products, one-hot inputs and the flat
gradient), and against itself on one thread and on two (the same numbers, bit for bit,
however the run is cut into calls).
"""

import numpy as np
import pytest

import fastrnn
from fastrnn import dispatch, engine, optim, text

import reference_text as ref

H, L = 100, 25
#: against the reference over 300 iterations at lr 0.01 (as tests/test_text.py)
RTOL_REF = 1e-9
#: against the general kernel over 40 iterations: the same arithmetic, summed in other orders
RTOL_GENERAL = 1e-11


@pytest.fixture(scope="module")
def example():
    t = text.read_text(text.example_path())
    return t, ref.init_weights(t.n_vocab, H, np.random.default_rng(11))


def make_model(p0):
    hidden, V = p0["Wxh"].shape
    model = fastrnn.RNN(V, hidden, V, activation="tanh", head="softmax")
    for mine, theirs in (("U0", "Wxh"), ("W0", "Whh"), ("b0", "bh"), ("V", "Why"), ("c", "by")):
        model.params[mine][...] = p0[theirs]
    return model


def run_chars(t, p0, iters, opt="adagrad", lr=0.01, clip_value=5.0, threads=1, cuts=None, decay=0.95):
    """Train through engine.train_chunk_chars in calls of ``cuts`` iterations; return everything it changed."""
    model = make_model(p0)
    source = text.TextSource(t.ids, t.n_vocab, seq_length=L)
    kind = optim.OPTIMIZERS[opt]
    hyper = optim.hyper_array(decay=decay)
    state = np.zeros((2, model.n_params))
    hstate = engine.new_state(model, 1)
    losses, norms, errors = np.full(iters, np.nan), np.full(iters, np.nan), np.full(iters, -1, dtype=np.int64)
    done = 0
    for n in cuts or [iters]:
        inputs, targets, resets = source.next_ids(n)
        got = engine.train_chunk_chars(model, inputs, targets, resets, kind, lr, hyper, state, clip_value, hstate,
                                       losses[done:done + n], norms[done:done + n], errors[done:done + n], threads)
        done += got
        if got < n:
            break
    return dict(done=done, losses=losses, norms=norms, errors=errors, theta=model.theta, state=state, hstate=hstate)


def run_general(t, p0, iters, opt="adagrad", lr=0.01, clip_value=5.0, decay=0.95):
    """The same run through the general chunk kernel (one-hot X and Y)."""
    model = make_model(p0)
    source = text.TextSource(t.ids, t.n_vocab, seq_length=L)
    hyper = optim.hyper_array(decay=decay)
    state = np.zeros((2, model.n_params))
    hstate = engine.new_state(model, 1)
    X, Y, M, resets = source.next(iters)
    buf = np.empty(engine.chunk_scratch_size(model, L, 1))
    losses, norms, errors = np.full(iters, np.nan), np.full(iters, np.nan), np.full(iters, -1, dtype=np.int64)
    done = engine.train_chunk(model, -1, X, Y, M, 1, optim.OPTIMIZERS[opt], lr, hyper, state, 0, 0.0, clip_value, hstate,
                              resets, buf, losses, norms, errors)
    return dict(done=done, losses=losses, norms=norms, errors=errors, theta=model.theta, state=state, hstate=hstate)


def as_reference_names(theta, V):
    model = fastrnn.RNN(V, H, V, activation="tanh", head="softmax")
    model.theta[:] = theta
    return dict(Wxh=model.params["U0"], Whh=model.params["W0"], bh=model.params["b0"], Why=model.params["V"],
                by=model.params["c"])


@pytest.mark.parametrize("opt, clip, lr", [("adagrad", 5.0, 0.01), ("rmsprop", 5.0, 0.001), ("adagrad", None, 0.01)])
def test_equals_the_min_char_rnn_reference(example, opt, clip, lr):
    """300 iterations (the walk wraps at 178): every loss and the final weights, on two threads.

    RMSprop at lr 0.001: at 0.01 its steps (about lr a weight, whatever the gradient's
    size) amplify rounding differences until, from iteration 93 on, no two implementations
    that sum in different orders agree; the general kernel departs from the reference
    there too (measured: both to within 4e-16 at lr 0.001, both 0.2-1.1 apart at 0.01)."""
    t, p0 = example
    iters = 300
    decay = 0.95 if opt == "rmsprop" else None
    ref_losses, ref_p = ref.train(list(t.ids), p0, L, iters, lr, clip=clip, decay=decay)
    got = run_chars(t, p0, iters, opt=opt, lr=lr, clip_value=0.0 if clip is None else clip, threads=2)
    assert got["done"] == iters
    np.testing.assert_allclose(got["losses"], ref_losses, rtol=RTOL_REF, atol=0)
    for k, v in as_reference_names(got["theta"], t.n_vocab).items():
        np.testing.assert_allclose(v, ref_p[k], rtol=RTOL_REF, atol=1e-14, err_msg=k)
    assert ref_losses[-1] < ref_losses[0] - 5  # it learned: the comparison is not of noise


@pytest.mark.parametrize("opt, clip_value, lr", [("adagrad", 5.0, 0.01), ("rmsprop", 0.5, 0.001), ("adagrad", 0.0, 0.01)])
def test_equals_the_general_kernel(example, opt, clip_value, lr):
    """The general kernel's losses, gradient norms (before clipping), wrong-character counts,
    weights, optimizer state and carried state over 40 iterations, at a learning rate small
    enough for rounding differences not to grow (at min-char-rnn's 0.1 the first Adagrad steps
    amplify them about tenfold an iteration; RMSprop's do at 0.01)."""
    t, p0 = example
    mine = run_chars(t, p0, 40, opt=opt, lr=lr, clip_value=clip_value, threads=2)
    general = run_general(t, p0, 40, opt=opt, lr=lr, clip_value=clip_value)
    assert mine["done"] == general["done"] == 40
    np.testing.assert_array_equal(mine["errors"], general["errors"])
    for key in ("losses", "norms", "theta", "state", "hstate"):
        np.testing.assert_allclose(mine[key], general[key], rtol=RTOL_GENERAL, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("hidden", [37, 6])
def test_a_hidden_size_off_whole_vectors_equals_the_general_kernel(example, hidden):
    """The kernel pads its rows to whole vectors (37 -> 40, 6 -> 8 entries): the padding
    changes none of the general kernel's numbers, on one thread or two, and what goes back
    into the model's flat arrays is exactly its own entries."""
    t, _ = example
    p0 = ref.init_weights(t.n_vocab, hidden, np.random.default_rng(5))
    general = run_general(t, p0, 40)
    for threads in (1, 2):
        mine = run_chars(t, p0, 40, threads=threads)
        assert mine["done"] == general["done"] == 40
        np.testing.assert_array_equal(mine["errors"], general["errors"])
        for key in ("losses", "norms", "theta", "state", "hstate"):
            np.testing.assert_allclose(mine[key], general[key], rtol=RTOL_GENERAL, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("opt", ["adagrad", "rmsprop"])
def test_two_threads_and_any_cuts_give_the_same_numbers_bit_for_bit(example, opt):
    """One thread, two threads, and two threads in calls of odd lengths (some below the
    threaded minimum) across the walk's wrap-around: every output identical."""
    t, p0 = example
    one = run_chars(t, p0, 200, opt=opt, lr=0.1, threads=1)
    two = run_chars(t, p0, 200, opt=opt, lr=0.1, threads=2)
    cut = run_chars(t, p0, 200, opt=opt, lr=0.1, threads=2, cuts=[3, 60, 1, 120, 16])
    for other in (two, cut):
        assert other["done"] == one["done"] == 200
        for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
            assert np.array_equal(one[key], other[key]), key


@pytest.mark.parametrize("threads", [1, 2])
def test_a_non_finite_loss_stops_before_that_iteration_is_applied(example, threads):
    """lr 1e307 overflows at the second iteration: the call returns 1, as the general kernel
    does, with the weights and states of the first iteration only."""
    t, p0 = example
    mine = run_chars(t, p0, 20, lr=1e307, threads=threads)
    general = run_general(t, p0, 20, lr=1e307)
    assert mine["done"] == general["done"] == 1
    after_one = run_chars(t, p0, 1, lr=1e307, threads=1)
    for key in ("theta", "state", "hstate"):
        assert np.array_equal(mine[key], after_one[key]), key
    assert np.isfinite(mine["theta"]).all()


def test_text_runs_at_batch_1_use_it_and_the_others_do_not(monkeypatch):
    monkeypatch.delenv(dispatch.ENV, raising=False)

    def kernel(model, batch, opt, K, clip_norm, T=25):
        return dispatch.for_model(model, T, batch, opt=opt, K=K, clip_norm=clip_norm, chars=True).name

    model = fastrnn.RNN(41, 100, 41, activation="tanh", head="softmax")
    assert kernel(model, 1, optim.ADAGRAD, -1, 0.0) == "text"
    assert kernel(model, 1, optim.RMSPROP, 24, 0.0) == "text"  # K >= T - 1 is full BPTT
    assert kernel(model, 4, optim.ADAGRAD, -1, 0.0) == "general"  # batches: the general kernel
    assert kernel(model, 1, optim.ADAM, -1, 0.0) == "general"
    assert kernel(model, 1, optim.ADAGRAD, 10, 0.0) == "general"  # truncated
    assert kernel(model, 1, optim.ADAGRAD, -1, 1.0) == "general"  # global-norm clipping
    for other in (fastrnn.RNN(41, 100, 41, activation="relu", head="softmax"),
                  fastrnn.RNN(41, 100, 41, activation="tanh", head="softmax", layers=2),
                  fastrnn.RNN(41, 100, 41, head="softmax", cell="gru"),
                  fastrnn.RNN(41, 100, 41, activation="tanh", head="softmax", dtype="float32")):
        assert kernel(other, 1, optim.ADAGRAD, -1, 0.0) == "general"


def test_without_a_second_thread_the_run_goes_on_on_one(example, monkeypatch):
    """When no thread can be started (RuntimeError), the call trains on its own thread: same numbers."""
    import threading

    t, p0 = example
    one = run_chars(t, p0, 30, threads=1)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    fallback = run_chars(t, p0, 30, threads=2)
    for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
        assert np.array_equal(one[key], fallback[key]), key
