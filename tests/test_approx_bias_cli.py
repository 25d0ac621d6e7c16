"""python -m sparsemlp.approx --bias-correct N: the new layers' biases are corrected on training
samples of the run's data set (oracle: the source model's dense forward pass in NumPy)."""

import numpy as np
import pytest

from sparsemlp.approx.__main__ import main as approx_main
from sparsemlp.cli.train import main as train_main
from sparsemlp.training.loading import load_run
from sparsemlp.training.sourcedata import source_dataset
from sparsemlp.training.sources import load_source


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("approx_bias")
    assert train_main(["--hidden", "40", "40", "--epochs", "2", "--out", str(d / "run"),
                       "-q"]) == 0
    return d


def test_bias_correct_keeps_the_mean_pre_activation_on_the_training_set(run):
    out = run / "lr"
    # more samples than the training split: all of it, so the oracle needs no sampling rule
    assert approx_main([str(run / "run"), "--kind", "low_rank", "--share", "0.2", "--layers",
                        "1", "--bias-correct", "100000", "--out", str(out), "-q"]) == 0
    src = load_run(run / "run").model
    new = load_run(out).model
    ds, _ = source_dataset(load_source(str(run / "run")))
    X = ds.X_train.astype(np.float64)
    W0, b0 = src.layers[0].W.toarray().astype(np.float64), src.layers[0].b.astype(np.float64)
    W1, b1 = src.layers[1].W.toarray().astype(np.float64), src.layers[1].b.astype(np.float64)
    h = src.activations[0].forward(X @ W0 + b0)
    want = (h @ W1 + b1).mean(axis=0)
    A = new.layers[1].to_approximation().dense()  # n_out x n_in
    got = (h @ A.T + new.layers[1].b).mean(axis=0)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert not np.allclose(new.layers[1].b, src.layers[1].b, atol=1e-3)


def test_bias_correct_without_a_data_set_or_negative_is_refused(run, tmp_path, capsys):
    m = load_run(run / "run").model
    np.savez(tmp_path / "m.npz", **{f"W_{i}": la.W.toarray() for i, la in enumerate(m.layers)},
             **{f"b_{i}": la.b for i, la in enumerate(m.layers)})
    code = approx_main([str(tmp_path / "m.npz"), "--kind", "low_rank", "--share", "0.3",
                        "--layout", "in-out", "--activations", "relu", "softmax",
                        "--bias-correct", "64", "--out", str(tmp_path / "o")])
    assert code == 2 and "--bias-correct needs training samples" in capsys.readouterr().err
    code = approx_main([str(run / "run"), "--kind", "low_rank", "--share", "0.3",
                        "--bias-correct", "-1", "--out", str(tmp_path / "o2")])
    assert code == 2 and "--bias-correct takes a number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()
