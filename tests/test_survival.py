"""What a run survives: kill -9 (checkpoints and resume), files that cannot be written
(a full disk, a read-only or deleted folder, no permission), SIGTERM and SIGHUP to
`train` and `sweep`, files saved before a setting existed, the text kernel's threads
(stopping, stalls, the CPUs it may use), one sweep per folder and a lost Dask worker,
and numba's on-disk cache (stale or damaged).

Subprocesses run the package under test (PYTHONPATH); the cache cases run a copy of it
in tmp_path, so that editing or damaging it touches nothing else.
"""

import ast
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import _charrnn, _files, _signals, checkpoint, cpus, engine, metrics, optim, sweeps, text
from fastrnn.exceptions import InvalidArgument
from conftest import assert_one_line_error, csv_rows, run_cli

PACKAGE = Path(fastrnn.__file__).parent
ROOT = PACKAGE.parent
PY = sys.executable
H, L = 100, 25


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(extra)
    return e


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


# ---------------------------------------------------------------- the text kernel's threads


@pytest.fixture(scope="module")
def example():
    t = text.read_text(text.example_path())
    model = fastrnn.RNN(t.n_vocab, H, t.n_vocab, activation="tanh", head="softmax", seed=3)
    return t, model.theta.copy()


def chars_run(t, theta, iters, threads, info=None, model_out=None):
    """``iters`` iterations in one call of engine.train_chunk_chars; everything it changed."""
    model = fastrnn.RNN(t.n_vocab, H, t.n_vocab, activation="tanh", head="softmax")
    model.theta[:] = theta
    source = text.TextSource(t.ids, t.n_vocab, seq_length=L)
    state = np.zeros((2, model.n_params))
    hstate = engine.new_state(model, 1)
    losses, norms, errors = np.full(iters, np.nan), np.full(iters, np.nan), np.full(iters, -1, dtype=np.int64)
    inputs, targets, resets = source.next_ids(iters)
    out = dict(theta=model.theta, state=state, hstate=hstate, losses=losses, norms=norms, errors=errors)
    if model_out is not None:
        model_out.update(out)
    out["done"] = engine.train_chunk_chars(model, inputs, targets, resets, optim.ADAGRAD, 0.1, optim.hyper_array(),
                                           state, 5.0, hstate, losses, norms, errors, threads, info)
    return out


def when_running(delay, action):
    """Call ``action`` ``delay`` seconds after a text kernel call is in flight (on a helper thread)."""
    def wait():
        while not _charrnn._RUNNING:
            time.sleep(0.001)
        time.sleep(delay)
        action()

    threading.Thread(target=wait, daemon=True).start()


def test_the_second_thread_really_runs_its_half_of_every_iteration(example):
    """Role B (output layer, dV, dW's groups, the updates of V and c) counts the iterations it
    finished in the sync array; a two-thread call reports that count and two threads, and gives
    the one-thread numbers bit for bit."""
    t, theta = example
    info = {}
    two = chars_run(t, theta, 40, threads=2, info=info)
    assert (info["threads"], info["ran_b"]) == (2, 40)
    one_info = {}
    one = chars_run(t, theta, 40, threads=1, info=one_info)
    assert (one_info["threads"], one_info["ran_b"]) == (1, 0)
    for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
        assert np.array_equal(one[key], two[key]), key


@pytest.fixture(params=["inline", "delegated"])
def mode(request, monkeypatch):
    """Both ways a call runs: its last role on the calling thread with a watchdog thread
    beside it, or every role on threads of their own while the caller waits in Python
    (taken where another library holds the signal wake-up descriptor)."""
    monkeypatch.setattr(_charrnn, "INLINE", request.param == "inline")
    return request.param


def test_both_ways_of_running_give_the_same_numbers_bit_for_bit(example, mode):
    t, theta = example
    for threads in (1, 2):
        info = {}
        got = chars_run(t, theta, 30, threads=threads, info=info)
        plain = chars_run(t, theta, 30, threads=1) if threads == 2 else got
        assert info["threads"] == threads
        for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
            assert np.array_equal(plain[key], got[key]), key


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stop_request_ends_a_long_call_and_leaves_the_state_as_before(example, threads, mode):
    """stop_all() (what the Ctrl-C handler calls) 0.2 s into a call of 200,000 iterations
    (half a minute of work): it raises Stopped, with the weights, optimizer state and carried
    state exactly as before the call (the driver resumes from its last row)."""
    t, theta = example
    before = {}
    info = {}
    when_running(0.2, _charrnn.stop_all)
    with pytest.raises(_charrnn.Stopped) as caught:
        chars_run(t, theta, 200_000, threads=threads, info=info, model_out=before)
    assert 0 <= caught.value.iteration < 200_000
    assert np.array_equal(before["theta"], theta)
    assert not before["state"].any() and not before["hstate"].any()
    assert not _charrnn._RUNNING


def test_a_kernel_thread_that_never_runs_its_part_costs_a_rerun_on_one_thread(example, monkeypatch, capfd, mode):
    """Role B's thread returns at once (as if it never got to run): role A waits, the watchdog
    sees no progress for STALL_SECONDS, stops it, says so in one line, and the call is done
    on one thread with the same numbers; later calls stay on one thread."""
    t, theta = example
    one = chars_run(t, theta, 30, threads=1)
    real = _charrnn._work

    def lazy_b(role, args, out):
        if role != _charrnn.B:
            real(role, args, out)

    monkeypatch.setattr(_charrnn, "_work", lazy_b)
    monkeypatch.setattr(_charrnn, "STALL_SECONDS", 0.3)
    monkeypatch.setattr(_charrnn, "_ONE_THREAD", False)
    info = {}
    stalled = chars_run(t, theta, 30, threads=2, info=info)
    assert info["threads"] == 1
    for key in ("losses", "norms", "errors", "theta", "state", "hstate"):
        assert np.array_equal(one[key], stalled[key]), key
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "made no progress for 0.3 s" in err and "one thread" in err
    info = {}
    chars_run(t, theta, 30, threads=2, info=info)
    assert info["threads"] == 1


def test_an_error_in_one_kernel_thread_stops_the_other_and_reaches_the_caller(example, monkeypatch, mode):
    """Role B's thread raises: role A, waiting for it, is told to stop, and the call raises
    that error with the state as before it (no hang, nothing half-applied)."""
    t, theta = example
    real = _charrnn._work

    def failing_b(role, args, out):
        if role == _charrnn.B:
            out[role] = RuntimeError("role B failed")
        else:
            real(role, args, out)

    monkeypatch.setattr(_charrnn, "_work", failing_b)
    before = {}
    with pytest.raises(RuntimeError, match="role B failed"):
        chars_run(t, theta, 50, threads=2, model_out=before)
    assert np.array_equal(before["theta"], theta) and not before["state"].any() and not before["hstate"].any()
    assert not _charrnn._RUNNING


def test_ctrl_c_in_the_library_stops_the_chunk_and_a_resume_equals_the_uninterrupted_run(tmp_path, monkeypatch, mode):
    """SIGINT arrives while the second text chunk of fastrnn.train runs (20,000 iterations):
    the chunk stops at once, the run is saved at its last row (20,000), and the resume to
    40,000 gives the rows and weights of a run never interrupted."""
    settings = dict(task="text", hidden=16, log_every=20000, seed=4)
    stopped = []
    real = engine.train_chunk_chars
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second chunk: Ctrl-C once it is in flight
            when_running(0.0, lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            return real(*args, **kwargs)
        except _charrnn.Stopped as exc:
            stopped.append(exc)
            raise

    monkeypatch.setattr(engine, "train_chunk_chars", interrupting)
    save = tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt) as caught:
        fastrnn.train(iters=60000, csv=tmp_path / "r.csv", save=save, **settings)
    assert len(stopped) == 1 and stopped[0].iteration < 20000
    assert caught.value.result.iterations == 20000 and caught.value.result.status == "interrupted"
    monkeypatch.setattr(engine, "train_chunk_chars", real)
    resumed = fastrnn.train(resume=save, iters=40000, csv=tmp_path / "r.csv")
    straight = fastrnn.train(iters=40000, **settings)
    assert resumed.threads == straight.threads
    assert np.array_equal(resumed.model.theta, straight.model.theta)
    assert len(resumed.rows) == len(straight.rows) == 2
    for a, b in zip(resumed.rows, straight.rows):
        assert {k: v for k, v in a.items() if k != "elapsed_s"} == {k: v for k, v in b.items() if k != "elapsed_s"}


def test_only_handlers_that_end_a_run_stop_the_kernel_early(monkeypatch):
    """Python's default Ctrl-C handler and fastrnn's own (marked) stop a chunk in flight; a
    handler of someone else's (which may not end the run) runs after the chunk, as before."""
    from fastrnn.training import _DeferredInterrupt

    assert _charrnn._stops(signal.SIGINT) == (signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    monkeypatch.setattr(signal, "getsignal", lambda s: _DeferredInterrupt()._handler)
    assert _charrnn._stops(signal.SIGINT) and _charrnn._stops(signal.SIGTERM)
    monkeypatch.setattr(signal, "getsignal", lambda s: (lambda signum, frame: None))
    assert not _charrnn._stops(signal.SIGINT) and not _charrnn._stops(signal.SIGTERM)
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.default_int_handler)
    assert not _charrnn._stops(signal.SIGUSR1)


def _train_cmd(tmp_path, name, iters, log_every, *extra):
    return [sys.executable, "-m", "fastrnn", "train", "--task", "text", "--iters", str(iters), "--log-every",
            str(log_every), "--csv", str(tmp_path / f"{name}.csv"), *extra]


@pytest.mark.parametrize("signum, said", [(signal.SIGINT, "Interrupted"), (signal.SIGTERM, "Stopped by SIGTERM"),
                                           (signal.SIGHUP, "Stopped by SIGHUP")])
def test_a_signal_during_a_long_text_chunk_ends_the_command_at_once(tmp_path, signum, said):
    """`fastrnn train --task text` with chunks of 300,000 iterations (a minute of work each):
    the signal, once training has started, ends the command with 128 + the signal, the JSON
    marks the run interrupted at iteration 0 (the chunk's work discarded) and the model is
    saved. (A signal that lands while the kernels still load is tried again, later.)"""
    for wait in (3.0, 8.0, 20.0):
        folder = tmp_path / f"after{wait:g}"
        folder.mkdir()
        cmd = _train_cmd(folder, "r", 600_000, 300_000, "--save", str(folder / "m.npz"))
        proc = subprocess.Popen(cmd, cwd=folder, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            meta = folder / "r.json"
            deadline = time.monotonic() + 120
            while not meta.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(wait)  # past the kernels' load: inside the first chunk
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)  # the chunk alone would take a minute or more
        finally:
            proc.kill()
        data = json.loads(meta.read_text())
        if data["result"]["train_seconds"] > 0:  # it was training, not loading, when the signal came
            break
    assert proc.returncode == 128 + signum, err
    assert f"{said} after 0 iterations" in err and err.count("\n") == 1
    assert data["status"] == "interrupted" and data["result"]["iterations_done"] == 0
    assert data["result"]["threads"] == (2 if cpus.available() >= 2 else 1)
    assert (folder / "m.npz").exists()


def _rows_without_time(path):
    lines = path.read_text().splitlines()
    col = lines[0].split(",").index("elapsed_s")
    return [",".join(v for k, v in enumerate(line.split(",")) if k != col) for line in lines]


def test_a_run_pinned_to_one_cpu_trains_on_one_thread_with_the_same_numbers(tmp_path):
    """`taskset -c 0`: the affinity mask allows one CPU, so the text kernel runs on one thread
    (the JSON says so) and every row equals the unpinned run's (two threads where two CPUs are)."""
    pinned = subprocess.run(["taskset", "-c", "0"] + _train_cmd(tmp_path, "pinned", 600, 200), cwd=tmp_path, env=env(),
                            capture_output=True, text=True)
    assert pinned.returncode == 0, pinned.stderr
    free = subprocess.run(_train_cmd(tmp_path, "free", 600, 200), cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert free.returncode == 0, free.stderr
    assert _rows_without_time(tmp_path / "pinned.csv") == _rows_without_time(tmp_path / "free.csv")
    assert json.loads((tmp_path / "pinned.json").read_text())["result"]["threads"] == 1
    expected = 2 if cpus.available() >= 2 else 1
    assert json.loads((tmp_path / "free.json").read_text())["result"]["threads"] == expected


def test_the_text_kernel_falls_back_to_the_general_kernel_with_a_note(monkeypatch, capfd):
    """When the fused kernel cannot be compiled, one line says so and the run trains with the
    general kernel: the same numbers within rounding, no thread count recorded."""
    fused = fastrnn.train(task="text", hidden=16, iters=200, log_every=100, seed=2)

    def broken(*args, **kwargs):
        raise RuntimeError("LLVM ERROR: cannot select")

    monkeypatch.setattr(_charrnn, "train_chunk", broken)
    general = fastrnn.train(task="text", hidden=16, iters=200, log_every=100, seed=2)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "could not be compiled" in err and "general kernel" in err
    assert fused.threads in (1, 2) and general.threads is None
    np.testing.assert_allclose(general.model.theta, fused.model.theta, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- how many CPUs


def _cgroup(tmp_path, lines, files):
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text("".join(f"{line}\n" for line in lines))
    for rel, content in files.items():
        p = tmp_path / "fs" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return str(tmp_path / "fs"), str(proc)


def test_the_cgroup_v2_quota_limits_the_cpus(tmp_path, monkeypatch):
    root, proc = _cgroup(tmp_path, ["0::/job/step"], {"cpu.max": "max 100000\n", "job/cpu.max": "150000 100000\n",
                                                      "job/step/cpu.max": "max 100000\n"})
    assert cpus.quota(root, proc) == 1.5
    monkeypatch.setattr(cpus, "affinity", lambda: 8)
    assert cpus.available(root, proc) == 1  # rounded down
    root, proc = _cgroup(tmp_path / "b", ["0::/"], {"cpu.max": "max 100000\n"})
    assert cpus.quota(root, proc) is None and cpus.available(root, proc) == 8


def test_the_cgroup_v1_quota_limits_the_cpus(tmp_path, monkeypatch):
    root, proc = _cgroup(tmp_path, ["4:cpu,cpuacct:/docker/abc", "0::/"],
                         {"cpu,cpuacct/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cpus.quota(root, proc) == 2.5  # the container's own group is the mount's root
    monkeypatch.setattr(cpus, "affinity", lambda: 4)
    assert cpus.available(root, proc) == 2
    root, proc = _cgroup(tmp_path / "b", ["2:cpu:/"], {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpus.quota(root, proc) is None


def test_fewer_than_two_cpus_mean_one_text_thread(monkeypatch):
    monkeypatch.setattr(cpus, "available", lambda *a: 1)
    assert cpus.kernel_threads(2) == 1 and engine.chars_threads() == 1
    monkeypatch.setattr(cpus, "available", lambda *a: 3)
    from numba import config

    assert cpus.kernel_threads(2) == min(2, config.NUMBA_NUM_THREADS)


# ---------------------------------------------------------------- sweeps: one per folder, a lost worker


def test_a_second_sweep_into_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / sweeps.LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                        "started": "2026-01-02 03:04:05 UTC"}))
        with pytest.raises(InvalidArgument) as caught:
            sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
        message = str(caught.value)
        assert "\n" not in message and f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "2026-01-02 03:04:05 UTC" in message
        assert sorted(p.name for p in out.iterdir()) == [sweeps.LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone now: its lock is taken over, the sweep runs and releases the folder
    result = sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
    assert result.ran == 1 and not (out / sweeps.LOCK_NAME).exists()


def test_the_cli_refuses_a_folder_locked_from_another_host_unless_forced(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / sweeps.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "earlier"}))
    cmd = [sys.executable, "-m", "fastrnn", "sweep", "--out", str(out), "--seeds", "0", "--set", "iters=10",
           "--set", "log_every=5", "--workers", "1", "-q"]
    refused = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "elsewhere.example" in refused.stderr and "--force" in refused.stderr
    forced = subprocess.run(cmd + ["--force"], cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    assert not (out / sweeps.LOCK_NAME).exists() and len(list(out.glob("*seed0.json"))) == 1


def test_only_one_of_two_sweeps_started_together_gets_the_folder(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    locks, errors = [], []
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        try:
            locks.append(sweeps._SweepLock(out))
        except InvalidArgument as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(locks) == 1 and len(errors) == 7  # same pid and host: alive, so refused
    locks[0].release()
    assert not (out / sweeps.LOCK_NAME).exists()


def _files_without_times(out):
    """Every run file of a sweep folder, with the columns and fields that hold times and thread counts removed."""
    got = {}
    for path in sorted(out.glob("*-seed*.*")):
        if path.suffix == ".csv":
            got[path.name] = _rows_without_time(path)
        elif path.suffix == ".json":
            meta = json.loads(path.read_text())
            for key in ("train_seconds", "compile_seconds", "threads", "thread_use"):
                meta["result"].pop(key, None)
            got[path.name] = meta
    return got


def test_a_dask_worker_killed_mid_sweep_costs_nothing(tmp_path):
    """A LocalCluster on loopback with two one-thread workers; one is killed (SIGKILL) while it
    trains a run. The sweep completes, and every run's files equal those of a sweep with no
    failure (times aside). The workers' kernels use one thread each there (their share of
    the CPUs), which a run's JSON records."""
    distributed = pytest.importorskip("distributed")
    settings = dict(task="text", hidden=24, iters=40000, log_every=20000)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        # two one-thread workers on this host: a task's share of 2 CPUs is 1
        assert client.submit(cpus.kernel_threads, 2, pure=False).result() == 1
        victims = []

        def kill_one():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    time.sleep(1.0)  # into the run
                    if not client.processing().get(busy[0]):
                        continue
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    victims.append(pid)
                    os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        result = sweeps.sweep(seeds=[0, 1, 2], out=tmp_path / "dask", scheduler=cluster.scheduler_address, **settings)
        killer.join()
    assert victims, "no worker was busy to kill"
    assert result.ran == 3 and list(result.summary["status"]) == ["completed"] * 3
    plain = sweeps.sweep(seeds=[0, 1, 2], out=tmp_path / "plain", workers=1, **settings)
    assert plain.ran == 3
    dask_files, plain_files = _files_without_times(tmp_path / "dask"), _files_without_times(tmp_path / "plain")
    assert sorted(dask_files) == sorted(plain_files) and len(dask_files) == 6
    assert dask_files == plain_files
    for path in (tmp_path / "dask").glob("*.json"):
        if path.name != "summary.json":
            assert json.loads(path.read_text())["result"]["threads"] == 1, json.loads(path.read_text())["result"].get("thread_use")
    assert not list((tmp_path / "dask").glob("*.tmp")) and not (tmp_path / "dask" / sweeps.LOCK_NAME).exists()


def test_a_killed_sweeps_temporary_files_are_cleared_and_its_runs_redone(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "binary-seed0.csv.tmp").write_text("iteration,lo")
    (out / "binary-seed0.json.tmp").write_text("{")
    (out / "summary.csv.tmp").write_text("run")
    result = sweeps.sweep(seeds=[0], out=out, iters=10, log_every=5, workers=1)
    assert result.ran == 1
    assert not list(out.glob("*.tmp"))


# ---------------------------------------------------------------- numba's cache


def _kernel_modules():
    """Modules of the package that define kernels, and every package module they import (parsed)."""
    files = {p.relative_to(PACKAGE).as_posix(): p for p in PACKAGE.rglob("*.py")}
    defines = {name for name, p in files.items() if re.search(r"@njit|njit\(\*\*|@intrinsic|by_activation\(|by_code\(", p.read_text())}

    def imports(name):
        tree = ast.parse(files[name].read_text())
        here = Path(name).parent
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = here
                for _ in range(node.level - 1):
                    base = base.parent
                parts = [*base.parts, *(node.module.split(".") if node.module else [])]
                targets = [parts] if node.module else [parts + [a.name] for a in node.names]
                for t in targets:
                    for cand in ("/".join(t) + ".py", "/".join(t + ["__init__"]) + ".py"):
                        if cand in files and cand != "__init__.py":
                            found.add(cand)
        return found

    closure, todo = set(), list(defines)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo += imports(name)
    return defines, closure - {"_cache.py"}


def test_the_cache_key_covers_every_kernel_module_and_what_they_import():
    from fastrnn import _cache

    defines, closure = _kernel_modules()
    assert {"_charrnn.py", "_small.py", "_mathfn.py", "cells/rnn.py"} <= defines
    assert set(_cache.KERNEL_SOURCES) == closure


def test_every_kernel_has_the_keyed_cache():
    import importlib

    from numba.core.dispatcher import Dispatcher

    from fastrnn import _cache

    defines, _ = _kernel_modules()
    cls = _cache.keyed_cache_class()
    seen = 0
    for name in defines:
        module = importlib.import_module("fastrnn." + name[:-3].replace("/", ".").removesuffix(".__init__"))
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__.startswith("fastrnn."):
                assert isinstance(obj._cache, cls), f"{module.__name__}.{obj.py_func.__name__}"
                seen += 1
    assert seen > 50


PROBE = """
import sys, numpy as np
from fastrnn.cells import rnn
xu = np.linspace(-1.0, 1.0, 5); hw = np.zeros(5); hs = np.zeros(5)
rnn.forward_step(0, 5, xu, 0, hw, hs, 0)
stats = rnn.forward_step.stats
print(repr(hs.tolist()), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.fixture
def copy(tmp_path):
    """A copy of the package (without its caches) in tmp_path, and a runner of PROBE in it."""
    dest = tmp_path / "pkg" / "fastrnn"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__"))

    def probe(command=False, **extra):
        """PROBE in a library process, or (command=True) as in the fastrnn command's, whose cache loads are quick."""
        e = dict(os.environ, PYTHONPATH=str(tmp_path / "pkg"), **extra)
        code = ("import sys; sys.orig_argv = [sys.executable, '-m', 'fastrnn']\n" if command else "") + PROBE
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=e, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        values, hits, misses = done.stdout.rsplit(" ", 2)
        return eval(values), int(hits), int(misses), done.stderr

    return dest, probe


def test_an_edited_callee_in_another_module_is_compiled_again_never_served_stale(copy):
    """cells.rnn.forward_step inlines _mathfn.tanh. Edit tanh only: the next process compiles
    forward_step again and computes the new tanh (numba's own check, on rnn.py alone, would
    load the old machine code)."""
    dest, probe = copy
    first, hits, misses = probe()[:3]
    assert np.allclose(first, np.tanh(np.linspace(-1.0, 1.0, 5)), rtol=1e-14) and (hits, misses) == (0, 1)
    assert probe()[1:3] == (1, 0)  # a second process loads it
    source = dest / "_mathfn.py"
    code = source.read_text()
    old = "    t = expm1(-2.0 * abs(x))\n    v = -t / (2.0 + t)\n    return -v if x < 0 else v\n"
    assert old in code
    source.write_text(code.replace(old, "    return 0.25 + 0.0 * x\n"))
    edited, hits, misses = probe()[:3]
    assert edited == [0.25] * 5 and (hits, misses) == (0, 1)


def test_a_new_version_compiles_again(copy):
    dest, probe = copy
    probe()
    init = dest / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.', 1))
    assert probe()[1:3] == (0, 1)
    assert probe()[1:3] == (1, 0)


def _damage(files, how):
    for path in files:
        data = path.read_bytes()
        if how == "truncated":
            path.write_bytes(data[: 20 if path.suffix == ".nbi" else 100])
        else:
            path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8)))


@pytest.mark.parametrize("which, how, command", [("index", "truncated", True), ("data", "truncated", True),
                                                 ("both", "garbage", True), ("index", "empty", True),
                                                 ("index", "truncated", False), ("data", "truncated", False)])
def test_a_damaged_cache_file_costs_a_recompile_and_one_line(copy, which, how, command):
    """The cache files of forward_step truncated (index to 20 bytes, data to 100), or filled
    with garbage, or emptied: the next process prints one line, deletes them, compiles and
    computes the right numbers; the one after loads the fresh cache silently. In the fastrnn
    command's process (the quick cache loads) and in a library process (numba's own load)."""
    dest, probe = copy
    good = probe(command)[0]
    cache = dest / "cells" / "__pycache__"
    index = list(cache.glob("rnn.forward_step-*.nbi"))
    data = list(cache.glob("rnn.forward_step-*.nbc"))
    assert len(index) == 1 and len(data) == 1
    targets = {"index": index, "data": data, "both": index + data}[which]
    if how == "empty":
        for path in targets:
            path.write_bytes(b"")
    else:
        _damage(targets, how)
    values, hits, misses, err = probe(command)
    assert values == good and misses == 1
    if how == "garbage" and err == "":
        pass  # random bytes that read as another numba version's index: numba itself compiles again
    else:
        assert err.count("\n") == 1 and "damaged numba cache file" in err and str(cache) in err
    values, hits, misses, err = probe(command)
    assert values == good and (hits, misses) == (1, 0) and err == ""
