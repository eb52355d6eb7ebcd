/* Training augmentation (src/train/augment.c) and the augmenting, multi-threaded loader
 * (src/train/loader.c): RandomPerspective's matrix and warp, mosaic + affine boxes against the
 * pixels they label, OpenCV's 8-bit HSV on hand-computed pixels, and batches that depend only
 * on (dataset, params, seed, epoch, batch). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hy_test.h"
#include "train/augment.h"
#include "train/loader.h"

// --- RandomPerspective -------------------------------------------------------------------------

HY_TEST(affine_matrix_is_ultralytics_formula) {
    // draws: perspective (px, py), angle 30 deg, scale 1.2, shear (10, -5) deg, translate
    // (0.6, 0.45) of the output; input 640 x 480 (C = -320, -240), output 320 x 320
    const hy__aug_affine_draw d = {1e-4, -2e-4, 30, 1.2, 10, -5, 0.6, 0.45};
    float M[9];
    hy__aug_affine_matrix(&d, 640, 480, 320, 320, M);
    // by hand: R = [[a, b], [-b, a]], a = 1.2 cos 30 = 1.0392305, b = 1.2 sin 30 = 0.6;
    // S = [[1, t1], [t2, 1]], t1 = tan 10 = 0.17632698, t2 = tan -5 = -0.08748866;
    // A = S R = [[a - b t1, b + a t1], [t2 a - b, t2 b + a]];
    // T S R P: rows 0, 1 = [A | 0] + (Tx, Ty) * [px, py, 1] (Tx = 192, Ty = 144); row 2 = [px, py, 1];
    // then @ C: the last column becomes -320 col0 - 240 col1 + col2.
    const double a = 1.0392305, b = 0.6, t1 = 0.17632698, t2 = -0.08748866, px = 1e-4, py = -2e-4;
    const double A[4] = {a - b * t1, b + a * t1, t2 * a - b, t2 * b + a}, Tx = 192, Ty = 144;
    double E[9] = {A[0] + Tx * px, A[1] + Tx * py, Tx, A[2] + Ty * px, A[3] + Ty * py, Ty, px, py, 1};
    for (int r = 0; r < 3; r++) E[3 * r + 2] += -320 * E[3 * r] - 240 * E[3 * r + 1];
    for (int k = 0; k < 9; k++) ASSERT_NEAR(M[k], E[k], 1e-5 * (1 + fabs(E[k])));
    // defaults without perspective, shear, rotation: scale s, translation t * 320 - s * centre
    const hy__aug_affine_draw d2 = {0, 0, 0, 0.75, 0, 0, 0.55, 0.4};
    hy__aug_affine_matrix(&d2, 640, 640, 320, 320, M);
    const float E2[9] = {0.75f, 0, 176 - 240, 0, 0.75f, 128 - 240, 0, 0, 1};
    for (int k = 0; k < 9; k++) ASSERT_NEAR(M[k], E2[k], 1e-5);
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

HY_TEST(warp_identity_translation_and_half_pixel) {
    enum { W = 37, H = 23 };
    uint8_t src[H][W][3], dst[H][W][3];
    fill_random(&src[0][0][0], sizeof src, 11);
    const float I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int persp = 0; persp < 2; persp++) {
        memset(dst, 0, sizeof dst);
        hy__aug_warp(&src[0][0][0], W, H, I, persp, &dst[0][0][0], W, H);
        ASSERT_EQ(memcmp(src, dst, sizeof src), 0);
        // integer translation (+5, -3): dst(x, y) = src(x - 5, y + 3), 114 where that is outside
        const float Tm[9] = {1, 0, 5, 0, 1, -3, 0, 0, 1};
        hy__aug_warp(&src[0][0][0], W, H, Tm, persp, &dst[0][0][0], W, H);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    const int sx = x - 5, sy = y + 3;
                    const int e = sx >= 0 && sx < W && sy >= 0 && sy < H ? src[sy][sx][c] : 114;
                    ASSERT_EQ(dst[y][x][c], e);
                }
    }
    // half a pixel right: 15-bit weights 16384 / 16384 -> (a + b + 1) >> 1, and the first
    // column blends with the border 114
    const float Th[9] = {1, 0, 0.5f, 0, 1, 0, 0, 0, 1};
    hy__aug_warp(&src[0][0][0], W, H, Th, 0, &dst[0][0][0], W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                const int left = x > 0 ? src[y][x - 1][c] : 114;
                ASSERT_EQ(dst[y][x][c], (left + src[y][x][c] + 1) >> 1);
            }
}

/* A synthetic load_image output: background 40, labelled rectangles in unique colours
 * (R, 255, B) that no blend with the background or 114 can produce. */
typedef struct synth {
    int w, h, n;
    uint8_t *px;
    hy__val_label lab[6];
    uint8_t col[6][3];
} synth;

static void synth_make(synth *im, int w, int h, int id, uint32_t *rs) {
    im->w = w, im->h = h, im->n = 0;
    im->px = malloc((size_t)w * h * 3);
    memset(im->px, 40, (size_t)w * h * 3);
    // a grid of 3 x 2 cells, one rectangle in each with a 3 px margin, random size
    for (int gy = 0; gy < 2; gy++)
        for (int gx = 0; gx < 3; gx++) {
            const int cw = w / 3, ch = h / 2;
            *rs = *rs * 1664525u + 1013904223u;
            const int bw = 4 + (int)((*rs >> 8) % (uint32_t)(cw - 10)), bh = 4 + (int)((*rs >> 20) % (uint32_t)(ch - 10));
            const int x0 = gx * cw + 3, y0 = gy * ch + 3;
            const int k = im->n++;
            im->col[k][0] = (uint8_t)(10 + 40 * id + 6 * k), im->col[k][1] = 255, im->col[k][2] = (uint8_t)(200 - 30 * k);
            for (int y = y0; y < y0 + bh; y++)
                for (int x = x0; x < x0 + bw; x++) memcpy(im->px + ((size_t)y * w + x) * 3, im->col[k], 3);
            hy__val_label *L = &im->lab[k];
            L->cls = 6 * id + k;
            L->x = (float)(x0 + bw / 2.0) / (float)w, L->y = (float)(y0 + bh / 2.0) / (float)h;
            L->w = (float)bw / (float)w, L->h = (float)bh / (float)h;
        }
}

/* Pixel bbox of colour c in img (s, s, 3); 0 when absent. */
static int colour_bbox(const uint8_t *img, int s, const uint8_t c[3], int bb[4]) {
    bb[0] = bb[1] = s, bb[2] = bb[3] = -1;
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            const uint8_t *p = img + ((size_t)y * s + x) * 3;
            if (p[0] == c[0] && p[1] == c[1] && p[2] == c[2]) {
                if (x < bb[0]) bb[0] = x;
                if (y < bb[1]) bb[1] = y;
                if (x > bb[2]) bb[2] = x;
                if (y > bb[3]) bb[3] = y;
            }
        }
    if (bb[2] < 0) return 0;
    bb[2]++, bb[3]++; // exclusive
    return 1;
}

HY_TEST(mosaic_affine_boxes_match_their_pixels) {
    enum { S = 160 };
    uint32_t rs = 7;
    synth im[4];
    const int sizes[4][2] = {{160, 120}, {107, 160}, {160, 160}, {160, 91}};
    for (int k = 0; k < 4; k++) synth_make(&im[k], sizes[k][0], sizes[k][1], k, &rs);
    uint8_t *canvas = malloc((size_t)4 * S * S * 3), *out = malloc((size_t)S * S * 3);
    hy__aug_box box[24], before[24];
    const hy__aug_affine_params ap = {0, 0.1, 0.5, 0, 0}; // Ultralytics' defaults
    long kept = 0, dropped = 0, checked = 0;
    double min_iou = 1;
    for (uint64_t seed = 0; seed < 200; seed++) {
        hy__aug_rng r = hy__aug_rng_key(seed, 0, 0);
        const int yc = (int)hy__aug_uniform(&r, S / 2.0, 1.5 * S), xc = (int)hy__aug_uniform(&r, S / 2.0, 1.5 * S);
        memset(canvas, 114, (size_t)4 * S * S * 3);
        int n = 0;
        for (int k = 0; k < 4; k++) {
            const hy__aug_tile t = hy__aug_mosaic_tile(k, S, xc, yc, im[k].w, im[k].h);
            hy__aug_mosaic_paste(canvas, S, &t, im[k].px, im[k].w);
            for (int q = 0; q < im[k].n; q++) {
                const hy__val_label *L = &im[k].lab[q];
                hy__aug_box b = {(L->x - L->w / 2) * im[k].w + (t.x1a - t.x1b), (L->y - L->h / 2) * im[k].h + (t.y1a - t.y1b),
                                 (L->x + L->w / 2) * im[k].w + (t.x1a - t.x1b), (L->y + L->h / 2) * im[k].h + (t.y1a - t.y1b),
                                 L->cls};
                // tiles are cut only at the canvas edge: clip there, drop what is gone
                b.x1 = fminf(fmaxf(b.x1, 0), 2 * S), b.x2 = fminf(fmaxf(b.x2, 0), 2 * S);
                b.y1 = fminf(fmaxf(b.y1, 0), 2 * S), b.y2 = fminf(fmaxf(b.y2, 0), 2 * S);
                if ((b.x2 - b.x1) * (b.y2 - b.y1) > 0) box[n++] = b;
            }
        }
        const hy__aug_affine_draw d = hy__aug_affine_sample(&ap, &r);
        float M[9];
        hy__aug_affine_matrix(&d, 2 * S, 2 * S, S, S, M);
        hy__aug_warp(canvas, 2 * S, 2 * S, M, 0, out, S, S);
        memcpy(before, box, sizeof(hy__aug_box) * (size_t)n);
        const int nk = hy__aug_boxes_warp(box, n, M, 0, (float)d.scale, S, S);
        // every input box: kept (in order) or dropped; judge each by its colour's pixels
        int ik = 0;
        for (int q = 0; q < n; q++) {
            const int cls = before[q].cls, id = cls / 6, k = cls % 6;
            int bb[4];
            const int seen = colour_bbox(out, S, im[id].col[k], bb);
            const double sw = (double)(before[q].x2 - before[q].x1) * d.scale, sh = (double)(before[q].y2 - before[q].y1) * d.scale;
            if (ik < nk && box[ik].cls == cls) {
                const hy__aug_box *b = &box[ik++];
                kept++;
                ASSERT_TRUE(seen);
                // OpenCV samples pixel i at the point i: the exact-colour pixels of a source
                // rectangle [x0, x0 + bw) are those whose point maps into [x0, x0 + bw - 1], i.e.
                // indices ceil(x1) .. floor(x2 - scale) of the label [x1, x2). Each edge within
                // 1 px of that; IoU of the label and [first - 0.5, last + 0.5 + scale) >= 0.9.
                const double sc = d.scale;
                const int clipped = b->x1 <= 0 || b->y1 <= 0 || b->x2 >= S || b->y2 >= S;
                if (!clipped) {
                    ASSERT_TRUE(fabs(bb[0] - ceil(b->x1)) <= 1 && fabs(bb[1] - ceil(b->y1)) <= 1);
                    ASSERT_TRUE(fabs(bb[2] - 1 - floor(b->x2 - sc)) <= 1 && fabs(bb[3] - 1 - floor(b->y2 - sc)) <= 1);
                }
                const double q0 = bb[0] - 0.5, q1 = bb[1] - 0.5, q2 = bb[2] - 0.5 + sc, q3 = bb[3] - 0.5 + sc;
                const double ix = fmin(b->x2, q2) - fmax(b->x1, q0), iy = fmin(b->y2, q3) - fmax(b->y1, q1);
                const double inter = ix > 0 && iy > 0 ? ix * iy : 0;
                const double uni = (b->x2 - b->x1) * (b->y2 - b->y1) + (q2 - q0) * (q3 - q1) - inter;
                if (!clipped && b->x2 - b->x1 >= 20 && b->y2 - b->y1 >= 20) {
                    checked++;
                    min_iou = fmin(min_iou, inter / uni);
                    if (inter / uni < 0.9)
                        printf("  seed %llu cls %d: box %.1f %.1f %.1f %.1f pixels %d %d %d %d\n", (unsigned long long)seed,
                               cls, b->x1, b->y1, b->x2, b->y2, bb[0], bb[1], bb[2], bb[3]);
                    ASSERT_TRUE(inter / uni >= 0.9);
                }
                ASSERT_TRUE(b->x2 - b->x1 > 2 && b->y2 - b->y1 > 2);
            } else {
                // dropped: what is left of it in the image is at most ~2 px thin or under
                // ~0.1 of its scaled area (1 px of tolerance for the blended edge)
                dropped++;
                if (seen) {
                    const double pw = bb[2] - bb[0], ph = bb[3] - bb[1];
                    ASSERT_TRUE(pw <= 3 || ph <= 3 || (pw - 1) * (ph - 1) <= 0.1 * sw * sh);
                }
            }
        }
        ASSERT_EQ(ik, nk);
    }
    printf("  200 mosaics: %ld boxes kept (%ld unclipped checked, min IoU %.3f), %ld dropped\n", kept, checked, min_iou,
           dropped);
    ASSERT_TRUE(checked > 200 && dropped > 10);
    for (int k = 0; k < 4; k++) free(im[k].px);
    free(canvas);
    free(out);
}

HY_TEST(box_candidates_thresholds) {
    const hy__aug_box b = {0, 0, 100, 50, 0};
    const hy__aug_box ok = {0, 0, 40, 20, 0}, thin = {0, 0, 40, 2, 0}, small = {0, 0, 20, 20, 0},
                      long_ = {0, 0, 2.5f * 100, 2.4f, 0};
    ASSERT_TRUE(hy__aug_box_candidate(&b, &ok));     // area 800 / 5000 = 0.16
    ASSERT_FALSE(hy__aug_box_candidate(&b, &thin));  // h not > 2
    ASSERT_FALSE(hy__aug_box_candidate(&b, &small)); // 400 / 5000 = 0.08
    const hy__aug_box big = {0, 0, 1000, 5, 0};
    ASSERT_FALSE(hy__aug_box_candidate(&big, &long_)); // aspect ratio 104
}

// --- RandomHSV ---------------------------------------------------------------------------------

HY_TEST(hsv_opencv_8bit_hand_computed) {
    // RGB -> HSV by OpenCV's integer formula (augment.h), worked by hand:
    //  (100, 50, 25): V 100, diff 75, S = (75 * round(1044480/100 = 10444.8) + 2048) >> 12
    //  = 785423 >> 12 = 191; H = G - B = 25, (25 * round(737280/450 = 1638.4) + 2048) >> 12
    //  = 42998 >> 12 = 10.  (100, 25, 50): H = -25 -> (-40950 + 2048) >> 12 = -10 -> 170.
    //  (0, 255, 0): H = B - R + 2 diff = 510, (510 * 482 + 2048) >> 12 = 60.
    //  (0, 0, 255): H = R - G + 4 diff = 1020 -> 120.
    const uint8_t rgb[][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {100, 50, 25}, {100, 25, 50}, {77, 77, 77}, {0, 0, 0}};
    const uint8_t hsv[][3] = {{0, 255, 255}, {60, 255, 255}, {120, 255, 255}, {10, 191, 100}, {170, 191, 100}, {0, 0, 77}, {0, 0, 0}};
    for (size_t i = 0; i < HY_ARRAY_LEN(rgb); i++) {
        uint8_t o[3], back[3];
        hy__aug_rgb2hsv(rgb[i], o);
        ASSERT_EQ(o[0], hsv[i][0]);
        ASSERT_EQ(o[1], hsv[i][1]);
        ASSERT_EQ(o[2], hsv[i][2]);
        // back (float, augment.h): (10, 191, 100): h6 = 1/3, s = 0.74902: B = 100 (1 - s) = 25.1,
        // G = 100 (1 - s (1 - 1/3)) = 50.07 -> (100, 50, 25); the others likewise come back
        hy__aug_hsv2rgb(hsv[i], back);
        ASSERT_EQ(back[0], rgb[i][0]);
        ASSERT_EQ(back[1], rgb[i][1]);
        ASSERT_EQ(back[2], rgb[i][2]);
    }
    // a hue between sectors: (15, 255, 200): h6 = 0.5, sector 0 -> R 200, G 200 (1 - 0.5) = 100, B 0
    uint8_t o[3];
    hy__aug_hsv2rgb((const uint8_t[3]){15, 255, 200}, o);
    ASSERT_EQ(o[0], 200);
    ASSERT_EQ(o[1], 100);
    ASSERT_EQ(o[2], 0);
}

HY_TEST(hsv_luts_identity_and_hue_wrap) {
    uint8_t lut[3][256];
    hy__aug_hsv_luts((const double[3]){1, 1, 1}, lut); // gains 0: r = 1
    for (int x = 0; x < 256; x++) {
        if (x < 180) ASSERT_EQ(lut[0][x], x); // H is < 180
        ASSERT_EQ(lut[1][x], x);
        ASSERT_EQ(lut[2][x], x);
    }
    hy__aug_hsv_luts((const double[3]){1.015, 1.7, 0.6}, lut);
    ASSERT_EQ(lut[0][179], 1);   // 181.685 mod 180
    ASSERT_EQ(lut[0][100], 101); // 101.5 truncated
    ASSERT_EQ(lut[1][200], 255); // clipped
    ASSERT_EQ(lut[1][100], 170);
    ASSERT_EQ(lut[2][255], 153);
    hy__aug_hsv_luts((const double[3]){-0.5, 0, 1}, lut);
    ASSERT_EQ(lut[0][10], 175); // -5 mod 180, numpy's sign of the divisor
    ASSERT_EQ(lut[1][255], 0);
}

// --- the loader --------------------------------------------------------------------------------

static hy__val_dataset *load_ds(const char *yaml) {
    hy__val_dataset *ds = NULL;
    if (hy__val_dataset_load(hy_test_asset(yaml), "train", &ds) != HY_OK) {
        fprintf(stderr, "%s: %s\n", yaml, hy_last_error());
        return NULL;
    }
    return ds;
}

typedef struct batch {
    float *x, *t;
    int nt;
} batch;

static hy__tloader *mk(const hy__val_dataset *ds, hy__tloader_params p) {
    hy__tloader *l = NULL;
    if (hy__tloader_create(ds, &p, &l) != HY_OK) fprintf(stderr, "loader: %s\n", hy_last_error());
    return l;
}

HY_TEST(augmented_batches_depend_only_on_seed_epoch_batch) {
    hy__val_dataset *ds = load_ds("datasets/coco8/data.yaml");
    ASSERT_TRUE(ds);
    hy__tloader_params p = hy__tloader_default_params();
    p.imgsz = 160, p.batch = 2, p.epochs = 3, p.close_mosaic = 1, p.seed = 3;
    hy__tloader_params p3 = p, p1 = p;
    p1.workers = 1, p1.cache_bytes = 0;
    p3.workers = 3;
    hy__tloader *a = mk(ds, p1), *b = mk(ds, p3);
    ASSERT_TRUE(a && b);
    ASSERT_EQ(hy__tloader_max_labels(a), 4 * 8); // mosaic: 4 x coco8's most (8)
    const size_t per = 3 * (size_t)p.imgsz * p.imgsz * 2, tmax = 6 * (size_t)hy__tloader_max_labels(a) * 2;
    batch A[3][2], B[3][2];
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 2; k++) {
            A[e][k].x = malloc(per * 4), A[e][k].t = malloc(tmax * 4);
            B[e][k].x = malloc(per * 4), B[e][k].t = malloc(tmax * 4);
        }
    // a: 1 worker, no cache, in order; b: 3 workers, cached, out of order (twice: cold, warm)
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 2; k++) ASSERT_OK(hy__tloader_fill(a, e, k, A[e][k].x, A[e][k].t, &A[e][k].nt));
    for (int rep = 0; rep < 2; rep++)
        for (int e = 2; e >= 0; e--)
            for (int k = 1; k >= 0; k--) {
                ASSERT_OK(hy__tloader_start(b, e, k, B[e][k].x, B[e][k].t));
                ASSERT_OK(hy__tloader_wait(b, &B[e][k].nt));
                ASSERT_EQ(B[e][k].nt, A[e][k].nt);
                ASSERT_EQ(memcmp(A[e][k].x, B[e][k].x, per * 4), 0);
                ASSERT_EQ(memcmp(A[e][k].t, B[e][k].t, (size_t)A[e][k].nt * 6 * 4), 0);
            }
    ASSERT_EQ(hy__tloader_cache_bytes(a), (size_t)0);
    ASSERT_TRUE(hy__tloader_cache_bytes(b) > 0);
    // epochs differ; rows are in range
    ASSERT_NE(memcmp(A[0][0].x, A[1][0].x, per * 4), 0);
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 2; k++)
            for (int r = 0; r < A[e][k].nt; r++) {
                const float *o = A[e][k].t + 6 * r;
                ASSERT_TRUE(o[0] == 0 || o[0] == 1);
                ASSERT_TRUE(o[2] > 0 && o[2] < 1 && o[3] > 0 && o[3] < 1 && o[4] > 0 && o[5] > 0);
            }
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 2; k++) free(A[e][k].x), free(A[e][k].t), free(B[e][k].x), free(B[e][k].t);
    hy__tloader_free(a);
    hy__tloader_free(b);
    hy__val_dataset_free(ds);
}

HY_TEST(close_mosaic_epochs_serve_the_letterbox) {
    // bccd images are 640 x 480: load_image (320 x 240) then LetterBox is the single-stage
    // letterbox of augment 0, so with the affine an identity (translate 0, scale 0), no HSV and
    // no flips, a closed-mosaic epoch equals augment 0's batch; a mosaic epoch does not.
    hy__val_dataset *ds = load_ds("datasets/bccd/data.yaml");
    if (!ds) {
        printf("  skip: no bccd\n");
        return;
    }
    hy__tloader_params p = hy__tloader_default_params();
    p.imgsz = 320, p.batch = 4, p.epochs = 5, p.close_mosaic = 2, p.seed = 9, p.cache_bytes = 0;
    p.translate = 0, p.scale = 0, p.hsv_h = p.hsv_s = p.hsv_v = 0, p.fliplr = 0;
    hy__tloader_params p0 = p;
    p0.augment = 0;
    hy__tloader *a = mk(ds, p), *z = mk(ds, p0);
    ASSERT_TRUE(a && z);
    const size_t per = 3 * (size_t)320 * 320 * 4;
    float *xa = malloc(per * 4), *xz = malloc(per * 4);
    float *ta = malloc(6 * 4 * (size_t)hy__tloader_max_labels(a) * 4), *tz = malloc(6 * 4 * (size_t)hy__tloader_max_labels(a) * 4);
    int na, nz;
    for (int e = 0; e < 5; e++) {
        ASSERT_OK(hy__tloader_fill(a, e, 1, xa, ta, &na));
        ASSERT_OK(hy__tloader_fill(z, e, 1, xz, tz, &nz));
        const int closed = e >= 3;
        if (closed) {
            ASSERT_EQ(memcmp(xa, xz, per * 4), 0);
            ASSERT_EQ(na, nz);
            for (int r = 0; r < 6 * na; r++) ASSERT_NEAR(ta[r], tz[r], 2e-6);
            // the 40 rows of padding above each image: 114
            for (int j = 0; j < 4; j++)
                for (size_t q = 0; q < 40 * 320; q++) ASSERT_EQ(xa[per / 4 * j + q], 114.0f / 255.0f);
        } else {
            ASSERT_NE(memcmp(xa, xz, per * 4), 0);
        }
    }
    free(xa), free(xz), free(ta), free(tz);
    hy__tloader_free(a);
    hy__tloader_free(z);
    hy__val_dataset_free(ds);
}

HY_TEST(loader_speed_bccd) {
    // ms per 16-image batch at 320 (printed for the notes; not asserted)
    hy__val_dataset *ds = load_ds("datasets/bccd/data.yaml");
    if (!ds || getenv("HY_TEST_SANITIZED")) {
        printf("  skip: %s\n", ds ? "sanitized build" : "no bccd");
        hy__val_dataset_free(ds);
        return;
    }
    for (int w = 1; w <= 2; w++) {
        hy__tloader_params p = hy__tloader_default_params();
        p.imgsz = 320, p.batch = 16, p.epochs = 20, p.workers = w;
        hy__tloader *l = mk(ds, p);
        ASSERT_TRUE(l);
        float *x = malloc(3 * 320 * 320 * 16 * 4), *t = malloc(6 * 16 * (size_t)hy__tloader_max_labels(l) * 4);
        int nt;
        const int nb = hy__tloader_num_batches(l);
        double ms[2];
        for (int e = 0; e < 2; e++) { // epoch 0 decodes and caches, epoch 1 reads the cache
            const double t0 = hy__now_ms();
            for (int b = 0; b < nb; b++) ASSERT_OK(hy__tloader_fill(l, e, b, x, t, &nt));
            ms[e] = (hy__now_ms() - t0) / nb;
        }
        printf("  bccd 320, batch 16, %d worker(s): %.1f ms/batch decoding, %.1f ms/batch cached\n", w, ms[0], ms[1]);
        free(x), free(t);
        hy__tloader_free(l);
    }
    hy__val_dataset_free(ds);
}

HY_TEST_MAIN()
