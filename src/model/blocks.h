/* Reusable Ultralytics modules (ultralytics/nn/modules: Conv, Bottleneck, C2f, SPPF, Detect,
 * nn.Upsample, Concat) over a builder that works in two modes:
 *   spec mode  (b->g == NULL): list every state_dict tensor and every conv (the weight table);
 *   graph mode (b->g != NULL): emit graph nodes for an input shape.
 * A network file (yolov8.c) composes them in the order of its yaml; conv ids are assigned in
 * the same order in both modes. Arguments follow the Ultralytics constructors (c1 in, c2
 * out, ...); `prefix` is the module's state_dict path ("model.2"). Every block returns its
 * output tensor (graph mode) or -1 (spec mode, or after an error: see b->st). */
#ifndef HY_MODEL_BLOCKS_H
#define HY_MODEL_BLOCKS_H

#include "core/core.h"
#include "tensor/graph.h"

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
    int pad;              /* same on every side: k / 2 unless the module says (YOLOv5's 6x6 stem: 2) */
    int groups;           /* >= 1; weights (cout, cin / groups, k, k) */
    int has_bn;           /* Conv(+BN+act) vs plain Conv2d with bias */
    int act;              /* enum hy_act */
} hy__conv_spec;

/* The tensor and weight tables of one network (any architecture). */
typedef struct hy__model_spec {
    hy__tensor_spec *tensors;   /* unfused state_dict (Conv + BN), registration order */
    int n_tensors;
    hy__tensor_spec *fused;     /* BN folded: <p>.conv.weight + <p>.conv.bias (ONNX export) */
    int n_fused;
    hy__conv_spec *convs;
    int n_convs;
    /* The Detect head (set by hy__blk_detect / hy__blk_detect_anchor), for
     * hy__model_spec_init_tensor. */
    struct {
        char prefix[64];
        int nc, nl;
        int strides[4];
        int na;                       /* anchors per cell: 0 for the DFL head */
        float anchors[4][8];          /* anchor head: default (w, h) pairs in input pixels */
    } detect;
} hy__model_spec;

void hy__model_spec_free(hy__model_spec *s);
/* Initial value of tensor t when the weights lack it (transfer learning) and it differs
 * from a freshly built PyTorch module's defaults: Detect.bias_init() (box bias 1.0, class
 * bias log(5 / nc / (640 / stride)^2)) and the DFL arange. Fills dst (numel), returns 1;
 * returns 0 for every other tensor. */
int hy__model_spec_init_tensor(const hy__model_spec *s, const hy__tensor_spec *t, float *dst, size_t numel);

typedef struct hy__builder {
    hy__graph *g;            /* graph mode, or NULL */
    hy__model_spec *spec;    /* spec mode */
    int cap_tensors, cap_convs, cap_fused;
    int next_conv;           /* next weight id */
    hy_status st;            /* first error; every call after it does nothing */
} hy__builder;

/* ---- scaling (Ultralytics parse_model) ------------------------------------------------ */
/* make_divisible(x, divisor) = ceil(x / divisor) * divisor */
int hy__make_divisible(double x, int divisor);
/* Output channels of a scaled layer: make_divisible(min(c, max_channels) * width, 8). */
int hy__scale_width(int c, double width, int max_channels);
/* Repeats of a scaled layer: max(round(n * depth), 1) for n > 1 (Python round: half even). */
int hy__scale_depth(int n, double depth);

/* ---- spec tables (spec mode) ---------------------------------------------------------- */
/* Appends "<prefix>.<suffix>" with shape (d0..d3)[:ndim] to the unfused / fused tables. */
void hy__builder_add_spec(hy__builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                          int64_t d2, int64_t d3, hy_dtype dt);
void hy__builder_add_fused(hy__builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                           int64_t d2, int64_t d3);
/* Appends a conv to the weight table and its tensors to both tables (Conv: conv.weight +
 * bn.*; Conv2d: weight + bias). */
void hy__builder_add_conv_spec(hy__builder *b, const char *prefix, int cin, int cout, int k, int s, int groups,
                               int has_bn, int act);

/* ---- graph helpers (graph mode) ------------------------------------------------------- */
int hy__builder_tensor(hy__builder *b, int c, int64_t h, int64_t w, const char *name);
int hy__builder_node(hy__builder *b, enum hy__op op, const int *src, int n_src, int dst, const char *name);
/* Channels of tensor x (graph mode; 0 in spec mode). */
int hy__builder_channels(const hy__builder *b, int x);
/* Reserves the next weight id (for modules whose state_dict order differs from run order). */
static inline int hy__builder_conv_id(hy__builder *b) { return b->next_conv++; }

/* ---- modules -------------------------------------------------------------------------- */
/* A convolution with weight id `id`, pad k / 2, `groups`, then BN (has_bn: Conv) or bias
 * (Conv2d), then `act`; `add` (>= 0) is a residual added after the activation. */
int hy__blk_conv_id(hy__builder *b, int id, const char *prefix, int x, int c1, int c2, int k, int s, int groups,
                    int has_bn, int act, int add);
/* As hy__blk_conv_id with an explicit padding p on every side. */
int hy__blk_conv_pad_id(hy__builder *b, int id, const char *prefix, int x, int c1, int c2, int k, int s, int p,
                        int groups, int has_bn, int act, int add);
/* Conv(c1, c2, k, s, g): Conv2d(bias=False) + BatchNorm2d + SiLU (act = True). */
int hy__blk_conv(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int g);
/* Conv(c1, c2, k, s, p): as hy__blk_conv with padding p (YOLOv5's Conv(3, 64, 6, 2, 2) stem). */
int hy__blk_conv_p(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int p);
/* nn.Conv2d(c1, c2, k, s, bias=True); `act` fuses what follows it (Detect: sigmoid on cls). */
int hy__blk_conv2d(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int act);
/* Bottleneck(c1, c2, shortcut, g, k=(k1, k2), e): cv1 Conv(c1, c_, k1), cv2 Conv(c_, c2, k2,
 * g), c_ = int(c2 * e); x + cv2(cv1(x)) when shortcut and c1 == c2. */
int hy__blk_bottleneck(hy__builder *b, const char *prefix, int x, int c1, int c2, int shortcut, int g, int k1, int k2,
                       double e);
/* C2f(c1, c2, n, shortcut, g, e): cv1 -> split (c, c) -> n Bottleneck(c, c, shortcut, g,
 * (3, 3), 1.0) -> concat -> cv2, c = int(c2 * e). */
int hy__blk_c2f(hy__builder *b, const char *prefix, int x, int c1, int c2, int n, int shortcut, int g, double e);
/* C3(c1, c2, n, shortcut, g, e) (YOLOv5 models/common.py): cv1, cv2 Conv(c1, c_, 1), cv3
 * Conv(2 c_, c2, 1), m = n Bottleneck(c_, c_, shortcut, g, e=1.0) (1x1 then 3x3), c_ = int(c2 e);
 * cv3(cat(m(cv1(x)), cv2(x))). state_dict order: cv1, cv2, cv3, m.*. */
int hy__blk_c3(hy__builder *b, const char *prefix, int x, int c1, int c2, int n, int shortcut, int g, double e);
/* SPPF(c1, c2, k): cv1 -> x, m(x), m(m(x)), m(m(m(x))) -> concat -> cv2; m = MaxPool2d(k, 1, k/2). */
int hy__blk_sppf(hy__builder *b, const char *prefix, int x, int c1, int c2, int k);
/* nn.Upsample(None, scale, "nearest"); scale 2 only. */
int hy__blk_upsample(hy__builder *b, const char *name, int x, int scale);
/* Concat(1) of xs (n). */
int hy__blk_concat(hy__builder *b, const char *name, const int *xs, int n);

/* Detect(nc, ch) with a DFL box head: per level i, <prefix>.cv2.i (Conv, Conv, Conv2d ->
 * 4 * reg_max) and <prefix>.cv3.i (Conv, Conv, Conv2d -> nc, sigmoid), <prefix>.dfl; then
 * the decode into (4 + nc, A), A = sum over levels of h * w. strides: (nl) pixels per cell. */
typedef struct hy__detect_args {
    int nc, reg_max, nl;
    const int *ch;       /* (nl) input channels */
    const int *strides;  /* (nl) */
} hy__detect_args;
int hy__blk_detect(hy__builder *b, const char *prefix, const int *xs, const hy__detect_args *a);

/* YOLOv5 Detect(nc, anchors, ch): buffer <prefix>.anchors (nl, na, 2) in grid units (pixels /
 * stride), <prefix>.m.i = Conv2d(ch[i], na * (5 + nc), 1) per level; then HY_OP_DETECT_ANCHOR
 * into (A, 5 + nc), A = na * sum(h * w). anchors: per level na (w, h) pairs in input pixels
 * (the graph's decode; the spec's defaults for a transfer load). */
typedef struct hy__detect_anchor_args {
    int nc, na, nl;
    const int *ch;             /* (nl) input channels */
    const int *strides;        /* (nl) */
    const float (*anchors)[8]; /* (nl) x na (w, h) */
} hy__detect_anchor_args;
int hy__blk_detect_anchor(hy__builder *b, const char *prefix, const int *xs, const hy__detect_anchor_args *a);

#endif
