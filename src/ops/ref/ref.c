/* Reference kernels: the spec every fast path (and every backend) is tested against. Plain
 * loops, no tricks, no threads; the conv accumulates in double so it is the more exact side of
 * any comparison. */
#include "ops/ref/ref.h"

#include <math.h>
#include <string.h>

// --- activations (libm expf: the reference definition) -------------------------------

static float act_ref(float v, int act) {
    switch (act) {
    case HY_ACT_SILU:
        return v / (1.0f + expf(-v));
    case HY_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    default:
        return v;
    }
}

// --- conv2d ---------------------------------------------------------------------------

void hy__ref_conv2d(const hy__conv2d_desc *d, const float *x, int h, int w, const float *wt,
                    const float *bias, const float *add, float *y) {
    const int oh = hy__conv_out(h, d->kh, d->stride, d->pad);
    const int ow = hy__conv_out(w, d->kw, d->stride, d->pad);
    const int groups = d->groups > 1 ? d->groups : 1;
    const int cig = d->cin / groups, cog = d->cout / groups; /* channels per group */
    HY_ASSERT(oh > 0 && ow > 0 && cig * groups == d->cin && cog * groups == d->cout);
    for (int co = 0; co < d->cout; co++) {
        const float *wc = wt + (size_t)co * cig * d->kh * d->kw; // (cin / groups, kh, kw)
        const float *xg = x + (size_t)(co / cog) * cig * h * w;  // this group's input channels
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                double acc = bias ? bias[co] : 0.0;
                for (int ci = 0; ci < cig; ci++) {
                    for (int ky = 0; ky < d->kh; ky++) {
                        const int iy = oy * d->stride - d->pad + ky;
                        if (iy < 0 || iy >= h) continue; // zero padding
                        for (int kx = 0; kx < d->kw; kx++) {
                            const int ix = ox * d->stride - d->pad + kx;
                            if (ix < 0 || ix >= w) continue;
                            acc += (double)wc[(ci * d->kh + ky) * d->kw + kx] *
                                   xg[((size_t)ci * h + iy) * w + ix];
                        }
                    }
                }
                const size_t o = ((size_t)co * oh + oy) * ow + ox;
                float v = act_ref((float)acc, d->act);
                if (add) v += add[o]; // shortcut is added after the activation
                y[o] = v;
            }
        }
    }
}

// --- maxpool (stride 1, pad k/2, padding never wins) ----------------------------------

void hy__ref_maxpool(const float *x, int c, int h, int w, int k, float *y) {
    const int r = k / 2;
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w; // (h, w)
        for (int oy = 0; oy < h; oy++) {
            for (int ox = 0; ox < w; ox++) {
                float m = -INFINITY;
                for (int iy = oy - r; iy <= oy + r; iy++) {
                    if (iy < 0 || iy >= h) continue;
                    for (int ix = ox - r; ix <= ox + r; ix++) {
                        if (ix < 0 || ix >= w) continue;
                        const float v = xc[(size_t)iy * w + ix];
                        if (v > m) m = v;
                    }
                }
                y[((size_t)ch * h + oy) * w + ox] = m;
            }
        }
    }
}

// --- nearest upsample x2 --------------------------------------------------------------

void hy__ref_upsample2x(const float *x, int c, int h, int w, float *y) {
    for (int ch = 0; ch < c; ch++)
        for (int oy = 0; oy < 2 * h; oy++)
            for (int ox = 0; ox < 2 * w; ox++)
                y[((size_t)ch * 2 * h + oy) * 2 * w + ox] =
                    x[((size_t)ch * h + oy / 2) * w + ox / 2];
}

// --- YOLOv8 Detect decode (DFL softmax in double, libm exp) -----------------------------

void hy__ref_detect(const hy__detect_params *p, const hy__detect_level *lv, const float *dfl, float *out) {
    const int R = p->reg_max, nc = p->nc;
    HY_ASSERT(R > 0 && R <= 64 && p->n_levels <= 4);
    size_t A = 0;
    for (int l = 0; l < p->n_levels; l++) A += (size_t)lv[l].h * (size_t)lv[l].w;
    size_t base = 0;
    for (int l = 0; l < p->n_levels; l++) {
        const size_t hw = (size_t)lv[l].h * (size_t)lv[l].w;
        const float s = (float)p->stride[l];
        for (size_t a = 0; a < hw; a++) {
            float d[4];
            for (int k = 0; k < 4; k++) { /* softmax over the R bins of side k, expectation */
                const float *bin = lv[l].box + (size_t)k * R * hw + a;
                float m = bin[0];
                for (int j = 1; j < R; j++) m = bin[(size_t)j * hw] > m ? bin[(size_t)j * hw] : m;
                double sum = 0, acc = 0;
                for (int j = 0; j < R; j++) {
                    double e = exp((double)bin[(size_t)j * hw] - m);
                    sum += e;
                    acc += e * (dfl ? dfl[j] : j);
                }
                d[k] = (float)(acc / sum);
            }
            const float ax = (float)(a % (size_t)lv[l].w) + 0.5f, ay = (float)(a / (size_t)lv[l].w) + 0.5f;
            const float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
            float *o = out + base + a;
            o[0] = (x1 + x2) * 0.5f * s;
            o[A] = (y1 + y2) * 0.5f * s;
            o[2 * A] = (x2 - x1) * s;
            o[3 * A] = (y2 - y1) * s;
        }
        for (int k = 0; k < nc; k++)
            memcpy(out + (size_t)(4 + k) * A + base, lv[l].cls + (size_t)k * hw, hw * sizeof(float));
        base += hw;
    }
}

// --- YOLOv5 Detect decode (anchor based, objectness) ----------------------------------

void hy__ref_detect_anchor(const hy__detect_anchor_params *p, const hy__detect_level *lv, float *out) {
    const int no = 5 + p->nc;
    HY_ASSERT(p->nc >= 0 && p->na >= 1 && p->na <= HY_DETECT_MAX_ANCHORS && p->n_levels >= 1 && p->n_levels <= 4);
    float *o = out;
    for (int l = 0; l < p->n_levels; l++) {
        const int h = lv[l].h, w = lv[l].w;
        const size_t hw = (size_t)h * (size_t)w;
        const float s = (float)p->stride[l];
        for (int a = 0; a < p->na; a++) {
            const float aw = p->anchors[l][2 * a], ah = p->anchors[l][2 * a + 1];
            const float *x = lv[l].box + (size_t)a * (size_t)no * hw; /* (no, h, w) of anchor a */
            for (int cy = 0; cy < h; cy++)
                for (int cx = 0; cx < w; cx++, o += no) {
                    const size_t i = (size_t)cy * (size_t)w + (size_t)cx;
                    for (int j = 0; j < no; j++) o[j] = 1.0f / (1.0f + expf(-x[(size_t)j * hw + i]));
                    const float s2 = 2.0f * o[2], s3 = 2.0f * o[3];
                    o[0] = (2.0f * o[0] - 0.5f + (float)cx) * s;
                    o[1] = (2.0f * o[1] - 0.5f + (float)cy) * s;
                    o[2] = s2 * s2 * aw;
                    o[3] = s3 * s3 * ah;
                }
        }
    }
}
