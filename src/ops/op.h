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

/* One Detect input level of one image. */
typedef struct hy__detect_level {
    const float *box; /* (4 * reg_max, h, w) */
    const float *cls; /* (nc, h, w) */
    int h, w;
} hy__detect_level;

#endif
