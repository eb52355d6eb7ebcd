/* PR curve and confusion matrix PNGs (see plots.h): lines, boxes and FreeType text on an RGB
 * canvas, written with libspng. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <spng.h>

#include "image/image.h"
#include "val/plots.h"

static const uint8_t BLACK[3] = {0, 0, 0}, DARK[3] = {60, 60, 60}, GREY[3] = {128, 128, 128},
                     WHITE[3] = {255, 255, 255}, BLUE[3] = {0, 0, 255};

// --- PNG -----------------------------------------------------------------------------------------

static void *spng_alloc_malloc(size_t n) { return hy__malloc(n); }
static void *spng_alloc_realloc(void *p, size_t n) { return hy__realloc(p, n); }
static void *spng_alloc_calloc(size_t n, size_t s) { return hy__calloc(n, s); }
static void spng_alloc_free(void *p) { hy__free(p); }

hy_status hy__png_write(const char *path, const hy_image *img) {
    struct spng_alloc alloc = {spng_alloc_malloc, spng_alloc_realloc, spng_alloc_calloc,
                               spng_alloc_free};
    FILE *f = fopen(path, "wb");
    if (!f) return hy__error(HY_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    spng_ctx *ctx = spng_ctx_new2(&alloc, SPNG_CTX_ENCODER);
    if (!ctx) {
        fclose(f);
        remove(path);
        return hy__error(HY_ERR_NOMEM, "%s: out of memory for the PNG encoder", path);
    }
    struct spng_ihdr ihdr = {.width = (uint32_t)img->width,
                             .height = (uint32_t)img->height,
                             .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    int e = spng_set_png_file(ctx, f);
    if (!e) e = spng_set_ihdr(ctx, &ihdr);
    if (!e)
        e = spng_encode_image(ctx, img->data, (size_t)img->width * img->height * 3, SPNG_FMT_PNG,
                              SPNG_ENCODE_FINALIZE);
    spng_ctx_free(ctx);
    const int ferr = ferror(f);
    const int cerr = fclose(f);
    if (e || ferr || cerr) {
        remove(path);
        if (e) return hy__error(HY_ERR_IO, "%s: PNG encoding failed: %s", path, spng_strerror(e));
        return hy__error(HY_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return HY_OK;
}

// --- drawing -------------------------------------------------------------------------------------

hy_status hy__plot_canvas(int w, int h, hy_image **out) {
    hy_status st = hy__image_create(w, h, out);
    if (!st) memset((*out)->data, 255, (size_t)w * h * 3);
    return st;
}

void hy__plot_fill(hy_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    if (x0 > x1) {
        int t = x0;
        x0 = x1;
        x1 = t;
    }
    if (y0 > y1) {
        int t = y0;
        y0 = y1;
        y1 = t;
    }
    x0 = HY_MAX(x0, 0), y0 = HY_MAX(y0, 0);
    x1 = HY_MIN(x1, img->width - 1), y1 = HY_MIN(y1, img->height - 1);
    for (int y = y0; y <= y1; y++) {
        uint8_t *p = img->data + ((size_t)y * img->width + (size_t)x0) * 3;
        for (int x = x0; x <= x1; x++, p += 3) memcpy(p, rgb, 3);
    }
}

void hy__plot_line(hy_image *img, double x0, double y0, double x1, double y1, int t,
                   const uint8_t rgb[3]) {
    const double len = hypot(x1 - x0, y1 - y0);
    const int steps = (int)(len * 2) + 1;
    const int lo = (t - 1) / 2, hi = t / 2;
    for (int i = 0; i <= steps; i++) {
        const double u = (double)i / steps;
        const int x = (int)lround(x0 + (x1 - x0) * u), y = (int)lround(y0 + (y1 - y0) * u);
        hy__plot_fill(img, x - lo, y - lo, x + hi, y + hi, rgb);
    }
}

void hy__plot_rect(hy_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    hy__plot_fill(img, x0, y0, x1, y0, rgb);
    hy__plot_fill(img, x0, y1, x1, y1, rgb);
    hy__plot_fill(img, x0, y0, x0, y1, rgb);
    hy__plot_fill(img, x1, y0, x1, y1, rgb);
}

hy_status hy__plot_text(hy_image *img, int x, int y, int px, const uint8_t rgb[3], const char *s,
                        int ax, int ay) {
    int w, h;
    hy_status st = hy__draw_text(NULL, 0, 0, px, rgb, s, &w, &h);
    if (st) return st;
    return hy__draw_text(img, x - w * ax / 2, y - h * ay / 2, px, rgb, s, NULL, NULL);
}

/* Text turned 90 degrees counter-clockwise (reads bottom to top), centred on (cx, cy); dark
 * text on a light background (min blend). */
static hy_status text_up(hy_image *img, int cx, int cy, int px, const uint8_t rgb[3],
                         const char *s) {
    int w, h;
    hy_status st = hy__draw_text(NULL, 0, 0, px, rgb, s, &w, &h);
    if (st) return st;
    if (w <= 0 || h <= 0) return HY_OK;
    hy_image *t;
    if ((st = hy__plot_canvas(w, h, &t))) return st;
    st = hy__draw_text(t, 0, 0, px, rgb, s, NULL, NULL);
    // (x, y) of t goes to (cx - h/2 + y, cy + w/2 - x)
    for (int y = 0; y < h && !st; y++)
        for (int x = 0; x < w; x++) {
            const int tx = cx - h / 2 + y, ty = cy + w / 2 - x;
            if (tx < 0 || ty < 0 || tx >= img->width || ty >= img->height) continue;
            const uint8_t *a = t->data + ((size_t)y * w + x) * 3;
            uint8_t *b = img->data + ((size_t)ty * img->width + tx) * 3;
            for (int k = 0; k < 3; k++) b[k] = HY_MIN(a[k], b[k]);
        }
    hy_image_free(t);
    return st;
}

/* Text rotated 90 degrees (reads bottom to top) whose end is at (x, ytop): for x tick labels. */
static hy_status text_up_end(hy_image *img, int cx, int ytop, int px, const uint8_t rgb[3],
                             const char *s) {
    int w, h;
    hy_status st = hy__draw_text(NULL, 0, 0, px, rgb, s, &w, &h);
    if (st) return st;
    return text_up(img, cx, ytop + w / 2, px, rgb, s);
}

static void lighten(const uint8_t in[3], double f, uint8_t out[3]) {
    for (int k = 0; k < 3; k++) out[k] = (uint8_t)lround(in[k] + (255 - in[k]) * f);
}

// --- PR curve ------------------------------------------------------------------------------------

hy_status hy__val_plot_pr(const char *path, const hy__val_ap *ap, const char *const *names) {
    const int W = 1500, H = 1000, L = 110, T = 70, R = 1070, B = 900;
    hy_image *img;
    hy_status st = hy__plot_canvas(W, H, &img);
    if (st) return st;
    const size_t G = HY_VAL_NGRID;
    const int n = ap->n;
    const int per_class = n > 0 && n < 21; // Ultralytics: a legend entry per class below 21
#define PX(v) (L + (v) * (R - L))
#define PY(v) (B - (v) * (B - T))
    char buf[256];
    // curves
    if (ap->computed) {
        for (int i = 0; i < n; i++) {
            uint8_t col[3];
            if (per_class) {
                uint8_t base[3];
                hy__palette(i, base);
                lighten(base, 0.35, col);
            } else {
                memcpy(col, GREY, 3);
            }
            const double *py = ap->prec + (size_t)i * G;
            for (size_t g = 1; g < G; g++)
                hy__plot_line(img, PX(ap->px[g - 1]), PY(py[g - 1]), PX(ap->px[g]), PY(py[g]),
                     per_class ? 2 : 1, col);
        }
        for (size_t g = 1; g < G; g++) { // mean over classes
            double a = 0, b = 0;
            for (int i = 0; i < n; i++) {
                a += ap->prec[(size_t)i * G + g - 1];
                b += ap->prec[(size_t)i * G + g];
            }
            hy__plot_line(img, PX(ap->px[g - 1]), PY(a / n), PX(ap->px[g]), PY(b / n), 4, BLUE);
        }
    }
    // axes, ticks, labels
    hy__plot_rect(img, L, T, R, B, DARK);
    for (int k = 0; k <= 5 && !st; k++) {
        const double v = k / 5.0;
        snprintf(buf, sizeof buf, "%.1f", v);
        hy__plot_fill(img, (int)PX(v), B, (int)PX(v), B + 6, DARK);
        hy__plot_fill(img, L - 6, (int)PY(v), L, (int)PY(v), DARK);
        st = hy__plot_text(img, (int)PX(v), B + 10, 18, BLACK, buf, 1, 0);
        if (!st) st = hy__plot_text(img, L - 10, (int)PY(v), 18, BLACK, buf, 2, 1);
    }
    if (!st) st = hy__plot_text(img, (L + R) / 2, B + 45, 22, BLACK, "Recall", 1, 0);
    if (!st) st = text_up(img, 35, (T + B) / 2, 22, BLACK, "Precision");
    if (!st) st = hy__plot_text(img, (L + R) / 2, 25, 24, BLACK, "Precision-Recall Curve", 1, 0);
    // legend
    int ly = T + 10;
    const int lx = R + 30;
    for (int i = 0; per_class && ap->computed && i < n && !st; i++, ly += 26) {
        uint8_t base[3], col[3];
        hy__palette(i, base);
        lighten(base, 0.35, col);
        hy__plot_line(img, lx, ly + 10, lx + 30, ly + 10, 2, col);
        snprintf(buf, sizeof buf, "%.40s %.3f", names[ap->cls[i]], ap->ap[(size_t)i * HY_VAL_NIOU]);
        st = hy__plot_text(img, lx + 40, ly, 17, BLACK, buf, 0, 0);
    }
    if (!st) {
        hy__plot_line(img, lx, ly + 10, lx + 30, ly + 10, 4, BLUE);
        snprintf(buf, sizeof buf, "all classes %.3f mAP@0.5", ap->computed ? ap->map50 : 0.0);
        st = hy__plot_text(img, lx + 40, ly, 17, BLACK, buf, 0, 0);
    }
#undef PX
#undef PY
    if (!st) st = hy__png_write(path, img);
    hy_image_free(img);
    return st;
}

// --- confusion matrix ----------------------------------------------------------------------------

/* matplotlib's "Blues" (ColorBrewer, 9 steps), linearly interpolated; v in [0, 1]. */
static void blues(double v, uint8_t rgb[3]) {
    static const uint8_t c[9][3] = {{247, 251, 255}, {222, 235, 247}, {198, 219, 239},
                                    {158, 202, 225}, {107, 174, 214}, {66, 146, 198},
                                    {33, 113, 181},  {8, 81, 156},    {8, 48, 107}};
    if (!(v > 0)) v = 0;
    if (v > 1) v = 1;
    const double f = v * 8;
    const int i = HY_MIN((int)f, 7);
    const double u = f - i;
    for (int k = 0; k < 3; k++) rgb[k] = (uint8_t)lround(c[i][k] + (c[i + 1][k] - c[i][k]) * u);
}

hy_status hy__val_plot_confusion(const char *path, const hy__val_confusion *cm,
                                 const char *const *names, int normalize) {
    const int nc = cm->nc, nn = nc + 1;
    const int cell = HY_MAX(4, HY_MIN(48, 1000 / nn));
    const int labels = nc < 99; // Ultralytics: tick labels below 99 classes
    const int tick_px = HY_MAX(8, HY_MIN(16, cell * 3 / 4));
    const int annot = nc < 30;
    // margins sized to the longest tick label
    int maxw = 0;
    hy_status st = HY_OK;
    for (int i = 0; labels && i < nn && !st; i++) {
        int w;
        st = hy__draw_text(NULL, 0, 0, tick_px, BLACK, i < nc ? names[i] : "background", &w, NULL);
        maxw = HY_MAX(maxw, w);
    }
    if (st) return st;
    const int L = 70 + maxw + 10, T = 70, S = cell * nn, B = T + S + maxw + 70, W = L + S + 140,
              H = B;
    double *a = hy__malloc((size_t)nn * nn * sizeof *a); // displayed values, NAN = blank
    if (!a) return hy__error(HY_ERR_NOMEM, "out of memory");
    double vmax = 0;
    for (int col = 0; col < nn; col++) {
        double sum = 0;
        for (int row = 0; row < nn; row++) sum += cm->m[(size_t)row * nn + col];
        for (int row = 0; row < nn; row++) {
            double v = cm->m[(size_t)row * nn + col];
            if (normalize) v /= sum + 1e-9;
            a[(size_t)row * nn + col] = v < 0.005 ? NAN : v; // array[array < 0.005] = nan
            if (!(v < 0.005) && v > vmax) vmax = v;
        }
    }
    if (vmax <= 0) vmax = 1;
    hy_image *img;
    if ((st = hy__plot_canvas(W, H, &img))) {
        hy__free(a);
        return st;
    }
    char buf[64];
    for (int row = 0; row < nn && !st; row++)
        for (int col = 0; col < nn && !st; col++) {
            const double v = a[(size_t)row * nn + col];
            if (isnan(v)) continue;
            uint8_t rgb[3];
            blues(v / vmax, rgb);
            const int x0 = L + col * cell, y0 = T + row * cell;
            hy__plot_fill(img, x0, y0, x0 + cell - 1, y0 + cell - 1, rgb);
            if (annot) {
                snprintf(buf, sizeof buf, normalize ? "%.2f" : "%.0f", v);
                const int px = HY_MAX(8, HY_MIN(14, cell / 3));
                st = hy__plot_text(img, x0 + cell / 2, y0 + cell / 2, px,
                                   v / vmax > 0.5 ? WHITE : BLACK, buf, 1, 1);
            }
        }
    hy__plot_rect(img, L - 1, T - 1, L + S, T + S, DARK);
    for (int i = 0; labels && i < nn && !st; i++) {
        const char *nm = i < nc ? names[i] : "background";
        // predicted (rows)
        st = hy__plot_text(img, L - 6, T + i * cell + cell / 2, tick_px, BLACK, nm, 2, 1);
        if (!st)
            st = text_up_end(img, L + i * cell + cell / 2, T + S + 6, tick_px, BLACK,
                             nm); // true (columns)
    }
    if (!st) st = hy__plot_text(img, L + S / 2, B - 40, 22, BLACK, "True", 1, 0);
    if (!st) st = text_up(img, 25, T + S / 2, 22, BLACK, "Predicted");
    if (!st)
        st = hy__plot_text(img, L + S / 2, 22, 24, BLACK,
                  normalize ? "Confusion Matrix Normalized" : "Confusion Matrix", 1, 0);
    // colour bar
    const int cx = L + S + 30, cw = 24;
    for (int y = 0; y < S && !st; y++) {
        uint8_t rgb[3];
        blues(1.0 - (double)y / (S - 1 > 0 ? S - 1 : 1), rgb);
        hy__plot_fill(img, cx, T + y, cx + cw - 1, T + y, rgb);
    }
    hy__plot_rect(img, cx - 1, T - 1, cx + cw, T + S, DARK);
    for (int k = 0; k <= 4 && !st; k++) {
        const double v = vmax * k / 4.0;
        snprintf(buf, sizeof buf, normalize ? "%.2f" : "%.0f", v);
        const int y = T + S - 1 - (int)lround((double)(S - 1) * k / 4.0);
        hy__plot_fill(img, cx + cw, y, cx + cw + 5, y, DARK);
        st = hy__plot_text(img, cx + cw + 8, y, 15, BLACK, buf, 0, 1);
    }
    if (!st) st = hy__png_write(path, img);
    hy_image_free(img);
    hy__free(a);
    return st;
}
