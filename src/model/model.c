/* hy_model: load a checkpoint, validate it against the YOLOv8 spec, fold BN, hand the
 * weights to the backend, and run detection with per-shape planned graphs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "model/model_impl.h"
#include "ops/cpu/ops_cpu.h"

#define BN_EPS 1e-3 /* Ultralytics BatchNorm2d(eps=0.001) */

hy_model_params hy_model_default_params(void) {
    hy_model_params p = {.n_threads = 0, .imgsz = 640};
    return p;
}

hy_detect_params hy_detect_default_params(void) {
    hy_detect_params p = {.conf = 0.25f, .iou = 0.7f, .max_det = 300, .imgsz = 0, .classes = NULL, .n_classes = 0,
                          .agnostic_nms = 0};
    return p;
}

/* ---- architecture from the checkpoint ---------------------------------------------- */
static const hy__pt_tensor *find(const hy__pt_file *pt, const char *name) { return hy__pt_find(pt, name); }

hy_status hy__model_cfg_from_pt(const hy__pt_file *pt, const char *what, hy__yolov8_cfg *out) {
    const hy__pt_tensor *c0 = find(pt, "model.0.conv.weight");
    const hy__pt_tensor *cls = find(pt, "model.22.cv3.0.2.weight");
    int nc = pt->nc > 0 ? pt->nc : (cls && cls->ndim == 4 ? (int)cls->shape[0] : -1);
    if (pt->has_yaml && pt->scale[0]) {
        if (nc <= 0) return hy__error(HY_ERR_FORMAT, "%s: model yaml has no class count (nc)", what);
        hy_status st = hy__yolov8_cfg_for_scale(pt->scale, nc, out);
        if (st) return hy__error_prefix(st, "%s", what);
        return HY_OK;
    }
    if (pt->has_yaml && pt->depth_multiple > 0 && pt->width_multiple > 0 && nc > 0) {
        memset(out, 0, sizeof *out);
        out->nc = nc;
        out->depth = pt->depth_multiple;
        out->width = pt->width_multiple;
        out->max_channels = pt->max_channels > 0 ? pt->max_channels : 1024;
        out->reg_max = 16;
        /* name the variant when the multiples are a standard scale */
        static const char *sc[] = {"n", "s", "m", "l", "x"};
        for (size_t i = 0; i < HY_ARRAY_LEN(sc); i++) {
            hy__yolov8_cfg t;
            hy__yolov8_cfg_for_scale(sc[i], nc, &t);
            if (fabs(t.depth - out->depth) < 1e-6 && fabs(t.width - out->width) < 1e-6 &&
                (pt->max_channels <= 0 || pt->max_channels == t.max_channels))
                *out = t;
        }
        return HY_OK;
    }
    /* No yaml (plain state_dict): infer the scale from the stem width, nc from the head. */
    if (!c0 || c0->ndim != 4 || nc <= 0)
        return hy__error(HY_ERR_FORMAT,
                         "%s: not a YOLOv8 detection checkpoint (no model yaml, and no 'model.0.conv.weight' / "
                         "'model.22.cv3.0.2.weight' to infer the architecture from)",
                         what);
    static const struct { int c; const char *s; } stems[] = {{16, "n"}, {32, "s"}, {48, "m"}, {64, "l"}, {80, "x"}};
    for (size_t i = 0; i < HY_ARRAY_LEN(stems); i++)
        if (c0->shape[0] == stems[i].c) return hy__yolov8_cfg_for_scale(stems[i].s, nc, out);
    return hy__error(HY_ERR_FORMAT, "%s: model.0.conv.weight has %lld output channels, which matches no YOLOv8 scale",
                     what, (long long)c0->shape[0]);
}

/* ---- validation ------------------------------------------------------------------ */
static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    if (ndim == 0) {
        snprintf(buf, n, "scalar");
        return;
    }
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? "x%lld" : "%lld", (long long)shape[i]);
}

static int shape_eq(const hy__tensor_spec *s, const hy__pt_tensor *t) {
    if (s->ndim != t->ndim) return 0;
    for (int i = 0; i < s->ndim; i++)
        if (s->shape[i] != t->shape[i]) return 0;
    return 1;
}

typedef struct msgbuf {
    char text[12000];
    size_t len;
    int count, shown;
} msgbuf;

static void msg_add(msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(msgbuf *m, const char *fmt, ...) {
    m->count++;
    if (m->len + 200 >= sizeof m->text) return;
    va_list ap;
    va_start(ap, fmt);
    m->len += (size_t)vsnprintf(m->text + m->len, sizeof m->text - m->len, fmt, ap);
    va_end(ap);
    m->shown++;
}

hy_status hy__model_validate(const hy__yolov8_spec *spec, const hy__pt_file *pt, const char *what) {
    msgbuf *m = hy__calloc(1, sizeof *m);
    if (!m) return hy__error(HY_ERR_NOMEM, "out of memory");
    char a[64], b[64];
    int missing = 0, mismatched = 0, extra = 0;
    for (int i = 0; i < spec->n_tensors; i++) {
        const hy__tensor_spec *s = &spec->tensors[i];
        const hy__pt_tensor *t = find(pt, s->name);
        shape_str(a, sizeof a, s->ndim, s->shape);
        if (!t) {
            msg_add(m, "\n  %s: missing (expected %s)", s->name, a);
            missing++;
        } else if (!shape_eq(s, t)) {
            shape_str(b, sizeof b, t->ndim, t->shape);
            msg_add(m, "\n  %s: expected %s, file has %s", s->name, a, b);
            mismatched++;
        }
    }
    for (size_t i = 0; i < pt->n_tensors; i++) {
        const hy__pt_tensor *t = &pt->tensors[i];
        int known = 0;
        for (int j = 0; j < spec->n_tensors && !known; j++) known = strcmp(spec->tensors[j].name, t->name) == 0;
        if (!known) {
            shape_str(b, sizeof b, t->ndim, t->shape);
            msg_add(m, "\n  %s: unexpected tensor (%s)", t->name, b);
            extra++;
        }
    }
    hy_status st = HY_OK;
    if (m->count) {
        st = hy__error(HY_ERR_MISMATCH, "%s: does not match YOLOv8 (%d missing, %d wrong shape, %d unexpected)%s%s", what,
                       missing, mismatched, extra, m->text, m->shown < m->count ? "\n  ..." : "");
    }
    hy__free(m);
    return st;
}

/* ---- load ------------------------------------------------------------------------ */
static hy_status fold_conv(const hy__pt_file *pt, const hy__conv_spec *c, float *w, float *bias, const char *what) {
    char name[128];
    size_t nw = (size_t)c->cout * (size_t)c->cin * (size_t)c->k * (size_t)c->k;
    snprintf(name, sizeof name, c->has_bn ? "%s.conv.weight" : "%s.weight", c->prefix);
    const hy__pt_tensor *tw = find(pt, name);
    if (!tw || tw->numel != nw) return hy__error(HY_ERR_MISMATCH, "%s: %s missing or mis-shaped", what, name);
    hy_status st = hy__pt_tensor_to_f32(tw, w);
    if (st) return st;
    if (!c->has_bn) {
        snprintf(name, sizeof name, "%s.bias", c->prefix);
        const hy__pt_tensor *tb = find(pt, name);
        if (!tb || tb->numel != (size_t)c->cout) return hy__error(HY_ERR_MISMATCH, "%s: %s missing or mis-shaped", what, name);
        return hy__pt_tensor_to_f32(tb, bias);
    }
    static const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};
    float *bn = hy__malloc((size_t)c->cout * 4 * sizeof(float));
    if (!bn) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s.bn.%s", c->prefix, bn_names[k]);
        const hy__pt_tensor *t = find(pt, name);
        if (!t || t->numel != (size_t)c->cout) {
            hy__free(bn);
            return hy__error(HY_ERR_MISMATCH, "%s: %s missing or mis-shaped", what, name);
        }
        st = hy__pt_tensor_to_f32(t, bn + (size_t)k * (size_t)c->cout);
        if (st) {
            hy__free(bn);
            return st;
        }
    }
    /* w' = w * g / sqrt(var + eps); b' = beta - mean * g / sqrt(var + eps) */
    const float *g = bn, *beta = bn + c->cout, *mean = bn + 2 * c->cout, *var = bn + 3 * c->cout;
    size_t per = nw / (size_t)c->cout;
    for (int o = 0; o < c->cout; o++) {
        double s = (double)g[o] / sqrt((double)var[o] + BN_EPS);
        for (size_t j = 0; j < per; j++) w[(size_t)o * per + j] = (float)((double)w[(size_t)o * per + j] * s);
        bias[o] = (float)((double)beta[o] - (double)mean[o] * s);
    }
    hy__free(bn);
    return HY_OK;
}

static hy_status set_names(hy_model *m, const hy__pt_file *pt) {
    m->n_names = m->cfg.nc;
    m->names = hy__calloc((size_t)m->n_names, sizeof(char *));
    if (!m->names) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_names; i++) {
        char buf[32];
        const char *s = NULL;
        if (pt->names && i < pt->n_names && pt->names[i]) s = pt->names[i];
        if (!s) {
            snprintf(buf, sizeof buf, "class%d", i); /* as Ultralytics default_class_names */
            s = buf;
        }
        m->names[i] = hy__strdup(s);
        if (!m->names[i]) return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    return HY_OK;
}

hy_status hy__model_from_pt(const hy__pt_file *pt, const char *what, const hy_model_params *params, hy_model **out) {
    hy_model_params p = params ? *params : hy_model_default_params();
    if (p.imgsz == 0) p.imgsz = 640;
    if (p.imgsz < 32 || p.imgsz % 32 || p.imgsz > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: must be a multiple of 32 between 32 and 8192", p.imgsz);
    if (p.n_threads < 0 || p.n_threads > 256)
        return hy__error(HY_ERR_INVALID_ARG, "threads %d: must be between 0 (all cores) and 256", p.n_threads);
    hy__yolov8_cfg cfg;
    hy_status st = hy__model_cfg_from_pt(pt, what, &cfg);
    if (st) return st;
    hy__yolov8_spec *spec = NULL;
    hy__conv_weights *cw = NULL;
    float *wbuf = NULL;
    hy_model *m = hy__calloc(1, sizeof *m);
    if (!m) return hy__error(HY_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->cfg = cfg;
    m->imgsz = p.imgsz;
    if ((st = hy__yolov8_spec_create(&cfg, &spec))) goto fail;
    if ((st = hy__model_validate(spec, pt, what))) goto fail;
    /* Fold every conv into one float buffer, hand it to the backend, then drop it. */
    size_t total = 0;
    for (int i = 0; i < spec->n_convs; i++) {
        const hy__conv_spec *c = &spec->convs[i];
        total += (size_t)c->cout * (size_t)c->cin * (size_t)c->k * (size_t)c->k + (size_t)c->cout;
    }
    wbuf = hy__malloc(total * sizeof(float));
    cw = hy__calloc((size_t)spec->n_convs, sizeof *cw);
    if (!wbuf || !cw) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory for %zu weights", what, total);
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < spec->n_convs; i++) {
        const hy__conv_spec *c = &spec->convs[i];
        size_t nw = (size_t)c->cout * (size_t)c->cin * (size_t)c->k * (size_t)c->k;
        float *w = wbuf + off, *b = wbuf + off + nw;
        off += nw + (size_t)c->cout;
        if ((st = fold_conv(pt, c, w, b, what))) goto fail;
        cw[i].p = (hy__conv2d_params){.cin = c->cin, .cout = c->cout, .kh = c->k, .kw = c->k, .stride = c->stride,
                                      .pad = c->k / 2, .act = c->act, .weight_id = i};
        cw[i].w = w;
        cw[i].b = b;
    }
    hy__backend_params bp = {.n_threads = p.n_threads, .reference = 0};
    if ((st = hy__backend_create("cpu", &bp, &m->be))) goto fail;
    if ((st = m->be->i->weights_set(m->be, cw, spec->n_convs))) goto fail;
    if ((st = set_names(m, pt))) goto fail;
    m->path = hy__strdup(what);
    if (!m->path) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hy__free(wbuf);
    hy__free(cw);
    hy__yolov8_spec_free(spec);
    *out = m;
    return HY_OK;
fail:
    hy__free(wbuf);
    hy__free(cw);
    hy__yolov8_spec_free(spec);
    hy_model_free(m);
    return st;
}

hy_status hy_model_load(const char *path, const hy_model_params *params, hy_model **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_load: path and out are required");
    hy__pt_file *pt = NULL;
    hy_status st = hy__pt_load(path, &pt);
    if (st) return st;
    st = hy__model_from_pt(pt, path, params, out);
    hy__pt_free(pt);
    return st;
}

void hy_model_free(hy_model *m) {
    if (!m) return;
    for (int i = 0; i < HY_MODEL_MAX_PLANS; i++) {
        if (m->plans[i].plan) m->be->i->plan_free(m->be, m->plans[i].plan);
        hy__graph_free(m->plans[i].g);
    }
    hy__backend_free(m->be);
    for (int i = 0; m->names && i < m->n_names; i++) hy__free(m->names[i]);
    hy__free(m->names);
    hy__free(m->path);
    hy__free(m->lb_scratch);
    hy__free(m->pp_best);
    hy__free(m->pp_arg);
    hy__free(m->cands);
    hy__free(m->keep);
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
        } else if (!slot || (slot->g && p->last_used < slot->last_used)) {
            slot = p;
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
    size_t need = hy__letterbox_scratch_size(&lb);
    if (need > m->lb_scratch_size) {
        uint8_t *s = hy__realloc(m->lb_scratch, need);
        if (!s) return hy__error(HY_ERR_NOMEM, "out of memory for %zu-byte letterbox scratch", need);
        m->lb_scratch = s;
        m->lb_scratch_size = need;
    }
    float *x = m->be->i->tensor_host_ptr(m->be, p->plan, p->g->input);
    hy__letterbox_apply(&lb, img->data, (size_t)img->width * 3, x, m->lb_scratch);
    double t1 = hy__now_ms();
    if ((st = m->be->i->graph_compute(m->be, p->plan))) return st;
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

size_t hy_result_count(const hy_result *r) { return r ? r->n : 0; }
const hy_detection *hy_result_get(const hy_result *r, size_t i) { return r && i < r->n ? &r->dets[i] : NULL; }
hy_timings hy_result_timings(const hy_result *r) {
    hy_timings z = {0, 0, 0, 0};
    return r ? r->t : z;
}
int hy_result_image_width(const hy_result *r) { return r ? r->width : 0; }
int hy_result_image_height(const hy_result *r) { return r ? r->height : 0; }
void hy_result_free(hy_result *r) { hy__free(r); }
