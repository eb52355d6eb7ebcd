/* The YOLOv8 tensor table we build must equal Ultralytics' state_dict for every variant
 * (reference/yolov8{n,s,m,l,x}_state_dict_keys.tsv, yolov8n_nc3_state_dict_keys.tsv). */
#include "backend/backend_impl.h"
#include "hy_test.h"
#include "model/yolov8.h"
#include "tensor/graph.h"

static int check_against_tsv(const char *scale, int nc, const char *tsv) {
    hy__arch_cfg cfg;
    if (hy__arch_yolov8.cfg_for_variant(scale, nc, &cfg) != HY_OK) return -1;
    hy__model_spec *spec;
    if (hy__model_spec_create(&cfg, &spec) != HY_OK) return -1;
    FILE *f = fopen(hy_test_asset(tsv), "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", tsv);
        hy__model_spec_free(spec);
        return -1;
    }
    char line[512];
    int i = 0, bad = 0;
    if (!fgets(line, sizeof line, f)) bad++; /* header */
    while (fgets(line, sizeof line, f)) {
        char name[256], shape[128], dtype[32];
        if (sscanf(line, "%255s\t%127s\t%31s", name, shape, dtype) != 3) continue;
        if (i >= spec->n_tensors) {
            fprintf(stderr, "%s: extra reference row %s\n", tsv, name);
            bad++;
            continue;
        }
        const hy__tensor_spec *s = &spec->tensors[i++];
        char ours[128] = "scalar";
        if (s->ndim) {
            size_t o = 0;
            for (int d = 0; d < s->ndim; d++)
                o += (size_t)snprintf(ours + o, sizeof ours - o, d ? "x%lld" : "%lld", (long long)s->shape[d]);
        }
        if (strcmp(name, s->name) || strcmp(shape, ours) || strcmp(dtype, hy_dtype_name(s->dtype))) {
            fprintf(stderr, "%s row %d: reference %s %s %s, built %s %s %s\n", tsv, i, name, shape, dtype, s->name, ours,
                    hy_dtype_name(s->dtype));
            bad++;
        }
    }
    if (i != spec->n_tensors) {
        fprintf(stderr, "%s: %d reference rows, %d built tensors\n", tsv, i, spec->n_tensors);
        bad++;
    }
    fclose(f);
    hy__model_spec_free(spec);
    return bad;
}

HY_TEST(yolov8n_keys) { ASSERT_EQ(check_against_tsv("n", 80, "reference/yolov8n_state_dict_keys.tsv"), 0); }
HY_TEST(yolov8s_keys) { ASSERT_EQ(check_against_tsv("s", 80, "reference/yolov8s_state_dict_keys.tsv"), 0); }
HY_TEST(yolov8m_keys) { ASSERT_EQ(check_against_tsv("m", 80, "reference/yolov8m_state_dict_keys.tsv"), 0); }
HY_TEST(yolov8l_keys) { ASSERT_EQ(check_against_tsv("l", 80, "reference/yolov8l_state_dict_keys.tsv"), 0); }
HY_TEST(yolov8x_keys) { ASSERT_EQ(check_against_tsv("x", 80, "reference/yolov8x_state_dict_keys.tsv"), 0); }
HY_TEST(yolov8n_nc3_keys) { ASSERT_EQ(check_against_tsv("n", 3, "reference/yolov8n_nc3_state_dict_keys.tsv"), 0); }

HY_TEST(unknown_scale_is_an_error) {
    hy__arch_cfg cfg;
    ASSERT_ERR(hy__arch_yolov8.cfg_for_variant("q", 80, &cfg), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "'q'");
}

/* Planner invariant: storage roots alive at the same time never overlap in the arena, and
 * reuse makes the arena smaller than the sum of all activations. ws_threads > 0: the CPU
 * backend's conv scratch (for that many threads) is planned as per-node workspaces too, as
 * the model does; each must stay clear of everything alive at its node. */
static int check_plan(const char *scale, int h, int w, int ws_threads) {
    hy__arch_cfg cfg;
    hy__arch_yolov8.cfg_for_variant(scale, 80, &cfg);
    hy__graph *g;
    if (hy__arch_graph_build(&cfg, 1, h, w, &g) != HY_OK) return -1;
    int bad = 0;
    size_t arena_no_ws = g->arena_size, max_ws = 0;
    if (ws_threads > 0) {
        hy__threadpool *tp;
        if (hy__threadpool_create(ws_threads, &tp) != HY_OK) return -1;
        hy__backend_params bp = {.tp = tp};
        hy__backend *be;
        if (hy__backend_cpu.create(&bp, NULL, &be) != HY_OK) return -1;
        for (int n = 0; n < g->n_nodes; n++) {
            g->nodes[n].ws_size = be->i->node_workspace(be, g, n);
            if (g->nodes[n].ws_size > max_ws) max_ws = g->nodes[n].ws_size;
        }
        hy__backend_free(be);
        hy__threadpool_free(tp);
        if (max_ws == 0) bad++; /* the convs do need scratch */
        if (hy__graph_plan(g) != HY_OK) return -1;
    }
    int nt = g->n_tensors;
    int *start = calloc((size_t)nt, sizeof(int)), *end = calloc((size_t)nt, sizeof(int));
    for (int i = 0; i < nt; i++) {
        start[i] = 1 << 30;
        end[i] = -1;
    }
    /* Lifetimes from the node list itself (not the planner's bookkeeping): a storage root is
     * alive from the first node that writes any of it to the last node that reads any of
     * it; the graph input from node 0, the output to the end. */
    for (int n = 0; n < g->n_nodes; n++) {
        const hy__node *nd = &g->nodes[n];
        int r = hy__graph_root(g, nd->dst, NULL);
        if (n < start[r]) start[r] = n;
        if (n > end[r]) end[r] = n;
        for (int k = 0; k < nd->n_src; k++) {
            r = hy__graph_root(g, nd->src[k], NULL);
            if (n > end[r]) end[r] = n;
            if (start[r] > n) {
                fprintf(stderr, "%s reads %s before anything writes it\n", nd->name, g->tensors[nd->src[k]].name);
                bad++;
            }
        }
    }
    start[hy__graph_root(g, g->input, NULL)] = 0;
    end[hy__graph_root(g, g->output, NULL)] = g->n_nodes;
    size_t sum = 0;
    for (int a = 0; a < nt; a++) {
        if (g->tensors[a].view_src >= 0) continue;
        size_t sa = hy__tensor_numel(&g->tensors[a]) * 4;
        sum += sa;
        if (g->tensors[a].offset + sa > g->arena_size) bad++;
        for (int b = a + 1; b < nt; b++) {
            if (g->tensors[b].view_src >= 0) continue;
            if (end[a] < start[b] || end[b] < start[a]) continue;
            size_t sb = hy__tensor_numel(&g->tensors[b]) * 4;
            if (g->tensors[a].offset < g->tensors[b].offset + sb && g->tensors[b].offset < g->tensors[a].offset + sa) {
                fprintf(stderr, "overlap: %s and %s\n", g->tensors[a].name, g->tensors[b].name);
                bad++;
            }
        }
    }
    if (g->arena_size >= sum) {
        fprintf(stderr, "no reuse: arena %zu >= sum %zu\n", g->arena_size, sum);
        bad++;
    }
    /* No arena can be smaller than the bytes alive at the busiest node; the planner should be
     * close to that (a lifetime stretched too far once kept every C2f buffer alive from node
     * 0 and made the arena 2.4x this bound). */
    size_t peak = 0;
    for (int n = 0; n <= g->n_nodes; n++) {
        size_t live = 0;
        for (int a = 0; a < nt; a++)
            if (g->tensors[a].view_src < 0 && start[a] <= n && n <= end[a])
                live += (hy__tensor_numel(&g->tensors[a]) * 4 + 63) & ~(size_t)63;
        if (n < g->n_nodes) live += (g->nodes[n].ws_size + 63) & ~(size_t)63;
        if (live > peak) peak = live;
    }
    /* workspaces: inside the arena, clear of every root alive at their node */
    for (int n = 0; n < g->n_nodes; n++) {
        const hy__node *nd = &g->nodes[n];
        if (!nd->ws_size) continue;
        if (nd->ws_offset % 64 || nd->ws_offset + nd->ws_size > g->arena_size) bad++;
        for (int a = 0; a < nt; a++) {
            if (g->tensors[a].view_src >= 0 || start[a] > n || n > end[a]) continue;
            size_t sa = hy__tensor_numel(&g->tensors[a]) * 4;
            if (nd->ws_offset < g->tensors[a].offset + sa && g->tensors[a].offset < nd->ws_offset + nd->ws_size) {
                fprintf(stderr, "workspace of %s overlaps %s\n", nd->name, g->tensors[a].name);
                bad++;
            }
        }
    }
    /* never more than a separate scratch buffer as large as the largest workspace */
    if (ws_threads > 0 && g->arena_size > arena_no_ws + max_ws) {
        fprintf(stderr, "arena with workspaces %zu > %zu + %zu\n", g->arena_size, arena_no_ws, max_ws);
        bad++;
    }
    if ((double)g->arena_size > 1.25 * (double)peak) {
        fprintf(stderr, "arena %zu is more than 1.25x the live peak %zu\n", g->arena_size, peak);
        bad++;
    }
    /* views stay inside their storage */
    for (int i = 0; i < nt; i++) {
        size_t offs;
        int r = hy__graph_root(g, i, &offs);
        if (offs + hy__tensor_numel(&g->tensors[i]) > hy__tensor_numel(&g->tensors[r])) bad++;
    }
    printf("  yolov8%s %dx%d: %d nodes, arena %.1f MiB (live peak %.1f MiB, activations %.1f MiB)", scale, w,
           h, g->n_nodes, (double)g->arena_size / 1048576.0, (double)peak / 1048576.0, (double)sum / 1048576.0);
    if (ws_threads > 0)
        printf(" with %d-thread conv workspaces; without: %.1f MiB + %.1f MiB scratch", ws_threads,
               (double)arena_no_ws / 1048576.0, (double)max_ws / 1048576.0);
    printf("\n");
    free(start);
    free(end);
    hy__graph_free(g);
    return bad;
}

HY_TEST(plan_no_overlap_n640) { ASSERT_EQ(check_plan("n", 640, 640, 0), 0); }
HY_TEST(plan_no_overlap_s480x640) { ASSERT_EQ(check_plan("s", 640, 480, 0), 0); }
HY_TEST(plan_no_overlap_x320) { ASSERT_EQ(check_plan("x", 320, 320, 0), 0); }
HY_TEST(plan_workspaces_n640_2_threads) { ASSERT_EQ(check_plan("n", 640, 640, 2), 0); }
HY_TEST(plan_workspaces_n480x640_1_thread) { ASSERT_EQ(check_plan("n", 480, 640, 1), 0); }
HY_TEST(plan_workspaces_s640_4_threads) { ASSERT_EQ(check_plan("s", 640, 640, 4), 0); }

HY_TEST(graph_rejects_bad_sizes) {
    hy__arch_cfg cfg;
    hy__arch_yolov8.cfg_for_variant("n", 80, &cfg);
    hy__graph *g = NULL;
    ASSERT_ERR(hy__arch_graph_build(&cfg, 1, 630, 640, &g), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy__arch_graph_build(&cfg, 1, 0, 640, &g), HY_ERR_INVALID_ARG);
    ASSERT_TRUE(g == NULL);
}

HY_TEST_MAIN()
