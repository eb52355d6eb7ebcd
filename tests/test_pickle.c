/* Safe pickle reader: values from CPython-written pickles (tests/fixtures/pickle_vectors.h,
 * made by gen_pickle_vectors.py), the global allow-list, torch persistent ids, and hostile
 * input. */
#include "core/core.h"
#include "fixtures/pickle_vectors.h"
#include "hy_test.h"
#include "io/pickle.h"

typedef struct vec {
    const char *name;
    const uint8_t *data;
    size_t len;
    int unsafe;
} vec;

#define V(n, u)                                                                                    \
    { #n, pv_##n, sizeof pv_##n, u }
static const vec vectors[] = {
    V(basic_p2, 0),
    V(basic_p3, 0),
    V(basic_p4, 0),
    V(basic_p5, 0),
    V(bytearray_p5, 0),
    V(text_p0, 0),
    V(text_p1, 0),
    V(obj_p1, 1), /* __main__.Foo: not allow-listed */
    V(obj_p2, 1),
    V(obj_p4, 1),
    V(newobj_ex_p4, 1),
    V(containers_p2, 1), /* collections.defaultdict */
    V(bigdict_p2, 0),
    V(unsafe_system_p2, 1),
    V(unsafe_system_p4, 1),
    V(unsafe_eval_p2, 1),
    V(unsafe_getattr_p4, 1),
    V(unsafe_attrgetter_p2, 1),
    V(unsafe_popen_p2, 1),
    V(unsafe_nested_p2, 1),
    V(torch_p2, 0),
    V(torch_p4, 0),
    V(torch_complex, 0),
    V(torch_load_from_bytes, 1),
    V(opaque_p1, 0),
    V(opaque_p2, 0),
    V(opaque_p4, 0),
    V(namespace_p2, 0),
    V(opaque_args_p2, 1),
    V(opaque_newargs_p2, 1),
};

static hy_status load(hy__pkl_arena **a, const uint8_t *d, size_t n, hy__pkl_value **out) {
    hy_status st = hy__pkl_arena_create(a);
    if (st) return st;
    return hy__pkl_load(*a, d, n, "vec", NULL, out);
}

static int64_t ival(const hy__pkl_value *v) {
    return v && v->kind == HY_PKL_INT ? v->u.i : -999999;
}
static const char *sval(const hy__pkl_value *v) {
    return v && (v->kind == HY_PKL_STR || v->kind == HY_PKL_BYTES) ? v->u.str.data : "(not a str)";
}

// --- builtins, all protocols ---------------------------------------------------------------

static void check_basic(const uint8_t *d, size_t n, int proto) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, d, n, &r));
    ASSERT_EQ(r->kind, HY_PKL_DICT);
    ASSERT_EQ(r->u.dict.n, 23);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "int1")), 7);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "int2")), 300);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "int4")), -100000);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "i64")), 1099511627776LL);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "neg")), -1);
    v = hy__pkl_dict_get(r, "big"); /* 2**70: 9 little-endian bytes, top byte 0x40 */
    ASSERT_EQ(v->kind, HY_PKL_BIGINT);
    ASSERT_EQ(v->u.str.len, 9);
    ASSERT_EQ((uint8_t)v->u.str.data[8], 0x40);
    ASSERT_EQ((uint8_t)v->u.str.data[0], 0);
    v = hy__pkl_dict_get(r, "float");
    ASSERT_EQ(v->kind, HY_PKL_FLOAT);
    ASSERT_EQ(v->u.f, 1.5);
    ASSERT_EQ(hy__pkl_dict_get(r, "none")->kind, HY_PKL_NONE);
    v = hy__pkl_dict_get(r, "t");
    ASSERT_TRUE(v->kind == HY_PKL_BOOL && v->u.b);
    v = hy__pkl_dict_get(r, "f");
    ASSERT_TRUE(v->kind == HY_PKL_BOOL && !v->u.b);
    ASSERT_STREQ(sval(hy__pkl_dict_get(r, "str")), "h\xc3\xa9llo");
    v = hy__pkl_dict_get(r, "list");
    ASSERT_EQ(v->kind, HY_PKL_LIST);
    ASSERT_EQ(v->u.seq.n, 3);
    ASSERT_EQ(ival(v->u.seq.items[2]), 3);
    static const char *tn[] = {"tuple0", "tuple1", "tuple2", "tuple3", "tuple4"};
    for (int i = 0; i < 5; i++) {
        v = hy__pkl_dict_get(r, tn[i]);
        ASSERT_EQ(v->kind, HY_PKL_TUPLE);
        ASSERT_EQ(v->u.seq.n, i);
        for (int j = 0; j < i; j++) ASSERT_EQ(ival(v->u.seq.items[j]), j + 1);
    }
    v = hy__pkl_dict_get(r, "set");
    ASSERT_EQ(v->kind, HY_PKL_SET);
    ASSERT_EQ(v->u.seq.n, 1);
    ASSERT_EQ(ival(v->u.seq.items[0]), 5);
    v = hy__pkl_dict_get(r, "fset");
    ASSERT_EQ(v->kind, HY_PKL_SET);
    ASSERT_EQ(ival(v->u.seq.items[0]), 6);
    v = hy__pkl_dict_get(r, "nested");
    v = hy__pkl_dict_get(v, "a");
    ASSERT_TRUE(v && v->kind == HY_PKL_LIST && v->u.seq.n == 1);
    ASSERT_EQ(ival(hy__pkl_dict_get(v->u.seq.items[0], "b")), 1);
    v = hy__pkl_dict_get(r, "shared"); /* [x, x]: the memo makes both the same node */
    ASSERT_EQ(v->u.seq.n, 2);
    ASSERT_TRUE(v->u.seq.items[0] == v->u.seq.items[1]);
    ASSERT_EQ(ival(v->u.seq.items[0]->u.seq.items[0]), 9);
    v = hy__pkl_dict_get(r, "bytes"); /* protocol 2: _codecs.encode('xy', 'latin1') */
    (void)proto;
    ASSERT_EQ(v->kind, HY_PKL_BYTES);
    ASSERT_EQ(v->u.str.len, 2);
    ASSERT_STREQ(sval(v), "xy");
    ASSERT_STREQ(sval(hy__pkl_dict_get_int(r, 1)), "one");
    ASSERT_TRUE(hy__pkl_dict_get(r, "missing") == NULL);
    hy__pkl_arena_free(a);
}

HY_TEST(builtins_protocol2) { check_basic(pv_basic_p2, sizeof pv_basic_p2, 2); }
HY_TEST(builtins_protocol3) { check_basic(pv_basic_p3, sizeof pv_basic_p3, 3); }
HY_TEST(builtins_protocol4) { check_basic(pv_basic_p4, sizeof pv_basic_p4, 4); }
HY_TEST(builtins_protocol5) { check_basic(pv_basic_p5, sizeof pv_basic_p5, 5); }

HY_TEST(bytearray8) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(load(&a, pv_bytearray_p5, sizeof pv_bytearray_p5, &r));
    ASSERT_STREQ(sval(hy__pkl_dict_get(r, "ba")), "abc");
    hy__pkl_arena_free(a);
}

static void check_text(const uint8_t *d, size_t n) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, d, n, &r));
    v = hy__pkl_dict_get(r, "a");
    ASSERT_TRUE(v && v->kind == HY_PKL_LIST && v->u.seq.n == 3);
    ASSERT_EQ(ival(v->u.seq.items[0]), 1);
    ASSERT_EQ(v->u.seq.items[1]->kind, HY_PKL_FLOAT);
    ASSERT_EQ(v->u.seq.items[1]->u.f, 2.5);
    ASSERT_STREQ(sval(v->u.seq.items[2]), "x");
    v = hy__pkl_dict_get(r, "b");
    ASSERT_TRUE(v && v->kind == HY_PKL_TUPLE && v->u.seq.n == 2);
    ASSERT_EQ(v->u.seq.items[0]->kind, HY_PKL_NONE);
    ASSERT_TRUE(v->u.seq.items[1]->kind == HY_PKL_BOOL && v->u.seq.items[1]->u.b);
    ASSERT_EQ(ival(hy__pkl_dict_get(r, "c")), -42);
    hy__pkl_arena_free(a);
}
HY_TEST(text_protocol0) { check_text(pv_text_p0, sizeof pv_text_p0); }
HY_TEST(protocol1) { check_text(pv_text_p1, sizeof pv_text_p1); }

// --- objects ----------------------------------------------------------------------------------

/* An allow-listed module class, instantiated without arguments then BUILD-filled, through
 * copyreg._reconstructor (protocol 1), NEWOBJ (2) and STACK_GLOBAL + NEWOBJ (4). */
static void check_obj(const uint8_t *d, size_t n) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, d, n, &r));
    v = hy__pkl_dict_get(r, "foo");
    ASSERT_TRUE(v && v->kind == HY_PKL_OBJECT);
    ASSERT_TRUE(hy__pkl_is_class(v, "torch.nn.modules.activation", "SiLU"));
    ASSERT_EQ(v->u.obj.args->u.seq.n, 0);
    ASSERT_TRUE(v->u.obj.state && v->u.obj.state->kind == HY_PKL_DICT);
    ASSERT_EQ(ival(hy__pkl_dict_get(v->u.obj.state, "x")), 1);
    ASSERT_STREQ(sval(hy__pkl_dict_get(v->u.obj.state, "name")), "foo");
    ASSERT_TRUE(hy__pkl_dict_get(r, "again") == v);
    hy__pkl_arena_free(a);
}
HY_TEST(object_protocol1_reconstructor) { check_obj(pv_opaque_p1, sizeof pv_opaque_p1); }
HY_TEST(object_protocol2_newobj) { check_obj(pv_opaque_p2, sizeof pv_opaque_p2); }
HY_TEST(object_protocol4_stack_global) { check_obj(pv_opaque_p4, sizeof pv_opaque_p4); }

HY_TEST(namespace_reduce_without_arguments) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(load(&a, pv_namespace_p2, sizeof pv_namespace_p2, &r));
    ASSERT_TRUE(hy__pkl_is_class(r, "ultralytics.utils", "IterableSimpleNamespace"));
    ASSERT_EQ(ival(hy__pkl_dict_get(r->u.obj.state, "imgsz")), 640);
    hy__pkl_arena_free(a);
}

HY_TEST(big_ordered_dict) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(load(&a, pv_bigdict_p2, sizeof pv_bigdict_p2, &r));
    ASSERT_EQ(r->kind, HY_PKL_DICT);
    ASSERT_EQ(r->u.dict.n, 1000);
    char k[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        ASSERT_STREQ(sval(r->u.dict.keys[i]), k);
        ASSERT_EQ(ival(hy__pkl_dict_get(r, k)), i);
    }
    hy__pkl_arena_free(a);
}

// --- denylist ---------------------------------------------------------------------------------

static void check_unsafe(const uint8_t *d, size_t n, const char *global) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r = NULL;
    ASSERT_ERR(load(&a, d, n, &r), HY_ERR_UNSAFE);
    ASSERT_TRUE(r == NULL);
    char want[128];
    snprintf(want, sizeof want, "refusing pickle global '%s' (", global);
    ASSERT_CONTAINS(hy_last_error(), want);
    ASSERT_CONTAINS(hy_last_error(), "vec: ");
    hy__pkl_arena_free(a);
}
HY_TEST(unsafe_os_system_p2) {
    check_unsafe(pv_unsafe_system_p2, sizeof pv_unsafe_system_p2, "posix.system");
}
HY_TEST(unsafe_os_system_p4) {
    check_unsafe(pv_unsafe_system_p4, sizeof pv_unsafe_system_p4, "posix.system");
}
HY_TEST(unsafe_eval) { check_unsafe(pv_unsafe_eval_p2, sizeof pv_unsafe_eval_p2, "builtins.eval"); }
HY_TEST(unsafe_getattr) {
    check_unsafe(pv_unsafe_getattr_p4, sizeof pv_unsafe_getattr_p4, "builtins.getattr");
}
HY_TEST(unsafe_attrgetter) {
    check_unsafe(pv_unsafe_attrgetter_p2, sizeof pv_unsafe_attrgetter_p2, "operator.attrgetter");
}
HY_TEST(unsafe_popen) {
    check_unsafe(pv_unsafe_popen_p2, sizeof pv_unsafe_popen_p2, "subprocess.Popen");
}
HY_TEST(unsafe_nested) {
    check_unsafe(pv_unsafe_nested_p2, sizeof pv_unsafe_nested_p2, "posix.system");
}

/* Classes that are not allow-listed, and allowed classes called with arguments (old
 * Ultralytics DetectionModel(cfg) evaluates strings of cfg). */
HY_TEST(unallowed_and_misused_classes) {
    check_unsafe(pv_obj_p1, sizeof pv_obj_p1, "__main__.Foo");
    check_unsafe(pv_obj_p2, sizeof pv_obj_p2, "__main__.Foo");
    check_unsafe(pv_obj_p4, sizeof pv_obj_p4, "__main__.Foo");
    check_unsafe(pv_newobj_ex_p4, sizeof pv_newobj_ex_p4, "__main__.WithNewargsEx");
    check_unsafe(pv_containers_p2, sizeof pv_containers_p2, "collections.defaultdict");
    check_unsafe(pv_torch_load_from_bytes, sizeof pv_torch_load_from_bytes,
                 "torch.storage._load_from_bytes");
    check_unsafe(pv_opaque_args_p2, sizeof pv_opaque_args_p2, "ultralytics.nn.tasks.DetectionModel");
    ASSERT_CONTAINS(hy_last_error(), "with arguments");
    check_unsafe(pv_opaque_newargs_p2, sizeof pv_opaque_newargs_p2,
                 "torch.nn.modules.activation.SiLU");
    ASSERT_CONTAINS(hy_last_error(), "with arguments");
}

HY_TEST(allowlist_table) {
    ASSERT_EQ(hy__pkl_global_role("collections", "OrderedDict"), HY_PKL_ROLE_CALLABLE);
    ASSERT_EQ(hy__pkl_global_role("torch._utils", "_rebuild_tensor_v2"), HY_PKL_ROLE_CALLABLE);
    ASSERT_EQ(hy__pkl_global_role("torch", "HalfStorage"), HY_PKL_ROLE_TYPE);
    ASSERT_EQ(hy__pkl_global_role("torch", "float16"), HY_PKL_ROLE_TYPE);
    ASSERT_EQ(hy__pkl_global_role("ultralytics.nn.tasks", "DetectionModel"), HY_PKL_ROLE_OPAQUE);
    ASSERT_EQ(hy__pkl_global_role("ultralytics.nn.modules", "C2f"), HY_PKL_ROLE_OPAQUE);
    ASSERT_EQ(hy__pkl_global_role("ultralytics.yolo.utils", "IterableSimpleNamespace"),
              HY_PKL_ROLE_OPAQUE);
    /* exact pairs only: no module wildcards, no dotted-name walks, no lookalikes */
    static const char *const refused[][2] = {
        {"ultralytics.utils.checks", "check_requirements"},
        {"ultralytics.nn.tasks", "attempt_load_weights"},
        {"ultralytics.nn.tasks", "torch_safe_load"},
        {"torch", "nn.modules.conv.Conv2d"},
        {"collections", "OrderedDict.fromkeys"},
        {"collections.OrderedDict", ""},
        {"torch", "load"},
        {"torch._utils", "_rebuild_device_tensor_from_numpy"},
        {"builtins", "dict"},
        {"builtins", "getattr"},
        {"__builtin__", "set"}, /* only after the Python 2 rename done by the reader */
        {"functools", "partial"},
        {"Torch", "FloatStorage"},
        {"torch ", "FloatStorage"},
        {"os", "system"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(refused); i++)
        if (hy__pkl_global_role(refused[i][0], refused[i][1]))
            HY_FAIL_("%s.%s is allowed", refused[i][0], refused[i][1]);
}

// --- torch ------------------------------------------------------------------------------------

static void check_torch(const uint8_t *d, size_t n) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, d, n, &r));
    ASSERT_EQ(r->kind, HY_PKL_DICT);
    ASSERT_EQ(r->u.dict.n, 5);
    ASSERT_EQ(hy__pkl_storage_count(a), 2);
    hy__pkl_value *s0 = hy__pkl_storage_find(a, "0"), *s1 = hy__pkl_storage_find(a, "1");
    ASSERT_TRUE(s0 && s1 && s0 == hy__pkl_storage_at(a, 0) && s1 == hy__pkl_storage_at(a, 1));
    ASSERT_EQ(s0->u.storage->dtype, HY_DTYPE_F32);
    ASSERT_EQ(s0->u.storage->elem_size, 4);
    ASSERT_EQ(s0->u.storage->numel, 6);
    ASSERT_STREQ(s0->u.storage->location, "cpu");
    ASSERT_STREQ(s0->u.storage->type_name, "FloatStorage");
    ASSERT_EQ(s1->u.storage->dtype, HY_DTYPE_I64);

    v = hy__pkl_dict_get(r, "w");
    ASSERT_EQ(v->kind, HY_PKL_TENSOR);
    const hy__pkl_tensor *t = v->u.tensor;
    ASSERT_TRUE(t->is_parameter && t->requires_grad);
    ASSERT_TRUE(t->storage == s0);
    ASSERT_EQ(t->ndim, 2);
    ASSERT_TRUE(t->shape[0] == 2 && t->shape[1] == 3 && t->stride[0] == 3 && t->stride[1] == 1);
    t = hy__pkl_dict_get(r, "wt")->u.tensor;
    ASSERT_FALSE(t->is_parameter);
    ASSERT_TRUE(t->storage == s0 && t->shape[0] == 3 && t->stride[0] == 1 && t->stride[1] == 3);
    t = hy__pkl_dict_get(r, "row")->u.tensor;
    ASSERT_TRUE(t->offset == 3 && t->ndim == 1 && t->shape[0] == 3);
    t = hy__pkl_dict_get(r, "n")->u.tensor;
    ASSERT_TRUE(t->ndim == 0 && t->storage == s1);
    v = hy__pkl_dict_get(r, "dt");
    ASSERT_EQ(v->kind, HY_PKL_GLOBAL);
    hy_dtype dt;
    ASSERT_TRUE(hy__pkl_torch_dtype(v->u.global.module, v->u.global.name, &dt));
    ASSERT_EQ(dt, HY_DTYPE_F16);
    hy__pkl_arena_free(a);
}
HY_TEST(torch_tensors_protocol2) { check_torch(pv_torch_p2, sizeof pv_torch_p2); }
HY_TEST(torch_tensors_protocol4) { check_torch(pv_torch_p4, sizeof pv_torch_p4); }

HY_TEST(torch_unconvertible_storage_is_recorded) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(load(&a, pv_torch_complex, sizeof pv_torch_complex, &r));
    const hy__pkl_storage *s = hy__pkl_storage_find(a, "0")->u.storage;
    ASSERT_EQ(s->dtype, HY_DTYPE_COUNT);
    ASSERT_EQ(s->elem_size, 8);
    hy__pkl_arena_free(a);
}

HY_TEST(torch_load_from_bytes_refused) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_ERR(load(&a, pv_torch_load_from_bytes, sizeof pv_torch_load_from_bytes, &r),
               HY_ERR_UNSAFE);
    ASSERT_CONTAINS(hy_last_error(), "_load_from_bytes");
    hy__pkl_arena_free(a);
}

HY_TEST(storage_types_and_dtypes) {
    hy_dtype d;
    size_t es;
    ASSERT_TRUE(hy__pkl_storage_type("HalfStorage", &d, &es) && d == HY_DTYPE_F16 && es == 2);
    ASSERT_TRUE(hy__pkl_storage_type("BFloat16Storage", &d, &es) && d == HY_DTYPE_BF16 && es == 2);
    ASSERT_TRUE(hy__pkl_storage_type("LongStorage", &d, &es) && d == HY_DTYPE_I64 && es == 8);
    ASSERT_TRUE(hy__pkl_storage_type("BoolStorage", &d, &es) && d == HY_DTYPE_BOOL && es == 1);
    ASSERT_TRUE(hy__pkl_storage_type("CharStorage", &d, &es) && d == HY_DTYPE_I8 && es == 1);
    ASSERT_FALSE(hy__pkl_storage_type("Storage", &d, &es));
    ASSERT_TRUE(hy__pkl_torch_dtype("torch", "bfloat16", &d) && d == HY_DTYPE_BF16);
    ASSERT_TRUE(hy__pkl_torch_dtype("torch", "long", &d) && d == HY_DTYPE_I64);
    ASSERT_FALSE(hy__pkl_torch_dtype("numpy", "float16", &d));
}

// --- hand-made edge cases ---------------------------------------------------------------------

static hy_status load_str(hy__pkl_arena **a, const char *s, size_t n, hy__pkl_value **out) {
    return load(a, (const uint8_t *)s, n, out);
}
#define LOAD_LIT(a, lit, out) load_str(a, lit, sizeof(lit) - 1, out)

/* Builds a pickle that names module.name in one of four ways: 0 GLOBAL as a plain value,
 * 1 GLOBAL + REDUCE (protocol 2), 2 STACK_GLOBAL + REDUCE (protocol 4), 3 INST (protocol 0). */
static size_t make_global_pickle(uint8_t *b, int form, const char *mod, const char *name) {
    size_t n = 0, lm = strlen(mod), ln = strlen(name);
    if (form == 3) {
        memcpy(b + n, "(X\x01\x00\x00\x00xi", 8), n += 8;
    } else if (form == 2) {
        memcpy(b + n, "\x80\x04\x8c", 3), n += 3;
        b[n++] = (uint8_t)lm;
        memcpy(b + n, mod, lm), n += lm;
        b[n++] = 0x94; /* MEMOIZE */
        b[n++] = 0x8c;
        b[n++] = (uint8_t)ln;
        memcpy(b + n, name, ln), n += ln;
        b[n++] = 0x94;
        b[n++] = 0x93; /* STACK_GLOBAL */
    } else {
        memcpy(b + n, "\x80\x02", 2), n += 2;
        b[n++] = 'c';
    }
    if (form != 2) {
        memcpy(b + n, mod, lm), n += lm;
        b[n++] = '\n';
        memcpy(b + n, name, ln), n += ln;
        b[n++] = '\n';
    }
    if (form == 1 || form == 2) memcpy(b + n, "X\x01\x00\x00\x00x\x85R", 8), n += 8;
    b[n++] = '.';
    return n;
}

/* Every global of the issue and the generated list, in every form: refused, named. */
HY_TEST(unsafe_globals_every_form) {
    uint8_t buf[512];
    int refused = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(pv_unsafe_globals); i++) {
        const char *mod = pv_unsafe_globals[i][0], *name = pv_unsafe_globals[i][1];
        for (int form = 0; form < 4; form++) {
            /* Python 2 names are mapped for protocol < 3 only (form 2 is protocol 4). */
            char want[256];
            snprintf(want, sizeof want, "vec: refusing pickle global '%s.%s' (",
                     strcmp(mod, "__builtin__") || form == 2 ? mod : "builtins", name);
            size_t n = make_global_pickle(buf, form, mod, name);
            hy__pkl_arena *a = NULL;
            hy__pkl_value *r = NULL;
            hy_status st = load(&a, buf, n, &r);
            hy__pkl_arena_free(a);
            if (st != HY_ERR_UNSAFE)
                HY_FAIL_("%s.%s form %d: %s (%s)", mod, name, form, hy_status_name(st),
                         hy_last_error());
            ASSERT_CONTAINS(hy_last_error(), want);
            ASSERT_CONTAINS(hy_last_error(), "not in the allow-list of checkpoint globals");
            refused++;
        }
    }
    printf("  %d unsafe global pickles refused\n", refused);
    /* An allowed global in the same forms loads (the builder is right). */
    uint8_t ok[256];
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r = NULL;
    ASSERT_ERR(load(&a, ok, make_global_pickle(ok, 2, "builtins", "set"), &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "set() argument is a str"); /* reached REDUCE */
    hy__pkl_arena_free(a);
    ASSERT_ERR(load(&a, ok, make_global_pickle(ok, 3, "ultralytics.utils", "IterableSimpleNamespace"), &r),
               HY_ERR_UNSAFE);
    ASSERT_CONTAINS(hy_last_error(), "with arguments"); /* INST reached the call */
    hy__pkl_arena_free(a);
    ASSERT_OK(load(&a, ok, make_global_pickle(ok, 0, "torch", "float16"), &r));
    hy__pkl_arena_free(a);
}

/* Allowed globals used in a way their role does not permit. */
HY_TEST(allowed_globals_misused) {
#define M(lit, who)                                                                                \
    { lit, sizeof(lit) - 1, who }
    static const struct {
        const char *p;
        size_t n;
        const char *global;
    } bad[] = {
        /* BUILD on the class itself would set class attributes */
        M("ctorch.nn.modules.activation\nSiLU\n}X\x01\x00\x00\x00xK\x01sb.",
          "torch.nn.modules.activation.SiLU"),
        /* a TYPE called */
        M("ctorch\nFloatStorage\n)R.", "torch.FloatStorage"),
        M("ctorch\nfloat16\n)R.", "torch.float16"),
        /* APPEND / SETITEM on an object would run its methods */
        M("ctorch.nn.modules.container\nModuleList\n)RK\x01"
          "a.",
          "torch.nn.modules.container.ModuleList"),
        M("ctorch.nn.modules.container\nModuleList\n)RK\x01K\x02s.",
          "torch.nn.modules.container.ModuleList"),
        /* copyreg helpers with arguments, another base, a state */
        M("ccopyreg\n_reconstructor\n(ctorch.nn.modules.activation\nSiLU\nccollections\nOrderedDict\nNtR.",
          "torch.nn.modules.activation.SiLU"),
        M("ccopyreg\n_reconstructor\n(ctorch.nn.modules.activation\nSiLU\nc__builtin__\nobject\nK\x01tR.",
          "torch.nn.modules.activation.SiLU"),
        M("ccopyreg\n__newobj__\n(ctorch.nn.modules.activation\nSiLU\nK\x01tR.",
          "torch.nn.modules.activation.SiLU"),
        M("ccopyreg\n__newobj__\n(ctorch._utils\n_rebuild_tensor_v2\ntR.",
          "torch._utils._rebuild_tensor_v2"),
        /* _rebuild_from_type_v2 applying something that is not a tensor rebuild */
        M("ctorch._tensor\n_rebuild_from_type_v2\n(ccollections\nOrderedDict\nctorch\nTensor\n)}tR.",
          "collections.OrderedDict"),
        /* module classes called with arguments: REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX */
        M("cultralytics.nn.tasks\nDetectionModel\nX\x01\x00\x00\x00x\x85R.",
          "ultralytics.nn.tasks.DetectionModel"),
        M("(K\x01iultralytics.nn.tasks\nDetectionModel\n.", "ultralytics.nn.tasks.DetectionModel"),
        M("(cultralytics.nn.tasks\nDetectionModel\nK\x01o.", "ultralytics.nn.tasks.DetectionModel"),
        M("\x80\x02" "cultralytics.nn.tasks\nDetectionModel\nK\x01\x85\x81.",
          "ultralytics.nn.tasks.DetectionModel"),
        M("\x80\x04" "cultralytics.nn.tasks\nDetectionModel\n)}X\x01\x00\x00\x00kK\x01s\x92.",
          "ultralytics.nn.tasks.DetectionModel"),
        /* NEWOBJ of a function */
        M("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)\x81.", "torch._utils._rebuild_tensor_v2"),
    };
#undef M
    for (size_t i = 0; i < HY_ARRAY_LEN(bad); i++) {
        hy__pkl_arena *a = NULL;
        hy__pkl_value *r = NULL;
        hy_status st = load_str(&a, bad[i].p, bad[i].n, &r);
        hy__pkl_arena_free(a);
        if (st != HY_ERR_UNSAFE)
            HY_FAIL_("case %zu: %s (%s)", i, hy_status_name(st), hy_last_error());
        char want[160];
        snprintf(want, sizeof want, "refusing pickle global '%s' (", bad[i].global);
        ASSERT_CONTAINS(hy_last_error(), want);
    }
    /* The allowed forms of the same: no arguments. */
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r = NULL;
    ASSERT_OK(LOAD_LIT(&a, "(iultralytics.nn.tasks\nDetectionModel\n.", &r));
    ASSERT_TRUE(hy__pkl_is_class(r, "ultralytics.nn.tasks", "DetectionModel"));
    hy__pkl_arena_free(a);
    ASSERT_OK(LOAD_LIT(&a, "ccopyreg\n__newobj__\n(ctorch.nn.modules.activation\nSiLU\ntR.", &r));
    ASSERT_TRUE(hy__pkl_is_class(r, "torch.nn.modules.activation", "SiLU"));
    hy__pkl_arena_free(a);
}

/* Names from the file are quoted safely in the message. */
HY_TEST(refused_global_name_is_escaped) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r = NULL;
    ASSERT_ERR(LOAD_LIT(&a, "\x80\x04\x8c\x04" "a\x1b[b\x8c\x01x\x93.", &r), HY_ERR_UNSAFE);
    ASSERT_CONTAINS(hy_last_error(), "'a\\x1b[b.x'");
    hy__pkl_arena_free(a);
}


HY_TEST(malformed_inputs_fail_cleanly) {
#define C(lit, st, msg)                                                                            \
    { lit, sizeof(lit) - 1, st, msg }
    static const struct {
        const char *p;
        size_t n;
        hy_status want;
        const char *msg;
    } cases[] = {
        C("", HY_ERR_FORMAT, "no STOP"),
        C(".", HY_ERR_FORMAT, "stack underflow"),
        C("a.", HY_ERR_FORMAT, "stack underflow"),
        C("](a.", HY_ERR_FORMAT, "stack underflow"), /* items under a MARK are out of reach */
        C("\xff.", HY_ERR_FORMAT, "unknown opcode 0xff"),
        C("h\x05.", HY_ERR_FORMAT, "memo key 5"),
        C("Nr\xff\xff\xff\x7f.", HY_ERR_FORMAT, "memo index"),
        C("X\xff\xff\xff\x7f", HY_ERR_FORMAT, "truncated"),
        C("T\xff\xff\xff\xff", HY_ERR_FORMAT, "negative"),
        C("\x8e\xff\xff\xff\xff\xff\xff\xff\xff", HY_ERR_FORMAT, "truncated"),
        C("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", HY_ERR_FORMAT, "frame"),
        C("\x80\x09N.", HY_ERR_UNSUPPORTED, "protocol 9"),
        C("t.", HY_ERR_FORMAT, "MARK"),
        C("(K\x01K\x02K\x03"
          "d.",
          HY_ERR_FORMAT, "odd"),
        C("NN\x93.", HY_ERR_FORMAT, "STACK_GLOBAL"),
        C("cos\nsystem", HY_ERR_FORMAT, "truncated"), /* unterminated: no global is made */
        C("NNR.", HY_ERR_FORMAT, "not a global"),
        C("ccollections\nOrderedDict\nNR.", HY_ERR_FORMAT, "not a tuple"),
        C("(K\x01\x85Q.", HY_ERR_FORMAT, "persistent id"),
        C("K\x01Q.", HY_ERR_FORMAT, "persistent id"),
        C("\x97.", HY_ERR_UNSUPPORTED, "out-of-band"),
        C("\x82\x01.", HY_ERR_UNSUPPORTED, "extension"),
        C("I99999999999999999999999\n.", HY_ERR_UNSUPPORTED, "too large"),
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        hy__pkl_arena *a = NULL;
        hy__pkl_value *r = NULL;
        hy_status st = load_str(&a, cases[i].p, cases[i].n, &r);
        hy__pkl_arena_free(a);
        if (st != cases[i].want)
            HY_FAIL_("case %zu: got %s (%s)", i, hy_status_name(st), hy_last_error());
        ASSERT_CONTAINS(hy_last_error(), cases[i].msg);
        ASSERT_TRUE(r == NULL);
    }
}

HY_TEST(storage_pid_validation) {
    /* ('storage', torch.FloatStorage, '0', 'cpu', -1): negative size */
    static const char neg[] = "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                              "0X\x03\x00\x00\x00"
                              "cpuJ\xff\xff\xff\xfftQ.";
    static const char badtype[] = "(X\x07\x00\x00\x00storagectorch\nTensor\nX\x01\x00\x00\x00"
                                  "0X\x03\x00\x00\x00"
                                  "cpuK\x01tQ.";
    static const char view[] = "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                               "0X\x03\x00\x00\x00"
                               "cpuK\x01K\x00tQ.";
    static const char intkey[] =
        "(X\x07\x00\x00\x00storagectorch\nHalfStorage\nK\x07X\x03\x00\x00\x00"
        "cpuK\x02NtQ.";
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_ERR(LOAD_LIT(&a, neg, &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "non-negative");
    hy__pkl_arena_free(a);
    ASSERT_ERR(LOAD_LIT(&a, badtype, &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "storage type");
    hy__pkl_arena_free(a);
    ASSERT_ERR(LOAD_LIT(&a, view, &r), HY_ERR_UNSUPPORTED);
    hy__pkl_arena_free(a);
    ASSERT_OK(LOAD_LIT(&a, intkey, &r)); /* legacy 6-tuple with None view, integer key */
    ASSERT_EQ(r->kind, HY_PKL_STORAGE);
    ASSERT_STREQ(r->u.storage->key, "7");
    ASSERT_EQ(r->u.storage->numel, 2);
    hy__pkl_arena_free(a);
}

HY_TEST(tensor_args_validation) {
    /* _rebuild_tensor_v2(storage, -1, (2,), (1,), False, None) */
    static const char negoff[] =
        "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
        "0X\x03\x00\x00\x00"
        "cpuK\x02tQJ\xff\xff\xff\xffK\x02\x85K\x01\x85\x89NtR.";
    static const char baddims[] =
        "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
        "0X\x03\x00\x00\x00"
        "cpuK\x02tQK\x00K\x02K\x01\x86K\x01\x85\x89NtR.";
    static const char notstorage[] =
        "ctorch._utils\n_rebuild_tensor_v2\n(NK\x00K\x02\x85K\x01\x85\x89NtR.";
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_ERR(LOAD_LIT(&a, negoff, &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "offset");
    hy__pkl_arena_free(a);
    ASSERT_ERR(LOAD_LIT(&a, baddims, &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "equal length");
    hy__pkl_arena_free(a);
    ASSERT_ERR(LOAD_LIT(&a, notstorage, &r), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "not a storage");
    hy__pkl_arena_free(a);
}

HY_TEST(dict_duplicate_keys_keep_first_position) {
    /* {a: 1, b: 2, a: 3} -> {a: 3, b: 2}, like Python. */
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(LOAD_LIT(&a,
                       "}(X\x01\x00\x00\x00"
                       "aK\x01X\x01\x00\x00\x00"
                       "bK\x02X\x01\x00\x00\x00"
                       "aK\x03u.",
                       &r));
    ASSERT_EQ(r->u.dict.n, 2);
    ASSERT_STREQ(sval(r->u.dict.keys[0]), "a");
    ASSERT_EQ(ival(r->u.dict.vals[0]), 3);
    hy__pkl_arena_free(a);
    /* Hashed path: 60 int keys i % 20 (True == 1 as a key, as in Python), values i. */
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = '}';
    buf[n++] = '(';
    for (int i = 0; i < 60; i++) {
        if (i == 41) {
            buf[n++] = 0x88; /* NEWTRUE as the key for 1 */
        } else {
            buf[n++] = 'K';
            buf[n++] = (uint8_t)(i % 20);
        }
        buf[n++] = 'K';
        buf[n++] = (uint8_t)i;
    }
    buf[n++] = 'u';
    buf[n++] = '.';
    ASSERT_OK(load(&a, buf, n, &r));
    ASSERT_EQ(r->u.dict.n, 20);
    for (int k = 0; k < 20; k++) {
        ASSERT_EQ(ival(r->u.dict.keys[k]), k);
        ASSERT_EQ(ival(hy__pkl_dict_get_int(r, k)), 40 + k);
    }
    hy__pkl_arena_free(a);
}

HY_TEST(deep_nesting_and_cycles) {
    /* 100000 nested lists built iteratively: no recursion in the reader. */
    enum { DEPTH = 100000 };
    uint8_t *buf = malloc(2 * DEPTH + 2);
    size_t n = 0;
    for (int i = 0; i < DEPTH; i++) buf[n++] = ']';
    for (int i = 0; i < DEPTH - 1; i++) buf[n++] = 'a';
    buf[n++] = '.';
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    hy_status st = load(&a, buf, n, &r);
    free(buf);
    ASSERT_OK(st);
    int depth = 1;
    for (const hy__pkl_value *v = r; v->u.seq.n; v = v->u.seq.items[0]) depth++;
    ASSERT_EQ(depth, DEPTH);
    hy__pkl_arena_free(a);
    /* A list that contains itself. */
    ASSERT_OK(LOAD_LIT(&a,
                       "]q\x00h\x00"
                       "a.",
                       &r));
    ASSERT_TRUE(r->u.seq.n == 1 && r->u.seq.items[0] == r);
    hy__pkl_arena_free(a);
    /* 200000 MARKs then POP_MARKs. */
    buf = malloc(400002);
    n = 0;
    for (int i = 0; i < 200000; i++) buf[n++] = '(';
    for (int i = 0; i < 200000; i++) buf[n++] = '1';
    buf[n++] = 'N';
    buf[n++] = '.';
    st = load(&a, buf, n, &r);
    free(buf);
    ASSERT_OK(st);
    ASSERT_EQ(r->kind, HY_PKL_NONE);
    hy__pkl_arena_free(a);
}

HY_TEST(consumed_and_trailing_bytes) {
    static const char two[] = "\x80\x02K\x05.\x80\x02X\x02\x00\x00\x00hi.garbage";
    hy__pkl_arena *a;
    hy__pkl_value *r;
    size_t used = 0;
    ASSERT_OK(hy__pkl_arena_create(&a));
    ASSERT_OK(hy__pkl_load(a, (const uint8_t *)two, sizeof two - 1, "two", &used, &r));
    ASSERT_EQ(used, 5);
    ASSERT_EQ(ival(r), 5);
    size_t used2 = 0;
    ASSERT_OK(
        hy__pkl_load(a, (const uint8_t *)two + used, sizeof two - 1 - used, "two", &used2, &r));
    ASSERT_EQ(used2, 10);
    ASSERT_STREQ(sval(r), "hi");
    hy__pkl_arena_free(a);
    hy__pkl_arena_free(NULL);
}

HY_TEST(build_on_non_objects) {
    /* OrderedDict() with BUILD({'_metadata': {}}) as torch state_dicts have: accepted. */
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(LOAD_LIT(&a, "ccollections\nOrderedDict\n)R}X\t\x00\x00\x00_metadata}sbN\x86.",
                       &r));
    ASSERT_EQ(r->kind, HY_PKL_TUPLE);
    ASSERT_EQ(r->u.seq.items[0]->kind, HY_PKL_DICT);
    ASSERT_EQ(r->u.seq.items[0]->u.dict.n, 0);
    hy__pkl_arena_free(a);
    a = NULL;
    /* Python applies BUILD to lists / sets / dicts / tensors (or fails): refused, never
     * silently ignored. */
    static const char *const bad[] = {
        "]Nb.",    /* list */
        "\x8fNb.", /* set */
        "}}b.",    /* plain dict */
        /* OrderedDict with a state holding a global (not plain data) */
        "ccollections\nOrderedDict\n)R}\x8c\x01xccollections\nOrderedDict\nsb.",
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(bad); i++) {
        ASSERT_ERR(load(&a, (const uint8_t *)bad[i], strlen(bad[i]), &r), HY_ERR_UNSAFE);
        ASSERT_CONTAINS(hy_last_error(), "BUILD on");
        hy__pkl_arena_free(a);
        a = NULL;
    }
}

// --- every prefix, random corruption ----------------------------------------------------------

HY_TEST(every_prefix_fails_cleanly) {
    int64_t live0 = hy__alloc_live();
    for (size_t k = 0; k < HY_ARRAY_LEN(vectors); k++) {
        const vec *v = &vectors[k];
        if (v->unsafe) continue;
        for (size_t n = 0; n < v->len; n++) {
            hy__pkl_arena *a = NULL;
            hy__pkl_value *r = NULL;
            hy_status st = load(&a, v->data, n, &r);
            hy__pkl_arena_free(a);
            if (st != HY_ERR_FORMAT)
                HY_FAIL_("%s prefix %zu: %s (%s)", v->name, n, hy_status_name(st), hy_last_error());
        }
    }
    ASSERT_EQ(hy__alloc_live(), live0);
}

HY_TEST(random_corruption_never_crashes) {
    int64_t live0 = hy__alloc_live();
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint8_t *buf = malloc(sizeof pv_bigdict_p2);
    int counts[2] = {0, 0};
    for (size_t k = 0; k < HY_ARRAY_LEN(vectors); k++) {
        const vec *v = &vectors[k];
        for (int it = 0; it < 400; it++) {
            memcpy(buf, v->data, v->len);
            int flips = 1 + (int)(rng % 3);
            for (int f = 0; f < flips; f++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                buf[(rng >> 33) % v->len] ^= (uint8_t)(1u << ((rng >> 29) & 7));
            }
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            hy__pkl_arena *a = NULL;
            hy__pkl_value *r = NULL;
            hy_status st = load(&a, buf, v->len, &r);
            counts[st == HY_OK]++;
            hy__pkl_arena_free(a);
        }
    }
    free(buf);
    printf("  corrupted pickles: %d loaded, %d refused\n", counts[1], counts[0]);
    ASSERT_EQ(hy__alloc_live(), live0);
}

// --- PyTorch-parity holes (issue 14 review) ---------------------------------------------------

typedef struct parity_case {
    const char *p;
    size_t n;
    int fmt;          /* HY_PKL_FMT_* */
    hy_status want;
    const char *msg;  /* substring of the error, or NULL */
} parity_case;

#define PC(lit, fmt, want, msg) {lit, sizeof(lit) - 1, fmt, want, msg}
#define ANY HY_PKL_FMT_ANY
/* ('storage', torch.FloatStorage, '0', 'cpu', 1) as a persistent id */
#define PID "(\x8c\x07storagectorch\nFloatStorage\n\x8c\x01" "0\x8c\x03" "cpuK\x01tQ"
#define PID_INT "(\x8c\x07storagectorch\nFloatStorage\nK\x00\x8c\x03" "cpuK\x01tQ"
#define PID6 "(\x8c\x07storagectorch\nFloatStorage\n\x8c\x01" "0\x8c\x03" "cpuK\x01NtQ"
/* _rebuild_tensor_v2(PID, 0, (1,), (1,), False, <hooks>[, <metadata>]) */
#define TV2 "ctorch._utils\n_rebuild_tensor_v2\n(" PID "K\x00(K\x01t(K\x01t\x89"
#define OD "ccollections\nOrderedDict\n)R"
#define SILU "\x80\x02" "ctorch.nn.modules.activation\nSiLU\n)\x81"

static void run_parity(const parity_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hy__pkl_arena *a = NULL;
        hy__pkl_value *r = NULL;
        ASSERT_OK(hy__pkl_arena_create(&a));
        hy__pkl_arena_set_format(a, c[i].fmt);
        hy_status st = hy__pkl_load(a, (const uint8_t *)c[i].p, c[i].n, "vec", NULL, &r);
        hy__pkl_arena_free(a);
        if (st != c[i].want)
            HY_FAIL_("case %zu: %s, expected %s (%s)", i, hy_status_name(st),
                     hy_status_name(c[i].want), st ? hy_last_error() : "loaded");
        if (c[i].msg) ASSERT_CONTAINS(hy_last_error(), c[i].msg);
    }
}

/* REDUCE on a module class runs cls.__init__ in Python (DetectionModel() reads
 * yolov8n.yaml from the working directory; YOLOv5 Model() eval()s its strings). */
HY_TEST(opaque_class_reduce_refused) {
    static const parity_case c[] = {
        PC("\x80\x02" "cultralytics.nn.tasks\nDetectionModel\n)R.", ANY, HY_ERR_UNSAFE,
           "REDUCE would run its __init__"),
        PC("\x80\x02" "cmodels.yolo\nModel\n)R.", ANY, HY_ERR_UNSAFE, "REDUCE would run"),
        PC("(cultralytics.nn.tasks\nDetectionModel\no.", ANY, HY_OK, NULL),  /* OBJ: __new__ */
        PC("(iultralytics.nn.tasks\nDetectionModel\n.", ANY, HY_OK, NULL),   /* INST: __new__ */
        PC("\x80\x02" "cultralytics.nn.tasks\nDetectionModel\n)\x81.", ANY, HY_OK, NULL),
        PC("\x80\x02" "ccopyreg\n__newobj__\ncultralytics.nn.tasks\nDetectionModel\n\x85R.", ANY,
           HY_OK, NULL),
        /* SimpleNamespace() without arguments: allowed (both module paths) */
        PC("\x80\x02" "cultralytics.utils\nIterableSimpleNamespace\n)R}b.", ANY, HY_OK, NULL),
        PC("\x80\x02" "cultralytics.yolo.utils\nIterableSimpleNamespace\n)R}b.", ANY, HY_OK, NULL),
    };
    run_parity(c, HY_ARRAY_LEN(c));
}

/* Values PyTorch installs, applies or calls after unpickling: hooks, tensor metadata,
 * parameter / subclass state, module attributes that override what nn.Module calls. */
HY_TEST(applied_values_refused) {
    static const parity_case c[] = {
        PC(TV2 "NtR.", ANY, HY_OK, NULL),
        PC(TV2 OD "tR.", ANY, HY_OK, NULL),
        PC(TV2 "}K\x01K\x01stR.", ANY, HY_ERR_UNSAFE, "backward hooks must be empty"),
        PC(TV2 "N}\x8c\x03neg\x89stR.", ANY, HY_OK, NULL),
        PC(TV2 "N}\x8c\x03neg\x88stR.", ANY, HY_ERR_UNSUPPORTED, "tensor metadata"),
        PC(TV2 "N}\x8c\x03negK\x01stR.", ANY, HY_ERR_UNSUPPORTED, "tensor metadata"),
        PC("ctorch._utils\n_rebuild_parameter\n(" TV2 "NtR\x88" OD "tR.", ANY, HY_OK, NULL),
        PC("ctorch._utils\n_rebuild_parameter\n(" TV2 "NtR\x88}K\x01K\x01stR.", ANY,
           HY_ERR_UNSAFE, "backward hooks must be empty"),
        PC("ctorch._utils\n_rebuild_parameter_with_state\n(" TV2 "NtR\x88N}tR.", ANY, HY_OK, NULL),
        PC("ctorch._utils\n_rebuild_parameter_with_state\n(" TV2 "NtR\x88N}\x8c\x01" "aK\x01stR.",
           ANY, HY_ERR_UNSAFE, "non-empty state"),
        PC("ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor_v2\nctorch\n"
           "Tensor\n(" PID "K\x00(K\x01t(K\x01t\x89Nt}\x8c\x01" "aK\x01stR.",
           ANY, HY_ERR_UNSAFE, "non-empty state"),
        /* module BUILD state */
        PC(SILU "}\x8c\x07" "inplace\x89sb.", ANY, HY_OK, NULL),
        PC(SILU "}\x8c\x0e_forward_hooks" OD "sb.", ANY, HY_OK, NULL),
        PC(SILU "}\x8c\x0e_forward_hooks}K\x01K\x02ssb.", ANY, HY_ERR_UNSAFE, "non-empty hooks"),
        PC(SILU "}\x8c\x07" "forwardNsb.", ANY, HY_ERR_UNSAFE, "overrides a method"),
        PC(SILU "}\x8c\x0c__setstate__Nsb.", ANY, HY_ERR_UNSAFE, "overrides a method"),
        PC(SILU "}\x8c\x01xctorch\nfloat16\nsb.", ANY, HY_ERR_UNSAFE, "stored as data"),
        PC(SILU "}\x8c\x01x]ctorch\nfloat16\nasb.", ANY, HY_ERR_UNSAFE, "stored as data"),
        PC(SILU "(}}tb.", ANY, HY_ERR_UNSAFE, "BUILD state is not a dict"),
        /* BUILD on what Python would apply it to */
        PC(TV2 "NtR}b.", ANY, HY_ERR_UNSAFE, "BUILD on a tensor"),
        PC(PID "}b.", ANY, HY_ERR_UNSAFE, "BUILD on a storage"),
    };
    run_parity(c, HY_ARRAY_LEN(c));
}

/* Persistent ids as PyTorch's loader of each format reads them. */
HY_TEST(persistent_ids_per_format) {
    enum { ZIP = HY_PKL_FMT_ZIP, LEG = HY_PKL_FMT_LEGACY };
    static const parity_case c[] = {
        PC(PID ".", ZIP, HY_OK, NULL),
        PC(PID6 ".", ZIP, HY_ERR_FORMAT, "expected 5"),
        PC(PID ".", LEG, HY_ERR_FORMAT, "expected 6"),
        PC(PID6 ".", LEG, HY_OK, NULL),
        PC("(\x8c\x06modulecultralytics.nn.tasks\nDetectionModel\n\x8c\x00\x8c\x00tQ.", ZIP,
           HY_ERR_FORMAT, "'module' persistent id in a zip"),
        PC("(\x8c\x06modulecultralytics.nn.tasks\nDetectionModel\n\x8c\x00\x8c\x00tQ.", LEG, HY_OK,
           NULL),
        PC("(\x8c\x06modulecultralytics.nn.tasks\nDetectionModel\n\x8c\x01x\x8c\x01ytQ.", LEG,
           HY_ERR_UNSUPPORTED, "with source code"),
        /* integer key 0 and string key "0": two storages to PyTorch, one record */
        PC("\x80\x02(" PID_INT PID "t.", ANY, HY_ERR_FORMAT, "both as an int and a string"),
        PC("\x80\x02(" PID_INT PID_INT "t.", ANY, HY_OK, NULL),
    };
    run_parity(c, HY_ARRAY_LEN(c));
}

/* Python 2 names are mapped only below protocol 3; 'exceptions' never maps to builtins.
 * Text integers are read by Python with int(s, 0): leading zeros differ from base 10. */
HY_TEST(python2_names_and_text_ints) {
    static const parity_case c[] = {
        PC("c__builtin__\nset\n)R.", ANY, HY_OK, NULL),
        PC("\x80\x02" "c__builtin__\nset\n)R.", ANY, HY_OK, NULL),
        PC("\x80\x03" "c__builtin__\nset\n)R.", ANY, HY_ERR_UNSAFE, "'__builtin__.set'"),
        PC("\x80\x04" "c__builtin__\nset\n)R.", ANY, HY_ERR_UNSAFE, "'__builtin__.set'"),
        PC("\x80\x02" "cexceptions\nset\n)R.", ANY, HY_ERR_UNSAFE, "'exceptions.set'"),
        PC("I10\n.", ANY, HY_OK, NULL),
        PC("I0\n.", ANY, HY_OK, NULL),
        PC("I01\n.", ANY, HY_OK, NULL), /* True */
        PC("I010\n.", ANY, HY_ERR_UNSUPPORTED, "leading zero"),
        PC("I-010\n.", ANY, HY_ERR_UNSUPPORTED, "leading zero"),
        PC("L010L\n.", ANY, HY_ERR_UNSUPPORTED, "leading zero"),
        PC("I0x10\n.", ANY, HY_ERR_UNSUPPORTED, NULL),
        PC("I1_0\n.", ANY, HY_ERR_UNSUPPORTED, NULL),
    };
    run_parity(c, HY_ARRAY_LEN(c));
}

HY_TEST_MAIN()
