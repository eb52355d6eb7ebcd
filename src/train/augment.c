/* Training augmentation (augment.h). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "train/augment.h"

// --- random numbers ----------------------------------------------------------------------------

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

hy__aug_rng hy__aug_rng_key(uint64_t seed, uint64_t epoch, uint64_t pos) {
    // each key word mixed in turn, so nearby keys give unrelated streams
    uint64_t h = mix64(seed ^ 0x6A09E667F3BCC909ull);
    h = mix64(h ^ (epoch + 0x9E3779B97F4A7C15ull));
    h = mix64(h ^ (pos + 0x3C6EF372FE94F82Bull));
    return (hy__aug_rng){h};
}

uint64_t hy__aug_next(hy__aug_rng *r) { return mix64(r->s += 0x9E3779B97F4A7C15ull); }
double hy__aug_unit(hy__aug_rng *r) { return (double)(hy__aug_next(r) >> 11) * (1.0 / 9007199254740992.0); }
double hy__aug_uniform(hy__aug_rng *r, double a, double b) { return a + (b - a) * hy__aug_unit(r); }

// --- mosaic ------------------------------------------------------------------------------------

hy__aug_tile hy__aug_mosaic_tile(int k, int s, int xc, int yc, int w, int h) {
    hy__aug_tile t;
    const int s2 = 2 * s;
    switch (k) {
    case 0: // top left: image's bottom-right corner at (xc, yc)
        t.x1a = HY_MAX(xc - w, 0), t.y1a = HY_MAX(yc - h, 0), t.x2a = xc, t.y2a = yc;
        t.x1b = w - (t.x2a - t.x1a), t.y1b = h - (t.y2a - t.y1a);
        break;
    case 1: // top right
        t.x1a = xc, t.y1a = HY_MAX(yc - h, 0), t.x2a = HY_MIN(xc + w, s2), t.y2a = yc;
        t.x1b = 0, t.y1b = h - (t.y2a - t.y1a);
        break;
    case 2: // bottom left
        t.x1a = HY_MAX(xc - w, 0), t.y1a = yc, t.x2a = xc, t.y2a = HY_MIN(s2, yc + h);
        t.x1b = w - (t.x2a - t.x1a), t.y1b = 0;
        break;
    default: // bottom right
        t.x1a = xc, t.y1a = yc, t.x2a = HY_MIN(xc + w, s2), t.y2a = HY_MIN(s2, yc + h);
        t.x1b = 0, t.y1b = 0;
        break;
    }
    return t;
}

void hy__aug_mosaic_paste(uint8_t *canvas, int s, const hy__aug_tile *t, const uint8_t *img, int w) {
    const size_t cw = 2 * (size_t)s, n = (size_t)(t->x2a - t->x1a) * 3;
    if (t->x2a <= t->x1a) return;
    for (int y = t->y1a; y < t->y2a; y++)
        memcpy(canvas + ((size_t)y * cw + (size_t)t->x1a) * 3,
               img + ((size_t)(t->y1b + y - t->y1a) * (size_t)w + (size_t)t->x1b) * 3, n);
}

// --- RandomPerspective -------------------------------------------------------------------------

hy__aug_affine_draw hy__aug_affine_sample(const hy__aug_affine_params *p, hy__aug_rng *r) {
    hy__aug_affine_draw d;
    d.px = hy__aug_uniform(r, -p->perspective, p->perspective);
    d.py = hy__aug_uniform(r, -p->perspective, p->perspective);
    d.angle = hy__aug_uniform(r, -p->degrees, p->degrees);
    d.scale = hy__aug_uniform(r, 1 - p->scale, 1 + p->scale);
    d.shear_x = hy__aug_uniform(r, -p->shear, p->shear);
    d.shear_y = hy__aug_uniform(r, -p->shear, p->shear);
    d.tx = hy__aug_uniform(r, 0.5 - p->translate, 0.5 + p->translate);
    d.ty = hy__aug_uniform(r, 0.5 - p->translate, 0.5 + p->translate);
    return d;
}

static void eye3(float m[9]) {
    memset(m, 0, 9 * sizeof(float));
    m[0] = m[4] = m[8] = 1;
}

static void matmul3(const float a[9], const float b[9], float c[9]) { // c = a @ b, float32
    float t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    memcpy(c, t, sizeof t);
}

void hy__aug_affine_matrix(const hy__aug_affine_draw *d, int in_w, int in_h, int out_w, int out_h,
                           float M[9]) {
    float C[9], P[9], R[9], S[9], T[9];
    eye3(C), eye3(P), eye3(R), eye3(S), eye3(T);
    C[2] = (float)(-(double)in_w / 2), C[5] = (float)(-(double)in_h / 2);
    P[6] = (float)d->px, P[7] = (float)d->py;
    // cv2.getRotationMatrix2D(center (0, 0), angle, scale), in double
    const double a = d->angle * M_PI / 180, al = cos(a) * d->scale, be = sin(a) * d->scale;
    R[0] = (float)al, R[1] = (float)be, R[3] = (float)-be, R[4] = (float)al;
    S[1] = (float)tan(d->shear_x * M_PI / 180), S[3] = (float)tan(d->shear_y * M_PI / 180);
    T[2] = (float)(d->tx * out_w), T[5] = (float)(d->ty * out_h);
    // M = T @ S @ R @ P @ C, evaluated left to right as numpy does
    matmul3(T, S, M);
    matmul3(M, R, M);
    matmul3(M, P, M);
    matmul3(M, C, M);
}

/* OpenCV's fixed-point geometry: INTER_BITS 5 (1/32 px), weights INTER_REMAP_COEF_BITS 15. */
enum { IBITS = 5, ITAB = 1 << IBITS, WBITS = 15 };

static int sat_int(double v) { // saturate_cast<int>(double): cvRound, saturated
    if (!(v > (double)INT_MIN)) return INT_MIN; // NaN too
    if (v >= (double)INT_MAX) return INT_MAX;
    return (int)lrint(v);
}

static int sat_short(int v) { return v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v; }

/* One bilinear sample at integer (sx, sy) + (fx, fy) / 32 as OpenCV's remapBilinear with
 * BORDER_CONSTANT 114: weights (32 - fx)(32 - fy) * 32 ... (exact in 15 bits); the (0, 0)
 * fraction's weights are (32767, 0, 0, 1), as initInterTab2D leaves them after saturating 32768
 * to a short. */
static inline void sample(const uint8_t *src, int sw, int sh, int sx, int sy, int fx, int fy, uint8_t *d) {
    if (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0) {
        d[0] = d[1] = d[2] = 114;
        return;
    }
    int w0, w1, w2, w3;
    if ((unsigned)sx < (unsigned)(sw - 1) && (unsigned)sy < (unsigned)(sh - 1) && (fx | fy)) { // inside
        const uint8_t *p = src + ((size_t)sy * (size_t)sw + (size_t)sx) * 3, *q = p + (size_t)sw * 3;
        w0 = (ITAB - fx) * (ITAB - fy) * 32, w1 = fx * (ITAB - fy) * 32, w2 = (ITAB - fx) * fy * 32, w3 = fx * fy * 32;
        for (int c = 0; c < 3; c++)
            d[c] = (uint8_t)((p[c] * w0 + p[3 + c] * w1 + q[c] * w2 + q[3 + c] * w3 + (1 << (WBITS - 1))) >> WBITS);
        return;
    }
    if (fx == 0 && fy == 0) {
        w0 = 32767, w1 = 0, w2 = 0, w3 = 1;
    } else {
        w0 = (ITAB - fx) * (ITAB - fy) * 32, w1 = fx * (ITAB - fy) * 32;
        w2 = (ITAB - fx) * fy * 32, w3 = fx * fy * 32;
    }
    static const uint8_t border[3] = {114, 114, 114};
    const int in_x0 = sx >= 0 && sx < sw, in_x1 = sx + 1 >= 0 && sx + 1 < sw;
    const int in_y0 = sy >= 0 && sy < sh, in_y1 = sy + 1 >= 0 && sy + 1 < sh;
    const size_t stride = (size_t)sw * 3;
    const uint8_t *p0 = in_x0 && in_y0 ? src + (size_t)sy * stride + (size_t)sx * 3 : border;
    const uint8_t *p1 = in_x1 && in_y0 ? src + (size_t)sy * stride + (size_t)(sx + 1) * 3 : border;
    const uint8_t *p2 = in_x0 && in_y1 ? src + (size_t)(sy + 1) * stride + (size_t)sx * 3 : border;
    const uint8_t *p3 = in_x1 && in_y1 ? src + (size_t)(sy + 1) * stride + (size_t)(sx + 1) * 3 : border;
    for (int c = 0; c < 3; c++) {
        const int v = (p0[c] * w0 + p1[c] * w1 + p2[c] * w2 + p3[c] * w3 + (1 << (WBITS - 1))) >> WBITS;
        d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

void hy__aug_warp(const uint8_t *src, int sw, int sh, const float M[9], int perspective, uint8_t *dst,
                  int dw, int dh) {
    const double m[9] = {M[0], M[1], M[2], M[3], M[4], M[5], M[6], M[7], M[8]};
    if (!perspective) {
        // cv::invertAffineTransform, then warpAffine's AB_BITS = 10 fixed point per row and column
        double D = m[0] * m[4] - m[1] * m[3];
        D = D != 0 ? 1. / D : 0;
        const double A11 = m[4] * D, A22 = m[0] * D, A12 = -m[1] * D, A21 = -m[3] * D;
        const double b1 = -A11 * m[2] - A12 * m[5], b2 = -A21 * m[2] - A22 * m[5];
        const int AB = 10, round_delta = (1 << AB) / ITAB / 2;
        int adelta[dw], bdelta[dw]; // (dw) per column, as OpenCV
        for (int x = 0; x < dw; x++) adelta[x] = sat_int(A11 * x * (1 << AB)), bdelta[x] = sat_int(A21 * x * (1 << AB));
        for (int y = 0; y < dh; y++) {
            const int X0 = sat_int((A12 * y + b1) * (1 << AB)) + round_delta;
            const int Y0 = sat_int((A22 * y + b2) * (1 << AB)) + round_delta;
            uint8_t *d = dst + (size_t)y * (size_t)dw * 3;
            for (int x = 0; x < dw; x++, d += 3) {
                // (int64: sums of saturated terms may leave int range; OpenCV wraps, we clamp)
                const int64_t X = ((int64_t)X0 + adelta[x]) >> (AB - IBITS);
                const int64_t Y = ((int64_t)Y0 + bdelta[x]) >> (AB - IBITS);
                const int sx = sat_short((int)HY_MAX(HY_MIN(X >> IBITS, INT_MAX), INT_MIN));
                const int sy = sat_short((int)HY_MAX(HY_MIN(Y >> IBITS, INT_MAX), INT_MIN));
                sample(src, sw, sh, sx, sy, (int)(X & (ITAB - 1)), (int)(Y & (ITAB - 1)), d);
            }
        }
        return;
    }
    // warpPerspective: the inverse of M (adjugate / determinant, double), then per pixel
    // W = 32 / (m6 x + m7 y + m8) and X = round((m0 x + m1 y + m2) W)
    double inv[9];
    const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                       m[2] * (m[3] * m[7] - m[4] * m[6]);
    const double id = det != 0 ? 1. / det : 0;
    inv[0] = (m[4] * m[8] - m[5] * m[7]) * id, inv[1] = (m[2] * m[7] - m[1] * m[8]) * id;
    inv[2] = (m[1] * m[5] - m[2] * m[4]) * id, inv[3] = (m[5] * m[6] - m[3] * m[8]) * id;
    inv[4] = (m[0] * m[8] - m[2] * m[6]) * id, inv[5] = (m[2] * m[3] - m[0] * m[5]) * id;
    inv[6] = (m[3] * m[7] - m[4] * m[6]) * id, inv[7] = (m[1] * m[6] - m[0] * m[7]) * id;
    inv[8] = (m[0] * m[4] - m[1] * m[3]) * id;
    for (int y = 0; y < dh; y++) {
        uint8_t *d = dst + (size_t)y * (size_t)dw * 3;
        for (int x = 0; x < dw; x++, d += 3) {
            double W = inv[6] * x + inv[7] * y + inv[8];
            W = W != 0 ? ITAB / W : 0;
            const double fX = fmax((double)INT_MIN, fmin((double)INT_MAX, (inv[0] * x + inv[1] * y + inv[2]) * W));
            const double fY = fmax((double)INT_MIN, fmin((double)INT_MAX, (inv[3] * x + inv[4] * y + inv[5]) * W));
            const int X = sat_int(fX), Y = sat_int(fY);
            sample(src, sw, sh, sat_short(X >> IBITS), sat_short(Y >> IBITS), X & (ITAB - 1), Y & (ITAB - 1), d);
        }
    }
}

int hy__aug_box_candidate(const hy__aug_box *b, const hy__aug_box *a) {
    const float eps = 1e-16f;
    const float w1 = b->x2 - b->x1, h1 = b->y2 - b->y1, w2 = a->x2 - a->x1, h2 = a->y2 - a->y1;
    const float ar = fmaxf(w2 / (h2 + eps), h2 / (w2 + eps));
    return w2 > 2 && h2 > 2 && w2 * h2 / (w1 * h1 + eps) > 0.1f && ar < 100;
}

int hy__aug_boxes_warp(hy__aug_box *b, int n, const float M[9], int perspective, float scale, int w,
                       int h) {
    int kept = 0;
    for (int k = 0; k < n; k++) {
        const hy__aug_box o = b[k];
        const float cx[4] = {o.x1, o.x2, o.x1, o.x2}, cy[4] = {o.y1, o.y2, o.y2, o.y1};
        float xmin = INFINITY, ymin = INFINITY, xmax = -INFINITY, ymax = -INFINITY;
        for (int c = 0; c < 4; c++) {
            float x = cx[c] * M[0] + cy[c] * M[1] + M[2];
            float y = cx[c] * M[3] + cy[c] * M[4] + M[5];
            if (perspective) {
                const float z = cx[c] * M[6] + cy[c] * M[7] + M[8];
                x /= z, y /= z;
            }
            xmin = fminf(xmin, x), xmax = fmaxf(xmax, x), ymin = fminf(ymin, y), ymax = fmaxf(ymax, y);
        }
        hy__aug_box a = {fminf(fmaxf(xmin, 0), (float)w), fminf(fmaxf(ymin, 0), (float)h),
                         fminf(fmaxf(xmax, 0), (float)w), fminf(fmaxf(ymax, 0), (float)h), o.cls};
        const hy__aug_box before = {o.x1 * scale, o.y1 * scale, o.x2 * scale, o.y2 * scale, o.cls};
        if (hy__aug_box_candidate(&before, &a)) b[kept++] = a;
    }
    return kept;
}

// --- RandomHSV ---------------------------------------------------------------------------------

enum { HSV_SHIFT = 12 };

/* OpenCV's tables: round((255 << 12) / v) and round((180 << 12) / (6 diff)), 0 at 0. */
static int sdiv_tab[256], hdiv_tab[256];
static pthread_once_t hsv_once = PTHREAD_ONCE_INIT;
static void hsv_tables(void) {
    for (int i = 1; i < 256; i++) {
        sdiv_tab[i] = (int)lrint((double)(255 << HSV_SHIFT) / i);
        hdiv_tab[i] = (int)lrint((double)(180 << HSV_SHIFT) / (6.0 * i));
    }
}

void hy__aug_rgb2hsv(const uint8_t rgb[3], uint8_t hsv[3]) {
    const int r = rgb[0], g = rgb[1], b = rgb[2];
    const int v = HY_MAX(HY_MAX(r, g), b), vmin = HY_MIN(HY_MIN(r, g), b), diff = v - vmin;
    pthread_once(&hsv_once, hsv_tables);
    const int sdiv = sdiv_tab[v], hdiv = hdiv_tab[diff];
    const int s = (diff * sdiv + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
    int h = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
    h = (h * hdiv + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT; // arithmetic shift, as OpenCV
    h += h < 0 ? 180 : 0;
    hsv[0] = (uint8_t)h, hsv[1] = (uint8_t)s, hsv[2] = (uint8_t)v;
}

static uint8_t sat_u8f(float v) { // saturate_cast<uchar>(float): round half to even, clamp
    if (!(v > 0)) return 0;
    if (v >= 255) return 255;
    return (uint8_t)(int)((v + 12582912.0f) - 12582912.0f); // 1.5 * 2^23: rounds to even
}

void hy__aug_hsv2rgb(const uint8_t hsv[3], uint8_t rgb[3]) {
    const float s = hsv[1] * (1.0f / 255.0f), v = hsv[2];
    float r, g, b;
    if (s == 0) {
        r = g = b = v;
    } else {
        static const int sector_data[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
        float h = hsv[0] * (6.0f / 180.0f);
        if (h >= 6.0f) h = fmodf(h, 6.0f); // (identity below 6; h >= 0)
        int sector = (int)h;
        h -= (float)sector;
        if ((unsigned)sector >= 6u) sector = 0, h = 0;
        const float tab[4] = {v, v * (1.f - s), v * (1.f - s * h), v * (1.f - s * (1.f - h))};
        b = tab[sector_data[sector][0]], g = tab[sector_data[sector][1]], r = tab[sector_data[sector][2]];
    }
    rgb[0] = sat_u8f(r), rgb[1] = sat_u8f(g), rgb[2] = sat_u8f(b);
}

void hy__aug_hsv_luts(const double r[3], uint8_t lut[3][256]) {
    for (int x = 0; x < 256; x++) {
        double h = fmod(x * r[0], 180.0); // numpy's % takes the divisor's sign
        if (h < 0) h += 180.0;
        lut[0][x] = (uint8_t)h;
        lut[1][x] = (uint8_t)fmin(fmax(x * r[1], 0.0), 255.0);
        lut[2][x] = (uint8_t)fmin(fmax(x * r[2], 0.0), 255.0);
    }
}

void hy__aug_hsv_apply(uint8_t *img, size_t n, const uint8_t lut[3][256]) {
    for (size_t i = 0; i < n; i++, img += 3) {
        uint8_t hsv[3];
        hy__aug_rgb2hsv(img, hsv);
        hsv[0] = lut[0][hsv[0]], hsv[1] = lut[1][hsv[1]], hsv[2] = lut[2][hsv[2]];
        hy__aug_hsv2rgb(hsv, img);
    }
}

// --- flips -------------------------------------------------------------------------------------

void hy__aug_flipud(uint8_t *img, int w, int h, hy__aug_box *b, int n) {
    const size_t row = (size_t)w * 3;
    for (int y = 0; y < h / 2; y++) {
        uint8_t *p = img + (size_t)y * row, *q = img + (size_t)(h - 1 - y) * row;
        for (size_t i = 0; i < row; i++) {
            const uint8_t t = p[i];
            p[i] = q[i];
            q[i] = t;
        }
    }
    for (int k = 0; k < n; k++) {
        const float y1 = b[k].y1;
        b[k].y1 = (float)h - b[k].y2;
        b[k].y2 = (float)h - y1;
    }
}
