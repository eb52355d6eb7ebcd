/* Training batch loader (src/train/loader.c): Ultralytics' train-time letterbox and label
 * mapping against reference/train/coco8_train_320_{input,targets}.npy (Ultralytics 8.0.172),
 * horizontal flip, seeded shuffling, batches and the worker thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hy_test.h"
#include "train/loader.h"

#define S 320

static hy__val_dataset *coco8_train(void) {
    hy__val_dataset *ds = NULL;
    if (hy__val_dataset_load(hy_test_asset("datasets/coco8/data.yaml"), "train", &ds) != HY_OK) {
        fprintf(stderr, "coco8 train: %s\n", hy_last_error());
        return NULL;
    }
    return ds;
}

HY_TEST(letterbox_and_labels_equal_ultralytics) {
    long long shx[8], sht[8];
    int ndx, ndt;
    size_t nx, nt;
    float *ref_x = hy_test_npy_load(hy_test_asset("reference/train/coco8_train_320_input.npy"), shx, &ndx, &nx);
    float *ref_t = hy_test_npy_load(hy_test_asset("reference/train/coco8_train_320_targets.npy"), sht, &ndt, &nt);
    hy__val_dataset *ds = coco8_train();
    ASSERT_TRUE(ref_x && ref_t && ds);
    ASSERT_EQ(ndx, 4);
    ASSERT_EQ(shx[0], 4);
    ASSERT_EQ(shx[2], S);
    ASSERT_EQ(ndt, 2);
    ASSERT_EQ(sht[1], 6);
    ASSERT_EQ(ds->n, (size_t)4);
    uint8_t *u8 = malloc((size_t)S * S * 3);
    float *x = malloc(nx * sizeof(float));
    float rows[64 * 5];
    double dx = 0, dt = 0;
    long n_rows = 0;
    ASSERT_TRUE(u8 && x);
    for (size_t i = 0; i < 4; i++) {
        const hy__val_item *it = &ds->items[i];
        hy_image *img;
        ASSERT_OK(hy_image_load(it->im_file, &img));
        ASSERT_TRUE(it->n_labels <= 64);
        ASSERT_OK(hy__train_letterbox(img, S, it->labels, it->n_labels, u8, rows));
        hy_image_free(img);
        hy__train_to_input(u8, S, 0, x + i * 3 * S * S);
        for (int k = 0; k < it->n_labels; k++, n_rows++) {
            ASSERT_TRUE(n_rows < sht[0]);
            const float *r = ref_t + 6 * n_rows;
            ASSERT_EQ((int)r[0], (int)i);
            for (int c = 0; c < 5; c++) dt = fmax(dt, fabs((double)rows[5 * k + c] - r[1 + c]));
        }
    }
    ASSERT_EQ(n_rows, sht[0]);
    long n_off = 0;
    for (size_t j = 0; j < nx; j++) {
        const double d = fabs((double)x[j] - ref_x[j]);
        dx = fmax(dx, d);
        n_off += d > 0;
    }
    printf("  input: max |diff| %.3g (%.3g of 1/255), %ld of %zu values differ; targets: max |diff| %.3g\n", dx,
           dx * 255, n_off, nx, dt);
    ASSERT_TRUE(dx <= 1.0 / 255 + 1e-7);
    ASSERT_TRUE(dt <= 1e-5);
    free(u8);
    free(x);
    free(ref_x);
    free(ref_t);
    hy__val_dataset_free(ds);
}

static hy__tloader *loader(const hy__val_dataset *ds, int batch, double fliplr, uint64_t seed, size_t cache) {
    hy__tloader_params p = {.imgsz = S, .batch = batch, .fliplr = fliplr, .seed = seed, .cache_bytes = cache};
    hy__tloader *l = NULL;
    if (hy__tloader_create(ds, &p, &l) != HY_OK) fprintf(stderr, "loader: %s\n", hy_last_error());
    return l;
}

HY_TEST(flip_mirrors_image_and_cx) {
    hy__val_dataset *ds = coco8_train();
    ASSERT_TRUE(ds);
    hy__tloader *a = loader(ds, 4, 0.0, 7, 0), *b = loader(ds, 4, 1.0, 7, (size_t)1 << 30);
    ASSERT_TRUE(a && b);
    const size_t per = 3 * (size_t)S * S;
    float *xa = malloc(4 * per * sizeof(float)), *xb = malloc(4 * per * sizeof(float));
    float ta[64 * 6], tb[64 * 6];
    int na, nb;
    ASSERT_TRUE(xa && xb);
    ASSERT_OK(hy__tloader_fill(a, 0, 0, xa, ta, &na));
    ASSERT_OK(hy__tloader_fill(b, 0, 0, xb, tb, &nb));
    ASSERT_EQ(na, 13);
    ASSERT_EQ(nb, na);
    for (int k = 0; k < na; k++) {
        ASSERT_EQ(ta[6 * k], tb[6 * k]);
        ASSERT_EQ(ta[6 * k + 1], tb[6 * k + 1]);
        ASSERT_NEAR(tb[6 * k + 2], 1.0f - ta[6 * k + 2], 1e-7);
        for (int c = 3; c < 6; c++) ASSERT_EQ(ta[6 * k + c], tb[6 * k + c]);
    }
    int mirrored = 1, differs = 0;
    for (size_t j = 0; j < 4 * 3 * (size_t)S && mirrored; j++) // every row of every plane
        for (int i = 0; i < S; i++) {
            const float va = xa[j * S + (size_t)i], vb = xb[j * S + (size_t)(S - 1 - i)];
            if (va != vb) {
                mirrored = 0;
                break;
            }
            differs |= xa[j * S + (size_t)i] != xb[j * S + (size_t)i];
        }
    ASSERT_TRUE(mirrored);
    ASSERT_TRUE(differs);
    // cached (b) and not cached (a) give the same pixels: b's second epoch comes from the cache
    ASSERT_EQ(hy__tloader_cache_bytes(a), (size_t)0);
    ASSERT_EQ(hy__tloader_cache_bytes(b), 4 * (size_t)S * S * 3);
    free(xa);
    free(xb);
    hy__tloader_free(a);
    hy__tloader_free(b);
    hy__val_dataset_free(ds);
}

HY_TEST(seeded_shuffle_reproducible) {
    hy__val_dataset *ds = coco8_train();
    ASSERT_TRUE(ds);
    hy__tloader *a = loader(ds, 4, 0.5, 123, 0), *b = loader(ds, 4, 0.5, 123, 0), *c = loader(ds, 4, 0.5, 124, 0);
    ASSERT_TRUE(a && b && c);
    int epoch_differs = 0, seed_differs = 0;
    size_t first[4];
    unsigned char ffirst[4];
    hy__tloader_epoch_plan(a, 0, first, ffirst);
    for (int e = 0; e < 8; e++) {
        size_t oa[4], ob[4], oc[4];
        unsigned char fa[4], fb[4], fc[4];
        hy__tloader_epoch_plan(a, e, oa, fa);
        hy__tloader_epoch_plan(b, e, ob, fb);
        hy__tloader_epoch_plan(c, e, oc, fc);
        ASSERT_TRUE(!memcmp(oa, ob, sizeof oa) && !memcmp(fa, fb, sizeof fa));
        int seen = 0;
        for (int i = 0; i < 4; i++) {
            ASSERT_TRUE(oa[i] < 4);
            seen |= 1 << oa[i];
        }
        ASSERT_EQ(seen, 15); // a permutation
        epoch_differs |= memcmp(oa, first, sizeof oa) != 0 || memcmp(fa, ffirst, sizeof fa) != 0;
        seed_differs |= memcmp(oa, oc, sizeof oa) != 0 || memcmp(fa, fc, sizeof fa) != 0;
    }
    ASSERT_TRUE(epoch_differs);
    ASSERT_TRUE(seed_differs);
    hy__tloader_free(a);
    hy__tloader_free(b);
    hy__tloader_free(c);
    hy__val_dataset_free(ds);
}

HY_TEST(partial_last_batch_and_worker_thread) {
    hy__val_dataset *ds = coco8_train();
    ASSERT_TRUE(ds);
    hy__tloader *a = loader(ds, 3, 0.5, 5, (size_t)1 << 30), *b = loader(ds, 3, 0.5, 5, 0);
    ASSERT_TRUE(a && b);
    ASSERT_EQ(hy__tloader_num_batches(a), 2);
    ASSERT_EQ(hy__tloader_batch_size(a, 0), 3);
    ASSERT_EQ(hy__tloader_batch_size(a, 1), 1);
    ASSERT_EQ(hy__tloader_max_labels(a), 8);
    const size_t per = 3 * (size_t)S * S;
    float *xa = malloc(3 * per * sizeof(float)), *xb = malloc(3 * per * sizeof(float));
    float ta[64 * 6], tb[64 * 6];
    ASSERT_TRUE(xa && xb);
    int total = 0;
    for (int e = 0; e < 2; e++)
        for (int bi = 0; bi < 2; bi++) {
            int na, nb;
            const int n = hy__tloader_batch_size(a, bi);
            ASSERT_OK(hy__tloader_start(a, e, bi, xa, ta));
            ASSERT_OK(hy__tloader_fill(b, e, bi, xb, tb, &nb));
            ASSERT_OK(hy__tloader_wait(a, &na));
            ASSERT_EQ(na, nb);
            ASSERT_TRUE(!memcmp(ta, tb, (size_t)na * 6 * sizeof(float)));
            ASSERT_TRUE(!memcmp(xa, xb, (size_t)n * per * sizeof(float)));
            for (int k = 0; k < na; k++) ASSERT_TRUE(ta[6 * k] >= 0 && ta[6 * k] < (float)n);
            if (e == 0) total += na;
        }
    ASSERT_EQ(total, 13); // every label once per epoch
    free(xa);
    free(xb);
    hy__tloader_free(a);
    hy__tloader_free(b);
    hy__val_dataset_free(ds);
}

HY_TEST_MAIN()
