"""SnAp-1 (Menick et al. 2021): RTRL with the influence matrix kept to the one-step pattern.

For a dense vanilla cell the one-step Jacobian's pattern keeps only the influence of
row i's parameters (U_i., W_i., b_i) on h_i, one number per parameter:

    M_t[i, (i, j)] = D_t,ii (W_ii M_{t-1}[i, (i, j)] + ahat_t,j),    ahat_t = [x_t; h_{t-1}; 1]
    g_t[(i, j)] = c_t,i M_t[i, (i, j)]

which is RTRL's update with M masked to that pattern after each step. The state is
one vector in theta's layout (P = H*(I + H + 1) entries a stream), zeroed where a
stream's hidden state is reset. O(H (I + H)) work a step.
"""

import numpy as np
from numba import njit

from .. import _online
from ..cells import rnn
from ..config import JIT

NAME = "snap1"
SETTINGS = {}
STATE = ("influence",)
RANDOM = False


def check_settings(values):
    return {}


def settings_array(settings):
    return np.zeros(1)


def state_shapes(B, H, I, O, settings):
    return {"influence": (B, H * (I + H + 1))}


def init_state(arrays, rng, dims, settings, seed):
    arrays["influence"][...] = 0.0


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, M):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    P = H * (I + H + 1)
    oW = H * I
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    s = np.empty(H)
    fused = _online.sgd_in_pass(B, ctl)
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            for b in range(B):
                mo = b * P
                if _online.is_reset(R, b, t):
                    M[mo : mo + P] = 0.0
                rnn.derivative(act, H, h, b * H, d, b * H)
                rnn.input_hat(I, H, X[b, t], hprev, b * H, ahat)
                for i in range(H):
                    s[i] = d[b * H + i] * theta[oW + i * H + i]
                if fused:
                    rnn.row_outer_scale_step(H, I, s, d, b * H, ahat, M, mo, c, b * H, theta, ctl[0])
                else:
                    rnn.row_outer_scale_add(H, I, s, d, b * H, ahat, M, mo, c, b * H, grad, 0)
            _online.output_grad(dims, B, h, g, grad)
            if fused:
                _online.update_rest(theta, grad, counters, ctl[0], P)
            else:
                _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
