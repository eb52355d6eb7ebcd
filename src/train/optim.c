/* Optimizer, warm-up / schedule, gradient clipping and EMA as Ultralytics 8.0.172's trainer
 * (see optim.h). Updates run in float32 with the scalars cast to float where PyTorch 1.13's
 * single-tensor SGD / Adam / AdamW apply a Python scalar to a float tensor; the schedule
 * (np.interp, lf, rounding) is computed in double as Python does. */
#include "train/optim.h"

#include <math.h>
#include <string.h>

// --- state -------------------------------------------------------------------------------------

struct hy__optim {
    hy__optim_args a;           /* a.optimizer is not kept (borrowed string) */
    int kind;                   /* enum hy__opt_kind, "auto" resolved */
    double lr0;                 /* initial_lr of every group (resolved) */
    double momentum;            /* resolved: SGD momentum / Adam beta1 */
    double wd;                  /* decay of g0 (scaled by batch * accumulate / nbs) */
    double warmup_bias_lr;      /* 0 when "auto" */
    int accumulate0;            /* max(round(nbs / batch), 1) */
    long nw;                    /* warm-up iterations, -1: none */
    double lr[3];               /* current lr per group (0 weights, 1 BN weights, 2 biases) */
    double cur_momentum;        /* current SGD momentum (warm-up ramps it) */
    int accumulate;             /* current accumulation */
    long last_opt_step;         /* ni of the last step, -1 before the first */
    hy__oparam *params;         /* (n_params) copy; data / grad borrowed */
    int n_params;
    int per;                    /* state buffers: 1 (SGD) or 2 (Adam) */
    size_t total;               /* floats per state buffer (every parameter, frozen too) */
    size_t *off;                /* (n_params) offset of each parameter's state */
    long *steps;                /* (n_params) updates of each parameter (PyTorch's per-parameter
                                   state: Adam's t; SGD's first step sets the buffer). A frozen
                                   parameter has none, as a requires_grad False one in PyTorch */
    float *s1, *s2;             /* (total) SGD momentum buffer or Adam exp_avg; Adam exp_avg_sq */
};

hy__optim_args hy__optim_default_args(void) {
    hy__optim_args a;
    memset(&a, 0, sizeof(a));
    a.optimizer = "auto";
    a.lr0 = 0.01;
    a.lrf = 0.01;
    a.momentum = 0.937;
    a.weight_decay = 5e-4;
    a.warmup_epochs = 3.0;
    a.warmup_momentum = 0.8;
    a.warmup_bias_lr = 0.1;
    a.cos_lr = 0;
    a.nbs = 64;
    a.batch = 16;
    a.epochs = 100;
    a.n_images = 0;
    a.batches_per_epoch = 0;
    a.nc = 80;
    return a;
}

// --- helpers -----------------------------------------------------------------------------------

/* Python's round() / np.round(): halves to even (rint under the default rounding mode). */
static double round_half_even(double x) { return nearbyint(x); }

/* np.interp(x, [0, x1], [y0, y1]) for x1 > 0: slope * (x - 0) + y0 inside, the end values
 * outside and at x1 exactly (numpy's arr_interp). */
static double interp2(double x, double x1, double y0, double y1) {
    if (x <= 0.0) return y0;
    if (x >= x1) return y1;
    double slope = (y1 - y0) / (x1 - 0.0);
    return slope * (x - 0.0) + y0;
}

static int finite_nonneg(double x) { return isfinite(x) && x >= 0.0; }

static hy_status check_args(const hy__optim_args *a, int *kind) {
    const char *n = a->optimizer ? a->optimizer : "(null)";
    if (strcmp(n, "SGD") == 0) *kind = HY_OPT_SGD;
    else if (strcmp(n, "Adam") == 0) *kind = HY_OPT_ADAM;
    else if (strcmp(n, "AdamW") == 0) *kind = HY_OPT_ADAMW;
    else if (strcmp(n, "auto") == 0) *kind = -1;
    else
        return hy__error(HY_ERR_INVALID_ARG,
                         "optimizer '%s': expected one of SGD, Adam, AdamW, auto", n);
    if (a->batch < 1 || a->nbs < 1 || a->epochs < 1)
        return hy__error(HY_ERR_INVALID_ARG, "optimizer: batch %d, nbs %d, epochs %d must be >= 1",
                         a->batch, a->nbs, a->epochs);
    if (a->n_images < 0 || a->batches_per_epoch < 0)
        return hy__error(HY_ERR_INVALID_ARG, "optimizer: negative image or batch count");
    if (a->nc < 1) return hy__error(HY_ERR_INVALID_ARG, "optimizer: nc %d must be >= 1", a->nc);
    if (!finite_nonneg(a->lr0) || !finite_nonneg(a->lrf) || !finite_nonneg(a->momentum) ||
        !finite_nonneg(a->weight_decay) || !finite_nonneg(a->warmup_epochs) ||
        !finite_nonneg(a->warmup_momentum) || !finite_nonneg(a->warmup_bias_lr))
        return hy__error(HY_ERR_INVALID_ARG,
                         "optimizer: lr0, lrf, momentum, weight_decay and the warm-up values must "
                         "be finite and >= 0");
    if (a->momentum >= 1.0 || a->warmup_momentum >= 1.0)
        return hy__error(HY_ERR_INVALID_ARG, "optimizer: momentum %g must be below 1", a->momentum);
    /* Bounds that keep the long arithmetic below (warm-up iterations) far from overflow. */
    if (a->warmup_epochs > 1e6 || a->batches_per_epoch > (1L << 40) || a->n_images > (1L << 40))
        return hy__error(HY_ERR_INVALID_ARG, "optimizer: warm-up or dataset size out of range");
    return HY_OK;
}

// --- create / free -----------------------------------------------------------------------------

hy_status hy__optim_create(const hy__optim_args *a, const hy__oparam *params, int n_params,
                           hy__optim **out) {
    hy__optim *o = NULL;
    int kind = 0;
    hy_status st = check_args(a, &kind);
    if (st != HY_OK) return st;
    if (n_params < 0 || (n_params > 0 && !params))
        return hy__error(HY_ERR_INVALID_ARG, "optimizer: %d parameters", n_params);
    size_t total = 0;
    for (int i = 0; i < n_params; i++) {
        const hy__oparam *p = &params[i];
        if (p->group < 0 || p->group > 2)
            return hy__error(HY_ERR_INVALID_ARG, "optimizer: parameter %d: group %d (0..2)", i,
                             p->group);
        if (p->numel > 0 && (!p->data || !p->grad))
            return hy__error(HY_ERR_INVALID_ARG, "optimizer: parameter %d: no data or gradient", i);
        if (!hy__add_ok(total, p->numel, &total))
            return hy__error(HY_ERR_INVALID_ARG, "optimizer: parameter sizes overflow");
    }
    size_t per = kind == HY_OPT_SGD ? 1 : 2; /* auto resolves below; allocate for the kind */

    o = hy__calloc(1, sizeof(*o));
    if (!o) return hy__error(HY_ERR_NOMEM, "optimizer: out of memory");
    o->a = *a;
    o->a.optimizer = NULL;

    /* _setup_train: accumulation at the nominal batch and the scaled decay. */
    o->accumulate0 = (int)HY_MAX(round_half_even((double)a->nbs / (double)a->batch), 1.0);
    o->wd = a->weight_decay * a->batch * o->accumulate0 / a->nbs;
    /* build_optimizer: "auto" picks by the iteration count at the nominal batch. */
    o->lr0 = a->lr0;
    o->momentum = a->momentum;
    o->warmup_bias_lr = a->warmup_bias_lr;
    if (kind < 0) {
        long bs = HY_MAX((long)a->batch, (long)a->nbs);
        long iterations = (a->n_images + bs - 1) / bs * (long)a->epochs;
        double lr_fit = round_half_even(0.002 * 5 / (4 + a->nc) * 1e6) / 1e6; /* round(x, 6) */
        if (iterations > 10000) {
            kind = HY_OPT_SGD;
            o->lr0 = 0.01;
        } else {
            kind = HY_OPT_ADAMW;
            o->lr0 = lr_fit;
        }
        o->momentum = 0.9;
        o->warmup_bias_lr = 0.0;
        per = kind == HY_OPT_SGD ? 1 : 2;
    }
    o->kind = kind;
    /* _do_train: nw = max(round(warmup_epochs * nb), 100), or -1 (no warm-up). */
    o->nw = a->warmup_epochs > 0
                ? HY_MAX((long)round_half_even(a->warmup_epochs * (double)a->batches_per_epoch), 100L)
                : -1;
    /* LambdaLR's construction: lr = initial_lr * lf(0) = initial_lr. */
    for (int g = 0; g < 3; g++) o->lr[g] = o->lr0;
    o->cur_momentum = o->momentum;
    o->accumulate = o->accumulate0;
    o->last_opt_step = -1;

    o->n_params = n_params;
    if (n_params > 0) {
        o->params = hy__malloc((size_t)n_params * sizeof(*o->params));
        o->off = hy__malloc((size_t)n_params * sizeof(*o->off));
        o->steps = hy__calloc((size_t)n_params, sizeof(*o->steps));
        if (!o->params || !o->off || !o->steps) goto nomem;
        memcpy(o->params, params, (size_t)n_params * sizeof(*o->params));
    }
    size_t off = 0;
    for (int i = 0; i < n_params; i++) {
        o->off[i] = off;
        off += params[i].numel;
    }
    o->per = (int)per;
    o->total = total;
    if (total > 0) {
        o->s1 = hy__calloc(total, sizeof(float));
        if (!o->s1) goto nomem;
        if (per == 2) {
            o->s2 = hy__calloc(total, sizeof(float));
            if (!o->s2) goto nomem;
        }
    }
    *out = o;
    return HY_OK;
nomem:
    hy__optim_free(o);
    return hy__error(HY_ERR_NOMEM, "optimizer: out of memory for the state of %zu parameters",
                     total);
}

void hy__optim_free(hy__optim *o) {
    if (!o) return;
    hy__free(o->params);
    hy__free(o->off);
    hy__free(o->steps);
    hy__free(o->s1);
    hy__free(o->s2);
    hy__free(o);
}

void hy__optim_get_info(const hy__optim *o, hy__optim_info *info) {
    info->kind = o->kind;
    info->lr = o->lr0;
    info->momentum = o->momentum;
    info->weight_decay = o->wd;
    info->warmup_bias_lr = o->warmup_bias_lr;
    info->accumulate = o->accumulate0;
    info->nw = o->nw;
}

// --- schedule ----------------------------------------------------------------------------------

double hy__optim_lf(const hy__optim *o, int epoch) {
    double e = epoch, n = o->a.epochs, lrf = o->a.lrf;
    if (o->a.cos_lr) /* one_cycle(1, lrf, epochs) */
        return ((1.0 - cos(e * 3.14159265358979323846 / n)) / 2.0) * (lrf - 1.0) + 1.0;
    return (1.0 - e / n) * (1.0 - lrf) + lrf;
}

int hy__optim_begin_iter(hy__optim *o, int epoch, long ni) {
    if (ni <= o->nw) { /* 8.0.172 warms up through ni == nw inclusive */
        double x = (double)ni, x1 = (double)o->nw;
        double acc = round_half_even(interp2(x, x1, 1.0, (double)o->a.nbs / o->a.batch));
        o->accumulate = (int)HY_MAX(1.0, acc);
        double target = o->lr0 * hy__optim_lf(o, epoch);
        /* PyTorch group 0 is g2 (biases): it falls from warmup_bias_lr; g0, g1 rise from 0. */
        o->lr[2] = interp2(x, x1, o->warmup_bias_lr, target);
        o->lr[0] = interp2(x, x1, 0.0, target);
        o->lr[1] = o->lr[0];
        /* Only SGD groups carry "momentum"; the target is args.momentum, not auto's 0.9. */
        if (o->kind == HY_OPT_SGD)
            o->cur_momentum = interp2(x, x1, o->a.warmup_momentum, o->a.momentum);
    }
    return ni - o->last_opt_step >= o->accumulate;
}

double hy__optim_lr(const hy__optim *o, int group) {
    HY_ASSERT(group >= 0 && group < 3);
    return o->lr[group];
}

double hy__optim_momentum(const hy__optim *o) {
    return o->kind == HY_OPT_SGD ? o->cur_momentum : o->momentum;
}

int hy__optim_accumulate(const hy__optim *o) { return o->accumulate; }

void hy__optim_end_epoch(hy__optim *o, int epoch) {
    /* scheduler.step() with last_epoch set to start_epoch - 1: after epoch e it sets
     * initial_lr * lf(e), so epoch e + 1 (past the warm-up) runs at lf(e). */
    double f = hy__optim_lf(o, epoch);
    for (int g = 0; g < 3; g++) o->lr[g] = o->lr0 * f;
}

// --- clipping ----------------------------------------------------------------------------------

double hy__clip_grad_norm(const hy__oparam *params, int n_params, double max_norm) {
    double ss = 0.0;
    for (int i = 0; i < n_params; i++) {
        const hy__oparam *p = &params[i];
        if (!p->trainable || !p->grad) continue;
        for (size_t k = 0; k < p->numel; k++) ss += (double)p->grad[k] * p->grad[k];
    }
    double total = sqrt(ss);
    /* clip_coef = max_norm / (total + 1e-6) in float32, clamped at 1 (a NaN norm poisons the
     * gradients as in PyTorch: the clamp keeps NaN). */
    float coef = (float)max_norm / ((float)total + 1e-6f);
    if (!(coef >= 1.0f)) {
        for (int i = 0; i < n_params; i++) {
            const hy__oparam *p = &params[i];
            if (!p->trainable || !p->grad) continue;
            for (size_t k = 0; k < p->numel; k++) p->grad[k] *= coef;
        }
    }
    return total;
}

// --- updates -----------------------------------------------------------------------------------

/* torch.optim.SGD (dampening 0, nesterov): d = g + wd p; buf = d (first step) or m buf + d;
 * d = d + m buf; p -= lr d. */
static void sgd_update(float *p, float *g, float *buf, size_t n, float lr, float m, float wd,
                       int first) {
    for (size_t k = 0; k < n; k++) {
        float d = g[k] + wd * p[k];
        float b = first ? d : buf[k] * m + d;
        buf[k] = b;
        d = d + m * b;
        p[k] = p[k] - lr * d;
    }
}

/* torch.optim.Adam (L2: g += wd p) / AdamW (decoupled: p *= 1 - lr wd), amsgrad off:
 * m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
static void adam_update(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                        double b2, double wd, long t, int decoupled) {
    const double eps = 1e-8;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float fb1 = (float)b1, fb2 = (float)b2, omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    float l2 = decoupled ? 0.0f : (float)wd, shrink = (float)(1.0 - lr * wd), feps = (float)eps;
    for (size_t k = 0; k < n; k++) {
        if (decoupled) p[k] = p[k] * shrink;
        float gk = g[k] + l2 * p[k];
        m[k] = m[k] * fb1 + omb1 * gk;
        v[k] = v[k] * fb2 + omb2 * gk * gk;
        float denom = sqrtf(v[k]) / bc2_sqrt + feps;
        p[k] = p[k] - step_size * (m[k] / denom);
    }
}

void hy__optim_step(hy__optim *o, long ni) {
    hy__clip_grad_norm(o->params, o->n_params, 10.0);
    for (int i = 0; i < o->n_params; i++) {
        hy__oparam *p = &o->params[i];
        if (!p->trainable || p->numel == 0) continue;
        double wd = p->group == 0 ? o->wd : 0.0; /* g1 (BN weights) and g2 (biases): no decay */
        double lr = o->lr[p->group];
        float *s1 = o->s1 + o->off[i];
        const long t = ++o->steps[i];
        if (o->kind == HY_OPT_SGD)
            sgd_update(p->data, p->grad, s1, p->numel, (float)lr, (float)o->cur_momentum,
                       (float)wd, t == 1);
        else
            adam_update(p->data, p->grad, s1, o->s2 + o->off[i], p->numel, lr, o->momentum,
                        0.999, wd, t, o->kind == HY_OPT_ADAMW);
        memset(p->grad, 0, p->numel * sizeof(float)); /* zero_grad (set_to_none False in 1.13) */
    }
    o->last_opt_step = ni;
}

void hy__optim_set_trainable(hy__optim *o, int i, int trainable) {
    HY_ASSERT(i >= 0 && i < o->n_params);
    o->params[i].trainable = trainable != 0;
}

// --- state (resume) ----------------------------------------------------------------------------

void hy__optim_get_scalars(const hy__optim *o, hy__optim_scalars *s) {
    for (int g = 0; g < 3; g++) s->lr[g] = o->lr[g];
    s->momentum = o->cur_momentum;
    s->accumulate = o->accumulate;
    s->last_opt_step = o->last_opt_step;
}

void hy__optim_set_scalars(hy__optim *o, const hy__optim_scalars *s) {
    for (int g = 0; g < 3; g++) o->lr[g] = s->lr[g];
    o->cur_momentum = s->momentum;
    o->accumulate = s->accumulate;
    o->last_opt_step = s->last_opt_step;
}

size_t hy__optim_state_len(const hy__optim *o) { return o->total; }
int hy__optim_state_bufs(const hy__optim *o) { return o->total ? o->per : 0; }
float *hy__optim_state_buf(hy__optim *o, int k) { return k == 0 ? o->s1 : k == 1 ? o->s2 : NULL; }
long *hy__optim_param_steps(hy__optim *o) { return o->steps; }
int hy__optim_num_params(const hy__optim *o) { return o->n_params; }

// --- EMA ---------------------------------------------------------------------------------------

struct hy__ema {
    float *data; /* (n) */
    size_t n;
    long updates;
};

double hy__ema_decay(long updates) { return 0.9999 * (1.0 - exp(-(double)updates / 2000.0)); }

hy_status hy__ema_create(const float *data, size_t n, hy__ema **out) {
    size_t bytes;
    if (!hy__mul_ok(n, sizeof(float), &bytes))
        return hy__error(HY_ERR_INVALID_ARG, "ema: %zu values overflow", n);
    hy__ema *e = hy__calloc(1, sizeof(*e));
    if (!e) return hy__error(HY_ERR_NOMEM, "ema: out of memory");
    if (n > 0) {
        e->data = hy__malloc(bytes);
        if (!e->data) {
            hy__free(e);
            return hy__error(HY_ERR_NOMEM, "ema: out of memory for %zu values", n);
        }
        memcpy(e->data, data, bytes);
    }
    e->n = n;
    *out = e;
    return HY_OK;
}

void hy__ema_free(hy__ema *e) {
    if (!e) return;
    hy__free(e->data);
    hy__free(e);
}

void hy__ema_update(hy__ema *e, const float *data) {
    e->updates++;
    double d = hy__ema_decay(e->updates);
    /* ModelEMA: v *= d; v += (1 - d) * msd[k], each a float32 tensor op. */
    float fd = (float)d, omd = (float)(1.0 - d);
    for (size_t k = 0; k < e->n; k++) {
        float v = e->data[k] * fd;
        e->data[k] = v + omd * data[k];
    }
}

const float *hy__ema_data(const hy__ema *e) { return e->data; }
float *hy__ema_data_mut(hy__ema *e) { return e->data; }
void hy__ema_set_updates(hy__ema *e, long updates) { e->updates = updates; }
long hy__ema_updates(const hy__ema *e) { return e->updates; }
