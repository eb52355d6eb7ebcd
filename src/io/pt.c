/* PyTorch .pt loader: zip (torch >= 1.6) and legacy (pickles + raw storages) containers,
 * tensors materialised as contiguous copies under their state_dict() names. */
#include "io/pt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "io/zip.h"

#define MAX_MODULE_DEPTH 128
#define MAX_MODULE_VISITS (1u << 20)
#define MAX_NAME 4096
#define MAX_NAMES (1 << 16) /* class ids; Open Images has 601, LVIS 1203 */

/* Legacy format magic: the first pickle is this integer (0x1950a86a20f9469cfc6c). */
static const uint8_t LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                         0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL_VERSION 1001

typedef struct loader {
    const uint8_t *buf;
    size_t len;
    const char *what;
    hy__zip *zip;
    char *prefix;        /* zip archive folder, e.g. "yolov8n" */
    hy__zip_data *owned; /* (n_owned) inflated storages, freed after the copy */
    size_t n_owned, cap_owned;
    hy__pt_file *f;
    size_t cap_tensors;
    size_t out_bytes, out_budget; /* materialised bytes, bounded (stride-0 views could explode) */
    size_t inflated;              /* bytes inflated from deflated storages, same budget */
    size_t visits;
} loader;

hy_status hy__pt_tensor_to_f32(const hy__pt_tensor *t, float *dst) {
    if (!t || (!dst && t->numel))
        return hy__error(HY_ERR_INVALID_ARG, "hy__pt_tensor_to_f32: NULL argument");
    if (!hy__to_f32(t->dtype, t->data, t->numel, dst))
        return hy__error(HY_ERR_UNSUPPORTED, "%s: cannot convert dtype %d to float32", t->name,
                         (int)t->dtype);
    return HY_OK;
}

// --- storages -------------------------------------------------------------------------------

static hy_status resolve_zip_storage(loader *L, hy__pkl_storage *s, const char *tname) {
    size_t n = strlen(L->prefix) + strlen(s->key) + 8;
    char *rec = hy__malloc(n);
    if (!rec) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
    snprintf(rec, n, "%s/data/%s", L->prefix, s->key);
    const hy__zip_entry *e = hy__zip_find(L->zip, rec);
    if (!e) {
        hy_status st = hy__error(HY_ERR_FORMAT,
                                 "%s: tensor '%s': storage record '%s' is missing from the archive",
                                 L->what, tname, rec);
        hy__free(rec);
        return st;
    }
    hy__free(rec);
    if (e->method == 8) { /* deflated: only the bytes tensors reference are inflated, later */
        if (e->size > SIZE_MAX / 2)
            return hy__error(HY_ERR_FORMAT, "%s: storage '%s' claims %llu bytes", L->what, s->key,
                             (unsigned long long)e->size);
        s->entry = e;
        s->data = NULL;
        s->nbytes = (size_t)e->size;
        s->resolved = 1;
        return HY_OK;
    }
    if (L->n_owned == L->cap_owned) {
        size_t cap = L->cap_owned ? L->cap_owned * 2 : 16;
        hy__zip_data *o = hy__realloc(L->owned, cap * sizeof *o);
        if (!o) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
        L->owned = o;
        L->cap_owned = cap;
    }
    hy__zip_data d;
    hy_status st = hy__zip_read(L->zip, e, 0, &d); /* stored only: deflated is handled above */
    if (st) return st;
    L->owned[L->n_owned++] = d;
    s->data = d.data;
    s->nbytes = d.size;
    s->resolved = 1;
    return HY_OK;
}

static hy_status resolve_storage(loader *L, hy__pkl_storage *s, const char *tname) {
    if (!s->resolved) {
        if (!L->zip)
            return hy__error(HY_ERR_FORMAT,
                             "%s: tensor '%s': storage '%s' is not in the legacy storage table",
                             L->what, tname, s->key);
        hy_status st = resolve_zip_storage(L, s, tname);
        if (st) return st;
    }
    size_t need;
    if (s->numel > SIZE_MAX || !hy__mul_ok((size_t)s->numel, s->elem_size, &need) ||
        need > s->nbytes)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: storage '%s' holds %zu bytes but its header says %llu elements of %zu bytes",
            L->what, s->key, s->nbytes, (unsigned long long)s->numel, s->elem_size);
    return HY_OK;
}

// --- tensor materialisation -------------------------------------------------------------------

static void fmt_dims(char *buf, size_t cap, const int64_t *d, int n) {
    size_t pos = 0;
    buf[0] = 0;
    for (int i = 0; i < n && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%lld", i ? "," : "", (long long)d[i]);
}

/* Copies a strided view into dst (C-contiguous). Inner loop over the last dimension. */
static void gather(uint8_t *dst, const uint8_t *src, size_t es, const hy__pkl_tensor *t,
                   size_t numel) {
    int nd = t->ndim;
    int64_t idx[HY_PKL_MAX_DIMS] = {0};
    size_t inner = nd ? (size_t)t->shape[nd - 1] : 1;
    size_t istride = nd ? (size_t)t->stride[nd - 1] * es : 0;
    for (size_t done = 0; done < numel; done += inner) {
        size_t off = (size_t)t->offset;
        for (int d = 0; d < nd - 1; d++) off += (size_t)idx[d] * (size_t)t->stride[d];
        const uint8_t *s = src + off * es;
        for (size_t i = 0; i < inner; i++, s += istride, dst += es) memcpy(dst, s, es);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static hy_status emit_tensor(loader *L, const char *name, const hy__pkl_value *v) {
    const hy__pkl_tensor *t = v->u.tensor;
    hy__pkl_storage *s = t->storage->u.storage;
    hy_status st = resolve_storage(L, s, name);
    if (st) return st;
    if (s->dtype == HY_DTYPE_COUNT)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has storage type %s, which is not supported", L->what,
                         name, s->type_name);
    size_t es = s->elem_size, numel = 1;
    size_t last = (size_t)t->offset; /* highest element index the view touches */
    bool ok = true;
    for (int d = 0; d < t->ndim; d++) ok = ok && hy__mul_ok(numel, (size_t)t->shape[d], &numel);
    if (ok && numel > 0) {
        for (int d = 0; d < t->ndim && ok; d++) {
            size_t span;
            ok = hy__mul_ok((size_t)(t->shape[d] - 1), (size_t)t->stride[d], &span) &&
                 hy__add_ok(last, span, &last);
        }
    }
    char shp[160], str[160];
    fmt_dims(shp, sizeof shp, t->shape, t->ndim);
    fmt_dims(str, sizeof str, t->stride, t->ndim);
    if (!ok || (numel > 0 && last >= s->numel))
        return hy__error(
            HY_ERR_FORMAT,
            "%s: tensor '%s': view (offset %lld, shape [%s], stride [%s]) lies outside its storage '%s' of %llu elements",
            L->what, name, (long long)t->offset, shp, str, s->key, (unsigned long long)s->numel);
    size_t nbytes;
    if (!hy__mul_ok(numel, es, &nbytes) || !hy__add_ok(L->out_bytes, nbytes, &L->out_bytes) ||
        L->out_bytes > L->out_budget)
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor '%s' (shape [%s]) would expand the tensors past %zu MiB",
                         L->what, name, shp, L->out_budget >> 20);
    if (t->ndim > HY_PT_MAX_DIMS) /* HY_PKL_MAX_DIMS <= HY_PT_MAX_DIMS; kept for safety */
        return hy__error(HY_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dims", L->what, name, t->ndim);
    /* A deflated storage: inflate only [first, last] element of the view, counting every
     * byte inflated (skipped ones too) against the file's budget, so that small tensors in
     * huge deflated storages (1 GiB of zeros deflates to 1 MB) cost what the file holds. */
    hy__pkl_tensor view = *t;
    const uint8_t *base = s->data;
    uint8_t *window = NULL;
    if (!base && numel > 0) {
        size_t begin = (size_t)t->offset * es, end = (last + 1) * es; /* <= s->nbytes: checked */
        if (!hy__add_ok(L->inflated, end, &L->inflated) || L->inflated > L->out_budget)
            return hy__error(HY_ERR_FORMAT,
                             "%s: tensor '%s': inflating %zu bytes of deflated storage '%s' "
                             "would take the file past its %zu MiB inflate budget "
                             "(64 MiB + 16x the file size)",
                             L->what, name, end, s->key, L->out_budget >> 20);
        window = hy__malloc(end - begin);
        if (!window)
            return hy__error(HY_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes", L->what,
                             name, end - begin);
        st = hy__zip_read_range(L->zip, s->entry, begin, end, window);
        if (st) {
            hy__free(window);
            return st;
        }
        base = window;
        view.offset = 0;
    }

    hy__pt_file *f = L->f;
    if (f->n_tensors == L->cap_tensors) {
        size_t cap = L->cap_tensors ? L->cap_tensors * 2 : 64;
        hy__pt_tensor *nt = hy__realloc(f->tensors, cap * sizeof *nt);
        if (!nt) {
            hy__free(window);
            return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
        }
        f->tensors = nt;
        L->cap_tensors = cap;
    }
    hy__pt_tensor *o = &f->tensors[f->n_tensors];
    memset(o, 0, sizeof *o);
    o->name = hy__strdup(name);
    o->data = hy__malloc(nbytes);
    if (!o->name || !o->data) {
        hy__free(o->name);
        hy__free(o->data);
        hy__free(window);
        return hy__error(HY_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes", L->what, name,
                         nbytes);
    }
    f->n_tensors++;
    o->dtype = s->dtype;
    o->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) o->shape[d] = t->shape[d];
    o->numel = numel;
    if (numel == 0) return HY_OK;
    t = &view;
    /* Contiguous when every dimension of extent > 1 has the C stride. */
    bool contiguous = true;
    size_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && (size_t)t->stride[d] != expect) contiguous = false;
        expect *= (size_t)t->shape[d];
    }
    if (contiguous)
        memcpy(o->data, base + (size_t)t->offset * es, nbytes);
    else
        gather(o->data, base, es, t, numel);
    hy__free(window);
    return HY_OK;
}

// --- module walking -------------------------------------------------------------------------

/* The __dict__ of an nn.Module object (BUILD state, possibly (dict, slots)), or NULL. */
static const hy__pkl_value *module_state(const hy__pkl_value *v) {
    if (!v || v->kind != HY_PKL_OBJECT || !v->u.obj.state) return NULL;
    const hy__pkl_value *s = v->u.obj.state;
    if (s->kind == HY_PKL_TUPLE && s->u.seq.n >= 1) s = s->u.seq.items[0];
    return s->kind == HY_PKL_DICT ? s : NULL;
}

static bool is_module(const hy__pkl_value *v) {
    const hy__pkl_value *s = module_state(v);
    return s && (hy__pkl_dict_get(s, "_modules") || hy__pkl_dict_get(s, "_parameters"));
}

static bool set_has_str(const hy__pkl_value *set, const hy__pkl_value *key) {
    if (!set || (set->kind != HY_PKL_SET && set->kind != HY_PKL_LIST && set->kind != HY_PKL_TUPLE))
        return false;
    for (size_t i = 0; i < set->u.seq.n; i++) {
        const hy__pkl_value *x = set->u.seq.items[i];
        if (x->kind == HY_PKL_STR && x->u.str.len == key->u.str.len &&
            !memcmp(x->u.str.data, key->u.str.data, x->u.str.len))
            return true;
    }
    return false;
}

/* Appends key to name[len]; false when the name would be too long. */
static bool name_push(char *name, size_t len, const hy__pkl_value *key, const char *suffix,
                      size_t *new_len) {
    size_t sl = strlen(suffix);
    if (key->kind != HY_PKL_STR || len + key->u.str.len + sl + 1 > MAX_NAME) return false;
    memcpy(name + len, key->u.str.data, key->u.str.len);
    memcpy(name + len + key->u.str.len, suffix, sl + 1);
    *new_len = len + key->u.str.len + sl;
    return true;
}

/* Emits the tensors of one _parameters/_buffers dict (None entries and non-persistent
 * buffers skipped, as state_dict() does). */
static hy_status emit_dict(loader *L, const hy__pkl_value *d, const hy__pkl_value *skip, char *name,
                           size_t len, const char *field) {
    if (!d) return HY_OK;
    if (d->kind != HY_PKL_DICT)
        return hy__error(HY_ERR_FORMAT, "%s: module '%.*s' has a %s %s, not a dict", L->what,
                         (int)len, name, hy__pkl_kind_name(d->kind), field);
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const hy__pkl_value *k = d->u.dict.keys[i], *v = d->u.dict.vals[i];
        size_t nl;
        if (v->kind == HY_PKL_NONE || set_has_str(skip, k)) continue;
        if (!name_push(name, len, k, "", &nl))
            return hy__error(HY_ERR_FORMAT,
                             "%s: module '%.*s': %s key is not a string or the name is too long",
                             L->what, (int)len, name, field);
        if (v->kind != HY_PKL_TENSOR)
            return hy__error(HY_ERR_FORMAT, "%s: %s entry '%s' is a %s, not a tensor", L->what,
                             field, name, hy__pkl_kind_name(v->kind));
        hy_status st = emit_tensor(L, name, v);
        if (st) return st;
    }
    name[len] = 0;
    return HY_OK;
}

/* state_dict() order: own parameters, own persistent buffers, then children recursively. */
static hy_status walk_module(loader *L, const hy__pkl_value *mod, char *name, size_t len,
                             int depth) {
    if (depth > MAX_MODULE_DEPTH || ++L->visits > MAX_MODULE_VISITS)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: module tree deeper than %d levels or larger than %u modules (cyclic?)", L->what,
            MAX_MODULE_DEPTH, MAX_MODULE_VISITS);
    const hy__pkl_value *s = module_state(mod);
    if (!s) return HY_OK; /* an object without a __dict__ state has no tensors */
    hy_status st = emit_dict(L, hy__pkl_dict_get(s, "_parameters"), NULL, name, len, "_parameters");
    if (st) return st;
    st = emit_dict(L, hy__pkl_dict_get(s, "_buffers"),
                   hy__pkl_dict_get(s, "_non_persistent_buffers_set"), name, len, "_buffers");
    if (st) return st;
    const hy__pkl_value *mods = hy__pkl_dict_get(s, "_modules");
    if (!mods) return HY_OK;
    if (mods->kind != HY_PKL_DICT)
        return hy__error(HY_ERR_FORMAT, "%s: module '%.*s' has a %s _modules, not a dict", L->what,
                         (int)len, name, hy__pkl_kind_name(mods->kind));
    for (size_t i = 0; i < mods->u.dict.n; i++) {
        const hy__pkl_value *k = mods->u.dict.keys[i], *v = mods->u.dict.vals[i];
        size_t nl;
        if (v->kind == HY_PKL_NONE) continue;
        if (!name_push(name, len, k, ".", &nl))
            return hy__error(HY_ERR_FORMAT,
                             "%s: module '%.*s': child key is not a string or the name is too long",
                             L->what, (int)len, name);
        if (v->kind != HY_PKL_OBJECT)
            return hy__error(HY_ERR_FORMAT, "%s: submodule '%.*s' is a %s, not a module object",
                             L->what, (int)nl - 1, name, hy__pkl_kind_name(v->kind));
        if ((st = walk_module(L, v, name, nl, depth + 1))) return st;
        name[len] = 0;
    }
    return HY_OK;
}

static bool dict_has_tensor(const hy__pkl_value *d) {
    if (!d || d->kind != HY_PKL_DICT) return false;
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (d->u.dict.vals[i]->kind == HY_PKL_TENSOR) return true;
    return false;
}

static hy_status emit_state_dict(loader *L, const hy__pkl_value *d) {
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const hy__pkl_value *k = d->u.dict.keys[i], *v = d->u.dict.vals[i];
        if (v->kind != HY_PKL_TENSOR || k->kind != HY_PKL_STR) continue;
        hy_status st = emit_tensor(L, k->u.str.data, v);
        if (st) return st;
    }
    return HY_OK;
}

// --- Ultralytics config -------------------------------------------------------------------

static bool as_num(const hy__pkl_value *v, double *out) {
    if (!v) return false;
    if (v->kind == HY_PKL_FLOAT)
        *out = v->u.f;
    else if (v->kind == HY_PKL_INT)
        *out = (double)v->u.i;
    else
        return false;
    return true;
}

static void copy_str(char *dst, size_t cap, const hy__pkl_value *v) {
    if (!v || v->kind != HY_PKL_STR) return;
    size_t n = HY_MIN(v->u.str.len, cap - 1);
    memcpy(dst, v->u.str.data, n);
    dst[n] = 0;
}

/* Ultralytics guess_model_scale(): the letter after "yolov<digits>" in the yaml file name. */
static void guess_scale(const char *file, char *scale) {
    for (const char *p = strstr(file, "yolov"); p; p = strstr(p + 1, "yolov")) {
        const char *q = p + 5;
        if (*q < '0' || *q > '9') continue;
        while (*q >= '0' && *q <= '9') q++;
        if (*q && strchr("nslmx", *q)) {
            scale[0] = *q;
            scale[1] = 0;
            return;
        }
    }
}

static hy_status read_names(loader *L, const hy__pkl_value *v) {
    hy__pt_file *f = L->f;
    int64_t n = 0;
    if (v->kind == HY_PKL_DICT) {
        for (size_t i = 0; i < v->u.dict.n; i++) {
            const hy__pkl_value *k = v->u.dict.keys[i];
            if (k->kind == HY_PKL_INT && k->u.i >= 0 && k->u.i < MAX_NAMES &&
                v->u.dict.vals[i]->kind == HY_PKL_STR)
                n = HY_MAX(n, k->u.i + 1);
        }
    } else if (v->kind == HY_PKL_LIST || v->kind == HY_PKL_TUPLE) {
        n = (int64_t)HY_MIN(v->u.seq.n, (size_t)MAX_NAMES);
    } else {
        return HY_OK;
    }
    if (n == 0) return HY_OK;
    f->names = hy__calloc((size_t)n, sizeof *f->names);
    if (!f->names) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
    f->n_names = (int)n;
    for (int64_t i = 0; i < n; i++) {
        const hy__pkl_value *s =
            v->kind == HY_PKL_DICT ? hy__pkl_dict_get_int(v, i) : v->u.seq.items[i];
        f->names[i] =
            s && s->kind == HY_PKL_STR ? hy__strndup(s->u.str.data, s->u.str.len) : hy__strdup("");
        if (!f->names[i]) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
    }
    return HY_OK;
}

/* s: a model's state dict, or a checkpoint dict with 'yaml' and 'names' keys (hotyolo export). */
static hy_status read_config_dict(loader *L, const hy__pkl_value *s) {
    hy__pt_file *f = L->f;
    const hy__pkl_value *yaml = hy__pkl_dict_get(s, "yaml"), *v;
    if (yaml && yaml->kind != HY_PKL_DICT) yaml = NULL;
    double x;
    if (yaml) {
        f->has_yaml = 1;
        if ((v = hy__pkl_dict_get(yaml, "nc")) && v->kind == HY_PKL_INT && v->u.i >= 0 &&
            v->u.i <= INT32_MAX)
            f->nc = (int)v->u.i;
        copy_str(f->yaml_file, sizeof f->yaml_file, hy__pkl_dict_get(yaml, "yaml_file"));
        copy_str(f->scale, sizeof f->scale, hy__pkl_dict_get(yaml, "scale"));
        if (as_num(hy__pkl_dict_get(yaml, "depth_multiple"), &x)) f->depth_multiple = x;
        if (as_num(hy__pkl_dict_get(yaml, "width_multiple"), &x)) f->width_multiple = x;
    }
    if (f->nc < 0 && (v = hy__pkl_dict_get(s, "nc")) && v->kind == HY_PKL_INT && v->u.i >= 0 &&
        v->u.i <= INT32_MAX)
        f->nc = (int)v->u.i;
    if (!f->yaml_file[0])
        copy_str(f->yaml_file, sizeof f->yaml_file, hy__pkl_dict_get(s, "yaml_file"));
    if (!f->scale[0] && f->yaml_file[0]) guess_scale(f->yaml_file, f->scale);
    const hy__pkl_value *scales = hy__pkl_dict_get(yaml, "scales");
    if (scales && scales->kind == HY_PKL_DICT && scales->u.dict.n) {
        const hy__pkl_value *row = f->scale[0] ? hy__pkl_dict_get(scales, f->scale) : NULL;
        if (!f->scale[0] &&
            scales->u.dict.keys[0]->kind == HY_PKL_STR) { /* Ultralytics: first scale */
            copy_str(f->scale, sizeof f->scale, scales->u.dict.keys[0]);
            row = scales->u.dict.vals[0];
        }
        if (row && (row->kind == HY_PKL_LIST || row->kind == HY_PKL_TUPLE)) {
            if (f->depth_multiple == 0 && row->u.seq.n > 0 && as_num(row->u.seq.items[0], &x))
                f->depth_multiple = x;
            if (f->width_multiple == 0 && row->u.seq.n > 1 && as_num(row->u.seq.items[1], &x))
                f->width_multiple = x;
            if (row->u.seq.n > 2 && as_num(row->u.seq.items[2], &x) && x > 0 && x <= INT32_MAX)
                f->max_channels = (int)x;
        }
    }
    v = hy__pkl_dict_get(s, "names");
    if (!v) v = hy__pkl_dict_get(yaml, "names");
    return v ? read_names(L, v) : HY_OK;
}

static hy_status read_config(loader *L, const hy__pkl_value *mod) {
    const hy__pkl_value *s = module_state(mod);
    return s ? read_config_dict(L, s) : HY_OK;
}

// --- checkpoint layouts ---------------------------------------------------------------------

static hy_status extract(loader *L, const hy__pkl_value *root) {
    hy__pt_file *f = L->f;
    const hy__pkl_value *mod = NULL, *sd = NULL;
    if (is_module(root)) {
        mod = root;
        f->source = "module";
    } else if (root->kind == HY_PKL_DICT) {
        const hy__pkl_value *ema = hy__pkl_dict_get(root, "ema"),
                            *model = hy__pkl_dict_get(root, "model"),
                            *sdict = hy__pkl_dict_get(root, "state_dict");
        if (is_module(ema)) { /* Ultralytics: ckpt.get("ema") or ckpt["model"] */
            mod = ema;
            f->source = "ema";
        } else if (is_module(model)) {
            mod = model;
            f->source = "model";
        } else if (dict_has_tensor(sdict)) {
            sd = sdict;
        } else if (dict_has_tensor(model)) {
            sd = model;
        } else if (dict_has_tensor(root)) {
            sd = root;
        } else {
            for (size_t i = 0; i < root->u.dict.n && !mod; i++)
                if (is_module(root->u.dict.vals[i])) mod = root->u.dict.vals[i];
            f->source = "module";
        }
        if (sd) f->source = "state_dict";
    }
    if (!mod && !sd)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: no tensors found: the pickled %s is neither a model checkpoint, a state_dict nor a module",
            L->what, hy__pkl_kind_name(root->kind));
    hy_status st;
    if (sd) {
        st = emit_state_dict(L, sd);
        /* hotyolo export (docs/formats.md): the config sits beside the state_dict */
        if (!st && sd == hy__pkl_dict_get(root, "state_dict") && hy__pkl_dict_get(root, "yaml"))
            st = read_config_dict(L, root);
        return st;
    }
    char *name = hy__malloc(MAX_NAME + 1);
    if (!name) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
    name[0] = 0;
    st = walk_module(L, mod, name, 0, 0);
    hy__free(name);
    if (st) return st;
    return read_config(L, mod);
}

// --- containers -----------------------------------------------------------------------------

/* Record names torch.load's zip reader knows. Any other record (constants.pkl makes it a
 * TorchScript archive that torch.load hands to torch.jit.load, which runs code/) or an
 * entry outside "<prefix>/" is refused. data/<key>: digits, or (storages_known) a key the
 * pickle names. */
static hy_status check_records(loader *L, bool storages_known) {
    static const char *const fixed[] = {"data.pkl",     "byteorder",         "version",
                                        ".data/version", ".data/serialization_id",
                                        ".format_version", ".storage_alignment"};
    size_t plen = strlen(L->prefix);
    for (size_t i = 0; i < hy__zip_count(L->zip); i++) {
        const char *name = hy__zip_entry_at(L->zip, i)->name, *r = name + plen + 1;
        bool ok = !strncmp(name, L->prefix, plen) && name[plen] == '/';
        for (size_t k = 0; ok && k < HY_ARRAY_LEN(fixed); k++)
            if (!strcmp(r, fixed[k])) goto next;
        if (ok && !strncmp(r, "data/", 5) && r[5]) {
            const char *key = r + 5;
            bool digits = strspn(key, "0123456789") == strlen(key);
            if (digits || !storages_known) continue;
            if (L->f->arena && hy__pkl_storage_find(L->f->arena, key)) continue;
        }
        char q[200];
        size_t k = 0;
        for (const char *c = name; *c && k + 5 < sizeof q; c++)
            k += (size_t)snprintf(q + k, sizeof q - k,
                                  (unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f ? "%c"
                                                                                      : "\\x%02x",
                                  (unsigned char)*c);
        return hy__error(HY_ERR_UNSAFE,
                         "%s: zip record '%s' is not part of a torch.save checkpoint (a "
                         "TorchScript archive or extra files: refused)",
                         L->what, q);
    next:;
    }
    return HY_OK;
}

static hy_status load_zip(loader *L, hy__pkl_arena *arena, hy__pkl_value **root) {
    hy_status st = hy__zip_open(L->buf, L->len, L->what, &L->zip);
    if (st) return st;
    /* torch.save: every record lives under one folder: "<archive>/data.pkl". PyTorch takes
     * <archive> from the FIRST entry's name; so does this reader, so that both read the
     * same data.pkl (names are unique, see hy__zip_open). */
    const hy__zip_entry *first = hy__zip_entry_at(L->zip, 0), *pkl = NULL;
    const char *slash = first ? strchr(first->name, '/') : NULL;
    if (slash && slash != first->name) {
        L->prefix = hy__strndup(first->name, (size_t)(slash - first->name));
        if (!L->prefix) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
        char *rec = hy__malloc(strlen(L->prefix) + 16);
        if (!rec) return hy__error(HY_ERR_NOMEM, "%s: out of memory", L->what);
        sprintf(rec, "%s/data.pkl", L->prefix);
        pkl = hy__zip_find(L->zip, rec);
        hy__free(rec);
    }
    if (!pkl)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: zip archive has no '<archive>/data.pkl' record under the folder of its first "
            "entry (not a torch.save checkpoint)",
            L->what);

    if ((st = check_records(L, false))) return st;
    hy__pkl_arena_set_format(arena, HY_PKL_FMT_ZIP);
    char rec[600];
    snprintf(rec, sizeof rec, "%s/byteorder", L->prefix);
    const hy__zip_entry *bo = hy__zip_find(L->zip, rec);
    if (bo) {
        hy__zip_data d;
        if ((st = hy__zip_read(L->zip, bo, 16, &d))) return st; /* "little" or "big" */
        bool big = d.size == 3 && !memcmp(d.data, "big", 3);
        hy__zip_data_free(&d);
        if (big)
            return hy__error(HY_ERR_UNSUPPORTED, "%s: big-endian checkpoints are not supported",
                             L->what);
    }
    hy__zip_data d;
    if (pkl->method != 0) { /* a deflated data.pkl is inflated whole: same budget */
        if (pkl->size > L->out_budget)
            return hy__error(HY_ERR_FORMAT,
                             "%s: '%s' inflates to %llu bytes, past the %zu MiB inflate budget "
                             "(64 MiB + 16x the file size)",
                             L->what, pkl->name, (unsigned long long)pkl->size,
                             L->out_budget >> 20);
        L->inflated = (size_t)pkl->size;
    }
    if ((st = hy__zip_read(L->zip, pkl, L->out_budget, &d))) return st;
    st = hy__pkl_load(arena, d.data, d.size, L->what, NULL, root);
    hy__zip_data_free(&d);
    return st ? st : check_records(L, true);
}

static hy_status load_legacy(loader *L, hy__pkl_arena *arena, hy__pkl_value **root) {
    size_t pos = 0, used;
    hy__pkl_value *v;
    hy__pkl_arena_set_format(arena, HY_PKL_FMT_LEGACY);
    hy_status st = hy__pkl_load(arena, L->buf, L->len, L->what, &used, &v);
    if (st) return st;
    if (v->kind != HY_PKL_BIGINT || v->u.str.len != sizeof LEGACY_MAGIC ||
        memcmp(v->u.str.data, LEGACY_MAGIC, sizeof LEGACY_MAGIC))
        return hy__error(
            HY_ERR_FORMAT,
            "%s: not a PyTorch checkpoint (a pickle, but not the legacy torch.save format: magic number missing)",
            L->what);
    pos += used;
    if ((st = hy__pkl_load(arena, L->buf + pos, L->len - pos, L->what, &used, &v))) return st;
    if (v->kind != HY_PKL_INT || v->u.i != LEGACY_PROTOCOL_VERSION)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "%s: legacy torch.save format with unsupported protocol version", L->what);
    pos += used;
    if ((st = hy__pkl_load(arena, L->buf + pos, L->len - pos, L->what, &used, &v))) return st;
    const hy__pkl_value *le = hy__pkl_dict_get(v, "little_endian");
    if (le && le->kind == HY_PKL_BOOL && !le->u.b)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: big-endian legacy checkpoints are not supported",
                         L->what);
    pos += used;
    if ((st = hy__pkl_load(arena, L->buf + pos, L->len - pos, L->what, &used, root))) return st;
    pos += used;
    hy__pkl_value *keys;
    if ((st = hy__pkl_load(arena, L->buf + pos, L->len - pos, L->what, &used, &keys))) return st;
    pos += used;
    if (keys->kind != HY_PKL_LIST && keys->kind != HY_PKL_TUPLE)
        return hy__error(HY_ERR_FORMAT, "%s: legacy storage-key list is a %s", L->what,
                         hy__pkl_kind_name(keys->kind));
    /* Raw storages follow in key order: int64 element count, then the elements. */
    for (size_t i = 0; i < keys->u.seq.n; i++) {
        const hy__pkl_value *k = keys->u.seq.items[i];
        hy__pkl_value *sv =
            k->kind == HY_PKL_STR ? hy__pkl_storage_find(arena, k->u.str.data) : NULL;
        if (!sv)
            return hy__error(HY_ERR_FORMAT,
                             "%s: legacy storage key %zu is not a storage the pickle references",
                             L->what, i);
        hy__pkl_storage *s = sv->u.storage;
        if (L->len - pos < 8)
            return hy__error(HY_ERR_FORMAT,
                             "%s: truncated: legacy storage '%s' header missing at byte %zu",
                             L->what, s->key, pos);
        uint64_t count = 0;
        for (int b = 7; b >= 0; b--) count = (count << 8) | L->buf[pos + (size_t)b];
        pos += 8;
        size_t nbytes;
        if (count != s->numel)
            return hy__error(
                HY_ERR_FORMAT, "%s: legacy storage '%s' has %llu elements, the pickle says %llu",
                L->what, s->key, (unsigned long long)count, (unsigned long long)s->numel);
        if (count > SIZE_MAX || !hy__mul_ok((size_t)count, s->elem_size, &nbytes) ||
            nbytes > L->len - pos)
            return hy__error(
                HY_ERR_FORMAT,
                "%s: truncated: legacy storage '%s' (%llu x %zu bytes) runs past the end of the file",
                L->what, s->key, (unsigned long long)count, s->elem_size);
        s->data = L->buf + pos;
        s->nbytes = nbytes;
        s->resolved = 1;
        pos += nbytes;
    }
    return HY_OK;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const hy__pt_tensor *x = *(const hy__pt_tensor *const *)a,
                        *y = *(const hy__pt_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y); /* ties in file order: the first duplicate wins */
}

static hy_status index_names(hy__pt_file *f, const char *what) {
    f->by_name = hy__malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *f->by_name);
    if (!f->by_name) return hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < f->n_tensors; i++) f->by_name[i] = &f->tensors[i];
    if (f->n_tensors > 1) qsort(f->by_name, f->n_tensors, sizeof *f->by_name, cmp_tensor_name);
    return HY_OK;
}

/* True when buf starts with a block Python's tarfile accepts as a header: the checksum
 * field (bytes 148-155, read as tarfile.nti does) equals the byte sum with that field as
 * spaces, unsigned or signed. torch.load's legacy path tries tarfile.open first. */
static bool is_tar_header(const uint8_t *buf, size_t len) {
    if (len < 512) return false;
    int64_t usum = 256, ssum = 256;
    bool zero = true;
    for (size_t i = 0; i < 512; i++) {
        if (buf[i]) zero = false;
        if (i >= 148 && i < 156) continue;
        usum += buf[i];
        ssum += (int8_t)buf[i];
    }
    if (zero) return false; /* an end-of-archive block: tarfile.open fails */
    const uint8_t *f = buf + 148;
    int64_t n = 0;
    if (f[0] == 0x80 || f[0] == 0xff) { /* base-256 */
        for (int i = 1; i < 8; i++) n = n * 256 + f[i];
        if (f[0] == 0xff) n -= (int64_t)1 << 56;
        return n == usum || n == ssum;
    }
    /* nts(): up to the first NUL; int(s.strip() or "0", 8): sign, "0o", '_' between digits. */
    char s[9];
    size_t k = 0;
    while (k < 8 && f[k]) s[k] = (char)f[k], k++;
    s[k] = 0;
    const char *p = s, *e = s + k;
    while (p < e && (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f))) p++;
    while (e > p && (e[-1] == ' ' || (e[-1] >= '\t' && e[-1] <= '\r') ||
                     (e[-1] >= 0x1c && e[-1] <= 0x1f)))
        e--;
    if (p == e) return usum == 0 || ssum == 0;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (e - p > 2 && p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) p += 2;
    if (p == e) return false;
    for (bool prev_digit = p > s && (p[-1] == 'o' || p[-1] == 'O'); p < e; p++) {
        if (*p == '_' && prev_digit && p + 1 < e && p[1] >= '0' && p[1] <= '7') {
            prev_digit = false;
            continue;
        }
        if (*p < '0' || *p > '7') return false;
        n = n * 8 + (*p - '0');
        prev_digit = true;
    }
    if (neg) n = -n;
    return n == usum || n == ssum;
}

hy_status hy__pt_load_buffer(const uint8_t *buf, size_t len, const char *what, hy__pt_file **out) {
    if (!what) what = "<buffer>";
    if (!out || (!buf && len))
        return hy__error(HY_ERR_INVALID_ARG, "%s: hy__pt_load_buffer: NULL argument", what);
    if (len == 0) return hy__error(HY_ERR_FORMAT, "%s: empty file", what);
    loader L = {.buf = buf, .len = len, .what = what};
    L.out_budget = ((size_t)64 << 20) + (len > (SIZE_MAX >> 5) ? SIZE_MAX >> 1 : len * 16);
    hy__pt_file *f = hy__calloc(1, sizeof *f);
    hy_status st;
    if (!f) return hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
    f->nc = -1;
    L.f = f;
    if ((st = hy__pkl_arena_create(&f->arena))) goto done;
    hy__pkl_value *root = NULL;
    if (is_tar_header(buf, len)) {
        st = hy__error(HY_ERR_UNSAFE,
                       "%s: the first 512 bytes are a valid tar header: torch.load would read "
                       "it as a tar-format checkpoint (PyTorch < 0.4, unpickled without "
                       "restrictions); refused",
                       what);
    } else if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && (buf[2] == 3 || buf[2] == 5)) {
        st = load_zip(&L, f->arena, &root);
    } else if (buf[0] == 0x80) {
        f->legacy_format = 1;
        st = load_legacy(&L, f->arena, &root);
    } else if (len >= 262 && !memcmp(buf + 257, "ustar", 5)) {
        st = hy__error(HY_ERR_UNSUPPORTED,
                       "%s: tar-based torch.save format (PyTorch < 0.4) is not supported", what);
    } else {
        st = hy__error(HY_ERR_FORMAT,
                       "%s: not a PyTorch checkpoint (neither a zip archive nor a pickle)", what);
    }
    if (!st) st = extract(&L, root);
    if (!st) st = index_names(f, what);
    if (!st) f->root = root;
done:
    /* Storage data pointed into buffers that do not outlive this call. */
    for (size_t i = 0; f->arena && i < hy__pkl_storage_count(f->arena); i++) {
        hy__pkl_storage *s = hy__pkl_storage_at(f->arena, i)->u.storage;
        s->data = NULL;
        s->nbytes = 0;
        s->resolved = 0;
        s->entry = NULL;
    }
    for (size_t i = 0; i < L.n_owned; i++) hy__zip_data_free(&L.owned[i]);
    hy__free(L.owned);
    hy__free(L.prefix);
    hy__zip_close(L.zip);
    if (st) {
        hy__pt_free(f);
        return st;
    }
    *out = f;
    return HY_OK;
}

hy_status hy__pt_load(const char *path, hy__pt_file **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__pt_load: NULL argument");
    hy__map m;
    hy_status st = hy__map_open(path, &m);
    if (st) return st;
    st = hy__pt_load_buffer(m.data, m.size, path, out);
    hy__map_close(&m);
    return st;
}

void hy__pt_free(hy__pt_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) {
        hy__free(f->tensors[i].name);
        hy__free(f->tensors[i].data);
    }
    hy__free(f->tensors);
    hy__free(f->by_name);
    for (int i = 0; i < f->n_names; i++) hy__free(f->names[i]);
    hy__free(f->names);
    hy__pkl_arena_free(f->arena);
    hy__free(f);
}

const hy__pt_tensor *hy__pt_find(const hy__pt_file *f, const char *name) {
    if (!f || !name || !f->by_name) return NULL;
    size_t lo = 0, hi = f->n_tensors; /* first entry whose name >= `name` */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(f->by_name[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_tensors && !strcmp(f->by_name[lo]->name, name) ? f->by_name[lo] : NULL;
}
