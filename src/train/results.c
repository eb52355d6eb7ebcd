/* results.csv and results.png of a training run (see results.h): the CSV in Ultralytics'
 * save_metrics format, the plots in plot_results' layout, drawn with the validation plots'
 * primitives (val/plots.h) and written through a temporary file + rename. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "train/results.h"
#include "val/plots.h"

// --- temporary sibling + rename ------------------------------------------------------------------

/* Creates "DIR/.BASE.XXXXXX" next to path (mode 0644); *tmp is hy__malloc'd. */
static hy_status tmp_create(const char *path, char **tmp, int *fd) {
    const char *slash = strrchr(path, '/');
    const size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dl;
    const size_t n = strlen(path) + 10;
    char *t = hy__malloc(n);
    if (!t) return hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    snprintf(t, n, "%.*s.%s.XXXXXX", (int)dl, path, base);
    const int f = mkstemp(t);
    if (f < 0) {
        const int e = errno;
        hy__free(t);
        return hy__error(HY_ERR_IO, "%s: cannot create a file in its folder: %s", path,
                         strerror(e));
    }
    (void)fchmod(f, 0644);
    *tmp = t;
    *fd = f;
    return HY_OK;
}

/* Renames tmp over path; on failure removes tmp. Frees tmp either way. */
static hy_status tmp_commit(const char *path, char *tmp) {
    hy_status st = HY_OK;
    if (rename(tmp, path) != 0) {
        st = hy__error(HY_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
        remove(tmp);
    }
    hy__free(tmp);
    return st;
}

// --- results.csv ---------------------------------------------------------------------------------

static const char *const KEYS[14] = {
    "epoch",          "train/box_loss",      "train/cls_loss",       "train/dfl_loss",
    "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
    "val/box_loss",   "val/cls_loss",        "val/dfl_loss",         "lr/pg0",
    "lr/pg1",         "lr/pg2"};

/* Python's round(v, 5): the decimal nearest to v's exact value (ties to even, as glibc's
 * printf) read back as the nearest double. */
static double round5(double v) {
    if (!isfinite(v)) return v;
    char b[400]; // %.5f of DBL_MAX is 316 characters
    snprintf(b, sizeof b, "%.5f", v);
    return strtod(b, NULL);
}

/* The 14 values of a row in KEYS order. */
static void row_values(const hy_train_epoch *r, double v[14]) {
    const int m = r->validated != 0, l = r->has_val_loss != 0;
    v[0] = (double)(r->epoch - 1);
    v[1] = round5(r->box_loss), v[2] = round5(r->cls_loss), v[3] = round5(r->dfl_loss);
    v[4] = m ? round5(r->precision) : 0, v[5] = m ? round5(r->recall) : 0;
    v[6] = m ? round5(r->map50) : 0, v[7] = m ? round5(r->map50_95) : 0;
    v[8] = l ? round5(r->val_box_loss) : 0, v[9] = l ? round5(r->val_cls_loss) : 0;
    v[10] = l ? round5(r->val_dfl_loss) : 0;
    v[11] = r->lr[0], v[12] = r->lr[1], v[13] = r->lr[2];
}

hy_status hy__train_results_csv(const char *path, const hy_train_epoch *rows, int n) {
    if (!path || n < 0 || (n > 0 && !rows))
        return hy__error(HY_ERR_INVALID_ARG, "results.csv: no path or rows");
    char *tmp;
    int fd;
    hy_status st = tmp_create(path, &tmp, &fd);
    if (st) return st;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        st = hy__error(HY_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        remove(tmp);
        hy__free(tmp);
        return st;
    }
    for (int k = 0; k < 14; k++) fprintf(f, k ? ",%23s" : "%23s", KEYS[k]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        double v[14];
        row_values(&rows[i], v);
        for (int k = 0; k < 14; k++) {
            if (k) fputc(',', f);
            if (isnan(v[k])) fprintf(f, "%23s", "nan"); // glibc would print "-nan" for some
            else fprintf(f, "%23.5g", v[k]);
        }
        fputc('\n', f);
    }
    const int werr = ferror(f);
    const int cerr = fclose(f);
    if (werr || cerr) {
        st = hy__error(HY_ERR_IO, "%s: write failed: %s", path, strerror(werr ? EIO : errno));
        remove(tmp);
        hy__free(tmp);
        return st;
    }
    return tmp_commit(path, tmp);
}

// --- smoothing -----------------------------------------------------------------------------------

void hy__train_smooth(const double *y, int n, double sigma, double *out) {
    const int r = HY_MIN((int)(4.0 * sigma + 0.5), 64);
    double w[2 * 64 + 1]; // (2r + 1) kernel; sigma <= 15.9 (callers use 3)
    double sum = 0;
    for (int k = -r; k <= r; k++) sum += w[k + r] = exp(-0.5 / (sigma * sigma) * k * k);
    for (int k = 0; k <= 2 * r; k++) w[k] /= sum;
    const long p = 2L * n; // mode 'reflect' (d c b a | a b c d | d c b a): period 2n
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = -r; k <= r; k++) {
            long j = ((long)i + k) % p;
            if (j < 0) j += p;
            if (j >= n) j = p - 1 - j;
            s += w[k + r] * y[j];
        }
        out[i] = s;
    }
}

// --- one panel: axes, ticks, curves --------------------------------------------------------------

static const uint8_t BLACK[3] = {0, 0, 0}, GREY[3] = {128, 128, 128}, EDGE[3] = {204, 204, 204};
/* matplotlib's default colour cycle (tab10) */
static const uint8_t CYCLE[6][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                    {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};

enum { LINE_PX = 5, DOT_R = 5, TICK_LEN = 10, TICK_PX = 26, TITLE_PX = 33 };

typedef struct series {
    const double *x, *y; // (n) the points; non-finite ones are skipped
    int n;
    const uint8_t *rgb;
    int dotted;          // 0: solid line + dot markers; 1: dotted line (matplotlib ':')
    const char *label;   // legend entry (NULL: none)
} series;

typedef struct axis {
    double lo, hi;     // view limits
    double t0, step;   // first tick, spacing
    int nt;            // ticks
    int dec;           // decimals of the tick labels (-1: %.3g)
} axis;

typedef struct panel {
    const char *title;
    const series *s;
    int ns;
    int ok;            // 0: nothing finite to draw
    axis ax, ay;
} panel;

/* matplotlib-like autoscale: data limits with 5% margins (a flat range widened by 5%), ticks at
 * 1, 2, 2.5 or 5 x 10^k (integer: whole steps without 2.5), at most maxn intervals. 0 when the
 * range cannot be drawn. */
static int axis_plan(axis *a, double dmin, double dmax, int maxn, int integer) {
    if (!(dmax > dmin)) {
        const double e = dmin == 0 ? 0.05 : 0.05 * fabs(dmin);
        dmin -= e, dmax += e;
    }
    const double m = 0.05 * (dmax - dmin);
    a->lo = dmin - m, a->hi = dmax + m;
    const double span = a->hi - a->lo;
    if (!isfinite(span) || !(span > 0) || span < 1e-300) return 0;
    const double raw = span / maxn, k = floor(log10(raw)), mag = pow(10, k);
    static const double steps[5] = {1, 2, 2.5, 5, 10};
    double step = HY_MAX(10 * mag, integer ? 1.0 : 0.0);
    for (int i = 0; i < 5; i++)
        if (steps[i] * mag >= raw * (1 - 1e-9) && !(integer && (i == 2 || steps[i] * mag < 1))) {
            step = steps[i] * mag;
            break;
        }
    a->step = step;
    a->t0 = ceil(a->lo / step - 1e-9) * step;
    a->nt = HY_MIN((int)floor((a->hi - a->t0) / step + 1e-9) + 1, 20);
    const double ks = floor(log10(step) + 1e-9);
    a->dec = HY_MAX(0, (int)-ks) + (fabs(step / pow(10, ks) - 2.5) < 1e-6 ? 1 : 0);
    if (fabs(a->lo) >= 1e6 || fabs(a->hi) >= 1e6 || step < 1e-5) a->dec = -1;
    return 1;
}

static void tick_label(const axis *a, int i, char *buf, size_t n) {
    double v = a->t0 + i * a->step;
    if (fabs(v) < a->step * 1e-6) v = 0;
    if (a->dec < 0) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.*f", a->dec, v);
}

static void panel_plan(panel *p, int maxnx, int maxny) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int whole = 1; // x all integers (epochs): integer x ticks
    for (int k = 0; k < p->ns; k++)
        for (int i = 0; i < p->s[k].n; i++) {
            const double x = p->s[k].x[i], y = p->s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            whole &= x == floor(x);
            x0 = HY_MIN(x0, x), x1 = HY_MAX(x1, x);
            y0 = HY_MIN(y0, y), y1 = HY_MAX(y1, y);
        }
    p->ok = x0 <= x1 && axis_plan(&p->ax, x0, x1, maxnx, whole) &&
            axis_plan(&p->ay, y0, y1, maxny, 0);
}

/* Widest y tick label of a planned panel, in pixels. */
static hy_status panel_label_width(const panel *p, int *w) {
    char buf[64];
    *w = 0;
    for (int i = 0; p->ok && i < p->ay.nt; i++) {
        int tw;
        tick_label(&p->ay, i, buf, sizeof buf);
        hy_status st = hy__draw_text(NULL, 0, 0, TICK_PX, BLACK, buf, &tw, NULL);
        if (st) return st;
        *w = HY_MAX(*w, tw);
    }
    return HY_OK;
}

static void disc(hy_image *img, double cx, double cy, int r, const uint8_t rgb[3]) {
    const int x = (int)lround(cx), y = (int)lround(cy);
    for (int dy = -r; dy <= r; dy++) {
        const int dx = (int)floor(sqrt((double)(r * r - dy * dy)) + 0.5);
        hy__plot_fill(img, x - dx, y + dy, x + dx, y + dy, rgb);
    }
}

/* Dotted polyline: squares of side t stamped every half pixel while the arc length mod
 * (on + off) is below on; the phase carries over the vertices. */
static void dotted(hy_image *img, const double *px, const double *py, int n, int t, double on,
                   double off, const uint8_t rgb[3]) {
    const int lo = (t - 1) / 2, hi = t / 2;
    double s = 0;
    for (int i = 1; i < n; i++) {
        const double len = hypot(px[i] - px[i - 1], py[i] - py[i - 1]);
        const int steps = (int)(len * 2) + 1;
        for (int j = 0; j < steps; j++) {
            const double u = (double)j / steps;
            if (fmod(s + len * u, on + off) < on) {
                const int x = (int)lround(px[i - 1] + (px[i] - px[i - 1]) * u);
                const int y = (int)lround(py[i - 1] + (py[i] - py[i - 1]) * u);
                hy__plot_fill(img, x - lo, y - lo, x + hi, y + hi, rgb);
            }
        }
        s += len;
    }
}

typedef struct box {
    int l, t, r, b; // axes rectangle, inclusive
} box;

static double map(const axis *a, double v, int p0, int p1) {
    double u = (v - a->lo) / (a->hi - a->lo);
    if (!(u >= 0)) u = 0; // also NaN
    if (u > 1) u = 1;
    return p0 + u * (p1 - p0);
}

/* Draws one series' finite points into the axes. px / py: scratch of n doubles each. */
static void series_draw(hy_image *img, const panel *p, const series *s, box b, double *px,
                        double *py) {
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
        px[m] = map(&p->ax, s->x[i], b.l, b.r);
        py[m] = map(&p->ay, s->y[i], b.b, b.t);
        m++;
    }
    if (s->dotted) {
        dotted(img, px, py, m, LINE_PX, 6, 9, s->rgb);
        return;
    }
    for (int i = 1; i < m; i++)
        hy__plot_line(img, px[i - 1], py[i - 1], px[i], py[i], LINE_PX, s->rgb);
    for (int i = 0; i < m; i++) disc(img, px[i], py[i], DOT_R, s->rgb);
}

/* Legend box at a corner of the axes (bottom = 0: upper right, 1: lower right). */
static hy_status legend_draw(hy_image *img, const panel *p, box b, int bottom) {
    int wmax = 0, h = 0, n = 0;
    for (int k = 0; k < p->ns; k++) {
        if (!p->s[k].label) continue;
        int w;
        hy_status st = hy__draw_text(NULL, 0, 0, TICK_PX, BLACK, p->s[k].label, &w, &h);
        if (st) return st;
        wmax = HY_MAX(wmax, w), n++;
    }
    if (!n) return HY_OK;
    const int row = h + 8, bw = 20 + 60 + 14 + wmax + 20, bh = n * row + 16;
    const int x0 = b.r - 14 - bw, y0 = bottom ? b.b - 14 - bh : b.t + 14;
    const uint8_t white[3] = {255, 255, 255};
    hy__plot_fill(img, x0, y0, x0 + bw, y0 + bh, white);
    hy__plot_rect(img, x0, y0, x0 + bw, y0 + bh, EDGE);
    int y = y0 + 8;
    for (int k = 0; k < p->ns; k++) {
        const series *s = &p->s[k];
        if (!s->label) continue;
        const double ly = y + row / 2.0 - 4, lx[2] = {x0 + 20, x0 + 80}, lyy[2] = {ly, ly};
        if (s->dotted) {
            dotted(img, lx, lyy, 2, LINE_PX, 6, 9, s->rgb);
        } else {
            hy__plot_line(img, lx[0], ly, lx[1], ly, LINE_PX, s->rgb);
            disc(img, (lx[0] + lx[1]) / 2, ly, DOT_R, s->rgb);
        }
        hy_status st = hy__plot_text(img, x0 + 94, y, TICK_PX, BLACK, s->label, 0, 0);
        if (st) return st;
        y += row;
    }
    return HY_OK;
}

/* Curves, frame, ticks, tick labels, title; "not computed" when the panel has no data. */
static hy_status panel_draw(hy_image *img, const panel *p, box b, double *px, double *py) {
    hy_status st = HY_OK;
    char buf[64];
    if (p->ok) {
        for (int k = 0; k < p->ns; k++) series_draw(img, p, &p->s[k], b, px, py);
        for (int i = 0; i < p->ax.nt && !st; i++) {
            const int x = (int)lround(map(&p->ax, p->ax.t0 + i * p->ax.step, b.l, b.r));
            hy__plot_fill(img, x - 1, b.b, x, b.b + TICK_LEN, BLACK);
            tick_label(&p->ax, i, buf, sizeof buf);
            st = hy__plot_text(img, x, b.b + TICK_LEN + 4, TICK_PX, BLACK, buf, 1, 0);
        }
        for (int i = 0; i < p->ay.nt && !st; i++) {
            const int y = (int)lround(map(&p->ay, p->ay.t0 + i * p->ay.step, b.b, b.t));
            hy__plot_fill(img, b.l - TICK_LEN, y - 1, b.l, y, BLACK);
            tick_label(&p->ay, i, buf, sizeof buf);
            st = hy__plot_text(img, b.l - TICK_LEN - 6, y, TICK_PX, BLACK, buf, 2, 1);
        }
    } else {
        st = hy__plot_text(img, (b.l + b.r) / 2, (b.t + b.b) / 2, TICK_PX, GREY, "not computed",
                           1, 1);
    }
    hy__plot_rect(img, b.l, b.t, b.r, b.b, BLACK);
    hy__plot_rect(img, b.l + 1, b.t + 1, b.r - 1, b.b - 1, BLACK);
    if (!st) st = hy__plot_text(img, (b.l + b.r) / 2, b.t - 12, TITLE_PX, BLACK, p->title, 1, 2);
    return st;
}

/* Encodes img to path through a temporary sibling. */
static hy_status png_commit(const char *path, const hy_image *img) {
    char *tmp;
    int fd;
    hy_status st = tmp_create(path, &tmp, &fd);
    if (st) return st;
    close(fd);
    st = hy__png_write(tmp, img); // removes tmp on failure
    if (st) {
        hy__free(tmp);
        return hy__error_prefix(st, "%s", path);
    }
    return tmp_commit(path, tmp);
}

// --- results.png ---------------------------------------------------------------------------------

/* Whether row r has a value for CSV column c (metrics: validated; val losses: computed). */
static int has_value(const hy_train_epoch *r, int c) {
    if (c >= 4 && c <= 7) return r->validated != 0;
    if (c >= 8 && c <= 10) return r->has_val_loss != 0;
    return 1;
}

hy_status hy__train_results_png(const char *path, const hy_train_epoch *rows, int n) {
    if (!path || n < 0 || (n > 0 && !rows))
        return hy__error(HY_ERR_INVALID_ARG, "results.png: no path or rows");
    const int W = 2400, H = 1200, CW = W / 5, CH = H / 2;
    // plot_results' panels: CSV columns 1, 2, 3, 4, 5, 8, 9, 10, 6, 7
    static const int COL[10] = {1, 2, 3, 4, 5, 8, 9, 10, 6, 7};
    const size_t nn = (size_t)(n > 0 ? n : 1);
    // per panel x, y, smoothed y (10 x nn each); scratch px, py (nn each)
    double *buf = hy__malloc(sizeof(double) * nn * 32);
    if (!buf) return hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    double *xs = buf, *ys = xs + 10 * nn, *sm = ys + 10 * nn, *px = sm + 10 * nn, *py = px + nn;
    panel pn[10];
    series sr[10][2];
    int ml = 0;
    hy_status st = HY_OK;
    for (int q = 0; q < 10 && !st; q++) {
        const int c = COL[q];
        double *x = xs + q * nn, *y = ys + q * nn, *s = sm + q * nn;
        int m = 0;
        for (int i = 0; i < n; i++) {
            double v[14];
            row_values(&rows[i], v);
            if (!has_value(&rows[i], c) || !isfinite(v[c])) continue;
            x[m] = v[0], y[m] = v[c], m++;
        }
        if (m > 0) hy__train_smooth(y, m, 3.0, s);
        sr[q][0] = (series){x, y, m, CYCLE[0], 0, "results"};
        sr[q][1] = (series){x, s, m, CYCLE[1], 1, "smooth"};
        pn[q] = (panel){.title = KEYS[c], .s = sr[q], .ns = 2};
        panel_plan(&pn[q], 5, 6);
        int w;
        st = panel_label_width(&pn[q], &w);
        ml = HY_MAX(ml, w);
    }
    hy_image *img = NULL;
    if (!st) st = hy__plot_canvas(W, H, &img);
    for (int q = 0; q < 10 && !st; q++) {
        const int cx = (q % 5) * CW, cy = (q / 5) * CH;
        const box b = {cx + ml + TICK_LEN + 16, cy + 62, cx + CW - 18, cy + CH - 56};
        st = panel_draw(img, &pn[q], b, px, py);
        if (!st && q == 1 && pn[q].ok) st = legend_draw(img, &pn[q], b, 0);
    }
    if (!st) st = png_commit(path, img);
    hy_image_free(img);
    hy__free(buf);
    return st;
}

// --- comparison of runs --------------------------------------------------------------------------

hy_status hy__train_plot_compare(const char *path, const char *title, const char *xlabel,
                                 const hy__train_curve *curves, int n_curves) {
    if (!path || n_curves < 1 || n_curves > 6 || !curves)
        return hy__error(HY_ERR_INVALID_ARG, "%s: 1 to 6 curves", path ? path : "plot");
    const int W = 1600, H = 1000;
    series sr[6];
    int nmax = 1;
    for (int k = 0; k < n_curves; k++) {
        if (curves[k].n < 0 || (curves[k].n > 0 && (!curves[k].x || !curves[k].y)))
            return hy__error(HY_ERR_INVALID_ARG, "%s: curve %d has no points", path, k);
        sr[k] = (series){curves[k].x, curves[k].y, curves[k].n, CYCLE[k], 0, curves[k].label};
        nmax = HY_MAX(nmax, curves[k].n);
    }
    panel p = {.title = title ? title : "", .s = sr, .ns = n_curves};
    panel_plan(&p, 10, 10);
    int ml;
    hy_status st = panel_label_width(&p, &ml);
    if (st) return st;
    double *buf = hy__malloc(sizeof(double) * (size_t)nmax * 2);
    if (!buf) return hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    hy_image *img = NULL;
    const box b = {ml + TICK_LEN + 30, 80, W - 40, H - 110};
    st = hy__plot_canvas(W, H, &img);
    if (!st) st = panel_draw(img, &p, b, buf, buf + nmax);
    if (!st && p.ok) st = legend_draw(img, &p, b, 1);
    if (!st && xlabel)
        st = hy__plot_text(img, (b.l + b.r) / 2, H - 50, TITLE_PX, BLACK, xlabel, 1, 0);
    if (!st) st = png_commit(path, img);
    hy_image_free(img);
    hy__free(buf);
    return st;
}
