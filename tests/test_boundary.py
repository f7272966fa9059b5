"""The Python boundary of RNN.loss_and_grads: what the fast path keeps.

Each call returns new gradient arrays (views of one fresh vector, none shared with an
earlier call, with the model or with its scratch); a model used at several shapes,
with and without the small-model path, gives the engine's numbers at each; a bad
argument still gets its one clear error.
"""

import numpy as np
import pytest

import fastrnn
from fastrnn import engine


def _data(rng, B, T, I, O):
    return rng.standard_normal((B, T, I)), rng.integers(0, 2, (B, T, O)).astype(float)


def test_every_call_returns_new_arrays_in_the_documented_shapes(rng):
    model = fastrnn.RNN(2, 16, 1, head="sigmoid")
    X, Y = _data(rng, 1, 8, 2, 1)
    loss1, g1 = model.loss_and_grads(X, Y)
    loss2, g2 = model.loss_and_grads(X, Y)
    assert type(g1) is dict and list(g1) == model.param_names and isinstance(loss1, float)
    for name, view in model.params.items():
        assert g1[name].shape == view.shape and g1[name].dtype == model.dtype
        assert not np.shares_memory(g1[name], g2[name]) and not np.shares_memory(g1[name], model.theta)
        np.testing.assert_array_equal(g1[name], g2[name])
    g1["W0"][...] = 7.0  # writing into one call's gradient changes nothing else
    assert model.loss_and_grads(X, Y)[0] == loss1 and not (g2["W0"] == 7.0).any()


@pytest.mark.parametrize("shapes", [[(1, 8), (32, 10), (1, 8), (3, 5)], [(4, 6), (1, 8), (4, 6)]])
def test_a_model_used_at_several_shapes_gives_the_engines_numbers_at_each(rng, shapes):
    model = fastrnn.RNN(2, 16, 1, head="sigmoid", activation="tanh")
    for B, T in shapes:  # the small path (B*T*16*16 < 4096) and the general one, in turn, on one model
        X, Y = _data(rng, B, T, 2, 1)
        loss, grads, h = model.loss_and_grads(X, Y, return_state=True)
        Xp, Yp, M, h0 = engine.prepare(model, X, Y)
        want_loss, want_grad, want_h = engine.loss_and_grads(model, Xp, Yp, M, h0, -1, np.empty(engine.scratch_size(model, T, B)))
        assert loss == want_loss
        np.testing.assert_array_equal(model.flatten_grads(grads), want_grad)
        np.testing.assert_array_equal(h, want_h)
        assert h.shape == (1, B, 16)


@pytest.mark.parametrize("bad, message", [
    (dict(X=np.zeros((1, 8, 3))), "X has shape (1, 8, 3) but axis 2"),
    (dict(Y=np.zeros((1, 7, 1))), "Y has shape (1, 7, 1) but axis 1"),
    (dict(X=np.full((1, 8, 2), np.nan)), "X contains NaN"),
    (dict(Y=np.full((1, 8, 1), 2.0)), "Y must lie in [0, 1]"),
    (dict(X=np.zeros((1, 8, 2), dtype=np.float32)), None),  # converted, not refused
    (dict(X=np.zeros((8, 1, 2)).transpose(1, 0, 2)), None),  # not contiguous: copied
    (dict(X=np.zeros((1, 0, 2))), "X is empty"),
])
def test_the_fast_path_still_checks_everything(bad, message):
    model = fastrnn.RNN(2, 16, 1, head="sigmoid")
    args = dict(X=np.zeros((1, 8, 2)), Y=np.zeros((1, 8, 1)))
    args.update(bad)
    if message is None:
        loss, _ = model.loss_and_grads(args["X"], args["Y"])
        assert loss == model.loss_and_grads(np.zeros((1, 8, 2)), np.zeros((1, 8, 1)))[0]
        return
    with pytest.raises(ValueError) as info:
        model.loss_and_grads(args["X"], args["Y"])
    assert message in str(info.value)


def test_out_fills_the_grads_of_an_earlier_call_in_place(rng):
    model = fastrnn.RNN(2, 16, 1, head="sigmoid")
    X1, Y1 = _data(rng, 1, 8, 2, 1)
    X2, Y2 = _data(rng, 1, 8, 2, 1)
    _, g = model.loss_and_grads(X1, Y1)
    arrays = {k: v for k, v in g.items()}
    loss, got = model.loss_and_grads(X2, Y2, out=g)
    want_loss, want = fastrnn.RNN(2, 16, 1, head="sigmoid").loss_and_grads(X2, Y2)
    assert got is g and loss == want_loss
    for k in want:
        assert got[k] is arrays[k]
        np.testing.assert_array_equal(got[k], want[k])
    loss3, got3, h = model.loss_and_grads(X1, Y1, out=g, return_state=True)  # and with the state
    want3 = model.loss_and_grads(X1, Y1, return_state=True)
    assert got3 is g and loss3 == want3[0]
    np.testing.assert_array_equal(h, want3[2])
    np.testing.assert_array_equal(model.flatten_grads(got3), model.flatten_grads(want3[1]))


def test_out_of_any_other_kind_is_checked_and_copied_into(rng):
    model = fastrnn.RNN(2, 5, 3, layers=2)
    X = rng.standard_normal((4, 6, 2))
    Y = np.eye(3)[rng.integers(0, 3, (4, 6))]
    want_loss, want = model.loss_and_grads(X, Y)
    mine = {k: np.full(v.shape, np.nan) for k, v in want.items()}
    loss, got = model.loss_and_grads(X, Y, out=mine)
    assert got is mine and loss == want_loss
    for k in want:
        np.testing.assert_array_equal(mine[k], want[k])
    _, g = model.loss_and_grads(X, Y)
    g["W0"] = g["W1"]  # an entry of a returned dict replaced: no longer filled directly
    model.loss_and_grads(X, Y, out=g)
    assert g["W0"] is g["W1"]  # one array under two keys, as the user made it: filled in key order, W1 last
    np.testing.assert_array_equal(g["W1"], want["W1"])
    np.testing.assert_array_equal(g["U0"], want["U0"])


@pytest.mark.parametrize("make, fragment", [
    (lambda g: [1, 2], "out must be a dict with the keys"),
    (lambda g: {k: v for k, v in g.items() if k != "c"}, "out must be a dict with the keys"),
    (lambda g: {**g, "W0": np.zeros((3, 3))}, "out['W0'] must be a writable float64 array of shape (5, 5), got a float64 array of shape (3, 3)"),
    (lambda g: {**g, "b0": np.zeros(5, dtype=np.float32)}, "out['b0'] must be a writable float64 array"),
    (lambda g: {**g, "V": [[0.0] * 5] * 3}, "got list"),
])
def test_a_bad_out_is_refused_naming_it(rng, make, fragment):
    from fastrnn import InvalidArgument

    model = fastrnn.RNN(2, 5, 3)
    X = rng.standard_normal((2, 4, 2))
    Y = np.eye(3)[rng.integers(0, 3, (2, 4))]
    _, g = model.loss_and_grads(X, Y)
    with pytest.raises(InvalidArgument) as info:
        model.loss_and_grads(X, Y, out=make(g))
    assert fragment in str(info.value)
