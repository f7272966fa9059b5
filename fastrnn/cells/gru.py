"""The GRU cell, PyTorch's ``torch.nn.GRU``: everything the kernels know about it.

Gates stacked in PyTorch's order r, z, n (G = 3), one state vector (S = 1: h)::

    r = s(xu_r + hw_r),  z = s(xu_z + hw_z),  n = tanh(xu_n + r * (hw_n + bn))
    h_t = (1 - z) * n + z * h_{t-1}

with xu_t = U x_t + b and hw_t = W h_{t-1} from the driver. ``b`` holds PyTorch's
bias_ih + bias_hh for r and z and bias_in for n; the extra vector ``bn`` (H,) is
PyTorch's bias_hn, which r multiplies, so it cannot fold into b.

Backward, with dh the whole gradient of h_t (what the driver brings plus the
carry z_{t+1} * dh_{t+1} of the step after)::

    da_n = dh (1 - z)(1 - n^2),  da_z = dh (h_{t-1} - n) z (1 - z),  da_r = da_n (hw_n + bn) r (1 - r)
    dL/d(xu) = [da_r, da_z, da_n],   dL/d(hw) = [da_r, da_z, r da_n],   carry = z dh

so dL/d(hw) differs from dL/d(xu) in its n block (``SEPARATE_DAH``), and
dL/d(bn) is the column sum of that n block (:func:`extras_grad`).
"""

from numba import njit

from .._mathfn import sigmoid, tanh
from ..config import JIT

G = 3
S = 1
EXTRA = 1
#: per row and step: r, z, n and hw_n + bn
CACHE = 4
CARRY = 1
SEPARATE_DAH = True
EXTRA_NAMES = ("bn",)


@njit(**JIT)
def forward_step(B, H, xu, xoff, hw, theta, eoff, hs, hprev, hout, cache, coff):
    """h_t (B, H) into hs[hout:] from xu_t (at xoff), hw_t and h_{t-1} (at hprev); cache r, z, n, hw_n + bn."""
    GH = 3 * H
    C = 4 * H
    for i in range(B):
        x0 = xoff + i * GH
        w0 = i * GH
        c0 = coff + i * C
        for j in range(H):
            r = sigmoid(xu[x0 + j] + hw[w0 + j])
            z = sigmoid(xu[x0 + H + j] + hw[w0 + H + j])
            hn = hw[w0 + 2 * H + j] + theta[eoff + j]
            n = tanh(xu[x0 + 2 * H + j] + r * hn)
            hs[hout + i * H + j] = (1.0 - z) * n + z * hs[hprev + i * H + j]
            cache[c0 + j] = r
            cache[c0 + H + j] = z
            cache[c0 + 2 * H + j] = n
            cache[c0 + 3 * H + j] = hn


@njit(**JIT)
def backward_step(B, H, dd, dh, has_next, rnext, rcur, dax, dah, hs, hprev, cache, coff):
    """da_x at dd[dax:], da_h at dd[dah:] (B, 3H) and the carry z * dh at dd[rcur:] (B, H)."""
    GH = 3 * H
    C = 4 * H
    for i in range(B):
        c0 = coff + i * C
        x0 = dax + i * GH
        h0 = dah + i * GH
        for j in range(H):
            e = i * H + j
            d = dd[dh + e]
            if has_next:
                d += dd[rnext + e]
            r = cache[c0 + j]
            z = cache[c0 + H + j]
            n = cache[c0 + 2 * H + j]
            hn = cache[c0 + 3 * H + j]
            da_n = d * (1.0 - z) * (1.0 - n * n)
            da_z = d * (hs[hprev + e] - n) * (z * (1.0 - z))
            da_r = da_n * hn * (r * (1.0 - r))
            dd[x0 + j] = da_r
            dd[x0 + H + j] = da_z
            dd[x0 + 2 * H + j] = da_n
            dd[h0 + j] = da_r
            dd[h0 + H + j] = da_z
            dd[h0 + 2 * H + j] = r * da_n
            dd[rcur + e] = z * d


@njit(**JIT)
def extras_grad(H, rows, dsh, doff, grad, eoff):
    """grad[eoff:eoff+H] (dL/d bn) = column sums of the n block of dL/d(hw) (rows, 3H) at dsh[doff:]."""
    GH = 3 * H
    for j in range(H):
        grad[eoff + j] = 0.0
    for r in range(rows):
        q = doff + r * GH + 2 * H
        for j in range(H):
            grad[eoff + j] += dsh[q + j]
