/* PyTorch .pt reader: zip container + safe pickle interpreter (never executes code).
 *
 * hy__pt_load() returns every tensor of a checkpoint under its state_dict() name, plus the
 * Ultralytics model config when present. Tensor data is a contiguous, owned copy in the
 * file's dtype (views/strides/offsets resolved; shared storages handled).
 *
 * Untrusted input: data.pkl is the one under the folder of the archive's first entry (as
 * PyTorch reads it); of a deflated storage only the bytes up to the last element a tensor
 * references are inflated, and the bytes inflated and the bytes materialised are each
 * bounded by 64 MiB + 16x the file size. */
#ifndef HY_IO_PT_H
#define HY_IO_PT_H

#include "core/core.h"
#include "io/pickle.h"

#define HY_PT_MAX_DIMS 8

typedef struct hy__pt_tensor {
    char *name;                     /* "model.0.conv.weight" */
    hy_dtype dtype;                 /* F32, F16, BF16, I64 (+ others torch has: F64, I32, U8, I8, BOOL) */
    int ndim;                       /* 0 for scalars */
    int64_t shape[HY_PT_MAX_DIMS];
    size_t numel;
    void *data;                     /* numel * hy_dtype_size(dtype) bytes, C-contiguous */
} hy__pt_tensor;

typedef struct hy__pt_file {
    hy__pt_tensor *tensors;         /* in state_dict() order */
    size_t n_tensors;
    /* Where the weights came from: "ema", "model" (Ultralytics checkpoint), "state_dict"
     * (a plain dict of tensors), or "module" (a pickled nn.Module at top level). */
    const char *source;
    /* Ultralytics config (model.yaml); has_yaml = 0 when absent. */
    int has_yaml;
    int nc;                         /* -1 when unknown */
    double depth_multiple, width_multiple; /* 0 when unknown */
    char scale[8];                  /* "n", "s", ... or "" */
    char yaml_file[256];            /* e.g. "yolov8n.yaml", or "" */
    char **names;                   /* class names by id (from model.names), or NULL */
    int n_names;
    /* Added: scales[scale][2] of the yaml (1024 for yolov8n/s), 0 when unknown. */
    int max_channels;
    /* Added: 1 when the file is the legacy (pre-1.6, non-zip) torch.save format. */
    int legacy_format;
    /* Added (private): tensors sorted by name for hy__pt_find's binary search. */
    const struct hy__pt_tensor **by_name;
    /* The whole top-level pickled object, for inspection (train_args, date, version...).
     * Owned by this struct. */
    hy__pkl_value *root;
    hy__pkl_arena *arena;
} hy__pt_file;

/* Loads path. Errors name the file and the problem:
 *   HY_ERR_NOT_FOUND / HY_ERR_IO  missing / unreadable file
 *   HY_ERR_FORMAT                 empty, truncated, not a zip, no data.pkl, bad pickle...
 *   HY_ERR_UNSAFE                 the pickle names a global outside the allow-list of
 *                                 checkpoint globals, or misuses one (names it; io/pickle.h)
 *   HY_ERR_UNSUPPORTED            e.g. an unsupported storage dtype */
hy_status hy__pt_load(const char *path, hy__pt_file **out);
/* Same, from a memory buffer; `what` names it in errors. The buffer is not retained. */
hy_status hy__pt_load_buffer(const uint8_t *buf, size_t len, const char *what, hy__pt_file **out);
void hy__pt_free(hy__pt_file *f);

/* Tensor by exact name (O(log n)); NULL when absent. With duplicate names the first wins. */
const hy__pt_tensor *hy__pt_find(const hy__pt_file *f, const char *name);
/* Converts any float/int dtype to float32; dst holds t->numel floats. */
hy_status hy__pt_tensor_to_f32(const hy__pt_tensor *t, float *dst);

#endif
