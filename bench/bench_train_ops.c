/* Times the fast CPU training convs (hy__train_ops_cpu: fwd, bwd-data, bwd-weight) on every
 * trainable conv of YOLOv8n at one batch, and sums them per kind, whole network and with
 * freeze=10 (layers 0-9 get neither weight nor input gradients).
 *
 *   bench_train_ops [imgsz [batch [threads [passes [filter]]]]]
 *   default 320 16 2 2: runs 1 thread and `threads`; each layer's best of `passes`.
 *
 * GFLOP/s counts 2 cout cin k k oh ow per image for each kind; compare with bench_peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend_impl.h"
#include "core/core.h"
#include "ops/cpu/ops_cpu.h"
#include "ops/op.h"
#include "ops/train_op.h"

typedef struct layer {
    int cin, cout, k, s;
    int div;   /* input spatial size = imgsz / div */
    int count; /* convs of this shape */
    int idx;   /* model.<idx> (freeze=10: < 10 frozen) */
    const char *name;
} layer;

/* The 63 trainable convs of YOLOv8n (DFL excluded), grouped by shape and layer. */
static const layer layers[] = {
    { 3, 16, 3, 2, 1, 1, 0, "0 stem" },
    { 16, 32, 3, 2, 2, 1, 1, "1 down" },
    { 32, 32, 1, 1, 4, 1, 2, "2 c2f.cv1" },
    { 16, 16, 3, 1, 4, 2, 2, "2 bottleneck" },
    { 48, 32, 1, 1, 4, 1, 2, "2 c2f.cv2" },
    { 32, 64, 3, 2, 4, 1, 3, "3 down" },
    { 64, 64, 1, 1, 8, 1, 4, "4 c2f.cv1" },
    { 32, 32, 3, 1, 8, 4, 4, "4 bottleneck" },
    { 128, 64, 1, 1, 8, 1, 4, "4 c2f.cv2" },
    { 64, 128, 3, 2, 8, 1, 5, "5 down" },
    { 128, 128, 1, 1, 16, 1, 6, "6 c2f.cv1" },
    { 64, 64, 3, 1, 16, 4, 6, "6 bottleneck" },
    { 256, 128, 1, 1, 16, 1, 6, "6 c2f.cv2" },
    { 128, 256, 3, 2, 16, 1, 7, "7 down" },
    { 256, 256, 1, 1, 32, 1, 8, "8 c2f.cv1" },
    { 128, 128, 3, 1, 32, 2, 8, "8 bottleneck" },
    { 384, 256, 1, 1, 32, 1, 8, "8 c2f.cv2" },
    { 256, 128, 1, 1, 32, 1, 9, "9 sppf.cv1" },
    { 512, 256, 1, 1, 32, 1, 9, "9 sppf.cv2" },
    { 384, 128, 1, 1, 16, 1, 12, "12 c2f.cv1" },
    { 64, 64, 3, 1, 16, 2, 12, "12 bottleneck" },
    { 192, 128, 1, 1, 16, 1, 12, "12 c2f.cv2" },
    { 192, 64, 1, 1, 8, 1, 15, "15 c2f.cv1" },
    { 32, 32, 3, 1, 8, 2, 15, "15 bottleneck" },
    { 96, 64, 1, 1, 8, 1, 15, "15 c2f.cv2" },
    { 64, 64, 3, 2, 8, 1, 16, "16 down" },
    { 192, 128, 1, 1, 16, 2, 18, "18 c2f.cv1/cv2" },
    { 64, 64, 3, 1, 16, 2, 18, "18 bottleneck" },
    { 128, 128, 3, 2, 16, 1, 19, "19 down" },
    { 384, 256, 1, 1, 32, 2, 21, "21 c2f.cv1/cv2" },
    { 128, 128, 3, 1, 32, 2, 21, "21 bottleneck" },
    { 64, 64, 3, 1, 8, 2, 22, "22 P3 cv2.0/.1" },
    { 64, 64, 1, 1, 8, 1, 22, "22 P3 cv2.2" },
    { 64, 80, 3, 1, 8, 1, 22, "22 P3 cv3.0" },
    { 80, 80, 3, 1, 8, 1, 22, "22 P3 cv3.1" },
    { 80, 80, 1, 1, 8, 1, 22, "22 P3 cv3.2" },
    { 128, 64, 3, 1, 16, 1, 22, "22 P4 cv2.0" },
    { 64, 64, 3, 1, 16, 1, 22, "22 P4 cv2.1" },
    { 64, 64, 1, 1, 16, 1, 22, "22 P4 cv2.2" },
    { 128, 80, 3, 1, 16, 1, 22, "22 P4 cv3.0" },
    { 80, 80, 3, 1, 16, 1, 22, "22 P4 cv3.1" },
    { 80, 80, 1, 1, 16, 1, 22, "22 P4 cv3.2" },
    { 256, 64, 3, 1, 32, 1, 22, "22 P5 cv2.0" },
    { 64, 64, 3, 1, 32, 1, 22, "22 P5 cv2.1" },
    { 64, 64, 1, 1, 32, 1, 22, "22 P5 cv2.2" },
    { 256, 80, 3, 1, 32, 1, 22, "22 P5 cv3.0" },
    { 80, 80, 3, 1, 32, 1, 22, "22 P5 cv3.1" },
    { 80, 80, 1, 1, 32, 1, 22, "22 P5 cv3.2" },
};

/* process CPU time, ms: on a shared machine, GFLOP per CPU-second is what the kernels do
 * when they get the cores (wall time counts the neighbours' share too) */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static float *rand_buf(size_t n) {
    float *p = hy__aligned_alloc(64, (n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

int main(int argc, char **argv) {
    const int imgsz = argc > 1 ? atoi(argv[1]) : 320, batch = argc > 2 ? atoi(argv[2]) : 16;
    const int tmax = argc > 3 ? atoi(argv[3]) : 2, passes = argc > 4 ? atoi(argv[4]) : 2;
    const char *filter = argc > 5 ? argv[5] : "";
    if (imgsz < 32 || imgsz % 32 || batch < 1 || tmax < 1 || tmax > 64 || passes < 1) {
        fprintf(stderr, "usage: bench_train_ops [imgsz (multiple of 32) [batch [threads [passes [filter]]]]]\n");
        return 2;
    }
    const hy__train_ops *ops = &hy__train_ops_cpu;
    printf("training convs, YOLOv8n at %d, batch %d, isa %s, best of %d\n", imgsz, batch, hy__cpu_isa(), passes);
    for (int nth = 1; nth <= tmax; nth = nth == tmax ? tmax + 1 : HY_MIN(tmax, nth * 2)) {
        hy__threadpool *tp = NULL;
        if (nth > 1 && hy__threadpool_create(nth, &tp) != HY_OK) {
            fprintf(stderr, "cannot start %d threads\n", nth);
            return 1;
        }
        double gf_all[3] = { 0 }, ms_all[3] = { 0 }, gf_fr[3] = { 0 }, ms_fr[3] = { 0 }, cpu_all[3] = { 0 };
        printf("\n%d thread(s)\n%-20s %6s %8s %8s %8s   (GFLOP/s)\n", nth, "layer", "GFLOP", "fwd", "bwd-data",
               "bwd-wt");
        for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
            const layer *L = &layers[li];
            if (*filter && !strstr(L->name, filter)) continue;
            const hy__tconv c = { L->cin, L->cout, L->k, L->s, L->k / 2 };
            const int h = imgsz / L->div, oh = hy__conv_out(h, c.k, c.stride, c.pad);
            const size_t nx = (size_t)batch * c.cin * h * h, ny = (size_t)batch * c.cout * oh * oh;
            const size_t nw = (size_t)c.cout * c.cin * c.k * c.k;
            float *x = rand_buf(nx), *y = rand_buf(ny), *dy = rand_buf(ny), *dx = rand_buf(nx);
            float *w = rand_buf(nw), *dw = rand_buf(nw), *b = rand_buf((size_t)c.cout), *db = rand_buf((size_t)c.cout);
            const size_t wsz = ops->conv_ws(&c, batch, h, h, nth);
            void *ws = hy__aligned_alloc(64, wsz ? wsz : 64);
            const hy__tview vx = hy__tview_make(x, batch, c.cin, h, h), vy = hy__tview_make(y, batch, c.cout, oh, oh);
            const hy__tview vdy = hy__tview_make(dy, batch, c.cout, oh, oh), vdx = hy__tview_make(dx, batch, c.cin, h, h);
            double best[3] = { 1e30, 1e30, 1e30 }, cbest[3] = { 1e30, 1e30, 1e30 };
            for (int p = 0; p < passes; p++)
                for (int k = 0; k < 3; k++) {
                    if (k == 1 && li == 0) continue; // the stem's input is the image: no input gradient
                    const double t0 = hy__now_ms(), c0 = cpu_ms();
                    if (k == 0) ops->conv_fwd(&c, vx, w, b, vy, ws, tp);
                    if (k == 1) ops->conv_bwd_data(&c, vdy, w, vdx, 0, ws, tp);
                    if (k == 2) ops->conv_bwd_weight(&c, vx, vdy, dw, db, ws, tp);
                    best[k] = HY_MIN(best[k], hy__now_ms() - t0);
                    cbest[k] = HY_MIN(cbest[k], cpu_ms() - c0);
                }
            const double gf = 2e-9 * batch * c.cout * c.cin * c.k * c.k * (double)oh * oh;
            printf("%-20s %6.2f %8.1f %8.1f %8.1f  x%d  ws %.1f MB\n", L->name, gf * L->count, gf / best[0] * 1e3,
                   li > 0 ? gf / best[1] * 1e3 : 0.0, gf / best[2] * 1e3, L->count, wsz / 1048576.0);
            for (int k = 0; k < 3; k++) {
                if (k == 1 && li == 0) continue;
                gf_all[k] += gf * L->count;
                ms_all[k] += best[k] * L->count;
                cpu_all[k] += cbest[k] * L->count;
                if (k == 0 || L->idx >= 10) {
                    gf_fr[k] += gf * L->count;
                    ms_fr[k] += best[k] * L->count;
                }
            }
            hy__aligned_free(ws);
            hy__aligned_free(x);
            hy__aligned_free(y);
            hy__aligned_free(dy);
            hy__aligned_free(dx);
            hy__aligned_free(w);
            hy__aligned_free(dw);
            hy__aligned_free(b);
            hy__aligned_free(db);
        }
        static const char *const kinds[3] = { "fwd", "bwd-data", "bwd-weight" };
        for (int k = 0; k < 3; k++)
            printf("total %-10s %6.1f GFLOP %7.1f ms %6.1f GFLOP/s (per CPU-second %5.1f)  freeze=10: %5.1f GFLOP %7.1f ms\n",
                   kinds[k], gf_all[k], ms_all[k], gf_all[k] / ms_all[k] * 1e3, gf_all[k] / cpu_all[k] * 1e3,
                   gf_fr[k], ms_fr[k]);
        printf("convs of one step: %.0f ms (%.1f img/s), freeze=10: %.0f ms (%.1f img/s)\n",
               ms_all[0] + ms_all[1] + ms_all[2], batch * 1e3 / (ms_all[0] + ms_all[1] + ms_all[2]),
               ms_fr[0] + ms_fr[1] + ms_fr[2], batch * 1e3 / (ms_fr[0] + ms_fr[1] + ms_fr[2]));
        // BatchNorm + SiLU of every conv output (train mode): forward, backward
        double bn_ms[2] = { 0 }, bn_cpu[2] = { 0 }, bn_mb = 0;
        for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
            const layer *L = &layers[li];
            if (*filter && !strstr(L->name, filter)) continue;
            const int h = imgsz / L->div, oh = hy__conv_out(h, L->k, L->s, L->k / 2);
            const size_t nz = (size_t)batch * L->cout * oh * oh;
            float *z = rand_buf(nz), *y = rand_buf(nz), *dy = rand_buf(nz), *dz = rand_buf(nz);
            float *g = rand_buf((size_t)L->cout), *bt = rand_buf((size_t)L->cout), *rm = rand_buf((size_t)L->cout);
            float *rv = rand_buf((size_t)L->cout), *mean = rand_buf((size_t)L->cout), *is = rand_buf((size_t)L->cout);
            float *dg = rand_buf((size_t)L->cout), *dbt = rand_buf((size_t)L->cout);
            for (int i = 0; i < L->cout; i++) rv[i] = 1.0f;
            const hy__tview vz = hy__tview_make(z, batch, L->cout, oh, oh), vy = hy__tview_make(y, batch, L->cout, oh, oh);
            const hy__tview vdy = hy__tview_make(dy, batch, L->cout, oh, oh), vdz = hy__tview_make(dz, batch, L->cout, oh, oh);
            double best[2] = { 1e30, 1e30 }, cbest[2] = { 1e30, 1e30 };
            for (int p = 0; p < passes; p++)
                for (int k = 0; k < 2; k++) {
                    const double t0 = hy__now_ms(), c0 = cpu_ms();
                    if (k == 0)
                        ops->bn_act_fwd(vz, g, bt, rm, rv, 0.03f, 1e-3f, 1, HY_ACT_SILU, NULL, vy, mean, is, tp);
                    else
                        ops->bn_act_bwd(vz, vdy, g, bt, mean, is, 1, HY_ACT_SILU, vdz, dg, dbt, tp);
                    best[k] = HY_MIN(best[k], hy__now_ms() - t0);
                    cbest[k] = HY_MIN(cbest[k], cpu_ms() - c0);
                }
            for (int k = 0; k < 2; k++) {
                bn_ms[k] += best[k] * L->count;
                bn_cpu[k] += cbest[k] * L->count;
            }
            bn_mb += nz * 4e-6 * L->count;
            float *bufs[] = { z, y, dy, dz, g, bt, rm, rv, mean, is, dg, dbt };
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) hy__aligned_free(bufs[i]);
        }
        printf("bn_act (SiLU, train) over %.0f MB of conv outputs: fwd %.1f ms (CPU %.1f ms), bwd %.1f ms (CPU %.1f ms)\n",
               bn_mb, bn_ms[0], bn_cpu[0], bn_ms[1], bn_cpu[1]);
        if (tp) hy__threadpool_free(tp);
    }
    return 0;
}
