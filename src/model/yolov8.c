/* YOLOv8 as Ultralytics builds it from yolov8.yaml: the scales, forward() composed from the
 * blocks of blocks.h (one walk serves the tensor table and the graph), and the config read
 * from a checkpoint. */
#include "model/yolov8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HEAD "model.22" /* Detect is layer 22 */
#define REG_MAX 16

static const struct {
    const char *scale;
    double depth, width;
    int max_channels;
} scales[] = {{"n", 0.33, 0.25, 1024}, {"s", 0.33, 0.50, 1024}, {"m", 0.67, 0.75, 768},
              {"l", 1.00, 1.00, 512},  {"x", 1.00, 1.25, 512}};

static hy_status cfg_for_scale(const char *scale, int nc, hy__arch_cfg *out) {
    for (size_t i = 0; i < HY_ARRAY_LEN(scales); i++) {
        if (strcmp(scale, scales[i].scale) != 0) continue;
        memset(out, 0, sizeof *out);
        out->arch = &hy__arch_yolov8;
        out->nc = nc;
        out->depth = scales[i].depth;
        out->width = scales[i].width;
        out->max_channels = scales[i].max_channels;
        out->reg_max = REG_MAX;
        snprintf(out->variant, sizeof out->variant, "%s", scale);
        return HY_OK;
    }
    return hy__error(HY_ERR_INVALID_ARG, "unknown YOLOv8 scale '%.16s' (expected n, s, m, l or x)", scale);
}

/* ---- config from a checkpoint ------------------------------------------------------ */
static int recognize(const hy__wsource *src) {
    return hy__arch_src_find(src, HEAD ".cv3.0.2.weight") || hy__arch_src_find(src, HEAD ".dfl.conv.weight");
}

/* scale/nc from the file's config (yaml, metadata), else inferred from tensor shapes:
 * nc from the first class conv, the scale from the stem width. */
static hy_status cfg_from_source(const hy__wsource *src, const char *what, int nc_override, hy__arch_cfg *out) {
    const hy__wtensor *c0 = hy__arch_src_find(src, "model.0.conv.weight");
    const hy__wtensor *cls = hy__arch_src_find(src, HEAD ".cv3.0.2.weight");
    int nc = src->nc > 0 ? src->nc : (cls && cls->ndim == 4 ? (int)cls->shape[0] : -1);
    if (nc_override > 0) nc = nc_override;
    if (src->scale[0]) {
        if (nc <= 0) return hy__error(HY_ERR_FORMAT, "%s: the file names no class count (nc)", what);
        hy_status st = cfg_for_scale(src->scale, nc, out);
        return st ? hy__error_prefix(st, "%s", what) : HY_OK;
    }
    if (src->depth_multiple > 0 && src->width_multiple > 0 && nc > 0) {
        memset(out, 0, sizeof *out);
        out->arch = &hy__arch_yolov8;
        out->nc = nc;
        out->depth = src->depth_multiple;
        out->width = src->width_multiple;
        out->max_channels = src->max_channels > 0 ? src->max_channels : 1024;
        out->reg_max = REG_MAX;
        for (size_t i = 0; i < HY_ARRAY_LEN(scales); i++) {
            hy__arch_cfg t;
            cfg_for_scale(scales[i].scale, nc, &t);
            if (fabs(t.depth - out->depth) < 1e-6 && fabs(t.width - out->width) < 1e-6 &&
                (src->max_channels <= 0 || src->max_channels == t.max_channels))
                *out = t;
        }
        return HY_OK;
    }
    if (!c0 || c0->ndim != 4 || nc <= 0)
        return hy__error(HY_ERR_FORMAT,
                         "%s: not a YOLOv8 detection model (no model config, and no 'model.0.conv.weight' / "
                         "'" HEAD ".cv3.0.2.weight' to infer the architecture from)",
                         what);
    static const struct { int c; const char *s; } stems[] = {{16, "n"}, {32, "s"}, {48, "m"}, {64, "l"}, {80, "x"}};
    for (size_t i = 0; i < HY_ARRAY_LEN(stems); i++)
        if (c0->shape[0] == stems[i].c) return cfg_for_scale(stems[i].s, nc, out);
    return hy__error(HY_ERR_FORMAT, "%s: model.0.conv.weight has %lld output channels, which matches no YOLOv8 scale",
                     what, (long long)c0->shape[0]);
}

/* ---- the network ---------------------------------------------------------------------- */
/* DetectionModel.forward for yolov8.yaml; x: the input (graph mode) or -1 (spec mode). */
static int forward(hy__builder *b, const hy__arch_cfg *cfg, int x) {
#define W(c) hy__scale_width(c, cfg->width, cfg->max_channels)
#define D(n) hy__scale_depth(n, cfg->depth)
    int c64 = W(64), c128 = W(128), c256 = W(256), c512 = W(512), c1024 = W(1024);
    int y[23];
    /* backbone */
    y[0] = hy__blk_conv(b, "model.0", x, 3, c64, 3, 2, 1);                          /* P1/2 */
    y[1] = hy__blk_conv(b, "model.1", y[0], c64, c128, 3, 2, 1);                    /* P2/4 */
    y[2] = hy__blk_c2f(b, "model.2", y[1], c128, c128, D(3), 1, 1, 0.5);
    y[3] = hy__blk_conv(b, "model.3", y[2], c128, c256, 3, 2, 1);                   /* P3/8 */
    y[4] = hy__blk_c2f(b, "model.4", y[3], c256, c256, D(6), 1, 1, 0.5);
    y[5] = hy__blk_conv(b, "model.5", y[4], c256, c512, 3, 2, 1);                   /* P4/16 */
    y[6] = hy__blk_c2f(b, "model.6", y[5], c512, c512, D(6), 1, 1, 0.5);
    y[7] = hy__blk_conv(b, "model.7", y[6], c512, c1024, 3, 2, 1);                  /* P5/32 */
    y[8] = hy__blk_c2f(b, "model.8", y[7], c1024, c1024, D(3), 1, 1, 0.5);
    y[9] = hy__blk_sppf(b, "model.9", y[8], c1024, c1024, 5);
    /* head */
    y[10] = hy__blk_upsample(b, "model.10", y[9], 2);
    y[11] = hy__blk_concat(b, "model.11", (int[]){y[10], y[6]}, 2);
    y[12] = hy__blk_c2f(b, "model.12", y[11], c1024 + c512, c512, D(3), 0, 1, 0.5);
    y[13] = hy__blk_upsample(b, "model.13", y[12], 2);
    y[14] = hy__blk_concat(b, "model.14", (int[]){y[13], y[4]}, 2);
    y[15] = hy__blk_c2f(b, "model.15", y[14], c512 + c256, c256, D(3), 0, 1, 0.5);  /* P3/8 out */
    y[16] = hy__blk_conv(b, "model.16", y[15], c256, c256, 3, 2, 1);
    y[17] = hy__blk_concat(b, "model.17", (int[]){y[16], y[12]}, 2);
    y[18] = hy__blk_c2f(b, "model.18", y[17], c256 + c512, c512, D(3), 0, 1, 0.5);  /* P4/16 out */
    y[19] = hy__blk_conv(b, "model.19", y[18], c512, c512, 3, 2, 1);
    y[20] = hy__blk_concat(b, "model.20", (int[]){y[19], y[9]}, 2);
    y[21] = hy__blk_c2f(b, "model.21", y[20], c512 + c1024, c1024, D(3), 0, 1, 0.5); /* P5/32 out */
    hy__detect_args da = {.nc = cfg->nc, .reg_max = cfg->reg_max, .nl = 3, .ch = (int[]){c256, c512, c1024},
                          .strides = hy__arch_yolov8.strides};
    return hy__blk_detect(b, HEAD, (int[]){y[15], y[18], y[21]}, &da);
#undef W
#undef D
}

static hy_status spec_create(const hy__arch_cfg *cfg, hy__model_spec **out) {
    return hy__arch_spec_from(cfg, forward, out);
}

static hy_status graph_build(const hy__arch_cfg *cfg, int n, int h, int w, hy__graph **out) {
    return hy__arch_graph_from(cfg, forward, n, h, w, out);
}

const hy__arch hy__arch_yolov8 = {
    .name = "yolov8",
    .title = "YOLOv8",
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
    .objectness = 0,
    .trainable = 1,
    .detect_iou = 0.7f,
    .detect_max_det = 300,
    .val_iou = 0.7f,
    .val_batch = 16,
};
