/* Non-conv CPU training kernels of hy__train_ops_cpu (train_cpu.c's table points at them):
 * BatchNorm + activation forward / backward, max-pool, nearest 2x upsample, channel copy.
 * Same contracts as ops/train_op.h. Internal to ops/cpu. */
#ifndef HY_OPS_CPU_TRAIN_ELEM_H
#define HY_OPS_CPU_TRAIN_ELEM_H

#include "ops/cpu/gemm.h"
#include "ops/train_op.h"

/* The ISA (enum hy_cpu_isa) the training kernels run now: hy__train_cpu_force_isa's, else the best. */
int hy__train_cpu_isa(void);

void hy__train_elem_bn_act_fwd(hy__tview z, const float *gamma, const float *beta, float *rm, float *rv,
                               float momentum, float eps, int train, int act, const hy__tview *add, hy__tview y,
                               float *mean, float *invstd, hy__threadpool *tp);
void hy__train_elem_bn_act_bwd(hy__tview z, hy__tview dy, const float *gamma, const float *beta,
                               const float *mean, const float *invstd, int train, int act, hy__tview dz,
                               float *dgamma, float *dbeta, hy__threadpool *tp);
void hy__train_elem_maxpool_fwd(hy__tview x, int k, hy__tview y, hy__threadpool *tp);
void hy__train_elem_maxpool_bwd(hy__tview x, hy__tview dy, int k, hy__tview dx, int acc, hy__threadpool *tp);
void hy__train_elem_upsample2x_fwd(hy__tview x, hy__tview y, hy__threadpool *tp);
void hy__train_elem_upsample2x_bwd(hy__tview dy, hy__tview dx, int acc, hy__threadpool *tp);
void hy__train_elem_copy(hy__tview src, hy__tview dst, int acc, hy__threadpool *tp);

/* Row kernels of one ISA (train_elem.c: generic; arch/x86/train_elem_avx2.c: AVX2+FMA, also used
 * on AVX-512 machines). A row is n contiguous floats of one (image, channel) plane. Double sums
 * are added into s[] once per call, lanes reduced in a fixed order: bitwise reproducible. */
#define HY_TELEM_PAD_MAX 2048 /* floats of a padded pool plane (SPPF: 14 x 14 at 320, 24 x 24 at 640) */

typedef struct hy__telem_kernel {
    /* s[0] += sum (z - k), s[1] += sum (z - k)^2, in double. */
    void (*stats)(const float *z, size_t n, float k, double *s);
    /* y = act(u) (+ add when add != NULL), u = (z - m) sc + sh (z - m is exact near the mean:
     * no cancellation for channels with |mean| >> std); act HY_ACT_NONE or HY_ACT_SILU. */
    void (*fwd)(const float *z, size_t n, float m, float sc, float sh, int act, const float *add, float *y);
    /* du = dy act'(u), u = (z - mean) sc + sh; s[0] += sum du, s[1] += sum du (z - mean), in double. */
    void (*bwd_du)(const float *z, const float *dy, size_t n, float mean, float sc, float sh, int act, float *du,
                   double *s);
    /* dz = k0 (dz - mdu) - (z - mean) kx, dz holding du on entry. */
    void (*bwd_dz)(const float *z, float *dz, size_t n, float k0, float mdu, float mean, float kx);
    /* Max-pool (k = 2 r + 1) of one plane (h, w) with (h + 2r)(w + 2r) <= HY_TELEM_PAD_MAX
     * (train_elem_pool.h); scratch: 4 HY_TELEM_PAD_MAX floats. bwd adds into dx. */
    void (*pool_fwd)(const float *x, int h, int w, int r, float *y, float *scratch);
    void (*pool_bwd)(const float *x, const float *dy, int h, int w, int r, float *dx, float *scratch);
} hy__telem_kernel;

extern const hy__telem_kernel hy__telem_generic;
#ifdef HY_HAVE_AVX2
extern const hy__telem_kernel hy__telem_avx2;
#endif

#endif
