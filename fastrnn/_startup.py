"""Start-up: keep SciPy's BLAS out of processes that never call it.

The first numba function a process compiles or loads from the cache makes numba
import its NumPy support, and that checks once for BLAS with ``import
scipy.linalg.cython_blas``: all of ``scipy.linalg`` (85 modules) and OpenBLAS's
own start, about 0.2 s of CPU, paid by every command, although only the
general kernel's larger products use BLAS (``np.dot``) and the small-model path
none. :func:`defer_blas` lets that one check pass without the import. Nothing
else changes: typing ``np.dot`` still calls numba's real check (the first
call of the stand-in puts it back), which imports SciPy's BLAS in a process
that compiles a BLAS product, and numba's runtime fetches the BLAS functions
from ``scipy.linalg.cython_blas`` when one first runs (a cached kernel).
"""

import sys


def defer_blas():
    """Before numba's NumPy support loads: make its import-time BLAS check free (once)."""
    if "numba.np.arraymath" in sys.modules:  # already loaded: nothing to save
        return
    try:
        from numba.np import linalg
    except ImportError:
        return
    real = linalg.ensure_blas
    if getattr(real, "_fastrnn_deferred", False):
        return

    def check_later():
        linalg.ensure_blas = real  # every later caller (np.dot's typing) gets numba's own check

    check_later._fastrnn_deferred = True
    linalg.ensure_blas = check_later
