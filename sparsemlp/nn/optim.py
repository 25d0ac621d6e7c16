"""Optimizers (SGD with momentum, Adam) with state aligned to W.data and b; learning-rate schedules."""

import math

import numpy as np

from .. import _kernels
from .._validation import check_param

__all__ = ["SGD", "Adam", "make_optimizer", "lr_at", "SCHEDULES", "flat_views"]


def flat_views(params, dtype):
    """One flat buffer with a view per parameter (the gradient layout optimizers consume).

    Parameters
    ----------
    params : list of ndarray
        1-D parameter arrays, in the optimizer's order.
    dtype : numpy dtype
        Dtype of the buffer.

    Returns
    -------
    flat : ndarray
        Uninitialised buffer of length ``sum(len(p))``.
    views : list of ndarray
        Consecutive views of ``flat``, one per parameter, same lengths.
    """
    flat = np.empty(sum(p.shape[0] for p in params), dtype)
    views, o = [], 0
    for p in params:
        views.append(flat[o:o + p.shape[0]])
        o += p.shape[0]
    return flat, views


class _Optimizer:
    """Shared machinery: per-parameter state arrays aligned with the parameter arrays."""

    state_names: tuple = ()

    def __init__(self, params, *, lr, weight_decay, kernels, no_decay=()):
        self.params = list(params)
        self.no_decay = frozenset(int(i) for i in no_decay)
        self.lr = check_param("lr", lr, "float", low=0, low_open=True, owner=type(self).__name__)
        self.weight_decay = check_param("weight_decay", weight_decay, "float", low=0,
                                        owner=type(self).__name__)
        self.kernels = _kernels.resolve(kernels)
        self.n_steps = 0
        self.state = {n: [np.zeros_like(p) for p in self.params] for n in self.state_names}

    def rebind(self, params):
        """Point at new parameter arrays of the same lengths (state kept).

        Parameters
        ----------
        params : list of ndarray
            New parameter arrays, aligned with the old ones.
        """
        params = list(params)
        for p, q in zip(params, self.params):
            if p.shape != q.shape:
                raise ValueError("rebind needs arrays of the same shapes; use remap for topology")
        self.params = params

    def remap(self, param_index, keep_index, new_positions, new_param=None):
        """Carry state across a topology change of parameter ``param_index``.

        Kept connections keep their state (their relative order is unchanged), new ones
        start at zero. O(nnz).

        Parameters
        ----------
        param_index : int
            Position of the changed array in ``params``.
        keep_index : ndarray of int
            Ascending old positions that survived.
        new_positions : ndarray of int
            Ascending positions in the new array that were created.
        new_param : ndarray, optional
            The new parameter array if it was reallocated (nnz changed).
        """
        if new_param is not None:
            self.params[param_index] = new_param
        n_new = self.params[param_index].shape[0]
        fresh = np.zeros(n_new, dtype=bool)
        fresh[new_positions] = True
        for arrays in self.state.values():
            old = arrays[param_index]
            kept = old[keep_index]
            new = old if old.shape[0] == n_new else np.empty(n_new, old.dtype)
            new[~fresh] = kept
            new[fresh] = 0
            arrays[param_index] = new

    def state_dict(self):
        """Flat dict of state arrays and counters (keys ``optim.<name>.<i>``).

        Returns
        -------
        dict
            Arrays and ints.
        """
        d = {"optim.n_steps": self.n_steps}
        for name, arrays in self.state.items():
            for i, a in enumerate(arrays):
                d[f"optim.{name}.{i}"] = a
        return d

    def load_state_dict(self, d):
        """Restore what :meth:`state_dict` returned (copies into the existing arrays).

        Parameters
        ----------
        d : dict
            Saved state.
        """
        self.n_steps = int(d["optim.n_steps"])
        for name, arrays in self.state.items():
            for i in range(len(arrays)):
                src = np.asarray(d[f"optim.{name}.{i}"])
                if src.shape != self.params[i].shape:
                    raise ValueError(
                        f"optimizer state optim.{name}.{i} has shape {src.shape}, but the "
                        f"parameter has {self.params[i].shape}."
                    )
                arrays[i] = np.array(src, dtype=self.params[i].dtype, copy=True)


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, in place on the parameter arrays.

    Parameters
    ----------
    params : list of ndarray
        Parameter arrays (``W.data`` and ``b`` of each layer), updated in place.
    lr : float, default=0.01
        Learning rate.
    momentum : float, default=0.9
        Momentum ``mu`` in [0, 1).
    weight_decay : float, default=2e-4
        Decay ``lambda``.
    nesterov : bool, default=False
        Nesterov momentum.
    decay : {"original", "coupled"}, default="coupled"
        ``"original"`` is the SET code's rule ``v = mu*v - lr*g; w = w + (v - lambda*w)``
        (lambda not scaled by lr, biases decayed too); ``"coupled"`` is the usual L2 form
        ``v = mu*v - lr*(g + lambda*w); w = w + v``.
    kernels : KernelSet or str, default="auto"
        Backend of the fused update kernel.
    no_decay : iterable of int, default=()
        Indices of parameters that are not decayed (the activations' parameters of a
        `SparseMLP`).

    Notes
    -----
    One velocity value per parameter: 4 bytes per connection in float32. Gradients are
    batch sums; ``step`` divides them by ``batch_divisor``.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """

    state_names = ("velocity",)

    def __init__(self, params, *, lr=0.01, momentum=0.9, weight_decay=2e-4, nesterov=False,
                 decay="coupled", kernels="auto", no_decay=()):
        super().__init__(params, lr=lr, weight_decay=weight_decay, kernels=kernels,
                         no_decay=no_decay)
        self.momentum = check_param("momentum", momentum, "float", low=0, high=1,
                                    high_open=True, owner="SGD")
        self.nesterov = check_param("nesterov", nesterov, "bool", owner="SGD")
        self.decay = check_param("decay", decay, "str", options=("original", "coupled"),
                                 owner="SGD")

    def step(self, grads, batch_divisor, lr=None, *, only=None, advance=True):
        """Apply one update from gradient sums.

        Parameters
        ----------
        grads : list of ndarray
            Batch sums aligned with ``params``.
        batch_divisor : float
            Number of samples the sums cover.
        lr : float, optional
            Learning rate for this step (schedules); defaults to ``self.lr``.
        only : sequence of int, optional
            Update only these parameters (a step split over several calls, e.g. layer by
            layer during the backward pass); default all.
        advance : bool, default=True
            Count the step (pass False on every call of a split step but the last).
        """
        lr = self.lr if lr is None else lr
        coupled = int(self.decay == "coupled")
        upd = self.kernels.sgd_update
        vel = self.state["velocity"]
        for i in range(len(self.params)) if only is None else only:
            upd(self.params[i], vel[i], grads[i], lr, self.momentum,
                0.0 if i in self.no_decay else self.weight_decay,
                float(batch_divisor), coupled, int(self.nesterov))
        if advance:
            self.n_steps += 1


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with coupled L2 or decoupled (AdamW) weight decay.

    Parameters
    ----------
    params : list of ndarray
        Parameter arrays, updated in place.
    lr : float, default=1e-3
        Learning rate.
    beta1, beta2 : float, default=0.9, 0.999
        Moment decay rates in [0, 1).
    adam_eps : float, default=1e-8
        Denominator constant.
    weight_decay : float, default=0.0
        Decay.
    decoupled : bool, default=True
        AdamW semantics (``w -= lr*wd*w``) instead of adding ``wd*w`` to the gradient.
    kernels : KernelSet or str, default="auto"
        Backend.
    no_decay : iterable of int, default=()
        Indices of parameters that are not decayed.

    Notes
    -----
    Two state values per parameter: 8 bytes per connection in float32.
    """

    state_names = ("m", "v")

    def __init__(self, params, *, lr=1e-3, beta1=0.9, beta2=0.999, adam_eps=1e-8,
                 weight_decay=0.0, decoupled=True, kernels="auto", no_decay=()):
        super().__init__(params, lr=lr, weight_decay=weight_decay, kernels=kernels,
                         no_decay=no_decay)
        self.beta1 = check_param("beta1", beta1, "float", low=0, high=1, high_open=True,
                                 owner="Adam")
        self.beta2 = check_param("beta2", beta2, "float", low=0, high=1, high_open=True,
                                 owner="Adam")
        self.adam_eps = check_param("adam_eps", adam_eps, "float", low=0, low_open=True,
                                    owner="Adam")
        self.decoupled = check_param("decoupled", decoupled, "bool", owner="Adam")

    def step(self, grads, batch_divisor, lr=None, *, only=None, advance=True):
        """Apply one update from gradient sums (see :meth:`SGD.step`).

        Parameters
        ----------
        grads : list of ndarray
            Batch sums aligned with ``params``.
        batch_divisor : float
            Number of samples the sums cover.
        lr : float, optional
            Learning rate for this step.
        only : sequence of int, optional
            Update only these parameters; default all.
        advance : bool, default=True
            Count the step (False on every call of a split step but the last).
        """
        lr = self.lr if lr is None else lr
        t = self.n_steps + 1
        bc1, bc2 = 1 - self.beta1**t, 1 - self.beta2**t
        upd = self.kernels.adam_update
        ms, vs = self.state["m"], self.state["v"]
        for i in range(len(self.params)) if only is None else only:
            upd(self.params[i], ms[i], vs[i], grads[i], lr, self.beta1, self.beta2,
                self.adam_eps, 0.0 if i in self.no_decay else self.weight_decay,
                float(batch_divisor), bc1, bc2, int(self.decoupled))
        if advance:
            self.n_steps = t


def make_optimizer(name, params, **kw):
    """Build ``SGD`` or ``Adam`` by name.

    Parameters
    ----------
    name : {"sgd", "adam"}
        Optimizer name.
    params : list of ndarray
        Parameters.
    **kw
        Keyword arguments of the class.

    Returns
    -------
    SGD or Adam
        The optimizer.
    """
    if name == "sgd":
        return SGD(params, **kw)
    if name == "adam":
        return Adam(params, **kw)
    raise ValueError(f"Unknown optimizer {name!r}. Choose 'sgd' or 'adam'.")


SCHEDULES = ("constant", "step", "exponential", "cosine", "linear")


def lr_at(schedule, lr, epoch, n_epochs, *, gamma=0.1, step_size=30, lr_min=0.0, warmup=0):
    """Learning rate of ``epoch`` (0-based) under a schedule.

    Parameters
    ----------
    schedule : {"constant", "step", "exponential", "cosine", "linear"}
        ``step``: times ``gamma`` every ``step_size`` epochs; ``exponential``: times
        ``gamma`` per epoch; ``cosine``: cosine annealing to ``lr_min`` over ``n_epochs``;
        ``linear``: linear decay to ``lr_min``.
    lr : float
        Base learning rate.
    epoch, n_epochs : int
        Current epoch and total epochs.
    gamma : float, default=0.1
        Decay factor.
    step_size : int, default=30
        Epochs per step.
    lr_min : float, default=0.0
        Final rate of cosine and linear schedules.
    warmup : int, default=0
        Epochs of linear warm-up from ``lr/warmup`` before the schedule.

    Returns
    -------
    float
        The learning rate.
    """
    if warmup and epoch < warmup:
        return lr * (epoch + 1) / warmup
    e = epoch - warmup
    n = max(1, n_epochs - warmup)
    if schedule == "constant":
        return lr
    if schedule == "step":
        return lr * gamma ** (e // step_size)
    if schedule == "exponential":
        return lr * gamma**e
    if schedule == "cosine":
        return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(e, n) / n))
    if schedule == "linear":
        return lr + (lr_min - lr) * min(e, n) / n
    raise ValueError(f"Unknown lr schedule {schedule!r}. Choose one of {', '.join(SCHEDULES)}.")
