/* Internal core: allocation, errors, logging, files, timing, thread pool. */
#ifndef HY_CORE_H
#define HY_CORE_H

#include "hotyolo.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HY_ASSERT(x)                                                         \
    do {                                                                     \
        if (!(x)) hy__assert_fail(__FILE__, __LINE__, #x);                   \
    } while (0)
_Noreturn void hy__assert_fail(const char *file, int line, const char *expr);

#define HY_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HY_MAX(a, b) ((a) > (b) ? (a) : (b))
#define HY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* All heap allocation goes through these (counted, so tests can check for leaks). */
void *hy__malloc(size_t n);
void *hy__calloc(size_t n, size_t size);
void *hy__realloc(void *p, size_t n);
void hy__free(void *p);
void *hy__aligned_alloc(size_t align, size_t n); /* free with hy__aligned_free */
void hy__aligned_free(void *p);
char *hy__strdup(const char *s);
char *hy__strndup(const char *s, size_t n);
int64_t hy__alloc_live(void);  /* number of live allocations */
int64_t hy__alloc_total(void); /* allocations (and reallocs) ever made */
void hy__alloc_count_add(int d); /* for allocators outside malloc (mmap) */

/* Sets the thread-local error text (printf-style) and returns st. */
hy_status hy__error(hy_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current error text with "prefix: " and returns st. */
hy_status hy__error_prefix(hy_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void hy__log(hy_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whole-file read into a heap buffer (hy__free). Errors name the path. */
hy_status hy__file_read(const char *path, uint8_t **data, size_t *size);

/* Read-only mapping of a whole file; files of 2 MiB and more at a 2 MiB-aligned address with
 * huge pages advised (2 MiB page-cache folios are then mapped whole). */
typedef struct hy__map {
    const uint8_t *data;
    size_t size;
} hy__map;
hy_status hy__map_open(const char *path, hy__map *out);
void hy__map_close(hy__map *m);
/* Syncs path, drops its pages from the page cache and reads it back through such a mapping,
 * so that the cache holds it in 2 MiB folios where the kernel and filesystem can (a file
 * just written sits in small ones). For files written once and loaded often (convert). */
hy_status hy__map_recache(const char *path);

double hy__now_ms(void); /* monotonic clock */

/* Page-aligned anonymous memory, zeroed, with every page mapped up front (MADV_POPULATE_WRITE:
 * one kernel call instead of a page fault per 4 KiB on first touch, ~2x cheaper here).
 * Counted like hy__malloc. Free with hy__pages_free(p, n). */
void *hy__pages_alloc(size_t n);
void hy__pages_free(void *p, size_t n);
/* The same in two steps, so that several threads can populate one buffer: hy__pages_map
 * reserves it (zero-filled on first touch, huge pages advised as above), and
 * hy__pages_populate maps [off, off + len) now (whole 4 KiB pages). Chunks that are whole
 * 2 MiB units (HY_PAGES_CHUNK) never split a huge page between threads. */
#define HY_PAGES_CHUNK ((size_t)2 << 20)
void *hy__pages_map(size_t n);
void hy__pages_populate(void *p, size_t off, size_t len);
/* Under HY_PAGES_PROBE, one buffer's chunks share a probe: the first whole 2 MiB chunk is
 * populated on a huge page and timed; while huge chunks take under HY_PAGES_PROBE_MS each (the
 * host backs them: ~0.2 ms here, against ~0.8 ms for 2 MiB of 4 KiB pages) the following ones
 * go on huge pages too, else (a host fault per 4 KiB, or compaction: 1-4 ms) the rest go on 4
 * KiB pages. Other policies: hy__pages_populate. Zero the probe before the first chunk. */
#define HY_PAGES_PROBE_MS 0.5
typedef struct hy__pages_probe {
    atomic_int state;       /* 0 undecided, 1 probing, 2 huge, 3 small */
    atomic_int huge_chunks; /* chunks populated on huge pages */
    atomic_int probe_us;    /* the huge chunk's populate time that decided, microseconds: the
                               probe's, or the slow one that stopped huge pages (-1: none) */
} hy__pages_probe;
void hy__pages_probe_reset(hy__pages_probe *pr);
void hy__pages_populate_probed(void *p, size_t off, size_t len, hy__pages_probe *pr);
/* Maps the whole 4 KiB pages inside [p, p + n) of any writable buffer (a malloc'd one too)
 * before it is written, when some are not mapped yet (a fresh malloc: glibc mmaps large
 * blocks): one batched kernel call instead of a trap per page (a 810x1080 decode in a fresh
 * process: ~5.4 -> ~4.0 ms). Advisory: nothing is written, errors are ignored; a buffer
 * already mapped (heap reuse in a warm process) costs a mincore scan (~3 us per MiB). */
void hy__prefault(void *p, size_t n);

/* Whether buffers of 2 MiB and more go on transparent huge pages: HY_HUGE_PAGES=1|on|yes
 * (HY_PAGES_HUGE) / 0|off|no (HY_PAGES_SMALL) / probe (HY_PAGES_PROBE: arenas try huge pages
 * chunk by chunk while the host backs them, hy__pages_populate_probed; hy__pages_alloc uses
 * 4 KiB pages) in the environment, else (unset or "auto") HY_PAGES_HUGE unless the kernel
 * hands free pages back to a hypervisor (hy__free_page_reporting): HY_PAGES_SMALL. Read
 * once. */
enum { HY_PAGES_SMALL = 0, HY_PAGES_HUGE = 1, HY_PAGES_PROBE = 2 };
int hy__huge_pages(void);
/* 1 when a virtio-balloon device under sysfs_root ("/sys") has negotiated free page
 * reporting (feature bit 5): free memory is returned to the host in >= 2 MiB blocks and a
 * fresh huge page often costs host faults (~1-3 ms per 2 MiB here, docs/design.md). */
int hy__free_page_reporting(const char *sysfs_root);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool hy__mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool hy__add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- thread pool (ggml-style ith/nth split) ---------------------------------------- */
typedef struct hy__threadpool hy__threadpool;
/* fn runs on every thread ith in [0, nth); the caller's thread is ith = 0. */
typedef void (*hy__task_fn)(void *ctx, int ith, int nth);
hy_status hy__threadpool_create(int n_threads, hy__threadpool **out);
void hy__threadpool_free(hy__threadpool *tp);
int hy__threadpool_size(const hy__threadpool *tp);
/* Runs fn(ctx, ith, nth) on all threads and waits; no allocation. tp may be NULL (1 thread). */
void hy__threadpool_run(hy__threadpool *tp, hy__task_fn fn, void *ctx);
/* Runs item(ctx, i, ith) once for every i in [0, n), the threads taking one item at a time
 * from the work queue (hy__workq below), and waits. For coarse, uneven items (weight
 * packing, populate chunks, conv bands). */
typedef void (*hy__item_fn)(void *ctx, long i, int ith);
void hy__threadpool_each(hy__threadpool *tp, long n, hy__item_fn item, void *ctx);
int hy__cpu_count(void);

/* Dynamic work sharing inside one hy__threadpool_run: items [0, n) are handed out in chunks
 * from shared counters instead of one fixed range per thread, so a thread that runs slower
 * (its SMT sibling busy, its vCPU shared with a neighbour, an efficiency core) takes fewer
 * chunks instead of holding every other thread at the barrier. The items are split into one
 * contiguous part per thread (up to HY_WORKQ_PARTS); a thread takes chunks from its own part
 * first, then from the others'. Ops number their items so that part ith of every layer covers
 * the same share of the image (rows or pixel columns), so what thread ith reads was mostly
 * written by thread ith: when the host puts the threads on different core complexes, the
 * data stays in that core's cache. Which thread computes an item never changes the item's
 * result. Initialise before the run. */
#define HY_WORKQ_PARTS 8
typedef struct hy__workq {
    struct {
        _Alignas(64) atomic_long next;
        long end;
    } part[HY_WORKQ_PARTS];
    long chunk;
    int nparts;
} hy__workq;
/* Items [0, n) in chunks of `chunk` (>= 1) split into min(nth, HY_WORKQ_PARTS) parts. */
static inline void hy__workq_init_chunk(hy__workq *q, long n, int nth, long chunk) {
    q->chunk = chunk > 0 ? chunk : 1;
    q->nparts = nth < 1 ? 1 : nth > HY_WORKQ_PARTS ? HY_WORKQ_PARTS : nth;
    const long nchunks = (n + q->chunk - 1) / q->chunk;
    for (int p = 0; p < q->nparts; p++) {
        const long c0 = nchunks * p / q->nparts, c1 = nchunks * (p + 1) / q->nparts;
        atomic_init(&q->part[p].next, c0 * q->chunk);
        q->part[p].end = c1 * q->chunk < n ? c1 * q->chunk : n;
    }
}
/* chunk: about `grains` chunks per thread, at least `min_chunk` items (grains 0: min_chunk). */
static inline void hy__workq_init(hy__workq *q, long n, int nth, int grains, long min_chunk) {
    long per = nth > 0 && grains > 0 ? (n + (long)nth * grains - 1) / ((long)nth * grains) : 1;
    hy__workq_init_chunk(q, n, nth, per > min_chunk ? per : (min_chunk > 0 ? min_chunk : 1));
}
/* Thread ith's next chunk [*i0, *i1); false when none is left. */
static inline bool hy__workq_take(hy__workq *q, int ith, long *i0, long *i1) {
    const int np = q->nparts;
    int p = ith % np;
    for (int k = 0; k < np; k++, p = p + 1 == np ? 0 : p + 1) {
        if (atomic_load_explicit(&q->part[p].next, memory_order_relaxed) >= q->part[p].end) continue;
        const long a = atomic_fetch_add_explicit(&q->part[p].next, q->chunk, memory_order_relaxed);
        if (a >= q->part[p].end) continue;
        *i0 = a;
        *i1 = a + q->chunk < q->part[p].end ? a + q->chunk : q->part[p].end;
        return true;
    }
    return false;
}

#endif
