"""Checkpoint integrity: meta.json verified, missing keys named, format-1 checkpoints of commit
62aa30d still load and resume, and a crash in the middle of a write keeps the previous one."""

import hashlib
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_same

from sparsemlp import TrainConfig, Trainer
from sparsemlp.cli.train import main
from sparsemlp.data import load as load_data
from sparsemlp.training import checkpoint
from sparsemlp.training.rbm import RBMTrainer
from sparsemlp.training.rundir import clean_leftovers

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "checkpoints_v1"
# the flags that wrote the fixtures (tests/fixtures/checkpoints_v1/generate.py)
V1_COMMON = ["--checkpoint-every", "1", "--keep-checkpoints", "3", "--threads", "1",
             "--backend", "numpy", "--seed", "5", "-q"]
V1_FLAGS = {
    "mlp": ["--hidden", "12", "--epsilon", "2", "--batch-size", "64", "--lr-schedule", "constant",
            *V1_COMMON],
    "rbm": ["--model", "rbm", "--hidden", "12", "--epsilon", "3", "--batch-size", "64",
            "--ais-every", "1", "--ais-betas", "20", "--ais-chains", "5", *V1_COMMON],
}
MLP = ["--hidden", "32", "24", "--epsilon", "4", "--batch-size", "64", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", rng=np.random.default_rng(0))


def _digest(meta):
    """The documented meta_sha256: SHA-256 of the canonical JSON of everything else."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _edit_meta(ck, fn, *, resign):
    p = pathlib.Path(ck) / "meta.json"
    meta = json.loads(p.read_text())
    fn(meta)
    if resign:  # well-formed, as if written so: only the content check can object
        meta.pop("meta_sha256")
        meta["meta_sha256"] = _digest(meta)
    p.write_text(json.dumps(meta, indent=1))


def _arrays(ck):
    w, a, _ = checkpoint.load(ck)
    out = {f"W{i}.{k}": getattr(W, k) for i, W in enumerate(w) for k in ("indptr", "indices", "data")}
    out.update(a)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("integrity") / "run"
    assert main([*MLP, "--epochs", "2", "--checkpoint-every", "1", "--out", str(d)]) == 0
    return d


def _copy(run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run, d)
    return d


# -- meta.json is verified ------------------------------------------------------------------
def test_meta_digest_is_the_documented_one(run):
    meta = json.loads((run / "final" / "meta.json").read_text())
    assert meta["format_version"] == 2
    digest = meta.pop("meta_sha256")
    assert digest == _digest(meta)


@pytest.mark.parametrize("edit", [
    lambda m: m.update(epoch=m["epoch"] - 1),
    lambda m: m.update(step=m["step"] + 1),
    lambda m: m["config"].update(lr=0.5),
    lambda m: m["streams"].update(seed=m["streams"]["seed"] + 1),
    lambda m: m["history"][0].update(train_loss=0.0),
    lambda m: m.update(best_accuracy=1.0),
    lambda m: m.update(pending_evolution=None),
], ids=["epoch", "step", "config", "streams", "history", "best", "pending"])
def test_edited_meta_is_refused(run, tmp_path, capsys, edit):
    d = _copy(run, tmp_path)
    _edit_meta(d / "final", edit, resign=False)
    with pytest.raises(checkpoint.CheckpointError, match="modified or corrupted"):
        Trainer.from_checkpoint(d / "final")
    assert main(["--resume", str(d), "--epochs", "3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "meta.json was modified or corrupted" in err and err.count("\n") == 1


@pytest.mark.parametrize("path,key", [
    (("epoch",), "epoch"), (("step",), "step"), (("streams",), "streams"),
    (("config",), "config"), (("history",), "history"), (("n_layers",), "n_layers"),
    (("shapes",), "shapes"), (("topology_digests",), "topology_digests"), (("files",), "files"),
    (("streams", "seed"), "seed"), (("model_class",), "model_class"),
])
def test_missing_meta_key_is_named(run, tmp_path, path, key):
    d = _copy(run, tmp_path)

    def drop(meta):
        target = meta
        for k in path[:-1]:
            target = target[k]
        del target[path[-1]]

    _edit_meta(d / "final", drop, resign=True)
    with pytest.raises(checkpoint.CheckpointError, match=f"'{key}'"):
        Trainer.from_checkpoint(d / "final")


@pytest.mark.parametrize("key", ["layers.0.bias", "optim.n_steps", "optim.velocity.2"])
def test_missing_state_array_is_named(run, tmp_path, key):
    d = _copy(run, tmp_path)
    ck = d / "final"
    with np.load(ck / "state.npz") as z:
        arrays = {k: z[k] for k in z.files if k != key}
    assert len(arrays) == len(z.files) - 1
    np.savez(ck / "state.npz", **arrays)
    sha = hashlib.sha256((ck / "state.npz").read_bytes()).hexdigest()
    _edit_meta(ck, lambda m: m["files"].update({"state.npz": sha}), resign=True)
    with pytest.raises(checkpoint.CheckpointError, match=f"lacks '{key}'"):
        Trainer.from_checkpoint(ck)


def test_config_json_is_checked_against_the_checkpoint(run, tmp_path, capsys):
    d = _copy(run, tmp_path)
    doc = json.loads((d / "config.json").read_text())
    doc["config"]["lr"] = 0.5
    (d / "config.json").write_text(json.dumps(doc))
    assert main(["--resume", str(d), "--epochs", "3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "disagree on lr" in err and err.count("\n") == 1


# -- format 1 (commit 62aa30d) ---------------------------------------------------------------
@pytest.mark.parametrize("ck", ["mlp/final", "mlp/checkpoints/epoch-0001", "rbm/final",
                                "rbm/checkpoints/epoch-0001",
                                "mlp_interrupted/checkpoints/epoch-0000-step-000003"])
def test_format1_checkpoints_load(ck):
    path = FIXTURES / ck
    meta = json.loads((path / "meta.json").read_text())
    assert meta["format_version"] == 1
    cls = RBMTrainer if ck.startswith("rbm") else Trainer
    tr = cls.from_checkpoint(path, verbose=False)
    assert (tr.epoch, tr.step) == (meta["epoch"], meta["step"])
    weights, arrays, _ = tr.state()
    with np.load(path / "state.npz") as z:
        for k in z.files:
            got = tr._resume[k.split(".", 1)[1]] if k.startswith("trainer.") else arrays[k]
            np.testing.assert_array_equal(got, z[k], err_msg=k)
    for i, W in enumerate(weights):
        ref = sp.load_npz(path / f"layer_{i}.npz")  # plain SciPy reads the same matrix
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(W, attr), getattr(ref, attr))
    if "mid_epoch" in meta:
        assert tr._resume["batch"] == meta["mid_epoch"]["batch"]


def _close(a, b):
    """Same topology, values equal up to float32 rounding (bitwise today; robust to
    harmless changes in the order of floating-point operations later)."""
    # the data arrays (label map, scaling: "data.*") came after format 1; a format-1 run
    # resumed by today's code gains them from its (identical) data set
    model = {k for k in a if not k.startswith("data.")}
    assert model == {k for k in b if not k.startswith("data.")}
    for k in a.keys() & b.keys():
        if a[k].dtype.kind in "iubUS":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("model", ["mlp", "rbm"])
def test_format1_run_extends_like_training_longer(tmp_path, model):
    """A format-1 run of 2 epochs extended to 3 ends where 3 epochs straight end (format 1
    did not record the skipped last evolution: it is inferred)."""
    d = tmp_path / "old"
    shutil.copytree(FIXTURES / model, d)
    assert main(["--resume", str(d), "--epochs", "3", "-q"]) == 0
    straight = tmp_path / "straight"
    assert main([*V1_FLAGS[model], "--epochs", "3", "--out", str(straight)]) == 0
    _close(_arrays(straight / "final"), _arrays(d / "final"))


def test_format1_interrupted_run_resumes(tmp_path):
    """The format-1 mid-epoch checkpoint resumes to what commit 62aa30d's own
    uninterrupted run of the same flags wrote."""
    d = tmp_path / "old"
    shutil.copytree(FIXTURES / "mlp_interrupted", d)
    assert main(["--resume", str(d), "-q"]) == 0
    _close(_arrays(FIXTURES / "mlp" / "final"), _arrays(d / "final"))


# -- a crash in the middle of a write (issue 19) ------------------------------------------------
def _half_then(exc_or_kill, calls):
    """A checkpoint._write_file that, at the given call, writes half the bytes and fails."""
    real = checkpoint._write_file
    count = {"n": 0}

    def write(path, writer):
        count["n"] += 1
        if count["n"] != calls:
            return real(path, writer)
        buf = io.BytesIO()
        writer(buf)
        data = buf.getvalue()
        with open(path, "wb") as fh:
            fh.write(data[:len(data) // 2])
        exc_or_kill()

    return write


def _raise():
    raise OSError(28, "No space left on device")


def _trainer(digits, run_dir=None):
    cfg = TrainConfig(hidden=(24, 16), epsilon=4.0, epochs=1, batch_size=64)
    tr = Trainer.from_config(cfg, 64, 10, verbose=False, run_dir=run_dir)
    tr.fit(digits.X_train, digits.y_train)
    return tr


@pytest.mark.parametrize("fail", ["write:1", "write:2", "write:3", "write:4", "write:5",
                                  "replace:1", "replace:2"])
def test_crash_while_replacing_a_checkpoint_keeps_the_previous(digits, tmp_path, monkeypatch,
                                                               fail):
    """Saving over a checkpoint (as final/ is when a run is extended) and failing at any
    file write (3 layers, state, meta) or rename leaves the previous checkpoint loadable
    and unchanged, and nothing else once the leftovers are cleaned."""
    tr = _trainer(digits)
    ck = tmp_path / "final"
    tr.save(ck)
    before = _arrays(ck)
    tr.epoch += 1
    tr.model.layers[0].W.data *= 2
    kind, n = fail.split(":")
    if kind == "write":
        monkeypatch.setattr(checkpoint, "_write_file", _half_then(_raise, int(n)))
    else:
        real, count = os.replace, {"n": 0}

        def replace(a, b):
            count["n"] += 1
            if count["n"] == int(n):
                _raise()
            return real(a, b)

        monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        tr.save(ck)
    monkeypatch.undo()
    assert_same(before, _arrays(ck))  # at once, not only after the next start's cleaning
    clean_leftovers(str(tmp_path))
    assert_same(before, _arrays(ck))
    assert os.listdir(tmp_path) == ["final"]


def test_crash_while_writing_latest_keeps_it(digits, tmp_path, monkeypatch):
    checkpoint.write_latest(tmp_path, "checkpoints/epoch-0010")
    monkeypatch.setattr(checkpoint, "_write_file", _half_then(_raise, 1))
    with pytest.raises(OSError):
        checkpoint.write_latest(tmp_path, "checkpoints/epoch-0020")
    monkeypatch.undo()
    assert checkpoint.read_latest(tmp_path) == os.path.join(tmp_path, "checkpoints/epoch-0010")


_KILL_SCRIPT = """
import os, signal, sys
import numpy as np
from sparsemlp.training import checkpoint
from sparsemlp.data import load
sys.path.insert(0, {tests!r})
import test_checkpoint_integrity as t

ds = load("digits", rng=np.random.default_rng(0))
tr = t._trainer(ds, run_dir={run!r})
tr._save_epoch_checkpoint("epoch-0001")   # the previous checkpoint and latest
tr.save(os.path.join({run!r}, "final"))
tr.epoch += 1
tr.model.layers[0].W.data *= 2
kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
what, n = {fail!r}.split(":")
if what == "replace":
    real, count = os.replace, [0]
    def replace(a, b):
        count[0] += 1
        if count[0] == int(n):
            kill()
        return real(a, b)
    checkpoint.os.replace = replace
    tr.save(os.path.join({run!r}, "final"))
else:
    checkpoint._write_file = t._half_then(kill, int(n))
    tr._save_epoch_checkpoint("epoch-0002")
"""


@pytest.mark.parametrize("fail", ["write:2", "write:6", "replace:2"],
                         ids=["mid-checkpoint", "mid-latest", "between-renames"])
def test_kill_during_a_write_keeps_the_previous_checkpoint(digits, tmp_path, fail):
    """A real SIGKILL in the middle of a checkpoint, in the middle of ``latest``, or
    between the two renames that replace final/: the run resumes from an intact
    checkpoint (write 6 is ``latest``, after the 5 files of epoch-0002)."""
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    script = _KILL_SCRIPT.format(tests=str(pathlib.Path(__file__).parent), run=str(run),
                                 fail=fail)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert any(".tmp-" in p or ".old-" in p for p in os.listdir(run) + os.listdir(run / "checkpoints"))
    clean_leftovers(str(run))
    assert checkpoint.read_latest(run) == os.path.join(run, "checkpoints", "epoch-0001")
    prev = _arrays(run / "checkpoints" / "epoch-0001")
    assert_same(prev, _arrays(run / "final"))  # final/ as it was before the killed replace
    assert not any(".tmp" in p or ".old" in p for p in os.listdir(run) + os.listdir(run / "checkpoints"))
    tr = Trainer.from_checkpoint(run, verbose=False)
    assert tr.epoch == 1
