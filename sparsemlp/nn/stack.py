"""LayerStack: the layer list of a SparseMLP: sizes, CSR layers, replacement, parameter and gradient views."""

from .batching import shared_views
from .layers import check_layer
from .optim import flat_views

__all__ = ["LayerStack"]


class LayerStack:
    """What a model knows about its list of layers ``self.layers`` (base of `SparseMLP`).

    The layers follow the protocol of `SparseLinear` (see `sparsemlp.nn.layers`): CSR layers,
    or the structured layers of `sparsemlp.approx`.
    """

    @property
    def sizes(self):
        """Units per layer, inputs first."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def dtype(self):
        """Floating dtype."""
        return self.layers[0].dtype

    @property
    def kernels(self):
        """KernelSet of the layers."""
        return self.layers[0].kernels

    def sparse_layers(self):
        """The CSR layers (what evolution, pruning and export walk); structured layers are not.

        Returns
        -------
        list of SparseLinear
            By reference, in order (``self.layers`` without the structured layers).
        """
        return [layer for layer in self.layers if layer.kind == "csr"]

    def replace_layer(self, i, layer):
        """Put ``layer`` in place of layer ``i``, e.g. ``approx.sss(...).to_layer(bias)``.

        Build the trainer or optimizer after replacing: they hold the parameter arrays.

        Parameters
        ----------
        i : int
            Layer index (negative counts from the end).
        layer : SparseLinear or StructuredLayer
            A layer with the same inputs, outputs and dtype.

        Returns
        -------
        SparseLinear or StructuredLayer
            The layer replaced.

        Raises
        ------
        IndexError
            If there is no layer ``i``.
        """
        n = len(self.layers)
        if not -n <= i < n:
            raise IndexError(f"replace_layer: the model has layers 0..{n - 1}. Got {i}.")
        check_layer(layer, self.layers[i], f"layer {i % n}")
        old, self.layers[i] = self.layers[i], layer
        self._cache = None
        return old

    def parameters(self):
        """``[W0.data, b0, W1.data, b1, ..., s_0, s_1, ...]`` by reference.

        Structured layers give their ``values`` in place of ``W.data``. The layers' pairs
        come first (layer i's weights are parameter ``2 * i``), then the flat parameters of
        every activation that has some (SReLU), in layer order.

        Returns
        -------
        list of ndarray
            Parameter arrays.
        """
        return ([p for layer in self.layers for p in layer.parameters()]
                + [act.flat for _, act in self.param_activations()])

    def param_activations(self):
        """The activations with learned parameters (SReLU), with their layer index.

        Returns
        -------
        list of (int, object)
            ``(i, activations[i])`` in layer order.
        """
        return [(i, a) for i, a in enumerate(self.activations) if hasattr(a, "params")]

    def n_layer_params(self):
        """Number of the layers' parameter arrays (``2 * n_layers``), where the activations' start.

        Returns
        -------
        int
            ``2 * len(layers)``.
        """
        return 2 * len(self.layers)

    def activation_grad_index(self):
        """Position in :meth:`parameters` of each parametric activation's array.

        Returns
        -------
        dict of int to int
            Layer index -> parameter index.
        """
        n = self.n_layer_params()
        return {i: n + k for k, (i, _) in enumerate(self.param_activations())}

    def load_activation_params(self, arrays):
        """Restore every parametric activation from ``activations.<i>.params`` of a state dict.

        Parameters
        ----------
        arrays : mapping
            Saved arrays (e.g. a checkpoint's ``state.npz``).

        Raises
        ------
        ValueError
            If an array is missing or has another shape.
        """
        for i, act in self.param_activations():
            act.load_state_dict(arrays, f"activations.{i}.")

    def nnz(self):
        """Connections per layer (weight parameters for structured layers).

        Returns
        -------
        list of int
            nnz of each layer.
        """
        return [layer.nnz for layer in self.layers]

    def dense_params(self):
        """Weights + biases of the dense MLP with the same sizes.

        Returns
        -------
        int
            ``sum(n_in*n_out + n_out)``.
        """
        return sum(la.n_in * la.n_out + la.n_out for la in self.layers)

    def make_grads(self):
        """One flat gradient buffer with a view per parameter.

        Returns
        -------
        flat : ndarray
            Buffer of length ``sum(nnz_l + n_out_l)``.
        views : list of ndarray
            Views aligned with :meth:`parameters`.
        """
        return flat_views(self.parameters(), self.dtype)

    def make_layer_grads(self):
        """One scratch buffer the size of the largest layer, shared by every layer's views.

        For :meth:`backward` with ``on_layer``: layer i's gradient views (``W.data`` part,
        then bias part) both start at offset 0 of the same buffer, so each layer's
        gradient must be consumed by ``on_layer(i)`` before the next layer's backward
        overwrites it. Costs 4 bytes per connection of the largest layer (float32) instead
        of 4 bytes per connection of the model.

        Returns
        -------
        scratch : ndarray
            Buffer of length ``max(nnz_l + n_out_l)``.
        views : list of ndarray
            Views aligned with :meth:`parameters` (aliasing across layers; the
            activations' parameters get their own buffer, complete at ``on_layer(0)``).
        """
        scratch, views = shared_views([(layer.nnz, layer.n_out) for layer in self.layers],
                                      self.dtype)
        extra = [act.flat for _, act in self.param_activations()]
        return scratch, views + (flat_views(extra, self.dtype)[1] if extra else [])


    def state_dict(self):
        """Flat dict of the model's arrays (``layers.<i>.{indptr,indices,data,bias}``).

        SReLU activations give ``activations.<i>.params``; structured layers give
        ``layers.<i>.values`` and ``layers.<i>.bias``.

        Returns
        -------
        dict
            Arrays by reference.
        """
        d = {}
        for i, layer in enumerate(self.layers):
            if layer.kind != "csr":
                d[f"layers.{i}.values"], d[f"layers.{i}.bias"] = layer.parameters()
                continue
            d[f"layers.{i}.indptr"] = layer.W.indptr
            d[f"layers.{i}.indices"] = layer.W.indices
            d[f"layers.{i}.data"] = layer.W.data
            d[f"layers.{i}.bias"] = layer.b
        for i, act in self.param_activations():
            d.update(act.state_dict(f"activations.{i}."))
        return d
