/* YOLOv5 as ultralytics/yolov5 (v6.0 - v7.0) builds it from models/yolov5?.yaml: the scales,
 * forward() composed from the blocks of blocks.h (one walk serves the tensor table and the
 * graph), and the config read from a checkpoint, anchors included. */
#include "model/yolov5.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/wfile.h"

#define HEAD "model.24" /* Detect is layer 24 */
#define NA 3            /* anchors per cell in every official yaml */
#define MAX_CH 1000000  /* parse_model caps no width */

static const struct {
    const char *scale;
    double depth, width;
} scales[] = {{"n", 0.33, 0.25}, {"s", 0.33, 0.50}, {"m", 0.67, 0.75}, {"l", 1.00, 1.00}, {"x", 1.33, 1.25}};

/* models/yolov5?.yaml anchors: P3/8, P4/16, P5/32, (w, h) pixels */
static const float default_anchors[3][8] = {
    {10, 13, 16, 30, 33, 23}, {30, 61, 62, 45, 59, 119}, {116, 90, 156, 198, 373, 326}};

static void set_default_anchors(hy__arch_cfg *c) {
    c->na = NA;
    memcpy(c->anchors, default_anchors, sizeof default_anchors);
}

static hy_status cfg_for_scale(const char *scale, int nc, hy__arch_cfg *out) {
    for (size_t i = 0; i < HY_ARRAY_LEN(scales); i++) {
        if (strcmp(scale, scales[i].scale) != 0) continue;
        memset(out, 0, sizeof *out);
        out->arch = &hy__arch_yolov5;
        out->nc = nc;
        out->depth = scales[i].depth;
        out->width = scales[i].width;
        out->max_channels = MAX_CH;
        set_default_anchors(out);
        snprintf(out->variant, sizeof out->variant, "%s", scale);
        return HY_OK;
    }
    return hy__error(HY_ERR_INVALID_ARG, "unknown YOLOv5 scale '%.16s' (expected n, s, m, l or x)", scale);
}

/* ---- config from a checkpoint ------------------------------------------------------ */
static int recognize(const hy__wsource *src) {
    return hy__arch_src_find(src, HEAD ".anchors") || hy__arch_src_find(src, HEAD ".m.0.weight");
}

/* The file's anchors (the Detect buffer, grid units: AutoAnchor may have changed them) in
 * pixels; the yaml's defaults when the file has none. */
static hy_status read_anchors(const hy__wsource *src, const char *what, hy__arch_cfg *c) {
    const hy__wtensor *t = hy__arch_src_find(src, HEAD ".anchors");
    if (!t) {
        set_default_anchors(c);
        return HY_OK;
    }
    if (t->ndim != 3 || t->shape[0] != 3 || t->shape[1] < 1 || t->shape[1] > HY_DETECT_MAX_ANCHORS ||
        t->shape[2] != 2)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "%s: " HEAD ".anchors has shape %s%lldx%lldx%lld: only 3 output levels (P3-P5) with 1 to %d "
                         "anchors each are supported",
                         what, t->ndim == 3 ? "" : "(rank) ", (long long)(t->ndim > 0 ? t->shape[0] : 0),
                         (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)(t->ndim > 2 ? t->shape[2] : 0),
                         HY_DETECT_MAX_ANCHORS);
    float v[3 * HY_DETECT_MAX_ANCHORS * 2];
    hy_status st = hy__wtensor_to_f32(t, v);
    if (st) return hy__error_prefix(st, "%s: " HEAD ".anchors", what);
    int na = (int)t->shape[1];
    for (int l = 0; l < 3; l++)
        for (int j = 0; j < 2 * na; j++) {
            float a = v[l * 2 * na + j] * (float)hy__arch_yolov5.strides[l];
            if (!(a > 0.f && a < 1e5f))
                return hy__error(HY_ERR_FORMAT, "%s: " HEAD ".anchors[%d][%d][%d] = %g is not a positive size", what, l,
                                 j / 2, j % 2, (double)v[l * 2 * na + j]);
            c->anchors[l][j] = a;
        }
    c->na = na;
    return HY_OK;
}

/* scale / nc from the file's config (yaml multiples, metadata), else inferred from tensor
 * shapes: nc from the first Detect conv, the scale from the stem width. */
static hy_status cfg_from_source(const hy__wsource *src, const char *what, int nc_override, hy__arch_cfg *out) {
    const hy__wtensor *c0 = hy__arch_src_find(src, "model.0.conv.weight");
    const hy__wtensor *m0 = hy__arch_src_find(src, HEAD ".m.0.weight"), *an = hy__arch_src_find(src, HEAD ".anchors");
    int na = an && an->ndim == 3 ? (int)an->shape[1] : NA;
    int nc = src->nc > 0 ? src->nc : (m0 && m0->ndim == 4 && na > 0 ? (int)(m0->shape[0] / na) - 5 : -1);
    if (nc_override > 0) nc = nc_override;
    if (nc <= 0) return hy__error(HY_ERR_FORMAT, "%s: the file names no class count (nc)", what);
    hy_status st;
    if (src->depth_multiple > 0 && src->width_multiple > 0) { /* the yaml's multiples */
        memset(out, 0, sizeof *out);
        out->arch = &hy__arch_yolov5;
        out->nc = nc;
        out->depth = src->depth_multiple;
        out->width = src->width_multiple;
        out->max_channels = MAX_CH;
        for (size_t i = 0; i < HY_ARRAY_LEN(scales); i++)
            if (fabs(scales[i].depth - out->depth) < 1e-6 && fabs(scales[i].width - out->width) < 1e-6)
                snprintf(out->variant, sizeof out->variant, "%s", scales[i].scale);
    } else if (src->scale[0]) {
        if ((st = cfg_for_scale(src->scale, nc, out))) return hy__error_prefix(st, "%s", what);
    } else {
        if (!c0 || c0->ndim != 4)
            return hy__error(HY_ERR_FORMAT,
                             "%s: not a YOLOv5 detection model (no model config, and no 'model.0.conv.weight' to "
                             "infer the architecture from)",
                             what);
        static const struct { int c; const char *s; } stems[] = {{16, "n"}, {32, "s"}, {48, "m"}, {64, "l"}, {80, "x"}};
        size_t i = 0;
        while (i < HY_ARRAY_LEN(stems) && c0->shape[0] != stems[i].c) i++;
        if (i == HY_ARRAY_LEN(stems))
            return hy__error(HY_ERR_FORMAT, "%s: model.0.conv.weight has %lld output channels, which matches no YOLOv5 scale",
                             what, (long long)c0->shape[0]);
        if ((st = cfg_for_scale(stems[i].s, nc, out))) return st;
    }
    return read_anchors(src, what, out);
}

/* ---- the network ---------------------------------------------------------------------- */
/* Model.forward for yolov5?.yaml; x: the input (graph mode) or -1 (spec mode). */
static int forward(hy__builder *b, const hy__arch_cfg *cfg, int x) {
#define W(c) hy__scale_width(c, cfg->width, cfg->max_channels)
#define D(n) hy__scale_depth(n, cfg->depth)
    int c64 = W(64), c128 = W(128), c256 = W(256), c512 = W(512), c1024 = W(1024);
    int y[24];
    /* backbone */
    y[0] = hy__blk_conv_p(b, "model.0", x, 3, c64, 6, 2, 2);                        /* P1/2 */
    y[1] = hy__blk_conv(b, "model.1", y[0], c64, c128, 3, 2, 1);                    /* P2/4 */
    y[2] = hy__blk_c3(b, "model.2", y[1], c128, c128, D(3), 1, 1, 0.5);
    y[3] = hy__blk_conv(b, "model.3", y[2], c128, c256, 3, 2, 1);                   /* P3/8 */
    y[4] = hy__blk_c3(b, "model.4", y[3], c256, c256, D(6), 1, 1, 0.5);
    y[5] = hy__blk_conv(b, "model.5", y[4], c256, c512, 3, 2, 1);                   /* P4/16 */
    y[6] = hy__blk_c3(b, "model.6", y[5], c512, c512, D(9), 1, 1, 0.5);
    y[7] = hy__blk_conv(b, "model.7", y[6], c512, c1024, 3, 2, 1);                  /* P5/32 */
    y[8] = hy__blk_c3(b, "model.8", y[7], c1024, c1024, D(3), 1, 1, 0.5);
    y[9] = hy__blk_sppf(b, "model.9", y[8], c1024, c1024, 5);
    /* head */
    y[10] = hy__blk_conv(b, "model.10", y[9], c1024, c512, 1, 1, 1);
    y[11] = hy__blk_upsample(b, "model.11", y[10], 2);
    y[12] = hy__blk_concat(b, "model.12", (int[]){y[11], y[6]}, 2);
    y[13] = hy__blk_c3(b, "model.13", y[12], c512 + c512, c512, D(3), 0, 1, 0.5);
    y[14] = hy__blk_conv(b, "model.14", y[13], c512, c256, 1, 1, 1);
    y[15] = hy__blk_upsample(b, "model.15", y[14], 2);
    y[16] = hy__blk_concat(b, "model.16", (int[]){y[15], y[4]}, 2);
    y[17] = hy__blk_c3(b, "model.17", y[16], c256 + c256, c256, D(3), 0, 1, 0.5);   /* P3/8 out */
    y[18] = hy__blk_conv(b, "model.18", y[17], c256, c256, 3, 2, 1);
    y[19] = hy__blk_concat(b, "model.19", (int[]){y[18], y[14]}, 2);
    y[20] = hy__blk_c3(b, "model.20", y[19], c256 + c256, c512, D(3), 0, 1, 0.5);   /* P4/16 out */
    y[21] = hy__blk_conv(b, "model.21", y[20], c512, c512, 3, 2, 1);
    y[22] = hy__blk_concat(b, "model.22", (int[]){y[21], y[10]}, 2);
    y[23] = hy__blk_c3(b, "model.23", y[22], c512 + c512, c1024, D(3), 0, 1, 0.5); /* P5/32 out */
    hy__detect_anchor_args da = {.nc = cfg->nc, .na = cfg->na, .nl = 3, .ch = (int[]){c256, c512, c1024},
                                 .strides = hy__arch_yolov5.strides, .anchors = cfg->anchors};
    return hy__blk_detect_anchor(b, HEAD, (int[]){y[17], y[20], y[23]}, &da);
#undef W
#undef D
}

static hy_status spec_create(const hy__arch_cfg *cfg, hy__model_spec **out) {
    if (cfg->na < 1 || cfg->na > HY_DETECT_MAX_ANCHORS)
        return hy__error(HY_ERR_INVALID_ARG, "yolov5: %d anchors per cell out of range", cfg->na);
    return hy__arch_spec_from(cfg, forward, out);
}

static hy_status graph_build(const hy__arch_cfg *cfg, int n, int h, int w, hy__graph **out) {
    return hy__arch_graph_from(cfg, forward, n, h, w, out);
}

const hy__arch hy__arch_yolov5 = {
    .name = "yolov5",
    .title = "YOLOv5",
    .variants = "n, s, m, l or x",
    .task = "detect",
    .recognize = recognize,
    .cfg_from_source = cfg_from_source,
    .cfg_for_variant = cfg_for_scale,
    .spec_create = spec_create,
    .graph_build = graph_build,
    .n_levels = 3,
    .strides = {8, 16, 32},
    .stride_max = 32,
    .objectness = 1,
    .exact_pad = 1,
    .trainable = 0, /* its anchor loss is not in src/train yet */
    .detect_iou = 0.45f, /* detect.py */
    .detect_max_det = 1000,
    .val_iou = 0.6f, /* val.py */
    .val_batch = 32,
};
