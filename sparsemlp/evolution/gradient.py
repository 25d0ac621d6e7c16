"""Gradient-guided regrowth (RigL) without dense gradients: blocked and sampled top-k scores."""

import math

import numpy as np

from .._validation import check_param
from ..topology.csr import fill_values, keys_to_csr
from ..topology.laws import INIT_LAWS
from ..topology.sampling import check_rng, sample_distinct
from .steps import EvolutionResult, compact, merge_new
from .thresholds import kept_positions

__all__ = ["top_k", "gradient_topk", "sampled_topk", "evolve_gradient", "evolve_gradient_sampled",
           "block_columns", "ENTRY_BYTES", "MAX_BYTES", "SAMPLED_CHUNK"]

#: Default memory budget (bytes) of the scores of one block of output columns.
MAX_BYTES = 64 << 20
#: Bytes of temporaries per scored position of a block, counted for the block size: the
#: float64 score (8; 4 in float32), the candidate mask (1) and, in the worst case where
#: every position is a candidate, its int64 position and key and its score (24).
ENTRY_BYTES = 33
#: Candidates of the sampled rule scored per call of the kernel (bounds its temporaries).
SAMPLED_CHUNK = 1 << 20


def block_columns(n_in, n_out, max_bytes=MAX_BYTES):
    """Output columns per block of :func:`gradient_topk` under a memory budget.

    Parameters
    ----------
    n_in, n_out : int
        Shape of the layer.
    max_bytes : int, default=MAX_BYTES
        Budget of the block's temporaries (:data:`ENTRY_BYTES` per scored position).

    Returns
    -------
    int
        ``max(1, min(n_out, max_bytes // (ENTRY_BYTES * n_in)))``.
    """
    return max(1, min(n_out, int(max_bytes) // (ENTRY_BYTES * n_in)))


def top_k(scores, keys, k):
    """The ``k`` best (score, key) pairs: larger score first, then smaller key.

    Parameters
    ----------
    scores : ndarray of shape (m,)
        Scores, no NaN.
    keys : ndarray of int64, shape (m,)
        Distinct keys (positions ``row * n_out + col``).
    k : int
        Number kept (``k >= 0``).

    Returns
    -------
    scores, keys : ndarray
        The ``min(k, m)`` best pairs, in no particular order.

    Notes
    -----
    The tie rule makes the choice a function of the (score, key) set alone, whatever the
    order the pairs come in: among equal scores the smaller key (smaller row, then smaller
    column) wins. One ``np.partition`` for the k-th largest score ``t``, then every score
    above ``t`` and the smallest keys among the scores equal to ``t``. O(m) time and memory
    (O(m + e log e) with e ties at ``t``).
    """
    m = scores.shape[0]
    if m <= k:
        return scores, keys
    if k == 0:
        return scores[:0], keys[:0]
    t = np.partition(scores, m - k)[m - k]
    above = np.flatnonzero(scores > t)
    tied = np.flatnonzero(scores == t)
    need = k - above.shape[0]
    if need < tied.shape[0]:
        tied = tied[np.argsort(keys[tied], kind="stable")[:need]]
    sel = np.concatenate([above, tied])
    return scores[sel], keys[sel]


def _check_signals(layer, xt, dyt, owner):
    """Validate the batch statistics of a gradient rule; -> (xt, dyt)."""
    n_in, n_out = layer.W.shape
    dt = layer.W.data.dtype
    for name, a, n in (("xt", xt, n_in), ("dyt", dyt, n_out)):
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape[0] != n or a.shape[1] < 1:
            raise ValueError(f"{owner}: {name} must be an array of shape ({n}, batch) for a "
                             f"{n_in}x{n_out} layer. Got {getattr(a, 'shape', type(a).__name__)}.")
        if not np.isfinite(a).all():
            raise ValueError(f"{owner}: {name} holds NaN or infinite values; the gradient scores "
                             "are undefined. Lower the learning rate.")
    if xt.shape[1] != dyt.shape[1]:
        raise ValueError(f"{owner}: xt and dyt must have the same batch size. Got "
                         f"{xt.shape[1]} and {dyt.shape[1]}.")
    return (np.ascontiguousarray(xt, dtype=dt), np.ascontiguousarray(dyt, dtype=dt))


def gradient_topk(kernels, indptr_k, ind_k, n_out, xt, dyt, k, *, block=None,
                  max_bytes=MAX_BYTES):
    """The ``k`` positions outside a pattern with the largest ``|sum_b x[i, b] dy[j, b]|``.

    Parameters
    ----------
    kernels : KernelSet
        Backend (``csr_transpose`` indexes the pattern by column).
    indptr_k, ind_k : ndarray
        The pattern excluded (canonical CSR of shape ``(n_in, n_out)``).
    n_out : int
        Number of columns.
    xt : ndarray of shape (n_in, B)
        The layer's inputs on a batch, feature-major, C-contiguous.
    dyt : ndarray of shape (n_out, B)
        The loss derivative with respect to the layer's pre-activations on that batch.
    k : int
        Number of positions, at most the positions outside the pattern.
    block : int, optional
        Output columns scored at a time (default :func:`block_columns` of ``max_bytes``).
    max_bytes : int, default=MAX_BYTES
        Memory budget of a block when ``block`` is not given.

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted keys ``row * n_out + col`` of the chosen positions.
    scores : ndarray of shape (k,)
        Their scores, in the order of ``keys``.

    Notes
    -----
    The score of position (i, j) is the magnitude of the gradient a connection there would
    have on the batch: ``|dL/dW[i, j]| = |<xt[i], dyt[j]>|`` (the loss summed over the
    batch). Columns are scored ``block`` at a time by one dense product
    ``xt @ dyt[c0:c0 + block].T`` (BLAS, in the layer's dtype); positions of the pattern are
    set to -1; the block's candidates (scores at least the k-th best of the last merge) are
    held until there are at least ``k`` of them (or the last block is done), then merged into
    the running top-k by :func:`top_k`'s rule (larger score, then smaller key), so each
    candidate costs O(1) amortised. No
    ``n_in x n_out`` array is ever formed: memory is O(n_in * block + k)
    (:data:`ENTRY_BYTES` per scored position of a block, at most 24 bytes per held pair)
    plus the pattern's column index (8 bytes per connection in int32). Time
    O(n_in * n_out * B) multiply-adds. The product's bits are those of NumPy's BLAS, which
    for OpenBLAS do not depend on the thread count (tested).
    """
    n_in, B = xt.shape
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=xt.dtype)
    idt = ind_k.dtype
    nnz = ind_k.shape[0]
    indptr_t = np.empty(n_out + 1, dtype=idt)
    rows_t = np.empty(nnz, dtype=idt)
    perm = np.empty(nnz, dtype=idt)
    kernels.csr_transpose(indptr_k, ind_k, n_out, indptr_t, rows_t, perm)
    del perm
    bs = block_columns(n_in, n_out, max_bytes) if block is None else min(int(block), n_out)
    best_s, best_k = np.empty(0, dtype=xt.dtype), np.empty(0, dtype=np.int64)
    held_s, held_k, n_held = [], [], 0
    t = 0  # candidates need score >= t: 0 until k are held, then the k-th best so far
    G = np.empty((n_in, bs), dtype=xt.dtype)
    for c0 in range(0, n_out, bs):
        w = min(bs, n_out - c0)
        g = G[:, :w] if w == bs else np.empty((n_in, w), dtype=xt.dtype)
        np.matmul(xt, np.ascontiguousarray(dyt[c0:c0 + w].T), out=g)  # (B, w) copy: fast path
        flat = g.reshape(-1)
        np.abs(flat, out=flat)
        a, b = int(indptr_t[c0]), int(indptr_t[c0 + w])
        if b > a:  # the pattern's positions in this block are not candidates
            occ = rows_t[a:b].astype(np.int64) * w
            occ += np.repeat(np.arange(w, dtype=np.int64), np.diff(indptr_t[c0:c0 + w + 1]))
            flat[occ] = -1
            del occ
        cand = np.flatnonzero(flat >= t)
        if cand.shape[0]:
            keys = cand // w
            keys *= n_out
            keys += cand % w + c0
            held_s.append(flat[cand])
            held_k.append(keys)
            n_held += cand.shape[0]
            del cand, keys
        if n_held >= k or c0 + w == n_out:
            best_s, best_k = top_k(np.concatenate([best_s, *held_s]),
                                   np.concatenate([best_k, *held_k]), k)
            held_s, held_k, n_held = [], [], 0
            if best_s.shape[0] == k:
                t = best_s.min()
    order = np.argsort(best_k)
    return best_k[order], best_s[order]


def sampled_topk(kernels, indptr_k, ind_k, n_in, n_out, xt, dyt, k, candidates, rng):
    """The ``k`` best of ``c * k`` random positions outside a pattern, by gradient magnitude.

    Parameters
    ----------
    kernels : KernelSet
        Backend (``empty_slots`` places the candidates, ``sddmm`` scores them).
    indptr_k, ind_k : ndarray
        The pattern excluded (canonical CSR).
    n_in, n_out : int
        Shape of the layer.
    xt : ndarray of shape (n_in, B)
        The layer's inputs on a batch.
    dyt : ndarray of shape (n_out, B)
        The loss derivative with respect to the pre-activations on that batch.
    k : int
        Number of positions kept.
    candidates : float
        ``c``: ``min(ceil(c * k), free positions)`` candidates are scored (``c >= 1``).
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness of the candidates.

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted keys of the chosen positions.
    scores : ndarray of shape (k,)
        Their scores.

    Notes
    -----
    The candidates are a uniform random subset of the free positions, distinct and sorted
    (:func:`~sparsemlp.evolution.regrowth.sample_free`'s sampler: ranks among the empty
    slots mapped by ``empty_slots``), so none is a connection and none repeats. They are
    scored with ``sddmm`` (the same dot products as :func:`gradient_topk`) in chunks of
    :data:`SAMPLED_CHUNK` and the best ``k`` kept by :func:`top_k`'s rule. With ``c * k`` at
    least the free positions every free position is scored, which is :func:`gradient_topk`.
    O(c k B) multiply-adds plus O(nnz) for placing the candidates; O(c k) memory.
    """
    n_free = n_in * n_out - ind_k.shape[0]
    m = min(n_free, max(k, math.ceil(candidates * k)))
    keys = sample_distinct(n_free, m, rng)  # sorted ranks among the free slots
    kernels.empty_slots(indptr_k, ind_k, n_out, keys)  # -> their positions, still sorted
    best_s = np.empty(0, dtype=xt.dtype)
    best_k = np.empty(0, dtype=np.int64)
    for a in range(0, m, SAMPLED_CHUNK):
        c = keys[a:a + SAMPLED_CHUNK]
        ptr, cols = keys_to_csr(c, n_in, n_out, ind_k.dtype)
        s = np.empty(c.shape[0], dtype=xt.dtype)
        kernels.sddmm(ptr, cols, xt, dyt, s)
        np.abs(s, out=s)
        best_s, best_k = top_k(np.concatenate([best_s, s]), np.concatenate([best_k, c]), k)
    order = np.argsort(best_k)
    return best_k[order], best_s[order]


def _regrow_at(layer, zeta, xt, dyt, init, rng, normal_std, owner, choose):
    """Remove by SET's rule, then regrow at the keys ``choose(indptr_k, ind_k, k)`` returns."""
    init = check_param("init", init, "str", options=("zero", *INIT_LAWS), owner=owner)
    normal_std = check_param("normal_std", normal_std, "float", low=0, low_open=True,
                             owner=owner)
    legacy = None if rng is None else check_rng(rng, owner)
    if init != "zero" and rng is None:
        raise ValueError(f"{owner}: init={init!r} draws the new values and needs rng. Pass rng "
                         "or use init='zero'.")
    if not hasattr(layer, "W") or not hasattr(layer, "refresh_index"):
        raise TypeError(f"{owner} needs a SparseLinear layer. Got {type(layer).__name__}.")
    xt, dyt = _check_signals(layer, xt, dyt, owner)
    W = layer.W
    n_in, n_out = W.shape
    nnz = int(W.indptr[-1])
    keep_index = kept_positions(W.data[:nnz], zeta, owner=owner)  # validates zeta
    if keep_index is None:
        return EvolutionResult.unchanged(nnz)
    k = nnz - keep_index.shape[0]
    indptr_k, ind_k, data_k = compact(W, keep_index, layer.kernels)
    keys, _ = choose(indptr_k, ind_k, xt, dyt, k)
    vals = np.zeros(k, dtype=W.data.dtype)
    if init != "zero":
        fill_values(vals, init, n_in, n_out, rng, normal_std, legacy=legacy)
    new_positions = merge_new(layer, indptr_k, ind_k, data_k, keys, vals)
    return EvolutionResult(keep_index, new_positions, k, k)


def evolve_gradient(layer, *, zeta, xt, dyt, init="zero", rng=None, normal_std=0.1,
                    block=None, max_bytes=MAX_BYTES):
    """One RigL step: remove by SET's rule, regrow where the gradient is largest.

    Parameters
    ----------
    layer : SparseLinear
        The layer; its ``W`` is modified in place (nnz unchanged) and its transposed index
        marked stale.
    zeta : float
        Fraction in [0, 1) removed per sign, SET's magnitude rule
        (:func:`~sparsemlp.evolution.set_thresholds`); 0 leaves the layer untouched.
    xt : ndarray of shape (n_in, B)
        The layer's inputs on a batch (feature-major).
    dyt : ndarray of shape (n_out, B)
        The loss derivative with respect to the layer's pre-activations on that batch.
    init : {"zero", "normal", "he_uniform", "xavier_uniform"}, default="zero"
        Values of the new connections: 0 as in RigL, or drawn from a law.
    rng : numpy.random.Generator or numpy.random.RandomState, optional
        Needed only when ``init`` draws values.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.
    block : int, optional
        Output columns scored at a time (:func:`gradient_topk`).
    max_bytes : int, default=MAX_BYTES
        Memory budget of a block when ``block`` is not given.

    Returns
    -------
    EvolutionResult
        ``keep_index``, ``new_positions``, ``n_removed == n_regrown``.

    Raises
    ------
    ValueError
        If ``zeta`` is out of range, the weights or the batch statistics hold NaN, shapes do
        not fit, or ``init`` draws values without ``rng``.
    TypeError
        If ``layer`` or ``rng`` has the wrong type.

    See Also
    --------
    evolve_gradient_sampled : The same with ``c * k`` random candidates.
    sparsemlp.evolution.apply : This step and the optimizer's state carried along.

    Notes
    -----
    The k removed connections are replaced by the k positions outside the kept pattern
    with the largest ``|sum_b x[i, b] dy[j, b]|`` (:func:`gradient_topk`; ties to the
    smaller ``row * n_out + col``); a position removed in this step may come back (with
    its new value). Kept weights keep their values bit for bit and their order.

    References
    ----------
    Evci, Gale, Menick, Castro, Elsen, "Rigging the Lottery: Making All Tickets Winners",
    ICML 2020; Mocanu et al., Nature Communications 9:2383 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.nn import SparseLinear
    >>> from sparsemlp.topology import erdos_renyi
    >>> rng = np.random.default_rng(0)
    >>> layer = SparseLinear(erdos_renyi(30, 20, epsilon=4, rng=rng), kernels="numpy")
    >>> xt = rng.standard_normal((30, 8)).astype(np.float32)
    >>> dyt = rng.standard_normal((20, 8)).astype(np.float32)
    >>> res = evolve_gradient(layer, zeta=0.3, xt=xt, dyt=dyt)
    >>> bool((layer.W.data[res.new_positions] == 0).all()), res.n_regrown == res.n_removed
    (True, True)
    """
    def choose(indptr_k, ind_k, xt, dyt, k):
        return gradient_topk(layer.kernels, indptr_k, ind_k, layer.W.shape[1], xt, dyt, k,
                             block=block, max_bytes=max_bytes)
    if block is not None:
        check_param("block", block, "int", low=1, owner="evolve_gradient")
    return _regrow_at(layer, zeta, xt, dyt, init, rng, normal_std, "evolve_gradient", choose)


def evolve_gradient_sampled(layer, *, zeta, xt, dyt, rng, candidates=10.0, init="zero",
                            normal_std=0.1):
    """One RigL step scoring ``c * k`` random candidates instead of every free position.

    Parameters
    ----------
    layer : SparseLinear
        The layer; modified in place as in :func:`evolve_gradient`.
    zeta : float
        Fraction in [0, 1) removed per sign (SET's rule).
    xt : ndarray of shape (n_in, B)
        The layer's inputs on a batch.
    dyt : ndarray of shape (n_out, B)
        The loss derivative with respect to its pre-activations on that batch.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness of the candidates (and of the values, if ``init`` draws them).
    candidates : float, default=10.0
        ``c >= 1``: the number of candidates per regrown connection.
    init : {"zero", "normal", "he_uniform", "xavier_uniform"}, default="zero"
        Values of the new connections.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    EvolutionResult
        As :func:`evolve_gradient`.

    Raises
    ------
    ValueError
        As :func:`evolve_gradient`, or if ``candidates < 1``.
    TypeError
        If ``layer`` or ``rng`` has the wrong type.

    See Also
    --------
    evolve_gradient : Every free position scored (blocked).

    Notes
    -----
    :func:`sampled_topk`: O(c k B) multiply-adds instead of O(n_in n_out B), for layers
    where the blocked product costs too much. The candidates are drawn first, then the
    values (if any) in row-major order of the new positions.

    References
    ----------
    Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020.
    """
    owner = "evolve_gradient_sampled"
    candidates = check_param("candidates", candidates, "float", low=1, owner=owner)
    check_rng(rng, owner)

    def choose(indptr_k, ind_k, xt, dyt, k):
        n_in, n_out = layer.W.shape
        return sampled_topk(layer.kernels, indptr_k, ind_k, n_in, n_out, xt, dyt, k,
                            candidates, rng)
    return _regrow_at(layer, zeta, xt, dyt, init, rng, normal_std, owner, choose)
