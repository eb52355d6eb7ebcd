/* Ultralytics LetterBox geometry and an OpenCV-exact cv2.resize(INTER_LINEAR) for 8-bit RGB.
 *
 * What OpenCV 4.x (imgproc/src/resize.cpp, CV_8UC3, no IPP: it refuses inexact 8u linear) does:
 *   - dsize == ssize: plain copy.
 *   - scale = 1 / (dsize / ssize) (double); if both scales are within DBL_EPSILON of the integer 2,
 *     INTER_LINEAR becomes INTER_AREA's fast path: (a + b + c + d + 2) >> 2 over each 2x2 block.
 *   - else separable fixed-point bilinear, INTER_RESIZE_COEF_BITS = 11 (weights sum to 2048):
 *       f = (float)((d + 0.5) * scale - 0.5); s = floor(f); f -= s;
 *       w0 = cvRound((1 - f) * 2048), w1 = cvRound(f * 2048)  (float, round half to even).
 *     x: s < 0 -> s = 0, f = 0; s >= sw - 1 -> s = sw - 1, f = 0 (one tap, v * 2048).
 *     y: weights are NOT clamped; the two source rows are clamped to [0, sh - 1].
 *     Horizontal pass into int rows: h = S[s] * w0 + S[s + 1] * w1.
 *     Vertical pass, as the SSE2/NEON code and the uchar scalar tail compute it:
 *       out = (((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2
 *     (not the FixedPtCast (b0*h0 + b1*h1 + 2^21) >> 22, which differs by 1 now and then). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "image/image.h"

#define COEF_BITS 11
#define COEF_ONE (1 << COEF_BITS)

// --- geometry ----------------------------------------------------------------------------------

/* Python's round() on a double: half to even (nearbyint in the default rounding mode). */
static int py_round(double v) { return (int)nearbyint(v); }

hy__letterbox hy__letterbox_plan(int w, int h, int new_w, int new_h, int auto_pad, int stride) {
    return hy__letterbox_plan_ex(w, h, new_w, new_h, auto_pad, 1, stride);
}

hy__letterbox hy__letterbox_plan_ex(int w, int h, int new_w, int new_h, int auto_pad, int scaleup,
                                    int stride) {
    HY_ASSERT(w > 0 && h > 0 && new_w > 0 && new_h > 0);
    if (stride <= 0) stride = 32;
    hy__letterbox lb;
    memset(&lb, 0, sizeof lb);
    lb.src_w = w;
    lb.src_h = h;
    // r = min(new_h / h, new_w / w); scaleup=False caps it at 1 (val / train LetterBox).
    const double rh = (double)new_h / h, rw = (double)new_w / w;
    double r = rh < rw ? rh : rw;
    if (!scaleup && r > 1.0) r = 1.0;
    lb.r = (float)r;
    lb.unpad_w = py_round(w * r);
    lb.unpad_h = py_round(h * r);
    // A side that rounds to 0 would make cv2.resize throw; keep one pixel instead.
    if (lb.unpad_w < 1) lb.unpad_w = 1;
    if (lb.unpad_h < 1) lb.unpad_h = 1;
    int dw = new_w - lb.unpad_w, dh = new_h - lb.unpad_h;
    if (auto_pad) { // np.mod: result takes the divisor's sign
        dw = ((dw % stride) + stride) % stride;
        dh = ((dh % stride) + stride) % stride;
    }
    const double pw = dw / 2.0, ph = dh / 2.0;
    lb.pad_x = (float)pw;
    lb.pad_y = (float)ph;
    lb.top = py_round(ph - 0.1);
    lb.bottom = py_round(ph + 0.1);
    lb.left = py_round(pw - 0.1);
    lb.right = py_round(pw + 0.1);
    lb.out_w = lb.unpad_w + lb.left + lb.right;
    lb.out_h = lb.unpad_h + lb.top + lb.bottom;
    return lb;
}

// --- resize plan -------------------------------------------------------------------------------

typedef enum rs_mode { RS_COPY, RS_AREA2, RS_LINEAR } rs_mode;

typedef struct rs_plan {
    int sw, sh, dw, dh;
    rs_mode mode;
    int32_t *xofs;    // (dw) left source pixel, clamped
    int16_t *alpha;   // (dw, 2) x weights
    int32_t *yofs;    // (dh) floor(fy), not clamped
    int16_t *beta;    // (dh, 2) y weights
    int32_t *rows[2]; // 2 x (dw * 3) horizontal-pass rows
    int row_y[2];     // source row held by each, -1 = none
} rs_plan;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t rs_tables_size(int dw, int dh);
static size_t rs_rows_size(int dw);

size_t hy__resize_scratch_size(int sw, int sh, int dw, int dh) {
    (void)sw;
    (void)sh;
    return rs_tables_size(dw, dh) + rs_rows_size(dw);
}

/* (float)((d + 0.5) * scale - 0.5) rounded step by step as OpenCV does; volatile keeps the
 * compiler from fusing the multiply-add into an FMA, which would round differently. */
static float src_coord(int d, double scale) {
    volatile double t = ((double)d + 0.5) * scale;
    return (float)(t - 0.5);
}

static int16_t coef(float v) { return (int16_t)lrintf(v * (float)COEF_ONE); }

/* The 2 horizontal-pass rows (rs_rows_size bytes at rows, 64-aligned): one pair per thread. */
static size_t rs_rows_size(int dw) { return 2 * align64((size_t)dw * 3 * 4); }
static void rs_set_rows(rs_plan *p, uint8_t *rows) {
    p->rows[0] = (int32_t *)rows;
    p->rows[1] = (int32_t *)(rows + align64((size_t)p->dw * 3 * 4));
    p->row_y[0] = p->row_y[1] = -1;
}
/* Bytes of the shared tables (xofs, alpha, yofs, beta) before the first row pair. */
static size_t rs_tables_size(int dw, int dh) {
    return 64 + align64((size_t)dw * 4) + align64((size_t)dw * 4) + align64((size_t)dh * 4) +
           align64((size_t)dh * 4);
}

static void rs_init(rs_plan *p, int sw, int sh, int dw, int dh, void *scratch) {
    HY_ASSERT(sw > 0 && sh > 0 && dw > 0 && dh > 0 && scratch);
    memset(p, 0, sizeof *p);
    p->sw = sw;
    p->sh = sh;
    p->dw = dw;
    p->dh = dh;
    if (sw == dw && sh == dh) {
        p->mode = RS_COPY;
        return;
    }
    const double inv_x = (double)dw / sw, inv_y = (double)dh / sh;
    const double scale_x = 1.0 / inv_x, scale_y = 1.0 / inv_y;
    const int ix = (int)lrint(scale_x), iy = (int)lrint(scale_y);
    if (ix == 2 && iy == 2 && fabs(scale_x - ix) < DBL_EPSILON && fabs(scale_y - iy) < DBL_EPSILON) {
        p->mode = RS_AREA2;
        return;
    }
    p->mode = RS_LINEAR;

    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    p->xofs = (int32_t *)base;
    base += align64((size_t)dw * 4);
    p->alpha = (int16_t *)base;
    base += align64((size_t)dw * 4);
    p->yofs = (int32_t *)base;
    base += align64((size_t)dh * 4);
    p->beta = (int16_t *)base;
    base += align64((size_t)dh * 4);
    rs_set_rows(p, base);

    for (int dx = 0; dx < dw; dx++) {
        float fx = src_coord(dx, scale_x);
        int sx = (int)floorf(fx);
        fx -= (float)sx;
        if (sx < 0) fx = 0, sx = 0;
        if (sx >= sw - 1) fx = 0, sx = sw - 1;
        p->xofs[dx] = sx;
        p->alpha[2 * dx + 0] = coef(1.f - fx);
        p->alpha[2 * dx + 1] = coef(fx);
    }
    for (int dy = 0; dy < dh; dy++) {
        float fy = src_coord(dy, scale_y);
        int sy = (int)floorf(fy);
        fy -= (float)sy;
        p->yofs[dy] = sy;
        p->beta[2 * dy + 0] = coef(1.f - fy);
        p->beta[2 * dy + 1] = coef(fy);
    }
}

/* Horizontal pass of source row s into int row d (dw * 3). */
static void rs_hrow(const rs_plan *p, const uint8_t *s, int32_t *d) {
    const int sw = p->sw;
    for (int dx = 0; dx < p->dw; dx++, d += 3) {
        const int sx = p->xofs[dx];
        const uint8_t *a = s + 3 * sx;
        if (sx < sw - 1) {
            const int32_t w0 = p->alpha[2 * dx], w1 = p->alpha[2 * dx + 1];
            d[0] = a[0] * w0 + a[3] * w1;
            d[1] = a[1] * w0 + a[4] * w1;
            d[2] = a[2] * w0 + a[5] * w1;
        } else { // right border: one tap
            d[0] = a[0] * COEF_ONE;
            d[1] = a[1] * COEF_ONE;
            d[2] = a[2] * COEF_ONE;
        }
    }
}

/* Horizontal-pass row for source row y, computing it into a slot other than `keep` if absent. */
static const int32_t *rs_get_row(rs_plan *p, const uint8_t *src, size_t sstride, int y, int keep,
                                 int *slot) {
    for (int k = 0; k < 2; k++)
        if (p->row_y[k] == y) return *slot = k, p->rows[k];
    int k = keep == 0 ? 1 : 0;
    rs_hrow(p, src + (size_t)y * sstride, p->rows[k]);
    p->row_y[k] = y;
    *slot = k;
    return p->rows[k];
}

/* Output row dy (dw * 3 bytes) into out. */
static void rs_row(rs_plan *p, const uint8_t *src, size_t sstride, int dy, uint8_t *out) {
    const int n = p->dw * 3;
    switch (p->mode) {
    case RS_COPY:
        memcpy(out, src + (size_t)dy * sstride, (size_t)n);
        return;
    case RS_AREA2: {
        const uint8_t *a = src + (size_t)(2 * dy) * sstride, *b = a + sstride;
        for (int x = 0; x < p->dw; x++, a += 6, b += 6, out += 3)
            for (int c = 0; c < 3; c++) out[c] = (uint8_t)((a[c] + a[c + 3] + b[c] + b[c + 3] + 2) >> 2);
        return;
    }
    case RS_LINEAR: {
        const int sy = p->yofs[dy], last = p->sh - 1;
        const int y0 = sy < 0 ? 0 : sy > last ? last : sy;
        const int y1 = sy + 1 < 0 ? 0 : sy + 1 > last ? last : sy + 1;
        int s0, s1;
        const int32_t *r0 = rs_get_row(p, src, sstride, y0, -1, &s0);
        const int32_t *r1 = rs_get_row(p, src, sstride, y1, s0, &s1);
        const int32_t b0 = p->beta[2 * dy], b1 = p->beta[2 * dy + 1];
        for (int i = 0; i < n; i++)
            out[i] = (uint8_t)((((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2);
        return;
    }
    }
}

void hy__resize_linear_u8(const uint8_t *src, int sw, int sh, size_t sstride, uint8_t *dst, int dw,
                          int dh, size_t dstride, void *scratch) {
    rs_plan p;
    rs_init(&p, sw, sh, dw, dh, scratch);
    for (int dy = 0; dy < dh; dy++) rs_row(&p, src, sstride, dy, dst + (size_t)dy * dstride);
}

// --- letterbox ---------------------------------------------------------------------------------

/* Per thread: a row pair of the horizontal pass and one resized RGB row. */
static size_t lb_thread_size(const hy__letterbox *lb) {
    return rs_rows_size(lb->unpad_w) + align64((size_t)lb->unpad_w * 3);
}

size_t hy__letterbox_scratch_size_mt(const hy__letterbox *lb, int nth) {
    return rs_tables_size(lb->unpad_w, lb->unpad_h) + (size_t)(nth > 0 ? nth : 1) * lb_thread_size(lb);
}

size_t hy__letterbox_scratch_size(const hy__letterbox *lb) { return hy__letterbox_scratch_size_mt(lb, 1); }

typedef struct lb_task {
    const hy__letterbox *lb;
    const uint8_t *src;
    size_t sstride;
    float *dst;
    rs_plan plan;   /* tables shared, rows per thread */
    uint8_t *bufs;  /* nth x lb_thread_size */
    float lut[256]; /* torch: uint8 -> float32, then /= 255 (a true division, not * 1/255) */
    hy__workq wq;   /* output rows */
} lb_task;

/* Output rows [y0, y1) of every plane. */
static void lb_rows(const lb_task *t, rs_plan *p, uint8_t *row, int y0, int y1) {
    const hy__letterbox *lb = t->lb;
    const int ow = lb->out_w, uw = lb->unpad_w;
    const size_t plane = (size_t)ow * lb->out_h;
    const float *lut = t->lut, pad = t->lut[114];
    for (int y = y0; y < y1; y++) {
        float *d0 = t->dst + (size_t)y * ow, *d1 = d0 + plane, *d2 = d1 + plane; // R, G, B rows
        const int sy = y - lb->top;
        if (sy < 0 || sy >= lb->unpad_h) {
            for (int x = 0; x < ow; x++) d0[x] = d1[x] = d2[x] = pad;
            continue;
        }
        const uint8_t *r;
        if (p->mode == RS_COPY) {
            r = t->src + (size_t)sy * t->sstride;
        } else {
            rs_row(p, t->src, t->sstride, sy, row);
            r = row;
        }
        for (int x = 0; x < lb->left; x++) d0[x] = d1[x] = d2[x] = pad;
        float *e0 = d0 + lb->left, *e1 = d1 + lb->left, *e2 = d2 + lb->left;
        for (int x = 0; x < uw; x++) {
            e0[x] = lut[r[3 * x + 0]];
            e1[x] = lut[r[3 * x + 1]];
            e2[x] = lut[r[3 * x + 2]];
        }
        for (int x = lb->left + uw; x < ow; x++) d0[x] = d1[x] = d2[x] = pad;
    }
}

static void lb_worker(void *ctx, int ith, int nth) {
    lb_task *t = ctx;
    (void)nth;
    rs_plan p = t->plan; /* own copy: the horizontal-row cache is per thread */
    uint8_t *mine = t->bufs + (size_t)ith * lb_thread_size(t->lb);
    rs_set_rows(&p, mine);
    uint8_t *row = mine + rs_rows_size(t->lb->unpad_w);
    long y0, y1;
    while (hy__workq_take(&t->wq, ith, &y0, &y1)) lb_rows(t, &p, row, (int)y0, (int)y1);
}

void hy__letterbox_apply_mt(const hy__letterbox *lb, const uint8_t *src, size_t sstride, float *dst,
                            void *scratch, hy__threadpool *tp) {
    HY_ASSERT(lb->out_w == lb->unpad_w + lb->left + lb->right &&
              lb->out_h == lb->unpad_h + lb->top + lb->bottom);
    lb_task t = {.lb = lb, .src = src, .sstride = sstride, .dst = dst};
    for (int i = 0; i < 256; i++) t.lut[i] = (float)i / 255.0f;
    rs_init(&t.plan, lb->src_w, lb->src_h, lb->unpad_w, lb->unpad_h, scratch);
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    t.bufs = base + rs_tables_size(lb->unpad_w, lb->unpad_h) - 64;
    /* rows in chunks of 16: neighbouring output rows share source rows (the row cache) */
    hy__workq_init(&t.wq, lb->out_h, hy__threadpool_size(tp), 4, 16);
    hy__threadpool_run(tp, lb_worker, &t);
}

void hy__letterbox_apply(const hy__letterbox *lb, const uint8_t *src, size_t sstride, float *dst,
                         void *scratch) {
    hy__letterbox_apply_mt(lb, src, sstride, dst, scratch, NULL);
}

// --- INTER_AREA ----------------------------------------------------------------------------------
/* cv2.resize(INTER_AREA) for 8-bit 3-channel images shrinking in both directions, as OpenCV 4.x
 * imgproc/src/resize.cpp computes it (IPP declines INTER_AREA as "not exact"):
 *   scale = ssize / dsize (double); when both are integers (within DBL_EPSILON):
 *     2 x 2:  (a + b + c + d + 2) >> 2
 *     k x l:  cvRound((float)sum * (1.f / (k * l)))
 *   otherwise each output pixel is the overlap-weighted sum of the source pixels under it:
 *     computeResizeAreaTab gives per axis (dst index, src index, float weight) triples; the
 *     horizontal sums (float, in table order) are combined over the rows of the vertical table
 *     (sum = beta * buf, then sum += beta * buf) and rounded by cvRound (half to even). */

typedef struct area_tab {
    int di, si;
    float alpha;
} area_tab;

static int area_tab_fill(int ssize, int dsize, int cn, double scale, area_tab *tab) {
    int k = 0;
    for (int dx = 0; dx < dsize; dx++) {
        const double fsx1 = dx * scale, fsx2 = fsx1 + scale;
        const double cell = HY_MIN(scale, ssize - fsx1);
        int sx1 = (int)ceil(fsx1), sx2 = (int)floor(fsx2);
        sx2 = HY_MIN(sx2, ssize - 1);
        sx1 = HY_MIN(sx1, sx2);
        if (sx1 - fsx1 > 1e-3)
            tab[k++] = (area_tab){dx * cn, (sx1 - 1) * cn, (float)((sx1 - fsx1) / cell)};
        for (int sx = sx1; sx < sx2; sx++)
            tab[k++] = (area_tab){dx * cn, sx * cn, (float)(1.0 / cell)};
        if (fsx2 - sx2 > 1e-3)
            tab[k++] =
                (area_tab){dx * cn, sx2 * cn, (float)(HY_MIN(HY_MIN(fsx2 - sx2, 1.), cell) / cell)};
    }
    return k;
}

static uint8_t round_u8(float v) { // saturate_cast<uchar>(float): cvRound, then clamp
    const long r = lrintf(v);
    return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

hy_status hy__resize_area_u8(const uint8_t *src, int sw, int sh, size_t sstride, uint8_t *dst,
                             int dw, int dh, size_t dstride) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || dw > sw || dh > sh)
        return hy__error(HY_ERR_INVALID_ARG,
                         "INTER_AREA resize %dx%d -> %dx%d: only shrinking is supported", sw, sh,
                         dw, dh);
    const int cn = 3;
    if (dw == sw && dh == sh) { // cv::resize copies when the size is unchanged
        for (int y = 0; y < dh; y++)
            memcpy(dst + (size_t)y * dstride, src + (size_t)y * sstride, (size_t)sw * 3);
        return HY_OK;
    }
    const double scale_x = 1. / ((double)dw / sw), scale_y = 1. / ((double)dh / sh);
    const int ix = (int)lrint(scale_x), iy = (int)lrint(scale_y);
    if (fabs(scale_x - ix) < DBL_EPSILON && fabs(scale_y - iy) < DBL_EPSILON) {
        const int area = ix * iy;
        const float inv = 1.f / (float)area;
        for (int y = 0; y < dh; y++) {
            uint8_t *d = dst + (size_t)y * dstride;
            for (int x = 0; x < dw; x++)
                for (int c = 0; c < cn; c++) {
                    int sum = 0;
                    for (int ky = 0; ky < iy; ky++) {
                        const uint8_t *s =
                            src + (size_t)(y * iy + ky) * sstride + (size_t)(x * ix) * 3 + c;
                        for (int kx = 0; kx < ix; kx++) sum += s[kx * 3];
                    }
                    d[3 * x + c] =
                        ix == 2 && iy == 2 ? (uint8_t)((sum + 2) >> 2) : round_u8((float)sum * inv);
                }
        }
        return HY_OK;
    }
    area_tab *xtab = hy__malloc((size_t)sw * 2 * sizeof *xtab);
    area_tab *ytab = hy__malloc((size_t)sh * 2 * sizeof *ytab);
    float *buf =
        hy__malloc((size_t)dw * cn * 2 * sizeof *buf); // (2, dw * 3): row sums, accumulators
    if (!xtab || !ytab || !buf) {
        hy__free(xtab);
        hy__free(ytab);
        hy__free(buf);
        return hy__error(HY_ERR_NOMEM, "out of memory for an INTER_AREA resize to %dx%d", dw, dh);
    }
    const int nx = area_tab_fill(sw, dw, cn, scale_x, xtab),
              ny = area_tab_fill(sh, dh, 1, scale_y, ytab);
    const int W = dw * cn;
    float *row = buf, *sum = buf + W;
    for (int i = 0; i < W; i++) sum[i] = 0.f;
    int prev_dy = ytab[0].di;
    for (int j = 0; j < ny; j++) {
        const float beta = ytab[j].alpha;
        const int dy = ytab[j].di;
        const uint8_t *S = src + (size_t)ytab[j].si * sstride;
        for (int i = 0; i < W; i++) row[i] = 0.f;
        for (int k = 0; k < nx; k++) {
            const int sxn = xtab[k].si, dxn = xtab[k].di;
            const float alpha = xtab[k].alpha;
            const float t0 = row[dxn] + (float)S[sxn] * alpha;
            const float t1 = row[dxn + 1] + (float)S[sxn + 1] * alpha;
            const float t2 = row[dxn + 2] + (float)S[sxn + 2] * alpha;
            row[dxn] = t0;
            row[dxn + 1] = t1;
            row[dxn + 2] = t2;
        }
        if (dy != prev_dy) {
            uint8_t *D = dst + (size_t)prev_dy * dstride;
            for (int i = 0; i < W; i++) {
                D[i] = round_u8(sum[i]);
                sum[i] = beta * row[i];
            }
            prev_dy = dy;
        } else {
            for (int i = 0; i < W; i++) sum[i] += beta * row[i];
        }
    }
    uint8_t *D = dst + (size_t)prev_dy * dstride;
    for (int i = 0; i < W; i++) D[i] = round_u8(sum[i]);
    hy__free(xtab);
    hy__free(ytab);
    hy__free(buf);
    return HY_OK;
}
