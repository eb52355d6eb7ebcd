/* ONNX reader: protobuf wire format, the two real YOLOv8n exports (fp32 and onnxruntime
 * dynamic int8), values cross-checked against the .pt checkpoint folded here by hand, and
 * hand-encoded tiny models for recognition, refusals, truncation and byte-flip fuzzing. */
#include <stdint.h>

#include "hy_test.h"
#include "io/onnx.h"
#include "io/protobuf.h"
#include "io/pt.h"

// --- a tiny protobuf writer (test-side, independent of the reader) ---------------------

typedef struct pbw {
    uint8_t *d;
    size_t n, cap;
} pbw;

static void pw_bytes(pbw *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->d = realloc(w->d, w->cap);
        if (!w->d) abort();
    }
    if (n) memcpy(w->d + w->n, p, n);
    w->n += n;
}
static void pw_varint(pbw *w, uint64_t v) {
    uint8_t b[10];
    int k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    pw_bytes(w, b, (size_t)k);
}
static void pw_tag(pbw *w, unsigned field, int wire) { pw_varint(w, (uint64_t)field << 3 | (unsigned)wire); }
static void pw_int(pbw *w, unsigned field, int64_t v) {
    pw_tag(w, field, 0);
    pw_varint(w, (uint64_t)v);
}
static void pw_len(pbw *w, unsigned field, const void *p, size_t n) {
    pw_tag(w, field, 2);
    pw_varint(w, n);
    pw_bytes(w, p, n);
}
static void pw_str(pbw *w, unsigned field, const char *s) { pw_len(w, field, s, strlen(s)); }
static void pw_msg(pbw *w, unsigned field, pbw *sub) { /* appends and frees sub */
    pw_len(w, field, sub->d, sub->n);
    free(sub->d);
    memset(sub, 0, sizeof *sub);
}
static void pw_f32(pbw *w, unsigned field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pw_tag(w, field, 5);
    pw_bytes(w, b, 4);
}
static void pw_packed_f32(pbw *w, unsigned field, const float *x, size_t n) {
    pbw p = {0};
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        pw_bytes(&p, b, 4);
    }
    pw_msg(w, field, &p);
}
static void pw_packed_varints(pbw *w, unsigned field, const int64_t *x, size_t n) {
    pbw p = {0};
    for (size_t i = 0; i < n; i++) pw_varint(&p, (uint64_t)x[i]);
    pw_msg(w, field, &p);
}

// ONNX messages (field numbers from onnx.proto).
enum { T_FLOAT = 1, T_UINT8 = 2, T_INT8 = 3, T_INT64 = 7 };

/* TensorProto with raw_data. packed_dims selects the dims encoding. */
static void tensor_raw(pbw *g, const char *name, int dtype, const int64_t *dims, int nd,
                       const void *raw, size_t raw_len, int packed_dims) {
    pbw t = {0};
    if (packed_dims) pw_packed_varints(&t, 1, dims, (size_t)nd);
    else
        for (int i = 0; i < nd; i++) pw_int(&t, 1, dims[i]);
    pw_int(&t, 2, dtype);
    pw_str(&t, 8, name);
    pw_len(&t, 9, raw, raw_len);
    pw_msg(g, 5, &t);
}
/* TensorProto with float_data (packed or one field per value). */
static void tensor_floats(pbw *g, const char *name, const int64_t *dims, int nd, const float *x,
                          size_t n, int packed) {
    pbw t = {0};
    for (int i = 0; i < nd; i++) pw_int(&t, 1, dims[i]);
    pw_int(&t, 2, T_FLOAT);
    if (packed) pw_packed_f32(&t, 4, x, n);
    else
        for (size_t i = 0; i < n; i++) pw_f32(&t, 4, x[i]);
    pw_str(&t, 8, name);
    pw_msg(g, 5, &t);
}
/* TensorProto with int32_data (int8/uint8 values). */
static void tensor_int32(pbw *g, const char *name, int dtype, const int64_t *dims, int nd,
                         const int64_t *x, size_t n) {
    pbw t = {0};
    for (int i = 0; i < nd; i++) pw_int(&t, 1, dims[i]);
    pw_int(&t, 2, dtype);
    pw_packed_varints(&t, 5, x, n);
    pw_str(&t, 8, name);
    pw_msg(g, 5, &t);
}

static void node(pbw *g, const char *op, const char *const *in, int nin, const char *const *out,
                 int nout, int64_t to_attr) {
    pbw n = {0};
    for (int i = 0; i < nin; i++) pw_str(&n, 1, in[i]);
    for (int i = 0; i < nout; i++) pw_str(&n, 2, out[i]);
    pw_str(&n, 3, op);
    pw_str(&n, 4, op);
    if (to_attr) { /* Cast "to" / Conv "group" style INT attribute */
        pbw a = {0};
        pw_str(&a, 1, !strcmp(op, "Cast") ? "to" : "group");
        pw_int(&a, 3, to_attr);
        pw_int(&a, 20, 2);
        pw_msg(&n, 5, &a);
    }
    if (!strcmp(op, "Conv")) { /* INTS attribute, packed */
        pbw a = {0};
        int64_t k[2] = {1, 1};
        pw_str(&a, 1, "kernel_shape");
        pw_packed_varints(&a, 8, k, 2);
        pw_int(&a, 20, 7);
        pw_msg(&n, 5, &a);
    }
    pw_msg(g, 1, &n);
}

static void value_info(pbw *g, unsigned field, const char *name, const int64_t *dims, int nd,
                       const char *sym0) {
    pbw shape = {0};
    for (int i = 0; i < nd; i++) {
        pbw d = {0};
        if (i == 0 && sym0) pw_str(&d, 2, sym0);
        else pw_int(&d, 1, dims[i]);
        pw_msg(&shape, 1, &d);
    }
    pbw tt = {0}, tp = {0}, vi = {0};
    pw_int(&tt, 1, T_FLOAT);
    pw_msg(&tt, 2, &shape);
    pw_msg(&tp, 1, &tt);
    pw_str(&vi, 1, name);
    pw_msg(&vi, 2, &tp);
    pw_msg(g, field, &vi);
}

static void meta(pbw *m, const char *k, const char *v) {
    pbw e = {0};
    pw_str(&e, 1, k);
    pw_str(&e, 2, v);
    pw_msg(m, 14, &e);
}

typedef struct tiny_opts {
    int quant;            /* 0: Conv f32; 1: ConvInteger int8 per-channel, scale traced through
                             Cast/Mul (custom scale name); 2: ConvInteger uint8 per-tensor, no
                             Cast/Mul chain (scale found by name) */
    const char *extra_op; /* an additional node op (e.g. "LSTM") */
    int external;         /* mark the bias as external data */
    const char *names;    /* metadata names (NULL: default) */
    const char *task;
    const char *input_name;
    const char *weight_name;
    int64_t out_ch;       /* output dim 1 */
    int with_dfl;
    const int64_t *w_dims; /* dims declared for the first f32 weight (its data stays 6 floats) */
    int shared_convs;      /* extra Conv nodes all using one 4 MB weight */
    int extra_nodes;       /* extra Identity nodes */
} tiny_opts;

/* Known values of the tiny model (independent of the reader). */
static const float k_w0[6] = {0.5f, -1.0f, 2.0f, 0.25f, -0.125f, 3.0f};  /* (2,3,1,1) */
static const float k_b0[2] = {0.75f, -0.5f};
static const float k_w1[8] = {1, 2, 3, 4, 5, 6, 7, 8};                    /* (4,2,1,1) */
static const float k_b1[4] = {-1, -2, -3, -4};
static const int64_t k_q0[6] = {-128, 5, 127, 0, 1, -1};                 /* int8 (2,3,1,1) */
static const int64_t k_zp0[2] = {3, -2};
static const float k_s0[2] = {0.5f, 0.25f};
static const uint8_t k_u0[6] = {0, 17, 255, 128, 129, 127};             /* uint8 (2,3,1,1) */

static pbw build_tiny(const tiny_opts *o) {
    pbw g = {0};
    const char *wn = o->weight_name ? o->weight_name : "model.0.conv.weight";
    char wq[128], wz[128], ws[128], bn[128];
    snprintf(wq, sizeof wq, "%s_quantized", wn);
    snprintf(wz, sizeof wz, "%s_zero_point", wn);
    snprintf(ws, sizeof ws, "%s_scale", wn);
    snprintf(bn, sizeof bn, "model.0.conv.bias");
    int64_t d4[4] = {2, 3, 1, 1}, d1[1] = {2}, d41[4] = {4, 2, 1, 1}, d4b[1] = {4};
    // nodes
    if (o->quant == 0) {
        const char *in[3] = {"images", wn, bn}, *out[1] = {"x1"};
        node(&g, "Conv", in, 3, out, 1, 0);
    } else {
        const char *dq_in[1] = {"images"}, *dq_out[3] = {"xq", "xs", "xz"};
        node(&g, "DynamicQuantizeLinear", dq_in, 1, dq_out, 3, 0);
        const char *ci_in[4] = {"xq", wq, "xz", wz}, *ci_out[1] = {"ci"};
        node(&g, "ConvInteger", ci_in, 4, ci_out, 1, 0);
        if (o->quant == 1) {
            const char *c_in[1] = {"ci"}, *c_out[1] = {"cf"};
            node(&g, "Cast", c_in, 1, c_out, 1, T_FLOAT);
            const char *m_in[2] = {"xs", "w0_custom_scale"}, *m_out[1] = {"sm"};
            node(&g, "Mul", m_in, 2, m_out, 1, 0);
            const char *m2_in[2] = {"cf", "sm"}, *m2_out[1] = {"y"};
            node(&g, "Mul", m2_in, 2, m2_out, 1, 0);
        } else {
            const char *c_in[1] = {"ci"}, *c_out[1] = {"y"};
            node(&g, "Cast", c_in, 1, c_out, 1, T_FLOAT);
        }
        const char *a_in[2] = {"y", bn}, *a_out[1] = {"x1"};
        node(&g, "Add", a_in, 2, a_out, 1, 0);
    }
    const char *s_in[1] = {"x1"}, *s_out[1] = {"x2"};
    node(&g, "Sigmoid", s_in, 1, s_out, 1, 0);
    if (o->extra_op) {
        const char *e_in[1] = {"x2"}, *e_out[1] = {"x2b"};
        node(&g, o->extra_op, e_in, 1, e_out, 1, 0);
    }
    const char *m_in[2] = {"x1", "x2"}, *m_out[1] = {"x3"};
    node(&g, "Mul", m_in, 2, m_out, 1, 0);
    const char *c_in[3] = {"x3", "model.22.cv2.0.2.weight", "model.22.cv2.0.2.bias"},
               *c_out[1] = {"output0"};
    node(&g, "Conv", c_in, 3, c_out, 1, 0);
    if (o->with_dfl) {
        const char *df_in[2] = {"x3", "model.22.dfl.conv.weight"}, *df_out[1] = {"dfl"};
        node(&g, "Conv", df_in, 2, df_out, 1, 0);
    }
    for (int i = 0; i < o->shared_convs; i++) {
        char out[32];
        snprintf(out, sizeof out, "s%d", i);
        const char *sc_in[2] = {"x3", "model.9.conv.weight"}, *sc_out[1] = {out};
        node(&g, "Conv", sc_in, 2, sc_out, 1, 0);
    }
    for (int i = 0; i < o->extra_nodes; i++) {
        const char *id_in[1] = {"x3"}, *id_out[1] = {"i"};
        node(&g, "Identity", id_in, 1, id_out, 1, 0);
    }
    pw_str(&g, 2, "tiny");
    // initializers, in several encodings
    if (o->shared_convs) {
        int64_t ds[4] = {1024, 1024, 1, 1};
        float *big = calloc(1 << 20, sizeof(float));
        if (!big) abort();
        tensor_raw(&g, "model.9.conv.weight", T_FLOAT, ds, 4, big, (1 << 20) * sizeof(float), 1);
        free(big);
    }
    if (o->quant == 0) {
        tensor_raw(&g, wn, T_FLOAT, o->w_dims ? o->w_dims : d4, 4, k_w0, sizeof k_w0, 1);
    } else if (o->quant == 1) {
        int8_t q[6];
        for (int i = 0; i < 6; i++) q[i] = (int8_t)k_q0[i];
        tensor_raw(&g, wq, T_INT8, d4, 4, q, 6, 0);
        tensor_int32(&g, wz, T_INT8, d1, 1, k_zp0, 2);
        tensor_floats(&g, "w0_custom_scale", d1, 1, k_s0, 2, 1);
    } else {
        tensor_raw(&g, wq, T_UINT8, d4, 4, k_u0, 6, 0);
        int64_t zp = 128;
        tensor_int32(&g, wz, T_UINT8, NULL, 0, &zp, 1);
        float s = 0.0625f;
        tensor_floats(&g, ws, NULL, 0, &s, 1, 0);
    }
    if (o->external) {
        pbw t = {0};
        pw_int(&t, 1, 2);
        pw_int(&t, 2, T_FLOAT);
        pw_str(&t, 8, bn);
        pbw e = {0};
        pw_str(&e, 1, "location");
        pw_str(&e, 2, "weights.bin");
        pw_msg(&t, 13, &e);
        pw_int(&t, 14, 1);
        pw_msg(&g, 5, &t);
    } else {
        tensor_floats(&g, bn, d1, 1, k_b0, 2, 0);
    }
    tensor_raw(&g, "model.22.cv2.0.2.weight", T_FLOAT, d41, 4, k_w1, sizeof k_w1, 0);
    tensor_floats(&g, "model.22.cv2.0.2.bias", d4b, 1, k_b1, 4, 1);
    if (o->with_dfl) {
        float a[16];
        for (int i = 0; i < 16; i++) a[i] = (float)(2 * i);
        int64_t dd[4] = {1, 16, 1, 1};
        tensor_floats(&g, "model.22.dfl.conv.weight", dd, 4, a, 16, 1);
    }
    int64_t din[4] = {1, 3, 32, 32}, dout[3] = {1, o->out_ch ? o->out_ch : 6, 21};
    value_info(&g, 11, o->input_name ? o->input_name : "images", din, 4, NULL);
    value_info(&g, 12, "output0", dout, 3, "batch");

    pbw m = {0};
    pw_int(&m, 1, 8);
    pw_str(&m, 2, "handmade");
    pw_str(&m, 3, "1.0");
    pbw ops = {0};
    pw_str(&ops, 1, "");
    pw_int(&ops, 2, 17);
    pw_msg(&m, 8, &ops);
    meta(&m, "description", "Ultralytics YOLOv8s model trained on tiny.yaml");
    meta(&m, "task", o->task ? o->task : "detect");
    meta(&m, "imgsz", "[32, 32]");
    meta(&m, "stride", "32");
    meta(&m, "names", o->names ? o->names : "{0: 'cat', 1: \"dog's\\u00e9\\x41\"}");
    // The graph goes last, so that every truncation cuts into it (protobuf fields may come
    // in any order; a cut at a field boundary before it would leave a valid message).
    pw_msg(&m, 7, &g);
    return m;
}

static hy_status load_tiny(const tiny_opts *o, hy__onnx_file **f) {
    pbw m = build_tiny(o);
    hy_status st = hy__onnx_load_buffer(m.d, m.n, "tiny.onnx", f);
    free(m.d);
    return st;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, fp) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *n = (size_t)sz;
    return b;
}

// --- protobuf reader ------------------------------------------------------------------

HY_TEST(pb_varint_bounds) {
    uint64_t v;
    const uint8_t ok[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t *p = ok;
    ASSERT_TRUE(hy__pb_read_varint(&p, ok + 10, &v));
    ASSERT_TRUE(v == UINT64_MAX);
    ASSERT_TRUE(p == ok + 10);
    const uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    p = over;
    ASSERT_FALSE(hy__pb_read_varint(&p, over + 10, &v)); /* bit 64 set */
    const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0};
    p = eleven;
    ASSERT_FALSE(hy__pb_read_varint(&p, eleven + 11, &v));
    const uint8_t trunc[2] = {0x96, 0x81};
    p = trunc;
    ASSERT_FALSE(hy__pb_read_varint(&p, trunc + 2, &v));
    const uint8_t x150[2] = {0x96, 0x01};
    p = x150;
    ASSERT_TRUE(hy__pb_read_varint(&p, x150 + 2, &v));
    ASSERT_EQ(v, 150);
}

HY_TEST(pb_fields_and_errors) {
    // field 1 varint 150, field 2 "ab", field 5 fixed32 1.5f, field 6 fixed64
    pbw w = {0};
    pw_int(&w, 1, 150);
    pw_str(&w, 2, "ab");
    pw_f32(&w, 5, 1.5f);
    pw_tag(&w, 6, 1);
    pw_bytes(&w, "\x01\x00\x00\x00\x00\x00\x00\x80", 8);
    hy__pb r;
    hy__pb_init(&r, w.d, w.n);
    hy__pb_field f;
    int has;
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_TRUE(has && f.number == 1 && f.wire == 0 && f.u == 150);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_TRUE(has && f.number == 2 && f.len == 2 && !memcmp(f.data, "ab", 2));
    float x;
    ASSERT_ERR(hy__pb_as_float(&f, &x), HY_ERR_FORMAT); /* wire mismatch */
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_OK(hy__pb_as_float(&f, &x));
    ASSERT_TRUE(x == 1.5f);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_TRUE(f.wire == 1 && f.u == 0x8000000000000001ull);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_EQ(has, 0);
    free(w.d);

    // length past the enclosing span
    const uint8_t past[] = {0x12, 0x05, 'a', 'b'};
    hy__pb_init(&r, past, sizeof past);
    ASSERT_ERR(hy__pb_next(&r, &f, &has), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "runs past the end");
    // groups (start 3, end 4) are refused; wire types 6/7 are invalid; field 0 is invalid
    const uint8_t grp[] = {0x0b, 0x0c};
    hy__pb_init(&r, grp, sizeof grp);
    ASSERT_ERR(hy__pb_next(&r, &f, &has), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "group");
    const uint8_t w6[] = {0x0e};
    hy__pb_init(&r, w6, 1);
    ASSERT_ERR(hy__pb_next(&r, &f, &has), HY_ERR_FORMAT);
    const uint8_t f0[] = {0x00, 0x00};
    hy__pb_init(&r, f0, 2);
    ASSERT_ERR(hy__pb_next(&r, &f, &has), HY_ERR_FORMAT);
    // truncated fixed
    const uint8_t tf[] = {0x0d, 1, 2};
    hy__pb_init(&r, tf, 3);
    ASSERT_ERR(hy__pb_next(&r, &f, &has), HY_ERR_FORMAT);
    // a nested length-delimited field cannot reach beyond its parent
    const uint8_t nest[] = {0x0a, 0x02, 0x12, 0x03, 'x', 'y', 'z'};
    hy__pb_init(&r, nest, sizeof nest);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    hy__pb sub;
    ASSERT_OK(hy__pb_enter(&r, &f, &sub));
    ASSERT_ERR(hy__pb_next(&sub, &f, &has), HY_ERR_FORMAT);
}

HY_TEST(pb_packed_and_depth) {
    pbw w = {0};
    int64_t v[4] = {1, 300, -1, 0};
    pw_packed_varints(&w, 1, v, 4);
    float fl[3] = {1, 2, 3};
    pw_packed_f32(&w, 2, fl, 3);
    hy__pb r;
    hy__pb_init(&r, w.d, w.n);
    hy__pb_field f;
    int has;
    size_t n;
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_OK(hy__pb_count_varints(&f, &n));
    ASSERT_EQ(n, 4);
    uint64_t u[4];
    hy__pb_get_varints(&f, u);
    ASSERT_TRUE(u[1] == 300 && u[2] == UINT64_MAX);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_OK(hy__pb_count_fixed(&f, 4, &n));
    ASSERT_EQ(n, 3);
    ASSERT_ERR(hy__pb_count_fixed(&f, 8, &n), HY_ERR_FORMAT); /* 12 bytes, not a multiple of 8 */
    free(w.d);
    // packed varints with a truncated last value
    const uint8_t bad[] = {0x0a, 0x02, 0x01, 0x80};
    hy__pb_init(&r, bad, sizeof bad);
    ASSERT_OK(hy__pb_next(&r, &f, &has));
    ASSERT_ERR(hy__pb_count_varints(&f, &n), HY_ERR_FORMAT);
    // nesting beyond HY_PB_MAX_DEPTH is refused
    pbw deep = {0};
    for (int i = 0; i < HY_PB_MAX_DEPTH + 4; i++) {
        pbw outer = {0};
        pw_msg(&outer, 1, &deep);
        deep = outer;
    }
    hy__pb cur;
    hy__pb_init(&cur, deep.d, deep.n);
    hy_status st = HY_OK;
    int levels = 0;
    for (;;) {
        ASSERT_OK(hy__pb_next(&cur, &f, &has));
        if (!has) break;
        hy__pb sub;
        st = hy__pb_enter(&cur, &f, &sub);
        if (st) break;
        cur = sub;
        levels++;
    }
    ASSERT_EQ(st, HY_ERR_FORMAT);
    ASSERT_EQ(levels, HY_PB_MAX_DEPTH);
    free(deep.d);
}

// --- the real exports -----------------------------------------------------------------

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Looks up name in the state_dict key table; shape string like "16x3x3x3". */
static int tsv_shape(const char *tsv, const char *name, char *shape, size_t n) {
    char key[256];
    snprintf(key, sizeof key, "\n%s\t", name);
    const char *p = strstr(tsv, key);
    if (!p) return 0;
    p += strlen(key);
    size_t k = 0;
    while (p[k] && p[k] != '\t' && k + 1 < n) {
        shape[k] = p[k];
        k++;
    }
    shape[k] = 0;
    return 1;
}

static void shape_of(const hy__wtensor *t, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < t->ndim; i++) k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)t->shape[i]);
}

HY_TEST(fp32_export_structure) {
    int64_t live = hy__alloc_live();
    hy__onnx_file *f = NULL;
    ASSERT_OK(hy__onnx_load(hy_test_asset("weights/yolov8n.onnx"), &f));
    ASSERT_EQ(f->ir_version, 7);
    ASSERT_EQ(f->opset, 12);
    ASSERT_STREQ(f->producer_name, "pytorch");
    ASSERT_STREQ(f->producer_version, "1.13.0");
    ASSERT_STREQ(hy__onnx_meta(f, "version"), "8.0.172");
    ASSERT_STREQ(hy__onnx_meta(f, "task"), "detect");
    ASSERT_STREQ(f->input.name, "images");
    ASSERT_TRUE(f->input.ndim == 4 && f->input.dims[0] == 1 && f->input.dims[1] == 3 &&
                f->input.dims[2] == 640 && f->input.dims[3] == 640);
    ASSERT_STREQ(f->output.name, "output0");
    ASSERT_TRUE(f->output.ndim == 3 && f->output.dims[1] == 84 && f->output.dims[2] == 8400);
    ASSERT_EQ(f->n_initializers, 127);
    ASSERT_EQ(f->quantized, 0);
    ASSERT_EQ(f->dfl_synthesized, 0);
    size_t conv_nodes = 0, total = 0;
    for (size_t i = 0; i < f->n_ops; i++) {
        if (!strcmp(f->ops[i].op_type, "Conv")) conv_nodes = f->ops[i].count;
        total += f->ops[i].count;
    }
    ASSERT_EQ(conv_nodes, 64);
    ASSERT_EQ(total, f->n_nodes);
    const hy__onnx_node *n0 = &f->nodes[0];
    ASSERT_STREQ(n0->op_type, "Conv");
    ASSERT_STREQ(n0->inputs[1], "model.0.conv.weight");
    const hy__onnx_attr *ks = hy__onnx_node_attr(n0, "kernel_shape");
    ASSERT_TRUE(ks && ks->n_ints == 2 && ks->ints[0] == 3 && ks->ints[1] == 3);
    const hy__onnx_attr *st = hy__onnx_node_attr(n0, "strides");
    ASSERT_TRUE(st && st->n_ints == 2 && st->ints[0] == 2);

    hy__wsource src;
    ASSERT_OK(hy__onnx_source(f, &src));
    ASSERT_EQ(src.format, HY_WFORMAT_ONNX);
    ASSERT_EQ(src.fused, 1);
    ASSERT_EQ(src.n_tensors, 127);
    ASSERT_EQ(src.nc, 80);
    ASSERT_EQ(src.n_names, 80);
    ASSERT_STREQ(src.names[0], "person");
    ASSERT_STREQ(src.names[79], "toothbrush");
    ASSERT_EQ(src.imgsz, 640);
    ASSERT_STREQ(src.scale, "n");
    ASSERT_EQ(f->stride, 32);

    // Every name/shape against Ultralytics' own state_dict table: weights by name, fused
    // biases against the BN they replace ("<p>.conv.bias" <-> "<p>.bn.bias").
    size_t tl;
    char *tsv = (char *)read_all(hy_test_asset("reference/yolov8n_state_dict_keys.tsv"), &tl);
    ASSERT_TRUE(tsv != NULL);
    tsv = realloc(tsv, tl + 1);
    tsv[tl] = 0;
    int n_weights = 0, n_bias = 0;
    for (size_t i = 0; i < src.n_tensors; i++) {
        const hy__wtensor *t = &src.tensors[i];
        char want[64], got[64], key[256];
        ASSERT_EQ(t->dtype, HY_DTYPE_F32);
        shape_of(t, got, sizeof got);
        snprintf(key, sizeof key, "%s", t->name);
        if (ends_with(t->name, ".conv.bias")) {
            snprintf(key + strlen(key) - strlen("conv.bias"), 32, "bn.bias");
            n_bias++;
        } else if (ends_with(t->name, ".bias")) {
            n_bias++;
        } else {
            ASSERT_TRUE(ends_with(t->name, ".weight"));
            n_weights++;
        }
        if (!tsv_shape(tsv, key, want, sizeof want)) {
            free(tsv);
            HY_FAIL_("%s (%s) not in the state_dict table", t->name, key);
        }
        if (strcmp(want, got)) {
            free(tsv);
            HY_FAIL_("%s: shape %s, state_dict says %s", t->name, got, want);
        }
    }
    free(tsv);
    ASSERT_EQ(n_weights, 64);
    ASSERT_EQ(n_bias, 63);
    const hy__wtensor *dfl = hy__onnx_find(f, "model.22.dfl.conv.weight");
    ASSERT_TRUE(dfl && dfl->numel == 16);
    for (int k = 0; k < 16; k++) ASSERT_NEAR(((const float *)dfl->data)[k], k, 1e-6);
    hy__onnx_free(f);
    ASSERT_EQ(hy__alloc_live(), live);
}

/* Folds BN of "<p>" from the .pt checkpoint by hand and compares with the ONNX tensors. */
static double fold_compare(const hy__pt_file *pt, const hy__onnx_file *f, const char *p,
                           int *ok) {
    char k[5][160];
    const char *sfx[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                          "bn.running_var"};
    const hy__pt_tensor *t[5];
    float *v[5] = {0};
    double worst = 0;
    *ok = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(k[i], sizeof k[i], "%s.%s", p, sfx[i]);
        t[i] = hy__pt_find(pt, k[i]);
        if (!t[i]) goto done;
        v[i] = malloc(t[i]->numel * sizeof(float));
        if (hy__pt_tensor_to_f32(t[i], v[i])) goto done;
    }
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.conv.weight", p);
    snprintf(bn, sizeof bn, "%s.conv.bias", p);
    const hy__wtensor *w = hy__onnx_find(f, wn), *b = hy__onnx_find(f, bn);
    if (!w || !b || w->numel != t[0]->numel || b->numel != t[1]->numel) goto done;
    size_t cout = t[1]->numel, per = t[0]->numel / cout;
    const float *ow = w->data, *ob = b->data;
    for (size_t o = 0; o < cout; o++) {
        float s = v[1][o] / sqrtf(v[4][o] + 1e-3f); /* gamma / sqrt(var + eps) */
        for (size_t i = 0; i < per; i++) {
            float want = v[0][o * per + i] * s, got = ow[o * per + i];
            double e = fabs((double)want - got) / (fabs(want) + 1e-6);
            if (e > worst) worst = e;
        }
        float wantb = v[2][o] - v[3][o] * s;
        double e = fabs((double)wantb - ob[o]) / (fabs(wantb) + 1e-6);
        if (e > worst) worst = e;
    }
    *ok = 1;
done:
    for (int i = 0; i < 5; i++) free(v[i]);
    return worst;
}

HY_TEST(fp32_export_values_match_folded_pt) {
    hy__pt_file *pt = NULL;
    hy__onnx_file *f = NULL;
    ASSERT_OK(hy__pt_load(hy_test_asset("weights/yolov8n.pt"), &pt));
    hy_status st = hy__onnx_load(hy_test_asset("weights/yolov8n.onnx"), &f);
    if (st) {
        hy__pt_free(pt);
        ASSERT_OK(st);
    }
    const char *layers[] = {"model.0", "model.2.cv1", "model.2.m.0.cv2", "model.9.cv2",
                            "model.16", "model.21.cv2", "model.22.cv3.2.1"};
    int failed = 0;
    double worst = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(layers); i++) {
        int ok;
        double e = fold_compare(pt, f, layers[i], &ok);
        if (!ok || e > 1e-5) {
            fprintf(stderr, "  %s: ok %d rel err %.3g\n", layers[i], ok, e);
            failed = 1;
        }
        if (e > worst) worst = e;
    }
    // Plain Conv2d layers are copied unchanged (fp16 in the .pt, so exact in f32).
    const hy__pt_tensor *pw = hy__pt_find(pt, "model.22.cv3.0.2.weight");
    const hy__wtensor *ow = hy__onnx_find(f, "model.22.cv3.0.2.weight");
    int plain_ok = pw && ow && pw->numel == ow->numel;
    if (plain_ok) {
        float *x = malloc(pw->numel * sizeof(float));
        plain_ok = hy__pt_tensor_to_f32(pw, x) == HY_OK;
        for (size_t i = 0; plain_ok && i < pw->numel; i++)
            if (fabsf(x[i] - ((const float *)ow->data)[i]) > 1e-6f * (fabsf(x[i]) + 1e-6f)) plain_ok = 0;
        free(x);
    }
    printf("  fold: worst relative error %.3g over %zu layers\n", worst, HY_ARRAY_LEN(layers));
    hy__onnx_free(f);
    hy__pt_free(pt);
    ASSERT_FALSE(failed);
    ASSERT_TRUE(plain_ok);
}

HY_TEST(int8_export_dequantized) {
    int64_t live = hy__alloc_live();
    hy__onnx_file *q = NULL, *f = NULL;
    ASSERT_OK(hy__onnx_load(hy_test_asset("weights/yolov8n_int8.onnx"), &q));
    hy_status st = hy__onnx_load(hy_test_asset("weights/yolov8n.onnx"), &f);
    if (st) {
        hy__onnx_free(q);
        ASSERT_OK(st);
    }
    ASSERT_EQ(q->ir_version, 9);
    ASSERT_EQ(q->opset, 20);
    ASSERT_STREQ(q->producer_name, "onnx.quantize");
    ASSERT_STREQ(hy__onnx_meta(q, "version"), "8.4.115");
    ASSERT_STREQ(hy__onnx_meta(q, "author"), "Ultralytics");
    ASSERT_EQ(q->quantized, 1);
    ASSERT_EQ(q->dfl_synthesized, 0);
    ASSERT_EQ(q->n_tensors, 127);
    ASSERT_EQ(q->nc, 80);
    ASSERT_STREQ(q->names[0], "person");
    ASSERT_EQ(q->imgsz, 640);
    size_t n_ci = 0;
    for (size_t i = 0; i < q->n_ops; i++)
        if (!strcmp(q->ops[i].op_type, "ConvInteger")) n_ci = q->ops[i].count;
    ASSERT_EQ(n_ci, 64);

    // Each dequantized weight vs the fp32 export of the same network (the fp32 file was
    // made from these int8 weights via an fp16 checkpoint): within one quantization step.
    // The step is estimated from the fp32 weights alone: uint8 asymmetric per-tensor
    // quantization uses scale = (max(w, 0) - min(w, 0)) / 255.
    int n_w = 0, n_b = 0, bad = 0;
    double worst_ratio = 0, sum_ratio = 0;
    for (size_t i = 0; i < q->n_tensors; i++) {
        const hy__wtensor *a = &q->tensors[i], *b = hy__onnx_find(f, a->name);
        if (!b || b->numel != a->numel || memcmp(a->shape, b->shape, sizeof a->shape)) {
            fprintf(stderr, "  %s: missing or different shape in the fp32 export\n", a->name);
            bad++;
            continue;
        }
        const float *x = a->data, *y = b->data;
        if (ends_with(a->name, ".weight")) {
            float lo = 0, hi = 0;
            for (size_t k = 0; k < b->numel; k++) {
                lo = fminf(lo, y[k]);
                hi = fmaxf(hi, y[k]);
            }
            double step = (hi - lo) / 255.0, maxd = 0;
            for (size_t k = 0; k < a->numel; k++) maxd = fmax(maxd, fabs((double)x[k] - y[k]));
            double ratio = maxd / step;
            if (maxd > 1.01 * step + 1e-6) {
                fprintf(stderr, "  %s: max |diff| %.3g > step %.3g\n", a->name, maxd, step);
                bad++;
            }
            worst_ratio = fmax(worst_ratio, ratio);
            sum_ratio += ratio;
            n_w++;
        } else {
            for (size_t k = 0; k < a->numel; k++)
                if (fabs((double)x[k] - y[k]) > 1e-3 * fabs(y[k]) + 1e-5) {
                    fprintf(stderr, "  %s[%zu]: %g vs %g\n", a->name, k, x[k], y[k]);
                    bad++;
                    break;
                }
            n_b++;
        }
    }
    printf("  int8 vs fp32: %d weights, max|diff|/step worst %.4f mean %.4f; %d biases\n", n_w,
           worst_ratio, n_w ? sum_ratio / n_w : 0.0, n_b);
    const hy__wtensor *dfl = hy__onnx_find(q, "model.22.dfl.conv.weight");
    int dfl_ok = dfl && dfl->numel == 16;
    for (int k = 0; dfl_ok && k < 16; k++) dfl_ok = fabsf(((const float *)dfl->data)[k] - (float)k) < 1e-5f;
    hy__onnx_free(f);
    hy__onnx_free(q);
    ASSERT_EQ(n_w, 64);
    ASSERT_EQ(n_b, 63);
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(dfl_ok);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(load_buffer_matches_file) {
    size_t n;
    uint8_t *b = read_all(hy_test_asset("weights/yolov8n_int8.onnx"), &n);
    ASSERT_TRUE(b != NULL);
    hy__onnx_file *f = NULL;
    hy_status st = hy__onnx_load_buffer(b, n, "mem", &f);
    free(b);
    ASSERT_OK(st);
    ASSERT_EQ(f->n_tensors, 127);
    ASSERT_STREQ(f->what, "mem");
    hy__onnx_free(f);
}

// --- hand-made models -----------------------------------------------------------------

HY_TEST(tiny_fp32) {
    int64_t live = hy__alloc_live();
    tiny_opts o = {0};
    hy__onnx_file *f = NULL;
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(f->opset, 17);
    ASSERT_EQ(f->ir_version, 8);
    ASSERT_STREQ(f->graph_name, "tiny");
    ASSERT_STREQ(f->output.dim_params[0], "batch");
    ASSERT_EQ(f->output.dims[0], -1);
    ASSERT_EQ(f->nc, 2);
    ASSERT_STREQ(f->names[0], "cat");
    ASSERT_STREQ(f->names[1], "dog's\xc3\xa9" "A");
    ASSERT_EQ(f->imgsz, 32);
    ASSERT_STREQ(f->scale, "s");
    // 2 convs (weight + bias each) + the DFL weight, absent from the graph, synthesized
    ASSERT_EQ(f->n_tensors, 5);
    ASSERT_EQ(f->dfl_synthesized, 1);
    const hy__wtensor *w = hy__onnx_find(f, "model.0.conv.weight"),
                      *b = hy__onnx_find(f, "model.0.conv.bias"),
                      *w1 = hy__onnx_find(f, "model.22.cv2.0.2.weight"),
                      *b1 = hy__onnx_find(f, "model.22.cv2.0.2.bias"),
                      *d = hy__onnx_find(f, "model.22.dfl.conv.weight");
    ASSERT_TRUE(w && b && w1 && b1 && d);
    ASSERT_TRUE(w->ndim == 4 && w->shape[0] == 2 && w->shape[1] == 3 && b->ndim == 1);
    ASSERT_TRUE(!memcmp(w->data, k_w0, sizeof k_w0));
    ASSERT_TRUE(!memcmp(b->data, k_b0, sizeof k_b0));
    ASSERT_TRUE(!memcmp(w1->data, k_w1, sizeof k_w1));
    ASSERT_TRUE(!memcmp(b1->data, k_b1, sizeof k_b1));
    for (int k = 0; k < 16; k++) ASSERT_TRUE(((const float *)d->data)[k] == (float)k);
    ASSERT_EQ((uintptr_t)w->data % 64, 0);
    const hy__onnx_attr *ks = hy__onnx_node_attr(&f->nodes[0], "kernel_shape");
    ASSERT_TRUE(ks && ks->type == 7 && ks->n_ints == 2 && ks->ints[1] == 1);
    hy__onnx_free(f);
    // a DFL present in the file is kept as is (here deliberately not arange)
    o.with_dfl = 1;
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(f->dfl_synthesized, 0);
    d = hy__onnx_find(f, "model.22.dfl.conv.weight");
    ASSERT_TRUE(d && ((const float *)d->data)[3] == 6.0f);
    hy__onnx_free(f);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(tiny_int8_per_channel_traced_scale) {
    tiny_opts o = {.quant = 1};
    hy__onnx_file *f = NULL;
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(f->quantized, 1);
    const hy__wtensor *w = hy__onnx_find(f, "model.0.conv.weight");
    ASSERT_TRUE(w && w->numel == 6);
    for (int i = 0; i < 6; i++) {
        int oc = i / 3;
        float want = (float)(k_q0[i] - k_zp0[oc]) * k_s0[oc];
        ASSERT_TRUE(((const float *)w->data)[i] == want);
    }
    ASSERT_TRUE(hy__onnx_find(f, "model.0.conv.bias") != NULL);
    hy__onnx_free(f);
}

HY_TEST(tiny_uint8_per_tensor_scale_by_name) {
    tiny_opts o = {.quant = 2};
    hy__onnx_file *f = NULL;
    ASSERT_OK(load_tiny(&o, &f));
    const hy__wtensor *w = hy__onnx_find(f, "model.0.conv.weight");
    ASSERT_TRUE(w && w->numel == 6);
    for (int i = 0; i < 6; i++)
        ASSERT_TRUE(((const float *)w->data)[i] == (float)((int)k_u0[i] - 128) * 0.0625f);
    hy__onnx_free(f);
}

HY_TEST(tiny_refusals) {
    int64_t live = hy__alloc_live();
    hy__onnx_file *f = NULL;
    tiny_opts o = {.extra_op = "LSTM"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "tiny.onnx: node 2 op 'LSTM' is not part of a YOLOv8 detection export");
    o = (tiny_opts){.external = 1};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "model.0.conv.bias");
    ASSERT_CONTAINS(hy_last_error(), "external");
    o = (tiny_opts){.task = "segment"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "segment");
    o = (tiny_opts){.input_name = "input"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "'images'");
    o = (tiny_opts){.weight_name = "backbone.conv1.weight"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "backbone.conv1.weight");
    o = (tiny_opts){.out_ch = 7}; /* 4 + 3 classes, but 2 names */
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "names");
    o = (tiny_opts){.names = "{0: 'a', 0: 'b'}"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "repeated");
    o = (tiny_opts){.names = "{0: 'a', 1: 'b"};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "names");
    o = (tiny_opts){.names = "['a', \"b\\\\c\"]"}; /* list form, escaped backslash */
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_STREQ(f->names[1], "b\\c");
    hy__onnx_free(f);
    f = NULL;

    // not ONNX at all
    const char *text = "This is a README, not a model.\n";
    ASSERT_ERR(hy__onnx_load_buffer((const uint8_t *)text, strlen(text), "README.md", &f),
               HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "README.md");
    ASSERT_ERR(hy__onnx_load_buffer((const uint8_t *)"", 0, "empty.onnx", &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "empty");
    ASSERT_ERR(hy__onnx_load(hy_test_asset("weights/yolov8n_tflite_export_metadata.yaml"), &f),
               HY_ERR_FORMAT);
    ASSERT_ERR(hy__onnx_load(hy_test_asset("weights/yolov8n.pt"), &f), HY_ERR_FORMAT);
    hy_status st = hy__onnx_load(hy_test_asset("weights/does_not_exist.onnx"), &f);
    ASSERT_TRUE(st == HY_ERR_NOT_FOUND || st == HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), "does_not_exist.onnx");
    ASSERT_TRUE(f == NULL);
    hy__onnx_free(NULL);
    ASSERT_EQ(hy__alloc_live(), live);
}

// --- metadata 'names' bombs (issue 14) ---------------------------------------------------

typedef struct names_case {
    pbw m;             /* the model, built by the parent (not counted in the bound) */
    const char *want;  /* expected error text */
    hy_status want_st;
} names_case;

/* Child side of hy_test_bounded: the load must fail with the expected, named error. */
static int load_names_case(void *arg) {
    const names_case *c = arg;
    hy__onnx_file *f = NULL;
    hy_status st = hy__onnx_load_buffer(c->m.d, c->m.n, "names_bomb.onnx", &f);
    hy__onnx_free(f);
    if (st != c->want_st || !strstr(hy_last_error(), c->want)) {
        fprintf(stderr, "  got %d: %s\n", st, hy_last_error());
        return 1;
    }
    return 0;
}

/* "{0: 'c0', 1: 'c1', ...}" with n entries. */
static char *names_dict(size_t n) {
    size_t cap = 32 + n * 24, k = 0;
    char *s = malloc(cap);
    if (!s) abort();
    k += (size_t)snprintf(s + k, cap - k, "{");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%zu: 'c%zu'", i ? ", " : "", i, i);
    snprintf(s + k, cap - k, "}");
    return s;
}

static void check_names_bomb(const char *names, const char *want, hy_status want_st,
                             const char *label) {
    tiny_opts o = {.names = names};
    names_case c = {build_tiny(&o), want, want_st};
    hy_test_bound b;
    int r = hy_test_bounded(load_names_case, &c, 256, 2.0, &b);
    printf("  %s (%zu byte model): +%.1f MB peak RSS, %.3f s\n", label, c.m.n, b.extra_rss_mb,
           b.seconds);
    free(c.m.d);
    ASSERT_EQ(r, 0);
}

HY_TEST(names_bombs_fail_fast) {
    char *s = names_dict(40000);
    check_names_bomb(s, "names_bomb.onnx: metadata 'names': 40000 classes, at most 4096",
                     HY_ERR_FORMAT, "40,000 names");
    free(s);
    s = names_dict(400000);
    check_names_bomb(s, "names_bomb.onnx: metadata 'names': 400000 classes, at most 4096",
                     HY_ERR_FORMAT, "400,000 names");
    free(s);
    // one 1 MB name
    size_t big = 1 << 20;
    s = malloc(big + 16);
    ASSERT_TRUE(s != NULL);
    memcpy(s, "{0: '", 5);
    memset(s + 5, 'x', big);
    memcpy(s + 5 + big, "'}", 3);
    check_names_bomb(s, "names_bomb.onnx: metadata 'names': class 0: name longer than 256 bytes",
                     HY_ERR_FORMAT, "a 1 MB name");
    free(s);
}

// --- parse-memory bomb (issue 15: one capped arena) -------------------------------------

typedef struct bomb_case {
    pbw m;
    const char *want;
} bomb_case;

static int load_bomb_case(void *arg) {
    const bomb_case *c = arg;
    hy__onnx_file *f = NULL;
    hy_status st = hy__onnx_load_buffer(c->m.d, c->m.n, "attr_bomb.onnx", &f);
    hy__onnx_free(f);
    if (st != HY_ERR_FORMAT || !strstr(hy_last_error(), c->want)) {
        fprintf(stderr, "  got %d: %s\n", st, hy_last_error());
        return 1;
    }
    return 0;
}

/* HY_ONNX_MAX_NODES nodes of HY_ONNX_MAX_NODE_ATTRS empty attributes each: every count is
 * within its limit, but each 2-byte attribute parses into a ~90-byte struct, ~380 MB for an
 * 8.6 MB file. The reader's arenas are capped (64 MiB + 8 bytes per file byte), so the load
 * stops with a named error before that. */
HY_TEST(attribute_bomb_is_bounded) {
    pbw node = {0};
    pw_str(&node, 4, "Conv");
    for (int k = 0; k < HY_ONNX_MAX_NODE_ATTRS; k++) pw_len(&node, 5, "", 0);
    pbw graph = {0};
    for (int i = 0; i < HY_ONNX_MAX_NODES; i++) pw_len(&graph, 1, node.d, node.n);
    free(node.d);
    bomb_case c = {{0}, "attr_bomb.onnx: the model takes more than"};
    pw_int(&c.m, 1, 8); /* ir_version */
    pw_msg(&c.m, 7, &graph);
    hy_test_bound b;
    int r = hy_test_bounded(load_bomb_case, &c, 256, 2.0, &b);
    printf("  %zu-byte model, %d nodes x %d attributes: +%.1f MB peak RSS, %.3f s\n", c.m.n,
           HY_ONNX_MAX_NODES, HY_ONNX_MAX_NODE_ATTRS, b.extra_rss_mb, b.seconds);
    free(c.m.d);
    ASSERT_EQ(r, 0);
}

HY_TEST(names_limits_and_valid_names) {
    hy__onnx_file *f = NULL;
    // 4096 classes is the most accepted: the count must then agree with the output channels
    char *s = names_dict(4096);
    tiny_opts o = {.names = s, .out_ch = 4 + 4096};
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(f->n_names, 4096);
    ASSERT_EQ(f->nc, 4096);
    ASSERT_STREQ(f->names[0], "c0");
    ASSERT_STREQ(f->names[4095], "c4095");
    hy__onnx_free(f);
    f = NULL;
    o.out_ch = 4 + 4095; /* names and the model's nc disagree */
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "tiny.onnx: metadata 'names' has 4096 classes");
    free(s);
    s = names_dict(4097);
    o = (tiny_opts){.names = s, .out_ch = 4 + 4097};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "tiny.onnx: metadata 'names': 4097 classes, at most 4096");
    free(s);
    // a 256-byte name (multi-byte UTF-8 from escapes counts decoded bytes) is the longest
    char n256[400], n257[400];
    memset(n256, 0, sizeof n256);
    memcpy(n256, "{0: 'a', 1: '", 13);
    memset(n256 + 13, 'y', 254);
    memcpy(n256 + 13 + 254, "\\u00e9'}", 9); /* 254 + 2 bytes of UTF-8 = 256 */
    o = (tiny_opts){.names = n256};
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(strlen(f->names[1]), 256);
    ASSERT_STREQ(f->names[1] + 254, "\xc3\xa9");
    hy__onnx_free(f);
    f = NULL;
    memcpy(n257, n256, sizeof n256);
    memcpy(n257 + 13 + 254, "z\\u00e9'}", 10);
    o = (tiny_opts){.names = n257};
    ASSERT_ERR(load_tiny(&o, &f), HY_ERR_FORMAT);
    ASSERT_CONTAINS(hy_last_error(), "class 1: name longer than 256 bytes");
    // Ultralytics' own form still parses to the right names
    o = (tiny_opts){.names = "{0: 'person', 1: \"bicycle\"}"};
    ASSERT_OK(load_tiny(&o, &f));
    ASSERT_EQ(f->n_names, 2);
    ASSERT_STREQ(f->names[0], "person");
    ASSERT_STREQ(f->names[1], "bicycle");
    hy__onnx_free(f);
}

/* Child side: a tiny model built with opts must fail with the expected message. */
typedef struct opts_case {
    pbw m;
    const char *want;
} opts_case;
static int load_opts_case(void *arg) {
    const opts_case *c = arg;
    hy__onnx_file *f = NULL;
    hy_status st = hy__onnx_load_buffer(c->m.d, c->m.n, "graph_bomb.onnx", &f);
    hy__onnx_free(f);
    if (st == HY_OK || !strstr(hy_last_error(), c->want)) {
        fprintf(stderr, "  got %d: %s\n", st, hy_last_error());
        return 1;
    }
    return 0;
}
static void check_graph_bomb(const tiny_opts *o, const char *want, const char *label) {
    opts_case c = {build_tiny(o), want};
    hy_test_bound b;
    int r = hy_test_bounded(load_opts_case, &c, 256, 2.0, &b);
    printf("  %s (%zu byte model): +%.1f MB peak RSS, %.3f s\n", label, c.m.n, b.extra_rss_mb,
           b.seconds);
    free(c.m.d);
    ASSERT_EQ(r, 0);
}

/* Sizes and counts read from the file are bounded before they size an allocation. */
HY_TEST(graph_bombs_fail_fast) {
    // a weight declaring 2^26 x 16 floats (4 GiB) but holding 6: refused before allocating
    static const int64_t huge[4] = {1 << 26, 16, 1, 1};
    tiny_opts o = {.w_dims = huge};
    check_graph_bomb(&o, "raw_data holds 24 bytes", "4 GiB declared weight");
    // 400 Conv nodes sharing one 4 MB weight: refused at the second, not after 1.6 GB of copies
    o = (tiny_opts){.shared_convs = 400};
    check_graph_bomb(&o, "weight 'model.9.conv.weight' is used by two Conv nodes",
                     "400 convs sharing a 4 MB weight");
    // more nodes than any YOLOv8 export
    o = (tiny_opts){.extra_nodes = HY_ONNX_MAX_NODES};
    check_graph_bomb(&o, "graph: 65540 nodes, at most 65536", "65,540 nodes");
}

HY_TEST(tiny_every_truncation_fails) {
    int64_t live = hy__alloc_live();
    tiny_opts o = {.quant = 1};
    pbw m = build_tiny(&o);
    hy__onnx_file *f = NULL;
    ASSERT_OK(hy__onnx_load_buffer(m.d, m.n, "full", &f));
    hy__onnx_free(f);
    int n_ok = 0;
    for (size_t len = 0; len < m.n; len++) {
        uint8_t *cut = malloc(len ? len : 1); /* exact size: ASan catches any over-read */
        memcpy(cut, m.d, len);
        f = NULL;
        hy_status st = hy__onnx_load_buffer(cut, len, "cut", &f);
        if (st == HY_OK) {
            n_ok++;
            hy__onnx_free(f);
        } else if (!*hy_last_error()) {
            n_ok += 1000; /* an error without a message */
        }
        free(cut);
    }
    free(m.d);
    ASSERT_EQ(n_ok, 0);
    ASSERT_EQ(hy__alloc_live(), live);
}

/* Flips 1-4 random bytes of buf[0..span) per round, parses buf[0..len), restores. */
static int fuzz(uint8_t *buf, size_t len, size_t span, int rounds, const char *what) {
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        size_t at[4];
        uint8_t old[4];
        int k = 1 + (int)(rnd() % 4);
        for (int i = 0; i < k; i++) {
            at[i] = rnd() % span;
            old[i] = buf[at[i]];
            buf[at[i]] ^= (uint8_t)(1 + rnd() % 255);
        }
        hy__onnx_file *f = NULL;
        if (hy__onnx_load_buffer(buf, len, what, &f) == HY_OK) {
            ok++;
            hy__wsource s;
            if (hy__onnx_source(f, &s) || s.n_tensors == 0) ok += 100000;
            hy__onnx_free(f);
        }
        for (int i = k - 1; i >= 0; i--) buf[at[i]] = old[i];
    }
    return ok;
}

HY_TEST(fuzz_tiny_byte_flips) {
    int64_t live = hy__alloc_live();
    for (int q = 0; q < 3; q++) {
        tiny_opts o = {.quant = q};
        pbw m = build_tiny(&o);
        uint8_t *b = malloc(m.n);
        memcpy(b, m.d, m.n);
        int ok = fuzz(b, m.n, m.n, 1500, "flipped");
        free(b);
        free(m.d);
        printf("  tiny quant=%d: %d of 1500 flipped copies still load\n", q, ok);
        ASSERT_TRUE(ok < 100000);
    }
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST(fuzz_real_file_head) {
    int64_t live = hy__alloc_live();
    size_t n;
    uint8_t *b = read_all(hy_test_asset("weights/yolov8n.onnx"), &n);
    ASSERT_TRUE(b != NULL && n > 65536);
    // The first 64 KB alone (the graph is cut short), flipped.
    uint8_t *head = malloc(65536);
    memcpy(head, b, 65536);
    int ok = fuzz(head, 65536, 65536, 2000, "head");
    free(head);
    ASSERT_EQ(ok, 0);
    // The whole file with flips in its first 64 KB (header, nodes, first initializers).
    double t0 = hy__now_ms();
    int ok2 = fuzz(b, n, 65536, 300, "flipped");
    printf("  yolov8n.onnx: %d of 300 copies flipped in the first 64 KB still load (%.0f ms)\n",
           ok2, hy__now_ms() - t0);
    free(b);
    ASSERT_TRUE(ok2 < 100000);
    ASSERT_EQ(hy__alloc_live(), live);
}

HY_TEST_MAIN()
