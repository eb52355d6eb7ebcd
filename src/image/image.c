/* hy_image lifetime, wrapping caller pixels, file load, EXIF orientation and JPEG writing. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

#include "image/image.h"

// --- create / free -----------------------------------------------------------------------------

hy_status hy__image_create(int width, int height, hy_image **out) {
    if (width <= 0 || height <= 0)
        return hy__error(HY_ERR_FORMAT, "invalid image size %dx%d", width, height);
    if (width > HY_IMAGE_MAX_SIDE || height > HY_IMAGE_MAX_SIDE ||
        (uint64_t)width * (uint64_t)height > HY_IMAGE_MAX_PIXELS)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "image size %dx%d exceeds the limit (each side <= %d, at most %llu pixels)",
                         width, height, HY_IMAGE_MAX_SIDE, (unsigned long long)HY_IMAGE_MAX_PIXELS);
    size_t n = (size_t)width * (size_t)height * 3;
    hy_image *img = hy__malloc(sizeof *img);
    uint8_t *data = hy__malloc(n); // (h, w, 3)
    if (!img || !data) {
        hy__free(img);
        hy__free(data);
        return hy__error(HY_ERR_NOMEM, "cannot allocate a %dx%d image (%zu bytes)", width, height, n);
    }
    if (n >= ((size_t)256 << 10)) hy__prefault(data, n); /* fresh pages: written row by row next */
    img->width = width;
    img->height = height;
    img->data = data;
    img->flags = 0;
    *out = img;
    return HY_OK;
}

void hy_image_free(hy_image *img) {
    if (!img) return;
    hy__free(img->data);
    hy__free(img);
}

hy_status hy_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                            hy_image **out) {
    if (!rgb || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_image_from_rgb: NULL argument");
    if (width <= 0 || height <= 0)
        return hy__error(HY_ERR_INVALID_ARG, "hy_image_from_rgb: invalid size %dx%d", width, height);
    const size_t row = (size_t)width * 3;
    if (stride == 0) stride = row;
    if (stride < row)
        return hy__error(HY_ERR_INVALID_ARG, "hy_image_from_rgb: stride %zu < 3 * width (%zu)",
                         stride, row);
    hy_image *img;
    hy_status st = hy__image_create(width, height, &img);
    if (st) return hy__error_prefix(st == HY_ERR_FORMAT ? HY_ERR_INVALID_ARG : st, "hy_image_from_rgb");
    for (int y = 0; y < height; y++) memcpy(img->data + (size_t)y * row, rgb + (size_t)y * stride, row);
    *out = img;
    return HY_OK;
}

/* Rewrites img in place as OpenCV's ApplyExifOrientation does (1 = as stored):
 * 2 flip x, 3 flip both, 4 flip y, 5 transpose, 6 transpose + flip x (rotate 90 cw),
 * 7 transpose + flip both, 8 transpose + flip y (rotate 90 ccw). */
hy_status hy__image_orient(hy_image *img, int orientation) {
    if (orientation < 2 || orientation > 8) return HY_OK;
    const int w = img->width, h = img->height;
    const int transpose = orientation >= 5;
    const int ow = transpose ? h : w, oh = transpose ? w : h;
    // After the optional transpose: flip x for 2,3,6,7 and flip y for 3,4,7,8.
    const int fx = orientation == 2 || orientation == 3 || orientation == 6 || orientation == 7;
    const int fy = orientation == 3 || orientation == 4 || orientation == 7 || orientation == 8;
    uint8_t *dst = hy__malloc((size_t)ow * oh * 3); // (oh, ow, 3)
    if (!dst) return hy__error(HY_ERR_NOMEM, "cannot allocate %dx%d for EXIF orientation", ow, oh);
    for (int y = 0; y < oh; y++) {
        const int ty = fy ? oh - 1 - y : y; // position in the (transposed) image
        uint8_t *d = dst + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++) {
            const int tx = fx ? ow - 1 - x : x;
            const int sx = transpose ? ty : tx, sy = transpose ? tx : ty;
            const uint8_t *s = img->data + ((size_t)sy * w + sx) * 3;
            d[3 * x + 0] = s[0];
            d[3 * x + 1] = s[1];
            d[3 * x + 2] = s[2];
        }
    }
    hy__free(img->data);
    img->data = dst;
    img->width = ow;
    img->height = oh;
    return HY_OK;
}

// --- load --------------------------------------------------------------------------------------

hy_status hy_image_load(const char *path, hy_image **out) {
    return hy_image_load_ex(path, HY_IMAGE_REPAIR_NO_EOI, out); /* hy_image_decode's default */
}

// --- JPEG writing ------------------------------------------------------------------------------

typedef struct jpeg_werr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_werr;

static void jpeg_w_error(j_common_ptr c) {
    jpeg_werr *e = (jpeg_werr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}
static void jpeg_w_output(j_common_ptr c) { (void)c; }

typedef struct jpeg_wjob {
    struct jpeg_compress_struct cinfo;
    jpeg_werr err;
    const hy_image *img;
    FILE *f;              /* file destination, or NULL: memory (mem, mem_len) */
    unsigned char *mem;   /* libjpeg's malloc'd buffer: free() */
    unsigned long mem_len;
    int quality;
    int created;
} jpeg_wjob;

static hy_status jpeg_write_run(jpeg_wjob *j) {
    struct jpeg_compress_struct *ci = &j->cinfo;
    if (setjmp(j->err.jump)) return hy__error(HY_ERR_IO, "JPEG encoder: %s", j->err.msg);
    jpeg_create_compress(ci);
    j->created = 1;
    if (j->f)
        jpeg_stdio_dest(ci, j->f);
    else
        jpeg_mem_dest(ci, &j->mem, &j->mem_len);
    ci->image_width = (JDIMENSION)j->img->width;
    ci->image_height = (JDIMENSION)j->img->height;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, j->quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    const size_t row = (size_t)j->img->width * 3;
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW r = j->img->data + (size_t)ci->next_scanline * row;
        jpeg_write_scanlines(ci, &r, 1);
    }
    jpeg_finish_compress(ci);
    return HY_OK;
}

hy_status hy__image_encode_jpeg(const hy_image *img, int quality, uint8_t **out, size_t *len) {
    if (!img || !img->data || !out || !len || img->width <= 0 || img->height <= 0 || quality < 1 || quality > 100)
        return hy__error(HY_ERR_INVALID_ARG, "hy__image_encode_jpeg: bad argument");
    jpeg_wjob j;
    memset(&j, 0, sizeof j);
    j.img = img;
    j.quality = quality;
    j.cinfo.err = jpeg_std_error(&j.err.pub);
    j.err.pub.error_exit = jpeg_w_error;
    j.err.pub.output_message = jpeg_w_output;
    hy_status st = jpeg_write_run(&j);
    if (j.created) jpeg_destroy_compress(&j.cinfo);
    if (st) {
        free(j.mem);
        return st;
    }
    *out = j.mem;
    *len = j.mem_len;
    return HY_OK;
}

hy_status hy_image_save_jpeg(const hy_image *img, const char *path, int quality) {
    if (!img || !path || !img->data)
        return hy__error(HY_ERR_INVALID_ARG, "hy_image_save_jpeg: NULL argument");
    if (img->width <= 0 || img->height <= 0 || img->width > HY_IMAGE_MAX_SIDE ||
        img->height > HY_IMAGE_MAX_SIDE)
        return hy__error(HY_ERR_INVALID_ARG, "%s: cannot write a %dx%d image as JPEG", path,
                         img->width, img->height);
    if (quality < 1 || quality > 100)
        return hy__error(HY_ERR_INVALID_ARG, "%s: JPEG quality %d is outside 1..100", path, quality);
    jpeg_wjob j;
    memset(&j, 0, sizeof j);
    j.img = img;
    j.quality = quality;
    if (!(j.f = fopen(path, "wb")))
        return hy__error(HY_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    j.cinfo.err = jpeg_std_error(&j.err.pub);
    j.err.pub.error_exit = jpeg_w_error;
    j.err.pub.output_message = jpeg_w_output;

    hy_status st = jpeg_write_run(&j);
    if (j.created) jpeg_destroy_compress(&j.cinfo);
    int io_bad = ferror(j.f);
    if (fclose(j.f) != 0) io_bad = 1;
    if (st == HY_OK && io_bad) st = hy__error(HY_ERR_IO, "write failed");
    if (st) {
        unlink(path); // no half-written file
        return hy__error_prefix(st, "%s", path);
    }
    return HY_OK;
}
