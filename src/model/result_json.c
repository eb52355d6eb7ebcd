/* hy__result_json: see result_json.h. */
#include "model/result_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *hy__json_rounded(double v, int decimals) {
    char buf[64];
    if (!isfinite(v)) return json_object_new_double(0);
    snprintf(buf, sizeof buf, "%.*f", decimals, v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot + 1 && *e == '0') *e-- = '\0';
    }
    if (!strcmp(buf, "-0.0")) memmove(buf, buf + 1, strlen(buf));
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

/* json_object_object_add that reports a NULL value (allocation failure) or a failed add. */
static int add(json_object *o, const char *key, json_object *v) {
    if (!v) return -1;
    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

static int push(json_object *a, json_object *v) {
    if (!v) return -1;
    if (json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

static json_object *detection_json(const hy_detection *d, const hy_model *m) {
    json_object *jd = json_object_new_object(), *box = json_object_new_array();
    if (!jd || !box) goto fail;
    const char *cn = m ? hy_model_class_name(m, d->class_id) : NULL;
    char fallback[32];
    if (!cn) {
        snprintf(fallback, sizeof fallback, "class_%d", d->class_id);
        cn = fallback;
    }
    if (add(jd, "class_id", json_object_new_int(d->class_id)) ||
        add(jd, "class_name", json_object_new_string(cn)) ||
        add(jd, "confidence", hy__json_rounded(d->confidence, 5)) ||
        push(box, hy__json_rounded(d->x1, 2)) || push(box, hy__json_rounded(d->y1, 2)) ||
        push(box, hy__json_rounded(d->x2, 2)) || push(box, hy__json_rounded(d->y2, 2)))
        goto fail;
    if (add(jd, "box", box)) {
        box = NULL; /* freed by add */
        goto fail;
    }
    return jd;
fail:
    json_object_put(jd);
    json_object_put(box);
    return NULL;
}

json_object *hy__result_json(const hy_result *r, const hy_model *m, const hy__result_json_opts *o) {
    static const hy__result_json_opts none = {0};
    if (!r) return NULL;
    if (!o) o = &none;
    json_object *obj = json_object_new_object(), *dets = NULL, *tm = NULL;
    if (!obj) return NULL;
    for (int i = 0; i < o->n_head; i++) {
        json_object *v = NULL;
        if (o->head_vals[i] && !(v = json_object_new_string(o->head_vals[i]))) goto fail;
        if (json_object_object_add(obj, o->head_keys[i], v) != 0) {
            json_object_put(v);
            goto fail;
        }
    }
    if (add(obj, "width", json_object_new_int(hy_result_image_width(r))) ||
        add(obj, "height", json_object_new_int(hy_result_image_height(r))))
        goto fail;
    if (!(dets = json_object_new_array())) goto fail;
    for (size_t i = 0; i < hy_result_count(r); i++)
        if (push(dets, detection_json(hy_result_get(r, i), m))) goto fail;
    if (add(obj, "detections", dets)) {
        dets = NULL;
        goto fail;
    }
    dets = NULL;
    const hy_timings t = o->timings ? *o->timings : hy_result_timings(r);
    if (!(tm = json_object_new_object())) goto fail;
    if (add(tm, "decode", hy__json_rounded(t.decode_ms, 3)) ||
        add(tm, "preprocess", hy__json_rounded(t.preprocess_ms, 3)) ||
        add(tm, "inference", hy__json_rounded(t.inference_ms, 3)) ||
        add(tm, "postprocess", hy__json_rounded(t.postprocess_ms, 3)))
        goto fail;
    for (int i = 0; i < o->n_extra; i++)
        if (add(tm, o->extra_timing_keys[i], hy__json_rounded(o->extra_timing_ms[i], 3))) goto fail;
    if (add(obj, "timings_ms", tm)) {
        tm = NULL;
        goto fail;
    }
    return obj;
fail:
    json_object_put(obj);
    json_object_put(dets);
    json_object_put(tm);
    return NULL;
}
