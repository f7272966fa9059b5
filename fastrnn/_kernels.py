"""JIT-compiled forward pass and BPTT for a stacked vanilla RNN (SPEC.md).

Numbers only: no checks, no I/O. Everything here is called by the public wrappers in
:mod:`fastrnn.model` (and the training loop), which validate first.

Conventions
-----------
* Data is time-major and C-contiguous: ``Xt (T, B, I)``, ``Yt (T, B, O)``, mask
  ``Mt (T, B)``, initial state ``h0 (L, B, H)``.
* All parameters live in one flat vector ``theta`` laid out per layer as
  ``U_l (H, I_l), W_l (H, H), b_l (H,)`` and then ``V (O, H), c (O,)``
  (``I_0 = I``, ``I_l = H`` above). ``thetaT`` holds the same matrices transposed,
  so that every product here is ``(rows, k) @ (k, cols)`` on contiguous memory.
  Gradients use the layout of ``theta``. :func:`fastrnn.params.layout` is the
  Python twin of :func:`layer_offset`.
* ``dims`` is an int64 array ``[I, H, O, L, activation, head]``; activation and head
  are the integer codes below, so one compiled kernel serves every combination
  (one specialisation per dtype, not one per option).

The time loop only does what must be sequential: ``h_{t-1} @ W^T`` forward and
``delta_{t+1} @ W`` backward. The input projection, the output layer and every
weight gradient are single products over all ``T * B`` rows, outside the loop.
Every buffer is allocated before the time loop.
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
def _mat(buf, off, rows, cols):
    """The (rows, cols) matrix stored at ``buf[off:]``, as a view."""
    return buf[off : off + rows * cols].reshape((rows, cols))


@njit(**JIT)
def transpose_params(theta, dims, thetaT):
    """Write U_l^T, W_l^T and V^T into ``thetaT`` at the offsets of U_l, W_l and V."""
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    for l in range(L):
        Il = I if l == 0 else H
        o = layer_offset(l, I, H)
        thetaT_U = _mat(thetaT, o, Il, H)
        thetaT_U[:, :] = _mat(theta, o, H, Il).T
        thetaT_W = _mat(thetaT, o + H * Il, H, H)
        thetaT_W[:, :] = _mat(theta, o + H * Il, H, H).T
    oV = layer_offset(L, I, H)
    thetaT_V = _mat(thetaT, oV, H, O)
    thetaT_V[:, :] = _mat(theta, oV, O, H).T


# ---------------------------------------------------------------------- activations


@njit(**JIT)
def _activate_row(pre, xu, b, out, act):
    """out = f(pre + xu + b) for one row of H hidden units."""
    n = out.shape[0]
    if act == TANH:
        for j in range(n):
            out[j] = tanh(pre[j] + xu[j] + b[j])
    elif act == SIGMOID:
        for j in range(n):
            out[j] = sigmoid(pre[j] + xu[j] + b[j])
    else:
        for j in range(n):
            a = pre[j] + xu[j] + b[j]
            out[j] = a if a > 0.0 else 0.0


@njit(**JIT)
def _mul_activation_grad(e, h, act):
    """e *= f'(a), written with h = f(a): tanh 1 - h^2, sigmoid h (1 - h), relu [h > 0]."""
    n = e.shape[0]
    if act == TANH:
        for j in range(n):
            e[j] *= 1.0 - h[j] * h[j]
    elif act == SIGMOID:
        for j in range(n):
            e[j] *= h[j] * (1.0 - h[j])
    else:
        for j in range(n):
            e[j] = e[j] if h[j] > 0.0 else 0.0


# -------------------------------------------------------------------------- forward


@njit(**JIT)
def workspace(T, B, dims, theta):
    """Every buffer one forward + backward pass over a (T, B) batch needs."""
    H, O, L = dims[1], dims[2], dims[3]
    dt = theta.dtype
    hs = np.empty((L, T + 1, B, H), dt)  # hs[l, 0] = h0, hs[l, t] = h_t
    xu = np.empty((T, B, H), dt)  # input projection of the current layer
    tmp = np.empty((B, H), dt)
    z = np.empty((T, B, O), dt)  # logits, then yhat in place
    g = np.empty((T, B, O), dt)  # dL/dz
    gv = np.empty((T, B, H), dt)  # g @ V: what each step's output sends into h
    dsum = np.empty((L, T, B, H), dt)  # delta_t summed over loss origins
    dcur = np.empty((L, B, H), dt)
    dnext = np.empty((L, B, H), dt)
    return hs, xu, tmp, z, g, gv, dsum, dcur, dnext


@njit(**JIT)
def forward(theta, thetaT, dims, Xt, h0, hs, xu, tmp, z):
    """Run every layer over the sequence; write the states to hs and the logits to z."""
    I, H, O, L, act = dims[0], dims[1], dims[2], dims[3], dims[4]
    T, B = Xt.shape[0], Xt.shape[1]
    TB = T * B
    xu2 = xu.reshape((TB, H))
    for l in range(L):
        o = layer_offset(l, I, H)
        Il = I if l == 0 else H
        UT = _mat(thetaT, o, Il, H)
        WT = _mat(thetaT, o + H * Il, H, H)
        b = theta[o + H * Il + H * H : o + H * Il + H * H + H]
        if l == 0:
            mm(Xt.reshape((TB, I)), UT, xu2)
        else:
            mm(hs[l - 1, 1:].reshape((TB, H)), UT, xu2)
        hs[l, 0] = h0[l]
        for t in range(T):
            mm(hs[l, t], WT, tmp)
            for i in range(B):
                _activate_row(tmp[i], xu[t, i], b, hs[l, t + 1, i], act)
    oV = layer_offset(L, I, H)
    VT = _mat(thetaT, oV, H, O)
    c = theta[oV + O * H : oV + O * H + O]
    z2 = z.reshape((TB, O))
    mm(hs[L - 1, 1:].reshape((TB, H)), VT, z2)
    for r in range(TB):
        for k in range(O):
            z2[r, k] += c[k]


@njit(**JIT)
def head_loss(z, Yt, Mt, head, scale, g):
    """Turn logits z into predictions in place, write g = scale * mask * dL/dz.

    Returns ``scale * sum(mask * loss)``; with ``scale = 1 / B`` that is SPEC.md's
    loss (sum over masked steps, mean over sequences).
    """
    T, B, O = z.shape
    total = 0.0
    for t in range(T):
        for i in range(B):
            m = Mt[t, i]
            zr = z[t, i]
            yr = Yt[t, i]
            gr = g[t, i]
            row = 0.0
            if head == HEAD_SOFTMAX:
                zmax = zr[0]
                for k in range(1, O):
                    zmax = zr[k] if zr[k] > zmax else zmax
                s = 0.0
                for k in range(O):
                    s += exp(zr[k] - zmax)
                log_s = math.log(s)
                for k in range(O):
                    logp = zr[k] - zmax - log_s
                    row -= yr[k] * logp
                    p = exp(logp)
                    zr[k] = p
                    gr[k] = scale * m * (p - yr[k])
            elif head == HEAD_SIGMOID:
                for k in range(O):
                    zk = zr[k]
                    # BCE from the logit: softplus(z) - y z, stable for any z
                    row += (zk if zk > 0.0 else 0.0) - yr[k] * zk + math.log1p(exp(-abs(zk)))
                    p = sigmoid(zk)
                    zr[k] = p
                    gr[k] = scale * m * (p - yr[k])
            else:
                for k in range(O):
                    d = zr[k] - yr[k]
                    row += 0.5 * d * d
                    gr[k] = scale * m * d
            if m != 0.0:
                total += scale * m * row
    return total


# ------------------------------------------------------------------------- backward


@njit(**JIT)
def _delta_step(theta, dims, hs, gv, k, inject, has_next, dcur, dnext, tmp):
    """delta of every layer at step k, top layer first.

    delta^l_k = f'(a^l_k) * ([l top and inject] g_k V + [has_next] delta^l_{k+1} W_l
                             + [l below top] delta^{l+1}_k U_{l+1})
    """
    I, H, L, act = dims[0], dims[1], dims[3], dims[4]
    B = dcur.shape[1]
    for l in range(L - 1, -1, -1):
        e = dcur[l]
        if l == L - 1 and inject:
            e[:, :] = gv[k]
        else:
            e[:, :] = 0.0
        if has_next:
            o = layer_offset(l, I, H)
            Il = I if l == 0 else H
            mm(dnext[l], _mat(theta, o + H * Il, H, H), tmp)
            for i in range(B):
                for j in range(H):
                    e[i, j] += tmp[i, j]
        if l < L - 1:
            mm(dcur[l + 1], _mat(theta, layer_offset(l + 1, I, H), H, H), tmp)
            for i in range(B):
                for j in range(H):
                    e[i, j] += tmp[i, j]
        h = hs[l, k + 1]
        for i in range(B):
            _mul_activation_grad(e[i], h[i], act)


@njit(**JIT)
def backward(theta, dims, K, Xt, hs, g, gv, dsum, dcur, dnext, tmp, grad):
    """BPTT from g = dL/dz; writes every parameter's gradient into ``grad``.

    K < 0: full BPTT, one backward sweep. K >= 0: the loss at step t reaches only
    steps t-K..t (SPEC.md), so each loss origin gets its own sweep of K + 1 steps;
    the deltas of all origins are summed per step (``dsum``), which is all the
    weight gradients need. K >= T - 1 is full BPTT and takes the single sweep.
    """
    I, H, O, L = dims[0], dims[1], dims[2], dims[3]
    T, B = Xt.shape[0], Xt.shape[1]
    TB = T * B
    oV = layer_offset(L, I, H)
    g2 = g.reshape((TB, O))
    mm(g2, _mat(theta, oV, O, H), gv.reshape((TB, H)))
    if K < 0 or K >= T - 1:
        for t in range(T - 1, -1, -1):
            _delta_step(theta, dims, hs, gv, t, True, t < T - 1, dcur, dnext, tmp)
            dsum[:, t] = dcur
            dcur, dnext = dnext, dcur
    else:
        dsum[:, :, :, :] = 0.0
        for t0 in range(T):
            k_min = t0 - K if t0 > K else 0
            for k in range(t0, k_min - 1, -1):
                _delta_step(theta, dims, hs, gv, k, k == t0, k < t0, dcur, dnext, tmp)
                for l in range(L):
                    for i in range(B):
                        for j in range(H):
                            dsum[l, k, i, j] += dcur[l, i, j]
                dcur, dnext = dnext, dcur
    for l in range(L):
        o = layer_offset(l, I, H)
        Il = I if l == 0 else H
        D2 = dsum[l].reshape((TB, H))
        if l == 0:
            mm_tn(D2, Xt.reshape((TB, I)), _mat(grad, o, H, Il))
        else:
            mm_tn(D2, hs[l - 1, 1:].reshape((TB, H)), _mat(grad, o, H, Il))
        mm_tn(D2, hs[l, :T].reshape((TB, H)), _mat(grad, o + H * Il, H, H))
        colsum(D2, grad[o + H * Il + H * H : o + H * Il + H * H + H])
    mm_tn(g2, hs[L - 1, 1:].reshape((TB, H)), _mat(grad, oV, O, H))
    colsum(g2, grad[oV + O * H : oV + O * H + O])


@njit(**JIT)
def loss_grad_slice(theta, thetaT, dims, K, Xt, Yt, Mt, h0, scale, grad, ws):
    """Forward, loss and BPTT over one batch (or one thread's part of it)."""
    hs, xu, tmp, z, g, gv, dsum, dcur, dnext = ws
    forward(theta, thetaT, dims, Xt, h0, hs, xu, tmp, z)
    loss = head_loss(z, Yt, Mt, dims[5], scale, g)
    backward(theta, dims, K, Xt, hs, g, gv, dsum, dcur, dnext, tmp, grad)
    return loss


# -------------------------------------------------------------------------- drivers


@njit(**JIT)
def predict(theta, dims, Xt, h0, hs, z):
    """Forward pass only: states into hs (L, T+1, B, H), predictions into z (T, B, O)."""
    T, B = Xt.shape[0], Xt.shape[1]
    H, O = dims[1], dims[2]
    thetaT = np.empty_like(theta)
    transpose_params(theta, dims, thetaT)
    xu = np.empty((T, B, H), theta.dtype)
    tmp = np.empty((B, H), theta.dtype)
    forward(theta, thetaT, dims, Xt, h0, hs, xu, tmp, z)
    no_target = np.zeros((T, B, O), theta.dtype)
    head_loss(z, no_target, np.zeros((T, B), theta.dtype), dims[5], 0.0, np.empty_like(z))


@njit(**JIT)
def loss_and_grads_serial(theta, dims, K, Xt, Yt, Mt, h0, grad, h_final):
    """Loss (mean over the batch) and its gradient in ``grad``; final states in h_final."""
    T, B = Xt.shape[0], Xt.shape[1]
    thetaT = np.empty_like(theta)
    transpose_params(theta, dims, thetaT)
    ws = workspace(T, B, dims, theta)
    loss = loss_grad_slice(theta, thetaT, dims, K, Xt, Yt, Mt, h0, 1.0 / B, grad, ws)
    h_final[:, :, :] = ws[0][:, T]
    return loss


@njit(**JIT_PARALLEL)
def loss_and_grads_parallel(theta, dims, K, Xt, Yt, Mt, h0, grad, h_final, n_threads):
    """As :func:`loss_and_grads_serial`, with the batch split over ``n_threads``.

    Each thread writes its own gradient row; the rows are summed afterwards in
    thread order, so the result does not depend on scheduling.
    """
    T, B = Xt.shape[0], Xt.shape[1]
    thetaT = np.empty_like(theta)
    transpose_params(theta, dims, thetaT)
    partial = np.empty((n_threads, theta.shape[0]), theta.dtype)
    losses = np.zeros(n_threads)
    for tid in prange(n_threads):
        lo = tid * B // n_threads
        hi = (tid + 1) * B // n_threads
        Xs = np.ascontiguousarray(Xt[:, lo:hi])
        Ys = np.ascontiguousarray(Yt[:, lo:hi])
        Ms = np.ascontiguousarray(Mt[:, lo:hi])
        h0s = np.ascontiguousarray(h0[:, lo:hi])
        ws = workspace(T, hi - lo, dims, theta)
        losses[tid] = loss_grad_slice(theta, thetaT, dims, K, Xs, Ys, Ms, h0s, 1.0 / B, partial[tid], ws)
        h_final[:, lo:hi] = ws[0][:, T]
    grad[:] = 0.0
    loss = 0.0
    for tid in range(n_threads):
        grad += partial[tid]
        loss += losses[tid]
    return loss
