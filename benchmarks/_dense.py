"""A dense NumPy/BLAS MLP trained with the same rules as sparsemlp's default mode (competitor)."""

import json
import math
import os
import time

import numpy as np

from sparsemlp.nn.optim import lr_at


class DenseMLP:
    """Fully connected ReLU MLP, softmax + cross-entropy, inverted dropout, SGD with momentum.

    The same choices as sparsemlp's default mode: He-uniform weights ``U(+-sqrt(6/n_in))``,
    zero biases, coupled L2 (``v = mu*v - lr*(g + wd*w); w += v``, biases included), batch-mean
    gradients, learning-rate schedule from :func:`sparsemlp.nn.optim.lr_at`.
    """

    def __init__(self, sizes, *, rng, dtype=np.float32, dropout=0.2, masks=None):
        self.sizes = list(sizes)
        self.dtype = np.dtype(dtype)
        self.dropout = dropout
        self.W, self.b = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            lim = math.sqrt(6.0 / n_in)
            self.W.append(rng.uniform(-lim, lim, (n_in, n_out)).astype(self.dtype))
            self.b.append(np.zeros(n_out, self.dtype))
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def n_params(self):
        return sum(w.size + b.size for w, b in zip(self.W, self.b))

    def forward(self, X, *, train=False, rng=None):
        acts, masks = [X], []
        a = X
        n = len(self.W)
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            z = a @ w
            z += b
            if i < n - 1:
                np.maximum(z, 0, out=z)
                if train and self.dropout > 0:
                    m = (rng.random(z.shape, dtype=np.float32) >= self.dropout).astype(self.dtype)
                    m *= self.dtype.type(1 / (1 - self.dropout))
                    z *= m
                    masks.append(m)
                else:
                    masks.append(None)
            else:
                z -= z.max(axis=1, keepdims=True)
                np.exp(z, out=z)
                z /= z.sum(axis=1, keepdims=True)
            a = z
            acts.append(a)
        return acts, masks

    def step(self, X, Y, *, lr, momentum, wd, rng):
        acts, masks = self.forward(X, train=True, rng=rng)
        p = acts[-1]
        B = X.shape[0]
        loss = -float(np.sum(Y * np.log(np.clip(p, 1e-7, 1 - 1e-7)))) / B
        delta = (p - Y) / self.dtype.type(B)
        for i in range(len(self.W) - 1, -1, -1):
            gw = acts[i].T @ delta
            gb = delta.sum(axis=0)
            if i > 0:
                delta = delta @ self.W[i].T
                delta *= acts[i] > 0  # ReLU derivative (dropped units are zero too)
                if masks[i - 1] is not None:
                    delta *= masks[i - 1]
            for w, v, g in ((self.W[i], self.vW[i], gw), (self.b[i], self.vb[i], gb)):
                g += wd * w
                v *= momentum
                v -= lr * g
                w += v
        return loss

    def evaluate(self, X, y, batch=1024):
        correct, loss = 0, 0.0
        for s in range(0, X.shape[0], batch):
            p = self.forward(X[s:s + batch])[0][-1]
            correct += int(np.sum(np.argmax(p, axis=1) == y[s:s + batch]))
            loss -= float(np.sum(np.log(np.clip(p[np.arange(p.shape[0]), y[s:s + batch]],
                                                1e-7, 1 - 1e-7))))
        return loss / X.shape[0], correct / X.shape[0]


def _save_state(path, model, rng, recs):
    """Weights, velocities, generator state and records after an epoch (write, then rename)."""
    arrays = {f"{k}{i}": a for k in ("W", "b", "vW", "vb") for i, a in enumerate(getattr(model, k))}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, rng=json.dumps(rng.bit_generator.state), recs=json.dumps(recs), **arrays)
    os.replace(tmp, path)


def _load_state(path, model, rng):
    with np.load(path) as z:
        for k in ("W", "b", "vW", "vb"):
            for i, a in enumerate(getattr(model, k)):
                a[...] = z[f"{k}{i}"]
        rng.bit_generator.state = json.loads(str(z["rng"]))
        return json.loads(str(z["recs"]))


def train_dense(cfg, ds, *, rng, log=print, state=None, save_every=5):
    """Train a DenseMLP with a resolved TrainConfig's hyperparameters; per-epoch records.

    With ``state`` (a ``.npz`` path) the training state is saved every ``save_every`` epochs
    and a rerun continues from it, to the same result as an uninterrupted run.
    """
    sizes = [ds.n_features, *cfg.hidden, ds.n_classes]
    model = DenseMLP(sizes, rng=rng, dtype=np.dtype(cfg.dtype), dropout=cfg.dropout)
    X = np.ascontiguousarray(ds.X_train, dtype=model.dtype)
    Xte = np.ascontiguousarray(ds.X_test, dtype=model.dtype)
    eye = np.eye(ds.n_classes, dtype=model.dtype)
    recs, best = [], 0.0
    if state is not None and os.path.exists(state):
        recs = _load_state(state, model, rng)
        best = recs[-1]["best_test_accuracy"] if recs else 0.0
        log(f"dense: continuing from {state} after epoch {len(recs)}")
    for e in range(len(recs), cfg.epochs):
        lr = lr_at(cfg.lr_schedule, cfg.lr, e, cfg.epochs, lr_min=cfg.lr_min,
                   warmup=cfg.warmup_epochs)
        t0 = time.perf_counter()
        order = rng.permutation(X.shape[0])
        losses = []
        for s in range(0, X.shape[0], cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            losses.append(model.step(X[idx], eye[ds.y_train[idx]], lr=lr, momentum=cfg.momentum,
                                     wd=cfg.weight_decay, rng=rng))
        t1 = time.perf_counter()
        test_loss, acc = model.evaluate(Xte, ds.y_test)
        t2 = time.perf_counter()
        best = max(best, acc)
        recs.append({"epoch": e + 1, "train_loss": float(np.mean(losses)), "test_loss": test_loss,
                     "test_accuracy": acc, "best_test_accuracy": best, "seconds_train": t1 - t0,
                     "seconds_eval": t2 - t1})
        log(f"dense epoch {e + 1}/{cfg.epochs} acc {acc:.4f} best {best:.4f} "
            f"{t1 - t0:.1f}+{t2 - t1:.1f}s")
        if state is not None and ((e + 1) % save_every == 0 or e + 1 == cfg.epochs):
            _save_state(state, model, rng, recs)
    return model, recs
