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
    """h_t into hs[hout:] and c_t into cs[cout:] (B, H) from xu_t, hw_t and c_{t-1} (at cprev).

    Row views, not ``buffer[offset + j]``, so that the loops vectorise (see
    :func:`fastrnn.cells.gru.forward_step`).
    """
    GH = 4 * H
    C = 5 * H
    for i in range(B):
        x = xu[xoff + i * GH : xoff + (i + 1) * GH]
        w = hw[i * GH : (i + 1) * GH]
        ca = cache[coff + i * C : coff + (i + 1) * C]
        cp = cs[cprev + i * H : cprev + (i + 1) * H]
        co = cs[cout + i * H : cout + (i + 1) * H]
        ho = hs[hout + i * H : hout + (i + 1) * H]
        for j in range(2 * H):  # i and f
            ca[j] = sigmoid(x[j] + w[j])
        for j in range(H):
            ca[2 * H + j] = tanh(x[2 * H + j] + w[2 * H + j])
        for j in range(H):
            ca[3 * H + j] = sigmoid(x[3 * H + j] + w[3 * H + j])
        for j in range(H):
            co[j] = ca[H + j] * cp[j] + ca[j] * ca[2 * H + j]
        for j in range(H):
            tc = tanh(co[j])
            ca[4 * H + j] = tc
            ho[j] = ca[3 * H + j] * tc


@njit(**JIT)
def backward_step(B, H, dd, dh, has_next, rnext, rcur, da, cs, cprev, cache, coff):
    """da (B, 4H) at dd[da:] (dL/d(xu) = dL/d(hw)) and the carry f * dc at dd[rcur:] (B, H).

    Row views, as in :func:`forward_step`; without ``has_next`` the carry of step
    t+1 is not read (a select: that memory is not set then).
    """
    GH = 4 * H
    C = 5 * H
    for i in range(B):
        ca = cache[coff + i * C : coff + (i + 1) * C]
        a = dd[da + i * GH : da + (i + 1) * GH]
        d_in = dd[dh + i * H : dh + (i + 1) * H]
        rn = dd[rnext + i * H : rnext + (i + 1) * H]
        rc = dd[rcur + i * H : rcur + (i + 1) * H]
        cp = cs[cprev + i * H : cprev + (i + 1) * H]
        for j in range(H):
            d = d_in[j]
            og = ca[3 * H + j]
            tc = ca[4 * H + j]
            dc0 = d * og * (1.0 - tc * tc)
            dc = dc0 + rn[j] if has_next else dc0
            a[3 * H + j] = d * tc * (og * (1.0 - og))
            ig = ca[j]
            fg = ca[H + j]
            gg = ca[2 * H + j]
            a[j] = dc * gg * (ig * (1.0 - ig))
            a[H + j] = dc * cp[j] * (fg * (1.0 - fg))
            a[2 * H + j] = dc * ig * (1.0 - gg * gg)
            rc[j] = fg * dc


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
