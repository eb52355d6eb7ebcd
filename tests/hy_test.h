/* Tiny test runner. Each tests/test_<module>.c is one executable registered in CTest:
 *
 *   #include "hy_test.h"
 *   HY_TEST(parses_header) { ASSERT_EQ(1 + 1, 2); }
 *   HY_TEST_MAIN()
 *
 * Tests run in declaration order; a failed ASSERT ends that test and marks it failed.
 * Shared assets are found through HY_ASSETS (env) or the compiled-in default. */
#ifndef HY_TEST_H
#define HY_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotyolo.h"

typedef struct hy_test_case {
    const char *name;
    void (*fn)(void);
} hy_test_case;

extern hy_test_case hy_test_cases[512];
extern int hy_test_ncases;
extern int hy_test_failed_flag;

#define HY_TEST(tname)                                                                          \
    static void hy_test_fn_##tname(void);                                                       \
    __attribute__((constructor)) static void hy_test_reg_##tname(void) {                        \
        hy_test_cases[hy_test_ncases].name = #tname;                                            \
        hy_test_cases[hy_test_ncases++].fn = hy_test_fn_##tname;                                \
    }                                                                                           \
    static void hy_test_fn_##tname(void)

#define HY_FAIL_(...)                                                                           \
    do {                                                                                        \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                           \
        fprintf(stderr, "\n");                                                                  \
        hy_test_failed_flag = 1;                                                                \
        return;                                                                                 \
    } while (0)

#define ASSERT_TRUE(x)                                                                          \
    do {                                                                                        \
        if (!(x)) HY_FAIL_("ASSERT_TRUE(%s) failed", #x);                                       \
    } while (0)
#define ASSERT_FALSE(x) ASSERT_TRUE(!(x))
#define ASSERT_EQ(a, b)                                                                         \
    do {                                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                                     \
        if (a_ != b_) HY_FAIL_("ASSERT_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);              \
    } while (0)
#define ASSERT_NE(a, b)                                                                         \
    do {                                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                                     \
        if (a_ == b_) HY_FAIL_("ASSERT_NE(%s, %s): both %lld", #a, #b, a_);                     \
    } while (0)
#define ASSERT_NEAR(a, b, tol)                                                                  \
    do {                                                                                        \
        double a_ = (double)(a), b_ = (double)(b);                                              \
        if (!(fabs(a_ - b_) <= (tol)))                                                          \
            HY_FAIL_("ASSERT_NEAR(%s, %s, %g): %.9g vs %.9g", #a, #b, (double)(tol), a_, b_);   \
    } while (0)
#define ASSERT_STREQ(a, b)                                                                      \
    do {                                                                                        \
        const char *a_ = (a), *b_ = (b);                                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                  \
            HY_FAIL_("ASSERT_STREQ(%s, %s): \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",      \
                     b_ ? b_ : "(null)");                                                       \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                            \
    do {                                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                                 \
        if (!h_ || !strstr(h_, n_)) HY_FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)
#define ASSERT_OK(expr)                                                                         \
    do {                                                                                        \
        hy_status s_ = (expr);                                                                  \
        if (s_ != HY_OK) HY_FAIL_("%s -> %s: %s", #expr, hy_status_name(s_), hy_last_error());  \
    } while (0)
#define ASSERT_ERR(expr, code)                                                                  \
    do {                                                                                        \
        hy_status s_ = (expr);                                                                  \
        if (s_ != (code))                                                                       \
            HY_FAIL_("%s -> %s, expected %s (%s)", #expr, hy_status_name(s_), hy_status_name(code), \
                     hy_last_error());                                                          \
    } while (0)

/* Path of a shared asset (static buffer per call slot, 8 slots). Aborts the test binary
 * with a clear message if the assets folder is missing. */
const char *hy_test_asset(const char *rel);
/* Path of a scratch file under the test's temp dir. */
const char *hy_test_tmp(const char *name);
/* A deterministic RGB test pattern (h, w, 3): smooth ramps plus hashed noise (malloc'd). */
unsigned char *hy_test_synth_rgb(int w, int h);
/* FNV-1a 64-bit hash of n bytes (to compare images with hashes computed by OpenCV). */
unsigned long long hy_test_fnv1a(const void *data, size_t n);
/* Loads a little-endian float32 C-order .npy file (malloc'd; free()). shape gets up to 8
 * dims; returns NULL with a message on stderr on any problem. */
float *hy_test_npy_load(const char *path, long long shape[8], int *ndim, size_t *count);

/* Resource bound of one call: fn(arg) runs in a forked child whose address space is capped
 * (RLIMIT_AS = its size at fork + max_extra_mb + 64 MiB slack, skipped under sanitizers, which
 * reserve terabytes) and which is killed after 10x max_s. The child's peak RSS growth over its
 * RSS at fork and its wall time are measured; the result is 0 when fn returned 0 within both
 * bounds, else 1 with the reason printed. Use it for resource bombs: a regression then fails
 * instead of swapping. */
typedef struct hy_test_bound {
    double extra_rss_mb; /* peak RSS (VmHWM) minus RSS at fork */
    double seconds;      /* wall time of fn */
    int fn_result;       /* fn's return value; -1 when killed or it crashed */
} hy_test_bound;
int hy_test_bounded(int (*fn)(void *arg), void *arg, double max_extra_mb, double max_s,
                    hy_test_bound *out);
/* 1 when the tests run under ASan/TSan (HY_TEST_SANITIZED=1): timing bounds may be scaled. */
int hy_test_sanitized(void);

#define HY_TEST_MAIN()                                                                          \
    hy_test_case hy_test_cases[512];                                                            \
    int hy_test_ncases;                                                                         \
    int hy_test_failed_flag;                                                                    \
    int main(int argc, char **argv) {                                                           \
        int failed = 0, ran = 0;                                                                \
        for (int i = 0; i < hy_test_ncases; i++) {                                              \
            if (argc > 1 && !strstr(hy_test_cases[i].name, argv[1])) continue;                 \
            hy_test_failed_flag = 0;                                                            \
            hy_test_cases[i].fn();                                                              \
            ran++;                                                                              \
            printf("%s %s\n", hy_test_failed_flag ? "FAIL" : "ok  ", hy_test_cases[i].name);   \
            fflush(stdout);                                                                     \
            failed += hy_test_failed_flag;                                                      \
        }                                                                                       \
        printf("%d passed, %d failed\n", ran - failed, failed);                                 \
        return failed ? 1 : 0;                                                                  \
    }

#endif
