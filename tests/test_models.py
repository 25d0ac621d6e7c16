"""Whole-model gradients against a dense masked NumPy MLP and against finite differences."""

import dense_reference as dref
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_csr

from sparsemlp import _kernels
from sparsemlp.nn.functions import loss_value, make_activation, output_delta
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.nn.mlp import SparseMLP

CASES = [
    # hidden activation, output activation, loss
    ("relu", "softmax", "cross_entropy"),
    ("tanh", "sigmoid", "mse"),
    ("leaky_relu", "softmax", "mse"),
    ("sigmoid", "identity", "mse"),
    ("all_relu", "softmax", "cross_entropy"),
]


def _model(sizes, acts, backend, dtype, index_dtype, seed, density=0.4, alpha=0.3):
    rng = np.random.default_rng(seed)
    layers, Ms, Ws = [], [], []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        er = (1,) if i == 0 else ()   # an empty row (input feature with no connection)
        ec = (0,) if i < len(sizes) - 2 else ()  # an empty column (dead hidden unit)
        ip, ix, d = random_csr(a, b, density, rng, dtype, index_dtype, er, ec)
        W = sp.csr_array((d, ix, ip), shape=(a, b))
        W.indices, W.indptr = ix, ip
        lay = SparseLinear(W, kernels=backend)
        lay.b[:] = rng.standard_normal(b) * 0.1
        layers.append(lay)
        Ws.append(W.toarray().astype(np.float64))
        Ms.append((W.toarray() != 0).astype(np.float64))
    n = len(layers)
    activations = [make_activation(acts[1] if i == n - 1 else acts[0], alpha, i) for i in range(n)]
    return SparseMLP(layers, activations), Ws, Ms


def _ref_names(model):
    names, alphas = [], []
    for a in model.activations:
        if a.name == "leaky_relu":
            names.append("leaky_relu")
            alphas.append(a.alpha)
        else:
            names.append(a.name)
            alphas.append(0.0)
    return names, alphas


def _sparse_grads(model, X, Y, loss):
    xt = np.ascontiguousarray(X.T, dtype=model.dtype)
    yt = np.ascontiguousarray(Y.T, dtype=model.dtype)
    yhat = model.forward(xt, train=True)
    z = model._cache[-1][1]
    delta = output_delta(loss, model.activations[-1], z, yhat, yt)
    flat, grads = model.make_grads()
    model.backward(delta, grads)
    B = X.shape[0]
    return [g / B for g in grads], yhat


@pytest.mark.parametrize("acts_loss", CASES, ids=["-".join(c) for c in CASES])
def test_gradients_match_dense_reference(backend, dtype, index_dtype, acts_loss, seed):
    hid, out, loss = acts_loss
    sizes = [9, 7, 6, 4]
    model, Ws, Ms = _model(sizes, (hid, out), backend, dtype, index_dtype, seed)
    rng = np.random.default_rng(seed + 1)
    B = 5
    X = rng.standard_normal((B, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], B)]
    names, alphas = _ref_names(model)
    bs = [la.b.astype(np.float64) for la in model.layers]
    gW, gb = dref.gradients(Ws, Ms, bs, names, X, Y, loss, alphas)
    grads, yhat = _sparse_grads(model, X, Y, loss)
    ref_out = dref.forward(Ws, bs, names, X, alphas)[-1][1]
    rt = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(yhat.T, ref_out, rtol=rt, atol=rt)
    for i, la in enumerate(model.layers):
        rows = np.repeat(np.arange(la.n_in), np.diff(la.W.indptr))
        np.testing.assert_allclose(grads[2 * i], gW[i][rows, la.W.indices], rtol=rt, atol=rt)
        np.testing.assert_allclose(grads[2 * i + 1], gb[i], rtol=rt, atol=rt)
        # gradient is exactly zero off the pattern in the reference: nothing to compare there


@pytest.mark.parametrize("acts_loss", CASES, ids=["-".join(c) for c in CASES])
def test_gradients_match_finite_differences(acts_loss, seed):
    hid, out, loss = acts_loss
    sizes = [6, 5, 4, 3]
    model, _, _ = _model(sizes, (hid, out), "numpy", np.float64, np.int32, seed)
    rng = np.random.default_rng(seed + 2)
    B = 4
    X = rng.standard_normal((B, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], B)]
    grads, _ = _sparse_grads(model, X, Y, loss)
    xt, yt = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)

    def L():
        return loss_value(loss, model.forward(xt), yt)

    h = 1e-6
    for p, g in zip(model.parameters(), grads):
        for k in range(p.shape[0]):
            old = p[k]
            p[k] = old + h
            lp = L()
            p[k] = old - h
            lm = L()
            p[k] = old
            fd = (lp - lm) / (2 * h)
            assert abs(fd - g[k]) <= 1e-6 + 1e-5 * abs(fd), (k, fd, g[k])


def test_dropout_gradient_matches_dense_reference(backend, seed):
    """Inverted dropout: the same mask scales activations and gates the backward delta."""
    sizes = [8, 6, 5, 3]
    model, Ws, Ms = _model(sizes, ("relu", "softmax"), backend, np.float64, np.int32, seed)
    model.dropout = 0.4
    rng = np.random.default_rng(seed + 3)
    B = 6
    X = rng.standard_normal((B, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], B)]
    xt = np.ascontiguousarray(X.T)
    yhat = model.forward(xt, train=True, rng=np.random.default_rng(7))
    masks = [c[3].T.copy() for c in model._cache[:-1]]
    assert all(set(np.unique(m)) <= {0.0, 1 / 0.6} for m in masks)
    z = model._cache[-1][1]
    delta = output_delta("cross_entropy", model.activations[-1], z, yhat, Y.T)
    _, grads = model.make_grads()
    model.backward(delta, grads)
    bs = [la.b for la in model.layers]
    gW, gb = dref.gradients(Ws, Ms, bs, ["relu", "relu", "softmax"], X, Y, "cross_entropy",
                            masks=masks + [None])
    for i, la in enumerate(model.layers):
        rows = np.repeat(np.arange(la.n_in), np.diff(la.W.indptr))
        np.testing.assert_allclose(grads[2 * i] / B, gW[i][rows, la.W.indices], atol=1e-12)
        np.testing.assert_allclose(grads[2 * i + 1] / B, gb[i], atol=1e-12)


def test_set_quirk_delta_matches_reference_formula():
    """The SET-MLP code's output delta (Mocanu et al. 2018): (yhat - y) * s(yhat) * (1 - s(yhat)), no 2/C."""
    rng = np.random.default_rng(0)
    yhat = rng.random((5, 3))
    y = np.eye(5)[:, :3]
    s = 1 / (1 + np.exp(-yhat))
    got = output_delta("mse", make_activation("sigmoid"), None, yhat, y, set_quirk=True)
    np.testing.assert_array_equal(got, (yhat - y) * (s * (1 - s)))


def test_model_rejects_bad_construction():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sizes"):
        SparseMLP.erdos_renyi([5], rng=rng)
    with pytest.raises(ValueError, match="sizes\\[1\\]"):
        SparseMLP.erdos_renyi([5, -3, 2], rng=rng)
    with pytest.raises(ValueError, match="dropout"):
        SparseMLP.erdos_renyi([5, 4, 2], rng=rng, dropout=1.0)
    with pytest.raises(ValueError, match="Unknown activation"):
        SparseMLP.erdos_renyi([5, 4, 2], rng=rng, activation="swish")
    m = SparseMLP.erdos_renyi([5, 4, 2], epsilon=1, rng=rng, kernels="numpy")
    assert m.sizes == [5, 4, 2]
    assert _kernels.get("numpy") is m.kernels


def test_original_dropout_matches_dense_oracle():
    """dropout_kind='original' (SET tutorials): unscaled mask, no backward mask, (1-p)*z at inference."""
    rate, B = 0.3, 5
    rng = np.random.default_rng(3)
    m = SparseMLP.erdos_renyi([6, 8, 7, 3], epsilon=3, rng=rng, dtype=np.float64, dropout=rate,
                              dropout_kind="original", kernels="numpy")
    for la in m.layers:
        la.b[:] = rng.normal(size=la.n_out)
    Ws = [la.W.toarray() for la in m.layers]  # tiny oracle model only
    bs = [la.b.copy() for la in m.layers]
    X = rng.normal(size=(B, 6))
    Y = np.eye(3)[rng.integers(0, 3, B)]
    # inference: z_l *= (1 - rate) for every layer after the first, bias included
    a = X
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W + b
        if i > 0:
            z = z * (1 - rate)
        a = np.maximum(z, 0) if i < 2 else dref.act("softmax", z)
    np.testing.assert_allclose(m.forward(np.ascontiguousarray(X.T)).T, a, rtol=1e-12)
    # training: masks from the same generator draws the model makes (feature-major)
    seed_rng = np.random.default_rng(11)
    masks = [(seed_rng.random((n, B), dtype=np.float32) >= rate).T.astype(float) for n in (8, 7)]
    out = m.forward(np.ascontiguousarray(X.T), train=True, rng=np.random.default_rng(11))
    zs, acts_ = [], [X]
    a = X
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W + b
        zs.append(z)
        a = np.maximum(z, 0) * masks[i] if i < 2 else dref.act("softmax", z)
        acts_.append(a)
    np.testing.assert_allclose(out.T, a, rtol=1e-12)
    flat, grads = m.make_grads()
    m.backward(np.ascontiguousarray((a - Y).T), grads)
    delta = a - Y
    for i in (2, 1, 0):
        gW = acts_[i].T @ delta
        Wi = m.layers[i].W
        r, c = np.repeat(np.arange(Wi.shape[0]), np.diff(Wi.indptr)), Wi.indices
        np.testing.assert_allclose(grads[2 * i], gW[r, c], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads[2 * i + 1], delta.sum(axis=0), rtol=1e-10, atol=1e-12)
        if i:
            delta = (delta @ Ws[i].T) * (zs[i - 1] > 0)  # no dropout mask on the delta
