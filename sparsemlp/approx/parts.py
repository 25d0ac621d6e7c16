"""Fixed-pattern sparse parts of structured layers: CSR products whose values live in one flat buffer."""

import numpy as np

from .. import _kernels

__all__ = ["CSRPart", "bind_parts", "block_entries"]


class CSRPart:
    """``y = M @ x`` for a sparse M of fixed pattern whose values live in a layer's flat buffer.

    M (``rows x cols``, the ``y = M x`` orientation) is held as the canonical CSR of ``M.T``, the
    ``(n_in, n_out)`` orientation of `sparsemlp.nn.SparseLinear`, so the package's CSR kernels
    (``spmm``, ``spmm_t``, ``sddmm``) compute its products and the gradient of every stored value.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of M.
    rows, cols : ndarray of int
        Position of every stored entry in M (no duplicates).
    src : ndarray of int
        For every entry, its position in the source vector of the layer (see
        `StructuredLayer`); reordered with the entries.
    kernels : KernelSet
        Backend.

    Attributes
    ----------
    src : ndarray of int64
        ``src`` in CSR order of ``M.T``: the layer's buffer segment of this part is
        ``source[src]``.
    data : ndarray or None
        The values (a view into the layer's buffer), set by `bind`.
    """

    def __init__(self, shape, rows, cols, src, kernels):
        self.shape = (int(shape[0]), int(shape[1]))
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        nnz = rows.size
        idt = np.int32 if max(nnz, *self.shape) < 2**31 - 1 else np.int64
        order = np.lexsort((rows, cols))  # rows of M.T = columns of M, then its columns
        self.src = np.asarray(src, np.int64)[order]
        self.indices = rows[order].astype(idt)
        self.indptr = np.zeros(self.shape[1] + 1, idt)
        np.cumsum(np.bincount(cols, minlength=self.shape[1]), out=self.indptr[1:])
        self.indptr_t = np.empty(self.shape[0] + 1, idt)
        self.indices_t, self.perm = np.empty(nnz, idt), np.empty(nnz, idt)
        self.kernels = kernels
        kernels.csr_transpose(self.indptr, self.indices, self.shape[0], self.indptr_t,
                              self.indices_t, self.perm)
        self.data = None

    @property
    def nnz(self):
        """Number of stored entries.

        Returns
        -------
        int
            The count.
        """
        return int(self.indices.size)

    def bind(self, data):
        """Use ``data`` (a 1-D view of the layer's buffer, CSR order of ``M.T``) as the values.

        Parameters
        ----------
        data : ndarray of shape (nnz,)
            The values.
        """
        self.data = data

    def forward(self, xt, out):
        """``out = M @ xt`` (overwritten).

        Parameters
        ----------
        xt : ndarray of shape (cols, B)
            Inputs.
        out : ndarray of shape (rows, B)
            Output.
        """
        self.kernels.spmm(self.indptr_t, self.indices_t, self.perm, self.data, xt, out)

    def backward(self, xt, dyt, dw, dxt=None):
        """``dw`` = gradient of every value; ``dxt = M.T @ dyt`` if given (both overwritten).

        Parameters
        ----------
        xt : ndarray of shape (cols, B)
            Inputs of the forward product.
        dyt : ndarray of shape (rows, B)
            Gradient with respect to its output.
        dw : ndarray of shape (nnz,)
            Gradient of the values.
        dxt : ndarray of shape (cols, B), optional
            Gradient with respect to the inputs.
        """
        ks = self.kernels
        if dxt is None:
            ks.sddmm(self.indptr, self.indices, xt, dyt, dw)
        elif _kernels.FUSED_BACKWARD:
            ks.backward_fused(self.indptr, self.indices, self.data, xt, dyt, dxt, dw)
        else:
            ks.spmm_t(self.indptr, self.indices, self.data, dyt, dxt)
            ks.sddmm(self.indptr, self.indices, xt, dyt, dw)


def bind_parts(parts, values):
    """Point every CSR part at its consecutive segment of ``values``; return the offsets.

    Parameters
    ----------
    parts : list of CSRPart
        The parts, in buffer order.
    values : ndarray
        The layer's flat buffer.

    Returns
    -------
    list of int
        Start of each part's segment, then the end of the last.
    """
    offs = [0]
    for p in parts:
        p.bind(values[offs[-1]:offs[-1] + p.nnz])
        offs.append(offs[-1] + p.nnz)
    return offs


def block_entries(blocks):
    """Positions of the entries of dense blocks placed in a larger matrix.

    Parameters
    ----------
    blocks : iterable of (int, int, int, int, int)
        ``(row0, col0, p, q, src0)``: a p x q block at (row0, col0) whose row-major values start
        at ``src0`` of the source vector.

    Returns
    -------
    rows, cols, src : ndarray of int64
        Matrix position and source position of every entry.
    """
    rows, cols, src = [], [], []
    for r0, c0, p, q, s0 in blocks:
        if p * q == 0:
            continue
        rows.append(r0 + np.repeat(np.arange(p), q))
        cols.append(c0 + np.tile(np.arange(q), p))
        src.append(s0 + np.arange(p * q))
    if not rows:
        return (np.zeros(0, np.int64),) * 3
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(src)
