/* safetensors reader (mmap, header-only parse) and writer (aligned, hashed, atomic).
 *
 * Validation follows the reference implementation (huggingface/safetensors, Rust crate,
 * SafeTensors::read_metadata + Metadata::validate): header length <= 100,000,000 and inside
 * the file; header valid UTF-8 JSON; every tensor's (end - begin) == numel * itemsize with
 * overflow checks; tensors sorted by offsets must tile the data section exactly (no hole,
 * no overlap, nothing after the last tensor). We add: rank <= 8, object/array type checks
 * with messages naming the field, and the hotyolo metadata checks. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct hy__st_file {
    char *path;
    hy__map map;
    uint64_t header_len;  /* N */
    uint64_t data_off;    /* 8 + N */
    uint64_t data_size;   /* file size - 8 - N */
    hy__wtensor *tensors; /* (n) header order; data points into map */
    uint64_t *begin;      /* (n) data_offsets[0], relative to the data section */
    size_t n;
    size_t *by_name;  /* (n) tensor indices sorted by name */
    char **meta_keys; /* (n_meta) header order */
    char **meta_vals;
    size_t n_meta;
    /* hotyolo hints, parsed from the metadata at open */
    int nc, imgsz, fused;
    char scale[8];
    char **names; /* (n_names) */
    int n_names;
};

static const struct {
    const char *str;
    hy_dtype t;
} st_dtypes[] = {
    {"F32", HY_DTYPE_F32}, {"F16", HY_DTYPE_F16}, {"BF16", HY_DTYPE_BF16},
    {"I64", HY_DTYPE_I64}, {"I32", HY_DTYPE_I32}, {"U8", HY_DTYPE_U8},
    {"I8", HY_DTYPE_I8},   {"F64", HY_DTYPE_F64}, {"BOOL", HY_DTYPE_BOOL},
};

/* dtypes the reference format defines that hotyolo has no hy_dtype for. */
static const char *const st_dtypes_unsupported[] = {
    "I16", "U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64",
};

const char *hy__st_dtype_str(hy_dtype t) {
    for (size_t i = 0; i < HY_ARRAY_LEN(st_dtypes); i++)
        if (st_dtypes[i].t == t) return st_dtypes[i].str;
    return "?";
}

// --- small helpers -------------------------------------------------------------------

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), as Rust's str::from_utf8.
 * Returns the offset of the first bad byte, or len when valid. */
static size_t utf8_check(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (n > len - i - 1) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += n + 1;
    }
    return len;
}

static bool is_utf8(const char *s) {
    return utf8_check((const uint8_t *)s, strlen(s)) == strlen(s);
}

static bool is_sha256_hex(const char *s) {
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return i == HY_SHA256_HEX_LEN;
}

/* A JSON integer >= 0 that fits int64 (so it also fits a shape entry). */
static bool json_nonneg(json_object *o, uint64_t *v) {
    if (!json_object_is_type(o, json_type_int)) return false;
    int64_t s = json_object_get_int64(o);
    if (s < 0 || s == INT64_MAX) return false; /* INT64_MAX: json-c's clamp of larger values */
    *v = (uint64_t)s;
    return true;
}

/* Decimal integer string in [lo, hi] (digits only). */
static bool parse_int_str(const char *s, long lo, long hi, int *out) {
    if (!*s || strlen(s) > 9) return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* json-c (even with JSON_TOKENER_STRICT) accepts single quotes, NaN/Infinity, raw control
 * characters in strings, lone surrogate escapes and "\u0000" (which truncates C strings).
 * The reference reader (serde_json) rejects all of these but the last, so reject them before
 * json-c sees the text. Returns NULL when fine, else the reason, with *at = the byte. */
static const char *json_lex_check(const char *s, size_t n, size_t *at) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        *at = i;
        if (c == '\'') return "single-quoted string";
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t k = i;
            while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))) k++;
            size_t w = k - i;
            if (!((w == 4 && !memcmp(s + i, "true", 4)) || (w == 5 && !memcmp(s + i, "false", 5)) ||
                  (w == 4 && !memcmp(s + i, "null", 4)) || (w == 1 && (c == 'e' || c == 'E'))))
                return "bare word (only true, false and null are JSON literals)";
            i = k;
            continue;
        }
        if (c != '"') {
            i++;
            continue;
        }
        for (i++; i < n && s[i] != '"'; i++) {
            c = (unsigned char)s[i];
            *at = i;
            if (c < 0x20) return "raw control character in a string";
            if (c != '\\') continue;
            if (++i >= n) return NULL; /* unterminated: json-c reports it */
            if (s[i] != 'u') continue;
            unsigned cp[2] = {0, 0};
            for (int e = 0; e < 2; e++) {
                if (e == 1 && !(i + 2 < n && s[i + 1] == '\\' && s[i + 2] == 'u'))
                    return "lone surrogate escape";
                if (e == 1) i += 2;
                for (int h = 1; h <= 4; h++) {
                    if (i + (size_t)h >= n) return NULL;
                    char x = s[i + (size_t)h];
                    int v = x >= '0' && x <= '9'   ? x - '0'
                            : x >= 'a' && x <= 'f' ? x - 'a' + 10
                            : x >= 'A' && x <= 'F' ? x - 'A' + 10
                                                   : -1;
                    if (v < 0) return "bad \\u escape";
                    cp[e] = cp[e] * 16 + (unsigned)v;
                }
                i += 4;
                if (e == 0 && cp[0] == 0) return "escaped NUL (\\u0000) in a string";
                if (e == 0 && cp[0] >= 0xdc00 && cp[0] <= 0xdfff) return "lone surrogate escape";
                if (e == 0 && !(cp[0] >= 0xd800 && cp[0] <= 0xdbff)) break;
                if (e == 1 && !(cp[1] >= 0xdc00 && cp[1] <= 0xdfff)) return "lone surrogate escape";
            }
        }
        i++; /* closing quote */
    }
    return NULL;
}

/* Parses one JSON value from s[0, len); NULL with *why (static text) and *end (byte) on
 * error. Trailing characters are left for the caller to check (*end). */
static json_object *parse_json(const char *s, size_t len, const char **why, size_t *end) {
    if ((*why = json_lex_check(s, len, end))) return NULL;
    json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) {
        *why = "out of memory";
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    *end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success) {
        json_object_put(o);
        *why = err == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(err);
        return NULL;
    }
    return o;
}

static bool all_space(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static void fmt_shape(const hy__wtensor *t, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

// --- reader --------------------------------------------------------------------------

void hy__st_close(hy__st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) hy__free((void *)f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        hy__free(f->meta_keys[i]);
        hy__free(f->meta_vals[i]);
    }
    for (int i = 0; i < f->n_names; i++) hy__free(f->names[i]);
    hy__free(f->names);
    hy__free(f->meta_keys);
    hy__free(f->meta_vals);
    hy__free(f->tensors);
    hy__free(f->begin);
    hy__free(f->by_name);
    hy__map_close(&f->map);
    hy__free(f->path);
    hy__free(f);
}

static hy_status parse_metadata(hy__st_file *f, json_object *meta) {
    if (json_object_is_type(meta, json_type_null)) return HY_OK; /* serde reads null as None */
    if (!json_object_is_type(meta, json_type_object))
        return hy__error(HY_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", f->path);
    size_t cap = (size_t)json_object_object_length(meta);
    f->meta_keys = hy__calloc(cap ? cap : 1, sizeof(char *));
    f->meta_vals = hy__calloc(cap ? cap : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals)
        return hy__error(HY_ERR_NOMEM, "%s: out of memory", f->path);
    json_object_object_foreach(meta, mkey, mval) {
        if (!json_object_is_type(mval, json_type_string))
            return hy__error(HY_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is not a string",
                             f->path, mkey);
        const char *v = json_object_get_string(mval);
        if (strlen(v) != (size_t)json_object_get_string_len(mval))
            return hy__error(HY_ERR_FORMAT,
                             "%s: __metadata__ value of \"%s\" contains a NUL character", f->path,
                             mkey);
        f->meta_keys[f->n_meta] = hy__strdup(mkey);
        f->meta_vals[f->n_meta] = hy__strdup(v);
        if (!f->meta_keys[f->n_meta] || !f->meta_vals[f->n_meta]) {
            hy__free(f->meta_keys[f->n_meta]);
            hy__free(f->meta_vals[f->n_meta]);
            return hy__error(HY_ERR_NOMEM, "%s: out of memory", f->path);
        }
        f->n_meta++;
    }
    return HY_OK;
}

/* One header entry name -> {dtype, shape, data_offsets} into tensor slot i. */
static hy_status parse_tensor(hy__st_file *f, size_t i, const char *name, json_object *v) {
    const char *P = f->path;
    hy__wtensor *t = &f->tensors[i];
    if (!json_object_is_type(v, json_type_object))
        return hy__error(HY_ERR_FORMAT, "%s: tensor \"%s\": header entry is not a JSON object", P,
                         name);
    json_object *jd, *js, *jo;
    if (!json_object_object_get_ex(v, "dtype", &jd) || !json_object_is_type(jd, json_type_string))
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": field \"dtype\" is missing or not a string", P, name);
    const char *ds = json_object_get_string(jd);
    size_t k;
    for (k = 0; k < HY_ARRAY_LEN(st_dtypes); k++)
        if (strcmp(ds, st_dtypes[k].str) == 0) break;
    if (k == HY_ARRAY_LEN(st_dtypes)) {
        for (size_t u = 0; u < HY_ARRAY_LEN(st_dtypes_unsupported); u++)
            if (strcmp(ds, st_dtypes_unsupported[u]) == 0)
                return hy__error(
                    HY_ERR_UNSUPPORTED,
                    "%s: tensor \"%s\": dtype \"%s\" is valid safetensors but not supported "
                    "by hotyolo (F32, F16, BF16, F64, I64, I32, I8, U8, BOOL)",
                    P, name, ds);
        return hy__error(HY_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", P, name, ds);
    }
    t->dtype = st_dtypes[k].t;

    if (!json_object_object_get_ex(v, "shape", &js) || !json_object_is_type(js, json_type_array))
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": field \"shape\" is missing or not a list", P, name);
    size_t nd = json_object_array_length(js);
    if (nd > HY_WT_MAX_DIMS)
        return hy__error(HY_ERR_FORMAT, "%s: tensor \"%s\": shape has %zu dimensions (at most %d)",
                         P, name, nd, HY_WT_MAX_DIMS);
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        if (!json_nonneg(json_object_array_get_idx(js, d), &dim))
            return hy__error(HY_ERR_FORMAT,
                             "%s: tensor \"%s\": shape[%zu] is not a non-negative integer", P, name,
                             d);
        t->shape[d] = (int64_t)dim;
        if (__builtin_mul_overflow(numel, dim, &numel)) overflow = true;
    }
    t->ndim = (int)nd;
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)hy_dtype_size(t->dtype), &nbytes) ||
        numel > SIZE_MAX)
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": shape overflows (numel * itemsize >= 2^64)", P, name);
    /* As the reference's left-to-right checked product: an intermediate overflow is an error
     * even when a later dimension is 0. */
    t->numel = (size_t)numel;

    if (!json_object_object_get_ex(v, "data_offsets", &jo) ||
        !json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2)
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": field \"data_offsets\" is missing or not [begin, end]",
                         P, name);
    uint64_t b, e;
    if (!json_nonneg(json_object_array_get_idx(jo, 0), &b) ||
        !json_nonneg(json_object_array_get_idx(jo, 1), &e))
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": data_offsets are not non-negative integers", P, name);
    if (b > e)
        return hy__error(HY_ERR_FORMAT,
                         "%s: tensor \"%s\": data_offsets [%llu, %llu] have begin > end", P, name,
                         (unsigned long long)b, (unsigned long long)e);
    if (e > f->data_size)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data section "
            "(%llu bytes)",
            P, name, (unsigned long long)b, (unsigned long long)e,
            (unsigned long long)f->data_size);
    if (e - b != nbytes) {
        char sh[160];
        fmt_shape(t, sh, sizeof sh);
        return hy__error(
            HY_ERR_FORMAT,
            "%s: tensor \"%s\": size mismatch: data_offsets [%llu, %llu] span %llu bytes but dtype "
            "%s shape %s needs %llu",
            P, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)(e - b), ds,
            sh, (unsigned long long)nbytes);
    }
    f->begin[i] = b;
    t->data = f->map.data + f->data_off + b;
    t->name = hy__strdup(name);
    if (!t->name) return hy__error(HY_ERR_NOMEM, "%s: out of memory", P);
    return HY_OK;
}

/* qsort records: a tensor's byte span / name with its index. */
typedef struct {
    uint64_t b, e;
    size_t i;
} span;
static int span_cmp(const void *x, const void *y) {
    const span *a = x, *c = y;
    if (a->b != c->b) return a->b < c->b ? -1 : 1;
    if (a->e != c->e) return a->e < c->e ? -1 : 1;
    return a->i < c->i ? -1 : a->i > c->i;
}

typedef struct {
    const char *name;
    size_t i;
} named;
static int named_cmp(const void *x, const void *y) {
    const named *a = x, *c = y;
    return strcmp(a->name, c->name);
}

/* The data section must be tiled exactly (reference rule). */
static hy_status check_coverage(hy__st_file *f) {
    if (f->n == 0) {
        if (f->data_size != 0)
            return hy__error(
                HY_ERR_FORMAT,
                "%s: data section has %llu bytes but the header lists no tensors (the tensors "
                "must cover the data section exactly)",
                f->path, (unsigned long long)f->data_size);
        return HY_OK;
    }
    span *s = hy__malloc(f->n * sizeof *s);
    if (!s) return hy__error(HY_ERR_NOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n; i++) {
        s[i].b = f->begin[i];
        s[i].e = f->begin[i] + f->tensors[i].numel * hy_dtype_size(f->tensors[i].dtype);
        s[i].i = i;
    }
    qsort(s, f->n, sizeof *s, span_cmp);
    hy_status st = HY_OK;
    uint64_t pos = 0;
    for (size_t k = 0; k < f->n && !st; k++) {
        if (s[k].b < pos)
            st = hy__error(HY_ERR_FORMAT,
                           "%s: tensor \"%s\" (data_offsets [%llu, %llu]) overlaps tensor \"%s\"",
                           f->path, f->tensors[s[k].i].name, (unsigned long long)s[k].b,
                           (unsigned long long)s[k].e, f->tensors[s[k - 1].i].name);
        else if (s[k].b > pos)
            st = hy__error(HY_ERR_FORMAT,
                           "%s: data section bytes [%llu, %llu) before tensor \"%s\" belong to no "
                           "tensor (holes are "
                           "not allowed)",
                           f->path, (unsigned long long)pos, (unsigned long long)s[k].b,
                           f->tensors[s[k].i].name);
        pos = s[k].e;
    }
    if (!st && pos != f->data_size)
        st = hy__error(
            HY_ERR_FORMAT,
            "%s: data section bytes [%llu, %llu) after the last tensor belong to no tensor (the "
            "tensors must cover the data section exactly)",
            f->path, (unsigned long long)pos, (unsigned long long)f->data_size);
    hy__free(s);
    return st;
}

/* hotyolo.* metadata -> hints (validated when present). */
static hy_status parse_hotyolo_meta(hy__st_file *f) {
    const char *P = f->path, *v;
    if ((v = hy__st_meta(f, "format")) && strcmp(v, "hotyolo") == 0) {
        const char *ver = hy__st_meta(f, "hotyolo.format_version");
        if (!ver)
            return hy__error(HY_ERR_FORMAT, "%s: metadata \"hotyolo.format_version\" is missing",
                             P);
        if (strcmp(ver, HY_ST_FORMAT_VERSION) != 0)
            return hy__error(
                HY_ERR_UNSUPPORTED,
                "%s: metadata \"hotyolo.format_version\" is \"%.16s\"; this build reads version %s",
                P, ver, HY_ST_FORMAT_VERSION);
    }
    if ((v = hy__st_meta(f, "hotyolo.variant")) && v[0]) { /* "" = unknown */
        if (strlen(v) != 1 || !strchr("nsmlx", v[0]))
            return hy__error(
                HY_ERR_FORMAT,
                "%s: metadata \"hotyolo.variant\" is \"%.16s\"; expected n, s, m, l or x", P, v);
        snprintf(f->scale, sizeof f->scale, "%s", v);
    }
    if ((v = hy__st_meta(f, "hotyolo.nc")) && !parse_int_str(v, 1, 100000, &f->nc))
        return hy__error(HY_ERR_FORMAT,
                         "%s: metadata \"hotyolo.nc\" is \"%.16s\"; expected an integer 1..100000",
                         P, v);
    if ((v = hy__st_meta(f, "hotyolo.imgsz")) &&
        (!parse_int_str(v, 32, 16384, &f->imgsz) || f->imgsz % 32))
        return hy__error(
            HY_ERR_FORMAT,
            "%s: metadata \"hotyolo.imgsz\" is \"%.16s\"; expected a multiple of 32 in 32..16384",
            P, v);
    f->fused = -1;
    if ((v = hy__st_meta(f, "hotyolo.fused"))) {
        if (strcmp(v, "true") == 0)
            f->fused = 1;
        else if (strcmp(v, "false") == 0)
            f->fused = 0;
        else
            return hy__error(HY_ERR_FORMAT,
                             "%s: metadata \"hotyolo.fused\" is \"%.16s\"; expected true or false",
                             P, v);
    }
    const char *hash_keys[] = {"hotyolo.source_sha256", HY_ST_KEY_DATA_SHA256};
    for (size_t k = 0; k < 2; k++)
        if ((v = hy__st_meta(f, hash_keys[k])) && !is_sha256_hex(v))
            return hy__error(HY_ERR_FORMAT, "%s: metadata \"%s\" is not 64 hex digits", P,
                             hash_keys[k]);
    if ((v = hy__st_meta(f, "hotyolo.stride"))) {
        const char *why;
        size_t end;
        json_object *a = parse_json(v, strlen(v), &why, &end);
        bool ok = a && json_object_is_type(a, json_type_array) && json_object_array_length(a) > 0 &&
                  all_space(v + end, strlen(v) - end);
        for (size_t i = 0; ok && i < json_object_array_length(a); i++) {
            uint64_t s;
            ok = json_nonneg(json_object_array_get_idx(a, i), &s) && s >= 1 && s <= 1024;
        }
        json_object_put(a);
        if (!ok)
            return hy__error(
                HY_ERR_FORMAT,
                "%s: metadata \"hotyolo.stride\" is not a JSON list of strides like [8,16,32]", P);
    }
    if ((v = hy__st_meta(f, "hotyolo.names"))) {
        const char *why;
        size_t end;
        json_object *a = parse_json(v, strlen(v), &why, &end);
        if (!a || !json_object_is_type(a, json_type_array) ||
            !all_space(v + end, strlen(v) - end) || json_object_array_length(a) > 100000) {
            json_object_put(a);
            return hy__error(HY_ERR_FORMAT,
                             "%s: metadata \"hotyolo.names\" is not a JSON list of strings", P);
        }
        size_t nn = json_object_array_length(a);
        f->names = hy__calloc(nn ? nn : 1, sizeof(char *));
        if (!f->names) {
            json_object_put(a);
            return hy__error(HY_ERR_NOMEM, "%s: out of memory", P);
        }
        for (size_t i = 0; i < nn; i++) {
            json_object *s = json_object_array_get_idx(a, i);
            if (!json_object_is_type(s, json_type_string)) {
                json_object_put(a);
                return hy__error(HY_ERR_FORMAT,
                                 "%s: metadata \"hotyolo.names\": entry %zu is not a string", P, i);
            }
            f->names[i] = hy__strdup(json_object_get_string(s));
            if (!f->names[i]) {
                json_object_put(a);
                return hy__error(HY_ERR_NOMEM, "%s: out of memory", P);
            }
            f->n_names = (int)i + 1;
        }
        json_object_put(a);
        if (f->nc > 0 && f->n_names != f->nc)
            return hy__error(HY_ERR_FORMAT,
                             "%s: metadata \"hotyolo.names\" has %d names but \"hotyolo.nc\" is %d",
                             P, f->n_names, f->nc);
    }
    if (f->fused < 0) { /* infer: BN tensors present -> unfused; conv biases only -> fused */
        bool bn = false, conv_bias = false;
        for (size_t i = 0; i < f->n; i++) {
            const char *nm = f->tensors[i].name;
            if (strstr(nm, ".bn.")) bn = true;
            size_t l = strlen(nm);
            if (l >= 10 && strcmp(nm + l - 10, ".conv.bias") == 0) conv_bias = true;
        }
        f->fused = !bn && conv_bias;
    }
    return HY_OK;
}

static hy_status hash_data(const hy__st_file *f, char hex[HY_SHA256_HEX_LEN + 1]) {
    uint8_t d[HY_SHA256_LEN];
    hy_status st = hy__sha256_buf(f->map.data + f->data_off, (size_t)f->data_size, d);
    if (st) return hy__error_prefix(st, "%s", f->path);
    hy__sha256_hex(d, hex);
    return HY_OK;
}

/* ---- block checksum (HY_ST_KEY_DATA_XXH3) ---- */
static size_t xxh_nblocks(uint64_t size) { return (size_t)((size + HY_ST_XXH3_BLOCK - 1) / HY_ST_XXH3_BLOCK); }

/* final value from the block values; false: out of memory */
static bool xxh_hex(const uint64_t *blocks, size_t nb, char hex[17]) {
    uint8_t small[8 * 64] = {0}, *le = nb > 64 ? hy__malloc(nb * 8) : small;
    if (!le) return false;
    for (size_t i = 0; i < nb; i++)
        for (int k = 0; k < 8; k++) le[i * 8 + (size_t)k] = (uint8_t)(blocks[i] >> (8 * k));
    snprintf(hex, 17, "%016llx", (unsigned long long)XXH3_64bits(le, nb * 8));
    if (le != small) hy__free(le);
    return true;
}

typedef struct xxh_job {
    const uint8_t *data;
    uint64_t size;
    size_t b0, b1; /* blocks [b0, b1) */
    uint64_t *out;
} xxh_job;

static void *xxh_run(void *arg) {
    const xxh_job *j = arg;
    for (size_t b = j->b0; b < j->b1; b++) {
        uint64_t off = (uint64_t)b * HY_ST_XXH3_BLOCK, n = j->size - off;
        j->out[b] = XXH3_64bits(j->data + off, (size_t)(n < HY_ST_XXH3_BLOCK ? n : HY_ST_XXH3_BLOCK));
    }
    return NULL;
}

hy_status hy__st_data_xxh3(const hy__st_file *f, char hex[17]) {
    size_t nb = xxh_nblocks(f->data_size);
    uint64_t one, *blocks = nb > 1 ? hy__malloc(nb * sizeof *blocks) : &one;
    if (!blocks) return hy__error(HY_ERR_NOMEM, "%s: out of memory", f->path);
    /* 47 MB (yolov8n, packed): ~4 ms on one core, memory-bound; a thread per 4 blocks */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = (size_t)(cpus > 1 ? (cpus < 4 ? cpus : 4) : 1);
    if (nt > (nb + 3) / 4) nt = (nb + 3) / 4;
    if (nt < 1) nt = 1;
    xxh_job jobs[4];
    pthread_t th[4];
    int started[4] = {0};
    for (size_t t = 0; t < nt; t++)
        jobs[t] = (xxh_job){f->map.data + f->data_off, f->data_size, nb * t / nt, nb * (t + 1) / nt, blocks};
    for (size_t t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, xxh_run, &jobs[t]) == 0;
    xxh_run(&jobs[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else xxh_run(&jobs[t]); /* no thread: hash it here */
    }
    bool ok = xxh_hex(blocks, nb, hex);
    if (blocks != &one) hy__free(blocks);
    return ok ? HY_OK : hy__error(HY_ERR_NOMEM, "%s: out of memory", f->path);
}

/* The writer's side of hy__st_data_xxh3: the data section as tensors[order[k]] back to back
 * (total bytes), streamed block by block. false: out of memory. */
static bool xxh_written(const hy__wtensor *t, const size_t *nbytes, const size_t *order, size_t n, size_t total,
                        char hex[17]) {
    size_t nb = xxh_nblocks(total), b = 0, fill = 0;
    uint64_t one, *blocks = nb > 1 ? hy__malloc(nb * sizeof *blocks) : &one;
    XXH3_state_t *s = XXH3_createState();
    bool ok = blocks && s && XXH3_64bits_reset(s) == XXH_OK;
    for (size_t k = 0; k < n && ok; k++) {
        const uint8_t *p = t[order[k]].data;
        for (size_t len = nbytes[order[k]]; len > 0;) {
            size_t take = HY_MIN(len, HY_ST_XXH3_BLOCK - fill);
            XXH3_64bits_update(s, p, take);
            p += take, len -= take, fill += take;
            if (fill == HY_ST_XXH3_BLOCK) {
                blocks[b++] = XXH3_64bits_digest(s);
                XXH3_64bits_reset(s);
                fill = 0;
            }
        }
    }
    if (ok && fill) blocks[b++] = XXH3_64bits_digest(s);
    HY_ASSERT(!ok || b == nb);
    ok = ok && xxh_hex(blocks, nb, hex);
    XXH3_freeState(s);
    if (blocks != &one) hy__free(blocks);
    return ok;
}

static hy_status st_parse(hy__st_file *f) {
    const char *P = f->path;
    const uint8_t *m = f->map.data;
    size_t size = f->map.size;
    if (size < 8)
        return hy__error(
            HY_ERR_FORMAT,
            "%s: file is %zu bytes, too short for the 8-byte safetensors header length", P, size);
    uint64_t n = le64(m);
    if (n == 0) return hy__error(HY_ERR_FORMAT, "%s: safetensors header length is 0", P);
    if (n > HY_ST_MAX_HEADER)
        return hy__error(HY_ERR_FORMAT,
                         "%s: safetensors header length %llu exceeds the %u-byte limit", P,
                         (unsigned long long)n, HY_ST_MAX_HEADER);
    if (n > size - 8)
        return hy__error(HY_ERR_FORMAT,
                         "%s: safetensors header length %llu runs past the end of the file (%zu "
                         "bytes: truncated?)",
                         P, (unsigned long long)n, size);
    f->header_len = n;
    f->data_off = 8 + n;
    f->data_size = size - 8 - n;
    const char *hdr = (const char *)m + 8;
    size_t bad = utf8_check((const uint8_t *)hdr, (size_t)n);
    if (bad != n)
        return hy__error(HY_ERR_FORMAT, "%s: header is not valid UTF-8 (header byte %zu)", P, bad);
    if (memchr(hdr, 0, (size_t)n))
        return hy__error(HY_ERR_FORMAT, "%s: header is not valid JSON (NUL byte)", P);

    const char *why;
    size_t end = 0;
    json_object *root = parse_json(hdr, (size_t)n, &why, &end);
    if (!root)
        return hy__error(HY_ERR_FORMAT, "%s: header is not valid JSON: %s (near header byte %zu)",
                         P, why, end);
    hy_status st = HY_OK;
    if (!json_object_is_type(root, json_type_object)) {
        st = hy__error(HY_ERR_FORMAT, "%s: header is not a JSON object", P);
        goto done;
    }
    if (!all_space(hdr + end, (size_t)n - end)) {
        st = hy__error(
            HY_ERR_FORMAT,
            "%s: header is not valid JSON: trailing characters after the object at byte %zu", P,
            end);
        goto done;
    }
    size_t cap = (size_t)json_object_object_length(root);
    f->tensors = hy__calloc(cap ? cap : 1, sizeof *f->tensors);
    f->begin = hy__calloc(cap ? cap : 1, sizeof *f->begin);
    f->by_name = hy__calloc(cap ? cap : 1, sizeof *f->by_name);
    if (!f->tensors || !f->begin || !f->by_name) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", P);
        goto done;
    }
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            st = parse_metadata(f, val);
        else if ((st = parse_tensor(f, f->n, key, val)) == HY_OK)
            f->n++;
        if (st) goto done;
    }
    if ((st = check_coverage(f))) goto done;

    named *nm = hy__malloc((f->n ? f->n : 1) * sizeof *nm);
    if (!nm) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", P);
        goto done;
    }
    for (size_t i = 0; i < f->n; i++) nm[i] = (named){f->tensors[i].name, i};
    qsort(nm, f->n, sizeof *nm, named_cmp);
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = nm[i].i;
    hy__free(nm);
    st = parse_hotyolo_meta(f);
done:
    json_object_put(root);
    return st;
}

hy_status hy__st_open(const char *path, int verify_hash, hy__st_file **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__st_open: NULL argument");
    hy__st_file *f = hy__calloc(1, sizeof *f);
    if (!f) return hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    f->path = hy__strdup(path);
    if (!f->path) {
        hy__free(f);
        return hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    }
    hy_status st = hy__map_open(path, &f->map);
    if (!st) st = st_parse(f);
    if (!st && verify_hash == HY_ST_VERIFY_XXH3) {
        const char *rec = hy__st_meta(f, HY_ST_KEY_DATA_XXH3);
        char hex[17];
        if (!rec)
            st = hy__error(HY_ERR_FORMAT, "%s: cannot check: the file has no recorded data checksum (metadata \"%s\" is absent)",
                           path, HY_ST_KEY_DATA_XXH3);
        else if (!(st = hy__st_data_xxh3(f, hex)) && strcasecmp(rec, hex) != 0)
            st = hy__error(HY_ERR_FORMAT,
                           "%s: data checksum mismatch (file is corrupt or was modified): recorded %s, computed %s",
                           path, rec, hex);
    } else if (!st && verify_hash) {
        const char *rec = hy__st_meta(f, HY_ST_KEY_DATA_SHA256);
        char hex[HY_SHA256_HEX_LEN + 1];
        if (!rec)
            st = hy__error(
                HY_ERR_FORMAT,
                "%s: cannot verify: the file has no recorded data hash (metadata \"%s\" is absent)",
                path, HY_ST_KEY_DATA_SHA256);
        else if (!(st = hash_data(f, hex)) && strcasecmp(rec, hex) != 0)
            st = hy__error(HY_ERR_FORMAT,
                           "%s: data sha256 mismatch (file is corrupt or was modified): recorded "
                           "%s, computed %s",
                           path, rec, hex);
    }
    if (st) {
        hy__st_close(f);
        return st;
    }
    *out = f;
    return HY_OK;
}

size_t hy__st_count(const hy__st_file *f) { return f->n; }
const hy__wtensor *hy__st_tensor(const hy__st_file *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}
uint64_t hy__st_tensor_offset(const hy__st_file *f, size_t i) {
    return i < f->n ? f->data_off + f->begin[i] : 0;
}
uint64_t hy__st_header_len(const hy__st_file *f) { return f->header_len; }
uint64_t hy__st_data_offset(const hy__st_file *f) { return f->data_off; }
uint64_t hy__st_data_size(const hy__st_file *f) { return f->data_size; }
const char *hy__st_path(const hy__st_file *f) { return f->path; }
size_t hy__st_meta_count(const hy__st_file *f) { return f->n_meta; }

const hy__wtensor *hy__st_find(const hy__st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[f->by_name[mid]].name, name);
        if (c == 0) return &f->tensors[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *hy__st_meta(const hy__st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

bool hy__st_meta_at(const hy__st_file *f, size_t i, const char **key, const char **value) {
    if (i >= f->n_meta) return false;
    *key = f->meta_keys[i];
    *value = f->meta_vals[i];
    return true;
}

hy_status hy__st_source(const hy__st_file *f, hy__wsource *out) {
    if (!f || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__st_source: NULL argument");
    memset(out, 0, sizeof *out);
    out->format = HY_WFORMAT_SAFETENSORS;
    out->tensors = f->tensors;
    out->n_tensors = f->n;
    out->fused = f->fused;
    out->arch = hy__st_meta(f, "hotyolo.arch"); /* judged by the model layer, not here */
    out->nc = f->nc;
    snprintf(out->scale, sizeof out->scale, "%s", f->scale);
    out->imgsz = f->imgsz;
    out->names = f->names;
    out->n_names = f->n_names;
    return HY_OK;
}

hy_status hy__st_verify(const char *path, char computed_hex[HY_SHA256_HEX_LEN + 1], int *matches) {
    if (!computed_hex || !matches)
        return hy__error(HY_ERR_INVALID_ARG, "hy__st_verify: NULL argument");
    hy__st_file *f = NULL;
    hy_status st = hy__st_open(path, 0, &f);
    if (st) return st;
    char hex[HY_SHA256_HEX_LEN + 1];
    st = hash_data(f, hex);
    if (!st) {
        const char *rec = hy__st_meta(f, HY_ST_KEY_DATA_SHA256);
        memcpy(computed_hex, hex, sizeof hex);
        *matches = !rec ? -1 : strcasecmp(rec, hex) == 0;
    }
    hy__st_close(f);
    return st;
}

// --- writer --------------------------------------------------------------------------

/* json-c add/push that take ownership of v and report failure (NULL v: allocation failed). */
static int jadd(json_object *o, const char *k, json_object *v) {
    if (!v) return 1;
    if (json_object_object_add(o, k, v) != 0) {
        json_object_put(v);
        return 1;
    }
    return 0;
}
static int jpush(json_object *a, json_object *v) {
    if (!v) return 1;
    if (json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return 1;
    }
    return 0;
}

/* write(2) all of p[0, n), retrying short writes and EINTR. */
static bool write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Validates a tensor given to the writer; sets *nbytes. */
static hy_status check_wtensor(const char *path, size_t i, const hy__wtensor *t, size_t *nbytes) {
    if (!t->name) return hy__error(HY_ERR_INVALID_ARG, "%s: tensor %zu has no name", path, i);
    if (!is_utf8(t->name))
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor %zu: name is not valid UTF-8", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor name \"__metadata__\" is reserved", path);
    if ((unsigned)t->dtype >= HY_DTYPE_COUNT)
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor \"%s\": invalid dtype %d", path, t->name,
                         (int)t->dtype);
    if (t->ndim < 0 || t->ndim > HY_WT_MAX_DIMS)
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor \"%s\": ndim %d out of range 0..%d", path,
                         t->name, t->ndim, HY_WT_MAX_DIMS);
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || !hy__mul_ok(numel, (size_t)t->shape[d], &numel))
            return hy__error(HY_ERR_INVALID_ARG, "%s: tensor \"%s\": bad shape[%d] = %lld", path,
                             t->name, d, (long long)t->shape[d]);
    }
    if (numel != t->numel)
        return hy__error(HY_ERR_INVALID_ARG,
                         "%s: tensor \"%s\": numel %zu does not match the shape (%zu)", path,
                         t->name, t->numel, numel);
    if (!hy__mul_ok(numel, hy_dtype_size(t->dtype), nbytes))
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor \"%s\": size overflows", path, t->name);
    if (*nbytes && !t->data)
        return hy__error(HY_ERR_INVALID_ARG, "%s: tensor \"%s\": data is NULL", path, t->name);
    return HY_OK;
}

/* Data layout order. Holes are invalid (reference rule), so alignment comes from the
 * order: tensors whose byte size is a multiple of 64 first (each then starts 64-aligned,
 * the data section starting 64-aligned), in given order; then the rest by decreasing
 * element size (8, 4, 2, 1), in given order within a size, which keeps every tensor
 * aligned to its element size. */
static void layout_order(const hy__wtensor *t, const size_t *nbytes, size_t n, size_t *order) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (nbytes[i] % HY_ST_ALIGN == 0) order[k++] = i;
    for (size_t isz = 8; isz >= 1; isz /= 2)
        for (size_t i = 0; i < n; i++)
            if (nbytes[i] % HY_ST_ALIGN != 0 && hy_dtype_size(t[i].dtype) == isz) order[k++] = i;
    HY_ASSERT(k == n);
}

hy_status hy__st_write(const char *path, const hy__wtensor *tensors, size_t n,
                       const char *const *meta_keys, const char *const *meta_values,
                       size_t n_meta) {
    if (!path || (n && !tensors) || (n_meta && (!meta_keys || !meta_values)))
        return hy__error(HY_ERR_INVALID_ARG, "hy__st_write: NULL argument");
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return hy__error(HY_ERR_INVALID_ARG,
                         "%s: is a directory; refusing to write a weights file there", path);

    hy_status st = HY_OK;
    size_t *nbytes = hy__calloc(n ? n : 1, sizeof *nbytes);
    size_t *order = hy__calloc(n ? n : 1, sizeof *order);
    size_t *begin = hy__calloc(n ? n : 1, sizeof *begin);
    named *nm = hy__calloc(n ? n : 1, sizeof *nm);
    json_object *root = NULL;
    char *tmp = NULL;
    int fd = -1;
    if (!nbytes || !order || !begin || !nm) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = check_wtensor(path, i, &tensors[i], &nbytes[i]))) goto fail;
        nm[i] = (named){tensors[i].name, i};
    }
    qsort(nm, n, sizeof *nm, named_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(nm[i - 1].name, nm[i].name) == 0) {
            st =
                hy__error(HY_ERR_INVALID_ARG, "%s: duplicate tensor name \"%s\"", path, nm[i].name);
            goto fail;
        }
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i] || !is_utf8(meta_keys[i]) ||
            !is_utf8(meta_values[i])) {
            st = hy__error(HY_ERR_INVALID_ARG, "%s: metadata entry %zu is NULL or not valid UTF-8",
                           path, i);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(meta_keys[i], meta_keys[j]) == 0) {
                st = hy__error(HY_ERR_INVALID_ARG, "%s: duplicate metadata key \"%s\"", path,
                               meta_keys[i]);
                goto fail;
            }
    }

    /* Layout and hash of the data section. */
    layout_order(tensors, nbytes, n, order);
    size_t pos = 0;
    hy__sha256_ctx h = {0};
    if ((st = hy__sha256_init(&h))) goto fail;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        begin[i] = pos;
        if (!hy__add_ok(pos, nbytes[i], &pos)) {
            hy__sha256_abort(&h);
            st = hy__error(HY_ERR_INVALID_ARG, "%s: total tensor size overflows", path);
            goto fail;
        }
        hy__sha256_update(&h, tensors[i].data, nbytes[i]);
    }
    uint8_t dig[HY_SHA256_LEN];
    char hex[HY_SHA256_HEX_LEN + 1];
    if ((st = hy__sha256_final(&h, dig))) goto fail;
    hy__sha256_hex(dig, hex);
    char xxh[17];
    if (!xxh_written(tensors, nbytes, order, n, pos, xxh)) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }

    /* Header JSON: "__metadata__" first, then tensors in given order. */
    root = json_object_new_object();
    json_object *meta = json_object_new_object();
    if (!root || !meta || json_object_object_add(root, "__metadata__", meta) != 0) {
        json_object_put(meta);
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    int jerr = 0;
    for (size_t i = 0; i < n_meta; i++)
        if (strcmp(meta_keys[i], HY_ST_KEY_DATA_SHA256) != 0 && strcmp(meta_keys[i], HY_ST_KEY_DATA_XXH3) != 0)
            jerr |= jadd(meta, meta_keys[i], json_object_new_string(meta_values[i]));
    jerr |= jadd(meta, HY_ST_KEY_DATA_SHA256, json_object_new_string(hex));
    jerr |= jadd(meta, HY_ST_KEY_DATA_XXH3, json_object_new_string(xxh));
    for (size_t i = 0; i < n && !jerr; i++) {
        const hy__wtensor *t = &tensors[i];
        json_object *e = json_object_new_object(), *shape = json_object_new_array(),
                    *offs = json_object_new_array();
        if (!e || !shape || !offs) {
            json_object_put(e);
            json_object_put(shape);
            json_object_put(offs);
            jerr = 1;
            break;
        }
        for (int d = 0; d < t->ndim; d++)
            jerr |= jpush(shape, json_object_new_uint64((uint64_t)t->shape[d]));
        jerr |= jpush(offs, json_object_new_uint64(begin[i]));
        jerr |= jpush(offs, json_object_new_uint64(begin[i] + nbytes[i]));
        /* each jadd consumes its value, so nothing leaks when one fails */
        jerr |= jadd(e, "dtype", json_object_new_string(hy__st_dtype_str(t->dtype)));
        jerr |= jadd(e, "shape", shape);
        jerr |= jadd(e, "data_offsets", offs);
        jerr |= jadd(root, t->name, e);
    }
    size_t jlen = 0;
    const int jflags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *js = jerr ? NULL : json_object_to_json_string_length(root, jflags, &jlen);
    if (!js) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory building the header", path);
        goto fail;
    }
    /* Pad with spaces (valid JSON whitespace) so the data section starts 64-aligned. */
    size_t pad = (HY_ST_ALIGN - (8 + jlen) % HY_ST_ALIGN) % HY_ST_ALIGN;
    uint64_t hlen = (uint64_t)jlen + pad;
    if (hlen > HY_ST_MAX_HEADER) {
        st = hy__error(HY_ERR_INVALID_ARG, "%s: header would be %llu bytes (limit %u)", path,
                       (unsigned long long)hlen, HY_ST_MAX_HEADER);
        goto fail;
    }
    uint8_t pre[8 + HY_ST_ALIGN];
    for (int k = 0; k < 8; k++) pre[k] = (uint8_t)(hlen >> (8 * k));
    memset(pre + 8, ' ', pad);

    /* Temporary file next to path, renamed over it only once complete and synced. */
    size_t plen = strlen(path);
    tmp = hy__malloc(plen + 16);
    if (!tmp) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = hy__error(HY_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                       strerror(errno));
        hy__free(tmp);
        tmp = NULL;
        goto fail;
    }
    (void)fchmod(fd, 0644);
    bool ok = write_all(fd, pre, 8) && write_all(fd, js, jlen) && write_all(fd, pre + 8, pad);
    for (size_t k = 0; k < n && ok; k++)
        ok = write_all(fd, tensors[order[k]].data, nbytes[order[k]]);
    if (!ok || fsync(fd) != 0) {
        st = hy__error(HY_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        st = hy__error(HY_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = hy__error(HY_ERR_IO, "%s: cannot rename the temporary file into place: %s", path,
                       strerror(errno));
        goto fail;
    }
    hy__free(tmp);
    tmp = NULL;

fail:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        hy__free(tmp);
    }
    json_object_put(root);
    hy__free(nbytes);
    hy__free(order);
    hy__free(begin);
    hy__free(nm);
    return st;
}

hy_status hy__st_write_source(const char *path, const hy__wsource *src,
                              const char *source_sha256_hex) {
    if (!path || !src) return hy__error(HY_ERR_INVALID_ARG, "hy__st_write_source: NULL argument");
    if (source_sha256_hex && !is_sha256_hex(source_sha256_hex))
        return hy__error(HY_ERR_INVALID_ARG, "%s: source sha256 is not 64 hex digits", path);
    const char *keys[12], *vals[12];
    size_t k = 0;
    char nc[16], imgsz[16];
    char *names = NULL;
    json_object *arr = NULL;
    keys[k] = "format", vals[k++] = "hotyolo";
    keys[k] = "hotyolo.format_version", vals[k++] = HY_ST_FORMAT_VERSION;
    keys[k] = "hotyolo.arch", vals[k++] = "yolov8";
    if (src->scale[0]) keys[k] = "hotyolo.variant", vals[k++] = src->scale;
    if (src->nc > 0) {
        snprintf(nc, sizeof nc, "%d", src->nc);
        keys[k] = "hotyolo.nc", vals[k++] = nc;
    }
    if (src->names && src->n_names > 0) {
        arr = json_object_new_array();
        int jerr = !arr;
        for (int i = 0; i < src->n_names && !jerr; i++)
            jerr |= !src->names[i] || jpush(arr, json_object_new_string(src->names[i]));
        const char *s = jerr ? NULL
                             : json_object_to_json_string_ext(
                                   arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        names = s ? hy__strdup(s) : NULL;
        json_object_put(arr);
        if (!names) return hy__error(HY_ERR_NOMEM, "%s: out of memory (class names)", path);
        keys[k] = "hotyolo.names", vals[k++] = names;
    }
    snprintf(imgsz, sizeof imgsz, "%d", src->imgsz > 0 ? src->imgsz : 640);
    keys[k] = "hotyolo.imgsz", vals[k++] = imgsz;
    keys[k] = "hotyolo.stride", vals[k++] = "[8,16,32]";
    keys[k] = "hotyolo.fused", vals[k++] = src->fused ? "true" : "false";
    if (source_sha256_hex) keys[k] = "hotyolo.source_sha256", vals[k++] = source_sha256_hex;
    hy_status st = hy__st_write(path, src->tensors, src->n_tensors, keys, vals, k);
    hy__free(names);
    return st;
}
