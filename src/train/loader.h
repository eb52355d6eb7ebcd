/* Training batch loader: the train split of a hy__val_dataset as Ultralytics 8.0.172's
 * YOLODataset serves it for training.
 *
 * augment = 0 (letterbox + horizontal flip only; equal, byte for byte, to
 * reference/train/coco8_train_320_input.npy):
 *   - LetterBox(new_shape=(imgsz, imgsz), auto=False, scaleup=True) on the decoded image:
 *     long side -> imgsz (round(side * r)), cv2 INTER_LINEAR, pad 114 centred (top
 *     round(dh - 0.1), left round(dw - 0.1)); labels xyxy denormalised, scaled, shifted by
 *     (left, top), then normalised xywh to imgsz x imgsz. (Ultralytics' dataloader first
 *     resizes the long side with ceil, load_image below; the reference was made without it);
 *   - RandomFlip(horizontal, p=fliplr): the image mirrored, cx -> 1 - cx.
 *
 * augment = 1 (v8_transforms with the hyperparameters below; augment.h has the pieces):
 *   - load_image: r = imgsz / max(h0, w0); when r != 1 resized (INTER_LINEAR) to
 *     (min(ceil(w0 r), imgsz), min(ceil(h0 r), imgsz)); kept in memory while the cache has room
 *     (cache=ram), decoded again otherwise;
 *   - Mosaic (p = mosaic) of the image and 3 others drawn uniformly from the whole dataset
 *     (with replacement; Ultralytics draws them from a rolling buffer of the images loaded
 *     last), on a (2s, 2s) canvas filled 114 around (xc, yc) ~ int(U(s/2, 3s/2)), labels
 *     shifted in pixels, clipped to the canvas, zero-area rows dropped; then RandomPerspective
 *     with border -s/2 (the output is s x s). Without mosaic (the draw fails, or the last
 *     close_mosaic epochs): LetterBox to s x s (centre, 114) of the load_image output, then
 *     RandomPerspective with border 0. Mosaic closes as Ultralytics' trainer closes it: at the
 *     epoch e == epochs - close_mosaic (0-based) and after; so never when close_mosaic is 0
 *     or larger than epochs;
 *   - RandomPerspective (degrees, translate, scale, shear, perspective), RandomHSV (hsv_h,
 *     hsv_s, hsv_v), RandomFlip vertical (flipud) and horizontal (fliplr). Albumentations is
 *     not applied (Ultralytics applies it only when that package is installed; the reference
 *     run's host had none); CopyPaste and MixUp (p = 0 by default) are not implemented.
 *
 * Both: img float / 255, RGB CHW; targets rows (batch index, class, cx, cy, w, h) normalised.
 * Shuffled each epoch (Fisher-Yates, seeded by (seed, epoch)), horizontal flips drawn from
 * the same stream (not torch's RandomSampler order). Every other draw of the image at
 * position i of epoch e comes from a generator keyed by (seed, e, i): batch b of epoch e
 * depends only on (dataset, params, seed, e, b), not on workers, timing, call order or the
 * cache. `workers` threads, started by create, prepare the images of a batch while the caller
 * trains on the previous one; their scratch is sized by create. */
#ifndef HY_TRAIN_LOADER_H
#define HY_TRAIN_LOADER_H

#include "data/dataset.h"

/* Letterboxes img (any size) into dst (imgsz, imgsz, 3) 8-bit RGB and maps its n labels to
 * rows (n, 5): class, cx, cy, w, h normalised to the letterboxed image. */
hy_status hy__train_letterbox(const hy_image *img, int imgsz, const hy__val_label *labels, int n, uint8_t *dst,
                              float *rows);
/* (s, s, 3) 8-bit -> (3, s, s) float / 255, mirrored when flip. */
void hy__train_to_input(const uint8_t *src, int s, int flip, float *x);

typedef struct hy__tloader_params {
    int imgsz, batch;
    double fliplr;
    uint64_t seed;
    size_t cache_bytes;
    int augment; /* 0: letterbox + fliplr only (the reference input); 1: v8_transforms */
    double hsv_h, hsv_s, hsv_v, degrees, translate, scale, shear, perspective, flipud, mosaic;
    int close_mosaic, epochs; /* no mosaic from epoch epochs - close_mosaic (0-based) on */
    int workers;              /* threads preparing a batch (0 counts as 1) */
} hy__tloader_params;
/* Ultralytics 8.0.172's defaults (imgsz 640, batch 16, fliplr 0.5, hsv 0.015 / 0.7 / 0.4,
 * translate 0.1, scale 0.5, mosaic 1.0, close_mosaic 10, epochs 100), augment 1, workers 2,
 * seed 0, cache 2 GiB. */
hy__tloader_params hy__tloader_default_params(void);

typedef struct hy__tloader hy__tloader;
/* ds is borrowed (must outlive the loader). */
hy_status hy__tloader_create(const hy__val_dataset *ds, const hy__tloader_params *p, hy__tloader **out);
void hy__tloader_free(hy__tloader *l);
int hy__tloader_num_batches(const hy__tloader *l);
int hy__tloader_batch_size(const hy__tloader *l, int b);
/* Most label rows one training image may have (COCO's most is under 100); a dataset with more
 * is refused by hy__tloader_create, naming the image. */
#define HY_TRAIN_MAX_LABELS 8192
/* Most label rows one served image can have: the dataset's most for one image, 4 times that
 * when mosaic is on (its 4 images may be the same one, as in Ultralytics). */
int hy__tloader_max_labels(const hy__tloader *l);
size_t hy__tloader_cache_bytes(const hy__tloader *l); /* cached so far */
/* Order of epoch e (n dataset indices) and whether position i is flipped. */
void hy__tloader_epoch_plan(const hy__tloader *l, int epoch, size_t *order, unsigned char *flip);

/* Fills batch b of epoch e: x (n, 3, imgsz, imgsz) and targets (rows, 6); *n_targets rows. */
hy_status hy__tloader_fill(hy__tloader *l, int epoch, int b, float *x, float *targets, int *n_targets);
/* The same on the loader's threads: start returns at once, wait returns the batch's result
 * (one batch at a time; x and targets are the caller's and must stay valid until wait). */
hy_status hy__tloader_start(hy__tloader *l, int epoch, int b, float *x, float *targets);
hy_status hy__tloader_wait(hy__tloader *l, int *n_targets);

#endif
