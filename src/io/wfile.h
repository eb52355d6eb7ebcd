/* Opens a weights file of any supported format, chosen by content (never by extension),
 * and presents it as a hy__wsource. */
#ifndef HY_IO_WFILE_H
#define HY_IO_WFILE_H

#include "io/pt.h"
#include "io/weights.h"

typedef struct hy__wfile hy__wfile;
struct hy__st_file;
struct hy__onnx_file;

/* verify: safetensors only, re-hash the data against the recorded sha256. */
hy_status hy__wfile_open(const char *path, int verify, hy__wfile **out);
void hy__wfile_close(hy__wfile *f);
const hy__wsource *hy__wfile_source(const hy__wfile *f);
/* The underlying reader's object (NULL unless that format). */
const hy__pt_file *hy__wfile_pt(const hy__wfile *f);
const struct hy__st_file *hy__wfile_st(const hy__wfile *f);
const struct hy__onnx_file *hy__wfile_onnx(const hy__wfile *f);

/* Presents a loaded .pt as a source (tensors array allocated into *tensors_out; free it
 * with hy__free; it points into pt). */
hy_status hy__pt_source(const hy__pt_file *pt, hy__wsource *out, hy__wtensor **tensors_out);

/* Any float/int dtype -> float32; dst holds t->numel floats. */
hy_status hy__wtensor_to_f32(const hy__wtensor *t, float *dst);

#endif
