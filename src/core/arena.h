/* Bump allocator over chained blocks, freed all at once. For readers of untrusted files
 * (pickle, ONNX) that build many small objects: one cap on the bytes the arena may hold,
 * checked BEFORE it grows, keeps what an input can make it allocate bounded.
 *
 *   hy__arena a;
 *   hy__arena_init(&a, 64 << 20);                  // at most 64 MiB of blocks
 *   char *s = hy__arena_strndup(&a, name, len);    // NULL: out of memory or over the cap
 *   if (!s && a.over_limit) ...                    // the cap, not the system, said no
 *   hy__arena_deinit(&a);                          // frees every block
 *
 * Not thread-safe. Memory is never returned before deinit. */
#ifndef HY_CORE_ARENA_H
#define HY_CORE_ARENA_H

#include "core/core.h"

#define HY_ARENA_BLOCK ((size_t)64 << 10) /* default block size (bytes of payload) */
#define HY_ARENA_MAX_ALIGN 64             /* blocks start 64-byte aligned */
#define HY_ARENA_NO_LIMIT SIZE_MAX

typedef struct hy__arena_block hy__arena_block;

typedef struct hy__arena {
    hy__arena_block *head; /* the block small allocations are carved from */
    size_t total;          /* payload bytes of all blocks */
    size_t limit;          /* total may not grow past this; callers may raise it any time */
    bool over_limit;       /* the last failed allocation hit the limit (not the system) */
} hy__arena;

/* An empty arena (allocates nothing yet); limit: HY_ARENA_NO_LIMIT for none. */
void hy__arena_init(hy__arena *a, size_t limit);
/* Frees every block; the arena is empty (and reusable) afterwards. */
void hy__arena_deinit(hy__arena *a);

/* n bytes (n = 0 gives a unique 1-byte block) aligned to `align` (a power of two <= 64),
 * uninitialised. NULL when n overflows, the system is out of memory, or the block would take
 * the arena over its limit (then over_limit is set). Requests over a quarter block get a block
 * of their own, so the current block keeps its free space. */
void *hy__arena_alloc(hy__arena *a, size_t n, size_t align);
/* The same, zeroed. */
void *hy__arena_zalloc(hy__arena *a, size_t n, size_t align);
/* Zeroed array of n elements of `size` bytes, 16-byte aligned; NULL also when n * size
 * overflows. */
void *hy__arena_array(hy__arena *a, size_t n, size_t size);
/* NUL-terminated copy of s[0, n) (s may hold NULs; it need not be terminated). */
char *hy__arena_strndup(hy__arena *a, const void *s, size_t n);

#endif
