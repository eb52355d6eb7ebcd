/* Max-pool of one plane, k = 2 r + 1, stride 1, pad r (padding never wins), as plain C loops
 * the compiler vectorises; included by train_elem.c (baseline ISA) and
 * arch/x86/train_elem_avx2.c (AVX2), which define TE_POOL_FWD / TE_POOL_BWD (function names).
 * The plane is copied into xp (h + 2r, w + 2r) with -inf borders; the window max (NaN wins) is
 * separable: the column max of 2r + 1 padded rows, then the row max of 2r + 1 columns. It equals
 * the row-major scan's value (ops/ref: take v when v > best or v is NaN).
 * Backward routes dy to the first element in row-major order equal to the max (the scan's
 * choice: a later equal value never replaces it); a window whose max is NaN (the scan keeps the
 * last NaN) or -inf (the borders would match) is scanned as the reference does.
 * Scratch: 4 HY_TELEM_PAD_MAX floats: xp, column max, window max, routing offsets. */
#include <math.h>
#include <string.h>

/* xp = x with r -inf borders, W = w + 2r; vm (h, W) = column max of 2r + 1 rows;
 * m (h, w) = row max of vm. */
static void te_pool_max(const float *x, int h, int w, int r, float *xp, float *vm, float *m) {
    const int W = w + 2 * r, H = h + 2 * r;
    for (int i = 0; i < H * W; i++) xp[i] = -INFINITY;
    for (int y = 0; y < h; y++) memcpy(xp + (size_t)(y + r) * W + r, x + (size_t)y * w, (size_t)w * sizeof(float));
    const int n = h * W;
    memcpy(vm, xp, (size_t)n * sizeof(float));
    for (int j = 1; j <= 2 * r; j++) {
        const float *s = xp + (size_t)j * W;
        for (int i = 0; i < n; i++) {
            const float v = s[i], b = vm[i];
            vm[i] = (v > b || v != v) ? v : b;
        }
    }
    for (int y = 0; y < h; y++) {
        const float *s = vm + (size_t)y * W;
        float *o = m + (size_t)y * w;
        memcpy(o, s, (size_t)w * sizeof(float));
        for (int j = 1; j <= 2 * r; j++)
            for (int i = 0; i < w; i++) {
                const float v = s[i + j], b = o[i];
                o[i] = (v > b || v != v) ? v : b;
            }
    }
}

static void TE_POOL_FWD(const float *x, int h, int w, int r, float *y, float *scratch) {
    float *xp = scratch, *vm = xp + HY_TELEM_PAD_MAX;
    te_pool_max(x, h, w, r, xp, vm, y);
}

static void TE_POOL_BWD(const float *x, const float *dy, int h, int w, int r, float *dx, float *scratch) {
    float *xp = scratch, *vm = xp + HY_TELEM_PAD_MAX, *m = vm + HY_TELEM_PAD_MAX;
    int *rel = (int *)(m + HY_TELEM_PAD_MAX);
    const int W = w + 2 * r;
    te_pool_max(x, h, w, r, xp, vm, m);
    for (int y = 0; y < h; y++) {
        const float *mr = m + (size_t)y * w;
        int *o = rel + (size_t)y * w;
        for (int i = 0; i < w; i++) o[i] = 0;
        // the window's elements in reverse row-major order: the last match is the first one
        for (int j = 2 * r; j >= 0; j--)
            for (int i = 2 * r; i >= 0; i--) {
                const float *s = xp + (size_t)(y + j) * W + i;
                const int c = (j - r) * w + (i - r);
                for (int q = 0; q < w; q++) o[q] = s[q] == mr[q] ? c : o[q];
            }
    }
    for (int y = 0; y < h; y++)
        for (int q = 0; q < w; q++) {
            const size_t p = (size_t)y * w + q;
            const float mv = m[p];
            if (mv != mv || mv == -INFINITY) { // the reference's scan
                const int y0 = y - r < 0 ? 0 : y - r, y1 = y + r + 1 > h ? h : y + r + 1;
                const int x0 = q - r < 0 ? 0 : q - r, x1 = q + r + 1 > w ? w : q + r + 1;
                size_t best = (size_t)y0 * w + x0;
                float b = -INFINITY;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const size_t i = (size_t)iy * w + ix;
                        if (x[i] > b || isnan(x[i])) {
                            b = x[i];
                            best = i;
                        }
                    }
                dx[best] += dy[p];
            } else {
                dx[(ptrdiff_t)p + rel[p]] += dy[p];
            }
        }
}
