/* The per-row dot products of sddmm (and backward_fused's dW): one fixed order of additions
   that no instruction-set variant changes.

   dst[k] = <x[:B], d[:B]> with d = dy[idx[k], :], k in [start, end), p_b = x[b] * d[b]
   (each product rounded once). With L = 32 bytes of lanes (8 floats, 4 doubles) and
   Q = L / 2 = 16 bytes (4 floats, 2 doubles):
     1. nb = B - B % L. Lane l (0 <= l < L) = 0 + p_l + p_{l+L} + p_{l+2L} + ... below nb,
        added in ascending b.
     2. q_l = lane l + lane l + Q (l < Q).
     3. If B - nb >= Q: q_l = q_l + p_{nb+l} and b1 = nb + Q, else b1 = nb.
     4. s = (q_0 + q_2) + (q_1 + q_3) for floats, q_0 + q_1 for doubles.
     5. s = s + p_b for b = b1, ..., B - 1, one at a time.
   When B is below Q, steps 1-4 give +0 and are skipped: s = 0 + p_0 + p_1 + ...
   Every variant evaluates exactly this: each + and * is applied lane by lane through GCC/
   Clang vector types (L lanes are one AVX2/AVX-512 ymm register or two SSE2 registers) and
   the build has no -fassociative-math and no FMA contraction, so the compiler can neither
   reorder nor fuse them. tests/test_isa_variants.py emulates this order in NumPy and compares
   every variant with it bit for bit; compilers other than GCC/Clang get the same order with
   plain arrays (the #else branch; SMLP_DOT_PORTABLE forces it).

   Why: the first version let GCC vectorise plain dot-product loops under -fassociative-math;
   each variant then summed in its own vector width, and whole training runs differed in the
   last bits between the baseline, AVX2 and AVX-512 builds. Lanes of 64 bytes (one zmm) were
   tried too: backward_fused then ran 10-25 % slower in the SSE2 and AVX2 builds at B = 32
   (n = 30 000, float32), with 32 bytes it is as fast as before in all three.

   Four entries per pass share the x loads (4 x NV independent accumulator vectors) and finish
   together (steps 4-5 as whole-vector adds across the four entries). Each gathered dy row is
   prefetched pf entries ahead. Stamped out for float/double x int/int64 indices. */

#ifndef SMLP_DOT_H
#define SMLP_DOT_H

/* Reassociation would let the compiler reorder the sums below (checked: a baseline build with
   -fassociative-math differs from this order) */
#if defined(__ASSOCIATIVE_MATH__) || defined(__FAST_MATH__)
#error "sparsemlp's kernels must be compiled without -ffast-math / -fassociative-math (setup.py passes -fno-fast-math)"
#endif

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define SMLP_DOT_PF(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#define SMLP_DOT_PF(p) ((void)0)
#endif

#define SMLP_DOT_PF_ROW(p, nbytes)                                                        \
    do {                                                                                  \
        const char *c_ = (const char *)(p);                                               \
        Py_ssize_t o_;                                                                    \
        for (o_ = 0; o_ < (nbytes); o_ += 64) SMLP_DOT_PF(c_ + o_);                       \
    } while (0)

#if (defined(__GNUC__) || defined(__clang__)) && !defined(SMLP_DOT_PORTABLE)

typedef float smlp_f32x8 __attribute__((vector_size(32)));
typedef float smlp_f32x4 __attribute__((vector_size(16)));
typedef double smlp_f64x4 __attribute__((vector_size(32)));
typedef double smlp_f64x2 __attribute__((vector_size(16)));

/* Step 2 on one 32-byte vector (element-wise constructors: GCC and Clang turn them into
   register extracts, where a memcpy of a half went through the stack) */
static inline smlp_f32x4 smlp_dot_fold_f32(smlp_f32x8 a) {
    return (smlp_f32x4){a[0], a[1], a[2], a[3]} + (smlp_f32x4){a[4], a[5], a[6], a[7]};
}
static inline smlp_f64x2 smlp_dot_fold_f64(smlp_f64x4 a) {
    return (smlp_f64x2){a[0], a[1]} + (smlp_f64x2){a[2], a[3]};
}

/* The L lanes: one 32-byte vector where the target has them (AVX and later), else two
   16-byte vectors (lanes 0..Q-1 and Q..L-1, so step 2 is their sum) */
#if defined(__AVX__)
#define SMLP_DOT_NV 1
#define SMLP_DOT_LANES_F32 smlp_f32x8
#define SMLP_DOT_LANES_F64 smlp_f64x4
#define SMLP_DOT_Q_F32(a) smlp_dot_fold_f32((a)[0])
#define SMLP_DOT_Q_F64(a) smlp_dot_fold_f64((a)[0])
#else
#define SMLP_DOT_NV 2
#define SMLP_DOT_LANES_F32 smlp_f32x4
#define SMLP_DOT_LANES_F64 smlp_f64x2
#define SMLP_DOT_Q_F32(a) ((a)[0] + (a)[1])
#define SMLP_DOT_Q_F64(a) ((a)[0] + (a)[1])
#endif

/* Steps 4-5 for four entries at once, then stored: dst[j] = (q_j[0] + q_j[2]) + (q_j[1] +
   q_j[3]) for floats, q_j[0] + q_j[1] for doubles, then + x[b] * d_j[b] for b = b1, ...,
   B - 1 (the same additions as one entry at a time, arranged as whole-vector adds across
   the entries). Four scalar stores: one 16-byte store made backward_fused slower. */
static inline void smlp_dot_final4_f32(float *dst, smlp_f32x4 q0, smlp_f32x4 q1,
                                       smlp_f32x4 q2, smlp_f32x4 q3, const float *x,
                                       const float *d0, const float *d1, const float *d2,
                                       const float *d3, Py_ssize_t b1, Py_ssize_t B) {
    Py_ssize_t b;
    smlp_f32x4 s01 = (smlp_f32x4){q0[0], q0[1], q1[0], q1[1]}
                     + (smlp_f32x4){q0[2], q0[3], q1[2], q1[3]};
    smlp_f32x4 s23 = (smlp_f32x4){q2[0], q2[1], q3[0], q3[1]}
                     + (smlp_f32x4){q2[2], q2[3], q3[2], q3[3]};
    smlp_f32x4 r = (smlp_f32x4){s01[0], s01[2], s23[0], s23[2]}
                   + (smlp_f32x4){s01[1], s01[3], s23[1], s23[3]};
    for (b = b1; b < B; b++)
        r = r + (smlp_f32x4){x[b], x[b], x[b], x[b]} * (smlp_f32x4){d0[b], d1[b], d2[b], d3[b]};
    dst[0] = r[0];
    dst[1] = r[1];
    dst[2] = r[2];
    dst[3] = r[3];
}
static inline void smlp_dot_final4_f64(double *dst, smlp_f64x2 q0, smlp_f64x2 q1,
                                       smlp_f64x2 q2, smlp_f64x2 q3, const double *x,
                                       const double *d0, const double *d1, const double *d2,
                                       const double *d3, Py_ssize_t b1, Py_ssize_t B) {
    Py_ssize_t b;
    smlp_f64x2 r01 = (smlp_f64x2){q0[0], q1[0]} + (smlp_f64x2){q0[1], q1[1]};
    smlp_f64x2 r23 = (smlp_f64x2){q2[0], q3[0]} + (smlp_f64x2){q2[1], q3[1]};
    for (b = b1; b < B; b++) {
        r01 = r01 + (smlp_f64x2){x[b], x[b]} * (smlp_f64x2){d0[b], d1[b]};
        r23 = r23 + (smlp_f64x2){x[b], x[b]} * (smlp_f64x2){d2[b], d3[b]};
    }
    dst[0] = r01[0];
    dst[1] = r01[1];
    dst[2] = r23[0];
    dst[3] = r23[1];
}
static inline float smlp_dot_final1_f32(smlp_f32x4 q) { return (q[0] + q[2]) + (q[1] + q[3]); }
static inline double smlp_dot_final1_f64(smlp_f64x2 q) { return q[0] + q[1]; }

/* Step 3 on one entry's q (16-byte vectors QT), with nb and b1 of the row function */
#define SMLP_DOT_QTAIL(QT, q, d)                                                          \
    do {                                                                                  \
        QT x_, y_;                                                                        \
        if (b1 > nb) {                                                                    \
            memcpy(&x_, x + nb, sizeof x_);                                               \
            memcpy(&y_, (d) + nb, sizeof y_);                                             \
            (q) = (q) + x_ * y_;                                                          \
        }                                                                                 \
    } while (0)

/* One row's entries when B is at least Q (SMLP_DOT_SEQ below handles shorter rows) */
#define SMLP_DOT_VEC(T, SFX, VT, QT, QFOLD, IT, NAME)                                     \
static inline void NAME(T *dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end,          \
                        Py_ssize_t lim, const IT *idx, const T *x, const T *dy,          \
                        Py_ssize_t pf) {                                                  \
    enum { VW = (int)(sizeof(VT) / sizeof(T)), L = 32 / (int)sizeof(T), Q = L / 2 };      \
    Py_ssize_t k = start, b, nb = B - B % L, nbytes = B * (Py_ssize_t)sizeof(T);          \
    Py_ssize_t b1 = nb + (B - nb >= Q ? Q : 0);                                           \
    int v;                                                                                \
    VT a0[SMLP_DOT_NV], a1[SMLP_DOT_NV], a2[SMLP_DOT_NV], a3[SMLP_DOT_NV], xv, dv;        \
    QT q0, q1, q2, q3;                                                                    \
    while (k + 4 <= end) {                                                                \
        const T *d0 = dy + (Py_ssize_t)idx[k] * B, *d1 = dy + (Py_ssize_t)idx[k + 1] * B; \
        const T *d2 = dy + (Py_ssize_t)idx[k + 2] * B;                                    \
        const T *d3 = dy + (Py_ssize_t)idx[k + 3] * B;                                    \
        if (k + pf + 3 < lim) {                                                           \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf] * B, nbytes);                    \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 1] * B, nbytes);                \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 2] * B, nbytes);                \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 3] * B, nbytes);                \
        }                                                                                 \
        for (v = 0; v < SMLP_DOT_NV; v++) {                                               \
            a0[v] = (VT){0}; a1[v] = (VT){0}; a2[v] = (VT){0}; a3[v] = (VT){0};           \
        }                                                                                 \
        for (b = 0; b < nb; b += L) {                                                     \
            for (v = 0; v < SMLP_DOT_NV; v++) {                                           \
                memcpy(&xv, x + b + v * VW, sizeof xv);                                   \
                memcpy(&dv, d0 + b + v * VW, sizeof dv);                                  \
                a0[v] = a0[v] + xv * dv;                                                  \
                memcpy(&dv, d1 + b + v * VW, sizeof dv);                                  \
                a1[v] = a1[v] + xv * dv;                                                  \
                memcpy(&dv, d2 + b + v * VW, sizeof dv);                                  \
                a2[v] = a2[v] + xv * dv;                                                  \
                memcpy(&dv, d3 + b + v * VW, sizeof dv);                                  \
                a3[v] = a3[v] + xv * dv;                                                  \
            }                                                                             \
        }                                                                                 \
        q0 = QFOLD(a0); q1 = QFOLD(a1); q2 = QFOLD(a2); q3 = QFOLD(a3);                   \
        SMLP_DOT_QTAIL(QT, q0, d0); SMLP_DOT_QTAIL(QT, q1, d1);                           \
        SMLP_DOT_QTAIL(QT, q2, d2); SMLP_DOT_QTAIL(QT, q3, d3);                           \
        smlp_dot_final4_##SFX(dst + k, q0, q1, q2, q3, x, d0, d1, d2, d3, b1, B);         \
        k += 4;                                                                           \
    }                                                                                     \
    while (k < end) {                                                                     \
        const T *d0 = dy + (Py_ssize_t)idx[k] * B;                                        \
        T s0;                                                                             \
        if (k + pf < lim) SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf] * B, nbytes);      \
        for (v = 0; v < SMLP_DOT_NV; v++) a0[v] = (VT){0};                                \
        for (b = 0; b < nb; b += L) {                                                     \
            for (v = 0; v < SMLP_DOT_NV; v++) {                                           \
                memcpy(&xv, x + b + v * VW, sizeof xv);                                   \
                memcpy(&dv, d0 + b + v * VW, sizeof dv);                                  \
                a0[v] = a0[v] + xv * dv;                                                  \
            }                                                                             \
        }                                                                                 \
        q0 = QFOLD(a0);                                                                   \
        SMLP_DOT_QTAIL(QT, q0, d0);                                                       \
        s0 = smlp_dot_final1_##SFX(q0);                                                   \
        for (b = b1; b < B; b++) s0 = s0 + x[b] * d0[b];                                  \
        dst[k] = s0;                                                                      \
        k += 1;                                                                           \
    }                                                                                     \
}

/* B below Q: every term one at a time, starting from 0 */
#define SMLP_DOT_SEQ(T, IT, NAME)                                                         \
static inline void NAME(T *dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end,          \
                        Py_ssize_t lim, const IT *idx, const T *x, const T *dy,          \
                        Py_ssize_t pf) {                                                  \
    Py_ssize_t k = start, b, nbytes = B * (Py_ssize_t)sizeof(T);                          \
    while (k + 4 <= end) {                                                                \
        const T *d0 = dy + (Py_ssize_t)idx[k] * B, *d1 = dy + (Py_ssize_t)idx[k + 1] * B; \
        const T *d2 = dy + (Py_ssize_t)idx[k + 2] * B;                                    \
        const T *d3 = dy + (Py_ssize_t)idx[k + 3] * B;                                    \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0, xb;                                             \
        if (k + pf + 3 < lim) {                                                           \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf] * B, nbytes);                    \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 1] * B, nbytes);                \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 2] * B, nbytes);                \
            SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf + 3] * B, nbytes);                \
        }                                                                                 \
        for (b = 0; b < B; b++) {                                                         \
            xb = x[b];                                                                    \
            s0 = s0 + xb * d0[b]; s1 = s1 + xb * d1[b];                                   \
            s2 = s2 + xb * d2[b]; s3 = s3 + xb * d3[b];                                   \
        }                                                                                 \
        dst[k] = s0; dst[k + 1] = s1; dst[k + 2] = s2; dst[k + 3] = s3;                   \
        k += 4;                                                                           \
    }                                                                                     \
    while (k < end) {                                                                     \
        const T *d0 = dy + (Py_ssize_t)idx[k] * B;                                        \
        T s0 = 0;                                                                         \
        if (k + pf < lim) SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf] * B, nbytes);      \
        for (b = 0; b < B; b++) s0 = s0 + x[b] * d0[b];                                   \
        dst[k] = s0;                                                                      \
        k += 1;                                                                           \
    }                                                                                     \
}

#define SMLP_DOT_DEF(T, SFX, VT, QT, QFOLD, IT, NAME)                                     \
SMLP_DOT_VEC(T, SFX, VT, QT, QFOLD, IT, NAME##_vec)                                       \
SMLP_DOT_SEQ(T, IT, NAME##_seq)                                                           \
static inline void NAME(T *dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end,          \
                        Py_ssize_t lim, const IT *idx, const T *x, const T *dy,          \
                        Py_ssize_t pf) {                                                  \
    if (B * (Py_ssize_t)sizeof(T) >= 16) NAME##_vec(dst, B, start, end, lim, idx, x, dy, pf); \
    else NAME##_seq(dst, B, start, end, lim, idx, x, dy, pf);                             \
}

SMLP_DOT_DEF(float, f32, SMLP_DOT_LANES_F32, smlp_f32x4, SMLP_DOT_Q_F32, int,
             smlp_sddmm_row_f32_i32)
SMLP_DOT_DEF(float, f32, SMLP_DOT_LANES_F32, smlp_f32x4, SMLP_DOT_Q_F32, long long,
             smlp_sddmm_row_f32_i64)
SMLP_DOT_DEF(double, f64, SMLP_DOT_LANES_F64, smlp_f64x2, SMLP_DOT_Q_F64, int,
             smlp_sddmm_row_f64_i32)
SMLP_DOT_DEF(double, f64, SMLP_DOT_LANES_F64, smlp_f64x2, SMLP_DOT_Q_F64, long long,
             smlp_sddmm_row_f64_i64)

#else /* other compilers: the same lanes and order with plain arrays */

#define SMLP_DOT_DEF(T, IT, NAME)                                                         \
static void NAME(T *dst, Py_ssize_t B, Py_ssize_t start, Py_ssize_t end, Py_ssize_t lim,  \
                 const IT *idx, const T *x, const T *dy, Py_ssize_t pf) {                 \
    enum { L = 32 / (int)sizeof(T), Q = L / 2 };                                          \
    Py_ssize_t k, b, nb = B - B % L, nbytes = B * (Py_ssize_t)sizeof(T);                  \
    Py_ssize_t b1 = B >= Q ? nb + (B - nb >= Q ? Q : 0) : 0;                              \
    int l, h;                                                                             \
    T a[L], s;                                                                            \
    for (k = start; k < end; k++) {                                                       \
        const T *d = dy + (Py_ssize_t)idx[k] * B;                                         \
        if (k + pf < lim) SMLP_DOT_PF_ROW(dy + (Py_ssize_t)idx[k + pf] * B, nbytes);      \
        s = 0;                                                                            \
        if (B >= Q) {                                                                     \
            for (l = 0; l < L; l++) a[l] = 0;                                             \
            for (b = 0; b < nb; b += L)                                                   \
                for (l = 0; l < L; l++) a[l] = a[l] + x[b + l] * d[b + l];                \
            for (l = 0; l < Q; l++) a[l] = a[l] + a[l + Q];                               \
            if (b1 > nb)                                                                  \
                for (l = 0; l < Q; l++) a[l] = a[l] + x[nb + l] * d[nb + l];              \
            for (h = Q / 2; h >= 1; h /= 2)                                               \
                for (l = 0; l < h; l++) a[l] = a[l] + a[l + h];                           \
            s = a[0];                                                                     \
        }                                                                                 \
        for (b = b1; b < B; b++) s = s + x[b] * d[b];                                     \
        dst[k] = s;                                                                       \
    }                                                                                     \
}

SMLP_DOT_DEF(float, int, smlp_sddmm_row_f32_i32)
SMLP_DOT_DEF(float, long long, smlp_sddmm_row_f32_i64)
SMLP_DOT_DEF(double, int, smlp_sddmm_row_f64_i32)
SMLP_DOT_DEF(double, long long, smlp_sddmm_row_f64_i64)

#endif
#endif /* SMLP_DOT_H */
