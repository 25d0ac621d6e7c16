"""One optimizer step of the MLP trainer: loss and output delta, serial and data-parallel steps."""

import math

import numpy as np

from .._rng import ShardedGenerator
from ..nn.batching import batch_t
from ..nn.functions import loss_value, output_delta
from .dataparallel import shard_bounds

__all__ = ["StepMixin", "LayerStep", "one_hot"]


class StepMixin:
    """The per-batch methods of :class:`~sparsemlp.training.mlp.Trainer` (one step each)."""

    def _train_step(self, X, y, idx, drop_rng, lr, e, j, flag, aug):
        """One optimizer step on batch ``idx``; returns the batch loss and whether to stop."""
        if not self._stream:
            return self._shard_step(X, y, idx, drop_rng, lr, e, j, flag.set, aug)
        lv, delta = self._loss_delta(X, y, idx, drop_rng, aug=aug, key=(e, j))
        if delta is None:
            raise FloatingPointError(self._diverged_msg(e, j, lv, X))
        self.model.backward(delta, self._grads,
                            LayerStep(self.optimizer, self._grads, idx.shape[0], lr,
                                      self.model.n_layer_params()))
        return lv, flag.set

    def _loss_delta(self, X, y, idx, rng, lo=0, hi=None, aug=None, key=None):
        """Loss and output delta (None if not finite) of samples ``idx[lo:hi]``; augmentation
        runs on the whole batch, so any number of ranks sees the same augmented samples."""
        cfg, model = self.config, self.model
        rows = idx[lo:hi]
        if aug is None:
            xt = batch_t(X, rows, model.dtype)
        else:
            xt = np.ascontiguousarray(aug(batch_t(X, idx, model.dtype), *key)[:, lo:hi])
        yt = one_hot(y[rows], model.layers[-1].n_out, model.dtype)
        yhat = model.forward(xt, train=True, rng=rng)
        lv = loss_value(cfg.loss, yhat, yt)
        if not math.isfinite(lv):
            model._cache = None
            return lv, None
        quirk = cfg.mode == "reference" and cfg.loss == "mse"
        return lv, output_delta(cfg.loss, model.activations[-1], model._cache[-1][1], yhat, yt,
                                set_quirk=quirk)

    def _shard_step(self, X, y, idx, rng, lr, e, j, stop, aug=None):
        """One step on this rank's share of batch ``idx``; the gradient sums are summed over
        ranks and every rank applies the same update. Returns the batch loss and whether
        any rank was asked to stop."""
        B = idx.shape[0]
        lo, hi = shard_bounds(B, self.comm.size, self.comm.rank)
        lv, delta = self._loss_delta(X, y, idx, ShardedGenerator(rng, B, lo, hi), lo, hi,
                                     aug=aug, key=(e, j))
        if delta is None:
            self._flat[:] = 0.0  # the loss sum below is not finite on every rank
        else:
            self.model.backward(delta, self._grads)
        total, stop = self._reduce(self._flat, lv * (hi - lo), stop)
        if not math.isfinite(total):
            raise FloatingPointError(self._diverged_msg(e, j, total / B, X))
        self.optimizer.step(self._grads, B, lr=lr)
        return total / B, stop


class LayerStep:
    """``on_layer`` callback of a serial step: update layer i's W.data and b right away.

    The parameters of activations (SReLU), which follow the layers' ``W.data, b`` in the
    optimizer's list (from index ``n_layer_params`` on), are complete when the backward
    pass reaches layer 0 and are updated then, before it (the step is counted last).

    Parameters
    ----------
    opt : SGD or Adam
        The optimizer.
    grads : list of ndarray
        Gradient views aligned with the optimizer's parameters.
    div : int
        Samples of the batch.
    lr : float
        Learning rate of the step.
    n_layer_params : int, optional
        ``2 * n_layers``; default: every parameter is a layer's.
    """

    __slots__ = ("opt", "grads", "div", "lr", "extra")

    def __init__(self, opt, grads, div, lr, n_layer_params=None):
        self.opt, self.grads, self.div, self.lr = opt, grads, div, lr
        n = len(opt.params)
        self.extra = range(n if n_layer_params is None else n_layer_params, n)

    def __call__(self, i):
        if i == 0 and self.extra:
            self.opt.step(self.grads, self.div, lr=self.lr, only=self.extra, advance=False)
        self.opt.step(self.grads, self.div, lr=self.lr, only=(2 * i, 2 * i + 1),
                      advance=i == 0)


def one_hot(labels, n_out, dtype):
    """Targets of shape (n_out, B): one-hot columns, or the labels themselves for one output.

    Parameters
    ----------
    labels : ndarray of int of shape (B,)
        Class indices.
    n_out : int
        Outputs of the model.
    dtype : dtype
        Output dtype.

    Returns
    -------
    ndarray of shape (n_out, B)
        The targets.
    """
    yt = np.zeros((n_out, labels.shape[0]), dtype)
    if n_out == 1:
        yt[0] = labels
    else:
        yt[labels, np.arange(labels.shape[0])] = 1
    return yt
