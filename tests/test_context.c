/* Model / context split (issue 15 acceptance):
 *  - two contexts on ONE model, driven from two threads (200 detections each, alternating
 *    images), give exactly the detections of a serial run (also under `make test-tsan`);
 *  - a second context does not copy the weights (RSS growth far below their size);
 *  - a context asking for another device than the model's is refused with a clear error;
 *  - `ref` and `cpu` give the same detections on images/bus.jpg and images/zidane.jpg;
 *  - hy_context_load's context owns its model (freed with it, nothing left). */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>

#include "core/core.h"
#include "hy_test.h"

#define MAX_DETS 300

typedef struct dets {
    size_t n;
    hy_detection d[MAX_DETS];
    hy_shape input;
} dets;

static void take(const hy_result *r, dets *out) {
    out->n = hy_result_count(r);
    if (out->n > MAX_DETS) out->n = MAX_DETS;
    for (size_t i = 0; i < out->n; i++) out->d[i] = *hy_result_get(r, i);
    out->input = hy_result_input_shape(r);
}

static int identical(const dets *a, const dets *b) {
    if (a->n != b->n || a->input.width != b->input.width || a->input.height != b->input.height) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const hy_detection *p = &a->d[i], *q = &b->d[i];
        if (p->class_id != q->class_id || p->confidence != q->confidence || p->x1 != q->x1 || p->y1 != q->y1 ||
            p->x2 != q->x2 || p->y2 != q->y2)
            return 0;
    }
    return 1;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* ---- two threads, two contexts, one model ---- */

typedef struct worker {
    hy_context *c;
    hy_image *const *imgs;
    const dets *want; /* (2) serial results per image */
    int iters, done, mismatches, errors;
    pthread_barrier_t *start;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    static _Thread_local dets got;
    pthread_barrier_wait(w->start); /* both threads detect at the same time */
    for (int i = 0; i < w->iters; i++) {
        hy_result *r = NULL;
        int k = i % 2; /* alternating images (and shapes: 320x256 vs 192x320) */
        if (hy_detect(w->c, w->imgs[k], NULL, &r) != HY_OK) {
            w->errors++;
            continue;
        }
        take(r, &got);
        hy_result_free(r);
        w->mismatches += !identical(&got, &w->want[k]);
        w->done++;
    }
    return NULL;
}

HY_TEST(two_contexts_on_one_model_from_two_threads_match_serial) {
    const int iters = hy_test_sanitized() ? 16 : 200;
    hy_model_params mp = hy_model_default_params();
    mp.imgsz = 320;
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &m));
    hy_image *imgs[2] = {NULL, NULL};
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &imgs[0]));
    ASSERT_OK(hy_image_load(hy_test_asset("images/zidane.jpg"), &imgs[1]));
    /* serial reference: one context, one image after the other */
    static dets want[2];
    hy_context *c0 = NULL;
    ASSERT_OK(hy_context_create(m, NULL, &c0));
    for (int k = 0; k < 2; k++) {
        hy_result *r = NULL;
        ASSERT_OK(hy_detect(c0, imgs[k], NULL, &r));
        take(r, &want[k]);
        hy_result_free(r);
    }
    hy_context_free(c0);
    ASSERT_TRUE(want[0].n > 0 && want[1].n > 0);
    /* two contexts (1 and 2 threads: the result must not depend on it), prepared for both shapes */
    hy_shape shapes[2] = {want[0].input, want[1].input};
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 1;
    cp.prep.shapes = shapes;
    cp.prep.n_shapes = 2;
    cp.prep.warmup_runs = 1;
    hy_context *c[2] = {NULL, NULL};
    cp.n_threads = 1;
    ASSERT_OK(hy_context_create(m, &cp, &c[0]));
    cp.n_threads = 2;
    ASSERT_OK(hy_context_create(m, &cp, &c[1]));
    ASSERT_EQ(hy_context_num_threads(c[0]), 1);
    ASSERT_EQ(hy_context_num_threads(c[1]), 2);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    worker w[2];
    pthread_t t[2];
    double t0 = hy__now_ms();
    for (int i = 0; i < 2; i++) {
        w[i] = (worker){.c = c[i], .imgs = imgs, .want = want, .iters = iters, .start = &start};
        ASSERT_EQ(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    double ms = hy__now_ms() - t0;
    pthread_barrier_destroy(&start);
    hy_engine_stats s[2];
    for (int i = 0; i < 2; i++) ASSERT_OK(hy_model_engine_stats(c[i], &s[i]));
    printf("  2 threads x %d detections (imgsz 320, contexts of 1 and 2 threads): %.1f s; %d + %d identical to the "
           "serial run, %d + %d differ, %d + %d errors; cold events %d + %d\n",
           iters, ms / 1000, w[0].done - w[0].mismatches, w[1].done - w[1].mismatches, w[0].mismatches,
           w[1].mismatches, w[0].errors, w[1].errors, s[0].cold_events, s[1].cold_events);
    for (int i = 0; i < 2; i++) hy_context_free(c[i]);
    hy_model_free(m);
    hy_image_free(imgs[0]);
    hy_image_free(imgs[1]);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(w[i].errors, 0);
        ASSERT_EQ(w[i].done, iters);
        ASSERT_EQ(w[i].mismatches, 0);
        ASSERT_EQ((long long)s[i].n_inferences, iters);
        ASSERT_EQ(s[i].cold_events, 0);
    }
}

/* A context costs its arena and scratch, not a copy of the weights: after malloc_trim (freed
 * heap pages go back to the system, so a copy could not hide in them), creating a second
 * context and preparing it for a small shape grows RSS by less than half the weights' float32
 * size (hy_inspect's parameter count x 4 bytes; a copy costs at least all of it: +112 MB
 * measured with a copying backend). YOLOv8s (44 MB of weights) rather than n, so that what a
 * sanitizer adds per context (TSan: ~10 MB of shadow and thread state) stays well below. */
HY_TEST(second_context_does_not_copy_the_weights) {
    const char *path = hy_test_asset("weights/yolov8s_random.pt");
    char *js = NULL;
    ASSERT_OK(hy_inspect(path, 0, &js));
    const char *pc = strstr(js, "\"parameters\":");
    double params = pc ? atof(pc + strlen("\"parameters\":")) : 0;
    hy_free(js);
    ASSERT_TRUE(params > 1e7); /* YOLOv8s: 11.2 M */
    const double weights_kb = params * 4 / 1024;
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(path, NULL, &m));
    hy_shape small = {64, 64};
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 1;
    cp.prep.shapes = &small;
    cp.prep.n_shapes = 1;
    cp.prep.warmup_runs = 1;
    hy_context *a = NULL, *b = NULL;
    ASSERT_OK(hy_context_create(m, &cp, &a));
    malloc_trim(0);
    long r0 = rss_kb();
    int64_t live0 = hy__alloc_live();
    ASSERT_OK(hy_context_create(m, &cp, &b));
    long r1 = rss_kb();
    int64_t live1 = hy__alloc_live();
    printf("  second context (prepared at 64x64, one warm-up pass): RSS +%ld KiB, +%lld live allocations; weights "
           "%.0f KiB\n",
           r1 - r0, (long long)(live1 - live0), weights_kb);
    hy_context_free(b);
    hy_context_free(a);
    hy_model_free(m);
    ASSERT_TRUE(r0 > 0 && r1 > 0);
    ASSERT_TRUE(r1 - r0 < weights_kb / 2);
}

HY_TEST(context_device_must_match_the_model) {
    hy_model *m = NULL;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), NULL, &m));
    ASSERT_STREQ(hy_model_device(m), "cpu");
    hy_context_params cp = hy_context_default_params();
    cp.device = "ref";
    hy_context *c = NULL;
    ASSERT_ERR(hy_context_create(m, &cp, &c), HY_ERR_INVALID_ARG);
    ASSERT_TRUE(c == NULL);
    ASSERT_CONTAINS(hy_last_error(), "'ref'");
    ASSERT_CONTAINS(hy_last_error(), "'cpu'");
    cp.device = "cuda7"; /* not a device string: refused naming the forms (hotyolo/device.h) */
    ASSERT_ERR(hy_context_create(m, &cp, &c), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "cuda7");
    ASSERT_CONTAINS(hy_last_error(), "expected cpu, ref, cuda, cuda:N");
    ASSERT_TRUE(c == NULL);
    cp.device = "cuda:7"; /* a GPU the model was not loaded for */
    ASSERT_ERR(hy_context_create(m, &cp, &c), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "prepared for 'cpu'");
    ASSERT_TRUE(c == NULL);
    cp.device = "cpu"; /* naming the model's own device is fine */
    ASSERT_OK(hy_context_create(m, &cp, &c));
    ASSERT_STREQ(hy_context_device(c), "cpu");
    hy_context_free(c);
    hy_model_free(m);
    /* and a model for an unknown device is refused at load */
    hy_model_params mp = hy_model_default_params();
    mp.device = "tpu";
    ASSERT_ERR(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &m), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "tpu");
}

/* ref (plain-C double-accumulating kernels) and cpu agree: same detections, same classes
 * and order, boxes within 0.01 px and confidences within 1e-5 (float vs double sums;
 * measured: 2e-4 px, 1e-6). */
HY_TEST(ref_and_cpu_devices_give_the_same_detections) {
    /* ref at 640 takes seconds per image in Release; sanitizer builds use 320 */
    const int imgsz = hy_test_sanitized() ? 320 : 640;
    static const char *files[] = {"images/bus.jpg", "images/zidane.jpg"};
    hy_context *ctx[2] = {NULL, NULL};
    static const char *dev[2] = {"cpu", "ref"};
    for (int d = 0; d < 2; d++) {
        hy_model_params mp = hy_model_default_params();
        mp.device = dev[d];
        mp.imgsz = imgsz;
        hy_context_params cp = hy_context_default_params(); /* nothing prepared: no warm-up passes */
        ASSERT_OK(hy_context_load(hy_test_asset("weights/yolov8n.pt"), &mp, &cp, &ctx[d]));
        ASSERT_STREQ(hy_context_device(ctx[d]), dev[d]);
        ASSERT_STREQ(hy_model_device(hy_context_model(ctx[d])), dev[d]);
    }
    int bad = 0;
    for (int f = 0; f < 2; f++) {
        hy_image *img = NULL;
        ASSERT_OK(hy_image_load(hy_test_asset(files[f]), &img));
        static dets got[2];
        double ms[2];
        for (int d = 0; d < 2; d++) {
            hy_result *r = NULL;
            double t0 = hy__now_ms();
            ASSERT_OK(hy_detect(ctx[d], img, NULL, &r));
            ms[d] = hy__now_ms() - t0;
            take(r, &got[d]);
            hy_result_free(r);
        }
        hy_image_free(img);
        double box = 0, conf = 0;
        int same = got[0].n == got[1].n;
        for (size_t i = 0; same && i < got[0].n; i++) {
            const hy_detection *p = &got[0].d[i], *q = &got[1].d[i];
            same = p->class_id == q->class_id;
            box = fmax(box, fmax(fmax(fabs(p->x1 - q->x1), fabs(p->y1 - q->y1)),
                                 fmax(fabs(p->x2 - q->x2), fabs(p->y2 - q->y2))));
            conf = fmax(conf, fabs(p->confidence - q->confidence));
        }
        printf("  %s at %dx%d: cpu %zu detections in %.0f ms, ref %zu in %.0f ms; max box diff %.2g px, conf diff "
               "%.2g\n",
               files[f], got[0].input.width, got[0].input.height, got[0].n, ms[0], got[1].n, ms[1], box, conf);
        bad += !same || box > 0.01 || conf > 1e-5 || got[0].n == 0;
    }
    hy_context_free(ctx[0]);
    hy_context_free(ctx[1]);
    ASSERT_EQ(bad, 0);
}

HY_TEST(context_load_owns_its_model) {
    int64_t live0 = hy__alloc_live();
    hy_context *c = NULL;
    hy_model_params mp = hy_model_default_params();
    mp.imgsz = 128;
    ASSERT_OK(hy_context_load(hy_test_asset("weights/yolov8n.pt"), &mp, NULL, &c)); /* cp NULL: prepared */
    const hy_model *m = hy_context_model(c);
    ASSERT_TRUE(m != NULL);
    ASSERT_STREQ(hy_model_class_name(m, 0), "person");
    ASSERT_EQ(hy_model_imgsz(m), 128);
    ASSERT_STREQ(hy_model_arch(m), "yolov8");
    hy_engine_stats s;
    ASSERT_OK(hy_model_engine_stats(c, &s));
    ASSERT_EQ(s.n_shapes, 1); /* imgsz x imgsz planned and warmed */
    ASSERT_TRUE(s.warmup_ms > 0);
    hy_context_free(c); /* frees the model too: nothing of either is left */
    ASSERT_EQ(hy__alloc_live() - live0, 0);
    /* a failed load leaves nothing either */
    ASSERT_ERR(hy_context_load("/nonexistent/yolo.pt", NULL, NULL, &c), HY_ERR_NOT_FOUND);
    ASSERT_EQ(hy__alloc_live() - live0, 0);
}

HY_TEST_MAIN()
