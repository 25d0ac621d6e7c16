"""Dynamic sparse training in the trainer: per-epoch zeta and the batch signals of gradient regrowth."""

import math

import numpy as np

from ..nn.batching import batch_t
from ..nn.functions import output_delta

__all__ = ["evolves", "evolves_after_step", "zeta_at", "gradient_signals", "rule_params"]


def evolves(config, e):
    """Whether the topology changes after 0-based epoch ``e`` (``--update-every``).

    Parameters
    ----------
    config : TrainConfig
        Resolved configuration.
    e : int
        0-based epoch.

    Returns
    -------
    bool
        True when the run rewires by epochs and ``(e + 1) % update_every == 0``.
    """
    return (config.rewire != "none" and config.update_unit == "epochs"
            and (e + 1) % config.update_every == 0)


def evolves_after_step(config, step):
    """Whether the topology changes after optimizer step ``step`` (``--update-unit steps``).

    Parameters
    ----------
    config : TrainConfig
        Resolved configuration.
    step : int
        Steps of the run done so far, this one included (1 after the first).

    Returns
    -------
    bool
        True when the run rewires by steps and ``step % update_every == 0``.
    """
    return (config.rewire != "none" and config.update_unit == "steps"
            and step % config.update_every == 0)


def zeta_at(config, layer, n_layers, e, progress=None):
    """The fraction rewired in a layer after 0-based epoch ``e``.

    Parameters
    ----------
    config : TrainConfig
        Resolved configuration.
    layer, n_layers : int
        Layer index and number of weight layers.
    e : int
        0-based epoch.
    progress : float, optional
        The run's progress ``t / T`` in place of ``e / epochs`` (updates by steps:
        ``step / (epochs * batches per epoch)``).

    Returns
    -------
    float
        ``zeta`` (``prune_schedule="constant"``), or RigL's cosine decay
        ``zeta * (1 + cos(pi * e / epochs)) / 2`` (Evci et al. 2020).
    """
    zeta = config.zeta_for(layer, n_layers)
    if config.prune_schedule == "cosine":
        angle = (math.pi * min(e, config.epochs) / config.epochs if progress is None
                 else math.pi * min(progress, 1.0))
        zeta *= 0.5 * (1.0 + math.cos(angle))
    return zeta


def gradient_signals(model, config, streams, X, y, e, one_hot, step=None):
    """Per layer, the inputs and the pre-activation deltas on one batch of training data.

    Parameters
    ----------
    model : SparseMLP
        The model (weights as trained so far; not modified).
    config : TrainConfig
        Resolved configuration (``regrow_batch``, ``loss``, ``mode``).
    streams : Streams
        Random streams: ``"regrow"`` keyed by the epoch draws the batch and its dropout.
    X, y : array-like
        Training data.
    e : int
        0-based epoch.
    one_hot : callable
        ``one_hot(labels, n_out, dtype)`` -> targets of shape (n_out, B).
    step : int, optional
        The optimizer step of an update by steps: the batch is then drawn from the
        ``"regrow_step"`` stream keyed by it.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(xt, dyt)`` per layer: its inputs (n_in, B) and ``dL/dz`` (n_out, B), the
        factors of the layer's full gradient ``xt @ dyt.T`` that gradient regrowth scores
        block by block. O(B * sum of widths) memory.

    Notes
    -----
    The batch is ``regrow_batch`` distinct samples drawn by the epoch's stream, with dropout
    as in training, so a resumed run scores the same batch (the stream is keyed, not
    consumed by training).
    """
    rng = streams.get("regrow", e) if step is None else streams.get("regrow_step", step)
    n = X.shape[0]
    m = min(n, config.regrow_batch)
    idx = np.sort(rng.choice(n, m, replace=False))
    xt = batch_t(X, idx, model.dtype)
    n_out = model.layers[-1].n_out
    yt = one_hot(np.asarray(y)[idx], n_out, model.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        yhat = model.forward(xt, train=True, rng=rng)
        cache, model._cache = model._cache, None
        quirk = config.mode == "reference" and config.loss == "mse"
        delta = output_delta(config.loss, model.activations[-1], cache[-1][1], yhat, yt,
                             set_quirk=quirk)
        out = [None] * len(model.layers)
        for i in range(len(model.layers) - 1, -1, -1):
            out[i] = (cache[i][0], delta)
            if i == 0:
                break
            W = model.layers[i].W
            dx = np.empty((W.shape[0], m), model.dtype)
            model.layers[i].kernels.spmm_t(W.indptr, W.indices, W.data, delta, dx)
            _, z_prev, a_prev, mask_prev = cache[i - 1]
            model.activations[i - 1].backward(z_prev, a_prev, dx)
            if mask_prev is not None:
                dx *= mask_prev
            delta = dx
    return out


def rule_params(config, signal, rng):
    """Keyword arguments of :func:`sparsemlp.evolution.apply` for a gradient regrowth rule.

    Parameters
    ----------
    config : TrainConfig
        Resolved configuration (``regrow``, ``regrow_candidates``).
    signal : tuple of ndarray
        ``(xt, dyt)`` of the layer (:func:`gradient_signals`).
    rng : numpy.random.Generator or RandomState
        The layer's evolution stream (candidates of ``gradient-sampled``).

    Returns
    -------
    dict
        ``xt``, ``dyt`` and ``init="zero"`` (RigL), plus ``rng`` and ``candidates`` for
        ``gradient-sampled``.
    """
    kw = dict(xt=signal[0], dyt=signal[1], init="zero")
    if config.regrow == "gradient-sampled":
        kw.update(rng=rng, candidates=config.regrow_candidates)
    return kw
