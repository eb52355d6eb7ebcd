/* The YOLOv8 detection loss exactly as Ultralytics 8.0.172's v8DetectionLoss
 * (ultralytics/utils/loss.py + tal.py): TaskAlignedAssigner (topk 10, alpha 0.5, beta 6.0,
 * CIoU overlaps, anchor centres inside the box, one box per anchor by highest overlap), BCE
 * with logits over the sum of target scores, CIoU box loss and DFL loss weighted by the target
 * scores; gains box 7.5, cls 0.5, dfl 1.5. The assignment is made on detached predictions, so
 * it is a constant of the gradient, as in PyTorch.
 *
 * Input: the head maps p_i (n, 4 reg_max + nc, h_i, w_i) (hy__tgraph_output), targets as
 * Ultralytics' batch: rows (image index, class, cx, cy, w, h) normalised to the network input
 * (w_in, h_in). Output: the three gained components and total = (box + cls + dfl) * n, the
 * value back-propagated; the gradient d total / d p_i into the grad views. Scratch is sized
 * once for (n, anchors, max targets per image) by hy__v8loss_create, so a call allocates
 * nothing; a batch with more targets per image than planned is HY_ERR_INVALID_ARG.
 */
#ifndef HY_TRAIN_LOSS_H
#define HY_TRAIN_LOSS_H

#include "ops/train_op.h"

typedef struct hy__v8loss_params {
    int nc, reg_max;             /* classes, DFL bins (16) */
    int n_levels;
    int strides[4];              /* pixels per cell per level (8, 16, 32) */
    float box, cls, dfl;         /* gains: 7.5, 0.5, 1.5 */
    int topk;                    /* 10 */
    float alpha, beta;           /* 0.5, 6.0 */
} hy__v8loss_params;
hy__v8loss_params hy__v8loss_default_params(int nc);

typedef struct hy__v8loss_out {
    double box, cls, dfl;        /* each multiplied by its gain (Ultralytics loss_items) */
    double total;                /* (box + cls + dfl) * n */
    int n_fg;                    /* anchors assigned a target */
} hy__v8loss_out;

typedef struct hy__v8loss hy__v8loss;
/* Scratch for batches of up to n images of (h, w) (network input pixels) with at most
 * max_targets label rows per image. */
hy_status hy__v8loss_create(const hy__v8loss_params *p, int n, int h, int w, int max_targets, hy__v8loss **out);
void hy__v8loss_free(hy__v8loss *l);
/* p: (n_levels) head maps; targets: (n_targets, 6) rows as above, any image order; grad:
 * (n_levels) views of p's shape, overwritten with d total / d p (grad may be NULL: loss only).
 * tp may be NULL. */
hy_status hy__v8loss_compute(hy__v8loss *l, const hy__tview *p, const float *targets, int n_targets,
                             hy__v8loss_out *out, const hy__tview *grad, hy__threadpool *tp);
/* For gradient checks: loss and gradient of p with what autograd treats as constants taken
 * from the last successful hy__v8loss_compute (the assignment: foreground anchors, their gts
 * and target scores, the target score sum; CIoU's alpha per anchor); p must have that call's
 * shapes. The BCE term is evaluated in double here (the compute path copies PyTorch's float
 * rounding, which central differences cannot see through). Its central differences are the
 * gradient hy__v8loss_compute returns. */
hy_status hy__v8loss_compute_fixed(hy__v8loss *l, const hy__tview *p, hy__v8loss_out *out, const hy__tview *grad,
                                   hy__threadpool *tp);
/* The last call's assignment of image b: per anchor (level-major, then row-major) the index
 * of its gt among image b's target rows in batch order, -1 for background; *n_anchors gets
 * the count. NULL before any call or when b is out of range. */
const int *hy__v8loss_assigned(const hy__v8loss *l, int b, int *n_anchors);

#endif
