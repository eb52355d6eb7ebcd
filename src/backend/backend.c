#include "backend/backend_impl.h"

#include <string.h>

hy_status hy__backend_create(const char *name, const hy__backend_params *p, hy__backend **out) {
    if (!name || strcmp(name, "cpu") == 0) return hy__backend_cpu_create(p, out);
    return hy__error(HY_ERR_UNSUPPORTED, "backend '%s' is not available in this build (available: cpu)", name);
}

void hy__backend_free(hy__backend *be) {
    if (be) be->i->free(be);
}
