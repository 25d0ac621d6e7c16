"""A model that was not trained here (pruned, imported) written as a normal run directory."""

import json
import os

import numpy as np

from .._rng import Streams
from .._version import __version__
from . import checkpoint
from .config import ConfigError, TrainConfig
from .mlp import Trainer
from .presets import NO_DATASET

__all__ = ["NO_DATASET", "model_config", "save_model_run", "write_degrees", "write_json"]

_OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "identity")


def model_config(model, *, base=None, dataset=None, normalize="none", data_dir=None,
                 test_size=None, seed=None, epochs=1):
    """The TrainConfig describing a SparseMLP (its sizes, activations and dtype).

    Parameters
    ----------
    model : SparseMLP
        The model.
    base : TrainConfig, optional
        A configuration to start from (the run the model came from); its architecture
        fields are replaced by the model's.
    dataset : str, optional
        The data set to record (default: the base's, else :data:`NO_DATASET`).
    normalize : {"none", "zscore", "minmax"}, default="none"
        Feature scaling of that data set (ignored with a base).
    data_dir : str, optional
        Where the data set's files are.
    test_size : float, optional
        Its test fraction (when it has no test split).
    seed : int, optional
        The seed of its split.
    epochs : int, default=1
        ``epochs`` to record (at least 1).

    Returns
    -------
    TrainConfig
        Resolved.

    Raises
    ------
    ConfigError
        If the model cannot be described by a run configuration (no hidden layer, an
        output activation other than softmax, sigmoid or identity).
    """
    acts = [a.name for a in model.activations]
    if len(model.layers) < 2:
        raise ConfigError("a run directory holds an MLP with at least one hidden layer; this "
                          "model has a single layer. Use the model in Python instead.")
    if acts[-1] not in _OUTPUT_ACTIVATIONS:
        raise ConfigError(f"the model's output activation {acts[-1]!r} cannot be recorded in a "
                          f"run ({', '.join(_OUTPUT_ACTIVATIONS)}).")
    alpha = getattr(model.activations[0], "alpha", None)
    arch = dict(hidden=tuple(model.sizes[1:-1]), activation=acts[0], output_activation=acts[-1],
                dtype=str(model.dtype), dropout=model.dropout, dropout_kind=model.dropout_kind,
                **({} if alpha is None else {"alpha": abs(alpha)}))
    if acts[0] == "leaky_relu" and alpha is not None and alpha < 0:
        arch["activation"], arch["alpha"] = "all_relu", abs(alpha)
    if base is not None:
        d = dict(base.to_dict(), **arch)
        d.update({k: v for k, v in (("dataset", dataset), ("data_dir", data_dir)) if v})
    else:
        d = dict(arch, dataset=dataset or NO_DATASET, normalize=normalize, data_dir=data_dir,
                 topology="static", epochs=max(1, int(epochs)),
                 loss="mse" if acts[-1] == "identity" else "cross_entropy")
        if test_size is not None:
            d["test_size"] = test_size
        if seed is not None:
            d["seed"] = seed
    return TrainConfig.from_dict(d).resolve()


def write_degrees(path, model):
    """In- and out-degrees of every CSR layer (``in_<i>``, ``out_<i>``) to an ``.npz`` file.

    ``i`` counts the CSR layers (`SparseMLP.sparse_layers`): structured layers have none.

    Parameters
    ----------
    path : str
        Destination (written atomically); ``python -m sparsemlp.plot`` reads it as the
        initial topology.
    model : SparseMLP
        The model.
    """
    arrays = {}
    for i, layer in enumerate(model.sparse_layers()):
        W = layer.W
        arrays[f"out_{i}"] = np.diff(W.indptr).astype(np.int64)
        arrays[f"in_{i}"] = np.bincount(W.indices, minlength=W.shape[1]).astype(np.int64)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically (a temporary, then a rename).

    Parameters
    ----------
    path : str
        Destination file.
    obj : object
        JSON-serialisable value.
    """
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2)
    os.replace(tmp, path)


def save_model_run(run_dir, model, config, *, preprocessing=None, epoch=0, history=(),
                   initial=None, info=None):
    """Write a model as a run directory that evaluate, info, plot and ``--init-from`` read.

    The directory gets ``config.json``, ``metrics.jsonl`` (``history``), ``final/`` (a
    checkpoint with zero optimizer state), ``latest`` and, with ``initial``, the degrees
    of that earlier model as ``initial_degrees.npz``.

    Parameters
    ----------
    run_dir : str
        The directory (created; see ``training.rundir.plan_new_run`` for the checks).
    model : SparseMLP
        The model.
    config : TrainConfig
        Resolved configuration matching the model (see :func:`model_config`).
    preprocessing : Preprocessing, optional
        Label map and feature scaling stored with the model.
    epoch : int, default=0
        Epochs the model was trained.
    history : sequence of dict, default=()
        Records for ``metrics.jsonl`` (the figures need ``epoch``, ``train_loss``,
        ``test_loss``, ``test_accuracy`` and the ``seconds_*`` keys).
    initial : SparseMLP, optional
        The model before (its degrees are plotted against the final ones).
    info : dict, optional
        More JSON for ``config.json`` (for example what produced the model).

    Returns
    -------
    str
        The ``final/`` checkpoint directory.

    Raises
    ------
    ConfigError
        If the configuration does not describe the model.
    """
    sizes = [model.sizes[0], *config.hidden, model.sizes[-1]]
    if sizes != model.sizes:
        raise ConfigError(f"the configuration describes sizes {sizes}, the model has "
                          f"{model.sizes}.")
    trainer = Trainer(model, config, streams=Streams(config.seed, legacy=config.legacy_rng),
                      verbose=False)
    trainer.set_run_dir(run_dir)
    trainer.epoch = int(epoch)
    trainer.preprocessing = preprocessing
    for record in history:
        trainer.history.append(dict(record))
    if history:
        trainer.best_accuracy = history[-1].get("best_test_accuracy")
    classes = None if preprocessing is None else np.asarray(preprocessing.classes).tolist()
    write_json(os.path.join(run_dir, "config.json"), {
        "config": config.to_dict(), "sparsemlp_version": __version__,
        "backend": model.kernels.name, "dataset": config.dataset,
        "n_features": model.sizes[0], "n_classes": model.sizes[-1], "classes": classes,
        "normalize": None if preprocessing is None else preprocessing.scaling.how,
        **(info or {})})
    if initial is not None:
        write_degrees(os.path.join(run_dir, "initial_degrees.npz"), initial)
    final = trainer.save(os.path.join(run_dir, "final"))
    checkpoint.write_latest(run_dir, "final")
    return final
