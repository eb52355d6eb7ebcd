/* Core helpers: page allocations used for activation arenas and scratch, the work queue. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "hy_test.h"

HY_TEST(pages_alloc_zeroed_aligned_and_freed) {
    int64_t live = hy__alloc_live();
    static const size_t sizes[] = {1, 4096, 100000, (size_t)2 << 20, ((size_t)26 << 20) + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *p = hy__pages_alloc(n);
        ASSERT_TRUE(p != NULL);
        ASSERT_EQ((uintptr_t)p % 4096, 0);
        if (n >= ((size_t)2 << 20) && hy__huge_pages())
            ASSERT_EQ((uintptr_t)p % ((size_t)2 << 20), 0); /* huge-page aligned */
        size_t nz = 0;
        for (size_t o = 0; o < n; o++) nz += p[o] != 0;
        ASSERT_EQ(nz, 0);
        /* every page is already mapped: mincore reports it resident before any write */
        size_t pages = (n + 4095) / 4096;
        unsigned char *vec = malloc(pages);
        ASSERT_TRUE(vec != NULL);
        ASSERT_EQ(mincore(p, n, vec), 0);
        size_t resident = 0;
        for (size_t k = 0; k < pages; k++) resident += vec[k] & 1;
        free(vec);
        ASSERT_EQ(resident, pages);
        p[0] = 1;
        p[n - 1] = 2;
        hy__pages_free(p, n);
    }
    ASSERT_EQ(hy__alloc_live(), live);
}

static size_t resident_pages(const void *p, size_t n) {
    size_t pages = (n + 4095) / 4096, resident = 0;
    unsigned char *vec = malloc(pages);
    if (!vec || mincore((void *)p, n, vec) != 0) {
        free(vec);
        return 0;
    }
    for (size_t k = 0; k < pages; k++) resident += vec[k] & 1;
    free(vec);
    return resident;
}

typedef struct {
    uint8_t *p;
    size_t n;
    int first; /* chunk this thread starts with; it then takes every other one */
    hy__pages_probe *probe; /* NULL: hy__pages_populate */
} pop_arg;

static void *pop_thread(void *arg) {
    pop_arg *a = arg;
    size_t chunks = (a->n + HY_PAGES_CHUNK - 1) / HY_PAGES_CHUNK;
    for (size_t i = (size_t)a->first; i < chunks; i += 2) {
        size_t k = chunks - 1 - i; /* back to front */
        size_t off = k * HY_PAGES_CHUNK;
        if (a->probe)
            hy__pages_populate_probed(a->p, off, HY_MIN(HY_PAGES_CHUNK, a->n - off), a->probe);
        else
            hy__pages_populate(a->p, off, HY_MIN(HY_PAGES_CHUNK, a->n - off));
    }
    return NULL;
}

/* map, then populate in 2 MiB chunks from two threads in reverse order: every page of the
 * buffer ends up mapped and zero, as hy__pages_alloc gives it */
HY_TEST(pages_map_then_populate_in_chunks_from_two_threads) {
    int64_t live = hy__alloc_live();
    size_t n = ((size_t)5 << 20) + 12345;
    uint8_t *p = hy__pages_map(n);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ((uintptr_t)p % 4096, 0);
    size_t pages = (n + 4095) / 4096;
    ASSERT_TRUE(resident_pages(p, n) < pages); /* reserved, not populated */
    pop_arg a0 = {p, n, 0, NULL}, a1 = {p, n, 1, NULL};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, pop_thread, &a1), 0);
    pop_thread(&a0);
    pthread_join(th, NULL);
    ASSERT_EQ(resident_pages(p, n), pages);
    size_t nz = 0;
    for (size_t o = 0; o < n; o++) nz += p[o] != 0;
    ASSERT_EQ(nz, 0);
    hy__pages_populate(p, n - 1, 1); /* again, and a range inside one page: harmless */
    hy__pages_free(p, n);
    ASSERT_EQ(hy__alloc_live(), live);
}

/* The same with the huge-page probe (HY_HUGE_PAGES=probe; ctest runs test_core with it too):
 * every page mapped and zero whichever page size each chunk got; the probe ran once on a
 * whole 2 MiB chunk and reached a verdict. Other policies: a plain populate. */
HY_TEST(pages_populate_probed_maps_everything_and_decides) {
    size_t n = ((size_t)9 << 20) + 4321; /* 4 whole chunks + a partial one */
    uint8_t *p = hy__pages_map(n);
    ASSERT_TRUE(p != NULL);
    hy__pages_probe pr;
    hy__pages_probe_reset(&pr);
    ASSERT_EQ(atomic_load(&pr.probe_us), -1);
    pop_arg a0 = {p, n, 0, &pr}, a1 = {p, n, 1, &pr};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, pop_thread, &a1), 0);
    pop_thread(&a0);
    pthread_join(th, NULL);
    ASSERT_EQ(resident_pages(p, n), (n + 4095) / 4096);
    size_t nz = 0;
    for (size_t o = 0; o < n; o++) nz += p[o] != 0;
    ASSERT_EQ(nz, 0);
    const int state = atomic_load(&pr.state), huge = atomic_load(&pr.huge_chunks), us = atomic_load(&pr.probe_us);
    printf("  policy %d: probe %d us, %d of 4 whole chunks on huge pages, verdict %s\n", hy__huge_pages(), us,
           huge, state == 2 ? "huge" : state == 3 ? "4 KiB" : "none");
    if (hy__huge_pages() == HY_PAGES_PROBE) {
        ASSERT_TRUE(us >= 0);
        ASSERT_TRUE(state == 2 || state == 3);
        ASSERT_TRUE(huge >= 1 && huge <= 4); /* the partial chunk never */
        ASSERT_TRUE(state == 3 || us < (int)(HY_PAGES_PROBE_MS * 1000));
    } else { /* forced: plain populate */
        ASSERT_EQ(us, -1);
        ASSERT_EQ(huge, 0);
    }
    hy__pages_free(p, n);
}

/* kB of the mapping starting at p mapped with PMDs (FilePmdMapped in /proc/self/smaps), -1 when
 * the kernel does not say. */
static long file_pmd_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f) return -1;
    char line[512];
    int in = 0;
    long kb = -1;
    unsigned long lo, hi;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = lo == (unsigned long)(uintptr_t)p;
            continue;
        }
        if (in && sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

static const char *write_pattern_file(const char *name, size_t n) {
    const char *path = hy_test_tmp(name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = (uint32_t)(i * 2654435761u);
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
    return path;
}

/* Files of 2 MiB and more are mapped 2 MiB-aligned with huge pages advised, smaller ones as
 * they come; both read back exactly. After hy__map_recache (what convert does) the page cache
 * holds 2 MiB folios and a mapping takes them whole, wherever the kernel and filesystem can
 * do it at all: a control file read through an aligned MADV_HUGEPAGE mapping of our own
 * decides that, so the assertion cannot pass vacuously on a kernel that could. */
HY_TEST(file_maps_aligned_and_recached_in_huge_folios) {
    const size_t n = (size_t)12 << 20;
    const char *big = write_pattern_file("map_big.bin", n), *small = write_pattern_file("map_small.bin", 100000);
    ASSERT_TRUE(big && small);
    hy__map m;
    ASSERT_OK(hy__map_open(big, &m));
    ASSERT_EQ(m.size, n);
    ASSERT_EQ((uintptr_t)m.data % ((size_t)2 << 20), 0);
    size_t bad = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v;
        memcpy(&v, m.data + i, 4);
        bad += v != (uint32_t)(i * 2654435761u);
    }
    ASSERT_EQ(bad, 0);
    hy__map_close(&m);
    ASSERT_TRUE(m.data == NULL);
    ASSERT_OK(hy__map_open(small, &m));
    ASSERT_EQ(m.size, 100000);
    hy__map_close(&m);
    ASSERT_OK(hy__map_recache(small)); /* under 2 MiB: nothing to do */
    ASSERT_ERR(hy__map_recache(hy_test_tmp("map_missing.bin")), HY_ERR_NOT_FOUND);

    /* control: can this kernel + filesystem map page-cache folios with PMDs at all? */
    const char *ctl = write_pattern_file("map_control.bin", n);
    ASSERT_TRUE(ctl != NULL);
    int fd = open(ctl, O_RDONLY);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(fdatasync(fd), 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    uint8_t *raw = mmap(NULL, n + ((size_t)2 << 20), PROT_READ, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(raw != MAP_FAILED);
    munmap(raw, n + ((size_t)2 << 20));
    uint8_t *a = (uint8_t *)(((uintptr_t)raw + ((size_t)2 << 20) - 1) & ~(uintptr_t)(((size_t)2 << 20) - 1));
    uint8_t *c = mmap(a, n, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    close(fd);
    ASSERT_TRUE(c == a);
    madvise(c, n, MADV_HUGEPAGE);
    volatile uint8_t sink = 0;
    for (size_t o = 0; o < n; o += 4096) sink ^= c[o];
    const long control = file_pmd_kb(c);
    munmap(c, n);

    ASSERT_OK(hy__map_recache(big));
    ASSERT_OK(hy__map_open(big, &m));
    for (size_t o = 0; o < n; o += 4096) sink ^= m.data[o];
    (void)sink;
    const long ours = file_pmd_kb(m.data);
    hy__map_close(&m);
    printf("  FilePmdMapped after reading 12 MiB: control %ld kB, hy__map_recache + hy__map_open %ld kB\n",
           control, ours);
    if (control > 0)
        ASSERT_TRUE(ours >= control / 2);
    else
        printf("  (no PMD-mapped page cache on this kernel/filesystem: nothing more to check)\n");
    unlink(big), unlink(small), unlink(ctl);
}

/* A fake sysfs: root/bus/virtio/drivers/virtio_balloon/<dev>/features = bits (NULL: the
 * driver directory only, no device). Returns root. */
static const char *fake_sysfs(const char *name, const char *dev, const char *bits) {
    const char *root = hy_test_tmp(name);
    static const char *const parts[] = {"", "/bus", "/bus/virtio", "/bus/virtio/drivers",
                                        "/bus/virtio/drivers/virtio_balloon"};
    char p[4096];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s%s", root, parts[i]);
        mkdir(p, 0700);
    }
    /* files the driver directory also holds */
    snprintf(p, sizeof p, "%s/bus/virtio/drivers/virtio_balloon/bind", root);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    if (dev) {
        snprintf(p, sizeof p, "%s/bus/virtio/drivers/virtio_balloon/%s", root, dev);
        mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/bus/virtio/drivers/virtio_balloon/%s/features", root, dev);
        if ((f = fopen(p, "w"))) {
            fputs(bits, f);
            fclose(f);
        }
    }
    return root;
}

HY_TEST(prefault_maps_the_inner_pages_and_writes_nothing) {
    const size_t n = (size_t)1 << 20; /* 256 pages, none touched yet */
    uint8_t *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    madvise(m, n, MADV_NOHUGEPAGE); /* 4 KiB pages, so residency is per page */
    ASSERT_EQ(resident_pages(m, n), 0);
    /* a buffer that starts and ends inside pages (as a malloc'd one does): the pages it
     * covers wholly are mapped, its first and last partial pages are left alone */
    hy__prefault(m + 100, n - 200);
    ASSERT_EQ(resident_pages(m, 4096), 0);
    ASSERT_EQ(resident_pages(m + n - 4096, 4096), 0);
    ASSERT_EQ(resident_pages(m + 4096, n - 8192), n / 4096 - 2);
    for (size_t i = 4096; i < n - 4096; i += 512) ASSERT_EQ(m[i], 0); /* zero-filled, as before */
    /* already mapped, with data: nothing changes */
    for (size_t i = 0; i < n; i++) m[i] = (uint8_t)(i * 7);
    hy__prefault(m + 100, n - 200);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += m[i] != (uint8_t)(i * 7);
    ASSERT_EQ(bad, 0);
    hy__prefault(NULL, 4096); /* nothing to do */
    hy__prefault(m + 1, 10);
    munmap(m, n);
}

HY_TEST(free_page_reporting_read_from_the_balloon_features) {
    /* bit 5 = VIRTIO_BALLOON_F_REPORTING; the string is what this VM's sysfs holds */
    ASSERT_EQ(hy__free_page_reporting(fake_sysfs("fpr_on", "virtio0",
                                                 "0110010100000000000000000000000010000000\n")), 1);
    ASSERT_EQ(hy__free_page_reporting(fake_sysfs("fpr_off", "virtio3",
                                                 "0110000100000000000000000000000010000000\n")), 0);
    ASSERT_EQ(hy__free_page_reporting(fake_sysfs("fpr_nodev", NULL, NULL)), 0);
    ASSERT_EQ(hy__free_page_reporting(fake_sysfs("fpr_short", "virtio0", "01\n")), 0);
    ASSERT_EQ(hy__free_page_reporting(fake_sysfs("fpr_notdev", "module", "0000010000\n")), 0);
    ASSERT_EQ(hy__free_page_reporting(hy_test_tmp("fpr_missing_root")), 0);
}

HY_TEST(huge_pages_policy_follows_the_environment_then_the_host) {
    const char *e = getenv("HY_HUGE_PAGES");
    int want = e && !strcmp(e, "0")       ? HY_PAGES_SMALL
               : e && !strcmp(e, "1")     ? HY_PAGES_HUGE
               : e && !strcmp(e, "probe") ? HY_PAGES_PROBE
               : hy__free_page_reporting("/sys") ? HY_PAGES_SMALL
                                                 : HY_PAGES_HUGE;
    ASSERT_EQ(hy__huge_pages(), want);
}

/* hy__workq: every item handed out exactly once, in chunks; a thread starts on its own part
 * (its share of the items, in order) and only then takes from the others'. */
HY_TEST(workq_own_part_first_then_the_others) {
    hy__workq q;
    hy__workq_init_chunk(&q, 1000, 2, 7); // 143 chunks: part 0 = chunks [0, 71), part 1 the rest
    long i0, i1, next = 0;
    ASSERT_TRUE(hy__workq_take(&q, 1, &i0, &i1));
    ASSERT_EQ(i0, 71 * 7);
    ASSERT_EQ(i1, 72 * 7);
    // thread 0 walks its part in order, then continues in part 1 after thread 1's chunk
    while (next < 71 * 7 && hy__workq_take(&q, 0, &i0, &i1)) {
        ASSERT_EQ(i0, next);
        ASSERT_EQ(i1, next + 7 < 71 * 7 ? next + 7 : 71 * 7);
        next = i1;
    }
    ASSERT_EQ(next, 71 * 7);
    ASSERT_TRUE(hy__workq_take(&q, 0, &i0, &i1));
    ASSERT_EQ(i0, 72 * 7);
    long last = 0;
    while (hy__workq_take(&q, 0, &i0, &i1)) last = i1;
    ASSERT_EQ(last, 1000); // the short last chunk ends at n
    ASSERT_FALSE(hy__workq_take(&q, 1, &i0, &i1));
    // more threads than parts share them; one thread drains every part
    hy__workq_init(&q, 50, 12, 1, 1);
    ASSERT_EQ(q.nparts, HY_WORKQ_PARTS);
    unsigned char seen[50] = {0};
    while (hy__workq_take(&q, 11, &i0, &i1))
        for (long i = i0; i < i1; i++) seen[i]++;
    for (int i = 0; i < 50; i++) ASSERT_EQ(seen[i], 1);
    hy__workq_init(&q, 0, 2, 4, 1);
    ASSERT_FALSE(hy__workq_take(&q, 0, &i0, &i1));
}

typedef struct wq_count {
    hy__workq q;
    atomic_int hits[10007];
} wq_count;

static void wq_count_worker(void *ctx, int ith, int nth) {
    wq_count *c = ctx;
    long i0, i1;
    while (hy__workq_take(&c->q, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) atomic_fetch_add(&c->hits[i], 1);
    (void)nth;
}

HY_TEST(workq_items_once_from_three_threads) {
    hy__threadpool *tp = NULL;
    ASSERT_OK(hy__threadpool_create(3, &tp));
    wq_count *c = hy__calloc(1, sizeof *c);
    ASSERT_TRUE(c != NULL);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 10007; i++) atomic_store(&c->hits[i], 0);
        hy__workq_init(&c->q, 10007, 3, 8, 1);
        hy__threadpool_run(tp, wq_count_worker, c);
        for (int i = 0; i < 10007; i++) ASSERT_EQ(atomic_load(&c->hits[i]), 1);
    }
    hy__free(c);
    hy__threadpool_free(tp);
}

HY_TEST_MAIN()
