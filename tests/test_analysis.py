"""Path-length gradients, spectra, Jacobian products, plots and reports."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from conftest import make_data
from fastrnn.cli import main
from conftest import run_cli as run


def is_png(path):
    import matplotlib.image

    data = open(path, "rb").read(8)
    image = matplotlib.image.imread(path)
    return data == b"\x89PNG\r\n\x1a\n" and image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# ------------------------------------------------------------------------ library


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "softsign"])
def test_path_gradients_sum_to_the_full_gradient(rng, layers, activation):
    model = fastrnn.RNN(3, 6, 4, layers=layers, activation=activation, seed=2, init_scale=0.7)
    X, Y, mask = make_data(rng, 3, 9, 3, 4, "softmax", masked=True)
    G = fastrnn.path_gradients(model, X, Y, mask)
    _, full = model.loss_and_grads(X, Y, mask=mask)
    assert set(G) == {f"{p}{l}" for l in range(layers) for p in "UWb"}
    for name, parts in G.items():
        assert parts.shape == (9,) + full[name].shape
        np.testing.assert_allclose(parts.sum(axis=0), full[name], rtol=1e-10, atol=1e-15)


def test_path_gradients_up_to_K_are_the_truncated_gradient(rng):
    model = fastrnn.RNN(2, 5, 2, layers=2, head="linear", seed=3)
    X, Y, _ = make_data(rng, 2, 8, 2, 2, "linear")
    G = fastrnn.path_gradients(model, X, Y)
    for K in (0, 1, 4):
        _, trunc = model.loss_and_grads(X, Y, bptt_truncate=K)
        for name, parts in G.items():
            np.testing.assert_allclose(parts[: K + 1].sum(axis=0), trunc[name], rtol=1e-10, atol=1e-15)


def test_path_gradients_max_length(rng):
    model = fastrnn.RNN(2, 4, 2, seed=0)
    X, Y, _ = make_data(rng, 2, 10, 2, 2, "softmax")
    G = fastrnn.path_gradients(model, X, Y, max_length=3)
    assert G["W0"].shape == (4, 4, 4)
    np.testing.assert_allclose(G["W0"], fastrnn.path_gradients(model, X, Y)["W0"][:4], rtol=1e-14)


def test_sigmoid_gradients_vanish_along_the_path():
    """Vanishing gradients: with sigmoid units, mean |G_p| falls geometrically with p."""
    task = fastrnn.BinaryAddition(20)
    data = task.sample(np.random.default_rng(0), 32)
    model = fastrnn.RNN(2, 16, 1, activation="sigmoid", head="sigmoid", seed=0, init_scale=1.0)
    profile = fastrnn.path_profile(fastrnn.path_gradients(model, data.X, data.Y))
    assert profile[15] < 1e-6 * profile[0]
    assert np.all(np.diff(np.log(profile[:15])) < 0.5)  # mostly shrinking


def test_spectrum_of_the_material_matrix():
    W = np.array([[0.58, 0.24], [0.24, 0.72]])
    spec = fastrnn.spectrum(W)
    np.testing.assert_allclose(spec.eigenvalues, [0.9, 0.4], rtol=1e-12)
    assert spec.spectral_radius == pytest.approx(0.9, rel=1e-12)
    np.testing.assert_allclose(spec.singular_values, np.linalg.svd(W, compute_uv=False), rtol=1e-12)
    # the classic exercise: W^30 through the eigendecomposition, and its size set by 0.9^30
    vals, vecs = np.linalg.eigh(W)
    W30 = vecs @ np.diag(vals**30) @ vecs.T
    np.testing.assert_allclose(W30, np.linalg.matrix_power(W, 30), rtol=1e-10)
    assert np.linalg.norm(W30, 2) == pytest.approx(0.9**30, rel=1e-10)


def test_spectrum_refuses_a_non_square_matrix():
    with pytest.raises(fastrnn.InvalidArgument, match="must be a non-empty square matrix"):
        fastrnn.spectrum(np.zeros((2, 3)))


def test_jacobian_norms_of_one_step_match_a_hand_computation(rng):
    model = fastrnn.RNN(2, 3, 1, activation="tanh", head="sigmoid", seed=1)
    X = rng.standard_normal((1, 2, 2))
    _, hs = model.forward(X)
    W = model.params["W0"]
    J0 = (1 - hs[0, 0, 0] ** 2)[:, None] * W
    J1 = (1 - hs[0, 0, 1] ** 2)[:, None] * W
    norms = fastrnn.jacobian_norms(model, X)
    assert norms[0] == pytest.approx((np.linalg.norm(J0, 2) + np.linalg.norm(J1, 2)) / 2, rel=1e-12)
    assert norms[1] == pytest.approx(np.linalg.norm(J1 @ J0, 2), rel=1e-12)


def test_training_with_log_spectrum_adds_the_columns(tmp_path):
    result = fastrnn.train(iters=600, log_every=200, log_spectrum=True, csv=tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv")
    assert "spectral_radius" in frame and [f"path_grad_{p}" for p in range(8)] == [c for c in frame if c.startswith("path_grad_")]
    radius = fastrnn.spectrum(result.model.params["W0"]).spectral_radius
    assert frame["spectral_radius"].iloc[-1] == pytest.approx(radius, rel=1e-12)


# ---------------------------------------------------------------------------- CLI


def test_gradcheck_command_passes_and_explains_truncation(capsys):
    code, out, err = run(capsys, "gradcheck", "--layers", "2", "--activation", "sigmoid", "--bptt-truncate", "2")
    assert code == 0, out + err
    assert "full BPTT against central differences" in out and "is not the gradient of the loss" in out
    assert out.count("pass") >= 14 and "FAIL" not in out


def test_gradcheck_command_on_a_task(capsys):
    code, out, _ = run(capsys, "gradcheck", "--task", "digits", "--hidden", "4")
    assert code == 0 and "all gradients pass" in out


def test_gradcheck_command_exits_1_on_a_wrong_gradient(capsys, monkeypatch):
    real = fastrnn.RNN.loss_and_grads

    def wrong(self, *args, **kwargs):
        loss, grads = real(self, *args, **kwargs)
        grads["W0"] = grads["W0"] * 1.01
        return loss, grads

    monkeypatch.setattr(fastrnn.RNN, "loss_and_grads", wrong)
    code, out, _ = run(capsys, "gradcheck")
    assert code == 1 and "FAIL" in out and "some gradients FAIL" in out


def test_paths_command_writes_png_and_csv(capsys, tmp_path):
    out_png, out_csv = tmp_path / "paths.png", tmp_path / "paths.csv"
    code, out, err = run(capsys, "paths", "--activation", "tanh,sigmoid", "--bits", "10", "--samples", "8",
                         "--out", str(out_png), "--csv", str(out_csv))
    assert code == 0, err
    assert is_png(out_png)
    frame = pd.read_csv(out_csv)
    assert sorted(frame["label"].unique()) == ["sigmoid (untrained)", "tanh (untrained)"]
    assert frame.groupby("label")["path_length"].max().tolist() == [9, 9]


def test_paths_command_on_saved_checkpoints(capsys, tmp_path):
    for iters in (100, 2000):
        fastrnn.train(iters=iters, save=tmp_path / f"m{iters}.npz")
    code, out, err = run(capsys, "paths", str(tmp_path / "m100.npz"), str(tmp_path / "m2000.npz"), "--out", str(tmp_path / "p.png"))
    assert code == 0, err
    assert "m100.npz: mean |G_p|" in out and "m2000.npz: mean |G_p|" in out


def test_spectrum_command(capsys, tmp_path):
    path = tmp_path / "m.npz"
    fastrnn.train(iters=200, save=path)
    code, out, err = run(capsys, "spectrum", str(path), "--samples", "4")
    assert code == 0, err
    radius = fastrnn.spectrum(fastrnn.RNN.load(path).params["W0"]).spectral_radius
    assert f"spectral radius {radius:.4f}" in out
    assert out.count("  k=") == 8


def test_plot_command_overlays_runs(capsys, tmp_path):
    paths = []
    for lr in (0.1, 0.3):
        r = fastrnn.train(iters=300, lr=lr, log_every=50, csv=tmp_path / f"lr{lr}.csv", log_spectrum=lr == 0.1)
        paths.append(str(r.csv_path))
    code, out, err = run(capsys, "plot", *paths, "--out", str(tmp_path / "curves.png"))
    assert code == 0, err
    assert is_png(tmp_path / "curves.png")


@pytest.fixture
def runs_folder(tmp_path):
    folder = tmp_path / "runs"
    for lr in (0.1, 0.5):
        for seed in (0, 1):
            fastrnn.train(iters=3000, lr=lr, seed=seed, log_every=500, csv=folder / f"lr{lr}-s{seed}.csv")
    return folder


def test_report_groups_real_runs(capsys, runs_folder):
    code, out, err = run(capsys, "report", str(runs_folder), "--by", "lr", "--format", "csv")
    assert code == 0, err
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert frame["lr"].tolist() == [0.1, 0.5] and frame["runs"].tolist() == [2, 2]
    for lr, group in ((0.1, "lr0.1"), (0.5, "lr0.5")):
        finals = [pd.read_csv(runs_folder / f"{group}-s{s}.csv")["accuracy"].iloc[-1] for s in (0, 1)]
        row = frame[frame["lr"] == lr].iloc[0]
        assert row["final_accuracy_mean"] == pytest.approx(np.mean(finals))
        assert row["final_accuracy_min"] == pytest.approx(min(finals))
        metas = [json.loads((runs_folder / f"{group}-s{s}.json").read_text()) for s in (0, 1)]
        assert row["train_seconds_median"] == pytest.approx(np.median([m["result"]["train_seconds"] for m in metas]))
    code, out, _ = run(capsys, "report", str(runs_folder))  # default grouping: the settings that vary
    assert code == 0 and out.splitlines()[0].split()[0] == "lr"
    code, out, _ = run(capsys, "report", str(runs_folder), "--format", "markdown")
    assert out.startswith("| lr |")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["report", "{tmp}/nowhere"], "is not a folder"),
        (["report", "{tmp}/empty"], "holds no run CSV files"),
        (["report", "{tmp}/bad"], "is not a fastrnn metrics CSV"),
        (["report", "{tmp}/nojson"], "has no settings file"),
        (["report", "{tmp}/good", "--by", "colour"], "--by colour is not a run setting"),
        (["plot", "{tmp}/missing.csv", "--out", "{tmp}/x.png"], "does not exist"),
        (["plot", "{tmp}/bad/run.csv", "--out", "{tmp}/x.png"], "is not a fastrnn metrics CSV"),
        (["plot", "{tmp}/good/run.csv", "--out", "{tmp}/x.pdf"], "must end in .png"),
        (["paths", "--activation", "tanh,swish", "--out", "{tmp}/x.png"], "give a comma-separated list of tanh, sigmoid, relu"),
        (["paths", "{tmp}/bad/run.csv", "--out", "{tmp}/x.png"], "not a readable fastrnn model"),
        (["spectrum", "{tmp}/missing.npz"], "does not exist"),
    ],
)
def test_bad_analysis_input(capsys, tmp_path, args, fragment):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.csv").write_text("a,b\n1,2\n")
    (tmp_path / "nojson").mkdir()
    fastrnn.train(iters=20, csv=tmp_path / "good" / "run.csv")
    fastrnn.train(iters=20, csv=tmp_path / "nojson" / "run.csv")
    (tmp_path / "nojson" / "run.json").unlink()
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], err
