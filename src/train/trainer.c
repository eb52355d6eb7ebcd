/* hy_train: Ultralytics 8.0.172's BaseTrainer._do_train for detection, with letterbox and
 * horizontal flip as the only augmentation (docs/training.md):
 *   per epoch: zero the gradients; per batch i (ni = i + nb * epoch): warm-up / lr / momentum /
 *   accumulation for ni (hy__optim_begin_iter), forward in train mode, v8 loss, backward
 *   (gradients accumulate), every `accumulate` iterations an optimizer step (clip 10, step,
 *   zero) and an EMA update; then scheduler.step(), validation of the EMA weights on the val
 *   split, fitness 0.1 mAP50 + 0.9 mAP50-95, last.safetensors and (fitness improved)
 *   best.safetensors. The batch loader prepares batch i + 1 on its thread during step i. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/sha256.h"
#include "hotyolo/train.h"
#include "hotyolo/val.h"
#include "io/safetensors.h"
#include "train/loader.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/tgraph.h"
#include "train/tmodel.h"

#define MAX_RUN_SUFFIX 9999
#define META_ARGS "hotyolo.train.args" /* the key that marks a file as one of our checkpoints */

struct hy_train_result {
    hy_train_epoch *rows; /* (n_rows) */
    int n_rows;
    int best_epoch;
    double best_fitness;
    char *save_dir, *last_path, *best_path;
    int best_written;
    hy_train_info info;
    char optimizer[8];
    hy__load_report report;
};

hy_train_params hy_train_default_params(void) {
    hy_train_params p;
    memset(&p, 0, sizeof p);
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
    hy__load_report_free(&r->report);
    hy__free(r);
}

// --- parameters --------------------------------------------------------------------------------

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static hy_status check_params(const hy_train_params *p) {
#define BAD(...) return hy__error(HY_ERR_INVALID_ARG, __VA_ARGS__)
    if (!p->model || !p->model[0]) BAD("train: model is required");
    if (!p->data || !p->data[0]) BAD("train: data (a data.yaml) is required");
    if (p->epochs < 1 || p->epochs > 100000) BAD("epochs %d: must be in [1, 100000]", p->epochs);
    if (p->imgsz < 32 || p->imgsz > 4096 || p->imgsz % 32) BAD("imgsz %d: must be a multiple of 32 in [32, 4096]", p->imgsz);
    if (p->batch < 1 || p->batch > 1024) BAD("batch %d: must be in [1, 1024]", p->batch);
    if (p->freeze < 0 || p->freeze > 1000) BAD("freeze %d: must be in [0, 1000]", p->freeze);
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
    e |= jadd(o, "model", jstr(p->model));
    e |= jadd(o, "data", jstr(p->data));
    e |= jadd(o, "epochs", json_object_new_int(p->epochs));
    e |= jadd(o, "imgsz", json_object_new_int(p->imgsz));
    e |= jadd(o, "batch", json_object_new_int(p->batch));
    e |= jadd(o, "freeze", json_object_new_int(p->freeze));
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
    e |= jadd(o, "train_s", jnum(r->train_s));
    e |= jadd(o, "val_s", jnum(r->val_s));
    if (e) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

typedef struct run_record {
    json_object *args;
    char model_sha[HY_SHA256_HEX_LEN + 1], data_sha[HY_SHA256_HEX_LEN + 1];
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
        e |= jadd(o, "hotyolo.source_sha256", jstr(rec->model_sha));
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

hy_status hy_train(const hy_train_params *p, hy_train_result **out) {
    if (!p || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_train: params and out are required");
    hy_status st = check_params(p);
    if (st) return st;
    const int B = p->batch, S = p->imgsz;
    hy_train_result *r = NULL;
    hy__val_dataset *ds = NULL, *dv = NULL;
    hy__tmodel *tm = NULL;
    hy__threadpool *tp = NULL;
    hy__tgraph *g_full = NULL, *g_last = NULL;
    hy__v8loss *loss = NULL;
    hy__oparam *op = NULL;
    hy__optim *opt = NULL;
    hy__ema *ema = NULL;
    hy__tloader *ld = NULL;
    float *xs[2] = {NULL, NULL}, *ts[2] = {NULL, NULL};
    run_record rec = {.imgsz = p->imgsz};

    if (!(r = hy__calloc(1, sizeof *r)) || !(r->rows = hy__calloc((size_t)p->epochs, sizeof *r->rows))) {
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
    // model: built for the data's classes, checkpoint tensors transferred (Ultralytics'
    // get_model + load: same-name same-shape tensors copied, the rest initialised)
    if ((st = hy__tmodel_load(p->model, ds->nc, ds->names, 1, &tm))) goto fail;
    if (tm->report.lists[HY_LOAD_TRANSFERRED].n == 0) {
        st = hy__error(HY_ERR_MISMATCH, "%s: no tensor of it fits the network (nothing to fine-tune from)", p->model);
        goto fail;
    }
    hy__tmodel_set_freeze(tm, p->freeze);
    tm->imgsz = p->imgsz; /* saved as hotyolo.imgsz: detect and val default to the training size */
    size_t n_params = 0, n_trainable = 0;
    int n_op = 0;
    for (int i = 0; i < tm->n_st; i++)
        if (tm->st[i].group != HY_PG_BUFFER) {
            n_params += tm->st[i].numel;
            if (tm->st[i].trainable) n_trainable += tm->st[i].numel;
            n_op++;
        }
    if (n_trainable == 0) {
        st = hy__error(HY_ERR_INVALID_ARG, "freeze %d: every layer is frozen, nothing to train", p->freeze);
        goto fail;
    }
    if ((st = hy__sha256_file(p->model, rec.model_sha)) || (st = hy__sha256_file(p->data, rec.data_sha))) goto fail;
    if (!(rec.args = args_json(p))) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* the loader bounds the labels per image: a refused dataset leaves no run folder */
    hy__tloader_params tlp = {.imgsz = S, .batch = B, .fliplr = p->fliplr, .seed = p->seed, .cache_bytes = p->cache_bytes};
    if ((st = hy__tloader_create(ds, &tlp, &ld))) goto fail;

    if ((st = make_run_dir(p, r))) goto fail;

    // engine: graphs for the full batch and for the smaller last one, loss, optimizer, EMA
    if ((st = hy__threadpool_create(p->n_threads, &tp))) goto fail;
    const size_t N = ds->n;
    const int nb = (int)((N + (size_t)B - 1) / (size_t)B), n_last = (int)(N - (size_t)(nb - 1) * (size_t)B);
    hy__tgraph_params gp = hy__tgraph_default_params();
    gp.device = p->device;
    gp.tp = tp;
    if (n_last == B || nb > 1)
        if ((st = hy__tgraph_create(tm, &gp, B, S, S, &g_full))) goto fail;
    if (n_last < B)
        if ((st = hy__tgraph_create(tm, &gp, n_last, S, S, &g_last))) goto fail;
    hy__v8loss_params lp = hy__v8loss_default_params(tm->cfg.nc);
    lp.box = (float)p->box;
    lp.cls = (float)p->cls;
    lp.dfl = (float)p->dfl;
    const int max_t = HY_MAX(hy__tloader_max_labels(ld), 1);
    if ((st = hy__v8loss_create(&lp, HY_MIN((int)N, B), S, S, max_t, &loss))) goto fail;
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
    const size_t per = 3 * (size_t)S * (size_t)S, nx = per * (size_t)HY_MIN((int)N, B);
    for (int k = 0; k < 2; k++)
        if (!(xs[k] = hy__aligned_alloc(64, nx * sizeof(float))) ||
            !(ts[k] = hy__malloc((size_t)HY_MIN((int)N, B) * (size_t)max_t * 6 * sizeof(float)))) {
            st = hy__error(HY_ERR_NOMEM, "out of memory (batch buffers)");
            goto fail;
        }
    {
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
    hy__val_dataset_free(dv);
    dv = NULL;
    if (p->on_start) p->on_start(in, p->user_data);

    hy_model_params mp = hy_model_default_params();
    mp.device = p->device;
    mp.n_threads = p->n_threads;
    mp.imgsz = S;
    for (int epoch = 0; epoch < p->epochs; epoch++) {
        const double t_epoch = now_s();
        hy_train_epoch *row = &r->rows[epoch];
        row->epoch = epoch + 1;
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
            if (!r->best_epoch || row->fitness > r->best_fitness) {
                r->best_epoch = epoch + 1;
                r->best_fitness = row->fitness;
                row->saved_best = 1;
            }
        }
        row->val_s = now_s() - t_val;
        if ((st = save_ckpt(tm, hy__ema_data(ema), r->last_path, &rec, r, epoch + 1, p->epochs))) goto fail;
        if (row->saved_best) {
            if ((st = save_ckpt(tm, hy__ema_data(ema), r->best_path, &rec, r, epoch + 1, p->epochs))) goto fail;
            r->best_written = 1;
        }
        row->seconds = now_s() - t_epoch;
        if (p->on_epoch) p->on_epoch(row, p->user_data);
    }
    r->report = tm->report; // moved: tm no longer owns it
    memset(&tm->report, 0, sizeof tm->report);
    *out = r;
    r = NULL;
fail:
    for (int k = 0; k < 2; k++) {
        hy__aligned_free(xs[k]);
        hy__free(ts[k]);
    }
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
    hy_train_result_free(r);
    return st;
}
