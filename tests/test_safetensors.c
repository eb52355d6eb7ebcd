/* safetensors reader/writer, sha256 wrapper and weights-format sniffing.
 *
 * Independent references: FIPS 180-2 SHA-256 example digests; the MANIFEST sha256 of a
 * shared asset; byte-exact files built here by hand from the safetensors spec (including
 * the serialized examples in the reference implementation's own tests), never by our
 * writer; the first bytes of the real files in the shared assets. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/core.h"
#include "hy_test.h"
#include "io/safetensors.h"
#include "core/sha256.h"
#include "io/weights.h"

// --- helpers ----------------------------------------------------------------------------

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Rewrites an existing file in place (no O_TRUNC: rewriting by truncation makes ext4 flush
 * on close, which would make the fuzz loops slow). */
static int overwrite_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "r+b");
    if (!f) return write_file(path, p, n);
    size_t w = fwrite(p, 1, n, f);
    int rc = fclose(f);
    return (rc == 0 && w == n && truncate(path, (off_t)n) == 0) ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Builds a safetensors file by hand: u64 LE len(header) + header + data. */
static const char *make_st(const char *name, const char *header, const void *data, size_t dlen) {
    const char *path = hy_test_tmp(name);
    size_t hl = strlen(header);
    uint8_t *b = malloc(8 + hl + dlen + 1);
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, header, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    int rc = write_file(path, b, 8 + hl + dlen);
    free(b);
    return rc == 0 ? path : NULL;
}

/* Opens path expecting status `code`, an error naming the file and containing `needle`. */
static int expect_err(const char *path, hy_status code, const char *needle) {
    hy__st_file *f = NULL;
    hy_status st = hy__st_open(path, 0, &f);
    if (st != code || f != NULL) {
        fprintf(stderr, "  %s: got %s (%s), expected %s\n", path, hy_status_name(st),
                hy_last_error(), hy_status_name(code));
        hy__st_close(f);
        return 0;
    }
    if (!strstr(hy_last_error(), path) || !strstr(hy_last_error(), needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\" or the path\n", hy_last_error(), needle);
        return 0;
    }
    return 1;
}

static int count_tmp_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    if (d) closedir(d);
    return n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64*, fixed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void hex_of(const uint8_t *d, char *hex) {
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

// --- sha256 -----------------------------------------------------------------------------

HY_TEST(sha256_fips_vectors) {
    int64_t live = hy__alloc_live();
    uint8_t d[32];
    char hex[65];
    ASSERT_OK(hy__sha256_buf("abc", 3, d));
    hy__sha256_hex(d, hex);
    ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ASSERT_OK(hy__sha256_buf("", 0, d));
    hy__sha256_hex(d, hex);
    ASSERT_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* two-block message, fed in uneven pieces through the streaming API */
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hy__sha256_ctx h;
    ASSERT_OK(hy__sha256_init(&h));
    hy__sha256_update(&h, m, 5);
    hy__sha256_update(&h, m + 5, 0);
    hy__sha256_update(&h, m + 5, strlen(m) - 5);
    ASSERT_OK(hy__sha256_final(&h, d));
    hy__sha256_hex(d, hex);
    ASSERT_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hy__sha256_abort(&h); /* idempotent after final */
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(sha256_file_matches_manifest) {
    char hex[65];
    ASSERT_OK(hy__sha256_file(hy_test_asset("weights/yolov8n_int8.onnx"), hex));
    ASSERT_STREQ(hex, "83de8f0d2cd521e00ae2b138c340a03dece35b060b3898509bdc69afff417312");
    ASSERT_TRUE(hy__sha256_file(hy_test_tmp("does-not-exist"), hex) != HY_OK);
    ASSERT_CONTAINS(hy_last_error(), "does-not-exist");
}

// --- round trip -------------------------------------------------------------------------

HY_TEST(roundtrip_dtypes_bit_exact) {
    int64_t live = hy__alloc_live();
    float f32[2 * 3 * 4];
    for (int i = 0; i < 24; i++) f32[i] = (float)i * 0.37f - 3.0f;
    memcpy(&f32[0], &(uint32_t){0x7fc01234u}, 4); /* NaN payload must survive */
    memcpy(&f32[1], &(uint32_t){0x80000000u}, 4); /* -0 */
    memcpy(&f32[2], &(uint32_t){0x00000001u}, 4); /* denormal */
    uint16_t f16[5] = {0x3c00, 0xbc00, 0x7c00, 0x0001, 0x7e01};
    uint16_t bf16[7] = {0x3f80, 0xc000, 0x7f80, 0xff81, 0x0000, 0x8000, 0x4049};
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    int64_t nbt = 12345;
    uint8_t u8[3] = {0, 128, 255};
    hy__wtensor t[] = {
        {.name = "model.0.conv.weight",
         .dtype = HY_DTYPE_F32,
         .ndim = 3,
         .shape = {2, 3, 4},
         .numel = 24,
         .data = f32},
        {.name = "half",
         .dtype = HY_DTYPE_F16,
         .ndim = 2,
         .shape = {5, 1},
         .numel = 5,
         .data = f16},
        {.name = "brain",
         .dtype = HY_DTYPE_BF16,
         .ndim = 1,
         .shape = {7},
         .numel = 7,
         .data = bf16},
        {.name = "ints", .dtype = HY_DTYPE_I64, .ndim = 1, .shape = {3}, .numel = 3, .data = i64},
        {.name = "model.0.bn.num_batches_tracked",
         .dtype = HY_DTYPE_I64,
         .ndim = 0,
         .numel = 1,
         .data = &nbt},
        {.name = "bytes", .dtype = HY_DTYPE_U8, .ndim = 1, .shape = {3}, .numel = 3, .data = u8},
        {.name = "empty",
         .dtype = HY_DTYPE_F32,
         .ndim = 2,
         .shape = {0, 4},
         .numel = 0,
         .data = NULL},
        {.name = "ünïcode/名前",
         .dtype = HY_DTYPE_U8,
         .ndim = 1,
         .shape = {1},
         .numel = 1,
         .data = u8 + 2},
    };
    size_t n = HY_ARRAY_LEN(t);
    const char *keys[] = {"format", "note", "quote"};
    const char *vals[] = {"hotyolo-test", "a/b \"c\" \\ é", "\n\t"};
    const char *path = hy_test_tmp("rt.safetensors");
    ASSERT_OK(hy__st_write(path, t, n, keys, vals, 3));

    hy__st_file *f;
    ASSERT_OK(hy__st_open(path, 1, &f));
    ASSERT_EQ(hy__st_count(f), n);
    for (size_t i = 0; i < n; i++) {
        const hy__wtensor *r = hy__st_tensor(f, i);
        ASSERT_STREQ(r->name, t[i].name); /* header order = given order */
        ASSERT_EQ(r->dtype, t[i].dtype);
        ASSERT_EQ(r->ndim, t[i].ndim);
        for (int d = 0; d < r->ndim; d++) ASSERT_EQ(r->shape[d], t[i].shape[d]);
        ASSERT_EQ(r->numel, t[i].numel);
        if (t[i].numel)
            ASSERT_EQ(memcmp(r->data, t[i].data, t[i].numel * hy_dtype_size(t[i].dtype)), 0);
        ASSERT_TRUE(hy__st_find(f, t[i].name) == r);
    }
    ASSERT_TRUE(hy__st_tensor(f, n) == NULL);
    ASSERT_TRUE(hy__st_find(f, "nope") == NULL);
    ASSERT_STREQ(hy__st_meta(f, "format"), "hotyolo-test");
    ASSERT_STREQ(hy__st_meta(f, "note"), "a/b \"c\" \\ é");
    ASSERT_STREQ(hy__st_meta(f, "quote"), "\n\t");
    ASSERT_TRUE(hy__st_meta(f, "absent") == NULL);
    ASSERT_EQ(hy__st_meta_count(f), 5); /* + hotyolo.data_sha256, hotyolo.data_xxh3 */
    const char *k, *v;
    ASSERT_TRUE(hy__st_meta_at(f, 0, &k, &v));
    ASSERT_STREQ(k, "format");
    ASSERT_TRUE(hy__st_meta_at(f, 3, &k, &v));
    ASSERT_STREQ(k, HY_ST_KEY_DATA_SHA256);
    ASSERT_TRUE(hy__st_meta_at(f, 4, &k, &v));
    ASSERT_STREQ(k, HY_ST_KEY_DATA_XXH3);
    ASSERT_FALSE(hy__st_meta_at(f, 5, &k, &v));

    /* The recorded hash is the sha256 of the bytes after the header, read back raw. */
    size_t fsz;
    uint8_t *raw = read_file(path, &fsz);
    ASSERT_TRUE(raw != NULL);
    ASSERT_EQ(hy__st_data_offset(f), 8 + hy__st_header_len(f));
    ASSERT_EQ(hy__st_data_offset(f) + hy__st_data_size(f), fsz);
    uint8_t d[32];
    char hex[65];
    ASSERT_OK(hy__sha256_buf(raw + hy__st_data_offset(f), fsz - hy__st_data_offset(f), d));
    hex_of(d, hex);
    free(raw);
    ASSERT_STREQ(hy__st_meta(f, HY_ST_KEY_DATA_SHA256), hex);
    int match = 7;
    char comp[65];
    ASSERT_OK(hy__st_verify(path, comp, &match));
    ASSERT_EQ(match, 1);
    ASSERT_STREQ(comp, hex);
    hy__st_close(f);
    hy__st_close(NULL);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(alignment_of_data_and_tensors) {
    static float a64[16], a320[80];
    static uint16_t h6[3], b64[32];
    static int64_t s8 = 1;
    static uint8_t u7[7];
    static int32_t i12[3];
    hy__wtensor t[] = {
        {.name = "h6", .dtype = HY_DTYPE_F16, .ndim = 1, .shape = {3}, .numel = 3, .data = h6},
        {.name = "a64", .dtype = HY_DTYPE_F32, .ndim = 1, .shape = {16}, .numel = 16, .data = a64},
        {.name = "u7", .dtype = HY_DTYPE_U8, .ndim = 1, .shape = {7}, .numel = 7, .data = u7},
        {.name = "s8", .dtype = HY_DTYPE_I64, .ndim = 0, .numel = 1, .data = &s8},
        {.name = "a320",
         .dtype = HY_DTYPE_F32,
         .ndim = 2,
         .shape = {5, 16},
         .numel = 80,
         .data = a320},
        {.name = "i12", .dtype = HY_DTYPE_I32, .ndim = 1, .shape = {3}, .numel = 3, .data = i12},
        {.name = "b64", .dtype = HY_DTYPE_BF16, .ndim = 1, .shape = {32}, .numel = 32, .data = b64},
    };
    size_t n = HY_ARRAY_LEN(t);
    const char *path = hy_test_tmp("align.safetensors");
    ASSERT_OK(hy__st_write(path, t, n, NULL, NULL, 0));
    size_t fsz;
    uint8_t *raw = read_file(path, &fsz);
    ASSERT_TRUE(raw != NULL);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | raw[k];
    int ok_data = (8 + hl) % 64 == 0;
    /* header: JSON object starting with __metadata__, then only spaces */
    int ok_start = memcmp(raw + 8, "{\"__metadata__\":{", 17) == 0;
    size_t last = 8 + hl;
    while (last > 8 && raw[last - 1] == ' ') last--;
    int ok_end = raw[last - 1] == '}';
    free(raw);
    ASSERT_TRUE(ok_data);
    ASSERT_TRUE(ok_start);
    ASSERT_TRUE(ok_end);

    hy__st_file *f;
    ASSERT_OK(hy__st_open(path, 1, &f));
    ASSERT_EQ(hy__st_data_offset(f) % 64, 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t off = hy__st_tensor_offset(f, i);
        size_t nb = t[i].numel * hy_dtype_size(t[i].dtype);
        if (off % hy_dtype_size(t[i].dtype) != 0 || (nb % 64 == 0 && off % 64 != 0)) {
            hy__st_close(f);
            HY_FAIL_("tensor %s (%zu bytes) at file offset %llu is misaligned", t[i].name, nb,
                     (unsigned long long)off);
        }
    }
    hy__st_close(f);
}

// --- files from an independent writer ---------------------------------------------------

HY_TEST(reads_hand_built_files) {
    int64_t live = hy__alloc_live();
    /* The reference implementation's own serialization example (test_serialization): header
     * of exactly 64 bytes, F32 [1,2,3] = 0..5. */
    float six[6] = {0, 1, 2, 3, 4, 5};
    const char *p1 =
        make_st("ref1.safetensors",
                "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", six,
                sizeof six);
    ASSERT_TRUE(p1 != NULL);
    hy__st_file *f;
    ASSERT_OK(hy__st_open(p1, 0, &f));
    ASSERT_EQ(hy__st_header_len(f), 64);
    ASSERT_EQ(hy__st_count(f), 1);
    const hy__wtensor *t = hy__st_find(f, "attn.0");
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ(t->ndim, 3);
    ASSERT_EQ(t->shape[2], 3);
    ASSERT_EQ(((const float *)t->data)[5], 5.0f);
    hy__st_close(f);

    /* test_serialization_forced_alignement: 65-byte JSON + 7 spaces. */
    const char *p2 = make_st(
        "ref2.safetensors",
        "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ", six,
        sizeof six);
    ASSERT_OK(hy__st_open(p2, 0, &f));
    ASSERT_EQ(hy__st_header_len(f), 72);
    ASSERT_EQ(hy__st_tensor(f, 0)->ndim, 4);
    hy__st_close(f);

    /* test_empty: "{}" + 6 spaces; and with metadata {"framework":"pt"} + 5 spaces. */
    ASSERT_OK(hy__st_open(make_st("ref3.safetensors", "{}      ", NULL, 0), 0, &f));
    ASSERT_EQ(hy__st_count(f), 0);
    hy__st_close(f);
    ASSERT_OK(hy__st_open(
        make_st("ref4.safetensors", "{\"__metadata__\":{\"framework\":\"pt\"}}     ", NULL, 0), 0,
        &f));
    ASSERT_STREQ(hy__st_meta(f, "framework"), "pt");
    hy__st_close(f);
    /* \u escapes, including a surrogate pair, decode to UTF-8 */
    ASSERT_OK(
        hy__st_open(make_st("ref5.safetensors",
                            "{\"__metadata__\":{\"e\":\"\\ud83d\\ude00 caf\\u00e9\"}}", NULL, 0),
                    0, &f));
    ASSERT_STREQ(hy__st_meta(f, "e"), "\xf0\x9f\x98\x80 caf\xc3\xa9");
    hy__st_close(f);

    /* Keys out of offset order, metadata in the middle, whitespace and newlines, I32/BOOL/
     * F64/I8 and a scalar, as other writers may produce. */
    struct {
        double f64;
        int32_t i32[2];
        int8_t i8[2];
        uint8_t b[2];
    } __attribute__((packed)) data = {2.5, {-7, 1 << 30}, {-128, 127}, {1, 0}};
    const char *hdr =
        "{ \"flags\": {\"dtype\": \"BOOL\", \"shape\": [2], \"data_offsets\": [18, 20]},\n"
        "  \"__metadata__\": {\"who\": \"hand\"},\n"
        "  \"ints\": {\"dtype\": \"I32\", \"shape\": [2, 1], \"data_offsets\": [8, 16], \"extra\": "
        "1},\n"
        "  \"scalar\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [0, 8]},\n"
        "  \"small\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [16, 18]} }\n";
    const char *p5 = make_st("hand.safetensors", hdr, &data, sizeof data);
    ASSERT_OK(hy__st_open(p5, 0, &f));
    ASSERT_EQ(hy__st_count(f), 4);
    ASSERT_STREQ(hy__st_tensor(f, 0)->name, "flags"); /* header order */
    ASSERT_STREQ(hy__st_meta(f, "who"), "hand");
    const hy__wtensor *s = hy__st_find(f, "scalar");
    ASSERT_EQ(s->dtype, HY_DTYPE_F64);
    ASSERT_EQ(s->ndim, 0);
    ASSERT_EQ(s->numel, 1);
    double dv;
    memcpy(&dv, s->data, 8);
    ASSERT_EQ(dv, 2.5);
    const hy__wtensor *ii = hy__st_find(f, "ints");
    int32_t iv[2];
    memcpy(iv, ii->data, 8);
    ASSERT_EQ(iv[0], -7);
    ASSERT_EQ(iv[1], 1 << 30);
    ASSERT_EQ(((const int8_t *)hy__st_find(f, "small")->data)[0], -128);
    ASSERT_EQ(hy__st_find(f, "flags")->dtype, HY_DTYPE_BOOL);
    ASSERT_EQ(((const uint8_t *)hy__st_find(f, "flags")->data)[0], 1);
    /* no recorded hash: verify=1 refuses, hy__st_verify reports -1 */
    hy__st_close(f);
    f = NULL;
    ASSERT_ERR(hy__st_open(p5, 1, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "no recorded data hash");
    ASSERT_TRUE(f == NULL);
    int m = 5;
    char hex[65];
    ASSERT_OK(hy__st_verify(p5, hex, &m));
    ASSERT_EQ(m, -1);
    ASSERT_EQ(hy__alloc_live(), live);
}

// --- bad files ----------------------------------------------------------------------------

HY_TEST(rejects_bad_files_with_clear_messages) {
    int64_t live = hy__alloc_live();
    uint8_t z[64] = {0};
    const char *p = hy_test_tmp("short.safetensors");
    ASSERT_EQ(write_file(p, "\x10\0\0\0\0", 5), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "too short"));
    ASSERT_EQ(write_file(p, "", 0), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "too short"));

    p = hy_test_tmp("len0.safetensors");
    ASSERT_EQ(write_file(p, z, 16), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "header length is 0"));

    p = hy_test_tmp("huge.safetensors");
    uint8_t huge[16] = {0x00, 0xc2, 0xeb, 0x0b, 0, 0, 0, 0, '{', '}'}; /* 200,000,000 */
    ASSERT_EQ(write_file(p, huge, sizeof huge), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "exceeds the 100000000-byte limit"));
    uint8_t max64[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    ASSERT_EQ(write_file(p, max64, sizeof max64), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "exceeds"));

    p = hy_test_tmp("past.safetensors");
    uint8_t past[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    ASSERT_EQ(write_file(p, past, sizeof past), 0);
    ASSERT_TRUE(expect_err(p, HY_ERR_FORMAT, "runs past the end of the file"));

    float four[4] = {1, 2, 3, 4};
    struct {
        const char *hdr;
        size_t dlen;
        hy_status code;
        const char *needle;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",", 0, HY_ERR_FORMAT, "not valid JSON"},
        {"{\"a\":1,}", 0, HY_ERR_FORMAT, "not valid JSON"},
        {"{'a':1}", 0, HY_ERR_FORMAT, "single-quoted"},
        {"{\"__metadata__\":{\"k\":NaN}}", 0, HY_ERR_FORMAT, "bare word"},
        {"{\"__metadata__\":{\"k\":\"\t\"}}", 0, HY_ERR_FORMAT, "raw control character"},
        {"{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0, HY_ERR_FORMAT, "lone surrogate"},
        {"{\"__metadata__\":{\"k\":\"\\udc00\\ud800\"}}", 0, HY_ERR_FORMAT, "lone surrogate"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         HY_ERR_FORMAT, "escaped NUL"},
        {"[1,2]", 0, HY_ERR_FORMAT, "not a JSON object"},
        {"{} {}", 0, HY_ERR_FORMAT, "trailing characters"},
        {"{} x", 0, HY_ERR_FORMAT, "bare word"},
        {"{}\0 ", 0, HY_ERR_FORMAT, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "unknown dtype \"F33\""},
        {"{\"a\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, HY_ERR_UNSUPPORTED,
         "\"U16\""},
        {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "\"dtype\""},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "\"dtype\" is missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "\"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,-1],\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "shape[1]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, HY_ERR_FORMAT,
         "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         HY_ERR_FORMAT, "9 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
         4, HY_ERR_FORMAT, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, HY_ERR_FORMAT,
         "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, HY_ERR_FORMAT,
         "begin > end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, HY_ERR_FORMAT,
         "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12, HY_ERR_FORMAT,
         "run past the end of the data section"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, HY_ERR_FORMAT,
         "size mismatch"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, HY_ERR_FORMAT, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, HY_ERR_FORMAT, "belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, HY_ERR_FORMAT,
         "after the last tensor"},
        {"{}", 4, HY_ERR_FORMAT, "lists no tensors"},
        {"{\"a\":[1]}", 0, HY_ERR_FORMAT, "not a JSON object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, HY_ERR_FORMAT, "value of \"k\" is not a string"},
        {"{\"__metadata__\":[\"k\"]}", 0, HY_ERR_FORMAT, "\"__metadata__\" is not a JSON object"},
        {"{\"__metadata__\":{\"k\":\"\xc3\x28\"}}", 0, HY_ERR_FORMAT, "UTF-8"},
        {"{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}", 0, HY_ERR_FORMAT, "UTF-8"}, /* surrogate */
        {"{\"__metadata__\":{\"hotyolo.names\":\"[1]\"}}", 0, HY_ERR_FORMAT, "hotyolo.names"},
        {"{\"__metadata__\":{\"hotyolo.nc\":\"2\",\"hotyolo.names\":\"[\\\"a\\\"]\"}}", 0,
         HY_ERR_FORMAT, "has 1 names"},
        {"{\"__metadata__\":{\"hotyolo.nc\":\"-3\"}}", 0, HY_ERR_FORMAT, "hotyolo.nc"},
        {"{\"__metadata__\":{\"hotyolo.variant\":\"q\"}}", 0, HY_ERR_FORMAT, "hotyolo.variant"},
        {"{\"__metadata__\":{\"hotyolo.imgsz\":\"641\"}}", 0, HY_ERR_FORMAT, "hotyolo.imgsz"},
        {"{\"__metadata__\":{\"hotyolo.fused\":\"yes\"}}", 0, HY_ERR_FORMAT, "hotyolo.fused"},
        {"{\"__metadata__\":{\"hotyolo.stride\":\"[8,0]\"}}", 0, HY_ERR_FORMAT, "hotyolo.stride"},
        {"{\"__metadata__\":{\"hotyolo.data_sha256\":\"abc\"}}", 0, HY_ERR_FORMAT, "64 hex digits"},
        {"{\"__metadata__\":{\"format\":\"hotyolo\",\"hotyolo.format_version\":\"2\"}}", 0,
         HY_ERR_UNSUPPORTED, "format_version"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        char name[64];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        /* "{}\0 " has an embedded NUL: build it byte by byte */
        size_t hl = strlen(cases[i].hdr);
        if (strcmp(cases[i].hdr, "{}") == 0 && cases[i].dlen == 0) hl = 4;
        const char *path = hy_test_tmp(name);
        uint8_t buf[512];
        for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(buf + 8, cases[i].hdr, hl);
        memcpy(buf + 8 + hl, four, cases[i].dlen > 16 ? 16 : cases[i].dlen);
        if (cases[i].dlen > 16) memset(buf + 8 + hl + 16, 0, cases[i].dlen - 16);
        ASSERT_EQ(write_file(path, buf, 8 + hl + cases[i].dlen), 0);
        if (!expect_err(path, cases[i].code, cases[i].needle))
            HY_FAIL_("case %zu: %s", i, cases[i].hdr);
    }
    ASSERT_EQ(hy__alloc_live(), live);
}

/* The reader reports the recorded architecture; the model layer refuses one it lacks (issue
 * 15: formats do not judge architectures). Before, hy__st_open refused "yolov5" itself. */
HY_TEST(arch_is_reported_by_reader_and_judged_by_model) {
    const char *hdr = "{\"__metadata__\":{\"hotyolo.arch\":\"yolov7\"}}";
    size_t hl = strlen(hdr);
    uint8_t buf[128];
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, hdr, hl);
    const char *path = hy_test_tmp("arch_yolov7.safetensors");
    ASSERT_EQ(write_file(path, buf, 8 + hl), 0);
    hy__st_file *f = NULL;
    ASSERT_OK(hy__st_open(path, 0, &f));
    hy__wsource src;
    ASSERT_OK(hy__st_source(f, &src));
    ASSERT_STREQ(src.arch, "yolov7");
    hy__st_close(f);
    hy_model *m = NULL;
    ASSERT_EQ(hy_model_load(path, NULL, &m), HY_ERR_UNSUPPORTED);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(hy_last_error(), "arch_yolov7.safetensors: architecture \"yolov7\" is not "
                                     "supported (supported: yolov8, yolov5)");
}

// --- fuzz-style ---------------------------------------------------------------------------

/* Touches every byte of every tensor so ASan sees any out-of-map pointer. */
static unsigned touch(const hy__st_file *f) {
    unsigned s = 0;
    for (size_t i = 0; i < hy__st_count(f); i++) {
        const hy__wtensor *t = hy__st_tensor(f, i);
        const uint8_t *p = t->data;
        for (size_t b = 0; b < t->numel * hy_dtype_size(t->dtype); b++) s += p[b];
        s += (unsigned)strlen(t->name);
    }
    return s;
}

static const char *fuzz_base(size_t *len, uint8_t **bytes) {
    static float w[2 * 3 * 3 * 3];
    static uint16_t b[8];
    static int64_t nbt = 3;
    for (size_t i = 0; i < HY_ARRAY_LEN(w); i++) w[i] = (float)i;
    for (size_t i = 0; i < HY_ARRAY_LEN(b); i++) b[i] = (uint16_t)(0x3c00 + i);
    hy__wtensor t[] = {
        {.name = "model.0.conv.weight",
         .dtype = HY_DTYPE_F32,
         .ndim = 4,
         .shape = {2, 3, 3, 3},
         .numel = 54,
         .data = w},
        {.name = "model.0.bn.bias",
         .dtype = HY_DTYPE_F16,
         .ndim = 1,
         .shape = {8},
         .numel = 8,
         .data = b},
        {.name = "model.0.bn.num_batches_tracked",
         .dtype = HY_DTYPE_I64,
         .ndim = 0,
         .numel = 1,
         .data = &nbt},
    };
    const char *keys[] = {"format", "hotyolo.format_version", "hotyolo.nc", "hotyolo.names",
                          "hotyolo.variant"};
    const char *vals[] = {"hotyolo", "1", "2", "[\"a\",\"b\"]", "n"};
    const char *path = hy_test_tmp("fuzz_base.safetensors");
    if (hy__st_write(path, t, 3, keys, vals, 5)) return NULL;
    *bytes = read_file(path, len);
    return path;
}

HY_TEST(fuzz_every_truncation_fails_cleanly) {
    int64_t live = hy__alloc_live();
    size_t len;
    uint8_t *base = NULL;
    ASSERT_TRUE(fuzz_base(&len, &base) != NULL && base != NULL);
    const char *p = hy_test_tmp("trunc.safetensors");
    int fails = 0;
    size_t tried = 0;
    ASSERT_EQ(write_file(p, base, len), 0);
    for (size_t cut = len; cut-- > 0;) { /* shrink the file one byte at a time */
        if (truncate(p, (off_t)cut) != 0) break;
        tried++;
        hy__st_file *f = NULL;
        hy_status st = hy__st_open(p, 0, &f);
        if (st == HY_OK) { /* every proper prefix breaks header length or coverage */
            hy__st_close(f);
            fails++;
        } else if (f != NULL || !hy_last_error()[0]) {
            fails++;
        }
    }
    ASSERT_EQ(write_file(p, base, len), 0);
    hy__st_file *f;
    ASSERT_OK(hy__st_open(p, 1, &f));
    hy__st_close(f);
    free(base);
    ASSERT_EQ(tried, len);
    ASSERT_EQ(fails, 0);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(fuzz_random_byte_flips) {
    int64_t live = hy__alloc_live();
    size_t len;
    uint8_t *base = NULL;
    ASSERT_TRUE(fuzz_base(&len, &base) != NULL && base != NULL);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | base[k];
    uint8_t *buf = malloc(len);
    const char *p = hy_test_tmp("flip.safetensors");
    int undetected = 0, opened = 0, rejected = 0;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, base, len);
        size_t pos;
        int nflips = 1 + (int)(rng() % 3);
        int in_data = 0;
        for (int k = 0; k < nflips; k++) {
            /* half the flips land in the 8-byte length or the header, where parsing happens */
            pos = (it & 1) ? (size_t)(rng() % (8 + hl)) : (size_t)(rng() % len);
            buf[pos] ^= (uint8_t)(1 + rng() % 255);
            if (pos >= 8 + hl) in_data = 1;
        }
        if (overwrite_file(p, buf, len) != 0) break;
        for (int verify = 0; verify <= 1; verify++) {
            hy__st_file *f = NULL;
            hy_status st = hy__st_open(p, verify, &f);
            if (st == HY_OK) {
                (void)touch(f);
                hy__wsource src;
                (void)hy__st_source(f, &src);
                hy__st_close(f);
                opened++;
                /* data flips that leave the file parseable must fail verification */
                if (verify && in_data && memcmp(buf + 8 + hl, base + 8 + hl, len - 8 - hl) != 0)
                    undetected++;
            } else {
                rejected++;
            }
        }
    }
    free(buf);
    free(base);
    if (getenv("HY_ST_FUZZ_STATS")) printf("  opened %d, rejected %d\n", opened, rejected);
    ASSERT_EQ(undetected, 0);
    ASSERT_TRUE(opened > 0);
    ASSERT_TRUE(rejected > 0);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(verify_detects_modified_data) {
    size_t len;
    uint8_t *base = NULL;
    const char *bp = fuzz_base(&len, &base);
    ASSERT_TRUE(bp != NULL && base != NULL);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | base[k];
    base[len - 1] ^= 0x01; /* last data byte */
    const char *p = hy_test_tmp("modified.safetensors");
    ASSERT_EQ(write_file(p, base, len), 0);
    hy__st_file *f = NULL;
    ASSERT_OK(hy__st_open(p, 0, &f)); /* structurally fine */
    hy__st_close(f);
    f = NULL;
    ASSERT_ERR(hy__st_open(p, 1, &f), HY_ERR_FORMAT);
    ASSERT_TRUE(f == NULL);
    ASSERT_CONTAINS(hy_last_error(), p);
    ASSERT_CONTAINS(hy_last_error(),
                    "data sha256 mismatch (file is corrupt or was modified): recorded ");
    uint8_t d[32];
    char hex[65], comp[65];
    ASSERT_OK(hy__sha256_buf(base + 8 + hl, len - 8 - hl, d));
    hex_of(d, hex);
    ASSERT_CONTAINS(hy_last_error(), hex); /* computed value is the independent digest */
    int m = 9;
    ASSERT_OK(hy__st_verify(p, comp, &m));
    ASSERT_EQ(m, 0);
    ASSERT_STREQ(comp, hex);
    free(base);
}

/* hotyolo.data_xxh3 over a data section of several 4 MiB blocks whose tensors straddle the
 * block boundaries: the value is recomputed here from the definition in docs/formats.md with
 * libxxhash's one-shot XXH3_64bits on the file's bytes (not our streaming writer or threaded
 * reader), HY_ST_VERIFY_XXH3 accepts the file, and one flipped byte in any block fails it. */
HY_TEST(xxh3_block_checksum) {
    const size_t sizes[3] = {3u << 20, (5u << 20) + 12, 7u << 20}; /* 15 MiB + 12 B: 4 blocks */
    float *buf[3];
    hy__wtensor t[3];
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        buf[i] = malloc(sizes[i]);
        ASSERT_TRUE(buf[i] != NULL);
        for (size_t k = 0; k < sizes[i] / 4; k++) buf[i][k] = (float)(k * 7 + (size_t)i) * 0.5f;
        t[i] = (hy__wtensor){.name = names[i], .dtype = HY_DTYPE_F32, .ndim = 1,
                             .shape = {(int64_t)(sizes[i] / 4)}, .numel = sizes[i] / 4, .data = buf[i]};
    }
    const char *p = hy_test_tmp("xxh3.safetensors");
    ASSERT_OK(hy__st_write(p, t, 3, NULL, NULL, 0));
    for (int i = 0; i < 3; i++) free(buf[i]);
    size_t len;
    uint8_t *b = read_file(p, &len);
    ASSERT_TRUE(b != NULL);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | b[k];
    const uint8_t *data = b + 8 + hl;
    size_t dn = len - 8 - hl, nb = (dn + (4u << 20) - 1) / (4u << 20);
    ASSERT_EQ(nb, 4);
    uint8_t le[4 * 8];
    for (size_t i = 0; i < nb; i++) {
        size_t off = i * (4u << 20), n = dn - off < (4u << 20) ? dn - off : (4u << 20);
        uint64_t h = XXH3_64bits(data + off, n);
        for (int k = 0; k < 8; k++) le[i * 8 + (size_t)k] = (uint8_t)(h >> (8 * k));
    }
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)XXH3_64bits(le, nb * 8));
    hy__st_file *f = NULL;
    ASSERT_OK(hy__st_open(p, HY_ST_VERIFY_XXH3, &f));
    ASSERT_STREQ(hy__st_meta(f, HY_ST_KEY_DATA_XXH3), want);
    char got[17];
    ASSERT_OK(hy__st_data_xxh3(f, got));
    ASSERT_STREQ(got, want);
    hy__st_close(f);
    const size_t at[4] = {0, (4u << 20) + 1, (8u << 20) - 1, dn - 1}; /* one byte in each block */
    for (int i = 0; i < 4; i++) {
        b[8 + hl + at[i]] ^= 0x40;
        ASSERT_EQ(overwrite_file(p, b, len), 0);
        f = NULL;
        ASSERT_ERR(hy__st_open(p, HY_ST_VERIFY_XXH3, &f), HY_ERR_FORMAT);
        ASSERT_TRUE(f == NULL);
        ASSERT_CONTAINS(hy_last_error(), "data checksum mismatch");
        ASSERT_CONTAINS(hy_last_error(), want);
        b[8 + hl + at[i]] ^= 0x40;
    }
    ASSERT_EQ(overwrite_file(p, b, len), 0);
    ASSERT_OK(hy__st_open(p, HY_ST_VERIFY_XXH3, &f));
    hy__st_close(f);
    free(b);
    /* a file without the key (another writer's) cannot be checked */
    const char *q = hy_test_tmp("noxxh.safetensors");
    static const char hand[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    uint8_t raw[8 + sizeof hand - 1 + 4] = {0};
    raw[0] = (uint8_t)(sizeof hand - 1);
    memcpy(raw + 8, hand, sizeof hand - 1);
    ASSERT_EQ(write_file(q, raw, sizeof raw), 0);
    f = NULL;
    ASSERT_OK(hy__st_open(q, 0, &f));
    hy__st_close(f);
    f = NULL;
    ASSERT_ERR(hy__st_open(q, HY_ST_VERIFY_XXH3, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "no recorded data checksum");
}

// --- writer behaviour ----------------------------------------------------------------------

HY_TEST(writer_is_atomic_and_refuses_bad_input) {
    int64_t live = hy__alloc_live();
    float v[4] = {1, 2, 3, 4};
    hy__wtensor t[2] = {
        {.name = "a", .dtype = HY_DTYPE_F32, .ndim = 1, .shape = {4}, .numel = 4, .data = v},
        {.name = "b", .dtype = HY_DTYPE_F32, .ndim = 1, .shape = {4}, .numel = 4, .data = v},
    };
    /* a directory */
    const char *dir = hy_test_tmp("a_dir.safetensors");
    mkdir(dir, 0700);
    ASSERT_ERR(hy__st_write(dir, t, 2, NULL, NULL, 0), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "is a directory");
    struct stat sb;
    ASSERT_TRUE(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));

    /* an existing file survives a failed write untouched */
    const char *p = hy_test_tmp("keep.safetensors");
    ASSERT_EQ(write_file(p, "precious", 8), 0);
    t[1].name = "a";
    ASSERT_ERR(hy__st_write(p, t, 2, NULL, NULL, 0), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "duplicate tensor name \"a\"");
    t[1].name = "b";
    t[1].numel = 5;
    ASSERT_ERR(hy__st_write(p, t, 2, NULL, NULL, 0), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "numel");
    t[1].numel = 4;
    t[1].name = "__metadata__";
    ASSERT_ERR(hy__st_write(p, t, 2, NULL, NULL, 0), HY_ERR_INVALID_ARG);
    t[1].name = "\xff\xfe";
    ASSERT_ERR(hy__st_write(p, t, 2, NULL, NULL, 0), HY_ERR_INVALID_ARG);
    t[1].name = "b";
    const char *dk[] = {"k", "k"}, *dv[] = {"1", "2"};
    ASSERT_ERR(hy__st_write(p, t, 2, dk, dv, 2), HY_ERR_INVALID_ARG);
    size_t n;
    uint8_t *raw = read_file(p, &n);
    ASSERT_TRUE(raw != NULL && n == 8 && memcmp(raw, "precious", 8) == 0);
    free(raw);

    /* a missing directory is an I/O error and leaves nothing behind */
    ASSERT_ERR(hy__st_write(hy_test_tmp("no/such/dir/x.safetensors"), t, 2, NULL, NULL, 0),
               HY_ERR_IO);

    /* success replaces the file; caller-supplied data hashes are replaced by the real ones */
    const char *hk[] = {HY_ST_KEY_DATA_SHA256, HY_ST_KEY_DATA_XXH3}, *hv[] = {"0000", "1111"};
    ASSERT_OK(hy__st_write(p, t, 2, hk, hv, 2));
    hy__st_file *f;
    ASSERT_OK(hy__st_open(p, 1, &f));
    ASSERT_EQ(hy__st_count(f), 2);
    ASSERT_EQ(hy__st_meta_count(f), 2);
    hy__st_close(f);
    ASSERT_OK(hy__st_open(p, HY_ST_VERIFY_XXH3, &f));
    hy__st_close(f);

    /* no temporary files left in the directory */
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s", p);
    *strrchr(tmpdir, '/') = '\0';
    ASSERT_EQ(count_tmp_leftovers(tmpdir), 0);
    ASSERT_EQ(hy__alloc_live(), live);
}

// --- hotyolo metadata -> hy__wsource --------------------------------------------------------

HY_TEST(source_carries_hotyolo_metadata) {
    int64_t live = hy__alloc_live();
    float w[16 * 3 * 3 * 3], bias[16];
    for (size_t i = 0; i < HY_ARRAY_LEN(w); i++) w[i] = (float)i;
    for (size_t i = 0; i < HY_ARRAY_LEN(bias); i++) bias[i] = -(float)i;
    hy__wtensor t[] = {
        {.name = "model.0.conv.weight",
         .dtype = HY_DTYPE_F32,
         .ndim = 4,
         .shape = {16, 3, 3, 3},
         .numel = 432,
         .data = w},
        {.name = "model.0.conv.bias",
         .dtype = HY_DTYPE_F32,
         .ndim = 1,
         .shape = {16},
         .numel = 16,
         .data = bias},
    };
    char *names[] = {"person", "bus", "with \"quote\" / slash"};
    hy__wsource in = {.format = HY_WFORMAT_PT,
                      .tensors = t,
                      .n_tensors = 2,
                      .fused = 1,
                      .nc = 3,
                      .imgsz = 320,
                      .names = names,
                      .n_names = 3};
    snprintf(in.scale, sizeof in.scale, "s");
    const char *src_hash = "fc8af32ca9a389f3864c7d06d868d51a501a17738d54674cf26c3538c5a578c5";
    const char *p = hy_test_tmp("source.safetensors");
    ASSERT_OK(hy__st_write_source(p, &in, src_hash));
    hy__st_file *f;
    ASSERT_OK(hy__st_open(p, 1, &f));
    ASSERT_STREQ(hy__st_meta(f, "format"), "hotyolo");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.format_version"), "1");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.arch"), "yolov8");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.variant"), "s");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.nc"), "3");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.names"),
                 "[\"person\",\"bus\",\"with \\\"quote\\\" / slash\"]");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.imgsz"), "320");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.stride"), "[8,16,32]");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.fused"), "true");
    ASSERT_STREQ(hy__st_meta(f, "hotyolo.source_sha256"), src_hash);
    hy__wsource s;
    ASSERT_OK(hy__st_source(f, &s));
    ASSERT_EQ(s.format, HY_WFORMAT_SAFETENSORS);
    ASSERT_EQ(s.n_tensors, 2);
    ASSERT_STREQ(s.tensors[0].name, "model.0.conv.weight");
    ASSERT_EQ(s.fused, 1);
    ASSERT_EQ(s.nc, 3);
    ASSERT_STREQ(s.scale, "s");
    ASSERT_EQ(s.imgsz, 320);
    ASSERT_EQ(s.n_names, 3);
    ASSERT_STREQ(s.names[2], "with \"quote\" / slash");
    hy__st_close(f);

    /* Without hotyolo.fused the flag is inferred from tensor names. */
    ASSERT_OK(hy__st_write(p, t, 2, NULL, NULL, 0));
    ASSERT_OK(hy__st_open(p, 0, &f));
    ASSERT_OK(hy__st_source(f, &s));
    ASSERT_EQ(s.fused, 1);
    ASSERT_EQ(s.nc, 0);
    ASSERT_STREQ(s.scale, "");
    ASSERT_TRUE(s.names == NULL);
    hy__st_close(f);
    t[1].name = "model.0.bn.bias";
    ASSERT_OK(hy__st_write(p, t, 2, NULL, NULL, 0));
    ASSERT_OK(hy__st_open(p, 0, &f));
    ASSERT_OK(hy__st_source(f, &s));
    ASSERT_EQ(s.fused, 0);
    hy__st_close(f);
    ASSERT_EQ(hy__alloc_live(), live);
}

// --- format detection ---------------------------------------------------------------------

static hy__wformat detect_file(const char *path) {
    size_t n = 0;
    uint8_t *b = read_file(path, &n);
    if (!b) return HY_WFORMAT_COUNT;
    hy__wformat f = hy__wformat_detect(b, n);
    free(b);
    return f;
}

HY_TEST(detects_formats_by_content) {
    ASSERT_EQ(detect_file(hy_test_asset("weights/yolov8n.pt")), HY_WFORMAT_PT);
    ASSERT_EQ(detect_file(hy_test_asset("weights/yolov8n.onnx")), HY_WFORMAT_ONNX);
    ASSERT_EQ(detect_file(hy_test_asset("weights/yolov8n_int8.onnx")), HY_WFORMAT_ONNX);
    ASSERT_EQ(detect_file(hy_test_asset("fixtures/pt/tiny_state_dict_legacy_format.pt")),
              HY_WFORMAT_PT_LEGACY);
    ASSERT_EQ(detect_file(hy_test_asset("weights/yolov8n_int8.tflite")), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(detect_file(hy_test_asset("coco.names")), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(detect_file(hy_test_asset("images/bus.jpg")), HY_WFORMAT_UNKNOWN);

    /* a prefix is enough for ONNX (the graph field runs past it) */
    size_t n;
    uint8_t *b = read_file(hy_test_asset("weights/yolov8n.onnx"), &n);
    ASSERT_TRUE(b != NULL && n > 64);
    hy__wformat pre = hy__wformat_detect(b, 64);
    free(b);
    ASSERT_EQ(pre, HY_WFORMAT_ONNX);

    float v = 1;
    hy__wtensor t = {
        .name = "x", .dtype = HY_DTYPE_F32, .ndim = 1, .shape = {1}, .numel = 1, .data = &v};
    const char *p = hy_test_tmp("detect.safetensors");
    ASSERT_OK(hy__st_write(p, &t, 1, NULL, NULL, 0));
    ASSERT_EQ(detect_file(p), HY_WFORMAT_SAFETENSORS);
    ASSERT_EQ(detect_file(make_st("det2.safetensors", "{}", NULL, 0)), HY_WFORMAT_SAFETENSORS);

    const char *text = "hello, this is a plain text file\n";
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)text, strlen(text)), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(
        hy__wformat_detect((const uint8_t *)"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22),
        HY_WFORMAT_PT);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"PK\x01\x02", 4), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x80\x02\x8a\x0a", 4), HY_WFORMAT_PT_LEGACY);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x80\x07\x8a\x0a", 4), HY_WFORMAT_UNKNOWN);
    /* hand-made ModelProto: ir_version 8, producer_name "x", graph {name "g"} */
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x08\x08\x12\x01x\x3a\x03\x12\x01g", 10),
              HY_WFORMAT_ONNX);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x08\x63\x12\x01x\x3a\x03\x12\x01g", 10),
              HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x08\x08\x00\x00", 4), HY_WFORMAT_UNKNOWN);
    /* length says 2 but byte 8 is not '{' */
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"\x02\0\0\0\0\0\0\0[]", 10), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(hy__wformat_detect(NULL, 0), HY_WFORMAT_UNKNOWN);
    ASSERT_EQ(hy__wformat_detect((const uint8_t *)"PK", 2), HY_WFORMAT_UNKNOWN);

    ASSERT_STREQ(hy__wformat_name(HY_WFORMAT_PT), "pt");
    ASSERT_STREQ(hy__wformat_name(HY_WFORMAT_PT_LEGACY), "pt-legacy");
    ASSERT_STREQ(hy__wformat_name(HY_WFORMAT_SAFETENSORS), "safetensors");
    ASSERT_STREQ(hy__wformat_name(HY_WFORMAT_ONNX), "onnx");
    ASSERT_STREQ(hy__wformat_name(HY_WFORMAT_UNKNOWN), "unknown");
}

HY_TEST_MAIN()
