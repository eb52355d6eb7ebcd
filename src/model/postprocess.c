/* Ultralytics non_max_suppression (8.0.x) for a single image, single label per box:
 * conf = max class score (strictly > conf), optional class filter, sort by conf desc,
 * at most 30000 boxes into NMS, class-aware greedy NMS (suppress IoU > iou, as torchvision),
 * keep at most max_det. */
#include <stdlib.h>

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

size_t hy__postprocess(hy_model *m, const float *out, int nc, int A, const hy_detect_params *p, hy_detection *dets,
                       size_t max_dets) {
    float *best = m->pp_best;
    int *arg = m->pp_arg;
    /* row-wise max over classes keeps memory access sequential: out is (4 + nc, A) */
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
        hy__cand *c = &m->cands[n++];
        c->x1 = cx - w / 2;
        c->y1 = cy - h / 2;
        c->x2 = cx + w / 2;
        c->y2 = cy + h / 2;
        c->conf = best[a];
        c->cls = arg[a];
    }
    qsort(m->cands, n, sizeof *m->cands, by_conf_desc);
    if (n > MAX_NMS) n = MAX_NMS;
    /* greedy NMS; keep[i] = 1 while not suppressed */
    int *keep = m->keep;
    for (size_t i = 0; i < n; i++) keep[i] = 1;
    size_t nk = 0;
    for (size_t i = 0; i < n && nk < max_dets; i++) {
        if (!keep[i]) continue;
        const hy__cand *ci = &m->cands[i];
        hy_detection *d = &dets[nk++];
        d->x1 = ci->x1;
        d->y1 = ci->y1;
        d->x2 = ci->x2;
        d->y2 = ci->y2;
        d->confidence = ci->conf;
        d->class_id = ci->cls;
        for (size_t j = i + 1; j < n; j++) {
            if (!keep[j]) continue;
            if (!p->agnostic_nms && m->cands[j].cls != ci->cls) continue;
            if (hy__box_iou(&ci->x1, &m->cands[j].x1) > p->iou) keep[j] = 0;
        }
    }
    return nk;
}
