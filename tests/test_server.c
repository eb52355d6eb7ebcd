/* Request validation of the HTTP server without a socket (src/server/routes.c, issue 14):
 * the JSON pre-check bounds values and depth before parsing, KServe v2 infer bodies,
 * query arguments, the classes filter, Host / Origin checks, load-path confinement and
 * log escaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hy_test.h"
#include "server/server_impl.h"

static int pre(const char *s, size_t max_values, int depth) {
    char err[256];
    return hy__json_precheck(s, strlen(s), max_values, max_values, depth, err, sizeof err);
}

HY_TEST(json_precheck_accepts_json) {
    ASSERT_EQ(pre("{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\"], \"b\": {}}", 100, 4), 0);
    ASSERT_EQ(pre(" [] ", 1, 1), 0);
    ASSERT_EQ(pre("0", 1, 1), 0);
}

HY_TEST(json_precheck_rejects_bad_syntax) {
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[01]", "[1.]", "[-]",
                         "[\"\\x\"]", "[\"a\nb\"]", "{} x", "[tru]", "{1:2}", "[\"\\u0000\"]",
                         "[\"\\u12\"]", "]", "[1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) ASSERT_EQ(pre(bad[i], 100, 8), -1);
}

HY_TEST(json_precheck_bounds_values_and_depth) {
    /* the bomb of issue 14: many tiny values; refused before any parsing */
    size_t k = 100000; /* "[{},{},...,{}]": k + 1 values */
    char *b = malloc(3 * k + 2);
    ASSERT_TRUE(b != NULL);
    b[0] = '[';
    for (size_t i = 0; i < k; i++) memcpy(b + 1 + 3 * i, "{},", 3);
    b[3 * k] = ']';
    b[3 * k + 1] = '\0';
    char err[256];
    ASSERT_EQ(hy__json_precheck(b, strlen(b), 1000, 1000, 8, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "1000 values");
    /* under the value cap, over the container cap: still refused (~600 bytes each in json-c) */
    ASSERT_EQ(hy__json_precheck(b, strlen(b), 200000, 5000, 8, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "5000 objects");
    ASSERT_EQ(hy__json_precheck(b, strlen(b), 200000, 200000, 8, err, sizeof err), 0);
    ASSERT_EQ(hy__json_precheck("[1,2,3]", 7, 10, 1, 8, err, sizeof err), 0);
    ASSERT_EQ(hy__json_precheck("[\"a\"]", 5, 10, 1, 8, err, sizeof err), -1);
    free(b);
    ASSERT_EQ(pre("[[[[1]]]]", 10, 4), 0);
    ASSERT_EQ(pre("[[[[[1]]]]]", 10, 4), -1);
    char num[80];
    memset(num, '1', sizeof num - 1);
    num[sizeof num - 1] = '\0';
    ASSERT_EQ(pre(num, 10, 4), -1); /* a 79-digit number */
}

static char *infer_body(int h, int w, const char *last) {
    size_t n = (size_t)3 * h * w;
    char *b = malloc(n * 5 + 256);
    int o = sprintf(b, "{\"id\":\"a\\\"b\",\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,%d,%d],"
                       "\"datatype\":\"FP32\",\"data\":[",
                    h, w);
    for (size_t i = 0; i + 1 < n; i++) o += sprintf(b + o, "0.5,");
    sprintf(b + o, "%s]}]}", last);
    return b;
}

HY_TEST(v2_parse_infer_reads_and_validates) {
    char err[512];
    hy__v2_input in;
    char *b = infer_body(32, 64, "0.25");
    ASSERT_EQ(hy__v2_parse_infer(b, strlen(b), 64, &in, err, sizeof err), 0);
    ASSERT_EQ(in.h, 32);
    ASSERT_EQ(in.w, 64);
    ASSERT_NEAR(in.x[3 * 32 * 64 - 1], 0.25f, 1e-7);
    ASSERT_STREQ(in.id_json, "\"a\\\"b\"");
    hy__v2_input_free(&in);
    ASSERT_EQ(hy__v2_parse_infer(b, strlen(b), 32, &in, err, sizeof err), -1); /* W > max */
    free(b);
    const char *bad[] = {"1e39", "3e38", "-0.001", "1.0001", "\"x\"", "null", "[0.5,0.5]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = infer_body(32, 32, bad[i]);
        ASSERT_EQ(hy__v2_parse_infer(b, strlen(b), 64, &in, err, sizeof err), -1);
        ASSERT_TRUE(in.x == NULL);
        free(b);
    }
    b = infer_body(32, 32, "1e39");
    hy__v2_parse_infer(b, strlen(b), 64, &in, err, sizeof err);
    ASSERT_CONTAINS(err, "[0, 1]");
    free(b);
    const char *junk = "{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,32,32],\"datatype\":\"FP32\"}]}";
    ASSERT_EQ(hy__v2_parse_infer(junk, strlen(junk), 64, &in, err, sizeof err), -1);
}

HY_TEST(query_args_are_allow_listed) {
    char err[256];
    ASSERT_EQ(hy__query_arg_check("model,conf", "conf", 4, "0.5", 3, err, sizeof err), 0);
    ASSERT_EQ(hy__query_arg_check("model,conf", "con", 3, "0.5", 3, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "'con'");
    ASSERT_EQ(hy__query_arg_check("", "x", 1, NULL, 0, err, sizeof err), -1);
    ASSERT_EQ(hy__query_arg_check("model", "model", 5, "m\0x", 3, err, sizeof err), -1);
    ASSERT_EQ(hy__query_arg_check("model", "model", 5, "m\nx", 3, err, sizeof err), -1);
}

HY_TEST(classes_filter_parses_like_the_cli) {
    int ids[4], n;
    char err[256];
    ASSERT_EQ(hy__parse_classes("0,2,5", ids, 4, 79, &n, err, sizeof err), 0);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[2], 5);
    const char *bad[] = {"", ",", "0,", "a", "-1", "80", "1,,2", "0,1,2,3,4", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(hy__parse_classes(bad[i], ids, 4, 79, &n, err, sizeof err), -1);
}

HY_TEST(host_and_origin_checks) {
    ASSERT_TRUE(hy__host_allowed("127.0.0.1:8080", NULL, NULL));
    ASSERT_TRUE(hy__host_allowed("localhost:8080", NULL, NULL));
    ASSERT_TRUE(hy__host_allowed("[::1]:8080", NULL, NULL));
    ASSERT_TRUE(hy__host_allowed("10.1.2.3", NULL, NULL));
    ASSERT_TRUE(hy__host_allowed("box:80", "box", NULL));
    ASSERT_TRUE(hy__host_allowed("api.example:80", NULL, "x.example,api.example"));
    ASSERT_FALSE(hy__host_allowed("evil.example:8080", "box", "api.example"));
    ASSERT_FALSE(hy__host_allowed("127.0.0.1.evil.example", NULL, NULL));
    ASSERT_FALSE(hy__host_allowed("[::1", NULL, NULL));
    ASSERT_FALSE(hy__host_allowed("", NULL, NULL));
    ASSERT_TRUE(hy__origin_allowed(NULL, "127.0.0.1:8080", NULL));
    ASSERT_TRUE(hy__origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", NULL));
    ASSERT_FALSE(hy__origin_allowed("http://evil.example", "127.0.0.1:8080", NULL));
    ASSERT_FALSE(hy__origin_allowed("null", "127.0.0.1:8080", NULL));
    ASSERT_TRUE(hy__origin_allowed("https://app.example", "127.0.0.1:8080", "https://app.example"));
}

HY_TEST(load_paths_stay_in_the_model_dirs) {
    char dir[] = "/tmp/hy_test_server_XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char sub[64], file[128], out[4096], link[128];
    snprintf(sub, sizeof sub, "%s/models", dir);
    snprintf(file, sizeof file, "%s/w.pt", sub);
    snprintf(link, sizeof link, "%s/escape.pt", sub);
    ASSERT_EQ(mkdir(sub, 0700), 0);
    FILE *f = fopen(file, "w");
    ASSERT_TRUE(f != NULL);
    fputs("x", f);
    fclose(f);
    ASSERT_EQ(symlink("/etc/passwd", link), 0);
    ASSERT_TRUE(hy__path_in_dirs(file, sub, out, sizeof out));
    ASSERT_FALSE(hy__path_in_dirs(link, sub, out, sizeof out));      /* symlink out */
    ASSERT_FALSE(hy__path_in_dirs("/etc/passwd", sub, out, sizeof out));
    ASSERT_FALSE(hy__path_in_dirs(sub, dir, out, sizeof out));       /* not a file */
    char dotdot[600];
    snprintf(dotdot, sizeof dotdot, "%s/../models/w.pt", sub);
    ASSERT_TRUE(hy__path_in_dirs(dotdot, sub, out, sizeof out));
    ASSERT_FALSE(hy__path_in_dirs(file, "/nonexistent:/also-not", out, sizeof out));
    unlink(link);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

HY_TEST(log_escape_cannot_forge_lines) {
    char out[64];
    ASSERT_STREQ(hy__log_escape("a\nb\\c\x01", out, sizeof out), "a\\x0ab\\x5cc\\x01");
    ASSERT_STREQ(hy__log_escape("0123456789", out, 5), "0123");
}

HY_TEST_MAIN()
