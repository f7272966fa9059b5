"""Bad input on the way in and out: output paths that name folders, option combinations that
would be ignored, values beyond float32, data that overflow, text files with a byte-order mark,
resumes after the data moved or changed, plots of odd folders, long samples and --data files
too large for memory. Every case ends in one line and a non-zero exit, or in the right result."""

import os

import numpy as np
import pytest

import fastrnn
from conftest import assert_one_line_error
from conftest import run_cli as run


def small_data(path, N=6, T=8, I=2, O=2, **extra):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, T, I))
    Y = np.eye(O)[rng.integers(0, O, (N, T))]
    np.savez(path, X=X, Y=Y, **extra)
    return path


# ------------------------------------------------------------------ output paths


@pytest.mark.parametrize("option", ["--csv", "--save"])
@pytest.mark.parametrize("name", ["out/", "sub/out/", "existing", "existing/"])
def test_an_output_path_naming_a_folder_is_refused_and_nothing_is_written(capsys, tmp_path, monkeypatch, option, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    data = small_data(tmp_path / "d.npz")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["train", "--data", data, "--epochs", "1", option, name] + (["--no-csv"] if option == "--save" else [])
    code, out, err = run(capsys, *args)
    assert_one_line_error(code, err, 2, option, "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "existing").is_dir()


def test_the_library_refuses_a_csv_path_ending_in_a_separator(tmp_path):
    X, Y = np.zeros((2, 3, 1)), np.zeros((2, 3, 1))
    with pytest.raises(fastrnn.InvalidArgument, match="folder"):
        fastrnn.fit(fastrnn.RNN(1, 2, 1, head="linear"), X, Y, epochs=1, csv=f"{tmp_path}/runs/")
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------- options that would be ignored


def test_shuffle_with_window_is_refused_on_the_command_line(capsys, tmp_path):
    data = small_data(tmp_path / "d.npz")
    code, out, err = run(capsys, "train", "--data", data, "--window", "4", "--shuffle", "--no-csv")
    assert_one_line_error(code, err, 2, "--shuffle", "--window")


def test_no_shuffle_with_window_is_accepted(capsys, tmp_path):
    data = small_data(tmp_path / "d.npz")
    code, out, err = run(capsys, "train", "--data", data, "--window", "4", "--no-shuffle", "--epochs", "1", "--no-csv")
    assert code == 0, err


def test_the_library_refuses_shuffle_true_with_a_window_and_keeps_its_default():
    X, Y = np.zeros((2, 6, 1)), np.zeros((2, 6, 1))
    with pytest.raises(fastrnn.InvalidArgument, match="shuffle"):
        fastrnn.fit(fastrnn.RNN(1, 2, 1, head="linear"), X, Y, epochs=1, window=3, shuffle=True)
    result = fastrnn.fit(fastrnn.RNN(1, 2, 1, head="linear"), X, Y, epochs=1, window=3)
    assert result.settings["shuffle"] is False
    result = fastrnn.fit(fastrnn.RNN(1, 2, 1, head="linear"), X, Y, epochs=1)
    assert result.settings["shuffle"] is True


def test_a_window_run_resumed_with_shuffle_is_refused_and_without_it_continues(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = small_data(tmp_path / "d.npz")
    code, out, err = run(capsys, "train", "--data", data, "--window", "4", "--epochs", "1", "--save", "m.npz", "--no-csv")
    assert code == 0, err
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--epochs", "2", "--shuffle", "--no-csv")
    assert_one_line_error(code, err, 2, "--shuffle", "--window 4")
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--epochs", "2", "--no-shuffle", "--no-csv")
    assert code == 0, err


@pytest.mark.parametrize("args, fragment", [
    (["--optimizer", "adam", "--momentum", "0.5"], "momentum=0.5 applies to optimizer='momentum' only"),
    (["--init-scale", "0.3", "--init-from", "INIT"], "init_scale=0.3"),
    (["--cell", "lstm", "--forget-bias", "1", "--init-from", "INIT_LSTM"], "forget_bias=1.0"),
])
def test_a_setting_the_run_would_ignore_is_refused(capsys, tmp_path, args, fragment):
    init = fastrnn.RNN(2, 16, 1, head="sigmoid").save(tmp_path / "init.npz")
    lstm = fastrnn.RNN(2, 16, 1, head="sigmoid", cell="lstm").save(tmp_path / "lstm.npz")
    args = [{"INIT": str(init), "INIT_LSTM": str(lstm)}.get(a, a) for a in args]
    code, out, err = run(capsys, "train", "--task", "binary", "--iters", "10", "--no-csv", *args)
    assert_one_line_error(code, err, 2, fragment)


def test_momentum_at_its_default_and_init_from_alone_still_train(capsys, tmp_path):
    init = fastrnn.RNN(2, 16, 1, head="sigmoid").save(tmp_path / "init.npz")
    for args in (["--optimizer", "adam", "--momentum", "0.9"], ["--init-from", init]):
        code, out, err = run(capsys, "train", "--task", "binary", "--iters", "10", "--log-every", "10", "--no-csv", *args)
        assert code == 0, err


def test_sweep_refuses_local_workers_together_with_a_scheduler(capsys, tmp_path):
    code, out, err = run(capsys, "sweep", "--task", "binary", "--set", "iters=10", "--out", tmp_path / "s",
                         "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert_one_line_error(code, err, 2, "--workers 2", "--scheduler")
    assert not (tmp_path / "s" / "summary.csv").exists()


# ------------------------------------------------------------------ beyond float32


def test_float32_data_beyond_its_range_is_refused_in_one_line_without_a_warning(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 5, 2))
    X[1, 2, 0] = 1e39
    np.savez(tmp_path / "big.npz", X=X, Y=np.eye(2)[rng.integers(0, 2, (4, 5))])
    code, out, err = run(capsys, "train", "--data", tmp_path / "big.npz", "--dtype", "float32", "--no-csv")
    assert_one_line_error(code, err, 2, "--data", "X", "float32", "(1, 2, 0)", "1e+39")
    assert "RuntimeWarning" not in err


def test_the_library_refuses_float32_overflow_in_every_array_it_converts():
    import warnings

    model = fastrnn.RNN(2, 3, 2, head="linear", dtype="float32")
    X, Y = np.zeros((2, 4, 2)), np.zeros((2, 4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        for kwargs, name in ((dict(X=X * 0 + 1e300, Y=Y), "X"), (dict(X=X, Y=Y - 5e38), "Y"),
                             (dict(X=X, Y=Y, h0=np.full((2, 3), 4e38)), "h0")):
            with pytest.raises(fastrnn.InvalidArgument, match=f"{name} holds .* beyond the range of float32"):
                model.loss_and_grads(**kwargs)
        # values that round to float32's largest finite value stay accepted
        model.forward(X + np.finfo(np.float32).max)


def test_init_from_a_float64_model_whose_weights_overflow_float32(tmp_path):
    import warnings

    big = fastrnn.RNN(2, 16, 1, head="sigmoid")
    big.theta[3] = 1e39
    path = big.save(tmp_path / "big.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(fastrnn.InvalidArgument, match="float32"):
            fastrnn.train(task="binary", iters=10, dtype="float32", init_from=path)


def test_a_float32_model_file_storing_weights_beyond_float32_is_refused_without_a_warning(capsys, tmp_path):
    import json
    import warnings

    model = fastrnn.RNN(2, 3, 2, dtype="float32")
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as f:
        meta = str(f["meta"][()])
    theta = model.theta.astype(np.float64)
    theta[0] = -1e40
    np.savez(path, theta=theta, meta=np.array(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(fastrnn.ModelFileError, match="beyond the range of float32"):
            fastrnn.RNN.load(path)
    assert json.loads(meta)["config"]["dtype"] == "float32"


# ------------------------------------------------------------ overflowing data


def test_targets_that_overflow_before_any_update_are_blamed_not_the_lr(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "huge.npz", X=rng.standard_normal((4, 5, 2)), Y=rng.standard_normal((4, 5, 1)) * 1e200)
    code, out, err = run(capsys, "train", "--data", tmp_path / "huge.npz", "--no-csv")
    assert_one_line_error(code, err, 1, "iteration 1, before any update", "largest |Y| 1.", "e+200", "rescale X and Y")
    assert "smaller lr" not in err


def test_a_divergence_after_updates_still_advises_lr_and_clip():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 6, 2)), rng.standard_normal((4, 6, 1))
    with pytest.raises(fastrnn.NumericalError, match="smaller lr") as info:
        fastrnn.fit(fastrnn.RNN(2, 8, 1, head="linear", activation="relu"), X, Y, epochs=50, lr=1e150, optimizer="sgd",
                    clip=None, log_every=1)
    assert "before any update" not in str(info.value)


# ------------------------------------------------------------------ text files


def test_a_byte_order_mark_is_not_a_character_of_the_text(tmp_path):
    from fastrnn import text

    body = "hello world, hello rnn\n" * 4
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (tmp_path / "plain.txt").write_text(body, encoding="utf-8")
    with_bom, plain = text.read_text(tmp_path / "bom.txt"), text.read_text(tmp_path / "plain.txt")
    assert "\ufeff" not in with_bom.vocab
    assert with_bom.vocab == plain.vocab and np.array_equal(with_bom.ids, plain.ids)


def test_a_byte_order_mark_inside_the_text_stays_a_character(tmp_path):
    from fastrnn import text

    (tmp_path / "t.txt").write_text("abc\ufeffdef" * 5, encoding="utf-8")
    assert "\ufeff" in text.read_text(tmp_path / "t.txt").vocab


def test_a_text_after_a_byte_order_mark_is_checked_at_the_right_offset(tmp_path):
    from fastrnn import text

    (tmp_path / "bad.txt").write_bytes(b"\xef\xbb\xbfabc\xff" + b"x" * 40)
    with pytest.raises(fastrnn.InvalidArgument, match="byte 0xff at offset 6"):
        text.read_text(tmp_path / "bad.txt")
    (tmp_path / "only.txt").write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(fastrnn.InvalidArgument, match="only a byte-order mark"):
        text.read_text(tmp_path / "only.txt")


def test_a_run_whose_files_an_editor_saved_with_a_byte_order_mark_is_still_read(tmp_path):
    from fastrnn import metrics

    fastrnn.train(task="binary", iters=20, log_every=10, csv=tmp_path / "a.csv")
    for name in ("a.csv", "a.json"):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    frame, meta = metrics.read_run(tmp_path / "a.csv")
    assert meta["task"] == "binary" and list(frame["iteration"]) == [10, 20]


# ------------------------------------------------------------------ resume


TEXT = "the quick brown fox jumps over the lazy dog; " * 6


@pytest.mark.parametrize("change", ["shorter, fewer characters", "shorter, same characters", "same length, edited"])
def test_resuming_on_a_changed_text_says_the_text_changed(capsys, tmp_path, monkeypatch, change):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    code, out, err = run(capsys, "train", "--task", "text", "--text", "t.txt", "--hidden", "8", "--iters", "20",
                         "--log-every", "10", "--save", "m.npz", "--no-csv")
    assert code == 0, err
    changed = {"shorter, fewer characters": TEXT[:60].replace("z", "").replace("y", ""),
               "shorter, same characters": TEXT[:-45],
               "same length, edited": TEXT.replace("quick", "quack", 1)}[change]
    (tmp_path / "t.txt").write_text(changed, encoding="utf-8")
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--iters", "40", "--no-csv")
    assert_one_line_error(code, err, 2, "text", "changed since the run was saved")
    assert "does not fit its settings" not in err


def test_a_data_run_resumes_from_another_folder(capsys, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    small_data(tmp_path / "work" / "d.npz")
    code, out, err = run(capsys, "train", "--data", "d.npz", "--epochs", "1", "--save", "m.npz", "--no-csv")
    assert code == 0, err
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = run(capsys, "train", "--resume", tmp_path / "work" / "m.npz", "--epochs", "2", "--no-csv")
    assert code == 0, err
    _, state, _ = fastrnn.checkpoint.load(tmp_path / "work" / "m.npz")
    assert state["settings"]["data_file"] == str(tmp_path / "work" / "d.npz")


def _record_relative_data_file(path, data_file):
    """Rewrite a saved fit's training state as an older fastrnn wrote it: data_file as given, relative."""
    import json

    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    state = json.loads(str(arrays["train_state"][()]))
    state["settings"]["data_file"] = data_file
    arrays["train_state"] = np.array(json.dumps(state))
    np.savez(path, **arrays)


def test_an_older_relative_data_file_is_found_beside_the_model(capsys, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    small_data(tmp_path / "work" / "d.npz")
    code, out, err = run(capsys, "train", "--data", "d.npz", "--epochs", "1", "--save", "m.npz", "--no-csv")
    assert code == 0, err
    _record_relative_data_file(tmp_path / "work" / "m.npz", "d.npz")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "--resume", "work/m.npz", "--epochs", "2", "--no-csv")
    assert code == 0, err
    os.remove(tmp_path / "work" / "d.npz")
    code, out, err = run(capsys, "train", "--resume", "work/m.npz", "--epochs", "3", "--no-csv")
    assert_one_line_error(code, err, 2, "d.npz", "--data FILE")


# ------------------------------------------------------------------ plot


def test_plot_of_an_empty_folder_says_it_holds_no_runs(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "plot", tmp_path / "empty", "--out", tmp_path / "p.png")
    assert_one_line_error(code, err, 2, "holds no run CSV files")
    assert "does not exist" not in err and not (tmp_path / "p.png").exists()


def _two_runs(folder):
    for seed in (0, 1):
        fastrnn.train(task="binary", iters=20, log_every=10, seed=seed, csv=folder / f"binary-seed{seed}.csv")
    (folder / "summary.csv").write_text("run,task,seed,final_accuracy\nbinary-seed0,binary,0,0.5\nbinary-seed1,binary,1,0.5\n")


def test_plot_of_a_sweep_folder_and_of_its_csv_files_skips_the_summary(capsys, tmp_path):
    _two_runs(tmp_path / "S")
    every = sorted((tmp_path / "S").glob("*.csv"))  # what the shell makes of S/*.csv: the summary included
    assert tmp_path / "S" / "summary.csv" in every
    for args in ([tmp_path / "S"], every):
        code, out, err = run(capsys, "plot", *args, "--out", tmp_path / "p.png", "--overwrite")
        assert code == 0, err
        assert "plot of 2 run(s)" in out
    assert "skipped" in out and "summary.csv" in out  # given by name: said


def test_plot_of_a_sweep_summary_alone_is_refused_in_one_line(capsys, tmp_path):
    _two_runs(tmp_path / "S")
    code, out, err = run(capsys, "plot", tmp_path / "S" / "summary.csv", "--out", tmp_path / "p.png")
    assert_one_line_error(code, err, 2, "summary.csv", "sweep's summary")


def test_the_legend_of_many_runs_is_capped_so_the_picture_stays_small(tmp_path):
    import matplotlib.image
    import pandas as pd

    from fastrnn import plots

    def frame(i):
        it = np.arange(1, 6) * 10
        return pd.DataFrame(dict(iteration=it, loss=1.0 / (it + i), error=0.1, accuracy=0.5))

    one = plots.plot_runs([("lr=0.1", frame(0))], tmp_path / "one.png")
    many = plots.plot_runs([(f"lr={i / 1000:.3f} hidden={i}", frame(i)) for i in range(200)], tmp_path / "many.png")
    h1, w1 = matplotlib.image.imread(one).shape[:2]
    h2, w2 = matplotlib.image.imread(many).shape[:2]
    assert h2 <= 1.5 * h1 and w2 <= 1.5 * w1, ((h1, w1), (h2, w2))


# ------------------------------------------------------------------ sample


VOCAB = "ab c\n"


def text_model(tmp_path):
    model = fastrnn.RNN(len(VOCAB), 8, len(VOCAB), seed=3, init_scale=2.0)
    model.metadata = {"vocab": VOCAB}
    return model.save(tmp_path / "chars.npz")


def test_sample_refuses_an_absurd_length_in_one_line_saying_how_long_it_would_take(capsys, tmp_path):
    code, out, err = run(capsys, "sample", text_model(tmp_path), "--length", "1000000000")
    assert_one_line_error(code, err, 2, "--length 1000000000 would take about", "at most 10000000", "--prime")
    assert out == ""
    with pytest.raises(fastrnn.InvalidArgument, match="at most 10000000"):
        fastrnn.text.sample(fastrnn.RNN.load(tmp_path / "chars.npz"), length=10_000_001)


def test_a_bad_prime_is_refused_before_anything_is_printed(capsys, tmp_path):
    code, out, err = run(capsys, "sample", text_model(tmp_path), "--prime", "abz")
    assert_one_line_error(code, err, 2, "--prime", "'z'")
    assert out == ""


def test_sample_written_as_drawn_gives_the_same_text_a_line_at_a_time(tmp_path):
    from fastrnn import text

    model = fastrnn.RNN.load(text_model(tmp_path))
    whole = text.sample(model, length=3000, temperature=1.5, prime="ab", seed=4)
    pieces = []
    assert text.sample(model, length=3000, temperature=1.5, prime="ab", seed=4, write=pieces.append) == ""
    assert "".join(pieces) == whole and len(pieces) > 10
    assert all(p.endswith("\n") or len(p) == text.STREAM_PIECE for p in pieces[:-1])
    assert all("\n" not in p[:-1] for p in pieces)


def test_the_command_prints_the_prime_and_the_same_sample(capsys, tmp_path):
    from fastrnn import text

    path = text_model(tmp_path)
    code, out, err = run(capsys, "sample", path, "--length", "500", "--prime", "ab", "--seed", "5")
    assert code == 0, err
    assert out == "ab" + text.sample(fastrnn.RNN.load(path), length=500, prime="ab", seed=5) + "\n"


def test_a_long_sample_is_printed_while_it_is_drawn(tmp_path):
    import select
    import subprocess
    import sys
    from pathlib import Path

    path = text_model(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "fastrnn", "sample", str(path), "--length", "10000000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        first = os.read(proc.stdout.fileno(), 4096) if ready else b""
        still_drawing = proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()
    assert first and set(first.decode()) <= set(VOCAB), first
    assert still_drawing


# ------------------------------------------------------------ memory of --data


def lying_npz(path, T=10**12):
    """A few hundred bytes whose X and Y headers claim (1, T, 1) float64 arrays (the data are not there)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for key in ("X", "Y"):
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (1, T, 1)})
            zf.writestr(f"{key}.npy", buf.getvalue())
    return path


def test_npz_headers_give_the_shapes_without_reading_the_data(tmp_path):
    from fastrnn.fitting import npz_headers

    np.savez_compressed(tmp_path / "z.npz", X=np.zeros((2, 300, 3), np.float32), Y=np.zeros((2, 300, 1)))
    assert npz_headers(tmp_path / "z.npz") == {"X": ((2, 300, 3), np.dtype(np.float32)), "Y": ((2, 300, 1), np.dtype(np.float64))}
    assert npz_headers(lying_npz(tmp_path / "l.npz", T=7))["X"] == ((1, 7, 1), np.dtype(np.float64))


def test_a_data_file_whose_arrays_cannot_fit_is_refused_from_its_headers(capsys, tmp_path):
    path = lying_npz(tmp_path / "huge.npz")
    assert path.stat().st_size < 1000
    code, out, err = run(capsys, "train", "--data", path, "--no-csv")
    assert_one_line_error(code, err, 2, "--data", "(1, 1000000000000, 1)", "would need at least", "TiB")
    with pytest.raises(fastrnn.InvalidArgument, match="would need at least"):
        fastrnn.fitting.load_arrays(path)


def test_a_small_compressed_long_sequence_is_refused_before_anything_is_loaded(capsys, tmp_path, monkeypatch):
    from fastrnn import _checks, fitting

    np.savez_compressed(tmp_path / "long.npz", X=np.zeros((1, 200_000, 1), np.float32), Y=np.zeros((1, 200_000, 1), np.float32))
    assert (tmp_path / "long.npz").stat().st_size < 10_000
    monkeypatch.setattr(_checks, "memory_limit", lambda: 64 * 2**20)  # a machine of 64 MiB

    def load_arrays(path):
        raise AssertionError("the arrays were loaded before the memory estimate")

    monkeypatch.setattr(fitting, "load_arrays", load_arrays)
    code, out, err = run(capsys, "train", "--data", tmp_path / "long.npz", "--no-csv")
    assert_one_line_error(code, err, 2, "(1, 200000, 1) float32", "would need at least", "64 MiB")


def test_many_layers_on_data_are_refused_before_training(capsys, tmp_path, monkeypatch):
    from fastrnn import _checks

    data = small_data(tmp_path / "d.npz")
    monkeypatch.setattr(_checks, "memory_limit", lambda: 64 * 2**20)
    # the model itself (33 MiB) fits; with the optimizer state, the copies and the kernel's it does not
    assert _checks.model_bytes(2, 32, 2, 2000, 8) < 64 * 2**20
    code, out, err = run(capsys, "train", "--data", data, "--layers", "2000", "--no-csv")
    assert_one_line_error(code, err, 2, "--layers 2000", "would need at least", "--hidden, --layers")
    with pytest.raises(fastrnn.InvalidArgument, match="would need at least"):
        rng = np.random.default_rng(0)
        fastrnn.fit(fastrnn.RNN(2, 32, 2, layers=2000), rng.standard_normal((6, 8, 2)), np.eye(2)[rng.integers(0, 2, (6, 8))])


def test_an_older_run_that_recorded_an_ignored_momentum_still_resumes(tmp_path):
    import json

    path = tmp_path / "m.npz"
    fastrnn.train(task="binary", iters=20, log_every=10, optimizer="adam", save=path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    state = json.loads(str(arrays["train_state"][()]))
    state["settings"]["momentum"] = 0.5  # as a run before the refusal could record it
    arrays["train_state"] = np.array(json.dumps(state))
    np.savez(path, **arrays)
    result = fastrnn.train(resume=path, iters=40)
    assert result.iterations == 40 and result.settings["momentum"] == 0.9


def test_a_text_file_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from fastrnn import _checks, text

    (tmp_path / "t.txt").write_text("abcdefgh\n" * 200, encoding="utf-8")
    monkeypatch.setattr(_checks, "memory_limit", lambda: 4096)
    opened = []
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or pytest.fail("the file was opened"))
    with pytest.raises(fastrnn.InvalidArgument, match="t.txt.*would need at least 5.27 KiB"):
        text.read_text(tmp_path / "t.txt")
    assert not opened


def test_a_capped_legend_says_how_many_lines_it_leaves_out():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastrnn import plots

    fig, ax = plt.subplots()
    for i in range(30):
        ax.plot([0, 1], [i, i], label=f"run {i}")
    plots._legend(ax)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert len(texts) == plots.LEGEND_MAX
    assert texts[:-1] == [f"run {i}" for i in range(plots.LEGEND_MAX - 1)]
    assert texts[-1] == f"... and {31 - plots.LEGEND_MAX} more (30 lines in all)"


def test_a_text_run_whose_file_moved_resumes_with_the_new_path(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "t.txt").write_text(TEXT, encoding="utf-8")
    code, out, err = run(capsys, "train", "--task", "text", "--text", "a/t.txt", "--hidden", "8", "--iters", "20",
                         "--log-every", "10", "--save", "m.npz", "--no-csv")
    assert code == 0, err
    os.rename(tmp_path / "a" / "t.txt", tmp_path / "b" / "t.txt")
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--iters", "40", "--no-csv")
    assert_one_line_error(code, err, 2, str(tmp_path / "a" / "t.txt"), "does not exist any more", "--text FILE")
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--iters", "40", "--text", "b/t.txt", "--no-csv")
    assert code == 0, err
    (tmp_path / "b" / "other.txt").write_text(TEXT.upper(), encoding="utf-8")
    code, out, err = run(capsys, "train", "--resume", "m.npz", "--iters", "60", "--text", "b/other.txt", "--no-csv")
    assert_one_line_error(code, err, 2, "changed since the run was saved")


def test_a_long_sample_says_how_long_it_will_take(capsys, tmp_path, monkeypatch):
    from fastrnn import text

    monkeypatch.setattr(text, "seconds_per_character", lambda model, vocab=None, draws=200: 1e-3)
    code, out, err = run(capsys, "sample", text_model(tmp_path), "--length", "200000")
    assert code == 0, err
    assert err == "drawing 200000 characters takes about 3 minutes here (1000 us a character); the text is printed as it is drawn\n"
    assert len(out) == 200001
    code, out, err = run(capsys, "sample", text_model(tmp_path), "--length", "2000")
    assert code == 0 and err == ""


def test_the_sample_length_limit_in_the_help_is_the_librarys(capsys):
    from fastrnn import text

    code, out, err = run(capsys, "sample", "--help")
    assert code == 0 and f"at most {text.MAX_SAMPLE_LENGTH}" in " ".join(out.split())


def test_gradcheck_refuses_random_data_options_with_a_task(capsys):
    code, out, err = run(capsys, "gradcheck", "--task", "binary", "--n-in", "7", "--head", "linear")
    assert_one_line_error(code, err, 2, "--n-in, --head apply to --task random only")
    code, out, err = run(capsys, "gradcheck", "--task", "binary", "--hidden", "3")
    assert code == 0 and "all gradients pass" in out


@pytest.mark.parametrize("command", ["spectrum", "paths"])
def test_studies_of_saved_models_refuse_options_that_shape_fresh_models(capsys, tmp_path, command):
    fastrnn.train(task="binary", iters=10, log_every=10, save=tmp_path / "m.npz")
    out_png = ["--out", tmp_path / "p.png"] if command == "paths" else []
    code, out, err = run(capsys, command, tmp_path / "m.npz", "--hidden", "8", "--layers", "2", *out_png)
    assert_one_line_error(code, err, 2, "--hidden, --layers shape fresh models")
    code, out, err = run(capsys, command, tmp_path / "m.npz", "--samples", "4", *out_png)
    assert code == 0, err


def test_sample_refuses_a_seed_that_temperature_zero_ignores(capsys, tmp_path):
    path = text_model(tmp_path)
    code, out, err = run(capsys, "sample", path, "--temperature", "0", "--seed", "3")
    assert_one_line_error(code, err, 2, "--seed 3", "--temperature 0")
    code, out, err = run(capsys, "sample", path, "--temperature", "0", "--length", "20")
    assert code == 0 and len(out) == 21, err
