/* hotyolo export: a weights file back to the formats Python tools read.
 *   HY_EXPORT_PT    torch.save zip: {'state_dict': OrderedDict, 'yaml', 'names', ...}
 *                   (docs/formats.md), unfused when the input is (BatchNorm kept), fused
 *                   when the input is; its pickle names only torch.load(weights_only=True)
 *                   globals.
 *   HY_EXPORT_ONNX  the fused inference graph as Ultralytics exports YOLOv8 detection
 *                   (opset 17, "images" (1,3,H,W) -> "output0" (1, 4 + nc, anchors)). */
#ifndef HOTYOLO_EXPORT_H
#define HOTYOLO_EXPORT_H

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hy_export_format { HY_EXPORT_PT, HY_EXPORT_ONNX, HY_EXPORT_FORMAT_COUNT } hy_export_format;
HY_API const char *hy_export_format_name(hy_export_format f); /* "pt", "onnx" */
/* "pt" / "onnx" -> *out; HY_ERR_INVALID_ARG naming the known ones otherwise. */
HY_API hy_status hy_export_format_parse(const char *s, hy_export_format *out);

typedef struct hy_export_params {
    hy_export_format format;
    int imgsz;       /* onnx: input side, multiple of 32; 0 = the file's imgsz, else 640 */
    int half;        /* pt: float tensors as float16 (else float32) */
    int overwrite;   /* replace an existing output (else HY_ERR_IO, nothing touched) */
    int verify;      /* safetensors input: re-hash its data first */
} hy_export_params;
HY_API hy_export_params hy_export_default_params(void);

/* Reads in_path (.pt, .safetensors, .onnx; detected by content) and writes out_path
 * through a temporary file, fsynced and renamed into place. */
HY_API hy_status hy_export(const char *in_path, const char *out_path, const hy_export_params *params);

#ifdef __cplusplus
}
#endif
#endif
