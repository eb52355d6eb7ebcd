#include <string.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hy_test.h"

#ifndef HY_ASSETS_DEFAULT
#define HY_ASSETS_DEFAULT "../shared/assets"
#endif

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
        fprintf(stderr, "shared assets not found at '%s' (set HY_ASSETS to ../shared/assets)\n", assets_dir());
        exit(2);
    }
    snprintf(b, 4096, "%s/%s", assets_dir(), rel);
    return b;
}

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
