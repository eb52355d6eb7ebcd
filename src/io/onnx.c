/* ONNX reader for Ultralytics YOLOv8 detection exports (see onnx.h).
 *
 * Load = parse (ModelProto -> GraphProto -> nodes, initializer headers, inputs/outputs),
 * recognise (is this a YOLOv8 detection export?), then build the fused float32 weights
 * from the Conv / ConvInteger nodes. Tensor payloads are decoded lazily from the input
 * bytes, only for the initializers the weights need, and copied out; the input is not
 * kept. All retained memory lives in one arena owned by the hy__onnx_file. */
#include "io/onnx.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/protobuf.h"
#include "io/pt.h" /* hy__f16_to_f32, hy__bf16_to_f32 */

// --- arena ----------------------------------------------------------------------------

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    _Alignas(64) unsigned char data[];
} arena_chunk;

struct hy__onnx_arena {
    arena_chunk *head;
};

#define ARENA_CHUNK (64 * 1024)

/* Zeroed, `align`-aligned (power of two <= 64) block; NULL on overflow / out of memory. */
static void *arena_alloc(struct hy__onnx_arena *a, size_t n, size_t align) {
    arena_chunk *c = a->head;
    if (c) {
        size_t at = (c->used + align - 1) & ~(align - 1);
        if (at <= c->cap && n <= c->cap - at) {
            c->used = at + n;
            memset(c->data + at, 0, n);
            return c->data + at;
        }
    }
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK, total;
    if (!hy__add_ok(sizeof(arena_chunk), cap, &total)) return NULL;
    c = hy__aligned_alloc(64, total);
    if (!c) return NULL;
    c->cap = cap;
    c->used = n;
    memset(c->data, 0, n);
    // A big block gets its own chunk behind the head, so the head keeps its free space.
    if (a->head && n > ARENA_CHUNK) {
        c->next = a->head->next;
        a->head->next = c;
    } else {
        c->next = a->head;
        a->head = c;
    }
    return c->data;
}

/* Array of n elements of size sz (overflow-checked). */
static void *arena_array(struct hy__onnx_arena *a, size_t n, size_t sz) {
    size_t bytes;
    if (!hy__mul_ok(n, sz, &bytes)) return NULL;
    return arena_alloc(a, bytes ? bytes : 1, 16);
}

static char *arena_strndup(struct hy__onnx_arena *a, const void *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = arena_alloc(a, n + 1, 1);
    if (d && n) memcpy(d, s, n);
    return d;
}

static void arena_free(struct hy__onnx_arena *a) {
    if (!a) return;
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        hy__aligned_free(c);
    }
    hy__free(a);
}

// --- parse context --------------------------------------------------------------------

/* Header of one initializer (TensorProto); the payload is decoded on demand from msg. */
typedef struct trec {
    char *name;
    int dtype;
    int ndim;
    int64_t dims[HY_WT_MAX_DIMS];
    size_t numel;
    const uint8_t *msg; /* the TensorProto bytes */
    size_t msg_len;
    size_t offset;      /* of msg in the buffer */
    const uint8_t *raw;
    size_t raw_len;
    int has_raw;
    size_t n_float, n_int32, n_int64, n_double, n_uint64; /* typed values present */
    int used_as_weight; /* decoded for a Conv already */
} trec;

/* (tensor name, node index) pair for producer / consumer lookups. */
typedef struct nref {
    const char *name;
    size_t node;
} nref;

typedef struct ctx {
    const char *what;
    const uint8_t *buf;
    size_t len;
    hy__onnx_file *f;
    struct hy__onnx_arena *tmp; /* freed at the end of the load */
    trec *inits;
    size_t n_inits;
    trec **by_name;             /* inits sorted by name */
    hy__onnx_value_info *inputs, *outputs;
    size_t n_inputs, n_outputs;
    const uint8_t *graph;
    size_t graph_len;
    nref *consumers, *producers;
    size_t n_consumers, n_producers;
} ctx;

static hy_status nomem(const ctx *c) {
    return hy__error(HY_ERR_NOMEM, "%s: out of memory while loading the ONNX model", c->what);
}

/* Error with the "<what>: " prefix. */
static hy_status fail(const ctx *c, hy_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hy_status fail(const ctx *c, hy_status st, const char *fmt, ...) {
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

static hy_status get_str(const ctx *c, const hy__pb_field *fd, const char *what, char **out) {
    hy_status st = want_len(fd, what);
    if (st) return st;
    char *s = arena_strndup(c->f->arena, fd->data, fd->len);
    if (!s) return nomem(c);
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

static const char *shape_str(const int64_t *dims, int ndim, char *buf, size_t n) {
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
static hy_status parse_tensor(ctx *c, hy__pb *r, trec *t) {
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
                t->name = arena_strndup(c->tmp, fd.data, fd.len);
                if (!t->name) return nomem(c);
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

static float f32_from_double(double d) {
    // Out-of-range double -> float conversion is undefined behaviour: saturate to inf.
    if (d > FLT_MAX) return INFINITY;
    if (d < -FLT_MAX) return -INFINITY;
    return (float)d;
}

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

static float from_raw(int dtype, const uint8_t *p) {
    uint16_t h;
    uint32_t w;
    uint64_t q;
    float f;
    double d;
    switch (dtype) {
    case HY_ONNX_FLOAT: memcpy(&f, p, 4); return f; /* little-endian host */
    case HY_ONNX_UINT8: return p[0];
    case HY_ONNX_INT8: return (float)(int8_t)p[0];
    case HY_ONNX_BOOL: return p[0] != 0;
    case HY_ONNX_FLOAT16: memcpy(&h, p, 2); return hy__f16_to_f32(h);
    case HY_ONNX_BFLOAT16: memcpy(&h, p, 2); return hy__bf16_to_f32(h);
    case HY_ONNX_UINT16: memcpy(&h, p, 2); return h;
    case HY_ONNX_INT16: memcpy(&h, p, 2); return (float)(int16_t)h;
    case HY_ONNX_UINT32: memcpy(&w, p, 4); return (float)w;
    case HY_ONNX_INT32: memcpy(&w, p, 4); return (float)(int32_t)w;
    case HY_ONNX_UINT64: memcpy(&q, p, 8); return (float)q;
    case HY_ONNX_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        return (float)v;
    }
    case HY_ONNX_DOUBLE: memcpy(&d, p, 8); return f32_from_double(d);
    default: return 0.0f;
    }
}

/* The payload field (and its value count) tensor_to_f32 reads for a typed-data tensor. */
static void typed_field(const trec *t, uint32_t *field, size_t *have, const char **fname) {
    switch (t->dtype) {
    case HY_ONNX_FLOAT: *field = 4, *have = t->n_float, *fname = "float_data"; break;
    case HY_ONNX_DOUBLE: *field = 10, *have = t->n_double, *fname = "double_data"; break;
    case HY_ONNX_INT64: *field = 7, *have = t->n_int64, *fname = "int64_data"; break;
    case HY_ONNX_UINT32: case HY_ONNX_UINT64: *field = 11, *have = t->n_uint64, *fname = "uint64_data"; break;
    default: *field = 5, *have = t->n_int32, *fname = "int32_data"; break;
    }
}

/* The file holds exactly t->numel values of a decodable type. Called before anything is
 * allocated for t, so the dims in the file cannot size an allocation on their own. */
static hy_status check_payload(const ctx *c, const trec *t) {
    size_t es = elem_size(t->dtype);
    char sh[160];
    if (!es)
        return fail(c, HY_ERR_UNSUPPORTED, "initializer '%s': data type %s (%d) is not supported",
                    t->name, hy__onnx_dtype_name(t->dtype), t->dtype);
    if (t->has_raw) {
        size_t need = t->numel * es; /* numel <= SIZE_MAX / 16 */
        if (t->raw_len != need)
            return fail(c, HY_ERR_FORMAT,
                        "initializer '%s': raw_data holds %zu bytes, %s %s needs %zu", t->name,
                        t->raw_len, hy__onnx_dtype_name(t->dtype),
                        shape_str(t->dims, t->ndim, sh, sizeof sh), need);
        return HY_OK;
    }
    uint32_t field;
    size_t have;
    const char *fname;
    typed_field(t, &field, &have, &fname);
    if (have != t->numel)
        return fail(c, HY_ERR_FORMAT, "initializer '%s': %s has %zu values, %s %s needs %zu",
                    t->name, fname, have, hy__onnx_dtype_name(t->dtype),
                    shape_str(t->dims, t->ndim, sh, sizeof sh), t->numel);
    return HY_OK;
}

/* Decodes all t->numel values of initializer t to float32 (dst holds numel floats). */
static hy_status tensor_to_f32(const ctx *c, const trec *t, float *dst) {
    size_t es = elem_size(t->dtype);
    hy_status st = check_payload(c, t);
    if (st) return st;
    if (t->has_raw) {
        if (t->dtype == HY_ONNX_FLOAT) {
            if (t->raw_len) memcpy(dst, t->raw, t->raw_len);
        } else {
            for (size_t i = 0; i < t->numel; i++) dst[i] = from_raw(t->dtype, t->raw + i * es);
        }
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
                    for (int b = w - 1; b >= 0; b--) u = u << 8 | fd.data[i * (size_t)w + (size_t)b];
                }
                if (w == 4) {
                    uint32_t u32 = (uint32_t)u;
                    memcpy(&dst[k++], &u32, 4);
                } else {
                    double d;
                    memcpy(&d, &u, 8);
                    dst[k++] = f32_from_double(d);
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

static hy_status parse_dim(ctx *c, hy__pb *r, hy__onnx_value_info *v) {
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

static hy_status parse_value_info(ctx *c, hy__pb *r, hy__onnx_value_info *v) {
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
    if (!v->name) v->name = arena_strndup(c->f->arena, "", 0);
    return v->name ? HY_OK : nomem(c);
}

// --- NodeProto ------------------------------------------------------------------------

static hy_status parse_attr(ctx *c, hy__pb *r, hy__onnx_attr *a) {
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
    if (nf && !(a->floats = arena_array(c->f->arena, nf, sizeof(float)))) return nomem(c);
    if (ni && !(a->ints = arena_array(c->f->arena, ni, sizeof(int64_t)))) return nomem(c);
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
    if (!a->name && !(a->name = arena_strndup(c->f->arena, "", 0))) return nomem(c);
    if (!a->s && !(a->s = arena_strndup(c->f->arena, "", 0))) return nomem(c);
    return HY_OK;
}

static hy_status parse_node(ctx *c, hy__pb *r, hy__onnx_node *n) {
    hy_status st;
    size_t ni, no, na;
    if ((st = count_bounded(r, 1, HY_ONNX_MAX_NODE_IO, "inputs", &ni)) ||
        (st = count_bounded(r, 2, HY_ONNX_MAX_NODE_IO, "outputs", &no)) ||
        (st = count_bounded(r, 5, HY_ONNX_MAX_NODE_ATTRS, "attributes", &na)))
        return st;
    struct hy__onnx_arena *A = c->f->arena;
    if ((ni && !(n->inputs = arena_array(A, ni, sizeof(char *)))) ||
        (no && !(n->outputs = arena_array(A, no, sizeof(char *)))) ||
        (na && !(n->attrs = arena_array(A, na, sizeof(hy__onnx_attr)))))
        return nomem(c);
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
    if ((!n->op_type && !(n->op_type = arena_strndup(A, "", 0))) ||
        (!n->name && !(n->name = arena_strndup(A, "", 0))) ||
        (!n->domain && !(n->domain = arena_strndup(A, "", 0))))
        return nomem(c);
    return HY_OK;
}

// --- GraphProto / ModelProto ----------------------------------------------------------

static int cmp_trec_name(const void *a, const void *b) {
    return cmp_str((*(const trec *const *)a)->name, (*(const trec *const *)b)->name);
}

static hy_status parse_graph(ctx *c, hy__pb *g) {
    hy__onnx_file *f = c->f;
    hy_status st;
    size_t nn, ninit, nin, nout;
    if ((st = count_bounded(g, 1, HY_ONNX_MAX_NODES, "nodes", &nn)) ||
        (st = count_bounded(g, 5, HY_ONNX_MAX_INITIALIZERS, "initializers", &ninit)) ||
        (st = count_bounded(g, 11, HY_ONNX_MAX_VALUE_INFOS, "inputs", &nin)) ||
        (st = count_bounded(g, 12, HY_ONNX_MAX_VALUE_INFOS, "outputs", &nout)))
        return st;
    if ((nn && !(f->nodes = arena_array(f->arena, nn, sizeof(hy__onnx_node)))) ||
        (ninit && !(c->inits = arena_array(c->tmp, ninit, sizeof(trec)))) ||
        (nin && !(c->inputs = arena_array(c->tmp, nin, sizeof(hy__onnx_value_info)))) ||
        (nout && !(c->outputs = arena_array(c->tmp, nout, sizeof(hy__onnx_value_info)))))
        return nomem(c);
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
    if (!f->graph_name && !(f->graph_name = arena_strndup(f->arena, "", 0))) return nomem(c);
    f->n_initializers = c->n_inits;
    // Initializers by name, for O(log n) lookups; duplicate names are malformed.
    if (c->n_inits) {
        c->by_name = arena_array(c->tmp, c->n_inits, sizeof(trec *));
        if (!c->by_name) return nomem(c);
        for (size_t i = 0; i < c->n_inits; i++) c->by_name[i] = &c->inits[i];
        qsort(c->by_name, c->n_inits, sizeof(trec *), cmp_trec_name);
        for (size_t i = 1; i < c->n_inits; i++)
            if (!strcmp(c->by_name[i - 1]->name, c->by_name[i]->name))
                return hy__error(HY_ERR_FORMAT, "initializer name '%s' appears twice",
                                 c->by_name[i]->name);
    }
    return HY_OK;
}

static hy_status parse_model(ctx *c) {
    hy__onnx_file *f = c->f;
    hy__pb r;
    hy__pb_init(&r, c->buf, c->len);
    size_t nmeta;
    hy_status st = count_fields(&r, 14, &nmeta);
    if (st) return hy__error_prefix(st, "truncated or not an ONNX model");
    if (nmeta > HY_ONNX_MAX_METADATA)
        return hy__error(HY_ERR_UNSUPPORTED, "%zu metadata_props entries, at most %d", nmeta,
                         HY_ONNX_MAX_METADATA);
    if (nmeta && !(f->metadata = arena_array(f->arena, nmeta, sizeof(hy__onnx_kv))))
        return nomem(c);
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
            if (!st && ((!kv->key && !(kv->key = arena_strndup(f->arena, "", 0))) ||
                        (!kv->value && !(kv->value = arena_strndup(f->arena, "", 0)))))
                return nomem(c);
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
    if ((!f->producer_name && !(f->producer_name = arena_strndup(f->arena, "", 0))) ||
        (!f->producer_version && !(f->producer_version = arena_strndup(f->arena, "", 0))))
        return nomem(c);
    hy__pb g;
    hy__pb_init(&g, c->buf, c->len);
    g.p = c->graph;
    g.end = c->graph + c->graph_len;
    g.depth = 1;
    if ((st = parse_graph(c, &g))) return hy__error_prefix(st, "graph");
    return HY_OK;
}

// --- lookups --------------------------------------------------------------------------

static trec *find_init(const ctx *c, const char *name) {
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

static int cmp_nref(const void *a, const void *b) {
    const nref *x = a, *y = b;
    int k = strcmp(x->name, y->name);
    if (k) return k;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Producer / consumer tables (sorted by tensor name) for tracing quantized graphs. */
static hy_status build_refs(ctx *c) {
    const hy__onnx_file *f = c->f;
    size_t ni = 0, no = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        ni += f->nodes[i].n_inputs; /* bounded by the buffer size: no overflow */
        no += f->nodes[i].n_outputs;
    }
    if ((ni && !(c->consumers = arena_array(c->tmp, ni, sizeof(nref)))) ||
        (no && !(c->producers = arena_array(c->tmp, no, sizeof(nref)))))
        return nomem(c);
    for (size_t i = 0; i < f->n_nodes; i++) {
        const hy__onnx_node *n = &f->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            c->consumers[c->n_consumers++] = (nref){n->inputs[k], i};
        for (size_t k = 0; k < n->n_outputs; k++)
            c->producers[c->n_producers++] = (nref){n->outputs[k], i};
    }
    if (c->n_consumers) qsort(c->consumers, c->n_consumers, sizeof(nref), cmp_nref);
    if (c->n_producers) qsort(c->producers, c->n_producers, sizeof(nref), cmp_nref);
    return HY_OK;
}

/* First index in refs[0..n) with name >= key. */
static size_t refs_lower(const nref *refs, size_t n, const char *key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(refs[mid].name, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Consumers of one tensor looked at: a quantized conv's output feeds one Cast, whose output
 * feeds one Mul. The cap keeps a crafted fan-out (many ConvInteger nodes sharing an output,
 * thousands of consumers) from making the trace quadratic. */
#define MAX_TRACE_FANOUT 16

/* The only node consuming `name` with op `op`, or NULL (none, several, or too many
 * consumers to look at). */
static const hy__onnx_node *consumer_op(const ctx *c, const char *name, const char *op) {
    const hy__onnx_node *found = NULL;
    size_t i0 = refs_lower(c->consumers, c->n_consumers, name);
    for (size_t i = i0; i < c->n_consumers && !strcmp(c->consumers[i].name, name); i++) {
        if (i - i0 >= MAX_TRACE_FANOUT) return NULL;
        const hy__onnx_node *n = &c->f->nodes[c->consumers[i].node];
        if (strcmp(n->op_type, op)) continue;
        if (found && found != n) return NULL;
        found = n;
    }
    return found;
}

static const hy__onnx_node *producer(const ctx *c, const char *name) {
    size_t i = refs_lower(c->producers, c->n_producers, name);
    if (i < c->n_producers && !strcmp(c->producers[i].name, name))
        return &c->f->nodes[c->producers[i].node];
    return NULL;
}

/* onnxruntime's dynamic quantization rescales a ConvInteger output as
 *   ConvInteger -> Cast(float) -> Mul(., Mul(x_scale, w_scale))
 * where w_scale is an initializer and x_scale comes from DynamicQuantizeLinear.
 * Returns the w_scale initializer, or NULL when the graph does not have that shape. */
static const trec *trace_weight_scale(const ctx *c, const hy__onnx_node *conv) {
    if (conv->n_outputs < 1) return NULL;
    const hy__onnx_node *cast = consumer_op(c, conv->outputs[0], "Cast");
    if (!cast || cast->n_outputs < 1) return NULL;
    const hy__onnx_node *mul = consumer_op(c, cast->outputs[0], "Mul");
    if (!mul || mul->n_inputs != 2) return NULL;
    const char *other = strcmp(mul->inputs[0], cast->outputs[0]) ? mul->inputs[0] : mul->inputs[1];
    const hy__onnx_node *scales = producer(c, other);
    if (!scales || strcmp(scales->op_type, "Mul") || scales->n_inputs != 2) return NULL;
    const trec *a = find_init(c, scales->inputs[0]), *b = find_init(c, scales->inputs[1]);
    if ((a != NULL) == (b != NULL)) return NULL; /* need exactly one constant factor */
    return a ? a : b;
}

// --- metadata -------------------------------------------------------------------------

const char *hy__onnx_meta(const hy__onnx_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = f->n_metadata; i-- > 0;) /* the last entry wins, as in a dict */
        if (!strcmp(f->metadata[i].key, key)) return f->metadata[i].value;
    return NULL;
}

static void skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Output of py_string: at most cap bytes; d == NULL only validates and measures. */
typedef struct sbuf {
    char *d;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t k) {
    if (k > b->cap - b->n) return 0;
    if (b->d) memcpy(b->d + b->n, s, k);
    b->n += k;
    return 1;
}

static int sb_utf8(sbuf *b, uint32_t cp) {
    char u[4];
    return sb_put(b, u, put_utf8(u, cp));
}

/* Parses a Python string literal ('...' or "...", with backslash escapes) at *p into b
 * (UTF-8, not NUL-terminated). Stops at the first byte over b->cap, so the work is bounded
 * by the cap, not by the input. 0 with *err set on a syntax error or an overlong string
 * (*too_long = 1). */
static int py_string(const char **p, sbuf *b, const char **err, int *too_long) {
    char q = **p;
    if (q != '\'' && q != '"') {
        *err = "expected a quoted string";
        return 0;
    }
    const char *s = *p + 1;
    for (;;) {
        char ch = *s++;
        if (ch == q) break;
        if (!ch || ch == '\n') {
            *err = "unterminated string";
            return 0;
        }
        int ok = 1, digits = 0;
        char e = ch == '\\' ? *s++ : 0;
        switch (ch != '\\' ? -1 : e) {
        case -1: ok = sb_put(b, &ch, 1); break;
        case '\\': case '\'': case '"': ok = sb_put(b, &e, 1); break;
        case 'n': ok = sb_put(b, "\n", 1); break;
        case 'r': ok = sb_put(b, "\r", 1); break;
        case 't': ok = sb_put(b, "\t", 1); break;
        case 'a': ok = sb_put(b, "\a", 1); break;
        case 'b': ok = sb_put(b, "\b", 1); break;
        case 'f': ok = sb_put(b, "\f", 1); break;
        case 'v': ok = sb_put(b, "\v", 1); break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            uint32_t v = (uint32_t)(e - '0');
            for (int i = 0; i < 2 && *s >= '0' && *s <= '7'; i++) v = v * 8 + (uint32_t)(*s++ - '0');
            ok = sb_utf8(b, v);
            break;
        }
        case 0: case '\n': *err = "unterminated string"; return 0;
        default: /* Python keeps unknown escapes verbatim */
            ok = sb_put(b, "\\", 1) && sb_put(b, &e, 1);
            break;
        }
        if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = hexval(*s);
                if (h < 0) {
                    *err = "bad \\x/\\u escape";
                    return 0;
                }
                v = v * 16 + (uint32_t)h;
                s++;
            }
            if (v > 0x10ffff) {
                *err = "escape beyond U+10FFFF";
                return 0;
            }
            ok = sb_utf8(b, v);
        }
        if (!ok) {
            *too_long = 1;
            return 0;
        }
    }
    *p = s;
    return 1;
}

/* Ultralytics writes names as str(dict): "{0: 'person', 1: 'bicycle', ...}"; a list
 * "['person', ...]" is accepted too. Keys must be exactly 0..n-1. One pass, linear in the
 * text: at most HY_ONNX_MAX_CLASSES names of at most HY_ONNX_MAX_NAME_BYTES bytes are kept
 * (past the class cap the entries are only counted, for the message). */
static hy_status parse_names(ctx *c, const char *text) {
    hy__onnx_file *f = c->f;
    const char *p = text, *err = NULL;
    skip_ws(&p);
    char open = *p, close = open == '{' ? '}' : ']';
    if (open != '{' && open != '[')
        return fail(c, HY_ERR_FORMAT, "metadata 'names': expected '{' or '[' at character %zu",
                    (size_t)(p - text));
    p++;
    long *keys = arena_array(c->tmp, HY_ONNX_MAX_CLASSES, sizeof(long));
    char **vals = arena_array(c->tmp, HY_ONNX_MAX_CLASSES, sizeof(char *));
    if (!keys || !vals) return nomem(c);
    char buf[HY_ONNX_MAX_NAME_BYTES];
    size_t n = 0;
    int too_long = 0;
    for (;;) {
        skip_ws(&p);
        if (*p == close) {
            p++;
            break;
        }
        if (n && *p == ',') {
            p++;
            skip_ws(&p);
            if (*p == close) { /* trailing comma */
                p++;
                break;
            }
        } else if (n) {
            err = "expected ',' or the closing bracket";
            break;
        }
        long key = (long)n;
        if (open == '{') {
            if (*p < '0' || *p > '9') {
                err = "expected an integer class id";
                break;
            }
            key = 0;
            while (*p >= '0' && *p <= '9' && key <= 1000000) key = key * 10 + (*p++ - '0');
            if (key > 1000000) {
                err = "class id too large";
                break;
            }
            skip_ws(&p);
            if (*p != ':') {
                err = "expected ':'";
                break;
            }
            p++;
            skip_ws(&p);
        }
        sbuf b = {n < HY_ONNX_MAX_CLASSES ? buf : NULL, 0, sizeof buf};
        if (!py_string(&p, &b, &err, &too_long)) break;
        if (n < HY_ONNX_MAX_CLASSES) {
            keys[n] = key;
            if (!(vals[n] = arena_strndup(f->arena, buf, b.n))) return nomem(c);
        }
        n++;
    }
    if (too_long)
        return fail(c, HY_ERR_FORMAT, "metadata 'names': class %zu: name longer than %d bytes", n,
                    HY_ONNX_MAX_NAME_BYTES);
    if (!err) {
        skip_ws(&p);
        if (*p) err = "unexpected text after the closing bracket";
    }
    if (err)
        return fail(c, HY_ERR_FORMAT, "metadata 'names': %s at character %zu", err,
                    (size_t)(p - text));
    if (n == 0) return fail(c, HY_ERR_FORMAT, "metadata 'names' is empty");
    if (n > HY_ONNX_MAX_CLASSES)
        return fail(c, HY_ERR_FORMAT, "metadata 'names': %zu classes, at most %d", n,
                    HY_ONNX_MAX_CLASSES);
    f->names = arena_array(f->arena, n, sizeof(char *));
    if (!f->names) return nomem(c);
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < 0 || (size_t)keys[i] >= n || f->names[keys[i]])
            return fail(c, HY_ERR_FORMAT,
                        "metadata 'names': class ids are not 0..%zu (id %ld is %s)", n - 1,
                        keys[i], (size_t)keys[i] >= n ? "out of range" : "repeated");
        f->names[keys[i]] = vals[i];
    }
    f->n_names = (int)n;
    return HY_OK;
}

/* "[640, 640]" or "640" -> hw. */
static int parse_imgsz(const char *s, int hw[2]) {
    const char *p = s;
    int k = 0, br = 0;
    skip_ws(&p);
    if (*p == '[' || *p == '(') br = *p++;
    while (k < 2) {
        skip_ws(&p);
        if (*p < '0' || *p > '9') return 0;
        long v = 0;
        while (*p >= '0' && *p <= '9' && v <= 1000000) v = v * 10 + (*p++ - '0');
        if (v <= 0 || v > 1000000) return 0;
        hw[k++] = (int)v;
        skip_ws(&p);
        if (*p != ',') break;
        p++;
    }
    skip_ws(&p);
    if (br) {
        if (*p != (br == '[' ? ']' : ')')) return 0;
        p++;
    }
    skip_ws(&p);
    if (*p) return 0;
    if (k == 1) hw[1] = hw[0];
    return 1;
}

static hy_status read_metadata(ctx *c) {
    hy__onnx_file *f = c->f;
    const char *task = hy__onnx_meta(f, "task");
    if (task && strcmp(task, "detect"))
        return fail(c, HY_ERR_UNSUPPORTED,
                    "metadata task is '%s'; only YOLOv8 detection exports ('detect') are supported",
                    task);
    const char *names = hy__onnx_meta(f, "names");
    hy_status st;
    if (names && (st = parse_names(c, names))) return st;
    const char *imgsz = hy__onnx_meta(f, "imgsz");
    if (imgsz && !parse_imgsz(imgsz, f->imgsz_hw))
        return fail(c, HY_ERR_FORMAT, "metadata 'imgsz': cannot parse '%.40s'", imgsz);
    const char *stride = hy__onnx_meta(f, "stride");
    if (stride) {
        int hw[2];
        if (!parse_imgsz(stride, hw) || hw[0] != hw[1] || hw[0] > 1024)
            return fail(c, HY_ERR_FORMAT, "metadata 'stride': cannot parse '%.40s'", stride);
        f->stride = hw[0];
    }
    // "Ultralytics YOLOv8n model trained on coco.yaml" -> scale "n".
    const char *desc = hy__onnx_meta(f, "description");
    const char *y = desc ? strstr(desc, "YOLOv8") : NULL;
    if (y && y[6] && strchr("nsmlx", y[6]) &&
        !((y[7] >= 'a' && y[7] <= 'z') || (y[7] >= 'A' && y[7] <= 'Z') || (y[7] >= '0' && y[7] <= '9')))
        f->scale[0] = y[6];
    return HY_OK;
}

// --- recognition ----------------------------------------------------------------------

/* Ops an Ultralytics YOLOv8 detection export uses (fp32/fp16 at any opset, dynamic shapes,
 * onnxruntime dynamic quantization). Anything else means a different model. */
static const char *const k_ops[] = {
    "Conv", "ConvInteger", "DynamicQuantizeLinear", "Cast", "Mul", "Add", "Sigmoid", "Concat",
    "Split", "Slice", "Reshape", "Transpose", "Softmax", "MaxPool", "Resize", "Constant",
    "Shape", "Gather", "Sub", "Div", "Unsqueeze", "Squeeze", "ConstantOfShape", "Identity",
    "Expand", "Range", "Equal", "Where", "Floor", "Pow", "Sqrt",
};

static int known_op(const char *op) {
    for (size_t i = 0; i < HY_ARRAY_LEN(k_ops); i++)
        if (!strcmp(op, k_ops[i])) return 1;
    return 0;
}

static int is_symbolic(const hy__onnx_value_info *v, int k) { return v->dims[k] < 0; }

static hy_status check_io(ctx *c) {
    hy__onnx_file *f = c->f;
    char sh[160];
    // Graph inputs that are also initializers (IR < 4 style) are weights, not inputs.
    const hy__onnx_value_info *in = NULL;
    size_t n_real = 0;
    for (size_t i = 0; i < c->n_inputs; i++) {
        if (c->n_inits && find_init(c, c->inputs[i].name)) continue;
        n_real++;
        if (!in) in = &c->inputs[i];
    }
    if (n_real != 1 || strcmp(in->name, "images"))
        return fail(c, HY_ERR_UNSUPPORTED,
                    "graph has %zu input(s)%s%s%s; a YOLOv8 detection export has one, 'images'",
                    n_real, in ? " (first '" : "", in ? in->name : "", in ? "')" : "");
    if (in->elem_type != HY_ONNX_FLOAT && in->elem_type != HY_ONNX_FLOAT16)
        return fail(c, HY_ERR_UNSUPPORTED, "input 'images' has element type %s, expected float32",
                    hy__onnx_dtype_name(in->elem_type));
    if (in->ndim != 4 || !(is_symbolic(in, 0) || in->dims[0] == 1) || in->dims[1] != 3)
        return fail(c, HY_ERR_UNSUPPORTED, "input 'images' has shape %s, expected (1, 3, H, W)",
                    in->ndim < 0 ? "(unknown)" : shape_str(in->dims, in->ndim, sh, sizeof sh));
    for (int k = 2; k < 4; k++)
        if (!is_symbolic(in, k) && (in->dims[k] <= 0 || in->dims[k] % 32 || in->dims[k] > 65536))
            return fail(c, HY_ERR_UNSUPPORTED,
                        "input 'images' has shape %s: H and W must be positive multiples of 32",
                        shape_str(in->dims, in->ndim, sh, sizeof sh));
    if (c->n_outputs != 1)
        return fail(c, HY_ERR_UNSUPPORTED,
                    "graph has %zu outputs; a YOLOv8 detection export has one (segmentation "
                    "and pose exports are not supported)",
                    c->n_outputs);
    const hy__onnx_value_info *out = &c->outputs[0];
    if (out->ndim != 3 || !(is_symbolic(out, 0) || out->dims[0] == 1) ||
        !(is_symbolic(out, 1) || out->dims[1] >= 5) || out->dims[2] == 0)
        return fail(c, HY_ERR_UNSUPPORTED,
                    "output '%s' has shape %s, expected (1, 4 + nc, anchors)", out->name,
                    out->ndim < 0 ? "(unknown)" : shape_str(out->dims, out->ndim, sh, sizeof sh));
    // Anchors: one per cell of the stride 8, 16, 32 grids.
    if (!is_symbolic(in, 2) && !is_symbolic(in, 3) && !is_symbolic(out, 2)) {
        int64_t h = in->dims[2], w = in->dims[3];
        int64_t a = (h / 8) * (w / 8) + (h / 16) * (w / 16) + (h / 32) * (w / 32);
        if (out->dims[2] != a)
            return fail(c, HY_ERR_UNSUPPORTED,
                        "output '%s' has %lld anchors; a %lldx%lld detection export has %lld",
                        out->name, (long long)out->dims[2], (long long)h, (long long)w,
                        (long long)a);
    }
    f->input = *in;
    f->output = *out;
    // The value infos' strings live in f->arena already; only the structs were in tmp.
    return HY_OK;
}

static hy_status check_nodes(ctx *c) {
    hy__onnx_file *f = c->f;
    if (!f->n_nodes) return fail(c, HY_ERR_UNSUPPORTED, "the graph has no nodes");
    for (size_t i = 0; i < f->n_nodes; i++) {
        const hy__onnx_node *n = &f->nodes[i];
        if (*n->domain && strcmp(n->domain, "ai.onnx"))
            return fail(c, HY_ERR_UNSUPPORTED,
                        "node %zu op '%.64s' (domain '%.64s') is not part of a YOLOv8 detection "
                        "export",
                        i, n->op_type, n->domain);
        if (!known_op(n->op_type))
            return fail(c, HY_ERR_UNSUPPORTED,
                        "node %zu op '%.64s' is not part of a YOLOv8 detection export", i,
                        n->op_type);
    }
    // Histogram in order of first appearance (at most HY_ARRAY_LEN(k_ops) kinds).
    f->ops = arena_array(f->arena, HY_ARRAY_LEN(k_ops), sizeof(hy__onnx_op_count));
    if (!f->ops) return nomem(c);
    for (size_t i = 0; i < f->n_nodes; i++) {
        size_t k = 0;
        while (k < f->n_ops && strcmp(f->ops[k].op_type, f->nodes[i].op_type)) k++;
        if (k == f->n_ops) f->ops[f->n_ops++].op_type = f->nodes[i].op_type;
        f->ops[k].count++;
    }
    return HY_OK;
}

// --- weights --------------------------------------------------------------------------

/* "model.<N>.<...>weight" */
static int yolo_weight_name(const char *s) {
    if (strncmp(s, "model.", 6)) return 0;
    s += 6;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') s++;
    if (*s != '.') return 0;
    size_t n = strlen(s);
    return n >= 7 && !strcmp(s + n - 7, ".weight");
}

static int float_type(int t) {
    return t == HY_ONNX_FLOAT || t == HY_ONNX_FLOAT16 || t == HY_ONNX_BFLOAT16 || t == HY_ONNX_DOUBLE;
}

/* Adds tensor `name` with shape dims to f->tensors; *data gets numel floats (64-aligned). */
static hy_status add_tensor(ctx *c, const char *name, const int64_t *dims, int ndim, size_t numel,
                            float **data) {
    hy__onnx_file *f = c->f;
    hy__wtensor *t = &f->tensors[f->n_tensors];
    t->name = arena_strndup(f->arena, name, strlen(name));
    float *d = arena_alloc(f->arena, numel ? numel * sizeof(float) : 1, 64);
    if (!t->name || !d) return nomem(c);
    t->dtype = HY_DTYPE_F32;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = dims[i];
    t->numel = numel;
    t->data = d;
    f->n_tensors++;
    *data = d;
    return HY_OK;
}

static hy_status check_finite(const ctx *c, const char *name, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return fail(c, HY_ERR_FORMAT, "tensor '%s' holds a non-finite value at index %zu",
                        name, i);
    return HY_OK;
}

/* Bias of the conv whose weight is `wname` ("<p>.weight" -> "<p>.bias"): from the Conv's
 * third input, else the initializer named "<p>.bias". */
static hy_status add_bias(ctx *c, size_t node_idx, const char *bias_input, const char *wname,
                          int64_t cout) {
    size_t pl = strlen(wname) - 6; /* keeps "<p>." */
    char *bname = arena_alloc(c->tmp, pl + 5, 1);
    if (!bname) return nomem(c);
    memcpy(bname, wname, pl);
    memcpy(bname + pl, "bias", 5);
    const trec *b = NULL;
    if (bias_input && *bias_input) {
        b = find_init(c, bias_input);
        if (!b)
            return fail(c, HY_ERR_UNSUPPORTED, "node %zu (Conv): bias '%s' is not an initializer",
                        node_idx, bias_input);
    } else {
        b = find_init(c, bname);
        if (!b) return HY_OK; /* a Conv without bias (the DFL conv) */
    }
    char sh[160];
    if (!float_type(b->dtype) || b->ndim != 1 || b->dims[0] != cout)
        return fail(c, HY_ERR_FORMAT, "bias '%s' is %s %s, expected float32 (%lld)", b->name,
                    hy__onnx_dtype_name(b->dtype), shape_str(b->dims, b->ndim, sh, sizeof sh),
                    (long long)cout);
    float *d = NULL;
    hy_status st = check_payload(c, b);
    if (!st) st = add_tensor(c, bname, b->dims, 1, b->numel, &d);
    if (!st) st = tensor_to_f32(c, b, d);
    if (!st) st = check_finite(c, bname, d, b->numel);
    return st;
}

/* Scalar-or-per-channel parameter (scale / zero point) of a quantized weight. */
static hy_status load_qparam(ctx *c, const trec *t, const char *what, int64_t cout, float **out) {
    if (t->numel != 1 && (int64_t)t->numel != cout)
        return fail(c, HY_ERR_UNSUPPORTED,
                    "%s '%s' has %zu values; expected 1 (per tensor) or %lld (per channel)", what,
                    t->name, t->numel, (long long)cout);
    hy_status st = check_payload(c, t);
    if (st) return st;
    float *v = arena_array(c->tmp, t->numel, sizeof(float));
    if (!v) return nomem(c);
    st = tensor_to_f32(c, t, v);
    if (st) return st;
    *out = v;
    return HY_OK;
}

static hy_status add_conv(ctx *c, size_t idx) {
    const hy__onnx_node *n = &c->f->nodes[idx];
    int q = !strcmp(n->op_type, "ConvInteger");
    char sh[160];
    if (n->n_inputs < 2)
        return fail(c, HY_ERR_FORMAT, "node %zu (%s) has %zu inputs", idx, n->op_type, n->n_inputs);
    const char *win = n->inputs[1];
    trec *w = find_init(c, win);
    if (!w)
        return fail(c, HY_ERR_UNSUPPORTED,
                    "node %zu (%s): weight '%.80s' is not an initializer; not a plain YOLOv8 export",
                    idx, n->op_type, win);
    // Refused before it is decoded again: N convs sharing one big weight would cost N copies.
    if (w->used_as_weight)
        return fail(c, HY_ERR_UNSUPPORTED, "weight '%.80s' is used by two Conv nodes", win);
    w->used_as_weight = 1;
    // Canonical name: the initializer's, without onnxruntime's "_quantized" suffix.
    size_t wl = strlen(win);
    if (q && (wl < 10 || strcmp(win + wl - 10, "_quantized")))
        return fail(c, HY_ERR_UNSUPPORTED,
                    "node %zu (ConvInteger): weight '%.80s' is not named '<name>_quantized'", idx,
                    win);
    char *wname = arena_strndup(c->tmp, win, q ? wl - 10 : wl);
    if (!wname) return nomem(c);
    if (!yolo_weight_name(wname))
        return fail(c, HY_ERR_UNSUPPORTED,
                    "node %zu (%s): weight '%.80s' is not named like 'model.<N>....weight' "
                    "(not an Ultralytics YOLOv8 export)",
                    idx, n->op_type, win);
    if (w->ndim != 4 || w->dims[0] <= 0 || w->numel == 0)
        return fail(c, HY_ERR_FORMAT, "weight '%s' has shape %s, expected (cout, cin, kh, kw)",
                    w->name, shape_str(w->dims, w->ndim, sh, sizeof sh));
    int64_t cout = w->dims[0];
    size_t per = w->numel / (size_t)cout; /* values per output channel */
    float *d = NULL;
    hy_status st;
    if (!q) {
        if (!float_type(w->dtype))
            return fail(c, HY_ERR_UNSUPPORTED, "Conv weight '%s' has data type %s", w->name,
                        hy__onnx_dtype_name(w->dtype));
        if ((st = check_payload(c, w)) || (st = add_tensor(c, wname, w->dims, 4, w->numel, &d)) ||
            (st = tensor_to_f32(c, w, d)))
            return st;
    } else {
        c->f->quantized = 1;
        if (w->dtype != HY_ONNX_UINT8 && w->dtype != HY_ONNX_INT8)
            return fail(c, HY_ERR_UNSUPPORTED, "quantized weight '%s' has data type %s", w->name,
                        hy__onnx_dtype_name(w->dtype));
        if ((st = check_payload(c, w))) return st;
        const trec *s = trace_weight_scale(c, n);
        if (!s) { /* fall back to onnxruntime's naming */
            char *sname = arena_alloc(c->tmp, strlen(wname) + 7, 1);
            if (!sname) return nomem(c);
            sprintf(sname, "%s_scale", wname);
            s = find_init(c, sname);
        }
        if (!s)
            return fail(c, HY_ERR_UNSUPPORTED,
                        "node %zu (ConvInteger): cannot find the scale of weight '%s'", idx,
                        w->name);
        if (!float_type(s->dtype))
            return fail(c, HY_ERR_FORMAT, "weight scale '%s' has data type %s", s->name,
                        hy__onnx_dtype_name(s->dtype));
        float zero = 0.0f, *scale, *zp = &zero;
        size_t nzp = 1;
        if ((st = load_qparam(c, s, "weight scale", cout, &scale))) return st;
        if (n->n_inputs >= 4 && *n->inputs[3]) {
            const trec *z = find_init(c, n->inputs[3]);
            if (!z)
                return fail(c, HY_ERR_UNSUPPORTED,
                            "node %zu (ConvInteger): weight zero point '%.80s' is not an initializer",
                            idx, n->inputs[3]);
            if (z->dtype != w->dtype)
                return fail(c, HY_ERR_FORMAT, "zero point '%s' is %s but weight '%s' is %s",
                            z->name, hy__onnx_dtype_name(z->dtype), w->name,
                            hy__onnx_dtype_name(w->dtype));
            if ((st = load_qparam(c, z, "weight zero point", cout, &zp))) return st;
            nzp = z->numel;
        }
        if ((st = add_tensor(c, wname, w->dims, 4, w->numel, &d)) || (st = tensor_to_f32(c, w, d)))
            return st;
        // w = (q - zp) * scale, per output channel when the parameters have cout entries.
        for (int64_t o = 0; o < cout; o++) {
            float so = scale[s->numel == 1 ? 0 : o], zo = zp[nzp == 1 ? 0 : o];
            float *row = d + (size_t)o * per;
            for (size_t i = 0; i < per; i++) row[i] = (row[i] - zo) * so;
        }
    }
    if ((st = check_finite(c, wname, d, w->numel))) return st;
    return add_bias(c, idx, !q && n->n_inputs >= 3 ? n->inputs[2] : NULL, wname, cout);
}

static int cmp_wtensor_name(const void *a, const void *b) {
    return strcmp((*(const hy__wtensor *const *)a)->name, (*(const hy__wtensor *const *)b)->name);
}

static hy_status build_weights(ctx *c) {
    hy__onnx_file *f = c->f;
    size_t nconv = 0;
    for (size_t i = 0; i < f->n_nodes; i++)
        nconv += !strcmp(f->nodes[i].op_type, "Conv") || !strcmp(f->nodes[i].op_type, "ConvInteger");
    if (!nconv) return fail(c, HY_ERR_UNSUPPORTED, "the graph has no Conv nodes");
    // weight + bias per conv, + 1 for a synthesized DFL weight
    f->tensors = arena_array(f->arena, 2 * nconv + 1, sizeof(hy__wtensor));
    if (!f->tensors) return nomem(c);
    hy_status st;
    if (c->n_inits == 0) return fail(c, HY_ERR_UNSUPPORTED, "the graph has no initializers");
    for (size_t i = 0; i < f->n_nodes; i++) {
        const char *op = f->nodes[i].op_type;
        if (!strcmp(op, "ConvInteger") && !c->consumers && (st = build_refs(c))) return st;
        if ((!strcmp(op, "Conv") || !strcmp(op, "ConvInteger")) && (st = add_conv(c, i)))
            return st;
    }
    // Each weight belongs to one conv: a repeated name means a graph we do not understand.
    const hy__wtensor **sorted = arena_array(c->tmp, f->n_tensors, sizeof(hy__wtensor *));
    if (!sorted) return nomem(c);
    for (size_t i = 0; i < f->n_tensors; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, f->n_tensors, sizeof(*sorted), cmp_wtensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
            return fail(c, HY_ERR_UNSUPPORTED, "weight '%s' is used by two Conv nodes",
                        sorted[i]->name);
    // DFL: Ultralytics' DFL conv is a frozen arange(16) (1,16,1,1) without bias. Exports keep
    // it as "model.<H>.dfl.conv.weight"; if an optimiser folded it away, put it back so the
    // weights look like every other YOLOv8 source.
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *nm = f->tensors[i].name;
        const char *tail = strstr(nm, ".cv2.0.2.weight");
        if (!tail || strncmp(nm, "model.", 6) || strlen(tail) != 15 || tail - nm > 20) continue;
        char dfl[64];
        snprintf(dfl, sizeof dfl, "%.*s.dfl.conv.weight", (int)(tail - nm), nm);
        if (hy__onnx_find(f, dfl)) break;
        int64_t dims[4] = {1, 16, 1, 1};
        float *d = NULL;
        if ((st = add_tensor(c, dfl, dims, 4, 16, &d))) return st;
        for (int k = 0; k < 16; k++) d[k] = (float)k;
        f->dfl_synthesized = 1;
        break;
    }
    return HY_OK;
}

static hy_status finish_classes(ctx *c) {
    hy__onnx_file *f = c->f;
    int64_t ch = f->output.dims[1]; /* 4 + nc, or -1 when symbolic */
    if (f->n_names) {
        if (ch >= 0 && ch != 4 + (int64_t)f->n_names)
            return fail(c, HY_ERR_MISMATCH,
                        "metadata 'names' has %d classes but output '%s' has %lld channels "
                        "(expected 4 + %d)",
                        f->n_names, f->output.name, (long long)ch, f->n_names);
        f->nc = f->n_names;
    } else if (ch >= 5 && ch - 4 <= 100000) {
        f->nc = (int)(ch - 4);
    }
    if (!f->imgsz_hw[0] && f->input.dims[2] > 0 && f->input.dims[3] > 0) {
        f->imgsz_hw[0] = (int)f->input.dims[2];
        f->imgsz_hw[1] = (int)f->input.dims[3];
    }
    f->imgsz = HY_MAX(f->imgsz_hw[0], f->imgsz_hw[1]);
    return HY_OK;
}

// --- public ---------------------------------------------------------------------------

hy_status hy__onnx_load_buffer(const uint8_t *buf, size_t len, const char *what,
                               hy__onnx_file **out) {
    if (!what) what = "(buffer)";
    if (!out || (!buf && len)) return hy__error(HY_ERR_INVALID_ARG, "%s: invalid argument", what);
    ctx c = {.what = what, .buf = buf, .len = len};
    hy_status st = HY_ERR_NOMEM;
    hy__onnx_file *f = hy__calloc(1, sizeof *f);
    c.tmp = hy__calloc(1, sizeof *c.tmp);
    if (!f || !c.tmp || !(f->arena = hy__calloc(1, sizeof *f->arena))) {
        st = nomem(&c);
        goto fail;
    }
    c.f = f;
    if (!(f->what = arena_strndup(f->arena, what, strlen(what)))) {
        st = nomem(&c);
        goto fail;
    }
    if (len == 0) {
        st = fail(&c, HY_ERR_FORMAT, "empty file (not an ONNX model)");
        goto fail;
    }
    if ((st = parse_model(&c))) {
        if (st != HY_ERR_NOMEM) st = hy__error_prefix(st, "%s", what);
        goto fail;
    }
    if ((st = check_nodes(&c)) || (st = check_io(&c)) || (st = read_metadata(&c)) ||
        (st = finish_classes(&c)) || (st = build_weights(&c)))
        goto fail;
    arena_free(c.tmp);
    *out = f;
    return HY_OK;
fail:
    arena_free(c.tmp);
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
    arena_free(f->arena);
    hy__free(f);
}

hy_status hy__onnx_source(const hy__onnx_file *f, hy__wsource *out) {
    if (!f || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__onnx_source: NULL argument");
    hy__wsource s;
    memset(&s, 0, sizeof s);
    s.format = HY_WFORMAT_ONNX;
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
