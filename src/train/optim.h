/* Optimizer, schedule, gradient clipping and EMA as Ultralytics 8.0.172's trainer
 * (engine/trainer.py: build_optimizer, _setup_train, _do_train, optimizer_step;
 * utils/torch_utils.py: ModelEMA) over flat float parameter lists:
 *   - groups: g0 weights (weight_decay = wd * batch * accumulate / nbs), g1 BatchNorm weights
 *     and g2 biases (no decay); SGD(momentum, nesterov) with L2 decay, Adam (L2), AdamW
 *     (decoupled decay), betas (momentum, 0.999), eps 1e-8 (PyTorch defaults);
 *   - "auto": AdamW with lr round(0.002 * 5 / (4 + nc), 6), momentum 0.9 when iterations
 *     (ceil(images / max(batch, nbs)) * epochs) <= 10000, else SGD lr 0.01 momentum 0.9;
 *     warmup_bias_lr becomes 0;
 *   - warm-up over nw = max(round(warmup_epochs * batches per epoch), 100) iterations
 *     (none when warmup_epochs is 0): accumulate ramps 1 -> nbs / batch (rounded), group g2's
 *     lr from warmup_bias_lr, the others from 0, to initial_lr * lf(epoch); SGD momentum from
 *     warmup_momentum; lf linear (1 - e / epochs)(1 - lrf) + lrf or cosine one_cycle;
 *   - a step every `accumulate` iterations: clip the global gradient L2 norm at 10, step,
 *     zero the gradients, EMA update: d = 0.9999 (1 - exp(-updates / 2000)),
 *     ema = d ema + (1 - d) model over every floating state tensor (BN statistics too). */
#ifndef HY_TRAIN_OPTIM_H
#define HY_TRAIN_OPTIM_H

#include "core/core.h"

enum hy__opt_kind { HY_OPT_SGD, HY_OPT_ADAM, HY_OPT_ADAMW, HY_OPT_COUNT };

typedef struct hy__optim_args {
    const char *optimizer;     /* "SGD", "Adam", "AdamW" or "auto" (Ultralytics' names) */
    double lr0, lrf, momentum, weight_decay;
    double warmup_epochs, warmup_momentum, warmup_bias_lr;
    int cos_lr;
    int nbs;                   /* nominal batch size, 64 */
    int batch, epochs;
    long n_images;             /* training images (auto: iteration count) */
    long batches_per_epoch;    /* nb = ceil(images / batch) */
    int nc;                    /* classes (auto lr) */
} hy__optim_args;
/* Ultralytics' defaults: optimizer auto, lr0 0.01, lrf 0.01, momentum 0.937, weight_decay
 * 5e-4, warmup_epochs 3, warmup_momentum 0.8, warmup_bias_lr 0.1, nbs 64. */
hy__optim_args hy__optim_default_args(void);

/* One parameter tensor the optimizer updates. */
typedef struct hy__oparam {
    float *data, *grad;
    size_t numel;
    int group;                 /* 0 weights, 1 BN weights, 2 biases */
    int trainable;             /* 0: skipped (frozen: no gradient, as requires_grad False) */
} hy__oparam;

typedef struct hy__optim hy__optim;
/* Resolves "auto" and the decay, allocates the optimizer state (momentum / Adam moments).
 * params is copied; the data and grad arrays are borrowed and must outlive the optimizer.
 * Errors: HY_ERR_INVALID_ARG (unknown optimizer name, a count < 1, a negative or non-finite
 * rate, a group outside 0..2, a trainable parameter without data or gradient), HY_ERR_NOMEM. */
hy_status hy__optim_create(const hy__optim_args *a, const hy__oparam *params, int n_params, hy__optim **out);
void hy__optim_free(hy__optim *o);
/* What was resolved: kind, lr, momentum, the decay of g0, warmup_bias_lr, accumulate at the
 * nominal batch, warm-up iterations nw. */
typedef struct hy__optim_info {
    int kind;                  /* enum hy__opt_kind */
    double lr, momentum, weight_decay, warmup_bias_lr;
    int accumulate;
    long nw;
} hy__optim_info;
void hy__optim_get_info(const hy__optim *o, hy__optim_info *info);
/* lf(epoch): the schedule's lr factor. */
double hy__optim_lf(const hy__optim *o, int epoch);
/* Sets every group's lr (and SGD momentum) and the accumulation for iteration ni = i + nb *
 * epoch, as _do_train does before each forward (8.0.172 warms up while ni <= nw, the end
 * value included). Returns 1 when this iteration ends with an optimizer step
 * (ni - last step >= accumulate). */
int hy__optim_begin_iter(hy__optim *o, int epoch, long ni);
/* Current lr of group g (0..2) and momentum (SGD; Adam: beta1). */
double hy__optim_lr(const hy__optim *o, int group);
double hy__optim_momentum(const hy__optim *o);
/* Current accumulation (ramps 1 -> nbs / batch over the warm-up, np.interp(...).round()). */
int hy__optim_accumulate(const hy__optim *o);
/* Clips the global gradient norm of the trainable parameters at max_norm (PyTorch
 * clip_grad_norm_: scale max_norm / (norm + 1e-6) when below 1); returns the norm before. */
double hy__clip_grad_norm(const hy__oparam *params, int n_params, double max_norm);
/* Clip at 10, one update of every trainable parameter with the current lrs, gradients zeroed.
 * Records ni as the last step. */
void hy__optim_step(hy__optim *o, long ni);
/* Call at the end of each epoch (scheduler.step()): every lr becomes initial_lr * lf(epoch).
 * As in 8.0.172 (scheduler.last_epoch = start_epoch - 1, step at the epoch's end), epoch e + 1
 * past the warm-up therefore runs at lf(e), not lf(e + 1). */
void hy__optim_end_epoch(hy__optim *o, int epoch);

/* Parameter i becomes trainable or frozen (staged unfreezing): a frozen one is skipped by
 * clipping and steps; its state starts from nothing when it first trains, as PyTorch's lazily
 * created per-parameter state. */
void hy__optim_set_trainable(hy__optim *o, int i, int trainable);

/* The optimizer's whole state, for an exact resume: these scalars, the per-parameter step
 * counts (n_params) and hy__optim_state_bufs() float buffers of hy__optim_state_len() floats
 * (SGD: momentum buffer; Adam: exp_avg, exp_avg_sq). Restore into an optimizer created with the
 * same arguments and parameters. */
typedef struct hy__optim_scalars {
    double lr[3], momentum;
    int accumulate;
    long last_opt_step;
} hy__optim_scalars;
void hy__optim_get_scalars(const hy__optim *o, hy__optim_scalars *s);
void hy__optim_set_scalars(hy__optim *o, const hy__optim_scalars *s);
size_t hy__optim_state_len(const hy__optim *o);
int hy__optim_state_bufs(const hy__optim *o);
float *hy__optim_state_buf(hy__optim *o, int k);
long *hy__optim_param_steps(hy__optim *o);
int hy__optim_num_params(const hy__optim *o);

/* EMA of a flat float state (ModelEMA): data copied at creation, updates counted. */
typedef struct hy__ema hy__ema;
hy_status hy__ema_create(const float *data, size_t n, hy__ema **out);
void hy__ema_free(hy__ema *e);
/* updates += 1; d = decay (1 - exp(-updates / tau)); ema = d ema + (1 - d) data. */
void hy__ema_update(hy__ema *e, const float *data);
const float *hy__ema_data(const hy__ema *e);
float *hy__ema_data_mut(hy__ema *e);                 /* resume */
void hy__ema_set_updates(hy__ema *e, long updates);  /* resume */
long hy__ema_updates(const hy__ema *e);
double hy__ema_decay(long updates); /* 0.9999 (1 - exp(-updates / 2000)) */

#endif
