/* Backend interface (vtable). The model asks for a backend by name; every backend is tested
 * against the CPU reference kernels. A backend owns its copy of the weights (packed for
 * its kernels or uploaded to its device) and, per planned graph, an activation arena. */
#ifndef HY_BACKEND_IMPL_H
#define HY_BACKEND_IMPL_H

#include "core/core.h"
#include "tensor/graph.h"

#define HY_BACKEND_API_VERSION 1

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

typedef struct hy__backend hy__backend;
typedef struct hy__plan hy__plan; /* backend-specific per-graph state (arena, scratch) */

struct hy__backend_i {
    int api_version;
    const char *name;
    int (*supports_op)(hy__backend *be, const hy__node *n);
    /* (optional) Name of the packed weight layout, "" when the backend has none, and the
     * packing itself, so files can carry weights ready for this backend. */
    const char *(*weights_layout)(hy__backend *be);
    size_t (*weight_packed_size)(hy__backend *be, const hy__conv2d_params *p);
    void (*weight_pack)(hy__backend *be, const hy__conv2d_params *p, const float *w, const float *b, void *dst);
    /* (optional) Brings every weight page into memory now (mapped files), so the first
     * forward pass takes no page faults. Returns 0 when memory locking failed. */
    int (*weights_touch)(hy__backend *be);
    /* Takes the weight table once (pack / upload). Called before any graph_prepare. */
    hy_status (*weights_set)(hy__backend *be, const hy__conv_weights *w, int n);
    /* (optional) Bytes of workspace node (an index into g->nodes) needs while it runs; the
     * model plans them into the arena (hy__node.ws_size / ws_offset) before graph_prepare. */
    size_t (*node_workspace)(hy__backend *be, const hy__graph *g, int node);
    /* Allocates everything graph_compute needs for g (its arena: g->arena_size). Memory may
     * be left reserved but unpopulated until populate_begin / populate_chunk. */
    hy_status (*graph_prepare)(hy__backend *be, const hy__graph *g, hy__plan **out);
    /* (optional) Takes the memory graph_prepare left unpopulated: returns it as a number of
     * chunks, which populate_chunk(i) maps (page faults now, not in the first pass), in any
     * order and on any threads. Nothing is pending afterwards. */
    int (*populate_begin)(hy__backend *be);
    void (*populate_chunk)(hy__backend *be, int i);
    /* Host pointer of tensor t inside the plan's arena (optional: host-visible backends). */
    float *(*tensor_host_ptr)(hy__backend *be, hy__plan *plan, int t);
    /* Copies host data into / out of tensor t. */
    hy_status (*tensor_set)(hy__backend *be, hy__plan *plan, int t, const float *src, size_t n);
    hy_status (*tensor_get)(hy__backend *be, hy__plan *plan, int t, float *dst, size_t n);
    /* Runs every node of g; performs no allocation. */
    hy_status (*graph_compute)(hy__backend *be, hy__plan *plan);
    void (*synchronize)(hy__backend *be); /* (optional) */
    void (*plan_free)(hy__backend *be, hy__plan *plan);
    void (*free)(hy__backend *be);
};

struct hy__backend {
    const struct hy__backend_i *i;
    void *ctx;
};

typedef struct hy__backend_params {
    int n_threads;      /* CPU: 0 = cores */
    int reference;      /* CPU: use the plain-C reference kernels (tests) */
    int lock_memory;    /* mlock weights and activations (failure is logged, not fatal) */
} hy__backend_params;

/* Creates a backend by name ("cpu"; later "cuda"). */
hy_status hy__backend_create(const char *name, const hy__backend_params *p, hy__backend **out);
void hy__backend_free(hy__backend *be);

hy_status hy__backend_cpu_create(const hy__backend_params *p, hy__backend **out);
int hy__backend_cpu_threads(const hy__backend *be);
/* The CPU backend's thread pool, for host-side work around the graph (letterbox). */
hy__threadpool *hy__backend_cpu_pool(const hy__backend *be);
/* Whether the arena went on huge pages (HY_HUGE_PAGES policy, or the probe's verdict for the
 * last populated arena: any chunk on huge pages) and the probe's time (-1: none). */
int hy__backend_cpu_arena_pages(const hy__backend *be, double *probe_ms);

#endif
