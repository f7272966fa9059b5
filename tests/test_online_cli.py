"""Online rules through fastrnn.train, the CLI, sweeps and fit: rows, the test phase, refusals, exact resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import checkpoint, online
from fastrnn.cli import main
from fastrnn.tasks.add import AddTask, reference_lines
from conftest import assert_same_run, csv_rows, interrupt_after_two_rows

ROOT = Path(__file__).resolve().parents[1]

#: A small online run of the Add task.
SMALL = dict(task="add", hidden=5, iters=150, log_every=50, lr=0.05, test_steps=300)


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A saved model of the Add task's shapes: the weights every comparison starts from."""
    path = tmp_path_factory.mktemp("start") / "start.npz"
    fastrnn.RNN(2, 5, 2, head="softmax", seed=3).save(path)
    return path


def numpy_test_loss(model, X, Y, h):
    """Mean soft-target cross-entropy per step of the model run from h (B, H) over X, written out step by step."""
    p = model.params
    total, count = 0.0, 0
    for b in range(X.shape[0]):
        hb = h[b].copy()
        for t in range(X.shape[1]):
            hb = np.tanh(p["U0"] @ X[b, t] + p["W0"] @ hb + p["b0"])
            z = p["V"] @ hb + p["c"]
            logq = z - z.max() - np.log(np.exp(z - z.max()).sum())
            total -= float(Y[b, t] @ logq)
            count += 1
    return total / count


@pytest.mark.parametrize("rule, extra", [("rtrl", {}), ("uoro", {}), ("bptt", dict(k1=2, k2=4))])
def test_a_run_is_online_run_over_the_tasks_stream_chunk_by_chunk(rule, extra, start, tmp_path):
    """train(rule=...) equals fastrnn.online.run called on the task's stream (default_rng([seed, 1])) chunk by
    chunk, with the state carried; its rows are the chunks' mean losses, and the test phase is the mean
    cross-entropy of the final weights on fresh streams (default_rng([seed, 5])) from the carried state."""
    result = fastrnn.train(**SMALL, batch=2, seed=4, rule=rule, init_from=start, csv=tmp_path / "r.csv", **extra)
    model = fastrnn.RNN.load(start)
    stream = AddTask().streamer(np.random.default_rng([4, 1]), 2)
    state, means = None, []
    for _ in range(3):
        X, Y = stream.next(50)
        res = online.run(model, X, Y, rule=rule, lr=0.05, state=state, seed=4, **extra)
        state = res.state
        means.append(float(res.losses.mean()))
    np.testing.assert_array_equal(result.model.theta, model.theta)
    assert result.history["iteration"].tolist() == [50, 100, 150]
    assert result.history["samples"].tolist() == [100, 200, 300]
    assert result.history["loss"].tolist() == means and result.history["loss_per_step"].tolist() == means
    X, Y = AddTask().stream(np.random.default_rng([4, 5]), 300, 2)
    assert result.final_scores["test_steps"] == 300
    np.testing.assert_allclose(result.final_scores["test_loss"], numpy_test_loss(model, X, Y, state.h), rtol=1e-12)
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["rule"] == rule and all(meta[k] == v for k, v in extra.items())
    assert meta["result"]["test_loss"] == result.final_scores["test_loss"]
    for name, value in reference_lines().items():
        assert meta["result"][f"ref_{name}"] == value


def test_bptt_k_k_online_equals_todays_windows_of_k_steps(start):
    """Two engines, one algorithm: BPTT(5, 5) by the online driver and today's kernel on windows of 5 steps."""
    common = dict(task="add", hidden=5, lr=0.05, batch=2, seed=1, init_from=start, test_steps=200)
    windows = fastrnn.train(**common, stream_window=5, iters=60, log_every=10)
    stepped = fastrnn.train(**common, rule="bptt", k1=5, k2=5, iters=300, log_every=50)
    np.testing.assert_allclose(stepped.model.theta, windows.model.theta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(stepped.history["loss_per_step"], windows.history["loss_per_step"], rtol=1e-10)
    np.testing.assert_allclose(stepped.final_scores["test_loss"], windows.final_scores["test_loss"], rtol=1e-10)


def test_todays_training_of_a_stream_task_has_the_test_phase_too(start, tmp_path):
    """Windows of the stream (no rule): the test phase starts from the state the last window left (saved in the
    model file's training state) and scores the final weights on fresh streams."""
    result = fastrnn.train(task="add", hidden=5, iters=30, log_every=10, batch=2, init_from=start, test_steps=100,
                           seed=2, save=tmp_path / "m.npz")
    assert result.settings["rule"] == "bptt" and result.settings["k1"] is None
    _, _, arrays = checkpoint.load(tmp_path / "m.npz")
    h = arrays["hstate"].reshape(2, 5)
    assert np.any(h != 0)
    X, Y = AddTask().stream(np.random.default_rng([2, 5]), 100, 2)
    np.testing.assert_allclose(result.final_scores["test_loss"], numpy_test_loss(result.model, X, Y, h), rtol=1e-12)
    assert result.final_scores["ref_only_t1"] == reference_lines()["only_t1"]


RESUMED = [("rtrl", {}), ("uoro", {}), ("kf-rtrl", {}), ("snap1", {}), ("rflo", {}), ("bptt", dict(k1=3, k2=5))]


@pytest.mark.parametrize("rule, extra", RESUMED, ids=[r for r, _ in RESUMED])
def test_save_then_resume_equals_one_run_bit_for_bit(rule, extra, tmp_path):
    """log_every 35 cuts BPTT(3, 5)'s windows mid-way: the stored history crosses the resume too."""
    case = dict(SMALL, rule=rule, batch=2, log_every=35, iters=140, **extra)
    whole = fastrnn.train(**case, csv=tmp_path / "whole.csv", save=tmp_path / "whole.npz")
    fastrnn.train(**{**case, "iters": 70}, csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=140, csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    assert_same_run(resumed, whole, tmp_path / "r.csv", tmp_path / "whole.csv")
    assert resumed.final_scores["test_loss"] == whole.final_scores["test_loss"]
    # the test phase at the end of a run leaves the saved state alone: a further leg equals a longer run
    again = fastrnn.train(resume=tmp_path / "m.npz", iters=175)
    longer = fastrnn.train(**{**case, "iters": 175})
    np.testing.assert_array_equal(again.model.theta, longer.model.theta)


@pytest.mark.parametrize("rule", ["rtrl", "uoro"])
def test_interrupted_then_resumed_from_the_checkpoint_equals_one_run(rule, tmp_path, monkeypatch):
    """Ctrl-C in the third chunk's driver call; the checkpoint (every 50 steps) holds the rule's state, UORO's
    random generators among it, and the resumed run equals the uninterrupted one bit for bit."""
    case = dict(SMALL, rule=rule, iters=200)
    whole = fastrnn.train(**case, csv=tmp_path / "whole.csv")
    real, calls = online.run, []

    def interrupting(*args, **kw):
        calls.append(1)
        if len(calls) == 4:  # the compile call, two chunks, then the third
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(online, "run", interrupting)
    csv = tmp_path / "r.csv"
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(**case, csv=csv, checkpoint_every=50)
    assert info.value.result.status == "interrupted" and info.value.result.iterations == 100
    monkeypatch.setattr(online, "run", real)
    ckpt = tmp_path / "r.ckpt.npz"
    _, state, arrays = checkpoint.load(ckpt)
    assert state["done"] == 100 and any(k.startswith("online.") for k in arrays)
    if rule == "uoro":
        assert arrays["online.rng"].dtype == np.uint64 and arrays["online.rng"].any()
    resumed = fastrnn.train(resume=ckpt, iters=200, csv=csv)
    assert_same_run(resumed, whole, csv, tmp_path / "whole.csv")


def test_a_resume_refuses_another_rule_setting(tmp_path):
    fastrnn.train(**dict(SMALL, rule="bptt", k1=2, k2=3, iters=50), save=tmp_path / "m.npz")
    with pytest.raises(fastrnn.InvalidArgument, match="--k2 4 differs from the saved run's 3"):
        fastrnn.train(resume=tmp_path / "m.npz", iters=100, k2=4)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("args, fragments", [
    (["--rule", "rtrl", "--bptt-truncate", "5"], ["bptt_truncate=5", "rule='rtrl'", "leave bptt_truncate out"]),
    (["--rule", "rtrl", "--k1", "3"], ["k1=3 applies to rule 'bptt'", "rule 'rtrl' takes no settings"]),
    (["--rule", "uoro", "--cell", "gru"], ["cell='gru'", "use cell='rnn'"]),
    (["--rule", "rflo", "--layers", "2"], ["layers=2", "use layers=1"]),
    (["--rule", "kf-rtrl", "--dtype", "float32"], ["dtype='float32'", "float64"]),
    (["--rule", "snap1", "--stream-window", "5"], ["stream_window=5", "leave stream_window out"]),
    (["--rule", "bptt", "--k1", "5", "--k2", "3"], ["k2 must be at least k1", "k1=5, k2=3"]),
    (["--task", "binary", "--rule", "uoro"], ["rule='uoro'", "binary task", "add, mimic"]),
    (["--task", "binary", "--k1", "4"], ["k1", "binary task"]),
])
def test_the_cli_refuses_what_an_online_rule_cannot_do_in_one_line(capsys, args, fragments):
    if "--task" not in args:
        args = ["--task", "add", *args]
    code, _, err = run_cli(capsys, "train", *args, "--iters", "10", "--no-csv", "-q")
    one_line_error(code, err, *fragments)


def test_a_rule_state_too_large_for_memory_is_refused_before_anything_is_allocated(capsys):
    code, _, err = run_cli(capsys, "train", "--task", "add", "--rule", "rtrl", "--hidden", "2000", "--batch", "8",
                           "--no-csv", "-q")
    one_line_error(code, err, "rule rtrl, hidden=2000, 8 streams", "TiB", "choose a smaller hidden or batch")
    X, Y = AddTask().stream(np.random.default_rng(0), 5, 64)
    with pytest.raises(fastrnn.InvalidArgument, match="fitting online"):
        fastrnn.fit(fastrnn.RNN(2, 1500, 2, head="softmax"), X, Y, rule="rtrl")


def test_the_library_refuses_bptt_truncate_with_an_online_rule():
    with pytest.raises(fastrnn.InvalidArgument, match="bptt_truncate=3 cannot be combined with rule='uoro'"):
        fastrnn.train(task="add", rule="uoro", bptt_truncate=3, iters=10)


# ------------------------------------------------------------------ the CLI, sweeps


def test_cli_train_with_a_rule_ends_with_the_test_loss_among_the_reference_lines(capsys, tmp_path):
    csv = tmp_path / "r.csv"
    code, out, err = run_cli(capsys, "train", "--task", "add", "--rule", "rtrl", "--iters", "200", "--log-every", "100",
                             "--hidden", "4", "--test-steps", "500", "--csv", csv, "-q")
    assert code == 0, err
    assert out.startswith("add: test loss ") and "over 500 steps" in out and "after 200 steps of rule rtrl" in out
    assert "nothing learned 0.6616, only t1 0.5192, optimal 0.4545" in out
    assert pd.read_csv(csv)["iteration"].tolist() == [100, 200]
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["rule"] == "rtrl" and meta["result"]["test_steps"] == 500


def test_cli_help_lists_the_rules_and_their_settings(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    for word in ("--rule", "rtrl", "uoro", "kf-rtrl", "snap1", "rflo", "--k1", "--k2", "--test-steps", "--t1", "--t2"):
        assert word in out, word


def test_a_sweep_sets_the_rule(tmp_path):
    out = tmp_path / "sw"
    code = None
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--task", "add", "--set", "rule=rtrl,uoro", "--set", "iters=100", "--set", "log_every=50",
              "--set", "hidden=4", "--set", "test_steps=100", "--seeds", "0", "--out", str(out), "--workers", "1", "-q"])
    code = info.value.code
    assert code in (0, None)
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["rule"]) == ["rtrl", "uoro"] and (summary["status"] == "completed").all()
    for row in summary.itertuples():
        meta = json.loads((out / f"{row.run}.json").read_text())
        assert row.final_test_loss == meta["result"]["test_loss"]
    alone = fastrnn.train(task="add", rule="uoro", iters=100, log_every=50, hidden=4, test_steps=100)
    frame = pd.read_csv(out / "add-ruleuoro-seed0.csv")
    pd.testing.assert_frame_equal(frame.drop(columns="elapsed_s"), alone.history.drop(columns="elapsed_s"),
                                  check_dtype=False)


# ------------------------------------------------------------------ both stream tasks, every rule


@pytest.mark.parametrize("rule, extra", [("rtrl", {}), ("uoro", {}), ("kf-rtrl", {}), ("snap1", {}), ("rflo", {}),
                                         ("bptt", dict(k1=1, k2=4)), ("bptt", {})],
                         ids=["rtrl", "uoro", "kf-rtrl", "snap1", "rflo", "bptt-1-4", "bptt-windows"])
@pytest.mark.parametrize("task, params", [("add", {}), ("mimic", dict(teacher_hidden=4))], ids=["add", "mimic"])
def test_both_stream_tasks_train_with_every_rule(task, params, rule, extra):
    result = fastrnn.train(task=task, rule=rule, hidden=4, iters=60, log_every=30, test_steps=50, **params, **extra)
    assert result.status == "completed" and len(result.rows) == 2
    assert np.isfinite(result.history["loss_per_step"]).all()
    assert np.isfinite(result.final_scores["test_loss"]) and "ref_optimal" in result.final_scores


# ------------------------------------------------------------------ fit


def test_fit_with_a_rule_trains_the_rows_of_x_as_streams_epoch_after_epoch():
    """fit(rule=...) equals online.run over X's rows together, each epoch from h = 0 (resets at its first step),
    in chunks of log_every steps that also end at every epoch's end."""
    X, Y = AddTask().stream(np.random.default_rng(9), 70, 3)
    start = fastrnn.RNN(2, 5, 2, head="softmax", seed=2)
    model = start.copy()
    result = fastrnn.fit(model, X, Y, rule="uoro", epochs=2, log_every=30, lr=0.05, optimizer="sgd", clip=None, seed=6)
    twin, state, means = start.copy(), None, []
    for _ in range(2):
        for t0, t1 in ((0, 30), (30, 60), (60, 70)):
            resets = np.zeros((3, t1 - t0))
            resets[:, 0] = t0 == 0
            res = online.run(twin, X[:, t0:t1], Y[:, t0:t1], rule="uoro", lr=0.05, state=state, seed=6, resets=resets)
            state = res.state
            means.append(float(res.losses.mean()))
    np.testing.assert_array_equal(model.theta, twin.theta)
    assert result.history["iteration"].tolist() == [30, 60, 70, 100, 130, 140]
    assert result.history["epoch"].tolist() == [1, 1, 1, 2, 2, 2]
    assert result.history["loss"].tolist() == means
    assert result.settings["rule"] == "uoro" and result.settings["shuffle"] is False


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(shuffle=True), "shuffle cannot be combined with rule='rtrl'"),
    (dict(window=5), "window=5 cannot be combined with rule='rtrl'"),
    (dict(batch=2), "batch must be left out (or be 3) with rule='rtrl'"),
    (dict(mask=np.ones((3, 20))), "mask (an array) cannot be combined with rule='rtrl'"),
    (dict(bptt_truncate=4), "bptt_truncate=4 cannot be combined with rule='rtrl'"),
    (dict(checkpoint_every=10), "checkpoint_every=10 cannot be combined"),
    (dict(k1=3), "rule 'rtrl' has no setting 'k1'"),
    (dict(optimizer="sgd", momentum=0.5), "momentum=0.5 applies to optimizer='momentum' only"),
])
def test_fit_with_a_rule_refuses_what_it_cannot_honour(kwargs, fragment):
    X, Y = AddTask().stream(np.random.default_rng(0), 20, 3)
    model = fastrnn.RNN(2, 4, 2, head="softmax")
    before = model.theta.copy()
    with pytest.raises(fastrnn.InvalidArgument) as info:
        fastrnn.fit(model, X, Y, rule="rtrl", **kwargs)
    assert fragment in str(info.value)
    np.testing.assert_array_equal(model.theta, before)


def test_fit_still_rejects_an_unknown_keyword():
    X, Y = AddTask().stream(np.random.default_rng(0), 20, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fastrnn.fit(fastrnn.RNN(2, 4, 2, head="softmax"), X, Y, epoch=3)


def test_train_data_takes_a_rule(capsys, tmp_path):
    X, Y = AddTask().stream(np.random.default_rng(0), 100, 2)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "d.npz", "--head", "softmax", "--rule", "rflo",
                             "--epochs", "2", "--log-every", "50", "--hidden", "4", "--csv", tmp_path / "d.csv", "-q")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "d.csv")
    assert frame["iteration"].tolist() == [50, 100, 150, 200] and frame["epoch"].tolist() == [1, 1, 2, 2]
    assert json.loads((tmp_path / "d.json").read_text())["rule"] == "rflo"
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "d.npz", "--head", "softmax", "--rule", "rflo",
                           "--shuffle", "--no-csv", "-q")
    one_line_error(code, err, "shuffle cannot be combined with rule='rflo'")


def test_a_nan_loss_stops_the_run_at_its_step_with_the_weights_of_before(monkeypatch, tmp_path):
    """The driver's losses are made NaN from step 71 on (a stand-in for a real blow-up, which the saturating
    tanh and the log-sum-exp loss make hard to provoke): the run stops there, keeps the rows before, and
    its weights are those after 70 good steps."""
    real = online.run
    seen = {"steps": 0}

    def poisoned(model, X, Y, **kw):
        res = real(model, X, Y, **kw)
        if kw.get("lr") != 0.0:  # not the compile call
            first = seen["steps"]
            seen["steps"] += X.shape[1]
            bad = 70 - first
            if 0 <= bad < X.shape[1]:
                res.losses[:, bad:] = np.nan
        return res

    case = dict(SMALL, rule="rtrl", iters=150)
    clean = fastrnn.train(**{**case, "iters": 70})
    monkeypatch.setattr(online, "run", poisoned)
    with pytest.raises(fastrnn.NumericalError, match="at step 71; training stopped there") as info:
        fastrnn.train(**case, csv=tmp_path / "r.csv")
    result = info.value.result
    assert result.status == "diverged" and result.iterations == 70
    assert pd.read_csv(tmp_path / "r.csv")["iteration"].tolist() == [50, 70]
    np.testing.assert_array_equal(result.model.theta, clean.model.theta)


def test_a_step_decay_changes_the_rate_at_its_step():
    result = fastrnn.train(**dict(SMALL, rule="uoro", iters=200, lr=0.1, lr_step=100, lr_gamma=0.5))
    assert result.history["learning_rate"].tolist() == [0.1, 0.1, 0.05, 0.05]


def test_reports_read_online_runs_whose_accuracy_columns_are_empty(capsys, tmp_path):
    """An online run's CSV leaves error, accuracy, digit_accuracy and grad_norm empty in every row: the readers
    take it (the report shows its test loss); one empty cell among numbers is still a corrupt row."""
    folder = tmp_path / "runs"
    folder.mkdir()
    fastrnn.train(**dict(SMALL, rule="snap1"), csv=folder / "a.csv")
    frame, _ = fastrnn.metrics.read_run(folder / "a.csv")
    assert frame["accuracy"].isna().all() and frame["loss"].notna().all()
    code, out, err = run_cli(capsys, "report", folder)
    assert code == 0, err
    assert "final_test_loss" in out
    lines = (folder / "a.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("loss")] = "nan"
    (tmp_path / "bad.csv").write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(fastrnn.InvalidArgument, match="row 1 has no finite number in column loss"):
        fastrnn.metrics.read_run(tmp_path / "bad.csv")
    cells = lines[2].split(",")
    cells[header.index("accuracy")] = "0.5"
    (tmp_path / "mixed.csv").write_text("\n".join([lines[0], lines[1], ",".join(cells), *lines[3:]]) + "\n")
    with pytest.raises(fastrnn.InvalidArgument, match="row 1 has no finite number in column accuracy"):
        fastrnn.metrics.read_run(tmp_path / "mixed.csv")


def test_sigint_to_the_command_then_resume_equals_one_run(tmp_path):
    """A real Ctrl-C (SIGINT to a `fastrnn train --rule uoro` process), then `fastrnn train --resume`: the
    weights and rows equal one uninterrupted run's, UORO's random signs included."""
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    args = ["--task", "add", "--rule", "uoro", "--hidden", "4", "--log-every", "200", "--test-steps", "100",
            "--save", str(model), "-q"]
    code, _, err = interrupt_after_two_rows([*args, "--iters", "100000000", "--csv", str(csv)], csv)
    assert code == 130, err
    done = int(pd.read_csv(csv)["iteration"].iloc[-1])
    assert done % 200 == 0 and done >= 400
    total = done + 400
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "fastrnn", "train", "--resume", str(model), "--iters", str(total), "-q"],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    whole = fastrnn.train(task="add", rule="uoro", hidden=4, log_every=200, test_steps=100, iters=total,
                          csv=tmp_path / "whole.csv")
    np.testing.assert_array_equal(fastrnn.RNN.load(model).theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(csv), csv_rows(tmp_path / "whole.csv"), check_exact=True)


def test_a_ctrl_c_between_two_rates_of_a_chunk_resumes_from_the_chunks_start(tmp_path, monkeypatch):
    """A step decay at step 60 cuts the chunk 40..80 into two driver calls; Ctrl-C in the second leaves the
    weights and the rule's state of step 40, so the resumed run equals one run."""
    case = dict(SMALL, rule="uoro", iters=160, log_every=40, lr_step=60, lr_gamma=0.5)
    whole = fastrnn.train(**case, csv=tmp_path / "whole.csv")
    real, calls = online.run, []

    def interrupting(*args, **kw):
        calls.append(1)
        if len(calls) == 4:  # the compile call, the first chunk, the second chunk's first piece, then its second
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(online, "run", interrupting)
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(**case, csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    assert info.value.result.iterations == 40
    monkeypatch.setattr(online, "run", real)
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=160, csv=tmp_path / "r.csv")
    assert_same_run(resumed, whole, tmp_path / "r.csv", tmp_path / "whole.csv")


def test_fit_with_a_rule_passes_the_optimizers_own_settings():
    X, Y = AddTask().stream(np.random.default_rng(3), 40, 2)
    start = fastrnn.RNN(2, 4, 2, head="softmax", seed=1)
    model, twin = start.copy(), start.copy()
    fastrnn.fit(model, X, Y, rule="snap1", epochs=1, log_every=40, optimizer="momentum", momentum=0.5, lr=0.05,
                clip=None)
    online.run(twin, X, Y, rule="snap1", lr=0.05, optimizer="momentum", optimizer_settings={"momentum": 0.5})
    np.testing.assert_array_equal(model.theta, twin.theta)
