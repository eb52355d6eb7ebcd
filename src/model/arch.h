/* The architecture table: one row per YOLO family. Everything outside the family's own file
 * (loading, conversion, inspection, the engine) asks the row: how to read the config from a
 * checkpoint, the state_dict tensor table, the forward graph, and the decoding numbers.
 * A new family = a new file (like yolov8.c) defining its row + one line in arch.c. */
#ifndef HY_MODEL_ARCH_H
#define HY_MODEL_ARCH_H

#include "io/weights.h"
#include "model/blocks.h"

#define HY_ARCH_MAX_LEVELS 4

typedef struct hy__arch hy__arch;

/* A network as built: the family and its numbers (Ultralytics yaml: scales, nc). */
typedef struct hy__arch_cfg {
    const hy__arch *arch;
    int nc;             /* classes */
    char variant[8];    /* scale: "n".."x", or "" when the file gives only multiples */
    double depth;       /* depth multiple */
    double width;       /* width multiple */
    int max_channels;
    int reg_max;        /* DFL bins (16), 0 for heads without DFL */
    int na;             /* anchor heads: anchors per cell (3), else 0 */
    float anchors[HY_ARCH_MAX_LEVELS][8]; /* anchor heads: na (w, h) per level, input pixels */
} hy__arch_cfg;

struct hy__arch {
    const char *name;       /* "yolov8": the hotyolo.arch metadata value */
    const char *title;      /* "YOLOv8": for messages */
    const char *variants;   /* "n, s, m, l or x": for messages */
    const char *task;       /* "detect" (Ultralytics task) */
    /* Does the source hold this family's tensors (names it alone has)? */
    int (*recognize)(const hy__wsource *src);
    /* Config from a source: the file's config when present, else inferred from tensor
     * shapes. nc_override > 0 replaces the class count. `what` names the file in errors. */
    hy_status (*cfg_from_source)(const hy__wsource *src, const char *what, int nc_override, hy__arch_cfg *out);
    /* Config of a named variant ("n") with nc classes; HY_ERR_INVALID_ARG when unknown. */
    hy_status (*cfg_for_variant)(const char *variant, int nc, hy__arch_cfg *out);
    /* The tensor tables (unfused, fused) and the conv weight table, in state_dict order. */
    hy_status (*spec_create)(const hy__arch_cfg *cfg, hy__model_spec **out);
    /* The planned forward graph for an input (n, 3, h, w); h, w multiples of stride_max.
     * Conv nodes carry weight ids = indices into spec->convs. Output (n, 4 + nc, A, 1). */
    hy_status (*graph_build)(const hy__arch_cfg *cfg, int n, int h, int w, hy__graph **out);
    /* Decoding: output levels and their strides (pixels per cell); inputs are multiples
     * of stride_max. */
    int n_levels;
    int strides[HY_ARCH_MAX_LEVELS];
    int stride_max;
    /* Raw output per image: 0 = (4 + nc, A), class scores (YOLOv8); 1 = (A, 5 + nc) rows of
     * x, y, w, h, objectness, class scores (YOLOv5's anchor head). */
    int objectness;
    /* scale_boxes maps boxes back with the exact half padding (YOLOv5), not Ultralytics 8's
     * round(pad - 0.1) */
    int exact_pad;
    /* hotyolo train has this family's loss and gradients (src/train) */
    int trainable;
    /* The defaults of the family's own tools: predict / detect.py (iou, max_det) and val
     * (iou, batch); conf is 0.25 and 0.001 for every family. */
    float detect_iou;
    int detect_max_det;
    float val_iou;
    int val_batch;
};

/* src's tensor named `name`, or NULL (a linear scan: config reading only). */
const hy__wtensor *hy__arch_src_find(const hy__wsource *src, const char *name);

/* The rows, NULL-terminated; hy__arch_table[0] is the default family. */
extern const hy__arch *const hy__arch_table[];

/* The row named `name`; NULL with an HY_ERR_UNSUPPORTED error naming the known ones. */
const hy__arch *hy__arch_find(const char *name);
/* The row whose recognize() accepts src, or the default row when none does (its reader
 * then says why the file is not one). */
const hy__arch *hy__arch_recognize(const hy__wsource *src);
/* Reads src's config (see hy__arch.cfg_from_source) with the row src->arch names
 * (HY_ERR_UNSUPPORTED when none does), or, when the file names none, the recognised row. */
hy_status hy__arch_cfg_from_source(const hy__wsource *src, const char *what, int nc_override, hy__arch_cfg *out);

/* A family's forward(): composes the blocks in yaml order on b; x is the input tensor (graph
 * mode) or -1 (spec mode); returns the output tensor. */
typedef int (*hy__forward_fn)(hy__builder *b, const hy__arch_cfg *cfg, int x);
/* The spec / the planned graph of a forward() (the rows' spec_create and graph_build). */
hy_status hy__arch_spec_from(const hy__arch_cfg *cfg, hy__forward_fn f, hy__model_spec **out);
hy_status hy__arch_graph_from(const hy__arch_cfg *cfg, hy__forward_fn f, int n, int h, int w, hy__graph **out);

/* Dispatch to cfg->arch. */
hy_status hy__model_spec_create(const hy__arch_cfg *cfg, hy__model_spec **out);
hy_status hy__arch_graph_build(const hy__arch_cfg *cfg, int n, int h, int w, hy__graph **out);
/* Predictions (output columns, or rows with objectness) for an input (h, w): sum over levels
 * of (h / s) * (w / s), times the anchors per cell of an anchor head. */
int hy__arch_num_anchors(const hy__arch_cfg *cfg, int h, int w);
/* Floats of the raw output of one image: A * (4 + nc), or A * (5 + nc) with objectness. */
size_t hy__arch_output_numel(const hy__arch_cfg *cfg, int h, int w);
/* Writes the strides as a JSON array ("[8,16,32]") into buf (cap bytes). */
void hy__arch_strides_json(const hy__arch *a, char *buf, size_t cap);

#endif
