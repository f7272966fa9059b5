"""BPTT(k1, k2) (Williams & Peng 1990): truncated backpropagation with stored states.

Every step's ahat_t = [x_t; h_{t-1}; 1], h_t and output error dL/dz_t are stored, as
computed with the weights of their time, in a ring of the last k2 steps. Every k1
training steps the losses of the last k1 steps are backpropagated through the last
k2 stored steps (fewer at the start of a stream), with the current weights:

    delta_s = D_s (V^T g_s [s among the last k1 steps] + W^T delta_{s+1})
    grad[(i, j)] += delta_s,i ahat_s,j          grad[V] += g_s h_s^T, grad[c] += g_s  (last k1 steps)

and the weights are updated once. k1 = k2 = K is the window mode (fastrnn's windows
of K steps with the state carried: a loop of ``loss_and_grads`` over windows).
V and c get the gradient of the same k1 losses as U, W and b. k2 >= k1 >= 1.

No gradient flows back past a step where a stream's hidden state was reset (the
losses before the reset still reach their own past). A test phase (``train=False``)
stores nothing and forgets the history and the unfinished window, so training that
resumes after it starts a fresh window.
"""

import numpy as np
from numba import njit

from .. import _checks, _online, _simd
from ..cells import rnn
from ..config import JIT
from ..exceptions import InvalidArgument

NAME = "bptt"
SETTINGS = {"k1": 10, "k2": 10}
STATE = ("ahat", "h", "g", "start", "count", "clock")
RANDOM = False


def check_settings(values):
    s = dict(SETTINGS, **values)
    s["k1"] = _checks.check_int("k1", s["k1"], minimum=1)
    s["k2"] = _checks.check_int("k2", s["k2"], minimum=1)
    if s["k2"] < s["k1"]:
        raise InvalidArgument(f"k2 must be at least k1 (the losses of the last k1 steps are backpropagated through the last "
                              f"k2 steps), got k1={s['k1']}, k2={s['k2']}")
    return s


def settings_array(settings):
    return np.array([float(settings["k1"]), float(settings["k2"])])


def state_shapes(B, H, I, O, settings):
    k2 = settings["k2"]
    return {"ahat": (B, k2, I + H + 1), "h": (B, k2, H), "g": (B, k2, O), "start": (B, k2), "count": (B,), "clock": (2,)}


def init_state(arrays, rng, dims, settings, seed):
    """Empty history: ``count`` (stored steps a stream) 0; ``clock`` = [next ring slot, steps since the last update];
    ``start`` marks the stored steps that began from a reset (h_{t-1} = 0): no gradient flows back past them."""
    for a in arrays.values():
        a[...] = 0.0


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, AH, HS, GS, ST,
        count, clock):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    m = I + H + 1
    oW = H * I
    oV = H * m
    oc = oV + O * H
    k1 = int(rs[0])
    k2 = int(rs[1])
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    dd = np.empty(2 * H)  # dL/dh of a step, then its delta (cells.rnn.backward_step's one buffer)
    deltas = np.empty(H * k2)  # delta_s of a stream's stored steps, (H, k2): column = ring slot (zero where none)
    gm = np.empty(H * m)
    if not train:
        for b in range(B):
            count[b] = 0.0
        clock[1] = 0.0
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            slot = int(clock[0])
            for b in range(B):
                ST[b * k2 + slot] = 1.0 if _online.is_reset(R, b, t) else 0.0
                rnn.input_hat(I, H, X[b, t], hprev, b * H, AH[(b * k2 + slot) * m : (b * k2 + slot + 1) * m])
                hs = HS[(b * k2 + slot) * H : (b * k2 + slot + 1) * H]
                for j in range(H):
                    hs[j] = h[b * H + j]
                gs = GS[(b * k2 + slot) * O : (b * k2 + slot + 1) * O]
                for k in range(O):
                    gs[k] = g[b * O + k]
                if count[b] < k2:
                    count[b] += 1.0
            clock[0] = float((slot + 1) % k2)
            clock[1] += 1.0
            if clock[1] >= k1:
                for b in range(B):
                    n = int(count[b])
                    deltas[:] = 0.0
                    for r in range(n):
                        sl = (slot - r + k2) % k2
                        row = b * k2 + sl
                        if r > 0 and ST[b * k2 + (sl + 1) % k2] == 0.0:  # dh = W^T delta_{s+1}, a (1, H) @ (H, H) product
                            _simd.mm(dd, H, 1, H, theta, oW, H, dd, B - B)
                        else:
                            for i in range(H):
                                dd[i] = 0.0
                        hs = HS[row * H : (row + 1) * H]
                        if r < k1:
                            for k in range(O):
                                gk = GS[row * O + k]
                                v = theta[oV + k * H : oV + (k + 1) * H]
                                gv = grad[oV + k * H : oV + (k + 1) * H]
                                for j in range(H):
                                    dd[j] += gk * v[j]
                                    gv[j] += gk * hs[j]
                                grad[oc + k] += gk
                        rnn.backward_step(act, H, dd, B - B, hs, B - B, H)  # delta = f'(a) * dh: the cell's own step
                        for i in range(H):
                            deltas[i * k2 + sl] = dd[H + i]
                    # [U | W | b] gradient: sum over the stored steps of delta_s ahat_s^T, one (H, k2) @ (k2, m) product
                    _simd.product(deltas, B - B, H, k2, AH, b * k2 * m, m, gm, B - B, True)
                    rnn.add_rows(H, I, gm, B - B, grad, B - B)
                clock[1] = 0.0
                _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
