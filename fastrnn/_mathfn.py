"""Elementwise math that LLVM can vectorise: exp, expm1, tanh and sigmoid.

Numba lowers ``math.tanh`` to a scalar libm call (about 13 ns an element here),
which at the digit-addition shape is most of a training step. These versions are
branch-free (selects only), so a loop over a row of activations compiles to AVX
code: about 3 ns an element, within 3 ulp of numpy (tests/test_mathfn.py).

expm1 uses Cody-Waite range reduction ``y = k ln2 + r`` with ``|r| <= ln2/2``, a
degree-14 Taylor polynomial for ``expm1(r)`` (truncation error below 1e-17
relative), and ``2**k`` built from the exponent bits.
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .config import JIT

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@intrinsic
def _float64_bits_as_int64(typingctx, x):
    """Reinterpret the 64 bits of a float64 as an int64 (no conversion)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


#: 1.5 * 2**52: adding it to an integer-valued float k (|k| < 2**51) leaves k in
#: the low bits of the sum's bit pattern. That turns k into an integer with an
#: add and a bitcast, which AVX2 has for vectors; float -> int64 conversion
#: (``np.int64(k)``) it has not, and that one instruction kept the whole
#: activation loop scalar on AVX2 machines (measured 5.5 -> ? ns an element).
_ROUND_MAGIC = 6755399441055744.0


@njit(**JIT)
def expm1(y):
    """exp(y) - 1, accurate near 0; y is clamped to [-708, 708]; NaN stays NaN."""
    yc = y if y > -708.0 else -708.0
    yc = yc if yc < 708.0 else 708.0
    kf = np.floor(yc * _INV_LN2 + 0.5)
    r = (yc - kf * _LN2_HI) - kf * _LN2_LO
    # expm1(r) = r + r^2 P(r), P(r) = sum_i r^i / (i + 2)! for i = 0..12, evaluated by
    # Estrin's scheme: pairs, then pairs of pairs with r^2, r^4, r^8. The same terms as
    # Horner's rule, but a dependency chain of 5 multiply-adds instead of 13: in a
    # recurrent step the activation's latency is on the critical path (measured at
    # H = 16: 4.1 -> 3.05 ns an element of sigmoid in a long loop, float64).
    r2 = r * r
    r4 = r2 * r2
    q0 = 0.5 + r * (1.0 / 6.0)
    q1 = 1.0 / 24.0 + r * (1.0 / 120.0)
    q2 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    q3 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    q4 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    q5 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    s0 = q0 + r2 * q1
    s1 = q2 + r2 * q3
    s2 = q4 + r2 * q5
    u0 = s0 + r4 * s1
    u1 = s2 + r4 * (1.0 / 87178291200.0)
    p = u0 + (r4 * r4) * u1
    em = r + r * r * p  # expm1(r)
    k = _float64_bits_as_int64(kf + _ROUND_MAGIC) - _float64_bits_as_int64(_ROUND_MAGIC)
    scale = _int64_bits_as_float64((k + 1023) << 52)  # 2**k
    result = scale * em + (scale - 1.0)
    # The clamps map NaN to -708; a select (not a branch) hands NaN back so that
    # a numerical fault upstream shows in the loss instead of being hidden.
    return result if y == y else y


@njit(**JIT)
def exp(y):
    """exp(y) for y in [-708, 708] (clamped outside)."""
    return expm1(y) + 1.0


@njit(**JIT)
def tanh(x):
    """tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), with the sign of x."""
    t = expm1(-2.0 * abs(x))
    v = -t / (2.0 + t)
    return -v if x < 0 else v


@njit(**JIT)
def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow."""
    return 1.0 / (2.0 + expm1(-x))


@njit(**JIT)
def tanh_array(x, out):
    """out[i] = tanh(x[i]) for 1-D arrays (used by the accuracy tests)."""
    for i in range(x.shape[0]):
        out[i] = tanh(x[i])


@njit(**JIT)
def sigmoid_array(x, out):
    """out[i] = sigmoid(x[i]) for 1-D arrays (used by the accuracy tests)."""
    for i in range(x.shape[0]):
        out[i] = sigmoid(x[i])


@njit(**JIT)
def expm1_array(x, out):
    """out[i] = expm1(x[i]) for 1-D arrays (used by the accuracy tests)."""
    for i in range(x.shape[0]):
        out[i] = expm1(x[i])


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
