"""A small dense masked NumPy RBM with hand-written CD-k / PCD-k and SGD: the test oracle.

Feature-major like sparsemlp (``v`` of shape (n_visible, B)); float64; randomness drawn from a
``numpy.random.Generator`` in the documented layout of ``SparseRBM.sample`` (``random`` in the
shape of the probabilities) and ``sample_visible`` (``standard_normal`` likewise).
"""

import numpy as np


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


class DenseRBM:
    def __init__(self, W, bv, bh, *, gaussian=False):
        self.W = np.array(W, np.float64)
        self.mask = self.W != 0
        self.bv = np.array(bv, np.float64)
        self.bh = np.array(bh, np.float64)
        self.gaussian = gaussian
        self.vel = [np.zeros_like(self.W), np.zeros_like(self.bh), np.zeros_like(self.bv)]

    def ph(self, v):
        return sig(self.W.T @ v + self.bh[:, None])

    def mean_v(self, h):
        a = self.W @ h + self.bv[:, None]
        return a if self.gaussian else sig(a)

    @staticmethod
    def sample(p, g):
        return (p > g.random(p.shape)).astype(np.float64)

    def sample_v(self, mean, g):
        if self.gaussian:
            return mean + g.standard_normal(mean.shape)
        return self.sample(mean, g)

    def gradients(self, v, g, k=1, chains=None):
        """(grad W masked, grad b_h, grad b_v, recon, new chains or None) of one CD-k / PCD-k step."""
        B = v.shape[1]
        dh = self.sample(self.ph(v), g)
        if chains is None:
            h = dh
            for _ in range(k):
                mv = self.mean_v(h)
                mh = self.sample(self.ph(mv), g)
                h = mh
            nv, nh, recon = mv, mh, mv
        else:
            recon = self.mean_v(dh)
            c = chains
            for _ in range(k):
                c = self.sample_v(self.mean_v(self.sample(self.ph(c), g)), g)
            nv, nh = c, self.ph(c)
        Bn = nv.shape[1]
        gw = (nv @ nh.T / Bn - v @ dh.T / B) * self.mask
        return gw, nh.mean(1) - dh.mean(1), nv.mean(1) - v.mean(1), recon, (
            None if chains is None else nv)

    def step(self, v, g, *, lr, momentum=0.0, weight_decay=0.0, decay="original", k=1,
             chains=None):
        gw, gbh, gbv, recon, chains = self.gradients(v, g, k, chains)
        for i, (p, gr) in enumerate(((self.W, gw), (self.bh, gbh), (self.bv, gbv))):
            if decay == "coupled":
                gr = gr + weight_decay * p * (self.mask if i == 0 else 1)
            self.vel[i] = momentum * self.vel[i] - lr * gr
            if decay == "coupled":
                p += self.vel[i]
            else:
                p += self.vel[i] - weight_decay * p * (self.mask if i == 0 else 1)
        return float(np.mean((v - recon) ** 2)), chains
