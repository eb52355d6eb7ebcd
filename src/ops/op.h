/* Graph operations: enum + typed parameter structs, shared by every backend and by the
 * model layer. Append-only (ABI/format rule). Includes nothing but the C library. */
#ifndef HY_OP_H
#define HY_OP_H

#include <stdint.h>

enum hy__op {
    HY_OP_INPUT,        /* graph input, no computation */
    HY_OP_CONV2D,       /* src0 x, src1 optional residual added after act; weights by id */
    HY_OP_MAXPOOL2D,    /* k x k, stride 1, pad k/2 */
    HY_OP_UPSAMPLE2X,   /* nearest */
    HY_OP_CONCAT,       /* channel concat; zero-copy when the planner aliases inputs */
    HY_OP_DETECT,       /* YOLOv8 Detect decode: (box_i, cls_i) x levels -> (4 + nc, A) */
    HY_OP_DETECT_ANCHOR, /* YOLOv5 Detect decode: raw conv output per level -> (A, 5 + nc) */
    HY_OP_COUNT
};
const char *hy__op_name(enum hy__op op);

/* Activation applied after a conv's bias (and before its residual add). */
enum hy_act { HY_ACT_NONE, HY_ACT_SILU, HY_ACT_SIGMOID, HY_ACT_COUNT };

/* Output size of a conv / pool along one axis. */
static inline int hy__conv_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* A convolution as kernels see it (one image). */
typedef struct hy__conv2d_desc {
    int cin, cout;        /* total channels; each group maps cin/groups -> cout/groups */
    int kh, kw;
    int stride, pad;      /* same in both axes */
    int act;              /* enum hy_act, applied after bias */
    int groups;           /* 0 or 1: dense; cin for depthwise. Weights (cout, cin/groups, kh, kw) */
} hy__conv2d_desc;

typedef struct hy__conv2d_params {
    int32_t cin, cout, kh, kw, stride, pad;
    int32_t act; /* enum hy_act */
    int32_t weight_id; /* index into the model's weight table */
    int32_t groups; /* 0 or 1: dense; weights (cout, cin / groups, kh, kw) */
} hy__conv2d_params;

typedef struct hy__detect_params {
    int32_t nc, reg_max, n_levels;
    int32_t stride[4];
    int32_t dfl_weight_id; /* the (1, reg_max, 1, 1) DFL projection, or -1 for arange */
} hy__detect_params;

#define HY_DETECT_MAX_ANCHORS 4

/* YOLOv5 Detect (anchor-based, objectness) decode. Input per level l: the raw output of its
 * 1x1 Conv2d, (na * (5 + nc), h, w), channel a * (5 + nc) + j = field j of anchor a. Output:
 * (A, 5 + nc) row-major, A = na * sum(h * w), rows ordered level, anchor, y, x (YOLOv5's
 * torch.cat(z, 1) order). With s = sigmoid(v) for every field:
 *   x = (2 s0 - 0.5 + cx) * stride, y = (2 s1 - 0.5 + cy) * stride  (centre, input pixels)
 *   w = (2 s2)^2 * anchor_w,         h = (2 s3)^2 * anchor_h          (anchor in pixels)
 *   obj = s4, cls_k = s(5 + k). */
typedef struct hy__detect_anchor_params {
    int32_t nc, na, n_levels;
    int32_t stride[4];
    float anchors[4][2 * HY_DETECT_MAX_ANCHORS]; /* per level: na (w, h) pairs, input pixels */
} hy__detect_anchor_params;

/* One Detect input level of one image. */
typedef struct hy__detect_level {
    const float *box; /* (4 * reg_max, h, w) */
    const float *cls; /* (nc, h, w) */
    int h, w;
} hy__detect_level;

#endif
