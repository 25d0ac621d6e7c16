"""Contracts of topology.sampling at its edges: one trial, no trial, vanishing rates, dtypes.

Oracles: the Binomial law of a Bernoulli count (one trial: a coin), the documented dtype
(int64, also for empty results), and the exact answer where it is certain (p = 0, 1, or a
rate so small that a success has probability below 1e-20). They kill mutants of
``tools/mutation.py topology/sampling`` that the older tests let through.
"""

import math
import re

import numpy as np
import pytest

from sparsemlp.topology.sampling import bernoulli_positions, sample_distinct


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_a_single_trial_is_a_coin(p):
    """population 1: success with probability p (the gap walk and the complement path)."""
    rng = np.random.default_rng(0)
    n = 4000
    hits = 0
    for _ in range(n):
        pos = bernoulli_positions(1, p, rng)
        assert pos.dtype == np.int64 and pos.tolist() in ([], [0])
        hits += pos.size
    assert abs(hits - n * p) < 5 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("population,p", [(0, 0.3), (0, 0.9), (5, 0.0), (0, 1.0), (3, 1.0)])
def test_certain_answers_are_int64(population, p):
    rng = np.random.default_rng(1)
    pos = bernoulli_positions(population, p, rng)
    assert pos.dtype == np.int64
    assert pos.tolist() == (list(range(population)) if p == 1.0 else [])


@pytest.mark.parametrize("p", [1e-30, 1e-300, 5e-324])
def test_vanishing_rates_give_no_success(p):
    """Gaps of about 1 / p (far beyond int64) are clipped to the population, not wrapped."""
    rng = np.random.default_rng(2)
    for population in (1, 10, 10**6, 2**40):
        pos = bernoulli_positions(population, p, rng)
        assert pos.dtype == np.int64 and pos.size == 0


def test_sample_distinct_small_populations_are_int64():
    rng = np.random.default_rng(3)
    for population, k in ((0, 0), (1, 0), (1, 1), (3, 3), (4, 2)):
        s = sample_distinct(population, k, rng)
        assert s.dtype == np.int64 and s.shape == (k,)
        assert len(set(s.tolist())) == k and all(0 <= v < population for v in s.tolist())


class ExponentialStream:
    """A random source whose ``standard_exponential`` hands out a fixed stream in order."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)
        self.used = 0

    def standard_exponential(self, size):
        out = self.values[self.used:self.used + size].copy()
        assert out.size == size, "stream exhausted"
        self.used += size
        return out


def replay_gaps(values, population, p):
    """The documented walk: success k at sum of the first k gaps 1 + floor(E / -log1p(-p)), - 1."""
    inv = -1.0 / math.log1p(-p)
    pos, last = [], -1
    for e in values:
        last += 1 + math.floor(e * inv)
        if last >= population:
            return pos
        pos.append(last)
    raise AssertionError("stream exhausted")


@pytest.mark.parametrize("population,p,scale", [(1000, 0.01, 1e-3), (5000, 0.3, 0.5),
                                                (300, 0.001, 0.0), (10**5, 1e-4, 1.0)])
def test_gap_walk_replays_the_exponential_stream(population, p, scale):
    """Positions are the running sums of the geometric gaps of the exponential stream, in
    order, whatever the chunking; streams scaled down (many more successes than p implies)
    make the result outgrow its first allocation (mean + 6 sd + 16)."""
    values = np.random.default_rng(4).standard_exponential(4 * population + 100) * scale
    expect = replay_gaps(values, population, p)
    got = bernoulli_positions(population, p, ExponentialStream(values))
    assert got.dtype == np.int64
    assert got.tolist() == expect
    if scale < 0.01:
        assert len(expect) > 0.9 * population  # far above the first allocation


def test_check_rng_message_names_the_owner_and_the_fix():
    from sparsemlp.topology.sampling import check_rng

    assert check_rng(np.random.default_rng(0), "f") is False
    assert check_rng(np.random.RandomState(0), "f") is True
    msg = ("The 'rng' parameter of my_function must be a numpy.random.Generator (e.g. "
           "np.random.default_rng(0)) or, in reference mode, a numpy.random.RandomState. Got "
           "int instead.")
    with pytest.raises(TypeError, match="^" + re.escape(msg) + "$"):
        check_rng(42, "my_function")
    with pytest.raises(TypeError, match=r"Got SeedSequence instead\.$"):
        check_rng(np.random.SeedSequence(0), "my_function")


def first_distinct(stream, k):
    seen = []
    for v in stream.tolist():
        if v not in seen:
            seen.append(v)
            if len(seen) == k:
                return sorted(seen)
    raise AssertionError("stream too short")


@pytest.mark.parametrize("mk,draw", [
    (np.random.default_rng, lambda r, pop, n: r.integers(0, pop, size=n, dtype=np.int64)),
    (np.random.RandomState, lambda r, pop, n: r.randint(0, pop, size=n, dtype=np.int64)),
])
@pytest.mark.parametrize("population,k", [(1000, 400), (50, 24), (10**12, 1000), (7, 3)])
def test_small_k_takes_the_first_k_distinct_values_of_the_stream(mk, draw, population, k):
    """Below 1024 elements (and 2k < population): the first k distinct values of one stream
    of uniform draws, sorted (redrawing the shortfall continues the same stream)."""
    for seed in range(3):
        got = sample_distinct(population, k, mk(seed))
        expect = first_distinct(draw(mk(seed), population, 50 * k), k)
        assert got.dtype == np.int64 and got.tolist() == expect
