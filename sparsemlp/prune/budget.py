"""How many connections each layer keeps: the final targets and the rounds that lead there."""

import math
import numbers

import numpy as np

from .errors import PruneError

__all__ = ["final_targets", "round_target", "split_count"]


def _number(name, v, kind):
    ok = isinstance(v, numbers.Integral if kind == "int" else numbers.Real) and not isinstance(
        v, (bool, np.bool_))
    if not ok or (kind == "float" and not math.isfinite(v)):
        raise PruneError(f"{name} must be {'an integer' if kind == 'int' else 'a number'}. "
                         f"Got {v!r}.")
    return int(v) if kind == "int" else float(v)


def split_count(total, weights):
    """Split a whole number in proportion to ``weights`` (largest remainders).

    Parameters
    ----------
    total : int
        The number to split.
    weights : sequence of int
        Non-negative weights (not all zero unless ``total`` is 0).

    Returns
    -------
    ndarray of int
        Parts summing to ``total``, each at most its weight when ``total <= sum(weights)``.
    """
    w = np.asarray(weights, np.float64)
    if total == 0 or w.sum() == 0:
        return np.zeros(w.shape[0], np.int64)
    exact = total * w / w.sum()
    part = np.floor(exact).astype(np.int64)
    rest = int(total - part.sum())
    order = np.lexsort((np.arange(w.shape[0]), -(exact - part)))
    part[order[:rest]] += 1
    return part


def final_targets(nnz, dense, *, density=None, sparsity=None, n_remove=None, scope="layer"):
    """Connections to keep: per layer (scope "layer") or in total (scope "global").

    ``density`` is the fraction of the dense weight count ``n_in * n_out`` kept (the figure
    the package reports as "% of dense"); ``sparsity`` is ``1 - density``; ``n_remove``
    counts connections removed from the current ones (spread over the layers in proportion
    to their connections for scope "layer"). A layer already below its target keeps all.

    Parameters
    ----------
    nnz : sequence of int
        Current connections of the layers pruned.
    dense : sequence of int
        Their ``n_in * n_out``.
    density, sparsity : float, optional
        Target density in (0, 1] or sparsity in [0, 1).
    n_remove : int, optional
        Connections to remove.
    scope : {"layer", "global"}, default="layer"
        Per-layer targets, or one total.

    Returns
    -------
    ndarray of int or int
        Per-layer targets (scope "layer") or the total target (scope "global").

    Raises
    ------
    PruneError
        Unless exactly one of ``density``, ``sparsity`` and ``n_remove`` is given and valid.
    """
    given = [k for k, v in (("density", density), ("sparsity", sparsity), ("n_remove", n_remove))
             if v is not None]
    if len(given) != 1:
        raise PruneError("pass exactly one of density, sparsity and n_remove"
                         + (f" (got {', '.join(given)})." if given else "."))
    nnz = np.asarray(nnz, np.int64)
    dense = np.asarray(dense, np.int64)
    if n_remove is not None:
        n_remove = _number("n_remove", n_remove, "int")
        if not 0 <= n_remove <= int(nnz.sum()):
            raise PruneError(f"n_remove must be between 0 and the {int(nnz.sum())} connections of "
                             f"the layers pruned. Got {n_remove}.")
        if scope == "global":
            return int(nnz.sum()) - n_remove
        return nnz - split_count(n_remove, nnz)
    if sparsity is not None:
        sparsity = _number("sparsity", sparsity, "float")
        if not 0 <= sparsity < 1:
            raise PruneError(f"sparsity must be in [0, 1) (the fraction of the dense weights "
                             f"removed). Got {sparsity}.")
        density = 1.0 - sparsity
    else:
        density = _number("density", density, "float")
        if not 0 < density <= 1:
            raise PruneError(f"density must be in (0, 1] (the fraction of the dense weights "
                             f"kept, e.g. 0.1). Got {density}.")
    if scope == "global":
        return min(int(nnz.sum()), int(round(density * int(dense.sum()))))
    return np.minimum(nnz, np.round(density * dense).astype(np.int64))


def round_target(start, target, r, steps):
    """Connections kept after round ``r`` of ``steps``: a geometric path from start to target.

    Parameters
    ----------
    start, target : int
        Connections before the first round and after the last.
    r : int
        Round, 1-based.
    steps : int
        Rounds.

    Returns
    -------
    int
        ``start * (target / start) ** (r / steps)`` (linear when ``target`` is 0), exactly
        ``target`` at ``r == steps``.
    """
    if r >= steps or start <= target:
        return int(min(start, target)) if r >= steps else int(start)
    if target == 0:
        return int(round(start * (1 - r / steps)))
    return int(round(start * (target / start) ** (r / steps)))
