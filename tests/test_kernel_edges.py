"""Edge cases of the topology kernels on every backend against plain-Python oracles."""

import numpy as np
import pytest

from sparsemlp import _kernels


def _csr(rows, n_rows, idt):
    """(indptr, indices) of a pattern given as one sorted list of columns per row."""
    indptr = np.zeros(n_rows + 1, idt)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([c for r in rows for c in r], idt)
    return indptr, indices


@pytest.mark.parametrize("a_rows,b_rows", [
    ([[0, 3], [], [1, 2, 4]], [[], [], []]),        # nothing to merge in
    ([[], [], []], [[2], [0, 4], []]),              # nothing kept
    ([[0], [0], [0]], [[1], [], [2]]),              # one column only in a
])
def test_csr_merge_with_an_empty_side(backend, index_dtype, a_rows, b_rows):
    ks = _kernels.get(backend)
    ia, ja = _csr(a_rows, 3, index_dtype)
    ib, jb = _csr(b_rows, 3, index_dtype)
    n = ja.shape[0] + jb.shape[0]
    ip = np.full(4, -1, index_dtype)
    jj = np.full(n, -1, index_dtype)
    fb = np.full(n, 7, np.int8)  # garbage: every entry must be written
    ks.csr_merge(ia, ja, ib, jb, ip, jj, fb)
    merged = [sorted([(c, 0) for c in ra] + [(c, 1) for c in rb]) for ra, rb in zip(a_rows, b_rows)]
    exp_ip, exp_j = _csr([[c for c, _ in r] for r in merged], 3, index_dtype)
    np.testing.assert_array_equal(ip, exp_ip)
    np.testing.assert_array_equal(jj, exp_j)
    np.testing.assert_array_equal(fb, [s for r in merged for _, s in r])
