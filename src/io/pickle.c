/* Safe pickle reader: a small stack machine that builds values and never calls anything. */
#include "io/pickle.h"

#include "core/arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- arena ----------------------------------------------------------------------------------

#define SMALL_INT_MIN (-8)
#define SMALL_INT_MAX 1023

/* The pickle values' arena (core/arena.h) plus what every load into it shares. */
struct hy__pkl_arena {
    hy__arena mem;              /* its limit is raised per load from the pickle size */
    hy__pkl_value *storages;    /* LIST of STORAGE values, first-seen order */
    hy__pkl_value *storage_map; /* DICT key STR -> STORAGE */
    int format;                 /* HY_PKL_FMT_*: how persistent ids are read */
    /* Immutable singletons shared by every load. */
    hy__pkl_value none, true_v, false_v, empty_tuple;
    hy__pkl_value *small_ints[SMALL_INT_MAX - SMALL_INT_MIN + 1];
};

static void *arena_alloc(hy__pkl_arena *a, size_t n) { return hy__arena_alloc(&a->mem, n, 16); }

static void *arena_zalloc(hy__pkl_arena *a, size_t n) { return hy__arena_zalloc(&a->mem, n, 16); }

hy_status hy__pkl_arena_create(hy__pkl_arena **out) {
    hy__pkl_arena *a = hy__calloc(1, sizeof *a);
    if (!a) return hy__error(HY_ERR_NOMEM, "pickle: out of memory");
    hy__arena_init(&a->mem, (size_t)64 << 20);
    a->none.kind = HY_PKL_NONE;
    a->true_v.kind = HY_PKL_BOOL;
    a->true_v.u.b = true;
    a->false_v.kind = HY_PKL_BOOL;
    a->empty_tuple.kind = HY_PKL_TUPLE;
    a->storages = arena_zalloc(a, sizeof(hy__pkl_value));
    a->storage_map = arena_zalloc(a, sizeof(hy__pkl_value));
    if (!a->storages || !a->storage_map) {
        hy__pkl_arena_free(a);
        return hy__error(HY_ERR_NOMEM, "pickle: out of memory");
    }
    a->storages->kind = HY_PKL_LIST;
    a->storage_map->kind = HY_PKL_DICT;
    *out = a;
    return HY_OK;
}

void hy__pkl_arena_set_format(hy__pkl_arena *a, int fmt) {
    if (a) a->format = fmt;
}

void hy__pkl_arena_free(hy__pkl_arena *a) {
    if (!a) return;
    hy__arena_deinit(&a->mem);
    hy__free(a);
}

// --- value constructors ---------------------------------------------------------------------

static hy__pkl_value *new_value(hy__pkl_arena *a, hy__pkl_kind kind) {
    hy__pkl_value *v = arena_zalloc(a, sizeof *v);
    if (v) v->kind = kind;
    return v;
}

static char *arena_strndup(hy__pkl_arena *a, const void *s, size_t n) {
    return hy__arena_strndup(&a->mem, s, n);
}

static hy__pkl_value *new_bytes(hy__pkl_arena *a, hy__pkl_kind kind, const void *p, size_t n) {
    hy__pkl_value *v = new_value(a, kind);
    if (!v) return NULL;
    char *d = arena_strndup(a, p, n);
    if (!d) return NULL;
    v->u.str.data = d;
    v->u.str.len = n;
    return v;
}

static hy__pkl_value *new_int(hy__pkl_arena *a, int64_t i) {
    if (i >= SMALL_INT_MIN && i <= SMALL_INT_MAX) {
        hy__pkl_value **slot = &a->small_ints[i - SMALL_INT_MIN];
        if (!*slot && (*slot = new_value(a, HY_PKL_INT))) (*slot)->u.i = i;
        return *slot;
    }
    hy__pkl_value *v = new_value(a, HY_PKL_INT);
    if (v) v->u.i = i;
    return v;
}

/* TUPLE/LIST/SET holding a copy of items[0, n). */
static hy__pkl_value *new_seq(hy__pkl_arena *a, hy__pkl_kind kind, hy__pkl_value *const *items,
                              size_t n) {
    if (kind == HY_PKL_TUPLE && n == 0) return &a->empty_tuple;
    hy__pkl_value *v = new_value(a, kind);
    if (!v) return NULL;
    if (n) {
        if (n > SIZE_MAX / sizeof *items) return NULL;
        v->u.seq.items = arena_alloc(a, n * sizeof *items);
        if (!v->u.seq.items) return NULL;
        memcpy(v->u.seq.items, items, n * sizeof *items);
    }
    v->u.seq.n = v->u.seq.cap = n;
    return v;
}

static bool seq_push(hy__pkl_arena *a, hy__pkl_value *s, hy__pkl_value *item) {
    if (s->u.seq.n == s->u.seq.cap) {
        size_t cap = s->u.seq.cap ? s->u.seq.cap * 2 : 8;
        hy__pkl_value **items = arena_alloc(a, cap * sizeof *items);
        if (!items) return false;
        if (s->u.seq.n) memcpy(items, s->u.seq.items, s->u.seq.n * sizeof *items);
        s->u.seq.items = items;
        s->u.seq.cap = cap;
    }
    s->u.seq.items[s->u.seq.n++] = item;
    return true;
}

// --- dict (insertion-ordered, hash index for O(1) key lookup) ------------------------------

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* Python equality for the key kinds that matter (str, bytes, int/bool, None); other keys
 * compare by identity, which is what memoized (shared) keys need. */
static uint64_t key_hash(const hy__pkl_value *k) {
    switch (k->kind) {
    case HY_PKL_STR: return fnv1a(k->u.str.data, k->u.str.len);
    case HY_PKL_BYTES: return fnv1a(k->u.str.data, k->u.str.len) ^ 0x5bd1e995u;
    case HY_PKL_INT: return mix64((uint64_t)k->u.i);
    case HY_PKL_BOOL: return mix64((uint64_t)k->u.b);
    case HY_PKL_NONE: return 0x9e3779b97f4a7c15ull;
    default: return mix64((uint64_t)(uintptr_t)k);
    }
}

static bool key_eq(const hy__pkl_value *a, const hy__pkl_value *b) {
    if (a == b) return true;
    bool ai = a->kind == HY_PKL_INT || a->kind == HY_PKL_BOOL,
         bi = b->kind == HY_PKL_INT || b->kind == HY_PKL_BOOL;
    if (ai && bi) {
        int64_t x = a->kind == HY_PKL_INT ? a->u.i : a->u.b,
                y = b->kind == HY_PKL_INT ? b->u.i : b->u.b;
        return x == y;
    }
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case HY_PKL_STR:
    case HY_PKL_BYTES:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.data, b->u.str.data, a->u.str.len) == 0;
    case HY_PKL_NONE: return true;
    default: return false;
    }
}

#define DICT_INDEX_MIN 8 /* below this many entries a linear scan is faster */

static bool dict_reindex(hy__pkl_arena *a, hy__pkl_value *d) {
    size_t cap = 16;
    while (cap < d->u.dict.cap * 2) cap *= 2;
    uint32_t *idx = arena_zalloc(a, cap * sizeof *idx);
    if (!idx) return false;
    for (size_t i = 0; i < d->u.dict.n; i++) {
        size_t h = (size_t)key_hash(d->u.dict.keys[i]) & (cap - 1);
        while (idx[h]) h = (h + 1) & (cap - 1);
        idx[h] = (uint32_t)(i + 1);
    }
    d->u.dict.index = idx;
    d->u.dict.index_cap = cap;
    return true;
}

/* Index of key in d, or SIZE_MAX. */
static size_t dict_find(const hy__pkl_value *d, const hy__pkl_value *key) {
    if (!d->u.dict.index) {
        for (size_t i = 0; i < d->u.dict.n; i++)
            if (key_eq(d->u.dict.keys[i], key)) return i;
        return SIZE_MAX;
    }
    size_t mask = d->u.dict.index_cap - 1, h = (size_t)key_hash(key) & mask;
    for (uint32_t e; (e = d->u.dict.index[h]) != 0; h = (h + 1) & mask)
        if (key_eq(d->u.dict.keys[e - 1], key)) return e - 1;
    return SIZE_MAX;
}

/* d[key] = val (Python semantics: an existing key keeps its position). */
static bool dict_set(hy__pkl_arena *a, hy__pkl_value *d, hy__pkl_value *key, hy__pkl_value *val) {
    size_t i = dict_find(d, key);
    if (i != SIZE_MAX) {
        d->u.dict.vals[i] = val;
        return true;
    }
    if (d->u.dict.n >= UINT32_MAX - 1) return false;
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        hy__pkl_value **keys = arena_alloc(a, cap * sizeof *keys),
                      **vals = arena_alloc(a, cap * sizeof *vals);
        if (!keys || !vals) return false;
        if (d->u.dict.n) {
            memcpy(keys, d->u.dict.keys, d->u.dict.n * sizeof *keys);
            memcpy(vals, d->u.dict.vals, d->u.dict.n * sizeof *vals);
        }
        d->u.dict.keys = keys;
        d->u.dict.vals = vals;
        d->u.dict.cap = cap;
        d->u.dict.index = NULL;
    }
    size_t n = d->u.dict.n++;
    d->u.dict.keys[n] = key;
    d->u.dict.vals[n] = val;
    if (d->u.dict.n >= DICT_INDEX_MIN) {
        if (!d->u.dict.index) return dict_reindex(a, d);
        size_t mask = d->u.dict.index_cap - 1, h = (size_t)key_hash(key) & mask;
        while (d->u.dict.index[h]) h = (h + 1) & mask;
        d->u.dict.index[h] = (uint32_t)(n + 1);
    }
    return true;
}

hy__pkl_value *hy__pkl_dict_get(const hy__pkl_value *d, const char *key) {
    if (!d || d->kind != HY_PKL_DICT || !key) return NULL;
    hy__pkl_value k = {.kind = HY_PKL_STR};
    k.u.str.data = key;
    k.u.str.len = strlen(key);
    size_t i = dict_find(d, &k);
    return i == SIZE_MAX ? NULL : d->u.dict.vals[i];
}

hy__pkl_value *hy__pkl_dict_get_int(const hy__pkl_value *d, int64_t key) {
    if (!d || d->kind != HY_PKL_DICT) return NULL;
    hy__pkl_value k = {.kind = HY_PKL_INT};
    k.u.i = key;
    size_t i = dict_find(d, &k);
    return i == SIZE_MAX ? NULL : d->u.dict.vals[i];
}

// --- names, allow-list, torch types -----------------------------------------------------------

const char *hy__pkl_kind_name(hy__pkl_kind k) {
    static const char *names[HY_PKL_KIND_COUNT] = {
        "None", "bool", "int",  "int (big)", "float",  "str",     "bytes", "tuple",
        "list", "set",  "dict", "global",    "object", "storage", "tensor"};
    return (unsigned)k < HY_PKL_KIND_COUNT ? names[k] : "?";
}

bool hy__pkl_is_str(const hy__pkl_value *v, const char *s) {
    return v && v->kind == HY_PKL_STR && strlen(s) == v->u.str.len &&
           memcmp(v->u.str.data, s, v->u.str.len) == 0;
}

bool hy__pkl_is_class(const hy__pkl_value *v, const char *module, const char *name) {
    if (!v) return false;
    if (v->kind == HY_PKL_GLOBAL)
        return !strcmp(v->u.global.module, module) && !strcmp(v->u.global.name, name);
    if (v->kind == HY_PKL_OBJECT)
        return !strcmp(v->u.obj.module, module) && !strcmp(v->u.obj.name, name);
    return false;
}

/* The allow-list: every global a checkpoint may name, as exact (module, name) pairs, each
 * with the uses it permits. Anything else is refused when the GLOBAL / STACK_GLOBAL / INST
 * opcode names it, before any value is built. Derived from the globals of every real
 * checkpoint in the shared assets (Ultralytics YOLOv8 and YOLOv5, torch.save state_dicts)
 * and torch.load(weights_only=True)'s _get_allowed_globals. No wildcards: a whole module
 * (e.g. ultralytics.*) would admit functions that run code (check_requirements runs pip).
 *   HY_PKL_ROLE_CALLABLE  may be called by REDUCE/INST/OBJ; interpreted here, never run.
 *   HY_PKL_ROLE_TYPE      an operand only (storage classes, dtypes, base types).
 *   HY_PKL_ROLE_OPAQUE    a class that may only be created the way cls.__new__(cls) does it
 *                         (NEWOBJ with (), copyreg helpers, INST/OBJ without arguments;
 *                         never REDUCE, which runs __init__) and then BUILD-filled: what
 *                         torch.save writes for nn.Module objects. The structure walk reads
 *                         their state; nothing of theirs is ever called. */
#define C HY_PKL_ROLE_CALLABLE
#define T HY_PKL_ROLE_TYPE
#define O HY_PKL_ROLE_OPAQUE
static const struct {
    const char *module, *name;
    unsigned role;
} allowed[] = {
    /* containers and helpers torch.save / pickle emit for plain data */
    {"collections", "OrderedDict", C},
    {"builtins", "set", C},
    {"builtins", "frozenset", C},
    {"builtins", "object", T}, /* copyreg._reconstructor's base */
    {"_codecs", "encode", C},  /* bytes under protocol 2: encode(str, 'latin1') */
    {"copyreg", "_reconstructor", C},
    {"copyreg", "__newobj__", C},
    /* tensors */
    {"torch", "Size", C},
    {"torch._utils", "_rebuild_tensor", C},
    {"torch._utils", "_rebuild_tensor_v2", C},
    {"torch._utils", "_rebuild_parameter", C},
    {"torch._utils", "_rebuild_parameter_with_state", C},
    {"torch._tensor", "_rebuild_from_type_v2", C},
    {"torch", "Tensor", T},
    {"torch.nn.parameter", "Parameter", T},
    /* storage classes (persistent ids) */
    {"torch", "FloatStorage", T},
    {"torch", "HalfStorage", T},
    {"torch", "BFloat16Storage", T},
    {"torch", "DoubleStorage", T},
    {"torch", "LongStorage", T},
    {"torch", "IntStorage", T},
    {"torch", "ShortStorage", T},
    {"torch", "CharStorage", T},
    {"torch", "ByteStorage", T},
    {"torch", "BoolStorage", T},
    {"torch", "UntypedStorage", T},
    {"torch", "ComplexFloatStorage", T},
    {"torch", "ComplexDoubleStorage", T},
    {"torch.cuda", "FloatStorage", T},
    {"torch.cuda", "HalfStorage", T},
    {"torch.cuda", "BFloat16Storage", T},
    {"torch.cuda", "DoubleStorage", T},
    {"torch.cuda", "LongStorage", T},
    {"torch.cuda", "IntStorage", T},
    {"torch.cuda", "ByteStorage", T},
    {"torch.cuda", "BoolStorage", T},
    /* dtypes (str(torch.float16) == "torch.float16") */
    {"torch", "float16", T},
    {"torch", "float32", T},
    {"torch", "float64", T},
    {"torch", "bfloat16", T},
    {"torch", "int8", T},
    {"torch", "int16", T},
    {"torch", "int32", T},
    {"torch", "int64", T},
    {"torch", "uint8", T},
    {"torch", "bool", T},
    /* torch.nn modules of YOLOv8 / YOLOv5 */
    {"torch.nn.modules.conv", "Conv2d", O},
    {"torch.nn.modules.batchnorm", "BatchNorm2d", O},
    {"torch.nn.modules.activation", "SiLU", O},
    {"torch.nn.modules.container", "Sequential", O},
    {"torch.nn.modules.container", "ModuleList", O},
    {"torch.nn.modules.pooling", "MaxPool2d", O},
    {"torch.nn.modules.upsampling", "Upsample", O},
    /* Ultralytics YOLOv8 (8.0.100+ module layout) */
    {"ultralytics.nn.tasks", "DetectionModel", O},
    {"ultralytics.nn.modules.conv", "Conv", O},
    {"ultralytics.nn.modules.conv", "Concat", O},
    {"ultralytics.nn.modules.block", "C2f", O},
    {"ultralytics.nn.modules.block", "Bottleneck", O},
    {"ultralytics.nn.modules.block", "SPPF", O},
    {"ultralytics.nn.modules.block", "DFL", O},
    {"ultralytics.nn.modules.head", "Detect", O},
    {"ultralytics.utils", "IterableSimpleNamespace", O},
    /* Ultralytics 8.0.0 - 8.0.99: one ultralytics.nn.modules file, ultralytics.yolo.utils */
    {"ultralytics.nn.modules", "Conv", O},
    {"ultralytics.nn.modules", "Concat", O},
    {"ultralytics.nn.modules", "C2f", O},
    {"ultralytics.nn.modules", "Bottleneck", O},
    {"ultralytics.nn.modules", "SPPF", O},
    {"ultralytics.nn.modules", "DFL", O},
    {"ultralytics.nn.modules", "Detect", O},
    {"ultralytics.yolo.utils", "IterableSimpleNamespace", O},
    /* YOLOv5 (recognised so that it can be reported as not YOLOv8) */
    {"models.yolo", "Model", O},
    {"models.yolo", "Detect", O},
    {"models.common", "Conv", O},
    {"models.common", "C3", O},
    {"models.common", "Bottleneck", O},
    {"models.common", "SPPF", O},
    {"models.common", "Concat", O},
};
#undef C
#undef T
#undef O

unsigned hy__pkl_global_role(const char *module, const char *name) {
    if (!module || !name) return 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(allowed); i++)
        if (!strcmp(module, allowed[i].module) && !strcmp(name, allowed[i].name))
            return allowed[i].role;
    return 0;
}

/* Python 2 module names, as pickle's fix_imports maps them (only for protocol < 3;
 * 'exceptions' is mapped by CPython per exception name only, so not here). */
static const char *normalize_module(const char *m) {
    static const char *const map[][2] = {
        {"__builtin__", "builtins"}, {"copy_reg", "copyreg"},    {"cPickle", "pickle"},
        {"commands", "subprocess"},  {"UserDict", "collections"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(map); i++)
        if (!strcmp(m, map[i][0])) return map[i][1];
    return m;
}

bool hy__pkl_storage_type(const char *name, hy_dtype *dtype, size_t *elem_size) {
    static const struct {
        const char *name;
        hy_dtype dtype;
        size_t size;
    } types[] = {
        {"FloatStorage", HY_DTYPE_F32, 4},
        {"HalfStorage", HY_DTYPE_F16, 2},
        {"BFloat16Storage", HY_DTYPE_BF16, 2},
        {"DoubleStorage", HY_DTYPE_F64, 8},
        {"LongStorage", HY_DTYPE_I64, 8},
        {"IntStorage", HY_DTYPE_I32, 4},
        {"CharStorage", HY_DTYPE_I8, 1},
        {"ByteStorage", HY_DTYPE_U8, 1},
        {"BoolStorage", HY_DTYPE_BOOL, 1},
        {"UntypedStorage", HY_DTYPE_U8, 1},
        {"ShortStorage", HY_DTYPE_COUNT, 2},
        {"ComplexFloatStorage", HY_DTYPE_COUNT, 8},
        {"ComplexDoubleStorage", HY_DTYPE_COUNT, 16},
        {"QInt8Storage", HY_DTYPE_COUNT, 1},
        {"QUInt8Storage", HY_DTYPE_COUNT, 1},
        {"QInt32Storage", HY_DTYPE_COUNT, 4},
        {"QUInt4x2Storage", HY_DTYPE_COUNT, 1},
        {"QUInt2x4Storage", HY_DTYPE_COUNT, 1},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(types); i++) {
        if (!strcmp(name, types[i].name)) {
            *dtype = types[i].dtype;
            *elem_size = types[i].size;
            return true;
        }
    }
    return false;
}

bool hy__pkl_torch_dtype(const char *module, const char *name, hy_dtype *out) {
    static const struct {
        const char *name;
        hy_dtype dtype;
    } types[] = {
        {"float32", HY_DTYPE_F32}, {"float", HY_DTYPE_F32},     {"float16", HY_DTYPE_F16},
        {"half", HY_DTYPE_F16},    {"bfloat16", HY_DTYPE_BF16}, {"float64", HY_DTYPE_F64},
        {"double", HY_DTYPE_F64},  {"int64", HY_DTYPE_I64},     {"long", HY_DTYPE_I64},
        {"int32", HY_DTYPE_I32},   {"int", HY_DTYPE_I32},       {"uint8", HY_DTYPE_U8},
        {"int8", HY_DTYPE_I8},     {"bool", HY_DTYPE_BOOL},
    };
    if (strcmp(module, "torch") != 0) return false;
    for (size_t i = 0; i < HY_ARRAY_LEN(types); i++) {
        if (!strcmp(name, types[i].name)) {
            *out = types[i].dtype;
            return true;
        }
    }
    return false;
}

// --- the machine ----------------------------------------------------------------------------

typedef struct vm {
    hy__pkl_arena *a;
    const char *what;
    const uint8_t *start, *p, *end;
    size_t op_off; /* offset of the opcode being executed, for messages */
    hy__pkl_value **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    hy__pkl_value **memo;
    size_t memo_cap, memo_count, memo_limit;
    int proto;        /* the PROTO opcode's value; 0 without one */
    size_t walk_left; /* value visits left for state checks (bounds shared / cyclic state) */
} vm;

static hy_status fail(vm *m, hy_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hy_status fail(vm *m, hy_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hy__error(st, "%s: pickle byte %zu: %s", m->what, m->op_off, msg);
}

static hy_status oom(vm *m) {
    if (m->a->mem.over_limit)
        return fail(m, HY_ERR_FORMAT, "pickle expands to more than %zu MiB of values (malformed?)",
                    m->a->mem.limit >> 20);
    return fail(m, HY_ERR_NOMEM, "out of memory");
}

static hy_status need(vm *m, size_t n) {
    if ((size_t)(m->end - m->p) < n)
        return fail(m, HY_ERR_FORMAT, "truncated (needs %zu more bytes)", n);
    return HY_OK;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static size_t frame_base(const vm *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

static hy_status push(vm *m, hy__pkl_value *v) {
    if (!v) return oom(m);
    if (m->sp == m->stack_cap) {
        size_t cap = m->stack_cap ? m->stack_cap * 2 : 64;
        hy__pkl_value **s = hy__realloc(m->stack, cap * sizeof *s);
        if (!s) return fail(m, HY_ERR_NOMEM, "out of memory (stack)");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return HY_OK;
}

/* Pops within the current mark frame (Python keeps marked items out of reach). */
static hy_status pop(vm *m, hy__pkl_value **v) {
    if (m->sp <= frame_base(m)) return fail(m, HY_ERR_FORMAT, "stack underflow");
    *v = m->stack[--m->sp];
    return HY_OK;
}

static hy_status top(vm *m, hy__pkl_value **v) {
    if (m->sp <= frame_base(m)) return fail(m, HY_ERR_FORMAT, "stack underflow");
    *v = m->stack[m->sp - 1];
    return HY_OK;
}

/* Pops the items above the last MARK: they stay readable at stack[*base, *base + *n) until
 * the next push. */
static hy_status pop_mark(vm *m, size_t *base, size_t *n) {
    if (!m->n_marks) return fail(m, HY_ERR_FORMAT, "no MARK on the stack");
    size_t b = m->marks[--m->n_marks];
    *base = b;
    *n = m->sp - b;
    m->sp = b;
    return HY_OK;
}

static hy_status read_line(vm *m, const char **s, size_t *n) {
    const uint8_t *nl = memchr(m->p, '\n', (size_t)(m->end - m->p));
    if (!nl) return fail(m, HY_ERR_FORMAT, "truncated (unterminated text argument)");
    *s = (const char *)m->p;
    *n = (size_t)(nl - m->p);
    m->p = nl + 1;
    return HY_OK;
}

static hy_status memo_put(vm *m, uint64_t idx, hy__pkl_value *v) {
    if (idx >= m->memo_limit)
        return fail(m, HY_ERR_FORMAT, "memo index %llu too large", (unsigned long long)idx);
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 256;
        while (cap <= idx) cap *= 2;
        hy__pkl_value **mm = hy__realloc(m->memo, cap * sizeof *mm);
        if (!mm) return fail(m, HY_ERR_NOMEM, "out of memory (memo)");
        memset(mm + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *mm);
        m->memo = mm;
        m->memo_cap = cap;
    }
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = v;
    return HY_OK;
}

static hy_status memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, HY_ERR_FORMAT, "memo key %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static bool as_int(const hy__pkl_value *v, int64_t *out) {
    if (!v) return false;
    if (v->kind == HY_PKL_INT)
        *out = v->u.i;
    else if (v->kind == HY_PKL_BOOL)
        *out = v->u.b;
    else
        return false;
    return true;
}

static bool is_seq(const hy__pkl_value *v) {
    return v && (v->kind == HY_PKL_TUPLE || v->kind == HY_PKL_LIST);
}

// --- globals and calls ------------------------------------------------------------------------

/* "module.name" for messages: printable ASCII kept, other bytes as \xNN, long names cut. */
static void quote_global(char *dst, size_t cap, const char *module, const char *name) {
    size_t k = 0;
    for (int part = 0; part < 2; part++) {
        const char *s = part ? name : module;
        if (part && k + 1 < cap) dst[k++] = '.';
        for (; *s && k + 5 < cap; s++) {
            unsigned char c = (unsigned char)*s;
            if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
                dst[k++] = (char)c;
            else
                k += (size_t)snprintf(dst + k, cap - k, "\\x%02x", c);
        }
    }
    if (k + 5 >= cap && cap > 4) memcpy(dst + cap - 4, "...", 3), k = cap - 1;
    dst[k] = 0;
}

static hy_status refuse(vm *m, const char *module, const char *name, const char *why) {
    char q[200];
    quote_global(q, sizeof q, module, name);
    return hy__error(HY_ERR_UNSAFE, "%s: refusing pickle global '%s' (%s)", m->what, q, why);
}

static unsigned role_of(const hy__pkl_value *g) {
    return g->kind == HY_PKL_GLOBAL ? hy__pkl_global_role(g->u.global.module, g->u.global.name)
                                    : 0;
}

static hy_status make_global(vm *m, const char *module, size_t mlen, const char *name,
                             size_t nlen) {
    if (memchr(module, 0, mlen) || memchr(name, 0, nlen) || mlen == 0 || nlen == 0)
        return fail(m, HY_ERR_FORMAT, "malformed global name");
    char *mod = arena_strndup(m->a, module, mlen), *nm = arena_strndup(m->a, name, nlen);
    if (!mod || !nm) return oom(m);
    const char *norm = m->proto < 3 ? normalize_module(mod) : mod;
    if (!hy__pkl_global_role(norm, nm))
        return refuse(m, norm, nm, "not in the allow-list of checkpoint globals");
    hy__pkl_value *g = new_value(m->a, HY_PKL_GLOBAL);
    if (!g) return oom(m);
    g->u.global.module = norm;
    g->u.global.name = nm;
    return push(m, g);
}

static bool global_is(const hy__pkl_value *g, const char *module, const char *name) {
    return g->kind == HY_PKL_GLOBAL && !strcmp(g->u.global.module, module) &&
           !strcmp(g->u.global.name, name);
}

static hy_status new_object(vm *m, const hy__pkl_value *cls, hy__pkl_value *args,
                            hy__pkl_value *kwargs, hy__pkl_value **out) {
    hy__pkl_value *o = new_value(m->a, HY_PKL_OBJECT);
    if (!o) return oom(m);
    o->u.obj.module = cls->u.global.module;
    o->u.obj.name = cls->u.global.name;
    o->u.obj.args = args;
    o->u.obj.kwargs = kwargs;
    *out = o;
    return HY_OK;
}

/* Fills a DICT from an iterable of (key, value) pairs or from another DICT. */
static hy_status dict_update(vm *m, hy__pkl_value *d, const hy__pkl_value *src) {
    if (src->kind == HY_PKL_DICT) {
        for (size_t i = 0; i < src->u.dict.n; i++)
            if (!dict_set(m->a, d, src->u.dict.keys[i], src->u.dict.vals[i])) return oom(m);
        return HY_OK;
    }
    if (!is_seq(src))
        return fail(m, HY_ERR_FORMAT, "dict() argument is a %s", hy__pkl_kind_name(src->kind));
    for (size_t i = 0; i < src->u.seq.n; i++) {
        const hy__pkl_value *kv = src->u.seq.items[i];
        if (!is_seq(kv) || kv->u.seq.n != 2)
            return fail(m, HY_ERR_FORMAT, "dict() item is not a pair");
        if (!dict_set(m->a, d, kv->u.seq.items[0], kv->u.seq.items[1])) return oom(m);
    }
    return HY_OK;
}

static hy_status rebuild_tensor(vm *m, const hy__pkl_value *args, bool v2, hy__pkl_value **out) {
    size_t n = args->u.seq.n;
    if (v2 ? (n < 6 || n > 7) : n != 4)
        return fail(m, HY_ERR_FORMAT, "_rebuild_tensor%s takes %d arguments, got %zu",
                    v2 ? "_v2" : "", v2 ? 6 : 4, n);
    hy__pkl_value *const *a = args->u.seq.items;
    if (a[0]->kind != HY_PKL_STORAGE)
        return fail(m, HY_ERR_FORMAT, "tensor storage argument is a %s, not a storage",
                    hy__pkl_kind_name(a[0]->kind));
    hy__pkl_tensor *t = arena_zalloc(m->a, sizeof *t);
    hy__pkl_value *v = new_value(m->a, HY_PKL_TENSOR);
    if (!t || !v) return oom(m);
    t->storage = a[0];
    if (!as_int(a[1], &t->offset) || t->offset < 0)
        return fail(m, HY_ERR_FORMAT, "tensor storage offset is invalid");
    if (!is_seq(a[2]) || !is_seq(a[3]) || a[2]->u.seq.n != a[3]->u.seq.n)
        return fail(m, HY_ERR_FORMAT, "tensor size/stride are not tuples of equal length");
    if (a[2]->u.seq.n > HY_PKL_MAX_DIMS)
        return fail(m, HY_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d supported)",
                    a[2]->u.seq.n, HY_PKL_MAX_DIMS);
    t->ndim = (int)a[2]->u.seq.n;
    for (int i = 0; i < t->ndim; i++) {
        if (!as_int(a[2]->u.seq.items[i], &t->shape[i]) || t->shape[i] < 0 ||
            !as_int(a[3]->u.seq.items[i], &t->stride[i]) || t->stride[i] < 0)
            return fail(m, HY_ERR_FORMAT, "tensor size/stride %d is not a non-negative int", i);
    }
    if (v2) {
        /* backward_hooks: PyTorch installs them on the tensor. metadata: flags applied by
         * torch._utils.set_tensor_metadata (e.g. conj / neg bits change what is read). */
        if (a[5]->kind != HY_PKL_NONE && !(a[5]->kind == HY_PKL_DICT && a[5]->u.dict.n == 0))
            return fail(m, HY_ERR_UNSAFE,
                        "_rebuild_tensor_v2: backward hooks must be empty (PyTorch would "
                        "install them)");
        if (n == 7 && a[6]->kind != HY_PKL_NONE) {
            if (a[6]->kind != HY_PKL_DICT)
                return fail(m, HY_ERR_FORMAT, "_rebuild_tensor_v2: metadata is not a dict");
            for (size_t i = 0; i < a[6]->u.dict.n; i++)
                if (a[6]->u.dict.keys[i]->kind != HY_PKL_STR ||
                    a[6]->u.dict.vals[i]->kind != HY_PKL_BOOL || a[6]->u.dict.vals[i]->u.b)
                    return fail(m, HY_ERR_UNSUPPORTED,
                                "_rebuild_tensor_v2: tensor metadata other than false flags "
                                "(PyTorch would read the data differently)");
        }
        if (a[4]->kind == HY_PKL_BOOL) t->requires_grad = a[4]->u.b;
    }
    v->u.tensor = t;
    *out = v;
    return HY_OK;
}

static hy_status newobj(vm *m, hy__pkl_value *cls, hy__pkl_value *args, hy__pkl_value *kwargs,
                        hy__pkl_value **out);

/* _codecs.encode(s, 'latin1'): how protocol 2 stores bytes. s is UTF-8 here; every code
 * point must fit a byte. */
static hy_status codecs_encode(vm *m, hy__pkl_value *const *a, size_t n, hy__pkl_value **out) {
    if (n != 2 || a[0]->kind != HY_PKL_STR ||
        !(hy__pkl_is_str(a[1], "latin1") || hy__pkl_is_str(a[1], "latin-1")))
        return fail(m, HY_ERR_FORMAT, "_codecs.encode is only accepted as encode(str, 'latin1')");
    const uint8_t *s = (const uint8_t *)a[0]->u.str.data;
    size_t len = a[0]->u.str.len, k = 0;
    char *d = arena_alloc(m->a, len + 1);
    if (!d) return oom(m);
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80) {
            d[k++] = (char)s[i];
        } else if ((s[i] & 0xfe) == 0xc2 && i + 1 < len && (s[i + 1] & 0xc0) == 0x80) {
            d[k++] = (char)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3f)); /* U+0080..U+00FF */
            i++;
        } else {
            return fail(m, HY_ERR_FORMAT, "_codecs.encode: character outside latin-1");
        }
    }
    d[k] = 0;
    hy__pkl_value *v = new_value(m->a, HY_PKL_BYTES);
    if (!v) return oom(m);
    v->u.str.data = d;
    v->u.str.len = k;
    *out = v;
    return HY_OK;
}

static bool is_tensor_rebuild(const hy__pkl_value *g) {
    return global_is(g, "torch._utils", "_rebuild_tensor_v2") ||
           global_is(g, "torch._utils", "_rebuild_tensor") ||
           global_is(g, "torch._utils", "_rebuild_parameter") ||
           global_is(g, "torch._utils", "_rebuild_parameter_with_state");
}

static bool is_namespace(const hy__pkl_value *g) {
    return global_is(g, "ultralytics.utils", "IterableSimpleNamespace") ||
           global_is(g, "ultralytics.yolo.utils", "IterableSimpleNamespace");
}

/* None or an empty dict / list / tuple / set. */
static bool is_empty(const hy__pkl_value *v) {
    switch (v->kind) {
    case HY_PKL_NONE: return true;
    case HY_PKL_DICT: return v->u.dict.n == 0;
    case HY_PKL_TUPLE:
    case HY_PKL_LIST:
    case HY_PKL_SET: return v->u.seq.n == 0;
    default: return false;
    }
}

/* What REDUCE(callable, args) evaluates to (inst: INST / OBJ, which create an instance with
 * cls.__new__(cls) when there are no arguments). Only allow-listed callables are
 * interpreted; OPAQUE classes are instantiated only the way cls.__new__ does it (REDUCE
 * would run cls.__init__: DetectionModel() reads a yaml from the working directory), except
 * IterableSimpleNamespace(), whose __init__ without arguments does nothing. Nothing is ever
 * executed. */
static hy_status call(vm *m, hy__pkl_value *fn, hy__pkl_value *args, int depth, bool inst,
                      hy__pkl_value **out) {
    if (fn->kind != HY_PKL_GLOBAL)
        return fail(m, HY_ERR_FORMAT, "REDUCE callable is a %s, not a global",
                    hy__pkl_kind_name(fn->kind));
    if (args->kind != HY_PKL_TUPLE)
        return fail(m, HY_ERR_FORMAT, "REDUCE arguments are a %s, not a tuple",
                    hy__pkl_kind_name(args->kind));
    const char *mod = fn->u.global.module, *name = fn->u.global.name;
    size_t n = args->u.seq.n;
    hy__pkl_value *const *a = args->u.seq.items;
    unsigned role = role_of(fn);
    if (!(role & HY_PKL_ROLE_CALLABLE)) {
        if (!(role & HY_PKL_ROLE_OPAQUE))
            return refuse(m, mod, name, "called, but it is not an allowed callable");
        if (n) /* e.g. an old DetectionModel(cfg) evaluates strings of cfg */
            return refuse(m, mod, name,
                          "a class called with arguments; only instantiation without "
                          "arguments is allowed");
        if (!inst && !is_namespace(fn))
            return refuse(m, mod, name,
                          "a class called by REDUCE would run its __init__; only NEWOBJ / "
                          "copyreg instantiation (cls.__new__) is allowed");
        return new_object(m, fn, args, NULL, out);
    }

    if (global_is(fn, "collections", "OrderedDict")) {
        hy__pkl_value *d = new_value(m->a, HY_PKL_DICT);
        if (!d) return oom(m);
        d->u.dict.ordered = true;
        if (n > 1) return fail(m, HY_ERR_FORMAT, "%s.%s() takes at most 1 argument", mod, name);
        if (n == 1) {
            hy_status st = dict_update(m, d, a[0]);
            if (st) return st;
        }
        *out = d;
        return HY_OK;
    }
    if (global_is(fn, "builtins", "set") || global_is(fn, "builtins", "frozenset")) {
        if (n > 1) return fail(m, HY_ERR_FORMAT, "%s() takes at most 1 argument", name);
        if (n == 1 && !is_seq(a[0]) && a[0]->kind != HY_PKL_SET)
            return fail(m, HY_ERR_FORMAT, "%s() argument is a %s", name,
                        hy__pkl_kind_name(a[0]->kind));
        *out = new_seq(m->a, HY_PKL_SET, n ? a[0]->u.seq.items : NULL, n ? a[0]->u.seq.n : 0);
        return *out ? HY_OK : oom(m);
    }
    if (global_is(fn, "_codecs", "encode")) return codecs_encode(m, a, n, out);
    if (global_is(fn, "torch", "Size")) {
        if (n != 1 || !is_seq(a[0]))
            return fail(m, HY_ERR_FORMAT, "torch.Size() argument is not a tuple");
        *out = new_seq(m->a, HY_PKL_TUPLE, a[0]->u.seq.items, a[0]->u.seq.n);
        return *out ? HY_OK : oom(m);
    }
    if (global_is(fn, "torch._utils", "_rebuild_tensor_v2")) return rebuild_tensor(m, args, true, out);
    if (global_is(fn, "torch._utils", "_rebuild_tensor")) return rebuild_tensor(m, args, false, out);
    if (global_is(fn, "torch._utils", "_rebuild_parameter") ||
        global_is(fn, "torch._utils", "_rebuild_parameter_with_state")) {
        /* (data, requires_grad, backward_hooks[, state]): PyTorch installs the hooks and
         * sets the state's attributes on the Parameter: only empty ones are accepted. */
        size_t want = global_is(fn, "torch._utils", "_rebuild_parameter") ? 3 : 4;
        if (n != want || a[0]->kind != HY_PKL_TENSOR || a[1]->kind != HY_PKL_BOOL)
            return fail(m, HY_ERR_FORMAT, "%s takes (tensor, bool, hooks%s)", name,
                        want == 4 ? ", state" : "");
        if (!is_empty(a[2]) || a[2]->kind == HY_PKL_SET || a[2]->kind == HY_PKL_LIST)
            return fail(m, HY_ERR_UNSAFE,
                        "%s: backward hooks must be empty (PyTorch would call them)", name);
        if (want == 4 && !is_empty(a[3]))
            return fail(m, HY_ERR_UNSAFE,
                        "%s: a non-empty state (PyTorch would set it as attributes)", name);
        a[0]->u.tensor->is_parameter = true;
        a[0]->u.tensor->requires_grad = a[1]->u.b;
        *out = a[0];
        return HY_OK;
    }
    if (global_is(fn, "torch._tensor", "_rebuild_from_type_v2")) {
        /* (func, type, args, state): a tensor subclass; the data comes from func(*args). */
        if (n != 4 || a[0]->kind != HY_PKL_GLOBAL || a[2]->kind != HY_PKL_TUPLE || depth > 4)
            return fail(m, HY_ERR_FORMAT, "malformed _rebuild_from_type_v2 call");
        if (!is_empty(a[3])) /* PyTorch would apply it with __setstate__ / setattr */
            return fail(m, HY_ERR_UNSAFE, "_rebuild_from_type_v2 with a non-empty state");
        if (!is_tensor_rebuild(a[0]))
            return refuse(m, a[0]->u.global.module, a[0]->u.global.name,
                          "_rebuild_from_type_v2 may only apply a tensor rebuild function");
        if (!global_is(a[1], "torch", "Tensor") && !global_is(a[1], "torch.nn.parameter", "Parameter"))
            return fail(m, HY_ERR_FORMAT, "_rebuild_from_type_v2: type is not a torch tensor type");
        return call(m, a[0], a[2], depth + 1, false, out);
    }
    if (global_is(fn, "copyreg", "__newobj__")) { /* copyreg.__newobj__(cls, *args) */
        if (n < 1) return fail(m, HY_ERR_FORMAT, "copyreg.__newobj__ without a class");
        return newobj(m, a[0], n == 1 ? &m->a->empty_tuple : args, NULL, out);
    }
    if (global_is(fn, "copyreg", "_reconstructor")) {
        /* copyreg._reconstructor(cls, object, None): protocol 0/1 object creation. Another
         * base or a state would call base.__new__ / base.__init__ with it. */
        if (n != 3 || a[0]->kind != HY_PKL_GLOBAL)
            return fail(m, HY_ERR_FORMAT, "malformed copyreg._reconstructor call");
        if (!global_is(a[1], "builtins", "object") || a[2]->kind != HY_PKL_NONE)
            return refuse(m, a[0]->u.global.module, a[0]->u.global.name,
                          "copyreg._reconstructor with a base other than object or a state");
        return newobj(m, a[0], &m->a->empty_tuple, NULL, out);
    }
    return fail(m, HY_ERR_FORMAT, "internal: allowed callable %s.%s is not interpreted", mod, name);
}

/* cls.__new__(cls): NEWOBJ / NEWOBJ_EX. Only without arguments. */
static hy_status newobj(vm *m, hy__pkl_value *cls, hy__pkl_value *args, hy__pkl_value *kwargs,
                        hy__pkl_value **out) {
    if (cls->kind != HY_PKL_GLOBAL)
        return fail(m, HY_ERR_FORMAT, "NEWOBJ class is a %s, not a global",
                    hy__pkl_kind_name(cls->kind));
    if (args->kind != HY_PKL_TUPLE)
        return fail(m, HY_ERR_FORMAT, "NEWOBJ arguments are a %s, not a tuple",
                    hy__pkl_kind_name(args->kind));
    const char *mod = cls->u.global.module, *name = cls->u.global.name;
    bool dict = global_is(cls, "collections", "OrderedDict"),
         set = global_is(cls, "builtins", "set") || global_is(cls, "builtins", "frozenset");
    if (!dict && !set && !(role_of(cls) & HY_PKL_ROLE_OPAQUE))
        return refuse(m, mod, name, "instantiated, but it is not an allowed class");
    if (args->u.seq.n || (kwargs && kwargs->u.dict.n))
        return refuse(m, mod, name,
                      "a class instantiated with arguments; only instantiation without "
                      "arguments is allowed");
    if (dict) {
        *out = new_value(m->a, HY_PKL_DICT);
        if (*out) (*out)->u.dict.ordered = true;
        return *out ? HY_OK : oom(m);
    }
    if (set) {
        *out = new_seq(m->a, HY_PKL_SET, NULL, 0);
        return *out ? HY_OK : oom(m);
    }
    return new_object(m, cls, args, kwargs, out);
}

/* Persistent ids: ('storage', torch.XStorage, key, location, numel[, view_metadata]) and the
 * legacy format's ('module', cls, source_file, source). */
static hy_status persistent_load(vm *m, hy__pkl_value *pid, hy__pkl_value **out) {
    if (pid->kind != HY_PKL_TUPLE || pid->u.seq.n < 1)
        return fail(m, HY_ERR_FORMAT, "persistent id is a %s, not a tuple",
                    hy__pkl_kind_name(pid->kind));
    hy__pkl_value *const *a = pid->u.seq.items;
    size_t n = pid->u.seq.n;
    int fmt = m->a->format;
    if (hy__pkl_is_str(a[0], "module")) {
        /* Legacy only (the zip loader asserts 'storage'); PyTorch compares the source
         * fields with the class's current source: only empty ones are accepted. */
        if (fmt == HY_PKL_FMT_ZIP)
            return fail(m, HY_ERR_FORMAT, "'module' persistent id in a zip checkpoint");
        if (n != 4 || a[1]->kind != HY_PKL_GLOBAL)
            return fail(m, HY_ERR_FORMAT, "malformed 'module' persistent id");
        for (int i = 2; i < 4; i++)
            if (a[i]->kind != HY_PKL_NONE && !(a[i]->kind == HY_PKL_STR && a[i]->u.str.len == 0))
                return fail(m, HY_ERR_UNSUPPORTED,
                            "'module' persistent id with source code (legacy full-model save)");
        *out = a[1];
        return HY_OK;
    }
    if (!hy__pkl_is_str(a[0], "storage"))
        return fail(m, HY_ERR_FORMAT, "unsupported persistent id (first item is not 'storage')");
    if (fmt == HY_PKL_FMT_ZIP ? n != 5 : fmt == HY_PKL_FMT_LEGACY ? n != 6 : (n != 5 && n != 6))
        return fail(m, HY_ERR_FORMAT, "storage persistent id has %zu items, expected %d", n,
                    fmt == HY_PKL_FMT_LEGACY ? 6 : 5);
    if (n == 6 && a[5]->kind != HY_PKL_NONE)
        return fail(m, HY_ERR_UNSUPPORTED,
                    "storage views (legacy view_metadata) are not supported");
    hy_dtype dt;
    size_t es;
    if (a[1]->kind != HY_PKL_GLOBAL ||
        (strcmp(a[1]->u.global.module, "torch") && strcmp(a[1]->u.global.module, "torch.cuda")) ||
        !hy__pkl_storage_type(a[1]->u.global.name, &dt, &es))
        return fail(m, HY_ERR_FORMAT, "storage persistent id does not name a torch storage type");
    int64_t numel;
    if (!as_int(a[4], &numel) || numel < 0)
        return fail(m, HY_ERR_FORMAT, "storage size is not a non-negative int");
    hy__pkl_value *key = a[2];
    bool int_key = key->kind == HY_PKL_INT;
    if (int_key) { /* normalise integer keys to their decimal string */
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lld", (long long)key->u.i);
        key = new_bytes(m->a, HY_PKL_STR, buf, (size_t)len);
        if (!key) return oom(m);
    }
    if (key->kind != HY_PKL_STR || memchr(key->u.str.data, 0, key->u.str.len))
        return fail(m, HY_ERR_FORMAT, "storage key is not a string");
    if (a[3]->kind != HY_PKL_STR) return fail(m, HY_ERR_FORMAT, "storage location is not a string");

    size_t i = dict_find(m->a->storage_map, key);
    if (i != SIZE_MAX) { /* torch caches storages by key: the first description wins */
        *out = m->a->storage_map->u.dict.vals[i];
        if ((*out)->u.storage->int_key != int_key) /* torch keeps 0 and "0" apart */
            return fail(m, HY_ERR_FORMAT, "storage key '%s' given both as an int and a string",
                        key->u.str.data);
        return HY_OK;
    }
    hy__pkl_storage *s = arena_zalloc(m->a, sizeof *s);
    hy__pkl_value *v = new_value(m->a, HY_PKL_STORAGE);
    if (!s || !v) return oom(m);
    s->key = key->u.str.data;
    s->type_name = a[1]->u.global.name;
    s->location = a[3]->u.str.data;
    s->dtype = dt;
    s->elem_size = es;
    s->numel = (uint64_t)numel;
    s->int_key = int_key;
    v->u.storage = s;
    if (!dict_set(m->a, m->a->storage_map, key, v) || !seq_push(m->a, m->a->storages, v))
        return oom(m);
    *out = v;
    return HY_OK;
}

/* Plain data only: None, bool, numbers, str, bytes and containers of them. */
static hy_status check_plain(vm *m, const hy__pkl_value *v, int depth, bool *plain) {
    if (!m->walk_left--) return fail(m, HY_ERR_FORMAT, "BUILD state too large to check");
    switch (v->kind) {
    case HY_PKL_TUPLE:
    case HY_PKL_LIST:
    case HY_PKL_SET:
        if (depth > 64) return fail(m, HY_ERR_FORMAT, "BUILD state nested too deeply");
        for (size_t i = 0; i < v->u.seq.n && *plain; i++) {
            hy_status st = check_plain(m, v->u.seq.items[i], depth + 1, plain);
            if (st) return st;
        }
        return HY_OK;
    case HY_PKL_DICT:
        if (depth > 64) return fail(m, HY_ERR_FORMAT, "BUILD state nested too deeply");
        for (size_t i = 0; i < v->u.dict.n && *plain; i++) {
            hy_status st = check_plain(m, v->u.dict.keys[i], depth + 1, plain);
            if (!st) st = check_plain(m, v->u.dict.vals[i], depth + 1, plain);
            if (st) return st;
        }
        return HY_OK;
    case HY_PKL_GLOBAL:
    case HY_PKL_OBJECT:
    case HY_PKL_STORAGE:
    case HY_PKL_TENSOR: *plain = false; return HY_OK;
    default: return HY_OK;
    }
}

/* A global stored as data anywhere in v (objects and tensors are checked on their own). */
static hy_status find_global(vm *m, const hy__pkl_value *v, int depth, const hy__pkl_value **g) {
    if (!m->walk_left--) return fail(m, HY_ERR_FORMAT, "BUILD state too large to check");
    if (v->kind == HY_PKL_GLOBAL) {
        *g = v;
        return HY_OK;
    }
    bool seq = v->kind == HY_PKL_TUPLE || v->kind == HY_PKL_LIST || v->kind == HY_PKL_SET;
    if (!seq && v->kind != HY_PKL_DICT) return HY_OK;
    if (depth > 64) return fail(m, HY_ERR_FORMAT, "BUILD state nested too deeply");
    size_t n = seq ? v->u.seq.n : v->u.dict.n;
    for (size_t i = 0; i < n && !*g; i++) {
        hy_status st = seq ? find_global(m, v->u.seq.items[i], depth + 1, g)
                           : find_global(m, v->u.dict.keys[i], depth + 1, g);
        if (!st && !seq && !*g) st = find_global(m, v->u.dict.vals[i], depth + 1, g);
        if (st) return st;
    }
    return HY_OK;
}

/* State PyTorch would set as instance attributes of a module: nothing it would call. */
static hy_status check_module_state(vm *m, const hy__pkl_value *obj, const hy__pkl_value *state) {
    const char *mod = obj->u.obj.module, *name = obj->u.obj.name;
    if (state->kind != HY_PKL_DICT)
        return refuse(m, mod, name, "BUILD state is not a dict");
    for (size_t i = 0; i < state->u.dict.n; i++) {
        const hy__pkl_value *k = state->u.dict.keys[i], *v = state->u.dict.vals[i];
        if (k->kind != HY_PKL_STR) return refuse(m, mod, name, "BUILD state key is not a str");
        const char *s = k->u.str.data;
        /* Called by nn.Module.__call__ / pickle itself when found on the instance. */
        if (strstr(s, "hooks") && !(is_empty(v) && v->kind != HY_PKL_TUPLE))
            return refuse(m, mod, name, "BUILD state sets non-empty hooks (PyTorch calls them)");
        if (!strcmp(s, "forward") || !strcmp(s, "_call_impl") || !strcmp(s, "_wrapped_call_impl") ||
            !strncmp(s, "__", 2) ||
            (!strcmp(s, "_compiled_call_impl") && v->kind != HY_PKL_NONE))
            return refuse(m, mod, name, "BUILD state overrides a method PyTorch calls");
        const hy__pkl_value *g = NULL;
        hy_status st = find_global(m, v, 0, &g);
        if (st) return st;
        if (g) {
            char q[200];
            quote_global(q, sizeof q, g->u.global.module, g->u.global.name);
            return hy__error(HY_ERR_UNSAFE,
                             "%s: pickle byte %zu: refusing global '%s' stored as data in the "
                             "state of %s.%s (PyTorch code may call it)",
                             m->what, m->op_off, q, mod, name);
        }
    }
    return HY_OK;
}

static hy_status build(vm *m, hy__pkl_value *obj, hy__pkl_value *state) {
    if (obj->kind == HY_PKL_GLOBAL) /* would set attributes of the class / function itself */
        return refuse(m, obj->u.global.module, obj->u.global.name,
                      "BUILD on a global would change the class or function");
    if (obj->kind == HY_PKL_DICT && obj->u.dict.ordered) {
        /* OrderedDict attributes (torch.save: state_dict()._metadata): plain data only. */
        bool plain = true;
        hy_status st = state->kind == HY_PKL_DICT ? check_plain(m, state, 0, &plain) : HY_OK;
        if (st) return st;
        if (state->kind != HY_PKL_DICT || !plain)
            return fail(m, HY_ERR_UNSAFE,
                        "BUILD on an OrderedDict with a state other than plain data");
        return HY_OK; /* not needed: ignored */
    }
    if (obj->kind != HY_PKL_OBJECT) /* Python would apply it (Tensor.__setstate__ repoints data) */
        return fail(m, HY_ERR_UNSAFE, "BUILD on a %s (PyTorch would apply the state; refused)",
                    obj->kind == HY_PKL_DICT ? "plain dict" : hy__pkl_kind_name(obj->kind));
    hy_status cst = check_module_state(m, obj, state);
    if (cst) return cst;
    hy__pkl_value *old = obj->u.obj.state;
    if (old && old->kind == HY_PKL_DICT && state->kind == HY_PKL_DICT && old != state) {
        hy_status st = dict_update(m, old, state);
        if (st) return st;
    } else {
        obj->u.obj.state = state;
    }
    return HY_OK;
}

static hy_status append_to(vm *m, hy__pkl_value *target, hy__pkl_value *const *items, size_t n) {
    hy__pkl_value *list = target;
    if (target->kind == HY_PKL_OBJECT) /* obj.append / obj.extend: methods would run */
        return refuse(m, target->u.obj.module, target->u.obj.name,
                      "APPEND on an object would call its methods");
    if (target->kind != HY_PKL_LIST) {
        return fail(m, HY_ERR_FORMAT, "APPEND to a %s", hy__pkl_kind_name(target->kind));
    }
    for (size_t i = 0; i < n; i++)
        if (!seq_push(m->a, list, items[i])) return oom(m);
    return HY_OK;
}

static hy_status setitems_to(vm *m, hy__pkl_value *target, hy__pkl_value *const *kv, size_t n) {
    if (n % 2) return fail(m, HY_ERR_FORMAT, "SETITEMS with an odd number of items");
    hy__pkl_value *d = target;
    if (target->kind == HY_PKL_OBJECT) /* obj[key] = value: __setitem__ would run */
        return refuse(m, target->u.obj.module, target->u.obj.name,
                      "SETITEM on an object would call its methods");
    if (target->kind != HY_PKL_DICT) {
        return fail(m, HY_ERR_FORMAT, "SETITEM on a %s", hy__pkl_kind_name(target->kind));
    }
    for (size_t i = 0; i < n; i += 2)
        if (!dict_set(m->a, d, kv[i], kv[i + 1])) return oom(m);
    return HY_OK;
}

static hy_status parse_text_int(vm *m, const char *s, size_t n, bool is_long, hy__pkl_value **out) {
    char buf[64];
    if (is_long && n && s[n - 1] == 'L') n--;
    if (n == 0 || n >= sizeof buf)
        return fail(m, HY_ERR_UNSUPPORTED, "text integer of %zu chars", n);
    memcpy(buf, s, n);
    buf[n] = 0;
    if (!is_long && (!strcmp(buf, "00") || !strcmp(buf, "01"))) {
        *out = buf[1] == '1' ? &m->a->true_v : &m->a->false_v;
        return HY_OK;
    }
    /* Python reads these with int(s, 0): '0x..', '0o..', '1_0' and '010' differ from base 10. */
    const char *d = buf + (buf[0] == '-' || buf[0] == '+');
    if (d[0] == '0' && d[1] != 0)
        return fail(m, HY_ERR_UNSUPPORTED, "text integer '%s' (prefix or leading zero)", buf);
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9')
            return fail(m, HY_ERR_UNSUPPORTED, "text integer '%s' is malformed", buf);
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (*e || errno)
        return fail(m, HY_ERR_UNSUPPORTED, "text integer '%s' is malformed or too large", buf);
    *out = new_int(m->a, v);
    return *out ? HY_OK : oom(m);
}

// --- main loop ------------------------------------------------------------------------------

// clang-format off
enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_FLOAT = 'F',
    OP_INT = 'I', OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_PERSID = 'P', OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_STRING = 'S', OP_BINSTRING = 'T',
    OP_SHORT_BINSTRING = 'U', OP_UNICODE = 'V', OP_BINUNICODE = 'X', OP_APPEND = 'a',
    OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd', OP_EMPTY_DICT = '}', OP_APPENDS = 'e',
    OP_GET = 'g', OP_BINGET = 'h', OP_INST = 'i', OP_LONG_BINGET = 'j', OP_LIST = 'l',
    OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r',
    OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINFLOAT = 'G',
    OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C', OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82,
    OP_EXT2 = 0x83, OP_EXT4 = 0x84, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
    OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_LONG4 = 0x8b,
    OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f,
    OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93,
    OP_MEMOIZE = 0x94, OP_FRAME = 0x95, OP_BYTEARRAY8 = 0x96, OP_NEXT_BUFFER = 0x97,
    OP_READONLY_BUFFER = 0x98,
};
// clang-format on

/* Length-prefixed string/bytes: n-byte little-endian length, then the payload. */
static hy_status op_counted(vm *m, int len_bytes, bool is_signed, hy__pkl_kind kind) {
    hy_status st = need(m, (size_t)len_bytes);
    if (st) return st;
    uint64_t n = rd_le(m->p, len_bytes);
    if (is_signed && (n & 0x80000000u)) return fail(m, HY_ERR_FORMAT, "negative string length");
    m->p += len_bytes;
    if (n > (uint64_t)(m->end - m->p))
        return fail(m, HY_ERR_FORMAT, "truncated (%llu-byte string)", (unsigned long long)n);
    hy__pkl_value *v = new_bytes(m->a, kind, m->p, (size_t)n);
    m->p += n;
    return push(m, v);
}

static hy_status op_long(vm *m, int len_bytes) {
    hy_status st = need(m, (size_t)len_bytes);
    if (st) return st;
    uint64_t n = rd_le(m->p, len_bytes);
    if (len_bytes == 4 && (n & 0x80000000u)) return fail(m, HY_ERR_FORMAT, "negative LONG4 length");
    m->p += len_bytes;
    if (n > (uint64_t)(m->end - m->p))
        return fail(m, HY_ERR_FORMAT, "truncated (%llu-byte long)", (unsigned long long)n);
    const uint8_t *d = m->p;
    m->p += n;
    if (n > 8) return push(m, new_bytes(m->a, HY_PKL_BIGINT, d, (size_t)n));
    uint64_t v = n ? rd_le(d, (int)n) : 0;
    if (n && n < 8 && (d[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return push(m, new_int(m->a, (int64_t)v));
}

static hy_status run(vm *m, hy__pkl_value **result) {
    hy_status st = HY_OK;
    hy__pkl_value *v = NULL, *w = NULL, *x = NULL;
    size_t base = 0, n = 0;
    const char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    while (m->p < m->end) {
        m->op_off = (size_t)(m->p - m->start);
        uint8_t op = *m->p++;
        switch (op) {
        case OP_PROTO:
            if ((st = need(m, 1))) return st;
            if (*m->p > 5) return fail(m, HY_ERR_UNSUPPORTED, "pickle protocol %u", *m->p);
            m->proto = *m->p++;
            break;
        case OP_FRAME:
            if ((st = need(m, 8))) return st;
            if (rd_le(m->p, 8) > (uint64_t)(m->end - m->p - 8))
                return fail(m, HY_ERR_FORMAT, "truncated frame");
            m->p += 8;
            break;
        case OP_STOP:
            if ((st = pop(m, &v))) return st;
            *result = v;
            return HY_OK;
        case OP_MARK:
            if (m->n_marks == m->marks_cap) {
                size_t cap = m->marks_cap ? m->marks_cap * 2 : 32;
                size_t *mk = hy__realloc(m->marks, cap * sizeof *mk);
                if (!mk) return fail(m, HY_ERR_NOMEM, "out of memory (marks)");
                m->marks = mk;
                m->marks_cap = cap;
            }
            m->marks[m->n_marks++] = m->sp;
            break;
        case OP_POP:
            if (m->sp > frame_base(m))
                m->sp--;
            else if ((st = pop_mark(m, &base, &n)))
                return st;
            break;
        case OP_POP_MARK:
            if ((st = pop_mark(m, &base, &n))) return st;
            break;
        case OP_DUP:
            if ((st = top(m, &v)) || (st = push(m, v))) return st;
            break;
        case OP_NONE: st = push(m, &m->a->none); break;
        case OP_NEWTRUE: st = push(m, &m->a->true_v); break;
        case OP_NEWFALSE: st = push(m, &m->a->false_v); break;
        case OP_BININT:
            if ((st = need(m, 4))) return st;
            st = push(m, new_int(m->a, (int32_t)(uint32_t)rd_le(m->p, 4)));
            m->p += 4;
            break;
        case OP_BININT1:
            if ((st = need(m, 1))) return st;
            st = push(m, new_int(m->a, *m->p++));
            break;
        case OP_BININT2:
            if ((st = need(m, 2))) return st;
            st = push(m, new_int(m->a, (int64_t)rd_le(m->p, 2)));
            m->p += 2;
            break;
        case OP_LONG1: st = op_long(m, 1); break;
        case OP_LONG4: st = op_long(m, 4); break;
        case OP_INT:
        case OP_LONG:
            if ((st = read_line(m, &s1, &l1)) ||
                (st = parse_text_int(m, s1, l1, op == OP_LONG, &v)))
                return st;
            st = push(m, v);
            break;
        case OP_FLOAT: {
            char buf[64];
            if ((st = read_line(m, &s1, &l1))) return st;
            if (l1 == 0 || l1 >= sizeof buf) return fail(m, HY_ERR_FORMAT, "malformed FLOAT");
            memcpy(buf, s1, l1);
            buf[l1] = 0;
            char *e;
            double d = strtod(buf, &e);
            if (*e) return fail(m, HY_ERR_FORMAT, "malformed FLOAT '%s'", buf);
            if (!(v = new_value(m->a, HY_PKL_FLOAT))) return oom(m);
            v->u.f = d;
            st = push(m, v);
            break;
        }
        case OP_BINFLOAT: {
            if ((st = need(m, 8))) return st;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = (bits << 8) | m->p[i]; /* big-endian */
            m->p += 8;
            if (!(v = new_value(m->a, HY_PKL_FLOAT))) return oom(m);
            memcpy(&v->u.f, &bits, sizeof bits);
            st = push(m, v);
            break;
        }
        case OP_SHORT_BINSTRING: st = op_counted(m, 1, false, HY_PKL_STR); break;
        case OP_BINSTRING: st = op_counted(m, 4, true, HY_PKL_STR); break;
        case OP_SHORT_BINUNICODE: st = op_counted(m, 1, false, HY_PKL_STR); break;
        case OP_BINUNICODE: st = op_counted(m, 4, false, HY_PKL_STR); break;
        case OP_BINUNICODE8: st = op_counted(m, 8, false, HY_PKL_STR); break;
        case OP_SHORT_BINBYTES: st = op_counted(m, 1, false, HY_PKL_BYTES); break;
        case OP_BINBYTES: st = op_counted(m, 4, false, HY_PKL_BYTES); break;
        case OP_BINBYTES8:
        case OP_BYTEARRAY8: st = op_counted(m, 8, false, HY_PKL_BYTES); break;
        case OP_UNICODE:
            /* raw-unicode-escape: plain text when there is no backslash. */
            if ((st = read_line(m, &s1, &l1))) return st;
            if (memchr(s1, '\\', l1))
                return fail(m, HY_ERR_UNSUPPORTED, "escaped protocol-0 UNICODE string");
            st = push(m, new_bytes(m->a, HY_PKL_STR, s1, l1));
            break;
        case OP_STRING: return fail(m, HY_ERR_UNSUPPORTED, "protocol-0 STRING opcode");
        case OP_EMPTY_TUPLE: st = push(m, &m->a->empty_tuple); break;
        case OP_EMPTY_LIST: st = push(m, new_seq(m->a, HY_PKL_LIST, NULL, 0)); break;
        case OP_EMPTY_DICT: st = push(m, new_value(m->a, HY_PKL_DICT)); break;
        case OP_EMPTY_SET: st = push(m, new_seq(m->a, HY_PKL_SET, NULL, 0)); break;
        case OP_TUPLE:
        case OP_LIST:
        case OP_FROZENSET:
            if ((st = pop_mark(m, &base, &n))) return st;
            st = push(m, new_seq(m->a,
                                 op == OP_TUPLE  ? HY_PKL_TUPLE
                                 : op == OP_LIST ? HY_PKL_LIST
                                                 : HY_PKL_SET,
                                 m->stack + base, n));
            break;
        case OP_TUPLE1:
        case OP_TUPLE2:
        case OP_TUPLE3:
            n = (size_t)(op - OP_TUPLE1 + 1);
            if (m->sp - frame_base(m) < n) return fail(m, HY_ERR_FORMAT, "stack underflow");
            m->sp -= n;
            st = push(m, new_seq(m->a, HY_PKL_TUPLE, m->stack + m->sp, n));
            break;
        case OP_DICT:
            if ((st = pop_mark(m, &base, &n))) return st;
            if (!(v = new_value(m->a, HY_PKL_DICT))) return oom(m);
            if ((st = setitems_to(m, v, m->stack + base, n))) return st;
            st = push(m, v);
            break;
        case OP_APPEND:
            if ((st = pop(m, &v)) || (st = top(m, &w))) return st;
            st = append_to(m, w, &v, 1);
            break;
        case OP_APPENDS:
        case OP_ADDITEMS:
            if ((st = pop_mark(m, &base, &n)) || (st = top(m, &w))) return st;
            if (op == OP_ADDITEMS && w->kind == HY_PKL_SET) {
                for (size_t i = 0; i < n; i++)
                    if (!seq_push(m->a, w, m->stack[base + i])) return oom(m);
            } else {
                st = append_to(m, w, m->stack + base, n);
            }
            break;
        case OP_SETITEM:
            if ((st = pop(m, &v)) || (st = pop(m, &w)) || (st = top(m, &x))) return st;
            {
                hy__pkl_value *kv[2] = {w, v};
                st = setitems_to(m, x, kv, 2);
            }
            break;
        case OP_SETITEMS:
            if ((st = pop_mark(m, &base, &n)) || (st = top(m, &w))) return st;
            st = setitems_to(m, w, m->stack + base, n);
            break;
        case OP_GET:
        case OP_PUT: {
            if ((st = read_line(m, &s1, &l1)) || (st = parse_text_int(m, s1, l1, false, &v)))
                return st;
            if (v->kind != HY_PKL_INT || v->u.i < 0)
                return fail(m, HY_ERR_FORMAT, "bad memo index");
            if (op == OP_GET)
                st = memo_get(m, (uint64_t)v->u.i);
            else if (!(st = top(m, &w)))
                st = memo_put(m, (uint64_t)v->u.i, w);
            break;
        }
        case OP_BINGET:
        case OP_LONG_BINGET: {
            int nb = op == OP_BINGET ? 1 : 4;
            if ((st = need(m, (size_t)nb))) return st;
            uint64_t idx = rd_le(m->p, nb);
            m->p += nb;
            st = memo_get(m, idx);
            break;
        }
        case OP_BINPUT:
        case OP_LONG_BINPUT: {
            int nb = op == OP_BINPUT ? 1 : 4;
            if ((st = need(m, (size_t)nb))) return st;
            uint64_t idx = rd_le(m->p, nb);
            m->p += nb;
            if ((st = top(m, &w))) return st;
            st = memo_put(m, idx, w);
            break;
        }
        case OP_MEMOIZE:
            if ((st = top(m, &w))) return st;
            st = memo_put(m, m->memo_count, w);
            break;
        case OP_GLOBAL:
            if ((st = read_line(m, &s1, &l1)) || (st = read_line(m, &s2, &l2))) return st;
            st = make_global(m, s1, l1, s2, l2);
            break;
        case OP_STACK_GLOBAL:
            if ((st = pop(m, &w)) || (st = pop(m, &v))) return st;
            if (v->kind != HY_PKL_STR || w->kind != HY_PKL_STR)
                return fail(m, HY_ERR_FORMAT, "STACK_GLOBAL operands are not strings");
            st = make_global(m, v->u.str.data, v->u.str.len, w->u.str.data, w->u.str.len);
            break;
        case OP_REDUCE:
            if ((st = pop(m, &w)) || (st = pop(m, &v)) || (st = call(m, v, w, 0, false, &x))) return st;
            st = push(m, x);
            break;
        case OP_NEWOBJ:
            if ((st = pop(m, &w)) || (st = pop(m, &v)) || (st = newobj(m, v, w, NULL, &x)))
                return st;
            st = push(m, x);
            break;
        case OP_NEWOBJ_EX: {
            hy__pkl_value *kw = NULL;
            if ((st = pop(m, &kw)) || (st = pop(m, &w)) || (st = pop(m, &v))) return st;
            if (kw->kind != HY_PKL_DICT)
                return fail(m, HY_ERR_FORMAT, "NEWOBJ_EX kwargs are not a dict");
            if ((st = newobj(m, v, w, kw, &x))) return st;
            st = push(m, x);
            break;
        }
        case OP_INST:
            /* INST module\nname\n: class from the text, arguments from the mark. */
            if ((st = read_line(m, &s1, &l1)) || (st = read_line(m, &s2, &l2))) return st;
            if ((st = make_global(m, s1, l1, s2, l2))) return st;
            v = m->stack[--m->sp];
            if ((st = pop_mark(m, &base, &n))) return st;
            if (!(w = new_seq(m->a, HY_PKL_TUPLE, m->stack + base, n))) return oom(m);
            if ((st = call(m, v, w, 0, true, &x))) return st;
            st = push(m, x);
            break;
        case OP_OBJ:
            if ((st = pop_mark(m, &base, &n))) return st;
            if (n < 1) return fail(m, HY_ERR_FORMAT, "OBJ without a class");
            v = m->stack[base];
            if (!(w = new_seq(m->a, HY_PKL_TUPLE, m->stack + base + 1, n - 1))) return oom(m);
            if ((st = call(m, v, w, 0, true, &x))) return st;
            st = push(m, x);
            break;
        case OP_BUILD:
            if ((st = pop(m, &w)) || (st = top(m, &v))) return st;
            st = build(m, v, w);
            break;
        case OP_BINPERSID:
            if ((st = pop(m, &v)) || (st = persistent_load(m, v, &x))) return st;
            st = push(m, x);
            break;
        case OP_PERSID: return fail(m, HY_ERR_UNSUPPORTED, "text persistent ids (PERSID)");
        case OP_EXT1:
        case OP_EXT2:
        case OP_EXT4:
            return fail(m, HY_ERR_UNSUPPORTED, "copyreg extension codes (EXT%c)",
                        op == OP_EXT1   ? '1'
                        : op == OP_EXT2 ? '2'
                                        : '4');
        case OP_NEXT_BUFFER:
        case OP_READONLY_BUFFER:
            return fail(m, HY_ERR_UNSUPPORTED, "out-of-band buffers (protocol 5)");
        default: return fail(m, HY_ERR_FORMAT, "unknown opcode 0x%02x", op);
        }
        if (st) return st;
    }
    m->op_off = (size_t)(m->p - m->start);
    return fail(m, HY_ERR_FORMAT, "truncated (no STOP opcode)");
}

hy_status hy__pkl_load(hy__pkl_arena *a, const uint8_t *buf, size_t len, const char *what,
                       size_t *consumed, hy__pkl_value **out) {
    if (!what) what = "pickle";
    if (!a || (!buf && len) || !out)
        return hy__error(HY_ERR_INVALID_ARG, "%s: hy__pkl_load: NULL argument", what);
    /* Values never need more than ~128 bytes per pickle byte; more means a hostile pickle. */
    size_t budget = len > (SIZE_MAX >> 8) ? SIZE_MAX >> 1 : len * 128;
    size_t limit = a->mem.total + ((size_t)64 << 20) + budget;
    if (limit > a->mem.limit) a->mem.limit = limit;
    a->mem.over_limit = false;
    vm m = {.a = a, .what = what, .start = buf, .p = buf, .end = buf + len};
    m.memo_limit = len + 256; /* sequential memo indices never exceed the opcode count */
    m.walk_left = (len > (SIZE_MAX >> 5) ? SIZE_MAX >> 1 : len * 16) + ((size_t)1 << 20);
    m.stack_cap = 64;         /* never NULL: stack + base is formed even for empty frames */
    m.stack = hy__malloc(m.stack_cap * sizeof *m.stack);
    if (!m.stack) return hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
    hy__pkl_value *res = NULL;
    hy_status st = run(&m, &res);
    hy__free(m.stack);
    hy__free(m.marks);
    hy__free(m.memo);
    if (st) return st;
    if (consumed) *consumed = (size_t)(m.p - buf);
    *out = res;
    return HY_OK;
}

size_t hy__pkl_storage_count(const hy__pkl_arena *a) { return a ? a->storages->u.seq.n : 0; }

hy__pkl_value *hy__pkl_storage_at(const hy__pkl_arena *a, size_t i) {
    return a && i < a->storages->u.seq.n ? a->storages->u.seq.items[i] : NULL;
}

hy__pkl_value *hy__pkl_storage_find(const hy__pkl_arena *a, const char *key) {
    return a ? hy__pkl_dict_get(a->storage_map, key) : NULL;
}
