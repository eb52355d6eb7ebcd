/* hotyolo convert IN OUT: any supported weights file -> hotyolo .safetensors.
 *
 * Output: one line on success, "converted IN (pt) -> OUT: safetensors, unfused, f16,
 * 355 tensors, 6.4 MB, data sha256 <hex>", read back from OUT with hy_inspect(). An existing
 * OUT is kept unless --force; OUT may never be IN. Exit 0 ok, 1 runtime error, 2 usage error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "cli.h"

#define CMD "convert"
#define MAX_NC 65536
#define OUT_EXT ".safetensors"

typedef struct convert_opts {
    const char *in, *out;
    hy_dtype dtype; /* HY_DTYPE_COUNT: keep each tensor's */
    int fuse, transfer, nc, force;
    hy_cli_maps maps;
} convert_opts;

static void help(void) {
    printf("Usage: hotyolo convert IN OUT [options]\n"
           "\n"
           "Converts the weights file IN (an Ultralytics .pt checkpoint, a YOLOv8 .onnx\n"
           "export or a .safetensors file) to OUT, a hotyolo .safetensors file: the\n"
           "YOLOv8 tensors, the model config (variant, classes, names, input size) and the\n"
           "sha256 of IN and of the data in the metadata. OUT must end in .safetensors.\n"
           "The file is written to a temporary name and renamed when complete.\n"
           "\n"
           "Options (a value may also be given as --option=VALUE):\n"
           "  --dtype T       float dtype written: f32 or f16 (default: each tensor's own)\n"
           "  --fuse          fold BatchNorm into the conv weights and biases, for\n"
           "                  inference only (default: unfused, as in IN)\n"
           "  --transfer      match IN's tensors in transfer mode: copy those whose name\n"
           "                  and shape match, initialise the others as Ultralytics does,\n"
           "                  drop the rest (default: strict, every tensor must match)\n"
           "  --nc N          class count of the network written, in [1, %d]\n"
           "                  (default: IN's); with a different count, use --transfer\n"
           "  --map OLD=NEW   rename IN's tensors starting with OLD to start with NEW\n"
           "                  before matching; repeatable (default: none)\n"
           "  --force         replace OUT if it exists (default: refuse)\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0 ok, 1 runtime error (IN unreadable or not convertible, OUT\n"
           "exists without --force, a write error), 2 usage error (OUT is IN, or does\n"
           "not end in .safetensors).\n"
           "\n"
           "Example:\n"
           "  hotyolo convert yolov8n.pt yolov8n.safetensors --dtype f16\n",
           MAX_NC);
}

static int parse_args(int argc, char **argv, convert_opts *o) {
    enum { O_DTYPE, O_FUSE, O_TRANSFER, O_NC, O_MAP, O_FORCE, O_HELP };
    static const hy_cli_opt table[] = {
        {"--dtype", NULL, O_DTYPE, 1},       {"--fuse", NULL, O_FUSE, 0},
        {"--transfer", NULL, O_TRANSFER, 0}, {"--nc", NULL, O_NC, 1},
        {"--map", NULL, O_MAP, 1},           {"--force", NULL, O_FORCE, 0},
        {"--help", "-h", O_HELP, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (!o->in) {
                o->in = argv[i];
            } else if (!o->out) {
                o->out = argv[i];
            } else {
                hy_cli_error(CMD, "unexpected argument '%s' (see 'hotyolo convert --help')",
                             argv[i]);
                return -1;
            }
            continue;
        }
        switch (table[k].id) {
        case O_DTYPE:
            if (!strcmp(val, "f32") || !strcmp(val, "float32")) {
                o->dtype = HY_DTYPE_F32;
            } else if (!strcmp(val, "f16") || !strcmp(val, "float16")) {
                o->dtype = HY_DTYPE_F16;
            } else {
                hy_cli_error(CMD, "--dtype: '%s' is not f32 or f16", val);
                return -1;
            }
            break;
        case O_FUSE: o->fuse = 1; break;
        case O_TRANSFER: o->transfer = 1; break;
        case O_NC:
            if (hy_cli_parse_int(CMD, table[k].name, val, 1, MAX_NC, &o->nc)) return -1;
            break;
        case O_MAP:
            if (hy_cli_maps_add(CMD, &o->maps, val)) return -1;
            break;
        case O_FORCE: o->force = 1; break;
        case O_HELP: help(); return 1;
        }
    }
    if (!o->in) {
        hy_cli_error(CMD, "missing IN and OUT arguments (see 'hotyolo convert --help')");
        return -1;
    }
    if (!o->out) {
        hy_cli_error(CMD, "missing OUT argument (see 'hotyolo convert --help')");
        return -1;
    }
    size_t n = strlen(o->out), ne = strlen(OUT_EXT);
    const char *base = strrchr(o->out, '/');
    base = base ? base + 1 : o->out;
    if (n <= ne || strcmp(o->out + n - ne, OUT_EXT) != 0 || strlen(base) <= ne) {
        hy_cli_error(CMD, "OUT '%s' must be a file name ending in %s", o->out, OUT_EXT);
        return -1;
    }
    return 0;
}

/* The line printed on success, from OUT's (and IN's) description. */
static void print_done(const convert_opts *o) {
    json_object *in = hy_cli_inspect_load(CMD, o->in, 0, NULL);
    json_object *out = hy_cli_inspect_load(CMD, o->out, 0, NULL);
    json_object *v;
    const char *in_fmt = in && (v = hy_cli_json_get(in, "format")) ? json_object_get_string(v) : "?";
    const char *out_fmt = out && (v = hy_cli_json_get(out, "format")) ? json_object_get_string(v)
                                                                      : "?";
    int fused = out && (v = hy_cli_json_get(out, "fused")) && json_object_get_boolean(v);
    long long count = out && (v = hy_cli_json_get(out, "tensor_count")) ? json_object_get_int64(v)
                                                                        : 0;
    json_object *meta = hy_cli_json_get(out, "metadata");
    const char *sha = (v = hy_cli_json_get(meta, "hotyolo.data_sha256")) ? json_object_get_string(v)
                                                                        : "?";
    struct stat st;
    char size[32];
    if (stat(o->out, &st) == 0)
        hy_cli_size((double)st.st_size, size, sizeof size);
    else
        snprintf(size, sizeof size, "? bytes");

    fputs("converted ", stdout);
    hy_cli_put_escaped(stdout, o->in);
    printf(" (%s) -> ", in_fmt);
    hy_cli_put_escaped(stdout, o->out);
    printf(": %s, %s, ", out_fmt, fused ? "fused" : "unfused");
    /* dtypes written: "f16", "f32+i64" */
    int printed = 0;
    json_object *dt = hy_cli_json_get(out, "dtypes");
    if (dt && json_object_is_type(dt, json_type_object)) {
        json_object_object_foreach(dt, k, c) {
            (void)c;
            printf("%s%s", printed ? "+" : "", hy_cli_dtype_short(k));
            printed = 1;
        }
    }
    printf("%s, %lld tensors, %s, data sha256 %s\n", printed ? "" : "?", count, size, sha);
    json_object_put(in);
    json_object_put(out);
}

int hy_cli_convert(int argc, char **argv) {
    convert_opts o = {.dtype = HY_DTYPE_COUNT};
    int rc = HY_CLI_OK;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        rc = pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
        goto done;
    }
    if ((rc = hy_cli_check_out(CMD, o.in, o.out, o.force)) != HY_CLI_OK) goto done;

    hy_convert_params cp = hy_convert_default_params();
    cp.dtype = o.dtype;
    cp.fuse = o.fuse;
    cp.load.mode = o.transfer ? HY_LOAD_TRANSFER : HY_LOAD_STRICT;
    cp.load.nc = o.nc;
    hy_cli_maps_apply(&o.maps, &cp.load);
    if (hy_convert(o.in, o.out, &cp) != HY_OK) {
        const char *e = hy_last_error();
        if (strstr(e, o.in) || strstr(e, o.out))
            hy_cli_error(CMD, "%s", e);
        else
            hy_cli_error(CMD, "cannot convert '%s' to '%s': %s", o.in, o.out, e);
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    print_done(&o);
    if (fflush(stdout) != 0 || ferror(stdout)) rc = HY_CLI_RUNTIME;
done:
    hy_cli_maps_free(&o.maps);
    return rc;
}
