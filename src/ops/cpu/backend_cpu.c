/* CPU backend: packs conv weights once, one arena per graph (scratch planned in it), runs the
 * nodes in order with the thread pool. graph_compute performs no allocation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "ops/cpu/detect.h"
#include "ops/cpu/ops_cpu.h"

/* Packed layout name: ISA of the micro-kernels + this version, bumped whenever
 * hy__cpu_conv2d_pack changes its output. */
#define CPU_PACK_VERSION 2

typedef struct cpu_weight {
    hy__conv2d_desc d;
    const void *packed; /* packed weights (owned, aligned) or in place */
    int owned;
} cpu_weight;

/* Packed weights of one model: immutable once made, read by every instance. */
struct hy__bweights {
    cpu_weight *w;
    int n;
    int lock_memory;
    atomic_int lock_failed; /* mlock of a weight failed (set while packing) */
};

/* One instance per context. One activation arena serves every planned graph: the context
 * runs its graphs one at a time, so it is sized to the largest plan. A conv's scratch is its
 * node's workspace, planned in the arena beside the tensors alive at that node. */
typedef struct cpu_ctx {
    hy__threadpool *tp; /* the context's; not owned */
    const hy__bweights *bw;
    int lock_memory;
    void *arena;
    size_t arena_size;
    uint8_t *pending, *populating; /* arena reserved by grow, not yet populated; being populated */
    size_t pending_size, populating_size;
    hy__pages_probe probe; /* huge or 4 KiB pages for the chunks being populated */
    atomic_int lock_failed;
} cpu_ctx;

struct hy__plan {
    const hy__graph *g;
    cpu_ctx *c;
};

/* Pins [p, p + n) in RAM when asked to (like llama.cpp --mlock); failure is only logged. */
static void maybe_lock(int lock_memory, atomic_int *failed, const void *p, size_t n) {
    if (lock_memory && p && n && mlock(p, n) != 0 && atomic_fetch_add(failed, 1) >= 0)
        hy__log(HY_LOG_WARN, "cpu backend: mlock of %zu bytes failed (%s); memory stays swappable", n,
                strerror(errno));
}

/* Grows the arena to at least need bytes (aligned, zeroed). Only at prepare time. The new
 * arena is reserved; the context has it populated (populate_begin / populate_chunk, on the
 * pool's threads) before the first pass, or mlock does when memory is locked. */
static hy_status arena_grow(cpu_ctx *c, size_t need) {
    if (need <= c->arena_size && c->arena) return HY_OK;
    need = (need + 4095) & ~(size_t)4095;
    void *b = hy__pages_map(need);
    if (!b) return hy__error(HY_ERR_NOMEM, "cpu backend: cannot allocate a %zu-byte arena", need);
    if (c->lock_memory) {
        hy__pages_populate(b, 0, need);
    } else {
        c->pending = b;
        c->pending_size = need;
    }
    if (c->arena) {
        if (c->lock_memory) munlock(c->arena, c->arena_size);
        hy__pages_free(c->arena, c->arena_size);
    }
    c->arena = b;
    c->arena_size = need;
    maybe_lock(c->lock_memory, &c->lock_failed, b, need);
    return HY_OK;
}

static cpu_ctx *ctx_of(hy__backend *be) { return be->ctx; }

static int cpu_supports_op(const hy__node *n) {
    switch (n->op) {
    case HY_OP_CONV2D:
        return n->p.conv.groups <= 1; /* grouped / depthwise: not yet (ref has them) */
    case HY_OP_INPUT:
    case HY_OP_MAXPOOL2D:
    case HY_OP_UPSAMPLE2X:
    case HY_OP_CONCAT:
    case HY_OP_DETECT:
    case HY_OP_DETECT_ANCHOR:
        return 1;
    default:
        return 0;
    }
}

static void cpu_weights_free(hy__bweights *bw) {
    if (!bw) return;
    for (int i = 0; i < bw->n; i++)
        if (bw->w[i].owned) hy__aligned_free((void *)bw->w[i].packed);
    hy__free(bw->w);
    hy__free(bw);
}

static hy__conv2d_desc desc_of(const hy__conv2d_params *p) {
    hy__conv2d_desc d = {.cin = p->cin, .cout = p->cout, .kh = p->kh, .kw = p->kw,
                         .stride = p->stride, .pad = p->pad, .act = p->act, .groups = p->groups};
    return d;
}

/* Packing (Winograd transforms in double) is the largest part of a .pt / ONNX load: the convs
 * are packed on the pool's threads, handed out one at a time (~60 items). */
typedef struct pack_task {
    cpu_weight *cws;
    const hy__conv_weights *w;
    int *todo; /* indices of the convs to pack */
} pack_task;

static void pack_item(void *ctx, long k, int ith) {
    pack_task *t = ctx;
    (void)ith;
    const int i = t->todo[k];
    cpu_weight *cw = &t->cws[i];
    hy__cpu_conv2d_pack(&cw->d, t->w[i].w, t->w[i].b, (void *)cw->packed);
}

static hy_status cpu_weights_create(const hy__conv_weights *w, int n, hy__threadpool *tp, int lock_memory,
                                    hy__bweights **out) {
    hy__bweights *bw = hy__calloc(1, sizeof *bw);
    int *todo = hy__malloc((size_t)(n ? n : 1) * sizeof *todo);
    if (bw) bw->w = hy__calloc((size_t)(n ? n : 1), sizeof *bw->w);
    if (!bw || !bw->w || !todo) goto oom;
    bw->n = n;
    bw->lock_memory = lock_memory;
    int ntodo = 0;
    for (int i = 0; i < n; i++) {
        cpu_weight *cw = &bw->w[i];
        cw->d = desc_of(&w[i].p);
        if (cw->d.groups > 1) {
            hy__free(todo);
            cpu_weights_free(bw);
            return hy__error(HY_ERR_UNSUPPORTED, "cpu backend: grouped conv %d (groups %d) not supported yet", i,
                             cw->d.groups);
        }
        if (w[i].packed && w[i].packed_size == hy__cpu_conv2d_packed_size(&cw->d) &&
            ((uintptr_t)w[i].packed % 64) == 0 && hy__cpu_conv2d_packed_check(&cw->d, w[i].packed, w[i].packed_size)) {
            cw->packed = w[i].packed; /* ready for our kernels: used in place */
            maybe_lock(lock_memory, &bw->lock_failed, w[i].packed, w[i].packed_size);
        } else {
            size_t sz = hy__cpu_conv2d_packed_size(&cw->d);
            void *pk = hy__aligned_alloc(64, (sz + 63) & ~(size_t)63);
            if (!pk) goto oom;
            cw->packed = pk;
            cw->owned = 1;
            todo[ntodo++] = i;
        }
    }
    if (ntodo) {
        pack_task t = {.cws = bw->w, .w = w, .todo = todo};
        hy__threadpool_each(tp, ntodo, pack_item, &t);
        for (int k = 0; k < ntodo; k++)
            maybe_lock(lock_memory, &bw->lock_failed, bw->w[todo[k]].packed,
                       hy__cpu_conv2d_packed_size(&bw->w[todo[k]].d));
    }
    hy__free(todo);
    *out = bw;
    return HY_OK;
oom:
    hy__free(todo);
    cpu_weights_free(bw);
    return hy__error(HY_ERR_NOMEM, "cpu backend: out of memory packing %d weight tables", n);
}

static size_t cpu_node_workspace(hy__backend *be, const hy__graph *g, int node) {
    cpu_ctx *c = ctx_of(be);
    const hy__node *n = &g->nodes[node];
    if (n->op != HY_OP_CONV2D) return 0;
    const hy__tensor *x = &g->tensors[n->src[0]];
    hy__conv2d_desc d = desc_of(&n->p.conv);
    return hy__cpu_conv2d_scratch_size(&d, (int)x->ne[2], (int)x->ne[3], hy__threadpool_size(c->tp));
}

static int cpu_populate_begin(hy__backend *be) {
    cpu_ctx *c = ctx_of(be);
    c->populating = c->pending;
    c->populating_size = c->pending_size;
    if (c->populating) hy__pages_probe_reset(&c->probe);
    c->pending = NULL;
    c->pending_size = 0;
    return (int)((c->populating_size + HY_PAGES_CHUNK - 1) / HY_PAGES_CHUNK);
}

static void cpu_populate_chunk(hy__backend *be, int i) {
    cpu_ctx *c = ctx_of(be);
    size_t off = (size_t)i * HY_PAGES_CHUNK;
    if (off < c->populating_size)
        hy__pages_populate_probed(c->populating, off, HY_MIN(HY_PAGES_CHUNK, c->populating_size - off),
                                  &c->probe);
}

static hy_status cpu_graph_prepare(hy__backend *be, const hy__graph *g, hy__plan **out) {
    cpu_ctx *c = ctx_of(be);
    for (int i = 0; i < g->n_nodes; i++) {
        const hy__node *n = &g->nodes[i];
        if (!cpu_supports_op(n))
            return hy__error(HY_ERR_UNSUPPORTED, "cpu backend: op %s (%s) not supported", hy__op_name(n->op), n->name);
        if (n->op == HY_OP_DETECT_ANCHOR) {
            hy_status st = hy__graph_detect_anchor_check(g, n);
            if (st) return st;
        }
        if (n->op != HY_OP_CONV2D) continue;
        if (n->p.conv.weight_id < 0 || n->p.conv.weight_id >= c->bw->n)
            return hy__error(HY_ERR_INVALID_ARG, "cpu backend: %s: no weights loaded", n->name);
        if (n->ws_size < cpu_node_workspace(be, g, i))
            return hy__error(HY_ERR_INVALID_ARG, "cpu backend: %s: workspace not planned", n->name);
    }
    hy_status st = arena_grow(c, g->arena_size ? g->arena_size : 64);
    if (st) return st;
    hy__plan *p = hy__calloc(1, sizeof *p);
    if (!p) return hy__error(HY_ERR_NOMEM, "cpu backend: out of memory");
    p->g = g;
    p->c = c;
    *out = p;
    return HY_OK;
}

static float *cpu_tensor_host_ptr(hy__backend *be, hy__plan *p, int t) {
    (void)be;
    return hy__graph_data(p->g, p->c->arena, t);
}

static hy_status cpu_tensor_set(hy__backend *be, hy__plan *p, int t, const float *src, size_t n) {
    if (n != hy__tensor_numel(&p->g->tensors[t]))
        return hy__error(HY_ERR_INVALID_ARG, "tensor %s: %zu values given, %zu expected", p->g->tensors[t].name, n,
                         hy__tensor_numel(&p->g->tensors[t]));
    memcpy(cpu_tensor_host_ptr(be, p, t), src, n * sizeof(float));
    return HY_OK;
}

static hy_status cpu_tensor_get(hy__backend *be, hy__plan *p, int t, float *dst, size_t n) {
    if (n < hy__tensor_numel(&p->g->tensors[t]))
        return hy__error(HY_ERR_INVALID_ARG, "tensor %s: buffer of %zu values, %zu needed", p->g->tensors[t].name, n,
                         hy__tensor_numel(&p->g->tensors[t]));
    memcpy(dst, cpu_tensor_host_ptr(be, p, t), hy__tensor_numel(&p->g->tensors[t]) * sizeof(float));
    return HY_OK;
}

/* Runs node n for image b of the batch. */
static hy_status compute_node(cpu_ctx *c, const hy__graph *g, const hy__node *n, int b) {
    float *y = hy__graph_image(g, c->arena, n->dst, b);
    const hy__tensor *ty = &g->tensors[n->dst];
    switch (n->op) {
    case HY_OP_INPUT:
        break;
    case HY_OP_CONV2D: {
        const hy__tensor *tx = &g->tensors[n->src[0]];
        const float *x = hy__graph_image(g, c->arena, n->src[0], b);
        const float *add = n->n_src > 1 ? hy__graph_image(g, c->arena, n->src[1], b) : NULL;
        const cpu_weight *w = &c->bw->w[n->p.conv.weight_id];
        hy__cpu_conv2d(&w->d, w->packed, x, (int)tx->ne[2], (int)tx->ne[3], add, y, (char *)c->arena + n->ws_offset,
                       c->tp);
        break;
    }
    case HY_OP_MAXPOOL2D: {
        const hy__tensor *tx = &g->tensors[n->src[0]];
        hy__cpu_maxpool(hy__graph_image(g, c->arena, n->src[0], b), (int)tx->ne[1], (int)tx->ne[2], (int)tx->ne[3], n->p.pool.k, y,
                        c->tp);
        break;
    }
    case HY_OP_UPSAMPLE2X: {
        const hy__tensor *tx = &g->tensors[n->src[0]];
        hy__cpu_upsample2x(hy__graph_image(g, c->arena, n->src[0], b), (int)tx->ne[1], (int)tx->ne[2], (int)tx->ne[3], y, c->tp);
        break;
    }
    case HY_OP_CONCAT: {
        size_t off = 0;
        for (int s = 0; s < n->n_src; s++) {
            const float *x = hy__graph_image(g, c->arena, n->src[s], b);
            size_t cnt = hy__tensor_image_numel(&g->tensors[n->src[s]]);
            if (x != y + off) hy__cpu_copy(x, cnt, y + off, c->tp); /* not aliased by the planner */
            off += cnt;
        }
        HY_ASSERT(off == hy__tensor_image_numel(ty));
        break;
    }
    case HY_OP_DETECT: {
        hy__detect_level lv[4];
        hy__graph_detect_levels(g, c->arena, n, b, lv);
        hy__cpu_detect(&n->p.detect, lv, NULL, y, c->tp);
        break;
    }
    case HY_OP_DETECT_ANCHOR: {
        hy__detect_level lv[4];
        hy__graph_detect_anchor_levels(g, c->arena, n, b, lv);
        hy__cpu_detect_anchor(&n->p.danchor, lv, y, c->tp);
        break;
    }
    default:
        return hy__error(HY_ERR_UNSUPPORTED, "cpu backend: op %s not supported", hy__op_name(n->op));
    }
    return HY_OK;
}

/* Node by node; within a node the images of the batch one after the other, each with all of
 * the pool's threads (the weights of a node stay in cache across the batch). */
static hy_status cpu_graph_compute(hy__backend *be, hy__plan *p) {
    cpu_ctx *c = ctx_of(be);
    const hy__graph *g = p->g;
    for (int i = 0; i < g->n_nodes; i++)
        for (int b = 0; b < g->n; b++) {
            hy_status st = compute_node(c, g, &g->nodes[i], b);
            if (st) return st;
        }
    return HY_OK;
}

static void cpu_plan_free(hy__backend *be, hy__plan *p) {
    (void)be;
    hy__free(p);
}

static void cpu_free(hy__backend *be) {
    cpu_ctx *c = ctx_of(be);
    if (c->lock_memory && c->arena) munlock(c->arena, c->arena_size);
    hy__pages_free(c->arena, c->arena_size);
    hy__free(c);
    hy__free(be);
}

static int cpu_weights_touch(const hy__bweights *bw) {
    volatile uint8_t sink = 0;
    for (int i = 0; i < bw->n; i++) {
        const cpu_weight *w = &bw->w[i];
        if (!w->packed) continue;
        size_t n = hy__cpu_conv2d_packed_size(&w->d);
        const volatile uint8_t *p = w->packed;
        for (size_t o = 0; o < n; o += 4096) sink ^= p[o];
        if (n) sink ^= p[n - 1];
    }
    (void)sink;
    return bw->lock_memory ? !atomic_load(&((hy__bweights *)bw)->lock_failed) : 0;
}

static const char *cpu_weights_layout(void) {
    static char name[64];
    if (!name[0]) snprintf(name, sizeof name, "cpu-%s-v%d", hy__cpu_isa(), CPU_PACK_VERSION);
    return name;
}

static size_t cpu_weight_packed_size(const hy__conv2d_params *p) {
    hy__conv2d_desc d = desc_of(p);
    return hy__cpu_conv2d_packed_size(&d);
}

static void cpu_weight_pack(const hy__conv2d_params *p, const float *w, const float *b, void *dst) {
    hy__conv2d_desc d = desc_of(p);
    hy__cpu_conv2d_pack(&d, w, b, dst);
}

static int cpu_arena_pages(hy__backend *be, double *probe_ms) {
    cpu_ctx *c = ctx_of(be);
    const int policy = hy__huge_pages();
    *probe_ms = -1;
    if (policy != HY_PAGES_PROBE) return policy == HY_PAGES_HUGE;
    int us = atomic_load(&c->probe.probe_us);
    if (us >= 0) *probe_ms = us / 1000.0;
    return atomic_load(&c->probe.state) == 2; /* huge pages kept to the end */
}

static hy_status cpu_create(const hy__backend_params *p, const hy__bweights *w, hy__backend **out) {
    hy__backend *be = hy__calloc(1, sizeof *be);
    cpu_ctx *c = hy__calloc(1, sizeof *c);
    if (!be || !c) {
        hy__free(be);
        hy__free(c);
        return hy__error(HY_ERR_NOMEM, "cpu backend: out of memory");
    }
    c->tp = p->tp;
    c->bw = w;
    c->lock_memory = p->lock_memory;
    be->i = &hy__backend_cpu;
    be->ctx = c;
    *out = be;
    return HY_OK;
}

/* The one CPU row of hy_device_list: model name from /proc/cpuinfo (x86 and most ARM
 * kernels), the kernels' ISA, online cores, RAM. */
static int cpu_devices(hy_device_info *out, int max) {
    if (max < 1) return 1;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cpu");
    snprintf(out->kind, sizeof out->kind, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10) != 0) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(out->model, sizeof out->model, "%s", v);
        break;
    }
    if (f) fclose(f);
    int cores = hy__cpu_count();
    snprintf(out->detail, sizeof out->detail, "%s kernels, %d core%s", hy__cpu_isa(), cores, cores == 1 ? "" : "s");
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) out->memory_bytes = (uint64_t)pages * (uint64_t)psz;
    out->usable = 1;
    return 1;
}

const struct hy__backend_i hy__backend_cpu = {
    .api_version = HY_BACKEND_API_VERSION,
    .name = "cpu",
    .description = "packed-GEMM / Winograd kernels (AVX-512, AVX2 or generic, picked at run time), threaded",
    .devices = cpu_devices,
    .supports_op = cpu_supports_op,
    .weights_layout = cpu_weights_layout,
    .weight_packed_size = cpu_weight_packed_size,
    .weight_pack = cpu_weight_pack,
    .weights_create = cpu_weights_create,
    .weights_touch = cpu_weights_touch,
    .weights_free = cpu_weights_free,
    .create = cpu_create,
    .node_workspace = cpu_node_workspace,
    .graph_prepare = cpu_graph_prepare,
    .populate_begin = cpu_populate_begin,
    .populate_chunk = cpu_populate_chunk,
    .tensor_host_ptr = cpu_tensor_host_ptr,
    .tensor_set = cpu_tensor_set,
    .tensor_get = cpu_tensor_get,
    .graph_compute = cpu_graph_compute,
    .synchronize = NULL,
    .arena_pages = cpu_arena_pages,
    .plan_free = cpu_plan_free,
    .free = cpu_free,
    .train = &hy__train_ops_cpu,
};
