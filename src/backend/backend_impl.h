/* Backend interface (vtable). The model and the context ask for a backend by name; every
 * backend is tested against `ref`, the plain-C reference kernels (tests/test_backend_ops.c).
 * A backend's weights object holds its copy of the weights (packed for its kernels or
 * uploaded to its device), shared by every context of a model; an instance holds, per
 * planned graph, an activation arena. */
#ifndef HY_BACKEND_IMPL_H
#define HY_BACKEND_IMPL_H

#include "core/core.h"
#include "hotyolo/device.h"
#include "ops/train_op.h"
#include "tensor/graph.h"

#define HY_BACKEND_API_VERSION 2

/* Folded convolution weights handed to a backend (host memory, float32). */
typedef struct hy__conv_weights {
    hy__conv2d_params p;  /* weight_id = index in the table */
    const float *w;       /* (cout, cin, kh, kw) */
    const float *b;       /* (cout) */
    /* (optional) the same weights already in the backend's layout (weights_layout()),
     * e.g. mapped from a fused safetensors file; used in place when valid, and must then
     * outlive the backend. */
    const void *packed;
    size_t packed_size;
} hy__conv_weights;

typedef struct hy__backend hy__backend;       /* one instance per context: arena, plans, threads */
typedef struct hy__bweights hy__bweights;     /* weights in a backend's form, shared by instances */
typedef struct hy__plan hy__plan;             /* backend-specific per-graph state */

typedef struct hy__backend_params {
    hy__threadpool *tp; /* the context's pool (host threads; CPU kernels run on it); not owned */
    int lock_memory;    /* mlock weights and activations (failure is logged, not fatal) */
} hy__backend_params;

/* A backend is two objects. Its weights (weights_create) are made once per model and are
 * immutable afterwards: any number of instances on any threads read them concurrently. An
 * instance (create) belongs to one context and is used by one thread at a time. Members
 * marked optional may be NULL: callers check them. */
struct hy__backend_i {
    int api_version;
    const char *name;
    const char *description;
    /* (optional) The devices it runs on, as hy_device_list rows: writes at most max to out
     * (NULL: count only) and returns how many there are. Absent: not listed. */
    int (*devices)(hy_device_info *out, int max);
    /* (optional) Whether device `ordinal` ("cuda:N") can take a model now: HY_OK, else an error
     * whose hy_last_error says why (no driver, no such GPU, ...). Absent: the backend has no
     * ordinals ("cpu:1" is refused) and is always usable. */
    hy_status (*probe)(int ordinal);
    int (*supports_op)(const hy__node *n);
    /* -- weights (per model) -- */
    /* (optional) Name of the packed weight layout, "" when the backend has none, and the
     * packing itself, so files can carry weights ready for this backend. */
    const char *(*weights_layout)(void);
    size_t (*weight_packed_size)(const hy__conv2d_params *p);
    void (*weight_pack)(const hy__conv2d_params *p, const float *w, const float *b, void *dst);
    /* Takes the weight table once (pack / upload); the table may be freed afterwards except
     * `packed` blobs used in place. tp: threads to pack on (may be NULL). */
    hy_status (*weights_create)(const hy__conv_weights *w, int n, hy__threadpool *tp, int lock_memory,
                                hy__bweights **out);
    /* (optional) Brings every weight page into memory now (mapped files), so the first forward
     * pass takes no page faults. Returns 0 when memory locking failed. */
    int (*weights_touch)(const hy__bweights *w);
    void (*weights_free)(hy__bweights *w);
    /* -- instance (per context) -- */
    hy_status (*create)(const hy__backend_params *p, const hy__bweights *w, hy__backend **out);
    /* (optional) Bytes of workspace node (an index into g->nodes) needs while it runs (per
     * image: a batch runs its images one after the other); planned into the arena
     * (hy__node.ws_size / ws_offset) before graph_prepare. */
    size_t (*node_workspace)(hy__backend *be, const hy__graph *g, int node);
    /* Allocates everything graph_compute needs for g (its arena: g->arena_size). Memory may
     * be left reserved but unpopulated until populate_begin / populate_chunk. */
    hy_status (*graph_prepare)(hy__backend *be, const hy__graph *g, hy__plan **out);
    /* (optional) Takes the memory graph_prepare left unpopulated: returns it as a number of
     * chunks, which populate_chunk(i) maps (page faults now, not in the first pass), in any
     * order and on any threads. Nothing is pending afterwards. */
    int (*populate_begin)(hy__backend *be);
    void (*populate_chunk)(hy__backend *be, int i);
    /* (optional) Host pointer of tensor t inside the plan's arena (host-visible backends);
     * without it callers stage through tensor_set / tensor_get. */
    float *(*tensor_host_ptr)(hy__backend *be, hy__plan *plan, int t);
    /* Copies host data into / out of tensor t (storage owners: all n images, contiguous). */
    hy_status (*tensor_set)(hy__backend *be, hy__plan *plan, int t, const float *src, size_t n);
    hy_status (*tensor_get)(hy__backend *be, hy__plan *plan, int t, float *dst, size_t n);
    /* Runs every node of g; performs no allocation. */
    hy_status (*graph_compute)(hy__backend *be, hy__plan *plan);
    void (*synchronize)(hy__backend *be); /* (optional) */
    /* (optional) Whether the arena went on huge pages, and the probe's time (-1: none). */
    int (*arena_pages)(hy__backend *be, double *probe_ms);
    void (*plan_free)(hy__backend *be, hy__plan *plan);
    void (*free)(hy__backend *be);
    /* (optional) Training kernels (ops/train_op.h); NULL when the backend cannot train. */
    const hy__train_ops *train;
};

struct hy__backend {
    const struct hy__backend_i *i;
    void *ctx;
};

/* The backends built in, by name ("cpu", "ref", "cuda" in a HY_CUDA build); NULL with an
 * error naming the available ones. */
const struct hy__backend_i *hy__backend_find(const char *name);

/* A device string (hotyolo/device.h) taken apart: kind "cpu", "ref", "cuda" or "auto" and the
 * GPU ordinal (0 when none is given). Allow-list: anything else is HY_ERR_INVALID_ARG naming
 * the accepted forms. NULL or "" is "cpu". */
typedef struct hy__device_req {
    char kind[8];
    int ordinal;
    char name[16]; /* normalised: "cpu", "ref", "cuda:0", "auto" */
} hy__device_req;
hy_status hy__device_parse(const char *s, hy__device_req *out);

/* The backend that runs a model asked to run on `device`: the GPU when it can be used; else
 * cpu with `fallback` saying why (logged: a warning for an explicit GPU, info for "auto"), or
 * HY_ERR_BACKEND when no_fallback. */
typedef struct hy__device_choice {
    const struct hy__backend_i *bi;
    int ordinal;
    char name[16];       /* what runs: "cpu", "ref", "cuda:0" */
    char requested[16];  /* hy__device_req.name of the request */
    char fallback[320];  /* "" or why the request is not what runs */
} hy__device_choice;
hy_status hy__device_choose(const char *device, int no_fallback, hy__device_choice *out);
/* Records a fallback decided later (the GPU failed while loading): c becomes cpu, with why. */
hy_status hy__device_fall_back(hy__device_choice *c, int no_fallback, const char *why);
/* Built-in backends in registry order; NULL past the end. */
const struct hy__backend_i *hy__backend_at(int i);
void hy__backend_free(hy__backend *be);

/* Registry entries (one per backend file). */
extern const struct hy__backend_i hy__backend_cpu;
extern const struct hy__backend_i hy__backend_ref;
#ifdef HY_CUDA
extern const struct hy__backend_i hy__backend_cuda; /* ops/cuda/backend_cuda.c */
#endif
/* Their training kernels (ops/ref/train_ref.c, ops/cpu/train_cpu.c). */
extern const hy__train_ops hy__train_ops_ref;
extern const hy__train_ops hy__train_ops_cpu;

#endif
