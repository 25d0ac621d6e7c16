"""scikit-learn compatibility of SparseMLPClassifier (parametrize_with_checks) and basic use."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsemlp import SparseMLPClassifier, TrainConfig, Trainer  # noqa: E402

# Small, single-thread instances keep the checks fast; together they vary the layers, the
# topology, the activation, the optimizer, the mode (MSE on sigmoid outputs), the dtype,
# the batch size, dropout, momentum and decay.
CHECKED = [
    SparseMLPClassifier(hidden_layer_sizes=(32,), epsilon=5.0, max_iter=12, n_threads=1,
                        random_state=0),
    SparseMLPClassifier(hidden_layer_sizes=(16, 8), epsilon=3.0, activation="tanh",
                        topology="static", dtype="float64", batch_size=7, max_iter=10,
                        n_threads=1, random_state=1),
    SparseMLPClassifier(hidden_layer_sizes=(20,), epsilon=4.0, mode="reference", max_iter=8,
                        batch_size=8, learning_rate=0.1, n_threads=1, random_state=2),
    SparseMLPClassifier(hidden_layer_sizes=24, epsilon=4.0, zeta=0.5, dropout=0.0,
                        momentum=0.5, weight_decay=0.0, max_iter=20, n_threads=1,
                        random_state=3),
    SparseMLPClassifier(hidden_layer_sizes=(16, 16, 16), epsilon=4.0, optimizer="adam",
                        learning_rate=0.02, activation="leaky_relu", max_iter=12, n_threads=1,
                        random_state=4),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_digits_accuracy_and_attributes():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    clf = SparseMLPClassifier(hidden_layer_sizes=(200, 200), max_iter=15, random_state=0)
    clf.fit(sc.transform(Xtr), ytr)
    assert clf.score(sc.transform(Xte), yte) > 0.9
    assert len(clf.coefs_) == 3 and clf.coefs_[0].shape == (64, 200)
    assert clf.n_iter_ == 15 and len(clf.history_) == 15
    # same seed, same model
    clf2 = SparseMLPClassifier(hidden_layer_sizes=(200, 200), max_iter=15, random_state=0)
    clf2.fit(sc.transform(Xtr), ytr)
    for a, b in zip(clf.coefs_, clf2.coefs_):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


# -- the user's labels in every output (issue 19 / 12.4) ------------------------------------

def _blobs(labels, seed=0, n_per=40):
    """Well separated Gaussian clusters in 4-D, shuffled; cluster i carries ``labels[i]``."""
    rng = np.random.default_rng(seed)
    centers = 4.0 * np.eye(4)[:len(labels)]
    X = np.concatenate([c + 0.5 * rng.standard_normal((n_per, 4)) for c in centers])
    y = np.repeat(np.array(labels), n_per)
    order = rng.permutation(len(y))
    return X[order], y[order]


LABEL_SETS = {
    "str": ["dog", "cat", "emu"],
    "one-two": [2, 1],
    "negative": [7, -3, 0],
    "zero-five-nine": [9, 0, 5],
}


@pytest.mark.parametrize("labels", list(LABEL_SETS.values()), ids=list(LABEL_SETS))
def test_predictions_are_the_users_labels(labels):
    """Labels that are not 0..k-1 (strings, {1, 2}, {-3, 0, 7}, {0, 5, 9}) come back as given."""
    from sklearn.metrics import accuracy_score

    X, y = _blobs(labels)
    Xte, yte = _blobs(labels, seed=1)
    clf = SparseMLPClassifier(hidden_layer_sizes=(16,), epsilon=4.0, max_iter=15, n_threads=1,
                              random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, sorted(set(labels)))  # scikit-learn's order
    pred = clf.predict(Xte)
    assert pred.dtype == yte.dtype and set(pred) <= set(labels)
    # a separable problem: the user's own labels are predicted (independent of classes_)
    assert np.mean(pred == yte) > 0.95
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(yte), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # column j of predict_proba is the probability of classes_[j]: the true label's column
    # holds the largest probability, and predict is that column's label
    true_col = np.searchsorted(np.array(sorted(set(labels))), yte)
    assert np.mean(np.argmax(proba, axis=1) == true_col) > 0.95
    np.testing.assert_array_equal(pred, clf.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(Xte)), proba, rtol=1e-12)
    assert clf.score(Xte, yte) == pytest.approx(accuracy_score(yte, pred))
    assert clf.score(Xte, yte) > 0.95


def test_probability_columns_follow_classes_for_any_label_order():
    """The same clusters under permuted labels: each column moves with its label."""
    X, cluster = _blobs([0, 1, 2])
    base = SparseMLPClassifier(hidden_layer_sizes=(16,), epsilon=4.0, max_iter=15, n_threads=1,
                               random_state=0)
    for perm in ([2, 0, 1], [1, 2, 0], [0, 2, 1]):
        names = np.array(["a", "b", "c"])[perm]
        y = names[cluster]
        clf = base.fit(X, y)
        proba = clf.predict_proba(X)
        for k, name in enumerate(clf.classes_):
            members = y == name
            # column k is high on the cluster labelled classes_[k] and low elsewhere
            assert proba[members, k].mean() > 0.9
            assert proba[~members, k].mean() < 0.1


# -- parameters, errors, fitted state -------------------------------------------------------

@pytest.mark.parametrize("params, cfg", [
    (dict(), dict()),
    (dict(optimizer="adam"), dict(optimizer="adam", lr=1e-3)),
    (dict(optimizer="adam", learning_rate=0.01, activation="tanh"),
     dict(optimizer="adam", lr=0.01, activation="tanh")),
    (dict(learning_rate=0.02, momentum=0.5, weight_decay=0.0, dropout=0.0, batch_size=8,
          zeta=0.5, epsilon=3.0, dtype="float64"),
     dict(lr=0.02, momentum=0.5, weight_decay=0.0, dropout=0.0, batch_size=8, zeta=(0.5,),
          epsilon=3.0, dtype="float64")),
    (dict(topology="static"), dict(topology="static")),
    (dict(mode="reference"), dict(mode="reference", drop_last=False)),
], ids=["default", "adam", "adam-lr-tanh", "sgd-options", "static", "reference"])
def test_parameters_reach_the_trainer(params, cfg):
    """The estimator trains exactly what a Trainer given the documented TrainConfig trains."""
    X, y = _blobs([0, 1, 2])
    base = dict(hidden_layer_sizes=(10, 6), epsilon=4.0, max_iter=3, n_threads=1,
                random_state=5)
    clf = SparseMLPClassifier(**{**base, **params}).fit(X, y)
    want = {**dict(hidden=(10, 6), epsilon=4.0, epochs=3, threads=1, seed=5), **cfg}
    tr = Trainer.from_config(TrainConfig(**want), X.shape[1], 3, verbose=False)
    tr.fit(X, y)
    for got, ref in zip(clf.coefs_, tr.model.layers):
        np.testing.assert_array_equal(got.indices, ref.W.indices)
        np.testing.assert_array_equal(got.data, ref.W.data)
    assert clf.loss_curve_ == [r["train_loss"] for r in tr.history.records]
    assert clf.loss_ == clf.loss_curve_[-1] and clf.n_iter_ == 3


@pytest.mark.parametrize("param, value, match", [
    ("max_iter", 0, r"'max_iter' parameter of SparseMLPClassifier.*\[1, inf\)"),
    ("learning_rate", -1.0, r"'learning_rate' parameter of SparseMLPClassifier.*\(0, inf\)"),
    ("hidden_layer_sizes", (10, 0), r"'hidden_layer_sizes' parameter of SparseMLPClassifier"),
    ("hidden_layer_sizes", (), r"'hidden_layer_sizes'.*at least one hidden layer"),
    ("hidden_layer_sizes", "10", r"'hidden_layer_sizes'.*an int"),
    ("n_threads", -1, r"'n_threads' parameter of SparseMLPClassifier.*\[0, inf\)"),
    ("zeta", 1.0, r"'zeta' parameter of SparseMLPClassifier.*\[0, 1\)"),
    ("activation", "softplus", r"'activation' parameter of SparseMLPClassifier.*'tanh'"),
    ("topology", "regular", r"'topology' parameter of SparseMLPClassifier.*'set', 'static'"),
    ("optimizer", "rmsprop", r"'optimizer' parameter of SparseMLPClassifier.*'sgd', 'adam'"),
    ("batch_size", 0, r"'batch_size' parameter of SparseMLPClassifier"),
    ("random_state", "seed", r"random_state must be.*Pass an int seed"),
])
def test_bad_hyperparameters_name_the_estimators_parameter(param, value, match):
    X, y = _blobs([0, 1])
    with pytest.raises((ValueError, TypeError), match=match) as exc:
        SparseMLPClassifier(max_iter=1).set_params(**{param: value}).fit(X, y)
    assert "TrainConfig" not in str(exc.value)


def test_one_class_is_a_clear_error():
    X, _ = _blobs([0, 1])
    with pytest.raises(ValueError, match=r"at least 2 classes.*1 class: 'cat'\. Pass y with two"):
        SparseMLPClassifier(max_iter=1).fit(X, np.full(len(X), "cat"))


def test_fitted_estimator_keeps_the_model_not_the_optimizer_state():
    """A fitted estimator pickles little beyond its model (no momentum buffers, no gradients)."""
    X, y = _blobs([0, 1, 2])
    clf = SparseMLPClassifier(hidden_layer_sizes=(400, 400), epsilon=20.0, max_iter=2,
                              n_threads=1, random_state=0).fit(X, y)
    extra = len(pickle.dumps(clf)) - len(pickle.dumps(clf.model_))
    nnz = sum(W.nnz for W in clf.coefs_)
    assert extra < 0.5 * nnz  # the SGD velocity alone is 4 bytes per connection
