/* Computation graph: tensors (NCHW, float32, batch n) and nodes in execution order.
 * A graph is built for one input shape (n, 3, h, w); the planner assigns each storage-owning tensor a
 * byte offset in one arena, reusing memory of dead tensors (ggml gallocr idea). Views
 * (C2f split, zero-copy concat inputs) point into another tensor's storage.
 *
 * Batch: every tensor of a graph has the graph's batch size n. A storage owner holds its n
 * images one after the other ((c, h, w) each); a view is a channel slice of each image of its
 * root, so image b of tensor t starts at hy__graph_data(t) + b * hy__graph_bstride(t) and its
 * (c, h, w) floats are contiguous: kernels run one image at a time on plain pointers. */
#ifndef HY_GRAPH_H
#define HY_GRAPH_H

#include "core/core.h"
#include "ops/op.h"

#define HY_GRAPH_MAX_SRC 8
#define HY_GRAPH_NAME 48

typedef struct hy__tensor {
    int64_t ne[4];         /* (n, c, h, w) */
    int view_src;          /* -1: owns storage; else index of the tensor it lives in */
    size_t view_offs;      /* offset in floats inside each image of view_src */
    int producer;          /* node index, -1 for inputs */
    int last_use;          /* last node index reading it (or n_nodes for outputs) */
    size_t offset;         /* planned byte offset in the arena (storage owners) */
    char name[HY_GRAPH_NAME];
} hy__tensor;

typedef struct hy__node {
    enum hy__op op;
    int src[HY_GRAPH_MAX_SRC];
    int n_src;
    int dst;
    union {
        hy__conv2d_params conv;
        struct { int32_t k; } pool;
        hy__detect_params detect;
        hy__detect_anchor_params danchor; /* HY_OP_DETECT_ANCHOR */
    } p;
    char name[HY_GRAPH_NAME]; /* module path, e.g. "model.2.cv1" */
    /* Backend workspace of this node alone (CPU conv scratch; a cuDNN workspace later):
     * bytes asked for before hy__graph_plan, and where the planner put them in the arena.
     * Alive during the node only, so it shares memory with tensors dead by then. */
    size_t ws_size, ws_offset;
} hy__node;

typedef struct hy__graph {
    hy__tensor *tensors;
    int n_tensors, cap_tensors;
    hy__node *nodes;
    int n_nodes, cap_nodes;
    int n;                 /* batch size of every tensor */
    int input, output;     /* tensor indices */
    size_t arena_size;     /* bytes, after hy__graph_plan */
    int in_h, in_w;
} hy__graph;

/* An empty graph whose tensors have batch size n (>= 1). */
hy_status hy__graph_create(int n, hy__graph **out);
void hy__graph_free(hy__graph *g);
/* Adds a tensor (g->n, c, h, w) owning storage; returns its index or -1 on OOM. */
int hy__graph_tensor(hy__graph *g, int64_t c, int64_t h, int64_t w, const char *name);
/* A view of channels [c0, c0 + c) of src. */
int hy__graph_view(hy__graph *g, int src, int64_t c0, int64_t c, const char *name);
/* Adds a node writing dst; returns node index or -1. */
int hy__graph_node(hy__graph *g, enum hy__op op, const int *src, int n_src, int dst, const char *name);
/* Root storage owner of t and the offset (floats) of t inside it. */
int hy__graph_root(const hy__graph *g, int t, size_t *offs_floats);
/* Makes every input of CONCAT nodes a view into the concat output where that is safe,
 * then assigns arena offsets to storage roots and node workspaces. Sets g->arena_size.
 * Can be run again after ws_size changes. */
hy_status hy__graph_plan(hy__graph *g);
static inline size_t hy__tensor_numel(const hy__tensor *t) {
    return (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
}
/* A buffer alive over nodes [start, end] (inclusive), to place in an arena; id is the caller's. */
typedef struct hy__live_block {
    int id;
    int start, end;
    size_t size;         /* bytes */
    size_t offset;       /* set by hy__place_blocks */
} hy__live_block;
/* Greedy placement (largest first, ties by id, each at the lowest offset that overlaps no
 * placed block alive at the same time); reorders b. Returns the arena bytes. */
size_t hy__place_blocks(hy__live_block *b, int n);
/* Pointer to image 0 of tensor t given the arena base. */
float *hy__graph_data(const hy__graph *g, void *arena, int t);
/* Floats from one image of tensor t to the next: the per-image size of its storage root. */
size_t hy__graph_bstride(const hy__graph *g, int t);
/* Image b of tensor t given the arena base. */
static inline float *hy__graph_image(const hy__graph *g, void *arena, int t, int b) {
    return hy__graph_data(g, arena, t) + (size_t)b * hy__graph_bstride(g, t);
}
/* The Detect inputs of node n (HY_OP_DETECT) for image b: lv[p.detect.n_levels]. */
void hy__graph_detect_levels(const hy__graph *g, void *arena, const hy__node *n, int b, hy__detect_level *lv);
/* The YOLOv5 Detect inputs of node n (HY_OP_DETECT_ANCHOR) for image b: lv[p.danchor.n_levels],
 * lv[l].box = level l's raw conv output (na * (5 + nc), h, w), lv[l].cls = NULL. */
void hy__graph_detect_anchor_levels(const hy__graph *g, void *arena, const hy__node *n, int b, hy__detect_level *lv);
/* Checks an HY_OP_DETECT_ANCHOR node against its tensors (1 <= na <= HY_DETECT_MAX_ANCHORS,
 * 1 <= n_levels <= 4 sources, each na * (5 + nc) channels, strides > 0, dst numel
 * A * (5 + nc) per image); backends call it before running the node. */
hy_status hy__graph_detect_anchor_check(const hy__graph *g, const hy__node *n);
/* Floats of one image of t: c * h * w. */
static inline size_t hy__tensor_image_numel(const hy__tensor *t) {
    return (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

#endif
