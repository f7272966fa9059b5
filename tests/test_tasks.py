"""Task generators: the encodings of docs/math.md, checked on hand-worked examples."""

import numpy as np
import pytest

from fastrnn import BinaryAddition, DigitAddition, InvalidArgument, make_task


def test_binary_encodes_the_worked_example_lsb_first():
    batch = BinaryAddition(8).encode(np.array([45]), np.array([73]))
    np.testing.assert_array_equal(batch.X[0, :, 0], [1, 0, 1, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(batch.X[0, :, 1], [1, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(batch.Y[0, :, 0], [0, 1, 1, 0, 1, 1, 1, 0])
    assert batch.mask is None


def test_binary_samples_fit_and_decode(rng):
    task = BinaryAddition(8)
    batch = task.sample(rng, 500)
    assert batch.X.shape == (500, 8, 2) and batch.Y.shape == (500, 8, 1)
    assert batch.a.max() < 128 and batch.b.max() < 128 and batch.a.min() >= 0
    np.testing.assert_array_equal(task.decode(task.true_positions(batch)), batch.a + batch.b)


def test_binary_sampling_is_reproducible():
    a = BinaryAddition(16).sample(np.random.default_rng(3), 50)
    b = BinaryAddition(16).sample(np.random.default_rng(3), 50)
    np.testing.assert_array_equal(a.X, b.X)


@pytest.mark.parametrize("task", [BinaryAddition(8), DigitAddition(5)])
def test_samples_do_not_depend_on_how_the_stream_is_cut(task):
    whole = task.sample(np.random.default_rng(7), 300)
    rng = np.random.default_rng(7)
    parts = [task.sample(rng, n) for n in (100, 37, 163)]
    np.testing.assert_array_equal(np.concatenate([p.X for p in parts]), whole.X)
    np.testing.assert_array_equal(np.concatenate([p.Y for p in parts]), whole.Y)


def test_digits_pair_encoding_of_the_material_example():
    task = DigitAddition(10, "pair")
    batch = task.encode(np.array([142857]), np.array([3]))
    assert batch.X.shape == (1, 10, 20) and batch.Y.shape == (1, 10, 10)
    # 142857 = [0 0 0 0 1 4 2 8 5 7] read least significant first: 7, 5, 8, 2, 4, 1, 0...
    np.testing.assert_array_equal(batch.X[0, :, :10].argmax(axis=1), [7, 5, 8, 2, 4, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch.X[0, :, 10:].argmax(axis=1), [3, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch.Y[0].argmax(axis=1), [0, 6, 8, 2, 4, 1, 0, 0, 0, 0])  # 142860


def test_digits_interleave_encoding_masks_the_a_steps():
    task = DigitAddition(3, "interleave")
    batch = task.encode(np.array([12]), np.array([39]))
    assert batch.X.shape == (1, 6, 10)
    np.testing.assert_array_equal(batch.X[0].argmax(axis=1), [2, 9, 1, 3, 0, 0])  # a0 b0 a1 b1 a2 b2
    np.testing.assert_array_equal(batch.mask[0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(batch.Y[0, 1::2].argmax(axis=1), [1, 5, 0])  # 51
    assert np.all(batch.Y[0, 0::2] == 0)


@pytest.mark.parametrize("encoding", ["pair", "interleave"])
def test_digits_samples_fit_and_decode(rng, encoding):
    task = DigitAddition(6, encoding)
    batch = task.sample(rng, 300)
    assert batch.a.max() < 10**5 and (batch.a + batch.b).max() < 10**6
    np.testing.assert_array_equal(task.decode(task.true_positions(batch)), batch.a + batch.b)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(name="ternary"), "task must be one of 'binary', 'digits'"),
        (dict(name="binary", bits=1), "bits must be at least 2"),
        (dict(name="binary", bits=63), "bits must be at most 62"),
        (dict(name="digits", digits=19), "digits must be at most 18"),
        (dict(name="digits", encoding="zigzag"), "encoding must be one of"),
        (dict(name="binary", digits=4), "digits and encoding belong to the digits task"),
        (dict(name="digits", bits=4), "bits belongs to the binary task"),
    ],
)
def test_bad_task_settings(kwargs, pattern):
    with pytest.raises(InvalidArgument, match=pattern):
        make_task(**kwargs)


@pytest.mark.parametrize("bits", [2, 8, 12, 13, 20])
def test_binary_samples_from_the_bits_table_are_encodes_numbers(bits):
    """sample() reads the bits from a table up to 12 bits: the same arrays as encode() of the same operands."""
    task = BinaryAddition(bits=bits)
    got = task.sample(np.random.default_rng(7), 50)
    want = task.encode(got.a, got.b)
    for g, w in ((got.X, want.X), (got.Y, want.Y)):
        assert g.dtype == w.dtype and g.shape == w.shape and g.flags.c_contiguous
        np.testing.assert_array_equal(g, w)
    a, b = np.random.default_rng(7).integers(0, task.limit, (50, 2), dtype=np.int64).T
    np.testing.assert_array_equal(got.a, a)
    np.testing.assert_array_equal(got.b, b)


@pytest.mark.parametrize("bits", [2, 5, 8, 9])
def test_binary_sample_into_and_next_into_are_sample_and_next(bits):
    # a sweep writes each run's data into its slot of the stacked arrays: the same draws, the same numbers
    task = BinaryAddition(bits)
    for n in (1, 37):
        want = task.sample(np.random.default_rng(3), n)
        X, Y, rng = np.full((n, bits, 2), 7.0), np.full((n, bits, 1), 7.0), np.random.default_rng(3)
        if task.sample_into(rng, n, X, Y):
            np.testing.assert_array_equal(X, want.X)
            np.testing.assert_array_equal(Y, want.Y)
        source, other = (task.source(np.random.default_rng(4), 2, np.float64) for _ in range(2))
        X, Y = np.empty((2 * n, bits, 2)), np.empty((2 * n, bits, 1))
        source.next_into(n, X, Y)
        Xw, Yw, M, _ = other.next(n)
        np.testing.assert_array_equal(X, Xw)
        np.testing.assert_array_equal(Y, Yw)
        assert source.state() == other.state()
