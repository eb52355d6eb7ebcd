/* hotyolo: subcommand dispatch. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"detect", hy_cli_detect, "detect objects in images with a YOLOv8 checkpoint"},
    {"inspect", hy_cli_inspect, "describe a weights file (.pt, .safetensors, .onnx)"},
    {"convert", hy_cli_convert, "convert a weights file to hotyolo .safetensors"},
    {"export", hy_cli_export, "export weights to .pt (state_dict) or .onnx (inference graph)"},
    {"bench", hy_cli_bench, "measure time to ready, first-frame and steady latency, RSS"},
    {"verify", hy_cli_verify, "check a hotyolo .safetensors file against its recorded sha256"},
    {"val", hy_cli_val, "evaluate a model on a YOLO dataset: P, R, mAP50, mAP50-95"},
    {"train", hy_cli_train, "fine-tune a model on a YOLO dataset (docs/training.md)"},
    {"serve", hy_cli_serve, "serve models over HTTP (detect, KServe v2, metrics, health)"},
    {"registry", hy_cli_registry, "versioned model registry: add, list, show, alias, bind, push, pull"},
    {"cache", hy_cli_cache, "packed-weights cache of .pt/.onnx loads: list, clear"},
};

/* --no-cache (detect, val, serve, bench; before any "--"): the packed-weights cache is not
 * used by this process (HOTYOLO_NO_CACHE=1, read by hy_model_load). Removed from argv. */
static int strip_no_cache(int argc, char **argv) {
    static const char *const users[] = {"detect", "val", "serve", "bench"};
    int used = 0;
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) used |= !strcmp(argv[0], users[i]);
    if (!used) return argc;
    int n = 1, plain = 0;
    for (int i = 1; i < argc; i++) {
        if (!plain && !strcmp(argv[i], "--")) plain = 1;
        if (!plain && !strcmp(argv[i], "--no-cache")) {
            setenv("HOTYOLO_NO_CACHE", "1", 1);
            continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return n;
}

void hy_cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fflush(stdout); /* keep stdout/stderr ordered when both go to a terminal */
    fprintf(stderr, "hotyolo%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f) {
    fprintf(f,
            "hotyolo %s - YOLOv8 object detection in C\n"
            "\n"
            "Usage:\n"
            "  hotyolo <command> [options]\n"
            "  hotyolo --help | -h        show this help\n"
            "  hotyolo --version | -V     show the version\n"
            "\n"
            "Commands:\n",
            hy_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "Run 'hotyolo <command> --help' for the options of a command.\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return HY_CLI_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
        if (argc > 2 && strcmp(a, "help") == 0) {
            /* "hotyolo help detect" == "hotyolo detect --help" */
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].fn(2, sub);
                }
            hy_cli_error(NULL, "unknown command '%s' (see 'hotyolo --help')", argv[2]);
            return HY_CLI_USAGE;
        }
        usage(stdout);
        return HY_CLI_OK;
    }
    if (!strcmp(a, "--version") || !strcmp(a, "-V") || !strcmp(a, "version")) {
        printf("hotyolo %s\n", hy_version());
        return HY_CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(a, commands[i].name)) return commands[i].fn(strip_no_cache(argc - 1, argv + 1), argv + 1);
    if (a[0] == '-')
        hy_cli_error(NULL, "unknown option '%s' (see 'hotyolo --help')", a);
    else
        hy_cli_error(NULL, "unknown command '%s' (see 'hotyolo --help')", a);
    return HY_CLI_USAGE;
}
