/* Python literals as Ultralytics writes them into exported files' text metadata
 * (ONNX metadata_props, and any other format that stores str(obj)): class names
 * "{0: 'person', 1: 'bicycle'}" (or a list), and sizes "[640, 640]" / "640".
 *
 * Untrusted text: the work is linear in the text, and what is kept is bounded by the
 * caller's caps (checked while parsing, before anything is copied). */
#ifndef HY_IO_PYLITERAL_H
#define HY_IO_PYLITERAL_H

#include "core/arena.h"
#include "core/core.h"

/* Skips spaces, tabs and newlines at *p. */
void hy__py_skip_ws(const char **p);

/* Parses the Python string literal ('...' or "...", backslash escapes as Python 3 reads them)
 * at *p into dst (UTF-8, not NUL-terminated; dst == NULL only validates and measures) and
 * advances *p past it. The work stops at the first byte over cap. 0 on failure with *err set
 * (a syntax error), or *too_long = 1 when the value needs more than cap bytes. */
int hy__py_string(const char **p, char *dst, size_t cap, size_t *len, const char **err,
                  int *too_long);

/* Class names from str(dict) "{0: 'a', 1: 'b'}" (keys exactly 0..n-1, any order) or str(list)
 * "['a', 'b']"; "{}" gives *n_names = 0. Names (NUL-terminated) and the array go to `out`;
 * `tmp` holds scratch. At most max_names names of at most max_name_bytes (<= 4096) bytes
 * each; past max_names the entries are only counted, for the message. Errors (HY_ERR_FORMAT; the caller prefixes the
 * field): "expected '{' or '[' at character N", "<what> at character N", "class K: name
 * longer than B bytes", "N classes, at most M", "class ids are not 0..N-1 (...)";
 * HY_ERR_NOMEM. */
hy_status hy__py_names_parse(const char *text, size_t max_names, size_t max_name_bytes,
                             hy__arena *out, hy__arena *tmp, char ***names, size_t *n_names);

/* "[h, w]", "(h, w)", "[s]" or "s" (positive integers up to 1e6) -> hw (s: hw = {s, s}).
 * 0 when the text is anything else. */
int hy__py_int_pair(const char *s, int hw[2]);

#endif
