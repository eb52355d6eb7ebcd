/* Ultralytics modules over the two-mode builder (see blocks.h). */
#include "model/blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hy__model_spec_free(hy__model_spec *s) {
    if (!s) return;
    hy__free(s->tensors);
    hy__free(s->fused);
    hy__free(s->convs);
    hy__free(s);
}

/* ---- scaling ------------------------------------------------------------------------- */
int hy__make_divisible(double x, int divisor) { return (int)(ceil(x / divisor) * divisor); }

int hy__scale_width(int c, double width, int max_channels) {
    return hy__make_divisible((double)HY_MIN(c, max_channels) * width, 8);
}

int hy__scale_depth(int n, double depth) {
    if (n <= 1) return n;
    int r = (int)nearbyint((double)n * depth);
    return r < 1 ? 1 : r;
}

/* ---- spec tables --------------------------------------------------------------------- */
static void add_to(hy__builder *b, hy__tensor_spec **list, int *n, int *cap, const char *prefix, const char *suffix,
                   int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, hy_dtype dt) {
    if (b->st || !b->spec) return;
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 512;
        hy__tensor_spec *t = hy__realloc(*list, (size_t)c * sizeof *t);
        if (!t) {
            b->st = hy__error(HY_ERR_NOMEM, "model spec: out of memory");
            return;
        }
        *list = t;
        *cap = c;
    }
    if (strlen(prefix) + 1 + strlen(suffix) >= sizeof (*list)->name) {
        b->st = hy__error(HY_ERR_INVALID_ARG, "model spec: tensor name %.80s.%s too long", prefix, suffix);
        return;
    }
    hy__tensor_spec *t = &(*list)[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->shape[3] = d3;
    t->dtype = dt;
}

void hy__builder_add_spec(hy__builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                          int64_t d2, int64_t d3, hy_dtype dt) {
    if (!b->spec) return;
    add_to(b, &b->spec->tensors, &b->spec->n_tensors, &b->cap_tensors, prefix, suffix, ndim, d0, d1, d2, d3, dt);
}

void hy__builder_add_fused(hy__builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                           int64_t d2, int64_t d3) {
    if (!b->spec) return;
    add_to(b, &b->spec->fused, &b->spec->n_fused, &b->cap_fused, prefix, suffix, ndim, d0, d1, d2, d3, HY_DTYPE_F32);
}

void hy__builder_add_conv_spec(hy__builder *b, const char *prefix, int cin, int cout, int k, int s, int groups,
                               int has_bn, int act) {
    hy__model_spec *sp = b->spec;
    if (b->st || !sp) return;
    if (strlen(prefix) >= sizeof sp->convs->prefix) {
        b->st = hy__error(HY_ERR_INVALID_ARG, "model spec: module name %.80s... too long", prefix);
        return;
    }
    if (groups < 1 || cin % groups || cout % groups) {
        b->st = hy__error(HY_ERR_INVALID_ARG, "%s: %d -> %d channels do not split into %d groups", prefix, cin, cout,
                          groups);
        return;
    }
    if (sp->n_convs == b->cap_convs) {
        int cap = b->cap_convs ? b->cap_convs * 2 : 128;
        hy__conv_spec *c = hy__realloc(sp->convs, (size_t)cap * sizeof *c);
        if (!c) {
            b->st = hy__error(HY_ERR_NOMEM, "model spec: out of memory");
            return;
        }
        sp->convs = c;
        b->cap_convs = cap;
    }
    hy__conv_spec *c = &sp->convs[sp->n_convs++];
    memset(c, 0, sizeof *c);
    snprintf(c->prefix, sizeof c->prefix, "%s", prefix);
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->stride = s;
    c->pad = k / 2;
    c->groups = groups;
    c->has_bn = has_bn;
    c->act = act;
    int cg = cin / groups; /* weight (cout, cin / groups, k, k) */
    if (has_bn) {
        hy__builder_add_spec(b, prefix, "conv.weight", 4, cout, cg, k, k, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bn.weight", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bn.bias", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bn.running_mean", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bn.running_var", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bn.num_batches_tracked", 0, 0, 0, 0, 0, HY_DTYPE_I64);
        hy__builder_add_fused(b, prefix, "conv.weight", 4, cout, cg, k, k);
        hy__builder_add_fused(b, prefix, "conv.bias", 1, cout, 0, 0, 0);
    } else {
        hy__builder_add_spec(b, prefix, "weight", 4, cout, cg, k, k, HY_DTYPE_F32);
        hy__builder_add_spec(b, prefix, "bias", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        hy__builder_add_fused(b, prefix, "weight", 4, cout, cg, k, k);
        hy__builder_add_fused(b, prefix, "bias", 1, cout, 0, 0, 0);
    }
}

/* ---- graph helpers ------------------------------------------------------------------- */
int hy__builder_channels(const hy__builder *b, int x) { return b->g && x >= 0 ? (int)b->g->tensors[x].ne[1] : 0; }

int hy__builder_tensor(hy__builder *b, int c, int64_t h, int64_t w, const char *name) {
    if (b->st || !b->g) return -1;
    int t = hy__graph_tensor(b->g, c, h, w, name);
    if (t < 0) b->st = hy__error(HY_ERR_NOMEM, "graph: out of memory");
    return t;
}

int hy__builder_node(hy__builder *b, enum hy__op op, const int *src, int n_src, int dst, const char *name) {
    if (b->st || !b->g) return -1;
    int n = hy__graph_node(b->g, op, src, n_src, dst, name);
    if (n < 0) b->st = hy__error(HY_ERR_NOMEM, "graph: out of memory");
    return n;
}

/* ---- modules ------------------------------------------------------------------------- */
#define NAME_CAP 128
/* dst = prefix + suffix, cut at NAME_CAP - 1 (too long a name is refused by the spec tables). */
static void join(char *dst, const char *prefix, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(suffix);
    if (a > NAME_CAP - 1) a = NAME_CAP - 1;
    if (b > NAME_CAP - 1 - a) b = NAME_CAP - 1 - a;
    memcpy(dst, prefix, a);
    memcpy(dst + a, suffix, b);
    dst[a + b] = 0;
}
int hy__blk_conv_pad_id(hy__builder *b, int id, const char *prefix, int x, int c1, int c2, int k, int s, int p,
                        int groups, int has_bn, int act, int add) {
    if (!b->g) {
        hy__builder_add_conv_spec(b, prefix, c1, c2, k, s, groups, has_bn, act);
        if (!b->st && b->spec) b->spec->convs[b->spec->n_convs - 1].pad = p;
        return -1;
    }
    if (b->st) return -1;
    HY_ASSERT(hy__builder_channels(b, x) == c1);
    const hy__tensor *tx = &b->g->tensors[x];
    int y = hy__builder_tensor(b, c2, hy__conv_out((int)tx->ne[2], k, s, p), hy__conv_out((int)tx->ne[3], k, s, p),
                               prefix);
    int src[2] = {x, add};
    int n = hy__builder_node(b, HY_OP_CONV2D, src, add >= 0 ? 2 : 1, y, prefix);
    if (n < 0) return -1;
    hy__conv2d_params *cp = &b->g->nodes[n].p.conv;
    cp->cin = c1;
    cp->cout = c2;
    cp->kh = cp->kw = k;
    cp->stride = s;
    cp->pad = p;
    cp->act = act;
    cp->weight_id = id;
    cp->groups = groups;
    return y;
}

int hy__blk_conv_id(hy__builder *b, int id, const char *prefix, int x, int c1, int c2, int k, int s, int groups,
                    int has_bn, int act, int add) {
    return hy__blk_conv_pad_id(b, id, prefix, x, c1, c2, k, s, k / 2, groups, has_bn, act, add);
}

int hy__blk_conv_p(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int p) {
    return hy__blk_conv_pad_id(b, hy__builder_conv_id(b), prefix, x, c1, c2, k, s, p, 1, 1, HY_ACT_SILU, -1);
}

int hy__blk_conv(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int g) {
    return hy__blk_conv_id(b, hy__builder_conv_id(b), prefix, x, c1, c2, k, s, g, 1, HY_ACT_SILU, -1);
}

int hy__blk_conv2d(hy__builder *b, const char *prefix, int x, int c1, int c2, int k, int s, int act) {
    return hy__blk_conv_id(b, hy__builder_conv_id(b), prefix, x, c1, c2, k, s, 1, 0, act, -1);
}

int hy__blk_bottleneck(hy__builder *b, const char *prefix, int x, int c1, int c2, int shortcut, int g, int k1, int k2,
                       double e) {
    char n1[NAME_CAP], n2[NAME_CAP];
    int c_ = (int)(c2 * e);
    join(n1, prefix, ".cv1");
    join(n2, prefix, ".cv2");
    int t = hy__blk_conv(b, n1, x, c1, c_, k1, 1, 1);
    int add = shortcut && c1 == c2 ? x : -1;
    return hy__blk_conv_id(b, hy__builder_conv_id(b), n2, t, c_, c2, k2, 1, g, 1, HY_ACT_SILU, add);
}

/* The state_dict lists cv1, cv2, m.*: cv2's id (and spec row) comes before the bottlenecks. */
int hy__blk_c2f(hy__builder *b, const char *prefix, int x, int c1, int c2, int n, int shortcut, int g, double e) {
    char name[NAME_CAP], name2[NAME_CAP];
    int c = (int)(c2 * e);
    int id1 = hy__builder_conv_id(b), id2 = hy__builder_conv_id(b);
    join(name, prefix, ".cv1");
    join(name2, prefix, ".cv2");
    int y = hy__blk_conv_id(b, id1, name, x, c1, 2 * c, 1, 1, 1, 1, HY_ACT_SILU, -1);
    if (!b->g) hy__blk_conv_id(b, id2, name2, -1, (2 + n) * c, c2, 1, 1, 1, 1, HY_ACT_SILU, -1);
    int parts[HY_GRAPH_MAX_SRC];
    int np = 0;
    parts[np++] = y; /* y[0], y[1]: the two halves of cv1's output */
    int prev = b->g && !b->st ? hy__graph_view(b->g, y, c, c, name) : -1;
    if (b->g && !b->st && prev < 0) b->st = hy__error(HY_ERR_NOMEM, "graph: out of memory");
    for (int i = 0; i < n; i++) {
        char m[NAME_CAP];
        char sfx[24];
        snprintf(sfx, sizeof sfx, ".m.%d", i);
        join(m, prefix, sfx);
        prev = hy__blk_bottleneck(b, m, prev, c, c, shortcut, g, 3, 3, 1.0);
        if (np < HY_GRAPH_MAX_SRC) parts[np++] = prev;
        else if (!b->st)
            b->st = hy__error(HY_ERR_UNSUPPORTED, "%s: more than %d bottlenecks", prefix, HY_GRAPH_MAX_SRC - 1);
    }
    int cat = hy__blk_concat(b, prefix, parts, np);
    return b->g ? hy__blk_conv_id(b, id2, name2, cat, (2 + n) * c, c2, 1, 1, 1, 1, HY_ACT_SILU, -1) : -1;
}

int hy__blk_c3(hy__builder *b, const char *prefix, int x, int c1, int c2, int n, int shortcut, int g, double e) {
    char n1[NAME_CAP], n2[NAME_CAP], n3[NAME_CAP];
    int c_ = (int)(c2 * e);
    int id1 = hy__builder_conv_id(b), id2 = hy__builder_conv_id(b), id3 = hy__builder_conv_id(b);
    join(n1, prefix, ".cv1");
    join(n2, prefix, ".cv2");
    join(n3, prefix, ".cv3");
    if (!b->g) { /* spec rows in registration order: cv1, cv2, cv3, then m.* */
        hy__blk_conv_id(b, id1, n1, -1, c1, c_, 1, 1, 1, 1, HY_ACT_SILU, -1);
        hy__blk_conv_id(b, id2, n2, -1, c1, c_, 1, 1, 1, 1, HY_ACT_SILU, -1);
        hy__blk_conv_id(b, id3, n3, -1, 2 * c_, c2, 1, 1, 1, 1, HY_ACT_SILU, -1);
    }
    int a = b->g ? hy__blk_conv_id(b, id1, n1, x, c1, c_, 1, 1, 1, 1, HY_ACT_SILU, -1) : -1;
    for (int i = 0; i < n; i++) {
        char m[NAME_CAP], sfx[24];
        snprintf(sfx, sizeof sfx, ".m.%d", i);
        join(m, prefix, sfx);
        a = hy__blk_bottleneck(b, m, a, c_, c_, shortcut, g, 1, 3, 1.0);
    }
    if (!b->g) return -1;
    int bb = hy__blk_conv_id(b, id2, n2, x, c1, c_, 1, 1, 1, 1, HY_ACT_SILU, -1);
    int cat = hy__blk_concat(b, prefix, (int[]){a, bb}, 2);
    return hy__blk_conv_id(b, id3, n3, cat, 2 * c_, c2, 1, 1, 1, 1, HY_ACT_SILU, -1);
}

int hy__blk_sppf(hy__builder *b, const char *prefix, int x, int c1, int c2, int k) {
    char name[NAME_CAP];
    int c_ = c1 / 2;
    join(name, prefix, ".cv1");
    int y[4];
    y[0] = hy__blk_conv(b, name, x, c1, c_, 1, 1, 1);
    join(name, prefix, ".m");
    for (int i = 1; i < 4; i++) {
        if (!b->g || b->st) break;
        const hy__tensor *t = &b->g->tensors[y[i - 1]];
        y[i] = hy__builder_tensor(b, c_, t->ne[2], t->ne[3], name);
        int n = hy__builder_node(b, HY_OP_MAXPOOL2D, &y[i - 1], 1, y[i], name);
        if (n >= 0) b->g->nodes[n].p.pool.k = k;
    }
    int cat = hy__blk_concat(b, prefix, y, 4);
    join(name, prefix, ".cv2");
    return hy__blk_conv(b, name, cat, c_ * 4, c2, 1, 1, 1);
}

int hy__blk_upsample(hy__builder *b, const char *name, int x, int scale) {
    if (b->st) return -1;
    if (scale != 2) {
        b->st = hy__error(HY_ERR_UNSUPPORTED, "%s: upsample by %d (only 2 is supported)", name, scale);
        return -1;
    }
    if (!b->g) return -1;
    const hy__tensor *t = &b->g->tensors[x];
    int y = hy__builder_tensor(b, (int)t->ne[1], t->ne[2] * 2, t->ne[3] * 2, name);
    hy__builder_node(b, HY_OP_UPSAMPLE2X, &x, 1, y, name);
    return y;
}

int hy__blk_concat(hy__builder *b, const char *name, const int *xs, int n) {
    if (!b->g || b->st) return -1;
    int c = 0;
    for (int i = 0; i < n; i++) c += hy__builder_channels(b, xs[i]);
    const hy__tensor *t0 = &b->g->tensors[xs[0]];
    int y = hy__builder_tensor(b, c, t0->ne[2], t0->ne[3], name);
    hy__builder_node(b, HY_OP_CONCAT, xs, n, y, name);
    return y;
}

/* Per level cv2 (box) first for every level, then cv3 (cls), as Detect registers them. */
int hy__blk_detect(hy__builder *b, const char *prefix, const int *xs, const hy__detect_args *a) {
    if (b->st) return -1;
    if (a->nl < 1 || a->nl > 4 || a->reg_max < 1) {
        b->st = hy__error(HY_ERR_INVALID_ARG, "%s: %d levels, reg_max %d", prefix, a->nl, a->reg_max);
        return -1;
    }
    int c2 = HY_MAX(HY_MAX(16, a->ch[0] / 4), a->reg_max * 4);
    int c3 = HY_MAX(a->ch[0], HY_MIN(a->nc, 100));
    int outs[8];
    char n0[NAME_CAP], n1[NAME_CAP], n2[NAME_CAP];
    for (int br = 0; br < 2; br++) { /* cv2: box, cv3: cls */
        const char *cv = br ? "cv3" : "cv2";
        int cm = br ? c3 : c2, co = br ? a->nc : 4 * a->reg_max, act = br ? HY_ACT_SIGMOID : HY_ACT_NONE;
        for (int i = 0; i < a->nl; i++) {
            char sfx[24];
            snprintf(sfx, sizeof sfx, ".%s.%d.0", cv, i);
            join(n0, prefix, sfx);
            sfx[strlen(sfx) - 1] = '1';
            join(n1, prefix, sfx);
            sfx[strlen(sfx) - 1] = '2';
            join(n2, prefix, sfx);
            int t = hy__blk_conv(b, n0, xs[i], a->ch[i], cm, 3, 1, 1);
            t = hy__blk_conv(b, n1, t, cm, cm, 3, 1, 1);
            outs[2 * i + br] = hy__blk_conv2d(b, n2, t, cm, co, 1, 1, act);
        }
    }
    if (!b->g) {
        if (b->spec && !b->st) {
            if (strlen(prefix) >= sizeof b->spec->detect.prefix) {
                b->st = hy__error(HY_ERR_INVALID_ARG, "model spec: module name %.80s... too long", prefix);
                return -1;
            }
            snprintf(b->spec->detect.prefix, sizeof b->spec->detect.prefix, "%s", prefix);
            b->spec->detect.nc = a->nc;
            b->spec->detect.nl = a->nl;
            for (int i = 0; i < a->nl; i++) b->spec->detect.strides[i] = a->strides[i];
        }
        char dfl[NAME_CAP];
        join(dfl, prefix, ".dfl");
        hy__builder_add_spec(b, dfl, "conv.weight", 4, 1, a->reg_max, 1, 1, HY_DTYPE_F32);
        hy__builder_add_fused(b, dfl, "conv.weight", 4, 1, a->reg_max, 1, 1);
        return -1;
    }
    if (b->st) return -1;
    int64_t A = 0;
    for (int i = 0; i < a->nl; i++) A += b->g->tensors[xs[i]].ne[2] * b->g->tensors[xs[i]].ne[3];
    int y = hy__builder_tensor(b, 4 + a->nc, A, 1, "output0");
    int n = hy__builder_node(b, HY_OP_DETECT, outs, 2 * a->nl, y, prefix);
    if (n >= 0) {
        hy__detect_params *dp = &b->g->nodes[n].p.detect;
        dp->nc = a->nc;
        dp->reg_max = a->reg_max;
        dp->n_levels = a->nl;
        for (int i = 0; i < a->nl; i++) dp->stride[i] = a->strides[i];
        dp->dfl_weight_id = -1;
    }
    return y;
}

int hy__blk_detect_anchor(hy__builder *b, const char *prefix, const int *xs, const hy__detect_anchor_args *a) {
    if (b->st) return -1;
    if (a->nl < 1 || a->nl > 4 || a->na < 1 || a->na > HY_DETECT_MAX_ANCHORS || a->nc < 1) {
        b->st = hy__error(HY_ERR_INVALID_ARG, "%s: %d levels, %d anchors, %d classes", prefix, a->nl, a->na, a->nc);
        return -1;
    }
    const int no = 5 + a->nc;
    char name[NAME_CAP];
    if (!b->g && b->spec) { /* the anchors buffer is registered before the convs */
        if (strlen(prefix) >= sizeof b->spec->detect.prefix) {
            b->st = hy__error(HY_ERR_INVALID_ARG, "model spec: module name %.80s... too long", prefix);
            return -1;
        }
        hy__builder_add_spec(b, prefix, "anchors", 3, a->nl, a->na, 2, 0, HY_DTYPE_F32);
        hy__builder_add_fused(b, prefix, "anchors", 3, a->nl, a->na, 2, 0);
        hy__model_spec *sp = b->spec;
        snprintf(sp->detect.prefix, sizeof sp->detect.prefix, "%s", prefix);
        sp->detect.nc = a->nc;
        sp->detect.nl = a->nl;
        sp->detect.na = a->na;
        for (int i = 0; i < a->nl; i++) {
            sp->detect.strides[i] = a->strides[i];
            for (int j = 0; j < 2 * a->na; j++) sp->detect.anchors[i][j] = a->anchors[i][j];
        }
    }
    int outs[4];
    for (int i = 0; i < a->nl; i++) {
        char sfx[24];
        snprintf(sfx, sizeof sfx, ".m.%d", i);
        join(name, prefix, sfx);
        outs[i] = hy__blk_conv2d(b, name, xs[i], a->ch[i], a->na * no, 1, 1, HY_ACT_NONE);
    }
    if (!b->g || b->st) return -1;
    int64_t A = 0;
    for (int i = 0; i < a->nl; i++) A += b->g->tensors[outs[i]].ne[2] * b->g->tensors[outs[i]].ne[3];
    A *= a->na;
    int y = hy__builder_tensor(b, (int)A, no, 1, "output0");
    int n = hy__builder_node(b, HY_OP_DETECT_ANCHOR, outs, a->nl, y, prefix);
    if (n >= 0) {
        hy__detect_anchor_params *dp = &b->g->nodes[n].p.danchor;
        memset(dp, 0, sizeof *dp);
        dp->nc = a->nc;
        dp->na = a->na;
        dp->n_levels = a->nl;
        for (int i = 0; i < a->nl; i++) {
            dp->stride[i] = a->strides[i];
            for (int j = 0; j < 2 * a->na; j++) dp->anchors[i][j] = a->anchors[i][j];
        }
    }
    return y;
}

/* "<prefix>.<cv>.<level>.2.bias": the level, else -1 */
static int head_bias_level(const char *name, const char *prefix, const char *cv) {
    size_t pl = strlen(prefix), cl = strlen(cv);
    if (strncmp(name, prefix, pl) != 0 || name[pl] != '.' || strncmp(name + pl + 1, cv, cl) != 0 ||
        name[pl + 1 + cl] != '.')
        return -1;
    const char *p = name + pl + 2 + cl;
    char *end;
    long level = strtol(p, &end, 10);
    if (end == p || level < 0 || level > 64 || strcmp(end, ".2.bias") != 0) return -1;
    return (int)level;
}

int hy__model_spec_init_tensor(const hy__model_spec *s, const hy__tensor_spec *t, float *dst, size_t numel) {
    const char *prefix = s->detect.prefix, *name = t->name;
    if (!prefix[0]) return 0;
    if (s->detect.na > 0) { /* YOLOv5 Detect */
        char an[NAME_CAP];
        join(an, prefix, ".anchors");
        const int na = s->detect.na, nl = s->detect.nl, no = 5 + s->detect.nc;
        if (strcmp(name, an) == 0 && numel == (size_t)nl * na * 2) { /* grid units: pixels / stride */
            for (int l = 0; l < nl; l++)
                for (int j = 0; j < 2 * na; j++) dst[l * 2 * na + j] = s->detect.anchors[l][j] / (float)s->detect.strides[l];
            return 1;
        }
        /* Model._initialize_biases: obj += log(8 / (640 / s)^2), cls += log(0.6 / (nc - 0.99999)),
         * added there to PyTorch's random bias init, here to 0 (deterministic) */
        size_t pl = strlen(prefix);
        int level = -1;
        if (strncmp(name, prefix, pl) == 0 && strncmp(name + pl, ".m.", 3) == 0) {
            char *end;
            long l = strtol(name + pl + 3, &end, 10);
            if (end != name + pl + 3 && strcmp(end, ".bias") == 0 && l >= 0 && l < nl) level = (int)l;
        }
        if (level < 0 || numel != (size_t)na * no) return 0;
        double st = s->detect.strides[level];
        float obj = (float)log(8.0 / ((640.0 / st) * (640.0 / st)));
        float cls = (float)log(0.6 / (s->detect.nc - 0.99999));
        for (int a = 0; a < na; a++)
            for (int j = 0; j < no; j++) dst[a * no + j] = j < 4 ? 0.f : j == 4 ? obj : cls;
        return 1;
    }
    char dfl[NAME_CAP];
    join(dfl, prefix, ".dfl.conv.weight");
    if (strcmp(name, dfl) == 0) {
        for (size_t i = 0; i < numel; i++) dst[i] = (float)i;
        return 1;
    }
    if (head_bias_level(name, prefix, "cv2") >= 0) {
        for (size_t i = 0; i < numel; i++) dst[i] = 1.0f;
        return 1;
    }
    int level = head_bias_level(name, prefix, "cv3");
    if (level >= 0 && level < s->detect.nl) {
        double st = s->detect.strides[level];
        float v = (float)log(5.0 / s->detect.nc / ((640.0 / st) * (640.0 / st)));
        for (size_t i = 0; i < numel; i++) dst[i] = v;
        return 1;
    }
    return 0;
}
