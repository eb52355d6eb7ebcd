/* ZIP reader: archives from an independent writer (fixtures/zip_writer.h: zlib deflate,
 * optional ZIP64 records), the real torch.save archive yolov8n.pt, damaged archives, every
 * prefix and random corruption. */
#include "core/core.h"
#include "fixtures/zip_writer.h"
#include "hy_test.h"
#include "io/zip.h"

// --- test data ------------------------------------------------------------------------------

static uint8_t rnd[1000], text[100000];

static void init_data(void) {
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("hello zip world "[i % 16] + (i % 997 == 0));
}

static zb build(int zip64, const char *comment) {
    init_data();
    zb z = {0};
    zb_add(&z, "a/data.pkl", rnd, sizeof rnd, 0);
    zb_add(&z, "a/data/0", text, sizeof text, 8);
    zb_add(&z, "a/empty", "", 0, 0);
    zb_add(&z, "a/empty_deflated", "", 0, 8);
    zb_add(&z, "a/data/1", rnd, 10, 8);
    zb_finish(&z, zip64, comment);
    return z;
}

static void check_archive(const zb *z) {
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(z->buf, z->len, "t.zip", &r));
    ASSERT_EQ(hy__zip_count(r), 5);
    ASSERT_STREQ(hy__zip_entry_at(r, 1)->name, "a/data/0");
    ASSERT_TRUE(hy__zip_entry_at(r, 5) == NULL);
    ASSERT_TRUE(hy__zip_find(r, "a/data") == NULL);
    ASSERT_TRUE(hy__zip_find(r, "nope") == NULL);
    static const struct {
        const char *name;
        const uint8_t *data;
        size_t n;
        int method;
    } want[] = {{"a/data.pkl", rnd, sizeof rnd, 0},
                {"a/data/0", text, sizeof text, 8},
                {"a/empty", NULL, 0, 0},
                {"a/empty_deflated", NULL, 0, 8},
                {"a/data/1", rnd, 10, 8}};
    for (size_t i = 0; i < HY_ARRAY_LEN(want); i++) {
        const hy__zip_entry *e = hy__zip_find(r, want[i].name);
        ASSERT_TRUE(e != NULL);
        ASSERT_TRUE(e == hy__zip_entry_at(r, i));
        ASSERT_EQ(e->method, want[i].method);
        ASSERT_EQ(e->size, want[i].n);
        hy__zip_data d;
        ASSERT_OK(hy__zip_read(r, e, SIZE_MAX, &d));
        ASSERT_EQ(d.size, want[i].n);
        if (want[i].n) ASSERT_TRUE(memcmp(d.data, want[i].data, want[i].n) == 0);
        ASSERT_TRUE(want[i].method == 0 ? d.owned == NULL : (want[i].n == 0 || d.owned != NULL));
        if (want[i].method == 0 && want[i].n)
            ASSERT_TRUE(d.data >= z->buf && d.data < z->buf + z->len);
        hy__zip_data_free(&d);
    }
    hy__zip_close(r);
}

HY_TEST(stored_and_deflated) {
    zb z = build(0, NULL);
    check_archive(&z);
    free(z.buf);
}

HY_TEST(zip64_records_and_extra_fields) {
    zb z = build(1, NULL);
    check_archive(&z);
    free(z.buf);
}

HY_TEST(archive_comment) {
    char comment[2000];
    memset(comment, 'c', sizeof comment - 1);
    comment[sizeof comment - 1] = 0;
    zb z = build(1, comment);
    check_archive(&z);
    free(z.buf);
}

HY_TEST(empty_archive) {
    zb z = {0};
    zb_finish(&z, 0, NULL);
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(z.buf, z.len, "empty.zip", &r));
    ASSERT_EQ(hy__zip_count(r), 0);
    ASSERT_TRUE(hy__zip_find(r, "x") == NULL);
    hy__zip_close(r);
    hy__zip_close(NULL);
    free(z.buf);
}

HY_TEST(real_torch_archive) {
    hy__map m;
    ASSERT_OK(hy__map_open(hy_test_asset("weights/yolov8n.pt"), &m));
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(m.data, m.size, "yolov8n.pt", &r));
    /* torch.save writes ZIP64 end records; 359 storages + data.pkl + version. */
    ASSERT_EQ(hy__zip_count(r), 361);
    const hy__zip_entry *e = hy__zip_find(r, "yolov8n/data.pkl");
    ASSERT_TRUE(e != NULL);
    ASSERT_EQ(e->size, 82200);
    ASSERT_EQ(e->crc32, 0x06d9adaa);
    hy__zip_data d;
    ASSERT_OK(hy__zip_read(r, hy__zip_find(r, "yolov8n/version"), SIZE_MAX, &d));
    ASSERT_EQ(d.size, 2);
    ASSERT_TRUE(memcmp(d.data, "3\n", 2) == 0);
    hy__zip_data_free(&d);
    uint64_t total = 0;
    for (size_t i = 0; i < hy__zip_count(r); i++) {
        ASSERT_OK(hy__zip_read(r, hy__zip_entry_at(r, i), SIZE_MAX, &d)); /* every CRC checks */
        total += d.size;
        hy__zip_data_free(&d);
    }
    ASSERT_EQ(total, 6418260);
    hy__zip_close(r);
    hy__map_close(&m);
}

// --- damaged archives -------------------------------------------------------------------------

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
    wr16(p, v & 0xffff);
    wr16(p + 2, v >> 16);
}
/* Offset of the i-th central-directory record (plain archive from build(0, NULL)). */
static size_t cd_rec(const zb *z, int i) {
    size_t p = rd32(z->buf + z->len - 22 + 16);
    for (int k = 0; k < i; k++)
        p += 46 + (z->buf[p + 28] | z->buf[p + 29] << 8) + (z->buf[p + 30] | z->buf[p + 31] << 8);
    return p;
}

static hy_status open_read_all(const uint8_t *buf, size_t len) {
    hy__zip *r = NULL;
    hy_status st = hy__zip_open(buf, len, "bad.zip", &r);
    for (size_t i = 0; !st && i < hy__zip_count(r); i++) {
        hy__zip_data d;
        st = hy__zip_read(r, hy__zip_entry_at(r, i), SIZE_MAX, &d);
        if (!st) hy__zip_data_free(&d);
    }
    hy__zip_close(r);
    return st;
}

HY_TEST(damaged_archives) {
    zb z = build(0, NULL);
    uint8_t *b = malloc(z.len);
    size_t eocd = z.len - 22;
#define CASE(mutate, want, msg)                                                                    \
    do {                                                                                           \
        memcpy(b, z.buf, z.len);                                                                   \
        mutate;                                                                                    \
        hy_status st_ = open_read_all(b, z.len);                                                   \
        if (st_ != (want)) HY_FAIL_("%s: %s (%s)", #mutate, hy_status_name(st_), hy_last_error()); \
        ASSERT_CONTAINS(hy_last_error(), msg);                                                     \
        ASSERT_CONTAINS(hy_last_error(), "bad.zip");                                               \
    } while (0)
    size_t stored_data = z.ent[0].off + 30 + strlen(z.ent[0].name) + 4;
    size_t defl_data = z.ent[1].off + 30 + strlen(z.ent[1].name) + 4;
    CASE(b[stored_data + 5] ^= 1, HY_ERR_FORMAT, "CRC-32 mismatch");
    CASE(b[defl_data + 3] ^= 0xff, HY_ERR_FORMAT, "a/data/0");
    CASE(wr32(b + cd_rec(&z, 1) + 24, 100001), HY_ERR_FORMAT, "inflated to 100000 bytes");
    CASE(wr32(b + cd_rec(&z, 1) + 24, 99999), HY_ERR_FORMAT, "longer than declared");
    CASE(wr32(b + cd_rec(&z, 1) + 20, (uint32_t)z.ent[1].csize - 5), HY_ERR_FORMAT, "deflate");
    CASE(wr16(b + cd_rec(&z, 2) + 10, 12), HY_ERR_UNSUPPORTED, "compression method 12");
    CASE(wr16(b + cd_rec(&z, 2) + 8, 1), HY_ERR_UNSUPPORTED, "encrypted");
    CASE(wr32(b + cd_rec(&z, 0) + 24, 999), HY_ERR_FORMAT, "stored zip entry");
    CASE(wr32(b + eocd + 16, (uint32_t)z.len), HY_ERR_FORMAT, "central directory");
    CASE(wr32(b + eocd + 12, 0x7fffffff), HY_ERR_FORMAT, "central directory");
    CASE((wr16(b + eocd + 8, 500), wr16(b + eocd + 10, 500)), HY_ERR_FORMAT, "claims 500 entries");
    CASE((wr16(b + eocd + 8, 6), wr16(b + eocd + 10, 6)), HY_ERR_FORMAT, "entry 5");
    CASE(wr16(b + eocd + 4, 1), HY_ERR_UNSUPPORTED, "multi-disk");
    CASE(wr32(b + cd_rec(&z, 3) + 42, (uint32_t)z.len - 10), HY_ERR_FORMAT, "local header missing");
    CASE(wr32(b + cd_rec(&z, 3) + 42, 0xFFFFFFFFu), HY_ERR_FORMAT, "ZIP64 extra field");
    CASE(wr32(b + cd_rec(&z, 4) + 20, 0x7ffffff0), HY_ERR_FORMAT, "runs past the end");
    CASE(wr32(b + z.ent[2].off, 0x12345678), HY_ERR_FORMAT, "local header missing");
    CASE(wr32(b + cd_rec(&z, 1), 0), HY_ERR_FORMAT, "damaged");
    CASE(wr32(b + eocd, 0), HY_ERR_FORMAT, "no end-of-central-directory");
#undef CASE
    free(b);
    free(z.buf);
    /* ZIP64 locator pointing outside the file. */
    z = build(1, NULL);
    wr32(z.buf + z.len - 22 - 20 + 8, 0x7fffffff);
    ASSERT_ERR(open_read_all(z.buf, z.len), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "ZIP64 end-of-central-directory record");
    free(z.buf);
    ASSERT_ERR(open_read_all((const uint8_t *)"PK\x03\x04 not really", 16), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "too short");
    static const char junk[] =
        "this is plainly not a zip archive, just some text that is long enough";
    ASSERT_ERR(open_read_all((const uint8_t *)junk, sizeof junk), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "not a zip archive");
}

/* Ranges of a deflated entry equal the same bytes of the whole entry; the CRC is checked
 * when a range reaches the end. */
HY_TEST(read_range_of_deflated_entry) {
    zb z = build(0, NULL);
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(z.buf, z.len, "t.zip", &r));
    const hy__zip_entry *e = hy__zip_find(r, "a/data/0"); /* 100000 bytes, deflated */
    ASSERT_EQ(e->method, 8);
    static uint8_t got[100000];
    static const size_t ranges[][2] = {{0, 0},         {0, 1},          {0, 100000},
                                       {5, 70000},     {65536, 65537},  {99999, 100000},
                                       {70000, 100000}, {131, 65536 * 1 + 7}};
    for (size_t i = 0; i < HY_ARRAY_LEN(ranges); i++) {
        size_t b = ranges[i][0], en = ranges[i][1];
        memset(got, 0xAA, sizeof got);
        ASSERT_OK(hy__zip_read_range(r, e, b, en, got));
        if (memcmp(got, text + b, en - b)) HY_FAIL_("range [%zu, %zu) differs", b, en);
    }
    ASSERT_ERR(hy__zip_read_range(r, e, 0, 100001, got), HY_ERR_FORMAT);
    const hy__zip_entry *st = hy__zip_find(r, "a/data.pkl"); /* stored */
    ASSERT_OK(hy__zip_read_range(r, st, 10, 20, got));
    ASSERT_TRUE(memcmp(got, rnd + 10, 10) == 0);
    hy__zip_close(r);
    /* Wrong CRC in the directory: a full-range read notices, a prefix cannot. */
    size_t c = cd_rec(&z, 1);
    z.buf[c + 16] ^= 1;
    ASSERT_OK(hy__zip_open(z.buf, z.len, "t.zip", &r));
    e = hy__zip_find(r, "a/data/0");
    ASSERT_OK(hy__zip_read_range(r, e, 0, 1000, got));
    ASSERT_ERR(hy__zip_read_range(r, e, 50000, 100000, got), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "CRC-32 mismatch");
    hy__zip_close(r);
    free(z.buf);
}

// --- ambiguous archives -----------------------------------------------------------------------

/* yolov8n.pt with one more entry appended: `name` in the central directory, `local_name` in
 * its local header. Rebuilt by hand (independent of the reader): entries, new local record,
 * the old central directory + one record, a plain EOCD (the ZIP64 records are dropped; all
 * offsets fit 32 bits). */
static uint8_t *append_entry(const uint8_t *src, size_t len, const char *name,
                             const char *local_name, const void *data, size_t n, size_t *out_len) {
    const uint8_t *eocd = src + len - 22;
    uint32_t count = eocd[10] | eocd[11] << 8, cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);
    size_t ln = strlen(local_name), cn = strlen(name);
    uint8_t *b = malloc(len + ln + cn + n + 200), *p = b;
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    memcpy(p, src, cd_off), p += cd_off;
    uint32_t loff = (uint32_t)(p - b);
    uint8_t lh[30] = {0x50, 0x4b, 0x03, 0x04, 20};
    wr32(lh + 14, crc), wr32(lh + 18, (uint32_t)n), wr32(lh + 22, (uint32_t)n), wr16(lh + 26, (uint32_t)ln);
    memcpy(p, lh, 30), p += 30;
    memcpy(p, local_name, ln), p += ln;
    memcpy(p, data, n), p += n;
    uint32_t new_cd = (uint32_t)(p - b);
    memcpy(p, src + cd_off, cd_size), p += cd_size;
    uint8_t ch[46] = {0x50, 0x4b, 0x01, 0x02, 20, 0, 20};
    wr32(ch + 16, crc), wr32(ch + 20, (uint32_t)n), wr32(ch + 24, (uint32_t)n), wr16(ch + 28, (uint32_t)cn);
    wr32(ch + 42, loff);
    memcpy(p, ch, 46), p += 46;
    memcpy(p, name, cn), p += cn;
    uint8_t e[22] = {0x50, 0x4b, 0x05, 0x06};
    wr16(e + 8, count + 1), wr16(e + 10, count + 1);
    wr32(e + 12, cd_size + 46 + (uint32_t)cn), wr32(e + 16, new_cd);
    memcpy(p, e, 22), p += 22;
    *out_len = (size_t)(p - b);
    return b;
}

/* hy__zip_read refuses a deflated entry declaring more than the caller's limit before
 * allocating it; at the limit it reads. 64 MiB of zeros deflate to ~64 KB. */
HY_TEST(read_refuses_entry_over_callers_limit) {
    enum { BIG = 64 << 20 };
    uint8_t *zero = calloc(1, BIG);
    zb z = {0};
    zb_add(&z, "a/big", zero, BIG, 8);
    zb_finish(&z, 0, NULL);
    free(zero);
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(z.buf, z.len, "big.zip", &r));
    hy__zip_data d;
    ASSERT_ERR(hy__zip_read(r, hy__zip_find(r, "a/big"), (size_t)BIG - 1, &d), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "big.zip: zip entry 'a/big' inflates to 67108864 bytes");
    ASSERT_OK(hy__zip_read(r, hy__zip_find(r, "a/big"), BIG, &d));
    ASSERT_EQ(d.size, BIG);
    hy__zip_data_free(&d);
    hy__zip_close(r);
    free(z.buf);
}

/* A second data.pkl hidden behind the clean one (PyTorch would read the last), and names a
 * reader could resolve to the same entry: refused, naming the file and both entries. */
HY_TEST(duplicate_entries_refused) {
    hy__map m;
    ASSERT_OK(hy__map_open(hy_test_asset("weights/yolov8n.pt"), &m));
    static const char evil[] = "\x80\x02" "cpydoc\npipepager\nX\x01\x00\x00\x00x\x85R.";
    size_t n = 0;
    uint8_t *b = append_entry(m.data, m.size, "yolov8n/extra", "yolov8n/extra", evil,
                              sizeof evil - 1, &n);
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(b, n, "appended.pt", &r)); /* control: the rebuild is valid */
    ASSERT_EQ(hy__zip_count(r), 362);
    hy__zip_data d;
    ASSERT_OK(hy__zip_read(r, hy__zip_find(r, "yolov8n/extra"), SIZE_MAX, &d));
    ASSERT_EQ(d.size, sizeof evil - 1);
    hy__zip_data_free(&d);
    hy__zip_close(r);
    free(b);
    static const char *const dups[] = {
        "yolov8n/data.pkl",   "./yolov8n/data.pkl", "yolov8n/./data.pkl", "yolov8n//data.pkl",
        "yolov8n/data.pkl/",  "yolov8n/DATA.pkl",   "YOLOV8N/data.PKL",   "yolov8n/version",
        "yolov8n/data/0/",
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(dups); i++) {
        b = append_entry(m.data, m.size, dups[i], dups[i], evil, sizeof evil - 1, &n);
        r = NULL;
        hy_status st = hy__zip_open(b, n, "dup.pt", &r);
        free(b);
        if (st != HY_ERR_FORMAT || r) HY_FAIL_("'%s': %s", dups[i], hy_status_name(st));
        ASSERT_CONTAINS(hy_last_error(), "dup.pt: zip archive has duplicate entries '");
        char want[80];
        snprintf(want, sizeof want, "'%s' (entry 361)", dups[i]);
        ASSERT_CONTAINS(hy_last_error(), want);
    }
    hy__map_close(&m);
}

HY_TEST(local_name_differs_from_directory) {
    hy__map m;
    ASSERT_OK(hy__map_open(hy_test_asset("weights/yolov8n.pt"), &m));
    size_t n = 0;
    uint8_t *b = append_entry(m.data, m.size, "yolov8n/extra", "yolov8n/data.pkl", "x", 1, &n);
    hy__zip *r = NULL;
    ASSERT_ERR(hy__zip_open(b, n, "mismatch.pt", &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(),
                    "mismatch.pt: zip entry 'yolov8n/extra': local header name differs");
    free(b);
    /* Same length, one byte different. */
    b = append_entry(m.data, m.size, "yolov8n/extra", "yolov8n/extrb", "x", 1, &n);
    ASSERT_ERR(hy__zip_open(b, n, "mismatch.pt", &r), HY_ERR_FORMAT);
    free(b);
    hy__map_close(&m);
}

HY_TEST(every_prefix_fails_cleanly) {
    int64_t live0 = hy__alloc_live();
    for (int zip64 = 0; zip64 < 2; zip64++) {
        zb z = build(zip64, "note");
        for (size_t n = 0; n < z.len; n++) {
            uint8_t *b = malloc(n ? n : 1); /* exact size so ASan sees any over-read */
            memcpy(b, z.buf, n);
            hy_status st = open_read_all(b, n);
            free(b);
            if (st != HY_ERR_FORMAT)
                HY_FAIL_("zip64=%d prefix %zu: %s (%s)", zip64, n, hy_status_name(st),
                         hy_last_error());
        }
        free(z.buf);
    }
    ASSERT_EQ(hy__alloc_live(), live0);
}

HY_TEST(random_corruption_never_crashes) {
    int64_t live0 = hy__alloc_live();
    uint64_t rng = 42;
    int ok = 0, bad = 0;
    for (int zip64 = 0; zip64 < 2; zip64++) {
        zb z = build(zip64, NULL);
        uint8_t *b = malloc(z.len);
        for (int it = 0; it < 1500; it++) {
            memcpy(b, z.buf, z.len);
            for (int f = 0; f < 2; f++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                /* bias towards the headers at the end, where the interesting fields are */
                size_t pos = (rng >> 40) & 1 ? z.len - 1 - (rng >> 20) % 300 : (rng >> 20) % z.len;
                b[pos] ^= (uint8_t)(1u << ((rng >> 8) & 7));
            }
            if (open_read_all(b, z.len) == HY_OK)
                ok++;
            else
                bad++;
        }
        free(b);
        free(z.buf);
    }
    printf("  corrupted zips: %d read, %d refused\n", ok, bad);
    ASSERT_EQ(hy__alloc_live(), live0);
}

// --- PyTorch-parity holes (issue 14 review) -------------------------------------------------

/* The plain archive plus `tail` appended, the real EOCD's comment length set to comment_len. */
static uint8_t *with_tail(const zb *z, const uint8_t *tail, size_t n, uint32_t comment_len,
                          size_t *len) {
    uint8_t *b = malloc(z->len + n);
    memcpy(b, z->buf, z->len);
    memcpy(b + z->len, tail, n);
    wr16(b + z->len - 22 + 20, comment_len);
    *len = z->len + n;
    return b;
}

/* PyTorch's miniz takes the LAST "PK\5\6" with 22 bytes after it, ignoring its comment
 * length; the previous reader took the last one whose comment fits. The last signature is
 * read, and it must end the file, so both rules pick the same record; an earlier signature
 * (here inside a stored entry's data) is harmless. */
HY_TEST(eocd_ambiguity_refused) {
    zb z = build(0, NULL);
    ASSERT_OK(open_read_all(z.buf, z.len));
    uint8_t fake[22] = {0x50, 0x4b, 0x05, 0x06}; /* an empty archive's EOCD */
    size_t n;
    /* fake EOCD inside the real one's comment, its own comment length not fitting: miniz
     * reads the fake (an empty archive), the old rule the real one */
    wr16(fake + 20, 0x1234);
    uint8_t *b = with_tail(&z, fake, sizeof fake, sizeof fake, &n);
    ASSERT_ERR(open_read_all(b, n), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "does not end the file");
    free(b);
    /* fake EOCD with a fitting comment length: every reader picks it (an empty archive) */
    wr16(fake + 20, 0);
    b = with_tail(&z, fake, sizeof fake, sizeof fake, &n);
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(b, n, "t.zip", &r));
    ASSERT_EQ(hy__zip_count(r), 0);
    hy__zip_close(r);
    free(b);
    /* bytes after the EOCD's comment (comment length 0, 5 bytes follow) */
    b = with_tail(&z, (const uint8_t *)"abcde", 5, 0, &n);
    ASSERT_ERR(open_read_all(b, n), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "does not end the file");
    free(b);
    /* the same 5 bytes declared as the comment: fine */
    b = with_tail(&z, (const uint8_t *)"abcde", 5, 5, &n);
    ASSERT_OK(open_read_all(b, n));
    free(b);
    free(z.buf);
    /* an EOCD signature inside entry data near the end (tensor bytes can hold one) */
    zb y = {0};
    uint8_t data[64] = {0};
    memcpy(data + 10, fake, sizeof fake);
    zb_add(&y, "a/data.pkl", rnd, 16, 0);
    zb_add(&y, "a/data/0", data, sizeof data, 0);
    zb_finish(&y, 0, NULL);
    ASSERT_OK(open_read_all(y.buf, y.len));
    free(y.buf);
}

/* A deflate stream that ends before the declared size: PyTorch fails the read; a range
 * ending exactly where the stream ends must not be accepted either. */
HY_TEST(read_range_stream_ending_early) {
    zb z = build(0, NULL);
    size_t c = cd_rec(&z, 4); /* a/data/1: 10 bytes deflated */
    wr32(z.buf + c + 24, 20); /* declared size 20 */
    hy__zip *r = NULL;
    ASSERT_OK(hy__zip_open(z.buf, z.len, "t.zip", &r));
    const hy__zip_entry *e = hy__zip_find(r, "a/data/1");
    ASSERT_EQ(e->size, 20);
    uint8_t got[20];
    ASSERT_OK(hy__zip_read_range(r, e, 0, 5, got)); /* a prefix cannot tell */
    ASSERT_ERR(hy__zip_read_range(r, e, 0, 10, got), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "stream ends after 10 of 20 bytes");
    ASSERT_ERR(hy__zip_read_range(r, e, 3, 10, got), HY_ERR_FORMAT);
    ASSERT_ERR(hy__zip_read_range(r, e, 0, 20, got), HY_ERR_FORMAT);
    hy__zip_close(r);
    free(z.buf);
}

HY_TEST_MAIN()
