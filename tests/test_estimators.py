"""scikit-learn compatibility of SparseMLPClassifier (parametrize_with_checks) and basic use."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsemlp import SparseMLPClassifier  # noqa: E402

# Small, stable, single-thread instances keep the checks fast.
SMALL = SparseMLPClassifier(hidden_layer_sizes=(32,), epsilon=5.0, max_iter=20, n_threads=1,
                            random_state=0)


@parametrize_with_checks([SMALL])
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
