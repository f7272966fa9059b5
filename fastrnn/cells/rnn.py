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

from .._mathfn import sigmoid, tanh
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

TANH, SIGMOID, RELU = 0, 1, 2
ACTIVATIONS = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU}


@njit(**JIT)
def forward_step(act, n, xu, xoff, hw, hs, hoff):
    """hs[hoff + e] = f(hw[e] + xu[xoff + e]) for the n = B*H entries of one step."""
    if act == TANH:
        for e in range(n):
            hs[hoff + e] = tanh(hw[e] + xu[xoff + e])
    elif act == SIGMOID:
        for e in range(n):
            hs[hoff + e] = sigmoid(hw[e] + xu[xoff + e])
    else:
        for e in range(n):
            a = hw[e] + xu[xoff + e]
            hs[hoff + e] = a if a > 0.0 else 0.0


@njit(**JIT)
def backward_step(act, n, dd, dh, hs, hoff, da):
    """dd[da + e] = f'(a) * dd[dh + e], with f'(a) written from h = hs[hoff + e]."""
    if act == TANH:
        for e in range(n):
            h = hs[hoff + e]
            dd[da + e] = dd[dh + e] * (1.0 - h * h)
    elif act == SIGMOID:
        for e in range(n):
            h = hs[hoff + e]
            dd[da + e] = dd[dh + e] * (h * (1.0 - h))
    else:
        for e in range(n):
            dd[da + e] = dd[dh + e] if hs[hoff + e] > 0.0 else 0.0


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
