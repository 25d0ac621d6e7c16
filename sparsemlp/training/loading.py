"""Models back from disk: load_model and load_run read a run, checkpoint or final/ directory."""

import dataclasses
import os

from .. import _kernels
from ..data.preprocessing import Preprocessing
from . import checkpoint
from .build import MODEL_CLASSES, model_from_state
from .checkpoint import CheckpointError, read_latest
from .config import TrainConfig
from .rundir import newest_checkpoint

__all__ = ["LoadedRun", "find_checkpoint", "read_checkpoint", "load_run", "load_model"]


@dataclasses.dataclass
class LoadedRun:
    """A model read back from a checkpoint, with what the run knew about it.

    Attributes
    ----------
    model : SparseMLP or SparseRBM
        The model.
    config : TrainConfig
        The run's resolved configuration (``backend`` as overridden).
    path : str
        The checkpoint directory read.
    epoch : int
        Epochs completed when it was saved.
    meta : dict
        The verified ``meta.json``.
    arrays : dict of str to ndarray
        The verified ``state.npz`` (biases, optimizer state, data arrays).
    preprocessing : Preprocessing or None
        The run's label map and feature scaling (None for checkpoints made without them).
    """

    model: object
    config: TrainConfig
    path: str
    epoch: int
    meta: dict
    arrays: dict
    preprocessing: object = None


def find_checkpoint(path, which="final"):
    """Resolve a run directory (or a checkpoint directory) to one checkpoint directory.

    Parameters
    ----------
    path : str
        A run directory or a checkpoint directory (holding ``meta.json``).
    which : str, default="final"
        For a run directory: ``"final"`` (falls back to ``latest``), ``"latest"``, or the
        name of a directory under ``checkpoints/`` such as ``epoch-0010``.

    Returns
    -------
    str
        The checkpoint directory.

    Raises
    ------
    CheckpointError
        If nothing suitable exists.
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"{path} does not exist or is not a directory. Pass a run "
                              "directory written by 'python -m sparsemlp.train --out DIR'.")
    if os.path.exists(os.path.join(path, "meta.json")):
        return path
    if which == "final" and os.path.exists(os.path.join(path, "final", "meta.json")):
        return os.path.join(path, "final")
    if which in ("final", "latest"):
        latest = read_latest(path)
        if latest is not None and os.path.exists(os.path.join(latest, "meta.json")):
            return latest
    else:
        cand = os.path.join(path, "checkpoints", which)
        if os.path.exists(os.path.join(cand, "meta.json")):
            return cand
    have = sorted(os.listdir(os.path.join(path, "checkpoints"))) \
        if os.path.isdir(os.path.join(path, "checkpoints")) else []
    raise CheckpointError(f"{path} has no checkpoint {which!r} (available: "
                          f"{', '.join(have) or 'none'}). Is it a sparsemlp run directory?")


def read_checkpoint(path, *, model_class=None, backend=None, meta_keys=None):
    """Load and verify a checkpoint: its config, weights, arrays and meta.

    Parameters
    ----------
    path : str or path-like
        Checkpoint directory, or a run directory (its ``latest`` checkpoint, or its newest
        complete one if ``latest`` is missing).
    model_class : {"SparseMLP", "SparseRBM"}, optional
        Refuse a checkpoint of another model.
    backend : str, optional
        Override the kernel backend of the returned config.
    meta_keys : dict, optional
        More ``meta.json`` keys to check, name -> type(s).

    Returns
    -------
    path : str
        The checkpoint directory.
    cfg : TrainConfig
        Resolved configuration.
    weights : list of scipy.sparse.csr_array
        Verified canonical CSR weights.
    arrays : dict of str to ndarray
        ``state.npz``.
    meta : dict
        ``meta.json`` (``model_class``, ``config``, ``epoch``, ``step``, ``streams`` and
        ``history`` checked).

    Raises
    ------
    CheckpointError
        If the checkpoint is missing, corrupted, incompatible or of another model.
    """
    path = os.fspath(path)
    if not os.path.exists(os.path.join(path, "meta.json")):
        latest = newest_checkpoint(path) if os.path.isdir(path) else None
        if latest is None:
            raise CheckpointError(
                f"{path} is neither a checkpoint nor a run directory with a 'latest' file.")
        path = latest
    weights, arrays, meta = checkpoint.load(path)
    where = os.path.join(path, "meta.json")
    checkpoint.check_meta(meta, where, model_class=str)
    if meta["model_class"] not in MODEL_CLASSES:
        raise CheckpointError(f"{where}: unknown model_class {meta['model_class']!r}; this "
                              f"sparsemlp reads {', '.join(MODEL_CLASSES)} checkpoints.")
    if model_class is not None and meta["model_class"] != model_class:
        raise CheckpointError(
            f"{path} holds a {meta['model_class']!r}, not a {model_class} checkpoint.")
    checkpoint.check_meta(meta, where, config=dict, epoch=int, step=int, streams=dict,
                          history=list, **(meta_keys or {}))
    try:
        cfg = TrainConfig.from_dict(meta["config"], source=where).resolve()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{where} has an invalid config: {exc}") from None
    if backend is not None:
        cfg = dataclasses.replace(cfg, backend=backend)
    return path, cfg, weights, arrays, meta


def load_run(path, *, checkpoint="final", backend=None):
    """Read a trained model and its run's configuration, label map and scaling back.

    Parameters
    ----------
    path : str or path-like
        A run directory, a checkpoint directory (``RUN/checkpoints/epoch-NNNN``) or
        ``RUN/final``.
    checkpoint : str, default="final"
        For a run directory, which checkpoint (see :func:`find_checkpoint`).
    backend : str, optional
        Kernel backend of the model (default: the run's).

    Returns
    -------
    LoadedRun
        The model and what the run stored with it.

    Raises
    ------
    CheckpointError
        If nothing suitable exists, or the checkpoint is corrupted or incompatible.
    """
    ck = find_checkpoint(os.fspath(path), checkpoint)
    ck, cfg, weights, arrays, meta = read_checkpoint(ck, backend=backend)
    try:
        model = model_from_state(cfg, meta["model_class"], weights, arrays,
                                 _kernels.get(cfg.backend))
    except KeyError as exc:
        raise CheckpointError(f"{ck} lacks {exc.args[0]!r} in state.npz: the checkpoint is "
                              "incomplete or was not written by this model.") from None
    return LoadedRun(model=model, config=cfg, path=ck, epoch=meta["epoch"], meta=meta,
                     arrays=arrays, preprocessing=Preprocessing.from_state_dict(arrays))


def load_model(path, *, checkpoint="final", backend=None):
    """A trained SparseMLP or SparseRBM from a run, checkpoint or ``final/`` directory.

    Parameters
    ----------
    path : str or path-like
        A run directory (its ``final/`` checkpoint, else its newest), a checkpoint
        directory or ``RUN/final``.
    checkpoint : str, default="final"
        For a run directory: ``"final"``, ``"latest"`` or a name under ``checkpoints/``.
    backend : str, optional
        Kernel backend (default: the run's).

    Returns
    -------
    SparseMLP or SparseRBM
        The model, ready for ``predict_raw`` / ``forward`` or ``hidden_probs``.

    Raises
    ------
    CheckpointError
        If nothing suitable exists, or the checkpoint is corrupted or incompatible.

    Examples
    --------
    >>> import sparsemlp
    >>> model = sparsemlp.load_model("runs/digits")          # doctest: +SKIP
    >>> probs = model.predict_raw(X)                           # doctest: +SKIP
    """
    return load_run(path, checkpoint=checkpoint, backend=backend).model
