"""Likelihood estimates for SparseRBM: exact log-partition, AIS, free energy, pseudo-log-likelihood."""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

__all__ = ["free_energy", "log_partition_exact", "ais_log_partition", "base_rate",
           "log_likelihood", "pseudo_log_likelihood"]

_MAX_ENUM = 24
_LOG_2PI = float(np.log(2 * np.pi))
# Values per temporary of the chunked passes (16 MiB in float64).
_BUDGET = 1 << 21


def _softplus(x):
    return np.logaddexp(0.0, x)


def _gaussian(rbm):
    return getattr(rbm, "visible", "binary") == "gaussian"


def _hidden_input(rbm, X):
    """``X @ W + b_h`` (sample-major, float64) through the model's ``spmm`` kernel.

    Chunked by the caller; returns an (n, n_hidden) array.
    """
    vt = np.ascontiguousarray(np.asarray(X).T, dtype=rbm.dtype)
    out = np.empty((rbm.n_hidden, vt.shape[1]), rbm.dtype)
    rbm.layer.forward(vt, out)
    return out.T.astype(np.float64)


def _chunks(n, per_sample):
    step = max(1, _BUDGET // max(1, per_sample))
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def free_energy(rbm, X):
    """Free energy ``F(v)`` per row of ``X``, so that ``p(v) = exp(-F(v)) / Z``.

    Binary visible units: ``F(v) = -b_v . v - sum_j softplus(b_h[j] + (v W)[j])``;
    Gaussian: ``F(v) = |v - b_v|^2 / 2 - sum_j softplus(b_h[j] + (v W)[j])``.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    X : ndarray of shape (n_samples, n_visible)
        Visible vectors.

    Returns
    -------
    ndarray of shape (n_samples,)
        Free energies (float64), computed in chunks of samples (no (n, n_hidden) array).
    """
    X = np.asarray(X, np.float64)
    bv = rbm.b_visible.astype(np.float64)
    out = np.empty(X.shape[0])
    for s, e in _chunks(X.shape[0], rbm.n_hidden):
        soft = _softplus(_hidden_input(rbm, X[s:e])).sum(axis=1)
        vis = 0.5 * ((X[s:e] - bv) ** 2).sum(axis=1) if _gaussian(rbm) else -(X[s:e] @ bv)
        out[s:e] = vis - soft
    return out


def log_partition_exact(rbm, *, chunk=4096):
    """``log Z`` by enumerating the hidden states (at most 24 hidden units).

    Binary: ``Z = sum_h exp(b_h.h) prod_i (1 + exp(b_v[i] + (W h)[i]))``. Gaussian:
    ``Z = (2 pi)^(V/2) sum_h exp(b_h.h + b_v.(W h) + |W h|^2 / 2)`` (the visible integral in
    closed form).

    Parameters
    ----------
    rbm : SparseRBM
        The model (``n_hidden <= 24``).
    chunk : int, default=4096
        Hidden states per block.

    Returns
    -------
    float
        The exact log-partition function.

    Raises
    ------
    ValueError
        If the model has more than 24 hidden units.
    """
    H = rbm.n_hidden
    if H > _MAX_ENUM:
        raise ValueError(f"exact enumeration needs at most {_MAX_ENUM} hidden units; the model "
                         f"has {H}. Use ais_log_partition instead.")
    W = rbm.W.astype(np.float64)
    bv, bh = rbm.b_visible.astype(np.float64), rbm.b_hidden.astype(np.float64)
    parts = []
    for s in range(0, 2 ** H, chunk):
        codes = np.arange(s, min(2 ** H, s + chunk), dtype=np.int64)
        Hs = ((codes[:, None] >> np.arange(H)) & 1).astype(np.float64)  # (c, H)
        wh = np.asarray(W @ Hs.T).T  # (c, V)
        if _gaussian(rbm):
            parts.append(Hs @ bh + wh @ bv + 0.5 * (wh ** 2).sum(axis=1))
        else:
            parts.append(Hs @ bh + _softplus(wh + bv).sum(axis=1))
    extra = 0.5 * rbm.n_visible * _LOG_2PI if _gaussian(rbm) else 0.0
    return float(logsumexp(np.concatenate(parts))) + extra


def base_rate(X, visible="binary", *, eps=1e-3):
    """Visible biases of the AIS base model fitted to data (Salakhutdinov & Murray 2008).

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_visible)
        Training data (sparse data is not densified).
    visible : {"binary", "gaussian"}, default="binary"
        Visible unit type.
    eps : float, default=1e-3
        Pixel means are clipped to ``[eps, 1 - eps]`` (binary).

    Returns
    -------
    ndarray of shape (n_visible,)
        Binary: ``log(p / (1 - p))`` of the clipped means; Gaussian: the means.
    """
    if sp.issparse(X):
        m = np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
    else:
        m = np.asarray(X, np.float64).mean(axis=0)
    if visible == "gaussian":
        return m
    p = np.clip(m, eps, 1 - eps)
    return np.log(p / (1 - p))


def ais_log_partition(rbm, *, n_chains=100, n_betas=10000, base_visible_bias=None, rng,
                      return_std=False):
    """Annealed Importance Sampling estimate of ``log Z`` (Salakhutdinov & Murray 2008).

    Anneals from a base RBM with no weights, hidden biases zero and visible biases
    ``base_visible_bias`` (binary: a base-rate model, zeros give the uniform distribution;
    Gaussian: the mean of ``N(a, I)``) to the model along
    ``E_beta = (1 - beta) E_A + beta E_B`` with ``n_betas`` linearly spaced temperatures.
    Each transition is one Gibbs sweep at the new temperature, through the model's kernels.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    n_chains : int, default=100
        Independent AIS runs.
    n_betas : int, default=10000
        Intermediate distributions.
    base_visible_bias : ndarray of shape (n_visible,), optional
        Base model, e.g. :func:`base_rate` of the training data (default zeros).
    rng : numpy.random.Generator
        Randomness.
    return_std : bool, default=False
        Also return the standard deviation of the log-weights (large values mean too few
        temperatures or chains).

    Returns
    -------
    log_z : float
        Estimate of ``log Z`` (its exponential is unbiased).
    log_w_std : float
        Only when ``return_std``.

    Notes
    -----
    O(n_betas * (nnz + n_visible + n_hidden) * n_chains) time; O((n_visible + n_hidden) *
    n_chains) memory.

    References
    ----------
    R. Salakhutdinov and I. Murray, "On the quantitative analysis of deep belief networks",
    ICML 2008.
    """
    V, H = rbm.n_visible, rbm.n_hidden
    gauss = _gaussian(rbm)
    a = np.zeros(V) if base_visible_bias is None else np.asarray(base_visible_bias, np.float64)
    bv = rbm.b_visible.astype(np.float64)
    W = rbm.W
    ks = rbm.layer.kernels
    dt = rbm.dtype
    betas = np.linspace(0.0, 1.0, n_betas)
    if gauss:
        v = a[:, None] + rng.standard_normal((V, n_chains))
    else:
        v = (rng.random((V, n_chains)) < expit(a)[:, None]).astype(np.float64)
    hid = np.empty((H, n_chains), dt)
    wh = np.empty((V, n_chains), dt)

    def hidden_in(v):
        rbm.layer.forward(np.ascontiguousarray(v, dtype=dt), hid)
        return hid.astype(np.float64)

    def vis_diff(v, b, bp):  # log p*_b(v) - log p*_bp(v), visible part
        if gauss:
            return (b - bp) * 0.5 * (((v - a[:, None]) ** 2).sum(0) - ((v - bv[:, None]) ** 2).sum(0))
        return (b - bp) * ((bv - a) @ v)

    log_w = np.zeros(n_chains)
    x = hidden_in(v)
    for k in range(1, n_betas):
        b, bp = betas[k], betas[k - 1]
        log_w += vis_diff(v, b, bp) + (_softplus(b * x) - _softplus(bp * x)).sum(axis=0)
        h = (rng.random((H, n_chains)) < expit(b * x)).astype(dt)
        ks.spmm_t(W.indptr, W.indices, W.data, h, wh)
        mean = (1 - b) * a[:, None] + b * (wh + bv[:, None])
        if gauss:
            v = mean + rng.standard_normal((V, n_chains))
        else:
            v = (rng.random((V, n_chains)) < expit(mean)).astype(np.float64)
        x = hidden_in(v)
    log_z_a = (0.5 * V * _LOG_2PI if gauss else float(_softplus(a).sum())) + H * np.log(2.0)
    log_z = float(log_z_a + logsumexp(log_w) - np.log(n_chains))
    return (log_z, float(np.std(log_w))) if return_std else log_z


def log_likelihood(rbm, X, log_z):
    """Mean log-probability (binary) or log-density (Gaussian) ``mean(-F(v)) - log Z``.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    X : ndarray of shape (n_samples, n_visible)
        Data (binary for binary visible units).
    log_z : float
        Log-partition (exact or AIS).

    Returns
    -------
    float
        Average log-likelihood in nats.
    """
    return float(np.mean(-free_energy(rbm, X)) - log_z)


def _row_arrays(rbm):
    W = rbm.W
    indptr = np.asarray(W.indptr, np.int64)
    return indptr, np.asarray(W.indices, np.int64), W.data.astype(np.float64)


def pseudo_log_likelihood(rbm, X, *, rng=None, units=None):
    """Pseudo-log-likelihood ``sum_i log p(v_i | v_-i)`` per sample (binary visible units).

    ``log p(v_i | v_-i) = -softplus(F(v) - F(v'))`` where ``v'`` has unit i flipped
    (``v_i -> 1 - v_i``). Flipping unit i changes the hidden inputs only on row i of W, so
    the exact sum over all units costs O(n_samples * nnz), not O(n_samples * n_visible *
    nnz). With ``rng`` or ``units`` it is estimated from one unit per sample (times
    ``n_visible``), as scikit-learn's ``BernoulliRBM.score_samples``, in O(n_samples * nnz /
    n_visible).

    Parameters
    ----------
    rbm : SparseRBM
        The model (binary visible units).
    X : ndarray of shape (n_samples, n_visible)
        Data in [0, 1].
    rng : numpy.random.Generator, optional
        Randomness for the one-unit estimate.
    units : ndarray of shape (n_samples,), optional
        The unit flipped for each sample in the one-unit estimate (instead of ``rng``).

    Returns
    -------
    ndarray of shape (n_samples,)
        Pseudo-log-likelihoods (float64).

    Raises
    ------
    ValueError
        For Gaussian visible units (the conditional density has no closed form).
    """
    if _gaussian(rbm):
        raise ValueError("pseudo_log_likelihood is defined for binary visible units only; this "
                         "SparseRBM has Gaussian visible units. Use log_likelihood with "
                         "ais_log_partition instead.")
    X = np.asarray(X, np.float64)
    n, V = X.shape
    indptr, indices, w = _row_arrays(rbm)
    bv = rbm.b_visible.astype(np.float64)
    out = np.empty(n)
    if rng is not None or units is not None:
        i_all = np.asarray(units, np.int64) if units is not None else rng.integers(0, V, n)
        for s, e in _chunks(n, rbm.n_hidden):
            A = _hidden_input(rbm, X[s:e])
            for r in range(e - s):
                i = int(i_all[s + r])
                sl = slice(indptr[i], indptr[i + 1])
                sign = 1.0 - 2.0 * X[s + r, i]
                g = A[r, indices[sl]]
                d_f = -bv[i] * sign - (_softplus(g + sign * w[sl]) - _softplus(g)).sum()
                out[s + r] = -V * _softplus(-d_f)
        return out
    rows = np.repeat(np.arange(V), np.diff(indptr))
    nz = np.flatnonzero(np.diff(indptr))
    for s, e in _chunks(n, max(rbm.n_hidden, indices.shape[0])):
        A = _hidden_input(rbm, X[s:e])
        sign = 1.0 - 2.0 * X[s:e]  # (c, V): the change of each unit when flipped
        seg = np.zeros((e - s, V))
        if nz.size:
            g = A[:, indices]
            d = _softplus(g + sign[:, rows] * w) - _softplus(g)
            seg[:, nz] = np.add.reduceat(d, indptr[nz], axis=1)
        d_f = -sign * bv - seg  # F(v') - F(v) for every unit
        out[s:e] = -_softplus(-d_f).sum(axis=1)
    return out
