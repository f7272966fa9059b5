"""The gated cells on the command line: train --cell, gradcheck --cell, paths --cell, sweeps over
cells, and one line for each bad cell option."""

import pandas as pd
import pytest

import fastrnn
from test_cli import assert_one_line_error, run


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_train_cell_records_it_everywhere(capsys, tmp_path, cell):
    csv, model_path = tmp_path / "r.csv", tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--cell", cell, "--iters", "200", "--log-every", "100", "--csv", str(csv),
                         "--save", str(model_path))
    assert code == 0, err
    assert fastrnn.RNN.load(model_path).cell == cell
    _, info = fastrnn.read_run(csv)
    settings = info.get("settings", info)
    assert settings["cell"] == cell and settings["activation"] == "tanh"  # the task's sigmoid default is the rnn's


def test_train_cell_refuses_an_explicit_activation(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--cell", "gru", "--activation", "relu", "--no-csv")
    assert_one_line_error(code, err, 2, "activation='relu' applies to cell='rnn' only")


def test_train_cell_refuses_log_spectrum(capsys):
    code, _, err = run(capsys, "train", "--cell", "lstm", "--log-spectrum", "--no-csv")
    assert_one_line_error(code, err, 2, "log_spectrum needs the vanilla cell")


def test_train_bad_cell_is_one_line(capsys):
    code, _, err = run(capsys, "train", "--cell", "transformer", "--no-csv")
    assert code == 2 and "transformer" in err and "Traceback" not in err


def test_sweep_over_cells(tmp_path):
    result = fastrnn.sweep(task="binary", seeds=[0, 1], grid={"cell": ["rnn", "gru", "lstm"]}, out=tmp_path / "sweep",
                           workers=1, iters=200, log_every=100)
    assert sorted(result.summary["cell"]) == ["gru", "gru", "lstm", "lstm", "rnn", "rnn"]
    assert result.summary["final_accuracy"].notna().all()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradcheck_cell_passes(capsys, cell):
    code, out, err = run(capsys, "gradcheck", "--cell", cell, "--layers", "2", "--bptt-truncate", "1")
    assert code == 0, err
    assert "all gradients pass" in out and f"cell='{cell}'" in out
    assert "bn0" in out if cell == "gru" else "bn0" not in out


def test_paths_draws_the_cells_side_by_side(capsys, tmp_path):
    png, csv = tmp_path / "p.png", tmp_path / "p.csv"
    code, out, err = run(capsys, "paths", "--cell", "rnn,gru,lstm", "--bits", "6", "--samples", "4", "--out", str(png),
                         "--csv", str(csv))
    assert code == 0, err
    frame = pd.read_csv(csv)
    assert sorted(set(frame["label"])) == ["gru (untrained)", "lstm (untrained)", "rnn sigmoid (untrained)"]
    assert png.stat().st_size > 0


def test_paths_bad_cell_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "paths", "--cell", "rnn,elman", "--out", str(tmp_path / "x.png"))
    assert_one_line_error(code, err, 2, "give a comma-separated list of rnn, gru, lstm")


def test_vectorized_gated_runs_equal_runs_of_their_own(tmp_path):
    """Seeds of a gated cell trained together in one parallel kernel give the numbers of separate runs."""
    common = dict(task="binary", seeds=[0, 1], grid={"cell": ["gru", "lstm"]}, workers=1, iters=200, log_every=100,
                  bits=4, hidden=4)
    together = fastrnn.sweep(out=tmp_path / "a", vectorize=True, **common)
    alone = fastrnn.sweep(out=tmp_path / "b", vectorize=False, **common)
    for run in together.summary["run"]:
        a = pd.read_csv(tmp_path / "a" / f"{run}.csv")
        b = pd.read_csv(tmp_path / "b" / f"{run}.csv")
        assert a["loss"].tolist() == b["loss"].tolist(), run


def test_a_config_key_with_a_line_separator_stays_one_line(capsys, tmp_path):
    """Found by test_readers_fuzz: str.splitlines also breaks at \\x1e, so the message must not carry it."""
    import json

    import numpy as np

    path = tmp_path / "m.npz"
    model = fastrnn.RNN(2, 3, 1, head="sigmoid", cell="gru")
    meta = dict(format="fastrnn-model", version=1, config={**model.config(), "\x1e": 1}, metadata={})
    with open(path, "wb") as fh:
        np.savez(fh, theta=model.theta, meta=np.array(json.dumps(meta)))
    code, _, err = run(capsys, "spectrum", str(path))
    assert_one_line_error(code, err, code, "has an invalid architecture")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("truncate", [None, 1])
def test_fit_windows_carry_h_and_c(cell, truncate):
    """fit's windows carry the whole state (the LSTM's (h, c)): the same weights as a Python loop of
    loss_and_grads(h0=state, return_state=True) + SGD, from zeros at each epoch's start."""
    import numpy as np

    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 12, 3))
    Y = np.eye(4)[rng.integers(0, 4, (3, 12))]
    a, b = (fastrnn.RNN(3, 5, 4, cell=cell, seed=0) for _ in range(2))
    fastrnn.fit(a, X, Y, epochs=2, window=4, optimizer="sgd", lr=0.1, clip=None, bptt_truncate=truncate)
    opt = fastrnn.Optimizer("sgd", lr=0.1)
    for _ in range(2):
        state = None
        for t0 in range(0, 12, 4):
            w = slice(t0, t0 + 4)
            _, grads, state = b.loss_and_grads(X[:, w], Y[:, w], bptt_truncate=truncate, h0=state, return_state=True)
            opt.step(b, grads)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=0)


def test_train_data_takes_cell(capsys, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 10, 2))
    np.savez(tmp_path / "d.npz", X=X, Y=(X[:, :, :1] > 0).astype(float))
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "d.npz"), "--cell", "lstm", "--window", "5",
                         "--epochs", "2", "--save", str(tmp_path / "m.npz"), "--no-csv")
    assert code == 0, err
    assert fastrnn.RNN.load(tmp_path / "m.npz").cell == "lstm"


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_text_resume_with_a_gated_cell_equals_one_run(tmp_path, cell):
    """The text task carries the state across windows; a resumed LSTM run restores (h, c) with it."""
    import numpy as np

    case = dict(task="text", log_every=20, hidden=6, batch=2, seq_length=8, cell=cell)
    whole = fastrnn.train(iters=80, **case)
    fastrnn.train(iters=40, save=tmp_path / "m.npz", **case)
    resumed = fastrnn.train(resume=tmp_path / "m.npz", iters=80)
    assert resumed.model.cell == cell
    assert np.array_equal(resumed.model.theta, whole.model.theta)
