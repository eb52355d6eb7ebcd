/*
 * hotyolo — YOLOv8 object detection in C, at full speed from the first frame.
 *
 * Conventions
 *   - Every fallible function returns hy_status (HY_OK = 0, errors < 0) and writes its
 *     result through the LAST out-parameter, which is set only on success.
 *   - hy_last_error() gives a thread-local sentence naming the file/field and the problem.
 *   - hy_*_free(NULL) is a no-op. The library never prints and never exits; diagnostics go
 *     to the callback set with hy_log_set().
 *   - Tensors are NCHW, float32 unless stated; images are interleaved 8-bit RGB (HWC).
 *
 * Example (one call loads the model and makes a context; hy_model + hy_context_create give
 * several contexts sharing one copy of the weights)
 *   hy_context *c;
 *   if (hy_context_load("yolov8n.pt", NULL, NULL, &c) != HY_OK) { fprintf(stderr, "%s\n", hy_last_error()); return 1; }
 *   hy_image *img;
 *   hy_image_load("bus.jpg", &img);
 *   hy_result *r;
 *   hy_detect(c, img, NULL, &r);
 *   for (size_t i = 0; i < hy_result_count(r); i++) {
 *       const hy_detection *d = hy_result_get(r, i);
 *       printf("%s %.2f\n", hy_model_class_name(hy_context_model(c), d->class_id), d->confidence);
 *   }
 *   hy_result_free(r); hy_image_free(img); hy_context_free(c);
 */
#ifndef HOTYOLO_H
#define HOTYOLO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HY_VERSION_MAJOR 0
#define HY_VERSION_MINOR 1
#define HY_VERSION_PATCH 0
#define HY_VERSION_STRING "0.1.0"

/* Marks the public API: libhotyolo.so is built with -fvisibility=hidden and exports only these. */
#ifndef HY_API
#if defined(__GNUC__) || defined(__clang__)
#define HY_API __attribute__((visibility("default")))
#else
#define HY_API
#endif
#endif

HY_API const char *hy_version(void);

/* ---- status ------------------------------------------------------------------------ */
#define HY_STATUS_MAP(X)                                              \
    X(OK, 0, "ok")                                                    \
    X(ERR_NOMEM, -1, "out of memory")                                 \
    X(ERR_IO, -2, "i/o error")                                        \
    X(ERR_FORMAT, -3, "bad file format")                              \
    X(ERR_UNSUPPORTED, -4, "unsupported")                             \
    X(ERR_INVALID_ARG, -5, "invalid argument")                        \
    X(ERR_BACKEND, -6, "backend error")                               \
    X(ERR_NOT_FOUND, -7, "not found")                                 \
    X(ERR_BUSY, -8, "busy")                                           \
    X(ERR_UNSAFE, -9, "refused unsafe content")                       \
    X(ERR_MISMATCH, -10, "structure mismatch")                        \
    X(END, 1, "end of stream") /* not an error: hy_stream_read after the last frame */

typedef enum hy_status {
#define HY__STATUS_ENUM(name, code, text) HY_##name = code,
    HY_STATUS_MAP(HY__STATUS_ENUM)
#undef HY__STATUS_ENUM
} hy_status;

HY_API const char *hy_status_str(hy_status st); /* "ok", "out of memory", ... */
HY_API const char *hy_status_name(hy_status st); /* "HY_OK", "HY_ERR_NOMEM", ... */
HY_API const char *hy_last_error(void);          /* thread-local detail of the last failure */

/* ---- logging ----------------------------------------------------------------------- */
typedef enum hy_log_level { HY_LOG_DEBUG, HY_LOG_INFO, HY_LOG_WARN, HY_LOG_ERROR } hy_log_level;
typedef void (*hy_log_fn)(hy_log_level level, const char *msg, void *user_data);
HY_API void hy_log_set(hy_log_fn fn, void *user_data); /* NULL: silent (default) */

/* ---- dtypes ------------------------------------------------------------------------ */
typedef enum hy_dtype {
    HY_DTYPE_F32,
    HY_DTYPE_F16,
    HY_DTYPE_BF16,
    HY_DTYPE_I64,
    HY_DTYPE_I32,
    HY_DTYPE_U8,
    HY_DTYPE_I8,
    HY_DTYPE_F64,
    HY_DTYPE_BOOL,
    HY_DTYPE_COUNT
} hy_dtype;
HY_API const char *hy_dtype_name(hy_dtype t); /* "float32", "float16", ... (torch names) */
HY_API size_t hy_dtype_size(hy_dtype t);

/* ---- images ------------------------------------------------------------------------ */
/* 8-bit interleaved RGB, row-major, stride = 3 * width. */
typedef struct hy_image {
    int width, height;
    uint8_t *data;  /* (h, w, 3) RGB */
    unsigned flags; /* hy_image_flag bits: damage the decoder repaired; 0 for a clean file */
} hy_image;

/* Damage a decoder repaired (img->flags), as OpenCV's imread does; each also logs a
 * HY_LOG_WARN message. */
typedef enum hy_image_flag {
    HY_IMAGE_FLAG_NO_EOI = 1u << 0,    /* JPEG ends where its end-of-image marker should be:
                                          every pixel was read, same pixels as the intact file */
    HY_IMAGE_FLAG_TRUNCATED = 1u << 1, /* JPEG data ends (or is cut by a marker) inside the
                                          compressed pixels: the rest is filled in (grey) */
} hy_image_flag;

/* How much of a cut-short JPEG hy_image_decode_ex repairs instead of failing (HY_ERR_FORMAT,
 * "Premature end of JPEG file"). Other corrupt data, and any damage to a PNG, always fails. */
typedef enum hy_image_repair {
    HY_IMAGE_REPAIR_NONE = 0,      /* intact files only */
    HY_IMAGE_REPAIR_NO_EOI = 1,    /* a missing end-of-image marker (hy_image_decode's level) */
    HY_IMAGE_REPAIR_TRUNCATED = 2, /* also missing pixel data, filled in grey: OpenCV's imread
                                      (what Ultralytics predicts on) */
} hy_image_repair;

/* Decodes JPEG (EXIF orientation applied, as OpenCV imread) or PNG from memory, repairing
 * a missing JPEG end marker (HY_IMAGE_REPAIR_NO_EOI: the pixels are the intact file's). */
HY_API hy_status hy_image_decode(const void *buf, size_t len, hy_image **out);
/* As hy_image_decode with the given repair level; img->flags says what was repaired. */
HY_API hy_status hy_image_decode_ex(const void *buf, size_t len, hy_image_repair repair, hy_image **out);
/* Size of the image hy_image_decode would return (EXIF orientation applied), reading only
 * the headers: microseconds, no pixel memory. Same errors as hy_image_decode for data that
 * is not a JPEG or PNG or whose size is out of range. */
HY_API hy_status hy_image_probe(const void *buf, size_t len, int *width, int *height);
/* Reads and decodes a file; errors name the file. */
HY_API hy_status hy_image_load(const char *path, hy_image **out);
/* As hy_image_load with hy_image_decode_ex's repair level. */
HY_API hy_status hy_image_load_ex(const char *path, hy_image_repair repair, hy_image **out);
/* Wraps a copy of caller RGB pixels (h, w, 3), row stride in bytes (0 = 3*w). */
HY_API hy_status hy_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride, hy_image **out);
HY_API void hy_image_free(hy_image *img);
/* Writes an 8-bit RGB image as JPEG (quality 1..100). */
HY_API hy_status hy_image_save_jpeg(const hy_image *img, const char *path, int quality);

/* ---- model and context ------------------------------------------------------------- */
/* A hy_model is the network as loaded: config, class names, weights (packed once for its
 * device). It is immutable after hy_model_load and may be shared by any number of threads.
 * A hy_context (below) runs it: it owns what a run mutates (threads, backend instance,
 * planned shapes, activation arena, scratch, statistics). One context runs one call at a
 * time (calls on one context are serialised); contexts on one model run concurrently and
 * share the model's weights. */
typedef struct hy_model hy_model;
typedef struct hy_context hy_context;

/* A network input size (multiples of 32), e.g. 640x640, or 480x640 for a portrait image
 * letterboxed in "rect" mode. */
typedef struct hy_shape {
    int width, height;
} hy_shape;

/* How checkpoint tensors are matched to the network. */
typedef enum hy_load_mode {
    HY_LOAD_STRICT,   /* every tensor present with its exact shape, nothing unexpected */
    HY_LOAD_TRANSFER  /* copy tensors whose name and shape match; initialise the rest as
                         Ultralytics does; ignore the others (fine-tuning to a new nc) */
} hy_load_mode;

typedef struct hy_model_params {
    const char *device; /* where the network runs: "cpu" (default), "ref" (plain-C reference
                           kernels, the spec; slow), "cuda", "cuda:N", "N" or "auto"
                           (include/hotyolo/device.h: forms, fallback to cpu) */
    int n_threads;      /* threads for loading (packing) and the default for contexts;
                           0 = number of online cores */
    int imgsz;          /* inference size (long side), multiple of 32; 0 = 640 */
    hy_load_mode mode;  /* default HY_LOAD_STRICT */
    int nc;             /* class count of the network to build; 0 = the file's */
    /* Prefix renames applied to checkpoint names before matching ("OLD=NEW" pairs):
     * map_from[i] -> map_to[i]. "module." and "_orig_mod." prefixes are always stripped. */
    const char *const *map_from;
    const char *const *map_to;
    int n_map;
    int verify;         /* safetensors: re-hash the data against the recorded sha256 */
    int lock_memory;    /* mlock weights and activations (like llama.cpp --mlock); a
                           failure (RLIMIT_MEMLOCK) is logged, not fatal */
    int cache;          /* 1 (hy_model_default_params): a .pt/ONNX source loaded with default
                           matching goes through the packed-weights cache
                           (include/hotyolo/pcache.h); 0: always read the source */
    int no_fallback;    /* 1: a GPU device that cannot be used is an error (HY_ERR_BACKEND)
                           instead of a fallback to cpu; "auto" still picks cpu */
} hy_model_params;
HY_API hy_model_params hy_model_default_params(void);

/* Loads an Ultralytics YOLOv8 checkpoint (.pt, never executing pickle code), validates
 * every tensor name and shape, folds BN and prepares the weights for params->device. */
HY_API hy_status hy_model_load(const char *path, const hy_model_params *params, hy_model **out);
/* Frees the model; every context made from it must have been freed first. */
HY_API void hy_model_free(hy_model *m);

HY_API int hy_model_num_classes(const hy_model *m);
HY_API const char *hy_model_class_name(const hy_model *m, int class_id); /* NULL if out of range */
HY_API const char *hy_model_variant(const hy_model *m);                   /* "n", "s", ... or "" */
HY_API int hy_model_num_threads(const hy_model *m);  /* default threads of its contexts */
HY_API const char *hy_model_format(const hy_model *m); /* "pt", "safetensors", "onnx", ... */
HY_API const char *hy_model_device(const hy_model *m); /* what runs it: "cpu", "ref", "cuda:0" */
/* The device asked for, normalised ("cpu", "cuda:0", "auto"), and why the model runs on
 * another one ("" when it runs where asked; else e.g. "no NVIDIA driver: ..."). */
HY_API const char *hy_model_device_requested(const hy_model *m);
HY_API const char *hy_model_device_fallback(const hy_model *m);
HY_API const char *hy_model_arch(const hy_model *m);   /* "yolov8", "yolov5" */
HY_API const char *hy_model_arch_title(const hy_model *m); /* "YOLOv8", "YOLOv5": for messages */
HY_API int hy_model_imgsz(const hy_model *m);          /* default inference size */

/* What loading did with each tensor of the network (and of the file). */
typedef enum hy_load_item {
    HY_LOAD_TRANSFERRED, /* network tensor taken from the file */
    HY_LOAD_INITIALIZED, /* network tensor not in the file (or other shape): initialised */
    HY_LOAD_IGNORED,     /* file tensor the network does not use */
    HY_LOAD_ITEM_COUNT
} hy_load_item;
HY_API size_t hy_model_load_count(const hy_model *m, hy_load_item what);
/* Tensor name and a reason ("file has 80x64x1x1, model needs 3x64x1x1"; "" if none). */
HY_API const char *hy_model_load_name(const hy_model *m, hy_load_item what, size_t i);
HY_API const char *hy_model_load_reason(const hy_model *m, hy_load_item what, size_t i);
HY_API size_t hy_model_num_tensors(const hy_model *m); /* tensors of the network as loaded */

/* ---- contexts ----------------------------------------------------------------------- */
typedef struct hy_prepare_params {
    const hy_shape *shapes; /* shapes to plan and warm; NULL = { imgsz x imgsz } */
    int n_shapes;
    int warmup_runs;        /* dummy forward passes per shape; default 3, 0 = no warm-up */
    int batch;              /* images per pass planned for every shape; 0 = 1 */
} hy_prepare_params;
HY_API hy_prepare_params hy_prepare_default_params(void);

typedef struct hy_context_params {
    const char *device; /* NULL = the model's device; else must name it */
    int n_threads;      /* 0 = the model's n_threads */
    int prepare;        /* 1: hy_context_create also runs hy_model_prepare(c, &prep) */
    hy_prepare_params prep;
} hy_context_params;
HY_API hy_context_params hy_context_default_params(void);

/* A context on model m (which must outlive it). Creates its thread pool and backend instance;
 * plans nothing unless params->prepare. */
HY_API hy_status hy_context_create(const hy_model *m, const hy_context_params *params, hy_context **out);
/* One call for the simple case: hy_model_load + hy_context_create, with prepare on by default
 * (cp NULL: prepared and warmed for imgsz x imgsz). The context owns the model:
 * hy_context_free frees both. */
HY_API hy_status hy_context_load(const char *path, const hy_model_params *mp, const hy_context_params *cp,
                          hy_context **out);
HY_API void hy_context_free(hy_context *c);
HY_API const hy_model *hy_context_model(const hy_context *c);
HY_API int hy_context_num_threads(const hy_context *c);
HY_API const char *hy_context_device(const hy_context *c);

/* Raw network output for a preprocessed batch x (n, 3, h, w), h and w multiples of 32, in
 * the family's own layout (hy_model_output_shape gives each image's (d0, d1)):
 *   YOLOv8: (n, 4 + nc, A), A = sum over strides 8/16/32 of (h/s)*(w/s): rows 0-3 xywh in
 *           input pixels, then class sigmoid scores;
 *   YOLOv5: (n, A, 5 + nc), A = 3 anchors x that sum: each row x, y, w, h (input pixels),
 *           objectness, class scores (YOLOv5's own export layout). */
HY_API hy_status hy_model_forward(hy_context *c, const float *x, int n, int h, int w, float *out, size_t out_len);
/* Shape (dims[0], dims[1]) of one image's hy_model_forward output for an h x w input. */
HY_API hy_status hy_model_output_shape(const hy_model *m, int h, int w, size_t dims[2]);

/* ---- engine lifecycle: load -> prepare -> warm up -> ready -------------------------- */

/* The network input shape hy_detect uses for a width x height image at inference size
 * imgsz (0 = the model's): Ultralytics' rect letterbox, long side imgsz, padded to the
 * stride. Declare it to hy_model_prepare for a camera's resolution, or for a one-shot image
 * whose size is known from hy_image_probe before it is decoded. */
HY_API hy_status hy_model_input_shape(const hy_model *m, int width, int height, int imgsz, hy_shape *out);


/* Plans the activation arena for every shape (one allocation, pre-faulted), touches the
 * weights, then runs warmup_runs dummy passes per shape. After it, hy_detect on an image
 * whose letterboxed size is a prepared shape allocates nothing but its result. Can be
 * called again with more shapes. */
HY_API hy_status hy_model_prepare(hy_context *c, const hy_prepare_params *p);
/* One dummy pass per prepared shape (e.g. after idle periods). Serialised with hy_detect
 * one pass at a time, so concurrent callers wait at most one forward pass. */
HY_API hy_status hy_model_rewarm(hy_context *c);

/* Where the time went (milliseconds) and what happened since load. */
typedef struct hy_engine_stats {
    double load_ms;          /* hy_model_load of its model: read, validate, fold, pack */
    double prepare_ms;       /* planning + arena populated + weights touched (last hy_model_prepare) */
    double warmup_ms;        /* all warm-up passes (last hy_model_prepare) */
    double first_warmup_ms;  /* latency of the first warm-up pass */
    double last_warmup_ms;   /* latency of the last warm-up pass */
    int n_shapes;            /* shapes planned now */
    int cold_events;         /* shapes planned on demand by hy_detect / hy_model_forward */
    int rewarms;             /* hy_model_rewarm calls */
    uint64_t n_inferences;   /* forward passes run for callers (not warm-up) */
    int memory_locked;       /* 1 when lock_memory was asked and every mlock succeeded */
    int huge_pages;          /* 1: the arena on 2 MiB transparent huge pages; 0: 4 KiB pages
                                (HY_HUGE_PAGES=0, "auto" on a VM whose host takes free pages
                                back, or =probe when huge pages were found slow; docs/design.md) */
    double huge_page_probe_ms; /* HY_HUGE_PAGES=probe: the last arena's chunks try huge pages
                                while each 2 MiB one populates in under 0.5 ms; the time of the
                                one that decided (the first, or the slow one after which 4 KiB
                                pages were used); -1: no probe */
} hy_engine_stats;
/* The context's figures (and its model's load time). */
HY_API hy_status hy_model_engine_stats(const hy_context *c, hy_engine_stats *out);

/* ---- weights files ------------------------------------------------------------------ */
typedef struct hy_convert_params {
    hy_dtype dtype;            /* float dtype written: HY_DTYPE_F32 or HY_DTYPE_F16;
                                  HY_DTYPE_COUNT = keep each tensor's dtype (default) */
    int fuse;                  /* fold BN into conv weight + bias (inference-only file) */
    hy_model_params load;      /* how the input is matched (mode, nc, map) */
} hy_convert_params;
HY_API hy_convert_params hy_convert_default_params(void);

/* Converts any supported weights file (.pt, safetensors, ONNX) to hotyolo safetensors
 * (see docs/formats.md). The output is written to a temporary file and renamed, so an
 * existing out_path is only replaced by a complete file. */
HY_API hy_status hy_convert(const char *in_path, const char *out_path, const hy_convert_params *p);

/* Describes a weights file as JSON (format, architecture, classes, parameter count,
 * dtypes, sha256, metadata; with_tensors adds every tensor). *json_out is freed with
 * hy_free(). */
HY_API hy_status hy_inspect(const char *path, int with_tensors, char **json_out);
/* Re-hashes a hotyolo safetensors file's data section against its recorded sha256.
 * HY_OK when it matches; HY_ERR_FORMAT (with both hashes in hy_last_error) when not. */
HY_API hy_status hy_verify(const char *path);
HY_API void hy_free(void *p);

/* ---- detection --------------------------------------------------------------------- */
typedef struct hy_detect_params {
    float conf;          /* confidence threshold, default 0.25 */
    float iou;           /* NMS IoU threshold, default 0.7 */
    int max_det;         /* default 300 */
    int imgsz;           /* 0 = model's imgsz */
    const int *classes;  /* keep only these class ids (NULL = all) */
    int n_classes;
    int agnostic_nms;    /* 0 = class-aware (Ultralytics default) */
    hy_shape shape;      /* network input shape; 0x0 = automatic (Ultralytics' predict: the
                            minimal rect letterbox for one image or a batch of one size, else
                            imgsz x imgsz); else every image is letterboxed into exactly this
                            shape (multiples of 32), e.g. a prepared camera shape */
} hy_detect_params;
HY_API hy_detect_params hy_detect_default_params(void);
/* The defaults of m's family's own predict tool: YOLOv8 as hy_detect_default_params();
 * YOLOv5 its detect.py's (conf 0.25, iou 0.45, max_det 1000). */
HY_API hy_detect_params hy_model_detect_params(const hy_model *m);

typedef struct hy_detection {
    float x1, y1, x2, y2; /* original-image pixels, clipped */
    float confidence;
    int class_id;
} hy_detection;

/* Per-stage wall time, milliseconds. */
typedef struct hy_timings {
    double decode_ms, preprocess_ms, inference_ms, postprocess_ms;
} hy_timings;

typedef struct hy_result hy_result;

HY_API hy_status hy_detect(hy_context *c, const hy_image *img, const hy_detect_params *p, hy_result **out);
/* Decodes an encoded image (JPEG/PNG) buffer and detects; decode time is recorded. */
HY_API hy_status hy_detect_encoded(hy_context *c, const void *buf, size_t len, const hy_detect_params *p,
                            hy_result **out);
/* n images (of any sizes) in one forward pass of batch n, letterboxed to one shape as
 * Ultralytics batches them (p->shape, else rect when all have one size, else imgsz x imgsz).
 * out[i] gets image i's result (each freed with hy_result_free); on error none is set.
 * n from 1 to 256. */
HY_API hy_status hy_detect_batch(hy_context *c, const hy_image *const *imgs, int n, const hy_detect_params *p,
                          hy_result **out);
HY_API size_t hy_result_count(const hy_result *r);
HY_API const hy_detection *hy_result_get(const hy_result *r, size_t i); /* NULL if out of range */
HY_API hy_timings hy_result_timings(const hy_result *r);
HY_API int hy_result_image_width(const hy_result *r);
HY_API int hy_result_image_height(const hy_result *r);
HY_API hy_shape hy_result_input_shape(const hy_result *r); /* the network input it was detected at */
HY_API void hy_result_free(hy_result *r);

/* Draws boxes with "name score" labels onto img (in place). names may be NULL. */
HY_API hy_status hy_image_draw_detections(hy_image *img, const hy_result *r, const hy_model *m);

#ifdef __cplusplus
}
#endif
#endif /* HOTYOLO_H */
