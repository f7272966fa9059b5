"""What a run survives: kill -9 (checkpoints and resume), files that cannot be written
(a full disk, a read-only or deleted folder, no permission), SIGTERM and SIGHUP to
`train` and `sweep`, and files saved before a setting existed."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import _files, _signals, checkpoint, engine, metrics, sweeps
from conftest import assert_one_line_error, csv_rows, run_cli

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


def fastrnn_proc(args, cwd, stderr=None, **extra_env):
    """``python -m fastrnn ARGS`` as a real process (stderr to a file when given, to read while it runs)."""
    return subprocess.Popen([PY, "-m", "fastrnn", *map(str, args)], cwd=cwd, env=env(**extra_env),
                            stdout=subprocess.DEVNULL, stderr=stderr if stderr is not None else subprocess.DEVNULL)


def fastrnn_run(args, cwd, **extra_env):
    return subprocess.run([PY, "-m", "fastrnn", *map(str, args)], cwd=cwd, env=env(**extra_env), capture_output=True,
                          text=True, timeout=240)


def rows_in(path):
    """Complete lines of a CSV after its header (0 while it does not exist)."""
    try:
        return path.read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def wait_for(condition, proc=None, timeout=120, step=0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(step)
    raise AssertionError("timed out")


def temporary_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def assert_whole_rows(csv, columns=len(metrics.COLUMNS)):
    """Every line of the CSV is complete: ends with its line break and has every field."""
    data = csv.read_bytes()
    assert data.endswith(b"\r\n"), data[-80:]
    lines = data.decode().splitlines()
    assert all(len(line.split(",")) == columns for line in lines), lines[-3:]
    frame = pd.read_csv(csv)
    assert not frame.isna().any().any()
    return frame


# ------------------------------------------------------------ checkpoints: the options


def test_checkpoint_every_must_be_a_multiple_of_log_every(capsys, tmp_path):
    with pytest.raises(fastrnn.InvalidArgument, match="checkpoint_every 150 is not a multiple of log_every 100"):
        fastrnn.train(iters=300, csv=tmp_path / "r.csv", checkpoint_every=150)
    code, _, err = run_cli(capsys, "train", "--iters", "300", "--csv", tmp_path / "r2.csv", "--checkpoint-every", "150")
    assert_one_line_error(code, err, 2, "checkpoint_every 150", "log_every 100", "give 100 or 200")
    assert not (tmp_path / "r2.csv").exists()


def test_checkpoints_need_a_save_or_csv_path(capsys):
    with pytest.raises(fastrnn.InvalidArgument, match="need a file to write beside"):
        fastrnn.train(iters=100, checkpoint_every=100)
    code, _, err = run_cli(capsys, "train", "--iters", "100", "--no-csv", "--checkpoint-seconds", "5")
    assert_one_line_error(code, err, 2, "--checkpoint-seconds", "--save", "--csv")


def test_the_checkpoint_goes_beside_save_or_csv_and_records_its_iteration(tmp_path):
    result = fastrnn.train(iters=1000, hidden=8, log_every=100, checkpoint_every=300, csv=tmp_path / "r.csv",
                           save=tmp_path / "m.npz")
    assert result.checkpoint_path == tmp_path / "m.ckpt.npz"
    model, state, arrays = checkpoint.load(tmp_path / "m.ckpt.npz")
    # the last one is at the end of the run: iteration 1000 (900 came before it)
    assert state["checkpoint"] == {"iteration": 1000, "save": str(tmp_path / "m.npz")} and state["done"] == 1000
    assert state["checkpoints"] == {"every": 300, "seconds": None}
    assert np.array_equal(model.theta, result.model.theta) and np.array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta,
                                                                              model.theta)
    assert "checkpoint" not in checkpoint.load(tmp_path / "m.npz")[1]  # --save is the run's end, not a checkpoint
    assert json.loads((tmp_path / "r.json").read_text())["checkpoint"] == str(tmp_path / "m.ckpt.npz")
    fastrnn.train(iters=200, hidden=8, log_every=100, checkpoint_every=100, csv=tmp_path / "only.csv")
    assert checkpoint.load(tmp_path / "only.ckpt.npz")[1]["checkpoint"] == {"iteration": 200, "save": None}
    assert temporary_files(tmp_path) == []


def test_checkpoints_are_taken_at_rows_reaching_each_multiple(tmp_path, monkeypatch):
    taken, real = [], checkpoint.save

    def record(path, model, state, arrays, durable=False):
        if "checkpoint" in state:
            taken.append((state["done"], durable))
        return real(path, model, state, arrays, durable)

    monkeypatch.setattr(checkpoint, "save", record)
    fastrnn.train(iters=1050, hidden=8, log_every=50, checkpoint_every=200, csv=tmp_path / "r.csv")
    assert taken == [(200, True), (400, True), (600, True), (800, True), (1000, True), (1050, True)]
    taken.clear()
    fastrnn.train(iters=300, hidden=8, log_every=100, checkpoint_seconds=1e-9, csv=tmp_path / "s.csv")
    assert taken == [(100, True), (200, True), (300, True)]  # every row is S seconds after the last one


def test_a_checkpoint_is_synced_renamed_and_its_folder_synced(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        calls.append(("rename", os.path.basename(a), os.path.basename(b)))
        return real_replace(a, b)

    monkeypatch.setattr(_files.os, "fsync", fsync)
    monkeypatch.setattr(_files.os, "replace", replace)
    model = fastrnn.RNN(2, 3, 1)
    checkpoint.save(tmp_path / "c.ckpt.npz", model, {"settings": {}, "done": 0}, {}, durable=True)
    (kind, synced), (_, tmp, target), last = calls
    assert kind == "fsync" and synced.endswith(tmp) and tmp.startswith(".c.ckpt.npz.") and tmp.endswith(".tmp")
    assert target == "c.ckpt.npz" and last == ("fsync", "folder")
    assert os.listdir(tmp_path) == ["c.ckpt.npz"]


def test_an_existing_checkpoint_is_not_overwritten(capsys, tmp_path):
    (tmp_path / "m.ckpt.npz").write_bytes(b"someone's file")
    code, _, err = run_cli(capsys, "train", "--iters", "100", "--csv", tmp_path / "r.csv", "--save", tmp_path / "m.npz",
                           "--checkpoint-every", "100")
    assert_one_line_error(code, err, 2, "checkpoint file", "m.ckpt.npz", "already exists", "--overwrite")
    assert (tmp_path / "m.ckpt.npz").read_bytes() == b"someone's file"


# -------------------------------------------------------------- kill -9 and resume

WHOLE = dict(task="binary", hidden=8, log_every=100)
KILL_ARGS = ["--task", "binary", "--hidden", "8", "--log-every", "100", "-q"]


@pytest.fixture(scope="module")
def whole_runs(tmp_path_factory):
    """Uninterrupted runs (no checkpoints) to compare the killed and resumed ones with."""
    folder = tmp_path_factory.mktemp("whole")
    runs = {}
    for iters in (3000, 30000):
        csv = folder / f"whole{iters}.csv"
        runs[iters] = (fastrnn.train(iters=iters, csv=csv, **WHOLE), csv)
    return runs


def assert_equals_whole(folder, whole_runs, iters):
    whole, whole_csv = whole_runs[iters]
    assert np.array_equal(fastrnn.RNN.load(folder / "m.npz").theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(folder / "r.csv"), csv_rows(whole_csv), check_exact=True)
    assert_whole_rows(folder / "r.csv")
    meta = json.loads((folder / "r.json").read_text())
    assert meta["status"] == "completed" and meta["result"]["iterations_done"] == iters
    assert temporary_files(folder) == []


def kill_when_paused(args, folder, pause):
    """Start ``fastrnn ARGS`` with the checkpoint writer told to pause (K:STAGE), SIGKILL it there; return the temporary
    files that existed at that moment."""
    log = folder / "stderr.txt"
    with open(log, "wb") as err:
        proc = fastrnn_proc(args, folder, stderr=err, FASTRNN_CHECKPOINT_PAUSE=pause)
        wait_for(lambda: b"paused at" in log.read_bytes(), proc)
        tmp = temporary_files(folder)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    return tmp


def test_sigkill_during_checkpoint_writes_then_resume_equals_one_run(tmp_path, whole_runs):
    """The writer paused by the hook at each stage of a checkpoint write, killed there, resumed: the file
    holds the last whole checkpoint, the rows after it are cut (and counted), no temporary file is left."""
    args = ["train", *KILL_ARGS, "--iters", "3000", "--csv", "r.csv", "--save", "m.npz", "--checkpoint-every", "500"]
    # the second checkpoint (1000) written and synced but not renamed: the file still holds 500
    assert len(kill_when_paused(args, tmp_path, "2:synced")) == 1
    assert checkpoint.load(tmp_path / "m.ckpt.npz")[1]["checkpoint"]["iteration"] == 500 and rows_in(tmp_path / "r.csv") == 10
    # resumed from 500, its third write (2000) written but not synced: the file holds 1500
    assert len(kill_when_paused(["train", "--resume", "m.ckpt.npz", "--iters", "3000", "-q"], tmp_path, "3:written")) == 1
    assert checkpoint.load(tmp_path / "m.ckpt.npz")[1]["checkpoint"]["iteration"] == 1500
    assert rows_in(tmp_path / "r.csv") == 20
    # resumed from 1500, its first write (2000) renamed into place, the folder not yet synced
    assert kill_when_paused(["train", "--resume", "m.ckpt.npz", "--iters", "3000", "-q"], tmp_path, "1:renamed") == []
    assert checkpoint.load(tmp_path / "m.ckpt.npz")[1]["checkpoint"]["iteration"] == 2000
    r = fastrnn_run(["train", "--resume", "m.ckpt.npz", "--iters", "3000", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cut" not in r.stderr  # nothing came after the checkpoint at 2000
    assert_equals_whole(tmp_path, whole_runs, 3000)


def test_a_resume_says_how_many_rows_it_cut(tmp_path, capsys):
    args = ["train", *KILL_ARGS, "--iters", "3000", "--csv", "r.csv", "--save", "m.npz", "--checkpoint-every", "500"]
    kill_when_paused(args, tmp_path, "3:synced")  # the file holds 1000; the CSV has 15 rows
    os.chdir(tmp_path)
    try:
        code, out, err = run_cli(capsys, "train", "--resume", "m.ckpt.npz", "--iters", "3000", "-q")
    finally:
        os.chdir(ROOT)
    assert code == 0, err
    assert err.strip() == f"Resuming the checkpoint at iteration 1000: cut 5 row(s) written after it from {tmp_path / 'r.csv'}."
    assert json.loads((tmp_path / "r.json").read_text())["rows_cut"] == 5
    assert temporary_files(tmp_path) == []


def test_sigkill_at_seeded_points_then_resume_equals_one_run(tmp_path, whole_runs):
    """One run killed again and again: each time SIGKILL at a seeded number of rows past the last checkpoint (from
    outside, while it trains, writes rows or checkpoints, or starts up), or through the hook at a seeded stage of a
    seeded checkpoint write; each leg resumes from the checkpoint the last one left. The end equals one run."""
    rng = np.random.default_rng(2026)
    iters, total_rows = 30000, 300
    args = ["train", *KILL_ARGS, "--iters", iters, "--csv", "r.csv", "--save", "m.npz", "--checkpoint-every", "500"]
    csv, ckpt = tmp_path / "r.csv", tmp_path / "m.ckpt.npz"
    kills, hooked = 0, 0
    for leg in range(24):
        start = checkpoint.load(ckpt)[1]["done"] // 100 if leg else 0
        if leg and rng.random() < 0.25:
            stage = _files.STAGES[rng.integers(len(_files.STAGES))]
            kill_when_paused(args, tmp_path, f"{rng.integers(1, 4)}:{stage}")
            hooked += 1
        else:
            target = min(start + int(rng.integers(1, 13)), total_rows - 10)
            proc = fastrnn_proc(args, tmp_path)
            wait_for(lambda: rows_in(csv) >= target and (leg or ckpt.exists()), proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            assert proc.returncode == -signal.SIGKILL
        kills += 1
        args = ["train", "--resume", "m.ckpt.npz", "--iters", iters, "-q"]
    assert kills >= 20 and hooked >= 3
    r = fastrnn_run(args, tmp_path)
    assert r.returncode == 0, r.stderr
    assert_equals_whole(tmp_path, whole_runs, iters)


def test_a_fit_killed_during_a_checkpoint_resumes_to_one_run(tmp_path):
    rng = np.random.default_rng(5)
    X, Y, _ = (rng.standard_normal((40, 6, 2)), (rng.random((40, 6, 1)) < 0.5).astype(float), None)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    args = ["train", "--data", "d.npz", "--epochs", "20", "--batch", "8", "--log-every", "2", "--hidden", "6",
            "--csv", "r.csv", "--save", "m.npz", "--checkpoint-every", "4", "-q"]
    # rows at 2, 4, 5 of every 5 iterations; checkpoints at the rows reaching 4, 8, 12, 16: 4, 9, 12, 17
    kill_when_paused(args, tmp_path, "4:synced")
    state = checkpoint.load(tmp_path / "m.ckpt.npz")[1]
    assert state["checkpoint"]["iteration"] == 12 and state["settings"]["task"] == "data"
    r = fastrnn_run(["train", "--resume", "m.ckpt.npz", "--epochs", "20", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cut 3 row(s)" in r.stderr  # the rows at 14, 15 and 17
    from fastrnn.fitting import fit_file

    whole = fit_file(tmp_path / "d.npz", epochs=20, batch=8, log_every=2, hidden=6, csv=tmp_path / "whole.csv")
    assert np.array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)
    assert temporary_files(tmp_path) == []
