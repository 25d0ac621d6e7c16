# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled kernels: fused float x index types, nogil, prange (twins of _kernels/_reference.py)."""

# Conventions shared by every kernel (docs/ARCHITECTURE.md, "How a batch travels"):
#
#   W is a canonical CSR matrix of shape (n_in, n_out): indptr[n_in+1], indices[nnz], data[nnz].
#   Its transposed index (rows = output neurons) is indptr_t[n_out+1], indices_t[nnz], perm[nnz],
#   with data[perm[k]] the value of the k-th entry in column order.
#   Activations are feature-major and C-contiguous: xt[n_in, B], dyt[n_out, B].
#
#   Outputs come last, are preallocated and are fully overwritten (rows without entries included);
#   kernels return None. Inputs are trusted (validated at the public boundary: nn/ and
#   training/checks.py); only O(1) shape checks are made here, so that a shape mix-up raises
#   instead of writing out of bounds.
#
#   Determinism: every output element is written by exactly one thread; each sum over nonzeros
#   runs in ascending k, one term at a time, inside one compiled row function that serves the
#   serial and the parallel case alike (a serial call is the same OpenMP loop with
#   num_threads=1). The bits are therefore the same for any thread count. No atomics, no
#   scatter-add across threads.
#
#   Vectorisation: the innermost loop always runs over the contiguous batch axis B. The gathers
#   (spmm, spmm_t) are elementwise over B: each out[j, b] gets the bits of a plain sequential
#   loop (checked for B = 1-69, 96, 127-130), in every instruction-set variant (setup.py builds
#   this file for baseline x86-64, x86-64-v3 and x86-64-v4, all with -ffp-contract=off; see
#   _cython_avx2.pyx, _cython_avx512.pyx). The build's -fassociative-math lets GCC vectorise the
#   B-dot-products of sddmm/backward_fused; that order depends only on B and the compiled code
#   (so also on the variant), not on threads.
#   The optimizer updates are compiled without reassociation/contraction (C block below) and
#   give the reference's bits.
#
#   Threading: a kernel runs on one thread when its work 2*nnz*B is below the threshold set by
#   set_parallel_threshold (65536 at import, from _kernels/_flags.py), else on
#   omp_get_max_threads() threads (threadpoolctl / sparsemlp._parallel.thread_limit control it).
#   Without OpenMP the prange loops compile to plain serial loops.

from cython.parallel cimport prange

cdef extern from *:
    r"""
    #if defined(_OPENMP) && (!defined(SPARSEMLP_OPENMP) || SPARSEMLP_OPENMP)
    #include <omp.h>
    #define SMLP_HAVE_OPENMP 1
    static int smlp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define SMLP_HAVE_OPENMP 0
    static int smlp_max_threads(void) { return 1; }
    #endif

    /* SIMD width the compiler targets (SSE2 unless built with SPARSEMLP_NATIVE=1): sets the
       register-tile sizes. SMLP_TILE_F = floats in the largest tile (8 vectors). */
    #if defined(__AVX512F__)
    #define SMLP_VEC_BYTES 64
    #elif defined(__AVX__)
    #define SMLP_VEC_BYTES 32
    #else
    #define SMLP_VEC_BYTES 16
    #endif
    #define SMLP_TILE_F (8 * SMLP_VEC_BYTES / 4)

    /* Instruction-set variant of this module (setup.py builds this file once per variant:
       _cython baseline x86-64/SSE2, _cython_avx2 x86-64-v3, _cython_avx512 x86-64-v4). */
    #ifndef SMLP_ISA
    #define SMLP_ISA "baseline"
    #endif

    /* What the running CPU (and OS) supports: 0 baseline, 1 x86-64-v3 (AVX2, FMA, BMI2),
       2 x86-64-v4 (AVX-512 F/BW/CD/DQ/VL). Decides which variant _kernels imports, so it is
       asked of the baseline module before any variant is loaded. */
    static int smlp_cpu_level(void) {
    #if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
        int v3, v4;
        __builtin_cpu_init();
        v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")
             && __builtin_cpu_supports("popcnt");
        v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
             && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
             && __builtin_cpu_supports("avx512vl");
        return v4 ? 2 : (v3 ? 1 : 0);
    #else
        return 0;
    #endif
    }

    #if defined(__GNUC__) || defined(__clang__)
    #define SMLP_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
    #define SMLP_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
    #else
    #define SMLP_PREFETCH(p) ((void)0)
    #define SMLP_PREFETCH_W(p) ((void)0)
    #endif

    /* Optimizer updates in the reference's exact evaluation order. The build's
       -fassociative-math (needed by the vectorised dot products) let GCC rewrite
       w + (v - wd*w) in a Cython version of these loops: 26 of 48 checked cases then differed
       from the reference in the last bit. So these loops are compiled with reassociation and
       FMA contraction off (checked: 0 of 48 differ, also in a -march=native build; GCC then
       keeps them out of line, one call per 8192-element chunk). They are elementwise and
       still vectorise. Written in C because Cython cannot scope compiler options to one
       function; a macro stamps out float and double. */
    #if defined(__clang__)
    #define SMLP_STRICT_BEGIN
    #define SMLP_STRICT_END
    #define SMLP_STRICT_BODY _Pragma("clang fp reassociate(off)") _Pragma("clang fp contract(off)")
    #elif defined(__GNUC__)
    #define SMLP_STRICT_BEGIN _Pragma("GCC push_options") \
        _Pragma("GCC optimize(\"no-associative-math\", \"fp-contract=off\")")
    #define SMLP_STRICT_END _Pragma("GCC pop_options")
    #define SMLP_STRICT_BODY
    #else
    #define SMLP_STRICT_BEGIN
    #define SMLP_STRICT_END
    #define SMLP_STRICT_BODY
    #endif

    /* SGD, elements [s, e): g = grad/div (+ wd*w if coupled); v = mu*v - lr*g;
       step = nesterov ? mu*v - lr*g : v; w = coupled ? w + step : w + (step - wd*w). */
    #define SMLP_DEF_SGD(T, NAME)                                                          \
    static void NAME(T *w, T *v, const T *g, Py_ssize_t s, Py_ssize_t e, T lr, T mu, T wd, \
                     T div, int coupled, int nesterov) {                                   \
        SMLP_STRICT_BODY                                                                   \
        Py_ssize_t i;                                                                      \
        if (coupled && nesterov) {                                                         \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div + wd * w[i];                                             \
                T vi = mu * v[i] - lr * gi;                                                \
                v[i] = vi;                                                                 \
                w[i] = w[i] + (mu * vi - lr * gi);                                         \
            }                                                                              \
        } else if (coupled) {                                                              \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div + wd * w[i];                                             \
                T vi = mu * v[i] - lr * gi;                                                \
                v[i] = vi;                                                                 \
                w[i] = w[i] + vi;                                                          \
            }                                                                              \
        } else if (nesterov) {                                                             \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div;                                                         \
                T vi = mu * v[i] - lr * gi;                                                \
                v[i] = vi;                                                                 \
                w[i] = w[i] + ((mu * vi - lr * gi) - wd * w[i]);                           \
            }                                                                              \
        } else {                                                                           \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div;                                                         \
                T vi = mu * v[i] - lr * gi;                                                \
                v[i] = vi;                                                                 \
                w[i] = w[i] + (vi - wd * w[i]);                                            \
            }                                                                              \
        }                                                                                  \
    }

    /* Adam, elements [s, e): g = grad/div (+ wd*w unless decoupled); m = b1*m + (1-b1)*g;
       v = b2*v + (1-b2)*(g*g); upd = lr*((m/bc1)/(sqrt(v/bc2) + eps));
       w = decoupled ? (w - (lr*wd)*w) - upd : w - upd. */
    #define SMLP_DEF_ADAM(T, SQRT, NAME)                                                   \
    static void NAME(T *w, T *m, T *v, const T *g, Py_ssize_t s, Py_ssize_t e, T lr, T b1, \
                     T b2, T eps, T wd, T div, T bc1, T bc2, int decoupled) {              \
        SMLP_STRICT_BODY                                                                   \
        Py_ssize_t i;                                                                      \
        const T one_b1 = (T)1 - b1, one_b2 = (T)1 - b2, lr_wd = lr * wd;                   \
        if (decoupled) {                                                                   \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div;                                                         \
                T mi = b1 * m[i] + one_b1 * gi;                                            \
                T vi = b2 * v[i] + one_b2 * (gi * gi);                                     \
                m[i] = mi;                                                                 \
                v[i] = vi;                                                                 \
                w[i] = (w[i] - lr_wd * w[i]) - lr * ((mi / bc1) / (SQRT(vi / bc2) + eps)); \
            }                                                                              \
        } else {                                                                           \
            for (i = s; i < e; i++) {                                                      \
                T gi = g[i] / div + wd * w[i];                                             \
                T mi = b1 * m[i] + one_b1 * gi;                                            \
                T vi = b2 * v[i] + one_b2 * (gi * gi);                                     \
                m[i] = mi;                                                                 \
                v[i] = vi;                                                                 \
                w[i] = w[i] - lr * ((mi / bc1) / (SQRT(vi / bc2) + eps));                  \
            }                                                                              \
        }                                                                                  \
    }

    SMLP_STRICT_BEGIN
    SMLP_DEF_SGD(float, smlp_sgd_f32)
    SMLP_DEF_SGD(double, smlp_sgd_f64)
    SMLP_DEF_ADAM(float, sqrtf, smlp_adam_f32)
    SMLP_DEF_ADAM(double, sqrt, smlp_adam_f64)
    SMLP_STRICT_END
    """
    int SMLP_HAVE_OPENMP
    const char* SMLP_ISA
    int smlp_cpu_level() nogil
    int smlp_max_threads() nogil
    enum: SMLP_VEC_BYTES
    enum: SMLP_TILE_F
    void SMLP_PREFETCH(const void* p) nogil
    void SMLP_PREFETCH_W(const void* p) nogil
    void smlp_sgd_f32(float* w, float* v, const float* g, Py_ssize_t s, Py_ssize_t e, float lr,
                      float mu, float wd, float div, int coupled, int nesterov) nogil
    void smlp_sgd_f64(double* w, double* v, const double* g, Py_ssize_t s, Py_ssize_t e,
                      double lr, double mu, double wd, double div, int coupled,
                      int nesterov) nogil
    void smlp_adam_f32(float* w, float* m, float* v, const float* g, Py_ssize_t s, Py_ssize_t e,
                       float lr, float b1, float b2, float eps, float wd, float div, float bc1,
                       float bc2, int decoupled) nogil
    void smlp_adam_f64(double* w, double* m, double* v, const double* g, Py_ssize_t s,
                       Py_ssize_t e, double lr, double b1, double b2, double eps, double wd,
                       double div, double bc1, double bc2, int decoupled) nogil

ctypedef fused index_t:
    int
    long long

ctypedef fused floating:
    float
    double

__all__ = [
    "spmm", "spmm_scatter", "spmm_t", "sddmm", "backward_fused", "csr_transpose", "csr_merge",
    "csr_compact", "merge_values", "empty_slots", "sgd_update",
    "adam_update", "set_parallel_threshold", "openmp_enabled", "max_threads", "cpu_level",
    "ISA",
]

NAME = "cython"
ISA = SMLP_ISA.decode("ascii")  # "baseline", "avx2" or "avx512": what this copy was built for

cdef enum:
    # Elements per task of the elementwise optimizer updates (each task a vectorised stream;
    # the split never changes results since the updates are elementwise).
    _CHUNK = 8192
    # Software prefetch distance: _PF_BYTES of gathered rows ahead, as a count of nonzeros
    # clamped to [_PF_MIN, _PF_MAX] (_pf_dist). Measured on the Intel machine: a fixed 8
    # (the AMD machine's best) vs 32 at n = 6e5, B = 2: fused backward 127 -> 93 ms; at
    # n = 3e5, B = 128, 2 threads 8 was better than 32 (forward 362-478 vs 456-504 ms,
    # alternating runs); 512-byte rows at distance 8 = 4 KiB ahead, hence the rule.
    _PF_BYTES = 4096
    _PF_MIN = 8
    _PF_MAX = 32

cdef long long _par_min_flops = 65536


cdef inline Py_ssize_t _pf_dist(Py_ssize_t row_bytes) noexcept nogil:
    """Prefetch distance in nonzeros for gathered rows of row_bytes each."""
    cdef Py_ssize_t d = _PF_BYTES // (row_bytes if row_bytes > 0 else 1)
    return _PF_MIN if d < _PF_MIN else (_PF_MAX if d > _PF_MAX else d)


def set_parallel_threshold(long long n):
    """Run kernels serially when their work ``2*nnz*B`` is below ``n`` (0: always parallel)."""
    global _par_min_flops
    if n < 0:
        raise ValueError(f"The parallel threshold must be >= 0. Got {n} instead.")
    _par_min_flops = n


def cpu_level():
    """ISA level of the running CPU: 0 baseline, 1 x86-64-v3 (AVX2), 2 x86-64-v4 (AVX-512)."""
    return smlp_cpu_level()


def openmp_enabled():
    """Whether this module was compiled with OpenMP (decided at build time)."""
    return bool(SMLP_HAVE_OPENMP)


def max_threads():
    """Threads a parallel kernel would use now: ``omp_get_max_threads()``, 1 without OpenMP."""
    return smlp_max_threads()


cdef inline int _n_threads(long long work) noexcept nogil:
    """1 below the parallel threshold (work = 2*nnz*B flops), else the OpenMP maximum."""
    if 2 * work < _par_min_flops:
        return 1
    return smlp_max_threads()


cdef inline void _check(bint ok, str what) except *:
    if not ok:
        raise ValueError(f"Inconsistent kernel arguments: {what}.")


# ------------------------------------------------------------------------------------------
# Row functions (one compiled copy each: the serial and the parallel path run the same code)
# ------------------------------------------------------------------------------------------
#
# Two measured tricks (benchmarks/README.md), neither of which changes any result:
# * Register tiles: the gather kernels accumulate a tile of T = 8, 4, 2 or 1 SIMD vectors of the
#   output row in a local array that GCC keeps in registers over the whole k loop, instead of
#   loading and storing out[j, b] once per nonzero (a store-to-load chain per k). Each output
#   element still sums its terms in ascending k order. B = 128 floats takes 4 tiles (SSE2),
#   i.e. 4 passes over the row's index list.
# * Software prefetch of the gathered row PF nonzeros ahead (across row ends: the next row is the
#   same thread's next task under the static schedule). Large layers are latency bound.

cdef inline void _prefetch_row(const void* p, Py_ssize_t nbytes) noexcept nogil:
    cdef const char* c = <const char*>p
    cdef Py_ssize_t off = 0
    while off < nbytes:
        SMLP_PREFETCH(c + off)
        off += 64


cdef inline void _gather_tile(floating* dst, Py_ssize_t B, Py_ssize_t b0, Py_ssize_t T,
                              Py_ssize_t start, Py_ssize_t end, Py_ssize_t lim,
                              const index_t* idx, const index_t* perm, const floating* data,
                              const floating* src) noexcept nogil:
    """dst[b0:b0+T] = sum_{k in [start, end)} w_k * src[idx[k], b0:b0+T], k ascending.

    w_k = data[perm[k]] if perm != NULL else data[k]. T is a compile-time constant at every
    call site, so the tile loop unrolls and acc[] lives in registers.
    """
    cdef floating acc[SMLP_TILE_F]
    cdef Py_ssize_t k, t
    cdef Py_ssize_t pf = _pf_dist(B * sizeof(floating))
    cdef floating w
    cdef const floating* s
    for t in range(T):
        acc[t] = 0
    for k in range(start, end):
        if k + pf < lim:
            _prefetch_row(src + <Py_ssize_t>idx[k + pf] * B + b0, T * sizeof(floating))
            if perm != NULL:
                SMLP_PREFETCH(data + perm[k + pf])
        if perm != NULL:
            w = data[perm[k]]
        else:
            w = data[k]
        s = src + <Py_ssize_t>idx[k] * B + b0
        for t in range(T):
            acc[t] += w * s[t]
    for t in range(T):
        dst[b0 + t] = acc[t]


cdef inline void _gather_row(floating* dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end,
                             Py_ssize_t lim, const index_t* idx, const index_t* perm,
                             const floating* data, const floating* src) noexcept nogil:
    """dst[:B] = sum_{k in [start, end)} w_k * src[idx[k], :B] (see _gather_tile)."""
    cdef Py_ssize_t V = SMLP_VEC_BYTES // sizeof(floating)
    cdef Py_ssize_t b0 = 0
    while b0 + 8 * V <= B:
        _gather_tile(dst, B, b0, 8 * V, start, end, lim, idx, perm, data, src)
        b0 += 8 * V
    if b0 + 4 * V <= B:
        _gather_tile(dst, B, b0, 4 * V, start, end, lim, idx, perm, data, src)
        b0 += 4 * V
    if b0 + 2 * V <= B:
        _gather_tile(dst, B, b0, 2 * V, start, end, lim, idx, perm, data, src)
        b0 += 2 * V
    if b0 + V <= B:
        _gather_tile(dst, B, b0, V, start, end, lim, idx, perm, data, src)
        b0 += V
    # Fewer than one vector left (all of B when B < V, e.g. the original's batch 2): tiles of
    # 8, 4, 2, 1 elements, still in registers and prefetched. A loop of `dst[b] += ...` here
    # stored and reloaded dst every nonzero and did not prefetch: 2.8x slower forward at
    # n = 6e5, B = 2 (benchmarks/README.md).
    if b0 + 8 <= B:
        _gather_tile(dst, B, b0, 8, start, end, lim, idx, perm, data, src)
        b0 += 8
    if b0 + 4 <= B:
        _gather_tile(dst, B, b0, 4, start, end, lim, idx, perm, data, src)
        b0 += 4
    if b0 + 2 <= B:
        _gather_tile(dst, B, b0, 2, start, end, lim, idx, perm, data, src)
        b0 += 2
    if b0 < B:
        _gather_tile(dst, B, b0, 1, start, end, lim, idx, perm, data, src)


cdef inline void _sddmm_row(floating* dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end,
                            Py_ssize_t lim, const index_t* idx, const floating* x,
                            const floating* dy) noexcept nogil:
    """dst[k] = <x[:B], dy[idx[k], :B]> for k in [start, end).

    Four dot products per pass over x (x loads shared, four independent accumulator chains),
    then one at a time. Which path an entry takes depends only on its position in the row.
    """
    cdef Py_ssize_t k = start, b
    cdef floating s0, s1, s2, s3, xb
    cdef const floating* d0
    cdef const floating* d1
    cdef const floating* d2
    cdef const floating* d3
    cdef Py_ssize_t nbytes = B * sizeof(floating)
    cdef Py_ssize_t pf = _pf_dist(nbytes)
    while k + 4 <= end:
        if k + pf + 3 < lim:
            _prefetch_row(dy + <Py_ssize_t>idx[k + pf] * B, nbytes)
            _prefetch_row(dy + <Py_ssize_t>idx[k + pf + 1] * B, nbytes)
            _prefetch_row(dy + <Py_ssize_t>idx[k + pf + 2] * B, nbytes)
            _prefetch_row(dy + <Py_ssize_t>idx[k + pf + 3] * B, nbytes)
        d0 = dy + <Py_ssize_t>idx[k] * B
        d1 = dy + <Py_ssize_t>idx[k + 1] * B
        d2 = dy + <Py_ssize_t>idx[k + 2] * B
        d3 = dy + <Py_ssize_t>idx[k + 3] * B
        s0 = 0
        s1 = 0
        s2 = 0
        s3 = 0
        for b in range(B):
            xb = x[b]
            s0 = s0 + xb * d0[b]
            s1 = s1 + xb * d1[b]
            s2 = s2 + xb * d2[b]
            s3 = s3 + xb * d3[b]
        dst[k] = s0
        dst[k + 1] = s1
        dst[k + 2] = s2
        dst[k + 3] = s3
        k += 4
    while k < end:
        if k + pf < lim:
            _prefetch_row(dy + <Py_ssize_t>idx[k + pf] * B, nbytes)
        d0 = dy + <Py_ssize_t>idx[k] * B
        s0 = 0
        for b in range(B):
            s0 = s0 + x[b] * d0[b]
        dst[k] = s0
        k += 1


cdef inline void _fused_row(floating* dx, floating* dw, Py_ssize_t B, Py_ssize_t start,
                            Py_ssize_t end, Py_ssize_t lim, const index_t* idx,
                            const floating* data, const floating* x,
                            const floating* dy) noexcept nogil:
    """dx[:B] = sum_k data[k] * dy[idx[k], :B] and dw[k] = <x[:B], dy[idx[k], :B]> for row i.

    The row's gathered dy rows are fetched from memory once: the dx register tiles pull them
    into L1/L2 and the dot products reuse them right away. This gives exactly the bits of
    spmm_t and sddmm, and was measured at least as fast as one loop doing both updates per
    nonzero (that loop stores and reloads dx[:B] for every nonzero).
    """
    _gather_row(dx, B, start, end, lim, idx, <const index_t*>NULL, data, dy)
    _sddmm_row(dw, B, start, end, lim, idx, x, dy)


cdef inline Py_ssize_t _lower_bound(const index_t* idx, Py_ssize_t lo, Py_ssize_t hi,
                                    Py_ssize_t j) noexcept nogil:
    """First k in [lo, hi) with idx[k] >= j (idx sorted ascending there), else hi."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if idx[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t _run_start(const index_t* idx, Py_ssize_t lo, Py_ssize_t hi,
                                  Py_ssize_t j0) noexcept nogil:
    """First entry of the sorted row idx[lo:hi] with column >= j0 (hi if none)."""
    if lo == hi or idx[lo] >= j0:
        return lo
    return _lower_bound(idx, lo, hi, j0)


cdef inline Py_ssize_t _run_end(const index_t* idx, Py_ssize_t lo, Py_ssize_t hi,
                                Py_ssize_t j1) noexcept nogil:
    """First entry of the sorted row idx[lo:hi] with column >= j1 (hi if none)."""
    if hi == lo or idx[hi - 1] < j1:
        return hi
    return _lower_bound(idx, lo, hi, j1)


cdef inline void _scatter_tile(floating* out, Py_ssize_t B, Py_ssize_t T, Py_ssize_t start,
                               Py_ssize_t end, const index_t* idx, const floating* data,
                               const floating* x) noexcept nogil:
    """out[idx[k], :T] += data[k] * x[:T] for k in [start, end), k ascending (T constant at
    the call sites below, B = T, so the b loop unrolls and x[:T] stays in registers)."""
    cdef floating xr[8]
    cdef Py_ssize_t k, t
    cdef Py_ssize_t pf = _pf_dist(B * sizeof(floating))
    cdef floating w
    cdef floating* o
    for t in range(T):
        xr[t] = x[t]
    for k in range(start, end):
        if k + pf < end:
            SMLP_PREFETCH_W(out + <Py_ssize_t>idx[k + pf] * B)
        w = data[k]
        o = out + <Py_ssize_t>idx[k] * B
        for t in range(T):
            o[t] += w * xr[t]


cdef inline void _scatter_rows(floating* out, Py_ssize_t B, Py_ssize_t n_in, Py_ssize_t j0,
                               Py_ssize_t j1, const index_t* ip, const index_t* idx,
                               const floating* data, const floating* xt) noexcept nogil:
    """out[j0:j1, :] = sum over rows i ascending of data[k] * xt[i, :] for the row's entries
    k with j0 <= idx[k] < j1 (a contiguous run: the row's indices are sorted)."""
    cdef Py_ssize_t i, j, b, k, lo, hi
    cdef Py_ssize_t pf = _pf_dist(B * sizeof(floating))
    cdef floating w
    cdef floating* o
    cdef const floating* x
    for j in range(j0 * B, j1 * B):
        out[j] = 0
    for i in range(n_in):
        lo = _run_start(idx, ip[i], ip[i + 1], j0)
        hi = _run_end(idx, lo, ip[i + 1], j1)
        if lo == hi:
            continue
        x = xt + i * B
        if B == 1:
            _scatter_tile(out, B, 1, lo, hi, idx, data, x)
        elif B == 2:
            _scatter_tile(out, B, 2, lo, hi, idx, data, x)
        elif B == 4:
            _scatter_tile(out, B, 4, lo, hi, idx, data, x)
        else:
            for k in range(lo, hi):
                if k + pf < hi:
                    SMLP_PREFETCH_W(out + <Py_ssize_t>idx[k + pf] * B)
                w = data[k]
                o = out + <Py_ssize_t>idx[k] * B
                for b in range(B):
                    o[b] += w * x[b]


cdef inline void _merge_row(Py_ssize_t pa, Py_ssize_t ea, Py_ssize_t pb, Py_ssize_t eb,
                            Py_ssize_t out, const index_t* ja, const index_t* jb,
                            index_t* jo, signed char* from_b) noexcept nogil:
    """Two-pointer merge of sorted ja[pa:ea] and jb[pb:eb] into jo[out:]; a first on ties."""
    while pa < ea and pb < eb:
        if jb[pb] < ja[pa]:
            jo[out] = jb[pb]
            from_b[out] = 1
            pb += 1
        else:
            jo[out] = ja[pa]
            from_b[out] = 0
            pa += 1
        out += 1
    while pa < ea:
        jo[out] = ja[pa]
        from_b[out] = 0
        pa += 1
        out += 1
    while pb < eb:
        jo[out] = jb[pb]
        from_b[out] = 1
        pb += 1
        out += 1


# ------------------------------------------------------------------------------------------
# Products
# ------------------------------------------------------------------------------------------

def spmm(const index_t[::1] indptr_t, const index_t[::1] indices_t, const index_t[::1] perm,
         const floating[::1] data, const floating[:, ::1] xt, floating[:, ::1] out):
    """Forward product ``out = W.T @ xt`` as a gather over output neurons.

    Input
        indptr_t[n_out+1], indices_t[nnz], perm[nnz]: transposed index of W (n_in, n_out);
        data[nnz]: W's values in CSR order; xt[n_in, B]: feature-major activations.
    Output
        out[n_out, B], overwritten:
        out[j, :] = sum_{k in column j} data[perm[k]] * xt[indices_t[k], :].
    Complexity
        O(nnz * B + n_out * B) time, O(1) extra memory. Register tiles over B (ceil(B / 32)
        passes over column j's index list for float32 with SSE2) and software prefetch.
    Determinism / threading
        Parallel over output rows j (static schedule); each element out[j, b] sums its terms
        one at a time in ascending k (the same bits as a plain sequential loop), B innermost
        and vectorised; same bits for any thread count.
    """
    cdef Py_ssize_t n_out = out.shape[0], B = out.shape[1], nnz = indices_t.shape[0], j
    _check(indptr_t.shape[0] == n_out + 1, "indptr_t must have n_out+1 entries")
    _check(perm.shape[0] == nnz and data.shape[0] >= nnz, "perm/data shorter than indices_t")
    _check(xt.shape[1] == B, "xt and out must have the same batch size")
    cdef int nt = _n_threads(nnz * B)
    cdef const index_t* ip = &indptr_t[0]
    cdef const index_t* it = &indices_t[0]
    cdef const index_t* pp = &perm[0]
    cdef const floating* dp = &data[0]
    cdef const floating* xp = &xt[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        for j in prange(n_out, schedule="static", num_threads=nt):
            _gather_row(op + j * B, B, ip[j], ip[j + 1], nnz, it, pp, dp, xp)


def spmm_scatter(const index_t[::1] indptr, const index_t[::1] indices,
                 const floating[::1] data, const floating[:, ::1] xt, floating[:, ::1] out):
    """Forward product ``out = W.T @ xt`` as a scatter over W's CSR rows (small batches).

    Input
        indptr[n_in+1], indices[nnz], data[nnz]: W (n_in, n_out) in canonical CSR (sorted
        indices); xt[n_in, B]: feature-major activations.
    Output
        out[n_out, B], overwritten: out[j, :] = sum_i W[i, j] * xt[i, :], the terms added one
        at a time in ascending i: the terms and order of ``spmm``'s gather, so the same bits.
    Complexity
        O(nnz * B + n_in * threads * log(nnz per row) + n_out * B) time, O(1) extra memory.
        Streams W's arrays in storage order (no transposed index, no random ``data[perm[k]]``
        read); the random accesses are read-modify-writes of out rows, which stay in cache
        when n_out * B is small: the case it is for (batch 1-8 at 1e5-1e6 outputs).
    Determinism / threading
        Each thread owns a contiguous range of output columns (equal widths) and walks all of
        W's rows, taking the run of each row's entries that falls in its range (a binary
        search on the sorted indices); every out[j, b] is written by one thread in ascending
        i, so the result has the same bits for any thread count.
    """
    cdef Py_ssize_t n_in = xt.shape[0], B = xt.shape[1], n_out = out.shape[0]
    cdef Py_ssize_t nnz = indices.shape[0], t
    _check(indptr.shape[0] == n_in + 1, "indptr must have n_in+1 entries")
    _check(data.shape[0] >= nnz, "data shorter than indices")
    _check(out.shape[1] == B, "xt and out must have the same batch size")
    cdef int nt = _n_threads(nnz * B)
    if nt > n_out:
        nt = max(1, n_out)
    if n_out == 0 or B == 0:
        return
    cdef const index_t* ip = &indptr[0]
    cdef const index_t* jp = &indices[0] if nnz else <const index_t*>NULL
    cdef const floating* dp = &data[0] if nnz else <const floating*>NULL
    cdef const floating* xp = &xt[0, 0] if n_in else <const floating*>NULL
    cdef floating* op = &out[0, 0]
    with nogil:
        for t in prange(nt, schedule="static", num_threads=nt):
            _scatter_rows(op, B, n_in, t * n_out // nt, (t + 1) * n_out // nt, ip, jp, dp, xp)


def spmm_t(const index_t[::1] indptr, const index_t[::1] indices, const floating[::1] data,
           const floating[:, ::1] dyt, floating[:, ::1] out):
    """Backward product to the inputs ``out = W @ dyt`` as a gather over W's CSR rows.

    Input
        indptr[n_in+1], indices[nnz], data[nnz]: W (n_in, n_out) in CSR; dyt[n_out, B].
    Output
        out[n_in, B], overwritten: out[i, :] = sum_{k in row i} data[k] * dyt[indices[k], :].
    Complexity
        O(nnz * B + n_in * B) time, O(1) extra memory. Register tiles and prefetch as spmm.
    Determinism / threading
        Parallel over W's rows i (static schedule); each element sums its terms one at a time
        in ascending k, B innermost; same bits for any thread count.
    """
    cdef Py_ssize_t n_in = out.shape[0], B = out.shape[1], nnz = indices.shape[0], i
    _check(indptr.shape[0] == n_in + 1, "indptr must have n_in+1 entries")
    _check(data.shape[0] >= nnz, "data shorter than indices")
    _check(dyt.shape[1] == B, "dyt and out must have the same batch size")
    cdef int nt = _n_threads(nnz * B)
    cdef const index_t* ip = &indptr[0]
    cdef const index_t* jp = &indices[0]
    cdef const floating* dp = &data[0]
    cdef const floating* yp = &dyt[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        for i in prange(n_in, schedule="static", num_threads=nt):
            _gather_row(op + i * B, B, ip[i], ip[i + 1], nnz, jp, <const index_t*>NULL, dp, yp)


def sddmm(const index_t[::1] indptr, const index_t[::1] indices, const floating[:, ::1] xt,
          const floating[:, ::1] dyt, floating[::1] out):
    """Sampled dense-dense product: the weight gradient on W's pattern, in W.data order.

    Input
        indptr[n_in+1], indices[nnz]: W's CSR pattern; xt[n_in, B]; dyt[n_out, B].
    Output
        out[nnz], overwritten: out[k] = <xt[i, :], dyt[indices[k], :]> for entry k of row i.
    Complexity
        O(nnz * B) time, O(1) extra memory.
    Determinism / threading
        Parallel over W's rows i (static schedule); one dot product per entry in local
        accumulators over the contiguous B axis, four entries per pass over xt[i] (vectorised;
        the order of the B-sum is fixed by B and the compiled code); same bits for any thread
        count.
    """
    cdef Py_ssize_t n_in = xt.shape[0], B = xt.shape[1], nnz = indices.shape[0], i
    _check(indptr.shape[0] == n_in + 1, "indptr must have n_in+1 entries")
    _check(out.shape[0] == nnz, "out must have nnz entries")
    _check(dyt.shape[1] == B, "xt and dyt must have the same batch size")
    cdef int nt = _n_threads(nnz * B)
    cdef const index_t* ip = &indptr[0]
    cdef const index_t* jp = &indices[0]
    cdef const floating* xp = &xt[0, 0]
    cdef const floating* yp = &dyt[0, 0]
    cdef floating* op = &out[0]
    with nogil:
        for i in prange(n_in, schedule="static", num_threads=nt):
            _sddmm_row(op, B, ip[i], ip[i + 1], nnz, jp, xp + i * B, yp)


def backward_fused(const index_t[::1] indptr, const index_t[::1] indices,
                   const floating[::1] data, const floating[:, ::1] xt,
                   const floating[:, ::1] dyt, floating[:, ::1] dxt, floating[::1] dw):
    """``spmm_t`` and ``sddmm`` in one pass over W's rows (each dyt row fetched once per use).

    Input
        indptr[n_in+1], indices[nnz], data[nnz]: W in CSR; xt[n_in, B]; dyt[n_out, B].
    Output
        dxt[n_in, B], overwritten: dxt[i, :] = sum_{k in row i} data[k] * dyt[indices[k], :];
        dw[nnz], overwritten: dw[k] = <xt[i, :], dyt[indices[k], :]>.
    Complexity
        O(nnz * B + n_in * B) time, O(1) extra memory. For each row i, the dxt[i] register
        tiles gather the row's dyt rows into L1/L2, then the dw dot products reuse them.
    Determinism / threading
        Parallel over W's rows i (static schedule); both results of row i are written by one
        thread with the row functions of spmm_t and sddmm, so dxt has the bits of spmm_t and
        dw those of sddmm (checked for B = 1-69, 96, 127-130); same bits for any thread count.
    """
    cdef Py_ssize_t n_in = xt.shape[0], B = xt.shape[1], nnz = indices.shape[0], i
    _check(indptr.shape[0] == n_in + 1, "indptr must have n_in+1 entries")
    _check(data.shape[0] >= nnz and dw.shape[0] == nnz, "data/dw must have nnz entries")
    _check(dyt.shape[1] == B and dxt.shape[1] == B, "xt, dyt and dxt must share the batch size")
    _check(dxt.shape[0] == n_in, "dxt must have n_in rows")
    cdef int nt = _n_threads(nnz * B)  # same rule as the unfused kernels
    cdef const index_t* ip = &indptr[0]
    cdef const index_t* jp = &indices[0]
    cdef const floating* dp = &data[0]
    cdef const floating* xp = &xt[0, 0]
    cdef const floating* yp = &dyt[0, 0]
    cdef floating* gp = &dxt[0, 0]
    cdef floating* wp = &dw[0]
    with nogil:
        for i in prange(n_in, schedule="static", num_threads=nt):
            _fused_row(gp + i * B, wp, B, ip[i], ip[i + 1], nnz, jp, dp, xp + i * B, yp)


# ------------------------------------------------------------------------------------------
# Pattern kernels
# ------------------------------------------------------------------------------------------

cdef inline void _transpose_cols(Py_ssize_t n_rows, Py_ssize_t j0, Py_ssize_t j1, bint fill,
                                 const index_t* ip, const index_t* jp, index_t* ipt,
                                 index_t* it, index_t* pp) noexcept nogil:
    """Count (fill=0) or place (fill=1) the entries of columns [j0, j1), rows ascending."""
    cdef Py_ssize_t i, k, lo, hi, j, dest
    for i in range(n_rows):
        lo = _run_start(jp, ip[i], ip[i + 1], j0)
        hi = _run_end(jp, lo, ip[i + 1], j1)
        if fill:
            for k in range(lo, hi):
                j = jp[k]
                dest = ipt[j]
                it[dest] = <index_t>i
                pp[dest] = <index_t>k
                ipt[j] = <index_t>(dest + 1)
        else:
            for k in range(lo, hi):
                ipt[jp[k]] += 1


def csr_transpose(const index_t[::1] indptr, const index_t[::1] indices, Py_ssize_t n_cols,
                  index_t[::1] indptr_t, index_t[::1] indices_t, index_t[::1] perm):
    """Column index of a CSR pattern by a stable counting sort (SciPy's csr_tocsc, no values).

    Input
        indptr[n_rows+1], indices[nnz]: canonical CSR pattern; n_cols: number of columns.
    Output
        indptr_t[n_cols+1]; indices_t[nnz]: row of each entry in column order (rows ascending
        within a column); perm[nnz]: CSR position of the k-th entry in column order.
    Complexity
        O(nnz + n_cols + n_rows * threads * log(nnz per row)) time; no extra memory
        (indptr_t doubles as the cursor).
    Determinism / threading
        Each thread owns a contiguous range of columns (equal widths), walks all rows and
        counts, then places, the run of each row's entries in its range (binary search on the
        sorted indices): every column is filled by one thread in ascending row order, so the
        result is the same for any thread count. Measured (1 -> 2 threads): 30000 x 30000,
        1.2 M entries, 12.5 -> 6.5 ms; 300000 x 300000, 12 M entries, 256 -> 112 ms.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, nnz = indices.shape[0]
    cdef Py_ssize_t j, tmp, cum, t
    _check(n_rows >= 0 and indptr_t.shape[0] == n_cols + 1, "indptr_t must have n_cols+1 entries")
    _check(indices_t.shape[0] == nnz and perm.shape[0] == nnz,
           "indices_t/perm must have nnz entries")
    # parallel from 2^18 entries: below, waking the (passive) OpenMP threads twice costs more
    # than it saves (10000 x 5, 49 k entries: 0.45 ms parallel)
    cdef int nt = _n_threads(nnz) if nnz >= (1 << 18) else 1
    if nt > n_cols:
        nt = max(1, n_cols)
    cdef const index_t* ip = &indptr[0]
    cdef const index_t* jp = &indices[0] if nnz else <const index_t*>NULL
    cdef index_t* ipt = &indptr_t[0]
    cdef index_t* itp = &indices_t[0] if nnz else <index_t*>NULL
    cdef index_t* pp = &perm[0] if nnz else <index_t*>NULL
    with nogil:
        for j in range(n_cols + 1):
            ipt[j] = 0
        if nt == 1:
            _transpose_cols(n_rows, 0, n_cols, False, ip, jp, ipt, itp, pp)
        else:
            for t in prange(nt, schedule="static", num_threads=nt):
                _transpose_cols(n_rows, t * n_cols // nt, (t + 1) * n_cols // nt, False, ip,
                                jp, ipt, itp, pp)
        cum = 0
        for j in range(n_cols):  # exclusive prefix sum: indptr_t[j] = start of column j
            tmp = ipt[j]
            ipt[j] = <index_t>cum
            cum += tmp
        ipt[n_cols] = <index_t>cum
        if nt == 1:
            _transpose_cols(n_rows, 0, n_cols, True, ip, jp, ipt, itp, pp)
        else:
            for t in prange(nt, schedule="static", num_threads=nt):
                _transpose_cols(n_rows, t * n_cols // nt, (t + 1) * n_cols // nt, True, ip, jp,
                                ipt, itp, pp)
        # indptr_t[j] now holds the end of column j = start of column j+1: shift right by one
        for j in range(n_cols, 0, -1):
            ipt[j] = ipt[j - 1]
        ipt[0] = 0


def csr_merge(const index_t[::1] indptr_a, const index_t[::1] indices_a,
              const index_t[::1] indptr_b, const index_t[::1] indices_b,
              index_t[::1] indptr_out, index_t[::1] indices_out, signed char[::1] from_b):
    """Row-wise merge of two canonical CSR patterns with no common entries.

    Input
        indptr_a[n_rows+1], indices_a[nnz_a]; indptr_b[n_rows+1], indices_b[nnz_b].
    Output
        indptr_out[n_rows+1] = indptr_a + indptr_b; indices_out[nnz_a+nnz_b] (columns
        ascending in each row); from_b[nnz_a+nnz_b] (int8: 1 where the entry comes from b).
        On equal columns the entry of a comes first (callers guarantee disjoint patterns).
    Complexity
        O(nnz_a + nnz_b + n_rows) time, O(1) extra memory.
    Determinism / threading
        Rows are independent: parallel over rows once indptr_out is known; no reductions.
    """
    cdef Py_ssize_t n_rows = indptr_a.shape[0] - 1, r
    cdef Py_ssize_t nnz = indices_a.shape[0] + indices_b.shape[0]
    _check(n_rows >= 0 and indptr_b.shape[0] == n_rows + 1 and indptr_out.shape[0] == n_rows + 1,
           "indptr_a, indptr_b and indptr_out must have the same length")
    _check(indices_out.shape[0] == nnz and from_b.shape[0] == nnz,
           "indices_out/from_b must have nnz_a+nnz_b entries")
    cdef int nt = _n_threads(nnz)
    cdef const index_t* ipa = &indptr_a[0]
    cdef const index_t* ipb = &indptr_b[0]
    cdef const index_t* ja = &indices_a[0]
    cdef const index_t* jb = &indices_b[0]
    cdef index_t* ipo = &indptr_out[0]
    cdef index_t* jo = &indices_out[0]
    cdef signed char* fb = &from_b[0]
    with nogil:
        for r in range(n_rows + 1):
            ipo[r] = ipa[r] + ipb[r]
        for r in prange(n_rows, schedule="static", num_threads=nt):
            _merge_row(ipa[r], ipa[r + 1], ipb[r], ipb[r + 1], ipo[r], ja, jb, jo, fb)


# ------------------------------------------------------------------------------------------
# Optimizer updates (elementwise, in place)
# ------------------------------------------------------------------------------------------

def csr_compact(const index_t[::1] indptr, const index_t[::1] indices,
                const floating[::1] data, const long long[::1] keep_index,
                index_t[::1] indptr_k, index_t[::1] indices_k, floating[::1] data_k):
    """The entries of a CSR matrix at ascending positions ``keep_index``, as a CSR matrix.

    Input
        indptr[n_rows+1], indices[nnz], data[nnz]: the CSR matrix; keep_index[m]: int64,
        ascending, distinct, in [0, nnz).
    Output
        indptr_k[n_rows+1]; indices_k[m], data_k[m]: the kept entries in order.
    Complexity
        O(n_rows + m) time, O(1) extra memory: one pass over the rows and keep_index.
    Determinism / threading
        Serial; a copy (exact).
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, m = keep_index.shape[0], i, w = 0
    cdef long long end, p
    _check(n_rows >= 0 and indptr_k.shape[0] == n_rows + 1, "indptr_k must have n_rows+1 entries")
    _check(indices_k.shape[0] == m and data_k.shape[0] == m, "indices_k/data_k must have m entries")
    _check(m == 0 or (keep_index[0] >= 0 and keep_index[m - 1] < indices.shape[0]
                      and data.shape[0] >= indices.shape[0]), "keep_index out of range")
    with nogil:
        indptr_k[0] = 0
        for i in range(n_rows):
            end = indptr[i + 1]
            while w < m and keep_index[w] < end:
                p = keep_index[w]
                indices_k[w] = indices[p]
                data_k[w] = data[p]
                w += 1
            indptr_k[i + 1] = <index_t>w


def merge_values(const signed char[::1] from_b, const floating[::1] data_a,
                 const floating[::1] data_b, floating[::1] data_out):
    """Interleave two value arrays as a merge decided: the values of ``csr_merge``'s output.

    Input
        from_b[n]: 1 where merged entry p comes from b, else 0; data_a, data_b: a's and b's
        values in order (``len(data_a) + len(data_b) == n``).
    Output
        data_out[n]: a's values at the 0s, b's at the 1s, each in order.
    Complexity
        O(n) time, O(1) extra memory, streaming.
    Determinism / threading
        Serial; a copy (exact).
    """
    cdef Py_ssize_t n = from_b.shape[0], na = 0, nb = 0, p, la, lb, f
    _check(data_a.shape[0] + data_b.shape[0] == n and data_out.shape[0] == n,
           "len(data_a) + len(data_b) and len(data_out) must equal len(from_b)")
    la = data_a.shape[0]
    lb = data_b.shape[0]
    if la == 0 or lb == 0:
        if n:
            data_out[:] = data_b if la == 0 else data_a
        return
    cdef const floating* pa = &data_a[0]
    cdef const floating* pb = &data_b[0]
    cdef const floating* src
    cdef floating* po = &data_out[0]
    cdef const signed char* pf = &from_b[0]
    with nogil:
        # branch-free: a pointer select (a random from_b mispredicts a branch about half the
        # time, 4 ns per entry); the clamped index keeps the unused side's address in bounds
        for p in range(n):
            f = pf[p] != 0
            src = pb + (nb if nb < lb else lb - 1)
            if not f:
                src = pa + (na if na < la else la - 1)
            po[p] = src[0]
            nb += f
            na += 1 - f


def empty_slots(const index_t[::1] indptr_k, const index_t[::1] ind_k, Py_ssize_t n_out,
                long long[::1] ranks):
    """Row-major linear positions ``i * n_out + j`` of the empty slots with the given ranks.

    Input
        indptr_k[n_rows+1], ind_k[nnz]: canonical CSR pattern with n_out columns;
        ranks[k]: int64, ascending, distinct, each below ``n_rows * n_out - nnz``
        (rank s = the s-th empty slot in row-major order).
    Output
        ranks, overwritten with the positions (ascending).
    Complexity
        O(n_rows + nnz + k) time, O(1) extra memory: one merge-like pass over rows and
        ranks; within row i the q-th empty column is ``q + #{u : col_u - u <= q}`` (u the
        entry's position in the row), found by a pointer that only moves forward.
    Determinism / threading
        Serial; exact (integer arithmetic).
    """
    cdef Py_ssize_t n_rows = indptr_k.shape[0] - 1, k = ranks.shape[0], a
    cdef long long i = 0, e_row = 0, start, end, t, q, r, empty
    cdef bint bad = False
    _check(n_rows >= 0, "indptr_k must have n_rows+1 entries")
    if k == 0:
        return
    cdef const index_t* ip = &indptr_k[0]
    cdef const index_t* jp = &ind_k[0] if ind_k.shape[0] else <const index_t*>NULL
    cdef long long* rp = &ranks[0]
    with nogil:
        start = ip[0]
        t = start
        for a in range(k):
            r = rp[a]
            while True:
                if i >= n_rows:
                    bad = True
                    break
                end = ip[i + 1]
                empty = n_out - (end - start)
                if r < e_row + empty:
                    break
                e_row += empty
                i += 1
                start = end
                t = start
            if bad:
                break
            q = r - e_row
            end = ip[i + 1]
            while t < end and <long long>jp[t] - (t - start) <= q:
                t += 1
            rp[a] = i * n_out + q + (t - start)
    if bad:
        raise ValueError("empty_slots: a rank is not below the number of empty slots.")


cdef inline void _sgd_chunk(floating* w, floating* v, const floating* g, Py_ssize_t s,
                            Py_ssize_t e, floating lr, floating mu, floating wd, floating div,
                            int coupled, int nesterov) noexcept nogil:
    if floating is float:
        smlp_sgd_f32(w, v, g, s, e, lr, mu, wd, div, coupled, nesterov)
    else:
        smlp_sgd_f64(w, v, g, s, e, lr, mu, wd, div, coupled, nesterov)


def sgd_update(floating[::1] param, floating[::1] velocity, const floating[::1] grad,
               double lr, double momentum, double weight_decay, double batch_divisor,
               int coupled, int nesterov):
    """In-place SGD step with momentum on aligned arrays (param, velocity, grad: length n).

    Semantics (scalars cast to the array dtype once, as the reference does):
        g = grad / batch_divisor            (+ wd * w if coupled)
        v = mu * v - lr * g
        step = mu * v - lr * g if nesterov else v
        w = w + step                        if coupled
        w = w + (step - wd * w)             otherwise (original SET order)
    Complexity
        O(n) time, O(1) extra memory; memory bound.
    Determinism / threading
        Elementwise: parallel over chunks of 8192 elements when 2*n >= the threshold; results
        do not depend on the split.
    """
    cdef Py_ssize_t n = param.shape[0], c, n_chunks
    _check(velocity.shape[0] == n and grad.shape[0] == n, "param, velocity and grad must align")
    cdef floating lr_ = <floating>lr, mu = <floating>momentum, wd = <floating>weight_decay
    cdef floating div = <floating>batch_divisor
    cdef int nt = _n_threads(n)
    cdef floating* wp = &param[0]
    cdef floating* vp = &velocity[0]
    cdef const floating* gp = &grad[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=nt):
            _sgd_chunk(wp, vp, gp, c * _CHUNK, min((c + 1) * _CHUNK, n), lr_, mu, wd, div,
                       coupled, nesterov)


cdef inline void _adam_chunk(floating* w, floating* m, floating* v, const floating* g,
                             Py_ssize_t s, Py_ssize_t e, floating lr, floating b1, floating b2,
                             floating eps, floating wd, floating div, floating bc1, floating bc2,
                             int decoupled) noexcept nogil:
    if floating is float:
        smlp_adam_f32(w, m, v, g, s, e, lr, b1, b2, eps, wd, div, bc1, bc2, decoupled)
    else:
        smlp_adam_f64(w, m, v, g, s, e, lr, b1, b2, eps, wd, div, bc1, bc2, decoupled)


def adam_update(floating[::1] param, floating[::1] m, floating[::1] v, const floating[::1] grad,
                double lr, double beta1, double beta2, double adam_eps, double weight_decay,
                double batch_divisor, double bias_c1, double bias_c2, int decoupled):
    """In-place Adam (decoupled=0) or AdamW (decoupled=1) step on aligned arrays of length n.

    Semantics (scalars cast to the array dtype once, as the reference does):
        g = grad / batch_divisor            (+ wd * w unless decoupled)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        upd = lr * ((m / bias_c1) / (sqrt(v / bias_c2) + adam_eps))
        w = w - (lr * wd) * w               if decoupled (from the old w)
        w = w - upd
    Complexity
        O(n) time, O(1) extra memory; memory bound.
    Determinism / threading
        Elementwise: parallel over chunks of 8192 elements when 2*n >= the threshold.
    """
    cdef Py_ssize_t n = param.shape[0], c, n_chunks
    _check(m.shape[0] == n and v.shape[0] == n and grad.shape[0] == n,
           "param, m, v and grad must align")
    cdef floating lr_ = <floating>lr, b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating eps = <floating>adam_eps, wd = <floating>weight_decay
    cdef floating div = <floating>batch_divisor
    cdef floating bc1 = <floating>bias_c1, bc2 = <floating>bias_c2
    cdef int nt = _n_threads(n)
    cdef floating* wp = &param[0]
    cdef floating* mp = &m[0]
    cdef floating* vp = &v[0]
    cdef const floating* gp = &grad[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=nt):
            _adam_chunk(wp, mp, vp, gp, c * _CHUNK, min((c + 1) * _CHUNK, n), lr_, b1, b2, eps,
                        wd, div, bc1, bc2, decoupled)
