"""SparseRBM: a restricted Boltzmann machine on CSR weights, trained by CD-k with SET evolution."""

import logging
import time
import warnings

import numpy as np

from ._validation import check_param
from .evolution import evolve, evolve_original
from .layers import SparseLinear
from .topology import erdos_renyi

__all__ = ["SparseRBM"]

logger = logging.getLogger("sparsemlp")


def _sigmoid(z, out=None):
    """Logistic function, in place when ``out is z``."""
    out = np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


class SparseRBM:
    """A binary RBM whose visible-hidden weights are a canonical CSR array.

    Energy ``E(v, h) = -v @ W @ h - b_v @ v - b_h @ h``; ``p(h=1|v) = sigmoid(v @ W + b_h)``,
    ``p(v=1|h) = sigmoid(W @ h + b_v)``. Activations are feature-major inside
    (``vt`` of shape (n_visible, batch)), as in :class:`SparseMLP`, and the products use the
    same kernels (forward ``spmm`` for the hidden units, ``spmm_t`` for the visible units,
    ``sddmm`` for the per-connection CD statistics).

    Parameters
    ----------
    W : scipy.sparse.csr_array of shape (n_visible, n_hidden)
        Canonical CSR weights (float32 or float64).
    b_visible : ndarray of shape (n_visible,), optional
        Visible biases (zeros if omitted).
    b_hidden : ndarray of shape (n_hidden,), optional
        Hidden biases (zeros if omitted).
    kernels : KernelSet or str, default="auto"
        Kernel backend.

    Attributes
    ----------
    layer : SparseLinear
        The weights with ``layer.b`` the hidden biases.
    b_visible : ndarray
        Visible biases.

    References
    ----------
    Mocanu et al., Nature Communications 9:2383 (2018); Hinton, "Training products of
    experts by minimizing contrastive divergence", Neural Computation 14 (2002).
    """

    def __init__(self, W, b_visible=None, b_hidden=None, *, kernels="auto"):
        self.layer = SparseLinear(W, b_hidden, kernels=kernels)
        n_v = W.shape[0]
        self.b_visible = (np.zeros(n_v, W.dtype) if b_visible is None
                          else np.ascontiguousarray(b_visible, W.dtype))
        if self.b_visible.shape != (n_v,):
            raise ValueError(f"b_visible must have shape ({n_v},). Got {self.b_visible.shape}.")

    @classmethod
    def erdos_renyi(cls, n_visible, n_hidden, *, epsilon=10.0, law="draws", init="normal",
                    normal_std=0.05, rng, dtype=np.float64, kernels="auto"):
        """A SparseRBM with an Erdős–Rényi topology (the SET-RBM's initial state).

        Parameters
        ----------
        n_visible, n_hidden : int
            Layer sizes.
        epsilon : float, default=10.0
            Sparsity parameter (REFERENCE §3.1: 10).
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
        return cls(W, kernels=kernels)

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

    def __repr__(self):
        return (f"SparseRBM(n_visible={self.n_visible}, n_hidden={self.n_hidden}, "
                f"nnz={self.layer.nnz}, dtype={self.dtype})")

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
        """``sigmoid(W @ h + b_v)`` for feature-major ``ht`` of shape (n_hidden, B).

        Parameters
        ----------
        ht : ndarray of shape (n_hidden, B)
            C-contiguous hidden states.
        out : ndarray of shape (n_visible, B), optional
            Output buffer.

        Returns
        -------
        ndarray of shape (n_visible, B)
            Probabilities.
        """
        W = self.layer.W
        if out is None:
            out = np.empty((self.n_visible, ht.shape[1]), self.dtype)
        self.layer.kernels.spmm_t(W.indptr, W.indices, W.data, ht, out)
        out += self.b_visible[:, None]
        return _sigmoid(out, out=out)

    @staticmethod
    def sample(p, rng):
        """Binary states ``1 if p > u`` with ``u`` uniform, drawn sample-major as the original.

        Parameters
        ----------
        p : ndarray of shape (n_units, B)
            Feature-major probabilities.
        rng : numpy.random.Generator or RandomState
            Randomness; draws ``uniform(0, 1, (B, n_units))``.

        Returns
        -------
        ndarray of shape (n_units, B)
            0/1 in ``p.dtype``.
        """
        u = rng.uniform(0.0, 1.0, (p.shape[1], p.shape[0]))
        return (p > u.T).astype(p.dtype)

    def gibbs_pass(self, vt, rng, k=1):
        """One CD-k chain from data: ``(DH, MV, MH)`` as REFERENCE §3.2.

        Parameters
        ----------
        vt : ndarray of shape (n_visible, B)
            Data, feature-major.
        rng : numpy.random.Generator or RandomState
            Sampling randomness (``k + 1`` uniform draws of shape (B, n_hidden)).
        k : int, default=1
            Gibbs steps (the original's ``lengthMarkovChain = k + 1``).

        Returns
        -------
        dh : ndarray of shape (n_hidden, B)
            Sampled hidden states given the data.
        mv : ndarray of shape (n_visible, B)
            Mean-field visible probabilities of the last step.
        mh : ndarray of shape (n_hidden, B)
            Sampled hidden states given ``mv``.
        """
        dh = self.sample(self.hidden_probs(vt), rng)
        h = dh
        for _ in range(k):
            mv = self.visible_probs(h)
            mh = self.sample(self.hidden_probs(mv), rng)
            h = mh
        return dh, mv, mh

    def cd_update(self, vt, dh, mv, mh, *, lr, weight_decay, buf=None):
        """The original's CD update on existing connections and biases (REFERENCE §3.3).

        ``W[k] += lr*(S1[k]/B - S2[k]/B) - wd*W[k]`` with ``S1 = sddmm(DV, DH)``,
        ``S2 = sddmm(MV, MH)``; biases likewise with batch means. No momentum.

        Parameters
        ----------
        vt, dh, mv, mh : ndarray
            The data and the chain of :meth:`gibbs_pass`.
        lr : float
            Learning rate.
        weight_decay : float
            Per-step decay, not scaled by ``lr`` (the original's rule).
        buf : ndarray of shape (2, nnz), optional
            Scratch for the two statistics.
        """
        W = self.layer.W
        ks = self.layer.kernels
        nnz = self.layer.nnz
        if buf is None or buf.shape != (2, nnz) or buf.dtype != self.dtype:
            buf = np.empty((2, nnz), self.dtype)
        s1, s2 = buf[0], buf[1]
        ks.sddmm(W.indptr, W.indices, vt, dh, s1)
        ks.sddmm(W.indptr, W.indices, mv, mh, s2)
        B = vt.shape[1]
        s1 /= B
        s2 /= B
        s1 -= s2
        s1 *= lr
        s1 -= weight_decay * W.data
        W.data += s1
        for b, pos, neg in ((self.b_visible, vt, mv), (self.layer.b, dh, mh)):
            b += lr * (pos.mean(axis=1) - neg.mean(axis=1)) - weight_decay * b

    def reconstruction_error(self, X, rng, *, batch_size=None):
        """Mean squared error between data and one mean-field reconstruction.

        One Gibbs pass as in training (``DH`` sampled, ``MV`` mean field); a second uniform
        draw of shape (n, n_hidden) is consumed for ``MH``, as the original does.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_visible)
            Data (sample-major).
        rng : numpy.random.Generator or RandomState
            Randomness.
        batch_size : int, optional
            Ignored for now: the whole set is one pass (the original's order of draws).

        Returns
        -------
        float
            ``mean((X - MV)**2)``.
        """
        vt = np.ascontiguousarray(X.T, dtype=self.dtype)
        _, mv, _ = self.gibbs_pass(vt, rng, k=1)
        return float(np.mean((vt - mv) ** 2))

    # -- training --------------------------------------------------------------------------
    def fit(self, X, X_test=None, *, epochs=10, batch_size=10, lr=0.1, weight_decay=2e-7,
            zeta=0.3, k=1, topology="set", rng, legacy=None, callback=None):
        """Train with CD-k and SET evolution after every epoch (REFERENCE §3).

        Per epoch: shuffle, CD-k updates per batch (the batch error uses the ``MV`` computed
        before that batch's update), the test reconstruction error (one fresh Gibbs pass),
        then evolution (:func:`~sparsemlp.evolution.evolve_original` when ``legacy``, else
        :func:`~sparsemlp.evolution.evolve`); after the last epoch removal only.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_visible)
            Training data in [0, 1].
        X_test : ndarray, optional
            Test data.
        epochs : int, default=10
            Epochs.
        batch_size : int, default=10
            Mini-batch size.
        lr : float, default=0.1
            Learning rate.
        weight_decay : float, default=2e-7
            Per-step decay.
        zeta : float, default=0.3
            Fraction rewired per epoch.
        k : int, default=1
            Gibbs steps per update.
        topology : {"set", "static"}, default="set"
            ``"static"`` never rewires (the "FixProb" baseline).
        rng : numpy.random.Generator or RandomState
            Randomness; a RandomState replays the original's draw order.
        legacy : bool, optional
            Use the original's scalar regrowth loop (default: ``rng`` is a RandomState).
        callback : callable, optional
            ``callback(record)`` after each epoch.

        Returns
        -------
        list of dict
            Per epoch: ``epoch``, ``train_recon`` (the original's running accumulator, see
            REFERENCE §3.5), ``train_recon_epoch`` (this epoch's mean batch error),
            ``test_recon``, ``nnz``, ``seconds_train``, ``seconds_eval``,
            ``seconds_evolution``.
        """
        check_param("epochs", epochs, "int", low=1, owner="SparseRBM.fit")
        check_param("batch_size", batch_size, "int", low=1, owner="SparseRBM.fit")
        check_param("k", k, "int", low=1, owner="SparseRBM.fit")
        check_param("lr", lr, "float", low=0, low_open=True, owner="SparseRBM.fit")
        check_param("zeta", zeta, "float", low=0, high=1, high_open=True, owner="SparseRBM.fit")
        check_param("topology", topology, "str", options=("set", "static"), owner="SparseRBM.fit")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_visible:
            raise ValueError(f"X must have shape (n_samples, {self.n_visible}). Got {X.shape}.")
        if not np.all(np.isfinite(X)) or X.min() < 0 or X.max() > 1:
            raise ValueError("a binary RBM needs data in [0, 1] (probabilities or 0/1). "
                             "Rescale the data, e.g. normalize='minmax'.")
        if legacy is None:
            legacy = isinstance(rng, np.random.RandomState)
        step_evolve = evolve_original if legacy else evolve
        n = X.shape[0]
        n_batches = n // batch_size
        acc = 0.0
        history = []
        buf = None
        for e in range(epochs):
            t0 = time.perf_counter()
            order = np.arange(n)
            rng.shuffle(order)
            errs = []
            for j in range(n_batches):
                idx = order[j * batch_size:(j + 1) * batch_size]
                vt = np.ascontiguousarray(X[idx].T, dtype=self.dtype)
                dh, mv, mh = self.gibbs_pass(vt, rng, k=k)
                errs.append(float(np.mean((vt - mv) ** 2)))
                if buf is None or buf.shape[1] != self.layer.nnz:
                    buf = np.empty((2, self.layer.nnz), self.dtype)
                self.cd_update(vt, dh, mv, mh, lr=lr, weight_decay=weight_decay, buf=buf)
            for err in errs:  # the original's never-reset accumulator, summed in its order
                acc += err
            acc /= max(1, n_batches)
            t1 = time.perf_counter()
            test = self.reconstruction_error(X_test, rng) if X_test is not None else None
            t2 = time.perf_counter()
            if topology == "set":
                step_evolve(self.layer, zeta=zeta, rng=rng, normal_std=0.05,
                            regrow=e < epochs - 1)
            t3 = time.perf_counter()
            rec = {"epoch": e + 1, "train_recon": acc,
                   "train_recon_epoch": float(np.mean(errs)) if errs else float("nan"),
                   "test_recon": test, "nnz": self.layer.nnz, "seconds_train": t1 - t0,
                   "seconds_eval": t2 - t1, "seconds_evolution": t3 - t2}
            history.append(rec)
            if callback is not None:
                callback(rec)
        return history
