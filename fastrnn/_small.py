"""The small-model path: one vanilla layer, products too small for BLAS.

At the binary-addition shape (I=2, H=16, O=1, T=8, one sequence) a training
iteration is a few thousand multiply-adds, and the general driver
(:mod:`fastrnn._kernels`) spends more time on its generality than on them: it
carves a workspace of 14 buffers, walks layer and state offsets, calls the
cell through the registry and a product routine per step and per layer. This
module does the same arithmetic, in the same order, for the one case of a
single vanilla layer whose every product stays below ``config.BLAS_MIN_WORK``
(:func:`eligible`), with the loops written out: every entry of h, z, the
deltas and the gradient is the same sum of the same terms as in the general
kernel, so in float64 the results agree bit for bit (the tests compare both
with tests/reference.py at rtol 1e-10, and with each other exactly). In
float32 they agree to float32 rounding: a few sums that the general kernel
accumulates in a float32 array run here in a float64 scalar, or the reverse.
Runs on this path agree with each other exactly (train_many and train alike).

Why the first version of this path gained nothing end to end: it kept every
buffer as offsets into one array, and a loop that reads one part of an array
and writes another runs without vectorisation (measured 6x slower for a 16x16
product). Separate arrays (:func:`workspace`), fused per-step loops and a
four-way norm (fastrnn.optim.global_norm; one running sum of 321 squares was
a fifth of the iteration) made the difference.

Callers choose the path once per kernel call (:mod:`fastrnn.engine`), never per
iteration. A command that only trains a small model compiles only this module,
the optimizer and the head, not the general driver (start-up, issue 12).

Numbers only: no checks. Scratch is the caller's ``buf`` (any length of at
least :func:`scratch_size`); nothing is allocated per iteration.
"""

import numpy as np
from numba import njit, prange

from ._kernels import head_loss
from ._train_kernel import count_errors
from ._mathfn import sigmoid, tanh
from .cells import rnn
from .config import BLAS_MIN_WORK, JIT, JIT_PARALLEL
from .optim import apply_update, clip_grads


def eligible(dims, T, B):
    """Whether a (B, T) batch of the model with ``dims`` takes this path (Python-side test).

    One vanilla layer, and every product of the general driver below
    BLAS_MIN_WORK, so that the general kernel uses its hand loops too and both
    paths compute the same numbers.
    """
    I, H, O, L, cell = int(dims[0]), int(dims[1]), int(dims[2]), int(dims[3]), int(dims[6])
    return cell == 0 and L == 1 and T * B * H * max(I, H, O) < BLAS_MIN_WORK


@njit(**JIT)
def scratch_size(T, B, I, H, O):
    """Entries of ``buf`` :func:`workspace` carves (train_chunk's buf holds the gradient first)."""
    TB = T * B
    return H * I + H * H + TB * (I + 3 * O + 1) + (T + 1) * B * H + 2 * TB * H + 4 * B * H


@njit(**JIT)
def workspace(buf, T, B, I, H, O):
    """Carve the arrays of the passes out of ``buf`` (once per kernel call).

    Separate arrays, not offsets into one: a loop that reads one part of an
    array and writes another cannot be vectorised without run-time overlap
    checks, and measured 6x slower at H = 16 than the same loop over two arrays.
    Returns (uT (I*H), wT (H*H), xt (T*B*I), yt (T*B*O), mt (T*B), hs ((T+1)*B*H),
    z (T*B*O), g (T*B*O), gv (T*B*H), ds (T*B*H), a, hw, d0, d1 (B*H each)).
    """
    TB = T * B
    BH = B * H
    sizes = (I * H, H * H, TB * I, TB * O, TB, (T + 1) * BH, TB * O, TB * O, TB * H, TB * H, BH, BH, BH, BH)
    o = np.empty(15, np.int64)
    o[0] = T - T
    for q in range(14):
        o[q + 1] = o[q] + sizes[q]
    return (buf[o[0] : o[1]], buf[o[1] : o[2]], buf[o[2] : o[3]], buf[o[3] : o[4]], buf[o[4] : o[5]],
            buf[o[5] : o[6]], buf[o[6] : o[7]], buf[o[7] : o[8]], buf[o[8] : o[9]], buf[o[9] : o[10]],
            buf[o[10] : o[11]], buf[o[11] : o[12]], buf[o[12] : o[13]], buf[o[13] : o[14]])


@njit(**JIT)
def _transpose(theta, I, H, uT, wT):
    """uT (I, H) = U^T and wT (H, H) = W^T from theta."""
    for q in range(I):
        for r in range(H):
            uT[q * H + r] = theta[r * I + q]
    oW = H * I
    for q in range(H):
        for r in range(H):
            wT[q * H + r] = theta[oW + r * H + q]


@njit(**JIT)
def _load(X, Y, M, lo, B, xt, yt, mt):
    """Sequences lo..lo+B-1 of X, Y, M time-major into xt, yt, mt."""
    T, I, O = X.shape[1], X.shape[2], Y.shape[2]
    for t in range(T):
        for i in range(B):
            r = t * B + i
            for q in range(I):
                xt[r * I + q] = X[lo + i, t, q]
            for q in range(O):
                yt[r * O + q] = Y[lo + i, t, q]
            mt[r] = M[lo + i, t] if M.shape[0] > 0 else 1.0


@njit(**JIT)
def _vecmat(A, ar, M, n, out, orow):
    """out[orow] = A[ar, :n] @ M[:n] (all 2-D): every entry summed from 0.0 over k ascending,
    as the axpy-order hand loops of :mod:`fastrnn._linalg` sum it. Four rows of M per pass
    over the output row, each entry's four terms added left to right (the same sum), so
    that the running sums make a quarter of the round trips through memory. Rows are
    indexed, not sliced: a view per row costs two atomic reference-count updates."""
    m = out.shape[1]
    for j in range(m):
        out[orow, j] = 0.0
    k = n - n  # a run-time 0 (see _linalg on literals)
    while k + 4 <= n:
        v0, v1, v2, v3 = A[ar, k], A[ar, k + 1], A[ar, k + 2], A[ar, k + 3]
        for j in range(m):
            out[orow, j] = (((out[orow, j] + v0 * M[k, j]) + v1 * M[k + 1, j]) + v2 * M[k + 2, j]) + v3 * M[k + 3, j]
        k += 4
    while k < n:
        vk = A[ar, k]
        for j in range(m):
            out[orow, j] += vk * M[k, j]
        k += 1


@njit(**JIT)
def _forward(uT, wT, b, V, c, act, T, B, x, hs, z, a, hw):
    """h_t = f(h_{t-1} W^T + (x_t U^T + b)) and z_t = h_t V^T + c, step by step (rows 0..B-1
    of hs hold h_0). All 2-D: uT (I, H), wT (H, H), V (O, H), x (T*B, I), hs ((T+1)*B, H),
    z (T*B, O), a and hw (B, H). Per entry the sums of :func:`fastrnn._kernels.forward`:
    x U^T and h W^T each from 0.0 over p and k ascending, then b added to the first, the
    two added, the logits summed over j ascending plus c."""
    I, H, O = uT.shape[0], wT.shape[0], V.shape[0]
    for t in range(T):
        for i in range(B):
            r = t * B + i
            _vecmat(x, r, uT, I, a, i)
            for j in range(H):
                a[i, j] += b[j]
            _vecmat(hs, r, wT, H, hw, i)
        for i in range(B):
            r = t * B + i
            q = r + B
            if act == rnn.SIGMOID:
                for j in range(H):
                    hs[q, j] = sigmoid(hw[i, j] + a[i, j])
            elif act == rnn.TANH:
                for j in range(H):
                    hs[q, j] = tanh(hw[i, j] + a[i, j])
            else:
                for j in range(H):
                    v = hw[i, j] + a[i, j]
                    hs[q, j] = v if v > 0.0 else 0.0
            for k in range(O):
                acc = 0.0
                for j in range(H):
                    acc += hs[q, j] * V[k, j]
                z[r, k] = acc + c[k]


@njit(**JIT)
def _backward(W, V, act, K, T, B, hs, g, gv, ds, dh, dc, dn):
    """The summed deltas ds (T*B, H) from g = dL/dz (T*B, O): one sweep, or one per loss
    origin when truncated, as :func:`fastrnn._kernels.backward` (dh_k = [origin] g_k V +
    [below it] d_{k+1} W, each product from 0.0 in the general kernel's order; then
    d_k = f'(a_k) dh_k with the expressions of :func:`fastrnn.cells.rnn.backward_step`).
    W (H, H) and V (O, H) as theta holds them; hs ((T+1)*B, H); gv (T*B, H); dh, dc, dn (B, H)."""
    H, O = W.shape[0], V.shape[0]
    TB = T * B
    for r in range(TB):
        _vecmat(g, r, V, O, gv, r)
    for r in range(TB):
        for j in range(H):
            ds[r, j] = 0.0
    full = K < 0 or K >= T - 1
    for origin in range(1 if full else T):
        t0 = T - 1 if full else origin
        k_min = 0 if full else (t0 - K if t0 > K else 0)
        for k in range(t0, k_min - 1, -1):
            inject = full or k == t0
            for i in range(B):
                r = k * B + i
                if k < t0:
                    _vecmat(dn, i, W, H, dh, i)  # d_{k+1} W, then the injected g_k V first
                    if inject:
                        for j in range(H):
                            dh[i, j] = gv[r, j] + dh[i, j]
                else:
                    for j in range(H):
                        dh[i, j] = gv[r, j]
                q = r + B
                if act == rnn.TANH:
                    for j in range(H):
                        v = hs[q, j]
                        d = dh[i, j] * (1.0 - v * v)
                        dc[i, j] = d
                        ds[r, j] += d
                elif act == rnn.SIGMOID:
                    for j in range(H):
                        v = hs[q, j]
                        d = dh[i, j] * (v * (1.0 - v))
                        dc[i, j] = d
                        ds[r, j] += d
                else:
                    for j in range(H):
                        d = dh[i, j] if hs[q, j] > 0.0 else 0.0
                        dc[i, j] = d
                        ds[r, j] += d
            dc, dn = dn, dc


@njit(**JIT)
def _grads(x, hs, ds, g, gU, gW, gb, gV, gc):
    """Every weight gradient from the summed deltas ds (T*B, H), in theta's layout (all 2-D
    but gb, gc): each entry the sum over rows r ascending from 0.0, as
    :func:`fastrnn._linalg.mm_tn` and ``colsum`` sum it (rows four at a time, added left
    to right: the same sums). hs ((T+1)*B, H): rows r feed dW, rows B + r dV."""
    R, H = ds.shape[0], ds.shape[1]
    I, O = x.shape[1], g.shape[1]
    B = hs.shape[0] - R
    for j in range(H):
        for p in range(I):
            acc = 0.0
            for r in range(R):
                acc += ds[r, j] * x[r, p]
            gU[j, p] = acc
    for j in range(H):
        gb[j] = 0.0
        for k in range(H):
            gW[j, k] = 0.0
    for k in range(O):
        gc[k] = 0.0
        for j in range(H):
            gV[k, j] = 0.0
    r = R - R
    while r + 4 <= R:
        r1, r2, r3 = r + 1, r + 2, r + 3
        for j in range(H):
            gb[j] = (((gb[j] + ds[r, j]) + ds[r1, j]) + ds[r2, j]) + ds[r3, j]
        for j in range(H):
            d0, d1, d2, d3 = ds[r, j], ds[r1, j], ds[r2, j], ds[r3, j]
            for k in range(H):
                gW[j, k] = (((gW[j, k] + d0 * hs[r, k]) + d1 * hs[r1, k]) + d2 * hs[r2, k]) + d3 * hs[r3, k]
        for k in range(O):
            e0, e1, e2, e3 = g[r, k], g[r1, k], g[r2, k], g[r3, k]
            gc[k] = (((gc[k] + e0) + e1) + e2) + e3
            for j in range(H):
                gV[k, j] = (((gV[k, j] + e0 * hs[B + r, j]) + e1 * hs[B + r1, j]) + e2 * hs[B + r2, j]) + e3 * hs[B + r3, j]
        r += 4
    while r < R:
        for j in range(H):
            gb[j] += ds[r, j]
        for j in range(H):
            d0 = ds[r, j]
            for k in range(H):
                gW[j, k] += d0 * hs[r, k]
        for k in range(O):
            e0 = g[r, k]
            gc[k] += e0
            for j in range(H):
                gV[k, j] += e0 * hs[B + r, j]
        r += 1


@njit(**JIT)
def _views(theta, grad, ws, T, B, I, H, O):
    """The 2-D views the passes read, made once per kernel call (a reshape calls into
    numba's runtime: per iteration, the views alone cost more than a microsecond).

    Returns (U^T, W^T, W, b, V, c, x, hs, z, g, gv, a, hw, d0, d1, ds, gU, gW, gb, gV, gc):
    theta's and grad's matrices in theta's layout, the transposed copies from ``ws``, and
    the work arrays of ``ws`` as rows of H (hs (T+1)*B of them, gv and ds T*B, a, hw, d0, d1 B)."""
    uT, wT, xt, yt, mt, hs, z, g, gv, ds, a, hw, d0, d1 = ws
    TB = T * B
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    return (uT.reshape(I, H), wT.reshape(H, H), theta[oW:ob].reshape(H, H), theta[ob:oV], theta[oV:oc].reshape(O, H),
            theta[oc:], xt.reshape(TB, I), hs.reshape((T + 1) * B, H), z.reshape(TB, O), g.reshape(TB, O),
            gv.reshape(TB, H), a.reshape(B, H), hw.reshape(B, H), d0.reshape(B, H), d1.reshape(B, H), ds.reshape(TB, H),
            grad[:oW].reshape(H, I), grad[oW:ob].reshape(H, H), grad[ob:oV], grad[oV:oc].reshape(O, H), grad[oc:])


@njit(**JIT)
def _loss_grad(act, head, K, T, B, scale, yt, mt, z, g, uT, wT, W, b, V, c, x, hs, z2, g2, gv, a, hw, d0, d1, ds, gU, gW,
               gb, gV, gc):
    """Forward, loss and BPTT through the views of :func:`_views` (U^T and W^T current, rows
    0..B-1 of hs h_0; yt, mt, z, g the flat arrays of :func:`workspace`); the gradient
    lands in the grad array the views were made from. Returns the loss."""
    _forward(uT, wT, b, V, c, act, T, B, x, hs, z2, a, hw)
    loss = head_loss(z, yt, mt, V.shape[0], head, scale, g)
    _backward(W, V, act, K, T, B, hs, g2, gv, ds, a, d0, d1)
    _grads(x, hs, ds, g2, gU, gW, gb, gV, gc)
    return loss


@njit(**JIT)
def train_chunk(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets,
                buf, losses, grad_norms, errors):
    """:func:`fastrnn._train_kernel.train_chunk` for an :func:`eligible` model: same arguments
    (no ``blas``), same meaning, same numbers."""
    n_iters = losses.shape[0]
    T = X.shape[1]
    P = theta.shape[0]
    I, H, O, act, head = dims[0], dims[1], dims[2], dims[4], dims[5]
    B = batch
    BH = B * H
    grad = buf[:P]
    ws = workspace(buf[P:], T, B, I, H, O)
    uT, wT, xt, yt, mt, hs, z = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6]
    v = _views(theta, grad, ws, T, B, I, H, O)
    _transpose(theta, I, H, uT, wT)
    for it in range(n_iters):
        if resets.shape[0] == 0 or resets[it] != 0:
            for e in range(BH):
                hstate[e] = 0.0
        lo = it * B
        _load(X, Y, M, lo, B, xt, yt, mt)
        for e in range(BH):
            hs[e] = hstate[e]
        loss = _loss_grad(act, head, K, T, B, 1.0 / B, yt, mt, z, ws[7], *v)
        if not np.isfinite(loss):
            return it
        norm = clip_grads(grad, clip_norm, clip_value)
        if not np.isfinite(norm):
            return it
        losses[it] = loss
        grad_norms[it] = norm
        count_errors(z, yt, mt, T, B, O, head, errors, lo)
        for e in range(BH):
            hstate[e] = hs[T * BH + e]
        apply_update(opt, theta, grad, opt_state, step0 + it + 1, lr, hyper)
        _transpose(theta, I, H, uT, wT)
    return n_iters


@njit(**JIT_PARALLEL)
def train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                      resets, bufs, n_iters, losses, grad_norms, errors, done):
    """:func:`fastrnn._train_kernel.train_chunks_many` for :func:`eligible` models (no ``blas``)."""
    for m in prange(thetas.shape[0]):
        n = n_iters[m]
        Mm = M[m] if M.shape[0] > 0 else np.zeros((0, 0), thetas.dtype)
        Rm = resets[m] if resets.shape[0] > 0 else np.zeros(0, np.int64)
        done[m] = train_chunk(thetas[m], dims[m], Ks[m], X[m], Y[m], Mm, batch, opts[m], lrs[m], hypers[m],
                              opt_states[m], step0s[m], clip_norms[m], 0.0, hstates[m], Rm, bufs[m], losses[m, :n],
                              grad_norms[m, :n], errors[m, : n * batch])


@njit(**JIT)
def loss_and_grads(theta, dims, K, X, Y, M, h0, grad, h_final, buf):
    """:func:`fastrnn._kernels.loss_and_grads_serial` for an :func:`eligible` model (no ``blas``)."""
    B, T = X.shape[0], X.shape[1]
    I, H, O = dims[0], dims[1], dims[2]
    BH = B * H
    ws = workspace(buf, T, B, I, H, O)
    hs = ws[5]
    _transpose(theta, I, H, ws[0], ws[1])
    _load(X, Y, M, B - B, B, ws[2], ws[3], ws[4])
    if h0.shape[0] > 0:
        for e in range(BH):
            hs[e] = h0[e]
    else:
        for e in range(BH):
            hs[e] = 0.0
    loss = _loss_grad(dims[4], dims[5], K, T, B, 1.0 / B, ws[3], ws[4], ws[6], ws[7], *_views(theta, grad, ws, T, B, I, H, O))
    for e in range(BH):
        h_final[e] = hs[T * BH + e]
    return loss
