"""KF-RTRL, Kronecker-factored RTRL (Mujika, Meier & Steger 2018), as vanilla-rtrl writes it.

The influence matrix is estimated as M_t ~ A_t (x) B_t, i.e. M_t[i, (k, j)] = B_t[i, k] A_t,j,
with A (I + H + 1, in the order of ahat_t = [x_t; h_{t-1}; 1]) and B (H, H). With two
random signs nu0, nu1 (+1 or -1) a step:

    A_t = nu0 p0 A_{t-1} + nu1 p1 ahat_t
    B_t = (nu0 / p0) J_t B_{t-1} + (nu1 / p1) D_t
    p0 = sqrt(|J_t B_{t-1}| / (|A_{t-1}| + eps)) + eps
    p1 = sqrt(|D_t| / (|ahat_t| + eps)) + eps                      (norms: Frobenius)
    g_t[(k, j)] = (c_t B_t)_k A_t,j

so that E[A_t (x) B_t] = J_t (A_{t-1} (x) B_{t-1}) + ahat_t (x) D_t given the past.
``eps`` (0 gives vanilla-rtrl's form) keeps the factors finite. A and B start as
independent standard normal draws (vanilla-rtrl's), and are drawn again where a
stream's hidden state is reset. J_t B is an (H, H) @ (H, H) product: O(H^3) a step.
"""

import math

import numpy as np
from numba import njit

from .. import _checks, _online
from ..cells import rnn
from ..config import JIT

NAME = "kf-rtrl"
SETTINGS = {"eps": 1e-7}
STATE = ("a", "b")
RANDOM = True


def check_settings(values):
    s = dict(SETTINGS, **values)
    s["eps"] = _checks.check_float("eps", s["eps"], minimum=0.0)
    return s


def settings_array(settings):
    return np.array([settings["eps"]])


def blas_work(H, I, O, settings):
    """Multiply-adds of the largest matrix product of a step (W times the (H, H) factor), for the BLAS thread policy."""
    return H * H * H


def state_shapes(B, H, I, O, settings):
    return {"a": (B, I + H + 1), "b": (B, H, H)}


@njit(**JIT)
def draw(rng, bi, A, Bm, m, H):
    """Fresh factors for stream bi: standard normal A (m) and B (H, H)."""
    _online.fill_normal(rng, bi, A, bi * m, m)
    _online.fill_normal(rng, bi, Bm, bi * H * H, H * H)


def init_state(arrays, rng, dims, settings, seed):
    I, H = int(dims[0]), int(dims[1])
    a, b = arrays["a"].reshape(-1), arrays["b"].reshape(-1)
    for bi in range(arrays["a"].shape[0]):
        draw(rng, bi, a, b, I + H + 1, H)


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, A, Bm):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    m = I + H + 1
    HH = H * H
    eps = rs[0]
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    nu = np.empty(2)
    bf = np.empty(HH)
    tmp = np.empty(HH)
    qb = np.empty(H)
    fused = _online.sgd_in_pass(B, ctl)
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            for b in range(B):
                ao = b * m
                bo = b * HH
                if _online.is_reset(R, b, t):
                    draw(rng, b, A, Bm, m, H)
                rnn.derivative(act, H, h, b * H, d, b * H)
                rnn.input_hat(I, H, X[b, t], hprev, b * H, ahat)
                _online.fill_signs(rng, b, nu, B - B, 2)
                rnn.jacobian_times(H, theta, H * I, d, b * H, Bm, bo, H, bf, B - B, tmp, True)
                fn = _online.sumsq(bf, B - B, HH)
                an = _online.sumsq(A, ao, m)
                hn = _online.sumsq(ahat, B - B, m)
                dn = _online.sumsq(d, b * H, H)
                p0 = math.sqrt(math.sqrt(fn) / (math.sqrt(an) + eps)) + eps
                p1 = math.sqrt(math.sqrt(dn) / (math.sqrt(hn) + eps)) + eps
                c0 = nu[0] * p0
                c1 = nu[1] * p1
                for j in range(m):
                    A[ao + j] = c0 * A[ao + j] + c1 * ahat[j]
                f0 = nu[0] / p0
                f1 = nu[1] / p1
                for k in range(H):
                    qb[k] = 0.0
                for i in range(H):  # B_t and c_t B_t in one pass over the rows, the diagonal term after
                    ci = c[b * H + i]
                    src = bf[i * H : (i + 1) * H]
                    row = Bm[bo + i * H : bo + (i + 1) * H]
                    for k in range(H):
                        e = f0 * src[k]
                        row[k] = e
                        qb[k] += ci * e
                    e = f1 * d[b * H + i]
                    row[i] += e
                    qb[i] += ci * e
                if fused:
                    rnn.outer_step(H, I, qb, B - B, A[ao : ao + m], theta, ctl[0])
                else:
                    rnn.row_outer(H, I, ones, qb, B - B, A[ao : ao + m], grad, B - B, 0)
            _online.output_grad(dims, B, h, g, grad)
            if fused:
                _online.update_rest(theta, grad, counters, ctl[0], H * m)
            else:
                _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
