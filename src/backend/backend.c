/* Backend registry: the backends compiled in, found by name; device strings and the choice
 * of the backend that runs a model (fallback to cpu: hotyolo/device.h). */
#include "backend/backend_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct hy__backend_i *const registry[] = {
    &hy__backend_cpu,
    &hy__backend_ref,
#ifdef HY_CUDA
    &hy__backend_cuda,
#endif
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

int hy_cuda_built(void) {
#ifdef HY_CUDA
    return 1;
#else
    return 0;
#endif
}

/* ---- device strings ------------------------------------------------------------------ */
#define MAX_ORDINAL 63
#define DEVICE_FORMS "cpu, ref, cuda, cuda:N, N (a GPU number) or auto"

/* A device string as shown in an error: printable ASCII, '?' for the rest, cut to n - 1. */
static void shown_copy(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = 0;
}

/* Decimal 0..MAX_ORDINAL, digits only ("01" and "+1" refused: one spelling per GPU). */
static int parse_ordinal(const char *s) {
    if (!s[0] || (s[0] == '0' && s[1]) || strlen(s) > 2) return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= MAX_ORDINAL ? v : -1;
}

hy_status hy__device_parse(const char *s, hy__device_req *out) {
    memset(out, 0, sizeof *out);
    if (!s || !s[0]) s = "cpu";
    size_t n = strlen(s);
    int ord;
    if (n < 16 && (strcasecmp(s, "cpu") == 0 || strcasecmp(s, "ref") == 0 || strcasecmp(s, "auto") == 0)) {
        for (size_t i = 0; i <= n; i++) out->kind[i] = (char)tolower((unsigned char)s[i]);
        snprintf(out->name, sizeof out->name, "%s", out->kind);
        return HY_OK;
    }
    if (strcasecmp(s, "cuda") == 0) {
        ord = 0;
    } else if (n > 5 && n < 16 && strncasecmp(s, "cuda:", 5) == 0) {
        ord = parse_ordinal(s + 5);
    } else if (n <= 2 && isdigit((unsigned char)s[0])) {
        ord = parse_ordinal(s);
    } else {
        ord = -2; /* no device form */
    }
    if (ord < 0) { /* every message names the accepted forms */
        char shown[48];
        shown_copy(s, shown, sizeof shown);
        const char *num = ord == -1 && n > 2 ? s + 5 : s;
        if (strchr(s, ','))
            return hy__error(HY_ERR_INVALID_ARG, "device '%s': one device per model (expected %s)", shown,
                             DEVICE_FORMS);
        if (ord == -1 && num[0] == '0' && isdigit((unsigned char)num[1]))
            return hy__error(HY_ERR_INVALID_ARG, "device '%s': a GPU number has no leading zeros (expected %s)", shown,
                             DEVICE_FORMS);
        if (ord == -1)
            return hy__error(HY_ERR_INVALID_ARG, "device '%s': the GPU number must be 0 to %d (expected %s)", shown,
                             MAX_ORDINAL, DEVICE_FORMS);
        return hy__error(HY_ERR_INVALID_ARG, "device '%s': expected %s", shown, DEVICE_FORMS);
    }
    snprintf(out->kind, sizeof out->kind, "cuda");
    out->ordinal = ord;
    snprintf(out->name, sizeof out->name, "cuda:%d", ord);
    return HY_OK;
}

hy_status hy_device_check(const char *s, char normalised[16]) {
    hy__device_req r;
    hy_status st = hy__device_parse(s, &r);
    if (normalised) snprintf(normalised, 16, "%s", st ? "" : r.name);
    return st;
}

hy_status hy__device_fall_back(hy__device_choice *c, int no_fallback, const char *why) {
    int is_auto = strcmp(c->requested, "auto") == 0;
    if (no_fallback && !is_auto)
        return hy__error(HY_ERR_BACKEND, "device %s: %s (no fallback to cpu was asked for)", c->requested, why);
    c->bi = &hy__backend_cpu;
    c->ordinal = 0;
    snprintf(c->name, sizeof c->name, "cpu");
    snprintf(c->fallback, sizeof c->fallback, "%s", why);
    hy__log(is_auto ? HY_LOG_INFO : HY_LOG_WARN, "device %s: %s; running on cpu", c->requested, why);
    return HY_OK;
}

hy_status hy__device_choose(const char *device, int no_fallback, hy__device_choice *out) {
    memset(out, 0, sizeof *out);
    hy__device_req r;
    hy_status st = hy__device_parse(device, &r);
    if (st) return st;
    snprintf(out->requested, sizeof out->requested, "%s", r.name);
    if (strcmp(r.kind, "cpu") == 0 || strcmp(r.kind, "ref") == 0) {
        out->bi = hy__backend_find(r.kind);
        snprintf(out->name, sizeof out->name, "%s", r.kind);
        return out->bi ? HY_OK : HY_ERR_UNSUPPORTED;
    }
    const struct hy__backend_i *cuda = NULL;
    for (size_t i = 0; i < HY_ARRAY_LEN(registry); i++)
        if (strcmp(registry[i]->name, "cuda") == 0) cuda = registry[i];
    if (!cuda)
        return hy__device_fall_back(out, no_fallback,
                                    "this build has no CUDA backend (configured with HY_CUDA=OFF or without the CUDA "
                                    "toolkit)");
    if (cuda->probe && (st = cuda->probe(r.ordinal)) != HY_OK) {
        char why[300];
        snprintf(why, sizeof why, "%s", hy_last_error());
        return hy__device_fall_back(out, no_fallback, why);
    }
    out->bi = cuda;
    out->ordinal = r.ordinal;
    snprintf(out->name, sizeof out->name, "cuda:%d", r.ordinal);
    return HY_OK;
}

int hy_device_list(hy_device_info *out, int max) {
    if (!out) max = 0;
    int n = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(registry); i++) {
        if (!registry[i]->devices) continue;
        int room = HY_MAX(max - n, 0);
        n += registry[i]->devices(room ? out + n : NULL, room);
    }
    return n;
}
