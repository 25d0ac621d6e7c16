"""sparsemlp.load_model / load_run: models back from run, checkpoint and final/ directories."""

import json
import os
import shutil
from pathlib import Path

import dense_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp

import sparsemlp
from sparsemlp import SparseMLP, SparseRBM, load_model
from sparsemlp.train import main
from sparsemlp.training import CheckpointError, load_run

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints_v1"
ARGS = ["--hidden", "12", "--epsilon", "3", "--epochs", "2", "--checkpoint-every", "1",
        "--backend", "numpy", "--threads", "1", "-q"]


def _files(ck):
    """Weights and biases read with plain SciPy/NumPy, and the activations from meta.json."""
    with open(os.path.join(ck, "meta.json")) as fh:
        meta = json.load(fh)
    Ws = [sp.load_npz(os.path.join(ck, f"layer_{i}.npz")).toarray()
          for i in range(meta["n_layers"])]
    with np.load(os.path.join(ck, "state.npz")) as z:
        bs = [z[f"layers.{i}.bias"] for i in range(len(Ws))]
        bv = z["visible_bias"] if "visible_bias" in z.files else None
    return meta, Ws, bs, bv


def _dense_mlp(ck, X):
    meta, Ws, bs, _ = _files(ck)
    cfg = meta["config"]
    acts = [cfg["activation"]] * (len(Ws) - 1) + [cfg["output_activation"]]
    # inverted dropout (the default mode of these runs) does nothing at inference
    assert not cfg.get("dropout") or cfg.get("dropout_kind") == "inverted"
    return ref.forward(Ws, bs, acts, X, alphas=[cfg.get("alpha", 0.6)] * len(Ws))[-1][1]


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mlp"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rbm"
    assert main([*ARGS, "--model", "rbm", "--out", str(out)]) == 0
    return out


def _X(n=50, d=64, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


@pytest.mark.parametrize("where", ["run", "final", "checkpoint"])
def test_mlp_from_every_kind_of_directory_matches_a_dense_forward(mlp_run, where):
    path = {"run": mlp_run, "final": mlp_run / "final",
            "checkpoint": mlp_run / "checkpoints" / "epoch-0001"}[where]
    ck = mlp_run / "final" if where != "checkpoint" else path
    model = load_model(path)
    assert isinstance(model, SparseMLP)
    X = _X()
    np.testing.assert_allclose(model.predict_raw(X), _dense_mlp(ck, X), rtol=1e-5, atol=1e-6)


def test_rbm_hidden_probs_match_dense_formula(rbm_run):
    model = load_model(rbm_run)
    assert isinstance(model, SparseRBM)
    _, Ws, bs, _ = _files(rbm_run / "final")
    X = _X()
    want = 1 / (1 + np.exp(-(X @ Ws[0] + bs[0])))
    got = model.hidden_probs(np.ascontiguousarray(X.T)).T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, cls", [("mlp", SparseMLP), ("rbm", SparseRBM)])
def test_release_checkpoints_of_format_1_load(name, cls):
    """Checkpoints written by commit 62aa30d (format 1) load to the model their files hold."""
    model = load_model(FIXTURES / name)
    assert isinstance(model, cls)
    _, Ws, bs, _ = _files(FIXTURES / name / "final")
    for layer, W, b in zip(model.sparse_layers(), Ws, bs):
        np.testing.assert_array_equal(layer.W.toarray(), W)
        np.testing.assert_array_equal(layer.b, b)
    if name == "mlp":
        X = _X()
        np.testing.assert_allclose(model.predict_raw(X), _dense_mlp(FIXTURES / name / "final", X),
                                   rtol=1e-5, atol=1e-6)


def test_load_run_carries_config_labels_and_scaling(mlp_run):
    run = load_run(mlp_run)
    assert run.path.endswith("final") and run.epoch == 2
    assert run.config.hidden == (12,) and run.config.backend == "numpy"
    assert run.preprocessing is not None
    np.testing.assert_array_equal(run.preprocessing.classes, np.arange(10))
    assert load_run(mlp_run, backend="cython" if "cython" in sparsemlp._kernels.available()
                    else "numpy").model.kernels.name in ("cython", "numpy")


def test_load_model_errors_name_the_problem(tmp_path, mlp_run):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path / "empty")
    bad = tmp_path / "bad"
    shutil.copytree(mlp_run / "final", bad)
    with open(bad / "layer_0.npz", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_model(bad)


def test_cli_tools_read_models_through_load_run(monkeypatch, mlp_run):
    """evaluate, info and plot load models through training.loading (one path from disk)."""
    from sparsemlp.cli import info
    from sparsemlp.training import loading

    calls = []
    real = loading.load_run

    def spy(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(info, "load_run", spy)
    assert info.run_info(str(mlp_run))["nnz"] > 0
    assert calls
