/* The training state of a run for an exact --resume (weights/state.safetensors, written after
 * every completed epoch, removed when the run finishes, as Ultralytics strips the optimizer):
 * tensors "weights" (the raw, non-EMA state_dict block, F32), "ema" (F32), "nbt" (BatchNorm
 * num_batches_tracked, I64), "optim.buf0" / "optim.buf1" (SGD momentum or Adam moments, F32),
 * "optim.steps" (updates per parameter, I64); metadata "hotyolo.state" (JSON: epoch, optimizer
 * scalars, EMA updates, best and early-stopping fitness, as %.17g) plus the caller's keys (the
 * run's arguments and results). Restored into a model, EMA and optimizer built with the same
 * arguments, the next epoch runs bit for bit as without the interruption. */
#ifndef HY_TRAIN_STATE_H
#define HY_TRAIN_STATE_H

#include <json-c/json.h>

#include "hotyolo/train.h"
#include "io/safetensors.h"
#include "train/optim.h"
#include "train/tmodel.h"

#define HY_TRAIN_STATE_KEY "hotyolo.state"

typedef struct hy__resume_info {
    int epoch;                      /* epochs completed (1-based count) */
    long ema_updates;
    hy__optim_scalars sc;
    int best_epoch;                 /* 1-based, 0: none */
    double best_fitness;
    int stop_best_epoch;            /* EarlyStopping's best (fitness >= best) */
    double stop_best_fitness;
} hy__resume_info;

/* Writes path atomically (temp file, fsync, rename). meta: extra keys (not "hotyolo.state"). */
hy_status hy__resume_save(const char *path, const hy__tmodel *tm, const hy__ema *ema, hy__optim *opt,
                          const hy__resume_info *ri, const char *const *keys, const char *const *vals, size_t n_meta);
/* Reads the "hotyolo.state" record of an open state file. Errors name the file and field. */
hy_status hy__resume_read_info(const hy__st_file *f, hy__resume_info *ri);
/* Copies the tensors of f into tm, ema and opt; every size must match (HY_ERR_MISMATCH naming
 * the tensor otherwise). */
hy_status hy__resume_restore(const hy__st_file *f, hy__tmodel *tm, hy__ema *ema, hy__optim *opt);

/* The run's parameters from its hotyolo.train.args record (a JSON object): every argument
 * hy_train takes from a record (strings point into args, which must outlive p); threads,
 * device, workers, stop and the callbacks are left as they are. Values are range-checked by
 * hy_train afterwards. HY_ERR_FORMAT naming `what` and the key when one is missing or of the
 * wrong type. */
hy_status hy__resume_args(json_object *args, const char *what, hy_train_params *p);
/* One row of hotyolo.train.results (missing keys: 0; the record keeps 8 significant digits). */
void hy__resume_row(json_object *o, hy_train_epoch *r);

#endif
