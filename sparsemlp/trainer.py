"""Trainer: epoch loop, evaluation, SET evolution, optimizer remap, history, checkpoints, resume."""

import dataclasses
import logging
import math
import os
import shutil
import signal
import threading

import numpy as np

from . import _kernels, checkpoint
from ._parallel import thread_limit
from ._rng import Streams
from ._validation import check_array
from .comm import SerialComm
from .config import PREDEFINED, ConfigError, TrainConfig
from .evolution import evolve, importance_prune
from .functions import accuracy, loss_value, output_delta
from .history import History, PhaseTimer, peak_rss_mb, progress
from .models import SparseMLP, batch_t
from .optim import lr_at, make_optimizer
from .rewiring import evolve_degree_preserving
from .topology import ClashFreeSchedule, predefined_layers

__all__ = ["Trainer", "Callback", "build_model"]

logger = logging.getLogger(__name__)


class Callback:
    """Hooks called by :meth:`Trainer.fit`; ``on_epoch_end`` may return True to stop."""

    def on_train_begin(self, trainer):
        """Run once before the first epoch of :meth:`Trainer.fit`.

        Parameters
        ----------
        trainer : Trainer
            The running trainer.
        """

    def on_epoch_end(self, trainer, record):
        """Run after each epoch; return True to stop training.

        Parameters
        ----------
        trainer : Trainer
            The running trainer.
        record : dict
            The epoch's metrics (as written to ``metrics.jsonl``).

        Returns
        -------
        bool or None
            True stops training after this epoch.
        """

    def on_train_end(self, trainer):
        """Run once when :meth:`Trainer.fit` finishes (also after an interruption).

        Parameters
        ----------
        trainer : Trainer
            The trainer.
        """


def build_model(cfg, n_features, n_outputs, *, rng, kernels, weights=None, schedules=None):
    """The SparseMLP a resolved config describes (fresh layers, or given weights).

    Parameters
    ----------
    cfg : TrainConfig
        Resolved config: Erdős–Rényi layers for ``topology`` 'set' / 'static', pre-defined
        ones (:func:`sparsemlp.topology.predefined_layers`) for 'random', 'regular' and
        'clash-free'.
    n_features, n_outputs : int
        Input and output sizes.
    rng : numpy.random.Generator or RandomState
        Initialisation randomness (unused when ``weights`` is given).
    kernels : KernelSet
        Backend.
    weights : list of scipy.sparse.csr_array, optional
        Existing weights (from a checkpoint).
    schedules : list of ClashFreeSchedule or None, optional
        Cycle schedules of the existing weights (from a checkpoint).

    Returns
    -------
    SparseMLP
        The model; clash-free layers carry their ``schedule``.

    Raises
    ------
    ConfigError
        If the pre-defined topology's parameters do not fit the layer sizes.
    CheckpointError
        If ``weights`` do not match the sizes.
    """
    sizes = [n_features, *cfg.hidden, n_outputs]
    dtype = np.dtype(cfg.dtype)
    common = dict(activation=cfg.activation, output_activation=cfg.output_activation,
                  alpha=cfg.alpha, dropout=cfg.dropout, dropout_kind=cfg.dropout_kind,
                  kernels=kernels)
    if weights is None:
        if cfg.topology not in PREDEFINED:
            return SparseMLP.erdos_renyi(
                sizes, epsilon=cfg.epsilon, law=cfg.er_law, init=cfg.init, dtype=dtype, rng=rng,
                normal_std=cfg.normal_std, **common)
        try:
            weights, schedules = predefined_layers(
                sizes, topology=cfg.topology, fan_out=cfg.fan_out or None, z=cfg.z or None,
                n_cycles=cfg.cycles or None, epsilon=cfg.epsilon, kind=cfg.clash_kind,
                dither=cfg.dither, init=cfg.init, rng=rng, dtype=dtype,
                normal_std=cfg.normal_std)
        except ValueError as exc:
            raise ConfigError(f"topology {cfg.topology!r} with sizes {sizes}: {exc}") from None
        return SparseMLP.from_weights(weights, schedules=schedules, **common)
    if [W.shape for W in weights] != list(zip(sizes[:-1], sizes[1:])):
        raise checkpoint.CheckpointError(
            f"checkpoint layer shapes {[W.shape for W in weights]} do not match sizes {sizes}.")
    return SparseMLP.from_weights([W.astype(dtype, copy=False) for W in weights],
                                  schedules=schedules, **common)


class _InterruptFlag:
    """SIGINT handler that sets a flag (checked between steps); a second Ctrl-C aborts."""

    def __init__(self):
        self.set = False
        self._old = None

    def _handler(self, signum, frame):
        if self.set:
            signal.signal(signal.SIGINT, self._old or signal.default_int_handler)
            raise KeyboardInterrupt
        self.set = True
        logger.warning("interrupt received: finishing the current step and saving a checkpoint "
                       "(press Ctrl-C again to abort without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class Trainer:
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

    See Also
    --------
    Trainer.from_config : Build model, optimizer and streams from a TrainConfig.
    Trainer.from_checkpoint : Continue a saved run exactly.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """

    def __init__(self, model, config, *, streams, run_dir=None, callbacks=(), comm=None,
                 verbose=True):
        self.model = model
        self.config = config
        self.streams = streams
        self.run_dir = None if run_dir is None else os.fspath(run_dir)
        if self.run_dir is not None:
            os.makedirs(self.run_dir, exist_ok=True)
        self.callbacks = list(callbacks)
        self.comm = comm or SerialComm()
        self.verbose = verbose
        cfg = config
        self.optimizer = make_optimizer(
            cfg.optimizer, model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
            kernels=model.kernels,
            **(dict(momentum=cfg.momentum, nesterov=cfg.nesterov, decay=cfg.decay)
               if cfg.optimizer == "sgd" else
               dict(beta1=cfg.adam_beta1, beta2=cfg.adam_beta2, adam_eps=cfg.adam_eps,
                    decoupled=cfg.decay != "coupled")))
        # Serial runs apply each layer's update as soon as its gradient is complete
        # (model.backward's on_layer), so one gradient buffer the size of the largest
        # layer serves them all; with several ranks the flat buffer is allreduced first.
        self._stream = getattr(self.comm, "size", 1) == 1
        self._flat, self._grads = self._make_grads()
        self.epoch = 0
        self.step = 0
        self.best_accuracy = None
        self.history = History(None if self.run_dir is None
                               else os.path.join(self.run_dir, "metrics.jsonl"))
        self._resume = None  # mid-epoch state restored from a checkpoint
        self.timer = PhaseTimer()
        self.stop_training = False

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
        cfg = config.resolve()
        streams = streams or Streams(cfg.seed, legacy=cfg.legacy_rng)
        ks = _kernels.get(cfg.backend)
        with thread_limit(cfg.threads):
            model = build_model(cfg, n_features, n_outputs, rng=streams.get("init"), kernels=ks)
        return cls(model, cfg, streams=streams, **kw)

    @classmethod
    def from_checkpoint(cls, path, *, backend=None, **kw):
        """Rebuild a trainer exactly as it was when ``path`` was saved.

        Parameters
        ----------
        path : str or path-like
            Checkpoint directory (or a run directory: its ``latest`` checkpoint).
        backend : str, optional
            Override the kernel backend (results may differ in the last bits).
        **kw
            Passed to the constructor (``run_dir``, ``callbacks``, ``verbose``...).

        Returns
        -------
        Trainer
            Ready for :meth:`fit` to continue.

        Raises
        ------
        CheckpointError
            If the checkpoint is missing, corrupted or incompatible.
        """
        path = os.fspath(path)
        if not os.path.exists(os.path.join(path, "meta.json")):
            latest = checkpoint.read_latest(path)
            if latest is None:
                raise checkpoint.CheckpointError(
                    f"{path} is neither a checkpoint nor a run directory with a 'latest' file.")
            path = latest
        weights, arrays, meta = checkpoint.load(path)
        if meta.get("model_class") != "SparseMLP":
            raise checkpoint.CheckpointError(
                f"{path} holds a {meta.get('model_class')!r}, not a SparseMLP checkpoint.")
        try:
            cfg = TrainConfig.from_dict(meta["config"], source=f"{path}/meta.json").resolve()
        except (ValueError, TypeError) as exc:
            raise checkpoint.CheckpointError(f"{path}/meta.json has an invalid config: {exc}") \
                from None
        if backend is not None:
            cfg = dataclasses.replace(cfg, backend=backend)
        streams = Streams.from_state_dict(meta["streams"])
        ks = _kernels.get(cfg.backend)
        schedules = [ClashFreeSchedule.from_state_dict(arrays, f"layers.{i}.schedule.")
                     for i in range(len(weights))]
        model = build_model(cfg, weights[0].shape[0], weights[-1].shape[1], rng=None,
                            kernels=ks, weights=weights, schedules=schedules)
        for i, layer in enumerate(model.layers):
            layer.b[:] = arrays[f"layers.{i}.bias"]
        tr = cls(model, cfg, streams=streams, **kw)
        tr.optimizer.load_state_dict(arrays)
        tr.epoch = int(meta["epoch"])
        tr.step = int(meta["step"])
        tr.best_accuracy = meta.get("best_accuracy")
        tr.history.records = list(meta.get("history", []))
        if tr.history.path is not None:
            tr.history.truncate_file(tr.epoch)
            tr.history.records = list(meta.get("history", []))
        if meta.get("mid_epoch"):
            tr._resume = dict(meta["mid_epoch"], order=arrays["trainer.order"],
                              batch_losses=list(arrays["trainer.batch_losses"]))
        return tr

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
        for cb in self.callbacks:
            cb.on_train_begin(self)
        try:
            with thread_limit(cfg.threads), _InterruptFlag() as flag:
                while self.epoch < n_epochs and not self.stop_training:
                    self._run_epoch(X, y, X_test, y_test, n_epochs, flag)
            if self.run_dir is not None:
                self.save(os.path.join(self.run_dir, "final"))
                checkpoint.write_latest(self.run_dir, "final")
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

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
        cfg, model, st = self.config, self.model, self.streams
        e = self.epoch
        n = X.shape[0]
        B = cfg.batch_size
        n_batches = n // B if cfg.drop_last else -(-n // B)
        if n_batches == 0:
            raise ValueError(f"batch_size={B} exceeds the {n} training samples with drop_last; "
                             "lower --batch-size.")
        res = self._resume
        self._resume = None
        if res is not None:
            order = res["order"]
            start = int(res["batch"])
            losses = res["batch_losses"]
            drop_rng = _restore_rng(st, e, res.get("dropout_rng"))
        else:
            if st.legacy:
                order = np.arange(n)
                st.get("shuffle").shuffle(order)
            else:
                order = st.get("shuffle", e).permutation(n)
            start, losses = 0, []
            drop_rng = st.get("dropout", e)
        lr = lr_at(cfg.lr_schedule, cfg.lr, e, n_epochs, gamma=cfg.lr_gamma,
                   step_size=cfg.lr_step_size, lr_min=cfg.lr_min, warmup=cfg.warmup_epochs)
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
                        raise FloatingPointError(self._diverged_msg(e, j, lv))
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
                        raise KeyboardInterrupt
        finally:
            bar.close()
        self._check_weights(e)
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
        record.update(
            nnz=model.nnz(), dense_params=model.dense_params(),
            seconds_train=self.timer.pop("train"), seconds_evolution=self.timer.pop("evolution"),
            seconds_eval=self.timer.pop("eval"), peak_rss_mb=peak_rss_mb())
        self.epoch = e + 1
        self.history.append(record)
        self._log(record, n_epochs)
        for cb in self.callbacks:
            if cb.on_epoch_end(self, record):
                self.stop_training = True
        if (self.run_dir is not None and cfg.checkpoint_every
                and self.epoch % cfg.checkpoint_every == 0 and self.epoch < n_epochs):
            self._save_epoch_checkpoint(f"epoch-{self.epoch:04d}")

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
                if prune_now and i < n - 1:
                    keep = importance_prune(layer, cfg.prune_percentile)
                    self.optimizer.remap(2 * i, keep, np.empty(0, np.int64),
                                         new_param=layer.W.data)
                    changed = True
                    self._drop_schedule(i, "importance pruning")
                if cfg.rewire == "degree-preserving":
                    res = evolve_degree_preserving(layer, zeta=cfg.zeta_for(i, n), rng=rng,
                                                   init=cfg.init, normal_std=cfg.normal_std,
                                                   swaps=cfg.swaps)
                else:
                    res = evolve(layer, zeta=cfg.zeta_for(i, n), rng=rng, init=cfg.init,
                                 normal_std=cfg.normal_std)
                    if res.n_removed:
                        self._drop_schedule(i, "SET rewiring")
                self.optimizer.remap(2 * i, res.keep_index, res.new_positions,
                                     new_param=layer.W.data)
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

    def _check_weights(self, e):
        for i, layer in enumerate(self.model.layers):
            if not (np.isfinite(layer.W.data).all() and np.isfinite(layer.b).all()):
                raise FloatingPointError(
                    f"layer {i} has non-finite weights after epoch {e + 1}. Lower the learning "
                    f"rate (now {self.config.lr}) or scale the inputs (e.g. normalize='zscore').")

    def _diverged_msg(self, e, j, lv):
        bad = [i for i, la in enumerate(self.model.layers) if not np.isfinite(la.W.data).all()]
        where = f" (non-finite weights in layer(s) {bad})" if bad else ""
        return (f"the training loss became {lv} at epoch {self.epoch + 1}, batch {j + 1}{where}. "
                f"Lower the learning rate (now {self.config.lr}) or scale the inputs "
                "(e.g. normalize='zscore').")

    def _log(self, r, n_epochs):
        if not self.verbose:
            return
        parts = [f"epoch {r['epoch']}/{n_epochs}", f"train_loss {r['train_loss']:.5g}"]
        if r.get("test_accuracy") is not None:
            parts += [f"test_loss {r['test_loss']:.5g}", f"test_acc {r['test_accuracy']:.4f}",
                      f"best {r['best_test_accuracy']:.4f}"]
        parts += [f"nnz {sum(r['nnz'])}",
                  f"time {r['seconds_train']:.2f}+{r['seconds_evolution']:.2f}"
                  f"+{r['seconds_eval']:.2f}s", f"rss {r['peak_rss_mb']:.0f}MiB"]
        logger.info("  ".join(parts))

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
            Config, counters, RNG state, history.
        """
        weights = [layer.W for layer in self.model.layers]
        arrays = {f"layers.{i}.bias": layer.b for i, layer in enumerate(self.model.layers)}
        for i, layer in enumerate(self.model.layers):
            if layer.schedule is not None:
                arrays.update(layer.schedule.state_dict(f"layers.{i}.schedule."))
        arrays.update(self.optimizer.state_dict())
        meta = {
            "model_class": "SparseMLP",
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_accuracy": self.best_accuracy,
            "streams": self.streams.state_dict(),
            "backend": self.model.kernels.name,
            "history": self.history.records,
        }
        return weights, arrays, meta

    def save(self, path):
        """Write a checkpoint of the current state to ``path`` (atomically).

        Parameters
        ----------
        path : str or path-like
            Checkpoint directory.

        Returns
        -------
        str
            The path.
        """
        weights, arrays, meta = self.state()
        return checkpoint.save(path, weights=weights, arrays=arrays, meta=meta)

    def _save_epoch_checkpoint(self, name, extra_arrays=None, extra_meta=None):
        ck_root = os.path.join(self.run_dir, "checkpoints")
        weights, arrays, meta = self.state()
        arrays.update(extra_arrays or {})
        meta.update(extra_meta or {})
        checkpoint.save(os.path.join(ck_root, name), weights=weights, arrays=arrays, meta=meta)
        checkpoint.write_latest(self.run_dir, os.path.join("checkpoints", name))
        kept = sorted(d for d in os.listdir(ck_root) if d.startswith("epoch-") and ".tmp" not in d)
        for old in kept[:-self.config.keep_checkpoints]:
            if old != name:
                shutil.rmtree(os.path.join(ck_root, old), ignore_errors=True)

    def _save_interrupt(self, e, next_batch, order, losses, drop_rng):
        if self.run_dir is None:
            return
        rng_state = None
        if isinstance(drop_rng, np.random.Generator):
            rng_state = _json_state(drop_rng.bit_generator.state)
        name = f"epoch-{e:04d}-step-{next_batch:06d}"
        self._save_epoch_checkpoint(
            name,
            extra_arrays={"trainer.order": order, "trainer.batch_losses": np.asarray(losses)},
            extra_meta={"mid_epoch": {"batch": next_batch, "dropout_rng": rng_state}})
        logger.warning("saved checkpoint %s; resume with --resume %s", name, self.run_dir)


class _LayerStep:
    """``on_layer`` callback of a serial step: update layer i's W.data and b right away."""

    __slots__ = ("opt", "grads", "div", "lr")

    def __init__(self, opt, grads, div, lr):
        self.opt, self.grads, self.div, self.lr = opt, grads, div, lr

    def __call__(self, i):
        self.opt.step(self.grads, self.div, lr=self.lr, only=(2 * i, 2 * i + 1),
                      advance=i == 0)


def _json_state(state):
    """bit_generator.state with big ints as strings (JSON-safe)."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**53:
            return {"__int__": str(v)}
        return v
    return conv(state)


def _from_json_state(state):
    def conv(v):
        if isinstance(v, dict):
            if set(v) == {"__int__"}:
                return int(v["__int__"])
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(state)


def _restore_rng(streams, epoch, state):
    if streams.legacy:
        return streams.get("dropout")
    g = streams.get("dropout", epoch)
    if state is not None:
        g.bit_generator.state = _from_json_state(state)
    return g


def _one_hot(labels, n_out, dtype):
    yt = np.zeros((n_out, labels.shape[0]), dtype)
    if n_out == 1:
        yt[0] = labels
    else:
        yt[labels, np.arange(labels.shape[0])] = 1
    return yt
