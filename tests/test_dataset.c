/* hy__val_dataset_verify_decode (src/data/dataset.c): images whose header probes fine but
 * whose body does not decode (a JPEG cut inside its pixel data, a PNG with garbage after a
 * valid IHDR, a file emptied after the load) are removed with a warning naming them, the
 * counts follow, the rest keep their order; a JPEG missing only its end marker is kept (the
 * decoder repairs it, as Ultralytics "restores" it); the result does not depend on the
 * threads. */
#include <sys/stat.h>

#include "data/dataset.h"
#include "hy_test.h"
#include "image/image.h"
#include "val/plots.h"

// --- helpers -----------------------------------------------------------------------------------

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}
static int write_text(const char *path, const char *s) { return write_bytes(path, s, strlen(s)); }

/* Copies src to dst, dropping the last `drop` bytes or keeping the first `keep` (when > 0). */
static int copy_cut(const char *src, const char *dst, size_t keep, size_t drop) {
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (keep && keep < n) n = keep;
    if (drop && drop < n) n -= drop;
    return write_bytes(dst, buf, n);
}

static uint32_t crc32_png(const unsigned char *p, size_t n) { // PNG's CRC-32 (poly 0xEDB88320)
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static size_t put_chunk(unsigned char *o, const char *type, const unsigned char *data, uint32_t n) {
    o[0] = (unsigned char)(n >> 24), o[1] = (unsigned char)(n >> 16), o[2] = (unsigned char)(n >> 8);
    o[3] = (unsigned char)n;
    memcpy(o + 4, type, 4);
    if (n) memcpy(o + 8, data, n);
    const uint32_t c = crc32_png(o + 4, n + 4);
    o[8 + n] = (unsigned char)(c >> 24), o[9 + n] = (unsigned char)(c >> 16);
    o[10 + n] = (unsigned char)(c >> 8), o[11 + n] = (unsigned char)c;
    return 12 + n;
}

/* A PNG with a valid signature and IHDR (w x h, RGB 8-bit), then an IDAT of garbage (valid
 * CRC: the zlib stream is what is wrong) and IEND. */
static int garbage_png(const char *path, uint32_t w, uint32_t h) {
    unsigned char o[1024], ihdr[13] = {0}, junk[200];
    memcpy(o, "\x89PNG\r\n\x1a\n", 8);
    for (int k = 0; k < 4; k++) {
        ihdr[k] = (unsigned char)(w >> (24 - 8 * k));
        ihdr[4 + k] = (unsigned char)(h >> (24 - 8 * k));
    }
    ihdr[8] = 8, ihdr[9] = 2; // 8-bit RGB, deflate, no filter method / interlace
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
    size_t n = 8;
    n += put_chunk(o + n, "IHDR", ihdr, 13);
    n += put_chunk(o + n, "IDAT", junk, sizeof junk);
    n += put_chunk(o + n, "IEND", NULL, 0);
    return write_bytes(path, o, n);
}

static int good_png(const char *path, int w, int h) {
    hy_image *img;
    if (hy__image_create(w, h, &img)) return -1;
    memset(img->data, 90, (size_t)w * h * 3);
    hy_status st = hy__png_write(path, img);
    hy_image_free(img);
    return st ? -1 : 0;
}

static const char *tmp(const char *rel) { return hy_test_tmp(rel); }

static int has_warning(const hy__val_dataset *d, const char *a, const char *b) {
    for (size_t i = 0; i < d->n_warnings; i++)
        if (strstr(d->warnings[i], a) && (!b || strstr(d->warnings[i], b))) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* tmp/dsV: 9 images, of which the load keeps 8 (z.jpg is empty) and the decode check 4. */
static int make_dataset(const char *jpg) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s' && mkdir -p '%s' '%s'", tmp("dsV"),
             tmp("dsV/images/train"), tmp("dsV/labels/train"));
    if (system(cmd) != 0) return -1;
    if (write_text(tmp("dsV/data.yaml"), "train: images/train\nval: images/train\nnames: [a, b, c]\n"))
        return -1;
    const char *I = "dsV/images/train/", *L = "dsV/labels/train/";
    char p[256];
#define IMG(name) (snprintf(p, sizeof p, "%s%s", I, name), tmp(p))
    if (copy_cut(jpg, IMG("a.jpg"), 0, 0)) return -1;    // good, 2 labels
    if (copy_cut(jpg, IMG("b.jpg"), 4000, 0)) return -1; // cut inside the pixel data
    if (copy_cut(jpg, IMG("c.jpg"), 0, 0)) return -1;    // good, background
    if (copy_cut(jpg, IMG("d.jpg"), 0, 2)) return -1;    // no end-of-image marker only: kept
    if (good_png(IMG("e.png"), 64, 48)) return -1;       // good PNG
    if (garbage_png(IMG("f.png"), 64, 48)) return -1;    // garbage after IHDR, background
    if (copy_cut(jpg, IMG("g.jpg"), 0, 0)) return -1;    // emptied after the load
    if (garbage_png(IMG("h.png"), 4096, 2100)) return -1; // over HY_VERIFY_PAR_PIXELS: alone
    if (write_bytes(IMG("z.jpg"), "", 0)) return -1;       // zero bytes: skipped by the load
#undef IMG
    const struct {
        const char *name, *text;
    } labels[] = {
        {"a.txt", "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"},
        {"b.txt", "2 0.5 0.5 0.2 0.2\n"},
        {"d.txt", "1 0.5 0.5 0.2 0.2\n"},
        {"e.txt", "0 0.5 0.5 0.4 0.4\n"},
        {"g.txt", "0 0.5 0.5 0.2 0.2\n"},
        {"h.txt", "1 0.5 0.5 0.2 0.2\n"},
        {"z.txt", "1 0.5 0.5 0.2 0.2\n"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
        snprintf(p, sizeof p, "%s%s", L, labels[i].name);
        if (write_text(tmp(p), labels[i].text)) return -1;
    }
    return 0;
}

/* Loads dsV (g.jpg emptied after the load) and runs the decode check on threads. */
static hy_status load_and_verify(int threads, hy__val_dataset **out, size_t *removed) {
    hy__val_dataset *d = NULL;
    hy__threadpool *tp = NULL;
    hy_status st = hy__val_dataset_load(tmp("dsV/data.yaml"), "train", &d);
    if (st) return st;
    if (d->n != 8 || d->n_instances != 7 || d->n_backgrounds != 2 ||
        !has_warning(d, "z.jpg: empty file (0 bytes); image skipped", NULL)) {
        st = hy__error(HY_ERR_FORMAT, "unexpected load: %zu images, %zu instances", d->n,
                       d->n_instances);
        hy__val_dataset_free(d);
        return st;
    }
    if (write_bytes(tmp("dsV/images/train/g.jpg"), "", 0)) st = HY_ERR_IO;
    if (!st && threads > 1) st = hy__threadpool_create(threads, &tp);
    if (!st) st = hy__val_dataset_verify_decode(d, tp, removed);
    hy__threadpool_free(tp);
    if (st) {
        hy__val_dataset_free(d);
        return st;
    }
    *out = d;
    return HY_OK;
}

// --- tests ---------------------------------------------------------------------------------------

HY_TEST(verify_decode_removes_undecodable_images) {
    const char *jpg = hy_test_asset("datasets/coco8/images/val/000000000036.jpg");
    ASSERT_EQ(make_dataset(jpg), 0);
    hy__val_dataset *d = NULL;
    size_t removed = 99;
    ASSERT_OK(load_and_verify(1, &d, &removed));
    ASSERT_EQ(removed, 4);
    ASSERT_EQ(d->n, 4);
    const char *kept[] = {"/a.jpg", "/c.jpg", "/d.jpg", "/e.png"}; // order kept
    for (size_t i = 0; i < 4; i++) ASSERT_TRUE(ends_with(d->items[i].im_file, kept[i]));
    ASSERT_EQ(d->items[0].n_labels, 2);
    ASSERT_EQ(d->items[1].n_labels, 0);
    ASSERT_EQ(d->n_instances, 4);   // a 2 + d 1 + e 1 (b, g, h removed)
    ASSERT_EQ(d->n_backgrounds, 1); // c (f removed)
    const char *gone[] = {"b.jpg", "f.png", "g.jpg", "h.png"};
    for (size_t i = 0; i < 4; i++) {
        char want[512];
        snprintf(want, sizeof want, "%s: cannot decode (", gone[i]);
        if (!has_warning(d, want, "); image skipped")) {
            for (size_t k = 0; k < d->n_warnings; k++) fprintf(stderr, "  %s\n", d->warnings[k]);
            ASSERT_TRUE(!"no 'cannot decode' warning for a removed image");
        }
    }
    ASSERT_TRUE(has_warning(d, "b.jpg: cannot decode (JPEG: Premature end", NULL));
    ASSERT_TRUE(has_warning(d, "g.jpg: cannot decode (empty image data (0 bytes))", NULL));
    ASSERT_FALSE(has_warning(d, "d.jpg", NULL));
    ASSERT_FALSE(has_warning(d, "/dsV/images/train/b.jpg: cannot decode (/", NULL)); // path once
    // a second check finds nothing more
    ASSERT_OK(hy__val_dataset_verify_decode(d, NULL, &removed));
    ASSERT_EQ(removed, 0);
    ASSERT_EQ(d->n, 4);
    hy__val_dataset_free(d);
}

HY_TEST(verify_decode_same_result_on_threads) {
    const char *jpg = hy_test_asset("datasets/coco8/images/val/000000000036.jpg");
    hy__val_dataset *d1 = NULL, *d3 = NULL;
    size_t r1 = 0, r3 = 0;
    ASSERT_EQ(make_dataset(jpg), 0);
    ASSERT_OK(load_and_verify(1, &d1, &r1));
    ASSERT_EQ(make_dataset(jpg), 0);
    hy_status st = load_and_verify(3, &d3, &r3);
    if (st) hy__val_dataset_free(d1);
    ASSERT_OK(st);
    int same = r1 == r3 && d1->n == d3->n && d1->n_warnings == d3->n_warnings &&
               d1->n_instances == d3->n_instances && d1->n_backgrounds == d3->n_backgrounds;
    for (size_t i = 0; same && i < d1->n; i++)
        same = !strcmp(d1->items[i].im_file, d3->items[i].im_file);
    for (size_t i = 0; same && i < d1->n_warnings; i++)
        same = !strcmp(d1->warnings[i], d3->warnings[i]);
    hy__val_dataset_free(d1);
    hy__val_dataset_free(d3);
    ASSERT_TRUE(same);
}

HY_TEST(verify_decode_null_arguments) {
    size_t removed;
    ASSERT_ERR(hy__val_dataset_verify_decode(NULL, NULL, &removed), HY_ERR_INVALID_ARG);
}

HY_TEST(cleanup) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", tmp("dsV"));
    ASSERT_EQ(system(cmd), 0);
}

HY_TEST_MAIN()
