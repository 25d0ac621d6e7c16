"""SparseMLP models with structured layers: gradients against the dense oracle, fine-tuning,
SET evolution around them, and replacement rules."""

import dense_reference as dref
import numpy as np
import pytest
import scipy.sparse as sp
from test_approx_layers import KINDS, _build

from sparsemlp import SparseMLP, TrainConfig, Trainer, _kernels, approx
from sparsemlp._rng import Streams
from sparsemlp.nn.functions import make_activation, output_delta
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.nn.optim import make_optimizer
from sparsemlp.topology import erdos_renyi


def _model(kind, dtype=np.float64, seed=0):
    """[7 -> n] CSR, then the structured layer (n -> m), then CSR m -> 3; tanh, softmax."""
    rng = np.random.default_rng(seed)
    a = _build(kind)
    m, n = a.shape
    layers = [SparseLinear(erdos_renyi(7, n, epsilon=3, rng=rng, dtype=dtype)),
              a.to_layer(rng.standard_normal(m), dtype=dtype),
              SparseLinear(erdos_renyi(m, 3, epsilon=2, rng=rng, dtype=dtype))]
    acts = [make_activation(f) for f in ("tanh", "tanh", "softmax")]
    return SparseMLP(layers, acts), a


@pytest.mark.parametrize("kind", KINDS)
def test_model_gradients_match_the_dense_oracle(kind):
    model, _ = _model(kind)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 7))
    y = rng.integers(0, 3, 6)
    Y = np.eye(3)[y]
    yhat = model.forward(np.ascontiguousarray(X.T), train=True)
    delta = output_delta("cross_entropy", model.activations[-1], model._cache[-1][1], yhat, Y.T)
    flat, grads = model.make_grads()
    model.backward(delta, grads)
    # the dense oracle: layer 1 as its dense matrix (n_in x n_out), CSR layers masked
    mid = model.layers[1]
    Ws = [model.layers[0].W.toarray(), mid.to_approximation().dense().T, model.layers[2].W.toarray()]
    Ms = [(Ws[0] != 0) * 1.0, np.ones_like(Ws[1]), (Ws[2] != 0) * 1.0]
    bs = [la.b for la in model.layers]
    gW, gb = dref.gradients(Ws, Ms, bs, ["tanh", "tanh", "softmax"], X, Y, "cross_entropy")
    B = X.shape[0]
    for i in (0, 2):  # CSR layers below and above the structured one
        W = model.layers[i].W
        rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
        np.testing.assert_allclose(grads[2 * i], B * gW[i][rows, W.indices], rtol=1e-9, atol=1e-12)
    for i in range(3):
        np.testing.assert_allclose(grads[2 * i + 1], B * gb[i], rtol=1e-9, atol=1e-12)
    # the structured layer's parameters: <dw, d> = <dL/dW, dW(d)> through the dense matrix
    d = rng.standard_normal(mid.nnz)
    v0, eps = mid.values.copy(), 1e-5
    mid.values[:] = v0 + eps * d
    up = mid.to_approximation().dense().T
    mid.values[:] = v0 - eps * d
    down = mid.to_approximation().dense().T
    mid.values[:] = v0
    want = B * float(np.sum(gW[1] * (up - down) / (2 * eps)))
    assert abs(grads[2] @ d - want) <= 1e-7 * max(1.0, abs(want))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_replaced_layer_loss_falls_over_5_epochs_of_fine_tuning(kind, opt):
    """Toy regression: a one-layer model, its weights replaced by a structured approximation of
    a teacher's, fine-tuned for 5 epochs with the package's optimizer against the teacher."""
    rng = np.random.default_rng(7)
    a = _build(kind)
    m, n = a.shape
    teacher = a.dense() + 0.3 * rng.standard_normal((m, n))  # not reachable by the structure
    X = rng.standard_normal((256, n)).astype(np.float32)
    Y = X @ teacher.T.astype(np.float32)
    W = sp.csr_array(rng.standard_normal((n, m)).astype(np.float32))
    model = SparseMLP.from_weights([W], output_activation="identity")
    model.replace_layer(0, a.to_layer(dtype=np.float32))
    params = model.parameters()
    lr = 0.01 if opt == "sgd" else 0.003
    optim = make_optimizer(opt, params, lr=lr, weight_decay=0.0)
    flat, grads = model.make_grads()

    def epoch_loss(train):
        total = 0.0
        for s in range(0, X.shape[0], 16):
            xt, yt = np.ascontiguousarray(X[s:s + 16].T), np.ascontiguousarray(Y[s:s + 16].T)
            out = model.forward(xt, train=train)
            total += float(np.sum((out - yt) ** 2))
            if train:
                model.backward(2 * (out - yt) / m, grads)
                optim.step(grads, xt.shape[1])
        return total / X.size

    losses = [epoch_loss(False)]
    for _ in range(5):
        epoch_loss(True)
        losses.append(epoch_loss(False))
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 0.9 * losses[0], losses
    assert model.layers[0].kind == a.kind and model.layers[0].nnz == a.n_params


def test_from_weights_takes_ready_layers_with_their_biases():
    model, _ = _model("hodlr")
    b = np.arange(model.layers[1].n_out, dtype=np.float64)
    rebuilt = SparseMLP.from_weights([model.layers[0].W, model.layers[1], model.layers[2].W],
                                     biases=[None, b, None], activation="tanh")
    assert rebuilt.layers[1] is model.layers[1]
    np.testing.assert_array_equal(rebuilt.layers[1].b, b)
    assert [la.kind for la in rebuilt.layers] == ["csr", "hodlr", "csr"]


def test_sparse_layers_lists_only_csr_layers():
    model, _ = _model("sss")
    assert model.sparse_layers() == [model.layers[0], model.layers[2]]
    assert [la.kind for la in model.layers] == ["csr", "sss", "csr"]
    assert model.nnz()[1] == model.layers[1].nnz


def test_replace_layer_and_approximate_layer_refuse_bad_input():
    rng = np.random.default_rng(0)
    model = SparseMLP.erdos_renyi([10, 12, 4], epsilon=5, rng=rng)
    good = _build("low_rank")  # 24 x 18: the wrong size for every layer here
    with pytest.raises(ValueError, match="layer 1 maps 12 inputs to 4 outputs, but the new "
                                         "layer maps 18 to 24"):
        model.replace_layer(1, good.to_layer(dtype=np.float32))
    a = approx.low_rank(rng.standard_normal((12, 10)), share=0.5)
    with pytest.raises(ValueError, match="has dtype float32, but the new layer float64"):
        model.replace_layer(0, a.to_layer(dtype=np.float64))
    other = next(k for k in _kernels.available() if k != model.kernels.name)
    with pytest.raises(ValueError, match=f"runs on the '{model.kernels.name}' kernels, but the "
                                         f"new layer on '{other}'"):
        model.replace_layer(0, a.to_layer(kernels=other))
    with pytest.raises(TypeError, match="is not a layer"):
        model.replace_layer(0, a)
    with pytest.raises(IndexError, match="layers 0..1. Got 2"):
        model.replace_layer(2, a.to_layer())
    with pytest.raises(ValueError, match="kind"):
        approx.approximate_layer(model, 0, "svd", share=0.5)
    got = approx.approximate_layer(model, -2, "low_rank", share=0.5)
    assert model.layers[0].kind == "low_rank" and got.shape == (12, 10)
    with pytest.raises(ValueError, match="already a low_rank layer"):
        approx.approximate_layer(model, 0, "sss", share=0.5)


def test_approximate_layer_keeps_bias_and_approximates_the_layer_weights():
    rng = np.random.default_rng(1)
    model = SparseMLP.erdos_renyi([10, 12, 4], epsilon=50, rng=rng, dtype=np.float64)
    model.layers[0].b[:] = rng.standard_normal(12)
    W, b = model.layers[0].W.toarray(), model.layers[0].b.copy()
    xt = np.ascontiguousarray(rng.standard_normal((10, 5)))
    before = model.forward(xt)
    a = approx.approximate_layer(model, 0, "hodlr", share=1.0, levels=0)  # one dense leaf: exact
    assert a.rel_error < 1e-12
    np.testing.assert_allclose(a.dense(), W.T, atol=1e-12)  # the y = A x orientation
    np.testing.assert_array_equal(model.layers[0].b, b)
    np.testing.assert_allclose(model.forward(xt), before, rtol=1e-10, atol=1e-12)


def test_trainer_fine_tunes_structured_layers_and_evolves_only_csr_layers():
    """[structured, CSR, CSR]: the evolution loop must skip layer 0 by its index, so that the
    optimizer's parameter pair of the CSR layer 1 (2, 3) is the one remapped."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 16))
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1)
    cfg = TrainConfig(hidden=(20, 20), epsilon=4, epochs=3, batch_size=16, zeta=0.3,
                      checkpoint_every=0, seed=3).resolve()
    streams = Streams(cfg.seed)
    model = Trainer.from_config(cfg, 16, 3, streams=streams, verbose=False).model
    a = approx.approximate_layer(model, 0, "sss", share=0.6, n_states=4)
    tr = Trainer(model, cfg, streams=streams, verbose=False)  # optimizer over the new layer
    csr_before = model.layers[1].W.indices.copy()
    sss_before = model.layers[0].values.copy()
    tr.fit(X, y, X, y)
    assert model.layers[0].kind == "sss" and model.layers[0].nnz == a.n_params
    assert not np.array_equal(model.layers[0].values, sss_before)  # trained
    assert not np.array_equal(model.layers[1].W.indices, csr_before)  # SET rewired layer 1
    # the optimizer still updates the model's own arrays, state aligned with each of them
    for p, q in zip(tr.optimizer.params, model.parameters(), strict=True):
        assert p is q
    for state in tr.optimizer.state.values():
        assert [s.shape for s in state] == [p.shape for p in model.parameters()]
    losses = [r["train_loss"] for r in tr.history.records]
    assert losses[-1] < losses[0]


def test_non_finite_structured_weights_stop_training():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 16))
    y = (X[:, 0] > 0).astype(np.int64)
    cfg = TrainConfig(hidden=(20,), epsilon=4, epochs=2, batch_size=8, checkpoint_every=0,
                      lr=1e-30, seed=1).resolve()  # the tiny step keeps the weights as they are
    streams = Streams(cfg.seed)
    model = Trainer.from_config(cfg, 16, 2, streams=streams, verbose=False).model
    approx.approximate_layer(model, 1, "low_rank", share=0.6)
    model.layers[1].values[3] = np.inf  # the loss stays finite: the output is a softmax of inf
    tr = Trainer(model, cfg, streams=streams, verbose=False)
    with pytest.raises(FloatingPointError, match="layer 1 has non-finite weights after epoch 1|"
                                                 "non-finite weights in layer\\(s\\) \\[1\\]"):
        tr.fit(X, y)
