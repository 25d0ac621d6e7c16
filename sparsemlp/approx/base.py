"""The Approximation base class and the flat-array format shared by every kind."""

import math

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["Approximation", "from_arrays", "DENSE_LIMIT"]

#: Largest number of entries that ``dense()`` (and the densification of a sparse input) allocates
#: without ``force=True``: 2**24 entries, 128 MiB in float64.
DENSE_LIMIT = 2**24

_REGISTRY = {}


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
        Frobenius relative error ``||W - A|| / ||W||`` against the source, set by the builders
        without forming ``W - A`` (`sparsemlp.approx.common.relative_error`); ``nan`` if unknown.
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
