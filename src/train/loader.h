/* Training batch loader: the train split of a hy__val_dataset as Ultralytics 8.0.172's
 * YOLODataset serves it with letterbox and horizontal flip only:
 *   - LetterBox(new_shape=(imgsz, imgsz), auto=False, scaleup=True) on the decoded image:
 *     long side -> imgsz (round(side * r)), cv2 INTER_LINEAR, pad 114 centred (top
 *     round(dh - 0.1), left round(dw - 0.1)); labels xyxy denormalised, scaled, shifted by
 *     (left, top), then normalised xywh to imgsz x imgsz. This is how
 *     reference/train/coco8_train_320_input.npy was made (equal to it, byte for byte).
 *     Ultralytics' dataloader first resizes the long side with ceil (load_image), which gives
 *     one row or column more for some odd sizes (e.g. 640x425 at 320: 213 rows, not 212): we
 *     keep the reference's single resize;
 *   - RandomFlip(horizontal, p=fliplr): the image mirrored, cx -> 1 - cx;
 *   - img float / 255, RGB CHW; targets rows (batch index, class, cx, cy, w, h).
 * Shuffled each epoch (Fisher-Yates, seeded by (seed, epoch)); flips drawn from the same
 * stream, so a run is reproducible for a seed (the order is not torch's RandomSampler's).
 * Letterboxed images are cached (8-bit) while they fit in cache_bytes. One worker thread
 * prepares the next batch while the caller trains on the current one. */
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
} hy__tloader_params;

typedef struct hy__tloader hy__tloader;
/* ds is borrowed (must outlive the loader). */
hy_status hy__tloader_create(const hy__val_dataset *ds, const hy__tloader_params *p, hy__tloader **out);
void hy__tloader_free(hy__tloader *l);
int hy__tloader_num_batches(const hy__tloader *l);
int hy__tloader_batch_size(const hy__tloader *l, int b);
/* Most label rows one training image may have (COCO's most is under 100); a dataset with more
 * is refused by hy__tloader_create, naming the image. */
#define HY_TRAIN_MAX_LABELS 8192
int hy__tloader_max_labels(const hy__tloader *l); /* most label rows of one image */
size_t hy__tloader_cache_bytes(const hy__tloader *l); /* cached so far */
/* Order of epoch e (n dataset indices) and whether position i is flipped. */
void hy__tloader_epoch_plan(const hy__tloader *l, int epoch, size_t *order, unsigned char *flip);

/* Fills batch b of epoch e: x (n, 3, imgsz, imgsz) and targets (rows, 6); *n_targets rows. */
hy_status hy__tloader_fill(hy__tloader *l, int epoch, int b, float *x, float *targets, int *n_targets);
/* The same on the loader's thread: start, then wait for its result (one at a time). */
hy_status hy__tloader_start(hy__tloader *l, int epoch, int b, float *x, float *targets);
hy_status hy__tloader_wait(hy__tloader *l, int *n_targets);

#endif
