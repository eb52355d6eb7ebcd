/* Internal image helpers: decode (libjpeg-turbo, libspng), Ultralytics letterbox with
 * OpenCV-exact INTER_LINEAR resize, drawing. Public entry points are in hotyolo.h. */
#ifndef HY_IMAGE_H
#define HY_IMAGE_H

#include "core/core.h"

/* Largest accepted image: width * height <= HY_IMAGE_MAX_PIXELS, each side <= 65500. */
#define HY_IMAGE_MAX_PIXELS (1ull << 28)
#define HY_IMAGE_MAX_SIDE 65500

/* Allocates an uninitialised (height, width, 3) image after checking the limits above
 * (HY_ERR_FORMAT for a zero side, HY_ERR_UNSUPPORTED when too large). */
hy_status hy__image_create(int width, int height, hy_image **out);
/* Applies EXIF orientation 1..8 in place as OpenCV's imread does (others: no-op). */
hy_status hy__image_orient(hy_image *img, int orientation);
/* Encodes RGB as JPEG in memory; *out is malloc'd by libjpeg: release it with free(). */
hy_status hy__image_encode_jpeg(const hy_image *img, int quality, uint8_t **out, size_t *len);

/* Ultralytics LetterBox geometry for an image of (w, h) into new_shape (new_w, new_h).
 * auto_pad != 0: "rect" minimal padding (pad reduced mod stride, as predict on a single
 * image); else pad to exactly new_w x new_h. scaleup = 1 as predict. */
typedef struct hy__letterbox {
    int src_w, src_h;
    int unpad_w, unpad_h;   /* resized size: round(w * r), round(h * r) */
    int top, bottom, left, right;
    int out_w, out_h;       /* unpad + padding */
    float r;                /* scale */
    float pad_x, pad_y;     /* dw/2, dh/2 before rounding (for box mapping, as scale_boxes) */
} hy__letterbox;

hy__letterbox hy__letterbox_plan(int w, int h, int new_w, int new_h, int auto_pad, int stride);
/* As hy__letterbox_plan with Ultralytics' scaleup flag: scaleup = 0 never enlarges (r <= 1), as
 * the LetterBox(scaleup=False) of `yolo val` and training. */
hy__letterbox hy__letterbox_plan_ex(int w, int h, int new_w, int new_h, int auto_pad, int scaleup,
                                    int stride);

/* Resizes RGB (h, w, 3) -> (dh, dw, 3) exactly as cv2.resize(INTER_LINEAR) on 8-bit images.
 * scratch: hy__resize_scratch_size(...) bytes (no allocation inside). */
size_t hy__resize_scratch_size(int sw, int sh, int dw, int dh);
void hy__resize_linear_u8(const uint8_t *src, int sw, int sh, size_t sstride, uint8_t *dst, int dw,
                          int dh, size_t dstride, void *scratch);

/* Shrinks RGB (sh, sw, 3) -> (dh, dw, 3) exactly as cv2.resize(INTER_AREA) on 8-bit images
 * (dw <= sw and dh <= sh, else HY_ERR_INVALID_ARG). Allocates its weight tables. */
hy_status hy__resize_area_u8(const uint8_t *src, int sw, int sh, size_t sstride, uint8_t *dst,
                             int dw, int dh, size_t dstride);

/* Full preprocessing: letterbox src into dst (3, out_h, out_w) float32 CHW RGB / 255, pad
 * value 114/255. scratch as from hy__letterbox_scratch_size(). No allocation. */
size_t hy__letterbox_scratch_size(const hy__letterbox *lb);
/* The same on the threads of tp (rows shared out dynamically; same bytes as one thread):
 * scratch of hy__letterbox_scratch_size_mt(lb, threads of tp). */
size_t hy__letterbox_scratch_size_mt(const hy__letterbox *lb, int nth);
void hy__letterbox_apply_mt(const hy__letterbox *lb, const uint8_t *src, size_t sstride, float *dst,
                            void *scratch, hy__threadpool *tp);
void hy__letterbox_apply(const hy__letterbox *lb, const uint8_t *src, size_t sstride, float *dst,
                         void *scratch);

/* Draws an axis-aligned rectangle outline (thickness t px) and a filled label box with
 * text (FreeType, DejaVu Sans) above it. Coordinates are clipped to the image. */
hy_status hy__draw_box(hy_image *img, int x1, int y1, int x2, int y2, int t, const uint8_t rgb[3],
                       const char *label);
/* Draws UTF-8 text (FreeType, DejaVu Sans, px pixels per em) with the top-left corner of its
 * line box at (x, y), blending towards rgb by glyph coverage; clipped to the image. img = NULL
 * only measures. *w / *h (may be NULL): advance width and line height (ascender + descender). */
hy_status hy__draw_text(hy_image *img, int x, int y, int px, const uint8_t rgb[3],
                        const char *text, int *w, int *h);

/* Ultralytics' 20-colour palette by class id. */
void hy__palette(int class_id, uint8_t rgb[3]);

#endif
