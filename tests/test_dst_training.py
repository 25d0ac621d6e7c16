"""Gradient regrowth in the trainer: batch signals vs backprop, schedules, resume, config errors."""

import math

import numpy as np
import pytest
from conftest import StopAt, assert_same

from sparsemlp import TrainConfig, Trainer, evolution
from sparsemlp._rng import Streams
from sparsemlp.cli.train import main
from sparsemlp.data import load as load_data
from sparsemlp.nn.batching import batch_t
from sparsemlp.nn.functions import output_delta
from sparsemlp.training import checkpoint, dst
from sparsemlp.training.config import ConfigError
from sparsemlp.training.mlpstep import one_hot

SMALL = dict(hidden=(48, 32), epsilon=4.0, epochs=4, batch_size=16, checkpoint_every=1,
             regrow_batch=64)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", rng=np.random.default_rng(0))


def _trainer(cfg, ds, **kw):
    cfg = cfg.resolve()
    return Trainer.from_config(cfg, ds.n_features, ds.n_classes,
                               streams=Streams(cfg.seed), verbose=False, **kw)


def _state(tr):
    w, arrays, _ = tr.state()
    out = {f"W{i}.{k}": getattr(W, k).copy() for i, W in enumerate(w)
           for k in ("indptr", "indices", "data")}
    out.update({k: np.array(v, copy=True) for k, v in arrays.items()})
    return out


def test_signals_are_the_factors_of_the_backprop_gradient(digits):
    """On existing connections, sum_b xt[i] dyt[j] equals model.backward's weight gradient."""
    cfg = TrainConfig(**{**SMALL, "hidden": (40, 30, 20)}, dropout=0.3).resolve()
    tr = _trainer(cfg, digits)
    tr.fit(digits.X_train, digits.y_train, epochs=1)
    model = tr.model
    sig = dst.gradient_signals(model, cfg, tr.streams, digits.X_train, digits.y_train, 5, one_hot)
    # the oracle: the same batch through forward/backward of the model
    rng = tr.streams.get("regrow", 5)  # the batch, then its dropout masks, from one stream
    idx = np.sort(rng.choice(digits.X_train.shape[0], 64, replace=False))
    xt = batch_t(digits.X_train, idx, model.dtype)
    yhat = model.forward(xt, train=True, rng=rng)
    yt = one_hot(digits.y_train[idx], 10, model.dtype)
    delta = output_delta(cfg.loss, model.activations[-1], model._cache[-1][1], yhat, yt)
    flat, grads = model.make_grads()
    model.backward(delta, grads)
    for i, layer in enumerate(model.layers):
        x, d = sig[i]
        assert x.shape == (layer.n_in, 64) and d.shape == (layer.n_out, 64)
        rows = np.repeat(np.arange(layer.n_in), np.diff(layer.W.indptr))
        g = np.einsum("kb,kb->k", x[rows].astype(np.float64), d[layer.W.indices].astype(np.float64))
        np.testing.assert_allclose(g, grads[2 * i], rtol=2e-4, atol=1e-5)


def test_trainer_applies_the_rule_on_the_schedule(digits, monkeypatch):
    calls = []
    real = evolution.apply

    def spy(layer, rule, **kw):
        calls.append((rule, kw.get("zeta"), "xt" in kw, kw.get("candidates"), kw.get("init")))
        return real(layer, rule, **kw)
    monkeypatch.setattr(evolution, "apply", spy)
    cfg = TrainConfig(**{**SMALL, "epochs": 7}, regrow="gradient-sampled", regrow_candidates=3,
                      prune_schedule="cosine", update_every=2, zeta=0.4)
    _trainer(cfg, digits).fit(digits.X_train, digits.y_train)
    # evolution after epochs 2, 4, 6 (0-based 1, 3, 5) on the 2 hidden layers
    want = [0.4 * (1 + math.cos(math.pi * e / 7)) / 2 for e in (1, 3, 5) for _ in range(2)]
    assert [c[0] for c in calls] == ["gradient-sampled"] * 6
    np.testing.assert_allclose([c[1] for c in calls], want, rtol=1e-12)
    assert all(c[2] and c[3] == 3 and c[4] == "zero" for c in calls)


def test_default_settings_keep_set(digits, monkeypatch):
    calls = []
    real = evolution.apply
    monkeypatch.setattr(evolution, "apply",
                        lambda layer, rule, **kw: calls.append((rule, kw["zeta"])) or
                        real(layer, rule, **kw))
    _trainer(TrainConfig(**SMALL), digits).fit(digits.X_train, digits.y_train)
    assert calls == [("set", 0.3)] * 6


@pytest.mark.parametrize("rule,opt", [("gradient", "sgd"), ("gradient-sampled", "adam")])
def test_exact_resume_bitwise(digits, tmp_path, rule, opt):
    cfg = TrainConfig(**SMALL, regrow=rule, optimizer=opt)
    straight = _trainer(cfg, digits)
    straight.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    run = tmp_path / "run"
    _trainer(cfg, digits, run_dir=run, callbacks=[StopAt(2)]).fit(
        digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    resumed = Trainer.from_checkpoint(run / "checkpoints" / "epoch-0002", run_dir=run,
                                      verbose=False)
    resumed.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    assert_same(_state(straight), _state(resumed))
    # and the rule changed the topology differently from SET's random regrowth
    set_run = _trainer(TrainConfig(**SMALL, optimizer=opt), digits)
    set_run.fit(digits.X_train, digits.y_train)
    assert not np.array_equal(_state(set_run)["W0.indices"], _state(straight)["W0.indices"])


def test_extending_a_finished_gradient_run_equals_training_longer(tmp_path):
    flags = ["--hidden", "32", "24", "--epsilon", "4", "--batch-size", "64", "--lr-schedule",
             "constant", "--threads", "1", "-q", "--regrow", "gradient"]
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert main([*flags, "--epochs", "4", "--out", str(straight)]) == 0
    assert main([*flags, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["--resume", str(run), "--epochs", "4"]) == 0
    a, b = checkpoint.load(straight / "final"), checkpoint.load(run / "final")
    for Wa, Wb in zip(a[0], b[0], strict=True):
        for k in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(Wa, k), getattr(Wb, k))


@pytest.mark.parametrize("kw,match", [
    (dict(regrow="gradient", rewire="degree-preserving", topology="regular", fan_out=(5,)),
     "rule of --rewire set"),
    (dict(regrow="gradient", model="rbm", hidden=(20,)), "rule of --rewire set"),
    (dict(regrow="gradient", topology="static"), "rule of --rewire set"),
    (dict(regrow="gradient-sampled", regrow_candidates=0.5), "regrow_candidates"),
    (dict(regrow_batch=0), "regrow_batch"),
    (dict(update_every=0), "update_every"),
    (dict(regrow="rigl"), "regrow"),
    (dict(prune_schedule="linear"), "prune_schedule"),
])
def test_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kw).resolve()


def test_cli_bad_regrow_exits_2(capsys):
    assert main(["--regrow", "gradient", "--topology", "static", "-q"]) == 2
    assert "rule of --rewire set" in capsys.readouterr().err


def test_profile_reports_the_gradient_batch(tmp_path, capsys):
    from sparsemlp.training import dst as dst_mod
    orig = dst_mod.gradient_signals
    assert main(["--hidden", "32", "--epsilon", "4", "--epochs", "2", "--regrow", "gradient",
                 "--profile", "-q", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "evolution: gradient regrowth batch" in out and "evolution: layer 0" in out
    assert dst_mod.gradient_signals is orig  # detached after the run


@pytest.mark.parametrize("rule", ["gradient", "gradient-sampled"])
def test_same_bits_at_any_thread_count(digits, rule, backend):
    outs = []
    for t in (1, 2):
        cfg = TrainConfig(**{**SMALL, "epochs": 3, "hidden": (300, 200), "epsilon": 20.0,
                             "regrow_batch": 200}, regrow=rule, threads=t, backend=backend)
        tr = _trainer(cfg, digits)
        tr.fit(digits.X_train, digits.y_train)
        outs.append(_state(tr))
    assert_same(*outs)


@pytest.mark.parametrize("rule", ["gradient", "gradient-sampled"])
def test_gradient_regrowth_with_degree_preserving_rewiring_is_refused_with_the_reason(rule):
    with pytest.raises(ConfigError, match="cannot keep every degree.*degree-constrained "
                                          "matching.*--regrow random with --rewire "
                                          "degree-preserving"):
        TrainConfig(regrow=rule, topology="regular", fan_out=(5,),
                    rewire="degree-preserving").resolve()
