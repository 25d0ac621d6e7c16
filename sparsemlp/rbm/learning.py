"""CD-k and persistent CD gradient steps of SparseRBM and its whole-set reconstruction error."""

import numpy as np

from ..nn.batching import batch_t
from ..nn.optim import SGD

# Samples per chunk of a whole-set pass: one (n_hidden, chunk) array holds at most this
# many values (32 MiB in float64), so evaluating 480 samples at 1,000,000 hidden units
# never materialises the 3.8 GB (480, 1e6) matrix of the original.
_EVAL_ELEMENTS = 1 << 22


class CDLearning:
    """Gradient half of :class:`SparseRBM` (a mixin; the model half defines the conditionals).

    One CD-k or PCD-k step at a time (:meth:`step`); the epoch loop, SET evolution and the
    run's bookkeeping are :class:`sparsemlp.training.rbm.RBMTrainer`'s.
    """

    def release_buffers(self):
        """Free the per-connection work arrays until the next step.

        The transposed index of the weights (8 bytes per connection in int32) and the
        scratch array of :meth:`cd_gradient` (one value per connection); both are rebuilt on
        first use. Call it before a topology change, whose temporaries then peak without
        them.
        """
        self.layer.release_index()
        self._scratch = None

    def cd_gradient(self, vt, dh, nv, nh, grads, *, reference=False):
        """Negative log-likelihood gradient estimate ``<v h>_model - <v h>_data`` per parameter.

        Writes into ``grads`` (views aligned with :meth:`parameters`) and returns the divisor
        to pass to ``optimizer.step``. The per-connection statistics are the ``sddmm`` kernel
        on W's pattern, never a dense ``n_visible x n_hidden`` product.

        Parameters
        ----------
        vt, dh : ndarray
            Positive phase: data (n_visible, B) and hidden states (n_hidden, B).
        nv, nh : ndarray
            Negative phase: visible (n_visible, B') and hidden (n_hidden, B') statistics.
        grads : list of ndarray
            ``[g_W (nnz,), g_b_hidden, g_b_visible]``, overwritten.
        reference : bool, default=False
            The original SET-RBM code's arithmetic (Mocanu et al. 2018): each statistic
            divided by the batch size, then subtracted; divisor 1. Otherwise the sums are
            subtracted and the optimizer divides once (also when the two phases have
            different sizes, PCD).

        Returns
        -------
        float
            Batch divisor of the sums in ``grads``.
        """
        W = self.layer.W
        ks = self.layer.kernels
        g_w, g_bh, g_bv = grads
        B, Bn = vt.shape[1], nv.shape[1]
        if self._scratch is None or self._scratch.shape != g_w.shape:
            self._scratch = np.empty_like(g_w)
        s1 = self._scratch
        ks.sddmm(W.indptr, W.indices, vt, dh, s1)
        ks.sddmm(W.indptr, W.indices, nv, nh, g_w)
        if reference or Bn != B:
            s1 /= B
            g_w /= Bn
            g_w -= s1  # = -(S1/B - S2/B): the optimizer's -lr*g is the original's +lr*(...)
            g_bh[...] = nh.mean(axis=1) - dh.mean(axis=1)
            g_bv[...] = nv.mean(axis=1) - vt.mean(axis=1)
            return 1.0
        g_w -= s1
        # einsum's row sums: 4 ms at (1e6, 10) against 22 ms for sum(axis=1)
        np.subtract(np.einsum("ij->i", nh), np.einsum("ij->i", dh), out=g_bh)
        np.subtract(np.einsum("ij->i", nv), np.einsum("ij->i", vt), out=g_bv)
        return float(B)

    def cd_update(self, vt, dh, mv, mh, *, lr, weight_decay):
        """The original SET-RBM update on existing connections and biases (Hinton 2002's CD).

        ``W[k] += lr*(S1[k]/B - S2[k]/B) - wd*W[k]`` with ``S1 = sddmm(DV, DH)``,
        ``S2 = sddmm(MV, MH)``; biases likewise with batch means. No momentum. The same
        arithmetic as one momentum-free step of :meth:`step` with ``reference=True``: the
        statistics are :meth:`cd_gradient`, the update one step of a momentum-free
        :class:`~sparsemlp.nn.SGD` with the original decay rule.

        Parameters
        ----------
        vt, dh, mv, mh : ndarray
            The data and the chain of :meth:`gibbs_pass`.
        lr : float
            Learning rate.
        weight_decay : float
            Per-step decay, not scaled by ``lr`` (the original's rule).
        """
        _, grads = self.make_grads()
        div = self.cd_gradient(vt, dh, mv, mh, grads, reference=True)
        SGD(self.parameters(), lr=lr, momentum=0.0, weight_decay=weight_decay, decay="original",
            kernels=self.kernels).step(grads, div)

    def step(self, vt, rng, optimizer, grads, *, k=1, lr=None, chains=None, reference=False):
        """One CD-k (or persistent CD-k) update from a batch; returns its reconstruction error.

        CD-k (Hinton 2002, as the SET-RBM code runs it): ``DH`` sampled from the data, ``k``
        steps of mean-field visible ``MV`` and sampled hidden ``MH``; statistics ``<DV DH>``
        and ``<MV MH>``. PCD-k (Tieleman 2008; ``chains`` given): the negative phase
        continues the persistent chains instead, ``k`` full Gibbs steps with sampled visible
        states, statistics ``<V p(h|V)>``; the chains are updated in place. The reconstruction error is
        ``mean((DV - MV)^2)`` with ``MV = E[v | DH]`` computed before the update, in both.

        Parameters
        ----------
        vt : ndarray of shape (n_visible, B)
            C-contiguous data batch in the model dtype.
        rng : numpy.random.Generator or RandomState
            Sampling randomness.
        optimizer : SGD or Adam
            Optimizer over :meth:`parameters`.
        grads : list of ndarray
            Gradient views from :meth:`make_grads`.
        k : int, default=1
            Gibbs steps.
        lr : float, optional
            Learning rate of this step (default: the optimizer's).
        chains : ndarray of shape (n_visible, n_chains), optional
            Persistent chains (PCD); None for CD.
        reference : bool, default=False
            The original's arithmetic order (see :meth:`cd_gradient`).

        Returns
        -------
        float
            Batch reconstruction error.
        """
        if chains is None:
            dh, mv, mh = self._chain(vt, rng, k, work=True)
            nv, nh, recon = mv, mh, mv
        else:
            hs = (self.n_hidden, vt.shape[1])
            dh = self.sample(self.hidden_probs(vt, out=self._buffer("ph", hs)), rng,
                             out=self._buffer("dh", hs))
            recon = self.visible_probs(dh, out=self._buffer("mv", (self.n_visible, vt.shape[1])))
            v = chains
            for _ in range(k):
                v = self.sample_visible(self.visible_probs(self.sample(self.hidden_probs(v), rng)),
                                        rng)
            chains[...] = v
            nv, nh = chains, self.hidden_probs(chains)
        err = float(np.mean((vt - recon) ** 2))
        div = self.cd_gradient(vt, dh, nv, nh, grads, reference=reference)
        optimizer.step(grads, div, lr=lr)
        return err

    def init_chains(self, X, n_chains, rng):
        """Persistent chains started from ``n_chains`` training samples (sampled once).

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix of shape (n_samples, n_visible)
            Training data.
        n_chains : int
            Number of chains (the batch size, usually).
        rng : numpy.random.Generator or RandomState
            Randomness for the choice of samples and the first sampling.

        Returns
        -------
        ndarray of shape (n_visible, n_chains)
            Chain states in the model dtype.
        """
        idx = rng.choice(X.shape[0], n_chains, replace=X.shape[0] < n_chains)
        vt = batch_t(X, idx, self.dtype)
        return self.sample(vt, rng) if self.visible == "binary" else vt

    def reconstruction_error(self, X, rng, *, chunk=None, original_draws=None):
        """Mean squared error between data and one mean-field reconstruction.

        One Gibbs pass as in training (``DH`` sampled, ``MV`` its mean), in chunks of
        samples so that no ``(n_samples, n_hidden)`` array is formed.

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix of shape (n_samples, n_visible)
            Data (sample-major; densified one chunk at a time).
        rng : numpy.random.Generator or RandomState
            Randomness.
        chunk : int, optional
            Samples per chunk (default: one ``(n_hidden, chunk)`` array holds at most 4 Mi
            values).
        original_draws : bool, optional
            Also draw the original's second uniform block of shape (n_samples, n_hidden)
            (its ``MH``, unused here), so a shared RandomState stays in the original's
            order. Default: when ``rng`` is a RandomState. Sample-major draws chunked by
            samples are the same numbers as one block.

        Returns
        -------
        float
            ``mean((X - MV)**2)``.
        """
        n, H = X.shape[0], self.n_hidden
        if original_draws is None:
            original_draws = isinstance(rng, np.random.RandomState)
        if chunk is None:
            chunk = max(1, min(n, _EVAL_ELEMENTS // max(1, H)))
        total = 0.0
        for s in range(0, n, chunk):
            vt = batch_t(X, slice(s, s + chunk), self.dtype)
            d2 = (vt - self.visible_probs(self.sample(self.hidden_probs(vt), rng))) ** 2
            if n <= chunk:  # one block: the original's np.mean, bit for bit
                total = float(np.mean(d2)) * (n * self.n_visible)
            else:
                total += float(d2.sum())
        if original_draws:
            for s in range(0, n, chunk):
                rng.uniform(0.0, 1.0, (min(chunk, n - s), H))
        return float(np.mean(d2)) if n <= chunk else total / (n * self.n_visible)
