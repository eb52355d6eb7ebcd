/* Graph operations: enum + typed parameter structs. Append-only (ABI/format rule). */
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

typedef struct hy__conv2d_params {
    int32_t cin, cout, kh, kw, stride, pad;
    int32_t act; /* enum hy_act */
    int32_t weight_id; /* index into the model's weight table */
} hy__conv2d_params;

typedef struct hy__detect_params {
    int32_t nc, reg_max, n_levels;
    int32_t stride[4];
    int32_t dfl_weight_id; /* the (1, reg_max, 1, 1) DFL projection, or -1 for arange */
} hy__detect_params;

#endif
