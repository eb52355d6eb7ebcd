/* Backend registry: the backends compiled in, found by name. */
#include "backend/backend_impl.h"

#include <stdio.h>
#include <string.h>

static const struct hy__backend_i *const registry[] = {
    &hy__backend_cpu,
    &hy__backend_ref,
};

const struct hy__backend_i *hy__backend_at(int i) {
    return i >= 0 && i < (int)HY_ARRAY_LEN(registry) ? registry[i] : NULL;
}

const struct hy__backend_i *hy__backend_find(const char *name) {
    if (!name || !name[0]) name = "cpu";
    char avail[128] = "";
    for (size_t i = 0; i < HY_ARRAY_LEN(registry); i++) {
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
        size_t n = strlen(avail);
        snprintf(avail + n, sizeof avail - n, "%s%s", n ? ", " : "", registry[i]->name);
    }
    hy__error(HY_ERR_UNSUPPORTED, "device '%.64s' is not available in this build (available: %s)", name, avail);
    return NULL;
}

void hy__backend_free(hy__backend *be) {
    if (be) be->i->free(be);
}
