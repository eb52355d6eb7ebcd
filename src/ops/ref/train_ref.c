/* Reference training kernels: the spec of ops/train_op.h (plain loops, one thread). One
 * template (train_ref_impl.h) in two precisions: float for the hy__train_ops_ref table, double
 * for the hy__tref64_* entry points (train_ref.h) that gradient checks and fast tables are
 * tested against. Loop orders keep the innermost loop over contiguous output columns so a
 * whole-network forward + backward on this table stays practical (tests/test_train_ops.c). */
#include "ops/ref/train_ref.h"

#include <math.h>

#include "backend/backend_impl.h"
#include "ops/op.h"

/* The output columns ox whose input column ox * s - p + kx is inside [0, w): [col_lo, col_hi). */
static inline int col_lo(int kx, int s, int p) { return p - kx <= 0 ? 0 : (p - kx + s - 1) / s; }
static inline int col_hi(int kx, int s, int p, int w, int ow) {
    const int last = w - 1 + p - kx; /* ox * s <= last */
    if (last < 0) return 0;
    return last / s + 1 < ow ? last / s + 1 : ow;
}

#define REAL float
#define TV hy__tview
#define TR(x) tr32_##x
#define TAPI(x) tref32_##x
#define TAPI_LINK static
#define R_EXP expf
#include "ops/ref/train_ref_impl.h"
#undef REAL
#undef TV
#undef TR
#undef TAPI
#undef TAPI_LINK
#undef R_EXP

#define REAL double
#define TV hy__tview64
#define TR(x) tr64_##x
#define TAPI(x) hy__tref64_##x
#define TAPI_LINK
#define R_EXP exp
#include "ops/ref/train_ref_impl.h"
#undef REAL
#undef TV
#undef TR
#undef TAPI
#undef TAPI_LINK
#undef R_EXP

// --- the float table (ws and tp unused: no scratch, one thread) ------------------------------

static size_t ref_conv_ws(const hy__tconv *c, int n, int h, int w, int n_threads) { return 0; }

static void ref_conv_fwd(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                         hy__threadpool *tp) {
    tref32_conv_fwd(c, x, w, b, y);
}

static void ref_conv_bwd_data(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc, void *ws,
                              hy__threadpool *tp) {
    tref32_conv_bwd_data(c, dy, w, dx, acc);
}

static void ref_conv_bwd_weight(const hy__tconv *c, hy__tview x, hy__tview dy, float *dw, float *db, void *ws,
                                hy__threadpool *tp) {
    tref32_conv_bwd_weight(c, x, dy, dw, db);
}

static void ref_bn_act_fwd(hy__tview z, const float *gamma, const float *beta, float *rm, float *rv, float momentum,
                           float eps, int train, int act, const hy__tview *add, hy__tview y, float *mean,
                           float *invstd, hy__threadpool *tp) {
    tref32_bn_act_fwd(z, gamma, beta, rm, rv, momentum, eps, train, act, add, y, mean, invstd);
}

static void ref_bn_act_bwd(hy__tview z, hy__tview dy, const float *gamma, const float *beta, const float *mean,
                           const float *invstd, int train, int act, hy__tview dz, float *dgamma, float *dbeta,
                           hy__threadpool *tp) {
    tref32_bn_act_bwd(z, dy, gamma, beta, mean, invstd, train, act, dz, dgamma, dbeta);
}

static void ref_maxpool_fwd(hy__tview x, int k, hy__tview y, hy__threadpool *tp) { tref32_maxpool_fwd(x, k, y); }

static void ref_maxpool_bwd(hy__tview x, hy__tview dy, int k, hy__tview dx, int acc, hy__threadpool *tp) {
    tref32_maxpool_bwd(x, dy, k, dx, acc);
}

static void ref_upsample2x_fwd(hy__tview x, hy__tview y, hy__threadpool *tp) { tref32_upsample2x_fwd(x, y); }

static void ref_upsample2x_bwd(hy__tview dy, hy__tview dx, int acc, hy__threadpool *tp) {
    tref32_upsample2x_bwd(dy, dx, acc);
}

static void ref_copy(hy__tview src, hy__tview dst, int acc, hy__threadpool *tp) { tref32_copy(src, dst, acc); }

const hy__train_ops hy__train_ops_ref = {
    .name = "ref",
    .conv_ws = ref_conv_ws,
    .conv_fwd = ref_conv_fwd,
    .conv_bwd_data = ref_conv_bwd_data,
    .conv_bwd_weight = ref_conv_bwd_weight,
    .bn_act_fwd = ref_bn_act_fwd,
    .bn_act_bwd = ref_bn_act_bwd,
    .maxpool_fwd = ref_maxpool_fwd,
    .maxpool_bwd = ref_maxpool_bwd,
    .upsample2x_fwd = ref_upsample2x_fwd,
    .upsample2x_bwd = ref_upsample2x_bwd,
    .copy = ref_copy,
};
