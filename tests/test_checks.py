"""One test per kind of bad input: the error type, and a message that names the argument."""

import numpy as np
import pytest

import fastrnn
from fastrnn import InvalidArgument, InvalidType, ModelFileError


@pytest.fixture
def model():
    return fastrnn.RNN(2, 4, 3, seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 5, 2)), np.eye(3)[rng.integers(0, 3, (2, 5))]


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(n_hidden=0), InvalidArgument, "n_hidden must be at least 1, got 0"),
        (dict(n_hidden=-3), InvalidArgument, "n_hidden must be at least 1"),
        (dict(n_hidden=2.5), InvalidType, "n_hidden must be an integer, got 2.5"),
        (dict(n_hidden=True), InvalidType, "n_hidden must be an integer"),
        (dict(layers=0), InvalidArgument, "layers must be at least 1"),
        (dict(activation="gelu"), InvalidArgument, "activation must be one of 'tanh', 'sigmoid', 'relu', 'softsign', got 'gelu'"),
        (dict(head="logsoftmax"), InvalidArgument, "head must be one of"),
        (dict(dtype="float16"), InvalidArgument, "dtype must be one of 'float64', 'float32', got 'float16'"),
        (dict(dtype=int), InvalidArgument, "dtype must be one of"),
        (dict(seed=-1), InvalidArgument, "seed must be at least 0"),
        (dict(seed="0"), InvalidType, "seed must be an integer"),
        (dict(init_scale=0.0), InvalidArgument, "init_scale must be positive"),
        (dict(init_scale=float("nan")), InvalidArgument, "init_scale must be a finite number"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, pattern):
    args = dict(n_in=2, n_hidden=4, n_out=3)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        fastrnn.RNN(**args)


def test_X_with_wrong_dimensions(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match=r"X is 2-dimensional with shape \(5, 2\); it must be 3-dimensional"):
        model.loss_and_grads(X[0], Y)


def test_X_with_wrong_feature_count(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match=r"X has shape \(2, 5, 3\) but axis 2 .* must be 2"):
        model.forward(np.zeros((2, 5, 3)))


def test_empty_X(model):
    with pytest.raises(InvalidArgument, match="X is empty"):
        model.forward(np.zeros((0, 5, 2)))
    with pytest.raises(InvalidArgument, match="X is empty"):
        model.forward(np.zeros((2, 0, 2)))


def test_X_with_nan(model, data):
    X, Y = data
    X = X.copy()
    X[1, 3, 0] = np.nan
    with pytest.raises(InvalidArgument, match=r"X contains NaN or infinite values \(first at index \(1, 3, 0\)\)"):
        model.loss_and_grads(X, Y)


def test_X_with_infinity(model, data):
    X, Y = data
    X = X.copy()
    X[0, 0, 0] = np.inf
    with pytest.raises(InvalidArgument, match="X contains NaN or infinite"):
        model.forward(X)


@pytest.mark.parametrize("bad", [np.zeros((2, 5, 2), dtype=complex), np.full((2, 5, 2), "a"), np.empty((2, 5, 2), dtype=object)])
def test_X_with_a_non_real_dtype(model, bad):
    with pytest.raises(InvalidType, match="X has dtype .* it needs real numbers"):
        model.forward(bad)


def test_X_none(model):
    with pytest.raises(InvalidType, match="X must be an array"):
        model.forward(None)


def test_integer_and_bool_inputs_are_converted(model):
    yhat_int, _ = model.forward(np.ones((1, 3, 2), dtype=np.int64))
    yhat_bool, _ = model.forward(np.ones((1, 3, 2), dtype=bool))
    np.testing.assert_array_equal(yhat_int, yhat_bool)


def test_Y_with_wrong_shape(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match=r"Y has shape \(2, 4, 3\) but axis 1 of \(batch=2, time=5, n_out=3\) must be 5"):
        model.loss_and_grads(X, Y[:, :4])


def test_Y_not_one_hot_for_softmax(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match="one-hot"):
        model.loss_and_grads(X, Y * 0.5)


def test_Y_outside_0_1_for_sigmoid_head(data):
    X, _ = data
    model = fastrnn.RNN(2, 4, 1, head="sigmoid")
    with pytest.raises(InvalidArgument, match=r"Y must lie in \[0, 1\] for the sigmoid head"):
        model.loss_and_grads(X, np.full((2, 5, 1), 2.0))


def test_Y_not_checked_on_masked_out_steps(model, data):
    X, Y = data
    Y = Y.copy()
    Y[:, 0] = 0.0  # not one-hot, but no target there
    mask = np.ones((2, 5))
    mask[:, 0] = 0
    loss, _ = model.loss_and_grads(X, Y, mask=mask)
    assert np.isfinite(loss)


def test_mask_with_wrong_shape(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match=r"mask has shape \(5, 2\)"):
        model.loss_and_grads(X, Y, mask=np.ones((5, 2)))


def test_mask_with_values_other_than_0_and_1(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match="mask must hold only 0"):
        model.loss_and_grads(X, Y, mask=np.full((2, 5), 0.5))


def test_h0_with_wrong_shape(model, data):
    X, Y = data
    with pytest.raises(InvalidArgument, match=r"h0 has shape \(1, 3, 4\) but axis 1 of \(layers=1, batch=2, n_hidden=4\) must be 2"):
        model.forward(X, h0=np.zeros((3, 4)))


@pytest.mark.parametrize("K,exc", [(-1, InvalidArgument), (1.5, InvalidType), ("3", InvalidType), (True, InvalidType)])
def test_bad_bptt_truncate(model, data, K, exc):
    X, Y = data
    with pytest.raises(exc, match="bptt_truncate"):
        model.loss_and_grads(X, Y, bptt_truncate=K)


def test_bad_parallel_flag(model, data):
    X, Y = data
    with pytest.raises(InvalidType, match="parallel must be True, False or None"):
        model.loss_and_grads(X, Y, parallel="yes")


def test_errors_are_value_and_type_errors():
    assert issubclass(InvalidArgument, ValueError) and issubclass(InvalidType, TypeError)
    assert issubclass(ModelFileError, fastrnn.FastRNNError)


def test_load_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        fastrnn.RNN.load(tmp_path / "nope.npz")


def test_load_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ModelFileError, match="not a readable fastrnn model"):
        fastrnn.RNN.load(path)


def test_load_an_npz_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, theta=np.zeros(3), meta=np.array('{"format": "something-else"}'))
    with pytest.raises(ModelFileError, match="not a fastrnn model"):
        fastrnn.RNN.load(path)


def test_load_a_model_with_the_wrong_parameter_count(tmp_path):
    model = fastrnn.RNN(2, 4, 3)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as data:
        meta = data["meta"]
    np.savez(path, theta=np.zeros(5), meta=meta)
    with pytest.raises(ModelFileError, match="is corrupt"):
        fastrnn.RNN.load(path)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(kind="lbfgs"), InvalidArgument, "kind must be one of 'sgd', 'momentum', 'adam', 'adagrad', 'rmsprop'"),
        (dict(lr=0.0), InvalidArgument, "lr must be positive"),
        (dict(lr=float("nan")), InvalidArgument, "lr must be a finite number"),
        (dict(beta1=1.0), InvalidArgument, "must be below 1"),
        (dict(clip_norm=-1.0), InvalidArgument, "clip_norm must be positive"),
    ],
)
def test_bad_optimizer_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastrnn.Optimizer(**kwargs)


def test_optimizer_refuses_grads_of_another_model(model):
    with pytest.raises(InvalidArgument, match="grads must be a dict with the keys"):
        fastrnn.Optimizer().step(model, {"W0": np.zeros((4, 4))})
