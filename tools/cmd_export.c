/* hotyolo export WEIGHTS --format pt|onnx [-o OUT]: a weights file back to the formats
 * Python tools read (include/hotyolo/export.h, docs/formats.md). One line on success:
 * "exported IN -> OUT (onnx, 12.8 MB)". An existing OUT is kept unless --force; OUT may never
 * be IN. Exit 0 ok, 1 runtime error, 2 usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "hotyolo/export.h"

#define CMD "export"

typedef struct export_opts {
    const char *in, *out, *format;
    int imgsz, half, force;
    char *out_owned;
} export_opts;

static void help(void) {
    printf("Usage: hotyolo export WEIGHTS --format pt|onnx [options]\n"
           "\n"
           "Writes WEIGHTS (a .pt, .safetensors or .onnx file hotyolo loads, e.g. a\n"
           "training run's best.safetensors) in a format Python tools read:\n"
           "  pt    a torch.save file: {'state_dict', 'yaml', 'names', ...}; unfused when\n"
           "        WEIGHTS is (BatchNorm kept, to train on), fused when it is fused; its\n"
           "        pickle uses only what torch.load(weights_only=True) accepts\n"
           "  onnx  the fused inference graph as Ultralytics exports YOLOv8 (opset 17,\n"
           "        'images' (1,3,S,S) -> 'output0' (1, 4+nc, anchors)), for ONNX Runtime\n"
           "The file is written to a temporary name, synced and renamed when complete.\n"
           "\n"
           "Options (a value may also be given as --option=VALUE):\n"
           "  --format F      pt or onnx (required)\n"
           "  -o, --out OUT   output file (default: WEIGHTS with the extension .pt / .onnx)\n"
           "  --imgsz N       onnx input size, multiple of 32 (default: the file's, else 640)\n"
           "  --half          pt: float16 tensors, as Ultralytics saves (default float32)\n"
           "  --force         replace OUT if it exists (default: refuse)\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0 ok, 1 runtime error (WEIGHTS unreadable, OUT exists without\n"
           "--force, a write error), 2 usage error (unknown format, OUT is WEIGHTS).\n"
           "\n"
           "Example:\n"
           "  hotyolo export runs/train/exp/weights/best.safetensors --format onnx -o best.onnx\n");
}

static int parse_args(int argc, char **argv, export_opts *o) {
    enum { O_FORMAT, O_OUT, O_IMGSZ, O_HALF, O_FORCE, O_HELP };
    static const hy_cli_opt table[] = {
        {"--format", NULL, O_FORMAT, 1}, {"--out", "-o", O_OUT, 1}, {"--imgsz", NULL, O_IMGSZ, 1},
        {"--half", NULL, O_HALF, 0},     {"--force", NULL, O_FORCE, 0}, {"--help", "-h", O_HELP, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i, &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (o->in) {
                hy_cli_error(CMD, "unexpected argument '%s' (see 'hotyolo export --help')", argv[i]);
                return -1;
            }
            o->in = argv[i];
            continue;
        }
        switch (table[k].id) {
        case O_FORMAT: o->format = val; break;
        case O_OUT: o->out = val; break;
        case O_IMGSZ:
            if (hy_cli_parse_int(CMD, table[k].name, val, 32, 8192, &o->imgsz)) return -1;
            if (o->imgsz % 32) {
                hy_cli_error(CMD, "--imgsz %d is not a multiple of 32", o->imgsz);
                return -1;
            }
            break;
        case O_HALF: o->half = 1; break;
        case O_FORCE: o->force = 1; break;
        case O_HELP: help(); return 1;
        }
    }
    if (!o->in) {
        hy_cli_error(CMD, "missing WEIGHTS argument (see 'hotyolo export --help')");
        return -1;
    }
    if (!o->format) {
        hy_cli_error(CMD, "missing --format (pt or onnx)");
        return -1;
    }
    return 0;
}

int hy_cli_export(int argc, char **argv) {
    export_opts o = {0};
    int rc = HY_CLI_OK;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) return pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
    hy_export_params p = hy_export_default_params();
    if (hy_export_format_parse(o.format, &p.format) != HY_OK) {
        hy_cli_error(CMD, "--format: unknown format '%s' (expected pt or onnx)", o.format);
        return HY_CLI_USAGE;
    }
    if (p.format != HY_EXPORT_PT && o.half) {
        hy_cli_error(CMD, "--half applies to --format pt only");
        return HY_CLI_USAGE;
    }
    if (!o.out) { /* WEIGHTS with its extension replaced */
        const char *ext = hy_export_format_name(p.format);
        size_t n = strlen(o.in);
        const char *slash = strrchr(o.in, '/'), *dot = strrchr(o.in, '.');
        if (dot && (!slash || dot > slash + 1)) n = (size_t)(dot - o.in);
        o.out_owned = malloc(n + strlen(ext) + 2);
        if (!o.out_owned) {
            hy_cli_error(CMD, "out of memory");
            return HY_CLI_RUNTIME;
        }
        snprintf(o.out_owned, n + strlen(ext) + 2, "%.*s.%s", (int)n, o.in, ext);
        o.out = o.out_owned;
    }
    if ((rc = hy_cli_check_out(CMD, o.in, o.out, o.force)) != HY_CLI_OK) goto done;
    p.imgsz = o.imgsz;
    p.half = o.half;
    p.overwrite = o.force;
    if (hy_export(o.in, o.out, &p) != HY_OK) {
        const char *e = hy_last_error();
        if (strstr(e, o.in) || strstr(e, o.out))
            hy_cli_error(CMD, "%s", e);
        else
            hy_cli_error(CMD, "cannot export '%s' to '%s': %s", o.in, o.out, e);
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    char size[32] = "?";
    struct stat so;
    if (stat(o.out, &so) == 0) hy_cli_size((double)so.st_size, size, sizeof size);
    fputs("exported ", stdout);
    hy_cli_put_escaped(stdout, o.in);
    fputs(" -> ", stdout);
    hy_cli_put_escaped(stdout, o.out);
    printf(" (%s, %s)\n", hy_export_format_name(p.format), size);
    if (fflush(stdout) != 0 || ferror(stdout)) rc = HY_CLI_RUNTIME;
done:
    free(o.out_owned);
    return rc;
}
