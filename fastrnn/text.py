"""Text: a character-level language model trained the way min-char-rnn trains it.

Four pieces, all plain numpy (the training itself runs in the kernels):

* :func:`read_text` reads a UTF-8 file: the vocabulary is the sorted set of its
  characters, and the last ``val_fraction`` of the file can be held out.
* :class:`TextSource` is the data walk, min-char-rnn's, as a source object for
  the training loop: ``next(n) -> (X, Y, M, resets)``, ``state()``, ``restore()``.
* :class:`TextMetrics` turns a chunk's per-iteration losses and error counts into
  the text columns of a metrics row; :func:`evaluate` scores held-out text.
* :func:`sample` draws text from a trained model at a temperature.

The walk (batch 1). A pointer p starts at 0. Before each iteration, if it is the
first one or ``p + L + 1 >= len(data)``, the hidden state is reset to zeros and
p = 0. The inputs are characters p .. p+L-1, the targets p+1 .. p+L; then p += L.
The final state of a window is the initial state of the next; the gradient never
crosses a window boundary. With B streams the text is cut into B equal contiguous
parts (the tail that does not divide is dropped, as char-rnn does), each read by
the same walk; the parts have equal lengths, so every stream wraps at the same
iteration and one reset flag per iteration serves them all.

>>> text = "hello world, hello rnn"
>>> vocab = make_vocab(text)
>>> src = TextSource(encode(vocab, text), len(vocab), seq_length=4)
>>> X, Y, M, resets = src.next(2)
>>> X.shape, Y.shape, resets.tolist()      # (n * B, L, V) one-hot
((2, 4, 10), (2, 4, 10), [1, 0])
>>> decode(vocab, X[1].argmax(1)), decode(vocab, Y[1].argmax(1))
('o wo', ' wor')
"""

import codecs
import functools
import math
import os
import zlib

import numpy as np

from . import _checks, _files
from .exceptions import InvalidArgument, InvalidType, NumericalError

#: min-char-rnn's defaults: hidden 100, tanh, windows of 25, Adagrad at
#: lr 0.1, every gradient entry clipped to [-5, 5], weights N(0, 0.01^2), biases 0.
DEFAULTS = dict(hidden=100, activation="tanh", seq_length=25, optimizer="adagrad", lr=0.1, clip_value=5.0, init_std=0.01)

#: The columns a text run adds to each metrics row (``val_bpc`` only with held-out text).
COLUMNS = ["loss_per_char", "bpc", "smooth_loss", "char_accuracy"]
VAL_COLUMNS = ["val_bpc"]

#: Held-out characters predicted for each row's ``val_bpc``: the first ``VAL_SAMPLE + 1``
#: characters of the held-out text, read from a zero state, the same sample at every row
#: (char-rnn likewise scores a fixed number of validation batches). A row's cost is then
#: bounded whatever the file's size; the whole held-out text is scored once, at the end
#: of the run (:func:`evaluate`; ``val_bpc_all`` in the run's result).
VAL_SAMPLE = 2000

#: min-char-rnn's smoothing of the loss curve: smooth = 0.999 smooth + 0.001 loss.
SMOOTHING = 0.999


def example_path():
    """The path of the small text that ships with fastrnn (about RNNs and BPTT)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bptt.txt")


# ---------------------------------------------------------------------- vocabulary


def make_vocab(text):
    """The vocabulary of ``text``: its distinct characters, sorted, as one string."""
    return "".join(sorted(set(text)))


def encode(vocab, text, name="text"):
    """The indices (int64) of ``text``'s characters in ``vocab``.

    Characters outside the vocabulary raise InvalidArgument listing them.
    """
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted(set(text) - index.keys())
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise InvalidArgument(
            f"{name} has {len(unknown)} character(s) outside the model's vocabulary: {shown}; "
            f"use only characters of the training text"
        )
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))


def decode(vocab, ids):
    """The string whose characters are ``vocab[i]`` for i in ``ids``."""
    return "".join(vocab[int(i)] for i in ids)


#: The key of ``model.metadata`` that holds a text model's vocabulary (a string).
VOCAB_KEY = "vocab"


def one_hot(ids, n_vocab, dtype="float64"):
    """One-hot rows: ``ids`` of any shape -> array of shape ``ids.shape + (n_vocab,)``."""
    return np.eye(n_vocab, dtype=dtype)[ids]


def init_normal(model, std=0.01, seed=0):
    """min-char-rnn's initialisation, in place: weights N(0, std^2), biases zero.

    Drawn from ``numpy.random.default_rng(seed)``, one matrix after the other in
    ``model.param_names`` order; names of 1-dimensional parameters (b0, c, ...)
    are biases. Returns the model.
    """
    std = _checks.check_float("std", std, positive=True)
    rng = np.random.default_rng(_checks.check_int("seed", seed, minimum=0))
    for name in model.param_names:
        view = model.params[name]
        view[...] = 0.0 if view.ndim == 1 else rng.standard_normal(view.shape) * std
    return model


# ---------------------------------------------------------------------- reading


class Text:
    """A text file read for training.

    Attributes
    ----------
    path : str
    vocab : str
        The sorted distinct characters of the whole file (training and held-out part).
    ids : ndarray of int64, shape (N,)
        The whole file as vocabulary indices.
    train_ids, val_ids : ndarray of int64
        The first ``N - n_val`` characters and the last ``n_val`` (empty without
        ``val_fraction``).
    """

    def __init__(self, path, vocab, ids, n_val):
        self.path = path
        self.vocab = vocab
        self.ids = ids
        self.train_ids = ids[: len(ids) - n_val]
        self.val_ids = ids[len(ids) - n_val:]

    @property
    def n_vocab(self):
        return len(self.vocab)

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return f"Text({self.path!r}: {len(self.ids)} characters, vocabulary {self.n_vocab}, {len(self.val_ids)} held out)"


def read_text(path, seq_length=25, val_fraction=0.0, batch=1):
    """Read a UTF-8 text file for training; refuse anything the walk cannot use.

    A UTF-8 byte-order mark at the start of the file (written by some editors) is
    not part of the text: it is dropped, and never becomes a vocabulary character.

    Parameters
    ----------
    path : str or path-like
    seq_length : int
        L, the window length; the training part of every stream needs L + 2 characters.
    val_fraction : float in [0, 1)
        The last ``val_fraction`` of the file (rounded down to whole characters) is
        held out for ``val_bpc``; above 0 it must hold out at least 2 characters
        (one prediction to score).
    batch : int
        B, the number of streams the training part is cut into.

    Returns
    -------
    Text

    Raises
    ------
    InvalidArgument
        A missing file, a folder, an unreadable file, an empty file, a file that
        is not UTF-8 (the message gives the byte), or one too short for the walk.
    """
    L = _checks.check_int("seq_length", seq_length, minimum=1)
    B = _checks.check_int("batch", batch, minimum=1)
    F = _checks.check_float("val_fraction", val_fraction, minimum=0.0)
    if F >= 1.0:
        raise InvalidArgument(f"val_fraction must be below 1 (the share of the file held out), got {F}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise InvalidType(f"text must be the path of a UTF-8 text file, got {type(path).__name__}") from None
    if not os.path.exists(path):
        raise InvalidArgument(f"text file {path!r} does not exist; give the path of a UTF-8 text file")
    if os.path.isdir(path):
        raise InvalidArgument(f"text file {path!r} is a folder; give the path of a UTF-8 text file")
    kind = _files.not_regular(path)
    if kind is not None:  # /dev/zero would be read forever, a named pipe waits for a writer
        raise InvalidArgument(f"text file {path!r} is {kind}, not a regular file; give the path of a UTF-8 text file")
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0  # reading it says what is wrong
    # the bytes, then at least a character per 4 bytes as an int64 index: 3 bytes per byte at least
    _checks.check_memory(f"text file {path!r} ({_checks.format_bytes(size)})", 3 * size, "use a shorter text")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InvalidArgument(f"text file {path!r} cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not raw:
        raise InvalidArgument(f"text file {path!r} is empty; give a UTF-8 text file of at least {L + 2} characters")
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # a byte-order mark is no character of the text
    try:
        data = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"text file {path!r} is not UTF-8 (byte 0x{raw[bom + exc.start]:02x} at offset {bom + exc.start} is invalid); "
            f"convert it to UTF-8 first (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    if not data:
        raise InvalidArgument(f"text file {path!r} holds only a byte-order mark; give a UTF-8 text file of at least "
                              f"{L + 2} characters")
    n_val = int(math.floor(F * len(data)))
    n_train = len(data) - n_val
    need = L + 2
    if len(data) < need:
        raise InvalidArgument(
            f"text file {path!r} has {len(data)} characters; seq_length {L} needs at least {need} "
            f"(use a longer file or a smaller --seq-length)"
        )
    if n_train // B < need:
        raise InvalidArgument(
            f"text file {path!r} leaves {n_train} training characters, {n_train // B} per stream with batch {B}; "
            f"each stream needs at least {need} for seq_length {L} (use a smaller --batch, --seq-length or --val-fraction, or a longer file)"
        )
    if F > 0 and n_val < 2:  # one rule for every fraction: held out means scored, on at least one prediction
        raise InvalidArgument(
            f"val_fraction {F} holds out {n_val} character{'' if n_val == 1 else 's'} of the {len(data)} in {path!r}; "
            f"scoring needs at least 2 (one prediction): use --val-fraction {_fraction_holding(2, len(data))} or more, "
            f"or 0 to hold out nothing"
        )
    vocab = make_vocab(data)
    return Text(path, vocab, encode(vocab, data), n_val)


def _fraction_holding(chars, n):
    """The smallest fraction of 3 significant digits that holds out at least ``chars`` of ``n`` characters
    (``floor(fraction * n) >= chars``, as :func:`read_text` rounds)."""
    fraction = float(f"{chars / n:.3g}")
    while math.floor(fraction * n) < chars:
        fraction = float(f"{fraction * 1.01:.3g}")  # the next 3-digit value up (1% is at least one unit of the third digit)
    return fraction


# ---------------------------------------------------------------------- the walk


class TextSource:
    """min-char-rnn's data walk over B contiguous streams, as a training-loop source.

    Parameters
    ----------
    ids : array of int, shape (N,)
        The training text as vocabulary indices.
    n_vocab : int
        V, the size of the one-hot inputs and targets.
    seq_length : int
        L, the window length.
    batch : int
        B, the number of streams; stream b reads ``ids[b*P:(b+1)*P]`` with
        ``P = N // B``.
    dtype : {"float64", "float32"}
        dtype of X and Y.

    Attributes
    ----------
    n_in, n_out, T, batch : int
        V, V, L and B.
    pointer : int
        p, the start of the next window within each stream (before the reset check).
    iteration : int
        How many windows have been handed out.
    """

    kind = "text"

    def __init__(self, ids, n_vocab, seq_length=25, batch=1, dtype="float64"):
        self.n_vocab = _checks.check_int("n_vocab", n_vocab, minimum=1)
        self.L = _checks.check_int("seq_length", seq_length, minimum=1)
        self.batch = _checks.check_int("batch", batch, minimum=1)
        self.dtype = np.dtype(_checks.check_choice("dtype", str(np.dtype(dtype)), ("float64", "float32")))
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise InvalidArgument(f"ids must be a 1-dimensional integer array, got shape {ids.shape} dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_vocab):
            raise InvalidArgument(f"ids must lie in [0, {self.n_vocab}) (the vocabulary), got {ids.min()}..{ids.max()}")
        self.part = len(ids) // self.batch
        if self.part < self.L + 2:
            raise InvalidArgument(
                f"a text of {len(ids)} characters gives {self.part} per stream with batch {self.batch}; "
                f"each stream needs at least {self.L + 2} for seq_length {self.L} (use a smaller --batch or --seq-length)"
            )
        # streams[b] is stream b's text; char-rnn drops the tail that does not divide.
        self.streams = np.ascontiguousarray(np.asarray(ids[: self.part * self.batch], dtype=np.int64).reshape(self.batch, self.part))
        # a checksum of the text, so that a resume on another file is refused
        self.checksum = zlib.crc32(self.streams.tobytes()) & 0xFFFFFFFF
        self.pointer = 0
        self.iteration = 0
        self._eye = np.eye(self.n_vocab, dtype=self.dtype)

    n_in = property(lambda self: self.n_vocab)
    n_out = property(lambda self: self.n_vocab)
    T = property(lambda self: self.L)

    def next_ids(self, n):
        """The next n windows as indices: inputs (n*B, L), targets (n*B, L), resets (n,).

        Row ``it*B + b`` is stream b's window of iteration it; ``resets[it] == 1``
        where the state is reset to zeros before iteration it.
        """
        n = _checks.check_int("n", n, minimum=0)
        B, L = self.batch, self.L
        starts = np.empty(n, dtype=np.int64)
        resets = np.zeros(n, dtype=np.int64)
        p, it = self.pointer, self.iteration
        for k in range(n):
            if it == 0 or p + L + 1 >= self.part:
                p = 0
                resets[k] = 1
            starts[k] = p
            p += L
            it += 1
        self.pointer, self.iteration = p, it
        cols = starts[:, None, None] + np.arange(L + 1)[None, None, :]  # (n, 1, L+1)
        windows = self.streams[np.arange(B)[None, :, None], cols].reshape(n * B, L + 1)
        return windows[:, :L], windows[:, 1:], resets

    def next(self, n):
        """The data of the next n iterations: X, Y (n*B, L, V) one-hot, M empty, resets (n,) int64."""
        inputs, targets, resets = self.next_ids(n)
        M = np.empty((0, 0), dtype=self.dtype)  # empty mask: every step has a target
        return self._eye[inputs], self._eye[targets], M, resets

    def state(self):
        """The walk's position, JSON-able: ``restore(state())`` continues exactly."""
        return dict(kind=self.kind, pointer=int(self.pointer), iteration=int(self.iteration),
                    seq_length=self.L, batch=self.batch, part=self.part, n_vocab=self.n_vocab, checksum=self.checksum)

    def restore(self, state):
        """Continue from ``state`` (from :meth:`state`, possibly through JSON or npz)."""
        if not hasattr(state, "get"):
            raise InvalidType(f"state must be a dict as TextSource.state() returns, got {type(state).__name__}")
        mine = self.state()
        for key in ("kind", "seq_length", "batch", "part", "n_vocab", "checksum"):
            got = state.get(key)
            if got is None or (str(got) if key == "kind" else int(got)) != mine[key]:
                if got is not None and key in ("part", "n_vocab", "checksum"):  # the settings agree: the text does not
                    what = {"part": "characters per stream", "n_vocab": "vocabulary size"}.get(key, "checksum")
                    raise InvalidArgument(f"the text changed since the run was saved (its {what} was {got}, now "
                                          f"{mine[key]}); resume on the text the run was trained on")
                raise InvalidArgument(
                    f"the saved text position does not fit this run: {key} was {got}, now {mine[key]}; "
                    f"resume with the same text file, --seq-length and --batch"
                )
        pointer, iteration = int(state["pointer"]), int(state["iteration"])
        if not (0 <= pointer <= self.part and iteration >= 0):
            raise InvalidArgument(f"the saved text position is corrupt (pointer {pointer}, iteration {iteration})")
        self.pointer, self.iteration = pointer, iteration


# ---------------------------------------------------------------------- metrics


def bits_per_char(loss_sum, n_chars):
    """Bits per character of a summed natural-log loss over ``n_chars`` characters."""
    return loss_sum / (n_chars * math.log(2.0))


class TextMetrics:
    """The text columns of the metrics rows, from what the training kernel reports.

    Per chunk of n iterations the kernel gives ``losses`` (n,), each the window's
    summed -ln p(target) averaged over the B streams, and ``errors`` (n*B,), each
    a window's count of wrong next-character predictions (arg max != target).

    Parameters
    ----------
    n_vocab, seq_length : int
        V and L; the smoothed loss starts at ``-ln(1/V) * L`` (min-char-rnn).
    """

    def __init__(self, n_vocab, seq_length):
        self.n_vocab = _checks.check_int("n_vocab", n_vocab, minimum=1)
        self.L = _checks.check_int("seq_length", seq_length, minimum=1)
        self.smooth_loss = -math.log(1.0 / self.n_vocab) * self.L

    def update(self, losses, errors):
        """Fold in one chunk; return its columns.

        Returns
        -------
        dict with ``loss_per_char`` (mean loss / L), ``bpc`` (mean loss / (L ln 2)),
        ``smooth_loss`` (after the chunk's last iteration) and ``char_accuracy``
        (the fraction of the chunk's predicted characters that were right).
        """
        losses = np.asarray(losses, dtype=np.float64).ravel()
        errors = np.asarray(errors).ravel()
        if losses.size == 0:
            raise InvalidArgument("losses is empty; pass the chunk's per-iteration losses")
        s = self.smooth_loss
        for loss in losses:  # the same recurrence, in the same order, as min-char-rnn
            s = s * SMOOTHING + loss * (1.0 - SMOOTHING)
        self.smooth_loss = s
        mean = float(losses.mean())
        return dict(
            loss_per_char=mean / self.L,
            bpc=bits_per_char(mean, self.L),
            smooth_loss=float(s),
            char_accuracy=1.0 - float(errors.sum()) / (errors.size * self.L),
        )

    def state(self):
        return dict(smooth_loss=float(self.smooth_loss))

    def restore(self, state):
        self.smooth_loss = float(state["smooth_loss"])


def evaluate(model, ids, chunk=1000):
    """Score ``model`` on a text: next-character loss over ``ids`` read from a zero state.

    The state is carried through the whole text (computed ``chunk`` steps at a
    time). Returns a dict with ``loss_per_char``, ``bpc``, ``char_accuracy`` and
    ``n_chars`` (``len(ids) - 1`` predictions).

    Examples
    --------
    >>> import fastrnn
    >>> from fastrnn import text
    >>> model = fastrnn.train(task="text", iters=200, seed=0).model
    >>> vocab = model.metadata["vocab"]
    >>> scores = text.evaluate(model, text.encode(vocab, "The network learns the text."))
    >>> sorted(scores), scores["n_chars"]
    (['bpc', 'char_accuracy', 'loss_per_char', 'n_chars'], 27)
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) < 2:
        raise InvalidArgument(f"ids must hold at least 2 characters (one prediction), got {ids.size}")
    V = model.n_in
    if ids.min() < 0 or ids.max() >= V:
        raise InvalidArgument(f"ids must lie in [0, {V}) (the model's vocabulary), got {ids.min()}..{ids.max()}")
    h = None  # zeros (for every state vector of the cell)
    total, wrong = 0.0, 0
    Vw, c = np.asarray(model.params["V"], dtype=np.float64), np.asarray(model.params["c"], dtype=np.float64)
    for lo in range(0, len(ids) - 1, chunk):
        x = ids[lo: min(lo + chunk, len(ids) - 1)]
        y = ids[lo + 1: lo + 1 + len(x)]
        yhat, hs, h = model.forward(one_hot(x, V, model.dtype)[None], h0=h, return_state=True)
        # -ln softmax(z)[y] = logsumexp(z) - z[y] from the logits z = V h + c, in float64: finite where the
        # probability itself underflows to 0 (a confident wrong prediction)
        z = np.asarray(hs[-1, 0], dtype=np.float64) @ Vw.T + c
        top = z.max(axis=1)
        total += float((top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[np.arange(len(y)), y]).sum())
        wrong += int((yhat[0].argmax(1) != y).sum())
    n = len(ids) - 1
    return dict(loss_per_char=total / n, bpc=bits_per_char(total, n), char_accuracy=1.0 - wrong / n, n_chars=n)


# ---------------------------------------------------------------------- sampling


def _activation(name):
    """f of the activation ``name`` on arrays: the kernels' own (fastrnn.activations)."""
    from . import activations

    if name not in activations.ACTIVATIONS:
        raise InvalidArgument(f"sampling does not know the activation {name!r}")
    return functools.partial(activations.apply, name)


def rnn_step(params, layers, f, state, ix):
    """One step of a stacked vanilla RNN on the character ``ix``: returns (state', z).

    ``state`` is (1, layers, H), the h of every layer; ``z = V h'_top + c`` are the
    logits of the next character. Each cell has its step (see :data:`STEPS`).
    """
    h = state.copy()
    below = None
    for l in range(layers):
        U, W, b = params[f"U{l}"], params[f"W{l}"], params[f"b{l}"]
        xu = U[:, ix] if l == 0 else U @ below  # U x for a one-hot x is a column of U
        h[0, l] = f(xu + W @ h[0, l] + b)
        below = h[0, l]
    return h, params["V"] @ below + params["c"]


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # = 1 / (1 + exp(-a)), without overflow for large -a


def gru_step(params, layers, f, state, ix):
    """One step of a stacked GRU (PyTorch's, gates r, z, n) on the character ``ix``: returns (state', z).

    ``state`` is (1, layers, H); per layer, with xu = U x + b and hw = W h::

        r = s(xu_r + hw_r),  z = s(xu_z + hw_z),  n = tanh(xu_n + r * (hw_n + bn)),  h' = (1 - z) n + z h

    ``f`` is not used (the GRU's activations are fixed).
    """
    h = state.copy()
    below = None
    for l in range(layers):
        U, W, b, bn = params[f"U{l}"], params[f"W{l}"], params[f"b{l}"], params[f"bn{l}"]
        H = bn.shape[0]
        xu = (U[:, ix] if l == 0 else U @ below) + b
        hw = W @ h[0, l]
        r = _sigmoid(xu[:H] + hw[:H])
        z = _sigmoid(xu[H:2 * H] + hw[H:2 * H])
        n = np.tanh(xu[2 * H:] + r * (hw[2 * H:] + bn))
        h[0, l] = (1.0 - z) * n + z * h[0, l]
        below = h[0, l]
    return h, params["V"] @ below + params["c"]


def lstm_step(params, layers, f, state, ix):
    """One step of a stacked LSTM (PyTorch's, gates i, f, g, o) on the character ``ix``: returns (state', z).

    ``state`` is (2, layers, H): the h and the c of every layer; per layer, with
    a = U x + W h + b::

        i, f, o = s(a_i), s(a_f), s(a_o),  g = tanh(a_g),  c' = f c + i g,  h' = o tanh(c')

    ``f`` (the argument) is not used (the LSTM's activations are fixed).
    """
    out = state.copy()
    below = None
    for l in range(layers):
        U, W, b = params[f"U{l}"], params[f"W{l}"], params[f"b{l}"]
        H = W.shape[1]
        a = (U[:, ix] if l == 0 else U @ below) + W @ out[0, l] + b
        gate_i, gate_f, g, gate_o = _sigmoid(a[:H]), _sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), _sigmoid(a[3 * H:])
        out[1, l] = gate_f * out[1, l] + gate_i * g
        out[0, l] = gate_o * np.tanh(out[1, l])
        below = out[0, l]
    return out, params["V"] @ below + params["c"]


#: The step of each cell for sampling, by the model's ``cell`` name: ``step(params, layers, f,
#: state, ix) -> (state', logits)`` with ``state`` of shape (the cell's state vectors, layers, H).
STEPS = {"rnn": rnn_step, "gru": gru_step, "lstm": lstm_step}


def _head_logits(params, state):
    return params["V"] @ state[0, -1] + params["c"]


def _initial_state(model, h0):
    """The sampling state (S, layers, H) from ``sample``'s ``h0``: None (zeros), an array
    (layers, H), or for an LSTM the pair (h0, c0) of such arrays."""
    S, shape = getattr(model, "n_states", 1), (model.layers, model.n_hidden)
    if h0 is None:
        return np.zeros((S,) + shape)
    if S == 1:
        return _checks.as_float_array("h0", h0, np.float64, 2, shape, "(layers, n_hidden)")[None].copy()
    if not isinstance(h0, (tuple, list)) or len(h0) != S:
        raise InvalidArgument(f"h0 of an LSTM must be the pair (h0, c0), each of shape (layers, n_hidden) = {shape}; "
                              f"got {type(h0).__name__}")
    return np.stack([_checks.as_float_array(name, v, np.float64, 2, shape, "(layers, n_hidden)")
                     for name, v in zip(("h0", "c0"), h0)])


def next_char_distribution(z, temperature):
    """softmax(z / T): T < 1 sharpens the distribution, T > 1 flattens it.

    Computed as exp((z - max z) / T) normalised: every exponent is at most 0, so
    nothing overflows at any T > 0. As T -> 0 the distribution tends to arg max
    (shared equally by tied maxima), and a T so small that (z_i - max z) / T is
    beyond exp's range gives exactly that limit.
    """
    z = np.asarray(z, dtype=np.float64)
    top = z.max()
    with np.errstate(over="ignore", under="ignore"):  # a gap beyond the float range is -inf: probability 0
        gap = np.where(z == top, 0.0, z - top)  # 0 at the maxima (also where they are infinite), else below 0
        e = np.exp(gap / temperature)
    return e / e.sum()


def _next_char(z, T, rng, drawn):
    """The index of the next character: arg max at T = 0, else a draw from softmax(z / T).

    Raises NumericalError when the scores hold NaN (weights so large that V h + c
    overflowed), after ``drawn`` characters.
    """
    if np.isnan(z).any():
        raise NumericalError(f"the model's next-character scores became NaN after {drawn} character{'s' * (drawn != 1)} (its weights "
                             f"overflow float64 arithmetic); sampling needs a model with finite outputs")
    if T == 0.0:
        return int(np.argmax(z))
    cdf = np.cumsum(next_char_distribution(z, T))
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(z) - 1)


#: The most characters one :func:`sample` call draws (about four minutes at a character-model's
#: 24 us a character on one core; ten million characters are about ten megabytes of text).
MAX_SAMPLE_LENGTH = 10_000_000

#: A sample written as it is drawn (``write``) goes out a line at a time, or this many characters
#: at a time when no line ends.
STREAM_PIECE = 256


def sample(model, vocab=None, length=200, temperature=1.0, prime="", seed=0, h0=None, write=None):
    """Draw ``length`` characters from a trained character model.

    Each next character is drawn from softmax(z / temperature): a temperature
    below 1 makes the text more conservative (likely characters more likely), above
    1 more varied; ``temperature=0`` always takes the most likely character.

    Parameters
    ----------
    model : fastrnn.RNN
        A softmax model with ``n_in == n_out == len(vocab)``.
    vocab : str or None
        The vocabulary the model was trained on (character i is ``vocab[i]``);
        None reads it from ``model.metadata["vocab"]``.
    length : int
        How many characters to draw (the prime is not counted nor returned).
    temperature : float >= 0
    prime : str
        Text fed to the model first; the sample continues it. With no prime the
        first character is drawn from the model's output at the initial state.
    seed : int
        Seed of the ``numpy.random.default_rng`` that draws; the same seed gives
        the same text.
    h0 : array of shape (layers, n_hidden), optional
        Initial state (zeros if None), for example a training run's carried state;
        for an LSTM the pair (h0, c0) of such arrays.
    write : callable or None
        Called with the text as it is drawn, a line at a time (or
        :data:`STREAM_PIECE` characters where no line ends), so that a long sample
        can be shown or saved while it is drawn; the pieces join to the same text.
        ``sample`` then returns "".

    Returns
    -------
    str
        The ``length`` drawn characters ("" with ``write``).

    Raises
    ------
    InvalidArgument
        Among others, a ``length`` above :data:`MAX_SAMPLE_LENGTH`: draw a long text
        in parts, continuing each with ``prime`` (the previous part's end).

    Examples
    --------
    >>> import fastrnn
    >>> model = fastrnn.train(task="text", iters=200, seed=0).model
    >>> text = fastrnn.text.sample(model, length=40, temperature=0.5, prime="The ", seed=1)
    >>> len(text)                                   # the characters drawn after the prime
    40
    >>> text == fastrnn.text.sample(model, length=40, temperature=0.5, prime="The ", seed=1)   # the same seed, the same text
    True
    """
    if vocab is None:
        vocab = model.metadata.get(VOCAB_KEY)
        if vocab is None:
            raise InvalidArgument("the model has no vocabulary in its metadata (it was not trained on text); pass vocab")
    if not isinstance(vocab, str) or not vocab:
        raise InvalidArgument(f"vocab must be the non-empty string of the model's characters, got {type(vocab).__name__}")
    length = _checks.check_int("length", length, minimum=0)
    if length > MAX_SAMPLE_LENGTH:
        raise InvalidArgument(f"length {length} is more than one sample draws (at most {MAX_SAMPLE_LENGTH} characters); "
                              f"draw a long text in parts, continuing each with prime= the previous part's end")
    if write is not None and not callable(write):
        raise InvalidType(f"write must be a function taking a string (sys.stdout.write, say) or None, got {type(write).__name__}")
    T = _checks.check_float("temperature", temperature, minimum=0.0)
    seed = _checks.check_int("seed", seed, minimum=0)
    if not isinstance(prime, str):
        raise InvalidType(f"prime must be a string, got {type(prime).__name__}")
    V = len(vocab)
    if model.n_in != V or model.n_out != V or model.head != "softmax":
        raise InvalidArgument(
            f"the model (n_in {model.n_in}, n_out {model.n_out}, head {model.head}) does not fit a vocabulary of "
            f"{V} characters; sample with the vocabulary the model was trained on"
        )
    step = STEPS.get(getattr(model, "cell", "rnn"))
    if step is None:
        raise InvalidArgument(f"sampling has no step for the cell {model.cell!r}")
    prime_ids = encode(vocab, prime, name="prime")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in model.params.items()}
    f = _activation(model.activation)
    h = _initial_state(model, h0)
    rng = np.random.default_rng(seed)
    out = []
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: a NaN score is reported by _next_char
        z = _head_logits(params, h)
        for ix in prime_ids:
            h, z = step(params, model.layers, f, h, ix)
        for k in range(length):
            ix = _next_char(z, T, rng, k)
            out.append(vocab[ix])
            h, z = step(params, model.layers, f, h, ix)
            if write is not None and (vocab[ix] == "\n" or len(out) >= STREAM_PIECE):
                write("".join(out))
                out.clear()
    if write is not None:
        if out:
            write("".join(out))
        return ""
    return "".join(out)


def seconds_per_character(model, vocab=None, draws=200):
    """About how long :func:`sample` takes per character drawn from ``model`` here (a short timed draw)."""
    import time

    start = time.perf_counter()
    sample(model, vocab, length=draws, seed=0)
    return (time.perf_counter() - start) / draws
