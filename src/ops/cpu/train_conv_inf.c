/* Training convs on the inference conv (see train_conv_inf.h). Workspace, 64-byte aligned
 * pieces (sized for the threads of the call; every piece grows with the threads, so a smaller
 * pool fits the same workspace):
 *   packed   hy__cpu_conv2d_packed_size of the fwd desc and of the bwd_data desc (max)
 *   wt       W' (cin, cout, k, k), bwd_data only
 *   scratch  max(one split call on nth threads, nth 1-thread calls), over both descs
 *   tmp      nth temporary dx images (cin, h, w), bwd_data only (acc 1) */
#include "ops/cpu/train_conv_inf.h"

#include <string.h>

#include "ops/cpu/ops_cpu.h"
#include "ops/op.h"

static size_t rup64(size_t v) { return (v + 63) / 64 * 64; }

static hy__conv2d_desc fwd_desc(const hy__tconv *c) {
    const hy__conv2d_desc d = { c->cin, c->cout, c->k, c->k, c->stride, c->pad, HY_ACT_NONE, 1 };
    return d;
}
/* bwd_data as a conv: dy (cout channels) -> dx (cin channels), same padding, W'. */
static hy__conv2d_desc bwd_desc(const hy__tconv *c) {
    const hy__conv2d_desc d = { c->cout, c->cin, c->k, c->k, 1, c->k / 2, HY_ACT_NONE, 1 };
    return d;
}

bool hy__tconv_inf_fwd_ok(const hy__tconv *c) {
    // the inference conv reads (k-1)/s + one vector past a phase plane (its XG_SLACK, 64)
    return c->cin >= 1 && c->cout >= 1 && c->k >= 1 && c->k <= 31 && c->stride >= 1 && c->stride <= 8 &&
           c->pad >= 0 && c->pad < c->k;
}

bool hy__tconv_inf_bwd_data_ok(const hy__tconv *c) {
    return hy__tconv_inf_fwd_ok(c) && c->stride == 1 && c->k % 2 == 1 && c->pad == c->k / 2;
}

bool hy__tconv_inf_preferred(const hy__tconv *c) {
    return hy__tconv_inf_fwd_ok(c) && c->k == 3 && c->pad == 1 && (c->stride == 1 || (c->stride == 2 && c->cin <= 16));
}

typedef struct ws_layout {
    size_t packed, wt, scratch, tmp, end; /* byte offsets */
} ws_layout;

/* Scratch of one conv of d over (h, w): one split call or nth 1-thread calls. */
static size_t scratch_need(const hy__conv2d_desc *d, int h, int w, int nth) {
    const size_t split = rup64(hy__cpu_conv2d_scratch_size(d, h, w, nth));
    const size_t images = (size_t)nth * rup64(hy__cpu_conv2d_scratch_size(d, h, w, 1));
    return HY_MAX(split, images);
}

static ws_layout layout(const hy__tconv *c, int h, int w, int nth) {
    ws_layout l;
    const bool fo = hy__tconv_inf_fwd_ok(c), bo = hy__tconv_inf_bwd_data_ok(c);
    const hy__conv2d_desc fd = fwd_desc(c), bd = bwd_desc(c);
    size_t packed = 0, scratch = 0, wt = 0, tmp = 0;
    nth = HY_MAX(nth, 1);
    if (fo) {
        packed = rup64(hy__cpu_conv2d_packed_size(&fd));
        scratch = scratch_need(&fd, h, w, nth);
    }
    if (bo) { // dy has the size of x (same conv)
        packed = HY_MAX(packed, rup64(hy__cpu_conv2d_packed_size(&bd)));
        scratch = HY_MAX(scratch, scratch_need(&bd, h, w, nth));
        wt = rup64((size_t)c->cin * c->cout * c->k * c->k * sizeof(float));
        tmp = (size_t)nth * rup64((size_t)c->cin * h * w * sizeof(float));
    }
    l.packed = 0;
    l.wt = packed;
    l.scratch = l.wt + wt;
    l.tmp = l.scratch + scratch;
    l.end = l.tmp + tmp;
    return l;
}

size_t hy__tconv_inf_ws(const hy__tconv *c, int n, int h, int w, int n_threads) {
    (void)n; // per-image calls: the batch costs no workspace
    return layout(c, h, w, n_threads).end;
}

// --- per-image driver ---------------------------------------------------------------------

typedef struct run_task {
    const hy__conv2d_desc *d;
    const void *packed;
    hy__tview in, out;
    int acc;        /* out += conv(in) instead of = */
    char *scr;      /* images: nth slots of scr1 bytes; split: one */
    size_t scr1;
    float *tmp;     /* acc: nth images, tmp1 floats apart */
    size_t tmp1, img; /* img: floats of one output image (out.c out.h out.w) */
} run_task;

/* Image b of the batch, on the threads of tp (NULL: this thread). */
static void run_image(const run_task *t, long b, char *scr, float *tmp, hy__threadpool *tp) {
    const float *xb = t->in.d + (size_t)b * t->in.bs;
    float *yb = t->out.d + (size_t)b * t->out.bs;
    if (!t->acc) {
        hy__cpu_conv2d(t->d, t->packed, xb, t->in.h, t->in.w, NULL, yb, scr, tp);
        return;
    }
    // y may not overlap add: tmp = conv + out (the epilogue's add, one rounding), then copy
    hy__cpu_conv2d(t->d, t->packed, xb, t->in.h, t->in.w, yb, tmp, scr, tp);
    hy__cpu_copy(tmp, t->img, yb, tp);
}

static void image_item(void *ctx, long b, int ith) {
    const run_task *t = ctx;
    run_image(t, b, t->scr + (size_t)ith * t->scr1, t->tmp + (size_t)ith * t->tmp1, NULL);
}

/* IMAGES when every thread gets whole images (no idle thread at the end), else SPLIT. */
static int pick_sched(int n, int nth) { return nth > 1 && n % nth == 0 ? HY_TCONV_INF_IMAGES : HY_TCONV_INF_SPLIT; }

static void run_batch(const hy__conv2d_desc *d, const void *packed, hy__tview in, hy__tview out, int acc,
                      char *scratch, float *tmp, hy__threadpool *tp, int sched) {
    const int nth = hy__threadpool_size(tp);
    run_task t = { .d = d, .packed = packed, .in = in, .out = out, .acc = acc, .scr = scratch, .tmp = tmp,
                   .img = (size_t)out.c * out.h * out.w };
    if (sched == HY_TCONV_INF_AUTO) sched = pick_sched(in.n, nth);
    if (sched == HY_TCONV_INF_IMAGES && nth > 1) {
        t.scr1 = rup64(hy__cpu_conv2d_scratch_size(d, in.h, in.w, 1));
        t.tmp1 = rup64(t.img * sizeof(float)) / sizeof(float);
        hy__threadpool_each(tp, in.n, image_item, &t);
        return;
    }
    for (int b = 0; b < in.n; b++) run_image(&t, b, scratch, tmp, tp);
}

// --- entry points ---------------------------------------------------------------------------

void hy__tconv_inf_fwd_ex(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                          hy__threadpool *tp, int isa, int sched) {
    HY_ASSERT(hy__tconv_inf_fwd_ok(c) && x.c == c->cin && y.c == c->cout && x.n == y.n);
    HY_ASSERT(((uintptr_t)ws & 63) == 0);
    const hy__conv2d_desc d = fwd_desc(c);
    HY_ASSERT(y.h == hy__conv_out(x.h, c->k, c->stride, c->pad) &&
              y.w == hy__conv_out(x.w, c->k, c->stride, c->pad));
    const ws_layout l = layout(c, x.h, x.w, hy__threadpool_size(tp));
    char *base = ws;
    hy__cpu_conv2d_pack_isa(&d, w, b, isa, base + l.packed); // b NULL: zero bias
    run_batch(&d, base + l.packed, x, y, 0, base + l.scratch, NULL, tp, sched);
}

void hy__tconv_inf_bwd_data_ex(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc,
                               void *ws, hy__threadpool *tp, int isa, int sched) {
    HY_ASSERT(hy__tconv_inf_bwd_data_ok(c) && dy.c == c->cout && dx.c == c->cin && dy.n == dx.n);
    HY_ASSERT(dy.h == dx.h && dy.w == dx.w && ((uintptr_t)ws & 63) == 0);
    const hy__conv2d_desc d = bwd_desc(c);
    const ws_layout l = layout(c, dx.h, dx.w, hy__threadpool_size(tp));
    char *base = ws;
    float *wt = (float *)(base + l.wt); // W'[ci][co][ky][kx] = W[co][ci][k-1-ky][k-1-kx]
    const int k = c->k, kk = k * k;
    for (int co = 0; co < c->cout; co++)
        for (int ci = 0; ci < c->cin; ci++) {
            const float *src = w + ((size_t)co * c->cin + ci) * kk;
            float *dst = wt + ((size_t)ci * c->cout + co) * kk;
            for (int i = 0; i < kk; i++) dst[i] = src[kk - 1 - i];
        }
    hy__cpu_conv2d_pack_isa(&d, wt, NULL, isa, base + l.packed);
    run_batch(&d, base + l.packed, dy, dx, acc, base + l.scratch, (float *)(base + l.tmp), tp, sched);
}

void hy__tconv_inf_fwd(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                       hy__threadpool *tp) {
    hy__tconv_inf_fwd_ex(c, x, w, b, y, ws, tp, hy__cpu_isa_best(), HY_TCONV_INF_AUTO);
}

void hy__tconv_inf_bwd_data(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc, void *ws,
                            hy__threadpool *tp) {
    hy__tconv_inf_bwd_data_ex(c, dy, w, dx, acc, ws, tp, hy__cpu_isa_best(), HY_TCONV_INF_AUTO);
}
