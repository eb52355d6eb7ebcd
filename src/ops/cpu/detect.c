#include "ops/cpu/detect.h"

#include <math.h>
#include <string.h>

typedef struct {
    const hy__detect_params *p;
    const hy__detect_level *lv;
    const float *dfl;
    float *out;
    int A;
} detect_ctx;

static void detect_task(void *vctx, int ith, int nth) {
    const detect_ctx *c = vctx;
    const hy__detect_params *p = c->p;
    const int R = p->reg_max, nc = p->nc, A = c->A;
    float proj[64];
    for (int j = 0; j < R; j++) proj[j] = c->dfl ? c->dfl[j] : (float)j;
    int base = 0;
    for (int l = 0; l < p->n_levels; l++) {
        const hy__detect_level *lv = &c->lv[l];
        const int hw = lv->h * lv->w;
        const float s = (float)p->stride[l];
        const int a0 = (int)((int64_t)hw * ith / nth), a1 = (int)((int64_t)hw * (ith + 1) / nth);
        for (int a = a0; a < a1; a++) {
            float d[4];
            for (int k = 0; k < 4; k++) {
                /* softmax over R bins of side k, then expectation with proj */
                const float *bin = lv->box + (size_t)(k * R) * hw + a;
                float m = bin[0];
                for (int j = 1; j < R; j++) m = fmaxf(m, bin[(size_t)j * hw]);
                float sum = 0.f, acc = 0.f;
                for (int j = 0; j < R; j++) {
                    float e = expf(bin[(size_t)j * hw] - m);
                    sum += e;
                    acc += e * proj[j];
                }
                d[k] = acc / sum;
            }
            const float ax = (float)(a % lv->w) + 0.5f, ay = (float)(a / lv->w) + 0.5f;
            const float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
            float *o = c->out + base + a;
            o[0] = (x1 + x2) * 0.5f * s;
            o[(size_t)A] = (y1 + y2) * 0.5f * s;
            o[(size_t)2 * A] = (x2 - x1) * s;
            o[(size_t)3 * A] = (y2 - y1) * s;
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
