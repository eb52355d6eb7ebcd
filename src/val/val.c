/* hy_val_run: Ultralytics 8.0.172 `yolo val` for a detection model, in real batches.
 *
 * Pipeline, one function per step: the dataset is read (load_dataset: src/data/dataset.c);
 * images are sorted by aspect ratio and each batch of p->batch gets one "rect" shape
 * (plan_batches: BaseDataset.set_rectangle); a worker thread decodes, resizes (long side ->
 * imgsz: INTER_AREA shrinking, INTER_LINEAR enlarging, as load_image) and letterboxes
 * (LetterBox(scaleup=False) to the batch shape) the next chunk of images into one of two
 * (n, 3, h, w) buffers while the calling thread runs the network on the other (run_batches:
 * one forward pass per chunk, a chunk = up to MAX_FORWARD images of one rect batch), then per
 * image multi-label NMS, box scaling and matching (match_image: metrics.c); then metrics
 * (compute_metrics), plots (write_plots); the report is hy_val_result_json. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "hotyolo/val.h"
#include "image/image.h"
#include "model/model_impl.h"
#include "data/dataset.h"
#include "val/metrics.h"
#include "val/plots.h"

#define NBUF        2   /* chunks in flight: one letterboxed by the worker, one in the network */
#define MAX_FORWARD 8   /* images per forward pass at most: bounds the input buffers and the arena
                           (YOLOv8n 640: ~16 MB of arena per image); larger rect batches run as
                           several passes of one shape, with identical results */
#define STRIDE      32  /* model stride (YOLOv8) */
#define RECT_PAD    0.5 /* BaseDataset pad for val */

hy_val_params hy_val_default_params(void) {
    hy_val_params p = {.data = NULL,
                       .split = "val",
                       .imgsz = 640,
                       .batch = 16,
                       .conf = 0.001f,
                       .iou = 0.7f,
                       .max_det = 300,
                       .plots_dir = NULL,
                       .progress = NULL,
                       .progress_user_data = NULL};
    return p;
}

hy_val_params hy_val_model_params(const hy_model *m) {
    hy_val_params p = hy_val_default_params();
    if (m) {
        p.batch = m->cfg.arch->val_batch;
        p.iou = m->cfg.arch->val_iou;
    }
    return p;
}

struct hy_val_result {
    hy_val_metrics all;
    hy_val_metrics *classes; /* (n_classes) */
    size_t n_classes;
    char **names; /* (n_classes) owned */
    hy_val_speed speed;
    char **warnings;
    size_t n_warnings;
    // parameters, for JSON
    char *data, *split, *model;
    int imgsz, batch, max_det;
    float conf, iou;
    double best_conf;
};

// --- worker: decode + resize + letterbox ---------------------------------------------------------

typedef struct vimg { /* one image of a chunk */
    int ok;           /* image usable */
    char *warn;       /* skip message when !ok */
    int w0, h0;
    float padx, pady; /* ratio_pad[1]: the letterbox's dw / 2, dh / 2 */
    float gain;       /* ratio_pad[0][0]: resized h / original h */
    float *gt;        /* (n_gt, 4) native xyxy */
    int *gt_cls;      /* (n_gt) */
    size_t n_gt, gt_cap;
    double pre_ms;
} vimg;

typedef struct vchunk { /* positions [i0, i0 + n) of the sorted order: one shape */
    size_t i0;
    int n;
} vchunk;

typedef struct vbuf {
    int ready;       /* filled by the worker, not yet consumed */
    hy_status fatal; /* the worker stopped on this chunk (out of memory) */
    size_t chunk;
    int n, bh, bw;
    float *x;        /* (n, 3, bh, bw) network input */
    size_t x_cap;
    vimg img[MAX_FORWARD];
} vbuf;

typedef struct vctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vbuf bufs[NBUF];
    int stop;             /* the consumer gave up */
    char fatal_msg[1024]; /* hy_last_error() of a chunk's fatal status */
    const hy__val_dataset *ds;
    const size_t *order;  /* (n) dataset item of each position */
    const int *shape;     /* (n, 2) batch shape (h, w) per position */
    const vchunk *chunks;
    size_t n_chunks;
    int imgsz;
} vctx;

static hy_status grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return HY_OK;
    void *q = hy__realloc(*p, need * elem);
    if (!q) return hy__error(HY_ERR_NOMEM, "out of memory (%zu bytes)", need * elem);
    *p = q;
    *cap = need;
    return HY_OK;
}

/* Ground truth in original pixels through Ultralytics' float32 chain: label xywh -> xyxy ->
 * * (w1, h1) -> * r -> + pad -> xywh -> * (1 / w, 1 / h) of the letterboxed image (Format), then
 * in the validator xyxy * (w, h) -> - pad -> / gain -> clip to the original size. */
static void gt_native(const hy__val_label *l, int w1, int h1, float r, float padx, float pady,
                      int bw, int bh, float gain, int w0, int h0, float *o) {
    float dw = l->w / 2, dh = l->h / 2;
    float x1 = l->x - dw, y1 = l->y - dh, x2 = l->x + dw, y2 = l->y + dh;
    x1 *= (float)w1, x2 *= (float)w1, y1 *= (float)h1, y2 *= (float)h1;
    x1 *= r, x2 *= r, y1 *= r, y2 *= r;
    x1 += padx, x2 += padx, y1 += pady, y2 += pady;
    float xc = (x1 + x2) / 2, yc = (y1 + y2) / 2, w = x2 - x1, h = y2 - y1;
    const float iw = (float)(1.0 / bw), ih = (float)(1.0 / bh);
    xc *= iw, w *= iw, yc *= ih, h *= ih;
    dw = w / 2, dh = h / 2;
    x1 = xc - dw, y1 = yc - dh, x2 = xc + dw, y2 = yc + dh;
    x1 *= (float)bw, x2 *= (float)bw, y1 *= (float)bh, y2 *= (float)bh;
    x1 -= padx, x2 -= padx, y1 -= pady, y2 -= pady;
    x1 /= gain, y1 /= gain, x2 /= gain, y2 /= gain;
    o[0] = HY_MIN(HY_MAX(x1, 0.f), (float)w0);
    o[1] = HY_MIN(HY_MAX(y1, 0.f), (float)h0);
    o[2] = HY_MIN(HY_MAX(x2, 0.f), (float)w0);
    o[3] = HY_MIN(HY_MAX(y2, 0.f), (float)h0);
}

typedef struct wscratch {
    uint8_t *resized; /* (h1, w1, 3) */
    size_t resized_cap;
    uint8_t *rs; /* INTER_LINEAR scratch */
    size_t rs_cap;
    uint8_t *lb; /* letterbox scratch */
    size_t lb_cap;
} wscratch;

/* Fills image s of a chunk (network input x: (3, bh, bw)) for position i. Returns a fatal
 * status only for out-of-memory; image problems set s->ok = 0 with s->warn. */
static hy_status fill_image(const vctx *c, size_t i, int bh, int bw, vimg *s, float *x, wscratch *w) {
    const double t0 = hy__now_ms();
    const hy__val_item *it = &c->ds->items[c->order[i]];
    s->ok = 0;
    s->n_gt = 0;
    hy_image *img = NULL;
    hy_status st = hy_image_load(it->im_file, &img);
    if (st) {
        if (st == HY_ERR_NOMEM) return st;
        s->warn = hy__strdup(hy_last_error());
        if (s->warn) {
            char *m = hy__malloc(strlen(s->warn) + 32);
            if (m) sprintf(m, "%s; image skipped", s->warn);
            hy__free(s->warn);
            s->warn = m;
        }
        s->pre_ms = hy__now_ms() - t0;
        return s->warn ? HY_OK : hy__error(HY_ERR_NOMEM, "out of memory");
    }
    const int w0 = img->width, h0 = img->height;
    s->w0 = w0;
    s->h0 = h0;
    // load_image: long side -> imgsz (ceil), INTER_AREA to shrink, INTER_LINEAR to enlarge
    const double r = (double)c->imgsz / (double)HY_MAX(h0, w0);
    int w1 = w0, h1 = h0;
    const uint8_t *src = img->data;
    if (r != 1.0) {
        w1 = (int)ceil(w0 * r);
        h1 = (int)ceil(h0 * r);
        if ((st = grow((void **)&w->resized, &w->resized_cap, (size_t)w1 * h1 * 3, 1))) goto done;
        if (r < 1.0) {
            if ((st = hy__resize_area_u8(img->data, w0, h0, (size_t)w0 * 3, w->resized, w1, h1,
                                         (size_t)w1 * 3)))
                goto done;
        } else {
            if ((st =
                     grow((void **)&w->rs, &w->rs_cap, hy__resize_scratch_size(w0, h0, w1, h1), 1)))
                goto done;
            hy__resize_linear_u8(img->data, w0, h0, (size_t)w0 * 3, w->resized, w1, h1,
                                 (size_t)w1 * 3, w->rs);
        }
        src = w->resized;
    }
    // LetterBox(new_shape = batch shape, auto=False, scaleup=False)
    hy__letterbox lb = hy__letterbox_plan_ex(w1, h1, bw, bh, 0, 0, STRIDE);
    if (lb.out_w != bw || lb.out_h != bh) { // cannot happen: padding fills the shape exactly
        st = hy__error(HY_ERR_BACKEND, "%s: letterbox %dx%d != batch shape %dx%d", it->im_file,
                       lb.out_w, lb.out_h, bw, bh);
        goto done;
    }
    if ((st = grow((void **)&w->lb, &w->lb_cap, hy__letterbox_scratch_size(&lb), 1))) goto done;
    hy__letterbox_apply(&lb, src, (size_t)w1 * 3, x, w->lb);
    s->padx = lb.pad_x;
    s->pady = lb.pad_y;
    s->gain = (float)((double)h1 / (double)h0);
    // labels
    if (it->n_labels > 0) {
        size_t cap_f = s->gt_cap * 4;
        if ((st = grow((void **)&s->gt, &cap_f, (size_t)it->n_labels * 4, sizeof(float))))
            goto done;
        size_t cap_c = s->gt_cap;
        if ((st = grow((void **)&s->gt_cls, &cap_c, (size_t)it->n_labels, sizeof(int)))) goto done;
        s->gt_cap = HY_MIN(cap_f / 4, cap_c);
        for (int k = 0; k < it->n_labels; k++) {
            gt_native(&it->labels[k], w1, h1, lb.r, s->padx, s->pady, bw, bh, s->gain, w0, h0,
                      s->gt + 4 * k);
            s->gt_cls[k] = it->labels[k].cls;
        }
        s->n_gt = (size_t)it->n_labels;
    }
    s->ok = 1;
done:
    hy_image_free(img);
    s->pre_ms = hy__now_ms() - t0;
    return st;
}

/* Fills buffer b with chunk k; a fatal status (out of memory) stops the worker. */
static hy_status fill_chunk(const vctx *c, size_t k, vbuf *b, wscratch *w) {
    const vchunk *ch = &c->chunks[k];
    b->chunk = k;
    b->n = ch->n;
    b->bh = c->shape[2 * ch->i0];
    b->bw = c->shape[2 * ch->i0 + 1];
    const size_t per = (size_t)3 * (size_t)b->bh * (size_t)b->bw;
    hy_status st = grow((void **)&b->x, &b->x_cap, per * (size_t)b->n, sizeof(float));
    for (int j = 0; j < b->n && !st; j++)
        st = fill_image(c, ch->i0 + (size_t)j, b->bh, b->bw, &b->img[j], b->x + per * (size_t)j, w);
    return st;
}

static void *worker_main(void *arg) {
    vctx *c = arg;
    wscratch w;
    memset(&w, 0, sizeof w);
    for (size_t k = 0; k < c->n_chunks; k++) {
        vbuf *b = &c->bufs[k % NBUF];
        pthread_mutex_lock(&c->mu);
        while (b->ready && !c->stop) pthread_cond_wait(&c->cv, &c->mu);
        const int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop) break;
        hy_status st = fill_chunk(c, k, b, &w);
        pthread_mutex_lock(&c->mu);
        if (st) snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s", hy_last_error());
        b->fatal = st;
        b->ready = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        if (st) break;
    }
    hy__free(w.resized);
    hy__free(w.rs);
    hy__free(w.lb);
    return NULL;
}

// --- rect batch shapes ---------------------------------------------------------------------------

/* BaseDataset.set_rectangle: order (n) and per-position batch shape (n, 2) as (h, w). */
static hy_status rect_shapes(const hy__val_dataset *ds, int imgsz, int batch, size_t *order,
                             int *shape) {
    const size_t n = ds->n;
    double *ar = hy__malloc(n * sizeof *ar);
    if (!ar) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) ar[i] = (double)ds->items[i].h / (double)ds->items[i].w;
    hy__val_np_argsort(ar, order, n); /* ar.argsort(): ties as numpy orders them */
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        const size_t b1 = HY_MIN(n, b0 + (size_t)batch);
        const double mini = ar[order[b0]], maxi = ar[order[b1 - 1]];
        double sh = 1, sw = 1;
        if (maxi < 1)
            sh = maxi;
        else if (mini > 1)
            sw = 1 / mini;
        // np.ceil(shapes * imgsz / stride + pad).astype(int) * stride
        const int h = (int)ceil(sh * imgsz / STRIDE + RECT_PAD) * STRIDE;
        const int w = (int)ceil(sw * imgsz / STRIDE + RECT_PAD) * STRIDE;
        for (size_t i = b0; i < b1; i++) {
            shape[2 * i] = h;
            shape[2 * i + 1] = w;
        }
    }
    hy__free(ar);
    return HY_OK;
}

// --- result --------------------------------------------------------------------------------------

void hy_val_result_free(hy_val_result *r) {
    if (!r) return;
    for (size_t i = 0; r->names && i < r->n_classes; i++) hy__free(r->names[i]);
    hy__free(r->names);
    hy__free(r->classes);
    for (size_t i = 0; i < r->n_warnings; i++) hy__free(r->warnings[i]);
    hy__free(r->warnings);
    hy__free(r->data);
    hy__free(r->split);
    hy__free(r->model);
    hy__free(r);
}

const hy_val_metrics *hy_val_result_all(const hy_val_result *r) { return r ? &r->all : NULL; }
size_t hy_val_result_num_classes(const hy_val_result *r) { return r ? r->n_classes : 0; }
const hy_val_metrics *hy_val_result_class(const hy_val_result *r, size_t i) {
    return r && i < r->n_classes ? &r->classes[i] : NULL;
}
hy_val_speed hy_val_result_speed(const hy_val_result *r) {
    hy_val_speed z = {0, 0, 0};
    return r ? r->speed : z;
}
size_t hy_val_result_num_warnings(const hy_val_result *r) { return r ? r->n_warnings : 0; }
const char *hy_val_result_warning(const hy_val_result *r, size_t i) {
    return r && i < r->n_warnings ? r->warnings[i] : NULL;
}

/* A float parameter as the decimal the user wrote (0.001, not 0.0010000000474974513). */
static json_object *json_float(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

static json_object *metrics_json(const hy_val_metrics *m) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    if (m->class_id >= 0) json_object_object_add(o, "class_id", json_object_new_int(m->class_id));
    json_object_object_add(o, "name", json_object_new_string(m->name ? m->name : ""));
    json_object_object_add(o, "images", json_object_new_int(m->images));
    json_object_object_add(o, "images_with_class", json_object_new_int(m->images_with_class));
    json_object_object_add(o, "instances", json_object_new_int(m->instances));
    json_object_object_add(o, "precision", json_object_new_double(m->precision));
    json_object_object_add(o, "recall", json_object_new_double(m->recall));
    json_object_object_add(o, "mAP50", json_object_new_double(m->map50));
    json_object_object_add(o, "mAP50-95", json_object_new_double(m->map50_95));
    return o;
}

hy_status hy_val_result_json(const hy_val_result *r, char **json_out) {
    if (!r || !json_out) return hy__error(HY_ERR_INVALID_ARG, "hy_val_result_json: NULL argument");
    json_object *o = json_object_new_object();
    if (!o) return hy__error(HY_ERR_NOMEM, "out of memory");
    json_object_object_add(o, "model", json_object_new_string(r->model ? r->model : ""));
    json_object_object_add(o, "data", json_object_new_string(r->data ? r->data : ""));
    json_object_object_add(o, "split", json_object_new_string(r->split ? r->split : ""));
    json_object_object_add(o, "imgsz", json_object_new_int(r->imgsz));
    json_object_object_add(o, "batch", json_object_new_int(r->batch));
    json_object_object_add(o, "conf", json_float(r->conf));
    json_object_object_add(o, "iou", json_float(r->iou));
    json_object_object_add(o, "max_det", json_object_new_int(r->max_det));
    json_object_object_add(o, "all", metrics_json(&r->all));
    json_object *cls = json_object_new_array();
    for (size_t i = 0; i < r->n_classes; i++)
        json_object_array_add(cls, metrics_json(&r->classes[i]));
    json_object_object_add(o, "classes", cls);
    json_object *sp = json_object_new_object();
    json_object_object_add(sp, "preprocess", json_object_new_double(r->speed.preprocess_ms));
    json_object_object_add(sp, "inference", json_object_new_double(r->speed.inference_ms));
    json_object_object_add(sp, "postprocess", json_object_new_double(r->speed.postprocess_ms));
    json_object_object_add(o, "speed_ms_per_image", sp);
    json_object *w = json_object_new_array();
    for (size_t i = 0; i < r->n_warnings; i++)
        json_object_array_add(w, json_object_new_string(r->warnings[i]));
    json_object_object_add(o, "warnings", w);
    const char *s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = s ? hy__strdup(s) : NULL;
    json_object_put(o);
    if (!copy) return hy__error(HY_ERR_NOMEM, "out of memory writing the JSON result");
    *json_out = copy;
    return HY_OK;
}

static hy_status add_warning(hy_val_result *r, size_t *cap, const char *msg) {
    if (r->n_warnings == *cap) {
        size_t c2 = *cap ? *cap * 2 : 16;
        char **w = hy__realloc(r->warnings, c2 * sizeof *w);
        if (!w) return hy__error(HY_ERR_NOMEM, "out of memory");
        r->warnings = w;
        *cap = c2;
    }
    char *s = hy__strdup(msg);
    if (!s) return hy__error(HY_ERR_NOMEM, "out of memory");
    r->warnings[r->n_warnings++] = s;
    return HY_OK;
}

// --- run -----------------------------------------------------------------------------------------

/* One evaluation: what its steps share. */
typedef struct vrun {
    const hy_model *m;
    hy_context *ctx;
    hy_val_params p;
    hy__val_dataset *ds;
    hy_val_result *r;
    size_t wcap;          /* r->warnings capacity */
    int nc_model, nc;     /* the model's classes; max(model's, dataset's) */
    size_t *order;        /* (n) dataset item of each position */
    int *shape;           /* (n, 2) rect shape (h, w) of each position */
    vchunk *chunks;       /* (n_chunks) one forward pass each */
    size_t n_chunks;
    /* per-image postprocess scratch */
    float *y;             /* (n, 4 + nc, A) (YOLOv5: (n, A, 5 + nc)) network output of a chunk */
    size_t y_cap;
    hy__nms_buf nms;
    hy_detection *dets;   /* (max_det) */
    float *det, *conf;    /* (max_det, 4), (max_det) */
    int *cls;             /* (max_det) */
    uint8_t *tp;          /* (max_det, HY_VAL_NIOU) */
    hy__val_stats stats;
    hy__val_confusion cm;
    hy__val_ap ap;
    double t_pre, t_inf, t_post;
    size_t n_done, n_with_labels;
} vrun;

static hy_status check_params(const hy_val_params *p) {
    if (!p->data || !*p->data)
        return hy__error(HY_ERR_INVALID_ARG, "val: data (a data.yaml path) is required");
    if (p->imgsz < 32 || p->imgsz > 8192 || p->imgsz % 32)
        return hy__error(HY_ERR_INVALID_ARG,
                         "val: imgsz %d must be a multiple of 32 between 32 and 8192", p->imgsz);
    if (p->batch < 1 || p->batch > 65536)
        return hy__error(HY_ERR_INVALID_ARG, "val: batch %d must be >= 1", p->batch);
    if (!(p->conf >= 0 && p->conf <= 1))
        return hy__error(HY_ERR_INVALID_ARG, "val: conf %g must be in [0, 1]", (double)p->conf);
    if (!(p->iou >= 0 && p->iou <= 1))
        return hy__error(HY_ERR_INVALID_ARG, "val: iou %g must be in [0, 1]", (double)p->iou);
    if (p->max_det < 1 || p->max_det > 1000000)
        return hy__error(HY_ERR_INVALID_ARG, "val: max_det %d must be >= 1", p->max_det);
    if (p->split && strcmp(p->split, "val") && strcmp(p->split, "train") &&
        strcmp(p->split, "test"))
        return hy__error(HY_ERR_INVALID_ARG, "val: split '%s' must be val, train or test",
                         p->split);
    if (p->plots_dir) {
        struct stat sb;
        if (stat(p->plots_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return hy__error(HY_ERR_NOT_FOUND, "val: plots folder '%s' does not exist",
                             p->plots_dir);
    }
    return HY_OK;
}

static const char *class_name(const hy_model *m, const hy__val_dataset *ds, int c) {
    const char *n = hy_model_class_name(m, c);
    if (!n && c < ds->nc) n = ds->names[c];
    return n ? n : "?";
}

#define NOMEM() hy__error(HY_ERR_NOMEM, "val: out of memory")

/* Reads the dataset; makes the result with the parameters and the dataset's warnings. */
static hy_status load_dataset(vrun *v) {
    const hy_val_params *p = &v->p;
    hy_status st = hy__val_dataset_load(p->data, p->split, &v->ds);
    if (st) return st;
    hy_val_result *r = v->r = hy__calloc(1, sizeof *r);
    if (!r) return NOMEM();
    r->data = hy__strdup(p->data);
    r->split = hy__strdup(p->split);
    r->model = hy__strdup(v->m->path ? v->m->path : "");
    if (!r->data || !r->split || !r->model) return NOMEM();
    r->imgsz = p->imgsz;
    r->batch = p->batch;
    r->conf = p->conf;
    r->iou = p->iou;
    r->max_det = p->max_det;
    for (size_t i = 0; i < v->ds->n_warnings; i++)
        if ((st = add_warning(r, &v->wcap, v->ds->warnings[i]))) return st;
    v->nc_model = hy_model_num_classes(v->m);
    v->nc = HY_MAX(v->nc_model, v->ds->nc);
    if (v->nc_model != v->ds->nc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: %d classes, the model has %d (names are the model's)",
                 p->data, v->ds->nc, v->nc_model);
        if ((st = add_warning(r, &v->wcap, msg))) return st;
    }
    return HY_OK;
}

/* Rect batches (order, shape) and the forward chunks: each rect batch split into passes of
 * at most MAX_FORWARD images (one shape per pass). */
static hy_status plan_batches(vrun *v) {
    const size_t n = v->ds->n, batch = (size_t)v->p.batch, fwd = HY_MIN(batch, (size_t)MAX_FORWARD);
    v->order = hy__malloc(n * sizeof *v->order);
    v->shape = hy__malloc(n * 2 * sizeof *v->shape);
    v->chunks = hy__malloc((n + 1) * sizeof *v->chunks); /* n_chunks <= n */
    if (!v->order || !v->shape || !v->chunks) return NOMEM();
    hy_status st = rect_shapes(v->ds, v->p.imgsz, v->p.batch, v->order, v->shape);
    if (st) return st;
    v->n_chunks = 0;
    for (size_t b0 = 0; b0 < n; b0 += batch)
        for (size_t i = b0, b1 = HY_MIN(n, b0 + batch); i < b1; i += fwd)
            v->chunks[v->n_chunks++] = (vchunk){i, (int)HY_MIN(fwd, b1 - i)};
    return HY_OK;
}

/* One image: multi-label NMS on its raw output y ((4 + nc, A), or YOLOv5's (A, 5 + nc)), boxes back to the original
 * image, matched against the ground truth into the statistics (and the confusion matrix). */
static hy_status match_image(vrun *v, const float *y, int A, const vimg *s) {
    hy_detect_params dp = hy_detect_default_params();
    dp.conf = v->p.conf;
    dp.iou = v->p.iou;
    dp.max_det = v->p.max_det;
    size_t nd;
    hy_status st = hy__postprocess_multilabel(y, v->nc_model, A, v->m->cfg.arch->objectness, &dp, &v->nms, v->dets,
                                              (size_t)v->p.max_det, &nd);
    if (st) return st;
    // scale_boxes with ratio_pad, then clip to the original image
    for (size_t k = 0; k < nd; k++) {
        float b[4] = {v->dets[k].x1, v->dets[k].y1, v->dets[k].x2, v->dets[k].y2};
        b[0] -= s->padx, b[2] -= s->padx, b[1] -= s->pady, b[3] -= s->pady;
        b[0] /= s->gain, b[1] /= s->gain, b[2] /= s->gain, b[3] /= s->gain;
        v->det[4 * k + 0] = HY_MIN(HY_MAX(b[0], 0.f), (float)s->w0);
        v->det[4 * k + 1] = HY_MIN(HY_MAX(b[1], 0.f), (float)s->h0);
        v->det[4 * k + 2] = HY_MIN(HY_MAX(b[2], 0.f), (float)s->w0);
        v->det[4 * k + 3] = HY_MIN(HY_MAX(b[3], 0.f), (float)s->h0);
        v->conf[k] = v->dets[k].confidence;
        v->cls[k] = v->dets[k].class_id;
    }
    if ((st = hy__val_match(v->det, v->cls, nd, s->gt, s->gt_cls, s->n_gt, v->tp))) return st;
    if ((st = hy__val_stats_add(&v->stats, v->tp, v->conf, v->cls, nd, s->gt_cls, s->n_gt)))
        return st;
    if (v->p.plots_dir && s->n_gt &&
        (st = hy__val_confusion_add(&v->cm, v->det, v->conf, v->cls, nd, s->gt, s->gt_cls, s->n_gt)))
        return st;
    v->n_done++;
    v->n_with_labels += s->n_gt > 0;
    return HY_OK;
}

/* A chunk the worker filled: its unreadable images become warnings, the others are packed
 * to the front of b->x, run as one batch and matched one by one. */
static hy_status run_chunk(vrun *v, vbuf *b) {
    const size_t per = (size_t)3 * (size_t)b->bh * (size_t)b->bw;
    vimg *ok[MAX_FORWARD];
    int n_ok = 0;
    hy_status st = HY_OK;
    for (int j = 0; j < b->n; j++) {
        vimg *s = &b->img[j];
        v->t_pre += s->pre_ms;
        if (!s->ok) {
            st = add_warning(v->r, &v->wcap, s->warn);
            hy__free(s->warn);
            s->warn = NULL;
            if (st) return st;
            continue;
        }
        if (n_ok != j) memmove(b->x + per * (size_t)n_ok, b->x + per * (size_t)j, per * sizeof(float));
        ok[n_ok++] = s;
    }
    if (n_ok == 0) return HY_OK;
    const int A = hy__arch_num_anchors(&v->m->cfg, b->bh, b->bw);
    const size_t ylen = hy__arch_output_numel(&v->m->cfg, b->bh, b->bw);
    if ((st = grow((void **)&v->y, &v->y_cap, ylen * (size_t)n_ok, sizeof *v->y))) return st;
    const double t1 = hy__now_ms();
    if ((st = hy_model_forward(v->ctx, b->x, n_ok, b->bh, b->bw, v->y, ylen * (size_t)n_ok)))
        return st;
    const double t2 = hy__now_ms();
    for (int q = 0; q < n_ok && !st; q++) st = match_image(v, v->y + ylen * (size_t)q, A, ok[q]);
    v->t_inf += t2 - t1;
    v->t_post += hy__now_ms() - t2;
    return st;
}

/* Every chunk through the network, the worker letterboxing the next one meanwhile. */
static hy_status run_batches(vrun *v) {
    vctx c;
    memset(&c, 0, sizeof c);
    c.ds = v->ds;
    c.order = v->order;
    c.shape = v->shape;
    c.chunks = v->chunks;
    c.n_chunks = v->n_chunks;
    c.imgsz = v->p.imgsz;
    if (pthread_mutex_init(&c.mu, NULL)) return hy__error(HY_ERR_BACKEND, "val: cannot create a mutex");
    if (pthread_cond_init(&c.cv, NULL)) {
        pthread_mutex_destroy(&c.mu);
        return hy__error(HY_ERR_BACKEND, "val: cannot create a condition variable");
    }
    hy_status st = HY_OK;
    pthread_t worker;
    if (pthread_create(&worker, NULL, worker_main, &c)) {
        st = hy__error(HY_ERR_BACKEND, "val: cannot start the image worker thread");
        goto out;
    }
    for (size_t k = 0; k < v->n_chunks && !st; k++) {
        vbuf *b = &c.bufs[k % NBUF];
        pthread_mutex_lock(&c.mu);
        while (!b->ready) pthread_cond_wait(&c.cv, &c.mu);
        const hy_status fatal = b->fatal;
        pthread_mutex_unlock(&c.mu);
        if (fatal) {
            st = hy__error(fatal, "%s", c.fatal_msg);
            break;
        }
        st = run_chunk(v, b);
        pthread_mutex_lock(&c.mu);
        b->ready = 0;
        pthread_cond_broadcast(&c.cv);
        pthread_mutex_unlock(&c.mu);
        for (int j = 0; j < b->n && !st && v->p.progress; j++)
            v->p.progress(v->chunks[k].i0 + (size_t)j + 1, v->ds->n, v->p.progress_user_data);
    }
    pthread_mutex_lock(&c.mu);
    c.stop = 1;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    pthread_join(worker, NULL);
out:
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    for (int k = 0; k < NBUF; k++) {
        hy__free(c.bufs[k].x);
        for (int j = 0; j < MAX_FORWARD; j++) {
            hy__free(c.bufs[k].img[j].gt);
            hy__free(c.bufs[k].img[j].gt_cls);
            hy__free(c.bufs[k].img[j].warn);
        }
    }
    if (!st && v->n_done == 0)
        st = hy__error(HY_ERR_FORMAT, "%s: no image of the '%s' split could be decoded (%s)",
                       v->p.data, v->p.split, v->r->n_warnings ? v->r->warnings[0] : "?");
    return st;
}

/* AP per class and IoU threshold, then the "all" row and a row per class with labels. */
static hy_status compute_metrics(vrun *v) {
    hy_val_result *r = v->r;
    hy_status st = hy__val_ap_compute(&v->stats, &v->ap);
    if (st) return st;
    const hy__val_ap *ap = &v->ap;
    r->best_conf = ap->best_conf;
    int64_t inst = 0;
    for (int k = 0; k < v->nc; k++) inst += v->stats.nt[k];
    r->all = (hy_val_metrics){.class_id = -1,
                              .name = "all",
                              .images = (int)v->stats.seen,
                              .images_with_class = (int)v->n_with_labels,
                              .instances = (int)inst,
                              .precision = ap->computed ? ap->mp : 0,
                              .recall = ap->computed ? ap->mr : 0,
                              .map50 = ap->computed ? ap->map50 : 0,
                              .map50_95 = ap->computed ? ap->map : 0};
    if (ap->computed && ap->n > 0) {
        r->classes = hy__calloc((size_t)ap->n, sizeof *r->classes);
        r->names = hy__calloc((size_t)ap->n, sizeof *r->names);
        if (!r->classes || !r->names) return NOMEM();
        r->n_classes = (size_t)ap->n;
        for (int k = 0; k < ap->n; k++) {
            const int cid = ap->cls[k];
            r->names[k] = hy__strdup(class_name(v->m, v->ds, cid));
            if (!r->names[k]) return NOMEM();
            double s = 0;
            for (int j = 0; j < HY_VAL_NIOU; j++) s += ap->ap[(size_t)k * HY_VAL_NIOU + (size_t)j];
            r->classes[k] = (hy_val_metrics){.class_id = cid,
                                             .name = r->names[k],
                                             .images = (int)v->stats.seen,
                                             .images_with_class = (int)v->stats.nimg[cid],
                                             .instances = (int)ap->nt[k],
                                             .precision = ap->p[k],
                                             .recall = ap->r[k],
                                             .map50 = ap->ap[(size_t)k * HY_VAL_NIOU],
                                             .map50_95 = s / HY_VAL_NIOU};
        }
    }
    r->speed = (hy_val_speed){v->t_pre / (double)v->ds->n, v->t_inf / (double)v->n_done,
                              v->t_post / (double)v->n_done};
    return HY_OK;
}

/* PR_curve.png and the two confusion matrices in p.plots_dir. */
static hy_status write_plots(vrun *v) {
    const char **names = hy__malloc((size_t)v->nc * sizeof *names);
    if (!names) return NOMEM();
    for (int k = 0; k < v->nc; k++) names[k] = class_name(v->m, v->ds, k);
    char path[4096];
    snprintf(path, sizeof path, "%s/PR_curve.png", v->p.plots_dir);
    hy_status st = hy__val_plot_pr(path, &v->ap, names);
    if (!st) {
        snprintf(path, sizeof path, "%s/confusion_matrix_normalized.png", v->p.plots_dir);
        st = hy__val_plot_confusion(path, &v->cm, names, 1);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/confusion_matrix.png", v->p.plots_dir);
        st = hy__val_plot_confusion(path, &v->cm, names, 0);
    }
    hy__free(names);
    return st;
}

/* Scratch of the steps after load_dataset: statistics, the context, per-image buffers. */
static hy_status vrun_init(vrun *v) {
    const hy_val_params *p = &v->p;
    hy_status st = hy__val_stats_init(&v->stats, v->nc);
    if (!st && p->plots_dir) st = hy__val_confusion_init(&v->cm, v->nc, p->conf);
    if (st) return st;
    v->dets = hy__malloc((size_t)p->max_det * sizeof *v->dets);
    v->det = hy__malloc((size_t)p->max_det * 4 * sizeof *v->det);
    v->conf = hy__malloc((size_t)p->max_det * sizeof *v->conf);
    v->cls = hy__malloc((size_t)p->max_det * sizeof *v->cls);
    v->tp = hy__malloc((size_t)p->max_det * HY_VAL_NIOU);
    if (!v->dets || !v->det || !v->conf || !v->cls || !v->tp) return NOMEM();
    /* the model's device and threads; shapes are planned as the chunks arrive */
    return hy_context_create(v->m, NULL, &v->ctx);
}

static void vrun_deinit(vrun *v) {
    hy_context_free(v->ctx);
    hy__val_ap_deinit(&v->ap);
    hy__val_confusion_deinit(&v->cm);
    hy__val_stats_deinit(&v->stats);
    hy__nms_buf_free(&v->nms);
    hy__free(v->dets);
    hy__free(v->det);
    hy__free(v->conf);
    hy__free(v->cls);
    hy__free(v->tp);
    hy__free(v->y);
    hy__free(v->order);
    hy__free(v->shape);
    hy__free(v->chunks);
    hy__val_dataset_free(v->ds);
}

hy_status hy_val_run(const hy_model *m, const hy_val_params *params, hy_val_result **out) {
    if (!m || !params || !out)
        return hy__error(HY_ERR_INVALID_ARG, "hy_val_run: model, params and out are required");
    vrun v;
    memset(&v, 0, sizeof v);
    v.m = m;
    v.p = *params;
    if (!v.p.split) v.p.split = "val";
    hy_status st = check_params(&v.p);
    if (!st) st = load_dataset(&v);
    if (!st) st = plan_batches(&v);
    if (!st) st = vrun_init(&v);
    if (!st) st = run_batches(&v);
    if (!st) st = compute_metrics(&v);
    if (!st && v.p.plots_dir) st = write_plots(&v);
    vrun_deinit(&v);
    if (st) {
        hy_val_result_free(v.r);
        return st;
    }
    *out = v.r;
    return HY_OK;
}
