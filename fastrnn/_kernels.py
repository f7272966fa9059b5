"""JIT-compiled forward pass and BPTT for a stacked vanilla RNN (SPEC.md).

Numbers only: no checks, no I/O. Everything here is called by the public wrappers in
:mod:`fastrnn.model` (and the training loop), which validate first.

Conventions
-----------
* Inputs arrive batch-major as users hold them: ``X (B, T, I)``, ``Y (B, T, O)``,
  ``M (B, T)`` and ``h0 (L, B, H)``. An empty ``M`` (shape (0, 0)) means "every step
  has a target" and an empty ``h0`` means zeros, so callers allocate nothing.
* All parameters live in one flat vector ``theta`` laid out per layer as
  ``U_l (H, I_l), W_l (H, H), b_l (H,)`` and then ``V (O, H), c (O,)``
  (``I_0 = I``, ``I_l = H`` above). ``thetaT`` holds the same matrices transposed, so
  that every product is ``rows @ (k, n)`` on contiguous memory. Gradients use the
  layout of ``theta``; :func:`fastrnn.params.layout` is the Python twin of
  :func:`layer_offset`.
* ``dims`` is an int64 array ``[I, H, O, L, activation, head]``; activation and head
  are the integer codes below, so one compiled kernel serves every combination
  (one specialisation per dtype, not one per option).
* Work buffers are flat arrays of rows, time-major inside: row ``t * B + i`` is
  sequence i at step t, so the B rows of one step are one contiguous block and
  the elementwise work of a step is one loop. The states of layer l start at row
  ``l * (T + 1) * B``, with ``h_0`` first. See :func:`workspace`.

The time loop only does what must be sequential: ``h_{t-1} W^T`` forward and
``delta_{t+1} W`` backward. The input projection, the output layer and every weight
gradient are single products over all ``T * B`` rows, outside the loop. Every buffer
is allocated before the time loop.
"""

import math

import numpy as np
from numba import njit, prange

from ._linalg import colsum, mm, mm_tn
from ._mathfn import exp, sigmoid, tanh
from .config import JIT, JIT_PARALLEL

TANH, SIGMOID, RELU = 0, 1, 2
ACTIVATIONS = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU}
HEAD_SOFTMAX, HEAD_SIGMOID, HEAD_LINEAR = 0, 1, 2
HEADS = {"softmax": HEAD_SOFTMAX, "sigmoid": HEAD_SIGMOID, "linear": HEAD_LINEAR}


# --------------------------------------------------------------------------- layout


@njit(**JIT)
def layer_offset(l, I, H):
    """Offset of U_l in theta; ``layer_offset(L, I, H)`` is the offset of V."""
    if l == 0:
        return 0
    return H * I + H * H + H + (l - 1) * (2 * H * H + H)


@njit(**JIT)
def _transpose_block(theta, thetaT, off, rows, cols):
    for r in range(rows):
        for q in range(cols):
            thetaT[off + q * rows + r] = theta[off + r * cols + q]


@njit(**JIT)
def transpose_params(theta, dims, thetaT):
    """Write U_l^T, W_l^T and V^T into ``thetaT`` at the offsets of U_l, W_l and V."""
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    for l in range(L):
        o = layer_offset(l, I, H)
        Il = I if l == 0 else H
        _transpose_block(theta, thetaT, o, H, Il)
        _transpose_block(theta, thetaT, o + H * Il, H, H)
    _transpose_block(theta, thetaT, layer_offset(L, I, H), O, H)


# ------------------------------------------------------------------------ workspace


@njit(**JIT)
def _workspace_sizes(T, B, dims):
    """Lengths of the 12 buffers of :func:`workspace`, in order (the one place they are written)."""
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    TB = T * B
    return (TB * I, TB * O, TB, L * (T + 1) * B * H, TB * H, B * H, TB * O, TB * O, TB * H, L * TB * H, L * B * H, L * B * H)


@njit(**JIT)
def workspace_size(T, B, dims):
    """Number of scratch entries :func:`workspace` carves for a (B, T) batch."""
    total = 0
    for n in _workspace_sizes(T, B, dims):
        total += n
    return total


@njit(**JIT)
def scratch_size(T, B, dims, n_threads):
    """Scratch a loss_and_grads call needs: thetaT, then per thread a gradient row
    (parallel only) and a workspace for its share of the batch."""
    P = layer_offset(dims[3], dims[0], dims[1]) + dims[2] * dims[1] + dims[2]
    if n_threads == 1:
        return P + workspace_size(T, B, dims)
    return P + n_threads * (P + workspace_size(T, (B + n_threads - 1) // n_threads, dims))


@njit(**JIT)
def workspace(buf, off, T, B, dims):
    """Carve every buffer one forward + backward pass over a (B, T) batch needs out
    of ``buf[off:]`` (see :func:`workspace_size`). Reusing one scratch vector across
    calls matters: fresh buffers of a few hundred kB come from mmap and cost a page
    fault per 4 kB on first touch (measured 400 us of a 1 ms call at the digit shape).

    Returns ``(xt, yt, mt, hs, xu, tmp, z, g, gv, dsum, dcur, dnext)``: flat views
    holding, as row-major matrices, xt (T*B, I), yt (T*B, O), mt (T*B,) time-major
    copies of the data; hs (L*(T+1)*B, H) the states; xu (T*B, H) the current
    layer's input projection plus bias; tmp (B, H); z (T*B, O) logits, then
    predictions; g (T*B, O) dL/dz; gv (T*B, H) g V; dsum (L*T*B, H) the deltas
    summed over loss origins; dcur and dnext (L*B, H) the deltas of the step in hand
    and of the step after it.
    """
    sizes = _workspace_sizes(T, B, dims)
    o = np.empty(13, np.int64)
    o[0] = off
    for q in range(12):
        o[q + 1] = o[q] + sizes[q]
    return (
        buf[o[0] : o[1]], buf[o[1] : o[2]], buf[o[2] : o[3]], buf[o[3] : o[4]],
        buf[o[4] : o[5]], buf[o[5] : o[6]], buf[o[6] : o[7]], buf[o[7] : o[8]],
        buf[o[8] : o[9]], buf[o[9] : o[10]], buf[o[10] : o[11]], buf[o[11] : o[12]],
    )


@njit(**JIT)
def load_batch(X, Y, M, h0, lo, hi, xt, yt, mt, hs, L, H):
    """Copy sequences lo..hi-1 of the batch-major data into the time-major buffers."""
    T, I, O = X.shape[1], X.shape[2], Y.shape[2]
    B = hi - lo
    for t in range(T):
        for i in range(B):
            r = t * B + i
            for q in range(I):
                xt[r * I + q] = X[lo + i, t, q]
            for q in range(O):
                yt[r * O + q] = Y[lo + i, t, q]
            mt[r] = M[lo + i, t] if M.shape[0] > 0 else 1.0
    for l in range(L):
        base = l * (T + 1) * B * H
        for i in range(B):
            for j in range(H):
                hs[base + i * H + j] = h0[l, lo + i, j] if h0.shape[0] > 0 else 0.0


# -------------------------------------------------------------------------- forward


@njit(**JIT)
def _activate(pre, xu, xoff, hs, hoff, n, act):
    """hs[hoff + e] = f(pre[e] + xu[xoff + e]) for the n = B*H entries of one step."""
    if act == TANH:
        for e in range(n):
            hs[hoff + e] = tanh(pre[e] + xu[xoff + e])
    elif act == SIGMOID:
        for e in range(n):
            hs[hoff + e] = sigmoid(pre[e] + xu[xoff + e])
    else:
        for e in range(n):
            a = pre[e] + xu[xoff + e]
            hs[hoff + e] = a if a > 0.0 else 0.0


@njit(**JIT)
def forward(theta, thetaT, dims, T, B, xt, hs, xu, tmp, z, blas):
    """Run every layer over the sequences in xt (hs must hold h_0); logits into z."""
    I, H, O, L, act = dims[0], dims[1], dims[2], dims[3], dims[4]
    TB = T * B
    BH = B * H
    for l in range(L):
        o = layer_offset(l, I, H)
        Il = I if l == 0 else H
        # the layer's input: the data for layer 0, the states h_1..h_T of layer l-1 above it
        src = xt if l == 0 else hs
        src_off = 0 if l == 0 else ((l - 1) * (T + 1) * B + B) * H
        mm(src, src_off, TB, Il, thetaT, o, H, xu, blas)
        bo = o + H * Il + H * H
        for r in range(TB):
            for j in range(H):
                xu[r * H + j] += theta[bo + j]
        base = l * (T + 1) * BH
        for t in range(T):
            mm(hs, base + t * BH, B, H, thetaT, o + H * Il, H, tmp, blas)
            _activate(tmp, xu, t * BH, hs, base + (t + 1) * BH, BH, act)
    oV = layer_offset(L, I, H)
    mm(hs, ((L - 1) * (T + 1) * B + B) * H, TB, H, thetaT, oV, O, z, blas)
    for r in range(TB):
        for k in range(O):
            z[r * O + k] += theta[oV + O * H + k]


@njit(**JIT)
def head_loss(z, yt, mt, O, head, scale, g):
    """Turn logits z (R, O) into predictions in place, write g = scale * mask * dL/dz.

    Returns ``scale * sum(mask * loss)``; with ``scale = 1 / B`` that is SPEC.md's
    loss (sum over masked steps, mean over sequences). The exponentials are written
    into a row of g first, in a loop of their own, so that they vectorise.
    """
    R = mt.shape[0]
    total = 0.0
    for r in range(R):
        m = mt[r]
        q = r * O
        row = 0.0
        if head == HEAD_SOFTMAX:
            zmax = z[q]
            for k in range(1, O):
                zmax = z[q + k] if z[q + k] > zmax else zmax
            for k in range(O):
                g[q + k] = exp(z[q + k] - zmax)
            s = 0.0
            for k in range(O):
                s += g[q + k]
            log_s = math.log(s)
            for k in range(O):
                row -= yt[q + k] * (z[q + k] - zmax - log_s)
            for k in range(O):
                p = g[q + k] / s
                z[q + k] = p
                g[q + k] = scale * m * (p - yt[q + k])
        elif head == HEAD_SIGMOID:
            for k in range(O):
                zk = z[q + k]
                # BCE from the logit: softplus(z) - y z, stable for any z
                row += (zk if zk > 0.0 else 0.0) - yt[q + k] * zk + math.log1p(exp(-abs(zk)))
                p = sigmoid(zk)
                z[q + k] = p
                g[q + k] = scale * m * (p - yt[q + k])
        else:
            for k in range(O):
                d = z[q + k] - yt[q + k]
                row += 0.5 * d * d
                g[q + k] = scale * m * d
        if m != 0.0:
            total += scale * m * row
    return total


# ------------------------------------------------------------------------- backward


@njit(**JIT)
def _delta_step(theta, dims, T, B, hs, gv, k, inject, has_next, dcur, dnext, tmp, blas):
    """delta of every layer at step k, top layer first, into dcur.

    delta^l_k = f'(a^l_k) * ([l top and inject] g_k V + [has_next] delta^l_{k+1} W_l
                             + [l below top] delta^{l+1}_k U_{l+1})
    """
    I, H, L, act = dims[0], dims[1], dims[3], dims[4]
    BH = B * H
    for l in range(L - 1, -1, -1):
        d = l * BH
        if l == L - 1 and inject:
            src = k * BH
            for e in range(BH):
                dcur[d + e] = gv[src + e]
        else:
            for e in range(BH):
                dcur[d + e] = 0.0
        if has_next:
            Il = I if l == 0 else H
            mm(dnext, d, B, H, theta, layer_offset(l, I, H) + H * Il, H, tmp, blas)
            for e in range(BH):
                dcur[d + e] += tmp[e]
        if l < L - 1:
            mm(dcur, d + BH, B, H, theta, layer_offset(l + 1, I, H), H, tmp, blas)
            for e in range(BH):
                dcur[d + e] += tmp[e]
        hoff = (l * (T + 1) + k + 1) * BH
        if act == TANH:
            for e in range(BH):
                h = hs[hoff + e]
                dcur[d + e] *= 1.0 - h * h
        elif act == SIGMOID:
            for e in range(BH):
                h = hs[hoff + e]
                dcur[d + e] *= h * (1.0 - h)
        else:
            for e in range(BH):
                dcur[d + e] = dcur[d + e] if hs[hoff + e] > 0.0 else 0.0


@njit(**JIT)
def backward(theta, dims, K, T, B, xt, hs, g, gv, dsum, dcur, dnext, tmp, grad, blas):
    """BPTT from g = dL/dz; writes every parameter's gradient into ``grad``.

    K < 0: full BPTT, one backward sweep. K >= 0: the loss at step t reaches only
    steps t-K..t (SPEC.md), so each loss origin gets its own sweep of K + 1 steps;
    the deltas of all origins are summed per step (``dsum``), which is all the
    weight gradients need. K >= T - 1 is full BPTT and takes the single sweep.
    """
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    TB = T * B
    BH = B * H
    zero = T - T  # a run-time 0: a literal 0 would compile extra specialisations (see _linalg)
    oV = layer_offset(L, I, H)
    mm(g, zero, TB, O, theta, oV, H, gv, blas)
    full = K < 0 or K >= T - 1
    dsum[:] = 0.0
    # Full BPTT is one sweep from the last step, every step's loss joining as it
    # passes; truncated BPTT is one sweep per loss origin t0, over steps t0..t0-K.
    for origin in range(1 if full else T):
        t0 = T - 1 if full else origin
        k_min = 0 if full else (t0 - K if t0 > K else 0)
        for k in range(t0, k_min - 1, -1):
            _delta_step(theta, dims, T, B, hs, gv, k, full or k == t0, k < t0, dcur, dnext, tmp, blas)
            for l in range(L):
                dst = (l * T + k) * BH
                for e in range(BH):
                    dsum[dst + e] += dcur[l * BH + e]
            dcur, dnext = dnext, dcur
    for l in range(L):
        o = layer_offset(l, I, H)
        Il = I if l == 0 else H
        dl = l * TB * H
        src = xt if l == 0 else hs
        src_off = zero if l == 0 else ((l - 1) * (T + 1) * B + B) * H
        mm_tn(dsum, dl, H, src, src_off, Il, TB, grad, o, blas)
        mm_tn(dsum, dl, H, hs, l * (T + 1) * BH, H, TB, grad, o + H * Il, blas)
        colsum(dsum, dl, TB, H, grad, o + H * Il + H * H)
    mm_tn(g, zero, O, hs, ((L - 1) * (T + 1) * B + B) * H, H, TB, grad, oV, blas)
    colsum(g, zero, TB, O, grad, oV + O * H)


@njit(**JIT)
def loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, lo, hi, scale, grad, ws, blas):
    """Forward, loss and BPTT over sequences lo..hi-1 of the batch."""
    xt, yt, mt, hs, xu, tmp, z, g, gv, dsum, dcur, dnext = ws
    T = X.shape[1]
    B = hi - lo
    load_batch(X, Y, M, h0, lo, hi, xt, yt, mt, hs, dims[3], dims[1])
    forward(theta, thetaT, dims, T, B, xt, hs, xu, tmp, z, blas)
    loss = head_loss(z, yt, mt, dims[2], dims[5], scale, g)
    backward(theta, dims, K, T, B, xt, hs, g, gv, dsum, dcur, dnext, tmp, grad, blas)
    return loss


@njit(**JIT)
def store_final_state(hs, T, B, lo, h_final):
    """h_final[l, lo + i] = the state of layer l after step T."""
    L, H = h_final.shape[0], h_final.shape[2]
    for l in range(L):
        r = (l * (T + 1) + T) * B
        for i in range(B):
            for j in range(H):
                h_final[l, lo + i, j] = hs[(r + i) * H + j]


# -------------------------------------------------------------------------- drivers


@njit(**JIT)
def predict(theta, dims, X, h0, yhat, states, blas):
    """Forward pass only: yhat (B, T, O) and states (L, B, T, H) of h_1..h_T."""
    B, T = X.shape[0], X.shape[1]
    zero = B - B  # a run-time 0 (see _linalg on literals)
    L, H, O = dims[3], dims[1], dims[2]
    buf = np.empty(scratch_size(T, B, dims, 1), theta.dtype)
    thetaT = buf[: theta.shape[0]]
    transpose_params(theta, dims, thetaT)
    ws = workspace(buf, theta.shape[0], T, B, dims)
    xt, yt, mt, hs, xu, tmp, z, g = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
    load_batch(X, np.zeros((B, T, O), theta.dtype), np.zeros((B, T), theta.dtype), h0, zero, B, xt, yt, mt, hs, L, H)
    forward(theta, thetaT, dims, T, B, xt, hs, xu, tmp, z, blas)
    head_loss(z, yt, mt, O, dims[5], 0.0, g)
    for i in range(B):
        for t in range(T):
            for k in range(O):
                yhat[i, t, k] = z[(t * B + i) * O + k]
            for l in range(L):
                for j in range(H):
                    states[l, i, t, j] = hs[((l * (T + 1) + t + 1) * B + i) * H + j]


@njit(**JIT)
def loss_and_grads_serial(theta, dims, K, X, Y, M, h0, grad, h_final, buf, blas):
    """Loss (mean over the batch) and its gradient in ``grad``; final states in h_final.

    ``buf`` is scratch of at least ``scratch_size(T, B, dims, 1)`` entries; ``blas``
    lets the products use BLAS (the caller passes it so that it is no literal).
    """
    B, T = X.shape[0], X.shape[1]
    zero = B - B
    P = theta.shape[0]
    thetaT = buf[:P]
    transpose_params(theta, dims, thetaT)
    ws = workspace(buf, P, T, B, dims)
    loss = loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, zero, B, 1.0 / B, grad, ws, blas)
    store_final_state(ws[3], T, B, zero, h_final)
    return loss


@njit(**JIT_PARALLEL)
def loss_and_grads_parallel(theta, dims, K, X, Y, M, h0, grad, h_final, buf, n_threads, blas):
    """As :func:`loss_and_grads_serial`, with the batch split over ``n_threads``.

    Each thread works on its own sequences with its own workspace and writes its
    own gradient row (never ``+=`` into a shared array); the rows are summed after
    the parallel loop in thread order, so the result does not depend on
    scheduling. The caller passes ``blas=False``: threads must use the hand-written
    products, not BLAS (see _linalg). ``buf`` is scratch of at least
    ``scratch_size(T, B, dims, n_threads)`` entries.
    """
    B, T = X.shape[0], X.shape[1]
    P = theta.shape[0]
    thetaT = buf[:P]
    transpose_params(theta, dims, thetaT)
    per_thread = P + workspace_size(T, (B + n_threads - 1) // n_threads, dims)
    losses = np.zeros(n_threads)
    for tid in prange(n_threads):
        lo = tid * B // n_threads
        hi = (tid + 1) * B // n_threads
        start = P + tid * per_thread
        ws = workspace(buf, start + P, T, hi - lo, dims)
        losses[tid] = loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, lo, hi, 1.0 / B, buf[start : start + P], ws, blas)
        store_final_state(ws[3], T, hi - lo, lo, h_final)
    loss = 0.0
    for p in range(P):
        acc = buf[P + p]
        for tid in range(1, n_threads):
            acc += buf[P + tid * per_thread + p]
        grad[p] = acc
    for tid in range(n_threads):
        loss += losses[tid]
    return loss
