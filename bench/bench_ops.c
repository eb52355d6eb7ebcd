/* Times the fast conv on every YOLOv8n conv layer shape (1 and 2 threads) and sums the whole
 * network's conv time; also maxpool/upsample for SPPF/neck sizes.
 *
 *   bench_ops [H W [isa [threads [filter [passes]]]]]
 *   default 640 640, best ISA, 2 threads (runs 1 and n), all layers, 5 passes. filter: only layers
 *   whose name contains it ("" = all). Each layer reports its best trial over the passes.
 *
 * GFLOP/s counts 2*cout*cin*kh*kw*oh*ow per conv (the usual "8.7 GFLOPs" of YOLOv8n at 640). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/ops_cpu.h"

typedef struct layer {
    int cin, cout, k, s;
    int div;   /* input spatial size = input / div */
    int count; /* how many convs of YOLOv8n have this shape at this scale */
    int act, add;
    const char *name;
} layer;

/* All 63 fused Conv/Conv2d of YOLOv8n (the fixed DFL conv excluded), grouped by shape. */
static const layer layers[] = {
    { 3, 16, 3, 2, 1, 1, HY_ACT_SILU, 0, "0 stem" },
    { 16, 32, 3, 2, 2, 1, HY_ACT_SILU, 0, "1 down" },
    { 32, 32, 1, 1, 4, 1, HY_ACT_SILU, 0, "2 c2f.cv1" },
    { 16, 16, 3, 1, 4, 2, HY_ACT_SILU, 1, "2 bottleneck" },
    { 48, 32, 1, 1, 4, 1, HY_ACT_SILU, 0, "2 c2f.cv2" },
    { 32, 64, 3, 2, 4, 1, HY_ACT_SILU, 0, "3 down" },
    { 64, 64, 1, 1, 8, 1, HY_ACT_SILU, 0, "4 c2f.cv1" },
    { 32, 32, 3, 1, 8, 6, HY_ACT_SILU, 1, "4,15 bottleneck" },
    { 128, 64, 1, 1, 8, 1, HY_ACT_SILU, 0, "4 c2f.cv2" },
    { 64, 128, 3, 2, 8, 1, HY_ACT_SILU, 0, "5 down" },
    { 128, 128, 1, 1, 16, 1, HY_ACT_SILU, 0, "6 c2f.cv1" },
    { 64, 64, 3, 1, 16, 8, HY_ACT_SILU, 1, "6,12,18 bottleneck" },
    { 256, 128, 1, 1, 16, 1, HY_ACT_SILU, 0, "6 c2f.cv2" },
    { 128, 256, 3, 2, 16, 1, HY_ACT_SILU, 0, "7 down" },
    { 256, 256, 1, 1, 32, 1, HY_ACT_SILU, 0, "8 c2f.cv1" },
    { 128, 128, 3, 1, 32, 4, HY_ACT_SILU, 1, "8,21 bottleneck" },
    { 384, 256, 1, 1, 32, 3, HY_ACT_SILU, 0, "8,21 c2f.cv1/cv2" },
    { 256, 128, 1, 1, 32, 1, HY_ACT_SILU, 0, "9 sppf.cv1" },
    { 512, 256, 1, 1, 32, 1, HY_ACT_SILU, 0, "9 sppf.cv2" },
    { 384, 128, 1, 1, 16, 1, HY_ACT_SILU, 0, "12 c2f.cv1" },
    { 192, 128, 1, 1, 16, 3, HY_ACT_SILU, 0, "12,18 c2f" },
    { 192, 64, 1, 1, 8, 1, HY_ACT_SILU, 0, "15 c2f.cv1" },
    { 96, 64, 1, 1, 8, 1, HY_ACT_SILU, 0, "15 c2f.cv2" },
    { 64, 64, 3, 2, 8, 1, HY_ACT_SILU, 0, "16 down" },
    { 128, 128, 3, 2, 16, 1, HY_ACT_SILU, 0, "19 down" },
    { 64, 64, 3, 1, 8, 2, HY_ACT_SILU, 0, "22 P3 cv2.0/.1" },
    { 64, 64, 1, 1, 8, 1, HY_ACT_NONE, 0, "22 P3 cv2.2" },
    { 64, 80, 3, 1, 8, 1, HY_ACT_SILU, 0, "22 P3 cv3.0" },
    { 80, 80, 3, 1, 8, 1, HY_ACT_SILU, 0, "22 P3 cv3.1" },
    { 80, 80, 1, 1, 8, 1, HY_ACT_SIGMOID, 0, "22 P3 cv3.2" },
    { 128, 64, 3, 1, 16, 1, HY_ACT_SILU, 0, "22 P4 cv2.0" },
    { 64, 64, 3, 1, 16, 1, HY_ACT_SILU, 0, "22 P4 cv2.1" },
    { 64, 64, 1, 1, 16, 1, HY_ACT_NONE, 0, "22 P4 cv2.2" },
    { 128, 80, 3, 1, 16, 1, HY_ACT_SILU, 0, "22 P4 cv3.0" },
    { 80, 80, 3, 1, 16, 1, HY_ACT_SILU, 0, "22 P4 cv3.1" },
    { 80, 80, 1, 1, 16, 1, HY_ACT_SIGMOID, 0, "22 P4 cv3.2" },
    { 256, 64, 3, 1, 32, 1, HY_ACT_SILU, 0, "22 P5 cv2.0" },
    { 64, 64, 3, 1, 32, 1, HY_ACT_SILU, 0, "22 P5 cv2.1" },
    { 64, 64, 1, 1, 32, 1, HY_ACT_NONE, 0, "22 P5 cv2.2" },
    { 256, 80, 3, 1, 32, 1, HY_ACT_SILU, 0, "22 P5 cv3.0" },
    { 80, 80, 3, 1, 32, 1, HY_ACT_SILU, 0, "22 P5 cv3.1" },
    { 80, 80, 1, 1, 32, 1, HY_ACT_SIGMOID, 0, "22 P5 cv3.2" },
};

static float *rand_buf(size_t n) {
    float *p = hy__aligned_alloc(64, n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    unsigned s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (float)((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
    }
    return p;
}

/* One layer's buffers, kept for all passes. */
typedef struct run {
    const layer *L;
    hy__conv2d_desc d;
    int h, w;
    double flop, ms1, msn; /* best ms per call so far: 1 thread, n threads */
    float *x, *add, *y;
    void *packed, *scratch;
} run;

/* ms per call of one trial: >= 3 calls and >= 20 ms. */
static double trial(const run *r, hy__threadpool *tp) {
    int reps = 0;
    const double t0 = hy__now_ms();
    double t;
    do {
        hy__cpu_conv2d(&r->d, r->packed, r->x, r->h, r->w, r->add, r->y, r->scratch, tp);
        reps++;
        t = hy__now_ms() - t0;
    } while (reps < 3 || t < 20);
    return t / reps;
}

static float *must(void *p) {
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    const int H = argc > 1 ? atoi(argv[1]) : 640, W = argc > 2 ? atoi(argv[2]) : 640;
    int isa = hy__cpu_isa_best();
    if (argc > 3)
        for (int i = 0; i < HY_CPU_ISA_COUNT; i++)
            if (!strcmp(argv[3], hy__cpu_isa_name(i))) isa = i;
    const int nthr = argc > 4 ? atoi(argv[4]) : 2;
    const char *filter = argc > 5 ? argv[5] : NULL;
    const int passes = argc > 6 ? atoi(argv[6]) : 5;
    if (H < 32 || W < 32 || nthr < 1 || passes < 1 || !hy__cpu_isa_available(isa)) {
        fprintf(stderr,
                "usage: bench_ops [H W [generic|avx2|avx512 [threads [filter [passes]]]]]\n");
        return 1;
    }
    hy__threadpool *tp = NULL;
    if (nthr > 1 && hy__threadpool_create(nthr, &tp) != HY_OK) {
        fprintf(stderr, "thread pool: %s\n", hy_last_error());
        return 1;
    }

    enum { NL = sizeof layers / sizeof layers[0] };
    run runs[NL];
    int nr = 0;
    for (size_t i = 0; i < NL; i++) {
        const layer *L = &layers[i];
        if (filter && !strstr(L->name, filter)) continue;
        run *r = &runs[nr++];
        r->L = L;
        r->h = H / L->div, r->w = W / L->div;
        const int p = L->k / 2;
        r->d = (hy__conv2d_desc){ .cin = L->cin,
                                  .cout = L->cout,
                                  .kh = L->k,
                                  .kw = L->k,
                                  .stride = L->s,
                                  .pad = p,
                                  .act = L->act };
        const int oh = hy__conv_out(r->h, L->k, L->s, p), ow = hy__conv_out(r->w, L->k, L->s, p);
        const size_t ny = (size_t)L->cout * oh * ow;
        float *wt = rand_buf((size_t)L->cout * L->cin * L->k * L->k),
              *bias = rand_buf((size_t)L->cout);
        r->x = rand_buf((size_t)L->cin * r->h * r->w);
        r->add = L->add ? rand_buf(ny) : NULL;
        r->y = rand_buf(ny);
        r->packed = must(hy__aligned_alloc(64, hy__cpu_conv2d_packed_size(&r->d)));
        r->scratch =
            must(hy__aligned_alloc(64, hy__cpu_conv2d_scratch_size(&r->d, r->h, r->w, nthr)));
        hy__cpu_conv2d_pack_isa(&r->d, wt, bias, isa, r->packed);
        hy__aligned_free(wt), hy__aligned_free(bias);
        r->flop = 2.0 * L->cout * L->cin * L->k * L->k * oh * ow;
        r->ms1 = r->msn = 1e30;
    }
    // Passes over all layers, keeping each layer's best trial: other processes sharing the
    // cores then spoil one pass of a layer, not its result.
    for (int pass = 0; pass < passes; pass++)
        for (int i = 0; i < nr; i++) {
            run *r = &runs[i];
            if (pass == 0)
                hy__cpu_conv2d(&r->d, r->packed, r->x, r->h, r->w, r->add, r->y, r->scratch, NULL);
            r->ms1 = HY_MIN(r->ms1, trial(r, NULL));
            if (tp) r->msn = HY_MIN(r->msn, trial(r, tp));
        }

    printf("conv2d fast path, isa %s, input %dx%d, 1 and %d threads, best of %d passes\n",
           hy__cpu_isa_name(isa), H, W, nthr, passes);
    printf("%-20s %4s %4s %2s %2s %9s %3s %8s %9s %8s %9s %5s\n", "layer", "cin", "cout", "k", "s",
           "in", "n", "MFLOP", "ms(1)", "GF/s(1)", "ms(n)", "GF/s(n)");
    double tot_flop = 0, tot_ms1 = 0, tot_msn = 0;
    int nconv = 0;
    for (int i = 0; i < nr; i++) {
        run *r = &runs[i];
        const layer *L = r->L;
        if (!tp) r->msn = r->ms1;
        printf("%-20s %4d %4d %2d %2d %4dx%-4d %3d %8.1f %9.3f %8.1f %9.3f %5.1f\n", L->name,
               L->cin, L->cout, L->k, L->s, r->h, r->w, L->count, r->flop / 1e6, r->ms1,
               r->flop / r->ms1 / 1e6, r->msn, r->flop / r->msn / 1e6);
        tot_flop += r->flop * L->count;
        nconv += L->count;
        tot_ms1 += r->ms1 * L->count;
        tot_msn += r->msn * L->count;
        hy__aligned_free(r->x), hy__aligned_free(r->add), hy__aligned_free(r->y);
        hy__aligned_free(r->packed), hy__aligned_free(r->scratch);
    }
    printf("total: %.3f GFLOP in %d convs: 1 thread %.2f ms (%.1f GFLOP/s), %d threads %.2f ms "
           "(%.1f GFLOP/s)\n",
           tot_flop / 1e9, nconv, tot_ms1, tot_flop / tot_ms1 / 1e6, nthr, tot_msn,
           tot_flop / tot_msn / 1e6);

    // SPPF maxpool (128 ch at /32) and the first neck upsample (256 ch at /32)
    const int ph = H / 32, pw = W / 32;
    float *px = rand_buf((size_t)128 * ph * pw), *py = rand_buf((size_t)128 * ph * pw);
    float *ux = rand_buf((size_t)256 * ph * pw), *uy = rand_buf((size_t)4 * 256 * ph * pw);
    for (int t = 0; t < 2; t++) {
        hy__threadpool *pool = t ? tp : NULL;
        double mp = 1e30, up = 1e30;
        for (int pass = 0; pass < passes; pass++) {
            double t0 = hy__now_ms();
            int reps = 0;
            while (hy__now_ms() - t0 < 20) hy__cpu_maxpool(px, 128, ph, pw, 5, py, pool), reps++;
            mp = HY_MIN(mp, (hy__now_ms() - t0) / reps);
            t0 = hy__now_ms(), reps = 0;
            while (hy__now_ms() - t0 < 20) hy__cpu_upsample2x(ux, 256, ph, pw, uy, pool), reps++;
            up = HY_MIN(up, (hy__now_ms() - t0) / reps);
        }
        printf("maxpool 5x5 (128, %d, %d): %.4f ms; upsample2x (256, %d, %d): %.4f ms  [%d "
               "thread%s]\n",
               ph, pw, mp, ph, pw, up, t ? nthr : 1, t && nthr > 1 ? "s" : "");
    }
    hy__aligned_free(px), hy__aligned_free(py), hy__aligned_free(ux), hy__aligned_free(uy);
    hy__threadpool_free(tp);
    return 0;
}
