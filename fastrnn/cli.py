"""The ``fastrnn`` command line. It parses arguments and calls the library; nothing else.

Every error reaches the user as one line on stderr, ``Error: ...``, naming the
argument, the value and what to do: exit status 2 for bad input (usage), 1 for a
run that failed (a diverging loss, a file that cannot be written), 128 + the
signal after Ctrl-C (130), SIGTERM (143) or SIGHUP (129), which ``train`` and
``sweep`` treat alike.
"""

import math
import sys
import warnings

import click

from . import __version__, _startup
from .exceptions import FastRNNError, InvalidArgument, InvalidType, ModelFileError, NumericalError
from .tasks import TASKS

USAGE_ERRORS = (InvalidArgument, InvalidType, ModelFileError)


class FiniteFloat(click.ParamType):
    """A finite number above (``strict``) or at least ``minimum`` (click's FloatRange lets NaN and infinity through)."""

    def __init__(self, minimum, strict, name, needs):
        self.minimum, self.strict, self.name, self.needs = minimum, strict, name, needs

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < self.minimum or (self.strict and number == self.minimum):
            self.fail(f"{value!r} must be {self.needs}", param, ctx)
        return number


POSITIVE = FiniteFloat(0.0, True, "positive number", "a positive finite number")
NON_NEGATIVE = FiniteFloat(0.0, False, "number >= 0", "a finite number at least 0")
FINITE = FiniteFloat(-math.inf, False, "number", "a finite number")


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
    fastrnn train --task text --text notes.txt --save chars.npz
    fastrnn sample chars.npz --length 300 --temperature 0.5
    fastrnn predict model.npz 45 73
    fastrnn eval model.npz --bits 16
    fastrnn gradcheck --layers 2 --bptt-truncate 3
    fastrnn paths --activation tanh,sigmoid,relu --bits 24 --out paths.png
    fastrnn spectrum model.npz
    fastrnn plot runs/*.csv --out curves.png
    fastrnn report runs/ --by lr
    """


# ----------------------------------------------------------------------------- train


def _click_type(setting):
    """The click type of a setting (fastrnn.settings): its bounds and choices, checked while parsing."""
    if setting.kind == "int":
        if setting.minimum is None and setting.maximum is None:  # unbounded: no range to show (click would print x<=None)
            return click.INT
        return click.IntRange(min=setting.minimum, max=setting.maximum)
    if setting.kind == "float":
        if setting.positive:
            return POSITIVE
        if setting.minimum is None and setting.below is None:  # unbounded: no range to show (click would print x<=None)
            return FINITE
        return click.FloatRange(min=setting.minimum, max=setting.below, max_open=setting.below is not None)
    if setting.kind == "scale":
        return InitScale()
    if setting.kind == "choice":
        return click.Choice(setting.choice_list())
    if setting.kind == "path":
        return click.Path()
    return None


def setting_options(fn):
    """One option per training setting, help and defaults from fastrnn.settings.

    Every option defaults to None (the flags to False), so that the library fills
    in the default, the task's where the task chooses it; the help shows them.
    """
    from . import settings

    for setting in reversed(settings.every()):
        text = f"{setting.help} {setting.default_text(TASKS.values())}"
        if setting.kind == "flag" and setting.default:  # on unless turned off: --name/--no-name
            option = click.option(f"{setting.flag}/--no-{setting.flag[2:]}", setting.name, default=None, help=text)
        elif setting.kind == "flag":
            option = click.option(setting.flag, setting.name, is_flag=True, default=False, help=text)
        elif setting.name == "task":
            option = click.option(setting.flag, type=_click_type(setting), default=setting.default, show_default=True,
                                  help=setting.help)
        else:
            option = click.option(setting.flag, setting.name, type=_click_type(setting), help=text)
        fn = option(fn)
    return fn


@cli.command()
@setting_options
@click.option("--csv", "csv_path", type=click.Path(), help="Metrics CSV [runs/<task>-<timestamp>.csv].")
@click.option("--no-csv", is_flag=True, help="Write no metrics files.")
@click.option("--save", type=click.Path(), help="Save the trained model (.npz) here.")
@click.option("--overwrite", is_flag=True, help="Allow replacing existing --csv/--save files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--resume", type=click.Path(), help="Continue the run saved (--save) in this model file to --iters "
              "iterations in total (a run on --data: --epochs epochs, on its --data file), exactly; its rows are "
              "appended to the run's CSV (or all go to a new --csv) and the model is saved back to it (or to --save).")
@click.option("--data", type=click.Path(), help="Train on your own arrays instead of a task: a .npz with X (N, T, I), "
              "Y (N, T, O), optional mask (N, T), X_val, Y_val, mask_val (the --data settings apply).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="N",
              help="Write a checkpoint every N iterations (a multiple of --log-every) to <--save stem>.ckpt.npz, or "
                   "<--csv stem>.ckpt.npz; after a crash or kill -9, --resume it with the same --iters. [off; a "
                   "resume: the run's]")
@click.option("--checkpoint-seconds", type=POSITIVE, metavar="S",
              help="Also (or only) write the checkpoint at the first row S seconds after the last one.")
def train(task, csv_path, no_csv, save, overwrite, quiet, resume, data, checkpoint_every, checkpoint_seconds, **settings):
    """Train an RNN on a task (binary or digit addition, a text's characters) or on your own arrays (--data), logging metrics to CSV."""
    from . import _signals

    with _signals.stop_handlers():
        _train(task, csv_path, no_csv, save, overwrite, quiet, resume, data, checkpoint_every, checkpoint_seconds,
               settings)


def _train(task, csv_path, no_csv, save, overwrite, quiet, resume, data, checkpoint_every, checkpoint_seconds, settings):
    from . import _signals, metrics
    from . import settings as setting_defs
    from .training import train as run

    if no_csv and csv_path:
        raise InvalidArgument("--csv and --no-csv exclude each other; give one")
    given_data = {s.name: settings.pop(s.name) for s in setting_defs.DATA}
    state = None
    if resume is not None:
        from . import checkpoint

        _, state, _ = checkpoint.load(resume)
        if setting_defs.on_arrays(state["settings"]) and data is None:  # a fit: on the file it was trained on
            from .fitting import resumed_data_file

            data = resumed_data_file(resume, state)
    if data is None:
        for name, value in given_data.items():
            if value is not None:
                raise InvalidArgument(f"{setting_defs.get(name).flag} applies only with --data FILE.npz; leave it out for a task")
    elif click.get_current_context().get_parameter_source("task") == click.core.ParameterSource.COMMANDLINE:
        raise InvalidArgument("--task and --data exclude each other; give one")
    extra = {}
    if resume is not None:
        if click.get_current_context().get_parameter_source("task") == click.core.ParameterSource.DEFAULT:
            task = None  # the saved run's
        if not no_csv and csv_path is None:
            csv_path = state.get("csv") or metrics.default_csv_path(state["settings"]["task"])
        if save is None:  # the file resumed from, or the model file of the run whose checkpoint it is
            save = checkpoint.saved_model_path(state) if checkpoint.is_checkpoint(state) else resume
        extra["resume"] = resume
    if not no_csv and csv_path is None:
        csv_path = metrics.default_csv_path(task if data is None else setting_defs.ARRAYS)
    for name, value in (("checkpoint_every", checkpoint_every), ("checkpoint_seconds", checkpoint_seconds)):
        if value is not None:
            extra[name] = value
    if resume is not None:  # the rows cut from the CSV, if any, are said on stderr
        extra["_note"] = lambda line: click.echo(line, err=True)
    try:
        if data is None:
            result = run(task=task, csv=None if no_csv else csv_path, save=save, overwrite=overwrite,
                         progress=not quiet and sys.stderr.isatty(), **extra, **settings)
        else:
            from .fitting import fit_file

            result = fit_file(data, csv=None if no_csv else csv_path, save=save, overwrite=overwrite,
                              progress=not quiet and sys.stderr.isatty(), **extra, **settings, **given_data)
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        stopped = _signals.describe(exc)
        if result is None:
            click.echo(f"{stopped} before training started.", err=True)
        elif result.iterations == 0 and not result.train_seconds:
            click.echo(f"{stopped} before the first iteration (while compiling or loading the kernels). {_where(result)}".rstrip(), err=True)
        else:
            goal = setting_defs.resume_goal(result.settings)
            again = result.save_path if result.save_path is not None else result.checkpoint_path
            how = f" Continue with: fastrnn train --resume {again} {goal}" if again is not None else ""
            click.echo(f"{stopped} after {result.iterations} iterations. {_where(result)}{how}".rstrip(), err=True)
        sys.exit(_signals.exit_status(exc))
    except NumericalError as exc:
        result = getattr(exc, "result", None)
        kept = f" {_where(result)}" if result is not None else ""
        click.echo(f"Error: {exc}.{kept}", err=True)
        sys.exit(1)
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    click.echo(_summary(result))


def _where(result):
    parts = []
    if result.csv_path is not None:
        parts.append(f"{len(result.rows)} rows kept in {result.csv_path}")
    if result.save_path is not None:
        parts.append(f"model saved to {result.save_path}")
    if result.checkpoint_path is not None:
        parts.append(f"checkpoint in {result.checkpoint_path}")
    return ("; ".join(parts) + ".") if parts else ""


def _summary(result):
    from .settings import on_arrays

    if on_arrays(result.settings):
        return _data_summary(result)
    if result.rows and "bpc" in result.rows[-1]:  # the rows, not .history: that would import pandas (start-up)
        row = result.rows[-1]
        val = f", held-out bpc {row['val_bpc']:.3f}" if "val_bpc" in row else ""
        whole = result.final_scores
        if "val_bpc_all" in whole and whole["val_chars_all"] > whole["val_chars_row"]:
            val = (f", held-out bpc {whole['val_bpc_all']:.3f} on all {whole['val_chars_all']} held-out characters, "
                   f"{row['val_bpc']:.3f} on the {whole['val_chars_row']} each row scores")
        elif "val_bpc" in row and whole.get("val_chars_all", 0) > whole.get("val_chars_row", 0):
            val = (f", held-out bpc {row['val_bpc']:.3f} on the first {whole['val_chars_row']} of "
                   f"{whole['val_chars_all']} held-out characters (a completed run scores all of them)")
        text = (f"text: {row['bpc']:.3f} bits per character{val} (smoothed loss {row['smooth_loss']:.2f}, next-character "
                f"accuracy {row['char_accuracy']:.3f}) after {result.iterations} iterations; training "
                f"{result.train_seconds:.3f} s (start-up and compile {result.compile_seconds:.2f} s)")
        where = _where(result)
        return text + (f"; {where}" if where else "")
    task = TASKS.get(result.settings.get("task"))
    if result.rows and hasattr(task, "scores_line"):  # a task with its own held-out scores says them first
        from .tasks import make_task

        from ._rule_settings import is_online

        own = make_task(task.name, **{p.name: result.settings[p.name] for p in task.PARAMS})
        unit = f"steps of rule {result.settings['rule']}" if is_online(result.settings) else "iterations"
        if unit == "iterations" and getattr(own, "online", False):
            unit = f"windows of {own.T} steps (BPTT with the state carried)"
        text = (f"{task.name}: {own.scores_line({**result.rows[-1], **result.final_scores})} after {result.iterations} {unit}; training "
                f"{result.train_seconds:.3f} s (start-up and compile {result.compile_seconds:.2f} s)")
        where = _where(result)
        return text + (f"; {where}" if where else "")
    first = result.first_perfect_iteration
    reached = f"first 1.0 at iteration {first}" if first is not None else "never reached 1.0"
    text = (
        f"{result.settings['task']}: accuracy {result.final_accuracy:.3f} ({reached}) after {result.iterations} iterations; "
        f"training {result.train_seconds:.3f} s (start-up and compile {result.compile_seconds:.2f} s)"
    )
    where = _where(result)
    return text + (f"; {where}" if where else "")


def _data_summary(result):
    """The line `fastrnn train --data` ends with: the last row's loss and accuracy (and validation)."""
    s, last = result.settings, (result.rows[-1] if result.rows else {})
    scores = ", ".join(f"{k} {last[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in last)
    head = f"the {s['head']} head{', inferred from Y' if s.get('head_inferred') else ''}"
    text = (f"{s.get('data_file', 'arrays')}: {scores or 'no rows'} after {last.get('epoch', 0)} epochs "
            f"({result.iterations} iterations of {s['batch']} {'stream' if s['window'] else 'sequence'}{'' if s['batch'] == 1 else 's'}) "
            f"with {head}; "
            f"training {result.train_seconds:.3f} s (start-up and compile {result.compile_seconds:.2f} s)")
    where = _where(result)
    return text + (f"; {where}" if where else "")


# ------------------------------------------------------------------------- sample


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.option("--length", type=click.IntRange(min=0), default=200, show_default=True,
              help="Characters to draw (at most 10000000), printed as they are drawn.")
@click.option("--temperature", type=NON_NEGATIVE, default=1.0, show_default=True,
              help="Each character is drawn from softmax(logits / T): below 1 more conservative (the likely characters "
                   "likelier), above 1 more varied (closer to uniform); 0 always takes the most likely character.")
@click.option("--prime", default="", help="Text the model reads first; the sample continues it (printed before it).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the draw: the same seed gives the same text.")
def sample(model_path, length, temperature, prime, seed):
    """Print text drawn from a character model trained with --task text, a line at a time as it is drawn."""
    from . import text
    from .model import RNN

    model = RNN.load(model_path)
    if not isinstance(model.metadata.get(text.VOCAB_KEY), str):
        raise InvalidArgument(f"model file {model_path} has no vocabulary: it was not trained on text; sample from a "
                              f"model saved by `fastrnn train --task text --save FILE`")
    if temperature == 0 and click.get_current_context().get_parameter_source("seed") == click.core.ParameterSource.COMMANDLINE:
        raise InvalidArgument(f"--seed {seed} has no effect with --temperature 0, which always takes the most likely "
                              f"character: leave --seed out, or draw with a temperature above 0")
    if length > text.MAX_SAMPLE_LENGTH:
        per = text.seconds_per_character(model, draws=50)
        raise InvalidArgument(f"--length {length} would take about {_duration(length * per)} here ({per * 1e6:.0f} us a "
                              f"character); one command draws at most {text.MAX_SAMPLE_LENGTH} characters: draw a long "
                              f"text in parts, continuing each with --prime (the previous part's end)")
    if length > 100_000:  # long enough to wait for: say how long
        per = text.seconds_per_character(model, draws=50)
        if length * per > 10:
            click.echo(f"drawing {length} characters takes about {_duration(length * per)} here ({per * 1e6:.0f} us a "
                       f"character); the text is printed as it is drawn", err=True)
    text.encode(model.metadata[text.VOCAB_KEY], prime, name="--prime")  # refused before anything is printed
    click.echo(prime, nl=False)  # click.echo flushes: every piece goes out as it is drawn
    text.sample(model, length=length, temperature=temperature, prime=prime, seed=seed,
                write=lambda piece: click.echo(piece, nl=False))
    click.echo()


def _duration(seconds):
    """3.2 -> '3 s', 300 -> '5 minutes', 24000 -> '6.7 hours'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


# ------------------------------------------------------------------- predict / eval


def _load_model(model_path, bits=None, digits=None, task=None, need_task=True, offer_task=False, decoding=None,
                params=None):
    """The saved model and the task whose data it reads (None when it has none and none is needed).

    The task is ``task`` when given (a name), else the one the model was trained on,
    at the width ``bits``/``digits`` (and the other task parameters in ``params``) when
    given. A model whose stored task is malformed, or does not fit the model's sizes, is
    refused naming the file.
    """
    params = {**(params or {}), **{k: v for k, v in dict(bits=bits, digits=digits).items() if v is not None}}
    from .model import RNN
    from .settings import on_arrays
    from .tasks import make_task, require_decoding, task_from_metadata

    model = RNN.load(model_path)
    own = model.metadata.get("task")
    if task is not None:
        task_obj = make_task(task, **params)
        what = f"--task {task}"
    elif own is None or on_arrays(model.metadata):  # saved by RNN.save, or trained on arrays (fit, train --data): no task
        if not need_task:
            return model, None
        if on_arrays(model.metadata):
            origin = f"was trained on arrays (--data {_short_text(model.metadata.get('data_file', 'arrays'))})"
        else:
            origin = "was saved with RNN.save"
        sizes = {name: n for name, n in _task_input_sizes().items() if TASKS[name].decodes or offer_task}
        fits = [name for name, n in sizes.items() if n == model.n_in]
        if fits:
            how = f"pass --task {' or --task '.join(fits)} to give it that task's data (inputs of size {model.n_in})"
        else:
            how = (f"--task gives it a task's data, but none has inputs of its size n_in={model.n_in} "
                   f"({', '.join(f'{name} {n}' for name, n in sizes.items())})")
        raise InvalidArgument(f"the model carries no task: {model_path} {origin}; {how}")
    else:
        if decoding and own in TASKS:
            require_decoding(TASKS[own], decoding)  # the text task never decodes, whether its file is there or not
        missing = _missing_task_data(model)
        if missing is not None and not need_task:
            return model, None
        if missing is not None:
            raise InvalidArgument(f"{model_path} was trained on {missing}; put it back there (a model needs only "
                                  f"itself for `fastrnn spectrum` and `fastrnn sample`)")
        try:
            task_from_metadata(model.metadata)
        except FastRNNError as exc:
            raise ModelFileError(f"model file {model_path} is corrupt: its task ({exc})") from None
        task_obj = task_from_metadata(model.metadata, **params)
        what = f"the task it was trained on ({task_obj.name})"
    if task_obj.n_in != model.n_in or (need_task and (task_obj.n_out, task_obj.head) != (model.n_out, model.head)):
        raise ModelFileError(
            f"model file {model_path} (n_in={model.n_in}, n_out={model.n_out}, head {model.head}) does not fit {what}, "
            f"which needs n_in={task_obj.n_in}, n_out={task_obj.n_out}, head {task_obj.head}"
        )
    return model, task_obj


def _missing_task_data(model):
    """'the text file X, which cannot be read now (...)' when the task a model was trained on reads a
    file that is gone (a text model's text, moved or deleted); None otherwise."""
    import os

    path = model.metadata.get("text") if model.metadata.get("task") == "text" else None
    if isinstance(path, str) and not os.path.isfile(path):
        return f"the text file {_short_text(path)!r}, which cannot be read now (moved or deleted)"
    return None


def _task_input_sizes():
    """{task: n_in} of every task at its defaults (what --task NAME gives the study commands)."""
    from .tasks import make_task

    return {name: make_task(name).n_in for name in TASKS}


def _short_text(value, limit=120):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_data_memory(task_obj, samples, hidden, layers, option="--samples"):
    """Refuse task data (and the forward pass over it) that cannot fit in memory."""
    from ._checks import check_memory

    per_sample = task_obj.T * (2 * task_obj.n_in + 3 * task_obj.n_out + 1 + 2 * layers * hidden) * 8
    check_memory(f"{option} {samples} ({task_obj.name}, {task_obj.T} steps, hidden {hidden})", samples * per_sample,
                 f"choose a smaller {option}")


def _load(model_path, bits=None, digits=None, task=None):
    """A saved model and its task (``task`` when given), which must decode outputs (for predict and eval)."""
    from .tasks import require_decoding

    command = "predict` and `fastrnn eval"
    model, task = _load_model(model_path, bits, digits, task=task, decoding=command)
    return model, require_decoding(task, command)


#: The tasks whose outputs predict and eval can read as sums, and their --task help.
DECODING = [name for name, cls in TASKS.items() if cls.decodes]
TASK_HELP = "Read the model as this task's (a model trained on arrays or saved by RNN.save has none) [as trained]."


@cli.command(context_settings=dict(ignore_unknown_options=True))  # so that -1 reaches the range check
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("a", type=click.IntRange(min=0))
@click.argument("b", type=click.IntRange(min=0))
@click.option("--bits", type=click.IntRange(2, 62), help="Width for a binary model [as trained].")
@click.option("--digits", type=click.IntRange(2, 18), help="Width for a digits model [as trained].")
@click.option("--task", type=click.Choice(DECODING), help=TASK_HELP)
def predict(model_path, a, b, bits, digits, task):
    """Print the sum A + B that the model computes, beside the true one."""
    import numpy as np

    model, task = _load(model_path, bits, digits, task)
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
@click.option("--task", type=click.Choice(DECODING), help=TASK_HELP)
def evaluate(model_path, samples, bits, digits, seed, task):
    """Score a model on fresh sums, also at another width than it was trained on."""
    import numpy as np

    model, task = _load(model_path, bits, digits, task)
    _check_data_memory(task, samples, model.n_hidden, model.layers)
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


# ------------------------------------------------------------------------ analysis


def _study_models(model_paths, task, activations, hidden, layers, seed, params, init_scale, need_task=True,
                  cells=None):
    """(label, model, task) for each saved model, or a fresh model per activation (and per cell:
    the activations apply to the vanilla cell, the gated cells have their own).

    A saved model reads ``task``'s data when it is given, else its own task's; with
    ``need_task=False`` a model with neither comes with task None.
    """
    from .model import RNN
    from .tasks import make_task
    from .training import TASK_DEFAULTS

    if model_paths:
        if activations or cells:
            raise InvalidArgument("--activation and --cell build fresh models; they cannot be combined with MODEL files")
        layers_given = click.get_current_context().get_parameter_source("layers") == click.core.ParameterSource.COMMANDLINE
        shaping = [flag for flag, given in (("--hidden", hidden is not None), ("--layers", layers_given),
                                            ("--init-scale", init_scale is not None)) if given]
        if shaping:
            raise InvalidArgument(f"{', '.join(shaping)} shape fresh models; a MODEL file has its own: leave "
                                  f"{'it' if len(shaping) == 1 else 'them'} out, or give no MODEL")
        out = []
        for path in model_paths:
            model, task_obj = _load_model(path, task=task, need_task=need_task, offer_task=True, params=params)
            out.append((str(path), model, task_obj))
        return out
    task_obj = make_task(task or "binary", **params)
    d = TASK_DEFAULTS[task_obj.name]
    scale = d["init_scale"] if init_scale is None else init_scale
    out = []
    for cell in cells or ["rnn"]:
        for act in (activations or [d["activation"]]) if cell == "rnn" else ["tanh"]:
            model = RNN(task_obj.n_in, hidden or d["hidden"], task_obj.n_out, layers=layers, activation=act,
                        head=task_obj.head, seed=seed, init_scale=None if scale == "fan_in" else scale, cell=cell)
            name = act if not cells else cell if cell != "rnn" else f"rnn {act}"
            out.append((f"{name} (untrained)", model, task_obj))
    return out


def _cell_list(value):
    from .cells import CELLS

    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in names if v not in CELLS]
    if bad or not names:
        raise click.BadParameter(f"{value!r}: give a comma-separated list of {', '.join(CELLS)}", param_hint="'--cell'")
    return names


def _activation_names():
    """The registered activations' names (fastrnn.activations), for the commands' choices."""
    from .activations import ACTIVATIONS

    return list(ACTIVATIONS)


def _activation_list(value):
    from .activations import ACTIVATIONS

    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in names if v not in ACTIVATIONS]
    if bad or not names:
        raise click.BadParameter(f"{value!r}: give a comma-separated list of {', '.join(ACTIVATIONS)}",
                                 param_hint="'--activation'")
    return names


def _setting_option(name, text=None):
    """An option of a study command for a training setting: its type and defaults from fastrnn.settings."""
    from . import settings

    setting = settings.get(name)
    return click.option(setting.flag, name, type=_click_type(setting),
                        help=f"{text or setting.help} {setting.default_text(TASKS.values())}")


def _task_param_names():
    """Every task's own parameters (bits, digits, lag, ...), from the task registry."""
    from .settings import task_params

    return [p.name for p in task_params(TASKS)]


STUDY_OPTIONS = [
    click.option("--task", type=click.Choice(list(TASKS)),
                 help="Task whose data the study uses [a MODEL's own task; binary for fresh models]."),
    *[_setting_option(name) for name in _task_param_names()],
    _setting_option("hidden", "Hidden units of fresh models."),
    click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seeds fresh models and the data."),
    click.option("--samples", type=click.IntRange(min=1), default=32, show_default=True, help="Sequences of task data."),
    _setting_option("init_scale", "Initial weights of fresh models: uniform in [-s, s], or fan_in."),
]


def study_options(fn):
    for option in reversed(STUDY_OPTIONS):
        fn = option(fn)
    return fn


@cli.command()
@click.option("--task", type=click.Choice([*TASKS, "random"]), default="random", show_default=True,
              help="Data: a task's encoding, or random inputs for --n-in/--n-out/--head.")
@click.option("--n-in", type=click.IntRange(min=1), default=3, show_default=True, help="random: inputs.")
@click.option("--n-out", type=click.IntRange(min=1), default=3, show_default=True, help="random: outputs.")
@click.option("--head", type=click.Choice(["softmax", "sigmoid", "linear"]), default="softmax", show_default=True, help="random: head.")
@click.option("--length", type=click.IntRange(min=1), default=6, show_default=True, help="random: time steps.")
@click.option("--hidden", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--activation", type=click.Choice(_activation_names()), default="tanh", show_default=True,
              help="The vanilla cell's activation.")
@click.option("--cell", type=click.Choice(["rnn", "gru", "lstm"]), default="rnn", show_default=True,
              help="The recurrent cell (gru and lstm: PyTorch's).")
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--eps", type=POSITIVE, default=1e-5, show_default=True, help="Finite-difference step.")
@click.option("--bptt-truncate", type=click.IntRange(min=0), help="Also check truncated BPTT with this K.")
def gradcheck(task, n_in, n_out, head, length, hidden, layers, activation, cell, batch, seed, eps, bptt_truncate):
    """Check BPTT gradients against central finite differences (float64)."""
    import numpy as np

    from . import analysis
    from .gradcheck import gradcheck as check
    from ._checks import check_memory
    from .model import RNN
    from .tasks import make_task

    if task != "random":  # the task's encoding fixes these: given, they would be ignored
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("n_in", "n_out", "head", "length")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise InvalidArgument(f"{', '.join(given)} apply to --task random only; the {task} task's encoding sets its "
                                  f"inputs, outputs, head and steps: leave them out, or use --task random")
    check_memory(f"--batch {batch} --length {length}", batch * length * (n_in + 2 * n_out + 2 * layers * hidden) * 8 * 4,
                 "choose a smaller --batch or --length")
    rng = np.random.default_rng([seed, 3])
    if task == "random":
        X = rng.standard_normal((batch, length, n_in))
        if head == "softmax":
            Y = np.eye(n_out)[rng.integers(0, n_out, (batch, length))]
        elif head == "sigmoid":
            Y = rng.integers(0, 2, (batch, length, n_out)).astype(float)
        else:
            Y = rng.standard_normal((batch, length, n_out))
        mask = None
    else:
        task_obj = make_task(task, digits=4 if task == "digits" else None)
        data = task_obj.sample(rng, batch)
        X, Y, mask = data.X, data.Y, data.mask
        n_in, n_out, head = task_obj.n_in, task_obj.n_out, task_obj.head
    model = RNN(n_in, hidden, n_out, layers=layers, activation=activation, head=head, seed=seed, init_scale=0.8, cell=cell)
    click.echo(f"model: {model!r}; data: {task}, batch {X.shape[0]}, {X.shape[1]} steps; eps {eps}")
    report = check(model, X, Y, mask=mask, eps=eps)
    click.echo("full BPTT against central differences:")
    click.echo(str(report))
    ok = report.passed
    if bptt_truncate is not None and cell != "rnn":
        click.echo(
            f"\nbptt_truncate={bptt_truncate}: a truncated gradient is not the gradient of the loss, so finite differences "
            f"cannot check it, and a {cell} cell's path-length parts are defined by truncation itself (G_p = "
            f"grad(K=p) - grad(K=p-1)), so they cannot check it either. The test suite checks truncated {cell} "
            f"gradients against a plain-numpy twin written from the definition (tests/test_cells.py)."
        )
    elif bptt_truncate is not None:
        K = bptt_truncate
        click.echo(
            f"\nbptt_truncate={K}: a truncated gradient is not the gradient of the loss, so finite differences cannot "
            f"check it. It is checked instead against the sum of the path-length parts G_p for p <= {K}, computed by "
            f"plain numpy (fastrnn.path_gradients), whose sum over all p is the full gradient checked above."
        )
        _, trunc = model.loss_and_grads(X, Y, mask=mask, bptt_truncate=K)
        G = analysis.path_gradients(model, X, Y, mask)
        click.echo(f"{'parameter':<10} {'shape':<12} {'max rel error':>14}  result")
        for name, parts in G.items():
            want = parts[: K + 1].sum(axis=0)
            err = float(np.max(np.abs(trunc[name] - want)) / max(np.max(np.abs(trunc[name])) + np.max(np.abs(want)), 1e-300))
            passed = err < 1e-10
            ok = ok and passed
            click.echo(f"{name:<10} {str(want.shape):<12} {err:>14.3e}  {'pass' if passed else 'FAIL'}")
    click.echo("all gradients pass" if ok else "some gradients FAIL")
    sys.exit(0 if ok else 1)


@cli.command()
@click.argument("model_paths", metavar="[MODEL]...", nargs=-1, type=click.Path())
@study_options
@click.option("--activation", "activations", callback=lambda c, p, v: _activation_list(v),
              help="Fresh models with these activations side by side, e.g. tanh,sigmoid,relu.")
@click.option("--cell", "cells", callback=lambda c, p, v: _cell_list(v),
              help="Fresh models with these cells side by side, e.g. rnn,gru,lstm (--activation sets rnn's).")
@click.option("--out", type=click.Path(), required=True, help="PNG of mean |G_p| against p.")
@click.option("--csv", "csv_path", type=click.Path(), help="The curves as CSV (label, path_length, mean_abs_grad).")
@click.option("--overwrite", is_flag=True, help="Allow replacing --out/--csv.")
def paths(model_paths, task, hidden, layers, seed, samples, init_scale, activations, cells, out, csv_path, overwrite,
          **params):
    """Path-length gradients: how much of dW flows through paths of p recurrences."""
    import numpy as np
    import pandas as pd

    from . import analysis, metrics, plots

    plots.check_png(out)
    metrics.check_new_file(out, "plot", overwrite, "--out")
    if csv_path:
        metrics.check_distinct_files(**{"--out": out, "--csv": csv_path})
        metrics.check_new_file(csv_path, "CSV", overwrite, "--csv")
    profiles, rows = [], []
    with np.errstate(all="ignore"):  # overflowing states show as inf or nan in the output, not as warnings
        for label, model, task_obj in _study_models(model_paths, task, activations, hidden, layers, seed, params,
                                                    init_scale, cells=cells):
            _check_data_memory(task_obj, samples, model.n_hidden, model.layers)
            data = task_obj.sample(np.random.default_rng([seed, 2]), samples)
            profile = analysis.path_profile(analysis.path_gradients(model, data.X, data.Y, data.mask), "W0")
            profiles.append((label, profile))
            rows += [dict(label=label, path_length=p, mean_abs_grad=float(v)) for p, v in enumerate(profile)]
            shown = " ".join(f"{v:.2e}" for v in profile)
            click.echo(f"{label}: mean |G_p| of W0 for p = 0..{len(profile) - 1}: {shown}")
    plots.plot_paths(profiles, out, title=f"path-length gradients, {task_obj.name} data, {task_obj.T} steps")
    click.echo(f"plot written to {out}")
    if csv_path:
        metrics.write_csv(csv_path, pd.DataFrame(rows))
        click.echo(f"curves written to {csv_path}")


@cli.command()
@click.argument("model_paths", metavar="[MODEL]...", nargs=-1, type=click.Path())
@study_options
@click.option("--activation", "activations", callback=lambda c, p, v: _activation_list(v),
              help="Fresh models with these activations, e.g. tanh,relu.")
def spectrum(model_paths, task, hidden, layers, seed, samples, init_scale, activations, **params):
    """Spectral radius and singular values of each W, and norms of step-Jacobian products."""
    import numpy as np

    from . import analysis

    with np.errstate(all="ignore"):  # overflowing states show as inf or nan in the output, not as warnings
        for label, model, task_obj in _study_models(model_paths, task, activations, hidden, layers, seed, params, init_scale,
                                                    need_task=False):
            click.echo(f"== {label}: {model!r}")
            for spec in analysis.model_spectra(model):
                sv = spec.singular_values
                shown = " ".join(f"{v:.3f}" for v in sv[:8]) + (" ..." if sv.size > 8 else "")
                click.echo(f"{spec.name}: spectral radius {spec.spectral_radius:.4f}; singular values {shown}")
            if model.cell != "rnn":
                click.echo(f"step-Jacobian products: defined for the vanilla cell (diag(f'(a)) W); a {model.cell} "
                           f"cell's step Jacobian is not, so `fastrnn paths` shows how its gradients vanish instead")
                continue
            if task_obj is None and _missing_task_data(model) is not None:
                click.echo(f"step-Jacobian products: this model was trained on {_missing_task_data(model)}; put it "
                           f"back there to draw input sequences from it")
                continue
            if task_obj is None:
                sizes = _task_input_sizes()
                fits = [name for name, n in sizes.items() if n == model.n_in]
                how = (f"pass --task {' or --task '.join(fits)} to fit its n_in={model.n_in}" if fits else
                       f"--task gives a task's inputs, and none has its n_in={model.n_in} "
                       f"({', '.join(f'{name} {n}' for name, n in sizes.items())})")
                click.echo(f"step-Jacobian products: this model carries no task to draw input sequences from; {how}")
                continue
            _check_data_memory(task_obj, samples, model.n_hidden, model.layers)
            data = task_obj.sample(np.random.default_rng([seed, 2]), samples)
            norms = analysis.jacobian_norms(model, data.X)
            click.echo(f"||prod of k step Jacobians diag(f'(a)) W0||, mean over {samples} {task_obj.name} sequences:")
            for k, v in enumerate(norms, start=1):
                click.echo(f"  k={k:<3d} {v:.4e}")


@cli.command()
@click.argument("runs", metavar="RUN.csv|FOLDER...", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="PNG to write.")
@click.option("--overwrite", is_flag=True, help="Allow replacing --out.")
def plot(runs, out, overwrite):
    """Loss, error and accuracy against iteration for one or more runs overlaid (text runs: bits per character).

    A folder stands for every run CSV in it; a sweep's summary.csv is skipped.
    """
    from . import metrics, plots
    from .report import plot_inputs

    plots.check_png(out)
    metrics.check_new_file(out, "plot", overwrite, "--out")
    runs, skipped = plot_inputs(runs)
    for path in runs:
        metrics.check_distinct_files(**{"--out": out, "the run": path})
    loaded = [metrics.read_run(path) for path in runs]
    empty = [(path, meta) for path, (frame, meta) in zip(runs, loaded) if not metrics.has_rows(frame)]
    if len(empty) == len(runs):
        raise InvalidArgument(f"nothing to draw: {metrics.no_rows_note(empty)} {metrics.NO_ROWS}")
    runs, loaded = zip(*[(path, run) for path, run in zip(runs, loaded) if metrics.has_rows(run[0])])
    labels = _run_labels([meta for _, meta in loaded], runs)
    try:
        with warnings.catch_warnings():  # matplotlib's and numpy's warnings about odd values: the line below says it
            warnings.simplefilter("ignore")
            plots.plot_runs([(label, frame) for label, (frame, _) in zip(labels, loaded)], out)
    except FastRNNError:
        raise
    except (ValueError, OverflowError) as exc:  # matplotlib cannot place ticks for values near the float limits
        raise InvalidArgument(f"cannot draw {', '.join(map(str, runs))}: values out of range for a plot "
                              f"({' '.join(str(exc).split())})") from None
    shown = f" (skipped {', '.join(map(str, skipped))}: a sweep's summary, not a run)" if skipped else ""
    click.echo(f"plot of {len(runs)} run(s) written to {out}{shown}")
    if empty:
        click.echo(f"left out, {metrics.NO_ROWS}: {metrics.no_rows_note(empty)}")


def _run_labels(metas, paths):
    """Label each run by the settings that differ between the runs (all of task/lr/hidden if only one)."""
    from .report import SETTINGS

    keys = [k for k in SETTINGS if len({str(m.get(k)) for m in metas}) > 1]
    if not keys:
        keys = ["task", "lr", "hidden", "seed"]
    labels = []
    for meta, path in zip(metas, paths):
        if not meta:
            labels.append(str(path))
        else:
            labels.append(" ".join(f"{k}={meta.get(k)}" for k in keys))
    return labels


@cli.command()
@click.argument("folder", type=click.Path())
@click.option("--by", help="Comma-separated settings to group by [those that vary, seed aside].")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "markdown"]), default="table", show_default=True)
def report(folder, by, fmt):
    """Summarize every run in FOLDER, grouped by setting."""
    import pandas as pd

    from . import report as rep
    from .metrics import NO_ROWS

    runs, empty = rep.split_empty(rep.collect(folder))
    note = f"left out, {NO_ROWS}: {_no_rows(empty)}" if len(empty) else ""
    if not len(runs):
        raise InvalidArgument(f"{folder} holds no run with rows to report: {_no_rows(empty)} {NO_ROWS}")
    keys = [k.strip() for k in by.split(",") if k.strip()] if by else None
    summary = rep.summarize(runs, keys)
    if fmt == "csv":
        click.echo(summary.to_csv(index=False), nl=False)
    elif fmt == "markdown":
        click.echo(rep.to_markdown(summary))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            click.echo(summary.to_string(index=False))
    if note:  # beside the table; on stderr, so that the CSV and markdown outputs stay the table alone
        click.echo(note, err=fmt != "table")


def _no_rows(empty):
    """'a.csv (status interrupted), ...' for report's runs without rows."""
    from .metrics import no_rows_note

    return no_rows_note([(run, {"status": status}) for run, status in zip(empty["run"], empty["status"])])


# --------------------------------------------------------------------------- sweep


def _task_option(help_text):
    from . import settings

    return click.option("--task", type=_click_type(settings.TASK), default=settings.TASK.default, show_default=True,
                        help=help_text)


def _sweepable_help():
    # sweeps.SWEEPABLE's rule, without importing the sweep machinery (multiprocessing, ...) into every
    # command at start-up; tests/test_startup.py checks that the two agree
    from . import settings

    SWEEPABLE = tuple(name for name in settings.names() if name != "seed")
    return ("A train setting and its values (repeatable), e.g. --set lr=0.05,0.1 --set hidden=8,16; "
            f"'default' is the setting's default. Settings: {', '.join(SWEEPABLE)}.")


@cli.command()
@_task_option("What to learn (or --set task=...).")
@click.option("--seeds", default="0", show_default=True, help="Seeds to run: 0-99, 3, or 0,5,7.")
@click.option("--set", "sets", multiple=True, metavar="NAME=V1,V2,...", help=_sweepable_help())
@click.option("--out", type=click.Path(), required=True, help="Folder for the runs' CSV/JSON files and summary.csv.")
@click.option("--overwrite", is_flag=True,
              help="Redo runs in --out made with other settings or whose files are unreadable (else refused).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes [one per CPU this process may use that other work leaves free].")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Send the runs to this Dask scheduler instead.")
@click.option("--vectorize/--no-vectorize", default=True, show_default=True,
              help="Train small same-shape runs together in one parallel kernel (same numbers as separate runs).")
@click.option("--force", is_flag=True,
              help="Take over --out even when a sweep on another host holds its lock file (sweep.lock).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep(task, seeds, sets, out, overwrite, workers, scheduler, vectorize, force, quiet):
    """Train every combination of the --set values for every seed, on every core."""
    from . import sweeps as sw

    grid = {}
    for text in sets:
        name, values = sw.parse_set(text)
        if name in grid:
            raise InvalidArgument(f"--set {name}= is given twice; list all its values in one --set")
        grid[name] = values
    fixed = {k: v[0] for k, v in grid.items() if len(v) == 1}
    swept = {k: v for k, v in grid.items() if len(v) > 1}
    from . import _signals

    try:
        with _signals.stop_handlers():
            result = sw.sweep(task=task, seeds=sw.parse_seeds(seeds), grid=swept, out=out, workers=workers,
                              scheduler=scheduler, progress=not quiet and sys.stderr.isatty(), vectorize=vectorize,
                              overwrite=overwrite, force=force, **fixed)
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            click.echo(f"{_signals.describe(exc)}: {result.ran} runs finished this time ({len(result.summary)} in all) "
                       f"are kept in {result.out}; run the same command again to do the rest.", err=True)
        sys.exit(_signals.exit_status(exc))
    click.echo(_sweep_summary(result))


def _sweep_summary(result):
    """The sweep's closing lines: runs of tasks solved at accuracy 1.0 are counted as reaching it; the
    other tasks' headline metrics (text: bpc, held-out bpc, next-character accuracy) get their median,
    best and worst run."""
    from .tasks import LOWER_IS_BETTER, has_goal, headline

    summary = result.summary
    n = len(summary)
    lines = [f"{n} runs in {result.out} ({result.ran} ran in {result.seconds:.1f} s, {result.skipped} already finished and skipped)"]
    diverged = f"diverged: {int(summary['diverged'].sum()) if n else 0}"
    solvable = summary[summary["task"].map(has_goal)] if n else summary
    if len(solvable) or not n:
        perfect = solvable[solvable["final_accuracy"] == 1.0] if n else solvable
        lines.append(f"reached accuracy 1.0: {len(perfect)}/{len(solvable)}; {diverged}")
        missed = solvable[solvable["final_accuracy"] != 1.0]["run"].tolist()
        if missed:
            shown = ", ".join(missed[:10]) + (f" and {len(missed) - 10} more" if len(missed) > 10 else "")
            lines.append(f"did not reach 1.0: {shown}")
    others = summary[~summary["task"].map(has_goal)] if n else summary
    for metric in dict.fromkeys(m for t in others["task"] for m in headline(t)) if len(others) else ():
        values = others[["run", f"final_{metric}"]].dropna()
        if not len(values):
            continue
        column = values[f"final_{metric}"].astype(float)
        best, worst = (column.idxmin(), column.idxmax()) if metric in LOWER_IS_BETTER else (column.idxmax(), column.idxmin())
        lines.append(f"final {metric}: median {column.median():.4f}, best {column[best]:.4f} ({values['run'][best]}), "
                     f"worst {column[worst]:.4f} ({values['run'][worst]}) over {len(column)} runs")
    if n and not len(solvable):
        lines.append(diverged)
    lines.append(f"summary: {result.out / 'summary.csv'}")
    return "\n".join(lines)


# ------------------------------------------------------------------------- entry


def main(argv=None):
    """Entry point of the installed ``fastrnn`` command: one line per error, never a traceback.

    Called without ``argv`` in the ``fastrnn`` command's own process (the process
    ends here; the ``gc`` shortcut of :mod:`fastrnn._startup`), it freezes Python's
    garbage collector before the command and again on the way out: the collections
    during the run and the interpreter's last one at exit would otherwise walk every
    object numba and NumPy created at import (with the paused collection during the
    imports, 0.06-0.10 s of a warm ``fastrnn train``; the process's memory is freed
    by the system anyway). Exit handlers still run and files are still closed.
    """
    freeze = argv is None and "gc" in _startup.shortcuts()
    if freeze:
        import gc

        gc.freeze()  # what the imports made stays: no collection needs to look at it again
        _startup.resume_gc()  # off during the imports of the command (fastrnn._startup.pause_gc)
    try:
        _main(argv)
    finally:
        if freeze:
            import gc

            gc.freeze()


def _main(argv):
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
    except KeyboardInterrupt as exc:
        from . import _signals

        click.echo(f"{_signals.describe(exc)}.", err=True)
        sys.exit(_signals.exit_status(exc))
    except USAGE_ERRORS as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except FastRNNError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except MemoryError as exc:  # a size no up-front check foresaw
        detail = f" ({' '.join(str(exc).split())})" if str(exc) else ""
        click.echo(f"Error: not enough memory for this request{detail}; choose smaller sizes", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"Error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
