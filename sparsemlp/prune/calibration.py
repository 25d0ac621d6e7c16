"""Calibration inputs of a SparseMLP's layers and the layer-wise Hessian of the output error."""

import numpy as np

from ..nn.inference import layer_input, layer_output, next_input
from .errors import PruneError

__all__ = ["calibration_inputs", "layer_input", "layer_output", "next_input", "hessian", "logits",
           "MAX_HESSIAN_BYTES"]

#: Largest Hessian (``(n_in + 1)**2`` float64) a layer may get; above it the criteria and
#: compensations that need one are refused (magnitude without compensation needs none).
MAX_HESSIAN_BYTES = 2 << 30


def calibration_inputs(model, calib, *, rng=None, noise_range=(0.0, 1.0)):
    """Checked calibration inputs of a model as a float64 array of shape (n, n_features).

    Parameters
    ----------
    model : SparseMLP
        The model.
    calib : array-like of shape (n, n_features) or int
        Inputs as the model takes them (scaled), or a number of points drawn uniformly
        from ``noise_range`` in every feature (data-free calibration).
    rng : numpy.random.Generator, optional
        Noise source (default: seeded with 0).
    noise_range : tuple of float, default=(0.0, 1.0)
        Bounds of the uniform noise.

    Returns
    -------
    ndarray of shape (n, n_features)
        C-contiguous float64 inputs.

    Raises
    ------
    PruneError
        If the inputs are not 2-D, have another width than the model, are empty or hold
        NaN or infinite values.
    """
    d = model.layers[0].n_in
    if isinstance(calib, (int, np.integer)) and not isinstance(calib, bool):
        if calib < 1:
            raise PruneError(f"calib={calib} noise points: pass a positive number of points or an "
                             "array of calibration inputs.")
        lo, hi = (float(v) for v in noise_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise PruneError(f"noise_range must be two finite numbers low < high. Got {noise_range}.")
        rng = np.random.default_rng(0) if rng is None else rng
        return rng.uniform(lo, hi, (int(calib), d))
    if hasattr(calib, "toarray"):
        calib = calib.toarray()
    try:
        X = np.asarray(calib, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PruneError(f"calibration inputs are not numeric ({exc}). Pass an array of shape "
                         f"(n_samples, {d}).") from None
    if X.ndim != 2 or X.shape[1] != d:
        raise PruneError(f"calibration inputs have shape {X.shape}, but the model takes {d} "
                         f"features. Pass an array of shape (n_samples, {d}), scaled as the "
                         "model's training data.")
    if X.shape[0] == 0:
        raise PruneError("calibration inputs are empty. Pass at least one sample (a few hundred "
                         "to a few thousand are typical).")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise PruneError(f"calibration inputs hold {int(bad.sum())} NaN or infinite value(s) "
                         f"(first at sample {r}, feature {c}). Remove or impute them.")
    return np.ascontiguousarray(X)


def logits(model, X):
    """Pre-activation of the output layer (float64) for model inputs ``X``.

    Parameters
    ----------
    model : SparseMLP
        The model.
    X : ndarray of shape (n, n_features)
        Model inputs.

    Returns
    -------
    ndarray of shape (n, n_outputs)
        Logits.
    """
    n = len(model.layers)
    return layer_output(model, n - 1, layer_input(model, n - 1, X))


def hessian(A, *, damp, bias=True, where="layer"):
    """``H = Ãᵀ Ã + λ I`` of layer inputs ``A`` (Ã: ``A`` with a column of ones when ``bias``).

    ``½ δᵀ H δ`` is half the increase of the layer's squared output error ``‖Ã δ‖²`` (plus
    the ridge term ``λ‖δ‖²``) when one output neuron's weights (and bias) change by ``δ``.

    Parameters
    ----------
    A : ndarray of shape (n, n_in)
        The layer's calibration inputs (float64).
    damp : float
        ``λ = damp * mean(diag(AᵀA))`` (``damp`` itself when that mean is 0).
    bias : bool, default=True
        Append the bias coordinate (index ``n_in``).
    where : str, default="layer"
        The layer, for the size message.

    Returns
    -------
    ndarray of shape (n_in + bias, n_in + bias)
        float64.

    Raises
    ------
    PruneError
        If H would exceed :data:`MAX_HESSIAN_BYTES`.
    """
    n, d = A.shape
    m = d + int(bias)
    if 8 * m * m > MAX_HESSIAN_BYTES:
        raise PruneError(f"{where} has {d} inputs: its Hessian would take {8 * m * m / 2**30:.1f} "
                         f"GiB (limit {MAX_HESSIAN_BYTES / 2**30:.0f} GiB). Prune it with "
                         "criterion='magnitude' and compensate='none', which need no Hessian.")
    H = np.empty((m, m))
    H[:d, :d] = A.T @ A
    if bias:
        s = A.sum(axis=0)
        H[:d, d] = s
        H[d, :d] = s
        H[d, d] = n
    mean = float(np.trace(H[:d, :d])) / max(1, d)
    lam = damp * mean if mean > 0 else damp
    H[np.diag_indices(m)] += lam
    return H
