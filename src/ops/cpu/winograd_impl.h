/* Winograd F(4x4, 3x3) input / output transforms, included by each ISA's micro-kernel file so
 * they are compiled (and auto-vectorised) with that file's target flags. The including file
 * defines WINO_ACT(x, n, act, y): its vectorised activation.
 *
 * Tiles: output tile (ty, tx) is rows 4ty..4ty+3, columns 4tx..4tx+3; its 6x6 input tile starts
 * at (4ty - 1, 4tx - 1) (pad 1). Tiles live on a flat grid q = ty*twp + tx, twp = tw + 1 (one
 * pad column per tile row), so every transform is a flat, unit-stride loop over q:
 *   xs[py*4 + px][i][j] = xpad[4i + py][4j + px]        16 phase planes of the padded input
 *   tap (ky, kx) of tile q = xs[(ky%4)*4 + kx%4][q + (ky/4)*twp + kx/4]
 * V = BT d B is applied separably (along kx, then ky), Y = AT M A likewise (along c, then r).
 *   BT = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   AT = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] */
#ifndef HY_OPS_CPU_WINOGRAD_IMPL_H
#define HY_OPS_CPU_WINOGRAD_IMPL_H

#include <string.h>

/* V[xi = r*6 + c][(ty - ty0)*twp + tx] for tile rows [ty0, ty1), every tx < twp, of one
 * channel x (h, w). v: plane xi at v + xi*vs. tmp: 40 * (ty1 - ty0 + 1) * twp + 16 floats. */
static void wino_in(const float *x, int h, int w, int ty0, int ty1, int twp, float *tmp,
                    float *v, ptrdiff_t vs) {
    const int rows = ty1 - ty0 + 1; // phase-plane rows: tile row i needs rows i and i + 1
    const ptrdiff_t ps = (ptrdiff_t)rows * twp;
    float *const xs = tmp;               // (16, rows, twp) + 16 zero floats: q + 1 reads
    float *const hh = xs + 16 * ps + 16; // (4 py, 6 c, rows * twp)
    for (int i = 0; i < rows; i++)
        for (int py = 0; py < 4; py++) {
            const int yy = 4 * (ty0 + i) + py - 1;
            const float *src = yy >= 0 && yy < h ? x + (ptrdiff_t)yy * w : NULL;
            for (int px = 0; px < 4; px++) {
                float *dst = xs + (py * 4 + px) * ps + (ptrdiff_t)i * twp;
                // column 4j + px - 1 is inside x for j in [j0, j1)
                const int j0 = HY_MIN(px == 0 ? 1 : 0, twp);
                const int j1 = src && px <= w ? HY_MAX(HY_MIN((w - px) / 4 + 1, twp), j0) : j0;
                for (int j = 0; j < j0; j++) dst[j] = 0.0f;
                if (src)
                    for (int j = j0; j < j1; j++) dst[j] = src[4 * j + px - 1];
                for (int j = j1; j < twp; j++) dst[j] = 0.0f;
            }
        }
    memset(xs + 16 * ps, 0, 16 * sizeof(float));
    // along kx: hh[py][c][q] = sum_kx BT[c][kx] * xs[py*4 + kx%4][q + kx/4]
    for (int py = 0; py < 4; py++) {
        const float *restrict p0 = xs + (py * 4 + 0) * ps, *restrict p1 = xs + (py * 4 + 1) * ps;
        const float *restrict p2 = xs + (py * 4 + 2) * ps, *restrict p3 = xs + (py * 4 + 3) * ps;
        float *restrict o0 = hh + (py * 6 + 0) * ps, *restrict o1 = hh + (py * 6 + 1) * ps;
        float *restrict o2 = hh + (py * 6 + 2) * ps, *restrict o3 = hh + (py * 6 + 3) * ps;
        float *restrict o4 = hh + (py * 6 + 4) * ps, *restrict o5 = hh + (py * 6 + 5) * ps;
        #pragma GCC ivdep
        for (ptrdiff_t q = 0; q < ps; q++) {
            const float d0 = p0[q], d1 = p1[q], d2 = p2[q], d3 = p3[q], d4 = p0[q + 1],
                        d5 = p1[q + 1];
            const float t12 = d1 + d2, u12 = d1 - d2, t42 = d4 - d2, u31 = d3 - d1;
            o0[q] = 4.0f * d0 - 5.0f * d2 + d4;
            o1[q] = (d3 + d4) - 4.0f * t12;
            o2[q] = (d4 - d3) + 4.0f * u12;
            o3[q] = t42 + 2.0f * u31;
            o4[q] = t42 - 2.0f * u31;
            o5[q] = 4.0f * d1 - 5.0f * d3 + d5;
        }
    }
    // along ky: v[r*6 + c][q] = sum_ky BT[r][ky] * hh[ky%4][c][q + (ky/4)*twp]
    const ptrdiff_t n = (ptrdiff_t)(ty1 - ty0) * twp;
    for (int c = 0; c < 6; c++) {
        const float *restrict h0 = hh + (0 * 6 + c) * ps, *restrict h1 = hh + (1 * 6 + c) * ps;
        const float *restrict h2 = hh + (2 * 6 + c) * ps, *restrict h3 = hh + (3 * 6 + c) * ps;
        const float *restrict h4 = h0 + twp, *restrict h5 = h1 + twp;
        float *restrict o0 = v + (0 * 6 + c) * vs, *restrict o1 = v + (1 * 6 + c) * vs;
        float *restrict o2 = v + (2 * 6 + c) * vs, *restrict o3 = v + (3 * 6 + c) * vs;
        float *restrict o4 = v + (4 * 6 + c) * vs, *restrict o5 = v + (5 * 6 + c) * vs;
        #pragma GCC ivdep
        for (ptrdiff_t q = 0; q < n; q++) {
            const float d0 = h0[q], d1 = h1[q], d2 = h2[q], d3 = h3[q], d4 = h4[q], d5 = h5[q];
            const float t12 = d1 + d2, u12 = d1 - d2, t42 = d4 - d2, u31 = d3 - d1;
            o0[q] = 4.0f * d0 - 5.0f * d2 + d4;
            o1[q] = (d3 + d4) - 4.0f * t12;
            o2[q] = (d4 - d3) + 4.0f * u12;
            o3[q] = t42 + 2.0f * u31;
            o4[q] = t42 - 2.0f * u31;
            o5[q] = 4.0f * d1 - 5.0f * d3 + d5;
        }
    }
}

/* y rows [4ty0, min(4ty1, oh)) of one output channel from M[xi][(ty - ty0)*twp + tx] (plane
 * xi at m + xi*ms):
 * Y = AT M A + bias, act, + add (same layout as y, or NULL). tmp: 40 * (ty1 - ty0) * twp. */
static void wino_out(const float *m, ptrdiff_t ms, int ty0, int ty1, int twp, float bias,
                     int act, const float *add, float *y, int oh, int ow, float *tmp) {
    const ptrdiff_t n = (ptrdiff_t)(ty1 - ty0) * twp;
    float *const g = tmp;           // (6 r, 4 j, n)
    float *const yt = tmp + 24 * n; // (4 i, 4 j, n)
    for (int r = 0; r < 6; r++) {
        const float *restrict m0 = m + (r * 6 + 0) * ms, *restrict m1 = m + (r * 6 + 1) * ms;
        const float *restrict m2 = m + (r * 6 + 2) * ms, *restrict m3 = m + (r * 6 + 3) * ms;
        const float *restrict m4 = m + (r * 6 + 4) * ms, *restrict m5 = m + (r * 6 + 5) * ms;
        float *restrict o0 = g + (r * 4 + 0) * n, *restrict o1 = g + (r * 4 + 1) * n;
        float *restrict o2 = g + (r * 4 + 2) * n, *restrict o3 = g + (r * 4 + 3) * n;
        #pragma GCC ivdep
        for (ptrdiff_t q = 0; q < n; q++) {
            const float a12 = m1[q] + m2[q], s12 = m1[q] - m2[q];
            const float a34 = m3[q] + m4[q], s34 = m3[q] - m4[q];
            o0[q] = m0[q] + a12 + a34;
            o1[q] = s12 + 2.0f * s34;
            o2[q] = a12 + 4.0f * a34;
            o3[q] = s12 + 8.0f * s34 + m5[q];
        }
    }
    for (int j = 0; j < 4; j++) {
        const float *restrict g0 = g + (0 * 4 + j) * n, *restrict g1 = g + (1 * 4 + j) * n;
        const float *restrict g2 = g + (2 * 4 + j) * n, *restrict g3 = g + (3 * 4 + j) * n;
        const float *restrict g4 = g + (4 * 4 + j) * n, *restrict g5 = g + (5 * 4 + j) * n;
        float *restrict o0 = yt + (0 * 4 + j) * n, *restrict o1 = yt + (1 * 4 + j) * n;
        float *restrict o2 = yt + (2 * 4 + j) * n, *restrict o3 = yt + (3 * 4 + j) * n;
        #pragma GCC ivdep
        for (ptrdiff_t q = 0; q < n; q++) {
            const float a12 = g1[q] + g2[q], s12 = g1[q] - g2[q];
            const float a34 = g3[q] + g4[q], s34 = g3[q] - g4[q];
            o0[q] = g0[q] + a12 + a34 + bias;
            o1[q] = s12 + 2.0f * s34 + bias;
            o2[q] = a12 + 4.0f * a34 + bias;
            o3[q] = s12 + 8.0f * s34 + g5[q] + bias;
        }
    }
    if (act != HY_ACT_NONE) WINO_ACT(yt, (size_t)(16 * n), act, yt);
    // scatter: y[4ty + i][4tx + j] = yt[i][j][(ty - ty0)*twp + tx] (+ add), inside (oh, ow)
    const int full = ow / 4, rest = ow - 4 * full;
    for (int ty = ty0; ty < ty1; ty++)
        for (int i = 0; i < 4; i++) {
            const int oy = 4 * ty + i;
            if (oy >= oh) break;
            const ptrdiff_t qr = (ptrdiff_t)(ty - ty0) * twp;
            const float *restrict s0 = yt + (i * 4 + 0) * n + qr, *restrict s1 = yt + (i * 4 + 1) * n + qr;
            const float *restrict s2 = yt + (i * 4 + 2) * n + qr, *restrict s3 = yt + (i * 4 + 3) * n + qr;
            float *restrict yr = y + (ptrdiff_t)oy * ow;
            if (add) {
                const float *restrict ar = add + (ptrdiff_t)oy * ow;
                #pragma GCC ivdep
                for (int tx = 0; tx < full; tx++) {
                    yr[4 * tx + 0] = s0[tx] + ar[4 * tx + 0];
                    yr[4 * tx + 1] = s1[tx] + ar[4 * tx + 1];
                    yr[4 * tx + 2] = s2[tx] + ar[4 * tx + 2];
                    yr[4 * tx + 3] = s3[tx] + ar[4 * tx + 3];
                }
            } else {
                #pragma GCC ivdep
                for (int tx = 0; tx < full; tx++) {
                    yr[4 * tx + 0] = s0[tx];
                    yr[4 * tx + 1] = s1[tx];
                    yr[4 * tx + 2] = s2[tx];
                    yr[4 * tx + 3] = s3[tx];
                }
            }
            const float *sl[4] = { s0, s1, s2, s3 };
            for (int j = 0; j < rest; j++)
                yr[4 * full + j] = sl[j][full] + (add ? add[(ptrdiff_t)oy * ow + 4 * full + j] : 0.0f);
        }
}

#endif
