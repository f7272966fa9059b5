"""The ``fastrnn`` command line. It parses arguments and calls the library; nothing else.

Every error reaches the user as one line on stderr, ``Error: ...``, naming the
argument, the value and what to do: exit status 2 for bad input (usage), 1 for a
run that failed (a diverging loss), 130 after Ctrl-C.
"""

import math
import sys

import click

from . import __version__
from .exceptions import FastRNNError, InvalidArgument, InvalidType, ModelFileError, NumericalError

USAGE_ERRORS = (InvalidArgument, InvalidType, ModelFileError)


class PositiveFloat(click.ParamType):
    """A finite number above zero (click's FloatRange lets NaN through)."""

    name = "positive number"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} must be a positive finite number", param, ctx)
        return number


POSITIVE = PositiveFloat()


class InitScale(click.ParamType):
    name = "scale|fan_in"

    def convert(self, value, param, ctx):
        if value == "fan_in":
            return value
        return POSITIVE.convert(value, param, ctx)


@click.group(context_settings=dict(help_option_names=["-h", "--help"]))
@click.version_option(__version__, "-V", "--version", prog_name="fastrnn")
def cli():
    """Train and study small vanilla RNNs with backpropagation through time.

    \b
    fastrnn train --task binary --iters 20000
    fastrnn predict model.npz 45 73
    fastrnn eval model.npz --bits 16
    """


# ----------------------------------------------------------------------------- train


@cli.command()
@click.option("--task", type=click.Choice(["binary", "digits"]), default="binary", show_default=True, help="What to learn.")
@click.option("--iters", type=click.IntRange(min=1), help="Training iterations [binary 20000, digits 3000].")
@click.option("--batch", type=click.IntRange(min=1), help="Sequences per iteration [binary 1, digits 32].")
@click.option("--hidden", type=click.IntRange(min=1), help="Hidden units [binary 16, digits 100].")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True, help="Stacked recurrent layers.")
@click.option("--activation", type=click.Choice(["tanh", "sigmoid", "relu"]), help="Hidden activation [binary sigmoid, digits tanh].")
@click.option("--lr", type=POSITIVE, help="Learning rate [binary 0.1, digits 0.003].")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), help="Update rule [binary sgd, digits adam].")
@click.option("--clip", type=click.FloatRange(min=0.0), help="Rescale gradients to at most this global norm; 0 = off [binary off, digits 1.0].")
@click.option("--bptt-truncate", type=click.IntRange(min=0), help="The loss at step t reaches only steps t-K..t [full BPTT].")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seeds the weights and the data.")
@click.option("--log-every", type=click.IntRange(min=1), default=100, show_default=True, help="Iterations per CSV row.")
@click.option("--csv", "csv_path", type=click.Path(), help="Metrics CSV [runs/<task>-<timestamp>.csv].")
@click.option("--no-csv", is_flag=True, help="Write no metrics files.")
@click.option("--save", type=click.Path(), help="Save the trained model (.npz) here.")
@click.option("--overwrite", is_flag=True, help="Allow replacing existing --csv/--save files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--bits", type=click.IntRange(2, 62), help="binary: bits per number [8].")
@click.option("--digits", type=click.IntRange(2, 18), help="digits: digits per number [10].")
@click.option("--encoding", type=click.Choice(["pair", "interleave"]), help="digits: both digits per step, or one [pair].")
@click.option("--init-scale", type=InitScale(), help="Initial weights uniform in [-s, s], or fan_in [binary 1.0, digits fan_in].")
def train(task, iters, batch, hidden, layers, activation, lr, optimizer, clip, bptt_truncate, dtype, seed, log_every,
          csv_path, no_csv, save, overwrite, quiet, bits, digits, encoding, init_scale):
    """Train an RNN on binary or digit addition, logging metrics to CSV."""
    from . import metrics
    from .training import train as run

    if no_csv and csv_path:
        raise InvalidArgument("--csv and --no-csv exclude each other; give one")
    if not no_csv and csv_path is None:
        csv_path = metrics.default_csv_path(task)
    try:
        result = run(
            task=task, iters=iters, batch=batch, hidden=hidden, layers=layers, activation=activation, lr=lr,
            optimizer=optimizer, clip=clip, bptt_truncate=bptt_truncate, dtype=dtype, seed=seed, log_every=log_every,
            csv=None if no_csv else csv_path, save=save, overwrite=overwrite, progress=not quiet and sys.stderr.isatty(),
            bits=bits, digits=digits, encoding=encoding, init_scale=init_scale,
        )
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            click.echo(f"Interrupted after {result.iterations} iterations. {_where(result)}", err=True)
        sys.exit(130)
    except NumericalError as exc:
        result = getattr(exc, "result", None)
        kept = f" {_where(result)}" if result is not None else ""
        click.echo(f"Error: {exc}.{kept}", err=True)
        sys.exit(1)
    click.echo(_summary(result))


def _where(result):
    parts = []
    if result.csv_path is not None:
        parts.append(f"{len(result.rows)} rows kept in {result.csv_path}")
    if result.save_path is not None:
        parts.append(f"model saved to {result.save_path}")
    return ("; ".join(parts) + ".") if parts else ""


def _summary(result):
    first = result.first_perfect_iteration
    reached = f"first 1.0 at iteration {first}" if first is not None else "never reached 1.0"
    text = (
        f"{result.settings['task']}: accuracy {result.final_accuracy:.3f} ({reached}) after {result.iterations} iterations; "
        f"training {result.train_seconds:.3f} s (start-up and compile {result.compile_seconds:.2f} s)"
    )
    where = _where(result)
    return text + (f"; {where}" if where else "")


# ------------------------------------------------------------------- predict / eval


def _load(model_path, bits=None, digits=None):
    from .model import RNN
    from .tasks import task_from_metadata

    model = RNN.load(model_path)
    return model, task_from_metadata(model.metadata, bits=bits, digits=digits)


@cli.command(context_settings=dict(ignore_unknown_options=True))  # so that -1 reaches the range check
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("a", type=click.IntRange(min=0))
@click.argument("b", type=click.IntRange(min=0))
@click.option("--bits", type=click.IntRange(2, 62), help="Width for a binary model [as trained].")
@click.option("--digits", type=click.IntRange(2, 18), help="Width for a digits model [as trained].")
def predict(model_path, a, b, bits, digits):
    """Print the sum A + B that the model computes, beside the true one."""
    import numpy as np

    model, task = _load(model_path, bits, digits)
    task.check_operand("A", a)
    task.check_operand("B", b)
    batch = task.encode(np.array([a]), np.array([b]))
    yhat, _ = model.forward(batch.X)
    got = task.predicted_positions(yhat)[0]
    true = task.true_positions(batch)[0]
    value = int(task.decode(got[None])[0])
    width = len(str(task.limit * 2))
    marks = "".join("^" if p != q else " " for p, q in zip(got[::-1], true[::-1]))
    click.echo(f"{'a':>6} = {a:>{width}}  {task.format_positions(task.true_positions(task.encode(np.array([a]), np.array([0])))[0])}")
    click.echo(f"{'b':>6} = {b:>{width}}  {task.format_positions(task.true_positions(task.encode(np.array([b]), np.array([0])))[0])}")
    click.echo(f"{'model':>6} = {value:>{width}}  {task.format_positions(got)}")
    click.echo(f"{'true':>6} = {a + b:>{width}}  {task.format_positions(true)}")
    if value == a + b:
        click.echo(f"{'':>6}   {'':>{width}}  correct")
    else:
        click.echo(f"{'':>6}   {'':>{width}}  {marks}  wrong {task.unit}s marked")


@cli.command(name="eval")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True, help="Fresh random sums to score.")
@click.option("--bits", type=click.IntRange(2, 62), help="Width for a binary model [as trained].")
@click.option("--digits", type=click.IntRange(2, 18), help="Width for a digits model [as trained].")
@click.option("--seed", type=click.IntRange(min=0), default=12345, show_default=True, help="Seed of the evaluation data.")
def evaluate(model_path, samples, bits, digits, seed):
    """Score a model on fresh sums, also at another width than it was trained on."""
    import numpy as np

    model, task = _load(model_path, bits, digits)
    batch = task.sample(np.random.default_rng(seed), samples)
    yhat, _ = model.forward(batch.X)
    got = task.predicted_positions(yhat)
    true = task.true_positions(batch)
    right = got == true
    trained = model.metadata.get("bits", model.metadata.get("digits"))
    width = getattr(task, "bits", getattr(task, "digits", None))
    click.echo(f"{task.name} model trained on {trained} {task.unit}s, scored on {samples} sums of {width}-{task.unit} numbers (seed {seed})")
    click.echo(f"exact match: {right.all(axis=1).mean():.4f}")
    click.echo(f"{task.unit} accuracy: {right.mean():.4f}")
    per = " ".join(f"{v:.3f}" for v in right.mean(axis=0))
    click.echo(f"per {task.unit}, least significant first: {per}")


# ------------------------------------------------------------------------- entry


def main(argv=None):
    """Entry point of the installed ``fastrnn`` command: one line per error, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="fastrnn", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see 'fastrnn {exc.ctx.info_name} --help')" if exc.ctx is not None and exc.ctx.parent is not None else " (see 'fastrnn --help')"
        click.echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except USAGE_ERRORS as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except FastRNNError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"Error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
