"""Checkpoints: save/load run state atomically (save_npz per layer + state.npz + meta.json)."""

import hashlib
import json
import os
import shutil

import numpy as np
import scipy.sparse as sp

from ._validation import check_csr
from ._version import __version__

__all__ = ["FORMAT_VERSION", "CheckpointError", "save", "load", "read_latest", "write_latest",
           "topology_digest"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted, foreign or incompatible."""


def _sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def topology_digest(W):
    """SHA-1 of a CSR pattern (indptr and indices), to compare topologies cheaply.

    Parameters
    ----------
    W : scipy.sparse.csr_array
        Matrix.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha1()
    _update_int64(h, W.indptr)
    _update_int64(h, W.indices)
    return h.hexdigest()


def _update_int64(h, a, chunk=1 << 20):
    """Feed ``a`` to ``h`` as little-endian-native int64 bytes, ``chunk`` entries at a time.

    Same digest as hashing ``a.astype(np.int64).tobytes()`` at once, without its two
    full-size copies (16 bytes per connection of the layer at once).
    """
    a = np.asarray(a)
    buf = np.empty(min(chunk, a.shape[0]), np.int64)
    for s in range(0, a.shape[0], chunk):
        part = a[s:s + chunk]
        b = buf[:part.shape[0]]
        b[...] = part
        h.update(memoryview(b).cast("B"))


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path, writer):
    with open(path, "wb") as fh:
        writer(fh)
        fh.flush()
        os.fsync(fh.fileno())


def save(path, *, weights, arrays, meta):
    """Write a checkpoint directory atomically.

    The files go to ``<path>.tmp-<pid>/``, are fsynced, and the directory is renamed to
    ``path`` (an existing ``path`` is replaced): a crash leaves the old or the new
    checkpoint, never half of one.

    Parameters
    ----------
    path : str or path-like
        Checkpoint directory to create.
    weights : list of scipy.sparse.csr_array
        One matrix per layer, written as ``layer_<i>.npz`` with
        ``scipy.sparse.save_npz(compressed=False)`` (readable with plain SciPy).
    arrays : dict of str to ndarray or scalar
        Biases, optimizer state and counters, written to ``state.npz``.
    meta : dict
        JSON-serialisable metadata (config, epoch, RNG state, ...); ``format_version``,
        ``sparsemlp_version``, digests and shapes are added.

    Returns
    -------
    str
        The final path.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    files = {}
    for i, W in enumerate(weights):
        name = f"layer_{i}.npz"
        _write_file(os.path.join(tmp, name), lambda fh, W=W: sp.save_npz(fh, W, compressed=False))
        files[name] = _sha256(os.path.join(tmp, name))
    _write_file(os.path.join(tmp, "state.npz"),
                lambda fh: np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()}))
    files["state.npz"] = _sha256(os.path.join(tmp, "state.npz"))
    meta = dict(meta)
    meta.update(
        format_version=FORMAT_VERSION,
        sparsemlp_version=__version__,
        n_layers=len(weights),
        shapes=[list(W.shape) for W in weights],
        nnz=[int(W.nnz) for W in weights],
        topology_digests=[topology_digest(W) for W in weights],
        files=files,
    )
    _write_file(os.path.join(tmp, "meta.json"),
                lambda fh: fh.write(json.dumps(meta, indent=1, sort_keys=True).encode()))
    _fsync_dir(tmp)
    old = None
    if os.path.exists(path):
        old = f"{path}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load(path):
    """Read and verify a checkpoint directory written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        Checkpoint directory.

    Returns
    -------
    weights : list of scipy.sparse.csr_array
        Canonical CSR weights (index dtypes preserved).
    arrays : dict of str to ndarray
        Contents of ``state.npz``.
    meta : dict
        Contents of ``meta.json``.

    Raises
    ------
    CheckpointError
        If files are missing, truncated or corrupted (digest mismatch), the format
        version is unknown, or the contents are inconsistent.
    """
    path = os.fspath(path)
    mpath = os.path.join(path, "meta.json")
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} does not exist or is not a directory.")
    try:
        with open(mpath) as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise CheckpointError(
            f"{mpath} is missing: {path} is not a sparsemlp checkpoint (or was cut short)."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{mpath} is corrupted ({exc}).") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise CheckpointError(f"{mpath} is not sparsemlp checkpoint metadata (no format_version).")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {meta['format_version']} (written by sparsemlp "
            f"{meta.get('sparsemlp_version', '?')}); this sparsemlp {__version__} reads format "
            f"{FORMAT_VERSION}. Use a matching sparsemlp version."
        )
    for name, digest in meta.get("files", {}).items():
        fp = os.path.join(path, name)
        if not os.path.exists(fp):
            raise CheckpointError(f"{fp} is missing from the checkpoint.")
        if _sha256(fp) != digest:
            raise CheckpointError(
                f"{fp} is corrupted or truncated (SHA-256 mismatch with meta.json). "
                "Resume from an earlier checkpoint."
            )
    weights = []
    for i in range(int(meta["n_layers"])):
        fp = os.path.join(path, f"layer_{i}.npz")
        try:
            with np.load(fp, allow_pickle=False) as z:
                data, indices, indptr = z["data"], z["indices"], z["indptr"]
                shape = tuple(int(s) for s in z["shape"])
                fmt = z["format"].item()
        except Exception as exc:  # noqa: BLE001 - any read failure is a corrupted file
            raise CheckpointError(f"{fp} cannot be read: {exc}") from None
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        if fmt != "csr" or list(shape) != meta["shapes"][i]:
            raise CheckpointError(f"{fp} holds a {fmt} matrix of shape {shape}; expected csr "
                                  f"{tuple(meta['shapes'][i])}.")
        W = sp.csr_array((data, indices, indptr), shape=shape)
        W.indices, W.indptr = indices, indptr  # keep int64 indices if saved so
        try:
            check_csr(W, f"layer_{i}")
        except ValueError as exc:
            raise CheckpointError(f"{fp}: {exc}") from None
        if topology_digest(W) != meta["topology_digests"][i]:
            raise CheckpointError(f"{fp}: topology digest mismatch.")
        weights.append(W)
    try:
        with np.load(os.path.join(path, "state.npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}/state.npz cannot be read: {exc}") from None
    return weights, arrays, meta


def write_latest(run_dir, target):
    """Atomically point ``run_dir/latest`` at checkpoint directory ``target``.

    Parameters
    ----------
    run_dir : str or path-like
        Run directory.
    target : str
        Path of the checkpoint relative to ``run_dir``.
    """
    p = os.path.join(run_dir, "latest")
    tmp = f"{p}.tmp-{os.getpid()}"
    _write_file(tmp, lambda fh: fh.write((target + "\n").encode()))
    os.replace(tmp, p)
    _fsync_dir(run_dir)


def read_latest(run_dir):
    """Path of the newest complete checkpoint of a run, or None.

    Parameters
    ----------
    run_dir : str or path-like
        Run directory.

    Returns
    -------
    str or None
        Absolute path of the checkpoint directory named by ``latest``.
    """
    p = os.path.join(run_dir, "latest")
    if not os.path.exists(p):
        return None
    with open(p) as fh:
        target = fh.read().strip()
    return os.path.join(run_dir, target) if target else None
