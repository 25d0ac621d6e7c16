"""Toeplitz-like layers train at the learning rates of the other layers: the curvature of their
parametrisation does not grow with n, and a toy regression falls at a dense layer's step size."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import toeplitz

from sparsemlp import SparseMLP, approx
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.nn.optim import make_optimizer


def _top_gauss_newton_eigenvalue(layer, iters=25):
    """Largest eigenvalue of J^T J, J the Jacobian of the layer's dense matrix w.r.t. its values.

    J d comes from the forward pass on the identity (the matrix is bilinear in the generators, so
    the central difference with step 1 is exact); J^T M is the backward pass with x = I, dy = M."""
    n = layer.n_in
    eye = np.eye(n)
    v0 = layer.values.copy()

    def matrix(v):
        layer.values[:] = v
        out = np.empty((n, n))
        layer.forward(eye, out)
        return out - layer.b[:, None]

    d = np.random.default_rng(0).standard_normal(layer.nnz)
    lam = 0.0
    for _ in range(iters):
        Jd = (matrix(v0 + d) - matrix(v0 - d)) / 2
        layer.values[:] = v0
        dw, db = np.empty(layer.nnz), np.empty(n)
        layer.backward(eye, np.ascontiguousarray(Jd), dw, db)
        lam = float(np.linalg.norm(dw))
        d = dw / lam
    return lam


def test_layer_curvature_does_not_grow_with_n():
    """In the approximation's own generators the top eigenvalue grew with n (35 at n = 32, 650
    at n = 256; 1.2 and 0.7 scaled): a learning rate that trains a dense layer made a wide Toeplitz-like layer
    diverge. The layer's scaled generators keep it O(1), like a dense layer's (1)."""
    tops = {}
    for n in (32, 256):
        W = np.random.default_rng(n).standard_normal((n, n)) / np.sqrt(n)
        a = approx.toeplitz_like(W, share=0.1, refine_iter=5)
        layer = a.to_layer(dtype=np.float64)
        tops[n] = _top_gauss_newton_eigenvalue(layer)
        np.testing.assert_allclose(layer.to_approximation().dense(), a.dense(), atol=1e-12)
    assert max(tops.values()) < 5, tops
    assert tops[256] < 3 * tops[32], tops


def _toy_losses(layer, T, lr, epochs=5):
    n = T.shape[0]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, n)).astype(np.float32)
    Y = X @ T.T.astype(np.float32)
    model = SparseMLP.from_weights([sp.csr_array(np.ones((n, n), np.float32))],
                                   output_activation="identity")
    model.replace_layer(0, layer)
    optim = make_optimizer("sgd", model.parameters(), lr=lr, weight_decay=0.0)
    _, grads = model.make_grads()

    def epoch(train):
        total = 0.0
        for s in range(0, X.shape[0], 32):
            xt, yt = np.ascontiguousarray(X[s:s + 32].T), np.ascontiguousarray(Y[s:s + 32].T)
            out = model.forward(xt, train=train)
            total += float(np.sum((out - yt) ** 2))
            if train:
                model.backward(2 * (out - yt) / n, grads)
                optim.step(grads, xt.shape[1])
        return total / X.size

    with np.errstate(all="ignore"):
        return [epoch(False)] + [epoch(True) or epoch(False) for _ in range(epochs)]


@pytest.mark.parametrize("kind", ["toeplitz_like", "csr"])
def test_toy_regression_falls_at_a_dense_layers_learning_rate(kind):
    """A 256 x 256 layer fitted to a Toeplitz teacher from the approximation of a noisy copy, SGD
    with momentum at lr 1: a dense CSR layer falls there, and so must the Toeplitz-like layer
    (with the unscaled generators it gave NaN in the first epoch)."""
    n = 256
    rng = np.random.default_rng(7)
    T = toeplitz(rng.standard_normal(n), rng.standard_normal(n)) / np.sqrt(n)
    a = approx.toeplitz_like(T + rng.standard_normal((n, n)) / np.sqrt(n), share=4 / n,
                             refine_iter=5)
    layer = (a.to_layer(dtype=np.float32) if kind == "toeplitz_like"
             else SparseLinear(sp.csr_array(a.dense().T.astype(np.float32))))
    losses = _toy_losses(layer, T, lr=1.0)
    assert np.all(np.isfinite(losses)) and np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("kind", ["toeplitz_like", "low_rank"])
@pytest.mark.parametrize("dropout_kind", ["inverted", "original"])
def test_bias_correction_keeps_the_mean_pre_activation(kind, dropout_kind):
    """approximate_layer(calib=X): over the calibration inputs every output of the new layer has
    the mean pre-activation of the dense layer (oracle: the model's forward pass in NumPy)."""
    rng = np.random.default_rng(3)
    sizes = [12, 16, 16, 3]
    Ws = [rng.standard_normal((a, b)) / np.sqrt(a) - 0.2 for a, b in zip(sizes, sizes[1:])]
    bs = [rng.standard_normal(b) for b in sizes[1:]]
    layers = [SparseLinear(sp.csr_array(W), b) for W, b in zip(Ws, bs)]
    from sparsemlp.nn.functions import make_activation

    model = SparseMLP(layers, [make_activation(f) for f in ("relu", "relu", "softmax")],
                      dropout=0.25, dropout_kind=dropout_kind)
    X = rng.uniform(0, 1, (200, 12))
    h = np.maximum(X @ Ws[0] + bs[0], 0)  # "original" dropout scales only later layers
    want = (h @ Ws[1] + bs[1]).mean(axis=0)  # mean pre-activation of the dense layer 1
    a = approx.approximate_layer(model, 1, kind, share=0.25, calib=X)
    got = (h @ a.dense().T + model.layers[1].b).mean(axis=0)
    np.testing.assert_allclose(got, want, atol=1e-9)
    plain = SparseMLP([SparseLinear(sp.csr_array(W), b) for W, b in zip(Ws, bs)],
                      [make_activation(f) for f in ("relu", "relu", "softmax")])
    approx.approximate_layer(plain, 1, kind, share=0.25)
    np.testing.assert_array_equal(plain.layers[1].b, bs[1])  # no calib: the bias is kept


def test_bias_correction_refuses_bad_calibration_inputs():
    model = SparseMLP.from_weights([sp.csr_array(np.ones((6, 6)))], output_activation="identity")
    with pytest.raises(ValueError, match=r"calib must be numeric model inputs of shape \(n_samples, 6\)"):
        approx.approximate_layer(model, 0, "low_rank", share=0.5, calib=np.ones((4, 5)))
    with pytest.raises(ValueError, match="calib holds NaN"):
        approx.approximate_layer(model, 0, "low_rank", share=0.5, calib=np.full((4, 6), np.nan))
    assert model.layers[0].kind == "csr"  # refused before anything changed
