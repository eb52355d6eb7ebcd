/* Detection metrics exactly as Ultralytics 8.0.172 computes them in `yolo val`
 * (ultralytics/utils/metrics.py, models/yolo/detect/val.py, engine/validator.py):
 *
 *   per image   box_iou (float32, eps 1e-7) of GT x predictions; match_predictions at the
 *               IoU thresholds torch.linspace(0.5, 0.95, 10): pairs with IoU >= t and equal
 *               class; each prediction keeps its best-IoU pair; each GT keeps, among those, the
 *               pair with the lowest prediction index (= highest confidence, NMS order).
 *   overall     ap_per_class: predictions sorted by confidence; per class with ground truth
 *               cumulative TP/FP, recall = tpc / n_gt, precision = tpc / (tpc + fpc); AP =
 *               trapezoid over np.interp at 101 recall points of the precision envelope
 *               (sentinels r 0 -> 1, p 1 -> 0, so perfect predictions give 0.995); P and R
 *               interpolated on a 1000-point confidence grid and read at the argmax of the
 *               box-smoothed (f = 0.1) mean F1; mAP50 = mean AP at 0.5, mAP50-95 = mean over
 *               the 10 thresholds; classes without ground truth are left out.
 *   confusion   ConfusionMatrix(conf 0.25 unless --conf differs from 0.001, IoU > 0.45), rows
 *               = predicted class + background, columns = true class + background.
 *
 * numpy semantics (np.interp, np.trapz's pairwise sum, np.linspace) are reproduced so the
 * numbers agree to rounding. */
#ifndef HY_VAL_METRICS_H
#define HY_VAL_METRICS_H

#include "core/core.h"

#define HY_VAL_NIOU  10
#define HY_VAL_NGRID 1000 /* confidence / recall grid of the curves */

/* torch.linspace(0.5, 0.95, 10) in float32 (as its CPU kernel computes it). */
void hy__val_iouv(float iouv[HY_VAL_NIOU]);

/* Ultralytics box_iou of two xyxy boxes in float32: inter / (area_a + area_b - inter + 1e-7). */
float hy__val_box_iou(const float *a, const float *b);

/* match_predictions for one image. det (n, 4) xyxy with class det_cls (n), in NMS order
 * (confidence descending); gt (m, 4) xyxy with gt_cls (m). Writes tp (n, 10) as 0/1. */
hy_status hy__val_match(const float *det, const int *det_cls, size_t n, const float *gt,
                        const int *gt_cls, size_t m, uint8_t *tp);

/* ---- accumulation over a dataset ------------------------------------------------------- */
typedef struct hy__val_stats {
    uint8_t *tp; /* (n, 10) */
    float *conf; /* (n) */
    int *cls;    /* (n) */
    size_t n, cap;
    int nc;        /* class ids are < nc */
    int64_t *nt;   /* (nc) ground-truth instances per class */
    int64_t *nimg; /* (nc) images holding the class */
    int64_t seen;  /* images evaluated */
} hy__val_stats;

hy_status hy__val_stats_init(hy__val_stats *s, int nc);
void hy__val_stats_deinit(hy__val_stats *s);
/* One image: its n predictions (tp (n, 10), conf, cls) and the classes of its m labels. */
hy_status hy__val_stats_add(hy__val_stats *s, const uint8_t *tp, const float *conf, const int *cls,
                            size_t n, const int *gt_cls, size_t m);

/* ap_per_class results; classes are those with ground truth, ascending. */
typedef struct hy__val_ap {
    int n;         /* classes with ground truth */
    int *cls;      /* (n) */
    int64_t *nt;   /* (n) instances */
    double *p, *r; /* (n) at the confidence of the best smoothed mean F1 */
    double *ap;    /* (n, 10) */
    double mp, mr, map50, map;
    int computed;     /* 0 when no prediction is a TP at any threshold: all zero, as Ultralytics */
    double best_conf; /* the grid confidence P and R were read at */
    double *px;       /* (1000) grid: recall for prec, confidence for p/r/f1 curves */
    double *prec;     /* (n, 1000) precision envelope at IoU 0.5 over px (PR curve) */
} hy__val_ap;

hy_status hy__val_ap_compute(const hy__val_stats *s, hy__val_ap *out);
void hy__val_ap_deinit(hy__val_ap *a);

/* compute_ap of one curve (len n points, recall non-decreasing): the 101-point interpolated
 * AP of the precision envelope. */
double hy__val_compute_ap(const double *recall, const double *precision, size_t n);

/* np.interp(x, xp, fp, left, right) for ascending xp (len nxp >= 1), numpy's exact rules. */
void hy__val_interp(const double *x, size_t nx, const double *xp, const double *fp, size_t nxp,
                    double left, double right, double *out);

/* ---- confusion matrix ------------------------------------------------------------------- */
typedef struct hy__val_confusion {
    int nc;
    float conf, iou;
    double *m; /* (nc + 1, nc + 1): m[pred * (nc + 1) + true]; index nc = background */
} hy__val_confusion;

/* conf_arg: the val --conf; 0.25 is used when it is 0.001 (Ultralytics' rule). */
hy_status hy__val_confusion_init(hy__val_confusion *cm, int nc, float conf_arg);
void hy__val_confusion_deinit(hy__val_confusion *cm);
/* One image with ground truth (m > 0): det (n, 4) + conf + cls (n may be 0), gt (m, 4) + cls. */
hy_status hy__val_confusion_add(hy__val_confusion *cm, const float *det, const float *conf,
                                const int *cls, size_t n, const float *gt, const int *gt_cls,
                                size_t m);

/* numpy's default argsort of v (n) into idx: kind="quicksort", the introsort of numpy's
 * npysort (median-of-3 partitions, insertion sort at 16 elements or fewer, heap sort past
 * 2 log2(n) levels), without the AVX-512 dispatch of numpy 1.25+. Equal values come out in
 * that algorithm's order, not file order, as in Ultralytics' and YOLOv5's ar.argsort() (rect
 * batches) and np.argsort(-conf) (ap_per_class): coco128 at batch 32 puts 34 images in
 * batches of another shape than a stable sort would. */
void hy__val_np_argsort(const double *v, size_t *idx, size_t n);

#endif
