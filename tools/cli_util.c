/* hotyolo CLI: option parsing and output helpers shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "hotyolo/device.h"
#include "hotyolo/registry.h"

// --- options ---------------------------------------------------------------------------

int hy_cli_next_opt(const char *cmd, const hy_cli_opt *table, size_t n, int argc, char **argv,
                    int *i, int *positional_only, const char **val) {
    const char *a = argv[*i];
    *val = NULL;
    if (*positional_only || a[0] != '-' || a[1] == '\0') return -2; /* "-" is a path (stdin) */
    if (!strcmp(a, "--")) {
        *positional_only = 1;
        return -3;
    }
    /* "--name=value", "--name [value]" or "-x" */
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
    int k = -1;
    for (size_t t = 0; t < n; t++) {
        const char *nm = table[t].name;
        if ((strlen(nm) == name_len && !strncmp(a, nm, name_len)) ||
            (table[t].short_name && !strcmp(a, table[t].short_name))) {
            k = (int)t;
            break;
        }
    }
    if (k < 0) {
        hy_cli_error(cmd, "unknown option '%.*s' (see 'hotyolo %s --help')", (int)name_len, a, cmd);
        return -1;
    }
    if (table[k].has_value) {
        if (eq) {
            *val = eq + 1;
        } else if (*i + 1 < argc) {
            *val = argv[++*i];
        } else {
            hy_cli_error(cmd, "option %s needs a value (see 'hotyolo %s --help')", table[k].name,
                         cmd);
            return -1;
        }
    } else if (eq) {
        hy_cli_error(cmd, "option %s takes no value", table[k].name);
        return -1;
    }
    return k;
}

int hy_cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE) {
        hy_cli_error(cmd, "%s: '%s' is not an integer", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        hy_cli_error(cmd, "%s: %s is out of range (expected an integer in [%ld, %ld])", opt, s, lo,
                     hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static char *dup_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

int hy_cli_maps_add(const char *cmd, hy_cli_maps *m, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        hy_cli_error(cmd, "--map: '%s' is not OLD=NEW with a non-empty OLD prefix", arg);
        return -1;
    }
    char **from = realloc(m->from, (size_t)(m->n + 1) * sizeof *from);
    if (from) m->from = from;
    char **to = from ? realloc(m->to, (size_t)(m->n + 1) * sizeof *to) : NULL;
    if (to) m->to = to;
    char *f = to ? dup_n(arg, (size_t)(eq - arg)) : NULL;
    char *t = f ? dup_n(eq + 1, strlen(eq + 1)) : NULL;
    if (!t) {
        free(f);
        hy_cli_error(cmd, "out of memory");
        return -1;
    }
    m->from[m->n] = f;
    m->to[m->n] = t;
    m->n++;
    return 0;
}

void hy_cli_maps_free(hy_cli_maps *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->from[i]);
        free(m->to[i]);
    }
    free(m->from);
    free(m->to);
    m->from = m->to = NULL;
    m->n = 0;
}

void hy_cli_maps_apply(const hy_cli_maps *m, hy_model_params *p) {
    p->map_from = (const char *const *)m->from;
    p->map_to = (const char *const *)m->to;
    p->n_map = m->n;
}

// --- output ----------------------------------------------------------------------------

void hy_cli_put_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

const char *hy_cli_thousands(long long v, char *buf, size_t cap) {
    char digits[32];
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    int nd = snprintf(digits, sizeof digits, "%llu", u);
    size_t k = 0;
    if (v < 0 && k + 1 < cap) buf[k++] = '-';
    for (int d = 0; d < nd && k + 1 < cap; d++) {
        if (d > 0 && (nd - d) % 3 == 0 && k + 2 < cap) buf[k++] = ',';
        buf[k++] = digits[d];
    }
    buf[k] = '\0';
    return buf;
}

const char *hy_cli_size(double bytes, char *buf, size_t cap) {
    if (bytes < 1e3)
        snprintf(buf, cap, "%.0f B", bytes);
    else if (bytes < 1e6)
        snprintf(buf, cap, "%.1f kB", bytes / 1e3);
    else if (bytes < 1e9)
        snprintf(buf, cap, "%.1f MB", bytes / 1e6);
    else
        snprintf(buf, cap, "%.1f GB", bytes / 1e9);
    return buf;
}

void hy_cli_print_load_report(FILE *f, const char *model_path, const hy_model *m) {
    size_t nt = hy_model_load_count(m, HY_LOAD_TRANSFERRED);
    size_t ni = hy_model_load_count(m, HY_LOAD_INITIALIZED);
    size_t ng = hy_model_load_count(m, HY_LOAD_IGNORED);
    fprintf(f, "transferred %zu/%zu tensors from ", nt, hy_model_num_tensors(m));
    hy_cli_put_escaped(f, model_path);
    fprintf(f, " (%zu initialised, %zu ignored)\n", ni, ng);
    static const struct {
        hy_load_item what;
        const char *label;
    } groups[] = {{HY_LOAD_INITIALIZED, "initialised"}, {HY_LOAD_IGNORED, "ignored"}};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        size_t n = hy_model_load_count(m, groups[g].what);
        for (size_t i = 0; i < n; i++) {
            const char *name = hy_model_load_name(m, groups[g].what, i);
            const char *why = hy_model_load_reason(m, groups[g].what, i);
            fprintf(f, "  %-11s ", groups[g].label);
            hy_cli_put_escaped(f, name ? name : "?");
            if (why && *why) {
                fputs(": ", f);
                hy_cli_put_escaped(f, why);
            }
            fputc('\n', f);
        }
    }
}

// --- hy_inspect as json-c ----------------------------------------------------------------

struct json_object *hy_cli_inspect_load(const char *cmd, const char *path, int with_tensors,
                                        char **raw_out) {
    char *raw = NULL;
    if (hy_inspect(path, with_tensors, &raw) != HY_OK) {
        const char *e = hy_last_error();
        if (strstr(e, path))
            hy_cli_error(cmd, "%s", e);
        else
            hy_cli_error(cmd, "'%s': %s", path, e);
        return NULL;
    }
    json_object *o = json_tokener_parse(raw);
    if (!o || !json_object_is_type(o, json_type_object)) {
        hy_cli_error(cmd, "'%s': the library's description is not a JSON object", path);
        json_object_put(o);
        hy_free(raw);
        return NULL;
    }
    if (raw_out)
        *raw_out = raw;
    else
        hy_free(raw);
    return o;
}

json_object *hy_cli_json_get(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *hy_cli_dtype_short(const char *n) {
    static const char *map[][2] = {
        {"float32", "f32"}, {"float16", "f16"}, {"bfloat16", "bf16"}, {"float64", "f64"},
        {"int64", "i64"},   {"int32", "i32"},   {"int8", "i8"},       {"uint8", "u8"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(n, map[i][0])) return map[i][1];
    return n;
}

int hy_cli_parse_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) {
        hy_cli_error(cmd, "%s: '%s' is not a number", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        hy_cli_error(cmd, "%s: %s is out of range (expected a number in [%g, %g])", opt, s, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int hy_cli_parse_device(const char *cmd, const char *opt, const char *s, const char **out) {
    /* "" would mean cpu to the library; on the command line it is a mistake (--device "$X"). */
    if (!*s) {
        hy_cli_error(cmd, "%s: empty device name (expected %s)", opt, HY_CLI_DEVICE_FORMS);
        return -1;
    }
    if (hy_device_check(s, NULL) != HY_OK) {
        /* the library's text ("device 'gpu': expected cpu, ...") names the forms */
        const char *e = hy_last_error();
        if (strncmp(e, "device '", 8) == 0)
            hy_cli_error(cmd, "%s %s", opt, e + 7); /* "--device 'gpu': ..." */
        else
            hy_cli_error(cmd, "%s: %s", opt, e);
        return -1;
    }
    *out = s;
    return 0;
}

const char *hy_cli_device_desc(const hy_model *m, char *buf, size_t cap) {
    const char *dev = hy_model_device(m), *req = hy_model_device_requested(m);
    if (req && req[0] && strcmp(req, dev) != 0)
        snprintf(buf, cap, "%s (%s requested: %s)", dev, req, hy_model_device_fallback(m)[0] ? "fallback" : "chosen");
    else
        snprintf(buf, cap, "%s", dev);
    return buf;
}

void hy_cli_warn_device(const char *cmd, const char *requested, const char *device, const char *why, int quiet) {
    /* auto choosing cpu is what auto is for: not warned (the library's info log, -v, says it) */
    if (quiet || !why || !why[0] || !requested || strcmp(requested, "auto") == 0) return;
    fprintf(stderr, "hotyolo %s: warning: device %s: ", cmd, requested);
    hy_cli_put_escaped(stderr, why);
    fprintf(stderr, "; running on %s\n", device);
    fflush(stderr);
}

void hy_cli_warn_fallback(const char *cmd, const hy_model *m, int quiet) {
    hy_cli_warn_device(cmd, hy_model_device_requested(m), hy_model_device(m), hy_model_device_fallback(m), quiet);
}

int hy_cli_make_dirs(const char *cmd, const char *opt, const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        hy_cli_error(cmd, "%s %s: %s", opt, dir, strerror(ENAMETOOLONG));
        return -1;
    }
    /* Each failure names the option, the path given, the errno text and the part at fault:
     * "--save-dir a/f/x: Not a directory ('a/f' exists and is not a directory)". */
    for (char *s = p + 1;; s++) {
        const int end = *s == '\0';
        if (*s != '/' && !end) continue;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            const int e = errno;
            if (e == ENOTDIR) /* a parent is a file (only reached past a symlink) */
                hy_cli_error(cmd, "%s %s: %s (a parent of '%s' is not a directory)", opt, dir,
                             strerror(e), p);
            else
                hy_cli_error(cmd, "%s %s: %s (cannot create directory '%s')", opt, dir,
                             strerror(e), p);
            return -1;
        }
        if (stat(p, &sb) != 0) {
            hy_cli_error(cmd, "%s %s: %s (cannot use '%s')", opt, dir, strerror(errno), p);
            return -1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            hy_cli_error(cmd, "%s %s: %s ('%s' exists and is not a directory)", opt, dir,
                         strerror(ENOTDIR), p);
            return -1;
        }
        if (end) break;
        *s = '/';
    }
    /* Writable? (Files are written later, one per image: say it now, once.) */
    if (access(p, W_OK | X_OK) != 0) {
        hy_cli_error(cmd, "%s %s: %s (cannot write into it)", opt, dir, strerror(errno));
        return -1;
    }
    return 0;
}

int hy_cli_read_file(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (size_t got; b && (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *nb = cap > ((size_t)1 << 30) ? NULL : realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            } else {
                b = nb;
            }
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

int hy_cli_check_out(const char *cmd, const char *in, const char *out, int force) {
    struct stat si, so;
    if (stat(in, &si) != 0) {
        hy_cli_error(cmd, "cannot read '%s': %s", in, strerror(errno));
        return HY_CLI_RUNTIME;
    }
    if (stat(out, &so) != 0) return HY_CLI_OK;
    if (so.st_dev == si.st_dev && so.st_ino == si.st_ino) {
        hy_cli_error(cmd, "OUT '%s' is the input file itself; refusing to overwrite it", out);
        return HY_CLI_USAGE;
    }
    if (S_ISDIR(so.st_mode)) {
        hy_cli_error(cmd, "OUT '%s' is a directory", out);
        return HY_CLI_RUNTIME;
    }
    if (!force) {
        hy_cli_error(cmd, "OUT '%s' already exists; not replacing it (use --force to replace it)", out);
        return HY_CLI_RUNTIME;
    }
    return HY_CLI_OK;
}

// --- registry references -----------------------------------------------------------------

int hy_cli_model_path(const char *cmd, const char *arg, const char *registry_dir, char **path) {
    static const char prefix[] = "registry:";
    const int is_ref = !strncmp(arg, prefix, sizeof prefix - 1);
    if (is_ref && !registry_dir && !getenv("HOTYOLO_REGISTRY")) {
        hy_cli_error(cmd, "'%s': no registry: give --registry DIR or set HOTYOLO_REGISTRY", arg);
        return HY_CLI_USAGE;
    }
    hy_status st = hy_registry_resolve_path(arg, registry_dir, path);
    if (st == HY_OK) return HY_CLI_OK;
    const char *e = hy_last_error();
    if (strstr(e, arg + (is_ref ? sizeof prefix - 1 : 0)))
        hy_cli_error(cmd, "%s", e);
    else
        hy_cli_error(cmd, "cannot resolve '%s': %s", arg, e);
    return st == HY_ERR_INVALID_ARG ? HY_CLI_USAGE : HY_CLI_RUNTIME;
}
