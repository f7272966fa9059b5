"""Exact resume for fit: fit(..., save=PATH) writes the whole training state,
fit(None, X, Y, resume=PATH, epochs=N) and `fastrnn train --data FILE --resume PATH --epochs N`
continue it, and the weights and every row equal one uninterrupted run's."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import checkpoint, engine
from fastrnn.cli import main
from conftest import assert_same_run, csv_rows, interrupt_after_two_rows

ROOT = Path(__file__).resolve().parents[1]


def arrays(N, T, n_in=3, n_out=4, seed=1, masked=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, (N, T))]
    mask = (rng.random((N, T)) < 0.7).astype(float) if masked else None
    return X, Y, mask


#: Each case has a chunk of two kernel calls (full batches or windows, then the partial one)
#: and carries something across the resume: the shuffle generator, the carried window state
#: (two layers), Adam's or momentum's state, validation columns.
CASES = {
    # N 14, batch 4: 4 iterations an epoch (the last of 2 sequences), rows at 2 and 4
    "shuffle": dict(data=(14, 6), model=dict(layers=1), val=True,
                    kw=dict(batch=4, log_every=2, shuffle=True, optimizer="adam", lr=0.05, seed=3)),
    # N 10, batch 4: 3 iterations an epoch, one row per epoch
    "ordered": dict(data=(10, 6), model=dict(layers=1), val=False,
                    kw=dict(batch=4, log_every=3, shuffle=False, optimizer="momentum", lr=0.05)),
    # 3 streams of 14 steps, windows of 4: 4 iterations an epoch (the last of 2 steps), rows at 2 and 4
    "window": dict(data=(3, 14), model=dict(layers=2), val=True,
                   kw=dict(window=4, log_every=2, optimizer="adam", lr=0.05, bptt_truncate=3)),
}
EPOCHS = 4


def case_data(name):
    case = CASES[name]
    X, Y, M = arrays(*case["data"])
    val = (X[:2], Y[:2]) if case["val"] else None
    return X, Y, M, val


def new_model(name):
    return fastrnn.RNN(3, 5, 4, head="softmax", seed=0, **CASES[name]["model"])


def run(name, epochs, **files):
    X, Y, M, val = case_data(name)
    return fastrnn.fit(new_model(name), X, Y, M, epochs=epochs, validation=val, **CASES[name]["kw"], **files)


def resume(name, path, epochs, model=None, **files):
    X, Y, M, val = case_data(name)
    return fastrnn.fit(model, X, Y, M, epochs=epochs, validation=val, resume=path, **files)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = {}
    for name in CASES:
        folder = tmp_path_factory.mktemp(f"whole-{name}")
        out[name] = (run(name, EPOCHS, csv=folder / "run.csv"), folder / "run.csv")
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_save_then_resume_equals_one_run(name, uninterrupted, tmp_path):
    whole, whole_csv = uninterrupted[name]
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    first = run(name, 2, csv=csv, save=model)
    assert first.iterations == whole.iterations // 2
    assert fastrnn.RNN.load(model).theta.shape == first.model.theta.shape  # still a plain model file for RNN.load
    resumed = resume(name, model, EPOCHS, csv=csv, save=model)  # appends to the run's CSV, saves back
    assert_same_run(resumed, whole, csv, whole_csv)
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["status"] == "completed" and meta["epochs"] == EPOCHS and meta["resumed_from"] == str(model)
    assert meta["iters"] == whole.iterations
    # the saved state goes on: a third leg from the resumed file equals a longer run
    again = resume(name, model, EPOCHS + 1)
    assert np.array_equal(again.model.theta, run(name, EPOCHS + 1).model.theta)


#: (case, the kernel call that raises) -> (iterations kept, iteration within the epoch saved).
#: Call 1 is the compile; see CASES for the chunks. "Second of two" calls find the weights,
#: the optimizer state and (windows) the carried state already changed by the chunk's first call.
INTERRUPTS = {
    ("shuffle", 4): (2, 2),  # the second of two calls, mid-epoch
    ("shuffle", 5): (4, 0),  # the first call of epoch 2, after its permutation was drawn
    ("ordered", 5): (3, 0),  # the second of two calls of epoch 2
    ("window", 4): (2, 2),  # the second of two calls: the carried state had moved on
    ("window", 5): (4, 0),
}


@pytest.mark.parametrize("name, call", list(INTERRUPTS))
def test_interrupted_then_resumed_equals_one_run(name, call, uninterrupted, tmp_path, monkeypatch):
    """KeyboardInterrupt from a kernel call (in-process), then resume."""
    whole, whole_csv = uninterrupted[name]
    real, calls = engine.train_chunk, []

    def interrupting(*args, **kw):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(engine, "train_chunk", interrupting)
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as info:
        run(name, EPOCHS, csv=csv, save=model)
    done, at = INTERRUPTS[name, call]
    assert info.value.result.status == "interrupted" and info.value.result.iterations == done
    _, state, _ = checkpoint.load(model)
    assert (state["done"], state["source"]["at"]) == (done, at)
    monkeypatch.setattr(engine, "train_chunk", real)
    resumed = resume(name, model, EPOCHS, csv=csv)
    assert_same_run(resumed, whole, csv, whole_csv)


def test_a_real_ctrl_c_waits_for_the_chunk_then_resume_equals_one_run(uninterrupted, tmp_path, monkeypatch):
    """SIGINT (in-process) during the first of a chunk's two kernel calls: the chunk finishes, its row counts."""
    whole, whole_csv = uninterrupted["shuffle"]
    real, calls = engine.train_chunk, []

    def signalling(*args, **kw):
        calls.append(1)
        if len(calls) == 3:  # the first call of the second chunk (iterations 3 and 4 of epoch 1)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kw)

    monkeypatch.setattr(engine, "train_chunk", signalling)
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as info:
        run("shuffle", EPOCHS, csv=csv, save=model)
    assert info.value.result.iterations == 4 and len(calls) == 4
    monkeypatch.setattr(engine, "train_chunk", real)
    assert_same_run(resume("shuffle", model, EPOCHS, csv=csv), whole, csv, whole_csv)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_state_that_does_not_add_up_is_refused(saved, tmp_path):
    model, state, arrays_ = checkpoint.load(saved)
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    X, Y, M, val = case_data("shuffle")
    for source in (dict(state["source"], at=1), dict(state["source"], rng={"bit_generator": "x"}),
                   dict(state["source"], epoch="2")):
        checkpoint.save(tmp_path / "bad.npz", model, dict(state, source=source), arrays_)
        with pytest.raises(fastrnn.InvalidArgument, match="does not fit its settings and arrays"):
            fastrnn.fit(None, X, Y, M, validation=val, epochs=EPOCHS, resume=tmp_path / "bad.npz")


def test_the_saved_state_holds_the_position_the_generator_and_the_carried_state(tmp_path):
    X, Y, M, val = case_data("window")
    fastrnn.fit(new_model("window"), X, Y, M, epochs=2, validation=val, save=tmp_path / "w.npz",
                **{**CASES["window"]["kw"], "log_every": 1})
    _, state, arrays_ = checkpoint.load(tmp_path / "w.npz")
    assert state["settings"]["task"] == "data" and state["done"] == 8
    assert (state["source"]["epoch"], state["source"]["at"]) == (2, 0)
    assert arrays_["hstate"].shape == (2 * 3 * 5,) and np.any(arrays_["hstate"] != 0)  # 2 layers, 3 streams
    assert isinstance(state["source"]["checksum"], int) and len(state["rows"]) == 8
    # the generator is saved as it stands before the next epoch's permutation
    fastrnn.fit(new_model("shuffle"), *case_data("shuffle")[:3], epochs=1, save=tmp_path / "s.npz",
                **CASES["shuffle"]["kw"])
    rng = np.random.default_rng([CASES["shuffle"]["kw"]["seed"], 1])
    rng.permutation(14)
    assert checkpoint.load(tmp_path / "s.npz")[1]["source"]["rng"] == rng.bit_generator.state


def test_resume_into_a_new_csv_and_into_a_given_model(uninterrupted, tmp_path):
    whole, whole_csv = uninterrupted["shuffle"]
    run("shuffle", 1, csv=tmp_path / "a.csv", save=tmp_path / "m.npz")
    mine = new_model("shuffle")  # the same architecture: its weights are replaced by the saved ones
    resumed = resume("shuffle", tmp_path / "m.npz", EPOCHS, model=mine, csv=tmp_path / "b.csv")
    assert resumed.model is mine
    assert_same_run(resumed, whole, tmp_path / "b.csv", whole_csv)
    assert len(pd.read_csv(tmp_path / "a.csv")) == 2  # the first leg's CSV is left as it was


# ------------------------------------------------------------------ refusals


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    run("shuffle", 2, csv=folder / "run.csv", save=folder / "m.npz")
    return folder / "m.npz"


def test_resume_refuses_other_arrays(saved):
    X, Y, M, val = case_data("shuffle")
    for Xo, Mo, valo in ((X + 1e-12, M, val), (X[:13], M, val), (X, None, val), (X, M, None)):
        Yo = Y[: Xo.shape[0]]
        Mo = None if Mo is None else Mo[: Xo.shape[0]]
        with pytest.raises(fastrnn.InvalidArgument, match=f"differ from those the run in {saved} was trained on"):
            fastrnn.fit(None, Xo, Yo, Mo, epochs=EPOCHS, validation=valo, resume=saved)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.3), "lr 0.3 differs from the saved run's 0.05 in .*m.npz; a resume continues that run"),
    (dict(batch=5), "batch 5 differs from the saved run's 4"),
    (dict(shuffle=False), "shuffle False differs from the saved run's True"),
    (dict(window=3), "window 3 differs from the saved run's None"),
    (dict(epochs=2), "already has 8 iterations"),
    (dict(model=fastrnn.RNN(3, 6, 4)), "differs from the model saved in"),
])
def test_resume_refuses_other_settings(saved, kwargs, match):
    X, Y, M, val = case_data("shuffle")
    kwargs = {"model": None, "epochs": EPOCHS, **kwargs}
    with pytest.raises(fastrnn.InvalidArgument, match=match):
        fastrnn.fit(kwargs.pop("model"), X, Y, M, validation=val, resume=saved, **kwargs)


def test_resume_takes_the_saved_settings_and_refuses_foreign_files(saved, tmp_path):
    X, Y, M, val = case_data("shuffle")
    # arguments at fit's defaults (lr 0.01, seed 0, ...) mean "the saved run's"; the saved values themselves are fine
    result = fastrnn.fit(None, X, Y, M, validation=val, resume=saved, epochs=3, lr=0.01, batch=4, seed=3)
    assert (result.settings["lr"], result.settings["seed"], result.settings["epochs"]) == (0.05, 3, 3)
    with pytest.raises(fastrnn.InvalidType, match="resume must be a file path"):
        fastrnn.fit(None, X, Y, M, resume=3)
    fastrnn.train(task="binary", iters=20, hidden=8, log_every=10, save=tmp_path / "task.npz")
    with pytest.raises(fastrnn.InvalidArgument, match="holds a run of the binary task, not a fit on arrays"):
        fastrnn.fit(None, X, Y, M, resume=tmp_path / "task.npz")
    with pytest.raises(fastrnn.InvalidArgument, match="holds a fit on arrays, not a task run; .*--data"):
        fastrnn.train(resume=saved, iters=100)
    plain = new_model("shuffle").save(tmp_path / "plain.npz")
    with pytest.raises(fastrnn.ModelFileError, match="holds no training state"):
        fastrnn.fit(None, X, Y, M, resume=plain)


# ------------------------------------------------------------------ the command line


def cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(["train", *map(str, args)])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


SETTINGS = ["--batch", 4, "--hidden", 6, "--log-every", 3, "--lr", 0.05, "-q"]


def test_train_data_resume_equals_one_run(tmp_path, capsys):
    X, Y, M = arrays(10, 5)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, Y=Y, mask=M, X_val=X[:2], Y_val=Y[:2])
    code, _, err = cli(capsys, "--data", data, "--epochs", 5, *SETTINGS, "--csv", tmp_path / "whole.csv",
                       "--save", tmp_path / "whole.npz")
    assert code == 0, err
    code, _, err = cli(capsys, "--data", data, "--epochs", 2, *SETTINGS, "--csv", tmp_path / "run.csv",
                       "--save", tmp_path / "m.npz")
    assert code == 0, err
    # the same settings may be given again; the rows go to the run's CSV, the model back to its file
    code, _, err = cli(capsys, "--data", data, "--resume", tmp_path / "m.npz", "--epochs", 4, "--hidden", 6)
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "run.csv")) == 4  # a row per epoch (3 iterations, log_every 3)
    # --data left out: the file the run was trained on; a new --csv gets every row
    code, out, err = cli(capsys, "--resume", tmp_path / "m.npz", "--epochs", 5, "--csv", tmp_path / "all.csv")
    assert code == 0, err
    assert "after 5 epochs" in out
    assert np.array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta, fastrnn.RNN.load(tmp_path / "whole.npz").theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "all.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)
    meta = json.loads((tmp_path / "all.json").read_text())
    assert meta["data_file"] == str(data) and meta["epochs"] == 5 and meta["hidden"] == 6


def test_train_data_resume_refusals_are_one_line(tmp_path, capsys):
    X, Y, M = arrays(10, 5)
    np.savez(tmp_path / "d.npz", X=X, Y=Y, mask=M)
    np.savez(tmp_path / "other.npz", X=X[::-1], Y=Y, mask=M)
    code, _, err = cli(capsys, "--data", tmp_path / "d.npz", "--epochs", 2, *SETTINGS, "--no-csv",
                       "--save", tmp_path / "m.npz")
    assert code == 0, err
    m = tmp_path / "m.npz"
    one_line(*cli(capsys, "--data", tmp_path / "d.npz", "--resume", m, "--epochs", 4, "--lr", 0.3, "--no-csv")[::2],
             "--lr 0.3 differs from the saved run's 0.05", str(m))
    one_line(*cli(capsys, "--data", tmp_path / "d.npz", "--resume", m, "--no-csv")[::2],
             f"resuming {m} needs --epochs N", "6 iterations, 2 epochs")
    one_line(*cli(capsys, "--data", tmp_path / "other.npz", "--resume", m, "--epochs", 4, "--no-csv")[::2],
             f"--data {tmp_path / 'other.npz'}: the arrays", f"differ from those the run in {m}")
    one_line(*cli(capsys, "--resume", m, "--epochs", 2, "--no-csv")[::2], "epochs 2", "already has 6 iterations")
    one_line(*cli(capsys, "--resume", m, "--iters", 100, "--no-csv")[::2], "--iters does not apply to --data")
    fastrnn.train(task="binary", iters=20, hidden=8, log_every=10, save=tmp_path / "task.npz")
    one_line(*cli(capsys, "--data", tmp_path / "d.npz", "--resume", tmp_path / "task.npz", "--epochs", 4)[::2],
             "holds a run of the binary task", "leave out --data")


def test_sigint_then_resume_equals_one_run(tmp_path):
    """A real Ctrl-C (SIGINT to a `fastrnn train --data` process), then `fastrnn train --resume`."""
    X, Y, M = arrays(50, 30, seed=4)
    data, csv, model = tmp_path / "d.npz", tmp_path / "run.csv", tmp_path / "m.npz"
    np.savez(data, X=X, Y=Y, mask=M)
    # 7 iterations an epoch (the last of 2 sequences), rows at 5 and 7, shuffled
    settings = ["--batch", "8", "--hidden", "16", "--log-every", "5", "--seed", "2"]
    code, out, err = interrupt_after_two_rows(["--data", str(data), *settings, "--epochs", "100000000", "--save",
                                               str(model), "--csv", str(csv), "-q"], csv)
    assert code == 130, err
    assert "Interrupted after" in err and f"--resume {model} --epochs 100000000" in err
    done = int(pd.read_csv(csv)["iteration"].iloc[-1])
    assert done % 7 in (0, 5) and done >= 7
    epochs = done // 7 + 2
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "fastrnn", "train", "--resume", str(model), "--epochs", str(epochs), "-q"],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    whole = fastrnn.fit(fastrnn.RNN(3, 16, 4, head="softmax", seed=2, init_scale=None), X, Y, M, epochs=epochs,
                        batch=8, log_every=5, seed=2, csv=tmp_path / "whole.csv")
    assert np.array_equal(fastrnn.RNN.load(model).theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(csv), csv_rows(tmp_path / "whole.csv"), check_exact=True)
