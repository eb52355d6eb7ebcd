#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static hy_status open_regular(const char *path, int *fd_out, size_t *size_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hy__error(errno == ENOENT ? HY_ERR_NOT_FOUND : HY_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hy__error(HY_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hy__error(HY_ERR_IO, "%s: not a regular file", path);
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return HY_OK;
}

hy_status hy__file_read(const char *path, uint8_t **data, size_t *size) {
    int fd = -1;
    size_t n = 0;
    hy_status st = open_regular(path, &fd, &n);
    if (st) return st;
    uint8_t *buf = hy__malloc(n + 1);
    if (!buf) {
        close(fd);
        return hy__error(HY_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            hy__free(buf);
            close(fd);
            return hy__error(HY_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return HY_OK;
}

#define HY_HUGE ((size_t)2 << 20)

/* Maps n bytes of fd read-only at a 2 MiB-aligned address (files of 2 MiB and more) with
 * huge pages advised: page-cache folios of 2 MiB (which readahead allocates for such a
 * mapping where the kernel and filesystem support it) are then mapped one PMD each. The
 * packed weights of a YOLOv8n file (34 MB): 22 faults and ~0.1 ms to map instead of ~530
 * faults and ~2.2 ms, and fewer TLB misses for every pass that streams them. */
static void *map_file(int fd, size_t n) {
    if (n < HY_HUGE) return mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    const size_t span = (n + 4095) & ~(size_t)4095;
    uint8_t *raw = mmap(NULL, span + HY_HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return MAP_FAILED;
    uint8_t *a = (uint8_t *)(((uintptr_t)raw + HY_HUGE - 1) & ~(uintptr_t)(HY_HUGE - 1));
    void *m = mmap(a, n, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        munmap(raw, span + HY_HUGE);
        return MAP_FAILED;
    }
    if (a > raw) munmap(raw, (size_t)(a - raw));
    if (raw + span + HY_HUGE > a + span) munmap(a + span, (size_t)(raw + span + HY_HUGE - (a + span)));
#ifdef MADV_HUGEPAGE
    madvise(a, span, MADV_HUGEPAGE); /* a hint: refused or unsupported is fine */
#endif
    return a;
}

hy_status hy__map_open(const char *path, hy__map *out) {
    int fd = -1;
    size_t n = 0;
    hy_status st = open_regular(path, &fd, &n);
    if (st) return st;
    const uint8_t *p = NULL;
    if (n > 0) {
        void *m = map_file(fd, n);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return hy__error(HY_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        p = m;
    }
    close(fd);
    out->data = p;
    out->size = n;
    return HY_OK;
}

hy_status hy__map_recache(const char *path) {
    int fd = -1;
    size_t n = 0;
    hy_status st = open_regular(path, &fd, &n);
    if (st) return st;
    if (n < HY_HUGE) {
        close(fd);
        return HY_OK;
    }
    /* drops the (clean, synced) cached pages, then reads the file back through a mapping
     * like hy__map_open's, so readahead brings it in as 2 MiB folios where it can */
    int e = fdatasync(fd) != 0 ? errno : posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* returns it */
    if (e) {
        close(fd);
        return hy__error(HY_ERR_IO, "%s: cannot drop its cached pages: %s", path, strerror(e));
    }
    void *m = map_file(fd, n);
    close(fd);
    if (m == MAP_FAILED) return hy__error(HY_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    volatile uint8_t sink = 0;
    for (size_t o = 0; o < n; o += 4096) sink ^= ((const uint8_t *)m)[o];
    (void)sink;
    munmap(m, n);
    return HY_OK;
}

void hy__map_close(hy__map *m) {
    if (m && m->data) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}

double hy__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Large buffers (activation arenas, scratch) go on transparent huge pages when hy__huge_pages()
 * says so and the kernel allows it (THP "always" or "madvise"): populating 16 MiB then costs
 * ~2 ms instead of ~7 ms of 4 KiB faults, munmap is cheaper and the forward pass takes fewer
 * TLB misses. Where the host takes free memory back (free page reporting) a fresh huge page
 * costs 10-60 ms per 16 MiB more after a few idle seconds, so "auto" picks 4 KiB pages there.
 * Sizes are rounded to whole huge pages; hy__pages_free rounds the same way. */
int hy__free_page_reporting(const char *sysfs_root) {
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/bus/virtio/drivers/virtio_balloon", sysfs_root);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int on = 0;
    for (struct dirent *e; !on && (e = readdir(d));) {
        if (strncmp(e->d_name, "virtio", 6) != 0) continue; /* bound devices: virtio<N> */
        snprintf(path, sizeof path, "%s/%s/features", dir, e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        char bits[80] = ""; /* one '0'/'1' per feature bit, bit 0 first */
        if (fgets(bits, sizeof bits, f) && strlen(bits) > 5 && bits[5] == '1') on = 1;
        fclose(f);
    }
    closedir(d);
    return on;
}

int hy__huge_pages(void) {
    static atomic_int wanted = -1; /* every thread computes the same value */
    int w = atomic_load_explicit(&wanted, memory_order_relaxed);
    if (w < 0) {
        const char *e = getenv("HY_HUGE_PAGES");
        if (e && (!strcmp(e, "0") || !strcmp(e, "off") || !strcmp(e, "no")))
            w = 0;
        else if (e && (!strcmp(e, "1") || !strcmp(e, "on") || !strcmp(e, "yes")))
            w = 1;
        else if (e && !strcmp(e, "probe"))
            w = HY_PAGES_PROBE;
        else
            w = hy__free_page_reporting("/sys") ? HY_PAGES_SMALL : HY_PAGES_HUGE;
        atomic_store_explicit(&wanted, w, memory_order_relaxed);
    }
    return w;
}

static size_t pages_span(size_t n) { return n >= HY_HUGE ? (n + HY_HUGE - 1) & ~(HY_HUGE - 1) : n; }

void *hy__pages_map(size_t n) {
    if (n == 0) n = 1;
    size_t span = pages_span(n);
    void *p;
    const int policy = hy__huge_pages();
    if (span < HY_HUGE || policy == HY_PAGES_SMALL) {
        p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
    } else {
        /* over-map by one huge page, keep the 2 MiB-aligned span */
        uint8_t *raw = mmap(NULL, span + HY_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) return NULL;
        uint8_t *a = (uint8_t *)(((uintptr_t)raw + HY_HUGE - 1) & ~(uintptr_t)(HY_HUGE - 1));
        if (a > raw) munmap(raw, (size_t)(a - raw));
        if (raw + span + HY_HUGE > a + span) munmap(a + span, (size_t)(raw + span + HY_HUGE - (a + span)));
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
        /* only a hint: refused or unavailable is fine. PROBE: 4 KiB until a chunk is probed */
        madvise(a, span, policy == HY_PAGES_HUGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
        p = a;
    }
    hy__alloc_count_add(1);
    return p;
}

void hy__pages_populate(void *p, size_t off, size_t len) {
    if (!p || !len) return;
    uint8_t *a = (uint8_t *)p + (off & ~(size_t)4095);
    size_t n = ((off + len + 4095) & ~(size_t)4095) - (off & ~(size_t)4095);
#ifdef MADV_POPULATE_WRITE
    if (madvise(a, n, MADV_POPULATE_WRITE) == 0) return;
#endif
    for (size_t o = 0; o < n; o += 4096) ((volatile uint8_t *)a)[o] = 0; /* pre-5.14: touch */
}

void hy__prefault(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, b = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    unsigned char vec[256];
    for (uintptr_t c = a; p && c < b; c += sizeof vec * 4096) { /* first page not mapped */
        size_t len = HY_MIN((uintptr_t)(b - c), (uintptr_t)sizeof vec * 4096);
        if (mincore((void *)c, len, vec) != 0) return;
        for (size_t i = 0; i < len / 4096; i++)
            if (!(vec[i] & 1)) {
                (void)madvise((void *)(c + i * 4096), b - (c + i * 4096), MADV_POPULATE_WRITE);
                return;
            }
    }
#else
    (void)p;
    (void)n;
#endif
}

void hy__pages_probe_reset(hy__pages_probe *pr) {
    atomic_store(&pr->state, 0);
    atomic_store(&pr->huge_chunks, 0);
    atomic_store(&pr->probe_us, -1);
}

/* Populates one huge-page-aligned 2 MiB chunk on a huge page; its time in ms. */
static double populate_huge(uint8_t *a) {
    double t0 = hy__now_ms();
#ifdef MADV_HUGEPAGE
    madvise(a, HY_HUGE, MADV_HUGEPAGE);
#endif
    hy__pages_populate(a, 0, HY_HUGE);
    return hy__now_ms() - t0;
}

void hy__pages_populate_probed(void *p, size_t off, size_t len, hy__pages_probe *pr) {
    uint8_t *a = (uint8_t *)p + off;
    if (!p || !pr || hy__huge_pages() != HY_PAGES_PROBE || len != HY_HUGE || ((uintptr_t)a & (HY_HUGE - 1))) {
        hy__pages_populate(p, off, len); /* not a whole 2 MiB unit: 4 KiB pages */
        return;
    }
    int s = atomic_load(&pr->state), zero = 0;
    if (s == 0 && atomic_compare_exchange_strong(&pr->state, &zero, 1)) { /* the probe */
        double ms = populate_huge(a);
        atomic_store(&pr->probe_us, (int)(ms * 1000));
        atomic_fetch_add(&pr->huge_chunks, 1);
        atomic_store(&pr->state, ms < HY_PAGES_PROBE_MS ? 2 : 3);
    } else if (s == 2) { /* still cheap? a slow one stops the huge pages for the rest */
        double ms = populate_huge(a);
        atomic_fetch_add(&pr->huge_chunks, 1);
        if (ms >= HY_PAGES_PROBE_MS) {
            atomic_store(&pr->probe_us, (int)(ms * 1000));
            atomic_store(&pr->state, 3);
        }
    } else { /* small, or another thread is probing: do not wait for it */
        hy__pages_populate(p, off, len);
    }
}

void *hy__pages_alloc(size_t n) {
    void *p = hy__pages_map(n);
    if (p) hy__pages_populate(p, 0, pages_span(n ? n : 1));
    return p;
}

void hy__pages_free(void *p, size_t n) {
    if (!p) return;
    munmap(p, pages_span(n ? n : 1));
    hy__alloc_count_add(-1);
}
