"""RTRL (Williams & Zipser 1989): the exact influence matrix carried forward.

M_t = dh_t/dtheta_rec (H x P, P = H*(I + H + 1), columns in theta's order U, W, b):

    M_t = D_t (W M_{t-1}) + D_t (outer) ahat_t       (the immediate part: row i's parameters on h_i)
    g_t = c_t M_t                                    (c_t = dL_t/dh_t)

M starts at zero and is zeroed where a stream's hidden state is reset (h_{t-1} = 0 then
depends on no parameter). Over a stream with no updates, the sum of g_t is full BPTT's
gradient exactly. The work of a step is the (H, H) @ (H, P) product J_t M: O(H^4); it writes
its result into a second buffer (a product cannot overwrite its own input), and the driver
alternates between the two, copying back into the state at the end of a call.
"""

import numpy as np
from numba import njit

from .. import _online
from ..cells import rnn
from ..config import JIT

NAME = "rtrl"
#: Settings and their defaults (none).
SETTINGS = {}
#: The rule's state arrays, in the order its driver takes them.
STATE = ("influence",)
#: Whether its state holds random draws (then ``rng`` matters).
RANDOM = False


def check_settings(values):
    """The settings with defaults filled in (RTRL has none)."""
    return {}


def settings_array(settings):
    return np.zeros(1)


def blas_work(H, I, O, settings):
    """Multiply-adds of the largest matrix product of a step (W M), for the BLAS thread policy."""
    return H * H * H * (I + H + 1)


def state_shapes(B, H, I, O, settings):
    """name -> shape of each state array (float64)."""
    return {"influence": (B, H, H * (I + H + 1))}


def init_state(arrays, rng, dims, settings, seed):
    """Fill the state arrays of a fresh stream (the influence starts at zero)."""
    arrays["influence"][...] = 0.0


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, M):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    m = I + H + 1
    P = H * m
    HP = H * P
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    ws = np.empty(H * H)
    other = np.empty(B * HP)  # the influence alternates between M and this buffer, a step each
    cur, nxt = M, other
    moved = False  # whether cur is the other buffer
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            for b in range(B):
                mo = b * HP
                if _online.is_reset(R, b, t):
                    cur[mo : mo + HP] = 0.0
                rnn.derivative(act, H, h, b * H, d, b * H)
                rnn.input_hat(I, H, X[b, t], hprev, b * H, ahat)
                rnn.influence_step(H, I, theta, H * I, d, b * H, ahat, cur, mo, nxt, mo, ws, c, b * H, grad, True)
            cur, nxt = nxt, cur
            moved = not moved
            _online.output_grad(dims, B, h, g, grad)
            _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1
    if moved:
        M[:] = cur


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
