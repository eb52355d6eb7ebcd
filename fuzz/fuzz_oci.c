/* OCI client parsers (src/registry/oci.c via oci_parse.h): what `hotyolo registry pull` reads
 * from a registry before admitting anything — the manifest, the config blob, a Bearer
 * challenge — and the oci:// address a user or script passes. The first byte picks the parser;
 * the rest is the input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/oci_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t which = data[0] % 4;
    const char *body = (const char *)data + 1;
    const size_t n = size - 1;
    char *z = malloc(n + 1); /* NUL-terminated copy for the string parsers */
    if (!z) return 0;
    memcpy(z, body, n);
    z[n] = 0;
    char *out = NULL;
    switch (which) {
    case 0: (void)hy__oci_check_manifest(body, n, "oci://fuzz/m"); break;
    case 1:
        if (hy__oci_check_config(body, n, "oci://fuzz/c", &out) == HY_OK && !out) __builtin_trap();
        hy__free(out);
        break;
    case 2: (void)hy__oci_check_url(z); break;
    default: (void)hy__oci_check_challenge(z); break;
    }
    free(z);
    return 0;
}
