"""Pruning a model that holds structured layers (sparsemlp.approx): only CSR layers are pruned,
the structured ones are copied, and calibration inputs pass through them (oracle: the same
pruning of a model whose structured layer is a CSR layer holding the same matrix)."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseMLP, approx, prune
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.prune.errors import PruneError


def _models():
    m = SparseMLP.erdos_renyi([12, 20, 15, 4], epsilon=6, rng=np.random.default_rng(0),
                              dtype=np.float64)
    approx.approximate_layer(m, 1, "low_rank", share=0.3)
    same = SparseMLP.erdos_renyi([12, 20, 15, 4], epsilon=6, rng=np.random.default_rng(0),
                                 dtype=np.float64)
    la = m.layers[1]
    W = la.to_approximation().dense().T  # (n_in, n_out), a rank-deficient dense matrix
    same.replace_layer(1, SparseLinear(sp.csr_array(W), la.b.copy()))
    return m, same


@pytest.mark.parametrize("criterion,compensate", [("obs", "refit"), ("obs", "obs"),
                                                  ("magnitude", "refit")])
def test_pruning_after_a_structured_layer_equals_pruning_its_csr_twin(criterion, compensate):
    m, same = _models()
    X = np.random.default_rng(1).uniform(0, 1, (60, 12))
    got, _ = prune.prune(m, density=0.2, calib=X, criterion=criterion, compensate=compensate)
    want, _ = prune.prune(same, density=0.2, calib=X, criterion=criterion,
                          compensate=compensate, layers=[0, 2])
    assert got.layers[1].kind == "low_rank"  # kept, not pruned
    for i in (0, 2):
        a, b = got.layers[i], want.layers[i]
        np.testing.assert_array_equal(a.W.indptr, b.W.indptr)
        np.testing.assert_array_equal(a.W.indices, b.W.indices)
        np.testing.assert_allclose(a.W.data, b.W.data, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(a.b, b.b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.predict_raw(X), want.predict_raw(X), rtol=1e-8, atol=1e-10)


def test_the_structured_layer_is_copied_not_shared():
    m, _ = _models()
    X = np.random.default_rng(1).uniform(0, 1, (30, 12))
    before = m.layers[1].to_approximation().dense().copy()
    got, _ = prune.prune(m, density=0.5, calib=X)
    for p in got.layers[1].parameters():
        p[...] = 0
    np.testing.assert_array_equal(m.layers[1].to_approximation().dense(), before)


def test_listing_a_structured_layer_is_refused():
    m, _ = _models()
    with pytest.raises(PruneError, match=r"layers 1 \(low_rank\) are structured"):
        prune.prune(m, density=0.5, calib=np.ones((5, 12)), layers=[1, 2])
    for i in range(3):
        if i != 1:
            approx.approximate_layer(m, i, "low_rank", share=0.5)
    with pytest.raises(PruneError, match="every layer of this model is structured"):
        prune.prune(m, density=0.5, calib=np.ones((5, 12)))
