/* Bounded protobuf wire-format reader (see protobuf.h). */
#include "io/protobuf.h"

#include <string.h>

static size_t off(const hy__pb *r, const uint8_t *p) { return (size_t)(p - r->base); }

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const uint8_t *p) {
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

void hy__pb_init(hy__pb *r, const uint8_t *buf, size_t len) {
    r->base = buf;
    r->p = buf;
    r->end = buf + len;
    r->depth = 0;
}

bool hy__pb_read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return false;
        uint8_t b = *p++;
        // The 10th byte holds bit 63 only: anything above would overflow 64 bits.
        if (i == 9 && b > 1) return false;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

hy_status hy__pb_next(hy__pb *r, hy__pb_field *f, int *has) {
    if (r->p >= r->end) {
        *has = 0;
        return HY_OK;
    }
    const uint8_t *p = r->p;
    size_t at = off(r, p);
    uint64_t key;
    if (!hy__pb_read_varint(&p, r->end, &key))
        return hy__error(HY_ERR_FORMAT, "truncated or overlong field tag at offset %zu", at);
    uint64_t number = key >> 3;
    int wire = (int)(key & 7);
    if (number == 0 || number > 0x1fffffff)
        return hy__error(HY_ERR_FORMAT, "invalid field number %llu at offset %zu",
                         (unsigned long long)number, at);
    hy__pb_field g = {.number = (uint32_t)number, .wire = wire, .offset = at};
    switch (wire) {
    case HY_PB_VARINT:
        if (!hy__pb_read_varint(&p, r->end, &g.u))
            return hy__error(HY_ERR_FORMAT, "field %u: truncated or overlong varint at offset %zu",
                             g.number, at);
        break;
    case HY_PB_FIXED64:
        if ((size_t)(r->end - p) < 8)
            return hy__error(HY_ERR_FORMAT, "field %u: truncated 64-bit value at offset %zu",
                             g.number, at);
        g.u = load_le64(p);
        p += 8;
        break;
    case HY_PB_FIXED32:
        if ((size_t)(r->end - p) < 4)
            return hy__error(HY_ERR_FORMAT, "field %u: truncated 32-bit value at offset %zu",
                             g.number, at);
        g.u = load_le32(p);
        p += 4;
        break;
    case HY_PB_LEN: {
        uint64_t n;
        if (!hy__pb_read_varint(&p, r->end, &n))
            return hy__error(HY_ERR_FORMAT, "field %u: truncated length at offset %zu", g.number,
                             at);
        if (n > (uint64_t)(r->end - p))
            return hy__error(HY_ERR_FORMAT,
                             "field %u at offset %zu: length %llu runs past the end of its "
                             "enclosing message (%zu bytes left)",
                             g.number, at, (unsigned long long)n, (size_t)(r->end - p));
        g.data = p;
        g.len = (size_t)n;
        p += n;
        break;
    }
    case 3:
    case 4:
        return hy__error(HY_ERR_FORMAT,
                         "field %u at offset %zu: deprecated group wire type %d is not supported",
                         g.number, at, wire);
    default:
        return hy__error(HY_ERR_FORMAT, "field %u at offset %zu: invalid wire type %d", g.number,
                         at, wire);
    }
    r->p = p;
    *f = g;
    *has = 1;
    return HY_OK;
}

hy_status hy__pb_enter(const hy__pb *parent, const hy__pb_field *f, hy__pb *out) {
    if (f->wire != HY_PB_LEN)
        return hy__error(HY_ERR_FORMAT, "field %u at offset %zu: expected a message, got wire type %d",
                         f->number, f->offset, f->wire);
    if (parent->depth + 1 > HY_PB_MAX_DEPTH)
        return hy__error(HY_ERR_FORMAT, "field %u at offset %zu: messages nested deeper than %d",
                         f->number, f->offset, HY_PB_MAX_DEPTH);
    out->base = parent->base;
    out->p = f->data;
    out->end = f->data + f->len;
    out->depth = parent->depth + 1;
    return HY_OK;
}

static hy_status wire_mismatch(const hy__pb_field *f, const char *want) {
    return hy__error(HY_ERR_FORMAT, "field %u at offset %zu: expected %s, got wire type %d",
                     f->number, f->offset, want, f->wire);
}

hy_status hy__pb_as_u64(const hy__pb_field *f, uint64_t *out) {
    if (f->wire != HY_PB_VARINT) return wire_mismatch(f, "a varint");
    *out = f->u;
    return HY_OK;
}

hy_status hy__pb_as_i64(const hy__pb_field *f, int64_t *out) {
    if (f->wire != HY_PB_VARINT) return wire_mismatch(f, "a varint");
    // int64 is two's complement on the wire: reinterpret without implementation-defined casts.
    uint64_t u = f->u;
    int64_t v;
    memcpy(&v, &u, sizeof v);
    *out = v;
    return HY_OK;
}

hy_status hy__pb_as_i32(const hy__pb_field *f, int32_t *out) {
    int64_t v = 0;
    hy_status st = hy__pb_as_i64(f, &v);
    if (st) return st;
    if (v < INT32_MIN || v > INT32_MAX)
        return hy__error(HY_ERR_FORMAT, "field %u at offset %zu: value %lld out of int32 range",
                         f->number, f->offset, (long long)v);
    *out = (int32_t)v;
    return HY_OK;
}

hy_status hy__pb_as_float(const hy__pb_field *f, float *out) {
    if (f->wire != HY_PB_FIXED32) return wire_mismatch(f, "a 32-bit float");
    uint32_t u = (uint32_t)f->u;
    memcpy(out, &u, 4);
    return HY_OK;
}

hy_status hy__pb_as_double(const hy__pb_field *f, double *out) {
    if (f->wire != HY_PB_FIXED64) return wire_mismatch(f, "a 64-bit double");
    memcpy(out, &f->u, 8);
    return HY_OK;
}

hy_status hy__pb_count_varints(const hy__pb_field *f, size_t *count) {
    if (f->wire == HY_PB_VARINT) {
        *count = 1;
        return HY_OK;
    }
    if (f->wire != HY_PB_LEN) return wire_mismatch(f, "varints");
    const uint8_t *p = f->data, *end = f->data + f->len;
    size_t n = 0;
    while (p < end) {
        uint64_t v;
        if (!hy__pb_read_varint(&p, end, &v))
            return hy__error(HY_ERR_FORMAT,
                             "field %u at offset %zu: packed varint %zu truncated or overlong",
                             f->number, f->offset, n);
        n++;
    }
    *count = n;
    return HY_OK;
}

hy_status hy__pb_count_fixed(const hy__pb_field *f, int width, size_t *count) {
    int want = width == 4 ? HY_PB_FIXED32 : HY_PB_FIXED64;
    if (f->wire == want) {
        *count = 1;
        return HY_OK;
    }
    if (f->wire != HY_PB_LEN) return wire_mismatch(f, width == 4 ? "32-bit values" : "64-bit values");
    if (f->len % (size_t)width)
        return hy__error(HY_ERR_FORMAT,
                         "field %u at offset %zu: packed length %zu is not a multiple of %d",
                         f->number, f->offset, f->len, width);
    *count = f->len / (size_t)width;
    return HY_OK;
}

void hy__pb_get_varints(const hy__pb_field *f, uint64_t *dst) {
    if (f->wire == HY_PB_VARINT) {
        dst[0] = f->u;
        return;
    }
    const uint8_t *p = f->data, *end = f->data + f->len;
    size_t i = 0;
    uint64_t v;
    while (p < end && hy__pb_read_varint(&p, end, &v)) dst[i++] = v;
}

void hy__pb_get_fixed32(const hy__pb_field *f, uint32_t *dst) {
    if (f->wire != HY_PB_LEN) {
        dst[0] = (uint32_t)f->u;
        return;
    }
    for (size_t i = 0; i < f->len / 4; i++) dst[i] = load_le32(f->data + 4 * i);
}

void hy__pb_get_fixed64(const hy__pb_field *f, uint64_t *dst) {
    if (f->wire != HY_PB_LEN) {
        dst[0] = f->u;
        return;
    }
    for (size_t i = 0; i < f->len / 8; i++) dst[i] = load_le64(f->data + 8 * i);
}

/* ---- encoder ------------------------------------------------------------------------- */

void hy__pbw_free(hy__pbw *w) {
    hy__free(w->buf);
    memset(w, 0, sizeof *w);
}

static bool pbw_reserve(hy__pbw *w, size_t extra) {
    if (w->st) return false;
    if (w->len + extra <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + extra) {
        if (cap > SIZE_MAX / 2) {
            w->st = hy__error(HY_ERR_NOMEM, "protobuf: message too large");
            return false;
        }
        cap *= 2;
    }
    uint8_t *b = hy__realloc(w->buf, cap);
    if (!b) {
        w->st = hy__error(HY_ERR_NOMEM, "protobuf: out of memory (%zu bytes)", cap);
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void pbw_raw_varint(hy__pbw *w, uint64_t v) {
    if (pbw_reserve(w, 10)) w->len += put_varint(w->buf + w->len, v);
}

static void pbw_tag(hy__pbw *w, uint32_t field, int wire) { pbw_raw_varint(w, ((uint64_t)field << 3) | (uint64_t)wire); }

void hy__pbw_varint(hy__pbw *w, uint32_t field, uint64_t v) {
    pbw_tag(w, field, HY_PB_VARINT);
    pbw_raw_varint(w, v);
}

void hy__pbw_fixed32(hy__pbw *w, uint32_t field, uint32_t v) {
    pbw_tag(w, field, HY_PB_FIXED32);
    if (!pbw_reserve(w, 4)) return;
    for (int i = 0; i < 4; i++) w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

void hy__pbw_float(hy__pbw *w, uint32_t field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    hy__pbw_fixed32(w, field, u);
}

void hy__pbw_bytes(hy__pbw *w, uint32_t field, const void *data, size_t len) {
    pbw_tag(w, field, HY_PB_LEN);
    pbw_raw_varint(w, len);
    if (!pbw_reserve(w, len)) return;
    if (len) memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void hy__pbw_str(hy__pbw *w, uint32_t field, const char *s) { hy__pbw_bytes(w, field, s, strlen(s)); }

void hy__pbw_packed_i64(hy__pbw *w, uint32_t field, const int64_t *v, size_t n) {
    if (!n) return;
    size_t m = hy__pbw_begin(w, field);
    for (size_t i = 0; i < n; i++) pbw_raw_varint(w, (uint64_t)v[i]);
    hy__pbw_end(w, m);
}

/* The payload is written after the tag; hy__pbw_end inserts the length before it. */
size_t hy__pbw_begin(hy__pbw *w, uint32_t field) {
    pbw_tag(w, field, HY_PB_LEN);
    return w->len;
}

void hy__pbw_end(hy__pbw *w, size_t mark) {
    if (w->st) return;
    size_t len = w->len - mark;
    uint8_t v[10];
    size_t n = put_varint(v, len);
    if (!pbw_reserve(w, n)) return;
    memmove(w->buf + mark + n, w->buf + mark, len);
    memcpy(w->buf + mark, v, n);
    w->len += n;
}
