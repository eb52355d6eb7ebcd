/* Internal interface between the conv2d driver (conv2d.c) and the per-ISA GEMM micro-kernels
 * (gemm_generic.c, arch/x86/gemm_avx2.c, arch/x86/gemm_avx512.c).
 *
 * The conv is the GEMM y(cout, P) = W(cout, K) * B(K, P) with K = cin*kh*kw and P = oh*ow
 * (B is the input itself for 1x1 stride-1 convs, else its implicit im2col). A micro-kernel
 * computes one (m <= MR, n <= NR) tile of y:
 *   a: packed A micro-panel (kc, MR): a[k*MR + i] = W[row i][k]  (rows past cout are 0)
 *   b: packed B micro-panel (kc, NR): b[k*NR + j] = B[k][col j]   (64-byte aligned), or
 *      B read in place through per-row offsets (boff)
 *   c: tile origin in y, row stride ldc (= P) floats. */
#ifndef HY_OPS_CPU_GEMM_H
#define HY_OPS_CPU_GEMM_H

#include <stddef.h>

/* Lanes [j0, j1) of a tile go to columns col + (j - j0) of y (and of add). */
typedef struct hy__gemm_seg {
    int j0, j1;
    ptrdiff_t col;
} hy__gemm_seg;

typedef struct hy__gemm_epi {
    const float *bias; /* (MR) for this tile's rows, padded with 0 */
    const float *add;  /* residual at the same offset as c (row stride ldc), or NULL */
    int act;           /* enum hy_act */
    int first;         /* 1: the tile starts at 0; 0: add the partial sum already in y */
    int last;          /* 1: final K block: + bias, act, + add, then store */
    /* NULL: lanes [0, n) are columns [0, n) from c. Else c is column 0 of the tile's first row
     * and the nseg segments say where lanes go (the padded-grid GEMM skips pad columns). */
    const hy__gemm_seg *segs;
    int nseg;
} hy__gemm_epi;

/* boff NULL: b is a packed micro-panel. Else B row k of the tile is b + boff[k] (unaligned, any
 * layout; NV*VL floats are read from each row, so the source needs that much slack). */
typedef void (*hy__gemm_ukr_fn)(int kc, const float *a, const float *b, const ptrdiff_t *boff,
                                float *c, ptrdiff_t ldc, int m, int n, const hy__gemm_epi *e);

typedef struct hy__gemm_kernel {
    int isa;    /* enum hy_cpu_isa */
    int mr, nr; /* register tile: MR rows (cout) x NR columns (output pixels) */
    int vl;     /* SIMD width in floats: column split granularity between threads */
    hy__gemm_ukr_fn ukr;
    void (*vexp)(const float *x, size_t n, float *y);
    void (*act)(const float *x, size_t n, int act, float *y);
    /* Winograd F(4x4, 3x3) transforms of one channel over tile rows [ty0, ty1)
     * (winograd_impl.h says the layout). */
    void (*wino_in)(const float *x, int h, int w, int ty0, int ty1, int twp, float *tmp,
                    float *v, ptrdiff_t vs);
    void (*wino_out)(const float *m, ptrdiff_t ms, int ty0, int ty1, int twp, float bias,
                     int act, const float *add, float *y, int oh, int ow, float *tmp);
} hy__gemm_kernel;

extern const hy__gemm_kernel hy__gemm_generic;
/* x86-64 builds compile the AVX2 and AVX-512 kernels with their own target flags (CMake
 * sets HY_X86_DISPATCH) and pick one at run time by CPUID; other builds use what the
 * compiler targets. */
#if (defined(__AVX2__) && defined(__FMA__)) || defined(HY_X86_DISPATCH)
#define HY_HAVE_AVX2 1
extern const hy__gemm_kernel hy__gemm_avx2;
#endif
#if defined(__AVX512F__) || defined(HY_X86_DISPATCH)
#define HY_HAVE_AVX512 1
extern const hy__gemm_kernel hy__gemm_avx512;
#endif

#endif
