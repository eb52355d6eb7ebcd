/* Element-type conversions (see dtype.h). */
#include "core/dtype.h"

#include <float.h>
#include <math.h>
#include <string.h>

// --- scalars ---------------------------------------------------------------------------------

static float f32_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t bits_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

float hy__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        float f = (float)man * 0x1p-24f; /* zero or subnormal: man * 2^-24, exact */
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    return f32_bits(bits);
}

uint16_t hy__f32_to_f16(float f) {
    uint32_t x = bits_f32(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf / NaN (keep NaN quiet and non-zero) */
        return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u | ((ax >> 13) & 0x3ffu) : 0x7c00u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                   /* below 2^-14: subnormal */
        if (ax < 0x33000000u) return sign;                    /* <= 2^-25 rounds to 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float hy__bf16_to_f32(uint16_t h) { return f32_bits((uint32_t)h << 16); }

uint16_t hy__f32_to_bf16(float f) {
    uint32_t x = bits_f32(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float hy__f64_to_f32(double d) {
    if (d > FLT_MAX) return INFINITY;
    if (d < -FLT_MAX) return -INFINITY;
    return (float)d; /* NaN passes through */
}

// --- arrays ----------------------------------------------------------------------------------

/* Branch-free: the exponent is rebiased with an integer add (normal numbers), subnormals are
 * an exact int -> float conversion (no denormal arithmetic, so DAZ/FTZ modes do not matter),
 * inf / NaN keep their payload; the two special cases are selects. */
void hy__f16_to_f32_n(const void *src, size_t n, float *dst) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        const uint32_t em = h & 0x7fffu, sign = (uint32_t)(h & 0x8000u) << 16;
        const uint32_t normal = (em << 13) + 0x38000000u;        /* exponent + (127 - 15) */
        const float subf = (float)(int32_t)em * 0x1p-24f;        /* em < 0x400: exact */
        uint32_t sub;
        memcpy(&sub, &subf, 4);
        const uint32_t special = 0x7f800000u | ((em & 0x3ffu) << 13); /* inf / NaN */
        const uint32_t is_sub = 0u - (uint32_t)(em < 0x0400u),
                       is_special = 0u - (uint32_t)(em >= 0x7c00u);
        uint32_t r = (normal & ~is_sub) | (sub & is_sub); /* masks, not branches: vectorises */
        r = (r & ~is_special) | (special & is_special);
        r |= sign;
        memcpy(dst + i, &r, 4);
    }
}

void hy__bf16_to_f32_n(const void *src, size_t n, float *dst) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        const uint32_t r = (uint32_t)h << 16;
        memcpy(dst + i, &r, 4);
    }
}

/* One loop per dtype (the switch outside), so each loop vectorises; src may be unaligned. */
#define HY_CONVERT_LOOP(T)                                                                        \
    for (size_t i = 0; i < n; i++) {                                                              \
        T v;                                                                                      \
        memcpy(&v, p + sizeof(T) * i, sizeof(T));                                                 \
        dst[i] = (float)v;                                                                        \
    }

bool hy__to_f32(hy_dtype dtype, const void *src, size_t n, float *dst) {
    const uint8_t *p = src;
    switch (dtype) {
    case HY_DTYPE_F32: memcpy(dst, p, n * sizeof(float)); break;
    case HY_DTYPE_F16: hy__f16_to_f32_n(p, n, dst); break;
    case HY_DTYPE_BF16: hy__bf16_to_f32_n(p, n, dst); break;
    case HY_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + sizeof v * i, sizeof v);
            dst[i] = hy__f64_to_f32(v);
        }
        break;
    case HY_DTYPE_I64: HY_CONVERT_LOOP(int64_t) break;
    case HY_DTYPE_I32: HY_CONVERT_LOOP(int32_t) break;
    case HY_DTYPE_U8: HY_CONVERT_LOOP(uint8_t) break;
    case HY_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = p[i] != 0;
        break;
    case HY_DTYPE_I8: HY_CONVERT_LOOP(int8_t) break;
    default: return false;
    }
    return true;
}
#undef HY_CONVERT_LOOP

