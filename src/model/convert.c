/* hotyolo convert: any weights file -> hotyolo safetensors (unfused state_dict, or fused
 * inference weights), with the model config in __metadata__ (docs/formats.md). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors.h"
#include "core/dtype.h"
#include "core/sha256.h"
#include "backend/backend_impl.h"
#include "io/wfile.h"
#include "model/arch.h"
#include "model/model_impl.h"

hy_convert_params hy_convert_default_params(void) {
    hy_convert_params p;
    memset(&p, 0, sizeof p);
    p.dtype = HY_DTYPE_COUNT;
    p.fuse = 0;
    p.load = hy_model_default_params();
    return p;
}

void hy_free(void *p) { hy__free(p); }

static int is_float(hy_dtype t) { return t == HY_DTYPE_F32 || t == HY_DTYPE_F16 || t == HY_DTYPE_BF16 || t == HY_DTYPE_F64; }

/* Converts t's data to `to` into dst (numel elements). */
static hy_status cast_tensor(const hy__wtensor *t, hy_dtype to, void *dst, float *tmp) {
    hy_status st = hy__wtensor_to_f32(t, tmp);
    if (st) return st;
    for (size_t i = 0; i < t->numel; i++) {
        if (to == HY_DTYPE_F32) {
            memcpy((char *)dst + 4 * i, &tmp[i], 4);
        } else {
            uint16_t h = to == HY_DTYPE_F16 ? hy__f32_to_f16(tmp[i]) : hy__f32_to_bf16(tmp[i]);
            memcpy((char *)dst + 2 * i, &h, 2);
        }
    }
    return HY_OK;
}

typedef struct out_list {
    hy__wtensor *t;
    size_t n, cap;
    char **names;   /* owned names (fused output) */
    void **bufs;    /* owned data */
    size_t nb, capb;
    void **abufs;   /* owned aligned data */
    size_t na, capa;
} out_list;

static hy_status own_aligned(out_list *o, void *p) {
    if (o->na == o->capa) {
        size_t cap = o->capa ? o->capa * 2 : 128;
        void **b = hy__realloc(o->abufs, cap * sizeof *b);
        if (!b) return hy__error(HY_ERR_NOMEM, "out of memory");
        o->abufs = b;
        o->capa = cap;
    }
    o->abufs[o->na++] = p;
    return HY_OK;
}

static hy_status own(out_list *o, void *p) {
    if (o->nb == o->capb) {
        size_t cap = o->capb ? o->capb * 2 : 256;
        void **b = hy__realloc(o->bufs, cap * sizeof *b);
        if (!b) return hy__error(HY_ERR_NOMEM, "out of memory");
        o->bufs = b;
        o->capb = cap;
    }
    o->bufs[o->nb++] = p;
    return HY_OK;
}

static hy_status push(out_list *o, const hy__wtensor *t) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 512;
        hy__wtensor *x = hy__realloc(o->t, cap * sizeof *x);
        if (!x) return hy__error(HY_ERR_NOMEM, "out of memory");
        o->t = x;
        o->cap = cap;
    }
    o->t[o->n++] = *t;
    return HY_OK;
}

static void out_free(out_list *o) {
    for (size_t i = 0; i < o->na; i++) hy__aligned_free(o->abufs[i]);
    hy__free(o->abufs);
    for (size_t i = 0; i < o->nb; i++) hy__free(o->bufs[i]);
    hy__free(o->bufs);
    hy__free(o->t);
}

/* Adds tensor t (name/shape kept) converted to dtype `to` (HY_DTYPE_COUNT: as is). */
static hy_status add_cast(out_list *o, const hy__wtensor *t, hy_dtype to, float *tmp) {
    hy__wtensor x = *t;
    if (to == HY_DTYPE_COUNT || !is_float(t->dtype) || to == t->dtype) return push(o, &x);
    void *buf = hy__malloc(t->numel * hy_dtype_size(to) + 1);
    if (!buf) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy_status st = own(o, buf);
    if (st) {
        hy__free(buf);
        return st;
    }
    if ((st = cast_tensor(t, to, buf, tmp))) return st;
    x.dtype = to;
    x.data = buf;
    return push(o, &x);
}

hy_status hy_convert(const char *in_path, const char *out_path, const hy_convert_params *params) {
    if (!in_path || !out_path) return hy__error(HY_ERR_INVALID_ARG, "hy_convert: input and output paths are required");
    hy_convert_params p = params ? *params : hy_convert_default_params();
    if (p.dtype != HY_DTYPE_COUNT && p.dtype != HY_DTYPE_F32 && p.dtype != HY_DTYPE_F16)
        return hy__error(HY_ERR_INVALID_ARG, "dtype %s: convert writes float32 or float16", hy_dtype_name(p.dtype));
    hy_status st = hy__model_check_params(&p.load);
    if (st) return st;
    char src_sha[HY_SHA256_HEX_LEN + 1];
    if ((st = hy__sha256_file(in_path, src_sha))) return st;
    hy__wfile *f = NULL;
    if ((st = hy__wfile_open(in_path, p.load.verify, &f))) return st;
    const hy__wsource *src = hy__wfile_source(f);
    hy__arch_cfg cfg;
    hy__model_spec *spec = NULL;
    hy__resolved res = {0};
    hy__load_report rep;
    memset(&rep, 0, sizeof rep);
    out_list o = {0};
    float *tmp = NULL, *fw = NULL;
    char *names_json = NULL;
    if ((st = hy__arch_cfg_from_source(src, in_path, p.load.nc, &cfg))) goto done;
    if ((st = hy__model_spec_create(&cfg, &spec))) goto done;
    if ((st = hy__model_resolve(spec, src, &p.load, in_path, cfg.nc, &res, &rep))) goto done;
    size_t max_numel = 1;
    for (int i = 0; i < res.n; i++) max_numel = HY_MAX(max_numel, res.t[i].numel);
    tmp = hy__malloc(max_numel * sizeof(float));
    if (!tmp) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto done;
    }
    int fused = p.fuse || src->fused;
    if (!fused) {
        for (int i = 0; i < res.n && !st; i++) st = add_cast(&o, &res.t[i], p.dtype, tmp);
    } else {
        /* folded weights: "<p>.conv.weight"/"<p>.conv.bias" (Conv) or "<p>.weight"/"<p>.bias" */
        hy_dtype to = p.dtype == HY_DTYPE_COUNT ? HY_DTYPE_F32 : p.dtype;
        for (int i = 0; i < spec->n_fused && !st; i++) {
            const hy__tensor_spec *s = &spec->fused[i];
            hy__wtensor t = {.name = s->name, .dtype = HY_DTYPE_F32, .ndim = s->ndim, .numel = 1};
            for (int d = 0; d < s->ndim; d++) t.numel *= (size_t)(t.shape[d] = s->shape[d]);
            float *buf = hy__malloc(t.numel * sizeof(float));
            if (!buf || (st = own(&o, buf))) {
                hy__free(buf);
                st = st ? st : hy__error(HY_ERR_NOMEM, "out of memory");
                break;
            }
            t.data = buf;
            /* the conv that owns this tensor */
            const hy__conv_spec *c = NULL;
            for (int k = 0; k < spec->n_convs && !c; k++) {
                size_t pl = strlen(spec->convs[k].prefix);
                if (strncmp(s->name, spec->convs[k].prefix, pl) == 0 && s->name[pl] == '.') c = &spec->convs[k];
            }
            if (!c) { /* DFL projection: copied as is */
                const hy__wtensor *r = NULL;
                for (int k = 0; k < res.n && !r; k++)
                    if (strcmp(res.t[k].name, s->name) == 0) r = &res.t[k];
                if (!r) {
                    st = hy__error(HY_ERR_MISMATCH, "%s: %s missing", in_path, s->name);
                    break;
                }
                st = hy__wtensor_to_f32(r, buf);
            } else if (strstr(s->name + strlen(c->prefix), "weight")) {
                size_t nw = (size_t)c->cout * (size_t)(c->cin / c->groups) * (size_t)c->k * (size_t)c->k;
                hy__free(fw);
                fw = hy__malloc(((size_t)c->cout + 1) * sizeof(float));
                st = fw ? hy__fold_conv(&res, src->fused, c, buf, fw, in_path) : hy__error(HY_ERR_NOMEM, "out of memory");
                (void)nw;
            } else {
                /* bias: computed with the weight just before it */
                if (!fw) {
                    st = hy__error(HY_ERR_MISMATCH, "%s: bias before weight for %s", in_path, c->prefix);
                    break;
                }
                memcpy(buf, fw, (size_t)c->cout * sizeof(float));
            }
            if (!st) st = add_cast(&o, &t, to, tmp);
        }
    }
    if (st) goto done;
    /* Fused float32 files also carry every conv pre-packed for this build's CPU kernels
     * ("hotyolo.packed.<prefix>", layout in hotyolo.packed_layout): loading then does no
     * repacking. Other builds ignore them (the canary in load.c checks the layout). */
    const char *layout = "";
    if (fused && (p.dtype == HY_DTYPE_COUNT || p.dtype == HY_DTYPE_F32)) {
        const struct hy__backend_i *bi = hy__backend_find("cpu");
        if (!bi) {
            st = HY_ERR_UNSUPPORTED;
            goto done;
        }
        layout = bi->weights_layout && bi->weight_pack ? bi->weights_layout() : "";
        size_t nf = o.n;
        for (int k = 0; k < spec->n_convs && layout[0] && !st; k++) {
            const hy__conv_spec *c = &spec->convs[k];
            char nw[128], nb[128];
            snprintf(nw, sizeof nw, c->has_bn ? "%s.conv.weight" : "%s.weight", c->prefix);
            snprintf(nb, sizeof nb, c->has_bn ? "%s.conv.bias" : "%s.bias", c->prefix);
            const float *w = NULL, *b = NULL;
            for (size_t i = 0; i < nf; i++) {
                if (strcmp(o.t[i].name, nw) == 0) w = o.t[i].data;
                if (strcmp(o.t[i].name, nb) == 0) b = o.t[i].data;
            }
            if (!w || !b) {
                st = hy__error(HY_ERR_MISMATCH, "%s: %s has no folded weights", in_path, c->prefix);
                break;
            }
            hy__conv2d_params cp = {.cin = c->cin, .cout = c->cout, .kh = c->k, .kw = c->k, .stride = c->stride,
                                    .pad = c->pad, .act = c->act, .weight_id = k, .groups = c->groups};
            size_t sz = bi->weight_packed_size(&cp);
            void *buf = hy__aligned_alloc(64, sz + 64);
            char *name = hy__malloc(strlen(c->prefix) + 32);
            if (!buf || !name || (st = own(&o, name))) {
                hy__aligned_free(buf);
                hy__free(name);
                st = st ? st : hy__error(HY_ERR_NOMEM, "out of memory");
                break;
            }
            memset(buf, 0, sz + 64);
            bi->weight_pack(&cp, w, b, buf);
            sprintf(name, "hotyolo.packed.%s", c->prefix);
            if ((st = own_aligned(&o, buf))) {
                hy__aligned_free(buf);
                break;
            }
            hy__wtensor t = {.name = name, .dtype = HY_DTYPE_U8, .ndim = 1, .numel = sz, .data = buf};
            t.shape[0] = (int64_t)sz;
            st = push(&o, &t);
        }
        if (st) goto done;
    }
    /* metadata (docs/formats.md) */
    json_object *names = json_object_new_array();
    for (int i = 0; i < cfg.nc; i++) {
        char buf[32];
        const char *nm = src->names && src->n_names == cfg.nc && src->names[i] ? src->names[i] : NULL;
        if (!nm) {
            snprintf(buf, sizeof buf, "class%d", i);
            nm = buf;
        }
        json_object_array_add(names, json_object_new_string(nm));
    }
    names_json = hy__strdup(json_object_to_json_string_ext(names, JSON_C_TO_STRING_PLAIN));
    json_object_put(names);
    if (!names_json) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        goto done;
    }
    char nc_s[16], imgsz_s[16], strides_s[64];
    hy__arch_strides_json(cfg.arch, strides_s, sizeof strides_s);
    snprintf(nc_s, sizeof nc_s, "%d", cfg.nc);
    snprintf(imgsz_s, sizeof imgsz_s, "%d", p.load.imgsz ? p.load.imgsz : (src->imgsz ? src->imgsz : 640));
    const char *keys[] = {"format", "hotyolo.format_version", "hotyolo.arch", "hotyolo.variant", "hotyolo.nc",
                          "hotyolo.names", "hotyolo.imgsz", "hotyolo.stride", "hotyolo.fused", "hotyolo.source_sha256",
                          "hotyolo.packed_layout"};
    const char *vals[] = {"hotyolo", HY_ST_FORMAT_VERSION, cfg.arch->name, cfg.variant, nc_s, names_json, imgsz_s,
                          strides_s, fused ? "true" : "false", src_sha, layout};
    st = hy__st_write(out_path, o.t, o.n, keys, vals, HY_ARRAY_LEN(keys) - (layout[0] ? 0 : 1));
    /* the page cache in 2 MiB folios for the loads to come; only a speed-up, so a failure
     * here (a filesystem without fadvise) does not fail the conversion */
    if (!st && hy__map_recache(out_path) != HY_OK)
        hy__log(HY_LOG_DEBUG, "convert: %s: page cache left as written: %s", out_path, hy_last_error());
done:
    hy__free(names_json);
    hy__free(tmp);
    hy__free(fw);
    out_free(&o);
    hy__resolved_free(&res);
    hy__load_report_free(&rep);
    hy__model_spec_free(spec);
    hy__wfile_close(f);
    return st;
}

hy_status hy_verify(const char *path) {
    if (!path) return hy__error(HY_ERR_INVALID_ARG, "hy_verify: path is required");
    char hex[HY_SHA256_HEX_LEN + 1];
    int ok = 0;
    hy_status st = hy__st_verify(path, hex, &ok);
    if (st) return st;
    if (ok == 1) return HY_OK;
    if (ok < 0) return hy__error(HY_ERR_FORMAT, "%s: the file records no data sha256 (%s), nothing to verify against", path,
                                 HY_ST_KEY_DATA_SHA256);
    char recorded[HY_SHA256_HEX_LEN + 1] = "?";
    hy__st_file *f = NULL;
    if (hy__st_open(path, 0, &f) == HY_OK) {
        const char *r = hy__st_meta(f, HY_ST_KEY_DATA_SHA256);
        if (r) snprintf(recorded, sizeof recorded, "%s", r);
        hy__st_close(f);
    }
    return hy__error(HY_ERR_FORMAT, "%s: data sha256 mismatch (file is corrupt or was modified): recorded %s, computed %s",
                     path, recorded, hex);
}
