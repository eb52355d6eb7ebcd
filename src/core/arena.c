/* Bump allocator over chained blocks (see arena.h). */
#include "core/arena.h"

#include <string.h>

struct hy__arena_block {
    hy__arena_block *next;
    size_t cap, used;
    _Alignas(HY_ARENA_MAX_ALIGN) unsigned char data[];
};

void hy__arena_init(hy__arena *a, size_t limit) {
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void hy__arena_deinit(hy__arena *a) {
    if (!a) return;
    for (hy__arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        hy__aligned_free(b);
    }
    a->head = NULL;
    a->total = 0;
    a->over_limit = false;
}

/* A new block of cap payload bytes, linked in; NULL past the limit or out of memory. */
static hy__arena_block *grow(hy__arena *a, size_t cap, bool own) {
    size_t total, bytes;
    if (!hy__add_ok(a->total, cap, &total) || total > a->limit) {
        a->over_limit = true;
        return NULL;
    }
    if (!hy__add_ok(sizeof(hy__arena_block), cap, &bytes)) return NULL;
    hy__arena_block *b = hy__aligned_alloc(HY_ARENA_MAX_ALIGN, bytes);
    if (!b) return NULL;
    b->cap = cap;
    b->used = 0;
    a->total = total;
    if (own && a->head) { /* behind the head: the head keeps its free space */
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    return b;
}

void *hy__arena_alloc(hy__arena *a, size_t n, size_t align) {
    HY_ASSERT(align && align <= HY_ARENA_MAX_ALIGN && !(align & (align - 1)));
    if (n == 0) n = 1;
    hy__arena_block *b = a->head;
    if (b) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->cap && n <= b->cap - at) {
            b->used = at + n;
            return b->data + at;
        }
    }
    bool own = n > HY_ARENA_BLOCK / 4;
    if (!(b = grow(a, own ? n : HY_ARENA_BLOCK, own))) return NULL;
    b->used = n;
    return b->data; /* block starts are HY_ARENA_MAX_ALIGN-aligned */
}

void *hy__arena_zalloc(hy__arena *a, size_t n, size_t align) {
    void *p = hy__arena_alloc(a, n, align);
    if (p) memset(p, 0, n);
    return p;
}

void *hy__arena_array(hy__arena *a, size_t n, size_t size) {
    size_t bytes;
    if (!hy__mul_ok(n, size, &bytes)) return NULL;
    return hy__arena_zalloc(a, bytes, 16);
}

char *hy__arena_strndup(hy__arena *a, const void *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = hy__arena_alloc(a, n + 1, 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}
