/* End to end: hy_val_run with weights/yolov8n.pt on datasets/coco128 (imgsz 640, batch 8, conf
 * 0.001, iou 0.7) against what Ultralytics 8.0.172 printed for the same files
 * (shared/assets/MANIFEST.md, reference/): P 0.666, R 0.496, mAP50 0.595, mAP50-95 0.435 over
 * 128 images and 929 instances.
 *
 * Under sanitizers (HY_TEST_SANITIZED=1, set by `make test-asan`) the network is ~5x slower, so
 * the run covers the first 16 images only (a .txt image list) and checks the counts against the
 * label files and that the metrics are sane and reproducible. */
#include <stdlib.h>

#include "hotyolo/val.h"
#include "hy_test.h"

static int sanitized(void) {
    const char *s = getenv("HY_TEST_SANITIZED");
    return s && *s && strcmp(s, "0") != 0;
}

static void print_result(const hy_val_result *r) {
    const hy_val_metrics *a = hy_val_result_all(r);
    hy_val_speed sp = hy_val_result_speed(r);
    printf("  all: images %d instances %d  P %.4f R %.4f mAP50 %.4f mAP50-95 %.4f\n", a->images,
           a->instances, a->precision, a->recall, a->map50, a->map50_95);
    printf("  speed per image: %.1f ms preprocess, %.1f ms inference, %.1f ms postprocess\n",
           sp.preprocess_ms, sp.inference_ms, sp.postprocess_ms);
}

HY_TEST(coco128_matches_ultralytics) {
    if (sanitized()) HY_SKIP("under sanitizers (see coco128_subset)");
    hy_model *m;
    hy_model_params mp = hy_model_default_params();
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &m));
    hy_val_params vp = hy_val_default_params();
    vp.data = hy_test_asset("datasets/coco128/data.yaml");
    vp.batch = 8;
    hy_val_result *r;
    ASSERT_OK(hy_val_run(m, &vp, &r));
    print_result(r);
    const hy_val_metrics *a = hy_val_result_all(r);
    ASSERT_EQ(a->images, 128);
    ASSERT_EQ(a->instances, 929);
    ASSERT_NEAR(a->map50, 0.595, 0.01);
    ASSERT_NEAR(a->map50_95, 0.435, 0.01);
    ASSERT_NEAR(a->precision, 0.666, 0.02);
    ASSERT_NEAR(a->recall, 0.496, 0.02);
    ASSERT_EQ(hy_val_result_num_classes(r), 71); // 929 boxes over 71 classes (MANIFEST.md)
    int inst = 0;
    for (size_t i = 0; i < hy_val_result_num_classes(r); i++)
        inst += hy_val_result_class(r, i)->instances;
    ASSERT_EQ(inst, 929);
    const hy_val_metrics *person = hy_val_result_class(r, 0);
    ASSERT_STREQ(person->name, "person");
    ASSERT_EQ(person->class_id, 0);
    ASSERT_EQ(hy_val_result_num_warnings(r), 0);
    hy_val_result_free(r);
    hy_model_free(m);
}

/* Label lines of an image of coco128, read here independently of the library. */
static int count_labels(const char *image_rel) {
    char rel[512];
    snprintf(rel, sizeof rel, "datasets/coco128/labels/train2017/%.12s.txt", image_rel);
    FILE *f = fopen(hy_test_asset(rel), "r");
    if (!f) return 0;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n' && last != '\n') n++;
        last = c;
    }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

HY_TEST(coco128_subset) {
    if (!sanitized()) printf("  (the subset run; the full run is coco128_matches_ultralytics)\n");
    // the first 16 coco128 images by name, in a .txt list next to a data.yaml in a temp folder
    static const char *ids[16] = {"000000000009", "000000000025", "000000000030", "000000000034",
                                  "000000000036", "000000000042", "000000000049", "000000000061",
                                  "000000000064", "000000000071", "000000000072", "000000000073",
                                  "000000000074", "000000000077", "000000000078", "000000000081"};
    FILE *f = fopen(hy_test_tmp("coco16.txt"), "w");
    ASSERT_TRUE(f != NULL);
    int expected = 0;
    for (int i = 0; i < 16; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "datasets/coco128/images/train2017/%s.jpg", ids[i]);
        fprintf(f, "%s\n", hy_test_asset(rel));
        expected += count_labels(ids[i]);
    }
    ASSERT_EQ(fclose(f), 0);
    f = fopen(hy_test_tmp("coco16.yaml"), "w");
    ASSERT_TRUE(f != NULL);
    fprintf(f, "val: %s\nnames:\n", hy_test_tmp("coco16.txt"));
    // names from coco.names (80 lines)
    FILE *nf = fopen(hy_test_asset("coco.names"), "r");
    ASSERT_TRUE(nf != NULL);
    char line[256];
    while (fgets(line, sizeof line, nf)) {
        line[strcspn(line, "\r\n")] = '\0';
        fprintf(f, "  - \"%s\"\n", line);
    }
    fclose(nf);
    ASSERT_EQ(fclose(f), 0);

    hy_model *m;
    hy_model_params mp = hy_model_default_params();
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &m));
    hy_val_params vp = hy_val_default_params();
    vp.data = hy_test_tmp("coco16.yaml");
    vp.batch = 8;
    hy_val_result *r1, *r2;
    ASSERT_OK(hy_val_run(m, &vp, &r1));
    print_result(r1);
    const hy_val_metrics *a = hy_val_result_all(r1);
    ASSERT_EQ(a->images, 16);
    ASSERT_EQ(a->instances, expected);
    ASSERT_TRUE(a->map50 > 0.3 && a->map50 < 1.0);
    ASSERT_TRUE(a->map50_95 > 0.2 && a->map50_95 < a->map50);
    // the worker thread and the model's threads change nothing: a second run is identical
    ASSERT_OK(hy_val_run(m, &vp, &r2));
    const hy_val_metrics *b = hy_val_result_all(r2);
    ASSERT_NEAR(a->map50, b->map50, 0);
    ASSERT_NEAR(a->map50_95, b->map50_95, 0);
    ASSERT_NEAR(a->precision, b->precision, 0);
    hy_val_result_free(r1);
    hy_val_result_free(r2);
    hy_model_free(m);
    remove(hy_test_tmp("coco16.txt"));
    remove(hy_test_tmp("coco16.yaml"));
}

HY_TEST_MAIN()
