"""Optimizers: remap after topology changes, state round trip, schedules, bad hyperparameters."""

import math

import numpy as np
import pytest

from sparsemlp.optim import SGD, Adam, lr_at


def test_remap_keeps_kept_state_and_zeroes_new():
    w = np.arange(6, dtype=np.float32)
    b = np.zeros(2, np.float32)
    opt = SGD([w, b], kernels="numpy")
    opt.state["velocity"][0][:] = np.arange(10, 16)
    keep = np.array([0, 2, 3, 5])
    new_positions = np.array([1, 4])
    opt.remap(0, keep, new_positions)
    np.testing.assert_array_equal(opt.state["velocity"][0], [10, 0, 12, 13, 0, 15])
    # nnz shrinks (pruning): a new, smaller array
    w2 = np.zeros(3, np.float32)
    opt.remap(0, np.array([0, 3, 5]), np.array([], int), new_param=w2)
    np.testing.assert_array_equal(opt.state["velocity"][0], [10, 13, 15])
    assert opt.params[0] is w2


def _steps(opt, seq):
    for grads, div, lr in seq:
        opt.step(grads, div, lr=lr)


@pytest.mark.parametrize("make", [
    lambda p, k: Adam(p, lr=0.01, weight_decay=0.01, decoupled=False, kernels=k),
    lambda p, k: Adam(p, lr=0.01, weight_decay=0.01, kernels=k),
    lambda p, k: SGD(p, lr=0.05, momentum=0.9, nesterov=True, kernels=k),
    lambda p, k: SGD(p, lr=0.05, momentum=0.5, decay="original", kernels=k),
], ids=["adam-coupled", "adamw", "sgd-nesterov", "sgd-original"])
def test_state_dict_round_trip_continues_exactly(make, backend, dtype):
    """An optimizer restored from state_dict() continues bit for bit as the original would:
    three steps, save, restore into a fresh optimizer on copies of the parameters, three
    more steps, against six steps without interruption."""
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal(9).astype(dtype), rng.standard_normal(3).astype(dtype)]
    seq = [([rng.standard_normal(9).astype(dtype), rng.standard_normal(3).astype(dtype)],
            float(t + 1), None if t % 2 else 0.02) for t in range(6)]
    straight = [x.copy() for x in p0]
    _steps(make(straight, backend), seq)

    first = [x.copy() for x in p0]
    a = make(first, backend)
    _steps(a, seq[:3])
    d = a.state_dict()  # references to a's live state
    assert d["optim.n_steps"] == 3
    resumed = [x.copy() for x in first]
    b = make(resumed, backend)
    b.load_state_dict(d)
    assert all(s.dtype == dtype for arrays in b.state.values() for s in arrays)
    _steps(a, seq[3:])  # the original goes on too: the restored state must not be shared
    _steps(b, seq[3:])
    for x, y, z in zip(straight, resumed, first):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    with pytest.raises(ValueError, match="shape"):
        make([np.zeros(4, dtype), p0[1]], backend).load_state_dict(d)


@pytest.mark.parametrize("kw,match", [
    (dict(lr=0.0), "'lr' parameter of SGD"),
    (dict(momentum=1.0), "'momentum' parameter of SGD"),
    (dict(weight_decay=-1.0), "'weight_decay'"),
    (dict(decay="l1"), "'decay' parameter of SGD"),
])
def test_bad_hyperparameters(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SGD([np.zeros(3)], **kw, kernels="numpy")


def test_schedules():
    assert lr_at("constant", 0.1, 5, 10) == 0.1
    assert lr_at("step", 0.1, 30, 100, step_size=30, gamma=0.5) == pytest.approx(0.05)
    assert lr_at("exponential", 0.1, 2, 10, gamma=0.5) == pytest.approx(0.025)
    assert lr_at("cosine", 0.1, 0, 10) == pytest.approx(0.1)
    assert lr_at("cosine", 0.1, 5, 10) == pytest.approx(0.05)
    assert lr_at("linear", 0.1, 10, 10, lr_min=0.01) == pytest.approx(0.01)
    assert lr_at("constant", 0.1, 0, 10, warmup=4) == pytest.approx(0.025)
    assert math.isclose(lr_at("cosine", 0.1, 10, 10), 0.0, abs_tol=1e-15)
    with pytest.raises(ValueError, match="Unknown lr schedule"):
        lr_at("sawtooth", 0.1, 0, 1)


def test_sgd_decreases_quadratic():
    w = np.array([3.0, -2.0])
    opt = SGD([w], lr=0.1, momentum=0.5, weight_decay=0.0, nesterov=True, kernels="numpy")
    for _ in range(100):
        opt.step([2 * w], 1.0)  # gradient of |w|^2
    assert np.abs(w).max() < 1e-6
