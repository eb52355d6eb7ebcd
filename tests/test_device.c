/* Devices (include/hotyolo/device.h): the device-string allow-list, hy_device_list, and the
 * fallback to cpu when a GPU is asked for and cannot be used (no driver, a stub driver, no
 * such GPU, a CUDA backend without kernels).
 *
 * The fallback cases assume no usable GPU; where hy_device_list shows one they skip.
 * Cases named driver_* run only when asked for by name (CTest's test_device_stub_driver and
 * test_device_no_driver run `test_device driver_` with $HOTYOLO_CUDA_DRIVER set): the driver
 * is probed once per process, so each driver needs its own process. */
#include <sys/stat.h>

#include "hotyolo/device.h"
#include "hy_test.h"

/* ---- device strings ---------------------------------------------------------------- */

HY_TEST(device_check_accepts_the_documented_forms) {
    static const char *ok[][2] = {{"cpu", "cpu"},       {"CPU", "cpu"},       {"ref", "ref"},   {"auto", "auto"},
                                  {"AUTO", "auto"},     {"cuda", "cuda:0"},   {"CUDA", "cuda:0"},
                                  {"cuda:0", "cuda:0"}, {"Cuda:2", "cuda:2"}, {"cuda:63", "cuda:63"},
                                  {"0", "cuda:0"},      {"7", "cuda:7"},      {"63", "cuda:63"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char norm[16] = "junk";
        hy_status st = hy_device_check(ok[i][0], norm);
        if (st != HY_OK) HY_FAIL_("'%s' refused: %s", ok[i][0], hy_last_error());
        if (strcmp(norm, ok[i][1]) != 0) HY_FAIL_("'%s' -> '%s', want '%s'", ok[i][0], norm, ok[i][1]);
    }
    char norm[16] = "junk";
    ASSERT_OK(hy_device_check(NULL, norm));
    ASSERT_STREQ(norm, "cpu");
    ASSERT_OK(hy_device_check("", norm));
    ASSERT_STREQ(norm, "cpu");
    ASSERT_OK(hy_device_check("cuda:1", NULL)); /* normalised is optional */
}

/* No control or non-ASCII byte of the input reaches the message (it is printed on terminals
 * and in server logs). */
static int printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) return 0;
    return 1;
}

HY_TEST(device_check_refuses_everything_else) {
    static const char *bad[] = {"gpu",  "mps",      "cuda:",  "cuda:-1", "cuda:64",  "cuda:01", "01", "+1",
                                "cuda:1,2", "0,1", " cpu", "cpu ",    "cuda: 1", "64",      "-1", "cuda:1 ",
                                "cpu:0", "cuda0",  "cuda:x", "1.0",    "cuda:100", "0x1",     "ｃｐｕ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char norm[16] = "junk";
        hy_status st = hy_device_check(bad[i], norm);
        if (st != HY_ERR_INVALID_ARG) HY_FAIL_("'%s' -> %s, want HY_ERR_INVALID_ARG", bad[i], hy_status_name(st));
        const char *e = hy_last_error();
        /* names the forms accepted, and what was given (or where it went wrong) */
        if (!strstr(e, "cpu, ref, cuda, cuda:N, N")) HY_FAIL_("'%s': \"%s\" does not name the forms", bad[i], e);
        if (!printable(e)) HY_FAIL_("'%s': message has a non-printable byte: \"%s\"", bad[i], e);
        if (norm[0]) HY_FAIL_("'%s': normalised left as '%s', want \"\"", bad[i], norm);
        if (strchr(bad[i], ',') && !strstr(e, "one device per model"))
            HY_FAIL_("'%s': \"%s\" does not say one device per model", bad[i], e);
    }
    /* a leading zero names the rule it breaks, not a range it is inside */
    ASSERT_ERR(hy_device_check("cuda:01", NULL), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "leading zero");
    ASSERT_ERR(hy_device_check("cuda:64", NULL), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "0 to 63");
}

HY_TEST(device_check_bounds_what_it_echoes) {
    /* 10 kB of a plausible prefix: refused with a short message */
    char *big = malloc(10 * 1024 + 1);
    ASSERT_TRUE(big != NULL);
    memcpy(big, "cuda:", 5);
    memset(big + 5, '1', 10 * 1024 - 5);
    big[10 * 1024] = 0;
    hy_status st = hy_device_check(big, NULL);
    size_t elen = strlen(hy_last_error());
    memset(big, 'c', 10 * 1024);
    hy_status st2 = hy_device_check(big, NULL);
    size_t elen2 = strlen(hy_last_error());
    free(big);
    ASSERT_EQ(st, HY_ERR_INVALID_ARG);
    ASSERT_EQ(st2, HY_ERR_INVALID_ARG);
    printf("  10 kB device strings: error messages of %zu and %zu bytes\n", elen, elen2);
    ASSERT_TRUE(elen < 300 && elen2 < 300);
    /* control characters (a terminal escape, a newline, DEL) are not echoed */
    static const char *ctl[] = {"cuda\x1b[2J:1", "cpu\n", "c\tpu", "\x7f", "cuda:\r1", "auto\x1b]0;pwned\x07"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        ASSERT_ERR(hy_device_check(ctl[i], NULL), HY_ERR_INVALID_ARG);
        if (!printable(hy_last_error())) HY_FAIL_("case %zu: message has a control character", i);
        ASSERT_CONTAINS(hy_last_error(), "?");
    }
}

/* ---- device list --------------------------------------------------------------------- */

#define MAX_ROWS 80

static int usable_gpu(void) {
    static hy_device_info d[MAX_ROWS];
    int n = hy_device_list(d, MAX_ROWS);
    for (int i = 0; i < n && i < MAX_ROWS; i++)
        if (strcmp(d[i].kind, "cuda") == 0 && d[i].usable) return 1;
    return 0;
}

/* The fallback cases assume no usable GPU (where there is one, test_backend_ops runs it). */
#define REQUIRE_NO_GPU()                                                                                          \
    do {                                                                                                          \
        if (usable_gpu()) HY_SKIP("a usable GPU is listed: the fallback cases assume none");                     \
    } while (0)

HY_TEST(device_list_has_the_cpu_first_and_says_why_a_gpu_is_not_usable) {
    static hy_device_info d[MAX_ROWS];
    memset(d, 0x5a, sizeof d);
    int n = hy_device_list(d, MAX_ROWS);
    ASSERT_EQ(hy_device_list(NULL, 0), n);
    ASSERT_TRUE(n >= 1 && n <= MAX_ROWS);
    ASSERT_STREQ(d[0].name, "cpu");
    ASSERT_STREQ(d[0].kind, "cpu");
    ASSERT_TRUE(d[0].usable);
    ASSERT_TRUE(d[0].memory_bytes > 0);
    ASSERT_TRUE(d[0].model[0] != 0);
    ASSERT_TRUE(d[0].detail[0] != 0);
    int cuda_rows = 0, usable = 0;
    for (int i = 0; i < n; i++) {
        printf("  %-7s %-4s usable %d  %s | %s | %.1f GiB%s%s\n", d[i].name, d[i].kind, d[i].usable, d[i].model,
               d[i].detail, (double)d[i].memory_bytes / (1 << 30), d[i].why[0] ? " | why: " : "", d[i].why);
        /* every field a terminated string */
        ASSERT_TRUE(memchr(d[i].name, 0, sizeof d[i].name) && memchr(d[i].kind, 0, sizeof d[i].kind) &&
                    memchr(d[i].model, 0, sizeof d[i].model) && memchr(d[i].why, 0, sizeof d[i].why) &&
                    memchr(d[i].detail, 0, sizeof d[i].detail));
        if (strcmp(d[i].kind, "cuda") == 0) {
            cuda_rows++;
            usable += d[i].usable;
            if (!d[i].usable && !d[i].why[0]) HY_FAIL_("row %d (%s): not usable and no why", i, d[i].name);
        }
    }
    ASSERT_EQ(cuda_rows > 0, hy_cuda_built() != 0); /* a CUDA build lists a row even without a GPU */
    if (hy_cuda_built() && !usable) printf("  no usable GPU: %s\n", d[1].why);
    /* fewer rows than there are: only max written, the count still returned */
    static hy_device_info one[2];
    memset(one, 0x5a, sizeof one);
    ASSERT_EQ(hy_device_list(one, 1), n);
    ASSERT_STREQ(one[0].name, "cpu");
    ASSERT_EQ((unsigned char)one[1].name[0], 0x5a);
}

/* ---- model loading on a device -------------------------------------------------------- */

static const char *LOG_WANT_DEVICE = "device ";
static char g_log[2048];
static hy_log_level g_log_level;
static int g_rebuilt; /* the packed-weights cache logged that it drops an entry */
static void capture(hy_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (strstr(msg, "rebuilding")) g_rebuilt = 1;
    if (strncmp(msg, LOG_WANT_DEVICE, strlen(LOG_WANT_DEVICE)) != 0) return;
    snprintf(g_log, sizeof g_log, "%s", msg);
    g_log_level = lvl;
}

static hy_status load_on(const char *device, int no_fallback, hy_model **m) {
    const char *path = hy_test_asset("weights/yolov8n.pt");
    hy_model_params p = hy_model_default_params();
    p.device = device;
    p.no_fallback = no_fallback;
    p.n_threads = 2;
    g_log[0] = 0;
    g_rebuilt = 0;
    hy_log_set(capture, NULL);
    hy_status st = hy_model_load(path, &p, m);
    hy_log_set(NULL, NULL);
    return st;
}

HY_TEST(gpu_request_falls_back_to_cpu_with_the_reason) {
    REQUIRE_NO_GPU();
    hy_test_require_assets();
    static const char *req[][2] = {{"cuda", "cuda:0"}, {"cuda:3", "cuda:3"}, {"1", "cuda:1"}, {"auto", "auto"}};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        hy_model *m = NULL;
        ASSERT_OK(load_on(req[i][0], 0, &m));
        printf("  %-6s -> %s (requested %s): %s\n", req[i][0], hy_model_device(m), hy_model_device_requested(m),
               hy_model_device_fallback(m));
        char dev[16], asked[16], why[320];
        snprintf(dev, sizeof dev, "%s", hy_model_device(m));
        snprintf(asked, sizeof asked, "%s", hy_model_device_requested(m));
        snprintf(why, sizeof why, "%s", hy_model_device_fallback(m));
        hy_model_free(m);
        ASSERT_STREQ(dev, "cpu");
        ASSERT_STREQ(asked, req[i][1]);
        ASSERT_TRUE(why[0] != 0);
        /* logged: a warning for an explicit GPU, info for auto */
        ASSERT_CONTAINS(g_log, req[i][1]);
        ASSERT_CONTAINS(g_log, "running on cpu");
        ASSERT_EQ(g_log_level, strcmp(req[i][0], "auto") == 0 ? HY_LOG_INFO : HY_LOG_WARN);
        if (!hy_cuda_built()) ASSERT_CONTAINS(why, "no CUDA backend");
    }
}

HY_TEST(no_fallback_makes_an_unusable_gpu_an_error) {
    REQUIRE_NO_GPU();
    hy_test_require_assets();
    hy_model *m = NULL;
    ASSERT_ERR(load_on("cuda", 1, &m), HY_ERR_BACKEND);
    ASSERT_TRUE(m == NULL);
    printf("  cuda + no_fallback: %s\n", hy_last_error());
    ASSERT_CONTAINS(hy_last_error(), "cuda:0");
    ASSERT_CONTAINS(hy_last_error(), "no fallback");
    ASSERT_ERR(load_on("cuda:5", 1, &m), HY_ERR_BACKEND);
    ASSERT_CONTAINS(hy_last_error(), "cuda:5");
    /* auto never errors: it picks cpu */
    ASSERT_OK(load_on("auto", 1, &m));
    ASSERT_STREQ(hy_model_device(m), "cpu");
    ASSERT_STREQ(hy_model_device_requested(m), "auto");
    hy_model_free(m);
    /* cpu and ref never fall back, and say so */
    ASSERT_OK(load_on("cpu", 1, &m));
    ASSERT_STREQ(hy_model_device(m), "cpu");
    ASSERT_STREQ(hy_model_device_fallback(m), "");
    hy_model_free(m);
    /* a malformed device is refused before anything is read */
    ASSERT_ERR(load_on("gpu", 0, &m), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "gpu");
}

/* A refused GPU with no_fallback is the request's fault, not the packed-weights cache's: the
 * cache entry made by an earlier load survives it (it used to be deleted as "bad" and the
 * .pt parsed again before the same error). */
HY_TEST(no_fallback_error_keeps_the_packed_weights_cache) {
    REQUIRE_NO_GPU();
    hy_test_require_assets();
    const char *dir = hy_test_tmp("pcache");
    mkdir(dir, 0700);
    char *old = getenv("HOTYOLO_CACHE_DIR") ? strdup(getenv("HOTYOLO_CACHE_DIR")) : NULL;
    setenv("HOTYOLO_CACHE_DIR", dir, 1);
    hy_model *m = NULL;
    hy_status s1 = load_on("cpu", 0, &m); /* fills the cache */
    hy_model_free(m);
    m = NULL;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c 'safetensors$'", dir);
    int before = 0, after = 0;
    FILE *f = popen(cmd, "r");
    if (f && fscanf(f, "%d", &before) != 1) before = -1;
    if (f) pclose(f);
    hy_status s2 = load_on("cuda", 1, &m);
    f = popen(cmd, "r");
    if (f && fscanf(f, "%d", &after) != 1) after = -1;
    if (f) pclose(f);
    int rebuilt = g_rebuilt;
    hy_status s3 = load_on("cuda", 0, &m); /* and a fallback load uses it */
    const char *fmt = s3 == HY_OK ? hy_model_format(m) : "";
    printf("  cache entries before %d, after the refused load %d; fallback load format %s\n", before, after, fmt);
    hy_model_free(m);
    if (old) setenv("HOTYOLO_CACHE_DIR", old, 1);
    else unsetenv("HOTYOLO_CACHE_DIR");
    free(old);
    ASSERT_OK(s1);
    ASSERT_EQ(s2, HY_ERR_BACKEND);
    ASSERT_OK(s3);
    ASSERT_TRUE(before >= 1);
    ASSERT_EQ(after, before);
    ASSERT_FALSE(rebuilt);
}

HY_TEST(ref_runs_where_asked) {
    hy_test_require_assets();
    hy_model *m = NULL;
    ASSERT_OK(load_on("ref", 0, &m));
    ASSERT_STREQ(hy_model_device(m), "ref");
    ASSERT_STREQ(hy_model_device_requested(m), "ref");
    ASSERT_STREQ(hy_model_device_fallback(m), "");
    hy_model_free(m);
}

static hy_status detect_bus(const hy_model *m, const char *ctx_device, hy_result **r) {
    hy_context_params cp = hy_context_default_params();
    cp.device = ctx_device;
    hy_context *c = NULL;
    hy_image *img = NULL;
    hy_status st = hy_context_create(m, &cp, &c);
    if (!st) st = hy_image_load(hy_test_asset("images/bus.jpg"), &img);
    if (!st) st = hy_detect(c, img, NULL, r);
    hy_image_free(img);
    hy_context_free(c);
    return st;
}

HY_TEST(fallen_back_model_detects_as_cpu_does) {
    REQUIRE_NO_GPU();
    hy_test_require_assets();
    hy_model *fb = NULL, *cpu = NULL;
    ASSERT_OK(load_on("cuda", 0, &fb));
    ASSERT_OK(load_on("cpu", 0, &cpu));
    /* contexts: the device it runs on, or the one asked for; never another */
    hy_context_params cp = hy_context_default_params();
    hy_context *c = NULL;
    static const char *ctx_ok[] = {"cuda", "cuda:0", "0", "cpu", "CPU"};
    for (size_t i = 0; i < sizeof ctx_ok / sizeof ctx_ok[0]; i++) {
        cp.device = ctx_ok[i];
        hy_status st = hy_context_create(fb, &cp, &c);
        if (st) HY_FAIL_("context device '%s': %s", ctx_ok[i], hy_last_error());
        ASSERT_STREQ(hy_context_device(c), "cpu");
        hy_context_free(c);
        c = NULL;
    }
    static const char *ctx_bad[] = {"ref", "cuda:1", "gpu"};
    for (size_t i = 0; i < sizeof ctx_bad / sizeof ctx_bad[0]; i++) {
        cp.device = ctx_bad[i];
        hy_status st = hy_context_create(fb, &cp, &c);
        if (st != HY_ERR_INVALID_ARG) HY_FAIL_("context device '%s' -> %s", ctx_bad[i], hy_status_name(st));
        ASSERT_TRUE(c == NULL);
    }
    hy_result *r1 = NULL, *r2 = NULL;
    ASSERT_OK(detect_bus(fb, "cuda", &r1));
    ASSERT_OK(detect_bus(cpu, NULL, &r2));
    size_t n = hy_result_count(r1);
    printf("  bus.jpg: %zu detections on the fallen-back model, %zu on cpu\n", n, hy_result_count(r2));
    int same = n == hy_result_count(r2) && n > 0;
    for (size_t i = 0; same && i < n; i++)
        same = memcmp(hy_result_get(r1, i), hy_result_get(r2, i), sizeof(hy_detection)) == 0;
    hy_result_free(r1);
    hy_result_free(r2);
    hy_model_free(fb);
    hy_model_free(cpu);
    ASSERT_TRUE(same);
}

/* ---- $HOTYOLO_CUDA_DRIVER (CTest: test_device_stub_driver, test_device_no_driver) ------ */

/* What the driver named by $HOTYOLO_CUDA_DRIVER must be reported as; NULL (skipped) when it
 * is not set or not one of the two known cases. */
static const char *expected_driver_reason(int *prefix) {
    const char *drv = getenv("HOTYOLO_CUDA_DRIVER");
    struct stat sb;
    if (!drv || !drv[0]) return NULL;
    if (strstr(drv, "/stubs/") && stat(drv, &sb) == 0) {
        *prefix = 0;
        return "CUDA_ERROR_STUB_LIBRARY";
    }
    if (strstr(drv, "/stubs/")) {
        printf("  skip: no CUDA toolkit stub driver at %s\n", drv);
        return NULL;
    }
    if (drv[0] == '/' && stat(drv, &sb) != 0) {
        *prefix = 1;
        return "no NVIDIA driver";
    }
    return NULL;
}

#define REQUIRE_DRIVER_CASE(want, prefix)                                                                         \
    do {                                                                                                          \
        if (!hy_cuda_built()) HY_SKIP("this build has no CUDA backend");                                         \
        want = expected_driver_reason(&prefix);                                                                   \
        if (!want)                                                                                                \
            HY_SKIP("HOTYOLO_CUDA_DRIVER=%s: not a toolkit stub that exists nor a missing driver",                \
                    getenv("HOTYOLO_CUDA_DRIVER") ? getenv("HOTYOLO_CUDA_DRIVER") : "(unset)");                   \
    } while (0)

HY_TEST(driver_override_reason_in_device_list) {
    const char *want;
    int prefix;
    REQUIRE_DRIVER_CASE(want, prefix);
    static hy_device_info d[MAX_ROWS];
    int n = hy_device_list(d, MAX_ROWS);
    ASSERT_TRUE(n >= 2);
    ASSERT_STREQ(d[1].name, "cuda");
    ASSERT_FALSE(d[1].usable);
    printf("  HOTYOLO_CUDA_DRIVER=%s: %s\n", getenv("HOTYOLO_CUDA_DRIVER"), d[1].why);
    if (prefix) ASSERT_EQ(strncmp(d[1].why, want, strlen(want)), 0);
    else {
        ASSERT_CONTAINS(d[1].why, want);
        ASSERT_CONTAINS(d[1].why, "stub");
    }
    ASSERT_TRUE(printable(d[1].why));
}

HY_TEST(driver_override_cuda_load_falls_back_with_it) {
    const char *want;
    int prefix;
    REQUIRE_DRIVER_CASE(want, prefix);
    hy_test_require_assets();
    hy_model *m = NULL;
    ASSERT_OK(load_on("cuda", 0, &m));
    char why[320];
    snprintf(why, sizeof why, "%s", hy_model_device_fallback(m));
    ASSERT_STREQ(hy_model_device(m), "cpu");
    hy_model_free(m);
    ASSERT_CONTAINS(why, want);
    ASSERT_ERR(load_on("cuda", 1, &m), HY_ERR_BACKEND);
    ASSERT_CONTAINS(hy_last_error(), want);
    ASSERT_CONTAINS(hy_last_error(), "no fallback");
}

/* Without a filter the driver_* cases are left out (they need their own process). */
int main(int argc, char **argv) {
    if (argc > 1) return hy_test_run(hy_test_cases, hy_test_ncases, argc, argv);
    static hy_test_case sel[512];
    int n = 0;
    for (int i = 0; i < hy_test_ncases; i++)
        if (strncmp(hy_test_cases[i].name, "driver_", 7) != 0) sel[n++] = hy_test_cases[i];
    return hy_test_run(sel, n, argc, argv);
}
