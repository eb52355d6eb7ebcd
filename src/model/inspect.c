/* hotyolo inspect: what a weights file is and holds, as JSON (json-c). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "io/onnx.h"
#include "io/safetensors.h"
#include "core/sha256.h"
#include "io/wfile.h"
#include "model/arch.h"
#include "model/model_impl.h"

/* Bounds on the description of a file's own metadata (checkpoint train_args, ONNX
 * metadata_props, safetensors __metadata__). A checkpoint's pickle may share one value
 * many times (memo) or contain itself, so the JSON is not a plain expansion:
 *   - a shared list/tuple/set/dict is written once; later occurrences (and cycles) are
 *     written as {"$ref": "<path of the first occurrence>"}, the path in Python-like form
 *     from the metadata key ("train_args.augment", "train_args.lr[2]");
 *   - containers nested deeper than JSON_MAX_DEPTH in a field are written as
 *     "<nested too deep>": the whole document then nests under 32 levels, the default
 *     limit of json-c's parser (the CLI parses this text back);
 *   - at most JSON_FIELD_BYTES of output per metadata field, JSON_TOTAL_BYTES in all and
 *     JSON_MAX_VALUES values; past a limit, a string is cut and ends in " <truncated>", a
 *     container ends with the element "<truncated>" (in a dict: key "$truncated").
 * Ultralytics' train_args is ~100 plain values (~2 KB), far below every bound. */
#define JSON_MAX_DEPTH 24
#define JSON_FIELD_BYTES (1u << 20)
#define JSON_TOTAL_BYTES (4u << 20)
#define JSON_MAX_VALUES 65536
#define JSON_MAX_ITEMS 1000 /* elements written per container */
#define JSON_PATH_MAX 160
#define TRUNCATED "<truncated>"

/* One shared container already written: its address and where (offset into jctx.paths). */
typedef struct seen_ent {
    const hy__pkl_value *v;
    size_t path;
} seen_ent;

typedef struct jctx {
    size_t field_left, total_left, values_left;
    seen_ent *seen; /* open addressing, n_seen <= cap / 2 */
    size_t seen_cap, n_seen;
    char *paths; /* NUL-terminated paths back to back */
    size_t paths_len, paths_cap;
    char path[JSON_PATH_MAX + 8]; /* of the value being written */
    size_t path_len;
    int nomem;
} jctx;

static void jctx_free(jctx *j) {
    hy__free(j->seen);
    hy__free(j->paths);
}

/* Charges n output bytes; 0 (nothing charged) when over a limit. */
static int charge(jctx *j, size_t n) {
    if (n > j->field_left || n > j->total_left) return 0;
    j->field_left -= n;
    j->total_left -= n;
    return 1;
}

/* Length of JSON-escaped s[0..n) with quotes. */
static size_t json_str_cost(const char *s, size_t n) {
    size_t c = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        c += ch < 0x20 ? 6 : (ch == '"' || ch == '\\') ? 2 : 1;
    }
    return c;
}

/* A JSON string of s[0..n), cut to the budget (at a UTF-8 boundary) with TRUNCATED. */
static json_object *jstr(jctx *j, const char *s, size_t n) {
    json_object *o = NULL;
    if (charge(j, json_str_cost(s, n))) {
        o = json_object_new_string_len(s, (int)n);
    } else {
        size_t left = HY_MIN(j->field_left, j->total_left), keep = 0, cost = sizeof TRUNCATED + 3;
        while (keep < n && cost + json_str_cost(s + keep, 1) - 2 <= left)
            cost += json_str_cost(s + keep++, 1) - 2;
        while (keep > 0 && keep < n && ((unsigned char)s[keep] & 0xc0) == 0x80) keep--;
        if (!charge(j, cost)) { /* not even the marker fits: the marker alone, 13 bytes over */
            if (!(o = json_object_new_string(TRUNCATED))) j->nomem = 1;
            return o;
        }
        char *b = hy__malloc(keep + sizeof TRUNCATED + 1);
        if (!b) {
            j->nomem = 1;
            return NULL;
        }
        memcpy(b, s, keep);
        snprintf(b + keep, sizeof TRUNCATED + 1, " " TRUNCATED);
        o = json_object_new_string(b);
        hy__free(b);
    }
    if (!o) j->nomem = 1;
    return o;
}

static json_object *jcstr(jctx *j, const char *s) { return jstr(j, s, strlen(s)); }

static size_t seen_slot(const jctx *j, const hy__pkl_value *v) {
    size_t h = (size_t)(((uintptr_t)v >> 4) * 0x9e3779b97f4a7c15ull) & (j->seen_cap - 1);
    while (j->seen[h].v && j->seen[h].v != v) h = (h + 1) & (j->seen_cap - 1);
    return h;
}

/* Path of the first occurrence of container v, or NULL when v was not written yet. */
static const char *seen_find(const jctx *j, const hy__pkl_value *v) {
    if (!j->seen_cap) return NULL;
    size_t h = seen_slot(j, v);
    return j->seen[h].v ? j->paths + j->seen[h].path : NULL;
}

/* Records container v at the current path; 0 when out of memory. */
static int seen_add(jctx *j, const hy__pkl_value *v) {
    if (2 * (j->n_seen + 1) > j->seen_cap) {
        size_t cap = j->seen_cap ? 2 * j->seen_cap : 64;
        seen_ent *old = j->seen, *t = hy__calloc(cap, sizeof *t);
        if (!t) return 0;
        size_t old_cap = j->seen_cap;
        j->seen = t;
        j->seen_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].v) j->seen[seen_slot(j, old[i].v)] = old[i];
        hy__free(old);
    }
    size_t need = j->path_len + 1;
    if (j->paths_len + need > j->paths_cap) {
        size_t cap = HY_MAX(2 * j->paths_cap, j->paths_len + need + 1024);
        char *p = hy__realloc(j->paths, cap);
        if (!p) return 0;
        j->paths = p;
        j->paths_cap = cap;
    }
    memcpy(j->paths + j->paths_len, j->path, need);
    j->seen[seen_slot(j, v)] = (seen_ent){v, j->paths_len};
    j->paths_len += need;
    j->n_seen++;
    return 1;
}

/* Appends a path step ("[3]", ".lr"); returns the old length to restore. A path too long
 * ends in "..." (the $ref target is then the first such path, still readable). */
static size_t path_push(jctx *j, const char *step) {
    size_t old = j->path_len;
    if (old >= JSON_PATH_MAX) return old;
    size_t n = strlen(step);
    if (n > JSON_PATH_MAX - old) {
        memcpy(j->path + old, step, JSON_PATH_MAX - old);
        memcpy(j->path + JSON_PATH_MAX, "...", 4);
        j->path_len = JSON_PATH_MAX + 3; /* strlen(path): seen_add copies path_len + 1 */
    } else {
        memcpy(j->path + old, step, n + 1);
        j->path_len = old + n;
    }
    return old;
}

static void path_pop(jctx *j, size_t old) {
    j->path_len = old;
    j->path[old] = 0;
}

static int is_container(const hy__pkl_value *v) {
    return v->kind == HY_PKL_TUPLE || v->kind == HY_PKL_LIST || v->kind == HY_PKL_SET ||
           v->kind == HY_PKL_DICT;
}

/* Pickle value -> JSON (NULL = JSON null for None; j->nomem on failure). */
static json_object *pkl_json(jctx *j, const hy__pkl_value *v, int depth) {
    char b[320];
    if (!v || v->kind == HY_PKL_NONE) return NULL;
    if (!j->values_left) return jcstr(j, TRUNCATED);
    j->values_left--;
    if (is_container(v)) {
        const char *first = seen_find(j, v);
        if (first) { /* shared, or a cycle back to an enclosing container */
            json_object *r = json_object_new_object(), *p = jcstr(j, first);
            if (!r || !p || json_object_object_add(r, "$ref", p)) {
                json_object_put(r);
                json_object_put(p);
                j->nomem = 1;
                return NULL;
            }
            charge(j, 10);
            return r;
        }
        if (depth >= JSON_MAX_DEPTH) return jcstr(j, "<nested too deep>");
        if (!seen_add(j, v)) {
            j->nomem = 1;
            return NULL;
        }
    }
    switch (v->kind) {
    case HY_PKL_BOOL: charge(j, 5); break;
    case HY_PKL_INT: case HY_PKL_FLOAT: charge(j, 24); break;
    default: break;
    }
    json_object *o = NULL;
    switch (v->kind) {
    case HY_PKL_BOOL: o = json_object_new_boolean(v->u.b); break;
    case HY_PKL_INT: o = json_object_new_int64(v->u.i); break;
    case HY_PKL_FLOAT: o = json_object_new_double(v->u.f); break;
    case HY_PKL_STR: return jstr(j, v->u.str.data, v->u.str.len);
    case HY_PKL_TUPLE:
    case HY_PKL_LIST:
    case HY_PKL_SET: {
        if (!(o = json_object_new_array())) break;
        size_t n = v->u.seq.n;
        for (size_t i = 0; i < n && !j->nomem; i++) {
            json_object *e;
            if (i == JSON_MAX_ITEMS || !charge(j, 2)) {
                e = json_object_new_string(TRUNCATED);
                if (!e || json_object_array_add(o, e)) j->nomem = 1, json_object_put(e);
                break;
            }
            char step[32];
            snprintf(step, sizeof step, "[%zu]", i);
            size_t at = path_push(j, step);
            e = pkl_json(j, v->u.seq.items[i], depth + 1);
            path_pop(j, at);
            if (!j->nomem && json_object_array_add(o, e)) j->nomem = 1, json_object_put(e);
        }
        break;
    }
    case HY_PKL_DICT: {
        if (!(o = json_object_new_object())) break;
        for (size_t i = 0; i < v->u.dict.n && !j->nomem; i++) {
            const hy__pkl_value *k = v->u.dict.keys[i];
            const char *key = b;
            if (k->kind == HY_PKL_STR) key = k->u.str.data;
            else if (k->kind == HY_PKL_INT) snprintf(b, sizeof b, "%lld", (long long)k->u.i);
            else snprintf(b, sizeof b, "<%s>", hy__pkl_kind_name(k->kind));
            json_object *e;
            if (i == JSON_MAX_ITEMS || !charge(j, json_str_cost(key, strlen(key)) + 2)) {
                e = json_object_new_string(TRUNCATED);
                if (!e || json_object_object_add(o, "$truncated", e)) j->nomem = 1, json_object_put(e);
                break;
            }
            size_t at = path_push(j, ".");
            path_push(j, key);
            e = pkl_json(j, v->u.dict.vals[i], depth + 1);
            path_pop(j, at);
            if (!j->nomem && json_object_object_add(o, key, e)) j->nomem = 1, json_object_put(e);
        }
        break;
    }
    case HY_PKL_GLOBAL:
        snprintf(b, sizeof b, "%.150s.%.150s", v->u.global.module, v->u.global.name);
        return jcstr(j, b);
    case HY_PKL_OBJECT:
        snprintf(b, sizeof b, "<%.150s.%.150s object>", v->u.obj.module, v->u.obj.name);
        return jcstr(j, b);
    case HY_PKL_TENSOR: return jcstr(j, "<tensor>");
    default:
        snprintf(b, sizeof b, "<%s>", hy__pkl_kind_name(v->kind));
        return jcstr(j, b);
    }
    if (!o || j->nomem) {
        json_object_put(o);
        j->nomem = 1;
        return NULL;
    }
    return o;
}

/* obj[key] = v; a NULL v (an allocation that failed) or a failed add marks *bad. */
static void jset(json_object *obj, const char *key, json_object *v, int *bad) {
    if (!obj || !v || json_object_object_add(obj, key, v)) {
        json_object_put(v);
        *bad = 1;
    }
}

static void jpush(json_object *arr, json_object *v, int *bad) {
    if (!arr || !v || json_object_array_add(arr, v)) {
        json_object_put(v);
        *bad = 1;
    }
}

/* metadata[key] = v for one metadata field, with a fresh per-field budget. */
static void meta_pkl(jctx *j, json_object *meta, const char *key, const hy__pkl_value *v, int *bad) {
    j->field_left = JSON_FIELD_BYTES;
    path_pop(j, 0);
    path_push(j, key);
    json_object *e = pkl_json(j, v, 0);
    if (j->nomem) {
        *bad = 1;
        return;
    }
    if (!e) { /* None */
        if (json_object_object_add(meta, key, NULL)) *bad = 1;
        return;
    }
    jset(meta, key, e, bad);
}

static void meta_str(jctx *j, json_object *meta, const char *key, const char *v, int *bad) {
    j->field_left = JSON_FIELD_BYTES;
    if (!charge(j, json_str_cost(key, strlen(key)))) { /* out of the total budget */
        jset(meta, "$truncated", json_object_new_string(TRUNCATED), bad);
        return;
    }
    json_object *e = jcstr(j, v);
    if (j->nomem) {
        *bad = 1;
        return;
    }
    jset(meta, key, e, bad);
}

/* NULL when out of memory. */
static json_object *shape_json(const hy__wtensor *t) {
    json_object *a = json_object_new_array();
    int bad = 0;
    for (int d = 0; d < t->ndim && a; d++) jpush(a, json_object_new_int64(t->shape[d]), &bad);
    if (bad) {
        json_object_put(a);
        return NULL;
    }
    return a;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

hy_status hy_inspect(const char *path, int with_tensors, char **json_out) {
    if (!path || !json_out) return hy__error(HY_ERR_INVALID_ARG, "hy_inspect: path and json_out are required");
    char sha[HY_SHA256_HEX_LEN + 1];
    hy_status st = hy__sha256_file(path, sha);
    if (st) return st;
    hy__wfile *f = NULL;
    if ((st = hy__wfile_open(path, 0, &f))) return st;
    const hy__wsource *src = hy__wfile_source(f);
    int bad = 0; /* a json-c allocation failed */
    jctx j = {.total_left = JSON_TOTAL_BYTES, .values_left = JSON_MAX_VALUES};
    json_object *o = json_object_new_object();
    if (!o) bad = 1;
    jset(o, "file", json_object_new_string(path), &bad);
    jset(o, "format", json_object_new_string(hy__wformat_name(src->format)), &bad);
    jset(o, "sha256", json_object_new_string(sha), &bad);
    jset(o, "fused", json_object_new_boolean(src->fused), &bad);
    /* architecture, as hotyolo would build it */
    hy__arch_cfg cfg;
    if (hy__arch_cfg_from_source(src, path, 0, &cfg) == HY_OK) {
        jset(o, "architecture", json_object_new_string(cfg.arch->name), &bad);
        jset(o, "task", json_object_new_string(cfg.arch->task), &bad);
        jset(o, "variant", json_object_new_string(cfg.variant), &bad);
        jset(o, "nc", json_object_new_int(cfg.nc), &bad);
        /* does it load strictly? */
        hy__model_spec *spec = NULL;
        if (hy__model_spec_create(&cfg, &spec) == HY_OK) {
            hy_model_params p = hy_model_default_params();
            hy__resolved res;
            hy__load_report rep;
            memset(&rep, 0, sizeof rep);
            hy_status vs = hy__model_resolve(spec, src, &p, path, cfg.nc, &res, &rep);
            jset(o, "valid", json_object_new_boolean(vs == HY_OK), &bad);
            if (vs) {
                /* the tensors do not form the recognised family: say so rather than guess */
                jset(o, "architecture", json_object_new_string("unknown"), &bad);
                jset(o, "problems", json_object_new_string(hy_last_error()), &bad);
            }
            else hy__resolved_free(&res);
            hy__load_report_free(&rep);
            hy__model_spec_free(spec);
        }
    } else {
        jset(o, "architecture", json_object_new_string("unknown"), &bad);
        jset(o, "valid", json_object_new_boolean(0), &bad);
        jset(o, "problems", json_object_new_string(hy_last_error()), &bad);
    }
    if (src->names) {
        json_object *names = json_object_new_array();
        for (int i = 0; i < src->n_names && names; i++)
            jpush(names, json_object_new_string(src->names[i] ? src->names[i] : ""), &bad);
        jset(o, "names", names, &bad);
    }
    jset(o, "imgsz", json_object_new_int(src->imgsz ? src->imgsz : 640), &bad);
    /* parameters: every float tensor except PyTorch buffers (BN running statistics, YOLOv5's
     * Detect anchors) */
    int64_t params = 0, packed = 0;
    size_t bytes = 0;
    int dcount[HY_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < src->n_tensors; i++) {
        const hy__wtensor *t = &src->tensors[i];
        if (strncmp(t->name, HY_WS_RESERVED_PREFIX, strlen(HY_WS_RESERVED_PREFIX)) == 0) {
            packed++; /* hotyolo's packed copies of the weights: not model tensors */
            continue;
        }
        if ((unsigned)t->dtype < HY_DTYPE_COUNT) dcount[t->dtype]++;
        bytes += t->numel * hy_dtype_size(t->dtype);
        if (ends_with(t->name, ".running_mean") || ends_with(t->name, ".running_var") ||
            ends_with(t->name, ".num_batches_tracked") || ends_with(t->name, ".anchors"))
            continue;
        params += (int64_t)t->numel;
    }
    jset(o, "parameters", json_object_new_int64(params), &bad);
    jset(o, "tensor_count", json_object_new_int64((int64_t)src->n_tensors - packed), &bad);
    if (packed) {
        jset(o, "packed_tensors", json_object_new_int64(packed), &bad);
        jset(o, "packed_layout", json_object_new_string(src->packed_layout ? src->packed_layout : ""), &bad);
    }
    jset(o, "tensor_bytes", json_object_new_int64((int64_t)bytes), &bad);
    json_object *dt = json_object_new_object();
    for (int d = 0; d < HY_DTYPE_COUNT && dt; d++)
        if (dcount[d]) jset(dt, hy_dtype_name((hy_dtype)d), json_object_new_int(dcount[d]), &bad);
    jset(o, "dtypes", dt, &bad);
    /* the file's own metadata, bounded (see JSON_* above) */
    json_object *meta = json_object_new_object();
    const hy__pt_file *pt = hy__wfile_pt(f);
    const hy__st_file *stf = hy__wfile_st(f);
    const hy__onnx_file *ox = hy__wfile_onnx(f);
    if (!meta) {
        bad = 1;
    } else if (pt) {
        meta_str(&j, meta, "weights_from", pt->source ? pt->source : "", &bad);
        static const char *keys[] = {"date", "version", "epoch", "best_fitness", "train_args", "train_metrics",
                                     "license", "docs", "train_results"};
        if (pt->root && pt->root->kind == HY_PKL_DICT)
            for (size_t k = 0; k < HY_ARRAY_LEN(keys) && !bad; k++) {
                const hy__pkl_value *v = hy__pkl_dict_get(pt->root, keys[k]);
                if (v) meta_pkl(&j, meta, keys[k], v, &bad);
            }
    } else if (stf) {
        for (size_t i = 0; i < hy__st_meta_count(stf) && !bad; i++) {
            const char *k, *v;
            if (hy__st_meta_at(stf, i, &k, &v)) meta_str(&j, meta, k, v, &bad);
        }
    } else if (ox) {
        jset(meta, "ir_version", json_object_new_int64(ox->ir_version), &bad);
        jset(meta, "opset", json_object_new_int64(ox->opset), &bad);
        meta_str(&j, meta, "producer", ox->producer_name ? ox->producer_name : "", &bad);
        jset(meta, "quantized", json_object_new_boolean(ox->quantized), &bad);
        for (size_t i = 0; i < ox->n_metadata && !bad; i++)
            meta_str(&j, meta, ox->metadata[i].key, ox->metadata[i].value, &bad);
    }
    jset(o, "metadata", meta, &bad);
    if (with_tensors && !bad) {
        json_object *ts = json_object_new_array();
        for (size_t i = 0; i < src->n_tensors && ts && !bad; i++) {
            const hy__wtensor *t = &src->tensors[i];
            json_object *e = json_object_new_object();
            jset(e, "name", json_object_new_string(t->name), &bad);
            jset(e, "shape", shape_json(t), &bad);
            jset(e, "dtype", json_object_new_string(hy_dtype_name(t->dtype)), &bad);
            jpush(ts, e, &bad);
        }
        jset(o, "tensors", ts, &bad);
    }
    jctx_free(&j);
    const char *txt = bad ? NULL
                          : json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
    char *s = txt ? hy__strdup(txt) : NULL;
    json_object_put(o);
    hy__wfile_close(f);
    if (!s) return hy__error(HY_ERR_NOMEM, "%s: out of memory while describing the file", path);
    *json_out = s;
    return HY_OK;
}
