/* PyTorch .pt writer: a protocol-2 pickle builder (only the opcodes and globals that
 * torch.load(weights_only=True) of torch 1.13 accepts) and the zip container as torch.save
 * lays it out ("archive/data.pkl", "archive/byteorder", "archive/data/<k>",
 * "archive/version"; stored, each record's data 64-byte aligned through the local header's
 * extra field, crc32 from zlib). Also the atomic file write every exporter uses.
 *
 *   hy__pkw w = {0};
 *   hy__pkw_proto(&w);
 *   hy__pkw_dict_begin(&w, 0);
 *   hy__pkw_str(&w, "state_dict"); hy__pkw_dict_begin(&w, 1);        // OrderedDict
 *   hy__pkw_str(&w, "model.0.conv.weight"); hy__pkw_tensor(&w, &t, 0); // storage "0"
 *   hy__pkw_dict_end(&w); hy__pkw_dict_end(&w);
 *   hy__pkw_stop(&w);
 *   hy__pt_write(path, &w, storages, n, 0);
 */
#ifndef HY_IO_PT_WRITE_H
#define HY_IO_PT_WRITE_H

#include "core/core.h"
#include "io/weights.h"

typedef struct hy__pkw {
    uint8_t *buf;
    size_t len, cap;
    hy_status st;          /* first failure; later calls do nothing */
} hy__pkw;

void hy__pkw_free(hy__pkw *w);
void hy__pkw_proto(hy__pkw *w);          /* PROTO 2: first */
void hy__pkw_stop(hy__pkw *w);           /* STOP: last */
void hy__pkw_none(hy__pkw *w);
void hy__pkw_bool(hy__pkw *w, int v);
void hy__pkw_int(hy__pkw *w, int64_t v);
void hy__pkw_float(hy__pkw *w, double v);  /* as text: torch 1.13 weights_only has no BINFLOAT */
void hy__pkw_str(hy__pkw *w, const char *s); /* UTF-8 */
/* Containers: begin, the items (dict: key, value, key, value...), end. ordered: an
 * OrderedDict (collections.OrderedDict()) instead of a dict. */
void hy__pkw_dict_begin(hy__pkw *w, int ordered);
void hy__pkw_dict_end(hy__pkw *w);
void hy__pkw_list_begin(hy__pkw *w);
void hy__pkw_list_end(hy__pkw *w);
void hy__pkw_tuple_begin(hy__pkw *w);
void hy__pkw_tuple_end(hy__pkw *w);
/* torch._utils._rebuild_tensor_v2(storage "<key>" of t's dtype and numel, 0, t's shape,
 * contiguous strides, False, OrderedDict()). Dtypes: F32, F16, BF16, F64, I64, I32, U8, I8,
 * BOOL; others set HY_ERR_UNSUPPORTED. */
void hy__pkw_tensor(hy__pkw *w, const hy__wtensor *t, size_t key);
/* A JSON value (text) as the equivalent Python value: objects -> dict, arrays -> list,
 * integers -> int, other numbers -> their text (hy__pkw_float), strings, true/false/null. HY_ERR_FORMAT when text is not JSON. */
hy_status hy__pkw_json(hy__pkw *w, const char *text);

/* Writes the zip: data.pkl = w's bytes, storage k = tensors[k]'s data (numel * itemsize
 * bytes). Through hy__write_file's temporary-file rule. */
hy_status hy__pt_write(const char *path, const hy__pkw *w, const hy__wtensor *tensors, size_t n, int overwrite);

/* Writes path through a temporary file in its folder, fsynced, then renamed into place.
 * overwrite = 0: an existing path is left as it is (HY_ERR_IO, "... exists"; the check and
 * the placing are one link(2)). Parts: (data, len) for i < n, written in order. */
typedef struct hy__wpart {
    const void *data;
    size_t len;
} hy__wpart;
hy_status hy__write_file(const char *path, const hy__wpart *parts, size_t n, int overwrite);

#endif
