/* The server's request validation, called directly (src/server/routes.c, the pure functions of
 * server_impl.h): the JSON body pre-check, the KServe v2 infer body parser, query argument and
 * class-list checks, Host/Origin checks, path confinement and log escaping. The first input
 * byte picks the function (mod 8); the rest is its text. Length-taking functions get an exact
 * heap copy without a terminator (ASan catches a read past it); the others a NUL-terminated
 * copy. Each result is checked against what the function promises. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server_impl.h"

static char g_dir[PATH_MAX]; /* realpath of a folder holding one regular file, "w.pt" */

static void cleanup(void) {
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/w.pt", g_dir);
    remove(p);
    remove(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char dir[256], p[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/hy-fuzz-http-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/w.pt", dir);
    FILE *f = fopen(p, "wb");
    if (!f || fputs("x", f) < 0 || fclose(f) != 0 || !realpath(dir, g_dir)) {
        perror(dir);
        abort();
    }
    atexit(cleanup);
    return 0;
}

static int has_ctl(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] & 7;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    char *exact = malloc(len ? len : 1); /* no terminator */
    char *str = malloc(len + 1);         /* NUL-terminated (stops at an inner NUL) */
    if (!exact || !str) abort();
    memcpy(exact, in, len);
    memcpy(str, in, len);
    str[len] = '\0';
    char err[256];
    err[0] = '\0';
    switch (which) {
    case 0: { /* pre-check alone, with the bounds of a 64-pixel infer body */
        size_t maxv = hy__v2_max_values(64), maxn = hy__v2_max_nodes(64);
        if (hy__json_precheck(exact, len, maxv, maxn, 16, err, sizeof err) != 0 && !err[0])
            __builtin_trap(); /* a refusal always says why */
        break;
    }
    case 1: { /* KServe v2 infer body: shape and every value as promised */
        hy__v2_input v;
        memset(&v, 0, sizeof v);
        if (hy__v2_parse_infer(exact, len, 64, &v, err, sizeof err) == 0) {
            if (v.h < 32 || v.w < 32 || v.h > 64 || v.w > 64 || v.h % 32 || v.w % 32 || !v.x)
                __builtin_trap();
            for (size_t i = 0; i < (size_t)3 * v.h * v.w; i++)
                if (!(v.x[i] >= 0.0f && v.x[i] <= 1.0f)) __builtin_trap();
            hy__v2_input_free(&v);
        } else if (!err[0]) {
            __builtin_trap();
        }
        break;
    }
    case 2: { /* one query argument "key=value" (split at the first '=') */
        const char *eq = memchr(exact, '=', len);
        size_t kl = eq ? (size_t)(eq - exact) : len;
        const char *val = eq ? eq + 1 : exact + len;
        size_t vl = eq ? len - kl - 1 : 0;
        if (hy__query_arg_check("model,conf,iou,max_det,imgsz,classes", exact, kl, val, vl, err,
                                sizeof err) == 0) {
            if (has_ctl(exact, kl) || has_ctl(val, vl) || memchr(exact, 0, kl)) __builtin_trap();
        }
        break;
    }
    case 3: { /* classes=0,2,5 */
        int ids[16], n = -1;
        if (hy__parse_classes(str, ids, 16, 79, &n, err, sizeof err) == 0) {
            if (n < 0 || n > 16) __builtin_trap();
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] > 79) __builtin_trap();
        }
        break;
    }
    case 4: { /* Host, then Origin: "host\norigin" */
        char *nl = strchr(str, '\n');
        if (nl) *nl = '\0';
        (void)hy__host_allowed(str, "fuzzhost", "a.example,b.example:8080");
        (void)hy__host_allowed(str, NULL, NULL);
        if (nl) (void)hy__origin_allowed(nl + 1, str, "http://a.example");
        break;
    }
    case 5: { /* a load path confined to g_dir */
        char resolved[PATH_MAX];
        if (hy__path_in_dirs(str, g_dir, resolved, sizeof resolved) == 1) {
            size_t dl = strlen(g_dir);
            struct stat sb;
            if (strncmp(resolved, g_dir, dl) || resolved[dl] != '/' || stat(resolved, &sb) ||
                !S_ISREG(sb.st_mode))
                __builtin_trap();
        }
        break;
    }
    default: { /* log escaping into a buffer of 1..64 bytes */
        char out[64];
        size_t cap = 1 + (len ? (unsigned char)in[len - 1] % 64 : 0);
        hy__log_escape(str, out, cap);
        size_t ol = strnlen(out, cap);
        if (ol >= cap || has_ctl(out, ol)) __builtin_trap();
        for (size_t i = 0; i < ol; i++)
            if ((unsigned char)out[i] >= 0x7f) __builtin_trap();
        break;
    }
    }
    free(exact);
    free(str);
    return 0;
}
