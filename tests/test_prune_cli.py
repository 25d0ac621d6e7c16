"""python -m sparsemlp.prune: a pruned run directory that evaluate, info, plot and
train --init-from read; bad input in one line with exit code 2."""

import json

import numpy as np
import pytest

from sparsemlp.cli.evaluate import evaluate_run
from sparsemlp.cli.evaluate import main as evaluate_main
from sparsemlp.cli.info import main as info_main
from sparsemlp.cli.train import main as train_main
from sparsemlp.prune.__main__ import main as prune_main
from sparsemlp.training.loading import load_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("prune")
    assert train_main(["--hidden", "48", "24", "--epochs", "3", "--out", str(d / "run"),
                       "-q"]) == 0
    return d


@pytest.fixture(scope="module")
def pruned(run):
    out = run / "pruned"
    assert prune_main([str(run / "run"), "--density", "0.2", "--calib-samples", "500", "--out",
                       str(out), "-q", "--json"]) == 0
    return out


def test_pruned_run_is_a_normal_run_directory(run, pruned, capsys):
    src, p = load_run(run / "run"), load_run(pruned)
    assert p.config.hidden == (48, 24) and p.epoch == src.epoch == 3
    for a, b in zip(src.model.layers, p.model.layers):
        assert b.nnz == round(0.2 * a.n_in * a.n_out)
        # no new connection: the stored pattern is a subset of the source's
        stored_b = {(i, j) for i in range(b.n_in)
                    for j in b.W.indices[b.W.indptr[i]:b.W.indptr[i + 1]]}
        stored_a = {(i, j) for i in range(a.n_in)
                    for j in a.W.indices[a.W.indptr[i]:a.W.indptr[i + 1]]}
        assert stored_b <= stored_a
    np.testing.assert_array_equal(p.preprocessing.classes, src.preprocessing.classes)
    # evaluate scores the same test set as the prune command reported
    res = evaluate_run(str(pruned))
    recs = [json.loads(line) for line in (pruned / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and recs[-1]["epoch"] == 3 and "pruned" in recs[-1]
    assert res["test"]["accuracy"] == pytest.approx(recs[-1]["test_accuracy"], abs=1e-12)
    assert info_main([str(pruned)]) == 0
    out = capsys.readouterr().out
    assert "last epoch 3" in out and "20.000%" in out


def test_plot_reads_the_pruned_run(pruned, tmp_path):
    pytest.importorskip("matplotlib")
    from sparsemlp.cli.plot import main as plot_main

    assert plot_main([str(pruned), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "degrees.png").exists()


@pytest.mark.parametrize("topology", ["static", "set"])
def test_init_from_fine_tunes_the_pruned_model(run, pruned, topology):
    out = run / f"tuned-{topology}"
    assert train_main(["--init-from", str(pruned), "--topology", topology, "--epochs", "2",
                       "--out", str(out), "-q"]) == 0
    p, t = load_run(pruned), load_run(out)
    assert t.config.hidden == (48, 24) and t.config.init_from == str(pruned)
    for a, b in zip(p.model.layers, t.model.layers):
        assert a.nnz == b.nnz  # SET removes and regrows as many; static keeps the pattern
        same = np.array_equal(a.W.indices, b.W.indices) and np.array_equal(a.W.indptr,
                                                                            b.W.indptr)
        assert not np.array_equal(a.W.data, b.W.data)
        if topology == "static" or b is t.model.layers[-1]:  # the output layer is not evolved
            assert same
    if topology == "set":
        assert not all(np.array_equal(a.W.indices, b.W.indices)
                       for a, b in zip(p.model.layers[:-1], t.model.layers[:-1]))


def test_init_from_checks_the_model(run, pruned, capsys):
    code = train_main(["--init-from", str(pruned), "--hidden", "10", "--epochs", "1", "--out",
                       str(run / "bad1"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has layer sizes [64, 48, 24, 10]" in err[0]
    code = train_main(["--init-from", str(pruned), "--model", "rbm", "--out", str(run / "bad2"),
                       "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "init_from" in err[0]
    code = train_main(["--init-from", str(run / "nope"), "--out", str(run / "bad3"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope" in err[0]
    assert not any((run / f"bad{i}").exists() for i in (1, 2, 3))


def _big_npz(path):
    rng = np.random.default_rng(0)
    np.savez(path, W_0=rng.standard_normal((120, 100)), b_0=np.zeros(120),
             W_1=rng.standard_normal((10, 120)), b_1=np.zeros(10))
    return str(path)


@pytest.mark.parametrize("extra, match", [
    (["--density", "0"], "density must be in (0, 1]"),
    (["--density", "1.5"], "density must be in (0, 1]"),
    (["--sparsity", "1"], "sparsity must be in [0, 1)"),
    (["--density", "0.5", "--criterion", "hessian"], "--criterion 'hessian' is not one of"),
    (["--density", "0.5", "--compensate", "sgd"], "--compensate 'sgd' is not one of"),
    (["--density", "0.5", "--calib", "WIDE"], "has shape (20, 65); the model takes 64"),
    (["--density", "0.5", "--calib", "NAN"], "NaN or infinite"),
    (["--density", "0.5", "--layers", "5"], "layers must list"),
    (["--n-remove", "1", "--criterion", "output_distance", "--source", "BIG"],
     "more than 10000"),
    (["--density", "0.5", "--source", "BIG"], "needs calibration data"),
    (["--density", "0.5", "--source", "BIG", "--dataset", "digits"], "has 64 features but"),
    (["--density", "0.5", "--source", "MISSING"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_2(run, tmp_path, capsys, extra, match):
    np.save(tmp_path / "wide.npy", np.zeros((20, 65)))
    nan = np.zeros((20, 64))
    nan[3, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    subst = {"WIDE": str(tmp_path / "wide.npy"), "NAN": str(tmp_path / "nan.npy"),
             "BIG": _big_npz(tmp_path / "big.npz"), "MISSING": str(tmp_path / "missing")}
    extra = [subst.get(a, a) for a in extra]
    source = str(run / "run")
    if "--source" in extra:
        k = extra.index("--source")
        source = extra[k + 1]
        del extra[k:k + 2]
    out = tmp_path / "out"
    code = prune_main([source, *extra, "--activations", "relu", "softmax", "--calib-noise"
                       if "output_distance" in extra else "-q", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not out.exists()  # nothing half-written


def test_import_without_a_data_set(tmp_path, capsys):
    src = _big_npz(tmp_path / "big.npz")
    out = tmp_path / "p"
    assert prune_main([src, "--activations", "relu", "softmax", "--density", "0.3",
                       "--calib-noise", "--calib-samples", "300", "--out", str(out), "-q"]) == 0
    assert "no data set" in capsys.readouterr().out
    assert evaluate_main([str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no data set" in err[0] and "--dataset" in err[0]
    m = load_run(out).model
    assert m.sizes == [100, 120, 10] and m.nnz() == [3600, 360]
    assert info_main([str(out)]) == 0
    assert "test accuracy n/a" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_scikit_learn_model_through_the_command_line(tmp_path, capsys):
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    import pickle

    from sklearn.neural_network import MLPClassifier

    from sparsemlp.data import load
    from sparsemlp.training.sourcedata import source_dataset
    from sparsemlp.training.sources import load_source

    ds = load("digits", rng=np.random.default_rng(0), normalize_how="minmax")
    clf = MLPClassifier((40,), max_iter=200, random_state=0).fit(ds.X_train, ds.y_train)
    with open(tmp_path / "mlp.pkl", "wb") as fh:
        pickle.dump(clf, fh)
    out = tmp_path / "p"
    assert prune_main([str(tmp_path / "mlp.pkl"), "--dataset", "digits", "--normalize",
                       "minmax", "--sparsity", "0.5", "--out", str(out), "--json", "-q"]) == 0
    rep = json.loads(capsys.readouterr().out)
    # the accuracy before pruning is scikit-learn's own on the same data
    d, _ = source_dataset(load_source(clf), dataset="digits", normalize="minmax")
    assert rep["accuracy_before"] == pytest.approx(clf.score(d.X_test, d.y_test), abs=1e-12)
    assert rep["nnz_after"] == round(0.5 * 64 * 40) + round(0.5 * 40 * 10)
    res = evaluate_run(str(out))
    assert res["test"]["accuracy"] == pytest.approx(rep["accuracy_after"], abs=1e-12)
