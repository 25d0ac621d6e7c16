"""python -m sparsemlp.train: in-process main(argv), error exit codes, resume, one subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sparsemlp.cli.train import main

FAST = ["--hidden", "64", "64", "--epsilon", "5", "--epochs", "2", "--batch-size", "32", "-q"]


def test_main_trains_and_writes_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST, "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "test accuracy" in summary and "% of dense" in summary
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["hidden"] == [64, 64]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for k in ("train_loss", "test_loss", "test_accuracy", "best_test_accuracy", "nnz",
              "dense_params", "seconds_train", "seconds_evolution", "seconds_eval",
              "peak_rss_mb"):
        assert k in lines[-1]
    assert (out / "final" / "meta.json").exists()


def test_main_leaves_the_package_logger_as_it_found_it(tmp_path, capsys):
    """main() called in-process (a notebook, a test) logs to stderr while it runs, then
    restores the "sparsemlp" logger: its records reach the root logger's handlers again."""
    import logging

    lg = logging.getLogger("sparsemlp")
    before = (lg.handlers[:], lg.level, lg.propagate)
    assert main([*FAST, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert (lg.handlers[:], lg.level, lg.propagate) == before


def test_print_config_precedence(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('epsilon = 7.0\nbatch_size = 10\nhidden = [5, 6]\n')
    assert main(["--config", str(toml), "--batch-size", "3", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["epsilon"], cfg["batch_size"], cfg["hidden"]) == (7.0, 3, [5, 6])
    assert cfg["loss"] == "cross_entropy"  # mode default filled in


@pytest.mark.parametrize("argv,msg", [
    (["--zeta", "1.5"], "zeta"),
    (["--dataset", "no_such_set"], "Unknown data set"),
    (["--dataset", "/nonexistent/x.npz"], "not found"),
    (["--epochs", "0"], "epochs"),
    (["--hidden", "10", "-3"], "hidden"),
])
def test_errors_exit_2_with_one_line(argv, msg, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_unknown_config_key_suggests(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text("bacth_size = 3\n")
    assert main(["--config", str(toml)]) == 2
    assert "Did you mean 'batch_size'" in capsys.readouterr().err


def test_existing_run_and_resume_conflict(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST, "--out", str(out)]) == 0
    assert main([*FAST, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["--resume", str(out), "--epsilon", "9", "-q"]) == 2
    assert "conflicts" in capsys.readouterr().err
    assert main(["--resume", str(out), "--epochs", "3", "-q"]) == 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 7))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main([*FAST, "--dataset", str(tmp_path / "d.npz"), "--out", str(tmp_path / "r")]) == 0


def test_subprocess_run(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "sparsemlp.train", *FAST, "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout


def test_cli_resume_from_mid_run_checkpoint_is_exact(tmp_path):
    """4 epochs straight == the same run resumed by the CLI from its epoch-2 checkpoint."""
    import shutil

    from sparsemlp.training import checkpoint

    a = tmp_path / "a"
    assert main([*FAST[:-1], "--epochs", "4", "--checkpoint-every", "1", "--keep-checkpoints", "5",
                 "--out", str(a), "-q"]) == 0
    b = tmp_path / "b"
    shutil.copytree(a, b)
    shutil.rmtree(b / "final")
    for d in ("epoch-0003",):
        shutil.rmtree(b / "checkpoints" / d)
    checkpoint.write_latest(str(b), os.path.join("checkpoints", "epoch-0002"))
    assert main(["--resume", str(b), "-q"]) == 0
    wa, sa, _ = checkpoint.load(str(a / "final"))
    wb, sb, _ = checkpoint.load(str(b / "final"))
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.data, y.data)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    ma = (a / "metrics.jsonl").read_text().splitlines()
    mb = (b / "metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if not k.startswith(("seconds", "peak"))}
             for x in ma]
    assert strip == [{k: v for k, v in json.loads(x).items()
                      if not k.startswith(("seconds", "peak"))} for x in mb]
