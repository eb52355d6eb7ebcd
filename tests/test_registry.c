/* Model registry (include/hotyolo/registry.h): add / resolve / show / list / alias / bind / rm /
 * gc / verify / export, reference forms, schema migrations, concurrent writers. The models are
 * weights/yolov8n.pt converted to safetensors once, and variants of it whose __metadata__ differs
 * (a different sha256 each, so different blobs). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotyolo/registry.h"
#include "registry/registry_impl.h"
#include "hotyolo/train.h"
#include "hy_test.h"

// --- fixtures ---

static char g_base[4096]; /* yolov8n.safetensors, converted once */

static const char *base_model(void) {
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    if (!g_base[0]) {
        snprintf(g_base, sizeof g_base, "%s", hy_test_tmp("yolov8n.safetensors"));
        hy_convert_params cp = hy_convert_default_params();
        if (hy_convert(pt, g_base, &cp) != HY_OK) {
            fprintf(stderr, "  convert: %s\n", hy_last_error());
            g_base[0] = 0;
            return NULL;
        }
    }
    return g_base;
}

static int read_all(const char *path, unsigned char **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)len + 1);
    *n = fread(*data, 1, (size_t)len, f);
    fclose(f);
    return *n == (size_t)len ? 0 : -1;
}

/* Writes dst = src (a safetensors file) with __metadata__ keys[i] = values[i] added; the header
 * is padded so the data stays 64-byte aligned. */
static int st_variant(const char *src, const char *dst, int n, const char *const *keys, const char *const *values) {
    unsigned char *d;
    size_t sz;
    if (read_all(src, &d, &sz)) return -1;
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)d[i] << (8 * i);
    char *h = strndup((const char *)d + 8, (size_t)hl);
    json_object *o = json_tokener_parse(h);
    free(h);
    if (!o) return -1;
    json_object *meta = json_object_object_get(o, "__metadata__");
    for (int i = 0; i < n; i++) json_object_object_add(meta, keys[i], json_object_new_string(values[i]));
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    size_t tl = strlen(t), pad = (64 - (8 + tl) % 64) % 64;
    FILE *f = fopen(dst, "wb");
    uint64_t nl = tl + pad;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(nl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(t, 1, tl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fwrite(d + 8 + hl, 1, sz - 8 - hl, f);
    fclose(f);
    json_object_put(o);
    free(d);
    return 0;
}

/* A variant of the base model tagged "k" (distinct content per k). */
static const char *variant(const char *tag) {
    static char path[8][4096];
    static int slot;
    char *p = path[slot++ & 7];
    char name[128];
    snprintf(name, sizeof name, "variant_%s.safetensors", tag);
    snprintf(p, 4096, "%s", hy_test_tmp(name));
    const char *k[] = {"test.variant"}, *v[] = {tag};
    if (!base_model() || st_variant(base_model(), p, 1, k, v)) return NULL;
    return p;
}

static void rm_rf(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", path, path);
    if (system(cmd)) {
    }
}

/* A fresh registry directory for a case. */
static const char *fresh_dir(const char *name) {
    const char *d = hy_test_tmp(name);
    rm_rf(d);
    return d;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Number of blob files in the store. */
static int count_blobs(const char *reg) {
    char root[4096];
    snprintf(root, sizeof root, "%s/blobs/sha256", reg);
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
        n += count_files(sub);
    }
    closedir(d);
    return n;
}

static json_object *parse(const char *s) { return s ? json_tokener_parse(s) : NULL; }

static const char *jget_str(json_object *o, const char *k) {
    json_object *v = json_object_object_get(o, k);
    return v ? json_object_get_string(v) : "";
}

static int add(hy_registry *r, const char *file, const char *name, int version, int *v) {
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = name;
    ap.version = version;
    return hy_registry_add(r, file, &ap, v);
}

// --- cases ---

HY_TEST(add_resolve_show_list) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_basic");
    hy_registry *r;
    ASSERT_ERR(hy_registry_open(dir, 0, &r), HY_ERR_NOT_FOUND); /* nothing there, no create */
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    ASSERT_TRUE(strcmp(hy_registry_dir(r), dir) == 0);
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = "pcb";
    ap.scenario = "line 3 solder joints, 1280x720 camera";
    const char *mk[] = {"mAP50", "latency_ms"};
    const double mv[] = {0.61, 4.5};
    const char *tags[] = {"coco", "baseline"};
    ap.metric_keys = mk;
    ap.metric_values = mv;
    ap.n_metrics = 2;
    ap.tags = tags;
    ap.n_tags = 2;
    int v = 0;
    ASSERT_OK(hy_registry_add(r, f, &ap, &v));
    ASSERT_EQ(v, 1);
    /* the same content again: a new version (as MLflow's register_model), one blob */
    ap.scenario = NULL;
    ap.n_metrics = ap.n_tags = 0;
    ASSERT_OK(hy_registry_add(r, f, &ap, &v));
    ASSERT_EQ(v, 2);
    ASSERT_EQ(count_blobs(dir), 1);
    const char *f3 = variant("three");
    ASSERT_TRUE(f3);
    ASSERT_OK(hy_registry_add(r, f3, &ap, &v));
    ASSERT_EQ(v, 3);
    ASSERT_EQ(count_blobs(dir), 2);
    char tmpd[4200];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", dir);
    ASSERT_EQ(count_files(tmpd), 0);

    /* show: every field */
    char *js = NULL;
    ASSERT_OK(hy_registry_show(r, "pcb@1", &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_TRUE(o);
    ASSERT_TRUE(strcmp(jget_str(o, "name"), "pcb") == 0);
    ASSERT_EQ(json_object_get_int(json_object_object_get(o, "version")), 1);
    ASSERT_TRUE(strncmp(jget_str(o, "digest"), "sha256:", 7) == 0 && strlen(jget_str(o, "digest")) == 71);
    ASSERT_TRUE(strcmp(jget_str(o, "format"), "safetensors") == 0);
    ASSERT_TRUE(strcmp(jget_str(o, "architecture"), "yolov8") == 0);
    ASSERT_TRUE(strcmp(jget_str(o, "variant"), "n") == 0);
    ASSERT_EQ(json_object_get_int(json_object_object_get(o, "nc")), 80);
    ASSERT_EQ(json_object_array_length(json_object_object_get(o, "names")), 80);
    ASSERT_TRUE(json_object_get_int64(json_object_object_get(o, "parameters")) > 3000000);
    ASSERT_EQ(json_object_get_int(json_object_object_get(o, "imgsz")), 640);
    ASSERT_TRUE(strcmp(jget_str(o, "scenario"), "line 3 solder joints, 1280x720 camera") == 0);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(json_object_object_get(o, "metrics"), "mAP50")), 0.61,
                1e-12);
    ASSERT_EQ(json_object_array_length(json_object_object_get(o, "tags")), 2);
    ASSERT_TRUE(strlen(jget_str(o, "added")) == 20 && jget_str(o, "added")[19] == 'Z');
    json_object *rec = json_object_object_get(o, "record");
    ASSERT_TRUE(rec && strcmp(jget_str(rec, "hotyolo.arch"), "yolov8") == 0);
    /* the blob: named by its hash, read-only, inside DIR/blobs/sha256/ab/ */
    const char *blob = jget_str(o, "blob");
    char want[4200];
    snprintf(want, sizeof want, "%s/blobs/sha256/%.2s/%s", dir, jget_str(o, "digest") + 7, jget_str(o, "digest") + 7);
    ASSERT_TRUE(strcmp(blob, want) == 0);
    struct stat sb;
    ASSERT_EQ(stat(blob, &sb), 0);
    ASSERT_EQ(sb.st_mode & 0777, 0444);
    json_object_put(o);

    /* resolve: NAME (latest), NAME@N, NAME@alias, PROJECT */
    char *p1, *p3, *p;
    ASSERT_OK(hy_registry_resolve(r, "pcb@1", &p1, NULL));
    ASSERT_OK(hy_registry_resolve(r, "pcb", &p3, NULL));
    ASSERT_TRUE(strcmp(p1, p3) != 0);
    ASSERT_OK(hy_registry_resolve(r, "pcb@3", &p, NULL));
    ASSERT_TRUE(strcmp(p, p3) == 0);
    hy_free(p);
    ASSERT_OK(hy_registry_alias(r, "pcb", 1, "production"));
    char *e = NULL;
    ASSERT_OK(hy_registry_resolve(r, "pcb@production", &p, &e));
    ASSERT_TRUE(strcmp(p, p1) == 0);
    ASSERT_TRUE(strstr(e, "\"production\""));
    hy_free(p);
    hy_free(e);
    ASSERT_OK(hy_registry_alias(r, "pcb", 3, "production")); /* moves */
    ASSERT_OK(hy_registry_resolve(r, "pcb@production", &p, NULL));
    ASSERT_TRUE(strcmp(p, p3) == 0);
    hy_free(p);
    ASSERT_OK(hy_registry_bind(r, "line3", "pcb", 2));
    ASSERT_OK(hy_registry_resolve(r, "line3", &p, NULL));
    ASSERT_TRUE(strcmp(p, p1) == 0); /* v2 is v1's content */
    hy_free(p);
    ASSERT_OK(hy_registry_bind(r, "line3", "pcb", 3)); /* replaces */
    ASSERT_OK(hy_registry_bindings(r, &js));
    o = parse(js);
    hy_free(js);
    ASSERT_EQ(json_object_array_length(o), 1);
    json_object *b0 = json_object_array_get_idx(o, 0);
    ASSERT_TRUE(strcmp(jget_str(b0, "project"), "line3") == 0);
    ASSERT_EQ(json_object_get_int(json_object_object_get(b0, "version")), 3);
    json_object_put(o);
    hy_free(p1);
    hy_free(p3);

    /* list: every version, without record */
    ASSERT_OK(hy_registry_list(r, &js));
    o = parse(js);
    hy_free(js);
    ASSERT_EQ(json_object_array_length(o), 3);
    json_object *l2 = json_object_array_get_idx(o, 2);
    ASSERT_EQ(json_object_get_int(json_object_object_get(l2, "version")), 3);
    ASSERT_TRUE(json_object_object_get(l2, "record") == NULL);
    ASSERT_TRUE(strcmp(json_object_get_string(json_object_array_get_idx(json_object_object_get(l2, "aliases"), 0)),
                       "production") == 0);
    ASSERT_TRUE(strcmp(json_object_get_string(json_object_array_get_idx(json_object_object_get(l2, "bound_by"), 0)),
                       "line3") == 0);
    json_object_put(o);
    hy_registry_close(r);

    /* reopened: the same */
    ASSERT_OK(hy_registry_open(dir, 0, &r));
    ASSERT_OK(hy_registry_resolve(r, "line3", &p, NULL));
    hy_free(p);
    hy_registry_close(r);
    hy_registry_close(NULL);
}

HY_TEST(references_and_names) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_refs");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m-1.x_y", 0, &v));
    char *p = NULL;
    static const char *const bad[] = {"", "@1", "m@", "m@0", "m@-1", "m@.x", "-m", ".m", "m/x", "m@a/b", "m@1@2",
                                      "m m", "m@1234567890",
                                      "a123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hy_status st = hy_registry_resolve(r, bad[i], &p, NULL);
        if (st != HY_ERR_INVALID_ARG) HY_FAIL_("ref \"%s\": %s", bad[i], hy_status_name(st));
        ASSERT_TRUE(strstr(hy_last_error(), dir)); /* names the registry */
    }
    ASSERT_ERR(hy_registry_resolve(r, "nope", &p, NULL), HY_ERR_NOT_FOUND);
    ASSERT_TRUE(strstr(hy_last_error(), "nope"));
    ASSERT_ERR(hy_registry_resolve(r, "m-1.x_y@2", &p, NULL), HY_ERR_NOT_FOUND);
    ASSERT_ERR(hy_registry_resolve(r, "m-1.x_y@staging", &p, NULL), HY_ERR_NOT_FOUND);
    ASSERT_TRUE(strstr(hy_last_error(), "staging"));
    ASSERT_OK(hy_registry_resolve(r, "m-1.x_y@1", &p, NULL));
    hy_free(p);
    /* 63 bytes is the longest name */
    char n63[64];
    memset(n63, 'a', 63);
    n63[63] = 0;
    ASSERT_OK(add(r, f, n63, 0, &v));
    char n64[65];
    memset(n64, 'a', 64);
    n64[64] = 0;
    ASSERT_ERR(add(r, f, n64, 0, &v), HY_ERR_INVALID_ARG);
    ASSERT_ERR(add(r, f, "bad name", 0, &v), HY_ERR_INVALID_ARG);
    ASSERT_ERR(add(r, f, NULL, 0, &v), HY_ERR_INVALID_ARG);
    ASSERT_ERR(add(r, f, "m", -1, &v), HY_ERR_INVALID_ARG);
    /* aliases: as names, not all digits; the version must exist */
    ASSERT_ERR(hy_registry_alias(r, "m-1.x_y", 1, "42"), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_registry_alias(r, "m-1.x_y", 1, "pro duction"), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_registry_alias(r, "m-1.x_y", 9, "production"), HY_ERR_NOT_FOUND);
    ASSERT_ERR(hy_registry_bind(r, "p/x", "m-1.x_y", 1), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_registry_bind(r, "proj", "m-1.x_y", 9), HY_ERR_NOT_FOUND);
    /* a model name wins over a project of the same name */
    ASSERT_OK(add(r, variant("other"), "other", 0, &v));
    ASSERT_OK(hy_registry_bind(r, "m-1.x_y", "other", 1));
    char *a, *b;
    ASSERT_OK(hy_registry_resolve(r, "m-1.x_y", &a, NULL));
    ASSERT_OK(hy_registry_resolve(r, "m-1.x_y@1", &b, NULL));
    ASSERT_TRUE(strcmp(a, b) == 0);
    hy_free(a);
    hy_free(b);
    /* metric / tag / scenario bounds */
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = "m";
    const char *k1[] = {""};
    const double v1[] = {1};
    ap.metric_keys = k1;
    ap.metric_values = v1;
    ap.n_metrics = 1;
    ASSERT_ERR(hy_registry_add(r, f, &ap, &v), HY_ERR_INVALID_ARG);
    const char *k2[] = {"x"};
    const double v2[] = {NAN};
    ap.metric_keys = k2;
    ap.metric_values = v2;
    ASSERT_ERR(hy_registry_add(r, f, &ap, &v), HY_ERR_INVALID_ARG);
    ap.n_metrics = HY_REGISTRY_MAX_METRICS + 1;
    ASSERT_ERR(hy_registry_add(r, f, &ap, &v), HY_ERR_INVALID_ARG);
    ap.n_metrics = 0;
    char *big = malloc(4098);
    memset(big, 's', 4097);
    big[4097] = 0;
    ap.scenario = big;
    ASSERT_ERR(hy_registry_add(r, f, &ap, &v), HY_ERR_INVALID_ARG);
    big[4096] = 0; /* 4096 bytes: allowed */
    ASSERT_OK(hy_registry_add(r, f, &ap, &v));
    free(big);
    hy_registry_close(r);
}

HY_TEST(explicit_versions) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_versions");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v = 0;
    ASSERT_OK(add(r, f, "m", 5, &v));
    ASSERT_EQ(v, 5);
    ASSERT_ERR(add(r, f, "m", 5, &v), HY_ERR_BUSY); /* taken */
    ASSERT_TRUE(strstr(hy_last_error(), "m@5"));
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_EQ(v, 6);
    ASSERT_OK(add(r, f, "m", 2, &v)); /* a free lower number */
    ASSERT_EQ(v, 2);
    /* a removed number is not given again */
    ASSERT_OK(hy_registry_rm(r, "m", 6, 0));
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_EQ(v, 7);
    hy_registry_close(r);
}

HY_TEST(add_refuses_what_does_not_load) {
    const char *dir = fresh_dir("reg_invalid");
    const char *junk = hy_test_tmp("junk.safetensors");
    FILE *fp = fopen(junk, "wb");
    fputs("this is not a weights file", fp);
    fclose(fp);
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v = -1;
    hy_status st = add(r, junk, "m", 0, &v);
    ASSERT_TRUE(st != HY_OK);
    ASSERT_EQ(v, -1);
    ASSERT_TRUE(strstr(hy_last_error(), junk));
    ASSERT_ERR(add(r, hy_test_tmp("missing.pt"), "m", 0, &v), HY_ERR_NOT_FOUND);
    char *js;
    ASSERT_OK(hy_registry_list(r, &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_TRUE(o && json_object_is_type(o, json_type_array));
    ASSERT_EQ(json_object_array_length(o), 0);
    json_object_put(o);
    ASSERT_EQ(count_blobs(dir), 0);
    char tmpd[4200];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", dir);
    ASSERT_EQ(count_files(tmpd), 0);
    hy_registry_close(r);
}

HY_TEST(pt_checkpoint_record) {
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    const char *dir = fresh_dir("reg_pt");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, pt, "y8", 0, &v));
    char *js;
    ASSERT_OK(hy_registry_show(r, "y8", &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_TRUE(strcmp(jget_str(o, "format"), "pt") == 0);
    json_object *rec = json_object_object_get(o, "record");
    ASSERT_TRUE(json_object_object_get(rec, "train_args"));
    ASSERT_TRUE(strcmp(jget_str(rec, "version"), "8.0.172") == 0);
    ASSERT_TRUE(strlen(jget_str(rec, "date")) > 0);
    json_object_put(o);
    hy_registry_close(r);
}

/* A hotyolo training checkpoint's record: keys of docs/formats.md ("Training record"). */
HY_TEST(training_record_import) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *rec = hy_test_tmp("trained.safetensors");
    const char *k[] = {"hotyolo.train.args", "hotyolo.train.epoch", "hotyolo.train.epochs",
                       "hotyolo.train.best_epoch", "hotyolo.train.best_fitness", "hotyolo.train.results",
                       "hotyolo.train.status", "hotyolo.train.dataset_sha256", "hotyolo.train.date"};
    const char *v[] = {
        "{\"model\":\"yolov8n.pt\",\"data\":\"pcb.yaml\",\"epochs\":3,\"imgsz\":640}",
        "3",
        "3",
        "2",
        "0.4125",
        "[{\"epoch\":1,\"validated\":true,\"metrics/mAP50(B)\":0.3,\"metrics/mAP50-95(B)\":0.2,\"fitness\":0.21,"
        "\"train/box_loss\":1.5},"
        "{\"epoch\":2,\"validated\":true,\"metrics/precision(B)\":0.7,\"metrics/recall(B)\":0.6,"
        "\"metrics/mAP50(B)\":0.55,\"metrics/mAP50-95(B)\":0.39,\"fitness\":0.4125,\"val/box_loss\":1.1,"
        "\"train/box_loss\":1.2},"
        "{\"epoch\":3,\"validated\":false,\"metrics/mAP50(B)\":0.0,\"train/box_loss\":1.0}]",
        "finished",
        "ab12",
        "2025-01-02T03:04:05Z"};
    ASSERT_EQ(st_variant(f, rec, 9, k, v), 0);
    const char *dir = fresh_dir("reg_record");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = "pcb";
    const char *mk[] = {"metrics/mAP50(B)", "field_mAP"};
    const double mv[] = {0.57, 0.5};
    ap.metric_keys = mk;
    ap.metric_values = mv;
    ap.n_metrics = 2;
    int ver;
    ASSERT_OK(hy_registry_add(r, rec, &ap, &ver));
    char *js;
    ASSERT_OK(hy_registry_show(r, "pcb@1", &js));
    json_object *o = parse(js);
    hy_free(js);
    json_object *m = json_object_object_get(o, "metrics");
    /* the last validated row (epoch 2), best_fitness; the caller's value wins */
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "metrics/mAP50(B)")), 0.57, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "metrics/mAP50-95(B)")), 0.39, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "metrics/precision(B)")), 0.7, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "fitness")), 0.4125, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "val/box_loss")), 1.1, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "best_fitness")), 0.4125, 1e-12);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(m, "field_mAP")), 0.5, 1e-12);
    ASSERT_TRUE(json_object_object_get(m, "train/box_loss") == NULL); /* training losses: not metrics */
    json_object *rc = json_object_object_get(o, "record");
    for (int i = 0; i < 9; i++) {
        if (strcmp(jget_str(rc, k[i]), v[i]) != 0) HY_FAIL_("record key %s missing or changed", k[i]);
    }
    json_object_put(o);
    hy_registry_close(r);
}

HY_TEST(rm_refusal_and_force) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_rm");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_OK(add(r, variant("rm2"), "m", 0, &v));
    ASSERT_OK(hy_registry_alias(r, "m", 1, "production"));
    ASSERT_OK(hy_registry_bind(r, "line3", "m", 2));
    ASSERT_ERR(hy_registry_rm(r, "m", 1, 0), HY_ERR_BUSY);
    ASSERT_TRUE(strstr(hy_last_error(), "production"));
    ASSERT_ERR(hy_registry_rm(r, "m", 2, 0), HY_ERR_BUSY);
    ASSERT_TRUE(strstr(hy_last_error(), "line3"));
    ASSERT_ERR(hy_registry_rm(r, "m", 3, 0), HY_ERR_NOT_FOUND);
    char *p;
    ASSERT_OK(hy_registry_resolve(r, "m@1", &p, NULL)); /* still there */
    hy_free(p);
    ASSERT_OK(hy_registry_rm(r, "m", 1, 1)); /* force: the alias goes too */
    ASSERT_ERR(hy_registry_resolve(r, "m@production", &p, NULL), HY_ERR_NOT_FOUND);
    ASSERT_ERR(hy_registry_resolve(r, "m@1", &p, NULL), HY_ERR_NOT_FOUND);
    ASSERT_OK(hy_registry_rm(r, "m", 2, 1));
    ASSERT_ERR(hy_registry_resolve(r, "line3", &p, NULL), HY_ERR_NOT_FOUND);
    char *js;
    ASSERT_OK(hy_registry_bindings(r, &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_EQ(json_object_array_length(o), 0);
    json_object_put(o);
    ASSERT_EQ(count_blobs(dir), 2); /* the blobs stay until gc */
    hy_registry_close(r);
}

HY_TEST(gc_removes_only_unreferenced) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_gc");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_OK(add(r, f, "m", 0, &v)); /* v2: the same blob */
    ASSERT_OK(add(r, variant("gc"), "m", 0, &v));
    ASSERT_OK(hy_registry_rm(r, "m", 1, 0)); /* v2 still holds that blob */
    ASSERT_OK(hy_registry_rm(r, "m", 3, 0));
    /* a crashed add's leftovers: a blob placed without its row, a temp file (writer gone);
     * and a temp file whose writer is alive (locked): kept */
    const char *g = variant("orphan");
    char hex[65], cmd[16384];
    {
        FILE *pp;
        snprintf(cmd, sizeof cmd, "sha256sum '%s'", g);
        pp = popen(cmd, "r");
        ASSERT_TRUE(pp && fscanf(pp, "%64s", hex) == 1);
        pclose(pp);
    }
    char orphan[4400], sub[4300];
    snprintf(sub, sizeof sub, "%s/blobs/sha256/%.2s", dir, hex);
    mkdir(sub, 0755);
    snprintf(orphan, sizeof orphan, "%s/%s", sub, hex);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 0444 '%s'", g, orphan, orphan);
    ASSERT_EQ(system(cmd), 0);
    char stale[4300], live[4300];
    snprintf(stale, sizeof stale, "%s/tmp/add-999999-1.tmp", dir);
    snprintf(live, sizeof live, "%s/tmp/pull-1-1.tmp", dir);
    FILE *fp = fopen(stale, "wb");
    ASSERT_TRUE(fp);
    fputs("partial", fp);
    fclose(fp);
    int lfd = open(live, O_RDWR | O_CREAT, 0600);
    ASSERT_TRUE(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
    ASSERT_EQ(count_blobs(dir), 3);
    size_t n = 0;
    uint64_t bytes = 0;
    ASSERT_OK(hy_registry_gc(r, &n, &bytes));
    printf("  gc: %zu files, %llu bytes\n", n, (unsigned long long)bytes);
    ASSERT_EQ(n, 3); /* v3's blob, the orphan, the stale temp file */
    ASSERT_EQ(count_blobs(dir), 1);
    ASSERT_TRUE(access(stale, F_OK) != 0);
    ASSERT_TRUE(access(live, F_OK) == 0);
    close(lfd);
    char *p;
    ASSERT_OK(hy_registry_resolve(r, "m@2", &p, NULL));
    ASSERT_EQ(access(p, R_OK), 0);
    hy_free(p);
    size_t checked, bad;
    ASSERT_OK(hy_registry_verify(r, &checked, &bad, NULL, NULL));
    ASSERT_EQ(bad, 0);
    ASSERT_OK(hy_registry_gc(r, &n, &bytes)); /* now the unlocked temp file */
    ASSERT_EQ(n, 1);
    ASSERT_OK(hy_registry_gc(r, &n, &bytes));
    ASSERT_EQ(n, 0);
    hy_registry_close(r);
}

typedef struct reports {
    int n;
    char all[8192]; /* every report, one a line */
} reports;

static void on_report(const char *what, const char *problem, void *user) {
    reports *rp = user;
    rp->n++;
    size_t l = strlen(rp->all);
    snprintf(rp->all + l, sizeof rp->all - l, "%s: %s\n", what, problem);
}

HY_TEST(verify_catches_corrupt_and_missing) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_verify");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_OK(add(r, variant("verify"), "m", 0, &v));
    size_t checked = 0, bad = 9;
    reports rp = {0};
    ASSERT_OK(hy_registry_verify(r, &checked, &bad, on_report, &rp));
    ASSERT_EQ(checked, 2);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(rp.n, 0);
    /* flip one byte in the middle of v1's blob */
    char *p;
    ASSERT_OK(hy_registry_resolve(r, "m@1", &p, NULL));
    ASSERT_EQ(chmod(p, 0644), 0);
    int fd = open(p, O_RDWR);
    ASSERT_TRUE(fd >= 0);
    struct stat sb;
    fstat(fd, &sb);
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, sb.st_size / 2), 1);
    c ^= 0x40;
    ASSERT_EQ(pwrite(fd, &c, 1, sb.st_size / 2), 1);
    close(fd);
    ASSERT_ERR(hy_registry_verify(r, &checked, &bad, on_report, &rp), HY_ERR_FORMAT);
    ASSERT_EQ(bad, 1);
    ASSERT_EQ(rp.n, 1);
    ASSERT_TRUE(strstr(rp.all, "corrupt") && strstr(rp.all, p));
    ASSERT_TRUE(strstr(hy_last_error(), p));
    /* export refuses to hand it out */
    ASSERT_ERR(hy_registry_export(r, "m@1", hy_test_tmp("corrupt_out.safetensors"), 1), HY_ERR_FORMAT);
    ASSERT_TRUE(access(hy_test_tmp("corrupt_out.safetensors"), F_OK) != 0);
    /* adding the same content again repairs the blob */
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_OK(hy_registry_verify(r, &checked, &bad, NULL, NULL));
    ASSERT_EQ(bad, 0);
    /* and a missing one */
    char *p2;
    ASSERT_OK(hy_registry_resolve(r, "m@2", &p2, NULL));
    ASSERT_EQ(unlink(p2), 0);
    memset(&rp, 0, sizeof rp);
    ASSERT_ERR(hy_registry_verify(r, &checked, &bad, on_report, &rp), HY_ERR_FORMAT);
    ASSERT_EQ(bad, 1);
    ASSERT_EQ(rp.n, 1);
    ASSERT_TRUE(strstr(rp.all, "missing") && strstr(rp.all, p2));
    /* a stray file in the store is reported too */
    char stray[4300];
    snprintf(stray, sizeof stray, "%s/blobs/sha256/README", dir);
    FILE *fp = fopen(stray, "w");
    fputs("x", fp);
    fclose(fp);
    ASSERT_ERR(hy_registry_verify(r, &checked, &bad, NULL, NULL), HY_ERR_FORMAT);
    ASSERT_EQ(bad, 2);
    hy_free(p);
    hy_free(p2);
    hy_registry_close(r);
}

HY_TEST(export_copies_the_blob) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_export");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m", 0, &v));
    ASSERT_OK(hy_registry_alias(r, "m", 1, "prod"));
    const char *out = hy_test_tmp("exported.safetensors");
    unlink(out);
    ASSERT_OK(hy_registry_export(r, "m@prod", out, 0));
    unsigned char *a, *b;
    size_t na, nb;
    ASSERT_EQ(read_all(f, &a, &na), 0);
    ASSERT_EQ(read_all(out, &b, &nb), 0);
    ASSERT_TRUE(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    struct stat sb;
    ASSERT_EQ(stat(out, &sb), 0);
    ASSERT_TRUE(sb.st_mode & 0200); /* an ordinary, writable copy */
    /* an existing file only with force */
    FILE *fp = fopen(out, "wb");
    fputs("mine", fp);
    fclose(fp);
    ASSERT_ERR(hy_registry_export(r, "m@1", out, 0), HY_ERR_BUSY);
    ASSERT_EQ(stat(out, &sb), 0);
    ASSERT_EQ(sb.st_size, 4); /* untouched */
    ASSERT_OK(hy_registry_export(r, "m@1", out, 1));
    ASSERT_EQ(stat(out, &sb), 0);
    ASSERT_EQ((size_t)sb.st_size, na);
    ASSERT_ERR(hy_registry_export(r, "m@7", out, 1), HY_ERR_NOT_FOUND);
    /* no temp files left beside out */
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s'.tmp-* >/dev/null 2>&1", out);
    ASSERT_TRUE(system(cmd) != 0);
    hy_registry_close(r);
}

HY_TEST(resolve_path_forms) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_path");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    int v;
    ASSERT_OK(add(r, f, "m", 0, &v));
    char *blob;
    ASSERT_OK(hy_registry_resolve(r, "m", &blob, NULL));
    hy_registry_close(r);
    char *p;
    ASSERT_OK(hy_registry_resolve_path("some/file.pt", NULL, &p)); /* a path: as it is */
    ASSERT_TRUE(strcmp(p, "some/file.pt") == 0);
    hy_free(p);
    ASSERT_OK(hy_registry_resolve_path("registry:m@1", dir, &p));
    ASSERT_TRUE(strcmp(p, blob) == 0);
    hy_free(p);
    unsetenv("HOTYOLO_REGISTRY");
    ASSERT_ERR(hy_registry_resolve_path("registry:m", NULL, &p), HY_ERR_INVALID_ARG);
    setenv("HOTYOLO_REGISTRY", dir, 1);
    ASSERT_OK(hy_registry_resolve_path("registry:m", NULL, &p));
    ASSERT_TRUE(strcmp(p, blob) == 0);
    hy_free(p);
    unsetenv("HOTYOLO_REGISTRY");
    ASSERT_ERR(hy_registry_resolve_path("registry:m", hy_test_tmp("no_registry_here"), &p), HY_ERR_NOT_FOUND);
    ASSERT_TRUE(access(hy_test_tmp("no_registry_here"), F_OK) != 0); /* not created */
    /* the model loads from the resolved path */
    hy_context *c;
    ASSERT_OK(hy_context_load(blob, NULL, NULL, &c));
    hy_context_free(c);
    hy_free(blob);
}

// --- schema ---

static int sql(sqlite3 *db, const char *s) {
    char *err = NULL;
    int rc = sqlite3_exec(db, s, NULL, NULL, &err);
    if (rc) fprintf(stderr, "  sql: %s\n", err);
    sqlite3_free(err);
    return rc;
}

/* A version-1 registry made by hand: one model, one version, an alias. */
static int make_v1(const char *dir, const char *file) {
    mkdir(dir, 0755);
    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/registry.db", dir);
    sqlite3 *db;
    if (sqlite3_open(db_path, &db)) return -1;
    /* schema v1 as released (docs/registry.md): without tags */
    static const char *const v1 =
        "PRAGMA journal_mode = WAL; PRAGMA application_id = 1752788082; "
        "CREATE TABLE models(name TEXT PRIMARY KEY NOT NULL, created TEXT NOT NULL, "
        "  last_version INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE blobs(digest TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL);"
        "CREATE TABLE versions(id INTEGER PRIMARY KEY, name TEXT NOT NULL REFERENCES models(name), "
        "  version INTEGER NOT NULL CHECK(version >= 1), digest TEXT NOT NULL REFERENCES blobs(digest), "
        "  size INTEGER NOT NULL, added TEXT NOT NULL, format TEXT, arch TEXT, variant TEXT, nc INTEGER, "
        "  names TEXT, parameters INTEGER, imgsz INTEGER, scenario TEXT, record TEXT, UNIQUE(name, version));"
        "CREATE TABLE metrics(version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE, "
        "  key TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY(version_id, key));"
        "CREATE TABLE aliases(name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, "
        "  PRIMARY KEY(name, alias), FOREIGN KEY(name, version) REFERENCES versions(name, version));"
        "CREATE TABLE bindings(project TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, "
        "  FOREIGN KEY(name, version) REFERENCES versions(name, version));"
        "PRAGMA user_version = 1;";
    int rc = sql(db, v1);
    /* its blob, placed as a v1 add placed it */
    char hex[65] = {0}, cmd[9000];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", file);
    FILE *pp = popen(cmd, "r");
    if (!pp || fscanf(pp, "%64s", hex) != 1) rc = -1;
    if (pp) pclose(pp);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/blobs/sha256/%.2s' && cp '%s' '%s/blobs/sha256/%.2s/%s' && chmod 0444 "
             "'%s/blobs/sha256/%.2s/%s'",
             dir, hex, file, dir, hex, hex, dir, hex, hex);
    if (!rc && system(cmd)) rc = -1;
    struct stat sb;
    stat(file, &sb);
    char ins[1024];
    snprintf(ins, sizeof ins,
             "INSERT INTO models VALUES('old', '2024-01-01T00:00:00Z', 1);"
             "INSERT INTO blobs VALUES('%s', %lld);"
             "INSERT INTO versions(name, version, digest, size, added, format, arch, variant, nc, names, parameters, "
             "imgsz, scenario, record) VALUES('old', 1, '%s', %lld, '2024-01-01T00:00:00Z', 'safetensors', "
             "'yolov8', 'n', 80, '[]', 3157200, 640, 'from v1', '{}');"
             "INSERT INTO metrics VALUES(1, 'mAP50', 0.5);"
             "INSERT INTO aliases VALUES('old', 'production', 1);",
             hex, (long long)sb.st_size, hex, (long long)sb.st_size);
    if (!rc) rc = sql(db, ins);
    sqlite3_close(db);
    return rc;
}

static int user_version(const char *dir) {
    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/registry.db", dir);
    sqlite3 *db;
    if (sqlite3_open(db_path, &db)) return -1;
    sqlite3_stmt *q;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

HY_TEST(schema_migrates_v1) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *dir = fresh_dir("reg_v1");
    ASSERT_EQ(make_v1(dir, f), 0);
    ASSERT_EQ(user_version(dir), 1);
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 0, &r));
    ASSERT_EQ(user_version(dir), 2);
    char *js;
    ASSERT_OK(hy_registry_show(r, "old@production", &js)); /* the old entry, intact */
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_TRUE(strcmp(jget_str(o, "scenario"), "from v1") == 0);
    ASSERT_EQ(json_object_array_length(json_object_object_get(o, "tags")), 0);
    json_object_put(o);
    /* what v2 added works: tags; numbering continues */
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = "old";
    const char *t[] = {"migrated"};
    ap.tags = t;
    ap.n_tags = 1;
    int v;
    ASSERT_OK(hy_registry_add(r, f, &ap, &v));
    ASSERT_EQ(v, 2);
    ASSERT_EQ(count_blobs(dir), 1);
    ASSERT_OK(hy_registry_verify(r, NULL, NULL, NULL, NULL));
    hy_registry_close(r);
}

HY_TEST(schema_v0_newer_and_foreign) {
    /* v0: an empty database file (e.g. created by hand): gets the whole schema */
    const char *dir = fresh_dir("reg_v0");
    mkdir(dir, 0755);
    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/registry.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_close(db);
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 0, &r));
    hy_registry_close(r);
    ASSERT_EQ(user_version(dir), 2);
    /* newer: refused, naming both versions, and left as it is */
    ASSERT_EQ(sqlite3_open(db_path, &db), SQLITE_OK);
    ASSERT_EQ(sql(db, "PRAGMA user_version = 7"), 0);
    sqlite3_close(db);
    ASSERT_ERR(hy_registry_open(dir, 0, &r), HY_ERR_UNSUPPORTED);
    ASSERT_TRUE(strstr(hy_last_error(), "7") && strstr(hy_last_error(), "(2)") && strstr(hy_last_error(), dir));
    ASSERT_EQ(user_version(dir), 7);
    /* someone else's database: refused, untouched */
    const char *dir2 = fresh_dir("reg_foreign");
    mkdir(dir2, 0755);
    snprintf(db_path, sizeof db_path, "%s/registry.db", dir2);
    ASSERT_EQ(sqlite3_open(db_path, &db), SQLITE_OK);
    ASSERT_EQ(sql(db, "CREATE TABLE mine(x); INSERT INTO mine VALUES(42);"), 0);
    sqlite3_close(db);
    ASSERT_ERR(hy_registry_open(dir2, 1, &r), HY_ERR_FORMAT);
    ASSERT_TRUE(strstr(hy_last_error(), "not a hotyolo registry"));
    ASSERT_EQ(user_version(dir2), 0);
}

// --- concurrency ---

HY_TEST(concurrent_adders_and_reader) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *f2 = variant("conc");
    ASSERT_TRUE(f2);
    const char *dir = fresh_dir("reg_conc");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    hy_registry_close(r);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        ASSERT_TRUE(kids[k] >= 0);
        if (kids[k] == 0) {
            hy_registry *cr;
            int bad = hy_registry_open(dir, 0, &cr) != HY_OK;
            for (int i = 0; i < 10 && !bad; i++) {
                if (k < 2) {
                    int v;
                    bad = add(cr, k ? f2 : f, "m", 0, &v) != HY_OK;
                } else { /* the reader */
                    char *js = NULL;
                    bad = hy_registry_list(cr, &js) != HY_OK;
                    hy_free(js);
                    char *p = NULL;
                    hy_status st = hy_registry_resolve(cr, "m", &p, NULL);
                    bad |= st != HY_OK && st != HY_ERR_NOT_FOUND;
                    hy_free(p);
                    usleep(20000);
                }
                if (bad) fprintf(stderr, "  child %d: %s\n", k, hy_last_error());
            }
            hy_registry_close(cr);
            _exit(bad);
        }
    }
    for (int k = 0; k < 3; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ASSERT_OK(hy_registry_open(dir, 0, &r));
    char *js;
    ASSERT_OK(hy_registry_list(r, &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_EQ(json_object_array_length(o), 20);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(json_object_get_int(json_object_object_get(json_object_array_get_idx(o, i), "version")), i + 1);
    json_object_put(o);
    ASSERT_EQ(count_blobs(dir), 2);
    ASSERT_OK(hy_registry_verify(r, NULL, NULL, NULL, NULL));
    hy_registry_close(r);
}

HY_TEST(add_blob_and_entry_for_push) {
    /* the internal path oci.c takes is covered through the public functions in its tests;
     * here: export + add of the exported copy give the same digest (content addressing) */
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *a = fresh_dir("reg_a"), *b = fresh_dir("reg_b");
    hy_registry *ra, *rb;
    ASSERT_OK(hy_registry_open(a, 1, &ra));
    ASSERT_OK(hy_registry_open(b, 1, &rb));
    int v;
    ASSERT_OK(add(ra, f, "m", 0, &v));
    const char *out = hy_test_tmp("roundtrip.safetensors");
    unlink(out);
    ASSERT_OK(hy_registry_export(ra, "m", out, 0));
    ASSERT_OK(add(rb, out, "copy", 0, &v));
    char *ja, *jb;
    ASSERT_OK(hy_registry_show(ra, "m", &ja));
    ASSERT_OK(hy_registry_show(rb, "copy", &jb));
    json_object *oa = parse(ja), *ob = parse(jb);
    ASSERT_TRUE(strcmp(jget_str(oa, "digest"), jget_str(ob, "digest")) == 0);
    json_object_put(oa);
    json_object_put(ob);
    hy_free(ja);
    hy_free(jb);
    hy_registry_close(ra);
    hy_registry_close(rb);
}

/* The path oci.c takes: entry_for_push on one side, tmp_open + add_blob on the other. */
static int copy_to_fd(const char *src, int fd) {
    unsigned char *d;
    size_t n;
    if (read_all(src, &d, &n)) return -1;
    int ok = write(fd, d, n) == (ssize_t)n;
    free(d);
    return ok ? 0 : -1;
}

HY_TEST(internal_push_pull_path) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *a = fresh_dir("reg_push"), *b = fresh_dir("reg_pull");
    hy_registry *ra, *rb;
    ASSERT_OK(hy_registry_open(a, 1, &ra));
    ASSERT_OK(hy_registry_open(b, 1, &rb));
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = "pcb";
    ap.scenario = "line 3";
    const char *mk[] = {"mAP50"};
    const double mv[] = {0.7};
    const char *tg[] = {"edge"};
    ap.metric_keys = mk;
    ap.metric_values = mv;
    ap.n_metrics = 1;
    ap.tags = tg;
    ap.n_tags = 1;
    int v;
    ASSERT_OK(hy_registry_add(ra, f, &ap, &v));
    char *blob, *digest, *config;
    ASSERT_OK(hy__registry_entry_for_push(ra, "pcb@1", &blob, &digest, &config));
    ASSERT_TRUE(hy__registry_is_hex64(digest));
    ASSERT_TRUE(strstr(blob, digest) != NULL);
    ASSERT_TRUE(strstr(config, "\"blob\"") == NULL); /* no local path in what travels */
    ASSERT_TRUE(strstr(config, "\"record\"") != NULL);
    /* pull: a temp file under DIR/tmp, then add_blob with the pulled entry */
    int fd;
    char *tmp;
    ASSERT_OK(hy__registry_tmp_open(rb, "pull", &fd, &tmp));
    ASSERT_EQ(copy_to_fd(blob, fd), 0);
    hy_registry_add_params pp = hy_registry_add_default_params();
    pp.name = "line3";
    ASSERT_OK(hy__registry_add_blob(rb, tmp, digest, config, &pp, 1, &v));
    close(fd);
    hy_free(tmp);
    ASSERT_EQ(v, 1);
    char *js;
    ASSERT_OK(hy_registry_show(rb, "line3", &js));
    json_object *o = parse(js);
    hy_free(js);
    ASSERT_TRUE(strcmp(jget_str(o, "scenario"), "line 3") == 0);
    ASSERT_NEAR(json_object_get_double(json_object_object_get(json_object_object_get(o, "metrics"), "mAP50")), 0.7,
                1e-12);
    ASSERT_EQ(json_object_array_length(json_object_object_get(o, "tags")), 1);
    json_object_put(o);
    /* the same content again with reuse: that version, nothing added */
    ASSERT_OK(hy__registry_tmp_open(rb, "pull", &fd, &tmp));
    ASSERT_EQ(copy_to_fd(blob, fd), 0);
    ASSERT_OK(hy__registry_add_blob(rb, tmp, digest, config, &pp, 1, &v));
    ASSERT_EQ(v, 1);
    ASSERT_TRUE(access(tmp, F_OK) != 0);
    close(fd);
    hy_free(tmp);
    /* a tampered blob (its digest is not the one claimed) is refused, the temp file removed */
    ASSERT_OK(hy__registry_tmp_open(rb, "pull", &fd, &tmp));
    ASSERT_EQ(copy_to_fd(variant("tampered"), fd), 0);
    ASSERT_ERR(hy__registry_add_blob(rb, tmp, digest, config, &pp, 0, &v), HY_ERR_FORMAT);
    ASSERT_TRUE(strstr(hy_last_error(), digest));
    ASSERT_TRUE(access(tmp, F_OK) != 0);
    close(fd);
    hy_free(tmp);
    /* a config that is not JSON, or with bad fields: refused */
    static const char *const bad_cfg[] = {"{", "{\"metrics\": {\"k\": \"x\"}}", "{\"tags\": [1]}"};
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(hy__registry_tmp_open(rb, "pull", &fd, &tmp));
        ASSERT_EQ(copy_to_fd(blob, fd), 0);
        hy_status st = hy__registry_add_blob(rb, tmp, digest, bad_cfg[i], &pp, 0, &v);
        if (st != HY_ERR_FORMAT) HY_FAIL_("config %s: %s", bad_cfg[i], hy_status_name(st));
        close(fd);
        hy_free(tmp);
    }
    ASSERT_OK(hy_registry_list(rb, &js));
    o = parse(js);
    hy_free(js);
    ASSERT_EQ(json_object_array_length(o), 1);
    json_object_put(o);
    char tmpd[4200];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", b);
    ASSERT_EQ(count_files(tmpd), 0);
    hy_free(blob);
    hy_free(digest);
    hy_free(config);
    hy_registry_close(ra);
    hy_registry_close(rb);
}

/* kill -9 of an adding process at 30 random points: the registry stays consistent (every
 * listed version's blob is there and verify passes); gc cleans what the crashes left. */
HY_TEST(crash_during_add) {
    const char *f = base_model();
    ASSERT_TRUE(f);
    const char *f2 = variant("crash");
    ASSERT_TRUE(f2);
    const char *dir = fresh_dir("reg_crash");
    hy_registry *r;
    ASSERT_OK(hy_registry_open(dir, 1, &r));
    hy_registry_close(r);
    srand(1234);
    for (int k = 0; k < 30; k++) {
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
            hy_registry *cr;
            if (hy_registry_open(dir, 0, &cr)) _exit(1);
            for (int i = 0;; i++) add(cr, (i + k) & 1 ? f2 : f, "m", 0, NULL);
        }
        usleep((useconds_t)(rand() % 150000)); /* an add takes ~20-60 ms */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    ASSERT_OK(hy_registry_open(dir, 0, &r));
    char *js;
    ASSERT_OK(hy_registry_list(r, &js));
    json_object *o = parse(js);
    hy_free(js);
    size_t n = json_object_array_length(o);
    printf("  %zu versions committed across 30 kills\n", n);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        ASSERT_EQ(json_object_get_int(json_object_object_get(e, "version")), (int)i + 1);
        char ref[64], *p;
        snprintf(ref, sizeof ref, "m@%zu", i + 1);
        ASSERT_OK(hy_registry_resolve(r, ref, &p, NULL));
        ASSERT_EQ(access(p, R_OK), 0);
        hy_free(p);
    }
    json_object_put(o);
    ASSERT_OK(hy_registry_verify(r, NULL, NULL, NULL, NULL));
    size_t removed;
    uint64_t bytes;
    ASSERT_OK(hy_registry_gc(r, &removed, &bytes));
    char tmpd[4200];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", dir);
    ASSERT_EQ(count_files(tmpd), 0);
    ASSERT_OK(hy_registry_verify(r, NULL, NULL, NULL, NULL));
    hy_registry_close(r);
}

HY_TEST_MAIN()
