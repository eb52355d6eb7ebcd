/* Safe pickle reader: builds a plain value tree and NEVER executes anything.
 *
 * Protocols 0-5 (the binary opcodes torch.save uses, plus the simple text ones). Globals are
 * checked against an ALLOW-list of exact (module, name) pairs (hy__pkl_global_role): any
 * other global makes the load fail with HY_ERR_UNSAFE naming it, and so does an allowed
 * global used in a way its role does not permit (e.g. a module class called with
 * arguments, BUILD on a class, APPEND/SETITEM on an object). Only these callables exist:
 *   collections.OrderedDict                        -> HY_PKL_DICT
 *   builtins.set / frozenset                       -> HY_PKL_SET
 *   _codecs.encode(str, 'latin1')                  -> HY_PKL_BYTES
 *   torch.Size                                     -> HY_PKL_TUPLE
 *   torch._utils._rebuild_tensor(_v2)              -> HY_PKL_TENSOR
 *   torch._utils._rebuild_parameter(_with_state)   -> the tensor (is_parameter = true)
 *   torch._tensor._rebuild_from_type_v2            -> applies its (rebuild) function
 *   copyreg.__newobj__(cls) / _reconstructor(cls, object, None) -> as NEWOBJ
 *   persistent id ('storage', torch.XStorage, key, location, numel[, None]) -> HY_PKL_STORAGE
 * Classes with the OPAQUE role (Ultralytics / torch.nn / YOLOv5 modules), created as
 * cls.__new__(cls) would (NEWOBJ, copyreg; REDUCE only for IterableSimpleNamespace()),
 * become HY_PKL_OBJECT values recording the class and the BUILD state (a dict holding no
 * hooks, method overrides or globals).
 * The result is what torch.load(weights_only=True) accepts, restricted further: a file
 * this reader accepts makes PyTorch run no code but the allowed classes' __new__ /
 * __setstate__.
 *
 * All values live in an arena (hy__pkl_arena) freed at once; the tree may share nodes (memo)
 * and may even be cyclic, so walkers must bound their depth.
 *
 *   hy__pkl_arena *a;  hy__pkl_value *root;
 *   hy__pkl_arena_create(&a);
 *   if (hy__pkl_load(a, buf, len, "x.pkl", NULL, &root) == HY_OK)
 *       v = hy__pkl_dict_get(root, "model");
 *   hy__pkl_arena_free(a);
 */
#ifndef HY_IO_PICKLE_H
#define HY_IO_PICKLE_H

#include "core/core.h"

#define HY_PKL_MAX_DIMS 8

typedef enum hy__pkl_kind {
    HY_PKL_NONE,
    HY_PKL_BOOL,
    HY_PKL_INT,    /* fits int64 */
    HY_PKL_BIGINT, /* LONG1/LONG4 wider than 64 bits: str holds the little-endian two's complement
                    */
    HY_PKL_FLOAT,
    HY_PKL_STR,   /* UTF-8 as stored, NUL-terminated */
    HY_PKL_BYTES, /* NUL-terminated for convenience */
    HY_PKL_TUPLE,
    HY_PKL_LIST,
    HY_PKL_SET,    /* set and frozenset */
    HY_PKL_DICT,   /* insertion-ordered (dict and OrderedDict) */
    HY_PKL_GLOBAL, /* a class/function reference: module + name */
    HY_PKL_OBJECT, /* opaque instance of a class we do not interpret */
    HY_PKL_STORAGE,
    HY_PKL_TENSOR,
    HY_PKL_KIND_COUNT
} hy__pkl_kind;

typedef struct hy__pkl_value hy__pkl_value;
typedef struct hy__pkl_arena hy__pkl_arena;

/* A torch storage named by a persistent id. Data is found by the container reader. */
typedef struct hy__pkl_storage {
    const char *key;       /* record key: zip "<prefix>/data/<key>", or the legacy storage id */
    const char *type_name; /* "HalfStorage", ... */
    const char *location;  /* "cpu", "cuda:0", ... */
    hy_dtype dtype;        /* HY_DTYPE_COUNT for torch types we do not convert (e.g. complex) */
    size_t elem_size;      /* bytes per element (known for every torch storage type) */
    uint64_t numel;        /* elements, as the persistent id says */
    /* Set by the container reader (io/pt.c) once the bytes are located. */
    const uint8_t *data;     /* NULL for a deflated zip entry: read ranges of `entry` */
    size_t nbytes;
    int resolved;
    const void *entry;       /* the deflated hy__zip_entry, or NULL */
    bool int_key;            /* the persistent id gave the key as an int */
} hy__pkl_storage;

typedef struct hy__pkl_tensor {
    hy__pkl_value *storage; /* HY_PKL_STORAGE */
    int64_t offset;         /* in elements */
    int ndim;
    int64_t shape[HY_PKL_MAX_DIMS];
    int64_t stride[HY_PKL_MAX_DIMS]; /* in elements */
    bool requires_grad;
    bool is_parameter;
} hy__pkl_tensor;

struct hy__pkl_value {
    hy__pkl_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *data;
            size_t len;
        } str; /* STR, BYTES, BIGINT */
        struct {
            hy__pkl_value **items;
            size_t n, cap;
        } seq; /* TUPLE, LIST, SET */
        struct {
            hy__pkl_value **keys, **vals;
            size_t n, cap;
            uint32_t *index; /* open-addressing hash of entry index + 1 (0 = empty) */
            size_t index_cap;
            bool ordered; /* collections.OrderedDict (may take BUILD state), else a dict */
        } dict;
        struct {
            const char *module, *name;
        } global;
        struct {
            const char *module, *name;
            hy__pkl_value *args;      /* TUPLE (REDUCE/NEWOBJ arguments) */
            hy__pkl_value *kwargs;    /* DICT for NEWOBJ_EX, else NULL */
            hy__pkl_value *state;     /* BUILD state (usually a DICT), or NULL */
            hy__pkl_value *items;     /* always NULL: APPEND(S) on objects is refused */
            hy__pkl_value *dictitems; /* always NULL: SETITEM(S) on objects is refused */
        } obj;
        hy__pkl_storage *storage;
        hy__pkl_tensor *tensor;
    } u;
};

/* Creates an empty arena. */
hy_status hy__pkl_arena_create(hy__pkl_arena **out);
/* The container the pickles come from: persistent ids are checked as PyTorch's loader for
 * that format reads them (zip: ('storage', type, key, location, numel) only; legacy: 6-item
 * storage ids and ('module', cls, '', '') ids). HY_PKL_FMT_ANY (the default) accepts both. */
enum { HY_PKL_FMT_ANY, HY_PKL_FMT_ZIP, HY_PKL_FMT_LEGACY };
void hy__pkl_arena_set_format(hy__pkl_arena *a, int fmt);
/* Frees every value ever loaded into the arena; NULL is a no-op. */
void hy__pkl_arena_free(hy__pkl_arena *a);

/* Unpickles one pickle starting at buf[0] (trailing bytes after STOP are left alone).
 * The result lives in arena `a`; buf is not retained. *consumed (may be NULL) receives the
 * number of bytes up to and including STOP. Errors (message names `what` and the byte
 * offset): HY_ERR_FORMAT (truncated, malformed, unknown opcode), HY_ERR_UNSAFE (a
 * code-running global), HY_ERR_UNSUPPORTED (e.g. out-of-band buffers), HY_ERR_NOMEM.
 * Storage persistent ids with the same key map to one HY_PKL_STORAGE value per arena. */
hy_status hy__pkl_load(hy__pkl_arena *a, const uint8_t *buf, size_t len, const char *what,
                       size_t *consumed, hy__pkl_value **out);

/* Storage values created in this arena so far, in first-seen order. */
size_t hy__pkl_storage_count(const hy__pkl_arena *a);
hy__pkl_value *hy__pkl_storage_at(const hy__pkl_arena *a, size_t i);
/* The storage with this key, or NULL. */
hy__pkl_value *hy__pkl_storage_find(const hy__pkl_arena *a, const char *key);

/* Dict lookups (NULL when d is not a DICT or the key is absent). */
hy__pkl_value *hy__pkl_dict_get(const hy__pkl_value *d, const char *key);
hy__pkl_value *hy__pkl_dict_get_int(const hy__pkl_value *d, int64_t key);

const char *hy__pkl_kind_name(hy__pkl_kind k); /* "dict", "tensor", ... */
/* True when v is a STR equal to s. */
bool hy__pkl_is_str(const hy__pkl_value *v, const char *s);
/* True when v is a GLOBAL or an OBJECT whose class is module.name. */
bool hy__pkl_is_class(const hy__pkl_value *v, const char *module, const char *name);
/* Maps a torch dtype global (module "torch", name "float16", "half", ...) to hy_dtype. */
bool hy__pkl_torch_dtype(const char *module, const char *name, hy_dtype *out);
/* Maps a torch storage class name ("HalfStorage") to dtype (HY_DTYPE_COUNT when not
 * convertible) and element size; false when it is not a storage class. */
bool hy__pkl_storage_type(const char *name, hy_dtype *dtype, size_t *elem_size);
/* Roles of an allowed global (bit set); 0 = not in the allow-list (refused). */
#define HY_PKL_ROLE_CALLABLE 1u /* may be REDUCE'd: interpreted, never executed */
#define HY_PKL_ROLE_TYPE 2u     /* operand only: storage classes, dtypes, base types */
#define HY_PKL_ROLE_OPAQUE 4u   /* class instantiated without arguments, then BUILD */
/* The allow-list entry of module.name (module after Python 2 renames, e.g. __builtin__ ->
 * builtins): its roles, or 0 when the global is not allowed. */
unsigned hy__pkl_global_role(const char *module, const char *name);

#endif
