/* Fast conv2d: packed-weight GEMM with cache blocking, driving the per-ISA micro-kernels.
 *
 *   y(cout, P) = W(cout, K) * B(K, P),  K = cin*kh*kw, P = oh*ow
 *
 * W is packed once at load into MR-row micro-panels (gemm.h). B is never materialised: the
 * micro-kernel reads each B row in place through a per-row offset, from x itself for 1x1
 * stride-1 convs (no im2col), else from a zero-padded, stride-phase-split copy of x in which
 * every im2col row is a contiguous slice (MODE_GRID). Loops per thread:
 *
 *   for nc columns of its range          B block (kc x nc) stays in L2 across cout
 *     for kc rows of K                   y holds the partial sums between K blocks
 *       for MR rows of cout              A micro-panel (kc x MR) stays in L1
 *         for NR columns                 micro-kernel, fused epilogue on the last K block
 *
 * Threads take work items from shared counters (core.h hy__workq: own part first, then the
 * others'): column blocks (SIMD-width multiples, at least one per thread) times groups of cout
 * micro-panels, ~4 items per thread, so a thread slowed by its neighbours hands work to the
 * others instead of stalling the barrier. Winograd passes and the phase copy share their items
 * the same way, numbered so that a thread's part is its share of the image. No allocation.
 *
 * 3x3 stride-1 pad-1 convs take the Winograd F(4x4, 3x3) path instead (section below); which
 * path a conv takes depends on its desc only, so the packed blob stays a function of
 * (desc, weights, bias, isa). */
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops_cpu.h"

#include <stdatomic.h>
#include <string.h>

// --- kernels ----------------------------------------------------------------------------

static const hy__gemm_kernel *const kernels[HY_CPU_ISA_COUNT] = {
    [HY_CPU_ISA_GENERIC] = &hy__gemm_generic,
#ifdef HY_HAVE_AVX2
    [HY_CPU_ISA_AVX2] = &hy__gemm_avx2,
#endif
#ifdef HY_HAVE_AVX512
    [HY_CPU_ISA_AVX512] = &hy__gemm_avx512,
#endif
};

const char *hy__cpu_isa_name(int isa) {
    static const char *const names[HY_CPU_ISA_COUNT] = { "generic", "avx2", "avx512" };
    return isa >= 0 && isa < HY_CPU_ISA_COUNT ? names[isa] : "?";
}

/* Does this CPU run the kernels of isa? (CPUID via the compiler's cached probe) */
static bool cpu_runs(int isa) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == HY_CPU_ISA_AVX512) return __builtin_cpu_supports("avx512f");
    if (isa == HY_CPU_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == HY_CPU_ISA_GENERIC || (isa >= 0 && isa < HY_CPU_ISA_COUNT);
}

bool hy__cpu_isa_available(int isa) {
    return isa >= 0 && isa < HY_CPU_ISA_COUNT && kernels[isa] && cpu_runs(isa);
}

int hy__cpu_isa_best(void) {
    static atomic_int best = -1; /* every thread computes the same value */
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = HY_CPU_ISA_GENERIC;
        for (int i = HY_CPU_ISA_COUNT - 1; i > 0 && b == HY_CPU_ISA_GENERIC; i--)
            if (hy__cpu_isa_available(i)) b = i;
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return b;
}

const char *hy__cpu_isa(void) { return hy__cpu_isa_name(hy__cpu_isa_best()); }

static const hy__gemm_kernel *kernel_of(int isa) {
    HY_ASSERT(hy__cpu_isa_available(isa));
    return kernels[isa];
}

void hy__cpu_vexp(const float *x, size_t n, float *y, int isa) { kernel_of(isa)->vexp(x, n, y); }

void hy__cpu_act(const float *x, size_t n, int act, float *y, int isa) {
    kernel_of(isa)->act(x, n, act, y);
}

// --- blocking plan ------------------------------------------------------------------------

#define KC_MAX 640                 /* K block: A micro-panel 8*640*4 = 20 KB stays in L1 */
#define B_BLOCK_BYTES (384 * 1024) /* B block (kc x nc) target: part of a 1 MB L2 */
#define NC_MAX 4096
#define XG_SLACK 64 /* floats after xg: pad-column reads past the last plane */
#define XG_SHARED_MAX ((size_t)1 << 20) /* larger phase copies go in bands (BANDED) */
#define XG_BAND_BYTES ((size_t)512 << 10) /* one band's phase copy: stays in L2 */
#define XG_MIN_BANDS 16 /* bands per conv at least (load balance), whatever the threads */
#define XG_MIN_BAND_COLS 256 /* GEMM columns per band at least: A is re-read once per band */

/* How B is formed:
 *  POINTWISE  1x1 stride 1 pad 0: B is x itself, (cin, h*w); row k starts at x + k*P.
 *  GRID       anything else. x is copied once, zero-padded and split into s*s stride phases:
 *             xg[ph = (ry, rx)][ci][i][j] = xpad[ci][i*s + ry][j*s + rx], planes (hq, wq).
 *             GEMM columns then run over the (oh, wq) grid, q = oy*wq + ox, and tap (ky, kx)
 *             of channel ci is the contiguous slice
 *                 xg[(ky%s, kx%s)][ci] + (ky/s)*wq + kx/s + q
 *             so the kernel reads im2col rows in place (no gathers, no bounds tests, 9x less
 *             memory than an im2col for 3x3). Columns with ox >= ow are computed and dropped by
 *             the epilogue (segments): wq/ow - 1 extra work, 10% at 20x20 for 3x3 s1, 5% at
 *             40->20 for 3x3 s2, 1-2% at 80 and up.
 *  BANDED     GRID with a phase copy over XG_SHARED_MAX (the stem convs: 3.7-5 MB at 640):
 *             output rows go in bands of `band` rows, each a work item; a thread copies the
 *             band's phase rows (band + (kh-1)/s of each plane) into its own buffer, which stays
 *             in L2, and computes every cout of the band from it. No shared copy, no barrier
 *             between copy and GEMM, and the scratch is nth small buffers instead of one copy
 *             of x (the arena's peak at the stem). Every output sums the same K terms in the
 *             same order as GRID: results are identical. */
enum { MODE_POINTWISE, MODE_GRID };

typedef struct conv_plan {
    int mode;
    int oh, ow, K;
    int hq, wq;  /* phase plane (GRID); wq = ow for POINTWISE */
    int Q;       /* GEMM columns: oh * wq */
    int kc, nkb; /* K in nkb blocks of <= kc rows */
    int nc;      /* columns per B block, multiple of NR */
    int rowtile; /* GRID: tiles stop at row ends (pad columns skipped) instead of spanning rows */
    size_t xg_bytes;   /* phase-split padded input, multiple of 64: shared (GRID), per
                          thread and one band of planes hq = band + (kh-1)/s rows (BANDED) */
    int band, nband;   /* BANDED: output rows per band, bands; band = 0 otherwise */
    size_t per_thread; /* per-thread bytes (one packed B panel), multiple of 64 */
} conv_plan;

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

static void plan_make(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int h, int w,
                      conv_plan *pl) {
    memset(pl, 0, sizeof *pl);
    const int s = d->stride;
    pl->oh = hy__conv_out(h, d->kh, s, d->pad);
    pl->ow = hy__conv_out(w, d->kw, s, d->pad);
    HY_ASSERT(pl->oh > 0 && pl->ow > 0 && s >= 1 && d->pad >= 0);
    HY_ASSERT((d->kw - 1) / s + kr->vl <= XG_SLACK); // kernel reads past the last plane
    pl->K = d->cin * d->kh * d->kw;
    pl->mode = d->kh == 1 && d->kw == 1 && s == 1 && d->pad == 0 ? MODE_POINTWISE : MODE_GRID;
    pl->wq = pl->ow;
    if (pl->mode == MODE_GRID) {
        pl->hq = (h + 2 * d->pad + s - 1) / s;
        pl->wq = (w + 2 * d->pad + s - 1) / s;
        pl->xg_bytes =
            round_up(((size_t)s * s * d->cin * pl->hq * pl->wq + XG_SLACK) * sizeof(float), 64);
        // Band rows depend on the shape only (not on threads): scratch grows with nth.
        const size_t row = (size_t)s * s * d->cin * pl->wq * sizeof(float); // one plane row each
        const int extra = (d->kh - 1) / s, fit = (int)(XG_BAND_BYTES / row) - extra;
        int band = HY_MIN(HY_MAX(fit, 1), (pl->oh + XG_MIN_BANDS - 1) / XG_MIN_BANDS);
        band = HY_MAX(band, (XG_MIN_BAND_COLS + pl->wq - 1) / pl->wq);
        if (pl->xg_bytes > XG_SHARED_MAX && band < pl->oh) {
            pl->band = band;
            pl->nband = (pl->oh + band - 1) / band;
            pl->hq = band + extra;
            pl->xg_bytes = round_up(((size_t)pl->hq * row / sizeof(float) + XG_SLACK) * sizeof(float), 64);
        }
    }
    pl->Q = pl->oh * pl->wq;
    if (pl->mode == MODE_GRID) {
        // Row tiles compute `lanes` columns per row (the last tile rounded up to whole vectors),
        // grid tiles compute wq (the pad columns) and need the segmented epilogue. Row tiles
        // when not wider: ow = 80, 160, 320 use every lane; ow = 20, 40 stay on the grid.
        const int full = pl->ow / kr->nr * kr->nr, tail = pl->ow - full;
        const int lanes = full + (tail + kr->vl - 1) / kr->vl * kr->vl;
        pl->rowtile = lanes <= pl->wq;
    }
    pl->nkb = (pl->K + KC_MAX - 1) / KC_MAX;
    pl->kc = (pl->K + pl->nkb - 1) / pl->nkb; // equal blocks: 1152 -> 2 x 576
    // nc: the B block the kernel re-reads for every MR rows of cout should stay in L2. In GRID
    // mode the taps of a channel are shifted views of the same s*s phase planes, so a column
    // costs (channels in the block) * min(s*s, kh*kw) floats, 9x less than im2col for 3x3 s1.
    const int khw = d->kh * d->kw;
    const size_t col_bytes =
        sizeof(float) * (pl->mode == MODE_POINTWISE
                             ? (size_t)pl->kc
                             : (size_t)((pl->kc + khw - 1) / khw + 1) * HY_MIN(s * s, khw));
    int nc = (int)(B_BLOCK_BYTES / col_bytes) / kr->nr * kr->nr;
    nc = HY_MAX(nc, kr->nr);
    nc = HY_MIN(nc, NC_MAX / kr->nr * kr->nr);
    nc = HY_MIN(nc, (int)round_up((size_t)pl->Q, (size_t)kr->nr)); // independent of nth
    pl->nc = nc;
    pl->per_thread =
        pl->mode == MODE_POINTWISE ? round_up((size_t)pl->kc * kr->nr * sizeof(float), 64) : 0;
}

static size_t wino_scratch(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int h, int w,
                           int nth);
static bool wino_ok(const hy__conv2d_desc *d);

size_t hy__cpu_conv2d_scratch_size(const hy__conv2d_desc *d, int h, int w, int nth) {
    size_t best = 0;
    for (int i = 0; i < HY_CPU_ISA_COUNT; i++) {
        if (!kernels[i]) continue;
        if (wino_ok(d)) {
            best = HY_MAX(best, wino_scratch(kernels[i], d, h, w, nth) + 64);
            continue;
        }
        conv_plan pl;
        plan_make(kernels[i], d, h, w, &pl);
        // + 64: alignment slack (scratch may come unaligned)
        const size_t xg = pl.band ? pl.xg_bytes * (size_t)HY_MAX(nth, 1) : pl.xg_bytes;
        best = HY_MAX(best, xg + pl.per_thread * (size_t)HY_MAX(nth, 1) + 64);
    }
    return best;
}

// --- Winograd F(4x4, 3x3) -----------------------------------------------------------------
/* 3x3 stride-1 pad-1 convs (2/3 of YOLOv8n's FLOPs: bottlenecks, Detect heads) run as
 *   V[xi] = BT d B (input tiles), M[xi](cout, Q) = U[xi](cout, cin) * V[xi](cin, Q), Y = AT M A
 * over the 36 positions xi of 6x6 input tiles: 36 multiply-adds per 4x4 outputs per (ci, co)
 * instead of 144 (4x fewer GEMM FLOPs). U = G g GT is packed at load as 36 MR-row A panels
 * (K = cin), so the packed blob is 4x the direct one. Q: the flat tile grid (th, twp), twp =
 * tw + 1 (winograd_impl.h), taken in bands of tile rows whose V and M fit WINO_BAND_FLOATS
 * (one band for every YOLOv8n layer at 640). Per band three passes, each split over threads:
 * input transform per
 * (channel, tile-row chunk), 36 GEMMs per column block (the micro-kernel, plain stores),
 * output transform per (channel, chunk) with bias, act and the residual add.
 * Error: F(4x4, 3x3) loses ~2 bits against the direct sum (scaled error <= 5e-5 in the tests;
 * YOLOv8n boxes still 0.002 px from Ultralytics). Pixel-for-pixel the 4x4 tiles measured
 * 1.3-2.2x faster than the direct GEMM on every YOLOv8n 3x3 s1 shape at 640, 1 thread. */
enum { ALGO_GEMM, ALGO_WINO };
#define WINO_NXI 36
#define WINO_CHUNK_Q 192 /* tile-grid columns per transform chunk (tmp stays in L1/L2) */
/* V + M of one band of tile rows: bounds the scratch for any image size (no YOLOv8n layer at
 * 640 needs more than one band) */
#define WINO_BAND_FLOATS ((size_t)4 << 20)

static bool wino_ok(const hy__conv2d_desc *d) {
    return d->kh == 3 && d->kw == 3 && d->stride == 1 && d->pad == 1;
}

typedef struct wino_plan {
    int oh, ow, th, tw, twp;
    int rt;           /* tile rows per transform chunk */
    int br;           /* tile rows per band (a multiple of rt): V and M hold one band */
    ptrdiff_t qs;     /* V / M row stride: br * twp rounded up to 16 (whole-vector reads) */
    ptrdiff_t vs, ms; /* V / M xi-plane strides: cin*qs, cout*qs + 16 (see below) */
    int ncb;          /* GEMM column block */
    size_t v_floats, m_floats, tmp_floats; /* tmp: per thread */
    /* Private mode (private_rows > 0): each work item is a band of private_rows tile rows that
     * one thread takes through all three steps in its own V, M and tmp (per_thread floats;
     * qs, vs, ms, v/m/tmp_floats describe that band; rt, br, ncb are not set). Nothing one thread writes is read by another,
     * which matters when the host puts the two vCPUs on different core complexes: there the
     * shared V and M of the three-pass mode cost 2-3.5x per layer (docs/bench.md). */
    int private_rows;
    size_t per_thread;
} wino_plan;

/* Tile rows per private band for nth threads, or 0 for the three-pass mode: at least 2 bands
 * per thread, the band whose columns fill whole vectors best (g * twp over g * twp rounded up
 * to vl) times the share of the rows the busiest thread ends up with (whole bands, taken
 * dynamically), if at least 0.8, with at most WINO_PRIVATE_FLOATS of V + M per thread. Maps of
 * 40x40 and less at 640 on 2 threads stay three-pass, where the 36 GEMMs give the threads
 * more, fuller items (measured 13% faster there; private 10-20% faster at 80x80 and 160x160). */
#define WINO_PRIVATE_FLOATS ((size_t)1 << 20)
static int wino_private_rows(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int th, int twp,
                             int nth) {
    if (nth < 2) return 0; // nothing shared with one thread: three-pass measured faster there
    int best = 0;
    double best_score = 0.8;
    for (int g = 1; g <= th / (2 * nth); g++) { // >= 2 bands per thread: slack for a slow one
        const size_t q = (size_t)g * twp, qs = round_up(q, (size_t)kr->vl);
        if ((size_t)WINO_NXI * (d->cin + d->cout) * qs > WINO_PRIVATE_FLOATS) break;
        const int items = (th + g - 1) / g;
        const double fill = (double)q / (double)qs;
        const double balance = ((double)th / nth) / ((double)((items + nth - 1) / nth) * g);
        const double score = fill * HY_MIN(balance, 1.0);
        if (score > best_score + 1e-9) {
            best_score = score;
            best = g;
        }
    }
    return best;
}

static void wino_plan_make(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int h, int w,
                           int nth, wino_plan *pl) {
    pl->oh = hy__conv_out(h, 3, 1, 1);
    pl->ow = hy__conv_out(w, 3, 1, 1);
    HY_ASSERT(pl->oh > 0 && pl->ow > 0);
    pl->th = (pl->oh + 3) / 4;
    pl->tw = (pl->ow + 3) / 4;
    pl->twp = pl->tw + 1;
    pl->private_rows = wino_private_rows(kr, d, pl->th, pl->twp, nth);
    pl->per_thread = 0;
    if (pl->private_rows > 0) {
        const int g = pl->private_rows;
        pl->qs = (ptrdiff_t)round_up((size_t)g * pl->twp, (size_t)kr->vl);
        pl->vs = (ptrdiff_t)d->cin * pl->qs + 16;
        pl->ms = (ptrdiff_t)d->cout * pl->qs + 16;
        pl->v_floats = (size_t)WINO_NXI * pl->vs;
        pl->m_floats = (size_t)WINO_NXI * pl->ms;
        pl->tmp_floats = round_up((size_t)40 * (g + 1) * pl->twp + 16, 16);
        pl->per_thread = round_up(pl->v_floats + pl->m_floats + pl->tmp_floats, 16);
        return;
    }
    pl->rt = HY_MAX(1, HY_MIN(pl->th, WINO_CHUNK_Q / pl->twp));
    const size_t per_row = (size_t)WINO_NXI * (d->cin + d->cout) * pl->twp; // V + M floats
    const int fit = (int)HY_MIN(WINO_BAND_FLOATS / per_row, (size_t)pl->th);
    pl->br = HY_MIN(HY_MAX(fit / pl->rt, 1) * pl->rt, pl->th);
    const int qb = pl->br * pl->twp;
    pl->qs = (ptrdiff_t)round_up((size_t)qb, 16);
    pl->ncb = HY_MIN((int)round_up((size_t)qb, (size_t)kr->nr), 4 * kr->nr);
    // + 16 floats: the transforms walk 6-36 xi planes at once; plane strides that are multiples
    // of 4 KB (cin*qs = 64*432 at 80x80) would put every stream in the same L1 set
    pl->vs = (ptrdiff_t)d->cin * pl->qs + 16;
    pl->ms = (ptrdiff_t)d->cout * pl->qs + 16;
    pl->v_floats = (size_t)WINO_NXI * pl->vs;
    pl->m_floats = (size_t)WINO_NXI * pl->ms;
    pl->tmp_floats = round_up((size_t)40 * (pl->rt + 1) * pl->twp + 16, 16);
}

static size_t wino_scratch(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int h, int w,
                           int nth) {
    size_t best = 0; // the pool may run fewer threads than nth, with another plan
    for (int n = 1; n <= HY_MAX(nth, 1); n++) {
        wino_plan pl;
        wino_plan_make(kr, d, h, w, n, &pl);
        best = HY_MAX(best, pl.private_rows > 0 ? pl.per_thread * (size_t)n
                                                : pl.v_floats + pl.m_floats + pl.tmp_floats * (size_t)n);
    }
    return best * sizeof(float);
}

/* a[((xi*npanel + p)*cin + ci)*MR + i] = U[xi] of (row p*MR + i, ci), U = G g GT in double. */
static void wino_pack(const hy__conv2d_desc *d, const float *wt, int mr, int mpad, float *a) {
    static const double G[6][3] = { { 1.0 / 4, 0, 0 },
                                    { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
                                    { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
                                    { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
                                    { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
                                    { 0, 0, 1 } };
    enum { CB = 16 }; // channels per block: the 36 runs (16 KB apart for 64x64) are
                      // gathered on the stack and written as whole runs (no set conflicts)
    const int cin = d->cin, np = mpad / mr;
    HY_ASSERT(mr <= 16);
    float buf[WINO_NXI][CB * 16];
    for (int p = 0; p < np; p++)
        for (int c0 = 0; c0 < cin; c0 += CB) {
            const int nb = HY_MIN(CB, cin - c0);
            memset(buf, 0, sizeof buf);
            for (int ci = c0; ci < c0 + nb; ci++)
                for (int i = 0; i < mr && p * mr + i < d->cout; i++) {
                    const float *g = wt + ((size_t)(p * mr + i) * cin + ci) * 9; // (3, 3)
                    double t[6][3];
                    for (int r = 0; r < 6; r++)
                        for (int b = 0; b < 3; b++)
                            t[r][b] = G[r][0] * g[b] + G[r][1] * g[3 + b] + G[r][2] * g[6 + b];
                    for (int r = 0; r < 6; r++)
                        for (int c = 0; c < 6; c++)
                            buf[r * 6 + c][(ci - c0) * mr + i] =
                                (float)(t[r][0] * G[c][0] + t[r][1] * G[c][1] + t[r][2] * G[c][2]);
                }
            for (int xi = 0; xi < WINO_NXI; xi++)
                memcpy(a + (((size_t)xi * np + p) * cin + c0) * mr, buf[xi],
                       (size_t)nb * mr * sizeof(float));
        }
}

// --- packed weights -----------------------------------------------------------------------
/* Layout (64-byte aligned): header (64 B) | A: (cout/MR panels, K, MR) | bias (mpad). */

#define PACK_MAGIC 0x4b435048u /* "HPCK" */
#define PACK_HDR 64

typedef struct pack_hdr {
    uint32_t magic;
    int32_t isa, cin, cout, kh, kw, K, mpad;
    int32_t algo; /* enum conv_algo: fixed by the desc (wino_ok) */
} pack_hdr;
_Static_assert(sizeof(pack_hdr) <= PACK_HDR, "pack header fits");

/* A: GEMM (mpad/MR, K, MR) micro-panels; WINO: 36 of them with K = cin, one per xi. */
static size_t packed_bytes_a(const hy__conv2d_desc *d, int mr) {
    const size_t taps = wino_ok(d) ? WINO_NXI : (size_t)d->kh * d->kw;
    return round_up(round_up((size_t)d->cout, (size_t)mr) * (size_t)d->cin * taps * sizeof(float),
                    64);
}

size_t hy__cpu_conv2d_packed_size(const hy__conv2d_desc *d) {
    size_t best = 0;
    for (int i = 0; i < HY_CPU_ISA_COUNT; i++) {
        if (!kernels[i]) continue;
        const int mr = kernels[i]->mr;
        const size_t sz = PACK_HDR + packed_bytes_a(d, mr) +
                          round_up(round_up((size_t)d->cout, (size_t)mr) * sizeof(float), 64);
        best = HY_MAX(best, sz);
    }
    return best;
}

void hy__cpu_conv2d_pack_isa(const hy__conv2d_desc *d, const float *wt, const float *bias, int isa,
                             void *packed) {
    const hy__gemm_kernel *kr = kernel_of(isa);
    HY_ASSERT(((uintptr_t)packed & 63) == 0);
    const int mr = kr->mr, K = d->cin * d->kh * d->kw;
    const int mpad = (int)round_up((size_t)d->cout, (size_t)mr);
    const int algo = wino_ok(d) ? ALGO_WINO : ALGO_GEMM;
    pack_hdr hdr = { PACK_MAGIC, isa, d->cin, d->cout, d->kh, d->kw, K, mpad, algo };
    // every byte defined (padding too): packed blobs are stored in files and compared
    memset(packed, 0, hy__cpu_conv2d_packed_size(d));
    memcpy(packed, &hdr, sizeof hdr);
    float *a = (float *)((char *)packed + PACK_HDR); // (mpad/MR, K, MR)
    if (algo == ALGO_WINO) {
        wino_pack(d, wt, mr, mpad, a);
    } else {
        for (int p = 0; p < mpad / mr; p++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < mr; i++) {
                    const int row = p * mr + i;
                    a[((size_t)p * K + k) * mr + i] = row < d->cout ? wt[(size_t)row * K + k] : 0.0f;
                }
    }
    float *bp = (float *)((char *)a + packed_bytes_a(d, mr)); // (mpad)
    for (int row = 0; row < mpad; row++) bp[row] = bias && row < d->cout ? bias[row] : 0.0f;
}

bool hy__cpu_conv2d_packed_check(const hy__conv2d_desc *d, const void *packed, size_t size) {
    pack_hdr hdr;
    if (!packed || ((uintptr_t)packed & 63) || size != hy__cpu_conv2d_packed_size(d)) return false;
    memcpy(&hdr, packed, sizeof hdr);
    if (hdr.magic != PACK_MAGIC || !hy__cpu_isa_available(hdr.isa)) return false;
    const int mr = kernels[hdr.isa]->mr;
    return hdr.cin == d->cin && hdr.cout == d->cout && hdr.kh == d->kh && hdr.kw == d->kw &&
           hdr.K == d->cin * d->kh * d->kw && hdr.algo == (wino_ok(d) ? ALGO_WINO : ALGO_GEMM) &&
           hdr.mpad == (int)round_up((size_t)d->cout, (size_t)mr);
}

void hy__cpu_conv2d_pack(const hy__conv2d_desc *d, const float *wt, const float *bias,
                         void *packed) {
    hy__cpu_conv2d_pack_isa(d, wt, bias, hy__cpu_isa_best(), packed);
}

// --- B rows ---------------------------------------------------------------------------------

typedef struct conv_task {
    const hy__conv2d_desc *d;
    const hy__gemm_kernel *kr;
    conv_plan pl;
    const float *a, *bias; // packed A (mpad/MR, K, MR), bias (mpad)
    const float *x;        // (cin, h, w)
    int h, w;
    const float *add; // (cout, oh, ow) or NULL
    float *y;         // (cout, oh, ow)
    float *xg;        // (s*s, cin, hq, wq) + slack: GRID; BANDED: nth of them, xg_bytes apart
    char *bufs;       // 64-aligned, nth * per_thread
    int qw, nqb;      // work items: column blocks of qw columns (nqb of them) ...
    int mg, nmg;      // ... times groups of mg cout micro-panels (nmg of them)
    hy__workq wq;     // items handed out dynamically: (column block, panel group)
} conv_task;

/* Where conv_block reads B and writes y: the whole conv, or one band of output rows. */
typedef struct conv_view {
    const float *b;   // x (POINTWISE) or a phase copy (GRID, BANDED)
    float *y;         // output row 0 of the view, (cout, P) with P the whole map
    const float *add; // same offset as y, or NULL
    int Q;            // GEMM columns of the view
} conv_view;

/* Offset of B row k at column 0: in x (POINTWISE), or in xg (GRID: tap ky, kx of channel ci). */
static ptrdiff_t b_row(const conv_task *t, int k) {
    const hy__conv2d_desc *d = t->d;
    if (t->pl.mode == MODE_POINTWISE) return (ptrdiff_t)k * t->pl.Q;
    const int khw = d->kh * d->kw, s = d->stride;
    const int ci = k / khw, ky = (k % khw) / d->kw, kx = k % d->kw;
    return ((ptrdiff_t)((ky % s) * s + kx % s) * d->cin + ci) * t->pl.hq * t->pl.wq +
           (ptrdiff_t)(ky / s) * t->pl.wq + kx / s;
}

/* GRID: segments of the tile at grid columns [q0, q0+n) that are real outputs (ox < ow). */
static int grid_segs(const conv_plan *pl, int q0, int n, hy__gemm_seg *segs) {
    int ns = 0, oy = q0 / pl->wq, ox = q0 % pl->wq;
    for (int j = 0; j < n;) {
        const int len = HY_MIN(pl->wq - ox, n - j), real = HY_MIN(len, HY_MAX(pl->ow - ox, 0));
        if (real > 0) {
            if (ns > 0 && segs[ns - 1].j1 == j &&
                segs[ns - 1].col + (j - segs[ns - 1].j0) == (ptrdiff_t)oy * pl->ow + ox)
                segs[ns - 1].j1 = j + real; // contiguous in y too (no pad columns)
            else
                segs[ns++] = (hy__gemm_seg){ j, j + real, (ptrdiff_t)oy * pl->ow + ox };
        }
        j += len;
        ox = 0;
        oy++;
    }
    return ns;
}

// --- driver -----------------------------------------------------------------------------

/* The s phase rows (rx = 0..s-1) of padded input row prow of channel ci, at plane row i of xg
 * (planes of hq rows): xg[ph][ci][i][j] = xpad[ci][prow][j*s + rx], ph = (prow % s)*s + rx,
 * xpad being x zero-padded by pad. Each input row is read from memory once. */
static void phase_rows(const conv_task *t, float *xg, int ci, int i, int prow) {
    const conv_plan *pl = &t->pl;
    const int p = t->d->pad, s = t->d->stride, w = t->w, h = t->h, cin = t->d->cin, wq = pl->wq;
    const size_t plane = (size_t)pl->hq * wq;
    const int ry = prow % s, yy = prow - p;
    const float *src = yy >= 0 && yy < h ? t->x + ((size_t)ci * h + yy) * w : NULL;
    for (int rx = 0; rx < s; rx++) {
        float *dst = xg + ((size_t)(ry * s + rx) * cin + ci) * plane + (size_t)i * wq;
        if (!src) {
            memset(dst, 0, (size_t)wq * sizeof(float));
            continue;
        }
        // dst[j] = src[j*s + rx - p] for j in [j0, j1), where that column is inside x
        const int j0 = HY_MIN((p - rx + s - 1) / s, wq); // p - rx > -s: rounds up
        const int last = w - 1 + p - rx;                 // j*s <= last
        const int j1 = last < 0 ? j0 : HY_MAX(HY_MIN(last / s + 1, wq), j0);
        memset(dst, 0, (size_t)j0 * sizeof(float));
        const float *sp = src + j0 * s + rx - p;
        if (s == 1)
            memcpy(dst + j0, sp, (size_t)(j1 - j0) * sizeof(float));
        else if (s == 2)
            for (int j = 0; j < j1 - j0; j++) dst[j0 + j] = sp[2 * j];
        else
            for (int j = 0; j < j1 - j0; j++) dst[j0 + j] = sp[(size_t)j * s];
        memset(dst + j1, 0, (size_t)(wq - j1) * sizeof(float));
    }
}

/* GRID: the shared phase copy. Work items are padded input rows (i*s + ry, ci), row-major so
 * that a thread's part of the items is its share of the rows (hy__workq). */
static void phase_worker(void *ctx, int ith, int nth) {
    conv_task *t = ctx;
    const conv_plan *pl = &t->pl;
    const int s = t->d->stride, cin = t->d->cin;
    long r0, r1; // (padded row, ci) items
    while (hy__workq_take(&t->wq, ith, &r0, &r1))
        for (size_t r = (size_t)r0; r < (size_t)r1; r++) {
            const int ci = (int)(r % (size_t)cin), prow = (int)(r / (size_t)cin);
            phase_rows(t, t->xg, ci, prow / s, prow);
        }
    if (ith == nth - 1)
        memset(t->xg + (size_t)s * s * cin * pl->hq * pl->wq, 0, XG_SLACK * sizeof(float));
}

static void conv_block(const conv_task *t, const conv_view *v, int ith, int q0, int q1, int mp0,
                       int mp1);

static void conv_worker(void *ctx, int ith, int nth) {
    conv_task *t = ctx;
    (void)nth;
    const int Q = t->pl.Q, mpanels = (t->d->cout + t->kr->mr - 1) / t->kr->mr;
    const conv_view v = { t->pl.mode == MODE_GRID ? t->xg : t->x, t->y, t->add, Q };
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long it = i0; it < i1; it++) { // column block major: its panel groups run together
            const int qb = (int)(it / t->nmg), g = (int)(it % t->nmg);
            const int q0 = qb * t->qw, q1 = HY_MIN(Q, q0 + t->qw);
            const int mp0 = g * t->mg, mp1 = HY_MIN(mpanels, mp0 + t->mg);
            if (q0 < q1 && mp0 < mp1) conv_block(t, &v, ith, q0, q1, mp0, mp1);
        }
}

/* BANDED: items are bands of output rows; each copied into this thread's buffer, then every
 * cout of it computed from there. */
static void band_item(void *ctx, long b, int ith) {
    const conv_task *t = ctx;
    const conv_plan *pl = &t->pl;
    const int s = t->d->stride, cin = t->d->cin, rows = pl->hq;
    const int mpanels = (t->d->cout + t->kr->mr - 1) / t->kr->mr;
    float *xb = (float *)((char *)t->xg + (size_t)ith * pl->xg_bytes);
    memset(xb + (size_t)s * s * cin * rows * pl->wq, 0, XG_SLACK * sizeof(float));
    const int oy0 = (int)b * pl->band, n = HY_MIN(pl->band, pl->oh - oy0);
    // plane rows past n + (kh-1)/s (last band) are not read for kept outputs
    const int need = HY_MIN(rows, n + (t->d->kh - 1) / s);
    for (int ci = 0; ci < cin; ci++)
        for (int i = 0; i < need; i++)
            for (int ry = 0; ry < s; ry++) phase_rows(t, xb, ci, i, (oy0 + i) * s + ry);
    const size_t off = (size_t)oy0 * pl->ow;
    const conv_view v = { xb, t->y + off, t->add ? t->add + off : NULL, n * pl->wq };
    conv_block(t, &v, ith, 0, v.Q, 0, mpanels);
}

/* Columns [q0, q1) x micro-panels [mp0, mp1) of the output, every K block. */
static void conv_block(const conv_task *t, const conv_view *v, int ith, int q0, int q1, int mp0,
                       int mp1) {
    const hy__conv2d_desc *d = t->d;
    const hy__gemm_kernel *kr = t->kr;
    const conv_plan *pl = &t->pl;
    const int mr = kr->mr, nr = kr->nr, Q = v->Q, K = pl->K, P = pl->oh * pl->ow;

    float *bb = (float *)(t->bufs + (size_t)ith * pl->per_thread); // (kc, NR) POINTWISE tail
    const float *bsrc = v->b;
    ptrdiff_t boff[KC_MAX]; // (kc) B row offsets of the current K block
    hy__gemm_seg segs[64];
    HY_ASSERT(nr / 2 + 2 <= (int)HY_ARRAY_LEN(segs) && pl->kc <= KC_MAX);
    for (int qc = q0; qc < q1; qc += pl->nc) {
        const int nc = HY_MIN(pl->nc, q1 - qc);
        for (int kb = 0; kb < pl->nkb; kb++) {
            const int k0 = kb * pl->kc, kc = HY_MIN(pl->kc, K - k0);
            for (int kk = 0; kk < kc; kk++) boff[kk] = b_row(t, k0 + kk);
            hy__gemm_epi e = { .act = d->act, .first = kb == 0, .last = kb == pl->nkb - 1 };
            for (int mp = mp0; mp < mp1; mp++) {
                const int m = mp * mr, mv = HY_MIN(mr, d->cout - m);
                const float *ap = t->a + ((size_t)mp * K + k0) * mr; // (kc, MR)
                float *yrow = v->y + (size_t)m * P;                  // (mv, P)
                const float *addrow = v->add ? v->add + (size_t)m * P : NULL;
                e.bias = t->bias + m;
                for (int j = 0, n; j < nc; j += n) {
                    const int q = qc + j;
                    n = HY_MIN(nr, nc - j);
                    if (pl->rowtile) { // tile within one output row, pad columns skipped
                        const int ox = q % pl->wq, col = q / pl->wq * pl->ow + ox;
                        if (ox >= pl->ow) {
                            n = HY_MIN(pl->wq - ox, nc - j);
                            continue;
                        }
                        n = HY_MIN(n, pl->ow - ox);
                        e.segs = NULL;
                        e.add = addrow ? addrow + col : NULL;
                        kr->ukr(kc, ap, bsrc + q, boff, yrow + col, P, mv, n, &e);
                        continue;
                    }
                    if (pl->mode == MODE_POINTWISE) {
                        e.add = addrow ? addrow + q : NULL;
                        if (q + (n + kr->vl - 1) / kr->vl * kr->vl <= Q) {
                            kr->ukr(kc, ap, bsrc + q, boff, yrow + q, P, mv, n, &e);
                        } else { // whole vectors would read past the end of x: copy the panel
                            for (int kk = 0; kk < kc; kk++) {
                                memcpy(bb + (size_t)kk * nr, bsrc + boff[kk] + q,
                                       (size_t)n * sizeof(float));
                                memset(bb + (size_t)kk * nr + n, 0,
                                       (size_t)(nr - n) * sizeof(float));
                            }
                            kr->ukr(kc, ap, bb, NULL, yrow + q, P, mv, n, &e);
                        }
                        continue;
                    }
                    const int ns = grid_segs(pl, q, n, segs);
                    if (!ns) continue;                // only pad columns
                    if (ns == 1 && segs[0].j0 == 0) { // one run from lane 0: plain tile
                        e.segs = NULL;
                        e.add = addrow ? addrow + segs[0].col : NULL;
                        kr->ukr(kc, ap, bsrc + q, boff, yrow + segs[0].col, P, mv, segs[0].j1, &e);
                    } else {
                        e.segs = segs;
                        e.nseg = ns;
                        e.add = addrow;
                        kr->ukr(kc, ap, bsrc + q, boff, yrow, P, mv, n, &e);
                    }
                }
            }
        }
    }
}


// --- Winograd driver ------------------------------------------------------------------------

typedef struct wino_task {
    const hy__conv2d_desc *d;
    const hy__gemm_kernel *kr;
    wino_plan pl;
    const float *u, *bias; // packed U (36, mpad/MR, cin, MR), bias (mpad)
    const float *x;        // (cin, h, w)
    int h, w;
    const float *add; // (cout, oh, ow) or NULL
    float *y;         // (cout, oh, ow)
    float *v, *m;     // (36, cin, qs), (36, cout, qs); xi planes vs, ms apart
    float *tmp;       // nth * tmp_floats
    int tb0, tb1;     // current band of tile rows
    int Q, nch;       // its columns (tb1 - tb0) * twp, transform chunks
    hy__workq wq;     // items of the current pass, handed out dynamically
} wino_task;

/* V columns [q, qs) of every xi plane of one channel: read by the GEMM's whole-vector loads,
 * so they must hold defined values. */
static void wino_zero_tails(const wino_plan *pl, float *v, int q) {
    for (int xi = 0; xi < WINO_NXI; xi++)
        memset(v + (size_t)xi * pl->vs + q, 0, (size_t)(pl->qs - q) * sizeof(float));
}

static void wino_in_worker(void *ctx, int ith, int nth) {
    wino_task *t = ctx;
    const wino_plan *pl = &t->pl;
    float *tmp = t->tmp + (size_t)ith * pl->tmp_floats;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1)) // (chunk, channel): parts are row shares
    for (int it = (int)i0; it < (int)i1; it++) {
        const int ci = it % t->d->cin, ch = it / t->d->cin;
        const int ty0 = t->tb0 + ch * pl->rt, ty1 = HY_MIN(t->tb1, ty0 + pl->rt);
        float *v = t->v + (size_t)ci * pl->qs;
        t->kr->wino_in(t->x + (size_t)ci * t->h * t->w, t->h, t->w, ty0, ty1, pl->twp, tmp,
                       v + (ptrdiff_t)(ty0 - t->tb0) * pl->twp, pl->vs);
        if (ty1 == t->tb1) wino_zero_tails(pl, v, t->Q);
    }
}

/* M[xi](cout, columns [qc, qc + nc)) = U[xi] V[xi] for the V, M of plan pl. */
static void wino_gemm(const wino_task *t, const float *v, float *m, int xi, int qc, int nc) {
    const wino_plan *pl = &t->pl;
    const hy__gemm_kernel *kr = t->kr;
    const int cin = t->d->cin, cout = t->d->cout, mr = kr->mr, nr = kr->nr;
    const int mpanels = (cout + mr - 1) / mr;
    const int nkb = (cin + KC_MAX - 1) / KC_MAX, kcb = (cin + nkb - 1) / nkb;
    ptrdiff_t boff[KC_MAX];
    for (int kb = 0; kb < nkb; kb++) {
        const int k0 = kb * kcb, kc = HY_MIN(kcb, cin - k0);
        for (int kk = 0; kk < kc; kk++) boff[kk] = xi * pl->vs + (k0 + kk) * pl->qs;
        // plain partial sums: bias, act and add come after the output transform
        const hy__gemm_epi e = { .bias = t->bias, .first = kb == 0, .last = 0 };
        for (int mp = 0; mp < mpanels; mp++) {
            const int m0 = mp * mr, mv = HY_MIN(mr, cout - m0);
            const float *ap = t->u + (((size_t)xi * mpanels + mp) * cin + k0) * mr;
            float *c = m + xi * pl->ms + (ptrdiff_t)m0 * pl->qs;
            for (int j = 0, n; j < nc; j += n) {
                n = HY_MIN(nr, nc - j);
                kr->ukr(kc, ap, v + qc + j, boff, c + qc + j, pl->qs, mv, n, &e);
            }
        }
    }
}

static void wino_gemm_worker(void *ctx, int ith, int nth) {
    wino_task *t = ctx;
    (void)nth;
    const int ncb = t->pl.ncb;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1)) // (column block, xi)
    for (int it = (int)i0; it < (int)i1; it++) {
        const int xi = it % WINO_NXI, qc = it / WINO_NXI * ncb;
        wino_gemm(t, t->v, t->m, xi, qc, HY_MIN(ncb, t->Q - qc));
    }
}

static void wino_out_worker(void *ctx, int ith, int nth) {
    wino_task *t = ctx;
    const wino_plan *pl = &t->pl;
    const size_t plane = (size_t)pl->oh * pl->ow;
    float *tmp = t->tmp + (size_t)ith * pl->tmp_floats;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1)) // (chunk, channel)
    for (int it = (int)i0; it < (int)i1; it++) {
        const int co = it % t->d->cout, ch = it / t->d->cout;
        const int ty0 = t->tb0 + ch * pl->rt, ty1 = HY_MIN(t->tb1, ty0 + pl->rt);
        t->kr->wino_out(t->m + (size_t)co * pl->qs + (ptrdiff_t)(ty0 - t->tb0) * pl->twp, pl->ms,
                        ty0, ty1, pl->twp,
                        t->bias[co], t->d->act, t->add ? t->add + co * plane : NULL,
                        t->y + co * plane, pl->oh, pl->ow, tmp);
    }
}

/* Private mode: one band of private_rows tile rows per item, all three steps in this thread's
 * own V, M and tmp. */
static void wino_private_worker(void *ctx, int ith, int nth) {
    wino_task *t = ctx;
    const wino_plan *pl = &t->pl;
    const hy__gemm_kernel *kr = t->kr;
    (void)nth;
    float *v = t->v + (size_t)ith * pl->per_thread, *m = v + pl->v_floats, *tmp = m + pl->m_floats;
    const size_t plane = (size_t)pl->oh * pl->ow;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
    for (int b = (int)i0; b < (int)i1; b++) {
        const int ty0 = b * pl->private_rows, ty1 = HY_MIN(pl->th, ty0 + pl->private_rows);
        const int q = (ty1 - ty0) * pl->twp;
        for (int ci = 0; ci < t->d->cin; ci++) {
            float *vc = v + (size_t)ci * pl->qs;
            kr->wino_in(t->x + (size_t)ci * t->h * t->w, t->h, t->w, ty0, ty1, pl->twp, tmp, vc, pl->vs);
            wino_zero_tails(pl, vc, q);
        }
        for (int xi = 0; xi < WINO_NXI; xi++) wino_gemm(t, v, m, xi, 0, q);
        for (int co = 0; co < t->d->cout; co++)
            kr->wino_out(m + (size_t)co * pl->qs, pl->ms, ty0, ty1, pl->twp, t->bias[co], t->d->act,
                         t->add ? t->add + co * plane : NULL, t->y + co * plane, pl->oh, pl->ow, tmp);
    }
}

static void wino_run(const hy__conv2d_desc *d, const hy__gemm_kernel *kr, const void *packed,
                     const float *x, int h, int w, const float *add, float *y, void *scratch,
                     hy__threadpool *tp) {
    wino_task t = { .d = d, .kr = kr, .x = x, .h = h, .w = w, .add = add, .y = y };
    const int nth = hy__threadpool_size(tp);
    wino_plan_make(kr, d, h, w, nth, &t.pl);
    t.u = (const float *)((const char *)packed + PACK_HDR);
    t.bias = (const float *)((const char *)t.u + packed_bytes_a(d, kr->mr));
    float *base = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    t.v = base;
    if (t.pl.private_rows > 0) {
        hy__workq_init(&t.wq, (t.pl.th + t.pl.private_rows - 1) / t.pl.private_rows, nth, 0, 1);
        hy__threadpool_run(tp, wino_private_worker, &t);
        return;
    }
    t.m = base + t.pl.v_floats;
    t.tmp = t.m + t.pl.m_floats;
    for (t.tb0 = 0; t.tb0 < t.pl.th; t.tb0 = t.tb1) {
        t.tb1 = HY_MIN(t.pl.th, t.tb0 + t.pl.br);
        t.Q = (t.tb1 - t.tb0) * t.pl.twp;
        t.nch = (t.tb1 - t.tb0 + t.pl.rt - 1) / t.pl.rt;
        const int nqb = (t.Q + t.pl.ncb - 1) / t.pl.ncb;
        hy__workq_init(&t.wq, (long)d->cin * t.nch, nth, 8, 1);
        hy__threadpool_run(tp, wino_in_worker, &t);
        hy__workq_init(&t.wq, (long)WINO_NXI * nqb, nth, 8, 1);
        hy__threadpool_run(tp, wino_gemm_worker, &t);
        hy__workq_init(&t.wq, (long)d->cout * t.nch, nth, 8, 1);
        hy__threadpool_run(tp, wino_out_worker, &t);
    }
}

const char *hy__cpu_conv2d_path(const hy__conv2d_desc *d, int h, int w, int nth, int isa) {
    if (!wino_ok(d)) return "gemm";
    wino_plan pl;
    wino_plan_make(kernel_of(isa), d, h, w, nth, &pl);
    return pl.private_rows > 0 ? "winograd-private" : "winograd";
}

void hy__cpu_conv2d(const hy__conv2d_desc *d, const void *packed, const float *x, int h, int w,
                    const float *add, float *y, void *scratch, hy__threadpool *tp) {
    pack_hdr hdr;
    memcpy(&hdr, packed, sizeof hdr);
    HY_ASSERT(hdr.magic == PACK_MAGIC && hdr.cin == d->cin && hdr.cout == d->cout &&
              hdr.kh == d->kh && hdr.kw == d->kw);
    HY_ASSERT(y != add && y != x && scratch);
    HY_ASSERT(hdr.algo == (wino_ok(d) ? ALGO_WINO : ALGO_GEMM));
    if (hdr.algo == ALGO_WINO) {
        wino_run(d, kernel_of(hdr.isa), packed, x, h, w, add, y, scratch, tp);
        return;
    }
    conv_task t = { .d = d, .kr = kernel_of(hdr.isa), .x = x, .h = h, .w = w, .add = add, .y = y };
    plan_make(t.kr, d, h, w, &t.pl);
    t.a = (const float *)((const char *)packed + PACK_HDR);
    t.bias = (const float *)((const char *)t.a + packed_bytes_a(d, t.kr->mr));
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    t.xg = (float *)base;
    const int nth = hy__threadpool_size(tp);
    t.bufs = base + t.pl.xg_bytes * (size_t)(t.pl.band ? nth : 1);

    // Work items: column blocks (at most one B block, nc, wide; at least one per thread when
    // the columns allow, in SIMD-width units) times groups of cout micro-panels, enough items
    // for ~4 per thread so that a slower thread hands its share to the others. Blocks take
    // every panel group in a row, so a B block is mostly reused while it is still cached.
    const int mpanels = (d->cout + t.kr->mr - 1) / t.kr->mr;
    const int units = (t.pl.Q + t.kr->vl - 1) / t.kr->vl;
    const int per_thread = (units + nth - 1) / nth * t.kr->vl;
    t.qw = (int)HY_MIN((long)t.pl.nc, (long)per_thread);
    t.qw = HY_MAX(t.qw, t.kr->vl);
    t.nqb = (t.pl.Q + t.qw - 1) / t.qw;
    t.nmg = nth > 1 ? HY_MIN(mpanels, HY_MAX(1, (4 * nth + t.nqb - 1) / t.nqb)) : 1;
    t.mg = (mpanels + t.nmg - 1) / t.nmg;
    t.nmg = (mpanels + t.mg - 1) / t.mg;
    if (t.pl.band) {
        hy__threadpool_each(tp, t.pl.nband, band_item, &t);
        return;
    }
    if (t.pl.mode == MODE_GRID) {
        hy__workq_init(&t.wq, (long)d->cin * t.pl.hq * d->stride, nth, 8, 16);
        hy__threadpool_run(tp, phase_worker, &t);
    }
    hy__workq_init(&t.wq, (long)t.nqb * t.nmg, nth, 0, 1);
    hy__threadpool_run(tp, conv_worker, &t);
}
