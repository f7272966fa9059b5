"""JIT-compiled forward pass and BPTT for a stacked RNN of any registered cell (docs/math.md).

Numbers only: no checks, no I/O. Everything here is called through
:mod:`fastrnn.engine`, whose callers validate first.

Conventions
-----------
* Inputs arrive batch-major as users hold them: ``X (B, T, I)``, ``Y (B, T, O)``,
  ``M (B, T)``. An empty ``M`` (shape (0, 0)) means "every step has a target".
  Recurrent states travel flat, laid out ``(L, S, B, H)`` (S state vectors per
  layer, h first); an empty one means zeros, so callers allocate nothing.
* All parameters live in one flat vector ``theta`` laid out per layer as
  ``U_l (G*H, I_l), W_l (G*H, H), b_l (G*H,)``, the cell's extras, and then
  ``V (O, H), c (O,)`` (``I_0 = I``, ``I_l = H`` above; G is the cell's gate
  count). :func:`layer_offset` is the one formula for it; :mod:`fastrnn.params`
  builds the named views from it. ``thetaT`` holds the same matrices transposed
  for the forward products that run in the hand loops (``rows @ (k, n)`` on
  contiguous memory); BLAS reads theta in place (:func:`transpose_params`).
  Gradients use the layout of ``theta``.
* ``dims`` is an int64 array ``[I, H, O, L, activation, head, cell]``;
  activation, head and cell are integer codes, so one compiled kernel serves every
  combination (one specialisation per dtype, not one per option).
* The driver here knows nothing about the cell: it computes xu = x U^T + b over
  all rows and hw = h W^T per step, and the cell's elementwise step
  (:mod:`fastrnn.cells`) does the rest, forward and backward.
* Work buffers are flat arrays of rows, time-major inside: row ``t * B + i`` is
  sequence i at step t, so the B rows of one step are one contiguous block and
  the elementwise work of a step is one loop. The states of layer l start at row
  ``l * (T + 1) * B``, with ``h_0`` first. See :func:`workspace`.

The time loop only does what must be sequential: ``h_{t-1} W^T`` forward and
``da_h W`` backward. The input projection, the output layer and every weight
gradient are single products over all ``T * B`` rows, outside the loop. Every buffer
is allocated before the time loop.
"""

import math

import numpy as np
from numba import njit, prange

from . import cells
from ._linalg import add_into, add_rows, colsum, mm, mm_nt, mm_tn, uses_blas
from ._mathfn import exp, sigmoid
from .config import JIT, JIT_PARALLEL

HEAD_SOFTMAX, HEAD_SIGMOID, HEAD_LINEAR = 0, 1, 2
HEADS = {"softmax": HEAD_SOFTMAX, "sigmoid": HEAD_SIGMOID, "linear": HEAD_LINEAR}
#: code -> name.
HEAD_NAMES = {code: name for name, code in HEADS.items()}
#: Length of ``dims``; the fields in order.
DIMS_FIELDS = ("n_in", "n_hidden", "n_out", "layers", "activation", "head", "cell")


# --------------------------------------------------------------------------- layout


def offset_formula(I, H, G, E, l):
    """THE layout formula: offset of U_l in theta for a cell with G gates and E extra
    H-vectors per layer; ``l = L`` gives the offset of V.

    Layer l holds G*H*(I_l + H + 1) + E*H entries: U_l, W_l, b_l, the cell's extras.
    Plain integer arithmetic: compiled for the kernels (:func:`layer_offset`), and
    called with Python integers (exact, no overflow) by :func:`fastrnn._checks.model_bytes`.
    """
    per_layer = G * H * (H + H + 1) + E * H
    if l == 0:
        return 0 * per_layer
    return G * H * (I + H + 1) + E * H + (l - 1) * per_layer


def count_formula(I, H, O, L, G, E):
    """Entries of theta: the L layers (:func:`offset_formula`), then V (O, H) and c (O,) (as :func:`param_count`)."""
    return offset_formula(I, H, G, E, L) + O * H + O


_offset = njit(**JIT)(offset_formula)


@njit(**JIT)
def layer_offset(dims, l):
    """Offset of U_l in theta; ``layer_offset(dims, L)`` is the offset of V.

    :func:`offset_formula` for the model's cell. Called by the kernels and by
    :func:`fastrnn.params.layout` alike.
    """
    cell = dims[6]
    return _offset(dims[0], dims[1], cells.gates(cell), cells.extra_size(cell, 1), l)


@njit(**JIT)
def param_count(dims):
    """Entries of theta."""
    return layer_offset(dims, dims[3]) + dims[2] * dims[1] + dims[2]


@njit(**JIT)
def state_size(dims, B):
    """Entries of a flat (L, S, B, H) recurrent state."""
    return dims[3] * cells.states(dims[6]) * B * dims[1]


@njit(**JIT)
def _transpose_block(theta, thetaT, off, rows, cols):
    for r in range(rows):
        for q in range(cols):
            thetaT[off + q * rows + r] = theta[off + r * cols + q]


@njit(**JIT)
def transpose_params(theta, dims, thetaT, T, B, blas):
    """Write U_l^T, W_l^T and V^T into ``thetaT`` at the offsets of U_l, W_l and V,
    each only where :func:`forward`'s product with it on a (B, T) batch runs in the
    hand loop (:func:`fastrnn._linalg.mm_nt`): BLAS reads the matrices in place.
    That saves the copy at shapes whose products all go to BLAS (23 us an iteration
    of 260 at the text shape)."""
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    GH = cells.gates(dims[6]) * H
    TB = T * B
    for l in range(L):
        o = layer_offset(dims, l)
        Il = I if l == 0 else H
        if not uses_blas(blas, TB, Il, GH):
            _transpose_block(theta, thetaT, o, GH, Il)
        if not uses_blas(blas, B, H, GH):
            _transpose_block(theta, thetaT, o + GH * Il, GH, H)
    if not uses_blas(blas, TB, H, O):
        _transpose_block(theta, thetaT, layer_offset(dims, L), O, H)


# ------------------------------------------------------------------------ workspace

#: Number of buffers :func:`workspace` carves.
N_BUFFERS = 14


@njit(**JIT)
def _workspace_sizes(T, B, dims):
    """Lengths of the buffers of :func:`workspace`, in order (the one place they are written)."""
    I, H, O, L, cell = dims[0], dims[1], dims[2], dims[3], dims[6]
    TB = T * B
    GH = cells.gates(cell) * H
    S = cells.states(cell)
    C = cells.cache_size(cell, H)
    R = cells.carry_size(cell, H)
    sep = 1 if cells.separate_dah(cell) else 0
    return (TB * I + MAX_HOT * TB + 1, TB * O, TB, L * (T + 1) * B * H, L * (S - 1) * (T + 1) * B * H, L * TB * C, TB * GH, B * GH,
            TB * O, TB * O, TB * H, L * TB * GH, sep * L * TB * GH, (2 + 2 * sep) * L * B * GH + 2 * L * B * R + B * H)


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
    P = param_count(dims)
    if n_threads == 1:
        return P + workspace_size(T, B, dims)
    return P + n_threads * (P + workspace_size(T, (B + n_threads - 1) // n_threads, dims))


@njit(**JIT)
def workspace(buf, off, T, B, dims):
    """Carve every buffer one forward + backward pass over a (B, T) batch needs out
    of ``buf[off:]`` (see :func:`workspace_size`). Reusing one scratch vector across
    calls matters: fresh buffers of a few hundred kB come from mmap and cost a page
    fault per 4 kB on first touch (measured 400 us of a 1 ms call at the digit shape).

    Returns ``(xt, yt, mt, hs, cs, cache, xu, tmp, z, g, gv, dsx, dsh, dd)``: flat
    views holding, as row-major matrices, xt (T*B, I) followed by the one-hot
    summary of :func:`load_data` (MAX_HOT * T*B + 1 entries),
    yt (T*B, O), mt (T*B,) time-major copies of the data; hs (L*(T+1)*B, H) the
    h states and cs (L*(S-1)*(T+1)*B, H) the cell's other states; cache the cell's
    per-step cache; xu (T*B, G*H) the current layer's input projection plus bias;
    tmp (B, G*H); z (T*B, O) logits, then predictions; g (T*B, O) dL/dz; gv
    (T*B, H) g V; dsx and dsh (L*T*B, G*H) da_x and da_h summed over loss origins
    (dsh is empty for a cell whose da_h is da_x: the driver aliases them); dd spans
    dsx, dsh and then the per-step deltas, carved by :func:`_delta_offsets`, so that
    full BPTT writes its deltas straight into the sums (:func:`backward`). One buffer with integer
    offsets, not seven arrays, keeps the backward functions' argument lists short,
    which keeps their compile time down.
    """
    sizes = _workspace_sizes(T, B, dims)
    o = np.empty(N_BUFFERS + 1, np.int64)
    o[0] = off
    for q in range(N_BUFFERS):
        o[q + 1] = o[q] + sizes[q]
    return (
        buf[o[0] : o[1]], buf[o[1] : o[2]], buf[o[2] : o[3]], buf[o[3] : o[4]], buf[o[4] : o[5]],
        buf[o[5] : o[6]], buf[o[6] : o[7]], buf[o[7] : o[8]], buf[o[8] : o[9]], buf[o[9] : o[10]],
        buf[o[10] : o[11]], buf[o[11] : o[12]], buf[o[12] : o[13]], buf[o[11] : o[14]],
    )


#: Rows of the inputs with at most this many ones (and zeros elsewhere) count as
#: "one-hot" for :func:`load_data`: text has one, the digits task's pair encoding two.
MAX_HOT = 2


@njit(**JIT)
def load_data(X, Y, M, lo, hi, xt, yt, mt):
    """Copy sequences lo..hi-1 of the batch-major data into the time-major buffers.

    It also notes whether the inputs are one-hot (or few-hot): every row all zeros
    but at most MAX_HOT entries equal to 1 (text, digits). After the T*B*I inputs
    xt holds, per row, the positions of its ones (-1 for none) and then 1 if every
    row is so, else 0. Then :func:`forward` gathers (and adds) columns of U_0
    instead of multiplying, and :func:`backward` scatters dU_0 (:func:`one_hot`):
    the same sums without the products with zeros. A check at run time on the
    data, not an option.
    """
    T, I, O = X.shape[1], X.shape[2], Y.shape[2]
    B = hi - lo
    TB = T * B
    onehot = 1
    for t in range(T):
        for i in range(B):
            r = t * B + i
            for h in range(MAX_HOT):
                xt[TB * I + r * MAX_HOT + h] = -1.0
            nnz = 0
            for q in range(I):
                v = X[lo + i, t, q]
                xt[r * I + q] = v
                if v != 0.0:
                    if v != 1.0 or nnz >= MAX_HOT:
                        onehot = 0
                    else:
                        xt[TB * I + r * MAX_HOT + nnz] = q
                    nnz += 1
            for q in range(O):
                yt[r * O + q] = Y[lo + i, t, q]
            mt[r] = M[lo + i, t] if M.shape[0] > 0 else 1.0
    xt[TB * I + MAX_HOT * TB] = onehot


@njit(**JIT)
def one_hot(xt, TB, I, GH, blas):
    """Whether the layer-0 products use the one-hot summary of :func:`load_data`: the
    inputs are one-hot and the product would have gone to BLAS. Below BLAS size the
    hand loops stay, so that the small-model path's numbers stay bit for bit those
    of this kernel (:mod:`fastrnn._small`). Never with ``blas=False``, so never in
    the parallel kernel's threads (:func:`forward` may write U_0^T into thetaT)."""
    return xt[TB * I + MAX_HOT * TB] != 0.0 and uses_blas(blas, TB, I, GH)


@njit(**JIT)
def load_state(h0, lo, n_rows, dims, T, B, hs, cs):
    """Initial states of rows lo..lo+B-1 of the flat (L, S, n_rows, H) ``h0`` (empty:
    zeros) into step 0 of hs (h) and cs (the cell's other states)."""
    H, L = dims[1], dims[3]
    S = cells.states(dims[6])
    for l in range(L):
        for s in range(S):
            dst = l * (T + 1) * B * H if s == 0 else ((l * (S - 1) + s - 1) * (T + 1)) * B * H
            src = ((l * S + s) * n_rows + lo) * H
            out = hs if s == 0 else cs
            if h0.shape[0] > 0:
                for e in range(B * H):
                    out[dst + e] = h0[src + e]
            else:
                for e in range(B * H):
                    out[dst + e] = 0.0


@njit(**JIT)
def store_state(hs, cs, dims, T, B, lo, n_rows, h_final):
    """The states after step T into rows lo..lo+B-1 of the flat (L, S, n_rows, H) h_final."""
    H, L = dims[1], dims[3]
    S = cells.states(dims[6])
    for l in range(L):
        for s in range(S):
            src = (l * (T + 1) + T) * B * H if s == 0 else ((l * (S - 1) + s - 1) * (T + 1) + T) * B * H
            dst = ((l * S + s) * n_rows + lo) * H
            out = hs if s == 0 else cs
            for e in range(B * H):
                h_final[dst + e] = out[src + e]


# -------------------------------------------------------------------------- forward


@njit(**JIT)
def forward(theta, thetaT, dims, T, B, xt, hs, cs, cache, xu, tmp, z, blas, cellset, act):
    """Run every layer over the sequences in xt (hs, cs must hold the states at step 0); logits into z.

    ``act`` is the activation's code, ``dims[4]``: a constant where the caller has one (numba then
    compiles that activation's loops only, :func:`fastrnn._train_kernel.general_kernel`)."""
    I, H, O, L, cell = dims[0], dims[1], dims[2], dims[3], dims[6]
    G = cells.gates(cell)
    S = cells.states(cell)
    C = cells.cache_size(cell, H)
    GH = G * H
    TB = T * B
    BH = B * H
    for l in range(L):
        o = layer_offset(dims, l)
        Il = I if l == 0 else H
        # the layer's input: the data for layer 0, the states h_1..h_T of layer l-1 below it
        src = xt if l == 0 else hs
        src_off = 0 if l == 0 else ((l - 1) * (T + 1) * B + B) * H
        if l == 0 and one_hot(xt, TB, I, GH, blas):
            # xu row r = the sum of the columns of U_0 at the ones of x_r (x U^T without the
            # products with 0; adding exact zeros changes no sum, so the same numbers). With
            # more rows than columns (digits: 320 rows, 20 columns) the columns are read as
            # contiguous rows of U_0^T, transposed here (transpose_params left that block to
            # BLAS); with few rows (text: 25 rows of a 70-letter alphabet) in place, strided.
            ut = TB > I
            if ut:
                _transpose_block(theta, thetaT, o, GH, I)
            for r in range(TB):
                row = xu[r * GH : (r + 1) * GH]
                for j in range(GH):
                    row[j] = 0.0
                for h in range(MAX_HOT):
                    pos = int(xt[TB * I + r * MAX_HOT + h])
                    if pos >= 0 and ut:
                        col = thetaT[o + pos * GH : o + (pos + 1) * GH]
                        for j in range(GH):
                            row[j] += col[j]
                    elif pos >= 0:
                        col = theta[o + pos : o + GH * I]
                        for j in range(GH):
                            row[j] += col[j * I]
        else:
            mm_nt(src, src_off, TB, Il, theta, thetaT, o, GH, xu, blas)
        bo = o + GH * Il + GH * H
        add_rows(xu, TB - TB, TB, GH, theta, bo)
        base = l * (T + 1) * BH
        cbase = l * (S - 1) * (T + 1) * BH
        for t in range(T):
            mm_nt(hs, base + t * BH, B, H, theta, thetaT, o + GH * Il, GH, tmp, blas)
            cells.forward_step(cellset, cell, act, B, H, xu, t * B * GH, tmp, theta, bo + GH, hs, base + t * BH,
                               base + (t + 1) * BH, cs, cbase + t * (S - 1) * BH, cbase + (t + 1) * (S - 1) * BH,
                               cache, (l * T + t) * B * C)
    oV = layer_offset(dims, L)
    mm_nt(hs, ((L - 1) * (T + 1) * B + B) * H, TB, H, theta, thetaT, oV, O, z, blas)
    add_rows(z, TB - TB, TB, O, theta, oV + O * H)


@njit(**JIT)
def head_loss(z, yt, mt, O, head, scale, g):
    """Turn logits z (R, O) into predictions in place, write g = scale * mask * dL/dz.

    Returns ``scale * sum(mask * loss)``; with ``scale = 1 / B`` that is docs/math.md's
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
def _delta_offsets(B, dims):
    """Offsets in ``dd`` of da_x (L, B, G*H) for two steps, da_h for two steps (the
    da_x ones again for a cell whose da_h is da_x), the cell's carried
    state-gradient for two steps and dh (B, H)."""
    H, L, cell = dims[1], dims[3], dims[6]
    LBG = L * B * cells.gates(cell) * H
    LBR = L * B * cells.carry_size(cell, H)
    x0, x1 = B - B, LBG
    h0, h1 = x0, x1
    if cells.separate_dah(cell):
        h0, h1 = 2 * LBG, 3 * LBG
    r0 = h1 + LBG
    return x0, x1, h0, h1, r0, r0 + LBR, r0 + 2 * LBR


@njit(**JIT)
def _delta_step(theta, dims, T, B, hs, cs, cache, gv, k, inject, has_next, dd, xc, xn, hc, hn, rc, rn, dho, tmp, blas,
                cellset, lstride, act):
    """da_x and da_h of every layer at step k, top layer first, into dd at xc and hc
    (layer l at ``xc + l * lstride``; hn: da_h of step k+1, layer l at ``hn + l * lstride``).

    dh^l_k = [l top and inject] g_k V + [has_next] da_h^l_{k+1} W_l
             + [l below top] da_x^{l+1}_k U_{l+1}; the cell turns it (with its
    carried state-gradient from step k+1) into da_x^l_k and da_h^l_k.
    """
    I, H, L, cell = dims[0], dims[1], dims[3], dims[6]
    GH = cells.gates(cell) * H
    S = cells.states(cell)
    C = cells.cache_size(cell, H)
    R = cells.carry_size(cell, H)
    BH = B * H
    for l in range(L - 1, -1, -1):
        o = layer_offset(dims, l)
        Il = I if l == 0 else H
        d = l * lstride
        dh = dd[dho : dho + BH]  # a view: see _linalg on offset indexing
        if l == L - 1 and inject:
            src = gv[k * BH : (k + 1) * BH]
            for e in range(BH):
                dh[e] = src[e]
        else:
            for e in range(BH):
                dh[e] = 0.0
        if has_next:
            mm(dd, hn + d, B, GH, theta, o + GH * Il, H, tmp, blas)
            add_into(dh, BH - BH, tmp, BH - BH, BH)
        if l < L - 1:
            mm(dd, xc + d + lstride, B, GH, theta, layer_offset(dims, l + 1), H, tmp, blas)
            add_into(dh, BH - BH, tmp, BH - BH, BH)
        hbase = l * (T + 1) * BH
        cbase = l * (S - 1) * (T + 1) * BH
        cells.backward_step(cellset, cell, act, B, H, dd, dho, has_next, rn + l * B * R, rc + l * B * R, xc + d, hc + d, theta,
                            o + GH * (Il + H + 1), hs, hbase + k * BH, hbase + (k + 1) * BH, cs,
                            cbase + k * (S - 1) * BH, cbase + (k + 1) * (S - 1) * BH, cache, (l * T + k) * B * C)


@njit(**JIT)
def backward(theta, dims, K, T, B, xt, hs, cs, cache, g, gv, dsx, dsh, dd, tmp, grad, blas, cellset, act):
    """BPTT from g = dL/dz; writes every parameter's gradient into ``grad`` (``act``: as :func:`forward`'s).

    K < 0: full BPTT, one backward sweep. K >= 0: the loss at step t reaches only
    steps t-K..t (docs/math.md), so each loss origin gets its own sweep of K + 1 steps;
    da_x and da_h of all origins are summed per step (``dsx``, ``dsh``; they are
    linear in the incoming gradient), which is all the weight gradients need.
    K >= T - 1 is full BPTT and takes the single sweep, which writes every step's
    deltas straight into dsx and dsh (``dd`` spans them, :func:`workspace`): no
    zeroing, no sums (about 6% of a GRU iteration at B=32, H=100). For a cell whose
    da_h is its da_x the da_h sums and deltas are the da_x ones (no copy).
    """
    I, H, O, L, cell = dims[0], dims[1], dims[2], dims[3], dims[6]
    GH = cells.gates(cell) * H
    sep = cells.separate_dah(cell)
    if not sep:
        dsh = dsx
    TB = T * B
    BGH = B * GH
    # dd: dsx (L, T, B, G*H), then dsh (as long, for a cell with SEPARATE_DAH), then
    # the per-step deltas at the offsets of _delta_offsets
    base = dsx.shape[0] + (dsx.shape[0] if sep else 0)
    xc, xn, hc, hn, rc, rn, dho = _delta_offsets(B, dims)
    xc, xn, hc, hn, rc, rn, dho = xc + base, xn + base, hc + base, hn + base, rc + base, rn + base, dho + base
    zero = T - T  # a run-time 0: a literal 0 would compile extra specialisations (see _linalg)
    oV = layer_offset(dims, L)
    mm(g, zero, TB, O, theta, oV, H, gv, blas)
    # Full BPTT is one sweep from the last step, every step's loss joining as it
    # passes, step k's deltas of layer l written straight to row block l * T + k of
    # the sums. Truncated BPTT is one sweep per loss origin t0, over steps t0..t0-K,
    # its deltas summed per step into dsx and dsh. One call site of _delta_step for
    # both (each call site compiles the cell's code again).
    full = K < 0 or K >= T - 1
    hbase = dsx.shape[0] if sep else zero
    lstride = T * BGH if full else BGH
    if not full:
        dsx[:] = 0.0
        if sep:
            dsh[:] = 0.0
    for origin in range(1 if full else T):
        t0 = T - 1 if full else origin
        k_min = 0 if full else (t0 - K if t0 > K else 0)
        for k in range(t0, k_min - 1, -1):
            if full:
                xc, hc = k * BGH, hbase + k * BGH
                xn, hn = xc + BGH, hc + BGH
            _delta_step(theta, dims, T, B, hs, cs, cache, gv, k, full or k == t0, k < t0, dd, xc, xn, hc, hn, rc, rn,
                        dho, tmp, blas, cellset, lstride, act)
            if not full:
                for l in range(L):
                    dst = (l * T + k) * BGH
                    add_into(dsx, dst, dd, xc + l * BGH, BGH)
                    if sep:
                        add_into(dsh, dst, dd, hc + l * BGH, BGH)
                xc, xn = xn, xc
                hc, hn = hn, hc
            rc, rn = rn, rc
    for l in range(L):
        o = layer_offset(dims, l)
        Il = I if l == 0 else H
        dl = l * TB * GH
        src = xt if l == 0 else hs
        src_off = zero if l == 0 else ((l - 1) * (T + 1) * B + B) * H
        if l == 0 and one_hot(xt, TB, I, GH, blas):
            # dU_0[:, q] += da_x row r for each one of x_r at q (dsx^T x without the products with 0)
            gu = grad[o : o + GH * I]
            gu[:] = 0.0
            for r in range(TB):
                row = dsx[dl + r * GH : dl + (r + 1) * GH]
                for h in range(MAX_HOT):
                    pos = int(xt[TB * I + r * MAX_HOT + h])
                    if pos >= 0:
                        for j in range(GH):
                            gu[j * I + pos] += row[j]
        else:
            mm_tn(dsx, dl, GH, src, src_off, Il, TB, grad, o, blas)
        mm_tn(dsh, dl, GH, hs, l * (T + 1) * B * H, H, TB, grad, o + GH * Il, blas)
        colsum(dsx, dl, TB, GH, grad, o + GH * Il + GH * H)
        if cellset is not None:  # pruned at compile time for a vanilla model (no extras)
            cells.extras_grad(cellset, cell, H, TB, dsx, dsh, dl, grad, o + GH * (Il + H + 1))
    mm_tn(g, zero, O, hs, ((L - 1) * (T + 1) * B + B) * H, H, TB, grad, oV, blas)
    colsum(g, zero, TB, O, grad, oV + O * H)


@njit(**JIT)
def loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, n_rows, lo, hi, scale, grad, ws, blas, cellset):
    """Forward, loss and BPTT over sequences lo..hi-1 of the batch.

    The initial states are rows lo..hi-1 of the flat (L, S, n_rows, H) ``h0`` (empty: zeros).
    """
    xt, yt, mt, hs, cs, cache, xu, tmp, z, g, gv, dsx, dsh, dd = ws
    T = X.shape[1]
    B = hi - lo
    load_data(X, Y, M, lo, hi, xt, yt, mt)
    load_state(h0, lo, n_rows, dims, T, B, hs, cs)
    forward(theta, thetaT, dims, T, B, xt, hs, cs, cache, xu, tmp, z, blas, cellset, dims[4])
    loss = head_loss(z, yt, mt, dims[2], dims[5], scale, g)
    backward(theta, dims, K, T, B, xt, hs, cs, cache, g, gv, dsx, dsh, dd, tmp, grad, blas, cellset, dims[4])
    return loss


# -------------------------------------------------------------------------- drivers


@njit(**JIT)
def predict(theta, dims, X, h0, yhat, states, h_final, blas, cellset):
    """Forward pass only: yhat (B, T, O), states (L, B, T, H) of h_1..h_T and the final
    states (every state vector: the LSTM's c too) into the flat (L, S, B, H) h_final;
    h0 flat (L, S, B, H) or empty."""
    B, T = X.shape[0], X.shape[1]
    zero = B - B  # a run-time 0 (see _linalg on literals)
    L, H, O = dims[3], dims[1], dims[2]
    buf = np.empty(scratch_size(T, B, dims, 1), theta.dtype)
    thetaT = buf[: theta.shape[0]]
    transpose_params(theta, dims, thetaT, T, B, blas)
    xt, yt, mt, hs, cs, cache, xu, tmp, z, g = workspace(buf, theta.shape[0], T, B, dims)[:10]
    load_data(X, np.zeros((B, T, O), theta.dtype), np.zeros((B, T), theta.dtype), zero, B, xt, yt, mt)
    load_state(h0, zero, B, dims, T, B, hs, cs)
    forward(theta, thetaT, dims, T, B, xt, hs, cs, cache, xu, tmp, z, blas, cellset, dims[4])
    head_loss(z, yt, mt, O, dims[5], 0.0, g)
    for i in range(B):
        for t in range(T):
            for k in range(O):
                yhat[i, t, k] = z[(t * B + i) * O + k]
            for l in range(L):
                for j in range(H):
                    states[l, i, t, j] = hs[((l * (T + 1) + t + 1) * B + i) * H + j]
    store_state(hs, cs, dims, T, B, zero, B, h_final)


@njit(**JIT)
def loss_and_grads_serial(theta, dims, K, X, Y, M, h0, grad, h_final, buf, blas, cellset):
    """Loss (mean over the batch) and its gradient in ``grad``; final states in h_final.

    h0 and h_final are flat (L, S, B, H) (h0 empty: zeros). ``buf`` is scratch of
    at least ``scratch_size(T, B, dims, 1)`` entries; ``blas`` lets the products
    use BLAS (the caller passes it so that it is no literal); ``cellset`` None
    compiles the vanilla cell only (see :mod:`fastrnn.cells`).
    """
    B, T = X.shape[0], X.shape[1]
    zero = B - B
    P = theta.shape[0]
    thetaT = buf[:P]
    transpose_params(theta, dims, thetaT, T, B, blas)
    ws = workspace(buf, P, T, B, dims)
    loss = loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, B, zero, B, 1.0 / B, grad, ws, blas, cellset)
    store_state(ws[3], ws[4], dims, T, B, zero, B, h_final)
    return loss


@njit(**JIT_PARALLEL)
def loss_and_grads_parallel(theta, dims, K, X, Y, M, h0, grad, h_final, buf, n_threads, blas, cellset):
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
    transpose_params(theta, dims, thetaT, T, B // n_threads, blas)  # the smallest share: covers every thread
    per_thread = P + workspace_size(T, (B + n_threads - 1) // n_threads, dims)
    losses = np.zeros(n_threads)
    for tid in prange(n_threads):
        lo = tid * B // n_threads
        hi = (tid + 1) * B // n_threads
        start = P + tid * per_thread
        ws = workspace(buf, start + P, T, hi - lo, dims)
        losses[tid] = loss_grad_slice(theta, thetaT, dims, K, X, Y, M, h0, B, lo, hi, 1.0 / B, buf[start : start + P],
                                      ws, blas, cellset)
        store_state(ws[3], ws[4], dims, T, hi - lo, lo, B, h_final)
    loss = 0.0
    for p in range(P):
        acc = buf[P + p]
        for tid in range(1, n_threads):
            acc += buf[P + tid * per_thread + p]
        grad[p] = acc
    for tid in range(n_threads):
        loss += losses[tid]
    return loss


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
