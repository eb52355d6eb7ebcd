/* Shared by the training-kernel tests (test_train_ops_cpu.c, test_train_elem.c,
 * test_train_conv_inf.c): test buffers freed per case, a seeded uniform generator, and tensors
 * held as float and double copies of the same values for comparing a float kernel with the
 * double reference (ops/ref/train_ref.h). Define TT_SEED before including it. */
#ifndef HY_TRAIN_TEST_UTIL_H
#define HY_TRAIN_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ops/ref/train_ref.h"
#include "ops/train_op.h"

#ifndef TT_SEED
#error "define TT_SEED (the test file's random seed) before including train_test_util.h"
#endif

/* Buffers of the current case (freed by pool_reset). */
static void *pool[2048];
static int npool;
static inline void pool_reset(void) {
    for (int i = 0; i < npool; i++) free(pool[i]);
    npool = 0;
}
/* Zeroed, 64-byte aligned, with 64 bytes of slack. */
static inline void *talloc(size_t bytes) {
    if (npool == (int)(sizeof pool / sizeof pool[0])) abort();
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!p) abort();
    memset(p, 0, bytes);
    return pool[npool++] = p;
}

/* Uniform in [lo, hi) (splitmix64). */
static uint64_t rng = TT_SEED;
static inline double urand(double lo, double hi) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / 9007199254740992.0;
}

/* A tensor (n, c, h, w) as float and double copies holding the same values, plus the float
 * values it started with (f0); a view is channels [2, 2 + c) of a (n, c + 3, h, w) tensor. */
typedef struct T {
    float *f, *f0;
    double *d;
    int n, c, h, w, ctot, c0;
    size_t tot; /* floats of the whole (n, ctot, h, w) tensor */
} T;

static inline T tnew(int n, int c, int h, int w, int view, double lo, double hi) {
    T t = { .n = n, .c = c, .h = h, .w = w, .ctot = view ? c + 3 : c, .c0 = view ? 2 : 0 };
    t.tot = (size_t)n * t.ctot * h * w;
    t.f = talloc(t.tot * sizeof(float));
    t.f0 = talloc(t.tot * sizeof(float));
    t.d = talloc(t.tot * sizeof(double));
    for (size_t i = 0; i < t.tot; i++) {
        t.f0[i] = t.f[i] = (float)urand(lo, hi);
        t.d[i] = t.f[i];
    }
    return t;
}
static inline T vec(int n, double lo, double hi) { return tnew(1, n, 1, 1, 0, lo, hi); }
/* f back to its first values. */
static inline void trestore(T t) { memcpy(t.f, t.f0, t.tot * sizeof(float)); }
static inline hy__tview tf(T t) { return hy__tview_slice(hy__tview_make(t.f, t.n, t.ctot, t.h, t.w), t.c0, t.c); }
static inline hy__tview64 td(T t) {
    return hy__tview64_slice(hy__tview64_make(t.d, t.n, t.ctot, t.h, t.w), t.c0, t.c);
}

/* Relative L2 error of f against d over the slice; outside it both must still agree exactly
 * (they started equal and no kernel may write there): else 1e30. NaN: 1e30. */
static inline double terr(T t) {
    const size_t hw = (size_t)t.h * t.w;
    double num = 0, den = 0;
    for (int b = 0; b < t.n; b++)
        for (int ch = 0; ch < t.ctot; ch++)
            for (size_t i = 0; i < hw; i++) {
                const size_t j = ((size_t)b * t.ctot + ch) * hw + i;
                if (ch < t.c0 || ch >= t.c0 + t.c) {
                    if (t.f[j] != (float)t.d[j]) return 1e30;
                    continue;
                }
                const double e = (double)t.f[j] - t.d[j];
                num += e * e;
                den += t.d[j] * t.d[j];
            }
    if (!(num == num)) return 1e30;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* NULL (one thread) or a shared 2-thread pool, freed by pool_done. */
static hy__threadpool *tp2;
static inline hy__threadpool *pool_of(int nth) {
    if (nth == 1) return NULL;
    if (!tp2 && hy__threadpool_create(2, &tp2) != HY_OK) abort();
    return tp2;
}
static inline void pool_done(void) {
    if (tp2) hy__threadpool_free(tp2);
    tp2 = NULL;
}

#endif
