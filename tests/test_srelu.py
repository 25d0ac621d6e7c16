"""SReLU against its piecewise definition (Jin et al. 2016) and central finite differences."""

import numpy as np
import pytest

from sparsemlp.nn.srelu import SReLU


def definition(z, t_l, a_l, d, a_r):
    """The three pieces, written elementwise with Python floats."""
    out = np.empty_like(z)
    for j in range(z.shape[0]):
        tr = t_l[j] + abs(d[j])
        for b in range(z.shape[1]):
            x = z[j, b]
            if x >= tr:
                out[j, b] = tr + a_r[j] * (x - tr)
            elif x <= t_l[j]:
                out[j, b] = t_l[j] + a_l[j] * (x - t_l[j])
            else:
                out[j, b] = x
    return out


def make(seed, n=7, B=40):
    rng = np.random.default_rng(seed)
    act = SReLU(n, rng=rng, dtype=np.float64)
    act.params[0] = rng.uniform(-1, 1, n)
    act.params[3] = rng.uniform(0.2, 2, n)
    act.params[2] *= rng.choice([-1, 1], n)  # d < 0 too: t_r = t_l + |d|
    z = rng.uniform(-4, 7, (n, B))
    return act, z


def away_from_kinks(act, z, h):
    t_l, _, d, _ = act.params
    t_r = t_l + np.abs(d)
    return (np.abs(z - t_l[:, None]) > 10 * h) & (np.abs(z - t_r[:, None]) > 10 * h)


@pytest.mark.parametrize("seed", range(5))
def test_forward_matches_definition(seed):
    act, z = make(seed)
    np.testing.assert_allclose(act.forward(z), definition(z, *act.params), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_backward_matches_finite_differences(seed):
    act, z = make(seed)
    h = 1e-6
    c = np.random.default_rng(seed + 100).standard_normal(z.shape)  # L = sum(c * f(z))
    delta = c.copy()
    act.backward(z, act.forward(z), delta)
    fd = c * (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    ok = away_from_kinks(act, z, h)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(delta[ok], fd[ok], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_param_grads_match_finite_differences(seed):
    act, z = make(seed)
    h = 1e-6
    c = np.random.default_rng(seed + 100).standard_normal(z.shape)
    c[~away_from_kinks(act, z, h)] = 0  # the loss ignores points at a kink
    g = act.param_grads(z, c)
    fd = np.empty_like(g)
    for r in range(4):
        for j in range(act.params.shape[1]):
            keep = act.params[r, j]
            act.params[r, j] = keep + h
            up = (c * act.forward(z)).sum()
            act.params[r, j] = keep - h
            down = (c * act.forward(z)).sum()
            act.params[r, j] = keep
            fd[r, j] = (up - down) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_parameters_train_towards_a_teacher():
    """Gradient descent on the parameters alone fits a teacher SReLU's outputs."""
    rng = np.random.default_rng(0)
    teacher = SReLU(5, rng=rng, dtype=np.float64)
    teacher.params[0] = [-1.0, 0.5, -0.5, 0.0, -2.0]
    teacher.params[3] = [0.3, 1.5, 0.8, 2.0, 0.1]
    student = SReLU(5, dtype=np.float64)
    z = rng.uniform(-5, 8, (5, 400))
    y = teacher.forward(z)

    def loss():
        return 0.5 * np.mean((student.forward(z) - y) ** 2)
    first = loss()
    for _ in range(4000):
        student.params -= 0.05 * student.param_grads(z, (student.forward(z) - y) / z.shape[1])
    assert loss() < 2e-3 * first
    np.testing.assert_allclose(student.params[3], teacher.params[3], atol=0.1)  # slopes a_r


def test_state_round_trip_and_errors():
    a = SReLU(4, rng=np.random.default_rng(1))
    b = SReLU(4)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict("l0.").items()}, "l0.")
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(ValueError, match="shape"):
        SReLU(3).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="n_units"):
        SReLU(0)


def test_keras_contrib_initialisation():
    act = SReLU(1000, rng=np.random.default_rng(0))
    t_l, a_l, d, a_r = act.params
    assert (t_l == 0).all() and (a_r == 1).all()
    assert 0 <= a_l.min() and a_l.max() < 1 and 0 <= d.min() and d.max() < 5
    assert abs(a_l.mean() - 0.5) < 0.05 and abs(d.mean() - 2.5) < 0.25
