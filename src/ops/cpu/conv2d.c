/* Fast conv2d: packed-weight GEMM with cache blocking, driving the per-ISA micro-kernels.
 *
 *   y(cout, P) = W(cout, K) * B(K, P),  K = cin*kh*kw, P = oh*ow
 *
 * W is packed once at load into MR-row micro-panels (gemm.h). B is never materialised whole:
 * each thread packs one (kc, nc) block at a time into its scratch, copied straight from x for
 * 1x1 stride-1 convs and gathered as an implicit im2col otherwise. Loops per thread:
 *
 *   for nc columns of its P range        B block (kc x nc, ~L2) packed per K block
 *     for kc rows of K                   y holds the partial sums between K blocks
 *       for MR rows of cout              A micro-panel (kc x MR) stays in L1
 *         for NR columns                 micro-kernel, fused epilogue on the last K block
 *
 * Threads split P (in SIMD-width columns, so 2 threads get equal work for every YOLOv8 shape)
 * or, when P is too small to share, cout. No allocation: scratch is sized by plan_make(). */
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops_cpu.h"

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

bool hy__cpu_isa_available(int isa) { return isa >= 0 && isa < HY_CPU_ISA_COUNT && kernels[isa]; }

int hy__cpu_isa_best(void) {
    for (int i = HY_CPU_ISA_COUNT - 1; i > 0; i--)
        if (kernels[i]) return i;
    return HY_CPU_ISA_GENERIC;
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

#define KC_MAX 640          /* K block: A micro-panel 8*640*4 = 20 KB stays in L1 */
#define B_BLOCK_BYTES (384 * 1024) /* packed B block target: half of a 1 MB L2 */
#define NC_MAX 4096

typedef struct conv_plan {
    int oh, ow, P, K;
    int kc, nkb; /* K in nkb blocks of <= kc rows */
    int nc;      /* columns per B block, multiple of NR */
    size_t per_thread; /* scratch bytes per thread, multiple of 64 */
} conv_plan;

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

static void plan_make(const hy__gemm_kernel *kr, const hy__conv2d_desc *d, int h, int w,
                      conv_plan *pl) {
    pl->oh = hy__conv_out(h, d->kh, d->stride, d->pad);
    pl->ow = hy__conv_out(w, d->kw, d->stride, d->pad);
    HY_ASSERT(pl->oh > 0 && pl->ow > 0);
    pl->P = pl->oh * pl->ow;
    pl->K = d->cin * d->kh * d->kw;
    pl->nkb = (pl->K + KC_MAX - 1) / KC_MAX;
    pl->kc = (pl->K + pl->nkb - 1) / pl->nkb; // equal blocks: 1152 -> 2 x 576
    int nc = (int)(B_BLOCK_BYTES / ((size_t)pl->kc * sizeof(float))) / kr->nr * kr->nr;
    nc = HY_MAX(nc, kr->nr);
    nc = HY_MIN(nc, NC_MAX / kr->nr * kr->nr);
    nc = HY_MIN(nc, (int)round_up((size_t)pl->P, (size_t)kr->nr)); // independent of nth
    pl->nc = nc;
    pl->per_thread = round_up((size_t)pl->kc * (size_t)nc * sizeof(float), 64);
}

size_t hy__cpu_conv2d_scratch_size(const hy__conv2d_desc *d, int h, int w, int nth) {
    size_t best = 0;
    for (int i = 0; i < HY_CPU_ISA_COUNT; i++) {
        if (!kernels[i]) continue;
        conv_plan pl;
        plan_make(kernels[i], d, h, w, &pl);
        best = HY_MAX(best, pl.per_thread * (size_t)HY_MAX(nth, 1) + 64); // + alignment slack
    }
    return best;
}

// --- packed weights -----------------------------------------------------------------------
/* Layout (64-byte aligned): header (64 B) | A: (cout/MR panels, K, MR) | bias (mpad). */

#define PACK_MAGIC 0x4b435048u /* "HPCK" */
#define PACK_HDR 64

typedef struct pack_hdr {
    uint32_t magic;
    int32_t isa, cin, cout, kh, kw, K, mpad;
} pack_hdr;
_Static_assert(sizeof(pack_hdr) <= PACK_HDR, "pack header fits");

static size_t packed_bytes_a(const hy__conv2d_desc *d, int mr) {
    return round_up(round_up((size_t)d->cout, (size_t)mr) * (size_t)d->cin * d->kh * d->kw * sizeof(float),
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
    pack_hdr hdr = { PACK_MAGIC, isa, d->cin, d->cout, d->kh, d->kw, K, mpad };
    memset(packed, 0, PACK_HDR);
    memcpy(packed, &hdr, sizeof hdr);
    float *a = (float *)((char *)packed + PACK_HDR); // (mpad/MR, K, MR)
    for (int p = 0; p < mpad / mr; p++)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < mr; i++) {
                const int row = p * mr + i;
                a[((size_t)p * K + k) * mr + i] = row < d->cout ? wt[(size_t)row * K + k] : 0.0f;
            }
    float *bp = (float *)((char *)a + packed_bytes_a(d, mr)); // (mpad)
    for (int row = 0; row < mpad; row++) bp[row] = bias && row < d->cout ? bias[row] : 0.0f;
}

void hy__cpu_conv2d_pack(const hy__conv2d_desc *d, const float *wt, const float *bias, void *packed) {
    hy__cpu_conv2d_pack_isa(d, wt, bias, hy__cpu_isa_best(), packed);
}

// --- B block packing ------------------------------------------------------------------------

typedef struct conv_task {
    const hy__conv2d_desc *d;
    const hy__gemm_kernel *kr;
    conv_plan pl;
    const float *a, *bias; // packed A (mpad/MR, K, MR), bias (mpad)
    const float *x;        // (cin, h, w)
    int h, w;
    const float *add; // (cout, oh, ow) or NULL
    float *y;         // (cout, oh, ow)
    char *scratch;    // 64-aligned, nth * per_thread
    int split_m;      // threads split cout instead of P
} conv_task;

/* dst[t] = row[(o0 + t)*s + off] where that index is in [0, w), else 0, for t in [0, n). */
static void gather_seg(float *dst, const float *row, int o0, int n, int s, int off, int w) {
    // valid o: o*s + off >= 0 and <= w - 1
    const int omin = off >= 0 ? 0 : (-off + s - 1) / s;
    const int omax = w - 1 - off < 0 ? -1 : (w - 1 - off) / s;
    int lo = HY_MIN(HY_MAX(omin - o0, 0), n), hi = HY_MIN(HY_MAX(omax + 1 - o0, lo), n);
    for (int t = 0; t < lo; t++) dst[t] = 0.0f;
    const float *src = row + (ptrdiff_t)(o0 + lo) * s + off;
    if (s == 1)
        memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(float));
    else
        for (int t = lo; t < hi; t++) dst[t] = src[(ptrdiff_t)(t - lo) * s];
    for (int t = hi; t < n; t++) dst[t] = 0.0f;
}

/* Packs B rows [k0, k0+kc) x columns [p0, p0+nc) into NR-wide micro-panels:
 * bb[(j/NR)*kc*NR + (k-k0)*NR + j%NR], the last panel zero-padded to NR. */
static void pack_b(const conv_task *t, int k0, int kc, int p0, int nc, float *bb) {
    const hy__conv2d_desc *d = t->d;
    const int nr = t->kr->nr, ow = t->pl.ow, h = t->h, w = t->w, khw = d->kh * d->kw;
    const size_t panel = (size_t)kc * nr;
    const int pointwise = khw == 1 && d->stride == 1 && d->pad == 0;
    for (int kk = 0; kk < kc; kk++) {
        const int k = k0 + kk, ci = k / khw, ky = (k % khw) / d->kw, kx = k % d->kw;
        float *row = bb + (size_t)kk * nr;
        if (pointwise) { // B row k is input channel k: contiguous
            const float *src = t->x + (size_t)ci * t->pl.P + p0;
            int j = 0;
            for (; j + nr <= nc; j += nr) memcpy(row + (j / nr) * panel, src + j, (size_t)nr * sizeof(float));
            if (j < nc) memcpy(row + (j / nr) * panel, src + j, (size_t)(nc - j) * sizeof(float));
        } else { // implicit im2col: runs of one output row, cut at panel edges
            const float *xc = t->x + (size_t)ci * h * w;
            int oy = p0 / ow, ox = p0 % ow;
            for (int j = 0; j < nc;) {
                const int iy = oy * d->stride - d->pad + ky;
                int run = HY_MIN(ow - ox, nc - j);
                while (run > 0) {
                    const int seg = HY_MIN(run, nr - j % nr);
                    float *dst = row + (j / nr) * panel + j % nr;
                    if (iy < 0 || iy >= h)
                        memset(dst, 0, (size_t)seg * sizeof(float));
                    else
                        gather_seg(dst, xc + (size_t)iy * w, ox, seg, d->stride, kx - d->pad, w);
                    j += seg;
                    ox += seg;
                    run -= seg;
                }
                if (ox == ow) {
                    ox = 0;
                    oy++;
                }
            }
        }
        if (nc % nr) { // zero the padding columns of the last panel (read by the kernel)
            const int j = nc / nr * nr;
            memset(row + (j / nr) * panel + (nc - j), 0, (size_t)(nr - (nc - j)) * sizeof(float));
        }
    }
}

// --- driver -----------------------------------------------------------------------------

static void conv_worker(void *ctx, int ith, int nth) {
    const conv_task *t = ctx;
    const hy__conv2d_desc *d = t->d;
    const hy__gemm_kernel *kr = t->kr;
    const conv_plan *pl = &t->pl;
    const int mr = kr->mr, nr = kr->nr, P = pl->P, K = pl->K;
    const int mpanels = (d->cout + mr - 1) / mr;

    int mp0 = 0, mp1 = mpanels, p0 = 0, p1 = P;
    if (t->split_m) {
        mp0 = (int)((long)mpanels * ith / nth);
        mp1 = (int)((long)mpanels * (ith + 1) / nth);
    } else { // P in SIMD-width units
        const long units = (P + kr->vl - 1) / kr->vl;
        p0 = (int)HY_MIN((long)P, units * ith / nth * kr->vl);
        p1 = (int)HY_MIN((long)P, units * (ith + 1) / nth * kr->vl);
    }
    if (mp0 >= mp1 || p0 >= p1) return;

    float *bb = (float *)(t->scratch + (size_t)ith * pl->per_thread); // (nc/NR, kc, NR)
    for (int pc = p0; pc < p1; pc += pl->nc) {
        const int nc = HY_MIN(pl->nc, p1 - pc);
        for (int kb = 0; kb < pl->nkb; kb++) {
            const int k0 = kb * pl->kc, kc = HY_MIN(pl->kc, K - k0);
            pack_b(t, k0, kc, pc, nc, bb);
            hy__gemm_epi e = { .act = d->act, .first = kb == 0, .last = kb == pl->nkb - 1 };
            for (int mp = mp0; mp < mp1; mp++) {
                const int m = mp * mr;
                const float *ap = t->a + ((size_t)mp * K + k0) * mr; // (kc, MR)
                float *yc = t->y + (size_t)m * P + pc;
                const float *addc = t->add ? t->add + (size_t)m * P + pc : NULL;
                e.bias = t->bias + m;
                for (int j = 0; j < nc; j += nr) {
                    e.add = addc ? addc + j : NULL;
                    kr->ukr(kc, ap, bb + (size_t)(j / nr) * kc * nr, yc + j, P,
                            HY_MIN(mr, d->cout - m), HY_MIN(nr, nc - j), &e);
                }
            }
        }
    }
}

void hy__cpu_conv2d(const hy__conv2d_desc *d, const void *packed, const float *x, int h, int w,
                    const float *add, float *y, void *scratch, hy__threadpool *tp) {
    pack_hdr hdr;
    memcpy(&hdr, packed, sizeof hdr);
    HY_ASSERT(hdr.magic == PACK_MAGIC && hdr.cin == d->cin && hdr.cout == d->cout &&
              hdr.kh == d->kh && hdr.kw == d->kw);
    HY_ASSERT(y != add && y != x && scratch);
    conv_task t = { .d = d, .kr = kernel_of(hdr.isa), .x = x, .h = h, .w = w, .add = add, .y = y };
    plan_make(t.kr, d, h, w, &t.pl);
    t.a = (const float *)((const char *)packed + PACK_HDR);
    t.bias = (const float *)((const char *)t.a + packed_bytes_a(d, t.kr->mr));
    t.scratch = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);

    // Split cout when P gives under 4 SIMD-width column units per thread and cout has enough
    // micro-panels to share (tiny maps); otherwise split P (no duplicated B packing).
    const int nth = hy__threadpool_size(tp);
    const int mpanels = (d->cout + t.kr->mr - 1) / t.kr->mr;
    t.split_m = nth > 1 && (t.pl.P + t.kr->vl - 1) / t.kr->vl < 4 * nth && mpanels >= nth;
    hy__threadpool_run(tp, conv_worker, &t);
}
