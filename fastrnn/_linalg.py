"""Small dense products used inside the RNN kernels.

``mm(a, b, out)`` computes ``out = a @ b`` and ``mm_tn(a, b, out)`` computes
``out = a.T @ b``. Both pick, at run time, between BLAS (``np.dot`` inside numba,
which needs SciPy's BLAS) and a hand loop: a BLAS call costs about 0.15 us even
for a 1x16x16 product, where the hand loop takes 0.07 us; from a few thousand
multiply-adds on, BLAS wins by up to 7x (65 against 10 GFLOP/s at 32x100x100).
The hand loops are written in axpy order (the inner loop runs along a row of
``b`` and of ``out``) so that LLVM vectorises them without reassociating sums.
"""

import numpy as np
from numba import njit

from .config import BLAS_MIN_WORK, JIT


@njit(**JIT)
def mm(a, b, out):
    """out (m, n) = a (m, k) @ b (k, n); all C-contiguous."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n >= BLAS_MIN_WORK:
        np.dot(a, b, out)
        return
    for i in range(m):
        for j in range(n):
            out[i, j] = 0.0
        for p in range(k):
            aip = a[i, p]
            for j in range(n):
                out[i, j] += aip * b[p, j]


@njit(**JIT)
def mm_tn(a, b, out):
    """out (m, n) = a.T @ b for a (r, m) and b (r, n); all C-contiguous."""
    r, m = a.shape
    n = b.shape[1]
    if r * m * n >= BLAS_MIN_WORK:
        np.dot(a.T, b, out)
        return
    out[:, :] = 0.0
    for p in range(r):
        for i in range(m):
            api = a[p, i]
            for j in range(n):
                out[i, j] += api * b[p, j]


@njit(**JIT)
def colsum(a, out):
    """out (n,) = a.sum(axis=0) for a (r, n)."""
    out[:] = 0.0
    for p in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[p, j]
