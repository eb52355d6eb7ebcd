#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[16384];

const char *hy_version(void) { return HY_VERSION_STRING; }

const char *hy_status_str(hy_status st) {
    switch (st) {
#define X(name, code, text) \
    case HY_##name:         \
        return text;
        HY_STATUS_MAP(X)
#undef X
    }
    return "unknown status";
}

const char *hy_status_name(hy_status st) {
    switch (st) {
#define X(name, code, text) \
    case HY_##name:         \
        return "HY_" #name;
        HY_STATUS_MAP(X)
#undef X
    }
    return "HY_UNKNOWN";
}

const char *hy_last_error(void) { return last_error[0] ? last_error : "no error"; }

hy_status hy__error(hy_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

hy_status hy__error_prefix(hy_status st, const char *fmt, ...) {
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t pl = strlen(prefix), ol = strnlen(last_error, sizeof last_error - 1);
    if (pl + 2 + ol >= sizeof last_error) ol = sizeof last_error - pl - 3;
    memmove(last_error + pl + 2, last_error, ol);
    memcpy(last_error, prefix, pl);
    last_error[pl] = ':';
    last_error[pl + 1] = ' ';
    last_error[pl + 2 + ol] = 0;
    return st;
}

void hy__assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "hotyolo: %s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

const char *hy_dtype_name(hy_dtype t) {
    static const char *names[HY_DTYPE_COUNT] = {"float32", "float16", "bfloat16", "int64", "int32",
                                                "uint8",   "int8",    "float64",  "bool"};
    return (unsigned)t < HY_DTYPE_COUNT ? names[t] : "unknown";
}

size_t hy_dtype_size(hy_dtype t) {
    static const size_t sizes[HY_DTYPE_COUNT] = {4, 2, 2, 8, 4, 1, 1, 8, 1};
    return (unsigned)t < HY_DTYPE_COUNT ? sizes[t] : 0;
}
