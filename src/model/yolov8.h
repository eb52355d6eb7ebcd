/* YOLOv8 detection architecture (Ultralytics yolov8.yaml): the state_dict tensor table and
 * the forward graph, both produced by one walk over the layers (yolov8.c reads like
 * DetectionModel.forward). */
#ifndef HY_YOLOV8_H
#define HY_YOLOV8_H

#include "core/core.h"
#include "tensor/graph.h"

typedef struct hy__yolov8_cfg {
    int nc;             /* classes */
    double depth;       /* depth multiple (n 0.33, s 0.33, m 0.67, l 1.0, x 1.0) */
    double width;       /* width multiple (n 0.25, s 0.50, m 0.75, l 1.0, x 1.25) */
    int max_channels;   /* n/s 1024, m 768, l/x 512 */
    int reg_max;        /* 16 */
    char variant[8];    /* "n".."x" or "" */
} hy__yolov8_cfg;

/* Fills cfg for a named scale ("n", "s", "m", "l", "x") and class count. */
hy_status hy__yolov8_cfg_for_scale(const char *scale, int nc, hy__yolov8_cfg *out);

/* One expected state_dict entry. */
typedef struct hy__tensor_spec {
    char name[96];
    int ndim;
    int64_t shape[4];
    hy_dtype dtype;       /* as Ultralytics builds it: float32, num_batches_tracked int64 */
} hy__tensor_spec;

/* One convolution of the network, in graph order; the weight table of the model. */
typedef struct hy__conv_spec {
    char prefix[80];      /* "model.2.m.0.cv1" (Conv: +.conv.weight, .bn.*) or "model.22.cv2.0.2" (Conv2d) */
    int cin, cout, k, stride;
    int has_bn;           /* Conv(+BN+SiLU) vs plain Conv2d with bias */
    int act;              /* enum hy_act */
} hy__conv_spec;

typedef struct hy__yolov8_spec {
    hy__tensor_spec *tensors;   /* unfused state_dict (Conv + BN), registration order */
    int n_tensors;
    hy__tensor_spec *fused;     /* BN folded: <p>.conv.weight + <p>.conv.bias (ONNX export) */
    int n_fused;
    hy__conv_spec *convs;
    int n_convs;
} hy__yolov8_spec;

hy_status hy__yolov8_spec_create(const hy__yolov8_cfg *cfg, hy__yolov8_spec **out);
void hy__yolov8_spec_free(hy__yolov8_spec *s);

/* Builds and plans the forward graph for an input (1, 3, h, w); h, w multiples of 32.
 * Conv nodes carry weight ids = indices into spec->convs. Output (1, 4 + nc, A, 1)... stored
 * as a (4 + nc, A) tensor. */
hy_status hy__yolov8_graph_build(const hy__yolov8_cfg *cfg, int h, int w, hy__graph **out);

/* Number of anchors for an input (h, w): sum over strides 8/16/32 of (h/s)*(w/s). */
int hy__yolov8_num_anchors(int h, int w);

#endif
