"""Low-rank approximation ``W ~ L R`` with balanced truncated-SVD factors."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from .base import Approximation, get
from .common import as_matrix, budget_for, check_on_failure, finish, infeasible, one_blas_thread_calls

__all__ = ["LowRank", "low_rank"]


class LowRank(Approximation):
    """``W ~ L @ R`` with ``L`` of shape (m, r) and ``R`` of shape (r, n).

    ``n_params = r * (m + n)``. A product with a vector costs ``r * (m + n)`` multiply-adds;
    a trainable layer keeps the two factors (``to_arrays`` keys ``"L"`` and ``"R"``).

    Parameters
    ----------
    L : ndarray of shape (m, r)
        Left factor.
    R : ndarray of shape (r, n)
        Right factor.
    **meta
        ``budget``, ``rel_error``, ``failed``, ``message`` of `Approximation`.
    """

    kind = "low_rank"

    def __init__(self, L, R, **meta):
        L = np.ascontiguousarray(L, dtype=np.float64)
        R = np.ascontiguousarray(R, dtype=np.float64)
        if L.ndim != 2 or R.ndim != 2 or L.shape[1] != R.shape[0]:
            raise ValueError(f"LowRank: L {L.shape} and R {R.shape} do not chain; need (m, r) and (r, n).")
        super().__init__((L.shape[0], R.shape[1]), **meta)
        self.L, self.R = L, R

    @property
    def rank(self):
        """The rank r (number of columns of L).

        Returns
        -------
        int
            The rank.
        """
        return self.L.shape[1]

    def _param_arrays(self):
        return [self.L, self.R]

    def _matmat(self, X):
        return self.L @ (self.R @ X)

    def _rmatmat(self, Y):
        return self.R.T @ (self.L.T @ Y)

    def _dense(self):
        return self.L @ self.R

    def _arrays(self):
        return {"L": self.L, "R": self.R}

    @classmethod
    def _from_arrays(cls, arrays, meta):
        L, R = get(arrays, "L", 2, cls.kind), get(arrays, "R", 2, cls.kind)
        if (L.shape[0], R.shape[1]) != meta["shape"]:
            raise ValueError(f"from_arrays: low_rank factors give shape {(L.shape[0], R.shape[1])}, "
                             f"but 'shape' says {meta['shape']}.")
        return cls(L, R, **{k: v for k, v in meta.items() if k != "shape"})


def _truncated_svd(W, r):
    """Leading r singular triplets (descending) of a dense or sparse W."""
    if sp.issparse(W) and r < min(W.shape) - 1:
        v0 = np.ones(min(W.shape))  # deterministic ARPACK start
        U, s, Vt = svds(W, k=r, v0=v0)
        order = np.argsort(s)[::-1]
        return U[:, order], s[order], Vt[order]
    if sp.issparse(W):
        W = as_matrix(W, "low_rank")
    try:
        U, s, Vt = scipy.linalg.svd(W, full_matrices=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # gesdd occasionally fails to converge; gesvd is slower but robust
        U, s, Vt = scipy.linalg.svd(W, full_matrices=False, lapack_driver="gesvd")
    return U[:, :r], s[:r], Vt[:r]


@one_blas_thread_calls
def low_rank(W, *, share, on_failure="raise"):
    """Approximate W by a rank-r product with balanced truncated-SVD factors (Eckart-Young).

    The rank is ``r = min(floor(budget / (m + n)), min(m, n))`` with
    ``budget = floor(share * m * n)``; with ``W = U S V^T``, ``L = U_r S_r^(1/2)`` and
    ``R = S_r^(1/2) V_r^T`` (the best rank-r approximation in the Frobenius norm).

    Parameter count: ``n_params = r * (m + n) <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix. A sparse W stays sparse (ARPACK ``svds``) unless r >= min(m, n) - 1.
    share : float
        Parameter budget as a fraction of ``m * n``, in (0, 1].
    on_failure : {"raise", "flag"}, default="raise"
        What to do if the result is not finite: raise, or return it with ``failed=True``.

    Returns
    -------
    LowRank
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If the budget is below ``m + n`` (rank 0); the message names the smallest feasible share.
    ApproximationFailedError
        If the SVD gives non-finite factors and ``on_failure == "raise"``.

    See Also
    --------
    sss, sparse_product, hodlr : Other structures at the same budget.

    References
    ----------
    C. Eckart and G. Young, "The approximation of one matrix by another of lower rank",
    Psychometrika 1:211-218, 1936.
    """
    on_failure = check_on_failure(on_failure, "low_rank")
    W = as_matrix(W, "low_rank", keep_sparse=True)
    m, n = W.shape
    budget = budget_for(W.shape, share)
    r = min(budget // (m + n), min(m, n))
    if r < 1:
        raise infeasible("low_rank", W.shape, share, budget, f"rank 1 needs m + n = {m + n:,}", m + n)
    U, s, Vt = _truncated_svd(W, r)
    root = np.sqrt(s)
    approx = LowRank(U * root, root[:, None] * Vt, budget=budget)
    return finish(approx, W, on_failure)
