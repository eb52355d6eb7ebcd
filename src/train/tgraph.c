/* The training graph (tgraph.h): the inference graph of hy__arch_graph_build read as the
 * unfused network. Every CONV node is conv (-> BN -> act) (+ residual); the Detect node is
 * dropped and its (box_i, cls_i) convs write into channel slices of p_i. Storage:
 *   - activations: one buffer per storage root of the graph, all kept for backward (concat
 *     inputs the graph placed into their concat's output stay there: the concat copies only
 *     the others; C2f's split views are channel slices); per BN conv also z (pre-BN conv
 *     output) and the batch mean / invstd;
 *   - gradients: one buffer per root that may need one, with the layout of its activation,
 *     so a view's gradient is the same slice of its root's gradient; buffers whose lifetimes
 *     (the nodes between the root's first producer and its last reader, as in the inference
 *     planner) do not overlap share memory;
 *   - dz (one conv output, shared) and the kernels' scratch (max conv_ws).
 * Gradient accumulation: per root channel a "written this step" flag; a write into a region
 * nobody has written overwrites (acc 0), into a written one adds (acc 1); a partly written one
 * gets its unwritten channels zeroed first (never happens in YOLOv8, kept for safety). */
#include "train/tgraph.h"

#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"

#define ALIGN 64

typedef struct troot {
    int c, h, w;
    size_t act;           /* byte offset of its activation */
    size_t grad;          /* byte offset of its gradient (in the gradient region) */
    size_t grad_size;     /* bytes; 0: never needs one */
    int start, end;       /* nodes that write / read it (gradient lifetime) */
    size_t flag0;         /* its first channel flag */
} troot;

typedef struct tten {
    int root;             /* -1: not part of the training graph (the Detect output) */
    int c0;               /* first channel inside its root */
    int last_use;
} tten;

typedef struct tnode {
    int run;              /* 0: INPUT, DETECT */
    int id;               /* conv: spec->convs index */
    hy__tconv tc;
    int has_bn, act;
    size_t z, mean, invstd; /* byte offsets (BN convs) */
    double macs;          /* conv multiply-adds over the batch */
} tnode;

struct hy__tgraph {
    hy__tmodel *tm;
    const hy__train_ops *ops;
    hy__tgraph_params p;
    hy__graph *g;
    int n;
    troot *roots;
    int n_roots;
    tten *tt;             /* (g->n_tensors) */
    tnode *nodes;         /* (g->n_nodes) */
    int *ng;              /* (g->n_tensors) needs a gradient, for the current freezing */
    int n_levels;
    int p_root[HY_ARCH_MAX_LEVELS];
    unsigned char *mem;   /* the one block */
    size_t bytes, grad_region, grad_bytes_no_reuse;
    size_t grad_base, dz, ws, ws_size;
    unsigned char *flags; /* (n_flags) per root channel */
    size_t n_flags;
    int fwd_train;        /* mode of the last forward; -1 before any */
};

hy__tgraph_params hy__tgraph_default_params(void) {
    hy__tgraph_params p = {NULL, NULL, 0.03f, 1e-3f};
    return p;
}

static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

static const hy__tensor *gt(const hy__tgraph *g, int t) { return &g->g->tensors[t]; }

/* ---- views ---------------------------------------------------------------------------- */
static hy__tview view_at(const hy__tgraph *g, size_t base, int t) {
    const tten *e = &g->tt[t];
    const troot *r = &g->roots[e->root];
    const hy__tensor *x = gt(g, t);
    size_t plane = (size_t)r->h * (size_t)r->w;
    hy__tview v = {(float *)(g->mem + base) + (size_t)e->c0 * plane, g->n, (int)x->ne[1], (int)x->ne[2],
                   (int)x->ne[3], (size_t)r->c * plane};
    return v;
}
static hy__tview act_view(const hy__tgraph *g, int t) { return view_at(g, g->roots[g->tt[t].root].act, t); }
static hy__tview grad_view(const hy__tgraph *g, int t) {
    return view_at(g, g->grad_base + g->roots[g->tt[t].root].grad, t);
}

/* ---- gradient write tracking ---------------------------------------------------------- */
/* Zeroes the channels of t's gradient nobody wrote this step and marks them; returns whether
 * any channel had been written (the acc of the write that follows). */
static int grad_begin(hy__tgraph *g, int t) {
    const tten *e = &g->tt[t];
    const troot *r = &g->roots[e->root];
    int c = (int)gt(g, t)->ne[1], n_set = 0;
    unsigned char *f = g->flags + r->flag0 + e->c0;
    for (int i = 0; i < c; i++) n_set += f[i];
    if (n_set == c) return 1;
    if (n_set) {
        hy__tview v = grad_view(g, t);
        size_t plane = (size_t)v.h * (size_t)v.w;
        for (int b = 0; b < v.n; b++)
            for (int i = 0; i < c; i++)
                if (!f[i]) memset(v.d + (size_t)b * v.bs + (size_t)i * plane, 0, plane * sizeof(float));
    }
    memset(f, 1, (size_t)c);
    return n_set > 0;
}

/* t's gradient complete (read by its producer): channels nobody wrote are zero. */
static hy__tview grad_ready(hy__tgraph *g, int t) {
    const tten *e = &g->tt[t];
    int c = (int)gt(g, t)->ne[1];
    const unsigned char *f = g->flags + g->roots[e->root].flag0 + e->c0;
    int all = 1;
    for (int i = 0; i < c && all; i++) all = f[i];
    if (!all && grad_begin(g, t) == 0) {
        hy__tview v = grad_view(g, t);
        for (int b = 0; b < v.n; b++)
            memset(v.d + (size_t)b * v.bs, 0, (size_t)c * (size_t)v.h * (size_t)v.w * sizeof(float));
    }
    return grad_view(g, t);
}

/* ---- freezing ------------------------------------------------------------------------- */
static int st_trainable(const hy__tmodel *tm, int i) { return i >= 0 && tm->st[i].trainable; }

static int conv_trainable(const hy__tmodel *tm, int id) {
    return st_trainable(tm, tm->conv_w[id]) || st_trainable(tm, tm->conv_b[id]) || st_trainable(tm, tm->bn_w[id]) ||
           st_trainable(tm, tm->bn_b[id]);
}

/* ng[t]: some trainable parameter lies upstream of t (its gradient is needed); all: as if
 * every parameter were trainable. */
static void compute_needs_grad(const hy__tgraph *g, int *ng, int all) {
    const hy__graph *gr = g->g;
    for (int t = 0; t < gr->n_tensors; t++) ng[t] = 0;
    for (int ni = 0; ni < gr->n_nodes; ni++) {
        const hy__node *nd = &gr->nodes[ni];
        if (!g->nodes[ni].run) continue;
        int v = nd->op == HY_OP_CONV2D && (all || conv_trainable(g->tm, g->nodes[ni].id));
        for (int s = 0; s < nd->n_src && !v; s++) {
            int t = nd->src[s];
            /* a view nobody produces (C2f split) holds its source's data */
            while (gr->tensors[t].producer < 0 && gr->tensors[t].view_src >= 0) t = gr->tensors[t].view_src;
            v = ng[t];
        }
        ng[nd->dst] = v;
    }
    for (int t = 0; t < gr->n_tensors; t++) {
        int u = t;
        while (gr->tensors[u].producer < 0 && gr->tensors[u].view_src >= 0) u = gr->tensors[u].view_src;
        ng[t] = ng[u];
    }
}

/* ---- planning ------------------------------------------------------------------------- */
static hy_status plan(hy__tgraph *g) {
    hy__graph *gr = g->g;
    hy__tmodel *tm = g->tm;
    const hy__model_spec *sp = tm->spec;
    int nt = gr->n_tensors, nn = gr->n_nodes;
    hy_status st = HY_OK;
    int *root_of = NULL;
    hy__live_block *blocks = NULL;
    g->tt = hy__calloc((size_t)nt, sizeof *g->tt);
    g->nodes = hy__calloc((size_t)nn, sizeof *g->nodes);
    g->ng = hy__calloc((size_t)nt, sizeof *g->ng);
    g->roots = hy__calloc((size_t)nt + HY_ARCH_MAX_LEVELS, sizeof *g->roots);
    root_of = hy__malloc((size_t)nt * sizeof *root_of);
    if (!g->tt || !g->nodes || !g->ng || !g->roots || !root_of) {
        st = hy__error(HY_ERR_NOMEM, "training graph: out of memory");
        goto done;
    }
    for (int t = 0; t < nt; t++) {
        g->tt[t].root = -1;
        g->tt[t].last_use = -1;
        root_of[t] = -1;
    }
    /* The Detect node: p_i roots for its (box_i, cls_i) pairs. */
    int detect = -1;
    for (int ni = 0; ni < nn; ni++)
        if (gr->nodes[ni].op == HY_OP_DETECT) {
            if (detect >= 0) {
                st = hy__error(HY_ERR_UNSUPPORTED, "training graph: more than one Detect head");
                goto done;
            }
            detect = ni;
        }
    if (detect < 0) {
        st = hy__error(HY_ERR_UNSUPPORTED, "training graph: the network has no Detect head");
        goto done;
    }
    const hy__node *dn = &gr->nodes[detect];
    g->n_levels = dn->p.detect.n_levels;
    if (g->n_levels < 1 || g->n_levels > HY_ARCH_MAX_LEVELS || dn->n_src != 2 * g->n_levels) {
        st = hy__error(HY_ERR_UNSUPPORTED, "training graph: Detect with %d levels", g->n_levels);
        goto done;
    }
    for (int l = 0; l < g->n_levels; l++) {
        int tb = dn->src[2 * l], tc = dn->src[2 * l + 1];
        const hy__tensor *b = &gr->tensors[tb], *c = &gr->tensors[tc];
        if (b->view_src >= 0 || c->view_src >= 0 || b->producer < 0 || c->producer < 0 ||
            gr->nodes[b->producer].op != HY_OP_CONV2D || gr->nodes[c->producer].op != HY_OP_CONV2D ||
            b->ne[2] != c->ne[2] || b->ne[3] != c->ne[3]) {
            st = hy__error(HY_ERR_UNSUPPORTED, "training graph: Detect level %d is not a pair of convs", l);
            goto done;
        }
        int r = g->n_roots++;
        g->p_root[l] = r;
        g->roots[r].c = (int)(b->ne[1] + c->ne[1]);
        g->roots[r].h = (int)b->ne[2];
        g->roots[r].w = (int)b->ne[3];
        g->tt[tb].root = g->tt[tc].root = r;
        g->tt[tb].c0 = 0;
        g->tt[tc].c0 = (int)b->ne[1];
        root_of[tb] = root_of[tc] = r;
    }
    /* Roots: the graph's storage owners. */
    for (int t = 0; t < nt; t++) {
        const hy__tensor *x = &gr->tensors[t];
        if (x->view_src >= 0 || root_of[t] >= 0 || t == gr->output) continue;
        int r = g->n_roots++;
        g->roots[r].c = (int)x->ne[1];
        g->roots[r].h = (int)x->ne[2];
        g->roots[r].w = (int)x->ne[3];
        root_of[t] = r;
        g->tt[t].root = r;
    }
    for (int t = 0; t < nt; t++) {
        if (g->tt[t].root >= 0 || t == gr->output) continue;
        size_t offs;
        int rt = hy__graph_root(gr, t, &offs);
        const hy__tensor *x = &gr->tensors[t];
        size_t plane = (size_t)(x->ne[2] * x->ne[3]);
        if (root_of[rt] < 0 || offs % plane) {
            st = hy__error(HY_ERR_UNSUPPORTED, "training graph: tensor %s is not a channel slice", x->name);
            goto done;
        }
        g->tt[t].root = root_of[rt];
        g->tt[t].c0 = (int)(offs / plane) + g->tt[rt].c0;
    }
    /* Nodes. */
    for (int ni = 0; ni < nn; ni++) {
        const hy__node *nd = &gr->nodes[ni];
        tnode *tn = &g->nodes[ni];
        for (int s = 0; s < nd->n_src; s++)
            if (g->tt[nd->src[s]].last_use < ni) g->tt[nd->src[s]].last_use = ni;
        switch (nd->op) {
        case HY_OP_INPUT:
        case HY_OP_DETECT:
            break;
        case HY_OP_MAXPOOL2D:
        case HY_OP_UPSAMPLE2X:
        case HY_OP_CONCAT:
            tn->run = 1;
            break;
        case HY_OP_CONV2D: {
            const hy__conv2d_params *cp = &nd->p.conv;
            if (cp->weight_id < 0 || cp->weight_id >= sp->n_convs) {
                st = hy__error(HY_ERR_INVALID_ARG, "training graph: %s: conv id %d", nd->name, cp->weight_id);
                goto done;
            }
            const hy__conv_spec *cs = &sp->convs[cp->weight_id];
            int head = root_of[nd->dst] >= 0 && root_of[nd->dst] < g->n_levels;
            if (cs->groups != 1 || cp->kh != cp->kw || cs->cin != cp->cin || cs->cout != cp->cout) {
                st = hy__error(HY_ERR_UNSUPPORTED, "training graph: %s: grouped or non-square conv", nd->name);
                goto done;
            }
            if (!cs->has_bn && (!head || nd->n_src > 1)) {
                st = hy__error(HY_ERR_UNSUPPORTED, "training graph: %s: a conv without BatchNorm outside the head",
                               nd->name);
                goto done;
            }
            if (cs->has_bn && (tm->bn_w[cp->weight_id] < 0 || tm->bn_b[cp->weight_id] < 0 ||
                               tm->bn_rm[cp->weight_id] < 0 || tm->bn_rv[cp->weight_id] < 0)) {
                st = hy__error(HY_ERR_INVALID_ARG, "training graph: %s: BatchNorm tensors missing", nd->name);
                goto done;
            }
            if (tm->conv_w[cp->weight_id] < 0 || (!cs->has_bn && tm->conv_b[cp->weight_id] < 0)) {
                st = hy__error(HY_ERR_INVALID_ARG, "training graph: %s: conv tensors missing", nd->name);
                goto done;
            }
            tn->run = 1;
            tn->id = cp->weight_id;
            tn->has_bn = cs->has_bn;
            /* the class conv's sigmoid belongs to the loss: raw logits */
            tn->act = cs->has_bn ? cp->act : HY_ACT_NONE;
            if (tn->act != HY_ACT_NONE && tn->act != HY_ACT_SILU) {
                st = hy__error(HY_ERR_UNSUPPORTED, "training graph: %s: activation %d", nd->name, tn->act);
                goto done;
            }
            tn->tc.cin = cp->cin;
            tn->tc.cout = cp->cout;
            tn->tc.k = cp->kh;
            tn->tc.stride = cp->stride;
            tn->tc.pad = cp->pad;
            const hy__tensor *y = &gr->tensors[nd->dst];
            tn->macs = (double)g->n * (double)cp->cout * (double)(y->ne[2] * y->ne[3]) * (double)cp->cin *
                       (double)(cp->kh * cp->kw);
            break;
        }
        default:
            st = hy__error(HY_ERR_UNSUPPORTED, "training graph: %s: op %s", nd->name, hy__op_name(nd->op));
            goto done;
        }
    }
    for (int l = 0; l < g->n_levels; l++) {
        g->tt[dn->src[2 * l]].last_use = nn;
        g->tt[dn->src[2 * l + 1]].last_use = nn;
    }
    /* Root lifetimes (as hy__graph_plan: a view nobody produces only extends the end). */
    for (int r = 0; r < g->n_roots; r++) {
        g->roots[r].start = nn + 1;
        g->roots[r].end = -1;
    }
    for (int t = 0; t < nt; t++) {
        if (g->tt[t].root < 0) continue;
        troot *r = &g->roots[g->tt[t].root];
        const hy__tensor *x = &gr->tensors[t];
        int end = g->tt[t].last_use;
        if (x->producer < 0 && x->view_src >= 0) {
            if (end > r->end) r->end = end;
            continue;
        }
        int start = x->producer < 0 ? 0 : x->producer;
        if (end < start) end = start;
        if (start < r->start) r->start = start;
        if (end > r->end) r->end = end;
    }
    /* Which roots may need a gradient: those holding a tensor that does with nothing frozen. */
    compute_needs_grad(g, g->ng, 1);
    /* Memory: activations, z / mean / invstd, flags, then dz, scratch, gradients. */
    size_t off = 0, n_flags = 0;
    for (int r = 0; r < g->n_roots; r++) {
        troot *rt = &g->roots[r];
        rt->act = off;
        off += align_up((size_t)g->n * (size_t)rt->c * (size_t)rt->h * (size_t)rt->w * sizeof(float));
        rt->flag0 = n_flags;
        n_flags += (size_t)rt->c;
    }
    for (int t = 0; t < nt; t++)
        if (g->ng[t] && g->tt[t].root >= 0) {
            troot *rt = &g->roots[g->tt[t].root];
            rt->grad_size = align_up((size_t)g->n * (size_t)rt->c * (size_t)rt->h * (size_t)rt->w * sizeof(float));
        }
    size_t dz = 0, ws = 0;
    int nth = hy__threadpool_size(g->p.tp);
    for (int ni = 0; ni < nn; ni++) {
        tnode *tn = &g->nodes[ni];
        if (!tn->run || gr->nodes[ni].op != HY_OP_CONV2D) continue;
        const hy__tensor *x = &gr->tensors[gr->nodes[ni].src[0]], *y = &gr->tensors[gr->nodes[ni].dst];
        size_t ysz = (size_t)g->n * (size_t)y->ne[1] * (size_t)(y->ne[2] * y->ne[3]) * sizeof(float);
        size_t w = g->ops->conv_ws(&tn->tc, g->n, (int)x->ne[2], (int)x->ne[3], nth);
        if (w > ws) ws = w;
        if (!tn->has_bn) continue;
        if (ysz > dz) dz = ysz;
        tn->z = off;
        off += align_up(ysz);
        tn->mean = off;
        off += align_up((size_t)y->ne[1] * sizeof(float));
        tn->invstd = off;
        off += align_up((size_t)y->ne[1] * sizeof(float));
    }
    g->dz = off;
    off += align_up(dz);
    g->ws = off;
    g->ws_size = align_up(ws);
    off += g->ws_size;
    blocks = hy__calloc((size_t)g->n_roots, sizeof *blocks);
    if (!blocks) {
        st = hy__error(HY_ERR_NOMEM, "training graph: out of memory");
        goto done;
    }
    int nb = 0;
    g->grad_bytes_no_reuse = 0;
    for (int r = 0; r < g->n_roots; r++) {
        if (!g->roots[r].grad_size) continue;
        blocks[nb].id = r;
        blocks[nb].size = g->roots[r].grad_size;
        blocks[nb].start = g->roots[r].start;
        blocks[nb].end = g->roots[r].end;
        g->grad_bytes_no_reuse += g->roots[r].grad_size;
        nb++;
    }
    g->grad_region = hy__place_blocks(blocks, nb);
    for (int i = 0; i < nb; i++) g->roots[blocks[i].id].grad = blocks[i].offset;
    g->grad_base = off;
    off += g->grad_region;
    g->bytes = off + align_up(n_flags);
    g->n_flags = n_flags;
    g->mem = hy__aligned_alloc(ALIGN, g->bytes);
    if (!g->mem) {
        st = hy__error(HY_ERR_NOMEM, "training graph: out of memory (%zu MiB for batch %d)", g->bytes >> 20, g->n);
        goto done;
    }
    g->flags = g->mem + off;
done:
    hy__free(root_of);
    hy__free(blocks);
    return st;
}

hy_status hy__tgraph_create(hy__tmodel *tm, const hy__tgraph_params *p, int n, int h, int w, hy__tgraph **out) {
    *out = NULL;
    hy__tgraph_params dp = hy__tgraph_default_params();
    if (!p) p = &dp;
    const char *dev = p->device ? p->device : "cpu";
    const struct hy__backend_i *bi = hy__backend_find(dev);
    if (!bi) return HY_ERR_UNSUPPORTED;
    if (!bi->train) return hy__error(HY_ERR_UNSUPPORTED, "backend %s cannot train", dev);
    if (n < 1 || n > 1024) return hy__error(HY_ERR_INVALID_ARG, "training graph: batch size %d (1 to 1024)", n);
    hy__tgraph *g = hy__calloc(1, sizeof *g);
    if (!g) return hy__error(HY_ERR_NOMEM, "training graph: out of memory");
    g->tm = tm;
    g->ops = bi->train;
    g->p = *p;
    g->n = n;
    g->fwd_train = -1;
    hy_status st = hy__arch_graph_build(&tm->cfg, n, h, w, &g->g);
    if (!st) st = plan(g);
    if (st) {
        hy__tgraph_free(g);
        return st;
    }
    *out = g;
    return HY_OK;
}

void hy__tgraph_free(hy__tgraph *g) {
    if (!g) return;
    hy__aligned_free(g->mem);
    hy__free(g->roots);
    hy__free(g->tt);
    hy__free(g->nodes);
    hy__free(g->ng);
    hy__graph_free(g->g);
    hy__free(g);
}

float *hy__tgraph_input(hy__tgraph *g) { return act_view(g, g->g->input).d; }

int hy__tgraph_levels(const hy__tgraph *g) { return g->n_levels; }

static hy__tview root_view(const hy__tgraph *g, int r, size_t base) {
    const troot *rt = &g->roots[r];
    return hy__tview_make((float *)(g->mem + base), g->n, rt->c, rt->h, rt->w);
}

hy__tview hy__tgraph_output(const hy__tgraph *g, int level) {
    HY_ASSERT(level >= 0 && level < g->n_levels);
    return root_view(g, g->p_root[level], g->roots[g->p_root[level]].act);
}

hy__tview hy__tgraph_output_grad(const hy__tgraph *g, int level) {
    HY_ASSERT(level >= 0 && level < g->n_levels);
    return root_view(g, g->p_root[level], g->grad_base + g->roots[g->p_root[level]].grad);
}

size_t hy__tgraph_bytes(const hy__tgraph *g) { return g->bytes; }

/* ---- forward -------------------------------------------------------------------------- */
static float *param(const hy__tmodel *tm, int i) { return i >= 0 ? hy__tmodel_tensor(tm, i) : NULL; }
static float *pgrad(const hy__tmodel *tm, int i) { return st_trainable(tm, i) ? hy__tmodel_grad(tm, i) : NULL; }

/* Is input s of concat node nd already in place in its output? */
static int concat_in_place(const hy__tgraph *g, const hy__node *nd, int s, int c0) {
    const tten *x = &g->tt[nd->src[s]], *y = &g->tt[nd->dst];
    return x->root == y->root && x->c0 == y->c0 + c0;
}

hy_status hy__tgraph_forward(hy__tgraph *g, int train) {
    const hy__train_ops *ops = g->ops;
    hy__tmodel *tm = g->tm;
    hy__threadpool *tp = g->p.tp;
    void *ws = g->mem + g->ws;
    train = train ? 1 : 0;
    for (int ni = 0; ni < g->g->n_nodes; ni++) {
        const hy__node *nd = &g->g->nodes[ni];
        const tnode *tn = &g->nodes[ni];
        if (!tn->run) continue;
        hy__tview y = act_view(g, nd->dst), x = act_view(g, nd->src[0]);
        switch (nd->op) {
        case HY_OP_CONV2D: {
            int id = tn->id;
            if (!tn->has_bn) {
                ops->conv_fwd(&tn->tc, x, param(tm, tm->conv_w[id]), param(tm, tm->conv_b[id]), y, ws, tp);
                break;
            }
            hy__tview z = hy__tview_make((float *)(g->mem + tn->z), g->n, y.c, y.h, y.w);
            ops->conv_fwd(&tn->tc, x, param(tm, tm->conv_w[id]), NULL, z, ws, tp);
            hy__tview add;
            if (nd->n_src > 1) add = act_view(g, nd->src[1]);
            ops->bn_act_fwd(z, param(tm, tm->bn_w[id]), param(tm, tm->bn_b[id]), param(tm, tm->bn_rm[id]),
                            param(tm, tm->bn_rv[id]), g->p.bn_momentum, g->p.bn_eps, train, tn->act,
                            nd->n_src > 1 ? &add : NULL, y, (float *)(g->mem + tn->mean),
                            (float *)(g->mem + tn->invstd), tp);
            if (train) tm->nbt[id]++;
            break;
        }
        case HY_OP_MAXPOOL2D:
            ops->maxpool_fwd(x, nd->p.pool.k, y, tp);
            break;
        case HY_OP_UPSAMPLE2X:
            ops->upsample2x_fwd(x, y, tp);
            break;
        case HY_OP_CONCAT: {
            int c0 = 0;
            for (int s = 0; s < nd->n_src; s++) {
                hy__tview xs = act_view(g, nd->src[s]);
                if (!concat_in_place(g, nd, s, c0)) ops->copy(xs, hy__tview_slice(y, c0, xs.c), 0, tp);
                c0 += xs.c;
            }
            break;
        }
        default:
            break;
        }
    }
    g->fwd_train = train;
    return HY_OK;
}

/* ---- backward ------------------------------------------------------------------------- */
/* db += the per-channel sum of dy (a bias whose weight is frozen). */
static void bias_grad(hy__tview dy, float *db) {
    size_t plane = (size_t)dy.h * (size_t)dy.w;
    for (int c = 0; c < dy.c; c++) {
        double s = 0;
        for (int b = 0; b < dy.n; b++) {
            const float *p = dy.d + (size_t)b * dy.bs + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++) s += p[i];
        }
        db[c] += (float)s;
    }
}

hy_status hy__tgraph_backward(hy__tgraph *g) {
    if (g->fwd_train < 0) return hy__error(HY_ERR_INVALID_ARG, "training graph: backward before forward");
    const hy__train_ops *ops = g->ops;
    hy__tmodel *tm = g->tm;
    hy__threadpool *tp = g->p.tp;
    void *ws = g->mem + g->ws;
    int train = g->fwd_train;
    int *ng = g->ng;
    compute_needs_grad(g, ng, 0);
    memset(g->flags, 0, g->n_flags);
    for (int l = 0; l < g->n_levels; l++) {
        const troot *r = &g->roots[g->p_root[l]];
        memset(g->flags + r->flag0, 1, (size_t)r->c);
    }
    for (int ni = g->g->n_nodes - 1; ni >= 0; ni--) {
        const hy__node *nd = &g->g->nodes[ni];
        const tnode *tn = &g->nodes[ni];
        if (!tn->run || !ng[nd->dst]) continue;
        int xs = nd->src[0];
        hy__tview dy = grad_ready(g, nd->dst);
        switch (nd->op) {
        case HY_OP_CONV2D: {
            int id = tn->id;
            float *dw = pgrad(tm, tm->conv_w[id]);
            hy__tview x = act_view(g, xs), dz = dy;
            if (nd->n_src > 1 && ng[nd->src[1]]) {
                int acc = grad_begin(g, nd->src[1]);
                ops->copy(dy, grad_view(g, nd->src[1]), acc, tp);
            }
            if (tn->has_bn) {
                float *dgamma = pgrad(tm, tm->bn_w[id]), *dbeta = pgrad(tm, tm->bn_b[id]);
                int need_dz = dw || ng[xs];
                if (!need_dz && !dgamma && !dbeta) break;
                dz = hy__tview_make(need_dz ? (float *)(g->mem + g->dz) : NULL, g->n, dy.c, dy.h, dy.w);
                hy__tview z = hy__tview_make((float *)(g->mem + tn->z), g->n, dy.c, dy.h, dy.w);
                ops->bn_act_bwd(z, dy, param(tm, tm->bn_w[id]), param(tm, tm->bn_b[id]),
                                (const float *)(g->mem + tn->mean), (const float *)(g->mem + tn->invstd), train,
                                tn->act, dz, dgamma, dbeta, tp);
                if (dw) ops->conv_bwd_weight(&tn->tc, x, dz, dw, NULL, ws, tp);
            } else {
                float *db = pgrad(tm, tm->conv_b[id]);
                if (dw) ops->conv_bwd_weight(&tn->tc, x, dz, dw, db, ws, tp);
                else if (db) bias_grad(dz, db);
            }
            if (ng[xs]) {
                int acc = grad_begin(g, xs);
                ops->conv_bwd_data(&tn->tc, dz, param(tm, tm->conv_w[id]), grad_view(g, xs), acc, ws, tp);
            }
            break;
        }
        case HY_OP_MAXPOOL2D:
            if (ng[xs]) {
                int acc = grad_begin(g, xs);
                ops->maxpool_bwd(act_view(g, xs), dy, nd->p.pool.k, grad_view(g, xs), acc, tp);
            }
            break;
        case HY_OP_UPSAMPLE2X:
            if (ng[xs]) {
                int acc = grad_begin(g, xs);
                ops->upsample2x_bwd(dy, grad_view(g, xs), acc, tp);
            }
            break;
        case HY_OP_CONCAT: {
            int c0 = 0;
            for (int s = 0; s < nd->n_src; s++) {
                int t = nd->src[s], c = (int)gt(g, t)->ne[1];
                /* in place: its gradient is that slice of dy, already there */
                if (ng[t] && !concat_in_place(g, nd, s, c0)) {
                    int acc = grad_begin(g, t);
                    ops->copy(hy__tview_slice(dy, c0, c), grad_view(g, t), acc, tp);
                }
                c0 += c;
            }
            break;
        }
        default:
            break;
        }
    }
    return HY_OK;
}

double hy__tgraph_flops(const hy__tgraph *g, int backward) {
    int *ng = hy__calloc((size_t)g->g->n_tensors, sizeof *ng);
    if (!ng) return 0;
    compute_needs_grad(g, ng, 0);
    double f = 0;
    for (int ni = 0; ni < g->g->n_nodes; ni++) {
        const hy__node *nd = &g->g->nodes[ni];
        const tnode *tn = &g->nodes[ni];
        if (!tn->run || nd->op != HY_OP_CONV2D) continue;
        if (!backward) {
            f += 2 * tn->macs;
            continue;
        }
        if (!ng[nd->dst]) continue;
        if (st_trainable(g->tm, g->tm->conv_w[tn->id])) f += 2 * tn->macs;
        if (ng[nd->src[0]]) f += 2 * tn->macs;
    }
    hy__free(ng);
    return f;
}
