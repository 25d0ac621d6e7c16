"""Run by test_mpi.py under mpiexec: a small data-parallel MLP run with an optional fault.

``python mpi_driver.py FAULT``: ``none`` trains and exits 0; ``seed`` keys the evolution
streams by rank (the digest check must stop the job); ``raise`` makes rank 1 fail at its
fifth step; ``kill`` makes rank 1 kill itself (SIGKILL) at its fifth step. A failed rank
ends the job through ``end_job`` as the command line does.
"""

import os
import signal
import sys

import numpy as np

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.data import load as load_data
from sparsemlp.distributed import end_job, world


class Faulty:
    """Wraps a communicator: rank 1 fails at its fifth gradient sum."""

    def __init__(self, comm, fault):
        self.comm, self.fault, self.calls = comm, fault, 0
        self.rank, self.size = comm.rank, comm.size

    def allreduce_sum_(self, buf):
        self.calls += 1
        if self.rank == 1 and self.calls == 5:
            if self.fault == "raise":
                raise RuntimeError("rank 1 failed on purpose")
            os.kill(os.getpid(), signal.SIGKILL)
        return self.comm.allreduce_sum_(buf)

    def __getattr__(self, name):
        return getattr(self.comm, name)


class RankStreams(Streams):
    def __init__(self, seed, rank):
        super().__init__(seed)
        self.rank = rank

    def get(self, name, *keys):
        return super().get(name, *keys, *((self.rank,) if name == "evolve" else ()))


def main(fault):
    comm = world()
    cfg = TrainConfig(hidden=(32, 24), epsilon=4.0, epochs=3, batch_size=32).resolve()
    streams = RankStreams(0, comm.rank) if fault == "seed" else Streams(0)
    ds = load_data("digits", rng=np.random.default_rng(0))
    tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams, verbose=False,
                             comm=Faulty(comm, fault) if fault in ("raise", "kill") else comm)
    tr.fit(ds.X_train[:400], ds.y_train[:400])
    return 0


if __name__ == "__main__":
    comm, code = None, 1
    try:
        comm = world()
        code = main(sys.argv[1])
    except Exception as exc:  # noqa: BLE001 - shown, then the job ends
        print(f"error on rank {comm.rank if comm else '?'}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
    sys.exit(end_job(comm, code))
