#include "tensor/graph.h"

#include <stdlib.h>
#include <string.h>

const char *hy__op_name(enum hy__op op) {
    static const char *names[HY_OP_COUNT] = {"input", "conv2d", "maxpool2d", "upsample2x", "concat", "detect",
                                             "detect_anchor"};
    return (unsigned)op < HY_OP_COUNT ? names[op] : "unknown";
}

hy_status hy__graph_create(int n, hy__graph **out) {
    if (n < 1 || n > 1024) return hy__error(HY_ERR_INVALID_ARG, "graph: batch size %d must be between 1 and 1024", n);
    hy__graph *g = hy__calloc(1, sizeof *g);
    if (!g) return hy__error(HY_ERR_NOMEM, "graph: out of memory");
    g->n = n;
    g->input = g->output = -1;
    *out = g;
    return HY_OK;
}

void hy__graph_free(hy__graph *g) {
    if (!g) return;
    hy__free(g->tensors);
    hy__free(g->nodes);
    hy__free(g);
}

static void set_name(char *dst, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n >= HY_GRAPH_NAME) n = HY_GRAPH_NAME - 1;
    if (n) memcpy(dst, name, n);
    dst[n] = 0;
}

static int new_tensor(hy__graph *g) {
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
        hy__tensor *t = hy__realloc(g->tensors, (size_t)cap * sizeof *t);
        if (!t) return -1;
        g->tensors = t;
        g->cap_tensors = cap;
    }
    hy__tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->view_src = -1;
    t->producer = -1;
    t->last_use = -1;
    return g->n_tensors++;
}

int hy__graph_tensor(hy__graph *g, int64_t c, int64_t h, int64_t w, const char *name) {
    int i = new_tensor(g);
    if (i < 0) return -1;
    hy__tensor *t = &g->tensors[i];
    t->ne[0] = g->n;
    t->ne[1] = c;
    t->ne[2] = h;
    t->ne[3] = w;
    set_name(t->name, name);
    return i;
}

int hy__graph_view(hy__graph *g, int src, int64_t c0, int64_t c, const char *name) {
    HY_ASSERT(src >= 0 && src < g->n_tensors);
    int64_t h = g->tensors[src].ne[2], w = g->tensors[src].ne[3];
    HY_ASSERT(c0 >= 0 && c0 + c <= g->tensors[src].ne[1]);
    int i = new_tensor(g);
    if (i < 0) return -1;
    hy__tensor *t = &g->tensors[i];
    t->ne[0] = g->n;
    t->ne[1] = c;
    t->ne[2] = h;
    t->ne[3] = w;
    t->view_src = src;
    t->view_offs = (size_t)(c0 * h * w);
    set_name(t->name, name);
    return i;
}

int hy__graph_node(hy__graph *g, enum hy__op op, const int *src, int n_src, int dst, const char *name) {
    HY_ASSERT(n_src <= HY_GRAPH_MAX_SRC);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        hy__node *n = hy__realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return -1;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    int idx = g->n_nodes++;
    hy__node *n = &g->nodes[idx];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_src = n_src;
    for (int i = 0; i < n_src; i++) {
        HY_ASSERT(src[i] >= 0 && src[i] < g->n_tensors);
        n->src[i] = src[i];
    }
    n->dst = dst;
    g->tensors[dst].producer = idx;
    set_name(n->name, name);
    return idx;
}

int hy__graph_root(const hy__graph *g, int t, size_t *offs) {
    size_t o = 0;
    while (g->tensors[t].view_src >= 0) {
        o += g->tensors[t].view_offs;
        t = g->tensors[t].view_src;
    }
    if (offs) *offs = o;
    return t;
}

float *hy__graph_data(const hy__graph *g, void *arena, int t) {
    size_t offs;
    int r = hy__graph_root(g, t, &offs);
    return (float *)((char *)arena + g->tensors[r].offset) + offs;
}

size_t hy__graph_bstride(const hy__graph *g, int t) {
    return hy__tensor_image_numel(&g->tensors[hy__graph_root(g, t, NULL)]);
}

void hy__graph_detect_levels(const hy__graph *g, void *arena, const hy__node *n, int b, hy__detect_level *lv) {
    const hy__detect_params *dp = &n->p.detect;
    HY_ASSERT(n->op == HY_OP_DETECT && dp->n_levels <= 4 && n->n_src == 2 * dp->n_levels);
    for (int l = 0; l < dp->n_levels; l++) {
        lv[l].box = hy__graph_image(g, arena, n->src[2 * l], b);
        lv[l].cls = hy__graph_image(g, arena, n->src[2 * l + 1], b);
        lv[l].h = (int)g->tensors[n->src[2 * l]].ne[2];
        lv[l].w = (int)g->tensors[n->src[2 * l]].ne[3];
    }
}

void hy__graph_detect_anchor_levels(const hy__graph *g, void *arena, const hy__node *n, int b, hy__detect_level *lv) {
    const hy__detect_anchor_params *dp = &n->p.danchor;
    HY_ASSERT(n->op == HY_OP_DETECT_ANCHOR && dp->n_levels <= 4 && n->n_src == dp->n_levels);
    for (int l = 0; l < dp->n_levels; l++) {
        lv[l].box = hy__graph_image(g, arena, n->src[l], b);
        lv[l].cls = NULL;
        lv[l].h = (int)g->tensors[n->src[l]].ne[2];
        lv[l].w = (int)g->tensors[n->src[l]].ne[3];
    }
}

hy_status hy__graph_detect_anchor_check(const hy__graph *g, const hy__node *n) {
    const hy__detect_anchor_params *dp = &n->p.danchor;
    if (dp->na < 1 || dp->na > HY_DETECT_MAX_ANCHORS || dp->nc < 0 || dp->nc > (1 << 20) || dp->n_levels < 1 ||
        dp->n_levels > 4 || n->n_src != dp->n_levels)
        return hy__error(HY_ERR_INVALID_ARG, "%s: detect_anchor with na %d, nc %d, %d levels, %d sources", n->name,
                         dp->na, dp->nc, dp->n_levels, n->n_src);
    const int64_t no = 5 + (int64_t)dp->nc;
    int64_t rows = 0;
    for (int l = 0; l < dp->n_levels; l++) {
        const hy__tensor *t = &g->tensors[n->src[l]];
        if (t->ne[1] != dp->na * no || dp->stride[l] <= 0)
            return hy__error(HY_ERR_INVALID_ARG, "%s: detect_anchor level %d: %lld channels (want %lld), stride %d",
                             n->name, l, (long long)t->ne[1], (long long)(dp->na * no), dp->stride[l]);
        rows += dp->na * t->ne[2] * t->ne[3];
    }
    if ((int64_t)hy__tensor_image_numel(&g->tensors[n->dst]) != rows * no)
        return hy__error(HY_ERR_INVALID_ARG, "%s: detect_anchor output holds %zu values, %lld rows of %lld needed",
                         n->name, hy__tensor_image_numel(&g->tensors[n->dst]), (long long)rows, (long long)no);
    return HY_OK;
}

static int by_size_desc(const void *a, const void *b) {
    const hy__live_block *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

size_t hy__place_blocks(hy__live_block *b, int n) {
    qsort(b, (size_t)n, sizeof *b, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        for (int changed = 1; changed;) {
            changed = 0;
            for (int j = 0; j < i; j++) {
                if (b[j].end < b[i].start || b[i].end < b[j].start) continue;
                if (off < b[j].offset + b[j].size && b[j].offset < off + b[i].size) {
                    off = b[j].offset + b[j].size;
                    changed = 1;
                }
            }
        }
        b[i].offset = off;
        if (off + b[i].size > total) total = off + b[i].size;
    }
    return total;
}

static void alias_concat_inputs(hy__graph *g) {
    for (int ni = 0; ni < g->n_nodes; ni++) {
        hy__node *n = &g->nodes[ni];
        if (n->op != HY_OP_CONCAT) continue;
        int64_t c0 = 0;
        for (int s = 0; s < n->n_src; s++) {
            hy__tensor *t = &g->tensors[n->src[s]];
            int64_t c = t->ne[1];
            /* Only storage owners produced by a node (not the graph input, not already living
             * elsewhere) and not the concat output itself can be placed into the slot. */
            if (t->view_src < 0 && t->producer >= 0 && n->src[s] != n->dst && n->src[s] != g->output &&
                n->src[s] != g->input) {
                t->view_src = n->dst;
                t->view_offs = (size_t)(c0 * t->ne[2] * t->ne[3]);
            }
            c0 += c;
        }
    }
}

hy_status hy__graph_plan(hy__graph *g) {
    alias_concat_inputs(g);
    /* Last use of every tensor. */
    for (int i = 0; i < g->n_tensors; i++) g->tensors[i].last_use = g->tensors[i].producer;
    for (int ni = 0; ni < g->n_nodes; ni++)
        for (int s = 0; s < g->nodes[ni].n_src; s++) {
            hy__tensor *t = &g->tensors[g->nodes[ni].src[s]];
            if (t->last_use < ni) t->last_use = ni;
        }
    if (g->output >= 0) g->tensors[g->output].last_use = g->n_nodes;
    /* Lifetime of each root = union over the tensors living in it. */
    hy__live_block *blocks = hy__calloc((size_t)g->n_tensors + (size_t)g->n_nodes, sizeof *blocks);
    int *root_block = hy__malloc((size_t)g->n_tensors * sizeof(int));
    if (!blocks || !root_block) {
        hy__free(blocks);
        hy__free(root_block);
        return hy__error(HY_ERR_NOMEM, "graph plan: out of memory");
    }
    int nb = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        root_block[i] = -1;
        if (g->tensors[i].view_src >= 0) continue;
        root_block[i] = nb;
        blocks[nb].id = i;
        blocks[nb].size = (hy__tensor_numel(&g->tensors[i]) * sizeof(float) + 63) & ~(size_t)63;
        blocks[nb].start = g->n_nodes + 1;
        blocks[nb].end = -1;
        nb++;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        hy__live_block *b = &blocks[root_block[hy__graph_root(g, i, NULL)]];
        const hy__tensor *t = &g->tensors[i];
        /* A view nobody produces (a C2f split chunk) holds data written by whoever produces
         * its source, which the union covers: it must not stretch the block back to node 0
         * (that kept every C2f concat buffer alive from the first node: 26 -> 12 MiB at 640). */
        if (t->producer < 0 && t->view_src >= 0) {
            if (t->last_use > b->end) b->end = t->last_use;
            continue;
        }
        int start = t->producer < 0 ? 0 : t->producer;
        int end = t->last_use < start ? start : t->last_use;
        if (start < b->start) b->start = start;
        if (end > b->end) b->end = end;
    }
    /* A workspace is alive at its node only: it may not overlap that node's inputs or output
     * (alive there too) but reuses whatever is dead by then. */
    for (int ni = 0; ni < g->n_nodes; ni++) {
        g->nodes[ni].ws_offset = 0;
        if (!g->nodes[ni].ws_size) continue;
        blocks[nb].id = -1 - ni;
        blocks[nb].size = (g->nodes[ni].ws_size + 63) & ~(size_t)63;
        blocks[nb].start = blocks[nb].end = ni;
        nb++;
    }
    const size_t total = hy__place_blocks(blocks, nb);
    for (int i = 0; i < nb; i++) {
        /* id: tensor index; -1 - node index for a node's workspace */
        if (blocks[i].id >= 0)
            g->tensors[blocks[i].id].offset = blocks[i].offset;
        else
            g->nodes[-1 - blocks[i].id].ws_offset = blocks[i].offset;
    }
    g->arena_size = total;
    hy__free(blocks);
    hy__free(root_block);
    return HY_OK;
}
