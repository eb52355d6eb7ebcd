/* Validation metrics (src/val/metrics.c) and multi-label NMS against hand-computed values and
 * against numpy 1.24 running Ultralytics 8.0.172's ap_per_class / compute_ap / smooth formulas
 * (np.interp, np.trapz, np.linspace, np.convolve) on the same inputs (the "numpy" constants).
 *
 * Ultralytics' AP closes the curve with sentinels (recall 1, precision 0) and integrates the
 * 101-point interpolation with the trapezoid rule, so a perfect class scores 0.995, not 1. */
#include <stdint.h>

#include "hy_test.h"
#include "model/model_impl.h"
#include "val/metrics.h"

// --- helpers -----------------------------------------------------------------------------------

/* One prediction per row: tp flags for the first `hold` thresholds. */
static void fill_tp(uint8_t *tp, const int *hold, size_t n) {
    memset(tp, 0, n * HY_VAL_NIOU);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < hold[i] && j < HY_VAL_NIOU; j++) tp[i * HY_VAL_NIOU + (size_t)j] = 1;
}

static void box(float *b, float x1, float y1, float x2, float y2) {
    b[0] = x1, b[1] = y1, b[2] = x2, b[3] = y2;
}

// --- IoU, thresholds, numpy helpers --------------------------------------------------------------

HY_TEST(iou_thresholds_are_torch_linspace) {
    float v[HY_VAL_NIOU];
    hy__val_iouv(v);
    ASSERT_TRUE(v[0] == 0.5f);
    ASSERT_TRUE(v[9] == 0.95f);
    for (int i = 0; i < HY_VAL_NIOU; i++) ASSERT_NEAR(v[i], 0.5 + 0.05 * i, 1e-7);
}

HY_TEST(box_iou_as_ultralytics) {
    float a[4], b[4];
    box(a, 0, 0, 10, 10);
    box(b, 0, 0, 10, 10);
    ASSERT_TRUE(hy__val_box_iou(a, b) == 1.0f); // 100 / (100 + 1e-7) rounds to 1 in float32
    box(b, 0, 0, 10, 5);
    ASSERT_TRUE(hy__val_box_iou(a, b) == 0.5f); // 50 / 100
    box(b, 20, 20, 30, 30);
    ASSERT_TRUE(hy__val_box_iou(a, b) == 0.0f);
    box(b, 10, 0, 20, 10); // touching edges
    ASSERT_TRUE(hy__val_box_iou(a, b) == 0.0f);
}

HY_TEST(interp_follows_numpy) {
    // numpy: np.interp([0, 0.5, 1, 2, -1], [0, 1, 1], [0, 1, 2], left=-5, right=7)
    //        -> [0, 0.5, 2, 7, -5] (a repeated xp takes the last of the equal values)
    const double x[5] = {0, 0.5, 1, 2, -1}, xp[3] = {0, 1, 1}, fp[3] = {0, 1, 2};
    double out[5];
    hy__val_interp(x, 5, xp, fp, 3, -5, 7, out);
    ASSERT_NEAR(out[0], 0, 0);
    ASSERT_NEAR(out[1], 0.5, 0);
    ASSERT_NEAR(out[2], 2, 0);
    ASSERT_NEAR(out[3], 7, 0);
    ASSERT_NEAR(out[4], -5, 0);
}

// --- compute_ap by hand --------------------------------------------------------------------------

HY_TEST(perfect_predictions_ap_0995) {
    // recall [1/3, 2/3, 1], precision 1: the envelope is 1 up to recall 1, where the sentinel
    // precision 0 sits; trapezoid over 101 points: 99 * 0.01 + 0.01 * (1 + 0) / 2 = 0.995.
    const double r[3] = {1.0 / 3, 2.0 / 3, 1}, p[3] = {1, 1, 1};
    ASSERT_NEAR(hy__val_compute_ap(r, p, 3), 0.995, 1e-12);
}

HY_TEST(false_positive_above_true_positive_ap_04975) {
    // One label; predictions: FP at conf 0.9, then TP at 0.8 -> recall [0, 1], precision
    // [0, 0.5]. mrec [0, 0, 1, 1], envelope [1, 0.5, 0.5, 0]; np.interp gives 0.5 on
    // [0, 0.99] (at 0 the last of the equal recalls) and 0 at 1 ->
    // AP = 99 * 0.01 * 0.5 + 0.01 * (0.5 + 0) / 2 = 0.4975.
    const double r[2] = {0, 1}, p[2] = {0, 0.5};
    ASSERT_NEAR(hy__val_compute_ap(r, p, 2), 0.4975, 1e-12);
}

// --- matching ------------------------------------------------------------------------------------

HY_TEST(duplicate_detection_second_is_fp) {
    float gt[4], det[8];
    const int gc[1] = {0}, dc[2] = {0, 0};
    box(gt, 10, 10, 50, 50);
    box(det, 10, 10, 50, 50);
    box(det + 4, 11, 10, 50, 50);
    uint8_t tp[2 * HY_VAL_NIOU];
    ASSERT_OK(hy__val_match(det, dc, 2, gt, gc, 1, tp));
    for (int j = 0; j < HY_VAL_NIOU; j++) {
        ASSERT_EQ(tp[j], 1);               // the first (higher confidence) takes the label
        ASSERT_EQ(tp[HY_VAL_NIOU + j], 0); // the duplicate is a false positive at every IoU
    }
}

HY_TEST(wrong_class_never_matches) {
    float gt[4], det[4];
    const int gc[1] = {0}, dc[1] = {1};
    box(gt, 10, 10, 50, 50);
    box(det, 10, 10, 50, 50);
    uint8_t tp[HY_VAL_NIOU];
    ASSERT_OK(hy__val_match(det, dc, 1, gt, gc, 1, tp));
    for (int j = 0; j < HY_VAL_NIOU; j++) ASSERT_EQ(tp[j], 0);
}

HY_TEST(crowd_unique_matching_as_numpy_code) {
    // Boxes span y 0..10; x intervals. g0 [0, 10], g1 [2, 12] (IoU 0.667 with each other).
    // d0 [0, 10]: IoU 1 with g0, 0.667 with g1.  d1 [0.8, 10.8]: 0.852 with g0, 0.786 with g1.
    // Each prediction keeps its best label (both g0); g0 keeps the lowest prediction index
    // (d0). Ultralytics does not hand d1 over to g1: d1 is a false positive at every IoU.
    float gt[8], det[8];
    const int gc[2] = {0, 0}, dc[2] = {0, 0};
    box(gt, 0, 0, 10, 10);
    box(gt + 4, 2, 0, 12, 10);
    box(det, 0, 0, 10, 10);
    box(det + 4, 0.8f, 0, 10.8f, 10);
    uint8_t tp[2 * HY_VAL_NIOU];
    ASSERT_OK(hy__val_match(det, dc, 2, gt, gc, 2, tp));
    for (int j = 0; j < HY_VAL_NIOU; j++) {
        ASSERT_EQ(tp[j], 1);
        ASSERT_EQ(tp[HY_VAL_NIOU + j], 0);
    }
}

HY_TEST(lowest_prediction_index_wins_per_threshold) {
    // g0 [0, 10]; d0 (higher confidence) [0.8, 10.8] IoU 0.852, d1 [0, 10] IoU 1.
    // IoU 0.50..0.85: both qualify, g0 goes to d0 (lower index, not higher IoU).
    // IoU 0.90, 0.95: only d1 qualifies.
    float gt[4], det[8];
    const int gc[1] = {0}, dc[2] = {0, 0};
    box(gt, 0, 0, 10, 10);
    box(det, 0.8f, 0, 10.8f, 10);
    box(det + 4, 0, 0, 10, 10);
    uint8_t tp[2 * HY_VAL_NIOU];
    ASSERT_OK(hy__val_match(det, dc, 2, gt, gc, 1, tp));
    for (int j = 0; j < HY_VAL_NIOU; j++) {
        ASSERT_EQ(tp[j], j < 8);
        ASSERT_EQ(tp[HY_VAL_NIOU + j], j >= 8);
    }
}

HY_TEST(iou_threshold_boundary_is_inclusive) {
    // Ultralytics compares iou >= threshold (its comment says '>', the code says '>='):
    // IoU exactly 0.5 is a TP at 0.50 and not at 0.55; 0.499 is not a TP at all.
    float gt[4], det[4];
    const int gc[1] = {0}, dc[1] = {0};
    uint8_t tp[HY_VAL_NIOU];
    box(gt, 0, 0, 10, 10);
    box(det, 0, 0, 10, 5);
    ASSERT_TRUE(hy__val_box_iou(gt, det) == 0.5f);
    ASSERT_OK(hy__val_match(det, dc, 1, gt, gc, 1, tp));
    ASSERT_EQ(tp[0], 1);
    for (int j = 1; j < HY_VAL_NIOU; j++) ASSERT_EQ(tp[j], 0);
    box(det, 0, 0, 10, 4.99f);
    ASSERT_OK(hy__val_match(det, dc, 1, gt, gc, 1, tp));
    for (int j = 0; j < HY_VAL_NIOU; j++) ASSERT_EQ(tp[j], 0);
}

// --- ap_per_class --------------------------------------------------------------------------------

HY_TEST(ap_perfect_no_predictions_and_class_without_gt) {
    hy__val_stats s;
    ASSERT_OK(hy__val_stats_init(&s, 8));
    // image 1: class 0 x3 found perfectly; class 3 has a label but no prediction; class 5 is
    // predicted with no label (left out of the mean)
    const int hold[4] = {10, 10, 10, 0};
    const float conf[4] = {0.9f, 0.8f, 0.7f, 0.95f};
    const int cls[4] = {0, 0, 0, 5};
    const int gcls[4] = {0, 0, 0, 3};
    uint8_t tp[4 * HY_VAL_NIOU];
    fill_tp(tp, hold, 4);
    ASSERT_OK(hy__val_stats_add(&s, tp, conf, cls, 4, gcls, 4));
    hy__val_ap a;
    ASSERT_OK(hy__val_ap_compute(&s, &a));
    ASSERT_TRUE(a.computed);
    ASSERT_EQ(a.n, 2); // classes 0 and 3
    ASSERT_EQ(a.cls[0], 0);
    ASSERT_EQ(a.cls[1], 3);
    for (int j = 0; j < HY_VAL_NIOU; j++) {
        ASSERT_NEAR(a.ap[j], 0.995, 1e-12);
        ASSERT_NEAR(a.ap[HY_VAL_NIOU + j], 0, 0);
    }
    ASSERT_NEAR(a.p[0], 1, 1e-12);
    ASSERT_NEAR(a.r[0], 1, 1e-12);
    ASSERT_NEAR(a.p[1], 0, 0);
    ASSERT_NEAR(a.map50, 0.4975, 1e-12);
    ASSERT_NEAR(a.map, 0.4975, 1e-12);
    hy__val_ap_deinit(&a);
    hy__val_stats_deinit(&s);
}

HY_TEST(no_true_positive_gives_zero) {
    hy__val_stats s;
    ASSERT_OK(hy__val_stats_init(&s, 2));
    const int hold[1] = {0};
    const float conf[1] = {0.9f};
    const int cls[1] = {1}, gcls[2] = {0, 0};
    uint8_t tp[HY_VAL_NIOU];
    fill_tp(tp, hold, 1);
    ASSERT_OK(hy__val_stats_add(&s, tp, conf, cls, 1, gcls, 2));
    ASSERT_OK(hy__val_stats_add(&s, NULL, NULL, NULL, 0, gcls, 1)); // no predictions at all
    ASSERT_EQ(s.seen, 2);
    ASSERT_EQ(s.nt[0], 3);
    ASSERT_EQ(s.nimg[0], 2);
    hy__val_ap a;
    ASSERT_OK(hy__val_ap_compute(&s, &a));
    ASSERT_FALSE(a.computed); // Ultralytics skips ap_per_class: every metric 0
    ASSERT_NEAR(a.map50 + a.map + a.mp + a.mr, 0, 0);
    hy__val_ap_deinit(&a);
    hy__val_stats_deinit(&s);
}

HY_TEST(ap_per_class_matches_numpy) {
    // 14 predictions: class 0 (10), class 1 (3), class 5 (1, no labels); labels: class 0 x4,
    // class 1 x2, class 2 x3 (never predicted). hold = thresholds (from 0.5 up) at which a
    // prediction is a TP. numpy (Ultralytics formulas, stable argsort):
    //   best grid index 339; p = [0.46629962764623173, 0.6619498354266635, 0]
    //   r = [1, 0.9858495062799909, 0]; AP50 = [0.7628571428571426, 0.6633333333333333, 0]
    //   AP50-95 = [0.46008571428571426, 0.3983333333333333, 0]
    //   mP 0.37608315435763173, mR 0.6619498354266636, mAP50 0.4753968253968253,
    //   mAP50-95 0.2861396825396825
    const float conf[14] = {0.95f, 0.9f, 0.85f, 0.8f,  0.7f,  0.6f,  0.5f,
                            0.4f,  0.3f, 0.2f,  0.92f, 0.66f, 0.33f, 0.8f};
    const int cls[14] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 5};
    const int hold[14] = {10, 0, 6, 3, 0, 0, 1, 0, 0, 0, 0, 8, 4, 0};
    const int gcls[9] = {0, 0, 0, 0, 1, 1, 2, 2, 2};
    uint8_t tp[14 * HY_VAL_NIOU];
    fill_tp(tp, hold, 14);
    hy__val_stats s;
    ASSERT_OK(hy__val_stats_init(&s, 80));
    // split over two images: the order of accumulation must not matter
    ASSERT_OK(hy__val_stats_add(&s, tp, conf, cls, 7, gcls, 5));
    ASSERT_OK(hy__val_stats_add(&s, tp + 7 * HY_VAL_NIOU, conf + 7, cls + 7, 7, gcls + 5, 4));
    hy__val_ap a;
    ASSERT_OK(hy__val_ap_compute(&s, &a));
    ASSERT_EQ(a.n, 3);
    const double p[3] = {0.46629962764623173, 0.6619498354266635, 0};
    const double r[3] = {1, 0.9858495062799909, 0};
    const double ap50[3] = {0.7628571428571426, 0.6633333333333333, 0};
    const double ap[3] = {0.46008571428571426, 0.3983333333333333, 0};
    for (int i = 0; i < 3; i++) {
        double m = 0;
        for (int j = 0; j < HY_VAL_NIOU; j++) m += a.ap[i * HY_VAL_NIOU + j];
        ASSERT_NEAR(a.p[i], p[i], 1e-12);
        ASSERT_NEAR(a.r[i], r[i], 1e-12);
        ASSERT_NEAR(a.ap[i * HY_VAL_NIOU], ap50[i], 1e-12);
        ASSERT_NEAR(m / HY_VAL_NIOU, ap[i], 1e-12);
    }
    ASSERT_NEAR(a.best_conf, 339.0 / 999.0, 1e-12);
    ASSERT_NEAR(a.mp, 0.37608315435763173, 1e-12);
    ASSERT_NEAR(a.mr, 0.6619498354266636, 1e-12);
    ASSERT_NEAR(a.map50, 0.4753968253968253, 1e-12);
    ASSERT_NEAR(a.map, 0.2861396825396825, 1e-12);
    hy__val_ap_deinit(&a);
    hy__val_stats_deinit(&s);
}

// --- confusion matrix ----------------------------------------------------------------------------

HY_TEST(confusion_matrix_as_ultralytics) {
    hy__val_confusion cm;
    ASSERT_OK(hy__val_confusion_init(&cm, 3, 0.001f)); // --conf 0.001 -> matrix conf 0.25
    ASSERT_NEAR(cm.conf, 0.25, 0);
    const int W = 4, BG = 3;
    float gt[8], det[12];
    const int gc[2] = {0, 1};
    box(gt, 0, 0, 10, 10);
    box(gt + 4, 50, 50, 60, 60);
    // det 0: class 2 on label 0 (confusion); det 1: class 1 far away (background FP);
    // det 2: class 0 on label 0 but conf 0.2 (below 0.25: ignored). Label 1: missed.
    box(det, 0, 0, 10, 10);
    box(det + 4, 100, 100, 110, 110);
    box(det + 8, 0, 0, 10, 10);
    const float conf[3] = {0.9f, 0.8f, 0.2f};
    const int dc[3] = {2, 1, 0};
    ASSERT_OK(hy__val_confusion_add(&cm, det, conf, dc, 3, gt, gc, 2));
    ASSERT_NEAR(cm.m[2 * W + 0], 1, 0);  // predicted 2, true 0
    ASSERT_NEAR(cm.m[BG * W + 1], 1, 0); // true 1 missed
    ASSERT_NEAR(cm.m[1 * W + BG], 1, 0); // predicted 1 on background
    ASSERT_NEAR(cm.m[0 * W + 0], 0, 0);
    // an image whose only detection misses: no match at all, so (as Ultralytics 8.0.x) the
    // unmatched detection is not counted, only the missed label
    ASSERT_OK(hy__val_confusion_add(&cm, det + 4, conf, dc, 1, gt, gc, 1));
    ASSERT_NEAR(cm.m[BG * W + 0], 1, 0);
    ASSERT_NEAR(cm.m[2 * W + BG], 0, 0);
    double total = 0;
    for (int i = 0; i < W * W; i++) total += cm.m[i];
    ASSERT_NEAR(total, 4, 0);
    hy__val_confusion_deinit(&cm);
}

// --- multi-label NMS -----------------------------------------------------------------------------

HY_TEST(multilabel_nms_as_ultralytics) {
    // 4 anchors, 2 classes; out is (4 + nc, A): cx, cy, w, h rows then class scores.
    enum { A = 4, NC = 2 };
    float out[(4 + NC) * A] = {
        50,   52,      300,    150,  // cx
        50,   50,      300,    150,  // cy
        20,   20,      20,     20,   // w
        20,   20,      20,     20,   // h
        0.9f, 0.85f,   0.001f, 0.2f, // class 0
        0.8f, 0.0005f, 0.3f,   0.4f, // class 1
    };
    // candidates > 0.001 (0.001 itself is out): a0c0 .9, a0c1 .8, a1c0 .85, a2c1 .3, a3c0 .2,
    // a3c1 .4. a1c0 overlaps a0c0 by 360/440 = 0.82 > 0.7: suppressed. a0c1 is kept (other class).
    hy_detect_params p = hy_detect_default_params();
    p.conf = 0.001f;
    p.iou = 0.7f;
    hy__nms_buf b;
    memset(&b, 0, sizeof b);
    hy_detection d[8];
    size_t n = 0;
    ASSERT_OK(hy__postprocess_multilabel(out, NC, A, 0, &p, &b, d, 8, &n));
    ASSERT_EQ(n, 5);
    const float conf[5] = {0.9f, 0.8f, 0.4f, 0.3f, 0.2f};
    const int cls[5] = {0, 1, 1, 1, 0};
    for (size_t i = 0; i < n; i++) {
        ASSERT_NEAR(d[i].confidence, conf[i], 0);
        ASSERT_EQ(d[i].class_id, cls[i]);
    }
    ASSERT_NEAR(d[0].x1, 40, 0);
    ASSERT_NEAR(d[0].y2, 60, 0);
    // max_det keeps the highest scores
    ASSERT_OK(hy__postprocess_multilabel(out, NC, A, 0, &p, &b, d, 2, &n));
    ASSERT_EQ(n, 2);
    ASSERT_NEAR(d[1].confidence, 0.8f, 0);
    // agnostic: a0c1 now overlaps a0c0 (same box): suppressed
    p.agnostic_nms = 1;
    ASSERT_OK(hy__postprocess_multilabel(out, NC, A, 0, &p, &b, d, 8, &n));
    ASSERT_EQ(n, 3);
    ASSERT_NEAR(d[1].confidence, 0.4f, 0);
    hy__nms_buf_free(&b);
    hy__nms_buf_free(NULL);
}

HY_TEST(multilabel_nms_objectness_as_yolov5) {
    // YOLOv5 v7.0 non_max_suppression(multi_label=True): rows (A, 5 + nc) = x y w h obj cls...;
    // a row needs obj > conf, then its scores are obj * cls, each > conf a candidate.
    enum { A = 4, NC = 2 };
    float out[A * (5 + NC)] = {
        50,  50, 20, 20, 0.5f,   0.9f, 0.8f,  // scores .45 .40
        52,  50, 20, 20, 0.5f,   0.8f, 0.01f, // .40 .005; overlaps row 0 by 0.82: class 0 suppressed
        300, 150, 20, 20, 0.2f,  1.0f, 0.1f,  // obj .2 > conf .3? no: row dropped whatever the classes
        400, 150, 20, 20, 0.9f,  0.3f, 0.35f, // .27 (< .3, out), .315
    };
    hy_detect_params p = hy_detect_default_params();
    p.conf = 0.3f;
    p.iou = 0.6f;
    hy__nms_buf b;
    memset(&b, 0, sizeof b);
    hy_detection d[8];
    size_t n = 0;
    ASSERT_OK(hy__postprocess_multilabel(out, NC, A, 1, &p, &b, d, 8, &n));
    ASSERT_EQ(n, 3);
    const float conf[3] = {0.5f * 0.9f, 0.5f * 0.8f, 0.9f * 0.35f};
    const int cls[3] = {0, 1, 1};
    for (size_t i = 0; i < n; i++) {
        ASSERT_NEAR(d[i].confidence, conf[i], 0);
        ASSERT_EQ(d[i].class_id, cls[i]);
    }
    ASSERT_NEAR(d[2].x1, 390, 0);
    ASSERT_NEAR(d[2].y2, 160, 0);
    hy__nms_buf_free(&b);
}

HY_TEST_MAIN()
