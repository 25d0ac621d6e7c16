"""nn.inference: the layer-by-layer inference pass that pruning and bias correction share
(oracle: a NumPy forward pass through the layers' dense matrices)."""

import numpy as np
import pytest

from sparsemlp import SparseMLP, approx
from sparsemlp.nn.inference import inference_scale, layer_input, layer_output


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
