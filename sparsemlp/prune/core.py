"""``prune(model, ...) -> (model, report)``: post-hoc sparsification of a trained SparseMLP."""

import copy
import logging
import time

import numpy as np

from .._parallel import thread_limit
from .._validation import check_param
from ..nn.layers import SparseLinear
from ..nn.mlp import SparseMLP
from .budget import final_targets, round_target
from .calibration import calibration_inputs, layer_output, logits, next_input
from .distance import MAX_WEIGHTS, prune_by_distance
from .errors import COMPENSATIONS, CRITERIA, SCOPES, PruneError
from .layer import layer_saliencies, needs_data, prune_layer
from .report import LayerReport, PruneReport, progress

__all__ = ["prune", "check_settings"]

logger = logging.getLogger(__name__)


def _check(model, criterion, compensate, scope, steps, damp, layers):
    if not isinstance(model, SparseMLP):
        raise PruneError(f"prune takes a SparseMLP (load other models with "
                         f"sparsemlp.training.sources.load_source). Got {type(model).__name__}.")
    try:
        check_param("criterion", criterion, "str", options=CRITERIA, owner="prune")
        check_param("compensate", compensate, "str", options=COMPENSATIONS, owner="prune")
        check_param("scope", scope, "str", options=SCOPES, owner="prune")
        steps = check_param("steps", steps, "int", low=1, owner="prune")
        damp = check_param("damp", damp, "float", low=0, owner="prune")
    except (TypeError, ValueError) as exc:
        raise PruneError(str(exc)) from None
    n = len(model.layers)
    if layers is None:
        layers = [i for i, la in enumerate(model.layers) if la.kind == "csr"]
        if not layers:
            raise PruneError("every layer of this model is structured (sparsemlp.approx); "
                             "pruning removes connections of CSR layers. Prune the model "
                             "before approximating its layers.")
    else:
        layers = [int(i) for i in np.atleast_1d(layers)]
        bad = [i for i in layers if not -n <= i < n]
        if bad or not layers:
            raise PruneError(f"layers must list layer indices of this {n}-layer model (0 to "
                             f"{n - 1}). Got {layers}.")
        layers = sorted({i % n for i in layers})
        structured = [f"{i} ({model.layers[i].kind})" for i in layers
                      if model.layers[i].kind != "csr"]
        if structured:
            raise PruneError(f"layers {', '.join(structured)} are structured (sparsemlp.approx); "
                             "pruning removes connections of CSR layers. Leave them out of "
                             "layers (by default only the CSR layers are pruned).")
    if criterion == "output_distance":
        total = sum(model.layers[i].nnz for i in layers)
        if total > MAX_WEIGHTS:
            raise PruneError(
                f"criterion 'output_distance' tries every remaining weight for each removal "
                f"(O(weights² x samples)); these layers have {total} weights, more than "
                f"{MAX_WEIGHTS}. Use criterion 'obs' (with compensate 'refit' or 'obs').")
        if steps != 1:
            raise PruneError("criterion 'output_distance' removes one weight at a time; steps "
                             "does not apply to it. Drop steps.")
    return steps, damp, layers


def check_settings(model, *, density=None, sparsity=None, n_remove=None, criterion="obs",
                   compensate="refit", layers=None, steps=1, scope="layer", damp=0.01):
    """Check the settings of :func:`prune` for a model without pruning anything.

    Parameters
    ----------
    model : SparseMLP
        The model.
    density, sparsity : float, optional
        As for :func:`prune`.
    n_remove : int, optional
        As for :func:`prune`.
    criterion, compensate : str
        As for :func:`prune`.
    layers : sequence of int, optional
        As for :func:`prune`.
    steps : int, default=1
        As for :func:`prune`.
    scope : str, default="layer"
        As for :func:`prune`.
    damp : float, default=0.01
        As for :func:`prune`.

    Returns
    -------
    steps : int
        Rounds.
    damp : float
        Damping.
    layers : list of int
        Layers pruned, sorted.
    targets : ndarray or int
        Connections kept per pruned layer, or in total (scope "global").

    Raises
    ------
    PruneError
        Naming the first invalid setting and its valid values.
    """
    steps, damp, layers = _check(model, criterion, compensate, scope, steps, damp, layers)
    targets = final_targets([model.layers[i].nnz for i in layers],
                            [model.layers[i].n_in * model.layers[i].n_out for i in layers],
                            density=density, sparsity=sparsity, n_remove=n_remove, scope=scope)
    return steps, damp, layers, targets


def _copy(model):
    layers = []
    for layer in model.layers:
        if layer.kind != "csr":  # structured layers are not pruned: an unshared copy
            layers.append(copy.deepcopy(layer))
            continue
        new = SparseLinear(layer.W.copy(), layer.b.copy(), kernels=layer.kernels)
        new.schedule = layer.schedule
        layers.append(new)
    return SparseMLP(layers, list(model.activations), dropout=model.dropout,
                     dropout_kind=model.dropout_kind)


def _set_layer(model, i, W, b):
    old = model.layers[i]
    model.layers[i] = SparseLinear(W, b, kernels=old.kernels)  # the pattern changed: no schedule


def _allocate(model, X, layers, k, criterion, damp, bias):
    """Per-layer removals of a global round: the ``k`` lowest one-shot saliencies overall."""
    sal, owner = [], []
    A = X
    for i in range(len(model.layers)):
        if i in layers:
            s, _ = layer_saliencies(model, i, A, criterion, damp=damp, bias=bias,
                                    normalise=criterion != "magnitude")
            sal.append(s)
            owner.append(np.full(s.shape[0], i))
        if i < len(model.layers) - 1 and A is not None and i < max(layers):
            A = next_input(model, i, A)
    sal, owner = np.concatenate(sal), np.concatenate(owner)
    pick = np.lexsort((np.arange(sal.shape[0]), sal))[:k]
    counts = np.bincount(owner[pick], minlength=len(model.layers))
    return {i: int(counts[i]) for i in layers}


def prune(model, *, density=None, sparsity=None, n_remove=None, criterion="obs",
          compensate="refit", calib=None, layers=None, steps=1, scope="layer", damp=0.01,
          update_bias=True, noise_range=(0.0, 1.0), seed=0, threads=None, progress_bar=False):
    """Remove connections of a trained SparseMLP and compensate the rest.

    Pass exactly one of ``density``, ``sparsity`` and ``n_remove``. Each round (``steps``
    of them; the connections kept fall geometrically to the target) prunes the layers in
    order; a layer's calibration inputs come from the layers before it as already pruned.
    Removed connections are absent from the new CSR weights (the pattern only shrinks:
    nothing is ever regrown), and every layer stays canonical. Computation is float64;
    the result has the model's dtype.

    Parameters
    ----------
    model : SparseMLP
        The trained model (not modified).
    density : float, optional
        Fraction of each layer's dense weight count ``n_in * n_out`` kept, in (0, 1] (of the
        pruned layers together with ``scope="global"``).
    sparsity : float, optional
        ``1 - density``.
    n_remove : int, optional
        Connections removed (per layer in proportion to their connections with
        ``scope="layer"``).
    criterion : {"obs", "magnitude", "obd", "output_distance"}, default="obs"
        Which connections go: ``magnitude`` ``|w|``; ``obd`` ``½ w² H_qq`` (LeCun, Denker &
        Solla 1990); ``obs`` ``w² / (2 [H⁻¹]_qq)`` with ``H = X Xᵀ + λI`` of the layer's
        calibration inputs, restricted to the neuron's connections (Hassibi & Stork 1993);
        ``output_distance`` the connection whose removal changes ``log softmax`` of the
        logits least over the calibration points, one at a time against the model before
        pruning (at most 10,000 connections).
    compensate : {"refit", "obs", "none"}, default="refit"
        ``none``: kept weights unchanged. ``refit``: each output neuron's kept weights and
        bias become the least-squares optimum of its output on its kept inputs. ``obs``:
        connections go one at a time per neuron with the closed-form OBS update after each
        (so the next choice sees the compensated weights; Frantar & Alistarh 2022), the
        layer's cheapest removals over all neurons taken; its final weights are the same
        least-squares optimum on the connections it kept. See docs/prune.md.
    calib : array-like of shape (n, n_features) or int, optional
        Calibration inputs, scaled as the model's training data; an int draws that many
        points uniformly from ``noise_range`` (data-free). Needed unless
        ``criterion="magnitude"`` and ``compensate="none"``.
    layers : sequence of int, optional
        Layers to prune (default: all CSR layers; structured layers from
        `sparsemlp.approx` are kept as they are and cannot be listed).
    steps : int, default=1
        Rounds of prune, compensate, recompute the activations.
    scope : {"layer", "global"}, default="layer"
        The target applies to every layer, or to the pruned layers together (shared out by
        the lowest saliencies overall; ``obd``/``obs`` saliencies are divided by the
        layer's output energy so that layers compare).
    damp : float, default=0.01
        ``λ = damp * mean(diag(X Xᵀ))``, which keeps H invertible for dead inputs.
    update_bias : bool, default=True
        Compensation also adjusts the biases.
    noise_range : tuple of float, default=(0.0, 1.0)
        Range of the noise points when ``calib`` is an int.
    seed : int, default=0
        Seed of the noise points.
    threads : int, optional
        BLAS threads for the large products (default: all cores).
    progress_bar : bool, default=False
        A progress bar per layer (on a terminal).

    Returns
    -------
    model : SparseMLP
        The pruned model (new layers; activations shared with the input model).
    report : PruneReport
        Per-layer connections, reconstruction error and seconds.

    Raises
    ------
    PruneError
        For invalid settings or calibration inputs, ``output_distance`` above 10,000
        connections, a layer whose Hessian is too large or sequential OBS beyond its work
        limit.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp import SparseMLP
    >>> from sparsemlp.prune import prune
    >>> rng = np.random.default_rng(0)
    >>> m = SparseMLP.erdos_renyi([20, 30, 5], epsilon=100, rng=rng)
    >>> pruned, report = prune(m, density=0.25, calib=rng.standard_normal((200, 20)))
    >>> [la.density_after for la in report.layers]
    [0.25, 0.25]
    """
    t0 = time.perf_counter()
    steps, damp, layers, targets = check_settings(
        model, density=density, sparsity=sparsity, n_remove=n_remove, criterion=criterion,
        compensate=compensate, layers=layers, steps=steps, scope=scope, damp=damp)
    n_layers = len(model.layers)
    nnz0 = [la.nnz for la in model.layers]
    if scope == "layer":
        targets = dict(zip(layers, (int(t) for t in targets)))
    use_data = needs_data(criterion, compensate) or calib is not None
    if calib is None and use_data:
        raise PruneError(f"criterion {criterion!r} with compensate {compensate!r} needs "
                         "calibration inputs: pass calib=X (samples scaled as the training "
                         "data) or calib=N for N uniform noise points.")
    X = calibration_inputs(model, calib, rng=np.random.default_rng(seed),
                           noise_range=noise_range) if use_data else None
    work = _copy(model)
    seconds = dict.fromkeys(range(n_layers), 0.0)
    with thread_limit(threads):
        if criterion == "output_distance":
            total = targets if scope == "global" else None
            prune_by_distance(work, X, layers, targets, total, compensate=compensate, damp=damp,
                              bias=update_bias, seconds=seconds, progress_bar=progress_bar)
        else:
            _rounds(work, X, layers, targets, nnz0, steps, scope, criterion, compensate, damp,
                    update_bias, seconds, progress_bar)
        report = PruneReport(criterion, compensate, scope, steps,
                             0 if X is None else X.shape[0], isinstance(calib, (int, np.integer)),
                             [LayerReport(i, (la.n_in, la.n_out), nnz0[i], work.layers[i].nnz,
                                          seconds=seconds[i])
                              for i, la in enumerate(model.layers)])
        if X is not None:
            _errors(model, work, X, report)
    report.seconds = time.perf_counter() - t0
    return work, report


def _rounds(work, X, layers, targets, nnz0, steps, scope, criterion, compensate, damp, bias,
            seconds, progress_bar):
    start_total = sum(nnz0[i] for i in layers)
    for r in range(1, steps + 1):
        if scope == "global":
            now = sum(work.layers[i].nnz for i in layers)
            k_total = now - round_target(start_total, targets, r, steps)
            if k_total <= 0:
                continue
            removals = _allocate(work, X, layers, k_total, criterion, damp, bias)
        else:
            removals = {i: work.layers[i].nnz - round_target(nnz0[i], targets[i], r, steps)
                        for i in layers}
        A = X
        for i in range(len(work.layers)):
            k = removals.get(i, 0)
            if k > 0:
                t = time.perf_counter()
                layer = work.layers[i]
                bar = progress(layer.n_out, f"layer {i} ({r}/{steps})", progress_bar)
                try:
                    W, b = prune_layer(work, i, A, k, criterion=criterion, compensate=compensate,
                                       damp=damp, bias=bias, tick=bar.update)
                finally:
                    bar.close()
                _set_layer(work, i, W, b)
                seconds[i] += time.perf_counter() - t
            if A is not None and i < max(layers) and i < len(work.layers) - 1:
                A = next_input(work, i, A)


def _errors(model, work, X, report):
    """Per-layer reconstruction and output errors of the pruned model on the calibration points."""
    A = X
    n = len(work.layers)
    for i in range(n):
        z0 = layer_output(model, i, A)
        z1 = layer_output(work, i, A)
        report.layers[i].rel_error = _rel(z1, z0)
        if i < n - 1:
            A = np.ascontiguousarray(work.activations[i].forward(z1.T).T, dtype=np.float64)
    report.output_rel_error = _rel(z1, logits(model, X))  # z1: the pruned model's logits


def _rel(z, z0):
    return float(np.linalg.norm(z - z0) / max(np.linalg.norm(z0), np.finfo(float).tiny))
