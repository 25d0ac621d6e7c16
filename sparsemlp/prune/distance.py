"""The output-distance criterion: remove the weight whose absence changes the outputs least.

``d(θ, θ₀) = Σ_x ‖log softmax f_θ(x) − log softmax f_θ₀(x)‖²`` over calibration points (or
uniform noise), with ``f`` the logits; each removal tries every remaining weight against the
model before pruning ``θ₀`` and takes the exact argmin (a greedy exhaustive search, O(nnz)
forward passes per removal).
"""

import time

import numpy as np

from ..nn.inference import inference_scale
from .calibration import hessian, layer_output, logits, next_input
from .columns import LayerColumns, refit
from .report import progress

__all__ = ["log_softmax", "output_distance", "candidate_distances", "prune_by_distance",
           "MAX_WEIGHTS"]

#: The criterion is refused above this many weights (it costs O(weights² × samples)).
MAX_WEIGHTS = 10_000
_CHUNK = 1 << 22  # floats of candidate activations held at once


def log_softmax(Z, axis=-1):
    """Log softmax of logits along one axis.

    Parameters
    ----------
    Z : ndarray
        Logits.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    ndarray
        ``Z - logsumexp(Z)`` along ``axis``.
    """
    m = Z.max(axis=axis, keepdims=True)
    return Z - m - np.log(np.exp(Z - m).sum(axis=axis, keepdims=True))


def output_distance(model, X, ref):
    """``Σ_x ‖log softmax f(x) − ref(x)‖²`` for a model and reference log-probabilities.

    Parameters
    ----------
    model : SparseMLP
        The model.
    X : ndarray of shape (n, n_features)
        Inputs.
    ref : ndarray of shape (n, n_outputs)
        Reference log softmax of the logits.

    Returns
    -------
    float
        The distance.
    """
    A = X
    n = len(model.layers)
    for i in range(n - 1):
        A = next_input(model, i, A)
    return float(np.sum((log_softmax(layer_output(model, n - 1, A)) - ref) ** 2))


def _dense(W):
    """A small layer's weights as a dense float64 array (this criterion's nets are small)."""
    if W.shape[0] * W.shape[1] > 1 << 22:
        return W.astype(np.float64)
    return W.astype(np.float64).toarray()


def _tail(model, i, Z, ref, dense):
    """Distances for stacked pre-activations ``Z`` (n_out_i, c, n) of layer ``i``."""
    _, c, n = Z.shape
    for k in range(i, len(model.layers) - 1):
        A = model.activations[k].forward(Z.reshape(Z.shape[0], c * n))
        Z = np.asarray(dense[k + 1].T @ A).reshape(-1, c, n)
        Z += model.layers[k + 1].b[:, None, None]
        Z *= inference_scale(model, k + 1)
    return np.sum((log_softmax(Z, axis=0) - ref.T[:, None, :]) ** 2, axis=(0, 2))


def candidate_distances(model, i, A, ref, cols):
    """The distance after removing each weight of layer ``i`` alone (no compensation).

    Removing ``w_rj`` changes the pre-activation of neuron j only; the next layer's
    pre-activations change by the rank-one term ``Δa_j W[j, :]``, and the layers after
    are recomputed for every candidate (feature-major arrays: units first).

    Parameters
    ----------
    model : SparseMLP
        The model (hidden activations elementwise).
    i : int
        Layer.
    A : ndarray of shape (n, n_in)
        The layer's inputs for the calibration points.
    ref : ndarray of shape (n, n_outputs)
        Reference log softmax.
    cols : LayerColumns
        The layer in column order.

    Returns
    -------
    ndarray of shape (nnz,)
        Distance per entry (entry order of ``cols``).
    """
    n_layers = len(model.layers)
    dense = {k: _dense(model.layers[k].W) for k in range(i + 1, n_layers)}
    Z = layer_output(model, i, A).T.copy()  # (n_out, n)
    s = inference_scale(model, i)
    out = np.empty(cols.nnz)
    n = A.shape[0]
    last = i == n_layers - 1
    width = Z.shape[0] if last else max(model.layers[k].n_out for k in range(i + 1, n_layers))
    step = max(1, _CHUNK // max(1, n * width))
    col = cols.column_of
    At = A.T
    if not last:
        act = model.activations[i].forward(Z)
        s1 = inference_scale(model, i + 1)
        Z1 = layer_output(model, i + 1, act.T).T  # (n_out of layer i + 1, n)
    for a in range(0, cols.nnz, step):
        e = min(cols.nnz, a + step)
        r, j, w = cols.rows[a:e], col[a:e], cols.vals[a:e]
        ar = np.arange(e - a)
        dz = -(s * w)[:, None] * At[r]  # (c, n): change of neuron j's pre-activation
        if last:
            Zc = np.repeat(Z[:, None, :], e - a, axis=1)
            Zc[j, ar] += dz
            out[a:e] = np.sum((log_softmax(Zc, axis=0) - ref.T[:, None, :]) ** 2, axis=(0, 2))
            continue
        da = model.activations[i].forward(Z[j] + dz) - act[j]  # (c, n)
        row = dense[i + 1][j]
        row = row.toarray() if hasattr(row, "toarray") else row  # (c, n_out of layer i + 1)
        Zc = Z1[:, None, :] + (s1 * row.T)[:, :, None] * da[None]
        out[a:e] = _tail(model, i + 1, Zc, ref, dense)
    return out


def prune_by_distance(work, X, layers, targets, total, *, compensate, damp, bias, seconds,
                      progress_bar=False):
    """Greedy exhaustive removals by output distance, in place on ``work``.

    Parameters
    ----------
    work : SparseMLP
        The model, pruned in place (layers replaced).
    X : ndarray of shape (n, n_features)
        Calibration points.
    layers : list of int
        Layers that may lose connections.
    targets : dict of int to int or int
        Connections each layer keeps (per-layer scope) or, with ``total``, unused.
    total : int or None
        Connections the layers keep together (global scope).
    compensate : {"none", "obs", "refit"}
        After each removal, ``obs`` and ``refit`` (the same for one removal) re-solve the
        neuron that lost the connection on its kept inputs.
    damp : float
        Hessian damping.
    bias : bool
        Compensate the bias too.
    seconds : dict of int to float
        Seconds per layer, added to.
    progress_bar : bool, default=False
        Show a progress bar over the removals.
    """
    ref = log_softmax(logits(work, X))
    if total is not None:
        n_steps = sum(work.layers[i].nnz for i in layers) - total
    else:
        n_steps = sum(work.layers[i].nnz - targets[i] for i in layers)
    bar = progress(max(0, n_steps), "output distance", progress_bar)
    try:
        for _ in range(max(0, n_steps)):
            live = [i for i in layers if work.layers[i].nnz > (0 if total is not None
                                                                 else targets[i])]
            best, A, inputs = None, X, {}
            for i in range(max(live) + 1):
                if i in live:
                    t = time.perf_counter()
                    cols = LayerColumns(work.layers[i].W, work.layers[i].b)
                    d = candidate_distances(work, i, A, ref, cols)
                    q = int(np.argmin(d))
                    if best is None or d[q] < best[0]:
                        best = (d[q], i, q, cols)
                    inputs[i] = A
                    seconds[i] += time.perf_counter() - t
                if i < max(live):
                    A = next_input(work, i, A)
            _, i, q, cols = best
            t = time.perf_counter()
            keep = np.ones(cols.nnz, bool)
            keep[q] = False
            if compensate == "none":
                vals, b = cols.vals, cols.bias
            else:
                vals, b = refit(hessian(inputs[i], damp=damp, bias=bias), cols, keep, bias=bias)
            old = work.layers[i]
            work.layers[i] = type(old)(cols.to_csr(keep, vals), b.astype(old.dtype),
                                       kernels=old.kernels)
            seconds[i] += time.perf_counter() - t
            bar.update(1)
    finally:
        bar.close()
