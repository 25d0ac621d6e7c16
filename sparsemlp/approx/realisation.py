"""Realisation of the causal (block-lower) part of a matrix as a time-varying state-space system."""

import numpy as np

__all__ = ["causal_sequential", "causal_hankel", "offsets"]


def offsets(sizes):
    """Block start offsets ``[0, s_0, s_0 + s_1, ...]``.

    Parameters
    ----------
    sizes : array_like of int
        Block sizes.

    Returns
    -------
    ndarray of int64
        ``len(sizes) + 1`` offsets.
    """
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _rank(s, shape, cap):
    """Numerical rank of singular values s (LAPACK-style tolerance), capped."""
    if s.size == 0 or s[0] == 0.0:
        return 0
    tol = s[0] * max(shape) * np.finfo(np.float64).eps
    return int(min(cap, np.count_nonzero(s > tol)))


def causal_sequential(T, ins, outs, d):
    """Causal generators by sequential compression of the Hankel blocks (input-normal form).

    ``H_{k+1} = [T_{>k,k}, H_k[out_k:, :]]`` and ``H_k ~ Q_k R_k`` with orthonormal rows in R_k, so
    ``H_{k+1} ~ [T_{>k,k}, Q_k[out_k:]] diag(I, R_k)``: one SVD of a (rows x (in_k + d_k)) matrix per
    boundary gives ``R_{k+1} = [B_k, A_k R_k]`` (shift invariance) and ``C_{k+1}`` = the first block row
    of ``Q_{k+1}``.

    Parameters
    ----------
    T : ndarray of shape (m, n)
        The matrix; only its strictly block-lower part is used.
    ins, outs : ndarray of int
        Input (column) and output (row) block sizes.
    d : int
        Largest state dimension.

    Returns
    -------
    A, B, C : list of ndarray
        Generators of stages 0 .. K-1 (shapes as in `Semiseparable`).
    dims : ndarray of int64, shape (K + 1,)
        State dimensions ``d_0 = 0, d_1, ..., d_{K-1}, d_K = 0``.
    """
    K = len(ins)
    ro, co = offsets(outs), offsets(ins)
    dims = np.zeros(K + 1, dtype=np.int64)
    A, B, C = [None] * K, [None] * K, [None] * K
    Q = np.zeros((T.shape[0], 0))
    C[0] = Q[: outs[0]]
    for k in range(K - 1):
        G = np.hstack([T[ro[k + 1]:, co[k]:co[k + 1]], Q[outs[k]:]])
        U, s, Vt = np.linalg.svd(G, full_matrices=False)
        r = _rank(s, G.shape, d)
        Q = U[:, :r] * s[:r]
        B[k], A[k] = Vt[:r, : ins[k]], Vt[:r, ins[k]:]
        dims[k + 1] = r
        C[k + 1] = Q[: outs[k + 1]]
    A[K - 1], B[K - 1] = np.zeros((0, dims[K - 1])), np.zeros((0, ins[K - 1]))
    return A, B, C, dims


def causal_hankel(T, ins, outs, d):
    """Causal generators from the SVD of every Hankel block (balanced factors).

    ``H_k = O_k R_k`` truncated to rank <= d; ``C_k`` = first block row of O_k, ``B_k`` = first block
    column of R_{k+1}, ``A_k = O_{k+1}^+ O_k[out_k:]`` (shift invariance of the observability factors).

    Parameters
    ----------
    T : ndarray of shape (m, n)
        The matrix; only its strictly block-lower part is used.
    ins, outs : ndarray of int
        Input (column) and output (row) block sizes.
    d : int
        Largest state dimension.

    Returns
    -------
    A, B, C : list of ndarray
        Generators of stages 0 .. K-1 (shapes as in `Semiseparable`).
    dims : ndarray of int64, shape (K + 1,)
        State dimensions ``d_0 = 0, d_1, ..., d_{K-1}, d_K = 0``.
    """
    K = len(ins)
    ro, co = offsets(outs), offsets(ins)
    dims = np.zeros(K + 1, dtype=np.int64)
    O, R, pinv = [np.zeros((T.shape[0], 0))] + [None] * (K - 1), [None] * K, [None] * K
    for k in range(1, K):
        H = np.hstack([T[ro[k]:, co[j]:co[j + 1]] for j in range(k - 1, -1, -1)])
        U, s, Vt = np.linalg.svd(H, full_matrices=False)
        r = _rank(s, H.shape, d)
        root = np.sqrt(s[:r])
        O[k], R[k], dims[k] = U[:, :r] * root, root[:, None] * Vt[:r], r
        pinv[k] = U[:, :r].T / root[:, None]  # O_k = U S^(1/2) with orthonormal U: O_k^+ = S^(-1/2) U^T
    A, B, C = [None] * K, [None] * K, [None] * K
    for k in range(K):
        C[k] = O[k][: outs[k]]
        if k < K - 1:
            B[k] = R[k + 1][:, : ins[k]]
            A[k] = pinv[k + 1] @ O[k][outs[k]:]
    A[K - 1], B[K - 1] = np.zeros((0, dims[K - 1])), np.zeros((0, ins[K - 1]))
    return A, B, C, dims
