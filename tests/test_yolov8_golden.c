/* Golden test: the raw network output on reference/bus_letterbox_640_input.npy must match
 * what Ultralytics computes (reference/..._output0.npy): box rows (xywh, input pixels) within
 * 0.01, score rows within 1e-3. Covers n (real weights) and s (random weights: width/depth
 * scaling). */
#include "hy_test.h"

static void golden(const char *weights, const char *ref_out, int n_threads) {
    long long shx[8], shy[8];
    int ndx, ndy;
    size_t nx, ny;
    float *x = hy_test_npy_load(hy_test_asset("reference/bus_letterbox_640_input.npy"), shx, &ndx, &nx);
    float *ref = hy_test_npy_load(hy_test_asset(ref_out), shy, &ndy, &ny);
    ASSERT_TRUE(x && ref);
    ASSERT_EQ(ndx, 4);
    ASSERT_EQ(shx[2], 640);
    ASSERT_EQ(ndy, 3);
    ASSERT_EQ(shy[1], 84);
    ASSERT_EQ(shy[2], 8400);
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = n_threads;
    hy_context_params cp = hy_context_default_params();
    hy_context *m = NULL;
    ASSERT_OK(hy_context_load(hy_test_asset(weights), &mp, &cp, &m));
    float *y = malloc(ny * sizeof(float));
    ASSERT_OK(hy_model_forward(m, x, 1, 640, 640, y, ny));
    double box_err = 0, score_err = 0;
    size_t A = (size_t)shy[2];
    for (size_t r = 0; r < 84; r++)
        for (size_t a = 0; a < A; a++) {
            double e = fabs((double)y[r * A + a] - (double)ref[r * A + a]);
            if (r < 4 && e > box_err) box_err = e;
            if (r >= 4 && e > score_err) score_err = e;
        }
    printf("  %s (%d threads): max abs error boxes %.6f px, scores %.7f\n", weights, hy_context_num_threads(m), box_err,
           score_err);
    /* the same input twice gives the same output (no state leaks between runs) */
    float *y2 = malloc(ny * sizeof(float));
    ASSERT_OK(hy_model_forward(m, x, 1, 640, 640, y2, ny));
    int same = memcmp(y, y2, ny * sizeof(float)) == 0;
    free(y2);
    free(y);
    free(x);
    free(ref);
    hy_context_free(m);
    ASSERT_TRUE(box_err <= 0.01);
    ASSERT_TRUE(score_err <= 1e-3);
    ASSERT_TRUE(same);
}

HY_TEST(yolov8n_bus_output0) { golden("weights/yolov8n.pt", "reference/bus_letterbox_640_output0.npy", 0); }
HY_TEST(yolov8n_bus_output0_one_thread) { golden("weights/yolov8n.pt", "reference/bus_letterbox_640_output0.npy", 1); }
HY_TEST(yolov8s_random_bus_output0) {
    golden("weights/yolov8s_random.pt", "reference/yolov8s_random_bus_640_output0.npy", 0);
}

HY_TEST_MAIN()
