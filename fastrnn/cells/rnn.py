"""The vanilla (Elman) cell: everything the kernels know about it.

    a_t = xu_t + hw_t,   h_t = f(a_t)      with xu_t = U x_t + b and hw_t = W h_{t-1}

One gate (G = 1), one state vector per layer (S = 1: h), no extra parameters and
no per-step cache: f'(a_t) is recomputed from h_t in the backward step. The
driver (fastrnn._kernels) computes xu and hw; this module does the elementwise
rest. Both derivatives the driver needs are the same array here,
dL/d(xu_t) = dL/d(hw_t) = f'(a_t) * dh_t, so the driver keeps one of them
(``SEPARATE_DAH = False``) and pays for no copy.
"""

from numba import njit

from .. import _simd, activations
from ..config import JIT

#: Gates (xu and hw are G*H wide), state vectors per layer, entries (in units of H)
#: of per-layer extra parameters, of the per-step cache and of the direct
#: state-gradient carried from step t to t-1 outside W.
G = 1
S = 1
EXTRA = 0
CACHE = 0
CARRY = 0
#: Whether dL/d(hw) differs from dL/d(xu) (the driver then keeps both).
SEPARATE_DAH = False
#: Names of the per-layer extra parameter vectors (each H long), in layout order.
EXTRA_NAMES = ()

#: name -> code of the activations f (the registry's, fastrnn.activations).
ACTIVATIONS = activations.ACTIVATIONS
TANH, SIGMOID, RELU = ACTIVATIONS["tanh"], ACTIVATIONS["sigmoid"], ACTIVATIONS["relu"]

#: ``forward_step(act, n, xu, xoff, hw, hs, hoff)``: hs[hoff + e] = f(hw[e] + xu[xoff + e]) for the
#: n = B*H entries of one step; one loop per registered activation (an unknown code raises).
#: The loop indexes views of the step's entries, not ``hs[hoff + e]``: numba makes a signed index
#: ``i if i >= 0 else i + len``, and for ``hoff + e`` LLVM cannot drop that select, which kept the
#: loop (and its activation) scalar (see fastrnn._linalg).
forward_step = activations.by_activation("forward_step", "n, xu, xoff, hw, hs, hoff", """
h = hs[hoff : hoff + n]
a = xu[xoff : xoff + n]
for e in range(n):
    h[e] = F(hw[e] + a[e])
""", globals(), "hs[hoff + e] = f(hw[e] + xu[xoff + e]) for the n = B*H entries of one step.")

#: ``backward_step(act, n, dd, dh, hs, hoff, da)``: dd[da + e] = f'(a) * dd[dh + e], with f'(a)
#: written from h = hs[hoff + e].
backward_step = activations.by_activation("backward_step", "n, dd, dh, hs, hoff, da", """
h = hs[hoff : hoff + n]
d = dd[dh : dh + n]
out = dd[da : da + n]
for e in range(n):
    out[e] = d[e] * DF(h[e])
""", globals(), "dd[da + e] = f'(a) * dd[dh + e], with f'(a) written from h = hs[hoff + e].")



# ------------------------------------------------------------------ forward mode
#
# The pieces the online learning rules (fastrnn.rules) build on, written once here.
# Notation of Marschall, Cho & Savin (2020): D_t = diag(f'(a_t)), the one-step Jacobian J_t = D_t W,
# and the immediate influence of the recurrent parameters, D_t (outer) ahat_t with
# ahat_t = [x_t; h_{t-1}; 1]. A matrix "in theta's layout" has one column per
# recurrent parameter in the order of theta (U (H, I), then W (H, H), then b (H)):
# the parameter of row i and ahat-entry j sits at p(i, j) = i*I + j for the inputs
# (j < I), H*I + i*H + (j - I) for the states (I <= j < I + H) and H*(I + H) + i for
# the bias (j = I + H).


#: ``derivative(act, n, hs, hoff, d, doff)``: d[doff + e] = f'(a) for the n entries of one step,
#: written from h = hs[hoff + e] (D_t); one loop per registered activation.
derivative = activations.by_activation("derivative", "n, hs, hoff, d, doff", """
for e in range(n):
    d[doff + e] = DF(hs[hoff + e])
""", globals(), "d[doff + e] = f'(a) for the n entries of one step, written from h = hs[hoff + e] (D_t).")


@njit(**JIT)
def input_hat(I, H, x, hprev, hoff, ahat):
    """ahat (I + H + 1) = [x_t; h_{t-1}; 1], h_{t-1} = hprev[hoff:hoff + H]: what each row's
    parameters multiply (in theta's order U, W, b)."""
    for q in range(I):
        ahat[q] = x[q]
    for j in range(H):
        ahat[I + j] = hprev[hoff + j]
    ahat[I + H] = 1.0


@njit(**JIT)
def jacobian(H, theta, woff, d, doff, ws):
    """ws[:H*H] (H, H) = J_t = D_t W, W = theta[woff:] (H, H): row i of W scaled by d[doff + i]."""
    for i in range(H):
        di = d[doff + i]
        w = theta[woff + i * H : woff + (i + 1) * H]
        o = ws[i * H : (i + 1) * H]
        for k in range(H):
            o[k] = di * w[k]


@njit(**JIT)
def jacobian_times(H, theta, woff, d, doff, src, soff, ncols, dst, dstoff, tmp, blas):
    """dst[dstoff:] (H, ncols) = J_t src, src = src[soff:] (H, ncols), W = theta[woff:] (H, H).

    A vector (ncols 1) is D_t (W src) (:func:`fastrnn._simd.matvec`), through ``tmp`` (H
    entries), so dst may be src. A
    matrix is (D_t W) src: :func:`jacobian` into ``tmp`` (H * H entries), then one product
    straight into dst, which must then be another buffer than src (:func:`fastrnn._simd.product`:
    the vector kernel where it is the faster, else BLAS from fastrnn._linalg's size on).
    """
    if ncols == 1:  # a vector: fastrnn._simd's matrix-vector product (mm's one-column loop is one chain of adds a row)
        _simd.matvec(theta, woff, H, H, src, soff, tmp, soff - soff)
        for i in range(H):
            dst[dstoff + i] = d[doff + i] * tmp[i]
        return
    jacobian(H, theta, woff, d, doff, tmp)
    _simd.product(tmp, soff - soff, H, H, src, soff, ncols, dst, dstoff, blas)


@njit(**JIT)
def row_outer(H, I, s, u, uoff, a, out, ooff, rstride):
    """For every row i and ahat-entry j: out[ooff + i*rstride + p(i, j)] = s[i] out[...] + u[uoff + i] a[j].

    With a = ahat_t and u = D_t this adds the immediate influence of row i's parameters
    on h_i: into a vector in theta's layout (rstride 0), or into row i of an (H, P)
    influence matrix in theta's layout (rstride P). ``s`` rescales the old entries
    first (ones to keep them).
    """
    m = I + H
    for i in range(H):
        si = s[i]
        ui = u[uoff + i]
        base = ooff + i * rstride
        ou = out[base + i * I : base + (i + 1) * I]
        for q in range(I):
            ou[q] = si * ou[q] + ui * a[q]
        ow = out[base + H * I + i * H : base + H * I + (i + 1) * H]
        for j in range(H):
            ow[j] = si * ow[j] + ui * a[I + j]
        k = base + H * m + i
        out[k] = si * out[k] + ui * a[m]


@njit(**JIT)
def row_outer_scale_add(H, I, s, u, uoff, a, m, moff, v, voff, out, ooff):
    """:func:`row_outer` of a vector in theta's layout, then :func:`row_scale_add` of it, in one pass:
    m[moff + p(i, j)] = s[i] m[...] + u[uoff + i] a[j], then out[ooff + p(i, j)] += v[voff + i] m[...]
    (each entry's numbers as the two pieces give them, one after the other)."""
    k = I + H
    for i in range(H):
        si = s[i]
        ui = u[uoff + i]
        vi = v[voff + i]
        mu = m[moff + i * I : moff + (i + 1) * I]
        ou = out[ooff + i * I : ooff + (i + 1) * I]
        for q in range(I):
            e = si * mu[q] + ui * a[q]
            mu[q] = e
            ou[q] += vi * e
        mw = m[moff + H * I + i * H : moff + H * I + (i + 1) * H]
        ow = out[ooff + H * I + i * H : ooff + H * I + (i + 1) * H]
        aw = a[I : I + H]
        for j in range(H):
            e = si * mw[j] + ui * aw[j]
            mw[j] = e
            ow[j] += vi * e
        e = si * m[moff + H * k + i] + ui * a[k]
        m[moff + H * k + i] = e
        out[ooff + H * k + i] += vi * e


@njit(**JIT)
def row_outer_scale_step(H, I, s, u, uoff, a, m, moff, v, voff, theta, lr):
    """:func:`row_outer` of a vector in theta's layout, then plain SGD with the gradient that
    :func:`row_scale_add` would add into a cleared buffer, in one pass:
    m[moff + p(i, j)] = s[i] m[...] + u[uoff + i] a[j], theta[p(i, j)] -= lr (0 + v[voff + i] m[...]).

    The numbers of the pieces one after the other (gradient buffer at zero, then
    :mod:`fastrnn.optimizers.sgd`'s update), without the buffer: for a rule whose gradient of
    these entries is this one term (one stream, no clipping, no accumulation)."""
    k = I + H
    for i in range(H):
        si = s[i]
        ui = u[uoff + i]
        vi = v[voff + i]
        mu = m[moff + i * I : moff + (i + 1) * I]
        tu = theta[i * I : (i + 1) * I]
        for q in range(I):
            e = si * mu[q] + ui * a[q]
            mu[q] = e
            tu[q] -= lr * (0.0 + vi * e)
        mw = m[moff + H * I + i * H : moff + H * I + (i + 1) * H]
        tw = theta[H * I + i * H : H * I + (i + 1) * H]
        aw = a[I : I + H]
        for j in range(H):
            e = si * mw[j] + ui * aw[j]
            mw[j] = e
            tw[j] -= lr * (0.0 + vi * e)
        e = si * m[moff + H * k + i] + ui * a[k]
        m[moff + H * k + i] = e
        theta[H * k + i] -= lr * (0.0 + vi * e)


@njit(**JIT)
def outer_step(H, I, u, uoff, a, theta, lr):
    """Plain SGD with the gradient that :func:`row_outer` (unit scale, rstride 0) would add into a
    cleared buffer, in one pass: theta[p(i, j)] -= lr (0 + u[uoff + i] a[j]) (the numbers of the
    pieces one after the other, as :func:`row_outer_scale_step`)."""
    k = I + H
    for i in range(H):
        ui = u[uoff + i]
        tu = theta[i * I : (i + 1) * I]
        for q in range(I):
            tu[q] -= lr * (0.0 + ui * a[q])
        tw = theta[H * I + i * H : H * I + (i + 1) * H]
        aw = a[I : I + H]
        for j in range(H):
            tw[j] -= lr * (0.0 + ui * aw[j])
        theta[H * k + i] -= lr * (0.0 + ui * a[k])


@njit(**JIT)
def influence_step(H, I, theta, woff, d, doff, a, src, soff, dst, dstoff, ws, c, coff, grad, blas):
    """RTRL's step of an (H, P) influence matrix in theta's layout, P = H*(I + H + 1), and its
    gradient: dst[dstoff:] = J_t src[soff:] + D_t (outer) a (:func:`jacobian_times`, then
    :func:`row_outer` with unit scale), then grad[:P] += c[coff:coff + H]^T dst.

    The product (D_t W) src (``ws``: H * H entries) goes straight into dst, which must be
    another buffer than src (a driver alternates two); then one sweep row by row (a row in
    cache) adds the immediate influence and the row times c_i into grad.
    """
    P = H * (I + H + 1)
    jacobian_times(H, theta, woff, d, doff, src, soff, P, dst, dstoff, ws, blas)
    gr = grad[:P]
    aw = a[I : I + H]
    for i in range(H):
        di = d[doff + i]
        ci = c[coff + i]
        out = dst[dstoff + i * P : dstoff + (i + 1) * P]
        ou = out[i * I : (i + 1) * I]
        for q in range(I):
            ou[q] = ou[q] + di * a[q]
        ow = out[H * I + i * H : H * I + (i + 1) * H]
        for j in range(H):
            ow[j] = ow[j] + di * aw[j]
        out[H * (I + H) + i] = out[H * (I + H) + i] + di * a[I + H]
        for p in range(P):
            gr[p] += ci * out[p]


@njit(**JIT)
def row_scale_add(H, I, u, uoff, src, soff, out, ooff):
    """out[ooff + p(i, j)] += u[uoff + i] src[soff + p(i, j)]: each row's parameters scaled by u_i
    (a vector in theta's layout turned into a gradient by the signal reaching h_i)."""
    for i in range(H):
        ui = u[uoff + i]
        su = src[soff + i * I : soff + (i + 1) * I]
        ou = out[ooff + i * I : ooff + (i + 1) * I]
        for q in range(I):
            ou[q] += ui * su[q]
        sw = src[soff + H * I + i * H : soff + H * I + (i + 1) * H]
        ow = out[ooff + H * I + i * H : ooff + H * I + (i + 1) * H]
        for j in range(H):
            ow[j] += ui * sw[j]
        out[ooff + H * (I + H) + i] += ui * src[soff + H * (I + H) + i]



@njit(**JIT)
def add_rows(H, I, G, goff, out, ooff):
    """out[ooff + p(i, j)] += G[goff + i*(I + H + 1) + j]: a gradient held as the matrix
    [U | W | b] (H, I + H + 1), rows over ahat's entries, added into theta's layout."""
    m = I + H + 1
    for i in range(H):
        gr = G[goff + i * m : goff + (i + 1) * m]
        ou = out[ooff + i * I : ooff + (i + 1) * I]
        for q in range(I):
            ou[q] += gr[q]
        ow = out[ooff + H * I + i * H : ooff + H * I + (i + 1) * H]
        for j in range(H):
            ow[j] += gr[I + j]
        out[ooff + H * (I + H) + i] += gr[I + H]


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
