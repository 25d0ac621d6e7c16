"""topology.csr contracts that mutation testing found unchecked: index dtypes, memory sharing."""

import numpy as np
import pytest

from sparsemlp.topology.csr import canonical_csr, choose_index_dtype, sorted_unique

INT32_MAX = 2**31 - 1


@pytest.mark.parametrize("shape", [(2**31, 10), (10, 2**31)])
def test_choose_index_dtype_looks_at_both_dimensions(shape):
    """A dimension above the int32 range needs int64 indices, rows or columns alike."""
    n_in, n_out = shape
    assert max(shape) > INT32_MAX
    assert choose_index_dtype(None, n_in, n_out, 50) == np.int64
    with pytest.raises(ValueError, match=rf"The 'index_dtype' parameter of choose_index_dtype "
                                         rf"is int32, but the {n_in}x{n_out} layer with 50 "
                                         r"connections needs int64 indices"):
        choose_index_dtype(np.int32, n_in, n_out, 50)


def test_choose_index_dtype_names_itself_by_default():
    with pytest.raises(ValueError, match=r"^The 'index_dtype' parameter of choose_index_dtype "
                                         r"must be int32 or int64. Got int8 instead.$"):
        choose_index_dtype(np.int8, 3, 3, 2)


def _pattern(idt):
    # the 2 x 3 pattern [[a, 0, b], [0, c, 0]]
    return (np.array([0, 2, 3], dtype=idt), np.array([0, 2, 1], dtype=idt),
            np.array([1.5, -2.0, 3.0]))


@pytest.mark.parametrize("idt", [np.int32, np.int64])
def test_canonical_csr_shares_arrays_that_fit(idt):
    """The arrays are used as they are (no copy of a layer's size) when their dtype fits."""
    indptr, indices, values = _pattern(idt)
    W = canonical_csr(indptr, indices, values, 2, 3, np.dtype(idt))
    np.testing.assert_array_equal(W.toarray(), [[1.5, 0, -2.0], [0, 3.0, 0]])
    assert W.indices.dtype == W.indptr.dtype == idt
    assert np.shares_memory(W.data, values)
    assert np.shares_memory(W.indices, indices)
    assert np.shares_memory(W.indptr, indptr)
    assert W.has_sorted_indices and W.has_canonical_format


def test_canonical_csr_keeps_the_asked_index_dtype_where_scipy_picks_another():
    """SciPy widens int32 indices of a matrix wider than the int32 range; the asked dtype stays."""
    indptr, indices, values = _pattern(np.int32)
    W = canonical_csr(indptr, indices, values, 2, 2**31 + 5, np.dtype(np.int32))
    assert W.indices.dtype == W.indptr.dtype == np.int32
    np.testing.assert_array_equal(W.indptr, [0, 2, 3])
    np.testing.assert_array_equal(W.indices, [0, 2, 1])
    np.testing.assert_array_equal(W.data, values)


def test_sorted_unique_leaves_its_input_alone_by_default():
    a = np.array([5, 1, 5, 3, 1, 9])
    got = sorted_unique(a)
    np.testing.assert_array_equal(got, [1, 3, 5, 9])
    np.testing.assert_array_equal(a, [5, 1, 5, 3, 1, 9])


def test_sorted_unique_inplace_returns_a_view_of_the_input():
    """inplace=True compacts within the input's buffer: no second array of its size."""
    a = np.array([5, 1, 5, 3, 1, 9, 3])
    got = sorted_unique(a, inplace=True)
    np.testing.assert_array_equal(got, [1, 3, 5, 9])
    assert np.shares_memory(got, a)
