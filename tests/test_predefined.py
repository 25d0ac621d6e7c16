"""Pre-defined topologies (Dey et al., IEEE JETCAS 2019): random, regular, clash_free, balance_z, schedules.

Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware Acceleration", IEEE
JETCAS 9(2):332-345 (2019), and their code (``adjmatint.py``). Oracles: brute-force degree and
clash checks on dense copies of small patterns, a literal transcription of their clash-free
construction (fo sweeps of p/z cycles, z lanes) enumerated over every choice of addresses and
bank orders (the pattern counts of their ``count_adjmats`` formulas), and the exact law of the
original's ``adjmat_basic`` enumerated path by path.
"""

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from sparsemlp.topology import (
    ClashFreeSchedule,
    balance_z,
    clash_free,
    feasible_cycles,
    predefined_layers,
    random,
    regular,
)

P_MIN = 1e-4  # chi-square tests fail only on clear departures from the law


# -- brute-force oracles ------------------------------------------------------------------
def dense(W):
    A = np.zeros(W.shape, dtype=np.int64)
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    np.add.at(A, (rows, W.indices), 1)
    return A


def assert_canonical(W):
    for i in range(W.shape[0]):
        row = W.indices[W.indptr[i]:W.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} not strictly increasing"
    assert W.has_canonical_format and W.indptr[-1] == W.nnz == W.data.shape[0]


def assert_regular(W, fan_out):
    A = dense(W)
    n_in, n_out = W.shape
    assert A.max() <= 1, "duplicate connection"
    assert (A.sum(axis=1) == fan_out).all(), "an input has the wrong out-degree"
    assert (A.sum(axis=0) == n_in * fan_out // n_out).all(), "an output has the wrong in-degree"
    assert W.nnz == n_in * fan_out
    assert_canonical(W)


def brute_clashes(W, schedule):
    """Cycles with a repeated bank, from a dense position -> (row, col) table."""
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    z = schedule.z
    order = schedule.order
    assert sorted(order.tolist()) == list(range(W.nnz)), "schedule is not a permutation"
    bad = []
    for c in range(W.nnz // z):
        banks = [int(rows[order[c * z + u]]) % z for u in range(z)]
        if len(set(banks)) != z:
            bad.append(c)
    return bad


def ref_edges(p, fo, n, z, t, v):
    """Dey et al.'s construction: edge e of sweep s, cycle c, lane u reads left t_s[c,u]*z+v_s[u]."""
    fi = p * fo // n
    out = []
    for s in range(fo):
        for c in range(p // z):
            for u in range(z):
                e = s * p + c * z + u
                out.append((t[s][c][u] * z + v[s][u], e // fi))
    return out


def pattern_key(pairs, p):
    """Sorted (left, right) pairs -> the CSR column array bytes (rows all hold fo entries)."""
    return np.array([r for _, r in sorted(pairs)], dtype=np.int32).tobytes()


def enumerate_patterns(p, fo, n, z, kind, dither):
    """Multiplicity of every pattern over all equally likely (t, v) choices of the law."""
    D = p // z
    lanes = range(z)
    if kind == 1:
        sweep_t = [list(zip(*perms)) for perms in itertools.product(
            itertools.permutations(range(D)), repeat=z)]  # t[c][u] = perm_u[c]
    else:
        sweep_t = [[[(a[u] + c) % D for u in lanes] for c in range(D)]
                   for a in itertools.product(range(D), repeat=z)]
    sweep_v = list(itertools.permutations(lanes)) if dither else [tuple(lanes)]
    counts = Counter()
    if kind == 3:
        for t0 in sweep_t:
            for v0 in sweep_v:
                edges = ref_edges(p, fo, n, z, [t0] * fo, [v0] * fo)
                counts[pattern_key(edges, p)] += 1
    else:
        for ts in itertools.product(sweep_t, repeat=fo):
            for vs in itertools.product(sweep_v, repeat=fo):
                edges = ref_edges(p, fo, n, z, ts, vs)
                if len(set(edges)) == len(edges):
                    counts[pattern_key(edges, p)] += 1
    return counts


def count_formula(kind, p, fo, n, z, dither):
    """Number of distinct clash-free patterns, the formulas of Dey et al.'s ``count_adjmats``.

    k = 1 without dither or when fi/z is an integer, else z!/(fi!)^(z/fi); type 1: (k (D!)^z)^fo,
    type 2: (k D^z)^fo, type 3: k D^z.
    """
    fi, D = p * fo // n, p // z
    if not dither or fi % z == 0:
        k = 1
    else:
        assert z % fi == 0
        k = math.factorial(z) // math.factorial(fi) ** (z // fi)
    if kind == 1:
        return (k * math.factorial(D) ** z) ** fo
    if kind == 2:
        return (k * D ** z) ** fo
    return k * D ** z


# -- regular ------------------------------------------------------------------------------
def test_regular_800_100_50_exact_degrees_many_seeds():
    for seed in range(20):
        W = regular(800, 100, 50, rng=np.random.default_rng(seed))
        assert W.nnz == 40_000
        assert set(np.diff(W.indptr).tolist()) == {50}
        assert set(np.bincount(W.indices, minlength=100).tolist()) == {400}
        assert_canonical(W)
    assert_regular(W, 50)


def test_regular_grid_of_shapes_every_seed_valid():
    """Like the 1,350 (p, n, fo, seed) checks once run on the original ``adjmat_basic``, brute force."""
    n_cases = 0
    for p in (1, 2, 3, 5, 8, 12):
        for n in (1, 2, 4, 6, 9):
            for fo in range(1, n + 1):
                if (p * fo) % n:
                    continue
                for seed in range(3):
                    assert_regular(regular(p, n, fo, rng=np.random.default_rng(seed)), fo)
                    n_cases += 1
    assert n_cases > 150


def basic_law(p, fo, n):
    """Exact probability of every pattern under the original's adjmat_basic (Dey et al.'s code)."""
    fi = p * fo // n
    dist = Counter()

    def rec(r, counter, cols, prob):
        if r == n:
            dist[tuple(cols)] += prob
            return
        avail = [i for i in range(p) if counter[i] < fo]
        if r < n - fo:
            forced, rest = [], avail
        else:
            forced = [i for i in range(p) if counter[i] <= r - (n - fo)]
            rest = [i for i in avail if i not in forced]
        combos = list(itertools.combinations(rest, fi - len(forced)))
        for c in combos:
            chosen = tuple(sorted(forced + list(c)))
            nxt = list(counter)
            for i in chosen:
                nxt[i] += 1
            rec(r + 1, nxt, cols + [chosen], prob / len(combos))

    rec(0, [0] * p, [], 1.0)
    return dist


@pytest.mark.parametrize("p,fo,n", [(4, 2, 4), (6, 1, 3), (3, 2, 3), (2, 2, 4)])
def test_regular_follows_the_original_law(p, fo, n):
    law = basic_law(p, fo, n)
    assert abs(sum(law.values()) - 1) < 1e-12
    rng = np.random.default_rng(3)
    draws = 300 * len(law)
    seen = Counter()
    for _ in range(draws):
        W = regular(p, n, fo, rng=rng)
        A = dense(W)
        seen[tuple(tuple(np.flatnonzero(A[:, r]).tolist()) for r in range(n))] += 1
    assert set(seen) <= set(law), "a pattern the original's law cannot produce"
    keys = sorted(law)
    obs = np.array([seen[k] for k in keys])
    exp = np.array([law[k] for k in keys]) * draws
    assert stats.chisquare(obs, exp).pvalue > P_MIN


def test_regular_dtypes_and_values():
    W = regular(30, 20, 4, rng=np.random.default_rng(0), dtype=np.float64,
                index_dtype=np.int64, init="he_uniform")
    assert W.dtype == np.float64 and W.indices.dtype == W.indptr.dtype == np.int64
    lim = math.sqrt(6 / 30)
    assert np.abs(W.data).max() <= lim and np.unique(W.data).size == W.nnz
    a = regular(30, 20, 4, rng=np.random.default_rng(5))
    b = regular(30, 20, 4, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("args,words", [
    ((784, 100, 51), ["'fan_out'", "fan_in", "784x100", "51", "multiple of 25"]),
    ((10, 5, 6), ["'fan_out'", "range"]),
    ((10, 5, 0), ["'fan_out'"]),
])
def test_regular_rejects_infeasible_with_a_clear_message(args, words):
    with pytest.raises(ValueError) as exc:
        regular(*args, rng=np.random.default_rng(0))
    for w in words:
        assert w in str(exc.value)


# -- random -------------------------------------------------------------------------------
def test_random_counts():
    rng = np.random.default_rng(0)
    assert random(800, 100, fan_out=50, rng=rng).nnz == 40_000
    assert random(10, 10, density=0.255, rng=rng).nnz == 26  # rounded up, as the original
    assert random(10, 10, nnz=100, rng=rng).nnz == 100
    W = random(7, 9, nnz=20, rng=rng, index_dtype=np.int64)
    assert dense(W).max() == 1 and W.indices.dtype == np.int64
    assert_canonical(W)
    with pytest.raises(ValueError, match="exactly one"):
        random(5, 5, nnz=3, density=0.1, rng=rng)
    with pytest.raises(ValueError, match="'nnz'"):
        random(5, 5, nnz=26, rng=rng)


def test_random_is_uniform_over_subsets():
    rng = np.random.default_rng(1)
    seen = Counter(dense(random(3, 3, nnz=4, rng=rng)).tobytes() for _ in range(126 * 60))
    assert len(seen) == math.comb(9, 4)
    assert stats.chisquare(np.array(list(seen.values()))).pvalue > P_MIN


# -- clash_free ---------------------------------------------------------------------------
CASES = [(9, 2, 6, 3), (12, 2, 12, 4), (24, 5, 10, 6), (30, 4, 8, 5), (16, 4, 8, 8),
         (16, 4, 8, 16), (16, 4, 8, 1), (20, 5, 5, 4), (800, 50, 100, 200), (100, 10, 10, 5)]


@pytest.mark.parametrize("kind", [1, 2, 3])
@pytest.mark.parametrize("dither", [False, True])
def test_clash_free_every_cycle_every_kind(kind, dither):
    for p, fo, n, z in CASES:
        for seed in range(3):
            W, s = clash_free(p, n, fo, z, kind=kind, dither=dither,
                              rng=np.random.default_rng(seed))
            assert_regular(W, fo)
            assert s.z == z and s.n_cycles == p * fo // z
            assert brute_clashes(W, s) == []
            assert s.is_clash_free(W) and s.clashes(W).size == 0
            # every output's fan_in connections are consecutive slots (edges are output-major)
            fi = p * fo // n
            assert (W.indices[s.order] == np.arange(W.nnz) // fi).all()


def test_clash_free_balanced_net_of_the_reference():
    assert balance_z([800, 100, 10], [50, 10], 200) == [200, 5]
    Ws, ss = predefined_layers([800, 100, 10], topology="clash-free", fan_out=[50, 10],
                               n_cycles=200, rng=np.random.default_rng(0))
    assert [s.n_cycles for s in ss] == [200, 200]
    assert [W.nnz for W in Ws] == [40_000, 1000]
    for W, s, fo in zip(Ws, ss, (50, 10)):
        assert_regular(W, fo)
        assert brute_clashes(W, s) == []


@pytest.mark.parametrize("p,fo,n,z,kind,dither,count", [
    (9, 2, 6, 3, 3, False, 27),
    (9, 2, 6, 3, 2, False, 729),
    (9, 2, 6, 3, 2, True, 729),   # fi / z = 1: dither adds nothing
    (12, 2, 12, 4, 3, False, 81),
    (12, 2, 12, 4, 3, True, 486),
])
def test_distinct_pattern_counts_of_the_reference(p, fo, n, z, kind, dither, count):
    """Enumeration of Dey et al.'s construction gives their formulas' counts; the generator's draws
    hit exactly those patterns, all of them, with the enumerated frequencies."""
    law = enumerate_patterns(p, fo, n, z, kind, dither)
    assert len(law) == count == count_formula(kind, p, fo, n, z, dither)
    rng = np.random.default_rng(7)
    draws = 20 * count
    seen = Counter(clash_free(p, n, fo, z, kind=kind, dither=dither, rng=rng)[0].indices
                   .astype(np.int32).tobytes() for _ in range(draws))
    assert set(seen) <= set(law)
    assert len(seen) == count
    keys = sorted(law)
    total = sum(law.values())
    exp = np.array([law[k] / total * draws for k in keys])
    assert stats.chisquare(np.array([seen[k] for k in keys]), exp).pvalue > P_MIN


def test_kind1_count_statistically():
    """Kind 1, p=9: 46,656 equally likely patterns; 20,000 draws see 16,264 +- 46 distinct
    (the original saw 16,294)."""
    M, N = count_formula(1, 9, 2, 6, 3, False), 20_000
    assert M == 46_656
    rng = np.random.default_rng(11)
    distinct = len({clash_free(9, 6, 2, 3, kind=1, rng=rng)[0].indices.tobytes()
                    for _ in range(N)})
    lam = N / M
    mean = M * (1 - math.exp(-lam))
    sd = math.sqrt(M * math.exp(-lam) * (1 - (1 + lam) * math.exp(-lam)))
    assert abs(distinct - mean) < 5 * sd


@pytest.mark.parametrize("p,fo,n,z", [(20, 3, 5, 5), (20, 3, 5, 4), (40, 3, 8, 10)])
def test_original_failing_cases_are_rejected(p, fo, n, z):
    """Dey et al.'s code returns invalid patterns for these (fo does not divide n: duplicate edges);
    the oracle confirms it on random draws, and clash_free rejects the parameters."""
    rng = np.random.default_rng(0)
    invalid = 0
    for _ in range(20):
        D = p // z
        t = [[list(rng.permutation(D)) for _ in range(z)] for _ in range(fo)]
        t = [list(zip(*ts)) for ts in t]
        edges = ref_edges(p, fo, n, z, t, [list(range(z))] * fo)
        invalid += len(set(edges)) < len(edges)
    assert invalid > 0
    with pytest.raises(ValueError) as exc:
        clash_free(p, n, fo, z, rng=rng)
    msg = str(exc.value)
    for w in ("'fan_out'", "divide n_out", f"fan_out={fo}", f"{p}x{n}", "regular()"):
        assert w in msg


@pytest.mark.parametrize("p,fo,n,z", [(24, 5, 10, 6), (30, 4, 8, 5)])
def test_original_valid_cases_stay_valid(p, fo, n, z):
    for seed in range(50):
        W, s = clash_free(p, n, fo, z, kind=1 + seed % 3, dither=bool(seed % 2),
                          rng=np.random.default_rng(seed))
        assert_regular(W, fo)
        assert s.is_clash_free(W)


def test_clash_free_parameter_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'z'.*divide n_in.*z=7.*n_in=800"):
        clash_free(800, 100, 50, 7, rng=rng)
    with pytest.raises(ValueError, match="'kind'"):
        clash_free(8, 4, 2, 2, kind=4, rng=rng)
    with pytest.raises(ValueError, match="fan_in"):
        clash_free(10, 4, 3, 5, rng=rng)
    with pytest.raises(TypeError, match="rng"):
        clash_free(8, 4, 2, 2, rng=0)


def test_clash_free_legacy_randomstate_and_int64():
    W, s = clash_free(24, 10, 5, 6, kind=2, dither=True, rng=np.random.RandomState(0),
                      index_dtype=np.int64)
    assert W.indices.dtype == s.order.dtype == np.int64
    assert_regular(W, 5)
    assert brute_clashes(W, s) == []


# -- cycle balance ------------------------------------------------------------------------
def test_feasible_cycles_against_brute_force():
    for sizes, fo in [([800, 100, 10], [50, 10]), ([64, 40, 10], [5, 5]), ([12, 6, 4], [2, 2]),
                      ([9, 6], [2]), ([10, 7, 3], [7, 3])]:
        edges = [n * f for n, f in zip(sizes[:-1], fo)]
        brute = [c for c in range(1, max(edges) + 1)
                 if all(e % c == 0 and n % (e // c) == 0 for e, n in zip(edges, sizes))]
        assert feasible_cycles(sizes, fo) == brute
        for c in brute:
            z = balance_z(sizes, fo, c)
            assert all(n % zi == 0 and n * f // zi == c for n, f, zi in zip(sizes, fo, z))
    assert feasible_cycles([800, 100, 10], [50, 10]) == [50, 100, 200, 250, 500, 1000]
    with pytest.raises(ValueError, match="Feasible cycle counts.*50, 100, 200"):
        balance_z([800, 100, 10], [50, 10], 300)
    with pytest.raises(ValueError, match="one fan_out per junction"):
        balance_z([800, 100, 10], [50], 200)


# -- schedule -----------------------------------------------------------------------------
def test_schedule_detects_clashes_and_bad_orders():
    W, s = clash_free(16, 8, 4, 4, rng=np.random.default_rng(0))
    bad = s.copy()
    bad.order[[0, 5]] = bad.order[[5, 0]]  # bank 0 of cycle 0 <-> bank 1 of cycle 1 (no dither)
    assert bad.clashes(W).tolist() == brute_clashes(W, bad) == [0, 1]
    assert not bad.is_clash_free(W) and not bad.summary(W)["clash_free"]
    bad.order[1] = bad.order[2]
    with pytest.raises(ValueError, match="exactly once"):
        bad.clashes(W)
    with pytest.raises(ValueError, match="connections"):
        ClashFreeSchedule(np.arange(10), 4)
    with pytest.raises(ValueError, match="W has"):
        s.clashes(regular(16, 8, 2, rng=np.random.default_rng(0)))


def test_schedule_exports_match_the_table(tmp_path):
    W, s = clash_free(24, 10, 5, 6, kind=2, dither=True, rng=np.random.default_rng(3))
    t = s.table(W)
    rows = np.repeat(np.arange(24), np.diff(W.indptr))
    e = np.arange(W.nnz)
    np.testing.assert_array_equal(t["input"], rows[s.order])
    np.testing.assert_array_equal(t["output"], W.indices[s.order])
    np.testing.assert_array_equal(t["cycle"], e // 6)
    np.testing.assert_array_equal(t["bank"], rows[s.order] % 6)
    np.testing.assert_array_equal(t["address"], rows[s.order] // 6)
    csv = np.loadtxt(s.to_csv(tmp_path / "s.csv", W), delimiter=",", skiprows=1, dtype=np.int64)
    head = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert head == "cycle,lane,bank,address,input,output"
    for j, c in enumerate(head.split(",")):
        np.testing.assert_array_equal(csv[:, j], t[c])
    s.to_json(tmp_path / "s.json", W)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["z"] == 6 and doc["n_cycles"] == 20 and doc["clash_free"] and doc["dither"]
    for c in head.split(","):
        assert doc["columns"][c] == t[c].tolist()
    # every (input, output) of W exactly once
    pairs = set(zip(doc["columns"]["input"], doc["columns"]["output"]))
    assert pairs == set(zip(rows.tolist(), W.indices.tolist())) and len(pairs) == W.nnz
    s2 = ClashFreeSchedule.from_state_dict(s.state_dict("x."), "x.")
    np.testing.assert_array_equal(s2.order, s.order)
    assert (s2.z, s2.kind, s2.dither) == (6, 2, True)
    assert ClashFreeSchedule.from_state_dict({}, "x.") is None


def test_predefined_layers_errors_name_the_layer():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"layer 1 \(100 -> 7\).*'fan_out'"):
        predefined_layers([800, 100, 7], topology="regular", fan_out=[50, 3], rng=rng)
    with pytest.raises(ValueError, match="exactly one of z"):
        predefined_layers([800, 100, 10], topology="clash-free", fan_out=[50, 10], rng=rng)
    with pytest.raises(ValueError, match="one value per layer"):
        predefined_layers([800, 100, 10], topology="clash-free", fan_out=[50, 10], z=[200],
                          rng=rng)
    Ws, ss = predefined_layers([784, 100, 10], topology="random", epsilon=20, rng=rng)
    assert ss == [None, None] and Ws[0].nnz == math.ceil(20 * 884 / 78400 * 784 * 100)
