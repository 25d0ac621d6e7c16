"""--model rbm: RBMTrainer resume and interrupt, the train / evaluate / info / plot tools."""

import json
import re

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import InterruptAfter, StopAt, assert_same, interrupt_training, shared_data

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.cli import evaluate, info, train
from sparsemlp.data import load as load_data
from sparsemlp.training import checkpoint
from sparsemlp.training import rbm as rbm_trainer_mod
from sparsemlp.training.rbm import RBMTrainer

SMALL = dict(model="rbm", hidden=(40,), epsilon=4.0, epochs=4, batch_size=16,
             checkpoint_every=1, ais_every=2, ais_betas=50, ais_chains=10)
TINY = ["--model", "rbm", "--hidden", "50", "--epsilon", "5", "--epochs", "3", "--threads", "1",
        "--ais-every", "2", "--ais-betas", "100", "--ais-chains", "20", "-q"]


@pytest.fixture(scope="module")
def digits():
    ds = load_data("digits", normalize_how="minmax", rng=np.random.default_rng(0))
    return ds.X_train, np.clip(ds.X_test, 0, 1)


def _trainer(cfg, **kw):
    cfg = cfg.resolve()
    streams = Streams(cfg.seed, legacy=cfg.legacy_rng)
    if cfg.legacy_rng:  # the split would come first in reference mode
        streams.get("split").shuffle(np.arange(10))
    return RBMTrainer.from_config(cfg, 64, streams=streams, verbose=False, **kw)


def _state(tr):
    w, arrays, meta = tr.state()
    out = {f"W.{k}": getattr(w[0], k).copy() for k in ("indptr", "indices", "data")}
    out.update({k: np.array(v, copy=True) for k, v in arrays.items()})
    out["acc"] = np.array(meta["train_recon_original"])
    return out


def _metrics(records):
    return [{k: v for k, v in r.items() if not k.startswith(("seconds", "peak"))}
            for r in records]


@pytest.mark.parametrize("extra", [dict(), dict(persistent=True, momentum=0.5, cd_k=2),
                                   dict(mode="reference", ais_every=0),
                                   dict(visible_units="gaussian", lr=0.005)])
def test_exact_resume_bitwise(digits, tmp_path, extra):
    """4 epochs == 2 + checkpoint + resume + 2, bit for bit (weights, optimizer, chains,
    the original's train accumulator, metrics)."""
    Xtr, Xte = digits
    if extra.get("visible_units") == "gaussian":
        Xtr, Xte = (Xtr - Xtr.mean(0)) / (Xtr.std(0) + 1e-3), (Xte - Xtr.mean(0)) / (Xtr.std(0) + 1e-3)
    cfg = TrainConfig(**{**SMALL, **extra})
    straight = _trainer(cfg)
    straight.fit(Xtr, Xte)
    run = tmp_path / "run"
    first = _trainer(cfg, run_dir=run, callbacks=[StopAt(2)])
    first.fit(Xtr, Xte)
    resumed = RBMTrainer.from_checkpoint(run / "checkpoints" / "epoch-0002", run_dir=run,
                                         verbose=False)
    assert resumed.epoch == 2
    resumed.fit(Xtr, Xte)
    assert_same(_state(straight), _state(resumed))
    assert _metrics(straight.history.records) == _metrics(resumed.history.records)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    recs = straight.history.records
    assert recs[-1]["nnz"][0] < recs[0]["nnz"][0]  # removal only after the last epoch
    if cfg.resolve().ais_every:
        assert [r["test_log_likelihood"] is not None for r in recs] == [False, True, False, True]


def test_interrupt_saves_and_resumes_exactly(digits, tmp_path, monkeypatch):
    Xtr, Xte = digits
    cfg = TrainConfig(**{**SMALL, "epochs": 3, "persistent": True})
    straight = _trainer(cfg)
    straight.fit(Xtr, Xte)
    run = tmp_path / "run"
    tr = _trainer(cfg, run_dir=run)
    n_batches = -(-Xtr.shape[0] // 16)
    monkeypatch.setattr(rbm_trainer_mod, "_InterruptFlag", lambda: InterruptAfter(n_batches + 1 + 7))
    with pytest.raises(KeyboardInterrupt):
        tr.fit(Xtr, Xte)
    monkeypatch.undo()
    assert checkpoint.read_latest(run).endswith("epoch-0001-step-000007")
    resumed = RBMTrainer.from_checkpoint(run, run_dir=run, verbose=False)
    assert resumed.epoch == 1 and resumed._resume["batch"] == 7
    resumed.fit(Xtr, Xte)
    assert_same(_state(straight), _state(resumed))
    assert _metrics(straight.history.records) == _metrics(resumed.history.records)


def test_likelihood_metrics_do_not_touch_training(digits):
    """PLL and AIS use their own streams: turning them off leaves training bit for bit."""
    Xtr, Xte = digits
    a = _trainer(TrainConfig(**{**SMALL, "epochs": 2}))
    a.fit(Xtr, Xte)
    b = _trainer(TrainConfig(**{**SMALL, "epochs": 2, "ais_every": 0, "pll": "none"}))
    b.fit(Xtr, Xte)
    assert_same(_state(a), _state(b))
    assert b.history[-1]["test_pll"] is None and a.history[-1]["test_pll"] < 0


# --------------------------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("rbm") / "run"
    assert train.main([*TINY, "--out", str(d)]) == 0
    return d


def test_cli_writes_run_dir(run_dir):
    for name in ("config.json", "metrics.jsonl", "latest", "initial_degrees.npz",
                 "final/layer_0.npz", "final/state.npz", "final/meta.json"):
        assert (run_dir / name).exists(), name
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    assert cfg["model"] == "rbm" and cfg["normalize"] == "minmax" and cfg["hidden"] == [50]
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    for key in ("train_recon", "train_recon_original", "test_recon", "test_pll", "nnz",
                "seconds_train", "seconds_evolution", "seconds_eval", "peak_rss_mb"):
        assert all(r.get(key) is not None for r in recs), key
    assert [r["test_log_likelihood"] is not None for r in recs] == [False, True, True]
    assert recs[-1]["test_pll"] < 0 and recs[-1]["test_log_likelihood"] < 0
    meta = json.loads((run_dir / "final" / "meta.json").read_text())
    assert meta["model_class"] == "SparseRBM" and meta["epoch"] == 3
    W = sp.load_npz(run_dir / "final" / "layer_0.npz")  # plain SciPy
    assert W.shape == (64, 50) and W.nnz == recs[-1]["nnz"][0] < recs[0]["nnz"][0]


def test_cli_resume_extends_the_run(run_dir, tmp_path):
    import shutil

    d = tmp_path / "ext"
    shutil.copytree(run_dir, d)
    assert train.main(["--resume", str(d), "--epochs", "5", "-q"]) == 0
    recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2, 3, 4, 5]


def test_cli_reference_mode_reproduces_published_run(tmp_path):
    """--model rbm --mode reference on COIL20: the published first 10 epochs (6+ digits)."""
    mat = shared_data("coil20", "COIL20.mat")
    ref = np.loadtxt(shared_data("set-reference-results", "coil20_set_rbm_metrics.txt"))[:10]
    d = tmp_path / "ref"
    assert train.main(["--model", "rbm", "--mode", "reference", "--dataset", str(mat),
                       "--epochs", "10", "--out", str(d), "-q"]) == 0
    recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    got = np.array([[r["train_recon_original"], r["test_recon"]] for r in recs])
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert recs[0]["nnz"] == [11857]


@pytest.mark.parametrize("argv,msg", [
    (["--normalize", "zscore"], r"needs data in \[0, 1\].*--normalize minmax"),
    (["--hidden", "10", "10"], "one hidden layer size"),
    (["--visible-units", "gaussian", "--normalize", "minmax"], "--normalize zscore"),
    (["--prune-percentile", "10"], "prune-percentile"),
    (["--cd-k", "0"], "'cd_k'"),
    (["--topology", "regular", "--fan-out", "5"], "--model rbm supports --topology set or static"),
])
def test_cli_errors_exit_2(argv, msg, capsys, tmp_path):
    import re

    assert train.main(["--model", "rbm", "--epochs", "1", *argv, "--out",
                       str(tmp_path / "x"), "-q"]) == 2
    err = capsys.readouterr().err
    assert re.search(msg, err), err
    assert len(err.strip().splitlines()) == 1


def test_cli_gaussian_visible_units(tmp_path):
    d = tmp_path / "g"
    assert train.main(["--model", "rbm", "--visible-units", "gaussian", "--lr", "0.005",
                       "--hidden", "30", "--epochs", "2", "--ais-every", "2", "--ais-betas", "50",
                       "--out", str(d), "-q"]) == 0
    recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["test_pll"] is None and recs[-1]["test_log_likelihood"] is not None
    assert json.loads((d / "config.json").read_text())["config"]["normalize"] == "zscore"


def test_evaluate_rbm_run_against_dense_pll(run_dir, capsys):
    """evaluate --json on an RBM run: its exact PLL equals dense free-energy flips."""
    assert evaluate.main([str(run_dir), "--json", "--split", "both", "--ais"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model_class"] == "SparseRBM" and res["epoch"] == 3
    W = sp.load_npz(run_dir / "final" / "layer_0.npz").toarray().astype(np.float64)
    with np.load(run_dir / "final" / "state.npz") as z:
        bv, bh = z["visible_bias"].astype(np.float64), z["layers.0.bias"].astype(np.float64)
    ds = load_data("digits", normalize_how="minmax", rng=Streams(0).get("split"),
                   dtype=np.float32)
    X = np.clip(ds.X_test, 0, 1).astype(np.float64)
    Xb = (Streams(0).get("binarize", X.shape[0]).random(X.shape) < X).astype(float)

    def free(v):
        return -(v @ bv) - np.logaddexp(0, v @ W + bh).sum(1)
    pll = np.zeros(X.shape[0])
    for i in range(64):
        f = Xb.copy()
        f[:, i] = 1 - f[:, i]
        pll += -np.logaddexp(0, free(Xb) - free(f))
    assert res["test"]["pll_method"] == "exact"
    assert res["test"]["pll"] == pytest.approx(pll.mean(), rel=1e-4)
    assert res["test"]["count"] == X.shape[0] and res["train"]["count"] == ds.X_train.shape[0]
    assert res["test"]["log_likelihood"] < 0 and res["test"]["log_z"] > 0
    assert 0 < res["test"]["recon"] < 0.2
    assert evaluate.main([str(run_dir)]) == 0
    assert "reconstruction error" in capsys.readouterr().out


def test_info_rbm_run(run_dir, capsys):
    assert info.main([str(run_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    W = sp.load_npz(run_dir / "final" / "layer_0.npz")
    assert r["model_class"] == "SparseRBM" and r["sizes"] == [64, 50]
    assert r["layers"][0]["nnz"] == W.nnz and r["last_epoch"]["test_recon"] > 0
    assert info.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "SparseRBM [64, 50]" in out and "test_recon" in out


def test_checkpoints_of_the_other_model_are_refused(run_dir, tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="'SparseRBM', not a SparseMLP"):
        Trainer.from_checkpoint(run_dir / "final")
    mlp = tmp_path / "mlp"
    assert train.main(["--hidden", "10", "--epochs", "1", "--out", str(mlp), "-q"]) == 0
    with pytest.raises(checkpoint.CheckpointError, match="'SparseMLP', not a SparseRBM"):
        RBMTrainer.from_checkpoint(mlp)


def test_plot_rbm_run_writes_grids(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    from sparsemlp.cli import plot

    out = tmp_path / "plots"
    assert plot.main([str(run_dir), "--out", str(out)]) == 0
    for name in ("learning_curves.png", "time_per_epoch.png", "degrees.png",
                 "reconstructions.png", "samples.png"):
        p = out / name
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        img = matplotlib.image.imread(p)
        assert img.shape[0] > 150 and img[..., :3].std() > 0.02, name
    assert plot.main([str(run_dir), "--out", str(out), "--image-shape", "4", "4"]) == 2
    assert "64 visible units" in capsys.readouterr().err


def test_plot_image_layout():
    from sparsemlp.cli.plot_rbm import image_layout

    assert image_layout(1024, "/x/COIL20.mat") == (32, 32, "F")
    assert image_layout(64, "digits") == (8, 8, "C")
    assert image_layout(784, "fashion-mnist") == (28, 28, "C")
    assert image_layout(500, "madelon") is None
    assert image_layout(500, "x", shape=(20, 25), order="F") == (20, 25, "F")


def test_ctrl_c_in_subprocess_checkpoints_and_exits_130(tmp_path):
    import signal

    out = tmp_path / "run"
    code, err, latest = interrupt_training(
        ["--model", "rbm", "--hidden", "3000", "--epochs", "500", "--batch-size", "2",
         "--pll", "stochastic", "--ais-every", "0"], out, signal.SIGINT)
    assert code == 130, err
    # training takes most of an epoch (cheap evaluation), so the signal usually lands between
    # two batches ("-step-"); on a loaded machine it may land in the epoch's evaluation, which
    # then ends and saves "epoch-NNNN": both are the checkpoint of the last completed step
    assert latest is not None and re.search(r"epoch-\d{4}(-step-\d{6})?$", latest), latest
    assert RBMTrainer.from_checkpoint(out, verbose=False).step > 0
