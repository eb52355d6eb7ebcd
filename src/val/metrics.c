/* Ultralytics 8.0.172 detection metrics (see metrics.h), with numpy's arithmetic reproduced:
 * np.interp (binary search for the last xp <= x, slope form), np.linspace (i * step, last =
 * stop), np.add.reduce's pairwise summation (np.trapz, np.mean). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "val/metrics.h"

// --- numpy helpers -------------------------------------------------------------------------------

/* numpy's pairwise_sum over a[0], a[stride], ... (n terms), as add.reduce uses for float64. */
static double pairwise_sum(const double *a, size_t n, size_t stride) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i * stride];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++) r[k] = a[(size_t)k * stride];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[(i + (size_t)k) * stride];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i * stride];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2, stride) + pairwise_sum(a + n2 * stride, n - n2, stride);
}

/* np.add.reduce / np.mean of n float64 values (identity 0 then the pairwise sum). */
static double np_sum(const double *a, size_t n, size_t stride) {
    return 0. + pairwise_sum(a, n, stride);
}

/* np.linspace(0, 1, num)[i]. */
static double linspace01(size_t i, size_t num) {
    if (i == num - 1) return 1.0;
    const double step = 1.0 / (double)(num - 1);
    return (double)i * step + 0.0;
}

/* numpy binary_search_with_guess: the last j with xp[j] <= x (-1 below, len above). */
static long search_last_le(double x, const double *xp, size_t len) {
    if (x > xp[len - 1]) return (long)len;
    if (x < xp[0]) return -1;
    size_t lo = 0, hi = len;
    while (lo < hi) {
        size_t mid = lo + ((hi - lo) >> 1);
        if (x >= xp[mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

void hy__val_interp(const double *x, size_t nx, const double *xp, const double *fp, size_t nxp,
                    double left, double right, double *out) {
    HY_ASSERT(nxp >= 1);
    if (nxp == 1) {
        for (size_t i = 0; i < nx; i++) out[i] = x[i] < xp[0] ? left : x[i] > xp[0] ? right : fp[0];
        return;
    }
    for (size_t i = 0; i < nx; i++) {
        const double xv = x[i];
        if (isnan(xv)) {
            out[i] = xv;
            continue;
        }
        const long j = search_last_le(xv, xp, nxp);
        if (j == -1)
            out[i] = left;
        else if (j == (long)nxp)
            out[i] = right;
        else if (j == (long)nxp - 1)
            out[i] = fp[j];
        else if (xp[j] == xv)
            out[i] = fp[j];
        else {
            const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
            double r = slope * (xv - xp[j]) + fp[j];
            if (isnan(r)) {
                r = slope * (xv - xp[j + 1]) + fp[j + 1];
                if (isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
            }
            out[i] = r;
        }
    }
}

// --- IoU and matching ----------------------------------------------------------------------------

void hy__val_iouv(float iouv[HY_VAL_NIOU]) {
    // ATen linspace_kernel: step = (end - start) / (steps - 1); the first half counts up from
    // start, the second half down from end.
    const float start = 0.5f, end = 0.95f;
    const float step = (end - start) / (float)(HY_VAL_NIOU - 1);
    for (int i = 0; i < HY_VAL_NIOU; i++)
        iouv[i] = i < HY_VAL_NIOU / 2 ? start + step * (float)i
                                      : end - step * (float)(HY_VAL_NIOU - i - 1);
}

float hy__val_box_iou(const float *a, const float *b) {
    // (min(a2, b2) - max(a1, b1)).clamp(0).prod(2) / (area_a + area_b - inter + eps), float32
    float iw = HY_MIN(a[2], b[2]) - HY_MAX(a[0], b[0]);
    float ih = HY_MIN(a[3], b[3]) - HY_MAX(a[1], b[1]);
    if (!(iw > 0.f)) iw = 0.f;
    if (!(ih > 0.f)) ih = 0.f;
    const float inter = iw * ih;
    const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    const float denom = ((area_a + area_b) - inter) + 1e-7f;
    return inter / denom;
}

hy_status hy__val_match(const float *det, const int *det_cls, size_t n, const float *gt,
                        const int *gt_cls, size_t m, uint8_t *tp) {
    memset(tp, 0, n * HY_VAL_NIOU);
    if (n == 0 || m == 0) return HY_OK;
    float *iou = hy__malloc(n * m * sizeof *iou); // (m, n), 0 where the classes differ
    int *best = hy__malloc(n * sizeof *best);     // (n) GT chosen by each prediction
    uint8_t *taken = hy__malloc(m);               // (m)
    if (!iou || !best || !taken) {
        hy__free(iou);
        hy__free(best);
        hy__free(taken);
        return hy__error(HY_ERR_NOMEM, "out of memory matching %zu predictions to %zu labels", n,
                         m);
    }
    for (size_t g = 0; g < m; g++)
        for (size_t d = 0; d < n; d++)
            iou[g * n + d] =
                gt_cls[g] == det_cls[d] ? hy__val_box_iou(gt + 4 * g, det + 4 * d) : 0.f;
    float iouv[HY_VAL_NIOU];
    hy__val_iouv(iouv);
    for (int t = 0; t < HY_VAL_NIOU; t++) {
        const double thr = iouv[t];
        // Pairs (g, d) with iou >= thr, sorted by IoU descending (argsort()[::-1]: among equal
        // IoUs the later (g, d) in row-major order first); the first pair of each prediction is
        // its highest-IoU GT, ties going to the larger g.
        for (size_t d = 0; d < n; d++) {
            int bg = -1;
            float bv = 0.f;
            for (size_t g = 0; g < m; g++) {
                const float v = iou[g * n + d];
                if ((double)v >= thr && (bg < 0 || v >= bv)) {
                    bg = (int)g;
                    bv = v;
                }
            }
            best[d] = bg;
        }
        // np.unique on the GT column of the prediction-ordered pairs keeps, per GT, the pair
        // of the lowest prediction index.
        memset(taken, 0, m);
        for (size_t d = 0; d < n; d++) {
            if (best[d] < 0 || taken[best[d]]) continue;
            taken[best[d]] = 1;
            tp[d * HY_VAL_NIOU + (size_t)t] = 1;
        }
    }
    hy__free(iou);
    hy__free(best);
    hy__free(taken);
    return HY_OK;
}

// --- accumulation --------------------------------------------------------------------------------

hy_status hy__val_stats_init(hy__val_stats *s, int nc) {
    memset(s, 0, sizeof *s);
    s->nc = nc;
    s->nt = hy__calloc((size_t)nc, sizeof *s->nt);
    s->nimg = hy__calloc((size_t)nc, sizeof *s->nimg);
    if (!s->nt || !s->nimg) {
        hy__val_stats_deinit(s);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    return HY_OK;
}

void hy__val_stats_deinit(hy__val_stats *s) {
    hy__free(s->tp);
    hy__free(s->conf);
    hy__free(s->cls);
    hy__free(s->nt);
    hy__free(s->nimg);
    memset(s, 0, sizeof *s);
}

hy_status hy__val_stats_add(hy__val_stats *s, const uint8_t *tp, const float *conf, const int *cls,
                            size_t n, const int *gt_cls, size_t m) {
    for (size_t i = 0; i < n; i++)
        if (cls[i] < 0 || cls[i] >= s->nc)
            return hy__error(HY_ERR_INVALID_ARG, "prediction class %d out of range", cls[i]);
    for (size_t i = 0; i < m; i++)
        if (gt_cls[i] < 0 || gt_cls[i] >= s->nc)
            return hy__error(HY_ERR_INVALID_ARG, "label class %d out of range", gt_cls[i]);
    if (s->n + n > s->cap) {
        size_t cap = HY_MAX(s->cap * 2, s->n + n);
        cap = HY_MAX(cap, (size_t)4096);
        uint8_t *t = hy__realloc(s->tp, cap * HY_VAL_NIOU);
        if (t) s->tp = t;
        float *c = hy__realloc(s->conf, cap * sizeof *c);
        if (c) s->conf = c;
        int *k = hy__realloc(s->cls, cap * sizeof *k);
        if (k) s->cls = k;
        if (!t || !c || !k)
            return hy__error(HY_ERR_NOMEM, "out of memory for %zu predictions", cap);
        s->cap = cap;
    }
    if (n) {
        memcpy(s->tp + s->n * HY_VAL_NIOU, tp, n * HY_VAL_NIOU);
        memcpy(s->conf + s->n, conf, n * sizeof *conf);
        memcpy(s->cls + s->n, cls, n * sizeof *cls);
        s->n += n;
    }
    for (size_t i = 0; i < m; i++) {
        s->nt[gt_cls[i]]++;
        int first = 1;
        for (size_t j = 0; j < i && first; j++) first = gt_cls[j] != gt_cls[i];
        if (first) s->nimg[gt_cls[i]]++;
    }
    s->seen++;
    return HY_OK;
}

// --- numpy's argsort ------------------------------------------------------------------------------

/* numpy's default argsort (kind="quicksort": the introsort of npysort/quicksort.cpp, without
 * the AVX-512 dispatch numpy 1.25+ adds); see metrics.h. Median-of-3
 * partitions while more than 16 elements remain, then insertion sort; a heap sort past
 * 2 log2(n) levels. */
#define NP_SMALL 15
#define NP_STACK 128
static void np_heapsort(const double *v, size_t *a, size_t n) {
    size_t *h = a - 1; /* 1-based */
    size_t i, j, l, t;
    for (l = n >> 1; l > 0; --l) {
        t = h[l];
        for (i = l, j = l << 1; j <= n;) {
            if (j < n && v[h[j]] < v[h[j + 1]]) j++;
            if (v[t] < v[h[j]]) h[i] = h[j], i = j, j += j;
            else break;
        }
        h[i] = t;
    }
    for (; n > 1;) {
        t = h[n];
        h[n] = h[1];
        n--;
        for (i = 1, j = 2; j <= n;) {
            if (j < n && v[h[j]] < v[h[j + 1]]) j++;
            if (v[t] < v[h[j]]) h[i] = h[j], i = j, j += j;
            else break;
        }
        h[i] = t;
    }
}

void hy__val_np_argsort(const double *v, size_t *idx, size_t num) {
    for (size_t i = 0; i < num; i++) idx[i] = i;
    if (num < 2) return;
    size_t *pl = idx, *pr = idx + num - 1, *stack[NP_STACK], **sptr = stack, *pm, *pi, *pj, *pk, vi, t;
    int depth[NP_STACK / 2], *psd = depth, cdepth = 0;
    for (size_t x = num; x > 1; x >>= 1) cdepth++;
    cdepth *= 2;
#define NP_SWAP(a, b) (t = (a), (a) = (b), (b) = t)
    for (;;) {
        if (cdepth < 0) {
            np_heapsort(v, pl, (size_t)(pr - pl) + 1);
            goto pop;
        }
        while (pr - pl > NP_SMALL) {
            pm = pl + ((pr - pl) >> 1);
            if (v[*pm] < v[*pl]) NP_SWAP(*pm, *pl);
            if (v[*pr] < v[*pm]) NP_SWAP(*pr, *pm);
            if (v[*pm] < v[*pl]) NP_SWAP(*pm, *pl);
            const double vp = v[*pm];
            pi = pl;
            pj = pr - 1;
            NP_SWAP(*pm, *pj);
            for (;;) {
                do ++pi; while (v[*pi] < vp);
                do --pj; while (vp < v[*pj]);
                if (pi >= pj) break;
                NP_SWAP(*pi, *pj);
            }
            pk = pr - 1;
            NP_SWAP(*pi, *pk);
            if (pi - pl < pr - pi) { /* the larger side waits on the stack */
                *sptr++ = pi + 1;
                *sptr++ = pr;
                pr = pi - 1;
            } else {
                *sptr++ = pl;
                *sptr++ = pi - 1;
                pl = pi + 1;
            }
            *psd++ = --cdepth;
        }
        for (pi = pl + 1; pi <= pr; ++pi) { /* insertion sort */
            vi = *pi;
            const double vv = v[vi];
            for (pj = pi, pk = pi - 1; pj > pl && vv < v[*pk];) *pj-- = *pk--;
            *pj = vi;
        }
    pop:
        if (sptr == stack) break;
        pr = *(--sptr);
        pl = *(--sptr);
        cdepth = *(--psd);
    }
#undef NP_SWAP
}

// --- ap_per_class --------------------------------------------------------------------------------

typedef struct conf_key {
    float conf;
    uint32_t idx;
} conf_key;


/* compute_ap, also giving the envelope curve (mrec, mpre of n + 2 points) when asked. */
static double compute_ap_env(const double *recall, const double *precision, size_t n, double *mrec,
                             double *mpre) {
    mrec[0] = 0.0;
    mpre[0] = 1.0;
    for (size_t i = 0; i < n; i++) {
        mrec[i + 1] = recall[i];
        mpre[i + 1] = precision[i];
    }
    mrec[n + 1] = 1.0;
    mpre[n + 1] = 0.0;
    for (size_t i = n + 1; i-- > 0;) // flip(maximum.accumulate(flip(mpre)))
        if (mpre[i + 1] > mpre[i] || isnan(mpre[i + 1])) mpre[i] = mpre[i + 1];
    double x[101], y[101], t[100];
    for (size_t i = 0; i < 101; i++) x[i] = linspace01(i, 101);
    hy__val_interp(x, 101, mrec, mpre, n + 2, mpre[0], mpre[n + 1], y);
    for (size_t i = 0; i < 100; i++) t[i] = (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0; // np.trapz
    return np_sum(t, 100, 1);
}

double hy__val_compute_ap(const double *recall, const double *precision, size_t n) {
    double *mrec = hy__malloc((n + 2) * sizeof *mrec), *mpre = hy__malloc((n + 2) * sizeof *mpre);
    double ap = 0;
    if (mrec && mpre) ap = compute_ap_env(recall, precision, n, mrec, mpre);
    hy__free(mrec);
    hy__free(mpre);
    return ap;
}

void hy__val_ap_deinit(hy__val_ap *a) {
    hy__free(a->cls);
    hy__free(a->nt);
    hy__free(a->p);
    hy__free(a->r);
    hy__free(a->ap);
    hy__free(a->px);
    hy__free(a->prec);
    memset(a, 0, sizeof *a);
}

hy_status hy__val_ap_compute(const hy__val_stats *s, hy__val_ap *out) {
    hy__val_ap a;
    memset(&a, 0, sizeof a);
    hy_status st = HY_OK;
    const size_t N = s->n, G = HY_VAL_NGRID;
    conf_key *order = NULL;
    size_t *start = NULL;
    uint32_t *byclass = NULL;
    double *pc = NULL, *rc = NULL, *rec = NULL, *pre = NULL, *mrec = NULL, *mpre = NULL,
           *negx = NULL, *negc = NULL;
    double *f1m = NULL;

    for (int c = 0; c < s->nc; c++) a.n += s->nt[c] > 0;
    const size_t nc = (size_t)a.n;
    a.cls = hy__malloc((nc ? nc : 1) * sizeof *a.cls);
    a.nt = hy__malloc((nc ? nc : 1) * sizeof *a.nt);
    a.p = hy__calloc(nc ? nc : 1, sizeof *a.p);
    a.r = hy__calloc(nc ? nc : 1, sizeof *a.r);
    a.ap = hy__calloc((nc ? nc : 1) * HY_VAL_NIOU, sizeof *a.ap);
    a.px = hy__malloc(G * sizeof *a.px);
    a.prec = hy__calloc((nc ? nc : 1) * G, sizeof *a.prec);
    if (!a.cls || !a.nt || !a.p || !a.r || !a.ap || !a.px || !a.prec) goto nomem;
    for (size_t i = 0; i < G; i++) a.px[i] = linspace01(i, G);
    {
        int k = 0;
        for (int c = 0; c < s->nc; c++)
            if (s->nt[c] > 0) {
                a.cls[k] = c;
                a.nt[k++] = s->nt[c];
            }
    }
    // Ultralytics only runs ap_per_class when some prediction is a TP (stats['tp'].any()).
    for (size_t i = 0; i < N * HY_VAL_NIOU && !a.computed; i++) a.computed = s->tp[i] != 0;
    if (!a.computed || nc == 0) {
        a.computed = 0;
        *out = a;
        return HY_OK;
    }

    // predictions by confidence, then grouped per class keeping that order
    order = hy__malloc(N * sizeof *order);
    start = hy__calloc((size_t)s->nc + 1, sizeof *start);
    byclass = hy__malloc(N * sizeof *byclass);
    pc = hy__calloc(nc * G, sizeof *pc);
    rc = hy__calloc(nc * G, sizeof *rc);
    rec = hy__malloc((N + 1) * HY_VAL_NIOU * sizeof *rec);
    pre = hy__malloc((N + 1) * HY_VAL_NIOU * sizeof *pre);
    mrec = hy__malloc((N + 2) * sizeof *mrec);
    mpre = hy__malloc((N + 2) * sizeof *mpre);
    negx = hy__malloc(G * sizeof *negx);
    negc = hy__malloc((N + 1) * sizeof *negc);
    f1m = hy__calloc(G, sizeof *f1m);
    if (!order || !start || !byclass || !pc || !rc || !rec || !pre || !mrec || !mpre || !negx ||
        !negc || !f1m)
        goto nomem;
    { /* np.argsort(-conf): equal confidences in numpy's order */
        double *neg = hy__malloc((N ? N : 1) * sizeof *neg);
        size_t *ix = hy__malloc((N ? N : 1) * sizeof *ix);
        if (!neg || !ix) {
            hy__free(neg);
            hy__free(ix);
            goto nomem;
        }
        for (size_t i = 0; i < N; i++) neg[i] = -(double)s->conf[i];
        hy__val_np_argsort(neg, ix, N);
        for (size_t i = 0; i < N; i++) order[i] = (conf_key){s->conf[ix[i]], (uint32_t)ix[i]};
        hy__free(neg);
        hy__free(ix);
    }
    for (size_t i = 0; i < N; i++) start[s->cls[i] + 1]++;
    for (int c = 0; c < s->nc; c++) start[c + 1] += start[c];
    {
        size_t *fill = hy__malloc(((size_t)s->nc + 1) * sizeof *fill);
        if (!fill) goto nomem;
        memcpy(fill, start, ((size_t)s->nc + 1) * sizeof *fill);
        for (size_t i = 0; i < N; i++) byclass[fill[s->cls[order[i].idx]]++] = order[i].idx;
        hy__free(fill);
    }
    for (size_t i = 0; i < G; i++) negx[i] = -a.px[i];

    for (size_t ci = 0; ci < nc; ci++) {
        const int c = a.cls[ci];
        const size_t np_ = start[c + 1] - start[c];
        const uint32_t *idx = byclass + start[c];
        if (np_ == 0) continue; // no predictions: AP, P, R stay 0
        const double nl = (double)a.nt[ci] + 1e-16;
        for (int j = 0; j < HY_VAL_NIOU; j++) {
            int64_t tpc = 0;
            for (size_t k = 0; k < np_; k++) {
                tpc += s->tp[(size_t)idx[k] * HY_VAL_NIOU + (size_t)j];
                const int64_t fpc = (int64_t)(k + 1) - tpc;
                rec[(size_t)j * np_ + k] = (double)tpc / nl;
                pre[(size_t)j * np_ + k] = (double)tpc / (double)(tpc + fpc);
            }
        }
        for (size_t k = 0; k < np_; k++) negc[k] = (double)(-s->conf[idx[k]]); // -conf, float32
        // r_curve = interp(-x, -conf, recall@0.5, left=0); p_curve: left=1
        hy__val_interp(negx, G, negc, rec, np_, 0.0, rec[np_ - 1], rc + ci * G);
        hy__val_interp(negx, G, negc, pre, np_, 1.0, pre[np_ - 1], pc + ci * G);
        for (int j = 0; j < HY_VAL_NIOU; j++) {
            a.ap[ci * HY_VAL_NIOU + (size_t)j] =
                compute_ap_env(rec + (size_t)j * np_, pre + (size_t)j * np_, np_, mrec, mpre);
            if (j == 0)
                hy__val_interp(a.px, G, mrec, mpre, np_ + 2, mpre[0], mpre[np_ + 1],
                               a.prec + ci * G);
        }
    }

    // F1 over the grid, mean over classes (axis 0: row by row), box filter, first max
    for (size_t ci = 0; ci < nc; ci++)
        for (size_t g = 0; g < G; g++) {
            const double p = pc[ci * G + g], r = rc[ci * G + g];
            f1m[g] += 2 * p * r / (p + r + 1e-16);
        }
    for (size_t g = 0; g < G; g++) f1m[g] /= (double)nc;
    {
        // smooth(y, 0.1): nf = round(1000 * 0.1 * 2) // 2 + 1 = 101, edges padded with y[0] / y[-1]
        const size_t nf = (size_t)nearbyint((double)G * 0.1 * 2) / 2 + 1, half = nf / 2;
        const double w = 1.0 / (double)nf;
        size_t best = 0;
        double bestv = -INFINITY;
        for (size_t g = 0; g < G; g++) {
            double acc = 0.0;
            for (size_t k = 0; k < nf; k++) {
                const long q = (long)g + (long)k - (long)half;
                const double v = q < 0 ? f1m[0] : q >= (long)G ? f1m[G - 1] : f1m[q];
                acc += v * w;
            }
            if (acc > bestv) {
                bestv = acc;
                best = g;
            }
        }
        a.best_conf = a.px[best];
        for (size_t ci = 0; ci < nc; ci++) {
            a.p[ci] = pc[ci * G + best];
            a.r[ci] = rc[ci * G + best];
        }
    }
    a.mp = np_sum(a.p, nc, 1) / (double)nc;
    a.mr = np_sum(a.r, nc, 1) / (double)nc;
    a.map50 = np_sum(a.ap, nc, HY_VAL_NIOU) / (double)nc;
    a.map = np_sum(a.ap, nc * HY_VAL_NIOU, 1) / (double)(nc * HY_VAL_NIOU);
    *out = a;
    goto done;
nomem:
    st = hy__error(HY_ERR_NOMEM, "out of memory computing AP over %zu predictions", N);
    hy__val_ap_deinit(&a);
done:
    hy__free(order);
    hy__free(start);
    hy__free(byclass);
    hy__free(pc);
    hy__free(rc);
    hy__free(rec);
    hy__free(pre);
    hy__free(mrec);
    hy__free(mpre);
    hy__free(negx);
    hy__free(negc);
    hy__free(f1m);
    return st;
}

// --- confusion matrix ----------------------------------------------------------------------------

hy_status hy__val_confusion_init(hy__val_confusion *cm, int nc, float conf_arg) {
    memset(cm, 0, sizeof *cm);
    cm->nc = nc;
    cm->conf = conf_arg == 0.001f ? 0.25f : conf_arg;
    cm->iou = 0.45f;
    cm->m = hy__calloc((size_t)(nc + 1) * (size_t)(nc + 1), sizeof *cm->m);
    if (!cm->m) return hy__error(HY_ERR_NOMEM, "out of memory for a %d-class confusion matrix", nc);
    return HY_OK;
}

void hy__val_confusion_deinit(hy__val_confusion *cm) {
    hy__free(cm->m);
    memset(cm, 0, sizeof *cm);
}

hy_status hy__val_confusion_add(hy__val_confusion *cm, const float *det, const float *conf,
                                const int *cls, size_t n, const float *gt, const int *gt_cls,
                                size_t m) {
    const size_t W = (size_t)cm->nc + 1, bg = (size_t)cm->nc;
    size_t nk = 0; // detections above the matrix's confidence
    for (size_t d = 0; d < n; d++) nk += conf[d] > cm->conf;
    size_t *keep = hy__malloc((nk ? nk : 1) * sizeof *keep);
    int *best_g = hy__malloc((nk ? nk : 1) * sizeof *best_g); // (nk) GT of each detection's match
    float *best_v = hy__malloc((nk ? nk : 1) * sizeof *best_v);
    int *gt_d = hy__malloc((m ? m : 1) * sizeof *gt_d); // (m) detection matched to each GT
    float *gt_v = hy__malloc((m ? m : 1) * sizeof *gt_v);
    if (!keep || !best_g || !best_v || !gt_d || !gt_v) {
        hy__free(keep);
        hy__free(best_g);
        hy__free(best_v);
        hy__free(gt_d);
        hy__free(gt_v);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    nk = 0;
    for (size_t d = 0; d < n; d++)
        if (conf[d] > cm->conf) keep[nk++] = d;
    // matches: pairs IoU > 0.45; per detection its highest-IoU GT (ties: larger g), then per
    // GT its highest-IoU detection among those (ties: larger d), as the two argsort/unique rounds.
    int any = 0;
    for (size_t k = 0; k < nk; k++) {
        best_g[k] = -1;
        for (size_t g = 0; g < m; g++) {
            const float v = hy__val_box_iou(gt + 4 * g, det + 4 * keep[k]);
            if (v > cm->iou && (best_g[k] < 0 || v >= best_v[k])) {
                best_g[k] = (int)g;
                best_v[k] = v;
            }
        }
        any |= best_g[k] >= 0;
    }
    for (size_t g = 0; g < m; g++) gt_d[g] = -1;
    for (size_t k = 0; k < nk; k++) {
        const int g = best_g[k];
        if (g < 0) continue;
        if (gt_d[g] < 0 || best_v[k] >= gt_v[g]) {
            gt_d[g] = (int)k;
            gt_v[g] = best_v[k];
        }
    }
    for (size_t g = 0; g < m; g++) {
        const size_t gc = (size_t)gt_cls[g];
        if (any && gt_d[g] >= 0)
            cm->m[(size_t)cls[keep[gt_d[g]]] * W + gc] += 1; // correct or confused
        else
            cm->m[bg * W + gc] += 1; // missed: background FN
    }
    if (any) // Ultralytics counts unmatched detections only when something matched
        for (size_t k = 0; k < nk; k++) {
            int matched = 0;
            for (size_t g = 0; g < m && !matched; g++) matched = gt_d[g] == (int)k;
            if (!matched) cm->m[(size_t)cls[keep[k]] * W + bg] += 1; // background FP
        }
    hy__free(keep);
    hy__free(best_g);
    hy__free(best_v);
    hy__free(gt_d);
    hy__free(gt_v);
    return HY_OK;
}
