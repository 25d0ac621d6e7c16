"""A small dense masked MLP with hand-written backprop in plain NumPy: the model test oracle."""

import numpy as np


def act(name, z, alpha=0.0):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z >= 0, z, alpha * z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "identity":
        return z
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def dact(name, z, alpha=0.0):
    """Elementwise derivative (not for softmax)."""
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z >= 0, 1.0, alpha)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(name)


def forward(Ws, bs, acts, X, alphas=None, masks=None):
    """Sample-major forward; returns list of (z, a) per layer. ``masks`` are dropout multipliers."""
    alphas = alphas or [0.0] * len(Ws)
    a = X
    out = []
    for i, (W, b, f) in enumerate(zip(Ws, bs, acts)):
        z = a @ W + b
        a = act(f, z, alphas[i])
        out.append((z, a))
        if masks is not None and i < len(Ws) - 1 and masks[i] is not None:
            a = a * masks[i]
    return out


def loss(name, yhat, y):
    if name == "mse":
        return np.mean((yhat - y) ** 2)
    p = np.clip(yhat, 1e-7, 1 - 1e-7)
    return -np.sum(y * np.log(p)) / y.shape[0]


def gradients(Ws, Ms, bs, acts, X, Y, loss_name, alphas=None, masks=None):
    """Gradients of the batch-mean loss w.r.t. dense W (masked) and b."""
    alphas = alphas or [0.0] * len(Ws)
    cache = forward(Ws, bs, acts, X, alphas, masks)
    B, C = Y.shape
    z, yhat = cache[-1]
    if loss_name == "mse":
        g = 2 * (yhat - Y) / (B * C)
        if acts[-1] == "softmax":
            g = yhat * (g - (yhat * g).sum(axis=1, keepdims=True))
        else:
            g = g * dact(acts[-1], z, alphas[-1])
    else:
        g = (yhat - Y) / B
    gW, gb = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        if i > 0:
            a_prev = cache[i - 1][1]
            if masks is not None and masks[i - 1] is not None:
                a_prev = a_prev * masks[i - 1]
        else:
            a_prev = X
        gW[i] = (a_prev.T @ g) * Ms[i]
        gb[i] = g.sum(axis=0)
        if i > 0:
            g = g @ Ws[i].T
            if masks is not None and masks[i - 1] is not None:
                g = g * masks[i - 1]
            g = g * dact(acts[i - 1], cache[i - 1][0], alphas[i - 1])
    return gW, gb
