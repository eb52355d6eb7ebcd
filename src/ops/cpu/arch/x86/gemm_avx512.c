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
/* Same scheme as the generic exp: n = round(x*log2e), r = x - n*ln2 (Cody-Waite, FMA), e^r by
 * degree-7 Taylor (error < 6e-9 on |r| <= ln2/2), then scalef applies 2^n, denormals included. */
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 act16(__m512 v, int act) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case HY_ACT_SILU:
        return _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    case HY_ACT_SIGMOID:
        return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
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
/* NV (1..3) vectors of 16 columns; instantiated with constants so acc[][] lives in registers. */
static inline __attribute__((always_inline)) void ukr_nv(const int NV, int kc, const float *a,
                                                         const float *b, float *c, ptrdiff_t ldc,
                                                         int m, int n, const hy__gemm_epi *e) {
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(b + v * VL);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += NR;
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

static void ukr_avx512(int kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int m, int n,
                       const hy__gemm_epi *e) {
    if (n > 2 * VL)
        ukr_nv(3, kc, a, b, c, ldc, m, n, e);
    else if (n > VL)
        ukr_nv(2, kc, a, b, c, ldc, m, n, e);
    else
        ukr_nv(1, kc, a, b, c, ldc, m, n, e);
}

const hy__gemm_kernel hy__gemm_avx512 = {
    .isa = HY_CPU_ISA_AVX512, .mr = MR, .nr = NR, .vl = VL,
    .ukr = ukr_avx512, .vexp = vexp_avx512, .act = act_avx512,
};

#else
typedef int hy__gemm_avx512_unused; /* ISO C: no empty translation unit */
#endif
