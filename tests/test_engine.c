/* Engine lifecycle: prepare (plan + warm-up) -> ready. Allocation-free detection for a
 * prepared shape, cold events for unplanned shapes, warm-up leaves results bit-identical,
 * re-warm, stats. */
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/core.h"
#include "hy_test.h"

/* A context owning its model, nothing planned yet. */
static hy_context *load_path(const char *path, const hy_model_params *mp) {
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 0;
    hy_context *c = NULL;
    if (hy_context_load(path, mp, &cp, &c) != HY_OK) fprintf(stderr, "  load: %s\n", hy_last_error());
    return c;
}
static hy_context *load(void) { return load_path(hy_test_asset("weights/yolov8n.pt"), NULL); }

HY_TEST(prepared_shapes_detect_without_allocation) {
    hy_context *m = load();
    ASSERT_TRUE(m != NULL);
    hy_shape shapes[] = {{640, 640}, {480, 640}}; /* square + bus.jpg's rect letterbox */
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = shapes;
    pp.n_shapes = 2;
    ASSERT_OK(hy_model_prepare(m, &pp));
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(m, &s));
    ASSERT_EQ(s.n_shapes, 2);
    ASSERT_EQ(s.cold_events, 0);
    ASSERT_TRUE(s.load_ms > 0 && s.prepare_ms > 0 && s.first_warmup_ms > 0 && s.last_warmup_ms > 0);
    printf("  load %.1f ms, prepare %.1f ms, warm-up %.1f ms (first pass %.1f, last %.1f)\n", s.load_ms, s.prepare_ms,
           s.warmup_ms, s.first_warmup_ms, s.last_warmup_ms);
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
    hy_result *r = NULL;
    int64_t before = hy__alloc_total();
    ASSERT_OK(hy_detect(m, img, NULL, &r)); /* the very first detect */
    ASSERT_EQ(hy__alloc_total() - before, 1); /* its result, nothing else */
    ASSERT_EQ(hy_result_count(r), 5);
    hy_result_free(r);
    ASSERT_OK(hy_model_engine_stats(m, &s));
    ASSERT_EQ(s.cold_events, 0);
    ASSERT_EQ(s.n_inferences, 1);
    hy_image_free(img);
    /* an unplanned shape is still served, and counted as a cold event */
    ASSERT_OK(hy_image_load(hy_test_asset("images/zidane.jpg"), &img));
    ASSERT_OK(hy_detect(m, img, NULL, &r));
    ASSERT_EQ(hy_result_count(r), 3);
    hy_result_free(r);
    hy_image_free(img);
    ASSERT_OK(hy_model_engine_stats(m, &s));
    ASSERT_EQ(s.cold_events, 1);
    ASSERT_EQ(s.n_shapes, 3);
    hy_context_free(m);
}

/* A context made with prepare on is ready at once; a batch planned by prepare (batch 2) is
 * detected with no cold event and no allocation but its two results. */
HY_TEST(context_create_prepares_batches) {
    hy_model *mdl = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &mdl));
    hy_shape sq = {640, 640};
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 1;
    cp.prep.shapes = &sq;
    cp.prep.n_shapes = 1;
    cp.prep.batch = 2;
    cp.prep.warmup_runs = 1;
    hy_context *c = NULL;
    ASSERT_OK(hy_context_create(mdl, &cp, &c));
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(c, &s));
    ASSERT_EQ(s.n_shapes, 1);
    ASSERT_TRUE(s.warmup_ms > 0);
    hy_image *imgs[2] = {NULL, NULL};
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &imgs[0]));
    ASSERT_OK(hy_image_load(hy_test_asset("images/zidane.jpg"), &imgs[1]));
    hy_result *r[2] = {NULL, NULL};
    int64_t before = hy__alloc_total();
    ASSERT_OK(hy_detect_batch(c, (const hy_image *const *)imgs, 2, NULL, r)); /* mixed sizes: 640x640 */
    ASSERT_EQ(hy__alloc_total() - before, 2); /* the two results */
    ASSERT_OK(hy_model_engine_stats(c, &s));
    ASSERT_EQ(s.cold_events, 0);
    ASSERT_EQ((long long)s.n_inferences, 2);
    ASSERT_TRUE(hy_result_count(r[0]) > 0 && hy_result_count(r[1]) > 0);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(hy_result_input_shape(r[i]).width, 640);
        ASSERT_EQ(hy_result_input_shape(r[i]).height, 640);
        hy_result_free(r[i]);
        hy_image_free(imgs[i]);
    }
    hy_context_free(c);
    hy_model_free(mdl);
}

/* One-shot path of `hotyolo detect`: probe the file's headers, prepare exactly the input
 * shape detect will use, then detect: no cold event, no allocation but the result. */
HY_TEST(probe_then_prepare_input_shape) {
    hy_context *m = load();
    ASSERT_TRUE(m != NULL);
    static const struct {
        const char *path;
        int w, h; /* network input; bus and zidane as Ultralytics predict logs them */
    } imgs[] = {{"images/bus.jpg", 480, 640},    {"images/zidane.jpg", 640, 384},
                {"images/boats.jpg", 640, 384},  {"images/darknet/giraffe.jpg", 640, 640},
                {"images/darknet/person.jpg", 640, 448}};
    for (size_t i = 0; i < sizeof imgs / sizeof imgs[0]; i++) {
        FILE *f = fopen(hy_test_asset(imgs[i].path), "rb");
        ASSERT_TRUE(f != NULL);
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        int w, h;
        ASSERT_OK(hy_image_probe(buf, len, &w, &h));
        hy_shape sh;
        ASSERT_OK(hy_model_input_shape(hy_context_model(m), w, h, 0, &sh));
        ASSERT_EQ(sh.width, imgs[i].w);
        ASSERT_EQ(sh.height, imgs[i].h);
        hy_prepare_params pp = hy_prepare_default_params();
        pp.shapes = &sh;
        pp.n_shapes = 1;
        pp.warmup_runs = 0;
        ASSERT_OK(hy_model_prepare(m, &pp));
        hy_result *r = NULL;
        ASSERT_OK(hy_detect_encoded(m, buf, len, NULL, &r));
        hy_result_free(r);
        hy_engine_stats s;
        ASSERT_OK(hy_model_engine_stats(m, &s));
        ASSERT_EQ(s.cold_events, 0);
    }
    hy_shape sh;
    ASSERT_ERR(hy_model_input_shape(hy_context_model(m), 0, 10, 0, &sh), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_model_input_shape(hy_context_model(m), 10, 10, 100, &sh), HY_ERR_INVALID_ARG);
    ASSERT_OK(hy_model_input_shape(hy_context_model(m), 1000, 500, 320, &sh)); /* long side imgsz, rect pad */
    ASSERT_EQ(sh.width, 320);
    ASSERT_EQ(sh.height, 160);
    hy_context_free(m);
}

static float *forward_bus(hy_context *m) {
    long long sh[8];
    int nd;
    size_t n;
    float *x = hy_test_npy_load(hy_test_asset("reference/bus_letterbox_640_input.npy"), sh, &nd, &n);
    float *y = malloc(84 * 8400 * sizeof(float));
    if (!x || hy_model_forward(m, x, 1, 640, 640, y, 84 * 8400) != HY_OK) {
        free(y);
        y = NULL;
    }
    free(x);
    return y;
}

HY_TEST(warmup_and_rewarm_leave_outputs_bit_identical) {
    hy_context *cold = load(), *warm = load();
    ASSERT_TRUE(cold && warm);
    float *a = forward_bus(cold); /* no prepare at all */
    ASSERT_OK(hy_model_prepare(warm, NULL));
    float *b = forward_bus(warm);
    ASSERT_OK(hy_model_rewarm(warm));
    float *c = forward_bus(warm);
    ASSERT_TRUE(a && b && c);
    ASSERT_TRUE(memcmp(a, b, 84 * 8400 * sizeof(float)) == 0);
    ASSERT_TRUE(memcmp(a, c, 84 * 8400 * sizeof(float)) == 0);
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(warm, &s));
    ASSERT_EQ(s.rewarms, 1);
    ASSERT_EQ(s.cold_events, 0);
    ASSERT_OK(hy_model_engine_stats(cold, &s));
    ASSERT_EQ(s.cold_events, 1); /* the cold model planned 640x640 on demand */
    free(a);
    free(b);
    free(c);
    hy_context_free(cold);
    hy_context_free(warm);
}

typedef struct {
    hy_context *m;
    int n, failed;
} rewarm_arg;

static void *rewarm_loop(void *p) {
    rewarm_arg *a = p;
    for (int i = 0; i < a->n; i++) a->failed += hy_model_rewarm(a->m) != HY_OK;
    return NULL;
}

HY_TEST(rewarm_does_not_disturb_concurrent_detect) {
    hy_context *m = load();
    ASSERT_TRUE(m != NULL);
    hy_shape sh[] = {{480, 640}};
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = sh;
    pp.n_shapes = 1;
    pp.warmup_runs = 1;
    ASSERT_OK(hy_model_prepare(m, &pp));
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
    rewarm_arg a = {m, 3, 0};
    pthread_t t;
    pthread_create(&t, NULL, rewarm_loop, &a);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        hy_result *r = NULL;
        if (hy_detect(m, img, NULL, &r) != HY_OK || hy_result_count(r) != 5) bad++;
        hy_result_free(r);
    }
    pthread_join(t, NULL);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(a.failed, 0);
    hy_image_free(img);
    hy_context_free(m);
}

HY_TEST(prepare_rejects_bad_shapes_and_counts) {
    hy_context *m = load();
    ASSERT_TRUE(m != NULL);
    hy_shape bad[] = {{100, 640}};
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = bad;
    pp.n_shapes = 1;
    ASSERT_ERR(hy_model_prepare(m, &pp), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "100x640");
    pp = hy_prepare_default_params();
    pp.warmup_runs = -1;
    ASSERT_ERR(hy_model_prepare(m, &pp), HY_ERR_INVALID_ARG);
    pp.warmup_runs = 0; /* --no-warmup: planned, not warmed */
    ASSERT_OK(hy_model_prepare(m, &pp));
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(m, &s));
    ASSERT_EQ(s.n_shapes, 1);
    ASSERT_NEAR(s.warmup_ms, 0, 1.0);
    hy_context_free(m);
}

HY_TEST(lock_memory_is_optional_and_harmless) {
    hy_model_params p = hy_model_default_params();
    p.lock_memory = 1;
    hy_context *m = load_path(hy_test_asset("weights/yolov8n.pt"), &p);
    ASSERT_TRUE(m != NULL);
    ASSERT_OK(hy_model_prepare(m, NULL));
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(m, &s));
    printf("  memory locked: %s\n", s.memory_locked ? "yes" : "no (RLIMIT_MEMLOCK)");
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
    hy_result *r = NULL;
    ASSERT_OK(hy_detect(m, img, NULL, &r));
    ASSERT_EQ(hy_result_count(r), 5);
    hy_result_free(r);
    hy_image_free(img);
    hy_context_free(m);
}

static long minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

/* prepare populates the arena (conv workspaces included) and touches the weights on the
 * pool's threads: the first pass after it, with no warm-up, takes no more page faults than
 * the second. Unpopulated, the first pass of YOLOv8n at 640 would take ~4,400 4 KiB faults
 * (or one per 2 MiB on huge pages: `HY_HUGE_PAGES=0` makes this test sharp; ctest runs it
 * both ways). */
/* After prepare (no warm-up) the first pass takes no more page faults than the second: the
 * arena is populated and the weights are touched. For a fused float32 file the packed weights
 * are used in place from the file's mapping, and prepare's touch must have reached every page
 * of them (a touch that skips 1/8 of them shows ~20 faults here). */
static void first_pass_faults(hy_context *m, const char *what) {
    hy_prepare_params pp = hy_prepare_default_params();
    pp.warmup_runs = 0;
    ASSERT_OK(hy_model_prepare(m, &pp));
    size_t n = (size_t)3 * 640 * 640, ny = (size_t)84 * 8400;
    float *x = malloc(n * sizeof *x), *y = malloc(ny * sizeof *y), *y2 = malloc(ny * sizeof *y2);
    ASSERT_TRUE(x && y && y2);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 251) / 251.0f;
    memset(y, 0, ny * sizeof *y); /* the outputs' own pages, before counting */
    memset(y2, 0, ny * sizeof *y2);
    long f0 = minor_faults();
    ASSERT_OK(hy_model_forward(m, x, 1, 640, 640, y, ny));
    long f1 = minor_faults();
    ASSERT_OK(hy_model_forward(m, x, 1, 640, 640, y2, ny));
    long f2 = minor_faults();
    /* ASan maps its shadow of the arena (1/8 of it) on first use: those faults are not ours */
    const char *san = getenv("HY_TEST_SANITIZED");
    int sanitized = san && *san && strcmp(san, "0") != 0;
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(m, &s));
    printf("  %s: page faults: first pass %ld, second %ld (arena on %s pages, policy %d, probe %.2f ms%s)\n",
           what, f1 - f0, f2 - f1, s.huge_pages ? "huge" : "4 KiB", hy__huge_pages(), s.huge_page_probe_ms,
           sanitized ? "; sanitizer build: not compared" : "");
    int same = memcmp(y, y2, ny * sizeof *y) == 0;
    /* the probe ran on the arena (at 640 several 2 MiB chunks) exactly when the policy says */
    if (hy__huge_pages() == HY_PAGES_PROBE)
        ASSERT_TRUE(s.huge_page_probe_ms >= 0);
    else
        ASSERT_TRUE(s.huge_page_probe_ms == -1 && s.huge_pages == (hy__huge_pages() == HY_PAGES_HUGE));
    free(x);
    free(y);
    free(y2);
    if (!sanitized) ASSERT_TRUE(f1 - f0 <= f2 - f1 + 16);
    ASSERT_TRUE(same);
    ASSERT_EQ(s.cold_events, 0);
}

HY_TEST(prepare_populates_before_the_first_pass) {
    hy_context *m = load();
    ASSERT_TRUE(m != NULL);
    first_pass_faults(m, ".pt (weights packed at load)");
    hy_context_free(m);
}

HY_TEST(prepare_touches_mapped_weights_before_the_first_pass) {
    const char *path = hy_test_tmp("engine_fused.safetensors");
    unlink(path);
    hy_convert_params cp = hy_convert_default_params();
    cp.dtype = HY_DTYPE_F32;
    cp.fuse = 1; /* float32 + fused: carries packed weights, used in place */
    ASSERT_OK(hy_convert(hy_test_asset("weights/yolov8n.pt"), path, &cp));
    hy_context *m = load_path(path, NULL);
    ASSERT_TRUE(m != NULL);
    first_pass_faults(m, "fused safetensors (packed weights mapped)");
    hy_context_free(m);
    unlink(path);
}

HY_TEST_MAIN()
