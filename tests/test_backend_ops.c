/* Every op of the graph, on every built backend, against `ref` (as ggml's test-backend-ops).
 *
 * Each case is a small graph (one node, or a node fed by producer nodes for the aliased
 * concat) with seeded random weights and inputs, batch n in 1..3, odd sizes (1, 3, 7, 13,
 * 20, 33) and channel counts that are not multiples of 8/16. It is planned and run through
 * the public backend vtable only (weights_create, create on a thread pool, node_workspace +
 * re-plan, graph_prepare, populate_begin/chunk, tensor_set/get, graph_compute), so a new
 * backend (CUDA next) is checked by being built: hy__backend_at(i) lists it. A backend whose
 * supports_op refuses a node skips that case (counted and printed); one whose probe() fails
 * (cuda without a usable GPU) is skipped whole, with a "skip: <name>: <why>" line.
 * `test_backend_ops --backend NAME` checks only that backend (CTest: backend_ops_cuda); it
 * exits 77 (skipped) when the build lacks it or its probe fails.
 *
 * Reference: the `ref` backend. Grouped convs are additionally checked against the dense
 * conv with block-diagonal weights on `ref`, so ref's own groups arithmetic is tested too.
 *
 * Tolerances: maxpool, upsample, concat and Detect's class rows are copies: exact. A conv
 * output y = act(b + sum_K w x) [+ add] computed in float, against ref's double sum, may be
 * off by about K * eps * S (recursive summation bound) where S = |b| + sum_K |w||x| is the
 * same conv on absolute values (computed here with hy__ref_conv2d); the check allows
 * 2 K eps S + 4 eps |y| (act / add rounding), and prints the worst error as a fraction of it.
 * Detect's boxes: a float softmax over reg_max bins, the anchor added, times the level's
 * stride s: 8 eps (|y| + s reg_max). cpu and ref are held to those bounds; every backend,
 * these two included, also to the NMSE <= 1e-6 (sum of squared errors over the sum
 * of squared ref values, per case): the criterion of GPU backends, whose libraries pick
 * their own summation orders. */
#include <float.h>
#include <stdint.h>

#include "backend/backend_impl.h"
#include "hy_test.h"
#include "ops/ref/ref.h"

#define MAX_IN 8

enum kind { K_CONV, K_POOL, K_UPSAMPLE, K_CONCAT, K_DETECT, K_COUNT };
static const char *kind_name[K_COUNT] = {"conv2d", "maxpool2d", "upsample2x", "concat", "detect"};

typedef struct opcase {
    enum kind kind;
    int n;                 /* batch */
    int c, h, w;           /* first input (n, c, h, w) */
    hy__conv2d_params cp;  /* conv: groups as tested */
    int residual;          /* conv: second source added after the activation */
    int k;                 /* maxpool kernel */
    int n_src, cs[4];      /* concat channel counts */
    int alias;             /* concat: sources 0 and 2 produced by a node (planner aliases them) */
    int nc, levels, reg_max; /* detect */
    int negative;          /* inputs shifted below zero (maxpool: padding must never win) */
} opcase;

/* ---- deterministic random numbers ---- */
static uint64_t rng_state;
static float frand(float lo, float hi) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((z >> 40) / (double)(1ull << 24));
}

/* A case's graph: inputs set from the host, output read back. */
typedef struct net {
    hy__graph *g;
    int in[MAX_IN], n_in;
    int out;
} net;

static int level_size(int s, int l) { return (s + (1 << l) - 1) >> l; }

/* Builds c's graph (conv params p: the table's, dense or grouped). */
static hy_status build(const opcase *c, const hy__conv2d_params *p, net *nt) {
    memset(nt, 0, sizeof *nt);
    hy_status st = hy__graph_create(c->n, &nt->g);
    if (st) return st;
    hy__graph *g = nt->g;
    int src[HY_GRAPH_MAX_SRC], ns = 0, dst = -1;
    char name[32];
    switch (c->kind) {
    case K_CONV: {
        src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, p->cin, c->h, c->w, "x");
        int oh = hy__conv_out(c->h, p->kh, p->stride, p->pad), ow = hy__conv_out(c->w, p->kw, p->stride, p->pad);
        if (c->residual) src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, p->cout, oh, ow, "add");
        dst = hy__graph_tensor(g, p->cout, oh, ow, "y");
        int ni = hy__graph_node(g, HY_OP_CONV2D, src, ns, dst, "conv");
        g->nodes[ni].p.conv = *p;
        break;
    }
    case K_POOL: {
        src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, c->c, c->h, c->w, "x");
        dst = hy__graph_tensor(g, c->c, c->h, c->w, "y");
        int ni = hy__graph_node(g, HY_OP_MAXPOOL2D, src, ns, dst, "pool");
        g->nodes[ni].p.pool.k = c->k;
        break;
    }
    case K_UPSAMPLE:
        src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, c->c, c->h, c->w, "x");
        dst = hy__graph_tensor(g, c->c, 2 * c->h, 2 * c->w, "y");
        hy__graph_node(g, HY_OP_UPSAMPLE2X, src, ns, dst, "up");
        break;
    case K_CONCAT: {
        int total = 0;
        for (int s = 0; s < c->n_src; s++) total += c->cs[s];
        dst = hy__graph_tensor(g, total, c->h, c->w, "y");
        for (int s = 0; s < c->n_src; s++) {
            snprintf(name, sizeof name, "x%d", s);
            int x = nt->in[nt->n_in++] = hy__graph_tensor(g, c->cs[s], c->h, c->w, name);
            if (c->alias && s % 2 == 0) { /* produced by a node: the planner puts it in y's slot */
                snprintf(name, sizeof name, "p%d", s);
                int t = hy__graph_tensor(g, c->cs[s], c->h, c->w, name);
                int ni = hy__graph_node(g, HY_OP_MAXPOOL2D, &x, 1, t, name);
                g->nodes[ni].p.pool.k = 3;
                x = t;
            }
            src[ns++] = x;
        }
        hy__graph_node(g, HY_OP_CONCAT, src, ns, dst, "cat");
        break;
    }
    case K_DETECT: {
        int A = 0;
        for (int l = 0; l < c->levels; l++) {
            int lh = level_size(c->h, l), lw = level_size(c->w, l);
            snprintf(name, sizeof name, "box%d", l);
            src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, 4 * c->reg_max, lh, lw, name);
            snprintf(name, sizeof name, "cls%d", l);
            src[ns++] = nt->in[nt->n_in++] = hy__graph_tensor(g, c->nc, lh, lw, name);
            A += lh * lw;
        }
        dst = hy__graph_tensor(g, 4 + c->nc, 1, A, "y");
        int ni = hy__graph_node(g, HY_OP_DETECT, src, ns, dst, "detect");
        hy__detect_params *dp = &g->nodes[ni].p.detect;
        dp->nc = c->nc;
        dp->reg_max = c->reg_max;
        dp->n_levels = c->levels;
        for (int l = 0; l < c->levels; l++) dp->stride[l] = 8 << l;
        dp->dfl_weight_id = -1;
        break;
    }
    default:
        break;
    }
    g->input = nt->in[0];
    g->output = nt->out = dst;
    return hy__graph_plan(g);
}

/* Host data of one case: inputs (per graph input), weights. */
typedef struct hostdata {
    float *in[MAX_IN];
    size_t in_len[MAX_IN];
    int n_in;
    hy__conv_weights wt, dense; /* conv: as tested, and the dense block-diagonal equivalent */
    float *w, *b, *wd;
    size_t out_len;
} hostdata;

static void hostdata_free(hostdata *d) {
    for (int i = 0; i < d->n_in; i++) free(d->in[i]);
    free(d->w);
    free(d->b);
    free(d->wd);
    memset(d, 0, sizeof *d);
}

static int groups_of(const hy__conv2d_params *p) { return p->groups > 1 ? p->groups : 1; }

static void make_hostdata(const opcase *c, const net *nt, hostdata *d) {
    memset(d, 0, sizeof *d);
    d->n_in = nt->n_in;
    for (int i = 0; i < nt->n_in; i++) {
        const hy__tensor *t = &nt->g->tensors[nt->in[i]];
        d->in_len[i] = hy__tensor_numel(t);
        d->in[i] = malloc(d->in_len[i] * sizeof(float));
        int is_box = c->kind == K_DETECT && i % 2 == 0, is_cls = c->kind == K_DETECT && i % 2 == 1;
        for (size_t k = 0; k < d->in_len[i]; k++)
            d->in[i][k] = is_box ? frand(-4, 4) : is_cls ? frand(0, 1) : frand(-1, 1) - (c->negative ? 3.0f : 0.0f);
    }
    d->out_len = hy__tensor_numel(&nt->g->tensors[nt->out]);
    if (c->kind != K_CONV) return;
    const hy__conv2d_params *p = &c->cp;
    const int G = groups_of(p), cig = p->cin / G, cog = p->cout / G, kk = p->kh * p->kw;
    const size_t nw = (size_t)p->cout * cig * kk;
    const float scale = 1.0f / sqrtf((float)(cig * kk));
    d->w = malloc(nw * sizeof(float));
    d->b = malloc((size_t)p->cout * sizeof(float));
    for (size_t i = 0; i < nw; i++) d->w[i] = frand(-1, 1) * scale;
    for (int i = 0; i < p->cout; i++) d->b[i] = frand(-0.5f, 0.5f);
    d->wt = (hy__conv_weights){.p = *p, .w = d->w, .b = d->b};
    d->wt.p.weight_id = 0;
    /* dense equivalent: output channel co reads only its group's input channels */
    d->wd = calloc((size_t)p->cout * p->cin * kk, sizeof(float));
    for (int co = 0; co < p->cout; co++)
        for (int ci = 0; ci < cig; ci++)
            memcpy(d->wd + ((size_t)co * p->cin + (size_t)(co / cog) * cig + ci) * kk,
                   d->w + ((size_t)co * cig + ci) * kk, (size_t)kk * sizeof(float));
    d->dense = (hy__conv_weights){.p = *p, .w = d->wd, .b = d->b};
    d->dense.p.groups = 1;
    d->dense.p.weight_id = 0;
}

/* Per-output error scale of a conv: S = |b| + sum |w||x| (the conv on absolute values). */
static float *conv_abs_scale(const opcase *c, const hostdata *d) {
    const hy__conv2d_params *p = &c->cp;
    const int G = groups_of(p), cig = p->cin / G;
    const int oh = hy__conv_out(c->h, p->kh, p->stride, p->pad), ow = hy__conv_out(c->w, p->kw, p->stride, p->pad);
    const size_t nw = (size_t)p->cout * cig * p->kh * p->kw, per_in = (size_t)p->cin * c->h * c->w;
    const size_t per_out = (size_t)p->cout * oh * ow;
    float *aw = malloc(nw * sizeof(float)), *ab = malloc((size_t)p->cout * sizeof(float));
    float *ax = malloc(per_in * sizeof(float)), *s = malloc(d->out_len * sizeof(float));
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(d->w[i]);
    for (int i = 0; i < p->cout; i++) ab[i] = fabsf(d->b[i]);
    hy__conv2d_desc dd = {.cin = p->cin, .cout = p->cout, .kh = p->kh, .kw = p->kw, .stride = p->stride,
                          .pad = p->pad, .act = HY_ACT_NONE, .groups = p->groups};
    for (int b = 0; b < c->n; b++) {
        for (size_t i = 0; i < per_in; i++) ax[i] = fabsf(d->in[0][b * per_in + i]);
        hy__ref_conv2d(&dd, ax, c->h, c->w, aw, ab, NULL, s + b * per_out);
    }
    free(aw);
    free(ab);
    free(ax);
    return s;
}

/* Runs case c on backend bi: *out (out_len floats). Returns HY_OK, HY_ERR_UNSUPPORTED when
 * bi's supports_op refuses a node, or the failing call's status. */
static hy_status run_on(const struct hy__backend_i *bi, const opcase *c, const hostdata *d, int dense,
                        hy__threadpool *tp, float *out) {
    const hy__conv_weights *wt = c->kind == K_CONV ? (dense ? &d->dense : &d->wt) : NULL;
    net nt;
    hy__bweights *bw = NULL;
    hy__backend *be = NULL;
    hy__plan *plan = NULL;
    hy_status st = build(c, wt ? &wt->p : NULL, &nt);
    if (st) goto done;
    for (int i = 0; i < nt.g->n_nodes; i++)
        if (!bi->supports_op(&nt.g->nodes[i])) {
            st = HY_ERR_UNSUPPORTED;
            goto done;
        }
    if ((st = bi->weights_create(wt, wt ? 1 : 0, tp, 0, &bw))) goto done;
    hy__backend_params bp = {.tp = tp, .lock_memory = 0};
    if ((st = bi->create(&bp, bw, &be))) goto done;
    if (bi->node_workspace) {
        for (int i = 0; i < nt.g->n_nodes; i++) nt.g->nodes[i].ws_size = bi->node_workspace(be, nt.g, i);
        if ((st = hy__graph_plan(nt.g))) goto done;
    }
    if ((st = bi->graph_prepare(be, nt.g, &plan))) goto done;
    if (bi->populate_begin && bi->populate_chunk) {
        int chunks = bi->populate_begin(be);
        for (int i = 0; i < chunks; i++) bi->populate_chunk(be, i);
    }
    for (int i = 0; i < nt.n_in && !st; i++) st = bi->tensor_set(be, plan, nt.in[i], d->in[i], d->in_len[i]);
    if (!st) st = bi->graph_compute(be, plan);
    if (!st && bi->synchronize) bi->synchronize(be);
    if (!st) st = bi->tensor_get(be, plan, nt.out, out, d->out_len);
done:
    if (plan) bi->plan_free(be, plan);
    if (be) bi->free(be);
    if (bw) bi->weights_free(bw);
    hy__graph_free(nt.g);
    return st;
}

/* Stride of the Detect level anchor a belongs to. */
static double detect_stride(const opcase *c, size_t a) {
    for (int l = 0; l < c->levels; l++) {
        size_t hw = (size_t)level_size(c->h, l) * (size_t)level_size(c->w, l);
        if (a < hw) return 8 << l;
        a -= hw;
    }
    return 8 << (c->levels - 1);
}

/* Worst error of got against want as a fraction of the allowed tolerance (> 1: fails);
 * *abs_err gets the worst absolute error, *at its index. NaN counts as a failure. */
/* Allowed error of output element i (of len) whose reference value is want[i]. */
static double tolerance(const opcase *c, const float *want, const float *scale, size_t len, size_t i) {
    const size_t per_img = len / (size_t)c->n;
    if (c->kind == K_CONV) {
        const int K = c->cp.cin / groups_of(&c->cp) * c->cp.kh * c->cp.kw;
        return 2.0 * K * FLT_EPSILON * scale[i] + 4.0 * FLT_EPSILON * fabs(want[i]);
    }
    if (c->kind == K_DETECT) {
        const size_t A = per_img / (size_t)(4 + c->nc);
        if ((i % per_img) < 4 * A) /* box rows */
            return 8.0 * FLT_EPSILON * (fabs(want[i]) + detect_stride(c, (i % per_img) % A) * c->reg_max);
    }
    return 0;
}

static double compare(const opcase *c, const float *want, const float *got, const float *scale, size_t len,
                      double *abs_err, size_t *at) {
    double worst = 0;
    *abs_err = 0;
    *at = 0;
    for (size_t i = 0; i < len; i++) {
        double e = fabs((double)got[i] - (double)want[i]), tol = tolerance(c, want, scale, len, i);
        double r = e == 0 ? 0 : tol > 0 ? e / tol : INFINITY;
        if (!(e <= tol)) r = isnan(e) ? INFINITY : r;
        if (r > worst || (isinf(r) && !isinf(worst))) worst = r, *at = i;
        if (e > *abs_err || isnan(e)) *abs_err = e;
    }
    return worst;
}

/* Normalised mean squared error of got against want; INFINITY for a NaN or any error
 * against an all-zero reference. */
#define NMSE_MAX 1e-6
static double nmse(const float *want, const float *got, size_t len) {
    double num = 0, den = 0;
    for (size_t i = 0; i < len; i++) {
        double e = (double)got[i] - (double)want[i];
        num += e * e;
        den += (double)want[i] * (double)want[i];
    }
    if (isnan(num)) return INFINITY;
    return num == 0 ? 0 : den > 0 ? num / den : INFINITY;
}

/* cpu and ref sum in float in a known order: held to the per-element bounds above too. */
static int elementwise_bounds(const struct hy__backend_i *bi) {
    return strcmp(bi->name, "cpu") == 0 || strcmp(bi->name, "ref") == 0;
}

static void describe(const opcase *c, char *buf, size_t cap) {
    switch (c->kind) {
    case K_CONV:
        snprintf(buf, cap, "conv n%d %dx%dx%d -> %d k%dx%d s%d p%d g%d act%d%s", c->n, c->cp.cin, c->h, c->w,
                 c->cp.cout, c->cp.kh, c->cp.kw, c->cp.stride, c->cp.pad, groups_of(&c->cp), c->cp.act,
                 c->residual ? " +add" : "");
        break;
    case K_POOL:
        snprintf(buf, cap, "maxpool n%d %dx%dx%d k%d%s", c->n, c->c, c->h, c->w, c->k, c->negative ? " negative" : "");
        break;
    case K_UPSAMPLE:
        snprintf(buf, cap, "upsample2x n%d %dx%dx%d", c->n, c->c, c->h, c->w);
        break;
    case K_CONCAT:
        snprintf(buf, cap, "concat n%d %d srcs (%d,%d,%d,%d) %dx%d%s", c->n, c->n_src, c->cs[0], c->cs[1], c->cs[2],
                 c->cs[3], c->h, c->w, c->alias ? " aliased" : " copied");
        break;
    case K_DETECT:
        snprintf(buf, cap, "detect n%d nc%d levels %d base %dx%d reg_max %d", c->n, c->nc, c->levels, c->h, c->w,
                 c->reg_max);
        break;
    default:
        snprintf(buf, cap, "?");
    }
}

/* ---- the grid ---- */
static const int HW[] = {1, 3, 7, 13, 20, 33};
#define NHW ((int)(sizeof HW / sizeof HW[0]))

static int make_cases(opcase *cs, int cap) {
    int n = 0;
    /* dense convs: every (k, stride, pad) x act x residual, each on 4 (shape, channels, batch)
     * picks cycling through the grid; pointwise (1x1 s1 p0), Winograd (3x3 s1 p1) and the
     * general im2col path all appear with odd sizes */
    static const int ksp[][3] = {{1, 1, 0}, {1, 2, 0}, {3, 1, 1}, {3, 2, 1}, {3, 1, 0}, {3, 2, 0}};
    static const int ch[][2] = {{3, 16}, {5, 7}, {16, 8}, {17, 33}, {64, 24}, {67, 80}, {1, 1}, {32, 64}};
    int idx = 0;
    for (int g = 0; g < 6; g++)
        for (int act = 0; act < HY_ACT_COUNT; act++)
            for (int res = 0; res < 2; res++, idx++)
                for (int i = 0; i < 4 && n < cap; i++) {
                    int pick = idx * 4 + i;
                    int h = HW[(pick * 5 + 1) % NHW], w = HW[(pick * 7 + 3) % NHW];
                    const int *cc = ch[(pick * 3 + g) % 8];
                    int k = ksp[g][0], s = ksp[g][1], p = ksp[g][2];
                    if (hy__conv_out(h, k, s, p) < 1) h = 7; /* 3x3 unpadded needs >= 3 */
                    if (hy__conv_out(w, k, s, p) < 1) w = 13;
                    cs[n++] = (opcase){.kind = K_CONV, .n = 1 + pick % 3, .h = h, .w = w, .residual = res,
                                       .cp = {.cin = cc[0], .cout = cc[1], .kh = k, .kw = k, .stride = s, .pad = p,
                                              .act = act, .groups = 1}};
                }
    /* a few YOLOv8-like layers (GEMM blocking with full tiles and tails) */
    static const int big[][6] = {/* cin cout k s h w */
                                 {64, 64, 3, 1, 20, 20}, {128, 64, 1, 1, 20, 33}, {32, 64, 3, 2, 33, 20},
                                 {80, 80, 3, 1, 13, 7},  {3, 16, 3, 2, 64, 48}};
    for (int i = 0; i < 5 && n < cap; i++)
        cs[n++] = (opcase){.kind = K_CONV, .n = 1 + i % 3, .h = big[i][4], .w = big[i][5], .residual = i % 2,
                           .cp = {.cin = big[i][0], .cout = big[i][1], .kh = big[i][2], .kw = big[i][2],
                                  .stride = big[i][3], .pad = big[i][2] / 2, .act = HY_ACT_SILU, .groups = 1}};
    /* grouped and depthwise convs: (cin, cout, groups) */
    static const int grp[][3] = {{8, 8, 2}, {12, 6, 3}, {6, 12, 3}, {16, 16, 16}, {7, 7, 7}, {5, 10, 5}};
    for (int gi = 0; gi < 6; gi++)
        for (int v = 0; v < 4 && n < cap; v++) {
            int k = v < 2 ? 3 : 1, s = 1 + v % 2;
            int h = HW[(gi + v * 2 + 1) % NHW], w = HW[(gi * 3 + v) % NHW];
            if (k == 3 && h < 3) h = 13;
            if (k == 3 && w < 3) w = 20;
            cs[n++] = (opcase){.kind = K_CONV, .n = 1 + (gi + v) % 3, .h = h, .w = w, .residual = v == 1,
                               .cp = {.cin = grp[gi][0], .cout = grp[gi][1], .kh = k, .kw = k, .stride = s,
                                      .pad = k / 2, .act = (gi + v) % HY_ACT_COUNT, .groups = grp[gi][2]}};
        }
    /* maxpool k 5 (SPPF) and 3, every size pair */
    static const int pc[] = {1, 3, 16, 67, 5};
    for (int i = 0; i < NHW * NHW && n < cap; i++)
        cs[n++] = (opcase){.kind = K_POOL, .n = 1 + i % 3, .c = pc[i % 5], .h = HW[i / NHW], .w = HW[i % NHW],
                           .k = i % 4 == 3 ? 3 : 5, .negative = i % 5 == 2};
    /* nearest upsample x2 */
    for (int i = 0; i < NHW * NHW && n < cap; i += 2)
        cs[n++] = (opcase){.kind = K_UPSAMPLE, .n = 1 + i % 3, .c = pc[(i / 2) % 5], .h = HW[i / NHW],
                           .w = HW[i % NHW]};
    /* concat: 2-4 sources, copied (graph inputs) and aliased by the planner */
    static const int cc4[][4] = {{1, 3, 0, 0}, {16, 5, 7, 0}, {3, 16, 1, 64}, {67, 13, 0, 0}};
    for (int i = 0; i < 16 && n < cap; i++) {
        const int *s4 = cc4[i % 4];
        int ns = s4[3] ? 4 : s4[2] ? 3 : 2;
        cs[n++] = (opcase){.kind = K_CONCAT, .n = 1 + i % 3, .h = HW[(i * 5) % NHW], .w = HW[(i * 7 + 2) % NHW],
                           .n_src = ns, .cs = {s4[0], s4[1], s4[2], s4[3]}, .alias = (i / 4) % 2};
    }
    /* Detect: nc 1 / 3 / 80, 1-3 levels, level sizes halving from the base */
    static const int ncs[] = {1, 3, 80};
    for (int i = 0; i < 18 && n < cap; i++)
        cs[n++] = (opcase){.kind = K_DETECT, .n = 1 + i % 3, .nc = ncs[i % 3], .levels = 1 + (i / 3) % 3,
                           .h = HW[(i * 5 + 2) % NHW], .w = HW[(i + 4) % NHW], .reg_max = 16};
    return n;
}

/* Per (op, backend) summary. */
typedef struct stat {
    int cases, skipped, failed;
    double worst_ratio, worst_abs, worst_nmse;
} stat;

#define MAX_BACKENDS 8
#define MAX_CASES 400

static hy__threadpool *g_tp;
static const char *g_only; /* --backend NAME: only that backend */

/* The backends to check: every built one (or g_only), less those whose probe fails (each
 * printed as a skip with its reason). */
static int usable_backends(const struct hy__backend_i **out, int max) {
    int n = 0;
    for (int i = 0; hy__backend_at(i) && n < max; i++) {
        const struct hy__backend_i *bi = hy__backend_at(i);
        if (g_only && strcmp(bi->name, g_only) != 0) continue;
        if (bi->probe && bi->probe(0) != HY_OK) {
            printf("  skip: %s: %s\n", bi->name, hy_last_error());
            continue;
        }
        out[n++] = bi;
    }
    return n;
}

static hy__threadpool *pool(void) {
    if (!g_tp && hy__threadpool_create(2, &g_tp) != HY_OK) g_tp = NULL;
    return g_tp;
}

HY_TEST(every_op_on_every_backend_matches_ref) {
    static opcase cs[MAX_CASES];
    static stat st[K_COUNT][MAX_BACKENDS];
    const struct hy__backend_i *ref = hy__backend_find("ref");
    ASSERT_TRUE(ref != NULL);
    ASSERT_TRUE(pool() != NULL);
    const struct hy__backend_i *bes[MAX_BACKENDS];
    int nb = usable_backends(bes, MAX_BACKENDS);
    if (nb == 0) HY_SKIP("no usable backend to check%s%s", g_only ? ": " : "", g_only ? g_only : "");
    if (!g_only) ASSERT_TRUE(nb >= 2); /* cpu and ref at least */
    int ncases = make_cases(cs, MAX_CASES);
    int failed = 0;
    rng_state = 0x5eed;
    for (int ci = 0; ci < ncases; ci++) {
        const opcase *c = &cs[ci];
        char what[160];
        describe(c, what, sizeof what);
        net nt;
        if (build(c, c->kind == K_CONV ? &c->cp : NULL, &nt) != HY_OK) {
            fprintf(stderr, "  %s: cannot build: %s\n", what, hy_last_error());
            failed++;
            continue;
        }
        hostdata d;
        make_hostdata(c, &nt, &d);
        hy__graph_free(nt.g);
        float *want = malloc(d.out_len * sizeof(float)), *got = malloc(d.out_len * sizeof(float));
        float *scale = c->kind == K_CONV ? conv_abs_scale(c, &d) : NULL;
        /* reference: ref (dense block-diagonal weights for grouped convs) */
        hy_status s = run_on(ref, c, &d, 1, g_tp, want);
        if (s != HY_OK) {
            fprintf(stderr, "  %s: ref: %s: %s\n", what, hy_status_name(s), hy_last_error());
            failed++;
        }
        for (int b = 0; b < nb && s == HY_OK; b++) {
            const struct hy__backend_i *bi = bes[b];
            stat *x = &st[c->kind][b];
            for (size_t i = 0; i < d.out_len; i++) got[i] = NAN; /* nothing stale passes */
            hy_status sb = run_on(bi, c, &d, 0, g_tp, got);
            if (sb == HY_ERR_UNSUPPORTED) {
                x->skipped++;
                continue;
            }
            x->cases++;
            if (sb != HY_OK) {
                fprintf(stderr, "  %s on %s: %s: %s\n", what, bi->name, hy_status_name(sb), hy_last_error());
                x->failed++;
                failed++;
                continue;
            }
            double abs_err;
            size_t at;
            double r = compare(c, want, got, scale, d.out_len, &abs_err, &at);
            double e2 = nmse(want, got, d.out_len);
            if (r > x->worst_ratio) x->worst_ratio = r;
            if (abs_err > x->worst_abs) x->worst_abs = abs_err;
            if (e2 > x->worst_nmse) x->worst_nmse = e2;
            if ((r > 1 && elementwise_bounds(bi)) || !(e2 <= NMSE_MAX)) {
                fprintf(stderr, "  %s on %s: error %.3g (%.3g x tolerance) at %zu: %.9g, ref %.9g; NMSE %.3g\n", what,
                        bi->name, abs_err, r, at, got[at], want[at], e2);
                x->failed++;
                failed++;
            }
        }
        free(want);
        free(got);
        free(scale);
        hostdata_free(&d);
    }
    static const char *tol_text[K_COUNT] = {"2 K eps S + 4 eps |y|", "exact", "exact", "exact",
                                            "boxes 8 eps (|y| + stride reg_max), scores exact"};
    for (int k = 0; k < K_COUNT; k++)
        for (int b = 0; b < nb; b++) {
            const stat *x = &st[k][b];
            printf("  %-10s %-4s %3d cases", kind_name[k], bes[b]->name, x->cases);
            if (x->skipped) printf(" (%d skipped: supports_op)", x->skipped);
            printf(", worst abs error %.3g = %.3f of tolerance [%s%s], NMSE %.3g%s\n", x->worst_abs, x->worst_ratio,
                   tol_text[k], elementwise_bounds(bes[b]) ? "" : ": reported only", x->worst_nmse,
                   x->failed ? "  FAILED" : "");
        }
    printf("  %d cases x %d backends, %d failures\n", ncases, nb, failed);
    ASSERT_EQ(failed, 0);
    /* every op ran on every backend at least once (a grid that skips everything proves nothing) */
    for (int k = 0; k < K_COUNT; k++)
        for (int b = 0; b < nb; b++) ASSERT_TRUE(st[k][b].cases > 0);
}

/* The comparison fires: for one case of each op, a backend's output with one element of the
 * LAST image moved by just over its tolerance (or by one float step where exact) fails, and
 * a backend output that left the last image uncomputed (a batch bug) fails too. */
HY_TEST(comparison_catches_perturbed_outputs) {
    static opcase cs[MAX_CASES];
    ASSERT_TRUE(pool() != NULL);
    int ncases = make_cases(cs, MAX_CASES);
    const struct hy__backend_i *cpu = hy__backend_find("cpu"), *ref = hy__backend_find("ref");
    ASSERT_TRUE(cpu && ref);
    int seen[K_COUNT] = {0};
    rng_state = 0xbad;
    for (int ci = 0; ci < ncases; ci++) {
        const opcase *c = &cs[ci];
        if (seen[c->kind] || c->n < 2 || (c->kind == K_CONV && c->cp.groups > 1)) continue;
        seen[c->kind] = 1;
        net nt;
        ASSERT_OK(build(c, c->kind == K_CONV ? &c->cp : NULL, &nt));
        hostdata d;
        make_hostdata(c, &nt, &d);
        hy__graph_free(nt.g);
        float *want = malloc(d.out_len * sizeof(float)), *got = malloc(d.out_len * sizeof(float));
        float *scale = c->kind == K_CONV ? conv_abs_scale(c, &d) : NULL;
        hy_status s1 = run_on(ref, c, &d, 1, g_tp, want), s2 = run_on(cpu, c, &d, 0, g_tp, got);
        double abs_err, r0, r1, r2, n0, n2;
        size_t at, last = d.out_len - 1;
        r0 = compare(c, want, got, scale, d.out_len, &abs_err, &at);
        n0 = nmse(want, got, d.out_len);
        /* one element of the last image, just past its tolerance (Detect: its last box value) */
        if (c->kind == K_DETECT) last = d.out_len - d.out_len / (size_t)c->n * (size_t)c->nc / (size_t)(4 + c->nc) - 1;
        double tol = tolerance(c, want, scale, d.out_len, last);
        float saved = got[last];
        got[last] = (float)(want[last] + 1.5 * tol);
        if (got[last] == want[last]) got[last] = nextafterf(want[last], INFINITY);
        r1 = compare(c, want, got, scale, d.out_len, &abs_err, &at);
        got[last] = saved;
        /* the last image left as the first one (a kernel that ignored the batch) */
        size_t per = d.out_len / (size_t)c->n;
        memcpy(got + (size_t)(c->n - 1) * per, got, per * sizeof(float));
        r2 = compare(c, want, got, scale, d.out_len, &abs_err, &at);
        n2 = nmse(want, got, d.out_len);
        printf("  %-10s clean %.3f, one element past tolerance %.3g, last image stale %.3g (x tolerance); "
               "NMSE clean %.3g, last image stale %.3g\n",
               kind_name[c->kind], r0, r1, r2, n0, n2);
        free(want);
        free(got);
        free(scale);
        hostdata_free(&d);
        ASSERT_OK(s1);
        ASSERT_OK(s2);
        ASSERT_TRUE(r0 <= 1);
        ASSERT_TRUE(r1 > 1);
        ASSERT_TRUE(r2 > 1);
        ASSERT_TRUE(n0 <= NMSE_MAX);
        ASSERT_TRUE(n2 > NMSE_MAX);
    }
    for (int k = 0; k < K_COUNT; k++) ASSERT_TRUE(seen[k]);
}

/* ---- HY_OP_DETECT_ANCHOR (YOLOv5 Detect decode) ----
 * Not in the grid above (a backend without the op would fail its "every op ran" check): ref
 * against the formula of op.h written out here, then cpu against ref. */

/* YOLOv5's default anchors (P3, P4, P5; (w, h) pixels), every level and anchor distinct. */
static const float V5_ANCHORS[3][6] = {
    {10, 13, 16, 30, 33, 23}, {30, 61, 62, 45, 59, 119}, {116, 90, 156, 198, 373, 326}};

typedef struct da_case {
    int n, nc, na, levels;
    int h[4], w[4];
} da_case;

static hy__detect_anchor_params da_params(const da_case *c) {
    hy__detect_anchor_params p;
    memset(&p, 0, sizeof p);
    p.nc = c->nc;
    p.na = c->na;
    p.n_levels = c->levels;
    for (int l = 0; l < c->levels; l++) {
        p.stride[l] = 8 << l;
        for (int k = 0; k < 2 * c->na; k++) p.anchors[l][k] = V5_ANCHORS[l % 3][k % 6] + 0.25f * (float)k;
    }
    return p;
}

/* Graph: one input per level (n, na * (5 + nc), h, w) -> (n, A, 5 + nc, 1); channels_off
 * shifts level 0's channel count (a malformed node). */
static hy_status da_build(const da_case *c, int channels_off, net *nt, size_t *rows) {
    memset(nt, 0, sizeof *nt);
    hy_status st = hy__graph_create(c->n, &nt->g);
    if (st) return st;
    hy__graph *g = nt->g;
    const int no = 5 + c->nc;
    int src[4];
    size_t A = 0;
    char name[16];
    for (int l = 0; l < c->levels; l++) {
        snprintf(name, sizeof name, "p%d", l);
        const int ch = c->na * no + (l == 0 ? channels_off : 0);
        src[l] = nt->in[nt->n_in++] = hy__graph_tensor(g, ch, c->h[l], c->w[l], name);
        A += (size_t)c->na * (size_t)(c->h[l] * c->w[l]);
    }
    int dst = hy__graph_tensor(g, (int64_t)A, no, 1, "y");
    int ni = hy__graph_node(g, HY_OP_DETECT_ANCHOR, src, c->levels, dst, "detect");
    g->nodes[ni].p.danchor = da_params(c);
    g->input = nt->in[0];
    g->output = nt->out = dst;
    *rows = A;
    return hy__graph_plan(g);
}

/* Runs the graph of c on bi with threads tp: out (n * A * (5 + nc) floats). */
static hy_status da_run(const struct hy__backend_i *bi, const da_case *c, int channels_off, float *const *in,
                        hy__threadpool *tp, float *out) {
    net nt;
    size_t A;
    hy__bweights *bw = NULL;
    hy__backend *be = NULL;
    hy__plan *plan = NULL;
    hy_status st = da_build(c, channels_off, &nt, &A);
    if (st) goto done;
    if ((st = bi->weights_create(NULL, 0, tp, 0, &bw))) goto done;
    hy__backend_params bp = {.tp = tp, .lock_memory = 0};
    if ((st = bi->create(&bp, bw, &be))) goto done;
    if ((st = bi->graph_prepare(be, nt.g, &plan))) goto done;
    if (bi->populate_begin && bi->populate_chunk) {
        int chunks = bi->populate_begin(be);
        for (int i = 0; i < chunks; i++) bi->populate_chunk(be, i);
    }
    for (int i = 0; i < nt.n_in && !st; i++)
        st = bi->tensor_set(be, plan, nt.in[i], in[i], hy__tensor_numel(&nt.g->tensors[nt.in[i]]));
    if (!st) st = bi->graph_compute(be, plan);
    if (!st) st = bi->tensor_get(be, plan, nt.out, out, (size_t)c->n * A * (size_t)(5 + c->nc));
done:
    if (plan) bi->plan_free(be, plan);
    if (be) bi->free(be);
    if (bw) bi->weights_free(bw);
    hy__graph_free(nt.g);
    return st;
}

static size_t da_rows(const da_case *c) {
    size_t A = 0;
    for (int l = 0; l < c->levels; l++) A += (size_t)c->na * (size_t)(c->h[l] * c->w[l]);
    return A;
}

/* Random level inputs in [-6, 6] (sigmoid 0.0025 .. 0.9975). */
static void da_inputs(const da_case *c, float **in) {
    for (int l = 0; l < c->levels; l++) {
        size_t len = (size_t)c->n * (size_t)(c->na * (5 + c->nc)) * (size_t)(c->h[l] * c->w[l]);
        in[l] = malloc(len * sizeof(float));
        for (size_t i = 0; i < len; i++) in[l][i] = frand(-6, 6);
    }
}

static double sigmoid_d(float v) { return 1.0 / (1.0 + exp(-(double)v)); }

HY_TEST(detect_anchor_ref_matches_formula) {
    const struct hy__backend_i *ref = hy__backend_find("ref");
    ASSERT_TRUE(ref != NULL);
    const da_case c = {.n = 2, .nc = 3, .na = 3, .levels = 3, .h = {4, 2, 1}, .w = {6, 3, 2}};
    const int no = 5 + c.nc;
    const size_t A = da_rows(&c);
    ASSERT_EQ((int)A, 3 * (24 + 6 + 2));
    float *in[4];
    rng_state = 0xa5c4;
    da_inputs(&c, in);
    float *got = malloc((size_t)c.n * A * no * sizeof(float));
    for (size_t i = 0; i < (size_t)c.n * A * no; i++) got[i] = NAN;
    ASSERT_OK(da_run(ref, &c, 0, in, NULL, got));
    /* row r of image b = (level l, anchor a, y, x) in that nesting; its field j is input
     * channel a * no + j at (y, x) of level l, image b */
    double worst = 0;
    size_t r = 0, bad = 0;
    for (int b = 0; b < c.n; b++) {
        r = 0;
        for (int l = 0; l < c.levels; l++) {
            const int h = c.h[l], w = c.w[l], ch = c.na * no;
            const double s = 8 << l;
            for (int a = 0; a < c.na; a++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++, r++) {
                        const float *v = in[l] + (((size_t)b * ch + (size_t)a * no) * h + y) * w + x;
                        const size_t hw = (size_t)h * w;
                        const double aw = V5_ANCHORS[l][2 * a] + 0.25 * (2 * a);
                        const double ah = V5_ANCHORS[l][2 * a + 1] + 0.25 * (2 * a + 1);
                        double want[5 + 3];
                        want[0] = (2 * sigmoid_d(v[0]) - 0.5 + x) * s;
                        want[1] = (2 * sigmoid_d(v[hw]) - 0.5 + y) * s;
                        want[2] = 4 * sigmoid_d(v[2 * hw]) * sigmoid_d(v[2 * hw]) * aw;
                        want[3] = 4 * sigmoid_d(v[3 * hw]) * sigmoid_d(v[3 * hw]) * ah;
                        for (int j = 4; j < no; j++) want[j] = sigmoid_d(v[(size_t)j * hw]);
                        const float *o = got + ((size_t)b * A + r) * no;
                        for (int j = 0; j < no; j++) {
                            /* float against double: a few ulp of the value, of the stride for x, y */
                            double tol = 4e-7 * (fabs(want[j]) + (j < 2 ? s : 0)) + 1e-7;
                            double e = fabs(o[j] - want[j]);
                            if (!(e <= tol)) {
                                if (bad++ < 5)
                                    fprintf(stderr, "  image %d level %d anchor %d (%d,%d) field %d: %.9g, want %.9g\n",
                                            b, l, a, y, x, j, o[j], want[j]);
                            }
                            if (e / tol > worst || isnan(e)) worst = isnan(e) ? INFINITY : e / tol;
                        }
                    }
        }
    }
    printf("  detect_anchor ref vs formula: %zu rows x %d fields x %d images, worst %.3f of tolerance\n", r, no, c.n,
           worst);
    for (int l = 0; l < c.levels; l++) free(in[l]);
    free(got);
    ASSERT_EQ((int)r, (int)A);
    ASSERT_EQ((int)bad, 0);
}

/* cpu against ref: boxes within 1e-4 relative (of |y|, at least 1 pixel), scores within 1e-6
 * absolute; batch 1 and 3, 1 and 2 threads, the small levels and larger ones whose
 * pixel runs cross the kernel's 64-pixel chunks (nc 80, 4 anchors, 4 levels). */
HY_TEST(detect_anchor_cpu_matches_ref) {
    const struct hy__backend_i *ref = hy__backend_find("ref"), *cpu = hy__backend_find("cpu");
    ASSERT_TRUE(ref && cpu);
    hy__threadpool *tp1 = NULL;
    ASSERT_OK(hy__threadpool_create(1, &tp1));
    ASSERT_TRUE(pool() != NULL);
    const da_case base[] = {{.nc = 3, .na = 3, .levels = 3, .h = {4, 2, 1}, .w = {6, 3, 2}},
                            {.nc = 80, .na = 4, .levels = 4, .h = {13, 7, 4, 2}, .w = {11, 6, 3, 2}},
                            {.nc = 0, .na = 1, .levels = 1, .h = {9}, .w = {17}}};
    static const int batches[] = {1, 3};
    double worst_box = 0, worst_score = 0;
    int runs = 0, bad = 0;
    rng_state = 0xdec0de;
    for (size_t ci = 0; ci < sizeof base / sizeof base[0]; ci++)
        for (int bi = 0; bi < 2; bi++) {
            da_case c = base[ci];
            c.n = batches[bi];
            const int no = 5 + c.nc;
            const size_t len = (size_t)c.n * da_rows(&c) * no;
            float *in[4];
            da_inputs(&c, in);
            float *want = malloc(len * sizeof(float)), *got = malloc(len * sizeof(float));
            ASSERT_OK(da_run(ref, &c, 0, in, NULL, want));
            for (int th = 1; th <= 2; th++) {
                for (size_t i = 0; i < len; i++) got[i] = NAN;
                ASSERT_OK(da_run(cpu, &c, 0, in, th == 1 ? tp1 : g_tp, got));
                runs++;
                for (size_t i = 0; i < len; i++) {
                    const int j = (int)(i % (size_t)no);
                    const double e = fabs((double)got[i] - want[i]);
                    const double tol = j < 4 ? 1e-4 * fmax(fabs(want[i]), 1.0) : 1e-6;
                    if (!(e <= tol) && bad++ < 5)
                        fprintf(stderr, "  case %zu n%d %d threads: element %zu (field %d): %.9g, ref %.9g\n", ci, c.n,
                                th, i, j, got[i], want[i]);
                    double *wst = j < 4 ? &worst_box : &worst_score;
                    const double m = j < 4 ? e / fmax(fabs(want[i]), 1.0) : e;
                    if (m > *wst || isnan(e)) *wst = isnan(e) ? INFINITY : m;
                }
            }
            for (int l = 0; l < c.levels; l++) free(in[l]);
            free(want);
            free(got);
        }
    hy__threadpool_free(tp1);
    printf("  detect_anchor cpu vs ref: %d runs, worst box error %.3g relative (limit 1e-4), worst score error %.3g "
           "(limit 1e-6)\n",
           runs, worst_box, worst_score);
    ASSERT_EQ(bad, 0);
}

/* A node whose tensors disagree with its parameters (a level with the wrong channel count) is
 * refused at prepare time on both backends, with an error naming the node: nothing reads past
 * a level's data. */
HY_TEST(detect_anchor_malformed_node_is_refused) {
    const struct hy__backend_i *bes[2] = {hy__backend_find("ref"), hy__backend_find("cpu")};
    const da_case c = {.n = 1, .nc = 3, .na = 3, .levels = 3, .h = {4, 2, 1}, .w = {6, 3, 2}};
    float *in[4];
    rng_state = 7;
    da_inputs(&c, in);
    float *out = malloc(da_rows(&c) * 8 * sizeof(float));
    for (int k = 0; k < 2; k++) {
        ASSERT_TRUE(bes[k] != NULL);
        /* level 0 has 3 channels fewer than na * (5 + nc): its reads would run past it */
        ASSERT_ERR(da_run(bes[k], &c, -3, in, NULL, out), HY_ERR_INVALID_ARG);
        ASSERT_CONTAINS(hy_last_error(), "detect_anchor level 0");
    }
    for (int l = 0; l < c.levels; l++) free(in[l]);
    free(out);
}

HY_TEST(zz_cleanup) {
    hy__threadpool_free(g_tp);
    g_tp = NULL;
}

/* test_backend_ops [--backend NAME] [case filter] */
int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--backend") == 0) {
        g_only = argv[2];
        const struct hy__backend_i *bi = NULL;
        for (int i = 0; hy__backend_at(i); i++)
            if (strcmp(hy__backend_at(i)->name, g_only) == 0) bi = hy__backend_at(i);
        if (!bi && strcmp(g_only, "cuda") == 0) {
            printf("skip: this build has no CUDA backend (configured with HY_CUDA=OFF or without the toolkit)\n");
            return 77;
        }
        if (!bi) {
            fprintf(stderr, "--backend %s: no such backend in this build\n", g_only);
            return 2;
        }
        if (bi->probe && bi->probe(0) != HY_OK) {
            printf("skip: %s: %s\n", bi->name, hy_last_error());
            return 77;
        }
        /* the grid only: the other cases are about cpu and ref */
        static char grid[] = "every_op_on_every_backend";
        char *args[] = {argv[0], grid, NULL};
        return hy_test_run(hy_test_cases, hy_test_ncases, 2, args);
    }
    return hy_test_run(hy_test_cases, hy_test_ncases, argc, argv);
}
