"""training.sources: every kind of trained MLP reproduces its own predictions as a SparseMLP;
orientation is converted at the boundary; bad sources are refused with the problem named."""

import json
import pickle

import numpy as np
import pytest

from sparsemlp import SparseMLP
from sparsemlp._validation import check_csr
from sparsemlp.training.sources import SourceError, load_source, model_from_dense

sklearn = pytest.importorskip("sklearn", reason="the scikit-learn sources need scikit-learn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402


def _data(n=120, d=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.array(["ant", "bee", "cat", "dog"])[:k][np.argmax(X[:, :k], axis=1)]
    return X, y


@pytest.fixture(scope="module")
def clf():
    X, y = _data()
    with pytest.warns(ConvergenceWarning):
        return MLPClassifier((9, 9), max_iter=30, random_state=0).fit(X, y), X


def _seed_forward(Ws, bs, acts, X):
    """The seed project's orientation: a = f(W @ x + b) with W of shape (n_out, n_in)."""
    a = X.T
    for W, b, f in zip(Ws, bs, acts):
        z = W @ a + b[:, None]
        if f == "relu":
            a = np.maximum(z, 0)
        elif f == "tanh":
            a = np.tanh(z)
        else:  # softmax over units
            e = np.exp(z - z.max(axis=0))
            a = e / e.sum(axis=0)
    return a.T


def test_sklearn_classifier_reproduces_predict_proba(clf):
    c, X = clf
    src = load_source(c)
    assert src.kind == "sklearn" and src.model.sizes == [12, 9, 9, 4]
    assert list(src.classes) == ["ant", "bee", "cat", "dog"] and not src.regressor
    np.testing.assert_allclose(src.model.predict_raw(X), c.predict_proba(X), rtol=0, atol=1e-6)
    for layer, W in zip(src.model.layers, c.coefs_):
        check_csr(layer.W)
        assert layer.W.shape == W.shape and layer.nnz == np.count_nonzero(W)


def test_sklearn_binary_classifier_and_regressor():
    X, y = _data(k=2)
    with pytest.warns(ConvergenceWarning):
        c = MLPClassifier((7,), max_iter=20, random_state=0).fit(X, y)
        r = MLPRegressor(hidden_layer_sizes=(8, 5), activation="tanh", max_iter=20, random_state=0).fit(
            X, X[:, :3] @ [1.0, -2.0, 0.5])
    src = load_source(c)
    assert src.model.sizes == [12, 7, 1]
    np.testing.assert_allclose(src.model.predict_raw(X)[:, 0], c.predict_proba(X)[:, 1], atol=1e-6)
    src = load_source(r)
    assert src.regressor and src.classes is None
    np.testing.assert_allclose(src.model.predict_raw(X)[:, 0], r.predict(X), atol=1e-6)


def test_pickled_estimator(clf, tmp_path):
    c, X = clf
    with open(tmp_path / "mlp.pkl", "wb") as fh:
        pickle.dump(c, fh)
    src = load_source(str(tmp_path / "mlp.pkl"))
    np.testing.assert_allclose(src.model.predict_raw(X), c.predict_proba(X), atol=1e-6)


def _seed_net(rng):
    """A [6, 5, 5, 3] net in the seed's layout (the 5 x 5 layer is square and not symmetric)."""
    shapes = [(5, 6), (5, 5), (3, 5)]
    Ws = [rng.standard_normal(s) for s in shapes]
    Ws[0][1, 2] = 0.0  # an exact zero is not stored
    bs = [rng.standard_normal(s[0]) for s in shapes]
    return Ws, bs


def test_npy_folder_in_the_seed_orientation(tmp_path):
    rng = np.random.default_rng(1)
    Ws, bs = _seed_net(rng)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        np.save(tmp_path / f"W_{i}.npy", W)
        np.save(tmp_path / f"b_{i}.npy", b)
    X = rng.standard_normal((30, 6))
    expect = _seed_forward(Ws, bs, ["relu", "relu", "softmax"], X)
    src = load_source(str(tmp_path), activations=["relu", "log_softmax"])
    assert src.kind == "npy" and src.model.sizes == [6, 5, 5, 3]
    assert src.model.layers[0].nnz == 29
    np.testing.assert_allclose(src.model.predict_raw(X), expect, rtol=0, atol=1e-12)
    # the activations may come with the folder; the other orientation is refused or wrong
    (tmp_path / "activations.txt").write_text("relu relu softmax\n")
    np.testing.assert_allclose(load_source(str(tmp_path)).model.predict_raw(X), expect,
                               atol=1e-12)
    with pytest.raises(SourceError, match="do not chain as in x out"):
        load_source(str(tmp_path), layout="in_out")
    (tmp_path / "activations.txt").unlink()
    with pytest.raises(SourceError, match="does not say its activations"):
        load_source(str(tmp_path))


def test_npz_of_named_arrays_and_of_a_state_dict(tmp_path):
    rng = np.random.default_rng(2)
    Ws, bs = _seed_net(rng)
    X = rng.standard_normal((30, 6))
    expect = _seed_forward(Ws, bs, ["tanh", "tanh", "softmax"], X)
    np.savez(tmp_path / "a.npz", **{f"W_{i}": W for i, W in enumerate(Ws)},
             **{f"b_{i}": b for i, b in enumerate(bs)}, activations=np.array(["tanh", "softmax"]))
    src = load_source(str(tmp_path / "a.npz"))
    np.testing.assert_allclose(src.model.predict_raw(X), expect, atol=1e-12)
    # a PyTorch state_dict: '<layer>.weight' (n_out x n_in) and '<layer>.bias' in file order
    # (not in alphabetical order)
    sd = {}
    for name, W, b in zip(("z_in", "a_mid", "m_out"), Ws, bs):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = W, b
    np.savez(tmp_path / "t.npz", **sd)
    src = load_source(str(tmp_path / "t.npz"), activations="tanh,softmax")
    np.testing.assert_allclose(src.model.predict_raw(X), expect, atol=1e-12)
    # scikit-learn's orientation on request
    np.savez(tmp_path / "c.npz", **{f"W{i}": W.T for i, W in enumerate(Ws)},
             **{f"b{i}": b for i, b in enumerate(bs)})
    src = load_source(str(tmp_path / "c.npz"), activations=["tanh", "softmax"], layout="in_out",
                      dtype="float32")
    assert src.model.dtype == np.float32
    np.testing.assert_allclose(src.model.predict_raw(X), expect, atol=1e-5)


def test_package_models_estimators_and_runs(tmp_path):
    from sparsemlp import SparseMLPClassifier
    from sparsemlp.cli.train import main

    rng = np.random.default_rng(3)
    m = SparseMLP.erdos_renyi([8, 6, 3], epsilon=3, rng=rng)
    assert load_source(m).model is m and load_source(m).kind == "model"
    X, y = _data(d=8)
    est = SparseMLPClassifier((6,), max_iter=2, random_state=0).fit(X, y)
    src = load_source(est)
    assert src.kind == "estimator" and src.model is est.model_
    assert list(src.classes) == list(est.classes_)
    out = tmp_path / "run"
    assert main(["--hidden", "8", "--epochs", "1", "--out", str(out), "-q"]) == 0
    src = load_source(str(out))
    assert src.kind == "run" and src.epoch == 1 and src.config.hidden == (8,)
    assert src.preprocessing is not None and len(src.history) == 1


@pytest.mark.parametrize("make, match", [
    (lambda d: str(d / "missing"), "does not exist"),
    (lambda d: (d / "x.txt").write_text("hi") and str(d / "x.txt"), "unknown kind of source"),
    (lambda d: str(d), "holds no W_<i>.npy"),
    (lambda d: [np.save(d / "W_0.npy", np.ones((2, 3)))] and str(d), "lacks b_0.npy"),
    (lambda d: [np.save(d / "W_0.npy", np.ones((2, 3))), np.save(d / "b_0.npy", np.ones(3))]
     and str(d), "the bias has 3 values"),
    (lambda d: [np.save(d / "W_0.npy", np.full((2, 3), np.nan)), np.save(d / "b_0.npy",
                                                                         np.ones(2))]
     and str(d), "NaN or infinite"),
    (lambda d: [np.save(d / "W_1.npy", np.ones((2, 3)))] and str(d), "expected W_0"),
    (lambda d: np.savez(d / "z.npz", foo=np.ones(2)) or str(d / "z.npz"), "expected W_0, b_0"),
    (lambda d: (d / "z.npz").write_text("not a zip") and str(d / "z.npz"), "cannot be read"),
    (lambda d: (d / "m.pkl").write_bytes(b"garbage") and str(d / "m.pkl"), "cannot be unpickled"),
    (lambda d: {"a": 1}, "is not a source sparsemlp reads"),
])
def test_bad_sources_are_refused(tmp_path, make, match):
    with pytest.raises(SourceError, match=match):
        load_source(make(tmp_path), activations=["relu", "softmax"])


def test_activation_lists_are_checked():
    Ws = [np.ones((3, 2)), np.ones((2, 2)), np.ones((2, 1))]
    bs = [np.zeros(2), np.zeros(2), np.zeros(1)]
    with pytest.raises(SourceError, match="unknown activation 'swish'"):
        model_from_dense(Ws, bs, ["swish", "softmax"])
    with pytest.raises(SourceError, match="3 layers but 4 activations"):
        model_from_dense(Ws, bs, ["relu"] * 4)
    with pytest.raises(SourceError, match="different activations"):
        model_from_dense(Ws, bs, ["relu", "tanh", "identity"])
    with pytest.raises(SourceError, match="layer 0 has 2 outputs but layer 1 takes 3"):
        model_from_dense([np.ones((3, 2)), np.ones((3, 1))], [np.zeros(2), np.zeros(1)],
                         ["relu", "identity"])
    m = model_from_dense(Ws, bs, "logistic linear")
    assert [a.name for a in m.activations] == ["sigmoid", "sigmoid", "identity"]


def test_rbm_runs_are_refused(tmp_path):
    from sparsemlp.cli.train import main

    out = tmp_path / "rbm"
    assert main(["--model", "rbm", "--hidden", "8", "--epochs", "1", "--ais-every", "0",
                 "--out", str(out), "-q"]) == 0
    with pytest.raises(SourceError, match="only MLPs"):
        load_source(str(out))
    assert json.loads((out / "config.json").read_text())["config"]["model"] == "rbm"
