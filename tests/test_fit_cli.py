"""fastrnn train --data FILE.npz: the arrays of a file through fastrnn.fit, and one line for every bad file."""

import json
import re

import numpy as np
import pytest
import fastrnn
from fastrnn.cli import main


def arrays(N=8, T=5, n_in=2, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, (N, T))]
    return X, Y


def run(capsys, *args):
    """``fastrnn train ARGS`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(["train", *map(str, args)])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line(code, err, match):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, err
    assert re.search(match, lines[0]), lines[0]


def test_data_file_trains_like_fit(tmp_path, capsys):
    X, Y = arrays()
    mask = np.ones(X.shape[:2])
    mask[:, :2] = 0
    np.savez(tmp_path / "d.npz", X=X, Y=Y, mask=mask, X_val=X[:3], Y_val=Y[:3])
    code, out, err = run(capsys, "--data", tmp_path / "d.npz", "--epochs", 3, "--batch", 4, "--hidden", 6,
                         "--no-shuffle", "--optimizer", "sgd", "--lr", 0.1, "--csv", tmp_path / "r.csv",
                         "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "after 3 epochs (6 iterations of 4 sequences)" in out and "val_accuracy" in out
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["head"] == "softmax" and meta["data_file"] == str(tmp_path / "d.npz") and meta["shuffle"] is False
    # the same run through the library
    model = fastrnn.RNN(2, 6, 3, head="softmax", seed=0, init_scale=None)
    fastrnn.fit(model, X, Y, mask, epochs=3, batch=4, shuffle=False, optimizer="sgd", lr=0.1, validation=(X[:3], Y[:3]))
    np.testing.assert_array_equal(fastrnn.RNN.load(tmp_path / "m.npz").theta, model.theta)


def test_data_defaults_and_window(tmp_path, capsys):
    X, Y = arrays(N=2, T=12)
    np.savez(tmp_path / "d.npz", X=X, Y=Y[:, :, :1] * 0 + (X[:, :, :1] > 0))
    code, out, err = run(capsys, "--data", tmp_path / "d.npz", "--window", 5, "--csv", tmp_path / "r.csv")
    assert code == 0, err
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["head"] == "sigmoid" and meta["window"] == 5 and meta["batch"] == 2 and meta["epochs"] == 10
    assert (meta["hidden"], meta["optimizer"], meta["lr"], meta["clip"]) == (32, "adam", 0.01, 1.0)
    assert meta["iters"] == 30 and meta["shuffle"] is False


def write(path, **arrays_):
    np.savez(path, **arrays_)
    return path


X1, Y1 = arrays()


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "missing.npz", "no such file"),
    (lambda p: p, "is a folder"),
    (lambda p: ((p / "t.npz").write_text("hello"), p / "t.npz")[1], "not a .npz file"),
    (lambda p: (np.save(p / "a.npy", X1), p / "a.npy")[1], "one array"),
    (lambda p: write(p / "f.npz", X=X1), "lacks the array Y"),
    (lambda p: write(p / "f.npz", Y=Y1), "lacks the array X"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, y=Y1), "'y'"),
    (lambda p: write(p / "f.npz", X=X1[0], Y=Y1), "X has shape \\(5, 2\\) but must be 3-D"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1[..., 0]), "Y has shape"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, mask=np.ones(8)), "mask has shape"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1[:5]), "Y has 5 sequences of 5 steps but X has 8 of 5"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1[:, :3]), "Y has 8 sequences of 3 steps"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, mask=np.ones((8, 4))), "mask has 8 sequences of 4 steps"),
    (lambda p: write(p / "f.npz", X=np.where(X1 > 1, np.nan, X1), Y=Y1), "X holds NaN"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, mask=np.full((8, 5), 2.0)), "mask must hold only 0"),
    (lambda p: write(p / "f.npz", X=np.array([[[1]]], dtype=object), Y=Y1), "X holds Python objects"),
    (lambda p: write(p / "f.npz", X=np.full((8, 5, 2), "a"), Y=Y1), "X holds <U1 values"),
    (lambda p: write(p / "f.npz", X=np.zeros((0, 5, 2)), Y=Y1[:0]), "X is empty"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, X_val=X1), "X_val and Y_val go together"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, X_val=X1[..., :1], Y_val=Y1), "X_val has 1 inputs per step but X has 2"),
    (lambda p: write(p / "f.npz", X=X1, Y=Y1, X_val=X1, Y_val=Y1[:2]), "Y_val has 2 sequences"),
])
def test_bad_files_get_one_line_and_exit_2(tmp_path, capsys, make, match):
    code, _, err = run(capsys, "--data", make(tmp_path), "--no-csv")
    one_line(code, err, match)


@pytest.mark.parametrize("args, match", [
    (["--head", "softmax"], "--data .*Y must lie in \\[0, 1\\].*leave out --head: it is inferred as linear"),
    (["--iters", "5"], "--iters does not apply to --data; give --epochs"),
    (["--bits", "4"], "--bits does not apply to --data"),
    (["--log-spectrum"], "--log-spectrum does not apply to --data"),
    (["--task", "digits"], "--task and --data exclude each other"),
    (["--window", "2", "--batch", "3"], "batch must be left out"),
])
def test_bad_arguments_with_data_get_one_line(tmp_path, capsys, args, match):
    rng = np.random.default_rng(0)
    write(tmp_path / "f.npz", X=X1, Y=rng.normal(size=(8, 5, 2)))
    code, _, err = run(capsys, "--data", tmp_path / "f.npz", "--no-csv", *args)
    one_line(code, err, match)


@pytest.mark.parametrize("option", [["--epochs", "2"], ["--window", "3"], ["--no-shuffle"], ["--head", "linear"]])
def test_data_options_without_data_are_refused(capsys, option):
    code, _, err = run(capsys, "--iters", 1, "--no-csv", *option)
    one_line(code, err, "applies only with --data")


def test_data_settings_are_refused_by_train():
    with pytest.raises(fastrnn.InvalidArgument, match="epochs applies only to training on arrays"):
        fastrnn.train(iters=1, epochs=3)


# ------------------------------------------------------------------ fuzz: never a traceback

def _npz_bytes(**arrays_):
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays_)
    return buf.getvalue()


def _zip_bytes(members):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def test_data_reader_never_traces_back():
    """Random bytes, truncated files, foreign zips and arrays of any dtype and shape: one line naming the file."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    good = _npz_bytes(X=X1, Y=Y1)
    shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
    dtypes = st.sampled_from(["float64", "float32", "int8", "bool", "U3", "complex64"])
    content = st.one_of(
        st.binary(max_size=200),
        st.builds(lambda n: good[:n], st.integers(0, len(good) - 1)),
        st.builds(_zip_bytes, st.lists(st.tuples(st.sampled_from(["X.npy", "Y.npy", "a.txt"]), st.binary(max_size=30)),
                                        max_size=2, unique_by=lambda m: m[0])),
        st.builds(lambda sx, sy, d: _npz_bytes(X=np.zeros(sx, dtype=d), Y=np.zeros(sy)), shapes, shapes, dtypes),
        st.builds(lambda v: _npz_bytes(X=X1, Y=np.full_like(Y1, v)), st.sampled_from([np.nan, np.inf, 2.0, -1.0])),
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(content)
    def check(data):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "d.npz"
            path.write_bytes(data)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                with pytest.raises(SystemExit) as info:
                    main(["train", "--data", str(path), "--no-csv", "--epochs", "1"])
            text = err.getvalue()
            if info.value.code == 0:  # a file that happens to be valid (2.0 or -1.0 targets train a linear head)
                return
            lines = text.strip().splitlines()
            assert info.value.code == 2 and len(lines) == 1 and "Traceback" not in text, text
            assert lines[0].startswith("Error: --data") and str(path) in lines[0], lines[0]

    check()
