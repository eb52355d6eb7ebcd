/* Fast CPU training kernels (hy__train_ops_cpu): the convs as GEMMs on the per-ISA
 * micro-kernels of gemm.h, on the thread pool; the other ops as SIMD-friendly loops split
 * over channels or (image, channel) planes. Tested against the double reference
 * (ops/ref/train_ref.c) in tests/test_train_ops_cpu.c.
 *
 * Per image, K = cin k k, P = oh ow:
 *   fwd         y(cout, P)   = W(cout, K) col(K, P) + b,  A: W packed once per call.
 *               k x k stride 1 ("direct", dplan below): B read in place from a zero-padded
 *               copy of a band of rows; 1x1 stride 1: from x itself; other strided convs:
 *               im2col blocks (kc x nc) packed per thread. Items: (image, band or column block).
 *   bwd_data    k x k stride 1: the direct fwd of dy with the flipped W^T (full correlation).
 *               1x1 stride 1: dx(cin, P) = W^T dy, dy rows read in place. Strided:
 *               dcol(K, P) = W^T(K, cout) dy(cout, P) per (image, channel group) into the
 *               thread's buffer, then col2im into the group's own dx channels.
 *   bwd_weight  dW'(cout, K') += dy(cout, P) row(P, K'),  K' in (ky, kx, ci) order
 *               row(P, K') is im2row: with x in a zero-padded NHWC copy, the k cin values of
 *               one ky of pixel (oy, ox) are contiguous at padded (oy s + ky, ox s), so the
 *               micro-kernel reads B rows in place through per-pixel offsets (no packing of
 *               the big operand); A = dy packed per K block of pixels. Items: (image, band of
 *               output rows), the band's NHWC copy in the thread's buffer. The items form
 *               ngrp fixed groups (shape and batch only); one thread sums a group in item
 *               order, in float into its tile (cout, K') for >= BW_FLUSH_PIX pixels at a time,
 *               then into the group's double slot; the slots are added in group order and
 *               permuted to (cout, cin, k, k): bitwise the same for any thread count/timing.
 * Every kernel is bitwise reproducible and independent of n_threads (for one ISA).
 * No allocation: the workspace (conv_ws) holds packed weights, per-thread buffers and
 * accumulators. */
#include "backend/backend_impl.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/train_conv_inf.h"
#include "ops/cpu/ops_cpu.h"
#include "ops/op.h"
#include "ops/train_op.h"

#include <math.h>
#include <string.h>

// --- kernel choice --------------------------------------------------------------------

static int forced_isa = -1;
/* Tests: run the kernels of isa (must be available), -1: the best one. Not thread-safe. */
void hy__train_cpu_force_isa(int isa);
void hy__train_cpu_force_isa(int isa) {
    HY_ASSERT(isa < 0 || hy__cpu_isa_available(isa));
    forced_isa = isa;
}

static const hy__gemm_kernel *kernel_isa(int isa) {
#ifdef HY_HAVE_AVX512
    if (isa == HY_CPU_ISA_AVX512) return &hy__gemm_avx512;
#endif
#ifdef HY_HAVE_AVX2
    if (isa == HY_CPU_ISA_AVX2) return &hy__gemm_avx2;
#endif
    (void)isa;
    return &hy__gemm_generic;
}

static int isa_now(void) { return forced_isa >= 0 ? forced_isa : hy__cpu_isa_best(); }
static const hy__gemm_kernel *kern(void) { return kernel_isa(isa_now()); }

// --- blocking -------------------------------------------------------------------------

#define KC_MAX 384                 /* reduction block: A (kc x MR) + B (kc x NR) panels in L1 */
#define B_BLOCK_BYTES (256 * 1024) /* fwd B block (kc x nc) in L2 */
#define DCOL_BYTES (512 * 1024)    /* bwd_data: one item's dcol rows */
#define NHWC_BYTES (256 * 1024)    /* bwd_weight: one band's padded NHWC copy */
#define SLACK 64                   /* floats after in-place B sources: whole-vector reads */
#define ITEMS_PER_THREAD 4
/* bwd_weight: the (image, band) items form ngrp fixed groups of consecutive items, each summed
 * by one thread in item order into its own double slot; the slots are added in group order.
 * ngrp depends on the shape and batch only, so dW is bitwise the same for any thread count and
 * timing. */
#define BW_GROUPS_MIN 4
#define BW_GROUPS_MAX 16
#define BW_GROUP_PIX 4096                  /* pixels (all images) per group, at least */
#define BW_SLOTS_BYTES (16u * 1024 * 1024) /* the groups' slots, unless that leaves < MIN */

/* bias of the epilogues that add none (the kernels read bias[i] for every row) */
static float zero_bias[64];

static size_t rup(size_t v, size_t m) { return (v + m - 1) / m * m; }
static size_t fl64(size_t nfloats) { return rup(nfloats * sizeof(float), 64); }

typedef struct cplan {
    const hy__tconv *c;
    int n, h, w, oh, ow, P, K, kk; /* kk = k * k */
    int pointwise;
    int mpad; /* cout rounded up to MR */
    /* fwd / pointwise bwd_data: items (image, column block of nc) */
    int kc, nkb, nc, ncb;
    /* bwd_data k x k: channel groups */
    int cg, ngroups, kcd, nkbd, ncd;
    /* bwd_weight: bands of output rows */
    int band, nbands, wp, brows, Kp, kcw;
    /* bytes */
    size_t shared, per_thread;
    size_t fwd_apack, fwd_bias, fwd_thread;        /* shared A, bias; per thread B block */
    size_t bd_apack, bd_thread_a, bd_thread_dcol;  /* pointwise shared A^T; per thread */
    int ngrp;                                      /* bwd_weight: item groups (their own sums) */
    size_t bw_nhwc, bw_a, bw_tile;                 /* per thread */
    size_t bw_slot, bw_dbslot;                     /* one group's double dW', db sums (shared) */
} cplan;

/* Stride-1 k x k conv with B read in place ("direct"), for fwd and, as the full correlation of
 * dy with the flipped W^T (cin' = cout, cout' = cin, pad' = k - 1 - pad), for bwd_data. Items
 * (image, band of output rows): the thread copies the band's input rows, zero-padded to width
 * wp, into its buffer xb[ci][r][wp]; tap (ci, ky, kx) of output (oy, ox) is then
 * xb[ci][oy - oy0 + ky][ox + kx], so every im2col row is a contiguous slice and the
 * micro-kernel reads it through per-tap offsets. Tiles stay inside one output row. */
typedef struct dplan {
    int cin, cout, k, pad, h, w, oh, ow, wp, K;
    int kc, nkb, band, nbands;
    size_t buf; /* per-thread bytes */
} dplan;

static void dplan_make(int cin, int cout, int k, int pad, int h, int w, int n, int nth, dplan *d) {
    memset(d, 0, sizeof *d);
    d->cin = cin;
    d->cout = cout;
    d->k = k;
    d->pad = pad;
    d->h = h;
    d->w = w;
    d->oh = hy__conv_out(h, k, 1, pad);
    d->ow = hy__conv_out(w, k, 1, pad);
    d->wp = HY_MAX(w + 2 * pad, d->ow + k - 1);
    d->K = cin * k * k;
    d->nkb = (d->K + KC_MAX - 1) / KC_MAX;
    d->kc = (d->K + d->nkb - 1) / d->nkb;
    const size_t rowf = (size_t)cin * d->wp;
    int cap = (int)(NHWC_BYTES / (rowf * sizeof(float))) - (k - 1);
    cap = HY_MIN(HY_MAX(cap, 1), HY_MAX(d->oh, 1));
    d->buf = fl64((size_t)(cap + k - 1) * rowf + SLACK);
    const int want = (ITEMS_PER_THREAD * HY_MAX(nth, 1) + HY_MAX(n, 1) - 1) / HY_MAX(n, 1);
    d->band = HY_MIN(cap, HY_MAX(1, (d->oh + want - 1) / want));
    d->nbands = (d->oh + d->band - 1) / d->band;
}

static bool direct_fwd(const hy__tconv *c) { return c->stride == 1 && c->k > 1; }
static bool direct_bwd(const hy__tconv *c) { return c->stride == 1 && c->k > 1 && c->pad <= c->k - 1; }

static void plan(const hy__gemm_kernel *kr, const hy__tconv *c, int n, int h, int w, int nth,
                 cplan *p) {
    memset(p, 0, sizeof *p);
    nth = HY_MAX(nth, 1);
    n = HY_MAX(n, 1);
    p->c = c;
    p->n = n;
    p->h = h;
    p->w = w;
    p->oh = hy__conv_out(h, c->k, c->stride, c->pad);
    p->ow = hy__conv_out(w, c->k, c->stride, c->pad);
    HY_ASSERT(p->oh > 0 && p->ow > 0);
    p->P = p->oh * p->ow;
    p->kk = c->k * c->k;
    p->K = c->cin * p->kk;
    p->pointwise = c->k == 1 && c->stride == 1 && c->pad == 0;
    const int mr = kr->mr, nr = kr->nr;
    p->mpad = (int)rup((size_t)c->cout, (size_t)mr);

    // fwd: K in nkb equal blocks; column blocks of nc, at least ITEMS_PER_THREAD per thread
    p->nkb = (p->K + KC_MAX - 1) / KC_MAX;
    p->kc = (p->K + p->nkb - 1) / p->nkb;
    int nc = (int)(B_BLOCK_BYTES / ((size_t)p->kc * sizeof(float))) / nr * nr;
    nc = HY_MAX(nc, nr);
    nc = HY_MIN(nc, (int)rup((size_t)p->P, (size_t)nr));
    const int nc_cap = nc; // buffer sizes do not depend on nth (nor on n)
    const int want = (ITEMS_PER_THREAD * nth + n - 1) / n; // column blocks per image wanted
    if ((p->P + nc - 1) / nc < want)
        nc = HY_MAX(nr, (int)rup((size_t)((p->P + want - 1) / want), (size_t)nr));
    p->nc = nc;
    p->ncb = (p->P + nc - 1) / nc;
    const int kcmax = p->kc;
    p->fwd_apack = fl64((size_t)p->mpad * p->K);
    p->fwd_bias = fl64((size_t)p->mpad);
    p->fwd_thread = fl64((size_t)kcmax * rup((size_t)nc_cap, (size_t)nr) + (size_t)nc_cap);

    // bwd_data: reduction over cout
    p->nkbd = (c->cout + KC_MAX - 1) / KC_MAX;
    p->kcd = (c->cout + p->nkbd - 1) / p->nkbd;
    if (p->pointwise) {
        p->bd_apack = fl64(rup((size_t)c->cin, (size_t)mr) * c->cout);
        p->bd_thread_a = fl64((size_t)p->kcd * nr); // tail panel
    } else {
        int cg = (int)(DCOL_BYTES / ((size_t)p->kk * p->P * sizeof(float)));
        cg = HY_MIN(HY_MAX(cg, 1), c->cin);
        const size_t rows = (size_t)cg * p->kk; // buffers sized for the nth-independent cap
        p->bd_thread_a = fl64((size_t)p->kcd * nr); // tail panel
        // A = W^T packed once per call, group by group (each group's rows in MR panels): at
        // most K + (mr - 1) padding rows per group, groups <= cin (any nth)
        p->bd_apack = fl64(((size_t)p->K + (size_t)c->cin * (size_t)(mr - 1)) * c->cout);
        p->bd_thread_dcol = fl64(rows * p->P + SLACK);
        const int per = (int)(((long)c->cin * n + (long)ITEMS_PER_THREAD * nth - 1) /
                              ((long)ITEMS_PER_THREAD * nth));
        cg = HY_MIN(cg, HY_MAX(per, 1));
        cg = HY_MIN(cg, c->cin);
        p->cg = cg;
        p->ngroups = (c->cin + cg - 1) / cg;
    }
    p->ncd = HY_MAX(nr, (int)(B_BLOCK_BYTES / ((size_t)p->kcd * sizeof(float))) / nr * nr);

    // bwd_weight: bands of output rows whose padded NHWC copy fits NHWC_BYTES
    p->wp = w + 2 * c->pad;
    p->wp = HY_MAX(p->wp, (p->ow - 1) * c->stride + c->k);
    p->Kp = p->K;
    const size_t rowf = (size_t)p->wp * c->cin; // floats per padded row
    int band = (int)(NHWC_BYTES / (rowf * sizeof(float) * c->stride));
    band = HY_MIN(HY_MAX(band, 1), p->oh);
    const int brows_cap = (band - 1) * c->stride + c->k;
    const int bwant = (BW_GROUPS_MAX + n - 1) / n; // not nth: the sums' order must not depend on it
    band = HY_MIN(band, HY_MAX(1, (p->oh + bwant - 1) / bwant));
    band = HY_MIN(band, p->oh);
    p->band = band;
    p->nbands = (p->oh + band - 1) / band;
    p->brows = (band - 1) * c->stride + c->k;
    p->kcw = HY_MIN(KC_MAX, band * p->ow);
    p->bw_nhwc = fl64((size_t)brows_cap * rowf + SLACK);
    p->bw_a = fl64((size_t)p->mpad * KC_MAX);
    p->bw_tile = fl64((size_t)c->cout * p->Kp);
    p->bw_slot = rup((size_t)c->cout * p->Kp * sizeof(double), 64);
    p->bw_dbslot = rup((size_t)c->cout * sizeof(double), 64);
    { // groups: enough to share out (>= BW_GROUPS_MIN), up to one per BW_GROUP_PIX pixels
        const long items = (long)n * p->nbands, pix = (long)n * p->P;
        long g = HY_MAX((long)BW_GROUPS_MIN, (pix + BW_GROUP_PIX - 1) / BW_GROUP_PIX);
        g = HY_MIN(g, (long)BW_GROUPS_MAX);
        g = HY_MIN(g, HY_MAX((long)BW_GROUPS_MIN, (long)(BW_SLOTS_BYTES / (p->bw_slot + p->bw_dbslot))));
        p->ngrp = (int)HY_MAX(1, HY_MIN(g, items));
    }

    size_t dfwd = 0, dbwd = 0;
    if (direct_fwd(c)) {
        dplan d;
        dplan_make(c->cin, c->cout, c->k, c->pad, h, w, n, nth, &d);
        dfwd = d.buf;
    }
    if (direct_bwd(c)) {
        dplan d;
        dplan_make(c->cout, c->cin, c->k, c->k - 1 - c->pad, p->oh, p->ow, n, nth, &d);
        dbwd = d.buf;
        p->bd_apack = fl64(rup((size_t)c->cin, (size_t)mr) * c->cout * p->kk);
    }
    p->shared = HY_MAX(p->fwd_apack + p->fwd_bias, p->bd_apack + p->fwd_bias);
    p->shared = HY_MAX(p->shared, (p->bw_slot + p->bw_dbslot) * (size_t)p->ngrp);
    const size_t fwd_t = HY_MAX(p->fwd_thread, dfwd);
    const size_t bd_t = HY_MAX(p->bd_thread_a + p->bd_thread_dcol, dbwd);
    const size_t bw_t = p->bw_nhwc + p->bw_a + p->bw_tile;
    p->per_thread = HY_MAX(fwd_t, HY_MAX(bd_t, bw_t));
}

static size_t conv_ws(const hy__tconv *c, int n, int h, int w, int n_threads) {
    size_t best = 0;
    for (int isa = 0; isa < HY_CPU_ISA_COUNT; isa++) {
        if (!hy__cpu_isa_available(isa)) continue;
        cplan p;
        plan(kernel_isa(isa), c, n, h, w, n_threads, &p);
        best = HY_MAX(best, p.shared + p.per_thread * (size_t)HY_MAX(n_threads, 1));
    }
    /* 3x3 stride-1 (and the stem's stride-2) convs run on the inference conv (Winograd) */
    if (hy__tconv_inf_preferred(c)) best = HY_MAX(best, hy__tconv_inf_ws(c, n, h, w, n_threads));
    return best;
}

/* dst[k*MR + i] = src[i*rs + k*cs] for i < m, 0 for m <= i < MR; k < kc. */
static void pack_a(const float *src, ptrdiff_t rs, ptrdiff_t cs, int m, int kc, int mr, float *dst) {
    if (cs == 1) {
        for (int i = 0; i < m; i++) {
            const float *s = src + i * rs;
            for (int k = 0; k < kc; k++) dst[(size_t)k * mr + i] = s[k];
        }
    } else {
        for (int k = 0; k < kc; k++)
            for (int i = 0; i < m; i++) dst[(size_t)k * mr + i] = src[i * rs + k * cs];
    }
    if (m < mr)
        for (int k = 0; k < kc; k++)
            for (int i = m; i < mr; i++) dst[(size_t)k * mr + i] = 0.0f;
}

/* B of one tile read in place from rows src + boff[k] (k < kc), columns [0, n) of rows that
 * hold `avail` floats from there: whole vectors when they stay inside, else a copied panel. */
static void tile_direct(const hy__gemm_kernel *kr, int kc, const float *ap, const float *src,
                        const ptrdiff_t *boff, int n, int avail, float *panel, float *c,
                        ptrdiff_t ldc, int m, const hy__gemm_epi *e) {
    if ((n + kr->vl - 1) / kr->vl * kr->vl <= avail) {
        kr->ukr(kc, ap, src, boff, c, ldc, m, n, e);
        return;
    }
    for (int k = 0; k < kc; k++) {
        memcpy(panel + (size_t)k * kr->nr, src + boff[k], (size_t)n * sizeof(float));
        memset(panel + (size_t)k * kr->nr + n, 0, (size_t)(kr->nr - n) * sizeof(float));
    }
    kr->ukr(kc, ap, panel, NULL, c, ldc, m, n, e);
}

// --- conv forward -----------------------------------------------------------------------

typedef struct conv_task {
    const hy__gemm_kernel *kr;
    cplan p;
    hy__tview x, y, dy, dx;
    float *apack, *bias; /* shared */
    const float *w;
    char *thr;           /* per-thread region base */
    int acc;
    hy__workq wq;
} conv_task;

/* One im2col row segment: col[kidx][q0 .. q0 + len) into out. */
static void im2col_row(const cplan *p, const float *x, int kidx, int q0, int len, float *out) {
    const hy__tconv *c = p->c;
    const int ci = kidx / p->kk, t = kidx % p->kk, ky = t / c->k, kx = t % c->k;
    const int s = c->stride, w = p->w;
    const float *xc = x + (size_t)ci * p->h * w;
    int q = q0, j = 0;
    while (j < len) {
        const int oy = q / p->ow, ox = q % p->ow, run = HY_MIN(p->ow - ox, len - j);
        const int iy = oy * s - c->pad + ky;
        float *o = out + j;
        if (iy < 0 || iy >= p->h) {
            memset(o, 0, (size_t)run * sizeof(float));
        } else {
            const float *xr = xc + (size_t)iy * w;
            const int ix0 = ox * s - c->pad + kx; // input column of o[0]
            if (s == 1) {
                const int lo = HY_MIN(run, HY_MAX(0, -ix0)), hi = HY_MAX(lo, HY_MIN(run, w - ix0));
                memset(o, 0, (size_t)lo * sizeof(float));
                memcpy(o + lo, xr + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
                memset(o + hi, 0, (size_t)(run - hi) * sizeof(float));
            } else { // u in [lo, hi): ix0 + u s inside [0, w)
                const int lo = HY_MIN(run, HY_MAX(0, (-ix0 + s - 1) / s));
                const int hi = HY_MAX(lo, HY_MIN(run, ix0 >= w ? 0 : (w - 1 - ix0) / s + 1));
                for (int u = 0; u < lo; u++) o[u] = 0.0f;
                const float *xs = xr + ix0;
                if (s == 2)
                    for (int u = lo; u < hi; u++) o[u] = xs[2 * u];
                else
                    for (int u = lo; u < hi; u++) o[u] = xs[u * s];
                for (int u = hi; u < run; u++) o[u] = 0.0f;
            }
        }
        j += run;
        q += run;
    }
}

static void fwd_item(conv_task *t, int ith, long item) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int mr = kr->mr, nr = kr->nr, P = p->P;
    const int b = (int)(item / p->ncb), q0 = (int)(item % p->ncb) * p->nc;
    const int ncols = HY_MIN(p->nc, P - q0), npan = (ncols + nr - 1) / nr;
    const float *x = t->x.d + (size_t)b * t->x.bs;
    float *y = t->y.d + (size_t)b * t->y.bs;
    float *bp = (float *)(t->thr + (size_t)ith * p->per_thread); // (npan, kc, NR) or tail panel
    float *row = bp + (size_t)p->kc * npan * nr;
    ptrdiff_t boff[KC_MAX];
    for (int kb = 0; kb < p->nkb; kb++) {
        const int k0 = kb * p->kc, kc = HY_MIN(p->kc, p->K - k0);
        if (p->pointwise) {
            for (int k = 0; k < kc; k++) boff[k] = (ptrdiff_t)(k0 + k) * P;
        } else {
            for (int k = 0; k < kc; k++) {
                im2col_row(p, x, k0 + k, q0, ncols, row);
                for (int pn = 0; pn < npan; pn++) {
                    float *dst = bp + ((size_t)pn * kc + k) * nr;
                    const int nn = HY_MIN(nr, ncols - pn * nr);
                    memcpy(dst, row + pn * nr, (size_t)nn * sizeof(float));
                    if (nn < nr) memset(dst + nn, 0, (size_t)(nr - nn) * sizeof(float));
                }
            }
        }
        hy__gemm_epi e = { .act = HY_ACT_NONE, .first = kb == 0, .last = kb == p->nkb - 1 };
        for (int m = 0; m < c->cout; m += mr) {
            const int mv = HY_MIN(mr, c->cout - m);
            const float *ap = t->apack + ((size_t)(m / mr) * p->K + k0) * mr;
            float *yr = y + (size_t)m * P + q0;
            e.bias = t->bias + m;
            for (int pn = 0; pn < npan; pn++) {
                const int nn = HY_MIN(nr, ncols - pn * nr);
                if (p->pointwise)
                    tile_direct(kr, kc, ap, x + q0 + pn * nr, boff, nn, P - q0 - pn * nr, bp,
                                yr + pn * nr, P, mv, &e);
                else
                    kr->ukr(kc, ap, bp + (size_t)pn * kc * nr, NULL, yr + pn * nr, P, mv, nn, &e);
            }
        }
    }
}

static void fwd_worker(void *ctx, int ith, int nth) {
    conv_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) fwd_item(t, ith, i);
}

typedef struct direct_task {
    const hy__gemm_kernel *kr;
    dplan d;
    hy__tview x, y;      /* input (cin, h, w), output (cout, oh, ow) */
    const float *apack;  /* (cout / MR, K, MR) */
    const float *bias;   /* (mpad) or NULL */
    int acc;
    char *thr;
    size_t per_thread;
    hy__workq wq;
} direct_task;

static void direct_item(direct_task *t, int ith, long item) {
    const hy__gemm_kernel *kr = t->kr;
    const dplan *d = &t->d;
    const int mr = kr->mr, nr = kr->nr, k = d->k, wp = d->wp, P = d->oh * d->ow;
    const int b = (int)(item / d->nbands), oy0 = (int)(item % d->nbands) * d->band;
    const int oy1 = HY_MIN(d->oh, oy0 + d->band), rows = oy1 - oy0 + k - 1;
    const float *x = t->x.d + (size_t)b * t->x.bs;
    float *y = t->y.d + (size_t)b * t->y.bs;
    float *xb = (float *)(t->thr + (size_t)ith * t->per_thread);
    const int l = HY_MIN(d->pad, wp), rw = HY_MAX(0, HY_MIN(d->w, wp - l));
    for (int ci = 0; ci < d->cin; ci++)
        for (int r = 0; r < rows; r++) {
            float *dst = xb + ((size_t)ci * rows + r) * wp;
            const int iy = oy0 + r - d->pad;
            if (iy < 0 || iy >= d->h) {
                memset(dst, 0, (size_t)wp * sizeof(float));
                continue;
            }
            memset(dst, 0, (size_t)l * sizeof(float));
            memcpy(dst + l, x + ((size_t)ci * d->h + iy) * d->w, (size_t)rw * sizeof(float));
            memset(dst + l + rw, 0, (size_t)(wp - l - rw) * sizeof(float));
        }
    memset(xb + (size_t)d->cin * rows * wp, 0, SLACK * sizeof(float));
    ptrdiff_t boff[KC_MAX];
    for (int kb = 0; kb < d->nkb; kb++) {
        const int k0 = kb * d->kc, kc = HY_MIN(d->kc, d->K - k0);
        for (int q = 0; q < kc; q++) {
            const int tp = k0 + q, ci = tp / (k * k), ky = tp % (k * k) / k, kx = tp % k;
            boff[q] = ((ptrdiff_t)ci * rows + ky) * wp + kx;
        }
        hy__gemm_epi e = { .act = HY_ACT_NONE, .first = kb == 0 && !t->acc, .last = kb == d->nkb - 1 };
        for (int m = 0; m < d->cout; m += mr) {
            const int mv = HY_MIN(mr, d->cout - m);
            const float *ap = t->apack + ((size_t)(m / mr) * d->K + k0) * mr;
            e.bias = t->bias ? t->bias + m : zero_bias;
            for (int oy = oy0; oy < oy1; oy++) {
                const float *src = xb + (size_t)(oy - oy0) * wp;
                float *yr = y + (size_t)m * P + (size_t)oy * d->ow;
                for (int x0 = 0; x0 < d->ow; x0 += nr)
                    kr->ukr(kc, ap, src + x0, boff, yr + x0, P, mv, HY_MIN(nr, d->ow - x0), &e);
            }
        }
    }
}

static void direct_worker(void *ctx, int ith, int nth) {
    direct_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) direct_item(t, ith, i);
}

static void direct_run(direct_task *t, hy__threadpool *tp) {
    if (t->x.n <= 0) return;
    hy__workq_init(&t->wq, (long)t->x.n * t->d.nbands, hy__threadpool_size(tp), 0, 1);
    hy__threadpool_run(tp, direct_worker, t);
}

static void conv_fwd(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y,
                     void *ws, hy__threadpool *tp) {
    if (hy__tconv_inf_preferred(c)) {
        hy__tconv_inf_fwd_ex(c, x, w, b, y, ws, tp, isa_now(), HY_TCONV_INF_AUTO);
        return;
    }
    conv_task t = { .kr = kern(), .x = x, .y = y };
    const int nth = hy__threadpool_size(tp);
    plan(t.kr, c, x.n, x.h, x.w, nth, &t.p);
    HY_ASSERT(ws && y.n == x.n && y.c == c->cout && x.c == c->cin && y.h == t.p.oh && y.w == t.p.ow);
    char *base = ws; // 64-byte aligned by contract
    t.apack = (float *)base;
    t.bias = (float *)(base + t.p.fwd_apack);
    t.thr = base + t.p.shared;
    const int mr = t.kr->mr;
    for (int m = 0; m < c->cout; m += mr)
        pack_a(w + (size_t)m * t.p.K, t.p.K, 1, HY_MIN(mr, c->cout - m), t.p.K, mr,
               t.apack + (size_t)m * t.p.K);
    for (int m = 0; m < t.p.mpad; m++) t.bias[m] = b && m < c->cout ? b[m] : 0.0f;
    if (direct_fwd(c)) {
        direct_task d = { .kr = t.kr, .x = x, .y = y, .apack = t.apack, .bias = t.bias, .thr = t.thr,
                          .per_thread = t.p.per_thread };
        dplan_make(c->cin, c->cout, c->k, c->pad, x.h, x.w, x.n, nth, &d.d);
        direct_run(&d, tp);
        return;
    }
    if (x.n <= 0) return;
    hy__workq_init(&t.wq, (long)x.n * t.p.ncb, nth, 0, 1);
    hy__threadpool_run(tp, fwd_worker, &t);
}

// --- conv backward, data ---------------------------------------------------------------

/* 1x1 stride 1: dx(cin, P) (=|+=) W^T(cin, cout) dy(cout, P); items (image, column block). */
static void bd_point_item(conv_task *t, int ith, long item) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int mr = kr->mr, nr = kr->nr, P = p->P;
    const int b = (int)(item / p->ncb), q0 = (int)(item % p->ncb) * p->nc;
    const int ncols = HY_MIN(p->nc, P - q0), npan = (ncols + nr - 1) / nr;
    const float *dy = t->dy.d + (size_t)b * t->dy.bs;
    float *dx = t->dx.d + (size_t)b * t->dx.bs;
    float *panel = (float *)(t->thr + (size_t)ith * p->per_thread);
    ptrdiff_t boff[KC_MAX];
    for (int kb = 0; kb < p->nkbd; kb++) {
        const int k0 = kb * p->kcd, kc = HY_MIN(p->kcd, c->cout - k0);
        for (int k = 0; k < kc; k++) boff[k] = (ptrdiff_t)(k0 + k) * P;
        hy__gemm_epi e = { .bias = t->bias, .act = HY_ACT_NONE, .first = kb == 0 && !t->acc,
                           .last = kb == p->nkbd - 1 };
        for (int m = 0; m < c->cin; m += mr) {
            const int mv = HY_MIN(mr, c->cin - m);
            const float *ap = t->apack + ((size_t)(m / mr) * c->cout + k0) * mr;
            for (int pn = 0; pn < npan; pn++) {
                const int j = q0 + pn * nr, nn = HY_MIN(nr, ncols - pn * nr);
                tile_direct(kr, kc, ap, dy + j, boff, nn, P - j, panel, dx + (size_t)m * P + j, P,
                            mv, &e);
            }
        }
    }
}

/* dx[ci] (=|+=) col2im of the kk rows of channel ci in dcol (kk, P). */
static void col2im_channel(const cplan *p, const float *dcol, float *dxc, int acc) {
    const hy__tconv *c = p->c;
    const int s = c->stride, w = p->w;
    if (!acc) memset(dxc, 0, (size_t)p->h * w * sizeof(float));
    for (int ky = 0; ky < c->k; ky++)
        for (int kx = 0; kx < c->k; kx++) {
            const float *src = dcol + (size_t)(ky * c->k + kx) * p->P;
            // output columns whose input column ox s - pad + kx lies in [0, w)
            const int lo = HY_MAX(0, (c->pad - kx + s - 1) / s);
            const int hi = HY_MIN(p->ow, (w - 1 + c->pad - kx) / s + 1);
            if (lo >= hi) continue;
            for (int oy = 0; oy < p->oh; oy++) {
                const int iy = oy * s - c->pad + ky;
                if (iy < 0 || iy >= p->h) continue;
                float *d = dxc + (size_t)iy * w - c->pad + kx;
                const float *sr = src + (size_t)oy * p->ow;
                if (s == 1)
                    for (int ox = lo; ox < hi; ox++) d[ox] += sr[ox];
                else
                    for (int ox = lo; ox < hi; ox++) d[ox * s] += sr[ox];
            }
        }
}

/* Group g's packed W^T rows (rup(cg kk, MR) / MR panels of (cout, MR)) in the shared A. */
static float *bd_group_a(const cplan *p, int mr, float *base, int g) {
    return base + (size_t)g * rup((size_t)p->cg * p->kk, (size_t)mr) * p->c->cout;
}

/* Packs group g's A: A(r, co) = W[co][ci0 kk + r], rows r < cgn kk. */
static void bd_pack_group(void *ctx, long g, int ith) {
    conv_task *t = ctx;
    const cplan *p = &t->p;
    const int mr = t->kr->mr, ci0 = (int)g * p->cg, rows = HY_MIN(p->cg, p->c->cin - ci0) * p->kk;
    float *ap = bd_group_a(p, mr, t->apack, (int)g);
    (void)ith;
    for (int m = 0; m < rows; m += mr)
        pack_a(t->w + (size_t)ci0 * p->kk + m, 1, p->K, HY_MIN(mr, rows - m), p->c->cout, mr,
               ap + (size_t)m * p->c->cout);
}

/* k x k or strided: item (image, channel group): dcol rows of the group, then col2im. */
static void bd_group_item(conv_task *t, int ith, long item) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int mr = kr->mr, nr = kr->nr, P = p->P;
    const int b = (int)(item / p->ngroups), ci0 = (int)(item % p->ngroups) * p->cg;
    const int cgn = HY_MIN(p->cg, c->cin - ci0), rows = cgn * p->kk;
    const float *dy = t->dy.d + (size_t)b * t->dy.bs;
    float *dx = t->dx.d + (size_t)b * t->dx.bs;
    char *tb = t->thr + (size_t)ith * p->per_thread;
    const float *ap = bd_group_a(p, mr, t->apack, ci0 / p->cg); // (rows / MR, cout, MR)
    float *panel = (float *)tb;                                  // (kcd, NR)
    float *dcol = (float *)(tb + p->bd_thread_a);                // (rows, P)
    ptrdiff_t boff[KC_MAX];
    for (int q0 = 0; q0 < P; q0 += p->ncd) {
        const int ncols = HY_MIN(p->ncd, P - q0), npan = (ncols + nr - 1) / nr;
        for (int kb = 0; kb < p->nkbd; kb++) {
            const int k0 = kb * p->kcd, kc = HY_MIN(p->kcd, c->cout - k0);
            for (int k = 0; k < kc; k++) boff[k] = (ptrdiff_t)(k0 + k) * P;
            hy__gemm_epi e = { .bias = t->bias, .act = HY_ACT_NONE, .first = kb == 0,
                               .last = kb == p->nkbd - 1 };
            for (int m = 0; m < rows; m += mr) {
                const int mv = HY_MIN(mr, rows - m);
                const float *a = ap + ((size_t)m * c->cout + (size_t)k0 * mr);
                for (int pn = 0; pn < npan; pn++) {
                    const int j = q0 + pn * nr, nn = HY_MIN(nr, ncols - pn * nr);
                    tile_direct(kr, kc, a, dy + j, boff, nn, P - j, panel,
                                dcol + (size_t)m * P + j, P, mv, &e);
                }
            }
        }
    }
    for (int g = 0; g < cgn; g++)
        col2im_channel(p, dcol + (size_t)g * p->kk * P, dx + (size_t)(ci0 + g) * p->h * p->w, t->acc);
}

static void bd_worker(void *ctx, int ith, int nth) {
    conv_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) {
            if (t->p.pointwise)
                bd_point_item(t, ith, i);
            else
                bd_group_item(t, ith, i);
        }
}

static void conv_bwd_data(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc,
                          void *ws, hy__threadpool *tp) {
    if (hy__tconv_inf_preferred(c) && hy__tconv_inf_bwd_data_ok(c)) {
        hy__tconv_inf_bwd_data_ex(c, dy, w, dx, acc, ws, tp, isa_now(), HY_TCONV_INF_AUTO);
        return;
    }
    conv_task t = { .kr = kern(), .dy = dy, .dx = dx, .acc = acc };
    const int nth = hy__threadpool_size(tp);
    plan(t.kr, c, dx.n, dx.h, dx.w, nth, &t.p);
    HY_ASSERT(ws && dy.n == dx.n && dy.c == c->cout && dx.c == c->cin && dy.h == t.p.oh &&
              dy.w == t.p.ow);
    char *base = ws;
    t.bias = zero_bias;
    t.thr = base + t.p.shared;
    const int mr = t.kr->mr;
    if (direct_bwd(c)) { // A(ci, (co, ky, kx)) = W[co][ci][k-1-ky][k-1-kx] in MR-row panels
        const int kk = t.p.kk, K2 = c->cout * kk;
        float *ap = (float *)base;
        for (int m0 = 0; m0 < c->cin; m0 += mr)
            for (int q = 0; q < K2; q++) {
                const int co = q / kk, rf = kk - 1 - q % kk;
                float *dst = ap + ((size_t)m0 * K2 + (size_t)q * mr);
                for (int i = 0; i < mr; i++)
                    dst[i] = m0 + i < c->cin ? w[(size_t)co * t.p.K + (size_t)(m0 + i) * kk + rf] : 0.0f;
            }
        direct_task d = { .kr = t.kr, .x = dy, .y = dx, .apack = ap, .acc = acc, .thr = t.thr,
                          .per_thread = t.p.per_thread };
        dplan_make(c->cout, c->cin, c->k, c->k - 1 - c->pad, dy.h, dy.w, dx.n, nth, &d.d);
        HY_ASSERT(d.d.oh == dx.h && d.d.ow == dx.w);
        direct_run(&d, tp);
        return;
    }
    if (t.p.pointwise) { // A = W^T (cin, cout) in MR-row panels
        t.apack = (float *)base;
        for (int m = 0; m < c->cin; m += mr)
            pack_a(w + m, 1, c->cin, HY_MIN(mr, c->cin - m), c->cout, mr, t.apack + (size_t)m * c->cout);
    } else {
        t.apack = (float *)base;
        t.w = w;
        hy__threadpool_each(tp, t.p.ngroups, bd_pack_group, &t);
    }
    if (dx.n <= 0) return;
    hy__workq_init(&t.wq, (long)dx.n * (t.p.pointwise ? t.p.ncb : t.p.ngroups), nth, 0, 1);
    hy__threadpool_run(tp, bd_worker, &t);
}

// --- conv backward, weight -----------------------------------------------------------------

typedef struct bw_task {
    const hy__gemm_kernel *kr;
    cplan p;
    hy__tview x, dy;
    int want_db;
    char *thr, *slots; /* per-thread regions; the groups' slots */
    float *dw;
    hy__workq wq;
} bw_task;

#define BW_FLUSH_PIX 2048 /* pixels summed in the float tile before it goes to the double sum */

/* sum of v[0 .. n) in double: 8 partial sums in a fixed order (not one latency-bound chain) */
static double sum8(const float *v, int n) {
    double a[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += v[i + j];
    for (; i < n; i++) a[i & 7] += v[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* acc (=|+=) tile; *fresh: acc holds nothing yet (cleared here). */
static void bw_flush(const cplan *p, const float *tile, double *acc, int *fresh) {
    const size_t nt = (size_t)p->c->cout * p->Kp;
    if (*fresh)
        for (size_t i = 0; i < nt; i++) acc[i] = tile[i];
    else
        for (size_t i = 0; i < nt; i++) acc[i] += tile[i];
    *fresh = 0;
}

/* *pend: pixels in the tile not yet added to acc (0: the tile holds nothing); *fresh: acc
 * holds nothing yet. */
static void bw_item(bw_task *t, int ith, long item, float *nhwc, float *ap, float *tile, double *acc,
                    double *dbacc, int *pend, int *fresh) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int mr = kr->mr, nr = kr->nr, s = c->stride, cin = c->cin, k = c->k;
    const int b = (int)(item / p->nbands), oy0 = (int)(item % p->nbands) * p->band;
    const int oy1 = HY_MIN(p->oh, oy0 + p->band), rows = (oy1 - oy0 - 1) * s + k;
    const float *x = t->x.d + (size_t)b * t->x.bs;
    const float *dy = t->dy.d + (size_t)b * t->dy.bs + (size_t)oy0 * p->ow;
    const size_t rowf = (size_t)p->wp * cin;
    (void)ith;
    // padded NHWC rows [oy0 s, oy0 s + rows): nhwc[(r wp + xp) cin + ci] = x[ci][oy0 s + r - pad][xp - pad]
    for (int r = 0; r < rows; r++) {
        float *dst = nhwc + (size_t)r * rowf;
        const int iy = oy0 * s + r - c->pad;
        if (iy < 0 || iy >= p->h) {
            memset(dst, 0, rowf * sizeof(float));
            continue;
        }
        const int l = HY_MIN(c->pad, p->wp), rgt = HY_MIN(p->w, p->wp - l);
        memset(dst, 0, (size_t)l * cin * sizeof(float));
        memset(dst + (size_t)(l + rgt) * cin, 0, (size_t)(p->wp - l - rgt) * cin * sizeof(float));
        float *d0 = dst + (size_t)l * cin;
        if (cin == 1) {
            memcpy(d0, x + (size_t)iy * p->w, (size_t)rgt * sizeof(float));
        } else {
            for (int ci0 = 0; ci0 < cin; ci0 += 8) { // 8 channels a pixel: whole 32-byte writes
                const int cn = HY_MIN(8, cin - ci0);
                const float *sr = x + ((size_t)ci0 * p->h + iy) * p->w;
                const size_t cs = (size_t)p->h * p->w;
                if (cn == 8) {
                    for (int ix = 0; ix < rgt; ix++) {
                        float *o = d0 + (size_t)ix * cin + ci0;
                        for (int cc = 0; cc < 8; cc++) o[cc] = sr[cc * cs + ix];
                    }
                } else {
                    for (int ix = 0; ix < rgt; ix++)
                        for (int cc = 0; cc < cn; cc++) d0[(size_t)ix * cin + ci0 + cc] = sr[cc * cs + ix];
                }
            }
        }
    }
    memset(nhwc + (size_t)rows * rowf, 0, SLACK * sizeof(float));

    const int L = (oy1 - oy0) * p->ow, P = p->P, chunk = k * cin;
    ptrdiff_t boff[KC_MAX];
    for (int p0 = 0; p0 < L; p0 += p->kcw) {
        const int kc = HY_MIN(p->kcw, L - p0);
        for (int m = 0; m < c->cout; m += mr)
            pack_a(dy + (size_t)m * P + p0, P, 1, HY_MIN(mr, c->cout - m), kc, mr, ap + (size_t)m * kc);
        for (int q = 0; q < kc; q++) {
            const int oy = (p0 + q) / p->ow, ox = (p0 + q) % p->ow;
            boff[q] = ((ptrdiff_t)oy * s * p->wp + (ptrdiff_t)ox * s) * cin;
        }
        const hy__gemm_epi e = { .bias = zero_bias, .act = HY_ACT_NONE, .first = *pend == 0, .last = 0 };
        *pend += kc;
        for (int m = 0; m < c->cout; m += mr) {
            const int mv = HY_MIN(mr, c->cout - m);
            const float *a = ap + (size_t)m * kc;
            for (int ky = 0; ky < k; ky++) {
                const float *src = nhwc + (size_t)ky * rowf;
                float *cr = tile + (size_t)m * p->Kp + (size_t)ky * chunk;
                for (int j = 0; j < chunk; j += nr)
                    kr->ukr(kc, a, src + j, boff, cr + j, p->Kp, mv, HY_MIN(nr, chunk - j), &e);
            }
        }
    }
    if (*pend >= BW_FLUSH_PIX) {
        bw_flush(p, tile, acc, fresh);
        *pend = 0;
    }
    if (dbacc)
        for (int co = 0; co < c->cout; co++) {
            const float *r = dy + (size_t)co * P;
            dbacc[co] += sum8(r, L);
        }
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_task *t = ctx;
    const cplan *p = &t->p;
    (void)nth;
    char *tb = t->thr + (size_t)ith * p->per_thread;
    float *nhwc = (float *)tb, *ap = (float *)(tb + p->bw_nhwc);
    float *tile = (float *)(tb + p->bw_nhwc + p->bw_a);
    const long nitems = (long)t->x.n * p->nbands;
    const size_t nacc = (size_t)p->c->cout * p->Kp;
    long g0, g1;
    while (hy__workq_take(&t->wq, ith, &g0, &g1))
        for (long g = g0; g < g1; g++) {
            char *slot = t->slots + (size_t)g * (p->bw_slot + p->bw_dbslot);
            double *acc = (double *)slot, *dbacc = (double *)(slot + p->bw_slot);
            memset(dbacc, 0, (size_t)p->c->cout * sizeof(double));
            int pend = 0, fresh = 1;
            for (long i = nitems * g / p->ngrp; i < nitems * (g + 1) / p->ngrp; i++)
                bw_item(t, ith, i, nhwc, ap, tile, acc, t->want_db ? dbacc : NULL, &pend, &fresh);
            if (pend) bw_flush(p, tile, acc, &fresh);
            if (fresh) memset(acc, 0, nacc * sizeof(double)); // no pixel (not reached: items >= 1 pixel)
        }
}

/* dw rows [co]: the groups' slots summed in group order; (co, ky, kx, ci) -> (co, ci, ky, kx). */
static void bw_sum_worker(void *ctx, int ith, int nth) {
    bw_task *t = ctx;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const size_t gs = p->bw_slot + p->bw_dbslot;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long co = i0; co < i1; co++) {
            const double *s0 = (const double *)t->slots + (size_t)co * p->Kp;
            float *d = t->dw + (size_t)co * p->K;
            for (int r = 0; r < p->kk; r++)
                for (int ci = 0; ci < c->cin; ci++) {
                    const size_t j = (size_t)r * c->cin + ci;
                    double sum = s0[j];
                    for (int g = 1; g < p->ngrp; g++) sum += ((const double *)((const char *)s0 + (size_t)g * gs))[j];
                    d[(size_t)ci * p->kk + r] += (float)sum;
                }
        }
}

static void conv_bwd_weight(const hy__tconv *c, hy__tview x, hy__tview dy, float *dw, float *db,
                            void *ws, hy__threadpool *tp) {
    bw_task t = { .kr = kern(), .x = x, .dy = dy, .want_db = db != NULL };
    const int nth = hy__threadpool_size(tp);
    plan(t.kr, c, x.n, x.h, x.w, nth, &t.p);
    const cplan *p = &t.p;
    HY_ASSERT(ws && dy.n == x.n && dy.c == c->cout && x.c == c->cin && dy.h == p->oh && dy.w == p->ow);
    if (x.n <= 0) return;
    t.slots = (char *)ws;
    t.thr = (char *)ws + p->shared;
    hy__workq_init_chunk(&t.wq, p->ngrp, nth, 1);
    hy__threadpool_run(tp, bw_worker, &t);
    t.dw = dw;
    hy__workq_init(&t.wq, c->cout, nth, 2, 1);
    hy__threadpool_run(tp, bw_sum_worker, &t);
    const size_t gs = p->bw_slot + p->bw_dbslot;
    if (db)
        for (int co = 0; co < c->cout; co++) {
            double sum = 0;
            for (int g = 0; g < p->ngrp; g++) sum += ((const double *)(t.slots + (size_t)g * gs + p->bw_slot))[co];
            db[co] += (float)sum;
        }
}

// --- BatchNorm + activation --------------------------------------------------------------

#define BN_CHUNK 256 /* floats per stack chunk for the vector exp */

typedef struct bn_task {
    const hy__gemm_kernel *kr;
    hy__tview z, dy, y, dz;
    const hy__tview *add;
    const float *gamma, *beta, *cmean, *cinvstd;
    float *rm, *rv, *mean, *invstd, *dgamma, *dbeta;
    float momentum, eps;
    int train, act;
    hy__workq wq;
} bn_task;

static double sum_f(const float *v, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += v[i];
        s1 += v[i + 1];
        s2 += v[i + 2];
        s3 += v[i + 3];
    }
    for (; i < n; i++) s0 += v[i];
    return (s0 + s1) + (s2 + s3);
}

static double sumsq_dev(const float *v, int n, double m) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const double a = v[i] - m, b = v[i + 1] - m, c = v[i + 2] - m, d = v[i + 3] - m;
        s0 += a * a;
        s1 += b * b;
        s2 += c * c;
        s3 += d * d;
    }
    for (; i < n; i++) s0 += (v[i] - m) * (v[i] - m);
    return (s0 + s1) + (s2 + s3);
}

static void bn_fwd_channel(bn_task *t, int ch) {
    const hy__tview z = t->z;
    const int hw = z.h * z.w;
    const size_t off = (size_t)ch * hw;
    double mean, invstd;
    if (t->train) {
        double s = 0;
        for (int b = 0; b < z.n; b++) s += sum_f(z.d + b * z.bs + off, hw);
        const double M = (double)z.n * hw;
        mean = s / M;
        double ss = 0;
        for (int b = 0; b < z.n; b++) ss += sumsq_dev(z.d + b * z.bs + off, hw, mean);
        const double var = ss / M;
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
    const float sc = (float)(t->gamma[ch] * invstd);
    const float sh = (float)(t->beta[ch] - mean * t->gamma[ch] * invstd);
    for (int b = 0; b < z.n; b++) {
        const float *zi = z.d + b * z.bs + off;
        float *yi = t->y.d + b * t->y.bs + off;
        for (int i = 0; i < hw; i++) yi[i] = zi[i] * sc + sh;
        if (t->act != HY_ACT_NONE) t->kr->act(yi, (size_t)hw, t->act, yi);
        if (t->add) {
            const float *ai = t->add->d + b * t->add->bs + off;
            for (int i = 0; i < hw; i++) yi[i] += ai[i];
        }
    }
}

static void bn_fwd_worker(void *ctx, int ith, int nth) {
    bn_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) bn_fwd_channel(t, (int)i);
}

static void bn_act_fwd(hy__tview z, const float *gamma, const float *beta, float *rm, float *rv,
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

/* du = dy * act'(u) over n floats of one row; u = z sc + sh. */
static void bn_du(const hy__gemm_kernel *kr, int act, const float *z, const float *dy, int n, float sc,
                  float sh, float *du) {
    if (act == HY_ACT_NONE) {
        memcpy(du, dy, (size_t)n * sizeof(float));
        return;
    }
    float u[BN_CHUNK], sg[BN_CHUNK];
    for (int i0 = 0; i0 < n; i0 += BN_CHUNK) {
        const int m = HY_MIN(BN_CHUNK, n - i0);
        for (int i = 0; i < m; i++) u[i] = z[i0 + i] * sc + sh;
        kr->act(u, (size_t)m, HY_ACT_SIGMOID, sg);
        // silu'(u) = s (1 + u (1 - s))
        for (int i = 0; i < m; i++) du[i0 + i] = dy[i0 + i] * (sg[i] * (1.0f + u[i] * (1.0f - sg[i])));
    }
}

static void bn_bwd_channel(bn_task *t, int ch) {
    const hy__tview z = t->z;
    const int hw = z.h * z.w;
    const size_t off = (size_t)ch * hw;
    const float mean = t->cmean[ch], is = t->cinvstd[ch];
    const float sc = t->gamma[ch] * is, sh = t->beta[ch] - mean * sc;
    double sdu = 0, sdux = 0;
    float buf[BN_CHUNK];
    for (int b = 0; b < z.n; b++) {
        const float *zi = z.d + b * z.bs + off, *dyi = t->dy.d + b * t->dy.bs + off;
        float *dzi = t->dz.d ? t->dz.d + b * t->dz.bs + off : NULL;
        for (int i0 = 0; i0 < hw; i0 += BN_CHUNK) {
            const int m = HY_MIN(BN_CHUNK, hw - i0);
            float *du = dzi ? dzi + i0 : buf;
            bn_du(t->kr, t->act, zi + i0, dyi + i0, m, sc, sh, du);
            double a0 = 0, a1 = 0;
            for (int i = 0; i < m; i++) {
                a0 += du[i];
                a1 += (double)du[i] * ((double)zi[i0 + i] - mean);
            }
            sdu += a0;
            sdux += a1;
        }
    }
    sdux *= is; // sum du xhat
    if (t->dgamma) t->dgamma[ch] += (float)sdux;
    if (t->dbeta) t->dbeta[ch] += (float)sdu;
    if (!t->dz.d) return;
    const double M = (double)z.n * hw;
    const float k0 = sc; // dz = gamma invstd (du - mean(du) - xhat mean(du xhat))
    const float mdu = t->train ? (float)(sdu / M) : 0.0f;
    const float mdx = t->train ? (float)(sdux / M) : 0.0f;
    for (int b = 0; b < z.n; b++) {
        const float *zi = z.d + b * z.bs + off;
        float *dzi = t->dz.d + b * t->dz.bs + off;
        for (int i = 0; i < hw; i++) dzi[i] = k0 * (dzi[i] - mdu - (zi[i] - mean) * is * mdx);
    }
}

static void bn_bwd_worker(void *ctx, int ith, int nth) {
    bn_task *t = ctx;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) bn_bwd_channel(t, (int)i);
}

static void bn_act_bwd(hy__tview z, hy__tview dy, const float *gamma, const float *beta, const float *mean,
                       const float *invstd, int train, int act, hy__tview dz, float *dgamma, float *dbeta,
                       hy__threadpool *tp) {
    HY_ASSERT(act == HY_ACT_NONE || act == HY_ACT_SILU);
    bn_task t = { .kr = kern(), .z = z, .dy = dy, .dz = dz, .gamma = gamma, .beta = beta, .cmean = mean,
                  .cinvstd = invstd, .train = train, .act = act, .dgamma = dgamma, .dbeta = dbeta };
    const int nth = hy__threadpool_size(tp);
    hy__workq_init(&t.wq, z.c, nth, 4, 1);
    hy__threadpool_run(tp, bn_bwd_worker, &t);
}

// --- planes: max-pool, upsample, copy ----------------------------------------------------

typedef struct plane_task {
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
        pool_fwd_plane(a, t->a.h, t->a.w, t->k, t->b.d + b * t->b.bs + ch * ha);
        break;
    case PL_POOL_BWD: // a = x, b = dy, c = dx
        pool_bwd_plane(a, t->b.d + b * t->b.bs + ch * ha, t->a.h, t->a.w, t->k,
                       t->c.d + b * t->c.bs + ch * ha, t->acc);
        break;
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

static void maxpool_fwd(hy__tview x, int k, hy__tview y, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1 && y.c == x.c && y.h == x.h && y.w == x.w);
    plane_task t = { .a = x, .b = y, .k = k, .kind = PL_POOL_FWD };
    planes_run(&t, tp);
}

static void maxpool_bwd(hy__tview x, hy__tview dy, int k, hy__tview dx, int acc, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1);
    plane_task t = { .a = x, .b = dy, .c = dx, .k = k, .acc = acc, .kind = PL_POOL_BWD };
    planes_run(&t, tp);
}

static void upsample2x_fwd(hy__tview x, hy__tview y, hy__threadpool *tp) {
    HY_ASSERT(y.h == 2 * x.h && y.w == 2 * x.w && y.c == x.c);
    plane_task t = { .a = x, .b = y, .kind = PL_UP_FWD };
    planes_run(&t, tp);
}

static void upsample2x_bwd(hy__tview dy, hy__tview dx, int acc, hy__threadpool *tp) {
    HY_ASSERT(dy.h == 2 * dx.h && dy.w == 2 * dx.w && dy.c == dx.c);
    plane_task t = { .a = dy, .b = dx, .acc = acc, .kind = PL_UP_BWD };
    planes_run(&t, tp);
}

static void copy_op(hy__tview src, hy__tview dst, int acc, hy__threadpool *tp) {
    HY_ASSERT(src.c == dst.c && src.h == dst.h && src.w == dst.w);
    plane_task t = { .a = src, .b = dst, .acc = acc, .kind = PL_COPY };
    planes_run(&t, tp);
}

const hy__train_ops hy__train_ops_cpu = {
    .name = "cpu",
    .conv_ws = conv_ws,
    .conv_fwd = conv_fwd,
    .conv_bwd_data = conv_bwd_data,
    .conv_bwd_weight = conv_bwd_weight,
    .bn_act_fwd = bn_act_fwd,
    .bn_act_bwd = bn_act_bwd,
    .maxpool_fwd = maxpool_fwd,
    .maxpool_bwd = maxpool_bwd,
    .upsample2x_fwd = upsample2x_fwd,
    .upsample2x_bwd = upsample2x_bwd,
    .copy = copy_op,
};
