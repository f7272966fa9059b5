"""fastrnn.fit: arrays and windows through the chunk kernel, against a Python loop of loss_and_grads + Optimizer.step."""

import json

import numpy as np
import pytest

import fastrnn
from fastrnn import fitting


def make_model(head="softmax", n_in=3, n_out=4, hidden=5, layers=1, seed=0):
    return fastrnn.RNN(n_in, hidden, n_out, layers=layers, head=head, seed=seed)


def classification(N=12, T=6, n_in=3, n_out=4, seed=1, masked=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, (N, T))]
    mask = (rng.random((N, T)) < 0.7).astype(float) if masked else None
    return X, Y, mask


def python_loop(model, batches, optimizer, lr, clip=None, bptt_truncate=None, window=False):
    """The plain loop fit replaces: loss_and_grads then Optimizer.step, batch after batch."""
    opt = fastrnn.Optimizer(optimizer, lr=lr, clip_norm=clip)
    losses, h = [], None
    for X, Y, M, reset in batches:
        if window:
            if reset:
                h = np.zeros((model.layers, X.shape[0], model.n_hidden))
            loss, grads, h = model.loss_and_grads(X, Y, M, bptt_truncate=bptt_truncate, h0=h, return_state=True)
        else:
            loss, grads = model.loss_and_grads(X, Y, M, bptt_truncate=bptt_truncate)
        opt.step(model, grads)
        losses.append(loss)
    return np.array(losses)


def sequence_batches(X, Y, M, batch, epochs, order=None):
    out = []
    for e in range(epochs):
        idx = np.arange(X.shape[0]) if order is None else order[e]
        for lo in range(0, X.shape[0], batch):
            r = idx[lo : lo + batch]
            out.append((X[r], Y[r], None if M is None else M[r], True))
    return out


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_in_order_batches_equal_the_python_loop(optimizer):
    X, Y, M = classification(N=12)
    a, b = make_model(), make_model()
    result = fastrnn.fit(a, X, Y, M, epochs=3, batch=4, optimizer=optimizer, lr=0.05, clip=None, shuffle=False,
                         log_every=2)
    losses = python_loop(b, sequence_batches(X, Y, M, 4, 3), optimizer, 0.05)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=0)
    assert result.iterations == 9 and list(result.history["epoch"]) == [1, 1, 2, 2, 3, 3]
    # every row's loss is the mean of its iterations' losses (rows of 2 and 1 iterations, cut at epoch ends)
    expect = [losses[i : i + k].mean() for e in range(3) for i, k in ((3 * e, 2), (3 * e + 2, 1))]
    np.testing.assert_allclose(result.history["loss"], expect, rtol=1e-10)


def test_last_partial_batch_is_a_smaller_batch_as_in_the_python_loop():
    X, Y, M = classification(N=10)
    a, b = make_model(), make_model()
    fastrnn.fit(a, X, Y, M, epochs=2, batch=4, optimizer="sgd", lr=0.1, clip=None, shuffle=False, bptt_truncate=2)
    python_loop(b, sequence_batches(X, Y, M, 4, 2), "sgd", 0.1, bptt_truncate=2)  # batches of 4, 4, 2
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=0)


def test_shuffle_draws_a_permutation_per_epoch_from_the_seed():
    X, Y, M = classification(N=10)
    a, b = make_model(), make_model()
    fastrnn.fit(a, X, Y, M, epochs=3, batch=4, optimizer="adam", lr=0.01, clip=1.0, shuffle=True, seed=7)
    rng = np.random.default_rng([7, 1])
    order = [rng.permutation(10) for _ in range(3)]
    python_loop(b, sequence_batches(X, Y, M, 4, 3, order), "adam", 0.01, clip=1.0)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=0)
    c = make_model()
    fastrnn.fit(c, X, Y, M, epochs=3, batch=4, shuffle=False)
    assert not np.allclose(a.theta, c.theta)


def window_batches(X, Y, M, K, epochs):
    out = []
    for _ in range(epochs):
        for t0 in range(0, X.shape[1], K):
            out.append((X[:, t0 : t0 + K], Y[:, t0 : t0 + K], None if M is None else M[:, t0 : t0 + K], t0 == 0))
    return out


@pytest.mark.usefixtures("kernel_choice")
@pytest.mark.parametrize("T_total, K, truncate, layers", [(12, 4, None, 1), (14, 4, None, 2), (14, 5, 2, 1), (3, 5, None, 1)])
def test_windows_carry_the_state_as_the_python_loop(T_total, K, truncate, layers):
    X, Y, M = classification(N=3, T=T_total)
    a, b = make_model(layers=layers), make_model(layers=layers)
    result = fastrnn.fit(a, X, Y, M, epochs=2, window=K, optimizer="sgd", lr=0.1, clip=None, bptt_truncate=truncate,
                         log_every=2)
    python_loop(b, window_batches(X, Y, M, K, 2), "sgd", 0.1, bptt_truncate=truncate, window=True)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=0)
    assert result.iterations == 2 * -(-T_total // K)
    assert result.settings["shuffle"] is False and result.settings["batch"] == 3


def test_windows_differ_from_restarting_every_window():
    """The carried state matters: the same windows from zeros each time train other weights."""
    X, Y, M = classification(N=3, T=12)
    a, b = make_model(), make_model()
    fastrnn.fit(a, X, Y, M, epochs=1, window=4, optimizer="sgd", lr=0.1, clip=None)
    python_loop(b, [(x, y, m, True) for x, y, m, _ in window_batches(X, Y, M, 4, 1)], "sgd", 0.1, window=True)
    assert not np.allclose(a.theta, b.theta)


@pytest.mark.parametrize("head", ["softmax", "sigmoid", "linear"])
def test_row_accuracy_is_the_fraction_of_target_steps_right(head):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 5, 3))
    Y = {"softmax": np.eye(2)[rng.integers(0, 2, (8, 5))], "sigmoid": rng.integers(0, 2, (8, 5, 2)).astype(float),
         "linear": rng.normal(size=(8, 5, 2))}[head]
    M = (rng.random((8, 5)) < 0.6).astype(float)
    model = make_model(head=head, n_out=2)
    before = model.theta.copy()
    result = fastrnn.fit(model, X, Y, M, epochs=1, batch=8, shuffle=False, validation=(X, Y, M))
    # one iteration: the row's accuracy is that of the weights before the step
    after = model.theta.copy()
    model.theta[:] = before
    wrong, targets = fitting.step_errors(model, model.forward(X)[0], Y, M)
    row = result.history.iloc[0]
    assert row["accuracy"] == pytest.approx(1 - wrong.sum() / targets.sum())
    assert row["error"] == pytest.approx(wrong.mean())
    model.theta[:] = after
    wrong, targets = fitting.step_errors(model, model.forward(X)[0], Y, M)
    assert row["val_accuracy"] == pytest.approx(1 - wrong.sum() / targets.sum())
    assert row["val_loss"] == pytest.approx(model.loss_and_grads(X, Y, M)[0])


def test_files_record_a_fit_on_arrays_and_refuse_to_overwrite(tmp_path):
    X, Y, M = classification()
    csv = tmp_path / "fit.csv"
    result = fastrnn.fit(make_model(), X, Y, M, epochs=2, csv=csv, save=tmp_path / "m.npz", validation=(X, Y))
    frame, meta = fastrnn.read_run(csv)
    assert len(frame) == 2 and list(frame.columns[-3:]) == ["epoch", "val_loss", "val_accuracy"]
    assert meta["task"] == "data" and meta["data"] == "arrays" and meta["status"] == "completed"
    assert meta["shapes"] == {"X": [12, 6, 3], "Y": [12, 6, 4], "mask": [12, 6], "X_val": [12, 6, 3]}
    assert meta["epochs"] == 2 and meta["head"] == "softmax" and meta["hidden"] == 5
    assert (tmp_path / "m.npz").exists() and result.save_path is not None
    with pytest.raises(fastrnn.InvalidArgument, match="already exists"):
        fastrnn.fit(make_model(), X, Y, M, csv=csv)
    fastrnn.fit(make_model(), X, Y, M, epochs=1, csv=csv, overwrite=True)
    assert len(fastrnn.read_run(csv)[0]) == 1


def test_divergence_keeps_the_rows_and_raises(tmp_path):
    X, Y, _ = classification()
    model = make_model(head="linear", n_out=4)
    Y = Y * 1e150
    with pytest.raises(fastrnn.NumericalError) as info:
        fastrnn.fit(model, X, Y, epochs=50, batch=4, optimizer="sgd", lr=10.0, clip=None, log_every=1,
                    csv=tmp_path / "d.csv")
    result = info.value.result
    assert result.status == "diverged"
    assert len(fastrnn.read_run(tmp_path / "d.csv")[0]) == len(result.rows)
    assert json.loads((tmp_path / "d.json").read_text())["status"] == "diverged"


def test_ctrl_c_keeps_the_rows(tmp_path, monkeypatch):
    X, Y, M = classification()
    calls = []
    real = fitting._FitRun._validate

    def interrupt(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(fitting._FitRun, "_validate", interrupt)
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.fit(make_model(), X, Y, M, epochs=5, csv=tmp_path / "c.csv", save=tmp_path / "c.npz",
                    validation=(X, Y))
    assert info.value.result.status == "interrupted"
    assert json.loads((tmp_path / "c.json").read_text())["status"] == "interrupted"
    assert (tmp_path / "c.npz").exists()


# ------------------------------------------------------------------ bad arguments

X0, Y0, M0 = classification()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(model="net"), fastrnn.InvalidType, "model must be a fastrnn.RNN"),
    (dict(X=X0[0]), fastrnn.InvalidArgument, "X"),
    (dict(Y=Y0[:, :, :2]), fastrnn.InvalidArgument, "Y"),
    (dict(Y=Y0[:5]), fastrnn.InvalidArgument, "Y"),
    (dict(mask=M0[:, :3]), fastrnn.InvalidArgument, "mask"),
    (dict(X=np.where(X0 > 2, np.nan, X0)), fastrnn.InvalidArgument, "X contains NaN"),
    (dict(Y=Y0 * 0.5), fastrnn.InvalidArgument, "one-hot"),
    (dict(mask=M0 * 3), fastrnn.InvalidArgument, "mask"),
    (dict(X=np.array([[["a"]]], dtype=object)), fastrnn.InvalidType, "X"),
    (dict(epochs=0), fastrnn.InvalidArgument, "epochs"),
    (dict(epochs=1.5), fastrnn.InvalidType, "epochs"),
    (dict(batch=0), fastrnn.InvalidArgument, "batch"),
    (dict(batch=4, window=2), fastrnn.InvalidArgument, "batch must be left out"),
    (dict(window=0), fastrnn.InvalidArgument, "window"),
    (dict(optimizer="lbfgs"), fastrnn.InvalidArgument, "optimizer"),
    (dict(lr=-1.0), fastrnn.InvalidArgument, "lr"),
    (dict(lr=float("nan")), fastrnn.InvalidArgument, "lr"),
    (dict(momentum=1.0), fastrnn.InvalidArgument, "momentum"),
    (dict(clip=-1.0), fastrnn.InvalidArgument, "clip"),
    (dict(clip_value=-1.0), fastrnn.InvalidArgument, "clip_value"),
    (dict(bptt_truncate=-1), fastrnn.InvalidArgument, "bptt_truncate"),
    (dict(shuffle="yes"), fastrnn.InvalidType, "shuffle"),
    (dict(seed=-1), fastrnn.InvalidArgument, "seed"),
    (dict(log_every=0), fastrnn.InvalidArgument, "log_every"),
    (dict(validation=X0), fastrnn.InvalidType, "validation"),
    (dict(validation=(X0,)), fastrnn.InvalidType, "validation"),
    (dict(validation=(X0, Y0[:, :, :2])), fastrnn.InvalidArgument, "validation: Y"),
    (dict(validation=(X0[:, :, :2], Y0)), fastrnn.InvalidArgument, "validation: X"),
    (dict(overwrite="yes"), fastrnn.InvalidType, "overwrite"),
    (dict(progress=1), fastrnn.InvalidType, "progress"),
    (dict(csv=123), fastrnn.InvalidType, "csv must be a file path"),
    (dict(save=3.5), fastrnn.InvalidType, "save must be a file path"),
    (dict(validation=(X0, Y0, M0[:, :2])), fastrnn.InvalidArgument, "validation: mask"),
])
def test_bad_arguments_are_refused_naming_the_argument(kwargs, error, match):
    args = dict(model=make_model(), X=X0, Y=Y0, mask=M0)
    args.update(kwargs)
    model, X, Y, mask = args.pop("model"), args.pop("X"), args.pop("Y"), args.pop("mask")
    with pytest.raises(error, match=match):
        fastrnn.fit(model, X, Y, mask, **args)


def test_a_csv_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(fastrnn.InvalidArgument, match="folder"):
        fastrnn.fit(make_model(), X0, Y0, M0, csv=tmp_path)


def test_an_all_zero_mask_is_refused():
    with pytest.raises(fastrnn.InvalidArgument, match="mask is all zeros"):
        fastrnn.fit(make_model(), X0, Y0, M0 * 0)


@pytest.mark.parametrize("Y, head", [
    (np.eye(3)[[0, 2, 1]][:, None, :], "softmax"),
    (np.array([[[0.0, 1.0]], [[1.0, 1.0]], [[0.0, 0.0]]]), "sigmoid"),
    (np.array([[[1.0]], [[0.0]], [[1.0]]]), "sigmoid"),  # one output is never one-hot
    (np.array([[[0.5]], [[0.0]], [[1.0]]]), "linear"),
    (np.array([[[2.0, -1.0]], [[0.0, 1.0]], [[1.0, 0.0]]]), "linear"),
])
def test_infer_head(Y, head):
    assert fitting.infer_head(Y) == head


def test_infer_head_reads_only_steps_with_a_target():
    Y = np.array([[[0.0, 1.0], [0.3, 0.3]]])
    assert fitting.infer_head(Y) == "linear"
    assert fitting.infer_head(Y, np.array([[1.0, 0.0]])) == "softmax"


def test_bench_fit_checks_fit_against_the_loop_and_reports_both():
    """benchmarks/bench_fit.py times fit and the Python loop only after their weights agree (rtol 1e-10)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_fit

    rows = bench_fit.bench_shape("tiny", 2, 4, 2, 3, 2, "softmax", 3)
    assert [r["contender"] for r in rows] == ["python_loop", "fit"]
    assert all(r["median_us"] > 0 and r["min_us"] <= r["median_us"] <= r["max_us"] for r in rows)
    assert "| tiny | 2 | 4 | 2 | 3 | 2 | 3 |" in bench_fit.markdown(rows, [])


def test_fit_defaults_are_the_data_defaults_of_the_settings():
    import inspect

    from fastrnn import settings

    params = inspect.signature(fastrnn.fit).parameters
    for name in ("optimizer", "lr", "clip"):
        assert params[name].default == settings.DATA_DEFAULTS[name], name
    for s in settings.DATA:
        if s.name == "shuffle":  # None: the setting's default (on) for whole sequences, off with a window
            assert params[s.name].default is None and s.default is True
        elif s.name != "head":  # the head is the model's
            assert params[s.name].default == s.default, s.name
    from fastrnn.fitting import _DEFAULTS  # fit's keyword defaults, its optimizer options (**options) included

    for name in ("momentum", "weight_decay"):
        assert _DEFAULTS[name] == settings.get(name).default, name
