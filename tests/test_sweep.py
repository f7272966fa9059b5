"""fastrnn.sweep: grid expansion, files, identical numbers however runs execute, resume."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import sweeps
from fastrnn.cli import main

TIME_COLUMNS = ["train_seconds"]


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


# ------------------------------------------------------------------------ grid


def test_parse_seeds():
    assert sweeps.parse_seeds("0-3") == [0, 1, 2, 3]
    assert sweeps.parse_seeds("5") == [5]
    assert sweeps.parse_seeds("0-2,7,1") == [0, 1, 2, 7]


@pytest.mark.parametrize("text,fragment", [("3-1", "runs backwards"), ("a", "write seeds as"), ("-4", "write seeds as"), ("", "write seeds as")])
def test_bad_seeds(text, fragment):
    with pytest.raises(fastrnn.InvalidArgument, match=fragment):
        sweeps.parse_seeds(text)


def test_parse_set_converts_by_option_type():
    assert sweeps.parse_set("lr=0.05,0.1") == ("lr", [0.05, 0.1])
    assert sweeps.parse_set("hidden=8,16") == ("hidden", [8, 16])
    assert sweeps.parse_set("activation=tanh,relu") == ("activation", ["tanh", "relu"])
    assert sweeps.parse_set("bptt-truncate=none,2") == ("bptt_truncate", [None, 2])
    assert sweeps.parse_set("init_scale=fan_in,0.5") == ("init_scale", ["fan_in", 0.5])


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("colour=red", "'colour' is not a train option"),
        ("lr", "write NAME=V1,V2"),
        ("lr=", "write NAME=V1,V2"),
        ("hidden=8,big", "hidden needs an integer"),
        ("lr=fast", "lr needs a number"),
        ("seed=1,2", "give seeds with --seeds"),
    ],
)
def test_bad_set(text, fragment):
    with pytest.raises(fastrnn.InvalidArgument, match=fragment):
        sweeps.parse_set(text)


def test_expand_builds_every_combination_for_every_seed():
    specs = sweeps.expand("binary", [0, 1, 2], {"lr": [0.05, 0.1], "hidden": [8, 16]}, iters=100)
    assert len(specs) == 12
    names = [s["name"] for s in specs]
    assert len(set(names)) == 12 and "binary-lr0.05-hidden8-seed0" in names
    assert all(s["settings"]["iters"] == 100 for s in specs)


@pytest.mark.parametrize(
    "grid,fixed,fragment",
    [
        ({"lr": [0.1, -1.0]}, {}, "sweep setting lr=-1.0: lr must be positive"),
        ({"hidden": [8, 0]}, {}, "hidden=0: hidden must be at least 1"),
        ({"optimizer": ["sgd", "lbfgs"]}, {}, "optimizer must be one of"),
        ({"colour": [1, 2]}, {}, "'colour' is not a train option"),
        ({}, {"digits": 3}, "digits and encoding belong to the digits task"),
        ({"lr": []}, {}, "must be a non-empty list"),
    ],
)
def test_bad_grids_are_refused_before_any_run(tmp_path, grid, fixed, fragment):
    with pytest.raises(fastrnn.InvalidArgument, match=fragment):
        fastrnn.sweep(task="binary", seeds=[0], grid=grid, out=tmp_path / "out", **fixed)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------- runs


def small_sweep(out, **kwargs):
    return fastrnn.sweep(task="binary", seeds=range(3), grid={"lr": [0.1, 0.3]}, out=out, iters=1500, log_every=500, **kwargs)


def test_sweep_writes_runs_and_summary(tmp_path):
    result = small_sweep(tmp_path / "sw", workers=1)
    assert result.ran == 6 and result.skipped == 0
    summary = pd.read_csv(tmp_path / "sw" / "summary.csv")
    assert list(summary.columns) == ["run", "task", "lr", "seed", "final_accuracy", "first_perfect_iteration", "train_seconds", "status", "diverged"]
    assert len(summary) == 6 and set(summary["lr"]) == {0.1, 0.3}
    for row in summary.itertuples():
        frame = pd.read_csv(tmp_path / "sw" / f"{row.run}.csv")
        meta = json.loads((tmp_path / "sw" / f"{row.run}.json").read_text())
        assert frame["iteration"].tolist() == [500, 1000, 1500]
        assert row.final_accuracy == frame["accuracy"].iloc[-1]
        assert meta["seed"] == row.seed and meta["lr"] == row.lr and meta["status"] == "completed"
    # each run is the run fastrnn.train would make alone
    alone = fastrnn.train(iters=1500, log_every=500, lr=0.3, seed=2)
    frame = pd.read_csv(tmp_path / "sw" / "binary-lr0.3-seed2.csv")
    pd.testing.assert_frame_equal(frame.drop(columns="elapsed_s"), alone.history.drop(columns="elapsed_s"), check_dtype=False)


def test_pool_sequential_vectorized_and_dask_give_identical_numbers(tmp_path):
    distributed = pytest.importorskip("distributed")
    outcomes = {"seq": small_sweep(tmp_path / "seq", workers=1).summary,
                "pool": small_sweep(tmp_path / "pool", workers=2, vectorize=False).summary,
                "vec": small_sweep(tmp_path / "vec", workers=2, vectorize=True).summary}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True) as cluster:
        outcomes["dask"] = small_sweep(tmp_path / "dask", scheduler=cluster.scheduler_address).summary
    sequential = outcomes.pop("seq")
    for where, other in outcomes.items():
        pd.testing.assert_frame_equal(sequential.drop(columns=TIME_COLUMNS), other.drop(columns=TIME_COLUMNS), obj=where)
        for row in sequential.itertuples():
            a = pd.read_csv(tmp_path / "seq" / f"{row.run}.csv").drop(columns="elapsed_s")
            b = pd.read_csv(tmp_path / where / f"{row.run}.csv").drop(columns="elapsed_s")
            pd.testing.assert_frame_equal(a, b, obj=f"{where} {row.run}")


def test_train_many_equals_separate_runs():
    from fastrnn.training import can_train_together, train_many

    settings = [dict(task="binary", seed=s, iters=700, log_every=100, lr=0.2) for s in range(3)]
    assert can_train_together(settings[0])
    assert not can_train_together(dict(task="digits"))  # its products go to BLAS
    for s, together in zip(settings, train_many(settings)):
        alone = fastrnn.train(**s)
        pd.testing.assert_frame_equal(together.history.drop(columns="elapsed_s"), alone.history.drop(columns="elapsed_s"))
        np.testing.assert_array_equal(together.model.theta, alone.model.theta)
        assert together.first_perfect_iteration == alone.first_perfect_iteration


def test_train_many_refuses_spectrum_logging():
    from fastrnn.training import train_many

    with pytest.raises(fastrnn.InvalidArgument, match="does not log spectra"):
        train_many([dict(task="binary", seed=0, log_spectrum=True), dict(task="binary", seed=1, log_spectrum=True)])


def test_train_many_records_a_diverging_run_and_trains_the_rest():
    from fastrnn.training import train_many

    base = dict(task="binary", iters=300, log_every=50, activation="relu", optimizer="sgd")
    results = train_many([dict(base, seed=0, lr=1e300), dict(base, seed=1, lr=0.1)])
    assert results[0].status == "diverged" and results[0].iterations < 300
    assert results[1].status == "completed" and results[1].iterations == 300
    alone = fastrnn.train(**dict(base, seed=1, lr=0.1))
    np.testing.assert_array_equal(results[1].model.theta, alone.model.theta)


def test_resume_skips_finished_runs_and_does_only_the_rest(tmp_path, monkeypatch):
    out = tmp_path / "sw"
    real = sweeps.run_one
    calls = []

    def interrupted(spec):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(spec["name"])
        return real(spec)

    monkeypatch.setattr(sweeps, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        small_sweep(out, workers=1)
    assert info.value.result.ran == 4 and len(pd.read_csv(out / "summary.csv")) == 4
    first = list(calls)
    calls.clear()
    monkeypatch.setattr(sweeps, "run_one", lambda spec: (calls.append(spec["name"]), real(spec))[1])
    again = small_sweep(out, workers=1)
    assert again.skipped == 4 and again.ran == 2
    assert not set(first) & set(calls), "no run is done twice"
    assert len(again.summary) == 6
    third = small_sweep(out, workers=1)
    assert third.skipped == 6 and third.ran == 0


def test_a_run_with_a_partial_file_is_run_again(tmp_path):
    out = tmp_path / "sw"
    small_sweep(out, workers=1)
    (out / "binary-lr0.1-seed1.json").unlink()  # as if interrupted between its CSV and its JSON
    again = small_sweep(out, workers=1)
    assert again.ran == 1 and again.skipped == 5


def test_a_diverging_run_is_recorded_not_fatal(tmp_path):
    result = fastrnn.sweep(task="digits", seeds=[0], grid={"lr": [0.01, 1e300]}, out=tmp_path / "sw", workers=1,
                           digits=3, iters=20, log_every=5, activation="relu", optimizer="sgd", clip=0)
    summary = result.summary.set_index("lr")
    assert summary.loc[1e300, "status"] == "diverged" and bool(summary.loc[1e300, "diverged"])
    assert summary.loc[0.01, "status"] == "completed"
    meta = json.loads((tmp_path / "sw" / f"{summary.loc[1e300, 'run']}.json").read_text())
    assert "NaN or infinite at iteration 2" in meta["error"]


def test_report_reads_a_sweep_folder(tmp_path, capsys):
    small_sweep(tmp_path / "sw", workers=1)
    code, out, err = run_cli(capsys, "report", str(tmp_path / "sw"), "--format", "csv")
    assert code == 0, err
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert frame["lr"].tolist() == [0.1, 0.3] and frame["runs"].tolist() == [3, 3]


# ------------------------------------------------------------------------ CLI


def test_sweep_command(capsys, tmp_path):
    code, out, err = run_cli(capsys, "sweep", "--seeds", "0-1", "--set", "lr=0.1,0.3", "--set", "iters=300", "--out", str(tmp_path / "sw"), "--workers", "1")
    assert code == 0, err
    assert out.splitlines()[0].startswith("4 runs in") and "0 already finished and skipped" in out
    code, out, _ = run_cli(capsys, "sweep", "--seeds", "0-1", "--set", "lr=0.1,0.3", "--set", "iters=300", "--out", str(tmp_path / "sw"))
    assert "4 already finished and skipped" in out


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--set", "colour=red"], "'colour' is not a train option"),
        (["--set", "lr=0.1", "--set", "lr=0.2"], "is given twice"),
        (["--seeds", "9-1"], "runs backwards"),
        (["--set", "hidden=8,0"], "hidden must be at least 1"),
        (["--scheduler", "tcp://127.0.0.1:9"], "no Dask scheduler answered"),
    ],
)
def test_bad_sweep_input(capsys, tmp_path, args, fragment):
    code, _, err = run_cli(capsys, "sweep", "--out", str(tmp_path / "sw"), "--set", "iters=10", *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], err
