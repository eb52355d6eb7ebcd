/* hotyolo packed-weights cache: the first load of a .pt or ONNX file writes its fused,
 * packed safetensors into a per-user cache directory; later loads map that file instead
 * (docs/formats.md "Packed-weights cache"). hy_model_load uses it on its own
 * (hy_model_params.cache); these calls only inspect and empty it.
 *
 *   hy_pcache_entry *e; size_t n;
 *   if (hy_pcache_list(&e, &n) == HY_OK) { for (...) puts(e[i].file); hy_free(e); }
 */
#ifndef HOTYOLO_PCACHE_H
#define HOTYOLO_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "hotyolo.h"

/* One cache entry (a fused, packed safetensors file). */
typedef struct hy_pcache_entry {
    char file[96];            /* file name inside the cache directory */
    uint64_t size;            /* bytes */
    int64_t created;          /* unix seconds the entry was written (or re-checked) */
    int64_t last_used;        /* unix seconds of its last load (LRU order) */
    char source_sha256[65];   /* sha256 of the .pt/.onnx it was built from ("" if unreadable) */
    char layout[64];          /* packed layout id, e.g. "cpu-avx2-v3" */
    char variant[16];         /* "n", "s", ... */
    int nc;                   /* classes (0 if unreadable) */
} hy_pcache_entry;

/* The cache directory: $HOTYOLO_CACHE_DIR, else $XDG_CACHE_HOME/hotyolo/packed, else
 * $HOME/.cache/hotyolo/packed. HY_ERR_NOT_FOUND when none can be named (no HOME);
 * HY_ERR_INVALID_ARG when buf (len bytes) is too small. Thread-safe. */
HY_API hy_status hy_pcache_dir(char *buf, size_t len);

/* Lists the entries, least recently used first, into *out (free with hy_free; NULL when
 * there are none) and their count into *n. A missing directory is an empty cache. */
HY_API hy_status hy_pcache_list(hy_pcache_entry **out, size_t *n);

/* Removes every entry (and stale temporary files); *n_removed (may be NULL) gets the
 * count. Processes that mapped an entry keep their mapping. */
HY_API hy_status hy_pcache_clear(size_t *n_removed);

#endif
