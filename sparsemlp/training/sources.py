"""Trained MLPs from anywhere as a SparseMLP: runs, models, estimators, scikit-learn, .npy, .npz."""

import dataclasses
import json
import os
import pickle
import re

import numpy as np
import scipy.sparse as sp

from .. import _kernels
from ..nn.functions import ACTIVATIONS
from ..nn.mlp import SparseMLP
from .checkpoint import CheckpointError
from .loading import load_run

__all__ = ["Source", "SourceError", "load_source", "dense_to_csr", "model_from_dense",
           "ACTIVATION_ALIASES"]

#: Names of other libraries' activations -> the package's (``log_softmax`` has the argmax
#: and the log-probabilities of ``softmax``; the model outputs the probabilities).
ACTIVATION_ALIASES = {"logistic": "sigmoid", "log_softmax": "softmax", "linear": "identity",
                      "none": "identity"}
_PICKLES = (".pkl", ".pickle", ".joblib")


class SourceError(CheckpointError):
    """A model source is missing, unreadable, of an unknown kind or inconsistent."""


@dataclasses.dataclass
class Source:
    """A trained MLP read from a source, with what is known about it.

    Attributes
    ----------
    model : SparseMLP
        The model (canonical CSR layers).
    kind : str
        ``"run"``, ``"model"``, ``"estimator"`` (SparseMLPClassifier), ``"sklearn"``
        (MLPClassifier / MLPRegressor), ``"npy"`` (a folder of ``W_<i>.npy``) or ``"npz"``.
    name : str
        Where it came from, for messages.
    config : TrainConfig or None
        The run's (or estimator's) configuration.
    preprocessing : Preprocessing or None
        The run's label map and feature scaling.
    classes : ndarray or None
        The labels of the outputs, when known.
    epoch : int
        Epochs the model was trained (0 when unknown).
    history : list of dict
        The run's per-epoch metrics (empty when unknown).
    regressor : bool
        An ``MLPRegressor`` (identity output, no classes).
    """

    model: object
    kind: str
    name: str
    config: object = None
    preprocessing: object = None
    classes: object = None
    epoch: int = 0
    history: list = dataclasses.field(default_factory=list)
    regressor: bool = False


def dense_to_csr(W, *, dtype=np.float64, where="layer"):
    """A dense ``(n_in, n_out)`` weight matrix as canonical CSR (exact zeros are dropped).

    Parameters
    ----------
    W : array-like of shape (n_in, n_out)
        Weights.
    dtype : dtype, default=float64
        Value dtype.
    where : str, default="layer"
        Name for messages.

    Returns
    -------
    scipy.sparse.csr_array
        Sorted unique indices (int32 when they fit); a weight of exactly 0 is not stored.

    Raises
    ------
    SourceError
        If ``W`` is not a finite 2-D numeric array.
    """
    try:
        A = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{where} is not a numeric array ({exc}).") from None
    if A.ndim != 2:
        raise SourceError(f"{where} has shape {A.shape}; a weight matrix is 2-D.")
    if not np.isfinite(A).all():
        raise SourceError(f"{where} holds NaN or infinite weights.")
    C = sp.csr_array(A.astype(dtype))
    C.sum_duplicates()
    C.sort_indices()
    return C


def _act_name(name, where):
    n = ACTIVATION_ALIASES.get(str(name).lower(), str(name).lower())
    if n not in ACTIVATIONS:
        known = sorted(set(ACTIVATIONS) | set(ACTIVATION_ALIASES))
        raise SourceError(f"{where}: unknown activation {name!r}. Use one of {', '.join(known)}.")
    if n == "srelu":
        raise SourceError(f"{where}: activation 'srelu' has learned parameters per unit, which "
                          "only a sparsemlp run stores. Pass the run directory instead.")
    return n


def _activation_list(activations, n_layers, where):
    if activations is None:
        raise SourceError(f"{where} does not say its activations. Pass them, one per layer or "
                          "'hidden output' (e.g. --activations relu softmax).")
    if isinstance(activations, str):
        activations = [a for a in re.split(r"[,\s]+", activations) if a]
    acts = [_act_name(a, where) for a in activations]
    if len(acts) == 2 and n_layers != 2:
        acts = [acts[0]] * (n_layers - 1) + [acts[1]]
    if len(acts) != n_layers:
        raise SourceError(f"{where} has {n_layers} layers but {len(acts)} activations were given "
                          f"({', '.join(acts)}). Pass one per layer or two (hidden, output).")
    return acts


def model_from_dense(weights, biases, activations, *, alpha=0.01, dtype=np.float64,
                     kernels="auto", where="model"):
    """A SparseMLP from dense ``(n_in, n_out)`` weights, biases and activation names.

    Parameters
    ----------
    weights : sequence of array-like of shape (n_in, n_out)
        Weights in the orientation of ``x @ W`` (scikit-learn's ``coefs_``).
    biases : sequence of array-like of shape (n_out,)
        Biases.
    activations : sequence of str or str
        One name per layer, or ``(hidden, output)``; scikit-learn's and PyTorch's names
        (``logistic``, ``log_softmax``, ...) are accepted.
    alpha : float, default=0.01
        Slope of ``leaky_relu`` (PyTorch's default).
    dtype : dtype, default=float64
        Value dtype of the model.
    kernels : str or KernelSet, default="auto"
        Kernel backend.
    where : str, default="model"
        Name for messages.

    Returns
    -------
    SparseMLP
        The model; a weight of exactly 0 is not a connection.

    Raises
    ------
    SourceError
        If shapes do not chain, a bias has the wrong length or an activation is unknown.
    """
    n = len(weights)
    if n == 0 or len(biases) != n:
        raise SourceError(f"{where}: {n} weight matrices and {len(biases)} biases; give one bias "
                          "per layer (and at least one layer).")
    Ws = [dense_to_csr(W, dtype=dtype, where=f"{where} layer {i}") for i, W in enumerate(weights)]
    bs = []
    for i, (W, b) in enumerate(zip(Ws, biases)):
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if b.shape != (W.shape[1],) or not np.isfinite(b).all():
            raise SourceError(f"{where} layer {i}: the bias has {b.shape[0]} values (finite "
                              f"ones needed) for {W.shape[1]} outputs.")
        bs.append(b.astype(dtype))
    for i in range(n - 1):
        if Ws[i].shape[1] != Ws[i + 1].shape[0]:
            raise SourceError(f"{where}: layer {i} has {Ws[i].shape[1]} outputs but layer {i + 1} "
                              f"takes {Ws[i + 1].shape[0]} inputs.")
    acts = _activation_list(activations, n, where)
    if any(a != acts[0] for a in acts[:-1]):  # SparseMLP takes one hidden activation
        raise SourceError(f"{where}: hidden layers with different activations ({acts[:-1]}) are "
                          "not supported; sparsemlp models use one hidden activation.")
    return SparseMLP.from_weights(Ws, biases=bs, activation=acts[0], output_activation=acts[-1],
                                  alpha=alpha, kernels=_kernels.resolve(kernels))


def _oriented(arrays, layout, where):
    """Weights of the file's layout as ``(n_in, n_out)``."""
    if layout not in ("out_in", "in_out"):
        raise SourceError(f"layout must be 'out_in' (W[i] is n_out x n_in, as PyTorch) or "
                          f"'in_out' (n_in x n_out, as scikit-learn's coefs_). Got {layout!r}.")
    Ws = [np.asarray(W) for W in arrays]
    out = [W.T if layout == "out_in" else W for W in Ws]
    ok = all(a.ndim == 2 for a in out) and all(
        a.shape[1] == b.shape[0] for a, b in zip(out[:-1], out[1:]))
    if not ok:
        other = [W if layout == "out_in" else W.T for W in Ws]
        hint = (" They chain the other way round: pass layout='in_out' (--layout in-out)."
                if all(a.ndim == 2 for a in other) and all(
                    a.shape[1] == b.shape[0] for a, b in zip(other[:-1], other[1:]))
                else "")
        raise SourceError(f"{where}: the weight shapes {[W.shape for W in Ws]} do not chain as "
                          f"{layout.replace('_', ' x ')} matrices.{hint}")
    return out


def _read_activations_file(folder):
    for name in ("activations.json", "activations.txt"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            with open(p) as fh:
                text = fh.read()
            return json.loads(text) if name.endswith(".json") else text
    return None


def _from_npy_folder(path, activations, layout, dtype, kernels):
    files = os.listdir(path)
    idx = sorted(int(m.group(1)) for f in files if (m := re.fullmatch(r"W_?(\d+)\.npy", f)))
    if not idx:
        raise SourceError(f"{path} holds no W_<i>.npy files (nor a sparsemlp run).")
    if idx != list(range(len(idx))):
        raise SourceError(f"{path}: the layers are W_{idx}; expected W_0 ... W_{len(idx) - 1}.")

    def load(stem, i):
        for f in (f"{stem}_{i}.npy", f"{stem}{i}.npy"):
            if f in files:
                try:
                    return np.load(os.path.join(path, f), allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise SourceError(f"{os.path.join(path, f)} cannot be read: {exc}") from None
        raise SourceError(f"{path} lacks {stem}_{i}.npy.")

    Ws = _oriented([load("W", i) for i in idx], layout, path)
    bs = [load("b", i) for i in idx]
    acts = activations if activations is not None else _read_activations_file(path)
    return model_from_dense(Ws, bs, acts, dtype=dtype, kernels=kernels, where=path)


def _from_npz(path, activations, layout, dtype, kernels):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path} cannot be read as .npz ({exc}).") from None
    named = {}
    for k in arrays:
        m = re.fullmatch(r"([Wb])_?(\d+)", k)
        if m:
            named[m.group(1), int(m.group(2))] = arrays[k]
    if any(kind == "W" for kind, _ in named):
        n = 1 + max(i for kind, i in named if kind == "W")
        missing = [f"{c}_{i}" for i in range(n) for c in "Wb" if (c, i) not in named]
        if missing:
            raise SourceError(f"{path} lacks {', '.join(missing)}.")
        Ws, bs = [named["W", i] for i in range(n)], [named["b", i] for i in range(n)]
    else:  # a PyTorch state_dict saved with numpy: '<name>.weight', '<name>.bias' in order
        wk = [k for k in arrays if k.endswith("weight")]
        if not wk:
            raise SourceError(f"{path} holds {sorted(arrays)}; expected W_0, b_0, W_1, ... or "
                              "'<layer>.weight' / '<layer>.bias' arrays.")
        bk = [k[:-len("weight")] + "bias" for k in wk]
        if any(k not in arrays for k in bk):
            raise SourceError(f"{path}: every '<layer>.weight' needs its '<layer>.bias'.")
        Ws, bs = [arrays[k] for k in wk], [arrays[k] for k in bk]
    if activations is None and "activations" in arrays:
        activations = [str(a) for a in np.atleast_1d(arrays["activations"])]
    return model_from_dense(_oriented(Ws, layout, path), bs, activations, dtype=dtype,
                            kernels=kernels, where=path)


def _from_object(obj, name, dtype, kernels):
    if isinstance(obj, SparseMLP):
        return Source(obj, "model", name)
    if hasattr(obj, "model_") and isinstance(obj.model_, SparseMLP):
        cfg = getattr(obj, "config_", None)
        return Source(obj.model_, "estimator", name, config=cfg,
                      classes=getattr(obj, "classes_", None),
                      epoch=int(getattr(obj, "n_iter_", 0)),
                      history=list(getattr(obj, "history_", [])))
    if all(hasattr(obj, a) for a in ("coefs_", "intercepts_", "out_activation_")):
        hidden = getattr(obj, "activation", "relu")
        n = len(obj.coefs_)
        acts = [hidden] * (n - 1) + [obj.out_activation_]
        model = model_from_dense(obj.coefs_, obj.intercepts_, acts, dtype=dtype,
                                 kernels=kernels, where=name)
        classes = getattr(obj, "classes_", None)
        return Source(model, "sklearn", name, classes=classes,
                      epoch=int(getattr(obj, "n_iter_", 0)),
                      regressor=obj.out_activation_ == "identity" and classes is None)
    raise SourceError(f"{name}: a {type(obj).__name__} is not a source sparsemlp reads. Pass a "
                      "SparseMLP, a fitted SparseMLPClassifier, a fitted scikit-learn "
                      "MLPClassifier or MLPRegressor, or a path (run directory, .npy folder, "
                      ".npz, pickled estimator).")


def load_source(source, *, activations=None, layout="out_in", dtype=None, backend="auto"):
    """Read a trained MLP from any supported source.

    Sources: a sparsemlp run, checkpoint or ``final/`` directory (:func:`load_run`); a
    :class:`SparseMLP`; a fitted :class:`~sparsemlp.SparseMLPClassifier`; a fitted
    scikit-learn ``MLPClassifier`` / ``MLPRegressor`` (``coefs_``, ``intercepts_``,
    ``activation``, ``out_activation_``), also pickled (``.pkl``, ``.pickle``, ``.joblib``:
    unpickling runs code, open only files you trust); a folder of ``W_<i>.npy`` and
    ``b_<i>.npy`` (optionally ``activations.json`` or ``activations.txt``); an ``.npz`` of
    ``W_<i>``/``b_<i>`` arrays, or of PyTorch ``<layer>.weight``/``<layer>.bias`` arrays in
    file order (optionally an ``activations`` array). Dense weights become canonical CSR
    layers: an exact zero is not stored (it is not a connection).

    Parameters
    ----------
    source : str, path-like or object
        The source.
    activations : sequence of str or str, optional
        For ``.npy`` folders and ``.npz`` files: one name per layer or ``(hidden,
        output)``, e.g. ``["relu", "softmax"]``.
    layout : {"out_in", "in_out"}, default="out_in"
        Orientation of the matrices of ``.npy`` folders and ``.npz`` files: ``(n_out,
        n_in)`` (PyTorch, the seed project's ``W_<i>.npy``) or ``(n_in, n_out)``
        (scikit-learn's ``coefs_``). Converted to the package's ``(n_in, n_out)``.
    dtype : {None, "float32", "float64"}, default=None
        Value dtype of imported dense layers (default float64: the source's predictions are
        reproduced to rounding); runs and SparseMLP keep theirs.
    backend : str, default="auto"
        Kernel backend of imported models (runs: their own unless given).

    Returns
    -------
    Source
        The model and what is known about it.

    Raises
    ------
    SourceError
        For a missing path, an unknown kind of source, unreadable or inconsistent files.
    CheckpointError
        For a corrupted run.
    """
    dtype = np.dtype("float64" if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        raise SourceError(f"dtype must be float32 or float64. Got {dtype}.")
    kernels = _kernels.resolve(backend)
    if not isinstance(source, (str, os.PathLike)):
        return _from_object(source, type(source).__name__, dtype, kernels)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise SourceError(f"{path} does not exist. Pass a run directory, a folder of W_<i>.npy "
                          "files, an .npz file or a pickled scikit-learn MLP.")
    if os.path.isdir(path):
        run_like = any(os.path.exists(os.path.join(path, f))
                       for f in ("meta.json", "final", "latest", "checkpoints"))
        if run_like:
            run = load_run(path, backend=None if backend == "auto" else backend)
            if not isinstance(run.model, SparseMLP):
                raise SourceError(f"{path} holds a {type(run.model).__name__}; only MLPs "
                                  "(SparseMLP) can be read as a source here.")
            prep = run.preprocessing
            return Source(run.model, "run", path, config=run.config, preprocessing=prep,
                          classes=None if prep is None else prep.classes, epoch=run.epoch,
                          history=list(run.meta.get("history", [])))
        model = _from_npy_folder(path, activations, layout, dtype, kernels)
        return Source(model, "npy", path)
    if path.endswith(".npz"):
        return Source(_from_npz(path, activations, layout, dtype, kernels), "npz", path)
    if path.endswith(_PICKLES):
        try:
            try:
                import joblib
            except ImportError:  # pragma: no cover - joblib comes with scikit-learn
                with open(path, "rb") as fh:
                    obj = pickle.load(fh)
            else:
                obj = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
            raise SourceError(f"{path} cannot be unpickled ({type(exc).__name__}: {exc}).") \
                from None
        src = _from_object(obj, path, dtype, kernels)
        return dataclasses.replace(src, name=path)
    raise SourceError(f"{path}: unknown kind of source. Pass a run directory, a folder of "
                      "W_<i>.npy files, an .npz file or a pickled MLP (.pkl, .joblib).")
