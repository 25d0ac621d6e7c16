"""TrainerBase: run directory, epoch bookkeeping, checkpoints, Ctrl-C and exact resume of both trainers."""

import os
import shutil
import signal
import time

import numpy as np

from .. import _kernels
from .._parallel import thread_limit
from .._rng import Streams
from ..nn.optim import flat_views, lr_at, make_optimizer
from . import checkpoint
from .build import model_from_state
from .comm import SerialComm
from .dataparallel import TAIL, check_same_state
from .history import History, PhaseTimer, peak_rss_mb
from .loading import read_checkpoint
from .rundir import checkpoint_key
from .signals import _interrupted


class TrainerBase:
    """What :class:`~sparsemlp.trainer.Trainer` and :class:`~sparsemlp.rbm_trainer.RBMTrainer` share.

    A subclass sets the class attributes below and provides ``state()`` (weights, arrays,
    meta of a checkpoint), ``_model_from_checkpoint`` (its model from those) and
    ``_load_extra_state`` (its own counters); it writes the batch loop of one epoch between
    ``_n_batches`` / ``_epoch_start`` / ``_lr`` and ``_end_epoch``, and its ``fit`` calls
    ``_fit``. The run directory is ``metrics.jsonl``, ``checkpoints/``
    (the last ``keep_checkpoints`` kept), ``latest`` and ``final/`` (see the README).

    Parameters
    ----------
    model : SparseMLP or SparseRBM
        The model (updated in place); it provides ``parameters()`` and ``kernels``.
    config : TrainConfig
        Resolved configuration.
    streams : Streams
        Random streams.
    run_dir : str or path-like, optional
        Where the run's files go; without it nothing is written.
    callbacks : sequence of Callback, optional
        Hooks.
    comm : communicator, optional
        ``SerialComm`` (one process, the default), or one rank of a data-parallel run
        (``sparsemlp.distributed``): every rank holds the whole model, trains on its share
        of each batch and sums the gradients with the others; only the trainer of rank 0
        should get a ``run_dir``.
    verbose : bool, default=True
        Progress bar on a terminal and one INFO line per epoch.
    """

    #: ``meta.json`` ``model_class`` of the checkpoints this trainer writes and reads.
    _model_class = None
    #: Stream of the per-batch randomness whose generator state a Ctrl-C checkpoint keeps.
    _rng_stream = None
    #: ``mid_epoch`` key of that generator state, and name of the per-batch values kept.
    _rng_key = None
    _batch_key = None
    #: The subclass's module logger (epoch lines, checkpoint notices).
    _logger = None
    #: Keys (and their types) of ``meta.json`` that the subclass reads besides the shared ones.
    _meta_keys = {}

    def __init__(self, model, config, *, streams, run_dir=None, callbacks=(), comm=None,
                 verbose=True):
        self.comm = comm if comm is not None else SerialComm()
        self.model = model
        self.config = config
        self.streams = streams
        self.run_dir = None
        self.history = History(None)
        if run_dir is not None:
            self.set_run_dir(run_dir)
        self.callbacks = list(callbacks)
        self.verbose = verbose
        cfg = config
        self.optimizer = make_optimizer(
            cfg.optimizer, model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
            kernels=model.kernels, no_decay=_no_decay(model),
            **(dict(momentum=cfg.momentum, nesterov=cfg.nesterov, decay=cfg.decay)
               if cfg.optimizer == "sgd" else
               dict(beta1=cfg.adam_beta1, beta2=cfg.adam_beta2, adam_eps=cfg.adam_eps,
                    decoupled=cfg.decay != "coupled")))
        self.epoch = 0
        self.step = 0
        self._resume = None  # mid-epoch state restored from a checkpoint
        self.timer = PhaseTimer()
        self._seconds_comm = 0.0  # in the gradient sums of this epoch (part of seconds_train)
        self.stop_training = False

    def set_run_dir(self, run_dir):
        """Write the run's files to ``run_dir`` from now on (created if needed).

        Parameters
        ----------
        run_dir : str or path-like
            Run directory: ``metrics.jsonl`` is appended to, checkpoints go there.
        """
        self.run_dir = os.fspath(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        self.history.path = os.path.join(self.run_dir, "metrics.jsonl")

    # -- construction --------------------------------------------------------------------
    @classmethod
    def _from_config(cls, cfg, build, *sizes, streams=None, **kw):
        """A trainer at epoch 0 on ``build(cfg, *sizes, rng=..., kernels=...)`` (cfg resolved)."""
        streams = streams or Streams(cfg.seed, legacy=cfg.legacy_rng)
        ks = _kernels.get(cfg.backend)
        with thread_limit(cfg.threads):
            model = build(cfg, *sizes, rng=streams.get("init"), kernels=ks)
        return cls(model, cfg, streams=streams, **kw)

    @classmethod
    def from_checkpoint(cls, path, *, backend=None, **kw):
        """Rebuild a trainer exactly as it was when ``path`` was saved.

        Parameters
        ----------
        path : str or path-like
            Checkpoint directory, or a run directory (its ``latest`` checkpoint, or its
            newest complete one if ``latest`` is missing).
        backend : str, optional
            Override the kernel backend (results may differ in the last bits).
        **kw
            Passed to the constructor (``run_dir``, ``callbacks``, ``verbose``...).

        Returns
        -------
        TrainerBase
            A trainer of the class this is called on, ready for ``fit`` to continue.

        Raises
        ------
        CheckpointError
            If the checkpoint is missing, corrupted, incompatible or of the other model.
        """
        path, cfg, weights, arrays, meta = read_checkpoint(
            path, model_class=cls._model_class, backend=backend, meta_keys=cls._meta_keys)
        where = os.path.join(path, "meta.json")
        try:
            streams = Streams.from_state_dict(meta["streams"])
            model = model_from_state(cfg, cls._model_class, weights, arrays,
                                     _kernels.get(cfg.backend))
            tr = cls(model, cfg, streams=streams, **kw)
            tr.optimizer.load_state_dict(arrays)
            tr.epoch, tr.step = meta["epoch"], meta["step"]
            tr._load_extra_state(arrays, meta)
            mid = meta.get("mid_epoch")
            if mid:
                key = cls._batch_key
                tr._resume = dict(mid, order=arrays["trainer.order"],
                                  **{key: list(arrays[f"trainer.{key}"])})
                checkpoint.check_meta(tr._resume, where + " (mid_epoch)", batch=int)
        except KeyError as exc:
            raise checkpoint.CheckpointError(
                f"{path} lacks {exc.args[0]!r} (in meta.json or state.npz): the checkpoint is "
                "incomplete or was not written by this model. Resume from another checkpoint."
            ) from None
        except (ValueError, TypeError) as exc:
            if isinstance(exc, checkpoint.CheckpointError):
                raise
            raise checkpoint.CheckpointError(f"{path} cannot be restored: {exc}") from None
        tr.history.records = list(meta["history"])
        if tr.history.path is not None:
            tr.history.truncate_file(tr.epoch)
            tr.history.records = list(meta["history"])
        return tr

    def _load_extra_state(self, arrays, meta):
        """Restore the subclass's own counters from a checkpoint (after epoch and step)."""

    # -- training ------------------------------------------------------------------------
    def _fit(self, n_epochs, run_epoch, interrupt_flag):
        """Callbacks, epochs until ``n_epochs`` (or a stop), then ``final/`` and ``latest``.

        ``run_epoch(flag)`` trains one epoch; ``interrupt_flag`` is the subclass module's
        ``_InterruptFlag``, looked up at each call so that tests can replace it.
        """
        for cb in self.callbacks:
            cb.on_train_begin(self)
        flag = interrupt_flag()
        if self.run_dir is None and self.comm.size == 1 and hasattr(flag, "signals"):
            flag.signals = (signal.SIGINT,)  # nothing to save: SIGTERM keeps its default
        if self.comm.size > 1:
            self._check_ranks("at the start of training")
        try:
            with thread_limit(self.config.threads), flag:
                while self.epoch < n_epochs and not self.stop_training:
                    run_epoch(flag)
                    # a signal during evaluation/evolution (on any rank)
                    if self._any_rank(flag.set) and self.epoch < n_epochs:
                        self._save_signal_checkpoint()
                        raise _interrupted(flag)
            if self.run_dir is not None:
                self.save(os.path.join(self.run_dir, "final"))
                checkpoint.write_latest(self.run_dir, "final")
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

    # -- data parallelism ----------------------------------------------------------------
    def _any_rank(self, value):
        """Whether ``value`` is true on any rank (itself with one rank)."""
        if self.comm.size == 1:
            return bool(value)
        return bool(self.comm.allreduce_sum_(np.array([1.0 if value else 0.0]))[0] > 0)

    def _check_ranks(self, when):
        """Stop unless every rank holds the same topology at the same epoch and step."""
        check_same_state(self.comm, self.model.sparse_layers(), when,
                         extra=(self.epoch, self.step))

    def _flat_grads(self):
        """The flat gradient buffer of a multi-rank step: parameters, then ``TAIL`` values."""
        flat, views = flat_views([*self.model.parameters(), np.empty(TAIL)], self.model.dtype)
        views.pop()
        return flat, views

    def _reduce(self, flat, local_sum, stop):
        """Sum ``flat`` over ranks with the rank's metric sum and stop flag in its tail.

        Returns the metric summed over ranks and whether any rank was asked to stop.
        """
        flat[-TAIL] = local_sum
        flat[-TAIL + 1] = 1.0 if stop else 0.0
        t0 = time.perf_counter()
        self.comm.allreduce_sum_(flat)
        self._seconds_comm += time.perf_counter() - t0
        return float(flat[-TAIL]), bool(flat[-TAIL + 1] > 0)

    def _n_batches(self, n):
        B = self.config.batch_size
        n_batches = n // B if self.config.drop_last else -(-n // B)
        if n_batches == 0:
            raise ValueError(f"batch_size={B} exceeds the {n} training samples with drop_last; "
                             "lower --batch-size.")
        return n_batches

    def _epoch_start(self, n):
        """Sample order, first batch, per-batch values so far and the batch generator.

        A fresh epoch shuffles (keyed by epoch, or the legacy stream); an epoch resumed
        from a Ctrl-C checkpoint continues its saved order, values and generator state.
        """
        st, e = self.streams, self.epoch
        res, self._resume = self._resume, None
        if res is not None:
            rng = st.get(self._rng_stream, e)  # the shared RandomState in legacy mode
            state = res.get(self._rng_key)
            if state is not None and not st.legacy:
                rng.bit_generator.state = _from_json_state(state)
            return res["order"], int(res["batch"]), res[self._batch_key], rng
        if st.legacy:
            order = np.arange(n)
            st.get("shuffle").shuffle(order)
        else:
            order = st.get("shuffle", e).permutation(n)
        return order, 0, [], st.get(self._rng_stream, e)

    def _lr(self, n_epochs):
        cfg = self.config
        return lr_at(cfg.lr_schedule, cfg.lr, self.epoch, n_epochs, gamma=cfg.lr_gamma,
                     step_size=cfg.lr_step_size, lr_min=cfg.lr_min, warmup=cfg.warmup_epochs)

    def _end_epoch(self, record, n_epochs, *, nnz, dense_params):
        """Sizes, phase times and RSS into ``record``; history, log, callbacks, checkpoint."""
        record.update(
            nnz=nnz, dense_params=dense_params,
            seconds_train=self.timer.pop("train"), seconds_evolution=self.timer.pop("evolution"),
            seconds_eval=self.timer.pop("eval"), peak_rss_mb=peak_rss_mb(),
            ranks=self.comm.size, seconds_comm=self._seconds_comm)
        self._seconds_comm = 0.0
        self.epoch += 1
        self.history.append(record)
        if self.verbose:
            self._logger.info("  ".join(
                [f"epoch {record['epoch']}/{n_epochs}", *self._log_parts(record),
                 f"nnz {sum(record['nnz'])}",
                 f"time {record['seconds_train']:.2f}+{record['seconds_evolution']:.2f}"
                 f"+{record['seconds_eval']:.2f}s", f"rss {record['peak_rss_mb']:.0f}MiB"]))
        for cb in self.callbacks:
            if cb.on_epoch_end(self, record):
                self.stop_training = True
        if self.comm.size > 1:  # a callback that stops one rank stops them all
            self.stop_training = self._any_rank(self.stop_training)
        if (self.run_dir is not None and self.config.checkpoint_every
                and self.epoch % self.config.checkpoint_every == 0 and self.epoch < n_epochs):
            self._save_epoch_checkpoint(f"epoch-{self.epoch:04d}")

    def _log_parts(self, record):
        """The model's metrics of the epoch's INFO line."""
        return []

    # -- checkpoints ---------------------------------------------------------------------
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
        kept = sorted((d for d in os.listdir(ck_root) if checkpoint_key(d) is not None),
                      key=checkpoint_key)
        for old in kept[:-self.config.keep_checkpoints]:
            if old != name:
                shutil.rmtree(os.path.join(ck_root, old), ignore_errors=True)

    def _save_signal_checkpoint(self):
        """Checkpoint at an epoch boundary after a signal (unless the epoch's own exists)."""
        if self.run_dir is None:
            return
        name = f"epoch-{self.epoch:04d}"
        if not os.path.isdir(os.path.join(self.run_dir, "checkpoints", name)):
            self._save_epoch_checkpoint(name)
        self._logger.warning("saved checkpoint %s; resume with --resume %s", name, self.run_dir)

    def _save_interrupt(self, e, next_batch, order, values, rng):
        """Ctrl-C checkpoint of epoch ``e`` before batch ``next_batch`` (with a run directory)."""
        if self.run_dir is None:
            return
        state = (_json_state(rng.bit_generator.state)
                 if isinstance(rng, np.random.Generator) else None)
        name = f"epoch-{e:04d}-step-{next_batch:06d}"
        self._save_epoch_checkpoint(
            name,
            extra_arrays={"trainer.order": order, f"trainer.{self._batch_key}": np.asarray(values)},
            extra_meta={"mid_epoch": {"batch": next_batch, self._rng_key: state}})
        self._logger.warning("saved checkpoint %s; resume with --resume %s", name, self.run_dir)


def _no_decay(model):
    """Indices of the parameters not weight-decayed: those of activations (SReLU)."""
    if not hasattr(model, "n_layer_params"):
        return ()
    return range(model.n_layer_params(), len(model.parameters()))


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
