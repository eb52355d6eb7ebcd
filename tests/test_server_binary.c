/* Triton's binary tensor data extension without a socket (src/server/binary_infer.c and
 * hy__v2_parse_infer_ex in routes.c): the Inference-Header-Content-Length value, the split of
 * an infer body into its JSON header and binary input, which outputs are asked as binary, and
 * that sizes which do not add up are refused before anything is allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hy_test.h"
#include "server/server_impl.h"

/* A body as tritonclient builds it: compact JSON header (binary_data_size = nbytes) + raw. */
static char *binary_body(int h, int w, const char *extra, size_t *hlen, size_t *len) {
    size_t n = (size_t)3 * h * w;
    char head[512];
    int k = snprintf(head, sizeof head,
                     "{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,%d,%d],\"datatype\":\"FP32\","
                     "\"parameters\":{\"binary_data_size\":%zu}}]%s}",
                     h, w, n * 4, extra);
    char *b = malloc((size_t)k + n * 4);
    memcpy(b, head, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        float f = (float)(i % 97) / 97.0f;
        uint32_t u;
        memcpy(&u, &f, 4);
        uint8_t *p = (uint8_t *)b + k + 4 * i; /* little-endian, whatever the host */
        p[0] = (uint8_t)u, p[1] = (uint8_t)(u >> 8), p[2] = (uint8_t)(u >> 16), p[3] = (uint8_t)(u >> 24);
    }
    *hlen = (size_t)k;
    *len = (size_t)k + n * 4;
    return b;
}

HY_TEST(header_length_is_a_plain_byte_count_within_the_body) {
    char err[256];
    size_t v = 7;
    ASSERT_EQ(hy__v2_header_length("120", 200, &v, err, sizeof err), 0);
    ASSERT_EQ(v, (size_t)120);
    ASSERT_EQ(hy__v2_header_length("200", 200, &v, err, sizeof err), 0);
    const char *bad[] = {"201", "", "-5", "+5", " 5", "5 ", "12abc", "0x10", "99999999999999999999",
                         "18446744073709551617"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        err[0] = '\0';
        ASSERT_EQ(hy__v2_header_length(bad[i], 200, &v, err, sizeof err), -1);
        ASSERT_EQ(v, (size_t)7); /* untouched */
        ASSERT_CONTAINS(err, "Inference-Header-Content-Length");
    }
}

HY_TEST(binary_input_is_read_little_endian_and_outputs_follow_the_flags) {
    char err[512];
    size_t hl, len;
    hy__v2_input in;
    char *b = binary_body(32, 64, ",\"parameters\":{\"binary_data_output\":true}", &hl, &len);
    ASSERT_EQ(hy__v2_parse_infer_ex(b, len, hl, 64, &in, err, sizeof err), 0);
    ASSERT_EQ(in.h, 32);
    ASSERT_EQ(in.w, 64);
    ASSERT_EQ(in.binary_out, 1);
    for (size_t i = 0; i < (size_t)3 * 32 * 64; i++)
        ASSERT_EQ(in.x[i], (float)(i % 97) / 97.0f);
    hy__v2_input_free(&in);
    free(b);
    /* a per-output flag overrides binary_data_output */
    b = binary_body(32, 32,
                    ",\"outputs\":[{\"name\":\"output0\",\"parameters\":{\"binary_data\":false}}],"
                    "\"parameters\":{\"binary_data_output\":true,\"priority\":1}",
                    &hl, &len);
    ASSERT_EQ(hy__v2_parse_infer_ex(b, len, hl, 64, &in, err, sizeof err), 0);
    ASSERT_EQ(in.binary_out, 0);
    hy__v2_input_free(&in);
    free(b);
    b = binary_body(32, 32, ",\"outputs\":[{\"name\":\"output0\",\"parameters\":{\"binary_data\":true}}]",
                    &hl, &len);
    ASSERT_EQ(hy__v2_parse_infer_ex(b, len, hl, 64, &in, err, sizeof err), 0);
    ASSERT_EQ(in.binary_out, 1);
    hy__v2_input_free(&in);
    /* the same body without the split: not JSON */
    ASSERT_EQ(hy__v2_parse_infer(b, len, 64, &in, err, sizeof err), -1);
    ASSERT_TRUE(in.x == NULL);
    free(b);
}

HY_TEST(binary_sections_that_do_not_add_up_are_refused) {
    char err[512];
    size_t hl, len;
    hy__v2_input in;
    char *b = binary_body(32, 32, "", &hl, &len);
    struct { size_t hl, len; const char *want; } cases[] = {
        {hl, len - 4, "binary_data_size"},      /* 4 bytes short */
        {hl, len - 1, "binary_data_size"},
        {hl + 1, len, "JSON"},                  /* header takes a byte of the data */
        {hl - 1, len, "JSON"},                  /* header cut */
        {len + 1, len, "past the end"},         /* header length past the body */
        {(size_t)-1, len, "past the end"},
        {0, len, "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        ASSERT_EQ(hy__v2_parse_infer_ex(b, cases[i].len, cases[i].hl, 64, &in, err, sizeof err), -1);
        ASSERT_TRUE(in.x == NULL);
        ASSERT_CONTAINS(err, cases[i].want);
    }
    free(b);
}

/* A header claiming the largest input (640x640: 4.9 MB of floats) or 2^62 bytes over a tiny
 * body: refused from the sizes alone, before the float buffer. */
static int claim_huge(void *arg) {
    (void)arg;
    char err[512];
    hy__v2_input in;
    const char *heads[] = {
        "{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,640,640],\"datatype\":\"FP32\","
        "\"parameters\":{\"binary_data_size\":4915200}}]}",
        "{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,640,640],\"datatype\":\"FP32\","
        "\"parameters\":{\"binary_data_size\":4611686018427387904}}]}",
        "{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,640,640],\"datatype\":\"FP32\","
        "\"parameters\":{\"binary_data_size\":99999999999999999999999}}]}",
    };
    for (int rep = 0; rep < 2000; rep++)
        for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
            char body[512];
            size_t hl = strlen(heads[i]);
            memcpy(body, heads[i], hl);
            memset(body + hl, 0, 16);
            if (hy__v2_parse_infer_ex(body, hl + 16, hl, 640, &in, err, sizeof err) != -1 ||
                !strstr(err, "binary_data_size"))
                return 1;
        }
    return 0;
}

HY_TEST(claimed_sizes_cost_nothing_before_they_are_checked) {
    hy_test_bound bound;
    int rc = hy_test_bounded(claim_huge, NULL, 256, 2, &bound);
    printf("  6000 lying binary headers: peak extra RSS %.1f MB, %.3f s\n", bound.extra_rss_mb,
           bound.seconds);
    ASSERT_EQ(rc, 0);
}

HY_TEST(binary_values_are_checked_like_json_ones) {
    char err[512];
    size_t hl, len;
    hy__v2_input in;
    char *b = binary_body(32, 32, "", &hl, &len);
    const uint32_t bad[] = {0x7fc00000u /* NaN */, 0x7f800000u /* inf */, 0x40000000u /* 2 */,
                            0xbf800000u /* -1 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *p = (uint8_t *)b + len - 4;
        p[0] = (uint8_t)bad[i], p[1] = (uint8_t)(bad[i] >> 8), p[2] = (uint8_t)(bad[i] >> 16),
        p[3] = (uint8_t)(bad[i] >> 24);
        ASSERT_EQ(hy__v2_parse_infer_ex(b, len, hl, 64, &in, err, sizeof err), -1);
        ASSERT_CONTAINS(err, "element 3071");
    }
    free(b);
}

HY_TEST_MAIN()
