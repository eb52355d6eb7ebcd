/* The training graph: the network of a hy__tmodel unfused (Conv -> BatchNorm -> SiLU, plain
 * Conv2d with bias for the Detect outputs), built from the same architecture blocks as the
 * inference graph (hy__arch_graph_build: its CONV nodes carry the conv table ids; training
 * reads each as conv + BN + act + residual, the Detect head's class convs without their
 * sigmoid), for one batch shape (n, 3, h, w). Everything a step needs (activations kept for
 * backward, gradients, BN batch statistics, kernel scratch) is planned and allocated by
 * hy__tgraph_create: forward and backward allocate nothing.
 *
 * Outputs: the Detect head's raw maps per level, p_i (n, 4 reg_max + nc, h / s_i, w / s_i),
 * 4 reg_max DFL logits then nc class logits per cell (Ultralytics' Detect.forward in
 * training: cat(cv2[i](x), cv3[i](x))). */
#ifndef HY_TRAIN_TGRAPH_H
#define HY_TRAIN_TGRAPH_H

#include "ops/train_op.h"
#include "train/tmodel.h"

typedef struct hy__tgraph hy__tgraph;

typedef struct hy__tgraph_params {
    const char *device;      /* backend name ("cpu", "ref"); NULL = "cpu" */
    hy__threadpool *tp;      /* kernels' threads (not owned); NULL = one thread */
    float bn_momentum;       /* 0.03 (Ultralytics initialize_weights) */
    float bn_eps;            /* 1e-3 */
} hy__tgraph_params;
hy__tgraph_params hy__tgraph_default_params(void);

/* Plans forward + backward for input (n, 3, h, w) (h, w multiples of the stride). */
hy_status hy__tgraph_create(hy__tmodel *tm, const hy__tgraph_params *p, int n, int h, int w, hy__tgraph **out);
void hy__tgraph_free(hy__tgraph *g);

/* The input tensor: (n, 3, h, w) floats, RGB in [0, 1]; write it before forward. */
float *hy__tgraph_input(hy__tgraph *g);
/* Levels and output maps: p_i, their gradients (written by the loss before backward; gradient
 * buffers share memory, so backward overwrites them). */
int hy__tgraph_levels(const hy__tgraph *g);
hy__tview hy__tgraph_output(const hy__tgraph *g, int level);
hy__tview hy__tgraph_output_grad(const hy__tgraph *g, int level);

/* Forward. train 1: BatchNorm on batch statistics, running statistics updated (momentum,
 * num_batches_tracked += 1), as model.train(); 0: running statistics, as model.eval(). Frozen
 * layers behave the same (Ultralytics freezes parameters, not BatchNorm modes). */
hy_status hy__tgraph_forward(hy__tgraph *g, int train);
/* Backward from the output gradients: tm->grad += dL/dparam for every trainable parameter;
 * input gradients stop below the first trainable layer. Call after forward (same mode). */
hy_status hy__tgraph_backward(hy__tgraph *g);

/* Bytes planned (activations kept for backward + gradients + scratch). */
size_t hy__tgraph_bytes(const hy__tgraph *g);
/* Floating-point operations of one forward / one backward (multiply-add = 2) at the current
 * freezing, for GFLOP/s figures. */
double hy__tgraph_flops(const hy__tgraph *g, int backward);

#endif
