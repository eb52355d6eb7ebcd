/* Image decode/encode/draw tests. Expected pixels are computed here from the bytes the test
 * itself encodes (PNG via libspng's encoder, JPEG via libjpeg) and from the shared assets'
 * MANIFEST; bus.jpg's exact decode is checked through the letterbox reference in
 * test_letterbox.c. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <jpeglib.h>
#include <spng.h>
#include <zlib.h>

#include "hy_test.h"
#include "image/image.h"

// --- helpers -----------------------------------------------------------------------------------

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Encodes raw PNG-layout rows (SPNG_FMT_PNG: packed below 8 bits, host-endian 16-bit). */
static uint8_t *png_encode(const void *raw, size_t rawlen, uint32_t w, uint32_t h, int depth, int ct,
                           const struct spng_plte *plte, size_t *out_len) {
    spng_ctx *e = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(e, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {w, h, (uint8_t)depth, (uint8_t)ct, 0, 0, 0};
    int r = spng_set_ihdr(e, &ih);
    if (!r && plte) r = spng_set_plte(e, (struct spng_plte *)plte);
    if (!r) r = spng_encode_image(e, raw, rawlen, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    uint8_t *buf = r ? NULL : spng_get_png_buffer(e, out_len, &r);
    if (r) fprintf(stderr, "  spng encode: %s\n", spng_strerror(r));
    spng_ctx_free(e);
    return buf; // free()
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Signature + IHDR (valid CRC) claiming w x h RGB8, + IEND: enough to reach the size check. */
static size_t png_header_only(uint8_t *b, uint32_t w, uint32_t h) {
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    put_be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    b[24] = 8; // depth
    b[25] = 2; // RGB
    b[26] = b[27] = b[28] = 0;
    put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
    put_be32(b + 33, 0);
    memcpy(b + 37, "IEND", 4);
    put_be32(b + 41, (uint32_t)crc32(0, b + 37, 4));
    return 45;
}

static uint8_t px_val(int x, int y, int c) { return (uint8_t)(x * 37 + y * 71 + c * 101 + x * y * 3); }

static hy_image *decode_ok(const void *buf, size_t len) {
    hy_image *img = NULL;
    hy_status st = hy_image_decode(buf, len, &img);
    if (st) fprintf(stderr, "  decode: %s: %s\n", hy_status_name(st), hy_last_error());
    return img;
}

// --- assets ------------------------------------------------------------------------------------

HY_TEST(decode_all_sample_images) {
    static const struct {
        const char *path;
        int w, h;
    } imgs[] = {
        {"images/bus.jpg", 810, 1080},         {"images/zidane.jpg", 1280, 720},
        {"images/boats.jpg", 1920, 1080},      {"images/airport.jpg", 1280, 759},
        {"images/darknet/dog.jpg", 768, 576},  {"images/darknet/horses.jpg", 773, 512},
        {"images/darknet/person.jpg", 640, 424}, {"images/darknet/giraffe.jpg", 500, 500},
        {"images/darknet/eagle.jpg", 773, 512}, {"images/darknet/kite.jpg", 1352, 900},
    };
    int64_t live = hy__alloc_live();
    for (size_t i = 0; i < HY_ARRAY_LEN(imgs); i++) {
        hy_image *img = NULL;
        ASSERT_OK(hy_image_load(hy_test_asset(imgs[i].path), &img));
        ASSERT_EQ(img->width, imgs[i].w);
        ASSERT_EQ(img->height, imgs[i].h);
        // the header-only probe gives the decoded size
        size_t len;
        uint8_t *bytes = read_all(hy_test_asset(imgs[i].path), &len);
        ASSERT_TRUE(bytes != NULL);
        int pw = 0, ph = 0;
        hy_status ps = hy_image_probe(bytes, len, &pw, &ph);
        free(bytes);
        ASSERT_OK(ps);
        ASSERT_EQ(pw, imgs[i].w);
        ASSERT_EQ(ph, imgs[i].h);
        // not flat: a real photo has a wide range in every channel
        int lo[3] = {255, 255, 255}, hi[3] = {0, 0, 0};
        for (size_t p = 0; p < (size_t)img->width * img->height; p++)
            for (int c = 0; c < 3; c++) {
                int v = img->data[p * 3 + c];
                lo[c] = v < lo[c] ? v : lo[c];
                hi[c] = v > hi[c] ? v : hi[c];
            }
        for (int c = 0; c < 3; c++) ASSERT_TRUE(hi[c] - lo[c] > 100);
        hy_image_free(img);
    }
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(bus_known_pixels) {
    // RGB of a few bus.jpg pixels as cv2.imread (then BGR->RGB) gives them.
    static const struct {
        int x, y;
        uint8_t rgb[3];
    } px[] = {{0, 0, {172, 146, 119}}, {405, 540, {2, 85, 155}}, {809, 1079, {94, 88, 98}}};
    hy_image *img = NULL;
    ASSERT_OK(hy_image_load(hy_test_asset("images/bus.jpg"), &img));
    for (size_t i = 0; i < HY_ARRAY_LEN(px); i++) {
        const uint8_t *p = img->data + ((size_t)px[i].y * img->width + px[i].x) * 3;
        ASSERT_EQ(p[0], px[i].rgb[0]);
        ASSERT_EQ(p[1], px[i].rgb[1]);
        ASSERT_EQ(p[2], px[i].rgb[2]);
    }
    hy_image_free(img);
}

// --- JPEG --------------------------------------------------------------------------------------

HY_TEST(jpeg_round_trip) {
    const int w = 64, h = 48;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            rgb[(y * w + x) * 3 + 0] = (uint8_t)(x * 4);
            rgb[(y * w + x) * 3 + 1] = (uint8_t)(y * 5);
            rgb[(y * w + x) * 3 + 2] = (uint8_t)(128 + (x - y));
        }
    hy_image *src = NULL, *back = NULL;
    ASSERT_OK(hy_image_from_rgb(rgb, w, h, 0, &src));
    const char *path = hy_test_tmp("round.jpg");
    ASSERT_OK(hy_image_save_jpeg(src, path, 95));
    ASSERT_OK(hy_image_load(path, &back));
    ASSERT_EQ(back->width, w);
    ASSERT_EQ(back->height, h);
    double sum = 0;
    int maxd = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int d = abs((int)back->data[i] - (int)rgb[i]);
        sum += d;
        maxd = d > maxd ? d : maxd;
    }
    ASSERT_TRUE(sum / (w * h * 3) < 2.0);
    ASSERT_TRUE(maxd < 24);
    // bad arguments
    ASSERT_ERR(hy_image_save_jpeg(src, path, 0), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_image_save_jpeg(src, path, 101), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_image_save_jpeg(src, "/nonexistent-dir/x.jpg", 90), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), "/nonexistent-dir/x.jpg");
    hy_image_free(src);
    hy_image_free(back);
    free(rgb);
}

/* Writes a w x h JPEG from raw samples with libjpeg (gray or CMYK input). */
static uint8_t *jpeg_encode_raw(const uint8_t *px, int w, int h, int comps, J_COLOR_SPACE cs,
                                int progressive, size_t *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr em;
    ci.err = jpeg_std_error(&em);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&ci, &buf, &n);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = cs;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, progressive ? 90 : 100, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)ci.next_scanline * w * comps);
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *len = n;
    return buf; // free()
}

HY_TEST(jpeg_gray_and_cmyk) {
    const int w = 16, h = 16; // flat 8x8 blocks: nearly lossless at quality 100
    uint8_t g[16 * 16], cmyk[16 * 16 * 4];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int blk = (y / 8) * 2 + x / 8;
            g[y * w + x] = (uint8_t)(30 + blk * 60);
            for (int c = 0; c < 4; c++) cmyk[(y * w + x) * 4 + c] = (uint8_t)(20 + blk * 50 + c * 30);
        }
    size_t n;
    uint8_t *jg = jpeg_encode_raw(g, w, h, 1, JCS_GRAYSCALE, 0, &n);
    hy_image *img = decode_ok(jg, n);
    ASSERT_TRUE(img != NULL);
    for (int i = 0; i < w * h; i++) {
        ASSERT_EQ(img->data[3 * i], img->data[3 * i + 1]);
        ASSERT_EQ(img->data[3 * i], img->data[3 * i + 2]);
        ASSERT_TRUE(abs(img->data[3 * i] - g[i]) <= 1);
    }
    hy_image_free(img);
    free(jg);

    uint8_t *jc = jpeg_encode_raw(cmyk, w, h, 4, JCS_CMYK, 0, &n);
    img = decode_ok(jc, n);
    ASSERT_TRUE(img != NULL);
    for (int i = 0; i < w * h; i++) {
        // OpenCV: v = k - ((255 - v) * k >> 8) for C->R, M->G, Y->B
        int k = cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            int want = k - ((255 - cmyk[4 * i + c]) * k >> 8);
            ASSERT_TRUE(abs(img->data[3 * i + c] - want) <= 2);
        }
    }
    hy_image_free(img);
    free(jc);
}

static void put16(uint8_t *p, unsigned v, int be) {
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v, int be) {
    put16(p + (be ? 0 : 2), v >> 16, be);
    put16(p + (be ? 2 : 0), v & 0xFFFF, be);
}

HY_TEST(jpeg_progressive) {
    const int w = 96, h = 64;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        rgb[3 * i] = (uint8_t)(i % w * 2);
        rgb[3 * i + 1] = (uint8_t)(i / w * 3);
        rgb[3 * i + 2] = (uint8_t)(200 - i % w);
    }
    size_t n;
    uint8_t *jp = jpeg_encode_raw(rgb, w, h, 3, JCS_RGB, 1, &n);
    write_all(hy_test_tmp("progressive.jpg"), jp, n); // kept for inspection
    hy_image *img = decode_ok(jp, n);
    ASSERT_TRUE(img != NULL);
    double sum = 0;
    for (int i = 0; i < w * h * 3; i++) sum += abs(img->data[i] - rgb[i]);
    ASSERT_TRUE(sum / (w * h * 3) < 3.0);
    hy_image_free(img);
    int64_t live = hy__alloc_live();
    for (size_t cut = n / 4; cut < n; cut += n / 7) { // cut inside later scans: an error by
        img = NULL;                                     // default (missing pixel data)
        ASSERT_ERR(hy_image_decode(jp, cut, &img), HY_ERR_FORMAT);
        ASSERT_TRUE(img == NULL);
        // OpenCV's level: decoded and flagged, or an error for a cut inside a scan header
        hy_status st = hy_image_decode_ex(jp, cut, HY_IMAGE_REPAIR_TRUNCATED, &img);
        ASSERT_TRUE(st == HY_OK || st == HY_ERR_FORMAT);
        ASSERT_TRUE(st == HY_OK ? img && img->flags == HY_IMAGE_FLAG_TRUNCATED : img == NULL);
        hy_image_free(img);
    }
    ASSERT_EQ(hy__alloc_live(), live);
    free(jp);
    free(rgb);
}

/* JPEG bytes with an APP1 EXIF segment (TIFF header + IFD0 holding one entry, Orientation)
 * inserted after SOI, in big- or little-endian TIFF byte order. */
static uint8_t *with_exif(const uint8_t *jpg, size_t len, int orientation, int be, size_t *out_len) {
    uint8_t tiff[26] = {0};
    memcpy(tiff, be ? "MM" : "II", 2);
    put16(tiff + 2, 42, be);
    put32(tiff + 4, 8, be);     // IFD0 offset
    put16(tiff + 8, 1, be);     // entry count
    put16(tiff + 10, 0x0112, be); // tag Orientation
    put16(tiff + 12, 3, be);    // type SHORT
    put32(tiff + 14, 1, be);    // count
    put16(tiff + 18, (unsigned)orientation, be); // value, left-justified in 4 bytes
    put32(tiff + 22, 0, be);    // no next IFD
    const size_t seg = 2 + 2 + 6 + sizeof tiff; // marker, length, "Exif\0\0", TIFF
    uint8_t *out = malloc(len + seg);
    memcpy(out, jpg, 2); // SOI
    out[2] = 0xFF;
    out[3] = 0xE1;
    out[4] = (uint8_t)((seg - 2) >> 8);
    out[5] = (uint8_t)(seg - 2);
    memcpy(out + 6, "Exif\0\0", 6);
    memcpy(out + 12, tiff, sizeof tiff);
    memcpy(out + 2 + seg, jpg + 2, len - 2);
    *out_len = len + seg;
    return out;
}

HY_TEST(jpeg_exif_orientation) {
    const int w = 24, h = 16;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        rgb[3 * i] = (uint8_t)((i % w) * 10);
        rgb[3 * i + 1] = (uint8_t)((i / w) * 15);
        rgb[3 * i + 2] = (uint8_t)(i % 7 * 30);
    }
    hy_image *src = NULL, *plain = NULL;
    ASSERT_OK(hy_image_from_rgb(rgb, w, h, 0, &src));
    const char *path = hy_test_tmp("exif_base.jpg");
    ASSERT_OK(hy_image_save_jpeg(src, path, 95));
    size_t len;
    uint8_t *jpg = read_all(path, &len);
    ASSERT_TRUE(jpg != NULL);
    ASSERT_OK(hy_image_decode(jpg, len, &plain));
    for (int be = 0; be < 2; be++) {
        for (int o = 1; o <= 8; o++) {
            size_t n;
            uint8_t *ex = with_exif(jpg, len, o, be, &n);
            hy_image *img = decode_ok(ex, n);
            int pw = 0, ph = 0;
            hy_status ps = hy_image_probe(ex, n, &pw, &ph);
            free(ex);
            ASSERT_TRUE(img != NULL);
            ASSERT_OK(ps);
            const int tr = o >= 5;
            ASSERT_EQ(img->width, tr ? h : w);
            ASSERT_EQ(img->height, tr ? w : h);
            ASSERT_EQ(pw, img->width); // the probe applies the orientation too
            ASSERT_EQ(ph, img->height);
            // Where each output pixel comes from in the stored image (EXIF 2..8 semantics).
            for (int y = 0; y < img->height; y++)
                for (int x = 0; x < img->width; x++) {
                    int sx, sy;
                    const int W = img->width, H = img->height;
                    switch (o) {
                    case 1: sx = x, sy = y; break;
                    case 2: sx = W - 1 - x, sy = y; break;
                    case 3: sx = W - 1 - x, sy = H - 1 - y; break;
                    case 4: sx = x, sy = H - 1 - y; break;
                    case 5: sx = y, sy = x; break;
                    case 6: sx = y, sy = W - 1 - x; break;         // rotate 90 cw
                    case 7: sx = H - 1 - y, sy = W - 1 - x; break;
                    default: sx = H - 1 - y, sy = x; break;        // 8: rotate 90 ccw
                    }
                    const uint8_t *a = img->data + ((size_t)y * W + x) * 3;
                    const uint8_t *b = plain->data + ((size_t)sy * w + sx) * 3;
                    if (memcmp(a, b, 3) != 0) {
                        fprintf(stderr, "  orientation %d (%s) pixel %d,%d\n", o, be ? "MM" : "II", x, y);
                        ASSERT_TRUE(0);
                    }
                }
            hy_image_free(img);
        }
    }
    free(jpg);
    free(rgb);
    hy_image_free(src);
    hy_image_free(plain);
}

// --- PNG ---------------------------------------------------------------------------------------

typedef struct png_case {
    const char *name;
    int depth, ct, nch;
} png_case;

/* Builds a 5x3 image of the given type, encodes it, decodes it and checks every pixel against
 * the conversion OpenCV's imread(IMREAD_COLOR) applies (libpng strip_16, strip_alpha,
 * expand_gray_1_2_4_to_8, palette_to_rgb with a zero-filled 256-entry palette, gray_to_rgb). */
static int png_check(const png_case *pc, const struct spng_plte *plte) {
    enum { W = 5, H = 3 };
    const int depth = pc->depth, nch = pc->nch, maxv = (1 << depth) - 1;
    const int pal = pc->ct == SPNG_COLOR_TYPE_INDEXED;
    const size_t rowbytes = ((size_t)W * nch * depth + 7) / 8;
    uint8_t *raw = calloc(H, rowbytes);
    uint8_t want[W * H * 3];
    for (int y = 0; y < H; y++) {
        uint8_t *row = raw + y * rowbytes;
        for (int x = 0; x < W; x++) {
            int v[4] = {0}; // samples at the PNG's own depth
            for (int c = 0; c < nch; c++) {
                v[c] = depth == 16 ? (px_val(x, y, c) << 8 | (255 - px_val(x, y, c))) // noisy low byte
                                   : px_val(x, y, c) & maxv;
                if (pal) v[c] = (x + y * W) % (int)(plte->n_entries + 1); // one index past the end
                const int s = x * nch + c;
                if (depth == 16) {
                    uint16_t u = (uint16_t)v[c];
                    memcpy(row + 2 * s, &u, 2); // host-endian for SPNG_FMT_PNG
                } else if (depth == 8) {
                    row[s] = (uint8_t)v[c];
                } else {
                    const int bit = s * depth; // MSB-first packing
                    row[bit / 8] |= (uint8_t)(v[c] << (8 - depth - bit % 8));
                }
            }
            uint8_t *wp = want + (y * W + x) * 3;
            if (pal) {
                const int ok = (uint32_t)v[0] < plte->n_entries;
                wp[0] = ok ? plte->entries[v[0]].red : 0;
                wp[1] = ok ? plte->entries[v[0]].green : 0;
                wp[2] = ok ? plte->entries[v[0]].blue : 0;
            } else {
                for (int k = 0; k < 3; k++) {
                    const int c = nch <= 2 ? 0 : k; // gray replicated; alpha ignored
                    wp[k] = (uint8_t)(depth == 16 ? v[c] >> 8 : v[c] * 255 / maxv);
                }
            }
        }
    }
    size_t n = 0;
    uint8_t *png = png_encode(raw, H * rowbytes, W, H, depth, pc->ct, plte, &n);
    free(raw);
    if (!png) return 0;
    char name[64];
    snprintf(name, sizeof name, "%s.png", pc->name); // kept for inspection
    write_all(hy_test_tmp(name), png, n);
    hy_image *img = decode_ok(png, n);
    free(png);
    if (!img) return 0;
    const int ok = img->width == W && img->height == H && memcmp(img->data, want, sizeof want) == 0;
    if (!ok) fprintf(stderr, "  PNG %s: pixels differ\n", pc->name);
    hy_image_free(img);
    return ok;
}

HY_TEST(png_color_types) {
    struct spng_plte plte = {0};
    plte.n_entries = 5;
    for (int i = 0; i < 5; i++) {
        plte.entries[i].red = (uint8_t)(i * 50);
        plte.entries[i].green = (uint8_t)(255 - i * 40);
        plte.entries[i].blue = (uint8_t)(i * 13 + 7);
    }
    static const png_case cases[] = {
        {"rgb8", 8, SPNG_COLOR_TYPE_TRUECOLOR, 3},
        {"rgba8", 8, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 4},
        {"gray8", 8, SPNG_COLOR_TYPE_GRAYSCALE, 1},
        {"graya8", 8, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 2},
        {"gray1", 1, SPNG_COLOR_TYPE_GRAYSCALE, 1},
        {"gray2", 2, SPNG_COLOR_TYPE_GRAYSCALE, 1},
        {"gray4", 4, SPNG_COLOR_TYPE_GRAYSCALE, 1},
        {"rgb16", 16, SPNG_COLOR_TYPE_TRUECOLOR, 3},
        {"rgba16", 16, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 4},
        {"gray16", 16, SPNG_COLOR_TYPE_GRAYSCALE, 1},
        {"graya16", 16, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 2},
        {"pal8", 8, SPNG_COLOR_TYPE_INDEXED, 1}, // indices 0..5 of 5 entries: 5 reads black
        {"pal4", 4, SPNG_COLOR_TYPE_INDEXED, 1},
        {"pal2", 2, SPNG_COLOR_TYPE_INDEXED, 1}, // 3 entries: index 3 reads black
    };
    int64_t live = hy__alloc_live();
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        const png_case *pc = &cases[i];
        struct spng_plte p2 = plte;
        if (pc->ct == SPNG_COLOR_TYPE_INDEXED && pc->depth == 2) p2.n_entries = 3; // index 3 -> black
        if (!png_check(pc, pc->ct == SPNG_COLOR_TYPE_INDEXED ? &p2 : NULL)) {
            fprintf(stderr, "  case %s failed\n", pc->name);
            ASSERT_TRUE(0);
        }
    }
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(png_ihdr_limits) {
    uint8_t b[64];
    hy_image *img = NULL;
    int64_t live = hy__alloc_live();
    size_t n = png_header_only(b, 0, 0);
    ASSERT_ERR(hy_image_decode(b, n, &img), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "IHDR");
    // 100000 x 100000: refused from the IHDR alone, before any pixel allocation
    n = png_header_only(b, 100000, 100000);
    ASSERT_ERR(hy_image_decode(b, n, &img), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "100000x100000");
    n = png_header_only(b, 70000, 10); // one side over 65500
    ASSERT_ERR(hy_image_decode(b, n, &img), HY_ERR_UNSUPPORTED);
    n = png_header_only(b, 20000, 20000); // 4e8 pixels > 2^28
    ASSERT_ERR(hy_image_decode(b, n, &img), HY_ERR_UNSUPPORTED);
    // A valid header with no image data is an error too.
    n = png_header_only(b, 4, 4);
    ASSERT_ERR(hy_image_decode(b, n, &img), HY_ERR_FORMAT);
    ASSERT_TRUE(img == NULL);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(probe_reads_headers_only) {
    uint8_t b[64];
    int w = -1, h = -1;
    int64_t live = hy__alloc_live();
    // a PNG with no pixel data: the size is in IHDR, the probe needs nothing more
    size_t n = png_header_only(b, 4000, 3000);
    ASSERT_OK(hy_image_probe(b, n, &w, &h));
    ASSERT_EQ(w, 4000);
    ASSERT_EQ(h, 3000);
    n = png_header_only(b, 0, 0);
    ASSERT_ERR(hy_image_probe(b, n, &w, &h), HY_ERR_FORMAT);
    n = png_header_only(b, 100000, 100000); // the decoder's limits apply
    ASSERT_ERR(hy_image_probe(b, n, &w, &h), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "100000x100000");
    // JPEG: bus.jpg cut right after its headers still probes; cut inside them it does not
    size_t len;
    uint8_t *jpg = read_all(hy_test_asset("images/bus.jpg"), &len);
    ASSERT_TRUE(jpg != NULL);
    size_t sos = 0;
    for (size_t i = 2; i + 1 < len && !sos; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) sos = i;
    ASSERT_TRUE(sos > 0);
    hy_status st_head = hy_image_probe(jpg, sos + 64, &w, &h);
    hy_status st_cut = hy_image_probe(jpg, sos / 2, &w, &h);
    free(jpg);
    ASSERT_OK(st_head);
    ASSERT_EQ(w, 810);
    ASSERT_EQ(h, 1080);
    ASSERT_EQ(st_cut, HY_ERR_FORMAT);
    ASSERT_ERR(hy_image_probe("GIF89a\1\0\1\0\0\0", 12, &w, &h), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "GIF");
    ASSERT_ERR(hy_image_probe("", 0, &w, &h), HY_ERR_FORMAT);
    ASSERT_ERR(hy_image_probe(b, n, NULL, &h), HY_ERR_INVALID_ARG);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(png_truncated) {
    uint8_t raw[8 * 8 * 3];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 7);
    size_t n = 0;
    uint8_t *png = png_encode(raw, sizeof raw, 8, 8, 8, SPNG_COLOR_TYPE_TRUECOLOR, NULL, &n);
    ASSERT_TRUE(png != NULL);
    int64_t live = hy__alloc_live();
    for (size_t cut = 1; cut < n; cut += (cut < 60 ? 1 : 7)) {
        hy_image *img = NULL;
        hy_status st = hy_image_decode(png, cut, &img);
        if (st == HY_OK) fprintf(stderr, "  PNG prefix of %zu/%zu bytes decoded\n", cut, n);
        ASSERT_TRUE(st != HY_OK);
        ASSERT_TRUE(img == NULL);
    }
    ASSERT_EQ(hy__alloc_live(), live);
    free(png);
}

// --- errors ------------------------------------------------------------------------------------

HY_TEST(load_errors_name_the_file) {
    hy_image *img = NULL;
    const char *missing = hy_test_tmp("does-not-exist.jpg");
    ASSERT_ERR(hy_image_load(missing, &img), HY_ERR_NOT_FOUND);
    ASSERT_CONTAINS(hy_last_error(), missing);

    const char *empty = hy_test_tmp("empty.jpg");
    ASSERT_EQ(write_all(empty, "", 0), 0);
    ASSERT_ERR(hy_image_load(empty, &img), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), empty);
    ASSERT_CONTAINS(hy_last_error(), "empty");

    const char *text = hy_test_tmp("notes.jpg");
    ASSERT_EQ(write_all(text, "hello, world\n", 13), 0);
    ASSERT_ERR(hy_image_load(text, &img), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), text);
    ASSERT_CONTAINS(hy_last_error(), "68 65 6c 6c 6f"); // first bytes shown
    ASSERT_CONTAINS(hy_last_error(), "hello");

    const char *gif = hy_test_tmp("anim.gif");
    ASSERT_EQ(write_all(gif, "GIF89a\x01\x00\x01\x00", 10), 0);
    ASSERT_ERR(hy_image_load(gif, &img), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "GIF");
    ASSERT_TRUE(img == NULL);

    ASSERT_ERR(hy_image_decode(NULL, 0, &img), HY_ERR_FORMAT);
    ASSERT_ERR(hy_image_decode("x", 1, NULL), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_image_load(NULL, &img), HY_ERR_INVALID_ARG);
}

/* Cut inside the headers (before the first scan's data): an error, as for OpenCV. */
HY_TEST(jpeg_cut_in_headers_is_error) {
    size_t len;
    uint8_t *bus = read_all(hy_test_asset("images/bus.jpg"), &len);
    ASSERT_TRUE(bus != NULL);
    const size_t cuts[] = {1, 2, 3, 4, 10, 100, 300, 350}; // bus.jpg's SOS is at byte 357
    int64_t live = hy__alloc_live();
    for (size_t i = 0; i < HY_ARRAY_LEN(cuts); i++) {
        hy_image *img = NULL;
        hy_status st = hy_image_decode(bus, cuts[i], &img);
        if (st != HY_ERR_FORMAT)
            fprintf(stderr, "  prefix %zu/%zu: %s %s\n", cuts[i], len, hy_status_name(st), hy_last_error());
        ASSERT_EQ(st, HY_ERR_FORMAT);
        ASSERT_TRUE(img == NULL);
        if (cuts[i] > 100) ASSERT_CONTAINS(hy_last_error(), "JPEG");
    }
    ASSERT_EQ(hy__alloc_live(), live);
    free(bus);
}

/* Log messages captured by the tests below. */
static char g_log[1024];
static void capture_log(hy_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == HY_LOG_WARN) snprintf(g_log, sizeof g_log, "%s", msg);
}

/* OpenCV's imread decodes a JPEG cut short (libjpeg warns "Premature end of JPEG file" and
 * fills the rest with grey) and Ultralytics returns boxes for it: the same here, flagged. */
HY_TEST(jpeg_missing_eoi_decodes_as_intact) {
    size_t len;
    uint8_t *bus = read_all(hy_test_asset("images/bus.jpg"), &len);
    ASSERT_TRUE(bus != NULL);
    ASSERT_TRUE(bus[len - 2] == 0xFF && bus[len - 1] == 0xD9);
    hy_image *full = NULL, *cut = NULL;
    ASSERT_OK(hy_image_decode(bus, len, &full));
    ASSERT_EQ(full->flags, 0u);
    int64_t live = hy__alloc_live();
    g_log[0] = '\0';
    hy_log_set(capture_log, NULL);
    for (size_t drop = 2; drop >= 1; drop--) { // FFD9 gone, then only D9
        hy_status st = hy_image_decode(bus, len - drop, &cut); // the default repairs this
        ASSERT_OK(st);
        ASSERT_EQ(cut->flags, (unsigned)HY_IMAGE_FLAG_NO_EOI);
        ASSERT_EQ(cut->width, full->width);
        ASSERT_EQ(cut->height, full->height);
        ASSERT_TRUE(memcmp(cut->data, full->data, (size_t)full->width * full->height * 3) == 0);
        hy_image_free(cut);
        cut = NULL;
    }
    hy_log_set(NULL, NULL);
    ASSERT_CONTAINS(g_log, "Premature end of JPEG file");
    // Intact files only: refused, saying why.
    ASSERT_ERR(hy_image_decode_ex(bus, len - 2, HY_IMAGE_REPAIR_NONE, &cut), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "Premature end of JPEG file");
    ASSERT_CONTAINS(hy_last_error(), "end-of-image marker");
    ASSERT_TRUE(cut == NULL);
    ASSERT_OK(hy_image_decode_ex(bus, len, HY_IMAGE_REPAIR_NONE, &cut)); // intact: fine
    hy_image_free(cut);
    cut = NULL;
    ASSERT_ERR(hy_image_decode_ex(bus, len, (hy_image_repair)7, &cut), HY_ERR_INVALID_ARG);
    ASSERT_EQ(hy__alloc_live(), live);
    hy_image_free(full);
    free(bus);
}

HY_TEST(jpeg_truncated_mid_scan_decodes_grey_filled_on_request) {
    size_t len;
    uint8_t *bus = read_all(hy_test_asset("images/bus.jpg"), &len);
    ASSERT_TRUE(bus != NULL);
    hy_image *full = NULL;
    ASSERT_OK(hy_image_decode(bus, len, &full));
    const int w = full->width, h = full->height;
    const size_t row = (size_t)w * 3;
    int64_t live = hy__alloc_live();
    const size_t cuts[] = {1000, 5000, 20000, len / 2, len - 5000, len - 100, len - 10, len - 3};
    for (size_t i = 0; i < HY_ARRAY_LEN(cuts); i++) {
        hy_image *img = NULL;
        // Default level: pixel data missing is an error (a server answers 400)...
        ASSERT_ERR(hy_image_decode(bus, cuts[i], &img), HY_ERR_FORMAT);
        ASSERT_CONTAINS(hy_last_error(), "Premature end of JPEG file (pixel data is missing");
        ASSERT_TRUE(img == NULL);
        // ... OpenCV's level decodes it, grey-filled and flagged.
        hy_status st = hy_image_decode_ex(bus, cuts[i], HY_IMAGE_REPAIR_TRUNCATED, &img);
        if (st != HY_OK) fprintf(stderr, "  prefix %zu/%zu: %s\n", cuts[i], len, hy_last_error());
        ASSERT_OK(st);
        ASSERT_EQ(img->flags, (unsigned)HY_IMAGE_FLAG_TRUNCATED);
        ASSERT_EQ(img->width, w);
        ASSERT_EQ(img->height, h);
        // The last row was never coded: mid grey (zero coefficients); the first rows are
        // the intact image's as long as the cut lies well below them.
        const uint8_t *last = img->data + (size_t)(h - 1) * row;
        // (the last few bytes: the MCU in progress decodes from zero bits, not grey)
        const size_t x0 = cuts[i] <= len / 2 ? 0 : cuts[i] <= len - 5000 ? row - 3 : row;
        for (size_t x = x0; x < row; x++) {
            if (last[x] != 128) fprintf(stderr, "  prefix %zu/%zu: last row x=%zu\n", cuts[i], len, x);
            ASSERT_EQ(last[x], 128);
        }
        if (cuts[i] >= 20000) ASSERT_TRUE(memcmp(img->data, full->data, 4 * row) == 0);
        hy_image_free(img);
    }
    ASSERT_EQ(hy__alloc_live(), live);
    // The file on disk, cut: refused naming it by default, decoded and flagged at OpenCV's level.
    const char *path = hy_test_tmp("cut.jpg");
    ASSERT_EQ(write_all(path, bus, len / 3), 0);
    hy_image *img = NULL;
    ASSERT_ERR(hy_image_load(path, &img), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), path);
    ASSERT_CONTAINS(hy_last_error(), "Premature end");
    ASSERT_OK(hy_image_load_ex(path, HY_IMAGE_REPAIR_TRUNCATED, &img));
    ASSERT_EQ(img->flags, (unsigned)HY_IMAGE_FLAG_TRUNCATED);
    hy_image_free(img);
    hy_image_free(full);
    free(bus);
}

/* Progressive: a file cut between two scans ends with no warning but the missing EOI, yet
 * lacks refinement bits: it must count as truncated, not as intact. */
HY_TEST(jpeg_progressive_cut_between_scans_is_truncated) {
    const int w = 64, h = 48;
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 31 + i / 97);
    size_t n = 0;
    uint8_t *jpg = jpeg_encode_raw(px, w, h, 3, JCS_RGB, 1, &n);
    ASSERT_TRUE(jpg != NULL && n > 4);
    hy_image *full = NULL, *img = NULL;
    ASSERT_OK(hy_image_decode(jpg, n, &full));
    ASSERT_EQ(full->flags, 0u);
    ASSERT_OK(hy_image_decode(jpg, n - 2, &img)); // only the EOI missing
    ASSERT_EQ(img->flags, (unsigned)HY_IMAGE_FLAG_NO_EOI);
    ASSERT_TRUE(memcmp(img->data, full->data, (size_t)w * h * 3) == 0);
    hy_image_free(img);
    // Cut just before each later SOS (FF DA): scans are missing.
    int n_cuts = 0;
    for (size_t i = 400; i + 1 < n; i++) {
        if (jpg[i] != 0xFF || jpg[i + 1] != 0xDA) continue;
        img = NULL;
        ASSERT_ERR(hy_image_decode(jpg, i, &img), HY_ERR_FORMAT); // not just the EOI missing
        ASSERT_OK(hy_image_decode_ex(jpg, i, HY_IMAGE_REPAIR_TRUNCATED, &img));
        ASSERT_EQ(img->flags, (unsigned)HY_IMAGE_FLAG_TRUNCATED);
        hy_image_free(img);
        n_cuts++;
    }
    ASSERT_TRUE(n_cuts >= 3);
    hy_image_free(full);
    free(jpg);
    free(px);
}

/* Damage that is not a cut (a marker inside the compressed data) stays an error. */
HY_TEST(jpeg_corrupt_data_is_error) {
    size_t len;
    uint8_t *bus = read_all(hy_test_asset("images/bus.jpg"), &len);
    ASSERT_TRUE(bus != NULL);
    bus[len / 2] = 0xFF; // an SOF marker in the middle of the scan data
    bus[len / 2 + 1] = 0xC0;
    hy_image *img = NULL;
    ASSERT_ERR(hy_image_decode(bus, len, &img), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "JPEG");
    ASSERT_TRUE(img == NULL);
    free(bus);
}

HY_TEST(corrupt_inputs_never_crash) {
    // Byte flips in small JPEG and PNG files: any status is fine, but no crash and no leak.
    const int w = 32, h = 24;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 13 + (i / 7));
    hy_image *src = NULL;
    ASSERT_OK(hy_image_from_rgb(rgb, w, h, 0, &src));
    const char *path = hy_test_tmp("fuzz.jpg");
    ASSERT_OK(hy_image_save_jpeg(src, path, 80));
    size_t jl, pl;
    uint8_t *jpg = read_all(path, &jl);
    uint8_t *png = png_encode(rgb, (size_t)w * h * 3, (uint32_t)w, (uint32_t)h, 8,
                              SPNG_COLOR_TYPE_TRUECOLOR, NULL, &pl);
    ASSERT_TRUE(jpg && png);
    int64_t live = hy__alloc_live();
    uint32_t seed = 12345;
    int ok_count = 0;
    for (int it = 0; it < 400; it++) {
        const int is_png = it & 1;
        const size_t n = is_png ? pl : jl;
        uint8_t *m = malloc(n);
        memcpy(m, is_png ? png : jpg, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % n;
            m[pos] ^= (uint8_t)(1u << (seed % 8));
        }
        hy_image *img = NULL;
        if (hy_image_decode(m, n, &img) == HY_OK) {
            ok_count++;
            ASSERT_TRUE(img && img->width > 0 && img->height > 0);
        }
        hy_image_free(img);
        free(m);
    }
    ASSERT_EQ(hy__alloc_live(), live);
    printf("  %d of 400 mutated files still decoded\n", ok_count);
    free(jpg);
    free(png);
    free(rgb);
    hy_image_free(src);
}

// --- from_rgb ----------------------------------------------------------------------------------

HY_TEST(from_rgb_copies_with_stride) {
    const int w = 3, h = 2;
    const size_t stride = 16;
    uint8_t buf[32];
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    hy_image *img = NULL;
    ASSERT_OK(hy_image_from_rgb(buf, w, h, stride, &img));
    ASSERT_EQ(img->width, 3);
    ASSERT_EQ(img->height, 2);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w * 3; i++) ASSERT_EQ(img->data[y * w * 3 + i], buf[y * stride + i]);
    buf[0] = 99; // a copy, not a view
    ASSERT_EQ(img->data[0], 0);
    hy_image_free(img);
    img = NULL;
    ASSERT_ERR(hy_image_from_rgb(buf, w, h, 8, &img), HY_ERR_INVALID_ARG); // stride < 9
    ASSERT_ERR(hy_image_from_rgb(buf, 0, h, 0, &img), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_image_from_rgb(NULL, w, h, 0, &img), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_image_from_rgb(buf, 70000, 1, 0, &img), HY_ERR_UNSUPPORTED);
    ASSERT_TRUE(img == NULL);
    hy_image_free(NULL);
}

// --- drawing -----------------------------------------------------------------------------------

HY_TEST(palette_matches_ultralytics) {
    uint8_t c[3];
    hy__palette(0, c);
    ASSERT_TRUE(c[0] == 0xFF && c[1] == 0x38 && c[2] == 0x38);
    hy__palette(5, c);
    ASSERT_TRUE(c[0] == 0x48 && c[1] == 0xF9 && c[2] == 0x0A);
    hy__palette(14, c);
    ASSERT_TRUE(c[0] == 0x00 && c[1] == 0x18 && c[2] == 0xEC);
    hy__palette(19, c);
    ASSERT_TRUE(c[0] == 0xFF && c[1] == 0x37 && c[2] == 0xC7);
    hy__palette(20, c); // wraps
    ASSERT_TRUE(c[0] == 0xFF && c[1] == 0x38 && c[2] == 0x38);
}

static hy_image *gray_image(int w, int h, uint8_t v) {
    uint8_t *buf = malloc((size_t)w * h * 3);
    memset(buf, v, (size_t)w * h * 3);
    hy_image *img = NULL;
    hy_image_from_rgb(buf, w, h, 0, &img);
    free(buf);
    return img;
}

HY_TEST(draw_box_outline_exact) {
    const uint8_t col[3] = {200, 10, 20};
    for (int t = 1; t <= 4; t++) {
        hy_image *img = gray_image(40, 30, 50);
        ASSERT_OK(hy__draw_box(img, 10, 8, 29, 21, t, col, NULL));
        // cv2.rectangle(thickness=t): t-pixel bands centred on the edges
        const int lo = t / 2, hi = t - 1 - lo;
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++) {
                const int outer = x >= 10 - lo && x <= 29 + hi && y >= 8 - lo && y <= 21 + hi;
                const int inner = x > 10 + hi && x < 29 - lo && y > 8 + hi && y < 21 - lo;
                const uint8_t *p = img->data + (y * 40 + x) * 3;
                if (outer && !inner) ASSERT_TRUE(p[0] == 200 && p[1] == 10 && p[2] == 20);
                else ASSERT_TRUE(p[0] == 50 && p[1] == 50 && p[2] == 50);
            }
        hy_image_free(img);
    }
    // partly or wholly outside the image: clipped, no crash
    hy_image *img = gray_image(20, 10, 0);
    ASSERT_OK(hy__draw_box(img, -50, -50, 100, 100, 3, col, NULL));
    ASSERT_OK(hy__draw_box(img, 500, 500, 600, 600, 3, col, "far away"));
    ASSERT_OK(hy__draw_box(img, 15, 5, 2, 1, 2, col, NULL)); // corners given in reverse
    hy_image_free(img);
}

HY_TEST(draw_box_label) {
    const uint8_t col[3] = {0x3D, 0xDB, 0x86};
    const int W = 240, H = 120, x1 = 20, y1 = 60, x2 = 150, y2 = 100, t = 2;
    hy_image *img = gray_image(W, H, 50);
    ASSERT_OK(hy__draw_box(img, x1, y1, x2, y2, t, col, "person 0.87"));
    // Label box above the outline, filled with the colour, with near-white text inside.
    int n_col = 0, n_white = 0, n_outside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = img->data + (y * W + x) * 3;
            if (p[0] == 50 && p[1] == 50 && p[2] == 50) continue;
            const int on_box = x >= x1 - 1 && x <= x2 && y >= y1 - 1 && y <= y2;
            const int in_label = y < y1 - 1 && x >= x1 - 1;
            if (!on_box && !in_label) n_outside++;
            if (in_label && p[0] == col[0] && p[1] == col[1] && p[2] == col[2]) n_col++;
            if (in_label && p[0] > 220 && p[1] > 220 && p[2] > 220) n_white++;
        }
    ASSERT_EQ(n_outside, 0);
    ASSERT_TRUE(n_col > 500);
    ASSERT_TRUE(n_white > 50);
    // the label box sits right on top of the outline
    const uint8_t *above = img->data + ((y1 - 2) * W + x1) * 3;
    ASSERT_FALSE(above[0] == 50 && above[1] == 50 && above[2] == 50);
    hy_image_free(img);

    // No room above: the label goes inside the box, below its top edge.
    img = gray_image(W, H, 50);
    ASSERT_OK(hy__draw_box(img, 10, 2, 200, 110, 2, col, "dog 0.50"));
    const uint8_t *in = img->data + (10 * W + 14) * 3;
    ASSERT_TRUE(in[0] != 50 || in[1] != 50);
    hy_image_free(img);
}

typedef struct draw_job {
    hy_image *img;
    hy_status st;
} draw_job;

static void *draw_thread(void *arg) {
    draw_job *j = arg;
    const uint8_t col[3] = {255, 56, 56};
    for (int i = 0; i < 20 && !j->st; i++)
        j->st = hy__draw_box(j->img, 10 + i, 40, 100, 70, 2, col, "car 0.91");
    return NULL;
}

HY_TEST(draw_labels_from_threads) {
    draw_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].img = gray_image(160, 90, 80);
        jobs[i].st = HY_OK;
        pthread_create(&th[i], NULL, draw_thread, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(jobs[i].st);
        ASSERT_TRUE(memcmp(jobs[i].img->data, jobs[0].img->data, 160 * 90 * 3) == 0);
    }
    for (int i = 0; i < 4; i++) hy_image_free(jobs[i].img);
}

HY_TEST_MAIN()
