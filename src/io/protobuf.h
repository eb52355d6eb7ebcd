/* Bounded protobuf wire-format reader over a byte span (no schema, no allocation).
 *
 * A hy__pb reader walks the fields of one message. Every length is checked against the
 * enclosing span, varints longer than 10 bytes or above 2^64 are refused, deprecated
 * groups (wire types 3/4) are refused, and nesting is limited to HY_PB_MAX_DEPTH.
 * Errors are HY_ERR_FORMAT with a message naming the byte offset (from the start of the
 * whole buffer); callers prefix it with the file and field.
 *
 *   hy__pb r;
 *   hy__pb_init(&r, buf, len);
 *   hy__pb_field f;
 *   int has;
 *   while ((st = hy__pb_next(&r, &f, &has)) == HY_OK && has) {
 *       if (f.number == 7) { hy__pb sub; st = hy__pb_enter(&r, &f, &sub); ... }
 *   }
 */
#ifndef HY_IO_PROTOBUF_H
#define HY_IO_PROTOBUF_H

#include "core/core.h"

#define HY_PB_MAX_DEPTH 32

enum {
    HY_PB_VARINT = 0,
    HY_PB_FIXED64 = 1,
    HY_PB_LEN = 2,
    HY_PB_FIXED32 = 5,
};

typedef struct hy__pb {
    const uint8_t *base; /* start of the whole buffer (for offsets in messages) */
    const uint8_t *p;    /* next byte to read */
    const uint8_t *end;  /* end of this message */
    int depth;           /* 0 for the top-level message */
} hy__pb;

typedef struct hy__pb_field {
    uint32_t number;     /* 1 .. 2^29-1 */
    int wire;            /* HY_PB_VARINT, HY_PB_FIXED64, HY_PB_LEN, HY_PB_FIXED32 */
    uint64_t u;          /* value of VARINT / FIXED64 / FIXED32 fields */
    const uint8_t *data; /* payload of LEN fields (inside the reader's span) */
    size_t len;
    size_t offset;       /* offset of the field's tag from base */
} hy__pb_field;

void hy__pb_init(hy__pb *r, const uint8_t *buf, size_t len);

/* Reads the next field of r. *has = 0 at the end of the message (then *f is untouched). */
hy_status hy__pb_next(hy__pb *r, hy__pb_field *f, int *has);

/* A reader over the nested message in LEN field f of parent (depth + 1, limited). */
hy_status hy__pb_enter(const hy__pb *parent, const hy__pb_field *f, hy__pb *out);

/* Decodes one varint from [*p, end); advances *p. false when truncated or over 64 bits. */
bool hy__pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Typed scalar views of a field; HY_ERR_FORMAT on a wire-type mismatch. */
hy_status hy__pb_as_u64(const hy__pb_field *f, uint64_t *out);   /* VARINT */
hy_status hy__pb_as_i64(const hy__pb_field *f, int64_t *out);    /* VARINT, int64 */
hy_status hy__pb_as_i32(const hy__pb_field *f, int32_t *out);    /* VARINT, int32 (range-checked) */
hy_status hy__pb_as_float(const hy__pb_field *f, float *out);    /* FIXED32 */
hy_status hy__pb_as_double(const hy__pb_field *f, double *out);  /* FIXED64 */

/* Repeated scalar fields come either one per field (unpacked) or as one LEN field holding
 * the values back to back (packed). These count the values a field contributes
 * (1 when unpacked), validating packed payloads completely. */
hy_status hy__pb_count_varints(const hy__pb_field *f, size_t *count);
hy_status hy__pb_count_fixed(const hy__pb_field *f, int width, size_t *count); /* width 4 or 8 */
/* Appends the field's values at dst[0 .. count) (count from the functions above). */
void hy__pb_get_varints(const hy__pb_field *f, uint64_t *dst);
void hy__pb_get_fixed32(const hy__pb_field *f, uint32_t *dst);
void hy__pb_get_fixed64(const hy__pb_field *f, uint64_t *dst);

/* ---- encoder ---------------------------------------------------------------------------
 * A growing buffer of fields. Nested messages: hy__pbw_begin(w, field) ... hy__pbw_end(w, mark)
 * (the payload is moved once its length is known, so the varint is minimal). The first
 * failure (out of memory) is kept in w->st and every later call does nothing.
 *
 *   hy__pbw w = {0};
 *   size_t m = hy__pbw_begin(&w, 7);
 *   hy__pbw_str(&w, 1, "name");
 *   hy__pbw_end(&w, m);
 *   if (w.st) ...; use w.buf[0 .. w.len); hy__pbw_free(&w); */
typedef struct hy__pbw {
    uint8_t *buf;
    size_t len, cap;
    hy_status st;
} hy__pbw;

void hy__pbw_free(hy__pbw *w);
void hy__pbw_varint(hy__pbw *w, uint32_t field, uint64_t v);   /* VARINT (int32/int64/enum/bool) */
void hy__pbw_fixed32(hy__pbw *w, uint32_t field, uint32_t v);  /* FIXED32 (float bits) */
void hy__pbw_float(hy__pbw *w, uint32_t field, float v);
void hy__pbw_bytes(hy__pbw *w, uint32_t field, const void *data, size_t len); /* LEN */
void hy__pbw_str(hy__pbw *w, uint32_t field, const char *s);
/* Packed repeated int64 (one LEN field); n may be 0 (then nothing is written). */
void hy__pbw_packed_i64(hy__pbw *w, uint32_t field, const int64_t *v, size_t n);
/* Starts LEN field `field` holding a nested message; returns the mark for hy__pbw_end. */
size_t hy__pbw_begin(hy__pbw *w, uint32_t field);
void hy__pbw_end(hy__pbw *w, size_t mark);

#endif
