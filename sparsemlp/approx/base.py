"""The Approximation base class, budgets, input checks, errors and the flat-array format."""

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator
from scipy.sparse.linalg import norm as sparse_norm

from .._validation import check_param

__all__ = [
    "Approximation", "InfeasibleBudgetError", "ApproximationFailedError", "budget_for",
    "from_arrays", "DENSE_LIMIT",
]

#: Largest number of entries that ``dense()`` (and the densification of a sparse input) allocates
#: without ``force=True``: 2**24 entries, 128 MiB in float64.
DENSE_LIMIT = 2**24

_REGISTRY = {}
_ERROR_BLOCK_ENTRIES = 2**22  # work-array size of relative_error (entries)


class InfeasibleBudgetError(ValueError):
    """The parameter budget is too small for the requested structure.

    Parameters
    ----------
    message : str
        Full message; it names the smallest feasible share.
    min_share : float
        Smallest share at which the same call succeeds (``inf`` if none does).
    """

    def __init__(self, message, min_share):
        super().__init__(message)
        self.min_share = min_share


class ApproximationFailedError(RuntimeError):
    """A solver failed (non-finite parameters, or an error worse than the zero matrix)."""


def budget_for(shape, share):
    """Return the parameter budget ``floor(share * m * n)`` of an ``m x n`` matrix.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    share : float
        Fraction of the dense parameter count, in (0, 1].

    Returns
    -------
    int
        The budget. A relative 1e-12 guard absorbs binary rounding (``0.29 * 100`` gives 29).
    """
    share = check_param("share", share, "float", low=0.0, high=1.0, low_open=True)
    m, n = shape
    return int(math.floor(share * m * n * (1.0 + 1e-12)))


def min_share_for(shape, n_needed):
    """Return the smallest share whose budget reaches ``n_needed`` parameters.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    n_needed : int
        Parameters the cheapest feasible structure needs.

    Returns
    -------
    float
        ``n_needed / (m * n)`` (``inf`` when that exceeds 1).
    """
    s = n_needed / (shape[0] * shape[1])
    return s if s <= 1.0 else math.inf


def infeasible(kind, shape, share, budget, why, n_needed, hint=""):
    """Build the `InfeasibleBudgetError` for a budget below ``n_needed``.

    Parameters
    ----------
    kind : str
        Approximation kind (e.g. ``"sss"``).
    shape : tuple of int
        Matrix shape.
    share : float
        The share that was asked for.
    budget : int
        The budget it gave.
    why : str
        What needs more parameters.
    n_needed : int
        Parameters the cheapest feasible structure needs.
    hint : str, optional
        A second way out, appended to the message.

    Returns
    -------
    InfeasibleBudgetError
        The error, ready to raise.
    """
    s = min_share_for(shape, n_needed)
    if math.isfinite(s):
        shown = math.ceil(s * 1e4) / 1e4
        fix = f"the smallest feasible share is {shown:g} ({n_needed:,} parameters)"
    else:
        fix = f"no share <= 1 is feasible ({n_needed:,} parameters > {shape[0] * shape[1]:,})"
    msg = (f"{kind}: share={share:g} gives a budget of {budget:,} parameters for a "
           f"{shape[0]} x {shape[1]} matrix, but {why}; {fix}{'; ' + hint if hint else ''}.")
    return InfeasibleBudgetError(msg, s)


def one_blas_thread():
    """Context manager that runs BLAS/LAPACK on one thread (restored on exit).

    Loops over many small factorisations gain nothing from BLAS threads, and on a loaded machine
    OpenBLAS threads that wait for a busy core made a 500 x 500 SVD 40 times slower (6.2 s against
    0.15 s on one thread, 2 cores shared by several processes).

    Returns
    -------
    threadpoolctl.threadpool_limits
        The context manager.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def as_matrix(W, kind, *, keep_sparse=False):
    """Validate ``W`` and return it as a float64 ndarray (or CSR array if ``keep_sparse``).

    Parameters
    ----------
    W : array_like or scipy.sparse matrix
        The matrix to approximate.
    kind : str
        Approximation kind, used in messages.
    keep_sparse : bool, default=False
        Return sparse inputs as ``csr_array`` instead of densifying them.

    Returns
    -------
    ndarray or scipy.sparse.csr_array
        The validated matrix.

    Raises
    ------
    ValueError
        If W is not 2-D, empty, non-finite, all zero, or sparse and too large to densify.
    """
    if sp.issparse(W):
        if W.ndim != 2:
            raise ValueError(f"{kind}: W must be a 2-D matrix. Got shape {W.shape}.")
        W = sp.csr_array(W, dtype=np.float64)
        W.sum_duplicates()
        data = W.data
        if not keep_sparse:
            if W.shape[0] * W.shape[1] > DENSE_LIMIT:
                raise ValueError(
                    f"{kind}: a sparse W of shape {W.shape} has more than {DENSE_LIMIT:,} entries and "
                    "this kind works on dense blocks. Use low_rank (it keeps W sparse), or pass a "
                    "smaller matrix."
                )
            W = W.toarray()
    else:
        W = np.asarray(W)
        if W.dtype.kind not in "biuf":
            raise ValueError(f"{kind}: W must be numeric. Got an array of dtype {W.dtype}.")
        W = np.ascontiguousarray(W, dtype=np.float64)
        if W.ndim != 2:
            raise ValueError(f"{kind}: W must be a 2-D matrix. Got shape {W.shape}; reshape it first.")
        data = W
    if 0 in W.shape:
        raise ValueError(f"{kind}: W has shape {W.shape}; it needs at least one row and one column.")
    if not np.isfinite(data).all():
        raise ValueError(f"{kind}: W contains NaN or infinite values. Replace them before approximating.")
    if not np.any(data):
        raise ValueError(f"{kind}: W is all zero; there is nothing to approximate (use zeros directly).")
    return W


def check_on_failure(on_failure, kind):
    """Validate the ``on_failure`` option.

    Parameters
    ----------
    on_failure : {"raise", "flag"}
        What a failed solver does.
    kind : str
        Approximation kind, used in messages.

    Returns
    -------
    str
        The validated option.
    """
    return check_param("on_failure", on_failure, "str", options=("raise", "flag"), owner=kind)


def relative_error(W, approx):
    """Frobenius relative error ``||W - A|| / ||W||`` without forming A or W - A at once.

    Column blocks of A are produced by ``approx.matmat`` on slices of the identity, so the work is
    ``O(n_params * n)`` and the memory ``O(max(m, n) * block)`` with ``block`` chosen to keep that
    under 2**22 entries.

    Parameters
    ----------
    W : ndarray or scipy.sparse.csr_array
        The source matrix.
    approx : Approximation
        Its approximation.

    Returns
    -------
    float
        The relative error (``nan`` if the approximation is not finite).
    """
    m, n = W.shape
    block = max(1, min(n, _ERROR_BLOCK_ENTRIES // max(m, n)))
    Wc = W.tocsc() if sp.issparse(W) else W
    err2 = 0.0
    for c0 in range(0, n, block):
        c1 = min(n, c0 + block)
        E = np.zeros((n, c1 - c0))
        E[np.arange(c0, c1), np.arange(c1 - c0)] = 1.0
        A = approx._matmat(E)
        Wb = Wc[:, c0:c1].toarray() if sp.issparse(Wc) else Wc[:, c0:c1]
        err2 += float(np.sum((A - Wb) ** 2))
    norm = sparse_norm(W) if sp.issparse(W) else np.linalg.norm(W)
    return math.sqrt(err2) / norm if math.isfinite(err2) else math.nan


class Approximation:
    """A structured approximation of an ``m x n`` matrix W (base class).

    Subclasses store the parameters of one structure; every product with a vector costs
    ``O(n_params)`` work (a log factor for `ToeplitzLike`) and never forms the dense matrix.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)`` of the approximated matrix.
    budget : int, optional
        The parameter budget it was built for (``-1`` if none).
    rel_error : float, optional
        Frobenius relative error against the source (``nan`` if unknown).
    failed : bool, default=False
        Whether the solver failed; the parameters are then not a usable approximation.
    message : str, optional
        Why it failed, or notes from the solver.
    """

    kind = "base"

    def __init__(self, shape, *, budget=-1, rel_error=math.nan, failed=False, message=""):
        self.shape = (int(shape[0]), int(shape[1]))
        self.budget = int(budget)
        self.rel_error = float(rel_error)
        self.failed = bool(failed)
        self.message = str(message)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.kind] = cls

    def __repr__(self):
        m, n = self.shape
        flag = ", FAILED" if self.failed else ""
        return (f"{type(self).__name__}(kind={self.kind!r}, shape={m}x{n}, n_params={self.n_params:,}, "
                f"rel_error={self.rel_error:.4g}{flag})")

    @property
    def n_params(self):
        """Number of stored parameters (values; index metadata is not counted).

        Returns
        -------
        int
            The parameter count.
        """
        return int(sum(a.size for a in self._param_arrays()))

    def matvec(self, x):
        """Return ``W_approx @ x``.

        Parameters
        ----------
        x : array_like of shape (n,)
            Input vector.

        Returns
        -------
        ndarray of shape (m,)
            The product.
        """
        x = self._check_operand(x, 1, self.shape[1], "matvec")
        return self._matmat(x[:, None])[:, 0]

    def matmat(self, X):
        """Return ``W_approx @ X``.

        Parameters
        ----------
        X : array_like of shape (n, k)
            Input block.

        Returns
        -------
        ndarray of shape (m, k)
            The product.
        """
        return self._matmat(self._check_operand(X, 2, self.shape[1], "matmat"))

    def rmatvec(self, y):
        """Return ``W_approx.T @ y``.

        Parameters
        ----------
        y : array_like of shape (m,)
            Input vector.

        Returns
        -------
        ndarray of shape (n,)
            The product.
        """
        y = self._check_operand(y, 1, self.shape[0], "rmatvec")
        return self._rmatmat(y[:, None])[:, 0]

    def rmatmat(self, Y):
        """Return ``W_approx.T @ Y`` (the product a layer storing ``n_in x n_out`` weights needs).

        Parameters
        ----------
        Y : array_like of shape (m, k)
            Input block.

        Returns
        -------
        ndarray of shape (n, k)
            The product.
        """
        return self._rmatmat(self._check_operand(Y, 2, self.shape[0], "rmatmat"))

    def aslinearoperator(self):
        """Return a `scipy.sparse.linalg.LinearOperator` with the same products.

        Returns
        -------
        scipy.sparse.linalg.LinearOperator
            The operator (float64).
        """
        return LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec,
                              matmat=self.matmat, rmatmat=self.rmatmat, dtype=np.float64)

    def dense(self, *, force=False):
        """Return the approximation as a dense ndarray (small matrices and tests only).

        It is assembled from the parameters directly (not through `matmat`), so that it is an
        independent check of the products.

        Parameters
        ----------
        force : bool, default=False
            Allow more than `DENSE_LIMIT` entries.

        Returns
        -------
        ndarray of shape (m, n)
            The dense matrix.

        Raises
        ------
        MemoryError
            If ``m * n > DENSE_LIMIT`` and ``force`` is False.
        """
        m, n = self.shape
        if m * n > DENSE_LIMIT and not force:
            raise MemoryError(
                f"dense() of a {m} x {n} approximation would allocate {m * n:,} entries (limit "
                f"{DENSE_LIMIT:,}); use matvec/matmat, or dense(force=True) if you have the memory."
            )
        return self._dense()

    def to_arrays(self):
        """Return the approximation as a flat dict of named ndarrays (for ``np.savez``).

        Returns
        -------
        dict of str to ndarray
            ``kind``, ``shape``, ``budget``, ``rel_error``, ``failed``, ``message`` and the
            kind's own parameter arrays (see each class).
        """
        out = {
            "kind": np.array(self.kind), "shape": np.array(self.shape, dtype=np.int64),
            "budget": np.array(self.budget, dtype=np.int64), "rel_error": np.array(self.rel_error),
            "failed": np.array(self.failed), "message": np.array(self.message),
        }
        out.update(self._arrays())
        return out

    def _check_operand(self, x, ndim, size, what):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{what}: the operand must be numeric. Got dtype {x.dtype}.")
        if x.ndim != ndim or x.shape[0] != size:
            want = f"({size},)" if ndim == 1 else f"({size}, k)"
            raise ValueError(f"{what}: expected an operand of shape {want} for a {self.shape[0]} x "
                             f"{self.shape[1]} approximation. Got shape {x.shape}.")
        return np.asarray(x, dtype=np.float64)

    # subclasses implement these
    def _param_arrays(self):
        raise NotImplementedError

    def _matmat(self, X):
        raise NotImplementedError

    def _rmatmat(self, Y):
        raise NotImplementedError

    def _dense(self):
        raise NotImplementedError

    def _arrays(self):
        raise NotImplementedError

    @classmethod
    def _from_arrays(cls, arrays, meta):
        raise NotImplementedError


def from_arrays(arrays):
    """Rebuild an approximation from the dict written by `Approximation.to_arrays`.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        E.g. the result of ``np.load(path)`` of a file written with ``np.savez(path, **a.to_arrays())``.

    Returns
    -------
    Approximation
        The approximation, of the subclass named by ``arrays["kind"]``.

    Raises
    ------
    ValueError
        If a key is missing, the kind is unknown or the arrays are inconsistent.
    """
    for key in ("kind", "shape", "budget", "rel_error", "failed", "message"):
        if key not in arrays:
            raise ValueError(f"from_arrays: the key {key!r} is missing; these arrays were not written by "
                             "Approximation.to_arrays (or the file is truncated).")
    kind = str(np.asarray(arrays["kind"]))
    if kind not in _REGISTRY or kind == "base":
        known = ", ".join(sorted(k for k in _REGISTRY if k != "base"))
        raise ValueError(f"from_arrays: unknown approximation kind {kind!r}; known kinds: {known}.")
    shape = np.asarray(arrays["shape"])
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or np.any(shape < 1):
        raise ValueError(f"from_arrays: 'shape' must hold two positive integers. Got {shape!r}.")
    meta = {
        "shape": (int(shape[0]), int(shape[1])), "budget": int(arrays["budget"]),
        "rel_error": float(arrays["rel_error"]), "failed": bool(arrays["failed"]),
        "message": str(np.asarray(arrays["message"])),
    }
    return _REGISTRY[kind]._from_arrays(arrays, meta)


def get(arrays, key, ndim, kind, dtype=np.float64):
    """Fetch one array for ``_from_arrays`` with a clear error when it is missing or malformed.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The stored arrays.
    key : str
        Array name.
    ndim : int
        Required number of dimensions.
    kind : str
        Approximation kind, used in messages.
    dtype : dtype, default=float64
        Target dtype.

    Returns
    -------
    ndarray
        The array, C-contiguous in ``dtype``.

    Raises
    ------
    ValueError
        If the key is missing, the dimensionality is wrong or a float array is not finite.
    """
    if key not in arrays:
        raise ValueError(f"from_arrays: {kind} needs the array {key!r}, which is missing.")
    a = np.asarray(arrays[key])
    if a.ndim != ndim:
        raise ValueError(f"from_arrays: {kind} array {key!r} must be {ndim}-D. Got shape {a.shape}.")
    if np.dtype(dtype).kind == "f" and a.dtype.kind not in "biuf":
        raise ValueError(f"from_arrays: {kind} array {key!r} must be numeric. Got dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=dtype)


def finish(approx, W, on_failure):
    """Compute the relative error, flag non-finite or worse-than-zero results, raise if asked.

    Parameters
    ----------
    approx : Approximation
        A freshly built approximation.
    W : ndarray or scipy.sparse.csr_array
        Its source.
    on_failure : {"raise", "flag"}
        Raise `ApproximationFailedError`, or return the result with ``failed=True``.

    Returns
    -------
    Approximation
        ``approx`` with ``rel_error`` (and possibly ``failed``/``message``) set.

    Raises
    ------
    ApproximationFailedError
        If the result failed and ``on_failure == "raise"``.
    """
    finite = all(np.isfinite(a).all() for a in approx._param_arrays())
    approx.rel_error = relative_error(W, approx) if finite else math.nan
    if not finite:
        approx.failed, approx.message = True, "the solver produced non-finite parameters"
    elif approx.rel_error > 1.0 + 1e-9:
        approx.failed = True
        approx.message = (f"relative error {approx.rel_error:.4g} is worse than the zero matrix "
                          "(the solver diverged)")
    if approx.failed and on_failure == "raise":
        raise ApproximationFailedError(
            f"{approx.kind}: {approx.message}. Try other options, or pass on_failure='flag' to get "
            "the flagged result."
        )
    return approx
