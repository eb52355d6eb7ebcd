/* Fast CPU training kernels (ops/cpu/train_cpu.c) against the double reference
 * (ops/ref/train_ref.h, hy__tref64_*): every member of hy__train_ops_cpu, relative L2 error
 * <= 1e-5 (worst printed), on yolov8n's real conv shapes at 320 and on odd ones (k 1/3/5,
 * strides 1/2, sizes not multiples of any tile), channel-slice views (bs > c h w: nothing
 * outside the slice may change), acc 0 and 1, 1 and 2 threads, every micro-kernel ISA this
 * machine runs. Max-pool ties (and NaN / -inf) must route exactly as the reference. The conv
 * GFLOP/s printed are figures, not assertions (bench/bench_train_ops.c measures them
 * properly). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "core/core.h"
#include "hy_test.h"
#include "ops/cpu/ops_cpu.h"
#include "ops/op.h"
#include "ops/ref/train_ref.h"
#include "ops/train_op.h"

void hy__train_cpu_force_isa(int isa); /* train_cpu.c, for tests */

#define TOL 1e-5

static const hy__train_ops *ops = &hy__train_ops_cpu;

#define TT_SEED 0x243F6A8885A308D3ull
#include "train_test_util.h"

static hy__tview tnull(void) {
    hy__tview v = { 0 };
    return v;
}

// --- convs -------------------------------------------------------------------------------

static double worst_conv;

typedef struct conv_res {
    double err[4]; /* fwd, bwd_data acc 0, bwd_data acc 1, bwd_weight (+ db) */
    double ms[3];  /* fwd, bwd_data (acc 0), bwd_weight */
} conv_res;

static conv_res conv_case(const hy__tconv *c, int n, int h, int w, int bias, int view, int nth) {
    conv_res r = { { 0 }, { 0 } };
    hy__threadpool *tp = pool_of(nth);
    const int oh = hy__conv_out(h, c->k, c->stride, c->pad), ow = hy__conv_out(w, c->k, c->stride, c->pad);
    const int K = c->cin * c->k * c->k;
    const double ws_ = 1.0 / sqrt((double)K);
    T x = tnew(n, c->cin, h, w, view, -1, 1), wt = vec(c->cout * K, -ws_, ws_);
    T b = vec(c->cout, -0.5, 0.5), y = tnew(n, c->cout, oh, ow, view, -1, 1);
    T dy = tnew(n, c->cout, oh, ow, view, -1, 1), dx = tnew(n, c->cin, h, w, view, -1, 1);
    T dw = vec(c->cout * K, -0.1, 0.1), db = vec(c->cout, -0.1, 0.1);
    void *ws = talloc(ops->conv_ws(c, n, h, w, nth));

    double t0 = hy__now_ms();
    ops->conv_fwd(c, tf(x), wt.f, bias ? b.f : NULL, tf(y), ws, tp);
    r.ms[0] = hy__now_ms() - t0;
    hy__tref64_conv_fwd(c, td(x), wt.d, bias ? b.d : NULL, td(y));
    r.err[0] = terr(y);

    T dx1 = tnew(n, c->cin, h, w, view, -1, 1);
    t0 = hy__now_ms();
    ops->conv_bwd_data(c, tf(dy), wt.f, tf(dx), 0, ws, tp);
    r.ms[1] = hy__now_ms() - t0;
    hy__tref64_conv_bwd_data(c, td(dy), wt.d, td(dx), 0);
    r.err[1] = terr(dx);
    ops->conv_bwd_data(c, tf(dy), wt.f, tf(dx1), 1, ws, tp);
    hy__tref64_conv_bwd_data(c, td(dy), wt.d, td(dx1), 1);
    r.err[2] = terr(dx1);

    t0 = hy__now_ms();
    ops->conv_bwd_weight(c, tf(x), tf(dy), dw.f, bias ? db.f : NULL, ws, tp);
    r.ms[2] = hy__now_ms() - t0;
    hy__tref64_conv_bwd_weight(c, td(x), td(dy), dw.d, bias ? db.d : NULL);
    r.err[3] = HY_MAX(terr(dw), terr(db));
    for (int i = 0; i < 4; i++) worst_conv = HY_MAX(worst_conv, r.err[i]);
    return r;
}

#define CHECK_CONV(r, what)                                                                      \
    do {                                                                                         \
        for (int i_ = 0; i_ < 4; i_++)                                                           \
            if (!((r).err[i_] <= TOL))                                                           \
                HY_FAIL_("%s: %s error %.3g > %g", what,                                         \
                         (const char *[]){ "fwd", "bwd_data", "bwd_data acc", "bwd_weight" }[i_], \
                         (r).err[i_], TOL);                                                      \
    } while (0)

HY_TEST(conv_odd_shapes_every_isa) {
    static const struct {
        int cin, cout, k, s, pad, n, h, w, bias;
    } cs[] = {
        { 5, 7, 3, 2, 1, 2, 13, 11, 0 },  { 3, 5, 5, 1, 2, 2, 9, 7, 1 },   { 7, 3, 1, 1, 0, 3, 5, 3, 1 },
        { 6, 9, 1, 2, 0, 2, 9, 8, 0 },    { 4, 10, 3, 1, 1, 1, 1, 1, 1 }, { 1, 1, 3, 1, 1, 2, 6, 5, 0 },
        { 17, 13, 3, 1, 1, 2, 15, 17, 1 }, { 9, 33, 1, 1, 0, 2, 7, 9, 1 }, { 33, 9, 3, 2, 1, 2, 10, 10, 0 },
        { 3, 16, 3, 2, 1, 1, 40, 37, 0 }, { 20, 70, 1, 1, 0, 2, 3, 3, 1 }, { 400, 5, 1, 1, 0, 1, 4, 5, 1 },
    };
    double worst = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        for (size_t i = 0; i < HY_ARRAY_LEN(cs); i++)
            for (int nth = 1; nth <= 2; nth++)
                for (int view = 0; view <= 1; view++) {
                    pool_reset();
                    const hy__tconv c = { cs[i].cin, cs[i].cout, cs[i].k, cs[i].s, cs[i].pad };
                    conv_res r = conv_case(&c, cs[i].n, cs[i].h, cs[i].w, cs[i].bias, view, nth);
                    char what[128];
                    snprintf(what, sizeof what, "%s %d->%d k%d s%d p%d n%d %dx%d view %d threads %d",
                             hy__cpu_isa_name(isa), c.cin, c.cout, c.k, c.stride, c.pad, cs[i].n,
                             cs[i].h, cs[i].w, view, nth);
                    for (int j = 0; j < 4; j++) worst = HY_MAX(worst, r.err[j]);
                    hy__train_cpu_force_isa(-1);
                    CHECK_CONV(r, what);
                    hy__train_cpu_force_isa(isa);
                }
    }
    hy__train_cpu_force_isa(-1);
    pool_reset();
    printf("  odd shapes, every ISA: worst relative L2 %.3g\n", worst);
}

/* yolov8n's conv shapes at 320 (n images); GFLOP/s printed. */
HY_TEST(conv_yolov8n_shapes) {
    static const struct {
        const char *name;
        int cin, cout, k, s, hw, bias;
    } cs[] = {
        { "stem 3->16 k3 s2 @320", 3, 16, 3, 2, 320, 0 }, { "16->32 k3 s2 @160", 16, 32, 3, 2, 160, 0 },
        { "C2f.m 16->16 k3 @80", 16, 16, 3, 1, 80, 0 },   { "32->32 k3 @80", 32, 32, 3, 1, 80, 0 },
        { "C2f.cv1 64->64 k1 @40", 64, 64, 1, 1, 40, 0 }, { "80->80 k3 @40", 80, 80, 3, 1, 40, 0 },
        { "256->256 k1 @10", 256, 256, 1, 1, 10, 0 },     { "128->256 k3 s2 @20", 128, 256, 3, 2, 20, 0 },
        { "Detect 64->64 k1 +b @40", 64, 64, 1, 1, 40, 1 },
    };
    const int sanitized = getenv("HY_TEST_SANITIZED") != NULL;
    const int n = sanitized ? 1 : 2;
    double worst = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(cs); i++)
        for (int nth = 1; nth <= 2; nth++) {
            pool_reset();
            const hy__tconv c = { cs[i].cin, cs[i].cout, cs[i].k, cs[i].s, cs[i].k / 2 };
            conv_res r = conv_case(&c, n, cs[i].hw, cs[i].hw, cs[i].bias, i % 2 == 1, nth);
            const int o = hy__conv_out(cs[i].hw, c.k, c.stride, c.pad);
            const double gf = 2.0 * n * c.cout * c.cin * c.k * c.k * (double)o * o * 1e-6; // per ms
            printf("  %-26s n%d t%d  err fwd %.2g bd %.2g/%.2g bw %.2g  GFLOP/s fwd %.1f bd %.1f bw %.1f\n",
                   cs[i].name, n, nth, r.err[0], r.err[1], r.err[2], r.err[3], gf / r.ms[0], gf / r.ms[1],
                   gf / r.ms[2]);
            for (int j = 0; j < 4; j++) worst = HY_MAX(worst, r.err[j]);
            CHECK_CONV(r, cs[i].name);
        }
    pool_reset();
    printf("  yolov8n shapes: worst relative L2 %.3g (all conv cases so far %.3g)\n", worst, worst_conv);
}

/* A long batch sum: dw over 16 images of 80x80 (102400 pixels per weight). */
HY_TEST(conv_bwd_weight_batch16_sum) {
    if (getenv("HY_TEST_SANITIZED")) HY_SKIP("slow under sanitizers (the other cases cover the code)");
    pool_reset();
    const hy__tconv c = { 16, 16, 3, 1, 1 };
    conv_res r = conv_case(&c, 16, 80, 80, 1, 0, 2);
    pool_reset();
    printf("  16->16 k3 @80 n16: bw error %.3g\n", r.err[3]);
    CHECK_CONV(r, "n16");
}

// --- BatchNorm + act ------------------------------------------------------------------------

HY_TEST(bn_act_fwd_bwd) {
    static const int shp[][4] = { { 2, 5, 7, 3 }, { 4, 16, 10, 10 }, { 1, 3, 1, 1 }, { 3, 33, 9, 31 } };
    double worst = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        for (size_t si = 0; si < HY_ARRAY_LEN(shp); si++)
            for (int cfg = 0; cfg < 16; cfg++) {
                const int train = cfg & 1, act = cfg & 2 ? HY_ACT_SILU : HY_ACT_NONE, use_add = (cfg >> 2) & 1;
                const int view = (cfg >> 3) & 1, nth = 1 + (int)((cfg + si) & 1);
                const int n = shp[si][0], c = shp[si][1], h = shp[si][2], w = shp[si][3];
                if (train && n * h * w < 2) continue;
                pool_reset();
                T z = tnew(n, c, h, w, view, -3, 4), add = tnew(n, c, h, w, view, -1, 1);
                T y = tnew(n, c, h, w, view, 0, 1), dy = tnew(n, c, h, w, view, -1, 1);
                T dz = tnew(n, c, h, w, view, 0, 1);
                T g = vec(c, 0.5, 1.5), bt = vec(c, -0.5, 0.5), rm = vec(c, -0.5, 0.5), rv = vec(c, 0.5, 2);
                T mean = vec(c, 0, 1), is = vec(c, 0, 1), dg = vec(c, -1, 1), dbt = vec(c, -1, 1);
                hy__tview af = tf(add);
                hy__tview64 ad = td(add);
                ops->bn_act_fwd(tf(z), g.f, bt.f, rm.f, rv.f, 0.03f, 1e-3f, train, act, use_add ? &af : NULL,
                                tf(y), mean.f, is.f, pool_of(nth));
                hy__tref64_bn_act_fwd(td(z), g.d, bt.d, rm.d, rv.d, (double)0.03f, (double)1e-3f, train, act,
                                      use_add ? &ad : NULL, td(y), mean.d, is.d);
                const double ef = HY_MAX(HY_MAX(terr(y), terr(mean)), HY_MAX(terr(is), HY_MAX(terr(rm), terr(rv))));
                // backward from the same saved statistics (the float ones, widened)
                for (int i = 0; i < c; i++) {
                    mean.d[i] = mean.f[i];
                    is.d[i] = is.f[i];
                }
                ops->bn_act_bwd(tf(z), tf(dy), g.f, bt.f, mean.f, is.f, train, act, tf(dz), dg.f, dbt.f, pool_of(nth));
                hy__tref64_bn_act_bwd(td(z), td(dy), g.d, bt.d, mean.d, is.d, train, act, td(dz), dg.d, dbt.d);
                const double eb = HY_MAX(terr(dz), HY_MAX(terr(dg), terr(dbt)));
                // dz.d == NULL: only the parameter gradients
                hy__tview none = tnull();
                ops->bn_act_bwd(tf(z), tf(dy), g.f, bt.f, mean.f, is.f, train, act, none, dg.f, dbt.f, pool_of(nth));
                hy__tview64 none64 = { 0 };
                hy__tref64_bn_act_bwd(td(z), td(dy), g.d, bt.d, mean.d, is.d, train, act, none64, dg.d, dbt.d);
                const double en = HY_MAX(terr(dg), terr(dbt));
                worst = HY_MAX(worst, HY_MAX(ef, HY_MAX(eb, en)));
                if (!(ef <= TOL && eb <= TOL && en <= TOL)) {
                    hy__train_cpu_force_isa(-1);
                    HY_FAIL_("%s shape %zu cfg %d: fwd %.3g bwd %.3g bwd(no dz) %.3g", hy__cpu_isa_name(isa), si,
                             cfg, ef, eb, en);
                }
            }
    }
    hy__train_cpu_force_isa(-1);
    pool_reset();
    printf("  bn_act: worst relative L2 %.3g\n", worst);
}

// --- max-pool, upsample, copy ----------------------------------------------------------------

/* values in {0, 1, 2, 3}: most windows hold tied maxima */
static void small_ints(T t) {
    const size_t tot = (size_t)t.n * t.ctot * t.h * t.w;
    for (size_t i = 0; i < tot; i++) t.d[i] = t.f[i] = (float)(int)urand(0, 4);
}

HY_TEST(maxpool_ties_nan_views) {
    static const int shp[][5] = { { 2, 3, 10, 10, 5 }, { 1, 4, 7, 13, 5 }, { 2, 2, 3, 2, 5 }, { 1, 3, 6, 6, 3 },
                                  { 2, 5, 20, 20, 5 } };
    for (size_t si = 0; si < HY_ARRAY_LEN(shp); si++)
        for (int cfg = 0; cfg < 8; cfg++) {
            const int view = cfg & 1, acc = (cfg >> 1) & 1, nth = 1 + ((cfg >> 2) & 1);
            const int n = shp[si][0], c = shp[si][1], h = shp[si][2], w = shp[si][3], k = shp[si][4];
            pool_reset();
            T x = tnew(n, c, h, w, view, -1, 1), y = tnew(n, c, h, w, view, 0, 1);
            T dy = tnew(n, c, h, w, view, -1, 1), dx = tnew(n, c, h, w, view, -1, 1);
            small_ints(x);
            if (si == 1) { // NaN and -inf: NaN takes the window; an all -inf window its first
                const size_t tot = (size_t)n * x.ctot * h * w;
                for (size_t i = 0; i < tot; i += 7) x.d[i] = x.f[i] = -INFINITY;
                x.d[5 * w + 3] = x.f[5 * w + 3] = NAN;
                x.d[w + 9] = x.f[w + 9] = NAN;
            }
            ops->maxpool_fwd(tf(x), k, tf(y), pool_of(nth));
            hy__tref64_maxpool_fwd(td(x), k, td(y));
            // forward: exact (NaN where the reference has NaN)
            const size_t tot = (size_t)n * y.ctot * h * w;
            for (size_t i = 0; i < tot; i++)
                if (!(y.f[i] == (float)y.d[i] || (isnan(y.f[i]) && isnan(y.d[i]))))
                    HY_FAIL_("shape %zu cfg %d: y[%zu] %g vs %g", si, cfg, i, y.f[i], y.d[i]);
            ops->maxpool_bwd(tf(x), tf(dy), k, tf(dx), acc, pool_of(nth));
            hy__tref64_maxpool_bwd(td(x), td(dy), k, td(dx), acc);
            const double e = terr(dx);
            if (!(e <= TOL)) HY_FAIL_("shape %zu cfg %d: dx error %.3g (a tie routed elsewhere)", si, cfg, e);
        }
    pool_reset();
}

HY_TEST(upsample_copy) {
    for (int cfg = 0; cfg < 8; cfg++) {
        const int view = cfg & 1, acc = (cfg >> 1) & 1, nth = 1 + ((cfg >> 2) & 1);
        pool_reset();
        const int n = 3, c = 5, h = 7, w = 6;
        T x = tnew(n, c, h, w, view, -1, 1), y = tnew(n, c, 2 * h, 2 * w, view, -1, 1);
        T dy = tnew(n, c, 2 * h, 2 * w, view, -1, 1), dx = tnew(n, c, h, w, view, -1, 1);
        T cp = tnew(n, c, h, w, !view, -1, 1);
        ops->upsample2x_fwd(tf(x), tf(y), pool_of(nth));
        hy__tref64_upsample2x_fwd(td(x), td(y));
        ops->upsample2x_bwd(tf(dy), tf(dx), acc, pool_of(nth));
        hy__tref64_upsample2x_bwd(td(dy), td(dx), acc);
        ops->copy(tf(x), tf(cp), acc, pool_of(nth));
        hy__tref64_copy(td(x), td(cp), acc);
        const double e = HY_MAX(terr(y), HY_MAX(terr(dx), terr(cp)));
        if (!(e <= TOL)) HY_FAIL_("cfg %d: error %.3g", cfg, e);
    }
    pool_reset();
}

// --- determinism ------------------------------------------------------------------------------

/* Every kernel must give bit-identical results for a given input, whatever the threads' timing
 * and however many threads run (training runs are seeded and reproducible). Each case runs all
 * the kernels on fixed inputs: once on 1 thread, then 5 times on a 2-thread pool while an extra
 * thread busy-spins on the same cores (the pool's threads then take work unevenly and in
 * varying order); all outputs must be memcmp-equal. */

static atomic_int spin_stop;
static void *spinner(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load(&spin_stop)) x++;
    return NULL;
}

typedef struct dcase {
    const char *name;
    int cin, cout, k, s, hw, n, bias;
} dcase;

/* All kernels on inputs drawn from a fixed seed; outputs (and the gradients accumulated onto
 * fixed starting values) appended to out; returns the float count. */
static size_t det_run(const dcase *dc, hy__threadpool *tp, float *out) {
    pool_reset();
    rng = 0x1234567ull + (uint64_t)dc->cin * 977 + (uint64_t)dc->hw;
    const hy__tconv c = { dc->cin, dc->cout, dc->k, dc->s, dc->k / 2 };
    const int n = dc->n, h = dc->hw, o = hy__conv_out(h, c.k, c.stride, c.pad), K = c.cin * c.k * c.k;
    const double wsc = 1.0 / sqrt((double)K);
    T x = tnew(n, c.cin, h, h, 0, -1, 1), wt = vec(c.cout * K, -wsc, wsc), b = vec(c.cout, -0.5, 0.5);
    T y = tnew(n, c.cout, o, o, 0, 0, 1), dy = tnew(n, c.cout, o, o, 0, -1, 1);
    T dx0 = tnew(n, c.cin, h, h, 0, -1, 1), dx1 = tnew(n, c.cin, h, h, 0, -1, 1);
    T dw = vec(c.cout * K, -0.1, 0.1), db = vec(c.cout, -0.1, 0.1);
    T add = tnew(n, c.cout, o, o, 0, -1, 1), yb = tnew(n, c.cout, o, o, 0, 0, 1), dz = tnew(n, c.cout, o, o, 0, 0, 1);
    T g = vec(c.cout, 0.5, 1.5), bt = vec(c.cout, -0.5, 0.5), rm = vec(c.cout, -0.5, 0.5), rv = vec(c.cout, 0.5, 2);
    T mean = vec(c.cout, 0, 1), is = vec(c.cout, 0, 1), dg = vec(c.cout, -1, 1), dbt = vec(c.cout, -1, 1);
    T py = tnew(n, c.cout, o, o, 0, 0, 1), pdx = tnew(n, c.cout, o, o, 0, -1, 1);
    T uy = tnew(n, c.cin, 2 * h, 2 * h, 0, 0, 1), udx = tnew(n, c.cin, h, h, 0, -1, 1);
    void *ws = talloc(ops->conv_ws(&c, n, h, h, 2));
    ops->conv_fwd(&c, tf(x), wt.f, dc->bias ? b.f : NULL, tf(y), ws, tp);
    ops->conv_bwd_data(&c, tf(dy), wt.f, tf(dx0), 0, ws, tp);
    ops->conv_bwd_data(&c, tf(dy), wt.f, tf(dx1), 1, ws, tp);
    ops->conv_bwd_weight(&c, tf(x), tf(dy), dw.f, dc->bias ? db.f : NULL, ws, tp);
    hy__tview av = tf(add);
    ops->bn_act_fwd(tf(y), g.f, bt.f, rm.f, rv.f, 0.03f, 1e-3f, 1, HY_ACT_SILU, &av, tf(yb), mean.f, is.f, tp);
    ops->bn_act_bwd(tf(y), tf(dy), g.f, bt.f, mean.f, is.f, 1, HY_ACT_SILU, tf(dz), dg.f, dbt.f, tp);
    ops->maxpool_fwd(tf(yb), 5, tf(py), tp);
    ops->maxpool_bwd(tf(yb), tf(dz), 5, tf(pdx), 1, tp);
    ops->upsample2x_fwd(tf(x), tf(uy), tp);
    ops->upsample2x_bwd(tf(uy), tf(udx), 1, tp);
    const T outs[] = { y, dx0, dx1, dw, db, yb, rm, rv, mean, is, dz, dg, dbt, py, pdx, uy, udx };
    size_t m = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(outs); i++) {
        const size_t cnt = (size_t)outs[i].n * outs[i].ctot * outs[i].h * outs[i].w;
        if (out) memcpy(out + m, outs[i].f, cnt * sizeof(float));
        m += cnt;
    }
    return m;
}

/* Index of the first differing float of a and b (m floats), or -1. */
static long first_diff(const float *a, const float *b, size_t m) {
    if (!memcmp(a, b, m * sizeof(float))) return -1;
    for (size_t i = 0; i < m; i++)
        if (memcmp(a + i, b + i, sizeof(float))) return (long)i;
    return 0;
}

HY_TEST(bitwise_reproducible_any_timing_and_threads) {
    const int sanitized = getenv("HY_TEST_SANITIZED") != NULL;
    static const dcase cs[] = {
        { "stem 3->16 k3 s2 @160", 3, 16, 3, 2, 160, 4, 0 }, { "16->32 k3 s2 @80", 16, 32, 3, 2, 80, 4, 0 },
        { "32->32 k3 @40", 32, 32, 3, 1, 40, 4, 0 },        { "64->64 k1 @40 +b", 64, 64, 1, 1, 40, 4, 1 },
        { "128->256 k3 s2 @20", 128, 256, 3, 2, 20, 8, 0 }, { "256->256 k1 @10", 256, 256, 1, 1, 10, 16, 0 },
    };
    hy__threadpool *tp = NULL;
    ASSERT_EQ(hy__threadpool_create(2, &tp), HY_OK);
    int bad = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(cs); i++) {
        dcase dc = cs[i];
        if (sanitized) dc.n = HY_MAX(1, dc.n / 4);
        const size_t m = det_run(&dc, NULL, NULL);
        float *ref = malloc(m * sizeof(float)), *cur = malloc(m * sizeof(float)), *r0 = malloc(m * sizeof(float));
        ASSERT_TRUE(ref && cur && r0);
        det_run(&dc, NULL, ref); // 1 thread
        int ndiff = 0, nvar = 0; // runs differing from 1 thread, from the first 2-thread run
        for (int run = 0; run < 6; run++) {
            pthread_t th;
            atomic_store(&spin_stop, 0);
            const int spin = run > 0 && pthread_create(&th, NULL, spinner, NULL) == 0;
            det_run(&dc, tp, cur);
            atomic_store(&spin_stop, 1);
            if (spin) pthread_join(th, NULL);
            if (run == 0) memcpy(r0, cur, m * sizeof(float));
            else nvar += first_diff(r0, cur, m) >= 0;
            const long d = first_diff(ref, cur, m);
            if (d >= 0) {
                if (!ndiff++)
                    printf("  %s: run %d (2 threads%s) differs from 1 thread at float %ld of %zu: %.9g vs %.9g\n",
                           dc.name, run, spin ? ", busy spinner" : "", d, m, cur[d], ref[d]);
            }
        }
        if (ndiff) bad++;
        printf("  %-22s n%d: of 6 runs on 2 threads %d differ from 1 thread, %d of 5 from the first\n", dc.name,
               dc.n, ndiff, nvar);
        free(r0);
        free(ref);
        free(cur);
    }
    pool_reset();
    hy__threadpool_free(tp);
    ASSERT_EQ(bad, 0);
}

HY_TEST(table_is_cpu_backend_train) {
    ASSERT_STREQ(hy__train_ops_cpu.name, "cpu");
    pool_done();
}

/* The packed GEMM paths (1x1 and strided convs) where every dimension has a tail: reductions
 * of several blocks (cin k k or cout > 256, added into the output block by block, acc on top),
 * M not a multiple of the tile rows, columns not a multiple of the tile width, every ISA. */
HY_TEST(conv_packed_gemm_block_edges) {
    static const struct {
        int cin, cout, k, s, pad, n, h, w, bias;
    } cs[] = {
        { 5, 301, 1, 1, 0, 2, 5, 7, 1 },  { 517, 6, 1, 1, 0, 1, 3, 9, 1 }, { 70, 9, 3, 2, 1, 2, 7, 9, 0 },
        { 9, 270, 3, 2, 1, 1, 6, 5, 1 }, { 300, 300, 1, 1, 0, 1, 2, 13, 0 },
    };
    double worst = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        for (size_t i = 0; i < HY_ARRAY_LEN(cs); i++)
            for (int nth = 1; nth <= 2; nth++) {
                pool_reset();
                const hy__tconv c = { cs[i].cin, cs[i].cout, cs[i].k, cs[i].s, cs[i].pad };
                conv_res r = conv_case(&c, cs[i].n, cs[i].h, cs[i].w, cs[i].bias, (int)(i + nth) % 2, nth);
                char what[128];
                snprintf(what, sizeof what, "%s %d->%d k%d s%d n%d %dx%d threads %d", hy__cpu_isa_name(isa),
                         c.cin, c.cout, c.k, c.stride, cs[i].n, cs[i].h, cs[i].w, nth);
                for (int j = 0; j < 4; j++) worst = HY_MAX(worst, r.err[j]);
                hy__train_cpu_force_isa(-1);
                CHECK_CONV(r, what);
                hy__train_cpu_force_isa(isa);
            }
    }
    hy__train_cpu_force_isa(-1);
    pool_reset();
    pool_done();
    printf("  packed GEMM block edges, every ISA: worst relative L2 %.3g\n", worst);
}

HY_TEST_MAIN()
