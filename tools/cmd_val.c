/* hotyolo val MODEL --data DATA.yaml : precision, recall, mAP50 and mAP50-95 of a model on a
 * YOLO dataset, as Ultralytics 8.0.172's `yolo val` prints them (table on stdout; progress,
 * dataset warnings and errors on stderr). Exit 0 ok, 1 runtime error (model, dataset, write),
 * 2 usage error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotyolo/val.h"

#define CMD                "val"
#define MAX_SHOWN_WARNINGS 20

static void help(void) {
    printf(
        "Usage: hotyolo val MODEL --data DATA.yaml [options]\n"
        "\n"
        "Evaluates the YOLOv8 checkpoint MODEL (.pt, hotyolo .safetensors or .onnx) on a\n"
        "YOLO-format dataset and prints precision (P), recall (R), mAP50 and mAP50-95 for\n"
        "all classes and per class, computed as Ultralytics 8.0.172 'yolo val' does\n"
        "(docs/val.md). DATA.yaml names the dataset root ('path', default: its own folder),\n"
        "the splits (folders, .txt image lists, or lists of those) and the class 'names';\n"
        "labels/ mirrors images/ with one 'class x y w h' line per box (normalised).\n"
        "\n"
        "Options (a value may also be given as --option=VALUE):\n"
        "  --data FILE     the dataset's data.yaml (required)\n"
        "  --split NAME    val, train or test (default val)\n"
        "  --imgsz N       image size (long side), a multiple of 32 in [32, 8192] (default 640)\n"
        "  --batch N       images per batch, in [1, 65536]: each batch gets one rectangular\n"
        "                  letterbox shape (the numbers depend on it as in Ultralytics) and\n"
        "                  runs as one forward pass (of at most 32 images) (default 16;\n"
        "                  YOLOv5 32, as its val.py)\n"
        "  --conf F        NMS confidence threshold in [0, 1] (default 0.001)\n"
        "  --iou F         NMS IoU threshold in [0, 1] (default 0.7; YOLOv5 0.6)\n"
        "  --max-det N     detections kept per image, in [1, 100000] (default 300)\n"
        "  --threads N     inference threads, in [0, 1024]; 0 = one per online core (default 0)\n"
        "  --no-cache      read .pt/.onnx weights directly, not through the packed-weights\n"
        "                  cache (hotyolo cache --help)\n"
        "  --device NAME   what runs the network: cpu, ref (plain-C reference kernels;\n"
        "                  much slower), cuda or cuda:N or N (GPU N), auto (cuda:0 when\n"
        "                  usable, else cpu). A GPU that cannot be used falls back to cpu\n"
        "                  with a warning (default cpu)\n"
        "  --no-fallback   make that fallback an error (exit 1)\n"
        "  --json FILE     also write the results as JSON to FILE (overwritten)\n"
        "  --plots DIR     write PR_curve.png, confusion_matrix.png and\n"
        "                  confusion_matrix_normalized.png to DIR (created if needed)\n"
        "  --registry DIR  the model registry in which MODEL = registry:REF (NAME@3,\n"
        "                  NAME@production, PROJECT) is looked up (default: $HOTYOLO_REGISTRY)\n"
        "  -q, --quiet     no progress indicator\n"
        "  -h, --help      show this help\n"
        "\n"
        "Exit status: 0 ok, 1 runtime error, 2 usage error. A split without any label\n"
        "(no label files, or only empty ones) is evaluated as Ultralytics does (every\n"
        "figure 0) with a WARNING on stderr, and exits 0.\n"
        "\n"
        "Example:\n"
        "  hotyolo val yolov8n.pt --data datasets/coco128/data.yaml --batch 8 --plots runs/val\n");
}

typedef struct val_opts {
    const char *model, *data, *split, *json, *plots, *device, *registry;
    int imgsz, batch, max_det, threads, quiet, no_fallback;
    float conf, iou;
} val_opts;


/* 0 ok, 1 help shown, -1 usage error (printed). */
static int parse_args(int argc, char **argv, val_opts *o) {
    enum {
        O_HELP,
        O_DATA,
        O_SPLIT,
        O_IMGSZ,
        O_BATCH,
        O_CONF,
        O_IOU,
        O_MAXDET,
        O_THREADS,
        O_JSON,
        O_PLOTS,
        O_QUIET,
        O_DEVICE,
        O_REGISTRY,
        O_NO_FALLBACK
    };
    static const hy_cli_opt table[] = {
        {"--help", "-h", O_HELP, 0},       {"--data", NULL, O_DATA, 1},
        {"--split", NULL, O_SPLIT, 1},     {"--imgsz", NULL, O_IMGSZ, 1},
        {"--batch", NULL, O_BATCH, 1},     {"--conf", NULL, O_CONF, 1},
        {"--iou", NULL, O_IOU, 1},         {"--max-det", NULL, O_MAXDET, 1},
        {"--threads", NULL, O_THREADS, 1}, {"--json", NULL, O_JSON, 1},
        {"--plots", NULL, O_PLOTS, 1},     {"--quiet", "-q", O_QUIET, 0},
        {"--device", NULL, O_DEVICE, 1},   {"--registry", NULL, O_REGISTRY, 1},
        {"--no-fallback", NULL, O_NO_FALLBACK, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (o->model) {
                hy_cli_error(CMD, "unexpected argument '%s': one MODEL (see 'hotyolo val --help')",
                             argv[i]);
                return -1;
            }
            o->model = argv[i];
            continue;
        }
        const char *opt = table[k].name;
        switch (table[k].id) {
        case O_HELP:
            help();
            return 1;
        case O_DATA:
            o->data = val;
            break;
        case O_SPLIT:
            if (strcmp(val, "val") && strcmp(val, "train") && strcmp(val, "test")) {
                hy_cli_error(CMD, "%s: '%s' must be val, train or test", opt, val);
                return -1;
            }
            o->split = val;
            break;
        case O_IMGSZ:
            if (hy_cli_parse_int(CMD, opt, val, 32, 8192, &o->imgsz)) return -1;
            if (o->imgsz % 32) {
                hy_cli_error(CMD, "%s: %d is not a multiple of 32", opt, o->imgsz);
                return -1;
            }
            break;
        case O_BATCH:
            if (hy_cli_parse_int(CMD, opt, val, 1, 65536, &o->batch)) return -1;
            break;
        case O_CONF:
            if (hy_cli_parse_float(CMD, opt, val, 0.f, 1.f, &o->conf)) return -1;
            break;
        case O_IOU:
            if (hy_cli_parse_float(CMD, opt, val, 0.f, 1.f, &o->iou)) return -1;
            break;
        case O_MAXDET:
            if (hy_cli_parse_int(CMD, opt, val, 1, 100000, &o->max_det)) return -1;
            break;
        case O_THREADS:
            if (hy_cli_parse_int(CMD, opt, val, 0, 1024, &o->threads)) return -1;
            break;
        case O_JSON:
            o->json = val;
            break;
        case O_PLOTS:
            o->plots = val;
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_DEVICE:
            if (hy_cli_parse_device(CMD, opt, val, &o->device)) return -1;
            break;
        case O_NO_FALLBACK:
            o->no_fallback = 1;
            break;
        case O_REGISTRY:
            o->registry = val;
            break;
        }
    }
    if (!o->model) {
        hy_cli_error(CMD, "missing MODEL argument (see 'hotyolo val --help')");
        return -1;
    }
    if (!o->data) {
        hy_cli_error(CMD, "missing --data DATA.yaml (see 'hotyolo val --help')");
        return -1;
    }
    return 0;
}

/* mkdir -p DIR; 0 or -1 with the error printed. */

typedef struct progress_state {
    int tty;
    double t0;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "val: 57/128 images  45%  3.1 it/s" rewritten in place on a terminal; otherwise a line at
 * each tenth and at the end. */
static void on_progress(size_t done, size_t total, void *user) {
    progress_state *ps = user;
    const double el = now_s() - ps->t0;
    const int pct = (int)(100.0 * (double)done / (double)total);
    if (ps->tty) {
        fprintf(stderr, "\r%s: %zu/%zu images %3d%%  %.1f img/s ", CMD, done, total, pct,
                el > 0 ? done / el : 0.0);
        if (done == total) fputc('\n', stderr);
    } else if (done == total || (done * 10 / total) != ((done - 1) * 10 / total)) {
        fprintf(stderr, "%s: %zu/%zu images %3d%%\n", CMD, done, total, pct);
    }
    fflush(stderr);
}

static void print_row(const hy_val_metrics *m) {
    // Ultralytics: '%22s' + '%11i' * 2 + '%11.3g' * 4
    printf("%22s%11i%11i%11.3g%11.3g%11.3g%11.3g\n", m->name, m->images, m->instances, m->precision,
           m->recall, m->map50, m->map50_95);
}

int hy_cli_val(int argc, char **argv) {
    val_opts o = {.split = "val",
                  .imgsz = 640,
                  .batch = 0, /* 0, iou < 0: the model family's defaults (hy_val_model_params) */
                  .max_det = 300,
                  .threads = 0,
                  .conf = 0.001f,
                  .iou = -1.f};
    int pr = parse_args(argc, argv, &o);
    if (pr == 1) return HY_CLI_OK;
    if (pr < 0) return HY_CLI_USAGE;
    if (access(o.data, R_OK) != 0) { // before the (slower) model load
        hy_cli_error(CMD, "--data: cannot read '%s': %s", o.data, strerror(errno));
        return HY_CLI_RUNTIME;
    }
    if (o.plots && hy_cli_make_dirs(CMD, "--plots", o.plots)) return HY_CLI_RUNTIME;

    hy_model_params mp = hy_model_default_params();
    mp.n_threads = o.threads;
    mp.imgsz = o.imgsz;
    mp.device = o.device;
    mp.no_fallback = o.no_fallback;
    hy_model *m;
    char *model_path = NULL;
    int rrc = hy_cli_model_path(CMD, o.model, o.registry, &model_path);
    if (rrc != HY_CLI_OK) return rrc;
    hy_status lst = hy_model_load(model_path, &mp, &m);
    hy_free(model_path);
    if (lst != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        return HY_CLI_RUNTIME;
    }
    hy_cli_warn_fallback(CMD, m, o.quiet);
    progress_state ps = {.tty = isatty(fileno(stderr)), .t0 = now_s()};
    hy_val_params vp = hy_val_model_params(m);
    vp.data = o.data;
    vp.split = o.split;
    vp.imgsz = o.imgsz;
    if (o.batch > 0) vp.batch = o.batch;
    vp.conf = o.conf;
    if (o.iou >= 0) vp.iou = o.iou;
    vp.max_det = o.max_det;
    vp.plots_dir = o.plots;
    if (!o.quiet) {
        vp.progress = on_progress;
        vp.progress_user_data = &ps;
    }
    hy_val_result *r;
    const double t0 = now_s();
    hy_status st = hy_val_run(m, &vp, &r);
    const double wall = now_s() - t0;
    hy_model_free(m);
    if (st != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        return HY_CLI_RUNTIME;
    }
    const size_t nw = hy_val_result_num_warnings(r);
    for (size_t i = 0; i < nw && i < MAX_SHOWN_WARNINGS; i++) {
        fputs("hotyolo val: warning: ", stderr);
        hy_cli_put_escaped(stderr, hy_val_result_warning(r, i));
        fputc('\n', stderr);
    }
    if (nw > MAX_SHOWN_WARNINGS)
        fprintf(stderr, "hotyolo val: warning: ... and %zu more (all in --json)\n",
                nw - MAX_SHOWN_WARNINGS);

    printf("%22s%11s%11s%11s%11s%11s%11s\n", "Class", "Images", "Instances", "Box(P", "R", "mAP50",
           "mAP50-95)");
    print_row(hy_val_result_all(r));
    for (size_t i = 0; i < hy_val_result_num_classes(r); i++) print_row(hy_val_result_class(r, i));
    const hy_val_speed sp = hy_val_result_speed(r);
    printf("Speed: %.1fms preprocess, %.1fms inference, %.1fms postprocess per image (%.1f s in "
           "all)\n",
           sp.preprocess_ms, sp.inference_ms, sp.postprocess_ms, wall);
    if (o.plots) printf("Plots saved to %s\n", o.plots);
    if (hy_val_result_all(r)->instances == 0) { // as Ultralytics: warn, still exit 0
        fflush(stdout);
        fprintf(stderr, "hotyolo val: WARNING: no labels found in the '%s' split of ", o.split);
        hy_cli_put_escaped(stderr, o.data);
        fputs(": metrics cannot be computed without labels, every figure above is 0 (see the "
              "first warning for where labels were looked for)\n", stderr);
    }

    int rc = HY_CLI_OK;
    if (o.json) {
        char *js;
        if (hy_val_result_json(r, &js) != HY_OK) {
            hy_cli_error(CMD, "%s", hy_last_error());
            rc = HY_CLI_RUNTIME;
        } else {
            FILE *f = fopen(o.json, "w");
            int bad = !f;
            if (f) {
                bad |= fputs(js, f) < 0 || fputc('\n', f) == EOF;
                bad |= fclose(f) != 0;
            }
            if (bad) {
                hy_cli_error(CMD, "--json: cannot write '%s': %s", o.json, strerror(errno));
                rc = HY_CLI_RUNTIME;
            }
            hy_free(js);
        }
    }
    hy_val_result_free(r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        hy_cli_error(CMD, "error writing to standard output");
        rc = HY_CLI_RUNTIME;
    }
    return rc;
}
