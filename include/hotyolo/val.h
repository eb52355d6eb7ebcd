/*
 * hotyolo/val.h — dataset evaluation: precision, recall, mAP50 and mAP50-95 of a model on a
 * YOLO-format dataset (data.yaml + images/ + labels/), computed as Ultralytics 8.0.172's
 * `yolo val` computes them (docs/val.md says how, and where the numbers can differ).
 *
 * Example
 *   hy_model *m;
 *   hy_model_load("yolov8n.pt", NULL, &m);
 *   hy_val_params vp = hy_val_default_params();
 *   vp.data = "datasets/coco128/data.yaml";
 *   vp.batch = 8;
 *   hy_val_result *r;
 *   if (hy_val_run(m, &vp, &r) == HY_OK) {
 *       const hy_val_metrics *all = hy_val_result_all(r);
 *       printf("mAP50 %.3f  mAP50-95 %.3f\n", all->map50, all->map50_95);
 *       hy_val_result_free(r);
 *   } else {
 *       fprintf(stderr, "%s\n", hy_last_error());
 *   }
 *   hy_model_free(m);
 */
#ifndef HOTYOLO_VAL_H
#define HOTYOLO_VAL_H

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called on the calling thread of hy_val_run after each image (done of total). */
typedef void (*hy_val_progress_fn)(size_t done, size_t total, void *user_data);

typedef struct hy_val_params {
    const char *data;            /* data.yaml path (required) */
    const char *split;           /* "val" (NULL = "val"), "train" or "test" */
    int imgsz;                   /* long side, multiple of 32; default 640 */
    int batch;                   /* default 16. Images per batch: each batch gets one "rect"
                                letterbox shape (images sorted by aspect ratio), which
                                Ultralytics' numbers depend on, and runs as one forward pass
                                (passes of at most 32 images when batch is larger) */
    float conf;                  /* NMS confidence threshold, default 0.001 */
    float iou;                   /* NMS IoU threshold, default 0.7 */
    int max_det;                 /* detections kept per image, default 300 */
    const char *plots_dir;       /* existing folder for PR_curve.png, confusion_matrix.png and
                                confusion_matrix_normalized.png; NULL = no plots */
    hy_val_progress_fn progress; /* may be NULL */
    void *progress_user_data;
} hy_val_params;
HY_API hy_val_params hy_val_default_params(void);
/* The defaults of m's family's own val tool: YOLOv8 as hy_val_default_params(); YOLOv5 its
 * val.py's (batch 32, conf 0.001, iou 0.6, max_det 300). */
HY_API hy_val_params hy_val_model_params(const hy_model *m);

/* One row of the results table. */
typedef struct hy_val_metrics {
    int class_id;          /* -1 for the "all" row */
    const char *name;      /* "all" or the class name; owned by the result */
    int images;            /* images evaluated (Ultralytics 8.0.172 prints this in every row) */
    int images_with_class; /* images with at least one label of the class (all: with labels) */
    int instances;         /* ground-truth boxes */
    double precision, recall, map50, map50_95;
} hy_val_metrics;

/* Mean wall time per image, milliseconds. preprocess (decode, resize, letterbox) runs on a
 * worker thread, overlapped with inference. */
typedef struct hy_val_speed {
    double preprocess_ms, inference_ms, postprocess_ms;
} hy_val_speed;

typedef struct hy_val_result hy_val_result;

/* Evaluates m (borrowed; runs it on a context of its own, with the model's device and
 * threads, so several evaluations may share one model) on the dataset. Dataset problems
 * of single images (unreadable or undecodable image, malformed label line, class id out of
 * range, coordinates outside [0, 1]) skip that image and are listed as warnings; errors are
 * returned for what stops the run (unreadable or malformed data.yaml, a missing split folder,
 * no usable image, an unwritable plots folder, out of memory). A split without any label (no
 * label file, or only empty ones) is evaluated (every metric 0, as Ultralytics) and its first
 * warning says so, naming the label path looked for. */
HY_API hy_status hy_val_run(const hy_model *m, const hy_val_params *p, hy_val_result **out);

/* The "all" row; never NULL for a valid result. */
HY_API const hy_val_metrics *hy_val_result_all(const hy_val_result *r);
/* Rows of the classes with ground truth, by class id (Ultralytics prints these). */
HY_API size_t hy_val_result_num_classes(const hy_val_result *r);
HY_API const hy_val_metrics *hy_val_result_class(const hy_val_result *r,
                                          size_t i); /* NULL if out of range */
HY_API hy_val_speed hy_val_result_speed(const hy_val_result *r);
/* Skipped images and other dataset notes, "file[:line]: problem; image skipped". */
HY_API size_t hy_val_result_num_warnings(const hy_val_result *r);
HY_API const char *hy_val_result_warning(const hy_val_result *r, size_t i);
/* The whole result as JSON (parameters, all, classes, speed, warnings); free with hy_free(). */
HY_API hy_status hy_val_result_json(const hy_val_result *r, char **json_out);
HY_API void hy_val_result_free(hy_val_result *r);

#ifdef __cplusplus
}
#endif
#endif /* HOTYOLO_VAL_H */
