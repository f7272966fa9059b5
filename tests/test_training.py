"""fastrnn.train: it learns, it is reproducible, and its CSV keeps its contract."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import NumericalError, engine, metrics
from fastrnn.training import _AccuracyTracker


def test_binary_task_reaches_accuracy_one():
    result = fastrnn.train(task="binary", iters=20000, seed=0)
    assert result.status == "completed"
    assert result.final_accuracy == 1.0
    assert result.first_perfect_iteration is not None and result.first_perfect_iteration < 10000  # the binary task's goal
    assert result.history["iteration"].iloc[-1] == 20000
    assert result.train_seconds > 0 and isinstance(result.model, fastrnn.RNN)
    # the learned recurrence carries over to longer numbers (docs/math.md)
    task = fastrnn.BinaryAddition(24)
    batch = task.sample(np.random.default_rng(1), 300)
    yhat, _ = result.model.forward(batch.X)
    np.testing.assert_array_equal(task.decode(task.predicted_positions(yhat)), batch.a + batch.b)


def test_digits_reach_the_accuracy_floor_at_a_reduced_width():
    result = fastrnn.train(task="digits", digits=3, iters=1500, seed=0)
    assert result.history["accuracy"].iloc[-1] >= 0.99, result.history.tail()


def test_digits_interleaved_encoding_learns():
    result = fastrnn.train(task="digits", digits=3, encoding="interleave", iters=1500, seed=0)
    assert result.history["digit_accuracy"].iloc[-1] >= 0.98, result.history.tail()


def test_same_seed_same_numbers_and_other_seed_other_numbers(tmp_path):
    cols = ["iteration", "samples", "loss", "error", "accuracy", "digit_accuracy", "grad_norm"]
    runs = [fastrnn.train(iters=1500, seed=s, csv=tmp_path / f"r{i}.csv") for i, s in enumerate((4, 4, 5))]
    frames = [pd.read_csv(r.csv_path)[cols] for r in runs]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    np.testing.assert_array_equal(runs[0].model.theta, runs[1].model.theta)
    assert not frames[0]["loss"].equals(frames[2]["loss"])


def test_log_every_changes_the_rows_not_the_training():
    runs = [fastrnn.train(iters=1000, seed=3, log_every=k) for k in (100, 250, 1000)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.model.theta, runs[0].model.theta)
        assert other.final_accuracy == runs[0].final_accuracy
    assert [len(r.history) for r in runs] == [10, 4, 1]


def test_chunk_kernel_equals_a_python_loop_over_loss_and_grads(rng):
    """The in-kernel loop must do exactly what the checked public pieces do."""
    task = fastrnn.DigitAddition(3)
    B, n = 4, 5
    data = task.sample(rng, n * B)
    model = fastrnn.RNN(task.n_in, 12, 10, seed=1)
    ref = model.copy()
    opt = fastrnn.Optimizer("adam", lr=0.01, clip_norm=0.5)
    ref_losses, ref_errors = [], []
    for it in range(n):
        sl = slice(it * B, (it + 1) * B)
        yhat, _ = ref.forward(data.X[sl])
        ref_errors.extend((task.predicted_positions(yhat) != task.true_positions(type(data)(data.X[sl], data.Y[sl], None, data.a[sl], data.b[sl]))).sum(axis=1))
        loss, grads = ref.loss_and_grads(data.X[sl], data.Y[sl])
        ref_losses.append(loss)
        opt.step(ref, grads)
    P = model.n_params
    state = np.zeros((2, P))
    buf = np.empty(engine.chunk_scratch_size(model, 3, B))
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n * B, dtype=np.int64)
    done = engine.train_chunk(model, -1, data.X, data.Y, np.zeros((0, 0)), B, 2, 0.01, opt.hyper, state, 0, 0.5, 0.0,
                              engine.new_state(model, B), None, buf, losses, norms, errors)
    assert done == n
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
    np.testing.assert_array_equal(errors, ref_errors)
    np.testing.assert_allclose(model.theta, ref.theta, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("head,masked,K", [("sigmoid", False, None), ("softmax", True, None), ("linear", False, None),
                                           ("softmax", False, 7), ("sigmoid", False, 2)])
def test_one_sequence_chunks_equal_a_python_loop(rng, activation, head, masked, K):
    """The chunk kernel at batch 1, every activation and head, with a mask and with truncation."""
    from conftest import make_data

    n, T, I, H, O = 6, 8, 3, 5, 4
    X, Y, mask = make_data(rng, n, T, I, O, head, masked)
    model = fastrnn.RNN(I, H, O, activation=activation, head=head, seed=2, init_scale=0.7)
    ref = model.copy()
    opt = fastrnn.Optimizer("momentum", lr=0.05, clip_norm=1.0)
    ref_losses, ref_norms, ref_errors = [], [], []
    for it in range(n):
        m = None if mask is None else mask[it : it + 1]
        yhat, _ = ref.forward(X[it : it + 1])
        if head == "softmax":
            wrong = yhat[0].argmax(axis=1) != Y[it].argmax(axis=1)
        elif head == "sigmoid":
            wrong = np.any((yhat[0] > 0.5) != (Y[it] > 0.5), axis=1)
        else:
            wrong = np.any(np.abs(yhat[0] - Y[it]) >= 0.5, axis=1)
        ref_errors.append(int(np.sum(wrong * (1 if m is None else m[0]))))
        loss, grads = ref.loss_and_grads(X[it : it + 1], Y[it : it + 1], mask=m, bptt_truncate=K)
        ref_losses.append(loss)
        ref_norms.append(opt.step(ref, grads))
    P = model.n_params
    buf = np.empty(engine.chunk_scratch_size(model, T, 1))
    losses, norms, errors = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    M = np.zeros((0, 0)) if mask is None else mask
    done = engine.train_chunk(model, -1 if K is None else K, X, Y, M, 1, 1, 0.05, opt.hyper, np.zeros((2, P)), 0, 1.0,
                              0.0, engine.new_state(model, 1), None, buf, losses, norms, errors)
    assert done == n
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
    np.testing.assert_allclose(norms, ref_norms, rtol=1e-12)
    np.testing.assert_array_equal(errors, ref_errors)
    np.testing.assert_allclose(model.theta, ref.theta, rtol=1e-11, atol=1e-14)


def test_accuracy_tracker_finds_the_first_window_of_1000_right():
    tracker = _AccuracyTracker(positions=8)
    errors = np.zeros(3000, dtype=np.int64)
    errors[[10, 1500]] = 1
    # feed in uneven chunks at batch 2: a run of 1000 right samples first completes at sample 10 + 1000
    for lo, hi in ((0, 700), (700, 1200), (1200, 3000)):
        tracker.add(errors[lo:hi], lo // 2, 2)
    assert tracker.first_perfect_iteration == (10 + 1000) // 2 + 1
    assert tracker.accuracy() == 1.0


def test_csv_contract(tmp_path):
    path = tmp_path / "run.csv"
    result = fastrnn.train(iters=1000, log_every=250, seed=2, csv=path, hidden=8)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(metrics.COLUMNS)
    assert sum(line.startswith("iteration") for line in lines) == 1
    frame, meta = fastrnn.read_run(path)
    assert list(frame.columns) == metrics.COLUMNS
    assert frame["iteration"].tolist() == [250, 500, 750, 1000]
    assert frame["samples"].tolist() == [250, 500, 750, 1000]
    assert meta["task"] == "binary" and meta["hidden"] == 8 and meta["seed"] == 2 and meta["lr"] == 0.1
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["status"] == "completed" and meta["result"]["iterations_done"] == 1000
    pd.testing.assert_frame_equal(frame, result.history, check_dtype=False)


def test_library_writes_no_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fastrnn.train(iters=50)
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_never_overwritten_silently(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("precious\n")
    with pytest.raises(fastrnn.InvalidArgument, match="already exists; choose another path or pass --overwrite"):
        fastrnn.train(iters=10, csv=path)
    assert path.read_text() == "precious\n"
    model_file = tmp_path / "m.npz"
    model_file.write_bytes(b"precious")
    with pytest.raises(fastrnn.InvalidArgument, match="model file .* already exists"):
        fastrnn.train(iters=10, save=model_file)
    assert model_file.read_bytes() == b"precious"
    fastrnn.train(iters=10, csv=path, save=model_file, overwrite=True)
    assert path.read_text().startswith("iteration,")


def test_divergence_stops_at_once_and_keeps_the_rows_before(tmp_path):
    path = tmp_path / "run.csv"
    # relu is unbounded, so a huge step makes the recurrence overflow; stable losses
    # with saturating units (tanh, sigmoid) stay finite even at lr 1e300
    with pytest.raises(NumericalError, match=r"NaN or infinite at iteration 2; .*clip off\): try --clip 1.0 or a smaller --lr") as info:
        fastrnn.train(task="digits", digits=3, iters=2000, optimizer="sgd", activation="relu", lr=1e300, clip=0,
                      log_every=1, csv=path)
    result = info.value.result
    assert result.status == "diverged" and result.iterations == 1
    frame = pd.read_csv(path)
    assert frame["iteration"].tolist() == [1]
    assert np.all(np.isfinite(frame["loss"]))
    assert json.loads(metrics.json_path_for(path).read_text())["status"] == "diverged"


def test_interrupt_keeps_every_finished_row_and_saves_the_model(tmp_path, monkeypatch):
    real = engine.train_chunk
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the warm-up call, then two chunks, then Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", interrupted)
    path, model_path = tmp_path / "run.csv", tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(iters=1000, log_every=100, csv=path, save=model_path)
    result = info.value.result
    assert result.status == "interrupted" and result.iterations == 200
    assert pd.read_csv(path)["iteration"].tolist() == [100, 200]
    assert json.loads(metrics.json_path_for(path).read_text())["status"] == "interrupted"
    loaded = fastrnn.RNN.load(model_path)
    np.testing.assert_array_equal(loaded.theta, result.model.theta)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(iters=0), "iters must be at least 1"),
        (dict(batch=-2), "batch must be at least 1"),
        (dict(hidden=0), "hidden must be at least 1"),
        (dict(lr=0.0), "lr must be positive"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(optimizer="lbfgs"), "optimizer must be one of"),
        (dict(task="subtraction"), "task must be one of"),
        (dict(clip=-1.0), "clip must be at least 0"),
        (dict(log_every=0), "log_every must be at least 1"),
        (dict(init_scale="wide"), "init_scale must be a real number"),
        (dict(log_spectrum="yes"), "log_spectrum must be True or False"),
    ],
)
def test_bad_training_settings(kwargs, pattern):
    with pytest.raises((fastrnn.InvalidArgument, fastrnn.InvalidType), match=pattern):
        fastrnn.train(**kwargs)


def test_unwritable_csv_path(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(fastrnn.InvalidArgument, match="cannot create the folder for --csv"):
        fastrnn.train(iters=10, csv=blocker / "run.csv")
