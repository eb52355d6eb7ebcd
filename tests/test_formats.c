/* Weights formats end to end: .pt -> safetensors round trip (bit for bit), inspect,
 * verify, format detection by content, transfer through convert. Detections per format
 * are checked against Ultralytics in test_reference.c. */
#include <json-c/json.h>
#include <unistd.h>

#include "hy_test.h"
#include "io/pt.h"
#include "io/safetensors.h"

HY_TEST(pt_to_safetensors_round_trip_is_bit_exact) {
    const char *out = hy_test_tmp("rt.safetensors");
    unlink(out);
    hy_convert_params cp = hy_convert_default_params(); /* keep dtypes: f16 in, f16 out */
    ASSERT_OK(hy_convert(hy_test_asset("weights/yolov8n.pt"), out, &cp));
    hy__pt_file *pt = NULL;
    hy__st_file *st = NULL;
    ASSERT_OK(hy__pt_load(hy_test_asset("weights/yolov8n.pt"), &pt));
    ASSERT_OK(hy__st_open(out, 1, &st)); /* with hash verification */
    ASSERT_EQ(hy__st_count(st), pt->n_tensors);
    int bad = 0;
    for (size_t i = 0; i < pt->n_tensors; i++) {
        const hy__pt_tensor *a = &pt->tensors[i];
        const hy__wtensor *b = hy__st_tensor(st, i);
        if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim || a->numel != b->numel ||
            memcmp(a->data, b->data, a->numel * hy_dtype_size(a->dtype)) != 0) {
            fprintf(stderr, "  tensor %zu %s differs\n", i, a->name);
            bad++;
        }
        for (int d = 0; d < a->ndim; d++) bad += a->shape[d] != b->shape[d];
        /* safetensors forbids holes between tensors, so hotyolo guarantees 64-byte alignment
         * for every tensor whose size is a multiple of 64 bytes (docs/formats.md) */
        if ((b->numel * hy_dtype_size(b->dtype)) % 64 == 0) bad += (hy__st_tensor_offset(st, i) % 64) != 0;
    }
    ASSERT_EQ(bad, 0);
    ASSERT_STREQ(hy__st_meta(st, "format"), "hotyolo");
    ASSERT_STREQ(hy__st_meta(st, "hotyolo.variant"), "n");
    ASSERT_STREQ(hy__st_meta(st, "hotyolo.nc"), "80");
    ASSERT_STREQ(hy__st_meta(st, "hotyolo.fused"), "false");
    ASSERT_STREQ(hy__st_meta(st, "hotyolo.source_sha256"),
                 "fc8af32ca9a389f3864c7d06d868d51a501a17738d54674cf26c3538c5a578c5"); /* MANIFEST.md */
    ASSERT_CONTAINS(hy__st_meta(st, "hotyolo.names"), "\"person\"");
    hy__st_close(st);
    hy__pt_free(pt);
    /* hy_verify agrees; one flipped data byte is caught */
    ASSERT_OK(hy_verify(out));
    FILE *f = fopen(out, "r+b");
    ASSERT_TRUE(f != NULL);
    fseek(f, -100, SEEK_END);
    int c = fgetc(f);
    fseek(f, -100, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
    ASSERT_ERR(hy_verify(out), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "mismatch");
    hy_model_params mp = hy_model_default_params();
    mp.verify = 1;
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(out, &mp, &m), HY_ERR_FORMAT);
    unlink(out);
}

static json_object *inspect(const char *path, int tensors) {
    char *js = NULL;
    if (hy_inspect(path, tensors, &js) != HY_OK) {
        fprintf(stderr, "  inspect %s: %s\n", path, hy_last_error());
        return NULL;
    }
    json_object *o = json_tokener_parse(js);
    hy_free(js);
    return o;
}

static const char *jstr(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}
static long long jint(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? (long long)json_object_get_int64(v) : -1;
}

HY_TEST(inspect_pt) {
    json_object *o = inspect(hy_test_asset("weights/yolov8n.pt"), 1);
    ASSERT_TRUE(o != NULL);
    ASSERT_STREQ(jstr(o, "format"), "pt");
    ASSERT_STREQ(jstr(o, "variant"), "n");
    ASSERT_STREQ(jstr(o, "sha256"), "fc8af32ca9a389f3864c7d06d868d51a501a17738d54674cf26c3538c5a578c5");
    ASSERT_EQ(jint(o, "nc"), 80);
    ASSERT_EQ(jint(o, "parameters"), 3157200); /* reference/yolov8_layers.txt: YOLOv8n summary */
    ASSERT_EQ(jint(o, "tensor_count"), 355);
    ASSERT_STREQ(jstr(o, "valid"), "true");
    json_object *meta, *ts;
    ASSERT_TRUE(json_object_object_get_ex(o, "metadata", &meta));
    ASSERT_STREQ(jstr(meta, "weights_from"), "model"); /* ema is None after strip_optimizer */
    ASSERT_TRUE(strlen(jstr(meta, "version")) > 0);
    ASSERT_TRUE(json_object_object_get_ex(o, "tensors", &ts));
    ASSERT_EQ(json_object_array_length(ts), 355);
    json_object_put(o);
}

HY_TEST(inspect_onnx_and_yolov5) {
    json_object *o = inspect(hy_test_asset("weights/yolov8n.onnx"), 0);
    ASSERT_TRUE(o != NULL);
    ASSERT_STREQ(jstr(o, "format"), "onnx");
    ASSERT_STREQ(jstr(o, "fused"), "true");
    ASSERT_EQ(jint(o, "parameters"), 3151904); /* Ultralytics' fused YOLOv8n parameter count */
    json_object_put(o);
    o = inspect(hy_test_asset("weights/yolov5n.pt"), 0);
    ASSERT_TRUE(o != NULL);
    ASSERT_STREQ(jstr(o, "architecture"), "yolov5");
    ASSERT_STREQ(jstr(o, "valid"), "true");
    ASSERT_EQ(jint(o, "parameters"), 1872157); /* MANIFEST: YOLOv5's count (the anchors are a buffer) */
    json_object_put(o);
    const char *mis = hy_test_mislabelled_yolov5(); /* says YOLOv8, is not */
    ASSERT_TRUE(mis != NULL);
    o = inspect(mis, 0);
    ASSERT_TRUE(o != NULL);
    ASSERT_STREQ(jstr(o, "valid"), "false");
    json_object_put(o);
}

HY_TEST(inspect_refuses_non_weights) {
    char *js = NULL;
    ASSERT_ERR(hy_inspect(hy_test_asset("coco.names"), 0, &js), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "coco.names");
    ASSERT_TRUE(js == NULL);
}

HY_TEST(transfer_convert_writes_nc3_checkpoint) {
    const char *out = hy_test_tmp("nc3.safetensors");
    unlink(out);
    hy_convert_params cp = hy_convert_default_params();
    cp.load.mode = HY_LOAD_TRANSFER;
    cp.load.nc = 3;
    ASSERT_OK(hy_convert(hy_test_asset("weights/yolov8n.pt"), out, &cp));
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(out, NULL, &m)); /* strict: the file is a complete nc=3 model */
    ASSERT_EQ(hy_model_num_classes(m), 3);
    hy_model_free(m);
    unlink(out);
}

HY_TEST(convert_does_not_touch_output_on_failure) {
    const char *out = hy_test_tmp("keep.safetensors");
    FILE *f = fopen(out, "w");
    fputs("precious", f);
    fclose(f);
    hy_convert_params cp = hy_convert_default_params();
    const char *mis = hy_test_mislabelled_yolov5();
    ASSERT_TRUE(mis != NULL);
    ASSERT_ERR(hy_convert(mis, out, &cp), HY_ERR_MISMATCH);
    char buf[16] = {0};
    f = fopen(out, "r");
    ASSERT_TRUE(fgets(buf, sizeof buf, f) != NULL);
    fclose(f);
    ASSERT_STREQ(buf, "precious");
    unlink(out);
}

static int g_warned;
static void on_log(hy_log_level lvl, const char *msg, void *user) {
    (void)user;
    if (lvl == HY_LOG_WARN && strstr(msg, "repacking")) g_warned++;
}

static int forward_64(const char *path, float *out, size_t n) {
    hy_context *c = NULL;
    hy_context_params cp = hy_context_default_params();
    if (hy_context_load(path, NULL, &cp, &c) != HY_OK) return -1;
    float *x = malloc(3 * 64 * 64 * sizeof(float));
    for (int i = 0; i < 3 * 64 * 64; i++) x[i] = (float)((i * 37) % 255) / 255.0f;
    hy_status st = hy_model_forward(c, x, 1, 64, 64, out, n);
    free(x);
    hy_context_free(c);
    return st == HY_OK ? 0 : -1;
}

/* A fused file carries packed weights used in place; a blob that does not match this
 * build's packing is detected (canary) and everything is repacked from the f32 weights. */
HY_TEST(fused_packed_weights_in_place_and_canary) {
    const char *out = hy_test_tmp("fused.safetensors");
    unlink(out);
    hy_convert_params cp = hy_convert_default_params();
    cp.fuse = 1;
    ASSERT_OK(hy_convert(hy_test_asset("weights/yolov8n.pt"), out, &cp));
    size_t n = 84 * 84; /* A for 64x64: 64 + 16 + 4 */
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    ASSERT_EQ(forward_64(hy_test_asset("weights/yolov8n.pt"), a, n), 0);
    ASSERT_EQ(forward_64(out, b, n), 0);
    ASSERT_TRUE(memcmp(a, b, n * sizeof(float)) == 0); /* same packing, same bits */
    /* corrupt the stem's packed blob */
    hy__st_file *st = NULL;
    ASSERT_OK(hy__st_open(out, 0, &st));
    ASSERT_TRUE(hy__st_meta(st, "hotyolo.packed_layout") != NULL);
    size_t idx = 0;
    for (; idx < hy__st_count(st); idx++)
        if (strcmp(hy__st_tensor(st, idx)->name, "hotyolo.packed.model.0") == 0) break;
    ASSERT_TRUE(idx < hy__st_count(st));
    long off = (long)hy__st_tensor_offset(st, idx);
    hy__st_close(st);
    FILE *f = fopen(out, "r+b");
    fseek(f, off + 4, SEEK_SET);
    fputc(0x7f, f);
    fputc(0x7f, f);
    fclose(f);
    hy_log_set(on_log, NULL);
    ASSERT_EQ(forward_64(out, c, n), 0);
    hy_log_set(NULL, NULL);
    ASSERT_EQ(g_warned, 1);
    ASSERT_TRUE(memcmp(a, c, n * sizeof(float)) == 0);
    free(a);
    free(b);
    free(c);
    unlink(out);
}

HY_TEST_MAIN()
