"""Streams: named, keyed random generators from one seed, state to and from JSON; rank-sharded draws."""

import zlib

import numpy as np

__all__ = ["Streams", "ShardedGenerator"]


def _name_key(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class Streams:
    """Keyed random streams from one seed.

    ``get("shuffle", epoch)`` returns a fresh ``numpy.random.Generator`` (PCG64) seeded
    by ``SeedSequence(seed, spawn_key=(crc32("shuffle"), epoch))``: the same key gives
    the same numbers, whatever ran before, which makes resume exact without saving
    generator states. With ``legacy=True`` every call returns one shared
    ``numpy.random.RandomState(seed)`` consumed in call order, as the original SET code
    did with the global ``np.random`` (reference mode).

    Parameters
    ----------
    seed : int or None
        Root seed; None draws fresh OS entropy (recorded in ``seed`` afterwards).
    legacy : bool, default=False
        Use one shared MT19937 RandomState instead of keyed generators.
    """

    def __init__(self, seed=None, *, legacy=False):
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or None. Got {seed!r}.")
        self.seed = int(seed)
        self.legacy = bool(legacy)
        self._rs = np.random.RandomState(self.seed % 2**32) if legacy else None

    def get(self, name, *keys):
        """The generator for stream ``name`` under integer ``keys``.

        Parameters
        ----------
        name : str
            Stream name, e.g. ``"init"``, ``"shuffle"``, ``"evolve"``, ``"dropout"``.
        *keys : int
            Extra integer keys (epoch, layer, step).

        Returns
        -------
        numpy.random.Generator or numpy.random.RandomState
            A fresh keyed Generator, or the shared RandomState in legacy mode.
        """
        if self.legacy:
            return self._rs
        ss = np.random.SeedSequence(self.seed, spawn_key=(_name_key(name), *map(int, keys)))
        return np.random.Generator(np.random.PCG64(ss))

    def state_dict(self):
        """JSON-serialisable state (seed, mode and the legacy stream's position).

        Returns
        -------
        dict
            Keys ``seed``, ``legacy`` and, in legacy mode, ``mt19937`` (key list, pos,
            has_gauss, cached_gaussian).
        """
        d = {"seed": self.seed, "legacy": self.legacy}
        if self.legacy:
            _, key, pos, has_gauss, cached = self._rs.get_state(legacy=True)
            d["mt19937"] = [key.tolist(), int(pos), int(has_gauss), float(cached)]
        return d

    @classmethod
    def from_state_dict(cls, d):
        """Rebuild streams saved by :meth:`state_dict`.

        Parameters
        ----------
        d : dict
            Output of :meth:`state_dict`.

        Returns
        -------
        Streams
            Streams positioned exactly where the saved ones were.
        """
        s = cls(int(d["seed"]), legacy=bool(d["legacy"]))
        if s.legacy:
            key, pos, has_gauss, cached = d["mt19937"]
            s._rs.set_state(("MT19937", np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
        return s


class ShardedGenerator(np.random.Generator):
    """A generator's feature-major draws for a whole batch, of which this rank keeps its columns.

    Models draw feature-major blocks ``random((n_units, B))`` (dropout masks, Gibbs
    samples). On a rank holding columns ``lo:hi`` of a global batch of ``total`` samples,
    this generator draws the whole ``(n_units, total)`` block from the shared bit generator
    and returns columns ``lo:hi``: the numbers each sample sees, and the stream's position
    afterwards, are those of one process training on the whole batch. Only ``random`` is
    sharded; the other drawing methods raise.

    Parameters
    ----------
    rng : numpy.random.Generator
        The stream (its bit generator is shared: drawing here advances it).
    total : int
        Samples of the global batch.
    lo, hi : int
        This rank's columns.
    """

    def __init__(self, rng, total, lo, hi):
        super().__init__(rng.bit_generator)
        self.total, self.lo, self.hi = int(total), int(lo), int(hi)

    def random(self, size=None, dtype=np.float64, out=None):
        """Uniform [0, 1) numbers of shape ``(n_units, hi - lo)``: this rank's columns.

        Parameters
        ----------
        size : tuple of int, optional
            ``(n_units, hi - lo)`` (or given by ``out``).
        dtype : dtype, default=numpy.float64
            ``float64`` or ``float32``.
        out : ndarray, optional
            Destination of shape ``(n_units, hi - lo)``.

        Returns
        -------
        ndarray
            The draws (``out`` when given).
        """
        shape = out.shape if out is not None else size
        if shape is None or len(shape) != 2 or shape[1] != self.hi - self.lo:
            raise ValueError(f"a sharded draw must have shape (n_units, {self.hi - self.lo}). "
                             f"Got {shape}.")
        full = super().random((shape[0], self.total), dtype=dtype)
        if out is None:
            return np.ascontiguousarray(full[:, self.lo:self.hi])
        out[...] = full[:, self.lo:self.hi]
        return out

    def _unsharded(self, *args, **kwargs):
        raise NotImplementedError("only random() is sharded over ranks; a model that draws "
                                  "otherwise per sample cannot train data-parallel yet.")

    standard_normal = normal = uniform = integers = choice = permutation = shuffle = _unsharded
