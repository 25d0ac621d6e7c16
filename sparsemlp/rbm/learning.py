"""CD-k and persistent CD updates, whole-set reconstruction error, SET steps and the fit loop."""

import time

import numpy as np

from .._validation import check_param
from ..evolution.set import evolve, evolve_original, regrow
from ..nn.mlp import batch_t
from ..nn.optim import SGD

# Samples per chunk of a whole-set pass: one (n_hidden, chunk) array holds at most this
# many values (32 MiB in float64), so evaluating 480 samples at 1,000,000 hidden units
# never materialises the 3.8 GB (480, 1e6) matrix of the original.
_EVAL_ELEMENTS = 1 << 22


class CDLearning:
    """Training half of :class:`SparseRBM` (a mixin; the model half defines the conditionals)."""

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
            The original's arithmetic (REFERENCE §3.3): each statistic divided by the batch
            size, then subtracted; divisor 1. Otherwise the sums are subtracted and the
            optimizer divides once (also when the two phases have different sizes, PCD).

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
        """The original's CD update on existing connections and biases (REFERENCE §3.3).

        ``W[k] += lr*(S1[k]/B - S2[k]/B) - wd*W[k]`` with ``S1 = sddmm(DV, DH)``,
        ``S2 = sddmm(MV, MH)``; biases likewise with batch means. No momentum. The same
        arithmetic as one momentum-free step of :meth:`step` with ``reference=True``: the
        statistics are :meth:`cd_gradient`, the update is the backend's ``sgd_update``.

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
        upd = self.layer.kernels.sgd_update
        for p, g in zip(self.parameters(), grads):
            upd(p, np.zeros_like(p), g, lr, 0.0, weight_decay, div, 0, 0)

    def step(self, vt, rng, optimizer, grads, *, k=1, lr=None, chains=None, reference=False):
        """One CD-k (or persistent CD-k) update from a batch; returns its reconstruction error.

        CD-k (REFERENCE §3.2): ``DH`` sampled from the data, ``k`` steps of mean-field
        visible ``MV`` and sampled hidden ``MH``; statistics ``<DV DH>`` and ``<MV MH>``.
        PCD-k (``chains`` given): the negative phase continues the persistent chains
        instead, ``k`` full Gibbs steps with sampled visible states, statistics
        ``<V p(h|V)>``; the chains are updated in place. The reconstruction error is
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

    def evolve(self, *, zeta, rng, regrow=True, original=False, optimizer=None, init="normal",
               normal_std=0.05):
        """One SET step on the weights; remaps the optimizer state when given.

        Parameters
        ----------
        zeta : float
            Fraction removed per sign, in [0, 1).
        rng : numpy.random.Generator or RandomState
            Regrowth randomness.
        regrow : bool, default=True
            False removes only (the SET-RBM after its last epoch); nnz then shrinks.
        original : bool, default=False
            The original's scalar regrowth loop (:func:`~sparsemlp.evolution.evolve_original`,
            REFERENCE §3.4) instead of :func:`~sparsemlp.evolution.evolve`.
        optimizer : SGD or Adam, optional
            Its state of ``W.data`` (parameter 0) follows the kept connections; new ones start
            at zero.
        init : str, default="normal"
            Law of the regrown values.
        normal_std : float, default=0.05
            Standard deviation of the normal law (``randn() / 20``).

        Returns
        -------
        EvolutionResult
            ``keep_index``, ``new_positions``, ``n_removed``, ``n_regrown``.
        """
        self.layer.release_index()  # 8 B/connection, rebuilt lazily at the next product
        self._scratch = None
        fn = evolve_original if original else evolve
        res = fn(self.layer, zeta=zeta, rng=rng, init=init, normal_std=normal_std, regrow=regrow)
        if optimizer is not None:
            optimizer.remap(0, res.keep_index, res.new_positions, new_param=self.layer.W.data)
        return res

    def regrow(self, n, *, rng, original=False, optimizer=None, init="normal", normal_std=0.05):
        """Regrow ``n`` connections: completes a removal-only :meth:`evolve` (the last epoch's).

        Parameters
        ----------
        n : int
            Connections to add (the ``n_removed`` of the removal-only step).
        rng : numpy.random.Generator or RandomState
            Regrowth randomness (the generator that step would have used).
        original : bool, default=False
            The original's scalar regrowth loop.
        optimizer : SGD or Adam, optional
            Its state of ``W.data`` follows; new connections start at zero.
        init : str, default="normal"
            Law of the regrown values.
        normal_std : float, default=0.05
            Standard deviation of the normal law.

        Returns
        -------
        EvolutionResult
            ``new_positions`` and ``n_regrown``.
        """
        self.layer.release_index()
        self._scratch = None
        res = regrow(self.layer, n, rng=rng, init=init, normal_std=normal_std, original=original)
        if optimizer is not None:
            optimizer.remap(0, res.keep_index, res.new_positions, new_param=self.layer.W.data)
        return res

    def fit(self, X, X_test=None, *, epochs=10, batch_size=10, lr=0.1, momentum=0.0,
            weight_decay=2e-7, decay="original", zeta=0.3, k=1, persistent=False,
            topology="set", rng, legacy=None, callback=None, check_range=True):
        """Train with CD-k (or PCD-k) and SET evolution after every epoch (REFERENCE §3).

        Per epoch: shuffle, one update per batch of ``batch_size`` (the last partial batch
        is dropped, as the original), the test reconstruction error (one fresh Gibbs pass),
        then evolution; after the last epoch removal only. With the defaults and the
        original's RandomState this is the original SET-RBM bit for bit in its draws.

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix of shape (n_samples, n_visible)
            Training data (in [0, 1] for binary visible units); sparse data is densified
            one batch at a time.
        X_test : ndarray or scipy.sparse matrix, optional
            Test data.
        epochs : int, default=10
            Epochs.
        batch_size : int, default=10
            Mini-batch size.
        lr : float, default=0.1
            Learning rate.
        momentum : float, default=0.0
            SGD momentum (the original has none).
        weight_decay : float, default=2e-7
            Weight decay.
        decay : {"original", "coupled"}, default="original"
            ``"original"``: ``w += v - wd*w`` per step, not scaled by ``lr``, biases too;
            ``"coupled"``: L2 in the gradient (see :class:`~sparsemlp.optim.SGD`).
        zeta : float, default=0.3
            Fraction rewired per epoch.
        k : int, default=1
            Gibbs steps per update.
        persistent : bool, default=False
            Persistent CD (Tieleman 2008) with ``batch_size`` chains.
        topology : {"set", "static"}, default="set"
            ``"static"`` never rewires (the "FixProb" baseline).
        rng : numpy.random.Generator or RandomState
            Randomness; a RandomState replays the original's draw order.
        legacy : bool, optional
            The original's arithmetic order and scalar regrowth loop (default: ``rng`` is a
            RandomState).
        callback : callable, optional
            ``callback(record)`` after each epoch.
        check_range : bool, default=True
            Refuse data outside [0, 1] for binary visible units (see :meth:`check_data`).

        Returns
        -------
        list of dict
            Per epoch: ``epoch``, ``train_recon`` (this epoch's mean batch error),
            ``train_recon_original`` (the original's never-reset accumulator, REFERENCE §3.5:
            the published train column), ``test_recon``, ``nnz``, ``seconds_train``,
            ``seconds_eval``, ``seconds_evolution``.
        """
        own = "SparseRBM.fit"
        check_param("epochs", epochs, "int", low=1, owner=own)
        check_param("batch_size", batch_size, "int", low=1, owner=own)
        check_param("k", k, "int", low=1, owner=own)
        check_param("lr", lr, "float", low=0, low_open=True, owner=own)
        check_param("zeta", zeta, "float", low=0, high=1, high_open=True, owner=own)
        check_param("topology", topology, "str", options=("set", "static"), owner=own)
        check_param("persistent", persistent, "bool", owner=own)
        X = self.check_data(X, check_range=check_range, accept_sparse=True)
        if X_test is not None:
            X_test = self.check_data(X_test, "X_test", check_range=check_range,
                                     accept_sparse=True)
        if legacy is None:
            legacy = isinstance(rng, np.random.RandomState)
        opt = SGD(self.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                  decay=decay, kernels=self.kernels)
        n = X.shape[0]
        n_batches = n // batch_size
        chains = self.init_chains(X, batch_size, rng) if persistent else None
        acc, history, grads = 0.0, [], None
        for e in range(epochs):
            t0 = time.perf_counter()
            order = np.arange(n)
            rng.shuffle(order)
            if grads is None or grads[0].shape[0] != self.layer.nnz:
                grads = self.make_grads()[1]
            errs = []
            for j in range(n_batches):
                vt = batch_t(X, order[j * batch_size:(j + 1) * batch_size], self.dtype)
                errs.append(self.step(vt, rng, opt, grads, k=k, chains=chains,
                                      reference=legacy))
            for err in errs:  # the original's never-reset accumulator, summed in its order
                acc += err
            acc /= max(1, n_batches)
            t1 = time.perf_counter()
            test = self.reconstruction_error(X_test, rng) if X_test is not None else None
            t2 = time.perf_counter()
            if topology == "set":
                self.evolve(zeta=zeta, rng=rng, regrow=e < epochs - 1, original=legacy,
                            optimizer=opt)
            t3 = time.perf_counter()
            rec = {"epoch": e + 1, "train_recon": float(np.mean(errs)) if errs else float("nan"),
                   "train_recon_original": acc, "test_recon": test, "nnz": self.layer.nnz,
                   "seconds_train": t1 - t0, "seconds_eval": t2 - t1,
                   "seconds_evolution": t3 - t2}
            history.append(rec)
            if callback is not None:
                callback(rec)
        return history
