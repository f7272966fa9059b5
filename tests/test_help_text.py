"""Every command's --help: no artefacts of unset bounds, and option lists taken from the registries."""

import re

import click
import pytest
from click.testing import CliRunner

from fastrnn.cells import CELLS
from fastrnn.cells.rnn import ACTIVATIONS
from fastrnn.cli import cli
from fastrnn.inits import INITS
from fastrnn.optim import OPTIMIZERS
from fastrnn.tasks import TASKS


def _helps():
    root = click.Context(cli, info_name="fastrnn")
    for name, command in cli.commands.items():
        yield name, command, command.get_help(click.Context(command, info_name=name, parent=root))


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_help_shows_no_unset_bound(name):
    """A range with a missing bound shows only the bound it has (click's FloatRange(min=None) prints "x<=None")."""
    command = cli.commands[name]
    text = command.get_help(click.Context(command, info_name=name, parent=click.Context(cli, info_name="fastrnn")))
    assert "None" not in text, f"fastrnn {name} --help shows 'None':\n{text}"
    assert not re.search(r"\[x[<>]=?\s*\]", text)


def test_option_choices_are_the_registries():
    train = cli.commands["train"]
    choices = {p.name: tuple(p.type.choices) for p in train.params if isinstance(p.type, click.Choice)}
    assert choices["optimizer"] == tuple(OPTIMIZERS)
    assert {"adagrad", "rmsprop"} <= set(choices["optimizer"])
    assert choices["activation"] == tuple(ACTIVATIONS)
    assert choices["cell"] == tuple(CELLS)
    assert choices["init"] == tuple(INITS)
    assert choices["task"] == tuple(TASKS)
    for name in ("paths", "spectrum", "sweep"):
        task = next(p for p in cli.commands[name].params if p.name == "task")
        assert tuple(task.type.choices) == tuple(TASKS), name


def test_every_setting_option_shows_its_bounds():
    """Bounded settings show their bounds in --help (momentum's upper bound included); unbounded ones show none."""
    text = dict((name, help_text) for name, _, help_text in _helps())["train"]
    flat = " ".join(text.split())
    assert "[0.0<=x<1.0]" in flat  # --momentum: at least 0, below 1
    forget = flat.split("--forget-bias", 1)[1].split("--init-from", 1)[0]
    assert "NUMBER" in forget and "x<" not in forget and "x>" not in forget


@pytest.mark.parametrize("value,ok", [("-1.5", True), ("2", True), ("nan", False), ("inf", False), ("many", False)])
def test_forget_bias_takes_any_finite_number(value, ok):
    """Checked while parsing: negative biases are allowed, NaN and infinity refused with exit 2 and one line."""
    result = CliRunner().invoke(cli, ["train", "--cell", "lstm", "--forget-bias", value, "--iters", "1", "--no-csv", "-q",
                                      "--hidden", "2"])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2
        assert "--forget-bias" in result.output and "Traceback" not in result.output


def test_momentum_at_one_is_refused_while_parsing():
    result = CliRunner().invoke(cli, ["train", "--momentum", "1", "--iters", "1", "--no-csv"])
    assert result.exit_code == 2
    assert "--momentum" in result.output and "0.0<=x<1.0" in result.output
