/* results.csv / results.png of a training run (src/train/results.c): the CSV byte for byte in
 * Ultralytics 8.0.172's save_metrics format (expected fields written by hand, checked against
 * Python's '%23.5g' % round(x, 5)), the atomic rewrite, the PNG's size and where its curves
 * go, errors naming the path, and the smoothing against scipy's documented values. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hy_test.h"
#include "train/results.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* One CSV line from its 14 fields, each right-aligned in 23 columns. */
static void csv_line(char *out, const char *const f[14]) {
    out[0] = 0;
    for (int k = 0; k < 14; k++) sprintf(out + strlen(out), k ? ",%23s" : "%23s", f[k]);
    strcat(out, "\n");
}

/* Three rows: validated with val losses (rounding to 5 decimals before %.5g shows in
 * precision 0.000123456 -> 0.00012, lr is not rounded: 0.00012346); not validated (metrics and
 * val losses written 0 whatever the struct holds); validated without val losses, non-finite
 * losses. Our epochs are 1-based, 8.0.172's CSV is 0-based. */
static void three_rows(hy_train_epoch r[3]) {
    memset(r, 0, 3 * sizeof *r);
    r[0] = (hy_train_epoch){.epoch = 1, .box_loss = 1.23456789, .cls_loss = 2.5,
                            .dfl_loss = 0.9999951, .validated = 1, .precision = 0.000123456,
                            .recall = 0.5, .map50 = 0.760449, .map50_95 = 0.4967,
                            .lr = {0.000123456, 0.01, 0.0705}, .has_val_loss = 1,
                            .val_box_loss = 1.1, .val_cls_loss = 12345.678901,
                            .val_dfl_loss = 1e-7};
    r[1] = (hy_train_epoch){.epoch = 2, .box_loss = 1, .cls_loss = 2, .dfl_loss = 3,
                            .validated = 0, .precision = 0.9, .recall = 0.9, .map50 = 0.9,
                            .map50_95 = 0.9, .lr = {1e-5, 0, 0}, .has_val_loss = 0,
                            .val_box_loss = 9, .val_cls_loss = 9, .val_dfl_loss = 9};
    r[2] = (hy_train_epoch){.epoch = 3, .box_loss = NAN, .cls_loss = INFINITY,
                            .dfl_loss = -INFINITY, .validated = 1, .precision = 1, .recall = 1,
                            .map50 = 0.7, .map50_95 = 0.333333333, .lr = {0.001, 0.001, 0.001},
                            .has_val_loss = 0, .val_box_loss = 5, .val_cls_loss = 5,
                            .val_dfl_loss = 5};
}

HY_TEST(csv_matches_ultralytics_format) {
    static const char *const H[14] = {
        "epoch",          "train/box_loss",      "train/cls_loss",   "train/dfl_loss",
        "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
        "val/box_loss",   "val/cls_loss",        "val/dfl_loss",     "lr/pg0",
        "lr/pg1",         "lr/pg2"};
    static const char *const R0[14] = {"0",   "1.2346", "2.5", "1",          "0.00012",
                                       "0.5", "0.76045", "0.4967", "1.1",    "12346",
                                       "0",   "0.00012346", "0.01", "0.0705"};
    static const char *const R1[14] = {"1", "1", "2", "3", "0",     "0", "0",
                                       "0", "0", "0", "0", "1e-05", "0", "0"};
    static const char *const R2[14] = {"2",   "nan", "inf", "-inf",  "1",     "1",     "0.7",
                                       "0.33333", "0", "0",   "0", "0.001", "0.001", "0.001"};
    char expect[4096], line[512];
    expect[0] = 0;
    csv_line(line, H), strcat(expect, line);
    csv_line(line, R0), strcat(expect, line);
    csv_line(line, R1), strcat(expect, line);
    csv_line(line, R2), strcat(expect, line);
    // spot-check the padding itself against a literal
    ASSERT_EQ(strncmp(expect, "                  epoch,         train/box_loss,", 48), 0);
    hy_train_epoch r[3];
    three_rows(r);
    const char *path = hy_test_tmp("fmt_results.csv");
    ASSERT_OK(hy__train_results_csv(path, r, 3));
    ASSERT_STREQ(slurp(path), expect);
    // header only for n = 0
    ASSERT_OK(hy__train_results_csv(path, r, 0));
    csv_line(line, H);
    ASSERT_STREQ(slurp(path), line);
}

/* Files in dir whose name contains part. */
static int count_files(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

HY_TEST(csv_rewrite_is_atomic) {
    const char *dir = hy_test_tmp("atomic");
    mkdir(dir, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    FILE *old = fopen(path, "w");
    ASSERT_TRUE(old != NULL);
    fputs("old contents\n", old);
    fclose(old);
    struct stat s0, s1;
    ASSERT_EQ(stat(path, &s0), 0);
    // a reader that opened the file before the rewrite keeps reading the whole old file
    FILE *reader = fopen(path, "r");
    ASSERT_TRUE(reader != NULL);
    hy_train_epoch r[3];
    three_rows(r);
    for (int n = 1; n <= 3; n++) ASSERT_OK(hy__train_results_csv(path, r, n));
    char got[64] = {0};
    size_t k = fread(got, 1, sizeof got - 1, reader);
    fclose(reader);
    ASSERT_EQ(k, 13);
    ASSERT_STREQ(got, "old contents\n");
    // the path now names a new file (renamed over it, not truncated in place) ...
    ASSERT_EQ(stat(path, &s1), 0);
    ASSERT_NE(s0.st_ino, s1.st_ino);
    ASSERT_EQ(s1.st_mode & 0777, 0644);
    ASSERT_CONTAINS(slurp(path), "                      2,"); // 3 rows
    // ... and no temporary is left beside it
    ASSERT_EQ(count_files(dir, "results"), 1);
    ASSERT_OK(hy__train_results_png(path, r, 3)); // (any name: the PNG writer uses it too)
    ASSERT_EQ(count_files(dir, "results"), 1);
}

HY_TEST(unwritable_path_fails_naming_it) {
    hy_train_epoch r[3];
    three_rows(r);
    const char *bad = "/nonexistent-hotyolo-dir/run/results.csv";
    ASSERT_ERR(hy__train_results_csv(bad, r, 3), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), bad);
    const char *badpng = "/nonexistent-hotyolo-dir/run/results.png";
    ASSERT_ERR(hy__train_results_png(badpng, r, 3), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), badpng);
    // a folder in the way of the file: rename fails, the folder stays, no temporary is left
    const char *dir = hy_test_tmp("blocked");
    mkdir(dir, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    mkdir(path, 0755);
    char inner[1100];
    snprintf(inner, sizeof inner, "%s/keep", path);
    FILE *f = fopen(inner, "w");
    ASSERT_TRUE(f != NULL);
    fclose(f);
    ASSERT_ERR(hy__train_results_csv(path, r, 3), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), path);
    ASSERT_EQ(access(inner, F_OK), 0);
    ASSERT_EQ(count_files(dir, "results"), 1);
}

// --- PNG -----------------------------------------------------------------------------------------

static const uint8_t C0[3] = {31, 119, 180}, C1[3] = {255, 127, 14};

/* Mean row of colour c in columns [x0, x1) and rows [y0, y1) of img; -1 when absent. */
static double mean_row(const hy_image *img, const uint8_t c[3], int x0, int x1, int y0, int y1,
                       int *count) {
    double sum = 0;
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = img->data + ((size_t)y * img->width + x) * 3;
            if (p[0] == c[0] && p[1] == c[1] && p[2] == c[2]) sum += y, n++;
        }
    if (count) *count = n;
    return n ? sum / n : -1;
}

HY_TEST(png_layout_and_curves) {
    // 10 epochs: mAP50 rising 0.1 .. 1.0, train box loss falling 5 .. 0.5; no val losses
    hy_train_epoch r[10];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 10; i++) {
        r[i].epoch = i + 1;
        r[i].box_loss = 5.0 - 0.5 * i;
        r[i].cls_loss = 1, r[i].dfl_loss = 1;
        r[i].validated = 1;
        r[i].map50 = 0.1 * (i + 1);
        r[i].map50_95 = 0.5, r[i].precision = 0.5, r[i].recall = 0.5;
    }
    const char *path = hy_test_tmp("results.png");
    ASSERT_OK(hy__train_results_png(path, r, 10));
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(path, &img));
    // plot_results: figsize (12, 6) at dpi 200
    ASSERT_EQ(img->width, 2400);
    ASSERT_EQ(img->height, 1200);
    const int CW = 480, CH = 600;
    // mAP50 is panel 9 (row 1, column 3), train/box_loss panel 1 (row 0, column 0): split each
    // panel into 5 vertical strips; the C0 (values) pixels' mean row must fall (rise on the
    // image: y grows downwards) strip after strip for mAP50, and grow for the falling loss.
    double prev_up = 1e9, prev_down = -1;
    int total = 0;
    for (int k = 0; k < 5; k++) {
        int n1, n2;
        const int xa = 3 * CW + k * CW / 5, xb = xa + CW / 5;
        const double up = mean_row(img, C0, xa, xb, CH, 2 * CH, &n1);
        const double down = mean_row(img, C0, k * CW / 5, (k + 1) * CW / 5, 0, CH, &n2);
        if (n1 > 0) {
            ASSERT_TRUE(up < prev_up);
            prev_up = up, total++;
        }
        if (n2 > 0) {
            ASSERT_TRUE(down > prev_down);
            prev_down = down;
        }
    }
    ASSERT_TRUE(total >= 3);
    // the rise spans most of the axes height (1.0 - 0.1 over ~90% of the range after margins)
    int n_top, n_bot;
    const double top = mean_row(img, C0, 3 * CW + 4 * CW / 5, 4 * CW, CH, 2 * CH, &n_top);
    const double bot = mean_row(img, C0, 3 * CW, 3 * CW + CW / 5, CH, 2 * CH, &n_bot);
    ASSERT_TRUE(n_top > 0 && n_bot > 0);
    ASSERT_TRUE(bot - top > 0.5 * (CH - 120));
    // the smoothed curve (C1) is there too
    int n_smooth;
    mean_row(img, C1, 3 * CW, 4 * CW, CH, 2 * CH, &n_smooth);
    ASSERT_TRUE(n_smooth > 50);
    // val losses were not computed: no curve in panels 6-8 (row 1, columns 0-2)
    int n_val;
    mean_row(img, C0, 0, 3 * CW, CH, 2 * CH, &n_val);
    ASSERT_EQ(n_val, 0);
    mean_row(img, C1, 0, 3 * CW, CH, 2 * CH, &n_val);
    ASSERT_EQ(n_val, 0);
    hy_image_free(img);
}

HY_TEST(png_edge_cases) {
    // no rows, one row, huge and non-finite values: a picture, never a crash
    hy_train_epoch r[3];
    three_rows(r);
    r[0].box_loss = 1e308, r[0].cls_loss = -1e308;
    const char *path = hy_test_tmp("edge.png");
    ASSERT_OK(hy__train_results_png(path, r, 0));
    ASSERT_OK(hy__train_results_png(path, r, 1));
    ASSERT_OK(hy__train_results_png(path, r, 3));
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(path, &img));
    ASSERT_EQ(img->width, 2400);
    hy_image_free(img);
}

HY_TEST(compare_plot) {
    const double x[4] = {1, 2, 3, 4}, a[4] = {0.1, 0.4, 0.6, 0.7}, b[4] = {0, 0.05, NAN, 0.3};
    const hy__train_curve c[2] = {{"pretrained", x, a, 4}, {"scratch", x, b, 4}};
    const char *path = hy_test_tmp("compare.png");
    ASSERT_OK(hy__train_plot_compare(path, "mAP50 (val)", "epoch", c, 2));
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(path, &img));
    ASSERT_EQ(img->width, 1600);
    ASSERT_EQ(img->height, 1000);
    int n0, n1;
    const double y0 = mean_row(img, C0, 0, 1600, 0, 1000, &n0);
    const double y1 = mean_row(img, C1, 0, 1600, 0, 1000, &n1);
    ASSERT_TRUE(n0 > 100 && n1 > 100);
    ASSERT_TRUE(y0 < y1); // the better run lies higher
    hy_image_free(img);
    ASSERT_ERR(hy__train_plot_compare(path, "t", "x", c, 0), HY_ERR_INVALID_ARG);
}

// --- smoothing -----------------------------------------------------------------------------------

HY_TEST(smoothing_is_scipy_gaussian_filter1d) {
    // scipy.ndimage.gaussian_filter1d's documented example (mode 'reflect', truncate 4.0):
    //   gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 1)
    //     -> [1.42704095, 2.06782203, 3., 3.93217797, 4.57295905]
    //   gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 4)
    //     -> [2.91948343, 2.95023502, 3., 3.04976498, 3.08051657]
    const double y[5] = {1, 2, 3, 4, 5};
    const double e1[5] = {1.42704095, 2.06782203, 3.0, 3.93217797, 4.57295905};
    const double e4[5] = {2.91948343, 2.95023502, 3.0, 3.04976498, 3.08051657};
    double out[5];
    hy__train_smooth(y, 5, 1.0, out);
    for (int i = 0; i < 5; i++) ASSERT_NEAR(out[i], e1[i], 5e-9);
    hy__train_smooth(y, 5, 4.0, out); // radius 16 > n: the mirror repeats
    for (int i = 0; i < 5; i++) ASSERT_NEAR(out[i], e4[i], 5e-9);
    // sigma 3 (plot_results): one sample -> itself; [0, 1] mirrors to ... 1 0 | 0 1 | 1 0 ...,
    // so out[0] = sum of w_k over k = 1, 2 (mod 4) = 0.49999007 (w_k = exp(-k^2/18) / sum,
    // |k| <= 12, summed by hand in Python), and out[1] = 1 - out[0]
    const double one = 0.25, two[2] = {0, 1};
    hy__train_smooth(&one, 1, 3.0, out);
    ASSERT_NEAR(out[0], 0.25, 1e-15);
    hy__train_smooth(two, 2, 3.0, out);
    ASSERT_NEAR(out[0], 0.49999007301980325, 1e-12);
    ASSERT_NEAR(out[1], 0.5000099269801969, 1e-12);
}

HY_TEST_MAIN()
