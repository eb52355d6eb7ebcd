/* Packed-weights cache through the library API: a corrupt entry is rebuilt and reported to
 * the log callback (never printed), the model still says "pt", params.cache = 0 bypasses it,
 * hy_pcache_list / hy_pcache_clear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotyolo/pcache.h"
#include "hy_test.h"

static char logged[4096];
static void on_log(hy_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (lvl >= HY_LOG_WARN && strstr(msg, "packed-weights cache")) snprintf(logged, sizeof logged, "%s", msg);
}

static char dir[64];
static void use_tmp_cache(void) {
    snprintf(dir, sizeof dir, "/tmp/hy_pcache_XXXXXX");
    if (!mkdtemp(dir)) abort();
    setenv("HOTYOLO_CACHE_DIR", dir, 1);
    unsetenv("HOTYOLO_NO_CACHE");
}

HY_TEST(pcache_fill_map_rebuild_clear) {
    hy_test_require_assets();
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    use_tmp_cache();
    hy_model_params p = hy_model_default_params();
    p.cache = 0;
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(pt, &p, &m));
    hy_model_free(m);
    hy_pcache_entry *e = NULL;
    size_t n = 9;
    ASSERT_OK(hy_pcache_list(&e, &n));
    ASSERT_EQ(n, 0); /* cache = 0: nothing written */
    p.cache = 1;
    ASSERT_OK(hy_model_load(pt, &p, &m)); /* fills */
    hy_model_free(m);
    ASSERT_OK(hy_pcache_list(&e, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(e[0].nc, 80);
    ASSERT_EQ((int)strlen(e[0].source_sha256), 64);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, e[0].file);
    uint64_t size = e[0].size;
    hy_free(e);
    ASSERT_OK(hy_model_load(pt, &p, &m)); /* maps */
    ASSERT_STREQ(hy_model_format(m), "pt");
    hy_model_free(m);
    /* truncate the entry: the next load rebuilds it and says so through the log callback */
    ASSERT_EQ(truncate(path, (off_t)(size / 3)), 0);
    logged[0] = 0;
    hy_log_set(on_log, NULL);
    ASSERT_OK(hy_model_load(pt, &p, &m));
    hy_log_set(NULL, NULL);
    ASSERT_STREQ(hy_model_format(m), "pt");
    ASSERT_EQ(hy_model_num_classes(m), 80);
    hy_model_free(m);
    ASSERT_CONTAINS(logged, "rebuilding it");
    ASSERT_OK(hy_pcache_list(&e, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(e[0].size, size); /* whole again */
    hy_free(e);
    /* one flipped bit deep in the data (a weight the packed canary does not cover), the
     * header intact: caught by the entry's checksum on the next load, rebuilt byte-identical */
    FILE *fp = fopen(path, "rb");
    ASSERT_TRUE(fp != NULL);
    uint8_t *orig = malloc(size);
    ASSERT_TRUE(orig != NULL);
    ASSERT_EQ(fread(orig, 1, size, fp), size);
    fclose(fp);
    for (int round = 0; round < 2; round++) {
        size_t at = round == 0 ? size - 4096 : size / 2;
        fp = fopen(path, "r+b");
        ASSERT_TRUE(fp != NULL);
        ASSERT_EQ(fseek(fp, (long)at, SEEK_SET), 0);
        ASSERT_EQ(fputc(orig[at] ^ 0x10, fp), orig[at] ^ 0x10);
        ASSERT_EQ(fclose(fp), 0);
        logged[0] = 0;
        hy_log_set(on_log, NULL);
        ASSERT_OK(hy_model_load(pt, &p, &m));
        hy_log_set(NULL, NULL);
        hy_model_free(m);
        ASSERT_CONTAINS(logged, "data checksum mismatch");
        ASSERT_CONTAINS(logged, "rebuilding it");
        fp = fopen(path, "rb");
        ASSERT_TRUE(fp != NULL);
        uint8_t *now = malloc(size + 1);
        ASSERT_TRUE(now != NULL);
        ASSERT_EQ(fread(now, 1, size + 1, fp), size);
        fclose(fp);
        ASSERT_TRUE(memcmp(now, orig, size) == 0);
        free(now);
    }
    free(orig);
    ASSERT_OK(hy_pcache_clear(&n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(rmdir(dir), 0); /* nothing else was left there */
}

HY_TEST_MAIN()
