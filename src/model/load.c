/* Model loading: weights source -> architecture config -> name/shape resolution (strict
 * or transfer, with key normalisation) -> BN folding -> backend. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/wfile.h"
#include "model/model_impl.h"
#include "model/pcache.h"

#define BN_EPS 1e-3 /* Ultralytics BatchNorm2d(eps=0.001) */

hy_model_params hy_model_default_params(void) {
    hy_model_params p;
    memset(&p, 0, sizeof p);
    p.imgsz = 640;
    p.mode = HY_LOAD_STRICT;
    p.cache = 1;
    return p;
}

/* ---- load report ------------------------------------------------------------------- */
static hy_status report_add(hy__load_report *r, hy_load_item what, const char *name, const char *reason) {
    hy__load_list *l = &r->lists[what];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        hy__load_entry *e = hy__realloc(l->items, cap * sizeof *e);
        if (!e) return hy__error(HY_ERR_NOMEM, "out of memory");
        l->items = e;
        l->cap = cap;
    }
    hy__load_entry *e = &l->items[l->n];
    e->name = hy__strdup(name);
    e->reason = hy__strdup(reason ? reason : "");
    if (!e->name || !e->reason) {
        hy__free(e->name);
        hy__free(e->reason);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    l->n++;
    return HY_OK;
}

void hy__load_report_free(hy__load_report *r) {
    for (int k = 0; k < HY_LOAD_ITEM_COUNT; k++) {
        for (size_t i = 0; i < r->lists[k].n; i++) {
            hy__free(r->lists[k].items[i].name);
            hy__free(r->lists[k].items[i].reason);
        }
        hy__free(r->lists[k].items);
    }
    memset(r, 0, sizeof *r);
}

size_t hy_model_load_count(const hy_model *m, hy_load_item what) {
    return m && (unsigned)what < HY_LOAD_ITEM_COUNT ? m->report.lists[what].n : 0;
}
const char *hy_model_load_name(const hy_model *m, hy_load_item what, size_t i) {
    return i < hy_model_load_count(m, what) ? m->report.lists[what].items[i].name : NULL;
}
const char *hy_model_load_reason(const hy_model *m, hy_load_item what, size_t i) {
    return i < hy_model_load_count(m, what) ? m->report.lists[what].items[i].reason : NULL;
}
size_t hy_model_num_tensors(const hy_model *m) { return m ? m->report.n_tensors : 0; }

/* ---- architecture ------------------------------------------------------------------- */
static const hy__wtensor *src_find(const hy__wsource *src, const char *name) {
    for (size_t i = 0; i < src->n_tensors; i++)
        if (strcmp(src->tensors[i].name, name) == 0) return &src->tensors[i];
    return NULL;
}

/* The config a source describes: hy__arch_cfg_from_source (model/arch.c). */

/* ---- name normalisation + hash index ----------------------------------------------- */
typedef struct name_index {
    char **names;       /* normalised source names */
    int *slots;         /* open addressing: index into names, -1 empty */
    size_t n, cap;
} name_index;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* "module." / "_orig_mod." (any order, repeated) stripped, then the user's prefix maps. */
static char *normalise(const char *name, const hy_model_params *p) {
    for (int changed = 1; changed;) {
        changed = 0;
        if (strncmp(name, "module.", 7) == 0) name += 7, changed = 1;
        if (strncmp(name, "_orig_mod.", 10) == 0) name += 10, changed = 1;
    }
    for (int i = 0; i < p->n_map; i++) {
        size_t ol = strlen(p->map_from[i]);
        if (strncmp(name, p->map_from[i], ol) == 0) {
            size_t nl = strlen(p->map_to[i]), rl = strlen(name + ol);
            char *s = hy__malloc(nl + rl + 1);
            if (!s) return NULL;
            memcpy(s, p->map_to[i], nl);
            memcpy(s + nl, name + ol, rl + 1);
            return s;
        }
    }
    return hy__strdup(name);
}

static void index_free(name_index *x) {
    for (size_t i = 0; i < x->n; i++) hy__free(x->names[i]);
    hy__free(x->names);
    hy__free(x->slots);
}

static hy_status index_build(name_index *x, const hy__wsource *src, const hy_model_params *p) {
    memset(x, 0, sizeof *x);
    x->n = src->n_tensors;
    x->cap = 16;
    while (x->cap < 2 * x->n) x->cap *= 2;
    x->names = hy__calloc(x->n ? x->n : 1, sizeof(char *));
    x->slots = hy__malloc(x->cap * sizeof(int));
    if (!x->names || !x->slots) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < x->cap; i++) x->slots[i] = -1;
    for (size_t i = 0; i < x->n; i++) {
        x->names[i] = normalise(src->tensors[i].name, p);
        if (!x->names[i]) return hy__error(HY_ERR_NOMEM, "out of memory");
        size_t h = (size_t)fnv1a(x->names[i]) & (x->cap - 1);
        while (x->slots[h] >= 0 && strcmp(x->names[x->slots[h]], x->names[i]) != 0) h = (h + 1) & (x->cap - 1);
        if (x->slots[h] < 0) x->slots[h] = (int)i; /* first wins on duplicates */
    }
    return HY_OK;
}

static int index_find(const name_index *x, const char *name) {
    size_t h = (size_t)fnv1a(name) & (x->cap - 1);
    while (x->slots[h] >= 0) {
        if (strcmp(x->names[x->slots[h]], name) == 0) return x->slots[h];
        h = (h + 1) & (x->cap - 1);
    }
    return -1;
}

/* ---- resolution ------------------------------------------------------------------- */
static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    if (ndim == 0) {
        snprintf(buf, n, "scalar");
        return;
    }
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? "x%lld" : "%lld", (long long)shape[i]);
}

static int shape_eq(const hy__tensor_spec *s, const hy__wtensor *t) {
    if (s->ndim != t->ndim) return 0;
    for (int i = 0; i < s->ndim; i++)
        if (s->shape[i] != t->shape[i]) return 0;
    return 1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Deterministic uniform [-1, 1) (splitmix64). */
static float rnd(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* Initial value of a network tensor that the file does not provide, as Ultralytics
 * builds a fresh DetectionModel: Conv2d weights and plain biases PyTorch's default
 * kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)); BN identity; the head's own init
 * (Detect.bias_init(), DFL arange: hy__model_spec_init_tensor). */
static void init_tensor(const hy__model_spec *spec, const hy__tensor_spec *s, float *dst, uint64_t *rng) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->shape[i];
    const char *name = s->name;
    if (hy__model_spec_init_tensor(spec, s, dst, n)) return;
    float fill = 0.f;
    if (ends_with(name, ".bn.weight") || ends_with(name, ".bn.running_var")) fill = 1.f;
    if (ends_with(name, ".bn.weight") || ends_with(name, ".bn.bias") || ends_with(name, ".bn.running_mean") ||
        ends_with(name, ".bn.running_var") || ends_with(name, ".num_batches_tracked") || ends_with(name, ".conv.bias")) {
        for (size_t i = 0; i < n; i++) dst[i] = fill;
        return;
    }
    /* conv weight (cout, cin, k, k) or a plain bias: fan_in = cin * k * k */
    double fan_in = s->ndim == 4 ? (double)(s->shape[1] * s->shape[2] * s->shape[3]) : (double)n;
    float bound = (float)(1.0 / sqrt(fan_in > 0 ? fan_in : 1));
    for (size_t i = 0; i < n; i++) dst[i] = bound * rnd(rng);
}


static const hy__wtensor *res_get(hy__resolved *r, const char *name) {
    for (int k = 0; k < r->n; k++) {
        int i = (r->cursor + k) % r->n;
        if (strcmp(r->spec[i].name, name) == 0) {
            r->cursor = i;
            return &r->t[i];
        }
    }
    return NULL;
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

/* Whether a file tensor's dtype may stand for a model tensor: float tensors (weights, biases,
 * BN statistics) only from floating types, integer ones (BN num_batches_tracked) only int64. */
static bool dtype_fits(hy_dtype want, hy_dtype have) {
    if (want == HY_DTYPE_I64) return have == HY_DTYPE_I64;
    return have == HY_DTYPE_F32 || have == HY_DTYPE_F16 || have == HY_DTYPE_BF16 ||
           have == HY_DTYPE_F64;
}

hy_status hy__model_resolve(const hy__model_spec *spec, const hy__wsource *src, const hy_model_params *p,
                            const char *what, int nc, hy__resolved *out, hy__load_report *rep) {
    const hy__tensor_spec *list = src->fused ? spec->fused : spec->tensors;
    int n = src->fused ? spec->n_fused : spec->n_tensors;
    memset(out, 0, sizeof *out);
    out->spec = list;
    out->n = n;
    rep->n_tensors = (size_t)n;
    name_index idx;
    msgbuf *m = NULL;
    uint8_t *used = NULL;
    hy_status st = index_build(&idx, src, p);
    if (st) goto done;
    out->t = hy__calloc((size_t)n, sizeof *out->t);
    used = hy__calloc(src->n_tensors ? src->n_tensors : 1, 1);
    m = hy__calloc(1, sizeof *m);
    if (!out->t || !used || !m) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto done;
    }
    char a[64], b[64], reason[160];
    int missing = 0, mismatched = 0, extra = 0;
    size_t init_floats = 0;
    for (int i = 0; i < n; i++) {
        const hy__tensor_spec *s = &list[i];
        int j = index_find(&idx, s->name);
        shape_str(a, sizeof a, s->ndim, s->shape);
        if (j >= 0) used[j] = 1; /* name known to the model */
        if (j >= 0 && !dtype_fits(s->dtype, src->tensors[j].dtype)) {
            /* e.g. a conv weight stored as bool: reads as 0/1 garbage, never load it */
            st = hy__error(HY_ERR_FORMAT, "%s: %s: dtype %s, expected %s", what, s->name,
                           hy_dtype_name(src->tensors[j].dtype),
                           s->dtype == HY_DTYPE_I64 ? "int64" : "a floating type");
            goto done;
        }
        if (j >= 0 && shape_eq(s, &src->tensors[j])) {
            used[j] = 2; /* loaded */
            out->t[i] = src->tensors[j];
            out->t[i].name = s->name;
            continue;
        }
        if (j < 0) {
            msg_add(m, "\n  %s: missing (expected %s)", s->name, a);
            snprintf(reason, sizeof reason, "not in file");
            missing++;
        } else {
            shape_str(b, sizeof b, src->tensors[j].ndim, src->tensors[j].shape);
            msg_add(m, "\n  %s: expected %s, file has %s", s->name, a, b);
            snprintf(reason, sizeof reason, "file has %s, model needs %s", b, a);
            mismatched++;
        }
        out->t[i].name = NULL; /* to initialise */
        size_t cnt = 1;
        for (int d = 0; d < s->ndim; d++) cnt *= (size_t)s->shape[d];
        init_floats += cnt;
        if (p->mode == HY_LOAD_TRANSFER && (st = report_add(rep, HY_LOAD_INITIALIZED, s->name, reason))) goto done;
    }
    for (size_t j = 0; j < src->n_tensors; j++) {
        if (used[j] == 2 || strncmp(src->tensors[j].name, HY_WS_RESERVED_PREFIX, strlen(HY_WS_RESERVED_PREFIX)) == 0)
            continue;
        shape_str(b, sizeof b, src->tensors[j].ndim, src->tensors[j].shape);
        if (used[j] == 1) {
            snprintf(reason, sizeof reason, "shape %s does not fit the model", b);
        } else {
            msg_add(m, "\n  %s: unexpected tensor (%s)", src->tensors[j].name, b);
            extra++;
            snprintf(reason, sizeof reason, "not part of the model (%s)", b);
        }
        if (p->mode == HY_LOAD_TRANSFER && (st = report_add(rep, HY_LOAD_IGNORED, src->tensors[j].name, reason))) goto done;
    }
    if (p->mode == HY_LOAD_STRICT && m->count) {
        st = hy__error(HY_ERR_MISMATCH,
                       "%s: does not match YOLOv8 with %d classes (%d missing, %d wrong shape, %d unexpected; "
                       "transfer mode loads what matches)%s%s",
                       what, nc, missing, mismatched, extra, m->text,
                       m->shown < m->count ? "\n  ..." : "");
        goto done;
    }
    if (p->mode == HY_LOAD_TRANSFER && missing + mismatched == n) {
        st = hy__error(HY_ERR_MISMATCH, "%s: no tensor of the file matches the model (transfer found nothing to load)",
                       what);
        goto done;
    }
    /* Initialise what the file did not provide (transfer mode). */
    if (init_floats) {
        out->init = hy__malloc(init_floats * sizeof(float));
        if (!out->init) {
            st = hy__error(HY_ERR_NOMEM, "out of memory");
            goto done;
        }
        uint64_t rng = 0;
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            if (out->t[i].name) continue;
            const hy__tensor_spec *s = &list[i];
            hy__wtensor *t = &out->t[i];
            t->name = s->name;
            t->dtype = HY_DTYPE_F32;
            t->ndim = s->ndim;
            t->numel = 1;
            for (int d = 0; d < s->ndim; d++) t->numel *= (size_t)(t->shape[d] = s->shape[d]);
            init_tensor(spec, s, out->init + off, &rng);
            t->data = out->init + off;
            off += t->numel;
        }
    }
    for (int i = 0; i < n; i++)
        if (out->t[i].data != (const void *)NULL && !(out->init && /* NULL + 0 is UB */
                                                      (const float *)out->t[i].data >= out->init &&
                                                       (const float *)out->t[i].data < out->init + init_floats) &&
            (st = report_add(rep, HY_LOAD_TRANSFERRED, list[i].name, "")))
            goto done;
done:
    index_free(&idx);
    hy__free(used);
    hy__free(m);
    if (st) {
        hy__free(out->t);
        hy__free(out->init);
        memset(out, 0, sizeof *out);
    }
    return st;
}

/* ---- folding ---------------------------------------------------------------------- */
static hy_status get_f32(hy__resolved *r, const char *name, size_t numel, float *dst, const char *what) {
    const hy__wtensor *t = res_get(r, name);
    if (!t || t->numel != numel) return hy__error(HY_ERR_MISMATCH, "%s: %s missing or mis-shaped", what, name);
    return hy__wtensor_to_f32(t, dst);
}

hy_status hy__fold_conv(hy__resolved *r, int fused, const hy__conv_spec *c, float *w, float *bias, const char *what) {
    char name[128];
    size_t nw = (size_t)c->cout * (size_t)(c->cin / HY_MAX(c->groups, 1)) * (size_t)c->k * (size_t)c->k;
    snprintf(name, sizeof name, c->has_bn ? "%s.conv.weight" : "%s.weight", c->prefix);
    hy_status st = get_f32(r, name, nw, w, what);
    if (st) return st;
    if (!c->has_bn || fused) {
        snprintf(name, sizeof name, c->has_bn ? "%s.conv.bias" : "%s.bias", c->prefix);
        return get_f32(r, name, (size_t)c->cout, bias, what);
    }
    static const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};
    float *bn = hy__malloc((size_t)c->cout * 4 * sizeof(float));
    if (!bn) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (int k = 0; k < 4 && !st; k++) {
        snprintf(name, sizeof name, "%s.bn.%s", c->prefix, bn_names[k]);
        st = get_f32(r, name, (size_t)c->cout, bn + (size_t)k * (size_t)c->cout, what);
    }
    if (!st) {
        /* w' = w * g / sqrt(var + eps); b' = beta - mean * g / sqrt(var + eps) */
        const float *g = bn, *beta = bn + c->cout, *mean = bn + 2 * c->cout, *var = bn + 3 * c->cout;
        size_t per = nw / (size_t)c->cout;
        for (int o = 0; o < c->cout; o++) {
            double s = (double)g[o] / sqrt((double)var[o] + BN_EPS);
            for (size_t j = 0; j < per; j++) w[(size_t)o * per + j] = (float)((double)w[(size_t)o * per + j] * s);
            bias[o] = (float)((double)beta[o] - (double)mean[o] * s);
        }
    }
    hy__free(bn);
    return st;
}

static hy_status set_names(hy_model *m, const hy__wsource *src) {
    m->n_names = m->cfg.nc;
    m->names = hy__calloc((size_t)m->n_names, sizeof(char *));
    if (!m->names) return hy__error(HY_ERR_NOMEM, "out of memory");
    /* names of the file only when they describe the same classes */
    int use_file = src->names && src->n_names == m->cfg.nc;
    for (int i = 0; i < m->n_names; i++) {
        char buf[32];
        const char *s = use_file && src->names[i] ? src->names[i] : NULL;
        if (!s) {
            snprintf(buf, sizeof buf, "class%d", i); /* as Ultralytics default_class_names */
            s = buf;
        }
        m->names[i] = hy__strdup(s);
        if (!m->names[i]) return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    return HY_OK;
}

void hy__resolved_free(hy__resolved *r) {
    hy__free(r->t);
    hy__free(r->init);
    memset(r, 0, sizeof *r);
}

hy_status hy__model_check_params(const hy_model_params *p) {
    if (p->imgsz != 0 && (p->imgsz < 32 || p->imgsz % 32 || p->imgsz > 8192))
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: must be a multiple of 32 between 32 and 8192", p->imgsz);
    if (p->n_threads < 0 || p->n_threads > 256)
        return hy__error(HY_ERR_INVALID_ARG, "threads %d: must be between 0 (all cores) and 256", p->n_threads);
    if (p->nc < 0 || p->nc > 100000) return hy__error(HY_ERR_INVALID_ARG, "nc %d: must be between 1 and 100000", p->nc);
    hy__device_req dr;
    if (hy__device_parse(p->device, &dr)) return HY_ERR_INVALID_ARG;
    if (p->mode != HY_LOAD_STRICT && p->mode != HY_LOAD_TRANSFER)
        return hy__error(HY_ERR_INVALID_ARG, "load mode %d is not a hy_load_mode", (int)p->mode);
    for (int i = 0; i < p->n_map; i++)
        if (!p->map_from || !p->map_to || !p->map_from[i] || !p->map_to[i] || !p->map_from[i][0])
            return hy__error(HY_ERR_INVALID_ARG, "map %d: OLD and NEW prefixes are required (OLD non-empty)", i);
    return HY_OK;
}

hy_status hy__model_from_source(const hy__wsource *src, const char *what, const hy_model_params *params,
                                hy__wfile **keep, hy_model **out) {
    hy_model_params p = params ? *params : hy_model_default_params();
    hy_status st = hy__model_check_params(&p);
    if (st) return st;
    if (p.imgsz == 0) p.imgsz = src->imgsz > 0 ? src->imgsz : 640;
    hy__arch_cfg cfg;
    st = hy__arch_cfg_from_source(src, what, p.nc, &cfg);
    if (st) return st;
    hy__model_spec *spec = NULL;
    hy__conv_weights *cw = NULL;
    float *wbuf = NULL;
    hy__resolved res = {0};
    hy__device_choice dev;
    if ((st = hy__device_choose(p.device, p.no_fallback, &dev))) return st;
    const struct hy__backend_i *bi = dev.bi;
    hy__threadpool *tp = NULL; /* packing runs on n_threads threads, then they are let go */
    hy_model *m = hy__calloc(1, sizeof *m);
    if (!m) return hy__error(HY_ERR_NOMEM, "out of memory");
    m->cfg = cfg;
    m->imgsz = p.imgsz;
    m->n_threads = p.n_threads;
    m->lock_memory = p.lock_memory;
    m->bi = bi;
    m->dev = dev;
    m->format = src->format;
    if ((st = hy__model_spec_create(&cfg, &spec))) goto fail;
    if ((st = hy__model_resolve(spec, src, &p, what, cfg.nc, &res, &m->report))) goto fail;
    /* Fold every conv into one float buffer, hand it to the backend, then drop it. A fused
     * float32 source is used in place (no copy); pre-packed weights in the backend's layout
     * are used in place too (the file then stays mapped for the model's lifetime). */
    const char *layout = bi->weights_layout ? bi->weights_layout() : "";
    int use_packed = src->fused && src->packed_layout && layout[0] && strcmp(src->packed_layout, layout) == 0;
    size_t total = 0;
    for (int i = 0; i < spec->n_convs; i++) {
        const hy__conv_spec *c = &spec->convs[i];
        total += (size_t)c->cout * (size_t)(c->cin / HY_MAX(c->groups, 1)) * (size_t)c->k * (size_t)c->k + (size_t)c->cout;
    }
    cw = hy__calloc((size_t)spec->n_convs, sizeof *cw);
    if (!cw) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < spec->n_convs; i++) {
        const hy__conv_spec *c = &spec->convs[i];
        size_t nw = (size_t)c->cout * (size_t)(c->cin / HY_MAX(c->groups, 1)) * (size_t)c->k * (size_t)c->k;
        cw[i].p = (hy__conv2d_params){.cin = c->cin, .cout = c->cout, .kh = c->k, .kw = c->k, .stride = c->stride,
                                      .pad = c->pad, .act = c->act, .weight_id = i, .groups = HY_MAX(c->groups, 1)};
        char nm[128], nb[128];
        snprintf(nm, sizeof nm, c->has_bn ? "%s.conv.weight" : "%s.weight", c->prefix);
        snprintf(nb, sizeof nb, c->has_bn ? "%s.conv.bias" : "%s.bias", c->prefix);
        const hy__wtensor *tw = src->fused ? res_get(&res, nm) : NULL, *tb = src->fused ? res_get(&res, nb) : NULL;
        if (tw && tb && tw->dtype == HY_DTYPE_F32 && tb->dtype == HY_DTYPE_F32 && ((uintptr_t)tw->data % 4) == 0 &&
            ((uintptr_t)tb->data % 4) == 0) {
            cw[i].w = tw->data;
            cw[i].b = tb->data;
        } else {
            if (!wbuf && !(wbuf = hy__malloc(total * sizeof(float)))) {
                st = hy__error(HY_ERR_NOMEM, "%s: out of memory for %zu weights", what, total);
                goto fail;
            }
            float *w = wbuf + off, *b = wbuf + off + nw;
            if ((st = hy__fold_conv(&res, src->fused, c, w, b, what))) goto fail;
            cw[i].w = w;
            cw[i].b = b;
        }
        off += nw + (size_t)c->cout;
        if (use_packed) {
            snprintf(nm, sizeof nm, "hotyolo.packed.%s", c->prefix);
            const hy__wtensor *pk = src_find(src, nm);
            if (pk && pk->dtype == HY_DTYPE_U8) {
                cw[i].packed = pk->data;
                cw[i].packed_size = pk->numel;
            }
        }
    }
    /* Canary: the first conv's packed blob must equal a fresh packing of its weights, or
     * the file's layout is not what this build packs: repack everything. */
    if (use_packed && cw[0].packed && bi->weight_packed_size && bi->weight_pack) {
        size_t sz = bi->weight_packed_size(&cw[0].p);
        void *tmp = hy__aligned_alloc(64, sz + 64);
        if (!tmp) {
            st = hy__error(HY_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memset(tmp, 0, sz + 64);
        bi->weight_pack(&cw[0].p, cw[0].w, cw[0].b, tmp);
        int same = sz == cw[0].packed_size && memcmp(tmp, cw[0].packed, sz) == 0;
        hy__aligned_free(tmp);
        if (!same) {
            hy__log(HY_LOG_WARN, "%s: packed weights do not match this build's layout %s; repacking", what, layout);
            for (int i = 0; i < spec->n_convs; i++) cw[i].packed = NULL;
        }
    }
    if ((st = hy__threadpool_create(p.n_threads, &tp))) goto fail;
    st = bi->weights_create(cw, spec->n_convs, tp, p.lock_memory, &m->bw);
    if (st && bi != &hy__backend_cpu && strcmp(bi->name, "ref") != 0) {
        /* the GPU failed while taking the weights (out of memory, a driver error) */
        char why[300];
        snprintf(why, sizeof why, "%s", hy_last_error());
        if (!(st = hy__device_fall_back(&m->dev, p.no_fallback, why))) {
            m->bi = bi = m->dev.bi;
            st = bi->weights_create(cw, spec->n_convs, tp, p.lock_memory, &m->bw);
        }
    }
    hy__threadpool_free(tp);
    tp = NULL;
    if (st) goto fail;
    for (int i = 0; i < spec->n_convs && keep && *keep; i++)
        if (cw[i].packed) { /* the backend points into the file: the model keeps it open */
            m->wfile = *keep;
            *keep = NULL;
        }
    if ((st = set_names(m, src))) goto fail;
    m->path = hy__strdup(what);
    if (!m->path) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hy__free(wbuf);
    hy__free(cw);
    hy__resolved_free(&res);
    hy__model_spec_free(spec);
    *out = m;
    return HY_OK;
fail:
    hy__free(wbuf);
    hy__free(cw);
    hy__resolved_free(&res);
    hy__model_spec_free(spec);
    hy_model_free(m);
    return st;
}

hy_status hy__model_from_pt(const hy__pt_file *pt, const char *what, const hy_model_params *p, hy_model **out) {
    hy__wsource src;
    hy__wtensor *t;
    hy_status st = hy__pt_source(pt, &src, &t);
    if (st) return st;
    st = hy__model_from_source(&src, what, p, NULL, out);
    hy__free(t);
    return st;
}

hy_status hy_model_load(const char *path, const hy_model_params *params, hy_model **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_model_load: path and out are required");
    double t0 = hy__now_ms();
    if (params && params->no_fallback) {
        /* a GPU that cannot be used is an error before any file is read (the packed-weights
         * cache would take it for a bad entry and drop it); "auto" never errors */
        hy__device_req r;
        hy__device_choice dc;
        hy_status st = hy__device_parse(params->device, &r);
        if (!st && strcmp(r.kind, "cuda") == 0) st = hy__device_choose(params->device, 1, &dc);
        if (st) return st;
    }
    hy__pcache_key *key = hy__malloc(sizeof *key); /* .pt/ONNX: the packed-weights cache */
    int cached = key && hy__pcache_key_init(path, params, key);
    hy_status cst = cached ? hy__pcache_load(key, path, params, out) : HY_ERR_NOT_FOUND;
    if (cst == HY_OK || cst == HY_ERR_BACKEND) { /* a device error: reading the source fails the same way */
        hy__free(key);
        if (cst == HY_OK) (*out)->load_ms = hy__now_ms() - t0;
        return cst;
    }
    hy__wfile *f = NULL;
    hy_status st = hy__wfile_open(path, params ? params->verify : 0, &f);
    if (!st) st = hy__model_from_source(hy__wfile_source(f), path, params, &f, out);
    hy__wfile_close(f); /* NULL when the model keeps it */
    if (!st) (*out)->load_ms = hy__now_ms() - t0;
    if (!st && cached) hy__pcache_fill(key, path);
    hy__free(key);
    return st;
}

const char *hy_model_format(const hy_model *m) { return m ? hy__wformat_name(m->format) : ""; }
