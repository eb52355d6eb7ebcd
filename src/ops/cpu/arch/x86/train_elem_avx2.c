/* AVX2+FMA row kernels of the non-conv training ops (train_elem.h): BatchNorm statistics and
 * gradient sums in double (4 x 4 double lanes, reduced in a fixed order), SiLU with the exp of
 * gemm_avx2.c and a Newton-refined reciprocal, masked tails; max-pool from train_elem_pool.h
 * compiled for AVX2. Also run on AVX-512 machines. */
#include "ops/cpu/train_elem.h"

#ifdef HY_HAVE_AVX2
#include <immintrin.h>

#include "ops/op.h"

#define VL 8

/* exp(x) as gemm_avx2.c (Cody-Waite, degree-6 polynomial, 2^n split in two factors); the
 * input is clamped to [-104, 87]: 1 + exp stays finite for the reciprocal below. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-104.0f));
    x = _mm256_min_ps(x, _mm256_set1_ps(87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.394215971e-03f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.375967853e-03f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166634008e-02f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666640490e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* 1 / (1 + exp(-u)): reciprocal estimate + one Newton step (about 1 ulp; d is finite). */
static inline __m256 sigmoid8(__m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 d = _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), u)));
    const __m256 r = _mm256_rcp_ps(d);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
}

static inline __m256i tail_mask(size_t n) { // lanes < n (n < 8) all-ones
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline double hsum4(__m256d v) {
    const __m128d a = _mm256_castpd256_pd128(v), b = _mm256_extractf128_pd(v, 1);
    const __m128d s = _mm_add_pd(a, b);
    return _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
}

static void a_stats(const float *z, size_t n, float k, double *s) {
    const __m256d kd = _mm256_set1_pd((double)k);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, q0 = a0, q1 = a0, q2 = a0, q3 = a0;
    size_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        const __m256 v0 = _mm256_loadu_ps(z + i), v1 = _mm256_loadu_ps(z + i + VL);
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v0)), kd);
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1)), kd);
        const __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v1)), kd);
        const __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1)), kd);
        a0 = _mm256_add_pd(a0, d0);
        a1 = _mm256_add_pd(a1, d1);
        a2 = _mm256_add_pd(a2, d2);
        a3 = _mm256_add_pd(a3, d3);
        q0 = _mm256_fmadd_pd(d0, d0, q0);
        q1 = _mm256_fmadd_pd(d1, d1, q1);
        q2 = _mm256_fmadd_pd(d2, d2, q2);
        q3 = _mm256_fmadd_pd(d3, d3, q3);
    }
    double ta = 0, tq = 0;
    for (; i < n; i++) {
        const double d = (double)z[i] - k;
        ta += d;
        tq += d * d;
    }
    s[0] += hsum4(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3))) + ta;
    s[1] += hsum4(_mm256_add_pd(_mm256_add_pd(q0, q1), _mm256_add_pd(q2, q3))) + tq;
}

static inline __m256 fwd8(__m256 zv, __m256 m, __m256 sc, __m256 sh, int act) {
    const __m256 u = _mm256_fmadd_ps(_mm256_sub_ps(zv, m), sc, sh);
    return act == HY_ACT_SILU ? _mm256_mul_ps(u, sigmoid8(u)) : u;
}

static void a_fwd(const float *z, size_t n, float m, float sc, float sh, int act, const float *add, float *y) {
    const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(sc), vh = _mm256_set1_ps(sh);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        __m256 v = fwd8(_mm256_loadu_ps(z + i), vm, vs, vh, act);
        if (add) v = _mm256_add_ps(v, _mm256_loadu_ps(add + i));
        _mm256_storeu_ps(y + i, v);
    }
    if (i < n) {
        const __m256i k = tail_mask(n - i);
        __m256 v = fwd8(_mm256_maskload_ps(z + i, k), vm, vs, vh, act);
        if (add) v = _mm256_add_ps(v, _mm256_maskload_ps(add + i, k));
        _mm256_maskstore_ps(y + i, k, v);
    }
}

/* du = dy silu'(u) = dy s (1 + u (1 - s)), u = (z - mean) sc + sh */
static inline __m256 du8(__m256 zv, __m256 dyv, __m256 mv, __m256 sc, __m256 sh, int act) {
    if (act != HY_ACT_SILU) return dyv;
    const __m256 u = _mm256_fmadd_ps(_mm256_sub_ps(zv, mv), sc, sh), s = sigmoid8(u), one = _mm256_set1_ps(1.0f);
    return _mm256_mul_ps(dyv, _mm256_mul_ps(s, _mm256_fmadd_ps(u, _mm256_sub_ps(one, s), one)));
}

static void a_bwd_du(const float *z, const float *dy, size_t n, float mean, float sc, float sh, int act, float *du,
                     double *s) {
    const __m256 vmf = _mm256_set1_ps(mean), vs = _mm256_set1_ps(sc), vh = _mm256_set1_ps(sh);
    const __m256d md = _mm256_set1_pd((double)mean);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, q0 = a0, q1 = a0;
    size_t i = 0;
    for (; i < n; i += VL) {
        __m256 zv, g;
        if (i + VL <= n) {
            zv = _mm256_loadu_ps(z + i);
            g = du8(zv, _mm256_loadu_ps(dy + i), vmf, vs, vh, act);
            _mm256_storeu_ps(du + i, g);
        } else { // tail: zero lanes add nothing
            const __m256i m = tail_mask(n - i);
            zv = _mm256_maskload_ps(z + i, m);
            g = _mm256_and_ps(du8(zv, _mm256_maskload_ps(dy + i, m), vmf, vs, vh, act), _mm256_castsi256_ps(m));
            _mm256_maskstore_ps(du + i, m, g);
            zv = _mm256_blendv_ps(_mm256_set1_ps(mean), zv, _mm256_castsi256_ps(m));
        }
        const __m256d g0 = _mm256_cvtps_pd(_mm256_castps256_ps128(g)), g1 = _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1));
        const __m256d x0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(zv)), md);
        const __m256d x1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(zv, 1)), md);
        a0 = _mm256_add_pd(a0, g0);
        a1 = _mm256_add_pd(a1, g1);
        q0 = _mm256_fmadd_pd(g0, x0, q0);
        q1 = _mm256_fmadd_pd(g1, x1, q1);
    }
    s[0] += hsum4(_mm256_add_pd(a0, a1));
    s[1] += hsum4(_mm256_add_pd(q0, q1));
}

static void a_bwd_dz(const float *z, float *dz, size_t n, float k0, float mdu, float mean, float kx) {
    const __m256 vk = _mm256_set1_ps(k0), vm = _mm256_set1_ps(mdu), vmean = _mm256_set1_ps(mean),
                 vx = _mm256_set1_ps(kx);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(z + i), vmean);
        const __m256 a = _mm256_mul_ps(vk, _mm256_sub_ps(_mm256_loadu_ps(dz + i), vm));
        _mm256_storeu_ps(dz + i, _mm256_fnmadd_ps(t, vx, a));
    }
    for (; i < n; i++) dz[i] = k0 * (dz[i] - mdu) - (z[i] - mean) * kx;
}

#define TE_POOL_FWD a_pool_fwd
#define TE_POOL_BWD a_pool_bwd
#include "ops/cpu/train_elem_pool.h"

const hy__telem_kernel hy__telem_avx2 = { a_stats, a_fwd, a_bwd_du, a_bwd_dz, a_pool_fwd, a_pool_bwd };

#endif
