/* libcurl, loaded at run time by the first OCI push / pull (curl_dl.c).
 *
 * Debian's libcurl brings a TLS stack and a dozen libraries whose start-up
 * every process linking it would pay; only push / pull need it, so it is opened
 * with dlopen (as the server opens libmicrohttpd) and reached through hy__curl.
 * Only the functions oci.c uses. */
#ifndef HY_REGISTRY_CURL_DL_H
#define HY_REGISTRY_CURL_DL_H

#define CURL_DISABLE_TYPECHECK /* we call through pointers, not the checking   \
                                  macros */
#include <curl/curl.h>

#include "core/core.h"

#define HY_CURL_SYMBOLS(X)                                                     \
  X(global_init, curl_global_init)                                             \
  X(easy_init, curl_easy_init)                                                 \
  X(easy_setopt, curl_easy_setopt)                                             \
  X(easy_perform, curl_easy_perform)                                           \
  X(easy_getinfo, curl_easy_getinfo)                                           \
  X(easy_cleanup, curl_easy_cleanup)                                           \
  X(easy_reset, curl_easy_reset)                                               \
  X(easy_strerror, curl_easy_strerror)                                         \
  X(easy_escape, curl_easy_escape)                                             \
  X(free, curl_free)                                                           \
  X(slist_append, curl_slist_append)                                           \
  X(slist_free_all, curl_slist_free_all)

typedef struct hy__curl_api {
#define HY_CURL_FIELD(field, name) __typeof__(&name) field;
  HY_CURL_SYMBOLS(HY_CURL_FIELD)
#undef HY_CURL_FIELD
} hy__curl_api;
extern hy__curl_api hy__curl;

/* Opens the library once per process (and runs curl_global_init);
 * HY_ERR_UNSUPPORTED naming it when it is missing or too old. Thread-safe. */
hy_status hy__curl_load(void);

#endif
