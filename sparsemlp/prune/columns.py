"""A layer as output-neuron columns: saliencies, restricted inverse Hessians, batched refits.

Output neuron ``j`` of a layer ``z = x W + b`` has the weight vector ``W[:, j]`` over its
support (the inputs it is connected to) and the bias ``b[j]``; with the bias as the extra
coordinate ``n_in`` every neuron's squared output error on calibration inputs is
``½ δᵀ H δ`` for one Hessian ``H`` shared by the layer (``calibration.hessian``). Columns
are processed in batches of equal support size, ``CHUNK_BYTES`` of stacked matrices at a
time, so memory stays O(n_in² + nnz) whatever the layer's shape.
"""

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

__all__ = ["LayerColumns", "CHUNK_BYTES", "saliencies", "restricted_inverse_diag", "refit",
           "lowest"]

#: Stacked per-neuron matrices processed at once (float64 bytes).
CHUNK_BYTES = 64 << 20


class LayerColumns:
    """The weights of a layer in column (output-neuron) order, as float64.

    Parameters
    ----------
    W : scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical weights.
    b : ndarray of shape (n_out,)
        Bias.

    Attributes
    ----------
    indptr : ndarray of shape (n_out + 1,)
        Column pointer (int64).
    rows : ndarray of shape (nnz,)
        Input of every entry, sorted within a column (int64).
    vals : ndarray of shape (nnz,)
        Weight of every entry (float64 copy).
    bias : ndarray of shape (n_out,)
        Bias (float64 copy).
    """

    def __init__(self, W, b):
        C = sp.csc_array(W)
        C.sort_indices()
        self.n_in, self.n_out = W.shape
        self.indptr = C.indptr.astype(np.int64)
        self.rows = C.indices.astype(np.int64)
        self.vals = C.data.astype(np.float64)
        self.bias = np.array(b, dtype=np.float64)
        self.dtype = W.dtype
        self.index_dtype = W.indices.dtype

    @property
    def nnz(self):
        """Number of entries."""
        return int(self.indptr[-1])

    @property
    def counts(self):
        """Entries per column.

        Returns
        -------
        ndarray of int64
            Connections of every output neuron.
        """
        return np.diff(self.indptr)

    @property
    def column_of(self):
        """Column (output neuron) of every entry.

        Returns
        -------
        ndarray of int64
            Output neuron of every entry, in entry order.
        """
        return np.repeat(np.arange(self.n_out), self.counts)

    def kept_counts(self, keep):
        """Kept entries per column.

        Parameters
        ----------
        keep : ndarray of bool, shape (nnz,)
            Entries that stay.

        Returns
        -------
        ndarray of int64, shape (n_out,)
            Counts.
        """
        c = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        return c[self.indptr[1:]] - c[self.indptr[:-1]]

    def to_csr(self, keep, vals):
        """Canonical CSR of the kept entries with new values.

        Parameters
        ----------
        keep : ndarray of bool, shape (nnz,)
            Entries that stay.
        vals : ndarray of shape (nnz,)
            Their values (entries not kept are ignored).

        Returns
        -------
        scipy.sparse.csr_array of shape (n_in, n_out)
            Sorted, unique indices in the layer's value and index dtypes.
        """
        indptr = np.concatenate([[0], np.cumsum(self.kept_counts(keep))])
        C = sp.csc_array((vals[keep].astype(self.dtype), self.rows[keep], indptr),
                         shape=(self.n_in, self.n_out))
        R = sp.csr_array(C.tocsr())
        R.sort_indices()
        idt = self.index_dtype
        out = sp.csr_array((R.data, R.indices.astype(idt), R.indptr.astype(idt)), shape=R.shape)
        out.has_sorted_indices = True
        return out


def groups(sizes, columns, *, extra=0, width=0):
    """Batches of columns with equal ``sizes``: yields ``(size, column indices)``.

    Each batch holds at most ``CHUNK_BYTES`` of ``(size + extra)²`` float64 matrices (and
    ``width`` more float64 values per column).

    Parameters
    ----------
    sizes : ndarray of int
        A size per column of the layer.
    columns : ndarray of int
        The columns to batch.
    extra : int, default=0
        Coordinates added to every size (the bias).
    width : int, default=0
        Further float64 values held per column.

    Yields
    ------
    size : int
        The common size.
    batch : ndarray of int
        Column indices.
    """
    columns = np.asarray(columns, np.int64)
    if columns.size == 0:
        return
    sz = sizes[columns]
    order = np.argsort(sz, kind="stable")
    columns, sz = columns[order], sz[order]
    starts = np.flatnonzero(np.r_[True, sz[1:] != sz[:-1]])
    for a, e in zip(starts, np.r_[starts[1:], columns.size]):
        s = int(sz[a])
        step = max(1, CHUNK_BYTES // (8 * ((s + extra) ** 2 + width)))
        for c in range(a, e, step):
            yield s, columns[c:min(e, c + step)]


def coordinates(cols, batch, size, keep=None, *, bias=True):
    """Hessian coordinates of a batch of columns: ``(len(batch), size + bias)`` int64.

    Parameters
    ----------
    cols : LayerColumns
        The layer.
    batch : ndarray of int
        Columns, each with ``size`` entries (kept entries when ``keep`` is given).
    size : int
        Entries per column.
    keep : ndarray of int, optional
        Only these entries (their positions, ascending: ``np.flatnonzero`` of a mask).
    bias : bool, default=True
        Append the bias coordinate ``n_in``.

    Returns
    -------
    idx : ndarray of shape (B, size + bias)
        Input indices, then ``n_in``.
    pos : ndarray of shape (B, size)
        Entry positions in ``cols.rows`` / ``cols.vals``.
    """
    B = batch.shape[0]
    if keep is None:
        pos = cols.indptr[batch][:, None] + np.arange(size)[None, :]
    else:
        first = np.searchsorted(keep, cols.indptr[batch])
        pos = keep[first[:, None] + np.arange(size)[None, :]]
    idx = cols.rows[pos]
    if bias:
        idx = np.concatenate([idx, np.full((B, 1), cols.n_in, np.int64)], axis=1)
    return idx, pos


def _block(H, S):
    """``H[S][:, S]`` (two contiguous gathers: much faster than one 2-D fancy index)."""
    return H[S][:, S]


def _cholesky(M):
    """Lower Cholesky factor of one symmetric positive definite matrix (LAPACK potrf)."""
    c, info = lapack.dpotrf(M, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError("matrix not positive definite")
    return c


def inverse_diag(H, idx):
    """``diag(H_SS⁻¹)`` for every row ``S`` of ``idx`` (H symmetric positive definite).

    With ``H_SS = L Lᵀ``, ``H_SS⁻¹ = L⁻ᵀ L⁻¹`` and its diagonal holds the squared column
    norms of ``L⁻¹`` (one potrf and one trtri: about ⅔ s³ multiply-adds).

    Parameters
    ----------
    H : ndarray of shape (m, m)
        Symmetric positive definite matrix.
    idx : ndarray of int, shape (B, s)
        Index sets.

    Returns
    -------
    ndarray of shape (B, s)
        The diagonals.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is not positive definite.
    """
    out = np.empty(idx.shape)
    for k, S in enumerate(idx):
        Li, info = lapack.dtrtri(_cholesky(_block(H, S)), lower=1, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError("matrix is singular")
        out[k] = np.einsum("ij,ij->j", Li, Li)
    return out


def spd_solve(H, idx, rhs):
    """Solve ``H_SS x = r`` for every row ``S`` of ``idx`` (Cholesky, then potrs).

    Parameters
    ----------
    H : ndarray of shape (m, m)
        Symmetric positive definite matrix.
    idx : ndarray of int, shape (B, s)
        Index sets.
    rhs : ndarray of shape (B, s)
        Right-hand sides.

    Returns
    -------
    ndarray of shape (B, s)
        Solutions.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is not positive definite.
    """
    out = np.empty(rhs.shape)
    for k, S in enumerate(idx):
        x, info = lapack.dpotrs(_cholesky(_block(H, S)), rhs[k], lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("potrs failed")
        out[k] = x
    return out


def restricted_inverse_diag(H, cols, *, bias=True, tick=None):
    """``[H_S⁻¹]_qq`` of every entry q, with S the support (and bias) of q's column.

    Parameters
    ----------
    H : ndarray of shape (n_in + bias, n_in + bias)
        The layer's Hessian.
    cols : LayerColumns
        The layer.
    bias : bool, default=True
        ``H`` has the bias coordinate.
    tick : callable, optional
        Called with the number of columns done after every batch.

    Returns
    -------
    ndarray of shape (nnz,)
        The diagonal entries, in entry order.
    """
    out = np.empty(cols.nnz)
    counts = cols.counts
    full = np.flatnonzero(counts == cols.n_in)
    if full.size:  # fully connected neurons share one inverse
        d = np.diagonal(np.linalg.inv(H)).copy()
        pos = cols.indptr[full][:, None] + np.arange(cols.n_in)[None, :]
        out[pos] = d[cols.rows[pos]]
        if tick:
            tick(full.size)
    rest = np.flatnonzero((counts > 0) & (counts < cols.n_in))
    with threadpool_limits(1):  # many small factorisations: one thread each is fastest
        for s, batch in groups(counts, rest, extra=int(bias)):
            idx, pos = coordinates(cols, batch, s, bias=bias)
            out[pos] = inverse_diag(H, idx)[:, :s]
            if tick:
                tick(batch.size)
    return out


def saliencies(cols, criterion, *, H=None, hdiag=None, bias=True, tick=None):
    """One-shot saliency of every entry: the estimated cost of removing it alone.

    Parameters
    ----------
    cols : LayerColumns
        The layer.
    criterion : {"magnitude", "obd", "obs"}
        ``|w|``; ``½ w² H_qq`` (LeCun et al. 1990); ``w² / (2 [H_S⁻¹]_qq)`` (Hassibi &
        Stork 1993).
    H : ndarray, optional
        The layer's Hessian (``obs``).
    hdiag : ndarray of shape (n_in,), optional
        Its diagonal over the inputs (``obd``).
    bias : bool, default=True
        ``H`` has the bias coordinate.
    tick : callable, optional
        Progress callback (columns done).

    Returns
    -------
    ndarray of shape (nnz,)
        Saliencies, in entry order.
    """
    w = cols.vals
    if criterion == "magnitude":
        return np.abs(w)
    if criterion == "obd":
        return 0.5 * w * w * hdiag[cols.rows]
    return 0.5 * w * w / restricted_inverse_diag(H, cols, bias=bias, tick=tick)


def lowest(values, k):
    """Positions of the ``k`` smallest values, ties broken by position (deterministic).

    Parameters
    ----------
    values : ndarray
        Values (no NaN).
    k : int
        How many.

    Returns
    -------
    ndarray of int
        Positions (in no particular order).
    """
    n = values.shape[0]
    if k <= 0:
        return np.zeros(0, np.int64)
    if k >= n:
        return np.arange(n)
    v = np.partition(values, k - 1)[k - 1]
    less = np.flatnonzero(values < v)
    return np.concatenate([less, np.flatnonzero(values == v)[:k - less.size]])


def refit(H, cols, keep, *, bias=True, tick=None):
    """Per output neuron, the least-squares optimum of its output on its kept inputs.

    For a neuron with original coordinates ``T`` (weights and bias) and kept coordinates
    ``S``: ``w'_S = argmin (w' - w)ᵀ H (w' - w)`` with ``w'`` zero outside ``S``, i.e.
    ``H_SS w'_S = H_ST w_T``. Neurons that lost no weight are unchanged.

    Parameters
    ----------
    H : ndarray
        The layer's Hessian.
    cols : LayerColumns
        The layer (original values).
    keep : ndarray of bool, shape (nnz,)
        Entries that stay.
    bias : bool, default=True
        Refit the bias too.
    tick : callable, optional
        Progress callback (columns done).

    Returns
    -------
    vals : ndarray of shape (nnz,)
        New values (entries not kept: 0).
    bias : ndarray of shape (n_out,)
        New bias.
    """
    vals = np.where(keep, cols.vals, 0.0)
    b = cols.bias.copy()
    kept = cols.kept_counts(keep)
    todo = np.flatnonzero(kept < cols.counts)
    if not bias:
        todo = todo[kept[todo] > 0]
    n = cols.n_in
    kept_pos = np.flatnonzero(keep)
    for s, batch in groups(kept, todo, extra=int(bias), width=H.shape[0]):
        idx, pos = coordinates(cols, batch, s, kept_pos, bias=bias)
        # H_ST w_T of the batch: H times the batch's original columns (and biases), dense
        a, e = cols.indptr[batch], cols.indptr[batch + 1]
        Wd = np.zeros((H.shape[0], batch.size))
        sel = np.repeat(a - np.cumsum(np.r_[0, (e - a)[:-1]]), e - a) + np.arange(int((e - a).sum()))
        Wd[cols.rows[sel], np.repeat(np.arange(batch.size), e - a)] = cols.vals[sel]
        if bias:
            Wd[n] = cols.bias[batch]
        rhs = (H @ Wd)[idx, np.arange(batch.size)[:, None]]
        with threadpool_limits(1):  # many small solves: one thread each is fastest
            x = spd_solve(H, idx, rhs)
        vals[pos] = x[:, :s]
        if bias:
            b[batch] = x[:, s]
        if tick:
            tick(batch.size)
    return vals, b
