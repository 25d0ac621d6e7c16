"""SReLU in SparseMLP and the trainer: gradients vs finite differences, update, checkpoints, resume."""

import copy

import numpy as np
import pytest
from conftest import InterruptAfter, StopAt, assert_same

from sparsemlp import SparseMLP, TrainConfig, Trainer, load_model
from sparsemlp._rng import Streams
from sparsemlp.data import load as load_data
from sparsemlp.distributed import run_ranks
from sparsemlp.nn.functions import loss_value, output_delta
from sparsemlp.training import mlp as trainer_mod
from sparsemlp.training.mlpstep import one_hot

SMALL = dict(hidden=(48, 32), epsilon=4.0, epochs=4, batch_size=16, checkpoint_every=1,
             activation="srelu")


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", rng=np.random.default_rng(0))


def _model(seed, dropout=0.0):
    """A float64 SReLU net whose units have their own thresholds and slopes (d < 0 too)."""
    rng = np.random.default_rng(seed)
    m = SparseMLP.erdos_renyi([12, 9, 7, 4], epsilon=3, rng=rng, dtype=np.float64,
                              activation="srelu", dropout=dropout, kernels="numpy")
    for la in m.layers:
        la.b[:] = rng.standard_normal(la.n_out) * 0.3
    for _, a in m.param_activations():
        n = a.params.shape[1]
        a.params[0] = rng.uniform(-0.5, 0.5, n)
        a.params[2] = rng.uniform(-1.5, 1.5, n)
        a.params[3] = rng.uniform(0.3, 1.7, n)
    return m


def _batch(seed, B=30):
    rng = np.random.default_rng(seed + 1000)
    return rng.standard_normal((12, B)), one_hot(rng.integers(0, 4, B), 4, np.float64)


def _loss_sum(m, xt, yt, seed):
    yhat = m.forward(xt, train=True, rng=np.random.default_rng(seed))
    m._cache = None
    return loss_value("cross_entropy", yhat, yt) * xt.shape[1]  # the batch sum, as backward


def _grads(m, xt, yt, seed, layerwise=False):
    yhat = m.forward(xt, train=True, rng=np.random.default_rng(seed))
    delta = output_delta("cross_entropy", m.activations[-1], m._cache[-1][1], yhat, yt)
    _, views = m.make_layer_grads() if layerwise else m.make_grads()
    m.backward(delta, views)
    return views


def _min_kink_distance(m, xt):
    """Smallest |z - t_l| or |z - t_r| of any hidden unit on the batch."""
    m.forward(xt, train=True, rng=np.random.default_rng(0))
    cache, m._cache = m._cache, None
    out = np.inf
    for i, a in m.param_activations():
        z = cache[i][1]
        t_l, d = a.params[0][:, None], a.params[2][:, None]
        out = min(out, np.abs(z - t_l).min(), np.abs(z - t_l - np.abs(d)).min())
    return out


@pytest.mark.parametrize("seed, dropout", [(0, 0.0), (1, 0.0), (2, 0.3), (3, 0.3)])
def test_model_gradient_of_srelu_parameters_matches_finite_differences(seed, dropout):
    m = _model(seed, dropout)
    xt, yt = _batch(seed)
    h = 1e-7
    assert _min_kink_distance(m, xt) > 50 * h  # no sample near a kink (FD would be wrong)
    g = _grads(m, xt, yt, seed)
    index = m.activation_grad_index()
    assert sorted(index) == [0, 1] and len(m.parameters()) == 8
    for i, a in m.param_activations():
        got = g[index[i]].reshape(a.params.shape)
        fd = np.empty_like(got)
        for r in range(4):
            for j in range(a.params.shape[1]):
                keep = a.params[r, j]
                a.params[r, j] = keep + h
                up = _loss_sum(m, xt, yt, seed)
                a.params[r, j] = keep - h
                down = _loss_sum(m, xt, yt, seed)
                a.params[r, j] = keep
                fd[r, j] = (up - down) / (2 * h)
        assert np.abs(fd).max() > 1e-3
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=f"activation {i}")
    # the layer-by-layer buffers of a serial step give the same gradients
    g2 = _grads(m, xt, yt, seed, layerwise=True)
    for k in index.values():
        np.testing.assert_array_equal(g2[k], g[k])


def test_weight_gradients_through_srelu_match_finite_differences():
    m = _model(5, 0.3)
    xt, yt = _batch(5)
    h = 1e-6
    g = _grads(m, xt, yt, 5)
    W = m.layers[0].W.data
    for k in range(0, W.shape[0], max(1, W.shape[0] // 12)):
        keep = W[k]
        W[k] = keep + h
        up = _loss_sum(m, xt, yt, 5)
        W[k] = keep - h
        down = _loss_sum(m, xt, yt, 5)
        W[k] = keep
        assert g[0][k] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def _trainer(cfg, ds, **kw):
    cfg = cfg.resolve()
    return Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=Streams(cfg.seed),
                               verbose=False, **kw)


class _NoFlag:
    set = False


@pytest.mark.parametrize("decay", ["coupled", "original"])
def test_serial_step_is_sgd_on_the_srelu_parameters_without_decay(digits, decay):
    cfg = TrainConfig(**SMALL, dtype="float64", backend="numpy", weight_decay=0.05, decay=decay,
                      dropout=0.2)
    tr = _trainer(cfg, digits)
    before = copy.deepcopy(tr.model)
    idx = np.arange(16)
    X, y, lr = digits.X_train, digits.y_train, 0.05
    tr._train_step(X, y, idx, np.random.default_rng(9), lr, 0, 0, _NoFlag(), None)
    xt = np.ascontiguousarray(X[idx].T)
    g = _grads(before, xt, one_hot(y[idx], 10, np.float64), 9)
    index = before.activation_grad_index()
    for (i, a0), (_, a1) in zip(before.param_activations(), tr.model.param_activations()):
        want = a0.params - lr * g[index[i]].reshape(a0.params.shape) / 16  # v = -lr g / B
        np.testing.assert_allclose(a1.params, want, rtol=1e-12, atol=1e-15)
        assert not np.array_equal(a1.params, a0.params)
    assert tr.optimizer.n_steps == 1


def test_srelu_parameters_train(digits):
    tr = _trainer(TrainConfig(**{**SMALL, "epochs": 5}), digits)
    p0 = [a.params.copy() for _, a in tr.model.param_activations()]
    tr.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    losses = [r["train_loss"] for r in tr.history.records]
    assert losses[-1] < 0.5 * losses[0]
    assert tr.history.records[-1]["test_accuracy"] > 0.85
    for p, (_, a) in zip(p0, tr.model.param_activations()):
        assert (np.abs(a.params - p).max(axis=1) > 1e-3).all()  # all four kinds moved


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_evolution_leaves_srelu_parameters_and_their_state(digits, opt):
    tr = _trainer(TrainConfig(**SMALL, optimizer=opt), digits)
    tr.fit(digits.X_train, digits.y_train, epochs=1)
    index = tr.model.activation_grad_index()
    acts = dict(tr.model.param_activations())
    params = {i: a.params.copy() for i, a in acts.items()}
    state = {(n, k): arr[k].copy() for n, arr in tr.optimizer.state.items() for k in index.values()}
    assert all(np.abs(s).max() > 0 for s in state.values())
    W0 = tr.model.layers[0].W.indices.copy()
    tr._evolve(1, digits.X_train, digits.y_train)
    assert not np.array_equal(W0, tr.model.layers[0].W.indices)  # the topology changed
    for i, a in acts.items():
        np.testing.assert_array_equal(a.params, params[i])
        assert np.shares_memory(tr.optimizer.params[index[i]], a.params)
    for (n, k), s in state.items():
        np.testing.assert_array_equal(tr.optimizer.state[n][k], s)


def _state(tr):
    w, arrays, _ = tr.state()
    out = {f"W{i}.{k}": getattr(W, k).copy() for i, W in enumerate(w)
           for k in ("indptr", "indices", "data")}
    out.update({k: np.array(v, copy=True) for k, v in arrays.items()})
    return out


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_exact_resume_bitwise(digits, tmp_path, opt):
    cfg = TrainConfig(**SMALL, optimizer=opt)
    straight = _trainer(cfg, digits)
    straight.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    run = tmp_path / "run"
    _trainer(cfg, digits, run_dir=run, callbacks=[StopAt(2)]).fit(
        digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    resumed = Trainer.from_checkpoint(run / "checkpoints" / "epoch-0002", run_dir=run,
                                      verbose=False)
    resumed.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    a, b = _state(straight), _state(resumed)
    key = "optim.m.6" if opt == "adam" else "optim.velocity.6"  # the first SReLU's state
    assert "activations.0.params" in a and key in a
    assert_same(a, b)
    assert [r["test_loss"] for r in straight.history.records] == \
        [r["test_loss"] for r in resumed.history.records]


def test_interrupted_mid_epoch_resumes_exactly(digits, tmp_path, monkeypatch):
    cfg = TrainConfig(**{**SMALL, "epochs": 3})
    straight = _trainer(cfg, digits)
    straight.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    run = tmp_path / "run"
    tr = _trainer(cfg, digits, run_dir=run)
    n_batches = -(-digits.X_train.shape[0] // 16)
    monkeypatch.setattr(trainer_mod, "_InterruptFlag", lambda: InterruptAfter(n_batches + 1 + 7))
    with pytest.raises(KeyboardInterrupt):
        tr.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    monkeypatch.undo()
    resumed = Trainer.from_checkpoint(run, run_dir=run, verbose=False)
    assert resumed._resume["batch"] == 7
    resumed.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    assert_same(_state(straight), _state(resumed))


def test_checkpoint_round_trip_and_load_model(digits, tmp_path):
    tr = _trainer(TrainConfig(**{**SMALL, "epochs": 2}), digits, run_dir=tmp_path / "run")
    tr.fit(digits.X_train, digits.y_train)
    m = load_model(tmp_path / "run")
    assert [type(a).__name__ for a in m.activations] == ["SReLU", "SReLU", "Softmax"]
    for (_, a), (_, b) in zip(tr.model.param_activations(), m.param_activations()):
        np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(m.predict_raw(digits.X_test), tr.model.predict_raw(digits.X_test))
    # the loaded parameters matter: with the initial ones the outputs differ
    for _, a in m.param_activations():
        a.params[...] = 0.5
    assert not np.array_equal(m.predict_raw(digits.X_test), tr.model.predict_raw(digits.X_test))


def test_checkpoint_without_srelu_parameters_is_refused(digits, tmp_path):
    from sparsemlp.training import checkpoint

    tr = _trainer(TrainConfig(**{**SMALL, "epochs": 1}), digits)
    weights, arrays, meta = tr.state()
    del arrays["activations.1.params"]
    checkpoint.save(tmp_path / "ck", weights=weights, arrays=arrays, meta=meta)
    with pytest.raises(checkpoint.CheckpointError, match="activations.1.params"):
        Trainer.from_checkpoint(tmp_path / "ck")


def test_two_ranks_equal_one_process(digits):
    cfg = TrainConfig(**{**SMALL, "epochs": 2}, dtype="float64", dropout=0.2).resolve()
    X, y = digits.X_train[:400], digits.y_train[:400]

    def train(comm=None):
        tr = Trainer.from_config(cfg, digits.n_features, digits.n_classes,
                                 streams=Streams(cfg.seed), verbose=False, comm=comm)
        tr.fit(X, y)
        return tr

    one = train()
    for tr in run_ranks(2, train):
        for (_, a), (_, b) in zip(one.model.param_activations(), tr.model.param_activations()):
            np.testing.assert_allclose(b.params, a.params, rtol=0, atol=1e-9)
        for pa, pb in zip(one.model.parameters(), tr.model.parameters()):
            np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-9 * max(1, np.abs(pa).max()))


def test_estimator_trains_and_predicts_with_srelu(digits):
    pytest.importorskip("sklearn")
    from sparsemlp import SparseMLPClassifier

    clf = SparseMLPClassifier((40,), epsilon=5, activation="srelu", max_iter=4,
                              random_state=0).fit(digits.X_train, digits.y_train)
    (_, a), = clf.model_.param_activations()
    assert a.params.shape == (4, 40)
    assert clf.score(digits.X_test, digits.y_test) > 0.8


def test_srelu_is_for_hidden_layers_only():
    with pytest.raises(ValueError, match="output activation cannot have parameters"):
        SparseMLP.erdos_renyi([5, 4, 3], activation="relu", output_activation="srelu",
                              rng=np.random.default_rng(0))


def test_srelu_parameters_are_drawn_after_the_topology():
    """The same seed gives the same topology and weights with relu and srelu (Keras-contrib's
    initialisers: t_l = 0, a_l ~ U(0, 1), d ~ U(0, 5), a_r = 1)."""
    a = SparseMLP.erdos_renyi([30, 20, 10, 3], epsilon=4, rng=np.random.default_rng(3))
    b = SparseMLP.erdos_renyi([30, 20, 10, 3], epsilon=4, activation="srelu",
                              rng=np.random.default_rng(3))
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.W.indices, lb.W.indices)
        np.testing.assert_array_equal(la.W.data, lb.W.data)
    p = np.concatenate([act.params for _, act in b.param_activations()], axis=1)
    assert (p[0] == 0).all() and (p[3] == 1).all()
    assert 0 <= p[1].min() and p[1].max() < 1 and 0 <= p[2].min() and p[2].max() < 5
    assert p[2].std() > 1  # U(0, 5) has std 1.44


def test_init_from_copies_the_srelu_parameters(digits, tmp_path):
    tr = _trainer(TrainConfig(**{**SMALL, "epochs": 2}), digits, run_dir=tmp_path / "run")
    tr.fit(digits.X_train, digits.y_train)
    warm = _trainer(TrainConfig(**{**SMALL, "epochs": 1}, init_from=str(tmp_path / "run")),
                    digits)
    for (_, a), (_, b) in zip(tr.model.param_activations(), warm.model.param_activations()):
        np.testing.assert_array_equal(a.params, b.params)
        assert not np.shares_memory(a.params, b.params)


def test_dense_sources_with_srelu_are_refused():
    from sparsemlp.training.sources import SourceError, model_from_dense

    with pytest.raises(SourceError, match="only a sparsemlp run stores"):
        model_from_dense([np.ones((3, 2)), np.ones((2, 2))], [np.zeros(2), np.zeros(2)],
                         ["srelu", "softmax"])
