/* Training convs on the inference conv (hy__cpu_conv2d, ops_cpu.h): its Winograd F(4x4, 3x3)
 * path for 3x3 stride-1 pad-1 and its tuned GEMM paths otherwise, per image of the batch, the
 * weights packed once per call (they change every training step).
 *
 *   fwd        y = conv(x, W) + b, any groups-1 conv the inference conv takes (fwd_ok).
 *   bwd_data   stride 1, pad k / 2, odd k ("same" convs: 1x1, 3x3): dx is the same-padded conv
 *              of dy with W'[ci][co][ky][kx] = W[co][ci][k-1-ky][k-1-kx] (bwd_data_ok);
 *              acc 1 adds dx through the conv's `add` input into a per-thread temporary image,
 *              copied back (y may not overlap add).
 *
 * Same contracts as hy__train_ops.conv_fwd / conv_bwd_data (ops/train_op.h): views with
 * bs >= c h w, outputs never overlap inputs, no allocation, tp may be NULL. ws: 64-byte aligned,
 * hy__tconv_inf_ws bytes for the same (c, n, h, w, threads of tp). Deterministic: the same
 * input gives bit-identical output on every run (the pool's threads never change an image's
 * result; with more than one image per thread each image runs the 1-thread plan). */
#ifndef HY_OPS_CPU_TRAIN_CONV_INF_H
#define HY_OPS_CPU_TRAIN_CONV_INF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "ops/train_op.h"

/* Workspace of both functions for input (n, cin, h, w) on up to n_threads threads: packed
 * weights, the transposed W' (bwd_data), the conv scratch, per-thread temporary images. */
size_t hy__tconv_inf_ws(const hy__tconv *c, int n, int h, int w, int n_threads);

bool hy__tconv_inf_fwd_ok(const hy__tconv *c);
void hy__tconv_inf_fwd(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                       hy__threadpool *tp);

bool hy__tconv_inf_bwd_data_ok(const hy__tconv *c);
void hy__tconv_inf_bwd_data(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc, void *ws,
                            hy__threadpool *tp);

/* Where this path measured faster than hy__train_ops_cpu at batch 16 on 2 threads (yolov8n at
 * 320, test_train_conv_inf): 3x3 stride-1 pad-1 (Winograd: fwd and bwd_data 1.15-2.1x) and 3x3
 * stride-2 with cin <= 16 (the stem convs: 1.4-1.7x). 1x1 and the wider strided convs run the
 * same micro-kernels there (0.85-1.1x): no gain. */
bool hy__tconv_inf_preferred(const hy__tconv *c);

/* ---- tests, benches ------------------------------------------------------------------ */
/* How the batch is spread over the pool: AUTO (what the functions above do), IMAGES (one image
 * per work item, each on one thread with the 1-thread plan), SPLIT (image after image, each
 * split over all threads by the inference conv). */
enum { HY_TCONV_INF_AUTO, HY_TCONV_INF_IMAGES, HY_TCONV_INF_SPLIT };
/* As above with the micro-kernel ISA (hy__cpu_isa_available) and the schedule explicit. */
void hy__tconv_inf_fwd_ex(const hy__tconv *c, hy__tview x, const float *w, const float *b, hy__tview y, void *ws,
                          hy__threadpool *tp, int isa, int sched);
void hy__tconv_inf_bwd_data_ex(const hy__tconv *c, hy__tview dy, const float *w, hy__tview dx, int acc,
                               void *ws, hy__threadpool *tp, int isa, int sched);

#endif
