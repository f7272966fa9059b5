"""The one place for kernel flags, numeric defaults and tuning thresholds.

Every ``@njit`` in fastrnn takes its options from ``JIT`` (or ``JIT_PARALLEL``), so
that caching, the error model and fastmath are decided here and nowhere else.
"""


#: fastmath reassociates float sums, which changes float64 results; kept off so the
#: kernels stay within rtol 1e-10 of the plain-numpy reference (tests/reference.py).
FASTMATH = False

#: Options shared by every kernel. Compiled code is cached on disk (``__pycache__``),
#: so that a second process starts in about a second instead of compiling again, but
#: not by numba's ``cache=True``: each kernel module ends with
#: :func:`fastrnn._cache.key_dispatchers`, which gives its kernels a cache keyed on
#: every kernel source and the package version (numba's own checks only the
#: function's file, and would serve a kernel compiled with an older callee).
#: ``error_model="numpy"`` drops the Python-style
#: ZeroDivisionError check on ``/``: that check is a branch inside every loop
#: that divides, and it stops LLVM from vectorising the activation loops
#: (measured 13 ns -> 3 ns per tanh element).
JIT = dict(cache=False, error_model="numpy", fastmath=FASTMATH, nogil=True)
JIT_PARALLEL = dict(JIT, parallel=True)

#: Float types of models and data (the first is the default).
DTYPES = ("float64", "float32")

#: A matrix product ``(m, k) @ (k, n)`` with ``m * k * n`` at or above this many
#: multiply-adds goes to BLAS (``np.dot``); below it a hand loop is faster because
#: a BLAS call costs about 0.15 us however small the product (benchmarks/bench_kernels.py).
BLAS_MIN_WORK = 4096

#: ``loss_and_grads(parallel=None)`` uses the serial kernel: its products go to BLAS,
#: which has threads of its own. Splitting the batch across numba's threads (per-thread
#: gradient buffers, then a serial reduction; ``parallel=True``) forces the hand-written
#: products, since OpenBLAS's threads inside numba's threads oversubscribe the cores.
#: On this project's 2-core machine that was 2.2-5x slower at every shape measured
#: (B 32-256, T 8-32, H 16-64; see the README), so it is never chosen automatically;
#: it remains for machines with many more cores than BLAS uses well.
AUTO_PARALLEL = False
