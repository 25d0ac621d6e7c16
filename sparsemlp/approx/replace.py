"""Replace a layer of a SparseMLP by a structured approximation of its weights."""

from .._validation import check_param
from .displacement import toeplitz_like
from .hierarchical import hedlr, hmatrix, hodlr
from .lowrank import low_rank
from .semiseparable import sss
from .sparse_factors import sparse_product

__all__ = ["KINDS", "approximate_layer"]

#: Builder of every approximation kind, by name.
KINDS = {"low_rank": low_rank, "sss": sss, "sparse_product": sparse_product, "hodlr": hodlr,
         "hedlr": hedlr, "hmatrix": hmatrix, "toeplitz_like": toeplitz_like}


def approximate_layer(model, i, kind, *, share, **options):
    """Replace CSR layer ``i`` of a model by a trainable structured approximation, in place.

    The layer's weights ``W`` (``n_in x n_out``) are approximated as the ``n_out x n_in``
    matrix ``W.T`` (the ``y = A x`` orientation of `sparsemlp.approx`); the new layer keeps
    the bias, dtype and kernel backend. Build the trainer after replacing (it holds the
    parameter arrays); SET evolution skips structured layers.

    Parameters
    ----------
    model : SparseMLP
        The model (changed in place).
    i : int
        Index of a CSR layer.
    kind : {"low_rank", "sss", "sparse_product", "hodlr", "hedlr", "hmatrix", "toeplitz_like"}
        The structure.
    share : float
        Parameter budget as a fraction of ``n_in * n_out``, in (0, 1].
    **options
        Options of the kind's builder (e.g. ``n_states`` of `sss`).

    Returns
    -------
    Approximation
        The approximation of the layer's weights before training (``rel_error`` against them).

    Raises
    ------
    ValueError
        For an unknown kind, a layer that is already structured, or the builder's errors
        (e.g. `InfeasibleBudgetError`).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp import SparseMLP, approx
    >>> m = SparseMLP.erdos_renyi([20, 30, 5], epsilon=10, rng=np.random.default_rng(0))
    >>> a = approx.approximate_layer(m, 0, "low_rank", share=0.2)
    >>> m.layers[0].kind, m.layers[0].nnz
    ('low_rank', 100)
    """
    kind = check_param("kind", kind, "str", options=tuple(KINDS), owner="approximate_layer")
    n = len(model.layers)
    if not -n <= i < n:
        raise IndexError(f"approximate_layer: the model has layers 0..{n - 1}. Got {i}.")
    layer = model.layers[i]
    if layer.kind != "csr":
        raise ValueError(f"approximate_layer: layer {i % n} is already a {layer.kind} layer; "
                         "approximate a CSR layer (or its to_approximation() directly).")
    a = KINDS[kind](layer.W.T.tocsr(), share=share, **options)
    model.replace_layer(i, a.to_layer(layer.b, dtype=layer.dtype, kernels=layer.kernels))
    return a
