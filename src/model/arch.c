/* The architecture table (see arch.h). */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

#include "model/yolov8.h"

/* One line per family; the first is the default. */
const hy__arch *const hy__arch_table[] = {
    &hy__arch_yolov8,
    NULL,
};

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
    return a;
}

void hy__arch_strides_json(const hy__arch *a, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < a->n_levels && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%d" : "%d", a->strides[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}
