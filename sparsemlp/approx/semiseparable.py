"""Sequentially semiseparable (SSS) approximation: a time-varying state-space realisation of W."""

import numpy as np

from .._validation import check_param
from .base import Approximation, get
from .common import as_matrix, budget_for, check_on_failure, finish, infeasible, one_blas_thread_calls
from .realisation import causal_hankel, causal_sequential, offsets

__all__ = ["Semiseparable", "sss", "partition", "budget_params", "state_dim_for_budget"]

_GENERATORS = ("D", "A", "B", "C", "E", "F", "G")


def partition(size, n_states):
    """Split ``size`` indices into ``n_states`` contiguous blocks, the first ``size % n_states`` one larger.

    Parameters
    ----------
    size : int
        Number of rows (or columns).
    n_states : int
        Number of blocks K.

    Returns
    -------
    ndarray of int64, shape (n_states,)
        Block sizes.
    """
    sizes = np.full(n_states, size // n_states, dtype=np.int64)
    sizes[: size % n_states] += 1
    return sizes


def budget_params(shape, n_states, state_dim):
    """Parameter count of an SSS matrix in the convention that maps budgets to state dimensions.

    ``P(d) = sum_k [in_k out_k + 2 d in_k + 2 d out_k] + sum_{k=1}^{K-2} 2 d^2``: the boundary
    stages are counted at full size, as in Kissel & Diepold's layer, so this is an upper bound of
    the parameters actually stored (see `Semiseparable`).

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``: m outputs, n inputs.
    n_states : int
        Number of stages K.
    state_dim : int
        State dimension d.

    Returns
    -------
    int
        ``P(d)``.
    """
    m, n = shape
    ins, outs = partition(n, n_states), partition(m, n_states)
    d = int(state_dim)
    return int(ins @ outs) + 2 * d * (m + n) + max(n_states - 2, 0) * 2 * d * d


def state_dim_for_budget(shape, n_states, budget):
    """Largest state dimension d with ``budget_params(shape, n_states, d) < budget`` (0 if none).

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    n_states : int
        Number of stages K.
    budget : int
        Parameter budget.

    Returns
    -------
    int
        The state dimension (Kissel & Diepold's mapping, strict inequality).
    """
    d = 0
    while d < min(shape) and budget_params(shape, n_states, d + 1) < budget:
        d += 1
    return d


def _shapes(ins, outs, cd, ad):
    """Shapes of the generators of stage k, in the order of ``_GENERATORS``."""
    K = len(ins)
    return [[(outs[k], ins[k]), (cd[k + 1], cd[k]), (cd[k + 1], ins[k]), (outs[k], cd[k]),
             (ad[k], ad[k + 1]), (ad[k], ins[k]), (outs[k], ad[k + 1])] for k in range(K)]


class Semiseparable(Approximation):
    """A sequentially semiseparable matrix: K stages of a causal and an anticausal state recursion.

    Rows are split into output blocks ``out_k`` and columns into input blocks ``in_k``
    (`partition`). With ``u_k`` the k-th input block, the product ``y = W u`` is::

        x_0 = []                                  # causal state, dimension d_k (d_0 = d_K = 0)
        for k = 0 .. K-1:  y_k = D_k u_k + C_k x_k;   x_{k+1} = A_k x_k + B_k u_k
        z_K = []                                  # anticausal state, dimension e_k (e_0 = e_K = 0)
        for k = K-1 .. 0:  y_k += G_k z_{k+1};        z_k = E_k z_{k+1} + F_k u_k

    so block (i, j) of W is ``C_i A_{i-1} ... A_{j+1} B_j`` below the diagonal, ``D_i`` on it and
    ``G_i E_{i+1} ... E_{j-1} F_j`` above it (Dewilde & van der Veen 1998). Shapes: ``D_k``
    (out_k, in_k), ``A_k`` (d_{k+1}, d_k), ``B_k`` (d_{k+1}, in_k), ``C_k`` (out_k, d_k), ``E_k``
    (e_k, e_{k+1}), ``F_k`` (e_k, in_k), ``G_k`` (out_k, e_{k+1}).

    Parameter count (stored values): ``sum_k in_k out_k + sum_k [d_{k+1} (in_k + d_k) + d_k out_k]
    + sum_k [e_k (in_k + e_{k+1}) + e_{k+1} out_k]``; with every interior dimension equal to d this is
    ``budget_params(shape, K, d) - d (in_0 + in_{K-1} + out_0 + out_{K-1})``. A product with a vector
    costs ``n_params`` multiply-adds.

    Parameters
    ----------
    in_sizes, out_sizes : array_like of int, shape (K,)
        Input and output block sizes.
    causal_dims, anticausal_dims : array_like of int, shape (K + 1,)
        ``d_0 .. d_K`` and ``e_0 .. e_K`` (the first and last are 0).
    flat : dict of str to ndarray
        The generators of each name in ``"DABCEFG"``, each kind concatenated over k = 0 .. K-1 as
        flattened row-major blocks (a trainable layer can use these buffers directly).
    **meta
        ``budget``, ``rel_error``, ``failed``, ``message`` of `Approximation`.
    """

    kind = "sss"

    def __init__(self, in_sizes, out_sizes, causal_dims, anticausal_dims, flat, **meta):
        ins, outs = np.asarray(in_sizes, np.int64), np.asarray(out_sizes, np.int64)
        cd, ad = np.asarray(causal_dims, np.int64), np.asarray(anticausal_dims, np.int64)
        K = len(ins)
        if (K < 1 or outs.shape != (K,) or cd.shape != (K + 1,) or ad.shape != (K + 1,)
                or np.any(ins < 1) or np.any(outs < 1) or np.any(cd < 0) or np.any(ad < 0)
                or cd[0] or cd[K] or ad[0] or ad[K]):
            raise ValueError("Semiseparable: inconsistent block sizes or state dimensions (need K >= 1 "
                             "positive block sizes and K + 1 state dimensions starting and ending at 0).")
        super().__init__((int(outs.sum()), int(ins.sum())), **meta)
        self.in_sizes, self.out_sizes, self.causal_dims, self.anticausal_dims = ins, outs, cd, ad
        shapes = _shapes(ins, outs, cd, ad)
        self.flat = {}
        for g, name in enumerate(_GENERATORS):
            buf = np.ascontiguousarray(flat[name], dtype=np.float64)
            need = sum(int(np.prod(s[g])) for s in shapes)
            if buf.shape != (need,):
                raise ValueError(f"Semiseparable: generator {name} needs {need} values for these "
                                 f"dimensions. Got an array of shape {buf.shape}.")
            self.flat[name] = buf
            views, off = [], 0
            for s in shapes:
                size = int(np.prod(s[g]))
                views.append(buf[off:off + size].reshape(s[g]))
                off += size
            setattr(self, name, views)

    @classmethod
    def from_generators(cls, D, A, B, C, E, F, G, causal_dims, anticausal_dims, **meta):
        """Build from per-stage lists of generator matrices.

        Parameters
        ----------
        D, A, B, C, E, F, G : list of ndarray
            Generators of stages 0 .. K-1 (shapes in the class docstring).
        causal_dims, anticausal_dims : array_like of int, shape (K + 1,)
            State dimensions.
        **meta
            ``budget``, ``rel_error``, ``failed``, ``message``.

        Returns
        -------
        Semiseparable
            The approximation.
        """
        ins = [d.shape[1] for d in D]
        outs = [d.shape[0] for d in D]
        gens = (D, A, B, C, E, F, G)
        flat = {n: np.concatenate([np.ravel(x) for x in L]) for n, L in zip(_GENERATORS, gens)}
        return cls(ins, outs, causal_dims, anticausal_dims, flat, **meta)

    @property
    def n_states(self):
        """Number of stages K.

        Returns
        -------
        int
            K.
        """
        return len(self.in_sizes)

    @property
    def state_dim(self):
        """Largest state dimension over both recursions.

        Returns
        -------
        int
            ``max(d_k, e_k)``.
        """
        return int(max(self.causal_dims.max(), self.anticausal_dims.max()))

    @property
    def budget_convention_params(self):
        """``budget_params(shape, K, state_dim)``: the count the budget mapping uses.

        It counts the boundary stages at full size (Kissel & Diepold), so it is at least
        `n_params`; e.g. 1,552 against 1,424 stored for 64 x 64, K = 4, d = 2.

        Returns
        -------
        int
            ``P(d)``.
        """
        return budget_params(self.shape, self.n_states, self.state_dim)

    def _param_arrays(self):
        return list(self.flat.values())

    @staticmethod
    def _run(X, ro, co, m, D, fwd, bwd):
        """One causal sweep with fwd = (A, B, C) and one anticausal sweep with bwd = (E, F, G)."""
        K = len(D)
        Y = np.empty((m, X.shape[1]))
        (A, B, C), (E, F, G) = fwd, bwd
        x = np.zeros((0, X.shape[1]))
        for k in range(K):
            u = X[co[k]:co[k + 1]]
            Y[ro[k]:ro[k + 1]] = D[k] @ u + C[k] @ x
            x = A[k] @ x + B[k] @ u
        z = np.zeros((0, X.shape[1]))
        for k in range(K - 1, -1, -1):
            Y[ro[k]:ro[k + 1]] += G[k] @ z
            z = E[k] @ z + F[k] @ X[co[k]:co[k + 1]]
        return Y

    def _matmat(self, X):
        return self._run(X, offsets(self.out_sizes), offsets(self.in_sizes), self.shape[0], self.D,
                         (self.A, self.B, self.C), (self.E, self.F, self.G))

    def _rmatmat(self, Y):
        # W^T: the transposed anticausal part is causal with (E^T, G^T, F^T), and vice versa
        t = [[g.T for g in L] for L in (self.D, self.A, self.B, self.C, self.E, self.F, self.G)]
        D, A, B, C, E, F, G = t
        return self._run(Y, offsets(self.in_sizes), offsets(self.out_sizes), self.shape[1], D,
                         (E, G, F), (A, C, B))

    def _dense(self):
        ro, co = offsets(self.out_sizes), offsets(self.in_sizes)
        K = self.n_states
        T = np.zeros(self.shape)
        for i in range(K):
            T[ro[i]:ro[i + 1], co[i]:co[i + 1]] = self.D[i]
            P = self.C[i]
            for j in range(i - 1, -1, -1):
                T[ro[i]:ro[i + 1], co[j]:co[j + 1]] = P @ self.B[j]
                P = P @ self.A[j]
            P = self.G[i]
            for j in range(i + 1, K):
                T[ro[i]:ro[i + 1], co[j]:co[j + 1]] = P @ self.F[j]
                P = P @ self.E[j]
        return T

    def _arrays(self):
        out = {"in_sizes": self.in_sizes, "out_sizes": self.out_sizes, "causal_dims": self.causal_dims,
               "anticausal_dims": self.anticausal_dims}
        out.update(self.flat)
        return out

    @classmethod
    def _from_arrays(cls, arrays, meta):
        k = cls.kind
        dims = [get(arrays, n, 1, k, np.int64) for n in ("in_sizes", "out_sizes", "causal_dims",
                                                        "anticausal_dims")]
        flat = {n: get(arrays, n, 1, k) for n in _GENERATORS}
        a = cls(*dims, flat, **{key: v for key, v in meta.items() if key != "shape"})
        if a.shape != meta["shape"]:
            raise ValueError(f"from_arrays: sss block sizes give shape {a.shape}, but 'shape' says "
                             f"{meta['shape']}.")
        return a


def _realise(W, n_states, d, method, budget):
    m, n = W.shape
    ins, outs = partition(n, n_states), partition(m, n_states)
    build = causal_sequential if method == "sequential" else causal_hankel
    A, B, C, cd = build(W, ins, outs, d)
    At, Bt, Ct, ad = build(W.T, outs, ins, d)  # the anticausal part is the causal part of W^T
    ro, co = offsets(outs), offsets(ins)
    D = [W[ro[k]:ro[k + 1], co[k]:co[k + 1]] for k in range(n_states)]
    E, F, G = [a.T for a in At], [c.T for c in Ct], [b.T for b in Bt]
    return Semiseparable.from_generators(D, A, B, C, E, F, G, cd, ad, budget=budget)


@one_blas_thread_calls
def sss(W, *, share, n_states=None, state_dim=None, method="sequential", on_failure="raise"):
    """Approximate W by a sequentially semiseparable matrix within ``floor(share * m * n)`` parameters.

    The diagonal blocks are kept exactly; the strictly lower (causal) and strictly upper
    (anticausal, from ``W^T``) block triangles are realised from truncated SVDs of their Hankel
    blocks, with the state transitions from shift invariance (Dewilde & van der Veen 1998, ch. 3;
    Chandrasekaran et al. 2005 for the sequential compression). The state dimension is the largest d
    with ``budget_params(shape, K, d) < budget`` (Kissel & Diepold 2022), so that

    parameter count: ``n_params <= P(d) = sum_k [in_k out_k + 2 d (in_k + out_k)] + 2 (K - 2) d^2
    < budget`` (the stored count is ``P(d) - d (in_0 + in_{K-1} + out_0 + out_{K-1})`` when every
    Hankel block has rank >= d; lower ranks store fewer).

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix (``y = W u``: m outputs, n inputs). Sparse inputs are densified (size-guarded).
    share : float
        Parameter budget as a fraction of ``m * n``, in (0, 1].
    n_states : int, optional
        Number of stages K, 2 <= K <= min(m, n). Default: the best (smallest error) of
        ``int(linspace(min(m, n) / 10, min(m, n) / 2, 5))`` among the feasible values.
    state_dim : int, optional
        Upper bound d on the state dimension instead of the budget mapping (``P(d) < budget`` is
        still required).
    method : {"sequential", "hankel"}, default="sequential"
        ``"sequential"`` compresses one small block per stage (O(m n (n / K + d)) work);
        ``"hankel"`` takes the SVD of every full Hankel block (balanced factors, much slower).
        Both are exact when every Hankel block has rank <= d.
    on_failure : {"raise", "flag"}, default="raise"
        What a non-finite or diverged result does: raise, or return it with ``failed=True``.

    Returns
    -------
    Semiseparable
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If even d = 1 does not fit (the diagonal blocks alone may exceed the budget); the message
        names the smallest feasible share.
    ApproximationFailedError
        If the realisation is not finite and ``on_failure == "raise"``.

    See Also
    --------
    budget_params, state_dim_for_budget : The budget mapping.

    References
    ----------
    P. Dewilde and A.-J. van der Veen, *Time-Varying Systems and Computations*, Kluwer, 1998.
    S. Chandrasekaran et al., "Some fast algorithms for sequentially semiseparable representations",
    SIAM J. Matrix Anal. Appl. 27(2):341-364, 2005.
    M. Kissel and K. Diepold, "Deep convolutional neural networks with sequentially semiseparable
    weight matrices", ESANN 2022.
    """
    on_failure = check_on_failure(on_failure, "sss")
    method = check_param("method", method, "str", options=("sequential", "hankel"), owner="sss")
    W = as_matrix(W, "sss")
    m, n = W.shape
    if min(m, n) < 2:
        raise ValueError(f"sss: W of shape {W.shape} needs at least 2 rows and 2 columns (2 stages); "
                         "use low_rank for a single row or column.")
    budget = budget_for(W.shape, share)
    if n_states is None:
        lo = min(m, n)
        cands = sorted({int(v) for v in np.linspace(lo / 10, lo / 2, 5)} & set(range(2, lo + 1)))
        cands = cands or list(range(2, lo + 1))
    else:
        cands = [check_param("n_states", n_states, "int", low=2, high=min(m, n), owner="sss")]
    if state_dim is not None:
        state_dim = check_param("state_dim", state_dim, "int", low=1, owner="sss")
    plans = []
    for K in cands:
        d = state_dim if state_dim is not None else state_dim_for_budget(W.shape, K, budget)
        if d >= 1 and budget_params(W.shape, K, d) < budget:
            plans.append((K, d))
    if not plans:
        d1 = state_dim or 1
        need = {K: budget_params(W.shape, K, d1) + 1 for K in cands}
        K = min(need, key=need.get)
        diag = int(partition(n, K) @ partition(m, K))
        hint = ""
        if n_states is not None:  # would another number of stages fit?
            alt = {k: budget_params(W.shape, k, d1) + 1 for k in range(2, min(m, n) + 1)}
            k_best = min(alt, key=alt.get)
            if alt[k_best] < need[K]:
                hint = f"n_states={k_best} needs only {alt[k_best]:,} (share {alt[k_best] / (m * n):.4g})"
        raise infeasible("sss", W.shape, share, budget,
                         f"with n_states={K} the diagonal blocks alone need {diag:,} and state "
                         f"dimension {d1} needs {need[K] - 1:,} (P(d) < budget is required)", need[K], hint)
    best = None
    for K, d in plans:
        a = finish(_realise(W, K, d, method, budget), W, "flag")
        if best is None or (best.failed, best.rel_error) > (a.failed, a.rel_error):
            best = a
    return finish(best, W, on_failure) if best.failed else best
