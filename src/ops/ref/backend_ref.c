/* `ref` backend: the plain-C reference kernels (ops/ref/ref.h) on one thread, with its own
 * float32 copy of the weights. The spec every other backend is compared with, and the second
 * implementation of the backend interface (it offers no host pointer: callers stage through
 * tensor_set / tensor_get, as they will for a device backend). */
#include <string.h>

#include "backend/backend_impl.h"
#include "ops/ref/ref.h"

typedef struct ref_weight {
    hy__conv2d_desc d;
    float *w, *b; /* (cout, cin / groups, kh, kw), (cout) */
} ref_weight;

struct hy__bweights {
    ref_weight *w;
    int n;
};

typedef struct ref_ctx {
    const hy__bweights *bw;
    float *arena;
    size_t arena_size; /* bytes */
} ref_ctx;

struct hy__plan {
    const hy__graph *g;
    ref_ctx *c;
};

static int ref_supports_op(const hy__node *n) {
    switch (n->op) {
    case HY_OP_INPUT:
    case HY_OP_CONV2D:
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

static void ref_weights_free(hy__bweights *bw) {
    if (!bw) return;
    for (int i = 0; i < bw->n; i++) {
        hy__free(bw->w[i].w);
        hy__free(bw->w[i].b);
    }
    hy__free(bw->w);
    hy__free(bw);
}

static hy_status ref_weights_create(const hy__conv_weights *w, int n, hy__threadpool *tp, int lock_memory,
                                    hy__bweights **out) {
    (void)tp;
    (void)lock_memory;
    hy__bweights *bw = hy__calloc(1, sizeof *bw);
    if (bw) bw->w = hy__calloc((size_t)(n ? n : 1), sizeof *bw->w);
    if (!bw || !bw->w) goto oom;
    bw->n = n;
    for (int i = 0; i < n; i++) {
        const hy__conv2d_params *p = &w[i].p;
        ref_weight *rw = &bw->w[i];
        rw->d = (hy__conv2d_desc){.cin = p->cin, .cout = p->cout, .kh = p->kh, .kw = p->kw, .stride = p->stride,
                                  .pad = p->pad, .act = p->act, .groups = p->groups};
        const int groups = p->groups > 1 ? p->groups : 1;
        if (p->cin % groups || p->cout % groups) {
            ref_weights_free(bw);
            return hy__error(HY_ERR_INVALID_ARG, "ref backend: conv %d: %d -> %d channels not divisible by %d groups",
                             i, p->cin, p->cout, groups);
        }
        size_t nw = (size_t)p->cout * (size_t)(p->cin / groups) * (size_t)p->kh * (size_t)p->kw;
        rw->w = hy__malloc(nw * sizeof(float));
        rw->b = hy__malloc((size_t)p->cout * sizeof(float));
        if (!rw->w || !rw->b) goto oom;
        memcpy(rw->w, w[i].w, nw * sizeof(float));
        memcpy(rw->b, w[i].b, (size_t)p->cout * sizeof(float));
    }
    *out = bw;
    return HY_OK;
oom:
    ref_weights_free(bw);
    return hy__error(HY_ERR_NOMEM, "ref backend: out of memory for %d weight tables", n);
}

static hy_status ref_create(const hy__backend_params *p, const hy__bweights *w, hy__backend **out) {
    (void)p;
    hy__backend *be = hy__calloc(1, sizeof *be);
    ref_ctx *c = hy__calloc(1, sizeof *c);
    if (!be || !c) {
        hy__free(be);
        hy__free(c);
        return hy__error(HY_ERR_NOMEM, "ref backend: out of memory");
    }
    c->bw = w;
    be->i = &hy__backend_ref;
    be->ctx = c;
    *out = be;
    return HY_OK;
}

static hy_status ref_graph_prepare(hy__backend *be, const hy__graph *g, hy__plan **out) {
    ref_ctx *c = be->ctx;
    for (int i = 0; i < g->n_nodes; i++) {
        const hy__node *n = &g->nodes[i];
        if (!ref_supports_op(n))
            return hy__error(HY_ERR_UNSUPPORTED, "ref backend: op %s (%s) not supported", hy__op_name(n->op), n->name);
        if (n->op == HY_OP_CONV2D && (n->p.conv.weight_id < 0 || n->p.conv.weight_id >= c->bw->n))
            return hy__error(HY_ERR_INVALID_ARG, "ref backend: %s: no weights loaded", n->name);
        if (n->op == HY_OP_DETECT_ANCHOR) {
            hy_status st = hy__graph_detect_anchor_check(g, n);
            if (st) return st;
        }
    }
    if (g->arena_size > c->arena_size) {
        float *a = hy__aligned_alloc(64, g->arena_size);
        if (!a) return hy__error(HY_ERR_NOMEM, "ref backend: cannot allocate a %zu-byte arena", g->arena_size);
        memset(a, 0, g->arena_size);
        hy__aligned_free(c->arena);
        c->arena = a;
        c->arena_size = g->arena_size;
    }
    hy__plan *p = hy__calloc(1, sizeof *p);
    if (!p) return hy__error(HY_ERR_NOMEM, "ref backend: out of memory");
    p->g = g;
    p->c = c;
    *out = p;
    return HY_OK;
}

static hy_status ref_tensor_set(hy__backend *be, hy__plan *p, int t, const float *src, size_t n) {
    (void)be;
    const hy__tensor *tt = &p->g->tensors[t];
    if (tt->view_src >= 0 || n != hy__tensor_numel(tt))
        return hy__error(HY_ERR_INVALID_ARG, "tensor %s: %zu values given, %zu expected", tt->name, n,
                         hy__tensor_numel(tt));
    memcpy(hy__graph_data(p->g, p->c->arena, t), src, n * sizeof(float));
    return HY_OK;
}

static hy_status ref_tensor_get(hy__backend *be, hy__plan *p, int t, float *dst, size_t n) {
    (void)be;
    const hy__tensor *tt = &p->g->tensors[t];
    if (tt->view_src >= 0 || n < hy__tensor_numel(tt))
        return hy__error(HY_ERR_INVALID_ARG, "tensor %s: buffer of %zu values, %zu needed", tt->name, n,
                         hy__tensor_numel(tt));
    memcpy(dst, hy__graph_data(p->g, p->c->arena, t), hy__tensor_numel(tt) * sizeof(float));
    return HY_OK;
}

static hy_status ref_graph_compute(hy__backend *be, hy__plan *p) {
    ref_ctx *c = be->ctx;
    const hy__graph *g = p->g;
    /* node by node, each over the batch: the planner reuses a tensor's memory (all its
     * images) after its last consumer node, so image b+1 of an early tensor must not wait
     * for image b to run the whole graph */
    for (int i = 0; i < g->n_nodes; i++)
        for (int b = 0; b < g->n; b++) {
            const hy__node *n = &g->nodes[i];
            float *y = hy__graph_image(g, c->arena, n->dst, b);
            const hy__tensor *tx = n->n_src ? &g->tensors[n->src[0]] : NULL;
            switch (n->op) {
            case HY_OP_INPUT:
                break;
            case HY_OP_CONV2D: {
                const ref_weight *w = &c->bw->w[n->p.conv.weight_id];
                const float *add = n->n_src > 1 ? hy__graph_image(g, c->arena, n->src[1], b) : NULL;
                hy__ref_conv2d(&w->d, hy__graph_image(g, c->arena, n->src[0], b), (int)tx->ne[2], (int)tx->ne[3], w->w, w->b,
                               add, y);
                break;
            }
            case HY_OP_MAXPOOL2D:
                hy__ref_maxpool(hy__graph_image(g, c->arena, n->src[0], b), (int)tx->ne[1], (int)tx->ne[2], (int)tx->ne[3],
                                n->p.pool.k, y);
                break;
            case HY_OP_UPSAMPLE2X:
                hy__ref_upsample2x(hy__graph_image(g, c->arena, n->src[0], b), (int)tx->ne[1], (int)tx->ne[2], (int)tx->ne[3], y);
                break;
            case HY_OP_CONCAT: {
                size_t off = 0;
                for (int s = 0; s < n->n_src; s++) {
                    const float *x = hy__graph_image(g, c->arena, n->src[s], b);
                    size_t cnt = hy__tensor_image_numel(&g->tensors[n->src[s]]);
                    if (x != y + off) memmove(y + off, x, cnt * sizeof(float));
                    off += cnt;
                }
                break;
            }
            case HY_OP_DETECT: {
                hy__detect_level lv[4];
                hy__graph_detect_levels(g, c->arena, n, b, lv);
                hy__ref_detect(&n->p.detect, lv, NULL, y);
                break;
            }
            case HY_OP_DETECT_ANCHOR: {
                hy__detect_level lv[4];
                hy__graph_detect_anchor_levels(g, c->arena, n, b, lv);
                hy__ref_detect_anchor(&n->p.danchor, lv, y);
                break;
            }
            default:
                return hy__error(HY_ERR_UNSUPPORTED, "ref backend: op %s not supported", hy__op_name(n->op));
            }
        }
    return HY_OK;
}

static void ref_plan_free(hy__backend *be, hy__plan *p) {
    (void)be;
    hy__free(p);
}

static void ref_free(hy__backend *be) {
    ref_ctx *c = be->ctx;
    hy__aligned_free(c->arena);
    hy__free(c);
    hy__free(be);
}

const struct hy__backend_i hy__backend_ref = {
    .api_version = HY_BACKEND_API_VERSION,
    .name = "ref",
    .description = "plain-C reference kernels, one thread (the spec; slow)",
    .supports_op = ref_supports_op,
    .weights_create = ref_weights_create,
    .weights_free = ref_weights_free,
    .create = ref_create,
    .graph_prepare = ref_graph_prepare,
    .tensor_set = ref_tensor_set,
    .tensor_get = ref_tensor_get,
    .graph_compute = ref_graph_compute,
    .plan_free = ref_plan_free,
    .free = ref_free,
    .train = &hy__train_ops_ref,
};
