/* Fast maxpool (separable), nearest upsample x2 and copy: threaded over channels / rows (handed
 * out dynamically, core.h hy__workq) / chunks, plain loops
 * written so the compiler vectorises them (max as `a > b ? a : b`, unit-stride rows). */
#include "ops/cpu/ops_cpu.h"

#include <math.h>
#include <string.h>

static void range_of(size_t n, int ith, int nth, size_t *i0, size_t *i1) {
    *i0 = n * (size_t)ith / (size_t)nth;
    *i1 = n * (size_t)(ith + 1) / (size_t)nth;
}

// --- maxpool: k x k, stride 1, pad k/2 ------------------------------------------------------
/* Separable, per channel plane: the column max over the 2r+1 rows goes straight into the output
 * plane (r passes each way over the whole plane, long contiguous loops), then each row is
 * replaced by its row max over 2r+1 neighbours, read from a stack copy with r columns of -inf
 * on each side. 2k compares per output instead of k*k. */
#define POOL_CHUNK 512 /* row chunk (stack buffer) */
#define POOL_RMAX 32

typedef struct pool_task {
    const float *x;
    float *y;
    int c, h, w, k;
    hy__workq wq; /* channels, handed out dynamically */
} pool_task;

static void maxpool_plane(const float *x, float *y, int h, int w, int r) {
    const size_t hw = (size_t)h * w;
    memcpy(y, x, hw * sizeof(float));
    for (int d = 1; d <= r && d < h; d++) { // rows above and below, where they exist
        const size_t off = (size_t)d * w;
        for (size_t i = 0; i < hw - off; i++) y[i] = x[i + off] > y[i] ? x[i + off] : y[i];
        for (size_t i = off; i < hw; i++) y[i] = x[i - off] > y[i] ? x[i - off] : y[i];
    }
    float buf[POOL_CHUNK + 2 * POOL_RMAX];
    for (int oy = 0; oy < h; oy++) {
        float *row = y + (size_t)oy * w;
        for (int x0 = 0; x0 < w; x0 += POOL_CHUNK) {
            const int n = HY_MIN(POOL_CHUNK, w - x0);
            // buf[r + j] = row[x0 + j] for j in [-r, n + r), -inf outside the row. The left
            // halo of a later chunk was overwritten in row: it is still in buf, move it down.
            const int ja = HY_MAX(-r, -x0), jb = HY_MIN(n + r, w - x0);
            if (x0 > 0) memmove(buf, buf + POOL_CHUNK, (size_t)r * sizeof(float));
            for (int j = -r; j < ja; j++) buf[r + j] = -INFINITY;
            memcpy(buf + r, row + x0, (size_t)(jb) * sizeof(float));
            for (int j = jb; j < n + r; j++) buf[r + j] = -INFINITY;
            float *dst = row + x0;
            if (r == 2) { // SPPF: one pass, 5 taps
                for (int j = 0; j < n; j++) {
                    const float a = buf[j] > buf[j + 1] ? buf[j] : buf[j + 1];
                    const float b = buf[j + 2] > buf[j + 3] ? buf[j + 2] : buf[j + 3];
                    const float m = a > b ? a : b;
                    dst[j] = m > buf[j + 4] ? m : buf[j + 4];
                }
            } else {
                for (int j = 0; j < n; j++) dst[j] = buf[j];
                for (int t = 1; t <= 2 * r; t++)
                    for (int j = 0; j < n; j++) dst[j] = buf[j + t] > dst[j] ? buf[j + t] : dst[j];
            }
        }
    }
}

static void maxpool_worker(void *ctx, int ith, int nth) {
    pool_task *t = ctx;
    const size_t plane = (size_t)t->h * t->w;
    long c0, c1;
    (void)nth;
    while (hy__workq_take(&t->wq, ith, &c0, &c1)) // channels
        for (long ch = c0; ch < c1; ch++)
            maxpool_plane(t->x + ch * plane, t->y + ch * plane, t->h, t->w, t->k / 2);
}

void hy__cpu_maxpool(const float *x, int c, int h, int w, int k, float *y, hy__threadpool *tp) {
    HY_ASSERT(k >= 1 && k % 2 == 1 && k / 2 <= POOL_RMAX && x != y);
    pool_task t = { .x = x, .y = y, .c = c, .h = h, .w = w, .k = k };
    hy__workq_init(&t.wq, c, hy__threadpool_size(tp), 4, 1);
    hy__threadpool_run(tp, maxpool_worker, &t);
}

// --- nearest upsample x2 ----------------------------------------------------------------------

typedef struct up_task {
    const float *x;
    float *y;
    int c, h, w;
    hy__workq wq; /* input rows, handed out dynamically */
} up_task;

static void upsample_worker(void *ctx, int ith, int nth) {
    up_task *t = ctx;
    const int w = t->w;
    long i0, i1;
    (void)nth;
    while (hy__workq_take(&t->wq, ith, &i0, &i1)) // input rows (c*h)
    for (size_t i = (size_t)i0; i < (size_t)i1; i++) {
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
    up_task t = { .x = x, .y = y, .c = c, .h = h, .w = w };
    hy__workq_init(&t.wq, (long)c * h, hy__threadpool_size(tp), 4, 8);
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
