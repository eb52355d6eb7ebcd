#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hy_test.h"

#ifndef HY_ASSETS_DEFAULT
#define HY_ASSETS_DEFAULT "../shared/assets"
#endif

// --- runner ---------------------------------------------------------------------------------

hy_test_case hy_test_cases[512];
int hy_test_ncases;
int hy_test_failed_flag;
int hy_test_skipped_flag;

/* hy_test_asset leaves a case by longjmp, which is only valid on the runner's own stack. */
static jmp_buf case_jmp;
static int case_active;
static pid_t runner_pid;
static pthread_t runner_thread;

void hy_test_skip_note(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (file) printf("  %s:%d: skip: ", file, line);
    else printf("  skip: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    hy_test_skipped_flag = 1;
}

static void run_case(const hy_test_case *c) {
    hy_test_failed_flag = 0;
    hy_test_skipped_flag = 0;
    case_active = 1;
    if (setjmp(case_jmp) == 0) c->fn();
    case_active = 0;
}

int hy_test_run(const hy_test_case *cases, int n, int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    runner_pid = getpid();
    runner_thread = pthread_self();
    for (int i = 0; i < n; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
        run_case(&cases[i]);
        const char *tag = hy_test_failed_flag ? "FAIL" : hy_test_skipped_flag ? "skip" : "ok  ";
        printf("%s %s\n", tag, cases[i].name);
        fflush(stdout);
        if (hy_test_failed_flag) failed++; // a failure before a skip still fails
        else if (hy_test_skipped_flag) skipped++;
        else passed++;
    }
    printf("%d passed, %d failed", passed, failed);
    if (skipped) printf(", %d skipped", skipped);
    printf("\n");
    fflush(stdout);
    if (failed) return 1;
    return skipped && !passed ? 77 : 0;
}

// --- assets and helpers ----------------------------------------------------------------------

static const char *assets_dir(void) {
    const char *e = getenv("HY_ASSETS");
    return e && *e ? e : HY_ASSETS_DEFAULT;
}

const char *hy_test_asset(const char *rel) {
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    struct stat st;
    if (stat(assets_dir(), &st) != 0) {
        if (case_active && getpid() == runner_pid && pthread_equal(pthread_self(), runner_thread)) {
            hy_test_skip_note(NULL, 0, "shared assets not found at '%s' (needs %s)",
                              assets_dir(), rel);
            longjmp(case_jmp, 1);
        }
        fprintf(stderr, "shared assets not found at '%s' (set HY_ASSETS to ../shared/assets)\n", assets_dir());
        exit(2);
    }
    snprintf(b, 4096, "%s/%s", assets_dir(), rel);
    return b;
}

void hy_test_require_assets(void) { (void)hy_test_asset("."); }

const char *hy_test_tmp(const char *name) {
    static char bufs[8][4096];
    static int slot;
    static char dir[1024];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/hy_test_%d", t && *t ? t : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    char *b = bufs[slot++ & 7];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

const char *hy_test_mislabelled_yolov5(void) {
    static char path[4096];
    if (path[0]) return path;
    const char *src = hy_test_asset("weights/yolov5n.pt");
    char out[4096];
    snprintf(out, sizeof out, "%s", hy_test_tmp("yolov5n_as_yolov8.safetensors"));
    hy_convert_params cp = hy_convert_default_params();
    cp.load.cache = 0;
    if (hy_convert(src, out, &cp) != HY_OK) {
        fprintf(stderr, "hy_test_mislabelled_yolov5: %s\n", hy_last_error());
        return NULL;
    }
    FILE *f = fopen(out, "r+b");
    unsigned char head[8];
    if (!f || fread(head, 1, 8, f) != 8) {
        if (f) fclose(f);
        return NULL;
    }
    unsigned long long n = 0;
    for (int k = 7; k >= 0; k--) n = (n << 8) | head[k];
    char *h = n < (1u << 24) ? malloc(n + 1) : NULL;
    int ok = h && fread(h, 1, n, f) == n;
    char *at = NULL;
    if (ok) {
        h[n] = 0;
        at = strstr(h, "\"hotyolo.arch\":\"yolov5\"");
    }
    if (at) {
        memcpy(at + strlen("\"hotyolo.arch\":\"yolov"), "8", 1);
        ok = fseek(f, 8, SEEK_SET) == 0 && fwrite(h, 1, n, f) == n;
    }
    ok = (fclose(f) == 0) && ok && at;
    free(h);
    if (!ok) return NULL;
    snprintf(path, sizeof path, "%s", out);
    return path;
}

float *hy_test_npy_load(const char *path, long long shape[8], int *ndim, size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return NULL;
    }
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
        fprintf(stderr, "%s: not a version-1 .npy file\n", path);
        fclose(f);
        return NULL;
    }
    size_t hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    char hdr[4096];
    if (hlen >= sizeof hdr || fread(hdr, 1, hlen, f) != hlen) {
        fprintf(stderr, "%s: bad header\n", path);
        fclose(f);
        return NULL;
    }
    hdr[hlen] = 0;
    if (!strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False")) {
        fprintf(stderr, "%s: expected little-endian float32 C order: %s\n", path, hdr);
        fclose(f);
        return NULL;
    }
    const char *s = strstr(hdr, "'shape': (");
    if (!s) {
        fclose(f);
        return NULL;
    }
    s += 10;
    *ndim = 0;
    size_t n = 1;
    while (*s && *s != ')' && *ndim < 8) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        shape[(*ndim)++] = v;
        n *= (size_t)v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    float *data = malloc(n * sizeof(float));
    if (!data || fread(data, sizeof(float), n, f) != n) {
        fprintf(stderr, "%s: short data\n", path);
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *count = n;
    return data;
}

unsigned char *hy_test_synth_rgb(int w, int h) {
    unsigned char *p = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                unsigned t = (unsigned)x * 2654435761u + (unsigned)y * 40503u + (unsigned)c * 97u;
                t ^= t >> 13;
                t *= 1274126177u;
                unsigned smooth = (unsigned)(x * 3 + y * 5 + c * 60);
                p[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] = (unsigned char)((smooth + ((t >> 24) & 63)) & 255);
            }
    return p;
}

unsigned long long hy_test_fnv1a(const void *data, size_t n) {
    const unsigned char *b = data;
    unsigned long long h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

// --- bounded runs (resource bombs) -----------------------------------------------------------


int hy_test_sanitized(void) {
    const char *e = getenv("HY_TEST_SANITIZED");
    return e && *e && strcmp(e, "0") != 0;
}

/* kB value of one "Name:" line of /proc/self/status, -1 if absent. */
static long status_kb(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int hy_test_bounded(int (*fn)(void *arg), void *arg, double max_extra_mb, double max_s,
                    hy_test_bound *out) {
    hy_test_bound r = {0, 0, -1};
    int fds[2];
    if (pipe(fds) != 0) return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(fds[0]);
        long rss0 = status_kb("VmRSS"), vm0 = status_kb("VmSize");
        if (!hy_test_sanitized() && vm0 > 0) {
            rlim_t cap = (rlim_t)vm0 * 1024 + (rlim_t)((max_extra_mb + 64) * 1048576.0);
            struct rlimit rl = {cap, cap};
            setrlimit(RLIMIT_AS, &rl);
        }
        double t0 = mono_s();
        int res = fn(arg);
        double dt = mono_s() - t0;
        long hwm = status_kb("VmHWM");
        hy_test_bound c = {(double)(hwm - rss0) / 1024.0, dt, res};
        if (write(fds[1], &c, sizeof c) != (ssize_t)sizeof c) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    double t0 = mono_s(), kill_after = 10 * max_s + 5;
    int status = 0, done = 0;
    while (!done) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = 1;
            break;
        }
        if (mono_s() - t0 > kill_after) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "  bounded: killed after %.1f s\n", kill_after);
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int got = done && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              read(fds[0], &r, sizeof r) == (ssize_t)sizeof r;
    close(fds[0]);
    if (out) *out = r;
    if (!got) {
        fprintf(stderr, "  bounded: child did not finish (status 0x%x)\n", status);
        return 1;
    }
    double tmax = hy_test_sanitized() ? max_s * 10 : max_s;
    double mmax = hy_test_sanitized() ? max_extra_mb * 3 : max_extra_mb;
    if (r.fn_result != 0 || r.seconds > tmax || r.extra_rss_mb > mmax) {
        fprintf(stderr, "  bounded: fn returned %d, %.3f s (max %.1f), +%.1f MB RSS (max %.0f)\n",
                r.fn_result, r.seconds, tmax, r.extra_rss_mb, mmax);
        return 1;
    }
    return 0;
}
