/* YOLOv8 as Ultralytics builds it from yolov8.yaml. One walk serves two modes:
 *   spec mode  (b->g == NULL): list every state_dict tensor and every conv (weight table);
 *   graph mode (b->g != NULL): emit graph nodes for an input shape.
 * Conv ids are assigned in the same order in both modes. */
#include "model/yolov8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/cpu/ops_cpu.h"

typedef struct builder {
    const hy__yolov8_cfg *cfg;
    hy__graph *g;          /* graph mode */
    hy__yolov8_spec *spec; /* spec mode */
    int cap_tensors, cap_convs, cap_fused;
    int next_conv;
    hy_status st;
} builder;

static const struct {
    const char *scale;
    double depth, width;
    int max_channels;
} scales[] = {{"n", 0.33, 0.25, 1024}, {"s", 0.33, 0.50, 1024}, {"m", 0.67, 0.75, 768},
              {"l", 1.00, 1.00, 512},  {"x", 1.00, 1.25, 512}};

hy_status hy__yolov8_cfg_for_scale(const char *scale, int nc, hy__yolov8_cfg *out) {
    for (size_t i = 0; i < HY_ARRAY_LEN(scales); i++) {
        if (strcmp(scale, scales[i].scale) != 0) continue;
        memset(out, 0, sizeof *out);
        out->nc = nc;
        out->depth = scales[i].depth;
        out->width = scales[i].width;
        out->max_channels = scales[i].max_channels;
        out->reg_max = 16;
        snprintf(out->variant, sizeof out->variant, "%s", scale);
        return HY_OK;
    }
    return hy__error(HY_ERR_INVALID_ARG, "unknown YOLOv8 scale '%s' (expected n, s, m, l or x)", scale);
}

/* make_divisible(min(c, max_channels) * width, 8) */
static int width_of(const hy__yolov8_cfg *cfg, int c) {
    double x = (double)HY_MIN(c, cfg->max_channels) * cfg->width;
    return (int)(ceil(x / 8.0) * 8.0);
}
/* max(round(n * depth), 1) for n > 1 (Python round: half to even) */
static int depth_of(const hy__yolov8_cfg *cfg, int n) {
    if (n <= 1) return n;
    int r = (int)nearbyint((double)n * cfg->depth);
    return r < 1 ? 1 : r;
}

/* ---- spec mode helpers --------------------------------------------------------------- */
static void add_to(builder *b, hy__tensor_spec **list, int *n, int *cap, const char *prefix, const char *suffix,
                   int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, hy_dtype dt) {
    if (b->st) return;
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 512;
        hy__tensor_spec *t = hy__realloc(*list, (size_t)c * sizeof *t);
        if (!t) {
            b->st = hy__error(HY_ERR_NOMEM, "yolov8 spec: out of memory");
            return;
        }
        *list = t;
        *cap = c;
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

static void add_spec(builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3, hy_dtype dt) {
    add_to(b, &b->spec->tensors, &b->spec->n_tensors, &b->cap_tensors, prefix, suffix, ndim, d0, d1, d2, d3, dt);
}
static void add_fused(builder *b, const char *prefix, const char *suffix, int ndim, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3) {
    add_to(b, &b->spec->fused, &b->spec->n_fused, &b->cap_fused, prefix, suffix, ndim, d0, d1, d2, d3, HY_DTYPE_F32);
}

static void add_conv_spec(builder *b, const char *prefix, int cin, int cout, int k, int s, int has_bn, int act) {
    hy__yolov8_spec *sp = b->spec;
    if (b->st) return;
    if (sp->n_convs == b->cap_convs) {
        int cap = b->cap_convs ? b->cap_convs * 2 : 128;
        hy__conv_spec *c = hy__realloc(sp->convs, (size_t)cap * sizeof *c);
        if (!c) {
            b->st = hy__error(HY_ERR_NOMEM, "yolov8 spec: out of memory");
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
    c->has_bn = has_bn;
    c->act = act;
    if (has_bn) {
        add_spec(b, prefix, "conv.weight", 4, cout, cin, k, k, HY_DTYPE_F32);
        add_spec(b, prefix, "bn.weight", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        add_spec(b, prefix, "bn.bias", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        add_spec(b, prefix, "bn.running_mean", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        add_spec(b, prefix, "bn.running_var", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        add_spec(b, prefix, "bn.num_batches_tracked", 0, 0, 0, 0, 0, HY_DTYPE_I64);
        add_fused(b, prefix, "conv.weight", 4, cout, cin, k, k);
        add_fused(b, prefix, "conv.bias", 1, cout, 0, 0, 0);
    } else {
        add_spec(b, prefix, "weight", 4, cout, cin, k, k, HY_DTYPE_F32);
        add_spec(b, prefix, "bias", 1, cout, 0, 0, 0, HY_DTYPE_F32);
        add_fused(b, prefix, "weight", 4, cout, cin, k, k);
        add_fused(b, prefix, "bias", 1, cout, 0, 0, 0);
    }
}

/* ---- layers (both modes) --------------------------------------------------------------- */
static int channels(builder *b, int x) { return b->g ? (int)b->g->tensors[x].ne[1] : 0; }

static int tensor(builder *b, int c, int64_t h, int64_t w, const char *name) {
    if (b->st || !b->g) return -1;
    int t = hy__graph_tensor(b->g, c, h, w, name);
    if (t < 0) b->st = hy__error(HY_ERR_NOMEM, "yolov8 graph: out of memory");
    return t;
}

static int node(builder *b, enum hy__op op, const int *src, int n_src, int dst, const char *name) {
    if (b->st || !b->g) return -1;
    int n = hy__graph_node(b->g, op, src, n_src, dst, name);
    if (n < 0) b->st = hy__error(HY_ERR_NOMEM, "yolov8 graph: out of memory");
    return n;
}

/* Conv2d (+ folded BN) + act; `add` (or -1) is added after the activation. */
static int conv_id(builder *b, int id, const char *prefix, int x, int cin, int cout, int k, int s, int has_bn,
                   int act, int add) {
    if (!b->g) {
        add_conv_spec(b, prefix, cin, cout, k, s, has_bn, act);
        return -1;
    }
    if (b->st) return -1;
    HY_ASSERT(channels(b, x) == cin);
    const hy__tensor *tx = &b->g->tensors[x];
    int p = k / 2;
    int y = tensor(b, cout, hy__conv_out((int)tx->ne[2], k, s, p), hy__conv_out((int)tx->ne[3], k, s, p), prefix);
    int src[2] = {x, add};
    int n = node(b, HY_OP_CONV2D, src, add >= 0 ? 2 : 1, y, prefix);
    if (n < 0) return -1;
    hy__conv2d_params *cp = &b->g->nodes[n].p.conv;
    cp->cin = cin;
    cp->cout = cout;
    cp->kh = cp->kw = k;
    cp->stride = s;
    cp->pad = p;
    cp->act = act;
    cp->weight_id = id;
    return y;
}

static int conv_any(builder *b, const char *prefix, int x, int cin, int cout, int k, int s, int has_bn, int act,
                    int add) {
    return conv_id(b, b->next_conv++, prefix, x, cin, cout, k, s, has_bn, act, add);
}

/* Ultralytics Conv: Conv2d(bias=False) + BatchNorm2d + SiLU */
static int conv(builder *b, const char *prefix, int x, int cin, int cout, int k, int s) {
    return conv_any(b, prefix, x, cin, cout, k, s, 1, HY_ACT_SILU, -1);
}

static int concat(builder *b, const int *xs, int n, const char *name) {
    if (!b->g || b->st) return -1;
    int c = 0;
    for (int i = 0; i < n; i++) c += channels(b, xs[i]);
    const hy__tensor *t0 = &b->g->tensors[xs[0]];
    int y = tensor(b, c, t0->ne[2], t0->ne[3], name);
    node(b, HY_OP_CONCAT, xs, n, y, name);
    return y;
}

/* C2f(c1, c2, n, shortcut, e=0.5): cv1 -> split(c, c) -> n Bottlenecks -> concat -> cv2.
 * The state_dict lists cv1, cv2, m.*: cv2's id (and spec row) comes before the bottlenecks. */
static int c2f(builder *b, const char *prefix, int x, int c1, int c2, int n, int shortcut) {
    char name[80], name2[80];
    int c = c2 / 2;
    int id1 = b->next_conv++, id2 = b->next_conv++;
    snprintf(name, sizeof name, "%s.cv1", prefix);
    snprintf(name2, sizeof name2, "%s.cv2", prefix);
    int y = conv_id(b, id1, name, x, c1, 2 * c, 1, 1, 1, HY_ACT_SILU, -1);
    if (!b->g) conv_id(b, id2, name2, -1, (2 + n) * c, c2, 1, 1, 1, HY_ACT_SILU, -1);
    int parts[HY_GRAPH_MAX_SRC];
    int np = 0;
    parts[np++] = y; /* y[0], y[1]: the two halves of cv1's output */
    int prev = b->g && !b->st ? hy__graph_view(b->g, y, c, c, name) : -1;
    for (int i = 0; i < n; i++) {
        /* Bottleneck(c, c, shortcut, k=(3, 3), e=1.0): x + cv2(cv1(x)) */
        char n1[80], n2[80];
        snprintf(n1, sizeof n1, "%s.m.%d.cv1", prefix, i);
        snprintf(n2, sizeof n2, "%s.m.%d.cv2", prefix, i);
        int t = conv(b, n1, prev, c, c, 3, 1);
        prev = conv_any(b, n2, t, c, c, 3, 1, 1, HY_ACT_SILU, shortcut ? prev : -1);
        if (np < HY_GRAPH_MAX_SRC) parts[np++] = prev;
        else if (!b->st) b->st = hy__error(HY_ERR_UNSUPPORTED, "%s: more than %d bottlenecks", prefix, HY_GRAPH_MAX_SRC - 1);
    }
    int cat = concat(b, parts, np, prefix);
    return b->g ? conv_id(b, id2, name2, cat, (2 + n) * c, c2, 1, 1, 1, HY_ACT_SILU, -1) : -1;
}

/* SPPF(c1, c2, k=5): cv1 -> x, m(x), m(m(x)), m(m(m(x))) -> concat -> cv2 */
static int sppf(builder *b, const char *prefix, int x, int c1, int c2) {
    char name[80];
    int c_ = c1 / 2;
    snprintf(name, sizeof name, "%s.cv1", prefix);
    int y[4];
    y[0] = conv(b, name, x, c1, c_, 1, 1);
    for (int i = 1; i < 4; i++) {
        if (!b->g || b->st) break;
        const hy__tensor *t = &b->g->tensors[y[i - 1]];
        snprintf(name, sizeof name, "%s.m", prefix);
        y[i] = tensor(b, c_, t->ne[2], t->ne[3], name);
        int n = node(b, HY_OP_MAXPOOL2D, &y[i - 1], 1, y[i], name);
        if (n >= 0) b->g->nodes[n].p.pool.k = 5;
    }
    int cat = concat(b, y, 4, prefix);
    snprintf(name, sizeof name, "%s.cv2", prefix);
    return conv(b, name, cat, c_ * 4, c2, 1, 1);
}

static int upsample(builder *b, int x, const char *name) {
    if (!b->g || b->st) return -1;
    const hy__tensor *t = &b->g->tensors[x];
    int y = tensor(b, (int)t->ne[1], t->ne[2] * 2, t->ne[3] * 2, name);
    node(b, HY_OP_UPSAMPLE2X, &x, 1, y, name);
    return y;
}

/* Detect(nc, ch): per level cv2 (box: Conv, Conv, Conv2d -> 4*reg_max) and cv3 (cls: Conv,
 * Conv, Conv2d -> nc, sigmoid fused), then DFL decode into (4 + nc, A). */
static int detect(builder *b, const int *xs, const int *ch, int nl) {
    const hy__yolov8_cfg *cfg = b->cfg;
    int c2 = HY_MAX(HY_MAX(16, ch[0] / 4), cfg->reg_max * 4);
    int c3 = HY_MAX(ch[0], HY_MIN(cfg->nc, 100));
    int outs[8];
    char n0[80], n1[80], n2[80];
    for (int i = 0; i < nl; i++) {
        snprintf(n0, sizeof n0, "model.22.cv2.%d.0", i);
        snprintf(n1, sizeof n1, "model.22.cv2.%d.1", i);
        snprintf(n2, sizeof n2, "model.22.cv2.%d.2", i);
        int t = conv(b, n0, xs[i], ch[i], c2, 3, 1);
        t = conv(b, n1, t, c2, c2, 3, 1);
        outs[2 * i] = conv_any(b, n2, t, c2, 4 * cfg->reg_max, 1, 1, 0, HY_ACT_NONE, -1);
    }
    for (int i = 0; i < nl; i++) {
        snprintf(n0, sizeof n0, "model.22.cv3.%d.0", i);
        snprintf(n1, sizeof n1, "model.22.cv3.%d.1", i);
        snprintf(n2, sizeof n2, "model.22.cv3.%d.2", i);
        int t = conv(b, n0, xs[i], ch[i], c3, 3, 1);
        t = conv(b, n1, t, c3, c3, 3, 1);
        outs[2 * i + 1] = conv_any(b, n2, t, c3, cfg->nc, 1, 1, 0, HY_ACT_SIGMOID, -1);
    }
    if (!b->g) {
        add_spec(b, "model.22.dfl", "conv.weight", 4, 1, cfg->reg_max, 1, 1, HY_DTYPE_F32);
        add_fused(b, "model.22.dfl", "conv.weight", 4, 1, cfg->reg_max, 1, 1);
        return -1;
    }
    if (b->st) return -1;
    int A = hy__yolov8_num_anchors(b->g->in_h, b->g->in_w);
    int y = tensor(b, 4 + cfg->nc, A, 1, "output0");
    int n = node(b, HY_OP_DETECT, outs, 2 * nl, y, "model.22");
    if (n >= 0) {
        hy__detect_params *dp = &b->g->nodes[n].p.detect;
        dp->nc = cfg->nc;
        dp->reg_max = cfg->reg_max;
        dp->n_levels = nl;
        dp->stride[0] = 8;
        dp->stride[1] = 16;
        dp->stride[2] = 32;
        dp->dfl_weight_id = -1;
    }
    return y;
}

/* DetectionModel.forward for yolov8.yaml */
static int forward(builder *b, int x) {
    const hy__yolov8_cfg *cfg = b->cfg;
    int c64 = width_of(cfg, 64), c128 = width_of(cfg, 128), c256 = width_of(cfg, 256);
    int c512 = width_of(cfg, 512), c1024 = width_of(cfg, 1024);
    int y[23];
    /* backbone */
    y[0] = conv(b, "model.0", x, 3, c64, 3, 2);                       /* P1/2 */
    y[1] = conv(b, "model.1", y[0], c64, c128, 3, 2);                 /* P2/4 */
    y[2] = c2f(b, "model.2", y[1], c128, c128, depth_of(cfg, 3), 1);
    y[3] = conv(b, "model.3", y[2], c128, c256, 3, 2);                /* P3/8 */
    y[4] = c2f(b, "model.4", y[3], c256, c256, depth_of(cfg, 6), 1);
    y[5] = conv(b, "model.5", y[4], c256, c512, 3, 2);                /* P4/16 */
    y[6] = c2f(b, "model.6", y[5], c512, c512, depth_of(cfg, 6), 1);
    y[7] = conv(b, "model.7", y[6], c512, c1024, 3, 2);               /* P5/32 */
    y[8] = c2f(b, "model.8", y[7], c1024, c1024, depth_of(cfg, 3), 1);
    y[9] = sppf(b, "model.9", y[8], c1024, c1024);
    /* head */
    y[10] = upsample(b, y[9], "model.10");
    y[11] = concat(b, (int[]){y[10], y[6]}, 2, "model.11");
    y[12] = c2f(b, "model.12", y[11], c1024 + c512, c512, depth_of(cfg, 3), 0);
    y[13] = upsample(b, y[12], "model.13");
    y[14] = concat(b, (int[]){y[13], y[4]}, 2, "model.14");
    y[15] = c2f(b, "model.15", y[14], c512 + c256, c256, depth_of(cfg, 3), 0); /* P3/8 out */
    y[16] = conv(b, "model.16", y[15], c256, c256, 3, 2);
    y[17] = concat(b, (int[]){y[16], y[12]}, 2, "model.17");
    y[18] = c2f(b, "model.18", y[17], c256 + c512, c512, depth_of(cfg, 3), 0); /* P4/16 out */
    y[19] = conv(b, "model.19", y[18], c512, c512, 3, 2);
    y[20] = concat(b, (int[]){y[19], y[9]}, 2, "model.20");
    y[21] = c2f(b, "model.21", y[20], c512 + c1024, c1024, depth_of(cfg, 3), 0); /* P5/32 out */
    return detect(b, (int[]){y[15], y[18], y[21]}, (int[]){c256, c512, c1024}, 3);
}

hy_status hy__yolov8_spec_create(const hy__yolov8_cfg *cfg, hy__yolov8_spec **out) {
    if (cfg->nc < 1 || cfg->nc > 100000)
        return hy__error(HY_ERR_INVALID_ARG, "yolov8: class count %d out of range", cfg->nc);
    hy__yolov8_spec *s = hy__calloc(1, sizeof *s);
    if (!s) return hy__error(HY_ERR_NOMEM, "yolov8 spec: out of memory");
    builder b = {.cfg = cfg, .spec = s};
    forward(&b, -1);
    if (b.st) {
        hy__yolov8_spec_free(s);
        return b.st;
    }
    *out = s;
    return HY_OK;
}

void hy__yolov8_spec_free(hy__yolov8_spec *s) {
    if (!s) return;
    hy__free(s->tensors);
    hy__free(s->fused);
    hy__free(s->convs);
    hy__free(s);
}

int hy__yolov8_num_anchors(int h, int w) {
    int a = 0;
    for (int s = 8; s <= 32; s *= 2) a += (h / s) * (w / s);
    return a;
}

hy_status hy__yolov8_graph_build(const hy__yolov8_cfg *cfg, int h, int w, hy__graph **out) {
    if (h <= 0 || w <= 0 || h % 32 || w % 32 || h > 8192 || w > 8192)
        return hy__error(HY_ERR_INVALID_ARG, "input size %dx%d: each side must be a positive multiple of 32, at most 8192", w, h);
    hy__graph *g;
    hy_status st = hy__graph_create(&g);
    if (st) return st;
    g->in_h = h;
    g->in_w = w;
    builder b = {.cfg = cfg, .g = g};
    int x = tensor(&b, 3, h, w, "images");
    g->input = x;
    if (x >= 0) node(&b, HY_OP_INPUT, NULL, 0, x, "images");
    int y = forward(&b, x);
    g->output = y;
    if (!b.st) b.st = hy__graph_plan(g);
    if (b.st) {
        hy__graph_free(g);
        return b.st;
    }
    *out = g;
    return HY_OK;
}
