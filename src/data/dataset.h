/* Detection dataset as Ultralytics 8.0.172 reads it for `yolo val`: a data.yaml (libyaml)
 * naming image folders / lists, YOLO txt labels next to them (".../images/..." ->
 * ".../labels/...", extension -> .txt), image sizes from the file headers.
 *
 * data.yaml keys: path (dataset root; relative -> against the yaml's folder; absent -> the
 * yaml's folder), train / val (or validation) / test (a folder, a .txt list of image paths,
 * or a list of those), names (list, or id -> name map), nc.
 *
 * Problems with one image or label file never fail the load: the image is skipped and a
 * message naming the file (and line) is appended to warnings. */
#ifndef HY_DATA_DATASET_H
#define HY_DATA_DATASET_H

#include "core/core.h"

/* One label row as Ultralytics keeps it: class and normalised xywh, float32. */
typedef struct hy__val_label {
    int cls;
    float x, y, w, h;
} hy__val_label;

typedef struct hy__val_item {
    char *im_file;         /* image path */
    int w, h;              /* header size, EXIF 6/8 swapped as PIL's exif_size (rect sorting) */
    hy__val_label *labels; /* (n_labels), NULL for a background image */
    int n_labels;
} hy__val_item;

typedef struct hy__val_dataset {
    char *yaml_path;
    char *root;   /* resolved dataset root */
    char **names; /* (nc) */
    int nc;
    hy__val_item *items; /* (n), sorted by path as Ultralytics' get_img_files */
    size_t n;
    char **warnings; /* (n_warnings) "file[:line]: problem; image skipped" */
    size_t n_warnings;
    size_t n_backgrounds; /* images without labels (no or empty label file) */
    size_t n_instances;   /* label rows over all kept images */
} hy__val_dataset;

/* Reads yaml_path and the images + labels of `split` ("val", "train", "test"). Errors (yaml
 * unreadable or malformed, split missing, a split path that does not exist, no images) name
 * the file and key. */
hy_status hy__val_dataset_load(const char *yaml_path, const char *split, hy__val_dataset **out);
void hy__val_dataset_free(hy__val_dataset *d);

/* Decodes every image of d (the threads of tp, may be NULL) as the training loader and
 * hy_val_run do (hy_image_load), removes those that do not decode (each gets a warning
 * "<path>: cannot decode (<reason>); image skipped", n_instances and n_backgrounds updated; the
 * order of the others is kept) and returns how many were removed. A split left empty is the
 * caller's to refuse. Bounded: images over the decoder's limits are refused by the decoder;
 * images of more than HY_VERIFY_PAR_PIXELS (header size) or files over 32 MB are decoded one at
 * a time, the others one per thread. Out of memory (HY_ERR_NOMEM) leaves d unchanged. */
#define HY_VERIFY_PAR_PIXELS (1l << 23) /* 8.4 Mpx (4K UHD): 25 MB of RGB per thread */
hy_status hy__val_dataset_verify_decode(hy__val_dataset *d, hy__threadpool *tp, size_t *removed);

/* Label path of an image path as Ultralytics' img2label_paths: the last "/images/" becomes
 * "/labels/", the extension ".txt". Returns a hy__malloc'd string or NULL (out of memory). */
char *hy__val_label_path(const char *im_file);

/* Parses a label file's text. Returns HY_OK with the rows (hy__free; NULL when empty), or
 * HY_ERR_FORMAT with hy_last_error() = "<what>:<line>: <problem>". nc bounds the class id. */
hy_status hy__val_labels_parse(const char *text, size_t len, const char *what, int nc,
                               hy__val_label **rows, int *n_rows);

/* Image header probe: JPEG (SOFn size, EXIF orientation) or PNG (IHDR). *decodable = 0 for a
 * known-extension file that is neither (BMP, WebP, TIFF...). Errors name the path. */
hy_status hy__val_image_probe(const char *path, int *w, int *h, int *orientation, int *decodable);

#endif
