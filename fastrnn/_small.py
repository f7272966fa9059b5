"""The small-model path: one vanilla layer, products too small for BLAS.

At the binary-addition shape (I=2, H=16, O=1, T=8, one sequence) a training
iteration is a few thousand multiply-adds, and the general driver
(:mod:`fastrnn._kernels`) spends more time on its generality than on them: it
carves a workspace of 14 buffers, walks layer and state offsets, calls the
cell through the registry and a product routine per step and per layer. This
module does the same arithmetic, in the same order, for the one case of a
single vanilla layer whose every product stays below ``config.BLAS_MIN_WORK``
(:func:`fastrnn.dispatch.small_fits`), with the loops written out: every entry of h, z, the
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

Two kernels: :func:`train_chunk` takes every option (optimizer, head,
clipping, truncation); :func:`train_chunk_sgd`, the lean one, only plain SGD
without clipping, full BPTT and the sigmoid head, which is the headline run
(binary addition) and what a newcomer's first command compiles: about half the
compile time of the full one (8.3 -> 4.3 s, measured side by side) and
3.4 against 6.0 us an iteration. What made it fast: 2-D arrays indexed by row
(a flat ``offset + j`` index may be negative as far as numba knows, and its
wraparound check keeps a loop scalar; a view per row costs two atomic
reference-count updates), the activation and the products in small functions
of their own (inlined into the big loop, LLVM had left the sigmoid scalar: 9.5
against 3 ns an element), and the loss (a libm log1p call) after the
recurrence instead of inside each step.

Sweeps (:func:`fastrnn.training.train_many`) of float64 lean runs take a third
form of the lean kernel, :func:`train_lanes_sgd`: up to LANES models at once,
entry e of model l stored at ``[..., e, l]``, every loop of :func:`train_chunk_sgd`
run over the lanes (a run-time count, which LLVM's loop vectorizer takes; a
constant 4 was left scalar, as were 4 lanes per vector written out), each lane
the lean kernel's operations in its order, so bit for bit its numbers. 2.95-3.0
against 3.7-3.8 us a model-iteration on one thread; lane groups go to Python
threads (the kernel releases the GIL): a parfor wrapper took 17 s to compile.

Callers choose the kernel once per kernel call (:func:`fastrnn.dispatch.choose_kernel`,
called by :mod:`fastrnn.engine`), never per iteration. A
command that only trains a small model compiles only the kernel it uses, not
the general driver (start-up).

Numbers only: no checks. Scratch is the caller's ``buf`` (any length of at
least :func:`scratch_size`); nothing is allocated per iteration.
"""

import math

import numpy as np
from numba import njit, prange

from . import activations
from ._kernels import head_loss
from ._mathfn import exp, sigmoid
from ._train_kernel import count_errors
from .cells import rnn
from .config import JIT, JIT_PARALLEL
from .optim import apply_update, clip_grads, global_norm


@njit(**JIT)
def scratch_size(T, B, I, H, O):
    """Entries of ``buf`` :func:`workspace` carves (train_chunk's buf holds the gradient first)."""
    TB = T * B
    return H * I + H * H + TB * (I + 3 * O + 1) + (T + 1) * B * H + 3 * TB * H + 3 * B * H


@njit(**JIT)
def workspace(buf, T, B, I, H, O):
    """Carve the arrays of :func:`loss_grad` out of ``buf`` (once per kernel call).

    Separate arrays, not offsets into one: a loop that reads one part of an
    array and writes another cannot be vectorised without run-time overlap
    checks, and measured 6x slower at H = 16 than the same loop over two arrays.
    Returns (uT (I*H), wT (H*H), xt (T*B*I), yt (T*B*O), mt (T*B), hs ((T+1)*B*H),
    xu (T*B*H), z (T*B*O), g (T*B*O), gv (T*B*H), ds (T*B*H), d0, d1, dh (B*H each)).
    """
    TB = T * B
    BH = B * H
    sizes = (I * H, H * H, TB * I, TB * O, TB, (T + 1) * BH, TB * H, TB * O, TB * O, TB * H, TB * H, BH, BH, BH)
    o = np.empty(15, np.int64)
    o[0] = T - T
    for q in range(14):
        o[q + 1] = o[q] + sizes[q]
    return (buf[o[0] : o[1]], buf[o[1] : o[2]], buf[o[2] : o[3]], buf[o[3] : o[4]], buf[o[4] : o[5]],
            buf[o[5] : o[6]], buf[o[6] : o[7]], buf[o[7] : o[8]], buf[o[8] : o[9]], buf[o[9] : o[10]],
            buf[o[10] : o[11]], buf[o[11] : o[12]], buf[o[12] : o[13]], buf[o[13] : o[14]])


#: ``_delta(act, n, a, aoff, b, h, hoff, out, ds, doff)``: out[e] = f'(a_t) * (a[aoff + e] + b[e]) and
#: ds[doff + e] += out[e], f' written from h = h[hoff + e] (:func:`fastrnn.cells.rnn.backward_step`'s product).
#:
#: One loop per step for what the general driver does in four (the incoming gradient, the recurrent
#: term, the cell's step, the sum over loss origins): at H = 16 a loop's set-up costs as much as its
#: arithmetic.
_delta = activations.by_activation("_delta", "n, a, aoff, b, h, hoff, out, ds, doff", """
for e in range(n):
    d = (a[aoff + e] + b[e]) * DF(h[hoff + e])
    out[e] = d
    ds[doff + e] += d
""", globals(), "out[e] = f'(a_t) * (a[aoff + e] + b[e]); ds[doff + e] += out[e] (f' from h[hoff + e]).")


@njit(**JIT)
def loss_grad(theta, I, H, O, act, head, K, T, B, scale, ws, grad):
    """Forward, loss and BPTT of one vanilla layer over the time-major data in ``ws``.

    ``ws`` is :func:`workspace`'s tuple, with uT and wT holding the current U and
    W transposed, xt, yt, mt the data and the first B rows of hs the initial
    state (all filled by the caller). Writes the gradient (layout of theta) into
    ``grad``, the predictions into z, and returns the loss. The sums are those of
    :func:`fastrnn._kernels.forward` and :func:`~fastrnn._kernels.backward`,
    term for term and in the same order.
    """
    uT, wT, xt, yt, mt, hs, xu, z, g, gv, ds, dc, dn, dh = ws
    TB = T * B
    BH = B * H
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    # forward: xu = x U^T + b over all rows, then h_t = f(h_{t-1} W^T + xu_t) step by step
    for r in range(TB):
        q = r * H
        for j in range(H):
            xu[q + j] = 0.0
        for p in range(I):
            xp = xt[r * I + p]
            w = p * H
            for j in range(H):
                xu[q + j] += xp * uT[w + j]
        for j in range(H):
            xu[q + j] += theta[ob + j]
    for t in range(T):
        for i in range(B):
            hp = (t * B + i) * H
            q = i * H
            for j in range(H):
                dh[q + j] = 0.0
            for k in range(H):
                hk = hs[hp + k]
                w = k * H
                for j in range(H):
                    dh[q + j] += hk * wT[w + j]
        rnn.forward_step(act, BH, xu, t * BH, dh, hs, (t + 1) * BH)
    for r in range(TB):
        hr = BH + r * H
        for k in range(O):
            acc = 0.0
            for j in range(H):
                acc += hs[hr + j] * theta[oV + k * H + j]
            z[r * O + k] = acc + theta[oc + k]
    loss = head_loss(z, yt, mt, O, head, scale, g)
    # backward: gv = g V, then the delta sweeps (one, or one per loss origin when truncated)
    for r in range(TB):
        q = r * H
        for j in range(H):
            gv[q + j] = 0.0
        for k in range(O):
            gk = g[r * O + k]
            w = oV + k * H
            for j in range(H):
                gv[q + j] += gk * theta[w + j]
    full = K < 0 or K >= T - 1
    for e in range(TB * H):
        ds[e] = 0.0
    # dh_k = [k is an origin] g_k V + [k below the origin] d_{k+1} W; zb stays zero
    zb = dh
    for e in range(BH):
        zb[e] = 0.0
    for origin in range(1 if full else T):
        t0 = T - 1 if full else origin
        k_min = 0 if full else (t0 - K if t0 > K else 0)
        for k in range(t0, k_min - 1, -1):
            rec = zb
            if k < t0:
                # d_{k+1} W into xu, one sequence at a time (W's rows as theta holds them)
                rec = xu
                for i in range(B):
                    q = i * H
                    for j in range(H):
                        xu[q + j] = 0.0
                    for m in range(H):
                        dm = dn[q + m]
                        w = oW + m * H
                        for j in range(H):
                            xu[q + j] += dm * theta[w + j]
            if full or k == t0:
                _delta(act, BH, gv, k * BH, rec, hs, (k + 1) * BH, dc, ds, k * BH)
            else:
                _delta(act, BH, zb, k - k, rec, hs, (k + 1) * BH, dc, ds, k * BH)  # k - k: no literal 0 (see _linalg)
            dc, dn = dn, dc
    # weight gradients from the summed deltas, every entry summed over rows in order
    for j in range(H):
        for p in range(I):
            acc = 0.0
            for r in range(TB):
                acc += ds[r * H + j] * xt[r * I + p]
            grad[j * I + p] = acc
    # dW in dot order: no store in the inner loop (measured 1.4 -> 1.0 us at H = 16, T = 8)
    for j in range(H):
        q = oW + j * H
        for k in range(H):
            acc = 0.0
            for r in range(TB):
                acc += ds[r * H + j] * hs[r * H + k]
            grad[q + k] = acc
    for j in range(H):
        grad[ob + j] = 0.0
    for r in range(TB):
        for j in range(H):
            grad[ob + j] += ds[r * H + j]
    for k in range(O):
        for j in range(H):
            acc = 0.0
            for r in range(TB):
                acc += g[r * O + k] * hs[BH + r * H + j]
            grad[oV + k * H + j] = acc
    for k in range(O):
        acc = 0.0
        for r in range(TB):
            acc += g[r * O + k]
        grad[oc + k] = acc
    return loss


@njit(**JIT)
def _load(theta, I, H, X, Y, M, lo, B, ws):
    """U and W transposed, and sequences lo..lo+B-1 of X, Y, M time-major, into ``ws``."""
    uT, wT, xt, yt, mt = ws[0], ws[1], ws[2], ws[3], ws[4]
    T, O = X.shape[1], Y.shape[2]
    for r in range(H):
        for q in range(I):
            uT[q * H + r] = theta[r * I + q]
    oW = H * I
    for r in range(H):
        for q in range(H):
            wT[q * H + r] = theta[oW + r * H + q]
    for t in range(T):
        for i in range(B):
            r = t * B + i
            for q in range(I):
                xt[r * I + q] = X[lo + i, t, q]
            for q in range(O):
                yt[r * O + q] = Y[lo + i, t, q]
    if M.shape[0] > 0:
        for t in range(T):
            for i in range(B):
                mt[t * B + i] = M[lo + i, t]
    else:
        for r in range(T * B):
            mt[r] = 1.0


@njit(**JIT)
def train_chunk(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets,
                buf, losses, grad_norms, errors):
    """:func:`fastrnn._train_kernel.train_chunk_general` for an :func:`fastrnn.dispatch.small_fits` model: same arguments
    (no ``blas``), same meaning, same numbers."""
    n_iters = losses.shape[0]
    T = X.shape[1]
    P = theta.shape[0]
    I, H, O, act, head = dims[0], dims[1], dims[2], dims[4], dims[5]
    B = batch
    BH = B * H
    grad = buf[:P]
    ws = workspace(buf[P:], T, B, I, H, O)
    yt, mt, hs, z = ws[3], ws[4], ws[5], ws[7]
    for it in range(n_iters):
        if resets.shape[0] == 0 or resets[it] != 0:
            for e in range(BH):
                hstate[e] = 0.0
        lo = it * B
        _load(theta, I, H, X, Y, M, lo, B, ws)
        for e in range(BH):
            hs[e] = hstate[e]
        loss = loss_grad(theta, I, H, O, act, head, K, T, B, 1.0 / B, ws, grad)
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
    return n_iters


@njit(**JIT_PARALLEL)
def train_chunks_many(thetas, dims, Ks, X, Y, M, batch, opts, lrs, hypers, opt_states, step0s, clip_norms, hstates,
                      resets, bufs, n_iters, losses, grad_norms, errors, done):
    """:func:`fastrnn._train_kernel.train_chunks_many` for :func:`fastrnn.dispatch.small_fits` models (no ``blas``)."""
    for m in prange(thetas.shape[0]):
        n = n_iters[m]
        Mm = M[m] if M.shape[0] > 0 else np.zeros((0, 0), thetas.dtype)
        Rm = resets[m] if resets.shape[0] > 0 else np.zeros(0, np.int64)
        done[m] = train_chunk(thetas[m], dims[m], Ks[m], X[m], Y[m], Mm, batch, opts[m], lrs[m], hypers[m],
                              opt_states[m], step0s[m], clip_norms[m], 0.0, hstates[m], Rm, bufs[m], losses[m, :n],
                              grad_norms[m, :n], errors[m, : n * batch])


@njit(**JIT)
def loss_and_grads(theta, dims, K, X, Y, M, h0, grad, h_final, buf):
    """:func:`fastrnn._kernels.loss_and_grads_serial` for an :func:`fastrnn.dispatch.small_fits` model (no ``blas``)."""
    B, T = X.shape[0], X.shape[1]
    I, H, O = dims[0], dims[1], dims[2]
    BH = B * H
    ws = workspace(buf, T, B, I, H, O)
    hs = ws[5]
    _load(theta, I, H, X, Y, M, B - B, B, ws)
    if h0.shape[0] > 0:
        for e in range(BH):
            hs[e] = h0[e]
    else:
        for e in range(BH):
            hs[e] = 0.0
    loss = loss_grad(theta, I, H, O, dims[4], dims[5], K, T, B, 1.0 / B, ws, grad)
    for e in range(BH):
        h_final[e] = hs[T * BH + e]
    return loss


# --------------------------------------------------------------------- the lean kernel
#
# The headline run (binary addition: SGD, no clipping, full BPTT, a sigmoid head) is
# what a newcomer's first command compiles. :func:`train_chunk_sgd` does exactly that
# case and nothing else, in one function: the first run compiles it in a fraction of
# the time :func:`train_chunk` (every optimizer, head, clipping mode and truncation)
# takes, and a later command that needs more compiles that one then. The numbers are
# those of :func:`train_chunk` and of the general kernel, bit for bit: every sum is
# the same terms added in the same order (see each loop).


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


#: ``_activate(act, tmp, hw, a, hs, q)``: hs[q] = f(tmp[hw] + tmp[a]) (rows of 2-D arrays), as
#: :func:`fastrnn.cells.rnn.forward_step`.
#:
#: A function of its own: inlined into the big training loop, the same loop was left scalar by LLVM
#: (measured 9.5 ns an element of sigmoid there, against about 3 when vectorised).
_activate = activations.by_activation("_activate", "tmp, hw, a, hs, q", """
for j in range(hs.shape[1]):
    hs[q, j] = F(tmp[hw, j] + tmp[a, j])
""", globals(), "hs[q] = f(tmp[hw] + tmp[a]) (rows of 2-D arrays).")

#: ``_derive(act, tmp, gv, dc, hs, q)``: tmp[dc] = tmp[gv] * f'(a), f' written from h = hs[q] (rows).
_derive = activations.by_activation("_derive", "tmp, gv, dc, hs, q", """
for j in range(hs.shape[1]):
    tmp[dc, j] = tmp[gv, j] * DF(hs[q, j])
""", globals(), "tmp[dc] = tmp[gv] * f'(a), f' from h = hs[q] (rows of 2-D arrays).")


def lean_views(theta, buf, T, B, I, H, O):
    """The arrays :func:`train_chunk_lean` works in, as views of ``theta`` and of the scratch ``buf``
    (Python, once per run: see :class:`LeanCall`): ``grad`` (n_params), ``mt`` (T*B) and the tuple of
    2-D views (uT (I, H), wT (H, H), x (T*B, I), y (T*B, O), hs ((T+1)*B, H), g (T*B, O),
    ds (T*B, H), tmp (4*B, H), W (H, H), V (O, H), gU (H, I), gW (H, H), gV (O, H)).

    The layout :func:`train_chunk_sgd` carves inside numba; made here so that the kernel a
    headline run loads contains no ``reshape`` (whose compiled code makes numba import
    ``numba.np.arrayobj`` when the cached kernel loads: about 23 ms of a warm command)."""
    P = theta.shape[0]
    TB, BH = T * B, B * H
    oW, ob = H * I, H * I + H * H
    oV = ob + H
    oc = oV + O * H
    grad = buf[:P]
    sizes = ((I, H), (H, H), (TB, I), (TB, O), None, ((T + 1) * B, H), (TB, O), (TB, H), (4 * B, H))
    parts, o = [], P
    for shape in sizes:
        n = TB if shape is None else shape[0] * shape[1]
        parts.append(buf[o : o + n] if shape is None else buf[o : o + n].reshape(shape))
        o += n
    uT, wT, x, y, mt, hs, g, ds, tmp = parts
    views = (uT, wT, x, y, hs, g, ds, tmp, theta[oW:ob].reshape(H, H), theta[oV:oc].reshape(O, H),
             grad[:oW].reshape(H, I), grad[oW:ob].reshape(H, H), grad[oV:oc].reshape(O, H))
    return grad, mt, views


class LeanCall:
    """Calls of :func:`train_chunk_lean` with :func:`train_chunk_sgd`'s arguments, the views of
    :func:`lean_views` made once for the last ``theta`` and ``buf`` seen, not once per chunk.

    The views and what they were made for are one tuple, read once per call, so that calls
    from several threads at most rebuild them, never use another call's."""

    __slots__ = ("last",)

    def __init__(self):
        self.last = None

    def __call__(self, theta, dims, X, Y, M, batch, lr, hstate, resets, buf, losses, grad_norms, errors):
        T = X.shape[1]
        last = self.last
        if (last is None or last[0] is not theta or last[1] is not buf or last[2] != T or last[3] != batch
                or last[4] != dims.tobytes()):
            last = (theta, buf, T, batch, dims.tobytes()) + lean_views(theta, buf, T, batch, int(dims[0]), int(dims[1]),
                                                                      int(dims[2]))
            self.last = last
        return train_chunk_lean(theta, dims, X, Y, M, batch, lr, hstate, resets, last[5], last[6], last[7], losses,
                                grad_norms, errors)


@njit(**JIT)
def train_chunk_sgd(theta, dims, X, Y, M, batch, lr, hstate, resets, buf, losses, grad_norms, errors):
    """:func:`train_chunk` for a ``small-sgd`` call (:func:`fastrnn.dispatch.choose_kernel`): plain SGD (``theta -= lr * grad``), no
    clipping, full BPTT, the sigmoid head with cross-entropy; any activation, batch,
    mask and carried state. Same meaning of the arguments, same numbers.

    Carves :func:`lean_views`'s arrays out of ``buf`` and ``theta`` (inside numba, for
    the many-model kernel) and runs :func:`train_chunk_lean`; a training run calls
    that one directly with views made in Python (:class:`LeanCall`).
    """
    T = X.shape[1]
    P = theta.shape[0]
    I, H, O = dims[0], dims[1], dims[2]
    B = batch
    BH = B * H
    TB = T * B
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    grad = buf[:P]
    o = P
    uT = buf[o : o + I * H].reshape(I, H)
    o += I * H
    wT = buf[o : o + H * H].reshape(H, H)
    o += H * H
    x = buf[o : o + TB * I].reshape(TB, I)
    o += TB * I
    y = buf[o : o + TB * O].reshape(TB, O)
    o += TB * O
    mt = buf[o : o + TB]
    o += TB
    hs = buf[o : o + (T + 1) * BH].reshape((T + 1) * B, H)
    o += (T + 1) * BH
    g = buf[o : o + TB * O].reshape(TB, O)
    o += TB * O
    ds = buf[o : o + TB * H].reshape(TB, H)
    o += TB * H
    tmp = buf[o : o + 4 * BH].reshape(4 * B, H)  # rows: a (the input part), hw / g V, d, d of the step above
    views = (uT, wT, x, y, hs, g, ds, tmp, theta[oW:ob].reshape(H, H), theta[oV:oc].reshape(O, H),
             grad[:oW].reshape(H, I), grad[oW:ob].reshape(H, H), grad[oV:oc].reshape(O, H))
    return train_chunk_lean(theta, dims, X, Y, M, batch, lr, hstate, resets, grad, mt, views, losses, grad_norms,
                            errors)


@njit(**JIT)
def train_chunk_lean(theta, dims, X, Y, M, batch, lr, hstate, resets, grad, mt, views, losses, grad_norms, errors):
    """The work of :func:`train_chunk_sgd`, on the arrays of :func:`lean_views` (``grad``,
    ``mt`` and the tuple ``views``) instead of one scratch array.

    Matrices are 2-D views made once per run and indexed by row: an index computed
    as ``offset + j`` could be negative as far as the compiler knows, and the
    wraparound check that numba then emits keeps a loop scalar; a view per row
    instead costs two atomic reference-count updates. Per step the input
    projection, the recurrence, the activation, the logits, the loss and the error
    count run together; per backward step g V, d W and f' together. No ``reshape``
    and no allocation in here (see :func:`lean_views`).
    """
    n_iters = losses.shape[0]
    T = X.shape[1]
    P = theta.shape[0]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    B = batch
    BH = B * H
    TB = T * B
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    scale = 1.0 / B
    uT, wT, x, y, hs, g, ds, tmp, W, V, gU, gW, gV = views
    for it in range(n_iters):
        for q in range(I):  # the loops' layout of U and W, from this iteration's theta
            for j in range(H):
                uT[q, j] = theta[j * I + q]
        for k in range(H):
            for j in range(H):
                wT[k, j] = W[j, k]
        lo = it * B
        if resets.shape[0] == 0 or resets[it] != 0:
            for e in range(BH):
                hstate[e] = 0.0
        for i in range(B):
            for j in range(H):
                hs[i, j] = hstate[i * H + j]
            errors[lo + i] = 0
        for t in range(T):
            for i in range(B):
                r = t * B + i
                for q in range(I):
                    x[r, q] = X[lo + i, t, q]
                for q in range(O):
                    y[r, q] = Y[lo + i, t, q]
                mt[r] = M[lo + i, t] if M.shape[0] > 0 else 1.0
        # forward, the loss and the error counts, step by step: the sums of _kernels.forward
        # (x U^T and h W^T each from 0.0 over p, k ascending, b added to the first, then the
        # two), of head_loss's sigmoid branch (rows ascending) and of count_errors
        loss = 0.0
        for t in range(T):
            for i in range(B):
                r = t * B + i
                a = i
                hw = B + i
                _vecmat(x, r, uT, I, tmp, a)  # x U^T, then b
                for j in range(H):
                    tmp[a, j] += theta[ob + j]
                _vecmat(hs, r, wT, H, tmp, hw)
                q = r + B
                _activate(act, tmp, hw, a, hs, q)
                for k in range(O):
                    acc = 0.0
                    for j in range(H):
                        acc += hs[q, j] * V[k, j]
                    g[r, k] = acc + theta[oc + k]  # the logit, for now
        # the loss after the recurrence, rows in the same order: its calls (log1p) kept out of the chain
        for t in range(T):
            for i in range(B):
                r = t * B + i
                m = mt[r]
                row = 0.0
                wrong = 0
                for k in range(O):
                    zk = g[r, k]
                    yk = y[r, k]
                    row += (zk if zk > 0.0 else 0.0) - yk * zk + math.log1p(exp(-abs(zk)))
                    pk = sigmoid(zk)
                    g[r, k] = scale * m * (pk - yk)
                    if (pk > 0.5) != (yk > 0.5):
                        wrong = 1
                if m != 0.0:
                    loss += scale * m * row
                    errors[lo + i] += wrong
        if not np.isfinite(loss):
            return it
        # backward, one sweep: dh_k = g_k V + d_{k+1} W (each from 0.0, g V first), d_k = f' dh_k
        for k in range(T - 1, -1, -1):
            for i in range(B):
                r = k * B + i
                gv = B + i
                dc = 2 * B + i
                dn = 3 * B + i
                for j in range(H):
                    tmp[gv, j] = 0.0
                for q in range(O):
                    gq = g[r, q]
                    for j in range(H):
                        tmp[gv, j] += gq * V[q, j]
                if k < T - 1:
                    _vecmat(tmp, dn, W, H, tmp, i)  # d_{k+1} W
                    for j in range(H):
                        tmp[gv, j] = tmp[gv, j] + tmp[i, j]
                _derive(act, tmp, gv, dc, hs, r + B)
                for j in range(H):
                    ds[r, j] = 0.0 + tmp[dc, j]
                    tmp[dn, j] = tmp[dc, j]
        # weight gradients, every entry summed over rows r ascending from 0.0 (_linalg's orders)
        for j in range(H):
            for p in range(I):
                acc = 0.0
                for r in range(TB):
                    acc += ds[r, j] * x[r, p]
                gU[j, p] = acc
        for j in range(H):
            grad[ob + j] = 0.0
            for k in range(H):
                gW[j, k] = 0.0
        for k in range(O):
            grad[oc + k] = 0.0
            for j in range(H):
                gV[k, j] = 0.0
        for r in range(TB):
            for j in range(H):
                grad[ob + j] += ds[r, j]
            for j in range(H):
                dj = ds[r, j]
                for k in range(H):
                    gW[j, k] += dj * hs[r, k]
            for k in range(O):
                gk = g[r, k]
                grad[oc + k] += gk
                for j in range(H):
                    gV[k, j] += gk * hs[B + r, j]
        norm = global_norm(grad)
        if not np.isfinite(norm):
            return it
        losses[it] = loss
        grad_norms[it] = norm
        for i in range(B):
            for j in range(H):
                hstate[i * H + j] = hs[T * B + i, j]
        for e in range(P):
            theta[e] -= lr * grad[e]
    return n_iters


@njit(**JIT_PARALLEL)
def train_chunks_many_sgd(thetas, dims, X, Y, M, batch, lrs, hstates, resets, bufs, n_iters, losses, grad_norms, errors,
                          done):
    """:func:`train_chunks_many` for models that are all ``small-sgd`` (:func:`fastrnn.dispatch.choose_kernel`): each on :func:`train_chunk_sgd`."""
    for m in prange(thetas.shape[0]):
        n = n_iters[m]
        Mm = M[m] if M.shape[0] > 0 else np.zeros((0, 0), thetas.dtype)
        Rm = resets[m] if resets.shape[0] > 0 else np.zeros(0, np.int64)
        done[m] = train_chunk_sgd(thetas[m], dims[m], X[m], Y[m], Mm, batch, lrs[m], hstates[m], Rm, bufs[m],
                                  losses[m, :n], grad_norms[m, :n], errors[m, : n * batch])


#: The training loop's way into :func:`train_chunk_lean` (:func:`fastrnn.engine.train_chunk`).
lean_call = LeanCall()


# --------------------------------------------------------------------- many models in the lanes of a vector
#
# At H = 16 one model's step is a chain of short dependent loops: the core waits on
# latencies more than it computes. :func:`train_lanes_sgd` trains LANES models of one
# shape at once, entry e of model l stored at [..., e, l], so that every loop of
# :func:`train_chunk_sgd` becomes the same loop over vectors of LANES models: each lane
# runs exactly the scalar operations of :func:`train_chunk_sgd`, in the same order (every
# sum from 0.0 over the same terms left to right), so every model's numbers are those of
# a run of its own, bit for bit (float64 only: in float32 the lean kernel mixes float64
# scalars and float32 arrays, which this layout does not copy).

#: Models per lane group (at most): the inner loops run over the lanes, a run-time count, so
#: that LLVM's loop vectorizer takes them (4 float64 a vector with AVX2). Measured on a 16x16
#: product: 68 ns a model at 16 lanes, 105 at 8, 305 at 4 (a 4-long loop is all set-up),
#: against 108 ns for one model on its own; the whole kernel, one thread, thread CPU time per
#: model-iteration: 4.9 us at 8 lanes, 2.9 at 16, 2.6 at 32, 2.5 at 64 (the lean kernel 3.7).
LANES = 32


@njit(**JIT)
def _vecmat_lanes(A, ar, M, n, out, orow):
    """out[orow, j, l] = sum_k A[ar, k, l] M[k, j, l], from 0.0 over k ascending, four k a pass
    (the sums of :func:`_vecmat`, lane by lane)."""
    m = out.shape[1]
    nl = out.shape[2]
    for j in range(m):
        for l in range(nl):
            out[orow, j, l] = 0.0
    k = n - n
    while k + 4 <= n:
        for j in range(m):
            for l in range(nl):
                out[orow, j, l] = ((((out[orow, j, l] + A[ar, k, l] * M[k, j, l]) + A[ar, k + 1, l] * M[k + 1, j, l])
                                    + A[ar, k + 2, l] * M[k + 2, j, l]) + A[ar, k + 3, l] * M[k + 3, j, l])
        k += 4
    while k < n:
        for j in range(m):
            for l in range(nl):
                out[orow, j, l] += A[ar, k, l] * M[k, j, l]
        k += 1


#: ``_activate_lanes(act, tmp, hw, a, hs, q)``: :func:`_activate` lane by lane.
_activate_lanes = activations.by_activation("_activate_lanes", "tmp, hw, a, hs, q", """
nl = hs.shape[2]
for j in range(hs.shape[1]):
    for l in range(nl):
        hs[q, j, l] = F(tmp[hw, j, l] + tmp[a, j, l])
""", globals(), "_activate lane by lane.")

#: ``_derive_lanes(act, tmp, gv, dc, hs, q)``: :func:`_derive` lane by lane.
_derive_lanes = activations.by_activation("_derive_lanes", "tmp, gv, dc, hs, q", """
nl = hs.shape[2]
for j in range(hs.shape[1]):
    for l in range(nl):
        tmp[dc, j, l] = tmp[gv, j, l] * DF(hs[q, j, l])
""", globals(), "_derive lane by lane.")


@njit(**JIT)
def _norm_lanes(grad, s, one, norms):
    """norms[l] = :func:`fastrnn.optim.global_norm` of lane l of grad (P, LANES): the same four
    partial sums (``s``, (4, LANES) scratch); the rare scaled case on a copy of the lane (``one``)."""
    n = grad.shape[0]
    nl = grad.shape[1]
    for q in range(4):
        for l in range(nl):
            s[q, l] = 0.0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        for l in range(nl):
            s[0, l] += grad[i, l] * grad[i, l]
            s[1, l] += grad[i + 1, l] * grad[i + 1, l]
            s[2, l] += grad[i + 2, l] * grad[i + 2, l]
            s[3, l] += grad[i + 3, l] * grad[i + 3, l]
    for i in range(n4, n):
        for l in range(nl):
            s[0, l] += grad[i, l] * grad[i, l]
    for l in range(nl):
        sq = (s[0, l] + s[1, l]) + (s[2, l] + s[3, l])
        if sq != sq:
            norms[l] = sq
        elif sq < math.inf and sq > 1e-290:
            norms[l] = math.sqrt(sq)
        else:
            for i in range(n):
                one[i] = grad[i, l]
            norms[l] = global_norm(one)


@njit(**JIT)
def train_lanes_sgd(thetas, dims, X, Y, M, batch, lrs, hstates, resets, lane_models, n_iters, losses, grad_norms,
                    errors, done):
    """:func:`train_chunk_sgd` for the LANES models ``lane_models`` of the stacked arrays at once
    (float64): model ``lane_models[l]`` trains ``n_iters[lane_models[l]]`` iterations (a lane
    whose count is 0, or that repeats an earlier lane's model, only computes); ``done`` as in
    :func:`train_chunks_many`. Each lane stops on its own at a non-finite loss or norm."""
    T = X.shape[2]
    P = thetas.shape[1]
    I, H, O, act = dims[lane_models[0], 0], dims[lane_models[0], 1], dims[lane_models[0], 2], dims[lane_models[0], 4]
    B = batch
    TB = T * B
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    scale = 1.0 / B
    L = lane_models.shape[0]
    th = np.empty((P, L))
    grad = np.empty((P, L))
    uT = np.empty((I, H, L))
    wT = np.empty((H, H, L))
    x = np.empty((TB, I, L))
    y = np.empty((TB, O, L))
    mt = np.empty((TB, L))
    hs = np.empty(((T + 1) * B, H, L))
    g = np.empty((TB, O, L))
    ds = np.empty((TB, H, L))
    tmp = np.empty((4 * B, H, L))
    lr = np.empty(L)
    one = np.empty(P)
    sums = np.empty((4, L))
    norm = np.empty(L)
    loss = np.empty(L)
    row = np.empty(L)
    part = np.empty(L)
    ez = np.empty(L)
    wrong = np.zeros(L, np.int64)
    live = np.zeros(L, np.bool_)
    n_lane = np.zeros(L, np.int64)
    nmax = 0
    for l in range(L):
        m = lane_models[l]
        first = True
        for k in range(l):
            if lane_models[k] == m:
                first = False
        n_lane[l] = n_iters[m] if first else 0
        nmax = max(nmax, n_lane[l])
        live[l] = n_lane[l] > 0
        lr[l] = lrs[m]
        for e in range(P):
            th[e, l] = thetas[m, e]
        if first:
            done[m] = n_lane[l]
    W = th[oW:ob].reshape(H, H, L)
    V = th[oV:oc].reshape(O, H, L)
    gU = grad[:oW].reshape(H, I, L)
    gW = grad[oW:ob].reshape(H, H, L)
    gV = grad[oV:oc].reshape(O, H, L)
    for it in range(nmax):
        for q in range(I):  # the loops' layout of U and W, from this iteration's weights
            for j in range(H):
                for l in range(L):
                    uT[q, j, l] = th[j * I + q, l]
        for k in range(H):
            for j in range(H):
                for l in range(L):
                    wT[k, j, l] = W[j, k, l]
        lo = it * B
        for l in range(L):
            live[l] = live[l] and it < n_lane[l]
        for l in range(L):
            m = lane_models[l]
            if live[l] and (resets.shape[0] == 0 or resets[m, it] != 0):
                for e in range(B * H):
                    hstates[m, e] = 0.0
            for i in range(B):
                for j in range(H):
                    hs[i, j, l] = hstates[m, i * H + j]
            for t in range(T):
                for i in range(B):
                    r = t * B + i
                    for q in range(I):
                        x[r, q, l] = X[m, lo + i, t, q]
                    for q in range(O):
                        y[r, q, l] = Y[m, lo + i, t, q]
                    mt[r, l] = M[m, lo + i, t] if M.shape[0] > 0 else 1.0
        for t in range(T):
            for i in range(B):
                r = t * B + i
                a = i
                hw = B + i
                _vecmat_lanes(x, r, uT, I, tmp, a)
                for j in range(H):
                    for l in range(L):
                        tmp[a, j, l] += th[ob + j, l]
                _vecmat_lanes(hs, r, wT, H, tmp, hw)
                q = r + B
                _activate_lanes(act, tmp, hw, a, hs, q)
                for k in range(O):
                    for l in range(L):
                        row[l] = 0.0
                    for j in range(H):
                        for l in range(L):
                            row[l] += hs[q, j, l] * V[k, j, l]
                    for l in range(L):
                        g[r, k, l] = row[l] + th[oc + k, l]
        for l in range(L):
            loss[l] = 0.0
        for i in range(B):
            for l in range(L):
                if live[l]:
                    errors[lane_models[l], lo + i] = 0
        for t in range(T):
            for i in range(B):
                r = t * B + i
                for l in range(L):
                    row[l] = 0.0
                    wrong[l] = 0
                for k in range(O):
                    # the vectorisable part first (exp, sigmoid), then libm's log1p lane by lane
                    for l in range(L):
                        zk = g[r, k, l]
                        yk = y[r, k, l]
                        part[l] = (zk if zk > 0.0 else 0.0) - yk * zk
                        ez[l] = exp(-abs(zk))
                        pk = sigmoid(zk)
                        g[r, k, l] = scale * mt[r, l] * (pk - yk)
                        wrong[l] = 1 if (pk > 0.5) != (yk > 0.5) else wrong[l]
                    for l in range(L):
                        row[l] += part[l] + math.log1p(ez[l])
                for l in range(L):
                    if mt[r, l] != 0.0:
                        loss[l] += scale * mt[r, l] * row[l]
                        if live[l]:
                            errors[lane_models[l], lo + i] += wrong[l]
        for l in range(L):
            if live[l] and not np.isfinite(loss[l]):
                live[l] = False
                done[lane_models[l]] = it
        for k in range(T - 1, -1, -1):
            for i in range(B):
                r = k * B + i
                gv = B + i
                dc = 2 * B + i
                dn = 3 * B + i
                for j in range(H):
                    for l in range(L):
                        tmp[gv, j, l] = 0.0
                for q in range(O):
                    for j in range(H):
                        for l in range(L):
                            tmp[gv, j, l] += g[r, q, l] * V[q, j, l]
                if k < T - 1:
                    _vecmat_lanes(tmp, dn, W, H, tmp, i)
                    for j in range(H):
                        for l in range(L):
                            tmp[gv, j, l] = tmp[gv, j, l] + tmp[i, j, l]
                _derive_lanes(act, tmp, gv, dc, hs, r + B)
                for j in range(H):
                    for l in range(L):
                        ds[r, j, l] = 0.0 + tmp[dc, j, l]
                        tmp[dn, j, l] = tmp[dc, j, l]
        for j in range(H):
            for p in range(I):
                for l in range(L):
                    row[l] = 0.0
                for r in range(TB):
                    for l in range(L):
                        row[l] += ds[r, j, l] * x[r, p, l]
                for l in range(L):
                    gU[j, p, l] = row[l]
        for j in range(H):
            for l in range(L):
                grad[ob + j, l] = 0.0
            for k in range(H):
                for l in range(L):
                    gW[j, k, l] = 0.0
        for k in range(O):
            for l in range(L):
                grad[oc + k, l] = 0.0
            for j in range(H):
                for l in range(L):
                    gV[k, j, l] = 0.0
        for r in range(TB):
            for j in range(H):
                for l in range(L):
                    grad[ob + j, l] += ds[r, j, l]
            for j in range(H):
                for k in range(H):
                    for l in range(L):
                        gW[j, k, l] += ds[r, j, l] * hs[r, k, l]
            for k in range(O):
                for l in range(L):
                    grad[oc + k, l] += g[r, k, l]
                for j in range(H):
                    for l in range(L):
                        gV[k, j, l] += g[r, k, l] * hs[B + r, j, l]
        _norm_lanes(grad, sums, one, norm)
        for l in range(L):
            if live[l] and not np.isfinite(norm[l]):
                live[l] = False
                done[lane_models[l]] = it
        for l in range(L):
            if live[l]:
                m = lane_models[l]
                losses[m, it] = loss[l]
                grad_norms[m, it] = norm[l]
                for i in range(B):
                    for j in range(H):
                        hstates[m, i * H + j] = hs[T * B + i, j, l]
        alive = True
        for l in range(L):
            alive = alive and live[l]
        if alive:
            for e in range(P):
                for l in range(L):
                    th[e, l] -= lr[l] * grad[e, l]
        else:
            for e in range(P):
                for l in range(L):
                    if live[l]:
                        th[e, l] -= lr[l] * grad[e, l]
    for l in range(L):
        if n_lane[l] > 0:
            m = lane_models[l]
            for e in range(P):
                thetas[m, e] = th[e, l]


_POOL = []  # the worker threads of train_chunks_many_lanes, made on first use


def train_chunks_many_lanes(thetas, dims, X, Y, M, batch, lrs, hstates, resets, n_iters, losses, grad_norms, errors,
                            done, threads):
    """:func:`train_chunks_many_sgd` with LANES models a lane group (:func:`train_lanes_sgd`), the
    groups spread over ``threads`` Python threads (the kernel releases the GIL); float64, every
    model of one shape (:func:`fastrnn.dispatch.lanes_fit`).

    Threads, not a prange: the parallel (parfor) wrapper took longer to compile than the
    kernel itself (17 against 10 s, cold, on the loaded 2-core machine)."""
    from concurrent.futures import ThreadPoolExecutor

    nm = thetas.shape[0]
    count = max(-(-nm // LANES), min(threads, -(-nm // 16)))  # at most LANES a group; a group a thread where 16 fill one
    groups = np.array_split(np.arange(nm), count)

    def one(lane_models):
        train_lanes_sgd(thetas, dims, X, Y, M, batch, lrs, hstates, resets, lane_models, n_iters, losses, grad_norms,
                        errors, done)

    if threads <= 1 or len(groups) == 1:
        for g in groups:
            one(g)
        return
    if not _POOL or _POOL[0][0] != threads:
        _POOL[:] = [(threads, ThreadPoolExecutor(threads, thread_name_prefix="fastrnn-lanes"))]
    for f in [_POOL[0][1].submit(one, g) for g in groups]:
        f.result()


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
