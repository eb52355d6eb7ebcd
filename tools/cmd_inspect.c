/* hotyolo inspect FILE [--tensors] [--json] [--device D [--no-fallback]]: describes a weights
 * file; hotyolo inspect --devices [--json]: the devices that can run a network here.
 *
 * Output: "key: value" lines derived from hy_inspect()'s JSON (file, format, sha256,
 * architecture, variant, task, nc, names, imgsz, parameters, tensors, dtypes, fused, valid),
 * then the file's metadata; --tensors adds a name/shape/dtype table. --json prints
 * hy_inspect()'s JSON unchanged. Exit 0 ok, 1 runtime error (unreadable or unknown file),
 * 2 usage error. Text taken from the file is printed with control characters escaped.
 * --device loads the model on D (the only case that loads it) and adds device, device
 * requested and device fallback (JSON: "device", "device_requested", "device_fallback"). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "hotyolo/device.h"

#define CMD "inspect"
#define N_NAMES_SHOWN 5  /* names: first few, then "... (nc)" */
#define SHORT_VALUE 100  /* metadata values longer than this are summarised */
#define MAX_PROBLEM_LINES 20

static void help(void) {
    printf("Usage: hotyolo inspect FILE [options]\n"
           "       hotyolo inspect --devices [--json]\n"
           "\n"
           "Describes the weights file FILE (an Ultralytics .pt checkpoint, a hotyolo\n"
           ".safetensors file or a YOLOv8 .onnx export): format, sha256 of the file,\n"
           "architecture and variant, task, class count and names, input size, parameter\n"
           "count, tensor count and dtypes, whether BatchNorm is fused, whether hotyolo can\n"
           "load it strictly (valid: yes, or no with the problems), and the file's own\n"
           "metadata (.pt: date, version, epoch, train_args, train_metrics, ...).\n"
           "Nothing in FILE is executed.\n"
           "\n"
           "Options:\n"
           "  --tensors   also list every tensor: name, shape, dtype (default: off)\n"
           "  --json      print the description as JSON instead (with --tensors: a\n"
           "              \"tensors\" array of {\"name\", \"shape\", \"dtype\"}) (default: off)\n"
           "  --device NAME\n"
           "              also load the model on NAME (cpu, ref, cuda, cuda:N, N, auto) and\n"
           "              report where it runs: device, device requested and, when a GPU\n"
           "              that cannot be used fell back to cpu, device fallback (why; with\n"
           "              a warning on stderr). Without it the model is not loaded\n"
           "  --no-fallback\n"
           "              with --device: make that fallback an error (exit 1)\n"
           "  --devices   list the devices this build and machine have instead (no FILE):\n"
           "              name, model, memory, usable, detail, why not; with --json an\n"
           "              array of {\"name\", \"kind\", \"built\", \"model\", \"memory_bytes\",\n"
           "              \"usable\", \"detail\", \"why\"}\n"
           "  --registry DIR\n"
           "              the model registry in which FILE = registry:REF (NAME@3,\n"
           "              NAME@production, PROJECT) is looked up (default: $HOTYOLO_REGISTRY)\n"
           "  -h, --help  show this help\n"
           "\n"
           "Exit status: 0 ok, 1 runtime error (FILE missing, unreadable or not a weights\n"
           "file), 2 usage error.\n"
           "\n"
           "Example:\n"
           "  hotyolo inspect yolov8n.pt --tensors\n");
}

// --- values ----------------------------------------------------------------------------

static const char *str_of(json_object *o, const char *key) {
    json_object *v = hy_cli_json_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* "key:" padded so that values line up. */
static void label(const char *indent, const char *key) {
    int pad = 14 - (int)strlen(key);
    printf("%s%s:%*s ", indent, key, pad > 0 ? pad : 0, "");
}

static void line_str(const char *key, const char *v) {
    if (!v) return;
    label("", key);
    hy_cli_put_escaped(stdout, v);
    putchar('\n');
}

/* One metadata value on one line: strings bare (long ones cut), objects and arrays as
 * compact JSON when short, else their keys / item count. */
static void put_value(json_object *v) {
    if (!v) {
        fputs("null", stdout);
        return;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t n = strlen(s);
        if (n <= SHORT_VALUE) {
            hy_cli_put_escaped(stdout, s);
        } else {
            /* cut at a UTF-8 character boundary */
            char head[SHORT_VALUE + 1];
            size_t k = SHORT_VALUE - 20;
            while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
            memcpy(head, s, k);
            head[k] = '\0';
            hy_cli_put_escaped(stdout, head);
            printf("... (%zu characters)", n);
        }
        return;
    }
    const char *compact = json_object_to_json_string_ext(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (compact && strlen(compact) <= SHORT_VALUE) {
        hy_cli_put_escaped(stdout, compact);
        return;
    }
    if (json_object_is_type(v, json_type_object)) {
        printf("(%d keys) ", json_object_object_length(v));
        int first = 1;
        json_object_object_foreach(v, k, val) {
            (void)val;
            fputs(first ? "" : ", ", stdout);
            hy_cli_put_escaped(stdout, k);
            first = 0;
        }
    } else if (json_object_is_type(v, json_type_array)) {
        printf("[%zu items]", json_object_array_length(v));
    } else {
        hy_cli_put_escaped(stdout, compact ? compact : "?");
    }
}

/* "16x3x3x3"; "scalar" for shape [] */
static void shape_str(json_object *shape, char *buf, size_t cap) {
    size_t n = shape && json_object_is_type(shape, json_type_array)
                   ? json_object_array_length(shape)
                   : 0;
    size_t k = 0;
    buf[0] = '\0';
    if (n == 0) {
        snprintf(buf, cap, "scalar");
        return;
    }
    for (size_t i = 0; i < n && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%lld", i ? "x" : "",
                         (long long)json_object_get_int64(json_object_array_get_idx(shape, i)));
        if (w < 0) break;
        k += (size_t)w;
    }
}

static void print_tensors(json_object *ts) {
    size_t n = ts && json_object_is_type(ts, json_type_array) ? json_object_array_length(ts) : 0;
    int wn = 4, ws = 5;
    char sh[256];
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(ts, i);
        const char *name = str_of(t, "name");
        int len = name ? (int)strlen(name) : 0;
        if (len > wn) wn = len;
        shape_str(hy_cli_json_get(t, "shape"), sh, sizeof sh);
        if ((int)strlen(sh) > ws) ws = (int)strlen(sh);
    }
    printf("tensors (%zu):\n", n);
    printf("  %-*s  %-*s  %s\n", wn, "name", ws, "shape", "dtype");
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(ts, i);
        const char *name = str_of(t, "name");
        const char *dt = str_of(t, "dtype");
        shape_str(hy_cli_json_get(t, "shape"), sh, sizeof sh);
        fputs("  ", stdout);
        hy_cli_put_escaped(stdout, name ? name : "?");
        printf("%*s  %-*s  %s\n", wn - (name ? (int)strlen(name) : 1), "", ws, sh, dt ? dt : "?");
    }
}

/* device, device requested, device fallback of a model loaded with --device (m may be NULL). */
static void print_device(const hy_model *m) {
    if (!m) return;
    const char *why = hy_model_device_fallback(m);
    line_str("device", hy_model_device(m));
    line_str("device requested", hy_model_device_requested(m));
    line_str("device fallback", why && why[0] ? why : "none");
}

static void print_summary(json_object *o, const hy_model *m) {
    char buf[64];
    line_str("file", str_of(o, "file"));
    line_str("format", str_of(o, "format"));
    line_str("sha256", str_of(o, "sha256"));
    line_str("architecture", str_of(o, "architecture"));
    line_str("variant", str_of(o, "variant"));
    line_str("task", str_of(o, "task"));
    json_object *nc = hy_cli_json_get(o, "nc");
    if (nc) {
        label("", "nc");
        printf("%d\n", json_object_get_int(nc));
    }
    json_object *names = hy_cli_json_get(o, "names");
    if (names && json_object_is_type(names, json_type_array)) {
        size_t n = json_object_array_length(names);
        label("", "names");
        for (size_t i = 0; i < n && i < N_NAMES_SHOWN; i++) {
            fputs(i ? ", " : "", stdout);
            hy_cli_put_escaped(stdout, json_object_get_string(json_object_array_get_idx(names, i)));
        }
        printf("%s (%zu)\n", n > N_NAMES_SHOWN ? ", ..." : "", n);
    }
    json_object *imgsz = hy_cli_json_get(o, "imgsz");
    if (imgsz) {
        label("", "imgsz");
        printf("%d\n", json_object_get_int(imgsz));
    }
    json_object *params = hy_cli_json_get(o, "parameters");
    if (params) {
        label("", "parameters");
        printf("%s\n", hy_cli_thousands(json_object_get_int64(params), buf, sizeof buf));
    }
    json_object *count = hy_cli_json_get(o, "tensor_count");
    if (count) {
        label("", "tensors");
        printf("%s", hy_cli_thousands(json_object_get_int64(count), buf, sizeof buf));
        json_object *bytes = hy_cli_json_get(o, "tensor_bytes");
        if (bytes) printf(" (%s)", hy_cli_size((double)json_object_get_int64(bytes), buf, sizeof buf));
        putchar('\n');
    }
    json_object *dtypes = hy_cli_json_get(o, "dtypes");
    if (dtypes && json_object_is_type(dtypes, json_type_object)) {
        label("", "dtypes");
        int first = 1;
        json_object_object_foreach(dtypes, k, v) {
            printf("%s", first ? "" : ", ");
            hy_cli_put_escaped(stdout, k);
            printf(" (%d)", json_object_get_int(v));
            first = 0;
        }
        putchar('\n');
    }
    json_object *fused = hy_cli_json_get(o, "fused");
    if (fused) {
        label("", "fused");
        puts(json_object_get_boolean(fused) ? "yes" : "no");
    }
    json_object *valid = hy_cli_json_get(o, "valid");
    if (valid) {
        label("", "valid");
        if (json_object_get_boolean(valid)) {
            puts("yes");
        } else {
            /* problems: one sentence, then an indented listing; each line indented here */
            const char *pr = str_of(o, "problems");
            puts("no");
            int shown = 0;
            for (const char *p = pr; p && *p; shown++) {
                if (shown == MAX_PROBLEM_LINES) {
                    int rest = 1;
                    for (const char *q = p; (q = strchr(q, '\n')) != NULL && q[1]; q++) rest++;
                    printf("  ... (%d more lines; see --json)\n", rest);
                    break;
                }
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char line[512];
                if (len >= sizeof line) len = sizeof line - 1;
                memcpy(line, p, len);
                line[len] = '\0';
                fputs("  ", stdout);
                hy_cli_put_escaped(stdout, line);
                putchar('\n');
                p = nl ? nl + 1 : p + strlen(p);
            }
        }
    }
    print_device(m);
    json_object *meta = hy_cli_json_get(o, "metadata");
    if (meta && json_object_is_type(meta, json_type_object) && json_object_object_length(meta)) {
        puts("metadata:");
        json_object_object_foreach(meta, k, v) {
            fputs("  ", stdout);
            hy_cli_put_escaped(stdout, k);
            fputs(": ", stdout);
            put_value(v);
            putchar('\n');
        }
    }
}

// --- devices ---------------------------------------------------------------------------

#define MAX_DEVICES 65 /* the cpu and 64 GPUs (device.h: cuda:0..63) */

/* hy_device_list(), plus a "cuda" row saying so when this build has no CUDA backend. */
static int list_devices(hy_device_info *d, int max) {
    int n = hy_device_list(d, max);
    if (n > max) n = max;
    if (!hy_cuda_built() && n < max) {
        hy_device_info *c = &d[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "cuda");
        snprintf(c->kind, sizeof c->kind, "cuda");
        snprintf(c->why, sizeof c->why,
                 "this build has no CUDA backend (configured with HY_CUDA=OFF or without the CUDA toolkit)");
    }
    return n;
}

static int print_devices(int as_json) {
    static hy_device_info d[MAX_DEVICES];
    int n = list_devices(d, MAX_DEVICES);
    if (as_json) {
        json_object *a = json_object_new_array();
        for (int i = 0; i < n; i++) {
            json_object *r = json_object_new_object();
            int built = strcmp(d[i].kind, "cuda") != 0 || hy_cuda_built();
            json_object_object_add(r, "name", json_object_new_string(d[i].name));
            json_object_object_add(r, "kind", json_object_new_string(d[i].kind));
            json_object_object_add(r, "built", json_object_new_boolean(built));
            json_object_object_add(r, "model", json_object_new_string(d[i].model));
            json_object_object_add(r, "memory_bytes",
                                   d[i].memory_bytes ? json_object_new_int64((int64_t)d[i].memory_bytes) : NULL);
            json_object_object_add(r, "usable", json_object_new_boolean(d[i].usable));
            json_object_object_add(r, "detail", json_object_new_string(d[i].detail));
            json_object_object_add(r, "why", d[i].usable ? NULL : json_object_new_string(d[i].why));
            json_object_array_add(a, r);
        }
        puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
        return HY_CLI_OK;
    }
    char buf[64];
    for (int i = 0; i < n; i++) {
        printf("%s%s:\n", i ? "\n" : "", d[i].name);
        line_str("  model", d[i].model[0] ? d[i].model : "unknown");
        line_str("  memory", d[i].memory_bytes ? hy_cli_size((double)d[i].memory_bytes, buf, sizeof buf) : "unknown");
        line_str("  usable", d[i].usable ? "yes" : "no");
        if (d[i].detail[0]) line_str("  detail", d[i].detail);
        if (!d[i].usable) line_str("  why", d[i].why[0] ? d[i].why : "unknown");
    }
    return HY_CLI_OK;
}

/* The JSON text raw (one object, as hy_inspect prints it) with the device keys of m added
 * after its last member, in its layout (two-space indent). */
static void put_json_with_device(const char *raw, const hy_model *m) {
    const char *end = strrchr(raw, '}');
    if (!end) {
        fputs(raw, stdout);
        return;
    }
    const char *p = end;
    while (p > raw && (p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\t' || p[-1] == '\r')) p--;
    int first = p > raw && p[-1] == '{';
    fwrite(raw, 1, (size_t)(p - raw), stdout);
    const char *why = hy_model_device_fallback(m);
    const char *keys[3] = {"device", "device_requested", "device_fallback"};
    json_object *vals[3] = {json_object_new_string(hy_model_device(m)),
                            json_object_new_string(hy_model_device_requested(m)),
                            why && why[0] ? json_object_new_string(why) : NULL};
    for (int i = 0; i < 3; i++) {
        printf("%s\n  \"%s\": %s", first && i == 0 ? "" : ",", keys[i],
               json_object_to_json_string_ext(vals[i], JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(vals[i]);
    }
    printf("\n%s", end);
}

// --- command ---------------------------------------------------------------------------

int hy_cli_inspect(int argc, char **argv) {
    enum { O_TENSORS, O_JSON, O_HELP, O_REGISTRY, O_DEVICE, O_NO_FALLBACK, O_DEVICES };
    static const hy_cli_opt table[] = {
        {"--tensors", NULL, O_TENSORS, 0},
        {"--json", NULL, O_JSON, 0},
        {"--help", "-h", O_HELP, 0},
        {"--registry", NULL, O_REGISTRY, 1},
        {"--device", NULL, O_DEVICE, 1},
        {"--no-fallback", NULL, O_NO_FALLBACK, 0},
        {"--devices", NULL, O_DEVICES, 0},
    };
    const char *path = NULL, *registry = NULL, *device = NULL;
    int tensors = 0, as_json = 0, positional_only = 0, no_fallback = 0, devices = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return HY_CLI_USAGE;
        if (k == -3) continue;
        if (k == -2) {
            if (path) {
                hy_cli_error(CMD, "unexpected argument '%s': one FILE at a time (see 'hotyolo "
                             "inspect --help')", argv[i]);
                return HY_CLI_USAGE;
            }
            path = argv[i];
            continue;
        }
        switch (table[k].id) {
        case O_TENSORS: tensors = 1; break;
        case O_JSON: as_json = 1; break;
        case O_HELP: help(); return HY_CLI_OK;
        case O_REGISTRY: registry = val; break;
        case O_DEVICE:
            if (hy_cli_parse_device(CMD, "--device", val, &device)) return HY_CLI_USAGE;
            break;
        case O_NO_FALLBACK: no_fallback = 1; break;
        case O_DEVICES: devices = 1; break;
        }
    }
    if (devices) {
        if (path || tensors || device || no_fallback) {
            hy_cli_error(CMD, "--devices takes no FILE, --tensors, --device or --no-fallback (see 'hotyolo "
                         "inspect --help')");
            return HY_CLI_USAGE;
        }
        return print_devices(as_json);
    }
    if (no_fallback && !device) {
        hy_cli_error(CMD, "--no-fallback needs --device (without it the model is not loaded)");
        return HY_CLI_USAGE;
    }
    if (!path) {
        hy_cli_error(CMD, "missing FILE argument (see 'hotyolo inspect --help')");
        return HY_CLI_USAGE;
    }

    char *resolved = NULL, *raw = NULL;
    int rrc = hy_cli_model_path(CMD, path, registry, &resolved);
    if (rrc != HY_CLI_OK) return rrc;
    json_object *o = hy_cli_inspect_load(CMD, resolved, tensors, &raw);
    hy_model *m = NULL;
    if (o && device) {
        hy_model_params mp = hy_model_default_params();
        mp.device = device;
        mp.no_fallback = no_fallback;
        if (hy_model_load(resolved, &mp, &m) != HY_OK) {
            hy_cli_error(CMD, "cannot load model '%s': %s", path, hy_last_error());
            json_object_put(o);
            hy_free(raw);
            hy_free(resolved);
            return HY_CLI_RUNTIME;
        }
        hy_cli_warn_fallback(CMD, m, 0);
    }
    hy_free(resolved);
    if (!o) return HY_CLI_RUNTIME;
    if (as_json) {
        if (m)
            put_json_with_device(raw, m);
        else
            fputs(raw, stdout);
        putchar('\n');
    } else {
        print_summary(o, m);
        if (tensors) print_tensors(hy_cli_json_get(o, "tensors"));
    }
    hy_model_free(m);
    json_object_put(o);
    hy_free(raw);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        hy_cli_error(CMD, "error writing to standard output");
        return HY_CLI_RUNTIME;
    }
    return HY_CLI_OK;
}
