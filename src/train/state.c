#include "train/state.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static hy__wtensor vec(const char *name, hy_dtype dt, const void *data, size_t n) {
    hy__wtensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = dt;
    t.ndim = 1;
    t.shape[0] = (int64_t)n;
    t.numel = n;
    t.data = data;
    return t;
}

hy_status hy__resume_save(const char *path, const hy__tmodel *tm, const hy__ema *ema, hy__optim *opt,
                          const hy__resume_info *ri, const char *const *keys, const char *const *vals, size_t n_meta) {
    const int np = hy__optim_num_params(opt), nconv = tm->spec->n_convs;
    int64_t *steps = hy__malloc((size_t)(np > 0 ? np : 1) * sizeof *steps);
    const char **mk = hy__malloc((n_meta + 1) * sizeof *mk), **mv = hy__malloc((n_meta + 1) * sizeof *mv);
    char info[1024];
    hy_status st = HY_OK;
    if (!steps || !mk || !mv) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < np; i++) steps[i] = hy__optim_param_steps(opt)[i];
    hy__wtensor t[6];
    size_t n = 0;
    t[n++] = vec("weights", HY_DTYPE_F32, tm->data, tm->n_floats);
    t[n++] = vec("ema", HY_DTYPE_F32, hy__ema_data(ema), tm->n_floats);
    t[n++] = vec("nbt", HY_DTYPE_I64, tm->nbt, (size_t)nconv);
    t[n++] = vec("optim.steps", HY_DTYPE_I64, steps, (size_t)np);
    if (hy__optim_state_bufs(opt) > 0) t[n++] = vec("optim.buf0", HY_DTYPE_F32, hy__optim_state_buf(opt, 0), hy__optim_state_len(opt));
    if (hy__optim_state_bufs(opt) > 1) t[n++] = vec("optim.buf1", HY_DTYPE_F32, hy__optim_state_buf(opt, 1), hy__optim_state_len(opt));
    snprintf(info, sizeof info,
             "{\"epoch\":%d,\"ema_updates\":%ld,\"lr\":[%.17g,%.17g,%.17g],\"momentum\":%.17g,\"accumulate\":%d,"
             "\"last_opt_step\":%ld,\"best_epoch\":%d,\"best_fitness\":%.17g,\"stop_best_epoch\":%d,"
             "\"stop_best_fitness\":%.17g}",
             ri->epoch, ri->ema_updates, ri->sc.lr[0], ri->sc.lr[1], ri->sc.lr[2], ri->sc.momentum, ri->sc.accumulate,
             ri->sc.last_opt_step, ri->best_epoch, ri->best_fitness, ri->stop_best_epoch, ri->stop_best_fitness);
    mk[0] = HY_TRAIN_STATE_KEY;
    mv[0] = info;
    for (size_t i = 0; i < n_meta; i++) {
        mk[i + 1] = keys[i];
        mv[i + 1] = vals[i];
    }
    st = hy__st_write(path, t, n, mk, mv, n_meta + 1);
done:
    hy__free(steps);
    hy__free(mk);
    hy__free(mv);
    return st;
}

static int get_num(json_object *o, const char *k, double *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, k, &x) ||
        !(json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double)))
        return -1;
    *v = json_object_get_double(x);
    return isfinite(*v) ? 0 : -1;
}

hy_status hy__resume_read_info(const hy__st_file *f, hy__resume_info *ri) {
    const char *s = hy__st_meta(f, HY_TRAIN_STATE_KEY);
    if (!s) return hy__error(HY_ERR_FORMAT, "%s: no %s record (not a hotyolo training state)", hy__st_path(f), HY_TRAIN_STATE_KEY);
    json_object *o = json_tokener_parse(s), *lr;
    memset(ri, 0, sizeof *ri);
    double v[9];
    static const char *const k[9] = {"epoch", "ema_updates", "momentum", "accumulate", "last_opt_step", "best_epoch",
                                     "best_fitness", "stop_best_epoch", "stop_best_fitness"};
    int bad = !o || !json_object_is_type(o, json_type_object);
    for (int i = 0; i < 9 && !bad; i++) bad = get_num(o, k[i], &v[i]) != 0;
    if (!bad) bad = !json_object_object_get_ex(o, "lr", &lr) || !json_object_is_type(lr, json_type_array) ||
                    json_object_array_length(lr) != 3;
    for (int g = 0; g < 3 && !bad; g++) {
        json_object *x = json_object_array_get_idx(lr, (size_t)g);
        ri->sc.lr[g] = json_object_get_double(x);
        bad = !(json_object_is_type(x, json_type_double) || json_object_is_type(x, json_type_int)) || !isfinite(ri->sc.lr[g]);
    }
    /* counts within what a run can reach (epochs <= 100000) */
    if (!bad) bad = v[0] < 0 || v[0] > 100000 || v[1] < 0 || v[1] > 1e15 || v[3] < 1 || v[3] > 65536 || v[4] < -1 ||
                    v[4] > 1e15 || v[5] < 0 || v[5] > 100000 || v[7] < 0 || v[7] > 100000;
    json_object_put(o);
    if (bad) return hy__error(HY_ERR_FORMAT, "%s: %s: malformed record", hy__st_path(f), HY_TRAIN_STATE_KEY);
    ri->epoch = (int)v[0];
    ri->ema_updates = (long)v[1];
    ri->sc.momentum = v[2];
    ri->sc.accumulate = (int)v[3];
    ri->sc.last_opt_step = (long)v[4];
    ri->best_epoch = (int)v[5];
    ri->best_fitness = v[6];
    ri->stop_best_epoch = (int)v[7];
    ri->stop_best_fitness = v[8];
    return HY_OK;
}

static hy_status take(const hy__st_file *f, const char *name, hy_dtype dt, size_t n, void *dst) {
    const hy__wtensor *t = hy__st_find(f, name);
    if (!t || t->dtype != dt || t->numel != n)
        return hy__error(HY_ERR_MISMATCH, "%s: tensor %s: %s (expected %zu values of %s)", hy__st_path(f), name,
                         t ? "wrong size or type" : "missing", n, hy__st_dtype_str(dt));
    if (n) memcpy(dst, t->data, n * hy_dtype_size(dt));
    return HY_OK;
}

hy_status hy__resume_restore(const hy__st_file *f, hy__tmodel *tm, hy__ema *ema, hy__optim *opt) {
    const int np = hy__optim_num_params(opt);
    hy_status st;
    if ((st = take(f, "weights", HY_DTYPE_F32, tm->n_floats, tm->data))) return st;
    if ((st = take(f, "ema", HY_DTYPE_F32, tm->n_floats, hy__ema_data_mut(ema)))) return st;
    if ((st = take(f, "nbt", HY_DTYPE_I64, (size_t)tm->spec->n_convs, tm->nbt))) return st;
    int64_t *steps = hy__malloc((size_t)(np > 0 ? np : 1) * sizeof *steps);
    if (!steps) return hy__error(HY_ERR_NOMEM, "out of memory");
    st = take(f, "optim.steps", HY_DTYPE_I64, (size_t)np, steps);
    for (int i = 0; i < np && !st; i++) {
        if (steps[i] < 0) st = hy__error(HY_ERR_FORMAT, "%s: optim.steps[%d] is negative", hy__st_path(f), i);
        hy__optim_param_steps(opt)[i] = (long)steps[i];
    }
    hy__free(steps);
    if (st) return st;
    static const char *const bufs[2] = {"optim.buf0", "optim.buf1"};
    for (int k = 0; k < hy__optim_state_bufs(opt); k++)
        if ((st = take(f, bufs[k], HY_DTYPE_F32, hy__optim_state_len(opt), hy__optim_state_buf(opt, k)))) return st;
    if (hy__optim_state_bufs(opt) < 2 && hy__st_find(f, "optim.buf1"))
        return hy__error(HY_ERR_MISMATCH, "%s: optimizer state of another optimizer (Adam moments for SGD)", hy__st_path(f));
    return HY_OK;
}

// --- the parameters and rows back from a record ---------------------------------------------

static int jget(json_object *o, const char *k, json_type t, json_object **v) {
    return json_object_object_get_ex(o, k, v) && json_object_is_type(*v, t);
}
static int jnumber(json_object *o, const char *k, double *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, k, &x)) return 0;
    if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int)) return 0;
    *v = json_object_get_double(x);
    return isfinite(*v);
}

/* Fills p from the record's args (strings point into args, which must outlive p). Keeps the
 * caller's threads, device, workers, stop and callbacks. */
hy_status hy__resume_args(json_object *args, const char *what, hy_train_params *p) {
    json_object *v;
    double d;
#define STR(key, field)                                                                                          \
    do {                                                                                                         \
        if (jget(args, key, json_type_string, &v)) p->field = json_object_get_string(v);                         \
        else if (!json_object_object_get_ex(args, key, &v) || !json_object_is_type(v, json_type_null))           \
            return hy__error(HY_ERR_FORMAT, "%s: training record: '%s' missing or not a string", what, key);     \
        else p->field = NULL;                                                                                    \
    } while (0)
/* a number within [lo, hi] (so the cast is defined); hy_train checks the real ranges */
#define NUM(key, field, cast)                                                                                    \
    do {                                                                                                         \
        const double lo_ = (cast)0.5 == 0 ? -2147483648.0 : -1e300, hi_ = (cast)0.5 == 0 ? 2147483647.0 : 1e300;  \
        if (!jnumber(args, key, &d) || d < lo_ || d > hi_)                                                       \
            return hy__error(HY_ERR_FORMAT, "%s: training record: '%s' missing or not a number", what, key);      \
        p->field = (cast)d;                                                                                      \
    } while (0)
#define COUNT(key, field, cast)                                                                                  \
    do {                                                                                                         \
        if (!jnumber(args, key, &d) || d < 0 || d > 9007199254740992.0)                                          \
            return hy__error(HY_ERR_FORMAT, "%s: training record: '%s' missing or not a count", what, key);       \
        p->field = (cast)d;                                                                                      \
    } while (0)
#define BOOL(key, field)                                                                                         \
    do {                                                                                                         \
        if (!jget(args, key, json_type_boolean, &v))                                                             \
            return hy__error(HY_ERR_FORMAT, "%s: training record: '%s' missing or not a boolean", what, key);     \
        p->field = json_object_get_boolean(v);                                                                   \
    } while (0)
    STR("model", model);
    STR("arch", arch);
    STR("data", data);
    STR("optimizer", optimizer);
    STR("project", project);
    STR("name", name);
    NUM("epochs", epochs, int);
    NUM("imgsz", imgsz, int);
    NUM("batch", batch, int);
    NUM("freeze", freeze, int);
    NUM("lr0", lr0, double);
    NUM("lrf", lrf, double);
    NUM("momentum", momentum, double);
    NUM("weight_decay", weight_decay, double);
    NUM("warmup_epochs", warmup_epochs, double);
    NUM("warmup_momentum", warmup_momentum, double);
    NUM("warmup_bias_lr", warmup_bias_lr, double);
    NUM("box", box, double);
    NUM("cls", cls, double);
    NUM("dfl", dfl, double);
    BOOL("cos_lr", cos_lr);
    NUM("nbs", nbs, int);
    NUM("fliplr", fliplr, double);
    NUM("flipud", flipud, double);
    NUM("hsv_h", hsv_h, double);
    NUM("hsv_s", hsv_s, double);
    NUM("hsv_v", hsv_v, double);
    NUM("degrees", degrees, double);
    NUM("translate", translate, double);
    NUM("scale", scale, double);
    NUM("shear", shear, double);
    NUM("perspective", perspective, double);
    NUM("mosaic", mosaic, double);
    NUM("close_mosaic", close_mosaic, int);
    BOOL("augment", augment);
    NUM("patience", patience, int);
    NUM("save_period", save_period, int);
    COUNT("seed", seed, uint64_t);
    COUNT("cache_bytes", cache_bytes, size_t);
    BOOL("val", val);
#undef STR
#undef NUM
#undef COUNT
#undef BOOL
    p->n_unfreeze = 0;
    if (!jget(args, "unfreeze_at", json_type_array, &v) || json_object_array_length(v) > HY_TRAIN_MAX_UNFREEZE)
        return hy__error(HY_ERR_FORMAT, "%s: training record: 'unfreeze_at' missing or malformed", what);
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        const char *u = json_object_get_string(json_object_array_get_idx(v, i));
        int e = 0, k = 0, used = 0;
        if (!u || sscanf(u, "%d:%d%n", &e, &k, &used) != 2 || u[used])
            return hy__error(HY_ERR_FORMAT, "%s: training record: 'unfreeze_at' entry malformed", what);
        p->unfreeze[p->n_unfreeze].epoch = e;
        p->unfreeze[p->n_unfreeze++].freeze = k;
    }
    p->exist_ok = 1;
    return HY_OK;
}

/* A results row back from its JSON (the record keeps 8 significant digits: for display only). */
void hy__resume_row(json_object *o, hy_train_epoch *r) {
    double d = 0;
    json_object *v;
    memset(r, 0, sizeof *r);
    if (jnumber(o, "epoch", &d) && fabs(d) < 1e9) r->epoch = (int)d;
    if (jnumber(o, "train/box_loss", &d)) r->box_loss = d;
    if (jnumber(o, "train/cls_loss", &d)) r->cls_loss = d;
    if (jnumber(o, "train/dfl_loss", &d)) r->dfl_loss = d;
    if (jget(o, "validated", json_type_boolean, &v)) r->validated = json_object_get_boolean(v);
    if (jnumber(o, "metrics/precision(B)", &d)) r->precision = d;
    if (jnumber(o, "metrics/recall(B)", &d)) r->recall = d;
    if (jnumber(o, "metrics/mAP50(B)", &d)) r->map50 = d;
    if (jnumber(o, "metrics/mAP50-95(B)", &d)) r->map50_95 = d;
    if (jnumber(o, "fitness", &d)) r->fitness = d;
    if (jnumber(o, "lr/pg0", &d)) r->lr[0] = d;
    if (jnumber(o, "lr/pg1", &d)) r->lr[1] = d;
    if (jnumber(o, "lr/pg2", &d)) r->lr[2] = d;
    if (jnumber(o, "val/box_loss", &d)) r->val_box_loss = d, r->has_val_loss = 1;
    if (jnumber(o, "val/cls_loss", &d)) r->val_cls_loss = d;
    if (jnumber(o, "val/dfl_loss", &d)) r->val_dfl_loss = d;
    if (jnumber(o, "freeze", &d) && fabs(d) < 1e9) r->freeze = (int)d;
    if (jget(o, "mosaic", json_type_boolean, &v)) r->mosaic = json_object_get_boolean(v);
    if (jnumber(o, "instances", &d) && fabs(d) < 1e15) r->instances = (long)d;
    if (jnumber(o, "train_s", &d)) r->train_s = d;
    if (jnumber(o, "val_s", &d)) r->val_s = d;
    if (jnumber(o, "seconds", &d)) r->seconds = d;
    if (jget(o, "saved_best", json_type_boolean, &v)) r->saved_best = json_object_get_boolean(v);
}

