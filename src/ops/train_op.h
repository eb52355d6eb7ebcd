/* Training kernels: forward and backward of every op of the unfused training graph (Conv ->
 * BatchNorm -> SiLU (+ residual), conv with bias, max-pool, nearest upsample, channel copy
 * for concat / split). Each backend that can train fills one hy__train_ops table
 * (hy__backend_i.train); the plain-C reference (ops/ref/train_ref.c) is the spec every fast
 * table is tested against (tests/test_train_ops*.c).
 *
 * Tensors are float32 NCHW views: image b of a view starts at d + b * bs and holds c * h * w
 * contiguous floats (bs >= c * h * w: a view may be a channel slice of a wider tensor).
 * Output views never overlap inputs. `acc` 0 overwrites the destination, 1 adds to it (a
 * tensor read by several consumers sums their gradients). Parameter gradients (dw, db,
 * dgamma, dbeta) always accumulate (+=), as PyTorch's .grad. Sums over the batch and the
 * image (BatchNorm statistics and gradients, dw, db) are accumulated in double. No kernel
 * allocates; tp may be NULL (one thread). Every kernel is bitwise reproducible: the same inputs
 * give the same bits whatever the threads' timing (training runs are seeded and repeatable). */
#ifndef HY_OPS_TRAIN_OP_H
#define HY_OPS_TRAIN_OP_H

#include <stddef.h>

#include "core/core.h"

typedef struct hy__tview {
    float *d;    /* image 0 */
    int n, c, h, w;
    size_t bs;   /* floats from one image to the next */
} hy__tview;

static inline hy__tview hy__tview_make(float *d, int n, int c, int h, int w) {
    hy__tview v = {d, n, c, h, w, (size_t)c * (size_t)h * (size_t)w};
    return v;
}
/* Channels [c0, c0 + c) of v. */
static inline hy__tview hy__tview_slice(hy__tview v, int c0, int c) {
    hy__tview s = v;
    s.d = v.d + (size_t)c0 * (size_t)v.h * (size_t)v.w;
    s.c = c;
    return s;
}

/* Dense 2-D convolution (groups 1), square kernel, pad k / 2 as Ultralytics' autopad:
 * x (n, cin, h, w) -> y (n, cout, oh, ow), oh = hy__conv_out(h, k, stride, pad). Weights
 * (cout, cin, k, k), bias (cout). */
typedef struct hy__tconv {
    int cin, cout, k, stride, pad;
} hy__tconv;

typedef struct hy__train_ops {
    const char *name; /* backend name: "ref", "cpu" */
    /* Scratch bytes any of the three conv kernels needs for input (n, cin, h, w) on
     * n_threads threads; the caller plans it once and passes it as ws (64-byte aligned). */
    size_t (*conv_ws)(const hy__tconv *c, int n, int h, int w, int n_threads);
    /* y = conv(x, w) + b; b may be NULL (Conv: no bias). */
    void (*conv_fwd)(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                     hy__threadpool *tp);
    /* dx (acc ? += : =) the input gradient: the transposed conv of dy with w. */
    void (*conv_bwd_data)(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc, void *ws,
                          hy__threadpool *tp);
    /* dw (cout, cin, k, k) += sum over images of the correlation of dy with x; db (cout) +=
     * the sum of dy per channel (db may be NULL). */
    void (*conv_bwd_weight)(const hy__tconv *c, hy__tview x, hy__tview dy, float *dw, float *db, void *ws,
                            hy__threadpool *tp);

    /* BatchNorm2d + activation (+ residual):
     *   train 1: mean, biased var of z per channel over (n, h, w); saves mean[c] and
     *            invstd[c] = 1 / sqrt(var + eps); when rm / rv are not NULL, updates them as
     *            PyTorch: rm = (1 - momentum) rm + momentum mean, rv likewise with the unbiased
     *            variance var * M / (M - 1), M = n h w.
     *   train 0: mean = rm, invstd = 1 / sqrt(rv + eps) (saved the same way; rm, rv read only).
     *   u = gamma (z - mean) invstd + beta;  y = act(u) (+ add when add != NULL).
     * act: enum hy_act (HY_ACT_NONE or HY_ACT_SILU). */
    void (*bn_act_fwd)(hy__tview z, const float *gamma, const float *beta, float *rm, float *rv, float momentum,
                       float eps, int train, int act, const hy__tview *add, hy__tview y, float *mean,
                       float *invstd, hy__threadpool *tp);
    /* Backward of bn_act_fwd given dy = dL/dy (the residual's own gradient is dy itself: the
     * caller passes it on). Recomputes u from z, mean, invstd. dz (acc 0: overwritten) may
     * have d == NULL (nothing below needs it); dgamma / dbeta (c) += their gradients (may be
     * NULL). train 1 differentiates through the batch statistics; train 0 treats mean and
     * invstd as constants. */
    void (*bn_act_bwd)(hy__tview z, hy__tview dy, const float *gamma, const float *beta, const float *mean,
                       const float *invstd, int train, int act, hy__tview dz, float *dgamma, float *dbeta,
                       hy__threadpool *tp);

    /* k x k max pool, stride 1, pad k / 2 (padding never wins), y same size as x. */
    void (*maxpool_fwd)(hy__tview x, int k, hy__tview y, hy__threadpool *tp);
    /* dx (acc) gets each dy routed to its window's maximum in x: the first one in row-major
     * order on ties (PyTorch's CPU kernel); several windows sharing a maximum sum. */
    void (*maxpool_bwd)(hy__tview x, hy__tview dy, int k, hy__tview dx, int acc, hy__threadpool *tp);
    /* Nearest 2x upsample: y (n, c, 2h, 2w); backward: dx (acc) = the sum of its 2x2 block. */
    void (*upsample2x_fwd)(hy__tview x, hy__tview y, hy__threadpool *tp);
    void (*upsample2x_bwd)(hy__tview dy, hy__tview dx, int acc, hy__threadpool *tp);
    /* dst (acc ? += : =) src; same (n, c, h, w) (concat forward into a slice, its backward,
     * split's backward). */
    void (*copy)(hy__tview src, hy__tview dst, int acc, hy__threadpool *tp);
} hy__train_ops;

#endif
