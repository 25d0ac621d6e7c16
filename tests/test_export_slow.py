"""Slow acceptance test: a SET-trained Fashion-MNIST 784-1000-1000-10 (epsilon 20) exported as C
takes raw pixels and matches Python on 1000 test images, on the host and under qemu."""

import os

import numpy as np
import pytest
from conftest import SHARED_DATA
from test_export_build import TARGETS, need

from sparsemlp.cli import train as train_cli
from sparsemlp.export import to_c
from sparsemlp.export._build import build_harness, run_check
from sparsemlp.export._check import compare, python_reference
from sparsemlp.export._source import load_source, run_data

pytestmark = pytest.mark.slow

CANDIDATES = [os.environ.get("SPARSEMLP_FASHION_MNIST", ""), "/usr/share/datasets/fashion-mnist",
              str(SHARED_DATA / "fashion-mnist")]


@pytest.fixture(scope="module")
def fmnist_export(tmp_path_factory):
    d = next((c for c in CANDIDATES if c and os.path.exists(
        os.path.join(c, "t10k-images-idx3-ubyte.gz"))), None)
    if d is None:
        pytest.skip(f"Fashion-MNIST not found in {', '.join(c for c in CANDIDATES if c)}")
    out = tmp_path_factory.mktemp("fmnist") / "run"
    assert train_cli.main(["--dataset", "fashion-mnist", "--data-dir", d, "--no-download",
                           "--hidden", "1000", "1000", "--epsilon", "20", "--epochs", "2",
                           "--train-samples", "20000", "--threads", "2", "-q",
                           "--out", str(out)]) == 0
    model, cfg, _ = load_source(out)
    assert model.sizes == [784, 1000, 1000, 10]
    data = run_data(cfg, 784, with_test=True)
    raw, scaled = data["X_raw"][:1000], data["X_scaled"][:1000]
    assert raw.max() == 255  # the C code takes pixels as stored and scales them itself
    ex = to_c(model, out / "c", input_scaling=data["scaling"], labels=data["labels"])
    return model, ex, raw, python_reference(model, scaled)


@pytest.mark.parametrize("target, opt", [("host", "-O0"), ("host", "-O2"), ("aarch64", "-O2"),
                                         ("armv7", "-O2")])
def test_fmnist_export_matches_python(fmnist_export, tmp_path, target, opt):
    tools = ("gcc",) if target == "host" else (TARGETS[target].compilers[0],
                                               TARGETS[target].runner[0])
    need(*tools)
    model, ex, raw, (pl, po) = fmnist_export
    exe = build_harness(ex, "check", str(tmp_path), target=target, opt=opt)
    cl, co = run_check(exe, ex, raw, target=target)
    r = compare(cl, co, pl, po)
    print(target, opt, r)
    assert r["ok"] and r["argmax_agree"] == 1000 and r["max_rel_logit_err"] <= 1e-4, r
    assert np.isfinite(co).all()
