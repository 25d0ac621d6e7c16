"""Baseline that follows the original SET-RBM code's approach (Mocanu et al., Nat. Commun. 2018).

Written by us from the description of the SET-RBM code of Mocanu et al., "Scalable training of
artificial neural networks with adaptive sparse connectivity inspired by network science",
Nature Communications 9:2383 (2018), for timing and memory comparisons only. What it keeps from
the original, because that is what the original's cost is made of:

* float64 weights as a ``scipy.sparse`` CSR matrix, activations ``(batch, units)``;
* the Gibbs chain with SciPy dense-by-CSR products: ``DV @ W + bH`` and ``DH @ W.T + bV``
  (CD-1: sampled hidden units, mean-field visible units), sigmoid, sampling by masked
  assignment against a ``uniform`` draw;
* the CD update with the sampled DH and MH, as the original does it: ``W.tocoo()``, a serial
  loop over the connections that adds ``lr*(S1/B - S2/B) - wd*w`` in place (the original's
  Cython kernel; here Numba when installed, else a chunked NumPy gather), then ``tocsr()``;
* the original evolution after every epoch (the SET-MLP removal thresholds): thresholds from a
  full sort, ``tolil()``, the kept weights copied one by one into a ``dok_matrix``, then per
  new connection scalar ``randint`` draws until the position is free and a ``randn() / 20``
  value, ``tocsr()``;
* one legacy ``RandomState`` stream.

What it does not keep: the initialisation draws are vectorised (the original inserts them one
by one into a ``lil_matrix``); the test pass runs in chunks of ``eval_chunk`` samples instead
of the whole test set at once (at 1,000,000 hidden units one (480, n_hidden) float64 array is
3.8 GB and the original's pass makes several), which changes memory, not the numbers.
"""

import time

import numpy as np
import scipy.sparse as sp

try:  # the original's CD update is a serial Cython loop; a Numba loop is its closest twin here
    import numba

    @numba.njit(cache=True)
    def _cd_loop(wd, lr, dv, dh, mv, mh, rows, cols, out):
        B = dv.shape[0]
        for i in range(out.shape[0]):
            s1 = 0.0
            s2 = 0.0
            r = rows[i]
            c = cols[i]
            for j in range(B):
                s1 += dv[j, r] * dh[j, c]
                s2 += mv[j, r] * mh[j, c]
            out[i] += lr * (s1 / B - s2 / B) - wd * out[i]

    CD_KERNEL = "numba serial loop"
except ImportError:  # pragma: no cover
    _cd_loop = None
    CD_KERNEL = "numpy gather"


def cd_update(wd, lr, dv, dh, mv, mh, rows, cols, out):
    """The original kernel's arithmetic on the COO arrays of W (in place on ``out``)."""
    if _cd_loop is not None:
        _cd_loop(wd, lr, dv, dh, mv, mh, rows, cols, out)
        return
    step = 1 << 16
    B = dv.shape[0]
    for s in range(0, rows.shape[0], step):
        r, c = rows[s:s + step], cols[s:s + step]
        s1 = np.einsum("bk,bk->k", dv[:, r], dh[:, c])
        s2 = np.einsum("bk,bk->k", mv[:, r], mh[:, c])
        out[s:s + step] += lr * (s1 / B - s2 / B) - wd * out[s:s + step]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def sample(z, rs):
    """The original's stochastic activation: sigmoid, then 1 where it exceeds a uniform."""
    z = sigmoid(z)
    za = z.copy()
    prob = rs.uniform(0, 1, (z.shape[0], z.shape[1]))
    za[za > prob] = 1
    za[za <= prob] = 0
    return za


def er_draws(n_visible, n_hidden, epsilon, rs):
    """ER Law A (draws with replacement, last write wins), values ``randn() / 20``."""
    t = int(epsilon * (n_visible + n_hidden))
    vals = rs.randn(t) / 20
    rows = rs.randint(0, n_visible, size=t)
    cols = rs.randint(0, n_hidden, size=t)
    keys = rows.astype(np.int64) * n_hidden + cols
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    last = np.ones(t, dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    keys, vals = keys[last], vals[order[last]]
    return sp.coo_matrix((vals, (keys // n_hidden, keys % n_hidden)),
                         shape=(n_visible, n_hidden)).tocsr()


class OriginalSETRBM:
    """SET-RBM trained the way the original code does it (see the module docstring).

    Parameters
    ----------
    n_visible, n_hidden : int
        Units.
    epsilon, zeta, lr, weight_decay : float
        Demo defaults 10, 0.3, 0.1, 2e-7.
    rs : numpy.random.RandomState
        The one stream.
    """

    def __init__(self, n_visible, n_hidden, *, epsilon=10, zeta=0.3, lr=0.1, weight_decay=2e-7,
                 rs):
        self.rs = rs
        self.zeta, self.lr, self.wd = zeta, lr, weight_decay
        self.W = er_draws(n_visible, n_hidden, epsilon, rs)
        self.bV = np.zeros(n_visible)
        self.bH = np.zeros(n_hidden)

    def chain(self, x):
        dh = sample(x @ self.W + self.bH, self.rs)
        mv = sigmoid(dh @ self.W.transpose() + self.bV)
        mh = sample(mv @ self.W + self.bH, self.rs)
        return dh, mv, mh

    def learn(self, x):
        dh, mv, mh = self.chain(x)
        W = self.W.tocoo()
        cd_update(self.wd, self.lr, x, dh, mv, mh, W.row, W.col, W.data)
        self.W = W.tocsr()
        self.bV = self.bV + self.lr * (x.mean(0) - mv.mean(0)) - self.wd * self.bV
        self.bH = self.bH + self.lr * (dh.mean(0) - mh.mean(0)) - self.wd * self.bH
        return float(np.mean((x - mv) ** 2))

    def train_epoch(self, X, batch_size):
        order = np.arange(X.shape[0])
        self.rs.shuffle(order)
        x_ = X[order]
        errs = [self.learn(x_[j * batch_size:(j + 1) * batch_size])
                for j in range(X.shape[0] // batch_size)]
        return float(np.mean(errs))

    def reconstruct(self, X, chunk):
        sq = 0.0
        for s in range(0, X.shape[0], chunk):
            _, mv, _ = self.chain(X[s:s + chunk])
            sq += float(((X[s:s + chunk] - mv) ** 2).sum())
        return sq / X.size

    def evolve(self, addition=True):
        """The original routine: sort, lil rows into a dok, scalar regrowth loop."""
        values = np.sort(self.W.data)
        first_zero = int(np.abs(values).argmin())
        last_zero = values.shape[0] - int(np.abs(values)[::-1].argmin())
        largest_neg = values[int((1 - self.zeta) * first_zero)]
        smallest_pos = values[int(min(values.shape[0] - 1,
                                      last_zero + self.zeta * (values.shape[0] - last_zero)))]
        n_v, n_h = self.W.shape
        wlil = self.W.tolil()
        wdok = sp.dok_matrix((n_v, n_h), dtype="float64")
        kept = 0
        for ik, (row, data) in enumerate(zip(wlil.rows, wlil.data)):
            for jk, val in zip(row, data):
                if val < largest_neg or val > smallest_pos:
                    wdok[ik, jk] = val
                    kept += 1
        if addition:
            for _ in range(self.W.data.shape[0] - kept):
                ik = self.rs.randint(0, n_v)
                jk = self.rs.randint(0, n_h)
                while wdok[ik, jk] != 0:
                    ik = self.rs.randint(0, n_v)
                    jk = self.rs.randint(0, n_h)
                wdok[ik, jk] = self.rs.randn() / 20
        self.W = wdok.tocsr()


def run_epochs(model, Xtr, Xte, *, epochs, batch_size=10, eval_chunk=10):
    """Train ``epochs`` epochs, each followed by a test pass and an evolution; per-epoch times."""
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        err = model.train_epoch(Xtr, batch_size)
        t1 = time.perf_counter()
        test = model.reconstruct(Xte, eval_chunk)
        t2 = time.perf_counter()
        model.evolve()
        t3 = time.perf_counter()
        out.append({"train_s": t1 - t0, "eval_s": t2 - t1, "evolution_s": t3 - t2,
                    "epoch_s": (t1 - t0) + (t3 - t2), "train_recon": err, "test_recon": test,
                    "nnz": int(model.W.nnz)})
    return out
