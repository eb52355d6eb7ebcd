/* Reference kernels (plain C, one image, no threads): the spec. The `ref` backend runs them,
 * and every fast kernel and backend is tested against them (tests/test_backend_ops.c). */
#ifndef HY_OPS_REF_H
#define HY_OPS_REF_H

#include "core/core.h"
#include "ops/op.h"

/* x (cin, h, w), wt (cout, cin / groups, kh, kw), bias (cout) or NULL, add (cout, oh, ow) or
 * NULL is added AFTER the activation (Bottleneck shortcut), y (cout, oh, ow). */
void hy__ref_conv2d(const hy__conv2d_desc *d, const float *x, int h, int w, const float *wt,
                    const float *bias, const float *add, float *y);
/* k x k max pool, stride 1, pad k/2 (SPPF), -inf padding. x, y (c, h, w). */
void hy__ref_maxpool(const float *x, int c, int h, int w, int k, float *y);
/* nearest upsample x2: x (c, h, w) -> y (c, 2h, 2w) */
void hy__ref_upsample2x(const float *x, int c, int h, int w, float *y);
/* YOLOv8 Detect decode for one image: out (4 + nc, A), A = sum h*w over levels in level
 * order; rows 0-3 xywh in input pixels (DFL expectation, anchors at cell centres), then the
 * class rows copied (already sigmoid). dfl: (reg_max) projection, or NULL for 0..reg_max-1. */
void hy__ref_detect(const hy__detect_params *p, const hy__detect_level *lv, const float *dfl, float *out);
/* YOLOv5 Detect decode for one image, the formula of hy__detect_anchor_params: lv[l].box is
 * level l's raw conv output (na * (5 + nc), h, w) (cls unused); out (A, 5 + nc) row-major,
 * rows level, anchor, y, x. Sigmoid 1 / (1 + expf(-v)). */
void hy__ref_detect_anchor(const hy__detect_anchor_params *p, const hy__detect_level *lv, float *out);

#endif
