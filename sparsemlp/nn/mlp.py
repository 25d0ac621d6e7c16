"""SparseMLP: a stack of sparse layers (CSR, or structured approximations) with activations and dropout."""

import logging
import warnings

import numpy as np

from .. import _kernels
from .._validation import check_param
from ..topology import erdos_renyi
from .batching import batch_t  # noqa: F401 - batch_t importable from here
from .functions import make_activation
from .layers import SparseLinear
from .stack import LayerStack

__all__ = ["SparseMLP"]

logger = logging.getLogger(__name__)


class SparseMLP(LayerStack):
    """Multilayer perceptron whose weight matrices are all canonical CSR arrays.

    Parameters
    ----------
    layers : list of SparseLinear or StructuredLayer
        Weight layers, ``layers[l].n_out == layers[l + 1].n_in``: CSR layers, or structured
        ones (`sparsemlp.approx`, see :meth:`replace_layer`).
    activations : list of Activation
        One per layer; the last is the output activation.
    dropout : float, default=0.0
        Dropout rate on hidden activations during training.
    dropout_kind : {"inverted", "original"}, default="inverted"
        ``"inverted"``: the mask scales by ``1/(1-rate)`` and also gates the backward delta.
        ``"original"`` (the SET tutorials of Mocanu et al.): the mask is applied unscaled in
        training and not to the backward delta; at inference the pre-activations of every
        layer after the first (bias included) are multiplied by ``1 - rate``.

    See Also
    --------
    SparseMLP.erdos_renyi : Build a model with Erdős–Rényi layers.

    Notes
    -----
    Activations are feature-major inside the model: ``forward`` takes ``xt`` of shape
    (n_features, batch). Training memory is about 24 bytes per connection in
    float32/int32 with SGD + momentum (weights, indices, transposed index, velocity,
    gradient) plus activations.
    """

    def __init__(self, layers, activations, *, dropout=0.0, dropout_kind="inverted"):
        if len(layers) != len(activations) or not layers:
            raise ValueError("SparseMLP needs one activation per layer and at least one layer.")
        for a, b in zip(layers[:-1], layers[1:]):
            if a.n_out != b.n_in:
                raise ValueError(f"layer sizes do not chain: {a.n_out} outputs feed {b.n_in} inputs.")
        self.layers = list(layers)
        self.activations = list(activations)
        if hasattr(self.activations[-1], "params"):
            raise ValueError(f"the output activation cannot have parameters (got "
                             f"{self.activations[-1].name!r}); use it on hidden layers only.")
        for i, act in self.param_activations():
            if act.params.shape[1] != self.layers[i].n_out or act.params.dtype != self.layers[i].dtype:
                raise ValueError(f"activation {i} ({act.name}) has {act.params.shape[1]} "
                                 f"{act.params.dtype} units; layer {i} has "
                                 f"{self.layers[i].n_out} {self.layers[i].dtype} outputs.")
        self.dropout = check_param("dropout", dropout, "float", low=0, high=1, high_open=True,
                                   owner="SparseMLP")
        self.dropout_kind = check_param("dropout_kind", dropout_kind, "str",
                                        options=("inverted", "original"), owner="SparseMLP")
        self._cache = None

    @classmethod
    def erdos_renyi(cls, sizes, *, epsilon=20.0, law="bernoulli", init="he_uniform",
                    activation="relu", output_activation="softmax", alpha=0.6, dropout=0.0,
                    dtype=np.float32, rng, kernels="auto", normal_std=0.1, index_dtype=None,
                    dropout_kind="inverted"):
        """Build a SparseMLP with Erdős–Rényi layers (SET's initial topology).

        Parameters
        ----------
        sizes : sequence of int
            Units per layer, inputs first: ``(n_features, h1, ..., n_outputs)``.
        epsilon : float, default=20.0
            ER sparsity parameter: density ``epsilon*(n_in+n_out)/(n_in*n_out)``. Layers
            where that exceeds 1 (narrow output layers) are built fully dense, with a
            warning.
        law : {"bernoulli", "draws"}, default="bernoulli"
            Topology law: independent entries, or the draws with replacement of the original
            SET code (Mocanu et al. 2018).
        init : {"he_uniform", "xavier_uniform", "normal"}, default="he_uniform"
            Weight initialisation; ``normal`` is N(0, normal_std²) as the original.
        activation : str, default="relu"
            Hidden activation (see :data:`sparsemlp.functions.ACTIVATIONS`); the parameters
            of ``srelu`` are drawn from ``rng`` after every layer's weights.
        output_activation : str, default="softmax"
            Output activation.
        alpha : float, default=0.6
            Slope for ``leaky_relu`` / ``all_relu``.
        dropout : float, default=0.0
            Dropout rate on hidden layers.
        dtype : dtype, default=np.float32
            float32 or float64.
        rng : numpy.random.Generator or numpy.random.RandomState
            Random source (a RandomState reproduces the original's draw order).
        kernels : str or KernelSet, default="auto"
            Kernel backend.
        normal_std : float, default=0.1
            Standard deviation of ``init="normal"``.
        index_dtype : dtype, optional
            Force int32 or int64 indices.
        dropout_kind : {"inverted", "original"}, default="inverted"
            Dropout semantics, see :class:`SparseMLP`.

        Returns
        -------
        SparseMLP
            The model, biases zero.

        Raises
        ------
        ValueError
            For invalid sizes or hyperparameters.

        Examples
        --------
        >>> import numpy as np
        >>> from sparsemlp import SparseMLP
        >>> m = SparseMLP.erdos_renyi([64, 100, 10], epsilon=5, rng=np.random.default_rng(0))
        >>> [layer.W.shape for layer in m.layers]
        [(64, 100), (100, 10)]
        """
        sizes = [check_param(f"sizes[{i}]", s, "int", low=1, owner="SparseMLP")
                 for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output size. Got {sizes}.")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64. Got {dtype}.")
        ks = _kernels.resolve(kernels)
        layers = []
        n_layers = len(sizes) - 1
        for i in range(n_layers):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                W = erdos_renyi(sizes[i], sizes[i + 1], epsilon=epsilon, law=law, init=init,
                                rng=rng, dtype=dtype, index_dtype=index_dtype, saturate=True,
                                normal_std=normal_std)
            for w in caught:  # dense narrow layers are normal in SET nets: say so, quietly
                logger.info("layer %d: %s", i, w.message)
            layers.append(SparseLinear(W, kernels=ks))
        # after every layer, so that a model's topology is the same for every activation
        acts = _activations(layers, activation, output_activation, alpha, rng)
        return cls(layers, acts, dropout=dropout, dropout_kind=dropout_kind)

    @classmethod
    def from_weights(cls, weights, *, biases=None, schedules=None, activation="relu",
                     output_activation="softmax", alpha=0.6, dropout=0.0, dropout_kind="inverted",
                     kernels="auto", rng=None):
        """Build a SparseMLP around given CSR weights (pre-defined or loaded topologies).

        Parameters
        ----------
        weights : sequence of scipy.sparse.csr_array or layer
            Canonical CSR weights, ``weights[l].shape[1] == weights[l + 1].shape[0]``, used by
            reference; or ready layers (a structured layer of `sparsemlp.approx`).
        biases : sequence of ndarray, optional
            One per layer; zeros if omitted.
        schedules : sequence of ClashFreeSchedule or None, optional
            Cycle schedules of clash-free layers, stored as ``layers[l].schedule``.
        activation : str, default="relu"
            Hidden activation.
        output_activation : str, default="softmax"
            Output activation.
        alpha : float, default=0.6
            Slope for ``leaky_relu`` / ``all_relu``.
        dropout : float, default=0.0
            Dropout rate on hidden layers.
        dropout_kind : {"inverted", "original"}, default="inverted"
            Dropout semantics, see :class:`SparseMLP`.
        kernels : str or KernelSet, default="auto"
            Kernel backend.
        rng : numpy.random.Generator or RandomState, optional
            Draws the initial parameters of ``activation="srelu"`` (fixed values without).

        Returns
        -------
        SparseMLP
            The model.

        Raises
        ------
        ValueError
            If the shapes do not chain or the lengths differ.

        See Also
        --------
        sparsemlp.topology.predefined_layers : Regular and clash-free weights for a net.

        Examples
        --------
        >>> import numpy as np
        >>> from sparsemlp.topology import regular
        >>> rng = np.random.default_rng(0)
        >>> m = SparseMLP.from_weights([regular(64, 32, 8, rng=rng), regular(32, 10, 5, rng=rng)])
        >>> m.nnz()
        [512, 160]
        """
        ks = _kernels.resolve(kernels)
        n = len(weights)
        biases = [None] * n if biases is None else list(biases)
        schedules = [None] * n if schedules is None else list(schedules)
        if len(biases) != n or len(schedules) != n:
            raise ValueError(f"from_weights needs one bias and one schedule (or None) per layer "
                             f"({n}). Got {len(biases)} and {len(schedules)}.")
        layers = []
        for W, b, s in zip(weights, biases, schedules):
            if hasattr(W, "backward"):  # a ready layer
                layer = W
                if b is not None:
                    layer.b[:] = b
            else:
                layer = SparseLinear(W, b, kernels=ks)
                layer.schedule = s
            layers.append(layer)
        acts = _activations(layers, activation, output_activation, alpha, rng)
        return cls(layers, acts, dropout=dropout, dropout_kind=dropout_kind)

    # -- computation ---------------------------------------------------------------------
    def forward(self, xt, *, train=False, rng=None):
        """Forward pass on feature-major inputs.

        Parameters
        ----------
        xt : ndarray of shape (n_features, B)
            C-contiguous inputs of the model's dtype.
        train : bool, default=False
            Cache what :meth:`backward` needs and apply dropout.
        rng : numpy.random.Generator or RandomState, optional
            Dropout random source (required when training with dropout > 0).

        Returns
        -------
        ndarray of shape (n_outputs, B)
            Output activations.
        """
        B = xt.shape[1]
        x = xt
        cache = [] if train else None
        n = len(self.layers)
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            z = np.empty((layer.n_out, B), layer.dtype)
            layer.forward(x, z)
            original = self.dropout_kind == "original" and self.dropout > 0
            if original and not train and i > 0:
                z *= layer.dtype.type(1.0 - self.dropout)  # the SET tutorials' inference rule
            a = act.forward(z)
            nxt = a
            mask = None
            if train and self.dropout > 0 and i < n - 1:
                keep = 1.0 - self.dropout
                u = (rng.random((layer.n_out, B), dtype=np.float32)
                     if isinstance(rng, np.random.Generator)
                     else rng.random_sample((layer.n_out, B)))
                mask = (u >= self.dropout).astype(layer.dtype)
                if not original:
                    mask *= layer.dtype.type(1.0 / keep)
                nxt = a * mask
                if original:
                    mask = None  # the tutorials do not mask the backward delta
            if train:
                cache.append((x, z, a, mask))
            x = nxt
            z = a = None  # inference keeps one activation array per layer boundary alive
        self._cache = cache
        return x

    def backward(self, dyt, grads, on_layer=None):
        """Backpropagate the output delta; write batch sums into ``grads``.

        Uses the weights as they were in the forward pass (call before the update).

        Parameters
        ----------
        dyt : ndarray of shape (n_outputs, B)
            Derivative of the loss with respect to the output pre-activation, per sample.
        grads : list of ndarray
            Views aligned with :meth:`parameters` (from :meth:`make_grads`, or from
            :meth:`make_layer_grads` together with ``on_layer``), overwritten.
        on_layer : callable, optional
            Called as ``on_layer(i)`` as soon as layer i's gradients are complete, layers
            from last to first; the activations' parameters are complete at
            ``on_layer(0)``. Layer i's weights are no longer read by the rest of the
            backward pass by then, so ``on_layer`` may update them in place (same bits as
            updating every layer afterwards).
        """
        cache = self._cache
        if cache is None:
            raise RuntimeError("backward needs a preceding forward(..., train=True).")
        delta = dyt
        extra = self.activation_grad_index()
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            x = cache[i][0]
            if i == 0:
                layer.backward(x, delta, grads[0], grads[1])
                if on_layer is not None:
                    on_layer(0)
                break
            dx = np.empty((layer.n_in, delta.shape[1]), layer.dtype)
            layer.backward(x, delta, grads[2 * i], grads[2 * i + 1], dxt=dx)
            if on_layer is not None:
                on_layer(i)
            _, z_prev, a_prev, mask_prev = cache[i - 1]
            act = self.activations[i - 1]
            g = extra.get(i - 1)
            if g is None:
                act.backward(z_prev, a_prev, dx)
                if mask_prev is not None:
                    dx *= mask_prev
            else:  # parameters' gradients need dL/da (dropout applied), before df/dz
                if mask_prev is not None:
                    dx *= mask_prev
                act.param_grads(z_prev, dx, out=grads[g].reshape(act.params.shape))
                act.backward(z_prev, a_prev, dx)
            delta = dx
        self._cache = None

    def predict_raw(self, X, *, batch_size=1024):
        """Output activations for sample-major ``X``, computed in chunks.

        Parameters
        ----------
        X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
            Inputs (converted to the model dtype chunk by chunk).
        batch_size : int, default=1024
            Rows per chunk.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            Outputs.
        """
        n = X.shape[0]
        out = np.empty((n, self.layers[-1].n_out), self.dtype)
        for s in range(0, n, batch_size):
            xt = batch_t(X, slice(s, min(n, s + batch_size)), self.dtype)
            out[s:s + xt.shape[1]] = self.forward(xt).T
        return out

    def __repr__(self):
        return (f"SparseMLP(sizes={self.sizes}, nnz={self.nnz()}, "
                f"activations={[a.name for a in self.activations]}, dropout={self.dropout})")


def _activations(layers, activation, output_activation, alpha, rng):
    """One activation per layer: ``activation`` on the hidden ones, then the output's."""
    n = len(layers)
    return [make_activation(output_activation if i == n - 1 else activation, alpha, i,
                            n_units=layers[i].n_out, rng=rng, dtype=layers[i].dtype)
            for i in range(n)]
