/* Packed-weights cache (internal side of include/hotyolo/pcache.h): hy_model_load's hooks. */
#ifndef HY_MODEL_PCACHE_H
#define HY_MODEL_PCACHE_H

#include <sys/stat.h>

#include "hotyolo.h"
#include "io/weights.h"

typedef struct hy__pcache_key {
    char entry[4200];     /* cache file for this source */
    char dir[4096];
    struct stat src;      /* the source as stat'ed when the key was made */
    hy__wformat format;   /* the source's format (pt, pt-legacy, onnx) */
    double t_key;         /* unix seconds when the key was made (before any read) */
} hy__pcache_key;

/* 1 when path may go through the cache (params->cache, strict default matching, a .pt or
 * ONNX source, a cache directory known); *k is then filled. 0: load directly. */
int hy__pcache_key_init(const char *path, const hy_model_params *p, hy__pcache_key *k);

/* HY_OK: *out loaded from the entry (its format reported as the source's). HY_ERR_NOT_FOUND:
 * no usable entry (a corrupt or stale one is logged through hy_log_set and removed). */
hy_status hy__pcache_load(const hy__pcache_key *k, const char *path, const hy_model_params *p,
                          hy_model **out);

/* Writes the entry for path (after a successful direct load), then bounds the cache size.
 * Failures are logged, never returned: the cache is only a speed-up. */
void hy__pcache_fill(const hy__pcache_key *k, const char *path);

#endif
