"""SET prune-and-regrow of one SparseLinear layer -> EvolutionResult, at any density."""

import numpy as np

from .._validation import check_param
from .regrowth import new_connections
from .steps import EvolutionResult, check_rule_args, compact, merge_new, shrink
from .thresholds import kept_positions

__all__ = ["evolve", "evolve_original", "regrow"]


def _step(layer, zeta, rng, init, normal_std, regrow, owner, original):
    """Remove by SET's rule, then regrow as many (or, with ``regrow=False``, none)."""
    init, normal_std, legacy = check_rule_args(layer, rng, init, normal_std, owner)
    regrow = check_param("regrow", regrow, "bool", owner=owner)
    W = layer.W
    nnz = int(W.indptr[-1])
    keep_index = kept_positions(W.data[:nnz], zeta, owner=owner)  # validates zeta
    if keep_index is None:
        return EvolutionResult.unchanged(nnz)
    n_removed = nnz - keep_index.size
    if not regrow:
        shrink(layer, keep_index)
        return EvolutionResult(keep_index, np.empty(0, np.int64), n_removed, 0)
    indptr_k, ind_k, data_k = compact(W, keep_index, layer.kernels)
    keys, vals = new_connections(layer, indptr_k, ind_k, n_removed, rng, init=init,
                                 normal_std=normal_std, legacy=legacy, original=original)
    new_positions = merge_new(layer, indptr_k, ind_k, data_k, keys, vals)
    return EvolutionResult(keep_index, new_positions, n_removed, n_removed)


def evolve(layer, *, zeta, rng, init="normal", normal_std=0.1, regrow=True):
    """One SET step on a layer: remove the weights closest to zero, regrow as many at random.

    Parameters
    ----------
    layer : SparseLinear
        The layer; its ``W`` is modified in place and its transposed index refreshed.
    zeta : float
        Fraction in [0, 1) of the negative weights closest to zero and of the smallest
        positive weights removed (:func:`~sparsemlp.evolution.set_thresholds`; the threshold
        values go too). ``zeta=0`` leaves the layer untouched and draws nothing.
    rng : numpy.random.Generator or numpy.random.RandomState
        A Generator uses the density-independent sampler below; a legacy RandomState
        reproduces the original SET code's fast routine ``weightsEvolution_Amar`` RNG-exactly.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the regrown values (:func:`sparsemlp.topology.init_values`).
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law (``randn() / 10``).
    regrow : bool, default=True
        If False, only remove: nnz shrinks and W receives new, smaller ``indices``, ``data``
        and ``indptr`` arrays (references to the old arrays go stale; the ``csr_array``
        object is the same).

    Returns
    -------
    EvolutionResult
        ``keep_index`` (old positions kept, ascending; all of them when nothing changed),
        ``new_positions`` (new positions regrown, ascending), ``n_removed``, ``n_regrown``.

    Raises
    ------
    ValueError
        If ``zeta`` is outside [0, 1), ``init`` is unknown, ``normal_std <= 0`` or the weights
        hold NaN.
    TypeError
        If ``rng`` or ``layer`` has the wrong type.

    See Also
    --------
    evolve_original : The original scalar routine (SET-RBM, first SET-MLP code).
    sparsemlp.evolution.removal_mask : The selection rule alone.
    sparsemlp.evolution.apply : This step and the optimizer's state carried along.

    Notes
    -----
    Steps: select with SET's rule (:func:`~sparsemlp.evolution.kept_positions`, O(nnz));
    compact the kept entries (:func:`compact`); regrow ``k = n_removed`` distinct positions
    uniformly among all positions not kept (a position removed in this step may come
    back); merge with the backend's ``csr_merge`` and ``merge_values`` (O(nnz)); draw the
    new values; rebuild the transposed index.

    With a Generator, regrowth samples k distinct ranks among the
    ``n_empty = n_in * n_out - n_kept`` empty slots (already sorted: Bernoulli(k / n_empty)
    trials by geometric gaps, the surplus or shortfall fixed by a uniform subset; the
    complement while ``2k >= n_empty``) and maps each rank to its (row, column) with the
    backend's ``empty_slots`` kernel (one merge-like pass over the kept entries; the NumPy
    backend uses a binary search, or a mask over all slots on dense layers), then draws the
    values in row-major order of the new positions. O(nnz + k) time (O(nnz + k log nnz) on
    the NumPy backend), no sort of random data, O(nnz) memory at any density: a 98 %-dense
    3000x5 output layer costs the same per connection as a 1 %-dense hidden layer (the
    original's rejection loop needed ~300 rounds there). The removal thresholds are exact
    order statistics found inside a bracket taken from a strided sample of the weights
    (fallback: ``np.partition``).

    With a RandomState (reference mode): all values first (``randn(R) / 10``, one vector
    call), then rounds of ``randint(0, n_in, need, int32)``, ``randint(0, n_out, need, int32)``,
    unique pairs sorted row-major, minus the occupied ones (binary search on sorted int64
    keys), appended, until R positions; the i-th value goes to the i-th appended position
    (:func:`~sparsemlp.evolution.regrowth.sample_free_amar`).
    O(rounds * (need log nnz + R)) time.

    nnz is unchanged (with ``regrow=True``), so W's ``indices``, ``data`` and ``indptr`` are
    overwritten in place and views held elsewhere stay valid; kept weights keep their values
    bit for bit and their relative order. Extra memory (float32/int32, zeta 0.3): about 13
    bytes per connection of temporaries (kept copies, int64 gap keys) plus the returned int64
    ``keep_index`` and ``new_positions`` (8 bytes per connection).

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.nn.layers import SparseLinear
    >>> from sparsemlp.topology import erdos_renyi
    >>> rng = np.random.default_rng(0)
    >>> layer = SparseLinear(erdos_renyi(50, 40, epsilon=5, rng=rng), kernels="numpy")
    >>> nnz = layer.nnz
    >>> res = evolve(layer, zeta=0.3, rng=rng)
    >>> layer.nnz == nnz and res.n_regrown == res.n_removed
    True
    """
    return _step(layer, zeta, rng, init, normal_std, regrow, "evolve", original=False)


def evolve_original(layer, *, zeta, rng, normal_std, init="normal", regrow=True):
    """One SET step with the original scalar regrowth loop (SET-RBM, first SET-MLP code).

    Parameters
    ----------
    layer : SparseLinear
        The layer; modified in place as in :func:`evolve`.
    zeta : float
        Fraction in [0, 1) removed per sign (same rule as :func:`evolve`).
    rng : numpy.random.RandomState or numpy.random.Generator
        With the RandomState of reference mode the original draws are reproduced exactly; a
        Generator uses ``integers`` / ``standard_normal`` in the same order.
    normal_std : float
        Standard deviation of the regrown values: 0.05 for the SET-RBM (``randn() / 20``),
        0.1 for the original SET-MLP routine (``randn() / 10``).
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the regrown values; the uniform laws draw one scalar ``uniform(-lim, lim)``.
    regrow : bool, default=True
        If False, only remove (the SET-RBM after its last epoch); nnz shrinks as in
        :func:`evolve`.

    Returns
    -------
    EvolutionResult
        As :func:`evolve`.

    Raises
    ------
    ValueError
        As :func:`evolve`.
    TypeError
        If ``rng`` or ``layer`` has the wrong type.

    See Also
    --------
    evolve : The fast, density-independent step.

    Notes
    -----
    Per new connection, exactly as the SET-RBM code of Mocanu et al. (2018):
    ``i = randint(0, n_in)``, ``j = randint(0, n_out)`` (scalar calls) until ``(i, j)`` is
    neither kept nor already regrown, then the value ``randn() / (1 / normal_std)``
    (:func:`~sparsemlp.evolution.regrowth.sample_free_scalar`). The original tested occupancy
    with ``wdok[i, j] != 0``, so a kept weight of exactly 0.0 counted as free; here every
    kept connection is occupied (they differ with probability zero). Expected
    O(R / (1 - density)) Python-level calls (~1-3 us each) and O(nnz) memory for a Python
    set of the occupied keys: a reference-mode tool, not a fast path.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """
    return _step(layer, zeta, rng, init, normal_std, regrow, "evolve_original", original=True)


def regrow(layer, n, *, rng, init="normal", normal_std=0.1, original=False):
    """Regrow ``n`` connections at random: the second half of an evolution step on its own.

    ``evolve(layer, regrow=False)`` followed by ``regrow(layer, n_removed)`` with the same
    generator (or one in the same state) gives bit for bit what ``evolve(layer)`` gives:
    the SET-RBM's removal-only last epoch, completed when the run is extended.

    Parameters
    ----------
    layer : SparseLinear
        The layer; W receives new, larger arrays (the ``csr_array`` object is the same).
    n : int
        Connections to add among the free positions.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness, used as :func:`evolve` (or :func:`evolve_original`) uses it.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the new values.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.
    original : bool, default=False
        Regrow with :func:`evolve_original`'s scalar loop instead of :func:`evolve`'s sampler.

    Returns
    -------
    EvolutionResult
        ``keep_index`` (every old position), ``new_positions``, ``n_removed=0``,
        ``n_regrown=n``.

    Raises
    ------
    ValueError
        If ``n`` is negative or exceeds the free positions.
    TypeError
        If ``rng`` or ``layer`` has the wrong type.
    """
    owner = "regrow"
    init, normal_std, legacy = check_rule_args(layer, rng, init, normal_std, owner)
    original = check_param("original", original, "bool", owner=owner)
    W = layer.W
    nnz = int(W.indptr[-1])
    n = check_param("n", n, "int", low=0, high=W.shape[0] * W.shape[1] - nnz, owner=owner)
    if n == 0:
        return EvolutionResult.unchanged(nnz)
    indptr_k, ind_k, data_k = W.indptr.copy(), W.indices[:nnz].copy(), W.data[:nnz].copy()
    keys, vals = new_connections(layer, indptr_k, ind_k, n, rng, init=init,
                                 normal_std=normal_std, legacy=legacy, original=original)
    indptr = np.empty_like(W.indptr)
    indptr[-1] = nnz + n  # the merge reads the new size from here
    W.indptr, W.indices = indptr, np.empty(nnz + n, dtype=W.indices.dtype)
    W.data = np.empty(nnz + n, dtype=W.data.dtype)
    new_positions = merge_new(layer, indptr_k, ind_k, data_k, keys, vals)
    return EvolutionResult(np.arange(nnz, dtype=np.int64), new_positions, 0, n)
