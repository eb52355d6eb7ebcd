#include "ops/cpu/detect.h"
#include "ops/cpu/ops_cpu.h"

#include <string.h>

typedef struct {
    const hy__detect_params *p;
    const hy__detect_level *lv;
    const float *dfl;
    float *out;
    int A;
} detect_ctx;

#define DET_CHUNK 64 /* anchors per vector pass (stack buffers) */

/* DFL vectorised across anchors: for a chunk of contiguous anchors, each of the 4 sides does
 * max over the R bins, then R passes of exp (the kernels' vexp) accumulating sum and
 * sum * proj, all unit-stride over the chunk. */
static void detect_task(void *vctx, int ith, int nth) {
    const detect_ctx *c = vctx;
    const hy__detect_params *p = c->p;
    const int R = p->reg_max, nc = p->nc, A = c->A, isa = hy__cpu_isa_best();
    float proj[64];
    for (int j = 0; j < R; j++) proj[j] = c->dfl ? c->dfl[j] : (float)j;
    int base = 0;
    for (int l = 0; l < p->n_levels; l++) {
        const hy__detect_level *lv = &c->lv[l];
        const int hw = lv->h * lv->w;
        const float s = (float)p->stride[l];
        const int a0 = (int)((int64_t)hw * ith / nth), a1 = (int)((int64_t)hw * (ith + 1) / nth);
        for (int ab = a0; ab < a1; ab += DET_CHUNK) {
            const int n = HY_MIN(DET_CHUNK, a1 - ab);
            float d[4][DET_CHUNK], m[DET_CHUNK], sum[DET_CHUNK], acc[DET_CHUNK], e[DET_CHUNK];
            for (int k = 0; k < 4; k++) {
                /* softmax over R bins of side k, then expectation with proj */
                const float *bin = lv->box + (size_t)(k * R) * hw + ab;
                for (int i = 0; i < n; i++) m[i] = bin[i];
                for (int j = 1; j < R; j++) {
                    const float *bj = bin + (size_t)j * hw;
                    for (int i = 0; i < n; i++) m[i] = bj[i] > m[i] ? bj[i] : m[i];
                }
                for (int i = 0; i < n; i++) sum[i] = acc[i] = 0.0f;
                for (int j = 0; j < R; j++) {
                    const float *bj = bin + (size_t)j * hw;
                    for (int i = 0; i < n; i++) e[i] = bj[i] - m[i];
                    hy__cpu_vexp(e, (size_t)n, e, isa);
                    const float pj = proj[j];
                    for (int i = 0; i < n; i++) {
                        sum[i] += e[i];
                        acc[i] += e[i] * pj;
                    }
                }
                for (int i = 0; i < n; i++) d[k][i] = acc[i] / sum[i];
            }
            for (int i = 0; i < n; i++) {
                const int a = ab + i;
                const float ax = (float)(a % lv->w) + 0.5f, ay = (float)(a / lv->w) + 0.5f;
                const float x1 = ax - d[0][i], y1 = ay - d[1][i], x2 = ax + d[2][i], y2 = ay + d[3][i];
                float *o = c->out + base + a;
                o[0] = (x1 + x2) * 0.5f * s;
                o[(size_t)A] = (y1 + y2) * 0.5f * s;
                o[(size_t)2 * A] = (x2 - x1) * s;
                o[(size_t)3 * A] = (y2 - y1) * s;
            }
        }
        /* class rows: (nc, hw) block copy into columns [base, base + hw) */
        const int c0 = (int)((int64_t)nc * ith / nth), c1 = (int)((int64_t)nc * (ith + 1) / nth);
        for (int k = c0; k < c1; k++)
            memcpy(c->out + (size_t)(4 + k) * A + base, lv->cls + (size_t)k * hw, (size_t)hw * sizeof(float));
        base += hw;
    }
}

void hy__cpu_detect(const hy__detect_params *p, const hy__detect_level *lv, const float *dfl, float *out,
                    hy__threadpool *tp) {
    HY_ASSERT(p->reg_max > 0 && p->reg_max <= 64);
    int A = 0;
    for (int l = 0; l < p->n_levels; l++) A += lv[l].h * lv[l].w;
    detect_ctx c = {p, lv, dfl, out, A};
    hy__threadpool_run(tp, detect_task, &c);
}

// --- YOLOv5 Detect decode ------------------------------------------------------------

typedef struct danchor_ctx {
    const hy__detect_anchor_params *p;
    const hy__detect_level *lv;
    float *out;
    long item0[5]; /* first work item of each level; item0[n_levels] = total */
    size_t row0[5]; /* first output row of each level */
} danchor_ctx;

#define DA_CHUNK 64 /* pixels of one anchor per item (stack buffers) */

/* One item = DA_CHUNK contiguous pixels of one (level, anchor): each field's run of pixels is
 * contiguous in the input, so the sigmoid is the kernels' vectorised act over it; the results
 * are then scattered into the item's (n, 5 + nc) output rows (a few KB, in L1). */
static void danchor_task(void *vctx, int ith, int nth) {
    const danchor_ctx *c = vctx;
    const hy__detect_anchor_params *p = c->p;
    const int no = 5 + p->nc, isa = hy__cpu_isa_best();
    const long total = c->item0[p->n_levels];
    const long k0 = total * ith / nth, k1 = total * (ith + 1) / nth;
    float sg[4][DA_CHUNK], t[DA_CHUNK];
    int l = 0;
    for (long k = k0; k < k1; k++) {
        while (k >= c->item0[l + 1]) l++;
        const hy__detect_level *lv = &c->lv[l];
        const int w = lv->w, hw = lv->h * lv->w, per_anchor = (hw + DA_CHUNK - 1) / DA_CHUNK;
        const int a = (int)((k - c->item0[l]) / per_anchor), i0 = (int)((k - c->item0[l]) % per_anchor) * DA_CHUNK;
        const int n = HY_MIN(DA_CHUNK, hw - i0);
        const float s = (float)p->stride[l], aw = p->anchors[l][2 * a], ah = p->anchors[l][2 * a + 1];
        const float *x = lv->box + (size_t)a * (size_t)no * (size_t)hw + i0; /* field j at x + j * hw */
        float *o = c->out + (c->row0[l] + (size_t)a * (size_t)hw + (size_t)i0) * (size_t)no;
        for (int j = 0; j < 4; j++) hy__cpu_act(x + (size_t)j * hw, (size_t)n, HY_ACT_SIGMOID, sg[j], isa);
        for (int i = 0; i < n; i++) {
            const int cx = (i0 + i) % w, cy = (i0 + i) / w;
            const float s2 = 2.0f * sg[2][i], s3 = 2.0f * sg[3][i];
            float *r = o + (size_t)i * no;
            r[0] = (2.0f * sg[0][i] - 0.5f + (float)cx) * s;
            r[1] = (2.0f * sg[1][i] - 0.5f + (float)cy) * s;
            r[2] = s2 * s2 * aw;
            r[3] = s3 * s3 * ah;
        }
        for (int j = 4; j < no; j++) {
            hy__cpu_act(x + (size_t)j * hw, (size_t)n, HY_ACT_SIGMOID, t, isa);
            for (int i = 0; i < n; i++) o[(size_t)i * no + j] = t[i];
        }
    }
}

void hy__cpu_detect_anchor(const hy__detect_anchor_params *p, const hy__detect_level *lv, float *out,
                           hy__threadpool *tp) {
    HY_ASSERT(p->nc >= 0 && p->na >= 1 && p->na <= HY_DETECT_MAX_ANCHORS && p->n_levels >= 1 && p->n_levels <= 4);
    danchor_ctx c = {.p = p, .lv = lv, .out = out};
    for (int l = 0; l < p->n_levels; l++) {
        const int hw = lv[l].h * lv[l].w;
        c.item0[l + 1] = c.item0[l] + (long)p->na * ((hw + DA_CHUNK - 1) / DA_CHUNK);
        c.row0[l + 1] = c.row0[l] + (size_t)p->na * (size_t)hw;
    }
    hy__threadpool_run(tp, danchor_task, &c);
}
