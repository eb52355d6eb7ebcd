/* YOLOv8 detection loss (Ultralytics 8.0.172 v8DetectionLoss + TaskAlignedAssigner), forward
 * and d total / d p. See loss.h.
 *
 * Anchors are numbered level-major, then row-major (make_anchors): anchor a of level l at cell
 * (y, x) has centre (x + 0.5, y + 0.5) grid units, (x + 0.5) * stride pixels.
 *
 * Two phases, each parallel over images:
 *  1. assign (per image, float, mirroring the PyTorch float ops so that the discrete choices
 *     agree): decode the boxes (DFL expectation) in pixels, then per valid gt the row of
 *     align metrics sqrt(sigmoid(score)) * CIoU^6 over the anchors whose centre lies inside
 *     it (0 elsewhere), its top-k (torch.topk's tie choice, below), one gt per anchor (the
 *     highest CIoU when several claim it), and the target score of each foreground anchor
 *     align * max_overlap(gt) / (max_align(gt) + 1e-9). CIoU values of (gt, anchor) pairs
 *     are recomputed where needed instead of stored: scratch is O(anchors) per image.
 *  2. loss and gradient (per image, double, with the batch's target score sum): BCE over all
 *     logits, CIoU and DFL over the foreground anchors.
 * Per-image partial sums are added in image order: the result does not depend on threads.
 *
 * torch.topk ties (PyTorch 1.13 CPU, topk_impl_loop): the row becomes (value, index) pairs in
 * index order, compared by "greater" (NaN first); with k * 64 <= row length it runs
 * std::partial_sort (libstdc++'s heap select: a heap of the first k, each later element
 * entering only when strictly greater than the heap top), else std::nth_element (introselect).
 * topk_select() replays both libstdc++ algorithms step by step, so equal metrics (typically the
 * zeros of anchors outside the gt, chosen when a gt has fewer than k anchors with a positive
 * metric) select the same anchors as PyTorch built with libstdc++ (the official wheels). */
#include "train/loss.h"

#include <math.h>
#include <string.h>

#define PI_D 3.14159265358979323846

typedef struct hv {
    double v;
    long i;
} hv;

struct hy__v8loss {
    hy__v8loss_params p;
    int n, A, T;       /* planned images, anchors, targets per image */
    float *pb;         /* n * A * 4: predicted boxes xyxy, pixels (assigner input) */
    float *row;        /* n * A: align metric row of one gt, then per-anchor align of its gt */
    float *tov;        /* n * A: per-anchor CIoU with its gt (phase 1 temp) */
    float *tsc;        /* n * A: target score of the assigned class (0 for background) */
    int *cnt;          /* n * A: gts whose top-k claims the anchor */
    int *agt;          /* n * A: assigned gt (first claimant while counting), -1 background */
    hv *heap;          /* n * sel: top-k selection scratch */
    size_t sel;
    float *gtb;        /* n * T * 4: gt boxes xyxy, pixels */
    int *gtl;          /* n * T: labels */
    unsigned char *gtv;/* n * T: Ultralytics' mask_gt (xyxy sum > 0) */
    float *pam, *pov;  /* n * T: max align metric, max overlap over the gt's positives */
    int *ngt, *nfg;    /* n */
    double *part;      /* n * 4: target score sum, box, cls, dfl (ungained, unnormalised) */
    double *calpha;    /* n * A: CIoU alpha of each foreground anchor (a constant of the gradient) */
    unsigned char *dec;/* n * A: pb decoded (only anchors inside some gt are) */
    /* geometry of the current call */
    int n_cur, A_cur;  /* 0 before the first successful call */
    double inv_tss;
    int lh[4], lw[4], loff[4];
};

hy__v8loss_params hy__v8loss_default_params(int nc) {
    hy__v8loss_params p;
    memset(&p, 0, sizeof(p));
    p.nc = nc;
    p.reg_max = 16;
    p.n_levels = 3;
    p.strides[0] = 8;
    p.strides[1] = 16;
    p.strides[2] = 32;
    p.box = 7.5f;
    p.cls = 0.5f;
    p.dfl = 1.5f;
    p.topk = 10;
    p.alpha = 0.5f;
    p.beta = 6.0f;
    return p;
}

void hy__v8loss_free(hy__v8loss *l) {
    if (!l) return;
    hy__free(l->pb);
    hy__free(l->row);
    hy__free(l->tov);
    hy__free(l->tsc);
    hy__free(l->cnt);
    hy__free(l->agt);
    hy__free(l->heap);
    hy__free(l->gtb);
    hy__free(l->gtl);
    hy__free(l->gtv);
    hy__free(l->pam);
    hy__free(l->pov);
    hy__free(l->ngt);
    hy__free(l->nfg);
    hy__free(l->part);
    hy__free(l->calpha);
    hy__free(l->dec);
    hy__free(l);
}

static int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

static void *alloc_n(size_t count, size_t size, int *ok) {
    size_t bytes;
    if (!hy__mul_ok(count, size, &bytes)) {
        *ok = 0;
        return NULL;
    }
    void *p = hy__malloc(bytes ? bytes : 1);
    if (!p) *ok = 0;
    return p;
}

hy_status hy__v8loss_create(const hy__v8loss_params *p, int n, int h, int w, int max_targets, hy__v8loss **out) {
    if (!p || !out) return hy__error(HY_ERR_INVALID_ARG, "v8loss: NULL argument");
    if (p->nc < 1 || p->nc > 100000 || p->reg_max < 2 || p->reg_max > 64 || p->n_levels < 1 || p->n_levels > 4 ||
        p->topk < 1 || p->topk > 1000)
        return hy__error(HY_ERR_INVALID_ARG, "v8loss: bad params (nc %d, reg_max %d, levels %d, topk %d)", p->nc,
                         p->reg_max, p->n_levels, p->topk);
    if (n < 1 || h < 1 || w < 1 || max_targets < 0 || h > 65536 || w > 65536 || max_targets > 1000000)
        return hy__error(HY_ERR_INVALID_ARG, "v8loss: bad plan (n %d, %dx%d, max_targets %d)", n, h, w, max_targets);
    long A = 0;
    for (int i = 0; i < p->n_levels; i++) {
        if (p->strides[i] < 1) return hy__error(HY_ERR_INVALID_ARG, "v8loss: stride %d of level %d", p->strides[i], i);
        A += (long)ceil_div(h, p->strides[i]) * ceil_div(w, p->strides[i]);
    }
    if (A > (1L << 26)) return hy__error(HY_ERR_INVALID_ARG, "v8loss: %ld anchors is too many", A);
    hy__v8loss *l = hy__calloc(1, sizeof(*l));
    if (!l) return hy__error(HY_ERR_NOMEM, "v8loss: out of memory");
    l->p = *p;
    l->n = n;
    l->A = (int)A;
    l->T = max_targets;
    size_t nA = (size_t)n * (size_t)A, nT = (size_t)n * (size_t)(max_targets > 0 ? max_targets : 1);
    int ok = 1;
    l->pb = alloc_n(nA, 4 * sizeof(float), &ok);
    l->row = alloc_n(nA, sizeof(float), &ok);
    l->tov = alloc_n(nA, sizeof(float), &ok);
    l->tsc = alloc_n(nA, sizeof(float), &ok);
    l->cnt = alloc_n(nA, sizeof(int), &ok);
    l->agt = alloc_n(nA, sizeof(int), &ok);
    l->sel = (size_t)(A < 64L * p->topk ? A : 64L * p->topk); /* >= any call's need */
    l->heap = alloc_n((size_t)n * l->sel, sizeof(hv), &ok);
    l->gtb = alloc_n(nT, 4 * sizeof(float), &ok);
    l->gtl = alloc_n(nT, sizeof(int), &ok);
    l->gtv = alloc_n(nT, 1, &ok);
    l->pam = alloc_n(nT, sizeof(float), &ok);
    l->pov = alloc_n(nT, sizeof(float), &ok);
    l->ngt = alloc_n((size_t)n, sizeof(int), &ok);
    l->nfg = alloc_n((size_t)n, sizeof(int), &ok);
    l->part = alloc_n((size_t)n, 4 * sizeof(double), &ok);
    l->calpha = alloc_n(nA, sizeof(double), &ok);
    l->dec = alloc_n(nA, 1, &ok);
    if (!ok) {
        hy__v8loss_free(l);
        return hy__error(HY_ERR_NOMEM, "v8loss: out of memory (n %d, %ld anchors, %d targets)", n, A, max_targets);
    }
    *out = l;
    return HY_OK;
}

/* ---- geometry ------------------------------------------------------------------------- */

typedef struct anc {
    int lvl, y, x, s;
    size_t off; /* y * w + x within the level map */
} anc;

static anc anchor_at(const hy__v8loss *l, int a) {
    anc r;
    int lv = 0;
    while (lv + 1 < l->p.n_levels && a >= l->loff[lv + 1]) lv++;
    int k = a - l->loff[lv];
    r.lvl = lv;
    r.y = k / l->lw[lv];
    r.x = k % l->lw[lv];
    r.s = l->p.strides[lv];
    r.off = (size_t)k;
    return r;
}

/* Offset of channel c at anchor an of image b in view v (a head map or its gradient). */
static inline size_t at_idx(const hy__tview *v, int b, const anc *an, int c) {
    return (size_t)b * v->bs + (size_t)c * (size_t)v->h * (size_t)v->w + an->off;
}
/* Logit of channel c at anchor an of image b. */
static inline const float *logit_ptr(const hy__tview *p, int b, const anc *an, int c) {
    return p[an->lvl].d + at_idx(&p[an->lvl], b, an, c);
}

/* Ultralytics bbox_iou(box1, box2, xywh=False, CIoU=True), eps 1e-7, in float. */
static float ciou_f(const float *b1, const float *b2) {
    const float eps = 1e-7f;
    float w1 = b1[2] - b1[0], h1 = b1[3] - b1[1] + eps;
    float w2 = b2[2] - b2[0], h2 = b2[3] - b2[1] + eps;
    float iw = fminf(b1[2], b2[2]) - fmaxf(b1[0], b2[0]);
    float ih = fminf(b1[3], b2[3]) - fmaxf(b1[1], b2[1]);
    if (!(iw > 0.0f)) iw = 0.0f;
    if (!(ih > 0.0f)) ih = 0.0f;
    float inter = iw * ih;
    float uni = w1 * h1 + w2 * h2 - inter + eps;
    float iou = inter / uni;
    float cw = fmaxf(b1[2], b2[2]) - fminf(b1[0], b2[0]);
    float ch = fmaxf(b1[3], b2[3]) - fminf(b1[1], b2[1]);
    float c2 = cw * cw + ch * ch + eps;
    float dx = b2[0] + b2[2] - b1[0] - b1[2], dy = b2[1] + b2[3] - b1[1] - b1[3];
    float rho2 = (dx * dx + dy * dy) / 4.0f;
    float at = atanf(w2 / h2) - atanf(w1 / h1);
    float v = (float)(4.0 / (PI_D * PI_D)) * (at * at);
    float alpha = v / (v - iou + (1.0f + eps));
    return iou - (rho2 / c2 + v * alpha);
}

static inline float sigmoid_f(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/* Anchor centre inside gt g (select_candidates_in_gts: min of the 4 deltas > 1e-9), pixels. */
static inline int in_gt(const float *gb, float ax, float ay) {
    float d0 = ax - gb[0], d1 = ay - gb[1], d2 = gb[2] - ax, d3 = gb[3] - ay;
    float m = fminf(fminf(d0, d1), fminf(d2, d3));
    return m > 1e-9f;
}

/* ---- torch.topk's selection (libstdc++ heap select with comp = greater) ---------------- */

static inline int hv_comp(const hv *x, const hv *y) {
    return (isnan(x->v) && !isnan(y->v)) || x->v > y->v;
}

static void push_heap(hv *f, long hole, long top, hv val) {
    long parent = (hole - 1) / 2;
    while (hole > top && hv_comp(&f[parent], &val)) {
        f[hole] = f[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    f[hole] = val;
}

static void adjust_heap(hv *f, long hole, long len, hv val) {
    long top = hole, child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (hv_comp(&f[child], &f[child - 1])) child--;
        f[hole] = f[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        f[hole] = f[child - 1];
        hole = child - 1;
    }
    push_heap(f, hole, top, val);
}

static void make_heap(hv *f, long len) {
    if (len < 2) return;
    for (long parent = (len - 2) / 2;; parent--) {
        adjust_heap(f, parent, len, f[parent]);
        if (parent == 0) break;
    }
}

/* std::__heap_select(f, f + mid, f + last): f[0, mid) ends holding the mid greatest. */
static void heap_select(hv *f, long mid, long last) {
    make_heap(f, mid);
    for (long i = mid; i < last; i++)
        if (hv_comp(&f[i], &f[0])) { /* __pop_heap(f, f + mid, f + i) */
            hv v = f[i];
            f[i] = f[0];
            adjust_heap(f, 0, mid, v);
        }
}

static inline void hv_swap(hv *a, hv *b) {
    hv t = *a;
    *a = *b;
    *b = t;
}

static void move_median_to_first(hv *res, hv *a, hv *b, hv *c) {
    if (hv_comp(a, b)) {
        if (hv_comp(b, c)) hv_swap(res, b);
        else if (hv_comp(a, c)) hv_swap(res, c);
        else hv_swap(res, a);
    } else if (hv_comp(a, c)) hv_swap(res, a);
    else if (hv_comp(b, c)) hv_swap(res, c);
    else hv_swap(res, b);
}

static hv *unguarded_partition(hv *first, hv *last, const hv *pivot) {
    for (;;) {
        while (hv_comp(first, pivot)) first++;
        last--;
        while (hv_comp(pivot, last)) last--;
        if (!(first < last)) return first;
        hv_swap(first, last);
        first++;
    }
}

static void insertion_sort(hv *first, hv *last) {
    if (first == last) return;
    for (hv *i = first + 1; i != last; i++) {
        hv v = *i;
        if (hv_comp(&v, first)) {
            memmove(first + 1, first, (size_t)(i - first) * sizeof(hv));
            *first = v;
        } else {
            hv *j = i, *nx = i - 1;
            while (hv_comp(&v, nx)) {
                *j = *nx;
                j = nx--;
            }
            *j = v;
        }
    }
}

/* std::nth_element(first, nth, last) (libstdc++ introselect). */
static void nth_element(hv *first, hv *nth, hv *last) {
    if (first == last || nth == last) return;
    long depth = 0;
    for (long m = last - first; m > 1; m >>= 1) depth++; /* __lg */
    depth *= 2;
    while (last - first > 3) {
        if (depth == 0) {
            heap_select(first, nth + 1 - first, last - first);
            hv_swap(first, nth);
            return;
        }
        depth--;
        hv *mid = first + (last - first) / 2;
        move_median_to_first(first, first + 1, mid, last - 1);
        hv *cut = unguarded_partition(first + 1, last, first);
        if (cut <= nth) first = cut;
        else last = cut;
    }
    insertion_sort(first, last);
}

/* sel[0, k) gets the indices torch.topk(row, k) returns (as a set; their order is not
 * needed). sel holds n entries when k * 64 > n, else k. */
static void topk_select(const float *row, long n, hv *sel, long k) {
    if (k * 64 <= n) { /* std::partial_sort: heap select, streaming the row */
        for (long i = 0; i < k; i++) {
            sel[i].v = row[i];
            sel[i].i = i;
        }
        make_heap(sel, k);
        for (long i = k; i < n; i++) {
            double v = row[i]; /* hv_comp(&{v, i}, &sel[0]) */
            if (v > sel[0].v || (isnan(v) && !isnan(sel[0].v))) {
                hv e = {v, i};
                adjust_heap(sel, 0, k, e);
            }
        }
    } else { /* std::nth_element(begin, begin + k - 1, end) */
        for (long i = 0; i < n; i++) {
            sel[i].v = row[i];
            sel[i].i = i;
        }
        nth_element(sel, sel + k - 1, sel + n);
    }
}

/* ---- phase 1: assignment -------------------------------------------------------------- */

typedef struct ctx {
    hy__v8loss *l;
    const hy__tview *p;
    const hy__tview *grad;
    double inv_tss;
    int n;
    int fixed; /* gradient-check path: stored CIoU alphas, BCE in double */
} ctx;

/* CIoU(gt g, pred a) clamped at 0 where the anchor is inside the valid gt, else 0
 * (get_box_metrics' overlaps). */
static float overlap_pair(const hy__v8loss *l, int b, int g, int a, const anc *an) {
    const float *gb = l->gtb + ((size_t)b * l->T + g) * 4;
    if (!l->gtv[(size_t)b * l->T + g]) return 0.0f;
    float ax = ((float)an->x + 0.5f) * (float)an->s, ay = ((float)an->y + 0.5f) * (float)an->s;
    if (!in_gt(gb, ax, ay)) return 0.0f;
    float o = ciou_f(gb, l->pb + ((size_t)b * l->A + a) * 4);
    return o > 0.0f ? o : 0.0f;
}

static float align_pair(const hy__v8loss *l, const hy__tview *p, int b, int g, const anc *an, float ov) {
    int R = l->p.reg_max;
    float sc = sigmoid_f(*logit_ptr(p, b, an, 4 * R + l->gtl[(size_t)b * l->T + g]));
    float sa = l->p.alpha == 0.5f ? sqrtf(sc) : powf(sc, l->p.alpha);
    float ob = l->p.beta == 6.0f ? powf(ov, 6.0f) : powf(ov, l->p.beta);
    return sa * ob;
}

/* Predicted box of anchor an in pixels: (anchor -+ DFL expectation) * stride, in float as
 * PyTorch (softmax, matmul with arange, dist2bbox, * stride). */
static void decode_px(const hy__v8loss *l, const hy__tview *p, int b, const anc *an, float *o) {
    int R = l->p.reg_max;
    float ax = (float)an->x + 0.5f, ay = (float)an->y + 0.5f, d[4];
    for (int k = 0; k < 4; k++) {
        float z[64], mx = -INFINITY, s = 0.0f, e = 0.0f;
        for (int j = 0; j < R; j++) {
            z[j] = *logit_ptr(p, b, an, k * R + j);
            if (z[j] > mx) mx = z[j];
        }
        for (int j = 0; j < R; j++) {
            z[j] = expf(z[j] - mx);
            s += z[j];
        }
        for (int j = 0; j < R; j++) e += (z[j] / s) * (float)j;
        d[k] = e;
    }
    o[0] = (ax - d[0]) * (float)an->s;
    o[1] = (ay - d[1]) * (float)an->s;
    o[2] = (ax + d[2]) * (float)an->s;
    o[3] = (ay + d[3]) * (float)an->s;
}

/* Cells [*c0, *c1] of a level of n cells whose centres (c + 0.5) may lie in (lo, hi) (grid
 * units), one cell of margin each side; in_gt() decides exactly. Empty: *c0 > *c1. */
static void cell_range(float lo, float hi, int n, int *c0, int *c1) {
    float a = floorf(lo - 0.5f) - 1.0f, z = ceilf(hi - 0.5f) + 1.0f;
    if (!(a > 0.0f)) a = 0.0f; /* also NaN */
    if (!(z < (float)(n - 1))) z = (float)(n - 1);
    *c0 = a > (float)n ? n : (int)a;
    *c1 = z < -1.0f ? -1 : (int)z;
}

static void assign_image(void *vc, long bi, int ith) {
    (void)ith;
    ctx *c = vc;
    hy__v8loss *l = c->l;
    const hy__tview *p = c->p;
    int b = (int)bi, A = l->A_cur;
    float *pb = l->pb + (size_t)b * l->A * 4;
    float *row = l->row + (size_t)b * l->A;
    float *tov = l->tov + (size_t)b * l->A;
    float *tsc = l->tsc + (size_t)b * l->A;
    int *cnt = l->cnt + (size_t)b * l->A;
    int *agt = l->agt + (size_t)b * l->A;
    hv *heap = l->heap + (size_t)b * l->sel;
    unsigned char *dec = l->dec + (size_t)b * l->A;
    int ng = l->ngt[b];
    const float *gtb = l->gtb + (size_t)b * l->T * 4;
    const unsigned char *gtv = l->gtv + (size_t)b * l->T;
    float *pam = l->pam + (size_t)b * l->T, *pov = l->pov + (size_t)b * l->T;

    for (int a = 0; a < A; a++) {
        cnt[a] = 0;
        agt[a] = -1;
        tsc[a] = 0.0f;
    }
    l->nfg[b] = 0;
    double *part = l->part + (size_t)b * 4;
    part[0] = 0.0;
    if (ng == 0) return;

    /* top-k candidates per valid gt among the anchors inside it; the metric row is 0 outside
     * the gt, so only the cells of each level that can be inside are visited */
    memset(dec, 0, (size_t)A);
    long k = l->p.topk < A ? l->p.topk : A;
    for (int g = 0; g < ng; g++) {
        if (!gtv[g]) continue;
        const float *gb = gtb + (size_t)g * 4;
        memset(row, 0, (size_t)A * sizeof(float));
        for (int lv = 0; lv < l->p.n_levels; lv++) {
            int x0, x1, y0, y1;
            float sf = (float)l->p.strides[lv];
            cell_range(gb[0] / sf, gb[2] / sf, l->lw[lv], &x0, &x1);
            cell_range(gb[1] / sf, gb[3] / sf, l->lh[lv], &y0, &y1);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++) {
                    int a = l->loff[lv] + y * l->lw[lv] + x;
                    anc an = anchor_at(l, a);
                    float ax = ((float)an.x + 0.5f) * (float)an.s, ay = ((float)an.y + 0.5f) * (float)an.s;
                    if (!in_gt(gb, ax, ay)) continue;
                    if (!dec[a]) {
                        decode_px(l, p, b, &an, pb + (size_t)a * 4);
                        dec[a] = 1;
                    }
                    row[a] = align_pair(l, p, b, g, &an, overlap_pair(l, b, g, a, &an));
                }
        }
        topk_select(row, A, heap, k);
        for (long t = 0; t < k; t++) {
            int a = (int)heap[t].i;
            anc an = anchor_at(l, a);
            float ax = ((float)an.x + 0.5f) * (float)an.s, ay = ((float)an.y + 0.5f) * (float)an.s;
            if (!in_gt(gb, ax, ay)) continue;
            if (cnt[a]++ == 0) agt[a] = g;
        }
    }

    /* select_highest_overlaps: an anchor claimed by several gts goes to the first gt of
     * highest overlap over all gts (argmax, first on ties; gt 0 when all are 0) */
    for (int g = 0; g < ng; g++) pam[g] = pov[g] = 0.0f;
    int nfg = 0;
    for (int a = 0; a < A; a++) {
        if (cnt[a] == 0) continue;
        anc an = anchor_at(l, a);
        if (cnt[a] > 1) {
            int best = 0;
            float bo = overlap_pair(l, b, 0, a, &an);
            for (int g = 1; g < ng; g++) {
                float o = overlap_pair(l, b, g, a, &an);
                if (o > bo) {
                    bo = o;
                    best = g;
                }
            }
            agt[a] = best;
        }
        int g = agt[a];
        float ov = overlap_pair(l, b, g, a, &an);
        /* align metric of the pair: 0 unless the anchor is inside the valid gt (an anchor
         * given by argmax to a gt it is not inside, all overlaps being 0, keeps 0) */
        float am = gtv[g] && in_gt(gtb + (size_t)g * 4, ((float)an.x + 0.5f) * (float)an.s,
                                   ((float)an.y + 0.5f) * (float)an.s)
                       ? align_pair(l, p, b, g, &an, ov)
                       : 0.0f;
        tov[a] = ov;
        row[a] = am;
        if (am > pam[g]) pam[g] = am;
        if (ov > pov[g]) pov[g] = ov;
        nfg++;
    }
    double tss = 0.0;
    for (int a = 0; a < A; a++) {
        if (cnt[a] == 0) continue;
        int g = agt[a];
        tsc[a] = row[a] * pov[g] / (pam[g] + 1e-9f);
        tss += tsc[a];
    }
    l->nfg[b] = nfg;
    part[0] = tss;
}

/* ---- phase 2: loss and gradient ------------------------------------------------------- */

/* CIoU(b1, b2) in double and d CIoU / d b1 with CIoU's alpha a constant (Ultralytics computes
 * it under no_grad): *alpha_io < 0 computes it (and returns it there), else it is used as
 * given (gradient checks). minimum / maximum split the gradient in half on ties and clamp(0)
 * passes it at 0, as PyTorch's backward formulas. */
static double ciou_grad(const double *b1, const double *b2, double g1[4], double *alpha_io) {
    const double eps = 1e-7, K = 4.0 / (PI_D * PI_D);
    double x1 = b1[0], y1 = b1[1], x2 = b1[2], y2 = b1[3];
    double X1 = b2[0], Y1 = b2[1], X2 = b2[2], Y2 = b2[3];
    double w1 = x2 - x1, h1 = y2 - y1 + eps, w2 = X2 - X1, h2 = Y2 - Y1 + eps;
    double iw = fmin(x2, X2) - fmax(x1, X1), ih = fmin(y2, Y2) - fmax(y1, Y1);
    double iwc = iw > 0 ? iw : 0, ihc = ih > 0 ? ih : 0;
    double inter = iwc * ihc;
    double uni = w1 * h1 + w2 * h2 - inter + eps;
    double iou = inter / uni;
    double cw = fmax(x2, X2) - fmin(x1, X1), ch = fmax(y2, Y2) - fmin(y1, Y1);
    double c2 = cw * cw + ch * ch + eps;
    double dx = X1 + X2 - x1 - x2, dy = Y1 + Y2 - y1 - y2;
    double rho2 = (dx * dx + dy * dy) / 4.0;
    double r1 = w1 / h1;
    double at = atan(w2 / h2) - atan(r1);
    double v = K * at * at;
    double alpha = *alpha_io >= 0 ? *alpha_io : v / (v - iou + (1.0 + eps));
    *alpha_io = alpha;
    double ciou = iou - (rho2 / c2 + v * alpha);

    double G = 1.0;
    double g_rho2 = -G / c2, g_c2 = G * rho2 / (c2 * c2), g_v = -G * alpha;
    double g_union = -G * iou / uni;
    double g_inter = G / uni - g_union;
    double g_w1 = g_union * h1, g_h1 = g_union * w1;
    double g_r1 = -(g_v * 2.0 * K * at) / (1.0 + r1 * r1);
    g_w1 += g_r1 / h1;
    g_h1 += -g_r1 * w1 / (h1 * h1);
    double gx1 = 0, gy1 = 0, gx2 = 0, gy2 = 0;
    double g_iw = iw >= 0 ? g_inter * ihc : 0, g_ih = ih >= 0 ? g_inter * iwc : 0;
    /* min(x2, X2) and max(x1, X1) */
    gx2 += x2 < X2 ? g_iw : x2 == X2 ? 0.5 * g_iw : 0;
    gx1 -= x1 > X1 ? g_iw : x1 == X1 ? 0.5 * g_iw : 0;
    gy2 += y2 < Y2 ? g_ih : y2 == Y2 ? 0.5 * g_ih : 0;
    gy1 -= y1 > Y1 ? g_ih : y1 == Y1 ? 0.5 * g_ih : 0;
    /* enclosing box: max(x2, X2) - min(x1, X1) */
    double g_cw = g_c2 * 2.0 * cw, g_ch = g_c2 * 2.0 * ch;
    gx2 += x2 > X2 ? g_cw : x2 == X2 ? 0.5 * g_cw : 0;
    gx1 -= x1 < X1 ? g_cw : x1 == X1 ? 0.5 * g_cw : 0;
    gy2 += y2 > Y2 ? g_ch : y2 == Y2 ? 0.5 * g_ch : 0;
    gy1 -= y1 < Y1 ? g_ch : y1 == Y1 ? 0.5 * g_ch : 0;
    /* centre distance */
    double g_dx = g_rho2 * dx / 2.0, g_dy = g_rho2 * dy / 2.0;
    gx1 -= g_dx;
    gx2 -= g_dx;
    gy1 -= g_dy;
    gy2 -= g_dy;
    /* w1, h1 */
    gx2 += g_w1;
    gx1 -= g_w1;
    gy2 += g_h1;
    gy1 -= g_h1;
    g1[0] = gx1;
    g1[1] = gy1;
    g1[2] = gx2;
    g1[3] = gy2;
    return ciou;
}

/* BCE with logits against target 0 in float as PyTorch 1.13 evaluates it,
 * (x + m) + log(exp(-m) + exp(-x - m)) with m = max(-x, 0), which is exactly
 * max(x, 0) + log(1 + e) with e = exp(-|x|) in float. Its rounding (log of 1 + tiny for the
 * many confident background logits) moves Ultralytics' cls loss by ~1e-5 relative; copying
 * it keeps us at ~1e-7. The target term -x t is added separately. */
static inline float bce0_f(float x, float e) {
    return (x > 0.0f ? x : 0.0f) + logf(1.0f + e);
}

/* The same in double (the smooth function gradient checks difference). */
static inline double bce0_d(double x) {
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

static void loss_image(void *vc, long bi, int ith) {
    (void)ith;
    ctx *c = vc;
    hy__v8loss *l = c->l;
    const hy__tview *p = c->p, *grad = c->grad;
    int b = (int)bi, R = l->p.reg_max, nc = l->p.nc, A = l->A_cur;
    const float *tsc = l->tsc + (size_t)b * l->A;
    const int *agt = l->agt + (size_t)b * l->A;
    double scale = (double)c->n * c->inv_tss;
    double gcls = (double)l->p.cls * scale, gbox = (double)l->p.box * scale, gdfl = (double)l->p.dfl * scale;
    double cls = 0.0, box = 0.0, dfl = 0.0;

    /* BCE with logits against 0 everywhere; the foreground targets are added below */
    for (int lv = 0; lv < l->p.n_levels; lv++) {
        const hy__tview *v = &p[lv];
        size_t hw = (size_t)v->h * (size_t)v->w;
        for (int ch = 0; ch < nc; ch++) {
            const float *x = v->d + (size_t)b * v->bs + (size_t)(4 * R + ch) * hw;
            float *gx = grad ? grad[lv].d + (size_t)b * grad[lv].bs + (size_t)(4 * R + ch) * hw : NULL;
            double s = 0.0;
            float gc = (float)gcls;
            if (c->fixed) {
                for (size_t i = 0; i < hw; i++) {
                    s += bce0_d(x[i]);
                    if (gx) gx[i] = (float)(gcls / (1.0 + exp(-(double)x[i])));
                }
            } else {
                for (size_t i = 0; i < hw; i++) {
                    float e = expf(-fabsf(x[i]));
                    s += bce0_f(x[i], e);
                    if (gx) gx[i] = gc * ((x[i] >= 0.0f ? 1.0f : e) / (1.0f + e)); /* sigmoid */
                }
            }
            cls += s;
        }
        if (grad) {
            float *gd = grad[lv].d + (size_t)b * grad[lv].bs;
            memset(gd, 0, (size_t)(4 * R) * hw * sizeof(float));
        }
    }

    for (int a = 0; a < A; a++) {
        if (agt[a] < 0) continue;
        anc an = anchor_at(l, a);
        int g = agt[a];
        double w = tsc[a];
        int lab = l->gtl[(size_t)b * l->T + g];
        const float *xl = logit_ptr(p, b, &an, 4 * R + lab);
        cls -= (double)*xl * w;
        if (grad) {
            float *gx = grad[an.lvl].d + at_idx(&grad[an.lvl], b, &an, 4 * R + lab);
            *gx = (float)((double)*gx - gcls * w);
        }

        /* DFL distributions */
        double z[4][64], pr[4][64], lse[4], dist[4];
        for (int k = 0; k < 4; k++) {
            double mx = -INFINITY, s = 0.0, e = 0.0;
            for (int j = 0; j < R; j++) {
                z[k][j] = *logit_ptr(p, b, &an, k * R + j);
                if (z[k][j] > mx) mx = z[k][j];
            }
            for (int j = 0; j < R; j++) {
                pr[k][j] = exp(z[k][j] - mx);
                s += pr[k][j];
            }
            for (int j = 0; j < R; j++) {
                pr[k][j] /= s;
                e += pr[k][j] * j;
            }
            lse[k] = mx + log(s);
            dist[k] = e;
        }
        double ax = an.x + 0.5, ay = an.y + 0.5;
        double pbx[4] = {ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]};
        /* target box in grid units (target_bboxes /= stride, float) */
        const float *gp = l->gtb + ((size_t)b * l->T + g) * 4;
        float tb[4];
        for (int k = 0; k < 4; k++) tb[k] = gp[k] / (float)an.s;
        double tbd[4] = {tb[0], tb[1], tb[2], tb[3]}, g1[4];
        double *al = l->calpha + (size_t)b * l->A + a;
        if (!c->fixed) *al = -1.0;
        double ci = ciou_grad(pbx, tbd, g1, al);
        box += (1.0 - ci) * w;

        /* DFL targets: bbox2dist clamped to [0, reg_max - 1 - 0.01], float */
        float axf = (float)an.x + 0.5f, ayf = (float)an.y + 0.5f;
        float tl4[4] = {axf - tb[0], ayf - tb[1], tb[2] - axf, tb[3] - ayf};
        float hi = (float)((double)(R - 1) - 0.01);
        double gdist[4] = {-g1[0], -g1[1], g1[2], g1[3]};
        double cb = -gbox * w, cd = gdfl * w / 4.0, s_dfl = 0.0;
        for (int k = 0; k < 4; k++) {
            float t = tl4[k];
            if (t < 0.0f) t = 0.0f;
            if (t > hi) t = hi;
            int il = (int)t, ir = il + 1;
            float wl = (float)ir - t, wr = 1.0f - wl;
            s_dfl += (lse[k] - z[k][il]) * wl + (lse[k] - z[k][ir]) * wr;
            if (!grad) continue;
            for (int j = 0; j < R; j++) {
                double gz = cb * gdist[k] * pr[k][j] * (j - dist[k]);
                gz += cd * (pr[k][j] * ((double)wl + (double)wr) - (j == il ? wl : 0.0) - (j == ir ? wr : 0.0));
                grad[an.lvl].d[at_idx(&grad[an.lvl], b, &an, k * R + j)] = (float)gz;
            }
        }
        dfl += s_dfl / 4.0 * w;
    }
    double *part = l->part + (size_t)b * 4;
    part[1] = box;
    part[2] = cls;
    part[3] = dfl;
}

/* ---- entry ---------------------------------------------------------------------------- */

static hy_status loss_all(hy__v8loss *l, const hy__tview *p, hy__v8loss_out *out, const hy__tview *grad,
                          int fixed, hy__threadpool *tp);

static int is_int(float v) {
    return isfinite(v) && v == floorf(v);
}

hy_status hy__v8loss_compute(hy__v8loss *l, const hy__tview *p, const float *targets, int n_targets,
                             hy__v8loss_out *out, const hy__tview *grad, hy__threadpool *tp) {
    if (!l || !p || !out || (n_targets > 0 && !targets) || n_targets < 0)
        return hy__error(HY_ERR_INVALID_ARG, "v8loss: NULL argument");
    l->n_cur = 0; /* no valid assignment until this call succeeds */
    int L = l->p.n_levels, R = l->p.reg_max, nc = l->p.nc, no = 4 * R + nc;
    int n = p[0].n;
    if (n < 1 || n > l->n) return hy__error(HY_ERR_INVALID_ARG, "v8loss: batch %d, planned for 1..%d", n, l->n);
    long A = 0;
    for (int i = 0; i < L; i++) {
        if (!p[i].d || p[i].n != n || p[i].c != no || p[i].h < 1 || p[i].w < 1 ||
            p[i].bs < (size_t)p[i].c * p[i].h * p[i].w)
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: head map %d is (%d, %d, %d, %d), expected (%d, %d, h, w)", i,
                             p[i].n, p[i].c, p[i].h, p[i].w, n, no);
        if (grad && (!grad[i].d || grad[i].n != n || grad[i].c != no || grad[i].h != p[i].h ||
                     grad[i].w != p[i].w || grad[i].bs < (size_t)no * p[i].h * p[i].w))
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: grad view %d does not match its head map", i);
        l->loff[i] = (int)A;
        l->lh[i] = p[i].h;
        l->lw[i] = p[i].w;
        A += (long)p[i].h * p[i].w;
    }
    if (A > l->A) return hy__error(HY_ERR_INVALID_ARG, "v8loss: %ld anchors, planned for %d", A, l->A);
    l->A_cur = (int)A;

    /* targets -> per image gt rows in their batch order (Ultralytics preprocess) */
    float img_h = (float)(p[0].h * l->p.strides[0]), img_w = (float)(p[0].w * l->p.strides[0]);
    for (int b = 0; b < n; b++) l->ngt[b] = 0;
    for (int t = 0; t < n_targets; t++) {
        const float *r = targets + (size_t)t * 6;
        if (!is_int(r[0]) || r[0] < 0 || r[0] >= (float)n)
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: target row %d: image index %g not in [0, %d)", t, r[0], n);
        if (!is_int(r[1]) || r[1] < 0 || r[1] >= (float)nc)
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: target row %d: class %g not in [0, %d)", t, r[1], nc);
        for (int j = 2; j < 6; j++)
            if (!isfinite(r[j])) return hy__error(HY_ERR_INVALID_ARG, "v8loss: target row %d: box is not finite", t);
        int b = (int)r[0];
        if (l->ngt[b] >= l->T)
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: image %d has more than %d targets (max_targets)", b, l->T);
        int g = l->ngt[b]++;
        float *gb = l->gtb + ((size_t)b * l->T + g) * 4;
        float cx = r[2] * img_w, cy = r[3] * img_h, w = r[4] * img_w, h = r[5] * img_h;
        float dw = w / 2.0f, dh = h / 2.0f;
        gb[0] = cx - dw;
        gb[1] = cy - dh;
        gb[2] = cx + dw;
        gb[3] = cy + dh;
        l->gtl[(size_t)b * l->T + g] = (int)r[1];
        l->gtv[(size_t)b * l->T + g] = (gb[0] + gb[1] + gb[2] + gb[3]) > 0.0f;
    }

    ctx c = {l, p, grad, 0.0, n, 0};
    hy__threadpool_each(tp, n, assign_image, &c);
    double tss = 0.0;
    int nfg = 0;
    for (int b = 0; b < n; b++) {
        tss += l->part[(size_t)b * 4];
        nfg += l->nfg[b];
    }
    l->inv_tss = 1.0 / (tss > 1.0 ? tss : 1.0);
    l->n_cur = n;
    out->n_fg = nfg;
    return loss_all(l, p, out, grad, 0, tp);
}

static hy_status check_views(const hy__v8loss *l, const hy__tview *p, const hy__tview *grad) {
    int no = 4 * l->p.reg_max + l->p.nc;
    for (int i = 0; i < l->p.n_levels; i++) {
        if (!p[i].d || p[i].n != l->n_cur || p[i].c != no || p[i].h != l->lh[i] || p[i].w != l->lw[i] ||
            p[i].bs < (size_t)no * p[i].h * p[i].w)
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: head map %d differs from the assigned call's", i);
        if (grad && (!grad[i].d || grad[i].n != l->n_cur || grad[i].c != no || grad[i].h != p[i].h ||
                     grad[i].w != p[i].w || grad[i].bs < (size_t)no * p[i].h * p[i].w))
            return hy__error(HY_ERR_INVALID_ARG, "v8loss: grad view %d does not match its head map", i);
    }
    return HY_OK;
}

hy_status hy__v8loss_compute_fixed(hy__v8loss *l, const hy__tview *p, hy__v8loss_out *out, const hy__tview *grad,
                                   hy__threadpool *tp) {
    if (!l || !p || !out) return hy__error(HY_ERR_INVALID_ARG, "v8loss: NULL argument");
    if (l->n_cur == 0) return hy__error(HY_ERR_INVALID_ARG, "v8loss: no assignment yet");
    hy_status st = check_views(l, p, grad);
    if (st) return st;
    int nfg = 0;
    for (int b = 0; b < l->n_cur; b++) nfg += l->nfg[b];
    out->n_fg = nfg;
    return loss_all(l, p, out, grad, 1, tp);
}

const int *hy__v8loss_assigned(const hy__v8loss *l, int b, int *n_anchors) {
    if (!l || l->n_cur == 0 || b < 0 || b >= l->n_cur) return NULL;
    if (n_anchors) *n_anchors = l->A_cur;
    return l->agt + (size_t)b * l->A;
}

static hy_status loss_all(hy__v8loss *l, const hy__tview *p, hy__v8loss_out *out, const hy__tview *grad,
                          int fixed, hy__threadpool *tp) {
    int n = l->n_cur;
    ctx c = {l, p, grad, l->inv_tss, n, fixed};
    hy__threadpool_each(tp, n, loss_image, &c);
    double box = 0.0, cls = 0.0, dfl = 0.0;
    for (int b = 0; b < n; b++) {
        box += l->part[(size_t)b * 4 + 1];
        cls += l->part[(size_t)b * 4 + 2];
        dfl += l->part[(size_t)b * 4 + 3];
    }
    out->box = box * c.inv_tss * l->p.box;
    out->cls = cls * c.inv_tss * l->p.cls;
    out->dfl = dfl * c.inv_tss * l->p.dfl;
    out->total = (out->box + out->cls + out->dfl) * n;
    return HY_OK;
}
