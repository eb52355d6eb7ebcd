/* libmicrohttpd, loaded at run time by the first hy_server_create.
 *
 * Debian's libmicrohttpd links GnuTLS and eight more libraries whose start-up (relocations,
 * constructors) cost ~1.5 ms in every process that links them: a one-shot `hotyolo detect`
 * would pay it without serving anything. Only the server needs the library, so it is opened
 * here and its functions reached through hy__mhd (server_impl.h maps the MHD_* names). */
#include <dlfcn.h>
#include <stdio.h>
#include <pthread.h>

#define HY_MHD_NO_MAP /* this file names the real symbols */
#include "server/server_impl.h"

hy__mhd_api hy__mhd;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

#define HY_MHD_SONAME "libmicrohttpd.so.12"

static void load(void) {
    void *h = dlopen(HY_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load %s (Debian package libmicrohttpd12): %s",
                 HY_MHD_SONAME, e ? e : "unknown error");
        return;
    }
    hy__mhd_api a;
    const char *missing = NULL;
#define HY_MHD_SYM(field, name)                                                                   \
    if (!missing && !(*(void **)&a.field = dlsym(h, #name))) missing = #name;
    HY_MHD_SYMBOLS(HY_MHD_SYM)
#undef HY_MHD_SYM
    if (missing) {
        snprintf(load_error, sizeof load_error, "%s has no symbol %s (too old?)", HY_MHD_SONAME, missing);
        dlclose(h);
        return;
    }
    hy__mhd = a; /* h stays open for the life of the process */
}

hy_status hy__mhd_load(void) {
    pthread_once(&once, load);
    if (load_error[0]) return hy__error(HY_ERR_UNSUPPORTED, "HTTP server: %s", load_error);
    return HY_OK;
}
