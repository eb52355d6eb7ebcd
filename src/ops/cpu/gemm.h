/* Internal interface between the conv2d driver (conv2d.c) and the per-ISA GEMM micro-kernels
 * (gemm_generic.c, arch/x86/gemm_avx2.c, arch/x86/gemm_avx512.c).
 *
 * The conv is the GEMM y(cout, P) = W(cout, K) * B(K, P) with K = cin*kh*kw and P = oh*ow
 * (B is the input itself for 1x1 stride-1 convs, else its implicit im2col). A micro-kernel
 * computes one (m <= MR, n <= NR) tile of y:
 *   a: packed A micro-panel (kc, MR): a[k*MR + i] = W[row i][k]  (rows past cout are 0)
 *   b: packed B micro-panel (kc, NR): b[k*NR + j] = B[k][col j]   (64-byte aligned)
 *   c: tile origin in y, row stride ldc (= P) floats. */
#ifndef HY_OPS_CPU_GEMM_H
#define HY_OPS_CPU_GEMM_H

#include <stddef.h>

typedef struct hy__gemm_epi {
    const float *bias; /* (MR) for this tile's rows, padded with 0 */
    const float *add;  /* tile origin in the residual (row stride ldc), or NULL */
    int act;           /* enum hy_act */
    int first;         /* 1: the tile starts at 0; 0: add the partial sum already in c */
    int last;          /* 1: final K block: + bias, act, + add, then store */
} hy__gemm_epi;

typedef void (*hy__gemm_ukr_fn)(int kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                                int m, int n, const hy__gemm_epi *e);

typedef struct hy__gemm_kernel {
    int isa;     /* enum hy_cpu_isa */
    int mr, nr;  /* register tile: MR rows (cout) x NR columns (output pixels) */
    int vl;      /* SIMD width in floats: column split granularity between threads */
    hy__gemm_ukr_fn ukr;
    void (*vexp)(const float *x, size_t n, float *y);
    void (*act)(const float *x, size_t n, int act, float *y);
} hy__gemm_kernel;

extern const hy__gemm_kernel hy__gemm_generic;
#if defined(__AVX2__) && defined(__FMA__)
#define HY_HAVE_AVX2 1
extern const hy__gemm_kernel hy__gemm_avx2;
#endif
#if defined(__AVX512F__)
#define HY_HAVE_AVX512 1
extern const hy__gemm_kernel hy__gemm_avx512;
#endif

#endif
