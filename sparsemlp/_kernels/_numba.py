"""Numba version of every kernel: the no-compiler fallback, cached on disk, serial and parallel."""

# Same positional signatures and semantics as _reference.py (the oracle) and csrc/_cython.pyx.
#
# Conventions shared by every kernel below:
# - Inputs are valid, C-contiguous and correctly typed (validated at the public boundary);
#   floats are float32 or float64, indices/pointers int32 or int64 (one dtype per call).
#   Numba compiles one specialisation per dtype combination on first use, cached on disk.
# - Outputs come last, are preallocated and fully overwritten (also empty rows/columns and
#   nnz = 0); kernels return None.
# - Element offsets are computed by Numba's array indexing in intp (int64), so int32 indices
#   never overflow in `i * B`-style arithmetic; merge offsets are cast to int64 explicitly.
# - Determinism: every product kernel is parallel over output rows only. Each output element
#   is written by exactly one thread, and its reduction over nonzeros runs sequentially in
#   ascending index order; no atomics, no cross-thread scatter-add. The bits therefore do not
#   depend on the thread count. The serial and the parallel variant share the same row
#   functions, so they give the same bits too (tests/test_numba_flags.py checks it).
#   Under _flags.FASTMATH ("reassoc", "contract") the B-length dot products of sddmm and
#   backward_fused are vectorised (partial sums over SIMD lanes, FMA): a fixed order for a
#   given compiled binary, not the left-to-right order of the reference. Numba compiles for
#   the host CPU, so these bits may differ between machines (AVX2 vs AVX-512), never between
#   runs or thread counts on one machine.
# - Threads: the parallel variants use prange and honour numba.set_num_threads (set by
#   sparsemlp._parallel.thread_limit; numba must already be imported when the block is
#   entered, which _kernels.get("numba") does). The Python wrappers pick the serial variant
#   when the work 2 * nnz * B is below _flags.PAR_MIN_FLOPS (read at call time).
# - fastmath: numba 0.68 rejects a frozenset for `fastmath`, so decorators pass
#   set(_flags.FASTMATH); never a hardcoded flag set (tests/test_numba_flags.py).
# - Cache: Numba's on-disk cache is keyed on this file's mtime/size and each function's
#   bytecode, not on the fastmath flags: after editing _flags.FASTMATH, touch this file (or
#   delete __pycache__/_numba.*.nbi/.nbc) to recompile.

import numba
import numpy as np
from numba import njit, prange

from . import _flags

NAME = "numba"

__all__ = [
    "spmm",
    "spmm_scatter",
    "spmm_t",
    "sddmm",
    "backward_fused",
    "csr_transpose",
    "csr_merge",
    "csr_compact",
    "merge_values",
    "empty_slots",
    "sgd_update",
    "adam_update",
]


# ---------------------------------------------------------------------------------------------
# Row bodies shared by the serial and the parallel variants.
#
# The gathers are unrolled by 4 nonzeros: one load/store of the output row per 4 gathered rows
# instead of per row (1.5x on the forward at n=3e4, B=128). The sum is still written strictly
# left to right, ((((o + w0*x0) + w1*x1) + w2*x2) + w3*x3), the same order as the plain loop,
# and gives the same bits as it (tests/test_numba_flags.py compares against a plain loop).
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _spmm_row(j, indptr_t, indices_t, perm, data, xt, out):
    # out[j, :] = sum_{k in column j of W, ascending} data[perm[k]] * xt[indices_t[k], :]
    o = out[j]
    nb = o.shape[0]
    for b in range(nb):
        o[b] = 0.0
    k = np.int64(indptr_t[j])
    end = np.int64(indptr_t[j + 1])
    while k + 4 <= end:
        w0 = data[perm[k]]
        w1 = data[perm[k + 1]]
        w2 = data[perm[k + 2]]
        w3 = data[perm[k + 3]]
        x0 = xt[indices_t[k]]
        x1 = xt[indices_t[k + 1]]
        x2 = xt[indices_t[k + 2]]
        x3 = xt[indices_t[k + 3]]
        for b in range(nb):
            o[b] = (((o[b] + w0 * x0[b]) + w1 * x1[b]) + w2 * x2[b]) + w3 * x3[b]
        k += 4
    while k < end:
        w0 = data[perm[k]]
        x0 = xt[indices_t[k]]
        for b in range(nb):
            o[b] += w0 * x0[b]
        k += 1


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _spmm_t_row(i, indptr, indices, data, dyt, out):
    # out[i, :] = sum_{k in row i of W, ascending} data[k] * dyt[indices[k], :]
    o = out[i]
    nb = o.shape[0]
    for b in range(nb):
        o[b] = 0.0
    k = np.int64(indptr[i])
    end = np.int64(indptr[i + 1])
    while k + 4 <= end:
        w0 = data[k]
        w1 = data[k + 1]
        w2 = data[k + 2]
        w3 = data[k + 3]
        y0 = dyt[indices[k]]
        y1 = dyt[indices[k + 1]]
        y2 = dyt[indices[k + 2]]
        y3 = dyt[indices[k + 3]]
        for b in range(nb):
            o[b] = (((o[b] + w0 * y0[b]) + w1 * y1[b]) + w2 * y2[b]) + w3 * y3[b]
        k += 4
    while k < end:
        w0 = data[k]
        y0 = dyt[indices[k]]
        for b in range(nb):
            o[b] += w0 * y0[b]
        k += 1


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _sddmm_row(i, indptr, indices, xt, dyt, out):
    # out[k] = <xt[i, :], dyt[indices[k], :]> for k in row i of W; 4 dot products per pass
    # over xt[i] (1.3x at n=3e4, B=128).
    x = xt[i]
    nb = x.shape[0]
    zero = xt.dtype.type(0)
    k = np.int64(indptr[i])
    end = np.int64(indptr[i + 1])
    while k + 4 <= end:
        y0 = dyt[indices[k]]
        y1 = dyt[indices[k + 1]]
        y2 = dyt[indices[k + 2]]
        y3 = dyt[indices[k + 3]]
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for b in range(nb):
            s0 += x[b] * y0[b]
            s1 += x[b] * y1[b]
            s2 += x[b] * y2[b]
            s3 += x[b] * y3[b]
        out[k] = s0
        out[k + 1] = s1
        out[k + 2] = s2
        out[k + 3] = s3
        k += 4
    while k < end:
        y0 = dyt[indices[k]]
        s0 = zero
        for b in range(nb):
            s0 += x[b] * y0[b]
        out[k] = s0
        k += 1


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _fused_row(i, indptr, indices, data, xt, dyt, dxt, dw):
    # dxt[i, :] = sum_k data[k] * dyt[indices[k], :];  dw[k] = <xt[i, :], dyt[indices[k], :]>
    # Each gathered dyt row serves both halves inside one loop over the batch (1.4x over two
    # separate loops at n=3e4, B=128).
    x = xt[i]
    o = dxt[i]
    nb = x.shape[0]
    zero = xt.dtype.type(0)
    for b in range(nb):
        o[b] = 0.0
    k = np.int64(indptr[i])
    end = np.int64(indptr[i + 1])
    while k + 4 <= end:
        w0 = data[k]
        w1 = data[k + 1]
        w2 = data[k + 2]
        w3 = data[k + 3]
        y0 = dyt[indices[k]]
        y1 = dyt[indices[k + 1]]
        y2 = dyt[indices[k + 2]]
        y3 = dyt[indices[k + 3]]
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for b in range(nb):
            xb = x[b]
            s0 += xb * y0[b]
            s1 += xb * y1[b]
            s2 += xb * y2[b]
            s3 += xb * y3[b]
            o[b] = (((o[b] + w0 * y0[b]) + w1 * y1[b]) + w2 * y2[b]) + w3 * y3[b]
        dw[k] = s0
        dw[k + 1] = s1
        dw[k + 2] = s2
        dw[k + 3] = s3
        k += 4
    while k < end:
        w0 = data[k]
        y0 = dyt[indices[k]]
        s0 = zero
        for b in range(nb):
            s0 += x[b] * y0[b]
            o[b] += w0 * y0[b]
        dw[k] = s0
        k += 1


# ---------------------------------------------------------------------------------------------
# Serial and parallel variants (separate Python functions: one on-disk cache entry each).
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _spmm_serial(indptr_t, indices_t, perm, data, xt, out):
    for j in range(out.shape[0]):
        _spmm_row(j, indptr_t, indices_t, perm, data, xt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)
def _spmm_parallel(indptr_t, indices_t, perm, data, xt, out):
    for j in prange(out.shape[0]):
        _spmm_row(j, indptr_t, indices_t, perm, data, xt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _scatter_cols(j0, j1, indptr, indices, data, xt, out):
    # out[j0:j1] = sum over rows i ascending of data[k] * xt[i] for the row's entries in
    # columns [j0, j1) (a contiguous run of the row: its indices are sorted)
    nb = out.shape[1]
    for j in range(j0, j1):
        for b in range(nb):
            out[j, b] = 0.0
    for i in range(xt.shape[0]):
        lo = np.int64(indptr[i])
        hi = np.int64(indptr[i + 1])
        if lo == hi:
            continue
        if indices[lo] < j0:
            lo += np.searchsorted(indices[lo:hi], j0)
        if hi > lo and indices[hi - 1] >= j1:
            hi = lo + np.searchsorted(indices[lo:hi], j1)
        x = xt[i]
        for k in range(lo, hi):
            w = data[k]
            o = out[indices[k]]
            for b in range(nb):
                o[b] += w * x[b]


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)
def _scatter_parallel(nt, indptr, indices, data, xt, out):
    n_out = out.shape[0]
    for t in prange(nt):
        _scatter_cols(t * n_out // nt, (t + 1) * n_out // nt, indptr, indices, data, xt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _spmm_t_serial(indptr, indices, data, dyt, out):
    for i in range(out.shape[0]):
        _spmm_t_row(i, indptr, indices, data, dyt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)
def _spmm_t_parallel(indptr, indices, data, dyt, out):
    for i in prange(out.shape[0]):
        _spmm_t_row(i, indptr, indices, data, dyt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _sddmm_serial(indptr, indices, xt, dyt, out):
    for i in range(indptr.shape[0] - 1):
        _sddmm_row(i, indptr, indices, xt, dyt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)
def _sddmm_parallel(indptr, indices, xt, dyt, out):
    for i in prange(indptr.shape[0] - 1):
        _sddmm_row(i, indptr, indices, xt, dyt, out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _fused_serial(indptr, indices, data, xt, dyt, dxt, dw):
    for i in range(indptr.shape[0] - 1):
        _fused_row(i, indptr, indices, data, xt, dyt, dxt, dw)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)
def _fused_parallel(indptr, indices, data, xt, dyt, dxt, dw):
    for i in prange(indptr.shape[0] - 1):
        _fused_row(i, indptr, indices, data, xt, dyt, dxt, dw)


# ---------------------------------------------------------------------------------------------
# Public kernels
# ---------------------------------------------------------------------------------------------


def spmm(indptr_t, indices_t, perm, data, xt, out):
    """Forward: ``out[j] = sum_k data[perm[k]] * xt[indices_t[k]]`` over column j of W.

    indptr_t[n_out+1], indices_t[nnz], perm[nnz]: transposed index of the (n_in, n_out) CSR
    matrix W (rows = output neurons); data[nnz] in CSR order; xt[n_in, B] feature-major.
    Output: out[n_out, B], overwritten (rows of empty columns are set to 0).
    O(nnz * B) time, O(1) extra memory. A gather: parallel over output neurons j, each
    out[j] accumulated in ascending k, innermost loop over the contiguous batch axis.
    """
    if 2 * indices_t.shape[0] * xt.shape[1] < _flags.PAR_MIN_FLOPS:
        _spmm_serial(indptr_t, indices_t, perm, data, xt, out)
    else:
        _spmm_parallel(indptr_t, indices_t, perm, data, xt, out)


def spmm_scatter(indptr, indices, data, xt, out):
    """Forward by a scatter over W's rows: ``out = W.T @ xt`` with W (n_in, n_out) in CSR.

    indptr[n_in+1], indices[nnz], data[nnz]: W in canonical CSR; xt[n_in, B]; out[n_out, B]
    is overwritten. Each thread owns a contiguous range of output columns and walks all rows,
    so every out[j] sums its terms in ascending row order: ``spmm``'s bits for any thread
    count. O(nnz * B + n_in * threads) time, O(1) extra memory; for small batches, where
    streaming W beats the gather's random ``data[perm[k]]`` reads.
    """
    n_out = out.shape[0]
    if 2 * indices.shape[0] * xt.shape[1] < _flags.PAR_MIN_FLOPS:
        _scatter_cols(0, n_out, indptr, indices, data, xt, out)
    else:
        nt = max(1, min(numba.get_num_threads(), n_out))
        _scatter_parallel(nt, indptr, indices, data, xt, out)


def spmm_t(indptr, indices, data, dyt, out):
    """Backward to the inputs: ``out[i] = sum_k data[k] * dyt[indices[k]]`` over row i of W.

    indptr[n_in+1], indices[nnz], data[nnz]: W in CSR; dyt[n_out, B] feature-major.
    Output: out[n_in, B], overwritten (empty rows set to 0).
    O(nnz * B) time, O(1) extra memory. A gather over W's rows: parallel over i, each out[i]
    accumulated in ascending k, innermost loop over the batch axis.
    """
    if 2 * indices.shape[0] * dyt.shape[1] < _flags.PAR_MIN_FLOPS:
        _spmm_t_serial(indptr, indices, data, dyt, out)
    else:
        _spmm_t_parallel(indptr, indices, data, dyt, out)


def sddmm(indptr, indices, xt, dyt, out):
    """Per-connection gradient: ``out[k] = <xt[i], dyt[indices[k]]>`` for entry k of row i.

    indptr[n_in+1], indices[nnz]: W's CSR pattern; xt[n_in, B], dyt[n_out, B] feature-major.
    Output: out[nnz] in W.data (CSR) order, fully overwritten.
    O(nnz * B) time, O(1) extra memory. Parallel over W's rows i (xt[i] reused across the
    row); each out[k] is one contiguous B-length dot product, written by one thread.
    """
    if 2 * indices.shape[0] * xt.shape[1] < _flags.PAR_MIN_FLOPS:
        _sddmm_serial(indptr, indices, xt, dyt, out)
    else:
        _sddmm_parallel(indptr, indices, xt, dyt, out)


def backward_fused(indptr, indices, data, xt, dyt, dxt, dw):
    """``spmm_t`` and ``sddmm`` in one pass over W's rows.

    Inputs as in spmm_t and sddmm. Outputs: dxt[n_in, B] and dw[nnz], overwritten. dxt has
    the same bits as ``spmm_t``; dw matches ``sddmm`` to rounding only (the vectoriser splits
    the B-length dot into partial sums differently when it shares the loop with the axpy).
    O(nnz * B) time, O(1) extra memory. Parallel over W's rows i; one gather of dyt[j] per
    nonzero serves both dxt[i] += w * dyt[j] and dw[k] = <xt[i], dyt[j]>.
    """
    if 2 * indices.shape[0] * xt.shape[1] < _flags.PAR_MIN_FLOPS:
        _fused_serial(indptr, indices, data, xt, dyt, dxt, dw)
    else:
        _fused_parallel(indptr, indices, data, xt, dyt, dxt, dw)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def csr_transpose(indptr, indices, n_cols, indptr_t, indices_t, perm):
    """Column index of a CSR pattern by a stable counting sort.

    indptr[n_rows+1], indices[nnz]: a CSR pattern with n_cols columns. Outputs, overwritten:
    indptr_t[n_cols+1], indices_t[nnz] (row of each entry, rows ascending within a column)
    and perm[nnz] (CSR position of the k-th entry in column order). All of one index dtype.
    O(nnz + n_rows + n_cols) time, no extra memory (indptr_t doubles as the fill cursor).
    Serial: one pass counts, one prefix sum, one stable scatter in CSR order.
    """
    n_rows = indptr.shape[0] - 1
    for c in range(n_cols + 1):
        indptr_t[c] = 0
    for k in range(indices.shape[0]):
        indptr_t[np.int64(indices[k]) + 1] += 1
    for c in range(n_cols):
        indptr_t[c + 1] += indptr_t[c]
    # indptr_t[c] is now the start of column c; use it as the next free slot of column c.
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            c = indices[k]
            d = np.int64(indptr_t[c])
            indices_t[d] = i
            perm[d] = k
            indptr_t[c] = d + 1
    # indptr_t[c] is now the end of column c, i.e. the start of c + 1: shift back by one.
    for c in range(n_cols, 0, -1):
        indptr_t[c] = indptr_t[c - 1]
    indptr_t[0] = 0


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def csr_merge(indptr_a, indices_a, indptr_b, indices_b, indptr_out, indices_out, from_b):
    """Row-wise merge of two canonical CSR patterns with no common entries.

    indptr_a[n_rows+1], indices_a[nnz_a], indptr_b[n_rows+1], indices_b[nnz_b]: canonical
    patterns of one shape. Outputs, overwritten: indptr_out[n_rows+1] = indptr_a + indptr_b,
    indices_out[nnz_a+nnz_b] (columns ascending in each row) and from_b[nnz_a+nnz_b] (int8:
    1 where the entry comes from b). On an equal column a comes before b.
    O(nnz_a + nnz_b + n_rows) time, no extra memory. Serial two-pointer merge per row.
    """
    n_rows = indptr_a.shape[0] - 1
    for r in range(n_rows + 1):
        indptr_out[r] = np.int64(indptr_a[r]) + np.int64(indptr_b[r])
    for r in range(n_rows):
        p = np.int64(indptr_a[r]) + np.int64(indptr_b[r])
        ka = np.int64(indptr_a[r])
        ea = np.int64(indptr_a[r + 1])
        kb = np.int64(indptr_b[r])
        eb = np.int64(indptr_b[r + 1])
        while ka < ea and kb < eb:
            if indices_b[kb] < indices_a[ka]:
                indices_out[p] = indices_b[kb]
                from_b[p] = 1
                kb += 1
            else:
                indices_out[p] = indices_a[ka]
                from_b[p] = 0
                ka += 1
            p += 1
        while ka < ea:
            indices_out[p] = indices_a[ka]
            from_b[p] = 0
            ka += 1
            p += 1
        while kb < eb:
            indices_out[p] = indices_b[kb]
            from_b[p] = 1
            kb += 1
            p += 1


# ---------------------------------------------------------------------------------------------
# Optimizer updates
# ---------------------------------------------------------------------------------------------
#
# These are NOT jitted, on purpose. Their contract is the reference's evaluation order, bit for
# bit (tests/test_kernels.py::test_sgd_update checks v = mu*v - lr*(g/div) exactly). Under
# _flags.FASTMATH LLVM contracts `mu*v - lr*g` into an FMA ("contract") and turns `g / div`
# into `g * (1/div)` ("arcp"), which changes ~25 % of the results in the last bit; the rules
# for this module allow no other fastmath setting on a jitted function. So they are in-place
# NumPy ufunc sequences in the reference's exact order (same bits as _reference.py) with two
# temporaries instead of the reference's five or six. Elementwise, O(n), memory-bound.


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _csr_compact(indptr, indices, data, keep_index, indptr_k, indices_k, data_k):
    n_rows = indptr.shape[0] - 1
    m = keep_index.shape[0]
    w = 0
    indptr_k[0] = 0
    for i in range(n_rows):
        end = np.int64(indptr[i + 1])
        while w < m and keep_index[w] < end:
            p = keep_index[w]
            indices_k[w] = indices[p]
            data_k[w] = data[p]
            w += 1
        indptr_k[i + 1] = w


def csr_compact(indptr, indices, data, keep_index, indptr_k, indices_k, data_k):
    """The entries of a CSR matrix at ascending positions ``keep_index``, as a CSR matrix.

    indptr[n_rows+1], indices[nnz], data[nnz]; keep_index[m]: int64, ascending, distinct,
    in [0, nnz). Fills indptr_k[n_rows+1], indices_k[m], data_k[m]. One pass over the rows
    and keep_index together: O(n_rows + m) time, serial.
    """
    _csr_compact(indptr, indices, data, keep_index, indptr_k, indices_k, data_k)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _merge_values(from_b, data_a, data_b, data_out):
    na = 0
    nb = 0
    for p in range(from_b.shape[0]):
        if from_b[p]:
            data_out[p] = data_b[nb]
            nb += 1
        else:
            data_out[p] = data_a[na]
            na += 1


def merge_values(from_b, data_a, data_b, data_out):
    """Interleave two value arrays as a merge decided: the values of ``csr_merge``'s output.

    from_b[n]: int8, 1 where merged entry p comes from b; data_a, data_b: a's and b's values
    in order (``len(data_a) + len(data_b) == n``). Fills data_out[n]. O(n) time, serial.
    """
    if data_a.shape[0] + data_b.shape[0] != from_b.shape[0]:
        raise ValueError("merge_values: len(data_a) + len(data_b) must equal len(from_b).")
    _merge_values(from_b, data_a, data_b, data_out)


@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH))
def _empty_slots(indptr_k, ind_k, n_out, ranks):
    n_rows = indptr_k.shape[0] - 1
    i = 0
    e_row = 0  # empty slots before row i
    start = np.int64(indptr_k[0])
    t = start
    for a in range(ranks.shape[0]):
        r = ranks[a]
        while True:
            if i >= n_rows:
                return False
            end = np.int64(indptr_k[i + 1])
            empty = n_out - (end - start)
            if r < e_row + empty:
                break
            e_row += empty
            i += 1
            start = end
            t = start
        q = r - e_row
        end = np.int64(indptr_k[i + 1])
        while t < end and np.int64(ind_k[t]) - (t - start) <= q:
            t += 1
        ranks[a] = np.int64(i) * n_out + q + (t - start)
    return True


def empty_slots(indptr_k, ind_k, n_out, ranks):
    """Row-major linear positions ``i * n_out + j`` of the empty slots with the given ranks.

    indptr_k[n_rows+1], ind_k[nnz]: canonical CSR pattern with n_out columns; ranks[k]:
    int64, ascending, distinct, below ``n_rows * n_out - nnz``; overwritten with the
    positions. One merge-like pass over rows and ranks: within row i the q-th empty column
    is ``q + #{u : col_u - u <= q}`` (u the entry's position in the row), found by a pointer
    that only moves forward. O(n_rows + nnz + k) time, serial, O(1) extra memory.
    """
    if not _empty_slots(indptr_k, ind_k, np.int64(n_out), ranks):
        raise ValueError("empty_slots: a rank is not below the number of empty slots.")


def sgd_update(param, velocity, grad, lr, momentum, weight_decay, batch_divisor, coupled,
               nesterov):
    """In-place SGD step with momentum on aligned arrays; same bits as the reference.

    param, velocity, grad: float arrays of one length and dtype; scalars are Python numbers
    converted to param's dtype. ``g = grad / batch_divisor`` (``+ wd*w`` if coupled);
    ``v = mu*v - lr*g``; step ``v`` or (nesterov) ``mu*v - lr*g``; ``w += step`` if coupled
    else ``w += step - wd*w``. O(n) time, two temporaries of length n.
    """
    dt = param.dtype.type
    lr, mu, wd = dt(lr), dt(momentum), dt(weight_decay)
    g = np.divide(grad, dt(batch_divisor))
    tmp = np.empty_like(g)
    if coupled:
        np.multiply(wd, param, out=tmp)
        g += tmp
    np.multiply(lr, g, out=g)  # g now holds lr*g
    velocity *= mu
    velocity -= g
    if nesterov:
        np.multiply(mu, velocity, out=tmp)
        tmp -= g
        step = tmp
    else:
        step = velocity
    if coupled:
        param += step
    else:
        np.multiply(wd, param, out=g)
        np.subtract(step, g, out=g)
        param += g


def adam_update(param, m, v, grad, lr, beta1, beta2, adam_eps, weight_decay, batch_divisor,
                bias_c1, bias_c2, decoupled):
    """In-place Adam/AdamW step on aligned arrays; same bits as the reference.

    ``g = grad / batch_divisor`` (``+ wd*w`` unless decoupled); ``m = b1*m + (1-b1)*g``;
    ``v = b2*v + (1-b2)*g*g``; ``w -= lr * (m/bias_c1) / (sqrt(v/bias_c2) + eps)``; with
    decoupled (AdamW) ``w -= lr*wd*w`` first, from the old w. O(n) time, two temporaries.
    """
    dt = param.dtype.type
    lr, b1, b2 = dt(lr), dt(beta1), dt(beta2)
    eps, wd = dt(adam_eps), dt(weight_decay)
    g = np.divide(grad, dt(batch_divisor))
    tmp = np.empty_like(g)
    if not decoupled:
        np.multiply(wd, param, out=tmp)
        g += tmp
    m *= b1
    np.multiply(dt(1) - b1, g, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=g)
    g *= dt(1) - b2
    v += g
    np.divide(v, dt(bias_c2), out=tmp)
    np.sqrt(tmp, out=tmp)
    tmp += eps
    np.divide(m, dt(bias_c1), out=g)
    g /= tmp
    g *= lr
    if decoupled:
        np.multiply(lr * wd, param, out=tmp)
        param -= tmp
    param -= g
