"""Trainable structured layers (``Approximation.to_layer``): forward and backward of every kind
against the dense matrix the approximation assembles (``dense()``, built from the parameters and
not from the products) and against finite differences of the layer's loss."""

import numpy as np
import pytest

from sparsemlp import approx
from sparsemlp.approx.layers_sss import affine_scan

M, N = 24, 18  # the y = A x orientation: a layer with 18 inputs and 24 outputs
BATCH = 5


def _build(kind, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, N))
    if kind == "low_rank":
        return approx.low_rank(W, share=0.4)
    if kind == "sss":
        a = approx.sss(W, share=0.7, n_states=4)
        assert a.causal_dims[1:-1].min() > 0 and a.anticausal_dims[1:-1].min() > 0
        return a
    if kind == "sss_ragged":  # state dimensions that differ between stages (padded stacks)
        ins, outs = [4, 5, 3, 4, 2], [6, 4, 5, 3, 6]  # N and M entries
        cd, ad = [0, 1, 3, 2, 2, 0], [0, 2, 1, 3, 1, 0]
        g = [[rng.standard_normal(s) for s in shapes] for shapes in zip(*(
            [(outs[k], ins[k]), (cd[k + 1], cd[k]), (cd[k + 1], ins[k]), (outs[k], cd[k]),
             (ad[k], ad[k + 1]), (ad[k], ins[k]), (outs[k], ad[k + 1])] for k in range(5)))]
        return approx.Semiseparable.from_generators(*g, cd, ad)
    if kind.startswith("sparse_product"):
        return approx.sparse_product(W, share=0.4, n_factors=int(kind[-1]), last_share=0.5,
                                     n_iter=10)
    if kind == "hodlr":
        a = approx.hodlr(W, share=0.5, levels=2)
        assert (a.blocks[:, 4] == -1).any() and (a.blocks[:, 4] > 0).any()  # both kinds of leaf
        return a
    if kind == "hedlr":
        return approx.hedlr(W, share=0.5, levels=1)
    if kind == "hmatrix":
        a = approx.hmatrix(W, share=0.5, min_block=4)
        assert (a.blocks[:, 4] == -1).any() and (a.blocks[:, 4] > 0).any()
        return a
    if kind == "toeplitz_like":
        return approx.toeplitz_like(rng.standard_normal((20, 20)), share=0.4, refine_iter=3)
    raise ValueError(kind)


KINDS = ["low_rank", "sss", "sss_ragged", "sparse_product2", "sparse_product3", "hodlr", "hedlr", "hmatrix",
         "toeplitz_like"]


@pytest.fixture(params=KINDS)
def case(request):
    a = _build(request.param)
    rng = np.random.default_rng(1)
    m, n = a.shape
    b = rng.standard_normal(m)
    return dict(a=a, layer=a.to_layer(b, dtype=np.float64), b=b, A=a.dense(),
                x=rng.standard_normal((n, BATCH)), dy=rng.standard_normal((m, BATCH)))


def _forward(layer, x):
    out = np.empty((layer.n_out, x.shape[1]), layer.dtype)
    layer.forward(np.ascontiguousarray(x, layer.dtype), out)
    return out


def _backward(layer, x, dy, with_dx=True):
    dw, db = np.empty(layer.nnz, layer.dtype), np.empty(layer.n_out, layer.dtype)
    dx = np.empty_like(x) if with_dx else None
    layer.backward(x, dy, dw, db, dx)
    return dw, db, dx


@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 9, 16, 17, 30])
@pytest.mark.parametrize("reverse", [False, True])
def test_affine_scan_equals_the_sequential_recursion(K, reverse):
    rng = np.random.default_rng(K)
    T, c = 0.6 * rng.standard_normal((K, 3, 3)), rng.standard_normal((K, 3, 2))
    want = c.copy()
    for k in (range(K - 2, -1, -1) if reverse else range(1, K)):
        want[k] += T[k] @ want[k + 1 if reverse else k - 1]
    got = affine_scan(T, c.copy(), reverse=reverse)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_layer_shape_and_parameters(case):
    layer, a = case["layer"], case["a"]
    assert (layer.n_in, layer.n_out) == (a.shape[1], a.shape[0])
    assert layer.nnz == a.n_params == layer.values.size
    values, b = layer.parameters()
    assert values is layer.values and b is layer.b
    assert layer.kind == a.kind


def test_forward_matches_dense_matrix_and_matmat(case):
    layer, A, x, b = case["layer"], case["A"], case["x"], case["b"]
    out = _forward(layer, x)
    np.testing.assert_allclose(out, A @ x + b[:, None], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out, case["a"].matmat(x) + b[:, None], rtol=1e-10, atol=1e-10)


def test_input_and_bias_gradients_match_dense_matrix(case):
    layer, A, x, dy = case["layer"], case["A"], case["x"], case["dy"]
    _forward(layer, x)
    dw, db, dx = _backward(layer, x, dy)
    np.testing.assert_allclose(dx, A.T @ dy, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=1), rtol=1e-12)


def _loss(layer, x, dy):
    return float(np.sum(dy * _forward(layer, x)))


def test_parameter_gradient_matches_finite_differences(case):
    """d/dv_k of sum(dy * layer(x)) by central differences, for 40 random parameters."""
    layer, x, dy = case["layer"], case["x"], case["dy"]
    _forward(layer, x)
    dw, _, _ = _backward(layer, x, dy)
    rng = np.random.default_rng(2)
    idx = rng.choice(layer.nnz, size=min(40, layer.nnz), replace=False)
    eps = 1e-6
    fd = np.empty(idx.size)
    for j, k in enumerate(idx):
        v = layer.values[k]
        layer.values[k] = v + eps
        up = _loss(layer, x, dy)
        layer.values[k] = v - eps
        down = _loss(layer, x, dy)
        layer.values[k] = v
        fd[j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(dw[idx], fd, rtol=1e-6, atol=1e-6)


def test_parameter_gradient_matches_dense_directional_derivative(case):
    """<dw, d> = <dy x^T, dA(d)>, dA(d) the derivative of the assembled dense matrix along d."""
    layer, x, dy = case["layer"], case["x"], case["dy"]
    _forward(layer, x)
    dw, _, _ = _backward(layer, x, dy)
    d = np.random.default_rng(3).standard_normal(layer.nnz)
    v0, eps = layer.values.copy(), 1e-5
    layer.values[:] = v0 + eps * d
    up = layer.to_approximation().dense()
    layer.values[:] = v0 - eps * d
    down = layer.to_approximation().dense()
    layer.values[:] = v0
    dA = (up - down) / (2 * eps)
    want = float(np.sum((dy @ x.T) * dA))
    assert abs(dw @ d - want) <= 1e-7 * max(1.0, abs(want))


def test_backward_without_input_gradient_and_after_another_forward(case):
    layer, x, dy = case["layer"], case["x"], case["dy"]
    _forward(layer, x)
    dw, _, _ = _backward(layer, x, dy)
    _forward(layer, x)
    dw2, _, _ = _backward(layer, x, dy, with_dx=False)
    np.testing.assert_array_equal(dw, dw2)
    # the intermediates kept by a forward pass on another input must not be used
    _forward(layer, np.random.default_rng(4).standard_normal(x.shape))
    dw3, _, dx3 = _backward(layer, x, dy)
    np.testing.assert_allclose(dw3, dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx3, case["A"].T @ dy, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_approximation_gives_the_parameters_back_exactly(case, dtype):
    a = case["a"]
    layer = a.to_layer(case["b"], dtype=dtype)
    back = layer.to_approximation()
    assert type(back) is type(a) and back.shape == a.shape
    want, got = a.to_arrays(), back.to_arrays()
    assert want.keys() == got.keys()
    for k in want:
        w = np.asarray(want[k])
        if w.dtype.kind == "f" and k != "rel_error":
            w = w.astype(dtype).astype(np.float64)  # what a float32 layer can hold
        np.testing.assert_array_equal(np.asarray(got[k]), w, err_msg=k)
    # and the rebuilt layer has the same values, so a checkpoint round trip is bit for bit
    np.testing.assert_array_equal(back.to_layer(dtype=dtype).values, layer.values)


def test_float32_layer_matches_float64(case):
    a, x = case["a"], case["x"]
    l32 = a.to_layer(case["b"], dtype=np.float32)
    assert l32.values.dtype == np.float32
    out32 = _forward(l32, x.astype(np.float32))
    ref = case["A"] @ x + case["b"][:, None]
    np.testing.assert_allclose(out32, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    dw32, _, dx32 = _backward(l32, x.astype(np.float32), case["dy"].astype(np.float32))
    _forward(case["layer"], x)
    dw64, _, _ = _backward(case["layer"], x, case["dy"])
    np.testing.assert_allclose(dw32, dw64, rtol=1e-3, atol=1e-3 * np.abs(dw64).max())


def test_training_a_layer_leaves_its_approximation_unchanged(case):
    a = case["a"]
    before = {k: np.array(v, copy=True) for k, v in a.to_arrays().items()}
    layer = a.to_layer(dtype=np.float64)
    layer.values += 1.0
    for k, v in a.to_arrays().items():
        np.testing.assert_array_equal(v, before[k])


def test_failed_approximation_and_bad_arguments_are_refused():
    a = _build("low_rank")
    with pytest.raises(ValueError, match="bias must be 24 finite values"):
        a.to_layer(np.zeros(5))
    with pytest.raises(ValueError, match="bias must be 24 finite values"):
        a.to_layer(np.full(24, np.nan))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        a.to_layer(dtype=np.int32)
    bad = approx.LowRank(a.L, a.R, failed=True, message="did not converge")
    with pytest.raises(ValueError, match="flagged as failed \\(did not converge\\)"):
        bad.to_layer()
