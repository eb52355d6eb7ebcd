/* Tiny test runner. Each tests/test_<module>.c is one executable registered in CTest:
 *
 *   #include "hy_test.h"
 *   HY_TEST(parses_header) { ASSERT_EQ(1 + 1, 2); }
 *   HY_TEST_MAIN()
 *
 * Tests run in declaration order; a failed ASSERT ends that test and marks it failed.
 * HY_SKIP("reason") ends it as skipped (a case that cannot run here: missing assets, a
 * sanitizer build). Exit status: 1 if any case failed, else 77 if every case that ran was
 * skipped (CTest's SKIP_RETURN_CODE: "Not Run (Skipped)"), else 0; a suite where only some
 * cases skipped passes and says so in its summary line ("3 passed, 0 failed, 2 skipped"),
 * since CTest has no partial skip.
 * Shared assets are found through HY_ASSETS (env) or the compiled-in default; when that folder
 * is missing, hy_test_asset() skips the running case. */
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
extern int hy_test_skipped_flag;

/* Runs cases[0..n) (those whose name contains argv[1], if given), prints one line per case and
 * a summary; returns the exit status described above. */
int hy_test_run(const hy_test_case *cases, int n, int argc, char **argv);
/* Marks the running case skipped and prints the reason (printf format; file may be NULL). */
void hy_test_skip_note(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

#define HY_SKIP(...)                                                                            \
    do {                                                                                        \
        hy_test_skip_note(__FILE__, __LINE__, __VA_ARGS__);                                     \
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

/* Path of a shared asset (static buffer per call slot, 8 slots). If the assets folder is
 * missing, the running case is skipped (it does not return; called outside a case, or from
 * another thread or a forked child, the binary exits with status 2 and a message instead).
 * It leaves the case by longjmp: ask for asset paths before allocating. */
const char *hy_test_asset(const char *rel);
/* Skips the running case, as hy_test_asset does, when the assets folder is missing. */
void hy_test_require_assets(void);
/* Path of a scratch file under the test's temp dir. */
const char *hy_test_tmp(const char *name);
/* A real checkpoint of another family that says it is YOLOv8: weights/yolov5n.pt converted
 * (unfused) to a safetensors whose "hotyolo.arch" reads "yolov8" (patched in the header).
 * Made once per process under the temp dir; skips the case without assets. */
const char *hy_test_mislabelled_yolov5(void);
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
    int main(int argc, char **argv) { return hy_test_run(hy_test_cases, hy_test_ncases, argc, argv); }

#endif
