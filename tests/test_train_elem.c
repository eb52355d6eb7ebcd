/* Non-conv CPU training kernels (ops/cpu/train_elem.c, arch/x86/train_elem_avx2.c) on every ISA
 * this machine runs: BatchNorm + act against the double reference (relative L2 <= 1e-5) with
 * row tails, large channel means (shifted statistics), views, residual add, train 0/1, dz NULL,
 * 1 and 2 threads; max-pool bitwise equal to the float reference table (same summation order:
 * routing must be exact) for k 1..7, ties, NaN, +-inf, planes on the padded fast path and on the
 * big-plane path; every kernel bitwise the same on 1 and 2 threads and across runs. */
#include <math.h>
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

#define TT_SEED 0x9E3779B97F4A7C15ull
#include "train_test_util.h"


HY_TEST(bn_every_isa_vs_double_ref) {
    /* hw: 21 and 117 (tails of 8 and 16), 1600, 1 (5 values a channel); means near 0 and near 300 (std ~1) */
    static const int shp[][4] = { { 2, 5, 7, 3 }, { 3, 4, 9, 13 }, { 2, 3, 40, 40 }, { 5, 2, 1, 1 }, { 4, 6, 5, 5 } };
    double worst = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        for (size_t si = 0; si < HY_ARRAY_LEN(shp); si++)
            for (int cfg = 0; cfg < 64; cfg++) {
                const int train = cfg & 1, act = cfg & 2 ? HY_ACT_SILU : HY_ACT_NONE, use_add = (cfg >> 2) & 1;
                const int view = (cfg >> 3) & 1, nth = 1 + ((cfg >> 4) & 1), far = (cfg >> 5) & 1;
                const int n = shp[si][0], c = shp[si][1], h = shp[si][2], w = shp[si][3];
                pool_reset();
                const double z0 = far ? 300 : 0;
                T z = tnew(n, c, h, w, view, z0 - 2, z0 + 2.5), add = tnew(n, c, h, w, view, -1, 1);
                T y = tnew(n, c, h, w, view, 0, 1), dy = tnew(n, c, h, w, view, -1, 1);
                T dz = tnew(n, c, h, w, view, 0, 1);
                T g = vec(c, 0.5, 1.5), bt = vec(c, -0.5, 0.5), rm = vec(c, z0 - 0.5, z0 + 0.5), rv = vec(c, 0.5, 2);
                T mean = vec(c, 0, 1), is = vec(c, 0, 1), dg = vec(c, -1, 1), dbt = vec(c, -1, 1);
                hy__tview af = tf(add);
                hy__tview64 ad = td(add);
                ops->bn_act_fwd(tf(z), g.f, bt.f, rm.f, rv.f, 0.1f, 1e-3f, train, act, use_add ? &af : NULL, tf(y),
                                mean.f, is.f, pool_of(nth));
                hy__tref64_bn_act_fwd(td(z), g.d, bt.d, rm.d, rv.d, (double)0.1f, (double)1e-3f, train, act,
                                      use_add ? &ad : NULL, td(y), mean.d, is.d);
                double e = HY_MAX(HY_MAX(terr(y), terr(mean)), HY_MAX(terr(is), HY_MAX(terr(rm), terr(rv))));
                for (int i = 0; i < c; i++) {
                    mean.d[i] = mean.f[i];
                    is.d[i] = is.f[i];
                }
                ops->bn_act_bwd(tf(z), tf(dy), g.f, bt.f, mean.f, is.f, train, act, tf(dz), dg.f, dbt.f, pool_of(nth));
                hy__tref64_bn_act_bwd(td(z), td(dy), g.d, bt.d, mean.d, is.d, train, act, td(dz), dg.d, dbt.d);
                e = HY_MAX(e, HY_MAX(terr(dz), HY_MAX(terr(dg), terr(dbt))));
                const hy__tview none = { 0 };
                const hy__tview64 none64 = { 0 };
                ops->bn_act_bwd(tf(z), tf(dy), g.f, bt.f, mean.f, is.f, train, act, none, dg.f, dbt.f, pool_of(nth));
                hy__tref64_bn_act_bwd(td(z), td(dy), g.d, bt.d, mean.d, is.d, train, act, none64, dg.d, dbt.d);
                e = HY_MAX(e, HY_MAX(terr(dg), terr(dbt)));
                worst = HY_MAX(worst, e);
                if (!(e <= TOL)) {
                    hy__train_cpu_force_isa(-1);
                    HY_FAIL_("%s shape %zu cfg %d: relative L2 %.3g", hy__cpu_isa_name(isa), si, cfg, e);
                }
            }
    }
    hy__train_cpu_force_isa(-1);
    pool_reset();
    printf("  bn_act, every ISA: worst relative L2 %.3g\n", worst);
}

/* values in {0..3} (ties everywhere); kind 1: also NaN, -inf runs (all -inf windows), +inf */
static void pool_values(T t, int kind) {
    for (size_t i = 0; i < t.tot; i++) t.d[i] = t.f[i] = (float)(int)urand(0, 4);
    if (!kind) return;
    const size_t hw = (size_t)t.h * t.w;
    for (size_t p = 0; p < t.tot / hw; p++) {
        float *f = t.f + p * hw;
        for (size_t i = 0; i < hw; i++)
            if (urand(0, 1) < 0.02) f[i] = NAN;
            else if (urand(0, 1) < 0.02) f[i] = INFINITY;
        for (int y = 0; y < HY_MIN(t.h, 4); y++) // top-left corner: -inf windows
            for (int x = 0; x < HY_MIN(t.w, 5); x++) f[(size_t)y * t.w + x] = -INFINITY;
    }
    for (size_t i = 0; i < t.tot; i++) t.d[i] = t.f[i];
}

HY_TEST(maxpool_every_isa_bitwise_as_float_ref) {
    /* 10 x 10, 20 x 20: SPPF at 320 / 640; 48 x 48 with k 5: over the padded-plane limit */
    static const int shp[][5] = { { 2, 3, 10, 10, 5 }, { 2, 2, 20, 20, 5 }, { 1, 3, 7, 13, 3 }, { 1, 2, 6, 5, 7 },
                                  { 1, 2, 9, 4, 1 },    { 1, 2, 48, 48, 5 }, { 2, 2, 3, 1, 5 } };
    int nfast = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        for (size_t si = 0; si < HY_ARRAY_LEN(shp); si++)
            for (int cfg = 0; cfg < 16; cfg++) {
                const int view = cfg & 1, acc = (cfg >> 1) & 1, nth = 1 + ((cfg >> 2) & 1), kind = (cfg >> 3) & 1;
                const int n = shp[si][0], c = shp[si][1], h = shp[si][2], w = shp[si][3], k = shp[si][4];
                nfast += (h + k - 1) * (w + k - 1) <= 2048;
                pool_reset();
                T x = tnew(n, c, h, w, view, 0, 1), y = tnew(n, c, h, w, view, 0, 1), yr = y;
                T dy = tnew(n, c, h, w, view, -1, 1), dx = tnew(n, c, h, w, view, -1, 1), dxr = dx;
                yr.f = talloc(y.tot * sizeof(float));
                dxr.f = talloc(dx.tot * sizeof(float));
                memcpy(yr.f, y.f, y.tot * sizeof(float));
                memcpy(dxr.f, dx.f, dx.tot * sizeof(float));
                pool_values(x, kind);
                ops->maxpool_fwd(tf(x), k, tf(y), pool_of(nth));
                hy__train_ops_ref.maxpool_fwd(tf(x), k, tf(yr), NULL);
                ops->maxpool_bwd(tf(x), tf(dy), k, tf(dx), acc, pool_of(nth));
                hy__train_ops_ref.maxpool_bwd(tf(x), tf(dy), k, tf(dxr), acc, NULL);
                const int fe = memcmp(y.f, yr.f, y.tot * sizeof(float)) != 0;
                const int be = memcmp(dx.f, dxr.f, dx.tot * sizeof(float)) != 0;
                if (fe || be) {
                    hy__train_cpu_force_isa(-1);
                    HY_FAIL_("%s shape %zu cfg %d: %s differs from the reference", hy__cpu_isa_name(isa), si, cfg,
                             fe ? "y" : "dx (a window routed elsewhere)");
                }
            }
    }
    hy__train_cpu_force_isa(-1);
    pool_reset();
    ASSERT_TRUE(nfast > 0);
}

/* BatchNorm fwd / bwd and max-pool fwd / bwd outputs, concatenated into out. */
static size_t elem_run(int nth, float *out) {
    pool_reset();
    rng = 0x51ED2701ull;
    const int n = 4, c = 24, h = 23, w = 29;
    T z = tnew(n, c, h, w, 1, -2, 3), add = tnew(n, c, h, w, 0, -1, 1), y = tnew(n, c, h, w, 0, 0, 1);
    T dy = tnew(n, c, h, w, 0, -1, 1), dz = tnew(n, c, h, w, 1, 0, 1);
    T g = vec(c, 0.5, 1.5), bt = vec(c, -0.5, 0.5), rm = vec(c, -0.5, 0.5), rv = vec(c, 0.5, 2);
    T mean = vec(c, 0, 1), is = vec(c, 0, 1), dg = vec(c, -1, 1), dbt = vec(c, -1, 1);
    T px = tnew(n, c, 10, 10, 0, 0, 1), py = tnew(n, c, 10, 10, 0, 0, 1), pdx = tnew(n, c, 10, 10, 0, -1, 1);
    T pdy = tnew(n, c, 10, 10, 0, -1, 1);
    pool_values(px, 1);
    hy__tview av = tf(add);
    ops->bn_act_fwd(tf(z), g.f, bt.f, rm.f, rv.f, 0.03f, 1e-3f, 1, HY_ACT_SILU, &av, tf(y), mean.f, is.f, pool_of(nth));
    ops->bn_act_bwd(tf(z), tf(dy), g.f, bt.f, mean.f, is.f, 1, HY_ACT_SILU, tf(dz), dg.f, dbt.f, pool_of(nth));
    ops->maxpool_fwd(tf(px), 5, tf(py), pool_of(nth));
    ops->maxpool_bwd(tf(px), tf(pdy), 5, tf(pdx), 1, pool_of(nth));
    const T outs[] = { y, rm, rv, mean, is, dz, dg, dbt, py, pdx };
    size_t m = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(outs); i++) {
        if (out) memcpy(out + m, outs[i].f, outs[i].tot * sizeof(float));
        m += outs[i].tot;
    }
    return m;
}

HY_TEST(bitwise_same_any_threads_every_isa) {
    const size_t m = elem_run(1, NULL);
    float *a = malloc(m * sizeof(float)), *b = malloc(m * sizeof(float));
    ASSERT_TRUE(a && b);
    int bad = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        hy__train_cpu_force_isa(isa);
        elem_run(1, a);
        for (int run = 0; run < 4; run++) {
            elem_run(1 + (run & 1), b);
            if (memcmp(a, b, m * sizeof(float))) {
                printf("  %s: run %d on %d thread(s) differs\n", hy__cpu_isa_name(isa), run, 1 + (run & 1));
                bad++;
            }
        }
    }
    hy__train_cpu_force_isa(-1);
    free(a);
    free(b);
    pool_reset();
    pool_done();
    ASSERT_EQ(bad, 0);
}

HY_TEST_MAIN()
