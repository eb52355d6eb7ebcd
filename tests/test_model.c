/* Model loading: structure validation against the checkpoint, config, errors, and the
 * "allocate once" rule for detection. */
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

HY_TEST(yolov5_checkpoint_is_refused_with_a_listing) {
    /* A real Ultralytics checkpoint of another architecture: every difference is listed. */
    hy_model *m = NULL;
    ASSERT_ERR(hy_model_load(hy_test_asset("weights/yolov5n.pt"), NULL, &m), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "yolov5n.pt");
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
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &m));
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
    hy_model_free(m);
}

HY_TEST(class_filter_and_max_det) {
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &m));
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
    hy_model_free(m);
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

HY_TEST_MAIN()
