"""The command line: every command, and one clear line (no traceback) for each bad input."""

import json
import subprocess
import sys
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import metrics
from fastrnn.cli import main
from conftest import run_cli as run, assert_one_line_error


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A binary model trained once for the predict/eval tests."""
    path = tmp_path_factory.mktemp("model") / "binary.npz"
    fastrnn.train(task="binary", iters=8000, seed=0, save=path)
    return path


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and fastrnn.__version__ in out


def test_train_writes_csv_json_and_model(capsys, tmp_path):
    csv_path, model_path = tmp_path / "run.csv", tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--iters", "400", "--log-every", "100", "--csv", str(csv_path), "--save", str(model_path), "--seed", "3")
    assert code == 0, err
    assert "binary: accuracy" in out and "after 400 iterations" in out and str(csv_path) in out and str(model_path) in out
    assert err == ""  # no progress bar when stderr is not a terminal
    frame = pd.read_csv(csv_path)
    assert frame["iteration"].tolist() == [100, 200, 300, 400]
    meta = json.loads(metrics.json_path_for(csv_path).read_text())
    assert meta["seed"] == 3 and meta["status"] == "completed"
    assert fastrnn.RNN.load(model_path).metadata == {"task": "binary", "bits": 8}


def test_train_default_csv_goes_to_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "--iters", "50", "-q")
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(written) == 2 and written[0].startswith("binary-") and written[0].endswith(".csv") and written[1].endswith(".json")


def test_train_maps_options_to_the_library_call(capsys, tmp_path):
    with mock.patch("fastrnn.training.train") as fake:
        fake.side_effect = SystemExit(0)
        run(capsys, "train", "--task", "digits", "--iters", "7", "--batch", "4", "--hidden", "9", "--layers", "2",
            "--activation", "relu", "--lr", "0.5", "--optimizer", "momentum", "--clip", "2", "--bptt-truncate", "3",
            "--dtype", "float32", "--seed", "11", "--log-every", "5", "--no-csv", "--digits", "4", "--encoding", "interleave",
            "--init-scale", "fan_in", "--overwrite", "--save", str(tmp_path / "m.npz"))
    given = dict(
        task="digits", iters=7, batch=4, hidden=9, layers=2, activation="relu", lr=0.5, optimizer="momentum", clip=2.0,
        bptt_truncate=3, dtype="float32", seed=11, log_every=5, csv=None, save=str(tmp_path / "m.npz"), overwrite=True,
        progress=False, digits=4, encoding="interleave", init_scale="fan_in", log_spectrum=False,
    )
    fake.assert_called_once()
    args, kwargs = fake.call_args
    assert not args
    assert {k: kwargs[k] for k in given} == given
    # every other setting is passed as unset (None), so that the library applies its own defaults
    rest = {k: v for k, v in kwargs.items() if k not in given}
    assert rest and all(v is None for v in rest.values()), rest
    assert {"bits", "momentum", "clip_value", "cell", "init", "lr_step"} <= set(rest)


def test_predict_shows_the_sum_and_its_bits(capsys, trained):
    code, out, err = run(capsys, "predict", str(trained), "45", "73")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["a", "=", "45", "00101101"]
    assert lines[2].split() == ["model", "=", "118", "01110110"]
    assert lines[3].split() == ["true", "=", "118", "01110110"]
    assert "correct" in out


def test_predict_at_a_wider_width(capsys, trained):
    code, out, _ = run(capsys, "predict", str(trained), "30000", "2767", "--bits", "16")
    assert code == 0
    assert out.splitlines()[3].split()[2] == "32767"


def test_eval_scores_at_another_width(capsys, trained):
    code, out, err = run(capsys, "eval", str(trained), "--bits", "16", "--samples", "500")
    assert code == 0, err
    assert "trained on 8 bits, scored on 500 sums of 16-bit numbers" in out
    exact = float(out.split("exact match:")[1].split()[0])
    assert exact == 1.0
    assert len(out.split("least significant first:")[1].split()) == 16


def test_train_divergence_is_reported_not_raised(capsys, tmp_path):
    csv_path = tmp_path / "run.csv"
    code, _, err = run(capsys, "train", "--task", "digits", "--digits", "3", "--activation", "relu", "--lr", "1e300",
                       "--optimizer", "sgd", "--clip", "0", "--log-every", "1", "--csv", str(csv_path))
    assert_one_line_error(code, err, 1, "NaN or infinite at iteration 2", "try --clip 1.0 or a smaller --lr", "1 rows kept in")
    assert len(pd.read_csv(csv_path)) == 1


def test_ctrl_c_exits_130_and_says_what_was_kept(capsys, tmp_path, monkeypatch):
    from fastrnn import engine

    real = engine.train_chunk
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", interrupted)
    code, _, err = run(capsys, "train", "--iters", "500", "--csv", str(tmp_path / "r.csv"), "--save", str(tmp_path / "m.npz"))
    assert code == 130
    assert "Interrupted after 100 iterations" in err and "1 rows kept in" in err and "model saved to" in err
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["train", "--task", "subtraction"], ["'--task'", "'subtraction' is not one of"]),
        (["train", "--iters", "0"], ["'--iters'", "0 is not in the range x>=1"]),
        (["train", "--iters", "-5"], ["'--iters'", "-5"]),
        (["train", "--batch", "0"], ["'--batch'", "0"]),
        (["train", "--hidden", "0"], ["'--hidden'", "0"]),
        (["train", "--lr", "0"], ["'--lr'", "must be a positive finite number"]),
        (["train", "--lr", "-0.1"], ["'--lr'", "-0.1"]),
        (["train", "--lr", "nan"], ["'--lr'", "'nan' must be a positive finite number"]),
        (["train", "--lr", "fast"], ["'--lr'", "'fast' is not a number"]),
        (["train", "--optimizer", "lbfgs"], ["'--optimizer'", "lbfgs"]),
        (["train", "--activation", "gelu"], ["'--activation'", "gelu"]),
        (["train", "--csv", "a.csv", "--no-csv"], ["--csv and --no-csv"]),
        (["train", "--bits", "4", "--task", "digits"], ["bits belongs to the binary task"]),
        (["train", "--unknown"], ["No such option", "--unknown"]),
        (["frobnicate"], ["No such command 'frobnicate'"]),
    ],
)
def test_bad_train_input(capsys, args, fragments):
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, 2, *fragments)


def test_unwritable_csv_path(capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run(capsys, "train", "--iters", "5", "--csv", str(blocker / "run.csv"))
    assert_one_line_error(code, err, 2, "cannot create the folder for --csv", str(blocker))


def test_existing_csv_is_refused(capsys, tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("precious")
    code, _, err = run(capsys, "train", "--iters", "5", "--csv", str(path))
    assert_one_line_error(code, err, 2, "already exists", "--overwrite")
    assert path.read_text() == "precious"


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["200", "3"], ["A = 200 does not fit", "0..127", "--bits"]),
        (["3", "128"], ["B = 128 does not fit"]),
        (["-1", "3"], ["'A'", "-1 is not in the range x>=0"]),
        (["x", "3"], ["'A'", "'x' is not a valid integer"]),
        (["1", "2", "--digits", "3"], ["use --bits, not --digits"]),
    ],
)
def test_bad_predict_input(capsys, trained, args, fragments):
    code, _, err = run(capsys, "predict", str(trained), *args)
    assert_one_line_error(code, err, 2, *fragments)


def test_predict_negative_operand_after_double_dash(capsys, trained):
    code, _, err = run(capsys, "predict", str(trained), "--", "5", "-3")
    assert_one_line_error(code, err, 2, "'B'", "-3 is not in the range x>=0")


@pytest.mark.parametrize("command", [["predict", "{path}", "1", "2"], ["eval", "{path}"]])
def test_missing_corrupt_and_wrong_kind_model_files(capsys, tmp_path, command):
    missing = tmp_path / "missing.npz"
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"\x00garbage")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    untrained = tmp_path / "untrained.npz"
    fastrnn.RNN(2, 4, 1, head="sigmoid").save(untrained)
    for path, fragment in ((missing, "does not exist"), (corrupt, "not a readable fastrnn model"), (other, "not a readable fastrnn model"),
                           (untrained, "the model carries no task")):
        code, _, err = run(capsys, *[a.format(path=path) for a in command])
        assert_one_line_error(code, err, 2, fragment)


def test_installed_command_runs():
    exe = [sys.executable, "-m", "fastrnn"]
    res = subprocess.run(exe + ["train", "--iters", "0"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("Error: Invalid value for '--iters'") and "Traceback" not in res.stderr
    res = subprocess.run(exe + ["--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "train" in res.stdout and "predict" in res.stdout and "eval" in res.stdout
