"""fastrnn.sweep: grid expansion, files, identical numbers however runs execute, resume."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import sweeps
from fastrnn.cli import main
from conftest import run_cli

TIME_COLUMNS = ["train_seconds"]


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


@pytest.mark.usefixtures("kernel_choice")
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


@pytest.mark.parametrize("iters, log_every", [(4030, 50), (2100, 70), (450, 7)])
def test_train_many_rows_are_separate_runs_rows(iters, log_every):
    # train_many records whole blocks of chunks for many runs at once (_record_blocks), a diverging
    # run and a block of unequal chunks chunk by chunk: every row the same numbers as a run of its own
    from fastrnn.training import train_many

    base = dict(task="binary", iters=iters, log_every=log_every, activation="relu")
    given = [dict(base, seed=0, lr=1e300)] + [dict(base, seed=s) for s in range(1, 6)]
    results = train_many(given)
    for settings, result in zip(given, results):
        try:
            alone = fastrnn.train(**settings)
        except fastrnn.NumericalError as exc:
            alone = exc.result
        assert result.status == alone.status and result.first_perfect_iteration == alone.first_perfect_iteration
        strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
        assert [repr(r) for r in strip(result.rows)] == [repr(r) for r in strip(alone.rows)]
        np.testing.assert_array_equal(result.model.theta, alone.model.theta)
    assert results[0].status == "diverged" and results[1].status == "completed"


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


# ------------------------------------------------------------ sweep folders and run names


def tiny(out, *sets, extra=()):
    return ["sweep", "--seeds", "0-1", *[a for s in sets for a in ("--set", s)], "--out", str(out), "--workers", "1", "-q", *extra]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("first,second,fragment", [
    (["iters=30"], ["iters=40"], "iters 30 there, 40 asked"),
    (["iters=30", "lr=0.3"], ["iters=30", "lr=0.1"], "lr 0.3 there, 0.1 asked"),
    (["iters=30", "hidden=4,8"], ["iters=30", "hidden=4,8", "activation=tanh"], "activation 'sigmoid' there, 'tanh' asked"),
])
def test_a_sweep_never_reuses_runs_made_with_other_settings(capsys, tmp_path, first, second, fragment):
    out = tmp_path / "sw"
    code, _, err = run_cli(capsys, *tiny(out, "log_every=10", *first))
    assert code == 0, err
    before = snapshot(out)
    code, _, err = run_cli(capsys, *tiny(out, "log_every=10", *second))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and fragment in lines[0] and "--overwrite" in lines[0], err
    assert snapshot(out) == before, "nothing ran, nothing was written"
    code, outtext, err = run_cli(capsys, *tiny(out, "log_every=10", *second, extra=["--overwrite"]))
    assert code == 0, err
    summary = pd.read_csv(out / "summary.csv")
    for text in second:
        name, value = text.split("=")
        if "," in value:
            continue
        for run in summary["run"]:
            meta = json.loads((out / f"{run}.json").read_text())
            assert str(meta[name]) == value or meta[name] == float(value), (name, meta[name])
    # the same command again reuses every run
    code, outtext, _ = run_cli(capsys, *tiny(out, "log_every=10", *second))
    assert code == 0 and f"{len(summary)} already finished and skipped" in outtext


def test_the_library_refuses_runs_made_with_other_settings_too(tmp_path):
    fastrnn.sweep(seeds=[0], out=tmp_path, workers=1, iters=20, log_every=10)
    with pytest.raises(fastrnn.InvalidArgument, match=r"iters 20 there, 30 asked.*--overwrite"):
        fastrnn.sweep(seeds=[0], out=tmp_path, workers=1, iters=30, log_every=10)
    again = fastrnn.sweep(seeds=[0], out=tmp_path, workers=1, iters=30, log_every=10, overwrite=True)
    assert again.ran == 1 and again.summary["final_accuracy"].notna().all()
    assert pd.read_csv(tmp_path / "binary-seed0.csv")["iteration"].tolist() == [10, 20, 30]


@pytest.mark.parametrize("text", ["lr=0.1,0.10", "lr=1,1.0", "hidden=8,08", "activation=tanh,tanh"])
def test_equal_values_given_twice_are_a_usage_error(capsys, tmp_path, text):
    code, _, err = run_cli(capsys, *tiny(tmp_path / "sw", text, "iters=10"))
    assert code == 2 and "is given twice" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sw").exists()


def test_different_values_always_get_different_names(capsys, tmp_path):
    names = [s["name"] for s in sweeps.expand("binary", [0], {"lr": [1e-16, 1e16, 1e-6]})]
    assert len(set(names)) == 3, names
    code, out, err = run_cli(capsys, *tiny(tmp_path / "sw", "lr=1e-16,1e+16", "iters=10", "log_every=10"))
    assert code == 0, err
    summary = pd.read_csv(tmp_path / "sw" / "summary.csv")
    assert len(summary) == 4 and summary["run"].nunique() == 4 and sorted(set(summary["lr"])) == [1e-16, 1e16]
    for row in summary.itertuples():
        assert json.loads((tmp_path / "sw" / f"{row.run}.json").read_text())["lr"] == row.lr
    # values that would write alike still get names of their own
    specs = sweeps.expand("binary", [0], {"init_scale": ["fan_in", 1.0]}, iters=10)
    assert len({s["name"] for s in specs}) == 2


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(seeds=[0, 0]), "seeds: 0 is given twice"),
    (dict(task="digits", grid={"clip": [None, 1.0]}), "are the same run"),
    (dict(grid={"lr": [0.1, 0.1]}), "is given twice"),
])
def test_the_library_refuses_the_same_run_twice(tmp_path, kwargs, fragment):
    with pytest.raises(fastrnn.InvalidArgument, match=fragment):
        fastrnn.sweep(out=tmp_path / "sw", workers=1, iters=10, **{"seeds": [0], **kwargs})


def test_summary_csv_is_replaced_atomically(tmp_path, monkeypatch):
    out = tmp_path / "sw"
    fastrnn.sweep(seeds=[0, 1], out=out, workers=1, iters=10, log_every=10)
    before = (out / "summary.csv").read_bytes()
    real = pd.DataFrame.to_csv

    def disk_full(self, path=None, *args, **kwargs):
        with open(path, "w") as fh:  # half a file, then the disk is full
            fh.write("run,ta")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError):
        fastrnn.sweep(seeds=[0, 1, 2], out=out, workers=1, iters=10, log_every=10)
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    assert (out / "summary.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("summary")) == ["summary.csv"]


def test_a_huge_seed_range_is_refused_before_it_is_built():
    import resource
    import subprocess
    import sys

    def limit():  # a build of the whole set would fail fast, not swap the machine
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    res = subprocess.run([sys.executable, "-m", "fastrnn", "sweep", "--seeds", "0-10000000000", "--out", "never"],
                         capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "10000000001 runs" in lines[0] and "at most" in lines[0]


class Seeds:
    """10**10 seeds that refuse to be listed (a list of them would not fit in memory)."""

    def __len__(self):
        return 10**10

    def __iter__(self):
        for i in range(10**10):
            if i > 2_000_000:
                raise AssertionError("the sweep lists every seed")
            yield i


def test_the_library_counts_runs_before_building_them(tmp_path):
    with pytest.raises(fastrnn.InvalidArgument, match=r"asks for 20000000000 runs"):
        sweeps.expand("binary", Seeds(), {"lr": [0.1, 0.2]})
    with pytest.raises(fastrnn.InvalidArgument, match=r"asks for 1000001 runs"):
        sweeps.expand("binary", iter(Seeds()), {})


MALFORMED = [
    ("json", b"[]", "holds a JSON list"),
    ("json", b'{"status": "completed", "result": 5}', "result that is not an object"),
    ("json", b'{"status": "completed", "result": {"final_accuracy": "high"}}', "result.final_accuracy"),
    ("json", b'{"status": "done"}', "no run status"),
    ("json", b'{"status": "compl', "not valid JSON"),
    ("json", b"\xff\xfe\x00garbage", "not valid JSON"),
    ("csv", b"iteration,samples\n1,1\n", "lacks the column"),
    ("csv", None, "ends at iteration"),  # the real CSV cut after its first row
    ("csv", b"\x00\x01\x02", "not a fastrnn metrics CSV"),
]


@pytest.mark.parametrize("suffix,content,fragment", MALFORMED)
def test_sweep_resume_names_a_malformed_run_file(capsys, tmp_path, suffix, content, fragment):
    out = tmp_path / "sw"
    args = tiny(out, "iters=30", "log_every=10")
    assert run_cli(capsys, *args)[0] == 0
    target = out / f"binary-seed1.{suffix}"
    if content is None:
        content = b"".join(target.read_bytes().splitlines(keepends=True)[:2])
    target.write_bytes(content)
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and fragment in lines[0] and "--overwrite" in lines[0], err
    assert target.read_bytes() == content, "the file is left alone"
    code, out_text, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and "1 already finished and skipped" in out_text, err
    assert json.loads((out / "binary-seed1.json").read_text())["status"] == "completed"


def test_a_run_marked_running_is_redone(capsys, tmp_path):
    out = tmp_path / "sw"
    args = tiny(out, "iters=30", "log_every=10")
    run_cli(capsys, *args)
    meta = json.loads((out / "binary-seed0.json").read_text())
    (out / "binary-seed0.json").write_text(json.dumps(dict(meta, status="running")))
    code, text, err = run_cli(capsys, *args)
    assert code == 0 and "1 ran" in text and "1 already finished" in text, err


# -------------------------------------------- malformed run files: property-based


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
RUN_KEYS = ["status", "result", "iters", "lr", "seed", "task", "bits", "final_accuracy", "iterations_done"]


@st.composite
def corruptions(draw):
    """(file suffix, how to change it): random bytes, a cut, JSON of any shape, a run's JSON with a field changed."""
    suffix = draw(st.sampled_from(["json", "csv"]))
    kind = draw(st.sampled_from(["bytes", "cut", "json", "field"]))
    if kind == "bytes":
        return suffix, ("bytes", draw(st.binary(max_size=64)))
    if kind == "cut":
        return suffix, ("cut", draw(st.integers(min_value=0, max_value=400)))
    if kind == "json":
        return suffix, ("json", draw(json_values))
    return "json", ("field", draw(st.sampled_from(RUN_KEYS)), draw(json_values))


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "sw"
    fastrnn.sweep(task="binary", seeds=[0, 1], out=out, workers=1, iters=20, log_every=10)
    return out


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=corruptions())
def test_sweep_resume_turns_any_malformed_file_into_one_line(finished_sweep, tmp_path_factory, change):
    """Whatever a run file holds, resuming the sweep either reuses/redoes the run or refuses in one line naming the folder."""
    import contextlib
    import io
    import shutil

    out = tmp_path_factory.mktemp("case") / "sw"
    shutil.copytree(finished_sweep, out)
    suffix, how = change
    target = out / f"binary-seed1.{suffix}"
    if how[0] == "bytes":
        target.write_bytes(how[1])
    elif how[0] == "cut":
        target.write_bytes(target.read_bytes()[: how[1]])
    elif how[0] == "json":
        target.write_text(json.dumps(how[1]))
    else:
        meta = json.loads(target.read_text())
        meta[how[1]] = how[2]
        target.write_text(json.dumps(meta))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as info:
            main(["sweep", "--seeds", "0-1", "--set", "iters=20", "--set", "log_every=10", "--out", str(out), "--workers", "1", "-q"])
    text = err.getvalue()
    assert "Traceback" not in text
    if info.value.code == 0:
        summary = pd.read_csv(out / "summary.csv")
        assert len(summary) == 2 and (summary["status"] == "completed").all()
    else:
        lines = text.strip().splitlines()
        assert info.value.code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and str(out) in lines[0], text


def test_run_csv_text_is_csv_dictwriters_byte_for_byte():
    import csv
    import io

    columns = ["iteration", "samples", "loss", "accuracy", "elapsed_s"]
    rows = [dict(zip(columns, [i, 2**70 + i, 10.0 ** (7 * i - 20) / 3, float(["nan", "inf", "-0.0", "0.1"][i % 4]), 1e16]))
            for i in range(8)]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    assert sweeps._csv_text(columns, rows) == buf.getvalue()
    assert sweeps._csv_text(columns, []) == buf.getvalue().split("\r\n")[0] + "\r\n"
    # anything else is left to DictWriter
    assert sweeps._csv_text(columns, rows + [dict(rows[0], loss=np.float64(0.5))]) is None
    assert sweeps._csv_text(columns, rows + [dict(rows[0], loss=None)]) is None
    assert sweeps._csv_text(columns, rows + [dict(rows[0], loss=True)]) is None
    assert sweeps._csv_text(columns, [{k: rows[0][k] for k in reversed(columns)}]) is None
    assert sweeps._csv_text(columns + ["a b"], []) is None


def test_a_default_given_as_a_sweep_value_is_named_by_what_it_resolves_to():
    name, values = sweeps.parse_set("init=default,orthogonal")
    assert values[0] is None  # "default": the setting's own default
    names = [spec["name"] for spec in sweeps.expand("adding", [0], {name: values})]
    assert names == ["adding-initdefault-seed0", "adding-initorthogonal-seed0"]
