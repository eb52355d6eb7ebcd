/* Training augmentation on 8-bit RGB (h, w, 3) buffers: the pieces of Ultralytics 8.0.172's
 * v8_transforms (ultralytics/yolo/data/augment.py) that the default hyperparameters use.
 * No allocation anywhere here: the caller owns every buffer.
 *
 *   - a counter-based generator: every draw of one training image comes from a stream keyed
 *     by (seed, epoch, position in the epoch), so a batch does not depend on threads, call
 *     order or caching (loader.h);
 *   - Mosaic._mosaic4 placement of 4 images on a (2s, 2s) canvas filled 114;
 *   - RandomPerspective: M = T @ S @ R @ P @ C (float32 as numpy builds it), the image warped
 *     as cv2.warpAffine / cv2.warpPerspective(INTER_LINEAR, BORDER_CONSTANT 114) compute it
 *     (inverse map, 1/32-pixel fixed-point coordinates, 15-bit bilinear weights), boxes by
 *     their 4 corners, clipped, filtered by box_candidates;
 *   - RandomHSV through OpenCV's 8-bit HSV (H in [0, 180));
 *   - vertical flip (horizontal flips are applied by hy__train_to_input).
 * Albumentations is not applied: Ultralytics applies it only when the package is installed,
 * and the reference run's host had none. CopyPaste and MixUp are off by default (p = 0) and
 * not implemented. */
#ifndef HY_TRAIN_AUGMENT_H
#define HY_TRAIN_AUGMENT_H

#include "core/core.h"

// --- random numbers ----------------------------------------------------------------------------

/* splitmix64 stream started from a hash of the key: draws depend only on the key. */
typedef struct hy__aug_rng {
    uint64_t s;
} hy__aug_rng;
hy__aug_rng hy__aug_rng_key(uint64_t seed, uint64_t epoch, uint64_t pos);
uint64_t hy__aug_next(hy__aug_rng *r);
double hy__aug_unit(hy__aug_rng *r);                   /* [0, 1) */
double hy__aug_uniform(hy__aug_rng *r, double a, double b); /* a + (b - a) * unit, as random.uniform */

// --- boxes -------------------------------------------------------------------------------------

/* Pixel xyxy box and its class (float32, as Ultralytics' Instances). */
typedef struct hy__aug_box {
    float x1, y1, x2, y2;
    int cls;
} hy__aug_box;

// --- mosaic ------------------------------------------------------------------------------------

/* Tile k (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of an image (w, h) on the
 * (2s, 2s) canvas around the centre (xc, yc), as _mosaic4: canvas [y1a, y2a) x [x1a, x2a)
 * receives image [y1b, ...) x [x1b, ...); labels shift by (x1a - x1b, y1a - y1b). */
typedef struct hy__aug_tile {
    int x1a, y1a, x2a, y2a, x1b, y1b;
} hy__aug_tile;
hy__aug_tile hy__aug_mosaic_tile(int k, int s, int xc, int yc, int w, int h);
/* Copies the tile of img (w, h, 3) into canvas (2s, 2s, 3). */
void hy__aug_mosaic_paste(uint8_t *canvas, int s, const hy__aug_tile *t, const uint8_t *img, int w);

// --- RandomPerspective -------------------------------------------------------------------------

typedef struct hy__aug_affine_params {
    double degrees, translate, scale, shear, perspective;
} hy__aug_affine_params;

/* The draws of one RandomPerspective call, in Ultralytics' order: perspective x, y; angle
 * (degrees); scale; shear x, y (degrees); translation x, y as fractions of the output size. */
typedef struct hy__aug_affine_draw {
    double px, py, angle, scale, shear_x, shear_y, tx, ty;
} hy__aug_affine_draw;
hy__aug_affine_draw hy__aug_affine_sample(const hy__aug_affine_params *p, hy__aug_rng *r);

/* M (3x3 row-major, float32) = T @ S @ R @ P @ C for an input (in_w, in_h) and output
 * (out_w, out_h): C moves the input's centre to the origin (-in_w / 2, -in_h / 2), P has the
 * perspective terms in its last row, R = getRotationMatrix2D((0, 0), angle, scale), S the
 * tangents of the shears, T translates by (tx * out_w, ty * out_h). Products in float32. */
void hy__aug_affine_matrix(const hy__aug_affine_draw *d, int in_w, int in_h, int out_w, int out_h,
                           float M[9]);

/* dst (dh, dw, 3) = src (sh, sw, 3) warped by M (source -> destination), bilinear, border 114,
 * as cv2.warpAffine(src, M[:2]) (perspective = 0) or cv2.warpPerspective(src, M). */
void hy__aug_warp(const uint8_t *src, int sw, int sh, const float M[9], int perspective, uint8_t *dst,
                  int dw, int dh);

/* Ultralytics' box_candidates(wh_thr 2, ar_thr 100, area_thr 0.1): after (a) is kept when both
 * sides exceed 2 px, its area is more than 0.1 of before's (b, the box before the warp, scaled
 * by the draw's scale) and its aspect ratio is under 100. */
int hy__aug_box_candidate(const hy__aug_box *b, const hy__aug_box *a);

/* Maps the n boxes through M (4 corners, min/max; divided by w when perspective), clips them
 * to (w, h), keeps the box_candidates (scale: the draw's) in order, compacted in place.
 * Returns how many were kept. */
int hy__aug_boxes_warp(hy__aug_box *b, int n, const float M[9], int perspective, float scale, int w,
                       int h);

// --- RandomHSV ---------------------------------------------------------------------------------

/* OpenCV's 8-bit RGB <-> HSV (cvtColor COLOR_RGB2HSV / COLOR_HSV2RGB, H in [0, 180)):
 *   V = max(R, G, B), diff = V - min(R, G, B);
 *   S = round(diff * round(255 * 4096 / V) / 4096)                     (0 when V = 0);
 *   H = ((G - B) if V == R, else (B - R + 2 diff) if V == G, else (R - G + 4 diff)),
 *       then round(H * round(180 * 4096 / (6 diff)) / 4096) (0 when diff = 0), + 180 if < 0
 *   (the rounds are OpenCV's: integer tables, + 2048 >> 12);
 * back: float h6 = fmod(H * (6 / 180), 6), sector floor(h6), f = h6 - sector, s = S / 255,
 *   the channels are V, V (1 - s), V (1 - s f), V (1 - s (1 - f)) chosen by sector, rounded
 *   half to even and saturated. */
void hy__aug_rgb2hsv(const uint8_t rgb[3], uint8_t hsv[3]);
void hy__aug_hsv2rgb(const uint8_t hsv[3], uint8_t rgb[3]);

/* LUTs of gains r (Ultralytics' U(-1, 1) * gain + 1): hue (x r0) mod 180, sat and val
 * clip(x r, 0, 255), truncated to 8 bits as numpy's astype(uint8). */
void hy__aug_hsv_luts(const double r[3], uint8_t lut[3][256]);
/* Applies the LUTs in HSV space to n RGB pixels in place. */
void hy__aug_hsv_apply(uint8_t *img, size_t n, const uint8_t lut[3][256]);

// --- flips -------------------------------------------------------------------------------------

/* Mirrors the rows of img (w, h, 3) top to bottom and the boxes' y (h - y). */
void hy__aug_flipud(uint8_t *img, int w, int h, hy__aug_box *b, int n);

#endif
