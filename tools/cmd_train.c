/* hotyolo train --model MODEL --data DATA.yaml : fine-tunes a YOLOv8 detector as Ultralytics
 * 8.0.172's `yolo detect train` (letterbox and horizontal flip only), printing a line per epoch
 * like Ultralytics' and the validation row; last.safetensors / best.safetensors under
 * PROJECT/NAME/weights. Ultralytics' key=value spelling (epochs=3) is accepted too. Exit 0 ok,
 * 1 runtime error (model, dataset, run folder), 2 usage error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotyolo/train.h"

#define CMD "train"

static void help(void) {
    printf(
        "Usage: hotyolo train --model MODEL --data DATA.yaml [options]\n"
        "       hotyolo train model=MODEL data=DATA.yaml epochs=N ...  (Ultralytics' spelling)\n"
        "\n"
        "Fine-tunes the YOLOv8 checkpoint MODEL (.pt, hotyolo .safetensors or .onnx) on the\n"
        "'train' split of a YOLO-format dataset as Ultralytics 8.0.172 'yolo detect train'\n"
        "does, with letterbox and horizontal flip as the only augmentation, validating the EMA\n"
        "weights on the 'val' split after each epoch (docs/training.md). The network is built\n"
        "for the dataset's classes; tensors of MODEL with the same name and shape are\n"
        "transferred, the others initialised (a new nc re-initialises the class outputs).\n"
        "Writes PROJECT/NAME/weights/last.safetensors after every epoch and best.safetensors\n"
        "when the fitness (0.1 mAP50 + 0.9 mAP50-95) improves.\n"
        "\n"
        "Options (a value may also be given as --option=VALUE, or as key=value):\n"
        "  --model FILE          weights to start from (required; also the first argument)\n"
        "  --data FILE           the dataset's data.yaml (required)\n"
        "  --epochs N            epochs, in [1, 100000] (default 100)\n"
        "  --imgsz N             square training size, a multiple of 32 in [32, 4096] (default 640)\n"
        "  --batch N             images per batch, in [1, 1024] (default 16)\n"
        "  --freeze K            freeze layers model.0 .. model.K-1 (default 0)\n"
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
        "  --seed N              seed of the shuffling and flips (default 0)\n"
        "  --device NAME         cpu, or ref (plain-C reference kernels; much slower) (default cpu)\n"
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
    O_QUIET
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
        if (!strcmp(key, "--workers")) continue; // DataLoader workers: one loader thread here
        size_t t = 0;
        while (t < N_OPTS && strcmp(table[t].name, key)) t++;
        if (t == N_OPTS || table[t].id == O_HELP || table[t].id == O_NO_VAL || table[t].id == O_QUIET) goto unknown;
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

typedef struct train_cli {
    hy_train_params p;
    int quiet, tty;
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
        }
    }
    if (!p->model) {
        hy_cli_error(CMD, "missing --model MODEL (see 'hotyolo train --help')");
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
    printf("Transferred %zu/%zu items from %s", in->transferred, in->n_tensors, p->model);
    if (in->initialized) printf(" (%zu initialised", in->initialized);
    if (in->ignored) printf("%s%zu of the file ignored", in->initialized ? ", " : " (", in->ignored);
    printf("%s\n", in->initialized || in->ignored ? ")" : "");
    printf("optimizer: %s(lr=%g, momentum=%g) weight_decay=%g, accumulate %d, warm-up %ld iterations\n",
           in->optimizer, in->lr, in->momentum, in->weight_decay, in->accumulate, in->warmup_iters);
    char b1[32], b2[32];
    printf("train: %zu images, %ld instances; val: %zu images, %ld instances; %s of %s parameters trainable "
           "(freeze %d)\n",
           in->train_images, in->train_instances, in->val_images, in->val_instances,
           hy_cli_thousands((long long)in->n_trainable, b1, sizeof b1),
           hy_cli_thousands((long long)in->n_params, b2, sizeof b2), p->freeze);
    char mb[32];
    printf("Image sizes %d train, %d val; training graph %s\n", p->imgsz, p->imgsz,
           hy_cli_size((double)in->graph_bytes, mb, sizeof mb));
    printf("Logging results to %s\nStarting training for %d epochs...\n", in->save_dir, p->epochs);
    fflush(stdout);
}

static void on_batch(const hy_train_progress *pr, void *user) {
    train_cli *c = user;
    c->last_instances = pr->instances;
    c->last_it_s = pr->it_s;
    if (c->quiet || !c->tty) return;
    char ep[32];
    snprintf(ep, sizeof ep, "%d/%d", pr->epoch, pr->epochs);
    fprintf(stderr, "\r%11s%11.4g%11.4g%11.4g%11d%11d  %d/%d %.2f it/s ", ep, pr->box_loss, pr->cls_loss,
            pr->dfl_loss, pr->instances, pr->size, pr->batch, pr->n_batches, pr->it_s);
    if (pr->batch == pr->n_batches) fputs("\r\033[K", stderr);
    fflush(stderr);
}

static void on_epoch(const hy_train_epoch *e, void *user) {
    train_cli *c = user;
    header(c);
    char ep[32];
    snprintf(ep, sizeof ep, "%d/%d", e->epoch, c->p.epochs);
    printf("%11s%11.4g%11.4g%11.4g%11d%11d%11.3g\n", ep, e->box_loss, e->cls_loss, e->dfl_loss, c->last_instances,
           c->p.imgsz, c->last_it_s);
    if (e->validated)
        printf("%22s%11s%11s%11s%11s\n%22s%11.3g%11.3g%11.3g%11.3g  fitness %.4f%s  (%.1f s train, %.1f s val)\n",
               "Box(P", "R", "mAP50", "mAP50-95)", "", "all", e->precision, e->recall, e->map50, e->map50_95,
               e->fitness, e->saved_best ? ", best" : "", e->train_s, e->val_s);
    fflush(stdout);
}

int hy_cli_train(int argc, char **argv) {
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
    if (access(c.p.data, R_OK) != 0) { // before the (slower) model load
        hy_cli_error(CMD, "--data: cannot read '%s': %s", c.p.data, strerror(errno));
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    if (access(c.p.model, R_OK) != 0) {
        hy_cli_error(CMD, "--model: cannot read '%s': %s", c.p.model, strerror(errno));
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    c.tty = isatty(fileno(stderr));
    c.p.on_start = on_start;
    c.p.on_batch = on_batch;
    c.p.on_epoch = on_epoch;
    c.p.user_data = &c;
    hy_train_result *r = NULL;
    const double t0 = (double)clock_now_ms();
    hy_status st = hy_train(&c.p, &r);
    if (st != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    const double hours = ((double)clock_now_ms() - t0) / 3.6e6;
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
