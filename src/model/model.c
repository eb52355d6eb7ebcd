/* hy_model: load a checkpoint, validate it against the YOLOv8 spec, fold BN, hand the
 * weights to the backend, and run detection with per-shape planned graphs. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "io/wfile.h"
#include "model/model_impl.h"
#include "ops/cpu/ops_cpu.h"

hy_detect_params hy_detect_default_params(void) {
    hy_detect_params p = {.conf = 0.25f, .iou = 0.7f, .max_det = 300, .imgsz = 0, .classes = NULL, .n_classes = 0,
                          .agnostic_nms = 0};
    return p;
}

void hy_model_free(hy_model *m) {
    if (!m) return;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) {
        if (m->plans[i].plan) m->be->i->plan_free(m->be, m->plans[i].plan);
        hy__graph_free(m->plans[i].g);
    }
    hy__backend_free(m->be);
    hy__wfile_close(m->wfile);
    for (int i = 0; m->names && i < m->n_names; i++) hy__free(m->names[i]);
    hy__free(m->names);
    hy__free(m->path);
    hy__pages_free(m->lb_scratch, m->lb_scratch_size);
    hy__free(m->pp_best);
    hy__free(m->pp_arg);
    hy__free(m->cands);
    hy__free(m->keep);
    hy__load_report_free(&m->report);
    pthread_mutex_destroy(&m->mu);
    hy__free(m);
}

int hy_model_num_classes(const hy_model *m) { return m ? m->cfg.nc : 0; }
const char *hy_model_class_name(const hy_model *m, int id) {
    return m && id >= 0 && id < m->n_names ? m->names[id] : NULL;
}
const char *hy_model_variant(const hy_model *m) { return m ? m->cfg.variant : ""; }
int hy_model_num_threads(const hy_model *m) { return m ? hy__backend_cpu_threads(m->be) : 0; }

/* ---- plans ------------------------------------------------------------------------ */
/* Memory the backend reserved for new plans is populated on the pool's threads, chunk by
 * chunk; prepare also hands one item, touching the weights, to whichever thread is free. */
typedef struct populate_task {
    hy__backend *be;
    int touch; /* item 0 touches the weights */
    int locked;
} populate_task;

static void populate_item(void *ctx, long i, int ith) {
    populate_task *t = ctx;
    (void)ith;
    if (t->touch && i == 0)
        t->locked = t->be->i->weights_touch(t->be);
    else
        t->be->i->populate_chunk(t->be, (int)(i - t->touch));
}

/* Populates what the backend left pending (and touches the weights when touch); returns
 * whether memory locking succeeded (weights_touch), 0 without touch. */
static int populate_pending(hy_model *m, int touch) {
    populate_task t = {.be = m->be, .touch = touch && m->be->i->weights_touch};
    const int n_chunks = m->be->i->populate_begin ? m->be->i->populate_begin(m->be) : 0;
    hy__threadpool_each(hy__backend_cpu_pool(m->be), (long)n_chunks + t.touch, populate_item, &t);
    return t.locked;
}

hy_status hy__model_plan_get(hy_model *m, int h, int w, hy__model_plan **out) {
    m->clock++;
    hy__model_plan *slot = NULL;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) {
        hy__model_plan *p = &m->plans[i];
        if (p->g && p->h == h && p->w == w) {
            p->last_used = m->clock;
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
    if (slot->g) {
        m->be->i->plan_free(m->be, slot->plan);
        hy__graph_free(slot->g);
        memset(slot, 0, sizeof *slot);
    }
    hy__graph *g;
    hy_status st = hy__yolov8_graph_build(&m->cfg, h, w, &g);
    if (st) return st;
    if (m->be->i->node_workspace) { /* re-plan with the backend's per-node workspaces */
        for (int i = 0; i < g->n_nodes; i++) g->nodes[i].ws_size = m->be->i->node_workspace(m->be, g, i);
        if ((st = hy__graph_plan(g))) {
            hy__graph_free(g);
            return st;
        }
    }
    hy__plan *plan;
    if ((st = m->be->i->graph_prepare(m->be, g, &plan))) {
        hy__graph_free(g);
        return st;
    }
    size_t A = (size_t)hy__yolov8_num_anchors(h, w);
    if (A > m->pp_cap) {
        float *best = hy__realloc(m->pp_best, A * sizeof *best);
        if (best) m->pp_best = best;
        int *arg = hy__realloc(m->pp_arg, A * sizeof *arg);
        if (arg) m->pp_arg = arg;
        hy__cand *c = hy__realloc(m->cands, A * sizeof *c);
        if (c) m->cands = c;
        int *keep = hy__realloc(m->keep, A * sizeof *keep);
        if (keep) m->keep = keep;
        if (!best || !arg || !c || !keep) {
            m->be->i->plan_free(m->be, plan);
            hy__graph_free(g);
            return hy__error(HY_ERR_NOMEM, "out of memory for %zu anchors", A);
        }
        m->pp_cap = A;
    }
    if (!m->preparing) { /* on demand: a cold event; prepare populates once for all shapes */
        m->stats.cold_events++;
        populate_pending(m, 0);
    }
    slot->h = h;
    slot->w = w;
    slot->g = g;
    slot->plan = plan;
    slot->last_used = m->clock;
    *out = slot;
    return HY_OK;
}

hy_status hy_model_forward(hy_model *m, const float *x, int h, int w, float *out, size_t out_len) {
    if (!m || !x || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_forward: model, x and out are required");
    pthread_mutex_lock(&m->mu);
    hy__model_plan *p;
    hy_status st = hy__model_plan_get(m, h, w, &p);
    if (!st) st = m->be->i->tensor_set(m->be, p->plan, p->g->input, x, (size_t)3 * (size_t)h * (size_t)w);
    if (!st) st = m->be->i->graph_compute(m->be, p->plan);
    if (!st) m->stats.n_inferences++;
    if (!st) st = m->be->i->tensor_get(m->be, p->plan, p->g->output, out, out_len);
    pthread_mutex_unlock(&m->mu);
    return st;
}

/* ---- detection ---------------------------------------------------------------------- */
struct hy_result {
    size_t n;
    int width, height;
    hy_timings t;
    hy_detection dets[];
};

/* Letterbox scratch: page-allocated, pre-faulted (its first use costs no faults). 0 or -1. */
static int lb_scratch_grow(hy_model *m, size_t need) {
    uint8_t *s = hy__pages_alloc(need);
    if (!s) return -1;
    hy__pages_free(m->lb_scratch, m->lb_scratch_size);
    m->lb_scratch = s;
    m->lb_scratch_size = need;
    return 0;
}

static hy_status detect_locked(hy_model *m, const hy_image *img, const hy_detect_params *dp, double decode_ms,
                               hy_result **out) {
    double t0 = hy__now_ms();
    int imgsz = dp->imgsz ? dp->imgsz : m->imgsz;
    if (imgsz < 32 || imgsz % 32 || imgsz > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: must be a multiple of 32 between 32 and 8192", imgsz);
    if (!(dp->conf >= 0 && dp->conf <= 1)) return hy__error(HY_ERR_INVALID_ARG, "conf %g: must be in [0, 1]", (double)dp->conf);
    if (!(dp->iou >= 0 && dp->iou <= 1)) return hy__error(HY_ERR_INVALID_ARG, "iou %g: must be in [0, 1]", (double)dp->iou);
    if (dp->max_det < 0) return hy__error(HY_ERR_INVALID_ARG, "max_det %d: must be >= 0", dp->max_det);
    hy__letterbox lb = hy__letterbox_plan(img->width, img->height, imgsz, imgsz, 1, 32);
    hy__model_plan *p;
    hy_status st = hy__model_plan_get(m, lb.out_h, lb.out_w, &p);
    if (st) return st;
    size_t need = hy__letterbox_scratch_size_mt(&lb, hy__backend_cpu_threads(m->be));
    if (need > m->lb_scratch_size && lb_scratch_grow(m, need))
        return hy__error(HY_ERR_NOMEM, "out of memory for %zu-byte letterbox scratch", need);
    float *x = m->be->i->tensor_host_ptr(m->be, p->plan, p->g->input);
    hy__letterbox_apply_mt(&lb, img->data, (size_t)img->width * 3, x, m->lb_scratch, hy__backend_cpu_pool(m->be));
    double t1 = hy__now_ms();
    if ((st = m->be->i->graph_compute(m->be, p->plan))) return st;
    m->stats.n_inferences++;
    double t2 = hy__now_ms();
    const float *y = m->be->i->tensor_host_ptr(m->be, p->plan, p->g->output);
    int A = hy__yolov8_num_anchors(lb.out_h, lb.out_w);
    size_t max_dets = (size_t)dp->max_det;
    hy_result *r = hy__malloc(sizeof *r + (max_dets ? max_dets : 1) * sizeof(hy_detection));
    if (!r) return hy__error(HY_ERR_NOMEM, "out of memory");
    size_t n = hy__postprocess(m, y, m->cfg.nc, A, dp, r->dets, max_dets);
    /* scale_boxes: input pixels -> original pixels, then clip */
    float gain = HY_MIN((float)lb.out_h / (float)img->height, (float)lb.out_w / (float)img->width);
    float padx = (float)nearbyint(((double)lb.out_w - (double)img->width * gain) / 2.0 - 0.1);
    float pady = (float)nearbyint(((double)lb.out_h - (double)img->height * gain) / 2.0 - 0.1);
    for (size_t i = 0; i < n; i++) {
        hy_detection *d = &r->dets[i];
        d->x1 = HY_MIN(HY_MAX((d->x1 - padx) / gain, 0.f), (float)img->width);
        d->x2 = HY_MIN(HY_MAX((d->x2 - padx) / gain, 0.f), (float)img->width);
        d->y1 = HY_MIN(HY_MAX((d->y1 - pady) / gain, 0.f), (float)img->height);
        d->y2 = HY_MIN(HY_MAX((d->y2 - pady) / gain, 0.f), (float)img->height);
    }
    r->n = n;
    r->width = img->width;
    r->height = img->height;
    double t3 = hy__now_ms();
    r->t = (hy_timings){.decode_ms = decode_ms, .preprocess_ms = t1 - t0, .inference_ms = t2 - t1, .postprocess_ms = t3 - t2};
    *out = r;
    return HY_OK;
}

hy_status hy_detect(hy_model *m, const hy_image *img, const hy_detect_params *p, hy_result **out) {
    if (!m || !img || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_detect: model, image and out are required");
    if (!img->data || img->width <= 0 || img->height <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "hy_detect: image has no pixels (%dx%d)", img->width, img->height);
    hy_detect_params dp = p ? *p : hy_detect_default_params();
    pthread_mutex_lock(&m->mu);
    hy_status st = detect_locked(m, img, &dp, 0.0, out);
    pthread_mutex_unlock(&m->mu);
    return st;
}

hy_status hy_detect_encoded(hy_model *m, const void *buf, size_t len, const hy_detect_params *p, hy_result **out) {
    if (!m || !buf || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_detect_encoded: model, buffer and out are required");
    double t0 = hy__now_ms();
    hy_image *img;
    hy_status st = hy_image_decode(buf, len, &img);
    if (st) return st;
    double dec = hy__now_ms() - t0;
    hy_detect_params dp = p ? *p : hy_detect_default_params();
    pthread_mutex_lock(&m->mu);
    st = detect_locked(m, img, &dp, dec, out);
    pthread_mutex_unlock(&m->mu);
    hy_image_free(img);
    return st;
}

/* ---- engine lifecycle ------------------------------------------------------------ */
hy_status hy_model_input_shape(const hy_model *m, int width, int height, int imgsz, hy_shape *out) {
    if (!m || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_input_shape: model and out are required");
    if (!imgsz) imgsz = m->imgsz;
    if (imgsz < 32 || imgsz % 32 || imgsz > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: must be a multiple of 32 between 32 and 8192", imgsz);
    if (width <= 0 || height <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "image size %dx%d: both sides must be positive", width, height);
    hy__letterbox lb = hy__letterbox_plan(width, height, imgsz, imgsz, 1, 32); /* as detect_locked */
    out->width = lb.out_w;
    out->height = lb.out_h;
    return HY_OK;
}

hy_prepare_params hy_prepare_default_params(void) {
    hy_prepare_params p = {.shapes = NULL, .n_shapes = 0, .warmup_runs = 3};
    return p;
}

static int by_area_desc(const void *a, const void *b) {
    const hy_shape *x = a, *y = b;
    long ax = (long)x->width * x->height, ay = (long)y->width * y->height;
    return ax < ay ? 1 : ax > ay ? -1 : 0;
}

/* One dummy pass on plan p; returns its latency (ms) or < 0 on error. */
static double warm_pass(hy_model *m, hy__model_plan *p) {
    float *x = m->be->i->tensor_host_ptr(m->be, p->plan, p->g->input);
    size_t n = hy__tensor_numel(&p->g->tensors[p->g->input]);
    for (size_t i = 0; i < n; i++) x[i] = 114.0f / 255.0f; /* the letterbox pad colour */
    double t0 = hy__now_ms();
    if (m->be->i->graph_compute(m->be, p->plan)) return -1;
    return hy__now_ms() - t0;
}

/* Plans every shape (graphs, arena reserved) on this thread, then populates the arena and
 * touches the weights on all of the pool's threads; returns the status and *locked. */
static hy_status prep_plans(hy_model *m, const hy_shape *shapes, int n, int side, hy__model_plan **plans,
                            int *locked) {
    hy_status st = HY_OK;
    m->preparing = 1;
    for (int i = 0; i < n && !st; i++) {
        st = hy__model_plan_get(m, shapes[i].height, shapes[i].width, &plans[i]);
        if (!st) plans[i]->pinned = 1;
    }
    m->preparing = 0;
    /* letterbox scratch for the largest image the prepared shapes can take */
    if (!st) {
        hy__letterbox lb = hy__letterbox_plan(side, side, side, side, 0, 32);
        size_t need = hy__letterbox_scratch_size_mt(&lb, hy__backend_cpu_threads(m->be));
        if (need > m->lb_scratch_size && lb_scratch_grow(m, need))
            st = hy__error(HY_ERR_NOMEM, "out of memory for letterbox scratch");
    }
    *locked = populate_pending(m, 1); /* also after an error: nothing stays pending */
    return st;
}

hy_status hy_model_prepare(hy_model *m, const hy_prepare_params *params) {
    if (!m) return hy__error(HY_ERR_INVALID_ARG, "hy_model_prepare: model is required");
    hy_prepare_params pp = params ? *params : hy_prepare_default_params();
    hy_shape def = {m->imgsz, m->imgsz};
    if (!pp.shapes || pp.n_shapes <= 0) {
        pp.shapes = &def;
        pp.n_shapes = 1;
    }
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
    pthread_mutex_lock(&m->mu);
    hy_status st = HY_OK;
    double t0 = hy__now_ms();
    hy__model_plan *plans[HY_MODEL_MAX_PLANS];
    int locked = 0;
    st = prep_plans(m, shapes, pp.n_shapes, HY_MAX(m->imgsz, HY_MAX(max_w, max_h)), plans, &locked);
    double t1 = hy__now_ms();
    double first = 0, last = 0;
    for (int i = 0; i < pp.n_shapes && !st; i++)
        for (int r = 0; r < pp.warmup_runs && !st; r++) {
            double ms = warm_pass(m, plans[i]);
            if (ms < 0) st = hy__error(HY_ERR_BACKEND, "warm-up pass failed: %s", hy_last_error());
            if (i == 0 && r == 0) first = ms;
            last = ms;
        }
    double t2 = hy__now_ms();
    if (!st) {
        m->stats.prepare_ms = t1 - t0;
        m->stats.warmup_ms = t2 - t1;
        m->stats.first_warmup_ms = first;
        m->stats.last_warmup_ms = last;
        m->stats.memory_locked = locked;
    }
    pthread_mutex_unlock(&m->mu);
    return st;
}

hy_status hy_model_rewarm(hy_model *m) {
    if (!m) return hy__error(HY_ERR_INVALID_ARG, "hy_model_rewarm: model is required");
    hy_status st = HY_OK;
    for (int i = 0; i < HY_MODEL_MAX_PLANS && !st; i++) {
        pthread_mutex_lock(&m->mu); /* one pass at a time: callers wait at most one pass */
        hy__model_plan *p = &m->plans[i];
        if (p->g && p->pinned && warm_pass(m, p) < 0) st = hy__error(HY_ERR_BACKEND, "re-warm failed: %s", hy_last_error());
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_lock(&m->mu);
    m->stats.rewarms++;
    pthread_mutex_unlock(&m->mu);
    return st;
}

hy_status hy_model_engine_stats(const hy_model *m, hy_engine_stats *out) {
    if (!m || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_engine_stats: model and out are required");
    hy_model *mm = (hy_model *)m;
    pthread_mutex_lock(&mm->mu);
    *out = m->stats;
    int n = 0;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) n += m->plans[i].g != NULL;
    out->n_shapes = n;
    out->huge_pages = hy__backend_cpu_arena_pages(m->be, &out->huge_page_probe_ms);
    pthread_mutex_unlock(&mm->mu);
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
void hy_result_free(hy_result *r) { hy__free(r); }
