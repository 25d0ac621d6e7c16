"""Tests of sparsemlp.topology: Erdős–Rényi laws, init laws, distinct sampling, describe."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from sparsemlp._validation import check_csr
from sparsemlp.topology import describe, erdos_renyi, init_values
from sparsemlp.topology.sampling import sample_distinct

P_MIN = 1e-4  # chi-square / z tests: fail only on clear non-uniformity


def dense_of(W):
    return W.toarray()  # tests only, tiny layers


def law_a_oracle(n, m, epsilon, rs, scalar_value):
    """Plain-Python Law A: value, row, column per draw; last write wins."""
    cells = {}
    for _ in range(int(round(epsilon * (n + m)))):
        v = scalar_value()
        i = rs.randint(0, n)
        j = rs.randint(0, m)
        cells[(i, j)] = v
    return cells


def assert_same_cells(W, cells, dtype):
    keys = sorted(cells)
    rows = np.array([k[0] for k in keys], dtype=np.int64)
    cols = np.array([k[1] for k in keys], dtype=np.int64)
    vals = np.array([cells[k] for k in keys], dtype=np.float64).astype(dtype)
    coo = W.tocoo()
    np.testing.assert_array_equal(coo.row, rows)
    np.testing.assert_array_equal(coo.col, cols)
    assert W.data.dtype == dtype
    np.testing.assert_array_equal(W.data.view(np.uint8), vals.view(np.uint8))  # bit for bit


# --------------------------------------------------------------------------------------------
# Law B (Bernoulli), density, nnz: counts and canonical CSR


@pytest.mark.parametrize("shape", [(1, 1), (1, 50), (37, 1), (200, 300)])
def test_bernoulli_canonical(shape, seed):
    n, m = shape
    W = erdos_renyi(n, m, density=0.3, rng=np.random.default_rng(seed))
    assert isinstance(W, sp.csr_array) and W.shape == shape
    check_csr(W)
    assert W.data.dtype == np.float32 and W.indices.dtype == np.int32
    assert W.indptr.dtype == np.int32


def test_bernoulli_density_statistics():
    n, m, eps = 200, 300, 10
    p = eps * (n + m) / (n * m)
    counts = np.array([erdos_renyi(n, m, epsilon=eps, rng=np.random.default_rng(s)).nnz
                       for s in range(30)])
    mean, sd = n * m * p, math.sqrt(n * m * p * (1 - p))
    assert np.all(np.abs(counts - mean) < 5 * sd)
    assert abs(counts.mean() - mean) < 4 * sd / math.sqrt(counts.size)
    assert mean == pytest.approx(eps * (n + m))  # E[nnz] = eps (n + m) while p <= 1


def test_bernoulli_density_statistics_legacy_rng():
    n, m, p = 60, 70, 0.1
    counts = np.array([erdos_renyi(n, m, density=p, rng=np.random.RandomState(s)).nnz
                       for s in range(30)])
    mean, sd = n * m * p, math.sqrt(n * m * p * (1 - p))
    assert abs(counts.mean() - mean) < 4 * sd / math.sqrt(counts.size)


@pytest.mark.parametrize("law_kw", [dict(density=0.25), dict(nnz=150), dict(epsilon=3.0)])
def test_positions_uniform(law_kw):
    """Chi-square over cells, rows and columns of many small layers."""
    n, m = 20, 30
    hits = np.zeros((n, m))
    for s in range(200):
        W = erdos_renyi(n, m, rng=np.random.default_rng(1000 + s), **law_kw)
        hits += dense_of(W) != 0
    for obs in (hits.ravel(), hits.sum(axis=1), hits.sum(axis=0)):
        assert stats.chisquare(obs).pvalue > P_MIN


def test_nnz_exact_and_extremes():
    rng = np.random.default_rng(0)
    assert erdos_renyi(13, 17, nnz=100, rng=rng).nnz == 100
    assert erdos_renyi(13, 17, nnz=0, rng=rng).nnz == 0
    full = erdos_renyi(13, 17, nnz=13 * 17, rng=rng)
    assert full.nnz == 13 * 17
    check_csr(full)
    assert erdos_renyi(13, 17, density=1.0, rng=rng).nnz == 13 * 17
    assert erdos_renyi(13, 17, density=0.0, rng=rng).nnz == 0


def test_huge_layer_is_o_nnz():
    """A 10^6 x 10^6 layer would need 10^12 slots if anything were dense."""
    rng = np.random.default_rng(0)
    W = erdos_renyi(10**6, 10**6, nnz=2000, rng=rng)
    assert W.nnz == 2000
    check_csr(W)
    W = erdos_renyi(10**6, 10**6, density=2e-9, rng=rng)
    assert abs(W.nnz - 2000) < 6 * math.sqrt(2000)
    W = erdos_renyi(10**6, 10**6, epsilon=1e-3, law="draws", rng=rng)
    assert W.nnz == 2000  # 2000 draws among 10^12 slots: a collision is (nearly) impossible


@pytest.mark.parametrize("kw", [dict(density=0.2), dict(nnz=40), dict(epsilon=2.0),
                                dict(epsilon=2.0, law="draws")])
@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_index_dtype_int64_forced(kw, rng_kind):
    rng = np.random.default_rng(0) if rng_kind == "generator" else np.random.RandomState(0)
    W = erdos_renyi(30, 20, rng=rng, index_dtype=np.int64, dtype=np.float64, **kw)
    assert W.indices.dtype == np.int64 and W.indptr.dtype == np.int64
    assert W.data.dtype == np.float64
    check_csr(W)


# --------------------------------------------------------------------------------------------
# Law A (draws with replacement)


@pytest.mark.parametrize("shape,eps", [((30, 20), 3), ((7, 5), 20), ((1, 9), 4), ((50, 1), 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_law_a_legacy_matches_scalar_oracle(shape, eps, dtype, seed):
    n, m = shape
    rs = np.random.RandomState(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        W = erdos_renyi(n, m, epsilon=eps, law="draws", rng=rs, dtype=dtype)
    check_csr(W)
    ro = np.random.RandomState(seed)
    cells = law_a_oracle(n, m, eps, ro, lambda: ro.randn() / 10)
    assert_same_cells(W, cells, np.dtype(dtype))
    assert rs.randint(0, 2**31 - 1) == ro.randint(0, 2**31 - 1)  # same stream position


def test_law_a_legacy_rbm_std_and_uniform_init(seed):
    rs, ro = np.random.RandomState(seed), np.random.RandomState(seed)
    W = erdos_renyi(40, 30, epsilon=5, law="draws", rng=rs, normal_std=0.05, dtype=np.float64)
    assert_same_cells(W, law_a_oracle(40, 30, 5, ro, lambda: ro.randn() / 20), np.float64)
    lim = math.sqrt(6 / 40)
    rs, ro = np.random.RandomState(seed), np.random.RandomState(seed)
    W = erdos_renyi(40, 30, epsilon=5, law="draws", rng=rs, init="he_uniform", dtype=np.float64)
    assert_same_cells(W, law_a_oracle(40, 30, 5, ro, lambda: ro.uniform(-lim, lim)), np.float64)


def test_law_a_reference_table_lung_h1000():
    """The original SET-MLP's draws: lung net 3312-1000-1000-1000-5, seed 0, after the split shuffle."""
    rs = np.random.RandomState(0)
    rs.shuffle(np.arange(203))  # the demo's data split comes first in the stream
    dims = (3312, 1000, 1000, 1000, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        nnz = [erdos_renyi(a, b, epsilon=20, law="draws", rng=rs, dtype=np.float64).nnz
               for a, b in zip(dims[:-1], dims[1:], strict=True)]
    assert nnz == [85138, 39236, 39182, 4893]


def test_law_a_reference_table_rbm():
    """The original SET-RBM's draws: COIL20 1024x200, epsilon 10, randn/20, after the shuffle."""
    rs = np.random.RandomState(0)
    rs.shuffle(np.arange(1440))
    W = erdos_renyi(1024, 200, epsilon=10, law="draws", rng=rs, normal_std=0.05)
    assert W.nnz == 11857


def test_law_a_reference_table_coil20_h3000():
    """The original SET-MLP's COIL20 1024-3000-3000-3000-20 topology, seed 0."""
    rs = np.random.RandomState(0)
    rs.shuffle(np.arange(1440))
    dims = (1024, 3000, 3000, 3000, 20)
    nnz = [erdos_renyi(a, b, epsilon=20, law="draws", rng=rs, dtype=np.float64).nnz
           for a, b in zip(dims[:-1], dims[1:], strict=True)]
    assert nnz == [79441, 119224, 119138, 38135]


def _law_a_moments(n, m, eps):
    slots, t = n * m, int(round(eps * (n + m)))
    q1 = (1 - 1 / slots) ** t
    q2 = (1 - 2 / slots) ** t
    mean = slots * (1 - q1)
    var = slots * q1 + slots * (slots - 1) * q2 - (slots * q1) ** 2  # occupancy variance
    return mean, math.sqrt(var)


@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_law_a_expected_nnz(rng_kind):
    n, m, eps = 50, 40, 20  # 1800 draws into 2000 slots: collisions matter
    mean, sd = _law_a_moments(n, m, eps)
    mk = np.random.default_rng if rng_kind == "generator" else np.random.RandomState
    counts = np.array([erdos_renyi(n, m, epsilon=eps, law="draws", rng=mk(s)).nnz
                       for s in range(40)])
    assert abs(counts.mean() - mean) < 4 * sd / math.sqrt(counts.size)
    assert counts.max() <= eps * (n + m)


def test_law_a_reference_expectation_formula():
    """E[nnz] of the draws law: n m (1 - (1 - 1/(n m))^T)."""
    for (n, m, eps), expect in [((3312, 3000, 20), 125441), ((3000, 5, 20), 14727),
                                ((1024, 200, 10), 11881), ((3000, 20, 20), 38074)]:
        assert round(_law_a_moments(n, m, eps)[0]) == pytest.approx(expect, abs=1)


def test_law_a_generator_positions_uniform():
    n, m = 6, 7
    hits = np.zeros(n * m)
    for s in range(300):
        W = erdos_renyi(n, m, epsilon=1.0, law="draws", rng=np.random.default_rng(s))
        hits += (dense_of(W) != 0).ravel()
    assert stats.chisquare(hits).pvalue > P_MIN


@pytest.mark.parametrize("n,m,eps", [(4, 3, 10), (30, 20, 2)])  # slot-array / sorting regimes
def test_law_a_generator_stream_order(n, m, eps):
    """Vectorised path: all draw positions first, then one value per occupied slot, row-major.

    (The value of a slot is its last draw's; values are i.i.d. and independent of positions,
    so this has the law of the per-draw order with fewer random numbers.)
    """
    rng = np.random.default_rng(5)
    t = int(round(eps * (n + m)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        W = erdos_renyi(n, m, epsilon=eps, law="draws", rng=rng, dtype=np.float64)
    r2 = np.random.default_rng(5)
    keys = r2.integers(0, n * m, size=t, dtype=np.int64)  # t < _CHUNK: one chunk
    occupied = sorted(set(keys.tolist()))
    vals = r2.standard_normal(len(occupied)) / 10.0
    expect = {(k // m, k % m): v for k, v in zip(occupied, vals, strict=True)}
    assert_same_cells(W, expect, np.float64)


def test_law_a_generator_value_law_and_occupancy():
    """Values are N(0, 0.1^2) and the occupied count follows the occupancy law."""
    n, m, eps = 300, 5, 20
    mean, sd = _law_a_moments(n, m, eps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Ws = [erdos_renyi(n, m, epsilon=eps, law="draws", rng=np.random.default_rng(s),
                          dtype=np.float64) for s in range(30)]
    counts = np.array([W.nnz for W in Ws])
    assert abs(counts.mean() - mean) < 4 * sd / math.sqrt(counts.size)
    v = np.concatenate([W.data for W in Ws])
    assert np.std(v) == pytest.approx(0.1, rel=0.03)
    assert stats.normaltest(v).pvalue > P_MIN


def test_dense_warnings():
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match=r"epsilon=20 gives density 0\.98 for the 3000x5 layer; "
                                         r"it is effectively dense"):
        W = erdos_renyi(3000, 5, epsilon=20, law="draws", rng=rng)
    assert 0.97 < W.nnz / 15000 < 0.99
    with pytest.warns(UserWarning, match="epsilon=20 gives density 4 for the 3000x5 layer; "
                                         "it is fully dense"):
        W = erdos_renyi(3000, 5, epsilon=20, saturate=True, rng=rng)
    assert W.nnz == 15000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        erdos_renyi(300, 200, epsilon=20, rng=rng)  # sparse: no warning


# --------------------------------------------------------------------------------------------
# init laws


def test_init_normal_is_randn_over_10():
    z = np.random.default_rng(3).standard_normal(1000)
    v = init_values("normal", 5, 5, 1000, np.random.default_rng(3), dtype=np.float64)
    np.testing.assert_array_equal(v, z / 10.0)
    v32 = init_values("normal", 5, 5, 1000, np.random.default_rng(3))
    np.testing.assert_array_equal(v32, (z / 10.0).astype(np.float32))
    v = init_values("normal", 5, 5, 1000, np.random.default_rng(3), dtype=np.float64,
                    normal_std=0.05)
    np.testing.assert_array_equal(v, z / 20.0)
    z = np.random.RandomState(3).randn(1000)
    v = init_values("normal", 5, 5, 1000, np.random.RandomState(3), dtype=np.float64)
    np.testing.assert_array_equal(v, z / 10.0)


@pytest.mark.parametrize("init,n,m,lim", [("he_uniform", 60, 40, math.sqrt(6 / 60)),
                                          ("xavier_uniform", 60, 40, math.sqrt(6 / 100))])
@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_init_uniform_bounds(init, n, m, lim, rng_kind):
    rng = np.random.default_rng(1) if rng_kind == "generator" else np.random.RandomState(1)
    v = init_values(init, n, m, 20000, rng, dtype=np.float64)
    assert np.all(np.abs(v) <= lim)
    assert v.max() > 0.99 * lim and v.min() < -0.99 * lim
    assert abs(v.mean()) < 4 * lim / math.sqrt(3 * v.size)
    assert np.std(v) == pytest.approx(lim / math.sqrt(3), rel=0.03)


def test_init_normal_std():
    v = init_values("normal", 3, 3, 40000, np.random.default_rng(2), dtype=np.float64)
    assert np.std(v) == pytest.approx(0.1, rel=0.02)
    W = erdos_renyi(300, 200, epsilon=20, rng=np.random.default_rng(2), normal_std=0.05)
    assert np.std(W.data) == pytest.approx(0.05, rel=0.05)
    W = erdos_renyi(300, 200, epsilon=20, rng=np.random.default_rng(2), init="he_uniform")
    assert np.abs(W.data).max() <= np.float32(math.sqrt(6 / 300))


# --------------------------------------------------------------------------------------------
# distinct sampling


@pytest.mark.parametrize("population,k", [(10**12, 1000), (1000, 400), (1000, 600),
                                          (1000, 1000), (1, 1), (5, 0), (2, 1)])
@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_sample_distinct_valid(population, k, rng_kind):
    rng = np.random.default_rng(0) if rng_kind == "generator" else np.random.RandomState(0)
    s = sample_distinct(population, k, rng)
    assert s.dtype == np.int64 and s.shape == (k,)
    assert np.all(np.diff(s) > 0)
    if k:
        assert s[0] >= 0 and s[-1] < population


@pytest.mark.parametrize("population,k", [(6, 2), (6, 3), (6, 5)])
def test_sample_distinct_uniform_subsets(population, k):
    """Every k-subset equally likely, in both regimes (rejection and complement)."""
    counts = {}
    rng = np.random.default_rng(11)
    for _ in range(3000):
        key = tuple(sample_distinct(population, k, rng).tolist())
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == math.comb(population, k)
    assert stats.chisquare(np.array(list(counts.values()))).pvalue > P_MIN


@pytest.mark.parametrize("population,k", [(6, 2), (7, 3), (9, 4), (6, 5)])
def test_sample_distinct_uniform_subsets_gap_path(monkeypatch, population, k):
    """The geometric-gap sampler with its surplus / shortfall fix-ups, forced on tiny sizes."""
    import sparsemlp.topology.sampling as sampling

    monkeypatch.setattr(sampling, "_GAPS_MIN", 1)
    counts = {}
    rng = np.random.default_rng(12)
    for _ in range(4000):
        s = sample_distinct(population, k, rng)
        assert s.dtype == np.int64 and s.shape == (k,) and np.all(np.diff(s) > 0)
        counts[tuple(s.tolist())] = counts.get(tuple(s.tolist()), 0) + 1
    assert len(counts) == math.comb(population, k)
    assert stats.chisquare(np.array(list(counts.values()))).pvalue > P_MIN


@pytest.mark.parametrize("population,k", [(10**6, 3000), (10**9, 50_000), (5000, 2400),
                                          (2**40, 2000)])
def test_sample_distinct_gap_path_sizes(population, k):
    s = sample_distinct(population, k, np.random.default_rng(1))
    assert s.shape == (k,) and np.all(np.diff(s) > 0) and s[0] >= 0 and s[-1] < population


@pytest.mark.parametrize("p", [1e-6, 0.01, 0.3, 0.5, 0.7, 0.999])
def test_bernoulli_positions_law(p):
    """Count ~ Binomial(S, p), positions uniform over the slots (the geometric-gap walk)."""
    from sparsemlp.topology.sampling import bernoulli_positions

    size = 200_000
    rng = np.random.default_rng(7)
    pos = bernoulli_positions(size, p, rng)
    assert pos.dtype == np.int64 and np.all(np.diff(pos) > 0)
    assert pos.size == 0 or (pos[0] >= 0 and pos[-1] < size)
    mean, sd = size * p, math.sqrt(size * p * (1 - p))
    assert abs(pos.size - mean) < 5 * sd + 1
    if pos.size > 1000:
        assert stats.chisquare(np.bincount(pos * 20 // size, minlength=20)).pvalue > P_MIN


def test_chunked_paths_equal_one_shot(monkeypatch):
    """Values, positions and CSR conversion do not depend on the chunk length."""
    import sparsemlp.topology.csr as csr

    def build():
        out = []
        for mk in (np.random.default_rng, np.random.RandomState):
            for init in ("normal", "he_uniform"):
                out.append(init_values(init, 30, 20, 5001, mk(3), np.float32))
        out.append(erdos_renyi(300, 200, epsilon=5, rng=np.random.default_rng(4)))
        return out

    ref = build()
    monkeypatch.setattr(csr, "CHUNK", 64)
    monkeypatch.setattr(csr, "_SEARCH_RATIO", 0)  # and the search-based row pointer
    new = build()
    for a, b in zip(ref[:-1], new[:-1], strict=True):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    # the gap walk reads the same exponentials in any chunking: same pattern (the values
    # after it may differ, as the last chunk over-draws a different number of exponentials)
    np.testing.assert_array_equal(ref[-1].indptr, new[-1].indptr)
    np.testing.assert_array_equal(ref[-1].indices, new[-1].indices)
    keys = np.sort(np.random.default_rng(5).choice(300 * 200, 5000, replace=False))
    ip1, c1 = csr.keys_to_csr(keys, 300, 200, np.int32)
    monkeypatch.setattr(csr, "_SEARCH_RATIO", 1 << 60)  # counting
    ip2, c2 = csr.keys_to_csr(keys, 300, 200, np.int32)
    np.testing.assert_array_equal(ip1, ip2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(c1, keys % 200)
    np.testing.assert_array_equal(ip1, np.searchsorted(keys, np.arange(301) * 200))


def test_sample_distinct_errors():
    with pytest.raises(ValueError, match="cannot draw 5 distinct values from a population of 4"):
        sample_distinct(4, 5, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# describe


def test_describe_matches_dense():
    W = erdos_renyi(30, 20, density=0.1, rng=np.random.default_rng(4))
    d = describe(W)
    mask = dense_of(W) != 0
    assert (d["n_in"], d["n_out"], d["nnz"]) == (30, 20, int(mask.sum()))
    assert d["density"] == pytest.approx(mask.mean())
    col, row = mask.sum(axis=0), mask.sum(axis=1)
    assert d["in_degree"] == {"min": col.min(), "mean": pytest.approx(col.mean()),
                              "max": col.max(), "n_zero": int((col == 0).sum())}
    assert d["out_degree"]["max"] == row.max() and d["out_degree"]["n_zero"] == (row == 0).sum()
    assert d["bytes_per_connection"] == pytest.approx((8 * W.nnz + 4 * 31) / W.nnz)


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("kw,exc,match", [
    (dict(n_in=-3), ValueError, r"The 'n_in' parameter of erdos_renyi must be an int in the "
                                r"range \[1, inf\)\. Got -3 instead\."),
    (dict(n_out=0), ValueError, r"'n_out' parameter of erdos_renyi"),
    (dict(n_in=2.5), TypeError, r"'n_in' parameter of erdos_renyi must be an int"),
    (dict(epsilon=0), ValueError, r"'epsilon' parameter of erdos_renyi must be a float in the "
                                  r"range \(0, inf\)"),
    (dict(epsilon=-1), ValueError, r"'epsilon'"),
    (dict(epsilon=None, density=1.5), ValueError, r"'density' parameter of erdos_renyi must be "
                                                  r"a float in the range \[0, 1\]\. Got 1\.5"),
    (dict(epsilon=None, density=-0.1), ValueError, r"'density'"),
    (dict(epsilon=None, nnz=601), ValueError, r"'nnz' parameter of erdos_renyi must be an int "
                                              r"in the range \[0, 600\]"),
    (dict(epsilon=None, nnz=-1), ValueError, r"'nnz'"),
    (dict(init="glorot"), ValueError, r"The 'init' parameter of erdos_renyi must be one of "
                                      r"'normal', 'he_uniform', 'xavier_uniform'\. Got 'glorot'"),
    (dict(law="poisson"), ValueError, r"'law' parameter of erdos_renyi must be one of "
                                      r"'bernoulli', 'draws'"),
    (dict(density=0.5), ValueError, r"exactly one of 'epsilon', 'density' or 'nnz'\. Got "
                                    r"epsilon, density"),
    (dict(epsilon=None), ValueError, r"exactly one of .* Got none"),
    (dict(epsilon=None, density=0.2, law="draws"), ValueError, r"law='draws' counts draws "
                                                               r"from 'epsilon'"),
    (dict(rng=0), TypeError, r"The 'rng' parameter of erdos_renyi must be a "
                             r"numpy\.random\.Generator"),
    (dict(dtype=np.int32), ValueError, r"'dtype' parameter of erdos_renyi must be float32 or "
                                       r"float64"),
    (dict(index_dtype=np.int16), ValueError, r"'index_dtype' parameter"),
    (dict(normal_std=0.0), ValueError, r"'normal_std'"),
])
def test_errors(kw, exc, match):
    args = dict(n_in=30, n_out=20, epsilon=2.0, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises(exc, match=match):
        erdos_renyi(args.pop("n_in"), args.pop("n_out"), **args)


def test_error_bernoulli_epsilon_too_dense():
    with pytest.raises(ValueError, match=r"epsilon=20 gives density 4 for the 3000x5 layer .*"
                                         r"Lower epsilon to at most 4\.991, pass density=1\.0, "
                                         r"or law='draws'"):
        erdos_renyi(3000, 5, epsilon=20, rng=np.random.default_rng(0))
    # the suggested bound is safe
    with pytest.warns(UserWarning, match="effectively dense"):
        W = erdos_renyi(3000, 5, epsilon=4.991, rng=np.random.default_rng(0))
    assert W.nnz > 0.99 * 15000


def test_init_values_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"'init' parameter of init_values must be one of"):
        init_values("uniform", 3, 3, 5, rng)
    with pytest.raises(ValueError, match=r"'size' parameter of init_values"):
        init_values("normal", 3, 3, -1, rng)
    with pytest.raises(TypeError, match=r"'rng' parameter of init_values"):
        init_values("normal", 3, 3, 5, 42)


# --------------------------------------------------------------------------------------------
# topology.csr: the shared CSR helpers, each against a plain NumPy / SciPy oracle


@pytest.mark.parametrize("inplace", [False, True])
def test_csr_sorted_unique_and_isin_sorted(inplace):
    from sparsemlp.topology.csr import isin_sorted, sorted_unique

    rng = np.random.default_rng(3)
    for size, high in [(0, 5), (1, 5), (2, 1), (1000, 50), (5000, 10**12)]:
        a = rng.integers(0, high, size)
        want = np.unique(a)
        got = sorted_unique(a.copy() if inplace else a, inplace=inplace)
        np.testing.assert_array_equal(got, want)
        q = rng.integers(-2, high + 2, 300)
        np.testing.assert_array_equal(isin_sorted(q, want), np.isin(q, want))


def test_csr_keys_round_trip_and_membership(monkeypatch):
    import scipy.sparse as sp

    import sparsemlp.topology.csr as csr

    rng = np.random.default_rng(4)
    n_in, n_out = 60, 45
    W = sp.random_array((n_in, n_out), density=0.2, format="csr", rng=rng)
    W.sort_indices()
    coo = W.tocoo()
    keys = csr.linear_keys(W.indptr, W.indices, n_out)
    np.testing.assert_array_equal(keys, coo.row.astype(np.int64) * n_out + coo.col)
    for idt in (np.int32, np.int64):
        V = csr.csr_from_keys(keys, W.data.copy(), n_in, n_out, np.dtype(idt))
        assert V.indices.dtype == V.indptr.dtype == idt and V.has_canonical_format
        np.testing.assert_array_equal(V.toarray(), W.toarray())
    q = np.unique(rng.integers(0, n_in * n_out, 700))
    monkeypatch.setattr(csr, "CHUNK", 8)  # 2 keys per chunk: many partial row ranges
    np.testing.assert_array_equal(csr.in_pattern(q, W.indptr, W.indices, n_out),
                                  np.isin(q, keys))


def test_csr_index_dtype_choice():
    from sparsemlp.topology.csr import check_float_dtype, choose_index_dtype

    assert choose_index_dtype(None, 10, 10, 50) == np.int32
    assert choose_index_dtype(None, 2**31, 10, 50) == np.int64
    assert choose_index_dtype(np.int64, 10, 10, 50) == np.int64
    with pytest.raises(ValueError, match=r"'index_dtype' parameter of f is int32, but the "
                                         r"10x10 layer with 3000000000 connections needs int64"):
        choose_index_dtype(np.int32, 10, 10, 3 * 10**9, "f")
    with pytest.raises(ValueError, match="int32 or int64. Got int16"):
        choose_index_dtype(np.int16, 10, 10, 5, "f")
    with pytest.raises(ValueError, match="float32 or float64. Got float16"):
        check_float_dtype(np.float16, "f")


@pytest.mark.parametrize("init", ["normal", "he_uniform", "xavier_uniform"])
@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_csr_fill_values_and_scalar_draws_follow_the_law(monkeypatch, init, rng_kind):
    """fill_values (chunked vector draws) and scalar_value_fn (one scalar call per value) give
    NumPy's own draws of the law, bit for bit: z / (1 / std) or uniform(-lim, lim)."""
    import sparsemlp.topology.csr as csr

    def rng():
        return np.random.default_rng(5) if rng_kind == "generator" else np.random.RandomState(5)

    n_in, n_out, size, std = 30, 20, 1001, 0.05
    r = rng()
    if init == "normal":
        want = (r.standard_normal(size) if rng_kind == "generator" else r.randn(size)) / (1 / std)
    else:
        lim = math.sqrt(6 / (n_in if init == "he_uniform" else n_in + n_out))
        want = r.uniform(-lim, lim, size)
    out = np.empty(size)
    monkeypatch.setattr(csr, "CHUNK", 64)  # chunked draws equal one vector draw
    csr.fill_values(out, init, n_in, n_out, rng(), std)
    np.testing.assert_array_equal(out, want)
    f = csr.scalar_value_fn(init, n_in, n_out, rng(), std)
    np.testing.assert_array_equal([f() for _ in range(size)], want)
