/* Letterbox geometry (Ultralytics 8.0.x LetterBox) and the OpenCV-exact INTER_LINEAR resize.
 *
 * The strongest check: decode(bus.jpg) + letterbox(640x640, auto=False) must equal
 * reference/bus_letterbox_640_input.npy (what Ultralytics/OpenCV computed) value for value.
 * The resize cases below compare FNV-1a 64 hashes with cv2.resize(..., INTER_LINEAR) outputs
 * computed offline by an independent OpenCV build (Debian python3-opencv 4.6, which also
 * reproduces the .npy exactly) on this synthetic image (numpy, uint64 arithmetic):
 *   t = (x*2654435761 + y*40503 + c*97) & 0xFFFFFFFF; t ^= t >> 13; t = (t*1274126177) & 0xFFFFFFFF
 *   v = ((x*3 + y*5 + c*60) + ((t >> 24) & 63)) & 255          (h, w, 3) uint8
 * and, for letterbox_matches_cv2, Ultralytics' LetterBox(640, auto, stride 32) on it followed by
 * .transpose(2,0,1).astype(float32) / 255 (hash of the float32 bytes). */
#include <stdint.h>
#include <time.h>

#include "hy_test.h"
#include "image/image.h"

// --- helpers -----------------------------------------------------------------------------------


/* Minimal .npy reader: '<f4', C order, returns data (malloc) and the shape. */
static float *npy_load_f32(const char *path, int *ndim, long shape[8]) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[12];
    float *data = NULL;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto done;
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) goto done;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    hdr = calloc(1, hlen + 1);
    if (fread(hdr, 1, hlen, f) != hlen) goto done;
    if (!strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False")) goto done;
    const char *s = strstr(hdr, "'shape': (");
    if (!s) goto done;
    s += strlen("'shape': (");
    long count = 1;
    *ndim = 0;
    while (*s && *s != ')' && *ndim < 8) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        shape[(*ndim)++] = v;
        count *= v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    data = malloc((size_t)count * sizeof(float));
    if (fread(data, sizeof(float), (size_t)count, f) != (size_t)count) {
        free(data);
        data = NULL;
    }
done:
    free(hdr);
    fclose(f);
    return data;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// --- geometry ----------------------------------------------------------------------------------

HY_TEST(plan_bus_rect) {
    hy__letterbox lb = hy__letterbox_plan(810, 1080, 640, 640, 1, 32);
    ASSERT_EQ(lb.unpad_w, 480);
    ASSERT_EQ(lb.unpad_h, 640);
    ASSERT_EQ(lb.left + lb.right + lb.top + lb.bottom, 0); // 160 % 32 == 0
    ASSERT_EQ(lb.out_w, 480);
    ASSERT_EQ(lb.out_h, 640);
    ASSERT_NEAR(lb.r, 640.0 / 1080.0, 1e-7);
}

HY_TEST(plan_bus_square) {
    hy__letterbox lb = hy__letterbox_plan(810, 1080, 640, 640, 0, 32);
    ASSERT_EQ(lb.unpad_w, 480);
    ASSERT_EQ(lb.left, 80);
    ASSERT_EQ(lb.right, 80);
    ASSERT_EQ(lb.top, 0);
    ASSERT_EQ(lb.out_w, 640);
    ASSERT_EQ(lb.out_h, 640);
    ASSERT_NEAR(lb.pad_x, 80.0, 0);
}

HY_TEST(plan_zidane_rect) {
    hy__letterbox lb = hy__letterbox_plan(1280, 720, 640, 640, 1, 32);
    ASSERT_EQ(lb.unpad_w, 640);
    ASSERT_EQ(lb.unpad_h, 360);
    ASSERT_EQ(lb.top, 12); // (640 - 360) % 32 = 24 -> 12 / 12
    ASSERT_EQ(lb.bottom, 12);
    ASSERT_EQ(lb.left, 0);
    ASSERT_EQ(lb.right, 0);
    ASSERT_EQ(lb.out_w, 640);
    ASSERT_EQ(lb.out_h, 384);
}

HY_TEST(plan_odd_padding_is_asymmetric) {
    // 640x427: dh = 213 -> auto: 21 -> 10.5 -> top round(10.4) = 10, bottom round(10.6) = 11
    hy__letterbox a = hy__letterbox_plan(640, 427, 640, 640, 1, 32);
    ASSERT_EQ(a.top, 10);
    ASSERT_EQ(a.bottom, 11);
    ASSERT_EQ(a.out_h, 448);
    ASSERT_NEAR(a.pad_y, 10.5, 0);
    hy__letterbox b = hy__letterbox_plan(640, 427, 640, 640, 0, 32);
    ASSERT_EQ(b.top, 106);
    ASSERT_EQ(b.bottom, 107);
    ASSERT_EQ(b.out_h, 640);
    // odd horizontal padding: 427x640 -> dw = 213
    hy__letterbox c = hy__letterbox_plan(427, 640, 640, 640, 0, 32);
    ASSERT_EQ(c.left, 106);
    ASSERT_EQ(c.right, 107);
    ASSERT_EQ(c.out_w, 640);
}

HY_TEST(plan_round_half_even) {
    // 1280x721: r = 0.5, 721 * 0.5 = 360.5 -> Python round -> 360 (half to even)
    hy__letterbox a = hy__letterbox_plan(1280, 721, 640, 640, 1, 32);
    ASSERT_EQ(a.unpad_h, 360);
    ASSERT_EQ(a.out_h, 384);
    // 1280x723: 361.5 -> 362; dh = 278 % 32 = 22 -> 11 / 11
    hy__letterbox b = hy__letterbox_plan(1280, 723, 640, 640, 1, 32);
    ASSERT_EQ(b.unpad_h, 362);
    ASSERT_EQ(b.top, 11);
    ASSERT_EQ(b.bottom, 11);
}

HY_TEST(plan_tiny_and_upscale) {
    hy__letterbox a = hy__letterbox_plan(1, 1, 640, 640, 1, 32); // r = 640
    ASSERT_EQ(a.unpad_w, 640);
    ASSERT_EQ(a.unpad_h, 640);
    ASSERT_EQ(a.out_w, 640);
    hy__letterbox b = hy__letterbox_plan(1, 5, 640, 640, 1, 32); // r = 128
    ASSERT_EQ(b.unpad_w, 128);
    ASSERT_EQ(b.unpad_h, 640);
    ASSERT_EQ(b.out_w, 128); // 512 % 32 == 0
    hy__letterbox c = hy__letterbox_plan(1, 5, 640, 640, 0, 32);
    ASSERT_EQ(c.left, 256);
    ASSERT_EQ(c.right, 256);
    hy__letterbox d = hy__letterbox_plan(320, 240, 640, 640, 1, 32); // r = 2
    ASSERT_EQ(d.unpad_w, 640);
    ASSERT_EQ(d.unpad_h, 480);
    ASSERT_EQ(d.out_h, 480);
    hy__letterbox e = hy__letterbox_plan(1, 2000, 640, 640, 1, 32); // 0.32 px wide -> kept at 1
    ASSERT_EQ(e.unpad_w, 1);
    ASSERT_EQ(e.unpad_h, 640);
    ASSERT_EQ(e.left + e.right, 31); // 639 % 32
    ASSERT_EQ(e.out_w, 32);
}

// --- resize vs OpenCV --------------------------------------------------------------------------

typedef struct resize_case {
    int sw, sh, dw, dh;
    uint64_t hash; // FNV-1a of cv2.resize(hy_test_synth_rgb(sw, sh), (dw, dh), INTER_LINEAR)
} resize_case;

static const resize_case resize_cases[] = {
    {810, 1080, 480, 640, 0x457504d16362a729ull}, // bus: rect letterbox
    {37, 23, 101, 77, 0xbc4912b0519f8db3ull},     // upscale, clamped y weights
    {100, 100, 50, 50, 0xb92d5f60a47f4991ull},    // exact 2x: INTER_AREA fast path
    {101, 100, 50, 50, 0xa6c0ba1b4379b5abull},    // almost 2x: bilinear
    {1, 1, 5, 3, 0x6f3995643083886cull},
    {1, 9, 4, 40, 0x7e85022c65e986b5ull},
    {17, 1, 5, 1, 0x94226f5976e8f0bdull},
    {640, 480, 320, 240, 0x3c342d346b43c9c7ull},  // exact 2x
    {1280, 720, 640, 360, 0x9be4ff08faa613e8ull}, // zidane-sized exact 2x
    {500, 500, 640, 640, 0xa755299454e27d5cull},
    {773, 512, 640, 424, 0x9d949d21f773c6beull},
    {7, 5, 3, 2, 0xd87d4c6a71639457ull},
    {300, 200, 301, 199, 0xcbafdd6b11e35a02ull},
    {64, 48, 640, 480, 0x03bb86c22978c2f1ull},
};

HY_TEST(resize_matches_opencv) {
    for (size_t i = 0; i < HY_ARRAY_LEN(resize_cases); i++) {
        const resize_case *rc = &resize_cases[i];
        uint8_t *src = hy_test_synth_rgb(rc->sw, rc->sh);
        uint8_t *dst = malloc((size_t)rc->dw * rc->dh * 3);
        void *scratch = malloc(hy__resize_scratch_size(rc->sw, rc->sh, rc->dw, rc->dh));
        int64_t live = hy__alloc_live();
        hy__resize_linear_u8(src, rc->sw, rc->sh, (size_t)rc->sw * 3, dst, rc->dw, rc->dh,
                             (size_t)rc->dw * 3, scratch);
        ASSERT_EQ(hy__alloc_live(), live); // no allocation inside
        uint64_t h = hy_test_fnv1a(dst, (size_t)rc->dw * rc->dh * 3);
        if (h != rc->hash)
            fprintf(stderr, "  resize %dx%d -> %dx%d: hash %016llx, OpenCV %016llx\n", rc->sw, rc->sh,
                    rc->dw, rc->dh, (unsigned long long)h, (unsigned long long)rc->hash);
        free(src);
        free(dst);
        free(scratch);
        ASSERT_TRUE(h == rc->hash);
    }
}

HY_TEST(resize_strided_source) {
    // Same result with a padded source row stride.
    const int sw = 37, sh = 23, dw = 101, dh = 77;
    uint8_t *src = hy_test_synth_rgb(sw, sh);
    const size_t stride = (size_t)sw * 3 + 13;
    uint8_t *padded = calloc((size_t)sh, stride);
    for (int y = 0; y < sh; y++) memcpy(padded + y * stride, src + (size_t)y * sw * 3, (size_t)sw * 3);
    uint8_t *dst = malloc((size_t)dw * dh * 3);
    void *scratch = malloc(hy__resize_scratch_size(sw, sh, dw, dh));
    hy__resize_linear_u8(padded, sw, sh, stride, dst, dw, dh, (size_t)dw * 3, scratch);
    uint64_t h = hy_test_fnv1a(dst, (size_t)dw * dh * 3);
    free(src);
    free(padded);
    free(dst);
    free(scratch);
    ASSERT_TRUE(h == 0xbc4912b0519f8db3ull);
}

typedef struct lb_case {
    int w, h, auto_pad, out_w, out_h;
    uint64_t hash; // FNV-1a of the float32 CHW tensor Ultralytics + OpenCV produce
} lb_case;

HY_TEST(letterbox_matches_cv2) {
    static const lb_case cases[] = {
        {500, 375, 1, 640, 480, 0x603abee10d388c46ull},
        {427, 640, 0, 640, 640, 0x0b28d6f22d94b863ull},
        {1280, 721, 1, 640, 384, 0xd23a5bc3be6aea85ull},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        const lb_case *c = &cases[i];
        hy__letterbox lb = hy__letterbox_plan(c->w, c->h, 640, 640, c->auto_pad, 32);
        ASSERT_EQ(lb.out_w, c->out_w);
        ASSERT_EQ(lb.out_h, c->out_h);
        uint8_t *src = hy_test_synth_rgb(c->w, c->h);
        float *x = malloc((size_t)3 * lb.out_w * lb.out_h * sizeof(float));
        void *scratch = malloc(hy__letterbox_scratch_size(&lb));
        int64_t live = hy__alloc_live();
        hy__letterbox_apply(&lb, src, (size_t)c->w * 3, x, scratch);
        ASSERT_EQ(hy__alloc_live(), live);
        uint64_t h = hy_test_fnv1a(x, (size_t)3 * lb.out_w * lb.out_h * sizeof(float));
        ASSERT_TRUE(h == c->hash);
        // threaded: rows shared out among 2 and 3 threads give the same bytes
        for (int nth = 2; nth <= 3; nth++) {
            hy__threadpool *tp = NULL;
            ASSERT_OK(hy__threadpool_create(nth, &tp));
            void *s2 = malloc(hy__letterbox_scratch_size_mt(&lb, nth));
            memset(x, 0, (size_t)3 * lb.out_w * lb.out_h * sizeof(float));
            hy__letterbox_apply_mt(&lb, src, (size_t)c->w * 3, x, s2, tp);
            uint64_t h2 = hy_test_fnv1a(x, (size_t)3 * lb.out_w * lb.out_h * sizeof(float));
            free(s2);
            hy__threadpool_free(tp);
            ASSERT_TRUE(h2 == c->hash);
        }
        free(src);
        free(x);
        free(scratch);
    }
}

// --- bus.jpg vs the Ultralytics reference tensor -----------------------------------------------

HY_TEST(bus_letterbox_matches_reference) {
    int ndim = 0;
    long shape[8];
    float *ref = npy_load_f32(hy_test_asset("reference/bus_letterbox_640_input.npy"), &ndim, shape);
    ASSERT_TRUE(ref != NULL);
    ASSERT_EQ(ndim, 4);
    ASSERT_EQ(shape[0], 1);
    ASSERT_EQ(shape[1], 3);
    ASSERT_EQ(shape[2], 640);
    ASSERT_EQ(shape[3], 640);

    const size_t n = (size_t)3 * 640 * 640;
    float *x = malloc(n * sizeof(float));
    hy_image *img = NULL;
    void *scratch = NULL;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) { // the first is cold; report the best
        double t0 = now_ms();
        hy_image_free(img);
        img = NULL;
        ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
        hy__letterbox lb = hy__letterbox_plan(img->width, img->height, 640, 640, 0, 32);
        ASSERT_EQ(lb.out_w, 640);
        ASSERT_EQ(lb.out_h, 640);
        if (!scratch) scratch = malloc(hy__letterbox_scratch_size(&lb));
        double t1 = now_ms();
        hy__letterbox_apply(&lb, img->data, (size_t)img->width * 3, x, scratch);
        double t2 = now_ms();
        if (t2 - t0 < best) best = t2 - t0;
        if (rep == 4)
            printf("  bus.jpg decode %.2f ms + letterbox %.2f ms (best total of 5: %.2f ms)\n", t1 - t0,
                   t2 - t1, best);
    }
    size_t ndiff = 0;
    double maxabs = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)ref[i]);
        if (x[i] != ref[i]) ndiff++;
        if (d > maxabs) maxabs = d;
    }
    printf("  bus letterbox vs reference: %zu of %zu values differ, max |diff| %.3g\n", ndiff, n, maxabs);
    // the threaded letterbox gives the reference too
    hy__threadpool *tp = NULL;
    ASSERT_OK(hy__threadpool_create(2, &tp));
    hy__letterbox lb = hy__letterbox_plan(img->width, img->height, 640, 640, 0, 32);
    void *s2 = malloc(hy__letterbox_scratch_size_mt(&lb, 2));
    memset(x, 0, n * sizeof(float));
    hy__letterbox_apply_mt(&lb, img->data, (size_t)img->width * 3, x, s2, tp);
    size_t ndiff_mt = 0;
    for (size_t i = 0; i < n; i++) ndiff_mt += x[i] != ref[i];
    free(s2);
    hy__threadpool_free(tp);
    ASSERT_EQ(ndiff_mt, 0);
    hy_image_free(img);
    free(scratch);
    free(x);
    free(ref);
    ASSERT_EQ(ndiff, 0);
}

HY_TEST_MAIN()
