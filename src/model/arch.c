/* The architecture table (see arch.h). */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

#include "model/yolov5.h"
#include "model/yolov8.h"

/* One line per family; the first is the default. */
const hy__arch *const hy__arch_table[] = {
    &hy__arch_yolov8,
    &hy__arch_yolov5,
    NULL,
};

const hy__wtensor *hy__arch_src_find(const hy__wsource *src, const char *name) {
    for (size_t i = 0; i < src->n_tensors; i++)
        if (strcmp(src->tensors[i].name, name) == 0) return &src->tensors[i];
    return NULL;
}

const hy__arch *hy__arch_find(const char *name) {
    char known[128] = "";
    size_t k = 0;
    for (int i = 0; hy__arch_table[i]; i++) {
        if (name && strcmp(name, hy__arch_table[i]->name) == 0) return hy__arch_table[i];
        if (k < sizeof known) k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", hy__arch_table[i]->name);
    }
    hy__error(HY_ERR_UNSUPPORTED, "architecture \"%.32s\" is not supported (supported: %s)", name ? name : "", known);
    return NULL;
}

const hy__arch *hy__arch_recognize(const hy__wsource *src) {
    for (int i = 0; hy__arch_table[i]; i++)
        if (hy__arch_table[i]->recognize(src)) return hy__arch_table[i];
    return hy__arch_table[0];
}

/* The family the file records (readers report it, the model layer judges it), else the one
 * its tensors show. */
hy_status hy__arch_cfg_from_source(const hy__wsource *src, const char *what, int nc_override, hy__arch_cfg *out) {
    const hy__arch *a = src->arch ? hy__arch_find(src->arch) : hy__arch_recognize(src);
    if (!a) return hy__error_prefix(HY_ERR_UNSUPPORTED, "%s", what);
    return a->cfg_from_source(src, what, nc_override, out);
}

hy_status hy__model_spec_create(const hy__arch_cfg *cfg, hy__model_spec **out) {
    return cfg->arch->spec_create(cfg, out);
}

hy_status hy__arch_graph_build(const hy__arch_cfg *cfg, int n, int h, int w, hy__graph **out) {
    return cfg->arch->graph_build(cfg, n, h, w, out);
}

int hy__arch_num_anchors(const hy__arch_cfg *cfg, int h, int w) {
    int a = 0;
    for (int i = 0; i < cfg->arch->n_levels; i++) a += (h / cfg->arch->strides[i]) * (w / cfg->arch->strides[i]);
    return cfg->na > 0 ? a * cfg->na : a;
}

size_t hy__arch_output_numel(const hy__arch_cfg *cfg, int h, int w) {
    return (size_t)hy__arch_num_anchors(cfg, h, w) * (size_t)(cfg->nc + (cfg->arch->objectness ? 5 : 4));
}

void hy__arch_strides_json(const hy__arch *a, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < a->n_levels && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%d" : "%d", a->strides[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

hy_status hy__arch_spec_from(const hy__arch_cfg *cfg, hy__forward_fn f, hy__model_spec **out) {
    if (cfg->nc < 1 || cfg->nc > 100000)
        return hy__error(HY_ERR_INVALID_ARG, "%s: class count %d out of range", cfg->arch->name, cfg->nc);
    hy__model_spec *s = hy__calloc(1, sizeof *s);
    if (!s) return hy__error(HY_ERR_NOMEM, "model spec: out of memory");
    hy__builder b = {.spec = s};
    f(&b, cfg, -1);
    if (b.st) {
        hy__model_spec_free(s);
        return b.st;
    }
    *out = s;
    return HY_OK;
}

hy_status hy__arch_graph_from(const hy__arch_cfg *cfg, hy__forward_fn f, int n, int h, int w, hy__graph **out) {
    const int sm = cfg->arch->stride_max;
    if (h <= 0 || w <= 0 || h % sm || w % sm || h > 8192 || w > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "input size %dx%d: each side must be a positive multiple of %d, at most 8192",
                         w, h, sm);
    hy__graph *g;
    hy_status st = hy__graph_create(n, &g);
    if (st) return st;
    g->in_h = h;
    g->in_w = w;
    hy__builder b = {.g = g};
    int x = hy__builder_tensor(&b, 3, h, w, "images");
    g->input = x;
    if (x >= 0) hy__builder_node(&b, HY_OP_INPUT, NULL, 0, x, "images");
    g->output = f(&b, cfg, x);
    if (!b.st) b.st = hy__graph_plan(g);
    if (b.st) {
        hy__graph_free(g);
        return b.st;
    }
    *out = g;
    return HY_OK;
}
