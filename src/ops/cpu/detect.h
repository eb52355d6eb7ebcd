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

#endif
