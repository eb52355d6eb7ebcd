/* Model loading: structure validation against the checkpoint, config, errors, and the
 * "allocate once" rule for detection. */
#include <zlib.h>

#include "hy_test.h"
#include "model/model_impl.h"

static hy__pt_file *load_pt(const char *rel) {
    hy__pt_file *pt = NULL;
    if (hy__pt_load(hy_test_asset(rel), &pt) != HY_OK) fprintf(stderr, "load %s: %s\n", rel, hy_last_error());
    return pt;
}

static int find_index(const hy__pt_file *pt, const char *name) {
    for (size_t i = 0; i < pt->n_tensors; i++)
        if (strcmp(pt->tensors[i].name, name) == 0) return (int)i;
    return -1;
}

HY_TEST(loads_yolov8n_config_and_names) {
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &m));
    ASSERT_EQ(hy_model_num_classes(m), 80);
    ASSERT_STREQ(hy_model_variant(m), "n");
    ASSERT_STREQ(hy_model_class_name(m, 0), "person");
    ASSERT_STREQ(hy_model_class_name(m, 79), "toothbrush");
    ASSERT_TRUE(hy_model_class_name(m, 80) == NULL);
    ASSERT_TRUE(hy_model_class_name(m, -1) == NULL);
    hy_model_free(m);
}

HY_TEST(missing_file_names_it) {
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load("/nonexistent/dir/yolo.pt", NULL, &m), HY_ERR_NOT_FOUND);
    ASSERT_CONTAINS(hy_last_error(), "/nonexistent/dir/yolo.pt");
    ASSERT_TRUE(m == NULL);
}

HY_TEST(mislabelled_checkpoint_is_refused_with_a_listing) {
    /* A real checkpoint of another architecture that says it is YOLOv8: every difference is
     * listed. */
    const char *mis = hy_test_mislabelled_yolov5();
    ASSERT_TRUE(mis != NULL);
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(mis, NULL, &m), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "yolov5n_as_yolov8.safetensors");
    ASSERT_CONTAINS(hy_last_error(), "does not match YOLOv8");
    ASSERT_CONTAINS(hy_last_error(), "missing");
    ASSERT_CONTAINS(hy_last_error(), "unexpected");
    ASSERT_TRUE(m == NULL);
}

HY_TEST(missing_tensor_is_named) {
    hy__pt_file *pt = load_pt("weights/yolov8n.pt");
    ASSERT_TRUE(pt != NULL);
    int i = find_index(pt, "model.8.m.0.cv2.bn.running_var");
    ASSERT_TRUE(i >= 0);
    /* hide it by renaming */
    pt->tensors[i].name[0] = 'X';
    hy_model *m = NULL;
    hy_status st = hy__model_from_pt(pt, "ckpt.pt", NULL, &m);
    pt->tensors[i].name[0] = 'm';
    hy__pt_free(pt);
    ASSERT_EQ(st, HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "ckpt.pt");
    ASSERT_CONTAINS(hy_last_error(), "model.8.m.0.cv2.bn.running_var: missing (expected 128)");
    ASSERT_CONTAINS(hy_last_error(), "Xodel.8.m.0.cv2.bn.running_var: unexpected tensor (128)");
    ASSERT_CONTAINS(hy_last_error(), "1 missing, 0 wrong shape, 1 unexpected");
}

HY_TEST(wrong_shape_is_named_with_both_shapes) {
    hy__pt_file *pt = load_pt("weights/yolov8n.pt");
    ASSERT_TRUE(pt != NULL);
    int i = find_index(pt, "model.22.cv3.0.2.weight");
    ASSERT_TRUE(i >= 0);
    /* pretend the file has a 3-class head in one level: 3x80x1x1 */
    int64_t old = pt->tensors[i].shape[0];
    pt->tensors[i].shape[0] = 3;
    hy_model *m = NULL;
    hy_status st = hy__model_from_pt(pt, "ckpt.pt", NULL, &m);
    pt->tensors[i].shape[0] = old;
    hy__pt_free(pt);
    ASSERT_EQ(st, HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "model.22.cv3.0.2.weight: expected 80x80x1x1, file has 3x80x1x1");
}

HY_TEST(bad_params_are_rejected) {
    hy_model_params p = hy_model_default_params();
    p.imgsz = 33;
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &p, &m), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "imgsz 33");
    p = hy_model_default_params();
    p.n_threads = -2;
    ASSERT_ERR(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &p, &m), HY_ERR_INVALID_ARG);
    ASSERT_TRUE(m == NULL);
}

HY_TEST(detect_allocates_only_its_result_once_warm) {
    hy_model *mdl = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &mdl));
    hy_context *m = NULL;
    ASSERT_OK(hy_context_create(mdl, NULL, &m)); /* nothing planned */
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/zidane.jpg"), &img));
    hy_result *r = NULL;
    ASSERT_OK(hy_detect(m, img, NULL, &r)); /* first call plans the 384x640 graph */
    hy_result_free(r);
    int64_t before = hy__alloc_total();
    ASSERT_OK(hy_detect(m, img, NULL, &r));
    int64_t allocs = hy__alloc_total() - before;
    ASSERT_EQ(allocs, 1); /* the hy_result itself */
    ASSERT_TRUE(hy_result_count(r) >= 2);
    hy_result_free(r);
    /* invalid detection parameters */
    hy_detect_params dp = hy_detect_default_params();
    dp.conf = 1.5f;
    ASSERT_ERR(hy_detect(m, img, &dp, &r), HY_ERR_INVALID_ARG);
    dp = hy_detect_default_params();
    dp.imgsz = 100;
    ASSERT_ERR(hy_detect(m, img, &dp, &r), HY_ERR_INVALID_ARG);
    hy_image_free(img);
    hy_context_free(m);
    hy_model_free(mdl);
}

HY_TEST(class_filter_and_max_det) {
    hy_context *m = NULL;
    ASSERT_OK(hy_context_load(hy_test_asset("weights/yolov8n.pt"), NULL, NULL, &m));
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
    hy_detect_params dp = hy_detect_default_params();
    int only_bus[] = {5};
    dp.classes = only_bus;
    dp.n_classes = 1;
    hy_result *r = NULL;
    ASSERT_OK(hy_detect(m, img, &dp, &r));
    ASSERT_EQ(hy_result_count(r), 1);
    ASSERT_EQ(hy_result_get(r, 0)->class_id, 5);
    hy_result_free(r);
    dp = hy_detect_default_params();
    dp.max_det = 2;
    ASSERT_OK(hy_detect(m, img, &dp, &r));
    ASSERT_EQ(hy_result_count(r), 2);
    /* sorted by confidence, highest first */
    ASSERT_TRUE(hy_result_get(r, 0)->confidence >= hy_result_get(r, 1)->confidence);
    hy_result_free(r);
    hy_image_free(img);
    hy_context_free(m);
}

HY_TEST(box_iou_matches_hand_values) {
    float a[4] = {0, 0, 10, 10}, b[4] = {5, 0, 15, 10}, c[4] = {20, 20, 30, 30};
    ASSERT_NEAR(hy__box_iou(a, b), 50.0 / 150.0, 1e-6);
    ASSERT_NEAR(hy__box_iou(a, a), 1.0, 1e-6);
    ASSERT_NEAR(hy__box_iou(a, c), 0.0, 0);
}

/* Reads "name<TAB>shape" rows of a reference state_dict table. */
static int read_tsv(const char *rel, char names[][96], char shapes[][32], int max) {
    FILE *f = fopen(hy_test_asset(rel), "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) n = -1;
    while (n >= 0 && n < max && fgets(line, sizeof line, f))
        if (sscanf(line, "%95s\t%31s", names[n], shapes[n]) == 2) n++;
    fclose(f);
    return n;
}

HY_TEST(transfer_80_to_3_classes_reports_exactly_the_class_tensors) {
    static char n80[400][96], s80[400][32], n3[400][96], s3[400][32];
    int a = read_tsv("reference/yolov8n_state_dict_keys.tsv", n80, s80, 400);
    int b = read_tsv("reference/yolov8n_nc3_state_dict_keys.tsv", n3, s3, 400);
    ASSERT_EQ(a, 355);
    ASSERT_EQ(b, 355);
    /* the tensors whose shape depends on nc, per Ultralytics' own tables */
    int expected_changed = 0;
    for (int i = 0; i < a; i++) expected_changed += strcmp(s80[i], s3[i]) != 0;
    ASSERT_EQ(expected_changed, 36);

    hy_model_params p = hy_model_default_params();
    p.mode = HY_LOAD_TRANSFER;
    p.nc = 3;
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &p, &m));
    ASSERT_EQ(hy_model_num_classes(m), 3);
    ASSERT_EQ(hy_model_num_tensors(m), 355);
    ASSERT_EQ(hy_model_load_count(m, HY_LOAD_TRANSFERRED), 355 - 36); /* Ultralytics: 319/355 */
    ASSERT_EQ(hy_model_load_count(m, HY_LOAD_INITIALIZED), 36);
    ASSERT_EQ(hy_model_load_count(m, HY_LOAD_IGNORED), 36);
    for (size_t i = 0; i < hy_model_load_count(m, HY_LOAD_INITIALIZED); i++) {
        const char *name = hy_model_load_name(m, HY_LOAD_INITIALIZED, i);
        int found = 0;
        for (int k = 0; k < a && !found; k++) found = strcmp(n80[k], name) == 0 && strcmp(s80[k], s3[k]) != 0;
        if (!found) fprintf(stderr, "  initialised %s is not class-dependent\n", name);
        ASSERT_TRUE(found);
    }
    ASSERT_CONTAINS(hy_model_load_reason(m, HY_LOAD_INITIALIZED, 0), "file has 80x64x3x3, model needs 64x64x3x3");
    ASSERT_STREQ(hy_model_class_name(m, 0), "class0"); /* the file's 80 names do not apply */
    hy_model_free(m);
}

HY_TEST(strict_load_with_other_nc_lists_the_class_tensors) {
    hy_model_params p = hy_model_default_params();
    p.nc = 3;
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &p, &m), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "0 missing, 36 wrong shape, 0 unexpected");
    ASSERT_CONTAINS(hy_last_error(), "model.22.cv3.0.2.weight: expected 3x64x1x1, file has 80x80x1x1");
}

HY_TEST(transferred_model_still_detects_with_its_own_head) {
    /* nc=80 transfer of an 80-class file loads everything: same detections as strict */
    hy_model_params p = hy_model_default_params();
    p.mode = HY_LOAD_TRANSFER;
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &p, &m));
    ASSERT_EQ(hy_model_load_count(m, HY_LOAD_TRANSFERRED), 355);
    ASSERT_EQ(hy_model_load_count(m, HY_LOAD_INITIALIZED), 0);
    hy_model_free(m);
}

HY_TEST(prefix_map_renames_keys) {
    /* Renaming every "model." to "net." makes nothing match; mapping it back restores it. */
    hy__pt_file *pt = load_pt("weights/yolov8n.pt");
    ASSERT_TRUE(pt != NULL);
    for (size_t i = 0; i < pt->n_tensors; i++) memcpy(pt->tensors[i].name, "net..", 5); /* "model" -> "net.." */
    hy_model *m = NULL;
    ASSERT_ERR(hy__model_from_pt(pt, "renamed.pt", NULL, &m), HY_ERR_MISMATCH);
    const char *from[] = {"net.."}, *to[] = {"model"};
    hy_model_params p = hy_model_default_params();
    p.map_from = from;
    p.map_to = to;
    p.n_map = 1;
    hy_status st = hy__model_from_pt(pt, "renamed.pt", &p, &m);
    hy__pt_free(pt);
    ASSERT_OK(st);
    hy_model_free(m);
}

// --- tensor dtypes ------------------------------------------------------------------------------

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static const char *write_file(const char *name, const void *d, size_t n) {
    const char *p = hy_test_tmp(name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
    return p;
}

static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void set32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* yolov8n.pt with its storage class torch.HalfStorage renamed torch.BoolStorage (same
 * length; memoized, so every float tensor becomes bool), CRCs patched by hand. */
HY_TEST(pt_bool_storage_is_refused) {
    size_t n = 0;
    uint8_t *b = read_all(hy_test_asset("weights/yolov8n.pt"), &n);
    ASSERT_TRUE(b != NULL);
    /* data.pkl is the first entry (local header at 0, stored); torch writes its sizes and
     * CRC in the central directory and a data descriptor after the data. */
    ASSERT_TRUE(get32(b) == 0x04034b50 && b[8] == 0);
    size_t cd = get32(b + n - 22 + 16); /* first central record is data.pkl's */
    ASSERT_TRUE(get32(b + cd) == 0x02014b50 && get32(b + cd + 42) == 0);
    size_t nl = b[26] | b[27] << 8, xl = b[28] | b[29] << 8, dsz = get32(b + cd + 20);
    uint8_t *pkl = b + 30 + nl + xl;
    uint8_t *hit = memmem(pkl, dsz, "ctorch\nHalfStorage\n", 19);
    ASSERT_TRUE(hit != NULL);
    memcpy(hit + 7, "Bool", 4);
    uint32_t crc = (uint32_t)crc32(0, pkl, (uInt)dsz);
    set32(b + cd + 16, crc);
    if (get32(pkl + dsz) == 0x08074b50) set32(pkl + dsz + 4, crc); /* data descriptor */
    const char *path = write_file("bool_storage.pt", b, n);
    free(b);
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(path, NULL, &m), HY_ERR_FORMAT);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(hy_last_error(), "bool_storage.pt: model.0.conv.weight: dtype bool, expected a floating type");
    /* inspect: valid false, the same problem */
    char *json = NULL;
    ASSERT_OK(hy_inspect(path, 0, &json));
    ASSERT_CONTAINS(json, "\"valid\": false");
    ASSERT_CONTAINS(json, "dtype bool, expected a floating type");
    hy_free(json);
}

/* A safetensors file written here from yolov8n's tensors (F16 / I64); model.0.conv.weight
 * is stored as BOOL (one byte per element) in the second file. */
static const char *write_st(const hy__pt_file *pt, const char *name, int bool_stem) {
    size_t cap = 1 << 20, hl = 0, off = 0;
    char *h = malloc(cap);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    for (size_t i = 0; i < pt->n_tensors; i++) {
        const hy__pt_tensor *t = &pt->tensors[i];
        int as_bool = bool_stem && !strcmp(t->name, "model.0.conv.weight");
        size_t nb = as_bool ? t->numel : t->numel * hy_dtype_size(t->dtype);
        const char *dt = as_bool ? "BOOL" : t->dtype == HY_DTYPE_F16 ? "F16" : t->dtype == HY_DTYPE_I64 ? "I64" : "F32";
        hl += (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                               t->name, dt);
        for (int d = 0; d < t->ndim; d++)
            hl += (size_t)snprintf(h + hl, cap - hl, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    while (hl % 8) h[hl++] = ' ';
    uint8_t *b = malloc(8 + hl + off);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, h, hl);
    size_t pos = 8 + hl;
    for (size_t i = 0; i < pt->n_tensors; i++) {
        const hy__pt_tensor *t = &pt->tensors[i];
        if (bool_stem && !strcmp(t->name, "model.0.conv.weight")) {
            for (size_t k = 0; k < t->numel; k++) b[pos++] = (uint8_t)(((const uint16_t *)t->data)[k] != 0);
        } else {
            size_t nb = t->numel * hy_dtype_size(t->dtype);
            memcpy(b + pos, t->data, nb);
            pos += nb;
        }
    }
    const char *path = write_file(name, b, pos);
    free(b);
    free(h);
    return path;
}

HY_TEST(safetensors_bool_tensor_is_refused) {
    hy__pt_file *pt = load_pt("weights/yolov8n.pt");
    ASSERT_TRUE(pt != NULL);
    ASSERT_EQ(find_index(pt, "model.0.conv.weight") >= 0 ? pt->tensors[find_index(pt, "model.0.conv.weight")].dtype : HY_DTYPE_COUNT,
              HY_DTYPE_F16);
    const char *good = write_st(pt, "f16.safetensors", 0), *bad = write_st(pt, "bool.safetensors", 1);
    hy__pt_free(pt);
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(good, NULL, &m)); /* control: the writer is right */
    hy_model_free(m);
    m = NULL;
    ASSERT_ERR(hy_model_load(bad, NULL, &m), HY_ERR_FORMAT);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(hy_last_error(), "bool.safetensors: model.0.conv.weight: dtype bool, expected a floating type");
    /* transfer mode does not take it either */
    hy_model_params p = hy_model_default_params();
    p.mode = HY_LOAD_TRANSFER;
    ASSERT_ERR(hy_model_load(bad, &p, &m), HY_ERR_FORMAT);
}

/* num_batches_tracked stays an integer: a float one is refused too. */
HY_TEST(num_batches_tracked_must_be_int64) {
    hy__pt_file *pt = load_pt("weights/yolov8n.pt");
    ASSERT_TRUE(pt != NULL);
    int i = find_index(pt, "model.0.bn.num_batches_tracked");
    ASSERT_TRUE(i >= 0);
    ASSERT_EQ(pt->tensors[i].dtype, HY_DTYPE_I64);
    pt->tensors[i].dtype = HY_DTYPE_F64; /* same size */
    hy_model *m = NULL;
    hy_status st = hy__model_from_pt(pt, "ckpt.pt", NULL, &m);
    hy__pt_free(pt);
    ASSERT_EQ(st, HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "ckpt.pt: model.0.bn.num_batches_tracked: dtype float64, expected int64");
}

HY_TEST_MAIN()
