/* AVX2+FMA micro-kernel: 4 x 24 tile (12 ymm accumulators, 3 B vectors, 1 broadcast), fused
 * epilogue with masked tails. Compiled when the build targets AVX2 and FMA. */
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops_cpu.h"

#if defined(HY_HAVE_AVX2)
#include <immintrin.h>

#define MR 4
#define NR 24
#define VL 8

// --- exp / activations ----------------------------------------------------------------
/* The exp of gemm_generic.c / gemm_avx512.c (Cody-Waite reduction, degree-6 polynomial); 2^n is
 * built in the exponent field, split as 2^n1 * 2^n2 so that n in [-150, 129] (denormal results,
 * overflow to inf) stays exact. */
#define EXP_C6 1.394215971e-03f
#define EXP_C5 8.375967853e-03f
#define EXP_C4 4.166634008e-02f
#define EXP_C3 1.666640490e-01f

static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-104.0f));
    x = _mm256_min_ps(x, _mm256_set1_ps(89.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(EXP_C6);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C3));
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

static inline __m256 act8(__m256 v, int act) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case HY_ACT_SILU:
        return _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    case HY_ACT_SIGMOID:
        return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    default:
        return v;
    }
}

static inline __m256i tail_mask(size_t n) { // lanes < n (n <= 8) all-ones
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void vexp_avx2(const float *x, size_t n, float *y) {
    size_t i = 0;
    for (; i + VL <= n; i += VL) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k, exp8(_mm256_maskload_ps(x + i, k)));
    }
}

static void act_avx2(const float *x, size_t n, int act, float *y) {
    size_t i = 0;
    for (; i + VL <= n; i += VL) _mm256_storeu_ps(y + i, act8(_mm256_loadu_ps(x + i), act));
    if (i < n) {
        const __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k, act8(_mm256_maskload_ps(x + i, k), act));
    }
}

// --- micro-kernel ---------------------------------------------------------------------

/* Padded-grid tiles: the accumulators go through a stack tile, then each segment is a
 * contiguous run of y columns handled with masked vectors. */
static void seg_epilogue(const float *tmp, float *c, ptrdiff_t ldc, int m, const hy__gemm_epi *e) {
    for (int i = 0; i < m; i++) {
        const __m256 bi = _mm256_set1_ps(e->bias[i]);
        for (int s = 0; s < e->nseg; s++) {
            const hy__gemm_seg *sg = &e->segs[s];
            const float *src = tmp + i * NR + sg->j0;
            float *dst = c + i * ldc + sg->col;
            const float *ad = e->add ? e->add + i * ldc + sg->col : NULL;
            const int len = sg->j1 - sg->j0;
            for (int j = 0; j < len; j += VL) {
                const __m256i k = tail_mask((size_t)HY_MIN(VL, len - j));
                __m256 r = _mm256_maskload_ps(src + j, k);
                if (!e->first) r = _mm256_add_ps(r, _mm256_maskload_ps(dst + j, k));
                if (e->last) {
                    r = act8(_mm256_add_ps(r, bi), e->act);
                    if (ad) r = _mm256_add_ps(r, _mm256_maskload_ps(ad + j, k));
                }
                _mm256_maskstore_ps(dst + j, k, r);
            }
        }
    }
}

static inline __attribute__((always_inline)) void
ukr_nv(const int NV, const int DIRECT, int kc, const float *a, const float *b,
       const ptrdiff_t *boff, float *c, ptrdiff_t ldc, int m, int n, const hy__gemm_epi *e) {
    __m256 acc[MR][3];
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = DIRECT ? _mm256_loadu_ps(b + boff[k] + v * VL) : _mm256_load_ps(b + v * VL);
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        if (!DIRECT) b += NR;
    }

    if (e->segs) {
        _Alignas(32) float tmp[MR * NR];
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) _mm256_store_ps(tmp + i * NR + v * VL, acc[i][v]);
        seg_epilogue(tmp, c, ldc, m, e);
        return;
    }
    const int nlast = n - (NV - 1) * VL;
    const __m256i mlast = tail_mask((size_t)nlast);
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        float *ci = c + i * ldc;
        const float *addi = e->add ? e->add + i * ldc : NULL;
        const __m256 bi = _mm256_set1_ps(e->bias[i]);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const int full = v < NV - 1 || nlast == VL;
            __m256 r = acc[i][v];
            if (!e->first)
                r = _mm256_add_ps(r, full ? _mm256_loadu_ps(ci + v * VL)
                                          : _mm256_maskload_ps(ci + v * VL, mlast));
            if (e->last) {
                r = act8(_mm256_add_ps(r, bi), e->act);
                if (addi)
                    r = _mm256_add_ps(r, full ? _mm256_loadu_ps(addi + v * VL)
                                              : _mm256_maskload_ps(addi + v * VL, mlast));
            }
            if (full)
                _mm256_storeu_ps(ci + v * VL, r);
            else
                _mm256_maskstore_ps(ci + v * VL, mlast, r);
        }
    }
}

static void ukr_avx2(int kc, const float *a, const float *b, const ptrdiff_t *boff, float *c,
                     ptrdiff_t ldc, int m, int n, const hy__gemm_epi *e) {
    if (boff) {
        if (n > 2 * VL)
            ukr_nv(3, 1, kc, a, b, boff, c, ldc, m, n, e);
        else if (n > VL)
            ukr_nv(2, 1, kc, a, b, boff, c, ldc, m, n, e);
        else
            ukr_nv(1, 1, kc, a, b, boff, c, ldc, m, n, e);
    } else {
        if (n > 2 * VL)
            ukr_nv(3, 0, kc, a, b, NULL, c, ldc, m, n, e);
        else if (n > VL)
            ukr_nv(2, 0, kc, a, b, NULL, c, ldc, m, n, e);
        else
            ukr_nv(1, 0, kc, a, b, NULL, c, ldc, m, n, e);
    }
}

#define WINO_ACT(x, n, act, y) act_avx2(x, n, act, y)
#include "ops/cpu/winograd_impl.h"

const hy__gemm_kernel hy__gemm_avx2 = {
    .isa = HY_CPU_ISA_AVX2,
    .mr = MR,
    .nr = NR,
    .vl = VL,
    .ukr = ukr_avx2,
    .vexp = vexp_avx2,
    .act = act_avx2,
    .wino_in = wino_in,
    .wino_out = wino_out,
};

#else
typedef int hy__gemm_avx2_unused; /* ISO C: no empty translation unit */
#endif
