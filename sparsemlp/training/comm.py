"""Comm protocol for data-parallel training; SerialComm, the single-process default."""

__all__ = ["SerialComm"]


class SerialComm:
    """One process: collective operations are identities.

    Attributes
    ----------
    rank : int
        Always 0.
    size : int
        Always 1.
    """

    rank = 0
    size = 1

    def allreduce_sum_(self, buf):
        """Sum ``buf`` over ranks in place (nothing to do with one rank).

        Parameters
        ----------
        buf : ndarray
            Buffer.

        Returns
        -------
        ndarray
            ``buf``.
        """
        return buf

    def bcast_(self, buf, root=0):
        """Broadcast ``buf`` from ``root`` in place (identity).

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
        return buf

    def allgather_obj(self, obj):
        """Gather a Python object from every rank.

        Parameters
        ----------
        obj : object
            Local object.

        Returns
        -------
        list
            ``[obj]``.
        """
        return [obj]
