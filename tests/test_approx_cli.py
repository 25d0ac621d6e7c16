"""python -m sparsemlp.approx (and ``sparsemlp approx``): a run directory with structured layers
that evaluate, info, plot and train --init-from read; bad input in one line with exit code 2."""

import json
import pickle

import numpy as np
import pytest

from sparsemlp.approx import KINDS
from sparsemlp.approx.__main__ import main as approx_main
from sparsemlp.cli.evaluate import evaluate_run
from sparsemlp.cli.info import main as info_main
from sparsemlp.cli.main import main as sparsemlp_main
from sparsemlp.cli.train import main as train_main
from sparsemlp.training.loading import load_run


def probe_dense(layer):
    """The ``n_in x n_out`` weights of any layer, read off its forward pass on the identity
    (an oracle independent of how the structure stores or assembles them)."""
    eye = np.eye(layer.n_in, dtype=layer.dtype)
    out = np.empty((layer.n_out, layer.n_in), layer.dtype)
    layer.forward(eye, out)
    return (out - layer.b[:, None]).T.astype(np.float64)


def rel(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("approx")
    assert train_main(["--hidden", "48", "48", "--epochs", "3", "--out", str(d / "run"),
                       "-q"]) == 0
    return d


@pytest.fixture(scope="module")
def sss_run(run):
    out = run / "sss"
    assert approx_main([str(run / "run"), "--kind", "sss", "--share", "0.4", "--layers", "1",
                        "--option", "n_states=4", "--out", str(out), "--json", "-q"]) == 0
    return out


def test_sss_run_replaces_only_the_named_layer(run, sss_run):
    src, a = load_run(run / "run"), load_run(sss_run)
    assert [la.kind for la in a.model.layers] == ["csr", "sss", "csr"]
    for i in (0, 2):  # untouched, bit for bit
        assert np.array_equal(src.model.layers[i].W.toarray(), a.model.layers[i].W.toarray())
    la = a.model.layers[1]
    assert la.nnz <= int(0.4 * 48 * 48)
    np.testing.assert_array_equal(la.b, src.model.layers[1].b)
    W = src.model.layers[1].W.toarray().astype(np.float64)
    recs = [json.loads(line) for line in (sss_run / "metrics.jsonl").read_text().splitlines()]
    rep = recs[-1]["approximated"]
    assert len(rep) == 1 and rep[0]["layer"] == 1 and rep[0]["n_params"] == la.nnz
    # the reported error is the error of the stored layer against the source's weights
    assert rep[0]["rel_error"] == pytest.approx(rel(probe_dense(la), W), rel=1e-4)
    # SSS with 4 stages: the diagonal 12 x 12 blocks are kept exactly
    D = probe_dense(la)
    for k in range(4):
        s = slice(12 * k, 12 * k + 12)
        np.testing.assert_allclose(D[s, s], W[s, s], atol=1e-6)


def test_reported_accuracy_is_what_evaluate_measures(run, sss_run, capsys):
    rec = [json.loads(line) for line in (sss_run / "metrics.jsonl").read_text().splitlines()][-1]
    res = evaluate_run(str(sss_run))
    assert res["test"]["accuracy"] == pytest.approx(rec["test_accuracy"], abs=1e-12)
    assert info_main([str(sss_run)]) == 0
    assert "sss layer" in capsys.readouterr().out


def test_plot_reads_the_run(sss_run, tmp_path):
    pytest.importorskip("matplotlib")
    from sparsemlp.cli.plot import main as plot_main

    assert plot_main([str(sss_run), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "degrees.png").exists()


@pytest.mark.parametrize("topology", ["static", "set"])
def test_init_from_fine_tunes_the_structure(run, sss_run, topology):
    out = run / f"tuned-{topology}"
    assert train_main(["--init-from", str(sss_run), "--topology", topology, "--epochs", "3",
                       "--out", str(out), "-q"]) == 0
    a, t = load_run(sss_run), load_run(out)
    assert [la.kind for la in t.model.layers] == ["csr", "sss", "csr"]
    before, after = a.model.layers[1], t.model.layers[1]
    assert after.nnz == before.nnz  # the structure is kept, its values trained
    assert not np.array_equal(before.parameters()[0], after.parameters()[0])
    acc0 = evaluate_run(str(sss_run))["test"]["accuracy"]
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["test_accuracy"] > acc0 + 0.05  # the approximation lost accuracy; tuning regains
    assert recs[-1]["train_loss"] < recs[0]["train_loss"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_through_the_subcommand(run, kind, capsys):
    out = run / f"all-{kind}"
    opts = {"sparse_product": ["--option", "n_iter=10", "--option", "last_share=0.5"],
            "toeplitz_like": ["--option", "refine_iter=5"]}.get(kind, [])
    assert sparsemlp_main(["approx", str(run / "run"), "--kind", kind, "--share", "0.4",
                           "--layers", "1", *opts, "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    src, a = load_run(run / "run"), load_run(out)
    la = a.model.layers[1]
    assert la.kind == kind and la.nnz == rep["layers"][0]["n_params"] <= int(0.4 * 48 * 48)
    W = src.model.layers[1].W.toarray().astype(np.float64)
    assert rep["layers"][0]["rel_error"] == pytest.approx(rel(probe_dense(la), W), rel=1e-4)
    assert rep["accuracy_after"] == pytest.approx(evaluate_run(str(out))["test"]["accuracy"],
                                                  abs=1e-12)


def test_npz_source_without_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    W0, W1 = rng.standard_normal((40, 30)), rng.standard_normal((5, 40))
    np.savez(tmp_path / "m.npz", W_0=W0, b_0=np.zeros(40), W_1=W1, b_1=np.zeros(5))
    out = tmp_path / "lr"
    assert approx_main([str(tmp_path / "m.npz"), "--activations", "relu", "softmax", "--kind",
                        "low_rank", "--share", "0.25", "--layers", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "no data set" in text
    la = load_run(out).model.layers[0]
    assert la.kind == "low_rank" and la.nnz == 4 * (30 + 40)  # r = floor(300 / 70) = 4
    # the best rank-4 approximation of the (out x in) PyTorch-layout matrix (Eckart-Young)
    U, s, Vt = np.linalg.svd(W0)
    best = (U[:, :4] * s[:4]) @ Vt[:4]
    np.testing.assert_allclose(probe_dense(la), best.T, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_scikit_learn_pickle(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier

    from sparsemlp.data import load

    ds = load("digits", rng=np.random.default_rng(0), normalize_how="minmax")
    clf = MLPClassifier((40,), max_iter=200, random_state=0).fit(ds.X_train, ds.y_train)
    with open(tmp_path / "mlp.pkl", "wb") as fh:
        pickle.dump(clf, fh)
    out = tmp_path / "h"
    assert approx_main([str(tmp_path / "mlp.pkl"), "--dataset", "digits", "--normalize",
                        "minmax", "--kind", "hodlr", "--share", "0.5", "--layers", "0",
                        "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    la = load_run(out).model.layers[0]
    assert la.kind == "hodlr" and la.nnz <= 0.5 * 64 * 40
    assert rep["layers"][0]["rel_error"] == pytest.approx(rel(probe_dense(la), clf.coefs_[0]),
                                                          rel=1e-4)
    assert rep["accuracy_after"] == pytest.approx(evaluate_run(str(out))["test"]["accuracy"],
                                                  abs=1e-12)


@pytest.mark.parametrize("extra, match", [
    (["--kind", "svd", "--share", "0.1"], "--kind 'svd' is not one of low_rank, sss"),
    (["--kind", "sss", "--share", "0"], "--share must be in (0, 1]"),
    (["--kind", "sss", "--share", "1.5"], "--share must be in (0, 1]"),
    (["--kind", "sss", "--share", "nan"], "--share must be in (0, 1]"),
    (["--kind", "sss", "--share", "0.1", "--layers", "3"], "--layers must list distinct"),
    (["--kind", "sss", "--share", "0.1", "--layers", "1", "1"], "--layers must list distinct"),
    (["--kind", "sss", "--share", "0.1", "--option", "rank=3"],
     "'rank' is not an option of sss; it takes n_states, state_dim, method"),
    (["--kind", "sss", "--share", "0.1", "--option", "n_states"], "is not NAME=VALUE"),
    (["--kind", "sss", "--share", "0.1", "--option", "n_states=x"], "n_states"),
    (["--kind", "sss", "--share", "0.01", "--layers", "1", "--option", "n_states=4"],
     "the smallest feasible share is"),
    (["--kind", "low_rank", "--share", "0.01", "--layers", "1"], "smallest feasible share"),
    (["--kind", "toeplitz_like", "--share", "0.5", "--layers", "0"], "square"),
    (["--kind", "sss", "--share", "0.5", "--source", "MISSING"], "does not exist"),
    (["--kind", "low_rank", "--share", "0.5", "--layers", "1", "--source", "SSS"],
     "layer 1 of"),
])
def test_bad_input_is_one_line_and_exit_code_2(run, sss_run, tmp_path, capsys, extra, match):
    subst = {"MISSING": str(tmp_path / "missing"), "SSS": str(sss_run)}
    extra = [subst.get(a, a) for a in extra]
    source = str(run / "run")
    if "--source" in extra:
        k = extra.index("--source")
        source = extra[k + 1]
        del extra[k:k + 2]
    out = tmp_path / "out"
    code = approx_main([source, *extra, "--out", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not out.exists()  # nothing half-written


def test_existing_output_is_refused(run, sss_run, capsys):
    code = approx_main([str(run / "run"), "--kind", "low_rank", "--share", "0.5", "--out",
                        str(sss_run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(sss_run) in err[0]


def _dead_source(path):
    """A PyTorch-layout .npz MLP whose second layer fires only through its high-rank part
    (bias -3, N(0, 9) weights): a rank-1 approximation leaves most of its units off."""
    rng = np.random.default_rng(0)
    np.savez(path, W_0=rng.standard_normal((32, 64)) / 128, b_0=np.zeros(32),
             W_1=3 * rng.standard_normal((32, 32)), b_1=np.full(32, -3.0),
             W_2=rng.standard_normal((10, 32)), b_2=np.zeros(10))
    return np.load(path)


def _never_positive(Z):
    return int(np.sum(np.all(Z <= 0, axis=0)))


def test_dead_units_are_counted_and_warned_about(tmp_path, capsys):
    from sparsemlp.cli.evaluate import _dataset
    from sparsemlp.training.mlp import Trainer

    src = _dead_source(tmp_path / "m.npz")

    def common(share):
        return [str(tmp_path / "m.npz"), "--activations", "relu", "relu", "softmax", "--dataset",
                "digits", "--kind", "low_rank", "--share", share, "--layers", "1", "--json"]

    assert approx_main([*common("0.1"), "--out", str(tmp_path / "lr")]) == 0
    cap = capsys.readouterr()
    rep = json.loads(cap.out)["layers"][0]
    # oracle: a NumPy forward on the run's test samples, the new layer read off its forward pass
    tr = Trainer.from_checkpoint(str(tmp_path / "lr" / "final"), verbose=False)
    X = _dataset(tr, dataset=None, data_dir=None, threads=None).X_test[:2048]
    A = np.maximum(X @ src["W_0"].T + src["b_0"], 0)
    before = _never_positive(A @ src["W_1"].T + src["b_1"])
    la = tr.model.layers[1]
    after = _never_positive(A @ probe_dense(la) + la.b)
    assert (rep["never_active_before"], rep["never_active"]) == (before, after)
    assert after > 16 > before  # the case the warning is for
    assert (f"warning: layer 1: {after} of 32 units are never active on {len(X):,} test "
            f"samples after the approximation ({before} before)") in cap.err
    assert "--bias-correct 2048" in cap.err
    # with bias correction the advice changes; a healthy approximation has no warning
    assert approx_main([*common("0.1"), "--bias-correct", "500", "--out", str(tmp_path / "bc")]) == 0
    cap = capsys.readouterr()
    rep = json.loads(cap.out)["layers"][0]
    assert rep["never_active"] > 16  # rank 1 still leaves most units off: another fix is named
    assert "a larger --share or another --kind" in cap.err and "--bias-correct" not in cap.err
    assert approx_main([*common("0.9"), "--out", str(tmp_path / "ok")]) == 0
    assert "warning" not in capsys.readouterr().err
