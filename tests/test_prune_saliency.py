"""Saliencies of sparsemlp.prune against oracles: a finite-difference Hessian diagonal of the
layer's output error (OBD), brute-force constrained least squares (OBS), and a dense forward for
the BLAS product that calibration uses on dense layers."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseMLP
from sparsemlp.prune import prune
from sparsemlp.prune.calibration import hessian, layer_output
from sparsemlp.prune.columns import LayerColumns, saliencies
from sparsemlp.prune.layer import layer_saliencies


def _net(rng, density, dtype=np.float64):
    Ws = [rng.standard_normal((9, 7)) * (rng.random((9, 7)) < density),
          rng.standard_normal((7, 5)) * (rng.random((7, 5)) < density)]
    Ws[1][:, 3] = 0.0  # an output neuron without inputs
    m = SparseMLP.from_weights([sp.csr_array(W.astype(dtype)) for W in Ws], activation="tanh",
                               output_activation="identity")
    for layer in m.layers:
        layer.b[:] = rng.standard_normal(layer.n_out)
    return m


def _entries(layer):
    """(row, column) of every entry in LayerColumns order (column-major, rows ascending)."""
    C = sp.csc_array(layer.W)
    C.sort_indices()
    cols = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
    return C.indices, cols


@pytest.mark.parametrize("density", [1.0, 0.6])
def test_obd_saliency_is_half_w2_times_a_finite_difference_hessian_diagonal(density):
    """OBD (LeCun et al. 1990): ½ w_q² ∂²E/∂w_q² with E = ½ Σ_x ‖z(x) − z₀(x)‖² the output
    error of the last layer, its second derivative taken by central differences of the model's
    own predictions (the identity output: predict_raw is z)."""
    rng = np.random.default_rng(0)
    m = _net(rng, density)
    X = rng.standard_normal((60, 9)) * np.linspace(0.2, 3, 9)
    z0 = m.predict_raw(X)
    last = m.layers[1]
    A = np.tanh(X @ m.layers[0].W.toarray() + m.layers[0].b)  # inputs of the last layer
    rows, cols = _entries(last)
    h = 1e-3
    fd = np.empty(rows.size)
    for k, (r, c) in enumerate(zip(rows, cols)):
        q = last.W.indptr[r] + np.searchsorted(last.W.indices[last.W.indptr[r]:
                                                              last.W.indptr[r + 1]], c)
        E = []
        for step in (h, -h):
            last.W.data[q] += step
            E.append(0.5 * np.sum((m.predict_raw(X) - z0) ** 2))
            last.W.data[q] -= step
        fd[k] = (E[0] + E[1]) / h ** 2  # E(0) = 0
    w = last.W.toarray()[rows, cols]
    oracle = 0.5 * w * w * fd
    got, _ = layer_saliencies(m, 1, A, "obd", damp=0.0, bias=True, normalise=False)
    np.testing.assert_allclose(got, oracle, rtol=1e-6, atol=1e-12)
    # and pruning by obd removes the entries of smallest oracle saliency
    k = rows.size // 3
    p, _ = prune(m, n_remove=k, layers=[1], criterion="obd", compensate="none", calib=X)
    gone = {(r, c) for r, c in zip(rows, cols) if p.layers[1].W[[r], [c]][0] == 0}
    assert gone == {(rows[i], cols[i]) for i in np.argsort(oracle)[:k]}


@pytest.mark.parametrize("damp", [0.0, 0.05])
def test_obs_saliency_is_the_error_increase_of_the_best_compensation(damp):
    """OBS (Hassibi & Stork 1993): w_q² / (2 [H_S⁻¹]_qq), with S the coordinates of q's
    neuron, is half the smallest increase of ‖Ã δ‖² + λ‖δ‖² over changes δ of that neuron's
    weights and bias that set w_q to zero: solved for every entry by numpy.linalg.lstsq."""
    rng = np.random.default_rng(1)
    m = _net(rng, 0.6)
    X = (rng.standard_normal((80, 9)) @ rng.standard_normal((9, 9))) * np.logspace(-1, 1, 9)
    layer = m.layers[0]
    W0, b0 = layer.W.toarray(), layer.b.copy()
    At = np.hstack([X, np.ones((80, 1))])
    lam = damp * np.mean(np.sum(X * X, axis=0))
    H = hessian(X, damp=damp)
    cols = LayerColumns(layer.W, layer.b)
    got = saliencies(cols, "obs", H=H)
    rows, col = _entries(layer)
    oracle = np.empty(rows.size)
    for k, (r, j) in enumerate(zip(rows, col)):
        keep = [i for i in range(9) if i != r and W0[i, j] != 0] + [9]
        full = np.r_[W0[:, j], b0[j]]
        M, t = At[:, keep], At @ full
        if lam > 0:
            M = np.vstack([M, np.sqrt(lam) * np.eye(len(keep))])
            t = np.r_[t, np.sqrt(lam) * full[keep]]
        x = np.linalg.lstsq(M, t, rcond=None)[0]
        new = np.zeros(10)
        new[keep] = x
        d = new - full
        oracle[k] = 0.5 * (np.sum((At @ d) ** 2) + lam * d @ d)
    np.testing.assert_allclose(got, oracle, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_layer_output_of_dense_and_sparse_layers_is_the_dense_forward(dtype, density):
    """Calibration takes one BLAS product for a layer stored (nearly) dense and the layer's
    kernels otherwise; both are X W + b in the layer's dtype."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((40, 30)) * (rng.random((40, 30)) < density)
    m = SparseMLP.from_weights([sp.csr_array(W.astype(dtype))], activation="relu",
                               output_activation="identity")
    m.layers[0].b[:] = rng.standard_normal(30)
    X = rng.standard_normal((50, 40))
    want = X.astype(dtype).astype(np.float64) @ W.astype(dtype).astype(np.float64) \
        + m.layers[0].b.astype(np.float64)
    got = layer_output(m, 0, X)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    np.testing.assert_allclose(got, m.predict_raw(X.astype(dtype)), rtol=0, atol=tol)


@pytest.mark.parametrize("n,criterion,compensate", [(200, "obs", "refit"), (200, "obd", "refit"),
                                                    (100, "obs", "obs")])
def test_memory_is_hessian_plus_one_chunk_never_n_in_squared_times_n_out(monkeypatch, n,
                                                                         criterion, compensate):
    """Memory O(n_in² + nnz): sequential OBS stacks per-neuron inverses CHUNK_BYTES at a time,
    saliencies and refits factor one neuron at a time. With a 1 MiB chunk, pruning a dense
    n x n layer stays far below the n (n + 1)² float64 of all its neurons' matrices at once
    (65 MiB for n = 200, 8 MiB for n = 100; tracemalloc sees NumPy's allocations)."""
    import tracemalloc

    from sparsemlp.prune import columns

    monkeypatch.setattr(columns, "CHUNK_BYTES", 1 << 20)
    rng = np.random.default_rng(3)
    m = SparseMLP.from_weights([sp.csr_array(rng.standard_normal((n, n)))],
                               activation="relu", output_activation="identity")
    X = rng.standard_normal((300, n))
    tracemalloc.start()
    try:
        p, _ = prune(m, density=0.5, criterion=criterion, compensate=compensate, calib=X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert p.layers[0].nnz == n * n // 2
    stacked = 8 * n * (n + 1) ** 2
    assert peak < min(stacked * 0.7, 12 << 20), peak / 2**20  # measured: about 3 MiB
