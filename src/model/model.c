/* hy_model (immutable after load) and hy_context (one run at a time: threads, backend
 * instance, per-shape planned graphs, scratch): detection, batches, the engine lifecycle. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "io/wfile.h"
#include "model/model_impl.h"

hy_detect_params hy_detect_default_params(void) {
    hy_detect_params p = {.conf = 0.25f, .iou = 0.7f, .max_det = 300, .imgsz = 0, .classes = NULL, .n_classes = 0,
                          .agnostic_nms = 0, .shape = {0, 0}};
    return p;
}

hy_detect_params hy_model_detect_params(const hy_model *m) {
    hy_detect_params p = hy_detect_default_params();
    if (m) {
        p.iou = m->cfg.arch->detect_iou;
        p.max_det = m->cfg.arch->detect_max_det;
    }
    return p;
}

hy_status hy_model_output_shape(const hy_model *m, int h, int w, size_t dims[2]) {
    if (!m || !dims) return hy__error(HY_ERR_INVALID_ARG, "hy_model_output_shape: model and dims are required");
    const int sm = m->cfg.arch->stride_max;
    if (h <= 0 || w <= 0 || h % sm || w % sm || h > 8192 || w > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "input size %dx%d: each side must be a positive multiple of %d, at most 8192",
                         w, h, sm);
    size_t A = (size_t)hy__arch_num_anchors(&m->cfg, h, w), rows = (size_t)m->cfg.nc + (m->cfg.arch->objectness ? 5 : 4);
    dims[0] = m->cfg.arch->objectness ? A : rows;
    dims[1] = m->cfg.arch->objectness ? rows : A;
    return HY_OK;
}

void hy_model_free(hy_model *m) {
    if (!m) return;
    if (m->bw) m->bi->weights_free(m->bw);
    hy__wfile_close(m->wfile);
    for (int i = 0; m->names && i < m->n_names; i++) hy__free(m->names[i]);
    hy__free(m->names);
    hy__free(m->path);
    hy__load_report_free(&m->report);
    hy__free(m);
}

int hy_model_num_classes(const hy_model *m) { return m ? m->cfg.nc : 0; }
const char *hy_model_class_name(const hy_model *m, int id) {
    return m && id >= 0 && id < m->n_names ? m->names[id] : NULL;
}
const char *hy_model_variant(const hy_model *m) { return m ? m->cfg.variant : ""; }
int hy_model_num_threads(const hy_model *m) { return m ? (m->n_threads ? m->n_threads : hy__cpu_count()) : 0; }
const char *hy_model_device(const hy_model *m) { return m ? m->dev.name : ""; }
const char *hy_model_device_requested(const hy_model *m) { return m ? m->dev.requested : ""; }
const char *hy_model_device_fallback(const hy_model *m) { return m ? m->dev.fallback : ""; }
const char *hy_model_arch(const hy_model *m) { return m ? m->cfg.arch->name : ""; }
const char *hy_model_arch_title(const hy_model *m) { return m ? m->cfg.arch->title : ""; }
int hy_model_imgsz(const hy_model *m) { return m ? m->imgsz : 0; }

/* ---- contexts ---------------------------------------------------------------------- */
hy_prepare_params hy_prepare_default_params(void) {
    hy_prepare_params p = {.shapes = NULL, .n_shapes = 0, .warmup_runs = 3, .batch = 1};
    return p;
}

hy_context_params hy_context_default_params(void) {
    hy_context_params p = {.device = NULL, .n_threads = 0, .prepare = 0, .prep = hy_prepare_default_params()};
    return p;
}

static void plan_clear(hy_context *c, hy__model_plan *p) {
    if (p->plan) c->be->i->plan_free(c->be, p->plan);
    hy__graph_free(p->g);
    memset(p, 0, sizeof *p);
}

void hy_context_free(hy_context *c) {
    if (!c) return;
    for (int i = 0; i < HY_MODEL_MAX_PLANS && c->be; i++) plan_clear(c, &c->plans[i]);
    hy__backend_free(c->be); /* before the pool it was given */
    hy__threadpool_free(c->tp);
    hy__pages_free(c->lb_scratch, c->lb_scratch_size);
    hy__free(c->stage);
    hy__free(c->pp_best);
    hy__free(c->pp_arg);
    hy__free(c->cands);
    hy__free(c->keep);
    pthread_mutex_destroy(&c->mu);
    hy_model_free(c->owned);
    hy__free(c);
}

hy_status hy_context_create(const hy_model *m, const hy_context_params *params, hy_context **out) {
    if (!m || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_context_create: model and out are required");
    hy_context_params p = params ? *params : hy_context_default_params();
    if (p.device && p.device[0]) {
        /* the device the model runs on, or the one it was asked for (and fell back from) */
        hy__device_req r;
        if (hy__device_parse(p.device, &r)) return HY_ERR_INVALID_ARG;
        if (strcmp(r.name, m->dev.name) != 0 && strcmp(r.name, m->dev.requested) != 0)
            return hy__error(HY_ERR_INVALID_ARG,
                             "context device '%s': the model's weights were prepared for '%s' (load it with device "
                             "'%s')",
                             r.name, m->dev.name, r.name);
    }
    if (p.n_threads < 0 || p.n_threads > 256)
        return hy__error(HY_ERR_INVALID_ARG, "threads %d: must be between 0 (the model's) and 256", p.n_threads);
    hy_context *c = hy__calloc(1, sizeof *c);
    if (!c) return hy__error(HY_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->m = m;
    c->stats.load_ms = m->load_ms;
    c->stats.huge_page_probe_ms = -1;
    hy_status st = hy__threadpool_create(p.n_threads ? p.n_threads : m->n_threads, &c->tp);
    if (!st) {
        hy__backend_params bp = {.tp = c->tp, .lock_memory = m->lock_memory};
        st = m->bi->create(&bp, m->bw, &c->be);
    }
    if (!st && p.prepare) st = hy_model_prepare(c, &p.prep);
    if (st) {
        hy_context_free(c);
        return st;
    }
    *out = c;
    return HY_OK;
}

hy_status hy_context_load(const char *path, const hy_model_params *mp, const hy_context_params *cp, hy_context **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_context_load: path and out are required");
    hy_model *m;
    hy_status st = hy_model_load(path, mp, &m);
    if (st) return st;
    hy_context_params p = cp ? *cp : hy_context_default_params();
    if (!cp) p.prepare = 1;
    hy_context *c;
    if ((st = hy_context_create(m, &p, &c))) {
        hy_model_free(m);
        return st;
    }
    c->owned = m;
    *out = c;
    return HY_OK;
}

const hy_model *hy_context_model(const hy_context *c) { return c ? c->m : NULL; }
int hy_context_num_threads(const hy_context *c) { return c ? hy__threadpool_size(c->tp) : 0; }
const char *hy_context_device(const hy_context *c) { return c ? c->m->dev.name : ""; }

/* ---- plans ------------------------------------------------------------------------ */
/* Memory the backend reserved for new plans is populated on the pool's threads, chunk by
 * chunk; prepare also hands one item, touching the weights, to whichever thread is free. */
typedef struct populate_task {
    hy_context *c;
    int touch; /* item 0 touches the weights */
    int locked;
} populate_task;

static void populate_item(void *ctx, long i, int ith) {
    populate_task *t = ctx;
    (void)ith;
    if (t->touch && i == 0)
        t->locked = t->c->m->bi->weights_touch(t->c->m->bw);
    else
        t->c->be->i->populate_chunk(t->c->be, (int)(i - t->touch));
}

/* Populates what the backend left pending (and touches the weights when touch); returns
 * whether memory locking succeeded (weights_touch), 0 without touch. */
static int populate_pending(hy_context *c, int touch) {
    populate_task t = {.c = c, .touch = touch && c->m->bi->weights_touch};
    const int n_chunks = c->be->i->populate_begin && c->be->i->populate_chunk ? c->be->i->populate_begin(c->be) : 0;
    hy__threadpool_each(c->tp, (long)n_chunks + t.touch, populate_item, &t);
    return t.locked;
}

/* Grows the detect scratch for plans with A anchors and `floats` staged input/output. */
static hy_status scratch_grow(hy_context *c, size_t A, size_t floats) {
    if (A > c->pp_cap) {
        float *best = hy__realloc(c->pp_best, A * sizeof *best);
        if (best) c->pp_best = best;
        int *arg = hy__realloc(c->pp_arg, A * sizeof *arg);
        if (arg) c->pp_arg = arg;
        hy__cand *cd = hy__realloc(c->cands, A * sizeof *cd);
        if (cd) c->cands = cd;
        int *keep = hy__realloc(c->keep, A * sizeof *keep);
        if (keep) c->keep = keep;
        if (!best || !arg || !cd || !keep) return hy__error(HY_ERR_NOMEM, "out of memory for %zu anchors", A);
        c->pp_cap = A;
    }
    if (floats > c->stage_cap) {
        float *s = hy__realloc(c->stage, floats * sizeof *s);
        if (!s) return hy__error(HY_ERR_NOMEM, "out of memory for a %zu-float staging buffer", floats);
        c->stage = s;
        c->stage_cap = floats;
    }
    return HY_OK;
}

hy_status hy__model_plan_get(hy_context *c, int n, int h, int w, hy__model_plan **out) {
    c->clock++;
    hy__model_plan *slot = NULL;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) {
        hy__model_plan *p = &c->plans[i];
        if (p->g && p->n == n && p->h == h && p->w == w) {
            p->last_used = c->clock;
            *out = p;
            return HY_OK;
        }
        if (!p->g) {
            if (!slot || slot->g) slot = p;
        } else if (!slot || (slot->g && (slot->pinned > p->pinned ||
                                         (slot->pinned == p->pinned && p->last_used < slot->last_used)))) {
            slot = p; /* evict the least recently used, unprepared shapes first */
        }
    }
    /* New shape: build and plan (allocates; once per shape). Evicts the least recently used. */
    if (slot->g) plan_clear(c, slot);
    hy__backend *be = c->be;
    hy__graph *g;
    hy_status st = hy__arch_graph_build(&c->m->cfg, n, h, w, &g);
    if (st) return st;
    if (be->i->node_workspace) { /* re-plan with the backend's per-node workspaces */
        for (int i = 0; i < g->n_nodes; i++) g->nodes[i].ws_size = be->i->node_workspace(be, g, i);
        if ((st = hy__graph_plan(g))) {
            hy__graph_free(g);
            return st;
        }
    }
    hy__plan *plan;
    if ((st = be->i->graph_prepare(be, g, &plan))) {
        hy__graph_free(g);
        return st;
    }
    size_t A = (size_t)hy__arch_num_anchors(&c->m->cfg, h, w);
    size_t stage = be->i->tensor_host_ptr ? 0
                                          : HY_MAX(hy__tensor_numel(&g->tensors[g->input]),
                                                   hy__tensor_numel(&g->tensors[g->output]));
    if ((st = scratch_grow(c, A, stage))) {
        be->i->plan_free(be, plan);
        hy__graph_free(g);
        return st;
    }
    if (!c->preparing) { /* on demand: a cold event; prepare populates once for all shapes */
        c->stats.cold_events++;
        populate_pending(c, 0);
    }
    slot->n = n;
    slot->h = h;
    slot->w = w;
    slot->g = g;
    slot->plan = plan;
    slot->last_used = c->clock;
    *out = slot;
    return HY_OK;
}

/* Where the host writes plan p's input: the arena itself, or the staging buffer (then
 * input_commit copies it in). */
static float *input_ptr(hy_context *c, hy__model_plan *p) {
    return c->be->i->tensor_host_ptr ? c->be->i->tensor_host_ptr(c->be, p->plan, p->g->input) : c->stage;
}
static hy_status input_commit(hy_context *c, hy__model_plan *p) {
    if (c->be->i->tensor_host_ptr) return HY_OK;
    return c->be->i->tensor_set(c->be, p->plan, p->g->input, c->stage, hy__tensor_numel(&p->g->tensors[p->g->input]));
}
/* Plan p's output after a pass, readable on the host. */
static hy_status output_get(hy_context *c, hy__model_plan *p, const float **y) {
    if (c->be->i->synchronize) c->be->i->synchronize(c->be);
    if (c->be->i->tensor_host_ptr) {
        *y = c->be->i->tensor_host_ptr(c->be, p->plan, p->g->output);
        return HY_OK;
    }
    *y = c->stage;
    return c->be->i->tensor_get(c->be, p->plan, p->g->output, c->stage, c->stage_cap);
}

hy_status hy_model_forward(hy_context *c, const float *x, int n, int h, int w, float *out, size_t out_len) {
    if (!c || !x || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_forward: context, x and out are required");
    if (n < 1 || n > 256) return hy__error(HY_ERR_INVALID_ARG, "hy_model_forward: batch %d must be between 1 and 256", n);
    pthread_mutex_lock(&c->mu);
    hy__model_plan *p;
    hy_status st = hy__model_plan_get(c, n, h, w, &p);
    const size_t nx = (size_t)n * 3 * (size_t)h * (size_t)w;
    if (!st) st = c->be->i->tensor_set(c->be, p->plan, p->g->input, x, nx);
    if (!st) st = c->be->i->graph_compute(c->be, p->plan);
    if (!st) c->stats.n_inferences += (uint64_t)n;
    if (!st && c->be->i->synchronize) c->be->i->synchronize(c->be);
    if (!st) st = c->be->i->tensor_get(c->be, p->plan, p->g->output, out, out_len);
    pthread_mutex_unlock(&c->mu);
    return st;
}

/* ---- detection ---------------------------------------------------------------------- */
struct hy_result {
    size_t n;
    int width, height;
    hy_shape input;
    hy_timings t;
    hy_detection dets[];
};

/* Letterbox scratch: page-allocated, pre-faulted (its first use costs no faults). 0 or -1. */
static int lb_scratch_grow(hy_context *c, size_t need) {
    uint8_t *s = hy__pages_alloc(need);
    if (!s) return -1;
    hy__pages_free(c->lb_scratch, c->lb_scratch_size);
    c->lb_scratch = s;
    c->lb_scratch_size = need;
    return 0;
}

static hy_status check_imgsz(int imgsz) {
    if (imgsz < 32 || imgsz % 32 || imgsz > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: must be a multiple of 32 between 32 and 8192", imgsz);
    return HY_OK;
}

static hy_status check_detect_params(const hy_detect_params *dp, int imgsz) {
    hy_status st = check_imgsz(imgsz);
    if (st) return st;
    if (!(dp->conf >= 0 && dp->conf <= 1)) return hy__error(HY_ERR_INVALID_ARG, "conf %g: must be in [0, 1]", (double)dp->conf);
    if (!(dp->iou >= 0 && dp->iou <= 1)) return hy__error(HY_ERR_INVALID_ARG, "iou %g: must be in [0, 1]", (double)dp->iou);
    if (dp->max_det < 0) return hy__error(HY_ERR_INVALID_ARG, "max_det %d: must be >= 0", dp->max_det);
    const hy_shape s = dp->shape;
    if ((s.width || s.height) &&
        (s.width < 32 || s.height < 32 || s.width % 32 || s.height % 32 || s.width > 8192 || s.height > 8192))
        return hy__error(HY_ERR_INVALID_ARG, "shape %dx%d: must be multiples of 32 between 32 and 8192", s.width,
                         s.height);
    return HY_OK;
}

/* Letterbox geometry of one image of a batch, as Ultralytics' predictor: into a fixed shape
 * when asked; else rect (auto) when every image of the batch has one size (same), else
 * imgsz x imgsz. */
static hy__letterbox batch_letterbox(const hy_image *img, int same, int imgsz, hy_shape shape) {
    if (shape.width) return hy__letterbox_plan(img->width, img->height, shape.width, shape.height, 0, 32);
    return hy__letterbox_plan(img->width, img->height, imgsz, imgsz, same, 32);
}

/* Detects on n images in one pass (c->mu held). decode_ms (n or NULL) per image. */
static hy_status detect_locked(hy_context *c, const hy_image *const *imgs, int n, const hy_detect_params *dp,
                               const double *decode_ms, hy_result **out) {
    double t0 = hy__now_ms();
    const hy_model *m = c->m;
    int imgsz = dp->imgsz ? dp->imgsz : m->imgsz;
    hy_status st = check_detect_params(dp, imgsz);
    if (st) return st;
    int same = 1;
    for (int i = 1; i < n && same; i++) same = imgs[i]->width == imgs[0]->width && imgs[i]->height == imgs[0]->height;
    hy__letterbox lb0 = batch_letterbox(imgs[0], same, imgsz, dp->shape);
    hy__model_plan *p;
    if ((st = hy__model_plan_get(c, n, lb0.out_h, lb0.out_w, &p))) return st;
    const int nth = hy__threadpool_size(c->tp);
    size_t need = 0;
    for (int i = 0; i < n; i++) {
        hy__letterbox lb = batch_letterbox(imgs[i], same, imgsz, dp->shape);
        need = HY_MAX(need, hy__letterbox_scratch_size_mt(&lb, nth));
    }
    if (need > c->lb_scratch_size && lb_scratch_grow(c, need))
        return hy__error(HY_ERR_NOMEM, "out of memory for %zu-byte letterbox scratch", need);
    float *x = input_ptr(c, p);
    const size_t per_in = (size_t)3 * (size_t)lb0.out_h * (size_t)lb0.out_w;
    for (int i = 0; i < n; i++) {
        hy__letterbox lb = batch_letterbox(imgs[i], same, imgsz, dp->shape);
        HY_ASSERT(lb.out_h == lb0.out_h && lb.out_w == lb0.out_w);
        hy__letterbox_apply_mt(&lb, imgs[i]->data, (size_t)imgs[i]->width * 3, x + (size_t)i * per_in, c->lb_scratch,
                               c->tp);
    }
    if ((st = input_commit(c, p))) return st;
    double t1 = hy__now_ms();
    if ((st = c->be->i->graph_compute(c->be, p->plan))) return st;
    c->stats.n_inferences += (uint64_t)n;
    const float *y;
    if ((st = output_get(c, p, &y))) return st;
    double t2 = hy__now_ms();
    const int A = hy__arch_num_anchors(&m->cfg, lb0.out_h, lb0.out_w);
    const size_t per_out = hy__arch_output_numel(&m->cfg, lb0.out_h, lb0.out_w);
    const size_t max_dets = (size_t)dp->max_det;
    for (int i = 0; i < n; i++) {
        out[i] = hy__malloc(sizeof *out[i] + (max_dets ? max_dets : 1) * sizeof(hy_detection));
        if (!out[i]) {
            for (int k = 0; k < i; k++) hy__free(out[k]);
            return hy__error(HY_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < n; i++) {
        const hy_image *img = imgs[i];
        hy_result *r = out[i];
        size_t nd = hy__postprocess(c, y + (size_t)i * per_out, m->cfg.nc, A, m->cfg.arch->objectness, dp, r->dets,
                                    max_dets);
        /* scale_boxes: input pixels -> original pixels, then clip; Ultralytics 8 rounds the
         * padding (round(pad - 0.1)), YOLOv5 uses the exact half */
        float gain = HY_MIN((float)lb0.out_h / (float)img->height, (float)lb0.out_w / (float)img->width);
        double hx = ((double)lb0.out_w - (double)img->width * gain) / 2.0;
        double hh = ((double)lb0.out_h - (double)img->height * gain) / 2.0;
        float padx = (float)(m->cfg.arch->exact_pad ? hx : nearbyint(hx - 0.1));
        float pady = (float)(m->cfg.arch->exact_pad ? hh : nearbyint(hh - 0.1));
        for (size_t k = 0; k < nd; k++) {
            hy_detection *d = &r->dets[k];
            d->x1 = HY_MIN(HY_MAX((d->x1 - padx) / gain, 0.f), (float)img->width);
            d->x2 = HY_MIN(HY_MAX((d->x2 - padx) / gain, 0.f), (float)img->width);
            d->y1 = HY_MIN(HY_MAX((d->y1 - pady) / gain, 0.f), (float)img->height);
            d->y2 = HY_MIN(HY_MAX((d->y2 - pady) / gain, 0.f), (float)img->height);
        }
        r->n = nd;
        r->width = img->width;
        r->height = img->height;
        r->input = (hy_shape){lb0.out_w, lb0.out_h};
    }
    /* per image, as Ultralytics reports a batch's speed: the batch's stage times / n */
    double t3 = hy__now_ms();
    for (int i = 0; i < n; i++)
        out[i]->t = (hy_timings){.decode_ms = decode_ms ? decode_ms[i] : 0.0,
                                 .preprocess_ms = (t1 - t0) / n,
                                 .inference_ms = (t2 - t1) / n,
                                 .postprocess_ms = (t3 - t2) / n};
    return HY_OK;
}

hy_status hy_detect(hy_context *c, const hy_image *img, const hy_detect_params *p, hy_result **out) {
    if (!c || !img || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_detect: context, image and out are required");
    if (!img->data || img->width <= 0 || img->height <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "hy_detect: image has no pixels (%dx%d)", img->width, img->height);
    hy_detect_params dp = p ? *p : hy_detect_default_params();
    pthread_mutex_lock(&c->mu);
    hy_status st = detect_locked(c, &img, 1, &dp, NULL, out);
    pthread_mutex_unlock(&c->mu);
    return st;
}

hy_status hy_detect_batch(hy_context *c, const hy_image *const *imgs, int n, const hy_detect_params *p,
                          hy_result **out) {
    if (!c || !imgs || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_detect_batch: context, images and out are required");
    if (n < 1 || n > 256) return hy__error(HY_ERR_INVALID_ARG, "hy_detect_batch: %d images, must be 1 to 256", n);
    for (int i = 0; i < n; i++)
        if (!imgs[i] || !imgs[i]->data || imgs[i]->width <= 0 || imgs[i]->height <= 0)
            return hy__error(HY_ERR_INVALID_ARG, "hy_detect_batch: image %d has no pixels", i);
    hy_detect_params dp = p ? *p : hy_detect_default_params();
    pthread_mutex_lock(&c->mu);
    hy_status st = detect_locked(c, imgs, n, &dp, NULL, out);
    pthread_mutex_unlock(&c->mu);
    return st;
}

hy_status hy_detect_encoded(hy_context *c, const void *buf, size_t len, const hy_detect_params *p, hy_result **out) {
    if (!c || !buf || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_detect_encoded: context, buffer and out are required");
    double t0 = hy__now_ms();
    hy_image *img;
    hy_status st = hy_image_decode(buf, len, &img);
    if (st) return st;
    double dec = hy__now_ms() - t0;
    hy_detect_params dp = p ? *p : hy_detect_default_params();
    const hy_image *imgs[1] = {img};
    pthread_mutex_lock(&c->mu);
    st = detect_locked(c, imgs, 1, &dp, &dec, out);
    pthread_mutex_unlock(&c->mu);
    hy_image_free(img);
    return st;
}

/* ---- engine lifecycle ------------------------------------------------------------ */
hy_status hy_model_input_shape(const hy_model *m, int width, int height, int imgsz, hy_shape *out) {
    if (!m || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_input_shape: model and out are required");
    if (!imgsz) imgsz = m->imgsz;
    hy_status st = check_imgsz(imgsz);
    if (st) return st;
    if (width <= 0 || height <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "image size %dx%d: both sides must be positive", width, height);
    hy__letterbox lb = hy__letterbox_plan(width, height, imgsz, imgsz, 1, 32); /* as hy_detect */
    out->width = lb.out_w;
    out->height = lb.out_h;
    return HY_OK;
}

static int by_area_desc(const void *a, const void *b) {
    const hy_shape *x = a, *y = b;
    long ax = (long)x->width * x->height, ay = (long)y->width * y->height;
    return ax < ay ? 1 : ax > ay ? -1 : 0;
}

/* One dummy pass on plan p; returns its latency (ms) or < 0 on error. */
static double warm_pass(hy_context *c, hy__model_plan *p) {
    float *x = input_ptr(c, p);
    size_t n = hy__tensor_numel(&p->g->tensors[p->g->input]);
    for (size_t i = 0; i < n; i++) x[i] = 114.0f / 255.0f; /* the letterbox pad colour */
    double t0 = hy__now_ms();
    if (input_commit(c, p) || c->be->i->graph_compute(c->be, p->plan)) return -1;
    if (c->be->i->synchronize) c->be->i->synchronize(c->be);
    return hy__now_ms() - t0;
}

/* Plans every shape (graphs, arena reserved) on this thread, then populates the arena and
 * touches the weights on all of the pool's threads; returns the status and *locked. */
static hy_status prep_plans(hy_context *c, const hy_shape *shapes, int n, int batch, int side, hy__model_plan **plans,
                            int *locked) {
    hy_status st = HY_OK;
    c->preparing = 1;
    for (int i = 0; i < n && !st; i++) {
        st = hy__model_plan_get(c, batch, shapes[i].height, shapes[i].width, &plans[i]);
        if (!st) plans[i]->pinned = 1;
    }
    c->preparing = 0;
    /* letterbox scratch for the largest image the prepared shapes can take */
    if (!st) {
        hy__letterbox lb = hy__letterbox_plan(side, side, side, side, 0, 32);
        size_t need = hy__letterbox_scratch_size_mt(&lb, hy__threadpool_size(c->tp));
        if (need > c->lb_scratch_size && lb_scratch_grow(c, need))
            st = hy__error(HY_ERR_NOMEM, "out of memory for letterbox scratch");
    }
    *locked = populate_pending(c, 1); /* also after an error: nothing stays pending */
    return st;
}

hy_status hy_model_prepare(hy_context *c, const hy_prepare_params *params) {
    if (!c) return hy__error(HY_ERR_INVALID_ARG, "hy_model_prepare: context is required");
    hy_prepare_params pp = params ? *params : hy_prepare_default_params();
    const int imgsz = c->m->imgsz;
    hy_shape def = {imgsz, imgsz};
    if (!pp.shapes || pp.n_shapes <= 0) {
        pp.shapes = &def;
        pp.n_shapes = 1;
    }
    if (pp.batch == 0) pp.batch = 1;
    if (pp.batch < 1 || pp.batch > 256)
        return hy__error(HY_ERR_INVALID_ARG, "prepare: batch %d must be between 1 and 256", pp.batch);
    if (pp.n_shapes > HY_MODEL_MAX_PLANS)
        return hy__error(HY_ERR_INVALID_ARG, "prepare: %d shapes, at most %d", pp.n_shapes, HY_MODEL_MAX_PLANS);
    if (pp.warmup_runs < 0 || pp.warmup_runs > 1000)
        return hy__error(HY_ERR_INVALID_ARG, "prepare: warmup_runs %d must be between 0 and 1000", pp.warmup_runs);
    hy_shape shapes[HY_MODEL_MAX_PLANS];
    int max_w = 0, max_h = 0;
    for (int i = 0; i < pp.n_shapes; i++) {
        shapes[i] = pp.shapes[i];
        if (shapes[i].width < 32 || shapes[i].height < 32 || shapes[i].width % 32 || shapes[i].height % 32 ||
            shapes[i].width > 8192 || shapes[i].height > 8192)
            return hy__error(HY_ERR_INVALID_ARG, "prepare: shape %dx%d must be multiples of 32 between 32 and 8192",
                             shapes[i].width, shapes[i].height);
        max_w = HY_MAX(max_w, shapes[i].width);
        max_h = HY_MAX(max_h, shapes[i].height);
    }
    qsort(shapes, (size_t)pp.n_shapes, sizeof *shapes, by_area_desc); /* largest first: one arena */
    pthread_mutex_lock(&c->mu);
    hy_status st = HY_OK;
    double t0 = hy__now_ms();
    hy__model_plan *plans[HY_MODEL_MAX_PLANS];
    int locked = 0;
    st = prep_plans(c, shapes, pp.n_shapes, pp.batch, HY_MAX(imgsz, HY_MAX(max_w, max_h)), plans, &locked);
    double t1 = hy__now_ms();
    double first = 0, last = 0;
    for (int i = 0; i < pp.n_shapes && !st; i++)
        for (int r = 0; r < pp.warmup_runs && !st; r++) {
            double ms = warm_pass(c, plans[i]);
            if (ms < 0) st = hy__error(HY_ERR_BACKEND, "warm-up pass failed: %s", hy_last_error());
            if (i == 0 && r == 0) first = ms;
            last = ms;
        }
    double t2 = hy__now_ms();
    if (!st) {
        c->stats.prepare_ms = t1 - t0;
        c->stats.warmup_ms = t2 - t1;
        c->stats.first_warmup_ms = first;
        c->stats.last_warmup_ms = last;
        c->stats.memory_locked = locked;
    }
    pthread_mutex_unlock(&c->mu);
    return st;
}

hy_status hy_model_rewarm(hy_context *c) {
    if (!c) return hy__error(HY_ERR_INVALID_ARG, "hy_model_rewarm: context is required");
    hy_status st = HY_OK;
    for (int i = 0; i < HY_MODEL_MAX_PLANS && !st; i++) {
        pthread_mutex_lock(&c->mu); /* one pass at a time: callers wait at most one pass */
        hy__model_plan *p = &c->plans[i];
        if (p->g && p->pinned && warm_pass(c, p) < 0) st = hy__error(HY_ERR_BACKEND, "re-warm failed: %s", hy_last_error());
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    c->stats.rewarms++;
    pthread_mutex_unlock(&c->mu);
    return st;
}

hy_status hy_model_engine_stats(const hy_context *c, hy_engine_stats *out) {
    if (!c || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_engine_stats: context and out are required");
    hy_context *cc = (hy_context *)c;
    pthread_mutex_lock(&cc->mu);
    *out = c->stats;
    int n = 0;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) n += c->plans[i].g != NULL;
    out->n_shapes = n;
    out->huge_pages = 0;
    out->huge_page_probe_ms = -1;
    if (c->be->i->arena_pages) out->huge_pages = c->be->i->arena_pages(c->be, &out->huge_page_probe_ms);
    pthread_mutex_unlock(&cc->mu);
    return HY_OK;
}

size_t hy_result_count(const hy_result *r) { return r ? r->n : 0; }
const hy_detection *hy_result_get(const hy_result *r, size_t i) { return r && i < r->n ? &r->dets[i] : NULL; }
hy_timings hy_result_timings(const hy_result *r) {
    hy_timings z = {0, 0, 0, 0};
    return r ? r->t : z;
}
int hy_result_image_width(const hy_result *r) { return r ? r->width : 0; }
int hy_result_image_height(const hy_result *r) { return r ? r->height : 0; }
void hy__result_set_decode_ms(hy_result *r, double ms) {
    if (r) r->t.decode_ms = ms;
}
hy_shape hy_result_input_shape(const hy_result *r) {
    hy_shape z = {0, 0};
    return r ? r->input : z;
}
void hy_result_free(hy_result *r) { hy__free(r); }
