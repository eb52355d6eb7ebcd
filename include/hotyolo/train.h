/*
 * hotyolo/train.h — training (fine-tuning) a YOLOv8 detector on a YOLO-format dataset, as
 * Ultralytics 8.0.172's `yolo detect train` does it: transfer from pretrained weights (or an
 * architecture from scratch), Ultralytics' default augmentation (mosaic, random affine, HSV,
 * flips), frozen layers and staged unfreezing, validation after each epoch, exact resume
 * (docs/training.md).
 *
 * Example
 *   hy_train_params tp = hy_train_default_params();
 *   tp.model = "yolov8n.pt";
 *   tp.data = "datasets/coco8/data.yaml";
 *   tp.epochs = 10;
 *   tp.imgsz = 320;
 *   tp.batch = 8;
 *   hy_train_result *r;
 *   if (hy_train(&tp, &r) == HY_OK) {
 *       printf("best: %s (epoch %d)\n", hy_train_result_best_path(r), hy_train_result_best_epoch(r));
 *       hy_train_result_free(r);
 *   } else {
 *       fprintf(stderr, "%s\n", hy_last_error());
 *   }
 */
#ifndef HOTYOLO_TRAIN_H
#define HOTYOLO_TRAIN_H

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What hy_train resolved before the first epoch (given to on_start). */
typedef struct hy_train_info {
    const char *save_dir;        /* PROJECT/NAME(N) as created */
    const char *optimizer;       /* resolved: "SGD", "Adam" or "AdamW" */
    double lr, momentum;         /* resolved initial lr and momentum (Adam: beta1) */
    double weight_decay;         /* decay of the weight group (scaled by batch * accumulate / nbs) */
    double warmup_bias_lr;       /* resolved (0 when "auto" picked AdamW) */
    int accumulate;              /* iterations per optimizer step after warm-up: round(nbs / batch) */
    long warmup_iters;           /* warm-up iterations (0: none) */
    int nc;                      /* classes of the trained network (the data.yaml's) */
    size_t train_images, val_images;
    long train_instances, val_instances; /* label rows of the train / val split */
    int batches_per_epoch;       /* ceil(train images / batch); the last one may be smaller */
    size_t n_tensors;            /* state_dict tensors of the network */
    size_t transferred, initialized, ignored; /* what loading MODEL did (Ultralytics' transfer) */
    size_t n_params, n_trainable; /* parameters (floats), those that get updates (freeze) */
    size_t graph_bytes;          /* memory planned for the training graph(s) */
    size_t cache_bytes;          /* decoded images kept in memory (0: decoded every epoch) */
    int start_epoch;             /* 1-based first epoch run now (> 1 when resumed) */
    int epochs, imgsz, batch, freeze; /* as run (a resumed run's come from its record) */
    size_t n_warnings;           /* dataset problems (images skipped): hy_train_info_warning */
    const char *const *warnings; /* (n_warnings) "file[:line]: problem; image skipped" */
    const char *device;          /* what trains: "cpu", "ref" */
    const char *device_requested; /* the device asked for, normalised ("cuda:0", "auto") */
    const char *device_fallback; /* "" or why the run does not train where asked */
} hy_train_info;

/* Progress inside an epoch, after each batch (Ultralytics' progress bar). */
typedef struct hy_train_progress {
    int epoch, epochs;           /* 1-based */
    int batch, n_batches;        /* batches done in this epoch (1-based), per epoch */
    double box_loss, cls_loss, dfl_loss; /* running means over the epoch (Ultralytics tloss) */
    int instances;               /* label rows of the last batch */
    int size;                    /* imgsz */
    double it_s;                 /* batches per second in this epoch */
} hy_train_progress;

/* One row per epoch (Ultralytics' results.csv). */
typedef struct hy_train_epoch {
    int epoch;                   /* 1-based */
    double box_loss, cls_loss, dfl_loss; /* means over the epoch's batches */
    int validated;               /* 0: the metrics below are 0 (val off and not the last epoch) */
    double precision, recall, map50, map50_95;
    double fitness;              /* 0.1 mAP50 + 0.9 mAP50-95 */
    double lr[3];                /* lr of groups 0 (weights), 1 (BN weights), 2 (biases) at the
                                    epoch's last iteration (Ultralytics' lr/pg0..2) */
    double train_s, val_s, seconds; /* wall time: training, validation, whole epoch with saving */
    int saved_best;              /* best.safetensors written at this epoch */
    int has_val_loss;            /* 1: the val losses below were computed */
    double val_box_loss, val_cls_loss, val_dfl_loss; /* on the val split (EMA weights) */
    int freeze;                  /* layers model.0 .. freeze-1 frozen during this epoch */
    int mosaic;                  /* 1: mosaic was on during this epoch */
    long instances;              /* label rows the epoch trained on (after augmentation) */
} hy_train_epoch;

typedef void (*hy_train_start_fn)(const hy_train_info *info, void *user_data);
typedef void (*hy_train_batch_fn)(const hy_train_progress *p, void *user_data);
typedef void (*hy_train_epoch_fn)(const hy_train_epoch *e, void *user_data);

#define HY_TRAIN_MAX_UNFREEZE 16

/* Ultralytics' argument names and defaults (hy_train_default_params). */
typedef struct hy_train_params {
    const char *model;           /* weights to start from (.pt, .safetensors, .onnx), or NULL */
    const char *arch;            /* or an architecture from scratch ("yolov8n", "yolov8s", ...) */
    const char *data;            /* data.yaml (required): train split trained, val validated */
    int epochs;                  /* 100 */
    int imgsz;                   /* 640; a multiple of 32 in [32, 4096] */
    int batch;                   /* 16; in [1, 1024] */
    int freeze;                  /* 0: layers model.0 .. model.freeze-1 get no updates */
    struct { int epoch, freeze; } unfreeze[HY_TRAIN_MAX_UNFREEZE]; /* from 1-based epoch E on, */
    int n_unfreeze;              /* the frozen prefix is `freeze` layers (staged unfreezing) */
    const char *optimizer;       /* "auto" (default), "SGD", "Adam", "AdamW" */
    double lr0, lrf;             /* 0.01, 0.01 */
    double momentum;             /* 0.937 */
    double weight_decay;         /* 5e-4 */
    double warmup_epochs;        /* 3.0 (0: no warm-up) */
    double warmup_momentum;      /* 0.8 */
    double warmup_bias_lr;       /* 0.1 */
    double box, cls, dfl;        /* loss gains 7.5, 0.5, 1.5 */
    int cos_lr;                  /* 0: linear lr decay; 1: cosine */
    int nbs;                     /* nominal batch size, 64 (gradients accumulated to it) */
    double fliplr;               /* probability of a horizontal flip per image, 0.5 */
    double flipud;               /* vertical flip, 0.0 */
    double hsv_h, hsv_s, hsv_v;  /* HSV gains 0.015, 0.7, 0.4 */
    double degrees, translate, scale, shear, perspective; /* random affine: 0, 0.1, 0.5, 0, 0 */
    double mosaic;               /* probability of a mosaic, 1.0 */
    int close_mosaic;            /* no mosaic in the last N epochs, 10 */
    int augment;                 /* 1 (default); 0: letterbox and fliplr only (no mosaic, affine, HSV) */
    int workers;                 /* loader threads, 2 */
    int patience;                /* stop after this many epochs without a better fitness, 50 */
    int save_period;             /* also save weights/epochN.safetensors every N epochs; <= 0 off */
    const char *resume;          /* a run folder or its weights/last.safetensors: continue it
                                    exactly from weights/state.safetensors (the other parameters
                                    come from its record, except threads, device, workers, stop
                                    and the callbacks) */
    volatile int *stop;          /* when set nonzero (e.g. by a SIGINT handler), the current
                                    batch ends, last is saved, and hy_train returns HY_OK with
                                    hy_train_result_stopped() = 1 */
    uint64_t seed;               /* 0: shuffling and flips are drawn from it */
    const char *device;          /* "cpu" (default), "ref" (plain-C reference kernels; slow),
                                    "cuda[:N]" or "auto" (hotyolo/device.h: training runs on cpu
                                    until the CUDA backend has training kernels; a GPU asked
                                    for falls back with a warning) */
    int no_fallback;             /* 1: a GPU that cannot train is an error instead */
    int n_threads;               /* 0 = number of online cores */
    const char *project;         /* NULL = "runs/detect" */
    const char *name;            /* NULL = "train"; an existing PROJECT/NAME gets NAME2, NAME3, ... */
    int exist_ok;                /* 1: reuse an existing PROJECT/NAME */
    int val;                     /* 1: validate after every epoch; 0: after the last only */
    size_t cache_bytes;          /* letterboxed images kept in memory up to this size; 2 GiB */
    hy_train_start_fn on_start;  /* callbacks: may be NULL; called on hy_train's thread */
    hy_train_batch_fn on_batch;
    hy_train_epoch_fn on_epoch;
    void *user_data;
} hy_train_params;
HY_API hy_train_params hy_train_default_params(void);

typedef struct hy_train_result hy_train_result;

/* Trains p->model on p->data and writes PROJECT/NAME/weights/last.safetensors after every
 * epoch and best.safetensors when the fitness improves (EMA weights, unfused, with the
 * training record in __metadata__: docs/training.md). Errors name the file or parameter:
 * HY_ERR_INVALID_ARG (a parameter), HY_ERR_IO (run folder, a file in the way that is not one
 * of ours), dataset and model errors as hy_val_run / hy_model_load, HY_ERR_NOMEM. */
HY_API hy_status hy_train(const hy_train_params *p, hy_train_result **out);

HY_API int hy_train_result_num_epochs(const hy_train_result *r);
HY_API const hy_train_epoch *hy_train_result_epoch(const hy_train_result *r, int i); /* NULL if out of range */
HY_API int hy_train_result_best_epoch(const hy_train_result *r); /* 1-based; 0 when none validated */
HY_API int hy_train_result_stopped(const hy_train_result *r);    /* 1: ended by *stop before the last epoch */
HY_API int hy_train_result_early_stopped(const hy_train_result *r); /* 1: ended by patience */
HY_API const char *hy_train_result_save_dir(const hy_train_result *r);
HY_API const char *hy_train_result_last_path(const hy_train_result *r);
HY_API const char *hy_train_result_best_path(const hy_train_result *r); /* NULL when never written */
HY_API const hy_train_info *hy_train_result_info(const hy_train_result *r);
/* Loading report of MODEL, as hy_model_load_count / _name / _reason. */
HY_API size_t hy_train_result_load_count(const hy_train_result *r, hy_load_item what);
HY_API const char *hy_train_result_load_name(const hy_train_result *r, hy_load_item what, size_t i);
HY_API const char *hy_train_result_load_reason(const hy_train_result *r, hy_load_item what, size_t i);
HY_API void hy_train_result_free(hy_train_result *r);

/* One PNG comparing runs epoch by epoch (bench/finetune.sh, docs/training.md): metric
 * "mAP50" or "mAP50-95" of n series; series[i] is a run folder (the per-epoch results of its
 * weights/last.safetensors record; validated epochs only) or a literal comma-separated list of
 * values for epochs 1, 2, ... (e.g. a reference run's); labels[i] names it in the legend.
 * Errors name the series: HY_ERR_IO / HY_ERR_FORMAT (no readable record), HY_ERR_INVALID_ARG. */
HY_API hy_status hy_train_plot_compare(const char *png, const char *metric, int n, const char *const *labels,
                                const char *const *series);

#ifdef __cplusplus
}
#endif
#endif /* HOTYOLO_TRAIN_H */
