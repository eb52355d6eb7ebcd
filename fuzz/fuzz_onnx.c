/* Protobuf wire reader + ONNX model reader (src/io/protobuf.c, src/io/onnx.c) on the raw
 * bytes, then the hy__wsource view the model loader takes. */
#include "io/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hy__onnx_file *f = NULL;
    if (hy__onnx_load_buffer(data, size, "fuzz.onnx", &f) != HY_OK) return 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const hy__onnx_node *n = &f->nodes[i];
        for (size_t j = 0; j < n->n_attrs; j++)
            if (hy__onnx_node_attr(n, n->attrs[j].name) == NULL) __builtin_trap();
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        const hy__wtensor *t = &f->tensors[i];
        size_t nb = t->numel * hy_dtype_size(t->dtype);
        if (nb) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[nb - 1];
    }
    hy__wsource src;
    (void)hy__onnx_source(f, &src);
    (void)sink;
    hy__onnx_free(f);
    return 0;
}
