/* The architecture table (src/model/arch.c) and the blocks (src/model/blocks.c): lookup by
 * name, recognition of a YOLOv8 checkpoint, the config read from one, conv groups, Detect's
 * initial values, and the YOLOv8 graph node for node as the network was built before the
 * blocks existed (n640 and the hashes below were printed by node_desc over the graphs of the
 * single-file yolov8.c, before it was split into blocks.c + yolov8.c). */
#include <math.h>

#include "hy_test.h"
#include "io/wfile.h"
#include "model/arch.h"
#include "model/yolov5.h"
#include "model/yolov8.h"
#include "tensor/graph.h"

/* One line per node: index, op, name, output (c, h, w), inputs by producing node (a
 * channel view as #node[c0+c]), and the op's parameters. Independent of tensor indices
 * and of the planner. */
static void src_desc(const hy__graph *g, int t, char *o, size_t cap) {
    const hy__tensor *x = &g->tensors[t];
    if (x->producer >= 0 || x->view_src < 0) {
        snprintf(o, cap, "#%d", x->producer);
        return;
    }
    const hy__tensor *r = &g->tensors[x->view_src];
    long long c0 = (long long)(x->view_offs / (size_t)(r->ne[2] * r->ne[3]));
    snprintf(o, cap, "#%d[%lld+%lld]", r->producer, c0, (long long)x->ne[1]);
}

static void node_desc(const hy__graph *g, int i, char *o, size_t cap) {
    const hy__node *nd = &g->nodes[i];
    const hy__tensor *d = &g->tensors[nd->dst];
    size_t k = (size_t)snprintf(o, cap, "%d %s %s %lldx%lldx%lldx%lld <", i, hy__op_name(nd->op), nd->name,
                                (long long)d->ne[0], (long long)d->ne[1], (long long)d->ne[2], (long long)d->ne[3]);
    for (int s = 0; s < nd->n_src && k < cap; s++) {
        char b[48];
        src_desc(g, nd->src[s], b, sizeof b);
        k += (size_t)snprintf(o + k, cap - k, " %s", b);
    }
    if (k >= cap) return;
    if (nd->op == HY_OP_CONV2D) {
        const hy__conv2d_params *c = &nd->p.conv;
        snprintf(o + k, cap - k, " | %d>%d k%dx%d s%d p%d g%d a%d w%d", c->cin, c->cout, c->kh, c->kw, c->stride,
                 c->pad, c->groups > 1 ? c->groups : 1, c->act, c->weight_id);
    } else if (nd->op == HY_OP_MAXPOOL2D) {
        snprintf(o + k, cap - k, " | k%d", nd->p.pool.k);
    } else if (nd->op == HY_OP_DETECT) {
        const hy__detect_params *p = &nd->p.detect;
        snprintf(o + k, cap - k, " | nc%d r%d l%d s%d,%d,%d dfl%d", p->nc, p->reg_max, p->n_levels, p->stride[0],
                 p->stride[1], p->stride[2], p->dfl_weight_id);
    }
}

static uint64_t fnv1a(const char *s, uint64_t h) {
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static hy__graph *build(const char *scale, int nc, int n, int h, int w) {
    hy__arch_cfg cfg;
    if (hy__arch_yolov8.cfg_for_variant(scale, nc, &cfg) != HY_OK) return NULL;
    hy__graph *g = NULL;
    if (hy__arch_graph_build(&cfg, n, h, w, &g) != HY_OK) return NULL;
    return g;
}

/* yolov8n, 80 classes, input (1, 3, 640, 640): every node, recorded before the refactor. */
static const char *const n640[] = {
    "0 input images 1x3x640x640 <",
    "1 conv2d model.0 1x16x320x320 < #0 | 3>16 k3x3 s2 p1 g1 a1 w0",
    "2 conv2d model.1 1x32x160x160 < #1 | 16>32 k3x3 s2 p1 g1 a1 w1",
    "3 conv2d model.2.cv1 1x32x160x160 < #2 | 32>32 k1x1 s1 p0 g1 a1 w2",
    "4 conv2d model.2.m.0.cv1 1x16x160x160 < #3[16+16] | 16>16 k3x3 s1 p1 g1 a1 w4",
    "5 conv2d model.2.m.0.cv2 1x16x160x160 < #4 #3[16+16] | 16>16 k3x3 s1 p1 g1 a1 w5",
    "6 concat model.2 1x48x160x160 < #3 #5",
    "7 conv2d model.2.cv2 1x32x160x160 < #6 | 48>32 k1x1 s1 p0 g1 a1 w3",
    "8 conv2d model.3 1x64x80x80 < #7 | 32>64 k3x3 s2 p1 g1 a1 w6",
    "9 conv2d model.4.cv1 1x64x80x80 < #8 | 64>64 k1x1 s1 p0 g1 a1 w7",
    "10 conv2d model.4.m.0.cv1 1x32x80x80 < #9[32+32] | 32>32 k3x3 s1 p1 g1 a1 w9",
    "11 conv2d model.4.m.0.cv2 1x32x80x80 < #10 #9[32+32] | 32>32 k3x3 s1 p1 g1 a1 w10",
    "12 conv2d model.4.m.1.cv1 1x32x80x80 < #11 | 32>32 k3x3 s1 p1 g1 a1 w11",
    "13 conv2d model.4.m.1.cv2 1x32x80x80 < #12 #11 | 32>32 k3x3 s1 p1 g1 a1 w12",
    "14 concat model.4 1x128x80x80 < #9 #11 #13",
    "15 conv2d model.4.cv2 1x64x80x80 < #14 | 128>64 k1x1 s1 p0 g1 a1 w8",
    "16 conv2d model.5 1x128x40x40 < #15 | 64>128 k3x3 s2 p1 g1 a1 w13",
    "17 conv2d model.6.cv1 1x128x40x40 < #16 | 128>128 k1x1 s1 p0 g1 a1 w14",
    "18 conv2d model.6.m.0.cv1 1x64x40x40 < #17[64+64] | 64>64 k3x3 s1 p1 g1 a1 w16",
    "19 conv2d model.6.m.0.cv2 1x64x40x40 < #18 #17[64+64] | 64>64 k3x3 s1 p1 g1 a1 w17",
    "20 conv2d model.6.m.1.cv1 1x64x40x40 < #19 | 64>64 k3x3 s1 p1 g1 a1 w18",
    "21 conv2d model.6.m.1.cv2 1x64x40x40 < #20 #19 | 64>64 k3x3 s1 p1 g1 a1 w19",
    "22 concat model.6 1x256x40x40 < #17 #19 #21",
    "23 conv2d model.6.cv2 1x128x40x40 < #22 | 256>128 k1x1 s1 p0 g1 a1 w15",
    "24 conv2d model.7 1x256x20x20 < #23 | 128>256 k3x3 s2 p1 g1 a1 w20",
    "25 conv2d model.8.cv1 1x256x20x20 < #24 | 256>256 k1x1 s1 p0 g1 a1 w21",
    "26 conv2d model.8.m.0.cv1 1x128x20x20 < #25[128+128] | 128>128 k3x3 s1 p1 g1 a1 w23",
    "27 conv2d model.8.m.0.cv2 1x128x20x20 < #26 #25[128+128] | 128>128 k3x3 s1 p1 g1 a1 w24",
    "28 concat model.8 1x384x20x20 < #25 #27",
    "29 conv2d model.8.cv2 1x256x20x20 < #28 | 384>256 k1x1 s1 p0 g1 a1 w22",
    "30 conv2d model.9.cv1 1x128x20x20 < #29 | 256>128 k1x1 s1 p0 g1 a1 w25",
    "31 maxpool2d model.9.m 1x128x20x20 < #30 | k5",
    "32 maxpool2d model.9.m 1x128x20x20 < #31 | k5",
    "33 maxpool2d model.9.m 1x128x20x20 < #32 | k5",
    "34 concat model.9 1x512x20x20 < #30 #31 #32 #33",
    "35 conv2d model.9.cv2 1x256x20x20 < #34 | 512>256 k1x1 s1 p0 g1 a1 w26",
    "36 upsample2x model.10 1x256x40x40 < #35",
    "37 concat model.11 1x384x40x40 < #36 #23",
    "38 conv2d model.12.cv1 1x128x40x40 < #37 | 384>128 k1x1 s1 p0 g1 a1 w27",
    "39 conv2d model.12.m.0.cv1 1x64x40x40 < #38[64+64] | 64>64 k3x3 s1 p1 g1 a1 w29",
    "40 conv2d model.12.m.0.cv2 1x64x40x40 < #39 | 64>64 k3x3 s1 p1 g1 a1 w30",
    "41 concat model.12 1x192x40x40 < #38 #40",
    "42 conv2d model.12.cv2 1x128x40x40 < #41 | 192>128 k1x1 s1 p0 g1 a1 w28",
    "43 upsample2x model.13 1x128x80x80 < #42",
    "44 concat model.14 1x192x80x80 < #43 #15",
    "45 conv2d model.15.cv1 1x64x80x80 < #44 | 192>64 k1x1 s1 p0 g1 a1 w31",
    "46 conv2d model.15.m.0.cv1 1x32x80x80 < #45[32+32] | 32>32 k3x3 s1 p1 g1 a1 w33",
    "47 conv2d model.15.m.0.cv2 1x32x80x80 < #46 | 32>32 k3x3 s1 p1 g1 a1 w34",
    "48 concat model.15 1x96x80x80 < #45 #47",
    "49 conv2d model.15.cv2 1x64x80x80 < #48 | 96>64 k1x1 s1 p0 g1 a1 w32",
    "50 conv2d model.16 1x64x40x40 < #49 | 64>64 k3x3 s2 p1 g1 a1 w35",
    "51 concat model.17 1x192x40x40 < #50 #42",
    "52 conv2d model.18.cv1 1x128x40x40 < #51 | 192>128 k1x1 s1 p0 g1 a1 w36",
    "53 conv2d model.18.m.0.cv1 1x64x40x40 < #52[64+64] | 64>64 k3x3 s1 p1 g1 a1 w38",
    "54 conv2d model.18.m.0.cv2 1x64x40x40 < #53 | 64>64 k3x3 s1 p1 g1 a1 w39",
    "55 concat model.18 1x192x40x40 < #52 #54",
    "56 conv2d model.18.cv2 1x128x40x40 < #55 | 192>128 k1x1 s1 p0 g1 a1 w37",
    "57 conv2d model.19 1x128x20x20 < #56 | 128>128 k3x3 s2 p1 g1 a1 w40",
    "58 concat model.20 1x384x20x20 < #57 #35",
    "59 conv2d model.21.cv1 1x256x20x20 < #58 | 384>256 k1x1 s1 p0 g1 a1 w41",
    "60 conv2d model.21.m.0.cv1 1x128x20x20 < #59[128+128] | 128>128 k3x3 s1 p1 g1 a1 w43",
    "61 conv2d model.21.m.0.cv2 1x128x20x20 < #60 | 128>128 k3x3 s1 p1 g1 a1 w44",
    "62 concat model.21 1x384x20x20 < #59 #61",
    "63 conv2d model.21.cv2 1x256x20x20 < #62 | 384>256 k1x1 s1 p0 g1 a1 w42",
    "64 conv2d model.22.cv2.0.0 1x64x80x80 < #49 | 64>64 k3x3 s1 p1 g1 a1 w45",
    "65 conv2d model.22.cv2.0.1 1x64x80x80 < #64 | 64>64 k3x3 s1 p1 g1 a1 w46",
    "66 conv2d model.22.cv2.0.2 1x64x80x80 < #65 | 64>64 k1x1 s1 p0 g1 a0 w47",
    "67 conv2d model.22.cv2.1.0 1x64x40x40 < #56 | 128>64 k3x3 s1 p1 g1 a1 w48",
    "68 conv2d model.22.cv2.1.1 1x64x40x40 < #67 | 64>64 k3x3 s1 p1 g1 a1 w49",
    "69 conv2d model.22.cv2.1.2 1x64x40x40 < #68 | 64>64 k1x1 s1 p0 g1 a0 w50",
    "70 conv2d model.22.cv2.2.0 1x64x20x20 < #63 | 256>64 k3x3 s1 p1 g1 a1 w51",
    "71 conv2d model.22.cv2.2.1 1x64x20x20 < #70 | 64>64 k3x3 s1 p1 g1 a1 w52",
    "72 conv2d model.22.cv2.2.2 1x64x20x20 < #71 | 64>64 k1x1 s1 p0 g1 a0 w53",
    "73 conv2d model.22.cv3.0.0 1x80x80x80 < #49 | 64>80 k3x3 s1 p1 g1 a1 w54",
    "74 conv2d model.22.cv3.0.1 1x80x80x80 < #73 | 80>80 k3x3 s1 p1 g1 a1 w55",
    "75 conv2d model.22.cv3.0.2 1x80x80x80 < #74 | 80>80 k1x1 s1 p0 g1 a2 w56",
    "76 conv2d model.22.cv3.1.0 1x80x40x40 < #56 | 128>80 k3x3 s1 p1 g1 a1 w57",
    "77 conv2d model.22.cv3.1.1 1x80x40x40 < #76 | 80>80 k3x3 s1 p1 g1 a1 w58",
    "78 conv2d model.22.cv3.1.2 1x80x40x40 < #77 | 80>80 k1x1 s1 p0 g1 a2 w59",
    "79 conv2d model.22.cv3.2.0 1x80x20x20 < #63 | 256>80 k3x3 s1 p1 g1 a1 w60",
    "80 conv2d model.22.cv3.2.1 1x80x20x20 < #79 | 80>80 k3x3 s1 p1 g1 a1 w61",
    "81 conv2d model.22.cv3.2.2 1x80x20x20 < #80 | 80>80 k1x1 s1 p0 g1 a2 w62",
    "82 detect model.22 1x84x8400x1 < #66 #75 #69 #78 #72 #81 | nc80 r16 l3 s8,16,32 dfl-1",
};

HY_TEST(yolov8n_640_graph_node_for_node) {
    hy__graph *g = build("n", 80, 1, 640, 640);
    ASSERT_TRUE(g != NULL);
    int bad = 0;
    char line[512];
    for (int i = 0; i < g->n_nodes && i < (int)HY_ARRAY_LEN(n640); i++) {
        node_desc(g, i, line, sizeof line);
        if (strcmp(line, n640[i]) != 0 && bad++ < 5) fprintf(stderr, "node %d:\n  was   %s\n  built %s\n", i, n640[i], line);
    }
    ASSERT_EQ(g->n_nodes, (int)HY_ARRAY_LEN(n640));
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(g->n_tensors, 91);
    ASSERT_EQ(g->nodes[g->n_nodes - 1].dst, g->output);
    hy__graph_free(g);
}

/* Other scales, batch sizes, input shapes and class counts: a hash of the same lines. */
HY_TEST(yolov8_graphs_equal_the_pre_blocks_graphs) {
    static const struct {
        const char *scale;
        int nc, n, h, w, nodes;
        uint64_t hash;
    } cases[] = {
        {"n", 80, 1, 640, 640, 83, 0xfb4ef29ad3f3af88ull}, {"s", 80, 2, 480, 640, 83, 0x3fcfbb8054f39a8full},
        {"m", 80, 1, 320, 320, 103, 0x47e084035ab59ffbull}, {"l", 80, 1, 640, 640, 123, 0xc8009adc14501973ull},
        {"x", 80, 3, 256, 384, 123, 0x6f602ce1b4e53703ull}, {"n", 3, 1, 640, 640, 83, 0x667e4be6045ca220ull},
    };
    for (size_t c = 0; c < HY_ARRAY_LEN(cases); c++) {
        hy__graph *g = build(cases[c].scale, cases[c].nc, cases[c].n, cases[c].h, cases[c].w);
        ASSERT_TRUE(g != NULL);
        uint64_t h = 1469598103934665603ull;
        char line[512];
        for (int i = 0; i < g->n_nodes; i++) {
            node_desc(g, i, line, sizeof line);
            h = fnv1a(line, h);
            h = fnv1a("\n", h);
        }
        printf("  yolov8%s nc %d (%d, 3, %d, %d): %d nodes, hash %016llx\n", cases[c].scale, cases[c].nc, cases[c].n,
               cases[c].h, cases[c].w, g->n_nodes, (unsigned long long)h);
        ASSERT_EQ(g->n_nodes, cases[c].nodes);
        ASSERT_TRUE(h == cases[c].hash);
        hy__graph_free(g);
    }
}

HY_TEST(find_by_name) {
    const hy__arch *a = hy__arch_find("yolov8");
    ASSERT_TRUE(a == &hy__arch_yolov8);
    ASSERT_STREQ(a->name, "yolov8");
    ASSERT_TRUE(hy__arch_table[0] == a);
    for (int i = 0; hy__arch_table[i]; i++) { /* every row is complete */
        const hy__arch *r = hy__arch_table[i];
        ASSERT_TRUE(r->name && r->title && r->variants && r->task && r->recognize && r->cfg_from_source && r->cfg_for_variant &&
                    r->spec_create && r->graph_build);
        ASSERT_TRUE(r->n_levels >= 1 && r->n_levels <= HY_ARCH_MAX_LEVELS && r->stride_max > 0);
    }
    char s[32];
    hy__arch_strides_json(a, s, sizeof s);
    ASSERT_STREQ(s, "[8,16,32]");
}

HY_TEST(unknown_name_is_an_error) {
    ASSERT_TRUE(hy__arch_find("yolov7") == NULL);
    ASSERT_CONTAINS(hy_last_error(), "architecture \"yolov7\" is not supported (supported: yolov8, yolov5)");
    ASSERT_TRUE(hy__arch_find("YOLOv8") == NULL); /* names are exact */
    ASSERT_TRUE(hy__arch_find("") == NULL);
    ASSERT_TRUE(hy__arch_find(NULL) == NULL);
}

HY_TEST(recognizes_a_yolov8_checkpoint) {
    hy__wfile *f;
    ASSERT_OK(hy__wfile_open(hy_test_asset("weights/yolov8n.pt"), 0, &f));
    const hy__wsource *src = hy__wfile_source(f);
    ASSERT_TRUE(hy__arch_yolov8.recognize(src));
    ASSERT_TRUE(hy__arch_recognize(src) == &hy__arch_yolov8);
    hy__arch_cfg cfg;
    ASSERT_OK(hy__arch_cfg_from_source(src, "yolov8n.pt", 0, &cfg));
    ASSERT_TRUE(cfg.arch == &hy__arch_yolov8);
    ASSERT_STREQ(cfg.variant, "n");
    ASSERT_EQ(cfg.nc, 80);
    ASSERT_EQ(cfg.reg_max, 16);
    ASSERT_OK(hy__arch_cfg_from_source(src, "yolov8n.pt", 3, &cfg));
    ASSERT_EQ(cfg.nc, 3);
    hy__wfile_close(f);
}

/* No config in the file (a plain state_dict): the scale from the stem, nc from the class
 * conv; YOLOv5's Detect goes to its own row (scale from the stem, nc from the Detect conv), a
 * file of neither family to the default row, which says why. */
HY_TEST(config_inferred_from_tensor_shapes) {
    static const float zero[1] = {0};
    hy__wtensor t[2] = {
        {.name = "model.0.conv.weight", .dtype = HY_DTYPE_F32, .ndim = 4, .shape = {48, 3, 3, 3}, .data = zero},
        {.name = "model.22.cv3.0.2.weight", .dtype = HY_DTYPE_F32, .ndim = 4, .shape = {7, 192, 1, 1}, .data = zero},
    };
    hy__wsource src = {.format = HY_WFORMAT_SAFETENSORS, .tensors = t, .n_tensors = 2};
    ASSERT_TRUE(hy__arch_recognize(&src) == &hy__arch_yolov8);
    hy__arch_cfg cfg;
    ASSERT_OK(hy__arch_cfg_from_source(&src, "sd.safetensors", 0, &cfg));
    ASSERT_STREQ(cfg.variant, "m");
    ASSERT_EQ(cfg.nc, 7);
    t[0].shape[0] = 40; /* no scale has a 40-channel stem */
    ASSERT_ERR(hy__arch_cfg_from_source(&src, "sd.safetensors", 0, &cfg), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "sd.safetensors: model.0.conv.weight has 40 output channels");
    src.arch = "yolov8"; /* named by the file: looked up, then read as before */
    ASSERT_ERR(hy__arch_cfg_from_source(&src, "sd.safetensors", 0, &cfg), HY_ERR_FORMAT);
    src.arch = "yolov7";
    ASSERT_ERR(hy__arch_cfg_from_source(&src, "v7.safetensors", 0, &cfg), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "v7.safetensors: architecture \"yolov7\" is not supported (supported: yolov8, yolov5)");
    src.arch = NULL;
    t[1].name = "model.24.m.0.weight"; /* YOLOv5's Detect: 3 anchors x (5 + 80) */
    t[1].shape[0] = 255;
    ASSERT_FALSE(hy__arch_yolov8.recognize(&src));
    ASSERT_TRUE(hy__arch_recognize(&src) == &hy__arch_yolov5);
    t[0].shape[0] = 32;
    ASSERT_OK(hy__arch_cfg_from_source(&src, "v5.safetensors", 0, &cfg));
    ASSERT_TRUE(cfg.arch == &hy__arch_yolov5);
    ASSERT_STREQ(cfg.variant, "s");
    ASSERT_EQ(cfg.nc, 80);
    ASSERT_EQ(cfg.na, 3); /* no anchors tensor: yolov5s.yaml's */
    ASSERT_NEAR(cfg.anchors[2][4], 373, 0);
    t[0].shape[0] = 40;
    ASSERT_ERR(hy__arch_cfg_from_source(&src, "v5.safetensors", 0, &cfg), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "v5.safetensors: model.0.conv.weight has 40 output channels, which matches no YOLOv5");
    t[1].name = "model.99.m.0.weight"; /* neither family: the default row says why */
    ASSERT_TRUE(hy__arch_recognize(&src) == &hy__arch_yolov8);
    ASSERT_ERR(hy__arch_cfg_from_source(&src, "x.safetensors", 0, &cfg), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "x.safetensors: not a YOLOv8 detection model");
}

/* Every conv of every YOLOv8 scale is dense (groups 1), in the weight table and the graph;
 * the graph's conv nodes point at weight-table rows with the same name and shape. */
HY_TEST(yolov8_convs_dense_and_graph_matches_weight_table) {
    static const char *scales[] = {"n", "s", "m", "l", "x"};
    for (size_t s = 0; s < HY_ARRAY_LEN(scales); s++) {
        hy__arch_cfg cfg;
        ASSERT_OK(hy__arch_yolov8.cfg_for_variant(scales[s], 80, &cfg));
        hy__model_spec *spec;
        ASSERT_OK(hy__model_spec_create(&cfg, &spec));
        for (int i = 0; i < spec->n_convs; i++) ASSERT_EQ(spec->convs[i].groups, 1);
        hy__graph *g;
        ASSERT_OK(hy__arch_graph_build(&cfg, 1, 320, 320, &g));
        int n_conv = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const hy__node *nd = &g->nodes[i];
            if (nd->op != HY_OP_CONV2D) continue;
            n_conv++;
            const hy__conv2d_params *p = &nd->p.conv;
            ASSERT_EQ(p->groups, 1);
            ASSERT_TRUE(p->weight_id >= 0 && p->weight_id < spec->n_convs);
            const hy__conv_spec *c = &spec->convs[p->weight_id];
            ASSERT_STREQ(c->prefix, nd->name);
            ASSERT_TRUE(c->cin == p->cin && c->cout == p->cout && c->k == p->kh && c->k == p->kw &&
                        c->stride == p->stride && c->act == p->act && c->groups == p->groups);
        }
        ASSERT_EQ(n_conv, spec->n_convs); /* each weight used once */
        printf("  yolov8%s: %d convs, all groups 1\n", scales[s], n_conv);
        hy__graph_free(g);
        hy__model_spec_free(spec);
    }
}

HY_TEST(num_anchors_is_the_detect_output_width) {
    hy__arch_cfg cfg;
    ASSERT_OK(hy__arch_yolov8.cfg_for_variant("n", 80, &cfg));
    ASSERT_EQ(hy__arch_num_anchors(&cfg, 640, 640), 8400);
    ASSERT_EQ(hy__arch_num_anchors(&cfg, 480, 640), 6300);
    hy__graph *g;
    ASSERT_OK(hy__arch_graph_build(&cfg, 2, 384, 256, &g));
    ASSERT_EQ(g->tensors[g->output].ne[2], hy__arch_num_anchors(&cfg, 384, 256));
    ASSERT_EQ(g->tensors[g->output].ne[1], 84);
    ASSERT_EQ(g->tensors[g->output].ne[0], 2);
    hy__graph_free(g);
}

/* Detect.bias_init() and the DFL arange for tensors a transfer load must create (these
 * values were load.c's, by hard-coded "model.22" names, until the blocks). */
HY_TEST(detect_initial_values) {
    hy__arch_cfg cfg;
    ASSERT_OK(hy__arch_yolov8.cfg_for_variant("n", 80, &cfg));
    hy__model_spec *spec;
    ASSERT_OK(hy__model_spec_create(&cfg, &spec));
    ASSERT_STREQ(spec->detect.prefix, "model.22");
    float v[16];
    hy__tensor_spec t = {.name = "model.22.dfl.conv.weight"};
    ASSERT_EQ(hy__model_spec_init_tensor(spec, &t, v, 16), 1);
    for (int i = 0; i < 16; i++) ASSERT_EQ(v[i], (float)i);
    snprintf(t.name, sizeof t.name, "model.22.cv2.2.2.bias");
    ASSERT_EQ(hy__model_spec_init_tensor(spec, &t, v, 4), 1);
    ASSERT_EQ(v[3], 1.0f);
    static const int s[3] = {8, 16, 32};
    for (int l = 0; l < 3; l++) {
        snprintf(t.name, sizeof t.name, "model.22.cv3.%d.2.bias", l);
        ASSERT_EQ(hy__model_spec_init_tensor(spec, &t, v, 2), 1);
        ASSERT_NEAR(v[1], log(5.0 / 80 / ((640.0 / s[l]) * (640.0 / s[l]))), 1e-6);
    }
    static const char *others[] = {"model.22.cv3.0.2.weight", "model.22.cv3.0.0.bn.bias", "model.2.cv1.bn.bias",
                                   "model.21.cv2.0.2.bias", "model.22.cv3.3.2.bias", "model.22.cv3.x.2.bias",
                                   "model.222.cv3.0.2.bias"};
    for (size_t i = 0; i < HY_ARRAY_LEN(others); i++) {
        snprintf(t.name, sizeof t.name, "%s", others[i]);
        ASSERT_EQ(hy__model_spec_init_tensor(spec, &t, v, 1), 0);
    }
    hy__model_spec_free(spec);
}

HY_TEST_MAIN()
