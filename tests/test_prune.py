"""sparsemlp.prune against independent oracles: constrained least squares (numpy.linalg.lstsq),
brute-force searches over every weight, and a dense masked forward."""

import dense_reference as ref
import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseMLP
from sparsemlp._validation import check_csr
from sparsemlp.prune import PruneError, obs_path, prune


def _model(shapes, rng, density=1.0, acts=("relu", "identity"), dtype=np.float64, empty=False):
    Ws = []
    for n_in, n_out in shapes:
        W = rng.standard_normal((n_in, n_out)) * (rng.random((n_in, n_out)) < density)
        if empty:  # an input and an output neuron without connections
            W[1, :] = 0
            W[:, -1] = 0
            W[:, 2] = 0
        Ws.append(sp.csr_array(W.astype(dtype)))
    m = SparseMLP.from_weights(Ws, activation=acts[0], output_activation=acts[1])
    for layer in m.layers:
        layer.b[:] = rng.standard_normal(layer.n_out)
    return m


def _dense(layer):
    return layer.W.toarray().astype(np.float64), layer.b.astype(np.float64)


def _lam(A, damp):
    return damp * np.mean(np.sum(A * A, axis=0))


def _ls_column(A, w, b, keep_rows, lam):
    """argmin_{w', b'} ‖Ã (w', b') − Ã (w, b)‖² + λ ‖(w', b') − (w, b)‖², w' zero off keep_rows,
    solved as a stacked least-squares problem by numpy.linalg.lstsq."""
    At = np.hstack([A, np.ones((A.shape[0], 1))])
    target = At @ np.r_[w, b]
    cols = list(keep_rows) + [A.shape[1]]
    M = At[:, cols]
    full = np.r_[w, b]
    if lam > 0:
        M = np.vstack([M, np.sqrt(lam) * np.eye(len(cols))])
        target = np.r_[target, np.sqrt(lam) * full[cols]]
    x = np.linalg.lstsq(M, target, rcond=None)[0]
    out = np.zeros(A.shape[1])
    out[list(keep_rows)] = x[:-1]
    return out, x[-1]


def _objective(A, W0, b0, W1, b1, lam):
    At = np.hstack([A, np.ones((A.shape[0], 1))])
    D = np.vstack([W1 - W0, (b1 - b0)[None]])
    return float(np.sum((At @ D) ** 2) + lam * np.sum(D * D))


@pytest.mark.parametrize("density", [1.0, 0.6])
@pytest.mark.parametrize("damp", [0.0, 1e-3])
@pytest.mark.parametrize("compensate", ["obs", "refit"])
def test_one_obs_removal_is_the_constrained_least_squares_optimum(damp, compensate, density):
    rng = np.random.default_rng(0)
    m = _model([(20, 30)], rng, density=density)
    nnz = m.layers[0].nnz
    # correlated features of different scales: OBS then differs from magnitude pruning
    X = (rng.standard_normal((200, 20)) @ rng.standard_normal((20, 20))) * np.logspace(-1, 1, 20)
    W0, b0 = _dense(m.layers[0])
    lam = _lam(X, damp)
    # brute force: the constrained optimum for every candidate weight, and its cost
    best = None
    for i, j in zip(*np.nonzero(W0)):
        keep = [r for r in range(20) if r != i and W0[r, j] != 0]
        w, b = _ls_column(X, W0[:, j], b0[j], keep, lam)
        W1, b1 = W0.copy(), b0.copy()
        W1[:, j], b1[j] = w, b
        cost = _objective(X, W0, b0, W1, b1, lam)
        if best is None or cost < best[0]:
            best = (cost, (i, j), W1, b1)
    small = np.unravel_index(np.argmin(np.where(W0 != 0, np.abs(W0), np.inf)), W0.shape)
    assert best[1] != tuple(small)
    pruned, report = prune(m, n_remove=1, criterion="obs", compensate=compensate, calib=X,
                           damp=damp)
    W, b = _dense(pruned.layers[0])
    i, j = best[1]
    assert pruned.layers[0].nnz == nnz - 1 == report.layers[0].nnz_after
    assert W[i, j] == 0.0 and not (pruned.layers[0].W.indices[
        pruned.layers[0].W.indptr[i]:pruned.layers[0].W.indptr[i + 1]] == j).any()
    np.testing.assert_allclose(W, best[2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(b, best[3], rtol=0, atol=1e-8)
    check_csr(pruned.layers[0].W)


def test_obs_downdates_equal_least_squares_on_the_removed_set():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((100, 12))
    At = np.hstack([A, np.ones((100, 1))])
    H = At.T @ At + 0.05 * np.eye(13)
    w0 = rng.standard_normal(13)
    removable = np.r_[np.ones(12, bool), False]
    for steps in (1, 5, 11):
        w, order, cost = obs_path(w0, H, steps, removable=removable)
        assert len(order) == steps and len(set(order)) == steps and 12 not in order
        assert np.all(w[order] == 0.0)
        keep = [r for r in range(12) if r not in order]
        # oracle: the same quadratic, minimised with the removed coordinates fixed at zero
        L = np.linalg.cholesky(H)
        M = L.T[:, keep + [12]]
        x = np.linalg.lstsq(M, L.T @ w0, rcond=None)[0]
        np.testing.assert_allclose(w[keep + [12]], x, rtol=0, atol=1e-9)
        # each step's cost is the increase of ½ δᵀHδ, so they add up to the total
        d = w - w0
        assert np.isclose(cost.sum(), 0.5 * d @ H @ d, rtol=1e-9)


@pytest.mark.parametrize("criterion", ["magnitude", "obd", "obs"])
def test_compensation_never_increases_the_reconstruction_error(criterion):
    for seed in range(20):
        rng = np.random.default_rng(seed)
        m = _model([(15, 12)], rng, density=0.7)
        X = rng.standard_normal((80, 15)) + rng.standard_normal(15)
        W0, b0 = _dense(m.layers[0])
        err = {}
        for comp in ("none", "refit", "obs"):
            p, _ = prune(m, density=0.3, criterion=criterion, compensate=comp, calib=X,
                         damp=1e-10)
            W, b = _dense(p.layers[0])
            err[comp] = np.linalg.norm(X @ (W - W0) + (b - b0))
        assert err["refit"] <= err["none"] * (1 + 1e-9), (seed, err)
        assert err["obs"] <= err["none"] * (1 + 1e-9), (seed, err)


def test_refit_is_the_least_squares_optimum_and_repeating_it_changes_nothing():
    rng = np.random.default_rng(3)
    m = _model([(25, 18)], rng, density=0.6, empty=True)  # neurons with different fan-ins
    X = rng.standard_normal((150, 25))
    W0, b0 = _dense(m.layers[0])
    lam = _lam(X, 0.01)
    for steps in (1, 4):
        p, _ = prune(m, density=0.2, criterion="magnitude", compensate="refit", calib=X,
                     steps=steps)
        W, b = _dense(p.layers[0])
        mask = p.layers[0].W.toarray() != 0
        mask[p.layers[0].W.tocoo().coords] = True  # an entry refitted to exactly 0 stays
        for j in range(18):
            w, bj = _ls_column(X, W0[:, j], b0[j], np.flatnonzero(mask[:, j]), lam)
            np.testing.assert_allclose(W[:, j], w, rtol=0, atol=1e-8)
            assert abs(b[j] - bj) <= 1e-8
        again, _ = prune(p, n_remove=0, criterion="magnitude", compensate="refit", calib=X)
        np.testing.assert_array_equal(again.layers[0].W.toarray(), p.layers[0].W.toarray())
        # a further refit with nested masks lands on the optimum against the original weights
        q, _ = prune(p, density=0.1, criterion="magnitude", compensate="refit", calib=X)
        Wq, bq = _dense(q.layers[0])
        for j in range(18):
            keep = np.flatnonzero(q.layers[0].W.toarray()[:, j] != 0)
            w, bj = _ls_column(X, W0[:, j], b0[j], keep, lam)
            np.testing.assert_allclose(Wq[:, j], w, rtol=0, atol=1e-8)


@pytest.mark.parametrize("criterion,compensate", [("obs", "obs"), ("obs", "refit"),
                                                  ("magnitude", "none"), ("obd", "refit")])
def test_sequential_removals_never_bring_a_weight_back(criterion, compensate):
    rng = np.random.default_rng(4)
    m = _model([(14, 12), (12, 6)], rng, density=0.9, empty=True)
    X = rng.standard_normal((60, 14))
    gone = np.zeros((14, 12), bool), np.zeros((12, 6), bool)
    assert sum(m.nnz()) > 120
    nnz = sum(m.nnz())
    for _ in range(100):
        m, rep = prune(m, n_remove=1, criterion=criterion, compensate=compensate, calib=X,
                       scope="global")
        assert sum(m.nnz()) == nnz - 1 == rep.nnz_after
        nnz -= 1
        for layer, g in zip(m.layers, gone):
            check_csr(layer.W)
            stored = np.zeros(layer.W.shape, bool)
            stored[layer.W.tocoo().coords] = True
            assert not (stored & g).any()
            assert np.all(layer.W.toarray()[g] == 0.0)
            g |= ~stored


def test_obs_compensation_is_the_greedy_layer_wise_surgeon():
    """compensate='obs' removes, one at a time, the weight whose removal (with every neuron
    re-solved on its kept inputs) raises the layer's error least: checked by brute force."""
    rng = np.random.default_rng(8)
    m = _model([(7, 5)], rng)
    X = (rng.standard_normal((40, 7)) @ rng.standard_normal((7, 7))) * np.logspace(-1, 1, 7)
    # input 2 close to input 0 + input 1 and neuron 0 weighing them (1, 1, -1): once one of
    # its three weights goes, the other two are re-solved to nearly 0 and cost nearly
    # nothing, so a neuron's later removals can be cheaper than its first
    X[:, 2] = X[:, 0] + X[:, 1] + 0.3 * rng.standard_normal(40)
    m.layers[0].W.data[[0, 5, 10]] = [1.0, 1.0, -1.0]
    W0, b0 = _dense(m.layers[0])
    lam = _lam(X, 0.01)

    def col_cost(j, gone):
        keep = [r for r in range(7) if (r, j) not in gone]
        w, b = _ls_column(X, W0[:, j], b0[j], keep, lam)
        W1, b1 = W0.copy(), b0.copy()
        W1[:, j], b1[j] = w, b
        return _objective(X, W0, b0, W1, b1, lam)

    order = []
    for _ in range(20):
        gone = set(order)
        now = {j: col_cost(j, gone) for j in range(5)}
        cand = {(i, j): col_cost(j, gone | {(i, j)}) - now[j]
                for i in range(7) for j in range(5) if (i, j) not in gone}
        order.append(min(cand, key=cand.get))
    for k in range(4, 21):
        p, _ = prune(m, n_remove=k, criterion="obs", compensate="obs", calib=X)
        got = {(i, j) for i, j in zip(*np.nonzero(p.layers[0].W.toarray() == 0))}
        assert got == set(order[:k]), k
    one_shot, _ = prune(m, n_remove=16, criterion="obs", compensate="refit", calib=X)
    assert {(i, j) for i, j in zip(*np.nonzero(one_shot.layers[0].W.toarray() == 0))} \
        != set(order[:16])


def test_global_obs_allocation_ignores_a_rescaling_between_layers():
    """ReLU nets compute the same function after W0, b0 *= c and W1 /= c; the normalised OBS
    saliencies (relative error increases) do not change, so neither does the global mask (the
    damping is kept negligible: it is one λ for the inputs and the bias coordinate)."""
    rng = np.random.default_rng(9)
    m = _model([(10, 8), (8, 6)], rng)
    X = rng.standard_normal((60, 10))
    s = SparseMLP.from_weights([m.layers[0].W * 50.0, m.layers[1].W / 50.0],
                               biases=[m.layers[0].b * 50.0, m.layers[1].b.copy()],
                               output_activation="identity")
    np.testing.assert_allclose(s.predict_raw(X), m.predict_raw(X), rtol=1e-10, atol=1e-10)
    kw = dict(density=0.4, criterion="obs", compensate="none", calib=X, scope="global", damp=1e-9)
    a, _ = prune(m, **kw)
    b, _ = prune(s, **kw)
    assert a.nnz() == b.nnz() and a.nnz()[0] != round(0.4 * 80)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.W.indices, lb.W.indices)


def _forward_logits(Ws, bs, X):
    a = X
    for k, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W + b
        a = np.maximum(z, 0) if k < len(Ws) - 1 else z
    return z


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("noise", [False, True])
def test_output_distance_takes_the_brute_force_argmin(noise):
    unique = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        m = _model([(3, 4), (4, 2)], rng, acts=("relu", "softmax"))
        X = rng.standard_normal((50, 3))
        pts = np.random.default_rng(7).uniform(-3, 3, (40, 3)) if noise else X
        Ws = [la.W.toarray() for la in m.layers]
        bs = [la.b.copy() for la in m.layers]
        f0 = _log_softmax(_forward_logits(Ws, bs, pts))
        dist = {}
        for k in range(2):
            for i, j in zip(*np.nonzero(Ws[k])):
                Wc = [W.copy() for W in Ws]
                Wc[k][i, j] = 0.0
                dist[k, i, j] = np.sum((_log_softmax(_forward_logits(Wc, bs, pts)) - f0) ** 2)
        p, _ = prune(m, n_remove=1, criterion="output_distance", compensate="none",
                     calib=40 if noise else X, noise_range=(-3, 3), seed=7, scope="global")
        gone = [(k, i, j) for k in range(2) for i, j in zip(*np.nonzero(
            (Ws[k] != 0) & (p.layers[k].W.toarray() == 0)))]
        assert len(gone) == 1 and sum(p.nnz()) == sum(m.nnz()) - 1
        best = min(dist.values())
        assert dist[gone[0]] <= best + 1e-12  # an argmin (a dead unit can tie several at 0)
        if sorted(dist.values())[1] > best + 1e-9:
            unique += 1
            assert gone[0] == min(dist, key=dist.get)
        for k in range(2):  # the other weights are untouched
            keep = p.layers[k].W.toarray() != 0
            np.testing.assert_array_equal(p.layers[k].W.toarray()[keep], Ws[k][keep])
    assert unique >= 10


@pytest.mark.parametrize("compensate", ["none", "refit"])
def test_pruned_prediction_equals_a_masked_dense_forward(compensate):
    rng = np.random.default_rng(5)
    m = SparseMLP.erdos_renyi([30, 40, 20, 6], epsilon=15, rng=rng, dtype=np.float32)
    for layer in m.layers:
        layer.b[:] = rng.standard_normal(layer.n_out)
    X = rng.standard_normal((120, 30)).astype(np.float32)
    p, _ = prune(m, density=0.15, criterion="magnitude", compensate=compensate, calib=X)
    masks, Ws = [], []
    for la0, la1 in zip(m.layers, p.layers):
        mask = np.zeros(la1.W.shape, bool)
        mask[la1.W.tocoo().coords] = True
        masks.append(mask)
        Ws.append(la1.W.toarray())
        # magnitude: the kept entries are the largest |w| of the layer (ties apart)
        W0 = la0.W.toarray()
        k = la1.nnz
        thr = np.sort(np.abs(W0[W0 != 0]))[::-1][k - 1]
        assert np.all(np.abs(W0[mask]) >= thr) and np.all(np.abs(W0[~mask & (W0 != 0)]) <= thr)
        if compensate == "none":
            np.testing.assert_array_equal(Ws[-1], W0 * mask)
    out = ref.forward([W.astype(np.float64) for W in Ws], [la.b.astype(np.float64)
                      for la in p.layers], ["relu", "relu", "softmax"], X.astype(np.float64))
    np.testing.assert_allclose(p.predict_raw(X), out[-1][1], rtol=0, atol=1e-6)
    assert p.dtype == np.float32 and all(la.W.dtype == np.float32 for la in p.layers)
    # the input model is unchanged
    assert m.nnz() == [la.nnz for la in m.layers] and m.layers[0].nnz > p.layers[0].nnz


def test_global_scope_and_layer_subset():
    rng = np.random.default_rng(6)
    m = _model([(10, 8), (8, 8), (8, 3)], rng, acts=("relu", "softmax"))
    X = rng.standard_normal((50, 10))
    p, rep = prune(m, sparsity=0.5, criterion="magnitude", compensate="none", scope="global")
    assert sum(p.nnz()) == round(0.5 * sum(m.nnz()))
    mags = np.sort(np.concatenate([np.abs(la.W.data) for la in m.layers]))
    kept = np.concatenate([np.abs(la.W.data) for la in p.layers])
    assert kept.min() >= mags[len(mags) - len(kept)]  # the largest magnitudes overall stay
    p, rep = prune(m, density=0.25, layers=[1], criterion="obs", compensate="refit", calib=X)
    assert p.nnz() == [80, 16, 24] and [la.nnz_after for la in rep.layers] == [80, 16, 24]
    np.testing.assert_array_equal(p.layers[0].W.toarray(), m.layers[0].W.toarray())
    p, rep = prune(m, n_remove=30, criterion="magnitude", compensate="none")
    # 30 split over [80, 64, 24] by largest remainders: 14.29, 11.43, 4.29 -> 14, 12, 4
    assert p.nnz() == [66, 52, 20]


@pytest.mark.parametrize("kw, match", [
    (dict(density=0.0), "density must be in"),
    (dict(density=1.5), "density must be in"),
    (dict(sparsity=1.0), "sparsity must be in"),
    (dict(density=0.5, n_remove=3), "exactly one of"),
    (dict(), "exactly one of"),
    (dict(density=0.5, criterion="hessian"), "'criterion' parameter of prune must be one of"),
    (dict(density=0.5, compensate="sgd"), "'compensate' parameter"),
    (dict(density=0.5, calib=np.zeros((10, 7))), "the model takes 6 features"),
    (dict(density=0.5, calib=np.full((10, 6), np.nan)), "NaN or infinite"),
    (dict(density=0.5, criterion="obs", calib=None), "needs calibration inputs"),
    (dict(density=0.5, layers=[3]), "layers must list"),
    (dict(density=0.5, steps=0), "'steps' parameter"),
    (dict(n_remove=10**6), "n_remove must be between"),
])
def test_bad_settings_are_refused_with_the_fix(kw, match):
    m = _model([(6, 5), (5, 3)], np.random.default_rng(0))
    kw.setdefault("calib", np.zeros((10, 6)))
    with pytest.raises(PruneError, match=match):
        prune(m, **kw)


def test_output_distance_is_refused_on_large_nets():
    m = SparseMLP.erdos_renyi([200, 100, 10], epsilon=100, rng=np.random.default_rng(0))
    assert sum(m.nnz()) > 10_000
    with pytest.raises(PruneError, match="more than 10000"):
        prune(m, n_remove=1, criterion="output_distance", calib=10)
