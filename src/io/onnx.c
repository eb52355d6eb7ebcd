/* ONNX reader (see onnx.h): the protobuf schema walk and tensor decoding.
 *
 * Load = parse (ModelProto -> GraphProto -> nodes, initializer headers, inputs/outputs; this
 * file), then recognise (is this a YOLOv8 detection export? build the fused float32 weights
 * from its Conv / ConvInteger nodes: onnx_yolov8.c). Tensor payloads are decoded lazily from
 * the input bytes, only for the initializers the weights need, and copied out; the input is
 * not kept. All retained memory lives in the hy__onnx_file's arena, scratch in the context's;
 * both are capped (HY_ONNX_MEM_*). */
#include "io/onnx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "io/onnx_impl.h"
#include "io/protobuf.h"

static bool over_limit(const hy__onnx_ctx *c) {
    return c->tmp.over_limit || (c->f && c->f->arena.over_limit);
}

hy_status hy__onnx_nomem(const hy__onnx_ctx *c) {
    if (over_limit(c))
        return hy__error(HY_ERR_FORMAT,
                         "%s: the model takes more than %zu MiB of memory to parse (%zu-byte "
                         "file; malformed?)",
                         c->what, c->tmp.limit >> 20, c->len);
    return hy__error(HY_ERR_NOMEM, "%s: out of memory while loading the ONNX model", c->what);
}

hy_status hy__onnx_fail(const hy__onnx_ctx *c, hy_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    // Names come from the file: keep control bytes out of the message.
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return hy__error(st, "%s: %s", c->what, msg);
}

/* Walks msg and counts the fields numbered `number`. */
static hy_status count_fields(const hy__pb *msg, uint32_t number, size_t *n) {
    hy__pb r = *msg;
    hy__pb_field fd;
    int has;
    size_t k = 0;
    hy_status st;
    while ((st = hy__pb_next(&r, &fd, &has)) == HY_OK && has) k += fd.number == number;
    if (st) return st;
    *n = k;
    return HY_OK;
}

/* count_fields, refusing more than max (checked before anything is sized by the count). */
static hy_status count_bounded(const hy__pb *msg, uint32_t number, size_t max, const char *what,
                               size_t *n) {
    hy_status st = count_fields(msg, number, n);
    if (!st && *n > max) return hy__error(HY_ERR_UNSUPPORTED, "%zu %s, at most %zu", *n, what, max);
    return st;
}

static hy_status want_len(const hy__pb_field *fd, const char *what) {
    if (fd->wire == HY_PB_LEN) return HY_OK;
    return hy__error(HY_ERR_FORMAT, "field %u (%s) at offset %zu: expected bytes, got wire type %d",
                     fd->number, what, fd->offset, fd->wire);
}

static hy_status get_str(const hy__onnx_ctx *c, const hy__pb_field *fd, const char *what,
                         char **out) {
    hy_status st = want_len(fd, what);
    if (st) return st;
    char *s = hy__arena_strndup(&c->f->arena, fd->data, fd->len);
    if (!s) return hy__onnx_nomem(c);
    *out = s;
    return HY_OK;
}

static int cmp_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

// --- dtypes ---------------------------------------------------------------------------

const char *hy__onnx_dtype_name(int t) {
    switch (t) {
    case HY_ONNX_FLOAT: return "float32";
    case HY_ONNX_UINT8: return "uint8";
    case HY_ONNX_INT8: return "int8";
    case HY_ONNX_UINT16: return "uint16";
    case HY_ONNX_INT16: return "int16";
    case HY_ONNX_INT32: return "int32";
    case HY_ONNX_INT64: return "int64";
    case HY_ONNX_STRING: return "string";
    case HY_ONNX_BOOL: return "bool";
    case HY_ONNX_FLOAT16: return "float16";
    case HY_ONNX_DOUBLE: return "float64";
    case HY_ONNX_UINT32: return "uint32";
    case HY_ONNX_UINT64: return "uint64";
    case HY_ONNX_BFLOAT16: return "bfloat16";
    default: return "?";
    }
}

/* Bytes per element in raw_data; 0 for types we do not decode. */
static size_t elem_size(int t) {
    switch (t) {
    case HY_ONNX_UINT8: case HY_ONNX_INT8: case HY_ONNX_BOOL: return 1;
    case HY_ONNX_UINT16: case HY_ONNX_INT16: case HY_ONNX_FLOAT16: case HY_ONNX_BFLOAT16: return 2;
    case HY_ONNX_FLOAT: case HY_ONNX_INT32: case HY_ONNX_UINT32: return 4;
    case HY_ONNX_INT64: case HY_ONNX_DOUBLE: case HY_ONNX_UINT64: return 8;
    default: return 0;
    }
}

const char *hy__onnx_shape_str(const int64_t *dims, int ndim, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (k < n) snprintf(buf + k, n - k, ")");
    return buf;
}

// --- TensorProto ----------------------------------------------------------------------

/* Reads an int64 repeated field (packed or not) and appends to dims (limit HY_WT_MAX_DIMS). */
static hy_status append_dims(const hy__pb_field *fd, int64_t *dims, int *ndim) {
    size_t n;
    hy_status st = hy__pb_count_varints(fd, &n);
    if (st) return st;
    if (n > (size_t)(HY_WT_MAX_DIMS - *ndim))
        return hy__error(HY_ERR_UNSUPPORTED, "more than %d dimensions", HY_WT_MAX_DIMS);
    uint64_t v[HY_WT_MAX_DIMS];
    hy__pb_get_varints(fd, v);
    for (size_t i = 0; i < n; i++) {
        int64_t d;
        memcpy(&d, &v[i], sizeof d);
        dims[(*ndim)++] = d;
    }
    return HY_OK;
}

static hy_status add_count(size_t *acc, size_t n) {
    if (!hy__add_ok(*acc, n, acc)) return hy__error(HY_ERR_FORMAT, "value count overflows");
    return HY_OK;
}

/* Parses the header of the TensorProto in r into t (name copied into the tmp arena). */
static hy_status parse_tensor(hy__onnx_ctx *c, hy__pb *r, hy__onnx_trec *t) {
    hy__pb_field fd;
    int has, external = 0;
    int64_t location = 0;
    hy_status st;
    t->msg = r->p;
    t->msg_len = (size_t)(r->end - r->p);
    t->offset = (size_t)(r->p - r->base);
    while ((st = hy__pb_next(r, &fd, &has)) == HY_OK && has) {
        size_t n = 0;
        switch (fd.number) {
        case 1: st = append_dims(&fd, t->dims, &t->ndim); break;
        case 2: {
            int32_t v;
            st = hy__pb_as_i32(&fd, &v);
            t->dtype = v;
            break;
        }
        case 3: return hy__error(HY_ERR_UNSUPPORTED, "segmented tensors are not supported");
        case 4:
            if (!(st = hy__pb_count_fixed(&fd, 4, &n))) st = add_count(&t->n_float, n);
            break;
        case 5:
            if (!(st = hy__pb_count_varints(&fd, &n))) st = add_count(&t->n_int32, n);
            break;
        case 7:
            if (!(st = hy__pb_count_varints(&fd, &n))) st = add_count(&t->n_int64, n);
            break;
        case 8:
            if (!(st = want_len(&fd, "name"))) {
                t->name = hy__arena_strndup(&c->tmp, fd.data, fd.len);
                if (!t->name) return hy__onnx_nomem(c);
            }
            break;
        case 9:
            if (!(st = want_len(&fd, "raw_data"))) {
                t->raw = fd.data;
                t->raw_len = fd.len;
                t->has_raw = 1;
            }
            break;
        case 10:
            if (!(st = hy__pb_count_fixed(&fd, 8, &n))) st = add_count(&t->n_double, n);
            break;
        case 11:
            if (!(st = hy__pb_count_varints(&fd, &n))) st = add_count(&t->n_uint64, n);
            break;
        case 13: external = 1; break;
        case 14: st = hy__pb_as_i64(&fd, &location); break;
        default: break; /* string_data, doc_string, metadata_props, unknown */
        }
        if (st) return st;
    }
    if (st) return st;
    if (!t->name) t->name = "";
    if (external || location == 1)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "tensor '%s' keeps its data in an external file (external_data); "
                         "re-export the model with the weights inside the .onnx file",
                         t->name);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i] < 0)
            return hy__error(HY_ERR_FORMAT, "tensor '%s': negative dimension %lld", t->name,
                             (long long)t->dims[i]);
        if ((uint64_t)t->dims[i] > SIZE_MAX || !hy__mul_ok(numel, (size_t)t->dims[i], &numel) ||
            numel > SIZE_MAX / 16)
            return hy__error(HY_ERR_FORMAT, "tensor '%s': element count overflows", t->name);
    }
    t->numel = numel;
    return HY_OK;
}

/* The hy_dtype of an ONNX element type whose raw_data core/dtype.h decodes; false for the
 * four it has no hy_dtype for (uint16, int16, uint32, uint64: from_raw). */
static bool raw_dtype(int t, hy_dtype *out) {
    switch (t) {
    case HY_ONNX_FLOAT: *out = HY_DTYPE_F32; return true;
    case HY_ONNX_FLOAT16: *out = HY_DTYPE_F16; return true;
    case HY_ONNX_BFLOAT16: *out = HY_DTYPE_BF16; return true;
    case HY_ONNX_DOUBLE: *out = HY_DTYPE_F64; return true;
    case HY_ONNX_INT64: *out = HY_DTYPE_I64; return true;
    case HY_ONNX_INT32: *out = HY_DTYPE_I32; return true;
    case HY_ONNX_UINT8: *out = HY_DTYPE_U8; return true;
    case HY_ONNX_INT8: *out = HY_DTYPE_I8; return true;
    case HY_ONNX_BOOL: *out = HY_DTYPE_BOOL; return true;
    default: return false;
    }
}

static float from_raw(int dtype, const uint8_t *p) {
    uint16_t h;
    uint32_t w;
    uint64_t q;
    switch (dtype) {
    case HY_ONNX_UINT16: memcpy(&h, p, 2); return h;
    case HY_ONNX_INT16: memcpy(&h, p, 2); return (float)(int16_t)h;
    case HY_ONNX_UINT32: memcpy(&w, p, 4); return (float)w;
    case HY_ONNX_UINT64: memcpy(&q, p, 8); return (float)q;
    default: return 0.0f;
    }
}

/* One value of a varint-coded typed field (int32_data carries 8- to 32-bit types and the
 * 16-bit floats' bits, uint64_data the unsigned 32/64-bit ones, int64_data int64). */
static float from_int_field(int dtype, uint64_t u) {
    int64_t v;
    memcpy(&v, &u, sizeof v);
    switch (dtype) {
    case HY_ONNX_FLOAT16: return hy__f16_to_f32((uint16_t)(u & 0xffff));
    case HY_ONNX_BFLOAT16: return hy__bf16_to_f32((uint16_t)(u & 0xffff));
    case HY_ONNX_BOOL: return u != 0;
    case HY_ONNX_UINT64: case HY_ONNX_UINT32: return (float)u;
    default: return (float)v;
    }
}

/* The payload field (and its value count) tensor_to_f32 reads for a typed-data tensor. */
static void typed_field(const hy__onnx_trec *t, uint32_t *field, size_t *have, const char **fname) {
    switch (t->dtype) {
    case HY_ONNX_FLOAT: *field = 4, *have = t->n_float, *fname = "float_data"; break;
    case HY_ONNX_DOUBLE: *field = 10, *have = t->n_double, *fname = "double_data"; break;
    case HY_ONNX_INT64: *field = 7, *have = t->n_int64, *fname = "int64_data"; break;
    case HY_ONNX_UINT32:
    case HY_ONNX_UINT64: *field = 11, *have = t->n_uint64, *fname = "uint64_data"; break;
    default: *field = 5, *have = t->n_int32, *fname = "int32_data"; break;
    }
}

hy_status hy__onnx_check_payload(const hy__onnx_ctx *c, const hy__onnx_trec *t) {
    size_t es = elem_size(t->dtype);
    char sh[160];
    if (!es)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "initializer '%s': data type %s (%d) is not supported", t->name,
                             hy__onnx_dtype_name(t->dtype), t->dtype);
    if (t->has_raw) {
        size_t need = t->numel * es; /* numel <= SIZE_MAX / 16 */
        if (t->raw_len != need)
            return hy__onnx_fail(c, HY_ERR_FORMAT,
                                 "initializer '%s': raw_data holds %zu bytes, %s %s needs %zu",
                                 t->name, t->raw_len, hy__onnx_dtype_name(t->dtype),
                                 hy__onnx_shape_str(t->dims, t->ndim, sh, sizeof sh), need);
        return HY_OK;
    }
    uint32_t field;
    size_t have;
    const char *fname;
    typed_field(t, &field, &have, &fname);
    if (have != t->numel)
        return hy__onnx_fail(c, HY_ERR_FORMAT,
                             "initializer '%s': %s has %zu values, %s %s needs %zu", t->name, fname,
                             have, hy__onnx_dtype_name(t->dtype),
                             hy__onnx_shape_str(t->dims, t->ndim, sh, sizeof sh), t->numel);
    return HY_OK;
}

hy_status hy__onnx_decode_f32(const hy__onnx_ctx *c, const hy__onnx_trec *t, float *dst) {
    size_t es = elem_size(t->dtype);
    hy_status st = hy__onnx_check_payload(c, t);
    if (st) return st;
    if (t->has_raw) {
        hy_dtype hd;
        if (raw_dtype(t->dtype, &hd)) hy__to_f32(hd, t->raw, t->numel, dst);
        else
            for (size_t i = 0; i < t->numel; i++) dst[i] = from_raw(t->dtype, t->raw + i * es);
        return HY_OK;
    }
    uint32_t field;
    size_t have;
    const char *fname;
    typed_field(t, &field, &have, &fname);
    (void)have;
    (void)fname;
    hy__pb r;
    hy__pb_init(&r, c->buf, c->len);
    r.p = t->msg;
    r.end = t->msg + t->msg_len;
    hy__pb_field fd;
    int has;
    size_t k = 0;
    while ((st = hy__pb_next(&r, &fd, &has)) == HY_OK && has) {
        if (fd.number != field) continue;
        if (field == 4 || field == 10) {
            int w = field == 4 ? 4 : 8;
            size_t n = fd.wire == HY_PB_LEN ? fd.len / (size_t)w : 1;
            for (size_t i = 0; i < n && k < t->numel; i++) {
                uint64_t u = fd.u;
                if (fd.wire == HY_PB_LEN) {
                    u = 0;
                    for (int b = w - 1; b >= 0; b--)
                        u = u << 8 | fd.data[i * (size_t)w + (size_t)b];
                }
                if (w == 4) {
                    uint32_t u32 = (uint32_t)u;
                    memcpy(&dst[k++], &u32, 4);
                } else {
                    double d;
                    memcpy(&d, &u, 8);
                    dst[k++] = hy__f64_to_f32(d);
                }
            }
        } else if (fd.wire == HY_PB_VARINT) {
            if (k < t->numel) dst[k++] = from_int_field(t->dtype, fd.u);
        } else {
            const uint8_t *p = fd.data, *end = fd.data + fd.len;
            uint64_t u;
            while (k < t->numel && p < end && hy__pb_read_varint(&p, end, &u))
                dst[k++] = from_int_field(t->dtype, u);
        }
    }
    if (st) return hy__error_prefix(st, "%s: initializer '%s'", c->what, t->name);
    return HY_OK;
}

// --- ValueInfoProto -------------------------------------------------------------------

static hy_status parse_dim(hy__onnx_ctx *c, hy__pb *r, hy__onnx_value_info *v) {
    if (v->ndim >= HY_WT_MAX_DIMS)
        return hy__error(HY_ERR_UNSUPPORTED, "more than %d dimensions", HY_WT_MAX_DIMS);
    int k = v->ndim++;
    v->dims[k] = -1;
    hy__pb_field fd;
    int has;
    hy_status st;
    while ((st = hy__pb_next(r, &fd, &has)) == HY_OK && has) {
        if (fd.number == 1) {
            int64_t d;
            if ((st = hy__pb_as_i64(&fd, &d))) return st;
            v->dims[k] = d >= 0 ? d : -1;
        } else if (fd.number == 2) {
            if ((st = get_str(c, &fd, "dim_param", &v->dim_params[k]))) return st;
        }
    }
    return st;
}

static hy_status parse_value_info(hy__onnx_ctx *c, hy__pb *r, hy__onnx_value_info *v) {
    hy__pb_field fd;
    int has;
    hy_status st;
    v->ndim = -1;
    while ((st = hy__pb_next(r, &fd, &has)) == HY_OK && has) {
        if (fd.number == 1) {
            if ((st = get_str(c, &fd, "name", &v->name))) return st;
        } else if (fd.number == 2) { /* TypeProto */
            hy__pb tp, tt, sh, dm;
            hy__pb_field a, b, d;
            if ((st = hy__pb_enter(r, &fd, &tp))) return st;
            while ((st = hy__pb_next(&tp, &a, &has)) == HY_OK && has) {
                if (a.number != 1) continue; /* tensor_type; sequences etc. stay unknown */
                if ((st = hy__pb_enter(&tp, &a, &tt))) return st;
                while ((st = hy__pb_next(&tt, &b, &has)) == HY_OK && has) {
                    if (b.number == 1) {
                        int32_t e;
                        if ((st = hy__pb_as_i32(&b, &e))) return st;
                        v->elem_type = e;
                    } else if (b.number == 2) { /* TensorShapeProto */
                        if ((st = hy__pb_enter(&tt, &b, &sh))) return st;
                        v->ndim = 0;
                        while ((st = hy__pb_next(&sh, &d, &has)) == HY_OK && has) {
                            if (d.number != 1) continue;
                            if ((st = hy__pb_enter(&sh, &d, &dm))) return st;
                            if ((st = parse_dim(c, &dm, v))) return st;
                        }
                    }
                    if (st) return st;
                }
                if (st) return st;
            }
            if (st) return st;
        }
    }
    if (st) return st;
    if (!v->name) v->name = hy__arena_strndup(&c->f->arena, "", 0);
    return v->name ? HY_OK : hy__onnx_nomem(c);
}

// --- NodeProto ------------------------------------------------------------------------

static hy_status parse_attr(hy__onnx_ctx *c, hy__pb *r, hy__onnx_attr *a) {
    hy__pb_field fd;
    int has;
    hy_status st;
    size_t nf = 0, ni = 0, n;
    // Pass 1: sizes of the repeated floats / ints.
    hy__pb r1 = *r;
    while ((st = hy__pb_next(&r1, &fd, &has)) == HY_OK && has) {
        if (fd.number == 7) {
            if ((st = hy__pb_count_fixed(&fd, 4, &n)) || (st = add_count(&nf, n))) return st;
        } else if (fd.number == 8) {
            if ((st = hy__pb_count_varints(&fd, &n)) || (st = add_count(&ni, n))) return st;
        }
    }
    if (st) return st;
    if (nf && !(a->floats = hy__arena_array(&c->f->arena, nf, sizeof(float))))
        return hy__onnx_nomem(c);
    if (ni && !(a->ints = hy__arena_array(&c->f->arena, ni, sizeof(int64_t))))
        return hy__onnx_nomem(c);
    while ((st = hy__pb_next(r, &fd, &has)) == HY_OK && has) {
        switch (fd.number) {
        case 1: st = get_str(c, &fd, "name", &a->name); break;
        case 2: st = hy__pb_as_float(&fd, &a->f); break;
        case 3: st = hy__pb_as_i64(&fd, &a->i); break;
        case 4:
            if (!(st = get_str(c, &fd, "s", &a->s))) a->s_len = fd.len;
            break;
        case 7: {
            size_t k = fd.wire == HY_PB_LEN ? fd.len / 4 : 1;
            uint32_t u;
            for (size_t i = 0; i < k; i++) {
                if (fd.wire == HY_PB_LEN)
                    u = (uint32_t)fd.data[4 * i] | (uint32_t)fd.data[4 * i + 1] << 8 |
                        (uint32_t)fd.data[4 * i + 2] << 16 | (uint32_t)fd.data[4 * i + 3] << 24;
                else
                    u = (uint32_t)fd.u;
                memcpy(&a->floats[a->n_floats++], &u, 4);
            }
            break;
        }
        case 8:
            if (!(st = hy__pb_count_varints(&fd, &n))) {
                hy__pb_get_varints(&fd, (uint64_t *)(void *)(a->ints + a->n_ints));
                a->n_ints += n;
            }
            break;
        case 20: {
            int32_t t;
            st = hy__pb_as_i32(&fd, &t);
            a->type = t;
            break;
        }
        default: break; /* t, g, strings, tensors, graphs, doc_string, ... */
        }
        if (st) return st;
    }
    if (st) return st;
    if (!a->name && !(a->name = hy__arena_strndup(&c->f->arena, "", 0))) return hy__onnx_nomem(c);
    if (!a->s && !(a->s = hy__arena_strndup(&c->f->arena, "", 0))) return hy__onnx_nomem(c);
    return HY_OK;
}

static hy_status parse_node(hy__onnx_ctx *c, hy__pb *r, hy__onnx_node *n) {
    hy_status st;
    size_t ni, no, na;
    if ((st = count_bounded(r, 1, HY_ONNX_MAX_NODE_IO, "inputs", &ni)) ||
        (st = count_bounded(r, 2, HY_ONNX_MAX_NODE_IO, "outputs", &no)) ||
        (st = count_bounded(r, 5, HY_ONNX_MAX_NODE_ATTRS, "attributes", &na)))
        return st;
    hy__arena *A = &c->f->arena;
    if ((ni && !(n->inputs = hy__arena_array(A, ni, sizeof(char *)))) ||
        (no && !(n->outputs = hy__arena_array(A, no, sizeof(char *)))) ||
        (na && !(n->attrs = hy__arena_array(A, na, sizeof(hy__onnx_attr)))))
        return hy__onnx_nomem(c);
    hy__pb_field fd;
    int has;
    while ((st = hy__pb_next(r, &fd, &has)) == HY_OK && has) {
        switch (fd.number) {
        case 1: st = get_str(c, &fd, "input", &n->inputs[n->n_inputs++]); break;
        case 2: st = get_str(c, &fd, "output", &n->outputs[n->n_outputs++]); break;
        case 3: st = get_str(c, &fd, "name", &n->name); break;
        case 4: st = get_str(c, &fd, "op_type", &n->op_type); break;
        case 5: {
            hy__pb sub;
            size_t k = n->n_attrs++;
            if (!(st = hy__pb_enter(r, &fd, &sub)) && (st = parse_attr(c, &sub, &n->attrs[k])))
                st = hy__error_prefix(st, "attribute %zu", k);
            break;
        }
        case 7: st = get_str(c, &fd, "domain", &n->domain); break;
        default: break;
        }
        if (st) return st;
    }
    if (st) return st;
    if ((!n->op_type && !(n->op_type = hy__arena_strndup(A, "", 0))) ||
        (!n->name && !(n->name = hy__arena_strndup(A, "", 0))) ||
        (!n->domain && !(n->domain = hy__arena_strndup(A, "", 0))))
        return hy__onnx_nomem(c);
    return HY_OK;
}

// --- GraphProto / ModelProto ----------------------------------------------------------

static int cmp_trec_name(const void *a, const void *b) {
    return cmp_str((*(const hy__onnx_trec *const *)a)->name,
                   (*(const hy__onnx_trec *const *)b)->name);
}

static hy_status parse_graph(hy__onnx_ctx *c, hy__pb *g) {
    hy__onnx_file *f = c->f;
    hy_status st;
    size_t nn, ninit, nin, nout;
    if ((st = count_bounded(g, 1, HY_ONNX_MAX_NODES, "nodes", &nn)) ||
        (st = count_bounded(g, 5, HY_ONNX_MAX_INITIALIZERS, "initializers", &ninit)) ||
        (st = count_bounded(g, 11, HY_ONNX_MAX_VALUE_INFOS, "inputs", &nin)) ||
        (st = count_bounded(g, 12, HY_ONNX_MAX_VALUE_INFOS, "outputs", &nout)))
        return st;
    if ((nn && !(f->nodes = hy__arena_array(&f->arena, nn, sizeof(hy__onnx_node)))) ||
        (ninit && !(c->inits = hy__arena_array(&c->tmp, ninit, sizeof(hy__onnx_trec)))) ||
        (nin && !(c->inputs = hy__arena_array(&c->tmp, nin, sizeof(hy__onnx_value_info)))) ||
        (nout && !(c->outputs = hy__arena_array(&c->tmp, nout, sizeof(hy__onnx_value_info)))))
        return hy__onnx_nomem(c);
    hy__pb_field fd;
    int has;
    while ((st = hy__pb_next(g, &fd, &has)) == HY_OK && has) {
        hy__pb sub;
        switch (fd.number) {
        case 1: {
            size_t k = f->n_nodes++;
            if (!(st = hy__pb_enter(g, &fd, &sub)) && (st = parse_node(c, &sub, &f->nodes[k])))
                st = hy__error_prefix(st, "node %zu", k);
            break;
        }
        case 2: st = get_str(c, &fd, "name", &f->graph_name); break;
        case 5: {
            size_t k = c->n_inits++;
            if (!(st = hy__pb_enter(g, &fd, &sub)) && (st = parse_tensor(c, &sub, &c->inits[k])))
                st = hy__error_prefix(st, "initializer %zu", k);
            break;
        }
        case 11: {
            size_t k = c->n_inputs++;
            if (!(st = hy__pb_enter(g, &fd, &sub)) &&
                (st = parse_value_info(c, &sub, &c->inputs[k])))
                st = hy__error_prefix(st, "input %zu", k);
            break;
        }
        case 12: {
            size_t k = c->n_outputs++;
            if (!(st = hy__pb_enter(g, &fd, &sub)) &&
                (st = parse_value_info(c, &sub, &c->outputs[k])))
                st = hy__error_prefix(st, "output %zu", k);
            break;
        }
        default: break; /* doc_string, value_info, quantization_annotation, ... */
        }
        if (st) return st;
    }
    if (st) return st;
    if (!f->graph_name && !(f->graph_name = hy__arena_strndup(&f->arena, "", 0)))
        return hy__onnx_nomem(c);
    f->n_initializers = c->n_inits;
    // Initializers by name, for O(log n) lookups; duplicate names are malformed.
    if (c->n_inits) {
        c->by_name = hy__arena_array(&c->tmp, c->n_inits, sizeof(hy__onnx_trec *));
        if (!c->by_name) return hy__onnx_nomem(c);
        for (size_t i = 0; i < c->n_inits; i++) c->by_name[i] = &c->inits[i];
        qsort(c->by_name, c->n_inits, sizeof(hy__onnx_trec *), cmp_trec_name);
        for (size_t i = 1; i < c->n_inits; i++)
            if (!strcmp(c->by_name[i - 1]->name, c->by_name[i]->name))
                return hy__error(HY_ERR_FORMAT, "initializer name '%s' appears twice",
                                 c->by_name[i]->name);
    }
    return HY_OK;
}

static hy_status parse_model(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    hy__pb r;
    hy__pb_init(&r, c->buf, c->len);
    size_t nmeta;
    hy_status st = count_fields(&r, 14, &nmeta);
    if (st) return hy__error_prefix(st, "truncated or not an ONNX model");
    if (nmeta > HY_ONNX_MAX_METADATA)
        return hy__error(HY_ERR_UNSUPPORTED, "%zu metadata_props entries, at most %d", nmeta,
                         HY_ONNX_MAX_METADATA);
    if (nmeta && !(f->metadata = hy__arena_array(&f->arena, nmeta, sizeof(hy__onnx_kv))))
        return hy__onnx_nomem(c);
    hy__pb_field fd;
    int has, have_ir = 0, have_graph = 0;
    f->opset = -1;
    while ((st = hy__pb_next(&r, &fd, &has)) == HY_OK && has) {
        hy__pb sub;
        hy__pb_field a;
        switch (fd.number) {
        case 1:
            st = hy__pb_as_i64(&fd, &f->ir_version);
            have_ir = 1;
            break;
        case 2: st = get_str(c, &fd, "producer_name", &f->producer_name); break;
        case 3: st = get_str(c, &fd, "producer_version", &f->producer_version); break;
        case 7:
            if (have_graph)
                return hy__error(HY_ERR_UNSUPPORTED, "the model has two 'graph' fields");
            have_graph = 1;
            if ((st = want_len(&fd, "graph"))) break;
            c->graph = fd.data;
            c->graph_len = fd.len;
            break;
        case 8: { /* OperatorSetIdProto */
            char *domain = NULL;
            int64_t version = -1;
            if ((st = hy__pb_enter(&r, &fd, &sub))) break;
            while ((st = hy__pb_next(&sub, &a, &has)) == HY_OK && has) {
                if (a.number == 1) st = get_str(c, &a, "opset_import.domain", &domain);
                else if (a.number == 2) st = hy__pb_as_i64(&a, &version);
                if (st) break;
            }
            if (!st && (!domain || !*domain || !strcmp(domain, "ai.onnx"))) f->opset = version;
            if (st) st = hy__error_prefix(st, "opset_import");
            break;
        }
        case 14: { /* StringStringEntryProto */
            hy__onnx_kv *kv = &f->metadata[f->n_metadata++];
            if ((st = hy__pb_enter(&r, &fd, &sub))) break;
            while ((st = hy__pb_next(&sub, &a, &has)) == HY_OK && has) {
                if (a.number == 1) st = get_str(c, &a, "key", &kv->key);
                else if (a.number == 2) st = get_str(c, &a, "value", &kv->value);
                if (st) break;
            }
            if (!st && ((!kv->key && !(kv->key = hy__arena_strndup(&f->arena, "", 0))) ||
                        (!kv->value && !(kv->value = hy__arena_strndup(&f->arena, "", 0)))))
                return hy__onnx_nomem(c);
            if (st) st = hy__error_prefix(st, "metadata_props %zu", f->n_metadata - 1);
            break;
        }
        default: break; /* domain, model_version, doc_string, training_info, functions... */
        }
        if (st) return st;
    }
    if (st) return hy__error_prefix(st, "truncated or not an ONNX model");
    if (!have_ir || !have_graph)
        return hy__error(HY_ERR_FORMAT, "not an ONNX model (no %s field)",
                         !have_ir ? "ir_version" : "graph");
    if (f->ir_version < 1 || f->ir_version > 100)
        return hy__error(HY_ERR_FORMAT, "implausible ir_version %lld (not an ONNX model?)",
                         (long long)f->ir_version);
    if ((!f->producer_name && !(f->producer_name = hy__arena_strndup(&f->arena, "", 0))) ||
        (!f->producer_version && !(f->producer_version = hy__arena_strndup(&f->arena, "", 0))))
        return hy__onnx_nomem(c);
    hy__pb g;
    hy__pb_init(&g, c->buf, c->len);
    g.p = c->graph;
    g.end = c->graph + c->graph_len;
    g.depth = 1;
    if ((st = parse_graph(c, &g))) return hy__error_prefix(st, "graph");
    return HY_OK;
}

// --- lookups --------------------------------------------------------------------------

hy__onnx_trec *hy__onnx_init_find(const hy__onnx_ctx *c, const char *name) {
    size_t lo = 0, hi = c->n_inits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int k = strcmp(c->by_name[mid]->name, name);
        if (!k) return c->by_name[mid];
        if (k < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

// --- metadata -------------------------------------------------------------------------

const char *hy__onnx_meta(const hy__onnx_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = f->n_metadata; i-- > 0;) /* the last entry wins, as in a dict */
        if (!strcmp(f->metadata[i].key, key)) return f->metadata[i].value;
    return NULL;
}

// --- public ---------------------------------------------------------------------------

hy_status hy__onnx_load_buffer(const uint8_t *buf, size_t len, const char *what,
                               hy__onnx_file **out) {
    if (!what) what = "(buffer)";
    if (!out || (!buf && len)) return hy__error(HY_ERR_INVALID_ARG, "%s: invalid argument", what);
    hy__onnx_ctx c = {.what = what, .buf = buf, .len = len};
    size_t cap = len > (SIZE_MAX - HY_ONNX_MEM_BASE) / HY_ONNX_MEM_PER_BYTE
                     ? SIZE_MAX
                     : HY_ONNX_MEM_BASE + len * HY_ONNX_MEM_PER_BYTE;
    hy__arena_init(&c.tmp, cap);
    hy_status st = HY_ERR_NOMEM;
    hy__onnx_file *f = hy__calloc(1, sizeof *f);
    if (!f) {
        st = hy__onnx_nomem(&c);
        goto fail;
    }
    hy__arena_init(&f->arena, cap);
    c.f = f;
    if (!(f->what = hy__arena_strndup(&f->arena, what, strlen(what)))) {
        st = hy__onnx_nomem(&c);
        goto fail;
    }
    if (len == 0) {
        st = hy__onnx_fail(&c, HY_ERR_FORMAT, "empty file (not an ONNX model)");
        goto fail;
    }
    if ((st = parse_model(&c))) {
        if (over_limit(&c))
            st = hy__onnx_nomem(&c); /* without the field path */
        else if (st != HY_ERR_NOMEM)
            st = hy__error_prefix(st, "%s", what);
        goto fail;
    }
    if ((st = hy__onnx_yolov8_recognise(&c))) goto fail;
    hy__arena_deinit(&c.tmp);
    *out = f;
    return HY_OK;
fail:
    hy__arena_deinit(&c.tmp);
    hy__onnx_free(f);
    return st;
}

hy_status hy__onnx_load(const char *path, hy__onnx_file **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__onnx_load: NULL argument");
    hy__map m;
    hy_status st = hy__map_open(path, &m);
    if (st) return st;
    st = hy__onnx_load_buffer(m.data, m.size, path, out);
    hy__map_close(&m);
    return st;
}

void hy__onnx_free(hy__onnx_file *f) {
    if (!f) return;
    hy__arena_deinit(&f->arena);
    hy__free(f);
}

hy_status hy__onnx_source(const hy__onnx_file *f, hy__wsource *out) {
    if (!f || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__onnx_source: NULL argument");
    hy__wsource s;
    memset(&s, 0, sizeof s);
    s.format = HY_WFORMAT_ONNX;
    s.arch = "yolov8"; /* the reader only accepts YOLOv8 detection exports */
    s.tensors = f->tensors;
    s.n_tensors = f->n_tensors;
    s.fused = 1;
    s.nc = f->nc;
    memcpy(s.scale, f->scale, sizeof s.scale);
    s.imgsz = f->imgsz;
    s.names = f->names;
    s.n_names = f->n_names;
    *out = s;
    return HY_OK;
}

const hy__wtensor *hy__onnx_find(const hy__onnx_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const hy__onnx_attr *hy__onnx_node_attr(const hy__onnx_node *n, const char *name) {
    if (!n || !name) return NULL;
    for (size_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}
