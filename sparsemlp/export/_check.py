"""The Python side of a check: the package's own forward, and the comparison with the C results."""

import numpy as np

from ..nn.batching import batch_t
from ..nn.functions import make_activation
from ..nn.mlp import SparseMLP
from ..rbm import SparseRBM
from ._codegen import _describe, _fitted_model

__all__ = ["python_reference", "compare"]


def python_reference(model, X):
    """Logits and outputs of the package's forward (inference) for sample-major ``X``.

    Parameters
    ----------
    model : SparseMLP or SparseRBM
        The exported model (or a fitted estimator holding one).
    X : ndarray of shape (n, n_in)
        Inputs in the model's scaling.

    Returns
    -------
    logits, outputs : ndarray of shape (n, n_out)
        Output-layer pre-activations and activations (RBM: ``v W + b_h`` and
        ``p(h = 1 | v)``), in the model's dtype.
    """
    model = _fitted_model(model) or model
    xt = batch_t(X, slice(None), model.dtype)
    if isinstance(model, SparseRBM):
        z = np.empty((model.n_hidden, xt.shape[1]), model.dtype)
        model.layer.forward(xt, z)
        return z.T.copy(), model.hidden_probs(xt).T.copy()
    _describe(model)  # the same checks as the export
    ident = SparseMLP(model.layers, model.activations[:-1] + [make_activation("identity")],
                      dropout=model.dropout, dropout_kind=model.dropout_kind)
    return ident.forward(xt).T.copy(), model.forward(xt).T.copy()


def compare(c_logits, c_out, py_logits, py_out, *, rtol=1e-4, classify=True):
    """Compare C and Python results sample by sample.

    A sample passes when every logit is within ``rtol * max_k |logit_k|`` of Python's (its
    largest Python logit in magnitude; the same rule for the outputs) and, for a classifier,
    the predicted class is the same (argmax over outputs, or ``output > 0.5`` for one output).

    Parameters
    ----------
    c_logits, c_out, py_logits, py_out : ndarray of shape (n, n_out)
        C and Python logits and outputs.
    rtol : float, default=1e-4
        Relative tolerance.
    classify : bool, default=True
        Also compare predicted classes.

    Returns
    -------
    dict
        ``n``, ``max_rel_logit_err``, ``max_rel_output_err``, ``argmax_agree`` (count, or
        None), ``bit_identical_logits`` (fraction), ``ok`` (bool).
    """
    def rel(c, p):
        c, p = np.asarray(c, np.float64), np.asarray(p, np.float64)
        scale = np.maximum(np.abs(p).max(axis=1), np.finfo(np.float64).tiny)
        return float((np.abs(c - p).max(axis=1) / scale).max()) if p.size else 0.0

    n = py_logits.shape[0]
    r_l, r_o = rel(c_logits, py_logits), rel(c_out, py_out)
    agree = None
    if classify:
        if py_out.shape[1] == 1:
            agree = int(np.sum((c_out[:, 0] > 0.5) == (py_out[:, 0] > 0.5)))
        else:
            agree = int(np.sum(np.argmax(c_out, axis=1) == np.argmax(py_out, axis=1)))
    same = np.asarray(c_logits, py_logits.dtype) == py_logits
    ok = bool(np.isfinite(c_logits).all() and r_l <= rtol and r_o <= rtol
              and (agree is None or agree == n))
    return {"n": n, "max_rel_logit_err": r_l, "max_rel_output_err": r_o, "argmax_agree": agree,
            "bit_identical_logits": float(same.all(axis=1).mean()) if n else 1.0, "ok": ok}
