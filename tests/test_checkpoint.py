"""training/checkpoint.py on its own: files, digests and every refusal against plain SciPy,
NumPy, hashlib and json (the trainers' use of it is in test_checkpoint_integrity.py)."""

import hashlib
import json
import os
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp._version import __version__
from sparsemlp.training import checkpoint, layerinfo
from sparsemlp.training.checkpoint import CheckpointError


def _layers(index_dtype=np.int32):
    a = sp.csr_array(np.array([[0, 1.5, 0, -2], [0, 0, 0, 0], [3, 0, 0.25, 0]], np.float32))
    b = sp.csr_array(np.array([[1.0, 0], [0, 2], [0, 0], [4, 5]]))
    for W in (a, b):
        W.indices, W.indptr = W.indices.astype(index_dtype), W.indptr.astype(index_dtype)
    return [a, b]


def _with_empty_edges(index_dtype=np.int32):
    """Layers whose last column (and last row) hold nothing: their shape is not in the indices."""
    c = sp.csr_array((np.array([1.0, 2.0]), np.array([0, 2], index_dtype),
                      np.array([0, 1, 2, 2], index_dtype)), shape=(3, 6))
    e = sp.csr_array((2, 3), dtype=np.float32)
    e.indices, e.indptr = e.indices.astype(index_dtype), e.indptr.astype(index_dtype)
    return [*_layers(index_dtype), c, e]


ARRAYS = {"layers.0.bias": np.arange(4, dtype=np.float32), "optim.n_steps": 7,
          "names": np.array(["a", "bc"])}
META = {"epoch": 3, "config": {"lr": 0.5, "hidden": [4]}, "best_loss": float("nan")}


def _save(tmp_path, name="ck", **kw):
    return checkpoint.save(tmp_path / name, weights=kw.get("weights", _layers()),
                           arrays=kw.get("arrays", ARRAYS), meta=kw.get("meta", META))


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _resign(ck, edit):
    """Change meta.json and sign it again, as if it had been written so."""
    p = os.path.join(ck, "meta.json")
    meta = json.load(open(p))
    edit(meta)
    meta.pop("meta_sha256", None)
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    meta["meta_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    with open(p, "w") as fh:
        json.dump(meta, fh)


def _replace_file(ck, name, content):
    """Put other bytes in a checkpoint file and record their (correct) digest."""
    with open(os.path.join(ck, name), "wb") as fh:
        fh.write(content)
    _resign(ck, lambda m: m["files"].update({name: _sha(os.path.join(ck, name))}))


# -- digests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 5, 6, 7, 20])
def test_file_digest_is_sha256_whatever_the_chunk(tmp_path, size):
    p = tmp_path / "f"
    p.write_bytes(bytes(range(size)))
    want = hashlib.sha256(bytes(range(size))).hexdigest()
    assert checkpoint._sha256(p) == want
    assert checkpoint._sha256(p, chunk=3) == want


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_topology_digest_is_sha1_of_int64_indptr_then_indices(index_dtype, chunk, monkeypatch):
    W = _layers(index_dtype)[0]
    want = hashlib.sha1(W.indptr.astype(np.int64).tobytes()
                        + W.indices.astype(np.int64).tobytes()).hexdigest()
    real = layerinfo._update_int64  # the digests live in training/layerinfo.py
    monkeypatch.setattr(layerinfo, "_update_int64", lambda h, a: real(h, a, chunk=chunk))
    assert checkpoint.topology_digest(W) == want
    h = hashlib.sha1()
    real(h, W.indices, chunk)
    assert h.hexdigest() == hashlib.sha1(W.indices.astype(np.int64).tobytes()).hexdigest()


def test_topology_digest_of_an_empty_layer():
    W = sp.csr_array((3, 5))
    want = hashlib.sha1(np.zeros(4, np.int64).tobytes()).hexdigest()
    assert checkpoint.topology_digest(W) == want
    assert checkpoint.topology_digest(W) != checkpoint.topology_digest(_layers()[0])


def test_meta_digest_is_canonical_json():
    meta = {"b": [1, 2.5], "a": {"y": None, "x": "é"}, "nan": float("nan")}
    text = '{"a":{"x":"\\u00e9","y":null},"b":[1,2.5],"nan":NaN}'
    assert checkpoint._meta_sha256(meta) == hashlib.sha256(text.encode()).hexdigest()


# -- save ---------------------------------------------------------------------------------------
def test_save_writes_files_plain_scipy_and_numpy_read(tmp_path):
    ck = _save(tmp_path / "a" / "b")  # missing parents are created
    assert ck == os.path.join(tmp_path / "a" / "b", "ck") and isinstance(ck, str)
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["ck"]  # no temporary left
    assert sorted(os.listdir(ck)) == ["layer_0.npz", "layer_1.npz", "meta.json", "state.npz"]
    for i, W in enumerate(_layers()):
        got = sp.load_npz(os.path.join(ck, f"layer_{i}.npz"))
        assert got.format == "csr" and got.dtype == W.dtype and got.shape == W.shape
        np.testing.assert_array_equal(got.toarray(), W.toarray())
        with zipfile.ZipFile(os.path.join(ck, f"layer_{i}.npz")) as z:  # compressed=False
            assert {info.compress_type for info in z.infolist()} == {zipfile.ZIP_STORED}
    with np.load(os.path.join(ck, "state.npz")) as z:
        assert sorted(z.files) == sorted(ARRAYS)
        for k, v in ARRAYS.items():
            np.testing.assert_array_equal(z[k], np.asarray(v))


def test_save_records_meta_with_digests(tmp_path):
    given = dict(META, meta_sha256="stale", files="stale")
    ck = _save(tmp_path, meta=given)
    assert given["meta_sha256"] == "stale" and "format_version" not in given  # not changed
    raw = json.load(open(os.path.join(ck, "meta.json")))
    digest = raw.pop("meta_sha256")
    assert digest == hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":"))
                                    .encode()).hexdigest()
    W = _layers()
    assert raw["format_version"] == 2  # CSR layers only: format 3 is for structured layers
    assert checkpoint.FORMAT_VERSION == 3
    assert raw["sparsemlp_version"] == __version__
    assert raw["n_layers"] == 2 and raw["shapes"] == [[3, 4], [4, 2]] and raw["nnz"] == [4, 4]
    assert raw["topology_digests"] == [checkpoint.topology_digest(w) for w in W]
    assert raw["files"] == {n: _sha(os.path.join(ck, n))
                            for n in ("layer_0.npz", "layer_1.npz", "state.npz")}
    assert raw["epoch"] == 3 and raw["config"] == META["config"] and np.isnan(raw["best_loss"])


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_round_trip(tmp_path, index_dtype):
    ck = _save(tmp_path, weights=_with_empty_edges(index_dtype))
    weights, arrays, meta = checkpoint.load(ck)
    for got, want in zip(weights, _with_empty_edges(index_dtype), strict=True):
        assert isinstance(got, sp.csr_array) and got.shape == want.shape
        assert got.indices.dtype == got.indptr.dtype == index_dtype
        assert got.dtype == want.dtype
        for k in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(got, k), getattr(want, k))
    assert sorted(arrays) == sorted(ARRAYS)
    for k, v in ARRAYS.items():
        np.testing.assert_array_equal(arrays[k], np.asarray(v))
    assert "meta_sha256" not in meta and meta["epoch"] == 3 and np.isnan(meta["best_loss"])


def test_save_over_a_checkpoint_and_stale_leftovers(tmp_path):
    pid = os.getpid()
    ck = _save(tmp_path, weights=[_layers()[1]])
    os.makedirs(f"{ck}.tmp-{pid}")  # leftovers of an earlier crash of this same pid
    open(f"{ck}.tmp-{pid}/junk", "w").close()
    os.makedirs(f"{ck}.old-{pid}")
    open(f"{ck}.old-{pid}/junk", "w").close()
    assert _save(tmp_path) == ck
    assert sorted(os.listdir(tmp_path)) == ["ck"]
    assert sorted(os.listdir(ck)) == ["layer_0.npz", "layer_1.npz", "meta.json", "state.npz"]
    weights, _, meta = checkpoint.load(ck)
    assert meta["n_layers"] == 2 and weights[0].shape == (3, 4)


def test_failed_write_removes_the_temporary(tmp_path):
    with pytest.raises(TypeError):
        _save(tmp_path, meta={"x": object()})  # not JSON: fails after the npz files
    assert os.listdir(tmp_path) == []


def test_failed_rename_puts_the_old_checkpoint_back(tmp_path, monkeypatch):
    ck = _save(tmp_path, weights=[_layers()[1]])
    real = os.replace

    def replace(a, b):
        if ".tmp-" in os.fspath(a):
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        _save(tmp_path)
    monkeypatch.undo()
    assert checkpoint.load(ck)[2]["n_layers"] == 1


def test_first_save_whose_rename_fails_raises_that_error(tmp_path, monkeypatch):
    """No previous checkpoint: nothing is put back, the rename's own error is raised."""
    real = os.replace

    def replace(a, b):
        if ".tmp-" in os.fspath(a):
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError) as e:
        _save(tmp_path)
    assert e.value.errno == 28 and e.value.__context__ is None
    monkeypatch.undo()
    assert not os.path.exists(tmp_path / "ck")


def _rmdir_fails(monkeypatch):
    """Directories cannot be removed (a busy file on a network file system, say)."""
    def rmdir(*a, **k):
        raise PermissionError(13, "Device or resource busy")

    monkeypatch.setattr(os, "rmdir", rmdir)


def test_failed_clean_up_of_a_failed_save_keeps_the_first_error(tmp_path, monkeypatch):
    _rmdir_fails(monkeypatch)
    with pytest.raises(TypeError, match="not JSON serializable"):
        _save(tmp_path, meta={"x": object()})


def test_failed_removal_of_the_replaced_checkpoint_is_no_failure(tmp_path, monkeypatch):
    ck = _save(tmp_path, weights=[_layers()[1]])
    _rmdir_fails(monkeypatch)
    assert _save(tmp_path) == ck
    monkeypatch.undo()
    assert checkpoint.load(ck)[2]["n_layers"] == 2


# -- check_meta ---------------------------------------------------------------------------------
def test_check_meta_accepts_the_types_it_is_given():
    checkpoint.check_meta({"a": 1, "b": "s", "c": True, "d": 2.5, "e": None}, "f.json", a=int,
                          b=str, c=bool, d=(int, float), e=(type(None), int))
    checkpoint.check_meta({"a": True}, "f.json", a=(bool, int))
    checkpoint.check_meta({}, "f.json")


def test_check_meta_names_the_missing_key():
    with pytest.raises(CheckpointError) as e:
        checkpoint.check_meta({"a": 1}, "dir/meta.json", a=int, b=int, c=int)
    assert str(e.value) == ("dir/meta.json lacks the key 'b': the checkpoint is incomplete or "
                            "was not written by sparsemlp. Resume from another checkpoint.")


@pytest.mark.parametrize("value,types,expected", [
    ("3", int, "int"), (True, int, "int"), (False, (int, float), "int or float"),
    (1.5, int, "int"), (["x" * 100], dict, "dict"),
])
def test_check_meta_names_the_wrong_type(value, types, expected):
    with pytest.raises(CheckpointError) as e:
        checkpoint.check_meta({"k": 0, "v": value}, "m.json", k=int, v=types)
    assert str(e.value) == f"m.json has an invalid 'v' ({value!r:.60}); expected {expected}."


# -- read_meta ----------------------------------------------------------------------------------
def test_read_meta_returns_the_meta_without_its_digest(tmp_path):
    meta = checkpoint.read_meta(_save(tmp_path))
    assert "meta_sha256" not in meta and meta["n_layers"] == 2 and meta["config"]["lr"] == 0.5


def test_read_meta_of_no_directory(tmp_path):
    for p in (tmp_path / "absent", tmp_path / "file"):
        if p.name == "file":
            p.write_text("x")
        with pytest.raises(CheckpointError) as e:
            checkpoint.read_meta(p)
        assert str(e.value) == f"checkpoint {p} does not exist or is not a directory."


def test_read_meta_of_a_directory_without_meta(tmp_path):
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(tmp_path)
    mpath = os.path.join(tmp_path, "meta.json")
    assert str(e.value) == (f"{mpath} is missing: {tmp_path} is not a sparsemlp checkpoint "
                            "(or was cut short).")


@pytest.mark.parametrize("content", [b'{"format_version": 2', b"\xff\xfe{}"])
def test_read_meta_of_corrupted_json(tmp_path, content):
    (tmp_path / "meta.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"^.*meta\.json is corrupted \(.+\)\.$"):
        checkpoint.read_meta(tmp_path)


@pytest.mark.parametrize("doc", ["[1, 2]", '{"epoch": 1}', "3"])
def test_read_meta_of_foreign_json(tmp_path, doc):
    (tmp_path / "meta.json").write_text(doc)
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(tmp_path)
    assert str(e.value) == (f"{tmp_path / 'meta.json'} is not sparsemlp checkpoint metadata "
                            "(no format_version).")


@pytest.mark.parametrize("version,writer", [(4, {"sparsemlp_version": "9.0"}), (0, {})])
def test_read_meta_of_an_unknown_format(tmp_path, version, writer):
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": version, **writer}))
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(tmp_path)
    assert str(e.value) == (f"{tmp_path} has checkpoint format {version} (written by sparsemlp "
                            f"{writer.get('sparsemlp_version', '?')}); this sparsemlp "
                            f"{__version__} reads formats 1, 2, 3. Use a matching sparsemlp "
                            "version.")


def test_read_meta_refuses_a_format2_meta_without_digest(tmp_path):
    ck = _save(tmp_path)
    p = os.path.join(ck, "meta.json")
    meta = json.load(open(p))
    del meta["meta_sha256"]
    json.dump(meta, open(p, "w"))
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(ck)
    assert str(e.value).startswith(f"{p} lacks the key 'meta_sha256': ")


def test_read_meta_refuses_an_edited_meta(tmp_path):
    ck = _save(tmp_path)
    p = os.path.join(ck, "meta.json")
    meta = json.load(open(p))
    meta["epoch"] = 4
    json.dump(meta, open(p, "w"))
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(ck)
    assert str(e.value) == (f"{p} was modified or corrupted after it was written (SHA-256 "
                            "mismatch of its content). Resume from an earlier checkpoint.")


def test_read_meta_of_format1_checks_no_digest(tmp_path):
    ck = _save(tmp_path)
    p = os.path.join(ck, "meta.json")
    meta = json.load(open(p))
    del meta["meta_sha256"]
    meta["format_version"] = 1
    meta["epoch"] = 9  # format 1 has no digest of its own content to disagree
    json.dump(meta, open(p, "w"))
    assert checkpoint.read_meta(ck)["epoch"] == 9
    assert checkpoint.load(ck)[2]["epoch"] == 9


@pytest.mark.parametrize("edit", [
    lambda m: m.update(n_layers=3), lambda m: m.update(n_layers=1),
    lambda m: m["shapes"].pop(), lambda m: m["topology_digests"].append("x"),
    lambda m: m["files"].pop("state.npz"), lambda m: m["files"].update({"extra.npz": "x"}),
    lambda m: m["files"].update({"layer_2.npz": m["files"].pop("layer_1.npz")}),
], ids=["more-layers", "fewer-layers", "shapes", "digests", "no-state", "extra", "renamed"])
def test_read_meta_refuses_inconsistent_layer_counts(tmp_path, edit):
    ck = _save(tmp_path)
    _resign(ck, edit)
    n = json.load(open(os.path.join(ck, "meta.json")))["n_layers"]
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(ck)
    assert str(e.value) == (f"{os.path.join(ck, 'meta.json')} does not describe {n} layer "
                            "files and state.npz consistently; the checkpoint is not usable.")


@pytest.mark.parametrize("key,value", [("n_layers", "2"), ("n_layers", True), ("shapes", {}),
                                       ("topology_digests", "ab"), ("files", [])])
def test_read_meta_checks_the_types_of_its_keys(tmp_path, key, value):
    ck = _save(tmp_path)
    _resign(ck, lambda m: m.update({key: value}))
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_meta(ck)
    assert str(e.value).startswith(f"{os.path.join(ck, 'meta.json')} has an invalid '{key}' ")


# -- load ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["layer_1.npz", "state.npz"])
def test_load_names_a_missing_file(tmp_path, name):
    ck = _save(tmp_path)
    os.remove(os.path.join(ck, name))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    assert str(e.value) == f"{os.path.join(ck, name)} is missing from the checkpoint."


@pytest.mark.parametrize("name", ["layer_0.npz", "layer_1.npz", "state.npz"])
def test_load_names_a_changed_file(tmp_path, name):
    ck = _save(tmp_path)
    p = os.path.join(ck, name)
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 1
    open(p, "wb").write(bytes(data))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    assert str(e.value) == (f"{p} is corrupted or truncated (SHA-256 mismatch with meta.json). "
                            "Resume from an earlier checkpoint.")


def test_load_of_an_unreadable_layer_file(tmp_path):
    ck = _save(tmp_path)
    _replace_file(ck, "layer_1.npz", b"not a zip file")
    with pytest.raises(CheckpointError, match=r"layer_1\.npz cannot be read: "):
        checkpoint.load(ck)


def test_load_of_an_unreadable_state_file(tmp_path):
    ck = _save(tmp_path)
    _replace_file(ck, "state.npz", b"not a zip file")
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    assert str(e.value).startswith(f"{ck}/state.npz cannot be read: ")


def test_load_refuses_object_arrays(tmp_path):
    ck = _save(tmp_path)
    p = os.path.join(ck, "state.npz")
    np.savez(p, x=np.array([{"a": 1}], dtype=object))
    _resign(ck, lambda m: m["files"].update({"state.npz": _sha(p)}))
    with pytest.raises(CheckpointError, match="state.npz cannot be read: .*pickle"):
        checkpoint.load(ck)


def test_load_refuses_a_pickled_layer(tmp_path):
    """A layer file with an object array (which loading would unpickle) is refused."""
    ck = _save(tmp_path)
    W = _layers()[1]
    p = os.path.join(ck, "layer_1.npz")
    np.savez(p, data=W.data.astype(object), indices=W.indices, indptr=W.indptr,
             shape=np.array(W.shape), format=np.array(b"csr"))
    _resign(ck, lambda m: m["files"].update({"layer_1.npz": _sha(p)}))
    with pytest.raises(CheckpointError, match=r"layer_1\.npz cannot be read: .*allow_pickle"):
        checkpoint.load(ck)


def test_load_reads_a_layer_file_of_another_writer(tmp_path):
    """The same arrays written by np.savez with a str (not bytes) format load alike."""
    ck = _save(tmp_path)
    W = _layers()[1]
    p = os.path.join(ck, "layer_1.npz")
    np.savez(p, data=W.data, indices=W.indices, indptr=W.indptr, shape=np.array(W.shape),
             format=np.array("csr"))
    _resign(ck, lambda m: m["files"].update({"layer_1.npz": _sha(p)}))
    got = checkpoint.load(ck)[0][1]
    np.testing.assert_array_equal(got.toarray(), W.toarray())


def _npz_bytes(tmp_path, M):
    p = tmp_path / "other.npz"
    sp.save_npz(p, M, compressed=False)
    return p.read_bytes()


@pytest.mark.parametrize("kind", ["csc", "shape"])
def test_load_refuses_another_matrix(tmp_path, kind):
    ck = _save(tmp_path)
    W = _layers()[1]
    M = sp.csc_array(W) if kind == "csc" else sp.csr_array(W.toarray()[:3])
    _replace_file(ck, "layer_1.npz", _npz_bytes(tmp_path, M))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    fmt, shape = ("csc", (4, 2)) if kind == "csc" else ("csr", (3, 2))
    assert str(e.value) == (f"{os.path.join(ck, 'layer_1.npz')} holds a {fmt} matrix of shape "
                            f"{shape}; expected csr (4, 2).")


def test_load_refuses_a_non_canonical_layer(tmp_path):
    ck = _save(tmp_path)
    W = _layers()[1]
    bad = sp.csr_array((W.data, W.indices[[0, 1, 3, 2]], W.indptr), shape=W.shape)
    _replace_file(ck, "layer_1.npz", _npz_bytes(tmp_path, bad))
    _resign(ck, lambda m: m["topology_digests"].__setitem__(1, checkpoint.topology_digest(bad)))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    assert str(e.value).startswith(f"{os.path.join(ck, 'layer_1.npz')}: layer_1 must be "
                                   "canonical CSR")


def test_load_refuses_another_topology(tmp_path):
    ck = _save(tmp_path)
    W = _layers()[1]
    other = sp.csr_array((W.data, np.array([1, 0, 0, 1]), W.indptr), shape=W.shape)
    _replace_file(ck, "layer_1.npz", _npz_bytes(tmp_path, other))
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(ck)
    assert str(e.value) == f"{os.path.join(ck, 'layer_1.npz')}: topology digest mismatch."


# -- latest -------------------------------------------------------------------------------------
def test_latest_round_trip(tmp_path):
    assert checkpoint.read_latest(tmp_path) is None
    checkpoint.write_latest(tmp_path, os.path.join("checkpoints", "epoch-0001"))
    assert (tmp_path / "latest").read_bytes() == (os.path.join("checkpoints", "epoch-0001")
                                                  + "\n").encode()
    assert checkpoint.read_latest(tmp_path) == os.path.join(tmp_path, "checkpoints", "epoch-0001")
    checkpoint.write_latest(tmp_path, "final")
    assert checkpoint.read_latest(tmp_path) == os.path.join(tmp_path, "final")
    assert sorted(os.listdir(tmp_path)) == ["latest"]


@pytest.mark.parametrize("content,want", [(b"", None), (b"  \n", None), (b" final \n", "final"),
                                          (b"ep\xffoch", "ep\ufffdoch")])
def test_read_latest_of_odd_files(tmp_path, content, want):
    (tmp_path / "latest").write_bytes(content)
    got = checkpoint.read_latest(tmp_path)
    assert got == (None if want is None else os.path.join(tmp_path, want))


def test_failed_latest_write_leaves_no_temporary(tmp_path, monkeypatch):
    checkpoint.write_latest(tmp_path, "a")
    monkeypatch.setattr(checkpoint.os, "replace", lambda a, b: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        checkpoint.write_latest(tmp_path, "b")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["latest"]
    assert checkpoint.read_latest(tmp_path) == os.path.join(tmp_path, "a")
