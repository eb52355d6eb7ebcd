/* Element-type conversions shared by every weights reader (pt, safetensors, onnx) and by the
 * converter: fp16 / bf16 <-> float32, and any numeric hy_dtype -> float32.
 *
 *   float w[n];
 *   if (!hy__to_f32(t->dtype, t->data, t->numel, w)) ...;   // not a number type
 *
 * All inputs are little-endian and may be unaligned. */
#ifndef HY_CORE_DTYPE_H
#define HY_CORE_DTYPE_H

#include "core/core.h"

/* Scalars: exact in the x -> f32 direction, round-to-nearest-even for f32 -> x. */
float hy__f16_to_f32(uint16_t h);
uint16_t hy__f32_to_f16(float f);
float hy__bf16_to_f32(uint16_t h);
uint16_t hy__f32_to_bf16(float f);
/* double -> float, saturating to +-inf out of range (the plain cast is undefined there). */
float hy__f64_to_f32(double d);

/* n values from src into dst: the same results as the scalar functions, written so the
 * compiler vectorises them (loading a .pt converts ~3M values). */
void hy__f16_to_f32_n(const void *src, size_t n, float *dst);
void hy__bf16_to_f32_n(const void *src, size_t n, float *dst);

/* n values of dtype at src as float32 (BOOL: 0 or 1); false for a dtype that is not a number
 * (the caller names the tensor in its error). */
bool hy__to_f32(hy_dtype dtype, const void *src, size_t n, float *dst);

#endif
