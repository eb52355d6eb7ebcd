/* Reference training kernels (plain C, one thread): the spec of ops/train_op.h. One source
 * (train_ref_impl.h) is compiled twice:
 *   - float: the hy__train_ops_ref table (backend/backend_impl.h), the `ref` backend's .train;
 *   - double: the hy__tref64_* entry points below, over double views, for gradient checks and
 *     as the more exact side when a fast float table is tested.
 * Every hy__tref64_X means exactly what hy__train_ops.X says (same argument order), minus ws
 * and tp (it needs no scratch and runs on the caller's thread).
 *
 * Testing a float table against the double reference:
 *     double *xd = ...;  // the same values as the float input, widened
 *     hy__tref64_conv_fwd(&c, hy__tview64_make(xd, n, cin, h, w), wd, bd,
 *                         hy__tview64_make(yd, n, cout, oh, ow));
 *     ops->conv_fwd(&c, hy__tview_make(xf, n, cin, h, w), wf, bf, hy__tview_make(yf, ...), ws, tp);
 *     // then compare yf with yd (e.g. relative L2 over the tensor).
 * Sums over the batch and the image (BatchNorm statistics, dw, db) accumulate in double in both
 * precisions; per-output sums of the convolutions (over cin k k or cout k k) in the working
 * precision. */
#ifndef HY_OPS_REF_TRAIN_REF_H
#define HY_OPS_REF_TRAIN_REF_H

#include <stddef.h>

#include "ops/train_op.h"

/* hy__tview with double data: image b starts at d + b * bs (bs >= c h w). */
typedef struct hy__tview64 {
    double *d;
    int n, c, h, w;
    size_t bs;
} hy__tview64;

static inline hy__tview64 hy__tview64_make(double *d, int n, int c, int h, int w) {
    hy__tview64 v = {d, n, c, h, w, (size_t)c * (size_t)h * (size_t)w};
    return v;
}
/* Channels [c0, c0 + c) of v. */
static inline hy__tview64 hy__tview64_slice(hy__tview64 v, int c0, int c) {
    hy__tview64 s = v;
    s.d = v.d + (size_t)c0 * (size_t)v.h * (size_t)v.w;
    s.c = c;
    return s;
}

void hy__tref64_conv_fwd(const hy__tconv *c, hy__tview64 x, const double *w, const double *b, hy__tview64 y);
void hy__tref64_conv_bwd_data(const hy__tconv *c, hy__tview64 dy, const double *w, hy__tview64 dx, int acc);
void hy__tref64_conv_bwd_weight(const hy__tconv *c, hy__tview64 x, hy__tview64 dy, double *dw, double *db);
void hy__tref64_bn_act_fwd(hy__tview64 z, const double *gamma, const double *beta, double *rm, double *rv,
                           double momentum, double eps, int train, int act, const hy__tview64 *add, hy__tview64 y,
                           double *mean, double *invstd);
void hy__tref64_bn_act_bwd(hy__tview64 z, hy__tview64 dy, const double *gamma, const double *beta,
                           const double *mean, const double *invstd, int train, int act, hy__tview64 dz,
                           double *dgamma, double *dbeta);
void hy__tref64_maxpool_fwd(hy__tview64 x, int k, hy__tview64 y);
void hy__tref64_maxpool_bwd(hy__tview64 x, hy__tview64 dy, int k, hy__tview64 dx, int acc);
void hy__tref64_upsample2x_fwd(hy__tview64 x, hy__tview64 y);
void hy__tref64_upsample2x_bwd(hy__tview64 dy, hy__tview64 dx, int acc);
void hy__tref64_copy(hy__tview64 src, hy__tview64 dst, int acc);

#endif
