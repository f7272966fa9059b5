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
    """h_t (B, H) into hs[hout:] from xu_t (at xoff), hw_t and h_{t-1} (at hprev); cache r, z, n, hw_n + bn.

    Per row, the loops index views (slices) of the row, not ``buffer[offset + j]``:
    numba turns a signed index into ``i if i >= 0 else i + len``, which LLVM cannot
    drop for ``offset + j``, so those loops stayed scalar (55 against 14 ns an
    element at B=32, H=100). Short loops with few arrays each also keep the
    run-time overlap checks of the vectoriser few.
    """
    GH = 3 * H
    C = 4 * H
    bn = theta[eoff : eoff + H]
    for i in range(B):
        x = xu[xoff + i * GH : xoff + (i + 1) * GH]
        w = hw[i * GH : (i + 1) * GH]
        c = cache[coff + i * C : coff + (i + 1) * C]
        hp = hs[hprev + i * H : hprev + (i + 1) * H]
        ho = hs[hout + i * H : hout + (i + 1) * H]
        for j in range(2 * H):  # r and z
            c[j] = sigmoid(x[j] + w[j])
        for j in range(H):
            hn = w[2 * H + j] + bn[j]
            c[3 * H + j] = hn
            c[2 * H + j] = tanh(x[2 * H + j] + c[j] * hn)
        for j in range(H):
            z = c[H + j]
            ho[j] = (1.0 - z) * c[2 * H + j] + z * hp[j]


@njit(**JIT)
def backward_step(B, H, dd, dh, has_next, rnext, rcur, dax, dah, hs, hprev, cache, coff):
    """da_x at dd[dax:], da_h at dd[dah:] (B, 3H) and the carry z * dh at dd[rcur:] (B, H).

    Row views, as in :func:`forward_step`. Without ``has_next`` the carry of step
    t+1 is not read (a select, not a product with 0: that memory is not set then).
    """
    GH = 3 * H
    C = 4 * H
    for i in range(B):
        c = cache[coff + i * C : coff + (i + 1) * C]
        ax = dd[dax + i * GH : dax + (i + 1) * GH]
        ah = dd[dah + i * GH : dah + (i + 1) * GH]
        d_in = dd[dh + i * H : dh + (i + 1) * H]
        rn = dd[rnext + i * H : rnext + (i + 1) * H]
        rc = dd[rcur + i * H : rcur + (i + 1) * H]
        hp = hs[hprev + i * H : hprev + (i + 1) * H]
        for j in range(H):
            d = d_in[j] + rn[j] if has_next else d_in[j]
            z = c[H + j]
            n = c[2 * H + j]
            da_n = d * (1.0 - z) * (1.0 - n * n)
            ax[H + j] = d * (hp[j] - n) * (z * (1.0 - z))
            ax[2 * H + j] = da_n
            rc[j] = z * d
        for j in range(H):
            r = c[j]
            da_n = ax[2 * H + j]
            ax[j] = da_n * c[3 * H + j] * (r * (1.0 - r))
            ah[2 * H + j] = r * da_n
        for j in range(2 * H):
            ah[j] = ax[j]


@njit(**JIT)
def extras_grad(H, rows, dsh, doff, grad, eoff):
    """grad[eoff:eoff+H] (dL/d bn) = column sums of the n block of dL/d(hw) (rows, 3H) at dsh[doff:]."""
    GH = 3 * H
    gv = grad[eoff : eoff + H]
    for j in range(H):
        gv[j] = 0.0
    for r in range(rows):
        q = doff + r * GH + 2 * H
        row = dsh[q : q + H]
        for j in range(H):
            gv[j] += row[j]


from .._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
