/* hotyolo inspect: what a weights file is and holds, as JSON (json-c). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "io/onnx.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/wfile.h"
#include "model/model_impl.h"

/* Pickle value -> JSON, bounded depth (the tree may share nodes or be cyclic). */
static json_object *pkl_json(const hy__pkl_value *v, int depth) {
    if (!v) return NULL;
    if (depth > 12) return json_object_new_string("...");
    switch (v->kind) {
    case HY_PKL_NONE:
        return NULL;
    case HY_PKL_BOOL:
        return json_object_new_boolean(v->u.b);
    case HY_PKL_INT:
        return json_object_new_int64(v->u.i);
    case HY_PKL_FLOAT:
        return json_object_new_double(v->u.f);
    case HY_PKL_STR:
        return json_object_new_string_len(v->u.str.data, (int)v->u.str.len);
    case HY_PKL_TUPLE:
    case HY_PKL_LIST:
    case HY_PKL_SET: {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < v->u.seq.n && i < 1000; i++) json_object_array_add(a, pkl_json(v->u.seq.items[i], depth + 1));
        return a;
    }
    case HY_PKL_DICT: {
        json_object *o = json_object_new_object();
        for (size_t i = 0; i < v->u.dict.n && i < 1000; i++) {
            const hy__pkl_value *k = v->u.dict.keys[i];
            char key[64];
            if (k->kind == HY_PKL_STR) {
                json_object_object_add(o, k->u.str.data, pkl_json(v->u.dict.vals[i], depth + 1));
                continue;
            }
            if (k->kind == HY_PKL_INT) snprintf(key, sizeof key, "%lld", (long long)k->u.i);
            else snprintf(key, sizeof key, "<%s>", hy__pkl_kind_name(k->kind));
            json_object_object_add(o, key, pkl_json(v->u.dict.vals[i], depth + 1));
        }
        return o;
    }
    case HY_PKL_GLOBAL: {
        char b[256];
        snprintf(b, sizeof b, "%s.%s", v->u.global.module, v->u.global.name);
        return json_object_new_string(b);
    }
    case HY_PKL_OBJECT: {
        char b[256];
        snprintf(b, sizeof b, "<%s.%s object>", v->u.obj.module, v->u.obj.name);
        return json_object_new_string(b);
    }
    case HY_PKL_TENSOR:
        return json_object_new_string("<tensor>");
    default: {
        char b[64];
        snprintf(b, sizeof b, "<%s>", hy__pkl_kind_name(v->kind));
        return json_object_new_string(b);
    }
    }
}

static json_object *shape_json(const hy__wtensor *t) {
    json_object *a = json_object_new_array();
    for (int d = 0; d < t->ndim; d++) json_object_array_add(a, json_object_new_int64(t->shape[d]));
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
    json_object *o = json_object_new_object();
    json_object_object_add(o, "file", json_object_new_string(path));
    json_object_object_add(o, "format", json_object_new_string(hy__wformat_name(src->format)));
    json_object_object_add(o, "sha256", json_object_new_string(sha));
    json_object_object_add(o, "fused", json_object_new_boolean(src->fused));
    /* architecture, as hotyolo would build it */
    hy__yolov8_cfg cfg;
    if (hy__model_cfg_from_source(src, path, 0, &cfg) == HY_OK) {
        json_object *arch = json_object_new_string("yolov8");
        json_object_object_add(o, "architecture", arch);
        json_object_object_add(o, "task", json_object_new_string("detect"));
        json_object_object_add(o, "variant", json_object_new_string(cfg.variant));
        json_object_object_add(o, "nc", json_object_new_int(cfg.nc));
        /* does it load strictly? */
        hy__yolov8_spec *spec = NULL;
        if (hy__yolov8_spec_create(&cfg, &spec) == HY_OK) {
            hy_model_params p = hy_model_default_params();
            hy__resolved res;
            hy__load_report rep;
            memset(&rep, 0, sizeof rep);
            hy_status vs = hy__model_resolve(spec, src, &p, path, cfg.nc, &res, &rep);
            json_object_object_add(o, "valid", json_object_new_boolean(vs == HY_OK));
            if (vs) {
                /* the tensors do not form a YOLOv8: say so rather than guess */
                json_object_object_add(o, "architecture", json_object_new_string("unknown"));
                json_object_object_add(o, "problems", json_object_new_string(hy_last_error()));
            }
            else hy__resolved_free(&res);
            hy__load_report_free(&rep);
            hy__yolov8_spec_free(spec);
        }
    } else {
        json_object_object_add(o, "architecture", json_object_new_string("unknown"));
        json_object_object_add(o, "valid", json_object_new_boolean(0));
        json_object_object_add(o, "problems", json_object_new_string(hy_last_error()));
    }
    if (src->names) {
        json_object *names = json_object_new_array();
        for (int i = 0; i < src->n_names; i++)
            json_object_array_add(names, json_object_new_string(src->names[i] ? src->names[i] : ""));
        json_object_object_add(o, "names", names);
    }
    json_object_object_add(o, "imgsz", json_object_new_int(src->imgsz ? src->imgsz : 640));
    /* parameters: every float tensor except BN running statistics (PyTorch buffers) */
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
            ends_with(t->name, ".num_batches_tracked"))
            continue;
        params += (int64_t)t->numel;
    }
    json_object_object_add(o, "parameters", json_object_new_int64(params));
    json_object_object_add(o, "tensor_count", json_object_new_int64((int64_t)src->n_tensors - packed));
    if (packed) {
        json_object_object_add(o, "packed_tensors", json_object_new_int64(packed));
        json_object_object_add(o, "packed_layout", json_object_new_string(src->packed_layout ? src->packed_layout : ""));
    }
    json_object_object_add(o, "tensor_bytes", json_object_new_int64((int64_t)bytes));
    json_object *dt = json_object_new_object();
    for (int d = 0; d < HY_DTYPE_COUNT; d++)
        if (dcount[d]) json_object_object_add(dt, hy_dtype_name((hy_dtype)d), json_object_new_int(dcount[d]));
    json_object_object_add(o, "dtypes", dt);
    /* the file's own metadata */
    json_object *meta = json_object_new_object();
    const hy__pt_file *pt = hy__wfile_pt(f);
    const hy__st_file *stf = hy__wfile_st(f);
    const hy__onnx_file *ox = hy__wfile_onnx(f);
    if (pt) {
        json_object_object_add(meta, "weights_from", json_object_new_string(pt->source ? pt->source : ""));
        static const char *keys[] = {"date", "version", "epoch", "best_fitness", "train_args", "train_metrics",
                                     "license", "docs", "train_results"};
        if (pt->root && pt->root->kind == HY_PKL_DICT)
            for (size_t k = 0; k < HY_ARRAY_LEN(keys); k++) {
                const hy__pkl_value *v = hy__pkl_dict_get(pt->root, keys[k]);
                if (v) json_object_object_add(meta, keys[k], pkl_json(v, 0));
            }
    } else if (stf) {
        for (size_t i = 0; i < hy__st_meta_count(stf); i++) {
            const char *k, *v;
            if (hy__st_meta_at(stf, i, &k, &v)) json_object_object_add(meta, k, json_object_new_string(v));
        }
    } else if (ox) {
        json_object_object_add(meta, "ir_version", json_object_new_int64(ox->ir_version));
        json_object_object_add(meta, "opset", json_object_new_int64(ox->opset));
        json_object_object_add(meta, "producer", json_object_new_string(ox->producer_name ? ox->producer_name : ""));
        json_object_object_add(meta, "quantized", json_object_new_boolean(ox->quantized));
        for (size_t i = 0; i < ox->n_metadata; i++)
            json_object_object_add(meta, ox->metadata[i].key, json_object_new_string(ox->metadata[i].value));
    }
    json_object_object_add(o, "metadata", meta);
    if (with_tensors) {
        json_object *ts = json_object_new_array();
        for (size_t i = 0; i < src->n_tensors; i++) {
            const hy__wtensor *t = &src->tensors[i];
            json_object *e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(t->name));
            json_object_object_add(e, "shape", shape_json(t));
            json_object_object_add(e, "dtype", json_object_new_string(hy_dtype_name(t->dtype)));
            json_object_array_add(ts, e);
        }
        json_object_object_add(o, "tensors", ts);
    }
    char *s = hy__strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    hy__wfile_close(f);
    if (!s) return hy__error(HY_ERR_NOMEM, "out of memory");
    *json_out = s;
    return HY_OK;
}
