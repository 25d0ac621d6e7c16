"""Reference mode against the original SET-MLP code's COIL20 run (the code of Mocanu et al. 2018)."""

import json

import numpy as np
import pytest
from conftest import shared_data

from sparsemlp.cli.train import main

# The authors' SET-MLP code (Mocanu et al., Nature Communications 9:2383, 2018) on COIL20 with its
# demo's data handling (960 / 480 split), 1024-3000-3000-3000-20, seed 0, demo defaults (epsilon 20,
# zeta 0.3, batch 2, lr 0.01, momentum 0.9, decay 2e-4, ReLU x3 + sigmoid, MSE): nnz per layer,
# test accuracy of epochs 1-20, and (train MSE, test MSE) of epochs 1 and 20
NNZ = [79441, 119224, 119138, 38135]
ACC = [0.831, 0.902, 0.917, 0.954, 0.965, 0.975, 0.977, 0.975, 0.981, 0.983,
       0.981, 0.981, 0.988, 0.983, 0.979, 0.981, 0.985, 0.981, 0.983, 0.990]
EPOCH1 = (0.035707082, 0.021020714)  # train MSE, test MSE
EPOCH20 = (0.001431693, 0.001871656)


def _run(tmp_path, epochs, *extra):
    coil = shared_data("coil20", "COIL20.mat")
    out = tmp_path / "run"
    assert main(["--mode", "reference", "--dataset", str(coil), "--epochs", str(epochs),
                 "--out", str(out), "-q", *extra]) == 0
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_reference_mode_reproduces_first_epochs(tmp_path):
    """float64 reference mode: same topology and the published epoch-1 numbers to 8 digits."""
    rec = _run(tmp_path, 2, "--dtype", "float64")
    assert rec[0]["nnz"] == NNZ
    np.testing.assert_allclose([rec[0]["train_loss"], rec[0]["test_loss"]], EPOCH1, rtol=2e-8)
    assert [round(r["test_accuracy"], 3) for r in rec] == ACC[:2]


@pytest.mark.slow
def test_accuracy_parity_coil20_20_epochs(tmp_path):
    """Issue acceptance: float32 reference mode reaches >= 0.98 after 20 epochs (orig. 0.990)."""
    rec = _run(tmp_path, 20)
    assert rec[-1]["test_accuracy"] >= 0.98


@pytest.mark.slow
def test_reference_float64_tracks_published_curve(tmp_path):
    rec = _run(tmp_path, 20, "--dtype", "float64")
    # measured: the compiled kernels follow the original's trajectory for all 20 epochs
    # (every published accuracy, and the epoch-20 losses to all 7 published digits)
    assert [round(r["test_accuracy"], 3) for r in rec] == ACC
    np.testing.assert_allclose([rec[-1]["train_loss"], rec[-1]["test_loss"]], EPOCH20,
                               rtol=1e-6)
