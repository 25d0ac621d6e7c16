"""RBMTrainer: SET-RBM epochs (CD-k / PCD), RBM metrics, history, checkpoints and exact resume."""

import logging
import math
import time

import numpy as np

from .. import evolution
from .._rng import Streams
from ..data.preprocessing import Preprocessing
from ..nn.batching import batch_t
from ..rbm import metrics as metrics
from . import checkpoint
from .base import TrainerBase
from .build import build_rbm
from .history import progress
from .signals import _interrupted, _InterruptFlag

__all__ = ["RBMTrainer"]

logger = logging.getLogger(__name__)

# pll="auto" computes the exact pseudo-log-likelihood up to this many n_test * nnz terms
# (about 0.4 s on this machine), else the one-unit estimate.
_PLL_EXACT_MAX = 10_000_000


class RBMTrainer(TrainerBase):
    """Trains a SparseRBM with contrastive divergence and Sparse Evolutionary Training.

    The RBM counterpart of :class:`~sparsemlp.training.mlp.Trainer`: the same run directory
    (``metrics.jsonl``, ``checkpoints/``, ``latest``, ``final/``), atomic checkpoints, exact
    resume (also from a Ctrl-C checkpoint in the middle of an epoch) and callbacks.

    Parameters
    ----------
    model : SparseRBM
        The model (updated in place).
    config : TrainConfig
        Resolved ``--model rbm`` configuration.
    streams : Streams
        Random streams: ``shuffle`` / ``gibbs`` / ``eval`` / ``evolve`` keyed by epoch, or one
        legacy RandomState in the original's order (reference mode).
    run_dir : str or path-like, optional
        Where the run's files go; without it nothing is written.
    callbacks : sequence of Callback, optional
        Hooks (``on_train_begin``, ``on_epoch_end`` returning True to stop, ``on_train_end``).
    verbose : bool, default=True
        Progress bar on a terminal and one INFO line per epoch.

    Attributes
    ----------
    history : History
        Per-epoch records.
    epoch : int
        Completed epochs.
    chains : ndarray of shape (n_visible, batch_size) or None
        The persistent chains of PCD (``config.persistent``): started by the first
        :meth:`fit` from training samples drawn with their own stream, unless set before.

    Notes
    -----
    Per epoch: shuffle; one CD-k / PCD-k update per batch (``SparseRBM.step``); test
    reconstruction error (one Gibbs pass, as the original); pseudo-log-likelihood of the
    test set (``pll``); every ``ais_every`` epochs and at the last one, an AIS estimate of
    log Z (``ais_chains`` x ``ais_betas``, base-rate base model) and the test
    log-likelihood; then SET evolution, removal only after the last epoch. In default mode
    that final removal comes before the last epoch's metrics, so the last record describes
    the saved model (``evaluate`` reproduces it); reference mode keeps the original's order
    (metrics, then removal) throughout. The likelihoods
    are of the test set binarised once by ``v ~ Bernoulli(x)`` (identity for binary data),
    and their randomness never touches the training streams, so turning them on or off
    leaves the training bit for bit unchanged.

    References
    ----------
    Mocanu et al., Nature Communications 9:2383 (2018); Salakhutdinov and Murray, ICML 2008.
    """

    _model_class = "SparseRBM"
    _rng_stream, _rng_key, _batch_key = "gibbs", "gibbs_rng", "batch_errors"
    _logger = logger
    preprocessing = None  # the data's scaling (and label map), saved in checkpoints
    _meta_keys = {"train_recon_original": (float, int)}

    def __init__(self, model, config, *, streams, run_dir=None, callbacks=(), verbose=True):
        super().__init__(model, config, streams=streams, run_dir=run_dir, callbacks=callbacks,
                         verbose=verbose)
        self._flat, self._grads = model.make_grads()
        self.train_recon_original = 0.0  # the original's never-reset accumulator
        self.chains = None
        self.metric_streams = Streams(config.seed)  # keyed, never the legacy training stream
        self._ais_base = None
        # The last epoch removes without regrowing; if the run is extended, that regrowth
        # ({"epoch": 0-based epoch, "regrow": connections}) runs first, so that N epochs then
        # an extension to M equals M epochs straight.
        self._pending_evolution = None

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_config(cls, config, n_features, *, streams=None, **kw):
        """Build streams and a fresh Erdős–Rényi SparseRBM from a config.

        Parameters
        ----------
        config : TrainConfig
            Configuration with ``model="rbm"`` (resolved here if needed).
        n_features : int
            Number of visible units.
        streams : Streams, optional
            Random streams; by default ``Streams(config.seed, legacy=config.legacy_rng)``.
        **kw
            Passed to the constructor (``run_dir``, ``callbacks``, ``verbose``).

        Returns
        -------
        RBMTrainer
            A trainer at epoch 0.
        """
        cfg = config.resolve()
        if cfg.model != "rbm":
            raise ValueError(f"RBMTrainer needs model='rbm'. Got {cfg.model!r}; use Trainer.")
        return cls._from_config(cfg, build_rbm, n_features, streams=streams, **kw)

    def _load_extra_state(self, arrays, meta):
        self.train_recon_original = float(meta["train_recon_original"])
        self.preprocessing = Preprocessing.from_state_dict(arrays)
        pending = meta.get("pending_evolution")
        if pending is not None:
            checkpoint.check_meta(pending, "meta.json (pending_evolution)", epoch=int, regrow=int)
        elif (meta["format_version"] == 1 and self.config.topology == "set" and self.epoch > 1
              and self.epoch == self.config.epochs and not meta.get("mid_epoch")):
            # format 1 did not record it: the last epoch removed what the one before kept
            recs = meta["history"]
            n = recs[-2]["nnz"][0] - recs[-1]["nnz"][0] if len(recs) >= 2 else 0
            pending = {"epoch": self.epoch - 1, "regrow": n} if n > 0 else None
        self._pending_evolution = pending
        if "rbm.chains" in arrays:
            self.chains = np.array(arrays["rbm.chains"], dtype=self.model.dtype, copy=True)

    # -- evaluation ----------------------------------------------------------------------
    def _binarized(self, X):
        """``X`` for the likelihoods: binary data as is, else one keyed Bernoulli(x) draw."""
        if self.model.visible == "gaussian" or np.all((X == 0) | (X == 1)):
            return X
        u = self.metric_streams.get("binarize", X.shape[0]).random(X.shape)
        return (u < X).astype(np.float64)

    def evaluate(self, X, *, epoch=None, recon_rng=None, pll=None, ais=False, ais_base=None):
        """Reconstruction error, pseudo-log-likelihood and (optionally) AIS log-likelihood.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_visible)
            Data.
        epoch : int, optional
            Key of the randomness (default: that of the last completed epoch's record,
            ``epoch - 1``, so that scoring the trained model on its test set reproduces the
            last record of ``metrics.jsonl`` in default mode).
        recon_rng : numpy.random.Generator or RandomState, optional
            Randomness of the reconstruction pass (default: keyed ``eval`` stream).
        pll : {"auto", "exact", "stochastic", "none"}, optional
            Pseudo-log-likelihood method (default: the config's).
        ais : bool, default=False
            Also estimate log Z by AIS and the mean log-likelihood.
        ais_base : ndarray of shape (n_visible,), optional
            AIS base model (default: :func:`~sparsemlp.rbm.metrics.base_rate` of the data
            last passed to :meth:`fit`, else the uniform model).

        Returns
        -------
        dict
            ``recon``, ``pll`` and ``pll_method`` (None without), ``log_likelihood``,
            ``log_z``, ``log_z_std`` (None without AIS), ``seconds_ais``.
        """
        cfg, m = self.config, self.model
        e = max(self.epoch - 1, 0) if epoch is None else epoch
        rng = recon_rng if recon_rng is not None else self.metric_streams.get("eval", e)
        out = {"recon": m.reconstruction_error(X, rng), "pll": None, "pll_method": None,
               "log_likelihood": None, "log_z": None, "log_z_std": None, "seconds_ais": 0.0}
        method = cfg.pll if pll is None else pll
        Xb = None
        if method != "none" and m.visible == "binary":
            if method == "auto":
                method = "exact" if X.shape[0] * m.layer.nnz <= _PLL_EXACT_MAX else "stochastic"
            Xb = self._binarized(X)
            units = (self.metric_streams.get("pll").integers(0, m.n_visible, X.shape[0])
                     if method == "stochastic" else None)
            out["pll"] = float(np.mean(metrics.pseudo_log_likelihood(m, Xb, units=units)))
            out["pll_method"] = method
        if ais:
            t0 = time.perf_counter()
            Xb = self._binarized(X) if Xb is None else Xb
            base = self._ais_base if ais_base is None else ais_base
            log_z, sd = metrics.ais_log_partition(
                m, n_chains=cfg.ais_chains, n_betas=cfg.ais_betas, base_visible_bias=base,
                rng=self.metric_streams.get("ais", e), return_std=True)
            out.update(log_z=log_z, log_z_std=sd, log_likelihood=metrics.log_likelihood(m, Xb, log_z),
                       seconds_ais=time.perf_counter() - t0)
        return out

    # -- training ------------------------------------------------------------------------
    def fit(self, X, X_test=None, *, epochs=None, check_range=True):
        """Train until ``config.epochs`` (or ``epochs``) epochs are complete.

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix of shape (n_samples, n_visible)
            Training data (in [0, 1] for binary visible units); sparse data is densified
            one batch at a time, never as a whole.
        X_test : ndarray, optional
            Data scored after every epoch.
        epochs : int, optional
            Total epochs to reach (default ``config.epochs``).
        check_range : bool, default=True
            Refuse data outside [0, 1] for binary visible units; False uses such values as
            given (as scikit-learn's ``BernoulliRBM`` does).

        Returns
        -------
        History
            Per-epoch records.

        Raises
        ------
        ValueError
            If the data have the wrong shape, non-finite values or (with ``check_range``)
            values outside [0, 1] for binary visible units.
        KeyboardInterrupt
            After Ctrl-C, once a checkpoint of the last completed step is written.
        FloatingPointError
            If the reconstruction error or a weight becomes NaN or infinite.
        """
        cfg = self.config
        n_epochs = cfg.epochs if epochs is None else int(epochs)
        X = self.model.check_data(X, check_range=check_range, accept_sparse=True)
        if X_test is not None:
            X_test = self.model.check_data(X_test, "X_test", check_range=check_range)
        self._ais_base = metrics.base_rate(X, self.model.visible)
        if cfg.persistent and self.chains is None:
            self.chains = self.model.init_chains(X, cfg.batch_size, self.metric_streams.get("chains"))
        return self._fit(n_epochs, lambda flag: self._run_epoch(X, X_test, n_epochs, flag),
                         _InterruptFlag)

    def _run_epoch(self, X, X_test, n_epochs, flag):
        cfg, model, st = self.config, self.model, self.streams
        n_batches = self._n_batches(X.shape[0])
        if self._pending_evolution is not None:  # an extended run: the skipped regrowth first
            with self.timer("evolution"):
                p = self._pending_evolution
                self._change_topology("regrow", n=p["regrow"], rng=st.get("evolve", p["epoch"], 0),
                                      original=st.legacy, init=cfg.init,
                                      normal_std=cfg.normal_std)
            self._pending_evolution = None
        e, B = self.epoch, cfg.batch_size
        order, start, errs, gibbs = self._epoch_start(X.shape[0])
        lr = self._lr(n_epochs)
        bar = progress(n_batches - start, f"epoch {e + 1}/{n_epochs}", self.verbose)
        try:
            with self.timer("train"), np.errstate(over="ignore", invalid="ignore"):
                for j in range(start, n_batches):
                    vt = batch_t(X, order[j * B:(j + 1) * B], model.dtype)
                    err = model.step(vt, gibbs, self.optimizer, self._grads, k=cfg.cd_k, lr=lr,
                                     chains=self.chains, reference=st.legacy)
                    if not math.isfinite(err):
                        raise FloatingPointError(
                            f"the reconstruction error became {err} at epoch {e + 1}, batch "
                            f"{j + 1}. Lower the learning rate (now {cfg.lr}) or scale the data.")
                    errs.append(err)
                    self.step += 1
                    bar.update(1)
                    if flag.set:
                        self._save_interrupt(e, j + 1, order, errs, gibbs)
                        raise _interrupted(flag)
        finally:
            bar.close()
        if not all(np.isfinite(p).all() for p in model.parameters()):
            raise FloatingPointError(f"the RBM has non-finite weights after epoch {e + 1}. Lower "
                                     f"the learning rate (now {cfg.lr}) or scale the data.")
        acc = self.train_recon_original
        for err in errs:  # the original's never-reset accumulator, summed in its order
            acc += err
        self.train_recon_original = acc / max(1, n_batches)
        record = {"epoch": e + 1, "lr": lr, "train_recon": float(np.mean(errs)),
                  "train_recon_original": self.train_recon_original}
        # An epoch's metrics are of the model before its evolution, as in the original,
        # except after the last epoch of default mode: there the final removal (no regrowth)
        # comes first, so that the last record describes the saved model and evaluate
        # reproduces it. Reference mode keeps the original's order (its Gibbs pass draws
        # from the training stream, so the order is part of the published run).
        final_first = e == n_epochs - 1 and not st.legacy
        if final_first:
            self._evolve(e, n_epochs)
        with self.timer("eval"):
            if X_test is not None:
                ais = cfg.ais_every > 0 and ((e + 1) % cfg.ais_every == 0 or e + 1 == n_epochs)
                ev = self.evaluate(X_test, epoch=e, recon_rng=gibbs if st.legacy else None, ais=ais)
                record.update(test_recon=ev["recon"], test_pll=ev["pll"],
                              test_pll_method=ev["pll_method"],
                              test_log_likelihood=ev["log_likelihood"], log_z=ev["log_z"],
                              log_z_std=ev["log_z_std"], seconds_ais=ev["seconds_ais"])
        if not final_first:
            self._evolve(e, n_epochs)
        self._end_epoch(record, n_epochs, nnz=[model.layer.nnz],
                        dense_params=model.n_visible * model.n_hidden)

    def _evolve(self, e, n_epochs):
        """SET evolution after epoch ``e`` (removal only, without regrowth, after the last)."""
        cfg, st = self.config, self.streams
        with self.timer("evolution"):
            if cfg.topology == "set":
                last = e == n_epochs - 1
                res = self._change_topology(
                    "set-original" if st.legacy else "set", zeta=cfg.zeta[0],
                    rng=st.get("evolve", e, 0), regrow=not last, init=cfg.init,
                    normal_std=cfg.normal_std)
                if last and res.n_removed:
                    self._pending_evolution = {"epoch": e, "regrow": int(res.n_removed)}

    def _change_topology(self, rule, **params):
        """One topology change of the weights by ``rule`` (:func:`sparsemlp.evolution.apply`).

        The optimizer's state follows; the gradient buffer and the model's per-connection
        work arrays are dead between epochs and freed while the change's temporaries peak.
        """
        self._flat = self._grads = None
        self.model.release_buffers()
        res = evolution.apply(self.model.layer, rule, optimizer=self.optimizer, param_index=0,
                              **params)
        self._flat, self._grads = self.model.make_grads()
        return res

    def _log_parts(self, r):
        parts = [f"train_recon {r['train_recon']:.5g}"]
        for key, name in (("test_recon", "test_recon"), ("test_pll", "test_pll"),
                          ("test_log_likelihood", "test_ll")):
            if r.get(key) is not None:
                parts.append(f"{name} {r[key]:.5g}")
        return parts

    # -- checkpoints ---------------------------------------------------------------------
    def state(self):
        """Everything a checkpoint stores: (weights, arrays, meta).

        Returns
        -------
        weights : list of csr_array
            ``[W]`` by reference.
        arrays : dict
            Hidden biases (``layers.0.bias``), ``visible_bias``, optimizer state, chains.
        meta : dict
            ``model_class="SparseRBM"``, config, counters, RNG state, history and
            ``pending_evolution`` (the regrowth the last epoch skipped, or None).
        """
        m = self.model
        arrays = {"layers.0.bias": m.b_hidden, "visible_bias": m.b_visible}
        arrays.update(self.optimizer.state_dict())
        if self.chains is not None:
            arrays["rbm.chains"] = self.chains
        if self.preprocessing is not None:
            arrays.update(self.preprocessing.state_dict())
        meta = {"model_class": "SparseRBM", "visible_units": m.visible,
                "config": self.config.to_dict(), "epoch": self.epoch, "step": self.step,
                "train_recon_original": self.train_recon_original,
                "pending_evolution": self._pending_evolution,
                "streams": self.streams.state_dict(), "backend": m.kernels.name,
                "history": self.history.records}
        return [m.W], arrays, meta
