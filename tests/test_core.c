/* Core helpers: page allocations used for activation arenas and scratch. */
#include <stdint.h>
#include <sys/mman.h>

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
        const char *hp = getenv("HY_HUGE_PAGES");
        if (n >= ((size_t)2 << 20) && !(hp && !strcmp(hp, "0")))
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

HY_TEST_MAIN()
