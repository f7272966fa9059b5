"""Which compiled kernel runs: one decision, named, with its reason.

fastrnn has one general driver (any cell, layers, head, optimizer, clipping and
truncation; :mod:`fastrnn._kernels`, :mod:`fastrnn._train_kernel`) and faster
special forms of it for common cases, each computing the general driver's
numbers (:mod:`fastrnn._small`, :mod:`fastrnn._charrnn`). :func:`choose_kernel`
is the one place that picks between them, from the model (its ``dims`` and
dtype), the data's shape and the settings; every caller (a training run, ``fit``,
``train_many``, ``loss_and_grads``, the compile note, the scratch sizes) asks it,
and a run records its answer in its JSON file (``kernel`` and ``kernel_reason``
under "result").

The kernels, by name
--------------------
One model's training chunks (``call="train"``):

``general``
    :func:`fastrnn._train_kernel.train_chunk_general`: every setting.
``small-lean``
    :func:`fastrnn._small.lean_kernel` (through ``lean_call``): one vanilla layer
    whose every product is below ``config.BLAS_MIN_WORK`` (the general driver's
    numbers bit for bit), or of at most :data:`LEAN_MAX_HIDDEN` units whose batch
    times widest layer is at most :data:`LEAN_MAX_BATCH_WIDTH`, not a character
    stream (faster than the general driver's BLAS calls there; equal to rounding);
    every optimizer, head, activation, clipping and truncation; compiled once per
    optimizer, head and truncation that a run uses (the binary-addition headline is SGD, the sigmoid
    head and full BPTT).
``small-cells``
    :func:`fastrnn._small_cells.cells_kernel`: the general driver's full BPTT for any cell
    and depth in the lean kernel's layout (rows of 2-D arrays, the weights the products read
    copied once an iteration, one function a whole iteration), the cells' own step functions;
    for a GRU, an LSTM or stacked vanilla layers with at most :data:`CELLS_MAX_WIDTH` gate
    units a layer, batch at most :data:`CELLS_MAX_BATCH`, inputs and outputs at most
    :data:`CELLS_MAX_WIDTH` wide, full BPTT, not a character stream (equal to the general
    driver's numbers to rounding).
``text``
    :func:`fastrnn._charrnn.train_chunk`: min-char-rnn's training, one stream of
    character indices at batch 1 into a one-layer tanh RNN with a softmax head,
    float64, Adagrad or RMSprop, no global-norm clipping, full BPTT per window.

Many models trained together (``call="many"``, :func:`fastrnn.training.train_many`):
``many-general`` (the general driver), ``many-small``
(:func:`fastrnn._small.train_chunk`: a small model, every setting), ``many-small-sgd``
(the lean kernel with plain SGD, no clipping, full BPTT and a sigmoid head), one model
per thread, and ``lanes-sgd`` (:func:`fastrnn._small.train_lanes_sgd`: float64
``many-small-sgd`` models of one shape, several in the lanes of a vector).

One loss and gradient (``call="grads"``, :meth:`fastrnn.RNN.loss_and_grads`):
``general`` (:func:`fastrnn._kernels.loss_and_grads_serial`), ``small``
(:func:`fastrnn._small.loss_and_grads`) and ``general-threads``
(:func:`fastrnn._kernels.loss_and_grads_parallel`, the batch split over threads).

Forcing the general path
------------------------
The environment variable ``FASTRNN_KERNEL=general`` makes every call take the
general driver (``general``, ``many-general``, ``general-threads``): the special
forms compute the same numbers (bit for bit in float64 where the module says so,
within rounding otherwise), and forcing is how to check that, or to rule a special
form out when something looks wrong. Unset (or ``auto``), the fastest kernel that
serves the call is chosen. It is read at each decision; a model keeps the plan of
a ``loss_and_grads`` shape it has seen.

Plain Python, no numba: importing this module compiles and loads nothing.
"""

import os
from dataclasses import dataclass

import numpy as np

#: The environment variable that forces the general kernels, and its values.
ENV = "FASTRNN_KERNEL"
CHOICES = ("auto", "general")

# the registry codes read below (fastrnn.optim.OPTIMIZERS, fastrnn.cells.rnn.ACTIVATIONS,
# fastrnn._kernels.HEADS, fastrnn.cells.CELLS), as plain numbers: this module imports no kernel
_SGD, _ADAGRAD, _RMSPROP = 0, 3, 4
_TANH = 0
_HEAD_SOFTMAX, _HEAD_SIGMOID = 0, 1
_CELL_RNN = 0
_GATES = {0: 1, 1: 3, 2: 4}  # G of each cell code (fastrnn.cells.MODULES[code].G: rnn, gru, lstm)
_BLAS_MIN_WORK = 4096  # config.BLAS_MIN_WORK (checked equal by the tests)


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a call runs: its ``name`` (see this module's list) and why it was chosen."""

    name: str
    reason: str

    @property
    def general(self):
        """Whether this is the general driver (one model, many models or threads)."""
        return self.name in ("general", "many-general", "general-threads")

    def record(self):
        """The fields a run's JSON holds under "result": ``kernel`` and ``kernel_reason``."""
        return {"kernel": self.name, "kernel_reason": self.reason}

    def instead(self, why):
        """This choice with ``why`` put before its reason (a fallback's cause)."""
        return KernelChoice(self.name, f"{why}; {self.reason}")


# os.environ.get costs about 1.5 us (it encodes the key and decodes the value on every call), as much as
# the rest of the decision, which a training run makes once per chunk: read the mapping os.environ keeps
# (the same one os.environ.get reads; monkeypatch.setenv and os.environ[...] = ... write to it)
try:
    _RAW, _RAW_KEY = os.environ._data, os.environ.encodekey(ENV)
except AttributeError:  # an interpreter without them
    _RAW = None


def forced():
    """Whether ``FASTRNN_KERNEL`` forces the general kernels; raises
    :class:`~fastrnn.InvalidArgument` for a value other than ``general``, ``auto`` or empty."""
    if _RAW is not None:
        if _RAW.get(_RAW_KEY) is None:
            return False
    value = os.environ.get(ENV)
    if not value:
        return False
    value = value.strip().lower()
    if value == "general":
        return True
    if value == "auto":
        return False
    from .exceptions import InvalidArgument

    raise InvalidArgument(f"{ENV}={os.environ.get(ENV)!r} is not a kernel choice; set it to 'general' to force the "
                          f"general kernels, or to 'auto' (or leave it unset) to let fastrnn choose")


# ------------------------------------------------------------------ the predicates


def hand_products(T, B, H, widest):
    """Whether every matrix product of a (B, T) batch with ``H`` hidden units and inputs or outputs
    at most ``widest`` wide (a gated cell's G*H) stays below BLAS_MIN_WORK multiply-adds: the general
    driver then computes them all in its hand loops, the small-model kernels' numbers, and models
    may share threads (no BLAS inside threads; :func:`fastrnn.training.can_train_together`)."""
    return T * B * H * widest < _BLAS_MIN_WORK


def small_fits(dims, T, B):
    """Whether a (B, T) batch of the model with ``dims`` (one row) can take the small-model
    kernels: one vanilla layer, and every product of the general driver below
    BLAS_MIN_WORK, so that the general driver uses its hand loops too and both compute
    the same numbers."""
    I, H, O, L, _, _, cell = dims.tolist()  # one call: a fifth of the time of seven int() reads
    return cell == _CELL_RNN and L == 1 and hand_products(T, B, H, max(I, H, O))


#: The largest batch x widest layer (B * max(I, H, O)), and the most hidden units, at which one vanilla
#: layer past :func:`small_fits` still trains faster on the lean kernel than on the general driver with
#: BLAS (``python benchmarks/bench_lean_size.py``, binary task, T=8: the lean kernel 1.4-3x faster at
#: batch 1 to 4 with 16 to 64 units, 1.1-1.2x at batch 8 with 32 or 48 and batch 16 with 16; about as fast
#: at batch 8 with 64 and batch 16 with 32, 0.87-0.93x at batch 16 with 48 or 64 and batch 32). Not for
#: character streams: their one-hot rows let the general driver gather columns of U instead of
#: multiplying (the text task with Adam: 39 against 34 us an iteration at H=20, 104 against 64 at H=64).
LEAN_MAX_BATCH_WIDTH = 384
LEAN_MAX_HIDDEN = 64

#: The range of the small-model kernel for every cell and depth (:func:`cells_fits`): gate units a layer
#: (G x H) and inputs and outputs at most this wide, and at most this many sequences a batch. Measured
#: with ``python benchmarks/bench_cells_size.py`` (binary task, T=8, against the general driver): 1.7-2.3x
#: faster at batch 1 with 16 units, 1.1-1.6x at batch 4 or 32 units, as fast for two vanilla layers of 64
#: units at batch 1; slower at batch 16 (0.6-0.97x) and for a GRU or an LSTM of 64 units at batch 1, whose
#: products BLAS does faster.
CELLS_MAX_WIDTH = 128
CELLS_MAX_BATCH = 4


def lean_fits(dims, T, B):
    """Whether one model's training chunks take the lean kernel: :func:`small_fits` (then with the
    general driver's numbers bit for bit), or one vanilla layer of at most :data:`LEAN_MAX_HIDDEN` units
    whose batch times widest layer is at most :data:`LEAN_MAX_BATCH_WIDTH`, where the general driver would send
    products to BLAS (then the same sums in another order: equal to rounding). :func:`choose_kernel`
    leaves character streams to the general driver or the text kernel."""
    I, H, O, L, _, _, cell = dims.tolist()
    return cell == _CELL_RNN and L == 1 and (hand_products(T, B, H, max(I, H, O))
                                             or (H <= LEAN_MAX_HIDDEN and B * max(I, H, O) <= LEAN_MAX_BATCH_WIDTH))


def cells_fits(dims, B, K, T):
    """Whether one model's training chunks take the small-model kernel for every cell and depth
    (:mod:`fastrnn._small_cells`): not the lean kernel's one vanilla layer, full BPTT, at most
    :data:`CELLS_MAX_BATCH` sequences, and G x H, inputs and outputs at most :data:`CELLS_MAX_WIDTH`."""
    I, H, O, L, _, _, cell = dims.tolist()
    return ((cell != _CELL_RNN or L > 1) and (K < 0 or K >= T - 1) and B <= CELLS_MAX_BATCH
            and max(I, _GATES[cell] * H, O) <= CELLS_MAX_WIDTH)


def sgd_fits(dims, T, opt, K, clip_norm, clip_value):
    """Whether many models' settings are the SGD lean kernel's (given :func:`small_fits`): plain SGD, no
    clipping of either kind, full BPTT (K < 0 or K >= T - 1) and the sigmoid head."""
    return (int(dims[5]) == _HEAD_SIGMOID and opt == _SGD and clip_norm == 0.0 and clip_value == 0.0
            and (K < 0 or K >= T - 1))


def text_fits(dims, dtype, batch, opt, K, T, clip_norm):
    """Whether the fused text kernel serves a run whose data are one stream of character
    indices: batch 1, one tanh RNN layer with a softmax head, float64, Adagrad or RMSprop,
    no global-norm clipping and full BPTT in each window (min-char-rnn's training)."""
    return (batch == 1 and int(dims[3]) == 1 and int(dims[6]) == _CELL_RNN and int(dims[4]) == _TANH
            and int(dims[5]) == _HEAD_SOFTMAX and np.dtype(dtype) == np.float64 and opt in (_ADAGRAD, _RMSPROP)
            and clip_norm == 0.0 and (K < 0 or K >= T - 1))


def text_misfit(dims, dtype, batch, opt, K, T, clip_norm):
    """Why :func:`text_fits` is False: its first condition that fails, in words (None if it fits)."""
    checks = (
        (batch == 1, f"batch {batch}, not 1"),
        (int(dims[3]) == 1, f"{int(dims[3])} layers, not 1"),
        (int(dims[6]) == _CELL_RNN, "a gated cell, not the vanilla one"),
        (int(dims[4]) == _TANH, "an activation other than tanh"),
        (int(dims[5]) == _HEAD_SOFTMAX, "a head other than softmax"),
        (np.dtype(dtype) == np.float64, f"{np.dtype(dtype).name}, not float64"),
        (opt in (_ADAGRAD, _RMSPROP), "an optimizer other than Adagrad or RMSprop (the text kernel has only those two)"),
        (clip_norm == 0.0, "global-norm clipping"),
        (K < 0 or K >= T - 1, "truncated BPTT"),
    )
    return next((why for ok, why in checks if not ok), None)


def lanes_fit(dims, dtype):
    """Whether stacked ``dims`` of lean models can share vector lanes: float64, one shape."""
    return np.dtype(dtype) == np.float64 and bool((dims == dims[0]).all())


# ------------------------------------------------------------------ the decision

_R_FORCED = f"{ENV}=general forces the general kernels"
_R_GENERAL = ("the general driver: the model is not one vanilla layer with every product below "
              f"{_BLAS_MIN_WORK} multiply-adds (the small-model kernels' case)")
#: The lean kernel's range past the hand loops (:func:`lean_fits`), and what taking it there means.
_WIDE = f"one vanilla layer of at most {LEAN_MAX_HIDDEN} units whose batch x widest layer is at most {LEAN_MAX_BATCH_WIDTH}"
_WIDE_NUMBERS = "faster here than the general driver's BLAS calls; its numbers equal the general driver's to rounding"
_R_GENERAL_TRAIN = f"the general driver: the model is not {_WIDE} (the lean kernel's case)"
_R_SMALL = (f"one vanilla layer with every product below {_BLAS_MIN_WORK} multiply-adds: the small-model kernel, "
            "the general driver's numbers")
_R_SMALL_WIDE = f"{_WIDE}: the small-model kernel, {_WIDE_NUMBERS}"
_R_SMALL_MANY = ("one vanilla layer of the lean kernel's size (dispatch.lean_fits): the small-model kernel, the numbers "
                 "of each run alone")
_R_SGD = ("a small model (dispatch.lean_fits) trained with plain SGD, no clipping, full BPTT and a sigmoid head: the lean "
          "small-model kernel, the numbers of each run alone")
_R_LEAN = (f"one vanilla layer with every product below {_BLAS_MIN_WORK} multiply-adds: the lean small-model kernel "
           "specialised for the run's optimizer, head and truncation, the general driver's numbers")
_R_LEAN_WIDE = f"{_WIDE}: the lean small-model kernel specialised for the run's optimizer, head and truncation, {_WIDE_NUMBERS}"
_R_CELLS = (f"a gated cell or stacked layers with at most {CELLS_MAX_WIDTH} gate units a layer, inputs and outputs at "
            f"most {CELLS_MAX_WIDTH} wide, batch at most {CELLS_MAX_BATCH} and full BPTT: the small-model kernel for any "
            "cell and depth, specialised for the run's optimizer and head, faster here than the general driver; its "
            "numbers equal the general driver's to rounding")
_R_TEXT = ("one stream of character indices at batch 1 into a one-layer tanh RNN with a softmax head, float64, "
           "Adagrad or RMSprop, no global-norm clipping, full BPTT per window: the fused text kernel")
_R_LANES = "float64 lean small models of one shape: several models in the lanes of a vector, each its own run's numbers"
_R_THREADS = "n_threads > 1: the general driver with the batch split over threads (hand-written products)"

_CHOICES = {
    ("train", "forced"): KernelChoice("general", _R_FORCED),
    ("train", "general"): KernelChoice("general", _R_GENERAL_TRAIN),
    ("train", "lean"): KernelChoice("small-lean", _R_LEAN),
    ("train", "lean-wide"): KernelChoice("small-lean", _R_LEAN_WIDE),
    ("train", "cells"): KernelChoice("small-cells", _R_CELLS),
    ("train", "text"): KernelChoice("text", _R_TEXT),
    ("many", "forced"): KernelChoice("many-general", _R_FORCED + ", one model per thread"),
    ("many", "general"): KernelChoice("many-general", _R_GENERAL + ", one model per thread"),
    ("many", "small"): KernelChoice("many-small", _R_SMALL_MANY + ", one model per thread"),
    ("many", "sgd"): KernelChoice("many-small-sgd", _R_SGD + ", one model per thread"),
    ("many", "lanes"): KernelChoice("lanes-sgd", _R_LANES),
    ("grads", "forced"): KernelChoice("general", _R_FORCED),
    ("grads", "general"): KernelChoice("general", _R_GENERAL),
    ("grads", "small"): KernelChoice("small", _R_SMALL),
    ("grads", "small-wide"): KernelChoice("small", _R_SMALL_WIDE),
    ("grads", "threads"): KernelChoice("general-threads", _R_THREADS),
}

#: Every kernel name :func:`choose_kernel` may return.
NAMES = tuple(sorted({c.name for c in _CHOICES.values()}))


def choose_kernel(dims, dtype, T, batch, call="train", opt=_SGD, K=-1, clip_norm=0.0, clip_value=0.0, chars=False,
                  n_threads=1, fused_text=True):
    """The kernel that serves a call, as a :class:`KernelChoice` (name and reason).

    Parameters
    ----------
    dims : ndarray
        The model's ``dims`` (one row), or for ``call="many"`` the stacked rows of
        every model.
    dtype : numpy dtype
        The model's float type.
    T, batch : int
        Steps of each sequence and sequences per iteration (the largest of a run's calls:
        a kernel chosen for a shape serves every smaller one).
    call : {"train", "many", "grads"}
        One model's training chunks; many models trained together; one
        ``loss_and_grads`` call.
    opt, K, clip_norm, clip_value
        The optimizer's code, the truncation (-1: full BPTT) and the clipping (0.0:
        none); for ``call="many"`` one per model (arrays), ``clip_value`` one for all.
    chars : bool
        The data are one stream of character indices (the text task's source).
    fused_text : bool
        Whether the fused text kernel can be built (False after it failed to compile).
    n_threads : int
        ``call="grads"``: threads to split the batch over.
    """
    if forced():
        return _CHOICES[(call, "forced")]
    if call == "grads":
        if n_threads > 1:
            return _CHOICES[("grads", "threads")]
        if small_fits(dims, T, batch):
            return _CHOICES[("grads", "small")]
        return _CHOICES[("grads", "small-wide" if lean_fits(dims, T, batch) else "general")]
    if call == "many":  # the lean kernel for the models one run alone trains on it, so that each equals its run alone
        if all(lean_fits(dims[m], T, batch) and sgd_fits(dims[m], T, int(opt[m]), int(K[m]), float(clip_norm[m]),
                                                         clip_value) for m in range(dims.shape[0])):
            # the lanes only within the hand loops' size: past it their vectors of every model's entries
            # run slower than one model a thread (32 units: 1.3 against 0.64 s for eight runs one by one)
            lanes = lanes_fit(dims, dtype) and small_fits(dims[0], T, batch)
            return _CHOICES[("many", "lanes" if lanes else "sgd")]
        return _CHOICES[("many", "small" if lean_fits(dims[0], T, batch) else "general")]
    if chars and fused_text and text_fits(dims, dtype, batch, opt, K, T, clip_norm):
        return _CHOICES[("train", "text")]
    if small_fits(dims, T, batch):
        choice = _CHOICES[("train", "lean")]
    elif not chars and lean_fits(dims, T, batch):
        choice = _CHOICES[("train", "lean-wide")]
    elif not chars and cells_fits(dims, batch, K, T):
        choice = _CHOICES[("train", "cells")]
    else:
        choice = _CHOICES[("train", "general")]
    if not chars or not fused_text:
        return choice
    return choice.instead(f"not the fused text kernel: {text_misfit(dims, dtype, batch, opt, K, T, clip_norm)}")


def for_model(model, T, batch, call="train", **settings):
    """:func:`choose_kernel` for a :class:`fastrnn.RNN` (its ``dims`` and dtype)."""
    return choose_kernel(model.dims, model.dtype, T, batch, call, **settings)
