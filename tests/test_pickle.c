/* Safe pickle reader: values from CPython-written pickles (tests/fixtures/pickle_vectors.h,
 * made by gen_pickle_vectors.py), the denylist, torch persistent ids, and hostile input. */
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
    V(obj_p1, 0),
    V(obj_p2, 0),
    V(obj_p4, 0),
    V(newobj_ex_p4, 0),
    V(containers_p2, 0),
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
    V(torch_load_from_bytes, 2),
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
    v = hy__pkl_dict_get(r, "bytes");
    if (proto <
        3) { /* protocol 2 has no bytes opcode: _codecs.encode('xy', 'latin1') stays opaque */
        ASSERT_EQ(v->kind, HY_PKL_OBJECT);
        ASSERT_TRUE(hy__pkl_is_class(v, "_codecs", "encode"));
        ASSERT_STREQ(sval(v->u.obj.args->u.seq.items[0]), "xy");
    } else {
        ASSERT_EQ(v->kind, HY_PKL_BYTES);
        ASSERT_EQ(v->u.str.len, 2);
        ASSERT_STREQ(sval(v), "xy");
    }
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

static void check_obj(const uint8_t *d, size_t n) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, d, n, &r));
    v = hy__pkl_dict_get(r, "foo");
    ASSERT_TRUE(v && v->kind == HY_PKL_OBJECT);
    ASSERT_TRUE(hy__pkl_is_class(v, "__main__", "Foo"));
    ASSERT_TRUE(v->u.obj.state && v->u.obj.state->kind == HY_PKL_DICT);
    ASSERT_EQ(ival(hy__pkl_dict_get(v->u.obj.state, "x")), 1);
    ASSERT_STREQ(sval(hy__pkl_dict_get(v->u.obj.state, "name")), "foo");
    ASSERT_TRUE(hy__pkl_dict_get(r, "again") == v);
    hy__pkl_arena_free(a);
}
HY_TEST(object_protocol1_reconstructor) { check_obj(pv_obj_p1, sizeof pv_obj_p1); }
HY_TEST(object_protocol2_newobj) { check_obj(pv_obj_p2, sizeof pv_obj_p2); }
HY_TEST(object_protocol4_stack_global) { check_obj(pv_obj_p4, sizeof pv_obj_p4); }

HY_TEST(newobj_ex) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(load(&a, pv_newobj_ex_p4, sizeof pv_newobj_ex_p4, &r));
    ASSERT_TRUE(hy__pkl_is_class(r, "__main__", "WithNewargsEx"));
    ASSERT_EQ(r->u.obj.args->u.seq.n, 2);
    ASSERT_EQ(ival(r->u.obj.args->u.seq.items[1]), 2);
    ASSERT_EQ(ival(hy__pkl_dict_get(r->u.obj.kwargs, "k")), 3);
    ASSERT_EQ(ival(hy__pkl_dict_get(r->u.obj.state, "y")), 2);
    hy__pkl_arena_free(a);
}

HY_TEST(containers_ordered_default_subclasses) {
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r, *v;
    ASSERT_OK(load(&a, pv_containers_p2, sizeof pv_containers_p2, &r));
    v = hy__pkl_dict_get(r, "od"); /* OrderedDict keeps insertion order z, a */
    ASSERT_TRUE(v && v->kind == HY_PKL_DICT && v->u.dict.n == 2);
    ASSERT_STREQ(sval(v->u.dict.keys[0]), "z");
    ASSERT_STREQ(sval(v->u.dict.keys[1]), "a");
    v = hy__pkl_dict_get(r, "dd"); /* defaultdict(list): opaque, its items recorded */
    ASSERT_TRUE(hy__pkl_is_class(v, "collections", "defaultdict"));
    ASSERT_TRUE(hy__pkl_is_class(v->u.obj.args->u.seq.items[0], "builtins", "list"));
    ASSERT_EQ(hy__pkl_dict_get(v->u.obj.dictitems, "k")->kind, HY_PKL_LIST);
    v = hy__pkl_dict_get(r, "md");
    ASSERT_TRUE(hy__pkl_is_class(v, "__main__", "MyDict"));
    ASSERT_EQ(ival(hy__pkl_dict_get(v->u.obj.dictitems, "q")), 1);
    v = hy__pkl_dict_get(r, "ml");
    ASSERT_TRUE(hy__pkl_is_class(v, "__main__", "MyList"));
    ASSERT_EQ(v->u.obj.items->u.seq.n, 2);
    ASSERT_EQ(ival(v->u.obj.items->u.seq.items[1]), 2);
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
    snprintf(want, sizeof want, "refusing pickle global '%s' (can execute code)", global);
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

HY_TEST(denylist_table) {
    ASSERT_TRUE(hy__pkl_global_unsafe("os", "system"));
    ASSERT_TRUE(hy__pkl_global_unsafe("os.path", "join"));
    ASSERT_TRUE(hy__pkl_global_unsafe("nt", "system"));
    ASSERT_TRUE(hy__pkl_global_unsafe("subprocess", "check_output"));
    ASSERT_TRUE(hy__pkl_global_unsafe("builtins", "exec"));
    ASSERT_TRUE(hy__pkl_global_unsafe("builtins", "__import__"));
    ASSERT_TRUE(hy__pkl_global_unsafe("importlib.machinery", "SourceFileLoader"));
    ASSERT_TRUE(hy__pkl_global_unsafe("runpy", "run_path"));
    ASSERT_TRUE(hy__pkl_global_unsafe("pickle", "loads"));
    ASSERT_TRUE(hy__pkl_global_unsafe("ctypes", "CDLL"));
    ASSERT_TRUE(hy__pkl_global_unsafe("torch", "load"));
    ASSERT_TRUE(hy__pkl_global_unsafe("numpy.testing._private.utils", "runstring"));
    ASSERT_FALSE(hy__pkl_global_unsafe("osx", "y"));
    ASSERT_FALSE(hy__pkl_global_unsafe("collections", "OrderedDict"));
    ASSERT_FALSE(hy__pkl_global_unsafe("builtins", "set"));
    ASSERT_FALSE(hy__pkl_global_unsafe("_codecs", "encode"));
    ASSERT_FALSE(hy__pkl_global_unsafe("torch._utils", "_rebuild_tensor_v2"));
    ASSERT_FALSE(hy__pkl_global_unsafe("torch", "HalfStorage"));
    ASSERT_FALSE(hy__pkl_global_unsafe("ultralytics.nn.tasks", "DetectionModel"));
    ASSERT_FALSE(hy__pkl_global_unsafe("copyreg", "__newobj__"));
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
               HY_ERR_UNSUPPORTED);
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

HY_TEST(build_on_non_objects_is_ignored) {
    /* OrderedDict() with BUILD({'_metadata': {}}) as torch state_dicts have; BUILD on a list. */
    hy__pkl_arena *a = NULL;
    hy__pkl_value *r;
    ASSERT_OK(
        LOAD_LIT(&a, "ccollections\nOrderedDict\n)R}X\t\x00\x00\x00_metadata}sb]Nb\x86.", &r));
    ASSERT_EQ(r->kind, HY_PKL_TUPLE);
    ASSERT_EQ(r->u.seq.items[0]->kind, HY_PKL_DICT);
    ASSERT_EQ(r->u.seq.items[0]->u.dict.n, 0);
    hy__pkl_arena_free(a);
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

HY_TEST_MAIN()
