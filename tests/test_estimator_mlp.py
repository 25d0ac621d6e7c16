"""estimators/mlp.py piece by piece: seeds, layer sizes, the config it builds, and its outputs
computed from a model whose raw outputs are known (fast; test_estimators.py has the
scikit-learn checks and the training runs)."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseMLPClassifier
from sparsemlp.estimators import mlp as est


def _blobs(n_per=10, labels=(0, 1, 2)):
    rng = np.random.default_rng(0)
    X = np.concatenate([3.0 * np.eye(4)[i] + 0.3 * rng.standard_normal((n_per, 4))
                        for i in range(len(labels))])
    return X, np.repeat(np.array(labels), n_per)


def _small(**kw):
    return SparseMLPClassifier(**{**dict(hidden_layer_sizes=(6,), epsilon=2.0, max_iter=1,
                                         n_threads=1, random_state=0), **kw})


# -- _seed and _hidden_sizes ------------------------------------------------------------------
def test_seed_of_each_kind():
    assert est._seed(None) is None
    assert est._seed(7) == 7 and type(est._seed(np.int64(7))) is int
    assert est._seed(np.random.RandomState(3)) == np.random.RandomState(3).randint(0, 2**31 - 1)
    assert est._seed(np.random.default_rng(3)) == np.random.default_rng(3).integers(0, 2**31 - 1)
    big = [est._seed(np.random.RandomState(s)) for s in range(200)]
    assert max(big) > 2**30 and min(big) >= 0  # the whole [0, 2**31 - 1) range
    big = [est._seed(np.random.default_rng(s)) for s in range(200)]
    assert max(big) > 2**30 and min(big) >= 0


@pytest.mark.parametrize("bad", [True, "3", 2.0])
def test_seed_refusal(bad):
    with pytest.raises(ValueError) as e:
        est._seed(bad)
    assert str(e.value) == ("random_state must be None, an int, a RandomState or a Generator. "
                            f"Got {bad!r}. Pass an int seed for reproducible results.")


@pytest.mark.parametrize("given,want", [(10, (10,)), (np.int64(4), (4,)), ([3, 4], (3, 4)),
                                        (range(2, 4), (2, 3)), (np.array([5, 1]), (5, 1))])
def test_hidden_sizes(given, want):
    got = est._hidden_sizes(given, "Owner")
    assert got == want and all(type(h) is int for h in got)


@pytest.mark.parametrize("given,value", [("10", "'10'"), (b"1", "b'1'"), ((3, 0), "0"),
                                         ((2.0,), "2.0")])
def test_hidden_sizes_refusals(given, value):
    with pytest.raises((TypeError, ValueError)) as e:
        est._hidden_sizes(given, "Owner")
    assert str(e.value) == ("The 'hidden_layer_sizes' parameter of Owner must be an int in the "
                            f"range [1, inf). Got {value} instead.")
    with pytest.raises(ValueError) as e:
        est._hidden_sizes((), "Owner")
    assert str(e.value) == ("The 'hidden_layer_sizes' parameter of Owner needs at least one "
                            "hidden layer. Got (). Pass e.g. (100,).")


# -- the TrainConfig it builds -----------------------------------------------------------------
def test_config_clips_the_batch_and_keeps_every_batch():
    cfg = _small()._config(10)
    assert cfg.batch_size == 10 and cfg.drop_last is False  # default mode: 32 > 10 samples
    cfg = _small()._config(33)
    assert cfg.batch_size == 32 and cfg.drop_last is False
    assert _small(batch_size=5)._config(5).batch_size == 5
    assert _small(mode="reference")._config(100).batch_size == 2
    assert _small(mode="reference")._config(100).drop_last is False  # the preset's True off


def test_documented_defaults():
    assert SparseMLPClassifier().get_params() == dict(
        hidden_layer_sizes=(100,), epsilon=20.0, zeta=0.3, topology="set", mode="default",
        activation=None, dropout=None, batch_size=None, optimizer="sgd", learning_rate=None,
        momentum=None, weight_decay=None, max_iter=50, random_state=None, n_threads=0,
        backend="auto", dtype="float32", verbose=False)
    cfg = SparseMLPClassifier(random_state=0)._config(100)
    assert (cfg.hidden, cfg.epsilon, cfg.epochs, cfg.threads, cfg.backend, cfg.dtype) == \
        ((100,), 20.0, 50, 0, "auto", "float32")


def test_backend_reaches_the_config():
    clf = _small(backend="numpy")
    assert clf.get_params()["backend"] == "numpy" and clf._config(10).backend == "numpy"


def test_config_learning_rate_of_each_optimizer():
    assert _small(optimizer="adam")._config(50).lr == 1e-3
    assert _small(optimizer="sgd")._config(50).lr == 0.05  # the default mode's SGD preset
    assert _small(optimizer="adam", learning_rate=0.2)._config(50).lr == 0.2


def test_config_seed_without_random_state_is_drawn():
    seeds = {_small(random_state=None)._config(50).seed for _ in range(20)}
    assert len(seeds) == 20 and all(0 <= s < 2**31 for s in seeds)  # no collision in 2**31
    assert max(seeds) > 2**20
    assert _small(random_state=11)._config(50).seed == 11


@pytest.mark.parametrize("param,value,field_words", [
    ("max_iter", 0, "an int in the range [1, inf). Got 0"),
    ("learning_rate", -1.0, "a float in the range (0, inf). Got -1.0"),
    ("n_threads", -2, "an int in the range [0, inf). Got -2"),
    ("epsilon", 0.0, "a float in the range (0, inf). Got 0.0"),
])
def test_config_errors_name_the_estimator_parameter(param, value, field_words):
    with pytest.raises(ValueError) as e:
        _small(**{param: value})._config(50)
    assert str(e.value).startswith(f"The {param!r} parameter of SparseMLPClassifier must be "
                                   f"{field_words} instead.")


@pytest.mark.parametrize("param,value,options", [("topology", "regular", "'set', 'static'"),
                                                 ("optimizer", "rmsprop", "'sgd', 'adam'")])
def test_config_choice_errors(param, value, options):
    with pytest.raises(ValueError) as e:
        _small(**{param: value})._config(50)
    assert str(e.value) == (f"The {param!r} parameter of SparseMLPClassifier must be one of "
                            f"{options}. Got {value!r} instead.")


# -- fit ---------------------------------------------------------------------------------------
def test_fit_sets_the_fitted_attributes():
    X, y = _blobs()
    clf = _small(max_iter=2).fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.history_) == 2 and clf.config_.epochs == 2
    assert [W is layer.W for W, layer in zip(clf.coefs_, clf.model_.layers, strict=True)] == \
        [True, True]
    assert [b is layer.b for b, layer in zip(clf.intercepts_, clf.model_.layers, strict=True)] \
        == [True, True]
    assert clf.loss_curve_ == [r["train_loss"] for r in clf.history_]
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.n_features_in_ == 4 and clf.classes_.tolist() == [0, 1, 2]
    assert not hasattr(clf, "trainer_") and not hasattr(clf, "optimizer_")


def test_fit_needs_two_classes():
    X, _ = _blobs()
    with pytest.raises(ValueError) as e:
        _small().fit(X, np.full(len(X), 4))
    assert str(e.value) == ("SparseMLPClassifier needs samples of at least 2 classes in the "
                            "data; got 1 class: 4. Pass y with two or more distinct labels.")


def test_fit_on_sparse_input_is_fit_on_the_dense_one():
    X, y = _blobs()
    a = _small().fit(X, y)
    b = _small().fit(sp.csr_matrix(X), y)
    for Wa, Wb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(Wa.indices, Wb.indices)
        np.testing.assert_allclose(Wa.data, Wb.data, rtol=1e-5, atol=1e-6)
    assert SparseMLPClassifier().__sklearn_tags__().input_tags.sparse is True


def test_predictions_on_sparse_input_are_those_on_the_dense_one():
    X, y = _blobs()
    a = _small().fit(X, y)
    for kind in (sp.csr_matrix, sp.csr_array, sp.csc_array):
        np.testing.assert_array_equal(a.predict_proba(kind(X)), a.predict_proba(X))
        np.testing.assert_array_equal(a.predict(kind(X)), a.predict(X))


def test_verbose_logs_one_line_per_epoch(caplog):
    X, y = _blobs()
    with caplog.at_level(logging.INFO, logger="sparsemlp"):
        _small(max_iter=2).fit(X, y)
    assert not [r for r in caplog.records if "epoch" in r.getMessage()]
    with caplog.at_level(logging.INFO, logger="sparsemlp"):
        _small(max_iter=2, verbose=True).fit(X, y)
    assert len([r for r in caplog.records if r.getMessage().startswith("epoch ")]) == 2


# -- outputs from known raw outputs ----------------------------------------------------------
class _Raw:
    """A model stand-in whose raw outputs are given (and that records the chunk size)."""

    def __init__(self, raw):
        self.raw, self.batch_sizes = np.asarray(raw, np.float32), []

    def predict_raw(self, X, *, batch_size):
        self.batch_sizes.append(batch_size)
        return self.raw[:X.shape[0]]


RAW = [[0.2, 0.6, 0.2], [0.0, 0.0, 0.0], [0.5, 0.25, 0.75], [0.1, 0.0, 0.3]]


@pytest.fixture
def fitted():
    X, y = _blobs(labels=("b", "c", "a"))
    clf = _small().fit(X, y)
    clf.model_ = _Raw(RAW)
    return clf, X[:4]


def test_predict_proba_normalises_rows_that_are_not_zero(fitted):
    clf, X = fitted
    raw = np.array(RAW, np.float32).astype(np.float64)
    sums = [sum(row) for row in raw.tolist()]  # about 1, 0, 1.5 and 0.4
    want = np.array([[v / (s or 1.0) for v in row] for row, s in zip(raw.tolist(), sums)])
    got = clf.predict_proba(X)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert got[1].tolist() == [0.0, 0.0, 0.0]
    assert clf.model_.batch_sizes == [clf.config_.eval_batch_size] == [1024]


def test_predict_log_proba_is_the_log_without_warnings(fitted):
    clf, X = fitted
    with np.errstate(all="raise"):
        got = clf.predict_log_proba(X)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(got, np.log(clf.predict_proba(X)), rtol=1e-15)
    assert got[1].tolist() == [-np.inf] * 3


def test_predict_returns_the_labels_of_the_largest_output(fitted):
    clf, X = fitted
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert clf.predict(X).tolist() == ["b", "a", "c", "c"]


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SparseMLPClassifier().predict(np.ones((2, 4)))
    clf = _small().fit(*_blobs())
    with pytest.raises(ValueError, match="4 features"):
        clf.predict(np.ones((2, 3)))
