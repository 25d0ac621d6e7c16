"""Activations, their derivatives, losses, output deltas and metrics as name -> object registries.

All arrays are feature-major: ``z`` and ``a`` have shape (n_units, batch). Functions never
mutate their inputs except the explicit ``delta`` argument of ``Activation.backward``.
"""

import numpy as np

from .srelu import SReLU

__all__ = ["ACTIVATIONS", "LOSSES", "make_activation", "loss_value", "output_delta", "accuracy",
           "predictions", "kl_divergence"]


class Activation:
    """Elementwise activation: ``forward(z) -> a`` and ``backward(z, a, delta)`` (in place)."""

    name = "identity"

    def forward(self, z):
        """Return the activation of pre-activations ``z`` (a new array or ``z`` itself)."""
        return z

    def backward(self, z, a, delta):
        """Multiply ``delta`` in place by the derivative at ``z`` (with ``a = f(z)``)."""

    def __repr__(self):
        return f"{type(self).__name__}()"


class Identity(Activation):
    """``f(z) = z``."""


class ReLU(Activation):
    """``max(z, 0)``; derivative ``1[z > 0]`` (0 at exactly 0, as the original)."""

    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0)

    def backward(self, z, a, delta):
        delta *= z > 0


class LeakyReLU(Activation):
    """``z`` for ``z >= 0``, ``alpha * z`` below; derivative 1 or ``alpha``.

    All-ReLU (Curci et al. 2021) is this with the sign of ``alpha`` alternating per
    hidden layer; ``make_activation("all_relu", alpha, layer)`` builds it.

    Parameters
    ----------
    alpha : float, default=0.01
        Slope for negative inputs (may be negative).
    """

    name = "leaky_relu"

    def __init__(self, alpha=0.01):
        self.alpha = float(alpha)

    def forward(self, z):
        return np.where(z >= 0, z, z * z.dtype.type(self.alpha))

    def backward(self, z, a, delta):
        delta *= np.where(z >= 0, z.dtype.type(1), z.dtype.type(self.alpha))

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"


class Sigmoid(Activation):
    """``1 / (1 + exp(-z))``; derivative ``a * (1 - a)``."""

    name = "sigmoid"

    def forward(self, z):
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-z))

    def backward(self, z, a, delta):
        delta *= a * (1 - a)


class Tanh(Activation):
    """``tanh(z)``; derivative ``1 - a**2``."""

    name = "tanh"

    def forward(self, z):
        return np.tanh(z)

    def backward(self, z, a, delta):
        delta *= 1 - a * a


class Softmax(Activation):
    """Softmax over units (axis 0), shifted by the column maximum for stability.

    ``backward`` applies the Jacobian-vector product ``a * (delta - sum(a * delta))``.
    """

    name = "softmax"

    def forward(self, z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        e /= e.sum(axis=0, keepdims=True)
        return e

    def backward(self, z, a, delta):
        s = (a * delta).sum(axis=0, keepdims=True)
        delta -= s
        delta *= a


ACTIVATIONS = {
    "identity": Identity,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "all_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "srelu": SReLU,  # hidden layers only: four learned parameters per unit (nn.srelu)
}

LOSSES = ("mse", "cross_entropy")


def make_activation(name, alpha=0.6, layer=0, *, n_units=None, rng=None, dtype=np.float32):
    """Build the activation called ``name``.

    Parameters
    ----------
    name : str
        One of ``ACTIVATIONS``.
    alpha : float, default=0.6
        Negative slope of ``leaky_relu`` and magnitude of ``all_relu``'s slope.
    layer : int, default=0
        Hidden-layer index; ``all_relu`` uses slope ``-alpha`` on even and ``+alpha`` on
        odd layers (Curci et al. 2021: -0.6, +0.6, -0.6 for three hidden layers).
    n_units : int, optional
        Units of the layer: required by ``srelu`` (one parameter set per unit).
    rng : numpy.random.Generator or RandomState, optional
        Draws ``srelu``'s initial parameters (see :class:`~sparsemlp.nn.srelu.SReLU`).
    dtype : dtype, default=float32
        dtype of ``srelu``'s parameters.

    Returns
    -------
    Activation
        The activation object.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    """
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}. Choose one of {', '.join(sorted(ACTIVATIONS))}."
        )
    if name == "srelu":
        if n_units is None:
            raise ValueError("activation 'srelu' has parameters per unit: pass n_units.")
        return SReLU(n_units, rng=rng, dtype=dtype)
    if name == "all_relu":
        return LeakyReLU(-alpha if layer % 2 == 0 else alpha)
    if name == "leaky_relu":
        return LeakyReLU(alpha)
    return ACTIVATIONS[name]()


_CLIP = 1e-7


def loss_value(loss, yhat, y):
    """Mean loss over the batch (feature-major arrays of shape (n_outputs, B)).

    Parameters
    ----------
    loss : {"mse", "cross_entropy"}
        ``mse`` averages over batch and outputs, as the original SET code.
        ``cross_entropy`` is ``-sum(y * log(clip(yhat)))/B``; with a single output it
        is the binary cross-entropy.
    yhat, y : ndarray of shape (n_outputs, B)
        Predictions and targets.

    Returns
    -------
    float
        The loss.
    """
    if loss == "mse":
        d = yhat - y
        return float(np.mean(d * d))
    p = np.clip(yhat, _CLIP, 1 - _CLIP)
    b = yhat.shape[1]
    if yhat.shape[0] == 1:
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum() / b)
    return float(-(y * np.log(p)).sum() / b)


def output_delta(loss, act, z, yhat, y, *, set_quirk=False):
    """Per-sample derivative of the loss with respect to the output pre-activation.

    The model sums this over the batch; the optimizer divides by the batch size.

    Parameters
    ----------
    loss : {"mse", "cross_entropy"}
        Loss name.
    act : Activation
        Output activation.
    z, yhat, y : ndarray of shape (n_outputs, B)
        Pre-activation, prediction ``act.forward(z)`` and target.
    set_quirk : bool, default=False
        Reproduce the original SET output delta for MSE:
        ``(yhat - y) * s(yhat) * (1 - s(yhat))`` with ``s`` the sigmoid evaluated at the
        *activation* and no ``2/C`` factor, as the SET-MLP code of Mocanu et al. (2018) does.

    Returns
    -------
    ndarray of shape (n_outputs, B)
        The delta (a new array).

    Raises
    ------
    ValueError
        If cross-entropy is combined with an output other than softmax or sigmoid.
    """
    if loss == "mse":
        d = yhat - y
        if set_quirk:
            s = Sigmoid().forward(yhat)
            return d * (s * (1 - s))
        d *= d.dtype.type(2.0 / yhat.shape[0])
        act.backward(z, yhat, d)
        return d
    if act.name == "softmax" or (act.name == "sigmoid"):
        return yhat - y
    raise ValueError(
        f"loss='cross_entropy' needs a softmax (or, for one output, sigmoid) output layer; "
        f"got output activation {act.name!r}. Set output_activation='softmax' or loss='mse'."
    )


def predictions(yhat):
    """Predicted class per column: argmax over outputs (first maximum wins), or ``yhat > 0.5``.

    Parameters
    ----------
    yhat : ndarray of shape (n_outputs, B)
        Model outputs.

    Returns
    -------
    ndarray of shape (B,)
        Class indices.
    """
    if yhat.shape[0] == 1:
        return (yhat[0] > 0.5).astype(np.intp)
    return np.argmax(yhat, axis=0)


def accuracy(yhat, labels):
    """Number of columns whose predicted class equals ``labels`` (a count, not a fraction).

    Parameters
    ----------
    yhat : ndarray of shape (n_outputs, B)
        Model outputs.
    labels : ndarray of shape (B,)
        Integer class labels.

    Returns
    -------
    int
        Number of correct predictions.
    """
    return int(np.count_nonzero(predictions(yhat) == labels))


def kl_divergence(p_ref, p, *, eps=0.0):
    """Mean Kullback-Leibler divergence of predictions ``p`` from reference predictions.

    The comparison metric of Dey et al. (IEEE JETCAS 2019; ``preds_compare`` in their code): the
    softmax outputs of a dense "standard" model against a sparse model's, on the same test
    samples; lower is better, 0 for identical predictions.

    Parameters
    ----------
    p_ref : array_like of shape (n_samples, n_classes)
        Reference class probabilities (e.g. the dense model's, averaged over runs).
    p : array_like of shape (n_samples, n_classes)
        Compared class probabilities.
    eps : float, default=0.0
        Floor applied to ``p`` before normalising (``max(p, eps)``). A float32 softmax
        underflows to exactly 0 for confident predictions, which makes the divergence
        infinite; ``eps=1e-7`` (the clip of the cross-entropy loss) keeps it finite. The
        original used no floor.

    Returns
    -------
    float
        ``mean_i sum_c p_ref[i, c] * ln(p_ref[i, c] / p[i, c])``, each row first normalised
        to sum 1 (as ``scipy.stats.entropy``, which the original called per sample), terms
        with ``p_ref = 0`` counting 0; ``inf`` if ``p`` is 0 where ``p_ref`` is not.

    Raises
    ------
    ValueError
        If the shapes differ, a value is negative or not finite, or a row sums to 0.

    Notes
    -----
    Computed in float64, O(n_samples * n_classes).

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> kl_divergence([[0.5, 0.5]], [[0.5, 0.5]])
    0.0
    """
    a = np.asarray(p_ref, dtype=np.float64)
    b = np.asarray(p, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"p_ref and p must be 2-D arrays of the same shape (n_samples, "
                         f"n_classes). Got {a.shape} and {b.shape}.")
    for name, x in (("p_ref", a), ("p", b)):
        if not np.isfinite(x).all() or (x < 0).any():
            raise ValueError(f"{name} must hold finite, non-negative probabilities.")
        if (x.sum(axis=1) <= 0).any():
            raise ValueError(f"every row of {name} must have a positive sum.")
    if eps < 0 or not np.isfinite(eps):
        raise ValueError(f"The 'eps' parameter of kl_divergence must be a finite float >= 0. "
                         f"Got {eps!r} instead.")
    if eps:
        b = np.maximum(b, eps)
    a = a / a.sum(axis=1, keepdims=True)
    b = b / b.sum(axis=1, keepdims=True)
    pos = a > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pos, a * (np.log(np.where(pos, a, 1.0)) - np.log(b)), 0.0)
    return float(terms.sum(axis=1).mean())
