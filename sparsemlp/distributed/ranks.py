"""Per rank of a command-line run: rank 0 plans and writes, the others follow quietly; a failure ends all."""

import logging

__all__ = ["from_rank0", "rank0_first", "quiet_other_ranks", "end_job"]


def from_rank0(comm, obj):
    """Rank 0's ``obj`` on every rank (``obj`` itself with one rank).

    Parameters
    ----------
    comm : communicator
        ``allgather_obj`` is used.
    obj : object
        Picklable; only rank 0's is kept.

    Returns
    -------
    object
        Rank 0's object.
    """
    if comm.size == 1:
        return obj
    return comm.allgather_obj(obj if comm.rank == 0 else None)[0]


def rank0_first(comm, fn):
    """Call ``fn()`` on rank 0, then on the other ranks (a download or cache happens once).

    Parameters
    ----------
    comm : communicator
        ``allgather_obj`` serves as the barrier.
    fn : callable
        Called once on every rank.

    Returns
    -------
    object
        This rank's ``fn()``.
    """
    if comm.size == 1:
        return fn()
    out = fn() if comm.rank == 0 else None
    comm.allgather_obj(None)
    return fn() if comm.rank > 0 else out


def quiet_other_ranks(comm, logger_name="sparsemlp"):
    """Only rank 0 logs INFO; the others log warnings and errors, prefixed by their rank.

    Parameters
    ----------
    comm : communicator
        This rank.
    logger_name : str, default="sparsemlp"
        The package logger.
    """
    if comm.rank == 0:
        return
    log = logging.getLogger(logger_name)
    log.setLevel(logging.WARNING)
    for h in log.handlers:
        h.setFormatter(logging.Formatter(f"rank {comm.rank}: %(message)s"))


def end_job(comm, code):
    """Return ``code``; a failed rank of a multi-rank job ends every rank (no hang).

    A rank that fails while the others wait in a collective would leave them waiting
    forever: ``comm.abort(code)`` (``MPI_Abort``) ends the whole job, and the launcher
    exits with an error.

    Parameters
    ----------
    comm : communicator or None
        The run's communicator (None before one was made).
    code : int
        This rank's exit code.

    Returns
    -------
    int
        ``code`` (when the job goes on).
    """
    if code and comm is not None and comm.size > 1 and hasattr(comm, "abort"):
        comm.abort(code)
    return code
