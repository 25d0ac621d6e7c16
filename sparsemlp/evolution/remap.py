"""The one place a topology change meets the optimizer: apply a rule, remap per-connection state."""

import numpy as np

from .._validation import check_param
from .importance import importance_prune
from .rewiring import evolve_degree_preserving
from .set import evolve, evolve_original, regrow
from .steps import EvolutionResult

__all__ = ["RULES", "apply", "remap_optimizer"]

#: The topology rules :func:`apply` runs, by name.
RULES = {
    "set": evolve,
    "set-original": evolve_original,
    "degree-preserving": evolve_degree_preserving,
    "regrow": regrow,
    "importance": importance_prune,
}


def remap_optimizer(optimizer, param_index, result, new_param):
    """Carry an optimizer's per-connection state across one topology change of a layer.

    Parameters
    ----------
    optimizer : object
        Anything with ``remap(param_index, keep_index, new_positions, new_param=...)``, such
        as :class:`sparsemlp.nn.SGD` and :class:`sparsemlp.nn.Adam` (kept connections keep
        their state, new ones start at zero).
    param_index : int
        Position of the layer's ``W.data`` in the optimizer's parameters (``2 * i`` for
        layer ``i`` of a :class:`sparsemlp.nn.SparseMLP`, 0 for a :class:`sparsemlp.SparseRBM`).
    result : EvolutionResult
        What the change did (``keep_index``, ``new_positions``).
    new_param : ndarray
        The layer's ``W.data`` after the change (a new array when nnz changed).
    """
    optimizer.remap(param_index, result.keep_index, result.new_positions, new_param=new_param)


def apply(layer, rule, *, optimizer=None, param_index=0, **params):
    """Change a layer's topology by one rule and carry the optimizer's state along.

    Parameters
    ----------
    layer : SparseLinear
        The layer; modified in place by the rule.
    rule : {"set", "set-original", "degree-preserving", "regrow", "importance"}
        :func:`~sparsemlp.evolution.evolve`, :func:`~sparsemlp.evolution.evolve_original`,
        :func:`~sparsemlp.evolution.evolve_degree_preserving`,
        :func:`~sparsemlp.evolution.regrow` or :func:`~sparsemlp.evolution.importance_prune`.
    optimizer : object, optional
        Optimizer whose state of ``W.data`` follows the change (:func:`remap_optimizer`).
    param_index : int, default=0
        Position of the layer's ``W.data`` in the optimizer's parameters.
    **params
        The rule's own arguments (``zeta``, ``rng``, ``init``, ``normal_std``, ``regrow``,
        ``swaps``, ``n``, ``original``, ``percentile``).

    Returns
    -------
    EvolutionResult
        What the rule did; for ``"importance"``, ``keep_index`` with no new positions.

    Raises
    ------
    ValueError
        If ``rule`` is unknown, or as the rule raises.
    TypeError
        As the rule raises.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.evolution import apply
    >>> from sparsemlp.nn import SGD, SparseLinear
    >>> from sparsemlp.topology import erdos_renyi
    >>> rng = np.random.default_rng(0)
    >>> layer = SparseLinear(erdos_renyi(30, 20, epsilon=4, rng=rng), kernels="numpy")
    >>> opt = SGD([layer.W.data, layer.b], lr=0.1, kernels="numpy")
    >>> res = apply(layer, "set", zeta=0.3, rng=rng, optimizer=opt, param_index=0)
    >>> opt.params[0] is layer.W.data, opt.state["velocity"][0].shape == (layer.nnz,)
    (True, True)
    """
    rule = check_param("rule", rule, "str", options=tuple(RULES), owner="apply")
    nnz = int(layer.W.indptr[-1]) if hasattr(layer, "W") else 0
    res = RULES[rule](layer, **params)
    if rule == "importance":  # importance_prune returns the kept positions
        res = EvolutionResult(res, np.empty(0, np.int64), nnz - res.shape[0], 0)
    if optimizer is not None:
        remap_optimizer(optimizer, param_index, res, layer.W.data)
    return res
