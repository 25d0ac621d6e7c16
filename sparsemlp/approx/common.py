"""Steps every builder shares: budgets, input checks, the infeasible and failed errors, the error."""

import functools
import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import norm as sparse_norm

from .._validation import check_param
from .base import DENSE_LIMIT

__all__ = [
    "InfeasibleBudgetError", "ApproximationFailedError", "budget_for", "min_share_for", "infeasible",
    "one_blas_thread_calls", "as_matrix", "check_on_failure", "relative_error", "finish",
]

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


def one_blas_thread_calls(func):
    """Decorate a builder so that its BLAS/LAPACK calls run on one thread (restored on return).

    The builders factorise many small blocks, where BLAS threads gain nothing, and on a loaded
    machine OpenBLAS threads that wait for a busy core made a 500 x 500 SVD 40 times slower (6.2 s
    against 0.15 s on one thread) and a 1000 x 1000 SVD 3.6 times slower (7.1 s against 1.95 s), 2
    cores shared by several processes.

    Parameters
    ----------
    func : callable
        The builder.

    Returns
    -------
    callable
        The wrapped builder (same signature and docstring).
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


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
    under 2**22 entries. `ToeplitzLike` uses its exact Fourier form instead (``O(n^2 r)``).

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
    norm = sparse_norm(W) if sp.issparse(W) else np.linalg.norm(W)
    fast = getattr(approx, "_residual_sq", None)  # a kind may know a cheaper exact formula
    if fast is not None and not sp.issparse(W):
        err2 = fast(W)
        return math.sqrt(err2) / norm if math.isfinite(err2) else math.nan
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
    return math.sqrt(err2) / norm if math.isfinite(err2) else math.nan


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
