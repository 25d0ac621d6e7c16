"""SparseRBM: CD-1 against a dense NumPy RBM, reference-mode reproduction of the SET-RBM run."""

import numpy as np
import pytest
from conftest import shared_data

from sparsemlp import _kernels
from sparsemlp.rbm import SparseRBM
from sparsemlp.topology import erdos_renyi

BACKENDS = _kernels.available()


def _sig(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cd1_step_matches_dense_numpy_rbm(backend):
    rng = np.random.default_rng(0)
    V, H, B = 12, 7, 5
    W = erdos_renyi(V, H, density=0.4, rng=rng, dtype=np.float64, init="normal")
    rbm = SparseRBM(W, rng.normal(size=V), rng.normal(size=H), kernels=backend)
    Wd, bv, bh = W.toarray(), rbm.b_visible.copy(), rbm.b_hidden.copy()  # tiny oracle model
    mask = Wd != 0
    X = (rng.random((B, V)) > 0.5).astype(float)
    # dense oracle with the same uniforms (sample-major draws, as the original)
    g = np.random.default_rng(5)
    u1, u2 = g.uniform(0, 1, (B, H)), g.uniform(0, 1, (B, H))
    dh = (_sig(X @ Wd + bh) > u1).astype(float)
    mv = _sig(dh @ Wd.T + bv)
    mh = (_sig(mv @ Wd + bh) > u2).astype(float)
    lr, wd = 0.1, 1e-3
    Wn = Wd + (lr * (X.T @ dh / B - mv.T @ mh / B) - wd * Wd) * mask
    bvn = bv + lr * (X.mean(0) - mv.mean(0)) - wd * bv
    bhn = bh + lr * (dh.mean(0) - mh.mean(0)) - wd * bh
    vt = np.ascontiguousarray(X.T)
    DH, MV, MH = rbm.gibbs_pass(vt, np.random.default_rng(5))
    np.testing.assert_array_equal(DH.T, dh)
    np.testing.assert_allclose(MV.T, mv, rtol=1e-13)
    rbm.cd_update(vt, DH, MV, MH, lr=lr, weight_decay=wd)
    np.testing.assert_allclose(rbm.W.toarray(), Wn, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.b_visible, bvn, rtol=1e-12)
    np.testing.assert_allclose(rbm.b_hidden, bhn, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reference_reproduces_published_set_rbm_first_10_epochs(backend):
    """REFERENCE §3.6: the original COIL20 SET-RBM run, RNG order replayed, 6+ digits."""
    import scipy.io as sio

    X = sio.loadmat(shared_data("coil20", "COIL20.mat"))["X"].astype(np.float64)
    ref = np.loadtxt(shared_data("set-reference-results", "coil20_set_rbm_metrics.txt"))[:10]
    rs = np.random.RandomState(0)
    idx = np.arange(X.shape[0])
    rs.shuffle(idx)
    ntr = int(X.shape[0] * 2 / 3)
    rbm = SparseRBM.erdos_renyi(1024, 200, epsilon=10, rng=rs, kernels=backend)
    assert rbm.W.nnz == 11857
    hist = rbm.fit(X[idx[:ntr]], X[idx[ntr:]], epochs=10, batch_size=10, lr=0.1,
                   weight_decay=2e-7, zeta=0.3, rng=rs)
    got = np.array([[r["train_recon"], r["test_recon"]] for r in hist])
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # removal only after the last epoch
    assert [r["nnz"] for r in hist[:-1]] == [11857] * 9 and hist[-1]["nnz"] < 11857


def test_static_topology_and_bad_input():
    rng = np.random.default_rng(1)
    rbm = SparseRBM.erdos_renyi(20, 8, epsilon=3, rng=rng)
    ind = rbm.W.indices.copy()
    X = (rng.random((40, 20)) > 0.5).astype(float)
    h = rbm.fit(X, X[:10], epochs=3, topology="static", rng=rng)
    np.testing.assert_array_equal(rbm.W.indices, ind)
    assert all(np.isfinite(r["test_recon"]) for r in h)
    with pytest.raises(ValueError, match=r"data in \[0, 1\]"):
        rbm.fit(X * 3, rng=rng)
    with pytest.raises(ValueError, match="shape"):
        rbm.fit(X[:, :5], rng=rng)
    with pytest.raises(ValueError, match="zeta"):
        rbm.fit(X, zeta=1.0, rng=rng)


def test_set_evolution_keeps_nnz_with_generator():
    rng = np.random.default_rng(2)
    rbm = SparseRBM.erdos_renyi(30, 10, epsilon=4, law="bernoulli", rng=rng)
    nnz = rbm.W.nnz
    X = (rng.random((50, 30)) > 0.5).astype(float)
    h = rbm.fit(X, epochs=3, rng=rng)
    assert [r["nnz"] for r in h[:-1]] == [nnz, nnz] and h[-1]["nnz"] < nnz
