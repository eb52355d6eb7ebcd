/* The trainable model (tmodel.h): the unfused state_dict of a network as float32 tensors in
 * one block, with gradients, parameter groups (Ultralytics build_optimizer), freezing, and
 * the way back to a weights source / safetensors file / inference model. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/wfile.h"
#include "train/tmodel.h"

#define BN_EPS 1e-3     /* Ultralytics BatchNorm2d(eps=0.001) */
#define TM_ALIGN 16     /* floats: every tensor starts 64-byte aligned */
#define TM_WHAT "trained model"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static size_t spec_numel(const hy__tensor_spec *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->shape[i];
    return n;
}

/* N of "model.N.", -1 when the name has no such prefix. */
static int layer_of(const char *name) {
    if (strncmp(name, "model.", 6) != 0) return -1;
    const char *p = name + 6;
    int n = 0, digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++) n = n * 10 + (*p - '0');
    return digits && *p == '.' ? n : -1;
}

/* The DFL projection (Ultralytics freezes every name containing ".dfl"). */
static int is_dfl(const char *name) { return strstr(name, ".dfl") != NULL; }

int hy__tmodel_find(const hy__tmodel *tm, const char *name) {
    if (!tm || !name) return -1;
    for (int i = 0; i < tm->n_st; i++)
        if (strcmp(tm->st[i].spec->name, name) == 0) return i;
    return -1;
}

static int find_fmt(const hy__tmodel *tm, const char *prefix, const char *suffix) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    return hy__tmodel_find(tm, name);
}

void hy__tmodel_free(hy__tmodel *tm) {
    if (!tm) return;
    hy__model_spec_free(tm->spec);
    hy__free(tm->st);
    hy__aligned_free(tm->data);
    hy__aligned_free(tm->grad);
    hy__free(tm->nbt);
    hy__free(tm->conv_w);
    hy__free(tm->conv_b);
    hy__free(tm->bn_w);
    hy__free(tm->bn_b);
    hy__free(tm->bn_rm);
    hy__free(tm->bn_rv);
    if (tm->names)
        for (int i = 0; i < tm->cfg.nc; i++) hy__free(tm->names[i]);
    hy__free(tm->names);
    hy__load_report_free(&tm->report);
    hy__free(tm);
}

/* The layout of cfg's network: states, groups, layers, conv maps; data and grad zeroed. */
static hy_status tm_alloc(const hy__arch_cfg *cfg, hy__tmodel **out) {
    hy_status st;
    hy__tmodel *tm = hy__calloc(1, sizeof *tm);
    if (!tm) return hy__error(HY_ERR_NOMEM, "out of memory");
    tm->cfg = *cfg;
    tm->imgsz = 640;
    if ((st = hy__model_spec_create(cfg, &tm->spec))) goto fail;
    const hy__model_spec *sp = tm->spec;
    for (int i = 0; i < sp->n_tensors; i++) tm->n_st += sp->tensors[i].dtype != HY_DTYPE_I64;
    size_t nc = (size_t)(sp->n_convs > 0 ? sp->n_convs : 1);
    tm->st = hy__calloc((size_t)(tm->n_st > 0 ? tm->n_st : 1), sizeof *tm->st);
    tm->nbt = hy__calloc(nc, sizeof *tm->nbt);
    int **maps[6] = {&tm->conv_w, &tm->conv_b, &tm->bn_w, &tm->bn_b, &tm->bn_rm, &tm->bn_rv};
    int map_ok = 1;
    for (int k = 0; k < 6; k++) map_ok &= (*maps[k] = hy__malloc(nc * sizeof(int))) != NULL;
    if (!tm->st || !tm->nbt || !map_ok) goto nomem;
    size_t off = 0;
    for (int i = 0, k = 0; i < sp->n_tensors; i++) {
        const hy__tensor_spec *s = &sp->tensors[i];
        if (s->dtype == HY_DTYPE_I64) continue;
        hy__tstate *t = &tm->st[k++];
        t->spec = s;
        t->offset = off;
        t->numel = spec_numel(s);
        off += (t->numel + TM_ALIGN - 1) / TM_ALIGN * TM_ALIGN;
        /* build_optimizer: "bias" in the name -> g2, a BatchNorm's weight -> g1, else g0 */
        if (ends_with(s->name, ".running_mean") || ends_with(s->name, ".running_var"))
            t->group = HY_PG_BUFFER;
        else if (strstr(s->name, "bias"))
            t->group = HY_PG_BIAS;
        else if (ends_with(s->name, ".bn.weight"))
            t->group = HY_PG_BN_WEIGHT;
        else
            t->group = HY_PG_WEIGHT;
        t->layer = layer_of(s->name);
        t->trainable = t->group != HY_PG_BUFFER && !is_dfl(s->name);
    }
    tm->n_floats = off;
    size_t bytes = (off ? off : TM_ALIGN) * sizeof(float);
    tm->data = hy__aligned_alloc(64, bytes);
    tm->grad = hy__aligned_alloc(64, bytes);
    if (!tm->data || !tm->grad) goto nomem;
    memset(tm->data, 0, bytes);
    memset(tm->grad, 0, bytes);
    for (int i = 0; i < sp->n_convs; i++) {
        const hy__conv_spec *c = &sp->convs[i];
        tm->conv_w[i] = find_fmt(tm, c->prefix, c->has_bn ? "conv.weight" : "weight");
        tm->conv_b[i] = c->has_bn ? -1 : find_fmt(tm, c->prefix, "bias");
        tm->bn_w[i] = c->has_bn ? find_fmt(tm, c->prefix, "bn.weight") : -1;
        tm->bn_b[i] = c->has_bn ? find_fmt(tm, c->prefix, "bn.bias") : -1;
        tm->bn_rm[i] = c->has_bn ? find_fmt(tm, c->prefix, "bn.running_mean") : -1;
        tm->bn_rv[i] = c->has_bn ? find_fmt(tm, c->prefix, "bn.running_var") : -1;
        if (tm->conv_w[i] < 0 || (!c->has_bn && tm->conv_b[i] < 0) ||
            (c->has_bn && (tm->bn_w[i] < 0 || tm->bn_b[i] < 0 || tm->bn_rm[i] < 0 || tm->bn_rv[i] < 0))) {
            st = hy__error(HY_ERR_MISMATCH, "model spec: conv %s has no state tensors", c->prefix);
            goto fail;
        }
    }
    *out = tm;
    return HY_OK;
nomem:
    st = hy__error(HY_ERR_NOMEM, "out of memory for the trainable model");
fail:
    hy__tmodel_free(tm);
    return st;
}

static hy_status set_names(hy__tmodel *tm, char *const *given, char *const *file, int n_file) {
    int nc = tm->cfg.nc;
    tm->names = hy__calloc((size_t)(nc > 0 ? nc : 1), sizeof(char *));
    if (!tm->names) return hy__error(HY_ERR_NOMEM, "out of memory");
    int use_file = file && n_file == nc;
    for (int i = 0; i < nc; i++) {
        char buf[32];
        const char *s = given ? given[i] : use_file ? file[i] : NULL;
        if (!s) {
            snprintf(buf, sizeof buf, "class%d", i); /* Ultralytics default_class_names */
            s = buf;
        }
        if (!(tm->names[i] = hy__strdup(s))) return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    return HY_OK;
}

/* ---- initialisation ------------------------------------------------------------------ */
/* Uniform [-1, 1) (splitmix64). */
static float rnd(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* State i as a fresh Ultralytics DetectionModel has it: the head's own init (Detect.bias_init,
 * DFL arange), BatchNorm weight 1 bias 0 mean 0 var 1, conv weights PyTorch's
 * kaiming_uniform_(a = sqrt(5)) = U(+-1 / sqrt(fan_in)), conv biases U(+-1 / sqrt(fan_in))
 * with fan_in = cin / groups * k * k of their weight. */
static void init_state(hy__tmodel *tm, int i, uint64_t *rng) {
    const hy__tstate *t = &tm->st[i];
    const hy__tensor_spec *s = t->spec;
    float *dst = tm->data + t->offset;
    if (hy__model_spec_init_tensor(tm->spec, s, dst, t->numel)) return;
    if (ends_with(s->name, ".bn.weight") || ends_with(s->name, ".bn.running_var") ||
        ends_with(s->name, ".bn.bias") || ends_with(s->name, ".bn.running_mean")) {
        float v = ends_with(s->name, ".bn.weight") || ends_with(s->name, ".bn.running_var") ? 1.f : 0.f;
        for (size_t k = 0; k < t->numel; k++) dst[k] = v;
        return;
    }
    double fan_in = 1;
    if (s->ndim == 4) {
        fan_in = (double)(s->shape[1] * s->shape[2] * s->shape[3]);
    } else {
        for (int c = 0; c < tm->spec->n_convs; c++)
            if (tm->conv_b[c] == i) {
                const hy__conv_spec *cv = &tm->spec->convs[c];
                fan_in = (double)(cv->cin / HY_MAX(cv->groups, 1)) * cv->k * cv->k;
            }
    }
    float bound = (float)(1.0 / sqrt(fan_in > 0 ? fan_in : 1));
    for (size_t k = 0; k < t->numel; k++) dst[k] = bound * rnd(rng);
}

hy_status hy__tmodel_create(const hy__arch_cfg *cfg, char *const *names, uint64_t seed, hy__tmodel **out) {
    if (!cfg || !out || !cfg->arch || cfg->nc < 1)
        return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_create: a config with nc >= 1 is required");
    hy__tmodel *tm = NULL;
    hy_status st = tm_alloc(cfg, &tm);
    if (st) return st;
    uint64_t rng = seed;
    for (int i = 0; i < tm->n_st; i++) init_state(tm, i, &rng);
    if ((st = set_names(tm, names, NULL, 0))) {
        hy__tmodel_free(tm);
        return st;
    }
    hy__tmodel_set_freeze(tm, 0);
    *out = tm;
    return HY_OK;
}

/* ---- loading -------------------------------------------------------------------------- */
/* Conv index of a "<prefix>.bn.*" / "<prefix>.conv.*" name, -1 when none. */
static int conv_of(const hy__model_spec *sp, const char *name) {
    for (int c = 0; c < sp->n_convs; c++) {
        size_t pl = strlen(sp->convs[c].prefix);
        if (strncmp(name, sp->convs[c].prefix, pl) == 0 && name[pl] == '.') return c;
    }
    return -1;
}

static hy_status copy_f32(hy__tmodel *tm, int i, const hy__wtensor *t, const char *what) {
    if (i < 0 || t->numel != tm->st[i].numel)
        return hy__error(HY_ERR_MISMATCH, "%s: %s does not fit the trainable model", what, t->name);
    return hy__wtensor_to_f32(t, tm->data + tm->st[i].offset);
}

static int report_has(const hy__load_report *r, hy_load_item what, const char *name) {
    for (size_t i = 0; i < r->lists[what].n; i++)
        if (strcmp(r->lists[what].items[i].name, name) == 0) return 1;
    return 0;
}

/* Unfused source: every state tensor from the resolved list (the initialised ones afresh). */
static hy_status load_unfused(hy__tmodel *tm, hy__resolved *res, const char *what) {
    uint64_t rng = 0; /* transfer: seed 0, as Ultralytics' default seed */
    for (int i = 0; i < res->n; i++) {
        const hy__tensor_spec *s = &res->spec[i];
        const hy__wtensor *t = &res->t[i];
        int init = report_has(&tm->report, HY_LOAD_INITIALIZED, s->name);
        if (s->dtype == HY_DTYPE_I64) {
            int c = conv_of(tm->spec, s->name);
            int64_t v = 0;
            if (!init && t->dtype == HY_DTYPE_I64 && t->numel == 1) memcpy(&v, t->data, sizeof v);
            if (c >= 0) tm->nbt[c] = v;
            continue;
        }
        int k = hy__tmodel_find(tm, s->name);
        if (k < 0) return hy__error(HY_ERR_MISMATCH, "%s: %s has no state", what, s->name);
        if (init) {
            init_state(tm, k, &rng);
            continue;
        }
        hy_status st = copy_f32(tm, k, t, what);
        if (st) return st;
    }
    return HY_OK;
}

/* Fused source (BN folded into conv weight + bias): each BatchNorm becomes the identity on
 * the folded bias: running mean 0 and var 1 (PyTorch's fresh statistics, so train-mode
 * updates start where a new BatchNorm's would), weight sqrt(1 + eps) so that eval-mode
 * BN(x) = (x - 0) / sqrt(1 + eps) * sqrt(1 + eps) + bias = x + bias, and bias = the folded
 * bias. Tensors the source lacks (transfer) keep the resolver's initialisation. */
static hy_status load_fused(hy__tmodel *tm, hy__resolved *res, const char *what) {
    for (int i = 0; i < res->n; i++) {
        const hy__tensor_spec *s = &res->spec[i];
        const hy__wtensor *t = &res->t[i];
        int k = hy__tmodel_find(tm, s->name);
        if (k < 0 && ends_with(s->name, ".conv.bias")) {
            int c = conv_of(tm->spec, s->name);
            k = c >= 0 ? tm->bn_b[c] : -1;
        }
        hy_status st = copy_f32(tm, k, t, what);
        if (st) return st;
    }
    const float w = (float)sqrt(1.0 + BN_EPS);
    for (int c = 0; c < tm->spec->n_convs; c++) {
        if (!tm->spec->convs[c].has_bn) continue;
        float *g = hy__tmodel_tensor(tm, tm->bn_w[c]), *m = hy__tmodel_tensor(tm, tm->bn_rm[c]),
              *v = hy__tmodel_tensor(tm, tm->bn_rv[c]);
        for (size_t j = 0; j < tm->st[tm->bn_w[c]].numel; j++) g[j] = w, m[j] = 0.f, v[j] = 1.f;
        tm->nbt[c] = 0;
    }
    return HY_OK;
}

hy_status hy__tmodel_from_source(const hy__wsource *src, const char *what, int nc, char *const *names, int transfer,
                                 hy__tmodel **out) {
    if (!src || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_from_source: source and out are required");
    if (!what) what = "weights";
    if (nc < 0 || nc > 100000) return hy__error(HY_ERR_INVALID_ARG, "nc %d: must be between 1 and 100000", nc);
    if (names && nc <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "%s: class names need their count (nc)", what);
    for (int i = 0; names && i < nc; i++)
        if (!names[i]) return hy__error(HY_ERR_INVALID_ARG, "%s: class name %d is NULL", what, i);
    hy__arch_cfg cfg;
    hy_status st = hy__arch_cfg_from_source(src, what, nc, &cfg);
    if (st) return st;
    hy__tmodel *tm = NULL;
    hy__resolved res = {0};
    if ((st = tm_alloc(&cfg, &tm))) return st;
    hy_model_params p = hy_model_default_params();
    p.mode = transfer ? HY_LOAD_TRANSFER : HY_LOAD_STRICT;
    if ((st = hy__model_resolve(tm->spec, src, &p, what, cfg.nc, &res, &tm->report))) goto fail;
    if ((st = src->fused ? load_fused(tm, &res, what) : load_unfused(tm, &res, what))) goto fail;
    if ((st = set_names(tm, names, src->names, src->n_names))) goto fail;
    if (src->imgsz >= 32 && src->imgsz <= 8192) tm->imgsz = src->imgsz;
    hy__tmodel_set_freeze(tm, 0);
    hy__resolved_free(&res);
    *out = tm;
    return HY_OK;
fail:
    hy__resolved_free(&res);
    hy__tmodel_free(tm);
    return st;
}

hy_status hy__tmodel_load(const char *path, int nc, char *const *names, int transfer, hy__tmodel **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_load: path and out are required");
    hy__wfile *f = NULL;
    hy_status st = hy__wfile_open(path, 0, &f);
    if (st) return st;
    st = hy__tmodel_from_source(hy__wfile_source(f), path, nc, names, transfer, out);
    hy__wfile_close(f);
    return st;
}

/* ---- training state ------------------------------------------------------------------- */
void hy__tmodel_set_freeze(hy__tmodel *tm, int k) {
    if (!tm) return;
    tm->freeze = k > 0 ? k : 0;
    for (int i = 0; i < tm->n_st; i++) {
        hy__tstate *t = &tm->st[i];
        t->trainable = t->group != HY_PG_BUFFER && !is_dfl(t->spec->name) && !(t->layer >= 0 && t->layer < tm->freeze);
    }
}

void hy__tmodel_zero_grad(hy__tmodel *tm) {
    if (tm && tm->grad) memset(tm->grad, 0, tm->n_floats * sizeof(float));
}

/* ---- back to a source ------------------------------------------------------------------- */
hy_status hy__tmodel_as_source(const hy__tmodel *tm, const float *data, hy__wsource *out) {
    if (!tm || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_as_source: model and out are required");
    if (!data) data = tm->data;
    memset(out, 0, sizeof *out);
    const hy__model_spec *sp = tm->spec;
    /* one block: the tensor list, then the int64 num_batches_tracked values */
    size_t n = (size_t)sp->n_tensors;
    size_t head = (n * sizeof(hy__wtensor) + 7) / 8 * 8;
    uint8_t *blk = hy__calloc(1, head + n * sizeof(int64_t) + 8);
    if (!blk) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy__wtensor *ts = (hy__wtensor *)(void *)blk;
    int64_t *ints = (int64_t *)(void *)(blk + head);
    for (int i = 0, k = 0; i < sp->n_tensors; i++) {
        const hy__tensor_spec *s = &sp->tensors[i];
        hy__wtensor *t = &ts[i];
        t->name = s->name;
        t->ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t->shape[d] = s->shape[d];
        t->numel = spec_numel(s);
        if (s->dtype == HY_DTYPE_I64) {
            int c = conv_of(sp, s->name);
            ints[i] = c >= 0 ? tm->nbt[c] : 0;
            t->dtype = HY_DTYPE_I64;
            t->data = &ints[i];
        } else {
            t->dtype = HY_DTYPE_F32;
            t->data = data + tm->st[k++].offset;
        }
    }
    out->format = HY_WFORMAT_SAFETENSORS;
    out->tensors = ts;
    out->n_tensors = n;
    out->fused = 0;
    out->arch = tm->cfg.arch ? tm->cfg.arch->name : "yolov8";
    out->nc = tm->cfg.nc;
    snprintf(out->scale, sizeof out->scale, "%s", tm->cfg.variant);
    out->depth_multiple = tm->cfg.depth;
    out->width_multiple = tm->cfg.width;
    out->max_channels = tm->cfg.max_channels;
    out->names = tm->names;
    out->n_names = tm->names ? tm->cfg.nc : 0;
    return HY_OK;
}

void hy__tmodel_source_free(hy__wsource *src) {
    if (!src) return;
    hy__free(src->tensors); /* the block of hy__tmodel_as_source */
    memset(src, 0, sizeof *src);
}

hy_status hy__tmodel_to_model(const hy__tmodel *tm, const float *data, const hy_model_params *p, hy_model **out) {
    if (!tm || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_to_model: model and out are required");
    hy__wsource src;
    hy_status st = hy__tmodel_as_source(tm, data, &src);
    if (st) return st;
    hy_model_params q = p ? *p : hy_model_default_params();
    q.mode = HY_LOAD_STRICT; /* its own tensors: everything must fit */
    q.nc = 0;
    q.n_map = 0;
    st = hy__model_from_source(&src, TM_WHAT, &q, NULL, out);
    hy__tmodel_source_free(&src);
    return st;
}

/* ---- saving ------------------------------------------------------------------------------ */
#define SAVE_MAX_META 64

hy_status hy__tmodel_save(const hy__tmodel *tm, const float *data, const char *path, const char *metadata_json) {
    if (!tm || !path) return hy__error(HY_ERR_INVALID_ARG, "hy__tmodel_save: model and path are required");
    hy__wsource src;
    hy_status st = hy__tmodel_as_source(tm, data, &src);
    if (st) return st;
    const char *keys[SAVE_MAX_META], *vals[SAVE_MAX_META];
    size_t k = 0;
    char nc_s[16], imgsz_s[16], strides[64];
    char *names_json = NULL;
    json_object *extra = NULL, *arr = json_object_new_array();
    if (!arr) goto nomem;
    for (int i = 0; i < tm->cfg.nc; i++)
        if (json_object_array_add(arr, json_object_new_string(tm->names[i]))) goto nomem;
    const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s || !(names_json = hy__strdup(s))) goto nomem;
    snprintf(nc_s, sizeof nc_s, "%d", tm->cfg.nc);
    hy__arch_strides_json(tm->cfg.arch, strides, sizeof strides);
    keys[k] = "format", vals[k++] = "hotyolo";
    keys[k] = "hotyolo.format_version", vals[k++] = HY_ST_FORMAT_VERSION;
    keys[k] = "hotyolo.arch", vals[k++] = src.arch;
    if (tm->cfg.variant[0]) keys[k] = "hotyolo.variant", vals[k++] = tm->cfg.variant;
    keys[k] = "hotyolo.nc", vals[k++] = nc_s;
    keys[k] = "hotyolo.names", vals[k++] = names_json;
    snprintf(imgsz_s, sizeof imgsz_s, "%d", tm->imgsz > 0 ? tm->imgsz : 640);
    keys[k] = "hotyolo.imgsz", vals[k++] = imgsz_s;
    keys[k] = "hotyolo.stride", vals[k++] = strides;
    keys[k] = "hotyolo.fused", vals[k++] = "false";
    size_t n_own = k;
    if (metadata_json && metadata_json[0]) {
        /* a JSON object: string values as they are, other values as their JSON text */
        extra = json_tokener_parse(metadata_json);
        if (!extra || !json_object_is_type(extra, json_type_object)) {
            st = hy__error(HY_ERR_INVALID_ARG, "%s: metadata is not a JSON object", path);
            goto done;
        }
        json_object_object_foreach(extra, key, val) {
            for (size_t j = 0; j < n_own; j++)
                if (strcmp(keys[j], key) == 0) {
                    st = hy__error(HY_ERR_INVALID_ARG, "%s: metadata key %s is hotyolo's own", path, key);
                    goto done;
                }
            if (k == SAVE_MAX_META) {
                st = hy__error(HY_ERR_INVALID_ARG, "%s: more than %d metadata keys", path, SAVE_MAX_META - (int)n_own);
                goto done;
            }
            keys[k] = key;
            int plain = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
            vals[k++] = json_object_is_type(val, json_type_string) ? json_object_get_string(val)
                                                                    : json_object_to_json_string_ext(val, plain);
        }
    }
    /* hy__st_write: a temporary file in the same folder, fsynced, renamed over path */
    st = hy__st_write(path, src.tensors, src.n_tensors, keys, vals, k);
    goto done;
nomem:
    st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
done:
    if (extra) json_object_put(extra);
    if (arr) json_object_put(arr);
    hy__free(names_json);
    hy__tmodel_source_free(&src);
    return st;
}
