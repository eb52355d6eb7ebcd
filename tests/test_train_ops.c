/* Reference training kernels (ops/ref/train_ref.c): the spec of ops/train_op.h.
 *   - forwards against the definitions written out here (naive loops, libm);
 *   - gradient checks in double for every op: the analytic gradient of L = sum(r * y) (r random)
 *     against central differences, relative error max|a - n| / max|n| <= 1e-4 (worst printed);
 *   - BatchNorm running statistics (momentum 0.03, eps 1e-3, unbiased variance) by hand;
 *   - the float table (hy__train_ops_ref) against the double entry points (relative L2 <= 1e-5);
 *   - views: every op on channel slices of wider tensors (bs > c h w) gives bit for bit the
 *     dense result and writes nothing outside the slice;
 *   - max-pool ties: the gradient goes to the first maximum in row-major window order. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "hy_test.h"
#include "ops/op.h"
#include "ops/ref/ref.h"
#include "ops/ref/train_ref.h"
#include "ops/train_op.h"

// --- allocation (freed at the start of each case; reachable otherwise) -----------------------

static void *pool[256];
static int npool;

static void pool_reset(void) {
    for (int i = 0; i < npool; i++) free(pool[i]);
    npool = 0;
}
static void *talloc(size_t bytes) {
    if (npool == (int)(sizeof pool / sizeof pool[0])) abort();
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) abort();
    return pool[npool++] = p;
}
static double *dnew(size_t n) { return talloc(n * sizeof(double)); }
static float *fnew(size_t n) { return talloc(n * sizeof(float)); }

// --- random numbers (splitmix64), uniform in [lo, hi) ---------------------------------------

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(double lo, double hi) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / 9007199254740992.0;
}
static double *drand_new(size_t n, double lo, double hi) {
    double *p = dnew(n);
    for (size_t i = 0; i < n; i++) p[i] = urand(lo, hi);
    return p;
}
static double dsum_prod(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// --- gradient check -----------------------------------------------------------------------

enum { OP_CONV, OP_BN_TRAIN, OP_BN_EVAL, OP_MAXPOOL, OP_UPSAMPLE, OP_COPY, OP_N };
static const char *op_names[OP_N] = {"conv", "bn_act train", "bn_act eval", "maxpool", "upsample2x", "copy"};
static double worst[OP_N];

typedef double (*loss_fn)(void *ctx);

/* max |g - numeric| / max |numeric| over the elements p[b * stride + i], b < nb, i < per:
 * numeric is the central difference of f with step 1e-5. */
static double gradcheck(loss_fn f, void *ctx, double *p, const double *g, int nb, size_t per, size_t stride) {
    const double h = 1e-5;
    double max_err = 0, max_num = 0;
    for (int b = 0; b < nb; b++)
        for (size_t i = 0; i < per; i++) {
            const size_t j = (size_t)b * stride + i;
            const double v = p[j];
            p[j] = v + h;
            const double lp = f(ctx);
            p[j] = v - h;
            const double lm = f(ctx);
            p[j] = v;
            const double num = (lp - lm) / (2 * h);
            if (fabs(num) > max_num) max_num = fabs(num);
            if (fabs(num - g[j]) > max_err) max_err = fabs(num - g[j]);
        }
    return max_num > 0 ? max_err / max_num : max_err;
}
static double note(int op, double e) {
    if (e > worst[op]) worst[op] = e;
    return e;
}

// --- conv ------------------------------------------------------------------------------------

typedef struct conv_ctx {
    hy__tconv c;
    int n, h, w, oh, ow;
    double *x, *wt, *b, *y, *r;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *k = p;
    hy__tref64_conv_fwd(&k->c, hy__tview64_make(k->x, k->n, k->c.cin, k->h, k->w), k->wt, k->b,
                        hy__tview64_make(k->y, k->n, k->c.cout, k->oh, k->ow));
    return dsum_prod(k->r, k->y, (size_t)k->n * k->c.cout * k->oh * k->ow);
}

typedef struct conv_case {
    int cin, cout, k, s, p, n, h, w, bias;
} conv_case;

static const conv_case conv_cases[] = {
    {3, 4, 1, 1, 0, 2, 5, 7, 0}, {3, 5, 3, 1, 1, 2, 7, 6, 1}, {4, 3, 3, 2, 1, 3, 9, 7, 1},
    {3, 4, 3, 2, 1, 2, 8, 5, 0}, {3, 4, 3, 1, 0, 2, 6, 7, 1}, {5, 3, 1, 2, 0, 2, 7, 7, 1},
};

HY_TEST(conv_fwd_matches_definition) {
    pool_reset();
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const conv_case *cc = &conv_cases[t];
        hy__tconv c = {cc->cin, cc->cout, cc->k, cc->s, cc->p};
        const int oh = hy__conv_out(cc->h, cc->k, cc->s, cc->p), ow = hy__conv_out(cc->w, cc->k, cc->s, cc->p);
        const size_t nx = (size_t)cc->n * cc->cin * cc->h * cc->w, ny = (size_t)cc->n * cc->cout * oh * ow;
        double *x = drand_new(nx, -1, 1), *wt = drand_new((size_t)cc->cout * cc->cin * cc->k * cc->k, -1, 1);
        double *b = cc->bias ? drand_new((size_t)cc->cout, -1, 1) : NULL, *y = dnew(ny);
        hy__tref64_conv_fwd(&c, hy__tview64_make(x, cc->n, cc->cin, cc->h, cc->w), wt, b,
                            hy__tview64_make(y, cc->n, cc->cout, oh, ow));
        double err = 0;
        for (int n = 0; n < cc->n; n++)
            for (int co = 0; co < cc->cout; co++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double s = b ? b[co] : 0;
                        for (int ci = 0; ci < cc->cin; ci++)
                            for (int ky = 0; ky < cc->k; ky++)
                                for (int kx = 0; kx < cc->k; kx++) {
                                    const int iy = oy * cc->s - cc->p + ky, ix = ox * cc->s - cc->p + kx;
                                    if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                                    s += wt[((co * cc->cin + ci) * cc->k + ky) * cc->k + kx] *
                                         x[((size_t)(n * cc->cin + ci) * cc->h + iy) * cc->w + ix];
                                }
                        const double got = y[((size_t)(n * cc->cout + co) * oh + oy) * ow + ox];
                        if (fabs(got - s) > err) err = fabs(got - s);
                    }
        ASSERT_TRUE(err < 1e-12);
    }
}

HY_TEST(conv_gradcheck) {
    pool_reset();
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const conv_case *cc = &conv_cases[t];
        conv_ctx k = {{cc->cin, cc->cout, cc->k, cc->s, cc->p}, cc->n, cc->h, cc->w, 0, 0, 0, 0, 0, 0, 0};
        k.oh = hy__conv_out(cc->h, cc->k, cc->s, cc->p);
        k.ow = hy__conv_out(cc->w, cc->k, cc->s, cc->p);
        const size_t nx = (size_t)k.n * cc->cin * k.h * k.w, ny = (size_t)k.n * cc->cout * k.oh * k.ow;
        const size_t nw = (size_t)cc->cout * cc->cin * cc->k * cc->k;
        k.x = drand_new(nx, -1, 1);
        k.wt = drand_new(nw, -1, 1);
        k.b = cc->bias ? drand_new((size_t)cc->cout, -1, 1) : NULL;
        k.y = dnew(ny);
        k.r = drand_new(ny, -1, 1);
        hy__tview64 dy = hy__tview64_make(k.r, k.n, cc->cout, k.oh, k.ow);
        double *dx = dnew(nx), *dw = dnew(nw), *db = dnew((size_t)cc->cout);
        hy__tref64_conv_bwd_data(&k.c, dy, k.wt, hy__tview64_make(dx, k.n, cc->cin, k.h, k.w), 0);
        hy__tref64_conv_bwd_weight(&k.c, hy__tview64_make(k.x, k.n, cc->cin, k.h, k.w), dy, dw,
                                   cc->bias ? db : NULL);
        const double ex = note(OP_CONV, gradcheck(conv_loss, &k, k.x, dx, 1, nx, 0));
        const double ew = note(OP_CONV, gradcheck(conv_loss, &k, k.wt, dw, 1, nw, 0));
        const double eb = cc->bias ? note(OP_CONV, gradcheck(conv_loss, &k, k.b, db, 1, (size_t)cc->cout, 0)) : 0;
        if (ex > 1e-4 || ew > 1e-4 || eb > 1e-4)
            HY_FAIL_("case %zu: rel err dx %.3g dw %.3g db %.3g", t, ex, ew, eb);

        /* acc: bwd_data adds onto dx; bwd_weight adds onto dw, db */
        double *dx2 = drand_new(nx, -1, 1), *pre = dnew(nx);
        memcpy(pre, dx2, nx * sizeof(double));
        hy__tref64_conv_bwd_data(&k.c, dy, k.wt, hy__tview64_make(dx2, k.n, cc->cin, k.h, k.w), 1);
        for (size_t i = 0; i < nx; i++) ASSERT_NEAR(dx2[i], pre[i] + dx[i], 1e-12);
        double *dw2 = dnew(nw), *db2 = dnew((size_t)cc->cout);
        for (size_t i = 0; i < nw; i++) dw2[i] = 0.5;
        for (int i = 0; i < cc->cout; i++) db2[i] = -0.25;
        hy__tref64_conv_bwd_weight(&k.c, hy__tview64_make(k.x, k.n, cc->cin, k.h, k.w), dy, dw2, db2);
        for (size_t i = 0; i < nw; i++) ASSERT_NEAR(dw2[i], 0.5 + dw[i], 1e-12);
        if (cc->bias)
            for (int i = 0; i < cc->cout; i++) ASSERT_NEAR(db2[i], -0.25 + db[i], 1e-12);
    }
}

// --- BatchNorm + act (+ add) ---------------------------------------------------------------

typedef struct bn_ctx {
    int n, c, h, w, train, act;
    double *z, *gamma, *beta, *rm, *rv, *add, *y, *r, *mean, *invstd;
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *k = p;
    hy__tview64 add = hy__tview64_make(k->add, k->n, k->c, k->h, k->w);
    /* train: no running stats, so repeated evaluations see the same state */
    hy__tref64_bn_act_fwd(hy__tview64_make(k->z, k->n, k->c, k->h, k->w), k->gamma, k->beta,
                          k->train ? NULL : k->rm, k->train ? NULL : k->rv, 0.03, 1e-3, k->train, k->act,
                          k->add ? &add : NULL, hy__tview64_make(k->y, k->n, k->c, k->h, k->w), k->mean, k->invstd);
    return dsum_prod(k->r, k->y, (size_t)k->n * k->c * k->h * k->w);
}

static double silu_d(double u) { return u / (1 + exp(-u)); }

HY_TEST(bn_act_gradcheck) {
    pool_reset();
    for (int train = 0; train <= 1; train++)
        for (int act = HY_ACT_NONE; act <= HY_ACT_SILU; act++)
            for (int with_add = 0; with_add <= 1; with_add++) {
                bn_ctx k = {2 + train, 3 + act + with_add, 5 + with_add, 7 - act, train, act,
                            0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
                const size_t ne = (size_t)k.n * k.c * k.h * k.w, nc = (size_t)k.c;
                k.z = drand_new(ne, -1.5, 2.5);
                k.gamma = drand_new(nc, 0.5, 1.5);
                k.beta = drand_new(nc, -0.5, 0.5);
                k.rm = drand_new(nc, -0.3, 0.8);
                k.rv = drand_new(nc, 0.5, 2.0);
                k.add = with_add ? drand_new(ne, -1, 1) : NULL;
                k.y = dnew(ne);
                k.r = drand_new(ne, -1, 1);
                k.mean = dnew(nc);
                k.invstd = dnew(nc);
                bn_loss(&k);
                /* eval: y from the definition */
                if (!train)
                    for (int n = 0; n < k.n; n++)
                        for (int c = 0; c < k.c; c++)
                            for (int i = 0; i < k.h * k.w; i++) {
                                const size_t j = ((size_t)n * k.c + c) * k.h * k.w + i;
                                double u = k.gamma[c] * (k.z[j] - k.rm[c]) / sqrt(k.rv[c] + 1e-3) + k.beta[c];
                                double e = act == HY_ACT_SILU ? silu_d(u) : u;
                                if (k.add) e += k.add[j];
                                ASSERT_NEAR(k.y[j], e, 1e-12);
                            }
                double *dz = dnew(ne), *dg = dnew(nc), *dbt = dnew(nc);
                for (size_t i = 0; i < nc; i++) dg[i] = dbt[i] = 0.125; /* they accumulate */
                hy__tview64 z = hy__tview64_make(k.z, k.n, k.c, k.h, k.w);
                hy__tview64 dy = hy__tview64_make(k.r, k.n, k.c, k.h, k.w);
                hy__tref64_bn_act_bwd(z, dy, k.gamma, k.beta, k.mean, k.invstd, train, act,
                                      hy__tview64_make(dz, k.n, k.c, k.h, k.w), dg, dbt);
                for (size_t i = 0; i < nc; i++) {
                    dg[i] -= 0.125;
                    dbt[i] -= 0.125;
                }
                const int op = train ? OP_BN_TRAIN : OP_BN_EVAL;
                const double ez = note(op, gradcheck(bn_loss, &k, k.z, dz, 1, ne, 0));
                const double eg = note(op, gradcheck(bn_loss, &k, k.gamma, dg, 1, nc, 0));
                const double eb = note(op, gradcheck(bn_loss, &k, k.beta, dbt, 1, nc, 0));
                /* the residual's gradient is dy itself (the caller passes it on) */
                const double ea = k.add ? note(op, gradcheck(bn_loss, &k, k.add, k.r, 1, ne, 0)) : 0;
                if (ez > 1e-4 || eg > 1e-4 || eb > 1e-4 || ea > 1e-4)
                    HY_FAIL_("train %d act %d add %d: rel err dz %.3g dgamma %.3g dbeta %.3g dadd %.3g", train, act,
                             with_add, ez, eg, eb, ea);
                /* dz NULL: parameter gradients only, the same values */
                double *dg2 = dnew(nc), *db2 = dnew(nc);
                hy__tview64 none = {NULL, k.n, k.c, k.h, k.w, ne / k.n};
                hy__tref64_bn_act_bwd(z, dy, k.gamma, k.beta, k.mean, k.invstd, train, act, none, dg2, db2);
                for (size_t i = 0; i < nc; i++) {
                    ASSERT_NEAR(dg2[i], dg[i], 1e-12);
                    ASSERT_NEAR(db2[i], dbt[i], 1e-12);
                }
            }
}

/* Running statistics and saved mean / invstd against the definitions (PyTorch BatchNorm2d,
 * momentum 0.03, eps 1e-3 as Ultralytics sets them), in both precisions. */
HY_TEST(bn_running_stats_by_hand) {
    pool_reset();
    enum { N = 3, C = 4, H = 5, W = 6 };
    const size_t ne = (size_t)N * C * H * W, M = (size_t)N * H * W;
    double *z = drand_new(ne, -2, 3), *g = drand_new(C, 0.5, 1.5), *b = drand_new(C, -0.5, 0.5);
    double rm0[C], rv0[C], rm[C], rv[C], mean[C], invstd[C];
    float zf[N * C * H * W], gf[C], bf[C], rmf[C], rvf[C], meanf[C], invstdf[C], yf[N * C * H * W];
    double *y = dnew(ne);
    for (size_t i = 0; i < ne; i++) zf[i] = (float)z[i], z[i] = zf[i];
    for (int c = 0; c < C; c++) {
        rm[c] = rm0[c] = (float)urand(-0.5, 0.5);
        rv[c] = rv0[c] = (float)urand(0.5, 2);
        rmf[c] = (float)rm0[c];
        rvf[c] = (float)rv0[c];
        gf[c] = (float)g[c];
        bf[c] = (float)b[c];
    }
    hy__tref64_bn_act_fwd(hy__tview64_make(z, N, C, H, W), g, b, rm, rv, 0.03, 1e-3, 1, HY_ACT_SILU, NULL,
                          hy__tview64_make(y, N, C, H, W), mean, invstd);
    hy__train_ops_ref.bn_act_fwd(hy__tview_make(zf, N, C, H, W), gf, bf, rmf, rvf, 0.03f, 1e-3f, 1, HY_ACT_SILU,
                                 NULL, hy__tview_make(yf, N, C, H, W), meanf, invstdf, NULL);
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < H * W; i++) s += z[((size_t)n * C + c) * H * W + i];
        const double m = s / (double)M;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < H * W; i++) {
                const double d = z[((size_t)n * C + c) * H * W + i] - m;
                ss += d * d;
            }
        const double var_biased = ss / (double)M, var_unbiased = ss / (double)(M - 1);
        const double e_rm = 0.97 * rm0[c] + 0.03 * m, e_rv = 0.97 * rv0[c] + 0.03 * var_unbiased;
        const double e_is = 1 / sqrt(var_biased + 1e-3);
        ASSERT_NEAR(mean[c], m, 1e-12);
        ASSERT_NEAR(invstd[c], e_is, 1e-12 * e_is);
        ASSERT_NEAR(rm[c], e_rm, 1e-12);
        ASSERT_NEAR(rv[c], e_rv, 1e-12);
        ASSERT_NEAR(meanf[c], m, 1e-6);
        ASSERT_NEAR(invstdf[c], e_is, 1e-6 * e_is);
        ASSERT_NEAR(rmf[c], e_rm, 1e-6);
        ASSERT_NEAR(rvf[c], e_rv, 1e-6 * e_rv);
        /* the biased variance would give a different running variance: the check can tell */
        ASSERT_TRUE(fabs(0.97 * rv0[c] + 0.03 * var_biased - e_rv) > 1e-4);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < H * W; i++) {
                const size_t j = ((size_t)n * C + c) * H * W + i;
                const double u = g[c] * (z[j] - m) * e_is + b[c];
                ASSERT_NEAR(y[j], silu_d(u), 1e-12);
                ASSERT_NEAR(yf[j], silu_d(u), 1e-5);
            }
    }
    /* train 0: running stats are read, not written; mean / invstd come from them */
    double rm1[C], rv1[C];
    memcpy(rm1, rm, sizeof rm);
    memcpy(rv1, rv, sizeof rv);
    hy__tref64_bn_act_fwd(hy__tview64_make(z, N, C, H, W), g, b, rm, rv, 0.03, 1e-3, 0, HY_ACT_NONE, NULL,
                          hy__tview64_make(y, N, C, H, W), mean, invstd);
    for (int c = 0; c < C; c++) {
        ASSERT_TRUE(rm[c] == rm1[c] && rv[c] == rv1[c]);
        ASSERT_NEAR(mean[c], rm1[c], 0);
        ASSERT_NEAR(invstd[c], 1 / sqrt(rv1[c] + 1e-3), 1e-12);
    }
}

// --- max pool, upsample, copy ------------------------------------------------------------------

typedef struct pool_ctx {
    int n, c, h, w, k;
    double *x, *y, *r;
} pool_ctx;

static double pool_loss(void *p) {
    pool_ctx *k = p;
    hy__tref64_maxpool_fwd(hy__tview64_make(k->x, k->n, k->c, k->h, k->w), k->k,
                           hy__tview64_make(k->y, k->n, k->c, k->h, k->w));
    return dsum_prod(k->r, k->y, (size_t)k->n * k->c * k->h * k->w);
}

/* x: a random permutation of 0 .. ne-1 times 0.01 (distinct values, gaps >> the FD step). */
static double *distinct_new(size_t ne) {
    double *x = dnew(ne);
    for (size_t i = 0; i < ne; i++) x[i] = (double)i * 0.01 - 1;
    for (size_t i = ne - 1; i > 0; i--) {
        size_t j = (size_t)urand(0, (double)(i + 1));
        double t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return x;
}

HY_TEST(maxpool_fwd_matches_definition_and_gradcheck) {
    pool_reset();
    const int ks[] = {5, 3, 9};
    for (int t = 0; t < 3; t++) {
        pool_ctx k = {2 + t % 2, 3, 7, 6 + t, ks[t], 0, 0, 0};
        const size_t ne = (size_t)k.n * k.c * k.h * k.w;
        k.x = distinct_new(ne);
        k.y = dnew(ne);
        k.r = drand_new(ne, -1, 1);
        pool_loss(&k);
        const int p = k.k / 2;
        for (int nc = 0; nc < k.n * k.c; nc++)
            for (int oy = 0; oy < k.h; oy++)
                for (int ox = 0; ox < k.w; ox++) {
                    double m = -INFINITY;
                    for (int iy = oy - p; iy <= oy + p; iy++)
                        for (int ix = ox - p; ix <= ox + p; ix++)
                            if (iy >= 0 && iy < k.h && ix >= 0 && ix < k.w)
                                m = fmax(m, k.x[((size_t)nc * k.h + iy) * k.w + ix]);
                    ASSERT_TRUE(k.y[((size_t)nc * k.h + oy) * k.w + ox] == m);
                }
        double *dx = dnew(ne);
        hy__tref64_maxpool_bwd(hy__tview64_make(k.x, k.n, k.c, k.h, k.w), hy__tview64_make(k.r, k.n, k.c, k.h, k.w),
                               k.k, hy__tview64_make(dx, k.n, k.c, k.h, k.w), 0);
        const double e = note(OP_MAXPOOL, gradcheck(pool_loss, &k, k.x, dx, 1, ne, 0));
        if (e > 1e-4) HY_FAIL_("k %d: rel err %.3g", k.k, e);
        /* acc adds */
        double *dx2 = dnew(ne);
        for (size_t i = 0; i < ne; i++) dx2[i] = 1;
        hy__tref64_maxpool_bwd(hy__tview64_make(k.x, k.n, k.c, k.h, k.w), hy__tview64_make(k.r, k.n, k.c, k.h, k.w),
                               k.k, hy__tview64_make(dx2, k.n, k.c, k.h, k.w), 1);
        for (size_t i = 0; i < ne; i++) ASSERT_NEAR(dx2[i], 1 + dx[i], 1e-12);
    }
}

/* Ties: PyTorch's CPU kernel routes the gradient to the first maximum in row-major window order. */
HY_TEST(maxpool_ties_go_to_first_max) {
    pool_reset();
    /* two maxima (0, 2) and (2, 0) in the centre's 3x3 window: (0, 2) comes first */
    float x[9] = {1, 1, 9, 1, 1, 1, 9, 1, 1}, dy[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, dx[9], y[9];
    hy__train_ops_ref.maxpool_fwd(hy__tview_make(x, 1, 1, 3, 3), 3, hy__tview_make(y, 1, 1, 3, 3), NULL);
    ASSERT_TRUE(y[4] == 9);
    hy__train_ops_ref.maxpool_bwd(hy__tview_make(x, 1, 1, 3, 3), hy__tview_make(dy, 1, 1, 3, 3), 3,
                                  hy__tview_make(dx, 1, 1, 3, 3), 0, NULL);
    for (int i = 0; i < 9; i++) ASSERT_TRUE(dx[i] == (i == 2 ? 1.0f : 0.0f));
    /* all equal, k 5 on 6 x 7: every window's first in-image element (the top-left corner of
     * its clipped window) gets that window's dy */
    enum { H = 6, W = 7 };
    double xe[H * W], ge[H * W], de[H * W], expect[H * W];
    for (int i = 0; i < H * W; i++) {
        xe[i] = 0.5;
        ge[i] = urand(-1, 1);
        expect[i] = 0;
    }
    for (int oy = 0; oy < H; oy++)
        for (int ox = 0; ox < W; ox++) {
            const int iy = oy - 2 < 0 ? 0 : oy - 2, ix = ox - 2 < 0 ? 0 : ox - 2;
            expect[iy * W + ix] += ge[oy * W + ox];
        }
    hy__tref64_maxpool_bwd(hy__tview64_make(xe, 1, 1, H, W), hy__tview64_make(ge, 1, 1, H, W), 5,
                           hy__tview64_make(de, 1, 1, H, W), 0);
    for (int i = 0; i < H * W; i++) ASSERT_NEAR(de[i], expect[i], 1e-12);
    /* a later equal value does not take over from an earlier one: the centre (1, 1) of a 3x3 of
     * 2s behind a leading 2 in the corner (0, 0) */
    float xt[9] = {2, 0, 0, 0, 2, 0, 0, 0, 0}, dt[9];
    float g1[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    hy__train_ops_ref.maxpool_bwd(hy__tview_make(xt, 1, 1, 3, 3), hy__tview_make(g1, 1, 1, 3, 3), 3,
                                  hy__tview_make(dt, 1, 1, 3, 3), 0, NULL);
    ASSERT_TRUE(dt[0] == 1 && dt[4] == 0);
}

typedef struct up_ctx {
    int n, c, h, w;
    double *x, *y, *r;
} up_ctx;

static double up_loss(void *p) {
    up_ctx *k = p;
    hy__tref64_upsample2x_fwd(hy__tview64_make(k->x, k->n, k->c, k->h, k->w),
                              hy__tview64_make(k->y, k->n, k->c, 2 * k->h, 2 * k->w));
    return dsum_prod(k->r, k->y, (size_t)k->n * k->c * 4 * k->h * k->w);
}

HY_TEST(upsample2x_fwd_matches_definition_and_gradcheck) {
    pool_reset();
    up_ctx k = {2, 3, 5, 4, 0, 0, 0};
    const size_t ne = (size_t)k.n * k.c * k.h * k.w;
    k.x = drand_new(ne, -1, 1);
    k.y = dnew(4 * ne);
    k.r = drand_new(4 * ne, -1, 1);
    up_loss(&k);
    for (int nc = 0; nc < k.n * k.c; nc++)
        for (int oy = 0; oy < 2 * k.h; oy++)
            for (int ox = 0; ox < 2 * k.w; ox++)
                ASSERT_TRUE(k.y[((size_t)nc * 2 * k.h + oy) * 2 * k.w + ox] ==
                            k.x[((size_t)nc * k.h + oy / 2) * k.w + ox / 2]);
    double *dx = dnew(ne);
    hy__tref64_upsample2x_bwd(hy__tview64_make(k.r, k.n, k.c, 2 * k.h, 2 * k.w),
                              hy__tview64_make(dx, k.n, k.c, k.h, k.w), 0);
    const double e = note(OP_UPSAMPLE, gradcheck(up_loss, &k, k.x, dx, 1, ne, 0));
    if (e > 1e-4) HY_FAIL_("rel err %.3g", e);
    double *dx2 = dnew(ne);
    for (size_t i = 0; i < ne; i++) dx2[i] = -2;
    hy__tref64_upsample2x_bwd(hy__tview64_make(k.r, k.n, k.c, 2 * k.h, 2 * k.w),
                              hy__tview64_make(dx2, k.n, k.c, k.h, k.w), 1);
    for (size_t i = 0; i < ne; i++) ASSERT_NEAR(dx2[i], -2 + dx[i], 1e-12);
}

/* copy between channel slices (concat forward / backward): src channels [1, 4) of a 6-channel
 * tensor into dst channels [2, 5) of a 7-channel one. */
typedef struct copy_ctx {
    hy__tview64 src, dst;
    double *r; /* (n, 3, h, w) dense */
} copy_ctx;

static double copy_loss(void *p) {
    copy_ctx *k = p;
    hy__tref64_copy(k->src, k->dst, 0);
    double s = 0;
    const size_t chw = (size_t)k->dst.c * k->dst.h * k->dst.w;
    for (int n = 0; n < k->dst.n; n++) s += dsum_prod(k->r + n * chw, k->dst.d + n * k->dst.bs, chw);
    return s;
}

HY_TEST(copy_views_gradcheck) {
    pool_reset();
    enum { N = 2, H = 5, W = 6 };
    double *a = drand_new((size_t)N * 6 * H * W, -1, 1), *b = dnew((size_t)N * 7 * H * W);
    copy_ctx k = {hy__tview64_slice(hy__tview64_make(a, N, 6, H, W), 1, 3),
                  hy__tview64_slice(hy__tview64_make(b, N, 7, H, W), 2, 3), drand_new((size_t)N * 3 * H * W, -1, 1)};
    ASSERT_TRUE(k.src.bs > (size_t)3 * H * W && k.dst.bs > (size_t)3 * H * W);
    /* backward: dsrc (a slice of a gradient tensor shaped like a) = copy of dL/ddst */
    double *ga = dnew((size_t)N * 6 * H * W);
    hy__tview64 gsrc = hy__tview64_slice(hy__tview64_make(ga, N, 6, H, W), 1, 3);
    hy__tref64_copy(hy__tview64_make(k.r, N, 3, H, W), gsrc, 0);
    const double e = note(OP_COPY, gradcheck(copy_loss, &k, k.src.d, gsrc.d, N, (size_t)3 * H * W, k.src.bs));
    if (e > 1e-4) HY_FAIL_("rel err %.3g", e);
    /* acc adds; channels outside the slice stay untouched */
    hy__tref64_copy(hy__tview64_make(k.r, N, 3, H, W), gsrc, 1);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < 6; c++)
            for (int i = 0; i < H * W; i++) {
                const double v = ga[((size_t)n * 6 + c) * H * W + i];
                if (c < 1 || c >= 4)
                    ASSERT_TRUE(v == 0);
                else
                    ASSERT_NEAR(v, 2 * k.r[((size_t)n * 3 + c - 1) * H * W + i], 1e-15);
            }
}

// --- float table vs double reference ----------------------------------------------------------

static double *widen(const float *f, size_t n) {
    double *d = dnew(n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}
static float *frand_new(size_t n, double lo, double hi) {
    float *p = fnew(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)urand(lo, hi);
    return p;
}
static double rel_l2(const float *f, const double *d, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)f[i] - d[i]) * ((double)f[i] - d[i]);
        den += d[i] * d[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static double worst_l2;
#define EXPECT_L2(f, d, n, what)                                                                        \
    do {                                                                                               \
        double e_ = rel_l2((f), (d), (n));                                                             \
        if (e_ > worst_l2) worst_l2 = e_;                                                              \
        if (!(e_ <= 1e-5)) HY_FAIL_("%s: float vs double relative L2 %.3g", (what), e_);                \
    } while (0)

HY_TEST(float_table_matches_double_reference) {
    pool_reset();
    const hy__train_ops *T = &hy__train_ops_ref;
    ASSERT_STREQ(T->name, "ref");
    ASSERT_TRUE(hy__backend_ref.train == T);
    /* conv: k 3 s 2 with bias, k 3 s 1, k 1 s 1, on more channels than the grad checks */
    const conv_case cases[] = {{16, 8, 3, 2, 1, 2, 13, 11, 1}, {12, 10, 3, 1, 1, 3, 9, 10, 0},
                               {24, 16, 1, 1, 0, 2, 8, 9, 1}};
    for (int t = 0; t < 3; t++) {
        const conv_case *cc = &cases[t];
        hy__tconv c = {cc->cin, cc->cout, cc->k, cc->s, cc->p};
        const int oh = hy__conv_out(cc->h, cc->k, cc->s, cc->p), ow = hy__conv_out(cc->w, cc->k, cc->s, cc->p);
        const size_t nx = (size_t)cc->n * cc->cin * cc->h * cc->w, ny = (size_t)cc->n * cc->cout * oh * ow;
        const size_t nw = (size_t)cc->cout * cc->cin * cc->k * cc->k;
        float *x = frand_new(nx, -1, 1), *w = frand_new(nw, -0.3, 0.3), *b = frand_new(cc->cout, -1, 1);
        float *dy = frand_new(ny, -1, 1), *y = fnew(ny), *dx = fnew(nx), *dw = fnew(nw), *db = fnew(cc->cout);
        double *xd = widen(x, nx), *wd = widen(w, nw), *bd = widen(b, cc->cout), *dyd = widen(dy, ny);
        double *yd = dnew(ny), *dxd = dnew(nx), *dwd = dnew(nw), *dbd = dnew(cc->cout);
        ASSERT_EQ(T->conv_ws(&c, cc->n, cc->h, cc->w, 1), 0);
        T->conv_fwd(&c, hy__tview_make(x, cc->n, cc->cin, cc->h, cc->w), w, cc->bias ? b : NULL,
                    hy__tview_make(y, cc->n, cc->cout, oh, ow), NULL, NULL);
        T->conv_bwd_data(&c, hy__tview_make(dy, cc->n, cc->cout, oh, ow), w,
                         hy__tview_make(dx, cc->n, cc->cin, cc->h, cc->w), 0, NULL, NULL);
        T->conv_bwd_weight(&c, hy__tview_make(x, cc->n, cc->cin, cc->h, cc->w),
                           hy__tview_make(dy, cc->n, cc->cout, oh, ow), dw, db, NULL, NULL);
        hy__tref64_conv_fwd(&c, hy__tview64_make(xd, cc->n, cc->cin, cc->h, cc->w), wd, cc->bias ? bd : NULL,
                            hy__tview64_make(yd, cc->n, cc->cout, oh, ow));
        hy__tref64_conv_bwd_data(&c, hy__tview64_make(dyd, cc->n, cc->cout, oh, ow), wd,
                                 hy__tview64_make(dxd, cc->n, cc->cin, cc->h, cc->w), 0);
        hy__tref64_conv_bwd_weight(&c, hy__tview64_make(xd, cc->n, cc->cin, cc->h, cc->w),
                                   hy__tview64_make(dyd, cc->n, cc->cout, oh, ow), dwd, dbd);
        EXPECT_L2(y, yd, ny, "conv_fwd");
        EXPECT_L2(dx, dxd, nx, "conv_bwd_data");
        EXPECT_L2(dw, dwd, nw, "conv_bwd_weight dw");
        EXPECT_L2(db, dbd, (size_t)cc->cout, "conv_bwd_weight db");
        /* and the inference reference (independent code) agrees on the forward */
        hy__conv2d_desc d = {.cin = c.cin, .cout = c.cout, .kh = c.k, .kw = c.k, .stride = c.stride, .pad = c.pad,
                             .act = HY_ACT_NONE, .groups = 1};
        float *yi = fnew(ny);
        for (int n = 0; n < cc->n; n++)
            hy__ref_conv2d(&d, x + (size_t)n * cc->cin * cc->h * cc->w, cc->h, cc->w, w, cc->bias ? b : NULL, NULL,
                           yi + (size_t)n * cc->cout * oh * ow);
        EXPECT_L2(yi, yd, ny, "inference ref conv vs train ref");
    }
    /* bn_act: train / eval x none / silu, with add */
    for (int train = 0; train <= 1; train++)
        for (int act = HY_ACT_NONE; act <= HY_ACT_SILU; act++) {
            enum { N = 3, C = 5, H = 9, W = 8 };
            const size_t ne = (size_t)N * C * H * W;
            float *z = frand_new(ne, -2, 3), *g = frand_new(C, 0.5, 1.5), *bt = frand_new(C, -0.5, 0.5);
            float *rm = frand_new(C, -0.5, 0.5), *rv = frand_new(C, 0.5, 2), *add = frand_new(ne, -1, 1);
            float *dy = frand_new(ne, -1, 1), *y = fnew(ne), *dz = fnew(ne), *mean = fnew(C), *is = fnew(C);
            float *dg = fnew(C), *db = fnew(C);
            double *zd = widen(z, ne), *gd = widen(g, C), *btd = widen(bt, C), *rmd = widen(rm, C), *rvd = widen(rv, C);
            double *addd = widen(add, ne), *dyd = widen(dy, ne), *yd = dnew(ne), *dzd = dnew(ne), *meand = dnew(C);
            double *isd = dnew(C), *dgd = dnew(C), *dbd = dnew(C);
            hy__tview av = hy__tview_make(add, N, C, H, W);
            hy__tview64 avd = hy__tview64_make(addd, N, C, H, W);
            T->bn_act_fwd(hy__tview_make(z, N, C, H, W), g, bt, rm, rv, 0.03f, 1e-3f, train, act, &av,
                          hy__tview_make(y, N, C, H, W), mean, is, NULL);
            T->bn_act_bwd(hy__tview_make(z, N, C, H, W), hy__tview_make(dy, N, C, H, W), g, bt, mean, is, train, act,
                          hy__tview_make(dz, N, C, H, W), dg, db, NULL);
            hy__tref64_bn_act_fwd(hy__tview64_make(zd, N, C, H, W), gd, btd, rmd, rvd, 0.03, 1e-3, train, act, &avd,
                                  hy__tview64_make(yd, N, C, H, W), meand, isd);
            hy__tref64_bn_act_bwd(hy__tview64_make(zd, N, C, H, W), hy__tview64_make(dyd, N, C, H, W), gd, btd,
                                  meand, isd, train, act, hy__tview64_make(dzd, N, C, H, W), dgd, dbd);
            EXPECT_L2(y, yd, ne, "bn_act_fwd y");
            EXPECT_L2(mean, meand, C, "bn_act_fwd mean");
            EXPECT_L2(is, isd, C, "bn_act_fwd invstd");
            EXPECT_L2(rm, rmd, C, "bn_act_fwd running mean");
            EXPECT_L2(rv, rvd, C, "bn_act_fwd running var");
            EXPECT_L2(dz, dzd, ne, "bn_act_bwd dz");
            EXPECT_L2(dg, dgd, C, "bn_act_bwd dgamma");
            EXPECT_L2(db, dbd, C, "bn_act_bwd dbeta");
        }
    /* maxpool k 5, upsample, copy (acc) */
    {
        enum { N = 2, C = 4, H = 9, W = 7 };
        const size_t ne = (size_t)N * C * H * W;
        float *x = frand_new(ne, -1, 1), *dy = frand_new(ne, -1, 1), *y = fnew(ne), *dx = frand_new(ne, -1, 1);
        double *xd = widen(x, ne), *dyd = widen(dy, ne), *yd = dnew(ne), *dxd = widen(dx, ne);
        T->maxpool_fwd(hy__tview_make(x, N, C, H, W), 5, hy__tview_make(y, N, C, H, W), NULL);
        T->maxpool_bwd(hy__tview_make(x, N, C, H, W), hy__tview_make(dy, N, C, H, W), 5,
                       hy__tview_make(dx, N, C, H, W), 1, NULL);
        hy__tref64_maxpool_fwd(hy__tview64_make(xd, N, C, H, W), 5, hy__tview64_make(yd, N, C, H, W));
        hy__tref64_maxpool_bwd(hy__tview64_make(xd, N, C, H, W), hy__tview64_make(dyd, N, C, H, W), 5,
                               hy__tview64_make(dxd, N, C, H, W), 1);
        EXPECT_L2(y, yd, ne, "maxpool_fwd");
        EXPECT_L2(dx, dxd, ne, "maxpool_bwd");
        float *u = fnew(4 * ne), *du = frand_new(4 * ne, -1, 1), *gx = fnew(ne);
        double *ud = dnew(4 * ne), *dud = widen(du, 4 * ne), *gxd = dnew(ne);
        T->upsample2x_fwd(hy__tview_make(x, N, C, H, W), hy__tview_make(u, N, C, 2 * H, 2 * W), NULL);
        T->upsample2x_bwd(hy__tview_make(du, N, C, 2 * H, 2 * W), hy__tview_make(gx, N, C, H, W), 0, NULL);
        hy__tref64_upsample2x_fwd(hy__tview64_make(xd, N, C, H, W), hy__tview64_make(ud, N, C, 2 * H, 2 * W));
        hy__tref64_upsample2x_bwd(hy__tview64_make(dud, N, C, 2 * H, 2 * W), hy__tview64_make(gxd, N, C, H, W), 0);
        EXPECT_L2(u, ud, 4 * ne, "upsample2x_fwd");
        EXPECT_L2(gx, gxd, ne, "upsample2x_bwd");
        T->copy(hy__tview_make(dy, N, C, H, W), hy__tview_make(x, N, C, H, W), 1, NULL);
        hy__tref64_copy(hy__tview64_make(dyd, N, C, H, W), hy__tview64_make(xd, N, C, H, W), 1);
        EXPECT_L2(x, xd, ne, "copy acc");
    }
    printf("  worst float-vs-double relative L2: %.3g\n", worst_l2);
}

// --- views: channel slices of wider tensors ----------------------------------------------------

#define SENTINEL 1234.5f

/* A (n, c, h, w) view at channels [c0, c0 + c) of a (n, ctot, h, w) tensor whose other
 * channels hold SENTINEL; the view's values copied from dense (or SENTINEL when NULL). */
static hy__tview embed(const float *dense, int n, int c, int h, int w, int ctot, int c0) {
    const size_t plane = (size_t)h * w, tot = (size_t)n * ctot * plane;
    float *buf = fnew(tot);
    for (size_t i = 0; i < tot; i++) buf[i] = SENTINEL;
    hy__tview v = hy__tview_slice(hy__tview_make(buf, n, ctot, h, w), c0, c);
    if (dense)
        for (int b = 0; b < n; b++) memcpy(v.d + b * v.bs, dense + (size_t)b * c * plane, (size_t)c * plane * 4);
    return v;
}
/* 1 when the view holds dense bit for bit and the channels around it are untouched. */
static int same_embedded(hy__tview v, const float *dense, int ctot, int c0) {
    const size_t plane = (size_t)v.h * v.w;
    const float *buf = v.d - (size_t)c0 * plane;
    for (int b = 0; b < v.n; b++)
        for (int c = 0; c < ctot; c++)
            for (size_t i = 0; i < plane; i++) {
                const float got = buf[((size_t)b * ctot + c) * plane + i];
                if (c < c0 || c >= c0 + v.c) {
                    if (memcmp(&got, &(float){SENTINEL}, 4)) return 0;
                } else if (memcmp(&got, &dense[((size_t)b * v.c + c - c0) * plane + i], 4)) {
                    return 0;
                }
            }
    return 1;
}

HY_TEST(every_op_on_channel_slices) {
    pool_reset();
    const hy__train_ops *T = &hy__train_ops_ref;
    enum { N = 2, CI = 3, CO = 4, H = 7, W = 6 };
    const size_t ni = (size_t)N * CI * H * W;
    /* conv k 3 s 2 with bias: x, y, dy, dx slices */
    {
        hy__tconv c = {CI, CO, 3, 2, 1};
        const int oh = hy__conv_out(H, 3, 2, 1), ow = hy__conv_out(W, 3, 2, 1);
        const size_t no = (size_t)N * CO * oh * ow, nw = (size_t)CO * CI * 9;
        float *x = frand_new(ni, -1, 1), *w = frand_new(nw, -1, 1), *b = frand_new(CO, -1, 1);
        float *dy = frand_new(no, -1, 1);
        float *y = fnew(no), *dx = frand_new(ni, -1, 1), *dw = fnew(nw), *db = fnew(CO);
        float *dw2 = fnew(nw), *db2 = fnew(CO);
        hy__tview xv = embed(x, N, CI, H, W, CI + 3, 2), yv = embed(NULL, N, CO, oh, ow, CO + 2, 1);
        hy__tview dyv = embed(dy, N, CO, oh, ow, CO + 1, 1), dxv = embed(dx, N, CI, H, W, CI + 2, 0);
        T->conv_fwd(&c, hy__tview_make(x, N, CI, H, W), w, b, hy__tview_make(y, N, CO, oh, ow), NULL, NULL);
        T->conv_fwd(&c, xv, w, b, yv, NULL, NULL);
        ASSERT_TRUE(same_embedded(yv, y, CO + 2, 1));
        T->conv_bwd_data(&c, hy__tview_make(dy, N, CO, oh, ow), w, hy__tview_make(dx, N, CI, H, W), 1, NULL, NULL);
        T->conv_bwd_data(&c, dyv, w, dxv, 1, NULL, NULL);
        ASSERT_TRUE(same_embedded(dxv, dx, CI + 2, 0));
        T->conv_bwd_weight(&c, hy__tview_make(x, N, CI, H, W), hy__tview_make(dy, N, CO, oh, ow), dw, db, NULL, NULL);
        T->conv_bwd_weight(&c, xv, dyv, dw2, db2, NULL, NULL);
        ASSERT_TRUE(!memcmp(dw, dw2, nw * 4) && !memcmp(db, db2, CO * 4));
        ASSERT_TRUE(same_embedded(xv, x, CI + 3, 2) && same_embedded(dyv, dy, CO + 1, 1)); /* inputs intact */
    }
    /* bn_act train, silu, add: z, add, y, dy, dz slices */
    {
        float *z = frand_new(ni, -1, 2), *add = frand_new(ni, -1, 1), *dy = frand_new(ni, -1, 1);
        float *g = frand_new(CI, 0.5, 1.5), *bt = frand_new(CI, -0.5, 0.5);
        float rm[CI] = {0}, rv[CI] = {1, 1, 1}, rm2[CI] = {0}, rv2[CI] = {1, 1, 1};
        float mean[CI], is[CI], mean2[CI], is2[CI], dg[CI] = {0}, db[CI] = {0}, dg2[CI] = {0}, db2[CI] = {0};
        float *y = fnew(ni), *dz = fnew(ni);
        hy__tview zv = embed(z, N, CI, H, W, CI + 1, 1), av = embed(add, N, CI, H, W, CI + 2, 2);
        hy__tview yv = embed(NULL, N, CI, H, W, CI + 2, 1), dyv = embed(dy, N, CI, H, W, CI + 3, 0);
        hy__tview dzv = embed(NULL, N, CI, H, W, CI + 1, 1), ad = hy__tview_make(add, N, CI, H, W);
        T->bn_act_fwd(hy__tview_make(z, N, CI, H, W), g, bt, rm, rv, 0.03f, 1e-3f, 1, HY_ACT_SILU, &ad,
                      hy__tview_make(y, N, CI, H, W), mean, is, NULL);
        T->bn_act_fwd(zv, g, bt, rm2, rv2, 0.03f, 1e-3f, 1, HY_ACT_SILU, &av, yv, mean2, is2, NULL);
        ASSERT_TRUE(same_embedded(yv, y, CI + 2, 1));
        ASSERT_TRUE(!memcmp(mean, mean2, sizeof mean) && !memcmp(is, is2, sizeof is));
        ASSERT_TRUE(!memcmp(rm, rm2, sizeof rm) && !memcmp(rv, rv2, sizeof rv));
        T->bn_act_bwd(hy__tview_make(z, N, CI, H, W), hy__tview_make(dy, N, CI, H, W), g, bt, mean, is, 1,
                      HY_ACT_SILU, hy__tview_make(dz, N, CI, H, W), dg, db, NULL);
        T->bn_act_bwd(zv, dyv, g, bt, mean, is, 1, HY_ACT_SILU, dzv, dg2, db2, NULL);
        ASSERT_TRUE(same_embedded(dzv, dz, CI + 1, 1));
        ASSERT_TRUE(!memcmp(dg, dg2, sizeof dg) && !memcmp(db, db2, sizeof db));
    }
    /* maxpool k 5, upsample, copy */
    {
        float *x = frand_new(ni, -1, 1), *dy = frand_new(ni, -1, 1), *y = fnew(ni), *dx = frand_new(ni, -1, 1);
        hy__tview xv = embed(x, N, CI, H, W, CI + 1, 1), yv = embed(NULL, N, CI, H, W, CI + 2, 2);
        hy__tview dyv = embed(dy, N, CI, H, W, CI + 2, 0), dxv = embed(dx, N, CI, H, W, CI + 1, 0);
        T->maxpool_fwd(hy__tview_make(x, N, CI, H, W), 5, hy__tview_make(y, N, CI, H, W), NULL);
        T->maxpool_fwd(xv, 5, yv, NULL);
        ASSERT_TRUE(same_embedded(yv, y, CI + 2, 2));
        T->maxpool_bwd(hy__tview_make(x, N, CI, H, W), hy__tview_make(dy, N, CI, H, W), 5,
                       hy__tview_make(dx, N, CI, H, W), 1, NULL);
        T->maxpool_bwd(xv, dyv, 5, dxv, 1, NULL);
        ASSERT_TRUE(same_embedded(dxv, dx, CI + 1, 0));

        float *u = fnew(4 * ni), *du = frand_new(4 * ni, -1, 1), *gx = fnew(ni);
        hy__tview uv = embed(NULL, N, CI, 2 * H, 2 * W, CI + 1, 1), duv = embed(du, N, CI, 2 * H, 2 * W, CI + 2, 1);
        hy__tview gxv = embed(NULL, N, CI, H, W, CI + 3, 3);
        T->upsample2x_fwd(hy__tview_make(x, N, CI, H, W), hy__tview_make(u, N, CI, 2 * H, 2 * W), NULL);
        T->upsample2x_fwd(xv, uv, NULL);
        ASSERT_TRUE(same_embedded(uv, u, CI + 1, 1));
        T->upsample2x_bwd(hy__tview_make(du, N, CI, 2 * H, 2 * W), hy__tview_make(gx, N, CI, H, W), 0, NULL);
        T->upsample2x_bwd(duv, gxv, 0, NULL);
        ASSERT_TRUE(same_embedded(gxv, gx, CI + 3, 3));

        float *cp = frand_new(ni, -1, 1);
        hy__tview cv = embed(cp, N, CI, H, W, CI + 2, 1);
        T->copy(hy__tview_make(x, N, CI, H, W), hy__tview_make(cp, N, CI, H, W), 1, NULL);
        T->copy(xv, cv, 1, NULL);
        ASSERT_TRUE(same_embedded(cv, cp, CI + 2, 1));
        T->copy(xv, cv, 0, NULL);
        ASSERT_TRUE(same_embedded(cv, x, CI + 2, 1));
    }
}

HY_TEST(zz_report_worst_gradcheck_errors) {
    pool_reset();
    for (int i = 0; i < OP_N; i++) printf("  gradcheck worst relative error %-13s %.3g\n", op_names[i], worst[i]);
}

HY_TEST_MAIN()
