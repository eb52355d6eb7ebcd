/* hotyolo export (include/hotyolo/export.h): any weights -> torch .pt (state_dict + model
 * config) or ONNX (the fused inference graph, built by walking the planned hy__graph).
 * docs/formats.md describes both files. */
#include "hotyolo/export.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "io/onnx.h"
#include "io/onnx_write.h"
#include "io/pt_write.h"
#include "io/safetensors.h"
#include "io/wfile.h"
#include "model/arch.h"
#include "model/model_impl.h"

static const char *const k_formats[] = {"pt", "onnx"};

const char *hy_export_format_name(hy_export_format f) {
    return f >= 0 && f < HY_EXPORT_FORMAT_COUNT ? k_formats[f] : "?";
}

hy_status hy_export_format_parse(const char *s, hy_export_format *out) {
    for (int i = 0; s && i < HY_EXPORT_FORMAT_COUNT; i++)
        if (!strcmp(s, k_formats[i])) {
            *out = (hy_export_format)i;
            return HY_OK;
        }
    return hy__error(HY_ERR_INVALID_ARG, "unknown export format '%.40s' (expected pt or onnx)", s ? s : "");
}

hy_export_params hy_export_default_params(void) {
    hy_export_params p;
    memset(&p, 0, sizeof p);
    p.format = HY_EXPORT_PT;
    return p;
}

/* What one export works from. */
typedef struct ex {
    const char *in, *out;
    const hy_export_params *p;
    hy__wfile *f;
    const hy__wsource *src;
    hy__arch_cfg cfg;
    hy__model_spec *spec;
    hy__resolved res;
    hy__load_report rep;
    char **names;            /* (cfg.nc) borrowed from src, or made up in `a` */
    int imgsz;
    hy__arena a;             /* strings and small buffers */
} ex;

static hy_status nomem(void) { return hy__error(HY_ERR_NOMEM, "export: out of memory"); }

static char *afmt(hy__arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *afmt(hy__arena *a, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;
    return hy__arena_strndup(a, buf, (size_t)n);
}

// --- .pt ------------------------------------------------------------------------------------

/* yolov8.yaml (Ultralytics 8.0.172) as yaml_model_load gives it: backbone and head rows
 * [from, repeats, module, args]; 'nc' stays the string parse_model resolves. */
static const char k_yolov8_layers[] =
    "\"backbone\":[[-1,1,\"Conv\",[64,3,2]],[-1,1,\"Conv\",[128,3,2]],[-1,3,\"C2f\",[128,true]],"
    "[-1,1,\"Conv\",[256,3,2]],[-1,6,\"C2f\",[256,true]],[-1,1,\"Conv\",[512,3,2]],[-1,6,\"C2f\",[512,true]],"
    "[-1,1,\"Conv\",[1024,3,2]],[-1,3,\"C2f\",[1024,true]],[-1,1,\"SPPF\",[1024,5]]],"
    "\"head\":[[-1,1,\"nn.Upsample\",[null,2,\"nearest\"]],[[-1,6],1,\"Concat\",[1]],[-1,3,\"C2f\",[512]],"
    "[-1,1,\"nn.Upsample\",[null,2,\"nearest\"]],[[-1,4],1,\"Concat\",[1]],[-1,3,\"C2f\",[256]],"
    "[-1,1,\"Conv\",[256,3,2]],[[-1,12],1,\"Concat\",[1]],[-1,3,\"C2f\",[512]],"
    "[-1,1,\"Conv\",[512,3,2]],[[-1,9],1,\"Concat\",[1]],[-1,3,\"C2f\",[1024]],"
    "[[15,18,21],1,\"Detect\",[\"nc\"]]]";

/* yolov5n.yaml (ultralytics/yolov5 v6.0 - v7.0) rows; 'nc' and 'anchors' stay the names
 * parse_model resolves. */
static const char k_yolov5_layers[] =
    "\"backbone\":[[-1,1,\"Conv\",[64,6,2,2]],[-1,1,\"Conv\",[128,3,2]],[-1,3,\"C3\",[128]],"
    "[-1,1,\"Conv\",[256,3,2]],[-1,6,\"C3\",[256]],[-1,1,\"Conv\",[512,3,2]],[-1,9,\"C3\",[512]],"
    "[-1,1,\"Conv\",[1024,3,2]],[-1,3,\"C3\",[1024]],[-1,1,\"SPPF\",[1024,5]]],"
    "\"head\":[[-1,1,\"Conv\",[512,1,1]],[-1,1,\"nn.Upsample\",[null,2,\"nearest\"]],[[-1,6],1,\"Concat\",[1]],"
    "[-1,3,\"C3\",[512,false]],[-1,1,\"Conv\",[256,1,1]],[-1,1,\"nn.Upsample\",[null,2,\"nearest\"]],"
    "[[-1,4],1,\"Concat\",[1]],[-1,3,\"C3\",[256,false]],[-1,1,\"Conv\",[256,3,2]],[[-1,14],1,\"Concat\",[1]],"
    "[-1,3,\"C3\",[512,false]],[-1,1,\"Conv\",[512,3,2]],[[-1,10],1,\"Concat\",[1]],[-1,3,\"C3\",[1024,false]],"
    "[[17,20,23],1,\"Detect\",[\"nc\",\"anchors\"]]]";

/* The YOLOv5 model config as Model.yaml holds it: nc, depth_multiple, width_multiple (floats:
 * as text, see hy__pkw_float), anchors (per level na (w, h) pairs in input pixels: the model's
 * own, which AutoAnchor may have changed), ch and yolov5n.yaml's rows; plus hotyolo's scale and
 * yaml_file ("yolov5n.yaml": the scale for readers that take the multiples as text). */
static hy_status put_yaml_v5(ex *e, hy__pkw *w) {
    const hy__arch_cfg *c = &e->cfg;
    char anc[512];
    size_t k = 0;
    k += (size_t)snprintf(anc + k, sizeof anc - k, "[");
    for (int l = 0; l < c->arch->n_levels && l < HY_ARCH_MAX_LEVELS && k < sizeof anc; l++) {
        k += (size_t)snprintf(anc + k, sizeof anc - k, l ? ",[" : "[");
        for (int j = 0; j < 2 * c->na && j < 8 && k < sizeof anc; j++)
            k += (size_t)snprintf(anc + k, sizeof anc - k, j ? ",%.9g" : "%.9g", (double)c->anchors[l][j]);
        if (k < sizeof anc) k += (size_t)snprintf(anc + k, sizeof anc - k, "]");
    }
    if (k + 2 > sizeof anc) return hy__error(HY_ERR_UNSUPPORTED, "%s: anchors too long for the .pt config", e->in);
    snprintf(anc + k, sizeof anc - k, "]");
    char *head = afmt(&e->a,
                      "{\"nc\":%d,\"depth_multiple\":%.17g,\"width_multiple\":%.17g,\"anchors\":%s,\"ch\":3,"
                      "\"scale\":\"%s\",\"yaml_file\":\"yolov5%s.yaml\",",
                      c->nc, c->depth, c->width, anc, c->variant, c->variant);
    if (!head) return nomem();
    size_t n = strlen(head) + sizeof k_yolov5_layers + 2;
    char *text = hy__malloc(n);
    if (!text) return nomem();
    snprintf(text, n, "%s%s}", head, k_yolov5_layers);
    hy_status st = hy__pkw_json(w, text);
    hy__free(text);
    return st;
}

/* The model config: yolov8.yaml's rows, nc, scale and yaml_file ("yolov8n.yaml", which
 * DetectionModel(yaml_file, nc=nc) builds); no 'scales' (its multiples are floats, which a
 * weights_only pickle of torch 1.13 cannot hold: 'multiples' keeps them as text). */
static hy_status put_yaml(ex *e, hy__pkw *w) {
    const hy__arch_cfg *c = &e->cfg;
    if (!strcmp(c->arch->name, "yolov5")) return put_yaml_v5(e, w);
    if (strcmp(c->arch->name, "yolov8"))
        return hy__error(HY_ERR_UNSUPPORTED, "%s: export to .pt knows the YOLOv8 and YOLOv5 configs only, not %s",
                         e->in, c->arch->title);
    const char *scale = c->variant; /* "" for multiples no scale has */
    char *head = afmt(&e->a,
                      "{\"nc\":%d,\"scale\":\"%s\",\"yaml_file\":\"yolov8%s.yaml\",\"ch\":3,"
                      "\"multiples\":[%.17g,%.17g,%d],",
                      c->nc, scale, c->variant[0] ? c->variant : "", c->depth, c->width, c->max_channels);
    if (!head) return nomem();
    size_t n = strlen(head) + sizeof k_yolov8_layers + 2;
    char *text = hy__malloc(n);
    if (!text) return nomem();
    snprintf(text, n, "%s%s}", head, k_yolov8_layers);
    hy_status st = hy__pkw_json(w, text);
    hy__free(text);
    return st;
}

/* The training record of a hotyolo checkpoint (docs/training.md), when the input has one. */
static hy_status put_train_record(ex *e, hy__pkw *w) {
    const struct hy__st_file *st_f = hy__wfile_st(e->f);
    const char *args = st_f ? hy__st_meta(st_f, "hotyolo.train.args") : NULL;
    if (!args) return HY_OK;
    hy_status st;
    hy__pkw_str(w, "train_args");
    if ((st = hy__pkw_json(w, args))) return hy__error_prefix(st, "%s: hotyolo.train.args", e->in);
    const char *v = hy__st_meta(st_f, "hotyolo.train.epoch");
    hy__pkw_str(w, "epoch");
    hy__pkw_int(w, v ? strtoll(v, NULL, 10) : -1);
    v = hy__st_meta(st_f, "hotyolo.train.best_fitness");
    hy__pkw_str(w, "best_fitness");
    if (v) hy__pkw_float(w, strtod(v, NULL));
    else hy__pkw_none(w);
    const char *res = hy__st_meta(st_f, "hotyolo.train.results");
    if (!res) return HY_OK;
    /* train_metrics: the last validated epoch's metrics (Ultralytics' ckpt['train_metrics']);
     * train_results: every epoch's row as recorded */
    json_object *rows = json_tokener_parse(res);
    if (!rows || !json_object_is_type(rows, json_type_array)) {
        json_object_put(rows);
        return hy__error(HY_ERR_FORMAT, "%s: hotyolo.train.results is not a JSON array", e->in);
    }
    json_object *last = NULL;
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *r = json_object_array_get_idx(rows, i), *val;
        if (json_object_object_get_ex(r, "validated", &val) && json_object_get_boolean(val)) last = r;
    }
    json_object *m = json_object_new_object();
    if (last) {
        json_object_object_foreach(last, key, val) {
            if (!strncmp(key, "metrics/", 8) || !strcmp(key, "fitness"))
                json_object_object_add(m, key, json_object_get(val));
        }
    }
    hy__pkw_str(w, "train_metrics");
    st = hy__pkw_json(w, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    json_object_put(m);
    hy__pkw_str(w, "train_results");
    if (!st) st = hy__pkw_json(w, res);
    json_object_put(rows);
    return st;
}

static hy_status export_pt(ex *e) {
    hy_status st = HY_OK;
    hy__resolved *r = &e->res;
    hy_dtype to = e->p->half ? HY_DTYPE_F16 : HY_DTYPE_F32;
    hy__wtensor *t = hy__calloc((size_t)r->n, sizeof *t);
    void **bufs = hy__calloc((size_t)r->n, sizeof *bufs);
    float *tmp = NULL;
    hy__pkw w = {0};
    if (!t || !bufs) {
        st = nomem();
        goto done;
    }
    size_t max_numel = 1;
    for (int i = 0; i < r->n; i++) max_numel = HY_MAX(max_numel, r->t[i].numel);
    if (!(tmp = hy__malloc(max_numel * sizeof(float)))) {
        st = nomem();
        goto done;
    }
    for (int i = 0; i < r->n; i++) {
        t[i] = r->t[i];
        hy_dtype d = t[i].dtype;
        int is_float = d == HY_DTYPE_F32 || d == HY_DTYPE_F16 || d == HY_DTYPE_BF16 || d == HY_DTYPE_F64;
        if (!is_float || d == to) continue;
        if (!(bufs[i] = hy__malloc(t[i].numel * hy_dtype_size(to) + 1))) {
            st = nomem();
            goto done;
        }
        if ((st = hy__wtensor_to_f32(&r->t[i], tmp))) goto done;
        for (size_t k = 0; k < t[i].numel; k++) {
            if (to == HY_DTYPE_F32) memcpy((char *)bufs[i] + 4 * k, &tmp[k], 4);
            else {
                uint16_t h = hy__f32_to_f16(tmp[k]);
                memcpy((char *)bufs[i] + 2 * k, &h, 2);
            }
        }
        t[i].dtype = to;
        t[i].data = bufs[i];
    }
    /* {'state_dict': OrderedDict, 'yaml': {...}, 'names': {i: name}, train record, 'date',
     * 'version', 'hotyolo': {...}} */
    hy__pkw_proto(&w);
    hy__pkw_dict_begin(&w, 0);
    hy__pkw_str(&w, "state_dict");
    hy__pkw_dict_begin(&w, 1);
    for (int i = 0; i < r->n; i++) {
        hy__pkw_str(&w, t[i].name);
        hy__pkw_tensor(&w, &t[i], (size_t)i);
    }
    hy__pkw_dict_end(&w);
    hy__pkw_str(&w, "yaml");
    if ((st = put_yaml(e, &w))) goto done;
    hy__pkw_str(&w, "names");
    hy__pkw_dict_begin(&w, 0);
    for (int i = 0; i < e->cfg.nc; i++) {
        hy__pkw_int(&w, i);
        hy__pkw_str(&w, e->names[i]);
    }
    hy__pkw_dict_end(&w);
    hy__pkw_str(&w, "fused");
    hy__pkw_bool(&w, e->src->fused);
    if ((st = put_train_record(e, &w))) goto done;
    char date[32];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    hy__pkw_str(&w, "date");
    hy__pkw_str(&w, date);
    hy__pkw_str(&w, "version");
    hy__pkw_str(&w, hy_version());
    hy__pkw_str(&w, "exporter");
    hy__pkw_str(&w, "hotyolo");
    hy__pkw_dict_end(&w);
    hy__pkw_stop(&w);
    st = hy__pt_write(e->out, &w, t, (size_t)r->n, e->p->overwrite);
done:
    if (bufs)
        for (int i = 0; i < r->n; i++) hy__free(bufs[i]);
    hy__free(bufs);
    hy__free(t);
    hy__free(tmp);
    hy__pkw_free(&w);
    return st;
}

// --- ONNX -----------------------------------------------------------------------------------

typedef struct og {
    ex *e;
    hy__onnx_wnode *nodes;
    size_t n_nodes, cap_nodes;
    hy__onnx_winit *inits;
    size_t n_inits, cap_inits;
    const hy__graph *g;
    char **tname;       /* (g->n_tensors) ONNX name of each graph tensor, NULL until made */
    uint8_t *raw_cls;   /* (g->n_tensors) Detect class logits: sigmoid applied after the concat */
    float **fw, **fb;   /* (n_convs) folded weights */
    size_t n_names;     /* tensor names made (keeps them unique) */
    hy_status st;
} og;

static hy__onnx_wnode *node(og *o, const char *op, const char *name) {
    if (o->st) return NULL;
    if (o->n_nodes == o->cap_nodes) {
        size_t cap = o->cap_nodes ? 2 * o->cap_nodes : 256;
        hy__onnx_wnode *n = hy__realloc(o->nodes, cap * sizeof *n);
        if (!n) {
            o->st = nomem();
            return NULL;
        }
        o->nodes = n;
        o->cap_nodes = cap;
    }
    hy__onnx_wnode *n = &o->nodes[o->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op_type = op;
    n->name = afmt(&o->e->a, "/%s/%s_%zu", name, op, o->n_nodes);
    if (!n->name) o->st = nomem();
    return n;
}

static void in(hy__onnx_wnode *n, const char *s) {
    if (n && n->n_inputs < HY_ONNX_W_MAX_IO) n->inputs[n->n_inputs++] = s;
}

/* A fresh tensor name made from base. */
static const char *out(og *o, hy__onnx_wnode *n, const char *base, const char *sfx) {
    if (!n) return "";
    const char *s = afmt(&o->e->a, "%s_%s%zu", base, sfx, o->n_names++);
    if (!s) {
        o->st = nomem();
        return "";
    }
    n->outputs[n->n_outputs++] = s;
    return s;
}

static void attr_i(hy__onnx_wnode *n, const char *name, int64_t v) {
    if (!n || n->n_attrs >= HY_ONNX_W_MAX_ATTRS) return;
    hy__onnx_wattr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name, a->type = 2, a->i = v;
}
static void attr_s(hy__onnx_wnode *n, const char *name, const char *v) {
    if (!n || n->n_attrs >= HY_ONNX_W_MAX_ATTRS) return;
    hy__onnx_wattr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name, a->type = 3, a->s = v;
}
static void attr_f(hy__onnx_wnode *n, const char *name, float v) {
    if (!n || n->n_attrs >= HY_ONNX_W_MAX_ATTRS) return;
    hy__onnx_wattr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name, a->type = 1, a->f = v;
}
static void attr_ints(hy__onnx_wnode *n, const char *name, int64_t v, int count) {
    if (!n || n->n_attrs >= HY_ONNX_W_MAX_ATTRS) return;
    hy__onnx_wattr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name, a->type = 7, a->n_ints = count;
    for (int i = 0; i < count; i++) a->ints[i] = v;
}

/* An initializer; data is copied into the arena when copy (else borrowed). */
static const char *init(og *o, const char *name, int dtype, int ndim, const int64_t *dims, const void *data,
                        size_t nbytes, int copy) {
    if (o->st) return "";
    if (!name) {
        o->st = nomem();
        return "";
    }
    if (o->n_inits == o->cap_inits) {
        size_t cap = o->cap_inits ? 2 * o->cap_inits : 256;
        hy__onnx_winit *t = hy__realloc(o->inits, cap * sizeof *t);
        if (!t) {
            o->st = nomem();
            return "";
        }
        o->inits = t;
        o->cap_inits = cap;
    }
    hy__onnx_winit *t = &o->inits[o->n_inits];
    memset(t, 0, sizeof *t);
    t->name = hy__arena_strndup(&o->e->a, name, strlen(name));
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
    t->nbytes = nbytes;
    t->data = data;
    if (copy) {
        void *c = hy__arena_alloc(&o->e->a, nbytes ? nbytes : 1, 8);
        if (c && nbytes) memcpy(c, data, nbytes);
        t->data = c;
    }
    if (!t->name || !t->data) {
        o->st = nomem();
        return "";
    }
    o->n_inits++;
    return t->name;
}

static const char *init_i64(og *o, const char *name, const int64_t *v, int n) {
    int64_t d = n;
    return init(o, name, HY_ONNX_INT64, 1, &d, v, (size_t)n * 8, 1);
}

/* The ONNX name of graph tensor t: a node output, the input, or a C2f channel slice made
 * here as a Split of the tensor it views. */
static const char *tensor_name(og *o, int t) {
    if (o->st) return "";
    if (o->tname[t]) return o->tname[t];
    const hy__tensor *x = &o->g->tensors[t];
    if (x->producer >= 0 || x->view_src < 0) {
        o->st = hy__error(HY_ERR_UNSUPPORTED, "export: graph tensor %s is used before it is made", x->name);
        return "";
    }
    const hy__tensor *s = &o->g->tensors[x->view_src];
    int64_t hw = s->ne[2] * s->ne[3], c0 = (int64_t)x->view_offs / hw, c = x->ne[1], C = s->ne[1];
    int64_t parts[3];
    int np = 0, mine = 0;
    if (c0 > 0) parts[np++] = c0;
    mine = np;
    parts[np++] = c;
    if (C - c0 - c > 0) parts[np++] = C - c0 - c;
    const char *src = tensor_name(o, x->view_src);
    hy__onnx_wnode *n = node(o, "Split", x->name);
    in(n, src);
    in(n, init_i64(o, afmt(&o->e->a, "split_%d", t), parts, np));
    attr_i(n, "axis", 1);
    const char *mine_name = "";
    for (int k = 0; k < np; k++) {
        const char *nm = out(o, n, x->name, "split");
        if (k == mine) mine_name = nm;
    }
    return o->tname[t] = (char *)mine_name;
}

static void emit_conv(og *o, const hy__node *gn) {
    const hy__conv2d_params *p = &gn->p.conv;
    const hy__conv_spec *c = &o->e->spec->convs[p->weight_id];
    char wn[128], bn[128];
    snprintf(wn, sizeof wn, c->has_bn ? "%s.conv.weight" : "%s.weight", c->prefix);
    snprintf(bn, sizeof bn, c->has_bn ? "%s.conv.bias" : "%s.bias", c->prefix);
    int64_t wd[4] = {c->cout, c->cin / HY_MAX(c->groups, 1), c->k, c->k}, bd[1] = {c->cout};
    size_t nw = (size_t)(wd[0] * wd[1] * wd[2] * wd[3]);
    const char *x = tensor_name(o, gn->src[0]);
    hy__onnx_wnode *n = node(o, "Conv", gn->name);
    in(n, x);
    in(n, init(o, wn, HY_ONNX_FLOAT, 4, wd, o->fw[p->weight_id], nw * 4, 0));
    in(n, init(o, bn, HY_ONNX_FLOAT, 1, bd, o->fb[p->weight_id], (size_t)c->cout * 4, 0));
    attr_ints(n, "dilations", 1, 2);
    attr_i(n, "group", HY_MAX(c->groups, 1));
    attr_ints(n, "kernel_shape", c->k, 2);
    attr_ints(n, "pads", p->pad, 4);
    attr_ints(n, "strides", c->stride, 2);
    const char *y = out(o, n, gn->name, "conv");
    if (p->act == HY_ACT_SILU) { /* x * sigmoid(x), as torch exports SiLU */
        hy__onnx_wnode *s = node(o, "Sigmoid", gn->name);
        in(s, y);
        const char *sy = out(o, s, gn->name, "sig");
        hy__onnx_wnode *m = node(o, "Mul", gn->name);
        in(m, y);
        in(m, sy);
        y = out(o, m, gn->name, "act");
    } else if (p->act == HY_ACT_SIGMOID && !o->raw_cls[gn->dst]) {
        hy__onnx_wnode *s = node(o, "Sigmoid", gn->name);
        in(s, y);
        y = out(o, s, gn->name, "sig");
    }
    if (gn->n_src > 1) {
        hy__onnx_wnode *a = node(o, "Add", gn->name);
        in(a, tensor_name(o, gn->src[1]));
        in(a, y);
        y = out(o, a, gn->name, "add");
    }
    o->tname[gn->dst] = (char *)y;
}

/* Detect as Ultralytics exports it: per level cat(box, cls) -> view (1, no, h*w); cat over
 * levels; split (4 * reg_max, nc); DFL (softmax over the bins, 1x1 conv with arange);
 * dist2bbox xywh * strides; cat(boxes, sigmoid(cls)). */
static void emit_detect(og *o, const hy__node *gn) {
    const hy__detect_params *dp = &gn->p.detect;
    const char *nm = gn->name;
    int no = 4 * dp->reg_max + dp->nc;
    const char *lv[4];
    int64_t A = 0, hw[4];
    for (int i = 0; i < dp->n_levels; i++) {
        const hy__tensor *b = &o->g->tensors[gn->src[2 * i]];
        hw[i] = b->ne[2] * b->ne[3];
        hy__onnx_wnode *c = node(o, "Concat", nm);
        in(c, tensor_name(o, gn->src[2 * i]));
        in(c, tensor_name(o, gn->src[2 * i + 1]));
        attr_i(c, "axis", 1);
        const char *y = out(o, c, nm, "cat");
        hy__onnx_wnode *r = node(o, "Reshape", nm);
        in(r, y);
        in(r, init_i64(o, afmt(&o->e->a, "%s.shape%d", nm, i), (int64_t[]){1, no, hw[i]}, 3));
        lv[i] = out(o, r, nm, "view");
        A += hw[i];
    }
    hy__onnx_wnode *c = node(o, "Concat", nm);
    for (int i = 0; i < dp->n_levels; i++) in(c, lv[i]);
    attr_i(c, "axis", 2);
    const char *x = out(o, c, nm, "cat");
    hy__onnx_wnode *s = node(o, "Split", nm);
    in(s, x);
    in(s, init_i64(o, afmt(&o->e->a, "%s.split", nm), (int64_t[]){4 * dp->reg_max, dp->nc}, 2));
    attr_i(s, "axis", 1);
    const char *box = out(o, s, nm, "box"), *cls = out(o, s, nm, "cls");
    /* DFL */
    char dn[96];
    snprintf(dn, sizeof dn, "%s.dfl", nm);
    hy__onnx_wnode *r = node(o, "Reshape", dn);
    in(r, box);
    in(r, init_i64(o, afmt(&o->e->a, "%s.shape", dn), (int64_t[]){1, 4, dp->reg_max, A}, 4));
    x = out(o, r, dn, "view");
    hy__onnx_wnode *tr = node(o, "Transpose", dn);
    in(tr, x);
    if (tr && tr->n_attrs < HY_ONNX_W_MAX_ATTRS) {
        hy__onnx_wattr *a = &tr->attrs[tr->n_attrs++];
        memset(a, 0, sizeof *a);
        a->name = "perm", a->type = 7, a->n_ints = 4;
        a->ints[0] = 0, a->ints[1] = 2, a->ints[2] = 1, a->ints[3] = 3;
    }
    x = out(o, tr, dn, "t");
    hy__onnx_wnode *sm = node(o, "Softmax", dn);
    in(sm, x);
    attr_i(sm, "axis", 1);
    x = out(o, sm, dn, "softmax");
    char wn[112];
    snprintf(wn, sizeof wn, "%s.conv.weight", dn);
    const hy__wtensor *dw = NULL;
    for (int i = 0; i < o->e->res.n; i++)
        if (!strcmp(o->e->res.t[i].name, wn)) dw = &o->e->res.t[i];
    float *proj = hy__arena_alloc(&o->e->a, (size_t)dp->reg_max * 4, 8);
    if (!proj) {
        o->st = nomem();
        return;
    }
    if (dw && dw->numel == (size_t)dp->reg_max) {
        hy_status st = hy__wtensor_to_f32(dw, proj);
        if (st && !o->st) o->st = st;
    } else {
        for (int i = 0; i < dp->reg_max; i++) proj[i] = (float)i;
    }
    hy__onnx_wnode *cv = node(o, "Conv", dn);
    in(cv, x);
    in(cv, init(o, wn, HY_ONNX_FLOAT, 4, (int64_t[]){1, dp->reg_max, 1, 1}, proj, (size_t)dp->reg_max * 4, 0));
    attr_ints(cv, "dilations", 1, 2);
    attr_i(cv, "group", 1);
    attr_ints(cv, "kernel_shape", 1, 2);
    attr_ints(cv, "pads", 0, 4);
    attr_ints(cv, "strides", 1, 2);
    x = out(o, cv, dn, "conv");
    r = node(o, "Reshape", dn);
    in(r, x);
    in(r, init_i64(o, afmt(&o->e->a, "%s.shape2", dn), (int64_t[]){1, 4, A}, 3));
    x = out(o, r, dn, "dist");
    /* anchors (1, 2, A) cell centres and strides (1, A), as make_anchors(offset 0.5) */
    float *anc = hy__arena_alloc(&o->e->a, (size_t)A * 2 * 4, 8), *str = hy__arena_alloc(&o->e->a, (size_t)A * 4, 8);
    if (!anc || !str) {
        o->st = nomem();
        return;
    }
    int64_t k = 0;
    for (int i = 0; i < dp->n_levels; i++) {
        const hy__tensor *b = &o->g->tensors[gn->src[2 * i]];
        for (int64_t yy = 0; yy < b->ne[2]; yy++)
            for (int64_t xx = 0; xx < b->ne[3]; xx++, k++) {
                anc[k] = (float)xx + 0.5f;
                anc[A + k] = (float)yy + 0.5f;
                str[k] = (float)dp->stride[i];
            }
    }
    const char *an = init(o, "anchors", HY_ONNX_FLOAT, 3, (int64_t[]){1, 2, A}, anc, (size_t)A * 8, 0);
    const char *sn = init(o, "strides", HY_ONNX_FLOAT, 2, (int64_t[]){1, A}, str, (size_t)A * 4, 0);
    static const float two = 2.0f;
    const char *twon = init(o, "two", HY_ONNX_FLOAT, 0, NULL, &two, 4, 1);
    hy__onnx_wnode *sp = node(o, "Split", nm);
    in(sp, x);
    in(sp, init_i64(o, afmt(&o->e->a, "%s.split2", nm), (int64_t[]){2, 2}, 2));
    attr_i(sp, "axis", 1);
    const char *lt = out(o, sp, nm, "lt"), *rb = out(o, sp, nm, "rb");
    hy__onnx_wnode *n1 = node(o, "Sub", nm);
    in(n1, an);
    in(n1, lt);
    const char *x1y1 = out(o, n1, nm, "x1y1");
    hy__onnx_wnode *n2 = node(o, "Add", nm);
    in(n2, an);
    in(n2, rb);
    const char *x2y2 = out(o, n2, nm, "x2y2");
    hy__onnx_wnode *n3 = node(o, "Add", nm);
    in(n3, x1y1);
    in(n3, x2y2);
    const char *sum = out(o, n3, nm, "sum");
    hy__onnx_wnode *n4 = node(o, "Div", nm);
    in(n4, sum);
    in(n4, twon);
    const char *cxy = out(o, n4, nm, "cxy");
    hy__onnx_wnode *n5 = node(o, "Sub", nm);
    in(n5, x2y2);
    in(n5, x1y1);
    const char *wh = out(o, n5, nm, "wh");
    hy__onnx_wnode *n6 = node(o, "Concat", nm);
    in(n6, cxy);
    in(n6, wh);
    attr_i(n6, "axis", 1);
    const char *db = out(o, n6, nm, "dbox");
    hy__onnx_wnode *n7 = node(o, "Mul", nm);
    in(n7, db);
    in(n7, sn);
    const char *dbs = out(o, n7, nm, "boxes");
    hy__onnx_wnode *n8 = node(o, "Sigmoid", nm);
    in(n8, cls);
    const char *sc = out(o, n8, nm, "scores");
    hy__onnx_wnode *n9 = node(o, "Concat", nm);
    in(n9, dbs);
    in(n9, sc);
    attr_i(n9, "axis", 1);
    if (n9) n9->outputs[n9->n_outputs++] = "output0";
    o->tname[gn->dst] = "output0";
}

static void attr_perm(hy__onnx_wnode *n, const int64_t *perm, int count) {
    if (!n || n->n_attrs >= HY_ONNX_W_MAX_ATTRS) return;
    hy__onnx_wattr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = "perm", a->type = 7, a->n_ints = count;
    for (int i = 0; i < count; i++) a->ints[i] = perm[i];
}

/* YOLOv5's Detect as its export.py writes it (models/yolo.py Detect.forward, export=True), per
 * level l with na anchors, no = 5 + nc:
 *   (1, na * no, h, w) -> Reshape (1, na, no, h, w) -> Transpose (1, na, h, w, no) -> Sigmoid
 *   -> Split (2, 2, nc + 1) on axis 4: xy = (2 xy + grid) * stride, wh = (2 wh)^2 * anchor_grid
 *   -> Concat axis 4 -> Reshape (1, na * h * w, no); then Concat of the levels on axis 1.
 * grid (1, h, w, 2) holds (x - 0.5, y - 0.5), anchor_grid (na, 1, 1, 2) the anchors in input
 * pixels; both broadcast over the 5-D tensor (initializers have at most 4 dimensions here). */
static void emit_detect_anchor(og *o, const hy__node *gn) {
    const hy__detect_anchor_params *dp = &gn->p.danchor;
    const char *nm = gn->name;
    const int64_t na = dp->na, no = 5 + (int64_t)dp->nc;
    if (dp->n_levels < 1 || dp->n_levels > 4 || gn->n_src != dp->n_levels || na < 1 || na > HY_DETECT_MAX_ANCHORS) {
        o->st = hy__error(HY_ERR_UNSUPPORTED, "export: %s: anchor Detect with %d levels, %d anchors", nm,
                          dp->n_levels, dp->na);
        return;
    }
    static const float two = 2.0f;
    const char *twon = init(o, afmt(&o->e->a, "%s.two", nm), HY_ONNX_FLOAT, 0, NULL, &two, 4, 1);
    const char *lv[4] = {0};
    for (int l = 0; l < dp->n_levels && !o->st; l++) {
        const hy__tensor *b = &o->g->tensors[gn->src[l]];
        const int64_t h = b->ne[2], w = b->ne[3];
        if (b->ne[1] != na * no) {
            o->st = hy__error(HY_ERR_UNSUPPORTED, "export: %s level %d has %lld channels, not na * (5 + nc) = %lld",
                              nm, l, (long long)b->ne[1], (long long)(na * no));
            return;
        }
        char ln[96];
        snprintf(ln, sizeof ln, "%s.%d", nm, l);
        hy__onnx_wnode *r = node(o, "Reshape", ln);
        in(r, tensor_name(o, gn->src[l]));
        in(r, init_i64(o, afmt(&o->e->a, "%s.shape", ln), (int64_t[]){1, na, no, h, w}, 5));
        const char *x = out(o, r, ln, "view");
        hy__onnx_wnode *t = node(o, "Transpose", ln);
        in(t, x);
        attr_perm(t, (const int64_t[]){0, 1, 3, 4, 2}, 5);
        x = out(o, t, ln, "t");
        hy__onnx_wnode *sg = node(o, "Sigmoid", ln);
        in(sg, x);
        x = out(o, sg, ln, "sig");
        hy__onnx_wnode *sp = node(o, "Split", ln);
        in(sp, x);
        in(sp, init_i64(o, afmt(&o->e->a, "%s.split", ln), (int64_t[]){2, 2, no - 4}, 3));
        attr_i(sp, "axis", 4);
        const char *xy = out(o, sp, ln, "xy"), *wh = out(o, sp, ln, "wh"), *conf = out(o, sp, ln, "conf");
        /* constants: grid (1, h, w, 2), anchor_grid (na, 1, 1, 2), stride () */
        float *grid = hy__arena_alloc(&o->e->a, (size_t)(h * w * 2) * 4, 8);
        float *ag = hy__arena_alloc(&o->e->a, (size_t)(na * 2) * 4, 8);
        if (!grid || !ag) {
            o->st = nomem();
            return;
        }
        for (int64_t yy = 0, k = 0; yy < h; yy++)
            for (int64_t xx = 0; xx < w; xx++, k += 2) {
                grid[k] = (float)xx - 0.5f;
                grid[k + 1] = (float)yy - 0.5f;
            }
        for (int64_t a = 0; a < 2 * na; a++) ag[a] = dp->anchors[l][a];
        float stride = (float)dp->stride[l];
        const char *gname = init(o, afmt(&o->e->a, "%s.grid", ln), HY_ONNX_FLOAT, 4, (int64_t[]){1, h, w, 2}, grid,
                                 (size_t)(h * w * 2) * 4, 0);
        const char *aname = init(o, afmt(&o->e->a, "%s.anchor_grid", ln), HY_ONNX_FLOAT, 4,
                                 (int64_t[]){na, 1, 1, 2}, ag, (size_t)(na * 2) * 4, 0);
        const char *sname = init(o, afmt(&o->e->a, "%s.stride", ln), HY_ONNX_FLOAT, 0, NULL, &stride, 4, 1);
        hy__onnx_wnode *m = node(o, "Mul", ln);
        in(m, xy);
        in(m, twon);
        x = out(o, m, ln, "xy2");
        hy__onnx_wnode *ad = node(o, "Add", ln);
        in(ad, x);
        in(ad, gname);
        x = out(o, ad, ln, "xyg");
        m = node(o, "Mul", ln);
        in(m, x);
        in(m, sname);
        xy = out(o, m, ln, "xys");
        m = node(o, "Mul", ln);
        in(m, wh);
        in(m, twon);
        x = out(o, m, ln, "wh2");
        m = node(o, "Mul", ln);
        in(m, x);
        in(m, x);
        x = out(o, m, ln, "whsq");
        m = node(o, "Mul", ln);
        in(m, x);
        in(m, aname);
        wh = out(o, m, ln, "wha");
        hy__onnx_wnode *c = node(o, "Concat", ln);
        in(c, xy);
        in(c, wh);
        in(c, conf);
        attr_i(c, "axis", 4);
        x = out(o, c, ln, "cat");
        r = node(o, "Reshape", ln);
        in(r, x);
        in(r, init_i64(o, afmt(&o->e->a, "%s.shape2", ln), (int64_t[]){1, na * h * w, no}, 3));
        lv[l] = out(o, r, ln, "rows");
    }
    hy__onnx_wnode *c = node(o, "Concat", nm);
    for (int l = 0; l < dp->n_levels; l++) in(c, lv[l]);
    attr_i(c, "axis", 1);
    if (c) c->outputs[c->n_outputs++] = "output0";
    o->tname[gn->dst] = "output0";
}

/* Python str() of a str (repr quoting: '...' unless it holds ' and no "). */
static void py_repr(char *dst, size_t cap, const char *s, size_t *pos) {
    int dq = strchr(s, '\'') && !strchr(s, '"');
    char q = dq ? '"' : '\'';
    size_t k = *pos;
#define PUT(ch) do { if (k + 1 < cap) dst[k] = (ch); k++; } while (0)
    PUT(q);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *e = NULL;
        if (*p == '\\') e = "\\\\";
        else if (*p == '\n') e = "\\n";
        else if (*p == '\r') e = "\\r";
        else if (*p == '\t') e = "\\t";
        else if (*p == (unsigned char)q) e = dq ? "\\\"" : "\\'";
        else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            e = esc;
        }
        if (e)
            for (; *e; e++) PUT(*e);
        else
            PUT((char)*p);
    }
    PUT(q);
#undef PUT
    *pos = k;
}

static hy_status export_onnx(ex *e) {
    const hy__arch_cfg *cfg = &e->cfg;
    int sz = e->imgsz;
    hy__graph *g = NULL;
    og o = {.e = e};
    char *names = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    hy_status st = hy__arch_graph_build(cfg, 1, sz, sz, &g);
    if (st) return st;
    o.g = g;
    int nc_conv = e->spec->n_convs;
    o.tname = hy__calloc((size_t)g->n_tensors, sizeof *o.tname);
    o.raw_cls = hy__calloc((size_t)g->n_tensors, 1);
    o.fw = hy__calloc((size_t)nc_conv, sizeof *o.fw);
    o.fb = hy__calloc((size_t)nc_conv, sizeof *o.fb);
    if (!o.tname || !o.raw_cls || !o.fw || !o.fb) {
        st = nomem();
        goto done;
    }
    for (int k = 0; k < nc_conv; k++) {
        const hy__conv_spec *c = &e->spec->convs[k];
        size_t nw = (size_t)c->cout * (size_t)(c->cin / HY_MAX(c->groups, 1)) * (size_t)c->k * (size_t)c->k;
        o.fw[k] = hy__malloc(nw * sizeof(float));
        o.fb[k] = hy__malloc(((size_t)c->cout + 1) * sizeof(float));
        if (!o.fw[k] || !o.fb[k]) {
            st = nomem();
            goto done;
        }
        if ((st = hy__fold_conv(&e->res, e->src->fused, c, o.fw[k], o.fb[k], e->in))) goto done;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == HY_OP_DETECT)
            for (int l = 0; l < g->nodes[i].p.detect.n_levels; l++) o.raw_cls[g->nodes[i].src[2 * l + 1]] = 1;
    const hy__node *anchor_head = NULL; /* a YOLOv5 Detect: YOLOv5's output shape and metadata */
    for (int i = 0; i < g->n_nodes && !o.st; i++) {
        const hy__node *gn = &g->nodes[i];
        switch (gn->op) {
        case HY_OP_INPUT: o.tname[gn->dst] = "images"; break;
        case HY_OP_CONV2D: emit_conv(&o, gn); break;
        case HY_OP_MAXPOOL2D: {
            const char *x = tensor_name(&o, gn->src[0]);
            hy__onnx_wnode *n = node(&o, "MaxPool", gn->name);
            in(n, x);
            attr_i(n, "ceil_mode", 0);
            attr_ints(n, "kernel_shape", gn->p.pool.k, 2);
            attr_ints(n, "pads", gn->p.pool.k / 2, 4);
            attr_ints(n, "strides", 1, 2);
            o.tname[gn->dst] = (char *)out(&o, n, gn->name, "pool");
            break;
        }
        case HY_OP_UPSAMPLE2X: {
            static const float scales[4] = {1, 1, 2, 2};
            const char *x = tensor_name(&o, gn->src[0]);
            hy__onnx_wnode *n = node(&o, "Resize", gn->name);
            in(n, x);
            in(n, "");
            in(n, init(&o, afmt(&e->a, "%s.scales", gn->name), HY_ONNX_FLOAT, 1, (int64_t[]){4}, scales, 16, 1));
            attr_s(n, "coordinate_transformation_mode", "asymmetric");
            attr_f(n, "cubic_coeff_a", -0.75f);
            attr_s(n, "mode", "nearest");
            attr_s(n, "nearest_mode", "floor");
            o.tname[gn->dst] = (char *)out(&o, n, gn->name, "up");
            break;
        }
        case HY_OP_CONCAT: {
            const char *xs[HY_GRAPH_MAX_SRC];
            for (int k = 0; k < gn->n_src; k++) xs[k] = tensor_name(&o, gn->src[k]);
            hy__onnx_wnode *n = node(&o, "Concat", gn->name);
            for (int k = 0; k < gn->n_src; k++) in(n, xs[k]);
            attr_i(n, "axis", 1);
            o.tname[gn->dst] = (char *)out(&o, n, gn->name, "cat");
            break;
        }
        case HY_OP_DETECT: emit_detect(&o, gn); break;
        case HY_OP_DETECT_ANCHOR:
            emit_detect_anchor(&o, gn);
            anchor_head = gn;
            break;
        default: o.st = hy__error(HY_ERR_UNSUPPORTED, "export: graph op %s has no ONNX form", hy__op_name(gn->op));
        }
    }
    if ((st = o.st)) goto done;
    if (!o.tname[g->output] || strcmp(o.tname[g->output], "output0")) {
        st = hy__error(HY_ERR_UNSUPPORTED, "export: the graph's output is not a Detect head");
        goto done;
    }
    /* metadata_props as Ultralytics' exporter writes them (str() of each value) */
    size_t cap = 64;
    for (int i = 0; i < cfg->nc; i++) cap += 4 * strlen(e->names[i]) + 16;
    if (!(names = hy__malloc(cap))) {
        st = nomem();
        goto done;
    }
    size_t pos = 0;
    names[pos++] = '{';
    for (int i = 0; i < cfg->nc; i++) {
        pos += (size_t)snprintf(names + pos, cap - pos, "%s%d: ", i ? ", " : "", i);
        py_repr(names, cap, e->names[i], &pos);
    }
    names[pos++] = '}';
    names[pos] = 0;
    char desc[96], stride[16], imgsz[48], date[32];
    snprintf(desc, sizeof desc, "Ultralytics %s%s model exported by hotyolo", cfg->arch->title, cfg->variant);
    snprintf(stride, sizeof stride, "%d", cfg->arch->stride_max);
    snprintf(imgsz, sizeof imgsz, "[%d, %d]", sz, sz);
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tmv);
    const char *mk[] = {"description", "author", "license", "date", "version", "stride", "task", "batch", "imgsz", "names"};
    const char *mv[] = {desc, "hotyolo", "AGPL-3.0 https://ultralytics.com/license", date, hy_version(), stride,
                        cfg->arch->task, "1", imgsz, names};
    /* YOLOv8: output (1, 4 + nc, A). YOLOv5: (1, A, 5 + nc), rows = na * cells, and only the
     * metadata YOLOv5's export.py writes: {'stride': int(max(model.stride)), 'names': model.names} */
    int64_t odims[3] = {1, 4 + cfg->nc, hy__arch_num_anchors(cfg, sz, sz)};
    size_t n_meta = HY_ARRAY_LEN(mk);
    const char *const *mkp = mk, *const *mvp = mv;
    static const char *const mk5[] = {"stride", "names"};
    const char *mv5[2] = {stride, names};
    if (anchor_head) {
        const hy__detect_anchor_params *dp = &anchor_head->p.danchor;
        int64_t rows = 0;
        int smax = 0;
        for (int l = 0; l < dp->n_levels; l++) {
            const hy__tensor *t = &g->tensors[anchor_head->src[l]];
            rows += (int64_t)dp->na * t->ne[2] * t->ne[3];
            smax = HY_MAX(smax, dp->stride[l]);
        }
        odims[1] = rows;
        odims[2] = 5 + (int64_t)cfg->nc;
        snprintf(stride, sizeof stride, "%d", smax);
        mkp = mk5, mvp = mv5, n_meta = 2;
    }
    hy__onnx_wgraph wg = {
        .name = "main_graph", .producer = "hotyolo", .producer_version = hy_version(),
        .ir_version = 8, .opset = 17,
        .nodes = o.nodes, .n_nodes = o.n_nodes, .inits = o.inits, .n_inits = o.n_inits,
        .input = {.name = "images", .ndim = 4, .dims = {1, 3, sz, sz}},
        .output = {.name = "output0", .ndim = 3, .dims = {odims[0], odims[1], odims[2]}},
        .meta_keys = mkp, .meta_vals = mvp, .n_meta = n_meta,
    };
    if ((st = hy__onnx_write(&wg, &buf, &len))) goto done;
    hy__wpart part = {buf, len};
    st = hy__write_file(e->out, &part, 1, e->p->overwrite);
done:
    hy__free(buf);
    hy__free(names);
    if (o.fw)
        for (int k = 0; k < nc_conv; k++) hy__free(o.fw[k]);
    if (o.fb)
        for (int k = 0; k < nc_conv; k++) hy__free(o.fb[k]);
    hy__free(o.fw);
    hy__free(o.fb);
    hy__free(o.tname);
    hy__free(o.raw_cls);
    hy__free(o.nodes);
    hy__free(o.inits);
    hy__graph_free(g);
    return st;
}

// --- entry ----------------------------------------------------------------------------------

hy_status hy_export(const char *in_path, const char *out_path, const hy_export_params *params) {
    if (!in_path || !out_path) return hy__error(HY_ERR_INVALID_ARG, "hy_export: input and output paths are required");
    hy_export_params p = params ? *params : hy_export_default_params();
    if (p.format < 0 || p.format >= HY_EXPORT_FORMAT_COUNT)
        return hy__error(HY_ERR_INVALID_ARG, "hy_export: unknown format %d", (int)p.format);
    if (p.imgsz && (p.imgsz < 32 || p.imgsz > 8192 || p.imgsz % 32))
        return hy__error(HY_ERR_INVALID_ARG, "imgsz %d: a multiple of 32 from 32 to 8192", p.imgsz);
    ex e;
    memset(&e, 0, sizeof e);
    e.in = in_path;
    e.out = out_path;
    e.p = &p;
    hy__arena_init(&e.a, HY_ARENA_NO_LIMIT);
    hy_status st = hy__wfile_open(in_path, p.verify, &e.f);
    if (st) goto done;
    e.src = hy__wfile_source(e.f);
    hy_model_params lp = hy_model_default_params();
    if ((st = hy__arch_cfg_from_source(e.src, in_path, 0, &e.cfg))) goto done;
    if ((st = hy__model_spec_create(&e.cfg, &e.spec))) goto done;
    if ((st = hy__model_resolve(e.spec, e.src, &lp, in_path, e.cfg.nc, &e.res, &e.rep))) goto done;
    e.imgsz = p.imgsz ? p.imgsz : (e.src->imgsz > 0 && e.src->imgsz % 32 == 0 ? e.src->imgsz : 640);
    e.names = hy__arena_array(&e.a, (size_t)e.cfg.nc, sizeof *e.names);
    if (!e.names) {
        st = nomem();
        goto done;
    }
    for (int i = 0; i < e.cfg.nc; i++) {
        const char *nm = e.src->names && e.src->n_names == e.cfg.nc ? e.src->names[i] : NULL;
        e.names[i] = nm ? (char *)nm : afmt(&e.a, "class%d", i);
        if (!e.names[i]) {
            st = nomem();
            goto done;
        }
    }
    st = p.format == HY_EXPORT_PT ? export_pt(&e) : export_onnx(&e);
done:
    hy__resolved_free(&e.res);
    hy__load_report_free(&e.rep);
    hy__model_spec_free(e.spec);
    hy__wfile_close(e.f);
    hy__arena_deinit(&e.a);
    return st;
}
