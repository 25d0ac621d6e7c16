"""The evaluate and info tools and the ``sparsemlp`` dispatcher: in-process, against oracles."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from dense_reference import forward as dense_forward

from sparsemlp._rng import Streams
from sparsemlp.cli import evaluate, info
from sparsemlp.cli import main as cli
from sparsemlp.cli import train as train_cli
from sparsemlp.cli.train import load_dataset
from sparsemlp.training import checkpoint
from sparsemlp.training.config import TrainConfig

ARGS = ["--hidden", "40", "30", "--epsilon", "4", "--epochs", "3", "--batch-size", "32",
        "--checkpoint-every", "1", "-q"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert train_cli.main([*ARGS, "--out", str(out)]) == 0
    return out


def _weights(path):
    ws, arrays, meta = checkpoint.load(path)
    return ws, [arrays[f"layers.{i}.bias"] for i in range(len(ws))], meta


def test_evaluate_matches_dense_oracle_and_metrics(run_dir, capsys):
    assert evaluate.main([str(run_dir), "--split", "both", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert res["epoch"] == 3
    assert res["test"]["accuracy"] == pytest.approx(last["test_accuracy"], abs=1e-12)
    # oracle: dense NumPy forward of the saved weights on the same split
    ws, bs, meta = _weights(run_dir / "final")
    cfg = TrainConfig.from_dict(meta["config"]).resolve()
    ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng))
    dense = [W.toarray().astype(np.float64) for W in ws]  # tiny test model only
    layers = dense_forward(dense, [b.astype(np.float64) for b in bs],
                           ["relu", "relu", "softmax"], ds.X_test.astype(np.float64))
    pred = np.argmax(layers[-1][1], axis=1)
    assert res["test"]["accuracy"] == pytest.approx(np.mean(pred == ds.y_test), abs=1e-12)
    per = res["test"]["per_class_accuracy"]
    for c in range(10):
        assert per[str(c)] == pytest.approx(np.mean(pred[ds.y_test == c] == c), abs=1e-12)
    assert res["train"]["count"] == ds.X_train.shape[0]


def test_evaluate_named_checkpoint_and_text(run_dir, capsys):
    assert evaluate.main([str(run_dir), "--checkpoint", "epoch-0002"]) == 0
    out = capsys.readouterr().out
    assert "(epoch 2)" in out and "accuracy" in out


@pytest.mark.parametrize("argv,msg", [
    (["{missing}"], "does not exist"),
    (["{run}", "--checkpoint", "epoch-9999"], "no checkpoint 'epoch-9999'"),
    (["{run}", "--dataset", "synthetic"], "features but the model takes"),
    (["{run}", "--dataset", "nope"], "nope"),
    (["{run}", "--ais"], "--ais estimates an RBM's log-likelihood; this run is a SparseMLP"),
    (["{run}", "--dataset", "{obj}"], "array 'X' holds Python objects"),
    (["{run}", "--data-dir", "{obj}"], "is a file. Pass the folder"),
    (["{run}", "--dataset", "{obj}", "--checkpoint", "epoch-0002"], "holds Python objects"),
])
def test_evaluate_errors(run_dir, tmp_path, capsys, argv, msg):
    np.savez(tmp_path / "obj.npz", X=np.array([[1.0]] * 4, dtype=object), y=np.arange(4) % 2)
    argv = [a.format(run=run_dir, missing=tmp_path / "missing", obj=tmp_path / "obj.npz")
            for a in argv]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("value", ["-1", "two"])
def test_evaluate_bad_threads_is_a_usage_error(run_dir, capsys, value):
    assert evaluate.main([str(run_dir), "--threads", value]) == 2
    assert "is not a thread count" in capsys.readouterr().err


def test_info_against_scipy(run_dir, capsys):
    assert info.main([str(run_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    ws, _, _ = _weights(run_dir / "final")
    assert r["nnz"] == sum(W.nnz for W in ws)
    assert r["sizes"] == [64, 40, 30, 10]
    for la, W in zip(r["layers"], ws):
        csc = sp.csc_array(W)
        indeg = np.diff(csc.indptr)
        outdeg = np.diff(W.indptr)
        assert la["nnz"] == W.nnz and la["density"] == W.nnz / (W.shape[0] * W.shape[1])
        assert la["in_degree"]["max"] == indeg.max() and la["in_degree"]["zero"] == np.sum(indeg == 0)
        assert la["out_degree"]["mean"] == pytest.approx(outdeg.mean())
        assert la["bytes"] == W.data.nbytes + W.indices.nbytes + W.indptr.nbytes
    assert r["share_of_dense"] == pytest.approx(r["nnz"] / (64 * 40 + 40 * 30 + 30 * 10))


def test_info_text_and_errors(run_dir, tmp_path, capsys):
    assert info.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "B/conn" in out and "total:" in out
    (tmp_path / "empty").mkdir()
    assert info.main([str(tmp_path / "empty")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_initial_degrees_file(run_dir):
    ws0 = np.load(run_dir / "initial_degrees.npz")
    # after evolution nnz per layer is unchanged, so degree sums agree with the final layers
    ws, _, _ = _weights(run_dir / "final")
    for i, W in enumerate(ws):
        assert ws0[f"out_{i}"].sum() == ws0[f"in_{i}"].sum() == W.nnz
        assert ws0[f"out_{i}"].shape == (W.shape[0],) and ws0[f"in_{i}"].shape == (W.shape[1],)


def test_dispatcher(run_dir, capsys):
    assert cli.main(["info", str(run_dir)]) == 0
    assert "total:" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["--help"]) == 0
    assert cli.main(["frobnicate"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err


def test_subsample_and_synthetic_flags(tmp_path, capsys):
    out = tmp_path / "s"
    assert train_cli.main(["--dataset", "synthetic", "--synthetic-samples", "300",
                           "--synthetic-features", "12", "--synthetic-classes", "3",
                           "--train-samples", "50", "--test-samples", "40", "--hidden", "8",
                           "--epochs", "1", "--out", str(out), "-q"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["n_features"], cfg["n_classes"]) == (12, 3)
    assert "50 train / 40 test" in cfg["dataset"]
    assert train_cli.main(["--train-samples", "99999", "--out", str(tmp_path / "t")]) == 2
    assert "exceeds" in capsys.readouterr().err


def test_console_module_subprocess(run_dir):
    p = subprocess.run([sys.executable, "-m", "sparsemlp", "info", str(run_dir)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "SparseMLP [64, 40, 30, 10]" in p.stdout


def test_profile_counts_calls_and_detaches(tmp_path, capsys):
    import numpy as np

    from sparsemlp import TrainConfig, Trainer
    from sparsemlp.data import load
    from sparsemlp.training.profile import Profiler

    ds = load("digits", rng=np.random.default_rng(0))
    cfg = TrainConfig(hidden=(30, 20), epochs=3, batch_size=100, checkpoint_every=0)
    tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, verbose=False)
    layer0 = tr.model.layers[0]
    prof = Profiler(tr)
    tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    prof.detach()
    n_batches = -(-ds.X_train.shape[0] // 100)
    assert prof.calls["train: layer 0 forward"] == 3 * n_batches  # eval forwards not counted
    # serial runs update layer by layer during the backward pass: one call per layer
    assert prof.calls["train: optimizer update"] == 3 * n_batches * len(tr.model.layers)
    # no evolution after the last epoch; the output layer is not evolved in default mode
    assert prof.calls["evolution: layer 0"] == prof.calls["evolution: layer 1"] == 2
    assert "evolution: layer 2" not in prof.calls
    assert "forward" not in vars(layer0) and "step" not in vars(tr.optimizer)
    rep = prof.report()
    assert "train: layer 1 backward" in rep and "evaluation" in rep
    # the CLI flag prints the table and writes profile.json
    out = tmp_path / "p"
    assert train_cli.main([*ARGS, "--out", str(out), "--profile"]) == 0
    assert "s/epoch" in capsys.readouterr().out and (out / "profile.json").exists()


def test_rbm_evaluate_reproduces_the_last_epoch(tmp_path, capsys):
    """evaluate scores the saved RBM as the last record of metrics.jsonl did: the final
    removal comes before the last epoch's metrics and evaluate draws from the same stream."""
    out = tmp_path / "rbm"
    assert train_cli.main(["--model", "rbm", "--hidden", "20", "--epochs", "3", "--ais-every", "3",
                           "--ais-chains", "10", "--ais-betas", "50", "-q", "--out", str(out)]) == 0
    capsys.readouterr()
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert evaluate.main([str(out), "--ais", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["test"]
    ws, _, _ = _weights(out / "final")
    assert last["nnz"] == [ws[0].nnz] and last["epoch"] == 3
    assert res["recon"] == last["test_recon"]
    assert res["pll"] == last["test_pll"] and res["pll_method"] == last["test_pll_method"]
    assert res["log_z"] == last["log_z"] and res["log_likelihood"] == last["test_log_likelihood"]
