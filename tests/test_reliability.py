"""No lost file and no traceback (overlapping outputs, Ctrl-C in the compile,
atomic writes, requests that cannot fit, malformed files, models without a task)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import _checks, metrics, training
from fastrnn.cli import main
from conftest import run_cli as run, assert_one_line_error


# ------------------------------------------------- overlapping output files


@pytest.mark.parametrize("csv, save", [
    ("run.json", None),            # the JSON beside the CSV is the CSV itself
    ("run.csv", "run.json"),       # the model would replace the settings JSON
    ("run.csv", "run.csv"),        # the model would replace the rows
    ("run.csv", "./run.csv"),      # ./x is x
    ("run.csv", "ABS/run.json"),   # absolute against relative
    ("sub/../run.csv", "run.csv"),
])
def test_overlapping_output_files_are_refused_before_anything_is_written(capsys, tmp_path, monkeypatch, csv, save):
    monkeypatch.chdir(tmp_path)
    save = None if save is None else save.replace("ABS", str(tmp_path))
    (tmp_path / "sub").mkdir()
    with pytest.raises(fastrnn.InvalidArgument, match="same file|settings JSON"):
        fastrnn.train(iters=10, csv=csv, save=save)
    args = ["train", "--iters", "10", "--csv", csv] + ([] if save is None else ["--save", save])
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, 2, csv if save is None else save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # nothing written


def test_existing_rows_survive_a_csv_named_like_its_json(tmp_path):
    """The reported loss: `--csv run.json --overwrite` over an existing run's files."""
    csv = tmp_path / "run.csv"
    fastrnn.train(iters=200, log_every=100, csv=csv)
    before = csv.read_text()
    with pytest.raises(fastrnn.InvalidArgument):
        fastrnn.train(iters=10, csv=tmp_path / "run.json", overwrite=True)
    assert csv.read_text() == before and json.loads((tmp_path / "run.json").read_text())["status"] == "completed"


# ----------------------------------------------------- Ctrl-C in the compile


def test_ctrl_c_during_the_first_call_ends_the_run_as_interrupted(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training.engine, "train_chunk", interrupted)
    csv = tmp_path / "run.csv"
    code, out, err = run(capsys, "train", "--iters", "100", "--csv", csv)
    assert code == 130 and out == ""
    assert "Interrupted before the first iteration" in err and "0 rows kept" in err and str(csv) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert len(pd.read_csv(csv)) == 0
    meta = json.loads(metrics.json_path_for(csv).read_text())
    assert meta["status"] == "interrupted" and meta["result"]["iterations_done"] == 0
    assert meta["result"]["train_seconds"] == 0.0


def test_other_failures_do_not_leave_the_json_running(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.engine, "train_chunk", broken)
    csv = tmp_path / "run.csv"
    with pytest.raises(OSError):
        fastrnn.train(iters=100, csv=csv)
    meta = json.loads(metrics.json_path_for(csv).read_text())
    assert meta["status"] == "failed" and "No space left" in meta["error"]


# --------------------------------------------------------- atomic model file


def test_model_save_replaces_the_file_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = fastrnn.RNN(2, 3, 1, seed=1)
    old.save(path)
    before = path.read_bytes()

    def dies_halfway(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", dies_halfway)
    with pytest.raises(OSError):
        fastrnn.RNN(2, 3, 1, seed=2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    monkeypatch.undo()
    fastrnn.RNN(2, 3, 1, seed=2).save(path)
    assert not np.array_equal(fastrnn.RNN.load(path).theta, old.theta) and os.listdir(tmp_path) == ["m.npz"]


# --------------------------------------------------- requests that cannot fit


@pytest.mark.parametrize("args, fragment", [
    (["--hidden", "10000000"], "hidden=10000000"),
    (["--batch", "10000000000"], "batch=10000000000"),
    (["--task", "digits", "--digits", "18", "--batch", "100000000"], "batch=100000000"),
    (["--layers", "100000", "--hidden", "1000"], "layers=100000"),
])
def test_train_requests_that_cannot_fit_get_one_line(capsys, tmp_path, args, fragment):
    code, _, err = run(capsys, "train", "--iters", "1", "--csv", tmp_path / "r.csv", *args)
    assert_one_line_error(code, err, 2, fragment, "would need at least", "of memory")
    assert not (tmp_path / "r.csv").exists()


def test_a_model_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    with pytest.raises(fastrnn.InvalidArgument, match=r"n_hidden=10000000, .*would need at least 728 TiB"):
        fastrnn.RNN(2, 10_000_000, 1)
    monkeypatch.setattr(_checks, "memory_limit", lambda: 10_000)
    fastrnn.RNN(2, 16, 1)  # 1.2 kB of parameters
    with pytest.raises(fastrnn.InvalidArgument, match="layers=10"):
        fastrnn.RNN(2, 16, 1, layers=10)  # 4e4 bytes


def test_eval_and_study_sample_counts_that_cannot_fit(capsys, tmp_path):
    model = tmp_path / "m.npz"
    fastrnn.train(iters=10, save=model)
    for args in (["eval", model, "--samples", "10000000000"], ["spectrum", model, "--samples", "10000000000"],
                 ["paths", model, "--samples", "10000000000", "--out", tmp_path / "p.png"]):
        code, _, err = run(capsys, *args)
        assert_one_line_error(code, err, 2, "--samples 10000000000", "would need at least")


def test_memory_limit_is_this_machines_memory():
    limit = _checks.memory_limit()
    assert limit == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert _checks.model_bytes(3, 5, 2, 2, 8) == fastrnn.RNN(3, 5, 2, layers=2).theta.nbytes


# ------------------------------------------------------ models without a task


def test_spectrum_of_a_model_saved_without_a_task(capsys, tmp_path):
    path = tmp_path / "m.npz"
    model = fastrnn.RNN(2, 4, 1, head="sigmoid", seed=3)
    model.save(path)
    radius = fastrnn.model_spectra(model)[0].spectral_radius
    code, out, err = run(capsys, "spectrum", path)
    assert code == 0, err
    assert f"spectral radius {radius:.4f}" in out
    hint = [line for line in out.splitlines() if "step-Jacobian" in line]
    assert len(hint) == 1 and "--task binary" in hint[0] and "k=1" not in out
    code, out, err = run(capsys, "spectrum", path, "--task", "binary", "--bits", "6")
    assert code == 0, err
    assert f"spectral radius {radius:.4f}" in out and "k=6" in out and "k=7" not in out
    code, _, err = run(capsys, "spectrum", path, "--task", "digits")
    assert_one_line_error(code, err, 2, str(path), "n_in=2", "--task digits")


def test_paths_with_a_model_without_a_task_says_what_to_pass(capsys, tmp_path):
    path = tmp_path / "m.npz"
    fastrnn.RNN(2, 4, 1, head="sigmoid").save(path)
    code, _, err = run(capsys, "paths", path, "--out", tmp_path / "p.png")
    assert_one_line_error(code, err, 2, str(path), "--task binary")
    code, out, err = run(capsys, "paths", path, "--task", "binary", "--out", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").is_file(), err


# ------------------------------------------- unreadable run files (examples; the property test is in test_readers_fuzz.py)


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2, 3]", "JSON list, not an object"),
    ('"text"', "JSON str, not an object"),
    ("{}", "lacks the fields task, status"),
    ('{"task": "binary", "status": "completed", "result": [1]}', "corrupt"),
])
def test_report_and_plot_refuse_a_json_of_the_wrong_shape(capsys, tmp_path, content, fragment):
    csv = tmp_path / "run.csv"
    fastrnn.train(iters=100, csv=csv)
    metrics.json_path_for(csv).write_text(content)
    code, _, err = run(capsys, "report", tmp_path)
    assert_one_line_error(code, err, 2, "run.json", fragment)
    code, _, err = run(capsys, "plot", csv, "--out", tmp_path / "p.png")
    assert_one_line_error(code, err, 2, "run.json", fragment)


def test_a_truncated_row_is_refused_naming_the_file(capsys, tmp_path):
    csv = tmp_path / "run.csv"
    fastrnn.train(iters=300, csv=csv)
    text = csv.read_text()
    csv.write_text(text[: text.rindex(",", 0, len(text) - 2)])  # the last row loses its last field
    code, _, err = run(capsys, "report", tmp_path)
    assert_one_line_error(code, err, 2, str(csv), "row 3")


def test_model_file_with_a_broken_task_or_wrong_dtype(capsys, tmp_path):
    good = fastrnn.RNN(2, 4, 1, head="sigmoid")
    good.metadata = {"task": "binary", "bits": "eight"}
    bad_task = tmp_path / "bad_task.npz"
    good.save(bad_task)
    meta = json.dumps(dict(format="fastrnn-model", version=1, config=good.config(), metadata=["x"]))
    bad_meta = tmp_path / "bad_meta.npz"
    np.savez(bad_meta, theta=good.theta, meta=np.array(meta))
    text_theta = tmp_path / "text_theta.npz"
    np.savez(text_theta, theta=good.theta.astype(str), meta=np.array(json.dumps(dict(json.loads(meta), metadata={}))))
    for path, fragment in ((bad_task, "its task"), (bad_meta, "metadata"), (text_theta, "dtype")):
        code, _, err = run(capsys, "eval", path)
        assert_one_line_error(code, err, 2, str(path), fragment)


def test_predict_refuses_a_model_whose_task_does_not_fit_its_sizes(capsys, tmp_path):
    model = fastrnn.RNN(20, 4, 10)
    model.metadata = {"task": "binary", "bits": 8}
    path = tmp_path / "m.npz"
    model.save(path)
    code, _, err = run(capsys, "predict", path, "1", "2")
    assert_one_line_error(code, err, 2, str(path), "does not fit")


# ------------------------------------------------------------------- more of the kind


def test_paths_refuses_one_file_for_plot_and_csv(capsys, tmp_path):
    out = tmp_path / "p.png"
    code, _, err = run(capsys, "paths", "--out", out, "--csv", out)
    assert_one_line_error(code, err, 2, "same file")
    assert not out.exists()


def test_plot_refuses_to_draw_over_its_own_input(capsys, tmp_path):
    csv = tmp_path / "run.png"
    fastrnn.train(iters=100, csv=csv)
    before = csv.read_bytes()
    code, _, err = run(capsys, "plot", csv, "--out", csv, "--overwrite")
    assert_one_line_error(code, err, 2, "same file")
    assert csv.read_bytes() == before


def test_gradcheck_sizes_that_cannot_fit_and_any_memory_error_get_one_line(capsys, monkeypatch):
    code, _, err = run(capsys, "gradcheck", "--batch", "100000", "--length", "1000000")
    assert_one_line_error(code, err, 2, "--batch 100000 --length 1000000", "would need at least")

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.00 PiB for an array with shape (10, 10)")

    monkeypatch.setattr(fastrnn.RNN, "load", too_big)
    code, _, err = run(capsys, "eval", "m.npz")
    assert_one_line_error(code, err, 2, "not enough memory", "1.00 PiB")


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_plot_of_values_near_the_float_limits_gets_one_line(capsys, tmp_path, value):
    csv = tmp_path / "run.csv"
    pd.DataFrame({c: [value, -value, value] for c in metrics.COLUMNS}).to_csv(csv, index=False)
    code, _, err = run(capsys, "plot", csv, "--out", tmp_path / "p.png")
    assert_one_line_error(code, err, 2, str(csv), "out of range")
    assert not (tmp_path / "p.png").exists() and sorted(os.listdir(tmp_path)) == ["run.csv"]


def test_spectrum_of_a_model_whose_states_overflow_prints_inf_or_nan(capsys):
    code, out, err = run(capsys, "spectrum", "--activation", "relu", "--init-scale", "1e300")
    assert code == 0 and err == "", err
    assert "k=1" in out and ("nan" in out or "inf" in out)
    with pytest.raises(fastrnn.InvalidArgument, match="NaN or infinite"):
        fastrnn.spectrum(np.array([[np.inf, 0.0], [0.0, 1.0]]))


def test_a_model_that_cannot_be_saved_still_leaves_a_finished_json(capsys, tmp_path, monkeypatch):
    def disk_full(self, path, **kw):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(fastrnn.RNN, "save", disk_full)
    csv = tmp_path / "run.csv"
    code, _, err = run(capsys, "train", "--iters", "200", "--csv", csv, "--save", tmp_path / "m.npz")
    assert_one_line_error(code, err, 1, "No space left on device")
    meta = json.loads(metrics.json_path_for(csv).read_text())
    assert meta["status"] == "completed" and "could not be saved" in meta["error"] and len(pd.read_csv(csv)) == 2
