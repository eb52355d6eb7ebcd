/* ONNX ModelProto writer (field numbers from onnx/onnx.proto, IR version 8). */
#include "io/onnx_write.h"

#include "io/protobuf.h"

/* ModelProto / GraphProto / NodeProto / AttributeProto / TensorProto / ValueInfoProto fields */
enum {
    M_IR_VERSION = 1, M_PRODUCER_NAME = 2, M_PRODUCER_VERSION = 3, M_DOC = 6, M_GRAPH = 7,
    M_OPSET_IMPORT = 8, M_METADATA = 14,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    KV_KEY = 1, KV_VALUE = 2,
    G_NODE = 1, G_NAME = 2, G_INITIALIZER = 5, G_INPUT = 11, G_OUTPUT = 12,
    N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5,
    A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_INTS = 8, A_TYPE = 20,
    T_DIMS = 1, T_DATA_TYPE = 2, T_NAME = 8, T_RAW_DATA = 9,
    V_NAME = 1, V_TYPE = 2,
    TY_TENSOR = 1, TT_ELEM_TYPE = 1, TT_SHAPE = 2, SH_DIM = 1, DIM_VALUE = 1,
};

static void put_value(hy__pbw *w, int field, const hy__onnx_wvalue *v) {
    size_t m = hy__pbw_begin(w, (uint32_t)field);
    hy__pbw_str(w, V_NAME, v->name);
    size_t ty = hy__pbw_begin(w, V_TYPE);
    size_t tt = hy__pbw_begin(w, TY_TENSOR);
    hy__pbw_varint(w, TT_ELEM_TYPE, 1); /* FLOAT */
    size_t sh = hy__pbw_begin(w, TT_SHAPE);
    for (int d = 0; d < v->ndim; d++) {
        size_t dm = hy__pbw_begin(w, SH_DIM);
        hy__pbw_varint(w, DIM_VALUE, (uint64_t)v->dims[d]);
        hy__pbw_end(w, dm);
    }
    hy__pbw_end(w, sh);
    hy__pbw_end(w, tt);
    hy__pbw_end(w, ty);
    hy__pbw_end(w, m);
}

static void put_attr(hy__pbw *w, const hy__onnx_wattr *a) {
    size_t m = hy__pbw_begin(w, N_ATTRIBUTE);
    hy__pbw_str(w, A_NAME, a->name);
    switch (a->type) {
    case 1: hy__pbw_float(w, A_F, a->f); break;
    case 2: hy__pbw_varint(w, A_I, (uint64_t)a->i); break;
    case 3: hy__pbw_str(w, A_S, a->s); break;
    case 7: /* repeated int64, unpacked as onnx's own serialiser writes it */
        for (int k = 0; k < a->n_ints; k++) hy__pbw_varint(w, A_INTS, (uint64_t)a->ints[k]);
        break;
    default: break;
    }
    hy__pbw_varint(w, A_TYPE, (uint64_t)a->type);
    hy__pbw_end(w, m);
}

hy_status hy__onnx_write(const hy__onnx_wgraph *g, uint8_t **out, size_t *len) {
    hy__pbw w = {0};
    hy__pbw_varint(&w, M_IR_VERSION, (uint64_t)g->ir_version);
    hy__pbw_str(&w, M_PRODUCER_NAME, g->producer ? g->producer : "");
    hy__pbw_str(&w, M_PRODUCER_VERSION, g->producer_version ? g->producer_version : "");
    if (g->doc) hy__pbw_str(&w, M_DOC, g->doc);
    size_t gm = hy__pbw_begin(&w, M_GRAPH);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hy__onnx_wnode *n = &g->nodes[i];
        size_t nm = hy__pbw_begin(&w, G_NODE);
        for (int k = 0; k < n->n_inputs; k++) hy__pbw_str(&w, N_INPUT, n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++) hy__pbw_str(&w, N_OUTPUT, n->outputs[k]);
        if (n->name) hy__pbw_str(&w, N_NAME, n->name);
        hy__pbw_str(&w, N_OP_TYPE, n->op_type);
        for (int k = 0; k < n->n_attrs; k++) put_attr(&w, &n->attrs[k]);
        hy__pbw_end(&w, nm);
    }
    hy__pbw_str(&w, G_NAME, g->name ? g->name : "main_graph");
    for (size_t i = 0; i < g->n_inits; i++) {
        const hy__onnx_winit *t = &g->inits[i];
        size_t tm = hy__pbw_begin(&w, G_INITIALIZER);
        for (int d = 0; d < t->ndim; d++) hy__pbw_varint(&w, T_DIMS, (uint64_t)t->dims[d]);
        hy__pbw_varint(&w, T_DATA_TYPE, (uint64_t)t->dtype);
        hy__pbw_str(&w, T_NAME, t->name);
        hy__pbw_bytes(&w, T_RAW_DATA, t->data, t->nbytes);
        hy__pbw_end(&w, tm);
    }
    put_value(&w, G_INPUT, &g->input);
    put_value(&w, G_OUTPUT, &g->output);
    hy__pbw_end(&w, gm);
    size_t om = hy__pbw_begin(&w, M_OPSET_IMPORT);
    hy__pbw_str(&w, OPSET_DOMAIN, "");
    hy__pbw_varint(&w, OPSET_VERSION, (uint64_t)g->opset);
    hy__pbw_end(&w, om);
    for (size_t i = 0; i < g->n_meta; i++) {
        size_t km = hy__pbw_begin(&w, M_METADATA);
        hy__pbw_str(&w, KV_KEY, g->meta_keys[i]);
        hy__pbw_str(&w, KV_VALUE, g->meta_vals[i]);
        hy__pbw_end(&w, km);
    }
    if (w.st) {
        hy_status st = w.st;
        hy__pbw_free(&w);
        return st;
    }
    *out = w.buf;
    *len = w.len;
    return HY_OK;
}
