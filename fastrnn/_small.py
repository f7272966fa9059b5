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

One model's training also takes the lean kernel past that size, up to ``dispatch.LEAN_MAX_HIDDEN``
units and ``dispatch.LEAN_MAX_BATCH_WIDTH`` for batch x widest layer (:func:`fastrnn.dispatch.lean_fits`),
where it is still the faster: there the general driver hands its time-batched products to BLAS, so
the two agree to rounding, not to the bit (tests/test_small.py checks both against
tests/reference.py, and each other at the twins' tolerance).

Why the first version of this path gained nothing end to end: it kept every
buffer as offsets into one array, and a loop that reads one part of an array
and writes another runs without vectorisation (measured 6x slower for a 16x16
product). Separate arrays (:func:`lean_views`), fused per-step loops and a
four-way norm (fastrnn.optim.global_norm; one running sum of 321 squares was
a fifth of the iteration) made the difference.

One kernel source. The lean kernel (:func:`_lean`, compiled per optimizer, head and
truncation by :func:`lean_kernel`) trains every small model a run trains: every
optimizer of the registry (its own update, :data:`fastrnn.optim.UPDATE_OF`),
clipping by norm and by value, full or truncated BPTT, every head and activation;
a run compiles only the combination it uses (the headline's, SGD with the sigmoid
head and full BPTT, in about 4 s), and numba caches each under its own name.
:func:`train_chunk` is the same source with every optimizer's update, chosen at run
time, for sweeps of models with mixed settings (:func:`train_chunks_many`);
:func:`loss_and_grads` is one iteration of it without an update
(:data:`loss_and_grads_lean`). What made the lean kernel fast: 2-D arrays indexed by row
(a flat ``offset + j`` index may be negative as far as numba knows, and its
wraparound check keeps a loop scalar; a view per row costs two atomic
reference-count updates), the activation and the products in small functions
of their own (inlined into the big loop, LLVM had left the sigmoid scalar: 9.5
against 3 ns an element), the loss (a libm log1p call) after the recurrence
instead of inside each step, and for truncated BPTT one backward sweep whose
open loss origins' products with W run interleaved.

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
least :func:`lean_scratch_size`, after the gradient for the training kernels); nothing is allocated per iteration.
"""

import math

import numpy as np
from numba import njit, prange

from . import _generate, activations
from ._cache import key_dispatchers
from ._kernels import HEAD_LINEAR, HEAD_NAMES, HEAD_SIGMOID, HEAD_SOFTMAX
from ._mathfn import exp, sigmoid
from .config import JIT, JIT_PARALLEL
from .optim import NAME_OF, SGD, UPDATE_OF, apply_update, clip_grads, global_norm


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


@njit(**JIT)
def _vecmat_rows(A, ar, stride, count, M, n, out, orow):
    """:func:`_vecmat` of ``count`` rows at once: out[orow + c*stride] = A[ar + c*stride, :n] @ M[:n]
    for c < count, each entry the same sum (from 0.0 over k ascending, four k a pass); the rows
    interleaved pass by pass, so that their chains of adds overlap."""
    m = out.shape[1]
    for c in range(count):
        for j in range(m):
            out[orow + c * stride, j] = 0.0
    k = n - n
    while k + 4 <= n:
        for c in range(count):
            a = ar + c * stride
            o = orow + c * stride
            v0, v1, v2, v3 = A[a, k], A[a, k + 1], A[a, k + 2], A[a, k + 3]
            for j in range(m):
                out[o, j] = (((out[o, j] + v0 * M[k, j]) + v1 * M[k + 1, j]) + v2 * M[k + 2, j]) + v3 * M[k + 3, j]
        k += 4
    while k < n:
        for c in range(count):
            vk = A[ar + c * stride, k]
            o = orow + c * stride
            for j in range(m):
                out[o, j] += vk * M[k, j]
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
#:
#: Inlined by numba into the lean kernel's backward loop (``inline="always"``), where the same loops
#: were written before they came from the registry: as a call of its own the lean kernel measured
#: about 5% slower (2.18 against 2.08 us an iteration at the binary shape, thread CPU time).
_derive = activations.by_activation("_derive", "tmp, gv, dc, hs, q", """
for j in range(hs.shape[1]):
    tmp[dc, j] = tmp[gv, j] * DF(hs[q, j])
""", globals(), "tmp[dc] = tmp[gv] * f'(a), f' from h = hs[q] (rows of 2-D arrays).",
                                  jit=dict(JIT, inline="always"))


#: ``_slope(act, hs, q, out, orow)``: out[orow] = f'(a), written from h = hs[q] (rows of 2-D arrays): the
#: factor every loss origin's delta at one step of a truncated sweep shares.
_slope = activations.by_activation("_slope", "hs, q, out, orow", """
for j in range(hs.shape[1]):
    out[orow, j] = DF(hs[q, j])
""", globals(), "out[orow] = f'(a), f' from h = hs[q] (rows of 2-D arrays).")


def lean_shapes(T, B, I, H, O):
    """The scratch arrays of the lean kernel, in the order :func:`lean_views` carves them:
    uT (I, H), wT (H, H), x (T*B, I), y (T*B, O), mt (T*B), hs ((T+1)*B, H), g (T*B, O),
    ds (T*B, H), tmp (4*B, H), z (T*B, O) and win (2*T*B, H) (a truncated sweep's deltas of each
    loss origin, row t0*B + i, and their products with W, row (T + t0)*B + i)."""
    TB = T * B
    return ((I, H), (H, H), (TB, I), (TB, O), (TB,), ((T + 1) * B, H), (TB, O), (TB, H), (4 * B, H), (TB, O),
            (2 * TB, H))


def lean_scratch_size(T, B, I, H, O):
    """Entries of ``buf`` the lean kernel needs after the gradient (:func:`lean_views`)."""
    return sum(int(np.prod(shape)) for shape in lean_shapes(T, B, I, H, O))


def lean_views(theta, buf, T, B, I, H, O):
    """The arrays the lean kernel (:func:`lean_kernel`) works in, as views of ``theta`` and of the
    scratch ``buf`` (Python, once per run: see :class:`LeanCall`): ``grad`` (n_params), ``mt`` (T*B)
    and the tuple of 2-D views (uT, wT, x, y, hs, g, ds, tmp, z, win of :func:`lean_shapes`, then
    W (H, H), V (O, H), gU (H, I), gW (H, H), gV (O, H)).

    Made here, not inside numba, so that the kernel a headline run loads contains no ``reshape``
    (whose compiled code makes numba import ``numba.np.arrayobj`` when the cached kernel loads:
    about 23 ms of a warm command)."""
    P = theta.shape[0]
    oW, ob = H * I, H * I + H * H
    oV = ob + H
    oc = oV + O * H
    grad = buf[:P]
    parts, o = [], P
    for shape in lean_shapes(T, B, I, H, O):
        n = int(np.prod(shape))
        parts.append(buf[o : o + n].reshape(shape))
        o += n
    uT, wT, x, y, mt, hs, g, ds, tmp, z, win = parts
    views = (uT, wT, x, y, hs, g, ds, tmp, z, win, theta[oW:ob].reshape(H, H), theta[oV:oc].reshape(O, H),
             grad[:oW].reshape(H, I), grad[oW:ob].reshape(H, H), grad[oV:oc].reshape(O, H))
    return grad, mt, views


class LeanCall:
    """Calls of the lean kernel with :func:`train_chunk`'s arguments: the kernel specialised for the
    call's optimizer, head and truncation (:func:`lean_kernel`), on the views of :func:`lean_views`
    made once for the last ``theta`` and ``buf`` seen, not once per chunk.

    The views and what they were made for are one tuple, read once per call, so that calls
    from several threads at most rebuild them, never use another call's."""

    __slots__ = ("last",)

    def __init__(self):
        self.last = None

    def __call__(self, theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate,
                 resets, buf, losses, grad_norms, errors):
        T = X.shape[1]
        last = self.last
        if (last is None or last[0] is not theta or last[1] is not buf or last[2] != T or last[3] != batch
                or last[4] != dims.tobytes()):
            last = (theta, buf, T, batch, dims.tobytes()) + lean_views(theta, buf, T, batch, int(dims[0]), int(dims[1]),
                                                                      int(dims[2]))
            self.last = last
        kernel = lean_kernel(int(opt), int(dims[5]), 0 <= K < T - 1)
        return kernel(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate,
                      resets, last[5], last[6], last[7], losses, grad_norms, errors)


#: What :func:`_lean` reads as constants, bound by :func:`lean_kernel`: the optimizer's update, and the
#: head's code and whether BPTT is truncated (1) or not (0); -1: read from the arguments (these values).
_UPDATE, _HEAD, _TRUNC = apply_update, -1, -1


def _lean(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets, grad,
          mt, views, losses, grad_norms, errors):
    """The lean kernel's source: :func:`train_chunk`'s training on the arrays of :func:`lean_views`
    (``grad``, ``mt`` and the tuple ``views``) instead of one scratch array. Never called as it
    is: :func:`lean_kernel` compiles it with ``_UPDATE``, ``_HEAD`` and ``_TRUNC`` bound in its
    globals, once per optimizer (its :data:`fastrnn.optim.UPDATE_OF`, so that only its update is
    compiled), head and truncation; :data:`train_chunk_lean_any` with every optimizer's update
    (:func:`fastrnn.optim.apply_update`) and the head and truncation read from the arguments, for
    :func:`train_chunk`. One iteration's work is written out in this one function: taking
    the arrays out of the tuple once, not once an iteration in a callee, saves two
    reference-count updates an array an iteration. No ``reshape`` and no allocation in here
    (see :func:`lean_views`).
    """
    n_iters = losses.shape[0]
    T = X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    B = batch
    BH = B * H
    TB = T * B
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    scale = 1.0 / B
    uT, wT, x, y, hs, g, ds, tmp, z, win, W, V, gU, gW, gV = views
    head = dims[5] if _HEAD < 0 else _HEAD  # a constant where lean_kernel bound one
    trunc = (K >= 0 and K < T - 1) if _TRUNC < 0 else _TRUNC == 1
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
        # forward, step by step: the sums of _kernels.forward (x U^T and h W^T each from 0.0 over
        # p, k ascending, b added to the first, then the two)
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
                    z[r, k] = acc + theta[oc + k]
        # the loss, g = dL/dz and the error counts after the recurrence, rows in order: the sums of
        # _kernels.head_loss and the counts of _train_kernel.count_errors (its calls, log1p, kept out
        # of the recurrence's chain)
        loss = 0.0
        for t in range(T):
            for i in range(B):
                r = t * B + i
                m = mt[r]
                row = 0.0
                wrong = 0
                if head == HEAD_SIGMOID:
                    for k in range(O):
                        zk = z[r, k]
                        yk = y[r, k]
                        row += (zk if zk > 0.0 else 0.0) - yk * zk + math.log1p(exp(-abs(zk)))
                        pk = sigmoid(zk)
                        g[r, k] = scale * m * (pk - yk)
                        if (pk > 0.5) != (yk > 0.5):
                            wrong = 1
                elif head == HEAD_SOFTMAX:
                    zmax = z[r, 0]
                    for k in range(1, O):
                        zmax = z[r, k] if z[r, k] > zmax else zmax
                    for k in range(O):
                        g[r, k] = exp(z[r, k] - zmax)
                    s = 0.0
                    for k in range(O):
                        s += g[r, k]
                    log_s = math.log(s)
                    for k in range(O):
                        row -= y[r, k] * (z[r, k] - zmax - log_s)
                    for k in range(O):
                        p = g[r, k] / s
                        z[r, k] = p
                        g[r, k] = scale * m * (p - y[r, k])
                    kp = 0
                    ky = 0
                    for k in range(1, O):
                        if z[r, k] > z[r, kp]:
                            kp = k
                        if y[r, k] > y[r, ky]:
                            ky = k
                    wrong = 1 if kp != ky else 0
                elif head == HEAD_LINEAR:
                    for k in range(O):
                        dk = z[r, k] - y[r, k]
                        row += 0.5 * dk * dk
                        g[r, k] = scale * m * dk
                        if abs(dk) >= 0.5:
                            wrong = 1
                else:
                    raise ValueError("the lean kernel: unknown head code")
                if m != 0.0:
                    loss += scale * m * row
                    errors[lo + i] += wrong
        losses[it] = loss  # also when not finite (loss_and_grads reads it; a run reads done entries only)
        if not np.isfinite(loss):
            return it
        if trunc:
            # truncated: each loss origin t0 back to t0 - K, one sweep for all of them. At step k the
            # origins t0 in [k, k + K] are open; origin t0's delta sits in row t0*B + i of win:
            # d_k = f'(a_k) (d_{k+1} W), or f'(a_k) g_k V at its origin (_small.loss_grad's sums), and
            # ds_k adds them over the origins in ascending order. The products d_{k+1} W of all open
            # origins run together (rows (T + t0)*B + i), the same sums, interleaved
            for k in range(T - 1, -1, -1):
                top = k + K if k + K < T - 1 else T - 1
                for i in range(B):
                    r = k * B + i
                    gv = B + i
                    for j in range(H):
                        tmp[gv, j] = 0.0
                        ds[r, j] = 0.0
                    for q in range(O):
                        gq = g[r, q]
                        for j in range(H):
                            tmp[gv, j] += gq * V[q, j]
                    _vecmat_rows(win, (k + 1) * B + i, B, top - k, W, H, win, TB + (k + 1) * B + i)
                    fp = 2 * B + i
                    _slope(act, hs, r + B, tmp, fp)  # f'(a_k), shared by every origin
                    for j in range(H):
                        d = (tmp[gv, j] + 0.0) * tmp[fp, j]
                        win[r, j] = d
                        ds[r, j] += d
                    for t0 in range(k + 1, top + 1):
                        w = t0 * B + i
                        for j in range(H):
                            d = (win[TB + w, j] + 0.0) * tmp[fp, j]
                            win[w, j] = d
                            ds[r, j] += d
        else:
            # full: one sweep, dh_k = g_k V + d_{k+1} W (each from 0.0, g V first), d_k = f' dh_k
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
        norm = clip_grads(grad, clip_norm, clip_value)
        grad_norms[it] = norm
        if not np.isfinite(norm):
            return it
        for i in range(B):
            for j in range(H):
                hstate[i * H + j] = hs[T * B + i, j]
        _UPDATE(opt, theta, grad, opt_state, step0 + it + 1, lr, hyper)
    return n_iters


_LEAN = {}


def _compile(name, update, head, trunc):
    """:func:`_lean` compiled with ``update``, ``head`` and ``trunc`` as ``_UPDATE``, ``_HEAD`` and
    ``_TRUNC``, under ``name`` (:func:`fastrnn._generate.specialise`)."""
    return _generate.specialise(_lean, name, dict(_UPDATE=update, _HEAD=head, _TRUNC=trunc))




def lean_kernel(opt, head, truncated):
    """The lean kernel for optimizer code ``opt``, head code ``head`` and truncated BPTT or not (an
    unknown code raises KeyError): :func:`_lean` with those as constants, made on first use,
    compiled on its first call and cached by numba under a name of its own
    (``train_chunk_lean_adam_softmax_truncated``). Arguments: :func:`_lean`'s."""
    key = (opt, head, bool(truncated))
    kernel = _LEAN.get(key)
    if kernel is None:
        update = UPDATE_OF[opt]
        name = (f"train_chunk_lean_{NAME_OF[opt]}_{HEAD_NAMES[head]}"
                f"{'_truncated' if truncated else ''}")
        kernel = _LEAN[key] = _compile(name, update, head, 1 if truncated else 0)
    return kernel


@njit(**JIT)
def _no_update(kind, theta, grad, state, step, lr, hyper):
    """Leaves theta as it is (:data:`loss_and_grads_lean`'s update)."""


#: The lean kernel of plain SGD, the sigmoid head and full BPTT, which :func:`train_chunk_sgd` runs.
train_chunk_lean = lean_kernel(SGD, HEAD_SIGMOID, False)
#: The lean kernel with every optimizer's update (chosen by ``opt`` at run time) and the head and
#: truncation read from the arguments, which :func:`train_chunk` runs.
train_chunk_lean_any = _compile("train_chunk_lean_any", apply_update, -1, -1)
#: The lean kernel without an update, head and truncation read from the arguments: one iteration of it is
#: :func:`loss_and_grads`.
loss_and_grads_lean = _compile("loss_and_grads_lean", _no_update, -1, -1)


@njit(**JIT)
def _carve(buf, T, B, I, H, O, theta):
    """:func:`lean_views`'s ``mt`` and views, carved out of ``buf`` inside numba (see there)."""
    TB = T * B
    BH = B * H
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    oc = oV + O * H
    o = T - T
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
    o += 4 * BH
    z = buf[o : o + TB * O].reshape(TB, O)
    o += TB * O
    win = buf[o : o + 2 * TB * H].reshape(2 * TB, H)
    return mt, (uT, wT, x, y, hs, g, ds, tmp, z, win, theta[oW:ob].reshape(H, H), theta[oV:oc].reshape(O, H))


@njit(**JIT)
def _grad_views(grad, H, I, O):
    """gU (H, I), gW (H, H), gV (O, H): views of the gradient ``grad`` (layout of theta)."""
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    return grad[:oW].reshape(H, I), grad[oW:ob].reshape(H, H), grad[oV : oV + O * H].reshape(O, H)


@njit(**JIT)
def train_chunk(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets,
                buf, losses, grad_norms, errors):
    """:func:`fastrnn._train_kernel.train_chunk_general` for an :func:`fastrnn.dispatch.small_fits` model: same arguments
    (no ``blas``), same meaning, same numbers. The lean kernel with every optimizer's update
    (``opt`` chosen at run time), on ``buf`` (the gradient first, then :func:`lean_views`'s arrays)."""
    P = theta.shape[0]
    I, H, O = dims[0], dims[1], dims[2]
    grad = buf[:P]
    mt, v = _carve(buf[P:], X.shape[1], batch, I, H, O, theta)
    views = v + _grad_views(grad, H, I, O)
    return train_chunk_lean_any(theta, dims, K, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value,
                                hstate, resets, grad, mt, views, losses, grad_norms, errors)



@njit(**JIT)
def loss_and_grads(theta, dims, K, X, Y, M, h0, grad, h_final, buf):
    """:func:`fastrnn._kernels.loss_and_grads_serial` for an :func:`fastrnn.dispatch.small_fits` model (no ``blas``):
    one iteration of the lean kernel over the whole batch, without an update (:data:`loss_and_grads_lean`),
    ``buf`` holding :func:`lean_views`'s arrays. A loss that is not finite comes with a NaN gradient."""
    B = X.shape[0]
    I, H, O = dims[0], dims[1], dims[2]
    mt, v = _carve(buf, X.shape[1], B, I, H, O, theta)
    views = v + _grad_views(grad, H, I, O)
    for e in range(B * H):
        h_final[e] = h0[e] if h0.shape[0] > 0 else 0.0
    losses = np.zeros(1, theta.dtype)
    norms = np.zeros(1, theta.dtype)
    loss_and_grads_lean(theta, dims, K, X, Y, M, B, 0, 0.0, np.zeros(1), np.zeros((2, 0), theta.dtype), 0, 0.0, 0.0,
                        h_final, np.zeros(1, np.int64), grad, mt, views, losses, norms, np.zeros(B, np.int64))
    hs = views[4]
    T = X.shape[1]
    for i in range(B):  # the final state also when the iteration stopped at a non-finite loss or norm
        for j in range(H):
            h_final[i * H + j] = hs[T * B + i, j]
    if not np.isfinite(losses[0]):  # the kernel stops before the backward pass: no gradient
        for e in range(grad.shape[0]):
            grad[e] = np.nan
    return losses[0]


@njit(**JIT)
def train_chunk_sgd(theta, dims, X, Y, M, batch, lr, hstate, resets, buf, losses, grad_norms, errors):
    """:func:`train_chunk` for plain SGD (``theta -= lr * grad``), no clipping, full BPTT and the
    sigmoid head with cross-entropy; any activation, batch, mask and carried state. Same meaning
    of the arguments, same numbers.

    Carves :func:`lean_views`'s arrays out of ``buf`` and ``theta`` (inside numba, for
    the many-model kernel) and runs :data:`train_chunk_lean`; a training run calls
    the lean kernels directly with views made in Python (:class:`LeanCall`).
    """
    P = theta.shape[0]
    I, H, O = dims[0], dims[1], dims[2]
    grad = buf[:P]
    mt, v = _carve(buf[P:], X.shape[1], batch, I, H, O, theta)
    views = v + _grad_views(grad, H, I, O)
    return train_chunk_lean(theta, dims, P - P - 1, X, Y, M, batch, SGD, lr, np.zeros(1), np.zeros((2, 0), theta.dtype),
                            P - P, 0.0, 0.0, hstate, resets, grad, mt, views, losses, grad_norms, errors)


@njit(**JIT_PARALLEL)
def train_chunks_many_sgd(thetas, dims, X, Y, M, batch, lrs, hstates, resets, bufs, n_iters, losses, grad_norms, errors,
                          done):
    """:func:`train_chunks_many` for models that are all ``many-small-sgd`` (:func:`fastrnn.dispatch.choose_kernel`): each on :func:`train_chunk_sgd`."""
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

#: ``_derive_lanes(act, tmp, gv, dc, hs, q)``: :func:`_derive` lane by lane (inlined likewise).
_derive_lanes = activations.by_activation("_derive_lanes", "tmp, gv, dc, hs, q", """
nl = hs.shape[2]
for j in range(hs.shape[1]):
    for l in range(nl):
        tmp[dc, j, l] = tmp[gv, j, l] * DF(hs[q, j, l])
""", globals(), "_derive lane by lane.", jit=dict(JIT, inline="always"))


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


key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
