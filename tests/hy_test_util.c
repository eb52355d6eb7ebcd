#define _POSIX_C_SOURCE 200809L
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
