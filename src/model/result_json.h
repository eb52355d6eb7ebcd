/* Detections of one hy_result as JSON (json-c): the record `hotyolo detect --json` writes and
 * the body of the server's detect reply, so both stay byte-identical where they overlap.
 *
 * Shape (members in this order):
 *   { <head members>, "width", "height",
 *     "detections": [{"class_id", "class_name", "confidence", "box": [x1, y1, x2, y2]}],
 *     "timings_ms": {"decode", "preprocess", "inference", "postprocess", <extra timings>} }
 * confidence rounded to 5 decimals, box to 2, timings to 3, each in its shortest form
 * ("0.89587", "480.0"; hy__json_rounded). class_name is the model's name, or "class_<id>".
 *
 * The two users differ only in the head and the extra timings:
 *   CLI:    head {"image": path}; no extra timings.
 *   server: head {"model": name, "version": v}; extra {"queue", "total"}.
 * Serialise with JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE for the CLI's text. */
#ifndef HY_RESULT_JSON_H
#define HY_RESULT_JSON_H

#include <json-c/json.h>

#include "hotyolo.h"

typedef struct hy__result_json_opts {
    const char *const *head_keys; /* (n_head) string members written first, e.g. "image" */
    const char *const *head_vals; /* (n_head) their values (NULL = JSON null) */
    int n_head;
    const hy_timings *timings;    /* NULL = hy_result_timings(r) (the CLI passes its own decode) */
    const char *const *extra_timing_keys; /* (n_extra) appended to "timings_ms", e.g. "queue" */
    const double *extra_timing_ms;        /* (n_extra) milliseconds */
    int n_extra;
} hy__result_json_opts;

/* A new json-c object for r (free with json_object_put), or NULL when out of memory.
 * m gives the class names (may be NULL: every name is "class_<id>"); o may be NULL. */
json_object *hy__result_json(const hy_result *r, const hy_model *m, const hy__result_json_opts *o);

/* A double that serialises as v rounded to `decimals` places in its shortest form, like
 * Python's round() in the reference files; a non-finite v gives 0. NULL when out of memory. */
json_object *hy__json_rounded(double v, int decimals);

#endif
