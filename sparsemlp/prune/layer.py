"""One layer, one round: choose the weights to remove and compensate the ones that stay."""

import numpy as np

from .calibration import hessian, layer_output
from .columns import LayerColumns, lowest, refit, saliencies
from .errors import PruneError
from .obs import SEQUENTIAL_FLOPS, merge_paths, obs_paths, sequential_work

__all__ = ["needs_hessian", "needs_data", "layer_saliencies", "prune_layer"]


def needs_hessian(criterion, compensate):
    """Whether a criterion and compensation need the layer's full Hessian.

    Parameters
    ----------
    criterion : str
        Saliency criterion.
    compensate : str
        Compensation.

    Returns
    -------
    bool
        True for ``obs`` either way and for any compensation.
    """
    return criterion == "obs" or compensate != "none"


def needs_data(criterion, compensate):
    """Whether calibration inputs are needed.

    Parameters
    ----------
    criterion : str
        Saliency criterion.
    compensate : str
        Compensation.

    Returns
    -------
    bool
        False only for magnitude pruning without compensation.
    """
    return criterion != "magnitude" or compensate != "none"


def _hessian(A, damp, bias, i, layer):
    return hessian(A, damp=damp, bias=bias, where=f"layer {i} ({layer.n_in} x {layer.n_out})")


def layer_saliencies(model, i, A, criterion, *, damp, bias, normalise):
    """One-shot saliencies of every weight of layer ``i`` (entry order of LayerColumns).

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer.
    A : ndarray or None
        The layer's calibration inputs (None for magnitude).
    criterion : {"magnitude", "obd", "obs"}
        Criterion.
    damp : float
        Hessian damping.
    bias : bool
        Bias coordinate in the Hessian.
    normalise : bool
        Divide ``obd``/``obs`` saliencies by the layer's output energy ``‖A W + b‖²`` so that
        layers compare (a relative error increase).

    Returns
    -------
    saliency : ndarray of shape (nnz,)
        Saliencies.
    cols : LayerColumns
        The layer.
    """
    layer = model.layers[i]
    cols = LayerColumns(layer.W, layer.b)
    if criterion == "magnitude":
        return saliencies(cols, "magnitude"), cols
    H = _hessian(A, damp, bias, i, layer) if criterion == "obs" else None
    hd = np.einsum("ij,ij->j", A, A) if criterion == "obd" else None
    s = saliencies(cols, criterion, H=H, hdiag=hd, bias=bias)
    if normalise:
        s = s / max(float(np.sum(layer_output(model, i, A) ** 2)), np.finfo(float).tiny)
    return s, cols


def prune_layer(model, i, A, k, *, criterion, compensate, damp, bias, tick=None):
    """Remove ``k`` weights of layer ``i`` and compensate: the new weights and bias.

    Parameters
    ----------
    model : SparseMLP
        The model (not modified).
    i : int
        Layer.
    A : ndarray of shape (n, n_in) or None
        The layer's calibration inputs (None only for magnitude without compensation).
    k : int
        Weights to remove (at most the layer's nnz).
    criterion : {"magnitude", "obd", "obs"}
        Which weights go.
    compensate : {"none", "obs", "refit"}
        ``none``: the others keep their values; ``refit``: each neuron's kept weights (and
        bias) become the least-squares optimum of its output on its kept inputs; ``obs``:
        weights are removed one at a time per neuron, each removal the cheapest after the
        OBS update of the previous ones, the layer's cheapest removals over all neurons
        taken; the final values are that same optimum on the chosen weights.
    damp : float
        Hessian damping (``calibration.hessian``).
    bias : bool
        Compensate the bias too.
    tick : callable, optional
        Progress callback (output neurons done).

    Returns
    -------
    W : scipy.sparse.csr_array
        New canonical weights (removed entries absent).
    b : ndarray
        New bias (layer dtype).

    Raises
    ------
    PruneError
        If sequential OBS on this layer would be too much work, or a Hessian is singular.
    """
    layer = model.layers[i]
    cols = LayerColumns(layer.W, layer.b)
    H = _hessian(A, damp, bias, i, layer) if needs_hessian(criterion, compensate) else None
    hd = np.einsum("ij,ij->j", A, A) if criterion == "obd" else None
    try:
        if compensate == "obs":
            counts = cols.counts
            work = sequential_work(counts, k)
            if work > SEQUENTIAL_FLOPS:
                raise PruneError(
                    f"compensate='obs' removes the weights of layer {i} ({layer.n_in} x "
                    f"{layer.n_out}, {cols.nnz} weights) one at a time: about {work:.2g} "
                    f"multiply-adds (limit {SEQUENTIAL_FLOPS:.0e}). Use compensate='refit' "
                    "(the same optimum on a mask chosen in one shot; add steps=3 or more for "
                    "a mask closer to the sequential one).")
            pos, cost = obs_paths(H, cols, np.arange(cols.n_out), min(k, int(counts.max())),
                                  criterion, hdiag=hd, bias=bias, tick=tick)
            removed = merge_paths(pos, cost, k)
        else:
            sal = saliencies(cols, criterion, H=H, hdiag=hd, bias=bias,
                             tick=tick if compensate == "none" else None)
            removed = lowest(sal, k)
        keep = np.ones(cols.nnz, bool)
        keep[removed] = False
        if compensate == "none":
            vals, b = cols.vals, cols.bias
        else:
            vals, b = refit(H, cols, keep, bias=bias, tick=tick if compensate == "refit" else None)
    except np.linalg.LinAlgError:
        raise PruneError(f"layer {i}: the Hessian of its calibration inputs is singular. Raise "
                         "damp (e.g. damp=0.01) or use more calibration samples.") from None
    return cols.to_csr(keep, vals), b.astype(layer.dtype)
