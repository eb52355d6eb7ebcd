/* Private to the ONNX reader: the load context the protobuf schema walk (onnx.c) fills and
 * the YOLOv8 recognition (onnx_yolov8.c) reads. */
#ifndef HY_IO_ONNX_IMPL_H
#define HY_IO_ONNX_IMPL_H

#include "core/arena.h"
#include "io/onnx.h"

/* Header of one initializer (TensorProto); the payload is decoded on demand from msg. */
typedef struct hy__onnx_trec {
    char *name;
    int dtype;
    int ndim;
    int64_t dims[HY_WT_MAX_DIMS];
    size_t numel;
    const uint8_t *msg; /* the TensorProto bytes */
    size_t msg_len;
    size_t offset;      /* of msg in the buffer */
    const uint8_t *raw;
    size_t raw_len;
    int has_raw;
    size_t n_float, n_int32, n_int64, n_double, n_uint64; /* typed values present */
    int used_as_weight; /* decoded for a Conv already */
} hy__onnx_trec;

/* (tensor name, node index) pair for producer / consumer lookups. */
typedef struct hy__onnx_nref {
    const char *name;
    size_t node;
} hy__onnx_nref;

typedef struct hy__onnx_ctx {
    const char *what;
    const uint8_t *buf;
    size_t len;
    hy__onnx_file *f;
    hy__arena tmp;                  /* scratch, freed at the end of the load */
    hy__onnx_trec *inits;
    size_t n_inits;
    hy__onnx_trec **by_name; /* inits sorted by name */
    hy__onnx_value_info *inputs, *outputs;
    size_t n_inputs, n_outputs;
    const uint8_t *graph;
    size_t graph_len;
    hy__onnx_nref *consumers, *producers;
    size_t n_consumers, n_producers;
} hy__onnx_ctx;

/* Out of memory, or past the arenas' cap (HY_ERR_FORMAT then); names the file. */
hy_status hy__onnx_nomem(const hy__onnx_ctx *c);
/* Error "<what>: <message>", control bytes of file-borne names replaced by '?'. */
hy_status hy__onnx_fail(const hy__onnx_ctx *c, hy_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "(d0, d1, ...)" into buf. */
const char *hy__onnx_shape_str(const int64_t *dims, int ndim, char *buf, size_t n);

/* Initializer by name (binary search), or NULL. */
hy__onnx_trec *hy__onnx_init_find(const hy__onnx_ctx *c, const char *name);
/* The file holds exactly t->numel values of a decodable type. Call before anything is
 * allocated for t, so the dims in the file cannot size an allocation on their own. */
hy_status hy__onnx_check_payload(const hy__onnx_ctx *c, const hy__onnx_trec *t);
/* Decodes all t->numel values of initializer t to float32 (dst holds numel floats). */
hy_status hy__onnx_decode_f32(const hy__onnx_ctx *c, const hy__onnx_trec *t, float *dst);

/* onnx_yolov8.c: is the parsed graph an Ultralytics YOLOv8 detection export? Checks nodes
 * and I/O, reads the metadata, and builds f->tensors (the fused float32 weights). */
hy_status hy__onnx_yolov8_recognise(hy__onnx_ctx *c);

#endif
