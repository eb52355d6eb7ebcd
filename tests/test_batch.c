/* Batches (issue 15 acceptance): for N in 1, 2, 5, 8 images of different sizes,
 *  (a) hy_model_forward on (N, 3, H, W) gives each image its batch-1 output (max abs diff
 *      <= 1e-4, printed; the CPU backend runs a batch image by image through the same kernels,
 *      so it is in fact 0),
 *  (b) hy_detect_batch gives each image exactly the detections of hy_detect at the batch's
 *      input shape (dp.shape = hy_result_input_shape): count, class, box and confidence equal
 *      bit for bit (same network input, same output floats, same postprocess),
 *  (c) a batch of images of one size is letterboxed to the rect shape hy_detect uses for one
 *      of them, with the detections of hy_detect at default parameters; a batch of mixed sizes
 *      to imgsz x imgsz (Ultralytics' predictor). */
#include <stdint.h>

#include "hy_test.h"

#define N_IMGS 10
#define MAX_N 8
/* sanitizer builds run everything at half size (a forward pass there is ~10x slower) */
#define IMGSZ (hy_test_sanitized() ? 320 : 640)

static hy_model *g_model;
static hy_context *g_ctx;
static hy_image *g_imgs[N_IMGS];
static const char *g_names[N_IMGS];

/* A copy of img's pixels [x0, x0 + w) x [y0, y0 + h), optionally mirrored, or nearest-
 * resized to w x h (resize = 1). */
static hy_image *variant(const hy_image *img, int x0, int y0, int w, int h, int mirror, int resize) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sx = resize ? (int)((int64_t)x * img->width / w) : x0 + (mirror ? w - 1 - x : x);
            int sy = resize ? (int)((int64_t)y * img->height / h) : y0 + y;
            memcpy(px + ((size_t)y * w + x) * 3, img->data + ((size_t)sy * img->width + sx) * 3, 3);
        }
    hy_image *out = NULL;
    if (hy_image_from_rgb(px, w, h, 0, &out) != HY_OK) fprintf(stderr, "  from_rgb: %s\n", hy_last_error());
    free(px);
    return out;
}

/* Model, context and ten images of ten sizes (six files, four made here: a crop of odd size,
 * a half-size resize, a tiny crop, a wide strip). */
static int setup(void) {
    if (g_ctx) return 0;
    static const char *files[] = {"images/bus.jpg",         "images/zidane.jpg",       "images/boats.jpg",
                                  "images/darknet/dog.jpg", "images/darknet/giraffe.jpg", "images/darknet/person.jpg"};
    for (int i = 0; i < 6; i++) {
        g_names[i] = files[i];
        if (hy_image_load(hy_test_asset(files[i]), &g_imgs[i]) != HY_OK) {
            fprintf(stderr, "  %s: %s\n", files[i], hy_last_error());
            return -1;
        }
    }
    g_imgs[6] = variant(g_imgs[0], 101, 333, 333, 517, 0, 0); /* odd crop of bus (people) */
    g_names[6] = "bus crop 333x517";
    g_imgs[7] = variant(g_imgs[1], 0, 0, 640, 360, 0, 1);     /* zidane at half size */
    g_names[7] = "zidane 640x360";
    g_imgs[8] = variant(g_imgs[4], 200, 150, 61, 37, 0, 0);   /* tiny */
    g_names[8] = "giraffe crop 61x37";
    g_imgs[9] = variant(g_imgs[1], 0, 300, 1200, 90, 1, 0);   /* wide strip, mirrored */
    g_names[9] = "zidane strip 1200x90";
    for (int i = 6; i < N_IMGS; i++)
        if (!g_imgs[i]) return -1;
    hy_model_params mp = hy_model_default_params();
    mp.imgsz = IMGSZ;
    if (hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &g_model) != HY_OK ||
        hy_context_create(g_model, NULL, &g_ctx) != HY_OK) {
        fprintf(stderr, "  load: %s\n", hy_last_error());
        return -1;
    }
    return 0;
}

/* Batches: images by index; each has at least two sizes. */
static const int batches[4][MAX_N] = {{0}, {0, 1}, {2, 6, 8, 3, 9}, {1, 7, 4, 5, 0, 9, 8, 6}};
static const int batch_n[4] = {1, 2, 5, 8};

/* Test-side preprocessing (any input will do for (a)): img nearest-resized into h x w keeping
 * its aspect, centred on grey 114, scaled to [0, 1], CHW. */
static void to_input(const hy_image *img, int h, int w, float *x) {
    double r = fmin((double)h / img->height, (double)w / img->width);
    int nh = (int)(img->height * r), nw = (int)(img->width * r);
    int top = (h - nh) / 2, left = (w - nw) / 2;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                int iy = y - top, ix = xx - left;
                float v = 114.0f;
                if (iy >= 0 && iy < nh && ix >= 0 && ix < nw) {
                    int sy = (int)(iy / r), sx = (int)(ix / r);
                    if (sy >= img->height) sy = img->height - 1;
                    if (sx >= img->width) sx = img->width - 1;
                    v = img->data[((size_t)sy * img->width + sx) * 3 + c];
                }
                x[((size_t)c * h + y) * w + xx] = v / 255.0f;
            }
}

static size_t anchors(int h, int w) { return (size_t)(h / 8) * (w / 8) + (h / 16) * (w / 16) + (h / 32) * (w / 32); }

HY_TEST(forward_batch_equals_each_image_alone) {
    ASSERT_EQ(setup(), 0);
    const int nc = hy_model_num_classes(g_model);
    static const int shapes[4][2] = {{640, 640}, {384, 640}, {640, 640}, {448, 640}}; /* h, w per batch (at 640) */
    double worst = 0;
    for (int bi = 0; bi < 4; bi++) {
        const int n = batch_n[bi], h = shapes[bi][0] * IMGSZ / 640, w = shapes[bi][1] * IMGSZ / 640;
        const size_t per_in = (size_t)3 * h * w, per_out = (size_t)(4 + nc) * anchors(h, w);
        float *x = malloc(n * per_in * sizeof(float)), *y = malloc(n * per_out * sizeof(float));
        float *y1 = malloc(per_out * sizeof(float));
        for (int i = 0; i < n; i++) to_input(g_imgs[batches[bi][i]], h, w, x + i * per_in);
        /* a buffer one float short is refused */
        ASSERT_ERR(hy_model_forward(g_ctx, x, n, h, w, y, n * per_out - 1), HY_ERR_INVALID_ARG);
        ASSERT_OK(hy_model_forward(g_ctx, x, n, h, w, y, n * per_out));
        double diff = 0;
        for (int i = 0; i < n; i++) {
            for (size_t k = 0; k < per_out; k++) y1[k] = NAN;
            ASSERT_OK(hy_model_forward(g_ctx, x + i * per_in, 1, h, w, y1, per_out));
            for (size_t k = 0; k < per_out; k++) {
                double e = fabs((double)y[i * per_out + k] - (double)y1[k]);
                if (!(e <= diff)) diff = isnan(e) ? INFINITY : e;
            }
        }
        printf("  forward N=%d at %dx%d: max abs diff batch vs one by one %.3g\n", n, w, h, diff);
        if (diff > worst) worst = diff;
        free(x);
        free(y);
        free(y1);
    }
    ASSERT_TRUE(worst <= 1e-4);
}

/* Exact equality of two results' detections; prints the first difference. */
static int same_detections(const hy_result *a, const hy_result *b, const char *what) {
    if (hy_result_count(a) != hy_result_count(b)) {
        fprintf(stderr, "  %s: %zu detections in the batch, %zu alone\n", what, hy_result_count(a), hy_result_count(b));
        return 0;
    }
    for (size_t k = 0; k < hy_result_count(a); k++) {
        const hy_detection *p = hy_result_get(a, k), *q = hy_result_get(b, k);
        if (p->class_id != q->class_id || p->confidence != q->confidence || p->x1 != q->x1 || p->y1 != q->y1 ||
            p->x2 != q->x2 || p->y2 != q->y2) {
            fprintf(stderr, "  %s #%zu: batch class %d %.7f [%.4f %.4f %.4f %.4f], alone class %d %.7f [%.4f %.4f %.4f %.4f]\n",
                    what, k, p->class_id, p->confidence, p->x1, p->y1, p->x2, p->y2, q->class_id, q->confidence, q->x1,
                    q->y1, q->x2, q->y2);
            return 0;
        }
    }
    return 1;
}

HY_TEST(detect_batch_equals_detect_at_the_batch_shape) {
    ASSERT_EQ(setup(), 0);
    int bad = 0;
    size_t total = 0;
    for (int bi = 0; bi < 4; bi++) {
        const int n = batch_n[bi];
        const hy_image *imgs[MAX_N];
        hy_result *rb[MAX_N] = {0};
        for (int i = 0; i < n; i++) imgs[i] = g_imgs[batches[bi][i]];
        ASSERT_OK(hy_detect_batch(g_ctx, imgs, n, NULL, rb));
        hy_shape s = hy_result_input_shape(rb[0]);
        /* mixed sizes: imgsz x imgsz; one image: its own rect shape */
        hy_shape want = {IMGSZ, IMGSZ};
        if (n == 1) ASSERT_OK(hy_model_input_shape(g_model, imgs[0]->width, imgs[0]->height, 0, &want));
        ASSERT_EQ(s.width, want.width);
        ASSERT_EQ(s.height, want.height);
        size_t count = 0;
        for (int i = 0; i < n; i++) {
            hy_shape si = hy_result_input_shape(rb[i]);
            bad += si.width != s.width || si.height != s.height;
            bad += hy_result_image_width(rb[i]) != imgs[i]->width || hy_result_image_height(rb[i]) != imgs[i]->height;
            hy_detect_params dp = hy_detect_default_params();
            dp.shape = s;
            hy_result *r1 = NULL;
            ASSERT_OK(hy_detect(g_ctx, imgs[i], &dp, &r1));
            char what[96];
            snprintf(what, sizeof what, "N=%d image %d (%s)", n, i, g_names[batches[bi][i]]);
            bad += !same_detections(rb[i], r1, what);
            count += hy_result_count(r1);
            hy_result_free(r1);
        }
        printf("  detect_batch N=%d at %dx%d: %zu detections, identical to hy_detect one by one: %s\n", n, s.width,
               s.height, count, bad ? "NO" : "yes");
        total += count;
        for (int i = 0; i < n; i++) hy_result_free(rb[i]);
    }
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(total > 20); /* the comparison is not vacuous */
}

HY_TEST(batch_of_one_size_uses_the_rect_shape) {
    ASSERT_EQ(setup(), 0);
    /* five 640x400 views of zidane: crops at different offsets, two mirrored */
    hy_image *v[5];
    for (int i = 0; i < 5; i++) v[i] = variant(g_imgs[1], 100 * i + 7, 40 * i + 3, 640, 400, i % 2, 0);
    for (int i = 0; i < 5; i++) ASSERT_TRUE(v[i] != NULL);
    hy_shape rect;
    ASSERT_OK(hy_model_input_shape(g_model, 640, 400, 0, &rect));
    ASSERT_TRUE(rect.width == IMGSZ && rect.height < IMGSZ); /* not square: the rect path (640x416) */
    int bad = 0;
    size_t count = 0;
    for (int n = 2; n <= 5; n += 3) {
        hy_result *rb[5] = {0};
        ASSERT_OK(hy_detect_batch(g_ctx, (const hy_image *const *)v, n, NULL, rb));
        for (int i = 0; i < n; i++) {
            hy_shape s = hy_result_input_shape(rb[i]);
            bad += s.width != rect.width || s.height != rect.height;
            hy_result *r1 = NULL;
            ASSERT_OK(hy_detect(g_ctx, v[i], NULL, &r1));
            hy_shape s1 = hy_result_input_shape(r1);
            bad += s1.width != rect.width || s1.height != rect.height;
            char what[64];
            snprintf(what, sizeof what, "one-size N=%d image %d", n, i);
            bad += !same_detections(rb[i], r1, what);
            count += hy_result_count(r1);
            hy_result_free(r1);
            hy_result_free(rb[i]);
        }
    }
    printf("  one-size batches N=2, 5 at %dx%d: %zu detections, identical to hy_detect: %s\n", rect.width,
           rect.height, count, bad ? "NO" : "yes");
    for (int i = 0; i < 5; i++) hy_image_free(v[i]);
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(count > 0);
}

HY_TEST(detect_batch_rejects_bad_arguments) {
    ASSERT_EQ(setup(), 0);
    hy_result *r[2] = {0};
    const hy_image *imgs[2] = {g_imgs[0], NULL};
    ASSERT_ERR(hy_detect_batch(g_ctx, imgs, 0, NULL, r), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_detect_batch(g_ctx, imgs, 2, NULL, r), HY_ERR_INVALID_ARG); /* a NULL image */
    ASSERT_CONTAINS(hy_last_error(), "image 1");
    ASSERT_TRUE(r[0] == NULL && r[1] == NULL);
    hy_detect_params dp = hy_detect_default_params();
    dp.shape = (hy_shape){100, 640};
    ASSERT_ERR(hy_detect_batch(g_ctx, imgs, 1, &dp, r), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "100x640");
}

HY_TEST(zz_cleanup) {
    for (int i = 0; i < N_IMGS; i++) hy_image_free(g_imgs[i]);
    hy_context_free(g_ctx);
    hy_model_free(g_model);
    g_ctx = NULL;
    g_model = NULL;
}

HY_TEST_MAIN()
