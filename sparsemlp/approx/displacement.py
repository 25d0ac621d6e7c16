"""Toeplitz-like approximation: matrices of low displacement rank for the operators Z_1 and Z_-1."""

import math

import numpy as np
from scipy.optimize import minimize

from .._validation import check_param
from .base import Approximation, get
from .common import as_matrix, budget_for, check_on_failure, finish, infeasible, one_blas_thread_calls

__all__ = ["ToeplitzLike", "toeplitz_like", "f_circulant", "displacement"]


def f_circulant(v, f):
    """The f-circulant matrix ``Z_f(v) = sum_k v_k Z_f^k`` (first column v), assembled densely.

    Parameters
    ----------
    v : ndarray of shape (n,)
        First column.
    f : float
        Corner value (1: circulant, -1: skew-circulant, 0: lower triangular Toeplitz).

    Returns
    -------
    ndarray of shape (n, n)
        ``M[p, q] = v[p - q]`` for ``p >= q`` and ``f * v[n + p - q]`` above the diagonal.
    """
    n = len(v)
    p, q = np.indices((n, n))
    M = np.asarray(v)[(p - q) % n].astype(np.float64)
    M[p < q] *= f
    return M


def displacement(W):
    """Sylvester displacement ``Z_1 W - W Z_-1`` (Z_f: down-shift with f in the top-right corner).

    Parameters
    ----------
    W : ndarray of shape (n, n)
        Square matrix.

    Returns
    -------
    ndarray of shape (n, n)
        The displacement; its rank is the displacement rank of W (at most 2 for a Toeplitz matrix).
    """
    return np.roll(W, 1, axis=0) - np.concatenate([W[:, 1:], -W[:, :1]], axis=1)


def _theta(n):
    return np.exp(1j * np.pi * np.arange(n) / n)  # Z_-1 = theta_1 Delta^-1 Z_1 Delta, Delta = diag(theta)


class ToeplitzLike(Approximation):
    """``W ~ 1/2 sum_i Z_1(g_i) Z_-1(J h_i)``: the matrix whose displacement ``Z_1 W - W Z_-1`` is ``G H^T``.

    ``Z_1(g)`` is the circulant and ``Z_-1(v)`` the skew-circulant matrix with first column g or v,
    J reverses the order (Pan 2001; Kailath & Sayed 1999). Both are diagonalised by the FFT
    (``Z_-1(v) = Delta^-1 Z_1(Delta v) Delta``, ``Delta = diag(exp(i pi k / n))``), so a product
    with a vector costs ``O(r n log n)`` (``r`` FFT pairs of length n), about ``2.5 log2(n)`` times
    the ``n_params`` multiply-adds of the other kinds.

    Parameter count: ``n_params = 2 r n``. ``to_arrays`` keys ``"G"`` and ``"H"``, both (n, r).

    Parameters
    ----------
    G, H : ndarray of shape (n, r)
        Displacement generators.
    **meta
        ``budget``, ``rel_error``, ``failed``, ``message`` of `Approximation`.
    """

    kind = "toeplitz_like"
    _CHUNK_ENTRIES = 2**20  # complex work entries of one batched FFT call in the products

    def __init__(self, G, H, **meta):
        G = np.ascontiguousarray(G, dtype=np.float64)
        H = np.ascontiguousarray(H, dtype=np.float64)
        if G.ndim != 2 or G.shape != H.shape:
            raise ValueError(f"ToeplitzLike: G {G.shape} and H {H.shape} must both be (n, r).")
        n = G.shape[0]
        super().__init__((n, n), **meta)
        self.G, self.H = G, H
        self._theta = _theta(n)
        self._fg = np.fft.rfft(G.T, axis=1)  # row i: circulant eigenvalues of Z_1(g_i)
        self._fh = np.fft.fft(self._theta * H.T[:, ::-1], axis=1)  # row i: those of Z_1(Delta J h_i)

    @property
    def rank(self):
        """The displacement rank r.

        Returns
        -------
        int
            Columns of G.
        """
        return self.G.shape[1]

    def _param_arrays(self):
        return [self.G, self.H]

    def _rank_chunks(self, b):
        """Slices of the generators processed together: at most ``_CHUNK_ENTRIES`` complex entries."""
        step = max(1, self._CHUNK_ENTRIES // (b * self.shape[0]))
        return [slice(i, i + step) for i in range(0, self.rank, step)]

    def _matmat(self, X):
        # rows of X.T are contiguous, and a chunk of generators shares one FFT call
        n, th = self.shape[0], self._theta
        Xf = np.fft.fft(X.T * th, axis=1)
        acc = np.zeros((X.shape[1], n // 2 + 1), dtype=np.complex128)
        for c in self._rank_chunks(X.shape[1]):
            w = (np.fft.ifft(self._fh[c, None, :] * Xf, axis=2) / th).real  # Z_-1(J h_i) X, transposed
            acc += np.einsum("rk,rbk->bk", self._fg[c], np.fft.rfft(w, axis=2))
        return np.ascontiguousarray(0.5 * np.fft.irfft(acc, n=n, axis=1).T)

    def _rmatmat(self, Y):
        n, th = self.shape[0], self._theta
        Yf = np.fft.rfft(Y.T, axis=1)
        fh_rev = np.roll(self._fh[:, ::-1], 1, axis=1)  # eigenvalues of the transposed circulant
        out = np.zeros((Y.shape[1], n))
        for c in self._rank_chunks(Y.shape[1]):
            u = np.fft.irfft(np.conj(self._fg[c, None, :]) * Yf, n=n, axis=2)  # Z_1(g_i)^T Y
            v = np.fft.ifft(fh_rev[c, None, :] * np.fft.fft(u / th, axis=2), axis=2)
            out += (th * v.sum(axis=0)).real
        return np.ascontiguousarray(0.5 * out.T)

    def _residual_sq(self, W):
        """``||W - T||_F^2`` in the unitary Fourier form, ``O(n^2 r)`` instead of n FFT products."""
        C, Wt, th = _fourier(W)
        E = C * (np.fft.fft(self.G, axis=0) @ np.fft.ifft(self.H / th[:, None], axis=0).T) - Wt
        return float(np.sum(E.real ** 2 + E.imag ** 2))

    def _dense(self):
        T = np.zeros(self.shape)
        for g, h in zip(self.G.T, self.H.T):
            T += f_circulant(g, 1.0) @ f_circulant(h[::-1], -1.0)
        return 0.5 * T

    def _arrays(self):
        return {"G": self.G, "H": self.H}

    @classmethod
    def _from_arrays(cls, arrays, meta):
        G, H = get(arrays, "G", 2, cls.kind), get(arrays, "H", 2, cls.kind)
        if G.shape != H.shape or (G.shape[0], G.shape[0]) != meta["shape"]:
            raise ValueError(f"from_arrays: toeplitz_like generators {G.shape}, {H.shape} do not match "
                             f"'shape' {meta['shape']}.")
        return cls(G, H, **{k: v for k, v in meta.items() if k != "shape"})


def _fourier(W):
    """``C`` and ``F W Delta^-1 F^-1`` of the unitary Fourier form of the error (see `_refine`)."""
    n = W.shape[0]
    th = _theta(n)
    lam = np.fft.fft(np.roll(np.eye(n)[:, 0], 1))
    C = 1.0 / (lam[:, None] - np.exp(1j * np.pi / n) * lam[None, :])
    return C, np.fft.ifft(np.fft.fft(W, axis=0) / th[None, :], axis=1), th


def _refine(W, G, H, max_iter):
    """Scale (G, H) optimally, then minimise ``||W - T(G, H)||_F`` by L-BFGS in the Fourier domain.

    With ``F`` the DFT matrix, ``F T Delta^-1 F^-1 = C * (F G)(F^-1 Delta^-1 H)^T`` (elementwise),
    ``C[j, k] = 1 / (l_j - e^(i pi / n) l_k)`` and ``l`` the eigenvalues of Z_1; the transform is
    unitary, so the error and its gradient cost ``O(n^2 r)`` per evaluation.
    """
    n, r = G.shape
    C, Wt, th = _fourier(W)

    def fun(x):
        Gx, Hx = x[: n * r].reshape(n, r), x[n * r:].reshape(n, r)
        Gh, Hc = np.fft.fft(Gx, axis=0), np.fft.ifft(Hx / th[:, None], axis=0)
        E = C * (Gh @ Hc.T) - Wt
        CE = C * np.conj(E)
        gG = np.fft.fft(CE @ Hc, axis=0).real
        gH = (np.fft.ifft(CE.T @ Gh, axis=0) / th[:, None]).real
        return 0.5 * float(np.sum(E.real ** 2 + E.imag ** 2)), np.concatenate([gG.ravel(), gH.ravel()])

    # start from the best multiple of the given generators (never worse than the zero matrix)
    Tt = C * (np.fft.fft(G, axis=0) @ np.fft.ifft(H / th[:, None], axis=0).T)
    nrm2 = float(np.sum(Tt.real ** 2 + Tt.imag ** 2))
    alpha = float(np.sum((np.conj(Tt) * Wt).real)) / nrm2 if nrm2 > 0 else 1.0
    G, H = G * math.copysign(math.sqrt(abs(alpha)), alpha), H * math.sqrt(abs(alpha))
    if not max_iter:
        return G, H
    x0 = np.concatenate([G.ravel(), H.ravel()])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    x = res.x if res.fun <= fun(x0)[0] else x0
    return x[: n * r].reshape(n, r), x[n * r:].reshape(n, r)


@one_blas_thread_calls
def toeplitz_like(W, *, share, refine_iter=100, on_failure="raise"):
    """Approximate a square W by a Toeplitz-like matrix of displacement rank r.

    The rank is ``r = min(floor(budget / (2 n)), n)``. The generators start from the truncated SVD
    of the displacement ``Z_1 W - W Z_-1`` (exact when W has displacement rank <= r, e.g. r >= 2 for
    Toeplitz W). Unless W is recovered exactly, the generators are then scaled by the best scalar
    (the truncated displacement alone can be several times worse than the zero matrix: the inverse
    displacement operator amplifies the truncation) and ``refine_iter`` L-BFGS iterations minimise
    the Frobenius error itself, with exact gradients in the Fourier domain (``O(n^2 r)`` each).

    Parameter count: ``n_params = 2 r n <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (n, n)
        A square matrix (sparse inputs are densified, size-guarded).
    share : float
        Parameter budget as a fraction of ``n * n``, in (0, 1].
    refine_iter : int, default=100
        L-BFGS iterations on the Frobenius error (0: the scaled truncated displacement only).
    on_failure : {"raise", "flag"}, default="raise"
        What a non-finite or diverged result does: raise, or return it with ``failed=True``.

    Returns
    -------
    ToeplitzLike
        The approximation.

    Raises
    ------
    ValueError
        If W is not square.
    InfeasibleBudgetError
        If the budget is below ``2 n`` (displacement rank 0).

    References
    ----------
    T. Kailath and A. H. Sayed (eds.), *Fast Reliable Algorithms for Matrices with Structure*, SIAM,
    1999. V. Y. Pan, *Structured Matrices and Polynomials*, Birkhauser, 2001.
    """
    on_failure = check_on_failure(on_failure, "toeplitz_like")
    refine_iter = check_param("refine_iter", refine_iter, "int", low=0, owner="toeplitz_like")
    W = as_matrix(W, "toeplitz_like")
    m, n = W.shape
    if m != n:
        raise ValueError(f"toeplitz_like needs a square matrix. Got {m} x {n}; use low_rank, sss or "
                         "sparse_product for rectangular W.")
    budget = budget_for(W.shape, share)
    r = min(budget // (2 * n), n)
    if r < 1:
        raise infeasible("toeplitz_like", W.shape, share, budget,
                         f"displacement rank 1 needs 2 n = {2 * n:,}", 2 * n)
    U, s, Vt = np.linalg.svd(displacement(W), full_matrices=False)
    root = np.sqrt(s[:r])
    G, H = U[:, :r] * root, Vt[:r].T * root
    if s[r:].sum() > s[0] * n * np.finfo(np.float64).eps:
        G, H = _refine(W, G, H, refine_iter)
    return finish(ToeplitzLike(G, H, budget=budget), W, on_failure)
