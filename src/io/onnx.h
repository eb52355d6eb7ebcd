/* ONNX reader for Ultralytics YOLOv8 detection exports.
 *
 * hy__onnx_load() parses a ModelProto with the bounded protobuf reader (protobuf.h),
 * checks that the graph looks like a YOLOv8 detection export (input "images" [1,3,H,W],
 * one output [1,4+nc,A], only ops such an export uses, Conv weights named "model.<N>....")
 * and keeps:
 *   - the model header (ir_version, opset, producer, metadata_props),
 *   - the graph input/output shapes and every node (op, name, inputs, outputs, attributes),
 *   - the fused weights as float32, named as Ultralytics' fuse() leaves them in a
 *     state_dict: "<p>.conv.weight" (cout,cin,kh,kw) + "<p>.conv.bias" (cout) per Conv
 *     module, "model.22.cv2.0.2.weight"/".bias" for the plain Conv2d layers, and
 *     "model.22.dfl.conv.weight" (1,16,1,1).
 * Two exports are understood: the plain fp32/fp16 export (Conv nodes, weight and bias
 * initializers) and onnxruntime's dynamic quantization (ConvInteger nodes with uint8/int8
 * "<w>_quantized" weights, per-tensor or per-output-channel "<w>_scale" and
 * "<w>_zero_point"; dequantized here as (q - zp) * scale). Biases stay float32.
 *
 * Everything the struct points to is owned by it; the file or buffer is not retained.
 *
 *   hy__onnx_file *f;
 *   if (hy__onnx_load("yolov8n.onnx", &f) != HY_OK) return;   // hy_last_error() says why
 *   hy__wsource src;
 *   hy__onnx_source(f, &src);          // borrowed view, valid until hy__onnx_free(f)
 *   ...
 *   hy__onnx_free(f);
 */
#ifndef HY_IO_ONNX_H
#define HY_IO_ONNX_H

#include "core/arena.h"
#include "core/core.h"
#include "io/weights.h"

/* Bounds on what a file can make the reader allocate (errors name the file and the field).
 * Classes: the largest public detection vocabularies are LVIS (1203), Open Images V7 (601)
 * and Objects365 (365); Ultralytics' COCO models have 80. 4096 leaves 3x headroom and keeps
 * the names under 1 MiB (4096 x 256 bytes). Graph counts: a YOLOv8x export has ~400 nodes
 * and ~200 initializers, its onnxruntime-quantized form ~1000 nodes; 65536 is far above
 * that yet bounds the per-entry structs (~200 bytes each) to ~13 MB. */
#define HY_ONNX_MAX_CLASSES 4096      /* metadata 'names' entries */
#define HY_ONNX_MAX_NAME_BYTES 256    /* one class name, UTF-8 bytes after unescaping */
#define HY_ONNX_MAX_NODES 65536       /* graph nodes */
#define HY_ONNX_MAX_INITIALIZERS 65536
#define HY_ONNX_MAX_VALUE_INFOS 65536 /* graph inputs (IR < 4 lists initializers) / outputs */
#define HY_ONNX_MAX_NODE_IO 4096      /* inputs, outputs of one node */
#define HY_ONNX_MAX_NODE_ATTRS 64     /* attributes of one node */
#define HY_ONNX_MAX_METADATA 1024     /* metadata_props entries (Ultralytics writes ~12) */
/* What the parsed model may take in memory, each of the retained and the scratch arena:
 * 64 MiB + 8 bytes per file byte. A real export needs at most ~4 per byte (uint8 weights of
 * a quantized export become float32); the counts above alone would still let empty
 * attributes (2 file bytes, ~90 bytes parsed) reach ~400 MB. */
#define HY_ONNX_MEM_BASE ((size_t)64 << 20)
#define HY_ONNX_MEM_PER_BYTE 8

/* TensorProto.DataType values used here. */
enum {
    HY_ONNX_UNDEFINED = 0,
    HY_ONNX_FLOAT = 1,
    HY_ONNX_UINT8 = 2,
    HY_ONNX_INT8 = 3,
    HY_ONNX_UINT16 = 4,
    HY_ONNX_INT16 = 5,
    HY_ONNX_INT32 = 6,
    HY_ONNX_INT64 = 7,
    HY_ONNX_STRING = 8,
    HY_ONNX_BOOL = 9,
    HY_ONNX_FLOAT16 = 10,
    HY_ONNX_DOUBLE = 11,
    HY_ONNX_UINT32 = 12,
    HY_ONNX_UINT64 = 13,
    HY_ONNX_BFLOAT16 = 16,
};
/* "float32", "uint8", ... ("?" for codes not listed above). */
const char *hy__onnx_dtype_name(int onnx_dtype);

/* AttributeProto: the scalar and list kinds; tensors/graphs are recorded by type only. */
typedef struct hy__onnx_attr {
    char *name;
    int type;              /* AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR,
                              5 GRAPH, 6 FLOATS, 7 INTS, 8 STRINGS, ...; 0 when not given */
    float f;
    int64_t i;
    char *s;               /* bytes, NUL-terminated copy (s_len excludes the NUL) */
    size_t s_len;
    float *floats;
    size_t n_floats;
    int64_t *ints;
    size_t n_ints;
} hy__onnx_attr;

typedef struct hy__onnx_node {
    char *op_type;         /* "Conv" */
    char *name;            /* "/model.0/conv/Conv" or "" */
    char *domain;          /* "" for the default ONNX domain */
    char **inputs;         /* "" marks an omitted optional input */
    size_t n_inputs;
    char **outputs;
    size_t n_outputs;
    hy__onnx_attr *attrs;
    size_t n_attrs;
} hy__onnx_node;

/* A graph input/output (ValueInfoProto with a tensor type). */
typedef struct hy__onnx_value_info {
    char *name;
    int elem_type;                    /* TensorProto.DataType, 0 when not given */
    int ndim;                         /* -1 when the shape is not given */
    int64_t dims[HY_WT_MAX_DIMS];     /* -1 where symbolic or unknown */
    char *dim_params[HY_WT_MAX_DIMS]; /* symbolic name ("batch") or NULL */
} hy__onnx_value_info;

typedef struct hy__onnx_kv {
    char *key, *value;
} hy__onnx_kv;

typedef struct hy__onnx_op_count {
    char *op_type;
    size_t count;
} hy__onnx_op_count;

typedef struct hy__onnx_file {
    char *what;                       /* path or buffer name, for messages */
    /* model header */
    int64_t ir_version;
    int64_t opset;                    /* opset of the default domain ("" / "ai.onnx") */
    char *producer_name, *producer_version; /* "pytorch" "1.13.0"; "" when absent */
    char *graph_name;
    hy__onnx_kv *metadata;            /* metadata_props in file order */
    size_t n_metadata;
    /* graph */
    hy__onnx_value_info input;        /* "images" (1, 3, H, W) */
    hy__onnx_value_info output;       /* "output0" (1, 4 + nc, A) */
    hy__onnx_node *nodes;             /* in file (topological) order */
    size_t n_nodes;
    hy__onnx_op_count *ops;           /* op histogram, in order of first appearance */
    size_t n_ops;
    size_t n_initializers;
    int quantized;                    /* 1: ConvInteger export, weights dequantized at load */
    int dfl_synthesized;              /* 1: DFL weight absent from the file, set to arange(16) */
    /* fused float32 weights: per Conv node in graph order, weight then bias */
    hy__wtensor *tensors;
    size_t n_tensors;
    /* from metadata_props (0 / "" / NULL when absent) */
    int nc;                           /* number of class names (= output dim 1 - 4) */
    char **names;                     /* class names by id */
    int n_names;
    int imgsz_hw[2];                  /* "imgsz" [h, w], else the fixed input shape */
    int imgsz;                        /* max(imgsz_hw) */
    int stride;                       /* "stride" */
    char scale[8];                    /* "n", "s", ... from "description" ("YOLOv8n ...") */
    hy__arena arena;                  /* private: owns every pointer above */
} hy__onnx_file;

/* Loads path (mmapped for the duration of the call). Errors name the file and the field:
 *   HY_ERR_NOT_FOUND / HY_ERR_IO  missing / unreadable file
 *   HY_ERR_FORMAT                 not protobuf, truncated, malformed field, bad tensor size,
 *                                 unparsable metadata
 *   HY_ERR_UNSUPPORTED            valid ONNX but not a YOLOv8 detection export (names what
 *                                 was unexpected), external-data tensors, unknown dtypes
 *   HY_ERR_NOMEM */
hy_status hy__onnx_load(const char *path, hy__onnx_file **out);
/* Same, from memory; `what` names the buffer in errors. buf is not retained. */
hy_status hy__onnx_load_buffer(const uint8_t *buf, size_t len, const char *what,
                               hy__onnx_file **out);
void hy__onnx_free(hy__onnx_file *f); /* NULL is a no-op */

/* The weights view: format HY_WFORMAT_ONNX, fused = 1, float32 tensors, nc/names/imgsz/scale
 * hints. Every array is borrowed from f (do not modify or free; valid until
 * hy__onnx_free(f)). */
hy_status hy__onnx_source(const hy__onnx_file *f, hy__wsource *out);

/* metadata_props value for key, or NULL. */
const char *hy__onnx_meta(const hy__onnx_file *f, const char *key);
/* Fused tensor by name (linear search), or NULL. */
const hy__wtensor *hy__onnx_find(const hy__onnx_file *f, const char *name);
/* Attribute of a node by name, or NULL. */
const hy__onnx_attr *hy__onnx_node_attr(const hy__onnx_node *n, const char *name);

#endif
