/* Fast maxpool (separable), nearest upsample x2 and copy: threaded over rows/chunks, plain loops
 * written so the compiler vectorises them (max as `a > b ? a : b`, unit-stride rows). */
#include "ops/cpu/ops_cpu.h"

#include <math.h>
#include <string.h>

static void range_of(size_t n, int ith, int nth, size_t *i0, size_t *i1) {
    *i0 = n * (size_t)ith / (size_t)nth;
    *i1 = n * (size_t)(ith + 1) / (size_t)nth;
}

// --- maxpool: k x k, stride 1, pad k/2 ------------------------------------------------------
/* Per output row: column max over the k input rows (clipped to the map), into a row buffer with
 * r = k/2 columns of -inf on each side, then the row max over k neighbours: 2k compares per
 * output instead of k*k. Columns are done in chunks so the buffer lives on the stack. */
#define POOL_CHUNK 512
#define POOL_RMAX 32

typedef struct pool_task {
    const float *x;
    float *y;
    int c, h, w, k;
} pool_task;

static void maxpool_worker(void *ctx, int ith, int nth) {
    const pool_task *t = ctx;
    const int h = t->h, w = t->w, r = t->k / 2;
    float buf[POOL_CHUNK + 2 * POOL_RMAX];
    size_t i0, i1;
    range_of((size_t)t->c * h, ith, nth, &i0, &i1); // (channel, output row) pairs
    for (size_t i = i0; i < i1; i++) {
        const int ch = (int)(i / h), oy = (int)(i % h);
        const float *xc = t->x + (size_t)ch * h * w; // (h, w)
        float *yr = t->y + i * w;
        const int y0 = HY_MAX(oy - r, 0), y1 = HY_MIN(oy + r, h - 1);
        for (int x0 = 0; x0 < w; x0 += POOL_CHUNK) {
            const int n = HY_MIN(POOL_CHUNK, w - x0);
            // buf[r + j] = column max at x0 + j for j in [-r, n + r), -inf outside the map
            const int ja = HY_MAX(-r, -x0), jb = HY_MIN(n + r, w - x0);
            for (int j = -r; j < ja; j++) buf[r + j] = -INFINITY;
            for (int j = jb; j < n + r; j++) buf[r + j] = -INFINITY;
            float *bm = buf + r;
            const float *src = xc + (size_t)y0 * w + x0;
            for (int j = ja; j < jb; j++) bm[j] = src[j];
            for (int iy = y0 + 1; iy <= y1; iy++) {
                const float *s = xc + (size_t)iy * w + x0;
                for (int j = ja; j < jb; j++) bm[j] = s[j] > bm[j] ? s[j] : bm[j];
            }
            float *dst = yr + x0;
            for (int j = 0; j < n; j++) dst[j] = bm[j - r];
            for (int dx = -r + 1; dx <= r; dx++)
                for (int j = 0; j < n; j++) dst[j] = bm[j + dx] > dst[j] ? bm[j + dx] : dst[j];
        }
    }
}

void hy__cpu_maxpool(const float *x, int c, int h, int w, int k, float *y, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1 && k / 2 <= POOL_RMAX && x != y);
    pool_task t = { x, y, c, h, w, k };
    hy__threadpool_run(tp, maxpool_worker, &t);
}

// --- nearest upsample x2 ----------------------------------------------------------------------

typedef struct up_task {
    const float *x;
    float *y;
    int c, h, w;
} up_task;

static void upsample_worker(void *ctx, int ith, int nth) {
    const up_task *t = ctx;
    const int w = t->w;
    size_t i0, i1;
    range_of((size_t)t->c * t->h, ith, nth, &i0, &i1); // input rows (c*h)
    for (size_t i = i0; i < i1; i++) {
        const float *src = t->x + i * w;
        float *d0 = t->y + i * 4 * w, *d1 = d0 + 2 * w; // output rows 2*iy, 2*iy + 1
        for (int j = 0; j < w; j++) {
            d0[2 * j] = src[j];
            d0[2 * j + 1] = src[j];
        }
        memcpy(d1, d0, (size_t)2 * w * sizeof(float));
    }
}

void hy__cpu_upsample2x(const float *x, int c, int h, int w, float *y, hy__threadpool *tp) {
    up_task t = { x, y, c, h, w };
    hy__threadpool_run(tp, upsample_worker, &t);
}

// --- copy ---------------------------------------------------------------------------------

#define COPY_MIN_PER_THREAD (64 * 1024) /* floats; below this a thread hand-off costs more */

typedef struct copy_task {
    const float *x;
    float *y;
    size_t n;
} copy_task;

static void copy_worker(void *ctx, int ith, int nth) {
    const copy_task *t = ctx;
    // split in 16-float (64-byte) units so threads do not share output cache lines
    size_t u0, u1;
    const size_t units = (t->n + 15) / 16;
    range_of(units, ith, nth, &u0, &u1);
    const size_t i0 = HY_MIN(u0 * 16, t->n), i1 = HY_MIN(u1 * 16, t->n);
    if (i1 > i0) memcpy(t->y + i0, t->x + i0, (i1 - i0) * sizeof(float));
}

void hy__cpu_copy(const float *x, size_t n, float *y, hy__threadpool *tp) {
    copy_task t = { x, y, n };
    if (n < 2 * COPY_MIN_PER_THREAD)
        copy_worker(&t, 0, 1);
    else
        hy__threadpool_run(tp, copy_worker, &t);
}
