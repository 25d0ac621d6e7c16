"""python -m sparsemlp.plot: figures of run directories, degree data, error exit codes."""

import shutil
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from sparsemlp import topology
from sparsemlp.cli import plot, train  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("learning_curves.png", "time_per_epoch.png", "degrees.png")
TINY = ["--hidden", "24", "16", "--epsilon", "4", "--zeta", "0.5", "--epochs", "3",
        "--batch-size", "64", "--threads", "1", "-q"]


def _write_initial_degrees(run_dir, epsilon=4):
    """An Erdős–Rényi initial topology with the run's layer shapes, as the trainer records it."""
    shapes = [sp.load_npz(run_dir / "final" / f"layer_{i}.npz").shape for i in range(3)]
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (n_in, n_out) in enumerate(shapes):
        W = topology.erdos_renyi(n_in, n_out, epsilon=epsilon, rng=rng, saturate=True)
        arrays[f"out_{i}"] = np.diff(W.indptr)
        arrays[f"in_{i}"] = np.bincount(W.indices, minlength=n_out)
    np.savez(run_dir / "initial_degrees.npz", **arrays)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("plot_runs")
    dirs = []
    for seed in (0, 1):
        d = base / f"run{seed}"
        assert train.main([*TINY, "--seed", str(seed), "--out", str(d)]) == 0
        dirs.append(d)
    if not (dirs[0] / "initial_degrees.npz").exists():
        _write_initial_degrees(dirs[0])
    for d in dirs[1:]:  # the second run exercises the missing-file path
        (d / "initial_degrees.npz").unlink(missing_ok=True)
    return dirs


def _check_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.02  # not a blank canvas


def test_main_writes_three_pngs(runs, capsys):
    assert plot.main([str(runs[0])]) == 0
    out = capsys.readouterr().out
    for name in FIGURES:
        p = runs[0] / "plots" / name
        assert str(p) in out
        _check_png(p)


def test_overlay_two_runs_and_out_dir(runs, tmp_path, capsys):
    out = tmp_path / "figs"
    assert plot.main([str(runs[1]), str(runs[0]), "--out", str(out), "--dpi", "60"]) == 0
    printed = capsys.readouterr().out
    assert "no initial_degrees.npz" in printed  # first run has none: note, no failure
    for name in FIGURES:
        _check_png(out / name)
    fig = plot._learning_curves_figure([runs[0], runs[1]])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["run0", "run1"]
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 4
    epochs = fig.axes[0].lines[1].get_xdata()
    assert list(epochs) == [1, 2, 3]


def test_degrees_match_checkpoint(runs):
    deg = plot.read_degrees(runs[0])
    assert deg["initial"] is not None and deg["epoch"] == 3
    with np.load(runs[0] / "initial_degrees.npz") as z:
        for i, (o, d) in enumerate(deg["initial"]):
            np.testing.assert_array_equal(o, z[f"out_{i}"])
            np.testing.assert_array_equal(d, z[f"in_{i}"])
    for i, (out_deg, in_deg) in enumerate(deg["final"]):
        W = sp.load_npz(runs[0] / "final" / f"layer_{i}.npz")
        coo = W.tocoo()  # independent counts: COO coordinates and the CSC column pointers
        rows = np.bincount(coo.row, minlength=W.shape[0])
        cols = np.diff(W.tocsc().indptr)
        np.testing.assert_array_equal(out_deg, rows)
        np.testing.assert_array_equal(in_deg, cols)
        np.testing.assert_array_equal(plot.degree_histogram(out_deg), np.bincount(rows))
        np.testing.assert_array_equal(plot.degree_histogram(in_deg), np.bincount(cols))
        assert in_deg.sum() == out_deg.sum() == W.nnz == deg["nnz"][i]


def test_degrees_count_explicit_zeros():
    W = sp.csr_array((np.array([0.0, 1.0, 2.0]), np.array([0, 2, 2]), np.array([0, 2, 2, 3])),
                     shape=(3, 4))
    out_deg, in_deg = plot.degrees(W)
    assert out_deg.tolist() == [2, 0, 1] and in_deg.tolist() == [1, 0, 2, 0]
    assert plot.degree_histogram(in_deg).tolist() == [2, 1, 1]


def test_library_functions_return_paths(runs, tmp_path):
    p = plot.plot_degrees(runs[1], tmp_path / "sub" / "d.png", dpi=50)
    assert p == str(tmp_path / "sub" / "d.png")
    _check_png(tmp_path / "sub" / "d.png")
    recs = plot.read_metrics(runs[0])
    assert [r["epoch"] for r in recs] == [1, 2, 3]


def _error(argv, capsys):
    rc = plot.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    return err


def test_error_not_a_run_dir(tmp_path, capsys):
    err = _error([tmp_path], capsys)
    assert "has no metrics.jsonl" in err and "sparsemlp.train --out" in err
    err = _error([tmp_path / "nope"], capsys)
    assert "does not exist" in err


@pytest.mark.parametrize("content,msg", [
    ("", "is empty"),
    ('{"epoch": 1}\n', "line 1 lacks train_loss"),
    (None, "line 2 is not valid JSON"),
    ("[1, 2]\n", "line 1 is a JSON list"),
])
def test_error_bad_metrics(runs, tmp_path, capsys, content, msg):
    d = tmp_path / "bad"
    shutil.copytree(runs[0], d, ignore=shutil.ignore_patterns("plots"))
    if content is None:  # a good first line, then a torn one
        first = (d / "metrics.jsonl").read_text().splitlines()[0]
        content = first + "\n" + '{"epoch": 2, "train_lo\n'
    (d / "metrics.jsonl").write_text(content)
    err = _error([d], capsys)
    assert msg in err and "metrics.jsonl" in err
    assert not (d / "plots").exists()


def test_error_bad_initial_degrees(runs, tmp_path, capsys):
    d = tmp_path / "r"
    shutil.copytree(runs[0], d, ignore=shutil.ignore_patterns("plots"))
    np.savez(d / "initial_degrees.npz", out_0=np.zeros(3, np.int64), in_0=np.zeros(2, np.int64))
    assert "initial_degrees.npz" in _error([d, "--out", tmp_path / "o"], capsys)


def test_error_matplotlib_missing(runs, tmp_path, capsys, monkeypatch):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    err = _error([runs[0], "--out", tmp_path / "o"], capsys)
    assert 'pip install "sparsemlp[plot]"' in err
    assert not (tmp_path / "o").exists()


def test_error_dpi(runs, tmp_path, capsys):
    assert "--dpi" in _error([runs[0], "--dpi", "0", "--out", tmp_path], capsys)
