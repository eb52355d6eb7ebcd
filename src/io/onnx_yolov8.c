/* ONNX reader, part two (see onnx.h): recognising an Ultralytics YOLOv8 detection export in a
 * parsed graph (onnx.c) and mapping it to state_dict tensors: the op allow-list, the
 * "images" -> "output0" I/O shapes, Ultralytics' metadata_props, and the fused float32 weights
 * of every Conv / ConvInteger node, named "<p>.conv.weight" / "<p>.conv.bias" as fuse() leaves
 * them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/onnx_impl.h"
#include "io/pyliteral.h"

// --- producers / consumers (tracing quantized graphs) ---------------------------------

static int cmp_nref(const void *a, const void *b) {
    const hy__onnx_nref *x = a, *y = b;
    int k = strcmp(x->name, y->name);
    if (k) return k;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Producer / consumer tables (sorted by tensor name) for tracing quantized graphs. */
static hy_status build_refs(hy__onnx_ctx *c) {
    const hy__onnx_file *f = c->f;
    size_t ni = 0, no = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        ni += f->nodes[i].n_inputs; /* bounded by the buffer size: no overflow */
        no += f->nodes[i].n_outputs;
    }
    if ((ni && !(c->consumers = hy__arena_array(&c->tmp, ni, sizeof(hy__onnx_nref)))) ||
        (no && !(c->producers = hy__arena_array(&c->tmp, no, sizeof(hy__onnx_nref)))))
        return hy__onnx_nomem(c);
    for (size_t i = 0; i < f->n_nodes; i++) {
        const hy__onnx_node *n = &f->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            c->consumers[c->n_consumers++] = (hy__onnx_nref){n->inputs[k], i};
        for (size_t k = 0; k < n->n_outputs; k++)
            c->producers[c->n_producers++] = (hy__onnx_nref){n->outputs[k], i};
    }
    if (c->n_consumers) qsort(c->consumers, c->n_consumers, sizeof(hy__onnx_nref), cmp_nref);
    if (c->n_producers) qsort(c->producers, c->n_producers, sizeof(hy__onnx_nref), cmp_nref);
    return HY_OK;
}

/* First index in refs[0..n) with name >= key. */
static size_t refs_lower(const hy__onnx_nref *refs, size_t n, const char *key) {
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
static const hy__onnx_node *consumer_op(const hy__onnx_ctx *c, const char *name, const char *op) {
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

static const hy__onnx_node *producer(const hy__onnx_ctx *c, const char *name) {
    size_t i = refs_lower(c->producers, c->n_producers, name);
    if (i < c->n_producers && !strcmp(c->producers[i].name, name))
        return &c->f->nodes[c->producers[i].node];
    return NULL;
}

/* onnxruntime's dynamic quantization rescales a ConvInteger output as
 *   ConvInteger -> Cast(float) -> Mul(., Mul(x_scale, w_scale))
 * where w_scale is an initializer and x_scale comes from DynamicQuantizeLinear.
 * Returns the w_scale initializer, or NULL when the graph does not have that shape. */
static const hy__onnx_trec *trace_weight_scale(const hy__onnx_ctx *c, const hy__onnx_node *conv) {
    if (conv->n_outputs < 1) return NULL;
    const hy__onnx_node *cast = consumer_op(c, conv->outputs[0], "Cast");
    if (!cast || cast->n_outputs < 1) return NULL;
    const hy__onnx_node *mul = consumer_op(c, cast->outputs[0], "Mul");
    if (!mul || mul->n_inputs != 2) return NULL;
    const char *other = strcmp(mul->inputs[0], cast->outputs[0]) ? mul->inputs[0] : mul->inputs[1];
    const hy__onnx_node *scales = producer(c, other);
    if (!scales || strcmp(scales->op_type, "Mul") || scales->n_inputs != 2) return NULL;
    const hy__onnx_trec *a = hy__onnx_init_find(c, scales->inputs[0]),
                        *b = hy__onnx_init_find(c, scales->inputs[1]);
    if ((a != NULL) == (b != NULL)) return NULL; /* need exactly one constant factor */
    return a ? a : b;
}

/* Ultralytics writes names as str(dict): "{0: 'person', 1: 'bicycle', ...}"; a list
 * "['person', ...]" is accepted too (io/pyliteral.h: linear in the text, at most
 * HY_ONNX_MAX_CLASSES names of at most HY_ONNX_MAX_NAME_BYTES bytes kept). */
static hy_status read_names(hy__onnx_ctx *c, const char *text) {
    hy__onnx_file *f = c->f;
    char **names = NULL;
    size_t n = 0;
    hy_status st = hy__py_names_parse(text, HY_ONNX_MAX_CLASSES, HY_ONNX_MAX_NAME_BYTES,
                                      &f->arena, &c->tmp, &names, &n);
    if (st == HY_ERR_NOMEM) return hy__onnx_nomem(c);
    if (st) return hy__error_prefix(st, "%s: metadata 'names'", c->what);
    if (n == 0) return hy__onnx_fail(c, HY_ERR_FORMAT, "metadata 'names' is empty");
    f->names = names;
    f->n_names = (int)n;
    return HY_OK;
}

static hy_status read_metadata(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    const char *task = hy__onnx_meta(f, "task");
    if (task && strcmp(task, "detect"))
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED,
            "metadata task is '%s'; only YOLOv8 detection exports ('detect') are supported", task);
    const char *names = hy__onnx_meta(f, "names");
    hy_status st;
    if (names && (st = read_names(c, names))) return st;
    const char *imgsz = hy__onnx_meta(f, "imgsz");
    if (imgsz && !hy__py_int_pair(imgsz, f->imgsz_hw))
        return hy__onnx_fail(c, HY_ERR_FORMAT, "metadata 'imgsz': cannot parse '%.40s'", imgsz);
    const char *stride = hy__onnx_meta(f, "stride");
    if (stride) {
        int hw[2];
        if (!hy__py_int_pair(stride, hw) || hw[0] != hw[1] || hw[0] > 1024)
            return hy__onnx_fail(c, HY_ERR_FORMAT, "metadata 'stride': cannot parse '%.40s'",
                                 stride);
        f->stride = hw[0];
    }
    // "Ultralytics YOLOv8n model trained on coco.yaml" -> scale "n".
    const char *desc = hy__onnx_meta(f, "description");
    const char *y = desc ? strstr(desc, "YOLOv8") : NULL;
    if (y && y[6] && strchr("nsmlx", y[6]) &&
        !((y[7] >= 'a' && y[7] <= 'z') || (y[7] >= 'A' && y[7] <= 'Z') ||
          (y[7] >= '0' && y[7] <= '9')))
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

static hy_status check_io(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    char sh[160];
    // Graph inputs that are also initializers (IR < 4 style) are weights, not inputs.
    const hy__onnx_value_info *in = NULL;
    size_t n_real = 0;
    for (size_t i = 0; i < c->n_inputs; i++) {
        if (c->n_inits && hy__onnx_init_find(c, c->inputs[i].name)) continue;
        n_real++;
        if (!in) in = &c->inputs[i];
    }
    if (n_real != 1 || strcmp(in->name, "images"))
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED,
            "graph has %zu input(s)%s%s%s; a YOLOv8 detection export has one, 'images'", n_real,
            in ? " (first '" : "", in ? in->name : "", in ? "')" : "");
    if (in->elem_type != HY_ONNX_FLOAT && in->elem_type != HY_ONNX_FLOAT16)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "input 'images' has element type %s, expected float32",
                             hy__onnx_dtype_name(in->elem_type));
    if (in->ndim != 4 || !(is_symbolic(in, 0) || in->dims[0] == 1) || in->dims[1] != 3)
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED, "input 'images' has shape %s, expected (1, 3, H, W)",
            in->ndim < 0 ? "(unknown)" : hy__onnx_shape_str(in->dims, in->ndim, sh, sizeof sh));
    for (int k = 2; k < 4; k++)
        if (!is_symbolic(in, k) && (in->dims[k] <= 0 || in->dims[k] % 32 || in->dims[k] > 65536))
            return hy__onnx_fail(
                c, HY_ERR_UNSUPPORTED,
                "input 'images' has shape %s: H and W must be positive multiples of 32",
                hy__onnx_shape_str(in->dims, in->ndim, sh, sizeof sh));
    if (c->n_outputs != 1)
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED,
            "graph has %zu outputs; a YOLOv8 detection export has one (segmentation "
            "and pose exports are not supported)",
            c->n_outputs);
    const hy__onnx_value_info *out = &c->outputs[0];
    if (out->ndim != 3 || !(is_symbolic(out, 0) || out->dims[0] == 1) ||
        !(is_symbolic(out, 1) || out->dims[1] >= 5) || out->dims[2] == 0)
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED, "output '%s' has shape %s, expected (1, 4 + nc, anchors)",
            out->name,
            out->ndim < 0 ? "(unknown)" : hy__onnx_shape_str(out->dims, out->ndim, sh, sizeof sh));
    // Anchors: one per cell of the stride 8, 16, 32 grids.
    if (!is_symbolic(in, 2) && !is_symbolic(in, 3) && !is_symbolic(out, 2)) {
        int64_t h = in->dims[2], w = in->dims[3];
        int64_t a = (h / 8) * (w / 8) + (h / 16) * (w / 16) + (h / 32) * (w / 32);
        if (out->dims[2] != a)
            return hy__onnx_fail(
                c, HY_ERR_UNSUPPORTED,
                "output '%s' has %lld anchors; a %lldx%lld detection export has %lld", out->name,
                (long long)out->dims[2], (long long)h, (long long)w, (long long)a);
    }
    f->input = *in;
    f->output = *out;
    // The value infos' strings live in f->arena already; only the structs were in tmp.
    return HY_OK;
}

static hy_status check_nodes(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    if (!f->n_nodes) return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "the graph has no nodes");
    for (size_t i = 0; i < f->n_nodes; i++) {
        const hy__onnx_node *n = &f->nodes[i];
        if (*n->domain && strcmp(n->domain, "ai.onnx"))
            return hy__onnx_fail(
                c, HY_ERR_UNSUPPORTED,
                "node %zu op '%.64s' (domain '%.64s') is not part of a YOLOv8 detection "
                "export",
                i, n->op_type, n->domain);
        if (!known_op(n->op_type))
            return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                                 "node %zu op '%.64s' is not part of a YOLOv8 detection export", i,
                                 n->op_type);
    }
    // Histogram in order of first appearance (at most HY_ARRAY_LEN(k_ops) kinds).
    f->ops = hy__arena_array(&f->arena, HY_ARRAY_LEN(k_ops), sizeof(hy__onnx_op_count));
    if (!f->ops) return hy__onnx_nomem(c);
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
    return t == HY_ONNX_FLOAT || t == HY_ONNX_FLOAT16 || t == HY_ONNX_BFLOAT16 ||
           t == HY_ONNX_DOUBLE;
}

/* Adds tensor `name` with shape dims to f->tensors; *data gets numel floats (64-aligned). */
static hy_status add_tensor(hy__onnx_ctx *c, const char *name, const int64_t *dims, int ndim,
                            size_t numel, float **data) {
    hy__onnx_file *f = c->f;
    hy__wtensor *t = &f->tensors[f->n_tensors];
    t->name = hy__arena_strndup(&f->arena, name, strlen(name));
    float *d = hy__arena_zalloc(&f->arena, numel ? numel * sizeof(float) : 1, 64);
    if (!t->name || !d) return hy__onnx_nomem(c);
    t->dtype = HY_DTYPE_F32;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = dims[i];
    t->numel = numel;
    t->data = d;
    f->n_tensors++;
    *data = d;
    return HY_OK;
}

static hy_status check_finite(const hy__onnx_ctx *c, const char *name, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return hy__onnx_fail(c, HY_ERR_FORMAT,
                                 "tensor '%s' holds a non-finite value at index %zu", name, i);
    return HY_OK;
}

/* Bias of the conv whose weight is `wname` ("<p>.weight" -> "<p>.bias"): from the Conv's
 * third input, else the initializer named "<p>.bias". */
static hy_status add_bias(hy__onnx_ctx *c, size_t node_idx, const char *bias_input,
                          const char *wname, int64_t cout) {
    size_t pl = strlen(wname) - 6; /* keeps "<p>." */
    char *bname = hy__arena_zalloc(&c->tmp, pl + 5, 1);
    if (!bname) return hy__onnx_nomem(c);
    memcpy(bname, wname, pl);
    memcpy(bname + pl, "bias", 5);
    const hy__onnx_trec *b = NULL;
    if (bias_input && *bias_input) {
        b = hy__onnx_init_find(c, bias_input);
        if (!b)
            return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                                 "node %zu (Conv): bias '%s' is not an initializer", node_idx,
                                 bias_input);
    } else {
        b = hy__onnx_init_find(c, bname);
        if (!b) return HY_OK; /* a Conv without bias (the DFL conv) */
    }
    char sh[160];
    if (!float_type(b->dtype) || b->ndim != 1 || b->dims[0] != cout)
        return hy__onnx_fail(c, HY_ERR_FORMAT, "bias '%s' is %s %s, expected float32 (%lld)",
                             b->name, hy__onnx_dtype_name(b->dtype),
                             hy__onnx_shape_str(b->dims, b->ndim, sh, sizeof sh), (long long)cout);
    float *d = NULL;
    hy_status st = hy__onnx_check_payload(c, b);
    if (!st) st = add_tensor(c, bname, b->dims, 1, b->numel, &d);
    if (!st) st = hy__onnx_decode_f32(c, b, d);
    if (!st) st = check_finite(c, bname, d, b->numel);
    return st;
}

/* Scalar-or-per-channel parameter (scale / zero point) of a quantized weight. */
static hy_status load_qparam(hy__onnx_ctx *c, const hy__onnx_trec *t, const char *what,
                             int64_t cout, float **out) {
    if (t->numel != 1 && (int64_t)t->numel != cout)
        return hy__onnx_fail(
            c, HY_ERR_UNSUPPORTED,
            "%s '%s' has %zu values; expected 1 (per tensor) or %lld (per channel)", what, t->name,
            t->numel, (long long)cout);
    hy_status st = hy__onnx_check_payload(c, t);
    if (st) return st;
    float *v = hy__arena_array(&c->tmp, t->numel, sizeof(float));
    if (!v) return hy__onnx_nomem(c);
    st = hy__onnx_decode_f32(c, t, v);
    if (st) return st;
    *out = v;
    return HY_OK;
}

/* The weight initializer of conv node idx and its canonical state_dict name (the
 * initializer's, without onnxruntime's "_quantized" suffix), checked to be a YOLOv8 weight
 * (cout, cin, kh, kw) that no other conv uses. */
static hy_status conv_weight(hy__onnx_ctx *c, size_t idx, int q, hy__onnx_trec **wout,
                             char **name_out) {
    const hy__onnx_node *n = &c->f->nodes[idx];
    char sh[160];
    if (n->n_inputs < 2)
        return hy__onnx_fail(c, HY_ERR_FORMAT, "node %zu (%s) has %zu inputs", idx, n->op_type,
                             n->n_inputs);
    const char *win = n->inputs[1];
    hy__onnx_trec *w = hy__onnx_init_find(c, win);
    if (!w)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "node %zu (%s): weight '%.80s' is not an initializer; not a plain "
                             "YOLOv8 export",
                             idx, n->op_type, win);
    // Refused before it is decoded again: N convs sharing one big weight would cost N copies.
    if (w->used_as_weight)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "weight '%.80s' is used by two Conv nodes",
                             win);
    w->used_as_weight = 1;
    size_t wl = strlen(win);
    if (q && (wl < 10 || strcmp(win + wl - 10, "_quantized")))
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "node %zu (ConvInteger): weight '%.80s' is not named "
                             "'<name>_quantized'",
                             idx, win);
    char *wname = hy__arena_strndup(&c->tmp, win, q ? wl - 10 : wl);
    if (!wname) return hy__onnx_nomem(c);
    if (!yolo_weight_name(wname))
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "node %zu (%s): weight '%.80s' is not named like "
                             "'model.<N>....weight' (not an Ultralytics YOLOv8 export)",
                             idx, n->op_type, win);
    if (w->ndim != 4 || w->dims[0] <= 0 || w->numel == 0)
        return hy__onnx_fail(c, HY_ERR_FORMAT,
                             "weight '%s' has shape %s, expected (cout, cin, kh, kw)", w->name,
                             hy__onnx_shape_str(w->dims, w->ndim, sh, sizeof sh));
    *wout = w;
    *name_out = wname;
    return HY_OK;
}

/* A Conv node's float weight, decoded into tensor wname. */
static hy_status add_float_weight(hy__onnx_ctx *c, const hy__onnx_trec *w, const char *wname,
                                  float **d) {
    hy_status st;
    if (!float_type(w->dtype))
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "Conv weight '%s' has data type %s", w->name,
                             hy__onnx_dtype_name(w->dtype));
    if ((st = hy__onnx_check_payload(c, w)) ||
        (st = add_tensor(c, wname, w->dims, 4, w->numel, d)) ||
        (st = hy__onnx_decode_f32(c, w, *d)))
        return st;
    return HY_OK;
}

/* A ConvInteger node's (u)int8 weight, dequantized into tensor wname as (q - zp) * scale, per
 * output channel when the scale / zero point have cout entries. */
static hy_status add_quantized_weight(hy__onnx_ctx *c, size_t idx, const hy__onnx_trec *w,
                                      const char *wname, float **dout) {
    const hy__onnx_node *n = &c->f->nodes[idx];
    int64_t cout = w->dims[0];
    size_t per = w->numel / (size_t)cout; /* values per output channel */
    hy_status st;
    c->f->quantized = 1;
    if (w->dtype != HY_ONNX_UINT8 && w->dtype != HY_ONNX_INT8)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "quantized weight '%s' has data type %s",
                             w->name, hy__onnx_dtype_name(w->dtype));
    if ((st = hy__onnx_check_payload(c, w))) return st;
    const hy__onnx_trec *s = trace_weight_scale(c, n);
    if (!s) { /* fall back to onnxruntime's naming */
        char *sname = hy__arena_zalloc(&c->tmp, strlen(wname) + 7, 1);
        if (!sname) return hy__onnx_nomem(c);
        sprintf(sname, "%s_scale", wname);
        s = hy__onnx_init_find(c, sname);
    }
    if (!s)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                             "node %zu (ConvInteger): cannot find the scale of weight '%s'", idx,
                             w->name);
    if (!float_type(s->dtype))
        return hy__onnx_fail(c, HY_ERR_FORMAT, "weight scale '%s' has data type %s", s->name,
                             hy__onnx_dtype_name(s->dtype));
    float zero = 0.0f, *scale, *zp = &zero, *d = NULL;
    size_t nzp = 1;
    if ((st = load_qparam(c, s, "weight scale", cout, &scale))) return st;
    if (n->n_inputs >= 4 && *n->inputs[3]) {
        const hy__onnx_trec *z = hy__onnx_init_find(c, n->inputs[3]);
        if (!z)
            return hy__onnx_fail(c, HY_ERR_UNSUPPORTED,
                                 "node %zu (ConvInteger): weight zero point '%.80s' is not an "
                                 "initializer",
                                 idx, n->inputs[3]);
        if (z->dtype != w->dtype)
            return hy__onnx_fail(c, HY_ERR_FORMAT, "zero point '%s' is %s but weight '%s' is %s",
                                 z->name, hy__onnx_dtype_name(z->dtype), w->name,
                                 hy__onnx_dtype_name(w->dtype));
        if ((st = load_qparam(c, z, "weight zero point", cout, &zp))) return st;
        nzp = z->numel;
    }
    if ((st = add_tensor(c, wname, w->dims, 4, w->numel, &d)) ||
        (st = hy__onnx_decode_f32(c, w, d)))
        return st;
    for (int64_t o = 0; o < cout; o++) {
        float so = scale[s->numel == 1 ? 0 : o], zo = zp[nzp == 1 ? 0 : o];
        float *row = d + (size_t)o * per;
        for (size_t i = 0; i < per; i++) row[i] = (row[i] - zo) * so;
    }
    *dout = d;
    return HY_OK;
}

/* Conv / ConvInteger node idx -> "<p>.weight" (+ "<p>.bias") tensors. */
static hy_status add_conv(hy__onnx_ctx *c, size_t idx) {
    const hy__onnx_node *n = &c->f->nodes[idx];
    int q = !strcmp(n->op_type, "ConvInteger");
    hy__onnx_trec *w = NULL;
    char *wname = NULL;
    float *d = NULL;
    hy_status st;
    if ((st = conv_weight(c, idx, q, &w, &wname)) ||
        (st = q ? add_quantized_weight(c, idx, w, wname, &d) : add_float_weight(c, w, wname, &d)) ||
        (st = check_finite(c, wname, d, w->numel)))
        return st;
    return add_bias(c, idx, !q && n->n_inputs >= 3 ? n->inputs[2] : NULL, wname, w->dims[0]);
}

static int cmp_wtensor_name(const void *a, const void *b) {
    return strcmp((*(const hy__wtensor *const *)a)->name, (*(const hy__wtensor *const *)b)->name);
}

static hy_status build_weights(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    size_t nconv = 0;
    for (size_t i = 0; i < f->n_nodes; i++)
        nconv +=
            !strcmp(f->nodes[i].op_type, "Conv") || !strcmp(f->nodes[i].op_type, "ConvInteger");
    if (!nconv) return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "the graph has no Conv nodes");
    // weight + bias per conv, + 1 for a synthesized DFL weight
    f->tensors = hy__arena_array(&f->arena, 2 * nconv + 1, sizeof(hy__wtensor));
    if (!f->tensors) return hy__onnx_nomem(c);
    hy_status st;
    if (c->n_inits == 0)
        return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "the graph has no initializers");
    for (size_t i = 0; i < f->n_nodes; i++) {
        const char *op = f->nodes[i].op_type;
        if (!strcmp(op, "ConvInteger") && !c->consumers && (st = build_refs(c))) return st;
        if ((!strcmp(op, "Conv") || !strcmp(op, "ConvInteger")) && (st = add_conv(c, i)))
            return st;
    }
    // Each weight belongs to one conv: a repeated name means a graph we do not understand.
    const hy__wtensor **sorted = hy__arena_array(&c->tmp, f->n_tensors, sizeof(hy__wtensor *));
    if (!sorted) return hy__onnx_nomem(c);
    for (size_t i = 0; i < f->n_tensors; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, f->n_tensors, sizeof(*sorted), cmp_wtensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
            return hy__onnx_fail(c, HY_ERR_UNSUPPORTED, "weight '%s' is used by two Conv nodes",
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

static hy_status finish_classes(hy__onnx_ctx *c) {
    hy__onnx_file *f = c->f;
    int64_t ch = f->output.dims[1]; /* 4 + nc, or -1 when symbolic */
    if (f->n_names) {
        if (ch >= 0 && ch != 4 + (int64_t)f->n_names)
            return hy__onnx_fail(
                c, HY_ERR_MISMATCH,
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

// --- entry ----------------------------------------------------------------------------

hy_status hy__onnx_yolov8_recognise(hy__onnx_ctx *c) {
    hy_status st;
    if ((st = check_nodes(c)) || (st = check_io(c)) || (st = read_metadata(c)) ||
        (st = finish_classes(c)) || (st = build_weights(c)))
        return st;
    return HY_OK;
}
