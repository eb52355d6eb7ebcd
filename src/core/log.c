#include "core.h"

#include <stdio.h>

static hy_log_fn log_fn;
static void *log_user;

void hy_log_set(hy_log_fn fn, void *user_data) {
    log_fn = fn;
    log_user = user_data;
}

void hy__log(hy_log_level lvl, const char *fmt, ...) {
    if (!log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(lvl, buf, log_user);
}
