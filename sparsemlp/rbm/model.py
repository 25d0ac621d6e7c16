"""SparseRBM's model: CSR weights, biases, conditionals, sampling and data checks."""

import logging
import warnings

import numpy as np
import scipy.sparse as sp

from .._validation import check_param
from ..nn.layers import SparseLinear
from ..nn.optim import flat_views
from ..topology import erdos_renyi
from .learning import CDLearning

__all__ = ["SparseRBM", "VISIBLE_UNITS"]

logger = logging.getLogger("sparsemlp")

VISIBLE_UNITS = ("binary", "gaussian")


def _sigmoid(z, out=None):
    """Logistic function, in place when ``out is z`` (exp overflow gives the exact 0)."""
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


class SparseRBM(CDLearning):
    """A restricted Boltzmann machine whose visible-hidden weights are a canonical CSR array.

    Binary hidden units; binary (Bernoulli) or unit-variance Gaussian visible units.
    Binary: ``E(v, h) = -v W h - b_v.v - b_h.h``, ``p(v_i=1|h) = sigmoid((W h)_i + b_v[i])``.
    Gaussian: ``E(v, h) = |v - b_v|^2 / 2 - v W h - b_h.h``, ``p(v|h) = N(W h + b_v, I)``
    (standardise the data first). In both ``p(h_j=1|v) = sigmoid((v W)_j + b_h[j])``.
    Activations are feature-major inside (``vt`` of shape (n_visible, batch)), as in
    :class:`SparseMLP`, and every product is a shared kernel: ``spmm`` for the hidden units,
    ``spmm_t`` for the visible units, ``sddmm`` for the per-connection CD statistics, and
    the optimizer's ``sgd_update`` / ``adam_update`` for the update of ``W.data``. The model
    holds the pieces of one step (conditionals, sampling, Gibbs chains, CD gradients,
    :meth:`step`); :class:`~sparsemlp.training.rbm.RBMTrainer` runs the epochs and the SET
    evolution of ``layer`` between them.

    Parameters
    ----------
    W : scipy.sparse.csr_array of shape (n_visible, n_hidden)
        Canonical CSR weights (float32 or float64).
    b_visible : ndarray of shape (n_visible,), optional
        Visible biases (zeros if omitted).
    b_hidden : ndarray of shape (n_hidden,), optional
        Hidden biases (zeros if omitted).
    visible : {"binary", "gaussian"}, default="binary"
        Visible unit type.
    kernels : KernelSet or str, default="auto"
        Kernel backend.

    Attributes
    ----------
    layer : SparseLinear
        The weights with ``layer.b`` the hidden biases.
    b_visible : ndarray
        Visible biases.
    visible : str
        Visible unit type.

    See Also
    --------
    sparsemlp.rbm.metrics : Exact log-partition, AIS, free energy, pseudo-log-likelihood.
    sparsemlp.training.rbm.RBMTrainer : Epochs of CD-k / PCD-k steps with SET evolution.
    sparsemlp.evolution.apply : One SET step on ``rbm.layer`` with the optimizer remapped.

    Notes
    -----
    Memory per connection (float32, int32): value and column index (8 B), transposed index
    (8 B), optimizer velocity (4 B) and gradient (4 B); activations are O((n_visible +
    n_hidden) * batch).

    References
    ----------
    Mocanu et al., Nature Communications 9:2383 (2018); Hinton, "Training products of
    experts by minimizing contrastive divergence", Neural Computation 14 (2002); Tieleman,
    "Training restricted Boltzmann machines using approximations to the likelihood
    gradient", ICML 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp import SGD, SparseRBM
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.random((100, 20)) > 0.5).astype(float)
    >>> rbm = SparseRBM.erdos_renyi(20, 8, epsilon=3, rng=rng)
    >>> opt = SGD(rbm.parameters(), lr=0.1, momentum=0.5, kernels=rbm.kernels)
    >>> _, grads = rbm.make_grads()
    >>> err = rbm.step(np.ascontiguousarray(X[:10].T), rng, opt, grads, k=1)
    >>> rbm.W.shape, 0 < err < 1
    ((20, 8), True)
    """

    def __init__(self, W, b_visible=None, b_hidden=None, *, visible="binary", kernels="auto"):
        self.visible = check_param("visible", visible, "str", options=VISIBLE_UNITS,
                                   owner="SparseRBM")
        self.layer = SparseLinear(W, b_hidden, kernels=kernels)
        n_v = W.shape[0]
        self.b_visible = (np.zeros(n_v, W.dtype) if b_visible is None
                          else np.array(b_visible, W.dtype, copy=True))
        if self.b_visible.shape != (n_v,):
            raise ValueError(f"b_visible must have shape ({n_v},). Got {self.b_visible.shape}.")
        self._scratch = None
        self._work = {}

    @classmethod
    def erdos_renyi(cls, n_visible, n_hidden, *, epsilon=10.0, law="draws", init="normal",
                    normal_std=0.05, rng, dtype=np.float64, visible="binary", kernels="auto"):
        """A SparseRBM with an Erdős–Rényi topology (the SET-RBM's initial state).

        Parameters
        ----------
        n_visible, n_hidden : int
            Layer sizes.
        epsilon : float, default=10.0
            Sparsity parameter (10 in the SET-RBM of Mocanu et al. 2018).
        law : {"draws", "bernoulli"}, default="draws"
            Topology law (the original draws with replacement).
        init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
            Weight law; the original is ``randn() / 20``.
        normal_std : float, default=0.05
            Standard deviation of ``init="normal"``.
        rng : numpy.random.Generator or RandomState
            Randomness (a RandomState reproduces the original draw order).
        dtype : {numpy.float64, numpy.float32}, default=numpy.float64
            Value dtype.
        visible : {"binary", "gaussian"}, default="binary"
            Visible unit type.
        kernels : KernelSet or str, default="auto"
            Kernel backend.

        Returns
        -------
        SparseRBM
            Biases zero.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            W = erdos_renyi(n_visible, n_hidden, epsilon=epsilon, law=law, init=init, rng=rng,
                            dtype=dtype, normal_std=normal_std, saturate=True)
        for w in caught:  # a saturated (fully dense) small layer is legitimate: say so quietly
            logger.info("SparseRBM: %s", w.message)
        return cls(W, visible=visible, kernels=kernels)

    # -- introspection ---------------------------------------------------------------------
    @property
    def W(self):
        """The CSR weights (n_visible, n_hidden)."""
        return self.layer.W

    @property
    def b_hidden(self):
        """Hidden biases."""
        return self.layer.b

    @property
    def n_visible(self):
        """Number of visible units."""
        return self.layer.n_in

    @property
    def n_hidden(self):
        """Number of hidden units."""
        return self.layer.n_out

    @property
    def dtype(self):
        """Floating dtype."""
        return self.layer.dtype

    @property
    def kernels(self):
        """The KernelSet."""
        return self.layer.kernels

    @property
    def layers(self):
        """The sparse layers, as ``SparseMLP.layers`` (for degree files, info and plots).

        Returns
        -------
        list of SparseLinear
            ``[self.layer]``.
        """
        return [self.layer]

    def sparse_layers(self):
        """The sparse layers that evolution, checkpoints and export walk.

        Returns
        -------
        list of SparseLinear
            ``[self.layer]``.
        """
        return [self.layer]

    def parameters(self):
        """``[W.data, b_hidden, b_visible]`` by reference (the optimizer's order).

        Returns
        -------
        list of ndarray
            Parameter arrays, updated in place.
        """
        return [self.layer.W.data, self.layer.b, self.b_visible]

    def make_grads(self):
        """One flat gradient buffer with a view per parameter.

        Returns
        -------
        flat : ndarray
            Buffer of length ``nnz + n_hidden + n_visible``.
        views : list of ndarray
            Views aligned with :meth:`parameters`.
        """
        return flat_views(self.parameters(), self.dtype)

    def __repr__(self):
        return (f"SparseRBM(n_visible={self.n_visible}, n_hidden={self.n_hidden}, "
                f"nnz={self.layer.nnz}, visible={self.visible!r}, dtype={self.dtype})")

    # -- conditionals (feature-major) ------------------------------------------------------
    def hidden_probs(self, vt, out=None):
        """``sigmoid(v @ W + b_h)`` for feature-major ``vt`` of shape (n_visible, B).

        Parameters
        ----------
        vt : ndarray of shape (n_visible, B)
            C-contiguous visible states or probabilities.
        out : ndarray of shape (n_hidden, B), optional
            Output buffer.

        Returns
        -------
        ndarray of shape (n_hidden, B)
            Probabilities.
        """
        if out is None:
            out = np.empty((self.n_hidden, vt.shape[1]), self.dtype)
        self.layer.forward(vt, out)
        return _sigmoid(out, out=out)

    def visible_probs(self, ht, out=None):
        """Mean of ``p(v|h)``: ``sigmoid(W @ h + b_v)``, or ``W @ h + b_v`` for Gaussian units.

        Parameters
        ----------
        ht : ndarray of shape (n_hidden, B)
            C-contiguous hidden states.
        out : ndarray of shape (n_visible, B), optional
            Output buffer.

        Returns
        -------
        ndarray of shape (n_visible, B)
            Probabilities (binary) or means (Gaussian).
        """
        W = self.layer.W
        if out is None:
            out = np.empty((self.n_visible, ht.shape[1]), self.dtype)
        self.layer.kernels.spmm_t(W.indptr, W.indices, W.data, ht, out)
        out += self.b_visible[:, None]
        return out if self.visible == "gaussian" else _sigmoid(out, out=out)

    @staticmethod
    def sample(p, rng, out=None):
        """Binary states ``1 if p > u`` with ``u ~ U(0, 1)``.

        A RandomState draws ``uniform(0, 1, (B, n_units))`` sample-major, as the original
        does (reference mode). A Generator draws ``random((n_units, B))`` in the layout of
        ``p``, in the dtype of ``p`` (float32 draws for a float32 model), into ``out``.

        Parameters
        ----------
        p : ndarray of shape (n_units, B)
            Feature-major probabilities.
        rng : numpy.random.Generator or RandomState
            Randomness.
        out : ndarray of shape (n_units, B), optional
            Output buffer of ``p.dtype`` (may not be ``p``).

        Returns
        -------
        ndarray of shape (n_units, B)
            0/1 in ``p.dtype``.
        """
        if isinstance(rng, np.random.RandomState):
            u = rng.uniform(0.0, 1.0, (p.shape[1], p.shape[0]))
            return (p > u.T).astype(p.dtype) if out is None else np.greater(p, u.T, out=out)
        u = np.empty(p.shape, p.dtype) if out is None else out
        rng.random(dtype=p.dtype.type, out=u)
        return np.greater(p, u, out=u)

    def sample_visible(self, mean, rng):
        """Visible states given the mean of ``p(v|h)``: Bernoulli, or ``mean + N(0, 1)``.

        Parameters
        ----------
        mean : ndarray of shape (n_visible, B)
            Output of :meth:`visible_probs`.
        rng : numpy.random.Generator or RandomState
            Randomness.

        Returns
        -------
        ndarray of shape (n_visible, B)
            Samples in the model dtype (a new array).
        """
        if self.visible == "binary":
            return self.sample(mean, rng)
        return (mean + rng.standard_normal(mean.shape).astype(mean.dtype, copy=False))

    def _buffer(self, name, shape):
        """A reusable work array: fresh pages of a 40 MB (1e6 x 10) array cost ~60 ms to touch."""
        b = self._work.get(name)
        if b is None or b.shape != shape:
            self._work[name] = b = np.empty(shape, self.dtype)
        return b

    def _chain(self, vt, rng, k, work):
        B = vt.shape[1]
        hs, vs = (self.n_hidden, B), (self.n_visible, B)

        def buf(name, shape):
            return self._buffer(name, shape) if work else None

        ph = self.hidden_probs(vt, out=buf("ph", hs))
        dh = self.sample(ph, rng, out=buf("dh", hs))
        h = dh
        for _ in range(k):
            mv = self.visible_probs(h, out=buf("mv", vs))
            mh = self.sample(self.hidden_probs(mv, out=ph), rng, out=buf("mh", hs))
            h = mh
        return dh, mv, mh

    def gibbs_pass(self, vt, rng, k=1):
        """One CD-k chain from data: ``(DH, MV, MH)`` as the original SET-RBM code runs it.

        Parameters
        ----------
        vt : ndarray of shape (n_visible, B)
            Data, feature-major.
        rng : numpy.random.Generator or RandomState
            Sampling randomness (``k + 1`` uniform draws, see :meth:`sample`).
        k : int, default=1
            Gibbs steps (the original's ``lengthMarkovChain = k + 1``).

        Returns
        -------
        dh : ndarray of shape (n_hidden, B)
            Sampled hidden states given the data.
        mv : ndarray of shape (n_visible, B)
            Mean-field visible probabilities (means) of the last step.
        mh : ndarray of shape (n_hidden, B)
            Sampled hidden states given ``mv``.
        """
        return self._chain(vt, rng, k, work=False)

    def check_data(self, X, name="X", *, check_range=True, accept_sparse=False):
        """Validate data for this model (shape, finite, [0, 1] for binary visible units).

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_visible)
            Data.
        name : str, default="X"
            Name in messages.
        check_range : bool, default=True
            Refuse values outside [0, 1] for binary visible units (False accepts them as
            scikit-learn's ``BernoulliRBM`` does).
        accept_sparse : bool, default=False
            Accept a SciPy sparse matrix (returned as CSR; its stored values are checked).

        Returns
        -------
        ndarray or scipy.sparse.csr_array
            ``X`` as an array (CSR for sparse input).

        Raises
        ------
        ValueError
            If the shape is wrong, a value is not finite, or binary units get values
            outside [0, 1] (with ``check_range``).
        """
        if accept_sparse and sp.issparse(X):
            X = sp.csr_array(X)
            values = X.data
        else:
            X = values = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_visible:
            raise ValueError(f"{name} must have shape (n_samples, {self.n_visible}) for this "
                             f"SparseRBM. Got {X.shape}. Pass {self.n_visible} columns.")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} holds NaN or infinite values. Clean the data first.")
        if (check_range and self.visible == "binary" and values.size
                and (values.min() < 0 or values.max() > 1)):
            raise ValueError(
                f"a binary RBM needs data in [0, 1] (probabilities or 0/1); {name} has values "
                f"in [{values.min():.4g}, {values.max():.4g}]. Rescale the data "
                "(normalize='minmax') or use visible='gaussian' for real-valued data.")
        return X
