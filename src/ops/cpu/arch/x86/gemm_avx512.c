/* AVX-512 micro-kernel: 8 x 48 tile (24 zmm accumulators, 3 B vectors, 1 broadcast), FMA, fused
 * epilogue (partial sum, bias, SiLU/sigmoid, residual) with masked tails. Compiled when the
 * build targets AVX-512 (-march=native on such a machine). */
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops_cpu.h"

#if defined(HY_HAVE_AVX512)
#include <immintrin.h>

#define MR 8
#define NR 48
#define VL 16

// --- exp / activations ----------------------------------------------------------------
/* exp(x) = 2^n * e^r, n = round(x*log2e), r = x - n*ln2 (Cody-Waite: ln2 = HI + LO, HI exact
 * in 9 bits, FMA), e^r by a degree-6 near-minimax polynomial on |r| <= ln2/2 (error 2e-8),
 * then scalef applies 2^n, denormal results included. */
#define EXP_C6 1.394215971e-03f
#define EXP_C5 8.375967853e-03f
#define EXP_C4 4.166634008e-02f
#define EXP_C3 1.666640490e-01f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)

static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); // below: 0
    x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));   // above: inf
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_C6);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 1 / (1 + exp(-v)). exp(-v) as above with the sign folded into the reduction: s = v + n*ln2
 * = -r, so the odd coefficients flip. v is clamped to [-88.7, 104] (exp(88.7) < FLT_MAX, exp(-104)
 * rounds to 0), which keeps 1 + e finite for the reciprocal: rcp14 (2^-14) + one Newton step
 * (error ~2^-28) instead of a division. */
static inline __m512 sigmoid16(__m512 v) {
    v = _mm512_max_ps(v, _mm512_set1_ps(-88.7f));
    v = _mm512_min_ps(v, _mm512_set1_ps(104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(-LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 s = _mm512_fmadd_ps(n, _mm512_set1_ps(LN2_HI), v);
    s = _mm512_fmadd_ps(n, _mm512_set1_ps(LN2_LO), s);
    __m512 p = _mm512_set1_ps(EXP_C6);
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-EXP_C5));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(EXP_C4));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-EXP_C3));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-1.0f));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.0f));
    const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_scalef_ps(p, n));
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

static inline __m512 act16(__m512 v, int act) {
    switch (act) {
    case HY_ACT_SILU:
        return _mm512_mul_ps(v, sigmoid16(v));
    case HY_ACT_SIGMOID:
        return sigmoid16(v);
    default:
        return v;
    }
}

static inline __mmask16 tail_mask(size_t n) { return (__mmask16)((1u << n) - 1u); } // n <= 16

static void vexp_avx512(const float *x, size_t n, float *y) {
    size_t i = 0;
    for (; i + VL <= n; i += VL) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, exp16(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

static void act_avx512(const float *x, size_t n, int act, float *y) {
    size_t i = 0;
    for (; i + VL <= n; i += VL) _mm512_storeu_ps(y + i, act16(_mm512_loadu_ps(x + i), act));
    if (i < n) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, act16(_mm512_maskz_loadu_ps(k, x + i), act));
    }
}

// --- micro-kernel ---------------------------------------------------------------------

/* Padded-grid tiles: the accumulators go through a stack tile (MR, NR) whose lanes map to y
 * through segments, each a contiguous run of y columns handled with masked vectors. */
static void seg_epilogue(const float *tmp, float *c, ptrdiff_t ldc, int m, const hy__gemm_epi *e) {
    for (int i = 0; i < m; i++) {
        const __m512 bi = _mm512_set1_ps(e->bias[i]);
        for (int s = 0; s < e->nseg; s++) {
            const hy__gemm_seg *sg = &e->segs[s];
            const float *src = tmp + i * NR + sg->j0;
            float *dst = c + i * ldc + sg->col;
            const float *ad = e->add ? e->add + i * ldc + sg->col : NULL;
            const int len = sg->j1 - sg->j0;
            for (int j = 0; j < len; j += VL) {
                const __mmask16 k = tail_mask((size_t)HY_MIN(VL, len - j));
                __m512 r = _mm512_maskz_loadu_ps(k, src + j);
                if (!e->first) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, dst + j));
                if (e->last) {
                    r = act16(_mm512_add_ps(r, bi), e->act);
                    if (ad) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, ad + j));
                }
                _mm512_mask_storeu_ps(dst + j, k, r);
            }
        }
    }
}

/* NV (1..3) vectors of 16 columns; instantiated with constants so acc[][] lives in registers. */
static inline __attribute__((always_inline)) void
ukr_nv(const int NV, const int DIRECT, int kc, const float *a, const float *b,
       const ptrdiff_t *boff, float *c, ptrdiff_t ldc, int m, int n, const hy__gemm_epi *e) {
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = DIRECT ? _mm512_loadu_ps(b + boff[k] + v * VL) : _mm512_load_ps(b + v * VL);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        if (!DIRECT) b += NR;
    }

    if (e->segs) {
        _Alignas(64) float tmp[MR * NR];
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) _mm512_store_ps(tmp + i * NR + v * VL, acc[i][v]);
        seg_epilogue(tmp, c, ldc, m, e);
        return;
    }
    // epilogue: the last vector of each row is masked to n
    const __mmask16 mlast = tail_mask((size_t)(n - (NV - 1) * VL));
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        float *ci = c + i * ldc;
        const float *addi = e->add ? e->add + i * ldc : NULL;
        const __m512 bi = _mm512_set1_ps(e->bias[i]);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const __mmask16 k = v == NV - 1 ? mlast : (__mmask16)0xFFFF;
            __m512 r = acc[i][v];
            if (!e->first) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, ci + v * VL));
            if (e->last) {
                r = act16(_mm512_add_ps(r, bi), e->act);
                if (addi) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, addi + v * VL));
            }
            _mm512_mask_storeu_ps(ci + v * VL, k, r);
        }
    }
}

static void ukr_avx512(int kc, const float *a, const float *b, const ptrdiff_t *boff, float *c,
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

#define WINO_ACT(x, n, act, y) act_avx512(x, n, act, y)
#include "ops/cpu/winograd_impl.h"

const hy__gemm_kernel hy__gemm_avx512 = {
    .isa = HY_CPU_ISA_AVX512,
    .mr = MR,
    .nr = NR,
    .vl = VL,
    .ukr = ukr_avx512,
    .vexp = vexp_avx512,
    .act = act_avx512,
    .wino_in = wino_in,
    .wino_out = wino_out,
};

#else
typedef int hy__gemm_avx512_unused; /* ISO C: no empty translation unit */
#endif
