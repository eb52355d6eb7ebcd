/* hotyolo cache list|clear: the packed-weights cache (include/hotyolo/pcache.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hotyolo/pcache.h"

#define CMD "cache"

static void help(FILE *f) {
    fprintf(f,
            "Usage: hotyolo cache list | clear | dir\n"
            "\n"
            "The first load of a .pt or ONNX file writes its fused, packed weights (a hotyolo\n"
            ".safetensors file) into the cache; later loads map that file instead of reading\n"
            "the source (docs/formats.md \"Packed-weights cache\").\n"
            "  list    one line per entry, least recently used first: file, size, last use,\n"
            "          variant, classes, packed layout, sha256 of the source\n"
            "  clear   remove every entry\n"
            "  dir     print the cache directory\n"
            "Environment: HOTYOLO_CACHE_DIR (default $XDG_CACHE_HOME/hotyolo/packed, else\n"
            "~/.cache/hotyolo/packed), HOTYOLO_CACHE_MAX (bytes, or with K, M, G; default 1G),\n"
            "HOTYOLO_NO_CACHE=1 (as --no-cache of detect, val, serve, bench),\n"
            "HOTYOLO_CACHE_VERIFY=1 (re-hash each entry's data on every load).\n");
}

int hy_cli_cache(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help(stdout);
        return HY_CLI_OK;
    }
    if (argc != 2 || (strcmp(argv[1], "list") && strcmp(argv[1], "clear") && strcmp(argv[1], "dir"))) {
        hy_cli_error(CMD, "expected one of list, clear, dir (see 'hotyolo cache --help')");
        return HY_CLI_USAGE;
    }
    char dir[4096];
    if (hy_pcache_dir(dir, sizeof dir) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        return HY_CLI_RUNTIME;
    }
    if (!strcmp(argv[1], "dir")) {
        printf("%s\n", dir);
        return HY_CLI_OK;
    }
    if (!strcmp(argv[1], "clear")) {
        size_t n = 0;
        hy_status st = hy_pcache_clear(&n);
        printf("%s: removed %zu entr%s\n", dir, n, n == 1 ? "y" : "ies");
        if (st) {
            hy_cli_error(CMD, "%s", hy_last_error());
            return HY_CLI_RUNTIME;
        }
        return HY_CLI_OK;
    }
    hy_pcache_entry *e = NULL;
    size_t n = 0;
    if (hy_pcache_list(&e, &n) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        return HY_CLI_RUNTIME;
    }
    unsigned long long total = 0;
    for (size_t i = 0; i < n; i++) {
        char when[32] = "?";
        time_t t = (time_t)e[i].last_used;
        struct tm tm;
        if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%s  %8.1f MB  %s UTC  yolov8%s nc=%d  %s  source %s\n", e[i].file, (double)e[i].size / 1e6, when,
               e[i].variant[0] ? e[i].variant : "?", e[i].nc, e[i].layout[0] ? e[i].layout : "?",
               e[i].source_sha256[0] ? e[i].source_sha256 : "? (unreadable: rebuilt on next load)");
        total += e[i].size;
    }
    printf("%s: %zu entr%s, %.1f MB\n", dir, n, n == 1 ? "y" : "ies", (double)total / 1e6);
    hy_free(e);
    return HY_CLI_OK;
}
