/* Training convs on the inference conv (ops/cpu/train_conv_inf.c) against the double reference
 * (ops/ref/train_ref.h): fwd and bwd_data on yolov8n's training shapes at 320 and odd ones
 * (sizes not multiples of any tile, k 1/3/5, strides 1/2, cin past the K block), channel-slice
 * views (bs > c h w: nothing outside the slice may change), acc 0 and 1, 1 and 2 threads, both
 * schedules (image per thread, image split over threads), every micro-kernel ISA this machine
 * runs: relative L2 <= 1e-5 (worst printed). Determinism: 3 runs, bit-identical. GFLOP/s at
 * batch 16 on 2 threads against hy__train_ops_cpu are printed figures, not assertions. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "core/core.h"
#include "hy_test.h"
#include "ops/cpu/ops_cpu.h"
#include "ops/cpu/train_conv_inf.h"
#include "ops/op.h"
#include "ops/ref/train_ref.h"
#include "ops/train_op.h"

#define TOL 1e-5

#define TT_SEED 0x13198A2E03707344ull
#include "train_test_util.h"

/* End of a case: buffers and pool freed (no leak whichever cases run). */
static void case_done(void) {
    pool_reset();
    pool_done();
}

// --- accuracy -----------------------------------------------------------------------------

static double worst_fwd, worst_bwd;
static char worst_fwd_at[128], worst_bwd_at[128];

typedef struct shape {
    int cin, cout, k, s, hw, bias;
    const char *name;
} shape;

/* yolov8n's training convs at 320 (each (cin, cout, k, stride, input size) once) */
static const shape yolo[] = {
    { 3, 16, 3, 2, 320, 0, "stem 3->16 k3 s2" },      { 16, 32, 3, 2, 160, 0, "16->32 k3 s2" },
    { 32, 32, 1, 1, 80, 0, "C2f cv1 32->32 k1" },     { 16, 16, 3, 1, 80, 0, "bneck 16->16 k3" },
    { 48, 32, 1, 1, 80, 0, "C2f cv2 48->32 k1" },     { 32, 64, 3, 2, 80, 0, "32->64 k3 s2" },
    { 64, 64, 1, 1, 40, 0, "64->64 k1" },             { 32, 32, 3, 1, 40, 0, "bneck 32->32 k3" },
    { 64, 64, 3, 1, 40, 0, "64->64 k3 @40" },         { 64, 128, 3, 2, 40, 0, "64->128 k3 s2" },
    { 64, 64, 3, 1, 20, 0, "bneck 64->64 k3 @20" },   { 128, 128, 1, 1, 20, 0, "128->128 k1" },
    { 128, 256, 3, 2, 20, 0, "128->256 k3 s2" },      { 128, 128, 3, 1, 10, 0, "bneck 128->128 k3" },
    { 256, 256, 1, 1, 10, 0, "256->256 k1" },         { 384, 256, 1, 1, 10, 0, "C2f cv2 384->256" },
    { 512, 256, 1, 1, 10, 0, "SPPF cv2 512->256" },   { 64, 64, 1, 1, 40, 1, "Detect 64->64 k1 b" },
    { 64, 80, 3, 1, 40, 0, "Detect 64->80 k3" },      { 80, 80, 3, 1, 40, 0, "Detect 80->80 k3" },
    { 80, 80, 1, 1, 40, 1, "Detect 80->80 k1 b" },    { 256, 64, 3, 1, 10, 0, "Detect 256->64 k3" },
};

typedef struct oshape {
    int cin, cout, k, s, p, h, w, bias;
} oshape;
static const oshape odd[] = {
    { 5, 7, 3, 1, 1, 13, 11, 1 },  { 3, 5, 5, 1, 2, 9, 7, 0 },   { 6, 9, 3, 2, 1, 15, 17, 1 },
    { 7, 3, 1, 1, 0, 5, 6, 0 },    { 20, 17, 3, 1, 1, 1, 1, 1 }, { 700, 9, 1, 1, 0, 6, 5, 0 },
    { 700, 8, 3, 1, 1, 5, 6, 1 },  { 80, 24, 3, 2, 1, 9, 8, 0 }, { 4, 6, 1, 2, 0, 9, 9, 1 },
    { 9, 11, 3, 1, 1, 4, 23, 0 },  { 13, 10, 3, 1, 0, 8, 8, 0 }, { 3, 4, 7, 1, 3, 12, 10, 1 },
};

static void note(double e, double *worst, char *at, const char *what, const hy__tconv *c, int h, int w, int isa,
                 int nth, int sched, int acc, int view) {
    if (e > *worst) {
        *worst = e;
        snprintf(at, 128, "%s %d->%d k%d s%d p%d %dx%d %s nth%d sched%d acc%d view%d", what, c->cin, c->cout, c->k,
                 c->stride, c->pad, h, w, hy__cpu_isa_name(isa), nth, sched, acc, view);
    }
}

/* Every ISA x threads x schedule on one conv against one reference evaluation. */
static int conv_check(const hy__tconv *c, int n, int h, int w, int bias, int view) {
    pool_reset();
    const int oh = hy__conv_out(h, c->k, c->stride, c->pad), ow = hy__conv_out(w, c->k, c->stride, c->pad);
    const int K = c->cin * c->k * c->k;
    const double wsc = 1.0 / sqrt((double)K);
    T x = tnew(n, c->cin, h, w, view, -1, 1), wt = tnew(1, c->cout * K, 1, 1, 0, -wsc, wsc);
    T b = tnew(1, c->cout, 1, 1, 0, -0.5, 0.5), y = tnew(n, c->cout, oh, ow, view, -1, 1);
    const bool bo = hy__tconv_inf_bwd_data_ok(c);
    T dy = tnew(n, c->cout, oh, ow, view, -1, 1), dx = tnew(n, c->cin, h, w, view, -1, 1);
    T dx1 = tnew(n, c->cin, h, w, view, -1, 1); // acc 1: reference of dx0 + the gradient
    void *ws = talloc(hy__tconv_inf_ws(c, n, h, w, 2));
    hy__tref64_conv_fwd(c, td(x), wt.d, bias ? b.d : NULL, td(y));
    if (bo) {
        hy__tref64_conv_bwd_data(c, td(dy), wt.d, td(dx), 0);
        hy__tref64_conv_bwd_data(c, td(dy), wt.d, td(dx1), 1);
    }
    int fails = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        for (int nth = 1; nth <= 2; nth++)
            for (int sched = HY_TCONV_INF_IMAGES; sched <= HY_TCONV_INF_SPLIT; sched++) {
                if (nth == 1 && sched == HY_TCONV_INF_SPLIT) continue; // the same run
                hy__threadpool *tp = pool_of(nth);
                trestore(y);
                hy__tconv_inf_fwd_ex(c, tf(x), wt.f, bias ? b.f : NULL, tf(y), ws, tp, isa, sched);
                const double ef = terr(y);
                note(ef, &worst_fwd, worst_fwd_at, "fwd", c, h, w, isa, nth, sched, 0, view);
                if (!(ef <= TOL)) {
                    printf("  FAIL fwd %d->%d k%d s%d %dx%d %s nth %d sched %d view %d: rel L2 %.3g\n", c->cin,
                           c->cout, c->k, c->stride, h, w, hy__cpu_isa_name(isa), nth, sched, view, ef);
                    fails++;
                }
                if (!bo) continue;
                for (int acc = 0; acc <= 1; acc++) {
                    T r = acc ? dx1 : dx;
                    trestore(r);
                    hy__tconv_inf_bwd_data_ex(c, tf(dy), wt.f, tf(r), acc, ws, tp, isa, sched);
                    const double eb = terr(r);
                    note(eb, &worst_bwd, worst_bwd_at, "bwd", c, h, w, isa, nth, sched, acc, view);
                    if (!(eb <= TOL)) {
                        printf("  FAIL bwd_data %d->%d k%d %dx%d %s nth %d sched %d acc %d view %d: rel L2 %.3g\n",
                               c->cin, c->cout, c->k, h, w, hy__cpu_isa_name(isa), nth, sched, acc, view, eb);
                        fails++;
                    }
                }
            }
    }
    return fails;
}

HY_TEST(ok_predicates) {
    const hy__tconv c3 = { 16, 16, 3, 1, 1 }, c1 = { 64, 64, 1, 1, 0 }, s2 = { 16, 32, 3, 2, 1 };
    const hy__tconv k5 = { 3, 5, 5, 1, 2 }, k3p0 = { 13, 10, 3, 1, 0 }, k2 = { 4, 4, 2, 1, 1 };
    ASSERT_TRUE(hy__tconv_inf_fwd_ok(&c3) && hy__tconv_inf_bwd_data_ok(&c3));
    ASSERT_TRUE(hy__tconv_inf_fwd_ok(&c1) && hy__tconv_inf_bwd_data_ok(&c1));
    ASSERT_TRUE(hy__tconv_inf_fwd_ok(&s2) && !hy__tconv_inf_bwd_data_ok(&s2));
    ASSERT_TRUE(hy__tconv_inf_fwd_ok(&k5) && hy__tconv_inf_bwd_data_ok(&k5));
    ASSERT_TRUE(hy__tconv_inf_fwd_ok(&k3p0) && !hy__tconv_inf_bwd_data_ok(&k3p0));
    ASSERT_FALSE(hy__tconv_inf_bwd_data_ok(&k2)); // even k: "same" padding is not k/2 both sides
}

HY_TEST(yolov8n_shapes_match_reference) {
    int fails = 0;
    worst_fwd = worst_bwd = 0;
    const int n = hy_test_sanitized() ? 1 : 2;
    for (size_t i = 0; i < HY_ARRAY_LEN(yolo); i++) {
        const shape *s = &yolo[i];
        const hy__tconv c = { s->cin, s->cout, s->k, s->s, s->k / 2 };
        fails += conv_check(&c, n, s->hw, s->hw, s->bias, (int)(i % 2));
    }
    printf("  worst fwd rel L2 %.3g (%s)\n  worst bwd_data rel L2 %.3g (%s)\n", worst_fwd, worst_fwd_at,
           worst_bwd, worst_bwd_at);
    case_done();
    ASSERT_EQ(fails, 0);
}

HY_TEST(odd_shapes_match_reference) {
    int fails = 0;
    worst_fwd = worst_bwd = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(odd); i++) {
        const oshape *s = &odd[i];
        const hy__tconv c = { s->cin, s->cout, s->k, s->s, s->p };
        for (int view = 0; view <= 1; view++) fails += conv_check(&c, 3, s->h, s->w, s->bias, view);
    }
    printf("  worst fwd rel L2 %.3g (%s)\n  worst bwd_data rel L2 %.3g (%s)\n", worst_fwd, worst_fwd_at,
           worst_bwd, worst_bwd_at);
    case_done();
    ASSERT_EQ(fails, 0);
}

/* The same input three times (fresh outputs, the workspace dirty from the previous run): the
 * outputs are bit-identical. */
HY_TEST(deterministic) {
    const hy__tconv cs[] = { { 32, 32, 3, 1, 1 }, { 64, 64, 1, 1, 0 }, { 16, 32, 3, 2, 1 } };
    for (size_t i = 0; i < HY_ARRAY_LEN(cs); i++) {
        const hy__tconv *c = &cs[i];
        pool_reset();
        const int n = 5, h = 24, w = 20;
        const int oh = hy__conv_out(h, c->k, c->stride, c->pad), ow = hy__conv_out(w, c->k, c->stride, c->pad);
        T x = tnew(n, c->cin, h, w, 1, -1, 1), wt = tnew(1, c->cout * c->cin * c->k * c->k, 1, 1, 0, -0.2, 0.2);
        T b = tnew(1, c->cout, 1, 1, 0, -0.5, 0.5);
        void *ws = talloc(hy__tconv_inf_ws(c, n, h, w, 2));
        const size_t ny = (size_t)n * c->cout * oh * ow, nx = (size_t)n * c->cin * h * w;
        float *y[3], *dx[3];
        for (int r = 0; r < 3; r++) {
            y[r] = talloc(ny * sizeof(float));
            dx[r] = talloc(nx * sizeof(float));
            hy__tconv_inf_fwd(c, tf(x), wt.f, b.f, hy__tview_make(y[r], n, c->cout, oh, ow), ws, pool_of(2));
            if (hy__tconv_inf_bwd_data_ok(c)) {
                memcpy(dx[r], x.f, nx * sizeof(float));
                hy__tconv_inf_bwd_data(c, hy__tview_make(y[r], n, c->cout, oh, ow), wt.f,
                                       hy__tview_make(dx[r], n, c->cin, h, w), 1, ws, pool_of(2));
            }
        }
        int same = 1;
        for (int r = 1; r < 3; r++)
            same &= !memcmp(y[0], y[r], ny * sizeof(float)) && !memcmp(dx[0], dx[r], nx * sizeof(float));
        if (!same) case_done();
        ASSERT_TRUE(same);
    }
    case_done();
}

// --- speed (figures) -------------------------------------------------------------------------

/* Best of reps runs of each fn, the fns interleaved (a noisy neighbour hits them alike). */
static void best_ms(void (*const *fn)(void *), int nfn, void *ctx, int reps, double *best) {
    for (int i = 0; i < nfn; i++) best[i] = 1e30;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < nfn; i++) {
            const double t0 = hy__now_ms();
            fn[i](ctx);
            best[i] = HY_MIN(best[i], hy__now_ms() - t0);
        }
}

typedef struct bench_ctx {
    const hy__tconv *c;
    hy__tview x, y, dy, dx;
    const float *w, *b;
    void *ws_inf, *ws_cpu;
    hy__threadpool *tp;
    hy__conv2d_desc d;
    void *packed;
} bench_ctx;

static void b_inf_fwd(void *p) {
    bench_ctx *t = p;
    hy__tconv_inf_fwd(t->c, t->x, t->w, t->b, t->y, t->ws_inf, t->tp);
}
static void b_split_fwd(void *p) {
    bench_ctx *t = p;
    hy__tconv_inf_fwd_ex(t->c, t->x, t->w, t->b, t->y, t->ws_inf, t->tp, hy__cpu_isa_best(), HY_TCONV_INF_SPLIT);
}
static void b_cpu_fwd(void *p) {
    bench_ctx *t = p;
    hy__train_ops_cpu.conv_fwd(t->c, t->x, t->w, t->b, t->y, t->ws_cpu, t->tp);
}
static void b_inf_bwd(void *p) {
    bench_ctx *t = p;
    hy__tconv_inf_bwd_data(t->c, t->dy, t->w, t->dx, 0, t->ws_inf, t->tp);
}
static void b_cpu_bwd(void *p) {
    bench_ctx *t = p;
    hy__train_ops_cpu.conv_bwd_data(t->c, t->dy, t->w, t->dx, 0, t->ws_cpu, t->tp);
}
static void b_pack(void *p) {
    bench_ctx *t = p;
    hy__cpu_conv2d_pack(&t->d, t->w, t->b, t->packed);
}

HY_TEST(speed_batch16_2threads) {
    if (hy_test_sanitized()) {
        printf("  skipped under sanitizers (timing)\n");
        return;
    }
    const int n = 16, reps = getenv("HY_TCONV_REPS") ? atoi(getenv("HY_TCONV_REPS")) : 5;
    double tot[6] = { 0 }, pref[4] = { 0 }; // tot: fwd inf, fwd cpu, bwd inf, bwd cpu, pack, fwd split
    printf("  GFLOP/s (direct-conv FLOPs / best of %d); inf = hy__tconv_inf_*, split = the same with each image\n"
           "  split over the threads, cpu = hy__train_ops_cpu; x = cpu time / inf time; ws MB inf | cpu\n", reps);
    printf("  %-22s %6s | %7s %7s %7s %6s | %7s %7s %6s | %7s | %s\n", "shape (batch 16, 2 thr)", "GFLOP", "fwd inf",
           "split", "cpu", "x", "bwd inf", "cpu", "x", "pack ms", "ws MB");
    for (size_t i = 0; i < HY_ARRAY_LEN(yolo); i++) {
        const shape *s = &yolo[i];
        const hy__tconv c = { s->cin, s->cout, s->k, s->s, s->k / 2 };
        pool_reset();
        const int h = s->hw, oh = hy__conv_out(h, c.k, c.stride, c.pad);
        const int K = c.cin * c.k * c.k;
        T x = tnew(n, c.cin, h, h, 0, -1, 1), wt = tnew(1, c.cout * K, 1, 1, 0, -0.1, 0.1);
        T b = tnew(1, c.cout, 1, 1, 0, -0.5, 0.5), y = tnew(n, c.cout, oh, oh, 0, -1, 1);
        bench_ctx t = { .c = &c, .x = tf(x), .y = tf(y), .dy = tf(y), .dx = tf(x), .w = wt.f,
                        .b = s->bias ? b.f : NULL, .tp = pool_of(2) };
        t.ws_inf = talloc(hy__tconv_inf_ws(&c, n, h, h, 2));
        t.ws_cpu = talloc(hy__train_ops_cpu.conv_ws(&c, n, h, h, 2));
        t.d = (hy__conv2d_desc){ c.cin, c.cout, c.k, c.k, c.stride, c.pad, HY_ACT_NONE, 1 };
        t.packed = talloc(hy__cpu_conv2d_packed_size(&t.d));
        const double gf = 2.0 * c.cout * K * oh * oh * n * 1e-9;
        void (*const fns[])(void *) = { b_inf_fwd, b_cpu_fwd, b_split_fwd, b_pack, b_inf_bwd, b_cpu_bwd };
        const bool bo = hy__tconv_inf_bwd_data_ok(&c);
        double ms[6];
        best_ms(fns, bo ? 6 : 4, &t, reps, ms);
        const double fi = ms[0], fc = ms[1], fs = ms[2], pk = ms[3], bi = bo ? ms[4] : 0, bc = bo ? ms[5] : 0;
        tot[0] += fi, tot[1] += fc, tot[2] += bi, tot[3] += bc, tot[4] += pk, tot[5] += fs;
        const bool pr = hy__tconv_inf_preferred(&c); // pref: the dispatch the report proposes
        pref[0] += pr ? fi : fc, pref[1] += fc, pref[2] += pr && bo ? bi : bc, pref[3] += bc;
        printf("  %-22s %6.3f | %7.1f %7.1f %7.1f %5.2fx | ", s->name, gf, gf / fi * 1e3, gf / fs * 1e3,
               gf / fc * 1e3, fc / fi);
        if (bo)
            printf("%7.1f %7.1f %5.2fx | ", gf / bi * 1e3, gf / bc * 1e3, bc / bi);
        else
            printf("%7s %7s %6s | ", "-", "-", "");
        printf("%7.2f | %.1f | %.1f%s\n", pk, hy__tconv_inf_ws(&c, n, h, h, 2) / 1048576.0,
               hy__train_ops_cpu.conv_ws(&c, n, h, h, 2) / 1048576.0, hy__tconv_inf_preferred(&c) ? "  *" : "");
    }
    printf("  * hy__tconv_inf_preferred\n");
    printf("  total ms: fwd inf %.1f (split %.1f) vs cpu %.1f; bwd_data inf %.1f vs cpu %.1f; fwd pack %.1f\n",
           tot[0], tot[5], tot[1], tot[2], tot[3], tot[4]);
    printf("  dispatch on hy__tconv_inf_preferred: fwd %.1f ms vs cpu %.1f (%.2fx), bwd_data %.1f vs %.1f (%.2fx)\n",
           pref[0], pref[1], pref[1] / pref[0], pref[2], pref[3], pref[3] / pref[2]);
    case_done();
}

HY_TEST_MAIN()
