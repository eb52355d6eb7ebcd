/* hy_model internals (shared by model.c, postprocess.c and tests). */
#ifndef HY_MODEL_IMPL_H
#define HY_MODEL_IMPL_H

#include <pthread.h>

#include "backend/backend_impl.h"
#include "io/pt.h"
#include "io/weights.h"
#include "model/arch.h"

#define HY_MODEL_MAX_PLANS 8

typedef struct hy__model_plan {
    int n, h, w;            /* input (n, 3, h, w) */
    int pinned;             /* prepared: kept, warmed by hy_model_rewarm */
    hy__graph *g;
    hy__plan *plan;
    uint64_t last_used;
} hy__model_plan;

/* One candidate box before NMS (input-pixel xyxy). */
typedef struct hy__cand {
    float x1, y1, x2, y2, conf;
    int cls;
} hy__cand;

typedef struct hy__load_entry {
    char *name, *reason;
} hy__load_entry;
typedef struct hy__load_list {
    hy__load_entry *items;
    size_t n, cap;
} hy__load_list;
typedef struct hy__load_report {
    hy__load_list lists[HY_LOAD_ITEM_COUNT];
    size_t n_tensors;
} hy__load_report;
void hy__load_report_free(hy__load_report *r);

/* Immutable after load: read concurrently by every context. */
struct hy_model {
    hy__wformat format;
    struct hy__wfile *wfile; /* weights file used in place (mapped), or NULL */
    hy__load_report report;
    hy__arch_cfg cfg;
    const struct hy__backend_i *bi; /* the device its weights are prepared for */
    hy__device_choice dev;          /* what was asked, what runs, why they differ */
    hy__bweights *bw;               /* those weights, shared by every context's backend */
    char **names;
    int n_names;
    int imgsz;
    int n_threads;                  /* as asked (0 = cores): contexts' default */
    int lock_memory;
    char *path;
    double load_ms;
};

/* Everything one run mutates; calls on one context are serialised by mu. */
struct hy_context {
    const hy_model *m;
    hy_model *owned;        /* hy_context_load: freed with the context */
    hy__threadpool *tp;     /* kernels (CPU backend) and host work (letterbox) */
    hy__backend *be;
    hy__model_plan plans[HY_MODEL_MAX_PLANS];
    uint64_t clock;
    /* detect scratch, grown only when a larger image/shape arrives */
    uint8_t *lb_scratch;
    size_t lb_scratch_size;
    float *stage;           /* (stage_cap) input / output staging when the backend has no host pointer */
    size_t stage_cap;
    float *pp_best;         /* (A) best class score per anchor */
    int *pp_arg;            /* (A) its class */
    hy__cand *cands;        /* (A) */
    int *keep;              /* (A) */
    size_t pp_cap;
    pthread_mutex_t mu;     /* one call at a time per context */
    hy_engine_stats stats;
    int preparing;          /* plans made now are not cold events */
};

/* Builds a model from a weights source: resolution (strict / transfer), BN folding,
 * weights handed to the backend. `what` names the file in errors. */
struct hy__wfile;
/* keep (may be NULL): the open file behind src; the model takes it (sets *keep = NULL)
 * when it uses the file's memory in place. */
hy_status hy__model_from_source(const hy__wsource *src, const char *what, const hy_model_params *p,
                                struct hy__wfile **keep, hy_model **out);
/* Network tensors resolved against a source, in spec order (fused or unfused list). */
typedef struct hy__resolved {
    const hy__tensor_spec *spec;
    int n;
    hy__wtensor *t;     /* (n) */
    float *init;        /* storage of initialised tensors (transfer) */
    int cursor;
} hy__resolved;
hy_status hy__model_resolve(const hy__model_spec *spec, const hy__wsource *src, const hy_model_params *p,
                            const char *what, int nc, hy__resolved *out, hy__load_report *rep);
void hy__resolved_free(hy__resolved *r);
/* Folded conv weight (cout, cin, k, k) and bias (cout) as float32. */
hy_status hy__fold_conv(hy__resolved *r, int fused, const hy__conv_spec *c, float *w, float *bias, const char *what);
hy_status hy__model_check_params(const hy_model_params *p);
hy_status hy__model_from_pt(const hy__pt_file *pt, const char *what, const hy_model_params *p, hy_model **out);
/* Plan for input (n, 3, h, w): cached, built on first use. */
hy_status hy__model_plan_get(hy_context *c, int n, int h, int w, hy__model_plan **out);

/* NMS as Ultralytics non_max_suppression (class-aware unless agnostic): out (4 + nc, A), or
 * with objectness (YOLOv5) (A, 5 + nc) rows, A predictions either way. Writes kept
 * detections (input-pixel xyxy) to dets, returns count. */
size_t hy__postprocess(hy_context *ctx, const float *out, int nc, int A, int objectness, const hy_detect_params *p,
                       hy_detection *dets, size_t max_dets);
/* Sets a result's decode time (callers that decoded the image themselves: the server). */
void hy__result_set_decode_ms(hy_result *r, double ms);
/* IoU of two xyxy boxes (torchvision box_iou). */
float hy__box_iou(const float *a, const float *b);

/* Growable scratch of hy__postprocess_multilabel (caller-owned; reused across calls). */
typedef struct hy__nms_buf {
    hy__cand *cands;  /* (cap) candidates, anchor-major then class */
    void *order;      /* (cap) sort keys */
    float *obox;      /* (cap, 5) class-offset box x1 y1 x2 y2 + its area (torchvision's view) */
    size_t cap;
    int *head;        /* (n_head) last kept detection per class, -1 = none */
    int n_head;
    int *next;        /* (max_det) previous kept detection of the same class */
    int *row;         /* (max_det) obox row of each kept detection */
    size_t n_next;
} hy__nms_buf;
void hy__nms_buf_free(hy__nms_buf *b);

/* Ultralytics non_max_suppression(multi_label=True) as `yolo val` runs it, for one image:
 * every (anchor, class) with score > p->conf is a candidate (anchor-major order), optional
 * class filter, candidates sorted by score (stable), the top 30000 kept, NMS per class with
 * torchvision's arithmetic on boxes offset by class * 7680 (suppress IoU > p->iou), at most
 * p->max_det kept, in score order. out is the raw (4 + nc, A) output, or with objectness
 * (YOLOv5, v7.0's non_max_suppression) the (A, 5 + nc) rows: rows with objectness <= conf
 * are dropped and the scores are objectness x class. dets (max_dets) get input-pixel xyxy
 * boxes; *n_out their count. p->agnostic_nms: one class for NMS. */
hy_status hy__postprocess_multilabel(const float *out, int nc, int A, int objectness, const hy_detect_params *p,
                                     hy__nms_buf *buf, hy_detection *dets, size_t max_dets,
                                     size_t *n_out);

#endif
