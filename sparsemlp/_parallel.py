"""Thread limits: one context manager for Numba, OpenMP and BLAS thread counts."""

import contextlib
import os
import sys

__all__ = ["thread_limit", "resolve_threads"]


# Ranks an MPI launcher started on this node (MPICH's Hydra, Open MPI).
_LOCAL_RANKS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")


def _local_ranks():
    for var in _LOCAL_RANKS:
        try:
            return max(1, int(os.environ[var]))
        except (KeyError, ValueError):
            continue
    return 1


def resolve_threads(n_threads):
    """Map ``n_threads`` (0 or None = all cores) to a positive count.

    Parameters
    ----------
    n_threads : int or None
        Requested thread count; 0 or None means all available cores: those the process
        may run on, shared out between the MPI ranks a launcher started on this node when
        the launcher did not bind them to cores itself.

    Returns
    -------
    int
        Thread count, at least 1.
    """
    if not n_threads:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - macOS, Windows
            cores = os.cpu_count() or 1
        if cores == os.cpu_count():  # not bound to a subset: share the node with its ranks
            cores //= _local_ranks()
        return max(1, cores)
    if n_threads < 0:
        raise ValueError(f"n_threads must be >= 0 (0 = all cores). Got {n_threads}.")
    return int(n_threads)


@contextlib.contextmanager
def thread_limit(n_threads):
    """Limit kernel, OpenMP and BLAS threads inside a ``with`` block, restored in ``finally``.

    Parameters
    ----------
    n_threads : int or None
        Thread count; 0 or None means all cores.

    Yields
    ------
    int
        The resolved thread count.
    """
    from threadpoolctl import threadpool_limits

    n = resolve_threads(n_threads)
    numba = sys.modules.get("numba")
    old_numba = None
    if numba is not None:
        old_numba = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        if numba is not None:
            numba.set_num_threads(old_numba)
