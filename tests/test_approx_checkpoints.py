"""Models with structured layers in checkpoints: bit-for-bit round trips, exact resume, load_model,
the format-3 record of layer kinds, and corrupted structured layer files."""

import json
import os
import re

import numpy as np
import pytest
from conftest import StopAt

from sparsemlp import TrainConfig, Trainer, approx, load_model
from sparsemlp._rng import Streams
from sparsemlp.cli import evaluate, info
from sparsemlp.training import CheckpointError, checkpoint

OPTIONS = {"low_rank": {}, "sss": {"n_states": 4}, "sparse_product": {"n_iter": 10},
           "hodlr": {"levels": 2}, "hedlr": {"levels": 1}, "hmatrix": {"min_block": 4},
           "toeplitz_like": {"refine_iter": 3}}
KINDS = list(OPTIONS)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 16))
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 0.8)
    return X, y


def _cfg(**kw):
    return TrainConfig(**{**dict(hidden=(20,) * 8, epsilon=4, epochs=4, batch_size=16, zeta=0.2,
                                 lr=0.02, checkpoint_every=1, seed=5), **kw}).resolve()


def _trainer(cfg, structured=True, **kw):
    """Layers 0..6 one structured kind each, layer 7 a CSR hidden layer SET rewires, 8 output."""
    streams = Streams(cfg.seed)
    model = Trainer.from_config(cfg, 16, 3, streams=streams, verbose=False).model
    if structured:
        for i, kind in enumerate(KINDS):
            approx.approximate_layer(model, i, kind, share=0.5, **OPTIONS[kind])
    return Trainer(model, cfg, streams=streams, verbose=False, **kw)


def _state(tr):
    out = {f"p{i}": p.copy() for i, p in enumerate(tr.model.parameters())}
    out.update({k: np.array(v, copy=True) for k, v in tr.optimizer.state_dict().items()})
    out["indices7"] = tr.model.layers[7].W.indices.copy()
    return out


def _metrics(tr):
    keys = ("epoch", "train_loss", "test_loss", "test_accuracy", "nnz")
    return [{k: r.get(k) for k in keys} for r in tr.history.records]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_structured_model_resumes_exactly(data, tmp_path, optimizer):
    X, y = data
    cfg = _cfg(optimizer=optimizer, lr=0.02 if optimizer == "sgd" else 0.003)
    straight = _trainer(cfg)
    straight.fit(X, y, X, y)
    run = tmp_path / "run"
    first = _trainer(cfg, run_dir=run, callbacks=[StopAt(2)])
    first.fit(X, y, X, y)
    resumed = Trainer.from_checkpoint(run / "checkpoints" / "epoch-0002", run_dir=run,
                                      verbose=False)
    assert [la.kind for la in resumed.model.layers] == KINDS + ["csr", "csr"]
    resumed.fit(X, y, X, y)
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _metrics(straight) == _metrics(resumed)
    assert not np.array_equal(a["indices7"], _state(_trainer(cfg))["indices7"])  # SET ran
    # and the trained model reloads bit for bit
    model = load_model(run)
    assert [type(la) for la in model.layers] == [type(la) for la in straight.model.layers]
    np.testing.assert_array_equal(model.predict_raw(X), straight.model.predict_raw(X))


def test_checkpoint_records_layer_kinds_as_format_3(data, tmp_path):
    X, y = data
    tr = _trainer(_cfg(epochs=1))
    tr.save(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert meta["format_version"] == 3
    assert meta["layer_kinds"] == KINDS + ["csr", "csr"]
    assert meta["shapes"] == [[16, 20]] + [[20, 20]] * 7 + [[20, 3]]
    assert meta["nnz"] == tr.model.nnz()
    with np.load(tmp_path / "ck" / "layer_1.npz") as z:  # the approximation's own arrays
        a = approx.from_arrays({k: z[k] for k in z.files})
    assert a.kind == "sss" and a.shape == (20, 20)
    np.testing.assert_array_equal(a.to_layer().values, tr.model.layers[1].values)
    # a model of CSR layers only is still written as format 2, without the new key
    _trainer(_cfg(epochs=1), structured=False).save(tmp_path / "csr")
    meta = json.loads((tmp_path / "csr" / "meta.json").read_text())
    assert meta["format_version"] == 2 and "layer_kinds" not in meta


def _rewrite_meta(ck, change):
    """Edit meta.json and keep every digest consistent (a well-formed but wrong checkpoint)."""
    meta = json.loads((ck / "meta.json").read_text())
    meta.pop("meta_sha256")
    change(meta)
    meta["files"] = {name: checkpoint._sha256(ck / name) for name in meta["files"]}
    meta["meta_sha256"] = checkpoint._meta_sha256(meta)
    (ck / "meta.json").write_text(json.dumps(meta))


def test_inconsistent_structured_layers_are_refused(data, tmp_path):
    tr = _trainer(_cfg(epochs=1))
    ck = tmp_path / "ck"
    tr.save(ck)
    checkpoint.load(ck)  # well formed

    def swap_kind(meta):
        meta["layer_kinds"][1] = "hodlr"
    _rewrite_meta(ck, swap_kind)
    with pytest.raises(CheckpointError, match="holds a sss layer of shape \\(20, 20\\); meta.json "
                                              "expects hodlr"):
        checkpoint.load(ck)

    for i, change in ((1, "states"), (2, "pattern")):  # another structure of that kind and shape
        tr.save(ck)
        a = tr.model.layers[i].to_approximation()
        if change == "states":
            other = approx.sss(np.random.default_rng(1).standard_normal((20, 20)), share=0.5,
                               n_states=5)
        else:  # the same number of values in every array: only the sparsity pattern differs
            other = approx.SparseProduct([a.factors[0].T.tocsr(), *a.factors[1:]])
            assert {k: np.shape(v) for k, v in other.to_arrays().items()} == \
                {k: np.shape(v) for k, v in a.to_arrays().items()}
        with open(ck / f"layer_{i}.npz", "wb") as fh:
            np.savez(fh, **other.to_arrays())
        _rewrite_meta(ck, lambda meta: None)
        with pytest.raises(CheckpointError, match=f"layer_{i}.npz: structure digest mismatch"):
            checkpoint.load(ck)

    tr.save(ck)  # arrays that are not an approximation
    with open(ck / "layer_2.npz", "wb") as fh:
        np.savez(fh, kind=np.array("sparse_product"), shape=np.array([20, 20]))
    _rewrite_meta(ck, lambda meta: None)
    with pytest.raises(CheckpointError, match="layer_2.npz cannot be read as a sparse_product "
                                              "layer: from_arrays: the key 'budget' is missing"):
        checkpoint.load(ck)

    tr.save(ck)

    def no_kinds(meta):
        del meta["layer_kinds"]
    _rewrite_meta(ck, no_kinds)
    with pytest.raises(CheckpointError, match=re.escape(f"{ck / 'meta.json'} lacks the key "
                                                        "'layer_kinds'")):
        checkpoint.load(ck)
    assert os.path.isdir(ck)


@pytest.mark.parametrize("bad", ["one_short", "not_a_name"])
def test_bad_layer_kinds_are_refused_by_name(data, tmp_path, bad):
    """A format-3 meta.json whose `layer_kinds` does not name every layer (one entry short, or
    a number among the names) is refused up front with one message, not a crash in load."""
    ck = tmp_path / "ck"
    _trainer(_cfg(epochs=1)).save(ck)

    def edit(meta):
        meta["layer_kinds"] = meta["layer_kinds"][:-1] if bad == "one_short" \
            else meta["layer_kinds"][:-1] + [7]
    _rewrite_meta(ck, edit)
    msg = re.escape(f"{ck / 'meta.json'} has an invalid 'layer_kinds' (need 9 names); the "
                    "checkpoint is not usable.")
    for reader in (checkpoint.read_meta, checkpoint.load):
        with pytest.raises(CheckpointError, match=msg):
            reader(ck)


UNPICKLED = []


def _record_unpickling(x):
    UNPICKLED.append(x)
    return x


class _Payload:
    """An object whose unpickling is observable (a stand-in for a malicious payload)."""

    def __reduce__(self):
        return _record_unpickling, ("payload",)


def test_structured_layer_file_is_never_unpickled(data, tmp_path):
    """A structured layer file holding an object array is refused without being unpickled."""
    tr = _trainer(_cfg(epochs=1))
    ck = tmp_path / "ck"
    tr.save(ck)
    arrays = tr.model.layers[1].to_approximation().to_arrays()
    key = sorted(k for k in arrays if k not in ("kind", "shape"))[0]
    arrays[key] = np.array([_Payload()], dtype=object)
    with open(ck / "layer_1.npz", "wb") as fh:
        np.savez(fh, **arrays)
    _rewrite_meta(ck, lambda meta: None)
    UNPICKLED.clear()
    with pytest.raises(CheckpointError, match="layer_1.npz cannot be read as a sss layer: "
                                              ".*allow_pickle"):
        checkpoint.load(ck)
    assert UNPICKLED == []


def test_info_and_evaluate_describe_structured_runs(data, tmp_path, capsys):
    """A trained run with structured layers: `info` lists every layer with its kind (it used to
    list the CSR layers only, as if the model were [16, 20, 20, 3]), `evaluate` scores it."""
    X, y = data
    run, toy = tmp_path / "run", tmp_path / "toy.npz"
    np.savez(toy, X=X, y=y)
    tr = _trainer(_cfg(epochs=1, dataset=str(toy)), run_dir=run)
    tr.fit(X, y, X, y)
    r = info.run_info(str(run))
    assert r["sizes"] == [16] + [20] * 8 + [3]
    assert [la.get("kind", "csr") for la in r["layers"]] == KINDS + ["csr", "csr"]
    assert r["nnz"] == sum(tr.model.nnz())
    assert info.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "sss layer (parameters, no graph)" in out and "toeplitz_like layer" in out
    assert evaluate.main([str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["test"]["accuracy"] <= 1
