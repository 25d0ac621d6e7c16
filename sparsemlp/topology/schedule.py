"""ClashFreeSchedule: which connection each memory bank serves in each clock cycle; check, export."""

import json
import os

import numpy as np

__all__ = ["ClashFreeSchedule", "SCHEDULE_COLUMNS"]

SCHEDULE_COLUMNS = ("cycle", "lane", "bank", "address", "input", "output")

# Rows written per chunk by the CSV/JSON exports (bounds their temporaries).
_ROWS = 1 << 16


class ClashFreeSchedule:
    """The cycle schedule of a clash-free layer: z connections per clock cycle, one per bank.

    Parameters
    ----------
    order : ndarray of int, shape (nnz,)
        ``order[c * z + u]`` is the position in ``W.data`` of the connection that lane u
        processes in cycle c; a permutation of ``range(nnz)``.
    z : int
        Number of memory banks (lanes, connections per cycle). Input k lives in bank
        ``k % z`` at address ``k // z``.
    kind : int, default=0
        Address-pattern kind the schedule was drawn with (1, 2, 3; 0 = unknown). Metadata.
    dither : bool, default=False
        Whether the bank order was dithered. Metadata.

    Attributes
    ----------
    order : ndarray
        As the parameter (held by reference; rewiring updates it in place).
    z : int
        Number of banks.
    kind : int
        Address-pattern kind.
    dither : bool
        Bank-order dither.

    See Also
    --------
    sparsemlp.topology.clash_free : The generator that returns a pattern and its schedule.

    Notes
    -----
    One index per connection (4 bytes in int32). A schedule describes one pattern: use it
    with the ``W`` it came with, or with what a bank-preserving rewiring
    (:func:`sparsemlp.rewiring.evolve_degree_preserving`) made of it.
    """

    def __init__(self, order, z, *, kind=0, dither=False):
        self.order = np.asarray(order)
        if self.order.ndim != 1 or self.order.dtype.kind not in "iu":
            raise ValueError(f"order must be a 1-D integer array. Got {self.order.dtype} with "
                             f"shape {self.order.shape}.")
        self.z = int(z)
        if self.z < 1 or self.order.shape[0] % self.z:
            raise ValueError(f"The schedule's {self.order.shape[0]} connections do not fill "
                             f"whole cycles of z={self.z}. Pass the z the layer was built with.")
        self.kind = int(kind)
        self.dither = bool(dither)

    @property
    def n_cycles(self):
        """Clock cycles the layer takes.

        Returns
        -------
        int
            ``nnz / z``.
        """
        return self.order.shape[0] // self.z

    def __repr__(self):
        return (f"ClashFreeSchedule(z={self.z}, n_cycles={self.n_cycles}, kind={self.kind}, "
                f"dither={self.dither})")

    def copy(self):
        """An independent copy (its own ``order`` array).

        Returns
        -------
        ClashFreeSchedule
            The copy.
        """
        return ClashFreeSchedule(self.order.copy(), self.z, kind=self.kind, dither=self.dither)

    def _inputs(self, W, lo=0, hi=None):
        """Input (row of W) of the connections in slots ``lo:hi``, int64."""
        pos = self.order[lo:hi].astype(np.int64)
        return np.searchsorted(W.indptr, pos, side="right") - 1

    def table(self, W, lo=0, hi=None):
        """The schedule as columns: one row per connection, cycle by cycle.

        Parameters
        ----------
        W : scipy.sparse.csr_array of shape (n_in, n_out)
            The pattern the schedule belongs to.
        lo, hi : int, optional
            Slice of slots (``c * z + u``) to return; all by default.

        Returns
        -------
        dict of str to ndarray of int64
            ``cycle``, ``lane``, ``bank`` (``input % z``), ``address`` (``input // z``),
            ``input`` (row of W) and ``output`` (column of W).

        Raises
        ------
        ValueError
            If the schedule does not fit W (see :meth:`check`).
        """
        self._check_fit(W)
        hi = self.order.shape[0] if hi is None else hi
        slots = np.arange(lo, hi, dtype=np.int64)
        inp = self._inputs(W, lo, hi)
        return {"cycle": slots // self.z, "lane": slots % self.z, "bank": inp % self.z,
                "address": inp // self.z, "input": inp,
                "output": W.indices[self.order[lo:hi]].astype(np.int64)}

    def _check_fit(self, W):
        nnz = int(W.indptr[-1])
        if self.order.shape[0] != nnz:
            raise ValueError(f"This schedule has {self.order.shape[0]} connections but W has "
                             f"{nnz}. Pass the W the schedule was built (or rewired) with.")

    def clashes(self, W):
        """Cycles whose z connections do not read z different banks.

        Parameters
        ----------
        W : scipy.sparse.csr_array
            The pattern the schedule belongs to.

        Returns
        -------
        ndarray of int64
            Ascending indices of the clashing cycles (empty if clash-free).

        Raises
        ------
        ValueError
            If the schedule has another length than W or is not a permutation of its
            connections.
        """
        self._check_fit(W)
        nnz = self.order.shape[0]
        seen = np.bincount(self.order, minlength=nnz) if nnz else np.zeros(0, np.int64)
        if nnz and (seen.shape[0] != nnz or seen.min() != 1):
            raise ValueError("The schedule does not list every connection of W exactly once.")
        out = []
        step = max(1, _ROWS // self.z) * self.z
        for lo in range(0, nnz, step):
            hi = min(nnz, lo + step)
            banks = np.sort((self._inputs(W, lo, hi) % self.z).reshape(-1, self.z), axis=1)
            bad = np.flatnonzero((banks[:, 1:] == banks[:, :-1]).any(axis=1))
            out.append(bad + lo // self.z)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def is_clash_free(self, W):
        """Whether every cycle reads z different banks.

        Parameters
        ----------
        W : scipy.sparse.csr_array
            The pattern the schedule belongs to.

        Returns
        -------
        bool
            True if no cycle has a clash.

        Raises
        ------
        ValueError
            If the schedule does not fit W.
        """
        return self.clashes(W).shape[0] == 0

    def summary(self, W):
        """Plain-type description: banks, depth, cycles, clash-freedom.

        Parameters
        ----------
        W : scipy.sparse.csr_array
            The pattern the schedule belongs to.

        Returns
        -------
        dict
            ``z``, ``depth`` (addresses per bank, ``ceil(n_in / z)``), ``n_cycles``,
            ``kind``, ``dither``, ``clash_free`` and ``n_clashing_cycles``.
        """
        bad = self.clashes(W)
        return {"z": self.z, "depth": -(-W.shape[0] // self.z), "n_cycles": self.n_cycles,
                "kind": self.kind, "dither": self.dither, "clash_free": bad.shape[0] == 0,
                "n_clashing_cycles": int(bad.shape[0])}

    def to_csv(self, path, W):
        """Write the schedule as CSV: a header line, then one line per connection.

        Parameters
        ----------
        path : str or path-like
            Destination file (written to ``path.tmp`` and renamed).
        W : scipy.sparse.csr_array
            The pattern the schedule belongs to.

        Returns
        -------
        str
            The path.

        Notes
        -----
        Columns ``cycle,lane,bank,address,input,output`` in cycle order (lane within
        cycle), written in chunks of 65,536 rows.
        """
        path = os.fspath(path)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(",".join(SCHEDULE_COLUMNS) + "\n")
            for lo in range(0, self.order.shape[0], _ROWS):
                t = self.table(W, lo, min(self.order.shape[0], lo + _ROWS))
                np.savetxt(fh, np.column_stack([t[c] for c in SCHEDULE_COLUMNS]), fmt="%d",
                           delimiter=",")
        os.replace(tmp, path)
        return path

    def to_json(self, path, W):
        """Write the schedule and its metadata as one JSON object.

        Parameters
        ----------
        path : str or path-like
            Destination file (written to ``path.tmp`` and renamed).
        W : scipy.sparse.csr_array
            The pattern the schedule belongs to.

        Returns
        -------
        str
            The path.

        Notes
        -----
        Keys: ``format`` (``"sparsemlp.clash_free_schedule"``), ``version`` (1), ``n_in``,
        ``n_out``, ``nnz``, the :meth:`summary` fields, and ``columns``: one list per column
        of :meth:`table`, in cycle order.
        """
        path = os.fspath(path)
        doc = {"format": "sparsemlp.clash_free_schedule", "version": 1,
               "n_in": int(W.shape[0]), "n_out": int(W.shape[1]), "nnz": int(W.indptr[-1])}
        doc.update(self.summary(W))
        t = self.table(W)
        doc["columns"] = {c: t[c].tolist() for c in SCHEDULE_COLUMNS}
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        os.replace(tmp, path)
        return path

    def state_dict(self, prefix=""):
        """Arrays for a checkpoint (``<prefix>order``, ``z``, ``kind``, ``dither``).

        Parameters
        ----------
        prefix : str, default=""
            Key prefix, e.g. ``"layers.0.schedule."``.

        Returns
        -------
        dict of str to ndarray
            ``order`` by reference, scalars as 0-d arrays.
        """
        return {prefix + "order": self.order, prefix + "z": np.asarray(self.z),
                prefix + "kind": np.asarray(self.kind), prefix + "dither": np.asarray(self.dither)}

    @classmethod
    def from_state_dict(cls, d, prefix=""):
        """Rebuild a schedule from :meth:`state_dict` output, or None when absent.

        Parameters
        ----------
        d : mapping of str to ndarray
            Checkpoint arrays.
        prefix : str, default=""
            Key prefix used when saving.

        Returns
        -------
        ClashFreeSchedule or None
            The schedule (``order`` copied), or None if ``d`` holds none under ``prefix``.
        """
        if prefix + "order" not in d:
            return None
        return cls(np.array(d[prefix + "order"]), int(d[prefix + "z"]),
                   kind=int(d[prefix + "kind"]), dither=bool(d[prefix + "dither"]))
