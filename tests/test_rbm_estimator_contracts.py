"""SparseBernoulliRBM's promises after and around fit: input dtypes, the initial Erdős–Rényi
topology and the law of regrown weights, the backend asked for, no progress bar unless
asked, the PCD chains drawn from random_state, and transform / score_samples / gibbs on
odd inputs (checked against dense oracles; fast, without the scikit-learn checks)."""

import io
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from sparsemlp import _kernels
from sparsemlp.estimators import rbm as rbm_estimator
from sparsemlp.estimators.mlp import _seed
from sparsemlp.estimators.rbm import SparseBernoulliRBM
from sparsemlp.rbm import SparseRBM


def _binary(n=40, d=8, seed=0, p=0.4):
    return (np.random.default_rng(seed).random((n, d)) < p).astype(np.float64)


def _fit(X, **kw):
    return SparseBernoulliRBM(**{**dict(n_components=5, epsilon=2.0, n_iter=2,
                                        random_state=0), **kw}).fit(X)


def _dense_hidden(est, X):
    W = est.components_.toarray().astype(np.float64).T
    return expit(np.asarray(X, np.float64) @ W + est.intercept_hidden_.astype(np.float64))


def test_integer_and_boolean_input_is_read_as_float64():
    X = _binary()
    ref = _fit(X)
    for Xi in (X.astype(np.int64), X.astype(bool)):
        est = _fit(Xi)
        assert est.rbm_.dtype == np.float64
        np.testing.assert_array_equal(est.components_.toarray(), ref.components_.toarray())
    m32 = _fit(X.astype(np.float32))  # float32 weights: non-float input still gives float64
    for Xi in (X.astype(bool), X.astype(np.int8)):
        out = m32.transform(Xi)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, _dense_hidden(m32, X), rtol=1e-6)


def test_float32_input_to_float64_weights():
    X = _binary()
    est = _fit(X)
    out = est.transform(X.astype(np.float32))  # 0/1 convert exactly: the float64 features
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, est.transform(X))
    # a sample's score depends on its values, not on the dtype they come in
    np.testing.assert_array_equal(est.score_samples(X.astype(np.float32)), est.score_samples(X))


def test_one_feature_scores_flip_that_feature():
    X = _binary(30, 1, p=0.5)
    est = _fit(X, n_components=3, epsilon=1.0)
    W = est.components_.toarray().T
    bh, bv = est.intercept_hidden_, est.intercept_visible_

    def free_energy(V):
        return -V @ bv - np.logaddexp(0, V @ W + bh).sum(axis=1)
    want = -np.logaddexp(0, free_energy(X) - free_energy(1 - X))
    np.testing.assert_allclose(est.score_samples(X), want, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gibbs_states_are_in_the_dtype_of_the_weights(dtype):
    X = _binary()
    est = _fit(X.astype(dtype))
    for Xi in (X, X.astype(np.float32)):
        g = est.gibbs(Xi)
        assert g.dtype == dtype and g.shape == X.shape and set(np.unique(g)) <= {0.0, 1.0}


@pytest.mark.parametrize("backend", _kernels.available())
def test_the_backend_asked_for_runs_every_method(backend):
    """The model uses the kernels of ``backend`` (whatever ``auto`` would pick), also for input
    of another float dtype than the weights."""
    X = _binary()
    for n_iter in (0, 1):
        est = _fit(X.astype(np.float32), backend=backend, n_iter=n_iter)
        assert est.rbm_.kernels.name == backend
        np.testing.assert_allclose(est.transform(X), _dense_hidden(est, X), rtol=1e-6)
        assert est.gibbs(X).dtype == np.float32


def test_wrong_number_of_features_after_fit():
    est = _fit(_binary(d=6))
    for method in ("transform", "score_samples", "gibbs"):
        with pytest.raises(ValueError, match="X has 5 features, but SparseBernoulliRBM is "
                                             "expecting 6 features as input"):
            getattr(est, method)(_binary(d=5))


def test_out_of_range_after_fit_names_X():
    est = _fit(_binary())
    X = _binary()
    X[0, 0] = 2.0
    for method in ("transform", "score_samples", "gibbs"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(est, method)(X)
        assert [str(w.message).split(";")[0] for w in caught] == [
            "SparseBernoulliRBM: X has values in [0, 2], outside the [0, 1] that Bernoulli "
            "visible units model"]


def test_rows_wider_than_the_chunk_budget_go_one_at_a_time(monkeypatch):
    X = sp.csr_array(_binary(12, 8))
    est = _fit(X)
    want = (est.transform(X), est.score_samples(X))
    seen = []
    real = sp.csr_array.toarray

    def spy(self, *a, **k):
        seen.append(self.shape[0])
        return real(self, *a, **k)
    monkeypatch.setattr(sp.csr_array, "toarray", spy)
    monkeypatch.setattr(rbm_estimator, "_CHUNK_VALUES", 4)  # less than one row
    np.testing.assert_array_equal(est.transform(X), want[0])
    np.testing.assert_array_equal(est.score_samples(X), want[1])
    assert seen and max(seen) == 1


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_initial_topology_has_the_documented_density(random_state):
    """Each connection independently with p = epsilon (n_v + n_h) / (n_v n_h) (Erdős–Rényi)."""
    n_v, n_h, eps = 40, 40, 8.0
    p = eps * (n_v + n_h) / (n_v * n_h)  # 0.4
    est = _fit(_binary(20, n_v), n_components=n_h, epsilon=eps, n_iter=0,
               random_state=random_state)
    n = n_v * n_h
    assert abs(est.rbm_.W.nnz - p * n) < 4 * np.sqrt(n * p * (1 - p))
    # the initial weights: normal with standard deviation 0.05 (SET-RBM's randn() / 20)
    assert 0.045 < est.rbm_.W.data.std() < 0.055 and abs(est.rbm_.W.data.mean()) < 0.005


def test_regrown_weights_follow_the_initial_law():
    X = _binary(60, 60)
    kw = dict(n_components=40, epsilon=5.0, zeta=0.3, learning_rate=1e-9, weight_decay=0.0,
              batch_size=20, random_state=3)
    start = _fit(X, n_iter=0, **kw).rbm_.W
    end = _fit(X, n_iter=2, **kw).rbm_.W  # epoch 1 regrows; epoch 2 only removes
    old = set(zip(*start.nonzero()))
    r, c = end.nonzero()
    new = np.array([end[i, j] for i, j in zip(r, c) if (i, j) not in old])
    assert len(new) > 50
    # N(0, 0.05) drawn; the smallest magnitudes then pruned, so the spread grows a little
    assert 0.04 < new.std() < 0.09


def test_verbose_false_shows_no_progress_bar_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    _fit(_binary(), n_iter=2)
    assert err.getvalue() == ""


@pytest.mark.parametrize("random_state", [0, 5])
def test_pcd_chains_start_from_random_state(monkeypatch, random_state):
    """The one generator of random_state draws the topology, then the persistent chains."""
    X = _binary(30, 8)
    started = []
    real = rbm_estimator.RBMTrainer.fit

    def spy(self, *a, **k):
        started.append(None if self.chains is None else self.chains.copy())
        return real(self, *a, **k)
    monkeypatch.setattr(rbm_estimator.RBMTrainer, "fit", spy)
    est = _fit(X, persistent=True, batch_size=6, random_state=random_state)
    rng = np.random.default_rng(_seed(random_state))
    model = SparseRBM.erdos_renyi(8, 5, epsilon=2.0, law="bernoulli", rng=rng)
    want = model.init_chains(X, 6, rng)
    assert est.rbm_.W.shape == (8, 5)
    assert started[0] is not None
    np.testing.assert_array_equal(started[0], want)
