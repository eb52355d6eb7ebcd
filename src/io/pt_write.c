/* PyTorch .pt writer (see pt_write.h). */
#include "io/pt_write.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

// --- pickle -------------------------------------------------------------------------------

void hy__pkw_free(hy__pkw *w) {
    hy__free(w->buf);
    memset(w, 0, sizeof *w);
}

static uint8_t *room(hy__pkw *w, size_t n) {
    if (w->st) return NULL;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n) cap *= 2;
        uint8_t *b = hy__realloc(w->buf, cap);
        if (!b) {
            w->st = hy__error(HY_ERR_NOMEM, "pickle: out of memory");
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void op(hy__pkw *w, uint8_t c) {
    uint8_t *p = room(w, 1);
    if (p) *p = c;
}

static void raw(hy__pkw *w, const void *d, size_t n) {
    uint8_t *p = room(w, n);
    if (p && n) memcpy(p, d, n);
}

static void le(hy__pkw *w, uint64_t v, int n) {
    uint8_t *p = room(w, (size_t)n);
    for (int i = 0; p && i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void hy__pkw_proto(hy__pkw *w) {
    op(w, 0x80); /* PROTO */
    op(w, 2);
}
void hy__pkw_stop(hy__pkw *w) { op(w, '.'); }
void hy__pkw_none(hy__pkw *w) { op(w, 'N'); }
void hy__pkw_bool(hy__pkw *w, int v) { op(w, v ? 0x88 : 0x89); /* NEWTRUE / NEWFALSE */ }

void hy__pkw_int(hy__pkw *w, int64_t v) {
    if (v >= 0 && v < 256) {
        op(w, 'K'); /* BININT1 */
        le(w, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        op(w, 'M'); /* BININT2 */
        le(w, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        op(w, 'J'); /* BININT */
        le(w, (uint64_t)(uint32_t)(int32_t)v, 4);
    } else {
        op(w, 0x8a); /* LONG1: 8 bytes two's complement, little-endian */
        op(w, 8);
        le(w, (uint64_t)v, 8);
    }
}

/* torch 1.13's weights_only unpickler has no float opcode (BINFLOAT): a float is written as
 * its shortest round-trip decimal text. */
void hy__pkw_float(hy__pkw *w, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    hy__pkw_str(w, buf);
}

void hy__pkw_str(hy__pkw *w, const char *s) {
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        if (!w->st) w->st = hy__error(HY_ERR_INVALID_ARG, "pickle: string too long");
        return;
    }
    op(w, 'X'); /* BINUNICODE */
    le(w, n, 4);
    raw(w, s, n);
}

static void global(hy__pkw *w, const char *module, const char *name) {
    op(w, 'c'); /* GLOBAL "module\nname\n" */
    raw(w, module, strlen(module));
    op(w, '\n');
    raw(w, name, strlen(name));
    op(w, '\n');
}

/* collections.OrderedDict() */
static void ordered_dict(hy__pkw *w) {
    global(w, "collections", "OrderedDict");
    op(w, ')'); /* EMPTY_TUPLE */
    op(w, 'R'); /* REDUCE */
}

void hy__pkw_dict_begin(hy__pkw *w, int ordered) {
    if (ordered) ordered_dict(w);
    else op(w, '}'); /* EMPTY_DICT */
    op(w, '(');      /* MARK */
}
void hy__pkw_dict_end(hy__pkw *w) { op(w, 'u'); /* SETITEMS */ }
void hy__pkw_list_begin(hy__pkw *w) {
    op(w, ']'); /* EMPTY_LIST */
    op(w, '(');
}
void hy__pkw_list_end(hy__pkw *w) { op(w, 'e'); /* APPENDS */ }
void hy__pkw_tuple_begin(hy__pkw *w) { op(w, '('); }
void hy__pkw_tuple_end(hy__pkw *w) { op(w, 't'); /* TUPLE */ }

static const char *storage_name(hy_dtype t) {
    switch (t) {
    case HY_DTYPE_F32: return "FloatStorage";
    case HY_DTYPE_F16: return "HalfStorage";
    case HY_DTYPE_BF16: return "BFloat16Storage";
    case HY_DTYPE_F64: return "DoubleStorage";
    case HY_DTYPE_I64: return "LongStorage";
    case HY_DTYPE_I32: return "IntStorage";
    case HY_DTYPE_U8: return "ByteStorage";
    case HY_DTYPE_I8: return "CharStorage";
    case HY_DTYPE_BOOL: return "BoolStorage";
    default: return NULL;
    }
}

void hy__pkw_tensor(hy__pkw *w, const hy__wtensor *t, size_t key) {
    const char *sn = storage_name(t->dtype);
    if (!sn || t->ndim < 0 || t->ndim > HY_WT_MAX_DIMS) {
        if (!w->st) w->st = hy__error(HY_ERR_UNSUPPORTED, "pickle: tensor %s: dtype %s cannot be written", t->name,
                                      hy_dtype_name(t->dtype));
        return;
    }
    char k[32];
    snprintf(k, sizeof k, "%zu", key);
    global(w, "torch._utils", "_rebuild_tensor_v2");
    op(w, '(');
    /* persistent id ('storage', torch.<T>Storage, key, 'cpu', numel) */
    op(w, '(');
    hy__pkw_str(w, "storage");
    global(w, "torch", sn);
    hy__pkw_str(w, k);
    hy__pkw_str(w, "cpu");
    hy__pkw_int(w, (int64_t)t->numel);
    op(w, 't');
    op(w, 'Q'); /* BINPERSID */
    hy__pkw_int(w, 0); /* storage offset */
    int64_t stride[HY_WT_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= t->shape[d];
    }
    op(w, '(');
    for (int d = 0; d < t->ndim; d++) hy__pkw_int(w, t->shape[d]);
    op(w, 't');
    op(w, '(');
    for (int d = 0; d < t->ndim; d++) hy__pkw_int(w, stride[d]);
    op(w, 't');
    hy__pkw_bool(w, 0);  /* requires_grad */
    ordered_dict(w);     /* backward hooks */
    op(w, 't');
    op(w, 'R');
}

static void put_json(hy__pkw *w, json_object *o, int depth) {
    if (depth > 64) {
        if (!w->st) w->st = hy__error(HY_ERR_FORMAT, "pickle: JSON nested too deep");
        return;
    }
    switch (json_object_get_type(o)) {
    case json_type_null: hy__pkw_none(w); break;
    case json_type_boolean: hy__pkw_bool(w, json_object_get_boolean(o)); break;
    case json_type_int: hy__pkw_int(w, json_object_get_int64(o)); break;
    case json_type_double: hy__pkw_float(w, json_object_get_double(o)); break;
    case json_type_string: hy__pkw_str(w, json_object_get_string(o)); break;
    case json_type_array: {
        hy__pkw_list_begin(w);
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) put_json(w, json_object_array_get_idx(o, i), depth + 1);
        hy__pkw_list_end(w);
        break;
    }
    case json_type_object: {
        hy__pkw_dict_begin(w, 0);
        json_object_object_foreach(o, key, val) {
            hy__pkw_str(w, key);
            put_json(w, val, depth + 1);
        }
        hy__pkw_dict_end(w);
        break;
    }
    }
}

hy_status hy__pkw_json(hy__pkw *w, const char *text) {
    json_tokener *tok = json_tokener_new();
    if (!tok) return hy__error(HY_ERR_NOMEM, "out of memory");
    json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text));
    enum json_tokener_error e = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!o && e != json_tokener_success) return hy__error(HY_ERR_FORMAT, "not JSON: %s", json_tokener_error_desc(e));
    put_json(w, o, 0);
    json_object_put(o);
    return w->st;
}

// --- file -----------------------------------------------------------------------------------

static hy_status write_all(int fd, const void *d, size_t n, const char *path) {
    const uint8_t *p = d;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return hy__error(HY_ERR_IO, "%s: write: %s", path, strerror(k < 0 ? errno : EIO));
        p += k;
        n -= (size_t)k;
    }
    return HY_OK;
}

/* A temporary file next to path, open for writing; *tmp (hy__free) its name. */
static hy_status tmp_open(const char *path, char **tmp, int *fd) {
    size_t n = strlen(path);
    char *t = hy__malloc(n + 16);
    if (!t) return hy__error(HY_ERR_NOMEM, "out of memory");
    snprintf(t, n + 16, "%s.tmp-XXXXXX", path);
    int f = mkstemp(t);
    if (f < 0) {
        hy_status st = hy__error(HY_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        hy__free(t);
        return st;
    }
    (void)fchmod(f, 0644);
    *tmp = t;
    *fd = f;
    return HY_OK;
}

/* fsync + close fd, then put tmp at path (link: never over an existing file, unless overwrite). */
static hy_status tmp_commit(const char *path, char *tmp, int fd, hy_status st, int overwrite) {
    if (!st && fsync(fd) != 0) st = hy__error(HY_ERR_IO, "%s: fsync: %s", path, strerror(errno));
    if (close(fd) != 0 && !st) st = hy__error(HY_ERR_IO, "%s: close: %s", path, strerror(errno));
    if (!st) {
        if (overwrite) {
            if (rename(tmp, path) != 0) st = hy__error(HY_ERR_IO, "%s: rename: %s", path, strerror(errno));
        } else if (link(tmp, path) != 0) {
            int e = errno;
            if (e == EEXIST)
                st = hy__error(HY_ERR_IO, "%s exists; not overwritten", path);
            else if (e == EPERM || e == ENOTSUP || e == EXDEV) { /* no hard links here */
                struct stat sb;
                if (lstat(path, &sb) == 0) st = hy__error(HY_ERR_IO, "%s exists; not overwritten", path);
                else if (rename(tmp, path) != 0) st = hy__error(HY_ERR_IO, "%s: rename: %s", path, strerror(errno));
            } else {
                st = hy__error(HY_ERR_IO, "%s: %s", path, strerror(e));
            }
        }
    }
    unlink(tmp); /* after link: the temporary name; after rename: already gone */
    hy__free(tmp);
    return st;
}

hy_status hy__write_file(const char *path, const hy__wpart *parts, size_t n, int overwrite) {
    char *tmp = NULL;
    int fd = -1;
    hy_status st = tmp_open(path, &tmp, &fd);
    if (st) return st;
    for (size_t i = 0; i < n && !st; i++) st = write_all(fd, parts[i].data, parts[i].len, path);
    return tmp_commit(path, tmp, fd, st, overwrite);
}

// --- zip ------------------------------------------------------------------------------------

#define ARCHIVE "archive"
#define ALIGN 64

typedef struct zrec {
    char name[64];
    uint32_t crc;
    uint64_t size, offset;  /* offset of the local header */
} zrec;

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct zout {
    int fd;
    uint64_t pos;
    const char *path;
} zout;

static hy_status zput(zout *z, const void *d, size_t n) {
    z->pos += n;
    return write_all(z->fd, d, n, z->path);
}

static uint32_t crc_of(const uint8_t *d, uint64_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, d, k);
        d += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* One stored record: local header with an "FB" extra field padding the data to ALIGN. */
static hy_status zrecord(zout *z, zrec *r, const char *name, const void *data, uint64_t size) {
    if (size >= 0xffffffffu || z->pos >= 0xffffffffu)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: over 4 GiB (zip64 is not written)", z->path);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->crc = crc_of(data, size);
    r->size = size;
    r->offset = z->pos;
    size_t nl = strlen(name);
    uint64_t start = z->pos + 30 + nl + 4;
    size_t pad = (size_t)((ALIGN - start % ALIGN) % ALIGN);
    uint8_t h[30 + 64 + 4 + ALIGN];
    memset(h, 0, sizeof h);
    put32(h, 0x04034b50);
    put16(h + 4, 20);  /* version needed */
    put16(h + 8, 0);   /* stored */
    put16(h + 12, 0x21); /* 1980-01-01 00:00 as torch writes (no timestamps) */
    put32(h + 14, r->crc);
    put32(h + 18, (uint32_t)size);
    put32(h + 22, (uint32_t)size);
    put16(h + 26, (unsigned)nl);
    put16(h + 28, (unsigned)(4 + pad));
    memcpy(h + 30, name, nl);
    put16(h + 30 + nl, 0x4246); /* "FB" */
    put16(h + 30 + nl + 2, (unsigned)pad);
    memset(h + 30 + nl + 4, 'Z', pad);
    hy_status st = zput(z, h, 30 + nl + 4 + pad);
    return st ? st : zput(z, data, size);
}

hy_status hy__pt_write(const char *path, const hy__pkw *w, const hy__wtensor *tensors, size_t n, int overwrite) {
    if (w->st) return w->st;
    size_t nrec = n + 3;
    zrec *recs = hy__calloc(nrec, sizeof *recs);
    if (!recs) return hy__error(HY_ERR_NOMEM, "out of memory");
    char *tmp = NULL;
    zout z = {.fd = -1, .path = path};
    hy_status st = tmp_open(path, &tmp, &z.fd);
    if (st) {
        hy__free(recs);
        return st;
    }
    size_t k = 0;
    st = zrecord(&z, &recs[k++], ARCHIVE "/data.pkl", w->buf, w->len);
    if (!st) st = zrecord(&z, &recs[k++], ARCHIVE "/byteorder", "little", 6);
    for (size_t i = 0; i < n && !st; i++) {
        char name[48];
        snprintf(name, sizeof name, ARCHIVE "/data/%zu", i);
        st = zrecord(&z, &recs[k++], name, tensors[i].data, (uint64_t)tensors[i].numel * hy_dtype_size(tensors[i].dtype));
    }
    if (!st) st = zrecord(&z, &recs[k++], ARCHIVE "/version", "3\n", 2);
    uint64_t cd = z.pos;
    for (size_t i = 0; i < k && !st; i++) {
        const zrec *r = &recs[i];
        size_t nl = strlen(r->name);
        uint8_t h[46 + 64];
        memset(h, 0, sizeof h);
        put32(h, 0x02014b50);
        put16(h + 4, 20);
        put16(h + 6, 20);
        put16(h + 12, 0);
        put16(h + 14, 0x21);
        put32(h + 16, r->crc);
        put32(h + 20, (uint32_t)r->size);
        put32(h + 24, (uint32_t)r->size);
        put16(h + 28, (unsigned)nl);
        put32(h + 42, (uint32_t)r->offset);
        memcpy(h + 46, r->name, nl);
        st = zput(&z, h, 46 + nl);
    }
    if (!st && z.pos >= 0xffffffffu) st = hy__error(HY_ERR_UNSUPPORTED, "%s: over 4 GiB (zip64 is not written)", path);
    if (!st) {
        uint8_t e[22];
        memset(e, 0, sizeof e);
        put32(e, 0x06054b50);
        put16(e + 8, (unsigned)k);
        put16(e + 10, (unsigned)k);
        put32(e + 12, (uint32_t)(z.pos - cd));
        put32(e + 16, (uint32_t)cd);
        if (k > 0xffff) st = hy__error(HY_ERR_UNSUPPORTED, "%s: %zu records (zip64 is not written)", path, k);
        else st = zput(&z, e, sizeof e);
    }
    hy__free(recs);
    return tmp_commit(path, tmp, z.fd, st, overwrite);
}
