"""Run lifecycle: restart before the first checkpoint, SIGTERM, --resume of a checkpoint
directory, leftovers of killed writers, extending a finished run, --resume/--out errors."""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_same, interrupt_training

from sparsemlp import TrainConfig, Trainer
from sparsemlp.cli.train import main
from sparsemlp.training import checkpoint
from sparsemlp.training.rundir import clean_leftovers

MLP = ["--hidden", "32", "24", "--epsilon", "4", "--batch-size", "64", "--lr-schedule", "constant",
       "--threads", "1", "-q"]
RBM = ["--model", "rbm", "--hidden", "24", "--epsilon", "4", "--batch-size", "64", "--threads", "1",
       "--ais-every", "0", "--pll", "none", "-q"]


def _state(ck):
    """Weights and state arrays of a checkpoint, read with plain NumPy/SciPy file access."""
    weights, arrays, _ = checkpoint.load(ck)
    out = {f"W{i}.{k}": getattr(W, k) for i, W in enumerate(weights)
           for k in ("indptr", "indices", "data")}
    out.update(arrays)
    return out


def _metrics(run, epochs=None):
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("seconds", "peak"))}
            for r in recs if epochs is None or r["epoch"] in epochs]


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _strip_to_no_checkpoint(run):
    """The state a kill leaves before the first checkpoint: config.json, metrics, no checkpoint."""
    for p in ("final", "checkpoints"):
        shutil.rmtree(run / p, ignore_errors=True)
    (run / "latest").unlink()


# -- item 2: a run stopped before its first checkpoint -------------------------------------
@pytest.mark.parametrize("how", ["resume", "rerun"])
def test_run_without_a_checkpoint_restarts(tmp_path, how, capsys):
    """A run killed before its first checkpoint (config.json and one epoch of metrics, no
    checkpoint) restarts: by --resume or by running the same command again, and ends
    exactly where an uninterrupted run ends."""
    straight = tmp_path / "straight"
    assert main([*MLP, "--epochs", "3", "--out", str(straight)]) == 0
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "1", "--out", str(run)]) == 0
    _strip_to_no_checkpoint(run)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / f"epoch-0001.tmp-{_dead_pid()}").mkdir()  # a write cut short
    if how == "resume":
        assert main(["--resume", str(run), "--epochs", "3"]) == 0
    else:
        assert main([*MLP, "--epochs", "3", "--out", str(run)]) == 0
    assert "starting it over" in capsys.readouterr().err
    assert_same(_state(straight / "final"), _state(run / "final"))
    assert _metrics(straight) == _metrics(run)
    assert os.listdir(run / "checkpoints") == []


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    out = tmp_path / "run"
    code, err, latest = interrupt_training(
        ["--hidden", "2000", "2000", "--epochs", "500", "--batch-size", "2", "--lr", "0.01",
         "--threads", "1"], out, signal.SIGTERM)
    assert code == 143, err
    assert "terminated (SIGTERM)" in err and "SIGTERM received" in err
    assert latest is not None
    tr = Trainer.from_checkpoint(out, verbose=False)
    assert tr.step > 0
    # mostly the signal lands in the batch loop (a mid-epoch checkpoint); when it lands in an
    # epoch's evaluation or evolution the run stops with that epoch's checkpoint instead
    name = os.path.basename(latest)
    if "-step-" not in name:
        assert name == f"epoch-{tr.epoch:04d}" and tr.epoch >= 1, name


def test_signal_outside_the_batch_loop_saves_an_epoch_checkpoint(tmp_path, monkeypatch):
    """A signal during evaluation or evolution stops at the end of that epoch, with the
    epoch's checkpoint (not one batch into the next)."""
    from sparsemlp.training import mlp as trainer_mod

    class FlagSetAfterFirstEpoch:
        signum = signal.SIGTERM

        def __init__(self):
            self.tr = None

        @property
        def set(self):
            return bool(self.tr and self.tr.epoch >= 1)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    flag = FlagSetAfterFirstEpoch()
    monkeypatch.setattr(trainer_mod, "_InterruptFlag", lambda: flag)
    from sparsemlp.data import load as load_data

    ds = load_data("digits", rng=np.random.default_rng(0))
    tr = Trainer.from_config(TrainConfig(hidden=(16,), epochs=3, checkpoint_every=0), 64, 10,
                             run_dir=tmp_path, verbose=False)
    flag.tr = tr
    with pytest.raises(KeyboardInterrupt) as info:
        tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    assert info.value.signum == signal.SIGTERM
    assert checkpoint.read_latest(tmp_path).endswith(os.path.join("checkpoints", "epoch-0001"))


def test_sigterm_before_training_exits_143_and_leaves_no_run(tmp_path):
    """SIGTERM while the run is being set up (here: while initial_degrees.npz is written)
    ends with 143 like one during training, and the half-made run directory goes."""
    out = tmp_path / "run"
    code = ("import os, signal, sys\n"
            "import sparsemlp.cli.train as t\n"
            "def killed(*a, **k):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "t.save_degrees = killed\n"
            f"sys.exit(t.main({[*MLP, '--epochs', '1', '--out', str(out)]!r}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 143, r.stderr
    assert "terminated (SIGTERM)" in r.stderr
    assert not out.exists()


# -- item 5: --resume a checkpoint directory -----------------------------------------------
def test_resume_from_an_earlier_checkpoint_directory(tmp_path, capsys):
    """--resume RUN/checkpoints/epoch-0002 continues from there: what came after it is
    dropped and retrained, and the run ends as it ended the first time."""
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "4", "--checkpoint-every", "1", "--keep-checkpoints", "5",
                 "--out", str(run)]) == 0
    first, first_metrics = _state(run / "final"), _metrics(run)
    assert main(["--resume", str(run / "checkpoints" / "epoch-0002")]) == 0
    assert "came after the checkpoint resumed from" in capsys.readouterr().err
    assert_same(first, _state(run / "final"))
    assert _metrics(run) == first_metrics
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch-0001", "epoch-0002", "epoch-0003"]
    assert checkpoint.read_latest(run) == str(run / "final")


def test_resume_from_final_extends_and_a_lone_checkpoint_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["--resume", str(run / "final"), "--epochs", "3"]) == 0
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]
    lone = tmp_path / "lone"
    shutil.copytree(run / "final", lone)
    capsys.readouterr()
    backup = run / "backup" / "epoch-0002"  # inside the run, but not where checkpoints go
    shutil.copytree(run / "final", backup)
    for path in (lone, backup):
        assert main(["--resume", str(path), "-q"]) == 2
        err = capsys.readouterr().err
        assert "not one of a run directory" in err and err.count("\n") == 1


def test_drop_after_points_latest_at_the_checkpoint_resumed_from(tmp_path):
    from sparsemlp.training.rundir import drop_after

    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "3", "--checkpoint-every", "1", "--out", str(run)]) == 0
    ck = str(run / "checkpoints" / "epoch-0001")
    assert drop_after(str(run), ck) == [str(run / "checkpoints" / "epoch-0002"), str(run / "final")]
    assert checkpoint.read_latest(str(run)) == ck


# -- item 7: leftovers of killed writers ---------------------------------------------------
def test_leftovers_of_dead_writers_are_cleaned_at_resume(tmp_path):
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "2", "--checkpoint-every", "1", "--out", str(run)]) == 0
    dead, alive = _dead_pid(), os.getppid()
    ck = run / "checkpoints"
    (ck / f"epoch-0003.tmp-{dead}").mkdir()
    (ck / f"epoch-0003.tmp-{dead}" / "layer_0.npz").write_bytes(b"half")
    shutil.copytree(ck / "epoch-0001", ck / f"epoch-0001.old-{dead}")
    (run / f"latest.tmp-{dead}").write_text("checkpoints/ep")
    (run / f"metrics.jsonl.tmp-{dead}").write_text("{")
    (run / f"latest.tmp-{alive}").write_text("another process is writing this")
    # a writer killed between its two renames: final/ is away as final.old-PID
    os.replace(run / "final", run / f"final.old-{dead}")
    assert main(["--resume", str(run), "--epochs", "3"]) == 0
    assert sorted(os.listdir(ck)) == ["epoch-0001"]
    assert sorted(p for p in os.listdir(run) if ".tmp" in p or ".old" in p) \
        == [f"latest.tmp-{alive}"]
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]


def test_clean_leftovers_puts_back_an_interrupted_swap(tmp_path):
    dead = _dead_pid()
    (tmp_path / f"final.old-{dead}").mkdir()
    (tmp_path / f"final.old-{dead}" / "meta.json").write_text("{}")
    (tmp_path / f"final.tmp-{dead}").mkdir()
    done = clean_leftovers(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["final"]
    assert (tmp_path / "final" / "meta.json").read_text() == "{}"
    assert len(done) == 2


# -- item 11: extending a finished run -------------------------------------------------------
@pytest.mark.parametrize("flags", [MLP, [*MLP, "--prune-percentile", "10", "--prune-every", "2"],
                                   RBM, [*RBM, "--persistent"]],
                         ids=["mlp", "mlp-prune", "rbm", "rbm-pcd"])
def test_extending_a_finished_run_equals_training_longer(tmp_path, flags):
    """2 epochs then --resume --epochs 4 == 4 epochs straight, bit for bit (with a
    schedule that does not depend on the number of epochs): the evolution that SET skips
    after the last epoch (for the RBM: the regrowth after the removal-only last epoch)
    runs when the run is extended."""
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert main([*flags, "--epochs", "4", "--out", str(straight)]) == 0
    assert main([*flags, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["--resume", str(run), "--epochs", "4"]) == 0
    assert_same(_state(straight / "final"), _state(run / "final"))
    assert _metrics(straight, {3, 4}) == _metrics(run, {3, 4})


@pytest.mark.parametrize("model", ["mlp", "rbm"])
def test_extending_a_reference_mode_run_equals_training_longer(tmp_path, model):
    """The same with the original's single RandomState (its draws must come in order)."""
    from sparsemlp._rng import Streams
    from sparsemlp.data import load as load_data
    from sparsemlp.training.rbm import RBMTrainer

    cls = Trainer if model == "mlp" else RBMTrainer
    extra = dict(model="rbm", hidden=(24,), ais_every=0, pll="none", dtype="float64") \
        if model == "rbm" else dict(hidden=(32, 24), lr_schedule="constant")
    cfg = TrainConfig(mode="reference", epsilon=4.0, batch_size=64, checkpoint_every=0,
                      **extra).resolve()
    ds = load_data("digits", normalize_how="minmax", rng=np.random.default_rng(0))
    data = (ds.X_train, ds.y_train, ds.X_test, ds.y_test) if model == "mlp" \
        else (ds.X_train, np.clip(ds.X_test, 0, 1))
    shape = (64, 10) if model == "mlp" else (64,)

    def trainer(**kw):
        return cls.from_config(cfg, *shape, streams=Streams(cfg.seed, legacy=True),
                               verbose=False, **kw)

    straight = trainer()
    straight.fit(*data, epochs=4)
    first = trainer(run_dir=tmp_path)
    first.fit(*data, epochs=2)
    resumed = cls.from_checkpoint(tmp_path / "final", verbose=False)
    resumed.fit(*data, epochs=4)
    a, _, _ = straight.state()
    b, _, _ = resumed.state()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.data, y.data)
    assert straight.streams.state_dict() == resumed.streams.state_dict()


@pytest.mark.parametrize("original", [False, True])
@pytest.mark.parametrize("legacy", [False, True])
def test_regrow_completes_a_removal_only_evolution(original, legacy):
    """evolve(regrow=False) then regrow(n_removed) == evolve(), bit for bit."""
    from sparsemlp.evolution import evolve, evolve_original, regrow
    from sparsemlp.nn.layers import SparseLinear
    from sparsemlp.topology import erdos_renyi

    def layer():
        return SparseLinear(erdos_renyi(40, 30, epsilon=4, rng=np.random.default_rng(1)),
                            kernels="numpy")

    def rng():
        return np.random.RandomState(7) if legacy else np.random.default_rng(7)

    fn = evolve_original if original else evolve
    a = layer()
    fn(a, zeta=0.3, rng=rng(), normal_std=0.1)
    b = layer()
    res = fn(b, zeta=0.3, rng=rng(), normal_std=0.1, regrow=False)
    assert b.nnz < a.nnz
    out = regrow(b, res.n_removed, rng=rng(), normal_std=0.1, original=original)
    assert out.n_regrown == res.n_removed
    for k in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a.W, k), getattr(b.W, k))
    xt = np.random.default_rng(3).standard_normal((40, 5)).astype(a.W.dtype)
    ya, yb = np.empty((30, 5), a.W.dtype), np.empty((30, 5), a.W.dtype)
    np.testing.assert_array_equal(a.forward(xt, ya), b.forward(xt, yb))


# -- item 12: smaller ones -------------------------------------------------------------------
def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "3", "--out", str(run)]) == 0
    capsys.readouterr()
    capsys.readouterr()
    assert main(["--resume", str(run), "--epochs", "2", "-q"]) == 2
    err = capsys.readouterr().err
    assert "already at epoch 3" in err and "--epochs above 3" in err and err.count("\n") == 1
    assert main(["--resume", str(run), "-q"]) == 0  # already complete: a note, nothing to do
    assert "already complete at epoch 3" in capsys.readouterr().err
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]


def test_refused_configuration_leaves_no_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*MLP, "--hidden", "20", "--topology", "clash-free", "--fan-out", "4", "2",
                 "--z", "5", "2", "--out", str(out)]) == 2
    assert "must divide n_in" in capsys.readouterr().err
    assert not out.exists()


def test_profile_counts_checkpoint_calls(tmp_path, capsys):
    """Two checkpoint writes (epoch-0002 and final/) in 4 epochs: 0.5 calls per epoch."""
    out = tmp_path / "run"
    assert main([*MLP, "--epochs", "4", "--checkpoint-every", "2", "--profile",
                 "--out", str(out)]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("checkpoint"))
    assert row.split()[-1] == "0.5"
    assert json.loads((out / "profile.json").read_text())["checkpoint"] > 0


# -- item 8: paths a user gives ---------------------------------------------------------------
def _bad_paths(tmp):
    f = tmp / "a_file"
    f.write_text("x")
    run = tmp / "notrun"
    run.mkdir()
    (tmp / "bad.toml").write_text("a = [\n")
    (tmp / "bin.toml").write_bytes(b"\xff\xfe = 1\n")
    (tmp / "val.toml").write_text("train = 5\n")
    return {
        "out-file": (["--out", str(f)], "is an existing file"),
        "out-under-file": (["--out", str(f / "run")], "is a file"),
        "resume-file": (["--resume", str(f)], "is a file, not a directory"),
        "resume-missing": (["--resume", str(tmp / "nothing")], "no such directory"),
        "resume-not-a-run": (["--resume", str(run)], "not a run directory"),
        "config-missing": (["--config", str(tmp / "no.toml")], "not found"),
        "config-dir": (["--config", str(run)], "is a folder"),
        "config-bad-toml": (["--config", str(tmp / "bad.toml")], "not valid TOML"),
        "config-binary": (["--config", str(tmp / "bin.toml")], "not valid TOML"),
        "config-not-a-table": (["--config", str(tmp / "val.toml")], "must be a table"),
    }


@pytest.mark.parametrize("case", [
    "out-file", "out-under-file", "resume-file", "resume-missing", "resume-not-a-run",
    "config-missing", "config-dir", "config-bad-toml", "config-binary", "config-not-a-table"])
def test_bad_paths_give_one_line_and_exit_2(tmp_path, capsys, case):
    argv, msg = _bad_paths(tmp_path)[case]
    assert main([*MLP, *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_unwritable_run_directory_is_refused(tmp_path, capsys, monkeypatch):
    """(Simulated: the tests may run as root, who may write anywhere.)"""
    from sparsemlp.training import rundir as _rundir

    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(_rundir.os, "access", lambda p, mode: False)
    assert main([*MLP, "--out", str(tmp_path / "new")]) == 2
    assert main(["--resume", str(run), "--epochs", "2", "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: --out {tmp_path / 'new'}: {tmp_path} is not writable. Pass a path "
                   "where you may write.",
                   f"error: --resume {run}: {run} is not writable. Pass a path where you may "
                   "write."]
    assert not (tmp_path / "new").exists()


def test_run_directory_without_latest_resumes_from_its_newest_checkpoint(tmp_path):
    """A kill between a checkpoint and its ``latest`` (or a lost ``latest``): the run and
    Trainer.from_checkpoint continue from the furthest complete checkpoint."""
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "3", "--checkpoint-every", "1", "--out", str(run)]) == 0
    shutil.rmtree(run / "final")
    (run / "latest").write_bytes(b"\xff\xfe garbage")
    assert Trainer.from_checkpoint(run, verbose=False).epoch == 2
    (run / "latest").unlink()
    assert Trainer.from_checkpoint(run, verbose=False).epoch == 2
    assert main(["--resume", str(run), "-q"]) == 0
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]


@pytest.mark.parametrize("content,msg", [("{not json", "cannot be read"),
                                         ('{"hello": 1}', "no 'config' table"),
                                         ('{"config": {"hidden": "abc"}}', "invalid configuration")])
def test_broken_config_json_of_a_run(tmp_path, capsys, content, msg):
    run = tmp_path / "run"
    assert main([*MLP, "--epochs", "1", "--out", str(run)]) == 0
    (run / "config.json").write_text(content)
    capsys.readouterr()
    assert main(["--resume", str(run), "--epochs", "2", "-q"]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_checkpoint_names_order_by_training_progress():
    from sparsemlp.training.rundir import checkpoint_key

    names = ["epoch-10000", "epoch-9999-step-000012", "epoch-9999", "epoch-0002-step-000100",
             "epoch-0002-step-000007", "epoch-0002", "epoch-0010"]
    assert sorted(names, key=checkpoint_key) == [
        "epoch-0002", "epoch-0002-step-000007", "epoch-0002-step-000100", "epoch-0010",
        "epoch-9999", "epoch-9999-step-000012", "epoch-10000"]
    assert [checkpoint_key(n) for n in ("final", "epoch-0003.tmp-12", "epoch-x")] == [None] * 3


def test_sigterm_is_taken_over_only_with_a_run_directory(tmp_path):
    """With a run directory SIGTERM saves a checkpoint; without one (library use, nothing to
    save) it keeps its default action, while Ctrl-C still stops after the current step."""
    from sparsemlp import Callback
    from sparsemlp.data import load as load_data

    class Handlers(Callback):
        def on_epoch_end(self, trainer, record):
            self.seen = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))

    ds = load_data("digits", rng=np.random.default_rng(0))
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    for run_dir in (None, tmp_path / "run"):
        cb = Handlers()
        tr = Trainer.from_config(TrainConfig(hidden=(16,), epochs=1), 64, 10, run_dir=run_dir,
                                 callbacks=[cb], verbose=False)
        tr.fit(ds.X_train, ds.y_train)
        term, intr = cb.seen
        assert getattr(intr, "__name__", "") == "_handler"
        assert (getattr(term, "__name__", "") == "_handler") == (run_dir is not None)
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
