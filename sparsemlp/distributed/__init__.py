"""Data-parallel training over MPI (mpi4py): MPIComm, world(); ThreadComm simulates ranks in one process."""

from .local import ThreadComm, run_ranks
from .mpi import INSTALL_HINT, MPIComm, launcher_size, world
from .ranks import end_job, from_rank0, quiet_other_ranks, rank0_first

__all__ = ["MPIComm", "world", "launcher_size", "INSTALL_HINT", "ThreadComm", "run_ranks",
           "from_rank0", "rank0_first", "quiet_other_ranks", "end_job"]
