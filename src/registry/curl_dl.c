/* libcurl opened at run time (curl_dl.h says why). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "registry/curl_dl.h"

hy__curl_api hy__curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

/* Debian's default flavour (OpenSSL), then the GnuTLS one: the same ABI. */
static const char *const sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};

static void load(void) {
  void *h = NULL;
  const char *e = NULL;
  for (size_t i = 0; i < HY_ARRAY_LEN(sonames) && !h; i++) {
    h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (!h && !e)
      e = dlerror();
  }
  if (!h) {
    snprintf(load_error, sizeof load_error,
             "cannot load %s (Debian package libcurl4): %s", sonames[0],
             e ? e : "unknown error");
    return;
  }
  hy__curl_api a;
  const char *missing = NULL;
#define HY_CURL_SYM(field, name)                                               \
  if (!missing && !(*(void **)&a.field = dlsym(h, #name)))                     \
    missing = #name;
  HY_CURL_SYMBOLS(HY_CURL_SYM)
#undef HY_CURL_SYM
  if (missing) {
    snprintf(load_error, sizeof load_error,
             "libcurl has no symbol %s (too old?)", missing);
    dlclose(h);
    return;
  }
  if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(load_error, sizeof load_error, "curl_global_init failed");
    dlclose(h);
    return;
  }
  hy__curl = a; /* h stays open for the life of the process */
}

hy_status hy__curl_load(void) {
  pthread_once(&once, load);
  if (load_error[0])
    return hy__error(HY_ERR_UNSUPPORTED, "OCI registry: %s", load_error);
  return HY_OK;
}
