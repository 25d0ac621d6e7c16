"""Whole training steps of Trainer and RBMTrainer (weights AND biases) against dense NumPy oracles.

Data-free: synthetic data, tiny models. Each optimizer and weight-decay rule the trainers can be
configured with (SGD original / coupled, Adam coupled L2 / decoupled AdamW) is checked by
arithmetic: a dense masked model (tests/dense_reference.py, tests/dense_rbm.py) gives the
gradients, a float64 textbook update rule the new parameters.
"""

import dense_reference as dref
import numpy as np
import pytest
from dense_rbm import DenseRBM
from test_adam import textbook_adam

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.training.rbm import RBMTrainer

WD = 0.05  # large enough that the two decay rules differ clearly after two steps


def textbook_sgd(p, grad_seq, *, lr, momentum, weight_decay, decay, mask=1.0):
    """SGD with momentum: ``decay="coupled"`` is ``v = mu v - lr (g + wd w); w += v``, the
    SET code's ``"original"`` is ``v = mu v - lr g; w += v - wd w`` (wd not scaled by lr)."""
    w = np.array(p, np.float64)
    v = np.zeros_like(w)
    for g in grad_seq:
        if decay == "coupled":
            g = g + weight_decay * w * mask
        v = momentum * v - lr * g
        w = w + v if decay == "coupled" else w + v - weight_decay * w * mask
    return w


def textbook(opt, decay, p, grad_seq, lr, mask=1.0):
    if opt == "sgd":
        return textbook_sgd(p, grad_seq, lr=lr, momentum=0.9, weight_decay=WD, decay=decay,
                            mask=mask)
    # Adam: --decay coupled is L2 in the gradient, anything else the decoupled AdamW rule
    rule = "coupled" if decay == "coupled" else "decoupled"
    out = textbook_adam([p], [([g], 1.0, None) for g in grad_seq], lr=lr, weight_decay=WD,
                        decay=rule)
    return out[-1][0] * mask


RULES = [("sgd", "original"), ("sgd", "coupled"), ("adam", "original"), ("adam", "coupled")]


def _mlp_data(n=12, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.arange(n) % c  # every class present
    rng.shuffle(y)
    return X, y


@pytest.mark.parametrize("opt,decay", RULES)
def test_trainer_two_steps_match_dense_oracle(opt, decay, backend):
    """Two full-batch epochs (no dropout, frozen topology): W and b follow the rule exactly."""
    X, y = _mlp_data()
    lr = 0.05 if opt == "sgd" else 0.01
    cfg = TrainConfig(hidden=(5,), epochs=2, batch_size=X.shape[0], lr=lr,
                      lr_schedule="constant", optimizer=opt, decay=decay, weight_decay=WD,
                      momentum=0.9, dropout=0.0, topology="static", epsilon=3, dtype="float64",
                      backend=backend, checkpoint_every=0, seed=1)
    tr = Trainer.from_config(cfg, X.shape[1], 3, verbose=False)
    layers = tr.model.layers
    Ws = [la.W.toarray() for la in layers]  # tiny oracle model only
    Ms = [(W != 0).astype(float) for W in Ws]
    bs = [la.b.astype(np.float64) for la in layers]
    for la in layers:
        assert np.all(la.b == 0)  # a zero start: a bias that never moves would stay at 0
    acts = [a.name for a in tr.model.activations]
    Y = np.eye(3)[y]
    # the oracle's steps: full-batch gradients of the mean loss (the order of the samples
    # within the one batch does not matter)
    params = [p for pair in zip(Ws, bs) for p in pair]
    masks = [m for pair in zip(Ms, [1.0] * len(bs)) for m in pair]
    seqs = [[] for _ in params]
    cur = [p.copy() for p in params]
    for _ in range(2):
        gW, gb = dref.gradients(cur[0::2], Ms, cur[1::2], acts, X, Y, cfg.resolve().loss)
        for i, g in enumerate(g for pair in zip(gW, gb) for g in pair):
            seqs[i].append(g)
        cur = [textbook(opt, decay, p, s, lr, m) for p, s, m in zip(params, seqs, masks)]
    tr.fit(X, y)
    assert tr.step == 2
    for i, la in enumerate(layers):
        rows = np.repeat(np.arange(la.n_in), np.diff(la.W.indptr))
        np.testing.assert_allclose(la.W.data, cur[2 * i][rows, la.W.indices], rtol=1e-9,
                                   atol=1e-12, err_msg=f"W of layer {i}")
        np.testing.assert_allclose(la.b, cur[2 * i + 1], rtol=1e-9, atol=1e-12,
                                   err_msg=f"bias of layer {i}")
        assert np.abs(la.b).min() > 0  # every bias moved


def _rbm_data(n=8, v=10, seed=0):
    return (np.random.default_rng(seed).random((n, v)) > 0.5).astype(np.float64)


@pytest.mark.parametrize("opt,decay", RULES)
def test_rbm_trainer_two_steps_match_dense_oracle(opt, decay, backend):
    """Two full-batch CD-1 epochs of RBMTrainer: W, hidden and visible biases by the rule."""
    X = _rbm_data()
    lr = 0.05 if opt == "sgd" else 0.01
    cfg = TrainConfig(model="rbm", hidden=(6,), epochs=2, batch_size=X.shape[0], lr=lr,
                      optimizer=opt, decay=decay, weight_decay=WD, momentum=0.9,
                      topology="static", epsilon=3, dtype="float64", backend=backend,
                      checkpoint_every=0, seed=2, pll="none", ais_every=0, normalize="none")
    tr = RBMTrainer.from_config(cfg, X.shape[1], verbose=False)
    m = tr.model
    dense = DenseRBM(m.W.toarray(), m.b_visible, m.b_hidden)  # tiny oracle model only
    st = Streams(cfg.seed)
    mask = dense.mask.astype(float)
    params = [dense.W.copy(), dense.bh.copy(), dense.bv.copy()]
    seqs, cur = [[], [], []], params
    for e in range(2):
        order = st.get("shuffle", e).permutation(X.shape[0])  # the trainer's documented streams
        dense.W, dense.bh, dense.bv = (x.copy() for x in cur)
        vt = np.ascontiguousarray(X[order].T)
        gw, gbh, gbv, _, _ = dense.gradients(vt, st.get("gibbs", e))
        for s, g in zip(seqs, (gw, gbh, gbv)):
            s.append(g)
        cur = [textbook(opt, decay, p, s, lr, mk)
               for p, s, mk in zip(params, seqs, (mask, 1.0, 1.0))]
    tr.fit(X)
    assert tr.step == 2
    np.testing.assert_allclose(m.W.toarray(), cur[0], rtol=1e-9, atol=1e-12, err_msg="W")
    np.testing.assert_allclose(m.b_hidden, cur[1], rtol=1e-9, atol=1e-12, err_msg="b_hidden")
    np.testing.assert_allclose(m.b_visible, cur[2], rtol=1e-9, atol=1e-12, err_msg="b_visible")
    assert not np.allclose(m.b_hidden, params[1]) and not np.allclose(m.b_visible, params[2])
