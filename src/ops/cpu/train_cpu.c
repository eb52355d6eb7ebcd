/* Fast CPU training kernels (hy__train_ops_cpu): the convs as GEMMs on the per-ISA
 * micro-kernels of gemm.h, on the thread pool; the other ops as SIMD-friendly loops split
 * over channels or (image, channel) planes. Tested against the double reference
 * (ops/ref/train_ref.c) in tests/test_train_ops_cpu.c.
 *
 * Per image, K = cin k k, P = oh ow:
 *   fwd         y(cout, P)   = W(cout, K) col(K, P) + b,  A: W packed once per call.
 *               k x k stride 1 ("direct", dplan below): B read in place from a zero-padded
 *               copy of a band of rows; 1x1 stride 1 and strided convs: B blocks (kc x nc, of
 *               x rows or im2col rows) packed per thread into NR-wide panels, each panel run
 *               against every MR rows of A while it sits in L1 (gemm_panels; AVX2: its own
 *               4 x 24 tile, B in registers). Items: (image, band or column block).
 *   bwd_data    k x k stride 1: the direct fwd of dy with the flipped W^T (full correlation).
 *               1x1 stride 1: dx(cin, P) = W^T dy, dy blocks packed as the fwd's B. Strided:
 *               dcol(K, P) = W^T(K, cout) dy(cout, P) per (image, channel group) into the
 *               thread's buffer (dy blocks packed likewise), then col2im into the group's own
 *               dx channels.
 *   bwd_weight  dW(cout, K) += dy(cout, P) row(P, K), two paths (plan picks by FMA use):
 *               dot path (1x1, the stem): dW(co, (ci, ky, kx)) = sum_t dy(co, t) x'(ci, ky, kx, t):
 *               x in stride x stride phase planes (one copy of the band, width wq = ow + (k-1)/s)
 *               makes every tap a contiguous slice with the same flat index t as dy padded to
 *               wq (its pad columns zero where the slice wraps); 1x1 stride 1 reads x and dy in
 *               place. Micro-kernel: 3 dy rows x 4 taps, 8-lane sums along t, no packing or
 *               transposes; whole small images go several per item (summed in registers).
 *               k x k path: dW'(cout, (ky, kx, ci)) from a zero-padded NHWC copy read in place
 *               by the GEMM micro-kernel through per-pixel offsets, A = dy packed per K block.
 *               Items: (image(s), band of output rows). The items form
 *               ngrp fixed groups (shape and batch only); one thread sums a group in item
 *               order, in float into its tile (cout, K) for >= BW_FLUSH_PIX pixels at a time,
 *               then into the group's double slot; the slots are added in group order (and
 *               permuted to (cout, cin, k, k)): bitwise the same for any thread count/timing.
 * Every kernel is bitwise reproducible and independent of n_threads (for one ISA).
 * No allocation: the workspace (conv_ws) holds packed weights, per-thread buffers and
 * accumulators. */
#include "backend/backend_impl.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/train_conv_inf.h"
#include "ops/cpu/train_elem.h"
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
int hy__train_cpu_isa(void) { return isa_now(); }

#if defined(HY_HAVE_AVX2) && (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HY_TRAIN_AVX2 1
#define AVX2_FN __attribute__((target("avx2,fma")))

/* The packed-B AVX2 tile (MR 4 x NR 24) of gemm_avx2.c's ukr (same sums in the same order, no
 * activation / residual / segments): the empty asm keeps the three B vectors in registers;
 * without it compilers fold them into the FMAs (12 loads + 4 broadcasts per k where 2
 * 256-bit loads issue per cycle: 75% of the FMA peak at best; ~100% with it). b: (kc, 24),
 * 32-byte aligned, zero past n. */
static AVX2_FN void tile_4x24_avx2(int kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int m,
                                   int n, const float *bias, int first, int last) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), b2 = _mm256_load_ps(b + 16);
        __asm__("" : "+x"(b0), "+x"(b1), "+x"(b2));
        __m256 ai = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        c02 = _mm256_fmadd_ps(ai, b2, c02);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        c12 = _mm256_fmadd_ps(ai, b2, c12);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        c22 = _mm256_fmadd_ps(ai, b2, c22);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        c32 = _mm256_fmadd_ps(ai, b2, c32);
        a += 4;
        b += 24;
    }
    const __m256 acc[4][3] = { { c00, c01, c02 }, { c10, c11, c12 }, { c20, c21, c22 }, { c30, c31, c32 } };
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const __m256 bi = _mm256_set1_ps(bias[i]);
        for (int v = 0; v < 3 && v * 8 < n; v++) {
            __m256 r = acc[i][v];
            if (n >= v * 8 + 8) {
                if (!first) r = _mm256_add_ps(r, _mm256_loadu_ps(ci + v * 8));
                if (last) r = _mm256_add_ps(r, bi);
                _mm256_storeu_ps(ci + v * 8, r);
            } else {
                const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - v * 8), lane);
                if (!first) r = _mm256_add_ps(r, _mm256_maskload_ps(ci + v * 8, k));
                if (last) r = _mm256_add_ps(r, bi);
                _mm256_maskstore_ps(ci + v * 8, k, r);
            }
        }
    }
}
#endif

// --- blocking -------------------------------------------------------------------------

#define KC_MAX 384    /* reduction block of in-place B (boff arrays): A (kc x MR) panel in L1 */
#define KC_PACKED 256 /* packed-B GEMM reduction block: one B panel (kc x NR) stays in L1 */
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
#define BW_TB 512         /* reduction block (floats): the block's x planes stay in L2 */
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
    /* bwd_weight: bands of output rows; phase planes sp x sp per channel, rows brq (band + be),
     * width wq (ow + be), be = (k - 1) / s */
    int band, nbands, bsp, be, wq, brq;
    int bimg, nimg; /* images per item (several when one band is the whole image), image groups */
    int bw_dot;     /* dot path (1x1, or where the k x k path's NR tiles would be mostly empty) */
    int bwp, kcw;   /* k x k path: padded NHWC row width, pixels per A block */
    /* bytes */
    size_t shared, per_thread;
    size_t fwd_apack, fwd_bias, fwd_thread;        /* shared A, bias; per thread B block */
    size_t bd_apack, bd_thread_a, bd_thread_dcol;  /* pointwise shared A^T; per thread */
    int ngrp;                                      /* bwd_weight: item groups (their own sums) */
    size_t bw_x, bw_dy, bw_tile, bw_off;           /* per thread */
    size_t bw_ximg;                                /* floats of one image's planes */
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
    p->nkb = (p->K + KC_PACKED - 1) / KC_PACKED;
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
    p->nkbd = (c->cout + KC_PACKED - 1) / KC_PACKED;
    p->kcd = (c->cout + p->nkbd - 1) / p->nkbd;
    p->ncd = HY_MAX(nr, (int)(B_BLOCK_BYTES / ((size_t)p->kcd * sizeof(float))) / nr * nr);
    if (p->pointwise) {
        p->bd_apack = fl64(rup((size_t)c->cin, (size_t)mr) * c->cout);
        p->bd_thread_a = fl64((size_t)p->kcd * rup((size_t)nc_cap, (size_t)nr)); // packed dy block
    } else {
        int cg = (int)(DCOL_BYTES / ((size_t)p->kk * p->P * sizeof(float)));
        cg = HY_MIN(HY_MAX(cg, 1), c->cin);
        const size_t rows = (size_t)cg * p->kk; // buffers sized for the nth-independent cap
        p->bd_thread_a = fl64((size_t)p->kcd * p->ncd); // packed dy block
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

    // bwd_weight: bands of output rows whose phase planes fit NHWC_BYTES
    p->bsp = HY_MIN(c->stride, c->k);
    p->be = (c->k - 1) / c->stride;
    p->wq = p->ow + p->be;
    const size_t rowf = (size_t)c->cin * p->bsp * p->bsp * p->wq; // floats per band row
    int band = (int)(NHWC_BYTES / (rowf * sizeof(float))) - p->be;
    band = HY_MIN(HY_MAX(band, 1), p->oh);
    const int bwant = (BW_GROUPS_MAX + n - 1) / n; // not nth: the sums' order must not depend on it
    band = HY_MIN(band, HY_MAX(1, (p->oh + bwant - 1) / bwant));
    band = HY_MIN(band, p->oh);
    p->band = band;
    p->nbands = (p->oh + band - 1) / band;
    p->brq = band + p->be;
    p->bw_ximg = (size_t)p->brq * rowf;
    // whole images per band: several images per item (their sums stay in the micro-kernel's
    // registers), up to BW_TB reduction elements, >= BW_GROUPS_MIN items, planes <= NHWC_BYTES
    p->bimg = 1;
    if (p->nbands == 1) {
        int bi = HY_MAX(1, BW_TB / (band * p->wq));
        bi = HY_MIN(bi, HY_MAX(1, n / BW_GROUPS_MIN));
        if (!p->pointwise)
            bi = HY_MIN(bi, HY_MAX(1, (int)(NHWC_BYTES / (p->bw_ximg * sizeof(float)))));
        p->bimg = bi;
    }
    p->nimg = (n + p->bimg - 1) / p->bimg;
    p->bw_x = p->pointwise ? 0 : fl64((size_t)p->bimg * p->bw_ximg + SLACK);
    p->bw_dy = p->pointwise || p->be == 0 ? 0 : fl64((size_t)p->bimg * c->cout * band * p->wq);
    p->bw_tile = fl64((size_t)c->cout * p->K);
    p->bw_off = fl64((size_t)p->K * sizeof(ptrdiff_t) / sizeof(float));
    { // the dot path spends ow / wq of its FMAs on pixels; the k x k path chunk / (NR tiles)
        const int chunk = c->k * c->cin, tiles = (chunk + nr - 1) / nr * nr;
        p->bw_dot = c->k == 1 || (double)p->ow / p->wq >= (double)chunk / tiles;
    }
    if (!p->bw_dot) { // k x k path: bands of output rows whose padded NHWC copy fits NHWC_BYTES
        p->bwp = HY_MAX(w + 2 * c->pad, (p->ow - 1) * c->stride + c->k);
        const size_t rowc = (size_t)p->bwp * c->cin; // floats per padded row
        int bnd = (int)(NHWC_BYTES / (rowc * sizeof(float) * c->stride));
        bnd = HY_MIN(HY_MAX(bnd, 1), p->oh);
        const int brows_cap = (bnd - 1) * c->stride + c->k;
        bnd = HY_MIN(bnd, HY_MAX(1, (p->oh + bwant - 1) / bwant));
        bnd = HY_MIN(bnd, p->oh);
        p->band = bnd;
        p->nbands = (p->oh + bnd - 1) / bnd;
        p->bimg = 1;
        p->nimg = n;
        p->kcw = HY_MIN(KC_MAX, bnd * p->ow);
        p->bw_x = fl64((size_t)brows_cap * rowc + SLACK); // NHWC rows
        p->bw_dy = fl64((size_t)p->mpad * KC_MAX);        // packed dy (A)
        p->bw_off = 0;
    }
    p->bw_slot = rup((size_t)c->cout * p->K * sizeof(double), 64);
    p->bw_dbslot = rup((size_t)c->cout * sizeof(double), 64);
    { // groups: enough to share out (>= BW_GROUPS_MIN), up to one per BW_GROUP_PIX pixels
        const long items = (long)p->nimg * p->nbands, pix = (long)n * p->P;
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
    const size_t bw_t = p->bw_x + p->bw_dy + p->bw_tile + p->bw_off;
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

/* B block of rows src + k ld (k < kc), columns [0, ncols), into panels (kc, NR) zero-padded. */
static void pack_b_rows(const float *src, ptrdiff_t ld, int kc, int ncols, int nr, float *bp) {
    const int npan = (ncols + nr - 1) / nr;
    for (int k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        for (int pn = 0; pn < npan; pn++) {
            float *dst = bp + ((size_t)pn * kc + k) * nr;
            const int nn = HY_MIN(nr, ncols - pn * nr);
            memcpy(dst, s + pn * nr, (size_t)nn * sizeof(float));
            if (nn < nr) memset(dst + nn, 0, (size_t)(nr - nn) * sizeof(float));
        }
    }
}

/* C(M, ncols) (first ? = : +=) A(M, kc) B(kc, ncols) (+ bias on last; NULL: none): B packed as
 * npan panels (kc, NR); each panel (L1) meets every MR-row panel of A ((M / MR, K, MR), L2). */
static void gemm_panels(const hy__gemm_kernel *kr, const float *apack, int K, int k0, int kc, int M,
                        const float *bp, int ncols, float *cm, ptrdiff_t ldc, const float *bias,
                        int first, int last) {
    const int mr = kr->mr, nr = kr->nr, npan = (ncols + nr - 1) / nr;
    hy__gemm_epi e = { .act = HY_ACT_NONE, .first = first, .last = last };
#ifdef HY_TRAIN_AVX2
    if (kr->isa == HY_CPU_ISA_AVX2 && mr == 4 && nr == 24) {
        for (int pn = 0; pn < npan; pn++) {
            const int nn = HY_MIN(nr, ncols - pn * nr);
            const float *b = bp + (size_t)pn * kc * nr;
            for (int m = 0; m < M; m += mr)
                tile_4x24_avx2(kc, apack + ((size_t)(m / mr) * K + k0) * mr, b, cm + (size_t)m * ldc + pn * nr,
                               ldc, HY_MIN(mr, M - m), nn, bias ? bias + m : zero_bias, first, last);
        }
        return;
    }
#endif
    for (int pn = 0; pn < npan; pn++) {
        const int nn = HY_MIN(nr, ncols - pn * nr);
        const float *b = bp + (size_t)pn * kc * nr;
        for (int m = 0; m < M; m += mr) {
            e.bias = bias ? bias + m : zero_bias;
            kr->ukr(kc, apack + ((size_t)(m / mr) * K + k0) * mr, b, NULL, cm + (size_t)m * ldc + pn * nr,
                    ldc, HY_MIN(mr, M - m), nn, &e);
        }
    }
}

static void fwd_item(conv_task *t, int ith, long item) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int nr = kr->nr, P = p->P;
    const int b = (int)(item / p->ncb), q0 = (int)(item % p->ncb) * p->nc;
    const int ncols = HY_MIN(p->nc, P - q0), npan = (ncols + nr - 1) / nr;
    const float *x = t->x.d + (size_t)b * t->x.bs;
    float *y = t->y.d + (size_t)b * t->y.bs;
    float *bp = (float *)(t->thr + (size_t)ith * p->per_thread); // (npan, kc, NR)
    float *row = bp + (size_t)p->kc * npan * nr;
    for (int kb = 0; kb < p->nkb; kb++) {
        const int k0 = kb * p->kc, kc = HY_MIN(p->kc, p->K - k0);
        if (p->pointwise) {
            pack_b_rows(x + (size_t)k0 * P + q0, P, kc, ncols, nr, bp);
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
        gemm_panels(kr, t->apack, p->K, k0, kc, c->cout, bp, ncols, y + q0, P, t->bias, kb == 0,
                    kb == p->nkb - 1);
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
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int P = p->P;
    const int b = (int)(item / p->ncb), q0 = (int)(item % p->ncb) * p->nc, ncols = HY_MIN(p->nc, P - q0);
    const float *dy = t->dy.d + (size_t)b * t->dy.bs;
    float *dx = t->dx.d + (size_t)b * t->dx.bs;
    float *bp = (float *)(t->thr + (size_t)ith * p->per_thread); // (npan, kcd, NR)
    for (int kb = 0; kb < p->nkbd; kb++) {
        const int k0 = kb * p->kcd, kc = HY_MIN(p->kcd, c->cout - k0);
        pack_b_rows(dy + (size_t)k0 * P + q0, P, kc, ncols, t->kr->nr, bp);
        gemm_panels(t->kr, t->apack, c->cout, k0, kc, c->cin, bp, ncols, dx + q0, P, NULL,
                    kb == 0 && !t->acc, kb == p->nkbd - 1);
    }
}

/* dx[ci] (=|+=) col2im of the kk rows of channel ci in dcol (kk, P). */
static void col2im_channel(const cplan *p, const float *dcol, float *dxc, int acc) {
    const hy__tconv *c = p->c;
    const int s = c->stride, w = p->w;
    if (!acc) memset(dxc, 0, (size_t)p->h * w * sizeof(float));
    if (s == 2 && c->k == 3 && c->pad == 1) { // the downsampling convs: one pass per dx row and ky
        // input column ix = 2 ox - 1 + kx: even 2j <- kx 1 at j; odd 2j + 1 <- kx 2 at j, kx 0 at j + 1
        const int ne = HY_MIN((w + 1) / 2, p->ow), no = HY_MIN(w / 2, p->ow), nb = HY_MIN(no, p->ow - 1);
        for (int ky = 0; ky < 3; ky++)
            for (int oy = 0; oy < p->oh; oy++) {
                const int iy = 2 * oy - 1 + ky;
                if (iy < 0 || iy >= p->h) continue;
                float *d = dxc + (size_t)iy * w;
                const float *a0 = dcol + (size_t)(ky * 3) * p->P + (size_t)oy * p->ow;
                const float *a1 = a0 + p->P, *a2 = a1 + p->P;
                int j = 0;
                for (; j < nb; j++) {
                    d[2 * j] += a1[j];
                    d[2 * j + 1] += a2[j] + a0[j + 1];
                }
                for (int u = j; u < ne; u++) d[2 * u] += a1[u];
                for (int u = j; u < no; u++) d[2 * u + 1] += a2[u];
            }
        return;
    }
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
    const int mr = kr->mr, P = p->P;
    const int b = (int)(item / p->ngroups), ci0 = (int)(item % p->ngroups) * p->cg;
    const int cgn = HY_MIN(p->cg, c->cin - ci0), rows = cgn * p->kk;
    const float *dy = t->dy.d + (size_t)b * t->dy.bs;
    float *dx = t->dx.d + (size_t)b * t->dx.bs;
    char *tb = t->thr + (size_t)ith * p->per_thread;
    const float *ap = bd_group_a(p, mr, t->apack, ci0 / p->cg); // (rows / MR, cout, MR)
    float *bp = (float *)tb;                                     // (npan, kcd, NR)
    float *dcol = (float *)(tb + p->bd_thread_a);                // (rows, P)
    for (int q0 = 0; q0 < P; q0 += p->ncd) {
        const int ncols = HY_MIN(p->ncd, P - q0);
        for (int kb = 0; kb < p->nkbd; kb++) {
            const int k0 = kb * p->kcd, kc = HY_MIN(p->kcd, c->cout - k0);
            pack_b_rows(dy + (size_t)k0 * P + q0, P, kc, ncols, kr->nr, bp);
            gemm_panels(kr, ap, c->cout, k0, kc, rows, bp, ncols, dcol + q0, P, NULL, kb == 0,
                        kb == p->nkbd - 1);
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
    int want_db, avx2;
    char *thr, *slots; /* per-thread regions; the groups' slots */
    float *dw;
    hy__workq wq;
} bw_task;

#define BW_FLUSH_PIX 2048 /* reduction elements summed in the float tile before the double sum */

/* sum of v[0 .. n) in double: 8 partial sums in a fixed order (not one latency-bound chain) */
static double sum8(const float *v, int n) {
    double a[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += v[i + j];
    for (; i < n; i++) a[i & 7] += v[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* Dot tile: c[i ldc + j] (=|+=) sum_t d[i][t] b[j][t] for i < m (<= 3 dy rows), j < nt (<= 4 x
 * rows), over nseg segments (images) of len t each, the rows of segment g at d[i] + g ds and
 * b[j] + g bs; each sum in 8 lanes (t mod 8), reduced in a fixed order. Unused pointers alias
 * row 0. */
typedef struct dot_args {
    int nseg, len;
    ptrdiff_t ds, bs;
} dot_args;

static void dot_generic(const dot_args *g, const float *const *d, int m, const float *const *b,
                        int nt, float *c, ptrdiff_t ldc, int first) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nt; j++) {
            float l[8] = { 0 };
            for (int sg = 0; sg < g->nseg; sg++) {
                const float *di = d[i] + sg * g->ds, *bj = b[j] + sg * g->bs;
                int t = 0;
                for (; t + 8 <= g->len; t += 8)
                    for (int u = 0; u < 8; u++) l[u] += di[t + u] * bj[t + u];
                for (int u = 0; t + u < g->len; u++) l[u] += di[t + u] * bj[t + u];
            }
            const float sum = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
            c[i * ldc + j] = first ? sum : c[i * ldc + j] + sum;
        }
}

#ifdef HY_TRAIN_AVX2
#define HY_BW_AVX2 1

static inline AVX2_FN __attribute__((always_inline)) void
dot_m(const int M, const dot_args *g, const float *const *d, const float *const *b, int nt,
      float *c, ptrdiff_t ldc, int first) {
    __m256 acc[3][4];
#pragma GCC unroll 3
    for (int i = 0; i < M; i++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_ps();
    const float *dp[3] = { d[0], d[M > 1 ? 1 : 0], d[M > 2 ? 2 : 0] };
    const float *bp[4] = { b[0], b[1], b[2], b[3] };
    const int len = g->len;
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(len % 8),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int sg = 0; sg < g->nseg; sg++) {
        int t = 0;
        for (; t + 8 <= len; t += 8) {
            __m256 dv[3];
#pragma GCC unroll 3
            for (int i = 0; i < M; i++) {
                dv[i] = _mm256_loadu_ps(dp[i] + t);
                // keep the dy vectors in registers (else the compiler reloads them per FMA)
                __asm__("" : "+x"(dv[i]));
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256 bv = _mm256_loadu_ps(bp[j] + t);
                __asm__("" : "+x"(bv));
#pragma GCC unroll 3
                for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(dv[i], bv, acc[i][j]);
            }
        }
        if (t < len) { // masked tail: lanes >= len - t read nothing
            __m256 dv[3];
#pragma GCC unroll 3
            for (int i = 0; i < M; i++) dv[i] = _mm256_maskload_ps(dp[i] + t, tail);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256 bv = _mm256_maskload_ps(bp[j] + t, tail);
#pragma GCC unroll 3
                for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(dv[i], bv, acc[i][j]);
            }
        }
#pragma GCC unroll 3
        for (int i = 0; i < 3; i++) dp[i] += g->ds;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) bp[j] += g->bs;
    }
#pragma GCC unroll 3
    for (int i = 0; i < M; i++) {
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[i][0], acc[i][1]),
                                        _mm256_hadd_ps(acc[i][2], acc[i][3]));
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); // (j0..j3)
        float *ci = c + i * ldc;
        if (nt == 4) {
            if (!first) s = _mm_add_ps(s, _mm_loadu_ps(ci));
            _mm_storeu_ps(ci, s);
        } else {
            _Alignas(16) float v[4];
            _mm_store_ps(v, s);
            for (int j = 0; j < nt; j++) ci[j] = first ? v[j] : ci[j] + v[j];
        }
    }
}

static AVX2_FN void dot_avx2(const dot_args *g, const float *const *d, int m, const float *const *b,
                             int nt, float *c, ptrdiff_t ldc, int first) {
    if (m == 3)
        dot_m(3, g, d, b, nt, c, ldc, first);
    else if (m == 2)
        dot_m(2, g, d, b, nt, c, ldc, first);
    else
        dot_m(1, g, d, b, nt, c, ldc, first);
}
#endif

/* acc (=|+=) tile; *fresh: acc holds nothing yet (cleared here). */
static void bw_flush(const cplan *p, const float *tile, double *acc, int *fresh) {
    const size_t nt = (size_t)p->c->cout * p->K;
    if (*fresh)
        for (size_t i = 0; i < nt; i++) acc[i] = tile[i];
    else
        for (size_t i = 0; i < nt; i++) acc[i] += tile[i];
    *fresh = 0;
}

/* Phase planes of band [oy0, oy0 + nb) of image x:
 * xq[((ci nph + py sp + px) rqc + r) wq + u] = x[ci][(oy0 + r) s + py - pad][u s + px - pad]
 * (0 outside), r < nb + e, u < wq. */
static void bw_planes(const cplan *p, const float *x, int oy0, int nb, float *xq) {
    const hy__tconv *c = p->c;
    const int s = c->stride, sp = p->bsp, wq = p->wq, rows = nb + p->be;
    for (int ci = 0; ci < c->cin; ci++)
        for (int py = 0; py < sp; py++)
            for (int px = 0; px < sp; px++) {
                float *pl = xq + ((size_t)(ci * sp + py) * sp + px) * p->brq * wq;
                // columns u with input column u s + px - pad inside [0, w)
                const int lo = HY_MIN(wq, HY_MAX(0, (c->pad - px + s - 1) / s));
                const int hi = HY_MAX(lo, HY_MIN(wq, (p->w - 1 + c->pad - px) / s + 1));
                for (int r = 0; r < rows; r++) {
                    float *o = pl + (size_t)r * wq;
                    const int iy = (oy0 + r) * s + py - c->pad;
                    if (iy < 0 || iy >= p->h) {
                        memset(o, 0, (size_t)wq * sizeof(float));
                        continue;
                    }
                    const float *xr = x + ((size_t)ci * p->h + iy) * p->w + px - c->pad;
                    for (int u = 0; u < lo; u++) o[u] = 0.0f;
                    if (s == 1)
                        memcpy(o + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
                    else if (s == 2)
                        for (int u = lo; u < hi; u++) o[u] = xr[2 * u];
                    else
                        for (int u = lo; u < hi; u++) o[u] = xr[(ptrdiff_t)u * s];
                    for (int u = hi; u < wq; u++) o[u] = 0.0f;
                }
                // a short band: the e floats after its rows are read (times dy's zero pad)
                if (rows < p->brq) memset(pl + (size_t)rows * wq, 0, (size_t)p->be * sizeof(float));
            }
}

/* *pend: reduction elements in the tile not yet added to acc (0: the tile holds nothing);
 * *fresh: acc holds nothing yet. */
static void bw_item(bw_task *t, long item, float *xq, float *dyq, float *tile, const ptrdiff_t *toff,
                    double *acc, double *dbacc, int *pend, int *fresh) {
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int wq = p->wq, cout = c->cout, P = p->P;
    const int b0 = (int)(item / p->nbands) * p->bimg, oy0 = (int)(item % p->nbands) * p->band;
    const int ni = HY_MIN(p->n - b0, p->bimg), nb = HY_MIN(p->oh, oy0 + p->band) - oy0, L = nb * wq;
    const float *x = t->x.d + (size_t)b0 * t->x.bs;
    const float *dy = t->dy.d + (size_t)b0 * t->dy.bs + (size_t)oy0 * p->ow;
    const float *xb, *db;
    ptrdiff_t dys; // dy row stride
    dot_args g = { .nseg = ni, .len = L, .ds = (ptrdiff_t)t->dy.bs, .bs = (ptrdiff_t)t->x.bs };
    if (p->pointwise) { // x and dy rows in place
        xb = x + (size_t)oy0 * p->ow;
        db = dy;
        dys = P;
    } else {
        g.bs = (ptrdiff_t)p->bw_ximg;
        for (int i = 0; i < ni; i++)
            bw_planes(p, x + (size_t)i * t->x.bs, oy0, nb, xq + (size_t)i * p->bw_ximg);
        memset(xq + (size_t)ni * p->bw_ximg, 0, SLACK * sizeof(float));
        xb = xq;
        db = dy;
        dys = P;
        if (p->be > 0) { // dy rows padded to wq with zeros (the pad columns meet wrapped x)
            for (int i = 0; i < ni; i++)
                for (int co = 0; co < cout; co++)
                    for (int r = 0; r < nb; r++) {
                        float *o = dyq + (((size_t)i * cout + co) * nb + r) * wq;
                        memcpy(o, dy + i * t->dy.bs + (size_t)co * P + (size_t)r * p->ow,
                               (size_t)p->ow * sizeof(float));
                        memset(o + p->ow, 0, (size_t)(wq - p->ow) * sizeof(float));
                    }
            db = dyq;
            dys = L;
            g.ds = (ptrdiff_t)cout * L;
        }
    }
    for (int t0 = 0; t0 < L; t0 += BW_TB) { // ni > 1 only where L <= BW_TB (plan)
        const int first = *pend == 0 && t0 == 0;
        g.len = HY_MIN(BW_TB, L - t0);
        for (int co = 0; co < cout; co += 3) {
            const int m = HY_MIN(3, cout - co);
            const float *dr[3];
            for (int i = 0; i < 3; i++) dr[i] = db + (ptrdiff_t)(co + (i < m ? i : 0)) * dys + t0;
            float *cr = tile + (size_t)co * p->K;
            for (int j0 = 0; j0 < p->K; j0 += 4) {
                const int nt = HY_MIN(4, p->K - j0);
                const float *br[4];
                for (int j = 0; j < 4; j++) br[j] = xb + toff[j0 + (j < nt ? j : 0)] + t0;
#ifdef HY_BW_AVX2
                if (t->avx2)
                    dot_avx2(&g, dr, m, br, nt, cr + j0, p->K, first);
                else
#endif
                    dot_generic(&g, dr, m, br, nt, cr + j0, p->K, first);
            }
        }
    }
    *pend += ni * L;
    if (*pend >= BW_FLUSH_PIX) {
        bw_flush(p, tile, acc, fresh);
        *pend = 0;
    }
    if (dbacc)
        for (int i = 0; i < ni; i++)
            for (int co = 0; co < cout; co++)
                dbacc[co] += sum8(dy + i * t->dy.bs + (size_t)co * P, nb * p->ow);
}

/* k x k (not the dot path): dW'(cout, (ky, kx, ci)) += dy(cout, P) row(P, K'), row read in place
 * from a padded NHWC copy of the band through per-pixel offsets (the file comment). */
static void bw_item_rows(bw_task *t, long item, float *nhwc, float *ap, float *tile, double *acc,
                         double *dbacc, int *pend, int *fresh) {
    const hy__gemm_kernel *kr = t->kr;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const int mr = kr->mr, nr = kr->nr, s = c->stride, cin = c->cin, k = c->k;
    const int b = (int)(item / p->nbands), oy0 = (int)(item % p->nbands) * p->band;
    const int oy1 = HY_MIN(p->oh, oy0 + p->band), rows = (oy1 - oy0 - 1) * s + k;
    const float *x = t->x.d + (size_t)b * t->x.bs;
    const float *dy = t->dy.d + (size_t)b * t->dy.bs + (size_t)oy0 * p->ow;
    const size_t rowf = (size_t)p->bwp * cin;
    // padded NHWC rows [oy0 s, oy0 s + rows): nhwc[(r wp + xp) cin + ci] = x[ci][oy0 s + r - pad][xp - pad]
    for (int r = 0; r < rows; r++) {
        float *dst = nhwc + (size_t)r * rowf;
        const int iy = oy0 * s + r - c->pad;
        if (iy < 0 || iy >= p->h) {
            memset(dst, 0, rowf * sizeof(float));
            continue;
        }
        const int l = HY_MIN(c->pad, p->bwp), rgt = HY_MIN(p->w, p->bwp - l);
        memset(dst, 0, (size_t)l * cin * sizeof(float));
        memset(dst + (size_t)(l + rgt) * cin, 0, (size_t)(p->bwp - l - rgt) * cin * sizeof(float));
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
            boff[q] = ((ptrdiff_t)oy * s * p->bwp + (ptrdiff_t)ox * s) * cin;
        }
        const hy__gemm_epi e = { .bias = zero_bias, .act = HY_ACT_NONE, .first = *pend == 0, .last = 0 };
        *pend += kc;
        for (int m = 0; m < c->cout; m += mr) {
            const int mv = HY_MIN(mr, c->cout - m);
            const float *a = ap + (size_t)m * kc;
            for (int ky = 0; ky < k; ky++) {
                const float *src = nhwc + (size_t)ky * rowf;
                float *cr = tile + (size_t)m * p->K + (size_t)ky * chunk;
                for (int j = 0; j < chunk; j += nr)
                    kr->ukr(kc, a, src + j, boff, cr + j, p->K, mv, HY_MIN(nr, chunk - j), &e);
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
    float *xq = (float *)tb, *dyq = (float *)(tb + p->bw_x);
    float *tile = (float *)(tb + p->bw_x + p->bw_dy);
    ptrdiff_t *toff = (ptrdiff_t *)(tb + p->bw_x + p->bw_dy + p->bw_tile);
    if (p->bw_dot) { // x row of tap (ci, ky, kx): plane (ci, ky % s, kx % s) from (ky / s, kx / s)
        const hy__tconv *c = p->c;
        const int s = c->stride, sp = p->bsp;
        const ptrdiff_t plane = p->pointwise ? (ptrdiff_t)p->h * p->w : (ptrdiff_t)p->brq * p->wq;
        for (int ci = 0, q = 0; ci < c->cin; ci++)
            for (int ky = 0; ky < c->k; ky++)
                for (int kx = 0; kx < c->k; kx++, q++)
                    toff[q] = (ptrdiff_t)((ci * sp + ky % s) * sp + kx % s) * plane +
                              (ptrdiff_t)(ky / s) * p->wq + kx / s;
    }
    const long nitems = (long)p->nimg * p->nbands;
    const size_t nacc = (size_t)p->c->cout * p->K;
    long g0, g1;
    while (hy__workq_take(&t->wq, ith, &g0, &g1))
        for (long g = g0; g < g1; g++) {
            char *slot = t->slots + (size_t)g * (p->bw_slot + p->bw_dbslot);
            double *acc = (double *)slot, *dbacc = (double *)(slot + p->bw_slot);
            memset(dbacc, 0, (size_t)p->c->cout * sizeof(double));
            int pend = 0, fresh = 1;
            for (long i = nitems * g / p->ngrp; i < nitems * (g + 1) / p->ngrp; i++)
                if (p->bw_dot)
                    bw_item(t, i, xq, dyq, tile, toff, acc, t->want_db ? dbacc : NULL, &pend, &fresh);
                else
                    bw_item_rows(t, i, xq, dyq, tile, acc, t->want_db ? dbacc : NULL, &pend, &fresh);
            if (pend) bw_flush(p, tile, acc, &fresh);
            if (fresh) memset(acc, 0, nacc * sizeof(double)); // no pixel (not reached: items >= 1 pixel)
        }
}

/* dw rows [co] += the groups' slots summed in group order. */
static void bw_sum_worker(void *ctx, int ith, int nth) {
    bw_task *t = ctx;
    const cplan *p = &t->p;
    const hy__tconv *c = p->c;
    const size_t gs = p->bw_slot + p->bw_dbslot;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long co = i0; co < i1; co++) {
            const double *s0 = (const double *)t->slots + (size_t)co * p->K;
            float *d = t->dw + (size_t)co * p->K;
            for (int j = 0; j < p->K; j++) { // dot path: (ci, ky, kx); else (ky, kx, ci)
                const int src = p->bw_dot ? j : j % p->kk * c->cin + j / p->kk;
                double sum = s0[src];
                for (int g = 1; g < p->ngrp; g++) sum += ((const double *)((const char *)s0 + (size_t)g * gs))[src];
                d[j] += (float)sum;
            }
        }
}

static void conv_bwd_weight(const hy__tconv *c, hy__tview x, hy__tview dy, float *dw, float *db,
                            void *ws, hy__threadpool *tp) {
    const int isa = isa_now();
    bw_task t = { .kr = kernel_isa(isa), .x = x, .dy = dy, .want_db = db != NULL,
                  .avx2 = isa != HY_CPU_ISA_GENERIC };
    const int nth = hy__threadpool_size(tp);
    plan(kernel_isa(isa), c, x.n, x.h, x.w, nth, &t.p);
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

const hy__train_ops hy__train_ops_cpu = {
    .name = "cpu",
    .conv_ws = conv_ws,
    .conv_fwd = conv_fwd,
    .conv_bwd_data = conv_bwd_data,
    .conv_bwd_weight = conv_bwd_weight,
    .bn_act_fwd = hy__train_elem_bn_act_fwd,
    .bn_act_bwd = hy__train_elem_bn_act_bwd,
    .maxpool_fwd = hy__train_elem_maxpool_fwd,
    .maxpool_bwd = hy__train_elem_maxpool_bwd,
    .upsample2x_fwd = hy__train_elem_upsample2x_fwd,
    .upsample2x_bwd = hy__train_elem_upsample2x_bwd,
    .copy = hy__train_elem_copy,
};
