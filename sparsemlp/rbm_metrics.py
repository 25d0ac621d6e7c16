"""Likelihood estimates for SparseRBM: exact log-partition, AIS, free energy, pseudo-log-likelihood."""

import numpy as np
from scipy.special import expit, logsumexp

__all__ = ["free_energy", "log_partition_exact", "ais_log_partition", "log_likelihood",
           "pseudo_log_likelihood"]

_MAX_ENUM = 24


def _softplus(x):
    return np.logaddexp(0.0, x)


def _hidden_input(rbm, X):
    """``X @ W + b_h`` (sample-major, float64), through the sparse weights."""
    return np.asarray(rbm.W.T.astype(np.float64) @ np.asarray(X, np.float64).T).T + rbm.b_hidden


def free_energy(rbm, X):
    """``F(v) = -b_v . v - sum_j softplus(b_h[j] + (v W)[j])`` per row of ``X``.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    X : ndarray of shape (n_samples, n_visible)
        Visible vectors.

    Returns
    -------
    ndarray of shape (n_samples,)
        Free energies; ``p(v) = exp(-F(v)) / Z``.
    """
    X = np.asarray(X, np.float64)
    return -(X @ rbm.b_visible.astype(np.float64)) - _softplus(_hidden_input(rbm, X)).sum(axis=1)


def log_partition_exact(rbm, *, chunk=4096):
    """``log Z`` by enumerating the hidden states (at most 24 hidden units).

    ``Z = sum_h exp(b_h . h) prod_i (1 + exp(b_v[i] + (W h)[i]))``.

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
        act = np.asarray(W @ Hs.T).T + bv  # (c, V)
        parts.append(Hs @ bh + _softplus(act).sum(axis=1))
    return float(logsumexp(np.concatenate(parts)))


def ais_log_partition(rbm, *, n_chains=100, n_betas=10000, base_visible_bias=None, rng,
                      return_std=False):
    """Annealed Importance Sampling estimate of ``log Z`` (Salakhutdinov & Murray 2008).

    Anneals from a base RBM with no weights and visible biases ``base_visible_bias`` (a
    base rate model; zeros give the uniform distribution) to the model along
    ``E_beta = (1 - beta) E_A + beta E_B`` with ``n_betas`` linearly spaced temperatures.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    n_chains : int, default=100
        Independent AIS runs.
    n_betas : int, default=10000
        Intermediate distributions.
    base_visible_bias : ndarray of shape (n_visible,), optional
        Base-rate biases, e.g. ``log(p / (1 - p))`` of the training pixel means.
    rng : numpy.random.Generator
        Randomness.
    return_std : bool, default=False
        Also return the standard deviation of the log-weights (large values mean too few
        temperatures).

    Returns
    -------
    log_z : float
        Estimate of ``log Z`` (its exponential is unbiased).
    log_w_std : float
        Only when ``return_std``.

    References
    ----------
    R. Salakhutdinov and I. Murray, "On the quantitative analysis of deep belief networks",
    ICML 2008.
    """
    V, H = rbm.n_visible, rbm.n_hidden
    bA = np.zeros(V) if base_visible_bias is None else np.asarray(base_visible_bias, np.float64)
    W = rbm.W.astype(np.float64)
    Wt = W.T.tocsr()
    bv, bh = rbm.b_visible.astype(np.float64), rbm.b_hidden.astype(np.float64)
    betas = np.linspace(0.0, 1.0, n_betas)
    v = (rng.random((n_chains, V)) < expit(bA)).astype(np.float64)
    log_w = np.zeros(n_chains)

    def log_p_star(v, beta):
        hid = np.asarray(Wt @ v.T).T + bh
        return (1 - beta) * (v @ bA) + beta * (v @ bv) + _softplus(beta * hid).sum(axis=1)

    for k in range(1, n_betas):
        b = betas[k]
        log_w += log_p_star(v, b) - log_p_star(v, betas[k - 1])
        hid = np.asarray(Wt @ v.T).T + bh
        h = (rng.random((n_chains, H)) < expit(b * hid)).astype(np.float64)
        vis = (1 - b) * bA + b * (np.asarray(W @ h.T).T + bv)
        v = (rng.random((n_chains, V)) < expit(vis)).astype(np.float64)
    log_z_a = _softplus(bA).sum() + H * np.log(2.0)
    log_z = float(log_z_a + logsumexp(log_w) - np.log(n_chains))
    return (log_z, float(np.std(log_w))) if return_std else log_z


def log_likelihood(rbm, X, log_z):
    """Mean log-probability ``mean(-F(v)) - log Z`` of binary data.

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    X : ndarray of shape (n_samples, n_visible)
        Binary data.
    log_z : float
        Log-partition (exact or AIS).

    Returns
    -------
    float
        Average log-likelihood in nats.
    """
    return float(np.mean(-free_energy(rbm, X)) - log_z)


def pseudo_log_likelihood(rbm, X, *, rng=None, units=None):
    """Pseudo-log-likelihood ``sum_i log p(v_i | v_-i)`` per sample.

    With ``rng`` the sum is estimated from one random unit per sample (times
    ``n_visible``), as scikit-learn's ``BernoulliRBM.score_samples``; without it every unit
    is flipped in turn (exact, ``n_visible`` free-energy evaluations per sample).

    Parameters
    ----------
    rbm : SparseRBM
        The model.
    X : ndarray of shape (n_samples, n_visible)
        Binary data.
    rng : numpy.random.Generator, optional
        Randomness for the one-unit estimate.
    units : ndarray of shape (n_samples,), optional
        The unit flipped for each sample in the one-unit estimate (instead of ``rng``).

    Returns
    -------
    ndarray of shape (n_samples,)
        Pseudo-log-likelihoods.
    """
    X = np.asarray(X, np.float64)
    n, V = X.shape
    fe = free_energy(rbm, X)
    if rng is not None or units is not None:
        i = np.asarray(units, np.int64) if units is not None else rng.integers(0, V, n)
        Xf = X.copy()
        Xf[np.arange(n), i] = 1 - Xf[np.arange(n), i]
        return V * -_softplus(-(free_energy(rbm, Xf) - fe))
    out = np.zeros(n)
    for i in range(V):
        Xf = X.copy()
        Xf[:, i] = 1 - Xf[:, i]
        out += -_softplus(-(free_energy(rbm, Xf) - fe))
    return out
