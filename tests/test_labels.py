"""The user's labels and the run's scaling: kept in Dataset, checkpoints and every output of evaluate."""

import json

import numpy as np
import pytest

from sparsemlp._rng import Streams
from sparsemlp.cli import evaluate, info
from sparsemlp.cli import train as train_cli
from sparsemlp.data import DataError, load, load_digits
from sparsemlp.training.mlp import Trainer

ARGS = ["--hidden", "40", "--epsilon", "4", "--epochs", "3", "--checkpoint-every", "0", "-q"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("labels") / "digits"
    assert train_cli.main([*ARGS, "--out", str(out)]) == 0
    return out


def _raw_split(seed=0):
    """The digits split of a run with ``seed``, unscaled (the split ignores the scaling)."""
    return load("digits", normalize_how="none", rng=Streams(seed).get("split"))


def _eval(argv, capsys):
    code = evaluate.main([*argv, "--json"])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if code == 0 else cap.err)


def test_other_file_uses_the_run_label_map_and_scaling(digits_run, tmp_path, capsys):
    """A file of digits 0, 5 and 9 only scores as those samples do within the full set."""
    code, full = _eval([str(digits_run), "--split", "both"], capsys)
    assert code == 0 and full["classes"] == list(range(10))
    raw = _raw_split()
    keep = [0, 5, 9]
    mtr, mte = np.isin(raw.y_train, keep), np.isin(raw.y_test, keep)
    np.savez(tmp_path / "059.npz", xtr=raw.X_train[mtr], ytr=raw.y_train[mtr],
             xte=raw.X_test[mte], yte=raw.y_test[mte])
    code, sub = _eval([str(digits_run), "--dataset", str(tmp_path / "059.npz"), "--split", "both"],
                      capsys)
    assert code == 0 and sub["classes"] == list(range(10))
    for part, mask in (("train", mtr), ("test", mte)):
        pc, cnt = full[part]["per_class_accuracy"], full[part]["per_class_count"]
        expect = sum(pc[str(c)] * cnt[str(c)] for c in keep) / sum(cnt[str(c)] for c in keep)
        assert sub[part]["count"] == mask.sum()
        assert sub[part]["accuracy"] == pytest.approx(expect, abs=1e-12)
        for c in range(10):  # the user's labels as keys; classes absent from the file: None
            want = pc[str(c)] if c in keep else None
            assert sub[part]["per_class_accuracy"][str(c)] == want


def test_labels_the_model_never_saw_are_refused(tmp_path, capsys):
    X, y = load_digits()
    m = np.isin(y, [0, 5, 9])
    np.savez(tmp_path / "059.npz", X=X[m], y=y[m])
    out = tmp_path / "r"
    assert train_cli.main([*ARGS[:-1], "--dataset", str(tmp_path / "059.npz"),
                           "--out", str(out)]) == 0  # not -q: the line is INFO
    err = capsys.readouterr().err
    assert "labels {0, 5, 9} -> classes 0..2" in err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classes"] == [0, 5, 9] and cfg["n_classes"] == 3
    tr = Trainer.from_checkpoint(out / "final", verbose=False)
    assert tr.preprocessing.classes.tolist() == [0, 5, 9]  # a reloaded run knows its labels
    code, res = _eval([str(out), "--split", "both"], capsys)
    assert code == 0 and res["classes"] == [0, 5, 9]
    assert set(res["test"]["per_class_accuracy"]) == {"0", "5", "9"}
    assert res["test"]["count"] + res["train"]["count"] == m.sum()
    assert info.main([str(out)]) == 0
    assert "classes {0, 5, 9} (outputs 0..2), features scaled by zscore" in capsys.readouterr().out
    np.savez(tmp_path / "other.npz", X=X[:40], y=y[:40])  # digits 0..9
    code, err = _eval([str(out), "--dataset", str(tmp_path / "other.npz")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "label(s) {1, 2, 3, 4, 6, 7, 8} that the model never saw (its classes are " \
           "{0, 5, 9})" in err


def test_scaling_statistics_saved_in_the_checkpoint(digits_run):
    """Oracle: mean and std of the raw training split, by NumPy."""
    tr = Trainer.from_checkpoint(digits_run / "final", verbose=False)
    raw = _raw_split()
    p = tr.preprocessing
    assert p.scaling.how == "zscore"
    np.testing.assert_allclose(p.scaling.shift, raw.X_train.mean(axis=0), rtol=1e-12, atol=1e-12)
    s = raw.X_train.std(axis=0)
    np.testing.assert_allclose(p.scaling.scale, np.where(s > 0, s, 1), rtol=1e-12)


@pytest.mark.parametrize("labels", [
    np.array([-3, 7]), np.array(["cat", "dog"]), np.array([b"no", b"yes"]),
    np.array([1.0, 2.0]), np.array([True, False]),
], ids=["negative", "str", "bytes", "float", "bool"])
def test_dataset_keeps_the_user_labels(tmp_path, labels):
    rng = np.random.default_rng(0)
    y = labels[np.arange(30) % 2]
    X = rng.random((30, 3)) + (np.arange(30) % 2)[:, None]
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load(str(tmp_path / "d.npz"), rng=rng, normalize_how="none")
    want = np.sort(labels.astype(str) if labels.dtype.kind == "S" else labels)
    assert ds.classes.tolist() == want.tolist()
    # classes[y] restores every sample's label (X's first column identifies its row)
    row = {tuple(x): lab for x, lab in zip(X, y.astype(str) if y.dtype.kind == "S" else y)}
    for part in ("train", "test"):
        got = ds.classes[getattr(ds, f"y_{part}")]
        assert [row[tuple(x)] for x in getattr(ds, f"X_{part}")] == got.tolist()


def test_string_labels_end_to_end(tmp_path, capsys):
    X, y = load_digits()
    names = np.array(["zero", "one", "two"])
    m = y < 3
    np.savez(tmp_path / "s.npz", X=X[m], y=names[y[m]])
    out = tmp_path / "r"
    assert train_cli.main([*ARGS[:-1], "--dataset", str(tmp_path / "s.npz"),
                           "--out", str(out)]) == 0
    assert "labels {'one', 'two', 'zero'} -> classes 0..2" in capsys.readouterr().err
    code, res = _eval([str(out)], capsys)
    assert code == 0 and res["classes"] == ["one", "two", "zero"]
    assert evaluate.main([str(out)]) == 0
    assert "per class: one: " in capsys.readouterr().out


def test_test_class_absent_from_training_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", xtr=rng.random((6, 2)), ytr=np.array([0, 1] * 3),
             xte=rng.random((3, 2)), yte=np.array([0, 1, 2]))
    with pytest.raises(DataError, match="the test labels \\{2\\} never occur in the training "
                                        "labels \\{0, 1\\}"):
        load(str(tmp_path / "d.npz"), rng=rng)
    # a split that would put a whole class into the test set
    np.savez(tmp_path / "e.npz", X=rng.random((9, 2)), y=np.array([0, 1] * 4 + [5]))
    with pytest.raises(DataError, match="every sample of class\\(es\\) \\{5\\} into the test set"):
        load(str(tmp_path / "e.npz"), rng=rng, test_size=0.6)
    # labels are not targets for an RBM: nothing to refuse
    ds = load(str(tmp_path / "d.npz"), rng=rng, supervised=False)
    assert ds.classes.tolist() == [0, 1, 2]


def test_identity_labels_are_not_announced(tmp_path, caplog):
    with caplog.at_level("INFO", logger="sparsemlp.data.core"):
        load("digits", rng=np.random.default_rng(0))
    assert not any("-> classes" in r.getMessage() for r in caplog.records)


def test_rbm_evaluate_other_file_uses_the_run_scaling(tmp_path, capsys):
    """An RBM scored on a file holding its own split's raw samples gives the same numbers."""
    out = tmp_path / "rbm"
    assert train_cli.main(["--model", "rbm", "--hidden", "20", "--epochs", "2", "-q",
                           "--pll", "none", "--out", str(out)]) == 0
    capsys.readouterr()
    code, own = _eval([str(out), "--split", "both"], capsys)
    assert code == 0
    raw = _raw_split()
    m = raw.y_test != 1  # another test set: its own min/max would differ from the run's
    np.savez(tmp_path / "d.npz", xtr=raw.X_train, ytr=raw.y_train, xte=raw.X_test[m],
             yte=raw.y_test[m])
    code, other = _eval([str(out), "--dataset", str(tmp_path / "d.npz"), "--split", "both"], capsys)
    assert code == 0
    assert other["train"]["recon"] == own["train"]["recon"]
    assert other["test"]["count"] == m.sum()
    # brighter images leave the run's [min, max]: clipped to [0, 1] like the run's test set
    np.savez(tmp_path / "b.npz", X=raw.X_test * 2, y=raw.y_test)
    code, bright = _eval([str(out), "--dataset", str(tmp_path / "b.npz"), "--split", "both"],
                         capsys)
    assert code == 0, bright
    assert bright["train"]["count"] + bright["test"]["count"] == raw.X_test.shape[0]
