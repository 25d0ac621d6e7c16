"""Adam.step over several steps against a float64 textbook Adam / AdamW, on every backend."""

import numpy as np
import pytest

from sparsemlp.nn.optim import Adam, make_optimizer


def textbook_adam(params, grad_seq, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                  decay="none"):
    """Kingma & Ba (2015), Algorithm 1, in float64, one parameter vector at a time.

    ``grad_seq`` is a list of ``(grads, divisor, lr_or_None)``: batch sums, the number of
    samples they cover, and the step's learning rate. ``decay="coupled"`` adds
    ``weight_decay * theta`` to the gradient (L2); ``decay="decoupled"`` is AdamW
    (Loshchilov & Hutter 2019, Algorithm 2 with alpha = 1 and the schedule multiplier
    eta_t = lr): ``theta -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * theta)``.
    Returns the parameter vectors after every step.
    """
    theta = [np.array(p, dtype=np.float64) for p in params]
    m = [np.zeros_like(p) for p in theta]
    v = [np.zeros_like(p) for p in theta]
    out = []
    for t, (grads, div, step_lr) in enumerate(grad_seq, start=1):
        a = lr if step_lr is None else step_lr
        for i, p in enumerate(theta):
            g = np.asarray(grads[i], np.float64) / div
            if decay == "coupled":
                g = g + weight_decay * p
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            step = m_hat / (np.sqrt(v_hat) + eps)
            if decay == "decoupled":
                step = step + weight_decay * p
            theta[i] = p - a * step
        out.append([p.copy() for p in theta])
    return out


def _problem(dtype, seed=0, n_steps=6):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(40).astype(dtype), rng.standard_normal(7).astype(dtype)]
    # gradient sums of a few samples, of varied size per step (early steps matter most for
    # the bias corrections); lr changes on some steps as a schedule would
    seq = []
    for t in range(n_steps):
        div = float(rng.integers(1, 9))
        grads = [(rng.standard_normal(p.shape[0]) * div * (0.1 + t)).astype(dtype)
                 for p in params]
        seq.append((grads, div, None if t % 3 else 0.01 / (t + 1)))
    return params, seq


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("decay,wd", [("none", 0.0), ("coupled", 0.05), ("decoupled", 0.05)])
def test_adam_steps_match_textbook(backend, dtype, decay, wd):
    params, seq = _problem(dtype)
    expect = textbook_adam(params, seq, lr=0.02, beta1=0.8, beta2=0.99, weight_decay=wd,
                           decay=decay)
    live = [p.copy() for p in params]
    opt = Adam(live, lr=0.02, beta1=0.8, beta2=0.99, weight_decay=wd,
               decoupled=decay != "coupled", kernels=backend)
    for t, ((grads, div, step_lr), exp) in enumerate(zip(seq, expect), start=1):
        opt.step(grads, div, lr=step_lr)
        assert opt.n_steps == t
        for p, e in zip(live, exp):
            assert p.dtype == dtype
            np.testing.assert_allclose(p, e, **_tol(dtype), err_msg=f"step {t}")


def test_default_hyperparameters_are_the_papers(dtype):
    """lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8 (Kingma & Ba 2015), no decay, AdamW rule."""
    params, seq = _problem(dtype, seed=1)
    expect = textbook_adam(params, seq, lr=1e-3)
    live = [p.copy() for p in params]
    opt = Adam(live, kernels="numpy")
    for grads, div, step_lr in seq:
        opt.step(grads, div, lr=step_lr)
    for p, e in zip(live, expect[-1]):
        np.testing.assert_allclose(p, e, **_tol(dtype))
    assert opt.decoupled and opt.weight_decay == 0.0
    assert make_optimizer("adam", [np.zeros(2)]).beta2 == 0.999


def test_first_step_moves_each_weight_by_lr():
    """The bias-corrected first step is lr * g / (|g| + eps'): about lr in every coordinate,
    whatever the gradient's scale (the property the corrections exist for)."""
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(50)
    for scale in (1e-3, 1.0, 1e3):
        w = w0.copy()
        g = rng.standard_normal(50) * scale
        Adam([w], lr=0.01, adam_eps=1e-12, kernels="numpy").step([g], 1.0)
        np.testing.assert_allclose(w0 - w, 0.01 * np.sign(g), rtol=1e-6)


@pytest.mark.parametrize("decoupled", [True, False])
def test_split_step_equals_one_step(backend, decoupled):
    """Layer by layer (``only``, ``advance`` on the last call) equals one whole step."""
    params, seq = _problem(np.float64, seed=2)
    whole = [p.copy() for p in params]
    split = [p.copy() for p in params]
    a = Adam(whole, lr=0.01, weight_decay=0.1, decoupled=decoupled, kernels=backend)
    b = Adam(split, lr=0.01, weight_decay=0.1, decoupled=decoupled, kernels=backend)
    for grads, div, step_lr in seq:
        a.step(grads, div, lr=step_lr)
        b.step(grads, div, lr=step_lr, only=(1,), advance=False)
        assert b.n_steps == a.n_steps - 1
        b.step(grads, div, lr=step_lr, only=[0], advance=True)
        assert b.n_steps == a.n_steps
    for x, y in zip(whole, split):
        np.testing.assert_array_equal(x, y)


def test_adam_rejects_bad_hyperparameters():
    for kw, match in [(dict(beta1=1.0), "'beta1' parameter of Adam"),
                      (dict(beta2=-0.1), "'beta2' parameter of Adam"),
                      (dict(adam_eps=0.0), "'adam_eps' parameter of Adam"),
                      (dict(decoupled="yes"), "'decoupled' parameter of Adam"),
                      (dict(lr=-1.0), "'lr' parameter of Adam")]:
        with pytest.raises((ValueError, TypeError), match=match):
            Adam([np.zeros(3)], kernels="numpy", **kw)


@pytest.mark.parametrize("decay", ["coupled", "decoupled"])
@pytest.mark.parametrize("no_decay", [[1], (np.int64(0),)])
def test_no_decay_parameters_follow_adam_without_weight_decay(backend, decay, no_decay):
    """Parameters listed in ``no_decay`` (the trainer lists SReLU's) take the textbook step
    without weight decay; the others keep it; ``make_optimizer`` passes the list on."""
    params, seq = _problem(np.float64)
    with_wd = textbook_adam(params, seq, lr=0.02, weight_decay=0.05, decay=decay)[-1]
    without = textbook_adam(params, seq, lr=0.02, decay="none")[-1]
    for make in (lambda live: Adam(live, lr=0.02, weight_decay=0.05, no_decay=no_decay,
                                   decoupled=decay == "decoupled", kernels=backend),
                 lambda live: make_optimizer("adam", live, lr=0.02, weight_decay=0.05,
                                             no_decay=no_decay, decoupled=decay == "decoupled",
                                             kernels=backend)):
        live = [p.copy() for p in params]
        opt = make(live)
        for grads, div, step_lr in seq:
            opt.step(grads, div, lr=step_lr)
        for i, p in enumerate(live):
            exp = without[i] if i in [int(j) for j in no_decay] else with_wd[i]
            np.testing.assert_allclose(p, exp, **_tol(np.float64), err_msg=f"param {i}")
