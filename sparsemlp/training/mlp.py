"""Trainer: epoch loop, evaluation, SET evolution, optimizer remap, history, checkpoints, resume."""

import logging
import time

import numpy as np

from .. import evolution
from .._parallel import thread_limit
from ..data.preprocessing import Preprocessing
from ..nn.batching import batch_t
from ..nn.functions import accuracy, loss_value
from . import checkpoint, dst, presets
from .base import TrainerBase
from .build import build_model
from .checks import check_xy, divergence_advice
from .dataparallel import check_shardable, shard_bounds
from .datasets import augmenter
from .history import progress
from .mlpstep import StepMixin, one_hot
from .signals import _interrupted, _InterruptFlag
from .warmstart import init_model

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


class Trainer(StepMixin, TrainerBase):
    """Trains a SparseMLP with Sparse Evolutionary Training.

    Parameters
    ----------
    model : SparseMLP
        The model (its layers are updated in place).
    config : TrainConfig
        Resolved configuration.
    streams : Streams
        Random streams (shared with whatever split the data, in reference mode).
    run_dir : str or path-like, optional
        Where ``metrics.jsonl``, ``checkpoints/``, ``latest`` and ``final/`` go. Without
        it nothing is written.
    callbacks : sequence of Callback, optional
        Hooks.
    comm : communicator, optional
        ``SerialComm`` (the default), or one rank of a data-parallel run: each rank then
        trains on its share of every batch (see :class:`~sparsemlp.training.base.TrainerBase`).
    verbose : bool, default=True
        Progress bar on a terminal and one INFO log line per epoch.

    Attributes
    ----------
    history : History
        Per-epoch metric records.
    epoch : int
        Completed epochs.
    preprocessing : Preprocessing or None
        The label map and feature scaling of the training data, when known (the command
        line sets it); saved in checkpoints so that a reloaded run scores new data alike.

    See Also
    --------
    Trainer.from_config : Build model, optimizer and streams from a TrainConfig.
    Trainer.from_checkpoint : Continue a saved run exactly.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """

    _model_class = "SparseMLP"
    _rng_stream, _rng_key, _batch_key = "dropout", "dropout_rng", "batch_losses"
    _logger = logger
    preprocessing = None

    def __init__(self, model, config, *, streams, run_dir=None, callbacks=(), comm=None,
                 verbose=True):
        super().__init__(model, config, streams=streams, run_dir=run_dir, callbacks=callbacks,
                         comm=comm, verbose=verbose)
        # Serial runs apply each layer's update as soon as its gradient is complete
        # (model.backward's on_layer), so one gradient buffer the size of the largest
        # layer serves them all; with several ranks the flat buffer is allreduced first.
        self._stream = self.comm.size == 1
        self._flat, self._grads = self._make_grads()
        self.best_accuracy = None
        # SET does not evolve after the last epoch; if the run is extended, that skipped
        # evolution (of this 0-based epoch) runs first, so that N epochs then an extension
        # to M equals M epochs straight.
        self._pending_evolution = None

    def _make_grads(self):
        if self._stream:
            return self.model.make_layer_grads()
        return self._flat_grads()

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_config(cls, config, n_features, n_outputs, *, streams=None, **kw):
        """Build streams, model and optimizer from a config.

        Parameters
        ----------
        config : TrainConfig
            Configuration (resolved here if needed); with ``init_from`` the model is the
            trained one it names (:func:`sparsemlp.training.warmstart.init_model`).
        n_features, n_outputs : int
            Input and output sizes.
        streams : Streams, optional
            Random streams; by default ``Streams(config.seed, legacy=config.legacy_rng)``.
        **kw
            Passed to the constructor (``run_dir``, ``callbacks``, ``verbose``...).

        Returns
        -------
        Trainer
            A trainer at epoch 0.
        """
        cfg = config.resolve()
        build = init_model if cfg.init_from else build_model  # trained weights, or fresh ones
        return cls._from_config(cfg, build, n_features, n_outputs, streams=streams, **kw)

    def _load_extra_state(self, arrays, meta):
        self.best_accuracy = meta.get("best_accuracy")
        self.preprocessing = Preprocessing.from_state_dict(arrays)
        if "pending_evolution" in meta:
            checkpoint.check_meta(meta, "meta.json", pending_evolution=(int, type(None)))
            self._pending_evolution = meta["pending_evolution"]
        elif (meta["format_version"] == 1 and self.config.rewire != "none" and self.epoch > 0
              and self.epoch == self.config.epochs and not meta.get("mid_epoch")):
            # format 1 did not record it: a run that reached its last epoch skipped it
            self._pending_evolution = self.epoch - 1

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, X, y):
        """Loss and accuracy of the model on labelled data (no dropout, chunked).

        With several ranks this is collective: every rank scores its share of ``X`` and
        every rank returns the totals.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            Inputs.
        y : ndarray of shape (n_samples,)
            Integer class labels.

        Returns
        -------
        dict
            ``loss``, ``accuracy``, ``correct``, ``count``.
        """
        cfg = self.config
        n = X.shape[0]
        n_out = self.model.layers[-1].n_out
        loss_sum, correct = 0.0, 0
        # Chunk so that the activations stay small next to the weights: at 600,000 units a
        # 68-sample chunk holds 160 MB per array (2.6 B per connection of the model).
        # nnz / (8 * width) samples (at least 16) keep one array within 1/8 of W.data.
        width = max(self.model.sizes[1:])
        bs = min(cfg.eval_batch_size, max(16, sum(self.model.nnz()) // (8 * width)))
        # with several ranks each scores its share of the samples, then the sums are summed
        lo, hi = shard_bounds(n, self.comm.size, self.comm.rank)
        with thread_limit(cfg.threads):
            for s in range(lo, hi, bs):
                idx = slice(s, min(hi, s + bs))
                xt = batch_t(X, idx, self.model.dtype)
                yhat = self.model.forward(xt)
                yt = one_hot(y[idx], n_out, yhat.dtype)
                loss_sum += loss_value(cfg.loss, yhat, yt) * xt.shape[1]
                correct += accuracy(yhat, y[idx])
        if self.comm.size > 1:
            sums = self.comm.allreduce_sum_(np.array([loss_sum, correct], np.float64))
            loss_sum, correct = float(sums[0]), int(round(sums[1]))
        return {"loss": loss_sum / n, "accuracy": correct / n, "correct": correct, "count": n}

    # -- training ------------------------------------------------------------------------
    def fit(self, X, y, X_test=None, y_test=None, *, epochs=None):
        """Train until ``config.epochs`` (or ``epochs``) epochs are complete.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            Training inputs (float; converted per batch to the model dtype).
        y : ndarray of shape (n_samples,)
            Integer labels in ``[0, n_outputs)``.
        X_test, y_test : optional
            Data scored after every epoch (all samples).
        epochs : int, optional
            Total epochs to reach (default ``config.epochs``).

        Returns
        -------
        History
            Per-epoch records.

        Raises
        ------
        KeyboardInterrupt
            After Ctrl-C, once a checkpoint of the last completed step is written (with a
            run directory).
        FloatingPointError
            If the loss or a weight becomes NaN or infinite.
        """
        cfg = self.config
        n_epochs = cfg.epochs if epochs is None else int(epochs)
        X, y = check_xy(self.model, X, y, "X", "y")
        check_shardable(cfg, X.shape[0], self.comm.size)
        if X_test is not None:
            X_test, y_test = check_xy(self.model, X_test, y_test, "X_test", "y_test")
        return self._fit(
            n_epochs, lambda flag: self._run_epoch(X, y, X_test, y_test, n_epochs, flag),
            _InterruptFlag)

    def _run_epoch(self, X, y, X_test, y_test, n_epochs, flag):
        cfg, model = self.config, self.model
        n_batches = self._n_batches(X.shape[0])
        if self._pending_evolution is not None:  # an extended run: the skipped evolution first
            by_steps = cfg.update_unit == "steps"
            with self.timer("evolution"):
                self._evolve(self._pending_evolution, X, y, step=self.step if by_steps else None,
                             n_batches=n_batches)
            self._pending_evolution = None
        step_seconds = 0.0  # of updates by steps (inside the train phase; moved to evolution)
        e, B = self.epoch, cfg.batch_size
        order, start, losses, drop_rng = self._epoch_start(X.shape[0])
        lr = self._lr(n_epochs)
        aug = augmenter(cfg, self.streams)
        bar = progress(n_batches - start, f"epoch {e + 1}/{n_epochs}", self.verbose)
        try:
            # overflow is detected through the loss below, with a useful message
            with self.timer("train"), np.errstate(over="ignore", invalid="ignore"):
                for j in range(start, n_batches):
                    idx = order[j * B:(j + 1) * B]
                    lv, stop = self._train_step(X, y, idx, drop_rng, lr, e, j, flag, aug)
                    losses.append(lv)
                    self.step += 1
                    bar.update(1)
                    if dst.evolves_after_step(cfg, self.step):
                        step_seconds += self._step_update(e, X, y, n_epochs, n_batches)
                    if stop:
                        self._save_interrupt(e, j + 1, order, losses, drop_rng)
                        raise _interrupted(flag)
        finally:
            bar.close()
        if step_seconds:
            self.timer.seconds["train"] -= step_seconds
            self.timer.seconds["evolution"] = step_seconds
        self._check_weights(e, X)
        record = {"epoch": e + 1, "lr": lr, "train_loss": float(np.mean(losses))}
        with self.timer("eval"):
            if X_test is not None:
                ev = self.evaluate(X_test, y_test)
                acc = ev["accuracy"]
                self.best_accuracy = acc if self.best_accuracy is None else max(
                    self.best_accuracy, acc)
                record.update(test_loss=ev["loss"], test_accuracy=acc,
                              best_test_accuracy=self.best_accuracy)
        with self.timer("evolution"):
            if dst.evolves(cfg, e) and e < n_epochs - 1:
                self._evolve(e, X, y)
            elif dst.evolves(cfg, e):
                self._pending_evolution = e
        self._end_epoch(record, n_epochs, nnz=model.nnz(), dense_params=model.dense_params())

    def _step_update(self, e, X, y, n_epochs, n_batches):
        """The topology update after optimizer step ``self.step`` (``--update-unit steps``),
        or, after the run's last step, its note for an extension; returns its seconds."""
        if self.step >= n_epochs * n_batches:
            self._pending_evolution = e
            return 0.0
        t0 = time.perf_counter()
        self._evolve(e, X, y, step=self.step, n_batches=n_batches)
        return time.perf_counter() - t0

    def _evolve(self, e, X, y, step=None, n_batches=None):
        """Evolve the layers after epoch ``e`` or, by steps, after optimizer step ``step``
        (random streams keyed by the step; cosine zeta by the run's progress in steps)."""
        cfg, model = self.config, self.model
        layers = model.layers  # index i of a layer is its parameter pair 2i, 2i + 1
        if cfg.regrow != "random" and any(la.kind != "csr" for la in layers):
            raise presets.ConfigError(f"--regrow {cfg.regrow} needs CSR layers only; this model has "
                              "structured layers (sparsemlp.approx). Use --regrow random.")
        signals = (None if cfg.regrow == "random"
                   else dst.gradient_signals(model, cfg, self.streams, X, y, e, one_hot, step))
        progress = None if step is None else step / (cfg.epochs * n_batches)
        n = len(layers)
        upto = n if cfg.evolve_output else n - 1
        prune_now = (cfg.prune_percentile > 0 and e + 1 > cfg.prune_after
                     and (e + 1) % cfg.prune_every == 0)
        # The gradient buffer and the transposed indices (8 bytes per connection) are dead
        # between epochs: free them while evolution's temporaries peak, rebuild after
        # (untouched pages of the new gradient buffer cost no RSS).
        self._flat = self._grads = None
        for layer in layers:
            layer.release_index()
        changed = False
        try:
            for i in range(upto):
                layer = layers[i]
                if layer.kind != "csr":
                    continue  # structured layers (sparsemlp.approx) keep their structure
                rng = (self.streams.get("evolve", e, i) if step is None
                       else self.streams.get("evolve_step", step, i))
                remap = dict(optimizer=self.optimizer, param_index=2 * i)
                zeta = dst.zeta_at(cfg, i, n, e, progress)
                if prune_now and i < n - 1:
                    evolution.apply(layer, "importance", percentile=cfg.prune_percentile, **remap)
                    changed = True
                    self._drop_schedule(i, "importance pruning")
                if cfg.rewire == "degree-preserving":
                    evolution.apply(layer, "degree-preserving", zeta=zeta, rng=rng,
                                    init=cfg.init, normal_std=cfg.normal_std, swaps=cfg.swaps,
                                    **remap)
                elif signals is not None:
                    evolution.apply(layer, cfg.regrow, zeta=zeta,
                                    **dst.rule_params(cfg, signals[i], rng), **remap)
                    self._drop_schedule(i, "gradient regrowth")
                else:
                    res = evolution.apply(layer, "set", zeta=zeta, rng=rng,
                                          init=cfg.init, normal_std=cfg.normal_std, **remap)
                    if res.n_removed:
                        self._drop_schedule(i, "SET rewiring")
                    del res
        finally:
            for layer in layers:
                layer.ensure_index()
            self._flat, self._grads = self._make_grads()
        if changed:
            self.optimizer.rebind(model.parameters())
        if self.comm.size > 1:
            self._check_ranks(f"after the evolution of epoch {e + 1}")

    def _drop_schedule(self, i, why):
        layer = self.model.layers[i]
        if layer.schedule is not None:
            layer.schedule = None
            logger.warning("layer %d: %s changed the clash-free pattern, so its cycle schedule "
                           "is dropped (use --rewire degree-preserving to keep it)", i, why)

    def _check_weights(self, e, X):
        for i, layer in enumerate(self.model.layers):
            if not all(np.isfinite(p).all() for p in layer.parameters()):
                raise FloatingPointError(f"layer {i} has non-finite weights after epoch {e + 1}. "
                                         + divergence_advice(self.config, X, self.preprocessing))

    def _diverged_msg(self, e, j, lv, X):
        bad = [i for i, la in enumerate(self.model.layers)
               if not np.isfinite(la.parameters()[0]).all()]
        where = f" (non-finite weights in layer(s) {bad})" if bad else ""
        return (f"the training loss became {lv} at epoch {self.epoch + 1}, batch {j + 1}{where}. "
                + divergence_advice(self.config, X, self.preprocessing))

    def _log_parts(self, r):
        parts = [f"train_loss {r['train_loss']:.5g}"]
        if r.get("test_accuracy") is not None:
            parts += [f"test_loss {r['test_loss']:.5g}", f"test_acc {r['test_accuracy']:.4f}",
                      f"best {r['best_test_accuracy']:.4f}"]
        return parts

    # -- checkpoints ---------------------------------------------------------------------
    def state(self):
        """Everything a checkpoint stores: (weights, arrays, meta).

        Returns
        -------
        weights : list of csr_array or Approximation
            Layer weights by reference; structured layers as their trained approximation.
        arrays : dict
            Biases, SReLU parameters (``activations.<i>.params``), clash-free cycle
            schedules (``layers.<i>.schedule.order`` ...), optimizer state.
        meta : dict
            Config, counters, RNG state, history, ``pending_evolution`` (the 0-based epoch
            whose evolution was skipped because it was the last, or None).
        """
        weights = [layer.W if layer.kind == "csr" else layer.to_approximation()
                   for layer in self.model.layers]
        arrays = {f"layers.{i}.bias": layer.b for i, layer in enumerate(self.model.layers)}
        for i, act in self.model.param_activations():
            arrays.update(act.state_dict(f"activations.{i}."))
        for i, layer in enumerate(self.model.layers):
            if layer.schedule is not None:
                arrays.update(layer.schedule.state_dict(f"layers.{i}.schedule."))
        arrays.update(self.optimizer.state_dict())
        if self.preprocessing is not None:
            arrays.update(self.preprocessing.state_dict())
        meta = {
            "model_class": "SparseMLP",
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_accuracy": self.best_accuracy,
            "pending_evolution": self._pending_evolution,
            "streams": self.streams.state_dict(),
            "backend": self.model.kernels.name,
            "history": self.history.records,
        }
        return weights, arrays, meta
