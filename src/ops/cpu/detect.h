/* YOLOv8 Detect decode on CPU: DFL (softmax over reg_max bins, expectation), anchors at
 * cell centres, dist2bbox -> xywh in input pixels. Class rows are already sigmoid. */
#ifndef HY_CPU_DETECT_H
#define HY_CPU_DETECT_H

#include "core/core.h"
#include "ops/op.h"


/* out (4 + nc, A), A = sum h*w over levels, anchors in level order, row-major.
 * dfl: (reg_max) projection weights, or NULL for 0..reg_max-1. */
void hy__cpu_detect(const hy__detect_params *p, const hy__detect_level *lv, const float *dfl, float *out,
                    hy__threadpool *tp);
/* YOLOv5 Detect decode: same contract as hy__ref_detect_anchor (lv[l].box = level l's raw conv
 * output (na * (5 + nc), h, w); out (A, 5 + nc) row-major). tp may be NULL. */
void hy__cpu_detect_anchor(const hy__detect_anchor_params *p, const hy__detect_level *lv, float *out,
                           hy__threadpool *tp);

#endif
