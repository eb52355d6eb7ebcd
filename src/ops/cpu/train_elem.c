/* Non-conv CPU training kernels (see train_elem.h): BatchNorm + SiLU as two passes over memory
 * each way (fwd: double statistics, then normalise + act (+ add); bwd: du = dy act'(u) with its
 * two double sums, then dz), on the row kernels of the ISA in force (generic here, AVX2 in
 * arch/x86/train_elem_avx2.c); max-pool on padded planes (train_elem_pool.h). Work is split over
 * channels (BatchNorm) or (image, channel) planes; each unit is done by one thread in a fixed
 * order, so results are bitwise the same for any thread count or timing. */
#include "ops/cpu/train_elem.h"

#include "backend/backend_impl.h"
#include "ops/cpu/ops_cpu.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>

#define TE_CHUNK 256 /* floats per stack chunk of the generic activation */

// --- generic row kernels -------------------------------------------------------------------

static void g_stats(const float *z, size_t n, float k, double *s) {
    double a[4] = { 0, 0, 0, 0 }, q[4] = { 0, 0, 0, 0 };
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) {
            const double d = (double)z[i + l] - k;
            a[l] += d;
            q[l] += d * d;
        }
    for (; i < n; i++) {
        const double d = (double)z[i] - k;
        a[0] += d;
        q[0] += d * d;
    }
    s[0] += (a[0] + a[1]) + (a[2] + a[3]);
    s[1] += (q[0] + q[1]) + (q[2] + q[3]);
}

static void g_fwd(const float *z, size_t n, float m, float sc, float sh, int act, const float *add, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (z[i] - m) * sc + sh;
    if (act != HY_ACT_NONE) hy__gemm_generic.act(y, n, act, y);
    if (add)
        for (size_t i = 0; i < n; i++) y[i] += add[i];
}

static void g_bwd_du(const float *z, const float *dy, size_t n, float mean, float sc, float sh, int act, float *du,
                     double *s) {
    float u[TE_CHUNK], sg[TE_CHUNK];
    double a0 = 0, a1 = 0;
    for (size_t i0 = 0; i0 < n; i0 += TE_CHUNK) {
        const size_t m = HY_MIN((size_t)TE_CHUNK, n - i0);
        if (act == HY_ACT_NONE) {
            memcpy(du + i0, dy + i0, m * sizeof(float));
        } else {
            for (size_t i = 0; i < m; i++) u[i] = (z[i0 + i] - mean) * sc + sh;
            hy__gemm_generic.act(u, m, HY_ACT_SIGMOID, sg);
            // silu'(u) = s (1 + u (1 - s))
            for (size_t i = 0; i < m; i++) du[i0 + i] = dy[i0 + i] * (sg[i] * (1.0f + u[i] * (1.0f - sg[i])));
        }
        for (size_t i = 0; i < m; i++) {
            a0 += du[i0 + i];
            a1 += (double)du[i0 + i] * ((double)z[i0 + i] - mean);
        }
    }
    s[0] += a0;
    s[1] += a1;
}

static void g_bwd_dz(const float *z, float *dz, size_t n, float k0, float mdu, float mean, float kx) {
    for (size_t i = 0; i < n; i++) dz[i] = k0 * (dz[i] - mdu) - (z[i] - mean) * kx;
}

#define TE_POOL_FWD g_pool_fwd
#define TE_POOL_BWD g_pool_bwd
#include "ops/cpu/train_elem_pool.h"

const hy__telem_kernel hy__telem_generic = { g_stats, g_fwd, g_bwd_du, g_bwd_dz, g_pool_fwd, g_pool_bwd };

static const hy__telem_kernel *kern(void) {
#ifdef HY_HAVE_AVX2
    if (hy__train_cpu_isa() != HY_CPU_ISA_GENERIC) return &hy__telem_avx2; // AVX-512 machines run AVX2
#endif
    return &hy__telem_generic;
}

// --- BatchNorm + activation --------------------------------------------------------------

typedef struct bn_task {
    const hy__telem_kernel *kr;
    hy__tview z, dy, y, dz;
    const hy__tview *add;
    const float *gamma, *beta, *cmean, *cinvstd;
    float *rm, *rv, *mean, *invstd, *dgamma, *dbeta;
    float momentum, eps;
    int train, act;
    hy__workq wq;
} bn_task;

static void bn_fwd_channel(bn_task *t, int ch) {
    const hy__tview z = t->z;
    const int hw = z.h * z.w;
    const size_t off = (size_t)ch * hw;
    double mean, invstd;
    if (t->train) {
        // shifted by the channel's first value: no cancellation in E[d^2] - E[d]^2
        const float k = z.d[off];
        double s[2] = { 0, 0 };
        for (int b = 0; b < z.n; b++) t->kr->stats(z.d + b * z.bs + off, (size_t)hw, k, s);
        const double M = (double)z.n * hw, md = s[0] / M;
        mean = k + md;
        const double var = HY_MAX(0.0, s[1] / M - md * md);
        invstd = 1.0 / sqrt(var + (double)t->eps);
        if (t->rm) t->rm[ch] = (float)((1.0 - t->momentum) * t->rm[ch] + (double)t->momentum * mean);
        if (t->rv) {
            const double uv = M > 1 ? var * M / (M - 1) : var;
            t->rv[ch] = (float)((1.0 - t->momentum) * t->rv[ch] + (double)t->momentum * uv);
        }
    } else {
        mean = t->rm[ch];
        invstd = 1.0 / sqrt((double)t->rv[ch] + (double)t->eps);
    }
    if (t->mean) t->mean[ch] = (float)mean;
    if (t->invstd) t->invstd[ch] = (float)invstd;
    // u = gamma (z - mean) invstd + beta = (z - mf) sc + sh, mf = mean in float
    const float mf = (float)mean, sc = (float)(t->gamma[ch] * invstd);
    const float sh = (float)(t->beta[ch] - (mean - mf) * t->gamma[ch] * invstd);
    for (int b = 0; b < z.n; b++)
        t->kr->fwd(z.d + b * z.bs + off, (size_t)hw, mf, sc, sh, t->act,
                   t->add ? t->add->d + b * t->add->bs + off : NULL, t->y.d + b * t->y.bs + off);
}

static void bn_fwd_worker(void *ctx, int ith, int nth) {
    bn_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) bn_fwd_channel(t, (int)i);
}

void hy__train_elem_bn_act_fwd(hy__tview z, const float *gamma, const float *beta, float *rm, float *rv,
                               float momentum, float eps, int train, int act, const hy__tview *add, hy__tview y,
                               float *mean, float *invstd, hy__threadpool *tp) {
    HY_ASSERT(act == HY_ACT_NONE || act == HY_ACT_SILU);
    HY_ASSERT(train || (rm && rv));
    bn_task t = { .kr = kern(), .z = z, .y = y, .add = add, .gamma = gamma, .beta = beta, .rm = rm,
                  .rv = rv, .mean = mean, .invstd = invstd, .momentum = momentum, .eps = eps,
                  .train = train, .act = act };
    const int nth = hy__threadpool_size(tp);
    hy__workq_init(&t.wq, z.c, nth, 4, 1);
    hy__threadpool_run(tp, bn_fwd_worker, &t);
}

static void bn_bwd_channel(bn_task *t, int ch) {
    const hy__tview z = t->z;
    const int hw = z.h * z.w;
    const size_t off = (size_t)ch * hw;
    const float mean = t->cmean[ch], is = t->cinvstd[ch];
    const float sc = t->gamma[ch] * is, sh = t->beta[ch]; // u = (z - mean) sc + sh
    double s[2] = { 0, 0 }; // sum du, sum du (z - mean)
    float buf[TE_CHUNK];
    for (int b = 0; b < z.n; b++) {
        const float *zi = z.d + b * z.bs + off, *dyi = t->dy.d + b * t->dy.bs + off;
        if (t->dz.d) {
            t->kr->bwd_du(zi, dyi, (size_t)hw, mean, sc, sh, t->act, t->dz.d + b * t->dz.bs + off, s);
        } else {
            for (int i0 = 0; i0 < hw; i0 += TE_CHUNK)
                t->kr->bwd_du(zi + i0, dyi + i0, (size_t)HY_MIN(TE_CHUNK, hw - i0), mean, sc, sh, t->act, buf,
                              s);
        }
    }
    const double sdu = s[0], sdux = s[1] * is; // sum du xhat
    if (t->dgamma) t->dgamma[ch] += (float)sdux;
    if (t->dbeta) t->dbeta[ch] += (float)sdu;
    if (!t->dz.d) return;
    const double M = (double)z.n * hw;
    // dz = gamma invstd (du - mean(du) - xhat mean(du xhat))
    const float mdu = t->train ? (float)(sdu / M) : 0.0f;
    const float kx = t->train ? (float)((double)sc * is * (sdux / M)) : 0.0f;
    for (int b = 0; b < z.n; b++)
        t->kr->bwd_dz(z.d + b * z.bs + off, t->dz.d + b * t->dz.bs + off, (size_t)hw, sc, mdu, mean, kx);
}

static void bn_bwd_worker(void *ctx, int ith, int nth) {
    bn_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) bn_bwd_channel(t, (int)i);
}

void hy__train_elem_bn_act_bwd(hy__tview z, hy__tview dy, const float *gamma, const float *beta,
                               const float *mean, const float *invstd, int train, int act, hy__tview dz,
                               float *dgamma, float *dbeta, hy__threadpool *tp) {
    HY_ASSERT(act == HY_ACT_NONE || act == HY_ACT_SILU);
    bn_task t = { .kr = kern(), .z = z, .dy = dy, .dz = dz, .gamma = gamma, .beta = beta, .cmean = mean,
                  .cinvstd = invstd, .train = train, .act = act, .dgamma = dgamma, .dbeta = dbeta };
    const int nth = hy__threadpool_size(tp);
    hy__workq_init(&t.wq, z.c, nth, 4, 1);
    hy__threadpool_run(tp, bn_bwd_worker, &t);
}

// --- planes: max-pool, upsample, copy ----------------------------------------------------

typedef struct plane_task {
    const hy__telem_kernel *kr;
    hy__tview a, b, c;
    int k, acc, kind;
    hy__workq wq;
} plane_task;

enum { PL_POOL_FWD, PL_POOL_BWD, PL_UP_FWD, PL_UP_BWD, PL_COPY };

#define POOL_COLS 256 /* output columns per stack strip */
/* PyTorch's CPU max-pool takes a value when it is > the best so far or NaN */
#define GT(v, best) ((v) > (best) || isnan(v))

/* y = k x k max (stride 1, pad k/2) of one plane: column max of the window rows into a strip,
 * then the row max. */
static void pool_fwd_plane(const float *x, int h, int w, int k, float *y) {
    const int r = k / 2;
    float vm[POOL_COLS + 64];
    HY_ASSERT(r <= 32);
    for (int oy = 0; oy < h; oy++) {
        const int y0 = HY_MAX(0, oy - r), y1 = HY_MIN(h, oy + r + 1);
        for (int c0 = 0; c0 < w; c0 += POOL_COLS) {
            const int c1 = HY_MIN(w, c0 + POOL_COLS), a0 = HY_MAX(0, c0 - r), a1 = HY_MIN(w, c1 + r);
            for (int ix = a0; ix < a1; ix++) vm[ix - a0] = x[(size_t)y0 * w + ix];
            for (int iy = y0 + 1; iy < y1; iy++) {
                const float *xr = x + (size_t)iy * w;
                for (int ix = a0; ix < a1; ix++) vm[ix - a0] = GT(xr[ix], vm[ix - a0]) ? xr[ix] : vm[ix - a0];
            }
            float *yr = y + (size_t)oy * w;
            for (int ox = c0; ox < c1; ox++) {
                const int l = HY_MAX(a0, ox - r), hi = HY_MIN(a1, ox + r + 1);
                float m = vm[l - a0];
                for (int ix = l + 1; ix < hi; ix++) m = GT(vm[ix - a0], m) ? vm[ix - a0] : m;
                yr[ox] = m;
            }
        }
    }
}

/* dx gets each dy at the first maximum (row-major) of its window: the reference's scan from
 * -inf (a later NaN replaces the best; an all -inf window picks its first element). */
static void pool_bwd_plane(const float *x, const float *dy, int h, int w, int k, float *dx, int acc) {
    const int r = k / 2;
    if (!acc) memset(dx, 0, (size_t)h * w * sizeof(float));
    for (int oy = 0; oy < h; oy++) {
        const int y0 = HY_MAX(0, oy - r), y1 = HY_MIN(h, oy + r + 1);
        for (int ox = 0; ox < w; ox++) {
            const int x0 = HY_MAX(0, ox - r), x1 = HY_MIN(w, ox + r + 1);
            size_t best = (size_t)y0 * w + x0;
            float m = -INFINITY;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    const size_t i = (size_t)iy * w + ix;
                    if (GT(x[i], m)) {
                        m = x[i];
                        best = i;
                    }
                }
            dx[best] += dy[(size_t)oy * w + ox];
        }
    }
}

static void plane_item(plane_task *t, long i) {
    const int b = (int)(i / t->a.c), ch = (int)(i % t->a.c);
    const size_t ha = (size_t)t->a.h * t->a.w;
    const float *a = t->a.d + b * t->a.bs + ch * ha;
    switch (t->kind) {
    case PL_POOL_FWD:
    case PL_POOL_BWD: { // a = x, b = y or dy, c = dx
        const int h = t->a.h, w = t->a.w, r = t->k / 2;
        float *bp = t->b.d + b * t->b.bs + ch * ha;
        if ((size_t)(h + 2 * r) * (size_t)(w + 2 * r) > HY_TELEM_PAD_MAX) { // big planes: strips
            if (t->kind == PL_POOL_FWD) pool_fwd_plane(a, h, w, t->k, bp);
            else pool_bwd_plane(a, bp, h, w, t->k, t->c.d + b * t->c.bs + ch * ha, t->acc);
            break;
        }
        float scratch[4 * HY_TELEM_PAD_MAX];
        if (t->kind == PL_POOL_FWD) {
            t->kr->pool_fwd(a, h, w, r, bp, scratch);
        } else {
            float *dx = t->c.d + b * t->c.bs + ch * ha;
            if (!t->acc) memset(dx, 0, ha * sizeof(float));
            t->kr->pool_bwd(a, bp, h, w, r, dx, scratch);
        }
        break;
    }
    case PL_UP_FWD: { // a = x (h, w), b = y (2h, 2w)
        const int h = t->a.h, w = t->a.w;
        float *y = t->b.d + b * t->b.bs + ch * 4 * ha;
        for (int iy = 0; iy < h; iy++) {
            float *y0 = y + (size_t)(2 * iy) * 2 * w;
            const float *xr = a + (size_t)iy * w;
            for (int ix = 0; ix < w; ix++) y0[2 * ix] = y0[2 * ix + 1] = xr[ix];
            memcpy(y0 + 2 * w, y0, (size_t)2 * w * sizeof(float));
        }
        break;
    }
    case PL_UP_BWD: { // a = dy (2h, 2w), b = dx (h, w)
        const int h = t->b.h, w = t->b.w;
        const float *d = t->a.d + b * t->a.bs + ch * ha;
        float *dx = t->b.d + b * t->b.bs + (size_t)ch * h * w;
        for (int iy = 0; iy < h; iy++) {
            const float *r0 = d + (size_t)(2 * iy) * 2 * w, *r1 = r0 + 2 * w;
            float *o = dx + (size_t)iy * w;
            for (int ix = 0; ix < w; ix++) {
                const float v = (r0[2 * ix] + r0[2 * ix + 1]) + (r1[2 * ix] + r1[2 * ix + 1]);
                o[ix] = t->acc ? o[ix] + v : v;
            }
        }
        break;
    }
    default: { // copy a -> b
        float *o = t->b.d + b * t->b.bs + ch * ha;
        if (t->acc)
            for (size_t j = 0; j < ha; j++) o[j] += a[j];
        else
            memcpy(o, a, ha * sizeof(float));
        break;
    }
    }
}

static void plane_worker(void *ctx, int ith, int nth) {
    plane_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) plane_item(t, i);
}

static void planes_run(plane_task *t, hy__threadpool *tp) {
    const long n = (long)t->a.n * t->a.c;
    if (n <= 0) return;
    const int nth = hy__threadpool_size(tp);
    hy__workq_init(&t->wq, n, nth, 4, 1);
    hy__threadpool_run(tp, plane_worker, t);
}

void hy__train_elem_maxpool_fwd(hy__tview x, int k, hy__tview y, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1 && y.c == x.c && y.h == x.h && y.w == x.w);
    plane_task t = { .kr = kern(), .a = x, .b = y, .k = k, .kind = PL_POOL_FWD };
    planes_run(&t, tp);
}

void hy__train_elem_maxpool_bwd(hy__tview x, hy__tview dy, int k, hy__tview dx, int acc, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1);
    plane_task t = { .kr = kern(), .a = x, .b = dy, .c = dx, .k = k, .acc = acc, .kind = PL_POOL_BWD };
    planes_run(&t, tp);
}

void hy__train_elem_upsample2x_fwd(hy__tview x, hy__tview y, hy__threadpool *tp) {
    HY_ASSERT(y.h == 2 * x.h && y.w == 2 * x.w && y.c == x.c);
    plane_task t = { .a = x, .b = y, .kind = PL_UP_FWD };
    planes_run(&t, tp);
}

void hy__train_elem_upsample2x_bwd(hy__tview dy, hy__tview dx, int acc, hy__threadpool *tp) {
    HY_ASSERT(dy.h == 2 * dx.h && dy.w == 2 * dx.w && dy.c == dx.c);
    plane_task t = { .a = dy, .b = dx, .acc = acc, .kind = PL_UP_BWD };
    planes_run(&t, tp);
}

void hy__train_elem_copy(hy__tview src, hy__tview dst, int acc, hy__threadpool *tp) {
    HY_ASSERT(src.c == dst.c && src.h == dst.h && src.w == dst.w);
    plane_task t = { .a = src, .b = dst, .acc = acc, .kind = PL_COPY };
    planes_run(&t, tp);
}
