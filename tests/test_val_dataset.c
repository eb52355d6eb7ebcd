/* Dataset reading for `hotyolo val` (src/val/dataset.c): data.yaml forms, image lists, label
 * checks (each bad file reported with file:line and its image skipped, never a crash), the
 * shipped datasets (coco128: 128 images, 929 instances, 2 background images, 2 orphan label
 * files, as MANIFEST.md says), and the OpenCV-exact INTER_AREA resize used when an image's long
 * side differs from imgsz (hashes of cv2.resize(INTER_AREA) outputs computed with Debian's
 * python3-opencv 4.6 on the synthetic image of test_letterbox.c). */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotyolo/val.h"
#include "hy_test.h"
#include "image/image.h"
#include "data/dataset.h"
#include "val/plots.h"

// --- helpers -----------------------------------------------------------------------------------

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}
static int write_text(const char *path, const char *s) { return write_bytes(path, s, strlen(s)); }

static int copy_file(const char *src, const char *dst, size_t limit) {
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (limit && limit < n) n = limit;
    return write_bytes(dst, buf, n);
}

static void mkdirs(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    mkdir(p, 0777);
}

static const char *tmp(const char *rel) { return hy_test_tmp(rel); }

static int has_warning(const hy__val_dataset *d, const char *a, const char *b) {
    for (size_t i = 0; i < d->n_warnings; i++)
        if (strstr(d->warnings[i], a) && (!b || strstr(d->warnings[i], b))) return 1;
    return 0;
}

static const hy__val_item *find_item(const hy__val_dataset *d, const char *suffix) {
    for (size_t i = 0; i < d->n; i++) {
        size_t a = strlen(d->items[i].im_file), b = strlen(suffix);
        if (a >= b && !strcmp(d->items[i].im_file + a - b, suffix)) return &d->items[i];
    }
    return NULL;
}

static int png(const char *path, int w, int h) {
    hy_image *img;
    if (hy__image_create(w, h, &img)) return -1;
    memset(img->data, 100, (size_t)w * h * 3);
    hy_status st = hy__png_write(path, img);
    hy_image_free(img);
    return st ? -1 : 0;
}

/* The dataset of most tests below: tmp/dsA. */
static int make_dataset_a(void) {
    const char *jpg = hy_test_asset("datasets/coco8/images/val/000000000036.jpg");
    char p[4200];
    snprintf(p, sizeof p, "rm -rf -- '%s'", tmp("dsA"));
    if (system(p) != 0) return -1;
    mkdirs(tmp("dsA/root/images/val/sub"));
    mkdirs(tmp("dsA/root/labels/val/sub"));
    // names as an id -> name map, 'path' relative to the yaml's folder, nc that matches
    if (write_text(tmp("dsA/data.yaml"),
                   "# test\npath: root\ntrain: images/train\nval: images/val\nnc: 3\n"
                   "names:\n  0: person\n  2: dog\n  1: bicycle\n"))
        return -1;
    const char *ok_jpgs[] = {"a.jpg", "b.jpg", "c.jpg", "d.jpg",        "e.jpg",
                             "i.jpg", "j.jpg", "k.jpg", "sub/deep.JPG", ".hidden.jpg"};
    for (size_t i = 0; i < sizeof ok_jpgs / sizeof *ok_jpgs; i++) {
        snprintf(p, sizeof p, "dsA/root/images/val/%s", ok_jpgs[i]);
        if (copy_file(jpg, tmp(p), 0)) return -1;
    }
    // truncated JPEG: the header parses, decoding fails later (skipped during the run)
    if (copy_file(jpg, tmp("dsA/root/images/val/t.jpg"), 4000)) return -1;
    if (png(tmp("dsA/root/images/val/p.png"), 64, 48)) return -1;
    if (png(tmp("dsA/root/images/val/tiny.png"), 8, 8)) return -1;
    if (write_text(tmp("dsA/root/images/val/g.bmp"), "BM not really a bitmap")) return -1;
    if (write_text(tmp("dsA/root/images/val/h.jpg"), "this is not a JPEG")) return -1;
    if (write_text(tmp("dsA/root/images/val/notes.txt"), "not an image")) return -1;
    // labels
    const char *L = "dsA/root/labels/val/";
    struct {
        const char *name, *text;
    } labels[] = {
        {"a.txt", "0 0.5 0.5 0.2 0.2\n2 0.3 0.3 0.1 0.1\n"},
        {"c.txt", "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n"},       // line 2: 4 values
        {"d.txt", "7 0.5 0.5 0.2 0.2\n"},                      // class out of range
        {"e.txt", "0 0.5 0.5 0.2 0.2\n\n1 1.2 0.5 0.1 0.1\n"}, // line 3: x > 1
        {"i.txt", ""},                                         // empty: background
        {"j.txt", "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n1 0.5 0.5 0.2 0.2\n"}, // a duplicate row
        {"k.txt", "0 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n"},                       // polygon
        {"t.txt", "0 0.5 0.5 0.2 0.2\n"},
        {"p.txt", "2 0.5 0.5 1 1\n"},
        {"sub/deep.txt", "1 0.25 0.25 0.5 0.5\n"},
        {"orphan.txt", "0 0.5 0.5 0.2 0.2\n"}, // no image: ignored
    };
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
        snprintf(p, sizeof p, "%s%s", L, labels[i].name);
        if (write_text(tmp(p), labels[i].text)) return -1;
    }
    return 0;
}

// --- label parsing -------------------------------------------------------------------------------

HY_TEST(label_path_mapping) {
    char *s = hy__val_label_path("/d/images/x/images/val/a.b.jpg");
    ASSERT_STREQ(s, "/d/images/x/labels/val/a.b.txt"); // the last /images/ only
    hy__free(s);
    s = hy__val_label_path("/d/pics/a.png");
    ASSERT_STREQ(s, "/d/pics/a.txt");
    hy__free(s);
}

HY_TEST(label_lines_checked_with_line_numbers) {
    hy__val_label *rows;
    int n;
    const char *ok = "  \n0 0.5 0.5 0.25 0.25\n\n  2 1 0 1 0.5  \r\n1.0 0.1 0.2 0.3 0.4";
    ASSERT_OK(hy__val_labels_parse(ok, strlen(ok), "l.txt", 3, &rows, &n));
    ASSERT_EQ(n, 3);
    ASSERT_EQ(rows[1].cls, 2);
    ASSERT_NEAR(rows[1].h, 0.5, 0);
    ASSERT_EQ(rows[2].cls, 1);
    ASSERT_NEAR(rows[2].x, 0.1f, 0);
    hy__free(rows);
    struct {
        const char *text, *msg;
    } bad[] = {
        {"0 0.5 0.5 0.2 0.2\n0 0.5 x 0.2 0.2\n", "l.txt:2: 'x' is not a number"},
        {"0 0.5 0.5 0.2\n", "l.txt:1: expected 5 values"},
        {"0 0.5 0.5 0.2 0.2 0.3\n", "l.txt:1: expected 5 values"},
        {"\n\n3 0.5 0.5 0.2 0.2\n", "l.txt:3: class id 3 out of range"},
        {"-1 0.5 0.5 0.2 0.2\n", "l.txt:1: class id -1 out of range"},
        {"1.5 0.5 0.5 0.2 0.2\n", "l.txt:1: class id 1.5 out of range"},
        {"0 0.5 0.5 1.0001 0.2\n", "l.txt:1: coordinate 1.0001 outside [0, 1]"},
        {"0 0.5 -0.1 0.2 0.2\n", "l.txt:1: coordinate -0.1 outside [0, 1]"},
        {"0 nan 0.5 0.2 0.2\n", "l.txt:1: 'nan' is not a number"},
        {"0 0x1p-1 0.5 0.2 0.2\n", "l.txt:1: '0x1p-1' is not a number"},
        {"0 0.1 0.1 0.3 0.1 0.3\n", "l.txt:1: expected 5 values"},
        {"0 0.1 0.1 0.3 0.1 0.3 0.4 0.1\n", "l.txt:1: polygon needs class and x y pairs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rows = (hy__val_label *)1;
        ASSERT_ERR(hy__val_labels_parse(bad[i].text, strlen(bad[i].text), "l.txt", 3, &rows, &n),
                   HY_ERR_FORMAT);
        ASSERT_CONTAINS(hy_last_error(), bad[i].msg);
        ASSERT_TRUE(rows == (hy__val_label *)1); // untouched on failure
    }
    const char nul[] = "0 0.5\0 0.5 0.2 0.2";
    ASSERT_ERR(hy__val_labels_parse(nul, sizeof nul - 1, "l.txt", 3, &rows, &n), HY_ERR_FORMAT);
}

HY_TEST(polygon_labels_become_boxes) {
    hy__val_label *rows;
    int n;
    const char *t =
        "1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n0 0.5 0.5 0.2 0.2\n"; // any > 6 values: polygons
    ASSERT_OK(hy__val_labels_parse(t, strlen(t), "s.txt", 2, &rows, &n));
    ASSERT_EQ(n, 2);
    ASSERT_NEAR(rows[0].x, 0.2, 1e-7);
    ASSERT_NEAR(rows[0].y, 0.25, 1e-7);
    ASSERT_NEAR(rows[0].w, 0.2, 1e-7);
    ASSERT_NEAR(rows[0].h, 0.3, 1e-7);
    // the 5-value line is read as two points, as Ultralytics' segments2boxes does
    ASSERT_NEAR(rows[1].x, 0.35, 1e-7);
    ASSERT_NEAR(rows[1].w, 0.3, 1e-7);
    hy__free(rows);
}

// --- datasets ------------------------------------------------------------------------------------

HY_TEST(dataset_folder_map_names_relative_path) {
    ASSERT_EQ(make_dataset_a(), 0);
    hy__val_dataset *d;
    ASSERT_OK(hy__val_dataset_load(tmp("dsA/data.yaml"), "val", &d));
    ASSERT_EQ(d->nc, 3);
    ASSERT_STREQ(d->names[0], "person");
    ASSERT_STREQ(d->names[1], "bicycle");
    ASSERT_STREQ(d->names[2], "dog");
    ASSERT_CONTAINS(d->root, "dsA/root");
    // usable: a b i j k p t (header fine, decoding fails later) sub/deep.JPG; hidden files and
    // notes.txt are not images
    ASSERT_EQ(d->n, 8);
    for (size_t i = 1; i < d->n; i++)
        ASSERT_TRUE(strcmp(d->items[i - 1].im_file, d->items[i].im_file) < 0);
    ASSERT_TRUE(find_item(d, "/sub/deep.JPG") != NULL);
    ASSERT_TRUE(find_item(d, ".hidden.jpg") == NULL);
    const hy__val_item *a = find_item(d, "/a.jpg");
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(a->n_labels, 2);
    ASSERT_EQ(a->labels[1].cls, 2);
    hy_image *img;
    ASSERT_OK(hy_image_load(a->im_file, &img));
    ASSERT_EQ(a->w, img->width);
    ASSERT_EQ(a->h, img->height);
    hy_image_free(img);
    ASSERT_EQ(find_item(d, "/b.jpg")->n_labels, 0); // no label file: background
    ASSERT_EQ(find_item(d, "/i.jpg")->n_labels, 0); // empty label file: background
    ASSERT_EQ(find_item(d, "/j.jpg")->n_labels, 2); // duplicate removed
    ASSERT_EQ(find_item(d, "/p.png")->w, 64);
    ASSERT_EQ(d->n_backgrounds, 2);
    ASSERT_EQ(d->n_instances, 2 + 2 + 1 + 1 + 1 + 1);
    // each problem named with its file (and line), the image skipped
    ASSERT_TRUE(has_warning(d, "labels/val/c.txt:2: expected 5 values", "image"));
    ASSERT_TRUE(has_warning(d, "labels/val/d.txt:1: class id 7 out of range", "c.jpg") == 0);
    ASSERT_TRUE(has_warning(d, "labels/val/d.txt:1: class id 7 out of range", "d.jpg skipped"));
    ASSERT_TRUE(
        has_warning(d, "labels/val/e.txt:3: coordinate 1.2 outside [0, 1]", "e.jpg skipped"));
    ASSERT_TRUE(has_warning(d, "images/val/g.bmp: not a JPEG or PNG file", "skipped"));
    ASSERT_TRUE(has_warning(d, "images/val/h.jpg: not a JPEG or PNG file", "skipped"));
    ASSERT_TRUE(
        has_warning(d, "images/val/tiny.png: image size 8x8 is under 10 pixels", "skipped"));
    ASSERT_TRUE(has_warning(d, "labels/val/j.txt: 1 duplicate label removed", NULL));
    ASSERT_EQ(d->n_warnings, 7);
    hy__val_dataset_free(d);
}

HY_TEST(dataset_lists_txt_and_absolute_path) {
    ASSERT_EQ(make_dataset_a(), 0);
    char yaml[8192], list[8192];
    // list file: "./" lines are relative to the list's folder, others as written (absolute)
    snprintf(list, sizeof list,
             "./root/images/val/a.jpg\n%s\n\n./root/images/val/missing.jpg\n./root/images/val/"
             "notes.txt\n",
             tmp("dsA/root/images/val/p.png"));
    ASSERT_EQ(write_text(tmp("dsA/val_list.txt"), list), 0);
    mkdirs(tmp("dsA/root/images/extra"));
    ASSERT_EQ(copy_file(tmp("dsA/root/images/val/a.jpg"), tmp("dsA/root/images/extra/z.jpg"), 0),
              0);
    // names as a flow list, absolute 'path', val = [folder, list file]
    snprintf(
        yaml, sizeof yaml,
        "path: %s\nval: [images/extra, ../val_list.txt]\nnames: ['person', bicycle, \"dog\"]\n",
        tmp("dsA/root"));
    ASSERT_EQ(write_text(tmp("dsA/list.yaml"), yaml), 0);
    hy__val_dataset *d;
    ASSERT_OK(hy__val_dataset_load(tmp("dsA/list.yaml"), "val", &d));
    ASSERT_EQ(d->nc, 3);
    ASSERT_STREQ(d->names[2], "dog");
    ASSERT_EQ(d->n, 3); // z.jpg, a.jpg, p.png; missing.jpg reported
    ASSERT_TRUE(find_item(d, "/extra/z.jpg") != NULL);
    ASSERT_TRUE(find_item(d, "/val/a.jpg") != NULL);
    ASSERT_TRUE(find_item(d, "/val/p.png") != NULL);
    ASSERT_EQ(find_item(d, "/extra/z.jpg")->n_labels, 0); // labels/extra/z.txt does not exist
    ASSERT_TRUE(has_warning(d, "missing.jpg", "skipped"));
    hy__val_dataset_free(d);
    // 'validation' stands for a missing 'val'; 'test' may be absent
    ASSERT_EQ(
        write_text(tmp("dsA/alias.yaml"), "path: root\nvalidation: images/val\nnames: [a, b, c]\n"),
        0);
    ASSERT_OK(hy__val_dataset_load(tmp("dsA/alias.yaml"), "val", &d));
    ASSERT_EQ(d->n, 8);
    hy__val_dataset_free(d);
    ASSERT_ERR(hy__val_dataset_load(tmp("dsA/alias.yaml"), "test", &d), HY_ERR_NOT_FOUND);
    ASSERT_CONTAINS(hy_last_error(), "alias.yaml: no 'test' split");
}

HY_TEST(dataset_yaml_errors_name_the_file) {
    ASSERT_EQ(make_dataset_a(), 0);
    hy__val_dataset *d = (hy__val_dataset *)1;
    ASSERT_ERR(hy__val_dataset_load(tmp("dsA/nope.yaml"), "val", &d), HY_ERR_NOT_FOUND);
    ASSERT_CONTAINS(hy_last_error(), "nope.yaml");
    struct {
        const char *yaml, *msg;
        hy_status st;
    } bad[] = {
        {"path: root\nval: [images/val\n", "bad.yaml:", HY_ERR_FORMAT}, // YAML syntax
        {"- just\n- a list\n", "bad.yaml: expected a mapping", HY_ERR_FORMAT},
        {"path: root\nval: images/val\n", "bad.yaml: needs 'names'", HY_ERR_FORMAT},
        {"path: root\nval: images/val\nnc: 2\nnames: [a, b, c]\n",
         "'names' has 3 entries but 'nc' is 2", HY_ERR_FORMAT},
        {"path: root\nval: images/val\nnames: {0: a, 2: c}\n",
         "names: 2-class map requires ids 0-1, got 2", HY_ERR_FORMAT},
        {"path: root\nval: images/val\nnames: {zero: a}\n", "names: key 'zero' is not a class id",
         HY_ERR_FORMAT},
        {"path: root\nval: images/nothing_here\nnames: [a]\n",
         "images/nothing_here' does not exist", HY_ERR_NOT_FOUND},
        {"path: root\ntrain: images/val\nnames: [a]\n", "no 'val' split", HY_ERR_NOT_FOUND},
        {"path: root\nval: {a: b}\nnames: [a]\n", "'val' must be a path or a list of paths",
         HY_ERR_FORMAT},
        {"path: root\nval: labels/val\nnames: [a]\n", "val: no images found", HY_ERR_NOT_FOUND},
        {"\x01\x02", "bad.yaml:", HY_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ASSERT_EQ(write_text(tmp("dsA/bad.yaml"), bad[i].yaml), 0);
        hy_status st = hy__val_dataset_load(tmp("dsA/bad.yaml"), "val", &d);
        if (st != bad[i].st) HY_FAIL_("case %zu: %s (%s)", i, hy_status_name(st), hy_last_error());
        ASSERT_CONTAINS(hy_last_error(), bad[i].msg);
        ASSERT_TRUE(d == (hy__val_dataset *)1);
    }
}

HY_TEST(shipped_datasets) {
    hy__val_dataset *d;
    ASSERT_OK(hy__val_dataset_load(hy_test_asset("datasets/coco128/data.yaml"), "val", &d));
    ASSERT_EQ(d->n, 128);
    ASSERT_EQ(d->n_instances, 929);
    ASSERT_EQ(d->n_backgrounds, 2);
    ASSERT_EQ(d->n_warnings, 0); // orphan label files are ignored silently
    ASSERT_EQ(d->nc, 80);
    ASSERT_STREQ(d->names[79], "toothbrush");
    ASSERT_EQ(find_item(d, "/000000000250.jpg")->n_labels, 0);
    ASSERT_EQ(find_item(d, "/000000000508.jpg")->n_labels, 0);
    hy__val_dataset_free(d);
    ASSERT_OK(hy__val_dataset_load(hy_test_asset("datasets/coco8/data.yaml"), "val", &d));
    ASSERT_EQ(d->n, 4);
    ASSERT_EQ(d->n_instances, 17);
    hy__val_dataset_free(d);
    ASSERT_OK(hy__val_dataset_load(hy_test_asset("datasets/coco8/data.yaml"), "train", &d));
    ASSERT_EQ(d->n, 4);
    ASSERT_EQ(d->n_instances, 13); // 30 boxes in coco8, 17 of them in val
    hy__val_dataset_free(d);
    ASSERT_OK(hy__val_dataset_load(hy_test_asset("datasets/bccd/data.yaml"), "val", &d));
    ASSERT_EQ(d->n, 87);
    ASSERT_EQ(d->n_instances, 1137);
    ASSERT_EQ(d->nc, 3);
    ASSERT_STREQ(d->names[1], "RBC");
    hy__val_dataset_free(d);
}

// --- the run skips what cannot be used -----------------------------------------------------------

HY_TEST(val_run_skips_bad_images) {
    ASSERT_EQ(make_dataset_a(), 0);
    hy_model *m;
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = 2;
    ASSERT_OK(hy_model_load(hy_test_asset("weights/yolov8n.pt"), &mp, &m));
    hy_val_params vp = hy_val_default_params();
    vp.data = tmp("dsA/data.yaml");
    vp.imgsz = 320; // a.jpg etc. (640 long side) are shrunk with INTER_AREA, p.png enlarged
    vp.batch = 3;
    hy_val_result *r;
    ASSERT_OK(hy_val_run(m, &vp, &r));
    const hy_val_metrics *all = hy_val_result_all(r);
    ASSERT_EQ(all->images, 7);    // t.jpg fails to decode: skipped
    ASSERT_EQ(all->instances, 7); // t.jpg's label is not counted
    int found = 0;
    for (size_t i = 0; i < hy_val_result_num_warnings(r); i++)
        found += strstr(hy_val_result_warning(r, i), "t.jpg") &&
                 strstr(hy_val_result_warning(r, i), "image skipped");
    ASSERT_EQ(found, 1);
    ASSERT_EQ(hy_val_result_num_warnings(r), 9);
    char *js;
    ASSERT_OK(hy_val_result_json(r, &js));
    ASSERT_CONTAINS(js, "\"warnings\"");
    ASSERT_CONTAINS(js, "d.txt:1: class id 7 out of range");
    hy_free(js);
    hy_val_result_free(r);
    vp.plots_dir = tmp("dsA/no/such/dir");
    ASSERT_ERR(hy_val_run(m, &vp, &r), HY_ERR_NOT_FOUND);
    ASSERT_CONTAINS(hy_last_error(), "no/such/dir");
    vp.plots_dir = NULL;
    vp.imgsz = 100;
    ASSERT_ERR(hy_val_run(m, &vp, &r), HY_ERR_INVALID_ARG);
    hy_model_free(m);
    hy_val_result_free(NULL);
}

// --- image helpers used by val -------------------------------------------------------------------


HY_TEST(inter_area_matches_opencv) {
    // cv2.resize(hy_test_synth_rgb(sw, sh), (dw, dh), interpolation=cv2.INTER_AREA), OpenCV 4.6:
    // 2x (fast path), 3x (integer), and fractional factors.
    const struct {
        int sw, sh, dw, dh;
        uint64_t hash;
        uint8_t first[3];
    } cases[] = {
        {640, 480, 320, 240, 0x3c342d346b43c9c7ull, {28, 90, 153}},
        {960, 720, 320, 240, 0x2a51c2528e3947b4ull, {41, 102, 162}},
        {1000, 750, 640, 480, 0x5db8d0f9f4dab0c5ull, {20, 87, 150}},
        {1352, 900, 640, 427, 0x4cd03a7383b1fbcbull, {30, 91, 154}},
        {97, 61, 40, 25, 0xe3abd29718968ec4ull, {35, 96, 158}},
        {810, 1080, 480, 640, 0xada2132d623bb865ull, {23, 88, 151}},
        {500, 333, 499, 333, 0x711c5de61d784d70ull, {0, 66, 133}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t *src = hy_test_synth_rgb(cases[i].sw, cases[i].sh);
        uint8_t *dst = malloc((size_t)cases[i].dw * cases[i].dh * 3);
        ASSERT_OK(hy__resize_area_u8(src, cases[i].sw, cases[i].sh, (size_t)cases[i].sw * 3, dst,
                                     cases[i].dw, cases[i].dh, (size_t)cases[i].dw * 3));
        const uint64_t h = hy_test_fnv1a(dst, (size_t)cases[i].dw * cases[i].dh * 3);
        if (h != cases[i].hash || memcmp(dst, cases[i].first, 3))
            HY_FAIL_("%dx%d -> %dx%d: hash %016llx, want %016llx; first pixel %d %d %d",
                     cases[i].sw, cases[i].sh, cases[i].dw, cases[i].dh, (unsigned long long)h,
                     (unsigned long long)cases[i].hash, dst[0], dst[1], dst[2]);
        free(src);
        free(dst);
    }
    uint8_t px[12] = {0};
    ASSERT_ERR(hy__resize_area_u8(px, 2, 2, 6, px, 3, 1, 9), HY_ERR_INVALID_ARG); // enlarging
}

HY_TEST(letterbox_without_scaleup) {
    // LetterBox(scaleup=False): a 320x240 image into a 640x512 batch shape is padded, not enlarged
    hy__letterbox lb = hy__letterbox_plan_ex(320, 240, 640, 512, 0, 0, 32);
    ASSERT_NEAR(lb.r, 1, 0);
    ASSERT_EQ(lb.unpad_w, 320);
    ASSERT_EQ(lb.left, 160);
    ASSERT_EQ(lb.right, 160);
    ASSERT_EQ(lb.top, 136);
    ASSERT_EQ(lb.bottom, 136);
    ASSERT_EQ(lb.out_w, 640);
    ASSERT_EQ(lb.out_h, 512);
    // odd padding: dw = 3 -> left round(1.4) = 1, right round(1.6) = 2; pad_x 1.5 for the boxes
    lb = hy__letterbox_plan_ex(637, 480, 640, 480, 0, 0, 32);
    ASSERT_EQ(lb.left, 1);
    ASSERT_EQ(lb.right, 2);
    ASSERT_NEAR(lb.pad_x, 1.5, 0);
    // scaleup=1 is the old behaviour
    lb = hy__letterbox_plan_ex(320, 240, 640, 512, 0, 1, 32);
    ASSERT_NEAR(lb.r, 2, 0);
    hy__letterbox lb2 = hy__letterbox_plan(320, 240, 640, 512, 0, 32);
    ASSERT_EQ(lb2.unpad_w, lb.unpad_w);
}

HY_TEST(cleanup) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", tmp("dsA"));
    ASSERT_EQ(system(cmd), 0);
}

HY_TEST_MAIN()
