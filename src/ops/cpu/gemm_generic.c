/* Portable C micro-kernel (4 x 16 tile) and scalar exp: the fallback on any CPU, and tested
 * on every build against the reference. */
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops_cpu.h"

#include <stdint.h>

#define GMR 4
#define GNR 16

// --- exp: Cody-Waite range reduction + degree-6 polynomial ------------------------------
/* exp(x) = 2^n * e^r, n = round(x / ln2), |r| <= ln2/2; ln2 = HI + LO with HI exact in 9 bits
 * so n*HI is exact. e^r by a near-minimax degree-6 polynomial (Chebyshev fit, error 2e-8);
 * 2^n is applied as 2^n1 * 2^n2 so results down to the smallest denormal (x ~ -103.9) and up
 * to overflow stay correct. The SIMD kernels use the same constants. */
#define EXP_LO (-104.0f) /* exp below rounds to 0 */
#define EXP_HI 89.0f     /* exp above is +inf */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_C6 1.394215971e-03f
#define EXP_C5 8.375967853e-03f
#define EXP_C4 4.166634008e-02f
#define EXP_C3 1.666640490e-01f
#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */

static float pow2i(int n) { /* 2^n for n in [-126, 127] */
    union {
        uint32_t u;
        float f;
    } v = { (uint32_t)(n + 127) << 23 };
    return v.f;
}

static inline float exp_scalar(float x) {
    if (!(x > EXP_LO)) x = EXP_LO; // also maps NaN somewhere harmless
    if (x > EXP_HI) x = EXP_HI;
    const float n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = EXP_C6;
    p = p * r + EXP_C5;
    p = p * r + EXP_C4;
    p = p * r + EXP_C3;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int ni = (int)n, n1 = ni / 2, n2 = ni - n1; // both in [-75, 65]
    return p * pow2i(n1) * pow2i(n2);
}

static inline float act_scalar(float v, int act) {
    switch (act) {
    case HY_ACT_SILU:
        return v / (1.0f + exp_scalar(-v));
    case HY_ACT_SIGMOID:
        return 1.0f / (1.0f + exp_scalar(-v));
    default:
        return v;
    }
}

static void vexp_generic(const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = exp_scalar(x[i]);
}

static void act_generic(const float *x, size_t n, int act, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = act_scalar(x[i], act);
}

// --- micro-kernel ---------------------------------------------------------------------

static inline float epi_scalar(float v, float *ci, const float *ai, float bias,
                               const hy__gemm_epi *e) {
    if (!e->first) v += *ci;
    if (e->last) {
        v = act_scalar(v + bias, e->act);
        if (ai) v += *ai;
    }
    return v;
}

static void ukr_generic(int kc, const float *a, const float *b, const ptrdiff_t *boff, float *c,
                        ptrdiff_t ldc, int m, int n, const hy__gemm_epi *e) {
    float acc[GMR][GNR] = { { 0 } }; // (MR, NR)
    for (int k = 0; k < kc; k++, a += GMR) {
        const float *bk = boff ? b + boff[k] : b + (size_t)k * GNR;
        for (int i = 0; i < GMR; i++)
            for (int j = 0; j < GNR; j++) acc[i][j] += a[i] * bk[j];
    }
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const float *ai = e->add ? e->add + i * ldc : NULL;
        if (!e->segs) {
            for (int j = 0; j < n; j++)
                ci[j] = epi_scalar(acc[i][j], ci + j, ai ? ai + j : NULL, e->bias[i], e);
            continue;
        }
        for (int s = 0; s < e->nseg; s++) {
            const hy__gemm_seg *sg = &e->segs[s];
            float *cs = ci + sg->col; // lane j0
            const float *as = ai ? ai + sg->col : NULL;
            for (int j = 0; j < sg->j1 - sg->j0; j++)
                cs[j] = epi_scalar(acc[i][sg->j0 + j], cs + j, as ? as + j : NULL, e->bias[i], e);
        }
    }
}

#define WINO_ACT(x, n, act, y) act_generic(x, n, act, y)
#include "ops/cpu/winograd_impl.h"

const hy__gemm_kernel hy__gemm_generic = {
    .isa = HY_CPU_ISA_GENERIC,
    .mr = GMR,
    .nr = GNR,
    .vl = GNR,
    .ukr = ukr_generic,
    .vexp = vexp_generic,
    .act = act_generic,
    .wino_in = wino_in,
    .wino_out = wino_out,
};
