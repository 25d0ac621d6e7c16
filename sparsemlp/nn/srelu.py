"""SReLU: the S-shaped rectified linear activation with four learnable parameters per unit."""

import numpy as np

from .._validation import check_param

__all__ = ["SReLU"]


class SReLU:
    """S-shaped ReLU (Jin et al. 2016), as in the Keras SET-MLP: three linear pieces per unit.

    For unit ``j`` with left threshold ``t_l``, left slope ``a_l``, right threshold
    ``t_r = t_l + |d|`` and right slope ``a_r``::

        f(z) = t_r + a_r (z - t_r)   if z >= t_r
               z                     if t_l < z < t_r
               t_l + a_l (z - t_l)   if z <= t_l

    The right threshold is kept as its distance ``d`` to the left one (Keras-contrib's
    parametrisation), so ``t_l <= t_r`` whatever training does.

    Parameters
    ----------
    n_units : int
        Units of the layer (one parameter set each).
    rng : numpy.random.Generator, optional
        Draws the initial ``a_l ~ U(0, 1)`` and ``d ~ U(0, 5)``; ``t_l = 0``, ``a_r = 1``
        (Keras-contrib's initialisers). Without it: ``a_l = 0.2``, ``d = 2.5``.
    dtype : dtype, default=float32
        dtype of the parameters.

    Attributes
    ----------
    params : ndarray of shape (4, n_units)
        Rows ``t_l``, ``a_l``, ``d``, ``a_r``: one C-contiguous array, so an optimizer
        updates it in place like any other parameter (through :attr:`flat`).

    Notes
    -----
    In a `SparseMLP` the parameters of every SReLU follow the layers' ``W.data, b`` in
    ``parameters()``; SET evolution never changes them (it removes connections, not units)
    and the optimizers do not weight-decay them (Keras-contrib's SReLU has no regulariser).

    References
    ----------
    Jin, Xu, Feng, Wei, Xiong, Yan, "Deep Learning with S-shaped Rectified Linear
    Activation Units", AAAI 2016.
    """

    name = "srelu"

    def __init__(self, n_units, *, rng=None, dtype=np.float32):
        n = check_param("n_units", n_units, "int", low=1, owner="SReLU")
        self.params = np.zeros((4, n), dtype=dtype)
        if rng is None:
            self.params[1], self.params[2] = 0.2, 2.5
        else:
            self.params[1] = rng.uniform(0.0, 1.0, n)
            self.params[2] = rng.uniform(0.0, 5.0, n)
        self.params[3] = 1.0

    @property
    def flat(self):
        """The parameters as one 1-D view (``t_l``, then ``a_l``, ``d``, ``a_r``).

        Returns
        -------
        ndarray of shape (4 * n_units,)
            A view of :attr:`params` (what the optimizer updates).
        """
        return self.params.reshape(-1)

    def _pieces(self, z):
        t_l, a_l, d, a_r = (p[:, None] for p in self.params)
        t_r = t_l + np.abs(d)
        return t_l, a_l, t_r, a_r, z >= t_r, z <= t_l

    def forward(self, z):
        """Activations of pre-activations ``z`` of shape (n_units, B).

        Parameters
        ----------
        z : ndarray of shape (n_units, B)
            Pre-activations.

        Returns
        -------
        ndarray of shape (n_units, B)
            ``f(z)`` (a new array).
        """
        t_l, a_l, t_r, a_r, right, left = self._pieces(z)
        out = np.array(z, copy=True)
        np.copyto(out, t_r + a_r * (z - t_r), where=right)
        np.copyto(out, t_l + a_l * (z - t_l), where=left & ~right)
        return out

    def backward(self, z, a, delta):
        """Multiply ``delta`` in place by ``df/dz`` (``a_r``, 1 or ``a_l`` per piece).

        Parameters
        ----------
        z : ndarray of shape (n_units, B)
            Pre-activations of the forward pass.
        a : ndarray
            Its activations (unused).
        delta : ndarray of shape (n_units, B)
            ``dL/df``, overwritten with ``dL/dz``.
        """
        t_l, a_l, t_r, a_r, right, left = self._pieces(z)
        delta *= np.where(right, a_r, np.where(left, a_l, z.dtype.type(1)))

    def param_grads(self, z, delta, out=None):
        """Batch sums of ``dL/dparams`` given ``dL/df`` (call before :meth:`backward`).

        Parameters
        ----------
        z : ndarray of shape (n_units, B)
            Pre-activations of the forward pass.
        delta : ndarray of shape (n_units, B)
            ``dL/df`` per sample (not yet multiplied by ``df/dz``).
        out : ndarray of shape (4, n_units), optional
            Overwritten with the gradient and returned.

        Returns
        -------
        ndarray of shape (4, n_units)
            Gradients of ``t_l``, ``a_l``, ``d``, ``a_r``: on the right piece
            ``df/dt_l = 1 - a_r``, ``df/dd = (1 - a_r) sign(d)``, ``df/da_r = z - t_r``; on
            the left piece ``df/dt_l = 1 - a_l``, ``df/da_l = z - t_l``; 0 in the middle.
        """
        t_l, a_l, t_r, a_r, right, left = self._pieces(z)
        left = left & ~right
        g = np.empty(self.params.shape, self.params.dtype) if out is None else out
        dr = np.where(right, delta, 0)
        dl = np.where(left, delta, 0)
        g[0] = (dr * (1 - a_r)).sum(axis=1) + (dl * (1 - a_l)).sum(axis=1)
        g[1] = (dl * (z - t_l)).sum(axis=1)
        g[2] = (dr * (1 - a_r)).sum(axis=1) * np.sign(self.params[2])
        g[3] = (dr * (z - t_r)).sum(axis=1)
        return g

    def state_dict(self, prefix=""):
        """The parameters under one key, for a checkpoint.

        Parameters
        ----------
        prefix : str, default=""
            Key prefix, e.g. ``"layers.0.srelu."``.

        Returns
        -------
        dict
            ``{prefix + "params": params}`` (by reference).
        """
        return {prefix + "params": self.params}

    def load_state_dict(self, d, prefix=""):
        """Restore the parameters saved by :meth:`state_dict`.

        Parameters
        ----------
        d : mapping
            Arrays by key.
        prefix : str, default=""
            The prefix used when saving.

        Raises
        ------
        ValueError
            If the saved array is missing or has another shape.
        """
        p = d.get(prefix + "params")
        if p is None or np.shape(p) != self.params.shape:
            raise ValueError(f"SReLU: {prefix}params must have shape {self.params.shape}. Got "
                             f"{None if p is None else np.shape(p)}; the checkpoint is of "
                             "another model.")
        self.params[...] = p

    def __repr__(self):
        return f"SReLU(n_units={self.params.shape[1]})"
