"""nn.inference: the layer-by-layer inference pass that pruning and bias correction share
(oracle: a NumPy forward pass through the layers' dense matrices)."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseMLP, approx
from sparsemlp.nn.inference import inference_scale, layer_input, layer_output, never_active


def _model(dropout_kind, dtype):
    rng = np.random.default_rng(4)
    m = SparseMLP.erdos_renyi([12, 20, 15, 4], epsilon=6, rng=rng, dropout=0.3,
                              dropout_kind=dropout_kind, dtype=dtype)
    for la in m.layers:
        la.b[:] = rng.normal(0, 0.3, la.n_out)
    approx.approximate_layer(m, 1, "low_rank", share=0.3)  # a structured layer in the middle
    return m


def _dense(layer):
    if layer.kind == "csr":
        return layer.W.toarray().astype(np.float64)  # (n_in, n_out)
    return layer.to_approximation().dense().T.astype(np.float64)


@pytest.mark.parametrize("dropout_kind", ["inverted", "original"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_inputs_follow_a_dense_forward_through_structured_layers(dropout_kind, dtype):
    m = _model(dropout_kind, dtype)
    X = np.random.default_rng(5).uniform(-1, 1, (9, 12))
    A = X
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for i, la in enumerate(m.layers):
        np.testing.assert_allclose(layer_input(m, i, X), A, rtol=tol, atol=tol)
        scale = 0.7 if (dropout_kind == "original" and i > 0) else 1.0
        assert inference_scale(m, i) == pytest.approx(scale)
        Z = (A @ _dense(la) + la.b) * scale
        np.testing.assert_allclose(layer_output(m, i, A), Z, rtol=tol, atol=tol)
        A = np.maximum(Z, 0) if i < len(m.layers) - 1 else None
    # the model's own inference agrees with the last layer's output
    out = m.predict_raw(X.astype(dtype))
    np.testing.assert_allclose(out, m.activations[-1].forward(
        layer_output(m, 2, layer_input(m, 2, X)).T.astype(dtype)).T, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_never_active_counts_units_never_positive_on_the_samples(dtype):
    m = _model("inverted", dtype)
    rng = np.random.default_rng(6)
    m.layers[2].b[:] = [-50.0, 50.0, 0.0, -50.0]  # units 0 and 3 of the last layer always off
    W0 = m.layers[0].W
    W0.data[W0.indices == 0] = 0.0  # unit 0 of layer 0: z = 0 exactly, never positive
    m.layers[0].b[0] = 0.0
    X = rng.uniform(-1, 1, (40, 12))
    A = X
    for i, la in enumerate(m.layers):
        Z = A @ _dense(la) + la.b
        expect = int(np.sum(np.all(Z <= 0, axis=0)))
        assert never_active(m, i, X) == expect
        assert never_active(m, i, sp.csr_array(X)) == expect  # sparse inputs too
        A = np.maximum(Z, 0)
    assert never_active(m, 2, X) >= 2 and never_active(m, 0, X) >= 1
