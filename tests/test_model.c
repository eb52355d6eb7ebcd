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

HY_TEST_MAIN()
