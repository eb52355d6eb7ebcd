/* A loaded weights file of any format, viewed as a flat list of named tensors plus the
 * architecture hints the file carries. Every reader (pt, safetensors, onnx) can present
 * itself as a hy__wsource; the model loads from a hy__wsource only.
 *
 * Naming: tensors use PyTorch state_dict() names. An unfused source (.pt, unfused
 * safetensors) has Conv = "<p>.conv.weight" + "<p>.bn.{weight,bias,running_mean,
 * running_var,num_batches_tracked}". A fused source (ONNX export, fused safetensors) has
 * BN folded: "<p>.conv.weight" + "<p>.conv.bias", as Ultralytics' fuse() leaves them.
 * Plain Conv2d layers ("model.22.cv2.0.2") are "<p>.weight" + "<p>.bias" in both. */
#ifndef HY_IO_WEIGHTS_H
#define HY_IO_WEIGHTS_H

#include "core/core.h"

#define HY_WT_MAX_DIMS 8

typedef struct hy__wtensor {
    const char *name;
    hy_dtype dtype;
    int ndim;                          /* 0 = scalar */
    int64_t shape[HY_WT_MAX_DIMS];
    size_t numel;
    const void *data;                  /* numel * hy_dtype_size(dtype) bytes, C order, LE */
} hy__wtensor;

typedef enum hy__wformat {
    HY_WFORMAT_UNKNOWN,
    HY_WFORMAT_PT,          /* torch.save zip */
    HY_WFORMAT_PT_LEGACY,   /* torch.save before 1.6 (not zip) */
    HY_WFORMAT_SAFETENSORS,
    HY_WFORMAT_ONNX,
    HY_WFORMAT_COUNT
} hy__wformat;
const char *hy__wformat_name(hy__wformat f); /* "pt", "pt-legacy", "safetensors", "onnx" */

typedef struct hy__wsource {
    hy__wformat format;
    hy__wtensor *tensors;
    size_t n_tensors;
    int fused;                         /* BN folded into conv weight + bias */
    /* The architecture the file records ("yolov8"), NULL when it does not say. Readers only
     * report it; whether it is supported is the model layer's decision. */
    const char *arch;
    /* architecture hints; 0 / "" / NULL when the file does not say */
    int nc;
    char scale[8];                     /* "n", "s", "m", "l", "x" */
    double depth_multiple, width_multiple;
    int max_channels;
    int imgsz;
    char **names;                      /* class names by id */
    int n_names;
    /* Fused files may also carry every conv's weights pre-packed for a backend, as
     * tensors "hotyolo.packed.<conv prefix>" (U8) in this layout (NULL when none). */
    const char *packed_layout;
} hy__wsource;

/* Tensor names under this prefix are hotyolo's own (packed weights), not model tensors. */
#define HY_WS_RESERVED_PREFIX "hotyolo."

/* Detects the format from the first bytes (never from the extension). */
hy__wformat hy__wformat_detect(const uint8_t *buf, size_t len);

#endif
