/* hotyolo train --model MODEL | --arch ARCH --data DATA.yaml : fine-tunes (or trains from
 * scratch) a YOLOv8 detector as Ultralytics 8.0.172's `yolo detect train`, printing a line per
 * epoch like Ultralytics' and the validation row; last / best .safetensors under
 * PROJECT/NAME/weights, results.csv and results.png. Ultralytics' key=value spelling (epochs=3)
 * is accepted too. SIGINT ends the current batch, saves last and exits 130 (resumable). Exit 0
 * ok, 1 runtime error (model, dataset, run folder), 2 usage error, 130 interrupted. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotyolo/device.h"
#include "hotyolo/train.h"

#define CMD "train"

static void help(void) {
    printf(
        "Usage: hotyolo train --model MODEL --data DATA.yaml [options]\n"
        "       hotyolo train --arch yolov8n --data DATA.yaml [options]   (from scratch)\n"
        "       hotyolo train --resume RUN[/weights/last.safetensors]\n"
        "       hotyolo train model=MODEL data=DATA.yaml epochs=N ...  (Ultralytics' spelling)\n"
        "       hotyolo train --compare OUT.png [--metric mAP50|mAP50-95] LABEL=RUN|LABEL=v1,v2,... ...\n"
        "                                  (one plot of runs' validation curves by epoch)\n"
        "\n"
        "Fine-tunes the YOLOv8 checkpoint MODEL (.pt, hotyolo .safetensors or .onnx) on the\n"
        "'train' split of a YOLO-format dataset as Ultralytics 8.0.172 'yolo detect train'\n"
        "does, with its default augmentation (mosaic, random affine, HSV, flips), validating\n"
        "the EMA weights on the 'val' split after each epoch (docs/training.md). The network is\n"
        "built for the dataset's classes; tensors of MODEL with the same name and shape are\n"
        "transferred, the others initialised (a new nc re-initialises the class outputs).\n"
        "Writes PROJECT/NAME/weights/last.safetensors after every epoch, best.safetensors when\n"
        "the fitness (0.1 mAP50 + 0.9 mAP50-95) improves, results.csv and results.png.\n"
        "Ctrl-C ends the current batch, saves last and exits 130; --resume continues exactly.\n"
        "\n"
        "Options (a value may also be given as --option=VALUE, or as key=value):\n"
        "  --model FILE          weights to start from (also the first argument)\n"
        "  --arch NAME           or a network from scratch: yolov8n, yolov8s, yolov8m, yolov8l,\n"
        "                        yolov8x (also yolov8n.yaml, as Ultralytics' model=yolov8n.yaml)\n"
        "  --data FILE           the dataset's data.yaml (required unless --resume)\n"
        "  --resume RUN          continue the run in folder RUN (or RUN/weights/last.safetensors)\n"
        "                        from its last completed epoch, with its own arguments; only\n"
        "                        --threads, --device, --no-fallback, --workers and -q may be given\n"
        "                        with it\n"
        "  --epochs N            epochs, in [1, 100000] (default 100)\n"
        "  --imgsz N             square training size, a multiple of 32 in [32, 4096] (default 640)\n"
        "  --batch N             images per batch, in [1, 1024] (default 16)\n"
        "  --freeze K            freeze layers model.0 .. model.K-1 (default 0)\n"
        "  --unfreeze-at E[:K]   from epoch E (1-based) on, freeze only K layers (default 0:\n"
        "                        everything trains); repeatable for stages (10:5 --unfreeze-at 15:0)\n"
        "  --optimizer NAME      SGD, Adam, AdamW or auto (default auto: AdamW with a small lr\n"
        "                        for short runs, else SGD 0.01)\n"
        "  --lr0 X               initial learning rate (default 0.01; ignored by auto)\n"
        "  --lrf X               final lr as a fraction of lr0 (default 0.01)\n"
        "  --momentum X          SGD momentum / Adam beta1 (default 0.937)\n"
        "  --weight-decay X      weight decay of the weights group (default 0.0005)\n"
        "  --warmup-epochs X     warm-up epochs, 0 for none (default 3.0)\n"
        "  --warmup-momentum X   SGD momentum at the start of the warm-up (default 0.8)\n"
        "  --warmup-bias-lr X    bias lr at the start of the warm-up (default 0.1)\n"
        "  --box X, --cls X, --dfl X  loss gains (default 7.5, 0.5, 1.5)\n"
        "  --cos-lr              cosine lr schedule (default linear)\n"
        "  --nbs N               nominal batch size: gradients accumulate to it (default 64)\n"
        "  --fliplr P            probability of a horizontal flip, in [0, 1] (default 0.5)\n"
        "  --flipud P            probability of a vertical flip (default 0)\n"
        "  --mosaic P            probability of a 4-image mosaic (default 1.0)\n"
        "  --close-mosaic N      no mosaic in the last N epochs (default 10)\n"
        "  --degrees X, --translate X, --scale X, --shear X, --perspective X\n"
        "                        random affine (default 0, 0.1, 0.5, 0, 0)\n"
        "  --hsv-h X, --hsv-s X, --hsv-v X  HSV gains (default 0.015, 0.7, 0.4)\n"
        "  --no-augment          letterbox and fliplr only (no mosaic, affine or HSV)\n"
        "  --workers N           loader threads preparing the next batch (default 2)\n"
        "  --patience N          stop after N epochs without a better fitness; 0 = never (default 50)\n"
        "  --save-period N       also save weights/epochE.safetensors when E %% N == 0 (E counted\n"
        "                        from 0, as Ultralytics' epochE.pt); default off\n"
        "  --seed N              seed of the initialisation, shuffling and augmentation (default 0)\n"
        "  --device NAME         cpu, ref (plain-C reference kernels; much slower), cuda or cuda:N\n"
        "                        or N (GPU N), auto (cuda:0 when usable, else cpu). A GPU that\n"
        "                        cannot be used (or has no training kernels) falls back to cpu\n"
        "                        with a warning (default cpu)\n"
        "  --no-fallback         make that fallback an error (exit 1)\n"
        "  --threads N           threads, in [0, 256]; 0 = one per online core (default 0)\n"
        "  --project DIR         folder of the runs (default runs/detect)\n"
        "  --name NAME           run folder in it (default train; taken: train2, train3, ...)\n"
        "  --exist-ok            reuse PROJECT/NAME when it exists (our checkpoints in it are\n"
        "                        overwritten, any other file there is not)\n"
        "  --no-val              validate after the last epoch only (val=False)\n"
        "  -q, --quiet           no progress line during an epoch\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 ok, 1 runtime error, 2 usage error.\n"
        "\n"
        "Example:\n"
        "  hotyolo train --model yolov8n.pt --data datasets/coco8/data.yaml --epochs 10 --imgsz 320\n");
}

enum {
    O_HELP, O_MODEL, O_DATA, O_EPOCHS, O_IMGSZ, O_BATCH, O_FREEZE, O_OPTIMIZER, O_LR0, O_LRF,
    O_MOMENTUM, O_WD, O_WARMUP_EPOCHS, O_WARMUP_MOMENTUM, O_WARMUP_BIAS_LR, O_BOX, O_CLS, O_DFL,
    O_COS_LR, O_NBS, O_FLIPLR, O_SEED, O_DEVICE, O_THREADS, O_PROJECT, O_NAME, O_EXIST_OK, O_NO_VAL,
    O_QUIET, O_ARCH, O_UNFREEZE, O_RESUME, O_FLIPUD, O_MOSAIC, O_CLOSE_MOSAIC, O_DEGREES, O_TRANSLATE, O_SCALE,
    O_SHEAR, O_PERSPECTIVE, O_HSV_H, O_HSV_S, O_HSV_V, O_NO_AUGMENT, O_WORKERS, O_PATIENCE, O_SAVE_PERIOD,
    O_NO_FALLBACK
};
static const hy_cli_opt table[] = {
    {"--help", "-h", O_HELP, 0},
    {"--model", NULL, O_MODEL, 1},
    {"--data", NULL, O_DATA, 1},
    {"--epochs", NULL, O_EPOCHS, 1},
    {"--imgsz", NULL, O_IMGSZ, 1},
    {"--batch", NULL, O_BATCH, 1},
    {"--freeze", NULL, O_FREEZE, 1},
    {"--optimizer", NULL, O_OPTIMIZER, 1},
    {"--lr0", NULL, O_LR0, 1},
    {"--lrf", NULL, O_LRF, 1},
    {"--momentum", NULL, O_MOMENTUM, 1},
    {"--weight-decay", NULL, O_WD, 1},
    {"--warmup-epochs", NULL, O_WARMUP_EPOCHS, 1},
    {"--warmup-momentum", NULL, O_WARMUP_MOMENTUM, 1},
    {"--warmup-bias-lr", NULL, O_WARMUP_BIAS_LR, 1},
    {"--box", NULL, O_BOX, 1},
    {"--cls", NULL, O_CLS, 1},
    {"--dfl", NULL, O_DFL, 1},
    {"--cos-lr", NULL, O_COS_LR, 0},
    {"--nbs", NULL, O_NBS, 1},
    {"--fliplr", NULL, O_FLIPLR, 1},
    {"--seed", NULL, O_SEED, 1},
    {"--device", NULL, O_DEVICE, 1},
    {"--threads", NULL, O_THREADS, 1},
    {"--project", NULL, O_PROJECT, 1},
    {"--name", NULL, O_NAME, 1},
    {"--exist-ok", NULL, O_EXIST_OK, 0},
    {"--no-val", NULL, O_NO_VAL, 0},
    {"--quiet", "-q", O_QUIET, 0},
    {"--arch", NULL, O_ARCH, 1},
    {"--unfreeze-at", NULL, O_UNFREEZE, 1},
    {"--resume", NULL, O_RESUME, 1},
    {"--flipud", NULL, O_FLIPUD, 1},
    {"--mosaic", NULL, O_MOSAIC, 1},
    {"--close-mosaic", NULL, O_CLOSE_MOSAIC, 1},
    {"--degrees", NULL, O_DEGREES, 1},
    {"--translate", NULL, O_TRANSLATE, 1},
    {"--scale", NULL, O_SCALE, 1},
    {"--shear", NULL, O_SHEAR, 1},
    {"--perspective", NULL, O_PERSPECTIVE, 1},
    {"--hsv-h", NULL, O_HSV_H, 1},
    {"--hsv-s", NULL, O_HSV_S, 1},
    {"--hsv-v", NULL, O_HSV_V, 1},
    {"--no-augment", NULL, O_NO_AUGMENT, 0},
    {"--workers", NULL, O_WORKERS, 1},
    {"--patience", NULL, O_PATIENCE, 1},
    {"--save-period", NULL, O_SAVE_PERIOD, 1},
    {"--no-fallback", NULL, O_NO_FALLBACK, 0},
};
#define N_OPTS (sizeof table / sizeof table[0])

static long long clock_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) {
        hy_cli_error(CMD, "%s: '%s' is not a number", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        hy_cli_error(CMD, "%s: %s is out of range (expected a number in [%g, %g])", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Ultralytics' booleans: True/False (any case), 1/0. -1 when neither. */
static int parse_bool(const char *s) {
    if (!strcasecmp(s, "true") || !strcmp(s, "1")) return 1;
    if (!strcasecmp(s, "false") || !strcmp(s, "0")) return 0;
    return -1;
}

/* Rewrites Ultralytics' key=value arguments as options: "epochs=3" -> "--epochs=3",
 * "cos_lr=True" -> "--cos-lr", "val=False" -> "--no-val"; a boolean False of a flag drops it.
 * Returns a new argv (strings malloc'd into *owned) or NULL with the usage error printed. */
static char **rewrite_kv(int argc, char **argv, int *out_argc, char ***owned, int *n_owned) {
    char **nv = calloc((size_t)argc + 1, sizeof *nv), **own = calloc((size_t)argc + 1, sizeof *own);
    const char *bad = NULL;
    int n = 0, k = 0;
    if (!nv || !own) goto oom;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        if (i == 0 || a[0] == '-' || !eq || eq == a) {
            nv[n++] = argv[i];
            if (i > 0 && !strcmp(a, "--")) { // everything after is positional
                while (++i < argc) nv[n++] = argv[i];
            }
            continue;
        }
        char key[64];
        const size_t kl = (size_t)(eq - a);
        bad = a;
        if (kl >= sizeof key - 3) goto unknown;
        memcpy(key, "--", 2);
        for (size_t j = 0; j < kl; j++) key[2 + j] = a[j] == '_' ? '-' : a[j];
        key[2 + kl] = 0;
        const char *val = eq + 1;
        if (!strcmp(key, "--val")) {
            const int b = parse_bool(val);
            if (b < 0) {
                hy_cli_error(CMD, "%s: '%s' must be True or False", a, val);
                goto fail;
            }
            if (!b) nv[n++] = "--no-val";
            continue;
        }
        if (!strcmp(key, "--augment")) { // Ultralytics has no such train key; ours: augment=False
            const int b = parse_bool(val);
            if (b < 0) {
                hy_cli_error(CMD, "%s: '%s' must be True or False", a, val);
                goto fail;
            }
            if (!b) nv[n++] = "--no-augment";
            continue;
        }
        size_t t = 0;
        while (t < N_OPTS && strcmp(table[t].name, key)) t++;
        if (t == N_OPTS || table[t].id == O_HELP || table[t].id == O_NO_VAL || table[t].id == O_QUIET ||
            table[t].id == O_NO_AUGMENT)
            goto unknown;
        if (!table[t].has_value) {
            const int b = parse_bool(val);
            if (b < 0) {
                hy_cli_error(CMD, "%s: '%s' must be True or False", a, val);
                goto fail;
            }
            if (b) nv[n++] = (char *)table[t].name;
            continue;
        }
        const size_t len = strlen(key) + strlen(val) + 2;
        char *s = malloc(len);
        if (!s) goto oom;
        snprintf(s, len, "%s=%s", key, val);
        own[k++] = s;
        nv[n++] = s;
    }
    *out_argc = n;
    *owned = own;
    *n_owned = k;
    return nv;
unknown:
    hy_cli_error(CMD, "unknown argument '%s' (see 'hotyolo train --help')", bad);
    goto fail;
oom:
    hy_cli_error(CMD, "out of memory");
fail:
    for (int j = 0; j < k; j++) free(own[j]);
    free(own);
    free(nv);
    return NULL;
}

static volatile int stop_flag;
static void on_sigint(int sig) {
    static const char msg[] = "\ninterrupted: ending this batch, saving last (Ctrl-C again to abort)\n";
    (void)sig;
    stop_flag = 1;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

typedef struct train_cli {
    hy_train_params p;
    int quiet, tty;
    int n_other;        /* options given that --resume takes from the run's record */
    int epochs, imgsz;  /* as run (from the record when resumed) */
    int last_freeze;
    int header_done;
    int last_instances; /* of the epoch's last batch (Ultralytics prints it) */
    double last_it_s;
} train_cli;

/* 0 ok, 1 help shown, -1 usage error (printed). */
static int parse_args(int argc, char **argv, train_cli *c) {
    hy_train_params *p = &c->p;
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, N_OPTS, argc, argv, &i, &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (p->model) {
                hy_cli_error(CMD, "unexpected argument '%s': one MODEL (see 'hotyolo train --help')", argv[i]);
                return -1;
            }
            p->model = argv[i];
            continue;
        }
        const char *opt = table[k].name;
        int iv;
        switch (table[k].id) {
        case O_HELP: help(); return 1;
        case O_MODEL:
            if (p->model) {
                hy_cli_error(CMD, "%s: MODEL given twice", opt);
                return -1;
            }
            p->model = val;
            break;
        case O_DATA: p->data = val; break;
        case O_EPOCHS:
            if (hy_cli_parse_int(CMD, opt, val, 1, 100000, &p->epochs)) return -1;
            break;
        case O_IMGSZ:
            if (hy_cli_parse_int(CMD, opt, val, 32, 4096, &p->imgsz)) return -1;
            if (p->imgsz % 32) {
                hy_cli_error(CMD, "%s: %d is not a multiple of 32", opt, p->imgsz);
                return -1;
            }
            break;
        case O_BATCH:
            if (hy_cli_parse_int(CMD, opt, val, 1, 1024, &p->batch)) return -1;
            break;
        case O_FREEZE:
            if (hy_cli_parse_int(CMD, opt, val, 0, 1000, &p->freeze)) return -1;
            break;
        case O_OPTIMIZER:
            if (strcmp(val, "SGD") && strcmp(val, "Adam") && strcmp(val, "AdamW") && strcmp(val, "auto")) {
                hy_cli_error(CMD, "%s: '%s' must be SGD, Adam, AdamW or auto", opt, val);
                return -1;
            }
            p->optimizer = val;
            break;
        case O_LR0:
            if (parse_double(opt, val, 1e-12, 10, &p->lr0)) return -1;
            break;
        case O_LRF:
            if (parse_double(opt, val, 0, 1, &p->lrf)) return -1;
            break;
        case O_MOMENTUM:
            if (parse_double(opt, val, 0, 0.999999, &p->momentum)) return -1;
            break;
        case O_WD:
            if (parse_double(opt, val, 0, 1, &p->weight_decay)) return -1;
            break;
        case O_WARMUP_EPOCHS:
            if (parse_double(opt, val, 0, 1e6, &p->warmup_epochs)) return -1;
            break;
        case O_WARMUP_MOMENTUM:
            if (parse_double(opt, val, 0, 0.999999, &p->warmup_momentum)) return -1;
            break;
        case O_WARMUP_BIAS_LR:
            if (parse_double(opt, val, 0, 10, &p->warmup_bias_lr)) return -1;
            break;
        case O_BOX:
            if (parse_double(opt, val, 0, 1e6, &p->box)) return -1;
            break;
        case O_CLS:
            if (parse_double(opt, val, 0, 1e6, &p->cls)) return -1;
            break;
        case O_DFL:
            if (parse_double(opt, val, 0, 1e6, &p->dfl)) return -1;
            break;
        case O_COS_LR: p->cos_lr = 1; break;
        case O_NBS:
            if (hy_cli_parse_int(CMD, opt, val, 1, 65536, &p->nbs)) return -1;
            break;
        case O_FLIPLR:
            if (parse_double(opt, val, 0, 1, &p->fliplr)) return -1;
            break;
        case O_SEED:
            if (hy_cli_parse_int(CMD, opt, val, 0, 2147483647L, &iv)) return -1;
            p->seed = (uint64_t)iv;
            break;
        case O_DEVICE:
            if (hy_cli_parse_device(CMD, opt, val, &p->device)) return -1;
            break;
        case O_THREADS:
            if (hy_cli_parse_int(CMD, opt, val, 0, 256, &p->n_threads)) return -1;
            break;
        case O_PROJECT:
            if (!val[0]) {
                hy_cli_error(CMD, "%s: empty path", opt);
                return -1;
            }
            p->project = val;
            break;
        case O_NAME:
            if (!val[0] || strchr(val, '/') || !strcmp(val, ".") || !strcmp(val, "..")) {
                hy_cli_error(CMD, "%s: '%s' must be a folder name (no '/')", opt, val);
                return -1;
            }
            p->name = val;
            break;
        case O_EXIST_OK: p->exist_ok = 1; break;
        case O_NO_VAL: p->val = 0; break;
        case O_QUIET: c->quiet = 1; break;
        case O_ARCH:
            if (!val[0]) {
                hy_cli_error(CMD, "%s: empty name", opt);
                return -1;
            }
            p->arch = val;
            break;
        case O_UNFREEZE: {
            int e = 0, kk = 0, used = 0;
            if (p->n_unfreeze == HY_TRAIN_MAX_UNFREEZE) {
                hy_cli_error(CMD, "%s: at most %d stages", opt, HY_TRAIN_MAX_UNFREEZE);
                return -1;
            }
            const int nf = sscanf(val, "%d%n:%d%n", &e, &used, &kk, &used);
            if (nf < 1 || val[used] || (nf == 1 && strchr(val, ':')) || e < 1 || e > 100000 || kk < 0 || kk > 1000) {
                hy_cli_error(CMD, "%s: '%s' must be EPOCH or EPOCH:LAYERS (epoch >= 1, layers in [0, 1000])", opt, val);
                return -1;
            }
            p->unfreeze[p->n_unfreeze].epoch = e;
            p->unfreeze[p->n_unfreeze++].freeze = nf == 2 ? kk : 0;
            break;
        }
        case O_RESUME: p->resume = val; break;
        case O_FLIPUD:
            if (parse_double(opt, val, 0, 1, &p->flipud)) return -1;
            break;
        case O_MOSAIC:
            if (parse_double(opt, val, 0, 1, &p->mosaic)) return -1;
            break;
        case O_CLOSE_MOSAIC:
            if (hy_cli_parse_int(CMD, opt, val, 0, 100000, &p->close_mosaic)) return -1;
            break;
        case O_DEGREES:
            if (parse_double(opt, val, 0, 180, &p->degrees)) return -1;
            break;
        case O_TRANSLATE:
            if (parse_double(opt, val, 0, 0.5, &p->translate)) return -1;
            break;
        case O_SCALE:
            if (parse_double(opt, val, 0, 0.95, &p->scale)) return -1;
            break;
        case O_SHEAR:
            if (parse_double(opt, val, 0, 45, &p->shear)) return -1;
            break;
        case O_PERSPECTIVE:
            if (parse_double(opt, val, 0, 0.001, &p->perspective)) return -1;
            break;
        case O_HSV_H:
            if (parse_double(opt, val, 0, 1, &p->hsv_h)) return -1;
            break;
        case O_HSV_S:
            if (parse_double(opt, val, 0, 1, &p->hsv_s)) return -1;
            break;
        case O_HSV_V:
            if (parse_double(opt, val, 0, 1, &p->hsv_v)) return -1;
            break;
        case O_NO_AUGMENT: p->augment = 0; break;
        case O_WORKERS:
            if (hy_cli_parse_int(CMD, opt, val, 0, 64, &p->workers)) return -1;
            break;
        case O_PATIENCE:
            if (hy_cli_parse_int(CMD, opt, val, 0, 100000, &p->patience)) return -1;
            break;
        case O_SAVE_PERIOD:
            if (hy_cli_parse_int(CMD, opt, val, -1, 100000, &p->save_period)) return -1;
            break;
        case O_NO_FALLBACK: p->no_fallback = 1; break;
        }
        const int id = table[k].id;
        if (id != O_RESUME && id != O_THREADS && id != O_DEVICE && id != O_NO_FALLBACK && id != O_WORKERS &&
            id != O_QUIET && id != O_MODEL)
            c->n_other++;
    }
    if (p->resume) {
        /* Ultralytics' resume=True model=RUN/weights/last.pt */
        if (parse_bool(p->resume) == 1) {
            if (!p->model) {
                hy_cli_error(CMD, "--resume True: give the run's last weights as --model (or --resume RUN)");
                return -1;
            }
            p->resume = p->model;
        } else if (p->model) {
            hy_cli_error(CMD, "--resume %s: continues that run with its own model; --model cannot be given too",
                         p->resume);
            return -1;
        }
        p->model = NULL;
        if (c->n_other) {
            hy_cli_error(CMD, "--resume: the run continues with its own arguments; only --threads, --device, "
                              "--no-fallback, --workers and -q may be given with it");
            return -1;
        }
        return 0;
    }
    if (p->model && p->arch) {
        hy_cli_error(CMD, "--model and --arch: give one (weights to start from, or a network from scratch)");
        return -1;
    }
    if (p->model && !p->arch) { // Ultralytics' model=yolov8n.yaml: from scratch
        const size_t n = strlen(p->model);
        if (n > 5 && !strcmp(p->model + n - 5, ".yaml") && access(p->model, F_OK) != 0) {
            p->arch = p->model;
            p->model = NULL;
        }
    }
    if (!p->model && !p->arch) {
        hy_cli_error(CMD, "missing --model MODEL or --arch ARCH (see 'hotyolo train --help')");
        return -1;
    }
    if (!p->data) {
        hy_cli_error(CMD, "missing --data DATA.yaml (see 'hotyolo train --help')");
        return -1;
    }
    return 0;
}

static void header(train_cli *c) {
    if (c->header_done) return;
    c->header_done = 1;
    printf("%11s%11s%11s%11s%11s%11s%11s\n", "Epoch", "box_loss", "cls_loss", "dfl_loss", "Instances", "Size",
           "it/s");
    fflush(stdout);
}

static void on_start(const hy_train_info *in, void *user) {
    train_cli *c = user;
    const hy_train_params *p = &c->p;
    for (size_t i = 0; i < in->n_warnings; i++) fprintf(stderr, "warning: %s\n", in->warnings[i]);
    if (in->n_warnings) fflush(stderr);
    /* a GPU that cannot train (none can yet): the run goes on on cpu */
    hy_cli_warn_device(CMD, in->device_requested, in->device, in->device_fallback, c->quiet);
    if (p->resume) {
        printf("Resuming training from %s at epoch %d\n", in->save_dir, in->start_epoch);
    } else if (p->model) {
        printf("Transferred %zu/%zu items from %s", in->transferred, in->n_tensors, p->model);
        if (in->initialized) printf(" (%zu initialised", in->initialized);
        if (in->ignored) printf("%s%zu of the file ignored", in->initialized ? ", " : " (", in->ignored);
        printf("%s\n", in->initialized || in->ignored ? ")" : "");
    } else {
        printf("Training %s from scratch (%zu tensors initialised, seed %llu)\n", p->arch, in->n_tensors,
               (unsigned long long)p->seed);
    }
    printf("optimizer: %s(lr=%g, momentum=%g) weight_decay=%g, accumulate %d, warm-up %ld iterations\n",
           in->optimizer, in->lr, in->momentum, in->weight_decay, in->accumulate, in->warmup_iters);
    char b1[32], b2[32];
    printf("train: %zu images, %ld instances; val: %zu images, %ld instances; %s of %s parameters trainable "
           "(freeze %d)\n",
           in->train_images, in->train_instances, in->val_images, in->val_instances,
           hy_cli_thousands((long long)in->n_trainable, b1, sizeof b1),
           hy_cli_thousands((long long)in->n_params, b2, sizeof b2), in->freeze);
    for (int i = 0; i < p->n_unfreeze; i++)
        printf("unfreeze: from epoch %d, layers model.0..%d frozen%s\n", p->unfreeze[i].epoch, p->unfreeze[i].freeze - 1,
               p->unfreeze[i].freeze ? "" : " (none: everything trains)");
    char mb[32];
    c->epochs = in->epochs;
    c->imgsz = in->imgsz;
    printf("Image sizes %d train, %d val; training graph %s\n", in->imgsz, in->imgsz,
           hy_cli_size((double)in->graph_bytes, mb, sizeof mb));
    printf("Logging results to %s\nStarting training for %d epochs...\n", in->save_dir, in->epochs);
    fflush(stdout);
}

static void on_batch(const hy_train_progress *pr, void *user) {
    train_cli *c = user;
    c->last_instances = pr->instances;
    c->last_it_s = pr->it_s;
    if (c->quiet || !c->tty) return;
    char ep[32];
    snprintf(ep, sizeof ep, "%d/%d", pr->epoch, pr->epochs);
    /* Ultralytics' bar: losses, instances, size, done/total, it/s and the epoch's time left */
    const double left = pr->it_s > 0 ? (pr->n_batches - pr->batch) / pr->it_s : 0;
    char bar[24];
    const int w = 20, fill = pr->n_batches ? pr->batch * w / pr->n_batches : 0;
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r%11s%11.4g%11.4g%11.4g%11d%11d %s %d/%d %.2f it/s <%d:%02d ", ep, pr->box_loss, pr->cls_loss,
            pr->dfl_loss, pr->instances, pr->size, bar, pr->batch, pr->n_batches, pr->it_s, (int)left / 60,
            (int)left % 60);
    if (pr->batch == pr->n_batches) fputs("\r\033[K", stderr);
    fflush(stderr);
}

static void on_epoch(const hy_train_epoch *e, void *user) {
    train_cli *c = user;
    if (e->freeze != c->last_freeze) {
        if (c->last_freeze >= 0) printf("epoch %d: layers model.0..%d frozen now (%s)\n", e->epoch, e->freeze - 1,
                                        e->freeze ? "staged unfreezing" : "everything trains");
        c->last_freeze = e->freeze;
    }
    header(c);
    char ep[32];
    snprintf(ep, sizeof ep, "%d/%d", e->epoch, c->epochs);
    printf("%11s%11.4g%11.4g%11.4g%11d%11d%11.3g\n", ep, e->box_loss, e->cls_loss, e->dfl_loss, c->last_instances,
           c->imgsz, c->last_it_s);
    if (e->validated)
        printf("%22s%11s%11s%11s%11s\n%22s%11.3g%11.3g%11.3g%11.3g  fitness %.4f%s  (%.1f s train, %.1f s val)\n",
               "Box(P", "R", "mAP50", "mAP50-95)", "", "all", e->precision, e->recall, e->map50, e->map50_95,
               e->fitness, e->saved_best ? ", best" : "", e->train_s, e->val_s);
    fflush(stdout);
}

/* hotyolo train --compare OUT.png [--metric mAP50|mAP50-95] LABEL=SERIES ... */
static int compare_cmd(int argc, char **argv) {
    const char *png = NULL, *metric = "mAP50", *labels[8], *series[8];
    char *own[8];
    int n = 0, rc = HY_CLI_OK;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--compare") && i + 1 < argc) png = argv[++i];
        else if (!strcmp(argv[i], "--metric") && i + 1 < argc) metric = argv[++i];
        else {
            const char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i] || n == 8) {
                hy_cli_error(CMD, "--compare: '%s': expected LABEL=RUN_FOLDER or LABEL=v1,v2,... (at most 8)", argv[i]);
                rc = HY_CLI_USAGE;
                goto done;
            }
            own[n] = strndup(argv[i], (size_t)(eq - argv[i]));
            if (!own[n]) {
                hy_cli_error(CMD, "out of memory");
                rc = HY_CLI_RUNTIME;
                goto done;
            }
            labels[n] = own[n];
            series[n++] = eq + 1;
        }
    }
    if (!png || !n) {
        hy_cli_error(CMD, "usage: hotyolo train --compare OUT.png [--metric mAP50|mAP50-95] LABEL=SERIES ...");
        rc = HY_CLI_USAGE;
        goto done;
    }
    if (hy_train_plot_compare(png, metric, n, labels, series) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    printf("%s\n", png);
done:
    for (int i = 0; i < n; i++) free(own[i]);
    return rc;
}

int hy_cli_train(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--compare")) return compare_cmd(argc, argv);
    char **owned = NULL;
    int n_owned = 0, nargc = 0;
    char **nargv = rewrite_kv(argc, argv, &nargc, &owned, &n_owned);
    if (!nargv) return HY_CLI_USAGE;
    train_cli c;
    memset(&c, 0, sizeof c);
    c.p = hy_train_default_params();
    int rc = HY_CLI_OK;
    const int pr = parse_args(nargc, nargv, &c);
    if (pr != 0) {
        rc = pr == 1 ? HY_CLI_OK : HY_CLI_USAGE;
        goto done;
    }
    if (c.p.data && access(c.p.data, R_OK) != 0) { // before the (slower) model load
        hy_cli_error(CMD, "--data: cannot read '%s': %s", c.p.data, strerror(errno));
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    if (c.p.model && access(c.p.model, R_OK) != 0) {
        hy_cli_error(CMD, "--model: cannot read '%s': %s", c.p.model, strerror(errno));
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    c.tty = isatty(fileno(stderr));
    c.p.on_start = on_start;
    c.p.on_batch = on_batch;
    c.p.on_epoch = on_epoch;
    c.p.user_data = &c;
    c.p.stop = &stop_flag;
    c.last_freeze = -1;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; // a second Ctrl-C ends the process at once
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    hy_train_result *r = NULL;
    const double t0 = (double)clock_now_ms();
    hy_status st = hy_train(&c.p, &r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    const double hours = ((double)clock_now_ms() - t0) / 3.6e6;
    if (hy_train_result_stopped(r)) {
        printf("\nInterrupted after %d completed epochs; last saved. Continue with: hotyolo train --resume %s\n",
               hy_train_result_num_epochs(r), hy_train_result_save_dir(r));
        rc = HY_CLI_INTERRUPTED;
    } else if (hy_train_result_early_stopped(r)) {
        printf("\nStopping training early as no improvement observed in last %d epochs. Best results observed at "
               "epoch %d.\n", c.p.patience, hy_train_result_best_epoch(r));
    }
    printf("\n%d epochs completed in %.3f hours.\n", hy_train_result_num_epochs(r), hours);
    printf("Results saved to %s\n", hy_train_result_save_dir(r));
    printf("last: %s\n", hy_train_result_last_path(r));
    if (hy_train_result_best_path(r))
        printf("best: %s (epoch %d)\n", hy_train_result_best_path(r), hy_train_result_best_epoch(r));
    hy_train_result_free(r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        hy_cli_error(CMD, "error writing to standard output");
        rc = HY_CLI_RUNTIME;
    }
done:
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(nargv);
    return rc;
}
