/* FFmpeg loaded at run time (ff.h says why). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "video/ff.h"

hy__ff_api hy__ff;

/* Sonames of the major versions the headers we build against describe. */
#define SONAME_avutil "libavutil.so." HY_FF_STR(LIBAVUTIL_VERSION_MAJOR)
#define SONAME_avcodec "libavcodec.so." HY_FF_STR(LIBAVCODEC_VERSION_MAJOR)
#define SONAME_avformat "libavformat.so." HY_FF_STR(LIBAVFORMAT_VERSION_MAJOR)
#define SONAME_swscale "libswscale.so." HY_FF_STR(LIBSWSCALE_VERSION_MAJOR)
#define SONAME_avdevice "libavdevice.so." HY_FF_STR(LIBAVDEVICE_VERSION_MAJOR)
#define HY_FF_STR2(x) #x
#define HY_FF_STR(x) HY_FF_STR2(x)

enum { LIB_avutil, LIB_avcodec, LIB_avformat, LIB_swscale, LIB_avdevice, N_LIBS };
static const char *const sonames[N_LIBS] = {SONAME_avutil, SONAME_avcodec, SONAME_avformat, SONAME_swscale,
                                            SONAME_avdevice};
/* Debian package that ships each soname, for the error message. */
static const char *const packages[N_LIBS] = {"libavutil57", "libavcodec59", "libavformat59", "libswscale6",
                                             "libavdevice59"};

static pthread_once_t once = PTHREAD_ONCE_INIT, once_dev = PTHREAD_ONCE_INIT;
static char load_error[512], dev_error[512];
static void *handles[N_LIBS];

/* FFmpeg's log lines (decoder complaints about a damaged frame, demuxer notices) go to the
 * hotyolo log, never to stderr. */
static void log_cb(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > AV_LOG_WARNING) return;
    char line[512];
    int print_prefix = 1;
    FF(av_log_format_line2)(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!n) return;
    hy__log(level <= AV_LOG_ERROR ? HY_LOG_WARN : HY_LOG_DEBUG, "ffmpeg: %s", line);
}

static int open_lib(int i, char *err, size_t n) {
    if (handles[i]) return 1;
    handles[i] = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (!handles[i]) {
        const char *e = dlerror();
        snprintf(err, n, "cannot load %s (Debian package %s): %s", sonames[i], packages[i], e ? e : "unknown error");
        return 0;
    }
    return 1;
}

static void load(void) {
    hy__ff_api a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < LIB_avdevice; i++)
        if (!open_lib(i, load_error, sizeof load_error)) return;
    const char *missing = NULL;
#define HY_FF_SYM(lib, name)                                                                       \
    if (!missing && !(*(void **)&a.name = dlsym(handles[LIB_##lib], #name))) missing = #name;
    HY_FF_SYMBOLS(HY_FF_SYM)
#undef HY_FF_SYM
    if (missing) {
        snprintf(load_error, sizeof load_error, "FFmpeg has no symbol %s (a different FFmpeg than hotyolo was built for?)",
                 missing);
        return;
    }
    hy__ff = a; /* the libraries stay open for the life of the process */
    FF(av_log_set_level)(AV_LOG_WARNING);
    FF(av_log_set_callback)(log_cb);
    FF(avformat_network_init)();
}

hy_status hy__ff_load(void) {
    pthread_once(&once, load);
    if (load_error[0]) return hy__error(HY_ERR_UNSUPPORTED, "video: %s", load_error);
    return HY_OK;
}

static void load_devices(void) {
    if (!open_lib(LIB_avdevice, dev_error, sizeof dev_error)) return;
    void *f = dlsym(handles[LIB_avdevice], "avdevice_register_all");
    if (!f) {
        snprintf(dev_error, sizeof dev_error, "%s has no symbol avdevice_register_all", sonames[LIB_avdevice]);
        return;
    }
    *(void **)&hy__ff.avdevice_register_all = f;
    FF(avdevice_register_all)();
}

hy_status hy__ff_load_devices(void) {
    hy_status st = hy__ff_load();
    if (st != HY_OK) return st;
    pthread_once(&once_dev, load_devices);
    if (dev_error[0]) return hy__error(HY_ERR_UNSUPPORTED, "cameras: %s", dev_error);
    return HY_OK;
}

const char *hy__ff_err(int errnum, char *buf, size_t n) {
    if (!hy__ff.av_strerror || FF(av_strerror)(errnum, buf, n) < 0) snprintf(buf, n, "FFmpeg error %d", errnum);
    return buf;
}
