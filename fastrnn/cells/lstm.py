"""The LSTM cell, PyTorch's ``torch.nn.LSTM``: everything the kernels know about it.

Gates stacked in PyTorch's order i, f, g, o (G = 4), two state vectors (S = 2: h, c)::

    a = xu_t + hw_t,  [i, f, g, o] = [s, s, tanh, s](a)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

with xu_t = U x_t + b (b = PyTorch's bias_ih + bias_hh) and hw_t = W h_{t-1} from
the driver. No extra parameters. Backward, with dh the gradient of h_t the driver
brings and dc_next the carry f_{t+1} * dc_{t+1} of the step after::

    dc = dc_next + dh o (1 - tanh(c_t)^2)
    da = [dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2), dh tanh(c_t) o (1 - o)]
    carry = f dc

dL/d(xu) = dL/d(hw) = da, so the driver keeps one array (``SEPARATE_DAH = False``).
The cache holds i, f, g, o and tanh(c_t) per row and step.
"""

from numba import njit

from .._mathfn import sigmoid, tanh
from ..config import JIT

G = 4
S = 2
EXTRA = 0
CACHE = 5
CARRY = 1
SEPARATE_DAH = False
EXTRA_NAMES = ()


@njit(**JIT)
def forward_step(B, H, xu, xoff, hw, hs, hout, cs, cprev, cout, cache, coff):
    """h_t into hs[hout:] and c_t into cs[cout:] (B, H) from xu_t, hw_t and c_{t-1} (at cprev)."""
    GH = 4 * H
    C = 5 * H
    for i in range(B):
        x0 = xoff + i * GH
        w0 = i * GH
        c0 = coff + i * C
        for j in range(H):
            ig = sigmoid(xu[x0 + j] + hw[w0 + j])
            fg = sigmoid(xu[x0 + H + j] + hw[w0 + H + j])
            gg = tanh(xu[x0 + 2 * H + j] + hw[w0 + 2 * H + j])
            og = sigmoid(xu[x0 + 3 * H + j] + hw[w0 + 3 * H + j])
            c = fg * cs[cprev + i * H + j] + ig * gg
            tc = tanh(c)
            cs[cout + i * H + j] = c
            hs[hout + i * H + j] = og * tc
            cache[c0 + j] = ig
            cache[c0 + H + j] = fg
            cache[c0 + 2 * H + j] = gg
            cache[c0 + 3 * H + j] = og
            cache[c0 + 4 * H + j] = tc


@njit(**JIT)
def backward_step(B, H, dd, dh, has_next, rnext, rcur, da, cs, cprev, cache, coff):
    """da (B, 4H) at dd[da:] (dL/d(xu) = dL/d(hw)) and the carry f * dc at dd[rcur:] (B, H)."""
    GH = 4 * H
    C = 5 * H
    for i in range(B):
        c0 = coff + i * C
        a0 = da + i * GH
        for j in range(H):
            e = i * H + j
            d = dd[dh + e]
            ig = cache[c0 + j]
            fg = cache[c0 + H + j]
            gg = cache[c0 + 2 * H + j]
            og = cache[c0 + 3 * H + j]
            tc = cache[c0 + 4 * H + j]
            dc = d * og * (1.0 - tc * tc)
            if has_next:
                dc += dd[rnext + e]
            dd[a0 + j] = dc * gg * (ig * (1.0 - ig))
            dd[a0 + H + j] = dc * cs[cprev + e] * (fg * (1.0 - fg))
            dd[a0 + 2 * H + j] = dc * ig * (1.0 - gg * gg)
            dd[a0 + 3 * H + j] = d * tc * (og * (1.0 - og))
            dd[rcur + e] = fg * dc
