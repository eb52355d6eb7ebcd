/* hy_train: Ultralytics 8.0.172's BaseTrainer._do_train for detection, with letterbox and
 * horizontal flip as the only augmentation (docs/training.md):
 *   per epoch: zero the gradients; per batch i (ni = i + nb * epoch): warm-up / lr / momentum /
 *   accumulation for ni (hy__optim_begin_iter), forward in train mode, v8 loss, backward
 *   (gradients accumulate), every `accumulate` iterations an optimizer step (clip 10, step,
 *   zero) and an EMA update; then scheduler.step(), validation of the EMA weights on the val
 *   split, fitness 0.1 mAP50 + 0.9 mAP50-95, last.safetensors and (fitness improved)
 *   best.safetensors. The batch loader prepares batch i + 1 on its thread during step i. */
#include <errno.h>
#include <stdlib.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "core/sha256.h"
#include "hotyolo/train.h"
#include "hotyolo/val.h"
#include "io/safetensors.h"
#include "train/loader.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/results.h"
#include "train/state.h"
#include "train/tgraph.h"
#include "train/tmodel.h"

#define MAX_RUN_SUFFIX 9999
#define META_ARGS "hotyolo.train.args" /* the key that marks a file as one of our checkpoints */

struct hy_train_result {
    hy__device_choice dev; /* where the run trains (cpu after a fallback) */
    hy_train_epoch *rows; /* (n_rows) */
    int n_rows;
    int best_epoch;
    double best_fitness;
    char *save_dir, *last_path, *best_path;
    int best_written;
    hy_train_info info;
    char optimizer[8];
    hy__load_report report;
    char *state_path, *csv_path, *png_path;
    int stopped, early_stopped;
    char **warnings; /* (n_warnings) "split: file: problem" */
    size_t n_warnings;
};

hy_train_params hy_train_default_params(void) {
    hy_train_params p;
    memset(&p, 0, sizeof(p));
    p.epochs = 100;
    p.imgsz = 640;
    p.batch = 16;
    p.optimizer = "auto";
    p.lr0 = 0.01;
    p.lrf = 0.01;
    p.momentum = 0.937;
    p.weight_decay = 5e-4;
    p.warmup_epochs = 3.0;
    p.warmup_momentum = 0.8;
    p.warmup_bias_lr = 0.1;
    p.box = 7.5;
    p.cls = 0.5;
    p.dfl = 1.5;
    p.nbs = 64;
    p.fliplr = 0.5;
    p.hsv_h = 0.015;
    p.hsv_s = 0.7;
    p.hsv_v = 0.4;
    p.translate = 0.1;
    p.scale = 0.5;
    p.mosaic = 1.0;
    p.close_mosaic = 10;
    p.augment = 1;
    p.workers = 2;
    p.patience = 50;
    p.save_period = -1;
    p.val = 1;
    p.cache_bytes = (size_t)2 << 30;
    return p;
}

// --- result ------------------------------------------------------------------------------------

int hy_train_result_num_epochs(const hy_train_result *r) { return r ? r->n_rows : 0; }
const hy_train_epoch *hy_train_result_epoch(const hy_train_result *r, int i) {
    return r && i >= 0 && i < r->n_rows ? &r->rows[i] : NULL;
}
int hy_train_result_best_epoch(const hy_train_result *r) { return r ? r->best_epoch : 0; }
int hy_train_result_stopped(const hy_train_result *r) { return r ? r->stopped : 0; }
int hy_train_result_early_stopped(const hy_train_result *r) { return r ? r->early_stopped : 0; }
const char *hy_train_result_save_dir(const hy_train_result *r) { return r ? r->save_dir : NULL; }
const char *hy_train_result_last_path(const hy_train_result *r) { return r ? r->last_path : NULL; }
const char *hy_train_result_best_path(const hy_train_result *r) {
    return r && r->best_written ? r->best_path : NULL;
}
const hy_train_info *hy_train_result_info(const hy_train_result *r) { return r ? &r->info : NULL; }
size_t hy_train_result_load_count(const hy_train_result *r, hy_load_item what) {
    return r && what >= 0 && what < HY_LOAD_ITEM_COUNT ? r->report.lists[what].n : 0;
}
const char *hy_train_result_load_name(const hy_train_result *r, hy_load_item what, size_t i) {
    if (!r || what < 0 || what >= HY_LOAD_ITEM_COUNT || i >= r->report.lists[what].n) return NULL;
    return r->report.lists[what].items[i].name;
}
const char *hy_train_result_load_reason(const hy_train_result *r, hy_load_item what, size_t i) {
    if (!r || what < 0 || what >= HY_LOAD_ITEM_COUNT || i >= r->report.lists[what].n) return NULL;
    const char *s = r->report.lists[what].items[i].reason;
    return s ? s : "";
}
void hy_train_result_free(hy_train_result *r) {
    if (!r) return;
    hy__free(r->rows);
    hy__free(r->save_dir);
    hy__free(r->last_path);
    hy__free(r->best_path);
    hy__free(r->state_path);
    hy__free(r->csv_path);
    hy__free(r->png_path);
    for (size_t i = 0; i < r->n_warnings; i++) hy__free(r->warnings[i]);
    hy__free(r->warnings);
    hy__load_report_free(&r->report);
    hy__free(r);
}

// --- parameters --------------------------------------------------------------------------------

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static hy_status check_params(const hy_train_params *p) {
#define BAD(...) return hy__error(HY_ERR_INVALID_ARG, __VA_ARGS__)
    if ((!p->model || !p->model[0]) == (!p->arch || !p->arch[0]))
        BAD("train: one of model (weights to start from) or arch (a network from scratch) is required");
    if (!p->data || !p->data[0]) BAD("train: data (a data.yaml) is required");
    if (p->epochs < 1 || p->epochs > 100000) BAD("epochs %d: must be in [1, 100000]", p->epochs);
    if (p->imgsz < 32 || p->imgsz > 4096 || p->imgsz % 32) BAD("imgsz %d: must be a multiple of 32 in [32, 4096]", p->imgsz);
    if (p->batch < 1 || p->batch > 1024) BAD("batch %d: must be in [1, 1024]", p->batch);
    if (p->freeze < 0 || p->freeze > 1000) BAD("freeze %d: must be in [0, 1000]", p->freeze);
    hy__device_req dr;
    if (hy__device_parse(p->device, &dr)) return HY_ERR_INVALID_ARG;
    const char *o = p->optimizer ? p->optimizer : "auto";
    if (strcmp(o, "auto") && strcmp(o, "SGD") && strcmp(o, "Adam") && strcmp(o, "AdamW"))
        return hy__error(HY_ERR_UNSUPPORTED, "optimizer '%s': must be SGD, Adam, AdamW or auto", o);
    if (!finite_in(p->lr0, 1e-12, 10)) BAD("lr0 %g: must be in (0, 10]", p->lr0);
    if (!finite_in(p->lrf, 0, 1)) BAD("lrf %g: must be in [0, 1]", p->lrf);
    if (!finite_in(p->momentum, 0, 0.999999)) BAD("momentum %g: must be in [0, 1)", p->momentum);
    if (!finite_in(p->weight_decay, 0, 1)) BAD("weight_decay %g: must be in [0, 1]", p->weight_decay);
    if (!finite_in(p->warmup_epochs, 0, 1e6)) BAD("warmup_epochs %g: must be >= 0", p->warmup_epochs);
    if (!finite_in(p->warmup_momentum, 0, 0.999999)) BAD("warmup_momentum %g: must be in [0, 1)", p->warmup_momentum);
    if (!finite_in(p->warmup_bias_lr, 0, 10)) BAD("warmup_bias_lr %g: must be in [0, 10]", p->warmup_bias_lr);
    if (!finite_in(p->box, 0, 1e6) || !finite_in(p->cls, 0, 1e6) || !finite_in(p->dfl, 0, 1e6))
        BAD("loss gains box %g, cls %g, dfl %g: must be >= 0", p->box, p->cls, p->dfl);
    if (p->nbs < 1 || p->nbs > 65536) BAD("nbs %d: must be in [1, 65536]", p->nbs);
    if (!finite_in(p->fliplr, 0, 1)) BAD("fliplr %g: must be in [0, 1]", p->fliplr);
    if (!finite_in(p->flipud, 0, 1)) BAD("flipud %g: must be in [0, 1]", p->flipud);
    if (!finite_in(p->mosaic, 0, 1)) BAD("mosaic %g: must be in [0, 1]", p->mosaic);
    if (!finite_in(p->hsv_h, 0, 1) || !finite_in(p->hsv_s, 0, 1) || !finite_in(p->hsv_v, 0, 1))
        BAD("hsv_h %g, hsv_s %g, hsv_v %g: must be in [0, 1]", p->hsv_h, p->hsv_s, p->hsv_v);
    if (!finite_in(p->degrees, 0, 180)) BAD("degrees %g: must be in [0, 180]", p->degrees);
    if (!finite_in(p->translate, 0, 0.5)) BAD("translate %g: must be in [0, 0.5]", p->translate);
    if (!finite_in(p->scale, 0, 0.95)) BAD("scale %g: must be in [0, 0.95]", p->scale);
    if (!finite_in(p->shear, 0, 45)) BAD("shear %g: must be in [0, 45]", p->shear);
    if (!finite_in(p->perspective, 0, 0.001)) BAD("perspective %g: must be in [0, 0.001]", p->perspective);
    if (p->close_mosaic < 0 || p->close_mosaic > 100000) BAD("close_mosaic %d: must be in [0, 100000]", p->close_mosaic);
    if (p->workers < 0 || p->workers > 64) BAD("workers %d: must be in [0, 64]", p->workers);
    if (p->patience < 0 || p->patience > 100000) BAD("patience %d: must be in [0, 100000]", p->patience);
    if (p->save_period > 100000) BAD("save_period %d: must be at most 100000", p->save_period);
    if (p->n_unfreeze < 0 || p->n_unfreeze > HY_TRAIN_MAX_UNFREEZE)
        BAD("unfreeze: %d stages (at most %d)", p->n_unfreeze, HY_TRAIN_MAX_UNFREEZE);
    for (int i = 0; i < p->n_unfreeze; i++) {
        if (p->unfreeze[i].epoch < 1 || p->unfreeze[i].epoch > p->epochs)
            BAD("unfreeze_at %d:%d: the epoch must be in [1, epochs %d]", p->unfreeze[i].epoch, p->unfreeze[i].freeze,
                p->epochs);
        if (p->unfreeze[i].freeze < 0 || p->unfreeze[i].freeze > 1000)
            BAD("unfreeze_at %d:%d: the layer count must be in [0, 1000]", p->unfreeze[i].epoch, p->unfreeze[i].freeze);
    }
    if (p->n_threads < 0 || p->n_threads > 256) BAD("threads %d: must be in [0, 256]", p->n_threads);
    if (p->project && !p->project[0]) BAD("project: empty path");
    if (p->name && (!p->name[0] || strchr(p->name, '/') || !strcmp(p->name, ".") || !strcmp(p->name, "..")))
        BAD("name '%s': must be a folder name (no '/')", p->name);
#undef BAD
    return HY_OK;
}

// --- run folder --------------------------------------------------------------------------------

/* mkdir -p; a part that exists and is not a folder is an error naming it. */
static hy_status mkdirs(const char *what, const char *dir) {
    char *buf = hy__strdup(dir);
    if (!buf) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy_status st = HY_OK;
    for (char *q = buf + 1;; q++) {
        const int end = *q == 0;
        if (*q != '/' && !end) continue;
        *q = 0;
        struct stat sb;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            st = hy__error(HY_ERR_IO, "%s '%s': cannot create '%s': %s", what, dir, buf, strerror(errno));
            break;
        }
        if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            st = hy__error(HY_ERR_IO, "%s '%s': '%s' exists and is not a folder", what, dir, buf);
            break;
        }
        if (end) break;
        *q = '/';
        while (q[1] == '/') q++;
    }
    hy__free(buf);
    return st;
}

static char *join(const char *a, const char *b) {
    const size_t n = strlen(a) + strlen(b) + 2;
    char *s = hy__malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, a[0] && a[strlen(a) - 1] == '/' ? "" : "/", b);
    return s;
}

/* A file we may overwrite: absent, or a safetensors file with our training record. */
static hy_status check_ours(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? HY_OK : hy__error(HY_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        hy__st_file *f = NULL;
        int ours = hy__st_open(path, 0, &f) == HY_OK && hy__st_meta(f, META_ARGS) != NULL;
        hy__st_close(f);
        if (ours) return HY_OK;
    }
    return hy__error(HY_ERR_IO, "%s: exists and is not a hotyolo training checkpoint; not overwritten (choose another "
                                "name, or leave out exist_ok)",
                     path);
}

/* Ultralytics' increment_path: PROJECT/NAME, else NAME2, NAME3, ... (exist_ok: NAME as it is),
 * created here (mkdir: no race with another run taking the same name). */
static hy_status make_run_dir(const hy_train_params *p, hy_train_result *r) {
    const char *project = p->project ? p->project : "runs/detect", *name = p->name ? p->name : "train";
    hy_status st = mkdirs("project", project);
    if (st) return st;
    char *base = join(project, name), *dir = NULL;
    if (!base) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (int k = 1; k <= MAX_RUN_SUFFIX && !dir; k++) {
        char *d = base;
        if (k > 1) {
            const size_t n = strlen(base) + 16;
            if (!(d = hy__malloc(n))) break;
            snprintf(d, n, "%s%d", base, k);
        }
        if (mkdir(d, 0777) == 0) {
            dir = d;
            break;
        }
        const int err = errno;
        struct stat sb;
        if (err == EEXIST && p->exist_ok) {
            if (stat(d, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                dir = d;
                break;
            }
            st = hy__error(HY_ERR_IO, "run folder '%s' exists and is not a folder", d);
        } else if (err != EEXIST) {
            st = hy__error(HY_ERR_IO, "run folder '%s': %s", d, strerror(err));
        }
        if (d != base) hy__free(d);
        if (st) break;
    }
    if (dir != base) hy__free(base);
    if (!dir) return st ? st : hy__error(HY_ERR_IO, "run folder: no free name after %s%d", name, MAX_RUN_SUFFIX);
    r->save_dir = dir;
    char *wdir = join(dir, "weights");
    if (!wdir) return hy__error(HY_ERR_NOMEM, "out of memory");
    if (!(st = mkdirs("run folder", wdir))) {
        r->last_path = join(wdir, "last.safetensors");
        r->best_path = join(wdir, "best.safetensors");
        if (!r->last_path || !r->best_path) st = hy__error(HY_ERR_NOMEM, "out of memory");
    }
    hy__free(wdir);
    if (!st) st = check_ours(r->last_path);
    if (!st) st = check_ours(r->best_path);
    return st;
}

// --- training record ---------------------------------------------------------------------------

static int jadd(json_object *o, const char *k, json_object *v) { return !v || json_object_object_add(o, k, v); }
static json_object *jstr(const char *s) { return s ? json_object_new_string(s) : NULL; }
/* A double serialised with 8 significant digits (not json-c's 17). */
static json_object *jnum(double v) {
    char buf[32];
    if (!isfinite(v)) v = 0.0;
    snprintf(buf, sizeof buf, "%.8g", v);
    return json_object_new_double_s(v, buf);
}

static json_object *args_json(const hy_train_params *p) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    int e = 0;
    /* json-c's null is a NULL object */
    e |= p->model ? jadd(o, "model", jstr(p->model)) : json_object_object_add(o, "model", NULL) != 0;
    e |= p->arch ? jadd(o, "arch", jstr(p->arch)) : json_object_object_add(o, "arch", NULL) != 0;
    e |= jadd(o, "data", jstr(p->data));
    e |= jadd(o, "epochs", json_object_new_int(p->epochs));
    e |= jadd(o, "imgsz", json_object_new_int(p->imgsz));
    e |= jadd(o, "batch", json_object_new_int(p->batch));
    e |= jadd(o, "freeze", json_object_new_int(p->freeze));
    json_object *uf = json_object_new_array();
    for (int i = 0; uf && i < p->n_unfreeze; i++) {
        char b[32];
        snprintf(b, sizeof b, "%d:%d", p->unfreeze[i].epoch, p->unfreeze[i].freeze);
        e |= json_object_array_add(uf, json_object_new_string(b)) != 0;
    }
    e |= jadd(o, "unfreeze_at", uf);
    e |= jadd(o, "optimizer", jstr(p->optimizer ? p->optimizer : "auto"));
    e |= jadd(o, "lr0", jnum(p->lr0));
    e |= jadd(o, "lrf", jnum(p->lrf));
    e |= jadd(o, "momentum", jnum(p->momentum));
    e |= jadd(o, "weight_decay", jnum(p->weight_decay));
    e |= jadd(o, "warmup_epochs", jnum(p->warmup_epochs));
    e |= jadd(o, "warmup_momentum", jnum(p->warmup_momentum));
    e |= jadd(o, "warmup_bias_lr", jnum(p->warmup_bias_lr));
    e |= jadd(o, "box", jnum(p->box));
    e |= jadd(o, "cls", jnum(p->cls));
    e |= jadd(o, "dfl", jnum(p->dfl));
    e |= jadd(o, "cos_lr", json_object_new_boolean(p->cos_lr != 0));
    e |= jadd(o, "nbs", json_object_new_int(p->nbs));
    e |= jadd(o, "fliplr", jnum(p->fliplr));
    e |= jadd(o, "flipud", jnum(p->flipud));
    e |= jadd(o, "hsv_h", jnum(p->hsv_h));
    e |= jadd(o, "hsv_s", jnum(p->hsv_s));
    e |= jadd(o, "hsv_v", jnum(p->hsv_v));
    e |= jadd(o, "degrees", jnum(p->degrees));
    e |= jadd(o, "translate", jnum(p->translate));
    e |= jadd(o, "scale", jnum(p->scale));
    e |= jadd(o, "shear", jnum(p->shear));
    e |= jadd(o, "perspective", jnum(p->perspective));
    e |= jadd(o, "mosaic", jnum(p->mosaic));
    e |= jadd(o, "close_mosaic", json_object_new_int(p->close_mosaic));
    e |= jadd(o, "augment", json_object_new_boolean(p->augment != 0));
    e |= jadd(o, "workers", json_object_new_int(p->workers));
    e |= jadd(o, "patience", json_object_new_int(p->patience));
    e |= jadd(o, "save_period", json_object_new_int(p->save_period));
    e |= jadd(o, "cache_bytes", json_object_new_int64((int64_t)p->cache_bytes));
    e |= jadd(o, "seed", json_object_new_int64((int64_t)p->seed));
    e |= jadd(o, "device", jstr(p->device ? p->device : "cpu"));
    e |= jadd(o, "threads", json_object_new_int(p->n_threads));
    e |= jadd(o, "project", jstr(p->project ? p->project : "runs/detect"));
    e |= jadd(o, "name", jstr(p->name ? p->name : "train"));
    e |= jadd(o, "exist_ok", json_object_new_boolean(p->exist_ok != 0));
    e |= jadd(o, "val", json_object_new_boolean(p->val != 0));
    if (e) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *epoch_json(const hy_train_epoch *r) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    int e = 0;
    e |= jadd(o, "epoch", json_object_new_int(r->epoch));
    e |= jadd(o, "train/box_loss", jnum(r->box_loss));
    e |= jadd(o, "train/cls_loss", jnum(r->cls_loss));
    e |= jadd(o, "train/dfl_loss", jnum(r->dfl_loss));
    e |= jadd(o, "validated", json_object_new_boolean(r->validated != 0));
    e |= jadd(o, "metrics/precision(B)", jnum(r->precision));
    e |= jadd(o, "metrics/recall(B)", jnum(r->recall));
    e |= jadd(o, "metrics/mAP50(B)", jnum(r->map50));
    e |= jadd(o, "metrics/mAP50-95(B)", jnum(r->map50_95));
    e |= jadd(o, "fitness", jnum(r->fitness));
    e |= jadd(o, "lr/pg0", jnum(r->lr[0]));
    e |= jadd(o, "lr/pg1", jnum(r->lr[1]));
    e |= jadd(o, "lr/pg2", jnum(r->lr[2]));
    if (r->has_val_loss) {
        e |= jadd(o, "val/box_loss", jnum(r->val_box_loss));
        e |= jadd(o, "val/cls_loss", jnum(r->val_cls_loss));
        e |= jadd(o, "val/dfl_loss", jnum(r->val_dfl_loss));
    }
    e |= jadd(o, "freeze", json_object_new_int(r->freeze));
    e |= jadd(o, "mosaic", json_object_new_boolean(r->mosaic != 0));
    e |= jadd(o, "instances", json_object_new_int64(r->instances));
    e |= jadd(o, "train_s", jnum(r->train_s));
    e |= jadd(o, "val_s", jnum(r->val_s));
    e |= jadd(o, "seconds", jnum(r->seconds));
    e |= jadd(o, "saved_best", json_object_new_boolean(r->saved_best != 0));
    if (e) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

typedef struct run_record {
    json_object *args;
    char model_sha[HY_SHA256_HEX_LEN + 1], data_sha[HY_SHA256_HEX_LEN + 1], dataset_sha[HY_SHA256_HEX_LEN + 1];
    const char *status; /* "running", "finished", "stopped" (interrupted), "early_stopped" (patience) */
    char date[32];
    int imgsz;
} run_record;

/* The __metadata__ keys of a checkpoint after epoch `epoch` (docs/training.md). */
static char *record_json(const run_record *rec, const hy_train_result *r, int epoch, int epochs) {
    json_object *o = json_object_new_object(), *rows = json_object_new_array(), *opt = json_object_new_object();
    char *out = NULL;
    int e = !o || !rows || !opt;
    for (int i = 0; i < r->n_rows && !e; i++) e |= json_object_array_add(rows, epoch_json(&r->rows[i])) != 0;
    if (!e) {
        e |= jadd(opt, "name", jstr(r->optimizer));
        e |= jadd(opt, "lr", jnum(r->info.lr));
        e |= jadd(opt, "momentum", jnum(r->info.momentum));
        e |= jadd(opt, "weight_decay", jnum(r->info.weight_decay));
        e |= jadd(opt, "warmup_bias_lr", jnum(r->info.warmup_bias_lr));
        e |= jadd(opt, "accumulate", json_object_new_int(r->info.accumulate));
        e |= jadd(opt, "warmup_iters", json_object_new_int64(r->info.warmup_iters));
    }
    if (!e) {
        char buf[32];
        e |= jadd(o, META_ARGS, json_object_get(rec->args));
        snprintf(buf, sizeof buf, "%d", epoch);
        e |= jadd(o, "hotyolo.train.epoch", jstr(buf));
        snprintf(buf, sizeof buf, "%d", epochs);
        e |= jadd(o, "hotyolo.train.epochs", jstr(buf));
        snprintf(buf, sizeof buf, "%d", r->best_epoch);
        e |= jadd(o, "hotyolo.train.best_epoch", jstr(buf));
        snprintf(buf, sizeof buf, "%.6g", r->best_epoch ? r->best_fitness : 0.0);
        e |= jadd(o, "hotyolo.train.best_fitness", jstr(buf));
        e |= jadd(o, "hotyolo.train.results", rows);
        rows = NULL;
        e |= jadd(o, "hotyolo.train.optimizer", opt);
        opt = NULL;
        snprintf(buf, sizeof buf, "%d", rec->imgsz);
        e |= jadd(o, "hotyolo.train.imgsz", jstr(buf));
        e |= jadd(o, "hotyolo.train.weights", jstr("ema"));
        e |= jadd(o, "hotyolo.train.data_sha256", jstr(rec->data_sha));
        e |= jadd(o, "hotyolo.train.dataset_sha256", jstr(rec->dataset_sha));
        e |= jadd(o, "hotyolo.train.status", jstr(rec->status));
        if (rec->model_sha[0]) e |= jadd(o, "hotyolo.source_sha256", jstr(rec->model_sha));
        e |= jadd(o, "hotyolo.train.date", jstr(rec->date));
        e |= jadd(o, "hotyolo.train.version", jstr(hy_version()));
    }
    if (!e) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        out = s ? hy__strdup(s) : NULL;
    }
    json_object_put(rows);
    json_object_put(opt);
    json_object_put(o);
    return out;
}

static hy_status save_ckpt(const hy__tmodel *tm, const float *data, const char *path, const run_record *rec,
                           const hy_train_result *r, int epoch, int epochs) {
    char *meta = record_json(rec, r, epoch, epochs);
    if (!meta) return hy__error(HY_ERR_NOMEM, "%s: out of memory (training record)", path);
    hy_status st = hy__tmodel_save(tm, data, path, meta);
    hy__free(meta);
    return st;
}

// --- the loop ----------------------------------------------------------------------------------

static double now_s(void) { return hy__now_ms() / 1000.0; }

static const char *opt_name(int kind) {
    return kind == HY_OPT_SGD ? "SGD" : kind == HY_OPT_ADAM ? "Adam" : kind == HY_OPT_ADAMW ? "AdamW" : "?";
}

/* Frozen prefix during 0-based epoch e: freeze, then each --unfreeze-at E:K with E <= e + 1
 * (the latest E wins; among equal E the last given). */
static int freeze_at(const hy_train_params *p, int e) {
    int k = p->freeze, at = 0;
    for (int i = 0; i < p->n_unfreeze; i++)
        if (p->unfreeze[i].epoch <= e + 1 && p->unfreeze[i].epoch >= at) {
            at = p->unfreeze[i].epoch;
            k = p->unfreeze[i].freeze;
        }
    return k;
}

/* Applies freeze k to the model, the optimizer's parameter list and (opt may be NULL) the
 * optimizer; returns the trainable floats. */
static size_t apply_freeze(hy__tmodel *tm, hy__oparam *op, hy__optim *opt, int k) {
    hy__tmodel_set_freeze(tm, k);
    size_t n = 0;
    for (int i = 0, j = 0; i < tm->n_st; i++) {
        if (tm->st[i].group == HY_PG_BUFFER) continue;
        if (op) op[j].trainable = tm->st[i].trainable;
        if (opt) hy__optim_set_trainable(opt, j, tm->st[i].trainable);
        if (tm->st[i].trainable) n += tm->st[i].numel;
        j++;
    }
    return n;
}

/* "yolov8n" or "yolov8n.yaml" -> that family's variant with nc classes. */
static hy_status arch_cfg_from_name(const char *name, int nc, hy__arch_cfg *cfg) {
    char buf[64];
    const size_t n = strlen(name);
    if (n >= sizeof buf) return hy__error(HY_ERR_INVALID_ARG, "arch '%s': unknown", name);
    memcpy(buf, name, n + 1);
    if (n > 5 && !strcmp(buf + n - 5, ".yaml")) buf[n - 5] = 0;
    for (int i = 0; hy__arch_table[i]; i++) {
        const hy__arch *a = hy__arch_table[i];
        const size_t al = strlen(a->name);
        if (strncmp(buf, a->name, al) || !buf[al] || !a->cfg_for_variant) continue;
        if (a->cfg_for_variant(buf + al, nc, cfg) == HY_OK) return HY_OK;
        return hy__error(HY_ERR_INVALID_ARG, "arch '%s': %s has variants %s (e.g. %sn)", name, a->title, a->variants,
                         a->name);
    }
    return hy__error(HY_ERR_INVALID_ARG, "arch '%s': unknown (known: yolov8n, yolov8s, yolov8m, yolov8l, yolov8x)",
                     name);
}

/* sha256 over what the run trained and validated on: per image of both splits, its path
 * relative to the dataset root, its size in bytes and its parsed labels (class, xywh as
 * float32). Edits to labels or image files that change their size change it (as Ultralytics'
 * get_hash of paths and sizes, plus the labels). */
static hy_status dataset_hash(const hy__val_dataset *const *dsets, int n_dsets, char hex[HY_SHA256_HEX_LEN + 1]) {
    hy__sha256_ctx h;
    hy_status st = hy__sha256_init(&h);
    if (st) return st;
    for (int k = 0; k < n_dsets; k++) {
        const hy__val_dataset *d = dsets[k];
        const size_t rl = strlen(d->root);
        for (size_t i = 0; i < d->n; i++) {
            const hy__val_item *it = &d->items[i];
            const char *rel = strncmp(it->im_file, d->root, rl) == 0 ? it->im_file + rl : it->im_file;
            while (*rel == '/') rel++;
            struct stat sb;
            int64_t size = stat(it->im_file, &sb) == 0 ? (int64_t)sb.st_size : -1;
            int32_t nl = it->n_labels;
            hy__sha256_update(&h, rel, strlen(rel) + 1);
            hy__sha256_update(&h, &size, sizeof size);
            hy__sha256_update(&h, &nl, sizeof nl);
            for (int j = 0; j < it->n_labels; j++) {
                const hy__val_label *l = &it->labels[j];
                const int32_t c = l->cls;
                const float xywh[4] = {l->x, l->y, l->w, l->h};
                hy__sha256_update(&h, &c, sizeof c);
                hy__sha256_update(&h, xywh, sizeof xywh);
            }
        }
        hy__sha256_update(&h, "\n", 1);
    }
    uint8_t dig[HY_SHA256_LEN];
    if ((st = hy__sha256_final(&h, dig))) return st;
    hy__sha256_hex(dig, hex);
    return HY_OK;
}

/* The run folder of a --resume argument: the folder itself, or PROJECT/NAME of
 * PROJECT/NAME/weights/<file>. */
static char *resume_dir(const char *arg) {
    struct stat sb;
    const size_t n = strlen(arg);
    if ((stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) || n < 12 || strcmp(arg + n - 12, ".safetensors"))
        return hy__strdup(arg);
    char *d = hy__strdup(arg);
    if (!d) return NULL;
    char *sl = strrchr(d, '/');
    if (!sl) {
        strcpy(d, "..");
        return d;
    }
    *sl = 0; // .../weights
    sl = strrchr(d, '/');
    if (!sl) {
        strcpy(d, ".");
        return d;
    }
    *sl = 0;
    return d;
}

static hy_status add_warnings(hy_train_result *r, const hy__val_dataset *d, const char *split) {
    for (size_t i = 0; i < d->n_warnings; i++) {
        if (r->n_warnings % 64 == 0) {
            char **w = hy__realloc(r->warnings, (r->n_warnings + 64) * sizeof *w);
            if (!w) return hy__error(HY_ERR_NOMEM, "out of memory");
            r->warnings = w;
        }
        const size_t n = strlen(d->warnings[i]) + strlen(split) + 4;
        char *s = hy__malloc(n);
        if (!s) return hy__error(HY_ERR_NOMEM, "out of memory");
        snprintf(s, n, "%s: %s", split, d->warnings[i]);
        r->warnings[r->n_warnings++] = s;
    }
    return HY_OK;
}

/* Validation losses of the EMA weights (swapped into the model for eval-mode forwards) over the
 * val split, letterboxed square at imgsz in batches of the training graph's size, averaged
 * over batches as Ultralytics' validator (its batches are rect and twice as large). */
static hy_status val_losses(hy__tmodel *tm, const float *ema, float *saved, hy__tgraph *g, hy__tloader *lv, int S,
                            hy__v8loss *loss, float *x, float *tg, hy__threadpool *tp, double out[3]) {
    const int nb = hy__tloader_num_batches(lv), gn = hy__tgraph_levels(g);
    const size_t img = (size_t)3 * (size_t)S * (size_t)S;
    memcpy(saved, tm->data, tm->n_floats * sizeof(float));
    memcpy(tm->data, ema, tm->n_floats * sizeof(float));
    hy_status st = HY_OK;
    double sum[3] = {0, 0, 0};
    for (int b = 0; b < nb && !st; b++) {
        int n_t = 0;
        const int n = hy__tloader_batch_size(lv, b);
        float *in = hy__tgraph_input(g);
        if ((st = hy__tloader_fill(lv, 0, b, x, tg, &n_t))) break;
        memcpy(in, x, (size_t)n * img * sizeof(float));
        if ((st = hy__tgraph_forward(g, 0))) break;
        hy__tview pv[4];
        for (int l = 0; l < gn && l < 4; l++) {
            pv[l] = hy__tgraph_output(g, l);
            pv[l].n = n; // padding images of a short last batch are left out
        }
        hy__v8loss_out lo;
        if ((st = hy__v8loss_compute(loss, pv, tg, n_t, &lo, NULL, tp))) break;
        sum[0] += lo.box;
        sum[1] += lo.cls;
        sum[2] += lo.dfl;
    }
    memcpy(tm->data, saved, tm->n_floats * sizeof(float));
    for (int k = 0; k < 3; k++) out[k] = nb ? sum[k] / nb : 0.0;
    return st;
}

hy_status hy_train(const hy_train_params *pin, hy_train_result **out) {
    if (!pin || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_train: params and out are required");
    hy_train_params P = *pin, *p = &P;
    hy_status st = HY_OK;
    hy_train_result *r = NULL;
    hy__val_dataset *ds = NULL, *dv = NULL;
    hy__tmodel *tm = NULL;
    hy__threadpool *tp = NULL;
    hy__tgraph *g_full = NULL, *g_last = NULL;
    hy__v8loss *loss = NULL;
    hy__oparam *op = NULL;
    hy__optim *opt = NULL;
    hy__ema *ema = NULL;
    hy__tloader *ld = NULL, *lv = NULL;
    hy__st_file *sf = NULL;
    json_object *rargs = NULL;
    float *xs[2] = {NULL, NULL}, *ts[2] = {NULL, NULL}, *saved = NULL;
    char *rdir = NULL;
    run_record rec = {.imgsz = 0, .status = "running"};
    hy__resume_info ri;
    memset(&ri, 0, sizeof ri);
    int start = 0;

    if (!(r = hy__calloc(1, sizeof *r))) return hy__error(HY_ERR_NOMEM, "out of memory");
    if (pin->resume) {
        // the run's own arguments and state (weights/state.safetensors, written after each epoch)
        if (!pin->resume[0]) {
            st = hy__error(HY_ERR_INVALID_ARG, "resume: empty path");
            goto fail;
        }
        if (!(rdir = resume_dir(pin->resume)) || !(r->save_dir = hy__strdup(rdir)) ||
            !(r->state_path = join(rdir, "weights/state.safetensors")) ||
            !(r->last_path = join(rdir, "weights/last.safetensors")) ||
            !(r->best_path = join(rdir, "weights/best.safetensors"))) {
            st = hy__error(HY_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (access(r->state_path, F_OK) != 0) {
            hy__st_file *lf = NULL;
            const char *stt = NULL;
            if (hy__st_open(r->last_path, 0, &lf) == HY_OK) stt = hy__st_meta(lf, "hotyolo.train.status");
            if (stt && (!strcmp(stt, "finished") || !strcmp(stt, "early_stopped")))
                st = hy__error(HY_ERR_INVALID_ARG, "resume %s: the run is %s; nothing to resume (start a new run from "
                                                   "its weights instead)", pin->resume, stt);
            else
                st = hy__error(HY_ERR_IO, "resume %s: no training state %s (written after each completed epoch)",
                               pin->resume, r->state_path);
            hy__st_close(lf);
            goto fail;
        }
        if ((st = hy__st_open(r->state_path, 1, &sf))) goto fail;
        const char *a = hy__st_meta(sf, META_ARGS);
        if (!a || !(rargs = json_tokener_parse(a)) || !json_object_is_type(rargs, json_type_object)) {
            st = hy__error(HY_ERR_FORMAT, "%s: no readable %s record", r->state_path, META_ARGS);
            goto fail;
        }
        if ((st = hy__resume_args(rargs, r->state_path, p))) goto fail;
        if ((st = hy__resume_read_info(sf, &ri))) goto fail;
        if (ri.epoch >= p->epochs) {
            st = hy__error(HY_ERR_INVALID_ARG, "resume %s: all %d epochs are done; nothing to resume", pin->resume,
                           p->epochs);
            goto fail;
        }
        start = ri.epoch;
        p->resume = pin->resume;
        const char *ms = hy__st_meta(sf, "hotyolo.source_sha256"), *dt = hy__st_meta(sf, "hotyolo.train.date");
        if (ms && strlen(ms) == HY_SHA256_HEX_LEN) memcpy(rec.model_sha, ms, HY_SHA256_HEX_LEN + 1);
        if (dt) snprintf(rec.date, sizeof rec.date, "%s", dt);
    }
    if ((st = check_params(p))) goto fail;
    const int B = p->batch, S = p->imgsz;
    rec.imgsz = S;
    if (!(r->rows = hy__calloc((size_t)p->epochs, sizeof *r->rows))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    // dataset: train split trained, val split validated (checked now, loaded again by hy_val_run)
    if ((st = hy__val_dataset_load(p->data, "train", &ds))) goto fail;
    if ((st = hy__val_dataset_load(p->data, "val", &dv))) goto fail;
    if (ds->nc < 1) {
        st = hy__error(HY_ERR_FORMAT, "%s: no class names", p->data);
        goto fail;
    }
    if ((st = hy__threadpool_create(p->n_threads, &tp))) goto fail;
    {
        size_t gone = 0;
        if ((st = hy__val_dataset_verify_decode(ds, tp, &gone)) || (st = hy__val_dataset_verify_decode(dv, tp, &gone)))
            goto fail;
    }
    if (ds->n == 0 || dv->n == 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: the %s split has no usable image (%zu skipped: %s)", p->data,
                       ds->n == 0 ? "train" : "val", ds->n == 0 ? ds->n_warnings : dv->n_warnings,
                       (ds->n == 0 ? ds : dv)->n_warnings ? (ds->n == 0 ? ds : dv)->warnings[0] : "no images");
        goto fail;
    }
    if ((st = add_warnings(r, ds, "train")) || (st = add_warnings(r, dv, "val"))) goto fail;
    {
        const hy__val_dataset *both[2] = {ds, dv};
        if ((st = dataset_hash(both, 2, rec.dataset_sha))) goto fail;
    }
    // model: built for the data's classes; from a checkpoint (same-name same-shape tensors
    // transferred, the rest initialised, as Ultralytics' get_model + load), from scratch, or
    // (resume) the run's own network, its weights then replaced by the saved state
    if (p->resume) {
        if ((st = hy__tmodel_load(r->last_path, ds->nc, ds->names, 0, &tm))) goto fail;
    } else if (p->arch) {
        hy__arch_cfg cfg;
        if ((st = arch_cfg_from_name(p->arch, ds->nc, &cfg))) goto fail;
        if ((st = hy__tmodel_create(&cfg, ds->names, p->seed, &tm))) goto fail;
    } else {
        if ((st = hy__tmodel_load(p->model, ds->nc, ds->names, 1, &tm))) goto fail;
        if (tm->report.lists[HY_LOAD_TRANSFERRED].n == 0) {
            st = hy__error(HY_ERR_MISMATCH, "%s: no tensor of it fits the network (nothing to fine-tune from; --arch "
                                            "trains from scratch)", p->model);
            goto fail;
        }
    }
    if (!tm->cfg.arch->trainable) { /* before the run folder: a refused run leaves nothing */
        st = hy__error(HY_ERR_UNSUPPORTED, "%s: training %s is not supported yet (hotyolo train has YOLOv8's loss and "
                                           "gradients; %s detects, validates and exports)",
                       p->arch ? p->arch : p->model, tm->cfg.arch->title, tm->cfg.arch->title);
        goto fail;
    }
    tm->imgsz = S; /* saved as hotyolo.imgsz: detect and val default to the training size */
    size_t n_params = 0;
    int n_op = 0;
    for (int i = 0; i < tm->n_st; i++)
        if (tm->st[i].group != HY_PG_BUFFER) {
            n_params += tm->st[i].numel;
            n_op++;
        }
    // every stage of the freezing schedule must leave something to train
    for (int e = start; e < p->epochs; e++)
        if (apply_freeze(tm, NULL, NULL, freeze_at(p, e)) == 0) {
            st = hy__error(HY_ERR_INVALID_ARG, "freeze %d (epoch %d): every layer is frozen, nothing to train",
                           freeze_at(p, e), e + 1);
            goto fail;
        }
    const size_t n_trainable = apply_freeze(tm, NULL, NULL, freeze_at(p, start));
    if (!p->resume && p->model && (st = hy__sha256_file(p->model, rec.model_sha))) goto fail;
    if ((st = hy__sha256_file(p->data, rec.data_sha))) goto fail;
    if (!(rec.args = args_json(p))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* the loaders bound the labels per image: a refused dataset leaves no run folder */
    hy__tloader_params tlp = hy__tloader_default_params();
    tlp.imgsz = S;
    tlp.batch = B;
    tlp.fliplr = p->fliplr;
    tlp.seed = p->seed;
    tlp.cache_bytes = p->cache_bytes;
    tlp.augment = p->augment;
    tlp.hsv_h = p->hsv_h;
    tlp.hsv_s = p->hsv_s;
    tlp.hsv_v = p->hsv_v;
    tlp.degrees = p->degrees;
    tlp.translate = p->translate;
    tlp.scale = p->scale;
    tlp.shear = p->shear;
    tlp.perspective = p->perspective;
    tlp.flipud = p->flipud;
    tlp.mosaic = p->mosaic;
    tlp.close_mosaic = p->close_mosaic;
    tlp.epochs = p->epochs;
    tlp.workers = p->workers > 0 ? p->workers : 1;
    if ((st = hy__tloader_create(ds, &tlp, &ld))) goto fail;
    const size_t N = ds->n;
    const int nb = (int)((N + (size_t)B - 1) / (size_t)B), n_last = (int)(N - (size_t)(nb - 1) * (size_t)B);
    const int gb = HY_MIN((int)N, B); /* the largest graph's batch */
    if (p->val) {
        hy__tloader_params vlp = hy__tloader_default_params();
        vlp.imgsz = S;
        vlp.batch = gb;
        vlp.fliplr = 0;
        vlp.seed = 0;
        vlp.cache_bytes = p->cache_bytes;
        vlp.augment = 0;
        vlp.epochs = 1;
        vlp.workers = 1;
        if ((st = hy__tloader_create(dv, &vlp, &lv))) goto fail;
    }

    if (!p->resume && (st = make_run_dir(p, r))) goto fail;
    if (!r->state_path && !(r->state_path = join(r->save_dir, "weights/state.safetensors"))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = check_ours(r->state_path)) || (st = check_ours(r->last_path)) || (st = check_ours(r->best_path))) goto fail;
    if (!(r->csv_path = join(r->save_dir, "results.csv")) || !(r->png_path = join(r->save_dir, "results.png"))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }

    // engine: graphs for the full batch and for the smaller last one, loss, optimizer, EMA
    hy__tgraph_params gp = hy__tgraph_default_params();
    if ((st = hy__device_choose(p->device, p->no_fallback, &r->dev))) goto fail;
    if (!r->dev.bi->train &&
        (st = hy__device_fall_back(&r->dev, p->no_fallback, "the backend has no training kernels")))
        goto fail;
    gp.device = r->dev.bi->name;
    gp.tp = tp;
    if (n_last == B || nb > 1)
        if ((st = hy__tgraph_create(tm, &gp, B, S, S, &g_full))) goto fail;
    if (n_last < B)
        if ((st = hy__tgraph_create(tm, &gp, n_last, S, S, &g_last))) goto fail;
    hy__v8loss_params lp = hy__v8loss_default_params(tm->cfg.nc);
    lp.box = (float)p->box;
    lp.cls = (float)p->cls;
    lp.dfl = (float)p->dfl;
    const int max_t = HY_MAX(HY_MAX(hy__tloader_max_labels(ld), lv ? hy__tloader_max_labels(lv) : 0), 1);
    if ((st = hy__v8loss_create(&lp, gb, S, S, max_t, &loss))) goto fail;
    if (!(op = hy__calloc((size_t)n_op, sizeof *op))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0, k = 0; i < tm->n_st; i++)
        if (tm->st[i].group != HY_PG_BUFFER)
            op[k++] = (hy__oparam){hy__tmodel_tensor(tm, i), hy__tmodel_grad(tm, i), tm->st[i].numel, tm->st[i].group,
                                   tm->st[i].trainable};
    hy__optim_args oa = hy__optim_default_args();
    oa.optimizer = p->optimizer ? p->optimizer : "auto";
    oa.lr0 = p->lr0;
    oa.lrf = p->lrf;
    oa.momentum = p->momentum;
    oa.weight_decay = p->weight_decay;
    oa.warmup_epochs = p->warmup_epochs;
    oa.warmup_momentum = p->warmup_momentum;
    oa.warmup_bias_lr = p->warmup_bias_lr;
    oa.cos_lr = p->cos_lr;
    oa.nbs = p->nbs;
    oa.batch = B;
    oa.epochs = p->epochs;
    oa.n_images = (long)N;
    oa.batches_per_epoch = nb;
    oa.nc = tm->cfg.nc;
    if ((st = hy__optim_create(&oa, op, n_op, &opt))) goto fail;
    if ((st = hy__ema_create(tm->data, tm->n_floats, &ema))) goto fail;
    int stop_best_epoch = 0;
    double stop_best_fitness = 0.0;
    if (p->resume) {
        if ((st = hy__resume_restore(sf, tm, ema, opt))) goto fail;
        hy__optim_set_scalars(opt, &ri.sc);
        hy__ema_set_updates(ema, ri.ema_updates);
        r->best_epoch = ri.best_epoch;
        r->best_fitness = ri.best_fitness;
        stop_best_epoch = ri.stop_best_epoch;
        stop_best_fitness = ri.stop_best_fitness;
        r->best_written = ri.best_epoch > 0 && access(r->best_path, F_OK) == 0;
        json_object *rows = json_tokener_parse(hy__st_meta(sf, "hotyolo.train.results") ? hy__st_meta(sf, "hotyolo.train.results") : "");
        if (!rows || !json_object_is_type(rows, json_type_array) || (int)json_object_array_length(rows) != ri.epoch) {
            json_object_put(rows);
            st = hy__error(HY_ERR_FORMAT, "%s: hotyolo.train.results: expected %d rows", r->state_path, ri.epoch);
            goto fail;
        }
        for (int i = 0; i < ri.epoch; i++) hy__resume_row(json_object_array_get_idx(rows, (size_t)i), &r->rows[i]);
        json_object_put(rows);
        r->n_rows = ri.epoch;
        hy__st_close(sf);
        sf = NULL;
    }
    apply_freeze(tm, op, opt, freeze_at(p, start));
    const size_t per = 3 * (size_t)S * (size_t)S, nx = per * (size_t)gb;
    for (int k = 0; k < 2; k++)
        if (!(xs[k] = hy__aligned_alloc(64, nx * sizeof(float))) ||
            !(ts[k] = hy__malloc((size_t)gb * (size_t)max_t * 6 * sizeof(float)))) {
            st = hy__error(HY_ERR_NOMEM, "out of memory (batch buffers)");
            goto fail;
        }
    if (lv && !(saved = hy__aligned_alloc(64, tm->n_floats * sizeof(float)))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!rec.date[0]) {
        const time_t t = time(NULL);
        struct tm utc;
        gmtime_r(&t, &utc);
        strftime(rec.date, sizeof rec.date, "%Y-%m-%dT%H:%M:%SZ", &utc);
    }

    // what was resolved
    hy__optim_info oi;
    hy__optim_get_info(opt, &oi);
    snprintf(r->optimizer, sizeof r->optimizer, "%s", opt_name(oi.kind));
    hy_train_info *in = &r->info;
    in->save_dir = r->save_dir;
    in->optimizer = r->optimizer;
    in->lr = oi.lr;
    in->momentum = oi.momentum;
    in->weight_decay = oi.weight_decay;
    in->warmup_bias_lr = oi.warmup_bias_lr;
    in->accumulate = oi.accumulate;
    in->warmup_iters = oi.nw > 0 ? oi.nw : 0;
    in->nc = tm->cfg.nc;
    in->train_images = N;
    in->val_images = dv->n;
    in->train_instances = (long)ds->n_instances;
    in->val_instances = (long)dv->n_instances;
    in->batches_per_epoch = nb;
    in->n_tensors = tm->report.n_tensors;
    in->transferred = tm->report.lists[HY_LOAD_TRANSFERRED].n;
    in->initialized = tm->report.lists[HY_LOAD_INITIALIZED].n;
    in->ignored = tm->report.lists[HY_LOAD_IGNORED].n;
    in->n_params = n_params;
    in->n_trainable = n_trainable;
    in->graph_bytes = (g_full ? hy__tgraph_bytes(g_full) : 0) + (g_last ? hy__tgraph_bytes(g_last) : 0);
    in->start_epoch = start + 1;
    in->epochs = p->epochs;
    in->imgsz = S;
    in->batch = B;
    in->freeze = freeze_at(p, start);
    in->n_warnings = r->n_warnings;
    in->warnings = (const char *const *)r->warnings;
    in->device = r->dev.name;
    in->device_requested = r->dev.requested;
    in->device_fallback = r->dev.fallback;
    if (p->on_start) p->on_start(in, p->user_data);

    hy_model_params mp = hy_model_default_params();
    mp.device = r->dev.name;
    mp.n_threads = p->n_threads;
    mp.imgsz = S;
    const int patience = p->patience > 0 ? p->patience : INT32_MAX;
    for (int epoch = start; epoch < p->epochs; epoch++) {
        const double t_epoch = now_s();
        hy_train_epoch *row = &r->rows[epoch];
        memset(row, 0, sizeof *row);
        row->epoch = epoch + 1;
        row->freeze = freeze_at(p, epoch);
        /* Ultralytics closes the mosaic at epoch == epochs - close_mosaic (never when negative) */
        row->mosaic = p->augment && p->mosaic > 0 &&
                      !(p->close_mosaic > 0 && p->epochs >= p->close_mosaic && epoch >= p->epochs - p->close_mosaic);
        if (row->freeze != tm->freeze) apply_freeze(tm, op, opt, row->freeze);
        double sum[3] = {0, 0, 0};
        hy__tmodel_zero_grad(tm); // optimizer.zero_grad() at the start of each epoch
        if ((st = hy__tloader_start(ld, epoch, 0, xs[0], ts[0]))) goto fail;
        for (int i = 0; i < nb; i++) {
            int n_t = 0;
            if ((st = hy__tloader_wait(ld, &n_t))) goto fail;
            const int n = hy__tloader_batch_size(ld, i);
            hy__tgraph *g = n == B ? g_full : g_last;
            memcpy(hy__tgraph_input(g), xs[i & 1], (size_t)n * per * sizeof(float));
            const float *tg = ts[i & 1];
            if (i + 1 < nb && (st = hy__tloader_start(ld, epoch, i + 1, xs[(i + 1) & 1], ts[(i + 1) & 1]))) goto fail;
            const long ni = (long)i + (long)nb * epoch;
            const int step = hy__optim_begin_iter(opt, epoch, ni);
            if ((st = hy__tgraph_forward(g, 1))) goto fail;
            hy__tview pv[4], gv[4];
            const int nl = hy__tgraph_levels(g);
            for (int l = 0; l < nl && l < 4; l++) {
                pv[l] = hy__tgraph_output(g, l);
                gv[l] = hy__tgraph_output_grad(g, l);
            }
            hy__v8loss_out lo;
            if ((st = hy__v8loss_compute(loss, pv, tg, n_t, &lo, gv, tp))) goto fail;
            if (!isfinite(lo.total)) {
                st = hy__error(HY_ERR_BACKEND, "epoch %d, batch %d: the loss is not finite (box %g, cls %g, dfl %g)",
                               epoch + 1, i + 1, lo.box, lo.cls, lo.dfl);
                goto fail;
            }
            if ((st = hy__tgraph_backward(g))) goto fail;
            if (step) {
                hy__optim_step(opt, ni);
                hy__ema_update(ema, tm->data);
            }
            sum[0] += lo.box;
            sum[1] += lo.cls;
            sum[2] += lo.dfl;
            row->instances += n_t;
            if (p->on_batch) {
                const double el = now_s() - t_epoch;
                hy_train_progress pr = {.epoch = epoch + 1,
                                        .epochs = p->epochs,
                                        .batch = i + 1,
                                        .n_batches = nb,
                                        .box_loss = sum[0] / (i + 1),
                                        .cls_loss = sum[1] / (i + 1),
                                        .dfl_loss = sum[2] / (i + 1),
                                        .instances = n_t,
                                        .size = S,
                                        .it_s = el > 0 ? (i + 1) / el : 0};
                p->on_batch(&pr, p->user_data);
            }
            if (p->stop && *p->stop && i + 1 < nb) { // interrupted: the EMA weights so far as last
                (void)hy__tloader_wait(ld, &n_t);    // the batch being prepared
                r->stopped = 1;
                rec.status = "stopped";
                if ((st = save_ckpt(tm, hy__ema_data(ema), r->last_path, &rec, r, r->n_rows, p->epochs))) goto fail;
                goto finish;
            }
        }
        row->box_loss = sum[0] / nb;
        row->cls_loss = sum[1] / nb;
        row->dfl_loss = sum[2] / nb;
        for (int k = 0; k < 3; k++) row->lr[k] = hy__optim_lr(opt, k);
        hy__optim_end_epoch(opt, epoch);
        in->cache_bytes = hy__tloader_cache_bytes(ld);
        const double t_val = now_s();
        row->train_s = t_val - t_epoch;
        r->n_rows = epoch + 1;

        const int last = epoch + 1 == p->epochs;
        if (p->val || last) { // validation of the EMA weights
            hy_model *m = NULL;
            hy_val_result *vr = NULL;
            if ((st = hy__tmodel_to_model(tm, hy__ema_data(ema), &mp, &m))) goto fail;
            hy_val_params vp = hy_val_default_params();
            vp.data = p->data;
            vp.split = "val";
            vp.imgsz = S;
            vp.batch = HY_MIN(2 * B, 65536);
            st = hy_val_run(m, &vp, &vr);
            hy_model_free(m);
            if (st) goto fail;
            const hy_val_metrics *a = hy_val_result_all(vr);
            row->validated = 1;
            row->precision = a->precision;
            row->recall = a->recall;
            row->map50 = a->map50;
            row->map50_95 = a->map50_95;
            row->fitness = 0.1 * a->map50 + 0.9 * a->map50_95;
            hy_val_result_free(vr);
            if (lv) {
                double vl[3];
                if ((st = val_losses(tm, hy__ema_data(ema), saved, g_full ? g_full : g_last, lv, S, loss, xs[0], ts[0], tp, vl)))
                    goto fail;
                row->has_val_loss = 1;
                row->val_box_loss = vl[0];
                row->val_cls_loss = vl[1];
                row->val_dfl_loss = vl[2];
            }
            if (!r->best_epoch || row->fitness > r->best_fitness) {
                r->best_epoch = epoch + 1;
                r->best_fitness = row->fitness;
                row->saved_best = 1;
            }
            if (!stop_best_epoch || row->fitness >= stop_best_fitness) { // EarlyStopping: >=
                stop_best_epoch = epoch + 1;
                stop_best_fitness = row->fitness;
            }
        }
        row->val_s = now_s() - t_val;
        const int early = row->validated && epoch + 1 - stop_best_epoch >= patience && !last;
        const int stopping = !last && !early && p->stop && *p->stop;
        rec.status = last ? "finished" : early ? "early_stopped" : stopping ? "stopped" : "running";
        if ((st = save_ckpt(tm, hy__ema_data(ema), r->last_path, &rec, r, epoch + 1, p->epochs))) goto fail;
        if (row->saved_best) {
            if ((st = save_ckpt(tm, hy__ema_data(ema), r->best_path, &rec, r, epoch + 1, p->epochs))) goto fail;
            r->best_written = 1;
        }
        if (p->save_period > 0 && epoch % p->save_period == 0) { // Ultralytics: epoch{0-based}.pt
            char name[48];
            snprintf(name, sizeof name, "weights/epoch%d.safetensors", epoch);
            char *ep = join(r->save_dir, name);
            if (!ep) {
                st = hy__error(HY_ERR_NOMEM, "out of memory");
                goto fail;
            }
            st = check_ours(ep);
            if (!st) st = save_ckpt(tm, hy__ema_data(ema), ep, &rec, r, epoch + 1, p->epochs);
            hy__free(ep);
            if (st) goto fail;
        }
        row->seconds = now_s() - t_epoch;
        if ((st = hy__train_results_csv(r->csv_path, r->rows, r->n_rows))) goto fail;
        if (!last && !early) { // the state to resume from (the run's end removes it)
            hy__resume_info si = {.epoch = epoch + 1,
                                  .ema_updates = hy__ema_updates(ema),
                                  .best_epoch = r->best_epoch,
                                  .best_fitness = r->best_fitness,
                                  .stop_best_epoch = stop_best_epoch,
                                  .stop_best_fitness = stop_best_fitness};
            hy__optim_get_scalars(opt, &si.sc);
            char *meta = record_json(&rec, r, epoch + 1, p->epochs);
            json_object *mo = meta ? json_tokener_parse(meta) : NULL;
            hy__free(meta);
            const char *keys[32], *vals[32];
            size_t nm = 0;
            if (mo) {
                json_object_object_foreach(mo, key, val) {
                    if (nm == 32) break;
                    keys[nm] = key;
                    vals[nm++] = json_object_is_type(val, json_type_string) ? json_object_get_string(val)
                                                                              : json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                }
            }
            st = mo ? hy__resume_save(r->state_path, tm, ema, opt, &si, keys, vals, nm)
                    : hy__error(HY_ERR_NOMEM, "out of memory (training record)");
            json_object_put(mo);
            if (st) goto fail;
        }
        if (p->on_epoch) p->on_epoch(row, p->user_data);
        if (early) {
            r->early_stopped = 1;
            break;
        }
        if (stopping) {
            r->stopped = 1;
            break;
        }
    }
    if (!r->stopped) unlink(r->state_path); // finished: no state to resume (Ultralytics strips the optimizer)
finish:
    if ((st = hy__train_results_csv(r->csv_path, r->rows, r->n_rows))) goto fail;
    if (r->n_rows > 0 && (st = hy__train_results_png(r->png_path, r->rows, r->n_rows))) goto fail;
    r->report = tm->report; // moved: tm no longer owns it
    memset(&tm->report, 0, sizeof tm->report);
    *out = r;
    r = NULL;
fail:
    for (int k = 0; k < 2; k++) {
        hy__aligned_free(xs[k]);
        hy__free(ts[k]);
    }
    hy__aligned_free(saved);
    hy__tloader_free(lv);
    hy__tloader_free(ld);
    hy__ema_free(ema);
    hy__optim_free(opt);
    hy__free(op);
    hy__v8loss_free(loss);
    hy__tgraph_free(g_last);
    hy__tgraph_free(g_full);
    hy__threadpool_free(tp);
    hy__tmodel_free(tm);
    hy__val_dataset_free(dv);
    hy__val_dataset_free(ds);
    json_object_put(rec.args);
    json_object_put(rargs);
    hy__st_close(sf);
    hy__free(rdir);
    hy_train_result_free(r);
    return st;
}

// --- comparing runs ----------------------------------------------------------------------------

#define COMPARE_MAX 8
#define COMPARE_MAX_EPOCHS 100000

/* series: a run folder, or "v1,v2,..." */
static hy_status compare_series(const char *series, int use_map50, double **xo, double **yo, int *no) {
    struct stat sb;
    double *x = NULL, *y = NULL;
    int n = 0;
    hy_status st = HY_OK;
    if (stat(series, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *last = join(series, "weights/last.safetensors");
        hy__st_file *f = NULL;
        json_object *rows = NULL;
        if (!last) return hy__error(HY_ERR_NOMEM, "out of memory");
        if (!(st = hy__st_open(last, 0, &f))) {
            const char *rs = hy__st_meta(f, "hotyolo.train.results");
            rows = rs ? json_tokener_parse(rs) : NULL;
            if (!rows || !json_object_is_type(rows, json_type_array))
                st = hy__error(HY_ERR_FORMAT, "%s: no hotyolo.train.results record", last);
        }
        const int m = rows && !st ? (int)HY_MIN(json_object_array_length(rows), (size_t)COMPARE_MAX_EPOCHS) : 0;
        if (!st && m > 0 && (!(x = hy__malloc((size_t)m * sizeof *x)) || !(y = hy__malloc((size_t)m * sizeof *y))))
            st = hy__error(HY_ERR_NOMEM, "out of memory");
        for (int i = 0; i < m && !st; i++) {
            hy_train_epoch r;
            hy__resume_row(json_object_array_get_idx(rows, (size_t)i), &r);
            if (!r.validated) continue;
            x[n] = r.epoch;
            y[n++] = use_map50 ? r.map50 : r.map50_95;
        }
        json_object_put(rows);
        hy__st_close(f);
        hy__free(last);
    } else {
        size_t cap = 1;
        for (const char *c = series; *c; c++) cap += *c == ',';
        if (cap > COMPARE_MAX_EPOCHS) return hy__error(HY_ERR_INVALID_ARG, "series '%.40s...': too many values", series);
        if (!(x = hy__malloc(cap * sizeof *x)) || !(y = hy__malloc(cap * sizeof *y))) st = hy__error(HY_ERR_NOMEM, "out of memory");
        for (const char *c = series; !st && *c;) {
            char *end;
            errno = 0;
            const double v = strtod(c, &end);
            if (end == c || errno || !isfinite(v) || (*end && *end != ',')) {
                st = hy__error(HY_ERR_INVALID_ARG, "series '%s': neither a run folder nor a list of numbers", series);
                break;
            }
            x[n] = n + 1;
            y[n++] = v;
            c = *end ? end + 1 : end;
        }
    }
    if (st) {
        hy__free(x);
        hy__free(y);
        return st;
    }
    *xo = x;
    *yo = y;
    *no = n;
    return HY_OK;
}

hy_status hy_train_plot_compare(const char *png, const char *metric, int n, const char *const *labels,
                                const char *const *series) {
    if (!png || !metric || !labels || !series || n < 1 || n > COMPARE_MAX)
        return hy__error(HY_ERR_INVALID_ARG, "hy_train_plot_compare: a PNG path, a metric and 1 to %d series are required",
                         COMPARE_MAX);
    const int use_map50 = !strcmp(metric, "mAP50");
    if (!use_map50 && strcmp(metric, "mAP50-95"))
        return hy__error(HY_ERR_INVALID_ARG, "metric '%s': must be mAP50 or mAP50-95", metric);
    hy__train_curve c[COMPARE_MAX];
    double *xs_[COMPARE_MAX] = {0}, *ys_[COMPARE_MAX] = {0};
    hy_status st = HY_OK;
    int k = 0;
    for (; k < n && !st; k++) {
        if (!labels[k] || !series[k]) {
            st = hy__error(HY_ERR_INVALID_ARG, "series %d: label and series are required", k + 1);
            break;
        }
        int m = 0;
        if ((st = compare_series(series[k], use_map50, &xs_[k], &ys_[k], &m))) break;
        c[k] = (hy__train_curve){labels[k], xs_[k], ys_[k], m};
    }
    if (!st) {
        char title[64];
        snprintf(title, sizeof title, "val %s by epoch", metric);
        st = hy__train_plot_compare(png, title, "epoch", c, n);
    }
    for (int i = 0; i < COMPARE_MAX; i++) {
        hy__free(xs_[i]);
        hy__free(ys_[i]);
    }
    return st;
}
