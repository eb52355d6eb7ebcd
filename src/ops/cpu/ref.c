/* Reference CPU kernels: the spec every fast path is tested against. Plain loops, no tricks;
 * the conv accumulates in double so it is the more exact side of any comparison. */
#include "ops/cpu/ops_cpu.h"

#include <math.h>

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

void hy__cpu_conv2d_ref(const hy__conv2d_desc *d, const float *x, int h, int w, const float *wt,
                        const float *bias, const float *add, float *y) {
    const int oh = hy__conv_out(h, d->kh, d->stride, d->pad);
    const int ow = hy__conv_out(w, d->kw, d->stride, d->pad);
    HY_ASSERT(oh > 0 && ow > 0);
    for (int co = 0; co < d->cout; co++) {
        const float *wc = wt + (size_t)co * d->cin * d->kh * d->kw; // (cin, kh, kw)
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                double acc = bias ? bias[co] : 0.0;
                for (int ci = 0; ci < d->cin; ci++) {
                    for (int ky = 0; ky < d->kh; ky++) {
                        const int iy = oy * d->stride - d->pad + ky;
                        if (iy < 0 || iy >= h) continue; // zero padding
                        for (int kx = 0; kx < d->kw; kx++) {
                            const int ix = ox * d->stride - d->pad + kx;
                            if (ix < 0 || ix >= w) continue;
                            acc += (double)wc[(ci * d->kh + ky) * d->kw + kx] *
                                   x[((size_t)ci * h + iy) * w + ix];
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

void hy__cpu_maxpool_ref(const float *x, int c, int h, int w, int k, float *y) {
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

void hy__cpu_upsample2x_ref(const float *x, int c, int h, int w, float *y) {
    for (int ch = 0; ch < c; ch++)
        for (int oy = 0; oy < 2 * h; oy++)
            for (int ox = 0; ox < 2 * w; ox++)
                y[((size_t)ch * 2 * h + oy) * 2 * w + ox] =
                    x[((size_t)ch * h + oy / 2) * w + ox / 2];
}
