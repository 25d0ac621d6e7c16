"""NumPy/SciPy version of every kernel: the always-available fallback and the test oracle."""

import numpy as np
import scipy.sparse as sp

from ._flags import REF_CHUNK

NAME = "numpy"

# Every kernel follows one signature in every backend (see sparsemlp/_kernels/__init__.py):
# outputs come last and are preallocated, kernels return None, batch reductions are sums.


def spmm(indptr_t, indices_t, perm, data, xt, out):
    """Forward: ``out[j] = sum_k data[perm[k]] * xt[indices_t[k]]`` over column j of W.

    indptr_t[n_out+1], indices_t[nnz], perm[nnz] is the transposed index of the
    (n_in, n_out) CSR matrix W; xt[n_in, B]; out[n_out, B] is overwritten.
    O(nnz * B) time.
    """
    n_out, n_in = out.shape[0], xt.shape[0]
    wt = sp.csr_array((data[perm], indices_t, indptr_t), shape=(n_out, n_in))
    out[...] = wt @ xt


def spmm_scatter(indptr, indices, data, xt, out):
    """Forward by a scatter over W's rows: ``out = W.T @ xt`` with W (n_in, n_out) in CSR.

    indptr[n_in+1], indices[nnz], data[nnz]: W in canonical CSR; xt[n_in, B]; out[n_out, B]
    is overwritten. The same result as ``spmm`` on W's transposed index (each output sums
    its terms in ascending row order). O(nnz * B) time.
    """
    w = sp.csr_array((data, indices, indptr), shape=(xt.shape[0], out.shape[0]))
    out[...] = w.T @ xt


def spmm_t(indptr, indices, data, dyt, out):
    """Backward to the inputs: ``out[i] = sum_k data[k] * dyt[indices[k]]`` over row i of W.

    indptr[n_in+1], indices[nnz], data[nnz]: W in CSR; dyt[n_out, B]; out[n_in, B] is
    overwritten. O(nnz * B) time.
    """
    w = sp.csr_array((data, indices, indptr), shape=(out.shape[0], dyt.shape[0]))
    out[...] = w @ dyt


def _rows(indptr):
    n_rows = indptr.shape[0] - 1
    return np.repeat(np.arange(n_rows, dtype=indptr.dtype), np.diff(indptr))


def sddmm(indptr, indices, xt, dyt, out):
    """Per-connection gradient: ``out[k] = <xt[i], dyt[indices[k]]>`` for entry k of row i.

    Written in W.data order (CSR). xt[n_in, B], dyt[n_out, B], out[nnz]. O(nnz * B) time,
    O(chunk * B) extra memory.
    """
    rows = _rows(indptr)
    nnz = indices.shape[0]
    for s in range(0, nnz, REF_CHUNK):
        e = min(s + REF_CHUNK, nnz)
        out[s:e] = np.einsum("kb,kb->k", xt[rows[s:e]], dyt[indices[s:e]])


def backward_fused(indptr, indices, data, xt, dyt, dxt, dw):
    """``spmm_t`` and ``sddmm`` in one call: dxt[n_in, B] and dw[nnz] are overwritten."""
    spmm_t(indptr, indices, data, dyt, dxt)
    sddmm(indptr, indices, xt, dyt, dw)


def csr_transpose(indptr, indices, n_cols, indptr_t, indices_t, perm):
    """Column index of a CSR pattern by a stable counting sort.

    Fills indptr_t[n_cols+1], indices_t[nnz] (row of each entry, rows ascending within
    a column) and perm[nnz] (position in CSR order of the k-th entry in column order).
    O(nnz + n_rows + n_cols).
    """
    order = np.argsort(indices, kind="stable")
    perm[:] = order
    indices_t[:] = _rows(indptr)[order]
    indptr_t[0] = 0
    np.cumsum(np.bincount(indices, minlength=n_cols), out=indptr_t[1:])


def csr_merge(indptr_a, indices_a, indptr_b, indices_b, indptr_out, indices_out, from_b):
    """Row-wise merge of two canonical CSR patterns with no common entries.

    Fills indptr_out[n_rows+1], indices_out[nnz_a+nnz_b] (columns ascending in each row)
    and from_b[nnz_a+nnz_b] (1 where the entry comes from b, else 0); on equal entries a
    comes first. O(nnz_a + nnz_b log nnz_a): each b entry lands at its rank among a's.
    """
    n_b = indices_b.shape[0]
    indptr_out[:] = indptr_a
    indptr_out += indptr_b
    if n_b == 0:
        indices_out[:] = indices_a
        from_b[:] = 0
        return
    width = int(max(indices_a.max(initial=0), indices_b.max(initial=0))) + 1
    keys_a = _rows(indptr_a).astype(np.int64) * width + indices_a
    keys_b = _rows(indptr_b).astype(np.int64) * width + indices_b
    pos_b = np.searchsorted(keys_a, keys_b, side="right") + np.arange(n_b)
    from_b[:] = 0
    from_b[pos_b] = 1
    indices_out[pos_b] = indices_b
    indices_out[from_b == 0] = indices_a


def csr_compact(indptr, indices, data, keep_index, indptr_k, indices_k, data_k):
    """The entries of a CSR matrix at ascending positions ``keep_index``, as a CSR matrix.

    indptr[n_rows+1], indices[nnz], data[nnz]: the CSR matrix; keep_index[m]: int64,
    ascending, distinct positions in [0, nnz). Fills indptr_k[n_rows+1] and
    indices_k[m], data_k[m] (the kept entries in order). O(nnz + n_rows log m) time.
    """
    indptr_k[:] = np.searchsorted(keep_index, indptr)
    np.take(indices, keep_index, out=indices_k)
    np.take(data, keep_index, out=data_k)


def merge_values(from_b, data_a, data_b, data_out):
    """Interleave two value arrays as a merge decided: the values of ``csr_merge``'s output.

    from_b[n]: int8, 1 where entry p of the merged matrix comes from b; data_a, data_b: the
    values of a and b in order (``len(data_a) + len(data_b) == n``). Fills data_out[n]:
    a's values at the 0s, b's at the 1s, each in order. O(n) time.
    """
    fresh = from_b.view(bool)
    data_out[~fresh] = data_a
    data_out[fresh] = data_b


# empty_slots lists the empty slots in a boolean mask over all slots while they are at most
# this many per connection, and builds its search keys per chunk of this many ranks.
_DENSE_SLOTS = 4
_CHUNK = 1 << 18


def empty_slots(indptr_k, ind_k, n_out, ranks):
    """Row-major linear positions ``i * n_out + j`` of the empty slots with the given ranks.

    indptr_k[n_rows+1], ind_k[nnz]: a canonical CSR pattern (the kept entries) with n_out
    columns; ranks[k]: int64, ascending, distinct, each below the number of empty slots
    ``n_rows * n_out - nnz``; overwritten with the positions (ascending too). Rank s counts
    empty slots in row-major order.

    With the kept entries' linear keys ``L_0 < L_1 < ...`` (CSR order), ``g_t = L_t - t`` is
    the number of empty slots before kept entry t, a non-decreasing key, and exactly the
    kept entries with ``g_t <= s`` precede the s-th empty slot, which therefore sits at
    ``s + searchsorted(g, s, "right")``: one global binary search, exact at any density,
    O(nnz + k log nnz) time. g is built per chunk of ranks on the rows the chunk spans (no
    nnz-sized int64 array). On dense layers (at most ``_DENSE_SLOTS`` slots per connection)
    the empty slots are listed from a boolean mask over all slots instead (O(slots)).
    """
    n_rows = indptr_k.shape[0] - 1
    slots = n_rows * n_out
    if ranks.shape[0] == 0:
        return
    if slots <= _DENSE_SLOTS * (ind_k.shape[0] + ranks.shape[0]):
        occupied = np.zeros(slots, dtype=bool)
        keys = np.repeat(np.arange(n_rows, dtype=np.int64) * n_out, np.diff(indptr_k))
        keys += ind_k
        occupied[keys] = True
        np.logical_not(occupied, out=occupied)
        ranks[...] = np.flatnonzero(occupied)[ranks]
        return
    # g_t = E_i + col_t - (t - indptr_k[i]) for t in row i, with E_i = i * n_out - indptr_k[i]
    # the empty slots before row i; g of row i lies in [E_i, E_{i+1}]. A chunk of sorted
    # ranks r (E_lo <= r < E_{hi+1}) needs g only on rows lo..hi: every earlier entry has
    # g <= r and every later one g > r.
    E = np.arange(n_rows + 1, dtype=np.int64)
    E *= n_out
    E -= indptr_k
    for a in range(0, ranks.shape[0], _CHUNK):
        r = ranks[a:a + _CHUNK]
        lo = int(np.searchsorted(E, r[0], side="right")) - 1
        hi = int(np.searchsorted(E, r[-1], side="right")) - 1
        t0, t1 = int(indptr_k[lo]), int(indptr_k[hi + 1])
        base = np.arange(lo, hi + 1, dtype=np.int64)
        base *= n_out
        g = np.repeat(base, np.diff(indptr_k[lo:hi + 2]))
        g += ind_k[t0:t1]
        g -= np.arange(t0, t1, dtype=np.int64)
        pos = np.searchsorted(g, r, side="right")
        pos += t0
        r += pos


def sgd_update(param, velocity, grad, lr, momentum, weight_decay, batch_divisor, coupled,
               nesterov):
    """In-place SGD step with momentum on aligned arrays (all float, same length).

    ``g = grad / batch_divisor``. Original SET semantics (coupled=0):
    ``v = mu*v - lr*g; w = w + (v - wd*w)``. Coupled (coupled=1):
    ``v = mu*v - lr*(g + wd*w); w = w + v``. Nesterov replaces the step ``v`` added to
    ``w`` by ``mu*v_new - lr*g`` (g including the coupled decay). O(n), elementwise.
    """
    dt = param.dtype.type
    lr, momentum, wd = dt(lr), dt(momentum), dt(weight_decay)
    g = grad / dt(batch_divisor)
    if coupled:
        g = g + wd * param
    velocity[...] = momentum * velocity - lr * g
    step = momentum * velocity - lr * g if nesterov else velocity
    if coupled:
        param += step
    else:
        param += step - wd * param


def adam_update(param, m, v, grad, lr, beta1, beta2, adam_eps, weight_decay, batch_divisor,
                bias_c1, bias_c2, decoupled):
    """In-place Adam step on aligned arrays.

    ``g = grad / batch_divisor`` (+ ``wd*w`` unless decoupled); ``m = b1*m + (1-b1)*g``;
    ``v = b2*v + (1-b2)*g*g``; ``w -= lr * (m/bias_c1) / (sqrt(v/bias_c2) + eps)``; with
    decoupled=1 (AdamW) ``w -= lr*wd*w`` first, from the old w. O(n), elementwise.
    """
    dt = param.dtype.type
    lr, b1, b2 = dt(lr), dt(beta1), dt(beta2)
    eps, wd = dt(adam_eps), dt(weight_decay)
    g = grad / dt(batch_divisor)
    if not decoupled:
        g = g + wd * param
    m[...] = b1 * m + (dt(1) - b1) * g
    v[...] = b2 * v + (dt(1) - b2) * (g * g)
    upd = lr * ((m / dt(bias_c1)) / (np.sqrt(v / dt(bias_c2)) + eps))
    if decoupled:
        param -= lr * wd * param
    param -= upd
