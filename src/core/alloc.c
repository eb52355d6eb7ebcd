#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_llong live, total;

void *hy__malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p) {
        atomic_fetch_add(&live, 1);
        atomic_fetch_add(&total, 1);
    }
    return p;
}
void *hy__calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p) {
        atomic_fetch_add(&live, 1);
        atomic_fetch_add(&total, 1);
    }
    return p;
}
void *hy__realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (q && !p) atomic_fetch_add(&live, 1);
    if (q) atomic_fetch_add(&total, 1);
    return q;
}
void hy__free(void *p) {
    if (!p) return;
    atomic_fetch_sub(&live, 1);
    free(p);
}
void *hy__aligned_alloc(size_t align, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : align) != 0) return NULL;
    atomic_fetch_add(&live, 1);
    atomic_fetch_add(&total, 1);
    return p;
}
void hy__aligned_free(void *p) { hy__free(p); }
char *hy__strndup(const char *s, size_t n) {
    char *d = hy__malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
char *hy__strdup(const char *s) { return hy__strndup(s, strlen(s)); }
int64_t hy__alloc_live(void) { return atomic_load(&live); }
int64_t hy__alloc_total(void) { return atomic_load(&total); }
void hy__alloc_count_add(int d) {
    atomic_fetch_add(&live, d);
    if (d > 0) atomic_fetch_add(&total, d);
}
