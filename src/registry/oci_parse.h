/* The pure parsers of the OCI client (src/registry/oci.c) that read bytes from the network,
 * reachable without a connection: for fuzz/fuzz_oci.c. Each returns HY_OK when the input is
 * accepted, an error naming `url` otherwise; nothing else happens. */
#ifndef HY_REGISTRY_OCI_PARSE_H
#define HY_REGISTRY_OCI_PARSE_H

#include <stddef.h>

#include "core/core.h"

/* A manifest body: allow-listed media types, one config and one layer descriptor. */
hy_status hy__oci_check_manifest(const char *body, size_t n, const char *url);
/* A config blob: the scenario / metrics / tags taken from it, rebuilt (*out: hy__free). */
hy_status hy__oci_check_config(const char *body, size_t n, const char *url, char **out);
/* An oci:// address (NUL-terminated). */
hy_status hy__oci_check_url(const char *url);
/* A WWW-Authenticate Bearer challenge's realm / service / scope (NUL-terminated): 1 when the
 * realm was found. */
int hy__oci_check_challenge(const char *challenge);

#endif
