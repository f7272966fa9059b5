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
    """One run killed again and again, each leg resumed from the checkpoint the last one left: SIGKILL from
    outside once the CSV holds a seeded number of rows more than before (while it trains, writes a row or a
    checkpoint: fsync takes most of the time), or a seeded time after the start (loading, cutting the CSV), or
    through the hook at a seeded stage of a seeded checkpoint write. The end equals one uninterrupted run."""
    rng = np.random.default_rng(2026)
    iters, total_rows = 30000, 300
    args = ["train", *KILL_ARGS, "--iters", iters, "--csv", "r.csv", "--save", "m.npz", "--checkpoint-every", "500"]
    csv, ckpt = tmp_path / "r.csv", tmp_path / "m.ckpt.npz"
    kinds = []
    for leg in range(24):
        draw = rng.random() if leg else 1.0
        if draw < 0.25:
            stage = _files.STAGES[rng.integers(len(_files.STAGES))]
            kill_when_paused(args, tmp_path, f"{rng.integers(1, 4)}:{stage}")
            kinds.append("hook")
        else:
            proc = fastrnn_proc(args, tmp_path)
            if draw < 0.35:
                time.sleep(rng.uniform(0.0, 0.2))  # during start-up (loading, cutting the CSV): a leg cannot finish this soon
                kinds.append("time")
            else:
                # 60 rows short of the end at most: between two looks at the CSV (a loaded machine can leave
                # this process waiting for tens of milliseconds) the run cannot finish
                target = min(rows_in(csv) + int(rng.integers(1, 13)), total_rows - 60)
                wait_for(lambda: rows_in(csv) >= target and ckpt.exists(), proc)
                kinds.append("rows")
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            assert proc.returncode == -signal.SIGKILL
        args = ["train", "--resume", "m.ckpt.npz", "--iters", iters, "-q"]
    assert len(kinds) >= 20 and kinds.count("hook") >= 3 and kinds.count("time") >= 1
    assert checkpoint.load(ckpt)[1]["done"] >= 5000  # the legs moved the run on
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


# ------------------------------------------------------------- files that cannot be written


@pytest.fixture
def small_disk(tmp_path):
    """A 16 kB tmpfs (as root); skipped only where mounting is impossible."""
    folder = tmp_path / "disk"
    folder.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_keeps_whole_rows_and_says_what_was_kept(small_disk):
    """The reported case: 20000 iterations, a row every 10, onto a 16 kB tmpfs."""
    r = fastrnn_run(["train", "--task", "binary", "--iters", "20000", "--log-every", "10", "--csv", small_disk / "r.csv",
                     "--save", small_disk / "m.npz"], small_disk)
    assert_one_line_error(r.returncode, r.stderr, 1, f"a row could not be written to {small_disk / 'r.csv'}",
                          "No space left on device", "training stopped after")
    frame = assert_whole_rows(small_disk / "r.csv")
    assert f"; {len(frame)} rows kept in {small_disk / 'r.csv'}" in r.stderr
    assert frame["iteration"].tolist() == list(range(10, 10 * len(frame) + 1, 10)) and len(frame) > 20
    assert "no model saved to" in r.stderr  # no room for it either, and no temporary file of it
    assert temporary_files(small_disk) == []
    meta = json.loads((small_disk / "r.json").read_text())  # rewritten in place: no room for a new file
    assert meta["status"] == "failed" and "No space left on device" in meta["error"]


def test_a_full_disk_during_a_checkpoint(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = fastrnn_run(["train", "--iters", "100000", "--hidden", "8", "--log-every", "100", "--csv", "r.csv",
                         "--save", "m.npz", "--checkpoint-every", "1000"], folder)
        assert_one_line_error(r.returncode, r.stderr, 1, "No space left on device", "rows kept in",
                              "the last checkpoint is at iteration", "--resume")
        assert temporary_files(folder) == []
        frame = assert_whole_rows(folder / "r.csv")
        at = checkpoint.load(folder / "m.ckpt.npz")[1]["checkpoint"]["iteration"]
        assert f"the last checkpoint is at iteration {at} (m.ckpt.npz)" in r.stderr
        assert at % 1000 == 0 and frame["iteration"].iloc[-1] >= at
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


class FailingOS:
    """``os`` with one call failing (``name``, from its ``after``-th call on, with ``code``); a write that
    fails writes half its bytes first, as a short write(2) on a filling disk does."""

    def __init__(self, name, code, after=0, when=lambda *a: True):
        self.name, self.code, self.after, self.when, self.calls = name, code, after, when, 0

    def __getattr__(self, attr):
        real = getattr(os, attr)
        if attr != self.name:
            return real

        def call(*args):
            if self.when(*args):
                self.calls += 1
                if self.calls > self.after:
                    if attr == "write":
                        os.write(args[0], bytes(args[1])[: len(args[1]) // 2])
                    raise OSError(self.code, os.strerror(self.code))
            return real(*args)

        return call


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_row_that_cannot_be_written_is_cut_back_whole(capsys, tmp_path, monkeypatch, code):
    monkeypatch.setattr(metrics, "os", FailingOS("write", code, after=6))  # the header, five rows, then a failing one
    code_, _, err = run_cli(capsys, "train", "--iters", "2000", "--hidden", "8", "--log-every", "100", "--csv",
                            tmp_path / "r.csv", "--save", tmp_path / "m.npz", "--checkpoint-every", "300", "-q")
    monkeypatch.undo()
    assert_one_line_error(code_, err, 1, f"a row could not be written to {tmp_path / 'r.csv'}: {os.strerror(code)}",
                          "training stopped after 600 iterations", f"5 rows kept in {tmp_path / 'r.csv'}",
                          f"the last checkpoint is at iteration 300 ({tmp_path / 'm.ckpt.npz'})",
                          f"model saved to {tmp_path / 'm.npz'}",
                          f"continue with: fastrnn train --resume {tmp_path / 'm.ckpt.npz'} --iters 2000")
    assert len(assert_whole_rows(tmp_path / "r.csv")) == 5
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == err.strip()[len("Error: "):]
    assert temporary_files(tmp_path) == []
    # the cause gone, the checkpoint resumes to the uninterrupted run
    resumed = fastrnn.train(resume=tmp_path / "m.ckpt.npz", iters=2000, csv=tmp_path / "r.csv")
    whole = fastrnn.train(task="binary", hidden=8, log_every=100, iters=2000, csv=tmp_path / "whole.csv")
    assert resumed.rows_cut == 2 and np.array_equal(resumed.model.theta, whole.model.theta)  # rows 400, 500
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_checkpoint_that_cannot_be_written_stops_the_run(capsys, tmp_path, monkeypatch, code):
    # the third checkpoint's temporary file is written, then its fsync fails
    monkeypatch.setattr(_files, "os", FailingOS("fsync", code, after=4))  # two checkpoints: file and folder each
    code_, _, err = run_cli(capsys, "train", "--iters", "2000", "--hidden", "8", "--log-every", "100", "--csv",
                            tmp_path / "r.csv", "--checkpoint-every", "200", "-q")
    monkeypatch.undo()
    assert_one_line_error(code_, err, 1, f"the checkpoint could not be written to {tmp_path / 'r.ckpt.npz'}: "
                          f"{os.strerror(code)}", "training stopped after 600 iterations", "6 rows kept in",
                          "the last checkpoint is at iteration 400")
    assert temporary_files(tmp_path) == []
    assert checkpoint.load(tmp_path / "r.ckpt.npz")[1]["checkpoint"]["iteration"] == 400
    assert len(assert_whole_rows(tmp_path / "r.csv")) == 6


@pytest.mark.parametrize("what", ["model", "settings"])
def test_the_model_or_json_failing_at_the_end_is_one_line(capsys, tmp_path, monkeypatch, what):
    target = "m.npz" if what == "model" else "r.json"
    monkeypatch.setattr(_files, "os",  # the model and the JSON are both renamed into place by _files.replace
                        FailingOS("replace", errno.EACCES, after=int(what == "settings"),  # the JSON's second write
                                  when=lambda a, b: os.path.basename(b) == target))
    code, _, err = run_cli(capsys, "train", "--iters", "300", "--hidden", "8", "--csv", tmp_path / "r.csv", "--save",
                           tmp_path / "m.npz", "-q")
    monkeypatch.undo()
    said = "the model could not be saved to" if what == "model" else "the run's settings could not be written to"
    assert_one_line_error(code, err, 1, f"{said} {tmp_path / target}: Permission denied", "3 rows kept in")
    assert temporary_files(tmp_path) == [] and len(assert_whole_rows(tmp_path / "r.csv")) == 3
    if what == "model":
        assert not (tmp_path / "m.npz").exists()
        assert json.loads((tmp_path / "r.json").read_text())["status"] == "completed"
    else:
        assert "model saved to" in err and fastrnn.RNN.load(tmp_path / "m.npz")


def test_a_deleted_folder_stops_the_run_at_the_next_checkpoint(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    real, calls = engine.train_chunk, []

    def deleting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the compile call, then four chunks
            shutil.rmtree(folder)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", deleting)
    code, _, err = run_cli(capsys, "train", "--iters", "2000", "--hidden", "8", "--log-every", "100", "--csv",
                           folder / "r.csv", "--save", folder / "m.npz", "--checkpoint-every", "200", "-q")
    assert_one_line_error(code, err, 1, f"the checkpoint could not be written to {folder / 'm.ckpt.npz'}",
                          "(its folder was deleted)", "training stopped after 400 iterations",
                          f"the CSV {folder / 'r.csv'} was deleted", "the last checkpoint is at iteration 200",
                          "no model saved")
    assert not folder.exists()


def test_a_deleted_csv_is_noticed_by_the_writer(tmp_path):
    writer = metrics.MetricsWriter(tmp_path / "r.csv", {}, columns=["iteration"])
    writer.write({"iteration": 1})
    (tmp_path / "r.csv").unlink()
    writer._next_check = 0.0  # it looks once a second
    with pytest.raises(FileNotFoundError, match="deleted during the run"):
        writer.write({"iteration": 2})
    assert writer.deleted()
    writer.close()


def test_nothing_is_trained_when_the_first_files_cannot_be_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(_files, "os", FailingOS("replace", errno.ENOSPC))
    code, _, err = run_cli(capsys, "train", "--iters", "300", "--csv", tmp_path / "r.csv", "-q")
    monkeypatch.undo()
    assert_one_line_error(code, err, 1, "No space left on device", "nothing was trained")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------- SIGTERM and SIGHUP


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_train_as_ctrl_c_does(tmp_path, signum):
    args = ["train", *KILL_ARGS[:-3], "--log-every", "500", "--iters", "100000000", "--csv", "r.csv", "--save", "m.npz",
            "--checkpoint-every", "5000", "-q"]
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = fastrnn_proc(args, tmp_path, stderr=err)
        wait_for(lambda: rows_in(tmp_path / "r.csv") >= 2, proc)
        proc.send_signal(signum)
        proc.wait(120)
    text = log.read_text()
    assert proc.returncode == 128 + signum, text
    done = int(pd.read_csv(tmp_path / "r.csv")["iteration"].iloc[-1])
    name = signal.Signals(signum).name
    assert text.strip() == (f"Stopped by {name} after {done} iterations. {done // 500} rows kept in r.csv; model saved "
                            f"to m.npz; checkpoint in m.ckpt.npz. Continue with: fastrnn train --resume m.npz --iters "
                            f"100000000")
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["status"] == "interrupted" and meta["result"]["iterations_done"] == done
    assert checkpoint.load(tmp_path / "m.ckpt.npz")[1]["checkpoint"]["iteration"] == done
    r = fastrnn_run(["train", "--resume", "m.npz", "--iters", done + 1000, "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    whole = fastrnn.train(task="binary", hidden=8, log_every=500, iters=done + 1000, csv=tmp_path / "whole.csv")
    assert np.array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)


def signal_in_chunk(monkeypatch, signum, at=4, seen=None):
    """engine.train_chunk sending ``signum`` to this process in its ``at``-th call (the compile call is the first)."""
    real, calls = engine.train_chunk, []

    def sending(*args, **kwargs):
        calls.append(1)
        if seen is not None:
            seen.append(signal.getsignal(signal.SIGTERM))
        if len(calls) == at and signum is not None:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_chunk", sending)


def test_sigterm_to_the_library_stops_between_chunks_and_resumes_exactly(tmp_path, monkeypatch):
    signal_in_chunk(monkeypatch, signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info:
        fastrnn.train(iters=2000, hidden=8, log_every=100, csv=tmp_path / "r.csv", save=tmp_path / "m.npz")
    assert info.value.signum == signal.SIGTERM and isinstance(info.value, _signals.Interrupted)
    result = info.value.result
    assert result.status == "interrupted" and result.iterations == 300  # the third chunk finished first
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # given back
    monkeypatch.undo()
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=2000, csv=tmp_path / "r.csv")
    whole = fastrnn.train(iters=2000, hidden=8, log_every=100, csv=tmp_path / "whole.csv")
    assert np.array_equal(resumed.model.theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)


def test_the_library_leaves_a_programs_handler_and_other_threads_alone(tmp_path, monkeypatch):
    seen = []
    signal_in_chunk(monkeypatch, None, seen=seen)
    fastrnn.train(iters=300, hidden=8)
    assert seen[-1] is not signal.SIG_DFL and seen[-1] is not None  # the main thread, the default: taken over

    def mine(signum, frame):
        pass

    old = signal.signal(signal.SIGTERM, mine)
    try:
        seen.clear()
        fastrnn.train(iters=300, hidden=8)
        assert seen and all(h is mine for h in seen)
    finally:
        signal.signal(signal.SIGTERM, old)
    seen.clear()
    thread = threading.Thread(target=lambda: fastrnn.train(iters=300, hidden=8))
    thread.start()
    thread.join()
    assert seen and all(h == signal.SIG_DFL for h in seen)


def processes():
    """{pid: (parent pid, command line, state)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        out[int(entry)] = (int(fields["PPid"]), cmdline, fields["State"][0])
    return out


def alive(pid):
    state = processes().get(pid)
    return state is not None and state[2] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_no_sweep_worker_outlives_its_sweep(tmp_path, signum):
    args = ["sweep", "--task", "binary", "--seeds", "0-3", "--set", "hidden=8", "--set", "iters=100000000",
            "--set", "lr=0.1,0.2", "--workers", "2", "--no-vectorize", "--out", "out", "-q"]
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = fastrnn_proc(args, tmp_path, stderr=err)

        def workers():
            return [pid for pid, (ppid, cmd, _) in processes().items() if ppid == proc.pid and "spawn_main" in cmd]

        wait_for(lambda: len(workers()) == 2, proc, step=0.05)
        pids = workers()
        time.sleep(1.0)  # training by now
        proc.send_signal(signum)
        proc.wait(60)
    assert proc.returncode == (-signum if signum == signal.SIGKILL else 128 + signum), log.read_text()
    if signum != signal.SIGKILL:
        said = "Interrupted" if signum == signal.SIGINT else f"Stopped by {signal.Signals(signum).name}"
        assert log.read_text().startswith(f"{said}: 0 runs finished this time"), log.read_text()
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=10, step=0.05)
    assert sorted(os.listdir(tmp_path / "out")) == ["summary.csv"] or signum == signal.SIGKILL


def test_a_worker_ends_when_its_parent_is_gone(tmp_path):
    """The getppid watch alone (PR_SET_PDEATHSIG not set): the parent exits, the worker follows."""
    worker = "import os, time; from fastrnn import sweeps; sweeps._watch_parent(os.getppid()); print('ready', flush=True); time.sleep(60)"
    parent = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE); "
              f"p.stdout.readline(); print(p.pid, flush=True)")
    r = subprocess.run([PY, "-c", parent], env=env(), capture_output=True, text=True, timeout=120)
    pid = int(r.stdout)
    wait_for(lambda: not alive(pid), timeout=5, step=0.05)


def test_a_worker_asks_the_kernel_to_die_with_its_parent():
    code = ("import ctypes; from fastrnn import sweeps; sweeps._die_with_parent(); v = ctypes.c_int(); "
            "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)")  # 2: PR_GET_PDEATHSIG
    r = subprocess.run([PY, "-c", code], env=env(), capture_output=True, text=True, timeout=120)
    assert int(r.stdout) == signal.SIGKILL, r.stderr


# ------------------------------------------------------------- files saved before a setting existed


def drop_settings(path, names, also=()):
    """Rewrite a saved run's file as an older fastrnn wrote it: without the settings ``names`` (and state keys ``also``)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(str(arrays["train_state"][()]))
    for name in names:
        del state["settings"][name]
    for key in also:
        state.pop(key, None)
    arrays["train_state"] = np.array(json.dumps(state))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_a_task_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    fastrnn.train(iters=300, hidden=8, log_every=100, csv=tmp_path / "r.csv", save=tmp_path / "m.npz",
                  checkpoint_every=100)
    for path in (tmp_path / "m.npz", tmp_path / "m.ckpt.npz"):
        drop_settings(path, ["momentum", "clip_value", "forget_bias", "cell", "init_from"], also=["checkpoints"])
    whole = fastrnn.train(iters=600, hidden=8, log_every=100, csv=tmp_path / "whole.csv")
    for path, csv in ((tmp_path / "m.npz", "a.csv"), (tmp_path / "m.ckpt.npz", "b.csv")):
        resumed = fastrnn.train(resume=path, iters=600, momentum=0.9, cell="rnn", csv=tmp_path / csv)  # the defaults
        assert np.array_equal(resumed.model.theta, whole.model.theta) and resumed.checkpoint_path is None
        pd.testing.assert_frame_equal(csv_rows(tmp_path / csv), csv_rows(tmp_path / "whole.csv"), check_exact=True)
    with pytest.raises(fastrnn.InvalidArgument, match="momentum 0.5 differs from the saved run's 0.9"):
        fastrnn.train(resume=tmp_path / "m.npz", iters=600, momentum=0.5)


def test_a_fit_saved_before_a_setting_existed_resumes_with_its_default(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((12, 5, 2)), (rng.random((12, 5, 1)) < 0.5).astype(float)
    model = fastrnn.RNN(2, 6, 1, head="sigmoid", seed=1)
    fastrnn.fit(model.copy(), X, Y, epochs=2, batch=4, log_every=2, save=tmp_path / "m.npz", csv=tmp_path / "r.csv")
    drop_settings(tmp_path / "m.npz", ["shuffle", "window", "momentum", "clip_value"])
    whole = fastrnn.fit(model.copy(), X, Y, epochs=5, batch=4, log_every=2, csv=tmp_path / "whole.csv")
    resumed = fastrnn.fit(None, X, Y, resume=tmp_path / "m.npz", epochs=5, shuffle=True, momentum=0.9)
    assert np.array_equal(resumed.model.theta, whole.model.theta)
    pd.testing.assert_frame_equal(resumed.history.drop(columns="elapsed_s"), csv_rows(tmp_path / "whole.csv"),
                                  check_exact=True)
    # the command line: a --data run saved before --momentum and --shuffle existed
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    os.chdir(tmp_path)
    try:
        code, _, err = run_cli(capsys, "train", "--data", "d.npz", "--epochs", "2", "--batch", "4", "--log-every", "2",
                               "--save", "f.npz", "--csv", "f.csv", "-q")
        assert code == 0, err
        drop_settings(tmp_path / "f.npz", ["shuffle", "momentum", "window"])
        code, _, err = run_cli(capsys, "train", "--resume", "f.npz", "--epochs", "4", "--momentum", "0.9", "-q")
        assert code == 0, err
        code, _, err = run_cli(capsys, "train", "--resume", "f.npz", "--epochs", "6", "--momentum", "0.5", "-q")
        assert_one_line_error(code, err, 2, "--momentum 0.5 differs from the saved run's 0.9")
    finally:
        os.chdir(ROOT)


def test_a_model_saved_after_a_row_failed_resumes_into_the_same_csv(capsys, tmp_path, monkeypatch):
    """No checkpoint: the run saves the model after the failed row, and the resume writes that row first."""
    monkeypatch.setattr(metrics, "os", FailingOS("write", errno.ENOSPC, after=4))  # the header, three rows
    code, _, err = run_cli(capsys, "train", "--iters", "1000", "--hidden", "8", "--log-every", "100", "--csv",
                           tmp_path / "r.csv", "--save", tmp_path / "m.npz", "-q")
    monkeypatch.undo()
    assert_one_line_error(code, err, 1, "training stopped after 400 iterations", "3 rows kept in",
                          f"model saved to {tmp_path / 'm.npz'}", f"--resume {tmp_path / 'm.npz'} --iters 1000")
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=1000, csv=tmp_path / "r.csv")
    whole = fastrnn.train(task="binary", hidden=8, log_every=100, iters=1000, csv=tmp_path / "whole.csv")
    assert np.array_equal(resumed.model.theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)


def test_a_text_run_killed_during_a_checkpoint_resumes_to_one_run(tmp_path):
    """The text task carries its state across iterations and keeps a smoothed loss: both are in the checkpoint."""
    args = ["train", "--task", "text", "--iters", "600", "--log-every", "100", "--hidden", "16", "--csv", "r.csv",
            "--save", "m.npz", "--checkpoint-every", "200", "-q"]
    assert len(kill_when_paused(args, tmp_path, "2:synced")) == 1  # the file holds 200, the CSV 4 rows
    r = fastrnn_run(["train", "--resume", "m.ckpt.npz", "--iters", "600", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cut 2 row(s)" in r.stderr
    whole = fastrnn.train(task="text", iters=600, log_every=100, hidden=16, csv=tmp_path / "whole.csv")
    assert np.array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta, whole.model.theta)
    pd.testing.assert_frame_equal(csv_rows(tmp_path / "r.csv"), csv_rows(tmp_path / "whole.csv"), check_exact=True)
    assert temporary_files(tmp_path) == []
