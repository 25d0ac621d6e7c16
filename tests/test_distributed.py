"""Data parallelism in one process: ranks simulated by threads (ThreadComm) against one-process oracles.

The MPI runs themselves (mpiexec subprocesses) are in test_mpi.py; these tests run the same
equivalence logic in well under a second each.
"""

import os
import threading

import numpy as np
import pytest
from conftest import InterruptAfter, StopAt

from sparsemlp import RBMTrainer, TrainConfig, Trainer
from sparsemlp._rng import ShardedGenerator, Streams
from sparsemlp.data import load as load_data
from sparsemlp.distributed import ThreadComm, launcher_size, run_ranks, world
from sparsemlp.training import mlp as mlp_mod
from sparsemlp.training.callbacks import Callback
from sparsemlp.training.checkpoint import topology_digest
from sparsemlp.training.comm import SerialComm
from sparsemlp.training.config import ConfigError
from sparsemlp.training.dataparallel import RankMismatchError, check_shardable, shard_bounds

# 400 samples in batches of 32: 13 steps an epoch, 4 epochs = 52 steps and 3 evolutions
MLP = dict(hidden=(32, 24), epsilon=4.0, epochs=4, batch_size=32, dropout=0.2)
RBM = dict(model="rbm", hidden=(40,), epsilon=4.0, epochs=4, batch_size=30)
TOL = {"float64": 1e-9, "float32": 1e-4}


@pytest.fixture(scope="module")
def data():
    ds = load_data("digits", rng=np.random.default_rng(0))
    Xb = (ds.X_train > 0.5).astype(np.float64)
    return dict(ds=ds, X=ds.X_train[:400], y=ds.y_train[:400], Xt=ds.X_test[:150],
                yt=ds.y_test[:150], Xb=Xb[:300], Xbt=(ds.X_test[:100] > 0.5).astype(np.float64))


class Digests(Callback):
    """Every layer's topology digest at the end of every epoch (after its evolution)."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, record):
        self.seen.append([topology_digest(la.W) for la in trainer.model.sparse_layers()])


class EvolveStreams(Streams):
    """Streams whose evolution draws depend on the rank (a negative control)."""

    def __init__(self, seed, rank):
        super().__init__(seed)
        self.rank = rank

    def get(self, name, *keys):
        return super().get(name, *keys, *((self.rank,) if name == "evolve" else ()))


class NoSum(ThreadComm):
    """A communicator that forgets to sum the gradient buffer (a negative control)."""

    def allreduce_sum_(self, buf):
        if buf.size > 2:
            self._group.exchange(self.rank, None)  # keep the ranks in step
            return buf
        return super().allreduce_sum_(buf)


def _train(data, kind, comm=None, streams=None, run_dir=None, callbacks=(), **kw):
    cfg = TrainConfig(**{**(MLP if kind == "mlp" else RBM), **kw}).resolve()
    ds = data["ds"]
    streams = streams or Streams(cfg.seed)
    dig = Digests()
    common = dict(streams=streams, verbose=False, comm=comm, run_dir=run_dir,
                  callbacks=[dig, *callbacks])
    if kind == "mlp":
        tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, **common)
        tr.fit(data["X"], data["y"], data["Xt"], data["yt"])
    else:
        tr = RBMTrainer.from_config(cfg, ds.n_features, **common)
        tr.fit(data["Xb"], data["Xbt"])
    return tr, dig.seen


def _layers(tr):
    return tr.model.sparse_layers() if hasattr(tr.model, "sparse_layers") else [tr.model.layer]


def assert_equivalent(a, b, tol):
    """Same topology and epochs, weights and biases within ``tol * max|w|``, same metrics."""
    (ta, da), (tb, db) = a, b
    assert da == db, "topology digests differ after an evolution"
    for la, lb in zip(_layers(ta), _layers(tb)):
        assert np.array_equal(la.W.indptr, lb.W.indptr) and np.array_equal(la.W.indices, lb.W.indices)
        scale = np.abs(la.W.data).max()
        np.testing.assert_allclose(lb.W.data, la.W.data, rtol=0, atol=tol * scale)
    for pa, pb in zip(ta.model.parameters(), tb.model.parameters()):
        np.testing.assert_allclose(pb, pa, rtol=0, atol=tol * max(1.0, np.abs(pa).max()))
    for ra, rb in zip(ta.history.records, tb.history.records):
        for k in ("train_loss", "test_loss", "train_recon", "test_recon", "test_pll"):
            if ra.get(k) is not None:
                assert rb[k] == pytest.approx(ra[k], rel=1e3 * tol), k
        for k in ("test_accuracy", "nnz"):
            assert rb.get(k) == ra.get(k), k


@pytest.mark.parametrize("kind", ["mlp", "rbm"])
@pytest.mark.parametrize("size, dtype", [(2, "float64"), (3, "float64"), (2, "float32")])
def test_ranks_equal_one_process(data, kind, size, dtype):
    oracle = _train(data, kind, dtype=dtype)
    assert oracle[0].step >= 40 and len(oracle[1]) == 4
    ranks = run_ranks(size, lambda comm: _train(data, kind, comm=comm, dtype=dtype))
    for r in ranks:
        assert r[0].history.records[-1]["ranks"] == size
        assert_equivalent(oracle, r, TOL[dtype])


@pytest.mark.parametrize("kind", ["mlp", "rbm"])
def test_negative_control_no_allreduce(data, kind):
    """Ranks that do not sum their gradients must fail the check (diverge or be caught)."""
    oracle = _train(data, kind, dtype="float64")
    with pytest.raises((AssertionError, RankMismatchError)):
        ranks = run_ranks(2, lambda comm: _train(data, kind, comm=NoSum(comm._group, comm.rank),
                                                  dtype="float64"))
        for r in ranks:
            assert_equivalent(oracle, r, TOL["float64"])


@pytest.mark.parametrize("kind", ["mlp", "rbm"])
def test_negative_control_rank_dependent_evolution_seed(data, kind):
    """Evolution streams keyed by the rank: the digest check stops the run after the first evolution."""
    with pytest.raises(RankMismatchError, match="evolution|topology change"):
        run_ranks(2, lambda comm: _train(data, kind, comm=comm,
                                         streams=EvolveStreams(0, comm.rank)))


def test_resume_two_ranks_interrupted_on_one(data, tmp_path, monkeypatch):
    """A 2-rank run interrupted mid-epoch (on rank 0 only), resumed on one process, equals the
    uninterrupted 2-rank run."""
    straight = run_ranks(2, lambda comm: _train(data, "mlp", comm=comm, dtype="float64"))[0]
    flag = mlp_mod._InterruptFlag
    # rank 0 gets the signal in epoch 2; rank 1 learns of it through the summed stop flag
    monkeypatch.setattr(mlp_mod, "_InterruptFlag", lambda: (
        InterruptAfter(13 + 1 + 5) if threading.current_thread().name == "rank-0" else flag()))
    run = tmp_path / "run"

    def interrupted(comm):
        try:
            _train(data, "mlp", comm=comm, dtype="float64", run_dir=run if comm.rank == 0 else None)
        except KeyboardInterrupt:
            return "interrupted"

    assert run_ranks(2, interrupted) == ["interrupted"] * 2  # both stop after the same step
    monkeypatch.setattr(mlp_mod, "_InterruptFlag", flag)
    cks = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert cks[-1] == "epoch-0001-step-000005", cks
    resumed = Trainer.from_checkpoint(run / "checkpoints" / cks[-1], verbose=False)
    assert resumed.step == 18
    resumed.fit(data["X"], data["y"], data["Xt"], data["yt"])
    assert_equivalent((straight[0], None), (resumed, None), TOL["float64"])


def test_resume_on_more_ranks(data, tmp_path):
    """A one-process checkpoint (after epoch 2) resumes on 3 ranks to the one-process result."""
    run = tmp_path / "run"
    straight = _train(data, "rbm", dtype="float64")
    _train(data, "rbm", dtype="float64", run_dir=run, callbacks=[StopAt(2)], checkpoint_every=1)
    ck = run / "checkpoints" / "epoch-0002"

    def resume(comm):
        tr = RBMTrainer.from_checkpoint(ck, verbose=False, comm=comm)
        tr.fit(data["Xb"], data["Xbt"])
        return tr, None

    for r in run_ranks(3, resume):
        assert_equivalent((straight[0], None), r, TOL["float64"])


@pytest.mark.parametrize("n, size", [(10, 3), (7, 7), (128, 5), (3, 4)])
def test_shard_bounds_partition(n, size):
    got = [shard_bounds(n, size, r) for r in range(size)]
    assert [i for lo, hi in got for i in range(lo, hi)] == list(range(n))
    assert [hi - lo for lo, hi in got] == [len(a) for a in np.array_split(np.arange(n), size)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sharded_draws_are_the_whole_batch_columns(dtype):
    """Each rank's draws are its columns of one process's block; the stream ends in the same state."""
    whole = np.random.default_rng(5)
    block = whole.random((6, 10), dtype=dtype)
    parts = []
    for lo, hi in [(0, 4), (4, 7), (7, 10)]:
        g = np.random.default_rng(5)
        parts.append(ShardedGenerator(g, 10, lo, hi).random((6, hi - lo), dtype=dtype))
        assert g.bit_generator.state == whole.bit_generator.state
    np.testing.assert_array_equal(np.hstack(parts), block)
    with pytest.raises(NotImplementedError, match="only random"):
        ShardedGenerator(np.random.default_rng(0), 10, 0, 5).standard_normal((2, 5))


@pytest.mark.parametrize("kw, msg", [
    (dict(mode="reference"), "reference mode"),
    (dict(model="rbm", persistent=True), "PCD"),
    (dict(model="rbm", visible_units="gaussian", normalize="zscore"), "Gaussian"),
    (dict(batch_size=2), "at least 3 samples"),
])
def test_unshardable_settings_are_refused(kw, msg):
    cfg = TrainConfig(**kw).resolve()
    with pytest.raises(ConfigError, match=msg):
        check_shardable(cfg, 100, 3, cfg.model)
    check_shardable(cfg, 100, 1, cfg.model)  # one process runs them all


def test_world_is_serial_without_a_launcher(monkeypatch):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delitem(__import__("sys").modules, "mpi4py.MPI", raising=False)
    assert isinstance(world(), SerialComm)
    assert launcher_size({"PMI_SIZE": "4"}) == 4 and launcher_size({}) == 0


def test_missing_mpi4py_under_a_launcher_names_the_extra(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)  # import fails
    with pytest.raises(ConfigError, match=r'mpi4py cannot be imported.*pip install -e "\.\[mpi\]"'):
        world()


def test_all_cores_are_shared_between_the_ranks_of_a_node(monkeypatch):
    from sparsemlp import _parallel

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE", raising=False)
    monkeypatch.delenv("MPI_LOCALNRANKS", raising=False)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: cores)  # not bound to a subset
    assert _parallel.resolve_threads(0) == cores
    monkeypatch.setenv("MPI_LOCALNRANKS", str(cores))
    assert _parallel.resolve_threads(0) == 1 and _parallel.resolve_threads(3) == 3
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 4 * cores)  # bound by the launcher
    assert _parallel.resolve_threads(0) == cores


def test_a_callback_stopping_one_rank_stops_all(data):
    """Early stopping decided on rank 0 alone ends every rank after the same epoch (no hang)."""
    def fit(comm):
        stop = [StopAt(2)] if comm.rank == 0 else []
        return _train(data, "mlp", comm=comm, callbacks=stop)[0].epoch

    assert run_ranks(2, fit) == [2, 2]


@pytest.mark.parametrize("kw", [dict(augment_shift=1, augment_flip=True),
                                dict(regrow="gradient"), dict(regrow="gradient-sampled")])
def test_ranks_equal_one_process_with_augmentation_and_gradient_regrowth(data, kw):
    """Augmentation draws per sample of the whole batch, and gradient regrowth scores the
    same keyed batch on every rank: 2 ranks still give the one-process run."""
    oracle = _train(data, "mlp", dtype="float64", **kw)
    for r in run_ranks(2, lambda comm: _train(data, "mlp", comm=comm, dtype="float64", **kw)):
        assert_equivalent(oracle, r, TOL["float64"])
