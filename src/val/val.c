/* hy_val_run: Ultralytics 8.0.172 `yolo val` for a detection model, one image at a time.
 *
 * Pipeline: the dataset is read (dataset.c), images are sorted by aspect ratio and given their
 * batch's "rect" shape (BaseDataset.set_rectangle); a worker thread decodes, resizes (long
 * side -> imgsz: INTER_AREA shrinking, INTER_LINEAR enlarging, as load_image) and letterboxes
 * (LetterBox(scaleup=False) to the batch shape) the next images into a ring of slots while the
 * calling thread runs the network, multi-label NMS, box scaling and matching (metrics.c). */
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
#include "val/dataset.h"
#include "val/metrics.h"
#include "val/plots.h"

#define NSLOT    4   /* images prepared ahead of the network */
#define STRIDE   32  /* model stride (YOLOv8) */
#define RECT_PAD 0.5 /* BaseDataset pad for val */

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

typedef struct vslot {
    int ready;       /* filled by the worker, not yet consumed */
    hy_status fatal; /* the worker stopped on this slot (out of memory) */
    int ok;          /* image usable */
    char *warn;      /* skip message when !ok */
    float *x;        /* (3, bh, bw) network input */
    size_t x_cap;
    int bh, bw, w0, h0;
    float padx, pady; /* ratio_pad[1]: the letterbox's dw / 2, dh / 2 */
    float gain;       /* ratio_pad[0][0]: resized h / original h */
    float *gt;        /* (n_gt, 4) native xyxy */
    int *gt_cls;      /* (n_gt) */
    size_t n_gt, gt_cap;
    double pre_ms;
} vslot;

typedef struct vctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vslot slots[NSLOT];
    int stop;             /* the consumer gave up */
    char fatal_msg[1024]; /* hy_last_error() of a slot's fatal status */
    const hy__val_dataset *ds;
    const size_t *order; /* (n) dataset item of each position */
    const int *shape;    /* (n, 2) batch shape (h, w) per position */
    size_t n;
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

/* Fills slot s for position i. Returns a fatal status only for out-of-memory; image problems
 * set s->ok = 0 with s->warn. */
static hy_status fill_slot(vctx *c, size_t i, vslot *s, wscratch *w) {
    const double t0 = hy__now_ms();
    const hy__val_item *it = &c->ds->items[c->order[i]];
    s->ok = 0;
    s->n_gt = 0;
    s->bh = c->shape[2 * i];
    s->bw = c->shape[2 * i + 1];
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
    hy__letterbox lb = hy__letterbox_plan_ex(w1, h1, s->bw, s->bh, 0, 0, STRIDE);
    if (lb.out_w != s->bw || lb.out_h != s->bh) { // cannot happen: padding fills the shape exactly
        st = hy__error(HY_ERR_BACKEND, "%s: letterbox %dx%d != batch shape %dx%d", it->im_file,
                       lb.out_w, lb.out_h, s->bw, s->bh);
        goto done;
    }
    if ((st = grow((void **)&s->x, &s->x_cap, (size_t)3 * s->bh * s->bw, sizeof(float)))) goto done;
    if ((st = grow((void **)&w->lb, &w->lb_cap, hy__letterbox_scratch_size(&lb), 1))) goto done;
    hy__letterbox_apply(&lb, src, (size_t)w1 * 3, s->x, w->lb);
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
            gt_native(&it->labels[k], w1, h1, lb.r, s->padx, s->pady, s->bw, s->bh, s->gain, w0, h0,
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

static void *worker_main(void *arg) {
    vctx *c = arg;
    wscratch w;
    memset(&w, 0, sizeof w);
    for (size_t i = 0; i < c->n; i++) {
        vslot *s = &c->slots[i % NSLOT];
        pthread_mutex_lock(&c->mu);
        while (s->ready && !c->stop) pthread_cond_wait(&c->cv, &c->mu);
        const int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop) break;
        hy_status st = fill_slot(c, i, s, &w);
        pthread_mutex_lock(&c->mu);
        if (st) snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s", hy_last_error());
        s->fatal = st;
        s->ready = 1;
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

typedef struct ar_key {
    double ar;
    size_t idx;
} ar_key;

static int by_ar(const void *a,
                 const void *b) { // ar.argsort(); ties by file order (see docs/val.md)
    const ar_key *x = a, *y = b;
    if (x->ar != y->ar) return x->ar < y->ar ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* BaseDataset.set_rectangle: order (n) and per-position batch shape (n, 2) as (h, w). */
static hy_status rect_shapes(const hy__val_dataset *ds, int imgsz, int batch, size_t *order,
                             int *shape) {
    const size_t n = ds->n;
    ar_key *k = hy__malloc(n * sizeof *k);
    if (!k) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        k[i] = (ar_key){(double)ds->items[i].h / (double)ds->items[i].w, i};
    qsort(k, n, sizeof *k, by_ar);
    for (size_t i = 0; i < n; i++) order[i] = k[i].idx;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        const size_t b1 = HY_MIN(n, b0 + (size_t)batch);
        const double mini = k[b0].ar, maxi = k[b1 - 1].ar;
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
    hy__free(k);
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
    return HY_OK;
}

static const char *class_name(const hy_model *m, const hy__val_dataset *ds, int c) {
    const char *n = hy_model_class_name(m, c);
    if (!n && c < ds->nc) n = ds->names[c];
    return n ? n : "?";
}

hy_status hy_val_run(hy_model *m, const hy_val_params *params, hy_val_result **out) {
    if (!m || !params || !out)
        return hy__error(HY_ERR_INVALID_ARG, "hy_val_run: model, params and out are required");
    hy_val_params p = *params;
    if (!p.split) p.split = "val";
    hy_status st = check_params(&p);
    if (st) return st;
    if (p.plots_dir) {
        struct stat sb;
        if (stat(p.plots_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return hy__error(HY_ERR_NOT_FOUND, "val: plots folder '%s' does not exist",
                             p.plots_dir);
    }

    hy__val_dataset *ds = NULL;
    hy_val_result *r = NULL;
    size_t *order = NULL;
    int *shape = NULL;
    float *y = NULL, *det = NULL, *conf = NULL;
    int *cls = NULL;
    uint8_t *tp = NULL;
    hy_detection *dets = NULL;
    hy__nms_buf nms;
    memset(&nms, 0, sizeof nms);
    hy__val_stats stats;
    memset(&stats, 0, sizeof stats);
    hy__val_confusion cm;
    memset(&cm, 0, sizeof cm);
    hy__val_ap ap;
    memset(&ap, 0, sizeof ap);
    vctx c;
    memset(&c, 0, sizeof c);
    int threads_started = 0, sync_init = 0;
    pthread_t worker;
    size_t wcap = 0, y_cap = 0;
    double t_pre = 0, t_inf = 0, t_post = 0;
    size_t n_done = 0, n_with_labels = 0;

    if ((st = hy__val_dataset_load(p.data, p.split, &ds))) goto fail;
    r = hy__calloc(1, sizeof *r);
    if (!r) goto nomem;
    r->data = hy__strdup(p.data);
    r->split = hy__strdup(p.split);
    r->model = hy__strdup(m->path ? m->path : "");
    if (!r->data || !r->split || !r->model) goto nomem;
    r->imgsz = p.imgsz;
    r->batch = p.batch;
    r->conf = p.conf;
    r->iou = p.iou;
    r->max_det = p.max_det;
    for (size_t i = 0; i < ds->n_warnings; i++)
        if ((st = add_warning(r, &wcap, ds->warnings[i]))) goto fail;
    const int nc_model = hy_model_num_classes(m);
    const int nc = HY_MAX(nc_model, ds->nc);
    if (nc_model != ds->nc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: %d classes, the model has %d (names are the model's)",
                 p.data, ds->nc, nc_model);
        if ((st = add_warning(r, &wcap, msg))) goto fail;
    }

    // rect batches
    const size_t n = ds->n;
    order = hy__malloc(n * sizeof *order);
    shape = hy__malloc(n * 2 * sizeof *shape);
    if (!order || !shape) goto nomem;
    if ((st = rect_shapes(ds, p.imgsz, p.batch, order, shape))) goto fail;

    if ((st = hy__val_stats_init(&stats, nc))) goto fail;
    if (p.plots_dir && (st = hy__val_confusion_init(&cm, nc, p.conf))) goto fail;
    dets = hy__malloc((size_t)p.max_det * sizeof *dets);
    det = hy__malloc((size_t)p.max_det * 4 * sizeof *det);
    conf = hy__malloc((size_t)p.max_det * sizeof *conf);
    cls = hy__malloc((size_t)p.max_det * sizeof *cls);
    tp = hy__malloc((size_t)p.max_det * HY_VAL_NIOU);
    if (!dets || !det || !conf || !cls || !tp) goto nomem;

    // worker
    c.ds = ds;
    c.order = order;
    c.shape = shape;
    c.n = n;
    c.imgsz = p.imgsz;
    if (pthread_mutex_init(&c.mu, NULL)) {
        st = hy__error(HY_ERR_BACKEND, "val: cannot create a mutex");
        goto fail;
    }
    if (pthread_cond_init(&c.cv, NULL)) {
        pthread_mutex_destroy(&c.mu);
        st = hy__error(HY_ERR_BACKEND, "val: cannot create a condition variable");
        goto fail;
    }
    sync_init = 1;
    if (pthread_create(&worker, NULL, worker_main, &c)) {
        st = hy__error(HY_ERR_BACKEND, "val: cannot start the image worker thread");
        goto fail;
    }
    threads_started = 1;

    hy_detect_params dp = hy_detect_default_params();
    dp.conf = p.conf;
    dp.iou = p.iou;
    dp.max_det = p.max_det;
    for (size_t i = 0; i < n; i++) {
        vslot *s = &c.slots[i % NSLOT];
        pthread_mutex_lock(&c.mu);
        while (!s->ready) pthread_cond_wait(&c.cv, &c.mu);
        const hy_status fatal = s->fatal;
        pthread_mutex_unlock(&c.mu);
        if (fatal) {
            st = hy__error(fatal, "%s", c.fatal_msg);
            goto fail;
        }
        t_pre += s->pre_ms;
        if (!s->ok) {
            st = add_warning(r, &wcap, s->warn);
            hy__free(s->warn);
            s->warn = NULL;
            if (st) goto fail;
        } else {
            const double t1 = hy__now_ms();
            const int A = hy__yolov8_num_anchors(s->bh, s->bw);
            const size_t ylen = (size_t)(4 + nc_model) * (size_t)A;
            if ((st = grow((void **)&y, &y_cap, ylen, sizeof *y))) goto fail;
            if ((st = hy_model_forward(m, s->x, s->bh, s->bw, y, ylen))) goto fail;
            const double t2 = hy__now_ms();
            size_t nd;
            if ((st = hy__postprocess_multilabel(y, nc_model, A, &dp, &nms, dets, (size_t)p.max_det,
                                                 &nd)))
                goto fail;
            // scale_boxes with ratio_pad, then clip to the original image
            for (size_t k = 0; k < nd; k++) {
                float b[4] = {dets[k].x1, dets[k].y1, dets[k].x2, dets[k].y2};
                b[0] -= s->padx, b[2] -= s->padx, b[1] -= s->pady, b[3] -= s->pady;
                b[0] /= s->gain, b[1] /= s->gain, b[2] /= s->gain, b[3] /= s->gain;
                det[4 * k + 0] = HY_MIN(HY_MAX(b[0], 0.f), (float)s->w0);
                det[4 * k + 1] = HY_MIN(HY_MAX(b[1], 0.f), (float)s->h0);
                det[4 * k + 2] = HY_MIN(HY_MAX(b[2], 0.f), (float)s->w0);
                det[4 * k + 3] = HY_MIN(HY_MAX(b[3], 0.f), (float)s->h0);
                conf[k] = dets[k].confidence;
                cls[k] = dets[k].class_id;
            }
            if ((st = hy__val_match(det, cls, nd, s->gt, s->gt_cls, s->n_gt, tp))) goto fail;
            if ((st = hy__val_stats_add(&stats, tp, conf, cls, nd, s->gt_cls, s->n_gt))) goto fail;
            if (p.plots_dir && s->n_gt &&
                (st = hy__val_confusion_add(&cm, det, conf, cls, nd, s->gt, s->gt_cls, s->n_gt)))
                goto fail;
            const double t3 = hy__now_ms();
            t_inf += t2 - t1;
            t_post += t3 - t2;
            n_done++;
            n_with_labels += s->n_gt > 0;
        }
        pthread_mutex_lock(&c.mu);
        s->ready = 0;
        pthread_cond_broadcast(&c.cv);
        pthread_mutex_unlock(&c.mu);
        if (p.progress) p.progress(i + 1, n, p.progress_user_data);
    }
    pthread_join(worker, NULL);
    threads_started = 0;
    if (n_done == 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: no image of the '%s' split could be decoded (%s)",
                       p.data, p.split, r->n_warnings ? r->warnings[0] : "?");
        goto fail;
    }

    // metrics
    if ((st = hy__val_ap_compute(&stats, &ap))) goto fail;
    r->best_conf = ap.best_conf;
    int64_t inst = 0;
    for (int k = 0; k < nc; k++) inst += stats.nt[k];
    r->all = (hy_val_metrics){.class_id = -1,
                              .name = "all",
                              .images = (int)stats.seen,
                              .images_with_class = (int)n_with_labels,
                              .instances = (int)inst,
                              .precision = ap.computed ? ap.mp : 0,
                              .recall = ap.computed ? ap.mr : 0,
                              .map50 = ap.computed ? ap.map50 : 0,
                              .map50_95 = ap.computed ? ap.map : 0};
    if (ap.computed && ap.n > 0) {
        r->classes = hy__calloc((size_t)ap.n, sizeof *r->classes);
        r->names = hy__calloc((size_t)ap.n, sizeof *r->names);
        if (!r->classes || !r->names) goto nomem;
        r->n_classes = (size_t)ap.n;
        for (int k = 0; k < ap.n; k++) {
            const int cid = ap.cls[k];
            r->names[k] = hy__strdup(class_name(m, ds, cid));
            if (!r->names[k]) goto nomem;
            double s = 0;
            for (int j = 0; j < HY_VAL_NIOU; j++) s += ap.ap[(size_t)k * HY_VAL_NIOU + (size_t)j];
            r->classes[k] = (hy_val_metrics){.class_id = cid,
                                             .name = r->names[k],
                                             .images = (int)stats.seen,
                                             .images_with_class = (int)stats.nimg[cid],
                                             .instances = (int)ap.nt[k],
                                             .precision = ap.p[k],
                                             .recall = ap.r[k],
                                             .map50 = ap.ap[(size_t)k * HY_VAL_NIOU],
                                             .map50_95 = s / HY_VAL_NIOU};
        }
    }
    r->speed = (hy_val_speed){t_pre / (double)n, t_inf / (double)n_done, t_post / (double)n_done};

    if (p.plots_dir) {
        const char **names = hy__malloc((size_t)nc * sizeof *names);
        if (!names) goto nomem;
        for (int k = 0; k < nc; k++) names[k] = class_name(m, ds, k);
        char path[4096];
        snprintf(path, sizeof path, "%s/PR_curve.png", p.plots_dir);
        st = hy__val_plot_pr(path, &ap, names);
        if (!st) {
            snprintf(path, sizeof path, "%s/confusion_matrix_normalized.png", p.plots_dir);
            st = hy__val_plot_confusion(path, &cm, names, 1);
        }
        if (!st) {
            snprintf(path, sizeof path, "%s/confusion_matrix.png", p.plots_dir);
            st = hy__val_plot_confusion(path, &cm, names, 0);
        }
        hy__free(names);
        if (st) goto fail;
    }
    goto done;

nomem:
    st = hy__error(HY_ERR_NOMEM, "val: out of memory");
fail:
    hy_val_result_free(r);
    r = NULL;
done:
    if (threads_started) {
        pthread_mutex_lock(&c.mu);
        c.stop = 1;
        pthread_cond_broadcast(&c.cv);
        pthread_mutex_unlock(&c.mu);
        pthread_join(worker, NULL);
    }
    if (sync_init) {
        pthread_cond_destroy(&c.cv);
        pthread_mutex_destroy(&c.mu);
    }
    for (int k = 0; k < NSLOT; k++) {
        hy__free(c.slots[k].x);
        hy__free(c.slots[k].gt);
        hy__free(c.slots[k].gt_cls);
        hy__free(c.slots[k].warn);
    }
    hy__val_ap_deinit(&ap);
    hy__val_confusion_deinit(&cm);
    hy__val_stats_deinit(&stats);
    hy__nms_buf_free(&nms);
    hy__free(dets);
    hy__free(det);
    hy__free(conf);
    hy__free(cls);
    hy__free(tp);
    hy__free(y);
    hy__free(order);
    hy__free(shape);
    hy__val_dataset_free(ds);
    if (!st) *out = r;
    return st;
}
