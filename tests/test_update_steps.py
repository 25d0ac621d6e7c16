"""--update-unit steps: topology updates after every N-th optimizer step, exact resume, extension."""

import numpy as np
import pytest
from conftest import InterruptAfter, assert_same

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.data import load as load_data
from sparsemlp.distributed import run_ranks
from sparsemlp.training import mlp as trainer_mod
from sparsemlp.training.config import ConfigError

# digits: 1198 training samples in batches of 64 -> 19 steps per epoch (the last of 46)
SMALL = dict(hidden=(48, 32), epsilon=4.0, batch_size=64, checkpoint_every=1,
             lr_schedule="constant", update_unit="steps")
PER_EPOCH = 19


@pytest.fixture(scope="module")
def digits():
    ds = load_data("digits", rng=np.random.default_rng(0))
    assert -(-ds.X_train.shape[0] // 64) == PER_EPOCH
    return ds


def _trainer(cfg, ds, **kw):
    cfg = cfg.resolve()
    return Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=Streams(cfg.seed),
                               verbose=False, **kw)


class _Recorder:
    """Wraps Trainer._evolve: the optimizer step count at every topology update."""

    def __init__(self, monkeypatch):
        self.steps = []
        real = trainer_mod.Trainer._evolve

        def spy(tr, e, X, y, step=None, n_batches=None):
            self.steps.append((tr.step, step))
            return real(tr, e, X, y, step=step, n_batches=n_batches)

        monkeypatch.setattr(trainer_mod.Trainer, "_evolve", spy)


@pytest.mark.parametrize("every, epochs", [(10, 3), (7, 2), (19, 3), (1, 1), (2, 3), (100, 3)])
def test_updates_happen_at_exactly_the_predicted_steps(digits, monkeypatch, every, epochs):
    rec = _Recorder(monkeypatch)
    tr = _trainer(TrainConfig(**SMALL, update_every=every, epochs=epochs), digits)
    before = tr.model.layers[0].W.indices.copy()
    tr.fit(digits.X_train, digits.y_train)
    total = epochs * PER_EPOCH
    want = [s for s in range(1, total) if s % every == 0]  # none after the run's last step
    assert rec.steps == [(s, s) for s in want]
    assert tr.step == total
    assert tr._pending_evolution == (epochs - 1 if total % every == 0 else None)
    assert (not want) == np.array_equal(before, tr.model.layers[0].W.indices)
    # per epoch, the updates' time is reported as evolution
    assert all(r["seconds_evolution"] >= 0 for r in tr.history.records)


def test_epoch_unit_is_unchanged(digits, monkeypatch):
    rec = _Recorder(monkeypatch)
    tr = _trainer(TrainConfig(**{**SMALL, "update_unit": "epochs"}, update_every=1, epochs=3),
                  digits)
    tr.fit(digits.X_train, digits.y_train)
    assert rec.steps == [(PER_EPOCH, None), (2 * PER_EPOCH, None)]


def _state(tr):
    w, arrays, _ = tr.state()
    out = {f"W{i}.{k}": getattr(W, k).copy() for i, W in enumerate(w)
           for k in ("indptr", "indices", "data")}
    out.update({k: np.array(v, copy=True) for k, v in arrays.items()})
    return out


@pytest.mark.parametrize("stop_after, regrow", [(30, "random"), (32, "random"),
                                                (30, "gradient")])
def test_interrupted_mid_epoch_resumes_exactly(digits, tmp_path, monkeypatch, stop_after,
                                               regrow):
    cfg = TrainConfig(**SMALL, update_every=5, epochs=3, regrow=regrow,
                      prune_schedule="cosine")
    straight = _trainer(cfg, digits)
    straight.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    run = tmp_path / "run"
    tr = _trainer(cfg, digits, run_dir=run)
    # the flag is read after every batch and once at the end of each epoch
    monkeypatch.setattr(trainer_mod, "_InterruptFlag", lambda: InterruptAfter(stop_after + 1))
    with pytest.raises(KeyboardInterrupt):
        tr.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    monkeypatch.undo()
    resumed = Trainer.from_checkpoint(run, run_dir=run, verbose=False)
    assert resumed.step == stop_after and resumed._resume["batch"] == stop_after - PER_EPOCH
    resumed.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    assert_same(_state(straight), _state(resumed))
    assert [r["test_loss"] for r in straight.history.records] == \
        [r["test_loss"] for r in resumed.history.records]


def test_extension_does_the_update_skipped_at_the_last_step(digits, tmp_path):
    cfg = TrainConfig(**SMALL, update_every=PER_EPOCH, epochs=3)
    straight = _trainer(cfg, digits)
    straight.fit(digits.X_train, digits.y_train)
    run = tmp_path / "run"
    first = _trainer(TrainConfig(**SMALL, update_every=PER_EPOCH, epochs=2), digits, run_dir=run)
    first.fit(digits.X_train, digits.y_train)
    assert first._pending_evolution == 1
    ext = Trainer.from_checkpoint(run / "final", run_dir=run, verbose=False)
    ext.fit(digits.X_train, digits.y_train, epochs=3)
    a, b = _state(straight), _state(ext)
    assert_same(a, b)


def test_two_ranks_update_alike(digits):
    cfg = TrainConfig(**SMALL, update_every=6, epochs=2, dtype="float64").resolve()
    X, y = digits.X_train[:640], digits.y_train[:640]  # 10 steps per epoch

    def train(comm=None):
        tr = Trainer.from_config(cfg, digits.n_features, digits.n_classes,
                                 streams=Streams(cfg.seed), verbose=False, comm=comm)
        tr.fit(X, y)
        return tr

    one = train()
    for tr in run_ranks(2, train):
        for la, lb in zip(one.model.layers, tr.model.layers):
            np.testing.assert_array_equal(la.W.indices, lb.W.indices)
            np.testing.assert_allclose(lb.W.data, la.W.data, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kw", [dict(mode="reference"), dict(model="rbm", hidden=(20,)),
                                dict(prune_percentile=10.0), dict(legacy_rng=True)])
def test_steps_are_refused_where_they_cannot_apply(kw):
    with pytest.raises(ConfigError, match="update_unit='steps'.*use --update-unit epochs"):
        TrainConfig(update_unit="steps", **kw).resolve()


class _KeyedStreams(Streams):
    """Streams that record the keys of the evolution's draws."""

    def __init__(self, seed):
        super().__init__(seed)
        self.keys = []

    def get(self, name, *keys):
        if name.startswith("evolve") or name.startswith("regrow"):
            self.keys.append((name, *keys))
        return super().get(name, *keys)


def test_each_update_has_its_own_streams_and_the_cosine_zeta_of_its_step(digits, monkeypatch):
    from sparsemlp import evolution

    zetas = []
    real = evolution.apply
    monkeypatch.setattr(evolution, "apply", lambda layer, rule, **kw: zetas.append(kw["zeta"])
                        or real(layer, rule, **kw))
    cfg = TrainConfig(**SMALL, update_every=8, epochs=2, prune_schedule="cosine",
                      regrow="gradient", zeta=(0.4,)).resolve()
    st = _KeyedStreams(cfg.seed)
    tr = Trainer.from_config(cfg, digits.n_features, digits.n_classes, streams=st, verbose=False)
    tr.fit(digits.X_train, digits.y_train)
    steps = [8, 16, 24, 32]  # of 38
    assert st.keys == [k for s in steps
                       for k in [("regrow_step", s), ("evolve_step", s, 0), ("evolve_step", s, 1)]]
    want = [0.4 * (1 + np.cos(np.pi * s / 38)) / 2 for s in steps for _ in range(2)]
    np.testing.assert_allclose(zetas, want, rtol=1e-12)

