"""The small-model path for every cell and depth: the general driver's BPTT in the lean kernel's layout.

At the binary-addition shape (batch 1, T=8, H=16) a GRU, an LSTM or two vanilla layers spend
most of a general-driver iteration on its generality rather than on the products: a view of a
row for every row of every product (two atomic reference-count updates each), nested calls
that each take their arrays again, the transposes and the scratch offsets walked anew. This
module runs the same forward pass, loss and full BPTT as :mod:`fastrnn._kernels` for models whose
products are small (:func:`fastrnn.dispatch.cells_fits`), with what made :mod:`fastrnn._small`'s
lean kernel fast:

* the products are :func:`fastrnn._small._vecmat` on 2-D arrays indexed by row (each entry the
  general driver's hand-loop sum: from 0.0 over k ascending), made once per chunk as views of the
  same scratch the cells' steps read;
* the weights the products read are copied (``W_l``, ``U_l`` above layer 0) or transposed once an
  iteration into arrays of their own, and the weight gradients are summed straight into 2-D
  views of the gradient, every entry from 0.0 over the rows in order (the general driver's
  hand-loop order);
* one function holds the iteration, so its arrays are taken once.

The cell's math is not written here: every step calls the cell registry's
:func:`fastrnn.cells.forward_step` and :func:`fastrnn.cells.backward_step` (and
:func:`fastrnn.cells.extras_grad`) on the general driver's flat buffers
(:func:`fastrnn._kernels.workspace`), exactly as the general driver does (stacked vanilla layers
call the lean kernel's steps on rows of the same buffers, ``fastrnn._small._activate`` and
``_derive``, the same arithmetic: 13% of their iteration went to the calls through the registry
and the views of a flat step), and the loss is its
:func:`fastrnn._kernels.head_loss`. Every product entry is the general driver's sum, the same
terms in the same order: within the general driver's hand loops the numbers have been its own bit
for bit (a sweep of such models trained together on the general driver equals each run alone on
this kernel: tested), but the kernels are compiled apart, and nothing forbids LLVM to fuse a
multiply and an add in one and not the other, so the guarantee is equality to rounding; past the
hand loops the general driver sends the time-batched products to BLAS, which adds in another
order (tests/test_small_cells.py compares both with tests/reference.py at rtol 1e-10, and each
other at the twins' tolerance).
Full BPTT only: truncated runs take the general driver (:func:`fastrnn.dispatch.choose_kernel`).

Compiled per optimizer and head (:func:`cells_kernel`), like the lean kernel; ``cellset`` None
compiles the vanilla cell only (two vanilla layers), any integer every cell.

Numbers only: no checks. ``buf`` holds the gradient, the general driver's workspace and this
module's arrays (:func:`scratch_size`).
"""

import numpy as np
from numba import njit

from . import _generate, cells
from ._cache import key_dispatchers
from ._kernels import (HEAD_NAMES, _delta_offsets, _workspace_sizes, head_loss, layer_offset, load_data, load_state,
                       store_state, workspace, workspace_size)
from ._small import _activate, _derive, _vecmat, _vecmat_rows
from ._train_kernel import count_errors
from .config import JIT
from .optim import NAME_OF, UPDATE_OF, apply_update, clip_grads


def extra_size(B, I, H, L, G):
    """Entries of this module's own arrays after the workspace (carved by :func:`_train`): U_0^T (I, G*H), U_l^T
    and W_l^T of every layer (L, H, G*H) each, copies of W_l and U_l (L, G*H, H) each, a row of products (B, H)
    and dU_0 transposed (I, G*H)."""
    GH = G * H
    return 2 * I * GH + 4 * L * H * GH + B * H


def scratch_size(T, B, dims, P):
    """Entries of ``buf`` a chunk of (B, T) batches needs: the gradient, the general driver's workspace and
    :func:`extra_size` (plain Python but for the workspace's size), and at least what the general driver
    needs (:func:`fastrnn._train_kernel.chunk_scratch_size`: a second P for its transposed weights): whether
    a model's chunks take this kernel depends on the truncation, which a size asked for without it
    (``engine.chunk_scratch_size(model, T, B)``) does not know, so a buffer of this size serves either."""
    I, H, _, L, _, _, cell = (int(v) for v in dims)
    G = cells.MODULES[cell].G
    return P + int(workspace_size(T, B, dims)) + max(extra_size(B, I, H, L, G), P)


@njit(**JIT)
def _tmat(A, M, n, out):
    """out = A[:n].T @ M[:n] (all 2-D; out (A's columns, M's columns)): every entry summed from 0.0 over
    k ascending (the hand loops' order of a weight gradient, a sum over the rows), four rows of M a pass
    over each output row, as :func:`fastrnn._small._vecmat` does with a row of A."""
    m = out.shape[1]
    for c in range(out.shape[0]):
        for j in range(m):
            out[c, j] = 0.0
        k = n - n  # a run-time 0 (see _linalg on literals)
        while k + 4 <= n:
            v0, v1, v2, v3 = A[k, c], A[k + 1, c], A[k + 2, c], A[k + 3, c]
            for j in range(m):
                out[c, j] = (((out[c, j] + v0 * M[k, j]) + v1 * M[k + 1, j]) + v2 * M[k + 2, j]) + v3 * M[k + 3, j]
            k += 4
        while k < n:
            vk = A[k, c]
            for j in range(m):
                out[c, j] += vk * M[k, j]
            k += 1


#: What :func:`_train` reads as constants, bound by :func:`cells_kernel`: the optimizer's update and the
#: head's code (-1: read from ``dims``).
_UPDATE, _HEAD = apply_update, -1


def _train(theta, dims, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets, buf,
           losses, grad_norms, errors, cellset):
    """Run ``losses.shape[0]`` training iterations with full BPTT: the arguments and the return value of
    :func:`fastrnn._train_kernel.train_chunk_general` (without ``K``, ``blas``). Never called as it is:
    :func:`cells_kernel` compiles it with ``_UPDATE`` and ``_HEAD`` bound."""
    n_iters = losses.shape[0]
    T = X.shape[1]
    B = batch
    P = theta.shape[0]
    I, H, O, L, act, cell = dims[0], dims[1], dims[2], dims[3], dims[4], dims[6]
    head = dims[5] if _HEAD < 0 else _HEAD
    G = cells.gates(cell)
    S = cells.states(cell)
    C = cells.cache_size(cell, H)
    R = cells.carry_size(cell, H)
    sep = cells.separate_dah(cell)
    GH = G * H
    TB = T * B
    BH = B * H
    BGH = B * GH
    zero = T - T  # a run-time 0 (see _linalg on literals)
    grad = buf[:P]
    xt, yt, mt, hs, cs, cache, xu, tmp, z, g, gv, dsx, dsh, dd = workspace(buf, P, T, B, dims)
    o = P + workspace_size(T, B, dims)
    # this module's arrays, then 2-D views of the workspace's (the same memory the cells' steps read)
    uT0 = buf[o : o + I * GH].reshape(I, GH)
    o += I * GH
    uT = buf[o : o + L * H * GH].reshape(L, H, GH)  # U_l^T for l >= 1 (entry 0 unused)
    o += L * H * GH
    wT = buf[o : o + L * H * GH].reshape(L, H, GH)
    o += L * H * GH
    wc = buf[o : o + L * GH * H]  # W_l (G*H, H) of every layer, flat
    w3 = wc.reshape(L, GH, H)
    o += L * GH * H
    uc = buf[o : o + L * GH * H]  # U_l (G*H, H) for l >= 1, flat
    u3 = uc.reshape(L, GH, H)
    o += L * GH * H
    prod = buf[o : o + BH].reshape(B, H)
    o += BH
    gUT = buf[o : o + I * GH].reshape(I, GH)  # dU_0 transposed
    x2 = xt[: TB * I].reshape(TB, I)
    hs2 = hs.reshape(L * (T + 1) * B, H)
    xu2 = xu.reshape(TB, GH)
    tmp2 = tmp.reshape(B, GH)
    # the workspace carves tmp right after xu: rows 0..TB-1 of xh are xu, rows TB.. tmp (the lean kernel's
    # vanilla step reads both from one array); dd as rows of H (its parts are whole rows of a vanilla model)
    sizes = _workspace_sizes(T, B, dims)
    ox = P + sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4] + sizes[5]
    xh = buf[ox : ox + (TB + B) * GH].reshape(TB + B, GH)
    dd2 = dd.reshape(dd.shape[0] // H, H)
    gv2 = gv.reshape(TB, H)
    if not sep:
        dsh = dsx
    base = dsx.shape[0] + (dsx.shape[0] if sep else 0)
    dsx2 = dsx.reshape(L * TB, GH)
    dsh2 = dsh.reshape(L * TB, GH)
    rc, rn, dho = _delta_offsets(B, dims)[4:]
    rc, rn, dho = rc + base, rn + base, dho + base
    dh2 = dd[dho : dho + BH].reshape(B, H)
    hbase = dsx.shape[0] if sep else zero  # dsh's start in dd
    offs = np.empty(L + 1, np.int64)  # each layer's offset in theta, then V's: read in the loops, not recomputed
    for l in range(L + 1):
        offs[l] = layer_offset(dims, l)
    oV = offs[L]
    V = theta[oV : oV + O * H].reshape(O, H)
    gV = grad[oV : oV + O * H].reshape(O, H)
    top = (L - 1) * (T + 1) * B  # the top layer's h_0 row in hs2
    for it in range(n_iters):
        if resets.shape[0] == 0 or resets[it] != 0:
            hstate[:] = 0.0
        # the products' layouts of this iteration's weights
        for l in range(L):
            ol = offs[l]
            Il = I if l == 0 else H
            ow = ol + GH * Il
            src = theta[ow : ow + GH * H]
            dst = wc[l * GH * H : (l + 1) * GH * H]
            for e in range(GH * H):
                dst[e] = src[e]
            for j in range(GH):  # the transposes from the copies: 3-D indices, no flat offset in the loop
                for k in range(H):
                    wT[l, k, j] = w3[l, j, k]
            if l == 0:
                for p in range(I):
                    for j in range(GH):
                        uT0[p, j] = theta[ol + j * I + p]
            else:
                src = theta[ol : ol + GH * H]
                dst = uc[l * GH * H : (l + 1) * GH * H]
                for e in range(GH * H):
                    dst[e] = src[e]
                for j in range(GH):
                    for k in range(H):
                        uT[l, k, j] = u3[l, j, k]
        lo = it * B
        load_data(X, Y, M, lo, lo + B, xt, yt, mt)
        load_state(hstate, zero, B, dims, T, B, hs, cs)
        # forward: _kernels.forward's sums (x U^T from 0.0, then b; h W^T from 0.0 per step)
        for l in range(L):
            ol = offs[l]
            Il = I if l == 0 else H
            bo = ol + GH * Il + GH * H
            sbase = (l * (T + 1)) * B
            if l == 0:  # every row's input products in one call, their chains interleaved
                _vecmat_rows(x2, zero, 1, TB, uT0, I, xu2, zero)
            else:
                _vecmat_rows(hs2, (l - 1) * (T + 1) * B + B, 1, TB, uT[l], H, xu2, zero)
            bias = theta[bo : bo + GH]
            for r in range(TB):
                for j in range(GH):
                    xu2[r, j] += bias[j]
            wl = wT[l]
            cbase = l * (S - 1) * (T + 1) * BH
            for t in range(T):
                for i in range(B):
                    _vecmat(hs2, sbase + t * B + i, wl, H, tmp2, i)
                if cellset is None:  # vanilla layers only (pruned at compile time): the lean kernel's step on rows
                    for i in range(B):
                        _activate(act, xh, TB + i, t * B + i, hs2, sbase + (t + 1) * B + i)
                    continue
                cells.forward_step(cellset, cell, act, B, H, xu, t * BGH, tmp, theta, bo + GH, hs, (sbase + t * B) * H,
                                   (sbase + (t + 1) * B) * H, cs, cbase + t * (S - 1) * BH,
                                   cbase + (t + 1) * (S - 1) * BH, cache, (l * T + t) * B * C)
        for r in range(TB):
            q = top + B + r
            for k in range(O):
                acc = 0.0
                for j in range(H):
                    acc += hs2[q, j] * V[k, j]
                z[r * O + k] = acc + theta[oV + O * H + k]
        loss = head_loss(z, yt, mt, O, head, 1.0 / B, g)
        if not np.isfinite(loss):
            return it
        # backward: _kernels.backward's full sweep, the deltas of step k, layer l in rows (l*T + k)*B + i
        for r in range(TB):
            for j in range(H):
                gv2[r, j] = 0.0
            for q in range(O):
                gq = g[r * O + q]
                for j in range(H):
                    gv2[r, j] += gq * V[q, j]
        for k in range(T - 1, -1, -1):
            has_next = k < T - 1
            for l in range(L - 1, -1, -1):
                ol = offs[l]
                Il = I if l == 0 else H
                row = (l * T + k) * B
                for i in range(B):
                    if l == L - 1:
                        for j in range(H):
                            dh2[i, j] = gv2[k * B + i, j]
                    else:
                        for j in range(H):
                            dh2[i, j] = 0.0
                if has_next:
                    wl = w3[l]
                    for i in range(B):
                        _vecmat(dsh2, row + B + i, wl, GH, prod, i)
                        for j in range(H):
                            dh2[i, j] += prod[i, j]
                if l < L - 1:
                    ul = u3[l + 1]
                    for i in range(B):
                        _vecmat(dsx2, ((l + 1) * T + k) * B + i, ul, GH, prod, i)
                        for j in range(H):
                            dh2[i, j] += prod[i, j]
                if cellset is None:  # as in the forward pass: da_x = da_h = f'(a) dh, a row at a time
                    for i in range(B):
                        _derive(act, dd2, dho // H + i, row + i, hs2, (l * (T + 1) + k + 1) * B + i)
                    continue
                sb = l * (T + 1) * BH
                cb = l * (S - 1) * (T + 1) * BH
                cells.backward_step(cellset, cell, act, B, H, dd, dho, has_next, rn + l * B * R, rc + l * B * R, row * GH,
                                    hbase + row * GH, theta, ol + GH * (Il + H + 1), hs, sb + k * BH, sb + (k + 1) * BH,
                                    cs, cb + k * (S - 1) * BH, cb + (k + 1) * (S - 1) * BH, cache, (l * T + k) * B * C)
            rc, rn = rn, rc
        # weight gradients, every entry from 0.0 over the rows in order (_linalg's hand loops), as
        # products of the transposed deltas (_tmat)
        for l in range(L):
            ol = offs[l]
            Il = I if l == 0 else H
            dx = dsx2[l * TB : (l + 1) * TB]
            if l == 0:  # dU_0 (G*H, I) summed as its transpose, a row of G*H for each input
                _tmat(x2, dx, TB, gUT)
                gu = grad[ol : ol + GH * I]
                for j in range(GH):
                    for p in range(I):
                        gu[j * I + p] = gUT[p, j]
            else:
                gu2 = grad[ol : ol + GH * H].reshape(GH, H)
                below = hs2[(l - 1) * (T + 1) * B + B : (l - 1) * (T + 1) * B + B + TB]
                _tmat(dx, below, TB, gu2)
            gw = grad[ol + GH * Il : ol + GH * (Il + H)].reshape(GH, H)
            dh_rows = dsh2[l * TB : (l + 1) * TB]
            prev = hs2[l * (T + 1) * B : l * (T + 1) * B + TB]
            _tmat(dh_rows, prev, TB, gw)
            gb = grad[ol + GH * (Il + H) : ol + GH * (Il + H + 1)]
            for j in range(GH):
                gb[j] = 0.0
            for r in range(TB):
                for j in range(GH):
                    gb[j] += dx[r, j]
            if cellset is not None:  # pruned at compile time for vanilla layers (no extras)
                cells.extras_grad(cellset, cell, H, TB, dsx, dsh, l * TB * GH, grad, ol + GH * (Il + H + 1))
        for k in range(O):
            for j in range(H):
                gV[k, j] = 0.0
            grad[oV + O * H + k] = 0.0
        for r in range(TB):
            for k in range(O):
                gk = g[r * O + k]
                grad[oV + O * H + k] += gk
                for j in range(H):
                    gV[k, j] += gk * hs2[top + B + r, j]
        norm = clip_grads(grad, clip_norm, clip_value)
        if not np.isfinite(norm):
            return it
        losses[it] = loss
        grad_norms[it] = norm
        count_errors(z, yt, mt, T, B, O, head, errors, lo)
        store_state(hs, cs, dims, T, B, zero, B, hstate)
        _UPDATE(opt, theta, grad, opt_state, step0 + it + 1, lr, hyper)
    return n_iters


_KERNELS = {}


def cells_kernel(opt, head):
    """The kernel for optimizer code ``opt`` and head code ``head`` (an unknown code raises KeyError):
    :func:`_train` with the optimizer's own update and the head as constants, made on first use, compiled
    on its first call and cached by numba under a name of its own (``train_chunk_cells_adam_softmax``)."""
    key = (int(opt), int(head))
    kernel = _KERNELS.get(key)
    if kernel is None:
        update = UPDATE_OF[key[0]]
        name = f"train_chunk_cells_{NAME_OF[key[0]]}_{HEAD_NAMES[key[1]]}"
        kernel = _KERNELS[key] = _generate.specialise(_train, name, dict(_UPDATE=update, _HEAD=key[1]))
    return kernel


def train_chunk(theta, dims, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value, hstate, resets, buf,
                losses, grad_norms, errors, cellset):
    """:func:`_train` on one model: the kernel :func:`cells_kernel` makes for the call's optimizer and the model's head."""
    return cells_kernel(opt, dims[5])(theta, dims, X, Y, M, batch, opt, lr, hyper, opt_state, step0, clip_norm, clip_value,
                                      hstate, resets, buf, losses, grad_norms, errors, cellset)


key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
