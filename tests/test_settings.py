"""One settings definition (fastrnn.settings), tasks as a registry, and the data source of the loop."""

import json
import re
from unittest import mock

import numpy as np
import pytest

import fastrnn
from fastrnn import _rule_settings
from fastrnn import optim, report, settings, sweeps, tasks
from fastrnn.cli import cli, main
from fastrnn.sources import SampledSource
from fastrnn.tasks import BinaryAddition, DigitAddition
from conftest import run_cli as run, assert_one_line_error as one_line_error


def train_options():
    return {p.name: p for p in cli.commands["train"].params}


# ------------------------------------------------------------- one definition


def test_every_setting_appears_in_train_options_sweep_names_report_columns_and_json(tmp_path):
    options = train_options()
    recorded = set()
    for name in tasks.TASKS:
        result = fastrnn.train(task=name, iters=1, log_every=1, csv=tmp_path / f"{name}.csv")
        meta = json.loads(result.json_path.read_text())
        # the online rules' own settings are recorded by the runs of the rules that take them (below)
        applies = [s.name for s in settings.every() if s.applies_to(name) and s.name not in _rule_settings.owners()]
        assert set(applies) <= set(meta), f"{name}: the JSON lacks {set(applies) - set(meta)}"
        assert all(result.settings[k] == meta[k] for k in applies)
        recorded |= set(meta)
    for rule, own in (("bptt", {"k1": 2, "k2": 3}), ("uoro", {}), ("rflo", {})):
        result = fastrnn.train(task="add", rule=rule, iters=4, log_every=2, hidden=3, test_steps=0,
                               csv=tmp_path / f"online-{rule}.csv", **own)
        meta = json.loads(result.json_path.read_text())
        mine = [k for k, owners in _rule_settings.owners().items() if rule in owners]
        assert mine and set(mine) <= set(meta), f"rule {rule}: the JSON lacks {set(mine) - set(meta)}"
        assert all(meta[k] == result.settings[k] for k in mine) and meta["rule"] == rule
        recorded |= set(meta)
    # the settings of training on arrays (settings.DATA) are recorded by a fit
    rng = np.random.default_rng(0)
    model = fastrnn.RNN(2, 3, 1, head="linear")
    result = fastrnn.fit(model, rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 1)), epochs=1, window=3,
                         csv=tmp_path / "fit.csv")
    meta = json.loads(result.json_path.read_text())
    assert all(meta[s.name] == result.settings[s.name] for s in settings.DATA)
    recorded |= set(meta)
    columns = report.collect(tmp_path).columns
    for s in settings.every():
        assert s.name in options and s.flag in options[s.name].opts, s.name
        assert s.name in report.SETTINGS and s.name in columns, s.name
        assert s.name in recorded, s.name
        if s.name == "seed":  # a sweep takes seeds from --seeds
            with pytest.raises(fastrnn.InvalidArgument, match="give seeds with --seeds"):
                sweeps.parse_set("seed=1,2")
        else:
            assert s.name in sweeps.SWEEPABLE, s.name
    assert len(settings.names()) == len(set(settings.names()))


def test_train_help_takes_the_defaults_from_the_task_modules(capsys):
    options = train_options()
    for s in settings.every():
        if s.default != settings.PER_TASK:
            continue
        shown = ", ".join(f"{name} {cls.defaults[s.name] if cls.defaults[s.name] is not None else 'off'}"
                          for name, cls in tasks.TASKS.items())
        assert f"[{shown}]" in options[s.name].help, (s.name, options[s.name].help)
    assert "[binary 20000, digits 2000" in options["iters"].help  # today's defaults (main's help said 3000)
    assert BinaryAddition.defaults["iters"] == 20000 and DigitAddition.defaults["iters"] == 2000
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and not re.search(r"\b3000\b", out) and "--momentum" in out and "--clip-value" in out


def test_task_defaults_are_todays():
    assert BinaryAddition.defaults == dict(iters=20000, batch=1, hidden=16, activation="sigmoid", optimizer="sgd", lr=0.1,
                                           clip=None, init_scale=1.0)
    assert DigitAddition.defaults == dict(iters=2000, batch=32, hidden=100, activation="tanh", optimizer="adam", lr=0.005,
                                          clip=1.0, init_scale="fan_in")
    _, s = fastrnn.training.resolve_settings(task="digits")
    assert (s["iters"], s["batch"], s["lr"], s["clip"], s["init_scale"]) == (2000, 32, 0.005, 1.0, "fan_in")


def test_optimizer_choices_come_from_the_optimizer_registry():
    assert settings.get("optimizer").choice_list() == tuple(optim.OPTIMIZERS)
    assert tuple(train_options()["optimizer"].type.choices) == tuple(optim.OPTIMIZERS)
    assert tuple(train_options()["task"].type.choices) == tuple(tasks.TASKS)


def test_momentum_and_clip_value_options_reach_the_library(capsys):
    with mock.patch("fastrnn.training.train") as fake:
        fake.side_effect = SystemExit(0)
        run(capsys, "train", "--optimizer", "momentum", "--momentum", "0.5", "--clip-value", "0.25", "--no-csv")
    kwargs = fake.call_args.kwargs
    assert kwargs["momentum"] == 0.5 and kwargs["clip_value"] == 0.25 and kwargs["optimizer"] == "momentum"


@pytest.mark.parametrize("extra", [dict(optimizer="sgd", clip_value=0.01), dict(optimizer="momentum", momentum=0.5),
                                   dict(optimizer="adam", lr=0.01, clip=0.5, clip_value=0.02)])
def test_train_equals_a_python_loop_with_the_same_clip_value_and_momentum(extra):
    """clip_value and momentum reach the kernel: train() equals loss_and_grads + Optimizer.step on the same data."""
    iters, seed = 60, 4
    result = fastrnn.train(task="binary", iters=iters, log_every=20, seed=seed, **extra)
    s = result.settings
    model = fastrnn.RNN(2, s["hidden"], 1, activation=s["activation"], head="sigmoid", seed=seed, init_scale=s["init_scale"])
    opt = fastrnn.Optimizer(s["optimizer"], lr=s["lr"], momentum=s["momentum"], clip_norm=s["clip"], clip_value=s["clip_value"])
    X, Y, _ = BinaryAddition(8).sample(np.random.default_rng([seed, 1]), iters)
    for i in range(iters):
        _, grads = model.loss_and_grads(X[i : i + 1], Y[i : i + 1])
        opt.step(model, grads)
    np.testing.assert_allclose(result.model.theta, model.theta, rtol=1e-10, atol=1e-12)
    if "clip_value" in extra:
        unclipped = fastrnn.train(task="binary", iters=iters, log_every=20, seed=seed, **dict(extra, clip_value=None))
        assert not np.array_equal(unclipped.model.theta, result.model.theta)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(momentum=1.0), "momentum must be below 1"),
        (dict(momentum=-0.1), "momentum must be at least 0"),
        (dict(clip_value=-1.0), "clip_value must be at least 0"),
        (dict(clip_value=float("inf")), "clip_value must be a finite number"),
        (dict(colour="red"), "'colour' is not a training setting"),
    ],
)
def test_bad_new_settings(kwargs, pattern):
    with pytest.raises((fastrnn.InvalidArgument, fastrnn.InvalidType), match=pattern):
        fastrnn.train(**kwargs)


@pytest.mark.parametrize("args,fragments", [(["--momentum", "1"], ["'--momentum'", "1.0 is not in the range 0.0<=x<1.0"]),
                                            (["--clip-value", "-1"], ["'--clip-value'", "-1"])])
def test_bad_new_options_give_one_line(capsys, args, fragments):
    code, _, err = run(capsys, "train", "--no-csv", *args)
    one_line_error(code, err, 2, *fragments)


def test_zero_turns_clipping_off():
    _, s = fastrnn.training.resolve_settings(task="digits", clip=0, clip_value=0)
    assert s["clip"] is None and s["clip_value"] is None


# -------------------------------------------------------------------- tasks


class Echo(tasks.Task):
    """A task without decoding: repeat the input bit one step later (one file's worth of code)."""

    name = "echo"
    n_in, n_out, T, positions = 1, 1, 5, 5
    head = "sigmoid"
    defaults = dict(iters=40, batch=2, hidden=4, activation="tanh", optimizer="adam", lr=0.01, clip=None, init_scale=0.5)

    def sample(self, rng, n):
        X = rng.integers(0, 2, (n, self.T, 1)).astype(float)
        Y = np.zeros_like(X)
        Y[:, 1:] = X[:, :-1]
        return tasks.Batch(X, Y, None)


@pytest.fixture
def echo_registered(monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "echo", Echo)


def test_a_new_task_is_one_class_and_one_registry_line(echo_registered, tmp_path):
    result = fastrnn.train(task="echo", log_every=10, csv=tmp_path / "e.csv", save=tmp_path / "e.npz")
    assert result.iterations == 40 and result.settings["hidden"] == 4 and result.settings["head"] == "sigmoid"
    assert fastrnn.RNN.load(tmp_path / "e.npz").metadata == {"task": "echo"}
    with pytest.raises(fastrnn.InvalidArgument, match="bits belongs to the binary task; the echo task takes no parameters"):
        fastrnn.train(task="echo", bits=9)
    assert settings.get("task").choice_list() == ("binary", "digits", "text", "recall", "adding", "copy", "order", "add", "mimic", "echo")


@pytest.mark.parametrize("command", [["predict", "{path}", "1", "0"], ["eval", "{path}"]])
def test_predict_and_eval_say_when_a_task_has_no_decoding(echo_registered, capsys, tmp_path, command):
    path = tmp_path / "e.npz"
    fastrnn.train(task="echo", iters=10, save=path)
    code, _, err = run(capsys, *[a.format(path=path) for a in command])
    one_line_error(code, err, 2, "the echo task has no decoding", "binary, digits")


def test_old_imports_keep_working():
    from fastrnn.tasks import BinaryAddition as B, DigitAddition as D, make_task, task_from_metadata  # noqa: F401

    assert fastrnn.BinaryAddition is B and fastrnn.make_task is make_task
    assert task_from_metadata({"task": "digits", "digits": 4, "encoding": "interleave"}, digits=6).T == 12
    with pytest.raises(fastrnn.InvalidArgument, match="use --bits, not --digits"):
        task_from_metadata({"task": "binary", "bits": 8}, digits=3)


def test_a_sample_unpacks_as_x_y_mask():
    X, Y, mask = DigitAddition(3, "interleave").sample(np.random.default_rng(0), 4)
    assert X.shape == (4, 6, 10) and Y.shape == (4, 6, 10) and mask.shape == (4, 6)


# ------------------------------------------------------------------ sources


@pytest.mark.parametrize("task", [BinaryAddition(8), DigitAddition(4, "interleave")])
def test_sampled_source_gives_the_runs_numbers_and_resumes_exactly(task):
    B, dtype = 3, np.float32
    source = task.source(np.random.default_rng([7, 1]), B, dtype)
    X1, Y1, M1, r1 = source.next(2)
    state = source.state()
    X2, Y2, M2, _ = source.next(5)
    want = task.sample(np.random.default_rng([7, 1]), 7 * B)
    np.testing.assert_array_equal(np.concatenate([X1, X2]), want.X.astype(dtype))
    np.testing.assert_array_equal(np.concatenate([Y1, Y2]), want.Y.astype(dtype))
    assert X1.dtype == dtype and X1.flags.c_contiguous and r1.shape == (0,) and r1.dtype == np.int64
    assert M1.shape == ((0, 0) if want.mask is None else (2 * B, task.T))
    again = SampledSource(task, np.random.default_rng(0), B, dtype)
    again.restore(json.loads(json.dumps(state)))  # the state survives a JSON file
    np.testing.assert_array_equal(again.next(5)[0], X2)
