"""Data-parallel training under a real ``mpiexec``: N ranks equal one process, resume on another N,
failures end the job.

Every launch is a subprocess in its own session with a hard timeout; on timeout the whole
process group is killed and the test fails (a deadlock fails, it does not hang). The tests
skip when mpi4py or mpiexec is missing; with SPARSEMLP_REQUIRE_TOOLCHAINS=1 (CI, which
installs the ``mpi`` extra) such a skip is a failure.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsemlp.training import load_model

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("SPARSEMLP_REQUIRE_TOOLCHAINS") == "1"
MPIEXEC = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
           or shutil.which("mpiexec"))
# digits: 1198 training samples in batches of 64 -> 19 steps an epoch; 4 epochs give 76 steps and
# 3 evolutions (the RBM's removal after the last epoch makes 4 topology changes)
MLP = ["--hidden", "48", "32", "--epsilon", "4", "--batch-size", "64", "--epochs", "4",
       "--dtype", "float64", "--dropout", "0.2"]
RBM = ["--model", "rbm", "--hidden", "48", "--epsilon", "4", "--batch-size", "64", "--epochs", "4",
       "--dtype", "float64", "--ais-betas", "50"]
COMMON = ["--checkpoint-every", "1", "--keep-checkpoints", "10", "-q"]


def need_mpi():
    """Skip (or fail, with SPARSEMLP_REQUIRE_TOOLCHAINS=1) unless mpi4py and mpiexec exist."""
    try:
        import mpi4py  # noqa: F401
        missing = None if MPIEXEC else "mpiexec not found"
    except ImportError:
        missing = "mpi4py not installed"
    if missing:
        msg = f'{missing} (pip install -e ".[mpi]")'
        if REQUIRE:
            pytest.fail(f"{msg}, and SPARSEMLP_REQUIRE_TOOLCHAINS=1 forbids skipping")
        pytest.skip(msg)


def launch(n, args, *, timeout=120, cwd=None):
    """Run ``mpiexec -n n python ARGS`` (or plain python for n=0); kill its group on timeout."""
    cmd = ([MPIEXEC, "-n", str(n)] if n else []) + [sys.executable, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"{' '.join(cmd)} did not end within {timeout} s (a deadlock?)\n{err[-2000:]}")
    return p.returncode, out, err


def train(n, run, model_args, *extra, mpi4py_runner=False):
    prefix = ["-m", "mpi4py"] if mpi4py_runner else []
    code, out, err = launch(n, [*prefix, "-m", "sparsemlp.train", *model_args, *COMMON,
                                "--out", str(run), *extra])
    assert code == 0, err[-3000:]
    return out


def layers(ck):
    m = load_model(ck)
    return [la.W for la in m.layers] if hasattr(m, "layers") else [m.layer.W]


def assert_same_runs(a, b, tol=1e-9, epochs=(1, 2, 3)):
    """Same topology after every evolution (epoch checkpoints), final weights within tol*max|w|."""
    for e in epochs:
        for Wa, Wb in zip(layers(a / "checkpoints" / f"epoch-{e:04d}"),
                          layers(b / "checkpoints" / f"epoch-{e:04d}")):
            assert np.array_equal(Wa.indptr, Wb.indptr) and np.array_equal(Wa.indices, Wb.indices), e
    for Wa, Wb in zip(layers(a / "final"), layers(b / "final")):
        assert np.array_equal(Wa.indices, Wb.indices)
        np.testing.assert_allclose(Wb.data, Wa.data, rtol=0, atol=tol * np.abs(Wa.data).max())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-process oracles and 2-rank runs of the MLP and the RBM (shared by the tests)."""
    need_mpi()
    base = tmp_path_factory.mktemp("mpi")
    for kind, args in (("mlp", MLP), ("rbm", RBM)):
        train(0, base / f"{kind}-1", args)
        # the form for the MLP (python -m mpi4py), plain python for the RBM
        train(2, base / f"{kind}-2", args, mpi4py_runner=kind == "mlp")
    return base


@pytest.mark.parametrize("kind", ["mlp", "rbm"])
def test_two_ranks_equal_one_process(runs, kind):
    assert_same_runs(runs / f"{kind}-1", runs / f"{kind}-2")
    last = (runs / f"{kind}-2" / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"ranks": 2' in last


@pytest.mark.parametrize("kind", ["mlp", "rbm"])
def test_three_ranks_oversubscribed_equal_one_process(runs, tmp_path, kind):
    train(3, tmp_path / f"{kind}-3", MLP if kind == "mlp" else RBM)
    assert_same_runs(runs / f"{kind}-1", tmp_path / f"{kind}-3")


def test_two_rank_run_resumes_on_one(runs, tmp_path):
    """The 2-rank run, resumed from its epoch-2 checkpoint on one process, ends where it ended."""
    run = tmp_path / "mlp"
    shutil.copytree(runs / "mlp-2", run)
    code, _, err = launch(0, ["-m", "sparsemlp.train", "-q", "--resume",
                              str(run / "checkpoints" / "epoch-0002")])
    assert code == 0, err
    assert_same_runs(runs / "mlp-2", run, epochs=(3,))
    code, out, _ = launch(0, ["-m", "sparsemlp.info", str(run)])
    assert "MPI ranks by epoch 2, 2, 1, 1" in out


def test_only_rank_zero_writes(runs):
    run = runs / "mlp-2"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "final",
                                                      "initial_degrees.npz", "latest",
                                                      "metrics.jsonl"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # one writer


@pytest.mark.parametrize("fault, needle", [
    ("seed", "differs from rank 0's"),          # rank-keyed evolution: the digest check
    ("raise", "rank 1 failed on purpose"),      # one rank's exception
    ("kill", "signal 9"),                       # a killed rank
])
def test_a_failing_rank_ends_the_job(fault, needle):
    need_mpi()
    code, out, err = launch(2, [str(ROOT / "tests" / "mpi_driver.py"), fault], timeout=60)
    assert code != 0
    assert needle in out + err


def test_bad_setting_ends_every_rank_with_one_message(tmp_path):
    need_mpi()
    code, _, err = launch(2, ["-m", "sparsemlp.train", "--batch-size", "1", "--epochs", "1",
                              "--out", str(tmp_path / "r")], timeout=60)
    assert code == 2, err
    assert "2 ranks need at least 2 samples in every batch" in err


def test_missing_mpi4py_is_one_line(tmp_path):
    """Under a launcher without mpi4py: exit 2 and a line naming the extra (no MPI needed)."""
    (tmp_path / "mpi4py").mkdir()
    (tmp_path / "mpi4py" / "__init__.py").write_text("raise ImportError('No module named mpi4py')\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", PMI_SIZE="2", PMI_RANK="0")
    p = subprocess.run([sys.executable, "-m", "sparsemlp.train", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install -e ".[mpi]"' in lines[0], p.stderr
