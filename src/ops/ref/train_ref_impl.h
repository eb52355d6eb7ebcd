/* Template of the reference training kernels (no include guard: train_ref.c includes it once
 * per precision). The includer defines
 *   REAL       float or double (tensor element type)
 *   TV         the view type over REAL (hy__tview, hy__tview64)
 *   TR(x)      a file-local name for this precision (static helpers)
 *   TAPI(x)    an entry point's name (static tref32_x for float, hy__tref64_x for double)
 *   TAPI_LINK  `static` or nothing
 *   R_EXP      exp for REAL (expf, exp)
 * and the precision-independent helpers col_lo / col_hi. Meaning of every kernel:
 * ops/train_op.h. */

// --- small helpers -----------------------------------------------------------------------

static inline REAL *TR(img)(TV v, int n, int c) { return v.d + (size_t)n * v.bs + (size_t)c * v.h * v.w; }

static inline REAL TR(sigmoid)(REAL u) { return (REAL)1 / ((REAL)1 + R_EXP(-u)); }

static inline REAL TR(act)(REAL u, int act) { return act == HY_ACT_SILU ? u * TR(sigmoid)(u) : u; }

/* d act(u) / du */
static inline REAL TR(act_grad)(REAL u, int act) {
    if (act != HY_ACT_SILU) return (REAL)1;
    const REAL s = TR(sigmoid)(u);
    return s * ((REAL)1 + u * ((REAL)1 - s));
}

/* sum_i a[i] * b[i * sb] in double: 8 partial sums (a fixed order, which the compiler can
 * vectorise), then the tail. */
static double TR(dot)(const REAL *a, const REAL *b, int n, int sb) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    if (sb == 1) {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) p[j] += (double)a[i + j] * (double)b[i + j];
    } else {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) p[j] += (double)a[i + j] * (double)b[(size_t)(i + j) * sb];
    }
    double t = 0;
    for (; i < n; i++) t += (double)a[i] * (double)b[(size_t)i * sb];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])) + t;
}

static void TR(conv_check)(const hy__tconv *c, TV x, TV y) {
    HY_ASSERT(c->k >= 1 && c->stride >= 1 && c->pad >= 0);
    HY_ASSERT(x.c == c->cin && y.c == c->cout && x.n == y.n);
    HY_ASSERT(y.h == hy__conv_out(x.h, c->k, c->stride, c->pad) && y.w == hy__conv_out(x.w, c->k, c->stride, c->pad));
    HY_ASSERT(x.bs >= (size_t)x.c * x.h * x.w && y.bs >= (size_t)y.c * y.h * y.w);
}

// --- convolution -------------------------------------------------------------------------
// Output column ox reads input column ox * s - pad + kx; [col_lo, col_hi) are the ox for which
// that column lies inside the image (the rest reads zero padding).

TAPI_LINK void TAPI(conv_fwd)(const hy__tconv *c, TV x, const REAL *w, const REAL *b, TV y) {
    TR(conv_check)(c, x, y);
    const int k = c->k, s = c->stride, p = c->pad, oh = y.h, ow = y.w;
    for (int n = 0; n < x.n; n++) {
        for (int co = 0; co < c->cout; co++) {
            REAL *yp = TR(img)(y, n, co);
            const REAL b0 = b ? b[co] : (REAL)0;
            for (int i = 0; i < oh * ow; i++) yp[i] = b0;
            for (int ci = 0; ci < c->cin; ci++) {
                const REAL *xp = TR(img)(x, n, ci);
                const REAL *wk = w + ((size_t)co * c->cin + ci) * k * k;
                for (int ky = 0; ky < k; ky++) {
                    for (int kx = 0; kx < k; kx++) {
                        const REAL wv = wk[ky * k + kx];
                        const int lo = col_lo(kx, s, p), hi = col_hi(kx, s, p, x.w, ow), off = kx - p;
                        for (int oy = 0; oy < oh; oy++) {
                            const int iy = oy * s - p + ky;
                            if (iy < 0 || iy >= x.h) continue;
                            REAL *yr = yp + (size_t)oy * ow;
                            const REAL *xr = xp + (size_t)iy * x.w;
                            if (s == 1)
                                for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox + off];
                            else
                                for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * s + off];
                        }
                    }
                }
            }
        }
    }
}

TAPI_LINK void TAPI(conv_bwd_data)(const hy__tconv *c, TV dy, const REAL *w, TV dx, int acc) {
    TR(conv_check)(c, dx, dy);
    const int k = c->k, s = c->stride, p = c->pad, oh = dy.h, ow = dy.w;
    for (int n = 0; n < dx.n; n++) {
        for (int ci = 0; ci < c->cin; ci++) {
            REAL *xp = TR(img)(dx, n, ci);
            if (!acc)
                for (int i = 0; i < dx.h * dx.w; i++) xp[i] = (REAL)0;
            for (int co = 0; co < c->cout; co++) {
                const REAL *yp = TR(img)(dy, n, co);
                const REAL *wk = w + ((size_t)co * c->cin + ci) * k * k;
                for (int ky = 0; ky < k; ky++) {
                    for (int kx = 0; kx < k; kx++) {
                        const REAL wv = wk[ky * k + kx];
                        const int lo = col_lo(kx, s, p), hi = col_hi(kx, s, p, dx.w, ow), off = kx - p;
                        for (int oy = 0; oy < oh; oy++) {
                            const int iy = oy * s - p + ky;
                            if (iy < 0 || iy >= dx.h) continue;
                            const REAL *yr = yp + (size_t)oy * ow;
                            REAL *xr = xp + (size_t)iy * dx.w;
                            if (s == 1)
                                for (int ox = lo; ox < hi; ox++) xr[ox + off] += wv * yr[ox];
                            else
                                for (int ox = lo; ox < hi; ox++) xr[ox * s + off] += wv * yr[ox];
                        }
                    }
                }
            }
        }
    }
}

TAPI_LINK void TAPI(conv_bwd_weight)(const hy__tconv *c, TV x, TV dy, REAL *dw, REAL *db) {
    TR(conv_check)(c, x, dy);
    const int k = c->k, s = c->stride, p = c->pad, oh = dy.h, ow = dy.w;
    for (int co = 0; co < c->cout; co++) {
        if (db) {
            double sum = 0;
            for (int n = 0; n < x.n; n++) {
                const REAL *yp = TR(img)(dy, n, co);
                for (int i = 0; i < oh * ow; i++) sum += (double)yp[i];
            }
            db[co] += (REAL)sum;
        }
        for (int ci = 0; ci < c->cin; ci++) {
            REAL *wk = dw + ((size_t)co * c->cin + ci) * k * k;
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    const int lo = col_lo(kx, s, p), hi = col_hi(kx, s, p, x.w, ow), off = kx - p;
                    double sum = 0;
                    for (int n = 0; n < x.n; n++) {
                        const REAL *yp = TR(img)(dy, n, co), *xp = TR(img)(x, n, ci);
                        for (int oy = 0; oy < oh; oy++) {
                            const int iy = oy * s - p + ky;
                            if (iy < 0 || iy >= x.h || hi <= lo) continue;
                            sum += TR(dot)(yp + (size_t)oy * ow + lo, xp + (size_t)iy * x.w + (lo * s + off),
                                           hi - lo, s);
                        }
                    }
                    wk[ky * k + kx] += (REAL)sum;
                }
            }
        }
    }
}

// --- BatchNorm + activation (+ residual) --------------------------------------------------

TAPI_LINK void TAPI(bn_act_fwd)(TV z, const REAL *gamma, const REAL *beta, REAL *rm, REAL *rv, REAL momentum,
                                REAL eps, int train, int act, const TV *add, TV y, REAL *mean, REAL *invstd) {
    HY_ASSERT(y.n == z.n && y.c == z.c && y.h == z.h && y.w == z.w);
    HY_ASSERT(!add || (add->n == z.n && add->c == z.c && add->h == z.h && add->w == z.w));
    HY_ASSERT(train || (rm && rv));
    const size_t hw = (size_t)z.h * z.w, M = (size_t)z.n * hw; /* values per channel */
    for (int ch = 0; ch < z.c; ch++) {
        double m, is;
        if (train) {
            double sum = 0, sq = 0;
            for (int n = 0; n < z.n; n++) {
                const REAL *zp = TR(img)(z, n, ch);
                for (size_t i = 0; i < hw; i++) sum += (double)zp[i];
            }
            m = sum / (double)M;
            for (int n = 0; n < z.n; n++) {
                const REAL *zp = TR(img)(z, n, ch);
                for (size_t i = 0; i < hw; i++) sq += ((double)zp[i] - m) * ((double)zp[i] - m);
            }
            const double var = sq / (double)M; /* biased: normalises */
            is = 1.0 / sqrt(var + (double)eps);
            /* unbiased: running variance (PyTorch); one value per channel has none, keep var */
            const double uvar = M > 1 ? sq / (double)(M - 1) : var;
            const double mo = (double)momentum;
            if (rm) rm[ch] = (REAL)((1.0 - mo) * (double)rm[ch] + mo * m);
            if (rv) rv[ch] = (REAL)((1.0 - mo) * (double)rv[ch] + mo * uvar);
        } else {
            m = (double)rm[ch];
            is = 1.0 / sqrt((double)rv[ch] + (double)eps);
        }
        const REAL mr = (REAL)m, ir = (REAL)is, g = gamma[ch], bt = beta[ch];
        if (mean) mean[ch] = mr;
        if (invstd) invstd[ch] = ir;
        for (int n = 0; n < z.n; n++) {
            const REAL *zp = TR(img)(z, n, ch), *ap = add ? TR(img)(*add, n, ch) : NULL;
            REAL *yp = TR(img)(y, n, ch);
            for (size_t i = 0; i < hw; i++) {
                const REAL u = g * ((zp[i] - mr) * ir) + bt;
                yp[i] = ap ? TR(act)(u, act) + ap[i] : TR(act)(u, act);
            }
        }
    }
}

TAPI_LINK void TAPI(bn_act_bwd)(TV z, TV dy, const REAL *gamma, const REAL *beta, const REAL *mean,
                                const REAL *invstd, int train, int act, TV dz, REAL *dgamma, REAL *dbeta) {
    HY_ASSERT(dy.n == z.n && dy.c == z.c && dy.h == z.h && dy.w == z.w);
    HY_ASSERT(!dz.d || (dz.n == z.n && dz.c == z.c && dz.h == z.h && dz.w == z.w));
    const size_t hw = (size_t)z.h * z.w, M = (size_t)z.n * hw;
    for (int ch = 0; ch < z.c; ch++) {
        const REAL mr = mean[ch], ir = invstd[ch], g = gamma[ch], bt = beta[ch];
        /* du = dy act'(u); sums of du and du xhat over (n, h, w) */
        double sdu = 0, sdux = 0;
        for (int n = 0; n < z.n; n++) {
            const REAL *zp = TR(img)(z, n, ch), *gp = TR(img)(dy, n, ch);
            for (size_t i = 0; i < hw; i++) {
                const REAL xh = (zp[i] - mr) * ir, u = g * xh + bt;
                const REAL du = gp[i] * TR(act_grad)(u, act);
                sdu += (double)du;
                sdux += (double)du * (double)xh;
            }
        }
        if (dgamma) dgamma[ch] += (REAL)sdux;
        if (dbeta) dbeta[ch] += (REAL)sdu;
        if (!dz.d) continue;
        /* train: dz = g is (du - mean(du) - xhat mean(du xhat)); eval: dz = g is du */
        const double mdu = train ? sdu / (double)M : 0.0, mdux = train ? sdux / (double)M : 0.0;
        const double gi = (double)g * (double)ir;
        for (int n = 0; n < z.n; n++) {
            const REAL *zp = TR(img)(z, n, ch), *gp = TR(img)(dy, n, ch);
            REAL *dp = TR(img)(dz, n, ch);
            for (size_t i = 0; i < hw; i++) {
                const REAL xh = (zp[i] - mr) * ir, u = g * xh + bt;
                const REAL du = gp[i] * TR(act_grad)(u, act);
                dp[i] = (REAL)(gi * ((double)du - mdu - (double)xh * mdux));
            }
        }
    }
}

// --- max pool (k x k, stride 1, pad k / 2) -------------------------------------------------

/* Index in the (h, w) plane of the maximum of the window centred on (oy, ox): PyTorch's CPU
 * rule, a row-major scan taking a value when it is > the best so far or NaN; it starts at the
 * window's first in-image element with the best at -inf. */
static size_t TR(pool_argmax)(const REAL *xp, int h, int w, int k, int oy, int ox) {
    const int p = k / 2;
    const int y0 = oy - p < 0 ? 0 : oy - p, y1 = oy - p + k > h ? h : oy - p + k;
    const int x0 = ox - p < 0 ? 0 : ox - p, x1 = ox - p + k > w ? w : ox - p + k;
    size_t best_i = (size_t)y0 * w + x0;
    REAL best = (REAL)-INFINITY;
    for (int iy = y0; iy < y1; iy++) {
        for (int ix = x0; ix < x1; ix++) {
            const REAL v = xp[(size_t)iy * w + ix];
            if (v > best || isnan(v)) {
                best = v;
                best_i = (size_t)iy * w + ix;
            }
        }
    }
    return best_i;
}

TAPI_LINK void TAPI(maxpool_fwd)(TV x, int k, TV y) {
    HY_ASSERT(k >= 1 && y.n == x.n && y.c == x.c && y.h == x.h && y.w == x.w);
    for (int n = 0; n < x.n; n++)
        for (int ch = 0; ch < x.c; ch++) {
            const REAL *xp = TR(img)(x, n, ch);
            REAL *yp = TR(img)(y, n, ch);
            for (int oy = 0; oy < x.h; oy++)
                for (int ox = 0; ox < x.w; ox++)
                    yp[(size_t)oy * x.w + ox] = xp[TR(pool_argmax)(xp, x.h, x.w, k, oy, ox)];
        }
}

TAPI_LINK void TAPI(maxpool_bwd)(TV x, TV dy, int k, TV dx, int acc) {
    HY_ASSERT(k >= 1 && dy.n == x.n && dy.c == x.c && dy.h == x.h && dy.w == x.w);
    HY_ASSERT(dx.n == x.n && dx.c == x.c && dx.h == x.h && dx.w == x.w);
    const size_t hw = (size_t)x.h * x.w;
    for (int n = 0; n < x.n; n++)
        for (int ch = 0; ch < x.c; ch++) {
            const REAL *xp = TR(img)(x, n, ch), *gp = TR(img)(dy, n, ch);
            REAL *dp = TR(img)(dx, n, ch);
            if (!acc)
                for (size_t i = 0; i < hw; i++) dp[i] = (REAL)0;
            for (int oy = 0; oy < x.h; oy++)
                for (int ox = 0; ox < x.w; ox++)
                    dp[TR(pool_argmax)(xp, x.h, x.w, k, oy, ox)] += gp[(size_t)oy * x.w + ox];
        }
}

// --- nearest 2x upsample, copy --------------------------------------------------------------

TAPI_LINK void TAPI(upsample2x_fwd)(TV x, TV y) {
    HY_ASSERT(y.n == x.n && y.c == x.c && y.h == 2 * x.h && y.w == 2 * x.w);
    for (int n = 0; n < x.n; n++)
        for (int ch = 0; ch < x.c; ch++) {
            const REAL *xp = TR(img)(x, n, ch);
            REAL *yp = TR(img)(y, n, ch);
            for (int oy = 0; oy < y.h; oy++)
                for (int ox = 0; ox < y.w; ox++) yp[(size_t)oy * y.w + ox] = xp[(size_t)(oy / 2) * x.w + ox / 2];
        }
}

TAPI_LINK void TAPI(upsample2x_bwd)(TV dy, TV dx, int acc) {
    HY_ASSERT(dy.n == dx.n && dy.c == dx.c && dy.h == 2 * dx.h && dy.w == 2 * dx.w);
    for (int n = 0; n < dx.n; n++)
        for (int ch = 0; ch < dx.c; ch++) {
            const REAL *gp = TR(img)(dy, n, ch);
            REAL *dp = TR(img)(dx, n, ch);
            for (int iy = 0; iy < dx.h; iy++)
                for (int ix = 0; ix < dx.w; ix++) {
                    const REAL *g0 = gp + (size_t)(2 * iy) * dy.w + 2 * ix, *g1 = g0 + dy.w;
                    const REAL sum = (g0[0] + g0[1]) + (g1[0] + g1[1]);
                    REAL *d = dp + (size_t)iy * dx.w + ix;
                    *d = acc ? *d + sum : sum;
                }
        }
}

TAPI_LINK void TAPI(copy)(TV src, TV dst, int acc) {
    HY_ASSERT(src.n == dst.n && src.c == dst.c && src.h == dst.h && src.w == dst.w);
    const size_t chw = (size_t)src.c * src.h * src.w;
    for (int n = 0; n < src.n; n++) {
        const REAL *sp = src.d + (size_t)n * src.bs;
        REAL *dp = dst.d + (size_t)n * dst.bs;
        if (acc)
            for (size_t i = 0; i < chw; i++) dp[i] += sp[i];
        else
            for (size_t i = 0; i < chw; i++) dp[i] = sp[i];
    }
}
