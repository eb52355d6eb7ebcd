/* safetensors reader (src/io/safetensors.c): header JSON, tensor table, coverage rule, data
 * hash or block checksum (verify levels), metadata and the hy__wsource view. The reader maps a path: memfd. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    hy__st_file *f = NULL;
    /* the last byte picks the verify level: none, sha256, XXH3 (the cache's check) */
    static const int level[4] = {HY_ST_VERIFY_NONE, HY_ST_VERIFY_SHA256, HY_ST_VERIFY_XXH3, HY_ST_VERIFY_XXH3};
    if (hy__st_open(path, size ? level[data[size - 1] & 3] : 0, &f) != HY_OK) return 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < hy__st_count(f); i++) {
        const hy__wtensor *t = hy__st_tensor(f, i);
        if (!t || hy__st_find(f, t->name) == NULL) __builtin_trap();
        size_t nb = t->numel * hy_dtype_size(t->dtype);
        if (nb) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[nb - 1];
    }
    for (size_t i = 0; i < hy__st_meta_count(f); i++) {
        const char *k, *v;
        if (!hy__st_meta_at(f, i, &k, &v)) __builtin_trap();
        sink ^= (uint8_t)k[0] ^ (uint8_t)v[0];
    }
    hy__wsource src;
    if (hy__st_source(f, &src) == HY_OK)
        for (int i = 0; i < src.n_names; i++)
            if (src.names[i]) sink ^= (uint8_t)src.names[i][0];
    (void)sink;
    hy__st_close(f);
    return 0;
}
