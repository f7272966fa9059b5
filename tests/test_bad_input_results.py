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


@EXAMPLES
@given(keep=st.integers(min_value=0, max_value=60), tail=st.binary(min_size=1, max_size=40))
def test_resume_onto_a_csv_whose_end_differs_refuses_and_leaves_it(keep, tail):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv, text = _first_leg(folder)
        damaged = text[: len(text) - keep] + tail
        if text.startswith(damaged):  # a beginning of the text is a cut, repaired (above)
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
        assert_one_line_error(code, err, 2, str(csv), "truncated", "no line ending")


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
    with np.errstate(over="ignore"):
        s = z / T
    if np.ptp(s) < 700:  # where the plain formula does not overflow, the same numbers
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
