"""Pre-defined topologies end to end: config, frozen and degree-preserving training, checkpoints,
CLI flags, schedule export, ``sparsemlp.info``, input padding, the KL comparison."""

import csv
import json
import logging

import numpy as np
import pytest
from scipy import stats

from sparsemlp import Callback, TrainConfig, Trainer
from sparsemlp.cli.info import main as info_main
from sparsemlp.cli.info import run_info
from sparsemlp.cli.train import main as train_main
from sparsemlp.data import load
from sparsemlp.nn.functions import kl_divergence
from sparsemlp.topology import ClashFreeSchedule
from sparsemlp.training.config import ConfigError

# digits: 64 features, 10 classes. [64, 40, 10] with fan-out [5, 5]: fan-in 8 and 20;
# cycles 20 gives z = [16, 10].
CF = ["--topology", "clash-free", "--hidden", "40", "--fan-out", "5", "5", "--cycles", "20",
      "--batch-size", "32", "-q"]


@pytest.fixture(scope="module")
def digits():
    return load("digits", rng=np.random.default_rng(0))


def snapshot(model):
    return [(la.W.indptr.copy(), la.W.indices.copy()) for la in model.layers]


def degrees(W):
    return np.diff(W.indptr).tolist(), np.bincount(W.indices, minlength=W.shape[1]).tolist()


def brute_clash_free(W, s):
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    assert sorted(s.order.tolist()) == list(range(W.nnz))
    return all(len(set(b)) == s.z for b in (rows[s.order] % s.z).reshape(-1, s.z).tolist())


@pytest.mark.parametrize("kw", [dict(topology="static"),
                                dict(topology="regular", fan_out=(8, 5)),
                                dict(topology="clash-free", fan_out=(5, 5), z=(16, 10)),
                                dict(topology="random", fan_out=(5, 5))])
def test_frozen_training_leaves_the_indices_untouched(digits, kw):
    hidden = (40,) if kw.get("z") or kw.get("topology") == "random" else (32,)
    cfg = TrainConfig(hidden=hidden, epochs=3, batch_size=32, **kw).resolve()
    assert cfg.rewire == "none"
    tr = Trainer.from_config(cfg, digits.n_features, digits.n_classes, verbose=False)
    before = snapshot(tr.model)
    w0 = tr.model.layers[0].W.data.copy()
    tr.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    for (ip, ind), la in zip(before, tr.model.layers):
        np.testing.assert_array_equal(ip, la.W.indptr)
        np.testing.assert_array_equal(ind, la.W.indices)
    assert not np.array_equal(w0, tr.model.layers[0].W.data)  # it did train
    assert tr.history[-1]["test_accuracy"] > 0.5


def test_regular_net_has_the_promised_degrees(digits):
    cfg = TrainConfig(topology="regular", hidden=(32,), fan_out=(8, 5), epochs=1).resolve()
    m = Trainer.from_config(cfg, 64, 10, verbose=False).model
    assert degrees(m.layers[0].W) == ([8] * 64, [16] * 32)
    assert degrees(m.layers[1].W) == ([5] * 32, [16] * 10)
    assert all(la.schedule is None for la in m.layers)


def test_degree_preserving_training_keeps_degrees_and_clash_freedom(digits, tmp_path):
    cfg = TrainConfig(topology="clash-free", rewire="degree-preserving", hidden=(40,),
                      fan_out=(5, 5), cycles=20, clash_kind=2, dither=True, epochs=4,
                      batch_size=32, evolve_output=True).resolve()
    tr = Trainer.from_config(cfg, 64, 10, verbose=False, run_dir=tmp_path / "run")
    m = tr.model
    assert [la.schedule.z for la in m.layers] == [16, 10]
    deg = [degrees(la.W) for la in m.layers]
    before = snapshot(m)
    tr.fit(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    assert [degrees(la.W) for la in m.layers] == deg
    for la in m.layers:
        assert brute_clash_free(la.W, la.schedule)
    assert any(not np.array_equal(b[1], la.W.indices) for b, la in zip(before, m.layers))
    # the checkpoint carries the (rewired) schedules
    back = Trainer.from_checkpoint(tmp_path / "run" / "final", verbose=False)
    for a, b in zip(m.layers, back.model.layers):
        np.testing.assert_array_equal(a.schedule.order, b.schedule.order)
        assert (b.schedule.z, b.schedule.kind, b.schedule.dither) == (a.schedule.z, 2, True)


def test_resume_with_schedule_is_bit_exact(digits, tmp_path):
    kw = dict(topology="clash-free", rewire="degree-preserving", hidden=(40,), fan_out=(5, 5),
              z=(16, 10), batch_size=64, evolve_output=True, checkpoint_every=2)
    full = Trainer.from_config(TrainConfig(epochs=4, **kw), 64, 10, verbose=False)
    full.fit(digits.X_train, digits.y_train)
    class StopAt2(Callback):
        def on_epoch_end(self, trainer, record):
            return record["epoch"] == 2

    part = Trainer.from_config(TrainConfig(epochs=4, **kw), 64, 10, verbose=False,
                               run_dir=tmp_path / "r", callbacks=[StopAt2()])
    part.fit(digits.X_train, digits.y_train)  # a crash after epoch 2
    again = Trainer.from_checkpoint(tmp_path / "r" / "checkpoints" / "epoch-0002",
                                    verbose=False)
    again.fit(digits.X_train, digits.y_train)
    for a, b in zip(full.model.layers, again.model.layers):
        np.testing.assert_array_equal(a.W.indices, b.W.indices)
        np.testing.assert_array_equal(a.W.data, b.W.data)
        np.testing.assert_array_equal(a.schedule.order, b.schedule.order)


def test_set_rewiring_drops_a_schedule(digits):
    cfg = TrainConfig(topology="clash-free", rewire="set", hidden=(40,), fan_out=(5, 5),
                      cycles=20, epochs=2).resolve()
    tr = Trainer.from_config(cfg, 64, 10, verbose=False)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("sparsemlp.training.mlp")
    log.addHandler(handler)
    try:
        tr.fit(digits.X_train, digits.y_train)
    finally:
        log.removeHandler(handler)
    assert tr.model.layers[0].schedule is None and tr.model.layers[1].schedule is not None
    assert any("schedule is dropped" in r.getMessage() for r in records)


@pytest.mark.parametrize("kw,msg", [
    (dict(topology="regular"), "needs fan_out"),
    (dict(topology="regular", fan_out=(5, 5, 5)), "one value per layer"),
    (dict(topology="clash-free", fan_out=(5, 5)), "either z"),
    (dict(topology="clash-free", fan_out=(5, 5), z=(16, 10), cycles=20), "either z"),
    (dict(topology="regular", fan_out=(5, 5), z=(16, 10)), "clash-free' only"),
    (dict(topology="set", fan_out=(5, 5)), "pre-defined topologies only"),
    (dict(topology="static", rewire="set"), "contradicts"),
    (dict(topology="set", rewire="none"), "contradicts"),
    (dict(clash_kind=4), "clash_kind"),
    (dict(topology="regular", fan_out=(5, 0)), "fan_out"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(hidden=(40,), **kw).resolve()


def test_rewire_auto():
    assert TrainConfig().resolve().rewire == "set"
    assert TrainConfig(topology="static").resolve().rewire == "none"
    c = TrainConfig(topology="regular", hidden=(40,), fan_out=(5, 5)).resolve()
    assert c.rewire == "none" and c.resolve().rewire == "none"
    c = TrainConfig(topology="regular", hidden=(40,), fan_out=(5, 5),
                    rewire="degree-preserving").resolve()
    assert c.rewire == "degree-preserving"


def test_cli_clash_free_schedule_files_and_info(tmp_path, capsys):
    out = tmp_path / "cf"
    assert train_main([*CF, "--epochs", "2", "--clash-kind", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["topology"], cfg["fan_out"], cfg["cycles"], cfg["clash_kind"]) == \
        ("clash-free", [5, 5], 20, 3)
    for i, z in enumerate((16, 10)):
        with open(out / "schedules" / f"layer_{i}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == ["cycle", "lane", "bank", "address", "input", "output"]
        assert len(rows) == {0: 320, 1: 200}[i]
        by_cycle = {}
        for r in rows:
            r = {k: int(v) for k, v in r.items()}
            assert r["bank"] == r["input"] % z and r["address"] == r["input"] // z
            by_cycle.setdefault(r["cycle"], []).append(r["bank"])
        assert len(by_cycle) == 20 and all(sorted(b) == list(range(z)) for b in by_cycle.values())
        assert len({(int(r["input"]), int(r["output"])) for r in rows}) == len(rows)
        doc = json.loads((out / "schedules" / f"layer_{i}.json").read_text())
        assert doc["clash_free"] and doc["z"] == z and doc["kind"] == 3
    r = run_info(str(out))
    for la, (fo, fi) in zip(r["layers"], [(5, 8), (5, 20)]):
        assert la["regular"] and la["out_degree"]["max"] == fo and la["in_degree"]["min"] == fi
        assert la["clash_free"]["clash_free"] and la["clash_free"]["n_cycles"] == 20
    assert info_main([str(out), "--schedule-out", str(tmp_path / "sch")]) == 0
    text = capsys.readouterr().out
    assert "clash-free: every cycle reads z different banks (z=16 banks x 4 addresses" in text
    assert "regular: fan-out 5, fan-in 20" in text
    assert (tmp_path / "sch" / "layer_1.csv").read_text() == \
        (out / "schedules" / "layer_1.csv").read_text()


def test_info_reports_a_clash(tmp_path, capsys):
    out = tmp_path / "cf"
    assert train_main([*CF, "--epochs", "1", "--out", str(out)]) == 0
    from sparsemlp.training import checkpoint

    weights, arrays, meta = checkpoint.load(out / "final")
    s = ClashFreeSchedule.from_state_dict(arrays, "layers.0.schedule.")
    # no dither: lane u reads bank u; cycle 0 lane 0 (bank 0) <-> cycle 1 lane 1 (bank 1)
    s.order[[0, 17]] = s.order[[17, 0]]
    assert not brute_clash_free(weights[0], s)
    arrays.update(s.state_dict("layers.0.schedule."))
    checkpoint.save(out / "bad", weights=weights, arrays=arrays, meta=meta)
    la = run_info(str(out / "bad"))["layers"][0]
    assert not la["clash_free"]["clash_free"] and la["clash_free"]["n_clashing_cycles"] == 2
    capsys.readouterr()
    assert info_main([str(out / "bad")]) == 0
    assert "NOT clash-free: 2 of 20 cycles clash" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["--topology", "regular", "--hidden", "40"], "needs fan_out"),
    (["--topology", "regular", "--hidden", "40", "--fan-out", "3", "5"], "'fan_out'"),
    (["--topology", "clash-free", "--hidden", "40", "--fan-out", "5", "5", "--z", "7", "10"],
     "'z'"),
    (["--topology", "clash-free", "--hidden", "40", "--fan-out", "5", "5", "--cycles", "30"],
     "Feasible cycle counts"),
    (["--pad-inputs", "50"], "pad-inputs"),
])
def test_cli_errors_exit_2(argv, msg, tmp_path, capsys):
    assert train_main([*argv, "--epochs", "1", "-q", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_pad_inputs_like_the_original(tmp_path, capsys):
    """64 digits features padded to 80 so that z = 20 divides them; zero inputs change nothing."""
    out = tmp_path / "pad"
    argv = ["--topology", "clash-free", "--pad-inputs", "80", "--hidden", "40", "--fan-out", "5",
            "5", "--z", "20", "10", "--epochs", "1", "-q", "--out", str(out)]
    assert train_main(argv) == 0
    r = run_info(str(out))
    assert r["sizes"] == [80, 40, 10] and "zero-padded 64 -> 80" in r["data"]
    assert r["layers"][0]["clash_free"]["z"] == 20


def test_kl_divergence_matches_scipy_entropy():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(10), 200)
    b = rng.dirichlet(np.ones(10), 200)
    a[3, 4] = 0.0
    ref = np.mean([stats.entropy(a[i], b[i]) for i in range(200)])
    assert kl_divergence(a, b) == pytest.approx(ref, rel=1e-12)
    assert kl_divergence(a, a) == 0.0
    assert kl_divergence(2 * a, b) == pytest.approx(ref, rel=1e-12)  # rows normalised
    b[0, 0] = 0.0
    assert kl_divergence(a, b) == np.inf
    floor = np.maximum(b, 1e-7)
    ref = np.mean([stats.entropy(a[i], floor[i]) for i in range(200)])
    assert kl_divergence(a, b, eps=1e-7) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(a, b[:5])
    with pytest.raises(ValueError, match="non-negative"):
        kl_divergence(-a, b)
