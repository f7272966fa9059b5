"""min-char-rnn's training iteration for one stream, fused, on one or two threads.

The text task at batch 1 (a vanilla tanh RNN reading one character a step, a softmax
over the vocabulary, Adagrad or RMSprop, every gradient entry clipped to [-c, c])
spends its time in three places: the recurrence (a 100x100 matrix-vector product per
step forward and another backward, each step waiting for the one before), the output
layer and the weight gradients (three 41x100 products per step and the 100x100x25 sum
for dW), and the optimizer (a square root and a division for each of the ~18,000
weights). The general kernel does them as BLAS products over the window; this module
does each as a loop written for the shape, and splits an iteration between two threads:

* thread A runs the recurrence: the forward steps, then, once thread B has the output
  layer's gradient for every step, the backward steps;
* thread B follows A step by step through the output layer (logits, softmax, loss, dc
  and the gradient dH each step sends back into h), so that the output layer costs no
  time on A's critical path; between steps, and while A runs the backward pass, it adds
  up dV and dW in groups of steps from the states and deltas A has handed over;
* A adds up dU and db, both compute their parts of the gradient's squared norm and,
  once the norm is known to be finite, update the weights: A the ones its recurrence
  reads (U, b and most of W's rows, which stay in its core's cache), B the rest of W,
  V and c.

On the project's 2-core machine an iteration at H = 100, L = 25 took 82-86 us on two
threads while both cores ran at full speed, and about 150 us on one (phase timings
with the CPU's cycle counter over 1,000s of iterations; the general kernel took 170).
benchmarks/bench_text.py measures both against min-char-rnn's numpy loop. The floor is
the recurrence: 50 dependent 100x100 products of about 0.93 us each, bound by reading
W's 80 KB from the core's L2 cache (the same with BLAS's dgemv, in the dot-product and
the axpy forms, and with explicit AVX2 vectors; a 40-row W, which fits in the 32 KB L1,
ran 1.6 times as many multiply-adds a cycle), and 25 rows of tanh.

Every number is computed by one fixed phase function in one fixed order, whichever
thread runs it and however the two interleave: one thread runs the same phases one
after the other and gives the same numbers bit for bit (tests/test_charrnn.py). The
threads meet at counters in one int64 array, read and written with acquire/release
atomics (:func:`_load_acquire`, :func:`_store_release`): each counter only grows, and
a thread waits until the other's counter reaches what it needs. A stop flag in the same
array, read at every iteration boundary and in every wait, ends both within an iteration
(:func:`stop_all`). A watchdog thread sets it when they make no progress for a while
(:data:`STALL_SECONDS`), and on the main thread also when Ctrl-C, SIGTERM or SIGHUP
arrives: Python's C-level signal handler writes the signal's number to a socket the
watchdog reads (:func:`signal.set_wakeup_fd`), while the thread that runs the kernel
cannot run Python's own handler until the kernel returns.

The phases read the parameters in the layout they need: U transposed (V, H) so that
an input character is one contiguous row, W (H, H), V (O, H) and the biases as rows;
the caller (:func:`train_chunk`) copies them (and their optimizer state) into that
layout and back once per chunk, into arrays that start on a cache line and whose rows
are padded with zeros to whole AVX2 vectors (:func:`fastrnn.params.aligned_empty`: an iteration took
13% less time than with arrays wherever numpy's allocator put them, which promises
16 bytes, so that every other vector straddled two lines). Products over a row are summed in
the dot-product form with reassociation allowed (``JIT_DOT``): several partial sums
at once, which is what lets LLVM vectorise them; every other loop keeps numba's
strict order.
"""

import os
import signal
import sys
import threading
import time

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from llvmlite import ir

from ._mathfn import expm1, tanh
from ._small import _vecmat
from .config import JIT
from .params import aligned_zeros

#: Dot products of a row with a vector: reassociation lets LLVM keep several partial
#: sums in vector registers (the order is fixed at compile time, so results are
#: reproducible, but not the left-to-right sum of numba's default).
JIT_DOT = dict(JIT, fastmath={"reassoc", "contract"})

# Slots of the int64 sync array, a cache line (8 entries) apart. ABORT: set (from Python)
# to stop both threads; RAN_B: the iterations thread B has finished (B alone writes it).
FWD, HEAD, BWD, GRAD_A, GRAD_B, BAD, DONE_B, ABORT, RAN_B = 0, 8, 16, 24, 32, 40, 48, 56, 64
SYNC_SIZE = 72
#: The counters that grow while the threads make progress (the watchdog reads them).
PROGRESS = (FWD, HEAD, BWD, GRAD_A, GRAD_B, DONE_B)

#: A updates W's first rows (this fraction of them) with U and b, B the rest with V and c.
SPLIT = 0.76


@intrinsic
def _load_acquire(typingctx, arr, idx):
    """arr[idx] read with acquire ordering (never hoisted out of a loop, sees the writer's earlier stores)."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, arr, idx, value):
    """arr[idx] = value with release ordering (every earlier store is visible first)."""
    sig = types.void(arr, idx, value)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


#: The OS call that gives the rest of a thread's time slice to another thread.
_yield_cpu = types.ExternalFunction("SwitchToThread" if sys.platform == "win32" else "sched_yield", types.int32())

#: Polls of a counter before a waiting thread starts yielding its time slice. A wait
#: is normally a few microseconds, well within this; a longer one means the other
#: thread is not running (more busy threads than cores), and spinning on would keep it
#: off the core it needs.
SPINS = 20000


@njit(**JIT)
def _spin(count):
    """One more poll of a wait; after SPINS of them, each poll also yields the core."""
    if count >= SPINS:
        _yield_cpu()
    return count + 1


@intrinsic
def _prefetch_write(typingctx, arr, row):
    """Ask for the cache lines of ``arr[row]`` (a C-contiguous 2-D array) in a state to be
    written (PREFETCHW where the CPU has it): a hint, it changes no value."""
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        _, m = cgutils.unpack_tuple(builder, ary.shape, 2)
        base = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], ir.Constant(ir.IntType(64), 0)],
                                        wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32),
                                            ir.IntType(32), ir.IntType(32)]), "llvm.prefetch.p0i8")
        step = ir.Constant(ir.IntType(64), 8)  # 8 float64 = one 64-byte line
        with cgutils.for_range_slice(builder, ir.Constant(ir.IntType(64), 0), m, step) as (k, _):
            ptr = builder.bitcast(builder.gep(base, [k]), i8p)
            builder.call(fn, [ptr, ir.Constant(ir.IntType(32), 1), ir.Constant(ir.IntType(32), 3),
                              ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def _wait(sync, slot, target):
    """Wait until sync[slot] >= target; False if told to stop first (sync[ABORT] set)."""
    count = 0
    while _load_acquire(sync, slot) < target:
        if _load_acquire(sync, ABORT) != 0:
            return False
        count = _spin(count)
    return True


@njit(**JIT)
def _stopped(sync):
    """Whether the threads were told to stop (sync[ABORT] set)."""
    return _load_acquire(sync, ABORT) != 0


# ---------------------------------------------------------------- one step each


@njit(**JIT_DOT)
def _dot_rows(M, X, r, out, orow):
    """out[orow, k] = sum_j M[k, j] X[r, j] for every row k of M, four rows at a time (one
    pass over X[r] serves four dot products)."""
    n, m = M.shape
    k = 0
    while k + 4 <= n:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(m):
            xj = X[r, j]
            s0 += M[k, j] * xj
            s1 += M[k + 1, j] * xj
            s2 += M[k + 2, j] * xj
            s3 += M[k + 3, j] * xj
        out[orow, k] = s0
        out[orow, k + 1] = s1
        out[orow, k + 2] = s2
        out[orow, k + 3] = s3
        k += 4
    while k < n:
        s = 0.0
        for j in range(m):
            s += M[k, j] * X[r, j]
        out[orow, k] = s
        k += 1


@njit(**JIT)
def _forward_step(W, UT, bh, Hs, A, t, x):
    """A[t] = U[:, x] + b + W Hs[t];  Hs[t+1] = tanh(A[t])."""
    _dot_rows(W, Hs, t, A, t)
    for i in range(W.shape[0]):
        A[t, i] = (UT[x, i] + bh[i]) + A[t, i]
    _tanh_row(A, Hs, t)


@njit(**JIT)
def _tanh_row(A, Hs, t):
    """Hs[t+1] = tanh(A[t]) (a function of its own so that the loop is vectorised)."""
    for i in range(A.shape[1]):
        Hs[t + 1, i] = tanh(A[t, i])


@njit(**JIT)
def _logits(Vw, c, Hs, t, Z):
    """Z[t] = V Hs[t+1] + c."""
    _dot_rows(Vw, Hs, t + 1, Z, t)
    for k in range(Vw.shape[0]):
        Z[t, k] = c[k] + Z[t, k]


@njit(**JIT)
def _exp_shifted(z, m):
    """z[k] = exp(z[k] - m)."""
    for k in range(z.shape[0]):
        z[k] = expm1(z[k] - m) + 1.0


@njit(**JIT_DOT)
def _sum(z):
    s = 0.0
    for k in range(z.shape[0]):
        s += z[k]
    return s


@njit(**JIT)
def _head_step(Vw, c, Hs, t, y, Z, gc, dH):
    """The output layer at step t: returns (-ln p(y), 1 if the arg max is not y).

    Z[t] = dz = softmax(V h + c) - onehot(y); gc += dz (``t == 0``: gc = dz);
    dH[t] = V^T dz. (dV = sum_t dz_t h_t^T comes later, :func:`_accumulate`.)"""
    O = Vw.shape[0]
    _logits(Vw, c, Hs, t, Z)
    z = Z[t]
    m = z[0]
    km = 0
    for k in range(1, O):
        if z[k] > m:
            m = z[k]
            km = k
    zy = z[y] - m
    _exp_shifted(z, m)
    s = _sum(z)
    loss = np.log(s) - zy
    inv = 1.0 / s
    for k in range(O):
        z[k] *= inv
    z[y] -= 1.0
    if t == 0:
        for k in range(O):
            gc[k] = z[k]
    else:
        for k in range(O):
            gc[k] += z[k]
    _vecmat(Z, t, Vw, O, dH, t)  # dH[t] = V^T dz
    return loss, 1 if km != y else 0


@njit(**JIT)
def _accumulate(D, X, xo, G, hi, lo, first):
    """G[i] (+)= sum_t D[t, i] X[t + xo] over steps t = hi, hi - 1, ..., lo (at most four),
    added in that order; ``first``: G starts from zero. The weight gradients dV (D the
    output deltas, X the states after each step) and dW (D the pre-activation deltas, X
    the states before) are sums of these groups, steps in descending order, four at a
    time so that each pass over G does four multiply-adds per entry it loads and stores."""
    n, m = G.shape
    if first:
        for i in range(n):
            for j in range(m):
                G[i, j] = 0.0
    if hi - lo == 3:
        i = 0
        while i + 2 <= n:  # two rows of G per pass: the four rows of X are loaded once for both
            a0 = D[hi, i]
            a1 = D[hi - 1, i]
            a2 = D[hi - 2, i]
            a3 = D[lo, i]
            b0 = D[hi, i + 1]
            b1 = D[hi - 1, i + 1]
            b2 = D[hi - 2, i + 1]
            b3 = D[lo, i + 1]
            for j in range(m):
                x0 = X[hi + xo, j]
                x1 = X[hi - 1 + xo, j]
                x2 = X[hi - 2 + xo, j]
                x3 = X[lo + xo, j]
                G[i, j] = (((G[i, j] + a0 * x0) + a1 * x1) + a2 * x2) + a3 * x3
                G[i + 1, j] = (((G[i + 1, j] + b0 * x0) + b1 * x1) + b2 * x2) + b3 * x3
            i += 2
        if i < n:
            d0 = D[hi, i]
            d1 = D[hi - 1, i]
            d2 = D[hi - 2, i]
            d3 = D[lo, i]
            for j in range(m):
                G[i, j] = (((G[i, j] + d0 * X[hi + xo, j]) + d1 * X[hi - 1 + xo, j]) + d2 * X[hi - 2 + xo, j]) + \
                    d3 * X[lo + xo, j]
        return
    if hi - lo == 1:  # the short groups at the end of dW: one pass for both steps
        for i in range(n):
            d0 = D[hi, i]
            d1 = D[lo, i]
            for j in range(m):
                G[i, j] = (G[i, j] + d0 * X[hi + xo, j]) + d1 * X[lo + xo, j]
        return
    for t in range(hi, lo - 1, -1):
        for i in range(n):
            d = D[t, i]
            for j in range(m):
                G[i, j] += d * X[t + xo, j]


@njit(**JIT)
def _backward_step(W, Hs, dH, dR, dn, t):
    """dR[t] = (1 - h^2) (dH[t] + dn[0]); dn[0] = W^T dR[t] (for step t - 1)."""
    H = W.shape[0]
    for i in range(H):
        h = Hs[t + 1, i]
        dR[t, i] = (1.0 - h * h) * (dH[t, i] + dn[0, i])
    if t > 0:
        _vecmat(dR, t, W, W.shape[0], dn, 0)  # dn[0] = W^T dR[t]


@njit(**JIT_DOT)
def _sumsq_rows(G, i0, i1, out):
    """out[i] = sum_j G[i, j]^2 for i0 <= i < i1."""
    for i in range(i0, i1):
        s = 0.0
        for j in range(G.shape[1]):
            s += G[i, j] * G[i, j]
        out[i] = s


@njit(**JIT)
def _update_rows(P, G, S, i0, i1, lr, eps, decay, clip):
    """Rows i0..i1-1 of P: clip G to [-clip, clip], then Adagrad (decay < 0: S += g^2) or
    RMSprop (S = decay S + (1 - decay) g^2); P -= lr g / sqrt(S + eps)."""
    for i in range(i0, i1):
        _update_row(P, G, S, i, lr, eps, decay, clip)


@njit(**JIT)
def _update_row(P, G, S, i, lr, eps, decay, clip):
    if decay < 0.0:
        for j in range(P.shape[1]):
            g = G[i, j]
            g = g if g < clip else clip
            g = g if g > -clip else -clip
            s = S[i, j] + g * g
            S[i, j] = s
            P[i, j] -= lr * g / np.sqrt(s + eps)
    else:
        keep = 1.0 - decay
        for j in range(P.shape[1]):
            g = G[i, j]
            g = g if g < clip else clip
            g = g if g > -clip else -clip
            s = decay * S[i, j] + keep * g * g
            S[i, j] = s
            P[i, j] -= lr * g / np.sqrt(s + eps)


# ---------------------------------------------------------------- the phases of one iteration
#
# P: the parameters (UT, W, b, V, c) as 2-D arrays (the biases (1, n)); G: their gradients;
# S: their optimizer state; ws: (Hs, A, dH, dR, dn, Z, rows) scratch; io: (inputs, targets,
# resets, hstate (1, H), losses, norms, errors, touched).


@njit(**JIT)
def _phase_forward(P, ws, io, it, sync, L):
    UT, W, b = P[0], P[1], P[2]
    Hs, A = ws[0], ws[1]
    inputs, resets, hstate = io[0], io[2], io[3]
    H = W.shape[0]
    if resets[it] != 0:
        for i in range(H):
            hstate[0, i] = 0.0
    for i in range(H):
        Hs[0, i] = hstate[0, i]
    base = it * L
    for t in range(L):
        _forward_step(W, UT, b[0], Hs, A, t, inputs[it, t])
        _store_release(sync, FWD, base + t + 1)


@njit(**JIT)
def _dv_group(G, ws, k, L):
    """dV's group k: steps 4k .. 4k+3 (fewer at the end), groups added in ascending k."""
    lo = 4 * k
    _accumulate(ws[5], ws[0], 1, G[3], min(lo + 3, L - 1), lo, k == 0)


@njit(**JIT)
def _phase_head(P, G, ws, io, it, sync, L):
    """B's output layer, one step behind A; while A's next step is not ready, a group of
    dV whose steps are done is added instead of waiting. Returns the next dV group due."""
    Vw, c = P[3], P[4]
    gc = G[4]
    Hs, dH, Z = ws[0], ws[2], ws[5]
    targets, losses, errors = io[1], io[4], io[6]
    base = it * L
    loss = 0.0
    wrong = 0
    k = 0  # next dV group
    for t in range(L):
        count = 0
        while _load_acquire(sync, FWD) < base + t + 1:
            if 4 * k + 3 < t:  # group k's steps are all done
                _dv_group(G, ws, k, L)
                k += 1
            elif _stopped(sync):
                return k
            else:
                count = _spin(count)
        lt, wt = _head_step(Vw, c[0], Hs, t, targets[it, t], Z, gc[0], dH)
        loss += lt
        wrong += wt
        gW = G[1]
        for r in range(t * gW.shape[0] // L, (t + 1) * gW.shape[0] // L):
            _prefetch_write(gW, r)  # A read dW last iteration: take its lines back now, not in the backward pass
        if t + 1 < L:
            _prefetch_write(dH, t + 1)
    losses[it] = loss
    errors[it] = wrong
    if not np.isfinite(loss):
        _store_release(sync, BAD, 1)
    _store_release(sync, HEAD, base + L)
    return k


@njit(**JIT)
def _phase_backward(P, ws, it, sync, L):
    W = P[1]
    Hs, dH, dR, dn = ws[0], ws[2], ws[3], ws[4]
    if not _wait(sync, HEAD, (it + 1) * L):
        return False
    if _load_acquire(sync, BAD) != 0:
        return False
    for j in range(W.shape[0]):
        dn[0, j] = 0.0
    base = it * L
    for t in range(L - 1, -1, -1):
        _backward_step(W, Hs, dH, dR, dn, t)
        _store_release(sync, BWD, base + L - t)
    return True


@njit(**JIT)
def _phase_grads_a(G, ws, io, it, sync, L):
    """A's gradients: db and dU's rows for the window's characters, and their squares."""
    gUT, gb = G[0], G[2]
    dR, rows = ws[3], ws[6]
    inputs, touched = io[0], io[7]
    H = gb.shape[1]
    for i in range(H):
        gb[0, i] = 0.0
    for t in range(L):
        x = inputs[it, t]
        if touched[x] == 0:
            touched[x] = 1
            for i in range(H):
                gUT[x, i] = 0.0
        for i in range(H):
            gb[0, i] += dR[t, i]
            gUT[x, i] += dR[t, i]
    _sumsq_rows(gb, 0, 1, rows[1])
    s = 0.0
    for x in range(gUT.shape[0]):  # the characters' rows in vocabulary order; the others are zero
        if touched[x] != 0:
            _sumsq_rows(gUT, x, x + 1, rows[2])
            s += rows[2, x]
    rows[1, 1] = s


@njit(**JIT)
def _phase_meet(it, sync):
    """A: wait for B's gradients and their squares, then hand over A's. (B sums dW's squares
    in its own cache: A reading dW there for them, and then again for the update, was
    slower than reading it once while the update runs; measured 98.0 -> 94.5 us an iteration.)"""
    if not _wait(sync, GRAD_B, it + 1):
        return False
    _store_release(sync, GRAD_A, it + 1)
    return True


@njit(**JIT)
def _group_low(hi):
    """The last step of dW's group that starts at step ``hi`` (groups go down from L - 1):
    four steps, but two and then one at the end, so that B finishes soon after A hands
    over the last deltas."""
    if hi >= 7:
        return hi - 3
    if hi >= 1:
        return max(hi - 1, 1)
    return 0


@njit(**JIT)
def _phase_grads_b(G, ws, it, sync, L, k):
    """B's gradients: dW's groups of four steps as soon as A's backward pass has handed
    over their deltas, the dV groups from ``k`` on while waiting for them; then the
    squares of dV, dc and dW. Each sum is the same groups in the same order, however the
    threads interleave."""
    gW, gV, gc = G[1], G[3], G[4]
    Hs, dR, rows = ws[0], ws[3], ws[6]
    base = it * L
    nv = (L + 3) // 4
    hw = L - 1  # next group of dW: steps hw, hw - 1, ..., lo
    while hw >= 0:
        lo = _group_low(hw)
        count = 0
        while _load_acquire(sync, BWD) < base + L - lo:
            if k < nv:
                _dv_group(G, ws, k, L)
                k += 1
            elif _stopped(sync):
                return False
            else:
                count = _spin(count)
        _accumulate(dR, Hs, 0, gW, hw, lo, hw == L - 1)
        hw = lo - 1
    while k < nv:
        _dv_group(G, ws, k, L)
        k += 1
    _sumsq_rows(gV, 0, gV.shape[0], rows[3])
    _sumsq_rows(gc, 0, 1, rows[4])
    _sumsq_rows(gW, 0, gW.shape[0], rows[0])
    _store_release(sync, GRAD_B, it + 1)
    return True


@njit(**JIT)
def _norm(ws, H, O):
    """The gradient's norm from the squared row sums, added in one fixed order."""
    rows = ws[6]
    s = 0.0
    for i in range(H):
        s += rows[0, i]
    s += rows[1, 0]
    s += rows[1, 1]
    for k in range(O):
        s += rows[3, k]
    s += rows[4, 0]
    return np.sqrt(s)


@njit(**JIT)
def _phase_update_a(P, G, S, ws, io, split, lr, eps, decay, clip):
    """A's updates: W's rows before ``split``, b and U's rows (only the window's characters
    for Adagrad, where the others' zero gradient changes nothing; every row for RMSprop),
    and the carried state. A reads U, b and W every step, so their lines stay in its core;
    the rows of W that B updates move across and back (giving A 60 to 88% of the rows
    measured the same, within this machine's noise)."""
    UT, W, b = P[0], P[1], P[2]
    gUT, gW, gb = G[0], G[1], G[2]
    Hs = ws[0]
    hstate, touched = io[3], io[7]
    H = W.shape[0]
    L = Hs.shape[0] - 1
    _update_rows(W, gW, S[1], 0, split, lr, eps, decay, clip)
    _update_rows(b, gb, S[2], 0, 1, lr, eps, decay, clip)
    for x in range(UT.shape[0]):
        if touched[x] != 0:
            _update_row(UT, gUT, S[0], x, lr, eps, decay, clip)
            touched[x] = 0
        elif decay >= 0.0:
            for i in range(H):
                gUT[x, i] = 0.0
            _update_row(UT, gUT, S[0], x, lr, eps, decay, clip)
    for i in range(H):
        hstate[0, i] = Hs[L, i]


@njit(**JIT)
def _phase_update_b(P, G, S, it, sync, split, lr, eps, decay, clip):
    """B's updates: W's rows from ``split`` on (A's next forward pass waits for them),
    then V and c, which only B reads."""
    _update_rows(P[1], G[1], S[1], split, P[1].shape[0], lr, eps, decay, clip)
    _store_release(sync, DONE_B, it + 1)
    _update_rows(P[3], G[3], S[3], 0, P[3].shape[0], lr, eps, decay, clip)
    _update_rows(P[4], G[4], S[4], 0, 1, lr, eps, decay, clip)


# ---------------------------------------------------------------- drivers


#: The roles of :func:`run`: every phase on one thread, or thread A or B of a two-thread run.
SERIAL, A, B = 0, 1, 2


@njit(**JIT)
def run(role, P, G, S, ws, io, sync, L, split, lr, eps, decay, clip):
    """Train ``len(io[4])`` iterations in the given role (one compiled function for all three).

    SERIAL runs every phase in an order that never waits; A runs the recurrence (forward,
    backward), dU and db, and the updates of U, b and W's first rows; B the output layer,
    dV, dc and dW, and the updates of W's other rows, V and c. Returns the iterations
    completed (fewer on a non-finite loss or gradient; both threads stop at the same one).
    Told to stop (``sync[ABORT]`` set), each role returns at its next iteration boundary or
    from the wait it is in, with the iterations it completed: the caller then discards the
    call's work, since the two roles may have stopped at different points.
    """
    n = io[4].shape[0]
    H = P[1].shape[0]
    O = P[3].shape[0]
    norms = io[5]
    k = 0
    for it in range(n):
        if _stopped(sync):
            return it
        if role == A:
            if not _wait(sync, DONE_B, it):  # B's rows of W updated
                return it
        if role != B:
            _phase_forward(P, ws, io, it, sync, L)
        if role != A:
            k = _phase_head(P, G, ws, io, it, sync, L)
            if _stopped(sync):
                return it
            if role == B and _load_acquire(sync, BAD) != 0:
                return it
        if role != B:
            if not _phase_backward(P, ws, it, sync, L):
                return it
            _phase_grads_a(G, ws, io, it, sync, L)
        if role != A:
            if not _phase_grads_b(G, ws, it, sync, L, k):
                return it
        if role == B:
            if not _wait(sync, GRAD_A, it + 1):
                return it
        elif not _phase_meet(it, sync):
            return it
        norm = _norm(ws, H, O)
        if not np.isfinite(norm):
            return it
        if role != B:
            norms[it] = norm
            _phase_update_a(P, G, S, ws, io, split, lr, eps, decay, clip)
        if role != A:
            _phase_update_b(P, G, S, it, sync, split, lr, eps, decay, clip)
        if role == B:
            _store_release(sync, RAN_B, it + 1)
    return n


# ---------------------------------------------------------------- Python side


#: Entries of one AVX2 vector (32 bytes of float64): rows along H are padded to a multiple of it.
VECTOR = 4


def width(H):
    """H rounded up to whole vectors: the row length of every array along the hidden units."""
    return -(-H // VECTOR) * VECTOR


def _blocks(I, H, O):
    """The flat layout of a one-layer vanilla model: (offset, rows, columns) of U (H, I),
    W (H, H), b (H), V (O, H) and c (O)."""
    oW = H * I
    ob = oW + H * H
    oV = ob + H
    return (0, H, I), (oW, H, H), (ob, 1, H), (oV, O, H), (oV + O * H, 1, O)


def _shapes(I, H, O):
    """The shapes the phases keep U (transposed), W, b, V and c in, and their gradients and
    optimizer state: every row along the hidden units :func:`width` (H) long."""
    Hp = width(H)
    return (I, Hp), (H, Hp), (1, Hp), (O, Hp), (1, O)


def views(theta, state, I, H, O):
    """(P, S): the parameters and optimizer state as the phases read them, copied out of the
    flat ``theta`` / ``state`` into aligned arrays with rows of :func:`width` entries (the
    padding is zero and stays zero): U transposed (I, H'), so that a character is a row;
    W (H, H'), b (1, H'), V (O, H') and c (1, O)."""

    def split(flat):
        out = []
        for k, ((o, r, c), shape) in enumerate(zip(_blocks(I, H, O), _shapes(I, H, O))):
            block = flat[o : o + r * c].reshape(r, c)
            a = aligned_zeros(shape, flat.dtype)
            if k == 0:
                a[:, :r] = block.T  # U (H, I) -> (I, H')
            else:
                a[:r, :c] = block
            out.append(a)
        return tuple(out)

    return split(theta), split(state)


def put_back(theta, state, P, S, I, H, O):
    """Copy the parameters and optimizer state from the phases' layout back into the flat arrays."""
    for flat, parts in ((theta, P), (state, S)):
        for k, ((o, r, c), a) in enumerate(zip(_blocks(I, H, O), parts)):
            flat[o : o + r * c].reshape(r, c)[...] = a[:c, :r].T if k == 0 else a[:r, :c]


def scratch(I, H, O, L, dtype):
    """(G, ws): the gradients in the layout of :func:`views`, and the per-iteration scratch
    (Hs (L+1, H'), A (L, H'), dH (L, H'), dR (L, H'), dn (1, H'), Z (L, O), rows (5, max(H, I, O))),
    H' = :func:`width` (H); all aligned and zero."""
    Hp = width(H)
    G = tuple(aligned_zeros(shape, dtype) for shape in _shapes(I, H, O))
    ws = tuple(aligned_zeros(shape, dtype) for shape in ((L + 1, Hp), (L, Hp), (L, Hp), (L, Hp), (1, Hp), (L, O),
                                                         (5, max(H, I, O))))
    return G, ws


#: Below this many iterations a call runs on the calling thread (starting one costs about 0.1 ms).
MIN_THREADED = 8

#: Seconds the waiting Python thread sleeps between looks at the kernel's threads: how
#: soon a signal handler runs and a stop request reaches the kernel.
POLL_SECONDS = 0.05

#: Whether a call runs its last role on the calling thread (:func:`_inline`); False: every
#: role on threads of their own (:func:`_delegated`, also taken when the inline way cannot be).
INLINE = True

#: Seconds without any progress (no counter of the sync array moving) after which the two
#: threads are told to stop and the call is redone on one thread. A wait is normally a
#: few microseconds; this is for a thread that never runs its part.
STALL_SECONDS = 10.0


class Stopped(KeyboardInterrupt):
    """A call told to stop (:func:`stop_all`, or an exception in the waiting thread) before
    it finished. Nothing was changed: the parameters, optimizer state and ``hstate`` are
    those from before the call. ``iteration``: the iterations of the call completed
    when it stopped (discarded)."""

    def __init__(self, iteration, total):
        super().__init__(f"the text kernel stopped after {iteration} of the call's {total} iterations; "
                         f"that work was discarded, the state is the one before the call")
        self.iteration = iteration
        self.total = total


#: The sync arrays of the calls in flight, so that a signal handler can stop them.
_RUNNING = {}
#: Set once the two threads stalled: later calls in this process use one thread.
_ONE_THREAD = False


def stop_all():
    """Tell every call in flight to stop at its next iteration boundary (safe in a signal handler)."""
    for sync in list(_RUNNING.values()):
        sync[ABORT] = 1


def _work(role, args, out):
    """A thread's body: one role of :func:`run`; its result (or exception) goes to ``out``."""
    try:
        out[role] = run(role, *args)
    except BaseException as exc:  # reported by the waiting thread
        out[role] = exc


def _start(roles, args, out):
    """Start a thread per role; the ones that started (fewer when the OS refuses one)."""
    threads = []
    for role in roles:
        thread = threading.Thread(target=_work, args=(role, args, out), name=f"fastrnn-charrnn-{role}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had
            break
        threads.append(thread)
    return threads


class _Progress:
    """The watchdog's view of a call: whether any counter of the sync array moved in the
    last STALL_SECONDS (``stalled()`` also tells the threads to stop when none did)."""

    def __init__(self, sync):
        self.sync, self.clock = sync, time.monotonic
        self.seen, self.since, self.stalled_ = None, self.clock(), False

    def stalled(self):
        counters = tuple(int(self.sync[slot]) for slot in PROGRESS)
        now = self.clock()
        if counters != self.seen:
            self.seen, self.since = counters, now
        elif now - self.since > STALL_SECONDS and self.sync[ABORT] == 0:
            self.stalled_ = True
            self.sync[ABORT] = 1
        return self.stalled_


def _supervise(threads, sync, out, roles):
    """Wait in Python (where signal handlers run) for the threads; stop them when one fails
    or when none of the counters moved for STALL_SECONDS. Returns "done" (every thread
    ended), "stalled" or "failed" (one raised: the others were told to stop); an exception
    here (a KeyboardInterrupt, say) stops the threads and is raised."""
    progress, why = _Progress(sync), "done"
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(POLL_SECONDS)
                if t.is_alive():
                    break
            if any(isinstance(out.get(r), BaseException) for r in roles):
                why = "failed"
                sync[ABORT] = 1
            if progress.stalled():
                why = "stalled"
    except BaseException:
        sync[ABORT] = 1
        for t in threads:
            t.join()
        raise
    return why


def _delegated(roles, args, sync, out):
    """Every role on a thread of its own while this thread waits in Python: for a main
    thread whose signal wake-up file descriptor another library holds (an asyncio loop)."""
    started = _start(roles, args, out)
    if len(started) < len(roles):  # the OS gave fewer threads: stop those and go on on this one
        sync[ABORT] = 1
        for t in started:
            t.join()
        return "no thread"
    return _supervise(started, sync, out, roles)


#: Signals that stop a call in flight (read from the signal wake-up descriptor).
STOP_SIGNALS = tuple(int(getattr(signal, name)) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _stops(signum):
    """Whether the Python handler of signal ``signum`` ends a run, so that the kernel may stop
    at once: Python's default Ctrl-C handler, or one fastrnn installs to end a run (marked
    ``_fastrnn_stops``). Any other handler runs after the kernel's call, as it always did."""
    if signum not in STOP_SIGNALS:
        return False
    try:
        handler = signal.getsignal(signum)
    except (ValueError, OSError):
        return False
    return handler is signal.default_int_handler or bool(getattr(handler, "_fastrnn_stops", False))


class _Watchdog:
    """One thread per process beside the kernel calls in flight (started on first use, again
    after a fork). It sleeps in ``select`` on a socket: a byte there is a stop signal's number,
    written by Python's C-level signal handler the moment the signal arrives (the socket is
    the main thread's signal wake-up descriptor while a call runs there), or a nudge when a
    call begins. While calls run it also looks every POLL_SECONDS for progress
    (:class:`_Progress`) and for a helper thread that raised, and tells those calls to stop."""

    _instance = None

    def __init__(self):
        import socket

        self.pid = os.getpid()
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        self.calls = {}
        self.sleeping = False  # in a select without a timeout: a call that begins must nudge it
        self.thread = threading.Thread(target=self._loop, name="fastrnn-charrnn-watchdog", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls):
        """The process's watchdog (None where no thread can be started)."""
        dog = cls._instance
        if dog is None or dog.pid != os.getpid() or not dog.thread.is_alive():
            try:
                dog = cls._instance = cls()
            except (RuntimeError, OSError):
                return None
        return dog

    def nudge(self):
        try:
            self.writer.send(b"\0")
        except OSError:  # the socket is full of nudges: the watchdog is awake anyway
            pass

    def _loop(self):
        import select

        while True:
            self.sleeping = not self.calls  # set, then read again: a call added meanwhile sees it and nudges
            try:
                timeout = None if self.sleeping and not self.calls else POLL_SECONDS
                ready = select.select([self.reader], [], [], timeout)[0]
                data = self.reader.recv(256) if ready else b""
            except (OSError, ValueError):
                data = b""
            self.sleeping = False
            calls = list(self.calls.values())
            stop = any(_stops(b) for b in set(data))
            for progress, out in calls:
                if stop or any(isinstance(v, BaseException) for v in list(out.values())):
                    progress.sync[ABORT] = 1
                progress.stalled()


def _inline(roles, args, sync, out):
    """The last role on this thread (as fast as a plain call: its arrays stay in this core's
    cache), the other on a thread of its own, with the process's :class:`_Watchdog` looking
    on. On the main thread the watchdog's socket is Python's signal wake-up descriptor for
    the call's duration, so that Ctrl-C or SIGTERM stop the kernel although this thread runs
    compiled code (Python's own handler runs as usual once the call returns). Returns None
    (the caller falls back to :func:`_delegated`) where there is no watchdog or another
    library holds that descriptor (an asyncio loop)."""
    dog = _Watchdog.get()
    if dog is None:
        return None
    woken = threading.current_thread() is threading.main_thread()
    if woken:
        old = signal.set_wakeup_fd(dog.writer.fileno(), warn_on_full_buffer=False)
        if old != -1:  # someone else's: leave it theirs
            signal.set_wakeup_fd(old)
            return None
    try:
        progress = _Progress(sync)
        key = id(sync)
        dog.calls[key] = (progress, out)
        if dog.sleeping:
            dog.nudge()  # from an endless sleep to looking every POLL_SECONDS
        try:
            helpers = _start(roles[:-1], args, out)
            if len(helpers) < len(roles) - 1:
                sync[ABORT] = 1
                for t in helpers:
                    t.join()
                return "no thread"
            try:
                _work(roles[-1], args, out)
            finally:
                if not isinstance(out.get(roles[-1]), int):
                    sync[ABORT] = 1  # this role raised: the others must not wait for it
                for t in helpers:
                    t.join()
        finally:
            dog.calls.pop(key, None)
        return "stalled" if progress.stalled_ else "done"
    finally:
        if woken:
            signal.set_wakeup_fd(-1)


def train_chunk(theta, state, I, H, O, inputs, targets, resets, hstate, lr, eps, decay, clip, losses, norms, errors,
                threads=1, info=None):
    """Train ``len(losses)`` iterations of a one-layer tanh RNN with a softmax head, in place.

    ``inputs``/``targets`` (n, L) int64: the characters of each iteration's window;
    ``resets`` (n,): 1 where the carried ``hstate`` (H,) is set to zeros first.
    ``state``: the optimizer's (P,) running mean square; ``decay < 0``: Adagrad
    (``state += g^2``), else RMSprop with that decay. ``clip``: every gradient entry is
    clipped to [-clip, clip] (``inf``: none). ``losses``, ``norms`` (the norm before
    clipping) and ``errors`` (wrong next characters) get one entry per iteration.
    ``threads``: 1, or 2 to split each iteration (the same numbers). Returns the
    iterations completed: fewer when a loss or the gradient became non-finite (that
    iteration is not applied). ``len(losses) == 0`` compiles (or loads) the kernels.

    From MIN_THREADED iterations on, a watchdog thread runs beside the kernel (:func:`_inline`;
    :func:`_delegated` where the signal wake-up descriptor is taken): Ctrl-C, SIGTERM or
    SIGHUP, or :func:`stop_all`, stop the kernel within an iteration, and the call raises
    :class:`Stopped` (or the signal handler's exception) with the parameters, optimizer
    state and ``hstate`` as they were before it. If the two threads make no progress for
    STALL_SECONDS, the call is redone on one thread, and so are later calls, with a
    one-line note on stderr. ``info``: a dict that gets ``threads`` (those
    the call ran on) and ``ran_b`` (the iterations the second thread finished).
    """
    global _ONE_THREAD
    L = inputs.shape[1]
    n = losses.shape[0]
    P, S = views(theta, state, I, H, O)
    G, ws = scratch(I, H, O, L, theta.dtype)
    io = (inputs, targets, resets, hstate.reshape(1, H), losses, norms, errors, np.zeros(I, np.int64))
    sync = np.zeros(SYNC_SIZE, np.int64)
    split = min(H, max(0, round(H * SPLIT)))
    args = (P, G, S, ws, io, sync, L, split, lr, eps, decay, clip)
    if info is None:
        info = {}
    info.update(threads=1, ran_b=0)
    if n == 0:
        return run(SERIAL, *args)  # compiles (or loads) the one function every role runs
    if not run.signatures:  # compile (or load) first: a thread must never wait on a failure
        run(SERIAL, *(args[:4] + (tuple(a[:0] if k in (0, 1, 2, 4, 5, 6) else a for k, a in enumerate(io)),)
                      + args[5:]))
    if n < MIN_THREADED:
        done = run(SERIAL, *args)
        put_back(theta, state, P, S, I, H, O)
        return done
    roles = (B, A) if threads >= 2 and not _ONE_THREAD else (SERIAL,)
    info["threads"] = len(roles)  # also when the call is stopped
    h0 = hstate.copy()
    key = id(sync)
    _RUNNING[key] = sync
    try:
        while True:
            out = {}
            why = _inline(roles, args, sync, out) if INLINE else None
            if why is None:
                why = _delegated(roles, args, sync, out)
            failure = next((e for e in out.values() if isinstance(e, BaseException)), None)
            if failure is not None:  # a role raised (the others were stopped): the caller gets it
                raise failure
            if why == "done" and sync[ABORT] == 0:
                done = out[roles[-1]]
                info.update(threads=len(roles), ran_b=int(sync[RAN_B]))
                break
            if why == "done" and all(out.get(r) == n for r in roles):
                done = n  # told to stop after the last iteration: the call is complete
                info.update(threads=len(roles), ran_b=int(sync[RAN_B]))
                break
            # start again from the state before the call (its copies, ``hstate``)
            hstate[...] = h0
            P, S = views(theta, state, I, H, O)
            sync[:] = 0
            args = (P, G, S, ws, io, sync, L, split, lr, eps, decay, clip)
            if why == "stalled":
                _ONE_THREAD = True
                print(f"fastrnn: the text kernel's two threads made no progress for {STALL_SECONDS:g} s; "
                      "this run goes on on one thread (the same numbers)", file=sys.stderr, flush=True)
                roles = (SERIAL,)
                info["threads"] = 1
                continue
            if why == "no thread":
                info["threads"] = 1
                done = run(SERIAL, *args)  # on this thread: the same numbers
                break
            raise Stopped(min(out.get(r, 0) if not isinstance(out.get(r), BaseException) else 0 for r in roles), n)
    except BaseException:
        sync[ABORT] = 1  # no thread of this call runs on (one may have started just before the exception)
        hstate[...] = h0  # the state from before the call, whatever stopped it
        raise
    finally:
        _RUNNING.pop(key, None)
    put_back(theta, state, P, S, I, H, O)
    return done


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
