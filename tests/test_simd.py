"""fastrnn._simd: the vector-register matrix product, against exact arithmetic and against itself by blocks."""

from fractions import Fraction

import numpy as np
import pytest

from fastrnn import _simd

SHAPES = [(1, 1, 1), (3, 5, 7), (4, 3, 8), (4, 6, 16), (5, 2, 9), (7, 4, 17), (9, 2, 33), (8, 32, 40), (32, 32, 32)]


def exact_product(a, w):
    """a @ w in exact rational arithmetic, rounded once to float64 at the end."""
    m, k = a.shape
    n = w.shape[1]
    af = [[Fraction(float(v)) for v in row] for row in a]
    wf = [[Fraction(float(v)) for v in row] for row in w]
    return np.array([[float(sum(af[i][p] * wf[p][j] for p in range(k))) for j in range(n)] for i in range(m)])


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_the_product_is_within_the_rounding_bound_of_the_exact_one(m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, w = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    out = np.full(m * n, np.nan)
    _simd.mm(a.ravel(), 0, m, k, w.ravel(), 0, n, out, 0)
    exact = exact_product(a, w)
    # k fused steps, each rounding once: |error| <= k * eps * sum_p |a_ip w_pj| (and a little slack)
    bound = (k + 1) * np.finfo(float).eps * (np.abs(a) @ np.abs(w))
    err = np.abs(out.reshape(m, n) - exact)
    assert np.all(err <= bound), (err - bound).max()


def _one_entry_at_a_time(a, w):
    """The reference chain written out: out_ij = fma(a_i,k-1 w_k-1,j, ... fma(a_i0 w_0j, 0)), using _simd's own
    scalar fma on 1x1 products (each a chain of k fused steps)."""
    m, k = a.shape
    n = w.shape[1]
    out = np.empty((m, n))
    col = np.empty(1)
    for i in range(m):
        for j in range(n):
            _simd.mm(a[i].copy(), 0, 1, k, np.ascontiguousarray(w[:, j]), 0, 1, col, 0)
            out[i, j] = col[0]
    return out


@pytest.mark.parametrize("m,k,n", [(9, 5, 33), (4, 7, 24), (6, 3, 8), (5, 4, 19)])
def test_every_block_shape_adds_in_the_same_order_so_the_numbers_do_not_depend_on_the_shape(m, k, n):
    """Rows in fours and ones, columns in sixteens, eights and single entries: every output entry is the same
    fused chain, so the full product equals, bit for bit, each entry computed alone on the scalar path."""
    rng = np.random.default_rng(7)
    a, w = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    out = np.empty(m * n)
    _simd.mm(a.ravel(), 0, m, k, w.ravel(), 0, n, out, 0)
    assert np.array_equal(out.reshape(m, n), _one_entry_at_a_time(a, w))


def test_offsets_place_the_operands_and_nothing_outside_the_output_is_written():
    rng = np.random.default_rng(3)
    m, k, n = 5, 4, 18
    a, w = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    abuf = np.concatenate([np.full(3, 1e300), a.ravel()])
    wbuf = np.concatenate([np.full(5, -1e300), w.ravel(), np.full(2, 7.0)])
    out = np.full(4 + m * n + 6, 42.0)
    _simd.mm(abuf, 3, m, k, wbuf, 5, n, out, 4)
    plain = np.empty(m * n)
    _simd.mm(a.ravel(), 0, m, k, w.ravel(), 0, n, plain, 0)
    assert np.array_equal(out[4:4 + m * n], plain)
    assert np.all(out[:4] == 42.0) and np.all(out[4 + m * n:] == 42.0)


def test_non_finite_entries_propagate_as_in_any_product():
    a = np.ones(4 * 3)
    w = np.ones(3 * 8)
    w[1 * 8 + 2] = np.inf
    w[2 * 8 + 5] = np.nan
    out = np.empty(4 * 8)
    _simd.mm(a, 0, 4, 3, w, 0, 8, out, 0)
    out = out.reshape(4, 8)
    assert np.all(np.isinf(out[:, 2])) and np.all(np.isnan(out[:, 5]))
    assert np.all(out[:, [0, 1, 3, 4, 6, 7]] == 3.0)


def test_the_vector_kernel_takes_the_small_products_and_blas_the_large():
    assert _simd.fits(32, 32, 32) and _simd.fits(32, 32, 32 * 35) and _simd.fits(64, 64, 64)
    assert not _simd.fits(128, 128, 128)  # too many rows: BLAS's blocked kernel wins
    assert not _simd.fits(64, 64, 64 * 67)  # RTRL's product at 64 units: a right-hand side beyond the cache


def test_a_strided_operand_read_in_vectors_is_refused_at_compile_time():
    from numba.core.errors import TypingError

    w = np.ones(16)[::2]  # w and out are read and written eight entries at a time: they must be contiguous
    with pytest.raises(TypingError, match="1-D C-contiguous float64"):
        _simd.mm(np.ones(1), 0, 1, 1, w, 0, 8, np.empty(8), 0)


@pytest.mark.parametrize("m,k", [(1, 1), (5, 3), (4, 8), (7, 19), (32, 32), (9, 40)])
def test_the_matrix_vector_product_is_within_the_rounding_bound_and_every_row_is_summed_alike(m, k):
    rng = np.random.default_rng(m * 10 + k)
    a, v = rng.normal(size=(m, k)), rng.normal(size=k)
    vbuf = np.concatenate([np.full(3, np.nan), v])
    out = np.full(m + 2, 42.0)
    _simd.matvec(a.ravel(), 0, m, k, vbuf, 3, out, 1)
    exact = exact_product(a, v[:, None])[:, 0]
    bound = (k + 1) * np.finfo(float).eps * (np.abs(a) @ np.abs(v))
    assert np.all(np.abs(out[1:m + 1] - exact) <= bound)
    assert out[0] == 42.0 and out[m + 1] == 42.0
    # a row alone (the one-row path) gives the number it gets among four (the four-row path)
    for i in range(m):
        alone = np.empty(1)
        _simd.matvec(a[i].copy(), 0, 1, k, v, 0, alone, 0)
        assert alone[0] == out[1 + i]
