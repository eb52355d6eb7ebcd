/* A weights file all the way into a model (src/model/load.c via the public hy_model_load):
 * format detection, the reader, name/shape validation against the YOLOv8 spec, class count
 * and names, BN folding and kernel preparation, at imgsz 32 on one thread. The fuzzer starts
 * from real checkpoints, so it mutates files that get past the readers. Input via a memfd. */
#include "fuzz_util.h"
#include "hotyolo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    hy_model_params p = hy_model_default_params();
    p.imgsz = 32;
    p.n_threads = 1;
    hy_model *m = NULL;
    if (hy_model_load(path, &p, &m) != HY_OK) return 0;
    int nc = hy_model_num_classes(m);
    if (nc < 1) __builtin_trap();
    volatile char sink = 0;
    for (int i = 0; i < nc; i++) {
        const char *name = hy_model_class_name(m, i);
        if (name) sink ^= name[0];
    }
    if (hy_model_class_name(m, nc) != NULL) __builtin_trap();
    (void)sink;
    hy_model_free(m);
    return 0;
}
