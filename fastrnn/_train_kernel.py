"""One kernel call trains a whole chunk of iterations, in place.

A Python call per SGD step costs microseconds of dispatch and checking, more than
the step's own arithmetic at the binary-addition size. So :func:`train_chunk_general` runs
every iteration of a chunk (forward, loss, BPTT, error counts, clipping and the
optimizer step) inside numba, and Python only sees the chunk's per-iteration losses,
gradient norms and per-sample error counts. Numbers only: the caller validates.
"""

import numpy as np
from numba import njit, prange

from ._kernels import (HEAD_NAMES, HEAD_SIGMOID, HEAD_SOFTMAX, load_data, load_state, store_state, transpose_params, workspace,
                       workspace_size)
from ._kernels import backward, forward, head_loss
from ._cache import key_dispatchers
from . import _generate, activations
from .config import JIT, JIT_PARALLEL
from .optim import NAME_OF, UPDATE_OF, apply_update, clip_grads


@njit(**JIT)
def chunk_scratch_size(T, B, dims, P):
    """Scratch :func:`train_chunk_general` needs: thetaT, the gradient, one workspace."""
    return 2 * P + workspace_size(T, B, dims)


@njit(**JIT)
def count_errors(z, yt, mt, T, B, O, head, errors, off):
    """errors[off + i] = wrong positions of sample i, from predictions z (T*B, O).

    softmax: arg max differs; sigmoid: (p > 0.5) differs from (y > 0.5);
    linear: |z - y| >= 0.5. Steps with mask 0 do not count.
    """
    for i in range(B):
        errors[off + i] = 0
    for t in range(T):
        for i in range(B):
            r = t * B + i
            if mt[r] == 0.0:
                continue
            q = r * O
            wrong = 0
            if head == HEAD_SOFTMAX:
                kp = 0
                ky = 0
                for k in range(1, O):
                    if z[q + k] > z[q + kp]:
                        kp = k
                    if yt[q + k] > yt[q + ky]:
                        ky = k
                wrong = 1 if kp != ky else 0
            elif head == HEAD_SIGMOID:
                for k in range(O):
                    if (z[q + k] > 0.5) != (yt[q + k] > 0.5):
                        wrong = 1
            else:
                for k in range(O):
                    if abs(z[q + k] - yt[q + k]) >= 0.5:
                        wrong = 1
            errors[off + i] += wrong


#: What :func:`_chunk` reads as constants, bound by :func:`general_kernel`: the optimizer's update, the
#: head's and the activation's codes; -1: read from ``dims`` (these values: every optimizer, chosen by
#: ``opt`` at run time).
_UPDATE, _HEAD, _ACT = apply_update, -1, -1


def _chunk(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate,
           resets, buf, losses, grad_norms, errors, blas, cellset):
    """Run ``losses.shape[0]`` training iterations on ``theta`` in place.

    Iteration ``it`` uses samples ``it*batch .. (it+1)*batch - 1`` of X (n, T, I),
    Y (n, T, O) and M (n, T) (or an empty M: every step has a target).
    opt/lr/hyper/opt_state: see :func:`fastrnn.optim.apply_update`; ``step0`` is the
    number of updates already made. Per iteration it records the loss, the gradient
    norm before clipping and every sample's wrong positions. ``blas=False`` keeps
    every product in the hand loops (for use inside threads).

    ``hstate`` is the batch's carried recurrent state, flat (L, S, batch, H)
    (:func:`fastrnn._kernels.state_size` entries). Before iteration ``it`` it is set
    to zeros if ``resets`` is empty or ``resets[it] != 0``; the iteration starts
    from it, and afterwards it holds the iteration's final state. The gradient
    never crosses an iteration boundary. ``cellset``: None for a vanilla model
    (the gated cells are then not compiled), 1 for any cell (:mod:`fastrnn.cells`). So an empty ``resets`` starts every
    sequence from zeros, and ``[1, 0, 0, ...]`` carries the state across windows
    of one stream (truncated BPTT with k1 = k2 = T).

    Returns the number of iterations completed. It is smaller than asked when a loss
    or gradient became NaN or infinite: that iteration is not applied (nor its
    final state kept), and its index is the return value.
    """
    n_iters = losses.shape[0]
    T = X.shape[1]
    P = theta.shape[0]
    O = dims[2]
    head = dims[5] if _HEAD < 0 else _HEAD  # constants where general_kernel bound them
    act = dims[4] if _ACT < 0 else _ACT
    thetaT = buf[:P]
    grad = buf[P : 2 * P]
    xt, yt, mt, hs, cs, cache, xu, tmp, z, g, gv, dsx, dsh, dd = workspace(buf, 2 * P, T, batch, dims)
    zero = T - T  # a run-time 0 (see _linalg on literals)
    for it in range(n_iters):
        if resets.shape[0] == 0 or resets[it] != 0:
            hstate[:] = 0.0
        transpose_params(theta, dims, thetaT, T, batch, blas)
        lo = it * batch
        load_data(X, Y, M, lo, lo + batch, xt, yt, mt)
        load_state(hstate, zero, batch, dims, T, batch, hs, cs)
        forward(theta, thetaT, dims, T, batch, xt, hs, cs, cache, xu, tmp, z, blas, cellset, act)
        loss = head_loss(z, yt, mt, O, head, 1.0 / batch, g)
        if not np.isfinite(loss):
            return it
        backward(theta, dims, K, T, batch, xt, hs, cs, cache, g, gv, dsx, dsh, dd, tmp, grad, blas, cellset, act)
        norm = clip_grads(grad, clip_norm, clip_value)
        if not np.isfinite(norm):
            return it
        losses[it] = loss
        grad_norms[it] = norm
        count_errors(z, yt, mt, T, batch, O, head, errors, lo)
        store_state(hs, cs, dims, T, batch, zero, batch, hstate)
        _UPDATE(opt, theta, grad, opt_state, step0 + it + 1, lr, hyper)
    return n_iters


def _compile(name, update, head, act):
    """:func:`_chunk` compiled with ``update``, ``head`` and ``act`` as ``_UPDATE``, ``_HEAD`` and ``_ACT``,
    under ``name`` (:func:`fastrnn._generate.specialise`)."""
    return _generate.specialise(_chunk, name, dict(_UPDATE=update, _HEAD=head, _ACT=act))


_GENERAL = {}


def general_kernel(opt, head, act):
    """The general driver compiled for optimizer code ``opt``, head code ``head`` and activation code
    ``act`` only (an unknown code raises KeyError): :func:`_chunk` with the optimizer's own update
    (:data:`fastrnn.optim.UPDATE_OF`), the head and the activation as constants, so that numba compiles
    neither the other optimizers' updates nor the other heads' and activations' loops (a first run
    compiles about 1.3 s less). Made on first use, compiled on its first call and cached by numba under
    a name of its own (``train_chunk_general_adam_softmax_tanh``). Arguments: :func:`_chunk`'s."""
    key = (int(opt), int(head), int(act))
    kernel = _GENERAL.get(key)
    if kernel is None:
        update = UPDATE_OF[key[0]]
        name = (f"train_chunk_general_{NAME_OF[key[0]]}_{HEAD_NAMES[key[1]]}_"
                f"{activations.NAMES[key[2]]}")
        kernel = _GENERAL[key] = _compile(name, update, key[1], key[2])
    return kernel


def train_chunk_general(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate,
                        resets, buf, losses, grad_norms, errors, blas, cellset):
    """:func:`_chunk` on one model: the kernel :func:`general_kernel` makes for the call's optimizer and the
    model's head and activation."""
    return general_kernel(opt, dims[5], dims[4])(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm,
                                        clip_value, hstate, resets, buf, losses, grad_norms, errors, blas, cellset)


#: The general driver with every optimizer's update (chosen by ``opt`` at run time) and the head read from
#: ``dims``: the many-model kernel's, whose models may each have their own.
train_chunk_any = _compile("train_chunk_any", apply_update, -1, -1)


@njit(**JIT_PARALLEL)
def train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                      resets, bufs, n_iters, losses, grad_norms, errors, done, blas, cellset):
    """:func:`train_chunk_general` for many models at once, one model per prange iteration (:data:`train_chunk_any`).

    Model m trains ``n_iters[m]`` iterations on its own rows of every array (its
    parameters ``thetas[m]``, data ``X[m]``, optimizer state, carried state
    ``hstates[m]``, resets ``resets[m]`` (read up to n_iters[m]; an empty (0, 0) ``resets``: every
    iteration starts from zeros), scratch and outputs); ``done[m]`` receives its
    return value. Nothing is shared between iterations of the parallel loop. The
    caller passes ``blas=False``: no BLAS inside threads.
    """
    for m in prange(thetas.shape[0]):
        n = n_iters[m]
        Mm = M[m] if M.shape[0] > 0 else np.zeros((0, 0), thetas.dtype)
        Rm = resets[m] if resets.shape[0] > 0 else np.zeros(0, np.int64)
        done[m] = train_chunk_any(thetas[m], dims[m], Ks[m], X[m], Y[m], Mm, batch, opts[m], lrs[m], hypers[m],
                              opt_states[m], step0s[m], clip_norms[m], 0.0, hstates[m], Rm, bufs[m], losses[m, :n],
                              grad_norms[m, :n], errors[m, : n * batch], blas, cellset)


key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
