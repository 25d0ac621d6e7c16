"""ThreadComm: ranks simulated by threads of one process, for tests and debugging without MPI."""

import threading

import numpy as np

__all__ = ["ThreadComm", "run_ranks"]


class _Group:
    def __init__(self, size):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=120)
        self.slots = [None] * size

    def exchange(self, rank, value):
        """Every rank's value, in rank order (after every rank has posted one)."""
        self.slots[rank] = value
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()  # nobody posts the next value before every rank has read this one
        return out


class ThreadComm:
    """One of ``size`` ranks simulated by threads: the collectives of ``training.comm``.

    Sums run in rank order on every rank (the same bits everywhere), as an MPI
    ``Allreduce`` of the same buffers would give up to the order of the additions.

    Parameters
    ----------
    group : object
        Shared state of the ranks (made by :func:`run_ranks`).
    rank : int
        This rank.
    """

    def __init__(self, group, rank):
        self._group = group
        self.rank = rank
        self.size = group.size

    def allreduce_sum_(self, buf):
        """Sum ``buf`` over the ranks in place.

        Parameters
        ----------
        buf : ndarray
            Buffer of the same shape and dtype on every rank.

        Returns
        -------
        ndarray
            ``buf``.
        """
        every = self._group.exchange(self.rank, buf.copy())
        total = every[0].copy()
        for other in every[1:]:
            total += other
        buf[...] = total
        return buf

    def bcast_(self, buf, root=0):
        """Overwrite ``buf`` with ``root``'s.

        Parameters
        ----------
        buf : ndarray
            Buffer.
        root : int, default=0
            Source rank.

        Returns
        -------
        ndarray
            ``buf``.
        """
        buf[...] = self._group.exchange(self.rank, np.array(buf, copy=True))[root]
        return buf

    def allgather_obj(self, obj):
        """Every rank's object, in rank order.

        Parameters
        ----------
        obj : object
            This rank's object.

        Returns
        -------
        list
            The objects.
        """
        return self._group.exchange(self.rank, obj)

    def barrier(self):
        """Wait for every rank."""
        self._group.exchange(self.rank, None)


def run_ranks(size, fn):
    """Run ``fn(comm)`` on ``size`` simulated ranks (threads) and return their results.

    An exception on any rank breaks the others' waits and is raised here (the first
    rank's, in rank order).

    Parameters
    ----------
    size : int
        Number of ranks.
    fn : callable
        ``fn(comm) -> result``, called once per rank with its :class:`ThreadComm`.

    Returns
    -------
    list
        The results, in rank order.
    """
    group = _Group(int(size))
    results, errors = [None] * size, [None] * size

    def body(rank):
        try:
            results[rank] = fn(ThreadComm(group, rank))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors[rank] = exc
            group.barrier.abort()

    threads = [threading.Thread(target=body, args=(r,), name=f"rank-{r}", daemon=True)
               for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    real = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
    if real or any(errors):
        raise (real or [e for e in errors if e is not None])[0]
    return results
