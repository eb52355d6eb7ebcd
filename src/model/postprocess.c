/* Ultralytics non_max_suppression (8.0.x) for a single image, single label per box:
 * conf = max class score (strictly > conf; YOLOv5: objectness > conf first, then the max of
 * objectness x class score), optional class filter, sort by conf desc,
 * at most 30000 boxes into NMS, class-aware greedy NMS (suppress IoU > iou, as torchvision),
 * keep at most max_det. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_impl.h"

#define MAX_NMS 30000

float hy__box_iou(const float *a, const float *b) {
    float iw = HY_MIN(a[2], b[2]) - HY_MAX(a[0], b[0]);
    float ih = HY_MIN(a[3], b[3]) - HY_MAX(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0.f;
    float inter = iw * ih;
    float ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return ua > 0 ? inter / ua : 0.f;
}

static int by_conf_desc(const void *a, const void *b) {
    const hy__cand *x = a, *y = b;
    if (x->conf != y->conf) return x->conf < y->conf ? 1 : -1;
    return 0;
}

/* YOLOv5's candidates (non_max_suppression, v7.0): objectness > conf first, then the best of
 * obj * cls per row; out is (A, 5 + nc) rows. */
static size_t cands_objectness(hy_context *ctx, const float *out, int nc, int A, const hy_detect_params *p) {
    size_t n = 0;
    const size_t no = 5 + (size_t)nc;
    for (int a = 0; a < A; a++) {
        const float *r = out + (size_t)a * no, obj = r[4];
        if (!(obj > p->conf)) continue;
        float best = r[5] * obj;
        int arg = 0;
        for (int k = 1; k < nc; k++) {
            float v = r[5 + k] * obj;
            if (v > best) best = v, arg = k;
        }
        if (!(best > p->conf)) continue;
        if (p->classes && p->n_classes > 0) {
            int ok = 0;
            for (int i = 0; i < p->n_classes && !ok; i++) ok = p->classes[i] == arg;
            if (!ok) continue;
        }
        hy__cand *c = &ctx->cands[n++];
        *c = (hy__cand){r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2, best, arg};
    }
    return n;
}

/* YOLOv8's candidates: the best class score per column; out is (4 + nc, A). */
static size_t cands_scores(hy_context *ctx, const float *out, int nc, int A, const hy_detect_params *p) {
    float *best = ctx->pp_best;
    int *arg = ctx->pp_arg;
    /* row-wise max over classes keeps memory access sequential */
    for (int a = 0; a < A; a++) {
        best[a] = out[(size_t)4 * A + a];
        arg[a] = 0;
    }
    for (int k = 1; k < nc; k++) {
        const float *row = out + (size_t)(4 + k) * A;
        for (int a = 0; a < A; a++)
            if (row[a] > best[a]) {
                best[a] = row[a];
                arg[a] = k;
            }
    }
    size_t n = 0;
    for (int a = 0; a < A; a++) {
        if (!(best[a] > p->conf)) continue;
        if (p->classes && p->n_classes > 0) {
            int ok = 0;
            for (int i = 0; i < p->n_classes && !ok; i++) ok = p->classes[i] == arg[a];
            if (!ok) continue;
        }
        float cx = out[a], cy = out[(size_t)A + a], w = out[(size_t)2 * A + a], h = out[(size_t)3 * A + a];
        hy__cand *c = &ctx->cands[n++];
        c->x1 = cx - w / 2;
        c->y1 = cy - h / 2;
        c->x2 = cx + w / 2;
        c->y2 = cy + h / 2;
        c->conf = best[a];
        c->cls = arg[a];
    }
    return n;
}

size_t hy__postprocess(hy_context *ctx, const float *out, int nc, int A, int objectness, const hy_detect_params *p,
                       hy_detection *dets, size_t max_dets) {
    size_t n = objectness ? cands_objectness(ctx, out, nc, A, p) : cands_scores(ctx, out, nc, A, p);
    qsort(ctx->cands, n, sizeof *ctx->cands, by_conf_desc);
    if (n > MAX_NMS) n = MAX_NMS;
    /* greedy NMS; keep[i] = 1 while not suppressed */
    int *keep = ctx->keep;
    for (size_t i = 0; i < n; i++) keep[i] = 1;
    size_t nk = 0;
    for (size_t i = 0; i < n && nk < max_dets; i++) {
        if (!keep[i]) continue;
        const hy__cand *ci = &ctx->cands[i];
        hy_detection *d = &dets[nk++];
        d->x1 = ci->x1;
        d->y1 = ci->y1;
        d->x2 = ci->x2;
        d->y2 = ci->y2;
        d->confidence = ci->conf;
        d->class_id = ci->cls;
        for (size_t j = i + 1; j < n; j++) {
            if (!keep[j]) continue;
            if (!p->agnostic_nms && ctx->cands[j].cls != ci->cls) continue;
            if (hy__box_iou(&ci->x1, &ctx->cands[j].x1) > p->iou) keep[j] = 0;
        }
    }
    return nk;
}

// --- multi-label NMS (val) -----------------------------------------------------------------------

#define MAX_WH 7680.0f /* Ultralytics' class offset */

typedef struct nms_key {
    float conf;
    uint32_t idx;
} nms_key;

static int by_key_desc(const void *a, const void *b) { // stable: ties keep candidate order
    const nms_key *x = a, *y = b;
    if (x->conf != y->conf) return x->conf < y->conf ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void hy__nms_buf_free(hy__nms_buf *b) {
    if (!b) return;
    hy__free(b->cands);
    hy__free(b->order);
    hy__free(b->obox);
    hy__free(b->head);
    hy__free(b->next);
    hy__free(b->row);
    memset(b, 0, sizeof *b);
}

/* Box and score of (anchor a, class k) of either layout (see hy__postprocess_multilabel);
 * objectness rows whose obj is not above conf score 0 (YOLOv5 drops them first). */
static inline float ml_score(const float *out, int nc, int A, int objectness, float conf, int a, int k) {
    if (!objectness) return out[(size_t)(4 + k) * A + a];
    const float *r = out + (size_t)a * (5 + (size_t)nc);
    return r[4] > conf ? r[5 + k] * r[4] : 0.f;
}

hy_status hy__postprocess_multilabel(const float *out, int nc, int A, int objectness, const hy_detect_params *p,
                                     hy__nms_buf *b, hy_detection *dets, size_t max_dets,
                                     size_t *n_out) {
    const float conf = p->conf;
    // count candidates first so the buffers grow once
    size_t n = 0;
    if (objectness) {
        for (int a = 0; a < A; a++)
            for (int k = 0; k < nc; k++) n += ml_score(out, nc, A, 1, conf, a, k) > conf;
    } else {
        for (int k = 0; k < nc; k++) {
            const float *row = out + (size_t)(4 + k) * A;
            for (int a = 0; a < A; a++) n += row[a] > conf;
        }
    }
    if (n > b->cap) {
        hy__cand *c = hy__realloc(b->cands, n * sizeof *c);
        if (c) b->cands = c;
        nms_key *o = hy__realloc(b->order, n * sizeof *o);
        if (o) b->order = o;
        float *ob = hy__realloc(b->obox, n * 5 * sizeof *ob);
        if (ob) b->obox = ob;
        if (!c || !o || !ob)
            return hy__error(HY_ERR_NOMEM, "out of memory for %zu NMS candidates", n);
        b->cap = n;
    }
    const int n_head = p->agnostic_nms ? 1 : nc;
    if (n_head > b->n_head) {
        int *h = hy__realloc(b->head, (size_t)n_head * sizeof *h);
        if (!h) return hy__error(HY_ERR_NOMEM, "out of memory");
        b->head = h;
        b->n_head = n_head;
    }
    if (max_dets > b->n_next) {
        int *nx = hy__realloc(b->next, max_dets * sizeof *nx);
        if (nx) b->next = nx;
        int *rw = hy__realloc(b->row, max_dets * sizeof *rw);
        if (rw) b->row = rw;
        if (!nx || !rw) return hy__error(HY_ERR_NOMEM, "out of memory");
        b->n_next = max_dets;
    }
    // candidates in torch.where(cls > conf) order: anchor-major, then class
    size_t m = 0;
    for (int a = 0; a < A; a++) {
        const float *r = out + (size_t)a * (5 + (size_t)nc);
        if (objectness && !(r[4] > conf)) continue;
        const float cx = objectness ? r[0] : out[a], cy = objectness ? r[1] : out[(size_t)A + a],
                    w = objectness ? r[2] : out[(size_t)2 * A + a], h = objectness ? r[3] : out[(size_t)3 * A + a];
        const float dw = w / 2, dh = h / 2;
        for (int k = 0; k < nc; k++) {
            const float s = ml_score(out, nc, A, objectness, conf, a, k);
            if (!(s > conf)) continue;
            if (p->classes && p->n_classes > 0) {
                int ok = 0;
                for (int i = 0; i < p->n_classes && !ok; i++) ok = p->classes[i] == k;
                if (!ok) continue;
            }
            b->cands[m] = (hy__cand){cx - dw, cy - dh, cx + dw, cy + dh, s, k};
            m++;
        }
    }
    nms_key *order = b->order;
    for (size_t i = 0; i < m; i++) order[i] = (nms_key){b->cands[i].conf, (uint32_t)i};
    if (m > 1) qsort(order, m, sizeof *order, by_key_desc);
    if (m > MAX_NMS) m = MAX_NMS;
    // torchvision nms on boxes + class * max_wh, float32: areas and overlaps of the offset boxes
    for (size_t i = 0; i < m; i++) {
        const hy__cand *c = &b->cands[order[i].idx];
        const float off = p->agnostic_nms ? 0.f : (float)c->cls * MAX_WH;
        float *o = b->obox + 5 * i;
        o[0] = c->x1 + off;
        o[1] = c->y1 + off;
        o[2] = c->x2 + off;
        o[3] = c->y2 + off;
        o[4] = (o[2] - o[0]) * (o[3] - o[1]);
    }
    // Greedy in score order: a candidate survives when no kept one overlaps it by more than
    // iou. Boxes of different classes are 7680 px apart, so only the same class is compared.
    for (int k = 0; k < n_head; k++) b->head[k] = -1;
    size_t nk = 0;
    /* torchvision compares the float IoU with the Python float the user wrote (0.6), not with
     * float(0.6) = 0.6000000238: the shortest decimal that reads back as p->iou */
    char dec[32];
    snprintf(dec, sizeof dec, "%.7g", (double)p->iou);
    const double thr = strtod(dec, NULL);
    for (size_t i = 0; i < m && nk < max_dets; i++) {
        const hy__cand *c = &b->cands[order[i].idx];
        const float *oi = b->obox + 5 * i;
        const int slot = p->agnostic_nms ? 0 : c->cls;
        int keep = 1;
        for (int j = b->head[slot]; j >= 0 && keep; j = b->next[j]) {
            const float *oj = b->obox + 5 * (size_t)b->row[j];
            const float xx1 = HY_MAX(oj[0], oi[0]), yy1 = HY_MAX(oj[1], oi[1]);
            const float xx2 = HY_MIN(oj[2], oi[2]), yy2 = HY_MIN(oj[3], oi[3]);
            const float iw = HY_MAX(0.f, xx2 - xx1), ih = HY_MAX(0.f, yy2 - yy1);
            const float inter = iw * ih;
            const float ovr = inter / (oj[4] + oi[4] - inter);
            if ((double)ovr > thr) keep = 0;
        }
        if (!keep) continue;
        dets[nk] = (hy_detection){c->x1, c->y1, c->x2, c->y2, c->conf, c->cls};
        b->row[nk] = (int)i;
        b->next[nk] = b->head[slot];
        b->head[slot] = (int)nk;
        nk++;
    }
    *n_out = nk;
    return HY_OK;
}
