/* A trainable model: the unfused state_dict of one network (architecture table row + spec)
 * as float32 tensors with their gradients, parameter groups and freezing. Built from any
 * weights source (strict, or transfer when nc differs: what is transferred, initialised,
 * ignored goes to the load report) or from scratch; seen as a hy__wsource (unfused,
 * state_dict names) to save it or to build an inference hy_model (BN folded) from it.
 *
 * Layout: every floating state_dict tensor (parameters and BatchNorm running statistics) is
 * one hy__tstate, in state_dict order, its data in one contiguous block `data` (n_floats);
 * `grad` has the same offsets (zero for buffers). num_batches_tracked (int64) is counted per
 * BatchNorm in `nbt`. */
#ifndef HY_TRAIN_TMODEL_H
#define HY_TRAIN_TMODEL_H

#include "model/model_impl.h"

/* Parameter groups as Ultralytics' build_optimizer: g0 weights (decay), g1 BatchNorm weights
 * (no decay), g2 biases (no decay; the group warm-up starts at warmup_bias_lr). */
enum hy__pgroup { HY_PG_WEIGHT = 0, HY_PG_BN_WEIGHT = 1, HY_PG_BIAS = 2, HY_PG_BUFFER = 3 };

typedef struct hy__tstate {
    const hy__tensor_spec *spec; /* name, shape (points into tm->spec) */
    size_t offset, numel;        /* floats into data / grad */
    int group;                   /* enum hy__pgroup (HY_PG_BUFFER: running_mean / running_var) */
    int layer;                   /* N of "model.N." (freezing) */
    int trainable;               /* parameter that gets gradients and updates */
} hy__tstate;

typedef struct hy__tmodel {
    hy__arch_cfg cfg;
    hy__model_spec *spec;
    hy__tstate *st;              /* (n_st) */
    int n_st;
    float *data;                 /* (n_floats), 64-byte aligned */
    float *grad;                 /* (n_floats), 64-byte aligned */
    size_t n_floats;
    int64_t *nbt;                /* (spec->n_convs) num_batches_tracked of conv i's BN (0 without BN) */
    int *conv_w, *conv_b;        /* (spec->n_convs) state index of conv i's weight / bias (-1: none) */
    int *bn_w, *bn_b, *bn_rm, *bn_rv; /* (spec->n_convs) state indices of its BN (-1: none) */
    int freeze;                  /* layers model.0 .. model.freeze-1 frozen (+ the DFL conv, always) */
    int imgsz;                   /* default inference size saved as hotyolo.imgsz: the source's (else
                                  * 640); the trainer sets its training size, as Ultralytics' train_args */
    char **names;                /* (cfg.nc) class names */
    hy__load_report report;      /* what the source gave: transferred / initialised / ignored */
} hy__tmodel;

/* From a weights source (any format, unfused or fused: a fused source's BN is identity with
 * the folded bias). nc 0: the source's; names (nc) may be NULL (the source's, else "class<i>").
 * transfer 0: strict (every tensor present and shaped right); 1: Ultralytics' transfer
 * (intersect_dicts: same-named same-shape tensors copied, the rest initialised as a fresh
 * module: Detect.bias_init, the DFL arange, PyTorch's default init for the rest). */
hy_status hy__tmodel_from_source(const hy__wsource *src, const char *what, int nc, char *const *names, int transfer,
                                 hy__tmodel **out);
/* From a weights file path (formats hy_model_load reads). */
hy_status hy__tmodel_load(const char *path, int nc, char *const *names, int transfer, hy__tmodel **out);
/* A freshly initialised network (PyTorch default init, BN weight 1 bias 0, Detect.bias_init),
 * seeded. */
hy_status hy__tmodel_create(const hy__arch_cfg *cfg, char *const *names, uint64_t seed, hy__tmodel **out);
void hy__tmodel_free(hy__tmodel *tm);

/* Freezes model.0 .. model.(k-1) (k 0: nothing) and the DFL conv: those get no gradient. */
void hy__tmodel_set_freeze(hy__tmodel *tm, int k);
/* Zeroes every gradient. */
void hy__tmodel_zero_grad(hy__tmodel *tm);
static inline float *hy__tmodel_tensor(const hy__tmodel *tm, int i) { return tm->data + tm->st[i].offset; }
static inline float *hy__tmodel_grad(const hy__tmodel *tm, int i) { return tm->grad + tm->st[i].offset; }
/* State index of a state_dict name, -1 when none. */
int hy__tmodel_find(const hy__tmodel *tm, const char *name);

/* The model as an unfused weights source over `data` (tm's own, or an EMA copy of the same
 * layout), float32, state_dict order, num_batches_tracked included, names, nc, scale.
 * hy__tmodel_source_free releases what it allocated (not data). */
hy_status hy__tmodel_as_source(const hy__tmodel *tm, const float *data, hy__wsource *out);
void hy__tmodel_source_free(hy__wsource *src);
/* An inference model (BN folded) of the weights in data, on device / threads of p. */
hy_status hy__tmodel_to_model(const hy__tmodel *tm, const float *data, const hy_model_params *p, hy_model **out);
/* Writes the weights in data (NULL: tm->data) as an unfused float32 hotyolo safetensors file
 * (docs/formats.md; num_batches_tracked as int64) plus the keys of metadata_json (NULL or a
 * JSON object; string values as they are, others as JSON text; hotyolo's own keys refused).
 * Through a temporary file in the same folder, fsynced and renamed over path. */
hy_status hy__tmodel_save(const hy__tmodel *tm, const float *data, const char *path, const char *metadata_json);

#endif
