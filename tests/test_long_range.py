"""The long-range tasks (adding, copy, order), the initialisations (default, orthogonal, identity)
and the step-decay learning-rate schedule: data against plain constructions written here, the
baselines computed here, orthogonality, and the schedule against a one-iteration-at-a-time driver."""

import json
import math

import numpy as np
import pytest

import fastrnn
from fastrnn import engine, inits, optim
from fastrnn.tasks import AddingProblem, CopyMemory, TemporalOrder, make_task
from fastrnn.training import can_train_together, resolve_settings, train_many
from conftest import assert_same_run
from test_cli import assert_one_line_error, run


def floor_int(u, k):
    return min(int(math.floor(u * k)), k - 1)


# ------------------------------------------------------------------ the tasks' data


@pytest.mark.parametrize("form", ["unit", "signed"])
def test_adding_data_is_the_le_construction(form):
    T, n = 12, 40
    batch = AddingProblem(length=T, adding_form=form).sample(np.random.default_rng(5), n)
    u = np.random.default_rng(5).random((n, T + 3))
    for i in range(n):
        X = np.zeros((T, 2))
        values = u[i, :T] if form == "unit" else 2 * u[i, :T] - 1
        X[:, 0] = values
        p1 = floor_int(u[i, T], T // 2)
        p2 = T // 2 + floor_int(u[i, T + 1], T - T // 2)
        X[p1, 1] = X[p2, 1] = 1.0
        assert p1 < T // 2 <= p2
        np.testing.assert_array_equal(batch.X[i], X)
        expected_y = np.zeros((T, 1))
        expected_y[T - 1, 0] = values[p1] + values[p2]
        np.testing.assert_array_equal(batch.Y[i], expected_y)
        np.testing.assert_array_equal(batch.mask[i], np.eye(T)[T - 1])


def test_adding_hochreiter_data_is_the_1997_construction():
    T, n = 40, 200
    Tm = T + T // 10
    task = AddingProblem(length=T, adding_form="hochreiter")
    assert task.T == Tm
    batch = task.sample(np.random.default_rng(9), n)
    u = np.random.default_rng(9).random((n, Tm + 3))
    seen_first_marked = False
    for i in range(n):
        length = T + floor_int(u[i, Tm + 2], T // 10 + 1)
        X = np.zeros((Tm, 2))
        X[:length, 0] = 2 * u[i, :length] - 1
        X[0, 1] = X[length - 1, 1] = -1.0
        p1 = floor_int(u[i, Tm], 10)  # one of the first ten steps
        free = [t for t in range(T // 2 - 1) if t != p1]  # one of the first T/2 - 1 steps still unmarked
        p2 = free[floor_int(u[i, Tm + 1], len(free))]
        X[p1, 1] = X[p2, 1] = 1.0
        if 0 in (p1, p2):
            X[0, 0] = 0.0
            seen_first_marked = True
        np.testing.assert_array_equal(batch.X[i], X)
        target = np.zeros((Tm, 1))
        target[length - 1, 0] = 0.5 + (X[p1, 0] + X[p2, 0]) / 4
        np.testing.assert_array_equal(batch.Y[i], target)
        np.testing.assert_array_equal(batch.mask[i], np.eye(Tm)[length - 1])
    assert seen_first_marked
    assert np.all(np.abs(batch.X[:, :, 0]) <= 1) and np.all((batch.X[:, :, 1] == 1).sum(axis=1) == 2)


def test_copy_data_is_the_arjovsky_construction():
    lag, n = 7, 30
    batch = CopyMemory(lag=lag).sample(np.random.default_rng(2), n)
    u = np.random.default_rng(2).random((n, 10))
    T = lag + 20
    for i in range(n):
        symbols = [floor_int(v, 8) for v in u[i]]
        inputs = symbols + [8] * (lag - 1) + [9] + [8] * 10
        targets = [8] * (lag + 10) + symbols
        assert len(inputs) == len(targets) == T
        np.testing.assert_array_equal(batch.X[i], np.eye(10)[inputs])
        np.testing.assert_array_equal(batch.Y[i], np.eye(10)[targets])
    assert batch.mask is None


def test_order_data_is_the_6a_construction():
    n = 60
    batch = TemporalOrder().sample(np.random.default_rng(4), n)
    u = np.random.default_rng(4).random((n, 115))
    alphabet = "EBabcdXY"
    for i in range(n):
        length = 100 + floor_int(u[i, 110], 11)
        t1, t2 = 10 + floor_int(u[i, 111], 11), 50 + floor_int(u[i, 112], 11)
        a, b = floor_int(u[i, 113], 2), floor_int(u[i, 114], 2)
        seq = ["abcd"[floor_int(v, 4)] for v in u[i, :length]]
        seq[0], seq[length - 1], seq[t1], seq[t2] = "E", "B", "XY"[a], "XY"[b]
        X = np.zeros((110, 8))
        X[np.arange(length), [alphabet.index(c) for c in seq]] = 1.0
        np.testing.assert_array_equal(batch.X[i], X)
        label = ["XX", "XY", "YX", "YY"].index(seq[t1] + seq[t2])
        Y = np.zeros((110, 4))
        Y[length - 1, label] = 1.0
        np.testing.assert_array_equal(batch.Y[i], Y)
        np.testing.assert_array_equal(batch.mask[i], np.eye(110)[length - 1])
    lengths = batch.mask.argmax(axis=1) + 1
    assert lengths.min() >= 100 and lengths.max() <= 110


@pytest.mark.parametrize("task", [AddingProblem(30), AddingProblem(30, "hochreiter"), CopyMemory(5), TemporalOrder()],
                         ids=["adding", "hochreiter", "copy", "order"])
def test_long_range_samples_do_not_depend_on_how_the_stream_is_cut(task):
    whole = task.sample(np.random.default_rng(7), 90)
    rng = np.random.default_rng(7)
    parts = [task.sample(rng, n) for n in (30, 13, 47)]
    for field in ("X", "Y", "mask"):
        if getattr(whole, field) is not None:
            np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(task="adding", length=1), "length must be at least 2"),
    (dict(task="adding", length=12, adding_form="hochreiter"), "length=12 is too short for adding_form='hochreiter'"),
    (dict(task="adding", adding_form="both"), "adding_form"),
    (dict(task="copy", lag=0), "lag must be at least 1"),
    (dict(task="order", lag=5), "lag belongs to the recall and copy tasks; the order task takes no parameters"),
    (dict(task="copy", length=5), "length and adding_form belong to the adding task; the copy task takes lag"),
])
def test_bad_long_range_task_settings_are_refused(kwargs, pattern):
    with pytest.raises(fastrnn.InvalidArgument, match=pattern):
        resolve_settings(**kwargs)


# ------------------------------------------------------------------ the baselines


def test_adding_baselines_are_those_of_the_best_constant():
    rng = np.random.default_rng(11)
    # unit: the sum of two U[0, 1) values has mean 1 and variance 2/12; |S - 1| < a has probability 2a - a^2
    assert AddingProblem(50).baseline["test_mse"] == pytest.approx(2 / 12, abs=1e-15)
    assert AddingProblem(50).baseline["test_correct"] == pytest.approx(2 * 0.04 - 0.04**2, abs=1e-15)
    assert AddingProblem(50, "signed").baseline["test_mse"] == pytest.approx(2 * 4 / 12, abs=1e-15)
    for form, constant in (("unit", 1.0), ("signed", 0.0), ("hochreiter", 0.5)):
        task = AddingProblem(40, form)
        batch = task.sample(rng, 50_000)
        last = batch.mask.argmax(axis=1)
        y = batch.Y[np.arange(len(last)), last, 0]
        mse, correct = np.mean((y - constant) ** 2), np.mean(np.abs(y - constant) < 0.04)
        # Monte Carlo against the exact values, within 4 standard errors
        se_mse = np.std((y - constant) ** 2) / np.sqrt(len(y))
        se_correct = np.sqrt(correct * (1 - correct) / len(y))
        assert abs(mse - task.baseline["test_mse"]) < 4 * se_mse, form
        assert abs(correct - task.baseline["test_correct"]) < 4 * se_correct, form
        # and the best constant is the mean: any other constant does worse
        assert np.mean((y - constant - 0.05) ** 2) > mse
    # the 1997 form: 1/24 but for the marked first step, whose value counts 0
    assert AddingProblem(100, "hochreiter").baseline["test_mse"] < 1 / 24
    assert AddingProblem(100, "hochreiter").baseline["test_mse"] == pytest.approx(1 / 24, rel=0.06)


@pytest.mark.parametrize("lag", [1, 10, 50])
def test_copy_baseline_is_the_memoryless_cross_entropy(lag):
    task = CopyMemory(lag)
    batch = task.sample(np.random.default_rng(1), 64)
    T = lag + 20
    guess = np.zeros((64, T, 10))
    guess[:, : T - 10, 8] = 1.0  # the blank, surely, until the delimiter has passed
    guess[:, T - 10 :, :8] = 1 / 8  # then a uniform guess over the symbols
    scores = task.score(guess, batch)
    assert scores["test_ce_per_step"] == pytest.approx(10 * np.log(8) / (lag + 20), rel=1e-12)
    assert task.baseline["test_ce_per_step"] == pytest.approx(10 * np.log(8) / (lag + 20), rel=1e-15)
    perfect = task.score(np.where(batch.Y == 1, 1.0, 0.0), batch)
    assert perfect == {"test_ce_per_step": 0.0, "test_recall_accuracy": 1.0}


def test_order_baseline_is_chance():
    task = TemporalOrder()
    n = 4000
    batch = task.sample(np.random.default_rng(3), n)
    uniform = np.full(batch.Y.shape, 0.25)
    scores = task.score(uniform, batch)
    assert scores["test_ce"] == pytest.approx(np.log(4), rel=1e-12) == task.baseline["test_ce"]
    labels = batch.Y[np.arange(n), batch.mask.argmax(axis=1)].argmax(axis=1)
    # the classes are balanced: each share within 4 standard errors (0.0068) of 1/4
    assert np.bincount(labels, minlength=4) / n == pytest.approx([0.25] * 4, abs=0.028)
    always_xx = np.zeros(batch.Y.shape)
    always_xx[:, :, 0] = 1.0
    assert task.score(always_xx, batch)["test_accuracy"] == pytest.approx(0.25, abs=0.028)


def test_adding_score_reads_the_last_real_step():
    task = AddingProblem(20, "hochreiter")
    batch = task.sample(np.random.default_rng(0), 3)
    yhat = np.full(batch.Y.shape, 7.0)  # everything but the scored steps is far off
    last = batch.mask.argmax(axis=1)
    yhat[np.arange(3), last, 0] = batch.Y[np.arange(3), last, 0] + np.array([0.0, 0.03, -0.1])
    scores = task.score(yhat, batch)
    assert scores["test_mse"] == pytest.approx((0.03**2 + 0.1**2) / 3, rel=1e-12)
    assert scores["test_correct"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------ training on them


@pytest.mark.parametrize("case", [dict(task="adding", length=10), dict(task="adding", length=20, adding_form="hochreiter"),
                                  dict(task="copy", lag=3), dict(task="order")], ids=["adding", "hochreiter", "copy", "order"])
def test_training_rows_carry_the_held_out_scores(case, tmp_path):
    csv = tmp_path / "r.csv"
    result = fastrnn.train(iters=40, log_every=20, hidden=8, csv=csv, **case)
    task = make_task(case["task"], **{k: v for k, v in case.items() if k != "task"})
    last = result.rows[-1]
    # the row's scores are the task's score of the trained model on the fixed held-out batch
    from fastrnn.tasks._base import HELD_OUT, HELD_OUT_SEED

    held_out = task.sample(np.random.default_rng(HELD_OUT_SEED), HELD_OUT)
    expected = task.score(result.model.forward(held_out.X)[0], held_out)
    assert {k: last[k] for k in task.score_columns} == expected
    history, meta = fastrnn.read_run(csv)
    assert list(history.columns[-2:]) == list(task.score_columns) and len(history) == 2
    settings = meta.get("settings", meta)
    assert settings["task"] == case["task"] and settings["init"] == "default"


def test_train_prints_the_task_headline_against_its_baseline(capsys):
    code, out, err = run(capsys, "train", "--task", "adding", "--length", "10", "--iters", "20", "--log-every", "10",
                         "--no-csv", "-q")
    assert code == 0, err
    assert out.startswith("adding: test MSE ") and "(baseline 0.1667, predicting 1)" in out
    code, out, err = run(capsys, "train", "--task", "copy", "--lag", "10", "--iters", "20", "--log-every", "10",
                         "--no-csv", "-q")
    assert code == 0, err
    assert f"(baseline {10 * np.log(8) / 30:.4f}, memoryless)" in out


def test_runs_of_the_scoring_tasks_train_one_by_one():
    assert not can_train_together(dict(task="adding", length=5, hidden=2, batch=1))
    with pytest.raises(fastrnn.InvalidArgument, match="train_many does not score held-out data"):
        train_many([dict(task="order", seed=0, iters=2), dict(task="order", seed=1, iters=2)])


def test_a_sweep_over_lengths_and_inits(tmp_path):
    result = fastrnn.sweep(task="adding", seeds=[0], grid={"length": [5, 8], "init": ["default", "orthogonal"]},
                           out=tmp_path / "s", workers=1, iters=20, log_every=10, hidden=4)
    assert len(result.summary) == 4 and set(result.summary["status"]) == {"completed"}
    last_mse = {}
    for name in result.summary["run"]:
        meta = json.loads((tmp_path / "s" / f"{name}.json").read_text())
        settings = meta.get("settings", meta)
        assert settings["init"] in name and f"length{settings['length']}" in name
        last_mse[(settings["length"], settings["init"])] = fastrnn.read_run(tmp_path / "s" / f"{name}.csv")[0]["test_mse"].iloc[-1]
    # the report groups them with the task's held-out scores, its headline metrics (mean, and the worst run)
    from fastrnn import report

    table = report.summarize(report.collect(tmp_path / "s"), by=["length"])
    for length, row in table.set_index("length").iterrows():
        mine = [v for (n, _), v in last_mse.items() if str(n) == str(length)]
        assert row["final_test_mse_mean"] == pytest.approx(np.mean(mine), rel=1e-12)
        assert row["final_test_mse_max"] == pytest.approx(np.max(mine), rel=1e-12)  # lower is better
        assert 0 <= row["final_test_correct_min"] <= row["final_test_correct_mean"] <= 1
    # and the sweep's summary.csv has a column per held-out score
    assert {"final_test_mse", "final_test_correct"} <= set(result.summary.columns)


# ------------------------------------------------------------------ initialisations


@pytest.mark.parametrize("cell, layers", [("rnn", 1), ("rnn", 2), ("gru", 1), ("lstm", 2)])
def test_orthogonal_init_makes_every_recurrent_block_orthogonal(cell, layers):
    H = 16
    model = fastrnn.RNN(3, H, 2, layers=layers, cell=cell, init="orthogonal", seed=3)
    plain = fastrnn.RNN(3, H, 2, layers=layers, cell=cell, seed=3)
    rng = np.random.default_rng([3, inits.INIT_STREAM])
    for l in range(layers):
        W = model.params[f"W{l}"]
        for g in range(W.shape[0] // H):
            block = W[g * H : (g + 1) * H]
            assert np.abs(block @ block.T - np.eye(H)).max() < 1e-12
            assert np.abs(block.T @ block - np.eye(H)).max() < 1e-12
            # the sign-corrected QR of a standard normal matrix, drawn in order
            q, r = np.linalg.qr(rng.standard_normal((H, H)))
            np.testing.assert_array_equal(block, q * np.sign(np.diag(r)))
    for name in plain.param_names:  # everything else as the default draw made it
        if not name.startswith("W"):
            np.testing.assert_array_equal(model.params[name], plain.params[name])


def test_orthogonal_init_keeps_the_forget_bias():
    model = fastrnn.RNN(2, 4, 1, cell="lstm", forget_bias=1.0, init="orthogonal")
    np.testing.assert_array_equal(model.params["b0"], [0] * 4 + [1] * 4 + [0] * 8)


@pytest.mark.parametrize("cell, layers", [("rnn", 1), ("rnn", 2), ("lstm", 1)])
def test_normal_orthogonal_init_draws_u_and_v_from_n_0_over_fan_in_with_w_orthogonal_and_zero_biases(cell, layers):
    H, I, O, seed = 12, 3, 2, 5
    model = fastrnn.RNN(I, H, O, layers=layers, cell=cell, init="normal-orthogonal", forget_bias=1.0 if cell == "lstm" else 0.0,
                        seed=seed)
    rng = np.random.default_rng([seed, inits.INIT_STREAM])
    for l in range(layers):  # first every W block, in order, as init="orthogonal" draws them
        W = model.params[f"W{l}"]
        for g in range(W.shape[0] // H):
            q, r = np.linalg.qr(rng.standard_normal((H, H)))
            np.testing.assert_array_equal(W[g * H : (g + 1) * H], q * np.sign(np.diag(r)))
    for name in model.param_names:  # then U_l and V from N(0, 1/fan-in), in the order of the parameters
        value = model.params[name]
        if name.startswith("U") or name == "V":
            np.testing.assert_array_equal(value, rng.normal(0.0, 1.0 / np.sqrt(value.shape[1]), value.shape))
    for l in range(layers):
        b = model.params[f"b{l}"]
        if cell == "lstm":
            np.testing.assert_array_equal(b, [0] * H + [1] * H + [0] * 2 * H)
        else:
            assert not b.any()
    assert not model.params["c"].any()


def test_normal_orthogonal_init_has_the_variance_of_its_fan_in():
    model = fastrnn.RNN(50, 200, 40, init="normal-orthogonal", seed=0)
    for name, fan_in in (("U0", 50), ("V", 200)):
        var = model.params[name].var()
        n = model.params[name].size
        # the sample variance of n normal draws has relative std sqrt(2/n): 5 of those is a bound that can fail
        assert abs(var * fan_in - 1.0) < 5 * np.sqrt(2.0 / n), (name, var * fan_in)


def test_identity_init_is_the_irnn():
    model = fastrnn.RNN(300, 50, 200, layers=2, activation="relu", init="identity", seed=1)
    for l in range(2):
        np.testing.assert_array_equal(model.params[f"W{l}"], np.eye(50))
        assert not model.params[f"b{l}"].any()
    assert not model.params["c"].any()
    for name in ("U0", "V"):  # N(0, 0.001^2): 15000 and 10000 draws
        values = model.params[name]
        assert abs(values.mean()) < 1e-4 and values.std() == pytest.approx(0.001, rel=0.03)
    assert model.config()["init"] == "identity"


def test_inits_are_reproducible_and_saved_with_the_model(tmp_path):
    a = fastrnn.RNN(2, 6, 1, init="orthogonal", seed=4)
    b = fastrnn.RNN(2, 6, 1, init="orthogonal", seed=4)
    c = fastrnn.RNN(2, 6, 1, init="orthogonal", seed=5)
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.params["W0"], c.params["W0"])
    a.save(tmp_path / "m.npz")
    loaded = fastrnn.RNN.load(tmp_path / "m.npz")
    assert loaded.init == "orthogonal" and np.array_equal(loaded.theta, a.theta)


def test_float32_orthogonal_init_is_orthogonal_to_its_precision():
    W = fastrnn.RNN(2, 32, 1, init="orthogonal", dtype="float32").params["W0"].astype(np.float64)
    assert np.abs(W @ W.T - np.eye(32)).max() < 1e-6


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_cells_refuse_the_identity_init(cell, capsys):
    with pytest.raises(fastrnn.InvalidArgument, match="init='identity' applies to the vanilla cell only"):
        fastrnn.RNN(2, 4, 1, cell=cell, init="identity")
    code, _, err = run(capsys, "train", "--cell", cell, "--init", "identity", "--no-csv")
    assert_one_line_error(code, err, 2, f"init='identity' applies to cell='rnn' only (the IRNN); the {cell} cell's W")


def test_identity_refuses_an_init_scale(capsys):
    code, _, err = run(capsys, "train", "--init", "identity", "--init-scale", "0.5", "--no-csv")
    assert_one_line_error(code, err, 2, "init_scale=0.5 does not apply with init='identity'")


def test_train_records_the_init_and_init_from_overrides_it(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--task", "adding", "--length", "5", "--hidden", "6", "--iters", "10",
                       "--log-every", "10", "--init", "orthogonal", "--csv", str(tmp_path / "o.csv"), "--save",
                       str(tmp_path / "o.npz"))
    assert code == 0, err
    meta = json.loads((tmp_path / "o.json").read_text())
    assert meta.get("settings", meta)["init"] == "orthogonal"
    saved = fastrnn.RNN.load(tmp_path / "o.npz")
    started = fastrnn.train(task="adding", length=5, hidden=6, iters=1, log_every=1, init="identity", activation="relu",
                            init_from=tmp_path / "o.npz", lr=1e-300)  # a step too small to move: the weights are the file's
    np.testing.assert_allclose(started.model.theta, saved.theta, rtol=0, atol=1e-250)


def test_the_text_task_orthogonal_w_is_orthogonal_over_its_own_draw():
    result = fastrnn.train(task="text", iters=1, log_every=1, hidden=12, init="orthogonal", lr=1e-300)
    W = result.model.params["W0"]
    assert np.abs(W @ W.T - np.eye(12)).max() < 1e-12
    assert result.model.params["U0"].std() == pytest.approx(0.01, rel=0.3)  # the task's N(0, 0.01^2) draw stays


def test_data_runs_take_an_init(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((8, 5, 2)), Y=rng.standard_normal((8, 5, 1)))
    from fastrnn.fitting import fit_file

    result = fit_file(tmp_path / "d.npz", epochs=1, hidden=7, init="orthogonal", lr=1e-300)
    W = result.model.params["W0"]
    assert result.model.init == "orthogonal" and np.abs(W @ W.T - np.eye(7)).max() < 1e-12


# ------------------------------------------------------------------ the step schedule


def schedule_by_hand(iters, lr, step, gamma, **settings):
    """The same run driven one iteration at a time, its rate from the formula: lr * gamma ** (i // step)."""
    task, s = resolve_settings(iters=iters, lr=lr, **settings)
    model = fastrnn.RNN(task.n_in, s["hidden"], task.n_out, head=task.head, seed=s["seed"], cell=s["cell"])
    B = s["batch"]
    X, Y, M, _ = task.source(np.random.default_rng([s["seed"], 1]), B, np.float64).next(iters)
    state = np.zeros((2, model.n_params))
    hstate = engine.new_state(model, B)
    buf = np.empty(engine.chunk_scratch_size(model, task.T, B))
    losses, norms, errors = np.empty(iters), np.empty(iters), np.empty(iters * B, dtype=np.int64)
    for i in range(iters):
        rows = slice(i * B, (i + 1) * B)
        done = engine.train_chunk(model, -1, X[rows], Y[rows], M[rows], B, optim.OPTIMIZERS[s["optimizer"]],
                                  lr * gamma ** (i // step), optim.hyper_array(momentum=s["momentum"]), state, i,
                                  s["clip"] or 0.0, 0.0, hstate, None, buf, losses[i : i + 1], norms[i : i + 1],
                                  errors[rows])
        assert done == 1
    return model, losses


@pytest.mark.parametrize("log_every", [7, 20, 60])
def test_step_schedule_is_exact_at_any_chunk_size(log_every):
    settings = dict(task="adding", length=8, hidden=5, batch=4, seed=2)
    expected, losses = schedule_by_hand(60, 0.02, 15, 0.5, **settings)
    result = fastrnn.train(iters=60, lr=0.02, lr_step=15, lr_gamma=0.5, log_every=log_every, **settings)
    np.testing.assert_array_equal(result.model.theta, expected.theta)
    rows = result.history
    assert rows["learning_rate"].tolist() == [0.02 * 0.5 ** ((it - 1) // 15) for it in rows["iteration"]]
    plain = fastrnn.train(iters=60, lr=0.02, log_every=log_every, **settings)
    assert not np.array_equal(plain.model.theta, result.model.theta)


def test_step_schedule_resumes_exactly(tmp_path):
    case = dict(task="adding", length=8, hidden=5, batch=4, lr=0.02, lr_step=25, lr_gamma=0.3, log_every=20)
    whole = fastrnn.train(iters=100, csv=tmp_path / "whole.csv", **case)
    first = fastrnn.train(iters=40, csv=tmp_path / "r.csv", save=tmp_path / "m.npz", **case)
    assert first.iterations == 40
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=100, csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    assert_same_run(resumed, whole, tmp_path / "r.csv", tmp_path / "whole.csv")
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta.get("settings", meta)["lr_step"] == 25 and meta.get("settings", meta)["lr_gamma"] == 0.3


def test_step_schedule_on_the_command_line(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--task", "adding", "--length", "5", "--iters", "30", "--log-every", "10",
                       "--lr", "0.01", "--lr-step", "10", "--lr-gamma", "0.5", "--csv", str(tmp_path / "r.csv"))
    assert code == 0, err
    history, meta = fastrnn.read_run(tmp_path / "r.csv")
    assert history["learning_rate"].tolist() == [0.01, 0.005, 0.0025]
    assert meta.get("settings", meta)["lr_step"] == 10
    code, _, err = run(capsys, "train", "--lr-gamma", "0.5", "--no-csv")
    assert_one_line_error(code, err, 2, "lr_gamma=0.5 needs lr_step")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((4, 3, 2)), Y=rng.standard_normal((4, 3, 1)))
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "d.npz"), "--lr-step", "5", "--no-csv")
    assert_one_line_error(code, err, 2, "--lr-step does not apply to --data")


def test_step_schedule_runs_train_one_by_one_in_a_sweep(tmp_path):
    assert not can_train_together(dict(task="binary", hidden=2, lr_step=10))
    with pytest.raises(fastrnn.InvalidArgument, match="train_many keeps one learning rate"):
        train_many([dict(task="binary", seed=0, iters=2, lr_step=1), dict(task="binary", seed=1, iters=2, lr_step=1)])
    result = fastrnn.sweep(task="binary", seeds=[0, 1], grid={"lr_step": [5, 10]}, out=tmp_path / "s", workers=1,
                           iters=20, log_every=10, hidden=4, lr_gamma=0.5)
    assert set(result.summary["status"]) == {"completed"} and len(result.summary) == 4
    alone = fastrnn.train(task="binary", seed=1, iters=20, log_every=10, hidden=4, lr_step=5, lr_gamma=0.5)
    rows = fastrnn.read_run(tmp_path / "s" / f"{result.summary['run'][1]}.csv")[0]
    assert rows["loss"].tolist() == alone.history["loss"].tolist()


def test_step_schedule_of_the_text_kernel_is_exact_at_any_chunk_size():
    case = dict(task="text", iters=30, hidden=8, seq_length=8, lr_step=10, lr_gamma=0.5)
    whole = fastrnn.train(log_every=30, **case)
    cut = fastrnn.train(log_every=7, **case)
    np.testing.assert_array_equal(whole.model.theta, cut.model.theta)
    assert cut.history["learning_rate"].tolist() == [0.1 * 0.5 ** ((it - 1) // 10) for it in cut.history["iteration"]]
    plain = fastrnn.train(log_every=30, **{k: v for k, v in case.items() if not k.startswith("lr_")})
    assert not np.array_equal(plain.model.theta, whole.model.theta)


@pytest.mark.parametrize("task", [AddingProblem(30), AddingProblem(30, "signed"), AddingProblem(30, "hochreiter"),
                                  CopyMemory(5), TemporalOrder()], ids=["unit", "signed", "hochreiter", "copy", "order"])
def test_baseline_scores_on_a_large_batch_approach_the_baseline(task):
    batch = task.sample(np.random.default_rng(8), 8000)
    got = task.baseline_scores(batch)
    for column, expected in task.baseline.items():  # within about 4 standard errors of 8000 sequences
        assert got[column] == pytest.approx(expected, rel=0.06, abs=0.02), column
