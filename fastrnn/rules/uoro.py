"""UORO, unbiased online recurrent optimization (Tallec & Ollivier 2017).

The influence matrix is estimated by a rank-one product, M_t ~ A_t B_t^T with A (H)
and B (P, in theta's layout). With nu_t random signs (H entries, +1 or -1):

    A_t = rho0 J_t A_{t-1} + rho1 nu_t
    B_t = B_{t-1} / rho0 + (nu_t^T D_t (outer) ahat_t) / rho1     (row i: nu_i D_ii ahat_t)
    rho0 = sqrt(|B_{t-1}| / (|J_t A_{t-1}| + eps)) + eps
    rho1 = sqrt(|D_t (outer) ahat_t| / (|nu_t| + eps)) + eps        (norms: Euclidean)
    g_t = (c_t . A_t) B_t

so that E[A_t B_t^T] = M_t given the past: the estimate is unbiased. ``eps`` is the
paper's stabiliser (0 gives vanilla-rtrl's form without it). A and B start as
independent standard normal draws (as vanilla-rtrl's), so E[A_0 B_0^T] = 0, and are
drawn again where a stream's hidden state is reset.
"""

import math

import numpy as np
from numba import njit

from .. import _checks, _online
from ..cells import rnn
from ..config import JIT

NAME = "uoro"
SETTINGS = {"eps": 1e-7}
STATE = ("a", "b")
RANDOM = True


def check_settings(values):
    s = dict(SETTINGS, **values)
    s["eps"] = _checks.check_float("eps", s["eps"], minimum=0.0)
    return s


def settings_array(settings):
    return np.array([settings["eps"]])


def state_shapes(B, H, I, O, settings):
    return {"a": (B, H), "b": (B, H * (I + H + 1))}


@njit(**JIT)
def draw(rng, bi, A, B, H, P):
    """Fresh factors for stream bi: standard normal A and B."""
    _online.fill_normal(rng, bi, A, bi * H, H)
    _online.fill_normal(rng, bi, B, bi * P, P)


def init_state(arrays, rng, dims, settings, seed):
    H, I = int(dims[1]), int(dims[0])
    P = H * (I + H + 1)
    a, b = arrays["a"].reshape(-1), arrays["b"].reshape(-1)
    for bi in range(arrays["a"].shape[0]):
        draw(rng, bi, a, b, H, P)


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, A, Bm):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    m = I + H + 1
    P = H * m
    eps = rs[0]
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    nu = np.empty(H)
    ja = np.empty(H)
    tmp = np.empty(H)
    s = np.empty(H)
    u = np.empty(H)
    nu_norm = math.sqrt(float(H))
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            for b in range(B):
                ao = b * H
                bo = b * P
                if _online.is_reset(R, b, t):
                    draw(rng, b, A, Bm, H, P)
                rnn.derivative(act, H, h, b * H, d, b * H)
                rnn.input_hat(I, H, X[b, t], hprev, b * H, ahat)
                _online.fill_signs(rng, b, nu, B - B, H)
                rnn.jacobian_times(H, theta, H * I, d, b * H, A, ao, 1, ja, B - B, tmp, True)
                bn = _online.sumsq(Bm, bo, P)
                jn = _online.sumsq(ja, B - B, H)
                dn = _online.sumsq(d, b * H, H)
                an = _online.sumsq(ahat, B - B, m)
                rho0 = math.sqrt(math.sqrt(bn) / (math.sqrt(jn) + eps)) + eps
                rho1 = math.sqrt(math.sqrt(dn) * math.sqrt(an) / (nu_norm + eps)) + eps
                ca = 0.0
                for i in range(H):
                    A[ao + i] = rho0 * ja[i] + rho1 * nu[i]
                    ca += c[b * H + i] * A[ao + i]
                    s[i] = 1.0 / rho0
                    u[i] = nu[i] * d[b * H + i] / rho1
                rnn.row_outer(H, I, s, u, B - B, ahat, Bm, bo, 0)
                gr = grad[:P]
                bb = Bm[bo : bo + P]
                for p in range(P):
                    gr[p] += ca * bb[p]
            _online.output_grad(dims, B, h, g, grad)
            _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
