/* Pickle VM (src/io/pickle.c): hy__pkl_load on the raw bytes, then the lookups the .pt reader
 * makes on the result. The arena owns everything, so one free releases it all. */
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hy__pkl_arena *a = NULL;
    if (hy__pkl_arena_create(&a) != HY_OK) return 0;
    hy__pkl_value *root = NULL;
    size_t used = 0;
    if (hy__pkl_load(a, data, size, "fuzz.pkl", &used, &root) == HY_OK) {
        if (used > size) __builtin_trap(); /* consumed past the end */
        (void)hy__pkl_dict_get(root, "model");
        (void)hy__pkl_dict_get(root, "state_dict");
        (void)hy__pkl_dict_get_int(root, 0);
        for (size_t i = 0; i < hy__pkl_storage_count(a); i++) {
            hy__pkl_value *v = hy__pkl_storage_at(a, i);
            if (!v || v->kind != HY_PKL_STORAGE) __builtin_trap();
            if (hy__pkl_storage_find(a, v->u.storage->key) == NULL) __builtin_trap();
        }
    }
    hy__pkl_arena_free(a);
    return 0;
}
