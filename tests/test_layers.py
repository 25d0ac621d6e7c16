"""SparseLinear: the small-batch scatter forward gives the gather's bits; lazy index."""

import numpy as np
import pytest

from sparsemlp.nn import layers
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.topology import erdos_renyi


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("B", [1, 2, 3, 4])
def test_scatter_forward_is_bitwise_the_gather(monkeypatch, dtype, index_dtype, B):
    rng = np.random.default_rng(3)
    W = erdos_renyi(700, 500, epsilon=8, rng=rng, dtype=dtype, index_dtype=index_dtype)
    layer = SparseLinear(W, rng.standard_normal(500).astype(dtype))
    xt = rng.standard_normal((700, B)).astype(dtype)
    xt[xt < 0] = 0  # ReLU-like inputs, exact zeros included
    gather = np.empty((500, B), dtype)
    monkeypatch.setattr(layers, "_SCATTER_MIN_NNZ", 10**12)
    layer.forward(xt, gather)
    scatter = np.empty((500, B), dtype)
    monkeypatch.setattr(layers, "_SCATTER_MIN_NNZ", 0)
    layer.forward(xt, scatter)
    assert np.array_equal(gather, scatter)
    assert scatter.dtype == dtype


def test_index_is_lazy_and_released():
    rng = np.random.default_rng(0)
    layer = SparseLinear(erdos_renyi(40, 30, epsilon=4, rng=rng))
    layer.release_index()
    assert layer._perm is None
    perm = layer.perm  # rebuilt on use
    assert perm.shape == (layer.nnz,)
    np.testing.assert_array_equal(layer.W.data[perm],
                                  layer.W.T.tocsr().data)  # column order of the values
