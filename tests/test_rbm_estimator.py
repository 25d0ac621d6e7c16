"""scikit-learn compatibility of SparseBernoulliRBM and RBM features feeding a classifier."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsemlp.estimators import rbm as rbm_estimator  # noqa: E402
from sparsemlp.estimators.rbm import SparseBernoulliRBM  # noqa: E402

# scikit-learn's checks feed standard-normal data; the default out_of_range="warn" uses it as
# BernoulliRBM does and says so, which is expected here.
OUT_OF_RANGE_WARNING = "ignore:SparseBernoulliRBM.*outside the \\[0, 1\\]:UserWarning"

# Small, fast instances that cover the parameters: the default, CD-k and PCD-k with
# momentum, a static topology with clipping, zeta and weight decay varied, and n_iter=0.
CHECKED = [
    SparseBernoulliRBM(),
    SparseBernoulliRBM(n_components=8, epsilon=3.0, n_iter=5, random_state=0),
    SparseBernoulliRBM(n_components=6, epsilon=2.0, n_iter=3, persistent=True, k=3,
                       momentum=0.5, batch_size=4, random_state=1),
    SparseBernoulliRBM(n_components=5, epsilon=1.0, zeta=0.5, topology="static",
                       learning_rate=0.01, weight_decay=0.0, n_iter=2, out_of_range="clip",
                       random_state=2),
    SparseBernoulliRBM(n_components=4, k=2, zeta=0.0, n_iter=0, out_of_range="ignore",
                       random_state=3),
]


@pytest.mark.filterwarnings(OUT_OF_RANGE_WARNING)
@parametrize_with_checks(CHECKED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_rbm_features_feed_a_classifier():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipe = make_pipeline(SparseBernoulliRBM(n_components=200, epsilon=10, n_iter=15,
                                            learning_rate=0.05, random_state=0),
                         LogisticRegression(max_iter=2000))
    pipe.fit(Xtr, ytr)
    rbm = pipe[0]
    assert rbm.components_.shape == (200, 64)
    assert rbm.history_[-2]["train_recon"] < rbm.history_[0]["train_recon"]
    assert pipe.score(Xte, yte) > 0.85
    s = rbm.score_samples(Xte[:5])
    assert s.shape == (5,) and np.all(s <= 0)
    g = rbm.gibbs(Xte[:5])
    assert set(np.unique(g)) <= {0.0, 1.0}


def _binary(n=60, d=10, seed=0, p=0.3):
    return (np.random.default_rng(seed).random((n, d)) < p).astype(np.float64)


def _dense_hidden(est, X):
    """Independent oracle of transform: ``expit(X @ W + b_h)`` with dense float64 arrays."""
    W = est.components_.toarray().astype(np.float64).T
    X = X.toarray() if sp.issparse(X) else np.asarray(X, np.float64)
    return expit(X @ W + est.intercept_hidden_.astype(np.float64))


def test_out_of_range_input_warns_and_is_used_as_given():
    """Like BernoulliRBM, values outside [0, 1] are used as they are; by default with a warning."""
    X = np.random.default_rng(0).normal(size=(40, 6))
    kw = dict(n_components=4, epsilon=2, n_iter=2, random_state=0)
    with pytest.warns(UserWarning, match=r"values in \[-.*outside the \[0, 1\].*used as given"):
        warned = SparseBernoulliRBM(**kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silent = SparseBernoulliRBM(out_of_range="ignore", **kw).fit(X)
        h = silent.transform(X)
    np.testing.assert_array_equal(warned.components_.data, silent.components_.data)
    np.testing.assert_allclose(h, _dense_hidden(silent, X), rtol=1e-12)
    with pytest.warns(UserWarning, match="out_of_range='clip'"):
        warned.transform(X)
    U = np.abs(X) / np.abs(X).max()
    for bad in (U + 0.5, U - 0.5):  # values above 1 only, values below 0 only
        assert (bad.max() > 1) != (bad.min() < 0)
        with pytest.warns(UserWarning, match=r"outside the \[0, 1\]"):
            warned.transform(bad)


def test_out_of_range_clip_and_raise():
    X = np.random.default_rng(0).normal(size=(40, 6))
    kw = dict(n_components=4, epsilon=2, n_iter=2, random_state=0)
    clipped = SparseBernoulliRBM(out_of_range="clip", **kw).fit(X)
    oracle = SparseBernoulliRBM(out_of_range="raise", **kw).fit(np.clip(X, 0, 1))
    np.testing.assert_array_equal(clipped.components_.data, oracle.components_.data)
    np.testing.assert_array_equal(clipped.transform(X), oracle.transform(np.clip(X, 0, 1)))
    with pytest.raises(ValueError, match=r"values in \[-.*, .*\].*MinMaxScaler.*'clip'"):
        SparseBernoulliRBM(out_of_range="raise", **kw).fit(X)
    with pytest.raises(ValueError, match=r"values in \[-"):
        oracle.transform(X)
    Xs = sp.csr_array(np.where(X > 0.5, X, 0.0))  # only stored values can be out of range
    clipped_s = SparseBernoulliRBM(out_of_range="clip", **kw).fit(Xs)
    np.testing.assert_array_equal(clipped_s.components_.data, oracle.fit(
        np.clip(Xs.toarray(), 0, 1)).components_.data)


def test_example_rbm_features_feed_a_classifier():
    """examples/rbm_features_classifier.py runs and RBM features classify digits."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "rbm_features_classifier.py"
    spec = importlib.util.spec_from_file_location("rbm_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rbm_acc, raw_acc = mod.main(["--n-components", "150", "--n-iter", "5"])
    assert rbm_acc > 0.9 and raw_acc > 0.9


def test_momentum_and_persistent_are_parameters():
    X = (np.random.default_rng(0).random((60, 10)) > 0.5).astype(float)
    est = SparseBernoulliRBM(n_components=6, epsilon=2, n_iter=3, momentum=0.5, persistent=True,
                             random_state=0).fit(X)
    assert est.get_params()["persistent"] is True and est.rbm_.W.shape == (10, 6)
    assert est.history_[-1]["nnz"] < est.history_[0]["nnz"]


@pytest.mark.parametrize("persistent", [False, True], ids=["cd", "pcd"])
@pytest.mark.parametrize("kind", [sp.csr_array, sp.csr_matrix, sp.csc_array])
def test_sparse_input_gives_the_dense_result(kind, persistent):
    """Sparse and dense inputs train the same model bit for bit and give the same outputs."""
    X = _binary(80, 12)
    kw = dict(n_components=6, epsilon=2, n_iter=3, persistent=persistent, k=2,
              random_state=4)
    dense = SparseBernoulliRBM(**kw).fit(X)
    sparse = SparseBernoulliRBM(**kw).fit(kind(X))
    for a in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(sparse.rbm_.W, a), getattr(dense.rbm_.W, a))
    np.testing.assert_array_equal(sparse.intercept_hidden_, dense.intercept_hidden_)
    np.testing.assert_array_equal(sparse.intercept_visible_, dense.intercept_visible_)
    np.testing.assert_array_equal(sparse.transform(kind(X)), dense.transform(X))
    np.testing.assert_allclose(dense.transform(X), _dense_hidden(dense, X), rtol=1e-12)
    np.testing.assert_array_equal(sparse.score_samples(kind(X)), dense.score_samples(X))
    g = sparse.gibbs(kind(X))
    assert g.shape == X.shape and set(np.unique(g)) <= {0.0, 1.0}


def test_sparse_input_is_densified_one_batch_at_a_time(monkeypatch):
    """fit, transform, score_samples and gibbs never turn all of a sparse X into a dense array."""
    X = sp.csr_array(_binary(200, 30))
    seen = []
    for cls in (sp.csr_array, sp.csr_matrix):
        real = cls.toarray

        def spy(self, *a, _real=real, **k):
            seen.append(self.shape[0])
            return _real(self, *a, **k)
        monkeypatch.setattr(cls, "toarray", spy)
    monkeypatch.setattr(rbm_estimator, "_CHUNK_VALUES", 30 * 16)  # 16 rows per chunk
    est = SparseBernoulliRBM(n_components=8, epsilon=3, n_iter=2, batch_size=10,
                             persistent=True, random_state=0).fit(X)
    est.transform(X)
    est.score_samples(X)
    est.gibbs(X)
    assert seen and max(seen) <= 16


def test_transform_and_score_samples_match_dense_oracles():
    X = _binary(50, 9, p=0.4)
    est = SparseBernoulliRBM(n_components=7, epsilon=2, n_iter=4, learning_rate=0.05,
                             random_state=1).fit(X)
    np.testing.assert_allclose(est.transform(X), _dense_hidden(est, X), rtol=1e-12)
    # the one-unit pseudo-likelihood: -V * softplus(F(v) - F(v with unit i flipped)) for
    # one unit i per sample, with F computed densely
    W = est.components_.toarray().T
    bh, bv = est.intercept_hidden_, est.intercept_visible_

    def free_energy(V):
        return -V @ bv - np.logaddexp(0, V @ W + bh).sum(axis=1)
    f = free_energy(X)
    per_unit = np.empty(X.shape)
    for i in range(X.shape[1]):
        flipped = X.copy()
        flipped[:, i] = 1 - flipped[:, i]
        per_unit[:, i] = -X.shape[1] * np.logaddexp(0, f - free_energy(flipped))
    s = est.score_samples(X)
    assert np.all(np.min(np.abs(per_unit - s[:, None]), axis=1) < 1e-9 * np.abs(s))
    # deterministic per sample: the same scores in any order, on any call
    perm = np.random.default_rng(0).permutation(X.shape[0])
    np.testing.assert_array_equal(est.score_samples(X[perm]), s[perm])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_and_features_follow_the_input_dtype(dtype):
    X = _binary(40, 8).astype(dtype)
    est = SparseBernoulliRBM(n_components=5, epsilon=2, n_iter=2, random_state=0).fit(X)
    assert est.rbm_.dtype == dtype and est.components_.dtype == dtype
    assert est.transform(X).dtype == dtype and est.fit_transform(X).dtype == dtype
    # float64 features of float32 weights, as numpy promotes
    assert est.transform(X.astype(np.float64)).dtype == np.float64


def test_n_iter_zero_is_the_initial_model():
    X = _binary(30, 6)
    est = SparseBernoulliRBM(n_components=5, epsilon=2, n_iter=0, random_state=0).fit(X)
    assert est.history_ == [] and not est.intercept_hidden_.any()
    one = SparseBernoulliRBM(n_components=5, epsilon=2, n_iter=1, random_state=0).fit(X)
    assert not np.array_equal(one.components_.toarray(), est.components_.toarray())
    np.testing.assert_allclose(est.transform(X), _dense_hidden(est, X), rtol=1e-12)


@pytest.mark.parametrize("param, value, error, match", [
    ("n_components", 0, ValueError, r"'n_components' parameter of SparseBernoulliRBM.*\[1, inf\)"),
    ("n_iter", -1, ValueError, r"'n_iter'.*\[0, inf\)"),
    ("learning_rate", 0.0, ValueError, r"'learning_rate'.*\(0, inf\)"),
    ("batch_size", 2.5, TypeError, r"'batch_size'.*an int"),
    ("momentum", 1.0, ValueError, r"'momentum'.*\[0, 1\)"),
    ("zeta", -0.1, ValueError, r"'zeta'.*\[0, 1\)"),
    ("k", 0, ValueError, r"'k'.*\[1, inf\)"),
    ("epsilon", 0, ValueError, r"'epsilon'.*\(0, inf\)"),
    ("weight_decay", -1e-3, ValueError, r"'weight_decay'"),
    ("persistent", "yes", TypeError, r"'persistent'.*a bool"),
    ("topology", "regular", ValueError, r"'topology'.*'set', 'static'"),
    ("out_of_range", "drop", ValueError, r"'out_of_range'.*'warn', 'ignore', 'clip', 'raise'"),
    ("backend", "cuda", ValueError, r"'backend'.*'numpy'"),
])
def test_bad_hyperparameters_name_the_parameter_and_the_valid_values(param, value, error, match):
    with pytest.raises(error, match=match):
        SparseBernoulliRBM(n_components=4, n_iter=1).set_params(**{param: value}).fit(_binary())


def test_reproducible_from_random_state_and_clone():
    X = _binary(60, 10)
    a = SparseBernoulliRBM(n_components=6, epsilon=2, n_iter=3, random_state=7).fit(X)
    b = clone(a).fit(X)
    np.testing.assert_array_equal(a.components_.toarray(), b.components_.toarray())
    c = clone(a).set_params(random_state=8).fit(X)
    assert not np.array_equal(a.components_.toarray(), c.components_.toarray())
    # a RandomState instance is drawn from, as in scikit-learn: two fits differ
    r = SparseBernoulliRBM(n_components=6, epsilon=2, n_iter=3,
                           random_state=np.random.RandomState(0))
    assert not np.array_equal(r.fit(X).components_.toarray(), r.fit(X).components_.toarray())


def test_feature_names_out():
    est = SparseBernoulliRBM(n_components=3, epsilon=2, n_iter=1, random_state=0).fit(_binary())
    np.testing.assert_array_equal(est.get_feature_names_out(),
                                  ["sparsebernoullirbm0", "sparsebernoullirbm1",
                                   "sparsebernoullirbm2"])
