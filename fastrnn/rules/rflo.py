"""RFLO, random-feedback local online learning (Murray 2019).

An eligibility trace per recurrent parameter, filtered with the inverse time
constant alpha, and an error fed back through a fixed random matrix instead of V^T:

    E_t[(i, j)] = (1 - alpha) E_{t-1}[(i, j)] + alpha D_t,ii ahat_t,j,    ahat_t = [x_t; h_{t-1}; 1]
    e_t = B_fb^T (dL_t/dz_t)                                             (B_fb: O x H)
    g_t[(i, j)] = e_t,i E_t[(i, j)]

fastrnn's cell has no leak, so ``alpha = 1`` (the default) keeps only the immediate
term, as in vanilla-rtrl's reference runs. B_fb (vanilla-rtrl's W_FB) is drawn once
from the seed with N(0, feedback_scale^2 / H) entries: the statistics of V drawn
N(0, 1/fan_in), so that the random feedback is as strong as V's would be (on the Add
task at n_h = 32 and lr 0.03, entries four times larger, N(0, 1/O), left the test loss
above the no-memory line). ``feedback="symmetric"`` uses V itself (then e_t = c_t,
and with alpha = 1 the rule is the gradient truncated to one step). The trace is
zeroed where a stream's hidden state is reset.
"""

import numpy as np
from numba import njit

from .. import _checks, _online
from ..cells import rnn
from ..config import JIT
from ..exceptions import InvalidArgument

NAME = "rflo"
SETTINGS = {"alpha": 1.0, "feedback": "random", "feedback_scale": 1.0}
STATE = ("trace", "feedback")
RANDOM = False
FEEDBACK = {"random": 0, "symmetric": 1}


def check_settings(values):
    s = dict(SETTINGS, **values)
    s["alpha"] = _checks.check_float("alpha", s["alpha"], positive=True)
    if s["alpha"] > 1.0:
        raise InvalidArgument(f"alpha must be in (0, 1] (the trace's inverse time constant), got {s['alpha']}")
    s["feedback"] = _checks.check_choice("feedback", s["feedback"], tuple(FEEDBACK))
    s["feedback_scale"] = _checks.check_float("feedback_scale", s["feedback_scale"], positive=True)
    return s


def settings_array(settings):
    return np.array([settings["alpha"], float(FEEDBACK[settings["feedback"]])])


def state_shapes(B, H, I, O, settings):
    return {"trace": (B, H * (I + H + 1)), "feedback": (O, H)}


def init_state(arrays, rng, dims, settings, seed):
    """The trace starts at zero; B_fb is drawn from ``seed`` (its own stream of it)."""
    H = int(dims[1])
    arrays["trace"][...] = 0.0
    gen = np.random.default_rng(np.random.SeedSequence([int(seed), 0x52464C4F]))
    arrays["feedback"][...] = gen.normal(0.0, settings["feedback_scale"] / np.sqrt(H), arrays["feedback"].shape)


@njit(**JIT)
def run(theta, dims, X, Y, R, h, rng, ctl, hyper, counters, opt_state, rs, losses, grad, grad_sum, train, E, Bfb):
    B, N = X.shape[0], X.shape[1]
    I, H, O, act = dims[0], dims[1], dims[2], dims[4]
    P = H * (I + H + 1)
    alpha = rs[0]
    symmetric = rs[1] != 0.0
    xu, hw, hprev, z, g, c, d, ahat, ones = _online.scratch(B, H, I, O)
    keep = np.empty(H)
    for i in range(H):
        keep[i] = 1.0 - alpha
    e = np.empty(H)
    fb = Bfb  # (O, H), flat
    fused = _online.sgd_in_pass(B, ctl)
    for t in range(N):
        _online.forward(theta, dims, X, R, t, h, hprev, xu, hw)
        _online.head(theta, dims, Y, t, h, z, g, c, ones, losses)
        if train:
            for b in range(B):
                mo = b * P
                if _online.is_reset(R, b, t):
                    E[mo : mo + P] = 0.0
                rnn.derivative(act, H, h, b * H, d, b * H)
                for i in range(H):
                    d[b * H + i] *= alpha
                rnn.input_hat(I, H, X[b, t], hprev, b * H, ahat)
                sig = c
                so = b * H
                if not symmetric:
                    for i in range(H):
                        e[i] = 0.0
                    for k in range(O):
                        gk = g[b * O + k]
                        row = fb[k * H : (k + 1) * H]
                        for i in range(H):
                            e[i] += gk * row[i]
                    sig = e
                    so = B - B
                if fused:
                    rnn.row_outer_scale_step(H, I, keep, d, b * H, ahat, E, mo, sig, so, theta, ctl[0])
                else:
                    rnn.row_outer_scale_add(H, I, keep, d, b * H, ahat, E, mo, sig, so, grad, 0)
            _online.output_grad(dims, B, h, g, grad)
            if fused:
                _online.update_rest(theta, grad, counters, ctl[0], P)
            else:
                _online.update(theta, grad, grad_sum, ctl, hyper, counters, opt_state)
        counters[0] += 1


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
