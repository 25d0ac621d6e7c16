"""``init_from``: a run that starts from the weights of a trained MLP (a pruned one, say)."""

import numpy as np

from ..nn.mlp import SparseMLP
from .checkpoint import CheckpointError
from .config import ConfigError
from .loading import load_run
from .presets import NO_DATASET

__all__ = ["init_model", "init_preprocessing", "inherited_settings", "INHERITED"]

#: Settings a run started ``init_from`` another takes from it unless they are given: the
#: architecture (it must match the weights) and the data (the same data, split and scaling).
INHERITED = ("mode", "hidden", "activation", "output_activation", "alpha", "dtype", "dataset",
             "data_dir", "label_column", "test_size", "train_samples", "test_samples",
             "synthetic_samples", "synthetic_features", "synthetic_classes", "normalize",
             "pad_inputs", "seed")


def _load(path):
    try:
        run = load_run(path)
    except CheckpointError as exc:
        raise ConfigError(f"--init-from {path}: {exc}") from None
    if not isinstance(run.model, SparseMLP):
        raise ConfigError(f"--init-from {path} holds a {type(run.model).__name__}; a run can "
                          "start from the weights of an MLP only.")
    return run


def inherited_settings(path, given):
    """The settings of the run at ``path`` that a run ``init_from`` it takes over.

    Parameters
    ----------
    path : str
        The ``init_from`` run, checkpoint or ``final/`` directory.
    given : iterable of str
        Settings given explicitly (kept).

    Returns
    -------
    dict
        ``INHERITED`` settings of that run not in ``given`` (a data set it does not record
        is not inherited).

    Raises
    ------
    ConfigError
        If ``path`` is not a readable MLP run.
    """
    cfg = _load(path).config.to_dict()
    out = {k: cfg[k] for k in INHERITED if k not in given and k in cfg}
    if out.get("dataset") == NO_DATASET:
        for k in ("dataset", "data_dir", "normalize"):
            out.pop(k, None)
    return out


def init_preprocessing(path):
    """The label map and feature scaling stored with the ``init_from`` model (or None).

    Parameters
    ----------
    path : str
        The ``init_from`` directory.

    Returns
    -------
    Preprocessing or None
        What its checkpoint stores.
    """
    return _load(path).preprocessing


def init_model(cfg, n_features, n_outputs, *, rng=None, kernels):
    """The SparseMLP of ``cfg.init_from``, checked against the configuration.

    Same signature as ``training.build.build_model`` (``rng`` is unused): the weights,
    biases and SReLU parameters are copied from the trained model, its topology kept; dropout, dtype and the
    kernel backend are the configuration's.

    Parameters
    ----------
    cfg : TrainConfig
        Resolved configuration with ``init_from``.
    n_features, n_outputs : int
        Input and output sizes of the data.
    rng : object, optional
        Unused.
    kernels : KernelSet
        Backend.

    Returns
    -------
    SparseMLP
        The model.

    Raises
    ------
    ConfigError
        If the trained model's sizes or activations differ from the configuration's.
    """
    run = _load(cfg.init_from)
    m = run.model
    sizes = [n_features, *cfg.hidden, n_outputs]
    if m.sizes != sizes:
        raise ConfigError(f"--init-from {cfg.init_from} has layer sizes {m.sizes}, but this run "
                          f"has {sizes} ({n_features} features, {n_outputs} classes). Train on "
                          "data with the model's features and classes, with the same --hidden.")
    run_cfg = run.config
    for k in ("activation", "output_activation"):
        if getattr(run_cfg, k) != getattr(cfg, k):
            raise ConfigError(f"--init-from {cfg.init_from} was trained with {k} "
                              f"{getattr(run_cfg, k)!r}; this run has {getattr(cfg, k)!r}. Drop "
                              f"--{k.replace('_', '-')} to use the model's.")
    dtype = np.dtype(cfg.dtype)
    new = SparseMLP.from_weights(
        [la.W.astype(dtype, copy=True) if la.kind == "csr" else  # structured: a copy too
         la.to_approximation().to_layer(la.b, dtype=dtype, kernels=kernels) for la in m.layers],
        biases=[la.b.astype(dtype, copy=True) for la in m.layers],
        activation=cfg.activation, output_activation=cfg.output_activation, alpha=cfg.alpha,
        dropout=cfg.dropout, dropout_kind=cfg.dropout_kind, kernels=kernels)
    for (_, a), (_, b) in zip(new.param_activations(), m.param_activations()):
        a.params[...] = b.params  # SReLU's trained parameters
    return new
