/* A whole weights file through the loader's front door (src/io/wfile.c, as `hotyolo inspect`
 * and hy_model_load use it): format detection by content, then the .pt reader (zip + pickle +
 * storages, legacy torch.save too) and its hy__wsource view. The input goes through a memfd
 * because the loader takes a path. Seeds are .pt files, but the other formats are reachable. */
#include "fuzz_util.h"
#include "io/wfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    hy__wfile *f = NULL;
    if (hy__wfile_open(path, 0, &f) != HY_OK) return 0;
    const hy__wsource *src = hy__wfile_source(f);
    if (!src) __builtin_trap();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < src->n_tensors; i++) {
        const hy__wtensor *t = &src->tensors[i];
        if (!t->name) __builtin_trap();
        size_t nb = t->numel * hy_dtype_size(t->dtype);
        if (nb) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[nb - 1];
    }
    for (int i = 0; i < src->n_names; i++)
        if (src->names[i]) sink ^= (uint8_t)src->names[i][0];
    (void)sink;
    hy__wfile_close(f);
    return 0;
}
