"""Small matrix products in explicit vector code: fused multiply-adds on eight doubles at a time.

numba compiles ``acc += a * b`` loops without fast-math, so LLVM keeps every product
and sum separate and in order; for a matrix product that order leaves each output in
memory between steps, and a (32, 32) @ (32, 32) hand loop ran at 4 us here, against
1.6-1.8 us for OpenBLAS and its packing. :func:`mm` holds a block of the output (four
rows by sixteen columns) in vector registers and adds the products into it with the
processor's fused multiply-add: 0.6 us for that product, and 27 against 31 us for
RTRL's (32, 32) @ (32, 1120) (``benchmarks/bench_online.py``; one core of the 2-core
machine the benchmarks ran on).

:func:`matvec` (a matrix times a vector, the online rules' forward step) sums each
row in eight lanes and adds the lanes in a fixed tree: 60 against 160 ns for a (32, 32)
matrix, whose plain loop waits on one chain of dependent adds a row.

Every output entry of :func:`mm` is the chain ``fma(a[i, k-1], w[k-1, j], ... fma(a[i, 0], w[0, j], 0))``
in the order p = 0..k-1, whatever block it falls in: the same numbers for any shape,
and here, the same numbers as OpenBLAS's own kernels, which add in that order with
fused multiply-adds too (tests/test_simd.py checks the chain entry by entry).

The pieces are numba intrinsics over a vector type of eight float64 (``<8 x double>``
in LLVM, split into the registers a processor has: two AVX2 registers, one AVX-512
register). Without a fused multiply-add instruction LLVM calls libm's ``fma``: right,
and slow. Numbers only: no checks (the callers pass flat C-contiguous buffers).
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

from . import _linalg
from .config import JIT

#: Doubles in one vector.
WIDTH = 8
_VEC = ir.VectorType(ir.DoubleType(), WIDTH)


class F64x8(types.Type):
    """numba's type of eight float64 held in one vector value."""

    def __init__(self):
        super().__init__(name="f64x8")


f64x8 = F64x8()


@register_model(F64x8)
class _F64x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _flat(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype == types.float64):
        raise TypingError(f"fastrnn._simd needs a 1-D C-contiguous float64 array, got {arr}")


def _address(context, builder, arrtype, arr, idx):
    data = context.make_array(arrtype)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [idx]), _VEC.as_pointer())


@intrinsic
def zeros(typingctx):
    """A vector of zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * WIDTH)

    return f64x8(), codegen


@intrinsic
def load(typingctx, arr, idx):
    """arr[idx:idx + 8] as a vector."""
    _flat(arr)

    def codegen(context, builder, sig, args):
        return builder.load(_address(context, builder, sig.args[0], args[0], args[1]), align=8)

    return f64x8(arr, types.intp), codegen


@intrinsic
def store(typingctx, arr, idx, vec):
    """arr[idx:idx + 8] = vec."""
    _flat(arr)

    def codegen(context, builder, sig, args):
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], args[1]), align=8)
        return context.get_dummy_value()

    return types.none(arr, types.intp, f64x8), codegen


@intrinsic
def fma_scalar_vector(typingctx, s, vec, acc):
    """s * vec + acc entry by entry, each with one rounding (s broadcast to every entry)."""
    def codegen(context, builder, sig, args):
        one = builder.insert_element(ir.Constant(_VEC, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        spread = builder.shuffle_vector(one, ir.Constant(_VEC, ir.Undefined),
                                        ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]), "llvm.fma.v8f64")
        return builder.call(fn, [spread, args[1], args[2]])

    return f64x8(types.float64, f64x8, f64x8), codegen


@intrinsic
def fma(typingctx, x, y, z):
    """x * y + z with one rounding (the scalar form, for the columns left over)."""
    def codegen(context, builder, sig, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, list(args))

    return types.float64(types.float64, types.float64, types.float64), codegen


@intrinsic
def fma_vector(typingctx, x, y, acc):
    """x * y + acc entry by entry, each with one rounding."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]), "llvm.fma.v8f64")
        return builder.call(fn, list(args))

    return f64x8(f64x8, f64x8, f64x8), codegen


@intrinsic
def total(typingctx, vec):
    """The sum of a vector's eight entries, in the fixed order ((0+1)+(2+3))+((4+5)+(6+7))."""
    def codegen(context, builder, sig, args):
        e = [builder.extract_element(args[0], ir.Constant(ir.IntType(32), i)) for i in range(WIDTH)]
        while len(e) > 1:
            e = [builder.fadd(e[i], e[i + 1]) for i in range(0, len(e), 2)]
        return e[0]

    return types.float64(f64x8), codegen


@njit(**JIT)
def _rows4(a, r, k, w, q, n, out, o, wide):
    """Rows r..r+3 of a (k each) times w's columns q..q+15 (q..q+7 if not ``wide``) into out at o (row stride n)."""
    c00 = zeros()
    c01 = zeros()
    c10 = zeros()
    c11 = zeros()
    c20 = zeros()
    c21 = zeros()
    c30 = zeros()
    c31 = zeros()
    for p in range(k):
        b0 = load(w, q + p * n)
        a0 = a[r + p]
        a1 = a[r + k + p]
        a2 = a[r + 2 * k + p]
        a3 = a[r + 3 * k + p]
        c00 = fma_scalar_vector(a0, b0, c00)
        c10 = fma_scalar_vector(a1, b0, c10)
        c20 = fma_scalar_vector(a2, b0, c20)
        c30 = fma_scalar_vector(a3, b0, c30)
        if wide:
            b1 = load(w, q + p * n + WIDTH)
            c01 = fma_scalar_vector(a0, b1, c01)
            c11 = fma_scalar_vector(a1, b1, c11)
            c21 = fma_scalar_vector(a2, b1, c21)
            c31 = fma_scalar_vector(a3, b1, c31)
    store(out, o, c00)
    store(out, o + n, c10)
    store(out, o + 2 * n, c20)
    store(out, o + 3 * n, c30)
    if wide:
        store(out, o + WIDTH, c01)
        store(out, o + n + WIDTH, c11)
        store(out, o + 2 * n + WIDTH, c21)
        store(out, o + 3 * n + WIDTH, c31)


@njit(**JIT)
def _row1(a, r, k, w, q, n, out, o):
    """Row r of a times w's columns q..q+7 into out[o:o + 8]."""
    c = zeros()
    for p in range(k):
        c = fma_scalar_vector(a[r + p], load(w, q + p * n), c)
    store(out, o, c)


@njit(**JIT)
def _row1x4(a, r, k, w, q, n, out, o):
    """Row r of a times w's columns q..q+31 into out[o:o + 32]: four chains in flight."""
    c0 = zeros()
    c1 = zeros()
    c2 = zeros()
    c3 = zeros()
    for p in range(k):
        ap = a[r + p]
        b = q + p * n
        c0 = fma_scalar_vector(ap, load(w, b), c0)
        c1 = fma_scalar_vector(ap, load(w, b + WIDTH), c1)
        c2 = fma_scalar_vector(ap, load(w, b + 2 * WIDTH), c2)
        c3 = fma_scalar_vector(ap, load(w, b + 3 * WIDTH), c3)
    store(out, o, c0)
    store(out, o + WIDTH, c1)
    store(out, o + 2 * WIDTH, c2)
    store(out, o + 3 * WIDTH, c3)


@njit(**JIT)
def mm(a, aoff, m, k, w, woff, n, out, ooff):
    """out[ooff:ooff + m*n] (m, n) = a[aoff:] (m, k) @ w[woff:] (k, n), all row-major in flat buffers.

    Four rows by sixteen columns at a time in registers, then eight columns, then one
    row at a time (thirty-two columns, then eight), then the last n % 8 columns entry by entry: every entry the same
    fused chain in the order p = 0..k-1 (see the module's notes). ``out`` must not
    overlap a or w. The whole of w is read once for every four rows: for a w larger
    than the cache BLAS's blocked kernels are faster (:func:`fits`).
    """
    n8 = n - n % WIDTH
    n16 = n - n % (2 * WIDTH)
    m4 = m - m % 4
    for i in range(0, m4, 4):
        r = aoff + i * k
        o = ooff + i * n
        for j in range(0, n16, 2 * WIDTH):
            _rows4(a, r, k, w, woff + j, n, out, o + j, True)
        if n8 > n16:
            _rows4(a, r, k, w, woff + n16, n, out, o + n16, False)
    n32 = n - n % (4 * WIDTH)
    for i in range(m4, m):
        for j in range(0, n32, 4 * WIDTH):
            _row1x4(a, aoff + i * k, k, w, woff + j, n, out, ooff + i * n + j)
        for j in range(n32, n8, WIDTH):
            _row1(a, aoff + i * k, k, w, woff + j, n, out, ooff + i * n + j)
    for i in range(m):
        r = aoff + i * k
        for j in range(n8, n):
            acc = 0.0
            for p in range(k):
                acc = fma(a[r + p], w[woff + p * n + j], acc)
            out[ooff + i * n + j] = acc


@njit(**JIT)
def matvec(a, aoff, m, k, v, voff, out, ooff):
    """out[ooff:ooff + m] = A v, A = a[aoff:] (m, k) row-major, v = v[voff:voff + k].

    Each row's sum runs in eight lanes (lane l adds the products of columns l, l + 8,
    ...: fused chains in column order), then the lanes are added in a fixed tree
    (:func:`total`), then the last k % 8 columns one fused step each, in order. Four
    rows at a time, so four chains are in flight. The order differs from a plain
    left-to-right sum, so the last bits may; it is the same order for every row and
    call. A (32, 32) matrix times a vector: 60 against 160 ns for four dependent
    chains of plain adds.
    """
    k8 = k - k % WIDTH
    m4 = m - m % 4
    for i in range(0, m4, 4):
        r = aoff + i * k
        c0 = zeros()
        c1 = zeros()
        c2 = zeros()
        c3 = zeros()
        for j in range(0, k8, WIDTH):
            x = load(v, voff + j)
            c0 = fma_vector(load(a, r + j), x, c0)
            c1 = fma_vector(load(a, r + k + j), x, c1)
            c2 = fma_vector(load(a, r + 2 * k + j), x, c2)
            c3 = fma_vector(load(a, r + 3 * k + j), x, c3)
        s0 = total(c0)
        s1 = total(c1)
        s2 = total(c2)
        s3 = total(c3)
        for j in range(k8, k):
            vj = v[voff + j]
            s0 = fma(a[r + j], vj, s0)
            s1 = fma(a[r + k + j], vj, s1)
            s2 = fma(a[r + 2 * k + j], vj, s2)
            s3 = fma(a[r + 3 * k + j], vj, s3)
        out[ooff + i] = s0
        out[ooff + i + 1] = s1
        out[ooff + i + 2] = s2
        out[ooff + i + 3] = s3
    for i in range(m4, m):
        r = aoff + i * k
        c = zeros()
        for j in range(0, k8, WIDTH):
            c = fma_vector(load(a, r + j), load(v, voff + j), c)
        s = total(c)
        for j in range(k8, k):
            s = fma(a[r + j], v[voff + j], s)
        out[ooff + i] = s


#: The largest product :func:`mm` takes (:func:`fits`): a right-hand side of up to 2**16 doubles
#: (512 KB, read once for every four rows, so it must stay in the second-level cache) and up to
#: 64 rows. Beyond either, BLAS's blocked and packed kernels win (a (128, 128) @ (128, 128)
#: product: 42 us against 53 us here; a (64, 64) @ (64, 64) one: 10 us against 5 us).
FITS_MAX = 1 << 16
FITS_ROWS = 64


@njit(**JIT)
def fits(m, k, n):
    """Whether an (m, k) @ (k, n) product goes to :func:`mm` rather than BLAS."""
    return m <= FITS_ROWS and k * n <= FITS_MAX


@njit(**JIT)
def product(a, aoff, m, k, w, woff, n, out, ooff, blas):
    """:func:`mm`'s product where it :func:`fits`, else fastrnn._linalg's (BLAS from its size on, where
    ``blas``): the one place that chooses."""
    if fits(m, k, n):
        mm(a, aoff, m, k, w, woff, n, out, ooff)
    else:
        _linalg.mm(a, aoff, m, k, w, woff, n, out[ooff : ooff + m * n], blas)


from ._cache import key_dispatchers  # noqa: E402

key_dispatchers(globals())  # the on-disk cache of these kernels, keyed on every kernel source (fastrnn._cache)
