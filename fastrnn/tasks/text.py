"""The text task: a character-level language model, trained as min-char-rnn trains it.

The data, the walk, the metrics and sampling live in :mod:`fastrnn.text`; this
module makes them a task of the registry: ``fastrnn train --task text --text FILE``.
The vocabulary is the sorted set of the file's characters, inputs and targets are
one-hot, the head is softmax, and the hidden state is carried from window to
window (:class:`fastrnn.text.TextSource` gives the resets).
"""

import os

import numpy as np

from .. import text as _text
from ..settings import Setting
from ._base import Batch, Task

TEXT = Setting("text", "path", "text: the UTF-8 file to learn, character by character.", None, tasks=("text",),
               off="the shipped fastrnn/data/bptt.txt")
SEQ_LENGTH = Setting("seq_length", "int", "text: characters per training window (the BPTT length L).", 25, minimum=1,
                     tasks=("text",), together=True)
VAL_FRACTION = Setting("val_fraction", "float", "text: the share of the file's end held out; adds val_bpc (its first "
                       "2000 characters) to every row and val_bpc_all (all of it) to the result.",
                       0.0, minimum=0.0, below=1.0, tasks=("text",))

#: min-char-rnn's: hidden 100, tanh, Adagrad at lr 0.1, entries clipped to [-5, 5],
#: weights N(0, 0.01^2) (init_scale is the std for this task), biases 0, batch 1.
DEFAULTS = dict(iters=5000, batch=1, hidden=100, activation="tanh", optimizer="adagrad", lr=0.1, clip=None,
                init_scale=0.01, clip_value=5.0)


class TextTask(Task):
    """Next-character prediction on a text file (see the module)."""

    name = "text"
    head = "softmax"
    unit = "character"
    defaults = DEFAULTS
    PARAMS = (TEXT, SEQ_LENGTH, VAL_FRACTION)
    decodes = False
    description = "models the characters of a text"
    #: bits per character (training and held-out) and next-character accuracy; a window's exact match (the
    #: accuracy column) is near 0 for any real text, and no run is ever "solved"
    headline = ("bpc", "val_bpc", "char_accuracy")
    goal = False
    #: its source carries the hidden state across iterations (resets), so runs train one by one
    carries_state = True

    def __init__(self, text=None, seq_length=25, val_fraction=0.0):
        if text is None:  # the text that ships with fastrnn (about RNNs and BPTT)
            text = _text.example_path()
        self.text = os.path.abspath(TEXT.check(text))
        self.seq_length = SEQ_LENGTH.check(seq_length)
        self.val_fraction = VAL_FRACTION.check(val_fraction)
        self.data = _text.read_text(self.text, self.seq_length, self.val_fraction)
        self.vocab = self.data.vocab
        self.n_in = self.n_out = self.data.n_vocab
        self.T = self.positions = self.seq_length

    def sample(self, rng, n):
        """n windows of the training text at random starts (for probes and studies; training walks)."""
        ids = self.data.train_ids
        starts = rng.integers(0, len(ids) - self.T, n)
        cols = starts[:, None] + np.arange(self.T + 1)[None, :]
        windows = ids[cols]
        return Batch(_text.one_hot(windows[:, :-1], self.n_in), _text.one_hot(windows[:, 1:], self.n_out), None)

    def source(self, rng, batch, dtype):
        """min-char-rnn's walk over ``batch`` streams (``rng`` is not used: the walk is deterministic)."""
        return _text.TextSource(self.data.train_ids, self.n_in, seq_length=self.T, batch=batch, dtype=dtype)

    def model_metadata(self):
        return {**self.settings(), _text.VOCAB_KEY: self.vocab}

    def changed_since(self, metadata):
        """The text file changed since the run was saved when its vocabulary did (see also TextSource.restore)."""
        old = metadata.get(_text.VOCAB_KEY)
        if not isinstance(old, str) or old == self.vocab:
            return None
        gone, new = sorted(set(old) - set(self.vocab)), sorted(set(self.vocab) - set(old))
        parts = [f"{what} {', '.join(repr(c) for c in chars[:10])}{' ...' if len(chars) > 10 else ''}"
                 for what, chars in (("without", gone), ("with new", new)) if chars]
        return (f"the text file {self.text} changed since the run was saved: its vocabulary was {len(old)} characters, "
                f"now {len(self.vocab)} ({'; '.join(parts) or 'in another order'}); resume on the text the run was "
                f"trained on")

    def init_weights(self, model, s):
        """min-char-rnn's draw: weights N(0, init_scale^2), biases 0 (fan_in keeps the model's own draw)."""
        if s["init_scale"] != "fan_in":
            _text.init_normal(model, std=s["init_scale"], seed=s["seed"])

    def metrics(self, model):
        return TextRunMetrics(model, self.n_in, self.T, self.data.val_ids)


class TextRunMetrics:
    """The text columns of a run's rows (:class:`fastrnn.text.TextMetrics`), plus ``val_bpc``.

    ``val_bpc`` scores the held-out text's first ``sample + 1`` characters (default
    :data:`fastrnn.text.VAL_SAMPLE`), the same ones at every row; :meth:`final` scores
    all of it, once, at the end of the run.
    """

    def __init__(self, model, n_vocab, seq_length, val_ids, sample=None):
        self.model = model
        self.tracker = _text.TextMetrics(n_vocab, seq_length)
        self.val_ids = val_ids if len(val_ids) >= 2 else None
        n = _text.VAL_SAMPLE if sample is None else sample
        self.val_sample = None if self.val_ids is None else self.val_ids[: n + 1]
        self.columns = list(_text.COLUMNS) + (list(_text.VAL_COLUMNS) if self.val_ids is not None else [])

    def update(self, losses, errors):
        row = self.tracker.update(losses, errors)
        if self.val_ids is not None:
            row["val_bpc"] = _text.evaluate(self.model, self.val_sample)["bpc"]
        return row

    def final(self, score=True):
        """For the run's result: ``val_chars_all`` (the held-out text's predictions), ``val_chars_row``
        (those each row's ``val_bpc`` scores) and, with ``score``, ``val_bpc_all``: the whole held-out
        text's bits per character. {} without held-out text."""
        if self.val_ids is None:
            return {}
        out = dict(val_chars_all=len(self.val_ids) - 1, val_chars_row=len(self.val_sample) - 1)
        if score:
            out["val_bpc_all"] = _text.evaluate(self.model, self.val_ids)["bpc"]
        return out

    def state(self):
        return self.tracker.state()

    def restore(self, state):
        self.tracker.restore(state)
