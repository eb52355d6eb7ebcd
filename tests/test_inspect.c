/* hy_inspect's JSON of a checkpoint's own metadata (issue 14): a pickle whose train_args
 * shares sub-objects (a DAG: 2^depth expansions if written naively) or contains itself must
 * give bounded, valid JSON, shared containers written once and then as {"$ref": path};
 * hy_convert of such a checkpoint too. Pickles are written by hand here, opcode by opcode. */
#include <json-c/json.h>
#include <stdint.h>

#include "fixtures/zip_writer.h"
#include "hy_test.h"
#include "io/zip.h"

// --- a pickle writer (protocol 2 opcodes) ----------------------------------------------

typedef struct pk {
    uint8_t *b;
    size_t n, cap;
} pk;

static void pk_raw(pk *p, const void *d, size_t n) {
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 256;
        p->b = realloc(p->b, p->cap);
        if (!p->b) abort();
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pk_lit(pk *p, const char *s) { pk_raw(p, s, strlen(s)); }
static void pk_op_u32(pk *p, char op, uint32_t v) { /* LONG_BINPUT 'r' / LONG_BINGET 'j' */
    uint8_t h[5] = {(uint8_t)op, (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pk_raw(p, h, 5);
}
static void pk_str(pk *p, const char *s) { /* BINUNICODE */
    uint32_t n = (uint32_t)strlen(s);
    pk_op_u32(p, 'X', n);
    pk_raw(p, s, n);
}
static void pk_int(pk *p, int64_t v) { /* LONG1 with 8 bytes */
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    pk_raw(p, h, 10);
}

#define DAG_LEVELS 32
#define DAG_FANOUT 16

/* Pushes a DAG of `levels` lists: L0 = [], Lk = [Lk-1] * DAG_FANOUT (memo-shared), memo
 * slots base .. base + levels: DAG_FANOUT^levels values if expanded. Leaves Llevels on the
 * stack. */
static void pk_dag(pk *p, uint32_t base, int levels) {
    pk_lit(p, "]");
    pk_op_u32(p, 'r', base);
    for (int k = 1; k <= levels; k++) {
        pk_lit(p, "0]("); /* POP the previous list, EMPTY_LIST, MARK */
        for (int i = 0; i < DAG_FANOUT; i++) pk_op_u32(p, 'j', base + (uint32_t)k - 1);
        pk_lit(p, "e"); /* APPENDS */
        pk_op_u32(p, 'r', base + (uint32_t)k);
    }
}

/* train_args = {"task": "detect", "dag": DAG(levels), "loop": L where L = [1, L],
 *               "self": D where D = {"me": D}} pushed on the stack (memo from base). */
static void pk_train_args(pk *p, uint32_t base, int levels) {
    pk_lit(p, "}(");
    pk_str(p, "task");
    pk_str(p, "detect");
    pk_str(p, "dag");
    pk_dag(p, base, levels);
    pk_str(p, "loop");
    pk_lit(p, "]");
    pk_op_u32(p, 'r', base + (uint32_t)levels + 1);
    pk_int(p, 1);
    pk_lit(p, "a"); /* APPEND 1 */
    pk_op_u32(p, 'j', base + (uint32_t)levels + 1);
    pk_lit(p, "a"); /* APPEND itself */
    pk_str(p, "self");
    pk_lit(p, "}");
    pk_op_u32(p, 'r', base + (uint32_t)levels + 2);
    pk_str(p, "me");
    pk_op_u32(p, 'j', base + (uint32_t)levels + 2);
    pk_lit(p, "s"); /* SETITEM */
    pk_lit(p, "u"); /* SETITEMS into train_args */
}

/* Opens the root dict and writes "model": {"model.0.conv.weight": tensor(2,3,2,2)}. */
static void pk_model_prefix(pk *p) {
    pk_lit(p, "\x80\x02}(");
    pk_str(p, "model");
    pk_lit(p, "}(");
    pk_str(p, "model.0.conv.weight");
    pk_lit(p, "ctorch._utils\n_rebuild_tensor_v2\n((");
    pk_str(p, "storage");
    pk_lit(p, "ctorch\nFloatStorage\n");
    pk_str(p, "0");
    pk_str(p, "cpu");
    pk_int(p, 24);
    pk_lit(p, "tQ");
    pk_int(p, 0);
    pk_lit(p, "(");
    pk_int(p, 2);
    pk_int(p, 3);
    pk_int(p, 2);
    pk_int(p, 2);
    pk_lit(p, "t(");
    pk_int(p, 12);
    pk_int(p, 4);
    pk_int(p, 2);
    pk_int(p, 1);
    pk_lit(p, "t\x89NtRu");
}

/* archive/data.pkl = p (freed), archive/data/0 = 24 floats. */
static zb pt_zip(pk *p) {
    static float data[24];
    zb z = {0};
    zb_add(&z, "archive/data.pkl", p->b, p->n, 0);
    zb_add(&z, "archive/data/0", data, sizeof data, 0);
    zb_finish(&z, 0, NULL);
    free(p->b);
    return z;
}

/* A ~3 KB checkpoint: {"model": {...one tensor}, "train_args": <DAG etc.>}. */
static zb tiny_dag_pt(void) {
    pk p = {0};
    pk_model_prefix(&p);
    pk_str(&p, "train_args");
    pk_train_args(&p, 100, DAG_LEVELS);
    pk_lit(&p, "u.");
    return pt_zip(&p);
}

/* A stored-only zip of any number of entries (zip_writer.h holds 64; yolov8n.pt has ~300).
 * Central directory entries are collected in cd and appended by bigzip_finish. */
typedef struct bigzip {
    pk out, cd;
    uint32_t n;
} bigzip;

static void le(pk *p, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * i));
    pk_raw(p, b, (size_t)bytes);
}

static void bigzip_add(bigzip *z, const char *name, const void *data, size_t n) {
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n), nl = (uint32_t)strlen(name);
    uint64_t off = z->out.n;
    le(&z->out, 0x04034b50, 4), le(&z->out, 20, 2), le(&z->out, 0, 2), le(&z->out, 0, 2);
    le(&z->out, 0, 2), le(&z->out, 0x21, 2), le(&z->out, crc, 4), le(&z->out, n, 4);
    le(&z->out, n, 4), le(&z->out, nl, 2), le(&z->out, 0, 2);
    pk_raw(&z->out, name, nl);
    pk_raw(&z->out, data, n);
    le(&z->cd, 0x02014b50, 4), le(&z->cd, 20, 2), le(&z->cd, 20, 2), le(&z->cd, 0, 2);
    le(&z->cd, 0, 2), le(&z->cd, 0, 2), le(&z->cd, 0x21, 2), le(&z->cd, crc, 4);
    le(&z->cd, n, 4), le(&z->cd, n, 4), le(&z->cd, nl, 2), le(&z->cd, 0, 2), le(&z->cd, 0, 2);
    le(&z->cd, 0, 2), le(&z->cd, 0, 2), le(&z->cd, 0, 4), le(&z->cd, off, 4);
    pk_raw(&z->cd, name, nl);
    z->n++;
}

static zb bigzip_finish(bigzip *z) {
    uint64_t cd_off = z->out.n;
    pk_raw(&z->out, z->cd.b, z->cd.n);
    le(&z->out, 0x06054b50, 4), le(&z->out, 0, 2), le(&z->out, 0, 2), le(&z->out, z->n, 2);
    le(&z->out, z->n, 2), le(&z->out, z->cd.n, 4), le(&z->out, cd_off, 4), le(&z->out, 0, 2);
    free(z->cd.b);
    zb r = {0};
    r.buf = z->out.b;
    r.len = z->out.n;
    return r;
}

/* yolov8n.pt with train_args replaced by the DAG: the pickle's STOP is dropped, the root
 * dict is left on the stack, "train_args" is set on it, then STOP again. */
static zb real_dag_pt(void) {
    zb res = {0};
    bigzip out = {0};
    hy__map m;
    if (hy__map_open(hy_test_asset("weights/yolov8n.pt"), &m) != HY_OK) return res;
    hy__zip *z = NULL;
    if (hy__zip_open(m.data, m.size, "yolov8n.pt", &z) == HY_OK) {
        for (size_t i = 0; i < hy__zip_count(z); i++) {
            const hy__zip_entry *e = hy__zip_entry_at(z, i);
            hy__zip_data d;
            if (hy__zip_read(z, e, SIZE_MAX, &d) != HY_OK) continue;
            size_t nl = strlen(e->name);
            if (nl >= 8 && !strcmp(e->name + nl - 8, "data.pkl") && d.size &&
                d.data[d.size - 1] == '.') {
                pk p = {0};
                pk_raw(&p, d.data, d.size - 1);
                pk_str(&p, "train_args");
                pk_train_args(&p, (uint32_t)d.size, DAG_LEVELS); /* memo slots past the old ones */
                pk_lit(&p, "s.");
                bigzip_add(&out, e->name, p.b, p.n);
                free(p.b);
            } else {
                bigzip_add(&out, e->name, d.data, d.size);
            }
            hy__zip_data_free(&d);
        }
        res = bigzip_finish(&out);
    }
    hy__zip_close(z);
    hy__map_close(&m);
    return res;
}

static const char *write_tmp(const char *name, const zb *z) {
    const char *path = hy_test_tmp(name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    size_t w = fwrite(z->buf, 1, z->len, f);
    fclose(f);
    return w == z->len ? path : NULL;
}

/* Looks up a dotted path of object keys. */
static json_object *jget(json_object *o, const char *k1, const char *k2, const char *k3) {
    const char *ks[3] = {k1, k2, k3};
    for (int i = 0; i < 3 && ks[i] && o; i++)
        if (!json_object_object_get_ex(o, ks[i], &o)) return NULL;
    return o;
}

static const char *ref_of(json_object *o) {
    json_object *r = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "$ref", &r))
        return NULL;
    return json_object_get_string(r);
}

/* Checks the description of a DAG checkpoint: valid JSON, the DAG written once per level
 * with {"$ref"} for the second occurrence, the cycles as references to their container. */
static int check_dag_json(const char *s) {
    json_object *o = json_tokener_parse(s);
    json_object *ta = jget(o, "metadata", "train_args", NULL);
    int bad = 0;
    if (!ta) {
        fprintf(stderr, "  not JSON, or no metadata.train_args\n");
        bad = 1;
    } else {
        json_object *task = jget(ta, "task", NULL, NULL), *v = jget(ta, "dag", NULL, NULL);
        if (!task || strcmp(json_object_get_string(task), "detect")) bad |= 2;
        // levels: [first, {"$ref"}] down to the depth limit
        char want[256] = "train_args.dag[0]";
        int levels = 0;
        while (v && json_object_is_type(v, json_type_array) &&
               json_object_array_length(v) == DAG_FANOUT &&
               json_object_is_type(json_object_array_get_idx(v, 0), json_type_array)) {
            for (size_t i = 1; i < DAG_FANOUT && !(bad & 4); i++) {
                const char *r = ref_of(json_object_array_get_idx(v, i));
                if (!r || strcmp(r, want)) {
                    fprintf(stderr, "  level %d: item %zu is %.200s, want $ref %s\n", levels, i,
                            json_object_to_json_string(json_object_array_get_idx(v, i)), want);
                    bad |= 4;
                }
            }
            if (bad) break;
            v = json_object_array_get_idx(v, 0);
            levels++;
            if (strlen(want) + 4 < sizeof want) strcat(want, "[0]");
        }
        // the levels down to the depth limit (24 in the field: json-c parses 32 in all)
        if (levels < 20) {
            fprintf(stderr, "  only %d DAG levels written\n", levels);
            bad |= 8;
        }
        const char *r = ref_of(json_object_array_get_idx(jget(ta, "loop", NULL, NULL), 1));
        if (!r || strcmp(r, "train_args.loop")) bad |= 16;
        r = ref_of(jget(ta, "self", "me", NULL));
        if (!r || strcmp(r, "train_args.self")) bad |= 32;
    }
    if (bad) fprintf(stderr, "  check_dag_json: 0x%x\n%.2000s\n", bad, s);
    json_object_put(o);
    return bad;
}

typedef struct inspect_case {
    const char *path;
    const char *out; /* for convert: the output file */
} inspect_case;

static int run_inspect(void *arg) {
    const inspect_case *c = arg;
    char *s = NULL;
    if (hy_inspect(c->path, 0, &s) != HY_OK) {
        fprintf(stderr, "  hy_inspect: %s\n", hy_last_error());
        return 1;
    }
    int r = check_dag_json(s);
    if (!r && strlen(s) > 64 * 1024) {
        fprintf(stderr, "  description of %zu bytes\n", strlen(s));
        r = 1;
    }
    hy_free(s);
    return r;
}

/* hy_convert, then hy_inspect of IN (what 'hotyolo convert' prints from) and of OUT. */
static int run_convert(void *arg) {
    const inspect_case *c = arg;
    remove(c->out);
    if (hy_convert(c->path, c->out, NULL) != HY_OK) {
        fprintf(stderr, "  hy_convert: %s\n", hy_last_error());
        return 1;
    }
    if (run_inspect(arg)) return 1;
    char *s = NULL;
    if (hy_inspect(c->out, 0, &s) != HY_OK) return 1;
    json_object *o = json_tokener_parse(s);
    json_object *nc = jget(o, "nc", NULL, NULL);
    int r = !nc || json_object_get_int(nc) != 80;
    json_object_put(o);
    hy_free(s);
    return r;
}

static void bounded(int (*fn)(void *), inspect_case *c, const char *label) {
    hy_test_bound b;
    int r = hy_test_bounded(fn, c, 256, 2.0, &b);
    printf("  %s: +%.1f MB peak RSS, %.3f s\n", label, b.extra_rss_mb, b.seconds);
    ASSERT_EQ(r, 0);
}

HY_TEST(tiny_dag_checkpoint_inspect_bounded) {
    zb z = tiny_dag_pt();
    printf("  DAG checkpoint: %zu bytes, %d levels of %d-fold sharing (%d^%d naive expansions)\n",
           z.len, DAG_LEVELS, DAG_FANOUT, DAG_FANOUT, DAG_LEVELS);
    ASSERT_TRUE(z.len < 4096);
    inspect_case c = {write_tmp("dag_tiny.pt", &z), NULL};
    free(z.buf);
    ASSERT_TRUE(c.path != NULL);
    bounded(run_inspect, &c, "hy_inspect(3 KB DAG .pt)");
}

HY_TEST(real_checkpoint_with_dag_inspect_and_convert_bounded) {
    zb z = real_dag_pt();
    ASSERT_TRUE(z.len > 1000000);
    inspect_case c = {write_tmp("dag_yolov8n.pt", &z), hy_test_tmp("dag_yolov8n.safetensors")};
    free(z.buf);
    ASSERT_TRUE(c.path != NULL);
    bounded(run_inspect, &c, "hy_inspect(yolov8n.pt + DAG train_args)");
    bounded(run_convert, &c, "hy_convert + hy_inspect(yolov8n.pt + DAG train_args)");
    remove(c.out);
}

/* A long shared string and a wide shared structure are cut at the output limits, and the
 * description stays valid JSON. */
HY_TEST(output_limits_truncate_to_valid_json) {
    pk p = {0};
    pk_model_prefix(&p);
    pk_str(&p, "train_args");
    // {"s": S, "l": [S, S, ... x8]} with S a 512 KB string (memo-shared): 4.5 MB naive
    size_t big = 512 * 1024;
    char *s = malloc(big + 1);
    ASSERT_TRUE(s != NULL);
    memset(s, 'a', big);
    s[big] = 0;
    pk_lit(&p, "}(");
    pk_str(&p, "s");
    pk_str(&p, s);
    pk_op_u32(&p, 'r', 1);
    pk_str(&p, "l");
    pk_lit(&p, "]("); /* list of 8 references to S */
    for (int i = 0; i < 8; i++) pk_op_u32(&p, 'j', 1);
    pk_lit(&p, "eu");
    pk_lit(&p, "u.");
    free(s);
    zb z = pt_zip(&p);
    const char *path = write_tmp("wide.pt", &z);
    free(z.buf);
    ASSERT_TRUE(path != NULL);
    char *out = NULL;
    ASSERT_OK(hy_inspect(path, 0, &out));
    printf("  description: %zu bytes\n", strlen(out));
    ASSERT_TRUE(strlen(out) < (1u << 20) + 65536);
    json_object *o = json_tokener_parse(out);
    json_object *l = jget(o, "metadata", "train_args", "l");
    ASSERT_TRUE(l && json_object_is_type(l, json_type_array));
    size_t n = json_object_array_length(l);
    ASSERT_TRUE(n < 8);
    ASSERT_TRUE(strstr(json_object_get_string(json_object_array_get_idx(l, n - 1)), "<truncated>") != NULL);
    json_object_put(o);
    hy_free(out);
}

/* The real checkpoint's description: the values Ultralytics wrote, no $ref (nothing in its
 * train_args is shared). */
HY_TEST(real_checkpoint_metadata_unchanged) {
    char *s = NULL;
    ASSERT_OK(hy_inspect(hy_test_asset("weights/yolov8n.pt"), 0, &s));
    json_object *o = json_tokener_parse(s);
    ASSERT_TRUE(o != NULL);
    json_object *ta = jget(o, "metadata", "train_args", NULL);
    ASSERT_TRUE(ta && json_object_is_type(ta, json_type_object));
    ASSERT_STREQ(json_object_get_string(jget(ta, "task", NULL, NULL)), "detect");
    ASSERT_STREQ(json_object_get_string(jget(ta, "data", NULL, NULL)), "coco.yaml");
    ASSERT_EQ(json_object_get_int(jget(ta, "imgsz", NULL, NULL)), 640);
    ASSERT_STREQ(json_object_get_string(jget(o, "metadata", "version", NULL)), "8.0.172");
    ASSERT_TRUE(strstr(s, "$ref") == NULL && strstr(s, "<truncated>") == NULL);
    json_object_put(o);
    hy_free(s);
}

/* A container shared under a dict key longer than the path limit (160): the second
 * occurrence's {"$ref"} is the truncated path ending in "...", a proper string (the path
 * was once stored without its NUL, and the reference read on into the heap). */
HY_TEST(shared_container_under_long_key) {
    char key[201];
    memset(key, 'k', 200);
    key[200] = 0;
    pk p = {0};
    pk_model_prefix(&p);
    pk_str(&p, "train_args");
    pk_lit(&p, "}");
    pk_str(&p, key);
    pk_lit(&p, "](]");     /* outer list, MARK, shared list */
    pk_op_u32(&p, 'r', 5); /* LONG_BINPUT 5 */
    pk_op_u32(&p, 'j', 5); /* LONG_BINGET 5 */
    pk_lit(&p, "esu.");    /* APPENDS, SETITEM, close the top-level dict */
    zb z = pt_zip(&p);
    const char *path = write_tmp("longkey.pt", &z);
    free(z.buf);
    ASSERT_TRUE(path != NULL);
    char *s = NULL;
    ASSERT_OK(hy_inspect(path, 0, &s));
    json_object *o = json_tokener_parse(s);
    json_object *v = jget(o, "metadata", "train_args", key);
    ASSERT_TRUE(v && json_object_is_type(v, json_type_array));
    ASSERT_EQ(json_object_array_length(v), 2);
    char want[256];
    snprintf(want, sizeof want, "%.160s...", "train_args." "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
    const char *r = ref_of(json_object_array_get_idx(v, 1));
    if (!r || strcmp(r, want)) {
        fprintf(stderr, "  $ref is '%s'\n  want    '%s'\n", r ? r : "(none)", want);
        json_object_put(o);
        hy_free(s);
        HY_FAIL_("wrong $ref");
    }
    json_object_put(o);
    hy_free(s);
}

HY_TEST_MAIN()
