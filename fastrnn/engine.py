"""The one way into the kernels.

Every caller of the compiled code goes through the functions here:
:meth:`fastrnn.RNN.forward` and :meth:`~fastrnn.RNN.loss_and_grads`, the training
loop (and ``fit``), :mod:`fastrnn.analysis`, :mod:`fastrnn.gradcheck` and the
benchmarks. :func:`prepare` is the one place data is checked and converted for
them; the others take prepared arrays and a model, and read only the model's
public attributes (``theta``, ``dims``, ``dtype``, ``layers``, ``n_hidden``, ...).
Which compiled kernel serves a call is :func:`fastrnn.dispatch.choose_kernel`'s
decision, asked here (:func:`train_chunk`, :func:`train_chunks_many`, :func:`plan`,
:func:`chunk_scratch_size`, :func:`run_kernel`, :func:`compile_note`) and nowhere else.

Recurrent states: the kernels hold a layer's S state vectors (S = 1, h, for the
vanilla cell and the GRU; S = 2, h and c, for the LSTM) flat, laid out
(L, S, B, H). For S = 1 that is the memory of the (layers, B, n_hidden) arrays
users pass as ``h0``, so these pass through without a copy; the LSTM's users pass
and get the pair (h, c) of such arrays, stacked here into (L * S, B, H).
"""

import os
import sys

import numpy as np

from . import _checks, _kernels, _small, _small_cells, _train_kernel, dispatch, optim
from .config import DTYPES
from .exceptions import InvalidArgument

# keyed by np.dtype, not by its name: dtype.name is a Python property that cost
# about 2 us a call, a tenth of a small loss_and_grads call
_EMPTY1 = {np.dtype(name): np.empty(0, dtype=name) for name in DTYPES}
_EMPTY2 = {np.dtype(name): np.empty((0, 0), dtype=name) for name in DTYPES}
_EMPTY3 = {np.dtype(name): np.empty((0, 0, 0), dtype=name) for name in DTYPES}
_NO_RESETS = np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------ data


def _array(model, name, value, ndim, shape, axes):
    """``value`` as a C-contiguous array of the model's dtype with the given shape.

    An array that already is one passes straight through (the common case in a
    training loop); anything else goes through the full conversion with its
    messages. Finiteness is checked afterwards, by :func:`_checks.scan_data`.
    """
    if type(value) is np.ndarray and value.dtype == model.dtype and value.ndim == ndim and value.flags.c_contiguous and value.size:
        for got, need in zip(value.shape, shape):
            if need is not None and got != need:
                break
        else:
            return value
    what = "(" + ", ".join(a if n is None else f"{a}={n}" for a, n in zip(axes, shape)) + ")"
    return _checks.as_float_array(name, value, model.dtype, ndim, shape, what, check_finite=False)


def prepare(model, X, Y=None, mask=None, h0=None):
    """Check everything a kernel call reads; return ``X, Y, M, h0`` ready for it.

    ``X (B, T, n_in)``, ``Y (B, T, n_out)``, ``mask (B, T)`` of 0/1, ``h0``
    ``(layers, B, n_hidden)`` (or ``(B, n_hidden)`` for one layer; for an LSTM the
    pair ``(h0, c0)`` of such arrays, returned stacked as ``(layers * 2, B, n_hidden)``). ``Y=None``
    (forward only) gives an empty Y; ``mask=None`` and ``h0=None`` give empty
    arrays, which the kernels read as "all ones" and "zeros". Raises
    :class:`~fastrnn.InvalidArgument` / :class:`~fastrnn.InvalidType` naming the
    argument.
    """
    dt = model.dtype
    # The common case of a training loop (C-contiguous arrays of the model's dtype and shape) in a few
    # attribute reads; anything else takes _array's full conversion and its messages. ``is`` on the
    # dtype: numpy's builtin dtypes are singletons, and any other equal dtype just takes the full path.
    if type(X) is np.ndarray and X.dtype is dt and X.ndim == 3 and X.shape[2] == model.n_in and X.size and X.flags.c_contiguous:
        B, T = X.shape[0], X.shape[1]
    else:
        X = _array(model, "X", X, 3, (None, None, model.n_in), ("batch", "time", "n_in"))
        B, T = X.shape[0], X.shape[1]
    if Y is None:
        Y = np.empty((B, T, 0), dtype=model.dtype)
    elif not (type(Y) is np.ndarray and Y.dtype is dt and Y.shape == (B, T, model.n_out) and Y.flags.c_contiguous):
        Y = _array(model, "Y", Y, 3, (B, T, model.n_out), ("batch", "time", "n_out"))
    M = _EMPTY2[dt] if mask is None else _array(model, "mask", mask, 2, (B, T), ("batch", "time"))
    if h0 is None:
        h0 = _EMPTY3[dt]
    elif model.n_states == 1:
        h0 = _state(model, "h0", h0, B)
    else:
        if not isinstance(h0, (tuple, list)) or len(h0) != model.n_states:
            raise InvalidArgument(
                f"h0 of a {model.cell} model must be a pair (h0, c0), each (layers, batch, n_hidden), got "
                f"{type(h0).__name__}; pass a tuple as return_state=True returns it"
            )
        parts = [_state(model, name, v, B) for name, v in zip(("h0", "c0"), h0)]
        # (layers * S, B, H): the memory of the kernels' (L, S, B, H), kept 3-D for scan_data
        h0 = np.stack(parts, axis=1).reshape(model.layers * model.n_states, B, model.n_hidden)
    probabilities = Y.shape[2] > 0 and model.head != "linear"
    code = _checks.scan_data(X, Y, M, h0, probabilities, probabilities and model.head == "softmax")
    if code != _checks.DATA_OK:
        raise InvalidArgument(_DATA_ERRORS[code].format(head=model.head, where=_first_bad(code, X, Y, h0)))
    return X, Y, M, h0


def _state(model, name, value, B):
    """One recurrent state vector of every layer as (layers, B, n_hidden)."""
    if model.layers == 1 and np.ndim(value) == 2:
        value = np.asarray(value)[None]
    return _array(model, name, value, 3, (model.layers, B, model.n_hidden), ("layers", "batch", "n_hidden"))


def split_state(model, flat_state):
    """A (layers * S, B, H) or flat (L, S, B, H) state as users hold it: (layers, B, n_hidden)
    for one state vector per layer, the pair (h, c) of such arrays for the LSTM."""
    if model.n_states == 1:
        return flat_state.reshape(model.layers, -1, model.n_hidden)
    four = flat_state.reshape(model.layers, model.n_states, -1, model.n_hidden)
    return tuple(four[:, s] for s in range(model.n_states))


_DATA_ERRORS = {
    _checks.X_NOT_FINITE: "X contains NaN or infinite values (first at index {where}); clean the data first",
    _checks.Y_NOT_FINITE: "Y contains NaN or infinite values (first at index {where}); clean the targets first",
    _checks.H0_NOT_FINITE: "h0 contains NaN or infinite values (first at index {where}); pass a finite initial state",
    _checks.MASK_NOT_01: "mask must hold only 0 (no target) and 1 (target); got other values",
    _checks.Y_OUT_OF_RANGE: "Y must lie in [0, 1] for the {head} head on every masked step",
    _checks.Y_NOT_ONE_HOT: "Y must be one-hot (each row summing to 1) for the softmax head on every masked step",
}


def _first_bad(code, X, Y, h0):
    arr = {_checks.X_NOT_FINITE: X, _checks.Y_NOT_FINITE: Y, _checks.H0_NOT_FINITE: h0}.get(code)
    if arr is None:
        return ""
    return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])


# ------------------------------------------------------------------ sizes


def cellset(dims):
    """The kernels' ``cellset`` argument for models with these ``dims`` (one row, or
    stacked rows): None when every model has the vanilla cell, so that the gated
    cells' code is not compiled for it, else 1 (every cell; see :mod:`fastrnn.cells`)."""
    if dims.ndim == 1:
        return None if dims[6] == 0 else 1
    return None if not (dims[:, 6] != 0).any() else 1


def state_size(model, batch):
    """Entries of the flat (L, S, batch, H) recurrent state of ``batch`` sequences."""
    # _kernels.state_size's formula with the model's own S: nothing compiled is loaded for a size
    return model.layers * model.n_states * batch * model.n_hidden


def new_state(model, batch):
    """A zero recurrent state for ``batch`` sequences, flat (L, S, batch, H), for :func:`train_chunk`."""
    return np.zeros(state_size(model, batch), dtype=model.dtype)


def scratch_size(model, T, batch, n_threads=1):
    """Scratch entries one :func:`loss_and_grads` call on a (batch, T) batch needs."""
    size = int(_kernels.scratch_size(T, batch, model.dims, n_threads))
    if model.cell == "rnn" and model.layers == 1:  # enough for the small-model path's arrays too
        size = max(size, _small.lean_scratch_size(T, batch, model.n_in, model.n_hidden, model.n_out))
    return size


#: The kernels that carve the lean kernel's arrays (:func:`fastrnn._small.lean_views`) from their scratch.
_LEAN_SIZED = ("small", "small-lean", "many-small", "many-small-sgd", "lanes-sgd")


def chunk_scratch_size(model, T, batch, kernel=None):
    """Scratch entries :func:`train_chunk` needs for sequences of T steps (for the kernel
    :func:`fastrnn.dispatch.choose_kernel` chooses for the run, or ``kernel``)."""
    if kernel is None:
        kernel = dispatch.for_model(model, T, batch)
    if kernel.name in _LEAN_SIZED:  # the sizes in plain Python (these kernels carve the same arrays)
        I, H, O = model.n_in, model.n_hidden, model.n_out
        return model.n_params + _small.lean_scratch_size(T, batch, I, H, O)
    if kernel.name == "small-cells":
        return _small_cells.scratch_size(T, batch, model.dims, model.n_params)
    return int(_train_kernel.chunk_scratch_size(T, batch, model.dims, model.n_params))


def _flat(a):
    return a.reshape(-1) if a.shape[0] else _EMPTY1[a.dtype]


# ------------------------------------------------------------------ calls


def forward(model, X, h0, return_state=False):
    """yhat (B, T, O) and the states h_1..h_T (L, B, T, H) for prepared X and h0; with
    ``return_state`` also the final state as users hold it (:func:`split_state`)."""
    B, T = X.shape[0], X.shape[1]
    yhat = np.empty((B, T, model.n_out), dtype=model.dtype)
    hs = np.empty((model.layers, B, T, model.n_hidden), dtype=model.dtype)
    h_final = np.empty((model.layers * model.n_states, B, model.n_hidden), dtype=model.dtype)
    _kernels.predict(model.theta, model.dims, X, _flat(h0), yhat, hs, h_final.reshape(-1), True, cellset(model.dims))
    if return_state:
        return yhat, hs, split_state(model, h_final)
    return yhat, hs


def loss_and_grads(model, X, Y, M, h0, K, buf, n_threads=1):
    """Loss, flat gradient (layout of theta) and final state (L * S, B, H) for prepared arrays
    (the memory of (L, S, B, H); :func:`split_state` gives the users' form).

    ``K`` is the truncation (-1: full BPTT); ``buf`` scratch of at least
    :func:`scratch_size` entries; ``n_threads > 1`` splits the batch over numba's
    threads with the hand-written products.
    """
    B = X.shape[0]
    P = model.theta.shape[0]
    out = np.empty(P + state_size(model, B), dtype=model.dtype)  # one allocation: the gradient, then the state
    grad, h_final = out[:P], out[P:]
    loss = loss_and_grads_into(model, X, Y, M, h0, K, buf, grad, h_final, plan(model, X.shape[1], B, n_threads))
    return loss, grad, h_final.reshape(model.layers * model.n_states, B, model.n_hidden)


#: The kernels :func:`plan` chooses between.
GENERAL, SMALL, PARALLEL = 0, 1, 2
_PATHS = {"general": GENERAL, "small": SMALL, "general-threads": PARALLEL}


def plan(model, T, batch, n_threads=1):
    """``(path, scratch entries, n_threads, choice)`` of a :func:`loss_and_grads` call on (batch, T)
    batches: which kernel (GENERAL, SMALL or PARALLEL; ``choice`` is
    :func:`fastrnn.dispatch.choose_kernel`'s answer) and how much scratch it needs. Depends only on
    the architecture, the sizes and ``FASTRNN_KERNEL``, so callers that repeat a shape may keep it
    (RNN.loss_and_grads does)."""
    choice = dispatch.for_model(model, T, batch, "grads", n_threads=n_threads)
    return _PATHS[choice.name], scratch_size(model, T, batch, n_threads), n_threads, choice


def loss_and_grads_into(model, X, Y, M, h0, K, buf, grad, h_final, plan):
    """:func:`loss_and_grads` writing the gradient into ``grad`` (n_params,) and the final state into
    the flat ``h_final`` (state_size entries); returns the loss. ``plan`` is :func:`plan`'s for
    this model, X's shape and the thread count (n_threads > 1 only with PARALLEL)."""
    path = plan[0]
    if path == SMALL:  # the small-model path, same numbers
        return _small.loss_and_grads(model.theta, model.dims, K, X, Y, M, _flat(h0), grad, h_final, buf)
    if path == PARALLEL:
        return _kernels.loss_and_grads_parallel(model.theta, model.dims, K, X, Y, M, _flat(h0), grad, h_final, buf,
                                                plan[2], False, cellset(model.dims))
    return _kernels.loss_and_grads_serial(model.theta, model.dims, K, X, Y, M, _flat(h0), grad, h_final, buf, True,
                                          cellset(model.dims))


def train_chunk(model, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets, buf,
                losses, grad_norms, errors, blas=True, kernel=None):
    """Train ``losses.shape[0]`` iterations of ``model`` in place, on ``kernel`` (the run's
    :class:`fastrnn.dispatch.KernelChoice`, which also sized ``buf``; None: the one
    :func:`fastrnn.dispatch.choose_kernel` chooses for this call) (``general``:
    :func:`fastrnn._train_kernel.train_chunk_general`, whose arguments these are;
    ``small-lean``: :mod:`fastrnn._small`'s lean kernel, the same numbers; ``small-cells``:
    :mod:`fastrnn._small_cells`, the same numbers to rounding). Only the
    chosen kernel is compiled (or loaded from numba's cache).

    ``resets=None`` starts every iteration from zeros; ``hstate`` is a flat state
    from :func:`new_state`; ``buf`` has :func:`chunk_scratch_size` entries. Returns the
    number of iterations completed.
    """
    if resets is None:
        resets = _NO_RESETS
    if kernel is None:
        kernel = dispatch.for_model(model, X.shape[1], batch, opt=opt, K=K, clip_norm=clip_norm, clip_value=clip_value)
    if kernel.name == "small-cells":  # full BPTT: dispatch.cells_fits
        return _small_cells.train_chunk(model.theta, model.dims, X, Y, M, batch, opt, lr, hyper, opt_state, step0,
                                        clip_norm, clip_value, hstate, resets, buf, losses, grad_norms, errors,
                                        cellset(model.dims))
    if kernel.name == "small-lean":
        return _small.lean_call(model.theta, model.dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm,
                                clip_value, hstate, resets, buf, losses, grad_norms, errors)
    if blas and losses.shape[0] == 0:
        # The zero-iteration call that compiles or loads the kernel before training's
        # clock starts: also load SciPy's BLAS here (a process that loads its kernels from the
        # cache, as the command does, has not imported it yet), or its first product would pay
        # the import (about 0.2 s) inside the timed training.
        import scipy.linalg.cython_blas  # noqa: F401
    return _train_kernel.train_chunk_general(model.theta, model.dims, K, X, Y, M, batch, opt, lr, hyper, opt_state,
                                             step0, clip_norm, clip_value, hstate, resets, buf, losses, grad_norms,
                                             errors, blas, cellset(model.dims))


def blas_work(model, T, batch):
    """Multiply-adds of the largest product the general kernel hands BLAS on (batch, T)
    batches: a weight gradient, which sums over all T*batch rows ((I_l or H) by G*H for a
    layer, H by O for the output layer). The thread policy (:func:`fastrnn.cpus.policy`)
    compares it with the size from which BLAS uses more than one thread."""
    from . import cells

    G = cells.MODULES[cells.CELLS[model.cell]].G
    H = model.n_hidden
    return int(T) * int(batch) * H * max(max(model.n_in, H) * G, model.n_out)


def chars_threads():
    """Threads :func:`train_chunk_chars` splits an iteration over: 2 when this process may keep
    two CPUs busy (:func:`fastrnn.cpus.policy`: the affinity mask, the control group's
    CPU quota, ``NUMBA_NUM_THREADS``, a Dask worker's share, the CPUs other work leaves free),
    else 1. The numbers are the same."""
    return chars_decision().n


def chars_decision():
    """:func:`chars_threads` with its reason (a :class:`fastrnn.cpus.Threads`)."""
    from . import cpus

    return cpus.threads("text", 2)


def chars_ready(stream=None):
    """Compile (or load) the text kernel; False, after a one-line note on ``stream`` (stderr),
    when it cannot be compiled: the run then trains with :func:`train_chunk`, the general
    kernel (the same model and numbers within rounding)."""
    try:
        from . import _charrnn

        none = np.zeros((0, 1), dtype=np.int64)
        one = np.zeros(1)
        _charrnn.train_chunk(np.zeros(7), np.zeros(7), 1, 1, 1, none, none, np.zeros(0, dtype=np.int64), one, 0.1,
                             1e-8, -1.0, np.inf, one[:0], one[:0], np.zeros(0, dtype=np.int64))
    except Exception as exc:  # a numba or llvmlite that cannot build it
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        print(f"fastrnn: the fused text kernel could not be compiled ({detail}); training with the general kernel "
              "instead (the same numbers within rounding, slower)", file=sys.stderr if stream is None else stream,
              flush=True)
        return False
    return True


def train_chunk_chars(model, inputs, targets, resets, opt, lr, hyper, opt_state, clip_value, hstate, losses, grad_norms,
                      errors, threads=None, info=None):
    """Train ``len(losses)`` iterations of min-char-rnn's model in place, from character indices:
    ``inputs``/``targets`` (n, T) int64 (each iteration's window), ``resets`` (n,) (1: ``hstate``
    to zeros first). ``text`` of :func:`fastrnn.dispatch.choose_kernel` says when this applies; the optimizer is ``opt``
    (Adagrad or RMSprop with ``hyper``'s eps and decay), ``clip_value > 0`` clips every
    gradient entry. Fills ``losses``, ``grad_norms`` (before clipping), ``errors`` (wrong next
    characters per iteration); returns the iterations completed (see :mod:`fastrnn._charrnn`;
    it raises :class:`fastrnn._charrnn.Stopped`, the state unchanged, when told to stop).
    ``info``: a dict that gets the threads the call ran on (``threads``) and why that many
    (``why``). ``threads=None``: as many as :func:`chars_decision` says, decided anew at each
    call (the numbers do not depend on it)."""
    from . import _charrnn

    decay = float(hyper[optim.optimizers.HYPER_INDEX["decay"]]) if opt == optim.RMSPROP else -1.0
    clip = float(clip_value) if clip_value > 0.0 else np.inf
    # one compiled layout: C-contiguous int64 (a window slice of a larger array is not)
    inputs, targets = np.ascontiguousarray(inputs, dtype=np.int64), np.ascontiguousarray(targets, dtype=np.int64)
    resets = np.ascontiguousarray(resets, dtype=np.int64)
    if threads is None:
        decision = chars_decision()
        threads, why = decision.n, decision.why
    else:
        why = "given by the caller"
    if info is None:
        info = {}
    info["why"] = why
    done = _charrnn.train_chunk(model.theta, opt_state[0], model.n_in, model.n_hidden, model.n_out, inputs, targets,
                                resets, hstate, float(lr), float(hyper[optim.optimizers.HYPER_INDEX["eps"]]), decay, clip, losses, grad_norms, errors,
                                threads, info)
    if info.get("threads", threads) < threads:
        info["why"] = f"{why}; this call ran on one (too short to split, or the two threads stalled)"
    return done


def train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                      resets, bufs, n_iters, losses, grad_norms, errors, done):
    """Many models (stacked ``thetas``, ``dims``, ...) in one parallel call, on the kernel
    :func:`fastrnn.dispatch.choose_kernel` chooses (``call="many"``); see
    :func:`fastrnn._train_kernel.train_chunks_many` for the arguments. ``resets=None``: every
    iteration from zeros."""
    if resets is None:
        resets = np.zeros((0, 0), dtype=np.int64)
    name = dispatch.choose_kernel(dims, thetas.dtype, X.shape[2], batch, "many", opt=opts, K=Ks, clip_norm=clip_norms).name
    from . import cpus

    # numba's threads as the thread policy says (each model's numbers are the same on any count)
    with cpus.numba_limited() as n_threads:
        _train_many(name, thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                    resets, bufs, n_iters, losses, grad_norms, errors, done, n_threads)


def _train_many(name, thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                resets, bufs, n_iters, losses, grad_norms, errors, done, n_threads):
    if name == "lanes-sgd":
        _small.train_chunks_many_lanes(thetas, dims, X, Y, M, batch, lrs, hstates, resets, n_iters, losses, grad_norms,
                                       errors, done, n_threads)  # the lean kernel's numbers, many models a vector
        return
    if name == "many-small-sgd":  # plain SGD, sigmoid head: the lean kernel
        _small.train_chunks_many_sgd(thetas, dims, X, Y, M, batch, lrs, hstates, resets, bufs, n_iters, losses,
                                     grad_norms, errors, done)
        return
    if name == "many-small":  # the small-model path, same numbers
        _small.train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms,
                                 hstates, resets, bufs, n_iters, losses, grad_norms, errors, done)
        return
    _train_kernel.train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms,
                                    hstates, resets, bufs, n_iters, losses, grad_norms, errors, done, False,
                                    cellset(dims))


#: What a first compile of each training kernel costs on the project's 2-core machine (measured, empty cache).
_COMPILE_SECONDS = {"small-model training": 4, "gated small-model training": 12, "general training": 11,
                    "many-model SGD training": 8, "text training": 12}

#: The kernels the compile note names: choice name -> (module, function, words).
_NOTED = {"general": ("_train_kernel", "general_kernel", "general training"),
          "small-lean": ("_small", "lean_kernel", "small-model training"),
          "small-cells": ("_small_cells", "cells_kernel", "gated small-model training"),
          "lanes-sgd": ("_small", "train_lanes_sgd", "many-model SGD training"),
          "text": ("_charrnn", "run", "text training")}


def run_kernel(model, T, batch, options=None, many=None, chars=False, fused_text=True):
    """The kernel a training run of ``model`` on (batch, T) batches takes
    (:func:`fastrnn.dispatch.choose_kernel`'s answer): ``options`` is
    ``(opt, K, clip_norm, clip_value)`` (None: not given; then ``small`` or ``general``), ``many``
    the stacked ``(dims, opts, Ks, clip_norms)`` of a :func:`train_chunks_many` group, ``chars``
    whether the data are one stream of character indices, ``fused_text`` whether the fused text
    kernel can be built."""
    opt, K, clip_norm, clip_value = (None, -1, 0.0, 0.0) if options is None else options
    if many is not None:
        dims, opts, Ks, clip_norms = many
        return dispatch.choose_kernel(dims, model.dtype, T, batch, "many", opt=opts, K=Ks, clip_norm=clip_norms)
    return dispatch.for_model(model, T, batch, opt=opt, K=K, clip_norm=clip_norm, clip_value=clip_value, chars=chars,
                              fused_text=fused_text)


def compile_note(model, T, batch, stream=None, options=None, many=False, chars=False, kernel=None):
    """Say on the screen, once, that the training kernel this run needs must be compiled first.

    Only when numba's cache holds no copy of it for this code (no index file, or one
    written for other kernel sources or another version), this
    process has not compiled it yet, and stderr is a terminal (``stream=None``; a
    captured stderr keeps its one line per error); returns the line written, or None.
    ``kernel``: the run's :class:`fastrnn.dispatch.KernelChoice`; without it, the one
    :func:`run_kernel` gives for ``options`` (``(opt, K, clip_norm, clip_value)``),
    ``chars`` and ``many`` (True: a :func:`fastrnn.training.train_many` group of models like
    this one). Of the many-model kernels only the lanes kernel is named (the others pass silently).
    """
    if stream is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    if kernel is None:
        if many:
            opt, K, clip_norm, _ = (-1, -1, 0.0, 0.0) if options is None else options
            stacked = (model.dims[None], np.array([opt]), np.array([K]), np.array([clip_norm]))
            kernel = run_kernel(model, T, batch, many=stacked)
        else:
            kernel = run_kernel(model, T, batch, options, chars=chars)
    noted = _NOTED.get(kernel.name)
    if noted is None or (many and kernel.name != "lanes-sgd"):
        return None
    import importlib

    compiled = getattr(importlib.import_module(f"fastrnn.{noted[0]}"), noted[1])
    opt, K = (0, -1) if options is None or options[0] is None else (int(options[0]), int(options[1]))
    if kernel.name == "small-lean":  # the kernel made for this run's optimizer, head and truncation
        compiled = compiled(opt, int(model.dims[5]), 0 <= K < T - 1)
    elif kernel.name == "small-cells":  # the kernel made for this run's optimizer and head
        compiled = compiled(opt, int(model.dims[5]))
    elif kernel.name == "general":  # the kernel made for this run's optimizer, head and activation
        compiled = compiled(opt, int(model.dims[5]), int(model.dims[4]))
    name = noted[2]
    if kernel.name == "small-cells" and model.cell == "rnn":  # stacked vanilla layers compile no gated cell
        name = "small-model training"
    if compiled.signatures:
        return None
    cache = getattr(compiled, "_cache", None)
    if hasattr(cache, "holds_entries"):  # fastrnn's keyed cache: is there an entry for this code?
        if cache.holds_entries():
            return None
    else:
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        if index is None or os.path.exists(index):
            return None
    line = f"fastrnn: compiling the {name} kernels once, about {_COMPILE_SECONDS[name]} s (numba caches them for later runs)"
    print(line, file=sys.stderr if stream is None else stream, flush=True)
    return line
