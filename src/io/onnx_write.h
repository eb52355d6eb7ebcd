/* ONNX writer: serialises a graph description (nodes, initializers, one input, one output,
 * metadata) into a ModelProto with the protobuf encoder (io/protobuf.h). The caller (the
 * model layer's exporter) decides what the graph is; this file only knows the wire format.
 * Every pointer in the description is borrowed for the duration of hy__onnx_write. */
#ifndef HY_IO_ONNX_WRITE_H
#define HY_IO_ONNX_WRITE_H

#include "core/core.h"

#define HY_ONNX_W_MAX_IO 8
#define HY_ONNX_W_MAX_ATTRS 6
#define HY_ONNX_W_MAX_DIMS 4

typedef struct hy__onnx_wattr {
    const char *name;
    int type;              /* AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING, 7 INTS */
    float f;
    int64_t i;
    const char *s;
    int64_t ints[8];
    int n_ints;
} hy__onnx_wattr;

typedef struct hy__onnx_wnode {
    const char *op_type, *name;
    const char *inputs[HY_ONNX_W_MAX_IO];   /* "" = an omitted optional input */
    int n_inputs;
    const char *outputs[HY_ONNX_W_MAX_IO];
    int n_outputs;
    hy__onnx_wattr attrs[HY_ONNX_W_MAX_ATTRS];
    int n_attrs;
} hy__onnx_wnode;

typedef struct hy__onnx_winit {
    const char *name;
    int dtype;             /* TensorProto.DataType (onnx.h: HY_ONNX_FLOAT, HY_ONNX_INT64) */
    int ndim;
    int64_t dims[HY_ONNX_W_MAX_DIMS];
    const void *data;      /* raw_data: little-endian, C order */
    size_t nbytes;
} hy__onnx_winit;

typedef struct hy__onnx_wvalue {    /* a float32 graph input / output of fixed shape */
    const char *name;
    int ndim;
    int64_t dims[HY_ONNX_W_MAX_DIMS];
} hy__onnx_wvalue;

typedef struct hy__onnx_wgraph {
    const char *name, *producer, *producer_version, *doc;
    int64_t ir_version, opset;
    const hy__onnx_wnode *nodes;
    size_t n_nodes;
    const hy__onnx_winit *inits;
    size_t n_inits;
    hy__onnx_wvalue input, output;
    const char *const *meta_keys, *const *meta_vals;  /* metadata_props */
    size_t n_meta;
} hy__onnx_wgraph;

/* The ModelProto bytes in *out (hy__free), *len bytes. HY_ERR_NOMEM. */
hy_status hy__onnx_write(const hy__onnx_wgraph *g, uint8_t **out, size_t *len);

#endif
