"""Baseline that follows the original SET-MLP code's approach (Mocanu et al., Nat. Commun. 2018).

Written by us from the description of the SET-MLP code of Mocanu et al., "Scalable training of
artificial neural networks with adaptive sparse connectivity inspired by network science",
Nature Communications 9:2383 (2018), for timing and memory comparisons only. What it keeps from
the original, because that is what the original code's per-epoch times and memory (timed with
the authors' code on the lung demo shape, see benchmarks/README.md) are made of:

* float64 weights as ``scipy.sparse`` CSR matrices, activations ``(batch, features)``;
* forward ``a @ W + b`` and backward ``delta @ W.T`` as SciPy dense-by-CSR products;
* the weight gradient as a COO matrix on W's pattern (a copy, never aliasing W: with current
  SciPy the original's ``coo_matrix(W)`` shares ``W.data`` and its gradient would overwrite W)
  whose values come from a serial SDDMM loop (the original's Cython kernel; here Numba when
  installed, else a chunked NumPy gather), then converted to CSR;
* the momentum / decay update with allocating CSR arithmetic:
  ``V = mu*V - lr*G``, ``W = W + (V - lam*W)`` (the original's per-step decay, not
  scaled by ``lr``; the first step of a layer is ``V = -lr*G``);
* the fast evolution (the original's ``weightsEvolution_Amar``) after every epoch:
  thresholds from a full sort, COO coordinates, set operations on structured (row, col) views
  (``np.isin``, ``np.unique(axis=0)``) to carry the velocity and to reject occupied positions,
  rejection rounds for regrowth, the output layer included;
* one legacy ``RandomState`` stream.

What it does not keep: the initialisation draws are vectorised (the original inserts them one
by one into a ``lil_matrix``, about 10 us per draw); init is not part of the per-epoch time.
"""

import time

import numpy as np
import scipy.sparse as sp

try:  # the original's SDDMM is a serial Cython loop; a Numba loop is its closest twin here
    import numba

    @numba.njit(cache=True)
    def _sddmm_loop(a, delta, rows, cols, out):
        B = a.shape[0]
        for k in range(rows.shape[0]):
            s = 0.0
            r = rows[k]
            c = cols[k]
            for b in range(B):
                s += a[b, r] * delta[b, c]
            out[k] = s / B

    SDDMM = "numba serial loop"
except ImportError:  # pragma: no cover
    _sddmm_loop = None
    SDDMM = "numpy gather"


def sddmm(a, delta, rows, cols):
    """``out[k] = mean_b a[b, rows[k]] * delta[b, cols[k]]`` (float64, a new array)."""
    out = np.empty(rows.shape[0])
    if _sddmm_loop is not None:
        _sddmm_loop(a, delta, rows, cols, out)
        return out
    step = 1 << 16
    for s in range(0, rows.shape[0], step):
        r, c = rows[s:s + step], cols[s:s + step]
        out[s:s + step] = np.einsum("bk,bk->k", a[:, r], delta[:, c]) / a.shape[0]
    return out


def er_draws(n_in, n_out, epsilon, rs):
    """Law A (draws with replacement, last write wins, N(0, 0.1^2)) as float64 CSR."""
    t = int(round(epsilon * (n_in + n_out)))
    vals = rs.randn(t) / 10
    rows = rs.randint(0, n_in, size=t)
    cols = rs.randint(0, n_out, size=t)
    keys = rows.astype(np.int64) * n_out + cols
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    last = np.ones(t, dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    keys, vals = keys[last], vals[order[last]]
    W = sp.coo_matrix((vals, (keys // n_out, keys % n_out)), shape=(n_in, n_out)).tocsr()
    return W


def _pairs_in(a, b):
    """For each (row, col) pair of ``a`` (k x 2), whether it occurs in ``b``: structured views."""
    dt = {"names": ["r", "c"], "formats": [a.dtype, a.dtype]}
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b.astype(a.dtype, copy=False))
    # the original calls in1d without assume_unique: both sides are sorted by np.unique first
    return np.isin(a.view(dt).ravel(), b.view(dt).ravel())


def relu(z):
    return np.maximum(z, 0)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class OriginalSETMLP:
    """SET-MLP trained the way the original code does it (see the module docstring).

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    epsilon, zeta, lr, momentum, weight_decay : float
        SET and SGD hyperparameters (demo defaults 20, 0.3, 0.01, 0.9, 2e-4).
    seed : int
        Seed of the one ``RandomState`` stream.
    """

    def __init__(self, sizes, *, epsilon=20, zeta=0.3, lr=0.01, momentum=0.9,
                 weight_decay=2e-4, seed=0, rs=None):
        self.rs = rs if rs is not None else np.random.RandomState(seed)
        self.sizes = list(sizes)
        self.zeta, self.lr, self.mu, self.lam = zeta, lr, momentum, weight_decay
        self.W = [er_draws(a, b, epsilon, self.rs) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]
        self.V = [None] * len(self.W)  # velocities (CSR), None before the first update
        self.vb = [None] * len(self.W)
        self.rounds = []

    def nnz(self):
        return [int(W.nnz) for W in self.W]

    def forward(self, x):
        zs, acts = [], [x]
        a = x
        L = len(self.W)
        for i in range(L):
            z = a @ self.W[i] + self.b[i]  # dense (B, n) @ CSR (n, m): SciPy
            a = sigmoid(z) if i == L - 1 else relu(z)
            zs.append(z)
            acts.append(a)
        return zs, acts

    def train_step(self, x, y):
        zs, acts = self.forward(x)
        yhat = acts[-1]
        loss = float(np.mean((yhat - y) ** 2))
        s = sigmoid(yhat)
        delta = (yhat - y) * s * (1 - s)  # the original's output delta: sigmoid' at yhat, no 2/C
        B = x.shape[0]
        grads = [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            coo = sp.coo_matrix(self.W[i], copy=True)  # gradient container on W's pattern
            coo.data = sddmm(acts[i], delta, coo.row, coo.col)
            grads[i] = (coo.tocsr(), delta.mean(axis=0))
            if i > 0:
                delta = (delta @ self.W[i].T) * (zs[i - 1] > 0)  # dense @ CSR.T: SciPy
        for i, (G, g) in enumerate(grads):  # _update_w_b: allocating CSR arithmetic
            if self.V[i] is None:
                self.V[i] = -self.lr * G
                self.vb[i] = -self.lr * g
            else:
                self.V[i] = self.mu * self.V[i] - self.lr * G
                self.vb[i] = self.mu * self.vb[i] - self.lr * g
            self.W[i] = self.W[i] + (self.V[i] - self.lam * self.W[i])
            self.b[i] = self.b[i] + (self.vb[i] - self.lam * self.b[i])
        del B
        return loss

    def train_epoch(self, X, Y, batch_size):
        order = np.arange(X.shape[0])
        self.rs.shuffle(order)
        losses = []
        for j in range(X.shape[0] // batch_size):
            idx = order[j * batch_size:(j + 1) * batch_size]
            losses.append(self.train_step(X[idx], Y[idx]))
        return float(np.mean(losses))

    def evaluate(self, X, Y, batch_size):
        correct, loss = 0, 0.0
        for s in range(0, X.shape[0], batch_size):
            _, acts = self.forward(X[s:s + batch_size])
            yhat = acts[-1]
            loss += float(np.sum((yhat - Y[s:s + batch_size]) ** 2))
            correct += int(np.sum(yhat.argmax(1) == Y[s:s + batch_size].argmax(1)))
        return correct / X.shape[0], loss / Y.size

    def evolve_layer(self, i):
        """The fast evolution of layer ``i``; returns the number of rejection rounds."""
        W = self.W[i]
        n_in, n_out = W.shape
        # the original's thresholds (largestNegative / smallestPositive) from a full sort
        v = np.sort(W.data)
        N = v.shape[0]
        absv = np.abs(v)
        p = int(absv.argmin())
        q = N - int(absv[::-1].argmin())
        t_neg = v[int((1.0 - self.zeta) * p)]
        t_pos = v[int(min(N - 1, q + self.zeta * (N - q)))]
        wcoo = W.tocoo()
        keep = (wcoo.data < t_neg) | (wcoo.data > t_pos)
        vals, rows, cols = wcoo.data[keep], wcoo.row[keep], wcoo.col[keep]
        kept_rc = np.stack((rows, cols), axis=-1)
        # velocity: keep the entries whose (row, col) survived (set intersection)
        if self.V[i] is not None:
            vcoo = self.V[i].tocoo()
            flag = _pairs_in(np.stack((vcoo.row, vcoo.col), axis=-1), kept_rc)
            self.V[i] = sp.coo_matrix((vcoo.data[flag], (vcoo.row[flag], vcoo.col[flag])),
                                      shape=W.shape).tocsr()
        # regrowth: values first, then rounds of random pairs minus the occupied ones
        need = N - rows.shape[0]
        new_vals = self.rs.randn(need) / 10
        rounds = 0
        while need > 0:
            ik = self.rs.randint(0, n_in, size=need, dtype=np.int32)
            jk = self.rs.randint(0, n_out, size=need, dtype=np.int32)
            cand = np.unique(np.stack((ik, jk), axis=-1), axis=0)
            occupied = np.stack((rows, cols), axis=-1)
            fresh = ~_pairs_in(cand, occupied)
            rows = np.append(rows, cand[fresh, 0])
            cols = np.append(cols, cand[fresh, 1])
            need = N - rows.shape[0]
            rounds += 1
        vals = np.append(vals, new_vals)
        self.W[i] = sp.coo_matrix((vals, (rows, cols)), shape=W.shape).tocsr()
        return rounds

    def evolve(self):
        self.rounds = [self.evolve_layer(i) for i in range(len(self.W))]


def run_epochs(model, Xtr, Ytr, Xte, Yte, *, epochs, batch_size=2):
    """Train ``epochs`` epochs, each followed by a test pass and an evolution; per-epoch times."""
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        loss = model.train_epoch(Xtr, Ytr, batch_size)
        t1 = time.perf_counter()
        acc, test_loss = model.evaluate(Xte, Yte, batch_size)
        t2 = time.perf_counter()
        model.evolve()
        t3 = time.perf_counter()
        out.append({"train_s": t1 - t0, "eval_s": t2 - t1, "evolution_s": t3 - t2,
                    "epoch_s": (t1 - t0) + (t3 - t2), "train_loss": loss,
                    "test_accuracy": acc, "test_loss": test_loss, "rounds": list(model.rounds)})
    return out
