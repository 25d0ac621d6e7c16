"""Models from a configuration: the SparseMLP or SparseRBM a TrainConfig describes, fresh or saved."""

import numpy as np

from ..nn.mlp import SparseMLP
from ..rbm import SparseRBM
from ..topology import ClashFreeSchedule, predefined_layers
from .checkpoint import CheckpointError
from .config import PREDEFINED, ConfigError
from .layerinfo import layer_kind, layer_shape

__all__ = ["build_model", "build_rbm", "model_from_state", "MODEL_CLASSES"]

#: ``meta.json`` ``model_class`` values of checkpoints.
MODEL_CLASSES = ("SparseMLP", "SparseRBM")


def build_model(cfg, n_features, n_outputs, *, rng, kernels, weights=None, schedules=None):
    """The SparseMLP a resolved config describes (fresh layers, or given weights).

    Parameters
    ----------
    cfg : TrainConfig
        Resolved config: Erdős–Rényi layers for ``topology`` 'set' / 'static', pre-defined
        ones (:func:`sparsemlp.topology.predefined_layers`) for 'random', 'regular' and
        'clash-free'.
    n_features, n_outputs : int
        Input and output sizes.
    rng : numpy.random.Generator or RandomState
        Initialisation randomness (unused when ``weights`` is given).
    kernels : KernelSet
        Backend.
    weights : list of scipy.sparse.csr_array or Approximation, optional
        Existing weights (from a checkpoint); an approximation becomes a structured layer
        (``to_layer``, bias zero).
    schedules : list of ClashFreeSchedule or None, optional
        Cycle schedules of the existing weights (from a checkpoint).

    Returns
    -------
    SparseMLP
        The model; clash-free layers carry their ``schedule``.

    Raises
    ------
    ConfigError
        If the pre-defined topology's parameters do not fit the layer sizes.
    CheckpointError
        If ``weights`` do not match the sizes.
    """
    sizes = [n_features, *cfg.hidden, n_outputs]
    dtype = np.dtype(cfg.dtype)
    common = dict(activation=cfg.activation, output_activation=cfg.output_activation,
                  alpha=cfg.alpha, dropout=cfg.dropout, dropout_kind=cfg.dropout_kind,
                  kernels=kernels)
    if weights is None:
        if cfg.topology not in PREDEFINED:
            return SparseMLP.erdos_renyi(
                sizes, epsilon=cfg.epsilon, law=cfg.er_law, init=cfg.init, dtype=dtype, rng=rng,
                normal_std=cfg.normal_std, **common)
        try:
            n = len(sizes) - 1
            weights, schedules = predefined_layers(
                sizes, topology=cfg.topology, fan_out=cfg.per_layer("fan_out", n) or None,
                z=cfg.per_layer("z", n) or None, n_cycles=cfg.cycles or None,
                epsilon=cfg.epsilon, kind=cfg.clash_kind, dither=cfg.dither, init=cfg.init,
                rng=rng, dtype=dtype, normal_std=cfg.normal_std)
        except ValueError as exc:
            raise ConfigError(f"topology {cfg.topology!r} with sizes {sizes}: {exc}") from None
        return SparseMLP.from_weights(weights, schedules=schedules, rng=rng, **common)
    shapes = [tuple(layer_shape(W)) for W in weights]
    if shapes != list(zip(sizes[:-1], sizes[1:])):
        raise CheckpointError(f"checkpoint layer shapes {shapes} do not match sizes {sizes}.")
    layers = [W.astype(dtype, copy=False) if layer_kind(W) == "csr"
              else W.to_layer(dtype=dtype, kernels=kernels) for W in weights]
    return SparseMLP.from_weights(layers, schedules=schedules, **common)


def build_rbm(cfg, n_visible, *, rng, kernels, weights=None, arrays=None):
    """The SparseRBM a resolved ``--model rbm`` config describes (fresh, or from a checkpoint).

    Parameters
    ----------
    cfg : TrainConfig
        Resolved config (``hidden`` holds the number of hidden units).
    n_visible : int
        Number of visible units (features).
    rng : numpy.random.Generator or RandomState
        Initialisation randomness (unused with ``weights``).
    kernels : KernelSet
        Backend.
    weights : list of one scipy.sparse.csr_array, optional
        Saved weights.
    arrays : dict, optional
        Saved ``state.npz`` arrays (biases).

    Returns
    -------
    SparseRBM
        The model.
    """
    dtype = np.dtype(cfg.dtype)
    if weights is None:
        return SparseRBM.erdos_renyi(n_visible, cfg.hidden[0], epsilon=cfg.epsilon,
                                     law=cfg.er_law, init=cfg.init, normal_std=cfg.normal_std,
                                     rng=rng, dtype=dtype, visible=cfg.visible_units,
                                     kernels=kernels)
    W = weights[0]
    if len(weights) != 1 or W.shape != (n_visible, cfg.hidden[0]):
        raise CheckpointError(
            f"checkpoint weights {[w.shape for w in weights]} do not match an RBM with "
            f"{n_visible} visible and {cfg.hidden[0]} hidden units.")
    return SparseRBM(W.astype(dtype, copy=False), arrays["visible_bias"], arrays["layers.0.bias"],
                     visible=cfg.visible_units, kernels=kernels)


def model_from_state(cfg, model_class, weights, arrays, kernels):
    """The model a checkpoint holds, from its verified weights and ``state.npz`` arrays.

    Parameters
    ----------
    cfg : TrainConfig
        The checkpoint's resolved config.
    model_class : {"SparseMLP", "SparseRBM"}
        ``meta.json``'s ``model_class``.
    weights : list of scipy.sparse.csr_array or Approximation
        The layers, as :func:`sparsemlp.training.checkpoint.load` returns them.
    arrays : dict of str to ndarray
        ``state.npz``: biases (``layers.<i>.bias``, ``visible_bias``), SReLU parameters
        (``activations.<i>.params``) and clash-free schedules (``layers.<i>.schedule.*``).
    kernels : KernelSet
        Backend.

    Returns
    -------
    SparseMLP or SparseRBM
        The model, weights by reference.

    Raises
    ------
    CheckpointError
        If the model class is unknown or the arrays do not fit the config.
    """
    if model_class == "SparseRBM":
        return build_rbm(cfg, weights[0].shape[0], rng=None, kernels=kernels, weights=weights,
                         arrays=arrays)
    if model_class != "SparseMLP":
        raise CheckpointError(f"unknown model_class {model_class!r}; this sparsemlp reads "
                              f"{', '.join(MODEL_CLASSES)} checkpoints.")
    schedules = [ClashFreeSchedule.from_state_dict(arrays, f"layers.{i}.schedule.")
                 for i in range(len(weights))]
    model = build_model(cfg, layer_shape(weights[0])[0], layer_shape(weights[-1])[1], rng=None,
                        kernels=kernels, weights=weights, schedules=schedules)
    for i, layer in enumerate(model.layers):
        layer.b[:] = arrays[f"layers.{i}.bias"]
    try:
        model.load_activation_params(arrays)
    except ValueError as exc:
        raise CheckpointError(f"{exc} Its activation is {cfg.activation!r}.") from None
    return model
