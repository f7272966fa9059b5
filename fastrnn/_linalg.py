"""Small dense products on flat buffers, used inside the RNN kernels.

Every buffer in the kernels is a flat 1-D array holding row-major matrices; a
matrix is (buffer, offset, rows, columns). Flat buffers keep the time loop free of
array views (each costs an atomic reference count and, for ``reshape``, a helper
call) and let the elementwise work of a whole time step run as one long loop.

``mm`` computes ``out = A @ B`` and ``mm_tn`` computes ``G = A.T @ B``. Offsets
are always passed as run-time integers, never as literal constants: numba compiles
a separate specialisation of a function for every literal argument value
(``Literal[int](0)``, ``Literal[bool](True)``), which multiplies compile time. Both pick, at
run time, between BLAS (``np.dot`` inside numba, through SciPy's BLAS) and a hand
loop: a BLAS call costs about 0.15 us however small the product, where the hand
loop does a 1x16x16 product in 0.07 us; from a few thousand multiply-adds on, BLAS
is up to 7x faster (65 against 10 GFLOP/s at 32x100x100). ``blas=False`` forces the
hand loop: the parallel kernel uses it, because OpenBLAS's own threads inside
numba's threads oversubscribe the cores (measured 40x slower). The hand loops run in
axpy order (the inner loop walks a row of B and of the output), so LLVM vectorises
them without reassociating sums, except for narrow outputs (``NARROW``), where the
dot-product order is faster. The vectorised loops index views of one row, not
``buffer[offset + j]``: numba makes every signed index ``i if i >= 0 else i + len``,
and for ``offset + j`` LLVM cannot drop that select, which kept such loops scalar
(measured 11.8 against 4.9 ns an element for a tanh loop).
"""

import numpy as np
from numba import njit

from .config import BLAS_MIN_WORK, JIT

#: Below this many output columns the hand loops run in dot-product order: an axpy
#: inner loop of 1 or 2 elements costs more in loop set-up than in arithmetic
#: (measured: the O=1 output layer of the binary task took 5 us for 32 rows).
NARROW = 8


@njit(**JIT)
def uses_blas(blas, m, k, n):
    """Whether an (m, k) @ (k, n) product goes to BLAS (the one place this is decided)."""
    return blas and m * k * n >= BLAS_MIN_WORK


@njit(**JIT)
def mm(a, aoff, m, k, w, woff, n, out, blas):
    """out[:m*n] (m, n) = a[aoff:] (m, k) @ w[woff:] (k, n)."""
    if uses_blas(blas, m, k, n):
        np.dot(a[aoff : aoff + m * k].reshape((m, k)), w[woff : woff + k * n].reshape((k, n)), out[: m * n].reshape((m, n)))
        return
    if n < NARROW:
        for i in range(m):
            for j in range(n):
                acc = 0.0
                for p in range(k):
                    acc += a[aoff + i * k + p] * w[woff + p * n + j]
                out[i * n + j] = acc
        return
    for i in range(m):
        orow = out[i * n : (i + 1) * n]
        for j in range(n):
            orow[j] = 0.0
        for p in range(k):
            aip = a[aoff + i * k + p]
            wrow = w[woff + p * n : woff + (p + 1) * n]
            for j in range(n):
                orow[j] += aip * wrow[j]


@njit(**JIT)
def mm_nt(a, aoff, m, k, w, wt, woff, n, out, blas):
    """out[:m*n] (m, n) = a[aoff:] (m, k) @ W.T with W = w[woff:] (n, k).

    BLAS reads W in place (``np.dot`` of a transposed view runs as fast); the hand
    loop reads ``wt[woff:]``, which must then hold W.T (k, n): the caller transposes
    only the matrices whose products :func:`uses_blas` sends to the hand loop.
    """
    if uses_blas(blas, m, k, n):
        np.dot(a[aoff : aoff + m * k].reshape((m, k)), w[woff : woff + n * k].reshape((n, k)).T,
               out[: m * n].reshape((m, n)))
        return
    mm(a, aoff, m, k, wt, woff, n, out, blas)


@njit(**JIT)
def mm_tn(a, aoff, m, b, boff, n, r, g, goff, blas):
    """g[goff:] (m, n) = a[aoff:] (r, m) transposed @ b[boff:] (r, n)."""
    if uses_blas(blas, r, m, n):
        np.dot(
            a[aoff : aoff + r * m].reshape((r, m)).T,
            b[boff : boff + r * n].reshape((r, n)),
            g[goff : goff + m * n].reshape((m, n)),
        )
        return
    if n < NARROW:
        for i in range(m):
            for j in range(n):
                acc = 0.0
                for p in range(r):
                    acc += a[aoff + p * m + i] * b[boff + p * n + j]
                g[goff + i * n + j] = acc
        return
    gv = g[goff : goff + m * n]
    for q in range(m * n):
        gv[q] = 0.0
    for p in range(r):
        brow = b[boff + p * n : boff + (p + 1) * n]
        for i in range(m):
            api = a[aoff + p * m + i]
            grow = gv[i * n : (i + 1) * n]
            for j in range(n):
                grow[j] += api * brow[j]


@njit(**JIT)
def colsum(a, aoff, r, n, g, goff):
    """g[goff:goff+n] = the column sums of a[aoff:] (r, n)."""
    gv = g[goff : goff + n]
    for j in range(n):
        gv[j] = 0.0
    for p in range(r):
        arow = a[aoff + p * n : aoff + (p + 1) * n]
        for j in range(n):
            gv[j] += arow[j]


@njit(**JIT)
def add_into(y, yoff, x, xoff, n):
    """y[yoff:yoff+n] += x[xoff:xoff+n]."""
    yv = y[yoff : yoff + n]
    xv = x[xoff : xoff + n]
    for e in range(n):
        yv[e] += xv[e]


@njit(**JIT)
def add_rows(a, aoff, r, n, v, voff):
    """Add the vector v[voff:voff+n] to each of the r rows of a[aoff:] (r, n)."""
    vv = v[voff : voff + n]
    for p in range(r):
        arow = a[aoff + p * n : aoff + (p + 1) * n]
        for j in range(n):
            arow[j] += vv[j]


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
