"""MPIComm: training.comm's protocol on mpi4py's COMM_WORLD; world() picks it under an MPI launcher."""

import os
import sys

from ..training.comm import SerialComm
from ..training.config import ConfigError

__all__ = ["MPIComm", "world", "launcher_size", "INSTALL_HINT"]

#: How to get the MPI extra (mpi4py and the MPICH wheel: no compiler, no system MPI).
INSTALL_HINT = 'pip install -e ".[mpi]" (or: pip install mpi4py mpich)'

# Environment variables through which launchers announce the number of processes: MPICH's
# Hydra and Intel MPI (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE), PMIx launchers such as
# srun --mpi=pmix (PMIX_SIZE is not standard; Slurm sets SLURM_NTASKS for every srun).
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def launcher_size(environ=None):
    """Processes an MPI launcher says it started (0 when none did).

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    int
        The size announced by ``mpiexec``/``mpirun``/``srun`` (``PMI_SIZE``,
        ``OMPI_COMM_WORLD_SIZE``...), or 0.
    """
    env = os.environ if environ is None else environ
    for var in _SIZE_VARS:
        try:
            return int(env[var])
        except (KeyError, ValueError):
            continue
    return 0


def _import_mpi(why):
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ConfigError(f"{why}, but mpi4py cannot be imported ({exc}). Install the MPI "
                          f"extra: {INSTALL_HINT}.") from None
    return MPI


class MPIComm:
    """One rank of a data-parallel run: training.comm's protocol over an mpi4py communicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The communicator (default ``MPI.COMM_WORLD``).

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of ranks.
    """

    def __init__(self, comm=None):
        MPI = _import_mpi("MPIComm needs MPI")
        self._MPI = MPI
        self._comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()

    def allreduce_sum_(self, buf):
        """Sum a contiguous array over ranks in place (one ``Allreduce``).

        Parameters
        ----------
        buf : ndarray
            C-contiguous float32 or float64 buffer; on return it holds the sum of every
            rank's buffer (the same bits on every rank).

        Returns
        -------
        ndarray
            ``buf``.
        """
        self._comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return buf

    def bcast_(self, buf, root=0):
        """Overwrite ``buf`` on every rank with ``root``'s (one ``Bcast``).

        Parameters
        ----------
        buf : ndarray
            Contiguous buffer of the same shape and dtype on every rank.
        root : int, default=0
            Source rank.

        Returns
        -------
        ndarray
            ``buf``.
        """
        self._comm.Bcast(buf, root=root)
        return buf

    def allgather_obj(self, obj):
        """Gather a picklable object from every rank.

        Parameters
        ----------
        obj : object
            This rank's object.

        Returns
        -------
        list
            Every rank's object, in rank order.
        """
        return self._comm.allgather(obj)

    def barrier(self):
        """Wait until every rank gets here."""
        self._comm.Barrier()

    def abort(self, code=1):
        """End every rank of the job now (``MPI_Abort``) with exit code ``code``.

        Parameters
        ----------
        code : int, default=1
            Exit code reported by the launcher.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        self._comm.Abort(int(code))


def world():
    """The communicator of this process: ``MPIComm`` when launched on several MPI ranks.

    A process started by ``mpiexec``/``srun`` (or under ``python -m mpi4py``) gets an
    :class:`MPIComm` over ``COMM_WORLD`` when it has more than one rank; a plain process,
    or a one-rank job, gets ``SerialComm``.

    Returns
    -------
    MPIComm or SerialComm
        The communicator.

    Raises
    ------
    ConfigError
        If a launcher started several processes and mpi4py is missing, or its MPI sees
        only one rank (an mpi4py built for another MPI than the launcher's).
    """
    n = launcher_size()
    if n <= 1 and "mpi4py.MPI" not in sys.modules:
        return SerialComm()
    _import_mpi(f"this process was started by an MPI launcher with {n} ranks")
    comm = MPIComm()
    if n > 1 and comm.size != n:
        raise ConfigError(f"the launcher started {n} processes but MPI sees {comm.size}: "
                          "mpi4py is built for another MPI than the launcher's. Launch with "
                          "the mpiexec of the MPI mpi4py uses (python -m mpi4py --mpi-library "
                          "names it), or rebuild mpi4py for the site's MPI.")
    return comm if comm.size > 1 else SerialComm()
