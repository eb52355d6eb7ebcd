#include "io/wfile.h"

#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "io/onnx.h"
#include "io/safetensors.h"

struct hy__wfile {
    hy__wsource src;
    hy__pt_file *pt;
    hy__wtensor *pt_tensors;
    hy__st_file *st;
    hy__onnx_file *onnx;
};

hy_status hy__pt_source(const hy__pt_file *pt, hy__wsource *out, hy__wtensor **tensors_out) {
    hy__wtensor *t = hy__calloc(pt->n_tensors ? pt->n_tensors : 1, sizeof *t);
    if (!t) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < pt->n_tensors; i++) {
        const hy__pt_tensor *p = &pt->tensors[i];
        t[i].name = p->name;
        t[i].dtype = p->dtype;
        t[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim && d < HY_WT_MAX_DIMS; d++) t[i].shape[d] = p->shape[d];
        t[i].numel = p->numel;
        t[i].data = p->data;
    }
    memset(out, 0, sizeof *out);
    out->format = HY_WFORMAT_PT;
    out->tensors = t;
    out->n_tensors = pt->n_tensors;
    out->fused = 0;
    /* Only a model yaml named "yolov8*.yaml" says the architecture; else it is unknown. */
    const char *slash = strrchr(pt->yaml_file, '/'), *yaml = slash ? slash + 1 : pt->yaml_file;
    out->arch = strncmp(yaml, "yolov8", 6) == 0 ? "yolov8" : NULL;
    out->nc = pt->nc > 0 ? pt->nc : 0;
    snprintf(out->scale, sizeof out->scale, "%s", pt->scale);
    out->depth_multiple = pt->depth_multiple;
    out->width_multiple = pt->width_multiple;
    out->max_channels = pt->max_channels;
    out->names = pt->names;
    out->n_names = pt->n_names;
    *tensors_out = t;
    return HY_OK;
}

hy_status hy__wfile_open(const char *path, int verify, hy__wfile **out) {
    hy__map map;
    hy_status st = hy__map_open(path, &map);
    if (st) return st;
    if (map.size == 0) {
        hy__map_close(&map);
        return hy__error(HY_ERR_FORMAT, "%s: file is empty", path);
    }
    hy__wformat fmt = hy__wformat_detect(map.data, map.size);
    uint8_t head[8] = {0};
    size_t nhead = HY_MIN(map.size, sizeof head);
    memcpy(head, map.data, nhead);
    hy__map_close(&map);
    hy__wfile *f = hy__calloc(1, sizeof *f);
    if (!f) return hy__error(HY_ERR_NOMEM, "out of memory");
    switch (fmt) {
    case HY_WFORMAT_PT:
    case HY_WFORMAT_PT_LEGACY:
        st = hy__pt_load(path, &f->pt);
        if (!st) st = hy__pt_source(f->pt, &f->src, &f->pt_tensors);
        if (!st) f->src.format = fmt;
        break;
    case HY_WFORMAT_SAFETENSORS:
        st = hy__st_open(path, verify, &f->st);
        if (!st) st = hy__st_source(f->st, &f->src);
        if (!st) f->src.packed_layout = hy__st_meta(f->st, "hotyolo.packed_layout");
        break;
    case HY_WFORMAT_ONNX:
        st = hy__onnx_load(path, &f->onnx);
        if (!st) st = hy__onnx_source(f->onnx, &f->src);
        break;
    default: {
        char hex[3 * 8 + 1] = ""; /* braces: a declaration may not follow a label in C11 */
        for (size_t i = 0; i < HY_MIN(nhead, sizeof head); i++) snprintf(hex + 3 * i, 4, i ? " %02x" : "%02x", head[i]);
        st = hy__error(HY_ERR_FORMAT,
                       "%s: unknown weights format (first bytes %s); expected a PyTorch .pt, safetensors or ONNX file",
                       path, hex);
    }
    }
    if (st) {
        hy__wfile_close(f);
        return st;
    }
    *out = f;
    return HY_OK;
}

void hy__wfile_close(hy__wfile *f) {
    if (!f) return;
    hy__pt_free(f->pt);
    hy__free(f->pt_tensors);
    hy__st_close(f->st);
    hy__onnx_free(f->onnx);
    hy__free(f);
}

const hy__wsource *hy__wfile_source(const hy__wfile *f) { return &f->src; }
const hy__pt_file *hy__wfile_pt(const hy__wfile *f) { return f->pt; }
const struct hy__st_file *hy__wfile_st(const hy__wfile *f) { return f->st; }
const struct hy__onnx_file *hy__wfile_onnx(const hy__wfile *f) { return f->onnx; }

hy_status hy__wtensor_to_f32(const hy__wtensor *t, float *dst) {
    if (!hy__to_f32(t->dtype, t->data, t->numel, dst))
        return hy__error(HY_ERR_UNSUPPORTED, "%s: dtype %s cannot be converted to float32", t->name,
                         hy_dtype_name(t->dtype));
    return HY_OK;
}
