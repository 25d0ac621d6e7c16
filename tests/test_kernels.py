"""Every kernel of every available backend against the NumPy reference backend."""

import pathlib

import numpy as np
import pytest
from conftest import random_csr, tol

from sparsemlp import _kernels
from sparsemlp._parallel import thread_limit

REF = _kernels.get("numpy")

SHAPES = [
    # (n_in, n_out, density, empty_rows, empty_cols, batch)
    (37, 23, 0.2, (0, 5, 36), (3, 22), 5),
    (64, 64, 0.05, (), (), 16),
    (300, 200, 0.1, (7,), (0, 199), 33),
    (10, 4, 1.0, (), (), 3),          # fully dense narrow layer
    (12, 9, 0.0, (), (), 4),          # empty layer
    (1, 1, 1.0, (), (), 1),
]


def _layer(shape, dtype, index_dtype, seed):
    n_in, n_out, dens, er, ec, b = shape
    rng = np.random.default_rng(seed)
    indptr, indices, data = random_csr(n_in, n_out, dens, rng, dtype, index_dtype, er, ec)
    xt = rng.standard_normal((n_in, b)).astype(dtype)
    dyt = rng.standard_normal((n_out, b)).astype(dtype)
    return indptr, indices, data, xt, dyt


def _transpose(ks, indptr, indices, n_out):
    idt = indices.dtype
    indptr_t = np.empty(n_out + 1, idt)
    indices_t = np.empty(indices.shape[0], idt)
    perm = np.empty(indices.shape[0], idt)
    ks.csr_transpose(indptr, indices, n_out, indptr_t, indices_t, perm)
    return indptr_t, indices_t, perm


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def n_threads(request):
    return request.param


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s[0]}x{s[1]}d{s[2]}" for s in SHAPES])
def test_products(backend, dtype, index_dtype, n_threads, shape, seed):
    ks = _kernels.get(backend)
    indptr, indices, data, xt, dyt = _layer(shape, dtype, index_dtype, seed)
    n_in, n_out = xt.shape[0], dyt.shape[0]
    t_ref = _transpose(REF, indptr, indices, n_out)
    with thread_limit(n_threads):
        t_got = _transpose(ks, indptr, indices, n_out)
    for a, b in zip(t_ref, t_got):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == index_dtype

    # dense oracle for the oracle itself
    dense = np.zeros((n_in, n_out), dtype)
    rows = np.repeat(np.arange(n_in), np.diff(indptr))
    dense[rows, indices] = data
    scale = float(np.abs(dense).sum(0).max(initial=0) * np.abs(xt).max(initial=0))

    fw = np.full((n_out, xt.shape[1]), np.nan, dtype)
    fw_ref = fw.copy()
    REF.spmm(*t_ref, data, xt, fw_ref)
    np.testing.assert_allclose(fw_ref, dense.T @ xt, atol=tol(dtype, scale), rtol=0)
    with thread_limit(n_threads):
        ks.spmm(*t_got, data, xt, fw)
    np.testing.assert_allclose(fw, fw_ref, atol=tol(dtype, scale), rtol=0)

    sc = np.full_like(fw, np.nan)
    sc_ref = sc.copy()
    REF.spmm_scatter(indptr, indices, data, xt, sc_ref)
    np.testing.assert_allclose(sc_ref, dense.T @ xt, atol=tol(dtype, scale), rtol=0)
    with thread_limit(n_threads):
        ks.spmm_scatter(indptr, indices, data, xt, sc)
    np.testing.assert_allclose(sc, fw_ref, atol=tol(dtype, scale), rtol=0)
    if backend != "numba":  # numba's fastmath may contract the two loops differently
        # the same terms in the same (ascending row) order as the gather: the same bits
        np.testing.assert_array_equal(sc, fw)

    bw = np.full((n_in, xt.shape[1]), np.nan, dtype)
    bw_ref = bw.copy()
    REF.spmm_t(indptr, indices, data, dyt, bw_ref)
    np.testing.assert_allclose(bw_ref, dense @ dyt, atol=tol(dtype, scale), rtol=0)
    with thread_limit(n_threads):
        ks.spmm_t(indptr, indices, data, dyt, bw)
    np.testing.assert_allclose(bw, bw_ref, atol=tol(dtype, scale), rtol=0)

    dw = np.full(indices.shape[0], np.nan, dtype)
    dw_ref = dw.copy()
    REF.sddmm(indptr, indices, xt, dyt, dw_ref)
    np.testing.assert_allclose(dw_ref, (xt @ dyt.T)[rows, indices],
                               atol=tol(dtype, scale), rtol=0)
    with thread_limit(n_threads):
        ks.sddmm(indptr, indices, xt, dyt, dw)
    np.testing.assert_allclose(dw, dw_ref, atol=tol(dtype, scale), rtol=0)

    dxt = np.full_like(bw, np.nan)
    dw2 = np.full_like(dw, np.nan)
    with thread_limit(n_threads):
        ks.backward_fused(indptr, indices, data, xt, dyt, dxt, dw2)
    np.testing.assert_allclose(dxt, bw_ref, atol=tol(dtype, scale), rtol=0)
    np.testing.assert_allclose(dw2, dw_ref, atol=tol(dtype, scale), rtol=0)


def test_thread_count_determinism(backend, dtype):
    """Same bits for 1 and 2 threads on a layer large enough to run in parallel."""
    ks = _kernels.get(backend)
    indptr, indices, data, xt, dyt = _layer((700, 500, 0.05, (), (), 64), dtype, np.int32, 0)
    t = _transpose(ks, indptr, indices, 500)
    outs = []
    for nt in (1, 2):
        fw = np.empty((500, 64), dtype)
        sc = np.empty((500, 3), dtype)
        dxt = np.empty((700, 64), dtype)
        dw = np.empty(indices.shape[0], dtype)
        dw2 = np.empty_like(dw)
        bw = np.empty_like(dxt)
        with thread_limit(nt):
            ks.spmm(*t, data, xt, fw)
            ks.spmm_scatter(indptr, indices, data, np.ascontiguousarray(xt[:, :3]), sc)
            ks.spmm_t(indptr, indices, data, dyt, bw)
            ks.sddmm(indptr, indices, xt, dyt, dw)
            ks.backward_fused(indptr, indices, data, xt, dyt, dxt, dw2)
        outs.append((fw, sc, bw, dw, dxt, dw2))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_rows,n_cols", [(20, 15), (5, 1), (1, 30), (8, 8)])
def test_csr_merge(backend, index_dtype, n_rows, n_cols, seed):
    ks = _kernels.get(backend)
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 3, size=(n_rows, n_cols))  # 0 empty, 1 in a, 2 in b
    def pattern(v):
        r, c = np.nonzero(lab == v)
        ip = np.zeros(n_rows + 1, index_dtype)
        np.cumsum(np.bincount(r, minlength=n_rows), out=ip[1:])
        return ip, c.astype(index_dtype)
    ia, ja = pattern(1)
    ib, jb = pattern(2)
    nnz = ja.shape[0] + jb.shape[0]
    r_exp, c_exp = np.nonzero(lab > 0)
    for k in (ks, REF):
        ip = np.empty(n_rows + 1, index_dtype)
        jj = np.empty(nnz, index_dtype)
        fb = np.empty(nnz, np.int8)
        k.csr_merge(ia, ja, ib, jb, ip, jj, fb)
        np.testing.assert_array_equal(np.diff(ip), np.bincount(r_exp, minlength=n_rows))
        np.testing.assert_array_equal(jj, c_exp)
        np.testing.assert_array_equal(fb, (lab[r_exp, c_exp] == 2).astype(np.int8))


@pytest.mark.parametrize("coupled", [0, 1])
@pytest.mark.parametrize("nesterov", [0, 1])
def test_sgd_update(backend, dtype, coupled, nesterov, seed):
    ks = _kernels.get(backend)
    rng = np.random.default_rng(seed)
    n = 1001
    w0 = rng.standard_normal(n).astype(dtype)
    v0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    lr, mu, wd, div = 0.01, 0.9, 2e-4, 2.0
    # plain float64 formula oracle
    w64, v64, g64 = w0.astype(np.float64), v0.astype(np.float64), g.astype(np.float64) / div
    if coupled:
        g64 = g64 + wd * w64
    v_exp = mu * v64 - lr * g64
    step = mu * v_exp - lr * g64 if nesterov else v_exp
    w_exp = w64 + step if coupled else w64 + (step - wd * w64)
    w, v = w0.copy(), v0.copy()
    ks.sgd_update(w, v, g, lr, mu, wd, div, coupled, nesterov)
    np.testing.assert_allclose(v, v_exp, atol=tol(dtype, 4), rtol=0)
    np.testing.assert_allclose(w, w_exp, atol=tol(dtype, 4), rtol=0)
    if coupled == 0 and nesterov == 0 and dtype == np.float64:
        # the original's evaluation order gives the same bits: W + (V - lam*W)
        assert np.array_equal(v, (mu * v0) - (lr * (g / div)))


@pytest.mark.parametrize("decoupled", [0, 1])
def test_adam_update(backend, dtype, decoupled, seed):
    ks = _kernels.get(backend)
    rng = np.random.default_rng(seed)
    n = 513
    w0 = rng.standard_normal(n).astype(dtype)
    m0 = rng.standard_normal(n).astype(dtype) * 0.1
    s0 = rng.random(n).astype(dtype) * 0.1
    g = rng.standard_normal(n).astype(dtype)
    lr, b1, b2, eps, wd, div, t = 1e-3, 0.9, 0.999, 1e-8, 1e-2, 4.0, 3
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    w64, g64 = w0.astype(np.float64), g.astype(np.float64) / div
    if not decoupled:
        g64 = g64 + wd * w64
    m_exp = b1 * m0 + (1 - b1) * g64
    s_exp = b2 * s0 + (1 - b2) * g64 * g64
    w_exp = w64 - lr * wd * w64 * decoupled - lr * (m_exp / bc1) / (np.sqrt(s_exp / bc2) + eps)
    w, m, s = w0.copy(), m0.copy(), s0.copy()
    ks.adam_update(w, m, s, g, lr, b1, b2, eps, wd, div, bc1, bc2, decoupled)
    np.testing.assert_allclose(m, m_exp, atol=tol(dtype, 2), rtol=0)
    np.testing.assert_allclose(s, s_exp, atol=tol(dtype, 2), rtol=0)
    np.testing.assert_allclose(w, w_exp, atol=tol(dtype, 10), rtol=0)


def test_backend_selection_errors():
    with pytest.raises(ValueError, match="Unknown kernel backend 'fortran'"):
        _kernels.get("fortran")
    assert "numpy" in _kernels.available()
    assert _kernels.get("numpy").name == "numpy"
    ks = _kernels.get("numpy")
    with pytest.raises(AttributeError):
        ks.spmm = None
    assert set(_kernels.KERNEL_NAMES) <= set(vars(ks))


_SLOT_CASES = [(20, 15, 0.2), (5, 1, 0.4), (1, 30, 0.5), (40, 7, 0.95), (30, 50, 0.0),
               (8, 8, 0.9)]


def _check_empty_slots(ks, index_dtype, n_rows, n_out, dens, frac, seed):
    """Ranked empty slots against a dense mask over all slots (empty and full rows too)."""
    rng = np.random.default_rng(seed)
    indptr, indices, _ = random_csr(n_rows, n_out, dens, rng, np.float32, index_dtype,
                                    (0,) if n_rows > 2 else (), ())
    if n_rows > 3:  # make row 2 full
        r = 2
        indices = np.concatenate([indices[:indptr[r]], np.arange(n_out, dtype=index_dtype),
                                  indices[indptr[r + 1]:]])
        indptr = np.concatenate([indptr[:r + 1], indptr[r + 1:] - indptr[r + 1] + indptr[r]
                                 + n_out]).astype(index_dtype)
    occupied = np.zeros(n_rows * n_out, bool)
    occupied[np.repeat(np.arange(n_rows), np.diff(indptr)) * n_out + indices] = True
    empty = np.flatnonzero(~occupied)
    k = int(round(frac * empty.shape[0]))
    ranks = np.sort(rng.choice(empty.shape[0], k, replace=False)).astype(np.int64)
    expected = empty[ranks]
    ks.empty_slots(indptr, indices, n_out, ranks)
    np.testing.assert_array_equal(ranks, expected)
    return indptr, indices, empty.shape[0]


@pytest.mark.parametrize("n_rows,n_out,dens", _SLOT_CASES)
@pytest.mark.parametrize("frac", [0.0, 0.3, 1.0])
def test_empty_slots(backend, index_dtype, n_rows, n_out, dens, frac, seed):
    ks = _kernels.get(backend)
    indptr, indices, n_empty = _check_empty_slots(ks, index_dtype, n_rows, n_out, dens, frac,
                                                  seed)
    if n_empty and backend != "numpy":
        with pytest.raises(ValueError, match="not below the number of empty slots"):
            ks.empty_slots(indptr, indices, n_out, np.array([n_empty], np.int64))


@pytest.mark.parametrize("n_rows,n_out,dens", _SLOT_CASES)
@pytest.mark.parametrize("path", ["mask", "search"])
def test_empty_slots_reference_paths(monkeypatch, index_dtype, n_rows, n_out, dens, path, seed):
    from sparsemlp._kernels import _reference

    monkeypatch.setattr(_reference, "_DENSE_SLOTS", 1 << 60 if path == "mask" else 0)
    monkeypatch.setattr(_reference, "_CHUNK", 3)  # many chunks
    _check_empty_slots(REF, index_dtype, n_rows, n_out, dens, 0.5, seed)


def test_parallel_transpose_and_scatter_match_reference(backend, index_dtype):
    """Large enough for the parallel paths (column ranges per thread) of csr_transpose and
    spmm_scatter, with empty rows and columns: exact against the reference."""
    rng = np.random.default_rng(5)
    n_in, n_out = 400, 301
    indptr, indices, data = random_csr(n_in, n_out, 0.5, rng, np.float64, index_dtype,
                                       (0, 17, 399), (0, 150, 300))
    assert 2 * indices.shape[0] > 65_536  # above the parallel threshold
    ks = _kernels.get(backend)
    ref = _transpose(REF, indptr, indices, n_out)
    xt = rng.standard_normal((n_in, 2))
    want = np.empty((n_out, 2))
    REF.spmm(*ref, data, xt, want)
    for nt in (1, 2):
        with thread_limit(nt):
            got = _transpose(ks, indptr, indices, n_out)
            sc = np.full((n_out, 2), np.nan)
            ks.spmm_scatter(indptr, indices, data, xt, sc)
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sc, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s[0]}x{s[1]}d{s[2]}" for s in SHAPES])
@pytest.mark.parametrize("frac", [0.0, 0.5, 1.0])
def test_csr_compact_and_merge_values(backend, dtype, index_dtype, shape, frac, seed):
    """csr_compact against fancy indexing and a dense oracle; merge_values against masks."""
    ks = _kernels.get(backend)
    indptr, indices, data, _, _ = _layer(shape, dtype, index_dtype, seed)
    nnz, n_rows = indices.shape[0], indptr.shape[0] - 1
    rng = np.random.default_rng(seed + 1)
    keep = np.sort(rng.choice(nnz, int(round(frac * nnz)), replace=False)).astype(np.int64)
    indptr_k = np.full(n_rows + 1, -1, index_dtype)
    ind_k = np.full(keep.shape[0], -1, index_dtype)
    data_k = np.full(keep.shape[0], np.nan, dtype)
    ks.csr_compact(indptr, indices, data, keep, indptr_k, ind_k, data_k)
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    np.testing.assert_array_equal(ind_k, indices[keep])
    np.testing.assert_array_equal(data_k, data[keep])
    np.testing.assert_array_equal(indptr_k, np.r_[0, np.cumsum(np.bincount(rows[keep],
                                                                         minlength=n_rows))])
    from_b = (rng.random(nnz) < 0.4).astype(np.int8)
    a = rng.standard_normal(int(nnz - from_b.sum())).astype(dtype)
    b = rng.standard_normal(int(from_b.sum())).astype(dtype)
    out = np.full(nnz, np.nan, dtype)
    ks.merge_values(from_b, a, b, out)
    np.testing.assert_array_equal(out[from_b == 0], a)
    np.testing.assert_array_equal(out[from_b == 1], b)


def test_show_versions_reports_the_cython_that_built_the_kernels():
    """show_versions names the Cython that compiled the kernels (recorded at build time; the
    module embeds Cython's ABI name, e.g. _cython_3_3_1, an independent witness) and reports
    the build-time Cython package separately, as installed or not."""
    import importlib.util
    import io

    import sparsemlp

    buf = io.StringIO()
    sparsemlp.show_versions(file=buf)
    lines = dict(line.split(": ", 1) for line in buf.getvalue().splitlines())
    lines = {k.strip(): v for k, v in lines.items()}
    installed = importlib.util.find_spec("Cython") is not None
    assert lines["Cython (build-time)"].startswith("not installed") != installed
    info = _kernels.cython_info()
    if info is None:
        assert "cython kernels" not in lines
        return
    from sparsemlp._kernels import _cython

    so = pathlib.Path(_cython.__file__).read_bytes()
    version = info["cython_version"]
    assert f"_cython_{version.replace('.', '_')}".encode() in so, version
    assert lines["cython kernels"] == f"compiled with Cython {version}"
    assert lines["cython ISA"].startswith(f"{info['isa']} (usable here: ")
