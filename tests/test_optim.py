"""Optimizers: SGD against textbook momentum, remap after topology changes, exact state round
trip, schedules against their formulas, defaults, bad hyperparameters."""

import math
import re

import numpy as np
import pytest

from sparsemlp import _kernels
from sparsemlp.nn.optim import SGD, Adam, flat_views, lr_at, make_optimizer


def textbook_sgd(w, grad_seq, *, lr, momentum, weight_decay, decay, nesterov):
    """Heavy-ball / Nesterov momentum in float64 (Sutskever et al. 2013, in the common
    "lookahead on the gradient" form). ``coupled``: L2 in the gradient,
    ``v = mu v - lr (g + wd w); w += v``; ``original`` (SET code): ``v = mu v - lr g;
    w += v - wd w``. Nesterov adds ``mu v_new - lr g`` instead of ``v_new``."""
    w = np.array(w, np.float64)
    v = np.zeros_like(w)
    for grad, div, step_lr in grad_seq:
        a = lr if step_lr is None else step_lr
        g = np.asarray(grad, np.float64) / div
        if decay == "coupled":
            g = g + weight_decay * w
        v = momentum * v - a * g
        step = momentum * v - a * g if nesterov else v
        w = w + step if decay == "coupled" else w + step - weight_decay * w
    return w


@pytest.mark.parametrize("decay", ["coupled", "original"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_steps_match_textbook(backend, dtype, decay, nesterov):
    rng = np.random.default_rng(4)
    w0 = [rng.standard_normal(30).astype(dtype), rng.standard_normal(4).astype(dtype)]
    seq = [([rng.standard_normal(p.shape[0]).astype(dtype) for p in w0], float(t + 2),
            None if t % 2 else 0.1 / (t + 1)) for t in range(5)]
    live = [p.copy() for p in w0]
    opt = SGD(live, lr=0.03, momentum=0.8, weight_decay=0.02, decay=decay, nesterov=nesterov,
              kernels=backend)
    for grads, div, lr in seq:
        opt.step(grads, div, lr=lr)
    assert opt.n_steps == 5
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for i, p in enumerate(live):
        exp = textbook_sgd(w0[i], [(g[i], d, lr) for g, d, lr in seq], lr=0.03, momentum=0.8,
                           weight_decay=0.02, decay=decay, nesterov=nesterov)
        np.testing.assert_allclose(p, exp, **tol)


def test_sgd_defaults_are_the_documented_ones():
    """lr 0.01, momentum 0.9, weight decay 2e-4 coupled, no Nesterov, the auto backend."""
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal(10)
    seq = [(rng.standard_normal(10), 1.0, None) for _ in range(3)]
    w = w0.copy()
    opt = SGD([w])
    assert opt.kernels is _kernels.get("auto")
    for g, d, lr in seq:
        opt.step([g], d, lr=lr)
    exp = textbook_sgd(w0, seq, lr=0.01, momentum=0.9, weight_decay=2e-4, decay="coupled",
                       nesterov=False)
    np.testing.assert_allclose(w, exp, rtol=1e-12)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_optimizer_uses_the_backend_it_is_given(cls, backend):
    opt = cls([np.zeros(3)], kernels=backend)
    assert opt.kernels is _kernels.get(backend)
    ks = _kernels.get(backend)
    assert cls([np.zeros(3)], kernels=ks).kernels is ks


def test_flat_views_layout():
    params = [np.zeros(3, np.float32), np.zeros(0, np.float32), np.zeros(2, np.float32)]
    flat, views = flat_views(params, np.float32)
    assert flat.dtype == np.float32 and flat.shape == (5,)
    assert [v.shape for v in views] == [(3,), (0,), (2,)]
    flat[:] = np.arange(5)
    np.testing.assert_array_equal(views[0], [0, 1, 2])
    np.testing.assert_array_equal(views[2], [3, 4])
    assert flat_views(params, np.float64)[0].dtype == np.float64


def test_state_keeps_the_parameter_dtype():
    """remap to a reallocated parameter and load_state_dict of float64 arrays keep the
    state in the parameters' dtype (float32 state stays 4 bytes per connection)."""
    w = np.ones(6, np.float32)
    opt = Adam([w], kernels="numpy")
    opt.remap(0, np.array([0, 2, 4]), np.array([1]), new_param=np.zeros(4, np.float32))
    assert all(a[0].dtype == np.float32 and a[0].shape == (4,) for a in opt.state.values())
    opt.load_state_dict({"optim.n_steps": 2, "optim.m.0": np.arange(4.0),
                         "optim.v.0": np.ones(4)})
    assert opt.state["m"][0].dtype == np.float32 and opt.n_steps == 2
    np.testing.assert_array_equal(opt.state["m"][0], [0, 1, 2, 3])


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


def _msg(name, owner, rule, got):
    return "^" + re.escape(f"The {name!r} parameter of {owner} must be {rule}. Got {got!r} "
                           "instead.") + "$"


@pytest.mark.parametrize("cls,kw,exc,rule", [
    (SGD, dict(lr=0.0), ValueError, "a float in the range (0, inf)"),
    (SGD, dict(lr="0.1"), TypeError, "a float in the range (0, inf)"),
    (SGD, dict(momentum=1.0), ValueError, "a float in the range [0, 1)"),
    (SGD, dict(momentum=-0.1), ValueError, "a float in the range [0, 1)"),
    (SGD, dict(weight_decay=-1.0), ValueError, "a float in the range [0, inf)"),
    (SGD, dict(weight_decay="0"), TypeError, "a float in the range [0, inf)"),
    (SGD, dict(nesterov=1), TypeError, "a bool"),
    (SGD, dict(decay="l1"), ValueError, "one of 'original', 'coupled'"),
    (Adam, dict(lr=-1.0), ValueError, "a float in the range (0, inf)"),
    (Adam, dict(weight_decay=-0.5), ValueError, "a float in the range [0, inf)"),
    (Adam, dict(beta1=1.0), ValueError, "a float in the range [0, 1)"),
    (Adam, dict(beta1=-0.1), ValueError, "a float in the range [0, 1)"),
    (Adam, dict(beta2=1.0), ValueError, "a float in the range [0, 1)"),
    (Adam, dict(beta2=1.5), ValueError, "a float in the range [0, 1)"),
    (Adam, dict(beta2=-0.1), ValueError, "a float in the range [0, 1)"),
    (Adam, dict(adam_eps=0.0), ValueError, "a float in the range (0, inf)"),
    (Adam, dict(decoupled="yes"), TypeError, "a bool"),
])
def test_bad_hyperparameters(cls, kw, exc, rule):
    (name, got), = kw.items()
    with pytest.raises(exc, match=_msg(name, cls.__name__, rule, got)):
        cls([np.zeros(3)], **kw, kernels="numpy")


def test_unknown_optimizer():
    with pytest.raises(ValueError, match=r"^Unknown optimizer 'rmsprop'\. Choose 'sgd' or 'adam'\.$"):
        make_optimizer("rmsprop", [np.zeros(2)])
    assert isinstance(make_optimizer("sgd", [np.zeros(2)], lr=0.5), SGD)


def textbook_lr(schedule, lr, e, n, gamma=0.1, step_size=30, lr_min=0.0, warmup=0):
    """The schedules as written in their docstring, epoch by epoch (0-based)."""
    if e < warmup:
        return lr * (e + 1) / warmup
    k, m = e - warmup, n - warmup
    return {"constant": lr,
            "step": lr * gamma ** math.floor(k / step_size),
            "exponential": lr * gamma**k,
            "cosine": lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(k, m) / m)) / 2,
            "linear": lr - (lr - lr_min) * min(k, m) / m}[schedule]


@pytest.mark.parametrize("schedule", ["constant", "step", "exponential", "cosine", "linear"])
@pytest.mark.parametrize("kw", [{}, dict(gamma=0.5, step_size=3, lr_min=0.01, warmup=4)])
def test_schedules_match_their_formulas(schedule, kw):
    n = 12
    for e in range(n + 2):
        assert lr_at(schedule, 0.2, e, n, **kw) == pytest.approx(
            textbook_lr(schedule, 0.2, e, n, **kw), rel=1e-12, abs=1e-15), e
    # defaults: gamma 0.1, step size 30
    if schedule == "step":
        assert lr_at("step", 1.0, 29, 100) == 1.0
        assert lr_at("step", 1.0, 30, 100) == pytest.approx(0.1)
        assert lr_at("step", 1.0, 65, 100) == pytest.approx(0.01)


def test_schedule_edges():
    # one epoch after the warm-up: cosine and linear reach lr_min at its end
    assert lr_at("cosine", 1.0, 1, 1) == pytest.approx(0.0, abs=1e-15)
    assert lr_at("linear", 1.0, 3, 3, lr_min=0.1, warmup=2) == pytest.approx(0.1)
    assert lr_at("cosine", 1.0, 5, 3, lr_min=0.2) == pytest.approx(0.2)  # stays after the end
    with pytest.raises(ValueError, match=r"^Unknown lr schedule 'sawtooth'\. Choose one of "
                                         r"constant, step, exponential, cosine, linear\.$"):
        lr_at("sawtooth", 0.1, 0, 1)


def test_rebind_keeps_state_and_checks_shapes():
    """rebind (after the layers' arrays were replaced): new arrays, the same state, the
    next step updates the new arrays."""
    w, b = np.ones(4), np.ones(2)
    opt = SGD([w, b], lr=0.1, momentum=0.5, weight_decay=0.0, kernels="numpy")
    opt.step([np.ones(4), np.ones(2)], 1.0)
    w2, b2 = w.copy(), b.copy()
    opt.rebind([w2, b2])
    assert opt.params[0] is w2 and opt.params[1] is b2
    opt.step([np.ones(4), np.ones(2)], 1.0)
    np.testing.assert_allclose(w2, 1 - 0.1 - (0.5 * 0.1 + 0.1))  # v1 = -0.1, v2 = -0.15
    np.testing.assert_array_equal(w, 0.9)  # the old array is left alone
    with pytest.raises(ValueError, match="^rebind needs arrays of the same shapes; use remap "
                                         "for topology$"):
        opt.rebind([np.ones(3), b2])
    assert opt.params[0] is w2


def test_sgd_decreases_quadratic():
    w = np.array([3.0, -2.0])
    opt = SGD([w], lr=0.1, momentum=0.5, weight_decay=0.0, nesterov=True, kernels="numpy")
    for _ in range(100):
        opt.step([2 * w], 1.0)  # gradient of |w|^2
    assert np.abs(w).max() < 1e-6


@pytest.mark.parametrize("decay", ["coupled", "original"])
@pytest.mark.parametrize("no_decay", [[0], (np.int64(1),)])
def test_no_decay_parameters_follow_sgd_without_weight_decay(backend, decay, no_decay):
    """Parameters listed in ``no_decay`` (the trainer lists SReLU's) take the textbook step
    without weight decay; the others keep it; ``make_optimizer`` passes the list on."""
    rng = np.random.default_rng(9)
    w0 = [rng.standard_normal(20), rng.standard_normal(5)]
    seq = [([rng.standard_normal(p.shape[0]) for p in w0], 3.0, None) for _ in range(4)]
    skip = [int(j) for j in no_decay]
    for make in (lambda live: SGD(live, lr=0.05, momentum=0.7, weight_decay=0.1, decay=decay,
                                  no_decay=no_decay, kernels=backend),
                 lambda live: make_optimizer("sgd", live, lr=0.05, momentum=0.7,
                                             weight_decay=0.1, decay=decay, no_decay=no_decay,
                                             kernels=backend)):
        live = [p.copy() for p in w0]
        opt = make(live)
        for grads, div, lr in seq:
            opt.step(grads, div, lr=lr)
        for i, p in enumerate(live):
            exp = textbook_sgd(w0[i], [(g[i], d, lr) for g, d, lr in seq], lr=0.05,
                               momentum=0.7, weight_decay=0.0 if i in skip else 0.1,
                               decay=decay, nesterov=False)
            np.testing.assert_allclose(p, exp, rtol=1e-12, atol=1e-14, err_msg=f"param {i}")
