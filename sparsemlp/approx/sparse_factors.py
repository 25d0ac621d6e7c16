"""Products of sparse factors ``W ~ S_1 S_2 ... S_K`` by hierarchical PALM4MSA."""

import math

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from .._validation import check_param
from .base import DENSE_LIMIT, Approximation, get
from .common import (
    ApproximationFailedError,
    as_matrix,
    budget_for,
    check_on_failure,
    finish,
    infeasible,
    one_blas_thread_calls,
)

__all__ = ["SparseProduct", "sparse_product", "nnz_split"]


def nnz_split(budget, last, n_factors, split="linear"):
    """Split a nonzero budget over K factors, the right-most one getting ``last``.

    ``K = 2``: ``[budget - last, last]``. ``"linear"``: the arithmetic ramp
    ``alpha + slope * i`` (i = 0 .. K-1) that ends at ``last`` and sums to ``budget``.
    ``"exponential"``: ``alpha * exp(mu * i)`` with the same two conditions. Entries are floored, so the
    sum never exceeds the budget (Kissel & Diepold 2022).

    Parameters
    ----------
    budget : int
        Total number of nonzeros.
    last : int
        Nonzeros of the right-most factor.
    n_factors : int
        Number of factors K >= 2.
    split : {"linear", "exponential"}, default="linear"
        Shape of the split for K > 2.

    Returns
    -------
    list of int or None
        Nonzeros per factor, left to right; None when some factor would get fewer than one.
    """
    K = n_factors
    if not 1 <= last < budget:
        return None
    if K == 2:
        parts = [budget - last, last]
    elif split == "linear":
        alpha = 2.0 * budget / K - last
        slope = (last - alpha) / (K - 1)
        parts = [math.floor(alpha + slope * i + 1e-9) for i in range(K)]
    else:
        def excess(mu):
            return last * sum(math.exp(mu * (i - K + 1)) for i in range(K)) - budget

        mu, hi = 0.0, 1.0
        if excess(0.0) != 0.0:
            lo = -1.0
            while excess(lo) < 0.0:
                lo *= 2.0
            while excess(hi) > 0.0:
                hi *= 2.0
            mu = brentq(excess, lo, hi, xtol=1e-14)
        parts = [math.floor(last * math.exp(mu * (i - K + 1)) + 1e-9) for i in range(K)]
        parts[-1] = last
    while sum(parts) > budget:
        parts[int(np.argmax(parts))] -= 1
    return parts if min(parts) >= 1 else None


def _project(X, k):
    """CSR of the k largest-magnitude entries of the dense X, scaled to unit Frobenius norm."""
    flat = X.reshape(-1)
    if k < flat.size:
        idx = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k:])
    else:
        idx = np.arange(flat.size)
    vals = flat[idx]
    keep = vals != 0.0
    idx, vals = idx[keep], vals[keep]
    nrm = np.linalg.norm(vals)
    if nrm > 0:
        vals = vals / nrm
    rows, cols = np.divmod(idx, X.shape[1])
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=X.shape[0]), out=indptr[1:])
    return sp.csr_array((vals, cols, indptr), shape=X.shape)


def _chain(facs, X):
    """``facs[0] @ ... @ facs[-1] @ X`` for dense X, right to left (X itself if facs is empty)."""
    for f in reversed(facs):
        X = f @ X
    return X


def _chain_t(facs, X):
    """``(facs[0] @ ... @ facs[-1]).T @ X`` for dense X."""
    for f in facs:
        X = f.T @ X
    return X


def _dense_product(facs):
    """Dense product of CSR factors, right to left: sparse-sparse while the running product is sparser
    than 2 % (SciPy's sparse product costs about 20 times more per flop than sparse times dense), then
    sparse times dense."""
    acc = facs[-1]
    for f in reversed(facs[:-1]):
        if sp.issparse(acc) and acc.nnz > 0.02 * acc.shape[0] * acc.shape[1]:
            acc = acc.toarray()
        acc = f @ acc
    return acc.toarray() if sp.issparse(acc) else acc


def _spectral_norm(facs, vecs, key, iters=50, rtol=1e-4):
    """Largest singular value of the product of ``facs`` by warm-started power iteration on A^T A."""
    if not facs:
        return 1.0
    n = facs[-1].shape[1]
    v = vecs.get(key)
    fresh = v is None or v.size != n
    if fresh:
        v = np.random.default_rng(len(vecs)).standard_normal(n)
    est = 0.0
    for _ in range(iters):
        w = _chain_t(facs, _chain(facs, v))
        nw = np.linalg.norm(w)
        if nw == 0.0:
            if fresh:  # a random start in the null space: the product is zero
                return 0.0
            # the warm start (the last product's top vector) can be orthogonal to the new
            # product's row space (supports of a handful of nonzeros): start again at random
            v, fresh = np.random.default_rng(len(vecs)).standard_normal(n), True
            continue
        v = vecs[key] = w / nw
        new = math.sqrt(nw)
        if abs(new - est) <= rtol * new:
            return new
        est = new
    return est


def _palm(T, facs, ks, lam, n_iter, tol, restart_last=False):
    """PALM over ``T ~ lam * facs[0] @ ... @ facs[-1]``, each factor with ``ks[j]`` nonzeros and unit norm.

    One proximal gradient step per factor (left to right) with step ``1 / c``,
    ``c = (1 + 1e-3) lam^2 ||L||_2^2 ||R||_2^2`` (L, R: the products left and right of the factor),
    then the optimal ``lam``. Factors are CSR; every product is sparse times dense, so a sweep costs
    ``O(K * sum_i nnz_i * max(m, n))`` plus the dense gradients. Stops after ``n_iter`` sweeps or when
    the error improves by less than ``tol`` (relative) in one sweep. With ``restart_last``, the first
    step of the last factor starts from zero instead of its initial value, so that its support follows
    the rows the other factors use.
    """
    K = len(facs)
    prev = err = math.inf
    vecs = {}
    prod = None  # the full product (dense), valid while no factor changed
    for sweep in range(n_iter):
        for j in range(K):
            left, right = facs[:j], facs[j + 1:]
            if prod is None:
                prod = _dense_product(facs)
            E = lam * prod - T
            H = E if not right else _chain(right, E.T).T
            G = lam * _chain_t(left, H)
            c = (1.0 + 1e-3) * (lam * _spectral_norm(left, vecs, (j, 0))
                                * _spectral_norm(right, vecs, (j, 1))) ** 2
            if not c > 0.0:
                raise ApproximationFailedError("PALM4MSA: a factor product vanished (zero step bound)")
            restart = restart_last and sweep == 0 and j == K - 1
            facs[j] = _project((np.zeros(facs[j].shape) if restart else facs[j].toarray()) - G / c, ks[j])
            prod = None
        prod = _dense_product(facs)
        nrm2 = float(np.sum(prod * prod))
        if not nrm2 > 0.0:
            raise ApproximationFailedError("PALM4MSA: the product of the factors vanished")
        lam = float(np.sum(T * prod)) / nrm2
        err = float(np.linalg.norm(lam * prod - T))
        if math.isfinite(prev) and prev - err <= tol * prev:
            break
        prev = err
    return facs, lam, err


def _hierarchical(T, nnz, inner, n_iter, tol, restart_last=False):
    """Peel factors off the left: ``residual ~ S_i R_i`` by a 2-factor PALM, then PALM over all factors.

    Each 2-factor step starts from ``S_i = 0`` and ``R_i = I`` (or, with ``restart_last``, R_i's first
    step from zero). The residual R_i may use the nonzeros of all factors still to come. Returns the
    CSR factors, the scale and the relative error.
    """
    norm_t = float(np.linalg.norm(T))
    Tn = T / norm_t
    N, K = T.shape[1], len(nnz)
    left, residual, lam = [], Tn, 1.0
    err = math.inf
    for i in range(K - 1):
        S = sp.csr_array((residual.shape[0], inner))
        R = sp.csr_array(sp.eye(inner, N))
        k_res = sum(nnz[i + 1:])
        R_target = residual if i == 0 else residual.toarray()
        (S, R), lam_loc, err = _palm(R_target, [S, R], [nnz[i], k_res], 1.0, n_iter, tol, restart_last)
        if left:  # global step (for i = 0 it would repeat the local problem exactly)
            facs, lam, err = _palm(Tn, left + [S, R], list(nnz[: i + 1]) + [k_res], lam * lam_loc,
                                   n_iter, tol)
            left, residual = facs[:-1], facs[-1]
        else:
            left, residual, lam = [S], R, lam_loc
    return left + [residual], lam * norm_t, err


class SparseProduct(Approximation):
    """``W ~ S_1 @ S_2 @ ... @ S_K`` with CSR factors (shapes (m, p), (p, p), ..., (p, n)).

    ``n_params = sum_i nnz(S_i) <= budget`` (values only; CSR indices are metadata). A product with
    a vector costs ``n_params`` multiply-adds, applied right to left; for row-major activations
    ``X @ W.T = X @ S_K.T @ ... @ S_1.T``, a chain of CSR layers (``to_arrays`` keys
    ``factor{i}_data``, ``factor{i}_indices``, ``factor{i}_indptr`` and ``factor_shapes``).

    Parameters
    ----------
    factors : list of scipy.sparse matrices
        The factors, left to right (converted to canonical ``csr_array``).
    **meta
        ``budget``, ``rel_error``, ``failed``, ``message`` of `Approximation`.
    """

    kind = "sparse_product"

    def __init__(self, factors, **meta):
        facs = []
        for f in factors:
            f = sp.csr_array(f, dtype=np.float64)
            f.sum_duplicates()
            facs.append(f)
        if not facs or any(a.shape[1] != b.shape[0] for a, b in zip(facs, facs[1:])):
            raise ValueError("SparseProduct: the factors do not chain (columns of each must equal the "
                             f"rows of the next). Got shapes {[f.shape for f in facs]}.")
        super().__init__((facs[0].shape[0], facs[-1].shape[1]), **meta)
        self.factors = facs

    def _param_arrays(self):
        return [f.data for f in self.factors]

    def _matmat(self, X):
        for f in reversed(self.factors):
            X = f @ X
        return X

    def _rmatmat(self, Y):
        for f in self.factors:
            Y = f.T @ Y
        return Y

    def _dense(self):
        out = self.factors[0].toarray()
        for f in self.factors[1:]:
            out = (f.T @ out.T).T
        return out

    def _arrays(self):
        out = {"factor_shapes": np.array([f.shape for f in self.factors], dtype=np.int64)}
        for i, f in enumerate(self.factors):
            out[f"factor{i}_data"], out[f"factor{i}_indices"] = f.data, f.indices
            out[f"factor{i}_indptr"] = f.indptr
        return out

    @classmethod
    def _from_arrays(cls, arrays, meta):
        k = cls.kind
        shapes = get(arrays, "factor_shapes", 2, k, np.int64)
        facs = []
        for i, (r, c) in enumerate(shapes):
            data = get(arrays, f"factor{i}_data", 1, k)
            indices = get(arrays, f"factor{i}_indices", 1, k, np.int64)
            indptr = get(arrays, f"factor{i}_indptr", 1, k, np.int64)
            if (indptr.shape != (r + 1,) or indptr[0] != 0 or indptr[-1] != data.size
                    or indices.size != data.size or np.any(np.diff(indptr) < 0)
                    or (indices.size and (indices.min() < 0 or indices.max() >= c))):
                raise ValueError(f"from_arrays: sparse_product factor {i} is not a valid {r} x {c} CSR "
                                 "matrix (corrupted file?).")
            facs.append(sp.csr_array((data, indices, indptr), shape=(int(r), int(c))))
        a = cls(facs, **{key: v for key, v in meta.items() if key != "shape"})
        if a.shape != meta["shape"]:
            raise ValueError(f"from_arrays: sparse_product factors give shape {a.shape}, but 'shape' "
                             f"says {meta['shape']}.")
        return a


@one_blas_thread_calls
def sparse_product(W, *, share, n_factors=2, split="linear", last_share=None, inner_dim=None,
                   n_iter=100, tol=1e-6, on_failure="raise"):
    """Approximate W by a product of K sparse factors with hierarchical PALM4MSA.

    The nonzero budget ``floor(share * m * n)`` is split over the factors by `nnz_split`; each
    factor is kept at its number of largest entries by projected (proximal) gradient steps, with a
    scalar carrying the scale (Le Magoarou & Gribonval 2016). Unless ``last_share`` is given, the
    right-most factor's share of the budget is swept over 0.1, 0.2, ..., 0.9 (Kissel & Diepold 2022):
    every split is screened with ``n_iter // 10`` sweeps and the one with the smallest error is then
    run with ``n_iter`` (the screening ranked the splits as the full runs did on the matrices we
    tried, at about a fifth of the cost of full runs).

    Parameter count: ``n_params = sum_i nnz(S_i) <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix (sparse inputs are densified, size-guarded).
    share : float
        Nonzero budget as a fraction of ``m * n``, in (0, 1].
    n_factors : int, default=2
        Number of factors K >= 2.
    split : {"linear", "exponential"}, default="linear"
        How the budget is split over the factors for K > 2.
    last_share : float, optional
        Share of the budget of the right-most factor, in (0, 1); default: the sweep.
    inner_dim : int, optional
        Inner dimension p of the factors; default ``max(m, n)`` (``min(m, n)`` saves work for very
        rectangular W when K = 2).
    n_iter : int, default=100
        PALM sweeps per (local and global) step.
    tol : float, default=1e-6
        Stop a PALM run when its error improves by less than this (relative) in one sweep.
    on_failure : {"raise", "flag"}, default="raise"
        What a failed solver does: raise, or return the result with ``failed=True``.

    Returns
    -------
    SparseProduct
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If the budget cannot give every factor a nonzero.
    ApproximationFailedError
        If every run of the sweep failed (or the result failed) and ``on_failure == "raise"``.

    References
    ----------
    L. Le Magoarou and R. Gribonval, "Flexible multilayer sparse approximations of matrices and
    applications", IEEE J. Sel. Topics Signal Process. 10(4):688-700, 2016.
    J. Bolte, S. Sabach and M. Teboulle, "Proximal alternating linearized minimization for
    nonconvex and nonsmooth problems", Math. Program. 146:459-494, 2014.
    """
    on_failure = check_on_failure(on_failure, "sparse_product")
    K = check_param("n_factors", n_factors, "int", low=2, high=32, owner="sparse_product")
    split = check_param("split", split, "str", options=("linear", "exponential"), owner="sparse_product")
    n_iter = check_param("n_iter", n_iter, "int", low=1, owner="sparse_product")
    tol = check_param("tol", tol, "float", low=0.0, owner="sparse_product")
    W = as_matrix(W, "sparse_product")
    m, n = W.shape
    p = max(m, n) if inner_dim is None else check_param("inner_dim", inner_dim, "int", low=1,
                                                         owner="sparse_product")
    if max(m, p) * p > DENSE_LIMIT or p * n > DENSE_LIMIT:
        raise ValueError(f"sparse_product: factors of inner dimension {p} would need dense work arrays "
                         f"above {DENSE_LIMIT:,} entries; pass a smaller inner_dim (e.g. min(m, n)).")
    budget = budget_for(W.shape, share)
    if last_share is None:
        shares = np.linspace(0.1, 0.9, 9)
    else:
        shares = [check_param("last_share", last_share, "float", low=0.0, high=1.0, low_open=True,
                              high_open=True, owner="sparse_product")]

    def splits_for(b):
        found = (nnz_split(b, math.floor(s * b), K, split) for s in shares)
        return list(dict.fromkeys(tuple(parts) for parts in found if parts is not None))

    splits = splits_for(budget)
    if not splits:
        need = next((b for b in range(budget + 1, m * n + 1) if splits_for(b)), m * n + 1)
        raise infeasible("sparse_product", W.shape, share, budget,
                         f"no tried split gives each of the {K} factors a nonzero", need,
                         "" if last_share is None else "another last_share may fit")
    failures = []

    def run(parts, iters):
        # the identity start of each residual can leave supports that share no index when the budget
        # is tiny (the product vanishes); then retry with the residual's first step from zero
        for restart in (False, True):
            try:
                return _hierarchical(W, list(parts), p, iters, tol, restart)
            except ApproximationFailedError as exc:
                failures.append(f"{parts}{' (restarted)' if restart else ''}: {exc}")
        return None

    best = None
    if len(splits) > 1:  # screen every split with a tenth of the sweeps, then run the best one in full
        screened = [(r[2], parts) for parts in splits if (r := run(parts, max(1, n_iter // 10)))]
        splits = [min(screened)[1]] if screened else []
    for parts in splits:
        r = run(parts, n_iter)
        if r is not None:
            best = r
    if best is None:
        if on_failure == "raise":
            raise ApproximationFailedError("sparse_product: every run failed: " + "; ".join(failures))
        zero = [sp.csr_array((m, p))] + [sp.csr_array((p, p))] * (K - 2) + [sp.csr_array((p, n))]
        return SparseProduct(zero, budget=budget, rel_error=math.nan, failed=True,
                             message="every run failed: " + "; ".join(failures))
    facs, lam, _ = best
    # balanced factors (each of Frobenius norm |lam|^(1/K), the sign on the first): the same
    # product, and gradients of comparable size for every factor when the layer is trained
    scale = abs(lam) ** (1.0 / len(facs))
    facs = [f * (math.copysign(scale, lam) if i == 0 else scale) for i, f in enumerate(facs)]
    approx = SparseProduct(facs, budget=budget)
    return finish(approx, W, on_failure)
