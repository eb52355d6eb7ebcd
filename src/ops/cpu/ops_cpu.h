/* CPU kernels. Every op has a plain-C reference (ops/ref/ref.h, the spec) and a fast path
 * here that is tested against it. Tensors are NCHW float32 with batch 1: a (c, h, w) tensor is c*h*w
 * contiguous floats, so a channel slice [c0, c1) is a pointer offset (C2f split and Concat
 * need no strides). Fast kernels never allocate: weights are packed once at load, scratch
 * is sized at plan time. Threading: fn(ctx, ith, nth) split over output rows/channels. */
#ifndef HY_OPS_CPU_H
#define HY_OPS_CPU_H

#include "core/core.h"
#include "ops/op.h"

/* ---- fast path ---------------------------------------------------------------------- */
/* Packed weights+bias in the layout the GEMM micro-kernel wants (3x3 stride-1 pad-1: the
 * Winograd-transformed weights, 36/9 of the plain size). packed: 64-byte aligned. */
size_t hy__cpu_conv2d_packed_size(const hy__conv2d_desc *d);
void hy__cpu_conv2d_pack(const hy__conv2d_desc *d, const float *wt, const float *bias, void *packed);
/* For a packed blob from an untrusted source (a file): true if its header (magic, ISA compiled
 * in, shape) matches d, size == hy__cpu_conv2d_packed_size(d) and it is 64-byte aligned, so
 * hy__cpu_conv2d can run it. The blob records its ISA; pack writes every byte (deterministic). */
bool hy__cpu_conv2d_packed_check(const hy__conv2d_desc *d, const void *packed, size_t size);
/* Scratch bytes for an (h, w) input with up to nth threads: the zero-padded, stride-phase-split
 * input copy of a k x k or strided conv (the implicit im2col) + a small per-thread panel; for
 * 3x3 stride-1 pad-1 the Winograd tiles (36 * (cin + cout) * ~h*w/16 floats) + per-thread
 * transform buffers. */
size_t hy__cpu_conv2d_scratch_size(const hy__conv2d_desc *d, int h, int w, int nth);
/* Same contract as the reference; packed from hy__cpu_conv2d_pack. tp may be NULL. scratch has
 * hy__cpu_conv2d_scratch_size(d, h, w, nth) bytes with nth >= threads of tp (any alignment).
 * y must not overlap x or add (y is the accumulator when K = cin*kh*kw is blocked). */
void hy__cpu_conv2d(const hy__conv2d_desc *d, const void *packed, const float *x, int h, int w,
                    const float *add, float *y, void *scratch, hy__threadpool *tp);
/* Which path hy__cpu_conv2d takes for this input on nth threads with the kernels of isa:
 * "gemm", "winograd" (three passes over shared V, M) or "winograd-private" (a band of tile
 * rows per item, all three steps in one thread's own buffers). For tests and benchmarks. */
const char *hy__cpu_conv2d_path(const hy__conv2d_desc *d, int h, int w, int nth, int isa);

/* Same contracts as the references (odd k <= 65, y not overlapping x); no allocation. */
void hy__cpu_maxpool(const float *x, int c, int h, int w, int k, float *y, hy__threadpool *tp);
void hy__cpu_upsample2x(const float *x, int c, int h, int w, float *y, hy__threadpool *tp);
/* y[i] = x[i] for n floats (concat placement); threaded for large n. */
void hy__cpu_copy(const float *x, size_t n, float *y, hy__threadpool *tp);

/* Name of the selected fast-kernel ISA ("avx512", "avx2", "generic"). */
const char *hy__cpu_isa(void);

/* ---- ISA variants (tests, benches) -------------------------------------------------- */
/* Every kernel the build flags allow is compiled in (-march=native on an AVX-512 machine gives
 * all three), so each can be tested against the reference on one machine. */
enum hy_cpu_isa { HY_CPU_ISA_GENERIC, HY_CPU_ISA_AVX2, HY_CPU_ISA_AVX512, HY_CPU_ISA_COUNT };
const char *hy__cpu_isa_name(int isa); /* "generic", "avx2", "avx512" */
bool hy__cpu_isa_available(int isa);
int hy__cpu_isa_best(void); /* the one hy__cpu_conv2d_pack picks */
/* hy__cpu_conv2d_pack with an explicit ISA (must be available). The packed buffer records it,
 * so hy__cpu_conv2d then runs that ISA's micro-kernel. packed_size/scratch_size cover every
 * ISA. packed must be 64-byte aligned. */
void hy__cpu_conv2d_pack_isa(const hy__conv2d_desc *d, const float *wt, const float *bias, int isa,
                             void *packed);
/* The conv epilogue's vectorised math for one ISA, over n floats (x and y may be equal):
 * y = exp(x) (own range reduction + polynomial), and y = act(x). */
void hy__cpu_vexp(const float *x, size_t n, float *y, int isa);
void hy__cpu_act(const float *x, size_t n, int act, float *y, int isa);

#endif
