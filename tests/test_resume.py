"""Exact resume for every task: --save writes the whole training state,
train(resume=PATH, iters=N) continues it, and weights and rows equal one uninterrupted run."""

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
from fastrnn import checkpoint, engine, text
from fastrnn.cli import main
from fastrnn.exceptions import InvalidArgument
from conftest import assert_same_run, csv_rows, interrupt_after_two_rows

ROOT = Path(__file__).resolve().parents[1]

#: Small, quick settings per task; every one carries something across the resume:
#: the sampling tasks their generator and accuracy window, text its walk, carried state,
#: smoothed loss and held-out text.
CASES = {
    "binary": dict(task="binary", iters=600, log_every=100, hidden=8, optimizer="adam", lr=0.05),
    "digits": dict(task="digits", iters=300, log_every=50, digits=4, hidden=16, batch=4),
    "text": dict(task="text", iters=300, log_every=50, hidden=24, batch=2, val_fraction=0.1, seq_length=10),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(f"whole-{name}")
        out[name] = (fastrnn.train(csv=folder / "run.csv", save=folder / "m.npz", **case), folder / "run.csv")
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_save_then_resume_equals_one_run(name, uninterrupted, tmp_path):
    case = CASES[name]
    whole, whole_csv = uninterrupted[name]
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    first = fastrnn.train(csv=csv, save=model, **{**case, "iters": case["iters"] // 2})
    assert first.iterations == case["iters"] // 2
    assert fastrnn.RNN.load(model).theta.shape == first.model.theta.shape  # still a plain model file for RNN.load
    resumed = fastrnn.train(resume=model, iters=case["iters"], csv=csv, save=model)  # appends to the run's CSV
    assert_same_run(resumed, whole, csv, whole_csv)
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["status"] == "completed" and meta["iters"] == case["iters"] and meta["resumed_from"] == str(model)
    # and the saved state goes on: a third leg from the resumed file equals a longer run too
    again = fastrnn.train(resume=model, iters=case["iters"] + case["log_every"])
    longer = fastrnn.train(**{**case, "iters": case["iters"] + case["log_every"]})
    assert np.array_equal(again.model.theta, longer.model.theta)


def test_the_text_state_holds_the_walk_the_carried_state_and_the_smoothed_loss(tmp_path):
    case = CASES["text"]
    result = fastrnn.train(save=tmp_path / "m.npz", **{**case, "iters": 70, "log_every": 10})
    _, state, arrays = checkpoint.load(tmp_path / "m.npz")
    assert state["done"] == 70 and state["source"]["iteration"] == 70
    assert state["extra"]["smooth_loss"] == result.history["smooth_loss"].iloc[-1]
    assert np.any(arrays["hstate"] != 0) and arrays["hstate"].shape == (2 * 24,)
    assert np.all(arrays["opt_state"][0] >= 0) and np.mean(arrays["opt_state"][0] > 0) > 0.5  # Adagrad's memory


def test_resume_into_a_new_csv_gets_every_row(uninterrupted, tmp_path):
    case = CASES["binary"]
    whole, whole_csv = uninterrupted["binary"]
    fastrnn.train(csv=tmp_path / "a.csv", save=tmp_path / "m.npz", **{**case, "iters": 200})
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=case["iters"], csv=tmp_path / "b.csv")
    assert_same_run(resumed, whole, tmp_path / "b.csv", whole_csv)
    assert len(pd.read_csv(tmp_path / "a.csv")) == 2  # the first leg's CSV is left as it was


@pytest.mark.parametrize("name", list(CASES))
def test_interrupted_then_resumed_equals_one_run(name, uninterrupted, tmp_path, monkeypatch):
    """Ctrl-C arriving in the kernel call of the third chunk (in-process), then --resume."""
    case = CASES[name]
    whole, whole_csv = uninterrupted[name]
    real, calls = engine.train_chunk, []

    def interrupting(*args, **kw):
        calls.append(1)
        if len(calls) == 4:  # the compile call, two chunks, then the third chunk
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(engine, "train_chunk", interrupting)
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(csv=csv, save=model, **case)
    assert info.value.result.status == "interrupted" and info.value.result.iterations == 2 * case["log_every"]
    monkeypatch.setattr(engine, "train_chunk", real)
    resumed = fastrnn.train(resume=model, iters=case["iters"], csv=csv)
    assert_same_run(resumed, whole, csv, whole_csv)


def test_sigint_then_resume_equals_one_run(tmp_path):
    """A real Ctrl-C (SIGINT to a `fastrnn train` process), then `fastrnn train --resume`."""
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    args = ["--task", "binary", "--hidden", "8", "--log-every", "500", "--save", str(model), "-q"]
    code, out, err = interrupt_after_two_rows([*args, "--iters", "100000000", "--csv", str(csv)], csv)
    assert code == 130, err
    assert "Interrupted after" in err and "--resume" in err
    done = int(pd.read_csv(csv)["iteration"].iloc[-1])
    assert done % 500 == 0 and done >= 1000
    total = done + 1000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "fastrnn", "train", "--resume", str(model), "--iters", str(total), "-q"],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    whole = fastrnn.train(task="binary", hidden=8, log_every=500, iters=total, csv=tmp_path / "whole.csv")
    assert np.array_equal(fastrnn.RNN.load(model).theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(csv), csv_rows(tmp_path / "whole.csv"), check_exact=True)


# ------------------------------------------------------------------ refusals


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    _, err = capsys.readouterr()
    return info.value.code, err


def one_line(code, err, expected, *fragments):
    assert code == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    fastrnn.train(task="binary", iters=200, hidden=8, csv=folder / "run.csv", save=folder / "m.npz")
    return folder


def test_resume_refuses_other_settings(saved, capsys):
    code, err = run_cli(capsys, "train", "--resume", saved / "m.npz", "--iters", "400", "--lr", "0.3", "--no-csv",
                        "--save", saved / "other.npz")
    one_line(code, err, 2, "--lr 0.3 differs from the saved run's 0.1", "--init-from")
    code, err = run_cli(capsys, "train", "--resume", saved / "m.npz", "--iters", "400", "--task", "digits", "--no-csv")
    one_line(code, err, 2, "--task digits differs from the saved run's task binary")
    with pytest.raises(InvalidArgument, match="--hidden 9 differs from the saved run's 8"):
        fastrnn.train(resume=saved / "m.npz", iters=400, hidden=9)
    with pytest.raises(InvalidArgument, match="already has 200 iterations"):
        fastrnn.train(resume=saved / "m.npz", iters=200)
    # the same values as saved are fine
    assert fastrnn.train(resume=saved / "m.npz", iters=300, hidden=8, task="binary").iterations == 300


def test_resume_refuses_a_plain_model_and_a_csv_that_moved_on(saved, tmp_path, capsys):
    plain = fastrnn.RNN(2, 8, 1, head="sigmoid").save(tmp_path / "plain.npz")
    code, err = run_cli(capsys, "train", "--resume", plain, "--iters", "400")
    one_line(code, err, 2, "holds no training state", "--init-from")
    code, err = run_cli(capsys, "train", "--resume", tmp_path / "nope.npz", "--iters", "400")
    one_line(code, err, 2, "does not exist")
    longer = tmp_path / "longer.csv"
    longer.write_text((saved / "run.csv").read_text() + "300,300,0,0,0,0,0,0.1,0\n")
    # a copy of the saved state whose run's CSV is `longer`, a row past the saved iteration 200
    model, state, arrays = checkpoint.load(saved / "m.npz")
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    checkpoint.save(tmp_path / "m.npz", model, dict(state, csv=str(longer)), arrays)
    with pytest.raises(InvalidArgument, match="does not end where the saved state does .*give a new --csv"):
        fastrnn.train(resume=tmp_path / "m.npz", iters=400, csv=longer)
    assert fastrnn.train(resume=tmp_path / "m.npz", iters=400, csv=tmp_path / "new.csv").iterations == 400


# ------------------------------------------------------------------ init_from


def test_init_from_starts_from_the_saved_weights(tmp_path):
    start = fastrnn.train(task="text", iters=20, hidden=16, log_every=10, save=tmp_path / "a.npz")
    cont = fastrnn.train(task="text", iters=1, hidden=16, log_every=1, init_from=tmp_path / "a.npz", lr=1e-300)
    assert np.allclose(cont.model.theta, start.model.theta, rtol=0, atol=1e-290)
    assert cont.settings["init_from"] == str(tmp_path / "a.npz")


def test_init_from_refuses_other_shapes_in_one_line(tmp_path, capsys):
    other = tmp_path / "abc.txt"
    other.write_text("abcabcabcab cab cab\n" * 10)
    fastrnn.train(task="text", text=other, iters=2, hidden=16, log_every=1, save=tmp_path / "abc.npz")
    code, err = run_cli(capsys, "train", "--task", "text", "--hidden", "16", "--iters", "2", "--no-csv",
                        "--init-from", tmp_path / "abc.npz")
    V = text.read_text(text.example_path()).n_vocab
    one_line(code, err, 2, "--init-from", "U0 (16, 5)", f"U0 (16, {V})", "n_in 5", f"n_in {V}")


def test_ctrl_c_waits_for_the_chunk_and_a_second_one_stops_at_once(tmp_path, monkeypatch):
    """The first SIGINT ends the run after the chunk in flight (its row recorded, the state
    resumable); a second one raises at once and the model is saved without training state."""
    real, calls = engine.train_chunk, []

    def signalling(presses):
        def call(*args, **kw):
            calls.append(1)
            if len(calls) == 3:  # inside the second chunk's kernel call
                for _ in range(presses):
                    os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kw)
        return call

    case = CASES["binary"]
    monkeypatch.setattr(engine, "train_chunk", signalling(1))
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(save=tmp_path / "a.npz", **case)
    assert info.value.result.iterations == 2 * case["log_every"]  # the chunk in flight finished and counts
    _, state, _ = checkpoint.load(tmp_path / "a.npz")
    assert state["done"] == 2 * case["log_every"]
    calls.clear()
    monkeypatch.setattr(engine, "train_chunk", signalling(2))
    with pytest.raises(KeyboardInterrupt):
        fastrnn.train(save=tmp_path / "b.npz", **case)
    fastrnn.RNN.load(tmp_path / "b.npz")  # the weights are saved
    with pytest.raises(fastrnn.ModelFileError, match="no training state"):
        checkpoint.load(tmp_path / "b.npz")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_the_progress_bar_of_a_resumed_run_starts_where_the_run_stopped(tmp_path, monkeypatch):
    import tqdm

    model, csv = tmp_path / "m.npz", tmp_path / "r.csv"
    fastrnn.train(task="binary", iters=300, save=model, csv=csv)
    seen = {}
    real = tqdm.tqdm.__init__

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(tqdm.tqdm, "__init__", spy)
    result = fastrnn.train(resume=model, iters=600, csv=csv, save=model, progress=True)
    assert (seen["initial"], seen["total"], result.iterations) == (300, 600, 600)
