"""Trainer: epoch loop, evaluation, SET evolution, optimizer remap, history, checkpoints, resume."""

import logging
import math

import numpy as np

from .. import evolution
from .._parallel import thread_limit
from .._validation import check_array
from ..data.preprocessing import Preprocessing
from ..nn.batching import batch_t
from ..nn.functions import accuracy, loss_value, output_delta
from . import checkpoint
from .base import TrainerBase
from .build import build_model
from .comm import SerialComm
from .history import progress
from .signals import _interrupted, _InterruptFlag

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


class Trainer(TrainerBase):
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
    comm : object, optional
        Communicator (``SerialComm`` by default).
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
                         verbose=verbose)
        self.comm = comm or SerialComm()
        # Serial runs apply each layer's update as soon as its gradient is complete
        # (model.backward's on_layer), so one gradient buffer the size of the largest
        # layer serves them all; with several ranks the flat buffer is allreduced first.
        self._stream = getattr(self.comm, "size", 1) == 1
        self._flat, self._grads = self._make_grads()
        self.best_accuracy = None
        # SET does not evolve after the last epoch; if the run is extended, that skipped
        # evolution (of this 0-based epoch) runs first, so that N epochs then an extension
        # to M equals M epochs straight.
        self._pending_evolution = None

    def _make_grads(self):
        if self._stream:
            return self.model.make_layer_grads()
        return self.model.make_grads()

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_config(cls, config, n_features, n_outputs, *, streams=None, **kw):
        """Build streams, model and optimizer from a config.

        Parameters
        ----------
        config : TrainConfig
            Configuration (resolved here if needed).
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
        return cls._from_config(config.resolve(), build_model, n_features, n_outputs,
                                streams=streams, **kw)

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
        with thread_limit(cfg.threads):
            for s in range(0, n, bs):
                idx = slice(s, min(n, s + bs))
                xt = batch_t(X, idx, self.model.dtype)
                yhat = self.model.forward(xt)
                yt = _one_hot(y[idx], n_out, yhat.dtype)
                loss_sum += loss_value(cfg.loss, yhat, yt) * xt.shape[1]
                correct += accuracy(yhat, y[idx])
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
        X, y = self._check_xy(X, y, "X", "y")
        if X_test is not None:
            X_test, y_test = self._check_xy(X_test, y_test, "X_test", "y_test")
        return self._fit(
            n_epochs, lambda flag: self._run_epoch(X, y, X_test, y_test, n_epochs, flag),
            _InterruptFlag)

    def _check_xy(self, X, y, xn, yn):
        import scipy.sparse as sp

        n_in = self.model.layers[0].n_in
        if sp.issparse(X):
            if X.shape[1] != n_in:
                raise ValueError(f"{xn} has {X.shape[1]} features, but this SparseMLP was built "
                                 f"for {n_in} inputs. Pass {n_in} columns or build a new model.")
            X = X.tocsr()
        else:
            X = check_array(X, xn, n_cols=n_in, owner="SparseMLP")
        y = np.asarray(y)
        n_out = self.model.layers[-1].n_out
        if y.shape != (X.shape[0],):
            raise ValueError(f"{yn} must have shape ({X.shape[0]},) to match {xn}. Got {y.shape}.")
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= n_out)):
            raise ValueError(f"{yn} must hold integer class labels in [0, {n_out}).")
        return X, y

    def _run_epoch(self, X, y, X_test, y_test, n_epochs, flag):
        cfg, model = self.config, self.model
        n_batches = self._n_batches(X.shape[0])
        if self._pending_evolution is not None:  # an extended run: the skipped evolution first
            with self.timer("evolution"):
                self._evolve(self._pending_evolution)
            self._pending_evolution = None
        e, B = self.epoch, cfg.batch_size
        order, start, losses, drop_rng = self._epoch_start(X.shape[0])
        lr = self._lr(n_epochs)
        n_out = model.layers[-1].n_out
        quirk = cfg.mode == "reference" and cfg.loss == "mse"
        out_act = model.activations[-1]
        bar = progress(n_batches - start, f"epoch {e + 1}/{n_epochs}", self.verbose)
        try:
            # overflow is detected through the loss below, with a useful message
            with self.timer("train"), np.errstate(over="ignore", invalid="ignore"):
                for j in range(start, n_batches):
                    idx = order[j * B:(j + 1) * B]
                    xt = batch_t(X, idx, model.dtype)
                    yt = _one_hot(y[idx], n_out, model.dtype)
                    yhat = model.forward(xt, train=True, rng=drop_rng)
                    lv = loss_value(cfg.loss, yhat, yt)
                    if not math.isfinite(lv):
                        model._cache = None
                        raise FloatingPointError(self._diverged_msg(e, j, lv, X))
                    z_out = model._cache[-1][1]
                    delta = output_delta(cfg.loss, out_act, z_out, yhat, yt, set_quirk=quirk)
                    if self._stream:
                        model.backward(delta, self._grads,
                                       _LayerStep(self.optimizer, self._grads, idx.shape[0], lr))
                    else:
                        model.backward(delta, self._grads)
                        self.comm.allreduce_sum_(self._flat)
                        self.optimizer.step(self._grads, idx.shape[0] * self.comm.size, lr=lr)
                    losses.append(lv)
                    self.step += 1
                    bar.update(1)
                    if flag.set:
                        self._save_interrupt(e, j + 1, order, losses, drop_rng)
                        raise _interrupted(flag)
        finally:
            bar.close()
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
            if cfg.rewire != "none" and e < n_epochs - 1:
                self._evolve(e)
            elif cfg.rewire != "none":
                self._pending_evolution = e
        self._end_epoch(record, n_epochs, nnz=model.nnz(), dense_params=model.dense_params())

    def _evolve(self, e):
        cfg, model = self.config, self.model
        layers = model.sparse_layers()
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
                rng = self.streams.get("evolve", e, i)
                remap = dict(optimizer=self.optimizer, param_index=2 * i)
                if prune_now and i < n - 1:
                    evolution.apply(layer, "importance", percentile=cfg.prune_percentile, **remap)
                    changed = True
                    self._drop_schedule(i, "importance pruning")
                if cfg.rewire == "degree-preserving":
                    evolution.apply(layer, "degree-preserving", zeta=cfg.zeta_for(i, n), rng=rng,
                                    init=cfg.init, normal_std=cfg.normal_std, swaps=cfg.swaps,
                                    **remap)
                else:
                    res = evolution.apply(layer, "set", zeta=cfg.zeta_for(i, n), rng=rng,
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

    def _drop_schedule(self, i, why):
        layer = self.model.layers[i]
        if layer.schedule is not None:
            layer.schedule = None
            logger.warning("layer %d: %s changed the clash-free pattern, so its cycle schedule "
                           "is dropped (use --rewire degree-preserving to keep it)", i, why)

    def _check_weights(self, e, X):
        for i, layer in enumerate(self.model.layers):
            if not (np.isfinite(layer.W.data).all() and np.isfinite(layer.b).all()):
                raise FloatingPointError(f"layer {i} has non-finite weights after epoch {e + 1}. "
                                         + self._advice(X))

    def _diverged_msg(self, e, j, lv, X):
        bad = [i for i, la in enumerate(self.model.layers) if not np.isfinite(la.W.data).all()]
        where = f" (non-finite weights in layer(s) {bad})" if bad else ""
        return (f"the training loss became {lv} at epoch {self.epoch + 1}, batch {j + 1}{where}. "
                + self._advice(X))

    def _advice(self, X):
        """What to change after a divergence, from the settings and the inputs' range."""
        cfg = self.config
        tips = [f"lower the learning rate (now {cfg.lr:g}; e.g. --lr {cfg.lr / 10:g})"]
        if not cfg.warmup_epochs:
            tips.append("ramp it up over the first epochs (--warmup-epochs 5)")
        if cfg.momentum and cfg.optimizer == "sgd" and cfg.momentum > 0.9:
            tips.append(f"lower the momentum (now {cfg.momentum:g})")
        v = X.data if hasattr(X, "tocsr") else X
        big = max(float(v.max()), -float(v.min())) if v.size else 0.0
        how = None if self.preprocessing is None else self.preprocessing.scaling.how
        if big > 10 and how == "zscore":
            tips.append(f"bound the inputs: after z-scoring they reach |x| = {big:.3g} (features "
                        "that are almost constant in training); --normalize minmax keeps them in "
                        "[0, 1]")
        elif big > 10:
            tips.append(f"scale the inputs: they reach |x| = {big:.3g} (--normalize zscore or "
                        "minmax on the command line; sparsemlp.data.normalize in Python)")
        return "Try to " + "; ".join(tips) + "."

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
        weights : list of csr_array
            Layer weights by reference.
        arrays : dict
            Biases, clash-free cycle schedules (``layers.<i>.schedule.order`` ...),
            optimizer state.
        meta : dict
            Config, counters, RNG state, history, ``pending_evolution`` (the 0-based epoch
            whose evolution was skipped because it was the last, or None).
        """
        weights = [layer.W for layer in self.model.layers]
        arrays = {f"layers.{i}.bias": layer.b for i, layer in enumerate(self.model.layers)}
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


class _LayerStep:
    """``on_layer`` callback of a serial step: update layer i's W.data and b right away."""

    __slots__ = ("opt", "grads", "div", "lr")

    def __init__(self, opt, grads, div, lr):
        self.opt, self.grads, self.div, self.lr = opt, grads, div, lr

    def __call__(self, i):
        self.opt.step(self.grads, self.div, lr=self.lr, only=(2 * i, 2 * i + 1),
                      advance=i == 0)


def _one_hot(labels, n_out, dtype):
    yt = np.zeros((n_out, labels.shape[0]), dtype)
    if n_out == 1:
        yt[0] = labels
    else:
        yt[labels, np.arange(labels.shape[0])] = 1
    return yt
