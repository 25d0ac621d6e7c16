"""Checkpoints: save/load run state atomically (save_npz per layer + state.npz + meta.json)."""

import hashlib
import json
import os
import shutil

import numpy as np
import scipy.sparse as sp

from .._validation import check_csr
from .._version import __version__

__all__ = ["FORMAT_VERSION", "READ_VERSIONS", "CheckpointError", "save", "load", "read_meta",
           "check_meta", "read_latest", "write_latest", "topology_digest"]

#: Format written: 2 adds ``meta_sha256``, the SHA-256 of meta.json's own content.
FORMAT_VERSION = 2
#: Formats read. Format 1 (sparsemlp up to commit 62aa30d) has no ``meta_sha256``: its
#: layer and state files are verified, its meta.json only for presence and types of keys.
READ_VERSIONS = (1, 2)


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


def _meta_sha256(meta):
    """SHA-256 of a meta dict's canonical JSON (sorted keys, no spaces): the same after a reload."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
    ``path``; an existing ``path`` is first renamed to ``<path>.old-<pid>`` and removed
    after. A crash leaves the old or the new checkpoint, never half of one (a crash
    between the two renames leaves the old one as ``.old-<pid>``, which the next resume
    of the run puts back).

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
        ``sparsemlp_version``, shapes, the files' SHA-256 digests and ``meta_sha256``
        (the digest of all the rest) are added.

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
    try:
        _write_checkpoint(tmp, weights, arrays, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = f"{path}.old-{os.getpid()}"
        if os.path.exists(old):
            shutil.rmtree(old)
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not os.path.exists(path):
            os.replace(old, path)
        raise
    _fsync_dir(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _write_checkpoint(tmp, weights, arrays, meta):
    files = {}
    for i, W in enumerate(weights):
        name = f"layer_{i}.npz"
        _write_file(os.path.join(tmp, name), lambda fh, W=W: sp.save_npz(fh, W, compressed=False))
        files[name] = _sha256(os.path.join(tmp, name))
    _write_file(os.path.join(tmp, "state.npz"),
                lambda fh: np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()}))
    files["state.npz"] = _sha256(os.path.join(tmp, "state.npz"))
    meta = dict(meta)
    meta.pop("meta_sha256", None)
    meta.update(
        format_version=FORMAT_VERSION,
        sparsemlp_version=__version__,
        n_layers=len(weights),
        shapes=[list(W.shape) for W in weights],
        nnz=[int(W.nnz) for W in weights],
        topology_digests=[topology_digest(W) for W in weights],
        files=files,
    )
    meta["meta_sha256"] = _meta_sha256(meta)
    _write_file(os.path.join(tmp, "meta.json"),
                lambda fh: fh.write(json.dumps(meta, indent=1, sort_keys=True).encode()))
    _fsync_dir(tmp)


def check_meta(meta, where, **types):
    """Check that ``meta`` has each key of ``types`` with a value of that type.

    Parameters
    ----------
    meta : dict
        Checkpoint metadata.
    where : str
        The file, for messages.
    **types : type or tuple of type
        Key to the accepted type(s) of its value (``bool`` is not an ``int`` here).

    Raises
    ------
    CheckpointError
        Naming the first missing key or the first value of the wrong type.
    """
    for key, typ in types.items():
        if key not in meta:
            raise CheckpointError(f"{where} lacks the key {key!r}: the checkpoint is incomplete "
                                  "or was not written by sparsemlp. Resume from another "
                                  "checkpoint.")
        v = meta[key]
        typ = typ if isinstance(typ, tuple) else (typ,)
        if not isinstance(v, typ) or (isinstance(v, bool) and bool not in typ):
            raise CheckpointError(f"{where} has an invalid {key!r} ({v!r:.60}); expected "
                                  f"{' or '.join(t.__name__ for t in typ)}.")


def read_meta(path):
    """Read and verify the ``meta.json`` of a checkpoint directory (not its other files).

    Parameters
    ----------
    path : str or path-like
        Checkpoint directory.

    Returns
    -------
    dict
        The metadata, without ``meta_sha256``.

    Raises
    ------
    CheckpointError
        If the file is missing or corrupted, its format unknown, its content changed
        since it was written (format 2: SHA-256 mismatch) or a key it needs is missing.
    """
    path = os.fspath(path)
    mpath = os.path.join(path, "meta.json")
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} does not exist or is not a directory.")
    try:
        with open(mpath, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise CheckpointError(
            f"{mpath} is missing: {path} is not a sparsemlp checkpoint (or was cut short)."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{mpath} is corrupted ({exc}).") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise CheckpointError(f"{mpath} is not sparsemlp checkpoint metadata (no format_version).")
    if meta["format_version"] not in READ_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format {meta['format_version']} (written by sparsemlp "
            f"{meta.get('sparsemlp_version', '?')}); this sparsemlp {__version__} reads formats "
            f"{', '.join(map(str, READ_VERSIONS))}. Use a matching sparsemlp version."
        )
    if meta["format_version"] >= 2:
        check_meta(meta, mpath, meta_sha256=str)
        digest = meta.pop("meta_sha256")
        if digest != _meta_sha256(meta):
            raise CheckpointError(
                f"{mpath} was modified or corrupted after it was written (SHA-256 mismatch of "
                "its content). Resume from an earlier checkpoint.")
    check_meta(meta, mpath, n_layers=int, shapes=list, topology_digests=list, files=dict)
    n = meta["n_layers"]
    expected = {f"layer_{i}.npz" for i in range(n)} | {"state.npz"}
    if set(meta["files"]) != expected or len(meta["shapes"]) != n \
            or len(meta["topology_digests"]) != n:
        raise CheckpointError(f"{mpath} does not describe {n} layer files and state.npz "
                              "consistently; the checkpoint is not usable.")
    return meta


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
        Contents of ``meta.json`` (verified by :func:`read_meta`).

    Raises
    ------
    CheckpointError
        If files are missing, truncated or corrupted (digest mismatch), meta.json was
        changed, the format version is unknown, or the contents are inconsistent.
    """
    path = os.fspath(path)
    meta = read_meta(path)
    for name, digest in meta["files"].items():
        fp = os.path.join(path, name)
        if not os.path.exists(fp):
            raise CheckpointError(f"{fp} is missing from the checkpoint.")
        if _sha256(fp) != digest:
            raise CheckpointError(
                f"{fp} is corrupted or truncated (SHA-256 mismatch with meta.json). "
                "Resume from an earlier checkpoint."
            )
    weights = []
    for i in range(meta["n_layers"]):
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
    try:
        _write_file(tmp, lambda fh: fh.write((target + "\n").encode()))
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
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
    with open(p, encoding="utf-8", errors="replace") as fh:
        target = fh.read().strip()
    return os.path.join(run_dir, target) if target else None
