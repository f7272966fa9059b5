"""Bad or unusual input that once gave wrong results or lost data: each is refused in one
line, repaired without loss, or gives the right number."""

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn.exceptions import InvalidArgument

from conftest import assert_one_line_error, run_cli

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------ resuming onto a damaged CSV

RUN = dict(task="binary", hidden=4, log_every=50)


@pytest.fixture(scope="module")
def halfway(tmp_path_factory):
    """The CSV of a run saved after 4 rows, and that of the same run done in one go to 8."""
    folder = tmp_path_factory.mktemp("halfway")
    fastrnn.train(**RUN, iters=200, csv=folder / "run.csv")
    fastrnn.train(**RUN, iters=400, csv=folder / "whole.csv")
    return folder


def _first_leg(folder):
    """Train the first 4 rows in ``folder`` (run.csv, m.npz); return the CSV's path and bytes."""
    csv = folder / "run.csv"
    fastrnn.train(**RUN, iters=200, csv=csv, save=folder / "m.npz")
    return csv, csv.read_bytes()


def _resume(folder):
    return fastrnn.train(resume=folder / "m.npz", iters=400, csv=folder / "run.csv", save=folder / "m.npz")


def _rows(path):
    return pd.read_csv(path).drop(columns=["elapsed_s"])


@EXAMPLES
@given(cut=st.integers(min_value=1, max_value=300))
def test_resume_onto_a_csv_cut_short_repairs_it_from_the_saved_rows(halfway, cut):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv, text = _first_leg(folder)
        csv.write_bytes(text[: max(len(text) - cut, 0)])
        _resume(folder)
        pd.testing.assert_frame_equal(_rows(csv), _rows(halfway / "whole.csv"), check_exact=True)
        assert csv.read_bytes().startswith(text)  # the earlier rows byte for byte
        assert "rewritten from the 4 rows" in json.loads((folder / "run.json").read_text())["csv_repaired"]


def _unix(text):
    return text.replace(b"\r\n", b"\n").rstrip(b"\n")


@pytest.mark.parametrize("ending", [b"\n", b"", b"\n\n"])
def test_resume_onto_a_csv_saved_again_with_other_line_endings_rewrites_it(halfway, tmp_path, ending):
    csv, text = _first_leg(tmp_path)
    csv.write_bytes(_unix(text) + ending)
    _resume(tmp_path)
    assert csv.read_bytes().startswith(text)
    pd.testing.assert_frame_equal(_rows(csv), _rows(halfway / "whole.csv"), check_exact=True)


def test_resume_onto_a_csv_with_a_row_beyond_the_saved_state_refuses(tmp_path):
    csv, text = _first_leg(tmp_path)
    for extra in (b"250,250,0,0,0,0,0,0.1,0\r\n", b"250,250"):
        csv.write_bytes(text + extra)
        with pytest.raises(InvalidArgument, match="what follows the last row differs"):
            _resume(tmp_path)
        assert csv.read_bytes() == text + extra


@EXAMPLES
@given(keep=st.integers(min_value=0, max_value=60), tail=st.binary(min_size=1, max_size=40))
def test_resume_onto_a_csv_whose_end_differs_refuses_and_leaves_it(keep, tail):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv, text = _first_leg(folder)
        damaged = text[: len(text) - keep] + tail
        if text.startswith(damaged) or _unix(damaged) == _unix(text):  # a cut, or the same rows: repaired
            damaged += b"x"
        csv.write_bytes(damaged)
        with pytest.raises(InvalidArgument, match=r"run\.csv does not end where the saved state does.*give a new --csv"):
            _resume(folder)
        assert csv.read_bytes() == damaged


def test_cli_resume_after_the_csv_lost_its_line_ending_writes_only_whole_rows(tmp_path, capsys):
    csv, model = tmp_path / "h.csv", tmp_path / "h.npz"
    code, _, err = run_cli(capsys, "train", "--task", "binary", "--iters", "300", "--log-every", "100", "--save", model,
                           "--csv", csv, "-q")
    assert code == 0, err
    csv.write_bytes(csv.read_bytes()[:-2])  # the last row loses its "\r\n"
    code, _, err = run_cli(capsys, "train", "--resume", model, "--iters", "500", "-q")
    assert code == 0, err
    assert err.startswith("Note: the run's CSV") and "rewritten from the 3 rows of the saved state" in err
    assert len(err.strip().splitlines()) == 1
    lines = csv.read_bytes().split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 1 + 5 + 1  # header, 5 rows, each ended
    assert {line.count(b",") for line in lines[:-1]} == {8}
    assert pd.read_csv(csv)["iteration"].tolist() == [100, 200, 300, 400, 500]


def test_a_sweep_run_whose_csv_lost_its_last_characters_is_not_reused(tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["sweep", "--task", "binary", "--seeds", "0", "--set", "iters=30", "--set", "log_every=10", "--out", out,
            "--workers", "1", "-q"]
    assert run_cli(capsys, *args)[0] == 0
    csv = out / "binary-seed0.csv"
    csv.write_bytes(csv.read_bytes()[:-4])  # the last field loses digits but the row keeps its fields
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, 2, str(csv), "ends inside a row", "--overwrite")
    code, text, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and csv.read_bytes().endswith(b"\r\n"), err


def test_report_and_plot_refuse_a_run_csv_whose_last_row_is_cut(tmp_path, capsys):
    csv = tmp_path / "runs" / "r.csv"
    fastrnn.train(task="binary", hidden=4, iters=200, log_every=100, csv=csv)
    csv.write_bytes(csv.read_bytes()[:-5])
    for args in (["report", tmp_path / "runs"], ["plot", csv, "--out", tmp_path / "p.png"]):
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, 2, str(csv), "truncated: row 2 has no line ending")


# ------------------------------------------------------------------- sampling temperatures

from fastrnn import text as text_mod  # noqa: E402

logits = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=12).map(np.array)
temperatures = st.one_of(st.floats(min_value=5e-324, max_value=1e-250), st.floats(min_value=1e-3, max_value=1e6))


@EXAMPLES
@given(z=logits, T=temperatures)
def test_next_character_distribution_is_a_distribution_at_any_temperature(z, T):
    with np.errstate(all="raise"):  # no overflow, no NaN on the way
        p = text_mod.next_char_distribution(z, T)
    assert np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1.0) < 1e-12
    assert p[np.argmax(z)] == p.max()
    top = z == z.max()
    if T < 1e-250 and np.min(z.max() - z[~top], initial=np.inf) > 1e-200:  # far below every gap: the limit, arg max
        np.testing.assert_array_equal(p, top / top.sum())
    with np.errstate(over="ignore", invalid="ignore"):
        s = z / T
        spread = np.ptp(s)  # inf or NaN where z / T overflowed
    if spread < 700:  # where the plain formula does not overflow, the same numbers
        plain = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        np.testing.assert_allclose(p, plain, rtol=1e-12, atol=1e-300)


@pytest.fixture(scope="module")
def chars_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("chars") / "chars.npz"
    fastrnn.train(task="text", hidden=16, iters=200, log_every=100, save=path)
    return path


@pytest.mark.parametrize("T", ["1e-308", "5e-324", "1e-200"])
def test_sample_at_a_tiny_temperature_takes_the_most_likely_character(chars_model, capsys, T):
    code, greedy, err = run_cli(capsys, "sample", chars_model, "--temperature", "0", "--length", "60")
    assert code == 0, err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        code, out, err = run_cli(capsys, "sample", chars_model, "--temperature", T, "--length", "60")
    assert code == 0 and err == "", err
    assert out == greedy


@pytest.mark.parametrize("T", ["nan", "inf", "-1"])
def test_sample_refuses_a_temperature_that_is_not_a_finite_number_at_least_zero(chars_model, capsys, T):
    code, _, err = run_cli(capsys, "sample", chars_model, "--temperature", T)
    assert_one_line_error(code, err, 2, "--temperature")


def test_sampling_a_sigmoid_model_with_large_weights_warns_of_nothing(tmp_path, capsys):
    path = tmp_path / "sig.npz"
    result = fastrnn.train(task="text", hidden=8, iters=10, log_every=10, activation="sigmoid")
    result.model.params["W0"][...] *= 1e6  # pre-activations far beyond exp's range
    result.model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        code, out, err = run_cli(capsys, "sample", path, "--length", "20")
    assert code == 0 and err == "" and len(out) == 21, err


# --------------------------------------------------------- only regular files are replaced

import os  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402


def _make_special(path, kind):
    """A named pipe or a socket at ``path`` (what --overwrite must never replace, like /dev/null)."""
    if kind == "fifo":
        os.mkfifo(path)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    return path


def _still_special(path):
    mode = os.lstat(path).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


SPECIAL = ["fifo", "socket"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("target,args", [
    ("m.npz", ["--save", "{}"]),
    ("run.csv", ["--csv", "{}"]),
    ("run.json", ["--csv", "{dir}/run.csv"]),  # the settings file beside the CSV
])
def test_train_overwrite_refuses_to_replace_what_is_not_a_regular_file(tmp_path, capsys, kind, target, args):
    special = _make_special(tmp_path / target, kind)
    args = [a.format(special, dir=tmp_path) for a in args]
    code, _, err = run_cli(capsys, "train", "--task", "binary", "--iters", "10", "--log-every", "10", *args,
                           "--overwrite", "-q", *(["--no-csv"] if "--csv" not in args else []))
    assert_one_line_error(code, err, 2, str(special), "not a regular file")
    assert _still_special(special)


@pytest.mark.parametrize("kind", SPECIAL)
def test_plot_and_paths_overwrite_refuse_what_is_not_a_regular_file(tmp_path, capsys, kind):
    run = tmp_path / "r.csv"
    fastrnn.train(task="binary", hidden=4, iters=20, log_every=10, csv=run)
    png = _make_special(tmp_path / "p.png", kind)
    code, _, err = run_cli(capsys, "plot", run, "--out", png, "--overwrite")
    assert_one_line_error(code, err, 2, str(png), "not a regular file")
    table = _make_special(tmp_path / "curves.csv", kind)
    code, _, err = run_cli(capsys, "paths", "--bits", "4", "--samples", "2", "--out", tmp_path / "ok.png", "--csv", table,
                           "--overwrite")
    assert_one_line_error(code, err, 2, str(table), "not a regular file")
    assert _still_special(png) and _still_special(table) and not (tmp_path / "ok.png").exists()


@pytest.mark.parametrize("name", ["summary.csv", "binary-seed0.csv", "binary-seed0.json"])
def test_sweep_overwrite_refuses_a_run_file_that_is_not_a_regular_file_before_any_run(tmp_path, capsys, name):
    out = tmp_path / "sw"
    out.mkdir()
    special = _make_special(out / name, "fifo")
    code, _, err = run_cli(capsys, "sweep", "--seeds", "0-1", "--set", "iters=10", "--set", "log_every=10", "--out", out,
                           "--workers", "1", "-q", "--overwrite")
    assert_one_line_error(code, err, 2, str(special), "not a regular file", "another --out")
    assert sorted(p.name for p in out.iterdir()) == [name] and _still_special(special)


def test_library_writers_refuse_to_replace_a_pipe_or_a_link_to_one(tmp_path):
    from fastrnn import metrics

    pipe = _make_special(tmp_path / "pipe", "fifo")
    link = tmp_path / "link.npz"
    link.symlink_to(pipe)
    model = fastrnn.RNN(2, 3, 1)
    for path in (pipe, link):
        with pytest.raises(InvalidArgument, match="is a named pipe"):
            model.save(path)
        with pytest.raises(InvalidArgument, match="is a named pipe"):
            metrics.write_json(path, {"a": 1})
        with pytest.raises(InvalidArgument, match="is a named pipe"):
            metrics.write_csv(path, pd.DataFrame({"a": [1]}))
    assert _still_special(pipe) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "pipe"]  # no temporary file left behind


# ------------------------------------------------------- each task's own headline metrics


@pytest.fixture(scope="module")
def text_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "sw"
    result = fastrnn.sweep(task="text", seeds=[0, 1], grid={"lr": [0.1, 0.05]}, out=out, workers=1, iters=100,
                           hidden=8, log_every=50, val_fraction=0.1)
    return result


def _last_rows(out, runs):
    return {run: pd.read_csv(out / f"{run}.csv").iloc[-1] for run in runs}


def test_a_text_runs_json_result_holds_bits_per_character_not_window_accuracy(text_sweep):
    for run in text_sweep.summary["run"]:
        result = json.loads((text_sweep.out / f"{run}.json").read_text())["result"]
        last = pd.read_csv(text_sweep.out / f"{run}.csv").iloc[-1]
        assert result["headline"] == ["bpc", "val_bpc", "char_accuracy"]
        assert (result["final_bpc"], result["final_val_bpc"], result["final_char_accuracy"]) == (
            last["bpc"], last["val_bpc"], last["char_accuracy"])
        assert "final_accuracy" not in result and 0.1 < result["final_char_accuracy"] < 1


def test_a_text_sweeps_summary_csv_has_the_text_metrics(text_sweep):
    summary = pd.read_csv(text_sweep.out / "summary.csv")
    assert list(summary.columns) == ["run", "task", "lr", "seed", "final_bpc", "final_val_bpc", "final_char_accuracy",
                                     "train_seconds", "status", "diverged"]
    for _, row in summary.iterrows():
        last = pd.read_csv(text_sweep.out / f"{row['run']}.csv").iloc[-1]
        assert (row["final_bpc"], row["final_val_bpc"], row["final_char_accuracy"]) == (
            last["bpc"], last["val_bpc"], last["char_accuracy"])


def test_a_text_sweeps_summary_line_ranks_runs_by_bits_per_character(text_sweep):
    from fastrnn.cli import _sweep_summary

    text = _sweep_summary(text_sweep)
    summary = text_sweep.summary
    best = summary.loc[summary["final_bpc"].idxmin()]
    assert "accuracy 1.0" not in text
    assert f"final bpc: median {summary['final_bpc'].median():.4f}, best {best['final_bpc']:.4f} ({best['run']})" in text
    assert "final val_bpc: median" in text and "final char_accuracy: median" in text and "diverged: 0" in text


def test_report_on_text_runs_shows_bits_per_character_and_character_accuracy(text_sweep, capsys):
    code, out, err = run_cli(capsys, "report", text_sweep.out, "--format", "csv")
    assert code == 0, err
    import io

    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["lr", "runs", "final_bpc_mean", "final_bpc_max", "final_val_bpc_mean",
                                   "final_val_bpc_max", "final_char_accuracy_mean", "final_char_accuracy_min",
                                   "train_seconds_median", "diverged"]
    summary = text_sweep.summary
    for _, row in table.iterrows():
        mine = summary[summary["lr"] == row["lr"]]
        assert row["final_bpc_mean"] == pytest.approx(mine["final_bpc"].mean(), rel=1e-12)
        assert row["final_bpc_max"] == pytest.approx(mine["final_bpc"].max(), rel=1e-12)
        assert row["final_char_accuracy_min"] == pytest.approx(mine["final_char_accuracy"].min(), rel=1e-12)


def test_a_sweep_of_two_tasks_scores_each_run_by_its_own_metrics(tmp_path, capsys):
    out = tmp_path / "sw"
    code, text, err = run_cli(capsys, "sweep", "--seeds", "0", "--set", "task=binary,text", "--set", "iters=40",
                              "--set", "log_every=20", "--set", "hidden=4", "--out", out, "--workers", "1", "-q")
    assert code == 0, err
    summary = pd.read_csv(out / "summary.csv").set_index("task")
    assert list(summary.columns[:5]) == ["run", "seed", "final_accuracy", "final_bpc", "final_val_bpc"]
    assert np.isnan(summary.loc["text", "final_accuracy"]) and np.isnan(summary.loc["binary", "final_bpc"])
    assert summary.loc["text", "final_bpc"] > 0 and 0 <= summary.loc["binary", "final_accuracy"] <= 1
    assert "reached accuracy 1.0: " in text and "/1; diverged: 0" in text and "final bpc: median" in text


def test_a_summary_of_runs_recorded_without_their_headline_reads_it_from_the_csv(text_sweep):
    from fastrnn import sweeps

    specs = sweeps.expand("text", [0, 1], {"lr": [0.1, 0.05]}, iters=100, hidden=8, log_every=50, val_fraction=0.1)
    metas = {}
    for spec in specs:
        meta = json.loads((text_sweep.out / f"{spec['name']}.json").read_text())
        meta["result"] = {k: v for k, v in meta["result"].items() if not k.startswith("final_") and k != "headline"}
        metas[spec["name"]] = meta
    again = sweeps.summarize(text_sweep.out, specs, metas=metas)
    pd.testing.assert_frame_equal(again, text_sweep.summary, check_exact=True)


def test_a_fit_on_arrays_records_loss_and_accuracy_with_validation_as_its_headline(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 5, 2)), np.eye(3)[rng.integers(0, 3, (6, 5))]
    csv = tmp_path / "fit.csv"
    fastrnn.fit(fastrnn.RNN(2, 4, 3, head="softmax"), X, Y, epochs=2, validation=(X[:2], Y[:2]), csv=csv)
    result = json.loads(csv.with_suffix(".json").read_text())["result"]
    last = pd.read_csv(csv).iloc[-1]
    assert result["headline"] == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert [result[f"final_{m}"] for m in result["headline"]] == [last[m] for m in result["headline"]]


def test_the_progress_bar_of_a_text_run_shows_bits_per_character(monkeypatch):
    import tqdm

    shown = []
    monkeypatch.setattr(tqdm.tqdm, "set_postfix", lambda self, *a, **kw: shown.append(sorted(kw)))
    fastrnn.train(task="text", hidden=4, iters=20, log_every=10, progress=True)
    assert shown == [["bpc", "loss", "refresh"]] * 2
    shown.clear()
    fastrnn.train(task="binary", hidden=4, iters=20, log_every=10, progress=True)
    assert shown == [["accuracy", "loss", "refresh"]] * 2


# ------------------------------------------------------------- masks and held-out parts


def _arrays(rng, N=6, T=5, I=2, O=3):
    return rng.standard_normal((N, T, I)), np.eye(O)[rng.integers(0, O, (N, T))]


def test_a_validation_mask_of_all_zeros_is_refused_like_a_training_mask(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X, Y = _arrays(rng)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, Y=Y, X_val=X[:2], Y_val=Y[:2], mask_val=np.zeros((2, 5)))
    code, _, err = run_cli(capsys, "train", "--data", data, "--epochs", "1", "--no-csv", "-q")
    assert_one_line_error(code, err, 2, str(data), "mask_val is all zeros", "nothing to score")
    model = fastrnn.RNN(2, 4, 3, head="softmax")
    with pytest.raises(InvalidArgument, match=r"^validation: mask_val is all zeros"):
        fastrnn.fit(model, X, Y, epochs=1, validation=(X[:2], Y[:2], np.zeros((2, 5))))
    with pytest.raises(InvalidArgument, match=r"^mask is all zeros"):
        fastrnn.fit(model, X, Y, np.zeros((6, 5)), epochs=1)


@EXAMPLES
@given(step=st.tuples(st.integers(0, 1), st.integers(0, 4)))
def test_a_validation_mask_with_one_target_scores_that_step(step):
    rng = np.random.default_rng(2)
    X, Y = _arrays(rng)
    mask_val = np.zeros((2, 5))
    mask_val[step] = 1.0
    model = fastrnn.RNN(2, 4, 3, head="softmax", seed=3)
    result = fastrnn.fit(model, X, Y, epochs=1, batch=6, validation=(X[:2], Y[:2], mask_val))
    yhat, _ = model.forward(X[:2])
    right = float(yhat[step].argmax() == Y[:2][step].argmax())
    assert result.rows[-1]["val_accuracy"] == right
    # the loss is a sum over the target steps and a mean over the 2 sequences
    assert result.rows[-1]["val_loss"] == pytest.approx(-np.log(yhat[step][Y[:2][step].argmax()]) / 2, rel=1e-12)


@pytest.fixture(scope="module")
def text_lengths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("texts")
    paths = {}
    for n in (40, 97, 1000, 4468, 30011):
        paths[n] = folder / f"t{n}.txt"
        paths[n].write_text(("abcde fgh\n" * (n // 10 + 1))[:n])
    return paths


@EXAMPLES
@given(n=st.sampled_from([40, 97, 1000, 4468, 30011]), fraction=st.floats(min_value=0.0, max_value=0.5))
def test_any_val_fraction_either_holds_out_a_scorable_part_or_is_refused_with_one_that_does(text_lengths, n, fraction):
    from fastrnn.text import read_text

    path = text_lengths[n]
    try:
        text = read_text(path, seq_length=3, val_fraction=fraction)
    except InvalidArgument as exc:
        message = str(exc)
        assert fraction > 0 and int(np.floor(fraction * n)) < 2 and "\n" not in message
        suggested = float(message.split("--val-fraction ")[1].split()[0])
        assert len(read_text(path, seq_length=3, val_fraction=suggested).val_ids) >= 2
        assert suggested <= 2 / n * 1.01  # the smallest 3-digit fraction that does, near 2 characters' share
    else:
        assert len(text.val_ids) == 0 if fraction == 0 else len(text.val_ids) >= 2


@pytest.mark.parametrize("fraction", ["0.0001", "0.0003"])
def test_cli_refuses_a_val_fraction_that_holds_out_too_little_to_score(capsys, tmp_path, fraction):
    csv = tmp_path / "t.csv"
    code, _, err = run_cli(capsys, "train", "--task", "text", "--val-fraction", fraction, "--iters", "10", "--csv", csv)
    assert_one_line_error(code, err, 2, f"val_fraction {fraction}", "--val-fraction 0.000448 or more")
    assert not csv.exists() and not csv.with_suffix(".json").exists()


# ------------------------------------------------------------------ the inferred head

from fastrnn import fitting  # noqa: E402


@EXAMPLES
@given(N=st.integers(1, 6), T=st.integers(1, 5), O=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
       padding=st.floats(0.0, 0.7))
def test_one_hot_targets_with_padding_steps_infer_softmax_only_when_the_mask_hides_the_padding(N, T, O, seed, padding):
    rng = np.random.default_rng(seed)
    Y = np.eye(O)[rng.integers(0, O, (N, T))]
    mask = (rng.random((N, T)) >= padding).astype(float)
    mask.flat[rng.integers(0, N * T)] = 1.0  # one target at least
    Y[mask == 0] = 0.0  # padding steps: all-zero rows
    assert fitting.infer_head(Y, mask) == "softmax"
    if (mask == 0).any():
        with pytest.raises(InvalidArgument, match=r"cannot be inferred.*one-hot except \d+ all-zero row.*--head softmax"):
            fitting.infer_head(Y)
    else:
        assert fitting.infer_head(Y) == "softmax"


@pytest.mark.parametrize("Y, head", [
    ([[[1, 0], [0, 0]], [[1, 1], [0, 0]]], "sigmoid"),  # a step with two labels: multi-label, zero rows or not
    ([[[0, 0], [0, 0]]], "sigmoid"),
    ([[[0.2, 0.8], [0.5, 0.5]]], None),  # distributions: softmax or linear
    ([[[0.2, 0.7], [0.5, 0.5]]], "linear"),
    ([[[0.5], [1.0]]], "linear"),  # a single output is never a distribution
])
def test_targets_that_fit_one_head_infer_it_and_those_that_fit_two_are_refused(Y, head):
    Y = np.array(Y, dtype=float)
    if head is None:
        with pytest.raises(InvalidArgument, match="cannot be inferred.*pass --head softmax or --head linear"):
            fitting.infer_head(Y)
    else:
        assert fitting.infer_head(Y) == head


def test_cli_names_the_inferred_head_and_refuses_ambiguous_targets(tmp_path, capsys):
    rng = np.random.default_rng(5)
    X, Y = _arrays(rng)
    Y[0, 4] = 0.0  # one padding step
    mask = np.ones((6, 5))
    mask[0, 4] = 0.0
    bare, masked = tmp_path / "bare.npz", tmp_path / "masked.npz"
    np.savez(bare, X=X, Y=Y)
    np.savez(masked, X=X, Y=Y, mask=mask)
    code, _, err = run_cli(capsys, "train", "--data", bare, "--epochs", "1", "--no-csv", "-q")
    assert_one_line_error(code, err, 2, str(bare), "cannot be inferred", "pass --head softmax", "--head sigmoid")
    code, out, err = run_cli(capsys, "train", "--data", masked, "--epochs", "1", "--csv", tmp_path / "m.csv", "-q")
    assert code == 0 and "with the softmax head, inferred from Y;" in out, err
    assert json.loads((tmp_path / "m.json").read_text())["head_inferred"] is True
    code, out, err = run_cli(capsys, "train", "--data", bare, "--head", "sigmoid", "--epochs", "1", "--no-csv", "-q")
    assert code == 0 and "with the sigmoid head;" in out, err
    code, _, err = run_cli(capsys, "train", "--data", bare, "--head", "softmax", "--epochs", "1", "--no-csv", "-q")
    assert_one_line_error(code, err, 2, "must be one-hot")
    assert "leave out --head" not in err  # no head to fall back on


@pytest.mark.parametrize("args", [
    ["train", "--task", "text", "--text", "{}", "--iters", "1", "--no-csv"],
    ["train", "--data", "{}", "--epochs", "1", "--no-csv"],
    ["sample", "{}"],
    ["eval", "{}"],
])
def test_an_input_file_that_is_a_pipe_is_refused_not_read_forever(tmp_path, capsys, args):
    pipe = _make_special(tmp_path / "in", "fifo")
    code, _, err = run_cli(capsys, *[a.format(pipe) for a in args])
    assert_one_line_error(code, err, 2, str(pipe), "is a named pipe (FIFO), not a regular file")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_held_out_loss_stays_finite_where_the_probability_of_the_target_underflows(dtype):
    # h = tanh(0) = 0 at every step, so z = c: p(1) = 1 / (1 + e^-1000), p(0) = e^-1000 / (1 + e^-1000),
    # which is 0 in floating point; -ln p(0) = 1000 + ln(1 + e^-1000) = 1000 to double precision
    model = fastrnn.RNN(2, 1, 2, head="softmax", dtype=dtype)
    model.theta[:] = 0.0
    model.params["c"][...] = [0.0, 1000.0]
    ids = np.array([0, 1, 0, 0, 1, 1, 0])
    targets = ids[1:]
    scores = text_mod.evaluate(model, ids, chunk=4)
    assert scores["loss_per_char"] == pytest.approx(1000.0 * np.mean(targets == 0), rel=1e-15)
    assert scores["char_accuracy"] == np.mean(targets == 1)


def test_a_resumed_fit_repairs_its_csv_cut_short_too(tmp_path):
    rng = np.random.default_rng(4)
    X, Y = _arrays(rng)
    whole = tmp_path / "whole.csv"
    fastrnn.fit(fastrnn.RNN(2, 4, 3, head="softmax", seed=1), X, Y, epochs=4, batch=2, log_every=2, csv=whole)
    csv, model = tmp_path / "run.csv", tmp_path / "m.npz"
    fastrnn.fit(fastrnn.RNN(2, 4, 3, head="softmax", seed=1), X, Y, epochs=2, batch=2, log_every=2, csv=csv, save=model)
    csv.write_bytes(csv.read_bytes()[:-7])
    fastrnn.fit(None, X, Y, epochs=4, resume=model, csv=csv, save=model)
    pd.testing.assert_frame_equal(_rows(csv), _rows(whole), check_exact=True)


@pytest.mark.parametrize("column", ["epoch", "val_loss", "val_accuracy"])
def test_report_refuses_a_fit_csv_whose_own_columns_hold_text(tmp_path, capsys, column):
    rng = np.random.default_rng(6)
    X, Y = _arrays(rng)
    csv = tmp_path / "runs" / "fit.csv"
    fastrnn.fit(fastrnn.RNN(2, 4, 3, head="softmax"), X, Y, epochs=2, validation=(X[:2], Y[:2]), csv=csv)
    frame = pd.read_csv(csv)
    frame[column] = frame[column].astype(object)
    frame.loc[len(frame) - 1, column] = "abc"
    frame.to_csv(csv, index=False)
    for args in (["report", tmp_path / "runs"], ["plot", csv, "--out", tmp_path / "p.png"]):
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, 2, str(csv), f"column {column} holds text")


def test_sampling_a_model_whose_scores_overflow_to_nan_is_reported_not_printed(tmp_path, capsys):
    model = fastrnn.RNN(3, 2, 3, activation="relu", head="softmax")
    model.theta[:] = 0.0
    model.params["U0"][...] = 1e200  # the first step: h = 1e200 in both units
    model.params["W0"][...] = np.eye(2) * 1e200  # the second: h = relu(1e400) = inf
    model.params["V"][...] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]  # then 0 * inf = NaN in every score
    model.metadata = {"vocab": "abc"}
    path = tmp_path / "huge.npz"
    model.save(path)
    for extra, drawn in (([], "2 characters"), (["--temperature", "0"], "2 characters"), (["--prime", "a"], "1 character ")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow warning on the way either
            code, out, err = run_cli(capsys, "sample", path, "--length", "5", *extra)
        assert_one_line_error(code, err, 1, f"scores became NaN after {drawn}")
        # the sample streams as it is drawn: only the prime went out before the NaN, no character drawn from it
        assert out == ("a" if "--prime" in extra else "")
